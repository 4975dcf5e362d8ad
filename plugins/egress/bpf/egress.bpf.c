// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Egress gateway datapath.
 *
 *   egress_out (BPFLB_STAGE_OUT_EGRESS, tc egress of the node's devices)
 *     A workload packet leaves the node: pod packets reach the device through
 *     the stack (routed from the pod's veth), so this is the first hook that
 *     sees them.  Selected source + matching destination:
 *       no healthy gateway      drop, BPFLB_DROP_NO_GATEWAY
 *       this node is gateway    SNAT to the egress IP here (egress_snat)
 *       another node            IP-in-IP to that node (outer: node -> gateway,
 *                               with the option of egress.h), next-hop MACs
 *                               from the FIB; too big for the tunnel: drop,
 *                               and ICMP "fragmentation needed" when DF is set
 *   egress_in (BPFLB_STAGE_IN_EGRESS, tc ingress)
 *     Our tunnel from a cluster node to this node, inner packet selected by a
 *     policy whose egress IP this node serves: decapsulate, SNAT to the egress
 *     IP with a port of ours (conntrack egress_ct), route to the destination.
 *     A reply to an egress IP this node serves: translate back to the workload
 *     and route it to the pod (its node routes the pod CIDR natively).
 *
 * Everything else goes on to the next stage untouched.  The steering decision
 * is made on addresses only (any protocol, fragments too), so nothing selected
 * ever leaves with the workload's own address; the gateway translates TCP, UDP
 * and ICMP echo and drops what it cannot translate.
 */
#include <bpflb/pipeline.h>
#include <bpflb/parse.h>
#include <bpflb/csum.h>
#include <bpflb/lb_maps.h>
#include <bpflb/ct.h>
#include <bpflb/events.h>
#include <bpflb/fib.h>
#include <bpflb/hash.h>

#include "egress_maps.h"

/* "Go on with the next stage": no tc verdict is negative. */
#define EGRESS_NEXT (-1)

#define EGRESS_IP_DF	      0x4000
#define EGRESS_ICMP_ECHOREPLY 0
#define EGRESS_ICMP_ECHO      8
#define EGRESS_TCPOPT_MSS     2

/* SNAT ports tried before a flow is dropped as BPFLB_DROP_SNAT_EXHAUSTED. */
#define EGRESS_PORT_TRIES	 16
#define EGRESS_PORT_LINEAR_TRIES 8

/* Seed of the hashed start port: any constant, ports are local to the gateway. */
#define EGRESS_PORT_SEED 0x6567776bu

/* --- lookups --------------------------------------------------------------- */

static __always_inline struct egress_cfg *egress_cfg_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&egress_cfg, &zero);
}

/* Index of the lowest set bit of a non-zero mask (no ctz instruction in BPF). */
static __always_inline __u32 egress_lowest_bit(__u64 m)
{
	__u32 n = 0;

	if (!(m & 0xffffffffull)) {
		n += 32;
		m >>= 32;
	}
	if (!(m & 0xffff)) {
		n += 16;
		m >>= 16;
	}
	if (!(m & 0xff)) {
		n += 8;
		m >>= 8;
	}
	if (!(m & 0xf)) {
		n += 4;
		m >>= 4;
	}
	if (!(m & 0x3)) {
		n += 2;
		m >>= 2;
	}
	if (!(m & 0x1))
		n += 1;
	return n;
}

/* Index of the policy that steers saddr -> daddr, -1 when none does. */
static __always_inline int egress_match(__be32 saddr, __be32 daddr)
{
	struct egress_lpm_key k = {.prefixlen = 32, .addr = saddr};
	__u64 *src, *dst, m;

	src = bpf_map_lookup_elem(&egress_src, &k);
	if (!src || !*src)
		return -1;
	k.addr = daddr;
	dst = bpf_map_lookup_elem(&egress_dst, &k);
	if (!dst)
		return -1;
	m = *src & *dst;
	if (!m)
		return -1;
	return egress_lowest_bit(m);
}

static __always_inline struct egress_policy_val *egress_policy(__u32 idx)
{
	return bpf_map_lookup_elem(&egress_policies, &idx);
}

static __always_inline int egress_ip_active(__be32 ip)
{
	struct egress_ip_val *v = bpf_map_lookup_elem(&egress_ips, &ip);

	return v && (v->flags & EGRESS_IP_F_ACTIVE);
}

/* --- counters and events ---------------------------------------------------- */

