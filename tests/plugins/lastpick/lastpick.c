// SPDX-License-Identifier: GPL-2.0-only
/*
 * lastpick: a fixture load-balancing mode built outside plugins/, from the
 * SDK alone (<bpflb/plugin.h>, <bpflb/lb_mode.h>, the shared BPF datapath),
 * as a vendor builds one.  tests/e2e/vendor_mode.sh drops it into a plugin
 * directory beside snat and switches to it and back live.
 *
 * What makes it a mode is its descriptor: kind BPFLB_PLUGIN_MODE, the shared
 * load-balancing maps it drives (map_sets: BPFLB_MAP_SET_LB at the schema it
 * was built with), and the one map it owns (own_maps: lastpick_stats, at
 * map_schema_version).  The core names no mode: `mode = lastpick` is valid
 * because this file is loaded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include <bpflb/lb.h>
#include <bpflb/lb_mode.h>
#include <bpflb/plugin.h>

#include "lastpick.h"
#include "lastpick_bpf.skel.h"

static const struct bpflb_feature lastpick_requires[] = {
	BPFLB_LB_MODE_FEATURES,
	{BPFLB_FEAT_END, 0, NULL},
};

static int lastpick_init(struct bpflb_plugin_ctx *ctx)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpflb_pin_root(ctx));
	struct lastpick_bpf *skel = lastpick_bpf__open_opts(&opts);
	int err;

	if (!skel)
		return -errno;
	/* The shared maps sized as [lb] says, every pin checked against our descriptor. */
	err = bpflb_pins_prepare(ctx, skel->obj) ?: lastpick_bpf__load(skel);
	if (err) {
		bpflb_log(ctx, LOG_ERR, "loading the BPF object failed: %s", strerror(-err));
		lastpick_bpf__destroy(skel);
		return err;
	}
	bpflb_set_priv(ctx, skel);
	return 0;
}

static int lastpick_validate(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			     struct bpflb_err *err)
{
	return 0; /* no section of its own: services and [lb] are the core's */
}

static int lastpick_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			  const struct bpflb_config *prev, struct bpflb_err *err)
{
	struct lastpick_bpf *skel = bpflb_priv(ctx);
	int rc;

	/* What every mode on lb_core.h keeps up to date: device MTUs, the cluster's nodes. */
	rc = bpflb_lb_mode_sync_mtu(ctx, bpf_map__fd(skel->maps.bpflb_dev_mtu), next);
	if (rc)
		bpflb_log(ctx, LOG_WARNING, "cannot read a device MTU: %s", strerror(-rc));
	rc = bpflb_lb_mode_sync_peers(next, bpf_map__fd(skel->maps.bpflb_peers));
	if (rc)
		return bpflb_err_set(err, "lastpick: cannot write bpflb_peers: %s", strerror(-rc)),
		       rc;
	return 0;
}

static int lastpick_attach(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err)
{
	struct lastpick_bpf *skel = bpflb_priv(ctx);
	int rc;

	rc = bpflb_stage_set(ctx, BPFLB_STAGE_IN_LB, bpf_program__fd(skel->progs.lastpick_in)) ?:
	     bpflb_stage_set(ctx, BPFLB_STAGE_OUT_LB, bpf_program__fd(skel->progs.lastpick_out));
	if (rc)
		return bpflb_err_set(err, "lastpick: cannot fill the LB stages: %s",
				     strerror(-rc)), rc;
	return 0;
}

static int lastpick_detach(struct bpflb_plugin_ctx *ctx)
{
	struct lastpick_bpf *skel = bpflb_priv(ctx);

	if (!skel)
		return 0;
	/* The next mode attached first: leave its programs alone. */
	return bpflb_lb_mode_detach_stage(ctx, BPFLB_STAGE_IN_LB,
					  bpf_program__fd(skel->progs.lastpick_in)) ?:
	       bpflb_lb_mode_detach_stage(ctx, BPFLB_STAGE_OUT_LB,
					  bpf_program__fd(skel->progs.lastpick_out));
}

static void lastpick_fini(struct bpflb_plugin_ctx *ctx)
{
	lastpick_bpf__destroy(bpflb_priv(ctx));
	bpflb_set_priv(ctx, NULL);
}

/* `bpflbctl lastpick stats`: {"picks": N, "last": "ADDR:PORT"} from its own map. */
static int lastpick_control(struct bpflb_plugin_ctx *ctx, const char *cmd, struct json_object *req,
			    struct json_object **reply)
{
	struct lastpick_bpf *skel = bpflb_priv(ctx);
	struct lastpick_stats st;
	char addr[INET_ADDRSTRLEN], last[INET_ADDRSTRLEN + 8];
	__u32 zero = 0;

	if (strcmp(cmd, "stats"))
		return -ENOENT;
	if (!skel || bpf_map_lookup_elem(bpf_map__fd(skel->maps.lastpick_stats), &zero, &st))
		return -ENOENT;
	inet_ntop(AF_INET, &st.addr, addr, sizeof(addr));
	snprintf(last, sizeof(last), "%s:%u", addr, ntohs(st.port));
	*reply = json_object_new_object();
	json_object_object_add(*reply, "picks", json_object_new_int64((int64_t)st.picks));
	json_object_object_add(*reply, "last", json_object_new_string(st.picks ? last : ""));
	return 0;
}

static const struct bpflb_map_set lastpick_map_sets[] = {
	{BPFLB_MAP_SET_LB, BPFLB_LB_SCHEMA},
	{NULL, 0},
};
static const char *const lastpick_own_maps[] = {"lastpick_stats", NULL};

BPFLB_PLUGIN_DEFINE(.name = "lastpick", .version = "1.0", .kind = BPFLB_PLUGIN_MODE,
		    .map_schema_version = LASTPICK_SCHEMA, .map_sets = lastpick_map_sets,
		    .own_maps = lastpick_own_maps,
		    .description = "fixture vendor mode: every new flow to the service's last slot",
		    .requires = lastpick_requires, .init = lastpick_init,
		    .validate = lastpick_validate, .apply = lastpick_apply,
		    .attach = lastpick_attach, .detach = lastpick_detach, .fini = lastpick_fini,
		    .control = lastpick_control);
