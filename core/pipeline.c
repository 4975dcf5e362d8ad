// SPDX-License-Identifier: GPL-2.0-only
/*
 * The core's datapath: entry programs on tc clsact ingress/egress of every
 * configured device, and the stage array plugins fill.  The entry programs are
 * attached with BPF_TC_F_REPLACE under the configured handle and priority, so
 * a restarted daemon swaps them in place without a gap, and they are never
 * detached on reload or stop (only by the cleanup command).
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpflb/lb.h>

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
			   struct bpflb_err *err)
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
			  struct bpflb_err *err)
{
	return schema_check_fd(pl->schema_fd, pl->pin_root, set, version, err);
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

int pipeline_open(struct pipeline *pl, const char *pin_root, uint32_t tc_handle,
		  uint32_t tc_priority, uint32_t maglev_m, struct bpflb_err *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = pin_root);
	int fd, inner_fd, ret;

	memset(pl, 0, sizeof(*pl));
	pl->stages_fd = pl->schema_fd = -1;
	snprintf(pl->pin_root, sizeof(pl->pin_root), "%s", pin_root);
	pl->tc_handle = tc_handle;
	pl->tc_priority = tc_priority;

	/* Refuse maps of another layout before libbpf gets a chance to reuse them. */
	fd = schema_fd_get(pin_root);
	if (fd >= 0) {
		ret = schema_check_fd(fd, pin_root, "lb", BPFLB_LB_SCHEMA, err);
		if (!ret)
			ret = schema_check_fd(fd, pin_root, "pipeline", BPFLB_PIPELINE_SCHEMA, err);
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
		bpflb_entry__destroy(pl->skel);
		pl->skel = NULL;
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
		bpflb_entry__destroy(pl->skel);
		pl->skel = NULL;
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

	for (int i = 0; i < n; i++) {
		int ifindex = (int)if_nametoindex(names[i]);

		if (!ifindex)
			continue;
		if (tc_detach_one(ifindex, BPF_TC_INGRESS, tc_handle, tc_priority) == 0)
			pr_info("detached ingress of %s", names[i]);
		if (tc_detach_one(ifindex, BPF_TC_EGRESS, tc_handle, tc_priority) == 0)
			pr_info("detached egress of %s", names[i]);
	}
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
