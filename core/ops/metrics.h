/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Prometheus metrics over HTTP on [daemon] metrics_listen (ADDR:PORT), served
 * on the daemon's loop.  GET /metrics answers the text exposition format
 * 0.0.4; every answer closes the connection.  The request head is read with
 * the reader healthz.c uses (http.h); heads over 8 KiB get 431.  Connections
 * are capped and must be done within [daemon] client_timeout (connlimit.h).
 *
 * Metric names are listed in metrics.c, above metrics_render().
 */
#ifndef BPFLB_CORE_METRICS_H
#define BPFLB_CORE_METRICS_H

#include <stddef.h>

#include <bpflb/config.h>

struct bpflb_daemon;
struct bpflb_metrics;

int metrics_open(struct bpflb_daemon *d, const char *listen, struct bpflb_metrics **out,
		 struct bpflb_err *err);
void metrics_close(struct bpflb_metrics *m);

/* The exposition text, malloc'ed (NULL on ENOMEM); *len its length. */
char *metrics_render(struct bpflb_daemon *d, size_t *len);

#endif
