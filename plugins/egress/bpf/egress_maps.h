/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The egress gateway's maps, pinned by name under the instance's bpffs root so
 * that a restarted daemon (and the datapath while it is away) keeps them.
 * Layouts in egress.h; a change here bumps EGRESS_SCHEMA.
 */
#ifndef EGRESS_MAPS_H
#define EGRESS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include <bpflb/lb.h>

#include "egress.h"

/* This node: address, SNAT port range, MTU. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct egress_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} egress_cfg SEC(".maps");

/* Source prefix -> bitmap of the policies selecting it. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, EGRESS_MAX_PREFIXES);
	__type(key, struct egress_lpm_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} egress_src SEC(".maps");

/* Destination prefix -> bitmap of the policies steering it (exclusions applied). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, EGRESS_MAX_PREFIXES);
	__type(key, struct egress_lpm_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} egress_dst SEC(".maps");

/* Policy index -> current gateway and egress IP. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EGRESS_MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct egress_policy_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} egress_policies SEC(".maps");

/* Cluster node addresses: the only tunnel sources a gateway accepts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_MAX_NODES);
	__type(key, __be32);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} egress_nodes SEC(".maps");

/* Egress IPs this node is a gateway for, and whether it serves them now. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_MAX_IPS);
	__type(key, __be32);
	__type(value, struct egress_ip_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} egress_ips SEC(".maps");

/* Gateway conntrack: FWD and REV entry of every translated flow. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EGRESS_CT_SIZE);
	__type(key, struct bpflb_ct_key);
	__type(value, struct egress_ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} egress_ct SEC(".maps");

/* Policy index -> per-CPU packet and byte counters. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EGRESS_MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct egress_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} egress_stats SEC(".maps");

#endif
