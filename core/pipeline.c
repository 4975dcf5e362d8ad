// SPDX-License-Identifier: GPL-2.0-only
/*
 * The core's datapath: entry programs on tc clsact ingress/egress of every
 * configured device, and the stage array plugins fill.  The entry programs are
 * attached with BPF_TC_F_REPLACE under the configured handle and priority, so
 * a restarted daemon swaps them in place without a gap, and they are never
 * detached on reload or stop (only by the cleanup command).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpflb/lb.h>
#include <bpflb/plugin.h>

#include "bpflb_entry.skel.h"
#include "log.h"
#include "pipeline.h"

static int pin_path(char *buf, size_t len, const char *root, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", root, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int schema_fd_get(const char *root)
{
	char path[PATH_MAX];

	if (pin_path(path, sizeof(path), root, "bpflb_schema"))
		return -ENAMETOOLONG;
	return bpf_obj_get(path);
}

static void schema_key(struct bpflb_schema_key *k, const char *set)
{
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", set);
}

static int schema_check_fd(int fd, const char *root, const char *set, uint32_t version,
			   uint32_t oldest, struct bpflb_err *err)
{
	struct bpflb_schema_key k;
	struct bpflb_schema_val v;

	schema_key(&k, set);
	if (bpf_map_lookup_elem(fd, &k, &v))
		return 0; /* never recorded: a fresh set */
	if (v.magic != BPFLB_SCHEMA_MAGIC)
		return bpflb_err_set(err,
				     "pinned state under %s has a corrupt schema record for "
				     "'%s'; remove it with 'bpflbd --config FILE --cleanup'",
				     root, set),
		       -ESTALE;
	if (v.version >= oldest && v.version < version) {
		pr_notice("maps pinned under %s for '%s' have schema version %u: adopted in "
			  "place as version %u (same layout)",
			  root, set, v.version, version);
		return 0;
	}
	if (v.version != version)
		return bpflb_err_set(err,
				     "maps pinned under %s for '%s' have schema version %u, "
				     "this build needs %u; they are not reused. Stop traffic to "
				     "this node and run 'bpflbd --config FILE --cleanup' (it "
				     "resets conntrack), or run the bpflbd that made them",
				     root, set, v.version, version),
		       -ESTALE;
	return 0;
}

int pipeline_schema_check(struct pipeline *pl, const char *set, uint32_t version,
			  uint32_t oldest, struct bpflb_err *err)
{
	return schema_check_fd(pl->schema_fd, pl->pin_root, set, version, oldest, err);
}

int pipeline_schema_record(struct pipeline *pl, const char *set, uint32_t version)
{
	struct bpflb_schema_key k;
	struct bpflb_schema_val v = {.magic = BPFLB_SCHEMA_MAGIC, .version = version};

	schema_key(&k, set);
	return bpf_map_update_elem(pl->schema_fd, &k, &v, BPF_ANY) ? -errno : 0;
}

/*
 * The Maglev outer map only accepts tables of the size its template had when it
 * was created (before 5.10 without exception).  Its content is derived state
 * the daemon rebuilds on every apply, so when maglev_table_size changed since
 * the map was pinned, unpin it and let it be created anew.  Programs still
 * attached keep the old map until the mode's new programs replace them.
 */
static void maglev_resize(int schema_fd, const char *pin_root, uint32_t maglev_m)
{
	struct bpflb_schema_key k;
	struct bpflb_schema_val v;
	char path[PATH_MAX];

	schema_key(&k, "maglev_m");
	if (bpf_map_lookup_elem(schema_fd, &k, &v) || v.version == maglev_m)
		return;
	if (pin_path(path, sizeof(path), pin_root, "bpflb_maglev") || unlink(path))
		return;
	pr_notice("Maglev table size changed from %u to %u: the tables are rebuilt", v.version,
		  maglev_m);
}

/*
 * bpflb_pins: the name of every pin this instance made, written before the
 * object that pins it is loaded.  --cleanup unlinks these names and nothing
 * else: bpffs_root may hold pins of other tools, and a walk that deletes all it
 * finds would also delete whatever a wrong bpffs_root points at.
 */
