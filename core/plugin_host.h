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

#endif
