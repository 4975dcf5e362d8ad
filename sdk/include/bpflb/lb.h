/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Service load-balancing state shared by the BPF datapath and userspace: one
 * definition of every struct that crosses the boundary.  Only fixed-width
 * types, explicit padding, and a size assertion per struct.
 *
 * The maps themselves are declared for BPF in sdk/bpf/bpflb/lb_maps.h and
 * pinned by name under the instance's bpffs root, so every mode plugin, every
 * reload and every restart of bpflbd shares them.  Bump BPFLB_LB_SCHEMA when a
 * layout here changes: the core then refuses (never silently reuses) maps
 * pinned by an older daemon.
 */
#ifndef BPFLB_LB_H
#define BPFLB_LB_H

#include <linux/types.h>

#define BPFLB_LB_SCHEMA	   2u	       /* 2: bpflb_ct_val.flags, syn_seq (DSR backend half) */
/*
 * The oldest schema whose maps this build adopts in place (and re-records as
 * BPFLB_LB_SCHEMA): version 1 has the same layout, with 0 in what are now
 * flags, and a DSR backend half's syn_seq only matters for a SYN-ACK, which an
 * established flow no longer sends.  An upgrade keeps conntrack; a downgrade
 * is refused by the older daemon.
 */
#define BPFLB_LB_SCHEMA_ADOPT_FROM 1u
#define BPFLB_SCHEMA_MAGIC 0x62706c62u /* "bplb" */

#define BPFLB_MAX_SERVICES 131072   /* frontends (address, port, protocol) */
#define BPFLB_MAX_BACKENDS 262144
#define BPFLB_MAX_SLOTS 1048576     /* sum of active backends over all services */
#define BPFLB_MAX_MAGLEV 4096       /* services using Maglev */
#define BPFLB_CT_SIZE 262144        /* conntrack entries (two per flow) */
#define BPFLB_MAX_NODES 16384       /* nodes of the cluster (bpflb_peers) */
/*
 * Size M of every service's Maglev table (a prime).  The inner arrays of
 * bpflb_maglev all have this size: kernels before 5.10 require an inner map to
 * match the outer map's template exactly, so M is part of the map schema.
 */
#define BPFLB_MAGLEV_DEFAULT_M 16381
#define BPFLB_EVENTS_PER_SEC_DEFAULT 1000 /* flow events per second per CPU */

/* Schema record, one per map set ("lb", or a plugin's name), map bpflb_schema. */
struct bpflb_schema_key {
	char name[16];
};
struct bpflb_schema_val {
	__u32 magic;
	__u32 version;
};

/* --- services ----------------------------------------------------------- */

/* A frontend as packets address it: node IP + NodePort, LB IP + port, external IP + port. */
struct bpflb_svc_key {
	__be32 addr;
	__be16 port;
	__u8 proto;   /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};
_Static_assert(sizeof(struct bpflb_svc_key) == 8, "bpflb_svc_key layout");

#define BPFLB_SVC_F_ETP_LOCAL (1u << 0)  /* externalTrafficPolicy=Local */
#define BPFLB_SVC_F_REJECT (1u << 1)     /* no backend: answer ICMP unreachable */
#define BPFLB_SVC_F_MAGLEV (1u << 2)     /* select with the Maglev table, else random */
#define BPFLB_SVC_F_FWD_SNAT (1u << 3)   /* per-service override: always SNAT */
#define BPFLB_SVC_F_FWD_DSR (1u << 4)    /* per-service override: always DSR */
#define BPFLB_SVC_F_HOSTPORT (1u << 5)   /* a hostPort mapping, always local */

struct bpflb_svc {
	__u32 id;        /* service-port id: stats, events, slots and Maglev key */
	__u16 count;     /* selection slots in bpflb_slots: 0 .. count-1 */
	__u16 flags;     /* BPFLB_SVC_F_* */
	__u16 total;     /* backends known, in any state (tells "none" from "no local") */
	__u16 pad;
};
_Static_assert(sizeof(struct bpflb_svc) == 12, "bpflb_svc layout");

/*
 * Backend ids start at 1: 0 (BPFLB_BACKEND_NONE) marks an empty Maglev table
 * entry or slot, so a zeroed array never selects a real backend.
 */
#define BPFLB_BACKEND_NONE 0u

/* Slot of a service: the candidates of random selection. */
struct bpflb_slot_key {
	__u32 svc_id;
	__u32 slot;
};
_Static_assert(sizeof(struct bpflb_slot_key) == 8, "bpflb_slot_key layout");

enum bpflb_backend_state {
	BPFLB_BE_ACTIVE = 0,
	BPFLB_BE_TERMINATING = 1, /* keeps established flows, gets no new ones */
	BPFLB_BE_MAINTENANCE = 2, /* gets nothing: established flows are dropped */
};

