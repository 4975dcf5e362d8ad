/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The load-balancing datapath every mode shares.  A mode plugin's BPF object
 * is this file plus two stage programs that call bpflb_lb_in() (IN_LB stage,
 * tc ingress) and bpflb_lb_out() (OUT_LB stage, tc egress); the modes differ
 * only in `bpflb_lb_policy`, the forwarding of NEW flows to a backend on
 * another node (enum bpflb_lb_policy in lb.h):
 *
 *   snat    DNAT to the backend and SNAT to this node: replies come back here
 *   dsr     DNAT, client address kept, dispatched to the backend's node by
 *           the IPv4 option or IP-in-IP ([lb] dsr_dispatch, bpflb_node_cfg
 *           flags); the backend node answers the client directly
 *   hybrid  TCP as dsr, UDP as snat
 *
 * A service's `forwarding = snat|dsr` overrides the policy in every mode.  A
 * flow to a backend on this node is always translated here alone (LOCAL:
 * DNAT, client kept), which is also externalTrafficPolicy=Local.
 *
 * Everything else does not depend on the mode, so that a mode switch (one
 * atomic swap of the two stage slots) changes new flows only:
 *  - a flow continues with the forwarding its conntrack entry recorded
 *    (LOCAL, SNAT, DSR_OPT or DSR_IPIP), whichever mode recorded it;
 *  - the backend-node half of DSR runs in every mode, because during a
 *    rolling switch other nodes may still dispatch to us: an IP-in-IP packet
 *    to this node is decapsulated, the DSR option is read into a REV entry
 *    and removed, and on egress the backend's replies get the frontend back
 *    as their source (plus, for IP-in-IP, the MSS of the SYN-ACK clamped so
 *    that the client's segments still fit once encapsulated).
 *
 *   bpflb_lb_in (ingress)
 *     IPIP to this node             decapsulate; then as a dispatched packet
 *     DSR option first              backend half: REV entry, option removed
 *     client -> frontend            known flow: as recorded; new flow: select,
 *                                   choose the forwarding, conntrack, translate
 *     backend -> node:nat port      reply of a SNATed flow: back to the client
 *   bpflb_lb_out (egress)
 *     backend -> client             reply of a LOCAL flow, or of a DSR flow
 *                                   dispatched to us: source = frontend
 *
 * MTU: a DSR packet grows by the option (8 bytes: TCP SYN, every UDP
 * datagram) and/or the outer header (20 bytes, every IP-in-IP packet).  A
 * packet that would not fit the device MTU is answered with ICMP
 * fragmentation needed, announcing the MTU minus that overhead, and dropped
 * (counted as BPFLB_DROP_MTU).  For TCP over IP-in-IP the backend node clamps
 * the MSS its backend announces, so full-size segments never get there.
 */
#ifndef BPFLB_BPF_LB_CORE_H
#define BPFLB_BPF_LB_CORE_H

#include <bpflb/pipeline.h>
#include <bpflb/parse.h>
#include <bpflb/csum.h>
#include <bpflb/lb_maps.h>
#include <bpflb/lb_select.h>
#include <bpflb/ct.h>
#include <bpflb/nat.h>
#include <bpflb/events.h>
#include <bpflb/fib.h>
#include <bpflb/reject.h>
#include <bpflb/dsr.h>

#ifndef BPFLB_LB_POLICY
#error "define BPFLB_LB_POLICY (enum bpflb_lb_policy) before including bpflb/lb_core.h"
#endif

/*
 * Backend selection for a new flow.  A mode with its own policy (a vendor's)
 * defines BPFLB_LB_SELECT before including this file as a function with
 * bpflb_select()'s signature and contract (lb_select.h, included first for
 * the types and lookups); everything else, conntrack included, stays shared,
 * so flows it placed survive a switch to another mode and back.
 */
#ifndef BPFLB_LB_SELECT
#define BPFLB_LB_SELECT bpflb_select
#endif

/* Forwarding of new flows to remote backends; the mode plugin may set it before load. */
const volatile __u32 bpflb_lb_policy = BPFLB_LB_POLICY;

/* "Go on with the next stage": no tc verdict is negative. */
#define BPFLB_LB_NEXT (-1)

static __always_inline void bpflb_lb_mark(struct __sk_buff *skb, __u32 svc_id, __u32 flags)
{
	skb->cb[BPFLB_CB_FLAGS] |= BPFLB_PKT_LB_DONE | flags;
	skb->cb[BPFLB_CB_SVC] = svc_id;
}

/* --- ingress node: forwarding a client packet -------------------------------- */

/* A DSR packet that will not fit: tell the client the MTU it can use. */
static __always_inline int bpflb_lb_too_big(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					    const struct bpflb_ct_val *fv, __u32 mtu)
{
	struct bpflb_flow_event ev;
	__u32 bytes = skb->len;
	int rc;

	bpflb_event_init(&ev, pkt, BPFLB_VERDICT_DROPPED, BPFLB_STAGE_IN_LB);
	ev.svc_id = fv->svc_id;
	ev.backend_id = fv->backend_id;
	ev.reason = BPFLB_DROP_MTU;
	ev.fwd = fv->fwd;
	rc = bpflb_icmp_frag_needed(skb, pkt, (__u16)mtu);
	if (rc < 0)
		return bpflb_drop(skb, pkt, fv->svc_id, fv->backend_id, BPFLB_DROP_MTU,
				  BPFLB_STAGE_IN_LB);
	bpflb_drop_count(BPFLB_DROP_MTU);
	bpflb_svc_account(fv->svc_id, bytes, 1);
	bpflb_event_send(skb, &ev);
	return rc;
}

/*
 * DSR: DNAT to the backend keeping the client's address, the frontend in the
 * option on a SYN or a UDP datagram, and either routed as it is (option
 * dispatch: the network routes pod addresses to their node) or wrapped into
 * IP-in-IP to the backend's node.
 */
static __always_inline int bpflb_lb_dsr_fwd(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					    const struct bpflb_node_cfg *cfg,
					    const struct bpflb_ct_val *fv, __be32 node_addr)
{
	__u32 bytes = skb->len, svc_id = fv->svc_id, overhead = 0, mtu;
	__be32 fe_addr = pkt->daddr;
	__be16 fe_port = pkt->dport;
	int ipip = fv->fwd == BPFLB_FWD_DSR_IPIP;
	int opt = (bpflb_tcp_is_syn(pkt) || pkt->proto == IPPROTO_UDP) && bpflb_dsr_opt_fits(pkt);

	if (ipip && !node_addr)
		return bpflb_drop(skb, pkt, svc_id, fv->backend_id, BPFLB_DROP_FIB,
				  BPFLB_STAGE_IN_LB);
	if (opt)
		overhead += BPFLB_DSR_OPT_LEN;
	if (ipip)
		overhead += BPFLB_IPIP_HLEN;
	/* GSO packets are cut to the MSS later; the MSS clamp takes care of them. */
	mtu = bpflb_dev_mtu_get(skb->ifindex);
	if (overhead && skb->gso_segs <= 1 && bpf_ntohs(pkt->tot_len) + overhead > mtu)
		return bpflb_lb_too_big(skb, pkt, fv, mtu - overhead);

	if (bpflb_nat_dst(skb, pkt, fv->addr, fv->port))
		goto bad;
	if (opt && bpflb_dsr_opt_push(skb, pkt, fe_addr, fe_port))
		goto bad;
	bpflb_svc_account(svc_id, bytes, 0);
	bpflb_lb_mark(skb, svc_id, 0);
	if (!ipip) {
		bpflb_fib_redirect(skb, pkt, skb->ingress_ifindex);
		return BPFLB_LB_NEXT;
	}
	/* We route the inner packet: its TTL goes down here (the stack answers 1). */
	if (pkt->ttl > 1 && bpflb_ip_dec_ttl(skb, pkt))
		goto bad;
	if (bpflb_ipip_push(skb, pkt, cfg->addr, node_addr))
		goto bad;
	bpflb_fib_redirect_outer(skb, cfg->addr, node_addr,
				 bpf_ntohs(pkt->tot_len) + BPFLB_IPIP_HLEN, pkt->tos,
				 skb->ingress_ifindex);
	return BPFLB_LB_NEXT;
bad:
	return bpflb_drop(skb, pkt, svc_id, fv->backend_id, BPFLB_DROP_BAD_PACKET,
			  BPFLB_STAGE_IN_LB);
}

/*
 * Translate a client packet as the flow's FWD entry says, count it, and route
 * it toward the backend.  fv points to the map entry or a copy of it.
 */
static __always_inline int bpflb_lb_fwd(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					const struct bpflb_node_cfg *cfg,
					const struct bpflb_ct_val *fv, __be32 node_addr)
{
	__u32 bytes = skb->len, svc_id = fv->svc_id;

	if (bpflb_fwd_is_dsr(fv->fwd))
		return bpflb_lb_dsr_fwd(skb, pkt, cfg, fv, node_addr);
	if (fv->fwd == BPFLB_FWD_SNAT && bpflb_nat_src(skb, pkt, fv->nat_addr, fv->nat_port))
		return bpflb_drop(skb, pkt, svc_id, fv->backend_id, BPFLB_DROP_BAD_PACKET,
				  BPFLB_STAGE_IN_LB);
	if (bpflb_nat_dst(skb, pkt, fv->addr, fv->port))
		return bpflb_drop(skb, pkt, svc_id, fv->backend_id, BPFLB_DROP_BAD_PACKET,
				  BPFLB_STAGE_IN_LB);
	bpflb_svc_account(svc_id, bytes, 0);
	bpflb_lb_mark(skb, svc_id, 0);
	bpflb_fib_redirect(skb, pkt, skb->ingress_ifindex);
	return BPFLB_LB_NEXT;
}

/* A service without a usable backend for this packet. */
static __always_inline int bpflb_lb_no_backend(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					       const struct bpflb_svc *svc)
{
	struct bpflb_flow_event ev;
	__u32 bytes = skb->len;
	int rc;

	/* ETP=Local drops, as kube-proxy does, even when the service rejects. */
	if ((svc->flags & BPFLB_SVC_F_ETP_LOCAL) && svc->total)
		return bpflb_drop(skb, pkt, svc->id, 0, BPFLB_DROP_NO_LOCAL_BACKEND,
				  BPFLB_STAGE_IN_LB);
	if (!(svc->flags & BPFLB_SVC_F_REJECT))
		return bpflb_drop(skb, pkt, svc->id, 0, BPFLB_DROP_NO_BACKEND, BPFLB_STAGE_IN_LB);

	/* The packet goes nowhere but back: count it as dropped for want of a backend. */
	bpflb_event_init(&ev, pkt, BPFLB_VERDICT_REJECTED, BPFLB_STAGE_IN_LB);
	ev.svc_id = svc->id;
	ev.reason = BPFLB_DROP_NO_BACKEND;
	rc = bpflb_reject_port_unreach(skb, pkt);
	if (rc < 0)
		return bpflb_drop(skb, pkt, svc->id, 0, BPFLB_DROP_NO_BACKEND, BPFLB_STAGE_IN_LB);
	bpflb_drop_count(BPFLB_DROP_NO_BACKEND);
	bpflb_svc_account(svc->id, bytes, 1);
	bpflb_event_send(skb, &ev);
	return rc;
}

/* Should a new flow of svc to a remote backend go by DSR? */
static __always_inline int bpflb_lb_wants_dsr(const struct bpflb_svc *svc,
					      const struct bpflb_pkt *pkt)
{
	if (svc->flags & BPFLB_SVC_F_FWD_SNAT)
		return 0;
	if (svc->flags & BPFLB_SVC_F_FWD_DSR)
		return 1;
	if (bpflb_lb_policy == BPFLB_POLICY_DSR)
		return 1;
	if (bpflb_lb_policy == BPFLB_POLICY_HYBRID)
		return pkt->proto == IPPROTO_TCP;
	return 0;
}

/* The forwarding of a new flow to backend be. */
static __always_inline __u8 bpflb_lb_choose(const struct bpflb_node_cfg *cfg,
					    const struct bpflb_svc *svc,
					    const struct bpflb_pkt *pkt,
					    const struct bpflb_backend *be)
{
	if (be->flags & BPFLB_BE_F_LOCAL)
		return BPFLB_FWD_LOCAL;
	if (!bpflb_lb_wants_dsr(svc, pkt))
		return BPFLB_FWD_SNAT;
	/*
	 * SNAT where DSR cannot work: the daemon said so for this backend
	 * (logged), the backend's node is unknown, the header has no room for
	 * the option, or the client is the backend's node itself, whose replies
	 * to its own address never leave it through a device we rewrite on.
	 */
	if ((be->flags & BPFLB_BE_F_NO_DSR) || !be->node_addr || !bpflb_dsr_opt_fits(pkt) ||
	    pkt->saddr == be->node_addr)
		return BPFLB_FWD_SNAT;
	return (cfg->flags & BPFLB_NODE_F_DSR_IPIP) ? BPFLB_FWD_DSR_IPIP : BPFLB_FWD_DSR_OPT;
}

/* First packet of a flow: select, choose the forwarding, create conntrack. */
static __always_inline int bpflb_lb_new_flow(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					     const struct bpflb_node_cfg *cfg,
					     const struct bpflb_svc *svc,
					     const struct bpflb_ct_key *fk)
{
	struct bpflb_flow_event ev;
	struct bpflb_backend *be;
	struct bpflb_ct_key rk;
	struct bpflb_ct_val fv;
	__u32 backend_id = 0;
	__be32 node_addr;
	__u8 fwd;

	/* A lone RST belongs to no flow we know: let the stack ignore it. */
	if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & BPFLB_TCP_RST))
		return BPFLB_LB_NEXT;

	be = BPFLB_LB_SELECT(svc, pkt, cfg, &backend_id);
	if (!be)
		return bpflb_lb_no_backend(skb, pkt, svc);
	fwd = bpflb_lb_choose(cfg, svc, pkt, be);
	node_addr = be->node_addr;

	bpflb_ct_init(&fv, pkt, svc->id, backend_id, be->addr, be->port, fwd);
	if (fwd == BPFLB_FWD_LOCAL) {
		if (bpflb_ct_create(fk, &fv))
			return bpflb_drop(skb, pkt, svc->id, backend_id, BPFLB_DROP_CT_FULL,
					  BPFLB_STAGE_IN_LB);
	} else if (fwd == BPFLB_FWD_SNAT) {
		if (bpflb_snat_alloc(cfg, fk, &fv, pkt))
			return bpflb_drop(skb, pkt, svc->id, backend_id, BPFLB_DROP_SNAT_EXHAUSTED,
					  BPFLB_STAGE_IN_LB);
		if (bpf_map_update_elem(&bpflb_ct, fk, &fv, BPF_ANY)) {
			bpflb_ct_rev_of(fk, &fv, &rk, NULL);
			bpf_map_delete_elem(&bpflb_ct, &rk);
			return bpflb_drop(skb, pkt, svc->id, backend_id, BPFLB_DROP_CT_FULL,
					  BPFLB_STAGE_IN_LB);
		}
	} else {
		/* DSR: the REV half lives on the backend's node. */
		if (bpf_map_update_elem(&bpflb_ct, fk, &fv, BPF_ANY))
			return bpflb_drop(skb, pkt, svc->id, backend_id, BPFLB_DROP_CT_FULL,
					  BPFLB_STAGE_IN_LB);
	}

	bpflb_event_init(&ev, pkt, BPFLB_VERDICT_FORWARDED, BPFLB_STAGE_IN_LB);
	ev.xaddr = fv.addr;
	ev.xport = fv.port;
	ev.svc_id = svc->id;
	ev.backend_id = backend_id;
	ev.fwd = fv.fwd;
	bpflb_event_send(skb, &ev);

	return bpflb_lb_fwd(skb, pkt, cfg, &fv, node_addr);
}

