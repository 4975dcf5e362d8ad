/* SPDX-License-Identifier: GPL-2.0-only */
/* Loading plugins from plugin_dir and driving their life cycle hooks. */
#ifndef BPFLB_CORE_PLUGIN_HOST_H
#define BPFLB_CORE_PLUGIN_HOST_H

#include <stdbool.h>
#include <bpflb/plugin.h>

struct bpflb_daemon;

enum plugin_state {
	PLUGIN_LOADED = 0, /* descriptor accepted, not initialised */
	PLUGIN_READY,	   /* init done */
	PLUGIN_ATTACHED,   /* programs in the pipeline */
	PLUGIN_FAILED,	   /* init or a hook failed; see last_error */
};

/*
 * A plugin's map declarations as the core reads them: from map_sets and
 * own_maps, or, for a descriptor of an older SDK without them, as plugin.h
 * says they are read.
 */
struct plugin_maps {
	struct bpflb_map_set sets[BPFLB_MAP_SETS_MAX]; /* shared sets it uses */
	unsigned int nsets;
	uint32_t own_schema; /* version of the maps it owns; 0: none */
	bool declared;	     /* its pins are declared (checked by bpflb_pins_prepare) */
};

struct bpflb_plugin_ctx {
	const struct bpflb_plugin *desc;
	struct plugin_maps maps;
	void *dl;
	int fd; /* the checked file, loaded as /proc/self/fd/<fd> */
	char *path;
	char log_prefix[80];
	enum plugin_state state;
	char last_error[1024];
	/* Why the last scan refused the file as it is now ("" when it passes):
	 * the loaded code stays, but a reload may not enable it. */
	char refused[1024];
	void *priv;
	struct bpflb_daemon *daemon;
	struct bpflb_plugin_ctx *next;
};

struct plugin_refusal;

struct plugin_host {
	struct bpflb_plugin_ctx *head;
	unsigned int nloaded;
	unsigned int nrefused;
	struct plugin_refusal *refusals; /* not loaded at the last scan, and why */
	char dir_refused[1024];		 /* why plugin_dir was refused at the last scan */
};

/*
 * Load every "*.so" in dir that is not loaded yet, and check the files of the
 * loaded ones again.  dir and every directory above it must be owned by root
 * and not group/world writable (as sshd's StrictModes); symlinks on the way
 * are followed only when root owns them.  A refused plugin is logged with
 * what is wrong and what to do, its reason is kept for plugin_host_refusal(),
 * and the others still load.  Returns the number of plugins refused in this
 * scan, or -errno when dir is refused or cannot be read.
 */
int plugin_host_scan(struct plugin_host *h, const char *dir, struct bpflb_daemon *d);
/* Load one file, by the same rules; the reason for a refusal is written to err. */
int plugin_host_load(struct plugin_host *h, const char *path, struct bpflb_daemon *d,
		     struct bpflb_err *err);
struct bpflb_plugin_ctx *plugin_host_find(struct plugin_host *h, const char *name);
/*
 * Why the last scan refused the plugin name (its file, or plugin_dir), or
 * NULL when it did not.  For a loaded plugin this is about its file now.
 */
const char *plugin_host_refusal(struct plugin_host *h, const char *name);
void plugin_host_free(struct plugin_host *h);

/* A load-balancing mode: the core learns modes only from descriptors. */
static inline bool plugin_is_mode(const struct bpflb_plugin_ctx *c)
{
	return c->desc->kind == BPFLB_PLUGIN_MODE;
}
/*
 * The loaded modes' names, ", "-separated in load (file name) order, into
 * buf, and the count; the loaded mode closest to name (a typo), or NULL.
 */
unsigned int plugin_host_mode_names(struct plugin_host *h, char *buf, size_t len);
const char *plugin_host_closest_mode(struct plugin_host *h, const char *name);
/*
 * May plugin c pin the map named pin?  core_set is the set the core files
 * the name under (pipeline_map_set()), NULL for a name that is not the
 * core's.  0, or -EPERM with err saying what the descriptor lacks.
 */
int plugin_pin_allowed(const struct bpflb_plugin_ctx *c, const char *pin, const char *core_set,
		       struct bpflb_err *err);
/* "lb@2, own@1" (the sets c uses, then its own maps' version) into buf. */
void plugin_maps_describe(const struct bpflb_plugin_ctx *c, char *buf, size_t len);

#endif
