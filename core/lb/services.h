/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Services: the [lb] and [service NAME] sections, what the pinned service maps
 * must hold for this node, and how to get them there by writing only the
 * difference; conntrack garbage collection; the kube-proxy compatible health
 * check servers of externalTrafficPolicy=Local services.
 *
 * Life cycle, driven by the daemon:
 *
 *   bpflb_services_open()     after the pipeline created the pinned maps; reads
 *                             them back, so that ids and entries survive a
 *                             daemon restart untouched
 *   bpflb_services_prepare()  on every candidate configuration, after the
 *                             schema checks passed: parses and checks every
 *                             service once, keeps the result
 *   bpflb_services_apply_prepared()  that result (start and SIGHUP)
 *   bpflb_services_ct_gc()    periodically (done by a timer when a loop is given)
 *   bpflb_services_close()    stop; the maps and their content stay pinned
 *
 * The [lb] and [service] formats are described in services_config.c, above
 * the section schema.
 */
#ifndef BPFLB_CORE_SERVICES_H
#define BPFLB_CORE_SERVICES_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <bpflb/config.h>
#include <bpflb/lb.h>

/* [lb] and [service NAME]; NULL-terminated, for the core's schema list. */
extern const struct bpflb_cfg_section_def *const bpflb_services_sections[];

struct bpflb_services;

/*
 * Entries of the shared pinned maps, [lb] max_services ... ct_size (defaults:
 * BPFLB_MAX_* in lb.h).  A pinned map keeps the size it was made with, so these
 * are fixed while a daemon runs and a pin of another size is refused.
 */
struct bpflb_map_sizes {
	uint32_t services; /* bpflb_svc, bpflb_svc_stats: max_services */
	uint32_t backends; /* bpflb_backends: max_backends */
	uint32_t slots;	   /* bpflb_slots: max_slots */
	uint32_t maglev;   /* bpflb_maglev: max_maglev_services */
	uint32_t ct;	   /* bpflb_ct: ct_size */
	uint32_t nodes;	   /* bpflb_peers: max_nodes */
};

/*
 * [lb], filled by the config engine (a typed section, bpflb/config.h).  lb_check
 * (services_config.c) checked what the schema cannot: the port ranges, the
 * Maglev size a prime.
 */
struct bpflb_lb_conf {
	int algorithm; /* index into random, maglev */
	uint32_t maglev_table_size;
	uint32_t hash_seed;
	char *snat_ports;     /* LOW-HIGH */
	char *nodeport_range; /* LOW-HIGH */
	/* seconds */
	uint32_t ct_tcp_timeout, ct_tcp_syn_timeout, ct_tcp_close_timeout, ct_udp_timeout;
	uint32_t ct_gc_interval;
	uint32_t healthz_bind; /* network order; 0: 0.0.0.0 or not written */
	int dsr_dispatch;      /* index into option, ipip */
	uint32_t events_per_sec;
	struct bpflb_map_sizes sizes; /* max_services ... max_nodes */
};

/* cfg's [lb]; the defaults when cfg is NULL or has no [lb] schema. */
const struct bpflb_lb_conf *bpflb_lb_conf(const struct bpflb_config *cfg);
/* The sizes cfg's [lb] asks for (the defaults when cfg or [lb] is absent). */
void bpflb_services_map_sizes(const struct bpflb_config *cfg, struct bpflb_map_sizes *out);
/*
 * The [lb] key sizing the shared map named map, with its entries in sizes;
 * NULL for a map of fixed size.
 */
const char *bpflb_map_size_key(const char *map, const struct bpflb_map_sizes *sizes,
			       uint32_t *entries);

/*
 * Open the maps pinned under pin_root (bpflb_svc, bpflb_slots, bpflb_backends,
 * bpflb_maglev, bpflb_node, bpflb_ct; bpflb_svc_stats when present) and read
 * their content: the id allocation and the "current" state the first apply
 * diffs against.  loop may be NULL: no health check servers, no GC timer (tests,
 * --check-config).  Returns 0 or -errno with err set.
 */
int bpflb_services_open(const char *pin_root, uv_loop_t *loop, struct bpflb_services **out,
			struct bpflb_err *err);
/* Release userspace state, close listeners; pinned maps keep their content. */
void bpflb_services_close(struct bpflb_services *s);

/*
 * Everything about cfg that would make apply fail for configuration reasons:
 * port lines, backends, node names, nodePort ranges and clashes, frontend
 * collisions, Maglev size, map capacities.  No side effects.
 */
