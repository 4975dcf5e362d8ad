/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The small HTTP/1.x request reader shared by the health check node ports
 * (healthz.c) and the metrics endpoint (metrics.c).  Their clients (load
 * balancer probes, Prometheus) send short request heads and no bodies, so this
 * is not a general HTTP parser: it finds the end of a request head, checks the
 * request line and the few headers that matter (Connection, Content-Length,
 * Transfer-Encoding), and refuses everything it does not understand.
 */
#ifndef BPFLB_CORE_HTTP_H
#define BPFLB_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bpflb_http_req {
	const char *method; /* upper-case token, e.g. "GET" */
	const char *target; /* request target as sent, e.g. "/metrics" */
	bool http11;	    /* HTTP/1.1 (else HTTP/1.0) */
	bool keep_alive;    /* the connection may serve another request */
	uint64_t content_length;
};

/* Index just past the blank line that ends the request head in b[0..len), or 0. */
size_t bpflb_http_head_end(const char *b, size_t len);

/*
 * Parse a request head (NUL-terminated; modified in place, req points into
 * it).  Returns 0, 400 for a malformed head or a chunked body, 413 for a
 * Content-Length above max_body.
 */
int bpflb_http_parse(char *head, uint64_t max_body, struct bpflb_http_req *req);

#endif
