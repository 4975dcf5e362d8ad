// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The SNAT load-balancing mode (kube-proxy semantics), userspace side.
 *
 * The datapath is bpf/snat.bpf.c, embedded here as a skeleton.  Services,
 * backends and node settings live in the shared pinned maps that the core
 * writes (sdk/bpf/bpflb/lb_maps.h); this plugin only loads its two stage
 * programs against those pins and puts them into the pipeline.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <bpflb/lb.h>
#include <bpflb/plugin.h>

#include "snat_bpf.skel.h"

struct snat_priv {
	struct snat_bpf *skel;
};

static const struct bpflb_feature snat_requires[] = {
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PROG_ARRAY, "BPF_MAP_TYPE_PROG_ARRAY" },
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_LRU_HASH, "BPF_MAP_TYPE_LRU_HASH" },
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_HASH_OF_MAPS, "BPF_MAP_TYPE_HASH_OF_MAPS" },
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERF_EVENT_ARRAY, "BPF_MAP_TYPE_PERF_EVENT_ARRAY" },
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERCPU_HASH, "BPF_MAP_TYPE_PERCPU_HASH" },
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERCPU_ARRAY, "BPF_MAP_TYPE_PERCPU_ARRAY" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_fib_lookup, "bpf_fib_lookup" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_redirect, "bpf_redirect" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_tail_call, "bpf_tail_call" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_l3_csum_replace, "bpf_l3_csum_replace" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_l4_csum_replace, "bpf_l4_csum_replace" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_csum_diff, "bpf_csum_diff" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_store_bytes, "bpf_skb_store_bytes" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_load_bytes, "bpf_skb_load_bytes" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_pull_data, "bpf_skb_pull_data" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_change_tail, "bpf_skb_change_tail" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_perf_event_output, "bpf_perf_event_output" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_get_prandom_u32, "bpf_get_prandom_u32" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns" },
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

static int snat_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
		      const struct bpflb_config *prev, struct bpflb_err *err)
{
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

/* Id of the program in a stage slot, 0 when empty. */
static __u32 snat_stage_prog_id(struct snat_priv *priv, __u32 stage)
{
	__u32 id = 0;

	if (bpf_map_lookup_elem(bpf_map__fd(priv->skel->maps.bpflb_stages), &stage, &id))
		return 0;
	return id;
}

static __u32 snat_prog_id(struct bpf_program *prog)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	return info.id;
}

/*
 * On a mode switch the core attaches the new mode first (an atomic replacement
 * of each slot) and detaches the old one after: clear a slot only while it
 * still holds our program, never the successor's.
 */
static int snat_detach_stage(struct bpflb_plugin_ctx *ctx, struct snat_priv *priv,
			     enum bpflb_stage stage, struct bpf_program *prog)
{
	__u32 ours = snat_prog_id(prog);

	if (!ours || snat_stage_prog_id(priv, stage) != ours)
		return 0;
	return bpflb_stage_clear(ctx, stage);
}

static int snat_detach(struct bpflb_plugin_ctx *ctx)
{
	struct snat_priv *priv = bpflb_priv(ctx);
	int rc, rc2;

	if (!priv)
		return 0;
	rc = snat_detach_stage(ctx, priv, BPFLB_STAGE_IN_LB, priv->skel->progs.snat_in);
	rc2 = snat_detach_stage(ctx, priv, BPFLB_STAGE_OUT_LB, priv->skel->progs.snat_out);
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
);
