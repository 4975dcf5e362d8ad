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

struct bpflb_plugin_ctx {
	const struct bpflb_plugin *desc;
	void *dl;
	char *path;
	char log_prefix[80];
	enum plugin_state state;
	char last_error[1024];
	void *priv;
	struct bpflb_daemon *daemon;
	struct bpflb_plugin_ctx *next;
};

struct plugin_host {
	struct bpflb_plugin_ctx *head;
	unsigned int nloaded;
	unsigned int nrefused;
};

/*
 * Load every "*.so" in dir that is not loaded yet.  A refused plugin is logged
 * with what is wrong and what to do, and the others still load.  Returns the
 * number of plugins refused in this scan, or -errno when dir cannot be read.
 */
int plugin_host_scan(struct plugin_host *h, const char *dir, struct bpflb_daemon *d);
/* Load one file; the reason for a refusal is written to err. */
int plugin_host_load(struct plugin_host *h, const char *path, struct bpflb_daemon *d,
		     struct bpflb_err *err);
struct bpflb_plugin_ctx *plugin_host_find(struct plugin_host *h, const char *name);
void plugin_host_free(struct plugin_host *h);

#endif
