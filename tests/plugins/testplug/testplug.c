// SPDX-License-Identifier: GPL-2.0-only
/*
 * testplug: the plugin the core's integration test runs.  A feature plugin
 * with a real BPF program in the first ingress stage that drops UDP to
 * [testplug] drop_port.  It exercises every hook of the ABI.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpflb/plugin.h>

#include "testplug.h"
#include "testplug_bpf.skel.h"

struct testplug {
	struct testplug_bpf *skel;
};

static const struct bpflb_cfg_key testplug_keys[] = {
	{ .name = "drop_port", .type = BPFLB_CFG_U32, .def = "0", .min = 0, .max = 65535,
	  .help = "UDP destination port to drop at ingress, 0 for none" },
	{ .name = "fail_apply", .type = BPFLB_CFG_BOOL, .def = "no",
	  .help = "make apply fail (tests the core's rollback of a half-applied reload)" },
	{ 0 },
};

static const struct bpflb_cfg_section_def testplug_section = {
	.name = "testplug", .keys = testplug_keys,
};

static const struct bpflb_cfg_section_def *const testplug_sections[] = { &testplug_section,
									   NULL };

static int testplug_init(struct bpflb_plugin_ctx *ctx)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = bpflb_pin_root(ctx));
	struct testplug *tp = calloc(1, sizeof(*tp));
	int ret;

	if (!tp)
		return -ENOMEM;
	tp->skel = testplug_bpf__open_opts(&oo);
	if (!tp->skel) {
		ret = -errno;
		goto err;
	}
	ret = bpflb_pins_prepare(ctx, tp->skel->obj) ?: testplug_bpf__load(tp->skel);
	if (ret)
		goto err;
	bpflb_set_priv(ctx, tp);
	return 0;
err:
	testplug_bpf__destroy(tp->skel);
	free(tp);
	bpflb_log(ctx, LOG_ERR, "cannot load BPF object: %s", strerror(-ret));
	return ret;
}

static int testplug_validate(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			     struct bpflb_err *err)
{
	const struct bpflb_cfg_section *sec = bpflb_cfg_section(next, "testplug", 0);

	/* Port 22 stands for "never cut the operator's SSH": refuse it. */
	if (bpflb_cfg_u32(sec, "drop_port") == 22)
		return bpflb_cfg_error(err, sec, "drop_port", 0,
				       "refusing to drop the SSH port; expected any other port");
	return 0;
}

static int testplug_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			  const struct bpflb_config *prev, struct bpflb_err *err)
{
	struct testplug *tp = bpflb_priv(ctx);
	struct testplug_cfg c = {
		.drop_port = (__u16)bpflb_cfg_u32(bpflb_cfg_section(next, "testplug", 0),
						  "drop_port"),
	};
	__u32 zero = 0;

	if (bpflb_cfg_bool(bpflb_cfg_section(next, "testplug", 0), "fail_apply"))
		return bpflb_err_set(err, "testplug: fail_apply is set"), -EIO;
	if (prev && bpflb_cfg_u32(bpflb_cfg_section(prev, "testplug", 0), "drop_port") ==
			    c.drop_port)
		return 0; /* nothing changed */
	if (bpf_map_update_elem(bpf_map__fd(tp->skel->maps.testplug_cfg), &zero, &c, BPF_ANY))
		return bpflb_err_set(err, "testplug: cannot update config map: %s",
				     strerror(errno)), -errno;
	bpflb_log(ctx, LOG_INFO, "dropping UDP to port %u", c.drop_port);
	return 0;
}

static int testplug_attach(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err)
{
	struct testplug *tp = bpflb_priv(ctx);

	return bpflb_stage_set(ctx, BPFLB_STAGE_IN_PRE,
			       bpf_program__fd(tp->skel->progs.testplug_in));
}

static int testplug_detach(struct bpflb_plugin_ctx *ctx)
{
	struct testplug *tp = bpflb_priv(ctx);
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(tp->skel->progs.testplug_in), &info, &len))
		return -errno;
	if (bpflb_stage_prog_id(ctx, BPFLB_STAGE_IN_PRE) == info.id)
		return bpflb_stage_clear(ctx, BPFLB_STAGE_IN_PRE);
	return 0;
}

static void testplug_fini(struct bpflb_plugin_ctx *ctx)
{
	struct testplug *tp = bpflb_priv(ctx);

	if (!tp)
		return;
	testplug_bpf__destroy(tp->skel);
	free(tp);
	bpflb_set_priv(ctx, NULL);
}

static const struct bpflb_feature testplug_requires[] = {
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PROG_ARRAY, "pipeline stages" },
	{ BPFLB_FEAT_HELPER, BPF_FUNC_tail_call, "bpf_tail_call" },
	{ BPFLB_FEAT_END },
};

static const char *const testplug_own_maps[] = { "testplug_counts", NULL };

BPFLB_PLUGIN_DEFINE(.name = "testplug", .version = "1.0", .kind = BPFLB_PLUGIN_FEATURE,
		    .map_schema_version = 1, .own_maps = testplug_own_maps,
		    .description = "drops UDP to one port (tests)",
		    .sections = testplug_sections, .requires = testplug_requires,
		    .init = testplug_init, .validate = testplug_validate,
		    .apply = testplug_apply, .attach = testplug_attach,
		    .detach = testplug_detach, .fini = testplug_fini);
