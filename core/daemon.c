// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpflbd's life cycle.
 *
 * A reload is a transaction in the way of nginx's ngx_init_cycle: the new file
 * is parsed and validated whole (core, services, every enabled plugin) before
 * anything changes; then the difference is applied in an order that keeps the
 * datapath consistent: devices, services, plugins' apply, new programs into
 * their stages (an atomic slot swap), old programs out.  A failure part way
 * re-applies the previous configuration to whatever had already moved.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "daemon_ops.h"
#include "lb/services.h"
#include "log.h"
#include "ops/connlimit.h"
#include "ops/proxyhealth.h"
#include "ops/control.h"
#include "state/lock.h"
#include "reconcile.h"
#include "sys.h"

#define MAX_SCHEMAS 64

/* --- configuration ------------------------------------------------------ */

/*
 * [daemon] and [node] are typed (config_core.c): the engine filled
 * struct bpflb_daemon_conf once; the code below reads its fields.  The
 * section handles remain for messages (bpflb_cfg_error names file:line).
 */
static const struct bpflb_cfg_section *daemon_sec(const struct bpflb_config *cfg)
{
	return bpflb_cfg_section(cfg, "daemon", 0);
}

/* The mode plugin's name, or "none"; the default is the build's (BPFLB_DEFAULT_MODE). */
static const char *daemon_mode(const struct bpflb_daemon_conf *dc)
{
	return dc->mode;
}

/* Device names as the pipeline takes them. */
static const char *const *daemon_devices(const struct bpflb_daemon_conf *dc)
{
	return (const char *const *)dc->devices.v;
}

/* "eth0 eth1" for a log line; a long list is cut, which a log line may be. */
static const char *daemon_devices_str(const struct bpflb_daemon_conf *dc, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < dc->devices.n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? " " : "",
					dc->devices.v[i]);
	return buf;
}

static bool feature_enabled(const struct bpflb_config *cfg, const char *name)
{
	const struct bpflb_daemon_conf *dc = cfg ? bpflb_daemon_conf(cfg) : NULL;

	for (uint32_t i = 0; dc && i < dc->features.n; i++)
		if (!strcmp(dc->features.v[i], name))
			return true;
	return false;
}

static bool plugin_enabled(const struct bpflb_config *cfg, const struct bpflb_plugin_ctx *c)
{
	if (!cfg)
		return false;
	if (plugin_is_mode(c))
		return !strcmp(daemon_mode(bpflb_daemon_conf(cfg)), c->desc->name);
	return feature_enabled(cfg, c->desc->name);
}

int daemon_load_config(struct bpflb_daemon *d, const char *path, struct bpflb_config **out,
		       struct bpflb_err *err)
{
	struct bpflb_cfg_schema schemas[MAX_SCHEMAS];
	size_t n = 0;

	schemas[n++] = (struct bpflb_cfg_schema){"bpflbd", bpflb_core_sections};
	schemas[n++] = (struct bpflb_cfg_schema){"bpflbd", bpflb_services_sections};
	for (struct bpflb_plugin_ctx *c = d->plugins.head; c && n < MAX_SCHEMAS; c = c->next)
		if (c->desc->sections)
			schemas[n++] = (struct bpflb_cfg_schema){c->desc->name, c->desc->sections};
	return bpflb_config_load(path, schemas, n, 0, out, err);
}

/* Re-word err's message as an error at key of sec (file:line, key and value). */
static int key_error(struct bpflb_err *err, const struct bpflb_cfg_section *sec, const char *key,
		     int ret)
{
	char msg[sizeof(err->msg)];

	snprintf(msg, sizeof(msg), "%s", err->msg);
	bpflb_cfg_error(err, sec, key, 0, "%s", msg);
	return ret ? ret : -EINVAL;
}

/*
 * An address the daemon binds (a listener) or sends from (the node address)
 * must be one of this network namespace's: start would fail on it, so the
 * check fails here already.  Binding port 0 tests it without taking a port.
 */
static int check_local_addr(const struct bpflb_cfg_section *sec, const char *key, uint32_t addr,
			    const char *why, struct bpflb_err *err)
{
	char abuf[INET_ADDRSTRLEN];
	int ret = sys_addr_local(addr);

	if (ret > 0)
		return 0;
	inet_ntop(AF_INET, &addr, abuf, sizeof(abuf));
	if (ret < 0)
		return bpflb_cfg_error_errno(err, ret, sec, key, "cannot check whether %s is local: %s",
					     abuf, strerror(-ret));
	return bpflb_cfg_error(err, sec, key, 0,
			       "%s is not an address of any interface in this network "
			       "namespace (%s); expected an address shown by 'ip -4 addr'",
			       abuf, why);
}

