// SPDX-License-Identifier: GPL-2.0-only
/*
 * The hybrid load-balancing mode: new TCP flows to backends on other nodes by
 * DSR, new UDP flows by SNAT.  The datapath is bpf/hybrid.bpf.c
 * (sdk/bpf/bpflb/lb_core.h with the hybrid policy for new flows); the plugin
 * itself is the shared plugins/lb_mode_plugin.h.
 */
#define LB_MODE hybrid
#define LB_MODE_POLICY BPFLB_POLICY_HYBRID
#define LB_MODE_DESC "TCP by direct server return, UDP by SNAT"
#define LB_MODE_FLOWS "TCP by DSR, UDP by SNAT"
#include "hybrid_bpf.skel.h"
#include "../lb_mode_plugin.h"
