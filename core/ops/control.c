// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control socket (protocol in control.h): a libuv pipe server, the
 * newline-delimited JSON framing, and one handler per command in
 * control_cmds[].
 *
 * Handlers answer from the daemon's state and never block the loop for long:
 * the slowest are the conntrack listings, one batched map read.  Commands that
 * change something (service set|delete, backend set-state, ct flush, reload)
 * go through the same transactions as the configuration: on error nothing
 * changed and the error says why.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "ops/connlimit.h"
#include "ops/control.h"
#include "lb/ct_snapshot.h"
#include "daemon.h"
#include "ops/flows.h"
#include "log.h"
#include "ops/metrics.h"
#include "lb/services.h"
#include "lb/services_query.h"

struct control_conn {
	uv_pipe_t pipe;
	uv_timer_t timer; /* client_timeout: closes a client that makes no progress */
	struct bpflb_control *ctl;
	struct control_conn *next, **pprev;
	int open_handles;
	bool closing;
	bool streaming;
	bool close_after_write;
	bool throttled; /* not read until its unread answers shrink */
	unsigned int pending;
	size_t len;
	char buf[CONTROL_MAX_REQUEST];
};

struct control_write {
	uv_write_t req;
	struct control_conn *c;
	size_t len;
	char data[];
};

struct bpflb_control {
	uv_pipe_t srv;
	struct connlimit_listener lim;
	struct bpflb_daemon *d;
	struct control_conn *conns;
	unsigned int nconns;
	uint64_t requests;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* --- helpers for handlers --------------------------------------------------- */

/* String argument key; NULL when absent.  -EINVAL (err set) when not a string. */
static int arg_str(json_object *args, const char *key, bool required, const char **out,
		   struct bpflb_err *err)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			return bpflb_err_set(err, "argument '%s' is required", key), -EINVAL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return bpflb_err_set(err, "argument '%s' must be a string", key), -EINVAL;
	*out = json_object_get_string(v);
	return 0;
}

static int arg_uint(json_object *args, const char *key, uint64_t max, uint64_t *out,
		    struct bpflb_err *err)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return bpflb_err_set(err, "argument '%s' must be an integer", key), -EINVAL;
	n = json_object_get_int64(v);
	if (n < 0 || (uint64_t)n > max)
		return bpflb_err_set(err, "argument '%s' must be 0-%llu", key,
				     (unsigned long long)max),
		       -EINVAL;
	*out = (uint64_t)n;
	return 0;
}

static int arg_bool(json_object *args, const char *key, bool *out, struct bpflb_err *err)
{
	json_object *v;

	if (!json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return bpflb_err_set(err, "argument '%s' must be true or false", key), -EINVAL;
	*out = json_object_get_boolean(v);
	return 0;
}

static int need_services(struct bpflb_daemon *d, struct bpflb_err *err)
{
	if (!d->services)
		return bpflb_err_set(err, "the service state is not open"), -EAGAIN;
	return 0;
}

/* --service, --addr, --proto (and --limit) of ct and observe. */
static int parse_selection(struct bpflb_daemon *d, json_object *args, struct svcq_ct_filter *f,
			   struct bpflb_err *err)
{
	const char *svc, *addr, *proto;
	uint64_t limit = 0;
	int ret;

	memset(f, 0, sizeof(*f));
	if ((ret = arg_str(args, "service", false, &svc, err)) ||
	    (ret = arg_str(args, "addr", false, &addr, err)) ||
	    (ret = arg_str(args, "proto", false, &proto, err)) ||
	    (ret = arg_uint(args, "limit", UINT32_MAX, &limit, err)))
		return ret;
	f->limit = (uint32_t)limit;
	if (svc) {
		ret = need_services(d, err);
		if (!ret)
			ret = svcq_ct_filter_service(d->services, svc, f, err);
		if (ret)
			return ret;
	}
	if (addr) {
		if (bpflb_parse_ipv4(addr, &f->addr))
			return bpflb_err_set(err, "addr '%s' is not an IPv4 address", addr),
			       -EINVAL;
		f->by_addr = true;
	}
	if (proto && svcq_proto_parse(proto, &f->proto))
		return bpflb_err_set(err, "proto '%s' is not tcp, udp or icmp", proto), -EINVAL;
	return 0;
}

/* --- handlers ------------------------------------------------------------------- */

static const char *plugin_state_name(enum plugin_state s)
{
	switch (s) {
	case PLUGIN_LOADED:
		return "loaded";
	case PLUGIN_READY:
		return "ready";
	case PLUGIN_ATTACHED:
		return "attached";
	case PLUGIN_FAILED:
		return "failed";
	}
	return "unknown";
}

static json_object *plugins_json(struct bpflb_daemon *d)
{
	json_object *arr = json_object_new_array();

	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(c->desc->name));
		json_object_object_add(
		    o, "version", json_object_new_string(c->desc->version ? c->desc->version : ""));
		json_object_object_add(o, "kind",
				       json_object_new_string(c->desc->kind == BPFLB_PLUGIN_MODE
								  ? "mode"
								  : "feature"));
		json_object_object_add(o, "state",
				       json_object_new_string(plugin_state_name(c->state)));
		json_object_object_add(o, "active",
				       json_object_new_boolean(c->state == PLUGIN_READY ||
							       c->state == PLUGIN_ATTACHED));
		json_object_object_add(o, "map_schema_version",
				       json_object_new_int64(c->desc->map_schema_version));
		json_object_object_add(o, "path", json_object_new_string(c->path ? c->path : ""));
		json_object_object_add(
		    o, "description",
		    json_object_new_string(c->desc->description ? c->desc->description : ""));
		json_object_object_add(o, "last_error",
				       c->last_error[0] ? json_object_new_string(c->last_error)
							: json_object_new_null());
		json_object_array_add(arr, o);
	}
	return arr;
}

