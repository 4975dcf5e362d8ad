// SPDX-License-Identifier: GPL-2.0-only
/*
 * The plugin loader.  A plugin is code run as root, so the way to it must be
 * as trustworthy as sshd's StrictModes requires of authorized_keys: every
 * directory from "/" down to plugin_dir is owned by root (or by the euid
 * bpflbd runs as) and not group or world writable, a symlink on the way is
 * followed only when root owns it, and the plugin is a regular file (not a
 * symlink) under the same owner and mode rules.  An ancestor may be world
 * writable if it is sticky (/tmp): there nobody but root renames or removes
 * the root-owned next component, which is checked in turn, and an entry
 * someone else made there is refused for its owner.  plugin_dir itself is
 * never writable by others, sticky or not.  The control socket's directory
 * follows the same rule (control.c).
 *
 * What is checked is what is loaded: the walk opens each component relative
 * to the descriptor of the one just checked, with O_NOFOLLOW, and fstat()s the
 * descriptor; the plugin is opened the same way in the checked directory, and
 * dlopen() is handed "/proc/self/fd/N", that very file.  Nobody can swap a
 * component between the check and the load (no realpath()-then-use race).
 *
 * A plugin is also refused when it has no "bpflb_plugin" descriptor, when the
 * descriptor is for another ABI version or smaller than the core needs, when
 * its name does not match the file, or when it declares map sets the core
 * does not keep (an unknown set, another schema version of one), or is a mode
 * that declares no load-balancing maps to drive.  Refusals never stop the daemon or
 * the other plugins; the reason is kept per plugin name, so that every later
 * error about the plugin (mode =, features =) says why it is not there.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpflb/lb.h>

#include "daemon.h"
#include "log.h"
#include "plugin_host.h"

#define WALK_MAX_SYMLINKS 40 /* the kernel's MAXSYMLINKS */
#define OWN_MAP_NAME_MAX 63  /* the longest pin name bpflb_pins records */

struct plugin_refusal {
	struct plugin_refusal *next;
	char name[NAME_MAX + 1];
	char why[sizeof(((struct bpflb_err *)0)->msg)];
};

__attribute__((format(printf, 3, 4))) static int refuse(struct bpflb_err *err, int ret,
							const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return ret;
}

/* Whether the path left to walk leads nowhere further ("", "/", "./."). */
static bool walk_ends(const char *p)
{
	for (;;) {
		p += strspn(p, "/");
		if (!*p)
			return true;
		if (p[0] != '.' || (p[1] && p[1] != '/'))
			return false;
		p++;
	}
}

/*
 * The StrictModes rule for one component: owned by root or by our euid (as
 * sshd accepts root or the user) and, unless it is a symlink (whose mode
 * means nothing), not writable by group or others.  what says what path is
 * ("plugin dir " or "" for a plugin file); dir is the plugin_dir being
 * opened when path is above it, else NULL.  Changing an ancestor of
 * plugin_dir (/tmp, a home) is rarely the fix: the message says that
 * plugin_dir is in the wrong place instead.
 */
static int check_component(const struct stat *st, const char *what, const char *path,
			   const char *dir, struct bpflb_err *err)
{
	bool link = S_ISLNK(st->st_mode), owner_ok = !st->st_uid || st->st_uid == geteuid();
	char owner[48] = "root", fix[2 * PATH_MAX + 80];

	if (owner_ok && (link || !(st->st_mode & (S_IWGRP | S_IWOTH))))
		return 0;
	/* A sticky ancestor: its root-owned child cannot be replaced (see above). */
	if (owner_ok && dir && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX))
		return 0;
	if (geteuid())
		snprintf(owner, sizeof(owner), "root or uid %u", (unsigned int)geteuid());
	if (dir)
		snprintf(fix, sizeof(fix),
			 "it is on the way to plugin_dir %s, which must be a path only root can "
			 "change",
			 dir);
	else if (!owner_ok)
		snprintf(fix, sizeof(fix), "run 'chown %sroot:root %s' if you trust it",
			 link ? "-h " : "", path);
	else
		snprintf(fix, sizeof(fix), "run 'chmod go-w %s' if you trust it", path);
	if (!owner_ok)
		return refuse(err, -EPERM,
			      "%s%s: refused: %sowned by uid %u, must be owned by %s; %s", what,
			      path, link ? "symlink " : "", (unsigned int)st->st_uid, owner, fix);
	return refuse(err, -EPERM,
		      "%s%s: refused: mode %04o is group or world writable, must not be; %s", what,
		      path, st->st_mode & 07777, fix);
}

