/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The core's side of the configuration engine: loading a file against the
 * schemas of the core and of every loaded plugin, and freeing it.  Plugins only
 * see the read-only accessors of <bpflb/config.h>.
 *
 * A configuration is built whole or not at all: on any error nothing is
 * returned and err says what is wrong, so a reload (SIGHUP) can keep running on
 * the previous configuration.
 */
#ifndef BPFLB_CORE_CONFIG_INTERNAL_H
#define BPFLB_CORE_CONFIG_INTERNAL_H

#include <stdio.h>
#include <time.h>

#include <bpflb/config.h>

/*
 * The sections one owner declares.  The owner ("core", or the plugin's name)
 * only appears in messages, so that an operator who mistyped or forgot to
 * enable a plugin learns who would have accepted the section.
 */
struct bpflb_cfg_schema {
	const char *owner;
	const struct bpflb_cfg_section_def *const *sections; /* NULL-terminated; may be NULL */
};

/*
 * Skip sections that no schema declares instead of refusing them.  For the
 * first pass at start-up, which reads [daemon] with the core's schema alone
 * to learn which plugins (mode, features) to load before the real load.
 */
#define BPFLB_CFG_LOAD_SKIP_UNKNOWN (1u << 0)

/*
 * Read path and check it against schemas[0..nschemas).  On success *out holds
 * the configuration (free it with bpflb_config_free()).  Returns 0, -EINVAL
 * for an error in the file or in a schema, -errno when the file cannot be
 * read, -ENOMEM; err->msg then names the file, line, section, key and value.
 *
 * Unnamed sections that are declared but absent from the file are present in
 * the result with line 0, so that their keys read as their defaults.
 */
int bpflb_config_load(const char *path, const struct bpflb_cfg_schema *schemas, size_t nschemas,
		      unsigned int flags, struct bpflb_config **out, struct bpflb_err *err);

/* Same, from an open stream; name stands for the file in messages. */
int bpflb_config_load_fp(FILE *fp, const char *name, const struct bpflb_cfg_schema *schemas,
			 size_t nschemas, unsigned int flags, struct bpflb_config **out,
			 struct bpflb_err *err);

void bpflb_config_free(struct bpflb_config *cfg);

/*
 * The memory hook of a section owner: once it built its model from the
 * sections of this type ("service"), it drops them, so that a running daemon
 * does not keep the text (and structs) of 100k sections it will not read again.
 * Afterwards the type reads as absent: bpflb_cfg_section() and
 * bpflb_cfg_find() return NULL for it and bpflb_cfg_released() returns true;
 * pointers to those sections and their structs are invalid.  The rest of cfg
 * is untouched.  Returns 0 (also for a type without sections) or -ENOMEM,
 * which leaves cfg as it was.
 */
int bpflb_cfg_release(struct bpflb_config *cfg, const char *type);

/* When the configuration was read (wall clock), for status and reload reports. */
time_t bpflb_config_loaded_at(const struct bpflb_config *cfg);

/* Edit distance for "did you mean" (0: equal but for case; ~0: too long to tell). */
unsigned int bpflb_name_distance(const char *a, const char *b);

/* Who declared the section: the owner of its schema. */
const char *bpflb_cfg_section_owner(const struct bpflb_cfg_section *sec);

/* The core's own sections: [daemon], [node], [cluster-node NAME], [endpoint NAME]. */
extern const struct bpflb_cfg_section_def *const bpflb_core_sections[];

/*
 * What the engine fills them into (config_core.c has each key's meaning).  The
 * core reads these fields; it never looks a key of these sections up by name.
 */
struct bpflb_daemon_conf {
	char *mode;			/* a mode plugin's name or "none" (checked by the daemon) */
	struct bpflb_cfg_words features;
	char *plugin_dir;
	char *bpffs_root;
	char *control_socket;
	char *control_group;		/* NULL: root only */
	char *metrics_listen;		/* ADDR:PORT (checked); NULL: no endpoint */
	char *healthz_listen;		/* ADDR:PORT (checked) or "off" */
	uint32_t healthz_max_sync_age;	/* s; 0: 2 x reconcile_interval */
	uint32_t max_connections;
	uint32_t max_connections_per_listener;
	uint32_t client_timeout;	/* s */
	struct bpflb_cfg_words devices;
	uint32_t tc_priority;
	uint32_t tc_handle;
	int log_level;			/* index into bpflb_log_levels[] */
	uint32_t tick_interval;		/* s */
	char *state_dir;		/* core/state: overlay.json */
	uint32_t reconcile_interval;	/* s; 0: no drift check */
};

struct bpflb_node_conf {
	char *name;
	uint32_t address;		/* network byte order */
	struct bpflb_cfg_ipv4s external_addresses;
	struct bpflb_cfg_words labels;	/* key=value */
};

struct bpflb_cluster_node_conf {
	uint32_t address;
	struct bpflb_cfg_ipv4s external_addresses;
	struct bpflb_cfg_words labels;
};

struct bpflb_endpoint_conf {
	uint32_t address;
	struct bpflb_cfg_words labels;
	char *node;
};

extern const char *const bpflb_log_levels[];	/* "err", ..., "debug" */

/*
 * [daemon] and [node] of a loaded configuration: never NULL, as a section
 * absent from the file reads as its defaults.
 */
static inline const struct bpflb_daemon_conf *bpflb_daemon_conf(const struct bpflb_config *cfg)
{
	return bpflb_cfg_conf(bpflb_cfg_section(cfg, "daemon", 0));
}

static inline const struct bpflb_node_conf *bpflb_node_conf(const struct bpflb_config *cfg)
{
	return bpflb_cfg_conf(bpflb_cfg_section(cfg, "node", 0));
}

#endif
