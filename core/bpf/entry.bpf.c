// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The core's entry programs: one per tc direction, attached once to every
 * configured device and kept across reloads and restarts.  They only reset the
 * per-packet pipeline state and start the chain of stages; all behaviour lives
 * in the stages that plugins put into bpflb_stages.
 */
#include <bpflb/pipeline.h>
/* Declared here so the shared maps exist and are pinned before any plugin loads. */
#include <bpflb/lb_maps.h>

SEC("tc")
int bpflb_entry_in(struct __sk_buff *skb)
{
	skb->cb[BPFLB_CB_FLAGS] = 0;
	skb->cb[BPFLB_CB_SVC] = 0;
	return bpflb_stage_first(skb, BPFLB_STAGE_IN_FIRST);
}

SEC("tc")
int bpflb_entry_out(struct __sk_buff *skb)
{
	skb->cb[BPFLB_CB_FLAGS] = 0;
	skb->cb[BPFLB_CB_SVC] = 0;
	return bpflb_stage_first(skb, BPFLB_STAGE_OUT_FIRST);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
