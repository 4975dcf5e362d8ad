// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test plugin datapath: in the first ingress stage, drop UDP datagrams to the
 * configured port and count what it saw, then hand the packet on.  Enough to
 * see from outside which configuration the datapath is running.
 */
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpflb/pipeline.h>

#include "testplug.h"

/* drop_port from the configuration, written by the plugin on apply. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct testplug_cfg);
} testplug_cfg SEC(".maps");

/* Packets seen and dropped; pinned, so it survives restarts like real state. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TESTPLUG_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} testplug_counts SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&testplug_counts, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tc")
int testplug_in(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct testplug_cfg *cfg;
	struct udphdr *udp;
	struct iphdr *ip;
	__u32 zero = 0;

	count(TESTPLUG_CNT_SEEN);
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		goto next;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		goto next;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		goto next;
	cfg = bpf_map_lookup_elem(&testplug_cfg, &zero);
	if (cfg && cfg->drop_port && udp->dest == bpf_htons(cfg->drop_port)) {
		count(TESTPLUG_CNT_DROPPED);
		return TC_ACT_SHOT;
	}
next:
	return bpflb_stage_next(skb, BPFLB_STAGE_IN_PRE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
