// SPDX-License-Identifier: GPL-2.0-only
/*
 * The plugin loader.  A plugin file is refused, with a sentence that says what
 * to do, when it is not owned by root or is group/world-writable (as sshd's
 * StrictModes: a writable plugin is root code anyone could replace), when it
 * has no "bpflb_plugin" descriptor, when the descriptor is for another ABI
 * version or smaller than the core needs, or when its name does not match the
 * file.  Refusals never stop the daemon or the other plugins.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "plugin_host.h"

static int check_file_safe(const char *path, struct bpflb_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return bpflb_err_set(err, "%s: cannot stat: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return bpflb_err_set(err, "%s: not a regular file", path);
	if (st.st_uid != 0)
		return bpflb_err_set(err,
				     "%s: refused: owned by uid %u, not root; "
				     "run 'chown root:root %s' if you trust it",
				     path, st.st_uid, path);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return bpflb_err_set(err,
				     "%s: refused: mode %04o is group or world writable; "
				     "run 'chmod go-w %s' if you trust it",
				     path, st.st_mode & 07777, path);
	return 0;
}

static int check_descriptor(const struct bpflb_plugin *p, const char *path, const char *base,
			    struct bpflb_err *err)
{
	if (p->abi_version != BPFLB_ABI_VERSION)
		return bpflb_err_set(err,
				     "%s: refused: built for plugin ABI %u, this bpflbd speaks "
				     "ABI %u; rebuild the plugin against the bpflb SDK of this "
				     "version (pkg-config bpflb-sdk)",
				     path, p->abi_version, BPFLB_ABI_VERSION);
	if (p->size < BPFLB_PLUGIN_MIN_SIZE)
		return bpflb_err_set(err,
				     "%s: refused: descriptor is %u bytes, this bpflbd needs at "
				     "least %zu; rebuild the plugin against the current SDK",
				     path, p->size, (size_t)BPFLB_PLUGIN_MIN_SIZE);
	if (!p->name || strcmp(p->name, base))
		return bpflb_err_set(err,
				     "%s: refused: descriptor names the plugin '%s', the file is "
				     "'%s.so'; rename one so they match",
				     path, p->name ? p->name : "(null)", base);
	if (p->kind != BPFLB_PLUGIN_MODE && p->kind != BPFLB_PLUGIN_FEATURE)
		return bpflb_err_set(err, "%s: refused: unknown plugin kind %d", path, p->kind);
	if (!p->init || !p->validate || !p->apply || !p->attach || !p->detach || !p->fini)
		return bpflb_err_set(
		    err,
		    "%s: refused: descriptor lacks a life cycle hook "
		    "(init, validate, apply, attach, detach and fini are required)",
		    path);
	return 0;
}

struct bpflb_plugin_ctx *plugin_host_find(struct plugin_host *h, const char *name)
{
	for (struct bpflb_plugin_ctx *c = h->head; c; c = c->next)
		if (!strcmp(c->desc->name, name))
			return c;
	return NULL;
}

int plugin_host_load(struct plugin_host *h, const char *path, struct bpflb_daemon *d,
		     struct bpflb_err *err)
{
	char base[NAME_MAX + 1];
	const struct bpflb_plugin *p;
	struct bpflb_plugin_ctx *c;
	const char *slash = strrchr(path, '/');
	size_t blen;
	void *dl;
	int ret;

	snprintf(base, sizeof(base), "%s", slash ? slash + 1 : path);
	blen = strlen(base);
	if (blen > 3 && !strcmp(base + blen - 3, ".so"))
		base[blen - 3] = '\0';

	ret = check_file_safe(path, err);
	if (ret)
		return ret;
	if (plugin_host_find(h, base))
		return bpflb_err_set(err, "%s: refused: a plugin named '%s' is already loaded",
				     path, base);
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!dl)
		return bpflb_err_set(err, "%s: refused: cannot load: %s", path, dlerror());
	p = dlsym(dl, BPFLB_PLUGIN_SYMBOL);
	if (!p) {
		dlclose(dl);
		return bpflb_err_set(err,
				     "%s: refused: no '%s' descriptor; a plugin must define "
				     "one with BPFLB_PLUGIN_DEFINE() from <bpflb/plugin.h>",
				     path, BPFLB_PLUGIN_SYMBOL);
	}
	ret = check_descriptor(p, path, base, err);
	if (ret) {
		dlclose(dl);
		return ret;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		dlclose(dl);
		return bpflb_err_set(err, "%s: out of memory", path);
	}
	c->desc = p;
	c->dl = dl;
	c->daemon = d;
	c->state = PLUGIN_LOADED;
	snprintf(c->log_prefix, sizeof(c->log_prefix), "plugin %s", p->name);
	/* Keep file order stable: append. */
	struct bpflb_plugin_ctx **tail = &h->head;
	while (*tail)
		tail = &(*tail)->next;
	*tail = c;
	h->nloaded++;
	pr_info("loaded plugin %s %s (%s) from %s", p->name, p->version ? p->version : "?",
		p->kind == BPFLB_PLUGIN_MODE ? "mode" : "feature", path);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int plugin_host_scan(struct plugin_host *h, const char *dir, struct bpflb_daemon *d)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int refused = 0;
	DIR *dp;

	dp = opendir(dir);
	if (!dp)
		return -errno;
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);

		if (len < 4 || strcmp(de->d_name + len - 3, ".so"))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(dp);
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct bpflb_err err;
		char base[NAME_MAX + 1];

		snprintf(base, sizeof(base), "%.*s", (int)(strlen(names[i]) - 3), names[i]);
		if (plugin_host_find(h, base)) {
			free(names[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (plugin_host_load(h, path, d, &err)) {
			pr_err("%s", err.msg);
			h->nrefused++;
			refused++;
		}
		free(names[i]);
	}
	free(names);
	return refused;
}

void plugin_host_free(struct plugin_host *h)
{
	struct bpflb_plugin_ctx *c = h->head, *next;

	for (; c; c = next) {
		next = c->next;
		/* RTLD_NODELETE: the code stays mapped; dropping the handle is enough. */
		dlclose(c->dl);
		free(c->path);
		free(c);
	}
	h->head = NULL;
}
