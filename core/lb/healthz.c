// SPDX-License-Identifier: GPL-2.0-only
/*
 * Health check node port servers (see healthz.h): one libuv TCP listener per
 * externalTrafficPolicy=Local service with a health_check_node_port, and a
 * deliberately small HTTP/1.x reader: the clients are load balancer probes
 * that send one short request head at a time, so the server reads request
 * heads up to 8 KiB, skips Content-Length bodies, refuses chunked ones, and
 * never holds more than one head in memory per connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/connlimit.h"
#include "lb/healthz.h"
#include "ops/http.h"

#define HZ_MAX_HEAD   8192
#define HZ_MAX_BODY   65536 /* a probe has no body; skip a small one */
#define HZ_MAX_QUEUED 65536 /* unread responses before we give up on a client */
#define HZ_BACKLOG    128

struct hz_conn;

struct hz_listener {
	uv_tcp_t tcp;
	struct connlimit_listener lim;
	struct bpflb_healthz *h;
	struct hz_listener *next;
	struct hz_conn *conns;
	uint32_t addr;
	uint16_t port;
	bool keep;  /* scratch of bpflb_healthz_update */
	bool fresh; /* bound by the running update */
	char ns[128];
	char name[128];
	uint32_t local;
};

struct hz_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct bpflb_healthz *h;
	struct hz_listener *l; /* NULL once the listener went away */
	struct hz_conn *next, **pprev;
	int open_handles;
	bool closing;
	bool close_after_write;
	unsigned int pending;
	size_t len;
	size_t skip; /* body bytes still to discard */
	char buf[HZ_MAX_HEAD];
};

struct hz_write {
	uv_write_t req;
	struct hz_conn *c;
	char data[];
};

struct bpflb_healthz {
	uv_loop_t *loop;
	struct hz_listener *listeners;
	unsigned long open_handles;
	bool freeing;
};

static void hz_maybe_free(struct bpflb_healthz *h)
{
	if (h->freeing && !h->open_handles)
		free(h);
}

int bpflb_healthz_new(uv_loop_t *loop, struct bpflb_healthz **out)
{
	struct bpflb_healthz *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	*out = h;
	return 0;
}

size_t bpflb_healthz_count(const struct bpflb_healthz *h)
{
	size_t n = 0;

	for (const struct hz_listener *l = h ? h->listeners : NULL; l; l = l->next)
		n++;
	return n;
}

/* --- connections -------------------------------------------------------- */

static void conn_handle_closed(uv_handle_t *hd)
{
	struct hz_conn *c = hd->data;
	struct bpflb_healthz *h = c->h;

	h->open_handles--;
	if (--c->open_handles == 0)
		free(c);
	hz_maybe_free(h);
}

static void conn_close(struct hz_conn *c)
{
	if (c->closing)
		return;
	struct hz_listener *l = c->l;

	c->closing = true;
	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
		c->pprev = NULL;
	}
	c->l = NULL;
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	if (l)
		connlimit_release(&l->lim); /* may accept a waiting connection */
}

static void conn_idle(uv_timer_t *t)
{
	conn_close(t->data);
}

/*
 * client_timeout (connlimit.h) runs from the last answered request or the
 * last answer the client took: an idle keep-alive connection, a request head
 * sent a byte at a time and answers left unread all end there.
 */
static void conn_progress(struct hz_conn *c)
{
	uv_timer_start(&c->timer, conn_idle, connlimit_timeout_ms(), 0);
}

static void conn_written(uv_write_t *req, int status)
{
	struct hz_write *w = (struct hz_write *)req;
	struct hz_conn *c = w->c;

	free(w);
	c->pending--;
	if (c->closing)
		return;
	/* EPIPE, ECONNRESET: the client hung up */
	if (status < 0 || (c->close_after_write && !c->pending))
		conn_close(c);
	else
		conn_progress(c);
}

static void conn_send(struct hz_conn *c, const char *data, size_t len)
{
	struct hz_write *w;
	uv_buf_t b;

	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > HZ_MAX_QUEUED)
		goto fail; /* a client that sends requests but reads no answers */
	w = malloc(sizeof(*w) + len);
	if (!w)
		goto fail;
	memcpy(w->data, data, len);
	w->c = c;
	b = uv_buf_init(w->data, (unsigned int)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_written)) {
		free(w);
		goto fail;
	}
	c->pending++;
	return;
fail:
	conn_close(c);
}

static size_t json_escape(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return o;
}

