/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The userspace side of a load-balancing mode plugin (snat, dsr, hybrid).
 *
 * The three modes share one datapath (sdk/bpf/bpflb/lb_core.h) and differ only
 * in the policy for a flow's first packet, so their plugins differ only in
 * names: each plugins/<mode>/<mode>.c defines
 *
 *   LB_MODE         the mode's name as a bare word (snat): the skeleton is
 *                   <mode>_bpf, its stage programs <mode>_in and <mode>_out
 *   LB_MODE_POLICY  enum bpflb_lb_policy for new flows
 *   LB_MODE_DESC    one line for `bpflbctl plugin list`
 *   LB_MODE_FLOWS   how new flows to backends on other nodes travel (logged)
 *
 * includes its skeleton and then this file.  Services, backends and node
 * settings live in the shared pinned maps the core writes; the plugin loads
 * its two stage programs against those pins, puts them into the pipeline, and
 * keeps the device MTUs (DSR packets are checked against them in every mode,
 * since flows keep their forwarding across mode switches) and the cluster's
 * nodes (whose IP-in-IP is decapsulated) up to date.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include <bpflb/lb.h>
#include <bpflb/lb_mode.h>
#include <bpflb/plugin.h>

#define LBM_CAT_(a, b) a##b
#define LBM_CAT(a, b) LBM_CAT_(a, b)
#define LBM_STR_(a) #a
#define LBM_STR(a) LBM_STR_(a)
#define LBM_NAME LBM_STR(LB_MODE)
#define LBM_SKEL LBM_CAT(LB_MODE, _bpf)
#define LBM_SKEL_FN(f) LBM_CAT(LBM_SKEL, __##f)
#define LBM_PROG_IN LBM_CAT(LB_MODE, _in)
#define LBM_PROG_OUT LBM_CAT(LB_MODE, _out)

struct lbm_priv {
	struct LBM_SKEL *skel;
	char dispatch[16]; /* [lb] dsr_dispatch last logged */
};

static const struct bpflb_feature lbm_requires[] = {
	BPFLB_LB_MODE_FEATURES,
	{ BPFLB_FEAT_END, 0, NULL },
};

static int lbm_init(struct bpflb_plugin_ctx *ctx)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpflb_pin_root(ctx));
	struct lbm_priv *priv;
	int err;

	priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	priv->skel = LBM_SKEL_FN(open_opts)(&opts);
	if (!priv->skel) {
		err = -errno;
		bpflb_log(ctx, LOG_ERR, "opening the BPF object failed: %d", err);
		goto out;
	}
	priv->skel->rodata->bpflb_lb_policy = LB_MODE_POLICY;
	/*
	 * Loading reuses the maps pinned under the instance's root (or creates
	 * them) once they have the configured sizes; our pins are recorded for
	 * --cleanup.
	 */
	err = bpflb_pins_prepare(ctx, priv->skel->obj) ?: LBM_SKEL_FN(load)(priv->skel);
	if (err) {
		bpflb_log(ctx, LOG_ERR, "loading the BPF programs failed (%d); see the verifier log above",
			  err);
		goto out;
	}
	bpflb_set_priv(ctx, priv);
	return 0;
out:
	LBM_SKEL_FN(destroy)(priv->skel);
	free(priv);
	return err;
}

static int lbm_validate(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			struct bpflb_err *err)
{
	/* Nothing of its own: [lb] (dsr_dispatch included) and the services are the core's. */
	return 0;
}

static void lbm_sync_mtu(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *cfg)
{
	struct lbm_priv *priv = bpflb_priv(ctx);
	int rc = bpflb_lb_mode_sync_mtu(ctx, bpf_map__fd(priv->skel->maps.bpflb_dev_mtu), cfg);

	if (rc)
		bpflb_log(ctx, LOG_WARNING,
			  "cannot read a device MTU (%s); DSR packets are checked against 1500 there",
			  strerror(-rc));
}

