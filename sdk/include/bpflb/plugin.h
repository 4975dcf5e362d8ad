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
 * The descriptor grows only at its end.  A member appended after fini is read
 * only when the plugin's descriptor is large enough to hold it
 * (BPFLB_PLUGIN_HAS), so a plugin built against an older SDK of the same ABI
 * version keeps loading and gets the documented default of every member it
 * does not have.  BPFLB_ABI_VERSION changes only when a member changes meaning
 * or place; then every plugin of the other version is refused, by name.
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
#include <stdbool.h>
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

/*
 * A set of pinned maps a plugin uses but does not own, and the schema version
 * of the set the plugin was built against.  The core refuses a plugin built
 * against another version of a set than the one it keeps pinned: the layout
 * the plugin's BPF code assumes is not the one in the maps.
 *
 * The core provides one set, BPFLB_MAP_SET_LB: the shared load-balancing maps
 * of sdk/bpf/bpflb/lb_maps.h (services, backends, slots, Maglev tables,
 * conntrack, node settings, counters, flow events) at BPFLB_LB_SCHEMA
 * (<bpflb/lb.h>).  The core writes services and backends into them; a mode's
 * datapath reads them and keeps conntrack there.  Any plugin whose BPF object
 * includes lb_maps.h pins these maps and so uses the set.  The pipeline's own
 * maps (bpflb_stages, bpflb_schema) belong to every plugin and are not
 * declared.
 */
struct bpflb_map_set {
	const char *name;
	uint32_t schema;
};

#define BPFLB_MAP_SET_LB "lb"
#define BPFLB_MAP_SETS_MAX 8  /* entries of bpflb_plugin.map_sets the core reads */
#define BPFLB_OWN_MAPS_MAX 64 /* entries of bpflb_plugin.own_maps the core reads */

struct bpflb_plugin_ctx; /* the core's handle for one loaded plugin */

/* The rule behind a flow event's rule_id (struct bpflb_plugin.describe_rule). */
enum bpflb_rule_action {
	BPFLB_RULE_ALLOW = 1,
	BPFLB_RULE_DENY = 2,
	/* no rule of the policy matched and the policy selects the subject in
	 * that direction, so everything it does not allow is denied */
	BPFLB_RULE_DEFAULT_DENY = 3,
};

struct bpflb_rule_desc {
	char policy[256];       /* the policy's name (metadata.name) */
	int index;              /* 0-based rule in its section; -1 for a default deny */
	bool ingress;           /* direction: ingress (true) or egress */
	enum bpflb_rule_action action;
};
struct json_object;      /* json-c, for the control hook */

struct bpflb_plugin {
	/* stamped by BPFLB_PLUGIN_DEFINE, checked by the loader */
	uint32_t abi_version;
	uint32_t size;
	const char *name;      /* must equal the file name without ".so" */
	const char *version;
	enum bpflb_plugin_kind kind;
	/*
	 * Version of the pinned maps the plugin owns (own_maps), recorded under
	 * the instance's bpffs root in the plugin's name; a pinned set with
	 * another version is refused, never reused.  0: the plugin owns no
	 * pinned maps.  (A descriptor without map_sets, from an older SDK: for
	 * a mode this is the version of the BPFLB_MAP_SET_LB maps it drives.)
	 */
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
	/*
	 * Appended after control.  The map sets the plugin uses and does not
	 * own (see struct bpflb_map_set), ended by an entry with name NULL; may
	 * be NULL when the plugin uses none.  A mode (kind BPFLB_PLUGIN_MODE)
	 * must declare the set it drives, BPFLB_MAP_SET_LB: the core keeps the
	 * services there, whichever mode runs, which is what lets it switch
	 * modes live and lets a vendor's mode replace the ones bpflb ships.
	 *
	 * A descriptor too small to hold map_sets (an older SDK) is read as:
	 * a mode drives BPFLB_MAP_SET_LB at map_schema_version and owns no maps;
	 * a feature plugin owns its maps at map_schema_version; the pins of
	 * neither are checked against a declaration.
	 */
	const struct bpflb_map_set *map_sets;
	/*
	 * The names of the maps the plugin pins of its own (LIBBPF_PIN_BY_NAME
	 * under bpflb_pin_root()), at map_schema_version; NULL-terminated; may be
	 * NULL when it pins none.  bpflb_pins_prepare() refuses an object that
	 * pins a map neither named here nor in a declared set: a name the
	 * plugin did not declare could be another's pin, reused by libbpf
	 * whenever the sizes happen to match.
	 */
	const char *const *own_maps;
	/*
	 * Appended after own_maps.  What rule_id of a flow event emitted by one
	 * of this plugin's stages (bpflb_flow_event.stage, .rule_id) means, so
	 * that observe names the policy and rule instead of printing numbers.
	 * Fills *out and returns 0; -ENOENT when the id is not (or no longer)
	 * the plugin's.  Called on the core's loop; must not block.  May be NULL.
	 */
	int (*describe_rule)(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage,
			     uint32_t rule_id, struct bpflb_rule_desc *out);
};

/* Does this descriptor reach member `field` (appended after fini), NULL or not? */
#define BPFLB_PLUGIN_REACHES(desc, field)                                         \
	((desc)->size >= offsetof(struct bpflb_plugin, field) +                    \
				 sizeof(((struct bpflb_plugin *)0)->field))

/* Does this descriptor carry the optional member `field` (appended after fini)? */
#define BPFLB_PLUGIN_HAS(desc, field) (BPFLB_PLUGIN_REACHES(desc, field) && (desc)->field)

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
 * Every pin must be declared (map_sets, own_maps): -EPERM, with the map named
 * in the log, for one that is not.  Returns 0 or -errno.
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
