// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * SNAT mode, kube-proxy semantics: a service packet is DNATed to its backend;
 * when the backend runs on another node the source is also translated to the
 * node's address, so the reply comes back through this node, which restores
 * the client and the frontend.
 *
 *   snat_in  (BPFLB_STAGE_IN_LB, tc ingress of the node's devices)
 *     client -> frontend         new flow: select a backend, create conntrack;
 *                                known flow: reuse the recorded backend and NAT;
 *                                DNAT (+ SNAT for a remote backend), route
 *     backend -> node:nat port   reply of a SNATed flow: back to client, source
 *                                = frontend, route
 *   snat_out (BPFLB_STAGE_OUT_LB, tc egress)
 *     local backend -> client    reply of a local flow: source = frontend
 *
 * Everything else goes on to the next stage untouched.
 */
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

/* "Go on with the next stage": no tc verdict is negative. */
#define SNAT_NEXT (-1)

static __always_inline void snat_mark(struct __sk_buff *skb, __u32 svc_id, __u32 flags)
{
	skb->cb[BPFLB_CB_FLAGS] |= BPFLB_PKT_LB_DONE | flags;
	skb->cb[BPFLB_CB_SVC] = svc_id;
}

/*
 * Translate a client packet as the flow's FWD entry says, count it, and route
 * it toward the backend.  fv points to the map entry or a copy of it.
 */
static __always_inline int snat_fwd(struct __sk_buff *skb, struct bpflb_pkt *pkt,
				    const struct bpflb_ct_val *fv)
{
	__u32 bytes = skb->len, svc_id = fv->svc_id;

	if (fv->fwd == BPFLB_FWD_SNAT && bpflb_nat_src(skb, pkt, fv->nat_addr, fv->nat_port))
		return bpflb_drop(skb, pkt, svc_id, fv->backend_id, BPFLB_DROP_BAD_PACKET,
				  BPFLB_STAGE_IN_LB);
	if (bpflb_nat_dst(skb, pkt, fv->addr, fv->port))
		return bpflb_drop(skb, pkt, svc_id, fv->backend_id, BPFLB_DROP_BAD_PACKET,
				  BPFLB_STAGE_IN_LB);
	bpflb_svc_account(svc_id, bytes, 0);
	snat_mark(skb, svc_id, 0);
	bpflb_fib_redirect(skb, pkt, skb->ingress_ifindex);
	return SNAT_NEXT;
}

/* A service without a usable backend for this packet. */
static __always_inline int snat_no_backend(struct __sk_buff *skb, struct bpflb_pkt *pkt,
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

/* First packet of a flow: select, claim the NAT port, create the pair. */
static __always_inline int snat_new_flow(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					 const struct bpflb_node_cfg *cfg,
					 const struct bpflb_svc *svc, const struct bpflb_ct_key *fk)
{
	struct bpflb_flow_event ev;
	struct bpflb_backend *be;
	struct bpflb_ct_key rk;
	struct bpflb_ct_val fv;
	__u32 backend_id = 0;

	/* A lone RST belongs to no flow we know: let the stack ignore it. */
	if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & BPFLB_TCP_RST))
		return SNAT_NEXT;

	be = bpflb_select(svc, pkt, cfg, &backend_id);
	if (!be)
		return snat_no_backend(skb, pkt, svc);

	bpflb_ct_init(&fv, pkt, svc->id, backend_id, be->addr, be->port, BPFLB_FWD_LOCAL);
	if (be->flags & BPFLB_BE_F_LOCAL) {
		if (bpflb_ct_create(fk, &fv))
			return bpflb_drop(skb, pkt, svc->id, backend_id, BPFLB_DROP_CT_FULL,
					  BPFLB_STAGE_IN_LB);
	} else {
		if (bpflb_snat_alloc(cfg, fk, &fv))
			return bpflb_drop(skb, pkt, svc->id, backend_id,
					  BPFLB_DROP_SNAT_EXHAUSTED, BPFLB_STAGE_IN_LB);
		if (bpf_map_update_elem(&bpflb_ct, fk, &fv, BPF_ANY)) {
			bpflb_ct_rev_of(fk, &fv, &rk, NULL);
			bpf_map_delete_elem(&bpflb_ct, &rk);
			return bpflb_drop(skb, pkt, svc->id, backend_id, BPFLB_DROP_CT_FULL,
					  BPFLB_STAGE_IN_LB);
		}
	}

	bpflb_event_init(&ev, pkt, BPFLB_VERDICT_FORWARDED, BPFLB_STAGE_IN_LB);
	ev.xaddr = fv.addr;
	ev.xport = fv.port;
	ev.svc_id = svc->id;
	ev.backend_id = backend_id;
	ev.fwd = fv.fwd;
	bpflb_event_send(skb, &ev);

	return snat_fwd(skb, pkt, &fv);
}