#define BPFLB_BE_F_LOCAL (1u << 0)    /* runs on this node */
#define BPFLB_BE_F_HOSTNET (1u << 1)  /* host-network endpoint (address = node IP) */
/* Never dispatched by DSR: the daemon found that DSR cannot reach it (and logged
 * why); its flows use SNAT instead, whatever the mode and the service say. */
#define BPFLB_BE_F_NO_DSR (1u << 2)

struct bpflb_backend {
	__be32 addr;
	__be16 port;
	__u8 state;      /* enum bpflb_backend_state */
	__u8 flags;      /* BPFLB_BE_F_* */
	__be32 node_addr;/* address of the node it runs on (DSR dispatch) */
};
_Static_assert(sizeof(struct bpflb_backend) == 12, "bpflb_backend layout");

/*
 * How a load-balancing mode forwards a NEW flow to a backend on another node
 * (sdk/bpf/bpflb/lb_core.h, `const volatile` set by the mode plugin before it
 * loads).  Established flows keep what their conntrack entry recorded.
 */
enum bpflb_lb_policy {
	BPFLB_POLICY_SNAT = 0,   /* mode snat */
	BPFLB_POLICY_DSR = 1,    /* mode dsr */
	BPFLB_POLICY_HYBRID = 2, /* mode hybrid: TCP by DSR, UDP by SNAT */
};

/* bpflb_node_cfg.flags */
#define BPFLB_NODE_F_DSR_IPIP (1u << 0) /* DSR dispatch of new flows: IP-in-IP, else the IPv4 option */

/* Node-wide datapath settings, bpflb_node[0]; written by the core on each apply. */
struct bpflb_node_cfg {
	__be32 addr;          /* InternalIP: source of SNAT towards remote backends */
	__u16 snat_port_min;  /* host order */
	__u16 snat_port_max;
	__u32 hash_seed;      /* shared by all nodes: same flow -> same backend */
	__u32 flags;
	__u32 events_per_sec; /* flow events per second per CPU; 0: BPFLB_EVENTS_PER_SEC_DEFAULT */
	__u32 maglev_m;       /* entries of every Maglev table (prime); 0: BPFLB_MAGLEV_DEFAULT_M */
};
_Static_assert(sizeof(struct bpflb_node_cfg) == 24, "bpflb_node_cfg layout");

/* --- DSR dispatch ------------------------------------------------------- */

/*
 * The IPv4 option a DSR ingress node adds to the first packet of a TCP flow
 * (the SYN) and to every UDP datagram it dispatches, always as the first
 * option: the frontend the client addressed, which the backend node restores
 * as the source of the replies.  Type 158 is the RFC 4727 experimental option
 * number 30 with the "copied" bit, so fragments keep it.  With IP-in-IP
 * dispatch the same option travels in the inner header.
 */
#define BPFLB_DSR_OPT_TYPE 0x9e
#define BPFLB_DSR_OPT_LEN 8

struct bpflb_dsr_opt {
	__u8 type;       /* BPFLB_DSR_OPT_TYPE */
	__u8 len;        /* BPFLB_DSR_OPT_LEN */
	__be16 port;     /* frontend port */
	__be32 addr;     /* frontend address */
};
_Static_assert(sizeof(struct bpflb_dsr_opt) == BPFLB_DSR_OPT_LEN, "bpflb_dsr_opt layout");

/* --- conntrack ---------------------------------------------------------- */

/*
 * One flow has two entries in bpflb_ct:
 *  FWD: keyed by the tuple the client sent (client -> frontend); holds the
 *       backend and the SNAT address/port when the source was translated.
 *  REV: keyed by the tuple the reply carries when it reaches us (backend ->
 *       node SNAT address/port, or backend -> client for a local backend);
 *       holds the client and the frontend to restore.
 * Each entry is enough to rebuild the other's key, so state changes and the
 * daemon's garbage collection treat the two as a pair.
 *
 * A DSR flow (fwd DSR_OPT or DSR_IPIP) is the exception: its replies never
 * come back through the ingress node, so each node holds one half only.
 *  ingress node: FWD, as above (addr/port: backend; nat_*: 0), no REV;
 *  backend node: REV keyed by the reply (backend -> client), holding the client
 *       and the frontend the dispatch carried; no FWD.  svc_id is the local
 *       service of the same port when one is found (statistics); no backend_id:
 *       syn_seq holds the sequence number of the client's SYN that came with
 *       the DSR option, and only a SYN-ACK acknowledging that SYN leaves with
 *       the frontend as its source.  Any other SYN-ACK on the tuple belongs to
 *       a connection that did not come by DSR (the client reused its port to
 *       reach the backend directly): the backend's stack accepted it, so the
 *       DSR connection is over and the half is dropped.  flags follow the FINs
 *       of both sides, so that a closed half expires soon.
 * Neither half has a partner: each ages on its own.
 */