enum egress_counter {
	EGRESS_CNT_STEERED,
	EGRESS_CNT_SNAT,
	EGRESS_CNT_REPLY,
	EGRESS_CNT_DROP,
};

static __always_inline void egress_count(__u32 idx, enum egress_counter c, __u32 bytes)
{
	struct egress_stats *st = bpf_map_lookup_elem(&egress_stats, &idx);

	if (!st)
		return;
	switch (c) {
	case EGRESS_CNT_STEERED:
		st->steered_packets++;
		st->steered_bytes += bytes;
		break;
	case EGRESS_CNT_SNAT:
		st->snat_packets++;
		st->snat_bytes += bytes;
		break;
	case EGRESS_CNT_REPLY:
		st->reply_packets++;
		st->reply_bytes += bytes;
		break;
	default:
		st->drop_packets++;
		st->drop_bytes += bytes;
		break;
	}
}

/*
 * Flow events of this plugin carry stage BPFLB_STAGE_OUT_EGRESS (the
 * workload's node) or BPFLB_STAGE_IN_EGRESS (the gateway), no service and no
 * backend; xaddr is the gateway node a flow is tunnelled to, or the egress
 * IP:port it is translated to.  Per-policy numbers are in egress_stats.
 */

/* Drop a packet of policy idx: counted by reason (bpflb_drops) and by policy, reported. */
static __always_inline int egress_drop(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
				       __u32 idx, __u8 reason, __u8 stage)
{
	egress_count(idx, EGRESS_CNT_DROP, skb->len);
	return bpflb_drop(skb, pkt, 0, 0, reason, stage);
}

/* A translation or steering decision, reported once per flow. */
static __always_inline void egress_event(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					 __be32 xaddr, __be16 xport, __u8 stage)
{
	struct bpflb_flow_event ev;

	bpflb_event_init(&ev, pkt, BPFLB_VERDICT_FORWARDED, stage);
	ev.xaddr = xaddr;
	ev.xport = xport;
	bpflb_event_send(skb, &ev);
}

/* --- parsing ------------------------------------------------------------------ */

/*
 * IPv4 addresses and header facts of any IPv4 packet (any protocol, any
 * fragment): the steering decision needs nothing more.  pkt->sport/dport are
 * zero; l4_off is set.  Returns 0, or -1 for what is not IPv4 or malformed.
 */
static __always_inline int egress_parse_l3(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					   __be16 *frag_off)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return -1;
	if (bpflb_ensure_linear(skb, sizeof(*eth) + sizeof(*ip)))
		return -1;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > data_end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl < 5)
		return -1;
	__builtin_memset(pkt, 0, sizeof(*pkt));
	pkt->l3_off = sizeof(*eth);
	pkt->ihl = ip->ihl * 4;
	pkt->l4_off = sizeof(*eth) + pkt->ihl;
	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->proto = ip->protocol;
	pkt->tos = ip->tos;
	pkt->ttl = ip->ttl;
	pkt->tot_len = ip->tot_len;
	*frag_off = ip->frag_off;
	return 0;
}

struct egress_icmp_echo {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 seq;
};

/*
 * TCP and UDP as bpflb_parse() sees them, plus ICMP echo: the identifier
 * stands for the port of the side that chose it (sport of a request, dport of
 * a reply), so conntrack and port allocation treat all three alike.
 */
static __always_inline int egress_parse_l4(struct __sk_buff *skb, struct bpflb_pkt *pkt)
{
	struct egress_icmp_echo *ic;
	void *data, *data_end;
	__be16 frag_off;
	int rc;

	rc = bpflb_parse(skb, pkt);
	if (rc != BPFLB_PARSE_PASS)
		return rc;
	if (egress_parse_l3(skb, pkt, &frag_off) || pkt->proto != IPPROTO_ICMP)
		return BPFLB_PARSE_PASS;
	if (frag_off & bpf_htons(BPFLB_IP_MF | BPFLB_IP_OFFMASK))
		return BPFLB_PARSE_PASS;
	if (bpflb_ensure_linear(skb, pkt->l4_off + sizeof(*ic)))
		return BPFLB_PARSE_BAD;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ic = data + (pkt->l4_off & 0xff);
	if ((void *)(ic + 1) > data_end)
		return BPFLB_PARSE_BAD;
	if (ic->code != 0)
		return BPFLB_PARSE_PASS;
	if (ic->type == EGRESS_ICMP_ECHO) {
		pkt->sport = ic->id;
		return BPFLB_PARSE_OK;
	}
	if (ic->type == EGRESS_ICMP_ECHOREPLY) {
		pkt->dport = ic->id;
		return BPFLB_PARSE_OK;
	}
	return BPFLB_PARSE_PASS;
}

