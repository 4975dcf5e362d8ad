// SPDX-License-Identifier: GPL-2.0-only
/*
 * libmicrohttpd on the libuv loop (see http.h for why it is driven this way).
 *
 * One server = one listening socket we accept from, one MHD daemon without a
 * listening socket, and four libuv handles: the listener's poll, the poll of
 * MHD's epoll descriptor, the timer MHD asks for, and the deadline sweep.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "ops/connlimit.h"
#include "ops/http.h"

#define HTTP_BACKLOG	 128
#define HTTP_RETRY_MS	 100 /* accept() ran out of descriptors: try again then */
#define HTTP_NO_DEADLINE UINT64_MAX

struct http_conn {
	struct bpflb_http_server *s;
	struct MHD_Connection *mc;
	uint64_t deadline; /* uv_now() ms; HTTP_NO_DEADLINE once shut down */
	struct http_conn *next, **pprev;
};

struct bpflb_http_server {
	uv_loop_t *loop;
	struct MHD_Daemon *mhd;
	int lfd;
	uv_poll_t lpoll;   /* the listening socket (we accept) */
	uv_poll_t epoll;   /* MHD's epoll descriptor */
	uv_timer_t mtimer; /* MHD_get_timeout() */
	uv_timer_t sweep;  /* client_timeout deadlines; also accept retries */
	struct connlimit_listener lim;
	struct http_conn *conns;
	bpflb_http_fn fn;
	void *ctx;
	unsigned int to_release; /* connections MHD closed, slots not yet given back */
	bool started;		 /* scratch: MHD_add_connection started a connection */
	bool stopping;
	int open_handles;
};

int bpflb_http_parse_listen(const char *s, uint32_t *addr, uint16_t *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	char abuf[INET_ADDRSTRLEN];
	struct in_addr a;
	unsigned long p;
	char *end;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(abuf))
		return -EINVAL;
	snprintf(abuf, sizeof(abuf), "%.*s", (int)(colon - s), s);
	if (inet_pton(AF_INET, abuf, &a) != 1)
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || colon[1] == '+' || colon[1] == '-' || !p ||
	    p > 65535)
		return -EINVAL;
	*addr = a.s_addr;
	*port = (uint16_t)p;
	return 0;
}

/* --- answers --------------------------------------------------------------------- */

static enum MHD_Result send_answer(struct MHD_Connection *mc, struct bpflb_http_answer *a)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!a->body) {
		int n =
		    asprintf(&a->body, "%u %s\n", a->status, MHD_get_reason_phrase_for(a->status));

