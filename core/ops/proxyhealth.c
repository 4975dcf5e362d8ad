// SPDX-License-Identifier: GPL-2.0-only
/* kube-proxy's /healthz and /livez (see proxyhealth.h), served by http.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops/http.h"
#include "ops/metrics.h"
#include "ops/proxyhealth.h"

enum { PH_HEALTHZ, PH_LIVEZ, PH_NPATHS };

static struct {
	struct bpflb_http_server *srv;
	bool synced;
	struct timespec last_mono, last_real; /* the last successful reconcile */
	uint64_t max_age_ms;
	uint64_t answers[PH_NPATHS][2]; /* [path][0: 200, 1: 503] */
} ph;

static const char *const ph_paths[PH_NPATHS] = {"/healthz", "/livez"};

void proxyhealth_synced(void)
{
	clock_gettime(CLOCK_MONOTONIC, &ph.last_mono);
	clock_gettime(CLOCK_REALTIME, &ph.last_real);
	ph.synced = true;
}

void proxyhealth_set_max_age(uint64_t ms)
{
	ph.max_age_ms = ms;
}

static uint64_t ts_ms(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_nsec / 1000000;
}

static bool healthy(void)
{
	struct timespec now;

	if (!ph.synced)
		return false;
	if (!ph.max_age_ms)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return ts_ms(&now) - ts_ms(&ph.last_mono) <= ph.max_age_ms;
}

/*
 * A time as Go's time.Time.String() writes it in UTC (what kube-proxy's %q
 * prints, without the monotonic clock reading): "2006-01-02 15:04:05.5 +0000
 * UTC", fractional seconds without trailing zeros.
 */
static void go_time(char *buf, size_t size, const struct timespec *t)
{
	char frac[16] = "";
	struct tm tm;
	size_t n;

	gmtime_r(&t->tv_sec, &tm);
	if (t->tv_nsec) {
		snprintf(frac, sizeof(frac), ".%09ld", t->tv_nsec);
		for (n = strlen(frac); frac[n - 1] == '0'; n--)
			frac[n - 1] = '\0';
	}
	n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, size - n, "%s +0000 UTC", frac);
}

static void ph_request(void *ctx, const char *path, struct bpflb_http_answer *a)
{
	char last[64], now[64];
	struct timespec rnow;
	bool ok = healthy();
	int p, n;

	for (p = 0; p < PH_NPATHS; p++)
		if (!strcmp(path, ph_paths[p]))
			break;
	if (p == PH_NPATHS)
		return; /* 404 */
	clock_gettime(CLOCK_REALTIME, &rnow);
	go_time(now, sizeof(now), &rnow);
	/* kube-proxy: lastUpdated is "now" while healthy, the last sync otherwise */
	if (ok)
		snprintf(last, sizeof(last), "%s", now);
	else if (ph.synced)
		go_time(last, sizeof(last), &ph.last_real);
	else
		snprintf(last, sizeof(last), "0001-01-01 00:00:00 +0000 UTC"); /* Go's zero time */
	if (p == PH_HEALTHZ)
		n = asprintf(&a->body,
			     "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\", "
			     "\"nodeEligible\": true}",
			     last, now);
	else
		n = asprintf(&a->body, "{\"lastUpdated\": \"%s\",\"currentTime\": \"%s\"}", last,
			     now);
	if (n < 0) {
		a->body = NULL;
		a->status = 500;
		return;
	}
	a->len = (size_t)n;
	a->status = ok ? 200 : 503;
	a->ctype = "application/json";
	a->nosniff = true;
	ph.answers[p][!ok]++;
}

int proxyhealth_listen(uv_loop_t *loop, const char *listen, struct bpflb_err *err)
{
	uint32_t addr;
	uint16_t port;
	int ret;

	if (ph.srv)
		return bpflb_err_set(err, "healthz is served already"), -EALREADY;
	if (bpflb_http_parse_listen(listen, &addr, &port))
		return bpflb_err_set(err, "healthz_listen '%s' is not ADDR:PORT", listen), -EINVAL;
	ret = bpflb_http_start(loop, addr, port, ph_request, NULL, &ph.srv);
	if (ret)
		return bpflb_err_set(err,
				     "cannot serve /healthz on %s: %s; set [daemon] healthz_listen "
				     "to a free ADDR:PORT, or to off",
				     listen, strerror(-ret)),
		       ret;
	return 0;
}

void proxyhealth_close(void)
{
	bpflb_http_stop(ph.srv);
	ph.srv = NULL;
}

void proxyhealth_metrics(FILE *f, void *ctx)
{
	bpflb_metrics_head(f, "bpflb_healthz_last_sync_timestamp_seconds", "gauge",
			   "Time of the last successful reconcile (what /healthz judges; 0: none "
			   "yet).");
	fprintf(f, "bpflb_healthz_last_sync_timestamp_seconds %lld.%03ld\n",
		(long long)ph.last_real.tv_sec, ph.last_real.tv_nsec / 1000000);
	bpflb_metrics_head(f, "bpflb_healthz_requests_total", "counter",
			   "Answers of /healthz and /livez by code.");
	for (int p = 0; p < PH_NPATHS; p++)
		for (int k = 0; k < 2; k++)
			fprintf(f, "bpflb_healthz_requests_total{path=\"%s\",code=\"%d\"} %llu\n",
				ph_paths[p], k ? 503 : 200, (unsigned long long)ph.answers[p][k]);
}
