// SPDX-License-Identifier: GPL-2.0-only
/*
 * What bpflbd exports to plugins (declared in sdk/include/bpflb/plugin.h).
 * These are the only symbols of the executable a plugin may use.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "daemon.h"
#include "log.h"

#define BPFLB_EXPORT __attribute__((visibility("default")))

BPFLB_EXPORT void bpflb_log(struct bpflb_plugin_ctx *ctx, int level, const char *fmt, ...)
{
	/* journalctl BPFLB_PLUGIN=snat selects one plugin's lines */
	const struct log_field fields[] = {{"plugin", ctx ? ctx->desc->name : NULL}, {NULL}};
	va_list ap;

	va_start(ap, fmt);
	log_vat(level, ctx ? ctx->log_prefix : NULL, NULL, 0, NULL, ctx ? fields : NULL, fmt, ap);
	va_end(ap);
}

BPFLB_EXPORT void *bpflb_priv(struct bpflb_plugin_ctx *ctx)
{
	return ctx->priv;
}

BPFLB_EXPORT void bpflb_set_priv(struct bpflb_plugin_ctx *ctx, void *priv)
{
	ctx->priv = priv;
}

BPFLB_EXPORT const struct bpflb_config *bpflb_config(struct bpflb_plugin_ctx *ctx)
{
	return ctx->daemon->cfg;
}

BPFLB_EXPORT const char *bpflb_pin_root(struct bpflb_plugin_ctx *ctx)
{
	return ctx->daemon->pipeline.pin_root;
}

/*
 * Every map the object pins must be declared, before libbpf reuses or
 * creates a pin: a map set the plugin does not declare, or a name it does not
 * own, would otherwise be shared silently with whoever pinned that name.
 */
BPFLB_EXPORT int bpflb_pins_prepare(struct bpflb_plugin_ctx *ctx, struct bpf_object *obj)
{
	struct pipeline *pl = &ctx->daemon->pipeline;
	struct bpflb_err err;
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		const char *pin = pipeline_pin_name(pl, map), *set;

		if (!pin)
			continue;
		set = pipeline_map_set(pin);
		if (set && !strcmp(set, PIPELINE_MAP_SET))
			continue;
		if (plugin_pin_allowed(ctx, pin, set, &err)) {
			log_msg(LOG_ERR, ctx->log_prefix, "%s", err.msg);
			snprintf(ctx->last_error, sizeof(ctx->last_error), "%s", err.msg);
			return -EPERM;
		}
	}
	return pipeline_pins_prepare(pl, obj);
}

BPFLB_EXPORT int bpflb_stage_set(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage, int prog_fd)
{
	int ret = pipeline_stage_set(&ctx->daemon->pipeline, stage, prog_fd);

	if (!ret)
		log_msg(LOG_DEBUG, ctx->log_prefix, "stage %d: program set", stage);
	return ret;
}

BPFLB_EXPORT int bpflb_stage_clear(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage)
{
	return pipeline_stage_clear(&ctx->daemon->pipeline, stage);
}

BPFLB_EXPORT uint32_t bpflb_stage_prog_id(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage)
{
	return pipeline_stage_prog_id(&ctx->daemon->pipeline, stage);
}

BPFLB_EXPORT int bpflb_devices(struct bpflb_plugin_ctx *ctx, const int **ifindexes)
{
	*ifindexes = ctx->daemon->pipeline.ifindexes;
	return ctx->daemon->pipeline.ndevs;
}