/*
 * A DSR flow dispatched to us whose backend is on this node at an
 * address:port that is also one of our frontends (a host-network backend
 * listening on a node port): it is the backend's traffic, not a new flow;
 * its FIN and RST are followed here.  A SYN without the option on the tuple
 * of a closing DSR flow is not: the client reuses its port to reach the
 * frontend here, a flow of our own.
 */
static __always_inline int bpflb_lb_is_dispatched(const struct bpflb_pkt *pkt)
{
	struct bpflb_ct_key rk = {
	    .saddr = pkt->daddr,
	    .daddr = pkt->saddr,
	    .sport = pkt->dport,
	    .dport = pkt->sport,
	    .proto = pkt->proto,
	    .kind = BPFLB_CT_REV,
	};
	struct bpflb_ct_val *rv = bpf_map_lookup_elem(&bpflb_ct, &rk);

	if (!rv || !bpflb_fwd_is_dsr(rv->fwd) ||
	    (bpflb_tcp_is_syn(pkt) && rv->state == BPFLB_CT_CLOSING))
		return 0;
	if (pkt->tcp_flags & (BPFLB_TCP_FIN | BPFLB_TCP_RST))
		bpflb_ct_touch_dir(&rk, rv, pkt, 0);
	return 1;
}

/* A packet addressed to a frontend. */
static __always_inline int bpflb_lb_service(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					    const struct bpflb_node_cfg *cfg,
					    const struct bpflb_svc *svc)
{
	struct bpflb_backend *be;
	struct bpflb_ct_val *fv;
	struct bpflb_ct_key fk;

	bpflb_ct_key_of(&fk, pkt, BPFLB_CT_FWD);
	fv = bpf_map_lookup_elem(&bpflb_ct, &fk);
	if (!fv) {
		if (bpflb_lb_is_dispatched(pkt))
			return BPFLB_LB_NEXT;
		goto new_flow;
	}

	/* Start over when the tuple is reused after a close, or the entry is unknown. */
	if (bpflb_ct_is_reopen(fv, pkt) || fv->fwd < BPFLB_FWD_LOCAL ||
	    fv->fwd > BPFLB_FWD_DSR_IPIP) {
		bpflb_ct_delete(&fk, fv);
		goto new_flow;
	}

	/* The flow stays with its backend until that is removed or in maintenance. */
	be = bpflb_backend_lookup(fv->backend_id);
	if (!bpflb_backend_usable(be))
		return bpflb_drop(skb, pkt, fv->svc_id, fv->backend_id, BPFLB_DROP_BACKEND_MAINT,
				  BPFLB_STAGE_IN_LB);

	if (bpflb_ct_touch(&fk, fv, pkt) != BPFLB_CT_TOUCH_LOST)
		return bpflb_lb_fwd(skb, pkt, cfg, fv, be->node_addr);
	/*
	 * Our NAT port went to another flow: never send with it.  Start over
	 * (a mid-stream TCP packet then gets a reset from the backend).
	 */
	bpf_map_delete_elem(&bpflb_ct, &fk);
new_flow:
	return bpflb_lb_new_flow(skb, pkt, cfg, svc, &fk);
}

