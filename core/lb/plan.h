/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The reconcile step of the load-balancing maps, as data:
 *
 *     plan = plan_diff(desired, actual)     pure: no map is touched
 *     plan_commit(plan, maps)               the writes, in the plan's order
 *
 * `struct dstate` is one picture of the maps bpflb_svc, bpflb_slots,
 * bpflb_backends, bpflb_maglev and bpflb_node: what the model asks for
 * (desired, services.c compute()) or what the maps hold (actual, read back by
 * state_read() or kept from the last commit).  A plan is the list of map
 * operations that turns actual into desired, in the one order that never
 * shows the datapath a dangling reference (see plan_diff()).  Every change
 * of the service maps goes through services.c apply_model() (compute the
 * whole desired state + plan_diff + plan_commit) or, when only a few services
 * changed, apply_change() (their part of the state, services_change.c, +
 * plan_diff of the parts + plan_commit + dstate_merge()).
 *
 * plan_render() prints a plan one operation per line: the golden tests
 * compare it, the daemon logs it at debug level.
 */
#ifndef BPFLB_CORE_LB_PLAN_H
#define BPFLB_CORE_LB_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <bpflb/config.h>
#include <bpflb/lb.h>

#include "lb/healthz.h"
#include "lb/maglev.h"
#include "lb/services.h"

/* --- pictures of the maps --------------------------------------------------- */

struct dfe { /* one bpflb_svc entry: a frontend */
	struct bpflb_svc_key key;
	struct bpflb_svc val;
};

struct dbe { /* one bpflb_backends entry */
	uint32_t id;
	struct bpflb_backend val;
};

struct dsp { /* one service port: its slots and Maglev table */
	uint32_t id;
	char *key;	 /* "svc/port"; NULL when read back from the maps */
	uint32_t nslots;
	uint32_t *slots; /* backend ids; 0 marks a hole read back from the maps */
	bool maglev;	 /* has a table in bpflb_maglev */
	bool sig_known;	 /* sig describes that table */
	uint64_t sig;
	struct bpflb_maglev_backend *mg; /* desired only: the table's inputs */
	uint32_t nmg;
};

struct dstate {
	struct dfe *fe; /* sorted by key (memcmp) */
	size_t nfe;
	struct dbe *be; /* sorted by id */
	size_t nbe;
	struct dsp *sp; /* sorted by id */
	size_t nsp;
	struct bpflb_node_cfg node;
	bool has_node;
	struct bpflb_healthz_svc *hz; /* desired only */
	size_t nhz;
	uint32_t nservices; /* [service] sections with frontends here */
};

void dstate_free(struct dstate *st);
struct dfe *dstate_fe(const struct dstate *st, const struct bpflb_svc_key *k);
struct dbe *dstate_be(const struct dstate *st, uint32_t id);
struct dsp *dstate_sp(const struct dstate *st, uint32_t id);
/* Sort fe, be and sp into the orders the lookups above expect. */
void dstate_sort(struct dstate *st);
/* Free the arrays of a view (a dstate whose sp pointers belong to another). */
void dstate_free_view(struct dstate *st);
/*
 * cur becomes cur with what the part C held replaced by the part D (both
 * sorted; C a view into cur): entries of C that D lacks go, entries of D are
 * added or replace cur's.  D's pointers move into cur; D and C are emptied.
 * Linear in cur, no allocation but the new arrays: -ENOMEM leaves cur as it was.
 */
int dstate_merge(struct dstate *cur, struct dstate *D, struct dstate *C);

/* --- the plan ---------------------------------------------------------------- */

enum plan_kind {
	PLAN_UPDATE,
	PLAN_DELETE, /* bpflb_svc_stats: reset the counters of a departed id */
};

struct plan_op {
	uint8_t map;  /* enum bpflb_lb_map */
	uint8_t kind; /* enum plan_kind */
	/*
	 * Maglev update right after a restart: the table in the map was made by
	 * the previous daemon; keep it when it is what we would build.
	 */
	bool keep_same;
	union {
		struct bpflb_svc_key svc;
		struct bpflb_slot_key slot;
		uint32_t id; /* backends, maglev, stats: the id; node: 0 */
	} key;
	union {
		struct bpflb_svc svc;
		uint32_t backend_id; /* slots */
		struct bpflb_backend be;
		struct bpflb_node_cfg node;
		const struct dsp *mg; /* maglev: the desired service port (inputs, name) */
	} val;
};

struct plan {
	struct plan_op *ops;
	size_t n, cap;
	uint64_t per_map[BPFLB_LBMAP_COUNT]; /* ops by map (stats resets included) */
};

void plan_free(struct plan *p);

/*
 * The operations that turn actual C into desired D.  Order:
 *  1. bpflb_node when it differs;
 *  2. frontends that go away (nothing refers to a frontend; a map near its
 *     capacity needs the room);
 *  3. service ports that went away: their slots, table, counters;
 *  4. backends new or changed, except those leaving "active";
 *  5. Maglev tables and slots of the service ports, new and changed;
 *  6. frontends new and changed: they now refer to what 4 and 5 wrote;
 *  7. slots a shrinking service port no longer counts, tables it no longer uses;
 *  8. backends leaving "active": no slot or table offers them any more;
 *  9. backends nothing refers to.
 * Returns 0 or -ENOMEM.
 */
int plan_diff(const struct dstate *D, const struct dstate *C, struct plan *p);

/* What the commit writes to: the opened maps and their kind. */
struct plan_maps {
	int fd[BPFLB_LBMAP_COUNT]; /* fd_stats may be -1 */
	uint32_t be_type;	   /* BPF_MAP_TYPE_ARRAY: a removed backend is zeroed */
	uint32_t stats_type, stats_vsize;
	uint32_t mg_inner_m, mg_inner_flags; /* of the tables in the map; 0: unknown */
	uint32_t maglev_m, hash_seed;	     /* of the desired tables */
};

/*
 * Execute p in order.  *writes counts the updates and deletes made (also on
 * failure).  Stops at the first error with err set: the maps then hold a mix
 * of old and new that the datapath can use, and the caller must treat its
 * picture of them as stale.
 */
int plan_commit(const struct plan *p, const struct plan_maps *maps, uint64_t *writes,
		struct bpflb_err *err);
/* plan_commit() calling written(ctx, op) after each op that wrote to a map (the drift check). */
int plan_commit_each(const struct plan *p, const struct plan_maps *maps, uint64_t *writes,
		     void (*written)(void *ctx, const struct plan_op *op), void *ctx,
		     struct bpflb_err *err);

/* Added / removed / changed services, backends and frontends of a plan. */
void plan_summarize(const struct plan *p, const struct dstate *D, const struct dstate *C,
		    struct bpflb_services_summary *out);

/* One line per operation, e.g. "svc update 10.0.0.1:80/tcp id=1 count=2 total=2 flags=-". */
void plan_render(const struct plan *p, FILE *out);
const char *plan_map_name(unsigned int map);

/* Read the m entries of the Maglev table of id from the outer map fd_mg. */
int plan_maglev_read(int fd_mg, uint32_t id, uint32_t m, uint32_t *table);

#endif
