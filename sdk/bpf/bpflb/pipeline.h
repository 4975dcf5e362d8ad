/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * BPF side of the pipeline: the pinned stage array and the hand-off between
 * stages.  Include from every program that runs as a stage.
 */
#ifndef BPFLB_BPF_PIPELINE_H
#define BPFLB_BPF_PIPELINE_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include <bpflb/stages.h>

/* Stage programs, indexed by enum bpflb_stage; shared by all objects via its pin. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, BPFLB_STAGE_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bpflb_stages SEC(".maps");

/* The skb->cb[] words of the pipeline (BPFLB_CB_*, BPFLB_PKT_*) are in stages.h. */

/*
 * Forward the packet out of ifindex once the chain ends, instead of passing it
 * to the stack.  A stage that routes a packet itself (FIB lookup after NAT)
 * records the decision here rather than calling bpf_redirect() and returning:
 * later stages (policy, egress gateway, vendor hooks) still see the packet and
 * may drop it or override the decision.
 */
static __always_inline void bpflb_stage_redirect(struct __sk_buff *skb, __u32 ifindex)
{
	skb->cb[BPFLB_CB_FLAGS] |= BPFLB_PKT_REDIRECT;
	skb->cb[BPFLB_CB_REDIRECT] = ifindex;
}

/* Verdict at the end of the chain: a recorded redirect, or the stack. */
static __always_inline int bpflb_stage_done(struct __sk_buff *skb)
{
	if (skb->cb[BPFLB_CB_FLAGS] & BPFLB_PKT_REDIRECT)
		return bpf_redirect(skb->cb[BPFLB_CB_REDIRECT], 0);
	return TC_ACT_OK;
}

/*
 * Continue with the first non-empty stage after `cur` in the same direction.
 * A successful tail call does not return; an empty slot falls through to the
 * next one.  When no later stage exists the chain ends with bpflb_stage_done():
 * the redirect a stage recorded, or the stack.
 */
static __always_inline int bpflb_stage_next(struct __sk_buff *skb, __u32 cur)
{
	__u32 last = cur < BPFLB_STAGE_OUT_FIRST ? BPFLB_STAGE_IN_LAST : BPFLB_STAGE_OUT_LAST;

#pragma unroll
	for (__u32 i = 1; i < BPFLB_STAGE_OUT_FIRST; i++) {
		if (cur + i > last)
			break;
		bpf_tail_call(skb, &bpflb_stages, cur + i);
	}
	return bpflb_stage_done(skb);
}

/* Start the chain of one direction (used by the core's entry programs). */
static __always_inline int bpflb_stage_first(struct __sk_buff *skb, __u32 first)
{
	bpf_tail_call(skb, &bpflb_stages, first);
	return bpflb_stage_next(skb, first);
}

#endif