static int stat_fd(int fd, struct stat *st, const char *what, const char *path,
		   struct bpflb_err *err)
{
	if (fstat(fd, st) < 0)
		return refuse(err, -errno, "%s%s: cannot stat: %s", what, path, strerror(errno));
	return 0;
}

/* "/", checked; rest is what is left to walk below it. */
static int open_root(const char *dir, const char *rest, struct bpflb_err *err)
{
	struct stat st;
	int fd, ret;

	fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return refuse(err, -errno, "plugin dir /: cannot open: %s", strerror(errno));
	ret = stat_fd(fd, &st, "plugin dir ", "/", err)
		  ?: check_component(&st, "plugin dir ", "/", walk_ends(rest) ? NULL : dir, err);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* Cut the last component off path ("/" stays "/"). */
static void path_up(char *path)
{
	char *slash = strrchr(path, '/');

	slash[slash == path] = '\0';
}

/* at/comp into out, at being "/" or a path without a trailing slash. */
static int path_join(char *out, const char *at, const char *comp, struct bpflb_err *err)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s%s%s", at, strcmp(at, "/") ? "/" : "", comp) >=
	    PATH_MAX)
		return refuse(err, -ENAMETOOLONG, "plugin dir %s/%s: path too long", at, comp);
	return 0;
}

/*
 * Open plugin_dir for reading, checked component by component from "/" down
 * (see the top of the file).  at is the resolved path of the directory the
 * walk stands on, for messages; todo holds what is left to walk, a symlink's
 * target spliced in front of the rest.  Returns a descriptor or -errno.
 */
static int dir_open_checked(const char *dir, struct bpflb_err *err)
{
	char todo[PATH_MAX], at[PATH_MAX], next_path[PATH_MAX], target[PATH_MAX], rest[PATH_MAX];
	int cur = -1, next = -1, hops = 0, ret;
	struct stat st;
	char *p, *comp;
	ssize_t n;

	if (dir[0] != '/')
		return refuse(err, -EINVAL, "plugin dir %s: refused: not an absolute path", dir);
	if ((size_t)snprintf(todo, sizeof(todo), "%s", dir) >= sizeof(todo))
		return refuse(err, -ENAMETOOLONG, "plugin dir %s: path too long", dir);
	cur = open_root(dir, todo, err);
	if (cur < 0)
		return cur;
	strcpy(at, "/");
	p = todo;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		comp = p;
		p += strcspn(p, "/");
		if (*p)
			*p++ = '\0';
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			/* The real parent, which the walk came down through. */
			snprintf(next_path, sizeof(next_path), "%s", at);
			path_up(next_path);
			next = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		} else {
			ret = path_join(next_path, at, comp, err);
			if (ret)
				goto out;
			next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			ret = refuse(err, -errno, "plugin dir %s: cannot open: %s", next_path,
				     strerror(errno));
			goto out;
		}
		ret = stat_fd(next, &st, "plugin dir ", next_path, err);
		if (!ret && !S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode))
			ret = refuse(err, -ENOTDIR, "plugin dir %s: refused: not a directory",
				     next_path);
		if (!ret)
			ret = check_component(&st, "plugin dir ", next_path,
					      walk_ends(p) ? NULL : dir, err);
		if (ret)
			goto out;
		if (S_ISLNK(st.st_mode)) {
			if (++hops > WALK_MAX_SYMLINKS) {
				ret = refuse(err, -ELOOP, "plugin dir %s: too many symlinks",
					     next_path);
				goto out;
			}
			n = readlinkat(next, "", target, sizeof(target) - 1);
			if (n < 0) {
				ret = refuse(err, -errno, "plugin dir %s: cannot read symlink: %s",
					     next_path, strerror(errno));
				goto out;
			}
			target[n] = '\0';
			close(next);
			next = -1;
			/* Walk on through the target, then what was left after the link. */
			if ((size_t)snprintf(rest, sizeof(rest), "%s/%s", target, p) >=
			    sizeof(rest)) {
				ret = refuse(err, -ENAMETOOLONG, "plugin dir %s: path too long",
					     next_path);
				goto out;
			}
			strcpy(todo, rest);
			p = todo;
			if (target[0] == '/') {
				close(cur);
				cur = open_root(dir, todo, err);
				if (cur < 0) {
					ret = cur;
					goto out;
				}
				strcpy(at, "/");
			}
			continue;
		}
		close(cur);
		cur = next;
		next = -1;
		strcpy(at, next_path);
	}
	/* O_PATH descriptors cannot be read: open the checked directory itself. */
	ret = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ret < 0)
		ret = refuse(err, -errno, "plugin dir %s: cannot open: %s", at, strerror(errno));
