/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Conntrack of translated flows: a FWD and a REV entry per flow in bpflb_ct
 * (layout and meaning in sdk/include/bpflb/lb.h).
 *
 * Entries are created at the first packet the datapath translates, whatever it
 * is: a TCP SYN starts a flow in NEW; any other TCP packet without an entry
 * (the flow predates a restart, an LRU eviction or a mode switch) is still
 * balanced, as kube-proxy balances a mid-stream packet after conntrack loss,
 * and starts in ESTABLISHED.  Only a lone RST creates nothing: there is no flow
 * to keep, and the node's stack answers it with nothing.  Without an entry the
 * reply could not be translated back, so "balance but don't track" is never an
 * option.
 *
 * TCP state: NEW on SYN, ESTABLISHED once the reply direction is seen, CLOSING
 * at a FIN or RST from either side, with flags telling which side sent a FIN
 * and whether a RST was seen (BPFLB_CT_F_*).  A SYN that finds a CLOSING entry
 * starts a new flow (port reuse after TIME_WAIT).  Both entries of a pair
 * carry the same state; last_seen is written when the state changes and
 * otherwise at most once a second per entry pair (the daemon's GC ages the
 * pair by the newer of the two).
 *
 * One half of a pair may disappear on its own: the LRU map evicts entries
 * silently, `bpflbctl ct flush` deletes a pair in two steps, a GC sweep races
 * with the datapath.  A NAT mapping is therefore only used while both halves
 * agree, each half's partner key naming the other (bpflb_ct_pair_agrees());
 * for SNAT flows this is checked on every packet, since the SNAT port is what
 * another flow could take over; for LOCAL flows (whose REV key holds the
 * client's own tuple) once a second.  When the partner is missing, the
 * packet's own half re-creates it (BPF_NOEXIST, so a key another flow claimed
 * meanwhile is never overwritten): a FWD half puts its REV half back with the
 * same SNAT port, a REV half its FWD half.  Halves that disagree are not used:
 * a FWD half whose port went to another flow makes its flow start over (a new
 * port: the backend resets a mid-stream TCP flow; the client sees a reset,
 * never another client's answers); a REV half whose client moved on to
 * another port is deleted and its packet left untranslated to the node's
 * stack.  A lost REV half cannot be rebuilt from the backend's side (its
 * packet does not name the client): a backend's TCP segment that finds no
 * REV half and no local socket on the port is dropped (reason
 * nat_no_mapping), not handed to the stack, whose reset would end the
 * connection; the client's next segment repairs the pair and the backend's
 * retransmission goes through (lb_core.h, bpflb_lb_snat_reply()).  A LOCAL flow's reply is still translated by its REV half on egress:
 * that key holds the client's own tuple, so it cannot name another client.  A
 * lost FWD half is also found from the client's side when the flow's first
 * SNAT port candidate is held by its own REV half (bpflb_snat_alloc()).  Each
 * of these events is counted in bpflb_ct_stats.
 *
 * What no check can tell apart: when a lost REV half's port went to another
 * client before the first client's next packet, what the backend still sends
 * on the old connection through that port (the same tuple at the backend)
 * reaches the new client.  For TCP that is at most a stray segment the new
 * client's stack rejects with a reset (the backend's own demultiplexing keeps
 * two connections on one tuple from both existing); for UDP, answers to
 * datagrams the first client sent before the loss.
 *
 * The two halves of a DSR flow live on two nodes and are kept each on its own
 * (lb.h).
 */
#ifndef BPFLB_BPF_CT_H
#define BPFLB_BPF_CT_H

#include <bpflb/lb_maps.h>
#include <bpflb/parse.h>

#ifndef BPFLB_NSEC_PER_SEC
#define BPFLB_NSEC_PER_SEC 1000000000ull
#endif
#define BPFLB_CT_REFRESH_NS BPFLB_NSEC_PER_SEC

static __always_inline int bpflb_fwd_is_dsr(__u8 fwd)
{
	return fwd == BPFLB_FWD_DSR_OPT || fwd == BPFLB_FWD_DSR_IPIP;
}

/* Does the entry have a partner on this node?  Not the halves of a DSR flow (lb.h). */
static __always_inline int bpflb_ct_has_partner(const struct bpflb_ct_val *v)
{
	return !bpflb_fwd_is_dsr(v->fwd);
}

