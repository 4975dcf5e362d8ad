// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * DSR mode: a new flow to a backend on another node keeps the client's
 * address and is dispatched to the backend's node, which answers the client
 * directly with the frontend as source (sdk/bpf/bpflb/lb_core.h).  The
 * dispatch method, the IPv4 option or IP-in-IP, is [lb] dsr_dispatch
 * (bpflb_node_cfg.flags), read per packet: changing it needs no new program.
 *
 *   dsr_in  (BPFLB_STAGE_IN_LB, tc ingress of the node's devices)
 *   dsr_out (BPFLB_STAGE_OUT_LB, tc egress)
 */
#define BPFLB_LB_POLICY BPFLB_POLICY_DSR
#include <bpflb/lb_core.h>

SEC("tc")
int dsr_in(struct __sk_buff *skb)
{
	return bpflb_lb_in(skb);
}

SEC("tc")
int dsr_out(struct __sk_buff *skb)
{
	return bpflb_lb_out(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