out:
	if (next >= 0)
		close(next);
	if (cur >= 0)
		close(cur);
	return ret;
}

/*
 * Open the plugin name in the checked directory dfd and check the descriptor:
 * the file cannot change between this check and the load.  O_NONBLOCK: a
 * FIFO named *.so must not hang the daemon.  Returns a descriptor or -errno.
 */
static int file_open_checked(int dfd, const char *path, const char *name, struct bpflb_err *err)
{
	struct stat st;
	int fd, ret;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP)
		return refuse(err, -ELOOP,
			      "%s: refused: a symlink; a plugin must be a regular file in "
			      "plugin_dir (copy it there)",
			      path);
	if (fd < 0)
		return refuse(err, -errno, "%s: cannot open: %s", path, strerror(errno));
	ret = stat_fd(fd, &st, "", path, err);
	if (!ret && !S_ISREG(st.st_mode))
		ret = refuse(err, -EINVAL, "%s: refused: not a regular file", path);
	if (!ret)
		ret = check_component(&st, "", path, NULL, err);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int name_loaded_cb(struct dl_phdr_info *info, size_t size, void *name)
{
	return info->dlpi_name && !strcmp(info->dlpi_name, name);
}

static void fd_name(int fd, char name[32])
{
	snprintf(name, 32, "/proc/self/fd/%d", fd);
}

/*
 * The dynamic linker answers dlopen() of a name it knows with the object of
 * that name, without opening anything.  An object loaded as /proc/self/fd/N
 * keeps that name while it is mapped, so N stays open until the object is
 * unmapped; else the next file to get N would be answered with this object.
 * Plugins are RTLD_NODELETE: their descriptors stay open for good.
 */
static bool fd_names_object(int fd)
{
	char name[32];

	fd_name(fd, name);
	return dl_iterate_phdr(name_loaded_cb, name) != 0;
}

static void fd_release(int fd)
{
	if (fd >= 0 && !fd_names_object(fd))
		close(fd);
}

/* The shared map sets this core keeps pinned, and their schema versions. */
static const struct bpflb_map_set core_sets[] = {
	{BPFLB_MAP_SET_LB, BPFLB_LB_SCHEMA},
	{NULL, 0},
};