enum bpflb_ct_kind {
	BPFLB_CT_FWD = 1,
	BPFLB_CT_REV = 2,
};

struct bpflb_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 kind;       /* enum bpflb_ct_kind */
	__u16 pad;
};
_Static_assert(sizeof(struct bpflb_ct_key) == 16, "bpflb_ct_key layout");

enum bpflb_ct_state {
	BPFLB_CT_NEW = 0,         /* TCP SYN seen, or first UDP packet */
	BPFLB_CT_ESTABLISHED = 1, /* TCP: reply seen; UDP: reply seen */
	BPFLB_CT_CLOSING = 2,     /* TCP FIN or RST seen in either direction */
};

/* How a flow is forwarded; recorded at its first packet and kept for its life. */
enum bpflb_fwd {
	BPFLB_FWD_LOCAL = 1,    /* backend on this node: DNAT only */
	BPFLB_FWD_SNAT = 2,     /* remote backend: DNAT + SNAT to the node */
	BPFLB_FWD_DSR_OPT = 3,  /* remote backend, DSR, IPv4 option dispatch */
	BPFLB_FWD_DSR_IPIP = 4, /* remote backend, DSR, IP-in-IP dispatch */
};

struct bpflb_ct_val {
	__u64 last_seen;  /* bpf_ktime_get_ns(), refreshed at most every second */
	__u64 created;
	/* FWD: backend address/port.  REV: client address/port. */
	__be32 addr;
	__be16 port;
	__u8 state;       /* enum bpflb_ct_state */
	__u8 fwd;         /* enum bpflb_fwd */
	/* FWD: SNAT source address/port (0 when not SNATed).
	 * REV: frontend address/port to restore as the reply's source. */
	__be32 nat_addr;
	__be16 nat_port;
	__u16 flags;      /* BPFLB_CT_F_*: how far a TCP flow has closed; SYN data */
	__u32 svc_id;
	union {
		__u32 backend_id; /* every entry but the DSR backend half */
		__u32 syn_seq;    /* DSR backend half of a TCP flow: the client's SYN */
	};
};
_Static_assert(sizeof(struct bpflb_ct_val) == 40, "bpflb_ct_val layout");

/*
 * bpflb_ct_val.flags, TCP only, set together with state CLOSING: which side
 * sent a FIN, or a RST was seen.  A flow is over ("closed") once both sides
 * sent a FIN or either sent a RST; its SNAT port may then be reclaimed by a
 * new flow after BPFLB_SNAT_REUSE_NS (sdk/bpf/bpflb/nat.h), and the backend
 * node's half of a closed DSR flow expires after a short timeout (ct_gc.c).  The field was
 * padding before: entries of an older daemon have no flags and are merely
 * never reclaimed early (the GC removes them as before).
 */
#define BPFLB_CT_F_FIN_CLIENT  (1u << 0) /* FIN from the client */
#define BPFLB_CT_F_FIN_BACKEND (1u << 1) /* FIN from the backend */
#define BPFLB_CT_F_RST         (1u << 2) /* RST from either side */
/* The DSR backend half only: the client's SYN carried data (TCP Fast Open),
 * so the backend's SYN-ACK may acknowledge beyond syn_seq + 1. */
#define BPFLB_CT_F_SYN_DATA    (1u << 3)

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Are the flags of a TCP flow those of one that is over (both FINs, or a RST)? */
static __always_inline int bpflb_ct_flags_closed(__u16 flags)
{
	return (flags & BPFLB_CT_F_RST) ||
	       (flags & (BPFLB_CT_F_FIN_CLIENT | BPFLB_CT_F_FIN_BACKEND)) ==
		   (BPFLB_CT_F_FIN_CLIENT | BPFLB_CT_F_FIN_BACKEND);
}

/*
 * What the datapath noticed about conntrack pairs, bpflb_ct_stats (per-CPU
 * array of __u64, indexed by this enum), exported as Prometheus counters.
 * An LRU map evicts silently and a flush or a race may remove one half of a
 * pair; the datapath finds out at the next packet of the flow.
 */
