// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Network policy datapath (CiliumClusterwideNetworkPolicy semantics).
 *
 *   policy_in  (BPFLB_STAGE_IN_POLICY, tc ingress of the node's devices)
 *       a packet to a subject on this node: the host (one of its addresses) or
 *       a local workload.  Runs after the LB stage, so a service packet is
 *       judged on its translated backend; an LB reply (BPFLB_PKT_REPLY) is not
 *       judged again.
 *   policy_out (BPFLB_STAGE_OUT_POLICY, tc egress, before the LB's reverse NAT)
 *       a packet from a subject on this node.  A host-sourced packet of a
 *       load-balanced flow (SNATed to a remote backend, or an LB reply leaving
 *       again) is not the host's own traffic and is not judged.
 *
 * For such a packet:
 *   1. bpflb_pol_ct knows the reversed tuple: a reply of a flow that passed ->
 *      pass (replies are never judged, as Cilium's conntrack does).
 *   2. the subject is not selected in this direction -> pass (tracked).
 *   3. peer address -> identity (LPM), (rule set, identity, proto, port) ->
 *      verdict (LPM, merged in userspace so one lookup is the answer); no entry:
 *      the subject's default (deny once selected).
 *   4. allow -> pass, tracked; deny -> drop (DROPPED event, reason policy,
 *      bpflb_drops); audited deny -> pass, tracked, AUDIT event once per flow.
 * Forward packets of known flows are judged every time, so a new policy
 * applies to established connections at once; only replies ride on conntrack.
 *
 * Only IPv4 TCP, UDP and ICMP are judged.  ICMP errors (unreachable, time
 * exceeded, parameter problem) pass as related traffic; echo is tracked by its
 * identifier.  Other protocols (IP-in-IP of DSR, GRE, ...), non-first
 * fragments and IPv6 pass untouched.
 */
#include <bpflb/pipeline.h>
#include <bpflb/parse.h>
#include <bpflb/lb_maps.h>
#include <bpflb/events.h>

#include "policy_maps.h"

#define POL_NEXT (-1)

/* The ICMP header's first 8 bytes (linux/icmp.h drags libc headers in). */
struct pol_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 sequence;
};

#define POL_ICMP_ECHOREPLY     0
#define POL_ICMP_DEST_UNREACH  3
#define POL_ICMP_SOURCE_QUENCH 4
#define POL_ICMP_REDIRECT      5
#define POL_ICMP_ECHO	       8
#define POL_ICMP_TIME_EXCEEDED 11
#define POL_ICMP_PARAMETERPROB 12
#define POL_REFRESH_NS	       1000000000ull

enum {
	POL_PARSE_OK = 0,
	POL_PARSE_PASS = 1, /* not judged */
};

/* ICMP: echo carries its identifier in both ports; errors are related traffic. */
static __always_inline int pol_parse_icmp(struct __sk_buff *skb, struct bpflb_pkt *pkt)
{
	void *data, *data_end;
	struct pol_icmphdr *ic;
	struct iphdr *ip;
	__u32 ihl;

	if (bpflb_ensure_linear(skb, sizeof(struct ethhdr) + sizeof(*ip)))
		return POL_PARSE_PASS;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > data_end)
		return POL_PARSE_PASS;
	if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_ICMP ||
	    (ip->frag_off & bpf_htons(BPFLB_IP_OFFMASK)))
		return POL_PARSE_PASS;
	ihl = ip->ihl * 4;
	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->proto = IPPROTO_ICMP;
	pkt->l3_off = sizeof(struct ethhdr);
	pkt->l4_off = sizeof(struct ethhdr) + ihl;
	pkt->tcp_flags = 0;
	if (bpflb_ensure_linear(skb, pkt->l4_off + sizeof(*ic)))
		return POL_PARSE_PASS;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ic = data + (pkt->l4_off & 0xff);
	if ((void *)(ic + 1) > data_end)
		return POL_PARSE_PASS;
	switch (ic->type) {
	case POL_ICMP_ECHO:
	case POL_ICMP_ECHOREPLY:
		pkt->sport = ic->id;
		pkt->dport = ic->id;
		return POL_PARSE_OK;
	case POL_ICMP_DEST_UNREACH:
	case POL_ICMP_SOURCE_QUENCH:
	case POL_ICMP_REDIRECT:
	case POL_ICMP_TIME_EXCEEDED:
	case POL_ICMP_PARAMETERPROB:
		return POL_PARSE_PASS;
	default:
		pkt->sport = 0;
		pkt->dport = 0;
		return POL_PARSE_OK;
	}
}