static const struct bpflb_map_set *core_set_find(const char *name)
{
	for (const struct bpflb_map_set *s = core_sets; s->name; s++)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

/*
 * What p declares about maps, into m: the core reads at most
 * BPFLB_MAP_SETS_MAX sets and BPFLB_OWN_MAPS_MAX own names (a table without
 * its terminator must not walk the core into the plugin's other data).
 */
static int read_map_decls(const struct bpflb_plugin *p, const char *path, struct plugin_maps *m,
			  struct bpflb_err *err)
{
	const char *const *own;
	unsigned int n;

	memset(m, 0, sizeof(*m));
	if (!BPFLB_PLUGIN_REACHES(p, own_maps)) {
		/* An older SDK's descriptor: read as plugin.h promises. */
		if (p->kind == BPFLB_PLUGIN_MODE)
			m->sets[m->nsets++] = (struct bpflb_map_set){BPFLB_MAP_SET_LB,
								     p->map_schema_version};
		else
			m->own_schema = p->map_schema_version;
		return 0;
	}
	m->declared = true;
	m->own_schema = p->map_schema_version;
	for (n = 0; p->map_sets && p->map_sets[n].name; n++) {
		if (n == BPFLB_MAP_SETS_MAX)
			return bpflb_err_set(err,
					     "%s: refused: map_sets has more than %u entries (or "
					     "lacks its {NULL, 0} terminator)",
					     path, BPFLB_MAP_SETS_MAX);
		m->sets[m->nsets++] = p->map_sets[n];
	}
	for (n = 0, own = p->own_maps; own && own[n]; n++) {
		if (n == BPFLB_OWN_MAPS_MAX)
			return bpflb_err_set(err,
					     "%s: refused: own_maps has more than %u names (or "
					     "lacks its NULL terminator)",
					     path, BPFLB_OWN_MAPS_MAX);
		if (!own[n][0] || strlen(own[n]) > OWN_MAP_NAME_MAX || strchr(own[n], '/'))
			return bpflb_err_set(err,
					     "%s: refused: own_maps names '%.80s', not a pin "
					     "name (1 to %d characters, no '/')",
					     path, own[n], OWN_MAP_NAME_MAX);
	}
	if (n && !p->map_schema_version)
		return bpflb_err_set(err,
				     "%s: refused: the plugin declares maps of its own "
				     "(own_maps) but no map_schema_version; set it, so that "
				     "its pinned maps are never reused across a layout change",
				     path);
	return 0;
}

/* The declared sets against the ones this core keeps; a mode must drive "lb". */
static int check_map_sets(const struct bpflb_plugin *p, const struct plugin_maps *m,
			  const char *path, struct bpflb_err *err)
{
	bool lb = false;

	for (unsigned int i = 0; i < m->nsets; i++) {
		const struct bpflb_map_set *have = core_set_find(m->sets[i].name);

		if (!have)
			return bpflb_err_set(err,
					     "%s: refused: uses the map set '%s', which this "
					     "bpflbd does not keep (it keeps '%s')",
					     path, m->sets[i].name, BPFLB_MAP_SET_LB);
		if (have->schema != m->sets[i].schema)
			return bpflb_err_set(err,
					     "%s: refused: built against schema version %u of "
					     "the '%s' maps, this bpflbd keeps version %u; "
					     "rebuild the plugin against the bpflb SDK of this "
					     "version (pkg-config bpflb-sdk)",
					     path, m->sets[i].schema, have->name, have->schema);
		lb |= !strcmp(have->name, BPFLB_MAP_SET_LB);
	}
	if (p->kind == BPFLB_PLUGIN_MODE && !lb)
		return bpflb_err_set(err,
				     "%s: refused: a mode plugin must declare the shared "
				     "load-balancing maps it drives: .map_sets = {{"
				     "BPFLB_MAP_SET_LB, BPFLB_LB_SCHEMA}, {NULL, 0}} "
				     "(<bpflb/plugin.h>)",
				     path);
	return 0;
}

static int check_descriptor(const struct bpflb_plugin *p, const char *path, const char *base,
			    struct plugin_maps *maps, struct bpflb_err *err)
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
	if (!strcmp(p->name, "none"))
		return bpflb_err_set(err,
				     "%s: refused: 'none' is the mode that runs without a mode "
				     "plugin; rename the plugin",
				     path);
	return read_map_decls(p, path, maps, err) ?: check_map_sets(p, maps, path, err);
}

