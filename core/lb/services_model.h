/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The services model: what [lb], [node], [cluster-node] and [service] sections
 * say, parsed and checked, in memory the configuration does not own (so that a
 * runtime override can re-apply it after the configuration is gone).  Internal
 * to services*.c and their tests.
 */
#ifndef BPFLB_CORE_SERVICES_MODEL_H
#define BPFLB_CORE_SERVICES_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <bpflb/config.h>
#include <bpflb/lb.h>

#include "lb/services.h"

#define SVC_NAME_LEN		 64
#define SVC_MAX_NODE_ADDRS	 16
#define SVC_MAX_PORTS		 64
#define SVC_MAX_BACKENDS_PER_SVC 65535 /* bpflb_svc.total is a __u16 */

enum svc_type {
	SVC_T_NODEPORT = 0,
	SVC_T_LOADBALANCER,
	SVC_T_EXTERNALIP,
	SVC_T_HOSTPORT,
};

enum svc_alg {
	SVC_ALG_RANDOM = 0,
	SVC_ALG_MAGLEV,
};

enum svc_fwd {
	SVC_FWD_AUTO = 0,
	SVC_FWD_SNAT,
	SVC_FWD_DSR,
};

/*
 * One [service]: every array and string of a def lives in the one allocation
 * of the def (svc_def_pack()), so a model of 100k services is 100k
 * allocations of a few hundred bytes and holds no text of the configuration.
 */
struct svc_port {
	const char *name;
	uint8_t proto;	   /* IPPROTO_TCP / IPPROTO_UDP */
	uint16_t port;	   /* service port on LB/external IPs; the host port of a hostport */
	uint16_t nodeport; /* 0: none */
	uint16_t target;   /* backend port unless a backend overrides it */
	int line;
};

struct svc_backend {
	uint32_t addr; /* network order */
	uint16_t port; /* ADDR:PORT override, 0 none */
	uint16_t node; /* index into svc_model.nodes: 0 is this node */
	uint8_t state; /* enum bpflb_backend_state */
	bool hostnet;
	uint16_t pport; /* port.NAME=N overrides: row pport-1 of svc_def.pport; 0 none */
	int line;
};

struct svc_def {
	const char *name;
	const char *ns;
	struct svc_port *ports;
	struct svc_backend *bes;
	uint16_t *pport; /* rows of nports backend ports (0: none), see svc_backend.pport */
	uint32_t *lb_ips;
	uint32_t *ext_ips;
	unsigned int nports, nbes, nlb, next, npport;
	enum svc_type type;
	enum svc_alg alg; /* resolved against [lb] algorithm */
	enum svc_fwd fwd;
	bool alg_set;
	bool etp_local;
	bool reject;
	uint16_t hc_port;
	uint32_t host_ip; /* hostport: configured or chosen; network order */
	/*
	 * Of everything above but lines and pointers (64-bit FNV-1a): a reload
	 * takes a service at the same place with the same hash as unchanged
	 * (services.c reload_changes()); svc_def_same() compares in full.
	 */
	uint64_t hash;
	/* only while the configuration is alive (during svc_model_build) */
	const struct bpflb_cfg_section *sec;
};

struct svc_node {
	char name[SVC_NAME_LEN];
	uint32_t addrs[SVC_MAX_NODE_ADDRS]; /* [0]: address; then external_addresses */
	unsigned int naddrs;
};

struct svc_lb {
	enum svc_alg alg;
	uint32_t maglev_m;
	uint32_t hash_seed;
	uint16_t snat_min, snat_max;
	uint16_t np_min, np_max;
	struct bpflb_ct_timeouts ct;
	uint64_t gc_interval_ms;
	uint32_t events_per_sec; /* bpflb_node_cfg.events_per_sec */
	uint32_t hz_bind;	 /* network order */
	bool hz_bind_set;
	bool dsr_ipip; /* [lb] dsr_dispatch = ipip: BPFLB_NODE_F_DSR_IPIP */
	struct bpflb_map_sizes sizes; /* [lb] max_services ... ct_size */
	const struct bpflb_cfg_section *sec; /* [lb], NULL when absent; only while building */
};

struct svc_model_idx; /* services_config.c: indexes for changing one service */

struct svc_model {
	struct svc_lb lb;
	struct svc_node self;
	struct svc_node *nodes; /* every known node, self first */
	unsigned int nnodes;
	struct svc_def **svcs; /* in file order (runtime additions last) */
	uint64_t *hashes;      /* svcs[i]->hash, beside: a reload compares without touching defs */
	unsigned int nsvcs, cap;
	struct svc_def **by_name; /* open addressing by name; NULL empty */
	uint32_t nbuckets;	  /* a power of two, >= 2 nsvcs */
	/* what the services need of the maps, for the capacity checks */
	size_t nfe, nsp, nslots, nmaglev;
	struct svc_model_idx *idx; /* built on the first svc_model_set() */
};

