/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * DSR dispatch on the wire: the IPv4 option that carries the frontend to the
 * backend node (layout in sdk/include/bpflb/lb.h), IP-in-IP encapsulation
 * added and removed with bpf_skb_adjust_room() (no ipip device on either
 * node), the MTU the dispatched packet must fit in, and TCP MSS clamping.
 *
 * Every helper here may move the packet: re-read skb->data afterwards.  The
 * struct bpflb_pkt given to them follows the headers they add or remove.
 */
#ifndef BPFLB_BPF_DSR_H
#define BPFLB_BPF_DSR_H

#include <bpflb/csum.h>
#include <bpflb/lb_maps.h>
#include <bpflb/pipeline.h>

#define BPFLB_IPPROTO_IPIP  4
#define BPFLB_IPIP_HLEN	    20 /* the outer header: no options, ever */
#define BPFLB_IPV4_MAX_HLEN 60
#define BPFLB_IP_DF	    0x4000
#define BPFLB_MTU_DEFAULT   1500 /* a device the daemon has not told us about */
#define BPFLB_MTU_MIN	    576
#define BPFLB_TCPOPT_EOL    0
#define BPFLB_TCPOPT_NOP    1
#define BPFLB_TCPOPT_MSS    2
#define BPFLB_TCPOPT_WALK   8 /* options looked at before giving up on finding the MSS */

/* MTU of a device the daemon manages (bpflb_dev_mtu), else Ethernet's. */
static __always_inline __u32 bpflb_dev_mtu_get(__u32 ifindex)
{
	__u32 *mtu = bpf_map_lookup_elem(&bpflb_dev_mtu, &ifindex);

	return mtu && *mtu >= BPFLB_MTU_MIN ? *mtu : BPFLB_MTU_DEFAULT;
}

/* The first 16-bit word of an IPv4 header (version, IHL, TOS) as it is on the wire. */
static __always_inline __u16 bpflb_ip_word0(__u32 ihl_bytes, __u8 tos)
{
	union {
		__u8 b[2];
		__u16 w;
	} u = {.b = {0x40 | (__u8)(ihl_bytes / 4), tos}};

	return u.w;
}

/*
 * New header length and total length after adding (grow > 0) or removing
 * option bytes: fix the two header words and the header checksum.  The
 * option words themselves are accounted for by the caller.
 */
static __always_inline int bpflb_ip_resize_hdr(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					       int grow)
{
	__u32 ihl = pkt->ihl + grow;
	__u16 old0 = bpflb_ip_word0(pkt->ihl, pkt->tos), new0 = bpflb_ip_word0(ihl, pkt->tos);
	__be16 old_len = pkt->tot_len, new_len = bpf_htons(bpf_ntohs(pkt->tot_len) + grow);

	if (bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), old0, new0, 2) ||
	    bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), old_len, new_len, 2))
		return -1;
	if (bpf_skb_store_bytes(skb, pkt->l3_off, &new0, sizeof(new0), 0) ||
	    bpf_skb_store_bytes(skb, pkt->l3_off + offsetof(struct iphdr, tot_len), &new_len,
				sizeof(new_len), 0))
		return -1;
	pkt->ihl = ihl;
	pkt->l4_off += grow;
	pkt->tot_len = new_len;
	return 0;
}

/*
 * bpf_skb_adjust_room() flags for a packet of proto: a UDP GSO packet's
 * gso_size delimits its datagrams, which must stay as they are (the kernel
 * refuses anything else); a TCP one may have its segments shortened by what
 * the headers grow, so that they still fit once cut.
 */
static __always_inline __u64 bpflb_gso_flags(__u8 proto)
{
	return proto == IPPROTO_UDP ? BPF_F_ADJ_ROOM_FIXED_GSO : 0;
}

/* Can the header take the DSR option? */
static __always_inline int bpflb_dsr_opt_fits(const struct bpflb_pkt *pkt)
{
	return pkt->ihl + BPFLB_DSR_OPT_LEN <= BPFLB_IPV4_MAX_HLEN;
}

