// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Hybrid mode: new TCP flows to a backend on another node go by DSR, new UDP
 * flows by SNAT (sdk/bpf/bpflb/lb_core.h).  Replies of TCP flows, the big
 * ones, skip the ingress node; UDP, whose DSR option would be on every
 * datagram, keeps the kube-proxy path.  A service's `forwarding` overrides
 * the choice.
 *
 *   hybrid_in  (BPFLB_STAGE_IN_LB, tc ingress of the node's devices)
 *   hybrid_out (BPFLB_STAGE_OUT_LB, tc egress)
 */
#define BPFLB_LB_POLICY BPFLB_POLICY_HYBRID
#include <bpflb/lb_core.h>

SEC("tc")
int hybrid_in(struct __sk_buff *skb)
{
	return bpflb_lb_in(skb);
}

SEC("tc")
int hybrid_out(struct __sk_buff *skb)
{
	return bpflb_lb_out(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