/* --- rewriting ------------------------------------------------------------------ */

#define EGRESS_ICMP_CSUM_OFF(pkt) ((pkt)->l4_off + offsetof(struct egress_icmp_echo, checksum))
#define EGRESS_ICMP_ID_OFF(pkt)	  ((pkt)->l4_off + offsetof(struct egress_icmp_echo, id))

/* ICMP has no pseudo header: an address only touches the IP checksum. */
static __always_inline int egress_icmp_set(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					   __u32 addr_off, __be32 old_addr, __be32 new_addr,
					   __be16 old_id, __be16 new_id)
{
	if (old_addr != new_addr &&
	    (bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), old_addr, new_addr, 4) ||
	     bpf_skb_store_bytes(skb, addr_off, &new_addr, 4, 0)))
		return -1;
	if (old_id != new_id &&
	    (bpf_l4_csum_replace(skb, EGRESS_ICMP_CSUM_OFF(pkt), old_id, new_id, 2) ||
	     bpf_skb_store_bytes(skb, EGRESS_ICMP_ID_OFF(pkt), &new_id, 2, 0)))
		return -1;
	return 0;
}

static __always_inline int egress_nat_src(struct __sk_buff *skb, struct bpflb_pkt *pkt, __be32 addr,
					  __be16 port)
{
	if (pkt->proto != IPPROTO_ICMP)
		return bpflb_nat_src(skb, pkt, addr, port);
	if (egress_icmp_set(skb, pkt, BPFLB_IP_SADDR_OFF(pkt), pkt->saddr, addr, pkt->sport, port))
		return -1;
	pkt->saddr = addr;
	pkt->sport = port;
	return 0;
}

static __always_inline int egress_nat_dst(struct __sk_buff *skb, struct bpflb_pkt *pkt, __be32 addr,
					  __be16 port)
{
	if (pkt->proto != IPPROTO_ICMP)
		return bpflb_nat_dst(skb, pkt, addr, port);
	if (egress_icmp_set(skb, pkt, BPFLB_IP_DADDR_OFF(pkt), pkt->daddr, addr, pkt->dport, port))
		return -1;
	pkt->daddr = addr;
	pkt->dport = port;
	return 0;
}

/*
 * Lower the MSS a SYN-ACK announces so that the workload's full-size segments
 * still fit the device MTU inside the tunnel.  Only the first option is
 * looked at: every common stack puts MSS first in SYN and SYN-ACK.
 */
static __always_inline void egress_clamp_mss(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					     __u32 mtu)
{
	__u32 off = pkt->l4_off + sizeof(struct tcphdr);
	__u16 max_mss, mss;
	__u8 opt[4];

	if (pkt->proto != IPPROTO_TCP || !(pkt->tcp_flags & BPFLB_TCP_SYN) || !mtu || mtu < 576)
		return;
	if (bpf_skb_load_bytes(skb, off, opt, sizeof(opt)))
		return;
	if (opt[0] != EGRESS_TCPOPT_MSS || opt[1] != 4)
		return;
	max_mss = mtu - EGRESS_TUN_HLEN - sizeof(struct iphdr) - sizeof(struct tcphdr);
	mss = (__u16)opt[2] << 8 | opt[3];
	if (mss <= max_mss)
		return;
	bpflb_csum_set_port(skb, pkt, off + 2, bpf_htons(mss), bpf_htons(max_mss));
}

/* --- tunnel ---------------------------------------------------------------------- */

/*
 * Next hop towards the gateway node, looked up before the packet changes: no
 * route or no neighbour entry yet (the daemon keeps the gateways' entries
 * resolved) and the packet is dropped, never sent unencapsulated.
 */
static __always_inline int egress_tunnel_fib(struct __sk_buff *skb, __be32 src, __be32 dst,
					     struct bpf_fib_lookup *fib)
{
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = BPFLB_AF_INET;
	fib->l4_protocol = IPPROTO_IPIP;
	fib->ipv4_src = src;
	fib->ipv4_dst = dst;
	fib->ifindex = skb->ifindex;
	return bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_OUTPUT);
}

struct egress_outer {
	struct iphdr ip;
	__u8 opt_type;
	__u8 opt_len;
	__be16 opt_policy;
};