#define PINS_MAP "bpflb_pins"
#define PINS_MAX 256

struct pin_name {
	char name[64];
};

static int pins_open(const char *root, bool create)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_NO_PREALLOC);
	char path[PATH_MAX];
	int fd, ret;

	if (pin_path(path, sizeof(path), root, PINS_MAP))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -errno;
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, PINS_MAP, sizeof(struct pin_name), sizeof(__u32),
			    PINS_MAX, &mo);
	if (fd < 0)
		return -errno;
	if (bpf_obj_pin(fd, path)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* A name to unlink under the root: one path component, no way out of it. */
static bool pin_name_ok(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/');
}

static void pins_record(int fd, const char *name)
{
	struct pin_name k = {{0}};
	__u32 one = 1;

	if (fd <= 0 || strlen(name) >= sizeof(k.name) || !pin_name_ok(name))
		return;
	memcpy(k.name, name, strlen(name));
	if (bpf_map_update_elem(fd, &k, &one, BPF_ANY))
		pr_warn("cannot record pin %s in %s (%s): --cleanup will leave it", name, PINS_MAP,
			strerror(errno));
}

/* The pin name of map when it is pinned by name under root, else NULL. */
static const char *map_pin_name(const struct bpf_map *map, const char *root)
{
	const char *path = bpf_map__pin_path(map);
	size_t len = strlen(root);

	if (!path || strncmp(path, root, len) || path[len] != '/')
		return NULL;
	return path + len + 1;
}

const char *pipeline_pin_name(const struct pipeline *pl, const struct bpf_map *map)
{
	return map_pin_name(map, pl->pin_root);
}

/*
 * The names the core's own object pins (lb_maps.h and the stage array), read
 * once from its embedded ELF: opening parses it without loading or pinning
 * anything, so the answer does not depend on a running pipeline.
 */
#define CORE_PINS_MAX 32
static char core_pins[CORE_PINS_MAX][64];
static int ncore_pins = -1;

static void core_pins_read(void)
{
	struct bpflb_entry *skel = bpflb_entry__open();
	struct bpf_map *map;

	ncore_pins = 0;
	if (!skel)
		return; /* then no name is the core's, and plugins pinning them are refused */
	bpf_object__for_each_map(map, skel->obj)
		if (bpf_map__pin_path(map) && ncore_pins < CORE_PINS_MAX)
			snprintf(core_pins[ncore_pins++], sizeof(core_pins[0]), "%s",
				 bpf_map__name(map));
	bpflb_entry__destroy(skel);
}

const char *pipeline_map_set(const char *pin)
{
	if (!strcmp(pin, "bpflb_stages") || !strcmp(pin, "bpflb_schema"))
		return PIPELINE_MAP_SET;
	if (ncore_pins < 0)
		core_pins_read();
	for (int i = 0; i < ncore_pins; i++)
		if (!strcmp(core_pins[i], pin))
			return BPFLB_MAP_SET_LB;
	return NULL;
}

int pipeline_pins_prepare(struct pipeline *pl, struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		const char *name = map_pin_name(map, pl->pin_root), *key;
		uint32_t want = 0;
		int ret;

		if (!name)
			continue;
		key = bpflb_map_size_key(bpf_map__name(map), &pl->sizes, &want);
		if (key && want && bpf_map__max_entries(map) != want) {
			ret = bpf_map__set_max_entries(map, want);
			if (ret) {
				pr_err("cannot size %s to [lb] %s = %u: %s", name, key, want,
				       strerror(-ret));
				return ret;
			}
		}
		pins_record(pl->pins_fd, name);
	}
	return 0;
}

/* Entries of the map pinned at root/name: 0 when none is pinned there. */
static uint32_t pinned_entries(const char *root, const char *name)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	if (pin_path(path, sizeof(path), root, name))
		return 0;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.max_entries = 0;
	close(fd);
	return info.max_entries;
}