static __always_inline int pol_parse(struct __sk_buff *skb, struct bpflb_pkt *pkt)
{
	int rc = bpflb_parse(skb, pkt);

	if (rc == BPFLB_PARSE_OK)
		return POL_PARSE_OK;
	if (rc == BPFLB_PARSE_PASS && skb->protocol == bpf_htons(ETH_P_IP))
		return pol_parse_icmp(skb, pkt);
	return POL_PARSE_PASS;
}

static __always_inline void pol_ct_key_of(struct pol_ct_key *k, const struct bpflb_pkt *pkt,
					  int reversed)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->proto = pkt->proto;
	if (reversed) {
		k->saddr = pkt->daddr;
		k->daddr = pkt->saddr;
		k->sport = pkt->dport;
		k->dport = pkt->sport;
	} else {
		k->saddr = pkt->saddr;
		k->daddr = pkt->daddr;
		k->sport = pkt->sport;
		k->dport = pkt->dport;
	}
}

static __always_inline int pol_ct_expired(const struct pol_cfg *cfg, const struct pol_ct_val *v,
					  __u8 proto, __u64 now)
{
	__u64 timeout = cfg->other_timeout_ns;

	if (proto == IPPROTO_TCP) {
		if (v->flags & POL_CT_F_CLOSING)
			timeout = cfg->tcp_close_timeout_ns;
		else if (v->flags & POL_CT_F_REPLIED)
			timeout = cfg->tcp_timeout_ns;
		else
			timeout = cfg->tcp_syn_timeout_ns;
	}
	return now - v->last_seen > timeout;
}

static __always_inline __u8 pol_ct_flags(__u8 flags, const struct bpflb_pkt *pkt)
{
	if (pkt->proto == IPPROTO_TCP) {
		if (pkt->tcp_flags & (BPFLB_TCP_FIN | BPFLB_TCP_RST))
			flags |= POL_CT_F_CLOSING;
		else if (bpflb_tcp_is_syn(pkt))
			flags &= ~(POL_CT_F_CLOSING | POL_CT_F_REPLIED); /* port reuse */
	}
	return flags;
}

/*
 * A host-sourced packet at egress that belongs to a load-balanced flow: the
 * LB's conntrack holds the reversed tuple, as the REV entry of a flow SNATed
 * to a remote backend (node:nat port -> backend) or as the FWD entry of a flow
 * whose reply the LB translated back (frontend -> client).
 */
static __always_inline int pol_lb_flow(const struct bpflb_pkt *pkt)
{
	struct bpflb_ct_key k = {
	    .saddr = pkt->daddr,
	    .daddr = pkt->saddr,
	    .sport = pkt->dport,
	    .dport = pkt->sport,
	    .proto = pkt->proto,
	    .kind = BPFLB_CT_REV,
	};

	if (pkt->proto == IPPROTO_ICMP)
		return 0;
	if (bpf_map_lookup_elem(&bpflb_ct, &k))
		return 1;
	k.kind = BPFLB_CT_FWD;
	return bpf_map_lookup_elem(&bpflb_ct, &k) != NULL;
}

static __always_inline struct pol_counters *pol_counters(int dir)
{
	__u32 key = dir;

	return bpf_map_lookup_elem(&bpflb_pol_cnt, &key);
}

