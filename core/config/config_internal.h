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

/* When the configuration was read (wall clock), for status and reload reports. */
time_t bpflb_config_loaded_at(const struct bpflb_config *cfg);

/* Who declared the section: the owner of its schema. */
const char *bpflb_cfg_section_owner(const struct bpflb_cfg_section *sec);

/* The core's own sections: [daemon], [node], [cluster-node NAME]. */
extern const struct bpflb_cfg_section_def *const bpflb_core_sections[];

#endif