/*
 * The sized maps of obj against their pins.  The Maglev outer map is derived
 * state (see maglev_resize): a pin of another size is replaced, not refused.
 */
static int sizes_check_obj(struct bpf_object *obj, const char *root,
			   const struct bpflb_map_sizes *sizes, bool fix_derived, const char **bad,
			   struct bpflb_err *err)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		const char *name = map_pin_name(map, root), *key;
		uint32_t want = 0, have;
		char path[PATH_MAX];

		if (!name || !(key = bpflb_map_size_key(bpf_map__name(map), sizes, &want)))
			continue;
		have = pinned_entries(root, name);
		if (!have || have == want)
			continue;
		if (!strcmp(name, "bpflb_maglev")) {
			if (fix_derived && !pin_path(path, sizeof(path), root, name) && !unlink(path))
				pr_notice("[lb] %s changed from %u to %u: the Maglev tables are "
					  "rebuilt", key, have, want);
			continue;
		}
		*bad = key;
		return bpflb_err_set(err,
				     "%u entries, but the map %s pinned under %s has %u and a "
				     "pinned map keeps its size: set %s = %u, or stop traffic to "
				     "this node and run 'bpflbd --config FILE --cleanup' (it resets "
				     "conntrack and the service maps) before starting with the new "
				     "size",
				     want, name, root, have, key, have),
		       -EMSGSIZE;
	}
	return 0;
}

int pipeline_schema_check_pinned(const char *pin_root, const char *set, uint32_t version,
				 uint32_t oldest, struct bpflb_err *err)
{
	int fd = schema_fd_get(pin_root), ret;

	if (fd < 0)
		return 0; /* nothing pinned (or not readable): start makes it */
	ret = schema_check_fd(fd, pin_root, set, version, oldest, err);
	close(fd);
	return ret;
}

int pipeline_sizes_check(const char *pin_root, const struct bpflb_map_sizes *sizes,
			 const char **key, struct bpflb_err *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_root);
	struct bpflb_entry *skel;
	int ret;

	ret = pipeline_schema_check_pinned(pin_root, "lb", BPFLB_LB_SCHEMA,
					   BPFLB_LB_SCHEMA_ADOPT_FROM, err) ?:
	      pipeline_schema_check_pinned(pin_root, "pipeline", BPFLB_PIPELINE_SCHEMA,
					   BPFLB_PIPELINE_SCHEMA, err);
	if (ret)
		return ret;
	skel = bpflb_entry__open_opts(&oo);
	if (!skel)
		return bpflb_err_set(err, "cannot open the core BPF object: %s", strerror(errno)),
		       -errno;
	ret = sizes_check_obj(skel->obj, pin_root, sizes, false, key, err);
	bpflb_entry__destroy(skel);
	return ret;
}

static int unlink_pin(const char *root, const char *name, int *removed)
{
	char path[PATH_MAX];

	if (!pin_name_ok(name) || pin_path(path, sizeof(path), root, name))
		return 0;
	if (unlink(path) == 0) {
		(*removed)++;
		return 0;
	}
	return errno == ENOENT ? 0 : -errno;
}

