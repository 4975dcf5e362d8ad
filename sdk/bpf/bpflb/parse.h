/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Packet parsing for tc programs: Ethernet, IPv4 (with options), TCP, UDP.
 *
 * The result is a small struct of offsets and the 5-tuple; programs rewrite the
 * packet through helpers (csum.h) that take these offsets, so nothing here keeps
 * packet pointers that a helper call would invalidate.
 */
#ifndef BPFLB_BPF_PARSE_H
#define BPFLB_BPF_PARSE_H

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define BPFLB_TCP_FIN 0x01
#define BPFLB_TCP_SYN 0x02
#define BPFLB_TCP_RST 0x04
#define BPFLB_TCP_ACK 0x10

/* Byte 13 of the TCP header holds the flags above. */
#define BPFLB_TCP_FLAGS_OFF 13

#define BPFLB_IP_MF 0x2000
#define BPFLB_IP_OFFMASK 0x1fff

/* bpflb_pkt.flags */
#define BPFLB_PKTF_FRAG (1u << 0) /* first fragment of a fragmented datagram */

struct bpflb_pkt {
	__u32 l3_off;     /* IPv4 header */
	__u32 l4_off;     /* TCP/UDP header: l3_off + ihl * 4 */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;       /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 tcp_flags;   /* BPFLB_TCP_*, 0 for UDP */
	__u8 flags;       /* BPFLB_PKTF_* */
	__u8 ihl;         /* IPv4 header length in bytes (20..60) */
	__u8 tos;
	__u8 ttl;
	__be16 tot_len;
};

enum bpflb_parse_rc {
	BPFLB_PARSE_OK = 0,   /* IPv4 TCP/UDP with its ports: the tuple is valid */
	BPFLB_PARSE_PASS = 1, /* not ours: other ethertype or protocol, non-first fragment */
	BPFLB_PARSE_BAD = 2,  /* truncated or malformed: leave it to the kernel's checks */
};

/*
 * Make the first len bytes directly accessible.  Headers are almost always in
 * the linear area already; pulling is the slow path for the rare skb whose
 * headers sit in fragments.
 */
static __always_inline int bpflb_ensure_linear(struct __sk_buff *skb, __u32 len)
{
	if ((void *)(long)skb->data + len <= (void *)(long)skb->data_end)
		return 0;
	if (len > skb->len)
		return -1;
	return bpf_skb_pull_data(skb, len);
}

static __always_inline int bpflb_parse(struct __sk_buff *skb, struct bpflb_pkt *pkt)
{
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 ihl, need;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return BPFLB_PARSE_PASS;
	/* Ethernet + minimal IPv4 + the 8 bytes of an L4 header holding the ports. */
	if (bpflb_ensure_linear(skb, sizeof(*eth) + sizeof(*ip)))
		return BPFLB_PARSE_BAD;

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > data_end)
		return BPFLB_PARSE_BAD;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return BPFLB_PARSE_PASS;
	if (ip->version != 4 || ip->ihl < 5)
		return BPFLB_PARSE_BAD;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return BPFLB_PARSE_PASS;
	/* A non-first fragment carries no L4 header: nothing to match it on. */
	if (ip->frag_off & bpf_htons(BPFLB_IP_OFFMASK))
		return BPFLB_PARSE_PASS;

	ihl = ip->ihl * 4;
	pkt->l3_off = sizeof(*eth);
	pkt->l4_off = sizeof(*eth) + ihl;
	pkt->ihl = ihl;
	pkt->saddr = ip->saddr;
	pkt->daddr = ip->daddr;
	pkt->proto = ip->protocol;
	pkt->tos = ip->tos;
	pkt->ttl = ip->ttl;
	pkt->tot_len = ip->tot_len;
	pkt->flags = (ip->frag_off & bpf_htons(BPFLB_IP_MF)) ? BPFLB_PKTF_FRAG : 0;
	pkt->tcp_flags = 0;

	/*
	 * The whole L4 header must be present: a first fragment too short to hold
	 * it (RFC 1858 tiny fragments) is refused rather than half-translated.
	 */
	need = pkt->l4_off + (pkt->proto == IPPROTO_TCP ? sizeof(struct tcphdr) :
							  sizeof(struct udphdr));
	if (bpflb_ensure_linear(skb, need))
		return BPFLB_PARSE_BAD;

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (pkt->proto == IPPROTO_TCP) {
		struct tcphdr *th = data + (pkt->l4_off & 0xff);

		if ((void *)(th + 1) > data_end)
			return BPFLB_PARSE_BAD;
		if (th->doff < 5)
			return BPFLB_PARSE_BAD;
		pkt->sport = th->source;
		pkt->dport = th->dest;
		pkt->tcp_flags = ((__u8 *)th)[BPFLB_TCP_FLAGS_OFF];
	} else {
		struct udphdr *uh = data + (pkt->l4_off & 0xff);

		if ((void *)(uh + 1) > data_end)
			return BPFLB_PARSE_BAD;
		pkt->sport = uh->source;
		pkt->dport = uh->dest;
	}
	return BPFLB_PARSE_OK;
}

/* Offset of the TCP or UDP checksum field. */
static __always_inline __u32 bpflb_l4_csum_off(const struct bpflb_pkt *pkt)
{
	return pkt->l4_off + (pkt->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) :
							  offsetof(struct udphdr, check));
}

static __always_inline int bpflb_tcp_is_syn(const struct bpflb_pkt *pkt)
{
	return pkt->proto == IPPROTO_TCP &&
	       (pkt->tcp_flags & (BPFLB_TCP_SYN | BPFLB_TCP_ACK | BPFLB_TCP_RST)) == BPFLB_TCP_SYN;
}

#endif
