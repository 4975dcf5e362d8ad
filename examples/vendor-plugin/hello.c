// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * hello: the smallest useful bpflb plugin, built out of tree against the
 * installed SDK (see Makefile).  A feature plugin that counts packets in the
 * IN_POST stage; [hello] greeting shows how a plugin declares config keys.
 */
#include <errno.h>
#include <stdlib.h>

#include <bpf/libbpf.h>
#include <bpflb/plugin.h>

#include "hello.skel.h"

static const struct bpflb_cfg_key hello_keys[] = {
	{ .name = "greeting", .type = BPFLB_CFG_STRING, .def = "hello",
	  .help = "word logged when the plugin applies a configuration" },
	{ 0 },
};
static const struct bpflb_cfg_section_def hello_section = { .name = "hello", .keys = hello_keys };
static const struct bpflb_cfg_section_def *const hello_sections[] = { &hello_section, NULL };

static int hello_init(struct bpflb_plugin_ctx *ctx)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = bpflb_pin_root(ctx));
	struct hello *skel = hello__open_opts(&oo);
	int ret;

	if (!skel)
		return -errno;
	/* Before load: sizes of the shared maps, and our pins recorded for --cleanup. */
	ret = bpflb_pins_prepare(ctx, skel->obj) ?: hello__load(skel);
	if (ret) {
		hello__destroy(skel);
		return ret;
	}
	bpflb_set_priv(ctx, skel);
	return 0;
}

static int hello_validate(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			  struct bpflb_err *err)
{
	return 0;
}

static int hello_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
		       const struct bpflb_config *prev, struct bpflb_err *err)
{
	bpflb_log(ctx, LOG_INFO, "%s from an out-of-tree plugin",
		  bpflb_cfg_str(bpflb_cfg_section(next, "hello", 0), "greeting"));
	return 0;
}

static int hello_attach(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err)
{
	struct hello *skel = bpflb_priv(ctx);

	return bpflb_stage_set(ctx, BPFLB_STAGE_IN_POST, bpf_program__fd(skel->progs.hello_in));
}

static int hello_detach(struct bpflb_plugin_ctx *ctx)
{
	return bpflb_stage_clear(ctx, BPFLB_STAGE_IN_POST);
}

static void hello_fini(struct bpflb_plugin_ctx *ctx)
{
	hello__destroy(bpflb_priv(ctx));
}

/* Every map the BPF object pins is declared: here one of its own, at version 1. */
static const char *const hello_own_maps[] = {"hello_packets", NULL};

BPFLB_PLUGIN_DEFINE(.name = "hello", .version = "0.1", .kind = BPFLB_PLUGIN_FEATURE,
		    .map_schema_version = 1, .own_maps = hello_own_maps,
		    .description = "counts packets (SDK example)",
		    .sections = hello_sections, .init = hello_init, .validate = hello_validate,
		    .apply = hello_apply, .attach = hello_attach, .detach = hello_detach,
		    .fini = hello_fini);
