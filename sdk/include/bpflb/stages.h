/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Pipeline stage slots, shared by BPF programs and userspace.
 *
 * The core attaches one entry program per tc hook (ingress and egress of every
 * configured device) and never detaches it on reload.  The entry program
 * tail-calls into the pinned program array "bpflb_stages"; a stage passes the
 * packet on with bpflb_stage_next() (sdk/bpf/bpflb/pipeline.h).  An empty slot
 * is skipped, so swapping the program of one slot is a single atomic map update.
 */
#ifndef BPFLB_STAGES_H
#define BPFLB_STAGES_H

/* Bump when the slot numbering or the skb->cb[] use changes. */
#define BPFLB_PIPELINE_SCHEMA 1u

enum bpflb_stage {
	/* tc ingress of a device: packets arriving at the node */
	BPFLB_STAGE_IN_FIRST = 0,
	BPFLB_STAGE_IN_PRE = 0,     /* vendor hook before everything */
	BPFLB_STAGE_IN_LB = 1,      /* service translation: the mode plugin */
	BPFLB_STAGE_IN_POLICY = 2,  /* network policy, sees translated backend */
	BPFLB_STAGE_IN_EGRESS = 3,  /* egress gateway, return traffic */
	BPFLB_STAGE_IN_POST = 4,    /* vendor hook after everything */
	BPFLB_STAGE_IN_LAST = 7,
	/* tc egress of a device: packets leaving the node */
	BPFLB_STAGE_OUT_FIRST = 8,
	BPFLB_STAGE_OUT_PRE = 8,
	BPFLB_STAGE_OUT_POLICY = 9,
	BPFLB_STAGE_OUT_EGRESS = 10,
	BPFLB_STAGE_OUT_LB = 11,    /* reverse NAT, DSR reply rewrite */
	BPFLB_STAGE_OUT_POST = 12,
	BPFLB_STAGE_OUT_LAST = 15,
	BPFLB_STAGE_MAX = 16,
};

/*
 * skb->cb[] words carried from stage to stage (struct __sk_buff cb[0..4]).  The
 * entry program clears them.  Here rather than in the BPF-only pipeline.h so
 * that userspace (BPF_PROG_TEST_RUN fixtures) reads them with the same names.
 */
#define BPFLB_CB_FLAGS 0          /* BPFLB_PKT_* below */
#define BPFLB_CB_SVC 1            /* service id the LB stage matched, 0 none */
#define BPFLB_CB_REDIRECT 2       /* with BPFLB_PKT_REDIRECT: ifindex to send the packet out of */
#define BPFLB_PKT_LB_DONE (1u << 0)  /* the LB stage translated the packet */
#define BPFLB_PKT_REPLY (1u << 1)    /* packet belongs to a known flow's reply */
#define BPFLB_PKT_REDIRECT (1u << 2) /* redirect at the end of the chain (cb[BPFLB_CB_REDIRECT]) */

#endif