enum bpflb_ct_stat {
	BPFLB_CT_STAT_LOST_FWD = 0,     /* a flow's FWD half was missing */
	BPFLB_CT_STAT_LOST_REV = 1,     /* a flow's REV half was missing */
	BPFLB_CT_STAT_REPAIRED_FWD = 2, /* ... and re-created from the REV half */
	BPFLB_CT_STAT_REPAIRED_REV = 3, /* ... and re-created from the FWD half */
	/* The halves disagree (the NAT port belongs to another flow now): the
	 * mapping was not used, the stale half removed or the flow started over. */
	BPFLB_CT_STAT_CONFLICT = 4,
	BPFLB_CT_STAT_SNAT_REUSED = 5,  /* a closed flow's SNAT port given to a new flow */
	BPFLB_CT_STAT_MAX = 8,
};

/* Is the entry the backend node's half of a DSR flow (no backend_id, see above)? */
static __always_inline int bpflb_ct_is_dsr_rev(const struct bpflb_ct_key *k,
					       const struct bpflb_ct_val *v)
{
	return k->kind == BPFLB_CT_REV &&
	       (v->fwd == BPFLB_FWD_DSR_OPT || v->fwd == BPFLB_FWD_DSR_IPIP);
}

/* --- observation -------------------------------------------------------- */

enum bpflb_verdict {
	BPFLB_VERDICT_FORWARDED = 1,
	BPFLB_VERDICT_DROPPED = 2,
	BPFLB_VERDICT_AUDIT = 3,
	BPFLB_VERDICT_REJECTED = 4,
};

enum bpflb_drop_reason {
	BPFLB_DROP_NONE = 0,
	BPFLB_DROP_NO_BACKEND = 1,       /* service without any backend */
	BPFLB_DROP_NO_LOCAL_BACKEND = 2, /* ETP=Local, no backend on this node */
	BPFLB_DROP_SNAT_EXHAUSTED = 3,   /* no free SNAT port in the range */
	BPFLB_DROP_BACKEND_MAINT = 4,    /* flow's backend is in maintenance */
	BPFLB_DROP_BAD_PACKET = 5,       /* truncated or malformed headers */
	BPFLB_DROP_CT_FULL = 6,          /* conntrack insert failed */
	BPFLB_DROP_FIB = 7,              /* no route to the backend */
	BPFLB_DROP_POLICY = 8,           /* network policy */
	BPFLB_DROP_NO_GATEWAY = 9,       /* egress gateway: no healthy gateway */
	BPFLB_DROP_MTU = 10,             /* too big after encapsulation */
	/* A TCP segment to a SNAT port that no conntrack entry and no local
	 * socket owns: held back (no reset) until the client's next segment
	 * puts a lost REV half back. */
	BPFLB_DROP_NAT_NO_MAPPING = 11,
	BPFLB_DROP_MAX = 16,
};

/* A flow event, written to the perf event array bpflb_events.  The daemon
 * puts the events of all CPUs back into ts_ns order before showing them. */
struct bpflb_flow_event {
	__u64 ts_ns;       /* bpf_ktime_get_ns() */
	__be32 saddr;      /* as received */
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__be32 xaddr;      /* after translation: backend (FWD) or client (REV) */
	__be16 xport;
	__u8 proto;
	__u8 verdict;      /* enum bpflb_verdict */
	__u32 svc_id;
	__u32 backend_id;
	__u8 reason;       /* enum bpflb_drop_reason */
	__u8 fwd;          /* enum bpflb_fwd */
	__u8 stage;        /* enum bpflb_stage that emitted it */
	__u8 tcp_flags;    /* the TCP header's flags byte (FIN 0x01 .. CWR 0x80); 0 for UDP */
	__u32 ifindex;
	/* Network policy (reason BPFLB_DROP_POLICY, verdict DROPPED or AUDIT): the
	 * rule that decided, POL_RULE_ID() of plugins/policy; 0 otherwise. */
	__u32 rule_id;
};
_Static_assert(sizeof(struct bpflb_flow_event) == 48, "bpflb_flow_event layout");

/* Per-service counters, bpflb_svc_stats (per-CPU), keyed by service id.
 * fwd_* counts packets translated for the service in both directions. */
struct bpflb_svc_stats {
	__u64 fwd_packets;
	__u64 fwd_bytes;
	__u64 drop_packets;
	__u64 drop_bytes;
};
_Static_assert(sizeof(struct bpflb_svc_stats) == 32, "bpflb_svc_stats layout");

/*
 * Flow-event rate limit, bpflb_ev_rate[0] (per-CPU): a token bucket refilled at
 * bpflb_node_cfg.events_per_sec, holding at most one second of events.
 */
struct bpflb_ev_rate {
	__u64 last_ns;    /* time of the last refill */
	__u64 tokens;     /* events that may still be sent */
	__u64 sent;       /* events let through to bpflb_events */
	__u64 suppressed; /* events not written because the bucket was empty */
};
_Static_assert(sizeof(struct bpflb_ev_rate) == 32, "bpflb_ev_rate layout");

#endif
