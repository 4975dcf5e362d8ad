// SPDX-License-Identifier: GPL-2.0-only
/*
 * The load-balancing control plane's control commands (services_ops.h):
 * listings from the applied model and the pinned maps (services_query.h),
 * and `ct flush`.  The edits of services and backend states are the
 * overlay's (core/reconcile_cmds.c): they go through bpflb_reconcile().
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "lb/ct_snapshot.h"
#include "lb/services.h"
#include "lb/services_ops.h"
#include "lb/services_query.h"
#include "log.h"
#include "ops/control.h"
#include "ops/wire.h"

static int need_services(const struct lb_ops *lo, struct bpflb_err *err)
{
	if (!lo->services)
		return bpflb_err_set(err, "the service state is not open"), -EAGAIN;
	return 0;
}

/* --service, --addr, --proto and --limit of the ct commands (observe reads them alike). */
static int parse_selection(const struct lb_ops *lo, json_object *args, struct svcq_ct_filter *f,
			   struct bpflb_err *err)
{
	const char *svc, *addr, *proto;
	uint64_t limit = 0;
	int ret;

	memset(f, 0, sizeof(*f));
	if ((ret = control_arg_str(args, "service", false, &svc, err)) ||
	    (ret = control_arg_str(args, "addr", false, &addr, err)) ||
	    (ret = control_arg_str(args, "proto", false, &proto, err)) ||
	    (ret = control_arg_uint(args, "limit", UINT32_MAX, &limit, err)))
		return ret;
	f->limit = (uint32_t)limit;
	if (svc) {
		ret = need_services(lo, err);
		if (!ret)
			ret = svcq_ct_filter_service(lo->services, svc, f, err);
		if (ret)
			return ret;
	}
	if (addr) {
		if (bpflb_parse_ipv4(addr, &f->addr))
			return bpflb_err_set(err, "addr '%s' is not an IPv4 address", addr),
			       -EINVAL;
		f->by_addr = true;
	}
	/* conntrack and SNAT hold TCP and UDP flows only: "icmp" would match nothing */
	if (proto && (wire_proto_parse(proto, &f->proto) ||
		      (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)))
		return bpflb_err_set(err, "proto '%s' is not tcp or udp", proto), -EINVAL;
	return 0;
}

/* --- status ---------------------------------------------------------------- */

/*
 * Counts of bpflb_ct from the last snapshot (ct_snapshot.h), never a walk of
 * the map here: "entries" and the counts by protocol, how old they are and
 * how long the count took.  null until the first count finished.
 */
static void ct_counts_json(const struct lb_ops *lo, json_object *o)
{
	struct ct_counts cnt = {0};
	uint64_t age = 0;
	bool have;

	if (lo->ct_counts)
		ct_snapshot_get(lo->ct_counts, &cnt, &age);
	have = cnt.taken_ms != 0;
	json_object_object_add(o, "entries", have ? json_object_new_uint64(cnt.entries) : NULL);
	json_object_object_add(o, "tcp", have ? json_object_new_uint64(cnt.tcp) : NULL);
	json_object_object_add(o, "udp", have ? json_object_new_uint64(cnt.udp) : NULL);
	json_object_object_add(o, "other", have ? json_object_new_uint64(cnt.other) : NULL);
	json_object_object_add(o, "snapshot_age_ms", have ? json_object_new_uint64(age) : NULL);
	json_object_object_add(o, "snapshot_walk_ms",
			       have ? json_object_new_uint64(cnt.walk_ms) : NULL);
	json_object_object_add(o, "snapshot_error",
			       cnt.error ? json_object_new_string(strerror(-cnt.error)) : NULL);
}

