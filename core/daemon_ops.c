// SPDX-License-Identifier: GPL-2.0-only
/*
 * The daemon's operations surface (daemon_ops.h): its commands and metrics,
 * the names flow events show, and the wiring of every owner's registrations.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "daemon_ops.h"
#include "lb/ct_snapshot.h"
#include "lb/services.h"
#include "lb/services_ops.h"
#include "lb/services_query.h"
#include "log.h"
#include "ops/control.h"
#include "ops/flows.h"
#include "ops/metrics.h"
#include "ops/proxyhealth.h"
#include "ops/wire.h"
#include "reconcile.h"

/* --- commands ------------------------------------------------------------------ */

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
		char maps[256];

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
		plugin_maps_describe(c, maps, sizeof(maps));
		json_object_object_add(o, "maps", json_object_new_string(maps));
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

static int h_plugin_list(void *ctx, struct control_conn *c, json_object *args, json_object **data,
			 struct bpflb_err *err)
{
	*data = plugins_json(ctx);
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

static const char *flow_node(void *ctx);

static int h_status(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		    struct bpflb_err *err)
{
	struct bpflb_daemon *d = ctx;
	const struct bpflb_daemon_conf *dc = d->cfg ? bpflb_daemon_conf(d->cfg) : NULL;
	json_object *o = json_object_new_object(), *x, *a;
	time_t now = time(NULL);

	json_object_object_add(o, "version", json_object_new_string(BPFLB_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	add_time(o, "started_at", d->started_at);
	json_object_object_add(o, "uptime_s",
			       json_object_new_int64(d->started_at ? now - d->started_at : 0));
	json_object_object_add(o, "mode",
			       json_object_new_string(d->mode ? d->mode->desc->name : "none"));
	json_object_object_add(o, "node", json_object_new_string(flow_node(d)));
	/* an array, as devices: the words of the file, whether on one line or several */
	a = json_object_new_array();
	for (uint32_t i = 0; dc && i < dc->features.n; i++)
		json_object_array_add(a, json_object_new_string(dc->features.v[i]));
	json_object_object_add(o, "features", a);
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

	lb_status_json(&d->lb_ops, d->pipeline.sizes.ct, o);
	x = flows_stats_json(d->flows);
	if (json_object_is_type(x, json_type_object)) {
		char pin[sizeof(d->pipeline.pin_root) + 16];
		struct stat st;

		/*
		 * Two lifetimes: sent and suppressed are the datapath's, in the
		 * pinned bpflb_ev_rate, and survive restarts (counted since the
		 * pin was made: its inode's ctime); received and lost are this
		 * bpflbd's, since it started.  Said here, as the metrics' HELP does.
		 */
		snprintf(pin, sizeof(pin), "%s/bpflb_ev_rate", d->pipeline.pin_root);
		add_time(x, "sent_since", stat(pin, &st) ? 0 : st.st_ctime);
		add_time(x, "received_since", d->started_at);
	}
	json_object_object_add(o, "flow_events", x);
	x = json_object_new_object();
	json_object_object_add(x, "socket", json_object_new_string(control_path(d->control)));
	json_object_object_add(x, "clients", json_object_new_int(control_clients(d->control)));
	json_object_object_add(o, "control", x);
	json_object_object_add(o, "metrics_listen",
			       dc && dc->metrics_listen
				   ? json_object_new_string(dc->metrics_listen)
				   : json_object_new_null());
	json_object_object_add(o, "healthz_listen",
			       dc && strcmp(dc->healthz_listen, "off")
				   ? json_object_new_string(dc->healthz_listen)
				   : json_object_new_null());
	*data = o;
	return 0;
}

static int h_reload(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		    struct bpflb_err *err)
{
	struct bpflb_daemon *d = ctx;
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

static bool plugin_claims(void *ctx, const char *name)
{
	const char *sub;

	return plugin_for(ctx, name, &sub);
}

static int h_plugin_cmd(void *ctx, const char *name, json_object *args, json_object **data,
			struct bpflb_err *err)
{
	const char *sub = NULL;
	struct bpflb_plugin_ctx *p = plugin_for(ctx, name, &sub);
	json_object *reply = NULL, *e;
	int ret;

	if (!p) /* claimed a moment ago, on the loop: cannot happen */
		return -ENOENT;
	ret = p->desc->control(p, sub, args, &reply);
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

static const struct bpflb_control_fallback plugin_fallback = {plugin_claims, h_plugin_cmd};

/* Registered around lb's: "help" has listed them in this order since 0.1. */
static const struct bpflb_control_cmd daemon_cmds[] = {
    {"status", h_status, "version, mode, plugins, devices, config, reloads, counters"},
    {"plugin.list", h_plugin_list, "plugins loaded from plugin_dir and their state"},
    {NULL},
};

static const struct bpflb_control_cmd daemon_reload_cmds[] = {
    {"reload", h_reload, "re-read the configuration file (as SIGHUP)"},
    {NULL},
};

/* --- metrics ----------------------------------------------------------------------- */

/*
 * Metrics (all prefixed bpflb_):
 *   build_info{version}                        1
 *   start_time_seconds                         gauge, unix time
 *   config_loaded_timestamp_seconds            gauge, when the running file was read
 *   reloads_total{result="ok|failed"}          counter
 *   plugin_info{plugin,version,kind,state}     1 per loaded plugin
 *   plugin_active{plugin}                      1 when initialised (ready/attached), else 0
 */
static void daemon_metrics(FILE *f, void *ctx)
{
	struct bpflb_daemon *d = ctx;

	bpflb_metrics_head(f, "bpflb_build_info", "gauge", "Version of the running bpflbd.");
	fprintf(f, "bpflb_build_info{version=\"%s\"} 1\n", BPFLB_VERSION);
	bpflb_metrics_head(f, "bpflb_start_time_seconds", "gauge",
			   "When bpflbd started, unix time.");
	fprintf(f, "bpflb_start_time_seconds %lld\n", (long long)d->started_at);
	bpflb_metrics_head(f, "bpflb_config_loaded_timestamp_seconds", "gauge",
			   "When the running configuration was read, unix time.");
	fprintf(f, "bpflb_config_loaded_timestamp_seconds %lld\n",
		d->cfg ? (long long)bpflb_config_loaded_at(d->cfg) : 0LL);
	bpflb_metrics_head(f, "bpflb_reloads_total", "counter", "Configuration reloads by result.");
	fprintf(f, "bpflb_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)d->reloads_ok);
	fprintf(f, "bpflb_reloads_total{result=\"failed\"} %llu\n",
		(unsigned long long)d->reloads_failed);

	bpflb_metrics_head(f, "bpflb_plugin_info", "gauge",
			   "Plugins loaded from plugin_dir, with their state.");
	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		static const char *const st[] = {"loaded", "ready", "attached", "failed"};

		fprintf(f, "bpflb_plugin_info{plugin=\"");
		bpflb_metrics_label(f, c->desc->name);
		fprintf(f, "\",version=\"");
		bpflb_metrics_label(f, c->desc->version ? c->desc->version : "");
		fprintf(f, "\",kind=\"%s\",state=\"%s\"} 1\n",
			c->desc->kind == BPFLB_PLUGIN_MODE ? "mode" : "feature",
			(unsigned int)c->state < 4 ? st[c->state] : "unknown");
	}
	bpflb_metrics_head(f, "bpflb_plugin_active", "gauge",
			   "1 when the plugin is initialised and enabled.");
	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		fprintf(f, "bpflb_plugin_active{plugin=\"");
		bpflb_metrics_label(f, c->desc->name);
		fprintf(f, "\"} %d\n", c->state == PLUGIN_READY || c->state == PLUGIN_ATTACHED);
	}
}

static int pin_fd(const struct bpflb_daemon *d, const char *name)
{
	char path[sizeof(d->pipeline.pin_root) + 32];

	snprintf(path, sizeof(path), "%s/%s", d->pipeline.pin_root, name);
	return bpf_obj_get(path);
}

/*
 * Sum over CPUs of the __u64 counters 0..n-1 of the pinned per-CPU array
 * `name` into out[]; counters that cannot be read stay 0.
 */
static void percpu_counters(const struct bpflb_daemon *d, const char *name, uint64_t *out,
			    uint32_t n)
{
	int fd = pin_fd(d, name), ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	if (fd < 0)
		return;
	v = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*v)) : NULL;
	for (__u32 k = 0; v && k < n; k++)
		if (!bpf_map_lookup_elem(fd, &k, v))
			for (int c = 0; c < ncpu; c++)
				out[k] += v[c];
	free(v);
	close(fd);
}

/*
 * The datapath's own counters, pinned by the entry object (all prefixed bpflb_):
 *   drops_total{reason}                        counter, bpflb_drops
 *   snat_port_exhausted_total                  counter (drops_total{reason="snat_exhausted"})
 *   snat_ports_reused_total                    counter, bpflb_ct_stats: closed flows' ports reused
 *   conntrack_halves_lost_total{half="fwd|rev"}      counter, bpflb_ct_stats
 *   conntrack_halves_repaired_total{half="fwd|rev"}  counter, bpflb_ct_stats
 *   conntrack_conflicts_total                  counter, bpflb_ct_stats
 */
static void datapath_metrics(FILE *f, void *ctx)
{
	const struct bpflb_daemon *d = ctx;
	uint64_t drops[BPFLB_DROP_MAX] = {0}, cts[BPFLB_CT_STAT_MAX] = {0};

	percpu_counters(d, "bpflb_drops", drops, BPFLB_DROP_MAX);
	bpflb_metrics_head(f, "bpflb_drops_total", "counter",
			   "Packets the datapath dropped, by reason.");
	for (unsigned int r = 1; r < BPFLB_DROP_MAX; r++) {
		const char *name = wire_drop_reason_name((uint8_t)r);

		if (strcmp(name, "other") || drops[r])
			fprintf(f, "bpflb_drops_total{reason=\"%s\"} %llu\n", name,
				(unsigned long long)drops[r]);
	}
	bpflb_metrics_head(f, "bpflb_snat_port_exhausted_total", "counter",
			   "New flows dropped because no SNAT port was free.");
	fprintf(f, "bpflb_snat_port_exhausted_total %llu\n",
		(unsigned long long)drops[BPFLB_DROP_SNAT_EXHAUSTED]);

	percpu_counters(d, "bpflb_ct_stats", cts, BPFLB_CT_STAT_MAX);
	bpflb_metrics_head(
	    f, "bpflb_conntrack_halves_lost_total", "counter",
	    "Conntrack pairs the datapath found with one half missing (LRU eviction, flush).");
	fprintf(f, "bpflb_conntrack_halves_lost_total{half=\"fwd\"} %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_LOST_FWD]);
	fprintf(f, "bpflb_conntrack_halves_lost_total{half=\"rev\"} %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_LOST_REV]);
	bpflb_metrics_head(
	    f, "bpflb_conntrack_halves_repaired_total", "counter",
	    "Missing conntrack halves the datapath re-created from the surviving one.");
	fprintf(f, "bpflb_conntrack_halves_repaired_total{half=\"fwd\"} %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_REPAIRED_FWD]);
	fprintf(f, "bpflb_conntrack_halves_repaired_total{half=\"rev\"} %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_REPAIRED_REV]);
	bpflb_metrics_head(
	    f, "bpflb_conntrack_conflicts_total", "counter",
	    "Packets whose conntrack halves disagreed (NAT port held by another flow): not "
	    "translated with that mapping.");
	fprintf(f, "bpflb_conntrack_conflicts_total %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_CONFLICT]);
	bpflb_metrics_head(
	    f, "bpflb_snat_ports_reused_total", "counter",
	    "SNAT ports of closed TCP flows given to new flows before the GC removed them.");
	fprintf(f, "bpflb_snat_ports_reused_total %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_SNAT_REUSED]);
}

/*
 * Plugins' own metrics: every enabled plugin with a control hook is asked
 * "metrics" and answers
 *   {"metrics": [{"name": "bpflb_x_total", "type": "counter", "help": "...",
 *                 "samples": [{"labels": {"k": "v"}, "value": N}, ...]}, ...]}
 * Names must start with "bpflb_<plugin>_"; anything else is skipped, so a
 * plugin cannot shadow the core's series.
 */
static void plugin_metrics(FILE *f, void *ctx)
{
	struct bpflb_daemon *d = ctx;

	for (struct bpflb_plugin_ctx *p = d->plugins.head; p; p = p->next) {
		json_object *reply = NULL, *fams, *fam, *v, *samples, *sm, *labels;
		char prefix[80];

		if ((p->state != PLUGIN_READY && p->state != PLUGIN_ATTACHED) ||
		    !BPFLB_PLUGIN_HAS(p->desc, control))
			continue;
		if (p->desc->control(p, "metrics", NULL, &reply) || !reply ||
		    !json_object_object_get_ex(reply, "metrics", &fams) ||
		    !json_object_is_type(fams, json_type_array)) {
			json_object_put(reply);
			continue;
		}
		snprintf(prefix, sizeof(prefix), "bpflb_%s_", p->desc->name);
		for (size_t i = 0; i < json_object_array_length(fams); i++) {
			const char *name, *type = "gauge", *help = "";

			fam = json_object_array_get_idx(fams, i);
			if (!json_object_object_get_ex(fam, "name", &v) ||
			    !(name = json_object_get_string(v)) ||
			    strncmp(name, prefix, strlen(prefix)) ||
			    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name) ||
			    !json_object_object_get_ex(fam, "samples", &samples))
				continue;
			if (json_object_object_get_ex(fam, "type", &v))
				type = json_object_get_string(v);
			if (json_object_object_get_ex(fam, "help", &v))
				help = json_object_get_string(v);
			bpflb_metrics_head(f, name, type, help);
			for (size_t j = 0; j < json_object_array_length(samples); j++) {
				bool first = true;

				sm = json_object_array_get_idx(samples, j);
				if (!json_object_object_get_ex(sm, "value", &v))
					continue;
				fputs(name, f);
				if (json_object_object_get_ex(sm, "labels", &labels) &&
				    json_object_is_type(labels, json_type_object)) {
					json_object_object_foreach(labels, k, lv)
					{
						if (!*k ||
						    strspn(k, "abcdefghijklmnopqrstuvwxyz_") !=
							strlen(k))
							continue;
						fprintf(f, "%s%s=\"", first ? "{" : ",", k);
						bpflb_metrics_label(f, json_object_get_string(lv));
						fputc('"', f);
						first = false;
					}
				}
				fprintf(f, "%s %lld\n", first ? "" : "}",
					(long long)json_object_get_int64(v));
			}
		}
		json_object_put(reply);
	}
}

/* --- what flow events name ------------------------------------------------------- */

static const char *flow_service(void *ctx, uint32_t svc_id)
{
	struct bpflb_daemon *d = ctx;

	return d->services ? bpflb_services_svc_key(d->services, svc_id) : NULL;
}

static bool flow_backend(void *ctx, uint32_t backend_id, uint32_t *addr_be, uint16_t *port_be)
{
	struct bpflb_daemon *d = ctx;
	struct bpflb_backend be;

	if (!d->services || !bpflb_services_backend_get(d->services, backend_id, &be))
		return false;
	*addr_be = be.addr;
	*port_be = be.port;
	return true;
}

static int flow_service_ids(void *ctx, const char *spec, uint32_t *ids, unsigned int max,
			    unsigned int *n, struct bpflb_err *err)
{
	struct bpflb_daemon *d = ctx;
	struct svcq_ct_filter sel = {0};
	int ret;

	if (!d->services)
		return bpflb_err_set(err, "the service state is not open"), -EAGAIN;
	ret = svcq_ct_filter_service(d->services, spec, &sel, err);
	if (ret)
		return ret;
	for (*n = 0; *n < sel.nsvc && *n < max; (*n)++)
		ids[*n] = sel.svc_ids[*n];
	return 0;
}

static const char *flow_node(void *ctx)
{
	struct bpflb_daemon *d = ctx;

	return d->cfg ? bpflb_node_conf(d->cfg)->name : "";
}

static const char *flow_device(void *ctx, uint32_t ifindex)
{
	struct bpflb_daemon *d = ctx;

	for (int i = 0; i < d->pipeline.ndevs; i++)
		if (d->pipeline.devs[i].ifindex == (int)ifindex)
			return d->pipeline.devs[i].name;
	return NULL;
}

/* A policy rule id: asked of the running plugins that describe their rules. */
static bool flow_rule(void *ctx, uint8_t stage, uint32_t rule_id, struct bpflb_rule_desc *out)
{
	struct bpflb_daemon *d = ctx;

	for (struct bpflb_plugin_ctx *p = d->plugins.head; p; p = p->next) {
		if (!BPFLB_PLUGIN_HAS(p->desc, describe_rule) ||
		    (p->state != PLUGIN_READY && p->state != PLUGIN_ATTACHED))
			continue;
		memset(out, 0, sizeof(*out));
		if (!p->desc->describe_rule(p, (enum bpflb_stage)stage, rule_id, out))
			return true;
	}
	return false;
}

static const struct flows_names flow_names = {
    .service = flow_service,
    .backend = flow_backend,
    .service_ids = flow_service_ids,
    .node = flow_node,
    .device = flow_device,
    .rule = flow_rule,
};

/* --- wiring ------------------------------------------------------------------------- */

int daemon_ops_register(struct bpflb_daemon *d, struct bpflb_err *err)
{
	int ret;

	d->control = bpflb_control_new();
	d->metrics = bpflb_metrics_new();
	d->flows = flows_new(&flow_names, d);
	if (!d->control || !d->metrics || !d->flows)
		return bpflb_err_set(err, "cannot set up the control socket and metrics: %s",
				     strerror(ENOMEM)),
		       -ENOMEM;
	d->lb_ops = (struct lb_ops){.services = d->services, .ct_counts = d->ct_counts};
	/* the order of "help" and of /metrics */
	if ((ret = bpflb_control_register(d->control, daemon_cmds, d, err)) ||
	    (ret = lb_control_register(d->control, &d->lb_ops, err)) ||
	    (ret = bpflb_state_control_register(d->control, d, err)) ||
	    (ret = bpflb_control_register(d->control, daemon_reload_cmds, d, err)) ||
	    (ret = bpflb_metrics_register(d->metrics, "daemon", daemon_metrics, d, err)) ||
	    (ret = lb_metrics_register(d->metrics, &d->lb_ops, err)) ||
	    (ret = bpflb_state_metrics_register(d->metrics, d, err)) ||
	    (ret = bpflb_metrics_register(d->metrics, "datapath", datapath_metrics, d, err)) ||
	    (ret = flows_register(d->flows, d->control, d->metrics, err)) ||
	    (ret = bpflb_metrics_register(d->metrics, "plugins", plugin_metrics, d, err)) ||
	    (ret = control_metrics_register(d->control, d->metrics, err)) ||
	    (ret = bpflb_metrics_register(d->metrics, "healthz", proxyhealth_metrics, NULL, err)))
		return ret;
	bpflb_control_set_fallback(d->control, &plugin_fallback, d);
	return 0;
}

int daemon_ops_listen(struct bpflb_daemon *d, const struct bpflb_daemon_conf *dc,
		      struct bpflb_err *err)
{
	struct bpflb_err ferr = {""};
	int ret;

	/* Observation is not worth refusing to forward for: warn and go on. */
	ret = flows_start(d->flows, d->loop, d->pipeline.pin_root, &ferr);
	if (ret)
		pr_warn("flow events unavailable: %s", ferr.msg[0] ? ferr.msg : strerror(-ret));
	ret = ct_snapshot_open(d->loop, bpflb_services_map_fd(d->services, "bpflb_ct"),
			       &d->ct_counts);
	if (ret)
		pr_warn("conntrack counts unavailable: %s", strerror(-ret));
	d->lb_ops.ct_counts = d->ct_counts;
	ret = control_listen(d->control, d->loop, dc->control_socket, dc->control_group, err);
	if (ret)
		return ret;
	if (dc->metrics_listen) {
		ret = metrics_listen(d->metrics, d->loop, dc->metrics_listen, err);
		if (ret)
			return ret;
	}
	/*
	 * Fatal at start like the other listeners (kube-proxy retries): a node
	 * whose /healthz cannot be served would be taken for broken by the load
	 * balancers anyway, and the error names the key to change.
	 */
	if (strcmp(dc->healthz_listen, "off"))
		return proxyhealth_listen(d->loop, dc->healthz_listen, err);
	return 0;
}

void daemon_ops_close(struct bpflb_daemon *d)
{
	/* control first: its streams end and leave the flow reader */
	control_close(d->control);
	d->control = NULL;
	metrics_close(d->metrics);
	d->metrics = NULL;
	proxyhealth_close();
	flows_close(d->flows);
	d->flows = NULL;
	d->lb_ops = (struct lb_ops){0};
	ct_snapshot_close(d->ct_counts);
	d->ct_counts = NULL;
}