int bpflb_services_validate(const struct bpflb_config *cfg, struct bpflb_err *err);

/*
 * bpflb_services_validate() that keeps what it parsed (the services model,
 * independent of cfg: cfg may be freed or released afterwards) in *out for
 * bpflb_services_apply_prepared(), so a reload parses each service once.
 * out NULL: validate only.
 */
struct bpflb_services_prepared;
int bpflb_services_prepare(const struct bpflb_config *cfg, struct bpflb_services_prepared **out,
			   struct bpflb_err *err);
void bpflb_services_prepared_free(struct bpflb_services_prepared *p);

/*
 * Make the maps hold what next asks for this node, writing only what differs,
 * in an order that never shows the datapath a dangling reference: frontends
 * that go away first (nothing refers to them; a full map needs the room),
 * then new backends, Maglev tables and slots, then the frontends using them;
 * a shrinking service's count before the slots it no longer counts; removed
 * backends last.  Health check listeners are bound before any map is written:
 * a port that cannot be bound fails the apply with nothing changed.
 *
 * next is not referenced after the call.  On a configuration error (-EINVAL)
 * nothing changed.  On a map error the maps may hold a mix of old and new, the
 * datapath still sees only consistent references, and the next apply re-reads
 * the maps and converges.
 */
int bpflb_services_apply(struct bpflb_services *s, const struct bpflb_config *next,
			 struct bpflb_err *err);
/* bpflb_services_apply() of a prepared configuration; p is consumed (freed) in any case. */
int bpflb_services_apply_prepared(struct bpflb_services *s, struct bpflb_services_prepared *p,
				  struct bpflb_err *err);

/*
 * Runtime override of a backend's state (control socket: `backend set-state`),
 * kept across reloads until cleared (and across restarts by the overlay): port 0 means every port of addr.
 * clear=true drops the override and returns the backend to its configured
 * state.  Re-applies the last configuration at once.  addr in network order.
 */
int bpflb_services_backend_set_state(struct bpflb_services *s, uint32_t addr, uint16_t port,
				     enum bpflb_backend_state state, bool clear,
				     struct bpflb_err *err);

/*
 * Runtime change of one service (control socket: `service set|delete`): the
 * applied model with [service NAME] replaced by sec (a section of a
 * configuration holding [service] sections only), or without it, checked like
 * a whole file and applied at once.  The service is then marked as coming
 * from the overlay (core/state/overlay.h), which keeps it across reloads by
 * passing it to bpflb_services_apply_overlay().  On any error nothing changed.
 */
int bpflb_services_svc_set(struct bpflb_services *s, const struct bpflb_cfg_section *sec,
			   struct bpflb_err *err);
int bpflb_services_svc_delete(struct bpflb_services *s, const char *name, struct bpflb_err *err);
/*
 * The overlay lets go of service name: it becomes what the file says again
 * (the file's def the entry hid), or goes away when the file has none.
 * No-op when name is not an overlay service.
 */
int bpflb_services_svc_clear(struct bpflb_services *s, const char *name, struct bpflb_err *err);
/* Does the running file (not the overlay) define service name? */
bool bpflb_services_svc_in_source(const struct bpflb_services *s, const char *name);
/* Every overlay service back to the file, every backend state override dropped. */
int bpflb_services_overlay_reset(struct bpflb_services *s, struct bpflb_err *err);
/* 0: as configured, 1: set by the overlay, 2: deleted by the overlay. */
int bpflb_services_svc_runtime(const struct bpflb_services *s, const char *name);
/* The idx-th service of the overlay; NULL past the end. */
const char *bpflb_services_runtime_at(const struct bpflb_services *s, size_t idx, bool *deleted);
/* The idx-th backend state override (port 0: every port); false past the end. */
bool bpflb_services_override_at(const struct bpflb_services *s, size_t idx, uint32_t *addr,
				uint16_t *port, uint8_t *state);

/* One overlay service: [service name] is sec, or is absent (sec NULL). */
struct bpflb_services_svc_edit {
	const char *name;
	const struct bpflb_cfg_section *sec;
};
/*
 * bpflb_services_apply_prepared() with the overlay's services on top of the
 * prepared model p (consumed, also on error); they are what
 * bpflb_services_svc_runtime() reports afterwards.  An edit that no longer
 * fits fails the whole apply with its name; nothing changed.
 */
