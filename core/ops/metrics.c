// SPDX-License-Identifier: GPL-2.0-only
/*
 * The metrics endpoint (metrics.h): a libuv TCP listener, one request per
 * connection, and the exposition text written at each scrape by the
 * collectors their owners registered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ops/connlimit.h"
#include "ops/http.h"
#include "ops/metrics.h"

#define MX_MAX_HEAD 8192

struct mx_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct bpflb_metrics *m;
	int open_handles;
	bool closing, answered;
	size_t len;
	char buf[MX_MAX_HEAD];
};

struct mx_collector {
	const char *name;
	bpflb_metrics_fn fn;
	void *ctx;
};

struct bpflb_metrics {
	uv_tcp_t srv;
	bool listening;
	struct connlimit_listener lim;
	uint64_t scrapes;
	struct mx_collector collectors[METRICS_MAX_COLLECTORS];
	unsigned int ncollectors;
};

/* --- the exposition ------------------------------------------------------------ */

void bpflb_metrics_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
}

void bpflb_metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct bpflb_metrics *bpflb_metrics_new(void)
{
	return calloc(1, sizeof(struct bpflb_metrics));
}

int bpflb_metrics_register(struct bpflb_metrics *m, const char *name, bpflb_metrics_fn fn,
			   void *ctx, struct bpflb_err *err)
{
	for (unsigned int i = 0; i < m->ncollectors; i++)
		if (!strcmp(m->collectors[i].name, name))
			return bpflb_err_set(err, "metrics collector '%s' is registered twice",
					     name),
			       -EEXIST;
	if (m->ncollectors == METRICS_MAX_COLLECTORS)
		return bpflb_err_set(err,
				     "more than %d metrics collectors (METRICS_MAX_COLLECTORS)",
				     METRICS_MAX_COLLECTORS),
		       -ENOSPC;
	m->collectors[m->ncollectors++] = (struct mx_collector){name, fn, ctx};
	return 0;
}

/*
 * The registered collectors, then the listeners' own (all prefixed bpflb_):
 *   connections                                gauge, metrics + health check connections
 *   connections_refused_total                  counter, a listener paused at a cap
 *   metrics_scrapes_total                      counter
 */
char *metrics_render(struct bpflb_metrics *m, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	for (unsigned int i = 0; i < m->ncollectors; i++)
		m->collectors[i].fn(f, m->collectors[i].ctx);
	bpflb_metrics_head(f, "bpflb_connections", "gauge",
			   "Open connections of the metrics and health check listeners "
			   "(max_connections).");
	fprintf(f, "bpflb_connections %u\n", connlimit_total());
	bpflb_metrics_head(f, "bpflb_connections_refused_total", "counter",
			   "Times a listener stopped accepting at max_connections(_per_listener).");
	fprintf(f, "bpflb_connections_refused_total %llu\n",
		(unsigned long long)connlimit_refused());
	bpflb_metrics_head(f, "bpflb_metrics_scrapes_total", "counter", "Requests for /metrics.");
	fprintf(f, "bpflb_metrics_scrapes_total %llu\n", (unsigned long long)m->scrapes);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/* --- HTTP ------------------------------------------------------------------------- */

static void mx_handle_closed(uv_handle_t *h)
{
	struct mx_conn *c = h->data;

	if (--c->open_handles == 0)
		free(c);
}

static void mx_close(struct mx_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->tcp, mx_handle_closed);
	uv_close((uv_handle_t *)&c->timer, mx_handle_closed);
	connlimit_release(&c->m->lim); /* may accept a waiting connection */
}

struct mx_write {
	uv_write_t req;
	struct mx_conn *c;
	char *body;
	char head[256];
};

static void mx_written(uv_write_t *req, int status)
{
	struct mx_write *w = (struct mx_write *)req;

	mx_close(w->c);
	free(w->body);
	free(w);
}

static void mx_respond(struct mx_conn *c, int code, const char *ctype, char *body, size_t blen,
		       bool head_only)
{
	const char *reason = code == 200   ? "OK"
			     : code == 404 ? "Not Found"
			     : code == 405 ? "Method Not Allowed"
			     : code == 413 ? "Payload Too Large"
			     : code == 431 ? "Request Header Fields Too Large"
			     : code == 500 ? "Internal Server Error"
					   : "Bad Request";
	struct mx_write *w = calloc(1, sizeof(*w));
	uv_buf_t b[2];
	int n;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (!w) {
		free(body);
		mx_close(c);
		return;
	}
	if (!body) {
		char tmp[64];
		int l = snprintf(tmp, sizeof(tmp), "%d %s\n", code, reason);

		body = strdup(tmp);
		blen = body ? (size_t)l : 0;
		ctype = "text/plain; charset=utf-8";
	}
	w->c = c;
	w->body = body;
	n = snprintf(w->head, sizeof(w->head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: close\r\n\r\n",
		     code, reason, ctype, blen, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	b[0] = uv_buf_init(w->head, (unsigned int)n);
	b[1] = uv_buf_init(body ? body : "", head_only || !body ? 0 : (unsigned int)blen);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, b, 2, mx_written)) {
		free(w->body);
		free(w);
		mx_close(c);
	}
}