		if (n < 0)
			return MHD_NO; /* no memory: MHD closes the connection */
		a->len = (size_t)n;
		a->ctype = "text/plain; charset=utf-8";
	}
	r = MHD_create_response_from_buffer(a->len, a->body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(a->body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->ctype) != MHD_YES ||
	    (a->nosniff &&
	     MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES) ||
	    (a->status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(mc, a->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **req_cls)
{
	struct bpflb_http_server *s = cls;
	struct bpflb_http_answer a = {0};

	/*
	 * The first call has the head only: answer on a later one, once the
	 * body (none expected; dropped) is read.  An answer queued on the first
	 * call makes MHD close the connection after it, and keep-alive clients
	 * (load balancer probes, Prometheus) would reconnect for each request.
	 * A body's size is bounded by client_timeout, as everything a client
	 * sends.
	 */
	if (!*req_cls) {
		*req_cls = s;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		a.status = MHD_HTTP_METHOD_NOT_ALLOWED;
		return send_answer(mc, &a);
	}
	s->fn(s->ctx, url, &a);
	if (!a.status) {
		free(a.body);
		a = (struct bpflb_http_answer){.status = MHD_HTTP_NOT_FOUND};
	}
	return send_answer(mc, &a);
}

/* --- driving MHD from the loop ----------------------------------------------------- */

static void mtimer_fired(uv_timer_t *t);

static void give_back_slots(struct bpflb_http_server *s)
{
	/* one at a time: a release may accept again (this server or another) */
	while (s->to_release) {
		s->to_release--;
		connlimit_release(&s->lim);
	}
}

/* Let MHD do what is ready, then wait for what it waits for. */
static void drive(struct bpflb_http_server *s)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (s->stopping)
		return;
	MHD_run(s->mhd);
	if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
		uv_timer_start(&s->mtimer, mtimer_fired, ms, 0);
	else
		uv_timer_stop(&s->mtimer);
	give_back_slots(s);
}

static void mtimer_fired(uv_timer_t *t)
{
	drive(t->data);
}

static void epoll_ready(uv_poll_t *p, int status, int events)
{
	drive(p->data);
}

/* --- client_timeout: a deadline per request ---------------------------------------- */

static void sweep_fired(uv_timer_t *t);

static void sweep_arm(struct bpflb_http_server *s)
{
	uint64_t next = HTTP_NO_DEADLINE, now = uv_now(s->loop);

	for (struct http_conn *c = s->conns; c; c = c->next)
		if (c->deadline < next)
			next = c->deadline;
	if (next == HTTP_NO_DEADLINE)
		uv_timer_stop(&s->sweep);
	else
		uv_timer_start(&s->sweep, sweep_fired, next > now ? next - now : 0, 0);
}

static void conn_deadline(struct http_conn *c)
{
	c->deadline = uv_now(c->s->loop) + connlimit_timeout_ms();
	sweep_arm(c->s);
}

static void accept_ready(uv_poll_t *p, int status, int events);

static void sweep_fired(uv_timer_t *t)
{
	struct bpflb_http_server *s = t->data;
	uint64_t now = uv_now(s->loop);

	/* an accept retry after EMFILE shares this timer: poll again */
	if (!uv_is_active((uv_handle_t *)&s->lpoll) && !s->lim.waiting && !s->stopping)
		uv_poll_start(&s->lpoll, UV_READABLE, accept_ready);
	for (struct http_conn *c = s->conns; c; c = c->next) {
		const union MHD_ConnectionInfo *ci;

		if (c->deadline > now)
			continue;
		/*
		 * Not close(): MHD owns the descriptor.  After shutdown() it
		 * reads the end of the stream and closes the connection itself.
		 */
		ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci)
			shutdown(ci->connect_fd, SHUT_RDWR);
		c->deadline = HTTP_NO_DEADLINE;
	}
	sweep_arm(s);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct bpflb_http_server *s = cls;
	struct http_conn *c = *socket_ctx;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		s->started = true;
		c = calloc(1, sizeof(*c));
		if (!c)
			return; /* served without a deadline; its slot is still counted */
		c->s = s;
		c->mc = mc;
		c->next = s->conns;
		if (s->conns)
			s->conns->pprev = &c->next;
		c->pprev = &s->conns;
		s->conns = c;
		*socket_ctx = c;
		conn_deadline(c);
		return;
	}
	/* MHD_CONNECTION_NOTIFY_CLOSED: the slot goes back after MHD_run() */
	s->to_release++;
	if (!c)
		return;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	free(c);
	*socket_ctx = NULL;
}

/* A request is answered (or abandoned): the next one gets a full client_timeout. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct http_conn *c = ci ? ci->socket_context : NULL;

	if (c && c->deadline != HTTP_NO_DEADLINE && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		conn_deadline(c);
}

/* --- accepting under the caps ------------------------------------------------------- */

