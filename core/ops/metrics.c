// SPDX-License-Identifier: GPL-2.0-only
/*
 * The metrics endpoint (metrics.h): the exposition text written at each
 * scrape by the collectors their owners registered, served by http.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ops/connlimit.h"
#include "ops/http.h"
#include "ops/metrics.h"

struct mx_collector {
	const char *name;
	bpflb_metrics_fn fn;
	void *ctx;
};

struct bpflb_metrics {
	struct bpflb_http_server *srv; /* NULL: not served */
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

/* --- HTTP (http.c) ------------------------------------------------------------------ */

static void mx_request(void *ctx, const char *path, struct bpflb_http_answer *a)
{
	struct bpflb_metrics *m = ctx;

	if (strcmp(path, "/metrics"))
		return; /* 404 */
	m->scrapes++;
	a->body = metrics_render(m, &a->len);
	if (!a->body) {
		a->status = 500;
		return;
	}
	a->status = 200;
	a->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

int metrics_listen(struct bpflb_metrics *m, uv_loop_t *loop, const char *listen,
		   struct bpflb_err *err)
{
	uint32_t addr;
	uint16_t port;
	int ret;

	if (m->srv)
		return bpflb_err_set(err, "metrics are served already"), -EALREADY;
	if (bpflb_http_parse_listen(listen, &addr, &port))
		return bpflb_err_set(err, "metrics_listen '%s' is not ADDR:PORT", listen), -EINVAL;
	ret = bpflb_http_start(loop, addr, port, mx_request, m, &m->srv);
	if (ret)
		return bpflb_err_set(err, "cannot serve metrics on %s: %s", listen, strerror(-ret)),
		       ret;
	return 0;
}

void metrics_close(struct bpflb_metrics *m)
{
	if (!m)
		return;
	bpflb_http_stop(m->srv);
	free(m);
}