/* Put the tunnel header (src -> dst, IP-in-IP, our option) in front of the packet. */
static __always_inline int egress_encap(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					__be16 frag_off, __be32 src, __be32 dst, __u32 policy_id)
{
	__u32 len = bpf_ntohs(pkt->tot_len) + EGRESS_TUN_HLEN;
	struct egress_outer outer;

	__builtin_memset(&outer, 0, sizeof(outer));
	outer.ip.version = 4;
	outer.ip.ihl = sizeof(outer) / 4;
	outer.ip.tos = pkt->tos;
	/* A GSO packet's length is rewritten per segment; only a giant one saturates. */
	outer.ip.tot_len = bpf_htons(len > 0xffff ? 0xffff : len);
	outer.ip.id = (__u16)bpf_get_prandom_u32();
	outer.ip.frag_off = frag_off & bpf_htons(EGRESS_IP_DF);
	outer.ip.ttl = EGRESS_OUTER_TTL;
	outer.ip.protocol = IPPROTO_IPIP;
	outer.ip.saddr = src;
	outer.ip.daddr = dst;
	outer.opt_type = EGRESS_TUN_OPT_TYPE;
	outer.opt_len = EGRESS_TUN_OPT_LEN;
	outer.opt_policy = bpf_htons((__u16)policy_id);
	outer.ip.check =
	    bpflb_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&outer, sizeof(outer), 0));

	/* Without FIXED_GSO the kernel lowers gso_size so every segment still fits. */
	if (bpf_skb_adjust_room(skb, EGRESS_TUN_HLEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
		return -1;
	return bpf_skb_store_bytes(skb, sizeof(struct ethhdr), &outer, sizeof(outer), 0);
}

/*
 * A workload packet that does not fit the tunnel and must not be fragmented:
 * answer it the way a router with a smaller MTU would, ICMP "fragmentation
 * needed" (type 3, code 4) with the MTU left inside the tunnel, from this
 * node's address, so the workload's stack lowers its path MTU.  The packet is
 * turned into the ICMP message in place and sent to the workload out of the
 * device the FIB names.  Returns the tc verdict, or -1 when that failed.
 */
#define EGRESS_ICMP_DEST_UNREACH 3
#define EGRESS_ICMP_FRAG_NEEDED	 4
#define EGRESS_ICMP_QUOTE_MAX	 (60 + 8)

struct egress_icmp_unreach {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu;
};

struct egress_icmp_msg {
	__u16 align; /* puts ip (and the rest) on a 4-byte boundary */
	struct ethhdr eth;
	struct iphdr ip;
	struct egress_icmp_unreach icmp;
	__u8 quote[EGRESS_ICMP_QUOTE_MAX];
};

static __always_inline int egress_frag_needed(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					      __be32 from, __u32 mtu)
{
	struct bpf_fib_lookup fib;
	struct egress_icmp_msg m;
	__u32 quote_len, len;

	quote_len = (pkt->ihl & 0x3c) + 8;
	if (quote_len < sizeof(struct iphdr) + 8 || quote_len > EGRESS_ICMP_QUOTE_MAX)
		return -1;
	__builtin_memset(&m, 0, sizeof(m));
	if (bpf_skb_load_bytes(skb, pkt->l3_off, m.quote, quote_len))
		return -1;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.family = BPFLB_AF_INET;
	fib.l4_protocol = IPPROTO_ICMP;
	fib.ipv4_src = from;
	fib.ipv4_dst = pkt->saddr;
	fib.ifindex = skb->ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT) !=
	    BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	__builtin_memcpy(m.eth.h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(m.eth.h_source, fib.smac, ETH_ALEN);
	m.eth.h_proto = bpf_htons(ETH_P_IP);

	len = sizeof(m.ip) + sizeof(m.icmp) + quote_len;
	m.ip.version = 4;
	m.ip.ihl = sizeof(m.ip) / 4;
	m.ip.tos = 0xc0; /* IPTOS_PREC_INTERNETCONTROL, as the kernel's icmp_send() */
	m.ip.tot_len = bpf_htons(len);
	m.ip.ttl = 64;
	m.ip.protocol = IPPROTO_ICMP;
	m.ip.saddr = from;
	m.ip.daddr = pkt->saddr;
	m.ip.check = bpflb_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&m.ip, sizeof(m.ip), 0));
	m.icmp.type = EGRESS_ICMP_DEST_UNREACH;
	m.icmp.code = EGRESS_ICMP_FRAG_NEEDED;
	m.icmp.mtu = bpf_htons(mtu - EGRESS_TUN_HLEN);
	/* icmp and quote are contiguous and a multiple of 4 bytes long. */
	m.icmp.checksum = bpflb_csum_fold(
	    bpf_csum_diff(NULL, 0, (__be32 *)&m.icmp, sizeof(m.icmp) + quote_len, 0));

	len += sizeof(m.eth);
	if (bpf_skb_change_tail(skb, len, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, 0, &m.eth, len, BPF_F_RECOMPUTE_CSUM))
		return -1;
	return bpf_redirect(fib.ifindex, 0);
}

