// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * SNAT mode, kube-proxy semantics: a service packet is DNATed to its backend;
 * when the backend runs on another node the source is also translated to the
 * node's address, so the reply comes back through this node, which restores
 * the client and the frontend.
 *
 * The datapath is the one every mode shares (sdk/bpf/bpflb/lb_core.h): this
 * mode only decides that new flows to remote backends are SNATed.  Flows a
 * DSR or hybrid mode started before a switch keep their DSR forwarding, and
 * DSR flows other nodes dispatch to our backends are served as in those modes.
 *
 *   snat_in  (BPFLB_STAGE_IN_LB, tc ingress of the node's devices)
 *   snat_out (BPFLB_STAGE_OUT_LB, tc egress)
 */
#define BPFLB_LB_POLICY BPFLB_POLICY_SNAT
#include <bpflb/lb_core.h>

SEC("tc")
int snat_in(struct __sk_buff *skb)
{
	return bpflb_lb_in(skb);
}

SEC("tc")
int snat_out(struct __sk_buff *skb)
{
	return bpflb_lb_out(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
