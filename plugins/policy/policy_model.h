/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The policy plugin's userspace model: CiliumClusterwideNetworkPolicy objects as
 * read from YAML (policy_yaml.c), the node's inventory of addresses and labels
 * (from the INI configuration), and what the two compile to (policy_compile.c):
 * the identities, rule sets and subjects that policy.c writes into the maps.
 *
 * Nothing here touches BPF or the daemon, so the tests parse and compile without
 * either.
 */
#ifndef POLICY_MODEL_H
#define POLICY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy_structs.h"

/* Messages name the file, the line and the field: "FILE:LINE: spec.ingress[0]...: ..." */
#define POL_ERR_MAX 1024

/*
 * Limits of one policy file, checked before anything else reads it: a file is
 * read whole with one bounded read, and libyaml's events are counted before
 * the document is built, so that a hostile or broken file costs at most a few
 * milliseconds of the reload that reads it.  libyaml's scanner is quadratic in
 * the nesting depth (70k nested '[' took 14 s), so the depth check runs on the
 * event stream, where the scanner never gets deeper than the limit plus its
 * 1024-character lookahead.
 */
#define POL_FILE_MAX  (1u << 20) /* bytes per file: larger ones are refused */
#define POL_DEPTH_MAX 32	 /* nested lists and mappings */
#define POL_NODES_MAX (1u << 18) /* scalars, lists and mappings per file */
#define POL_KEYS_MAX  256	 /* keys of one mapping */

/* The metadata annotation that puts one policy in audit mode. */
#define POL_AUDIT_ANNOTATION "policy.bpflb.io/audit-mode"

/* --- parsed policies ------------------------------------------------------ */

enum pol_op { POL_OP_IN, POL_OP_NOT_IN, POL_OP_EXISTS, POL_OP_DOES_NOT_EXIST };

struct pol_label {
	char *key; /* without a "k8s:" or "any:" source prefix */
	char *value;
};

struct pol_expr {
	char *key;
	enum pol_op op;
	char **values;
	size_t nvalues;
};

/* A label selector; the empty selector {} selects everything of its kind. */
struct pol_selector {
	struct pol_label *labels;
	size_t nlabels;
	struct pol_expr *exprs;
	size_t nexprs;
	uint32_t reserved; /* POL_ENT_* named by "reserved:..." keys of matchLabels */
	int line;
};

struct pol_prefix {
	uint32_t addr; /* network byte order, host bits clear */
	uint8_t plen;
};

struct pol_cidr {
	struct pol_prefix net;
	struct pol_prefix *except;
	size_t nexcept;
	int line;
};

struct pol_port {
	uint16_t port, end; /* host order; 0-65535 for "any port" */
	uint8_t proto;	    /* IPPROTO_TCP, IPPROTO_UDP, or 0 for ANY (TCP and UDP) */
	int line;
};

/* Entities (fromEntities / toEntities), and identity flags of the same names. */
#define POL_ENT_HOST	    (1u << 0)
#define POL_ENT_REMOTE_NODE (1u << 1)
#define POL_ENT_APISERVER   (1u << 2)
#define POL_ENT_CLUSTER	    (1u << 3)
#define POL_ENT_WORLD	    (1u << 4)
#define POL_ENT_ALL	    (1u << 5)
#define POL_ENT_ENDPOINT    (1u << 6) /* identity flag only: a workload */

enum pol_section { POL_SEC_INGRESS, POL_SEC_INGRESS_DENY, POL_SEC_EGRESS, POL_SEC_EGRESS_DENY };

struct pol_rule {
	enum pol_section sec;
	unsigned int index; /* position in its list: spec.ingress[index] */
	int line;
	unsigned int ordinal; /* 1-based over the policy's rules of this section: the n
			       * of POL_RULE_ID(policy, sec, n) */
	bool any_peer;	      /* no peer field at all and toPorts: every peer */
	uint32_t entities;    /* POL_ENT_* */
	struct pol_cidr *cidrs;
	size_t ncidrs;
	struct pol_selector *endpoints;
	size_t nendpoints;
	struct pol_port *ports; /* none: every protocol and port (L3 rule) */
	size_t nports;
};

struct pol_spec {
	int line;
	bool node; /* nodeSelector (host policy) rather than endpointSelector */
	struct pol_selector subject;
	struct pol_rule *rules;
	size_t nrules;
	/* Default deny per direction: -1 not set (true when the spec has rules in
	 * that direction), 0 or 1 from enableDefaultDeny. */
	int default_deny[2];
	bool has_rules[2]; /* non-empty ingress/ingressDeny, egress/egressDeny */
	char *description;
};

struct pol_policy {
	char *name;
	char *file;
	int line;
	bool audit;  /* the annotation; [policy] audit_mode applies on top */
	uint32_t id; /* 1..POL_MAX_POLICIES, stable across reloads */
	struct pol_spec *specs;
	size_t nspecs;
};

struct pol_set {
	struct pol_policy *pols;
	size_t n;
	unsigned int files; /* YAML files read */
};

/*
 * Read every *.yaml / *.yml file of dir (sorted by name; other files and hidden
 * ones are skipped).  Returns 0, or -EINVAL/-errno with msg naming the file,
 * line and field.  On error *out is left empty.
 */
