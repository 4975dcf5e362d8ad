// SPDX-License-Identifier: GPL-2.0-only
/*
 * The DSR load-balancing mode: the client address reaches the backend, whose
 * node answers the client directly.  The datapath is bpf/dsr.bpf.c
 * (sdk/bpf/bpflb/lb_core.h with the DSR policy for new flows); the plugin
 * itself is the shared plugins/lb_mode_plugin.h.
 */
#define LB_MODE dsr
#define LB_MODE_POLICY BPFLB_POLICY_DSR
#define LB_MODE_DESC "direct server return: the client address reaches the backend, whose node answers the client directly"
#define LB_MODE_FLOWS "DSR"
#include "dsr_bpf.skel.h"
#include "../lb_mode_plugin.h"