static void accept_some(struct bpflb_http_server *s)
{
	for (bool first = true;; first = false) {
		struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd;

		if (s->stopping)
			return;
		/* ask the cap only for a client that waits: a refusal is counted */
		if (!first && poll(&pfd, 1, 0) <= 0)
			break;
		if (!connlimit_admit(&s->lim)) {
			/* the kernel's backlog holds the rest until a slot frees (resume) */
			uv_poll_stop(&s->lpoll);
			return;
		}
		fd = accept4(s->lfd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;

			s->to_release++;
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				/* level-triggered: do not spin on a full descriptor table */
				uv_poll_stop(&s->lpoll);
				uv_timer_start(&s->sweep, sweep_fired, HTTP_RETRY_MS, 0);
			}
			break;
		}
		s->started = false;
		/* MHD closes fd when it cannot take it */
		MHD_add_connection(s->mhd, fd, (struct sockaddr *)&sa, salen);
		if (!s->started)
			s->to_release++; /* MHD never had it: no CLOSED notification */
	}
	drive(s);
}

static void accept_ready(uv_poll_t *p, int status, int events)
{
	struct bpflb_http_server *s = p->data;

	if (status < 0)
		return;
	accept_some(s);
}

/* connlimit: a slot is free again for this waiting listener */
static void resume(struct connlimit_listener *l)
{
	struct bpflb_http_server *s = l->ctx;

	if (s->stopping)
		return;
	uv_poll_start(&s->lpoll, UV_READABLE, accept_ready);
	accept_some(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	log_vmsg(LOG_DEBUG, "http", fmt, ap);
}

/* --- life cycle ----------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
	struct bpflb_http_server *s = h->data;

	if (--s->open_handles == 0)
		free(s);
}

int bpflb_http_start(uv_loop_t *loop, uint32_t addr, uint16_t port, bpflb_http_fn fn, void *ctx,
		     struct bpflb_http_server **out)
{
	struct sockaddr_in sa = {
	    .sin_family = AF_INET, .sin_addr.s_addr = addr, .sin_port = htons(port)};
	const union MHD_DaemonInfo *di;
	struct bpflb_http_server *s;
	int one = 1, ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->fn = fn;
	s->ctx = ctx;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		ret = -errno;
		free(s);
		return ret;
	}
	/* a restart binds again while connections of the last run are in TIME_WAIT */
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s->lfd, HTTP_BACKLOG)) {
		ret = -errno;
		close(s->lfd);
		free(s);
		return ret;
	}
	s->mhd = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
	    s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEM_LIMIT,
	    /* the caps are connlimit's; MHD's default (FD_SETSIZE) must not undercut them */
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1000000, MHD_OPTION_END);
	di = s->mhd ? MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!di) {
		if (s->mhd)
			MHD_stop_daemon(s->mhd);
		close(s->lfd);
		free(s);
		return -ENOMEM;
	}
	uv_poll_init(loop, &s->lpoll, s->lfd);
	uv_poll_init(loop, &s->epoll, di->epoll_fd);
	uv_timer_init(loop, &s->mtimer);
	uv_timer_init(loop, &s->sweep);
	s->lpoll.data = s->epoll.data = s->mtimer.data = s->sweep.data = s;
	s->open_handles = 4;
	connlimit_listener_init_cb(&s->lim, resume, s, true);
	uv_poll_start(&s->epoll, UV_READABLE, epoll_ready);
	uv_poll_start(&s->lpoll, UV_READABLE, accept_ready);
	*out = s;
	return 0;
}

void bpflb_http_set_ctx(struct bpflb_http_server *s, void *ctx)
{
	s->ctx = ctx;
}

void bpflb_http_stop(struct bpflb_http_server *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	connlimit_listener_close(&s->lim); /* never resumed again */
	uv_poll_stop(&s->lpoll);
	uv_poll_stop(&s->epoll); /* before MHD closes the descriptor */
	/* closes every connection (CLOSED notifications: to_release) and the epoll fd */
	MHD_stop_daemon(s->mhd);
	close(s->lfd);
	give_back_slots(s); /* may let another listener accept */
	uv_close((uv_handle_t *)&s->lpoll, handle_closed);
	uv_close((uv_handle_t *)&s->epoll, handle_closed);
	uv_close((uv_handle_t *)&s->mtimer, handle_closed);
	uv_close((uv_handle_t *)&s->sweep, handle_closed);
}
