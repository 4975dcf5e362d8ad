/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Service lookup and backend selection, the same for every mode.
 *
 * The daemon keeps only ACTIVE backends in a service's selection set: slots
 * 0..count-1 of bpflb_slots (random) and the service's Maglev table.  "total"
 * counts backends in any state so a stage can tell "no backend at all" from
 * "none usable here" (ETP=Local, or every backend terminating).
 */
#ifndef BPFLB_BPF_LB_SELECT_H
#define BPFLB_BPF_LB_SELECT_H

#include <bpflb/hash.h>
#include <bpflb/lb_maps.h>
#include <bpflb/parse.h>

static __always_inline struct bpflb_node_cfg *bpflb_node_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&bpflb_node, &zero);
}

/* The service whose frontend the packet is addressed to, NULL if none. */
static __always_inline struct bpflb_svc *bpflb_svc_lookup(const struct bpflb_pkt *pkt)
{
	struct bpflb_svc_key key = {
		.addr = pkt->daddr,
		.port = pkt->dport,
		.proto = pkt->proto,
	};

	return bpf_map_lookup_elem(&bpflb_svc, &key);
}

static __always_inline struct bpflb_backend *bpflb_backend_lookup(__u32 id)
{
	if (id == BPFLB_BACKEND_NONE)
		return NULL;
	return bpf_map_lookup_elem(&bpflb_backends, &id);
}

static __always_inline __u32 bpflb_pkt_hash(const struct bpflb_pkt *pkt, __u32 seed)
{
	return bpflb_flow_hash(pkt->saddr, pkt->daddr, pkt->sport, pkt->dport, pkt->proto, seed);
}

static __always_inline __u32 bpflb_select_random(const struct bpflb_svc *svc)
{
	struct bpflb_slot_key key = {
		.svc_id = svc->id,
		.slot = bpf_get_prandom_u32() % svc->count,
	};
	__u32 *id = bpf_map_lookup_elem(&bpflb_slots, &key);

	return id ? *id : BPFLB_BACKEND_NONE;
}

/*
 * Maglev: the flow hash indexes the service's table of M entries, so every
 * node sharing hash_seed picks the same backend for a tuple, and a backend
 * change moves few flows.  Returns BPFLB_BACKEND_NONE when the daemon has not
 * (yet) installed a table for the service.
 */
static __always_inline __u32 bpflb_select_maglev(const struct bpflb_svc *svc,
						 const struct bpflb_pkt *pkt,
						 const struct bpflb_node_cfg *cfg)
{
	/* M is the daemon's [lb] maglev_table_size; the inner maps have that size. */
	__u32 m = cfg->maglev_m ? cfg->maglev_m : BPFLB_MAGLEV_DEFAULT_M;
	__u32 idx = bpflb_pkt_hash(pkt, cfg->hash_seed) % m;
	__u32 svc_id = svc->id;
	__u32 *id;
	void *table;

	table = bpf_map_lookup_elem(&bpflb_maglev, &svc_id);
	if (!table)
		return BPFLB_BACKEND_NONE;
	id = bpf_map_lookup_elem(table, &idx);
	return id ? *id : BPFLB_BACKEND_NONE;
}

/*
 * Pick a backend for a new flow of svc.  Returns the backend and its id, or
 * NULL when the service has no usable backend (count == 0, or the selection
 * set names a backend that is gone or no longer ACTIVE: the daemon is in the
 * middle of an update, and dropping a first packet is the safe answer).
 */
static __always_inline struct bpflb_backend *bpflb_select(const struct bpflb_svc *svc,
							  const struct bpflb_pkt *pkt,
							  const struct bpflb_node_cfg *cfg,
							  __u32 *backend_id)
{
	struct bpflb_backend *be;
	__u32 id = BPFLB_BACKEND_NONE;

	if (svc->count == 0)
		return NULL;
	if (svc->flags & BPFLB_SVC_F_MAGLEV)
		id = bpflb_select_maglev(svc, pkt, cfg);
	/* No Maglev table installed yet: random is better than nothing. */
	if (id == BPFLB_BACKEND_NONE)
		id = bpflb_select_random(svc);
	be = bpflb_backend_lookup(id);
	if (!be || be->state != BPFLB_BE_ACTIVE)
		return NULL;
	*backend_id = id;
	return be;
}

/* May an established flow keep using this backend?  TERMINATING: yes. */
static __always_inline int bpflb_backend_usable(const struct bpflb_backend *be)
{
	return be && be->state != BPFLB_BE_MAINTENANCE;
}

#endif