static int h_plugin_list(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			 json_object **data, struct bpflb_err *err)
{
	*data = plugins_json(d);
	return 0;
}

static void add_time(json_object *o, const char *key, time_t t)
{
	char b[32];
	struct tm tm;

	if (!t) {
		json_object_object_add(o, key, json_object_new_null());
		return;
	}
	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, key, json_object_new_string(b));
}

/*
 * Counts of bpflb_ct from the last snapshot (ct_snapshot.h), never a walk of
 * the map here: "entries" and the counts by protocol, how old they are and
 * how long the count took.  null until the first count finished.
 */
static void ct_counts_json(struct bpflb_daemon *d, json_object *o)
{
	struct ct_counts cnt = {0};
	uint64_t age = 0;
	bool have;

	if (d->ct_counts)
		ct_snapshot_get(d->ct_counts, &cnt, &age);
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

static int h_status(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
		    json_object **data, struct bpflb_err *err)
{
	const struct bpflb_cfg_section *ds = d->cfg ? bpflb_cfg_section(d->cfg, "daemon", 0) : NULL;
	json_object *o = json_object_new_object(), *x, *a;
	time_t now = time(NULL);

	json_object_object_add(o, "version", json_object_new_string(BPFLB_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	add_time(o, "started_at", d->started_at);
	json_object_object_add(o, "uptime_s",
			       json_object_new_int64(d->started_at ? now - d->started_at : 0));
	json_object_object_add(o, "mode",
			       json_object_new_string(d->mode ? d->mode->desc->name : "none"));
	json_object_object_add(
	    o, "node",
	    json_object_new_string(
		d->cfg ? bpflb_cfg_str(bpflb_cfg_section(d->cfg, "node", 0), "name") : ""));
	json_object_object_add(o, "features",
			       json_object_new_string(ds ? bpflb_cfg_str(ds, "features") : ""));
	json_object_object_add(o, "plugins", plugins_json(d));
	a = json_object_new_array();
	for (int i = 0; i < d->pipeline.ndevs; i++) {
		x = json_object_new_object();
		json_object_object_add(x, "name", json_object_new_string(d->pipeline.devs[i].name));
		json_object_object_add(x, "ifindex",
				       json_object_new_int(d->pipeline.devs[i].ifindex));
		json_object_array_add(a, x);
	}
	json_object_object_add(o, "devices", a);
	json_object_object_add(o, "bpffs_root", json_object_new_string(d->pipeline.pin_root));
	/* true: the pins vanish with this process's mount namespace (ip netns exec) */
	json_object_object_add(o, "bpffs_private", json_object_new_boolean(d->bpffs_private));

	x = json_object_new_object();
	json_object_object_add(x, "path",
			       json_object_new_string(d->config_path ? d->config_path : ""));
	add_time(x, "loaded_at", d->cfg ? bpflb_config_loaded_at(d->cfg) : 0);
	json_object_object_add(o, "config", x);

	x = json_object_new_object();
	json_object_object_add(x, "ok", json_object_new_uint64(d->reloads_ok));
	json_object_object_add(x, "failed", json_object_new_uint64(d->reloads_failed));
	json_object_object_add(x, "last_error",
			       d->last_reload_error[0]
				   ? json_object_new_string(d->last_reload_error)
				   : json_object_new_null());
	json_object_object_add(o, "reloads", x);

	if (d->services) {
		struct bpflb_services_counts cnt;
		struct bpflb_services_gc gc;
		const char *name;
		uint32_t addr;
		uint16_t port;
		uint8_t state;
		bool deleted;
		char b[32];

		bpflb_services_counts(d->services, &cnt);
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
		for (size_t i = 0; (name = bpflb_services_runtime_at(d->services, i, &deleted));
		     i++) {
			json_object *r = json_object_new_object();

			json_object_object_add(r, "name", json_object_new_string(name));
			json_object_object_add(r, "change",
					       json_object_new_string(deleted ? "deleted" : "set"));
			json_object_array_add(a, r);
		}
		json_object_object_add(x, "services", a);
		a = json_object_new_array();
		for (size_t i = 0; bpflb_services_override_at(d->services, i, &addr, &port, &state);
		     i++) {
			json_object *r = json_object_new_object();

			json_object_object_add(
			    r, "backend",
			    json_object_new_string(svcq_addrport(addr, port, b, sizeof(b))));
			json_object_object_add(r, "state",
					       json_object_new_string(svcq_state_name(state)));
			json_object_array_add(a, r);
		}
		json_object_object_add(x, "backend_states", a);
		json_object_object_add(o, "runtime", x);

		bpflb_services_gc_stats(d->services, &gc);
		x = json_object_new_object();
		ct_counts_json(d, x);
		json_object_object_add(x, "capacity", json_object_new_int64(d->pipeline.sizes.ct));
		json_object_object_add(x, "gc_runs", json_object_new_uint64(gc.runs));
		json_object_object_add(x, "gc_expired", json_object_new_uint64(gc.total.expired));
		json_object_object_add(x, "gc_orphaned", json_object_new_uint64(gc.total.orphaned));
		json_object_object_add(o, "conntrack", x);
	}
	json_object_object_add(o, "flow_events", flows_stats_json(d->flows));
	x = json_object_new_object();
	json_object_object_add(x, "socket",
			       json_object_new_string(d->control ? d->control->path : ""));
	json_object_object_add(x, "clients",
			       json_object_new_int(d->control ? d->control->nconns : 0));
	json_object_object_add(o, "control", x);
	json_object_object_add(o, "metrics_listen",
			       ds && bpflb_cfg_has(ds, "metrics_listen")
				   ? json_object_new_string(bpflb_cfg_str(ds, "metrics_listen"))
				   : json_object_new_null());
	*data = o;
	return 0;
}

static int h_service_list(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			  json_object **data, struct bpflb_err *err)
{
	*data = svcq_services(d->services, NULL, err);
	return 0;
}

static int h_service_get(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			 json_object **data, struct bpflb_err *err)
{
	const char *name;
	int ret = arg_str(args, "name", true, &name, err);

	if (ret)
		return ret;
	*data = svcq_services(d->services, name, err);
	return *data ? 0 : -ENOENT;
}

static int h_backend_list(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			  json_object **data, struct bpflb_err *err)
{
	*data = svcq_backends(d->services);
	return 0;
}

static int h_ct_list(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
		     json_object **data, struct bpflb_err *err)
{
	struct svcq_ct_filter f;
	int ret;

	if ((ret = need_services(d, err)) || (ret = parse_selection(d, args, &f, err)))
		return ret;
	return svcq_ct_list(d->services, &f, data, err);
}

static int h_nat_list(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
		      json_object **data, struct bpflb_err *err)
{
	struct svcq_ct_filter f;
	int ret;

	if ((ret = need_services(d, err)) || (ret = parse_selection(d, args, &f, err)))
		return ret;
	f.nat_only = true;
	return svcq_ct_list(d->services, &f, data, err);
}

static int h_ct_flush(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
		      json_object **data, struct bpflb_err *err)
{
	struct svcq_ct_filter f;
	uint64_t n = 0;
	int ret;

	if ((ret = need_services(d, err)) || (ret = parse_selection(d, args, &f, err)))
		return ret;
	ret = svcq_ct_flush(d->services, &f, &n, err);
	if (ret)
		return ret;
	pr_notice("control: conntrack flush removed %llu entries", (unsigned long long)n);
	*data = json_object_new_object();
	json_object_object_add(*data, "deleted", json_object_new_uint64(n));
	return 0;
}

static int h_maglev_show(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			 json_object **data, struct bpflb_err *err)
{
	const char *spec;
	int ret = arg_str(args, "service", true, &spec, err);

	if (ret || (ret = need_services(d, err)))
		return ret;
	*data = svcq_maglev(d->services, spec, err);
	return *data ? 0 : -ENOENT;
}

static int h_reload(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
		    json_object **data, struct bpflb_err *err)
{
	int ret;

	if (!d->cfg)
		return bpflb_err_set(err, "the daemon is not running a configuration"), -EAGAIN;
	ret = daemon_reload(d);
	if (ret)
		return bpflb_err_set(err,
				     "reload failed, still running the previous "
				     "configuration: %s",
				     d->last_reload_error),
		       ret;
	*data = json_object_new_object();
	json_object_object_add(*data, "mode",
			       json_object_new_string(d->mode ? d->mode->desc->name : "none"));
	json_object_object_add(*data, "reloads_ok", json_object_new_uint64(d->reloads_ok));
	return 0;
}

static int h_observe(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
		     json_object **data, struct bpflb_err *err)
{
	struct flows_filter flt = {0};
	const char *verdict;
	uint64_t last = 0;
	bool follow = false;
	int ret;

	if ((ret = parse_selection(d, args, &flt.sel, err)) ||
	    (ret = arg_str(args, "verdict", false, &verdict, err)) ||
	    (ret = arg_uint(args, "last", FLOWS_RING, &last, err)) ||
	    (ret = arg_bool(args, "follow", &follow, err)))
		return ret;
	if (verdict && svcq_verdict_parse(verdict, &flt.verdict))
		return bpflb_err_set(err,
				     "verdict '%s' is not FORWARDED, DROPPED, REJECTED or AUDIT",
				     verdict),
		       -EINVAL;
	if (!d->flows)
		return bpflb_err_set(err, "flow events are not being read"), -EAGAIN;
	if (follow && !c)
		return bpflb_err_set(err, "follow needs a connection"), -EINVAL;
	*data = json_object_new_object();
	json_object_object_add(*data, "events", flows_last(d->flows, &flt, (unsigned int)last));
	json_object_object_add(*data, "stats", flows_stats_json(d->flows));
	json_object_object_add(*data, "follow", json_object_new_boolean(follow));
	if (follow) {
		ret = flows_subscribe(d->flows, c, &flt);
		if (ret) {
			json_object_put(*data);
			*data = NULL;
			return ret;
		}
		control_conn_stream(c);
	}
	return 0;
}

static int h_help(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
		  json_object **data, struct bpflb_err *err)
{
	*data = json_object_new_object();
	for (const struct control_cmd *cmd = control_cmds; cmd->name; cmd++)
		json_object_object_add(*data, cmd->name, json_object_new_string(cmd->help));
	return 0;
}

/*
 * --- commands of core/state/ (the overlay; state/state_cmds.c) -------------------------
 * Declared here until core/state/ registers them itself through the
 * registration API of the control socket.
 */
int state_cmd_service_set(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			  json_object **data, struct bpflb_err *err);
int state_cmd_service_delete(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			     json_object **data, struct bpflb_err *err);
int state_cmd_backend_set_state(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
				json_object **data, struct bpflb_err *err);
int state_cmd_overlay_list(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			   json_object **data, struct bpflb_err *err);
int state_cmd_overlay_clear(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
			    json_object **data, struct bpflb_err *err);
/* --- end of core/state/ commands --- */

const struct control_cmd control_cmds[] = {
    {"status", h_status, "version, mode, plugins, devices, config, reloads, counters"},
    {"plugin.list", h_plugin_list, "plugins loaded from plugin_dir and their state"},
    {"service.list", h_service_list, "every service with ports, frontends, backends"},
    {"service.get", h_service_get, "one service: {name}"},
    {"service.set", state_cmd_service_set,
     "add or replace a service in the overlay (kept across reloads and restarts until "
     "cleared): {name, lines: [\"key = value\"...]}"},
    {"service.delete", state_cmd_service_delete,
     "remove a service by the overlay (until cleared): {name}"},
    {"backend.list", h_backend_list, "every backend in bpflb_backends"},
    {"backend.set-state", state_cmd_backend_set_state,
     "overlay a backend's state: {addr, [port], state: "
     "active|terminating|maintenance|configured}"},
    {"overlay.list", state_cmd_overlay_list, "the overlay of control edits and its state file"},
    {"overlay.clear", state_cmd_overlay_clear,
     "back to the configuration file: {} everything, {service}, or {addr, [port]}"},
    {"ct.list", h_ct_list, "conntrack entries: {[service], [addr], [proto], [limit]}"},
    {"ct.flush", h_ct_flush, "delete conntrack entries: {[service], [addr], [proto]}"},
    {"nat.list", h_nat_list, "SNAT mappings: {[service], [addr], [proto], [limit]}"},
    {"maglev.show", h_maglev_show, "Maglev table summary: {service: NAME[/PORT]}"},
    {"reload", h_reload, "re-read the configuration file (as SIGHUP)"},
    {"observe", h_observe,
     "flow events: {[service], [verdict], [addr], [proto], [last], [follow]}"},
    {"help", h_help, "this list"},
    {NULL, NULL, NULL},
};

/* --- dispatch ---------------------------------------------------------------------- */

/*
 * "PLUGIN.CMD" for a command no core handler knows: the enabled plugin's
 * control hook answers it (bpflbctl policy list -> "policy.list").  Returns
 * NULL when no plugin claims the name.
 */
static struct bpflb_plugin_ctx *plugin_for(struct bpflb_daemon *d, const char *name,
					   const char **sub)
{
	const char *dot = strchr(name, '.');
	char pname[64];

	if (!dot || dot == name || (size_t)(dot - name) >= sizeof(pname))
		return NULL;
	snprintf(pname, sizeof(pname), "%.*s", (int)(dot - name), name);
	for (struct bpflb_plugin_ctx *p = d->plugins.head; p; p = p->next) {
		if (strcmp(p->desc->name, pname) || !BPFLB_PLUGIN_HAS(p->desc, control))
			continue;
		if (p->state != PLUGIN_READY && p->state != PLUGIN_ATTACHED)
			return NULL;
		*sub = dot + 1;
		return p;
	}
	return NULL;
}

static int h_plugin_cmd(struct bpflb_daemon *d, struct bpflb_plugin_ctx *p, const char *sub,
			json_object *args, json_object **data, struct bpflb_err *err)
{
	json_object *reply = NULL, *e;
	int ret = p->desc->control(p, sub, args, &reply);

	if (!ret) {
		*data = reply ? reply : json_object_new_object();
		return 0;
	}
	if (reply && json_object_object_get_ex(reply, "error", &e))
		bpflb_err_set(err, "%s", json_object_get_string(e));
	else
		bpflb_err_set(err, "plugin %s: %s: %s", p->desc->name, sub, strerror(-ret));
	json_object_put(reply);
	return ret < 0 ? ret : -EIO;
}

static char *reply_string(json_object *reply)
{
	char *s = strdup(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(reply);
	return s;
}

static char *error_reply(json_object *id, int ret, const char *msg)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "ok", json_object_new_boolean(false));
	json_object_object_add(r, "error", json_object_new_string(msg));
	json_object_object_add(r, "errno", json_object_new_int(ret < 0 ? -ret : ret));
	if (id)
		json_object_object_add(r, "id", json_object_get(id));
	return reply_string(r);
}

char *control_dispatch(struct bpflb_daemon *d, struct control_conn *c, const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *req = NULL, *cmdv, *args = NULL, *id = NULL, *data = NULL, *r;
	const struct control_cmd *cmd;
	struct bpflb_plugin_ctx *plugin = NULL;
	struct bpflb_err err = {""};
	const char *name, *sub = NULL;
	size_t end;
	char *out;
	int ret;

	if (!tok)
		return error_reply(NULL, ENOMEM, "out of memory");
	if (len && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len)) {
		out = error_reply(NULL, EINVAL, "malformed request: NUL byte in the line");
		goto out;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	/* Blanks may follow the object; line is not NUL-terminated. */
	for (end = tok->char_offset; end < len && (line[end] == ' ' || line[end] == '\t'); end++)
		;
	if (!req || json_tokener_get_error(tok) != json_tokener_success || end < len) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		char msg[256];

		if (req && e == json_tokener_success)
			snprintf(msg, sizeof(msg),
				 "malformed request: text after the JSON object at byte %d",
				 (int)tok->char_offset);
		else
			snprintf(msg, sizeof(msg), "malformed request: %s",
				 e == json_tokener_continue ? "incomplete JSON"
							    : json_tokener_error_desc(e));
		out = error_reply(NULL, EINVAL, msg);
		goto out;
	}
	if (!json_object_is_type(req, json_type_object)) {
		out = error_reply(NULL, EINVAL,
				  "malformed request: expected a JSON object "
				  "{\"cmd\": ..., \"args\": {...}}");
		goto out;
	}
	json_object_object_get_ex(req, "id", &id);
	if (!json_object_object_get_ex(req, "cmd", &cmdv) ||
	    !json_object_is_type(cmdv, json_type_string)) {
		out = error_reply(id, EINVAL, "malformed request: \"cmd\" (a string) is missing");
		goto out;
	}
	name = json_object_get_string(cmdv);
	for (cmd = control_cmds; cmd->name && strcmp(cmd->name, name); cmd++)
		;
	plugin = cmd->name ? NULL : plugin_for(d, name, &sub);
	if (!cmd->name && !plugin) {
		char msg[256];

		snprintf(msg, sizeof(msg), "unknown command '%.64s'; 'help' lists the commands",
			 name);
		out = error_reply(id, EINVAL, msg);
		goto out;
	}
	if (json_object_object_get_ex(req, "args", &args) &&
	    !json_object_is_type(args, json_type_null)) {
		if (!json_object_is_type(args, json_type_object)) {
			out = error_reply(id, EINVAL,
					  "malformed request: \"args\" must be an "
					  "object");
			goto out;
		}
		json_object_get(args);
	} else {
		args = json_object_new_object();
	}
	ret = plugin ? h_plugin_cmd(d, plugin, sub, args, &data, &err)
		     : cmd->fn(d, c, args, &data, &err);
	json_object_put(args);
	if (ret) {
		json_object_put(data);
		out = error_reply(id, ret, err.msg[0] ? err.msg : strerror(-ret));
		goto out;
	}
	r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(true));
	json_object_object_add(r, "data", data);
	if (id)
		json_object_object_add(r, "id", json_object_get(id));
	out = reply_string(r);
out:
	json_object_put(req);
	json_tokener_free(tok);
	return out;
}

