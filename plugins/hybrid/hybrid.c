// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The hybrid load-balancing mode, userspace side: new TCP flows to backends
 * on other nodes by DSR, new UDP flows by SNAT.
 *
 * The datapath is bpf/hybrid.bpf.c (the shared sdk/bpf/bpflb/lb_core.h with
 * the hybrid policy for new flows), embedded here as a skeleton.  Services, backends
 * and node settings, the dispatch method included ([lb] dsr_dispatch), live
 * in the shared pinned maps the core writes; this plugin loads its two stage
 * programs against those pins, puts them into the pipeline, and keeps the
 * device MTUs the datapath checks DSR packets against up to date.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include <bpflb/lb.h>
#include <bpflb/plugin.h>
#include <bpflb/lb_mode.h>

#include "hybrid_bpf.skel.h"

struct hybrid_priv {
	struct hybrid_bpf *skel;
	char dispatch[16]; /* last logged [lb] dsr_dispatch */
};

static const struct bpflb_feature hybrid_requires[] = {
    BPFLB_LB_MODE_FEATURES,
    {BPFLB_FEAT_END, 0, NULL},
};

static int hybrid_init(struct bpflb_plugin_ctx *ctx)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpflb_pin_root(ctx));
	struct hybrid_priv *priv;
	int err;

	priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	priv->skel = hybrid_bpf__open_opts(&opts);
	if (!priv->skel) {
		err = -errno;
		bpflb_log(ctx, LOG_ERR, "opening the BPF object failed: %d", err);
		goto out;
	}
	priv->skel->rodata->bpflb_lb_policy = BPFLB_POLICY_HYBRID;
	/* Loading reuses the maps pinned under the instance's root (or creates them). */
	err = hybrid_bpf__load(priv->skel);
	if (err) {
		bpflb_log(ctx, LOG_ERR,
			  "loading the BPF programs failed (%d); "
			  "see the verifier log above",
			  err);
		goto out;
	}
	bpflb_set_priv(ctx, priv);
	return 0;
out:
	hybrid_bpf__destroy(priv->skel);
	free(priv);
	return err;
}

static int hybrid_validate(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			   struct bpflb_err *err)
{
	/* Nothing of its own: [lb] dsr_dispatch and the services belong to the core. */
	return 0;
}

static void hybrid_sync_mtu(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *cfg)
{
	struct hybrid_priv *priv = bpflb_priv(ctx);
	int rc = bpflb_lb_mode_sync_mtu(ctx, bpf_map__fd(priv->skel->maps.bpflb_dev_mtu), cfg);

	if (rc)
		bpflb_log(ctx, LOG_WARNING,
			  "cannot read a device MTU (%s); DSR packets are "
			  "checked against 1500 there",
			  strerror(-rc));
}

static int hybrid_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			const struct bpflb_config *prev, struct bpflb_err *err)
{
	struct hybrid_priv *priv = bpflb_priv(ctx);
	const char *d = bpflb_cfg_str(bpflb_cfg_section(next, "lb", 0), "dsr_dispatch");
	int rc;

	if (d && strcmp(d, priv->dispatch)) {
		bpflb_log(ctx, LOG_NOTICE,
			  "new flows to backends on other nodes: TCP by DSR, "
			  "dispatched by %s; UDP by SNAT",
			  !strcmp(d, "ipip") ? "IP-in-IP" : "the IPv4 option");
		snprintf(priv->dispatch, sizeof(priv->dispatch), "%s", d);
	}
	hybrid_sync_mtu(ctx, next);
	/* Other nodes' IP-in-IP to our backends is decapsulated in every mode. */
	rc = bpflb_lb_mode_sync_peers(next, bpf_map__fd(priv->skel->maps.bpflb_peers));
	if (rc)
		return bpflb_err_set(err,
				     "hybrid: cannot write the cluster's nodes into "
				     "bpflb_peers: %s",
				     strerror(-rc)),
		       rc;
	return 0;
}

static int hybrid_attach(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err)
{
	struct hybrid_priv *priv = bpflb_priv(ctx);
	int rc;

	rc = bpflb_stage_set(ctx, BPFLB_STAGE_IN_LB, bpf_program__fd(priv->skel->progs.hybrid_in));
	if (rc) {
		bpflb_err_set(err, "hybrid: cannot put hybrid_in into the ingress LB stage: %d",
			      rc);
		return rc;
	}
	rc =
	    bpflb_stage_set(ctx, BPFLB_STAGE_OUT_LB, bpf_program__fd(priv->skel->progs.hybrid_out));
	if (rc) {
		bpflb_err_set(err, "hybrid: cannot put hybrid_out into the egress LB stage: %d",
			      rc);
		return rc;
	}
	return 0;
}

static int hybrid_detach(struct bpflb_plugin_ctx *ctx)
{
	struct hybrid_priv *priv = bpflb_priv(ctx);
	int rc, rc2;

	if (!priv)
		return 0;
	rc = bpflb_lb_mode_detach_stage(ctx, BPFLB_STAGE_IN_LB,
					bpf_program__fd(priv->skel->progs.hybrid_in));
	rc2 = bpflb_lb_mode_detach_stage(ctx, BPFLB_STAGE_OUT_LB,
					 bpf_program__fd(priv->skel->progs.hybrid_out));
	return rc ? rc : rc2;
}

static void hybrid_fini(struct bpflb_plugin_ctx *ctx)
{
	struct hybrid_priv *priv = bpflb_priv(ctx);

	if (!priv)
		return;
	/* Unloads our programs; the pinned maps stay for the next mode or restart. */
	hybrid_bpf__destroy(priv->skel);
	free(priv);
	bpflb_set_priv(ctx, NULL);
}

static void hybrid_tick(struct bpflb_plugin_ctx *ctx)
{
	if (bpflb_priv(ctx))
		hybrid_sync_mtu(ctx, bpflb_config(ctx));
}

/* clang-format off */
BPFLB_PLUGIN_DEFINE(
	.name = "hybrid",
	.version = "0.1.0",
	.kind = BPFLB_PLUGIN_MODE,
	.map_schema_version = BPFLB_LB_SCHEMA,
	.description = "TCP by direct server return, UDP by SNAT",
	.requires = hybrid_requires,
	.init = hybrid_init,
	.validate = hybrid_validate,
	.apply = hybrid_apply,
	.attach = hybrid_attach,
	.detach = hybrid_detach,
	.fini = hybrid_fini,
	.tick = hybrid_tick,
);
/* clang-format on */
