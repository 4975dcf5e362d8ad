/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SNAT source ports for flows to remote backends.
 *
 * A flow SNATed to the node gets a source port in [snat_port_min,
 * snat_port_max] (bpflb_node_cfg; [lb] snat_ports, 32768-65535 by default,
 * as Cilium).  The port is owned through the flow's REV conntrack entry
 * {backend addr:port -> node addr:port}: claiming it with BPF_NOEXIST is
 * atomic, so two flows never hold the same (backend, node, port) entry, and a
 * reply is only translated while the FWD half of its client agrees (ct.h): a
 * surviving FWD half whose REV half was lost and whose port went to another
 * flow is refused at its next packet.
 *
 * Which port: the first candidate is a hash of the flow (client tuple and
 * backend), then the following ones, then random ones.  The hash spreads new
 * flows over the whole range, so a port a flow has just released is not the
 * next one handed out (a backend may still hold it in TIME_WAIT), and a flow
 * that lost its FWD half finds its port again: its own REV half holds the
 * first candidate (the flow goes on with it, BPFLB_CT_STAT_REPAIRED_FWD).
 *
 * Ports of closed TCP flows come back quickly: a candidate held by a flow
 * that is over (FIN from both sides, or a RST: bpflb_ct_is_closed()) and idle
 * for BPFLB_SNAT_REUSE_NS is taken over by the new flow (its stale pair is
 * deleted first; BPFLB_CT_STAT_SNAT_REUSED), instead of waiting for the GC
 * ([lb] ct_tcp_close_timeout and ct_gc_interval).  Half-closed flows (a FIN
 * from one side only) keep their port until the GC.
 *
 * The range may overlap the node's ip_local_port_range (it does by default,
 * as in Cilium): a node-local connection to a backend's address and port from
 * a port a SNAT flow holds toward that same backend would collide with it;
 * narrow [lb] snat_ports or the node's ip_local_port_range when the node
 * itself talks to service backends a lot.  It must not overlap the NodePort
 * range (checked by the daemon).
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
 * A closed flow's port goes to a new flow once it has been idle that long:
 * time for the last ACK and a retransmitted FIN or two.
 */
#ifndef BPFLB_SNAT_REUSE_NS
#define BPFLB_SNAT_REUSE_NS (2 * BPFLB_NSEC_PER_SEC)
#endif

/* Is REV entry rv (a SNAT port holder) the one of the client flow fk? */
static __always_inline int bpflb_snat_rev_is_flow(const struct bpflb_ct_val *rv,
						  const struct bpflb_ct_key *fk)
{
	return rv->fwd == BPFLB_FWD_SNAT && rv->addr == fk->saddr && rv->port == fk->sport &&
	       rv->nat_addr == fk->daddr && rv->nat_port == fk->dport;
}

/*
 * Take the port held by REV entry rk (value *cur) for a new flow: only when
 * that flow is over and idle.  Its FWD half goes first (when it still pairs
 * with the REV half), then the REV half, then the new REV half is inserted
 * with BPF_NOEXIST: when two CPUs race for the port, at most one insert
 * succeeds.  The REV half is read again right before it is deleted, so a
 * loser does not delete the winner's fresh half but in a window of a few
 * instructions (the winner's flow would then find its pair broken and start
 * over, ct.h: a delay, never a shared port).
 */
static __always_inline int bpflb_snat_reuse(const struct bpflb_ct_key *rk,
					    struct bpflb_ct_val *cur,
					    const struct bpflb_ct_val *rv, __u64 now)
{
	struct bpflb_ct_val old = *cur;
	struct bpflb_ct_key ofk;
	struct bpflb_ct_val *ofv;

	if (rk->proto != IPPROTO_TCP || old.fwd != BPFLB_FWD_SNAT || !bpflb_ct_is_closed(&old) ||
	    now - old.last_seen < BPFLB_SNAT_REUSE_NS)
		return -1;
	bpflb_ct_fwd_of(rk, &old, &ofk, NULL);
	ofv = bpf_map_lookup_elem(&bpflb_ct, &ofk);
	if (ofv && bpflb_ct_pair_agrees(rk, &old, &ofk, ofv))
		bpf_map_delete_elem(&bpflb_ct, &ofk);
	cur = bpf_map_lookup_elem(&bpflb_ct, rk);
	if (!cur || cur->created != old.created || cur->last_seen != old.last_seen ||
	    bpf_map_delete_elem(&bpflb_ct, rk))
		return -1; /* another CPU took it first */
	if (bpf_map_update_elem(&bpflb_ct, rk, rv, BPF_NOEXIST))
		return -1;
	bpflb_ct_stat(BPFLB_CT_STAT_SNAT_REUSED);
	return 0;
}

/*
 * Claim a SNAT port for the new flow fk (client -> frontend) whose value fv
 * names its remote backend; on success fv carries fwd = BPFLB_FWD_SNAT and the
 * node's address and port, and the REV entry is in place.  The caller inserts
 * the FWD entry (and deletes the REV one if that fails).
 */
static __always_inline int bpflb_snat_alloc(const struct bpflb_node_cfg *cfg,
					    const struct bpflb_ct_key *fk, struct bpflb_ct_val *fv,
					    const struct bpflb_pkt *pkt)
{
	__u32 min = cfg->snat_port_min, max = cfg->snat_port_max;
	__u64 now = fv->created;
	struct bpflb_ct_val rv, *old;
	struct bpflb_ct_key rk;
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
		if (!bpf_map_update_elem(&bpflb_ct, &rk, &rv, BPF_NOEXIST))
			goto claimed;
		old = bpf_map_lookup_elem(&bpflb_ct, &rk);
		if (!old)
			continue;
		if (bpflb_snat_rev_is_flow(old, fk)) {
			/*
			 * Our own REV half: the FWD half was lost (or the
			 * client reuses its tuple after a close).  Go on with
			 * this port; a SYN starts the pair afresh.
			 */
			if (!bpflb_tcp_is_syn(pkt)) {
				bpflb_ct_stat(BPFLB_CT_STAT_LOST_FWD);
				bpflb_ct_stat(BPFLB_CT_STAT_REPAIRED_FWD);
			}
			if (bpf_map_update_elem(&bpflb_ct, &rk, &rv, BPF_EXIST))
				continue;
			goto claimed;
		}
		if (!bpflb_snat_reuse(&rk, old, &rv, now))
			goto claimed;
	}
	return -1;
claimed:
	fv->nat_port = rk.dport;
	return 0;
}

#endif