static int lbm_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
		     const struct bpflb_config *prev, struct bpflb_err *err)
{
	struct lbm_priv *priv = bpflb_priv(ctx);
	const char *d = bpflb_cfg_str(bpflb_cfg_section(next, "lb", 0), "dsr_dispatch");
	int rc;

	if (d && strcmp(d, priv->dispatch)) {
		bpflb_log(ctx, LOG_NOTICE, "new flows to backends on other nodes: %s (DSR dispatch: %s)",
			  LB_MODE_FLOWS, !strcmp(d, "ipip") ? "IP-in-IP" : "IPv4 option");
		snprintf(priv->dispatch, sizeof(priv->dispatch), "%s", d);
	}
	lbm_sync_mtu(ctx, next);
	/* Other nodes' IP-in-IP to our backends is decapsulated in every mode. */
	rc = bpflb_lb_mode_sync_peers(next, bpf_map__fd(priv->skel->maps.bpflb_peers));
	if (rc)
		return bpflb_err_set(err, "%s: cannot write the cluster's nodes into bpflb_peers: %s",
				     LBM_NAME, strerror(-rc)), rc;
	return 0;
}

static int lbm_attach(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err)
{
	struct lbm_priv *priv = bpflb_priv(ctx);
	int rc;

	rc = bpflb_stage_set(ctx, BPFLB_STAGE_IN_LB, bpf_program__fd(priv->skel->progs.LBM_PROG_IN));
	if (rc)
		return bpflb_err_set(err, "%s: cannot put %s into the ingress LB stage: %s", LBM_NAME,
				     LBM_STR(LBM_PROG_IN), strerror(-rc)), rc;
	rc = bpflb_stage_set(ctx, BPFLB_STAGE_OUT_LB,
			     bpf_program__fd(priv->skel->progs.LBM_PROG_OUT));
	if (rc)
		return bpflb_err_set(err, "%s: cannot put %s into the egress LB stage: %s", LBM_NAME,
				     LBM_STR(LBM_PROG_OUT), strerror(-rc)), rc;
	return 0;
}

static int lbm_detach(struct bpflb_plugin_ctx *ctx)
{
	struct lbm_priv *priv = bpflb_priv(ctx);
	int rc, rc2;

	if (!priv)
		return 0;
	/* Only slots still holding our programs: the next mode attached first. */
	rc = bpflb_lb_mode_detach_stage(ctx, BPFLB_STAGE_IN_LB,
					bpf_program__fd(priv->skel->progs.LBM_PROG_IN));
	rc2 = bpflb_lb_mode_detach_stage(ctx, BPFLB_STAGE_OUT_LB,
					 bpf_program__fd(priv->skel->progs.LBM_PROG_OUT));
	return rc ? rc : rc2;
}

static void lbm_fini(struct bpflb_plugin_ctx *ctx)
{
	struct lbm_priv *priv = bpflb_priv(ctx);

	if (!priv)
		return;
	/* Unloads our programs; the pinned maps stay for the next mode or restart. */
	LBM_SKEL_FN(destroy)(priv->skel);
	free(priv);
	bpflb_set_priv(ctx, NULL);
}

static void lbm_tick(struct bpflb_plugin_ctx *ctx)
{
	if (bpflb_priv(ctx))
		lbm_sync_mtu(ctx, bpflb_config(ctx));
}

/* The mode drives the shared maps and pins none of its own. */
static const struct bpflb_map_set lbm_map_sets[] = {
	{BPFLB_MAP_SET_LB, BPFLB_LB_SCHEMA},
	{NULL, 0},
};

BPFLB_PLUGIN_DEFINE(.name = LBM_NAME, .version = "0.1.0", .kind = BPFLB_PLUGIN_MODE,
		    .map_sets = lbm_map_sets, .description = LB_MODE_DESC,
		    .requires = lbm_requires, .init = lbm_init, .validate = lbm_validate,
		    .apply = lbm_apply, .attach = lbm_attach, .detach = lbm_detach,
		    .fini = lbm_fini, .tick = lbm_tick);
