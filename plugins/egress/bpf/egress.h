/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Egress gateway: every struct the datapath (egress.bpf.c) and the plugin
 * (egress.c) share, and the constants both sides need.  One definition,
 * fixed-width types, explicit padding, a size assertion per struct.  Bump
 * EGRESS_SCHEMA when a layout or a map definition in egress_maps.h changes:
 * the core then refuses maps pinned by an older build instead of reusing them.
 *
 * Selection.  A packet is subject to policy i when bit i is set in both
 *   egress_src[longest prefix of its source]       (policies selecting the source)
 *   egress_dst[longest prefix of its destination]  (policies whose destinations,
 *                                                   minus exclusions and the
 *                                                   cluster, contain it)
 * The plugin stores at every prefix the bits that hold for all addresses whose
 * longest configured prefix it is, so one LPM lookup per side is exact.  The
 * lowest common bit wins (policies in file order).
 */
#ifndef EGRESS_H
#define EGRESS_H

#include <linux/types.h>

#define EGRESS_SCHEMA 1u

#define EGRESS_MAX_POLICIES 64	   /* bits of the selection bitmaps */
#define EGRESS_MAX_PREFIXES 16384  /* per side (sources, destinations) */
#define EGRESS_MAX_NODES    1024   /* cluster nodes allowed to send us tunnel traffic */
#define EGRESS_MAX_IPS	    256	   /* egress IPs this node may serve as gateway */
#define EGRESS_CT_SIZE	    131072 /* gateway conntrack entries (two per flow) */

/*
 * The tunnel: IP-in-IP whose outer IPv4 header carries one option of ours,
 * {type EGRESS_TUN_OPT_TYPE, length 4, policy id (16 bits, for observers)}.
 * The option tells egress traffic from the load balancer's own IP-in-IP (DSR
 * dispatch, always without options), which the load-balancing stage
 * decapsulates before the egress stage runs.  The type is the RFC 4727
 * experimental option 30 with the copied bit and class 2 (DSR uses class 0).
 */
#define EGRESS_TUN_OPT_TYPE 0xde
#define EGRESS_TUN_OPT_LEN  4
#define EGRESS_TUN_HLEN	    24 /* outer IPv4 header with the option */
#define EGRESS_OUTER_TTL    64

/* Source or destination prefix (BPF_MAP_TYPE_LPM_TRIE key); value: __u64 bitmap. */
struct egress_lpm_key {
	__u32 prefixlen;
	__be32 addr;
};
_Static_assert(sizeof(struct egress_lpm_key) == 8, "egress_lpm_key layout");

/* egress_cfg[0]: this node, written by the plugin on every apply. */
struct egress_cfg {
	__be32 node_addr; /* outer source of the tunnel; tunnel packets to it are decapsulated */
	__u16 port_min;	  /* host order: SNAT ports on the egress IPs */
	__u16 port_max;
	__u32 mtu; /* smallest MTU of the node's devices: the tunnel must fit in it */
	__u32 flags;
};
_Static_assert(sizeof(struct egress_cfg) == 16, "egress_cfg layout");

/* egress_policy_val.flags */
#define EGRESS_POL_F_LOCAL (1u << 0) /* this node is the gateway: SNAT here, no tunnel */

/*
 * egress_policies[i]: where the traffic of policy i goes now.  gw_addr 0 means
 * "no healthy gateway": the traffic is dropped (BPFLB_DROP_NO_GATEWAY), never
 * sent with the workload's own address.
 */
struct egress_policy_val {
	__be32 gw_addr; /* node address of the current gateway; 0: none */
	__be32 egress_ip;
	__u32 flags; /* EGRESS_POL_F_* */
	__u32 id;    /* policy id (index + 1) for events; 0: slot unused */
};
_Static_assert(sizeof(struct egress_policy_val) == 16, "egress_policy_val layout");

/* egress_ips: egress IP -> what this node does as its gateway. */
#define EGRESS_IP_F_ACTIVE (1u << 0) /* configured here (basic) / lease held (vip) */

struct egress_ip_val {
	__u32 flags; /* EGRESS_IP_F_* */
	__u32 pad;
};
_Static_assert(sizeof(struct egress_ip_val) == 8, "egress_ip_val layout");

/*
 * Gateway conntrack, egress_ct, keyed by struct bpflb_ct_key (sdk lb.h):
 *  FWD {workload, destination, wport, dport}            -> egress IP and port
 *  REV {destination, egress IP, dport, egress port}     -> workload and port
 * For ICMP echo the identifier stands for the workload port (sport) and the
 * egress port; the other port is 0.  Each entry holds what rebuilds the other.
 */
struct egress_ct_val {
	__u64 last_seen; /* bpf_ktime_get_ns(), refreshed at most every second */
	__u64 created;
	__be32 addr;	  /* FWD: egress IP.  REV: workload address */
	__be16 port;	  /* FWD: egress port.  REV: workload port */
	__u8 state;	  /* enum bpflb_ct_state */
	__u8 policy;	  /* policy index */
	__be32 node_addr; /* node the workload runs on (tunnel source); 0: this node */
	__u32 pad;
};
_Static_assert(sizeof(struct egress_ct_val) == 32, "egress_ct_val layout");

/* egress_stats[i] (per-CPU): what policy i did on this node. */
struct egress_stats {
	__u64 steered_packets; /* workload node: sent into the tunnel to the gateway */
	__u64 steered_bytes;
	__u64 snat_packets; /* gateway: source translated to the egress IP */
	__u64 snat_bytes;
	__u64 reply_packets; /* gateway: replies translated back to the workload */
	__u64 reply_bytes;
	__u64 drop_packets; /* any drop of the policy's traffic (reason in bpflb_drops) */
	__u64 drop_bytes;
};
_Static_assert(sizeof(struct egress_stats) == 64, "egress_stats layout");

#endif
