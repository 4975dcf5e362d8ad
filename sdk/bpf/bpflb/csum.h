/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Address and port rewrites with incremental checksum updates.
 *
 * The L4 checksum is updated with BPF_F_PSEUDO_HDR for addresses (they are part
 * of the pseudo header), which also keeps CHECKSUM_PARTIAL skbs of locally
 * generated traffic right.  A UDP checksum of 0 means "none" and stays 0
 * (BPF_F_MARK_MANGLED_0); a computed 0 is written as 0xffff.
 *
 * Every helper here may move the packet: re-read skb->data afterwards.
 */
#ifndef BPFLB_BPF_CSUM_H
#define BPFLB_BPF_CSUM_H

#include <bpflb/parse.h>

#define BPFLB_IP_CSUM_OFF(pkt) ((pkt)->l3_off + offsetof(struct iphdr, check))
#define BPFLB_IP_SADDR_OFF(pkt) ((pkt)->l3_off + offsetof(struct iphdr, saddr))
#define BPFLB_IP_DADDR_OFF(pkt) ((pkt)->l3_off + offsetof(struct iphdr, daddr))
#define BPFLB_IP_TTL_OFF(pkt) ((pkt)->l3_off + offsetof(struct iphdr, ttl))
/* Source and destination ports are the first two words of TCP and UDP alike. */
#define BPFLB_L4_SPORT_OFF(pkt) ((pkt)->l4_off)
#define BPFLB_L4_DPORT_OFF(pkt) ((pkt)->l4_off + 2)

static __always_inline __u64 bpflb_l4_csum_flags(const struct bpflb_pkt *pkt)
{
	return pkt->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/* Replace the IPv4 address at addr_off (source or destination). */
static __always_inline int bpflb_csum_set_addr(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					       __u32 addr_off, __be32 old, __be32 new)
{
	__u64 l4f = bpflb_l4_csum_flags(pkt) | BPF_F_PSEUDO_HDR | sizeof(new);

	if (old == new)
		return 0;
	if (bpf_l4_csum_replace(skb, bpflb_l4_csum_off(pkt), old, new, l4f))
		return -1;
	if (bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), old, new, sizeof(new)))
		return -1;
	return bpf_skb_store_bytes(skb, addr_off, &new, sizeof(new), 0);
}

/* Replace the TCP/UDP port at port_off (source or destination). */
static __always_inline int bpflb_csum_set_port(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					       __u32 port_off, __be16 old, __be16 new)
{
	__u64 l4f = bpflb_l4_csum_flags(pkt) | sizeof(new);

	if (old == new)
		return 0;
	if (bpf_l4_csum_replace(skb, bpflb_l4_csum_off(pkt), old, new, l4f))
		return -1;
	return bpf_skb_store_bytes(skb, port_off, &new, sizeof(new), 0);
}

/* Rewrite the destination to addr:port (DNAT, or reverse SNAT of a reply). */
static __always_inline int bpflb_nat_dst(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					 __be32 addr, __be16 port)
{
	if (bpflb_csum_set_addr(skb, pkt, BPFLB_IP_DADDR_OFF(pkt), pkt->daddr, addr) ||
	    bpflb_csum_set_port(skb, pkt, BPFLB_L4_DPORT_OFF(pkt), pkt->dport, port))
		return -1;
	pkt->daddr = addr;
	pkt->dport = port;
	return 0;
}

/* Rewrite the source to addr:port (SNAT, or reverse DNAT of a reply). */
static __always_inline int bpflb_nat_src(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					 __be32 addr, __be16 port)
{
	if (bpflb_csum_set_addr(skb, pkt, BPFLB_IP_SADDR_OFF(pkt), pkt->saddr, addr) ||
	    bpflb_csum_set_port(skb, pkt, BPFLB_L4_SPORT_OFF(pkt), pkt->sport, port))
		return -1;
	pkt->saddr = addr;
	pkt->sport = port;
	return 0;
}

/*
 * Decrement the TTL of a packet the program forwards itself (bpf_redirect skips
 * the stack's ip_forward).  The TTL shares a 16-bit checksum word with the
 * protocol.  Returns -1 when the TTL would expire: let the stack answer with
 * ICMP time exceeded.
 */
static __always_inline int bpflb_ip_dec_ttl(struct __sk_buff *skb, struct bpflb_pkt *pkt)
{
	__be16 old = bpf_htons((__u16)pkt->ttl << 8 | pkt->proto);
	__be16 new;
	__u8 ttl;

	if (pkt->ttl <= 1)
		return -1;
	ttl = pkt->ttl - 1;
	new = bpf_htons((__u16)ttl << 8 | pkt->proto);
	if (bpf_l3_csum_replace(skb, BPFLB_IP_CSUM_OFF(pkt), old, new, sizeof(new)))
		return -1;
	if (bpf_skb_store_bytes(skb, BPFLB_IP_TTL_OFF(pkt), &ttl, sizeof(ttl), 0))
		return -1;
	pkt->ttl = ttl;
	return 0;
}

/* Fold a 32-bit one's complement sum (bpf_csum_diff's result) into a checksum. */
static __always_inline __u16 bpflb_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
