/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Fixtures of the services tests: the load-balancing maps of
 * sdk/bpf/bpflb/lb_maps.h created and pinned under a private bpffs directory
 * (removed again by the test, also when it fails), and configurations loaded
 * from text with the core's and the services' schemas.
 */
#ifndef BPFLB_TEST_SVC_FIXTURE_H
#define BPFLB_TEST_SVC_FIXTURE_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include <bpflb/lb.h>

#include "config/config_internal.h"
#include "lb/services.h"

#define FX_CT_SIZE 4096

struct fx_maps {
	char root[512];
	bool ok;
};

/* pid of the test runner: every pin directory of a run starts with it */
static int fx_run_pid;

static const char *const fx_map_names[] = {
    "bpflb_svc", "bpflb_slots", "bpflb_backends",  "bpflb_maglev",
    "bpflb_ct",	 "bpflb_node",	"bpflb_svc_stats", NULL,
};

/* Can this process create BPF maps (root, bpffs mounted)? */
static inline bool fx_bpf_available(void)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "fx_probe", 4, 4, 1, NULL);

	if (fd < 0)
		return false;
	close(fd);
	return access("/sys/fs/bpf", W_OK) == 0;
}

static inline int fx_pin(const char *root, const char *name, int fd)
{
	char path[1024];
	int ret;

	if (fd < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", root, name);
	ret = bpf_obj_pin(fd, path) ? -errno : 0;
	close(fd);
	return ret;
}

static inline void fx_maps_destroy(struct fx_maps *fx)
{
	char path[1024];

	if (!fx->root[0])
		return;
	for (int i = 0; fx_map_names[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", fx->root, fx_map_names[i]);
		unlink(path);
	}
	rmdir(fx->root);
	fx->root[0] = '\0';
}

/*
 * Call from main() before and after the run: a test that failed in its forked
 * child may not have reached its teardown.
 */
static inline void fx_cleanup_run(void)
{
	char prefix[64];
	struct dirent *de;
	DIR *d;

	if (!fx_run_pid)
		fx_run_pid = (int)getpid();
	snprintf(prefix, sizeof(prefix), "bpflb-ut-%d-", fx_run_pid);
	d = opendir("/sys/fs/bpf");
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct fx_maps fx;

		if (strncmp(de->d_name, prefix, strlen(prefix)))
			continue;
		snprintf(fx.root, sizeof(fx.root), "/sys/fs/bpf/%s", de->d_name);
		fx_maps_destroy(&fx);
	}
	closedir(d);
}

/* The maps as lb_maps.h declares them (conntrack smaller: only sizes are checked). */
static inline int fx_maps_create_sized(struct fx_maps *fx, uint32_t svc_max)
{
	static int seq;
	LIBBPF_OPTS(bpf_map_create_opts, nopre, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, outer);
	int inner, ret;

	memset(fx, 0, sizeof(*fx));
	snprintf(fx->root, sizeof(fx->root), "/sys/fs/bpf/bpflb-ut-%d-%d-%d", fx_run_pid,
		 (int)getpid(), seq++);
	if (mkdir(fx->root, 0700))
		return -errno;
	ret = fx_pin(fx->root, "bpflb_svc",
		     bpf_map_create(BPF_MAP_TYPE_HASH, "bpflb_svc", sizeof(struct bpflb_svc_key),
				    sizeof(struct bpflb_svc), svc_max, &nopre));
	if (!ret)
		ret = fx_pin(fx->root, "bpflb_slots",
			     bpf_map_create(BPF_MAP_TYPE_HASH, "bpflb_slots",
					    sizeof(struct bpflb_slot_key), 4, BPFLB_MAX_SLOTS,
					    &nopre));
	if (!ret)
		ret = fx_pin(fx->root, "bpflb_backends",
			     bpf_map_create(BPF_MAP_TYPE_HASH, "bpflb_backends", 4,
					    sizeof(struct bpflb_backend), BPFLB_MAX_BACKENDS,
					    &nopre));
	if (!ret) {
		inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "fx_inner", 4, 4, BPFLB_MAGLEV_DEFAULT_M,
				       NULL);
		outer.inner_map_fd = (__u32)inner;
		ret = fx_pin(fx->root, "bpflb_maglev",
			     bpf_map_create(BPF_MAP_TYPE_HASH_OF_MAPS, "bpflb_maglev", 4, 4,
					    BPFLB_MAX_MAGLEV, &outer));
		if (inner >= 0)
			close(inner);
	}
	if (!ret)
		ret = fx_pin(fx->root, "bpflb_ct",
			     bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "bpflb_ct",
					    sizeof(struct bpflb_ct_key),
					    sizeof(struct bpflb_ct_val), FX_CT_SIZE, NULL));
	if (!ret)
		ret = fx_pin(fx->root, "bpflb_node",
			     bpf_map_create(BPF_MAP_TYPE_ARRAY, "bpflb_node", 4,
					    sizeof(struct bpflb_node_cfg), 1, NULL));
	if (!ret)
		ret = fx_pin(fx->root, "bpflb_svc_stats",
			     bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, "bpflb_svc_stats", 4,
					    sizeof(struct bpflb_svc_stats), BPFLB_MAX_SERVICES,
					    &nopre));
	if (ret) {
		fx_maps_destroy(fx);
		return ret;
	}
	fx->ok = true;
	return 0;
}

static inline int fx_maps_create(struct fx_maps *fx)
{
	return fx_maps_create_sized(fx, BPFLB_MAX_SERVICES);
}

static inline int fx_map_fd(const struct fx_maps *fx, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", fx->root, name);
	return bpf_obj_get(path);
}

static inline size_t fx_map_count(const struct fx_maps *fx, const char *name)
{
	int fd = fx_map_fd(fx, name);
	char key[64], next[64];
	void *prev = NULL;
	size_t n = 0;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	close(fd);
	return n;
}

/* Load text as the file "test.ini" with the schemas of the core and of services. */
static inline struct bpflb_config *fx_config(const char *text, struct bpflb_err *err)
{
	const struct bpflb_cfg_schema schemas[] = {
	    {"bpflbd", bpflb_core_sections},
	    {"bpflbd", bpflb_services_sections},
	};
	struct bpflb_config *cfg = NULL;
	FILE *fp = fmemopen((void *)text, strlen(text), "r");

	if (!fp)
		return NULL;
	if (bpflb_config_load_fp(fp, "test.ini", schemas, 2, 0, &cfg, err))
		cfg = NULL;
	fclose(fp);
	return cfg;
}

#endif
