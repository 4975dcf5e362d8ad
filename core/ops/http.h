/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one HTTP server of bpflbd: libmicrohttpd (MHD) driven from the libuv
 * loop, used by the metrics endpoint (metrics.c), kube-proxy's /healthz and
 * /livez (proxyhealth.c) and the health check node ports (lb/healthz.c).
 *
 * Why this shape:
 *  - the handlers read daemon state that only the loop thread may touch, so
 *    MHD runs without a thread of its own (MHD_USE_EPOLL): its epoll
 *    descriptor sits under a uv_poll and MHD_run() is called from it, and from
 *    a uv_timer armed with MHD_get_timeout();
 *  - the connection caps (connlimit.h) are one budget for every listener of
 *    the process, which MHD's per-daemon limits cannot express.  So the
 *    server accepts itself (a uv_poll on its listening socket) only while
 *    connlimit_admit() allows, and hands each accepted socket to MHD
 *    (MHD_add_connection; the daemon has no listening socket).  At a cap the
 *    listener stops polling and clients wait in the kernel's backlog, as for
 *    the control socket;
 *  - [daemon] client_timeout is a deadline, not an idle timeout: a
 *    connection must complete a request (and take its answer) within it,
 *    counted from its accept or its last answered request.  MHD's own
 *    timeout restarts on every byte, so a client sending a head a byte at a
 *    time would never end; the server shuts such a socket down (shutdown(2),
 *    MHD then sees the end and closes it) from a sweep timer.
 *  - request heads are bounded by MHD's per-connection memory pool
 *    (HTTP_MEM_LIMIT): a larger head is answered 431 by MHD and closed.
 *
 * Every server answers GET and HEAD only (others: 405 with Allow: GET,
 * HEAD, after their body was read); the handler sees the path without the
 * query.
 */
#ifndef BPFLB_CORE_HTTP_H
#define BPFLB_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Per-connection memory of MHD: bounds a request head (and its parsed headers). */
#define HTTP_MEM_LIMIT 8192

struct bpflb_http_server;

/* What a handler answers; the server sends it and frees body. */
struct bpflb_http_answer {
	unsigned int status;
	const char *ctype; /* Content-Type; NULL with a NULL body */
	char *body;	   /* malloc'ed; NULL: a "STATUS Reason\n" text body */
	size_t len;
	bool nosniff; /* X-Content-Type-Options: nosniff (kube-proxy sends it) */
};

/*
 * Called on the loop for each GET/HEAD request; path has no query.  Fill a;
 * leaving it untouched answers 404.
 */
typedef void (*bpflb_http_fn)(void *ctx, const char *path, struct bpflb_http_answer *a);

/*
 * Parse "ADDR:PORT" (IPv4, port 1-65535) into addr (network order) and port
 * (host order).  -EINVAL when it is not that.
 */
int bpflb_http_parse_listen(const char *s, uint32_t *addr, uint16_t *port);

/*
 * Listen on addr:port (addr network order, 0: every address) and serve
 * requests with fn(ctx, ...) on loop.  Returns 0 or -errno of socket, bind or
 * listen (the caller names what it wanted to serve).  Its connections count
 * in [daemon] max_connections and max_connections_per_listener (connlimit.h).
 */
int bpflb_http_start(uv_loop_t *loop, uint32_t addr, uint16_t port, bpflb_http_fn fn, void *ctx,
		     struct bpflb_http_server **out);
/* Change what the server calls (lb/healthz.c keeps a port when its service changes). */
void bpflb_http_set_ctx(struct bpflb_http_server *s, void *ctx);
/*
 * Close the listener and every connection now; memory goes once the loop ran
 * the close callbacks.  NULL: nothing.
 */
void bpflb_http_stop(struct bpflb_http_server *s);

#endif