/* Key of the packet's own tuple, as it arrived. */
static __always_inline void bpflb_ct_key_of(struct bpflb_ct_key *k, const struct bpflb_pkt *pkt,
					    __u8 kind)
{
	k->saddr = pkt->saddr;
	k->daddr = pkt->daddr;
	k->sport = pkt->sport;
	k->dport = pkt->dport;
	k->proto = pkt->proto;
	k->kind = kind;
	k->pad = 0;
}

/*
 * REV entry of a FWD entry.  The reply comes from the backend and goes to the
 * node's SNAT address/port when the source was translated, else to the client.
 * rv may be NULL when only the key is needed.
 */
static __always_inline void bpflb_ct_rev_of(const struct bpflb_ct_key *fk,
					    const struct bpflb_ct_val *fv,
					    struct bpflb_ct_key *rk, struct bpflb_ct_val *rv)
{
	rk->saddr = fv->addr;
	rk->sport = fv->port;
	if (fv->fwd == BPFLB_FWD_SNAT) {
		rk->daddr = fv->nat_addr;
		rk->dport = fv->nat_port;
	} else {
		rk->daddr = fk->saddr;
		rk->dport = fk->sport;
	}
	rk->proto = fk->proto;
	rk->kind = BPFLB_CT_REV;
	rk->pad = 0;
	if (!rv)
		return;
	*rv = *fv;
	rv->addr = fk->saddr;      /* client */
	rv->port = fk->sport;
	rv->nat_addr = fk->daddr;  /* frontend */
	rv->nat_port = fk->dport;
}

/* FWD entry of a REV entry: the inverse of bpflb_ct_rev_of(). */
static __always_inline void bpflb_ct_fwd_of(const struct bpflb_ct_key *rk,
					    const struct bpflb_ct_val *rv,
					    struct bpflb_ct_key *fk, struct bpflb_ct_val *fv)
{
	fk->saddr = rv->addr;
	fk->sport = rv->port;
	fk->daddr = rv->nat_addr;
	fk->dport = rv->nat_port;
	fk->proto = rk->proto;
	fk->kind = BPFLB_CT_FWD;
	fk->pad = 0;
	if (!fv)
		return;
	*fv = *rv;
	fv->addr = rk->saddr;      /* backend */
	fv->port = rk->sport;
	if (rv->fwd == BPFLB_FWD_SNAT) {
		fv->nat_addr = rk->daddr;
		fv->nat_port = rk->dport;
	} else {
		fv->nat_addr = 0;
		fv->nat_port = 0;
	}
}

/* The other entry of the pair (pv may be NULL). */
static __always_inline void bpflb_ct_partner(const struct bpflb_ct_key *k,
					     const struct bpflb_ct_val *v,
					     struct bpflb_ct_key *pk, struct bpflb_ct_val *pv)
{
	if (k->kind == BPFLB_CT_FWD)
		bpflb_ct_rev_of(k, v, pk, pv);
	else
		bpflb_ct_fwd_of(k, v, pk, pv);
}

static __always_inline __u8 bpflb_ct_initial_state(const struct bpflb_pkt *pkt)
{
	if (pkt->proto != IPPROTO_TCP)
		return BPFLB_CT_NEW;
	if (pkt->tcp_flags & (BPFLB_TCP_FIN | BPFLB_TCP_RST))
		return BPFLB_CT_CLOSING;
	if (bpflb_tcp_is_syn(pkt))
		return BPFLB_CT_NEW;
	return BPFLB_CT_ESTABLISHED; /* picked up mid-stream */
}

static __always_inline __u8 bpflb_ct_next_state(__u8 state, const struct bpflb_pkt *pkt, int reply)
{
	if (pkt->proto == IPPROTO_TCP) {
		if (pkt->tcp_flags & (BPFLB_TCP_FIN | BPFLB_TCP_RST))
			return BPFLB_CT_CLOSING;
		if (state == BPFLB_CT_CLOSING)
			return state;
	}
	if (reply && state == BPFLB_CT_NEW)
		return BPFLB_CT_ESTABLISHED;
	return state;
}

