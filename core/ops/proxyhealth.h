/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kube-proxy's health endpoints on [daemon] healthz_listen (default
 * 0.0.0.0:10256, kube-proxy's port), for the cloud load balancers and
 * kubelet probes that already ask kube-proxy (pkg/proxy/healthcheck/
 * proxier_health.go) the same questions:
 *
 *   GET /healthz  200 or 503, Content-Type: application/json,
 *                 X-Content-Type-Options: nosniff, body (kube-proxy's, spacing
 *                 included)
 *                   {"lastUpdated": "T","currentTime": "T", "nodeEligible": true}
 *   GET /livez    the same check and body without nodeEligible
 *   other paths   404; methods other than GET and HEAD: 405
 *
 * Healthy: the datapath has been programmed (a reconcile succeeded) and the
 * last successful reconcile (start, reload, control edit or the periodic
 * drift check, which verifies and repairs the pinned maps) is at most
 * max_age old.  kube-proxy allows twice its sync period; bpflbd's periodic
 * sync is the drift check, so max_age is [daemon] healthz_max_sync_age or, by
 * default, 2 x reconcile_interval (no limit with the drift check off).  A
 * drift check that keeps failing, or a loop that no longer turns (then
 * nothing answers), turns the node unhealthy.
 *
 * As kube-proxy does, lastUpdated equals currentTime in a 200 answer (its
 * older releases reported the last loop run) and is the last successful
 * sync in a 503; times are written the way Go prints a time.Time, in UTC.
 * bpflb has no node-deletion signal: nodeEligible is always true, so
 * /healthz and /livez agree.  The metric
 * bpflb_healthz_last_sync_timestamp_seconds gives the real last sync.
 */
#ifndef BPFLB_CORE_PROXYHEALTH_H
#define BPFLB_CORE_PROXYHEALTH_H

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include <bpflb/config.h>

/* The default of [daemon] healthz_listen; "off" serves nothing. */
#define PROXYHEALTH_DEF_LISTEN "0.0.0.0:10256"

/* A reconcile succeeded: the datapath is as desired now (core/reconcile.c). */
void proxyhealth_synced(void);
/* The last sync may be this old and still healthy; 0: no limit (start, reload). */
void proxyhealth_set_max_age(uint64_t ms);

/* Serve /healthz and /livez on listen (ADDR:PORT) on loop. */
int proxyhealth_listen(uv_loop_t *loop, const char *listen, struct bpflb_err *err);
/* Stop serving (nothing when not serving). */
void proxyhealth_close(void);

/*
 * Metrics collector (registered by core/daemon_ops.c):
 *   bpflb_healthz_last_sync_timestamp_seconds  gauge, last successful reconcile
 *   bpflb_healthz_requests_total{path,code}   counter, /healthz and /livez answers
 */
void proxyhealth_metrics(FILE *f, void *ctx);

#endif