/*
 * Put the DSR option (frontend addr:port) first among the packet's IPv4
 * options.  BPF_ADJ_ROOM_NET opens the room right after the 20-byte base
 * header, so options already present keep their order behind ours.  The L4
 * checksum does not change: the pseudo header has no part of the IP options.
 */
static __always_inline int bpflb_dsr_opt_push(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					      __be32 addr, __be16 port)
{
	struct bpflb_dsr_opt opt = {
	    .type = BPFLB_DSR_OPT_TYPE,
	    .len = BPFLB_DSR_OPT_LEN,
	    .port = port,
	    .addr = addr,
	};
	__u32 *w = (__u32 *)&opt;

	if (!bpflb_dsr_opt_fits(pkt))
		return -1;
	if (bpf_skb_adjust_room(skb, BPFLB_DSR_OPT_LEN, BPF_ADJ_ROOM_NET,
				bpflb_gso_flags(pkt->proto)))
		return -1;
	if (bpf_skb_store_bytes(skb, pkt->l3_off + sizeof(struct iphdr), &opt, sizeof(opt), 0))
		return -1;
	/* The room was zeros: the checksum only gains the option's two words. */
	if (bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), 0, w[0], 4) ||
	    bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), 0, w[1], 4))
		return -1;
	return bpflb_ip_resize_hdr(skb, pkt, BPFLB_DSR_OPT_LEN);
}

/* The DSR option, when it is the packet's first IPv4 option: 0, else -1. */
static __always_inline int bpflb_dsr_opt_get(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					     struct bpflb_dsr_opt *opt)
{
	if (pkt->ihl < sizeof(struct iphdr) + BPFLB_DSR_OPT_LEN)
		return -1;
	if (bpf_skb_load_bytes(skb, pkt->l3_off + sizeof(struct iphdr), opt, sizeof(*opt)))
		return -1;
	if (opt->type != BPFLB_DSR_OPT_TYPE || opt->len != BPFLB_DSR_OPT_LEN)
		return -1;
	return 0;
}

/*
 * Remove the DSR option found by bpflb_dsr_opt_get(): the backend gets the
 * packet as the client sent it, translated to its own address and port.
 */
static __always_inline int bpflb_dsr_opt_pop(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					     const struct bpflb_dsr_opt *opt)
{
	const __u32 *w = (const __u32 *)opt;

	if (bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), w[0], 0, 4) ||
	    bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), w[1], 0, 4))
		return -1;
	if (bpflb_ip_resize_hdr(skb, pkt, -BPFLB_DSR_OPT_LEN))
		return -1;
	return bpf_skb_adjust_room(skb, -BPFLB_DSR_OPT_LEN, BPF_ADJ_ROOM_NET,
				   bpflb_gso_flags(pkt->proto))
		   ? -1
		   : 0;
}

/*
 * Wrap the packet into an outer IPv4 header saddr -> daddr, protocol IPIP,
 * DF set (the datapath checked the size before), TOS copied from the inner
 * header.  pkt then describes the inner packet, 20 bytes further.
 */
static __always_inline int bpflb_ipip_push(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					   __be32 saddr, __be32 daddr)
{
	struct iphdr o;

	__builtin_memset(&o, 0, sizeof(o));
	o.version = 4;
	o.ihl = BPFLB_IPIP_HLEN / 4;
	o.tos = pkt->tos;
	o.tot_len = bpf_htons(bpf_ntohs(pkt->tot_len) + BPFLB_IPIP_HLEN);
	o.frag_off = bpf_htons(BPFLB_IP_DF);
	o.ttl = 64;
	o.protocol = BPFLB_IPPROTO_IPIP;
	o.saddr = saddr;
	o.daddr = daddr;
	o.check = bpflb_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&o, sizeof(o), 0));

	if (bpf_skb_adjust_room(skb, BPFLB_IPIP_HLEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | bpflb_gso_flags(pkt->proto)))
		return -1;
	if (bpf_skb_store_bytes(skb, pkt->l3_off, &o, sizeof(o), 0))
		return -1;
	pkt->l3_off += BPFLB_IPIP_HLEN;
	pkt->l4_off += BPFLB_IPIP_HLEN;
	return 0;
}

