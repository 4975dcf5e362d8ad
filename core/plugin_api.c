// SPDX-License-Identifier: GPL-2.0-only
/*
 * What bpflbd exports to plugins (declared in sdk/include/bpflb/plugin.h).
 * These are the only symbols of the executable a plugin may use.
 */
#include <stdarg.h>

#include "daemon.h"
#include "log.h"

#define BPFLB_EXPORT __attribute__((visibility("default")))

BPFLB_EXPORT void bpflb_log(struct bpflb_plugin_ctx *ctx, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, ctx ? ctx->log_prefix : NULL, fmt, ap);
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

BPFLB_EXPORT int bpflb_pins_prepare(struct bpflb_plugin_ctx *ctx, struct bpf_object *obj)
{
	return pipeline_pins_prepare(&ctx->daemon->pipeline, obj);
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