/* --- connections --------------------------------------------------------------------- */

/*
 * A connection's timer (client_timeout, connlimit.h) closes it when it makes no
 * progress: it is restarted by every request answered and every answer the
 * client took, and runs while a request is incomplete, while the connection
 * is idle and while answers wait to be read.  A stream (observe --follow)
 * has no requests: its timer runs only while events wait to be read.
 */
static void conn_handle_closed(uv_handle_t *h)
{
	struct control_conn *c = h->data;

	if (--c->open_handles == 0)
		free(c);
}

static void conn_close(struct control_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->streaming)
		flows_unsubscribe(c->ctl->d->flows, c);
	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
		c->pprev = NULL;
		c->ctl->nconns--;
	}
	uv_read_stop((uv_stream_t *)&c->pipe);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->pipe, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	/* last: it may accept a waiting connection */
	connlimit_release(&c->ctl->lim);
}

static void conn_timeout(uv_timer_t *t)
{
	struct control_conn *c = t->data;

	pr_debug("control: closing a client that made no progress in %llu ms (%s)",
		 (unsigned long long)connlimit_timeout_ms(),
		 c->pending ? "answers unread"
		 : c->len   ? "request incomplete"
			    : "idle");
	conn_close(c);
}

static void conn_progress(struct control_conn *c)
{
	if (c->streaming && !c->pending)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, conn_timeout, connlimit_timeout_ms(), 0);
}