static __always_inline void pol_rule_count(__u32 rule_id, int what)
{
	struct pol_rule_stats *st, zero = {};

	if (!rule_id)
		return;
	st = bpf_map_lookup_elem(&bpflb_pol_rstat, &rule_id);
	if (!st) {
		bpf_map_update_elem(&bpflb_pol_rstat, &rule_id, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&bpflb_pol_rstat, &rule_id);
		if (!st)
			return;
	}
	if (what == POL_ACT_ALLOW)
		st->allowed++;
	else if (what == POL_ACT_DENY)
		st->denied++;
	else
		st->audit++;
}

static __always_inline void pol_event(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
				      __u8 verdict, __u32 rule_id, __u8 stage)
{
	struct bpflb_flow_event ev;

	bpflb_event_init(&ev, pkt, verdict, stage);
	ev.reason = BPFLB_DROP_POLICY;
	ev.rule_id = rule_id;
	if (skb->cb[BPFLB_CB_FLAGS] & BPFLB_PKT_LB_DONE)
		ev.svc_id = skb->cb[BPFLB_CB_SVC];
	bpflb_event_send(skb, &ev);
}

/* Record or refresh the flow of a forward packet that passes. */
static __always_inline void pol_ct_pass(const struct pol_ct_key *k, struct pol_ct_val *v,
					const struct bpflb_pkt *pkt, __u8 verdict, __u32 rule_id,
					int dir, __u64 now)
{
	struct pol_ct_val nv = {};
	__u8 flags;

	if (v) {
		flags = pol_ct_flags(v->flags, pkt);
		if (flags == v->flags && v->verdict == verdict && v->rule_id == rule_id &&
		    now - v->last_seen < POL_REFRESH_NS)
			return;
		v->flags = flags;
		v->verdict = verdict;
		v->rule_id = rule_id;
		v->last_seen = now;
		return;
	}
	/* A lone RST starts nothing. */
	if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & BPFLB_TCP_RST))
		return;
	nv.last_seen = now;
	nv.rule_id = rule_id;
	nv.flags = pol_ct_flags(0, pkt);
	nv.verdict = verdict;
	nv.dir = dir;
	bpf_map_update_elem(&bpflb_pol_ct, k, &nv, BPF_ANY);
}