/* Does a socket of this node own the packet's TCP tuple (a connection or a listener)? */
static __always_inline int bpflb_lb_local_tcp_socket(struct __sk_buff *skb,
						     const struct bpflb_pkt *pkt)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;

	t.ipv4.saddr = pkt->saddr;
	t.ipv4.daddr = pkt->daddr;
	t.ipv4.sport = pkt->sport;
	t.ipv4.dport = pkt->dport;
	sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	return 1;
}

/* Ingress packet to the node's SNAT address and port: a reply of a SNATed flow? */
static __always_inline int bpflb_lb_snat_reply(struct __sk_buff *skb, struct bpflb_pkt *pkt)
{
	__u32 bytes = skb->len, svc_id;
	struct bpflb_ct_val *rv;
	struct bpflb_ct_key rk;
	__be32 client, frontend;
	__be16 cport, fport;

	bpflb_ct_key_of(&rk, pkt, BPFLB_CT_REV);
	rv = bpf_map_lookup_elem(&bpflb_ct, &rk);
	/*
	 * No REV half: a lost one (LRU eviction, a flush) cannot be rebuilt from
	 * the backend's side, which does not name the client.  Handed to the
	 * stack, a TCP segment would be answered with a reset that kills the
	 * backend's connection; held back instead, it is retransmitted, and the
	 * client's next segment puts the REV half back (ct.h) or, with both
	 * halves gone, finds the same port again (nat.h).  A node-local socket
	 * on the port (the range may overlap ip_local_port_range) still gets it.
	 */
	if (!rv && pkt->proto == IPPROTO_TCP && !bpflb_lb_local_tcp_socket(skb, pkt))
		return bpflb_drop(skb, pkt, 0, 0, BPFLB_DROP_NAT_NO_MAPPING, BPFLB_STAGE_IN_LB);
	if (!rv || rv->fwd != BPFLB_FWD_SNAT)
		return BPFLB_LB_NEXT;

	/*
	 * A FWD half that points elsewhere: the client went on with another
	 * port, this entry is stale.  Remove it; the node's stack answers the
	 * packet (a reset closes the backend's side of the old connection).
	 */
	if (bpflb_ct_touch(&rk, rv, pkt) == BPFLB_CT_TOUCH_LOST) {
		bpf_map_delete_elem(&bpflb_ct, &rk);
		return BPFLB_LB_NEXT;
	}
	client = rv->addr;
	cport = rv->port;
	frontend = rv->nat_addr;
	fport = rv->nat_port;
	svc_id = rv->svc_id;

	if (bpflb_nat_dst(skb, pkt, client, cport) || bpflb_nat_src(skb, pkt, frontend, fport))
		return bpflb_drop(skb, pkt, svc_id, 0, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_IN_LB);
	bpflb_svc_account(svc_id, bytes, 0);
	bpflb_lb_mark(skb, svc_id, BPFLB_PKT_REPLY);
	bpflb_fib_redirect(skb, pkt, skb->ingress_ifindex);
	return BPFLB_LB_NEXT;
}

