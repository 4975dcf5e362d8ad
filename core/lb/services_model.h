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

struct svc_port {
	char name[SVC_NAME_LEN];
	uint8_t proto;	   /* IPPROTO_TCP / IPPROTO_UDP */
	uint16_t port;	   /* service port on LB/external IPs; the host port of a hostport */
	uint16_t nodeport; /* 0: none */
	uint16_t target;   /* backend port unless a backend overrides it */
	int line;
};

struct svc_backend {
	uint32_t addr;	 /* network order */
	uint16_t port;	 /* ADDR:PORT override, 0 none */
	uint16_t *pport; /* port.NAME=N overrides per port index (0 none); NULL: none */
	char node[SVC_NAME_LEN];
	uint8_t state; /* enum bpflb_backend_state */
	bool hostnet;
	int line;
};

struct svc_def {
	char name[SVC_NAME_LEN];
	char ns[SVC_NAME_LEN];
	enum svc_type type;
	struct svc_port *ports;
	unsigned int nports;
	struct svc_backend *bes;
	unsigned int nbes;
	uint32_t *lb_ips;
	unsigned int nlb;
	uint32_t *ext_ips;
	unsigned int next;
	bool etp_local;
	bool reject;
	enum svc_alg alg; /* resolved against [lb] algorithm */
	bool alg_set;
	enum svc_fwd fwd;
	uint16_t hc_port;
	uint32_t host_ip; /* hostport: configured or chosen; network order */
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

struct svc_model {
	struct svc_lb lb;
	struct svc_node self;
	struct svc_node *nodes; /* every known node, self first */
	unsigned int nnodes;
	struct svc_def *svcs;
	unsigned int nsvcs;
};

int svc_model_build(const struct bpflb_config *cfg, struct svc_model *m, struct bpflb_err *err);
/*
 * m = base with [service name] replaced by the section sec (added when absent)
 * or removed (sec NULL), checked across services as svc_model_build() does.
 */
int svc_model_replace(const struct svc_model *base, const char *name,
		      const struct bpflb_cfg_section *sec, struct svc_model *m,
		      struct bpflb_err *err);
/* The model the services object applied last; NULL before the first apply. */
const struct svc_model *svc_services_model(const struct bpflb_services *s);
void svc_model_free(struct svc_model *m);
const struct svc_node *svc_model_node(const struct svc_model *m, const char *name);

/* A runtime override of a backend's state (`backend set-state`). */
struct svc_ovr {
	uint32_t addr;
	uint16_t port; /* 0: every port */
	uint8_t state;
};

struct dstate;

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

/* Port a backend listens on for port index pi of its service (host order). */
static inline uint16_t svc_backend_port(const struct svc_def *d, const struct svc_backend *b,
					unsigned int pi)
{
	if (b->pport && b->pport[pi])
		return b->pport[pi];
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
/* Parse a DURATION value ("30", "30s", "5m", "1h") into seconds. */
int svc_parse_duration(const char *s, uint64_t *sec);

#endif
