/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Rejecting a packet the way kube-proxy's REJECT rule does: ICMP destination
 * unreachable, port unreachable (type 3, code 3), built in place from the
 * offending packet and sent back out of the device it came in on.  The same
 * builder answers "fragmentation needed" (type 3, code 4) for a packet that
 * DSR dispatch would make too big for the next hop.
 *
 * The ICMP payload is the original IP header (options included) and the first
 * 8 bytes of its L4 header (RFC 792), enough for the client's stack to find
 * the socket: TCP connect() fails with ECONNREFUSED, UDP sees it on the next
 * call.
 */
#ifndef BPFLB_BPF_REJECT_H
#define BPFLB_BPF_REJECT_H

#include <bpflb/csum.h>

/* linux/icmp.h drags in libc's socket headers, which a BPF build cannot use. */
#define BPFLB_ICMP_DEST_UNREACH 3
#define BPFLB_ICMP_PORT_UNREACH 3
#define BPFLB_ICMP_QUOTE_MAX (60 + 8) /* largest IP header + 8 bytes */

struct bpflb_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};

/* The reply, laid out so every header field is naturally aligned on the stack. */
struct bpflb_icmp_reply {
	__u16 align;               /* puts ip (and the rest) on a 4-byte boundary */
	struct ethhdr eth;
	struct iphdr ip;
	struct bpflb_icmphdr icmp;
	__u8 quote[BPFLB_ICMP_QUOTE_MAX];
};

#define BPFLB_ICMP_FRAG_NEEDED 4

/*
 * Turn the packet into an ICMP destination unreachable (code, and the 32 bits
 * after the checksum, `rest`, in network order) for its sender.  Returns the
 * tc verdict that sends it (TC_ACT_REDIRECT), or -1 when the packet could not
 * be rewritten (the caller drops it).
 */
static __always_inline int bpflb_icmp_unreach(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
					      __u8 code, __be32 rest)
{
	struct bpflb_icmp_reply r;
	__u32 quote_len, len;
	__u8 mac[ETH_ALEN];

	quote_len = (pkt->ihl & 0x3c) + 8;
	if (quote_len < sizeof(struct iphdr) + 8 || quote_len > BPFLB_ICMP_QUOTE_MAX)
		return -1;

	__builtin_memset(&r, 0, sizeof(r));
	if (bpf_skb_load_bytes(skb, 0, &r.eth, sizeof(r.eth)))
		return -1;
	if (bpf_skb_load_bytes(skb, pkt->l3_off, r.quote, quote_len))
		return -1;

	__builtin_memcpy(mac, r.eth.h_dest, ETH_ALEN);
	__builtin_memcpy(r.eth.h_dest, r.eth.h_source, ETH_ALEN);
	__builtin_memcpy(r.eth.h_source, mac, ETH_ALEN);

	len = sizeof(r.ip) + sizeof(r.icmp) + quote_len;
	r.ip.version = 4;
	r.ip.ihl = sizeof(r.ip) / 4;
	r.ip.tos = 0xc0;   /* IPTOS_PREC_INTERNETCONTROL, as the kernel's icmp_send() */
	r.ip.tot_len = bpf_htons(len);
	r.ip.ttl = 64;
	r.ip.protocol = IPPROTO_ICMP;
	r.ip.saddr = pkt->daddr;
	r.ip.daddr = pkt->saddr;
	r.ip.check = bpflb_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&r.ip, sizeof(r.ip), 0));

	r.icmp.type = BPFLB_ICMP_DEST_UNREACH;
	r.icmp.code = code;
	r.icmp.unused = rest;
	/* icmp and quote are contiguous and a multiple of 4 bytes long. */
	r.icmp.checksum = bpflb_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&r.icmp,
							sizeof(r.icmp) + quote_len, 0));

	len += sizeof(r.eth);
	if (bpf_skb_change_tail(skb, len, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, 0, &r.eth, len, BPF_F_RECOMPUTE_CSUM))
		return -1;
	return bpf_redirect(skb->ifindex, 0);
}

/* Port unreachable: kube-proxy's REJECT of a service without backends. */
static __always_inline int bpflb_reject_port_unreach(struct __sk_buff *skb,
						      const struct bpflb_pkt *pkt)
{
	return bpflb_icmp_unreach(skb, pkt, BPFLB_ICMP_PORT_UNREACH, 0);
}

/*
 * Fragmentation needed (RFC 1191): the packet does not fit the next hop once
 * the datapath added its own headers; mtu is what the sender may use.
 */
static __always_inline int bpflb_icmp_frag_needed(struct __sk_buff *skb,
						   const struct bpflb_pkt *pkt, __u16 mtu)
{
	return bpflb_icmp_unreach(skb, pkt, BPFLB_ICMP_FRAG_NEEDED, bpf_htonl(mtu));
}

#endif