/* A packet addressed to a frontend. */
static __always_inline int snat_service(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					const struct bpflb_node_cfg *cfg,
					const struct bpflb_svc *svc)
{
	struct bpflb_backend *be;
	struct bpflb_ct_val *fv;
	struct bpflb_ct_key fk;

	bpflb_ct_key_of(&fk, pkt, BPFLB_CT_FWD);
	fv = bpf_map_lookup_elem(&bpflb_ct, &fk);
	if (!fv)
		goto new_flow;

	/*
	 * Start over when the tuple is reused after a close, or when the flow was
	 * recorded by a mode this one cannot continue (a DSR flow after a switch
	 * to SNAT): balancing it again is what kube-proxy does after conntrack
	 * loss, and Maglev services usually land on the same backend.
	 */
	if (bpflb_ct_is_reopen(fv, pkt) ||
	    (fv->fwd != BPFLB_FWD_LOCAL && fv->fwd != BPFLB_FWD_SNAT)) {
		bpflb_ct_delete(&fk, fv);
		goto new_flow;
	}

	/* The flow stays with its backend until that is removed or in maintenance. */
	be = bpflb_backend_lookup(fv->backend_id);
	if (!bpflb_backend_usable(be))
		return bpflb_drop(skb, pkt, fv->svc_id, fv->backend_id, BPFLB_DROP_BACKEND_MAINT,
				  BPFLB_STAGE_IN_LB);

	if (bpflb_ct_touch(&fk, fv, pkt) != BPFLB_CT_TOUCH_LOST)
		return snat_fwd(skb, pkt, fv);
	/* Our NAT port went to another flow: this one could not get replies. */
	bpf_map_delete_elem(&bpflb_ct, &fk);
new_flow:
	return snat_new_flow(skb, pkt, cfg, svc, &fk);
}

/* Ingress packet to the node's SNAT address and port: a reply of a SNATed flow? */
static __always_inline int snat_reply_in(struct __sk_buff *skb, struct bpflb_pkt *pkt)
{
	__u32 bytes = skb->len, svc_id;
	struct bpflb_ct_val *rv;
	struct bpflb_ct_key rk;
	__be32 client, frontend;
	__be16 cport, fport;

	bpflb_ct_key_of(&rk, pkt, BPFLB_CT_REV);
	rv = bpf_map_lookup_elem(&bpflb_ct, &rk);
	if (!rv || rv->fwd != BPFLB_FWD_SNAT)
		return SNAT_NEXT;

	/* A lost partner only matters to the forward direction. */
	bpflb_ct_touch(&rk, rv, pkt);
	client = rv->addr;
	cport = rv->port;
	frontend = rv->nat_addr;
	fport = rv->nat_port;
	svc_id = rv->svc_id;

	if (bpflb_nat_dst(skb, pkt, client, cport) || bpflb_nat_src(skb, pkt, frontend, fport))
		return bpflb_drop(skb, pkt, svc_id, 0, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_IN_LB);
	bpflb_svc_account(svc_id, bytes, 0);
	snat_mark(skb, svc_id, BPFLB_PKT_REPLY);
	bpflb_fib_redirect(skb, pkt, skb->ingress_ifindex);
	return SNAT_NEXT;
}

static __always_inline int snat_in_process(struct __sk_buff *skb)
{
	struct bpflb_node_cfg *cfg;
	struct bpflb_svc *svc;
	struct bpflb_pkt pkt;
	__u16 dport;

	if (bpflb_parse(skb, &pkt) != BPFLB_PARSE_OK)
		return SNAT_NEXT;
	cfg = bpflb_node_cfg();
	if (!cfg)
		return SNAT_NEXT;

	svc = bpflb_svc_lookup(&pkt);
	if (svc)
		return snat_service(skb, &pkt, cfg, svc);

	/* Only the node's SNAT ports can carry replies of SNATed flows. */
	dport = bpf_ntohs(pkt.dport);
	if (pkt.daddr == cfg->addr && dport >= cfg->snat_port_min && dport <= cfg->snat_port_max)
		return snat_reply_in(skb, &pkt);
	return SNAT_NEXT;
}

SEC("tc")
int snat_in(struct __sk_buff *skb)
{
	int rc = snat_in_process(skb);

	if (rc != SNAT_NEXT)
		return rc;
	return bpflb_stage_next(skb, BPFLB_STAGE_IN_LB);
}

/* Egress: the reply of a flow balanced to a local backend leaves the node. */
static __always_inline int snat_out_process(struct __sk_buff *skb)
{
	__u32 bytes = skb->len, svc_id;
	struct bpflb_ct_val *rv;
	struct bpflb_ct_key rk;
	struct bpflb_pkt pkt;
	__be32 frontend;
	__be16 fport;

	if (bpflb_parse(skb, &pkt) != BPFLB_PARSE_OK)
		return SNAT_NEXT;

	bpflb_ct_key_of(&rk, &pkt, BPFLB_CT_REV);
	rv = bpf_map_lookup_elem(&bpflb_ct, &rk);
	if (!rv || rv->fwd != BPFLB_FWD_LOCAL)
		return SNAT_NEXT;

	bpflb_ct_touch(&rk, rv, &pkt);
	frontend = rv->nat_addr;
	fport = rv->nat_port;
	svc_id = rv->svc_id;
	if (bpflb_nat_src(skb, &pkt, frontend, fport))
		return bpflb_drop(skb, &pkt, svc_id, 0, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_OUT_LB);
	bpflb_svc_account(svc_id, bytes, 0);
	snat_mark(skb, svc_id, BPFLB_PKT_REPLY);
	return SNAT_NEXT;
}

SEC("tc")
int snat_out(struct __sk_buff *skb)
{
	int rc = snat_out_process(skb);

	if (rc != SNAT_NEXT)
		return rc;
	return bpflb_stage_next(skb, BPFLB_STAGE_OUT_LB);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