struct bpflb_plugin_ctx *plugin_host_find(struct plugin_host *h, const char *name)
{
	for (struct bpflb_plugin_ctx *c = h->head; c; c = c->next)
		if (!strcmp(c->desc->name, name))
			return c;
	return NULL;
}

/*
 * Load the checked file fd as the plugin base.  On success the plugin owns
 * fd; on failure the caller releases it with fd_release().
 */
static int load_checked(struct plugin_host *h, int fd, const char *path, const char *base,
			struct bpflb_daemon *d, struct bpflb_err *err)
{
	const struct bpflb_plugin *p;
	struct bpflb_plugin_ctx *c;
	struct plugin_maps maps;
	char name[32];
	void *dl, *pin;
	int ret;

	fd_name(fd, name);
	if (fd_names_object(fd))
		return bpflb_err_set(err, "%s: refused: %s already names a loaded object", path,
				     name);
	/* Without RTLD_NODELETE for now, so that a refused file is unmapped again. */
	dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		return bpflb_err_set(err, "%s: refused: cannot load: %s%s", path, dlerror(),
				     access(name, F_OK)
					 ? " (plugins are loaded through /proc/self/fd: "
					   "is /proc mounted?)"
					 : "");
	p = dlsym(dl, BPFLB_PLUGIN_SYMBOL);
	if (!p) {
		ret = bpflb_err_set(err,
				    "%s: refused: no '%s' descriptor; a plugin must define "
				    "one with BPFLB_PLUGIN_DEFINE() from <bpflb/plugin.h>",
				    path, BPFLB_PLUGIN_SYMBOL);
		goto fail;
	}
	ret = check_descriptor(p, path, base, &maps, err);
	if (ret)
		goto fail;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		ret = bpflb_err_set(err, "%s: out of memory", path);
		goto fail;
	}
	/* Accepted: keep it mapped for good (the core keeps pointers into it). */
	pin = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD | RTLD_NODELETE);
	if (!pin) {
		free(c->path);
		free(c);
		ret = bpflb_err_set(err, "%s: refused: cannot load: %s", path, dlerror());
		goto fail;
	}
	dlclose(pin);
	c->desc = p;
	c->maps = maps;
	c->dl = dl;
	c->fd = fd;
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
		plugin_is_mode(c) ? "mode" : "feature", path);
	return 0;
fail:
	dlclose(dl);
	return ret;
}

/* name without ".so" into base; false when name is not "<something>.so". */
static bool plugin_base(const char *name, char base[NAME_MAX + 1])
{
	size_t len = strlen(name);

	if (len < 4 || len > NAME_MAX || strcmp(name + len - 3, ".so"))
		return false;
	snprintf(base, NAME_MAX + 1, "%.*s", (int)(len - 3), name);
	return true;
}

/* Check and load the file name in the checked directory dfd (path for messages). */
static int load_in(struct plugin_host *h, int dfd, const char *path, const char *name,
		   struct bpflb_daemon *d, struct bpflb_err *err)
{
	char base[NAME_MAX + 1];
	int fd, ret;

	if (!plugin_base(name, base))
		snprintf(base, sizeof(base), "%s", name);
	if (plugin_host_find(h, base))
		return bpflb_err_set(err, "%s: refused: a plugin named '%s' is already loaded",
				     path, base);
	fd = file_open_checked(dfd, path, name, err);
	if (fd < 0)
		return fd;
	ret = load_checked(h, fd, path, base, d, err);
	if (ret)
		fd_release(fd);
	return ret;
}

int plugin_host_load(struct plugin_host *h, const char *path, struct bpflb_daemon *d,
		     struct bpflb_err *err)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	int dfd, ret;

	if (!slash)
		return refuse(err, -EINVAL, "%s: refused: not an absolute path", path);
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) ?: 1, path);
	dfd = dir_open_checked(dir, err);
	if (dfd < 0)
		return dfd;
	ret = load_in(h, dfd, path, slash + 1, d, err);
	close(dfd);
	return ret;
}