static bool conn_over_queue(struct control_conn *c)
{
	return uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > CONTROL_MAX_QUEUED;
}

static void conn_process(struct control_conn *c);
static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);
static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);

static void conn_written(uv_write_t *req, int status)
{
	struct control_write *w = (struct control_write *)req;
	struct control_conn *c = w->c;

	free(w);
	c->pending--;
	if (c->closing)
		return;
	/* EPIPE, ECONNRESET: the client hung up; nothing more to send it */
	if (status < 0 || (c->close_after_write && !c->pending)) {
		conn_close(c);
		return;
	}
	conn_progress(c);
	/* a client that stopped reading is read again once it caught up */
	if (c->throttled &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) <= CONTROL_MAX_QUEUED / 2) {
		c->throttled = false;
		conn_process(c);
		if (!c->closing && !c->throttled && !c->close_after_write && !c->streaming &&
		    uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read))
			conn_close(c);
	}
}

static int conn_write(struct control_conn *c, const char *s, size_t len)
{
	struct control_write *w;
	uv_buf_t b;

	if (c->closing)
		return -EPIPE;
	w = malloc(sizeof(*w) + len + 1);
	if (!w)
		return -ENOMEM;
	memcpy(w->data, s, len);
	w->data[len] = '\n';
	w->c = c;
	b = uv_buf_init(w->data, (unsigned int)len + 1);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, conn_written)) {
		free(w);
		conn_close(c);
		return -EPIPE;
	}
	c->pending++;
	if (c->streaming && !uv_is_active((uv_handle_t *)&c->timer))
		conn_progress(c);
	return 0;
}

