/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Health check node ports of externalTrafficPolicy=Local services, as
 * kube-proxy serves them: an external load balancer asks every node
 * "GET /" on the service's healthCheckNodePort and sends traffic only to the
 * nodes that answer 200, i.e. that have a local ready endpoint.
 *
 *   200 (local endpoints > 0) or 503 (none), headers
 *   Content-Type: application/json and X-Content-Type-Options: nosniff, body
 *   {"service":{"namespace":"NS","name":"NAME"},"localEndpoints":N,"serviceProxyHealthy":true}
 *
 * Any path is answered (kube-proxy does the same).  HTTP is libmicrohttpd's
 * (ops/http.h: GET and HEAD only, keep-alive and pipelining, heads up to
 * HTTP_MEM_LIMIT, [daemon] client_timeout per request); connections are
 * capped per port and in all (ops/connlimit.h).
 */
#ifndef BPFLB_CORE_HEALTHZ_H
#define BPFLB_CORE_HEALTHZ_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <bpflb/config.h>

struct bpflb_healthz;

struct bpflb_healthz_svc {
	const char *ns;
	const char *name;
	uint32_t addr;		  /* bind address, network order; 0 = every address */
	uint16_t port;		  /* host order */
	uint32_t local_endpoints; /* ready endpoints on this node */
};

int bpflb_healthz_new(uv_loop_t *loop, struct bpflb_healthz **out);

/*
 * Make the listeners match svc[0..n): keep those whose (addr, port) stays and
 * update what they answer, bind the new ones, close the others (and their
 * connections).  Binding happens first: when one fails, the listeners bound by
 * this call are closed again, nothing else changed, err names the address.
 */
int bpflb_healthz_update(struct bpflb_healthz *h, const struct bpflb_healthz_svc *svc, size_t n,
			 struct bpflb_err *err);

size_t bpflb_healthz_count(const struct bpflb_healthz *h);

/* Close every handle; memory goes once the loop ran the close callbacks. */
void bpflb_healthz_free(struct bpflb_healthz *h);

#endif