/* --- gateway conntrack --------------------------------------------------------------- */

#define EGRESS_CT_REFRESH_NS BPFLB_NSEC_PER_SEC

/* REV key and value of a FWD entry (rv may be NULL). */
static __always_inline void egress_ct_rev_of(const struct bpflb_ct_key *fk,
					     const struct egress_ct_val *fv,
					     struct bpflb_ct_key *rk, struct egress_ct_val *rv)
{
	rk->saddr = fk->daddr;
	rk->daddr = fv->addr;
	rk->sport = fk->dport;
	rk->dport = fv->port;
	rk->proto = fk->proto;
	rk->kind = BPFLB_CT_REV;
	rk->pad = 0;
	if (!rv)
		return;
	*rv = *fv;
	rv->addr = fk->saddr;
	rv->port = fk->sport;
}

/* FWD key and value of a REV entry (fv may be NULL). */
static __always_inline void egress_ct_fwd_of(const struct bpflb_ct_key *rk,
					     const struct egress_ct_val *rv,
					     struct bpflb_ct_key *fk, struct egress_ct_val *fv)
{
	fk->saddr = rv->addr;
	fk->daddr = rk->saddr;
	fk->sport = rv->port;
	fk->dport = rk->sport;
	fk->proto = rk->proto;
	fk->kind = BPFLB_CT_FWD;
	fk->pad = 0;
	if (!fv)
		return;
	*fv = *rv;
	fv->addr = rk->daddr;
	fv->port = rk->dport;
}

static __always_inline void egress_ct_partner(const struct bpflb_ct_key *k,
					      const struct egress_ct_val *v,
					      struct bpflb_ct_key *pk, struct egress_ct_val *pv)
{
	if (k->kind == BPFLB_CT_FWD)
		egress_ct_rev_of(k, v, pk, pv);
	else
		egress_ct_fwd_of(k, v, pk, pv);
}

static __always_inline void egress_ct_delete(const struct bpflb_ct_key *k,
					     const struct egress_ct_val *v)
{
	struct bpflb_ct_key pk;

	egress_ct_partner(k, v, &pk, NULL);
	bpf_map_delete_elem(&egress_ct, &pk);
	bpf_map_delete_elem(&egress_ct, k);
}

/*
 * A packet of a known flow: follow the TCP state, refresh last_seen of both
 * entries at most once a second, and put back a partner the LRU evicted.
 */
static __always_inline void egress_ct_touch(const struct bpflb_ct_key *k, struct egress_ct_val *v,
					    const struct bpflb_pkt *pkt)
{
	__u8 state = bpflb_ct_next_state(v->state, pkt, k->kind == BPFLB_CT_REV);
	__u64 now = bpf_ktime_get_ns();
	struct egress_ct_val *pv, nv;
	struct bpflb_ct_key pk;

	if (state == v->state && now - v->last_seen < EGRESS_CT_REFRESH_NS)
		return;
	v->state = state;
	v->last_seen = now;
	egress_ct_partner(k, v, &pk, &nv);
	pv = bpf_map_lookup_elem(&egress_ct, &pk);
	if (pv) {
		pv->state = state;
		pv->last_seen = now;
		return;
	}
	bpf_map_update_elem(&egress_ct, &pk, &nv, BPF_NOEXIST);
}

/*
 * Claim a port on the egress IP for a new flow: the workload's own port when
 * it is in range and free (so a flow that moves to another gateway of the same
 * egress IP tends to keep its tuple), then ports from a hash of the flow, then
 * random ones.  The REV entry owns the port: BPF_NOEXIST makes the claim
 * atomic.  On success fv->port holds the port and the REV entry is in place.
 */
static __always_inline int egress_port_alloc(const struct egress_cfg *cfg,
					     const struct bpflb_ct_key *fk,
					     struct egress_ct_val *fv)
{
	__u32 min = cfg->port_min, max = cfg->port_max, range, start, port;
	__u16 own = bpf_ntohs(fk->sport);
	struct bpflb_ct_key rk;
	struct egress_ct_val rv;