int pol_load_dir(const char *dir, struct pol_set *out, char msg[POL_ERR_MAX]);
/* One file, appended to set (policy names must stay unique across files). */
int pol_load_file(const char *path, struct pol_set *set, char msg[POL_ERR_MAX]);
/* Parse YAML text; name stands for the file in messages. */
int pol_load_buf(const char *name, const char *buf, size_t len, struct pol_set *set,
		 char msg[POL_ERR_MAX]);
void pol_set_free(struct pol_set *set);

static inline uint32_t pol_rule_id(const struct pol_policy *pol, const struct pol_rule *r)
{
	return POL_RULE_ID(pol->id, r->sec, r->ordinal);
}
const char *pol_section_name(enum pol_section sec);
const char *pol_entity_name(uint32_t ent);

/* --- the node's view of the cluster -------------------------------------- */

struct pol_node {
	char *name;
	uint32_t *addrs; /* network byte order; first is the InternalIP */
	size_t naddrs;
	struct pol_label *labels;
	size_t nlabels;
};

struct pol_endpoint {
	char *name;
	uint32_t addr;
	char *node;
	struct pol_label *labels;
	size_t nlabels;
};

struct pol_inventory {
	struct pol_node self;
	struct pol_node *nodes; /* the other nodes */
	size_t nnodes;
	struct pol_endpoint *eps;
	size_t neps;
	uint32_t *apiserver; /* kube-apiserver addresses */
	size_t napiserver;
	struct pol_prefix *cluster_cidrs;
	size_t ncluster_cidrs;
	bool audit; /* [policy] audit_mode: every policy audits */
};

void pol_inventory_free(struct pol_inventory *inv);

/* --- compiled ------------------------------------------------------------ */

struct pol_ident {
	struct pol_prefix pfx;
	uint32_t id;		       /* value in pol_ident; index + 1 */
	uint32_t flags;		       /* POL_ENT_* */
	int parent;		       /* index of the longest strictly containing prefix, -1 */
	const struct pol_endpoint *ep; /* the workload at this /32, if any */
	const struct pol_node *node;   /* the node at this /32, if any */
};

struct pol_rule_entry {
	struct pol_rule_key key; /* gen is 0 here; the writer sets it */
	struct pol_verdict val;
};

/* A subject on this node: the host (all its addresses) or a local workload. */
struct pol_subject {
	uint32_t addr;
	struct pol_subj val;
	const struct pol_endpoint *ep; /* NULL: the host */
};

/* One rule set: the specs that select a group of subjects in one direction. */
struct pol_rset {
	uint32_t id;
	int dir;       /* POL_DIR_IN or POL_DIR_OUT */
	size_t *specs; /* indexes into pol_compiled.specrefs */
	size_t nspecs;
	uint8_t def; /* POL_ACT_* when no rule matches */
	uint8_t def_audit;
	uint32_t def_rule;
};

struct pol_specref {
	const struct pol_policy *pol;
	const struct pol_spec *spec;
};

struct pol_compiled {
	struct pol_ident *idents;
	size_t nidents;
	struct pol_subject *subjects;
	size_t nsubjects;
	struct pol_rset *rsets;
	size_t nrsets;
	struct pol_specref *specrefs;
	size_t nspecrefs;
	struct pol_rule_entry *rules;
	size_t nrules;
};

/*
 * Compile set against inv.  Fails (-E2BIG, msg) when the result would not fit
 * the datapath's maps.  The result points into set and inv: keep them alive.
 */
int pol_compile(const struct pol_set *set, const struct pol_inventory *inv,
		struct pol_compiled *out, char msg[POL_ERR_MAX]);
void pol_compiled_free(struct pol_compiled *c);

/*
 * What the datapath decides for a new flow, evaluated on the compiled tables
 * exactly as the BPF program looks them up (tests and `policy get` use it).
 * subject/peer/dport in network byte order; dir POL_DIR_IN: peer -> subject.
 * Returns POL_ACT_ALLOW when the subject is not on this node or not selected.
 */
struct pol_verdict pol_eval(const struct pol_compiled *c, int dir, uint32_t subject, uint32_t peer,
			    uint8_t proto, uint16_t dport_be);
/* Identity of an address: the longest matching prefix. */
const struct pol_ident *pol_lookup_ident(const struct pol_compiled *c, uint32_t addr);

/* --- writing the datapath's maps (policy_write.c) --------------------------- */

struct pol_map_fds {
	int subj, ident, rules, cfg;
};

/*
 * Write c into the idle generation (*gen ^ 1) of the lookup maps, after
 * emptying it, then switch bpflb_pol_cfg to it (with the timeouts of cfg; its
 * gen field is set here) and update *gen.  On failure nothing the datapath
 * uses changed; *what names the step that failed.
 */
int pol_maps_write(const struct pol_map_fds *fds, const struct pol_compiled *c,
		   const struct pol_cfg *cfg, uint32_t *gen, const char **what);

/* Does a label selector match a label set (with the identity's reserved flags)? */
bool pol_selector_match(const struct pol_selector *sel, const struct pol_label *labels,
			size_t nlabels);

#endif