int pipeline_remove_pins(const char *pin_root, struct bpflb_err *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_root);
	struct bpflb_entry *skel = NULL;
	struct pin_name k, next;
	char left[512] = "";
	int fd, removed = 0, nleft = 0, ret = 0;
	struct bpf_map *map;
	struct dirent *de;
	DIR *dir;

	/* The core's own maps, by name: also when bpflb_pins was never made. */
	skel = bpflb_entry__open_opts(&oo);
	if (!skel)
		return bpflb_err_set(err, "cannot open the core BPF object: %s", strerror(errno)),
		       -errno;
	bpf_object__for_each_map(map, skel->obj) {
		const char *name = map_pin_name(map, pin_root);

		if (name)
			ret = unlink_pin(pin_root, name, &removed) ?: ret;
	}
	bpflb_entry__destroy(skel);

	/* What the plugins pinned, as recorded when they loaded. */
	fd = pins_open(pin_root, false);
	if (fd >= 0) {
		void *prev = NULL;

		while (!bpf_map_get_next_key(fd, prev, &next)) {
			next.name[sizeof(next.name) - 1] = '\0';
			ret = unlink_pin(pin_root, next.name, &removed) ?: ret;
			k = next;
			prev = &k;
		}
		close(fd);
		ret = unlink_pin(pin_root, PINS_MAP, &removed) ?: ret;
	}
	if (ret)
		return bpflb_err_set(err, "cannot remove a pin under %s: %s", pin_root,
				     strerror(-ret)),
		       ret;

	if (rmdir(pin_root) == 0) {
		pr_notice("removed %d pins and %s", removed, pin_root);
		return removed;
	}
	if (errno == ENOENT) /* nothing was pinned: the caller says so, once */
		return removed;
	if (errno != ENOTEMPTY && errno != EEXIST) {
		/* A mount point (bpffs_root = /sys/fs/bpf) stays. */
		pr_notice("removed %d pins under %s; the directory stays (%s)", removed, pin_root,
			  strerror(errno));
		return removed;
	}
	/* Not ours: leave it, and say what it is. */
	dir = opendir(pin_root);
	while (dir && (de = readdir(dir))) {
		size_t n = strlen(left);

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (nleft++ < 8)
			snprintf(left + n, sizeof(left) - n, "%s%s", n ? ", " : "", de->d_name);
	}
	if (dir)
		closedir(dir);
	pr_warn("removed %d pins under %s; left %d entries bpflb did not make there: %s%s",
		removed, pin_root, nleft, left, nleft > 8 ? ", ..." : "");
	return removed;
}

int pipeline_open(struct pipeline *pl, const char *pin_root, uint32_t tc_handle,
		  uint32_t tc_priority, uint32_t maglev_m, const struct bpflb_map_sizes *sizes,
		  struct bpflb_err *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_root);
	const char *bad_key = NULL;
	int fd, inner_fd, ret;

	memset(pl, 0, sizeof(*pl));
	pl->stages_fd = pl->schema_fd = pl->pins_fd = -1;
	pl->sizes = *sizes;
	snprintf(pl->pin_root, sizeof(pl->pin_root), "%s", pin_root);
	pl->tc_handle = tc_handle;
	pl->tc_priority = tc_priority;

	/* Refuse maps of another layout before libbpf gets a chance to reuse them. */
	fd = schema_fd_get(pin_root);
	if (fd >= 0) {
		ret = schema_check_fd(fd, pin_root, "lb", BPFLB_LB_SCHEMA,
				      BPFLB_LB_SCHEMA_ADOPT_FROM, err);
		if (!ret)
			ret = schema_check_fd(fd, pin_root, "pipeline", BPFLB_PIPELINE_SCHEMA,
					      BPFLB_PIPELINE_SCHEMA, err);
		if (!ret)
			maglev_resize(fd, pin_root, maglev_m);
		close(fd);
		if (ret)
			return ret;
	}

	pl->skel = bpflb_entry__open_opts(&oo);
	if (!pl->skel)
		return bpflb_err_set(err, "cannot open the core BPF object: %s", strerror(errno)),
		       -errno;
	ret = sizes_check_obj(pl->skel->obj, pin_root, sizes, true, &bad_key, err);
	if (!ret) {
		pl->pins_fd = pins_open(pin_root, true);
		if (pl->pins_fd < 0) {
			ret = pl->pins_fd;
			bpflb_err_set(err, "cannot pin %s under %s: %s", PINS_MAP, pin_root,
				      strerror(-ret));
		}
	}
	if (!ret)
		ret = pipeline_pins_prepare(pl, pl->skel->obj);
	if (ret) {
		pipeline_close(pl);
		return ret;
	}
	/*
	 * Every Maglev table has [lb] maglev_table_size entries: give the outer
	 * map a template of that size (libbpf 1.1 cannot resize its own).
	 */
	inner_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bpflb_mg_tmpl", sizeof(__u32), sizeof(__u32),
				  maglev_m, NULL);
	ret = inner_fd < 0 ? -errno : bpf_map__set_inner_map_fd(pl->skel->maps.bpflb_maglev, inner_fd);
	if (ret) {
		if (inner_fd >= 0)
			close(inner_fd);
		pipeline_close(pl);
		return bpflb_err_set(err, "cannot size the Maglev tables to %u: %s", maglev_m,
				     strerror(-ret)), ret;
	}
	ret = bpflb_entry__load(pl->skel);
	close(inner_fd);
	if (ret) {
		bpflb_err_set(err,
			      "cannot load the core BPF object with maps pinned under %s: %s. "
			      "If maps there were made by another bpflb build, run 'bpflbd "
			      "--config FILE --cleanup' (it resets conntrack); the libbpf "
			      "messages above name the map",
			      pin_root, strerror(-ret));
		pipeline_close(pl);
		return ret;
	}
	pl->stages_fd = bpf_map__fd(pl->skel->maps.bpflb_stages);
	pl->schema_fd = schema_fd_get(pin_root);
	if (pl->schema_fd < 0) {
		ret = pl->schema_fd;
		bpflb_err_set(err, "schema map not pinned under %s: %s", pin_root, strerror(errno));
		pipeline_close(pl);
		return ret;
	}
	pipeline_schema_record(pl, "lb", BPFLB_LB_SCHEMA);
	pipeline_schema_record(pl, "pipeline", BPFLB_PIPELINE_SCHEMA);
	pipeline_schema_record(pl, "maglev_m", maglev_m);
	return 0;
}