	if (!min || max < min)
		return -1;
	range = max - min + 1;
	start = bpflb_flow_hash(fk->saddr, fk->daddr, fk->sport, fk->dport, fk->proto,
				EGRESS_PORT_SEED) %
		range;
	fv->port = 0;
	egress_ct_rev_of(fk, fv, &rk, &rv);

#pragma unroll
	for (int i = 0; i < EGRESS_PORT_TRIES; i++) {
		if (i == 0 && own >= min && own <= max)
			port = own;
		else if (i < EGRESS_PORT_LINEAR_TRIES)
			port = min + (start + i) % range;
		else
			port = min + bpf_get_prandom_u32() % range;
		rk.dport = bpf_htons((__u16)port);
		if (!bpf_map_update_elem(&egress_ct, &rk, &rv, BPF_NOEXIST)) {
			fv->port = rk.dport;
			return 0;
		}
	}
	return -1;
}

/*
 * Translate a workload packet of policy idx to the egress IP (the gateway's
 * job; node_addr is the workload's node, 0 when it runs here).  Returns
 * EGRESS_NEXT, or the verdict of a drop.
 */
static __always_inline int egress_snat(struct __sk_buff *skb, struct bpflb_pkt *pkt,
				       const struct egress_cfg *cfg,
				       const struct egress_policy_val *pol, __u32 idx,
				       __be32 node_addr, __u8 stage)
{
	struct bpflb_ct_key fk, rk;
	struct egress_ct_val *fv, nv;
	__u32 bytes = skb->len;
	__be32 egress_ip = pol->egress_ip;
	__u64 now;

	bpflb_ct_key_of(&fk, pkt, BPFLB_CT_FWD);
	fv = bpf_map_lookup_elem(&egress_ct, &fk);
	if (fv) {
		if (fv->addr == egress_ip &&
		    !(fv->state == BPFLB_CT_CLOSING && bpflb_tcp_is_syn(pkt))) {
			fv->node_addr = node_addr;
			egress_ct_touch(&fk, fv, pkt);
			nv = *fv;
			goto translate;
		}
		/* The policy moved to another egress IP, or the tuple is reused. */
		egress_ct_delete(&fk, fv);
	}

	now = bpf_ktime_get_ns();
	__builtin_memset(&nv, 0, sizeof(nv));
	nv.created = now;
	nv.last_seen = now;
	nv.addr = egress_ip;
	nv.state = bpflb_ct_initial_state(pkt);
	nv.policy = idx;
	nv.node_addr = node_addr;
	if (egress_port_alloc(cfg, &fk, &nv))
		return egress_drop(skb, pkt, idx, BPFLB_DROP_SNAT_EXHAUSTED, stage);
	if (bpf_map_update_elem(&egress_ct, &fk, &nv, BPF_ANY)) {
		egress_ct_rev_of(&fk, &nv, &rk, NULL);
		bpf_map_delete_elem(&egress_ct, &rk);
		return egress_drop(skb, pkt, idx, BPFLB_DROP_CT_FULL, stage);
	}
	egress_event(skb, pkt, egress_ip, nv.port, stage);

translate:
	if (egress_nat_src(skb, pkt, nv.addr, nv.port))
		return egress_drop(skb, pkt, idx, BPFLB_DROP_BAD_PACKET, stage);
	egress_count(idx, EGRESS_CNT_SNAT, bytes);
	return EGRESS_NEXT;
}

/* --- workload node: tc egress ------------------------------------------------------------ */

/* Is the packet the reply of a flow the load balancer translated (a local backend's answer)? */
static __always_inline int egress_is_lb_reply(struct __sk_buff *skb)
{
	struct bpflb_ct_key rk;
	struct bpflb_pkt l4;

	if (bpflb_parse(skb, &l4) != BPFLB_PARSE_OK)
		return 0;
	bpflb_ct_key_of(&rk, &l4, BPFLB_CT_REV);
	return bpf_map_lookup_elem(&bpflb_ct, &rk) != NULL;
}