int bpflb_services_apply_overlay(struct bpflb_services *s, struct bpflb_services_prepared *p,
				 const struct bpflb_services_svc_edit *edits, size_t nedits,
				 struct bpflb_err *err);

/*
 * Would the overlay's services fit the prepared model p (what
 * bpflb_services_apply_overlay() checks, without applying)?  p is changed
 * (the edits put in) and still the caller's.
 */
int bpflb_services_overlay_check(struct bpflb_services_prepared *p,
				 const struct bpflb_services_svc_edit *edits, size_t nedits,
				 struct bpflb_err *err);

struct bpflb_backend_override {
	uint32_t addr; /* network order */
	uint16_t port; /* 0: every port */
	uint8_t state;
};
/* Replace the backend state overrides; they take effect with the next apply. */
int bpflb_services_set_overrides(struct bpflb_services *s, const struct bpflb_backend_override *o,
				 size_t n);

/* --- drift ---------------------------------------------------------------- */

enum {
	BPFLB_REPAIR_SVC,
	BPFLB_REPAIR_BACKENDS,
	BPFLB_REPAIR_SLOTS,
	BPFLB_REPAIR_MAGLEV,
	BPFLB_REPAIR_NODE,
	BPFLB_REPAIR_NMAPS
};
#define BPFLB_REPAIR_KEYS_SHOWN 8

/* What one resync wrote, per map (index: BPFLB_REPAIR_*). */
struct bpflb_services_repairs {
	uint64_t n[BPFLB_REPAIR_NMAPS];
	char keys[BPFLB_REPAIR_NMAPS][BPFLB_REPAIR_KEYS_SHOWN * 48 + 8]; /* the first few */
};
/* "bpflb_svc", ... for a BPFLB_REPAIR_* index; NULL past the end. */
const char *bpflb_repair_map_name(unsigned int i);
/*
 * Re-read the pinned maps and write what differs from the state last applied
 * (entries deleted or changed by someone else), ids unchanged.  r counts the
 * writes per map.  0 or -errno (err set); on a write error the next apply or
 * resync reads the maps again.
 */
int bpflb_services_resync(struct bpflb_services *s, struct bpflb_services_repairs *r,
			  struct bpflb_err *err);

/* --- what is applied, for the control socket and metrics ------------------ */

/* "service/port" of a service-port id, NULL when unknown (e.g. not named since a restart). */
const char *bpflb_services_svc_key(const struct bpflb_services *s, uint32_t id);
/* Applied backend of an id; false when none. */
bool bpflb_services_backend_get(const struct bpflb_services *s, uint32_t id,
				struct bpflb_backend *out);
/* The idx-th applied backend (by id); 0 past the end. */
size_t bpflb_services_backend_at(const struct bpflb_services *s, size_t idx, uint32_t *id,
				 struct bpflb_backend *out);
/* fd of an opened pinned map: bpflb_ct, bpflb_svc_stats, bpflb_svc, bpflb_backends,
 * bpflb_slots, bpflb_maglev; negative when not open. */
int bpflb_services_map_fd(const struct bpflb_services *s, const char *name);
/* Read the Maglev table of a service-port id (m entries). */
int bpflb_services_maglev_table(struct bpflb_services *s, uint32_t svc_id, uint32_t *table,
				uint32_t m);

/* Service-port id of [service name] port port_name in the applied state; 0 when none. */
uint32_t bpflb_services_svc_id(const struct bpflb_services *s, const char *name,
			       const char *port_name);
/* Backend id of addr:port (network / host order) in the applied state; 0 when none. */
uint32_t bpflb_services_backend_id(const struct bpflb_services *s, uint32_t addr, uint16_t port);

/* The load-balancing maps a plan writes (lb/plan.h), for per-map counts. */
enum bpflb_lb_map {
	BPFLB_LBMAP_NODE,     /* bpflb_node */
	BPFLB_LBMAP_SVC,      /* bpflb_svc: frontends */
	BPFLB_LBMAP_SLOTS,    /* bpflb_slots */
	BPFLB_LBMAP_BACKENDS, /* bpflb_backends */
	BPFLB_LBMAP_MAGLEV,   /* bpflb_maglev */
	BPFLB_LBMAP_STATS,    /* bpflb_svc_stats: counters of departed ids reset */
	BPFLB_LBMAP_COUNT,
};

/*
 * What the last successful apply changed: [service] sections, backends
 * (address:port) and frontends (address, port, protocol) added, removed or
 * changed, and the map operations it took (stats resets are not writes).
 * Logged as one line per reload.
 */
