/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The load-balancing control plane's part of the operations surface: its
 * control commands (services_ctl.c: service.*, backend.*, ct.*, nat.list,
 * maglev.show), its metrics (services_metrics.c) and its part of `status`,
 * registered on the registries of core/ops/ by the daemon (daemon_ops.c).
 * They read and change the service state through services.h and
 * services_query.h only.
 */
#ifndef BPFLB_CORE_SERVICES_OPS_H
#define BPFLB_CORE_SERVICES_OPS_H

#include <stdint.h>
#include <json-c/json.h>

#include <bpflb/config.h>

struct bpflb_services;
struct bpflb_control;
struct bpflb_metrics;
struct ct_snapshot;

/* What the commands and metrics answer from; it must outlive the registries. */
struct lb_ops {
	struct bpflb_services *services; /* NULL: not open (commands answer -EAGAIN) */
	struct ct_snapshot *ct_counts;	 /* NULL: no conntrack counts (shown as null) */
};

int lb_control_register(struct bpflb_control *ctl, struct lb_ops *lo, struct bpflb_err *err);
int lb_metrics_register(struct bpflb_metrics *m, struct lb_ops *lo, struct bpflb_err *err);
/*
 * status's "services", "runtime" and "conntrack" (ct_capacity: bpflb_ct's
 * max_entries) into o; nothing when the service state is not open.
 */
void lb_status_json(const struct lb_ops *lo, uint32_t ct_capacity, json_object *o);

#endif