/* BPFLB_CT_F_* after a packet: which side's FIN, a RST (reply: from the backend). */
static __always_inline __u16 bpflb_ct_next_flags(__u16 flags, const struct bpflb_pkt *pkt,
						 int reply)
{
	if (pkt->proto != IPPROTO_TCP)
		return flags;
	if (pkt->tcp_flags & BPFLB_TCP_RST)
		flags |= BPFLB_CT_F_RST;
	if (pkt->tcp_flags & BPFLB_TCP_FIN)
		flags |= reply ? BPFLB_CT_F_FIN_BACKEND : BPFLB_CT_F_FIN_CLIENT;
	return flags;
}

/* Is a TCP flow over: a FIN from both sides, or a RST? */
static __always_inline int bpflb_ct_is_closed(const struct bpflb_ct_val *v)
{
	return v->state == BPFLB_CT_CLOSING && bpflb_ct_flags_closed(v->flags);
}

/* A SYN that finds a closing flow reuses its tuple: start over. */
static __always_inline int bpflb_ct_is_reopen(const struct bpflb_ct_val *v,
					      const struct bpflb_pkt *pkt)
{
	return v->state == BPFLB_CT_CLOSING && bpflb_tcp_is_syn(pkt);
}

static __always_inline void bpflb_ct_stat(__u32 what)
{
	__u64 *cnt = bpf_map_lookup_elem(&bpflb_ct_stats, &what);

	if (cnt)
		*cnt += 1;
}

/*
 * Does pv (key pk), found where k/v's partner should be, pair with k/v?  The
 * partner key of each must be the other's key: then both name the same
 * client, frontend, backend and SNAT port.
 */
static __always_inline int bpflb_ct_pair_agrees(const struct bpflb_ct_key *k,
						const struct bpflb_ct_val *v,
						const struct bpflb_ct_key *pk,
						const struct bpflb_ct_val *pv)
{
	struct bpflb_ct_key back;

	if (pv->fwd != v->fwd || pk->kind == k->kind)
		return 0;
	bpflb_ct_partner(pk, pv, &back, NULL);
	return back.saddr == k->saddr && back.daddr == k->daddr && back.sport == k->sport &&
	       back.dport == k->dport;
}

static __always_inline void bpflb_ct_init(struct bpflb_ct_val *v, const struct bpflb_pkt *pkt,
					  __u32 svc_id, __u32 backend_id, __be32 addr, __be16 port,
					  __u8 fwd)
{
	__u64 now = bpf_ktime_get_ns();

	__builtin_memset(v, 0, sizeof(*v));
	v->created = now;
	v->last_seen = now;
	v->addr = addr;
	v->port = port;
	v->state = bpflb_ct_initial_state(pkt);
	v->flags = bpflb_ct_next_flags(0, pkt, 0);
	v->fwd = fwd;
	v->svc_id = svc_id;
	v->backend_id = backend_id;
}

/*
 * Insert a new pair whose REV key is not shared by construction (a local
 * backend: the client tuple makes it unique).  SNAT pairs are inserted by
 * bpflb_snat_alloc(), which must claim the REV key exclusively.
 */
static __always_inline int bpflb_ct_create(const struct bpflb_ct_key *fk,
					   const struct bpflb_ct_val *fv)
{
	struct bpflb_ct_key rk;
	struct bpflb_ct_val rv;

	bpflb_ct_rev_of(fk, fv, &rk, &rv);
	if (bpf_map_update_elem(&bpflb_ct, &rk, &rv, BPF_ANY))
		return -1;
	if (bpf_map_update_elem(&bpflb_ct, fk, fv, BPF_ANY)) {
		bpf_map_delete_elem(&bpflb_ct, &rk);
		return -1;
	}
	return 0;
}

/* Delete an entry and its partner, unless the partner key now belongs to another flow. */
static __always_inline void bpflb_ct_delete(const struct bpflb_ct_key *k,
					    const struct bpflb_ct_val *v)
{
	struct bpflb_ct_val *pv;
	struct bpflb_ct_key pk;

	if (bpflb_ct_has_partner(v)) {
		bpflb_ct_partner(k, v, &pk, NULL);
		pv = bpf_map_lookup_elem(&bpflb_ct, &pk);
		if (pv && bpflb_ct_pair_agrees(k, v, &pk, pv))
			bpf_map_delete_elem(&bpflb_ct, &pk);
	}
	bpf_map_delete_elem(&bpflb_ct, k);
}