int control_conn_send(struct control_conn *c, json_object *o)
{
	const char *s;

	if (c->closing)
		return -EPIPE;
	if (conn_over_queue(c))
		return -ENOBUFS;
	s = json_object_to_json_string_ext(o,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	return conn_write(c, s, strlen(s));
}

void control_conn_stream(struct control_conn *c)
{
	c->streaming = true;
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct control_conn *c = h->data;

	*b = uv_buf_init(c->buf + c->len, (unsigned int)(sizeof(c->buf) - c->len));
}

/*
 * Answer the complete lines in c->buf.  Stops reading from a client whose
 * unread answers exceed CONTROL_MAX_QUEUED (pipelined requests it does not
 * read): conn_written reads it again once half of them went out.
 */
static void conn_process(struct control_conn *c)
{
	bool answered = false;
	char *nl;

	while (!c->streaming && !c->closing && !c->close_after_write &&
	       (nl = memchr(c->buf, '\n', c->len))) {
		size_t l = (size_t)(nl - c->buf);
		char *reply;

		if (conn_over_queue(c)) {
			c->throttled = true;
			uv_read_stop((uv_stream_t *)&c->pipe);
			break;
		}
		c->ctl->requests++;
		reply = control_dispatch(c->ctl->d, c, c->buf, l);
		memmove(c->buf, nl + 1, c->len - l - 1);
		c->len -= l + 1;
		if (!reply) {
			conn_close(c);
			return;
		}
		conn_write(c, reply, strlen(reply));
		free(reply);
		answered = true;
	}
	if (c->closing)
		return;
	if (answered)
		conn_progress(c);
	if (c->len == sizeof(c->buf) && !c->throttled && !memchr(c->buf, '\n', c->len)) {
		char *reply;

		c->ctl->requests++;
		reply = error_reply(NULL, E2BIG, "request longer than 65536 bytes; closing");
		c->len = 0;
		if (reply) {
			conn_write(c, reply, strlen(reply));
			free(reply);
		}
		c->close_after_write = true;
		uv_read_stop((uv_stream_t *)&c->pipe);
		if (!c->pending)
			conn_close(c);
	}
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct control_conn *c = st->data;

	if (nread < 0) {
		uv_read_stop(st);
		if (nread == UV_EOF && c->pending)
			c->close_after_write = true;
		else
			conn_close(c);
		return;
	}
	if (!nread || c->closing || c->close_after_write)
		return;
	if (c->streaming)
		return; /* a stream takes no more requests */
	c->len += (size_t)nread;
	conn_process(c);
}

static void on_connection(uv_stream_t *srv, int status)
{
	struct bpflb_control *ctl = srv->data;
	struct control_conn *c;

	if (status < 0)
		return;
	if (!connlimit_admit(&ctl->lim))
		return; /* resumed when a connection closes */
	c = calloc(1, sizeof(*c));
	if (!c) {
		connlimit_release(&ctl->lim);
		return;
	}
	c->ctl = ctl;
	uv_pipe_init(srv->loop, &c->pipe, 0);
	uv_timer_init(srv->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->open_handles = 2;
	c->next = ctl->conns;
	if (ctl->conns)
		ctl->conns->pprev = &c->next;
	c->pprev = &ctl->conns;
	ctl->conns = c;
	ctl->nconns++;
	if (uv_accept(srv, (uv_stream_t *)&c->pipe) ||
	    uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read)) {
		conn_close(c);
		return;
	}
	conn_progress(c);
}

/* --- the listener ------------------------------------------------------------------------ */

static bool socket_answers(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return !ret;
}

int control_check_free(const char *path, struct bpflb_err *err)
{
	if (!socket_answers(path))
		return 0;
	return bpflb_err_set(err,
			     "control_socket %s is served by another running bpflbd; stop it "
			     "or give this instance its own control_socket",
			     path),
	       -EADDRINUSE;
}

/* A socket file left by a daemon that died: remove it; one that answers: refuse. */
static int stale_socket(const char *path, struct bpflb_err *err)
{
	struct stat st;
	int ret;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		return bpflb_err_set(err, "control_socket %s: %s", path, strerror(errno)), -errno;
	}
	if (!S_ISSOCK(st.st_mode))
		return bpflb_err_set(err,
				     "control_socket %s exists and is not a socket; remove it or "
				     "choose another path",
				     path),
		       -EEXIST;
	ret = control_check_free(path, err);
	if (ret)
		return ret;
	if (unlink(path) && errno != ENOENT)
		return bpflb_err_set(err, "cannot remove the stale control socket %s: %s", path,
				     strerror(errno)),
		       -errno;
	return 0;
}