int svc_model_build(const struct bpflb_config *cfg, struct svc_model *m, struct bpflb_err *err);
void svc_model_free(struct svc_model *m);
const struct svc_node *svc_model_node(const struct svc_model *m, const char *name);
/* [service name] of m; NULL when none. */
struct svc_def *svc_model_find(const struct svc_model *m, const char *name);
/* Do a and b say the same (lines and node indexes aside: same nodes assumed)? */
bool svc_def_same(const struct svc_def *a, const struct svc_def *b);
void svc_def_free(struct svc_def *d);
/* Are the [lb] settings and the nodes of a and b the same (ids of nodes included)? */
bool svc_model_same_base(const struct svc_model *a, const struct svc_model *b);

/*
 * The def [service name] would become with section sec (a configuration of
 * [service] sections only, the control socket's), checked on its own and
 * against every other service of m as svc_model_build() checks a file, by
 * index lookups (no pass over m).  *out: the new def (NULL when sec is NULL:
 * a delete); *old: the def it replaces, NULL when none.  m is not changed.
 */
int svc_model_check_set(struct svc_model *m, const char *name, const struct bpflb_cfg_section *sec,
			struct svc_def **out, struct svc_def **old, struct bpflb_err *err);
/*
 * svc_model_check_set() of a def already built from m's nodes (the file's
 * def an overlay entry hid, put back when the entry is cleared); nd is not
 * taken over.  nd NULL: a delete.
 */
int svc_model_check_def(struct svc_model *m, const char *name, struct svc_def *nd,
			struct svc_def **old, struct bpflb_err *err);
struct svc_change;
/*
 * Put nd in the place of od in m (either may be NULL; od is not freed, so that
 * svc_model_set(m, nd, od, pos) undoes it).  pos: where od is likely to be
 * (looked for from there), or where nd goes when od is NULL (past the end:
 * last).  -ENOMEM: m unchanged; never after svc_model_reserve() of the change.
 */
int svc_model_set(struct svc_model *m, struct svc_def *od, struct svc_def *nd, unsigned int pos);
/* Room in m for the changes ch[0..nch) made by svc_model_set(), both ways. */
int svc_model_reserve(struct svc_model *m, const struct svc_change *ch, size_t nch);

/* Compute every change whole, as before services_change.c (bench/ctrl_bench.c compares). */
void svc_services_force_whole(struct bpflb_services *s, bool on);
/* The model the services object applied last; NULL before the first apply. */
const struct svc_model *svc_services_model(const struct bpflb_services *s);

static inline bool svc_be_local(const struct svc_backend *b)
{
	return b->node == 0;
}

static inline const char *svc_be_node(const struct svc_model *m, const struct svc_backend *b)
{
	return m->nodes[b->node].name;
}

/* A runtime override of a backend's state (`backend set-state`). */
struct svc_ovr {
	uint32_t addr;
	uint16_t port; /* 0: every port */
	uint8_t state;
};

struct dstate;
struct dsp;
struct dbe;

/* What the desired state depends on besides the model. */
struct svc_input {
	const struct dstate *cur; /* actual (lb/plan.h): ids are kept from it; NULL: none */
	const struct svc_ovr *ovr;
	size_t novr;
	uint32_t next_be_id, next_svc_id; /* id cursors (start at 1), advanced */
	bool log; /* note what only the apply should tell */
};

/*
 * The state the maps must hold for model m on this node (lb/plan.h): ids by
 * the rules at the top of services.c.  Fails only on memory or a full id space.
 */
int svc_compute(const struct svc_model *m, struct svc_input *in, struct dstate *D,
		struct bpflb_err *err);

/* --- pieces of svc_compute(), shared with svc_compute_change() ------------- */

/* Bitmap of ids in use, [0, max). */
struct svc_idset {
	uint64_t *w;
	uint32_t max;
};
int svc_idset_init(struct svc_idset *s, uint32_t max);
bool svc_idset_has(const struct svc_idset *s, uint32_t id);
void svc_idset_add(struct svc_idset *s, uint32_t id);
/* Next free id in [1, max) from *cursor on, round robin; 0 when full. */
uint32_t svc_idset_alloc(struct svc_idset *s, uint32_t *cursor);