/*
 * An IP-in-IP packet from another node of the cluster (bpflb_peers) to this
 * one (outer header without options, not a fragment)?  Anything else is left
 * to the stack, which has no tunnel to take it.
 */
static __always_inline int bpflb_ipip_is_for(struct __sk_buff *skb, __be32 node_addr)
{
	struct iphdr o;

	if (!node_addr || skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &o, sizeof(o)))
		return 0;
	if (o.version != 4 || o.ihl != BPFLB_IPIP_HLEN / 4 || o.protocol != BPFLB_IPPROTO_IPIP ||
	    o.daddr != node_addr || (o.frag_off & bpf_htons(BPFLB_IP_MF | BPFLB_IP_OFFMASK)))
		return 0;
	return bpf_map_lookup_elem(&bpflb_peers, &o.saddr) != NULL;
}

/* Remove the outer header of an IP-in-IP packet (decapsulation). */
static __always_inline int bpflb_ipip_pop(struct __sk_buff *skb)
{
	__u8 proto;

	if (bpf_skb_load_bytes(
		skb, sizeof(struct ethhdr) + BPFLB_IPIP_HLEN + offsetof(struct iphdr, protocol),
		&proto, 1))
		return -1;
	return bpf_skb_adjust_room(skb, -BPFLB_IPIP_HLEN, BPF_ADJ_ROOM_MAC, bpflb_gso_flags(proto))
		   ? -1
		   : 0;
}

/*
 * Route a packet the datapath encapsulated toward its outer destination and
 * record the redirect; -1 leaves it to the stack.  The outer TTL is fresh (the
 * inner one was decremented when the packet was encapsulated).
 */
static __always_inline int bpflb_fib_redirect_outer(struct __sk_buff *skb, __be32 saddr,
						    __be32 daddr, __u16 tot_len, __u8 tos,
						    __u32 ifindex)
{
	struct bpf_fib_lookup fib;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.family = 2; /* AF_INET */
	fib.tos = tos;
	fib.l4_protocol = BPFLB_IPPROTO_IPIP;
	fib.tot_len = tot_len;
	fib.ipv4_src = saddr;
	fib.ipv4_dst = daddr;
	fib.ifindex = ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0))
		return -1;
	bpflb_stage_redirect(skb, fib.ifindex);
	return 0;
}

/*
 * Lower the MSS option of a TCP SYN or SYN-ACK to max, when it is above.
 * Options are walked from the packet (no variable-offset stack access, which
 * older verifiers refuse); stacks put the MSS first, so one or two loads do.
 * Returns 1 when clamped, 0 when there was nothing to do, -1 on error.
 */
static __always_inline int bpflb_tcp_clamp_mss(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					       __u16 max)
{
	__u32 off = pkt->l4_off + sizeof(struct tcphdr), end;
	__u8 doff, opt[2];
	__be16 old, new;

	if (bpf_skb_load_bytes(skb, pkt->l4_off + 12, &doff, 1))
		return -1;
	end = pkt->l4_off + (doff >> 4) * 4;

#pragma unroll
	for (int i = 0; i < BPFLB_TCPOPT_WALK; i++) {
		if (off + 1 >= end)
			return 0;
		if (bpf_skb_load_bytes(skb, off, opt, 2))
			return -1;
		if (opt[0] == BPFLB_TCPOPT_EOL)
			return 0;
		if (opt[0] == BPFLB_TCPOPT_NOP) {
			off++;
			continue;
		}
		if (opt[0] == BPFLB_TCPOPT_MSS && opt[1] == 4) {
			if (off + 4 > end || bpf_skb_load_bytes(skb, off + 2, &old, 2))
				return -1;
			if (bpf_ntohs(old) <= max)
				return 0;
			new = bpf_htons(max);
			if (bpf_l4_csum_replace(skb, bpflb_l4_csum_off(pkt), old, new,
						sizeof(new)) ||
			    bpf_skb_store_bytes(skb, off + 2, &new, sizeof(new), 0))
				return -1;
			return 1;
		}
		if (opt[1] < 2)
			return 0;
		off += opt[1];
	}
	return 0;
}

#endif