/*
 * Whoever can write the socket's directory can put their own socket in its
 * place and answer root's bpflbctl.  As sshd's StrictModes: every directory
 * from / to the socket's (symlinks resolved) must belong to root or to us and
 * must not be writable by group or others; an ancestor may be if it is
 * sticky (/tmp), where nobody renames or removes what they do not own.  A
 * missing directory is created 0750, root:control_group with a group.
 */
static int socket_dir_check(const char *path, const char *dir, struct stat *st,
			    struct bpflb_err *err)
{
	char real[PATH_MAX], *p;

	if (!realpath(dir, real))
		return bpflb_err_set(err, "control_socket %s: directory %s: %s", path, dir,
				     strerror(errno)),
		       -errno;
	for (p = real;; p++) {
		bool last = !*p;
		char c = *p;

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (lstat(p == real ? "/" : real, st)) {
			int ret = -errno;

			*p = c;
			return bpflb_err_set(err, "control_socket %s: directory %s: %s", path, real,
					     strerror(-ret)),
			       ret;
		}
		if (st->st_uid != 0 && st->st_uid != geteuid())
			return bpflb_err_set(
				   err,
				   "control_socket %s: refusing directory %s: owned by "
				   "uid %u, not root; whoever owns it can replace the "
				   "socket (use a root-owned directory such as /run/bpflb)",
				   path, p == real ? "/" : real, st->st_uid),
			       -EPERM;
		if ((st->st_mode & (S_IWGRP | S_IWOTH)) && (last || !(st->st_mode & S_ISVTX)))
			return bpflb_err_set(err,
					     "control_socket %s: refusing directory %s: mode %04o "
					     "is writable by %s, who could replace the socket "
					     "(chmod go-w, or use a directory such as /run/bpflb)",
					     path, p == real ? "/" : real,
					     (unsigned int)(st->st_mode & 07777),
					     st->st_mode & S_IWOTH ? "others" : "its group"),
			       -EPERM;
		*p = c;
		if (last)
			return 0;
	}
}