struct svc_be_ident {
	uint32_t addr;		     /* network order */
	uint16_t port;		     /* host order */
	const struct svc_backend *b; /* as configured */
	const struct dbe *e;	     /* its entry: current or desired */
};
int svc_ident_cmp(const void *a, const void *b); /* address, then port */
int svc_mg_cmp(const void *a, const void *b);
uint64_t svc_fnv1a(uint64_t h, const void *p, size_t n);
char *svc_sp_key(const char *svc, const char *port);
uint8_t svc_ovr_state(const struct svc_input *in, uint32_t addr, uint16_t port, uint8_t state);
void svc_be_fill(const struct svc_model *m, const struct svc_input *in, const struct svc_backend *b,
		 uint32_t addr, uint16_t port, const struct dbe *prev, struct dbe *e);
int svc_port_fill(const struct svc_model *m, const struct svc_def *d, unsigned int pi,
		  const struct bpflb_svc_key *keys, unsigned int nk, struct dsp *sp,
		  const struct svc_be_ident *ids, size_t nids, struct dstate *D);
void svc_hz_add(const struct svc_model *m, const struct svc_def *d, const struct svc_input *in,
		struct dstate *D);

/* --- changing a few services (services_change.c) ------------------------------ */

/*
 * What the applied state knows beyond `cur` to change a few services without
 * a pass over all of them: each backend (address:port) with its id and how
 * many service ports on this node use it, and the ids in use.  Built from the
 * model and cur after a full computation; kept by svc_stidx_commit().
 */
struct svc_be_slot {
	uint64_t key; /* svc_be_key(); 0: empty */
	uint32_t id;  /* 0: not in cur yet */
	uint32_t refs;
};

struct svc_stidx {
	struct svc_be_slot *be;
	size_t cap, n; /* cap: a power of two */
	struct svc_idset be_used, svc_used;
	bool valid;
};

/* One service changed: old (applied) -> new; either NULL for an add or a delete. */
struct svc_change {
	const struct svc_def *old, *new;
	unsigned int pos; /* new's place in its model; a removal: old's place */
};

int svc_stidx_build(struct svc_stidx *ix, const struct svc_model *m, const struct dstate *cur);
void svc_stidx_free(struct svc_stidx *ix);

/*
 * The part of the state the changed services ch[0..nch) make: D, what the maps
 * must hold for their new defs (plus the backends of their old defs other
 * services still use), and C, the part of in->cur their old defs made (a
 * view: C's pointers belong to in->cur; free it with dstate_free_view()).
 * plan_diff(D, C) is then the plan of the change, the same operations as
 * plan_diff() of the whole desired state against in->cur.  m: the [lb] and
 * nodes both defs were built against (same for old and new).  Ids follow the
 * rules of svc_compute().  On error ix is invalid (svc_stidx_build() again).
 */
int svc_compute_change(const struct svc_model *m, const struct svc_change *ch, size_t nch,
		       struct svc_input *in, struct svc_stidx *ix, struct dstate *D,
		       struct dstate *C, struct bpflb_err *err);
/* After D was committed: ix learns the new ids and forgets what C alone held. */
void svc_stidx_commit(struct svc_stidx *ix, const struct dstate *D, const struct dstate *C);

/* Port a backend listens on for port index pi of its service (host order). */
static inline uint16_t svc_backend_port(const struct svc_def *d, const struct svc_backend *b,
					unsigned int pi)
{
	if (b->pport && d->pport[(size_t)(b->pport - 1) * d->nports + pi])
		return d->pport[(size_t)(b->pport - 1) * d->nports + pi];
	if (b->port)
		return b->port;
	return d->ports[pi].target;
}

/* Does the service have frontends on this node (a hostport only where its pod runs)? */
bool svc_on_node(const struct svc_model *m, const struct svc_def *d);
/* Upper bound of svc_frontends() for any port of d. */
unsigned int svc_max_frontends(const struct svc_model *m, const struct svc_def *d);
/* Frontend keys of port pi of d on this node, into out[]; returns how many. */
unsigned int svc_frontends(const struct svc_model *m, const struct svc_def *d, unsigned int pi,
			   struct bpflb_svc_key *out);
/* Can b take new flows of d on this node, given its (possibly overridden) state? */
bool svc_backend_selectable(const struct svc_model *m, const struct svc_def *d,
			    const struct svc_backend *b, uint8_t state);

/*
 * Read every entry of a map (batch lookups when the kernel has them): *keys
 * and *vals are malloc'ed arrays of *n entries.  Returns 0 or -errno.
 */
int svc_map_dump(int fd, uint32_t ksz, uint32_t vsz, void **keys, void **vals, size_t *n);

/* Not a public address: RFC 1918, RFC 6598 shared, and the other non-public blocks. */
bool svc_ip_private(uint32_t addr_be);
/* Parse "A-B" within 1..65535, A <= B. */
int svc_parse_range(const char *s, uint16_t *lo, uint16_t *hi);

#endif