/* The addresses start binds or uses as its own: [node] address, healthz_bind, metrics_listen. */
static int check_addresses(const struct bpflb_config *cfg, struct bpflb_err *err)
{
	const struct bpflb_cfg_section *ns = bpflb_cfg_section(cfg, "node", 0);
	const struct bpflb_cfg_section *lb = bpflb_cfg_section(cfg, "lb", 0);
	const struct bpflb_cfg_section *ds = daemon_sec(cfg);
	const struct bpflb_daemon_conf *dc = bpflb_daemon_conf(cfg);
	const struct bpflb_node_conf *nc = bpflb_node_conf(cfg);
	const struct bpflb_lb_conf *lc = bpflb_lb_conf(cfg);
	int ret;

	/* address is required: a loaded [node] always has one */
	if (nc->address) {
		ret = check_local_addr(ns, "address", nc->address,
				       "the node's InternalIP: SNAT sends from it and health "
				       "checks listen on it",
				       err);
		if (ret)
			return ret;
	}
	/* 0: not written ([node] address, checked above) or 0.0.0.0 (every address) */
	if (lc->healthz_bind) {
		ret = check_local_addr(lb, "healthz_bind", lc->healthz_bind,
				       "health check node ports listen on it; 0.0.0.0 listens on "
				       "all",
				       err);
		if (ret)
			return ret;
	}
	if (dc->metrics_listen) {
		const char *ml = dc->metrics_listen;
		char addr[INET_ADDRSTRLEN];
		struct in_addr a;

		/* daemon_check (config_core.c) validated ADDR:PORT */
		snprintf(addr, sizeof(addr), "%.*s", (int)(strrchr(ml, ':') - ml), ml);
		if (inet_pton(AF_INET, addr, &a) == 1 && a.s_addr) {
			ret = check_local_addr(ds, "metrics_listen", a.s_addr,
					       "the metrics endpoint listens on it; 0.0.0.0 "
					       "listens on all",
					       err);
			if (ret)
				return ret;
		}
	}
	if (strcmp(dc->healthz_listen, "off")) {
		const char *hl = dc->healthz_listen;
		char addr[INET_ADDRSTRLEN];
		struct in_addr a;

		snprintf(addr, sizeof(addr), "%.*s", (int)(strrchr(hl, ':') - hl), hl);
		if (inet_pton(AF_INET, addr, &a) == 1 && a.s_addr) {
			ret = check_local_addr(ds, "healthz_listen", a.s_addr,
					       "/healthz listens on it; 0.0.0.0 listens on all",
					       err);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/*
 * bpffs_root must be on a bpffs: start creates and pins there and --cleanup
 * removes from there.  With pins already there, the shared maps must have the
 * sizes [lb] asks for.  Warn when the bpffs is private to this mount namespace.
 */
static int check_bpffs_root(const struct bpflb_config *cfg, struct bpflb_err *err)
{
	const struct bpflb_cfg_section *ds = daemon_sec(cfg);
	const char *root = bpflb_daemon_conf(cfg)->bpffs_root, *key = NULL;
	struct bpflb_map_sizes sizes;
	int ret;

	ret = sys_bpffs_check(root, true, err);
	if (ret)
		return key_error(err, ds, "bpffs_root", ret);
	bpflb_services_map_sizes(cfg, &sizes);
	ret = pipeline_sizes_check(root, &sizes, &key, err);
	if (ret && key) {
		const struct bpflb_cfg_section *lb = bpflb_cfg_section(cfg, "lb", 0);
		char msg[sizeof(err->msg)];

		if (lb && bpflb_cfg_has(lb, key))
			return key_error(err, lb, key, ret);
		snprintf(msg, sizeof(msg), "%s", err->msg);
		bpflb_err_set(err, "%s: [lb] %s (default): %s", bpflb_cfg_path(cfg), key, msg);
	}
	return ret;
}

/*
 * The schema records of the maps the enabled plugins own, as plugin_init
 * checks them.  The shared sets they use were checked when they loaded
 * (against this build's versions) and the pinned ones by pipeline_open.
 */
static int check_plugin_schemas(struct bpflb_daemon *d, const struct bpflb_config *cfg,
				struct bpflb_err *err)
{
	const char *root = bpflb_daemon_conf(cfg)->bpffs_root;

	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		uint32_t own = c->maps.own_schema;
		int ret;

		if (!plugin_enabled(cfg, c) || !own)
			continue;
		ret = pipeline_schema_check_pinned(root, c->desc->name, own, own, err);
		if (ret)
			return ret;
	}
	return 0;
}

static void warn_private_bpffs(const char *root, const char *what)
{
	if (sys_bpffs_private(root))
		pr_warn("bpffs_root %s: %s; %s", root, sys_bpffs_private_msg(), what);
}
/*
 * Why the plugin name cannot be enabled by the next configuration: the last
 * scan of plugin_dir refused its file (or the directory).  A plugin that runs
 * already keeps running: its code was checked when it was loaded.
 */
static const char *plugin_refused(struct bpflb_daemon *d, const char *name)
{
	struct bpflb_plugin_ctx *c = plugin_host_find(&d->plugins, name);

	if (c && plugin_enabled(d->cfg, c))
		return NULL;
	return plugin_host_refusal(&d->plugins, name);
}

/*
 * mode names no loaded mode plugin (c: the feature plugin of that name, if
 * any).  The modes are whatever plugin_dir holds, so the message lists them.
 */
static int mode_unknown(struct bpflb_daemon *d, const struct bpflb_cfg_section *ds,
			const char *mode, const struct bpflb_plugin_ctx *c, struct bpflb_err *err)
{
	const char *guess = plugin_host_closest_mode(&d->plugins, mode);
	char modes[512], what[160], hint[160] = "";

	plugin_host_mode_names(&d->plugins, modes, sizeof(modes));
	if (guess)
		snprintf(hint, sizeof(hint), " (did you mean %s?)", guess);
	/* As the config engine says it: inih keeps a "#" comment in the value. */
	else if (strstr(mode, " #") || strstr(mode, "\t#"))
		snprintf(hint, sizeof(hint), " (after a value, a comment starts with \" ;\"; \"#\" "
			 "only comments out a whole line)");
	if (c)
		snprintf(what, sizeof(what), "'%s' is a feature plugin, not a mode (list it in "
			 "features)", mode);
	else
		snprintf(what, sizeof(what), "no mode plugin '%.60s' is loaded from %.60s", mode,
			 bpflb_daemon_conf(bpflb_cfg_section_config(ds))->plugin_dir);
	return bpflb_cfg_error(err, ds, "mode", 0, "%s%s; modes available: %s%snone%s", what,
			       bpflb_cfg_has(ds, "mode") ? "" : " (the default mode)", modes,
			       modes[0] ? ", " : "", hint);
}

/* The plugins next enables ([daemon] mode and features) are loaded and usable. */
static int check_enabled_plugins(struct bpflb_daemon *d, const struct bpflb_config *next,
				 struct bpflb_err *err)
{
	const struct bpflb_cfg_section *ds = daemon_sec(next);
	const struct bpflb_daemon_conf *dc = bpflb_daemon_conf(next);
	const char *mode = daemon_mode(dc);
	char *const *words = dc->features.v;
	const char *why;

	if (strcmp(mode, "none")) {
		struct bpflb_plugin_ctx *c = plugin_host_find(&d->plugins, mode);

		if ((why = plugin_refused(d, mode)))
			return bpflb_cfg_error(err, ds, "mode", 0,
					       "plugin '%s' cannot be enabled: %s", mode, why);
		if (!c || !plugin_is_mode(c))
			return mode_unknown(d, ds, mode, c, err);
	}
	for (uint32_t i = 0; i < dc->features.n; i++) {
		struct bpflb_plugin_ctx *c = plugin_host_find(&d->plugins, words[i]);

		if ((why = plugin_refused(d, words[i])))
			return bpflb_cfg_error(err, ds, "features", 0,
					       "plugin '%s' cannot be enabled: %s", words[i], why);
		if (!c)
			return bpflb_cfg_error(err, ds, "features", 0,
					       "no feature plugin '%s' is loaded from %s", words[i],
					       dc->plugin_dir);
		if (plugin_is_mode(c))
			return bpflb_cfg_error(err, ds, "features", 0,
					       "'%s' is a mode plugin; select it with mode = %s",
					       words[i], words[i]);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(words[i], words[j]))
				return bpflb_cfg_error(err, ds, "features", 0,
						       "'%s' is listed twice", words[i]);
	}
	return 0;
}

/* Checks of a parsed configuration that need the loaded plugins or the system. */
int daemon_validate(struct bpflb_daemon *d, const struct bpflb_config *next,
		    struct bpflb_err *err)
{
	const struct bpflb_cfg_section *ds = daemon_sec(next);
	const struct bpflb_daemon_conf *dc = bpflb_daemon_conf(next);
	int ret;

	ret = check_enabled_plugins(d, next, err);
	if (ret)
		return ret;
	if (pipeline_check_devices(daemon_devices(dc), (int)dc->devices.n, err)) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		return bpflb_cfg_error(err, ds, "devices", 0, "%s", msg);
	}

	ret = check_addresses(next, err);
	if (ret)
		return ret;
	/* At start and --check-config; on reload bpffs_root and the sizes are fixed (below). */
	if (!d->cfg) {
		ret = check_bpffs_root(next, err) ?: check_plugin_schemas(d, next, err);
		if (ret)
			return ret;
	}

	/* Settings that name pinned or attached state cannot move under a running daemon. */
	if (d->cfg) {
		const struct bpflb_daemon_conf *old = bpflb_daemon_conf(d->cfg);
		const struct {
			const char *key, *was, *now;
		} fixed[] = {
		    {"bpffs_root", old->bpffs_root, dc->bpffs_root},
		    {"control_socket", old->control_socket, dc->control_socket},
		    {"control_group", old->control_group, dc->control_group},
		    {"metrics_listen", old->metrics_listen, dc->metrics_listen},
		    {"healthz_listen", old->healthz_listen, dc->healthz_listen},
		    {"state_dir", old->state_dir, dc->state_dir},
		};
		const char *tc_key = old->tc_handle != dc->tc_handle	   ? "tc_handle"
				     : old->tc_priority != dc->tc_priority ? "tc_priority"
									   : NULL;

		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			if (strcmp(fixed[i].was ?: "", fixed[i].now ?: ""))
				return bpflb_cfg_error(err, ds, fixed[i].key, 0,
						       "cannot change on reload (running with "
						       "'%s'); restart bpflbd to change it",
						       fixed[i].was ?: "");
		if (tc_key)
			return bpflb_cfg_error(err, ds, tc_key, 0,
					       "cannot change on reload (running with '%u'); "
					       "restart bpflbd to change it",
					       tc_key[3] == 'h' ? old->tc_handle : old->tc_priority);
	}

	if (d->cfg) {
		const struct bpflb_cfg_section *nl = bpflb_cfg_section(next, "lb", 0);
		uint32_t om = bpflb_lb_conf(d->cfg)->maglev_table_size;
		struct bpflb_map_sizes os, ns;
		static const char *const maps[] = {"bpflb_svc",	 "bpflb_backends", "bpflb_slots",
						   "bpflb_maglev", "bpflb_ct",	     "bpflb_peers",
						   NULL};

		if (om != bpflb_lb_conf(next)->maglev_table_size)
			return bpflb_cfg_error(err, nl, "maglev_table_size", 0,
					       "cannot change on reload (the datapath's tables "
					       "have %u entries); restart bpflbd to change it",
					       om);
		bpflb_services_map_sizes(d->cfg, &os);
		bpflb_services_map_sizes(next, &ns);
		for (int i = 0; maps[i]; i++) {
			uint32_t was = 0, now = 0;
			const char *key = bpflb_map_size_key(maps[i], &os, &was);

			bpflb_map_size_key(maps[i], &ns, &now);
			if (was != now)
				return bpflb_cfg_error(err, nl, key, 0,
						       "cannot change on reload (the pinned map "
						       "%s has %u entries); restart bpflbd to "
						       "change it",
						       maps[i], was);
		}
	}

	bpflb_services_prepared_free(d->svc_prepared);
	d->svc_prepared = NULL;
	ret = bpflb_services_prepare(next, &d->svc_prepared, err);
	if (ret)
		return ret;
	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		if (!plugin_enabled(next, c))
			continue;
		ret = c->desc->validate(c, next, err);
		if (ret) {
			if (!err->msg[0])
				bpflb_err_set(err, "plugin %s rejected the configuration (%s)",
					      c->desc->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* --- plugins ------------------------------------------------------------ */

static int plugin_init(struct bpflb_daemon *d, struct bpflb_plugin_ctx *c, struct bpflb_err *err)
{
	char who[96];
	int ret;

	if (c->state != PLUGIN_LOADED && c->state != PLUGIN_FAILED)
		return 0;
	snprintf(who, sizeof(who), "plugin %s", c->desc->name);
	ret = sys_probe_features(c->desc->requires, who, err);
	if (ret)
		return ret;
	/* The maps it owns; the shared sets it uses were checked at load. */
	if (c->maps.own_schema) {
		ret = pipeline_schema_check(&d->pipeline, c->desc->name, c->maps.own_schema,
					    c->maps.own_schema, err);
		if (ret)
			return ret;
	}
	c->last_error[0] = '\0';
	ret = c->desc->init(c);
	if (ret) {
		c->state = PLUGIN_FAILED;
		return bpflb_err_set(err, "plugin %s failed to initialise: %s%s%s", c->desc->name,
				     strerror(-ret), c->last_error[0] ? ": " : "", c->last_error);
	}
	if (c->maps.own_schema)
		pipeline_schema_record(&d->pipeline, c->desc->name, c->maps.own_schema);
	c->state = PLUGIN_READY;
	return 0;
}

static void plugin_fini(struct bpflb_plugin_ctx *c)
{
	if (c->state == PLUGIN_ATTACHED)
		c->desc->detach(c);
	if (c->state == PLUGIN_ATTACHED || c->state == PLUGIN_READY)
		c->desc->fini(c);
	c->priv = NULL;
	c->state = PLUGIN_LOADED;
}

static int plugin_attach(struct bpflb_plugin_ctx *c, struct bpflb_err *err)
{
	int ret;

	if (c->state == PLUGIN_ATTACHED)
		return 0;
	ret = c->desc->attach(c, err);
	if (ret) {
		if (!err->msg[0])
			bpflb_err_set(err, "plugin %s failed to attach: %s", c->desc->name,
				      strerror(-ret));
		return ret;
	}
	c->state = PLUGIN_ATTACHED;
	return 0;
}

/* --- applying a configuration ------------------------------------------- */

static void ensure_sysctl(const char *key, const char *value)
{
	bool changed;
	int ret = sys_sysctl_ensure(key, value, &changed);

	if (ret)
		pr_warn("cannot set %s = %s: %s; forwarding may fail", key, value, strerror(-ret));
	else if (changed)
		pr_notice("set %s = %s (needed to forward translated packets)", key, value);
}

static int apply_devices(struct bpflb_daemon *d, const struct bpflb_config *cfg,
			 struct bpflb_err *err)
{
	const struct bpflb_daemon_conf *dc = bpflb_daemon_conf(cfg);
	const char *const *devs = daemon_devices(dc);
	int n = (int)dc->devices.n;
	int ret;

	ret = pipeline_set_devices(&d->pipeline, devs, n, err);
	if (ret || !strcmp(daemon_mode(dc), "none"))
		return ret;
	/*
	 * A load-balancing node forwards, and a translated packet the datapath
	 * hands to the stack (no neighbour entry yet for bpf_fib_lookup) carries
	 * one of the node's own addresses as source: without accept_local the
	 * kernel drops it as a martian.
	 */
	ensure_sysctl("net/ipv4/ip_forward", "1");
	for (int i = 0; i < n; i++) {
		char key[96];

		snprintf(key, sizeof(key), "net/ipv4/conf/%s/accept_local", devs[i]);
		ensure_sysctl(key, "1");
	}
	return 0;
}

/*
 * Switch the running state from prev (NULL at start) to next.  On failure the
 * state is rolled back to prev as far as it had moved and err says why.
 */
int daemon_apply(struct bpflb_daemon *d, const struct bpflb_config *next,
		 const struct bpflb_config *prev, struct bpflb_err *err)
{
	struct bpflb_plugin_ctx *applied[MAX_SCHEMAS], *inited[MAX_SCHEMAS], *attached[MAX_SCHEMAS];
	int napplied = 0, ninited = 0, nattached = 0, ret;
	struct bpflb_plugin_ctx *next_mode = NULL;
	struct bpflb_err ignore;

	log_set_level(log_level_from_name(bpflb_log_levels[bpflb_daemon_conf(next)->log_level]));

	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		bool was = c->state == PLUGIN_READY || c->state == PLUGIN_ATTACHED;

		if (!plugin_enabled(next, c))
			continue;
		if (plugin_is_mode(c))
			next_mode = c;
		if (!was) {
			ret = plugin_init(d, c, err);
			if (ret)
				goto rollback;
			inited[ninited++] = c;
		}
		/* A plugin enabled just now starts from nothing: prev is NULL for it. */
		ret = c->desc->apply(c, next, was ? prev : NULL, err);
		if (ret) {
			if (!err->msg[0])
				bpflb_err_set(err,
					      "plugin %s failed to apply the configuration: %s",
					      c->desc->name, strerror(-ret));
			goto rollback;
		}
		applied[napplied++] = c;
	}

	/* New programs go into their stages first: a slot swap is atomic. */
	for (int i = 0; i < napplied; i++) {
		if (applied[i]->state == PLUGIN_ATTACHED)
			continue;
		ret = plugin_attach(applied[i], err);
		if (ret)
			goto rollback;
		attached[nattached++] = applied[i];
	}

	ret = apply_devices(d, next, err);
	if (ret)
		goto rollback;

	/*
	 * The services last: next + the overlay, as daemon_validate() parsed
	 * them (none prepared: parsed here).  Last, because the running
	 * configuration does not keep its [service] text: nothing after this
	 * step can fail and want the previous services back.  On a refusal the
	 * services are as they were (on a map error they converge at the next
	 * reconcile) and the plugins roll back.
	 */
	ret = bpflb_state_apply_services(d, next, d->svc_prepared, err);
	d->svc_prepared = NULL;
	if (ret)
		goto rollback;

	/* Only now take out what the new configuration no longer enables. */
	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		if (plugin_enabled(next, c) || c->state == PLUGIN_LOADED ||
		    c->state == PLUGIN_FAILED)
			continue;
		pr_info("disabling plugin %s", c->desc->name);
		plugin_fini(c);
	}
	if (d->mode != next_mode)
		pr_notice("mode: %s -> %s", d->mode ? d->mode->desc->name : "none",
			  next_mode ? next_mode->desc->name : "none");
	d->mode = next_mode;
	return 0;

rollback:
	/* Newly attached programs out; the previous mode's programs back in. */
	for (int i = 0; i < nattached; i++) {
		attached[i]->desc->detach(attached[i]);
		attached[i]->state = PLUGIN_READY;
	}
	if (d->mode && d->mode->state == PLUGIN_ATTACHED) {
		d->mode->state = PLUGIN_READY;
		plugin_attach(d->mode, &ignore);
	}
	for (int i = 0; i < napplied; i++) {
		bool fresh = false;

		for (int j = 0; j < ninited; j++)
			fresh |= inited[j] == applied[i];
		if (!fresh && prev)
			applied[i]->desc->apply(applied[i], prev, next, &ignore);
	}
	for (int i = 0; i < ninited; i++)
		plugin_fini(inited[i]);
	bpflb_services_prepared_free(d->svc_prepared);
	d->svc_prepared = NULL;
	return ret ? ret : -EINVAL;
}

/* --- operating: connection limits (the operations surface: daemon_ops.c) --- */

static void apply_conn_limits(const struct bpflb_config *cfg)
{
	const struct bpflb_daemon_conf *dc = bpflb_daemon_conf(cfg);
	struct connlimit_cfg l = {
	    .max_total = dc->max_connections,
	    .max_per_listener = dc->max_connections_per_listener,
	    .timeout_ms = (uint64_t)dc->client_timeout * 1000,
	};

	connlimit_set(&l);
	/* kube-proxy allows twice its sync period; ours is the drift check */
	proxyhealth_set_max_age((uint64_t)(dc->healthz_max_sync_age ?: 2 * dc->reconcile_interval) *
				1000);
}

/* --- loop --------------------------------------------------------------- */

static void on_signal(uv_signal_t *h, int signum)
{
	struct bpflb_daemon *d = h->data;

	if (signum == SIGHUP) {
		daemon_reload(d);
		return;
	}
	if (d->bpffs_private)
		pr_warn("%s: stopping; the datapath stays attached but the pinned state "
			"under %s goes with this private mount namespace (see the warning at "
			"start)",
			signum == SIGTERM ? "SIGTERM" : "SIGINT", d->pipeline.pin_root);
	else
		pr_notice("%s: stopping; datapath and pinned state stay in place",
			  signum == SIGTERM ? "SIGTERM" : "SIGINT");
	sd_notify(0, "STOPPING=1");
	uv_stop(d->loop);
}

static void on_tick(uv_timer_t *t)
{
	struct bpflb_daemon *d = t->data;

	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next)
		if ((c->state == PLUGIN_READY || c->state == PLUGIN_ATTACHED) &&
		    c->desc->size > offsetof(struct bpflb_plugin, tick) && c->desc->tick)
			c->desc->tick(c);
}

