/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Userspace helpers of the load-balancing mode plugins (snat, dsr, hybrid, or
 * a vendor's) whose datapath is sdk/bpf/bpflb/lb_core.h: the kernel features
 * that datapath needs, the device MTUs it reads, and leaving the stage slots
 * without touching the programs of the mode that replaced us.
 *
 * Header-only, for plugins: include it after <bpflb/plugin.h> and link libbpf.
 */
#ifndef BPFLB_LB_MODE_H
#define BPFLB_LB_MODE_H

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <bpflb/lb.h>
#include <bpflb/plugin.h>

/* Entries of a `struct bpflb_feature[]`: what lb_core.h uses; end it with BPFLB_FEAT_END. */
/* clang-format off */
#define BPFLB_LB_MODE_FEATURES                                                                  \
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PROG_ARRAY, "BPF_MAP_TYPE_PROG_ARRAY" },           \
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_LRU_HASH, "BPF_MAP_TYPE_LRU_HASH" },               \
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_HASH_OF_MAPS, "BPF_MAP_TYPE_HASH_OF_MAPS" },       \
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERF_EVENT_ARRAY, "BPF_MAP_TYPE_PERF_EVENT_ARRAY" }, \
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERCPU_HASH, "BPF_MAP_TYPE_PERCPU_HASH" },         \
	{ BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERCPU_ARRAY, "BPF_MAP_TYPE_PERCPU_ARRAY" },       \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_fib_lookup, "bpf_fib_lookup" },                          \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_redirect, "bpf_redirect" },                              \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_tail_call, "bpf_tail_call" },                            \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_l3_csum_replace, "bpf_l3_csum_replace" },                \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_l4_csum_replace, "bpf_l4_csum_replace" },                \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_csum_diff, "bpf_csum_diff" },                            \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_store_bytes, "bpf_skb_store_bytes" },                \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_load_bytes, "bpf_skb_load_bytes" },                  \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_pull_data, "bpf_skb_pull_data" },                    \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_change_tail, "bpf_skb_change_tail" },                \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_skb_adjust_room, "bpf_skb_adjust_room" },                \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_perf_event_output, "bpf_perf_event_output" },            \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_get_prandom_u32, "bpf_get_prandom_u32" },                \
	{ BPFLB_FEAT_HELPER, BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns" }
/* clang-format on */

/*
 * Make bpflb_dev_mtu (map_fd) hold the MTU of every device cfg's [daemon]
 * devices names, and nothing else.  Call it on apply (with the new
 * configuration: the core attaches to the devices after the plugins applied)
 * and on every tick (with bpflb_config()): an MTU changed with `ip link` is
 * picked up within a tick.  Returns 0 or -errno (the first error; the other
 * devices are still written).
 */
static inline int bpflb_lb_mode_sync_mtu(struct bpflb_plugin_ctx *ctx, int map_fd,
					 const struct bpflb_config *cfg)
{
	const char *devs = bpflb_cfg_str(bpflb_cfg_section(cfg, "daemon", 0), "devices");
	char word[BPFLB_CFG_WORD_MAX];
	__u32 ifindexes[64], key, next, *prev = NULL;
	int n = 0, fd, ret = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	for (unsigned int i = 0; devs && n < 64 && bpflb_cfg_word(devs, i, word, sizeof(word));
	     i++) {
		struct ifreq ifr;
		__u32 k, mtu, cur;

		memset(&ifr, 0, sizeof(ifr));
		k = if_nametoindex(word);
		if (!k || strlen(word) >= sizeof(ifr.ifr_name)) {
			ret = ret ? ret : -ENODEV;
			continue;
		}
		memcpy(ifr.ifr_name, word, strlen(word));
		if (ioctl(fd, SIOCGIFMTU, &ifr)) {
			ret = ret ? ret : -errno;
			continue;
		}
		ifindexes[n++] = k;
		mtu = (__u32)ifr.ifr_mtu;
		if (!bpf_map_lookup_elem(map_fd, &k, &cur) && cur == mtu)
			continue;
		if (bpf_map_update_elem(map_fd, &k, &mtu, BPF_ANY))
			ret = ret ? ret : -errno;
		else
			bpflb_log(ctx, LOG_INFO, "device %s: MTU %u", word, mtu);
	}
	close(fd);
	/* Devices no longer configured. */
	while (!bpf_map_get_next_key(map_fd, prev, &next)) {
		bool managed = false;

		for (int i = 0; i < n; i++)
			managed |= ifindexes[i] == next;
		key = next;
		prev = &key;
		if (!managed && !bpf_map_delete_elem(map_fd, &key))
			prev = NULL; /* the walk starts over without it */
	}
	return ret;
}

/*
 * Make bpflb_peers (map_fd) hold the InternalIP of every node cfg names
 * ([node] and each [cluster-node] address): the nodes whose IP-in-IP packets
 * the datapath decapsulates.  Returns 0 or -errno.
 */
static inline int bpflb_lb_mode_addr_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static inline int bpflb_lb_mode_sync_peers(const struct bpflb_config *cfg, int map_fd)
{
	const struct bpflb_cfg_section *sec = bpflb_cfg_section(cfg, "node", 0);
	__u32 *addrs, key, next, *prev = NULL, one = 1;
	unsigned int n = 0, max = 1;
	int ret = 0;

	while (bpflb_cfg_section(cfg, "cluster-node", max - 1))
		max++;
	addrs = calloc(max, sizeof(*addrs));
	if (!addrs)
		return -ENOMEM;
	if (sec && bpflb_cfg_has(sec, "address"))
		addrs[n++] = bpflb_cfg_ipv4(sec, "address");
	for (unsigned int i = 0; n < max && (sec = bpflb_cfg_section(cfg, "cluster-node", i)); i++)
		addrs[n++] = bpflb_cfg_ipv4(sec, "address");
	for (unsigned int i = 0; i < n; i++)
		if (bpf_map_update_elem(map_fd, &addrs[i], &one, BPF_ANY))
			ret = ret ? ret : -errno;
	qsort(addrs, n, sizeof(*addrs), bpflb_lb_mode_addr_cmp);
	while (!bpf_map_get_next_key(map_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (!bsearch(&key, addrs, n, sizeof(*addrs), bpflb_lb_mode_addr_cmp) &&
		    !bpf_map_delete_elem(map_fd, &key))
			prev = NULL; /* the walk starts over without it */
	}
	free(addrs);
	return ret;
}

/* Id of the program behind prog_fd, 0 when unknown. */
static inline __u32 bpflb_lb_mode_prog_id(int prog_fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return 0;
	return info.id;
}

/*
 * On a mode switch the core attaches the new mode first (an atomic replacement
 * of each slot) and detaches the old one after: clear a slot only while it
 * still holds our program, never the successor's.
 */
static inline int bpflb_lb_mode_detach_stage(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage,
					     int prog_fd)
{
	__u32 ours = bpflb_lb_mode_prog_id(prog_fd);

	if (!ours || bpflb_stage_prog_id(ctx, stage) != ours)
		return 0;
	return bpflb_stage_clear(ctx, stage);
}

#endif