static int socket_dir_prepare(const char *path, const gid_t *gid, struct bpflb_err *err)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *p;
	struct stat st;
	int ret;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p)
		snprintf(dir, sizeof(dir), ".");
	else
		p[p == dir] = '\0'; /* "/x.sock": the directory is "/" */
	if (stat(dir, &st) && errno == ENOENT) {
		/* parents as mkdir -p would; the socket's own directory 0750 */
		for (p = dir + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			ret = mkdir(dir, 0755) && errno != EEXIST ? -errno : 0;
			*p = '/';
			if (ret)
				goto mkdir_failed;
		}
		if (mkdir(dir, 0700) && errno != EEXIST) {
			ret = -errno;
			goto mkdir_failed;
		}
		if (chown(dir, 0, gid ? *gid : 0) || chmod(dir, 0750)) {
			ret = -errno;
			goto mkdir_failed;
		}
	}
	ret = socket_dir_check(path, dir, &st, err);
	if (ret)
		return ret;
	if (gid && !(st.st_mode & S_IXOTH) && (st.st_gid != *gid || !(st.st_mode & S_IXGRP)))
		pr_warn("control_socket %s: members of control_group cannot enter directory %s "
			"(mode %04o, group %u); bpflbctl works for root only",
			path, dir, (unsigned int)(st.st_mode & 07777), st.st_gid);
	return 0;