/* --- backend node: receiving a DSR flow ---------------------------------------- */

/*
 * The local service of a frontend another node served, for statistics: the
 * same LB or external IP, or the same node port on our own address.
 */
static __always_inline __u32 bpflb_lb_local_svc_id(const struct bpflb_node_cfg *cfg, __be32 addr,
						   __be16 port, __u8 proto)
{
	struct bpflb_svc_key k = {.addr = addr, .port = port, .proto = proto};
	struct bpflb_svc *svc = bpf_map_lookup_elem(&bpflb_svc, &k);

	if (!svc) {
		k.addr = cfg->addr;
		svc = bpf_map_lookup_elem(&bpflb_svc, &k);
	}
	return svc ? svc->id : 0;
}

/* The REV key of a dispatched packet (client -> backend): the reply's tuple. */
static __always_inline void bpflb_lb_dsr_rev_key(struct bpflb_ct_key *rk,
						 const struct bpflb_pkt *pkt)
{
	rk->saddr = pkt->daddr;
	rk->daddr = pkt->saddr;
	rk->sport = pkt->dport;
	rk->dport = pkt->sport;
	rk->proto = pkt->proto;
	rk->kind = BPFLB_CT_REV;
	rk->pad = 0;
}

/* A FIN or RST of the client on a dispatched flow (after the SYN, no option). */
static __always_inline void bpflb_lb_dsr_backend_close(const struct bpflb_pkt *pkt)
{
	struct bpflb_ct_val *rv;
	struct bpflb_ct_key rk;

	bpflb_lb_dsr_rev_key(&rk, pkt);
	rv = bpf_map_lookup_elem(&bpflb_ct, &rk);
	if (!rv || !bpflb_fwd_is_dsr(rv->fwd))
		return;
	bpflb_ct_touch_dir(&rk, rv, pkt, 0);
}