/* Answer one request; close after it when keep_alive is false. */
static void conn_respond(struct hz_conn *c, int code, bool head_only, bool keep_alive)
{
	char body[600], ns[260], name[260], msg[1024];
	const char *reason, *extra = "";
	int blen = 0, mlen;

	switch (code) {
	case 200:
		reason = "OK";
		break;
	case 400:
		reason = "Bad Request";
		break;
	case 405:
		reason = "Method Not Allowed";
		extra = "Allow: GET, HEAD\r\n";
		break;
	case 413:
		reason = "Payload Too Large";
		break;
	case 431:
		reason = "Request Header Fields Too Large";
		break;
	case 503:
		reason = "Service Unavailable";
		break;
	default:
		reason = "Error";
		break;
	}
	if ((code == 200 || code == 503) && c->l) {
		json_escape(ns, sizeof(ns), c->l->ns);
		json_escape(name, sizeof(name), c->l->name);
		blen = snprintf(body, sizeof(body),
				"{\"service\":{\"namespace\":\"%s\",\"name\":\"%s\"},"
				"\"localEndpoints\":%u,\"serviceProxyHealthy\":true}",
				ns, name, c->l->local);
	} else {
		blen = snprintf(body, sizeof(body), "%d %s\n", code, reason);
	}
	mlen =
	    snprintf(msg, sizeof(msg),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "X-Content-Type-Options: nosniff\r\n"
		     "%s"
		     "Content-Length: %d\r\n"
		     "%s"
		     "\r\n%s",
		     code, reason,
		     code == 200 || code == 503 ? "application/json" : "text/plain; charset=utf-8",
		     extra, blen, keep_alive ? "" : "Connection: close\r\n", head_only ? "" : body);
	if (!keep_alive)
		c->close_after_write = true;
	conn_send(c, msg, (size_t)mlen);
}

/* Handle the request head (NUL-terminated copy); sets c->skip for a body to discard. */
static void conn_request(struct hz_conn *c, char *head)
{
	struct bpflb_http_req req;
	bool head_only;
	int code = bpflb_http_parse(head, HZ_MAX_BODY, &req);

	if (code) {
		conn_respond(c, code, false, false);
		return;
	}
	c->skip = (size_t)req.content_length;
	head_only = !strcmp(req.method, "HEAD");
	if (strcmp(req.method, "GET") && !head_only) {
		conn_respond(c, 405, false, req.keep_alive);
		return;
	}
	conn_respond(c, c->l && c->l->local ? 200 : 503, head_only, req.keep_alive);
}

static void conn_process(struct hz_conn *c)
{
	char head[HZ_MAX_HEAD + 1];

	while (c->len && !c->closing && !c->close_after_write) {
		size_t end;

		if (c->skip) {
			size_t d = c->skip < c->len ? c->skip : c->len;

			memmove(c->buf, c->buf + d, c->len - d);
			c->len -= d;
			c->skip -= d;
			continue;
		}
		/* tolerate blank lines between requests (RFC 9112 2.2) */
		if (c->buf[0] == '\r' || c->buf[0] == '\n') {
			memmove(c->buf, c->buf + 1, --c->len);
			continue;
		}
		end = bpflb_http_head_end(c->buf, c->len);
		if (!end) {
			if (c->len == sizeof(c->buf))
				conn_respond(c, 431, false, false);
			return;
		}
		memcpy(head, c->buf, end);
		head[end] = '\0';
		memmove(c->buf, c->buf + end, c->len - end);
		c->len -= end;
		conn_request(c, head);
		if (!c->closing)
			conn_progress(c);
	}
	if (c->close_after_write)
		c->len = 0; /* nothing after a closing answer is read */
}

static void conn_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
	struct hz_conn *c = hd->data;
	size_t room = sizeof(c->buf) - c->len;

	/* a full buffer was answered with 431 in conn_process */
	*b = uv_buf_init(c->buf + c->len, (unsigned int)room);
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct hz_conn *c = st->data;

	if (nread < 0) {
		/* EOF: answers already queued still go out before the close */
		uv_read_stop(st);
		if (nread == UV_EOF && c->pending)
			c->close_after_write = true;
		else
			conn_close(c);
		return;
	}
	if (!nread || c->closing)
		return;
	if (c->close_after_write)
		return; /* discard what follows a closing answer */
	c->len += (size_t)nread;
	conn_process(c);
	if (!c->closing && !c->len && !c->pending && c->close_after_write)
		conn_close(c);
}

