// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The SNAT load-balancing mode (kube-proxy semantics), userspace side.
 *
 * The datapath is bpf/snat.bpf.c (the shared sdk/bpf/bpflb/lb_core.h with the
 * SNAT policy for new flows), embedded here as a skeleton.  Services,
 * backends and node settings live in the shared pinned maps that the core
 * writes (sdk/bpf/bpflb/lb_maps.h); this plugin loads its two stage programs
 * against those pins, puts them into the pipeline, and keeps the device MTUs
 * up to date for the DSR flows it continues after a mode switch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <bpflb/lb.h>
#include <bpflb/plugin.h>
#include <bpflb/lb_mode.h>

#include "snat_bpf.skel.h"

struct snat_priv {
	struct snat_bpf *skel;
};

static const struct bpflb_feature snat_requires[] = {
	BPFLB_LB_MODE_FEATURES,
	{ BPFLB_FEAT_END, 0, NULL },
};

static int snat_init(struct bpflb_plugin_ctx *ctx)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpflb_pin_root(ctx));
	struct snat_priv *priv;
	int err;

	priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	priv->skel = snat_bpf__open_opts(&opts);
	if (!priv->skel) {
		err = -errno;
		bpflb_log(ctx, LOG_ERR, "opening the BPF object failed: %d", err);
		goto out;
	}
	priv->skel->rodata->bpflb_lb_policy = BPFLB_POLICY_SNAT;
	/* Loading reuses the maps pinned under the instance's root (or creates them). */
	err = snat_bpf__load(priv->skel);
	if (err) {
		bpflb_log(ctx, LOG_ERR, "loading the BPF programs failed (%d); "
			  "see the verifier log above", err);
		goto out;
	}
	bpflb_set_priv(ctx, priv);
	return 0;
out:
	snat_bpf__destroy(priv->skel);
	free(priv);
	return err;
}

static int snat_validate(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			 struct bpflb_err *err)
{
	/* Nothing of its own to check: services and node settings belong to the core. */
	return 0;
}

static void snat_sync_mtu(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *cfg)
{
	struct snat_priv *priv = bpflb_priv(ctx);
	int rc = bpflb_lb_mode_sync_mtu(ctx, bpf_map__fd(priv->skel->maps.bpflb_dev_mtu), cfg);

	if (rc)
		bpflb_log(ctx, LOG_WARNING, "cannot read a device MTU (%s); DSR packets are "
			  "checked against 1500 there", strerror(-rc));
}

/* DSR flows started under another mode continue here: their packets need the MTU. */
static int snat_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
		      const struct bpflb_config *prev, struct bpflb_err *err)
{
	struct snat_priv *priv = bpflb_priv(ctx);
	int rc;

	snat_sync_mtu(ctx, next);
	/* Other nodes' IP-in-IP to our backends is decapsulated in every mode. */
	rc = bpflb_lb_mode_sync_peers(next, bpf_map__fd(priv->skel->maps.bpflb_peers));
	if (rc)
		return bpflb_err_set(err, "snat: cannot write the cluster's nodes into "
				     "bpflb_peers: %s", strerror(-rc)), rc;
	return 0;
}

static int snat_attach(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err)
{
	struct snat_priv *priv = bpflb_priv(ctx);
	int rc;

	rc = bpflb_stage_set(ctx, BPFLB_STAGE_IN_LB, bpf_program__fd(priv->skel->progs.snat_in));
	if (rc) {
		snprintf(err->msg, sizeof(err->msg),
			 "snat: cannot put snat_in into the ingress LB stage: %d", rc);
		return rc;
	}
	rc = bpflb_stage_set(ctx, BPFLB_STAGE_OUT_LB, bpf_program__fd(priv->skel->progs.snat_out));
	if (rc) {
		snprintf(err->msg, sizeof(err->msg),
			 "snat: cannot put snat_out into the egress LB stage: %d", rc);
		return rc;
	}
	return 0;
}

static int snat_detach(struct bpflb_plugin_ctx *ctx)
{
	struct snat_priv *priv = bpflb_priv(ctx);
	int rc, rc2;

	if (!priv)
		return 0;
	rc = bpflb_lb_mode_detach_stage(ctx, BPFLB_STAGE_IN_LB,
					bpf_program__fd(priv->skel->progs.snat_in));
	rc2 = bpflb_lb_mode_detach_stage(ctx, BPFLB_STAGE_OUT_LB,
					 bpf_program__fd(priv->skel->progs.snat_out));
	return rc ? rc : rc2;
}

static void snat_fini(struct bpflb_plugin_ctx *ctx)
{
	struct snat_priv *priv = bpflb_priv(ctx);

	if (!priv)
		return;
	/* Unloads our programs; the pinned maps stay for the next mode or restart. */
	snat_bpf__destroy(priv->skel);
	free(priv);
	bpflb_set_priv(ctx, NULL);
}

static void snat_tick(struct bpflb_plugin_ctx *ctx)
{
	if (bpflb_priv(ctx))
		snat_sync_mtu(ctx, bpflb_config(ctx));
}

BPFLB_PLUGIN_DEFINE(
	.name = "snat",
	.version = "0.1.0",
	.kind = BPFLB_PLUGIN_MODE,
	.map_schema_version = BPFLB_LB_SCHEMA,
	.description = "kube-proxy semantics: DNAT to the backend, SNAT to the node for remote backends",
	.requires = snat_requires,
	.init = snat_init,
	.validate = snat_validate,
	.apply = snat_apply,
	.attach = snat_attach,
	.detach = snat_detach,
	.fini = snat_fini,
	.tick = snat_tick,
);