static __always_inline int egress_out_process(struct __sk_buff *skb)
{
	struct egress_policy_val *pol;
	struct bpf_fib_lookup fib;
	struct egress_cfg *cfg;
	struct bpflb_pkt pkt;
	__u32 bytes = skb->len, idx;
	__be16 frag_off;
	int i, rc;

	if (egress_parse_l3(skb, &pkt, &frag_off))
		return EGRESS_NEXT;
	i = egress_match(pkt.saddr, pkt.daddr);
	if (i < 0)
		return EGRESS_NEXT;
	idx = i & (EGRESS_MAX_POLICIES - 1);
	cfg = egress_cfg_get();
	pol = egress_policy(idx);
	if (!cfg || !pol)
		return EGRESS_NEXT;
	/* A backend answering a service client keeps the service's own path. */
	if (egress_is_lb_reply(skb))
		return EGRESS_NEXT;

	if (!pol->gw_addr)
		return egress_drop(skb, &pkt, idx, BPFLB_DROP_NO_GATEWAY, BPFLB_STAGE_OUT_EGRESS);

	if (pol->flags & EGRESS_POL_F_LOCAL) {
		rc = egress_parse_l4(skb, &pkt);
		if (rc != BPFLB_PARSE_OK || (pkt.flags & BPFLB_PKTF_FRAG))
			return egress_drop(skb, &pkt, idx, BPFLB_DROP_BAD_PACKET,
					   BPFLB_STAGE_OUT_EGRESS);
		return egress_snat(skb, &pkt, cfg, pol, idx, 0, BPFLB_STAGE_OUT_EGRESS);
	}

	/*
	 * The tunnel must fit the device (a GSO packet is cut to fit by the
	 * kernel).  Too big: dropped, and with DF the workload learns the MTU.
	 */
	if (!skb->gso_size && cfg->mtu > EGRESS_TUN_HLEN + 68 &&
	    bpf_ntohs(pkt.tot_len) + EGRESS_TUN_HLEN > cfg->mtu) {
		egress_drop(skb, &pkt, idx, BPFLB_DROP_MTU, BPFLB_STAGE_OUT_EGRESS);
		if (frag_off & bpf_htons(EGRESS_IP_DF)) {
			rc = egress_frag_needed(skb, &pkt, cfg->node_addr, cfg->mtu);
			if (rc >= 0)
				return rc;
		}
		return TC_ACT_SHOT;
	}

	rc = egress_tunnel_fib(skb, cfg->node_addr, pol->gw_addr, &fib);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return egress_drop(skb, &pkt, idx, BPFLB_DROP_FIB, BPFLB_STAGE_OUT_EGRESS);

	/* One event per TCP connection; the gateway reports every flow it translates. */
	if (pkt.proto == IPPROTO_TCP) {
		struct bpflb_pkt l4;

		if (bpflb_parse(skb, &l4) == BPFLB_PARSE_OK && bpflb_tcp_is_syn(&l4))
			egress_event(skb, &l4, pol->gw_addr, 0, BPFLB_STAGE_OUT_EGRESS);
	}

	if (egress_encap(skb, &pkt, frag_off, cfg->node_addr, pol->gw_addr, idx + 1))
		return egress_drop(skb, &pkt, idx, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_OUT_EGRESS);
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0))
		return egress_drop(skb, &pkt, idx, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_OUT_EGRESS);
	egress_count(idx, EGRESS_CNT_STEERED, bytes);
	if (fib.ifindex != skb->ifindex)
		bpflb_stage_redirect(skb, fib.ifindex);
	return EGRESS_NEXT;
}

SEC("tc")
int egress_out(struct __sk_buff *skb)
{
	int rc = egress_out_process(skb);

	if (rc != EGRESS_NEXT)
		return rc;
	return bpflb_stage_next(skb, BPFLB_STAGE_OUT_EGRESS);
}

/* --- gateway node: tc ingress ---------------------------------------------------------------- */