/* What the backend half remembers of a dispatched SYN (its sequence number). */
static __always_inline int bpflb_lb_dsr_syn_seq(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
						__u32 *seq, __u16 *flags)
{
	struct {
		__be32 seq;
		__be32 ack;
		__u8 doff;
	} h;
	__u32 hlen;

	if (bpf_skb_load_bytes(skb, pkt->l4_off + offsetof(struct tcphdr, seq), &h, 9))
		return -1;
	*seq = bpf_ntohl(h.seq);
	hlen = pkt->ihl + (h.doff >> 4) * 4;
	*flags = bpf_ntohs(pkt->tot_len) > hlen ? BPFLB_CT_F_SYN_DATA : 0;
	return 0;
}

/*
 * Does this SYN-ACK of the backend answer the SYN that came by DSR?  Its
 * acknowledgment is that SYN's sequence number + 1, or beyond by the data a
 * TCP Fast Open SYN carried when the backend took it.  Anything else answers
 * another SYN on the same tuple that did not come by DSR.
 */
static __always_inline int bpflb_lb_dsr_synack_ours(struct __sk_buff *skb,
						    const struct bpflb_pkt *pkt,
						    const struct bpflb_ct_val *rv)
{
	__be32 ack;
	__u32 d;

	if (bpf_skb_load_bytes(skb, pkt->l4_off + offsetof(struct tcphdr, ack_seq), &ack,
			       sizeof(ack)))
		return 0;
	d = bpf_ntohl(ack) - rv->syn_seq - 1;
	return d == 0 || ((rv->flags & BPFLB_CT_F_SYN_DATA) && d <= 0xffff);
}