struct bpflb_services_summary {
	uint32_t svc_added, svc_removed, svc_changed;
	uint32_t be_added, be_removed, be_changed;
	uint32_t fe_added, fe_removed, fe_changed;
	uint64_t map_writes;
	uint64_t per_map[BPFLB_LBMAP_COUNT]; /* planned operations by map */
};
void bpflb_services_summary(const struct bpflb_services *s, struct bpflb_services_summary *out);
/* "+2 -1 ~3 services, +4 -0 ~1 backends, +2 -1 ~0 frontends (17 map writes)" */
void bpflb_services_summary_str(const struct bpflb_services_summary *sum, char *buf, size_t len);

struct bpflb_services_counts {
	uint32_t services;  /* [service] sections applied on this node */
	uint32_t frontends; /* bpflb_svc entries */
	uint32_t svc_ports; /* service-port ids */
	uint32_t backends;  /* bpflb_backends entries */
	uint32_t slots;
	uint32_t maglev;     /* Maglev tables */
	uint32_t healthz;    /* health check listeners */
	uint64_t map_writes; /* updates + deletes done by the last apply */
};
void bpflb_services_counts(const struct bpflb_services *s, struct bpflb_services_counts *c);

/* --- conntrack garbage collection --------------------------------------- */

struct bpflb_ct_timeouts {
	uint64_t tcp_syn_ns;   /* BPFLB_CT_NEW, TCP */
	uint64_t tcp_est_ns;   /* BPFLB_CT_ESTABLISHED, TCP */
	uint64_t tcp_close_ns; /* BPFLB_CT_CLOSING, TCP */
	uint64_t udp_ns;       /* UDP (and anything not TCP), every state */
};

/* Defaults of [lb] ct_*_timeout: 60 s, 6 h, 10 s, 60 s. */
extern const struct bpflb_ct_timeouts bpflb_ct_default_timeouts;

uint64_t bpflb_ct_timeout_ns(const struct bpflb_ct_timeouts *t, uint8_t proto, uint8_t state);

struct bpflb_ct_gc_stats {
	uint64_t scanned;  /* entries read */
	uint64_t expired;  /* deleted because they and their partner timed out */
	uint64_t orphaned; /* deleted because their backend no longer exists */
	uint64_t kept;	   /* timed out, kept because the partner is still alive */
};

/*
 * Delete from the conntrack map ct_fd (bpflb_ct layout):
 *  - a pair (FWD entry + its REV partner, see lb.h) once both timed out, or
 *    one timed out and the other is missing (last_seen + timeout < now_ns);
 *  - the backend node's half of a DSR flow once idle past its timeout, a
 *    short one when it saw FIN from both sides or an RST (lb.h);
 *  - a pair whose backend_id is not 0 and backend_live(ctx, backend_id) is
 *    false (a DSR backend half has none), right away: the backend was
 *    removed, the flow cannot continue, and its next packet should start a
 *    new flow to a live backend instead of holding a reference to an id
 *    that may be reused one day.
 * backend_live may be NULL (no orphan check).  now_ns is CLOCK_MONOTONIC, as
 * bpf_ktime_get_ns().  An entry the datapath refreshed while we scanned is kept.
 * Returns 0 or -errno; st (may be NULL) is filled in either case.
 */
int bpflb_ct_gc(int ct_fd, const struct bpflb_ct_timeouts *t, uint64_t now_ns,
		bool (*backend_live)(void *ctx, uint32_t backend_id), void *ctx,
		struct bpflb_ct_gc_stats *st);

/* What the periodic conntrack GC did since open. */
struct bpflb_services_gc {
	uint64_t runs;
	uint64_t errors;
	struct bpflb_ct_gc_stats total;
	struct bpflb_ct_gc_stats last;
};
void bpflb_services_gc_stats(const struct bpflb_services *s, struct bpflb_services_gc *out);

/* The key of the other entry of a flow (see lb.h); false for an unknown kind. */
bool bpflb_ct_partner(const struct bpflb_ct_key *k, const struct bpflb_ct_val *v,
		      struct bpflb_ct_key *p);

/* bpflb_ct_gc() on the pinned bpflb_ct with the applied timeouts and backends. */
int bpflb_services_ct_gc(struct bpflb_services *s, uint64_t now_ns, struct bpflb_ct_gc_stats *st);

/* CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns(). */
uint64_t bpflb_mono_ns(void);

#endif