static void tick_arm(struct bpflb_daemon *d)
{
	uint64_t ms = (uint64_t)bpflb_daemon_conf(d->cfg)->tick_interval * 1000;

	uv_timer_start(&d->tick, on_tick, ms, ms);
}

/*
 * systemd's watchdog (the unit's WatchdogSec=): WATCHDOG=1 comes from a timer
 * of the loop itself, so a loop that hangs in a handler stops the pings and
 * systemd restarts bpflbd (the datapath keeps forwarding meanwhile).  Every
 * half interval, as sd_watchdog_enabled(3) advises, leaving the other half
 * for a busy loop to get to the timer.
 */
static void on_watchdog(uv_timer_t *t)
{
	sd_notify(0, "WATCHDOG=1");
}

static void watchdog_start(struct bpflb_daemon *d)
{
	uint64_t usec = 0, ms;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return;
	ms = usec / 2000 ? usec / 2000 : 1;
	uv_timer_init(d->loop, &d->watchdog);
	uv_timer_start(&d->watchdog, on_watchdog, ms, ms);
	pr_info("systemd watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)ms);
}

/*
 * plugin_dir must be known before the full schema (which plugins extend) is:
 * a first pass reads the file with the core's schema alone, skipping the
 * sections of plugins; the full, validated load follows.  The plugins the
 * file enables are checked on this first pass (check_enabled), so that a
 * refused plugin is reported with why, not as the owner of an unknown section.
 * When the core's own sections fail, that is the error: plugin_dir is not
 * known then, and scanning the default one would only add a misleading
 * warning about a directory the file may not even use.
 */
static int scan_plugins(struct bpflb_daemon *d, const char *path, bool check_enabled,
			struct bpflb_err *err)
{
	const struct bpflb_cfg_schema core = {"bpflbd", bpflb_core_sections};
	struct bpflb_config *cfg = NULL;
	int ret;

	ret = bpflb_config_load(path, &core, 1, BPFLB_CFG_LOAD_SKIP_UNKNOWN, &cfg, err);
	if (ret)
		return ret;
	plugin_host_scan(&d->plugins, bpflb_daemon_conf(cfg)->plugin_dir, d);
	ret = check_enabled ? check_enabled_plugins(d, cfg, err) : 0;
	bpflb_config_free(cfg);
	return ret;
}

/*
 * The running configuration keeps no [service] text: the services hold their
 * own compact model (and the file's def of each overlay service), so the text
 * is dead weight (100k services: about 68 MB).  Then hand the memory of it,
 * and of a previous configuration and model, back instead of keeping the peak.
 */
static void running_config_trim(struct bpflb_daemon *d)
{
	bpflb_cfg_release(d->cfg, "service");
	malloc_trim(0);
}

/* bpffs_root holds nothing yet (absent or empty): this start is the instance's first. */
static bool bpffs_root_fresh(const char *root)
{
	DIR *dir = opendir(root);
	struct dirent *de;
	bool empty = true;

	if (!dir)
		return errno == ENOENT;
	while (empty && (de = readdir(dir)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(dir);
	return empty;
}

/*
 * A first start failed after it had pinned or attached: nothing served before
 * it, so nothing of it may stay (a later start would adopt half-made maps).
 * A start over existing state never comes here: that state keeps serving.
 */
static void undo_first_start(const struct bpflb_daemon_conf *dc)
{
	struct bpflb_err e = {""};
	int n;

	pipeline_detach_devices(daemon_devices(dc), (int)dc->devices.n, dc->tc_handle,
				dc->tc_priority);
	n = pipeline_remove_pins(dc->bpffs_root, &e);
	if (n < 0)
		pr_warn("the failed first start left pins under %s: %s", dc->bpffs_root, e.msg);
	else
		pr_notice("the failed first start removed its hooks and %d pins under %s", n,
			  dc->bpffs_root);
}

int daemon_start(struct bpflb_daemon *d, const char *config_path, struct bpflb_err *err)
{
	bool fresh = false;
	const struct bpflb_daemon_conf *dc;
	char devbuf[256];
	const struct bpflb_cfg_section *ds;
	struct bpflb_map_sizes sizes;
	struct bpflb_config *cfg = NULL;
	struct utsname u;
	int ret;

	memset(d, 0, sizeof(*d));
	d->started_at = time(NULL);
	d->config_path = strdup(config_path);
	d->pipeline.stages_fd = d->pipeline.schema_fd = d->pipeline.pins_fd = -1;
	d->root_lock_fd = -1;

	uname(&u);
	ret = sys_kernel_check(u.release, err);
	if (ret)
		return ret;
	ret = scan_plugins(d, config_path, true, err);
	if (ret)
		return ret;
	ret = daemon_load_config(d, config_path, &cfg, err);
	if (ret)
		return ret;
	ret = daemon_validate(d, cfg, err);
	if (ret)
		goto out;
	ds = daemon_sec(cfg);
	dc = bpflb_daemon_conf(cfg);
	fresh = bpffs_root_fresh(dc->bpffs_root);
	ret = sys_bpffs_prepare(dc->bpffs_root, err);
	if (ret) {
		key_error(err, ds, "bpffs_root", ret);
		goto out;
	}
	/*
	 * One writer per bpffs_root: locked before any map is created or written,
	 * and before the control socket is looked at, so that a second bpflbd
	 * with the same file is told which pid holds the root.
	 */
	ret = bpflb_root_lock(dc->bpffs_root, err);
	if (ret < 0)
		goto out;
	d->root_lock_fd = ret;
	/* A bpflbd already serving this instance: refuse before touching its datapath. */
	ret = control_check_free(dc->control_socket, err);
	if (ret)
		goto out;
	/* An unsafe socket directory is refused before the datapath is touched. */
	ret = control_prepare_dir(dc->control_socket, dc->control_group, err);
	if (ret)
		goto out;
	/* The overlay is read before the datapath is touched: a bad state file refuses. */
	ret = bpflb_state_open(d, dc->state_dir, &d->state, err);
	if (ret)
		goto out;
	d->bpffs_private = sys_bpffs_private(dc->bpffs_root);
	if (d->bpffs_private)
		pr_warn("bpffs_root %s: %s; the pins made now vanish when bpflbd exits",
			dc->bpffs_root, sys_bpffs_private_msg());
	bpflb_services_map_sizes(cfg, &sizes);
	ret = pipeline_open(&d->pipeline, dc->bpffs_root, dc->tc_handle, dc->tc_priority,
			    bpflb_lb_conf(cfg)->maglev_table_size, &sizes, err);
	if (ret)
		goto out;
	d->pipeline_ready = true;
	d->loop = uv_default_loop();
	ret = bpflb_services_open(dc->bpffs_root, d->loop, &d->services, err);
	if (ret)
		goto out;
	ret = bpflb_reconcile(d, &(struct bpflb_change){.reason = BPFLB_RECONCILE_START, .source = cfg},
			      err);
	if (ret)
		goto out;
	d->cfg = cfg;
	cfg = NULL;
	running_config_trim(d);
	apply_conn_limits(d->cfg);
	ret = daemon_ops_register(d, err);
	if (!ret)
		ret = daemon_ops_listen(d, dc, err);
	if (ret)
		goto out;
	bpflb_state_started(d);

	uv_signal_init(d->loop, &d->sig_hup);
	uv_signal_init(d->loop, &d->sig_term);
	uv_signal_init(d->loop, &d->sig_int);
	d->sig_hup.data = d->sig_term.data = d->sig_int.data = d;
	uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
	uv_signal_start(&d->sig_term, on_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_signal, SIGINT);
	uv_timer_init(d->loop, &d->tick);
	d->tick.data = d;
	tick_arm(d);
	watchdog_start(d);

	pr_notice("bpflbd %s running: mode %s, devices %s, config %s", BPFLB_VERSION,
		  d->mode ? d->mode->desc->name : "none",
		  daemon_devices_str(dc, devbuf, sizeof(devbuf)),
		  config_path);
	sd_notifyf(0, "READY=1\nSTATUS=mode %s", d->mode ? d->mode->desc->name : "none");
	ret = 0;
out:
	/* only while holding the root's lock: another bpflbd's fresh pins are not ours */
	if (ret && fresh && d->root_lock_fd >= 0)
		undo_first_start(dc);
	bpflb_config_free(cfg);
	return ret;
}

/* "snat egress" unchanged, or "+policy -egress (now: snat policy)" for the reload line */
static void features_diff(const struct bpflb_config *prev, const struct bpflb_config *next,
			  char *buf, size_t len)
{
	const struct bpflb_daemon_conf *o = bpflb_daemon_conf(prev), *n = bpflb_daemon_conf(next);
	size_t off = 0;
	bool changed = false;

#define ADD(...)                                                                                   \
	(off += off < len ? (size_t)snprintf(buf + off, len - off, __VA_ARGS__) : 0)
	buf[0] = '\0';
	for (int pass = 0; pass < 2; pass++) {
		const struct bpflb_daemon_conf *a = pass ? o : n, *b = pass ? n : o;

		for (uint32_t i = 0; i < a->features.n; i++) {
			bool found = false;

			for (uint32_t j = 0; j < b->features.n && !found; j++)
				found = !strcmp(a->features.v[i], b->features.v[j]);
			if (!found) {
				ADD("%s%c%s", changed ? " " : "", pass ? '-' : '+', a->features.v[i]);
				changed = true;
			}
		}
	}
	ADD("%s", changed ? " (now: " : "");
	for (uint32_t i = 0; i < n->features.n; i++)
		ADD("%s%s", i ? " " : "", n->features.v[i]);
	ADD("%s%s", n->features.n ? "" : "none", changed ? ")" : "");
#undef ADD
}

int daemon_reload(struct bpflb_daemon *d)
{
	struct bpflb_config *next = NULL, *prev = d->cfg;
	struct bpflb_err err = {""};
	char old_mode[64], feat[256];
	int ret;

	snprintf(old_mode, sizeof(old_mode), "%s", d->mode ? d->mode->desc->name : "none");
	sd_notify(0, "RELOADING=1");
	pr_notice("SIGHUP: reloading %s", d->config_path);
	ret = scan_plugins(d, d->config_path, true, &err);
	if (!ret)
		ret = daemon_load_config(d, d->config_path, &next, &err);
	if (!ret)
		ret = bpflb_reconcile(
		    d, &(struct bpflb_change){.reason = BPFLB_RECONCILE_RELOAD, .source = next}, &err);
	if (ret) {
		d->reloads_failed++;
		snprintf(d->last_reload_error, sizeof(d->last_reload_error), "%s", err.msg);
		log_err_msg(LOG_ERR, "reload failed, still running the previous configuration",
			    err.msg);
		bpflb_services_prepared_free(d->svc_prepared);
		d->svc_prepared = NULL;
		bpflb_config_free(next);
		sd_notifyf(0, "READY=1\nSTATUS=reload failed: %s", err.msg);
		return ret;
	}
	features_diff(prev, next, feat, sizeof(feat));
	d->cfg = next;
	bpflb_config_free(prev);
	running_config_trim(d);
	d->reloads_ok++;
	d->last_reload_error[0] = '\0';
	tick_arm(d);
	bpflb_state_started(d);
	apply_conn_limits(d->cfg);
	{
		struct bpflb_services_summary sum;
		char line[256];

		const char *mode = d->mode ? d->mode->desc->name : "none";

		/* one line of what the reload changed, also when it changed nothing */
		bpflb_services_summary(d->services, &sum);
		bpflb_services_summary_str(&sum, line, sizeof(line));
		bool switched = strcmp(old_mode, mode);

		/* "mode M;" first, as scripts grep it; the previous mode after it */
		pr_notice("reload done: mode %s;%s%s%s features %s; services: %s", mode,
			  switched ? " switched from " : "", switched ? old_mode : "",
			  switched ? ";" : "", feat, line);
	}
	sd_notifyf(0, "READY=1\nSTATUS=mode %s", d->mode ? d->mode->desc->name : "none");
	return 0;
}

int daemon_run(struct bpflb_daemon *d)
{
	return uv_run(d->loop, UV_RUN_DEFAULT);
}

static void close_cb(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void daemon_stop(struct bpflb_daemon *d)
{
	daemon_ops_close(d);
	/* Plugins release their userspace side; programs stay in the pinned
	 * stage array and keep forwarding until the next bpflbd takes over. */
	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next)
		if (c->state == PLUGIN_READY || c->state == PLUGIN_ATTACHED)
			c->desc->fini(c);
	bpflb_services_prepared_free(d->svc_prepared);
	d->svc_prepared = NULL;
	bpflb_state_close(d->state);
	d->state = NULL;
	if (d->services)
		bpflb_services_close(d->services);
	d->services = NULL;
	if (d->pipeline_ready)
		pipeline_close(&d->pipeline);
	/* the next bpflbd may take bpffs_root from here on */
	if (d->root_lock_fd >= 0)
		close(d->root_lock_fd);
	d->root_lock_fd = -1;
	if (d->loop) {
		uv_walk(d->loop, close_cb, NULL);
		uv_run(d->loop, UV_RUN_DEFAULT);
		uv_loop_close(d->loop);
	}
	bpflb_config_free(d->cfg);
	d->cfg = NULL;
	plugin_host_free(&d->plugins);
	free(d->config_path);
	pr_info("stopped");
}

int daemon_check_config(const char *config_path, struct bpflb_err *err)
{
	struct bpflb_daemon d = {0};
	struct bpflb_config *cfg = NULL;
	int ret;

	ret = scan_plugins(&d, config_path, true, err);
	if (!ret)
		ret = daemon_load_config(&d, config_path, &cfg, err);
	if (!ret)
		ret = daemon_validate(&d, cfg, err);
	/* the overlay a start or reload would put on top must fit too */
	if (!ret)
		ret = bpflb_state_check(&d, bpflb_daemon_conf(cfg)->state_dir, d.svc_prepared, err);
	if (!ret)
		warn_private_bpffs(bpflb_daemon_conf(cfg)->bpffs_root,
				   "bpflbd started like this keeps its pins only while it runs");
	bpflb_services_prepared_free(d.svc_prepared);
	bpflb_config_free(cfg);
	plugin_host_free(&d.plugins);
	return ret;
}

int daemon_cleanup(const char *config_path, struct bpflb_err *err)
{
	struct bpflb_daemon d = {0};
	struct bpflb_config *cfg = NULL;
	const struct bpflb_cfg_section *ds;
	const struct bpflb_daemon_conf *dc;
	char devbuf[256];
	const char *root;
	int ret, hooks, lock_fd = -1;

	/*
	 * --cleanup enables no plugin: what the file enables does not matter,
	 * and "loaded plugin" lines would only bury the one line of what went.
	 */
	log_set_level(LOG_NOTICE);
	ret = scan_plugins(&d, config_path, false, err);
	log_set_level(LOG_INFO);
	if (!ret)
		ret = daemon_load_config(&d, config_path, &cfg, err);
	if (ret)
		goto out;
	ds = daemon_sec(cfg);
	dc = bpflb_daemon_conf(cfg);
	root = dc->bpffs_root;
	/* Refuse before removing anything: not even the tc hooks of a wrong file. */
	ret = sys_bpffs_check(root, false, err);
	if (ret) {
		if (sys_bpffs_private(root))
			pr_warn("bpffs_root %s: %s", root, sys_bpffs_private_msg());
		key_error(err, ds, "bpffs_root", ret);
		goto out;
	}
	/* A running bpflbd would rewrite what is removed: refuse while one holds the root. */
	lock_fd = bpflb_root_lock(root, err);
	if (lock_fd < 0) {
		ret = lock_fd;
		if (ret == -ENOENT) { /* nothing pinned: nothing to lock, tc hooks still go */
			ret = 0;
			err->msg[0] = '\0';
		}
		else
			goto out;
	}
	warn_private_bpffs(root, "the pins removed now are only this namespace's; the host's "
				 "bpffs is not touched");
	hooks = pipeline_detach_devices(daemon_devices(dc), (int)dc->devices.n, dc->tc_handle,
					dc->tc_priority);
	ret = pipeline_remove_pins(root, err);
	if (ret < 0)
		goto out;
	daemon_devices_str(dc, devbuf, sizeof(devbuf));
	if (hooks)
		pr_notice("removed %d hooks on %s", hooks, devbuf);
	else if (!ret)
		pr_notice("nothing to clean up: no bpflb hooks on %s and no pins under %s", devbuf,
			  root);
	ret = 0;
out:
	if (lock_fd >= 0)
		close(lock_fd);
	bpflb_config_free(cfg);
	plugin_host_free(&d.plugins);
	return ret;
}