/*
 * A packet another node dispatched to a backend here: with the DSR option,
 * record (or refresh) the flow's REV half and remove the option; without it
 * (the rest of a TCP flow), follow FIN and RST.  It then goes to the backend
 * as the client sent it, apart from the address translation.  A SYN whose
 * sequence number differs from the one recorded starts a new connection on
 * the tuple, whatever state the old one was in.
 */
static __always_inline int bpflb_lb_dsr_backend(struct __sk_buff *skb, struct bpflb_pkt *pkt,
						const struct bpflb_node_cfg *cfg, int via_ipip)
{
	struct bpflb_flow_event ev;
	struct bpflb_dsr_opt opt;
	struct bpflb_ct_val *rv, nv;
	struct bpflb_ct_key rk;
	__u8 fwd = via_ipip ? BPFLB_FWD_DSR_IPIP : BPFLB_FWD_DSR_OPT;
	int syn = bpflb_tcp_is_syn(pkt);
	__u32 svc_id = 0, seq = 0;
	__u16 flags = 0;

	if (bpflb_dsr_opt_get(skb, pkt, &opt)) {
		/* No option: only FIN and RST change what we know of the flow. */
		if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (BPFLB_TCP_FIN | BPFLB_TCP_RST)))
			bpflb_lb_dsr_backend_close(pkt);
		goto out;
	}
	if (bpflb_dsr_opt_pop(skb, pkt, &opt) ||
	    (syn && bpflb_lb_dsr_syn_seq(skb, pkt, &seq, &flags)))
		return bpflb_drop(skb, pkt, 0, 0, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_IN_LB);

	bpflb_lb_dsr_rev_key(&rk, pkt);
	rv = bpf_map_lookup_elem(&bpflb_ct, &rk);
	if (rv && rv->fwd == fwd && rv->nat_addr == opt.addr && rv->nat_port == opt.port &&
	    !bpflb_ct_is_reopen(rv, pkt) && (!syn || rv->syn_seq == seq)) {
		/* A retransmitted SYN, or the next datagram of a UDP flow. */
		svc_id = rv->svc_id;
		bpflb_ct_touch_dir(&rk, rv, pkt, 0);
		goto out;
	}
	/* A new flow, or a tuple the client now uses toward another frontend. */
	svc_id = bpflb_lb_local_svc_id(cfg, opt.addr, opt.port, pkt->proto);
	bpflb_ct_init(&nv, pkt, svc_id, 0, pkt->saddr, pkt->sport, fwd);
	nv.nat_addr = opt.addr;
	nv.nat_port = opt.port;
	nv.syn_seq = seq;
	nv.flags = flags;
	if (bpf_map_update_elem(&bpflb_ct, &rk, &nv, BPF_ANY))
		return bpflb_drop(skb, pkt, svc_id, 0, BPFLB_DROP_CT_FULL, BPFLB_STAGE_IN_LB);

	bpflb_event_init(&ev, pkt, BPFLB_VERDICT_FORWARDED, BPFLB_STAGE_IN_LB);
	ev.xaddr = opt.addr; /* the frontend the replies will come from */
	ev.xport = opt.port;
	ev.svc_id = svc_id;
	ev.fwd = fwd;
	bpflb_event_send(skb, &ev);