static void mx_request(struct mx_conn *c, char *head)
{
	struct bpflb_http_req req;
	int code = bpflb_http_parse(head, 0, &req);
	bool head_only;
	char *body, *q;
	size_t len = 0;

	if (code) {
		mx_respond(c, code, NULL, NULL, 0, false);
		return;
	}
	head_only = !strcmp(req.method, "HEAD");
	if (strcmp(req.method, "GET") && !head_only) {
		mx_respond(c, 405, NULL, NULL, 0, false);
		return;
	}
	q = strchr(req.target, '?');
	if (q)
		*q = '\0';
	if (strcmp(req.target, "/metrics")) {
		mx_respond(c, 404, NULL, NULL, 0, head_only);
		return;
	}
	c->m->scrapes++;
	body = metrics_render(c->m, &len);
	if (!body) {
		mx_respond(c, 500, NULL, NULL, 0, head_only);
		return;
	}
	mx_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, head_only);
}

static void mx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct mx_conn *c = h->data;

	*b = uv_buf_init(c->buf + c->len, (unsigned int)(sizeof(c->buf) - c->len - 1));
}

static void mx_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct mx_conn *c = st->data;
	size_t end;

	if (nread < 0) {
		if (!c->answered)
			mx_close(c);
		return;
	}
	if (!nread || c->answered)
		return;
	c->len += (size_t)nread;
	end = bpflb_http_head_end(c->buf, c->len);
	if (end) {
		c->buf[end] = '\0';
		mx_request(c, c->buf);
	} else if (c->len >= sizeof(c->buf) - 1) {
		mx_respond(c, 431, NULL, NULL, 0, false);
	}
}

static void mx_idle(uv_timer_t *t)
{
	mx_close(t->data);
}

static void mx_connection(uv_stream_t *srv, int status)
{
	struct bpflb_metrics *m = srv->data;
	struct mx_conn *c;

	if (status < 0)
		return;
	if (!connlimit_admit(&m->lim))
		return; /* resumed when a connection closes */
	c = calloc(1, sizeof(*c));
	if (!c) {
		connlimit_release(&m->lim);
		return;
	}
	c->m = m;
	uv_tcp_init(srv->loop, &c->tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) ||
	    uv_read_start((uv_stream_t *)&c->tcp, mx_alloc, mx_read)) {
		mx_close(c);
		return;
	}
	/* one request per connection: a deadline for reading it and taking the answer */
	uv_timer_start(&c->timer, mx_idle, connlimit_timeout_ms(), 0);
}

static void srv_closed(uv_handle_t *h)
{
	free(h->data);
}

int metrics_listen(struct bpflb_metrics *m, uv_loop_t *loop, const char *listen,
		   struct bpflb_err *err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = strrchr(listen, ':');
	char addr[64];
	int ret;

	if (m->listening)
		return bpflb_err_set(err, "metrics are served already"), -EALREADY;
	if (!colon || (size_t)(colon - listen) >= sizeof(addr))
		return bpflb_err_set(err, "metrics_listen '%s' is not ADDR:PORT", listen), -EINVAL;
	snprintf(addr, sizeof(addr), "%.*s", (int)(colon - listen), listen);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 || atoi(colon + 1) <= 0 ||
	    atoi(colon + 1) > 65535)
		return bpflb_err_set(err, "metrics_listen '%s' is not ADDR:PORT", listen), -EINVAL;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	uv_tcp_init(loop, &m->srv);
	m->srv.data = m;
	/* from here on metrics_close() closes the handle, which frees m */
	m->listening = true;
	connlimit_listener_init(&m->lim, (uv_stream_t *)&m->srv, true);
	ret = uv_tcp_bind(&m->srv, (const struct sockaddr *)&sa, 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&m->srv, 64, mx_connection);
	if (ret)
		return bpflb_err_set(err, "cannot serve metrics on %s: %s", listen,
				     uv_strerror(ret)),
		       ret;
	return 0;
}

void metrics_close(struct bpflb_metrics *m)
{
	if (!m)
		return;
	if (!m->listening) {
		free(m);
		return;
	}
	connlimit_listener_close(&m->lim);
	uv_close((uv_handle_t *)&m->srv, srv_closed);
}