void pipeline_close(struct pipeline *pl)
{
	if (pl->schema_fd >= 0)
		close(pl->schema_fd);
	pl->schema_fd = -1;
	if (pl->pins_fd >= 0)
		close(pl->pins_fd);
	pl->pins_fd = -1;
	if (pl->skel)
		bpflb_entry__destroy(pl->skel); /* tc filters keep the programs alive */
	pl->skel = NULL;
	pl->stages_fd = -1;
}

int pipeline_check_devices(const char *const *names, int n, struct bpflb_err *err)
{
	if (n > PIPELINE_MAX_DEVICES)
		return bpflb_err_set(err, "%d devices configured, at most %d are supported", n,
				     PIPELINE_MAX_DEVICES);
	for (int i = 0; i < n; i++)
		if (!if_nametoindex(names[i]))
			return bpflb_err_set(err,
					     "device '%s' does not exist in this network "
					     "namespace",
					     names[i]);
	return 0;
}

static int tc_attach_one(struct pipeline *pl, int ifindex, enum bpf_tc_attach_point ap, int fd)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ap);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = pl->tc_handle, .priority = pl->tc_priority,
		    .prog_fd = fd, .flags = BPF_TC_F_REPLACE);
	int ret;

	ret = bpf_tc_hook_create(&hook);
	if (ret && ret != -EEXIST)
		return ret;
	return bpf_tc_attach(&hook, &opts);
}

static int tc_detach_one(int ifindex, enum bpf_tc_attach_point ap, uint32_t handle, uint32_t prio)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ap);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = prio);

	return bpf_tc_detach(&hook, &opts);
}

static int dev_attach(struct pipeline *pl, int ifindex)
{
	int ret;

	ret = tc_attach_one(pl, ifindex, BPF_TC_INGRESS,
			    bpf_program__fd(pl->skel->progs.bpflb_entry_in));
	if (ret)
		return ret;
	ret = tc_attach_one(pl, ifindex, BPF_TC_EGRESS,
			    bpf_program__fd(pl->skel->progs.bpflb_entry_out));
	if (ret)
		tc_detach_one(ifindex, BPF_TC_INGRESS, pl->tc_handle, pl->tc_priority);
	return ret;
}

static void sync_ifindexes(struct pipeline *pl)
{
	for (int i = 0; i < pl->ndevs; i++)
		pl->ifindexes[i] = pl->devs[i].ifindex;
}