out:
	bpflb_lb_mark(skb, svc_id, 0);
	bpflb_fib_redirect(skb, pkt, skb->ingress_ifindex);
	return BPFLB_LB_NEXT;
}

/*
 * A UDP datagram that came neither with the DSR option nor by IP-in-IP: the
 * client talks to the backend directly now, so a DSR half of the tuple must
 * not make the answers look as if they came from a frontend.  (TCP needs no
 * look-up here: the backend's SYN-ACK tells which SYN it answers.)
 */
static __always_inline void bpflb_lb_dsr_direct_udp(const struct bpflb_pkt *pkt)
{
	struct bpflb_ct_val *rv;
	struct bpflb_ct_key rk;

	bpflb_lb_dsr_rev_key(&rk, pkt);
	rv = bpf_map_lookup_elem(&bpflb_ct, &rk);
	if (rv && bpflb_fwd_is_dsr(rv->fwd))
		bpf_map_delete_elem(&bpflb_ct, &rk);
}

/* --- the stages ------------------------------------------------------------------ */

static __always_inline int bpflb_lb_in_process(struct __sk_buff *skb)
{
	struct bpflb_node_cfg *cfg;
	struct bpflb_dsr_opt opt;
	struct bpflb_svc *svc;
	struct bpflb_pkt pkt;
	int rc, via_ipip = 0;
	__u16 dport;

	cfg = bpflb_node_cfg();
	if (!cfg)
		return BPFLB_LB_NEXT;
	rc = bpflb_parse(skb, &pkt);
	if (rc == BPFLB_PARSE_PASS && bpflb_ipip_is_for(skb, cfg->addr)) {
		if (bpflb_ipip_pop(skb)) {
			bpflb_drop_count(BPFLB_DROP_BAD_PACKET);
			return TC_ACT_SHOT;
		}
		via_ipip = 1;
		rc = bpflb_parse(skb, &pkt);
	}
	if (rc != BPFLB_PARSE_OK)
		return BPFLB_LB_NEXT;
	if (via_ipip || !bpflb_dsr_opt_get(skb, &pkt, &opt))
		return bpflb_lb_dsr_backend(skb, &pkt, cfg, via_ipip);

	svc = bpflb_svc_lookup(&pkt);
	if (svc)
		return bpflb_lb_service(skb, &pkt, cfg, svc);

	/* Only the node's SNAT ports can carry replies of SNATed flows. */
	dport = bpf_ntohs(pkt.dport);
	if (pkt.daddr == cfg->addr && dport >= cfg->snat_port_min && dport <= cfg->snat_port_max)
		return bpflb_lb_snat_reply(skb, &pkt);
	if (pkt.proto == IPPROTO_UDP)
		bpflb_lb_dsr_direct_udp(&pkt);
	else if (pkt.tcp_flags & (BPFLB_TCP_FIN | BPFLB_TCP_RST))
		bpflb_lb_dsr_backend_close(&pkt);
	return BPFLB_LB_NEXT;
}

