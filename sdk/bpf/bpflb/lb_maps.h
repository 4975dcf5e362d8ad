/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The load-balancing maps every mode shares, pinned by name under the
 * instance's bpffs root (bpf_object_open_opts.pin_root_path).
 *
 * The core's entry object includes this header, so the maps exist and are
 * pinned before any plugin loads; every other object that includes it reuses
 * the pins.  libbpf only reuses a pin whose type, sizes, max_entries and flags
 * match, so these definitions are the one place to change a map; a layout
 * change of a value also bumps BPFLB_LB_SCHEMA (sdk/include/bpflb/lb.h).
 *
 * Maps written by the control plane only are BPF_F_NO_PREALLOC: they are large
 * when full and mostly empty.  Conntrack is an LRU and must preallocate.
 */
#ifndef BPFLB_BPF_LB_MAPS_H
#define BPFLB_BPF_LB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include <bpflb/lb.h>

/* Schema version and magic of each pinned map set, checked before reuse. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct bpflb_schema_key);
	__type(value, struct bpflb_schema_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_schema SEC(".maps");

/* Frontends (address, port, protocol) -> service. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFLB_MAX_SERVICES);
	__type(key, struct bpflb_svc_key);
	__type(value, struct bpflb_svc);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_svc SEC(".maps");

/* (service id, slot 0..count-1) -> backend id: random selection candidates. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFLB_MAX_SLOTS);
	__type(key, struct bpflb_slot_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_slots SEC(".maps");

/* Backend id -> address, port, state, flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFLB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct bpflb_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_backends SEC(".maps");

/* Template of a service's Maglev table: index -> backend id (0: none). */
struct bpflb_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BPFLB_MAGLEV_DEFAULT_M);
	__type(key, __u32);
	__type(value, __u32);
};

/* Service id -> its Maglev table (an ARRAY of BPFLB_MAGLEV_DEFAULT_M backend ids). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, BPFLB_MAX_MAGLEV);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct bpflb_maglev_inner); /* must be the last member */
} bpflb_maglev SEC(".maps");

/* Conntrack: FWD and REV entry of every translated flow (see lb.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BPFLB_CT_SIZE);
	__type(key, struct bpflb_ct_key);
	__type(value, struct bpflb_ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_ct SEC(".maps");

/* enum bpflb_ct_stat -> per-CPU count: halves lost, repaired, in conflict; SNAT ports reused. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFLB_CT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_ct_stats SEC(".maps");

/* Node-wide settings, index 0, written by the core on each apply. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpflb_node_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_node SEC(".maps");

/*
 * Ifindex of a device the daemon manages -> its MTU, written by the mode
 * plugin (and refreshed on its tick): what the DSR encapsulation must fit in.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_dev_mtu SEC(".maps");

/*
 * InternalIP of every node of the cluster ([node], [cluster-node]) -> 1,
 * written by the mode plugin: the only sources whose IP-in-IP packets the
 * datapath decapsulates, so that a node is no open relay.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BPFLB_MAX_NODES);
	__type(key, __be32);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_peers SEC(".maps");

/* Flow events (struct bpflb_flow_event) to the daemon, one ring per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_events SEC(".maps");

/* Service id -> per-CPU forwarded/dropped packets and bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, BPFLB_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct bpflb_svc_stats);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_svc_stats SEC(".maps");

/* enum bpflb_drop_reason -> per-CPU count of dropped packets. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BPFLB_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_drops SEC(".maps");

/* Per-CPU token bucket of the flow-event rate limit, and what it suppressed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpflb_ev_rate);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_ev_rate SEC(".maps");

#endif