static void listener_connection(uv_stream_t *srv, int status)
{
	struct hz_listener *l = srv->data;
	struct bpflb_healthz *h = l->h;
	struct hz_conn *c;

	if (status < 0)
		return;
	if (!connlimit_admit(&l->lim))
		return; /* resumed when a connection closes */
	c = calloc(1, sizeof(*c));
	if (!c) {
		connlimit_release(&l->lim);
		return; /* libuv pauses this listener until a later accept */
	}
	c->h = h;
	c->l = l;
	uv_tcp_init(h->loop, &c->tcp);
	uv_timer_init(h->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	h->open_handles += 2;
	c->next = l->conns;
	if (l->conns)
		l->conns->pprev = &c->next;
	c->pprev = &l->conns;
	l->conns = c;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) ||
	    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read)) {
		conn_close(c);
		return;
	}
	conn_progress(c);
}

/* --- listeners ---------------------------------------------------------- */

static void listener_closed(uv_handle_t *hd)
{
	struct hz_listener *l = hd->data;
	struct bpflb_healthz *h = l->h;

	free(l);
	h->open_handles--;
	hz_maybe_free(h);
}

/* Unlink l from h->listeners first. */
static void listener_close(struct hz_listener *l)
{
	connlimit_listener_close(&l->lim);
	while (l->conns)
		conn_close(l->conns);
	uv_close((uv_handle_t *)&l->tcp, listener_closed);
}

static void listener_set(struct hz_listener *l, const struct bpflb_healthz_svc *v)
{
	snprintf(l->ns, sizeof(l->ns), "%s", v->ns ? v->ns : "default");
	snprintf(l->name, sizeof(l->name), "%s", v->name ? v->name : "");
	l->local = v->local_endpoints;
}

static int listener_open(struct bpflb_healthz *h, const struct bpflb_healthz_svc *v,
			 struct hz_listener **out, struct bpflb_err *err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char abuf[INET_ADDRSTRLEN];
	struct hz_listener *l;
	int ret;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->h = h;
	l->addr = v->addr;
	l->port = v->port;
	listener_set(l, v);
	ret = uv_tcp_init(h->loop, &l->tcp);
	if (ret) {
		free(l);
		goto err;
	}
	l->tcp.data = l;
	connlimit_listener_init(&l->lim, (uv_stream_t *)&l->tcp, true);
	h->open_handles++;
	sa.sin_addr.s_addr = v->addr;
	sa.sin_port = htons(v->port);
	ret = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&sa, 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&l->tcp, HZ_BACKLOG, listener_connection);
	if (ret) {
		listener_close(l);
		goto err;
	}
	*out = l;
	return 0;
err:
	inet_ntop(AF_INET, &v->addr, abuf, sizeof(abuf));
	bpflb_err_set(err, "cannot serve the health check of service %s/%s on %s:%u: %s",
		      v->ns ? v->ns : "default", v->name ? v->name : "", abuf, v->port,
		      uv_strerror(ret));
	return ret;
}

int bpflb_healthz_update(struct bpflb_healthz *h, const struct bpflb_healthz_svc *svc, size_t n,
			 struct bpflb_err *err)
{
	struct hz_listener *l, **pl, *fresh = NULL;
	int ret;

	for (l = h->listeners; l; l = l->next)
		l->keep = false;

	/* 1. bind what is new, keeping it aside until all binds succeeded */
	for (size_t i = 0; i < n; i++) {
		struct hz_listener *found = NULL;

		for (l = h->listeners; l; l = l->next)
			if (l->addr == svc[i].addr && l->port == svc[i].port)
				found = l;
		for (l = fresh; l; l = l->next)
			if (l->addr == svc[i].addr && l->port == svc[i].port)
				found = l;
		if (found) {
			found->keep = true;
			continue;
		}
		ret = listener_open(h, &svc[i], &l, err);
		if (ret)
			goto rollback;
		l->keep = true;
		l->next = fresh;
		fresh = l;
	}

	/* 2. commit: refresh answers, close what went away, adopt the new */
	for (size_t i = 0; i < n; i++)
		for (l = h->listeners; l; l = l->next)
			if (l->addr == svc[i].addr && l->port == svc[i].port)
				listener_set(l, &svc[i]);
	for (pl = &h->listeners; (l = *pl);) {
		if (l->keep) {
			pl = &l->next;
			continue;
		}
		*pl = l->next;
		listener_close(l);
	}
	while ((l = fresh)) {
		fresh = l->next;
		l->next = h->listeners;
		h->listeners = l;
	}
	return 0;

rollback:
	while ((l = fresh)) {
		fresh = l->next;
		listener_close(l);
	}
	return ret;
}

void bpflb_healthz_free(struct bpflb_healthz *h)
{
	struct hz_listener *l;

	if (!h)
		return;
	while ((l = h->listeners)) {
		h->listeners = l->next;
		listener_close(l);
	}
	h->freeing = true;
	hz_maybe_free(h);
}
