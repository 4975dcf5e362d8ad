/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Forwarding a translated packet without a trip through the stack: FIB
 * lookup, next-hop MACs, TTL, and a redirect recorded for the end of the stage
 * chain (pipeline.h).
 *
 * Anything but a complete answer from the FIB leaves the packet to the stack,
 * already translated: no neighbour entry yet (the stack resolves it and queues
 * the packet), a local destination (host-network backend), a packet too big
 * for the route (the stack fragments or answers ICMP), forwarding disabled.
 * None of these is a reason to drop.
 *
 * A SNATed packet, or the reply of a NodePort flow, carries one of the node's
 * own addresses as its source: the stack takes such a packet from the wire only
 * with net.ipv4.conf.<dev>.accept_local=1 (else: "martian source", dropped), so
 * the daemon sets it, with ip_forward=1, on the devices it manages.  Kernels
 * before 5.10 have no bpf_redirect_neigh(): keeping the neighbour entries of
 * backend next hops resolved makes the fallback rare.
 */
#ifndef BPFLB_BPF_FIB_H
#define BPFLB_BPF_FIB_H

#include <bpflb/csum.h>
#include <bpflb/pipeline.h>

#define BPFLB_AF_INET 2

/* Returns 0 when the redirect is recorded, -1 when the stack routes the packet. */
static __always_inline int bpflb_fib_redirect(struct __sk_buff *skb, struct bpflb_pkt *pkt,
					      __u32 ifindex)
{
	struct bpf_fib_lookup fib;
	int rc;

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.family = BPFLB_AF_INET;
	fib.tos = pkt->tos;
	fib.l4_protocol = pkt->proto;
	fib.sport = pkt->sport;
	fib.dport = pkt->dport;
	fib.tot_len = bpf_ntohs(pkt->tot_len);
	fib.ipv4_src = pkt->saddr;
	fib.ipv4_dst = pkt->daddr;
	fib.ifindex = ifindex;

	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	/* The stack answers an expiring TTL with ICMP time exceeded. */
	if (bpflb_ip_dec_ttl(skb, pkt))
		return -1;
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0))
		return -1;
	bpflb_stage_redirect(skb, fib.ifindex);
	return 0;
}

#endif