static __always_inline int pol_process(struct __sk_buff *skb, const int dir)
{
	const __u8 stage = dir == POL_DIR_IN ? BPFLB_STAGE_IN_POLICY : BPFLB_STAGE_OUT_POLICY;
	struct pol_ct_val *cv, *rv;
	struct pol_counters *cnt;
	struct pol_verdict *pv;
	struct pol_ct_key ck, rk;
	struct pol_ident_key ik;
	struct pol_rule_key key;
	struct pol_subj_key sk;
	struct bpflb_pkt pkt;
	struct pol_subj *subj;
	struct pol_cfg *cfg;
	__u8 action, audit;
	__u32 zero = 0, set, rule_id, *peer;
	__u64 now;

	if (pol_parse(skb, &pkt) != POL_PARSE_OK)
		return POL_NEXT;
	if (dir == POL_DIR_IN && (skb->cb[BPFLB_CB_FLAGS] & BPFLB_PKT_REPLY))
		return POL_NEXT;
	cfg = bpf_map_lookup_elem(&bpflb_pol_cfg, &zero);
	if (!cfg)
		return POL_NEXT;
	sk.gen = cfg->gen;
	sk.addr = dir == POL_DIR_IN ? pkt.daddr : pkt.saddr;
	subj = bpf_map_lookup_elem(&bpflb_pol_subj, &sk);
	if (!subj)
		return POL_NEXT;
	if (dir == POL_DIR_OUT && subj->kind == POL_SUBJ_HOST && pol_lb_flow(&pkt))
		return POL_NEXT;
	cnt = pol_counters(dir);
	now = bpf_ktime_get_ns();

	pol_ct_key_of(&ck, &pkt, 0);
	cv = bpf_map_lookup_elem(&bpflb_pol_ct, &ck);
	if (cv && pol_ct_expired(cfg, cv, pkt.proto, now))
		cv = NULL;
	if (!cv) {
		pol_ct_key_of(&rk, &pkt, 1);
		rv = bpf_map_lookup_elem(&bpflb_pol_ct, &rk);
		if (rv && !pol_ct_expired(cfg, rv, pkt.proto, now)) {
			__u8 flags = pol_ct_flags(rv->flags, &pkt) | POL_CT_F_REPLIED;

			if (flags != rv->flags || now - rv->last_seen >= POL_REFRESH_NS) {
				rv->flags = flags;
				rv->last_seen = now;
			}
			if (cnt)
				cnt->reply++;
			return POL_NEXT;
		}
	}

	if (dir == POL_DIR_IN) {
		set = subj->set[POL_DIR_IN];
		action = subj->def[POL_DIR_IN];
		audit = subj->def_audit[POL_DIR_IN];
		rule_id = subj->def_rule[POL_DIR_IN];
	} else {
		set = subj->set[POL_DIR_OUT];
		action = subj->def[POL_DIR_OUT];
		audit = subj->def_audit[POL_DIR_OUT];
		rule_id = subj->def_rule[POL_DIR_OUT];
	}
	if (!set) {
		if (cnt)
			cnt->unselected++;
		pol_ct_pass(&ck, cv, &pkt, POL_CTV_ALLOWED, 0, dir, now);
		return POL_NEXT;
	}

	ik.prefixlen = 64;
	ik.gen = cfg->gen;
	ik.addr = dir == POL_DIR_IN ? pkt.saddr : pkt.daddr;
	peer = bpf_map_lookup_elem(&bpflb_pol_ident, &ik);

	__builtin_memset(&key, 0, sizeof(key));
	key.prefixlen = POL_PLEN_PORT(16);
	key.gen = cfg->gen;
	key.set = set;
	key.peer = peer ? *peer : 0;
	key.proto = pkt.proto;
	if (pkt.proto != IPPROTO_ICMP) {
		key.dport[0] = ((__u8 *)&pkt.dport)[0];
		key.dport[1] = ((__u8 *)&pkt.dport)[1];
	}
	pv = bpf_map_lookup_elem(&bpflb_pol_rules, &key);
	if (pv) {
		action = pv->action;
		audit = pv->audit;
		rule_id = pv->rule_id;
	}

	if (action != POL_ACT_DENY) {
		if (cnt)
			cnt->allowed++;
		pol_rule_count(rule_id, POL_ACT_ALLOW);
		pol_ct_pass(&ck, cv, &pkt, POL_CTV_ALLOWED, rule_id, dir, now);
		return POL_NEXT;
	}
	if (audit) {
		if (cnt)
			cnt->audit++;
		pol_rule_count(rule_id, 0);
		/* One event per flow (and per change of the deciding rule). */
		if (!cv || cv->verdict != POL_CTV_AUDIT || cv->rule_id != rule_id)
			pol_event(skb, &pkt, BPFLB_VERDICT_AUDIT, rule_id, stage);
		pol_ct_pass(&ck, cv, &pkt, POL_CTV_AUDIT, rule_id, dir, now);
		return POL_NEXT;
	}
	if (cnt)
		cnt->denied++;
	pol_rule_count(rule_id, POL_ACT_DENY);
	/* A flow allowed before this policy loses its replies too. */
	if (cv)
		bpf_map_delete_elem(&bpflb_pol_ct, &ck);
	bpflb_drop_count(BPFLB_DROP_POLICY);
	pol_event(skb, &pkt, BPFLB_VERDICT_DROPPED, rule_id, stage);
	return TC_ACT_SHOT;
}

SEC("tc")
int policy_in(struct __sk_buff *skb)
{
	int rc = pol_process(skb, POL_DIR_IN);

	if (rc != POL_NEXT)
		return rc;
	return bpflb_stage_next(skb, BPFLB_STAGE_IN_POLICY);
}

SEC("tc")
int policy_out(struct __sk_buff *skb)
{
	int rc = pol_process(skb, POL_DIR_OUT);

	if (rc != POL_NEXT)
		return rc;
	return bpflb_stage_next(skb, BPFLB_STAGE_OUT_POLICY);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