void lb_status_json(const struct lb_ops *lo, uint32_t ct_capacity, json_object *o)
{
	json_object *x, *a;
	struct bpflb_services_counts cnt;
	struct bpflb_services_gc gc;
	const char *name;
	uint32_t addr;
	uint16_t port;
	uint8_t state;
	bool deleted;
	char b[32];

	if (!lo->services)
		return;

	bpflb_services_counts(lo->services, &cnt);
	x = json_object_new_object();
	json_object_object_add(x, "services", json_object_new_int64(cnt.services));
	json_object_object_add(x, "frontends", json_object_new_int64(cnt.frontends));
	json_object_object_add(x, "service_ports", json_object_new_int64(cnt.svc_ports));
	json_object_object_add(x, "backends", json_object_new_int64(cnt.backends));
	json_object_object_add(x, "maglev_tables", json_object_new_int64(cnt.maglev));
	json_object_object_add(x, "health_checks", json_object_new_int64(cnt.healthz));
	json_object_object_add(o, "services", x);

	x = json_object_new_object();
	a = json_object_new_array();
	for (size_t i = 0; (name = bpflb_services_runtime_at(lo->services, i, &deleted)); i++) {
		json_object *r = json_object_new_object();

		json_object_object_add(r, "name", json_object_new_string(name));
		json_object_object_add(r, "change",
				       json_object_new_string(deleted ? "deleted" : "set"));
		json_object_array_add(a, r);
	}
	json_object_object_add(x, "services", a);
	a = json_object_new_array();
	for (size_t i = 0; bpflb_services_override_at(lo->services, i, &addr, &port, &state); i++) {
		json_object *r = json_object_new_object();

		json_object_object_add(
		    r, "backend", json_object_new_string(wire_addrport(addr, port, b, sizeof(b))));
		json_object_object_add(r, "state", json_object_new_string(svcq_state_name(state)));
		json_object_array_add(a, r);
	}
	json_object_object_add(x, "backend_states", a);
	json_object_object_add(o, "runtime", x);

	bpflb_services_gc_stats(lo->services, &gc);
	x = json_object_new_object();
	ct_counts_json(lo, x);
	json_object_object_add(x, "capacity", json_object_new_int64(ct_capacity));
	json_object_object_add(x, "gc_runs", json_object_new_uint64(gc.runs));
	json_object_object_add(x, "gc_expired", json_object_new_uint64(gc.total.expired));
	json_object_object_add(x, "gc_orphaned", json_object_new_uint64(gc.total.orphaned));
	json_object_object_add(o, "conntrack", x);
}

/* --- commands ------------------------------------------------------------- */

static int h_service_list(void *ctx, struct control_conn *c, json_object *args, json_object **data,
			  struct bpflb_err *err)
{
	struct lb_ops *lo = ctx;

	*data = svcq_services(lo->services, NULL, err);
	return 0;
}

static int h_service_get(void *ctx, struct control_conn *c, json_object *args, json_object **data,
			 struct bpflb_err *err)
{
	struct lb_ops *lo = ctx;
	const char *name;
	int ret = control_arg_str(args, "name", true, &name, err);

	if (ret)
		return ret;
	*data = svcq_services(lo->services, name, err);
	return *data ? 0 : -ENOENT;
}

static int h_backend_list(void *ctx, struct control_conn *c, json_object *args, json_object **data,
			  struct bpflb_err *err)
{
	struct lb_ops *lo = ctx;

	*data = svcq_backends(lo->services);
	return 0;
}

static int h_ct_list(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		     struct bpflb_err *err)
{
	struct lb_ops *lo = ctx;
	struct svcq_ct_filter f;
	int ret;

	if ((ret = need_services(lo, err)) || (ret = parse_selection(lo, args, &f, err)))
		return ret;
	return svcq_ct_list(lo->services, &f, data, err);
}

static int h_nat_list(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		      struct bpflb_err *err)
{
	struct lb_ops *lo = ctx;
	struct svcq_ct_filter f;
	int ret;

	if ((ret = need_services(lo, err)) || (ret = parse_selection(lo, args, &f, err)))
		return ret;
	f.nat_only = true;
	return svcq_ct_list(lo->services, &f, data, err);
}

static int h_ct_flush(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		      struct bpflb_err *err)
{
	struct lb_ops *lo = ctx;
	struct svcq_ct_filter f;
	uint64_t n = 0;
	int ret;

	if ((ret = need_services(lo, err)) || (ret = parse_selection(lo, args, &f, err)))
		return ret;
	ret = svcq_ct_flush(lo->services, &f, &n, err);
	if (ret)
		return ret;
	pr_notice("control: conntrack flush removed %llu entries", (unsigned long long)n);
	*data = json_object_new_object();
	json_object_object_add(*data, "deleted", json_object_new_uint64(n));
	return 0;
}

static int h_maglev_show(void *ctx, struct control_conn *c, json_object *args, json_object **data,
			 struct bpflb_err *err)
{
	struct lb_ops *lo = ctx;
	const char *spec;
	int ret = control_arg_str(args, "service", true, &spec, err);

	if (ret || (ret = need_services(lo, err)))
		return ret;
	*data = svcq_maglev(lo->services, spec, err);
	return *data ? 0 : -ENOENT;
}

static const struct bpflb_control_cmd lb_cmds[] = {
    {"service.list", h_service_list, "every service with ports, frontends, backends"},
    {"service.get", h_service_get, "one service: {name}"},
    {"backend.list", h_backend_list, "every backend in bpflb_backends"},
    {"ct.list", h_ct_list, "conntrack entries: {[service], [addr], [proto], [limit]}"},
    {"ct.flush", h_ct_flush, "delete conntrack entries: {[service], [addr], [proto]}"},
    {"nat.list", h_nat_list, "SNAT mappings: {[service], [addr], [proto], [limit]}"},
    {"maglev.show", h_maglev_show, "Maglev table summary: {service: NAME[/PORT]}"},
    {NULL},
};

int lb_control_register(struct bpflb_control *ctl, struct lb_ops *lo, struct bpflb_err *err)
{
	return bpflb_control_register(ctl, lb_cmds, lo, err);
}
