/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Network policy: every struct the BPF datapath (policy.bpf.c) and userspace
 * (policy.c, the tests, metrics) share, defined once.  Fixed-width types,
 * explicit padding, a size assertion per struct.
 *
 * The maps (policy_maps.h):
 *   bpflb_pol_cfg    [0] generation in use, conntrack timeouts       (not pinned)
 *   bpflb_pol_subj   (gen, address) -> subject on this node           (not pinned)
 *   bpflb_pol_ident  LPM (gen, prefix) -> peer identity               (not pinned)
 *   bpflb_pol_rules  LPM (gen, rule set, identity, proto, port) -> verdict (not pinned)
 *   bpflb_pol_ct     LRU 5-tuple -> flow: replies of allowed flows     (pinned)
 *   bpflb_pol_cnt    per-CPU verdict counters per direction            (pinned)
 *   bpflb_pol_rstat  per-CPU packets per rule id                       (pinned)
 *   bpflb_pol_names  policy id -> policy name                          (pinned)
 *
 * The three lookup maps hold two generations; userspace fills the idle one
 * and then flips bpflb_pol_cfg.gen, a single 4-byte write, so a packet never
 * sees half of a new policy set.  The idle generation is emptied at the next
 * apply, not right after the flip, so a packet that read the old generation
 * number still finds its entries.
 *
 * Pinned maps keep their layout for POLICY_SCHEMA; change one -> bump it.
 */
#ifndef BPFLB_POLICY_STRUCTS_H
#define BPFLB_POLICY_STRUCTS_H

#include <linux/types.h>

#define POLICY_SCHEMA 1u

#define POL_MAX_SUBJECTS 4096	/* per generation: host addresses + local workloads */
#define POL_MAX_IDENTS	 16384	/* per generation: prefixes the policies and inventory name */
#define POL_MAX_RULES	 65536	/* per generation: LPM entries of all rule sets */
#define POL_CT_SIZE	 131072 /* flows tracked for their replies */
#define POL_MAX_POLICIES 65535	/* policy ids 1..65535 */
#define POL_NAME_MAX	 256	/* a Kubernetes name is at most 253 characters */

enum {
	POL_DIR_IN = 0,	 /* ingress: peer -> subject, BPFLB_STAGE_IN_POLICY */
	POL_DIR_OUT = 1, /* egress: subject -> peer, BPFLB_STAGE_OUT_POLICY */
};

/*
 * Rule ids, in flow events (bpflb_flow_event.rule_id), bpflb_pol_rstat and the
 * control dump: the policy id in the high 16 bits; the low 16 bits are 0 for the
 * policy's default deny, else the section (0 ingress, 1 ingressDeny, 2 egress,
 * 3 egressDeny) in bits 12-13 and the rule's 1-based position in that section,
 * counted over all specs of the policy, in bits 0-11.
 */
#define POL_RULE_ID(pol, sec, n)  (((__u32)(pol) << 16) | ((__u32)(sec) << 12) | (__u32)(n))
#define POL_RULE_POLICY(id)	  ((id) >> 16)
#define POL_RULE_SECTION(id)	  (((id) >> 12) & 3)
#define POL_RULE_INDEX(id)	  ((id)&0xfff)
#define POL_MAX_RULES_PER_SECTION 4095

/* bpflb_pol_cfg[0] */
struct pol_cfg {
	__u32 gen; /* generation of subj/ident/rules entries in use: 0 or 1 */
	__u32 flags;
	__u64 tcp_timeout_ns;	    /* established TCP flow */
	__u64 tcp_syn_timeout_ns;   /* TCP flow without a reply yet */
	__u64 tcp_close_timeout_ns; /* after FIN or RST */
	__u64 other_timeout_ns;	    /* UDP and ICMP */
};
_Static_assert(sizeof(struct pol_cfg) == 40, "pol_cfg layout");

/* bpflb_pol_subj: an address of a subject on this node. */
struct pol_subj_key {
	__u32 gen;
	__be32 addr;
};
_Static_assert(sizeof(struct pol_subj_key) == 8, "pol_subj_key layout");

enum pol_action {
	POL_ACT_NONE = 0,
	POL_ACT_ALLOW = 1,
	POL_ACT_DENY = 2,
};

#define POL_SUBJ_HOST	  1
#define POL_SUBJ_ENDPOINT 2