mkdir_failed:
	return bpflb_err_set(err, "cannot create the directory of control_socket %s: %s", path,
			     strerror(-ret)),
	       ret;
}

static void srv_closed(uv_handle_t *h)
{
	free(h->data);
}

static int group_id(const char *group, gid_t *gid, struct bpflb_err *err)
{
	struct group *g = getgrnam(group);

	if (!g)
		return bpflb_err_set(err, "control_group '%s' is not a group of this system",
				     group),
		       -ENOENT;
	*gid = g->gr_gid;
	return 0;
}

int control_prepare_dir(const char *path, const char *group, struct bpflb_err *err)
{
	gid_t gid = 0;
	int ret = group ? group_id(group, &gid, err) : 0;

	return ret ? ret : socket_dir_prepare(path, group ? &gid : NULL, err);
}

int control_open(struct bpflb_daemon *d, const char *path, const char *group,
		 struct bpflb_control **out, struct bpflb_err *err)
{
	struct bpflb_control *ctl;
	gid_t gid = 0;
	mode_t old;
	int ret;

	if (strlen(path) >= sizeof(ctl->path))
		return bpflb_err_set(err, "control_socket %s is longer than %zu characters", path,
				     sizeof(ctl->path) - 1),
		       -ENAMETOOLONG;
	if (group && (ret = group_id(group, &gid, err)))
		return ret;
	ret = socket_dir_prepare(path, group ? &gid : NULL, err);
	if (ret)
		return ret;
	ret = stale_socket(path, err);
	if (ret)
		return ret;
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->d = d;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	uv_pipe_init(d->loop, &ctl->srv, 0);
	ctl->srv.data = ctl;
	connlimit_listener_init(&ctl->lim, (uv_stream_t *)&ctl->srv, false);
	/* created 0600: never a moment in which others could connect */
	old = umask(0177);
	ret = uv_pipe_bind(&ctl->srv, path);
	umask(old);
	if (!ret && group && (chown(path, (uid_t)-1, gid) || chmod(path, 0660)))
		ret = -errno;
	if (!ret)
		ret = uv_listen((uv_stream_t *)&ctl->srv, 64, on_connection);
	if (ret) {
		bpflb_err_set(err, "cannot serve control_socket %s: %s", path, uv_strerror(ret));
		unlink(path);
		uv_close((uv_handle_t *)&ctl->srv, srv_closed);
		return ret;
	}
	*out = ctl;
	return 0;
}

void control_close(struct bpflb_control *ctl)
{
	if (!ctl)
		return;
	connlimit_listener_close(&ctl->lim);
	while (ctl->conns)
		conn_close(ctl->conns);
	unlink(ctl->path);
	uv_close((uv_handle_t *)&ctl->srv, srv_closed);
}

unsigned int control_clients(const struct bpflb_control *ctl)
{
	return ctl ? ctl->nconns : 0;
}

uint64_t control_requests(const struct bpflb_control *ctl)
{
	return ctl ? ctl->requests : 0;
}