/* A tunnelled workload packet: check, decapsulate, translate, route. */
static __always_inline int egress_gateway(struct __sk_buff *skb, const struct egress_cfg *cfg,
					  const struct bpflb_pkt *outer)
{
	struct egress_policy_val *pol;
	struct bpflb_pkt pkt;
	struct iphdr inner;
	__u8 opt[2];
	__u32 idx;
	int i, rc;

	/* Only our tunnel (the option), and only from a cluster node. */
	if (outer->ihl != EGRESS_TUN_HLEN ||
	    bpf_skb_load_bytes(skb, outer->l3_off + sizeof(struct iphdr), opt, sizeof(opt)) ||
	    opt[0] != EGRESS_TUN_OPT_TYPE || opt[1] != EGRESS_TUN_OPT_LEN ||
	    !bpf_map_lookup_elem(&egress_nodes, &outer->saddr))
		return EGRESS_NEXT;
	if (bpf_skb_load_bytes(skb, outer->l4_off, &inner, sizeof(inner)))
		return EGRESS_NEXT;
	i = egress_match(inner.saddr, inner.daddr);
	if (i < 0)
		/* Not a policy this node knows: someone else's tunnel, or config drift. */
		return EGRESS_NEXT;
	idx = i & (EGRESS_MAX_POLICIES - 1);
	pol = egress_policy(idx);
	if (!pol)
		return EGRESS_NEXT;

	if (!egress_ip_active(pol->egress_ip)) {
		__builtin_memset(&pkt, 0, sizeof(pkt));
		pkt.saddr = inner.saddr;
		pkt.daddr = inner.daddr;
		pkt.proto = inner.protocol;
		return egress_drop(skb, &pkt, idx, BPFLB_DROP_NO_GATEWAY, BPFLB_STAGE_IN_EGRESS);
	}

	if (bpf_skb_adjust_room(skb, -EGRESS_TUN_HLEN, BPF_ADJ_ROOM_MAC, 0))
		return egress_drop(skb, outer, idx, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_IN_EGRESS);

	/* Only what the gateway can translate leaves it. */
	rc = egress_parse_l4(skb, &pkt);
	if (rc != BPFLB_PARSE_OK || (pkt.flags & BPFLB_PKTF_FRAG)) {
		__be16 frag_off;

		if (rc != BPFLB_PARSE_OK)
			egress_parse_l3(skb, &pkt, &frag_off);
		return egress_drop(skb, &pkt, idx, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_IN_EGRESS);
	}
	rc = egress_snat(skb, &pkt, cfg, pol, idx, outer->saddr, BPFLB_STAGE_IN_EGRESS);
	if (rc != EGRESS_NEXT)
		return rc;
	bpflb_fib_redirect(skb, &pkt, skb->ingress_ifindex);
	return EGRESS_NEXT;
}

/* A packet to an egress IP this node serves: the reply of a translated flow? */
static __always_inline int egress_reply(struct __sk_buff *skb, const struct egress_cfg *cfg)
{
	struct egress_ct_val *rv;
	struct bpflb_ct_key rk;
	struct bpflb_pkt pkt;
	__u32 bytes = skb->len, idx;
	__be32 wl_addr, node_addr;
	__be16 wl_port;

	if (egress_parse_l4(skb, &pkt) != BPFLB_PARSE_OK)
		return EGRESS_NEXT;
	bpflb_ct_key_of(&rk, &pkt, BPFLB_CT_REV);
	rv = bpf_map_lookup_elem(&egress_ct, &rk);
	if (!rv)
		return EGRESS_NEXT; /* the node's own traffic on that address */
	egress_ct_touch(&rk, rv, &pkt);
	wl_addr = rv->addr;
	wl_port = rv->port;
	node_addr = rv->node_addr;
	idx = rv->policy & (EGRESS_MAX_POLICIES - 1);

	if (egress_nat_dst(skb, &pkt, wl_addr, wl_port))
		return egress_drop(skb, &pkt, idx, BPFLB_DROP_BAD_PACKET, BPFLB_STAGE_IN_EGRESS);
	if (node_addr)
		egress_clamp_mss(skb, &pkt, cfg->mtu);
	egress_count(idx, EGRESS_CNT_REPLY, bytes);
	skb->cb[BPFLB_CB_FLAGS] |= BPFLB_PKT_REPLY;
	/* Back to the pod: its node routes the pod CIDR (native routing). */
	bpflb_fib_redirect(skb, &pkt, skb->ingress_ifindex);
	return EGRESS_NEXT;
}

static __always_inline int egress_in_process(struct __sk_buff *skb)
{
	struct egress_cfg *cfg;
	struct bpflb_pkt pkt;
	__be16 frag_off;

	/* The load balancer translated it already (a service packet or its reply). */
	if (skb->cb[BPFLB_CB_FLAGS] & BPFLB_PKT_LB_DONE)
		return EGRESS_NEXT;
	if (egress_parse_l3(skb, &pkt, &frag_off))
		return EGRESS_NEXT;
	cfg = egress_cfg_get();
	if (!cfg || !cfg->node_addr)
		return EGRESS_NEXT;
	if (pkt.proto == IPPROTO_IPIP && pkt.daddr == cfg->node_addr &&
	    !(frag_off & bpf_htons(BPFLB_IP_MF | BPFLB_IP_OFFMASK)))
		return egress_gateway(skb, cfg, &pkt);
	if (egress_ip_active(pkt.daddr))
		return egress_reply(skb, cfg);
	return EGRESS_NEXT;
}

SEC("tc")
int egress_in(struct __sk_buff *skb)
{
	int rc = egress_in_process(skb);

	if (rc != EGRESS_NEXT)
		return rc;
	return bpflb_stage_next(skb, BPFLB_STAGE_IN_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