struct pol_subj {
	__u32 set[2];	   /* rule set per direction (POL_DIR_*); 0: not selected */
	__u32 def_rule[2]; /* rule id reported when no rule matches */
	__u8 def[2];	   /* POL_ACT_* when no rule matches: ALLOW, or DENY (default deny) */
	__u8 def_audit[2]; /* 1: that default deny is audited, not enforced */
	__u8 kind;	   /* POL_SUBJ_* */
	__u8 pad[3];
};
_Static_assert(sizeof(struct pol_subj) == 24, "pol_subj layout");

/* bpflb_pol_ident: LPM key; prefixlen = 32 + length of the IPv4 prefix. */
struct pol_ident_key {
	__u32 prefixlen;
	__u32 gen;
	__be32 addr;
};
_Static_assert(sizeof(struct pol_ident_key) == 12, "pol_ident_key layout");

/*
 * bpflb_pol_rules: LPM key.  prefixlen counts the bits after itself:
 *   96         gen, set, peer: every protocol and port (an L3 rule)
 *   104        + proto: every port of TCP or UDP
 *   104 + n    + the first n bits of the destination port (ranges as prefixes)
 * dport is big endian, as in the packet, so its bits come most significant
 * first as the trie compares them.  pad stays 0 and is never part of a prefix.
 */
#define POL_PLEN_L3	 96
#define POL_PLEN_PROTO	 104
#define POL_PLEN_PORT(n) (104 + (n))

struct pol_rule_key {
	__u32 prefixlen;
	__u32 gen;
	__u32 set;
	__u32 peer; /* identity of the peer address */
	__u8 proto;
	__u8 dport[2]; /* destination port, big endian */
	__u8 pad;
};
_Static_assert(sizeof(struct pol_rule_key) == 20, "pol_rule_key layout");

/*
 * The value of an entry is already merged with every entry that contains it
 * (userspace does it): deny beats allow, an enforced deny beats an audited one.
 */
struct pol_verdict {
	__u8 action; /* POL_ACT_ALLOW or POL_ACT_DENY */
	__u8 audit;  /* DENY only: 1 when every deny that matches is audited */
	__u16 pad;
	__u32 rule_id;
};
_Static_assert(sizeof(struct pol_verdict) == 8, "pol_verdict layout");

/* bpflb_pol_ct: a flow, by the tuple of its first packet at a policy stage. */
struct pol_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport; /* ICMP echo: the identifier in both ports */
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};
_Static_assert(sizeof(struct pol_ct_key) == 16, "pol_ct_key layout");

#define POL_CT_F_REPLIED (1u << 0) /* a reply was seen */
#define POL_CT_F_CLOSING (1u << 1) /* TCP FIN or RST seen */

enum pol_ct_verdict {
	POL_CTV_ALLOWED = 1, /* allowed by a rule, or the subject was not selected */
	POL_CTV_AUDIT = 2,   /* would have been dropped: passed and reported */
};

struct pol_ct_val {
	__u64 last_seen; /* bpf_ktime_get_ns(), refreshed at most every second */
	__u32 rule_id;	 /* rule that decided its last forward packet, 0: none */
	__u8 flags;	 /* POL_CT_F_* */
	__u8 verdict;	 /* enum pol_ct_verdict of its last forward packet */
	__u8 dir;	 /* POL_DIR_* of the stage that created it */
	__u8 pad;
};
_Static_assert(sizeof(struct pol_ct_val) == 16, "pol_ct_val layout");

/*
 * bpflb_pol_cnt: per-CPU packet counters, index POL_DIR_IN or POL_DIR_OUT.
 * Only packets of subjects on this node are counted (a packet that is neither
 * from nor to one is not looked at).
 */
struct pol_counters {
	__u64 allowed;	  /* forward packets a rule allowed */
	__u64 audit;	  /* would have been dropped: passed (audit mode) */
	__u64 denied;	  /* dropped (reason BPFLB_DROP_POLICY) */
	__u64 reply;	  /* replies of tracked flows, passed without a lookup */
	__u64 unselected; /* subject not selected in that direction: passed */
};
_Static_assert(sizeof(struct pol_counters) == 40, "pol_counters layout");

/* bpflb_pol_rstat: per-CPU packets per rule id (the rule that decided). */
struct pol_rule_stats {
	__u64 allowed;
	__u64 audit;
	__u64 denied;
};
_Static_assert(sizeof(struct pol_rule_stats) == 24, "pol_rule_stats layout");

/* bpflb_pol_names: policy id -> name, so a reader of the pins can name a rule id. */
struct pol_name {
	char name[POL_NAME_MAX];
};
_Static_assert(sizeof(struct pol_name) == POL_NAME_MAX, "pol_name layout");

#endif
