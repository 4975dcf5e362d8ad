/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Prometheus metrics over HTTP on [daemon] metrics_listen (ADDR:PORT), served
 * on the daemon's loop by http.h (libmicrohttpd).  GET /metrics answers the
 * text exposition format 0.0.4.  Connections are capped and must be done
 * within [daemon] client_timeout (connlimit.h).
 *
 * The exposition is made of collectors that their owners register
 * (bpflb_metrics_register), called at each scrape in the order they were
 * registered (core/daemon_ops.c, daemon_ops_register, makes that order):
 *   core/daemon_ops.c           build, start, config, reloads, plugins (also the
 *                               plugins' own), the datapath's drop counters
 *   core/lb/services_metrics.c  services, backends, conntrack, map fill
 *   core/ops/flows.c            flow events
 *   core/ops/control.c          control socket
 *   core/ops/proxyhealth.c      /healthz: last sync, answers
 *   metrics.c itself, last      process_* (Prometheus' standard names), listener
 *                               connections, scrapes
 * Each collector lists its metrics above its function.  A collector writes
 * whole families (# HELP, # TYPE, then its samples) with bpflb_metrics_head()
 * and escapes label values with bpflb_metrics_label(); all of a family's
 * samples follow its head, never another family's (parsers read samples away
 * from their TYPE line as untyped families).  Every name starts with bpflb_
 * (the process_* of metrics.c excepted).  It runs on the loop and reads what it reports at that moment.
 */
#ifndef BPFLB_CORE_METRICS_H
#define BPFLB_CORE_METRICS_H

#include <stddef.h>
#include <stdio.h>
#include <uv.h>

#include <bpflb/config.h>

#define METRICS_MAX_COLLECTORS 32

struct bpflb_metrics;

typedef void (*bpflb_metrics_fn)(FILE *f, void *ctx);

/* An empty registry, serving nothing yet; NULL on ENOMEM. */
struct bpflb_metrics *bpflb_metrics_new(void);
/*
 * Add a collector; name says whose it is (errors, the log).  -EEXIST when the
 * name is taken, -ENOSPC beyond METRICS_MAX_COLLECTORS (err set).  ctx must
 * outlive the registry.
 */
int bpflb_metrics_register(struct bpflb_metrics *m, const char *name, bpflb_metrics_fn fn,
			   void *ctx, struct bpflb_err *err);

/* "# HELP name help" and "# TYPE name type" of a family. */
void bpflb_metrics_head(FILE *f, const char *name, const char *type, const char *help);
/* A label value with \, " and newline escaped. */
void bpflb_metrics_label(FILE *f, const char *value);

/* Serve /metrics on listen (ADDR:PORT) on loop. */
int metrics_listen(struct bpflb_metrics *m, uv_loop_t *loop, const char *listen,
		   struct bpflb_err *err);
/* Close the listener and free m (NULL: nothing). */
void metrics_close(struct bpflb_metrics *m);

/* The exposition text, malloc'ed (NULL on ENOMEM); *len its length. */
char *metrics_render(struct bpflb_metrics *m, size_t *len);

#endif