/* IN_LB stage: call from the mode's SEC("tc") ingress program. */
static __always_inline int bpflb_lb_in(struct __sk_buff *skb)
{
	int rc = bpflb_lb_in_process(skb);

	if (rc != BPFLB_LB_NEXT)
		return rc;
	return bpflb_stage_next(skb, BPFLB_STAGE_IN_LB);
}

/*
 * Egress: a reply leaves the node.  From a local backend of a LOCAL flow, or
 * from a backend here of a flow another node dispatched by DSR: either way
 * the source becomes the frontend the client addressed.
 */
static __always_inline int bpflb_lb_out_process(struct __sk_buff *skb)
{
	__u32 bytes = skb->len, svc_id, mtu;
	struct bpflb_ct_val *rv;
	struct bpflb_ct_key rk;
	struct bpflb_pkt pkt;
	__be32 frontend;
	__be16 fport;
	__u8 fwd;

	if (bpflb_parse(skb, &pkt) != BPFLB_PARSE_OK)
		return BPFLB_LB_NEXT;

	bpflb_ct_key_of(&rk, &pkt, BPFLB_CT_REV);
	rv = bpf_map_lookup_elem(&bpflb_ct, &rk);
	if (!rv || (rv->fwd != BPFLB_FWD_LOCAL && !bpflb_fwd_is_dsr(rv->fwd)))
		return BPFLB_LB_NEXT;

	if (bpflb_fwd_is_dsr(rv->fwd) && pkt.proto == IPPROTO_TCP &&
	    (pkt.tcp_flags & (BPFLB_TCP_SYN | BPFLB_TCP_ACK)) == (BPFLB_TCP_SYN | BPFLB_TCP_ACK) &&
	    !bpflb_lb_dsr_synack_ours(skb, &pkt, rv)) {
		/* The backend accepted a connection that did not come by DSR. */
		bpf_map_delete_elem(&bpflb_ct, &rk);
		return BPFLB_LB_NEXT;
	}
	bpflb_ct_touch_dir(&rk, rv, &pkt, 1);
	frontend = rv->nat_addr;
	fport = rv->nat_port;
	svc_id = rv->svc_id;
	fwd = rv->fwd;
	/*
	 * The client's segments of an IP-in-IP flow carry 20 bytes more than
	 * the backend's MSS allows for: the SYN-ACK tells it less.
	 */
	if (fwd == BPFLB_FWD_DSR_IPIP && pkt.proto == IPPROTO_TCP &&
	    (pkt.tcp_flags & (BPFLB_TCP_SYN | BPFLB_TCP_ACK)) == (BPFLB_TCP_SYN | BPFLB_TCP_ACK)) {
		mtu = bpflb_dev_mtu_get(skb->ifindex);
		if (bpflb_tcp_clamp_mss(skb, &pkt,
					mtu - BPFLB_IPIP_HLEN - sizeof(struct iphdr) -
					    sizeof(struct tcphdr)) < 0)
			return bpflb_drop(skb, &pkt, svc_id, 0, BPFLB_DROP_BAD_PACKET,
					  BPFLB_STAGE_OUT_LB);
	}
	if (bpflb_nat_src(skb, &pkt, frontend, fport))
		return bpflb_drop(skb, &pkt, svc_id, 0, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_OUT_LB);
	if (svc_id)
		bpflb_svc_account(svc_id, bytes, 0);
	bpflb_lb_mark(skb, svc_id, BPFLB_PKT_REPLY);
	return BPFLB_LB_NEXT;
}

/* OUT_LB stage: call from the mode's SEC("tc") egress program. */
static __always_inline int bpflb_lb_out(struct __sk_buff *skb)
{
	int rc = bpflb_lb_out_process(skb);

	if (rc != BPFLB_LB_NEXT)
		return rc;
	return bpflb_stage_next(skb, BPFLB_STAGE_OUT_LB);
}

#endif