int pipeline_set_devices(struct pipeline *pl, const char *const *names, int n,
			 struct bpflb_err *err)
{
	struct pipeline_dev next[PIPELINE_MAX_DEVICES];
	int attached[PIPELINE_MAX_DEVICES];
	int nattached = 0, ret;

	ret = pipeline_check_devices(names, n, err);
	if (ret)
		return ret;
	for (int i = 0; i < n; i++) {
		snprintf(next[i].name, sizeof(next[i].name), "%s", names[i]);
		next[i].ifindex = (int)if_nametoindex(names[i]);
		/* (Re)attach everything in the new list: REPLACE makes it idempotent
		 * and swaps in this process's entry program after a restart. */
		ret = dev_attach(pl, next[i].ifindex);
		if (ret) {
			bpflb_err_set(err, "cannot attach to tc clsact of device '%s': %s",
				      names[i], strerror(-ret));
			goto rollback;
		}
		attached[nattached++] = next[i].ifindex;
	}
	/* Only now leave devices that are no longer configured. */
	for (int i = 0; i < pl->ndevs; i++) {
		bool keep = false;

		for (int j = 0; j < n; j++)
			keep |= pl->devs[i].ifindex == next[j].ifindex;
		if (keep)
			continue;
		tc_detach_one(pl->devs[i].ifindex, BPF_TC_INGRESS, pl->tc_handle, pl->tc_priority);
		tc_detach_one(pl->devs[i].ifindex, BPF_TC_EGRESS, pl->tc_handle, pl->tc_priority);
		pr_info("detached from device %s", pl->devs[i].name);
	}
	memcpy(pl->devs, next, sizeof(next[0]) * n);
	pl->ndevs = n;
	sync_ifindexes(pl);
	return 0;
rollback:
	/* Undo attachments to devices that were not attached before. */
	for (int i = 0; i < nattached; i++) {
		bool was = false;

		for (int j = 0; j < pl->ndevs; j++)
			was |= pl->devs[j].ifindex == attached[i];
		if (!was) {
			tc_detach_one(attached[i], BPF_TC_INGRESS, pl->tc_handle, pl->tc_priority);
			tc_detach_one(attached[i], BPF_TC_EGRESS, pl->tc_handle, pl->tc_priority);
		}
	}
	return ret;
}

int pipeline_detach_devices(const char *const *names, int n, uint32_t tc_handle,
			    uint32_t tc_priority)
{
	int ret = 0;

	/* no clsact or no filter of ours is the usual answer here: libbpf need not warn */
	log_libbpf_quiet(1);
	for (int i = 0; i < n; i++) {
		int ifindex = (int)if_nametoindex(names[i]);

		if (!ifindex)
			continue;
		if (tc_detach_one(ifindex, BPF_TC_INGRESS, tc_handle, tc_priority) == 0) {
			pr_info("detached ingress of %s", names[i]);
			ret++;
		}
		if (tc_detach_one(ifindex, BPF_TC_EGRESS, tc_handle, tc_priority) == 0) {
			pr_info("detached egress of %s", names[i]);
			ret++;
		}
	}
	log_libbpf_quiet(0);
	return ret;
}

int pipeline_stage_set(struct pipeline *pl, enum bpflb_stage st, int prog_fd)
{
	uint32_t key = st, val = (uint32_t)prog_fd;

	if (st >= BPFLB_STAGE_MAX)
		return -ERANGE;
	return bpf_map_update_elem(pl->stages_fd, &key, &val, BPF_ANY) ? -errno : 0;
}

int pipeline_stage_clear(struct pipeline *pl, enum bpflb_stage st)
{
	uint32_t key = st;

	if (st >= BPFLB_STAGE_MAX)
		return -ERANGE;
	if (bpf_map_delete_elem(pl->stages_fd, &key) && errno != ENOENT)
		return -errno;
	return 0;
}

uint32_t pipeline_stage_prog_id(struct pipeline *pl, enum bpflb_stage st)
{
	uint32_t key = st, id = 0;

	if (bpf_map_lookup_elem(pl->stages_fd, &key, &id))
		return 0;
	return id;
}
