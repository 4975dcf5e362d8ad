/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SNAT source ports for flows to remote backends.
 *
 * A flow SNATed to the node gets a source port in [snat_port_min,
 * snat_port_max] (bpflb_node_cfg).  The port is owned through the flow's REV
 * conntrack entry {backend addr:port -> node addr:port}: claiming it with
 * BPF_NOEXIST is atomic, so two flows never share (backend, node, port) and a
 * reply always finds exactly one client.  The range must not overlap the
 * node's ip_local_port_range nor the NodePort range: the node's own sockets
 * and services use those.
 */
#ifndef BPFLB_BPF_NAT_H
#define BPFLB_BPF_NAT_H

#include <bpflb/ct.h>
#include <bpflb/hash.h>

/* Ports tried before a flow is dropped as BPFLB_DROP_SNAT_EXHAUSTED. */
#ifndef BPFLB_SNAT_TRIES
#define BPFLB_SNAT_TRIES 16
#endif
/* The first tries walk up from the hashed port, the rest jump at random. */
#define BPFLB_SNAT_LINEAR_TRIES (BPFLB_SNAT_TRIES / 2)

/*
 * Claim a SNAT port for the new flow fk (client -> frontend) whose value fv
 * names its remote backend; on success fv carries fwd = BPFLB_FWD_SNAT and the
 * node's address and port, and the REV entry is in place.  The caller inserts
 * the FWD entry (and deletes the REV one if that fails).
 *
 * The start port is a hash of the flow, so a retransmitted first packet of a
 * flow whose entries were lost tends to get its old port back.
 */
static __always_inline int bpflb_snat_alloc(const struct bpflb_node_cfg *cfg,
					    const struct bpflb_ct_key *fk, struct bpflb_ct_val *fv)
{
	__u32 min = cfg->snat_port_min, max = cfg->snat_port_max;
	struct bpflb_ct_key rk;
	struct bpflb_ct_val rv;
	__u32 range, start, off;

	if (!cfg->addr || !min || max < min)
		return -1;
	range = max - min + 1;
	start = bpflb_flow_hash(fk->saddr, fv->addr, fk->sport, fv->port, fk->proto,
				cfg->hash_seed) % range;

	fv->fwd = BPFLB_FWD_SNAT;
	fv->nat_addr = cfg->addr;
	fv->nat_port = 0;
	bpflb_ct_rev_of(fk, fv, &rk, &rv);

#pragma unroll
	for (int i = 0; i < BPFLB_SNAT_TRIES; i++) {
		if (i < BPFLB_SNAT_LINEAR_TRIES)
			off = (start + i) % range;
		else
			off = bpf_get_prandom_u32() % range;
		rk.dport = bpf_htons((__u16)(min + off));
		if (!bpf_map_update_elem(&bpflb_ct, &rk, &rv, BPF_NOEXIST)) {
			fv->nat_port = rk.dport;
			return 0;
		}
	}
	return -1;
}

#endif