static void refusals_clear(struct plugin_host *h)
{
	struct plugin_refusal *r, *next;

	for (r = h->refusals; r; r = next) {
		next = r->next;
		free(r);
	}
	h->refusals = NULL;
	h->dir_refused[0] = '\0';
}

static void refusal_add(struct plugin_host *h, const char *base, const char *why)
{
	struct plugin_refusal *r = calloc(1, sizeof(*r));

	if (!r)
		return;
	snprintf(r->name, sizeof(r->name), "%s", base);
	snprintf(r->why, sizeof(r->why), "%s", why);
	r->next = h->refusals;
	h->refusals = r;
}

const char *plugin_host_refusal(struct plugin_host *h, const char *name)
{
	struct bpflb_plugin_ctx *c = plugin_host_find(h, name);

	if (c)
		return c->refused[0] ? c->refused : NULL;
	for (struct plugin_refusal *r = h->refusals; r; r = r->next)
		if (!strcmp(r->name, name))
			return r->why;
	return h->dir_refused[0] ? h->dir_refused : NULL;
}

/* dir/name into path, without doubling a trailing slash of dir. */
static void plugin_path(char path[PATH_MAX], const char *dir, const char *name)
{
	size_t len = strlen(dir);

	snprintf(path, PATH_MAX, "%s%s%s", dir, len && dir[len - 1] == '/' ? "" : "/", name);
}

/*
 * A loaded plugin's file as it is now: one fixed or broken since it was
 * loaded is judged again, so that a reload enabling it sees its state.
 */
static void recheck_loaded(struct bpflb_plugin_ctx *c, int dfd, const char *dir)
{
	char name[NAME_MAX + 1], path[PATH_MAX];
	struct stat now, loaded;
	struct bpflb_err err;
	int fd;

	snprintf(name, sizeof(name), "%s.so", c->desc->name);
	plugin_path(path, dir, name);
	fd = file_open_checked(dfd, path, name, &err);
	if (fd >= 0) {
		/* Code is loaded once: an upgraded file runs after a restart. */
		if (!fstat(fd, &now) && !fstat(c->fd, &loaded) &&
		    (now.st_dev != loaded.st_dev || now.st_ino != loaded.st_ino))
			pr_warn("%s: another file than the one loaded; plugin %s runs the code "
				"loaded before until bpflbd restarts",
				path, c->desc->name);
		close(fd);
		c->refused[0] = '\0';
		return;
	}
	if (strcmp(c->refused, err.msg))
		pr_err("%s; no reload enables plugin %s until this is fixed (if it runs, it "
		       "keeps running)",
		       err.msg, c->desc->name);
	snprintf(c->refused, sizeof(c->refused), "%s", err.msg);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int plugin_host_scan(struct plugin_host *h, const char *dir, struct bpflb_daemon *d)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct bpflb_err err;
	struct dirent *de;
	int dfd, rfd, refused = 0;
	DIR *dp;

	refusals_clear(h);
	dfd = dir_open_checked(dir, &err);
	if (dfd < 0) {
		if (dfd == -ENOENT)
			pr_warn("%s; no plugin is loaded from %s", err.msg, dir);
		else
			pr_err("%s; no plugin is loaded from %s", err.msg, dir);
		snprintf(h->dir_refused, sizeof(h->dir_refused), "%s", err.msg);
		for (struct bpflb_plugin_ctx *c = h->head; c; c = c->next)
			snprintf(c->refused, sizeof(c->refused), "%s", err.msg);
		return dfd;
	}
	for (struct bpflb_plugin_ctx *c = h->head; c; c = c->next)
		recheck_loaded(c, dfd, dir);

	rfd = dup(dfd);
	dp = rfd >= 0 ? fdopendir(rfd) : NULL;
	if (!dp) {
		refused = -errno;
		if (rfd >= 0)
			close(rfd);
		pr_err("plugin dir %s: cannot read: %s", dir, strerror(-refused));
		close(dfd);
		return refused;
	}
	while ((de = readdir(dp))) {
		char base[NAME_MAX + 1];

		if (!plugin_base(de->d_name, base) || plugin_host_find(h, base))
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
	/* qsort() must not be given NULL, even for no elements (UBSan). */
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX], base[NAME_MAX + 1];

		plugin_path(path, dir, names[i]);
		if (load_in(h, dfd, path, names[i], d, &err)) {
			pr_err("%s", err.msg);
			plugin_base(names[i], base);
			refusal_add(h, base, err.msg);
			h->nrefused++;
			refused++;
		}
		free(names[i]);
	}
	free(names);
	close(dfd);
	return refused;
}

