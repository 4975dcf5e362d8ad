/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The bpflb plugin ABI.
 *
 * A plugin is one shared object exporting one symbol, the descriptor
 * "bpflb_plugin", written with BPFLB_PLUGIN_DEFINE() so that it carries the ABI
 * version and the size of the descriptor it was built with.  The core refuses a
 * plugin built for another ABI version or with a smaller descriptor than the
 * fields the core needs, and keeps running the others.
 *
 * Plugins never exit() or print: hooks return 0 or -errno, put a message into
 * the struct bpflb_err they are given, and log through bpflb_log(), which
 * prefixes every line with the plugin's name.  The functions declared here are
 * exported by bpflbd itself.
 *
 * Life cycle, driven by the core:
 *   init      once, when the plugin is enabled (mode or feature)
 *   validate  a new configuration, whole, before anything changes; no side effects
 *   apply     the new configuration (prev is NULL the first time)
 *   attach    put the plugin's programs into pipeline stages
 *   detach    take them out (mode switch, feature disabled, cleanup)
 *   fini      release everything the plugin holds in userspace; pinned maps stay
 */
#ifndef BPFLB_PLUGIN_H
#define BPFLB_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

#include <bpflb/config.h>
#include <bpflb/stages.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BPFLB_ABI_VERSION 1u

enum bpflb_plugin_kind {
	BPFLB_PLUGIN_MODE = 1,    /* load-balancing mode: exactly one is active */
	BPFLB_PLUGIN_FEATURE = 2, /* enabled beside the mode */
};

/* A kernel capability a plugin needs; probed before the plugin is initialised. */
enum bpflb_feature_kind {
	BPFLB_FEAT_END = 0,
	BPFLB_FEAT_MAP_TYPE,   /* id: enum bpf_map_type */
	BPFLB_FEAT_HELPER,     /* id: enum bpf_func_id, for BPF_PROG_TYPE_SCHED_CLS */
};

struct bpflb_feature {
	enum bpflb_feature_kind kind;
	uint32_t id;
	const char *name;      /* for the error message: "bpf_fib_lookup" */
};

struct bpflb_plugin_ctx; /* the core's handle for one loaded plugin */
struct json_object;      /* json-c, for the control hook */

struct bpflb_plugin {
	/* stamped by BPFLB_PLUGIN_DEFINE, checked by the loader */
	uint32_t abi_version;
	uint32_t size;
	const char *name;      /* must equal the file name without ".so" */
	const char *version;
	enum bpflb_plugin_kind kind;
	/* Version of the pinned maps the plugin owns, recorded under the instance's
	 * bpffs root; a pinned set with another version is refused, never reused. */
	uint32_t map_schema_version;
	const char *description;
	/* Config sections this plugin owns; NULL-terminated array, may be NULL. */
	const struct bpflb_cfg_section_def *const *sections;
	/* Kernel features the plugin needs; terminated by BPFLB_FEAT_END; may be NULL. */
	const struct bpflb_feature *requires;

	int (*init)(struct bpflb_plugin_ctx *ctx);
	int (*validate)(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			struct bpflb_err *err);
	int (*apply)(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
		     const struct bpflb_config *prev, struct bpflb_err *err);
	int (*attach)(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err);
	int (*detach)(struct bpflb_plugin_ctx *ctx);
	void (*fini)(struct bpflb_plugin_ctx *ctx);
	/* Periodic work on the core's loop (conntrack GC, ...); may be NULL. */
	void (*tick)(struct bpflb_plugin_ctx *ctx);
	/*
	 * Appended after tick: the core calls it only when desc->size covers it
	 * (BPFLB_PLUGIN_HAS(desc, control)), so older plugins keep loading.
	 *
	 * A command of the control socket addressed to this plugin (bpflbctl
	 * policy list -> cmd "list" to plugin "policy"), on the core's loop.  req
	 * is the request's arguments (a JSON object, may be NULL); on success the
	 * plugin sets *reply to a new JSON object the core sends and frees, and
	 * returns 0.  -ENOENT: unknown command or object, -EINVAL: bad arguments;
	 * *reply may then hold {"error": "..."}.  May be NULL.
	 */
	int (*control)(struct bpflb_plugin_ctx *ctx, const char *cmd, struct json_object *req,
		       struct json_object **reply);
};

/* Does this descriptor carry the optional member `field` (appended after fini)? */
#define BPFLB_PLUGIN_HAS(desc, field)                                              \
	((desc)->size >= offsetof(struct bpflb_plugin, field) +                    \
				 sizeof(((struct bpflb_plugin *)0)->field) &&       \
	 (desc)->field)

/* Smallest descriptor the core accepts: everything up to and including fini. */
#define BPFLB_PLUGIN_MIN_SIZE \
	(offsetof(struct bpflb_plugin, fini) + sizeof(((struct bpflb_plugin *)0)->fini))

#define BPFLB_PLUGIN_SYMBOL "bpflb_plugin"

#define BPFLB_PLUGIN_DEFINE(...)                                                  \
	__attribute__((visibility("default"))) const struct bpflb_plugin bpflb_plugin = { \
		.abi_version = BPFLB_ABI_VERSION,                                 \
		.size = sizeof(struct bpflb_plugin),                              \
		__VA_ARGS__                                                       \
	}

/* --- services the core offers to plugins (exported by bpflbd) --- */

/* Log a line prefixed with the plugin's name; level is a syslog priority. */
BPFLB_API void bpflb_log(struct bpflb_plugin_ctx *ctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Per-plugin private state. */
BPFLB_API void *bpflb_priv(struct bpflb_plugin_ctx *ctx);
BPFLB_API void bpflb_set_priv(struct bpflb_plugin_ctx *ctx, void *priv);

/* The running configuration (the one last applied). */
BPFLB_API const struct bpflb_config *bpflb_config(struct bpflb_plugin_ctx *ctx);

/*
 * Directory under which the instance pins its maps.  Open BPF objects with this
 * as pin_root_path so that maps declared with LIBBPF_PIN_BY_NAME in the SDK
 * headers are shared by the core, every plugin and every restart.
 */
BPFLB_API const char *bpflb_pin_root(struct bpflb_plugin_ctx *ctx);

struct bpf_object;
/*
 * Call between opening and loading every BPF object opened with
 * bpflb_pin_root(): it gives the shared maps the sizes the configuration asks
 * for ([lb] max_services, ct_size, ...; libbpf reuses a pin only when the sizes
 * match) and records the names of the object's pins, so that
 * `bpflbd --cleanup` removes them (it removes nothing it did not record).
 * Returns 0 or -errno.
 */
BPFLB_API int bpflb_pins_prepare(struct bpflb_plugin_ctx *ctx, struct bpf_object *obj);

/* Put prog_fd into a stage slot (atomic replacement), or empty the slot. */
BPFLB_API int bpflb_stage_set(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage, int prog_fd);
BPFLB_API int bpflb_stage_clear(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage);
/* Id of the program in a slot, 0 when empty: detach clears only its own slots. */
BPFLB_API uint32_t bpflb_stage_prog_id(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage);

/* Interface indexes of the devices the core manages (tc hooks), and their count. */
BPFLB_API int bpflb_devices(struct bpflb_plugin_ctx *ctx, const int **ifindexes);

#ifdef __cplusplus
}
#endif
#endif
