// SPDX-License-Identifier: GPL-2.0-only
/*
 * The SNAT load-balancing mode (kube-proxy semantics): DNAT to the backend,
 * and SNAT to the node's address when the backend runs on another node.  The
 * datapath is bpf/snat.bpf.c (sdk/bpf/bpflb/lb_core.h with the SNAT policy for
 * new flows); the plugin itself is the shared plugins/lb_mode_plugin.h.
 */
#define LB_MODE snat
#define LB_MODE_POLICY BPFLB_POLICY_SNAT
#define LB_MODE_DESC "kube-proxy semantics: DNAT to the backend, SNAT to the node for remote backends"
#define LB_MODE_FLOWS "SNAT to this node's address"
#include "snat_bpf.skel.h"
#include "../lb_mode_plugin.h"
