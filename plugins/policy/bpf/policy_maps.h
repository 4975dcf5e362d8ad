/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy plugin's maps (layouts in policy_structs.h).  The lookup tables
 * are private to the loaded object and written whole by userspace on each
 * apply; what must outlive a restart (flows, counters, names) is pinned under
 * the instance's bpffs root.
 */
#ifndef BPFLB_POLICY_MAPS_H
#define BPFLB_POLICY_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "policy_structs.h"

/* [0]: generation in use and conntrack timeouts. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pol_cfg);
} bpflb_pol_cfg SEC(".maps");

/* (generation, address) -> subject on this node: the host or a local workload. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * POL_MAX_SUBJECTS);
	__type(key, struct pol_subj_key);
	__type(value, struct pol_subj);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} bpflb_pol_subj SEC(".maps");

/* LPM (generation, IPv4 prefix) -> peer identity. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * POL_MAX_IDENTS);
	__type(key, struct pol_ident_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} bpflb_pol_ident SEC(".maps");

/* LPM (generation, rule set, peer identity, protocol, port prefix) -> verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * POL_MAX_RULES);
	__type(key, struct pol_rule_key);
	__type(value, struct pol_verdict);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} bpflb_pol_rules SEC(".maps");

/* Flows that passed a policy stage, so that their replies pass. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, POL_CT_SIZE);
	__type(key, struct pol_ct_key);
	__type(value, struct pol_ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_pol_ct SEC(".maps");

/* POL_DIR_* -> per-CPU verdict counters. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct pol_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_pol_cnt SEC(".maps");

/* Rule id -> per-CPU packets it allowed, audited, denied. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pol_rule_stats);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_pol_rstat SEC(".maps");

/* Policy id -> name (written by userspace; the datapath never reads it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct pol_name);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_pol_names SEC(".maps");

#endif