void plugin_host_free(struct plugin_host *h)
{
	struct bpflb_plugin_ctx *c = h->head, *next;

	for (; c; c = next) {
		next = c->next;
		/* RTLD_NODELETE: the code stays mapped; dropping the handle is enough. */
		dlclose(c->dl);
		fd_release(c->fd);
		free(c->path);
		free(c);
	}
	h->head = NULL;
	refusals_clear(h);
}

unsigned int plugin_host_mode_names(struct plugin_host *h, char *buf, size_t len)
{
	unsigned int n = 0;
	size_t used = 0;

	buf[0] = '\0';
	for (struct bpflb_plugin_ctx *c = h->head; c; c = c->next) {
		if (!plugin_is_mode(c))
			continue;
		if (used < len)
			used += snprintf(buf + used, len - used, "%s%s", n ? ", " : "",
					 c->desc->name);
		n++;
	}
	return n;
}

const char *plugin_host_closest_mode(struct plugin_host *h, const char *name)
{
	const char *best = NULL;
	unsigned int best_d = ~0u;

	for (struct bpflb_plugin_ctx *c = h->head; c; c = c->next) {
		unsigned int d;

		if (!plugin_is_mode(c))
			continue;
		d = bpflb_name_distance(name, c->desc->name);
		if (d <= 2 && d < strlen(c->desc->name) && d < best_d) {
			best = c->desc->name;
			best_d = d;
		}
	}
	return best;
}

int plugin_pin_allowed(const struct bpflb_plugin_ctx *c, const char *pin, const char *core_set,
		       struct bpflb_err *err)
{
	const char *const *own = c->desc->own_maps;

	if (!c->maps.declared)
		return 0; /* an older SDK's descriptor: nothing to check against */
	if (core_set) {
		for (unsigned int i = 0; i < c->maps.nsets; i++)
			if (!strcmp(c->maps.sets[i].name, core_set))
				return 0;
		return bpflb_err_set(err,
				     "its BPF object pins %s, a map of the shared '%s' set, "
				     "but its descriptor does not declare that set: add "
				     "{\"%s\", <version>} to map_sets",
				     pin, core_set, core_set),
		       -EPERM;
	}
	for (unsigned int i = 0; own && own[i] && i < BPFLB_OWN_MAPS_MAX; i++)
		if (!strcmp(own[i], pin))
			return 0;
	return bpflb_err_set(err,
			     "its BPF object pins %s, which its descriptor does not declare: "
			     "add it to own_maps (a map pinned by name is shared with "
			     "whoever pins that name)",
			     pin),
	       -EPERM;
}

void plugin_maps_describe(const struct bpflb_plugin_ctx *c, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < c->maps.nsets && used < len; i++)
		used += snprintf(buf + used, len - used, "%s%s@%u", used ? ", " : "",
				 c->maps.sets[i].name, c->maps.sets[i].schema);
	if (c->maps.own_schema && used < len)
		snprintf(buf + used, len - used, "%sown@%u", used ? ", " : "",
			 c->maps.own_schema);
}