/*
 * Does this packet show the flow's reply direction?  A REV entry's packets
 * are replies.  The ingress node of a DSR flow never sees a reply: the
 * client's first ACK without SYN acknowledges the backend's SYN-ACK, and
 * stands for it.
 */
static __always_inline int bpflb_ct_saw_reply(const struct bpflb_ct_key *k,
					      const struct bpflb_ct_val *v,
					      const struct bpflb_pkt *pkt)
{
	if (k->kind == BPFLB_CT_REV)
		return 1;
	return bpflb_fwd_is_dsr(v->fwd) && pkt->proto == IPPROTO_TCP &&
	       (pkt->tcp_flags & (BPFLB_TCP_ACK | BPFLB_TCP_SYN)) == BPFLB_TCP_ACK;
}

enum {
	BPFLB_CT_TOUCH_OK = 0,
	/* The partner half belongs to another flow (or could not be put back):
	 * this entry's mapping must not be used. */
	BPFLB_CT_TOUCH_LOST = 1,
};

/*
 * Account a packet of a known flow (k, v is the entry it hit; reply: the
 * packet goes the reply's way): check that the pair still agrees, put a
 * missing partner back, follow the TCP state and refresh last_seen on both
 * entries (on the one entry of a DSR half).  Writes happen only when the
 * state changes or a second has passed, so a busy flow does not bounce the
 * entries' cache lines between CPUs on every packet; a SNAT flow's partner is
 * looked up on every packet all the same (see the top of this file).
 *
 * Returns BPFLB_CT_TOUCH_LOST, and changes nothing, when the partner key is
 * held by another flow.
 */
static __always_inline int bpflb_ct_touch_dir(const struct bpflb_ct_key *k, struct bpflb_ct_val *v,
					      const struct bpflb_pkt *pkt, int reply)
{
	__u8 state = bpflb_ct_next_state(v->state, pkt, reply);
	__u16 flags = bpflb_ct_next_flags(v->flags, pkt, reply);
	__u64 now = bpf_ktime_get_ns();
	int fwd = k->kind == BPFLB_CT_FWD;
	struct bpflb_ct_val *pv, nv;
	struct bpflb_ct_key pk;
	int write;

	write = state != v->state || flags != v->flags || now - v->last_seen >= BPFLB_CT_REFRESH_NS;
	if (!bpflb_ct_has_partner(v) || (!write && v->fwd != BPFLB_FWD_SNAT))
		goto out;

	bpflb_ct_partner(k, v, &pk, &nv);
	pv = bpf_map_lookup_elem(&bpflb_ct, &pk);
	if (!pv) {
		bpflb_ct_stat(fwd ? BPFLB_CT_STAT_LOST_REV : BPFLB_CT_STAT_LOST_FWD);
		nv.state = state;
		nv.flags = flags;
		nv.last_seen = now;
		if (!bpf_map_update_elem(&bpflb_ct, &pk, &nv, BPF_NOEXIST)) {
			bpflb_ct_stat(fwd ? BPFLB_CT_STAT_REPAIRED_REV : BPFLB_CT_STAT_REPAIRED_FWD);
			goto out;
		}
		/* Put back by another CPU for this flow, or claimed by another flow. */
		pv = bpf_map_lookup_elem(&bpflb_ct, &pk);
		if (!pv)
			return BPFLB_CT_TOUCH_LOST;
	}
	if (!bpflb_ct_pair_agrees(k, v, &pk, pv)) {
		bpflb_ct_stat(BPFLB_CT_STAT_CONFLICT);
		return BPFLB_CT_TOUCH_LOST;
	}
	if (write) {
		pv->state = state;
		pv->flags = flags;
		pv->last_seen = now;
	}
out:
	if (write) {
		v->state = state;
		v->flags = flags;
		v->last_seen = now;
	}
	return BPFLB_CT_TOUCH_OK;
}

/* bpflb_ct_touch_dir() for a packet whose direction its entry tells. */
static __always_inline int bpflb_ct_touch(const struct bpflb_ct_key *k, struct bpflb_ct_val *v,
					  const struct bpflb_pkt *pkt)
{
	return bpflb_ct_touch_dir(k, v, pkt, bpflb_ct_saw_reply(k, v, pkt));
}

#endif
