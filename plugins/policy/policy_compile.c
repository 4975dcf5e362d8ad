// SPDX-License-Identifier: GPL-2.0-only
/*
 * Policies + the node's inventory -> the datapath's tables.
 *
 * Identities.  Every prefix that matters is one identity: each node address,
 * workload address and kube-apiserver address (/32), each [policy]
 * cluster_cidrs entry, each CIDR and except of any rule, and 0.0.0.0/0.  An
 * address belongs to the identity of its longest matching prefix
 * (bpflb_pol_ident is an LPM trie), and because prefixes nest or are disjoint,
 * that one prefix decides every selector: the address is inside a rule's CIDR
 * exactly when its identity's prefix is.  Flags per identity:
 *   host            an address of this node ([node] address, external_addresses)
 *   remote-node     an address of another node ([cluster-node] address)
 *   kube-apiserver  [policy] kube_apiserver (in addition to host/remote-node)
 *   endpoint        a workload ([endpoint] address), with its labels
 *   cluster         all of the above but an apiserver outside the cluster,
 *                   and every address inside [policy] cluster_cidrs
 *   world           everything else (0.0.0.0/0 minus the cluster)
 * As in Cilium, CIDR selectors never select nodes or workloads, only
 * addresses outside the cluster's managed set (world, cluster_cidrs, an
 * external apiserver).
 *
 * Subjects.  The host (every address of this node) when a nodeSelector matches
 * the [node] labels, and each workload of this node ([endpoint] node = our
 * name) that an endpointSelector matches.  Subjects selected by the same specs
 * in one direction share a rule set, so that identical workloads cost one set.
 *
 * Rules.  Per rule set and peer identity, each rule contributes regions of
 * (protocol, port prefix): an L3 rule the whole identity, a port range its
 * aligned prefixes.  The value written for a region is the merge of every region
 * that contains it (deny beats allow; an enforced deny beats an audited one), so
 * the longest-prefix lookup the datapath does returns the right verdict in one
 * step.  No entry: the set's default, deny when any of its specs enables
 * default deny in that direction (any rule in it, as Cilium), else allow.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_model.h"

#define ID_HOSTISH (POL_ENT_HOST | POL_ENT_REMOTE_NODE | POL_ENT_ENDPOINT)

/* --- label selectors ----------------------------------------------------- */

static const char *label_get(const struct pol_label *labels, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(labels[i].key, key))
			return labels[i].value;
	return NULL;
}

bool pol_selector_match(const struct pol_selector *sel, const struct pol_label *labels,
			size_t nlabels)
{
	for (size_t i = 0; i < sel->nlabels; i++) {
		const char *v = label_get(labels, nlabels, sel->labels[i].key);

		if (!v || strcmp(v, sel->labels[i].value))
			return false;
	}
	for (size_t i = 0; i < sel->nexprs; i++) {
		const struct pol_expr *e = &sel->exprs[i];
		const char *v = label_get(labels, nlabels, e->key);
		bool in = false;

		for (size_t j = 0; v && j < e->nvalues; j++)
			in |= !strcmp(v, e->values[j]);
		switch (e->op) {
		case POL_OP_IN:
			if (!in)
				return false;
			break;
		case POL_OP_NOT_IN: /* Kubernetes: a missing key is "not in" */
			if (in)
				return false;
			break;
		case POL_OP_EXISTS:
			if (!v)
				return false;
			break;
		case POL_OP_DOES_NOT_EXIST:
			if (v)
				return false;
			break;
		}
	}
	return true;
}

/* --- prefixes ------------------------------------------------------------- */

static uint32_t mask_of(uint8_t plen)
{
	return plen ? ~0u << (32 - plen) : 0;
}

static bool within(const struct pol_prefix *in, const struct pol_prefix *out)
{
	return in->plen >= out->plen && (ntohl(in->addr) & mask_of(out->plen)) == ntohl(out->addr);
}

struct pfx_acc {
	struct pol_ident *v;
	size_t n, cap;
};

#define ID_F_CLUSTER_CIDR (1u << 31) /* internal: the prefix is a cluster_cidrs entry */

static int pfx_add(struct pfx_acc *a, uint32_t addr, uint8_t plen, uint32_t flags,
		   const struct pol_endpoint *ep, const struct pol_node *node)
{
	struct pol_ident *id;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct pol_ident *nv = reallocarray(a->v, cap, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = cap;
	}
	id = &a->v[a->n++];
	memset(id, 0, sizeof(*id));
	id->pfx.addr = addr;
	id->pfx.plen = plen;
	id->flags = flags;
	id->ep = ep;
	id->node = node;
	return 0;
}

static int pfx_cmp(const void *a, const void *b)
{
	const struct pol_ident *x = a, *y = b;
	uint32_t xa = ntohl(x->pfx.addr), ya = ntohl(y->pfx.addr);

	if (xa != ya)
		return xa < ya ? -1 : 1;
	return (int)x->pfx.plen - (int)y->pfx.plen;
}

static bool is_node_addr(const struct pol_inventory *inv, uint32_t addr)
{
	for (size_t i = 0; i < inv->self.naddrs; i++)
		if (inv->self.addrs[i] == addr)
			return true;
	for (size_t i = 0; i < inv->nnodes; i++)
		for (size_t j = 0; j < inv->nodes[i].naddrs; j++)
			if (inv->nodes[i].addrs[j] == addr)
				return true;
	return false;
}

static int build_idents(const struct pol_set *set, const struct pol_inventory *inv,
			struct pol_compiled *c, char *msg)
{
	struct pfx_acc a = {0};
	struct pol_ident *stack[34];
	size_t i, j, k, n, depth = 0;
	int ret = 0;

	ret = pfx_add(&a, 0, 0, 0, NULL, NULL);
	for (i = 0; i < inv->self.naddrs && !ret; i++)
		ret = pfx_add(&a, inv->self.addrs[i], 32, POL_ENT_HOST, NULL, &inv->self);
	for (i = 0; i < inv->nnodes && !ret; i++)
		for (j = 0; j < inv->nodes[i].naddrs && !ret; j++)
			ret = pfx_add(&a, inv->nodes[i].addrs[j], 32, POL_ENT_REMOTE_NODE, NULL,
				      &inv->nodes[i]);
	/* A workload on a node address is a host-network one: it is that node. */
	for (i = 0; i < inv->neps && !ret; i++)
		if (!is_node_addr(inv, inv->eps[i].addr))
			ret =
			    pfx_add(&a, inv->eps[i].addr, 32, POL_ENT_ENDPOINT, &inv->eps[i], NULL);
	for (i = 0; i < inv->napiserver && !ret; i++)
		ret = pfx_add(&a, inv->apiserver[i], 32, POL_ENT_APISERVER, NULL, NULL);
	for (i = 0; i < inv->ncluster_cidrs && !ret; i++)
		ret = pfx_add(&a, inv->cluster_cidrs[i].addr, inv->cluster_cidrs[i].plen,
			      ID_F_CLUSTER_CIDR, NULL, NULL);
	for (i = 0; i < set->n && !ret; i++)
		for (j = 0; j < set->pols[i].nspecs && !ret; j++) {
			const struct pol_spec *s = &set->pols[i].specs[j];

			for (k = 0; k < s->nrules && !ret; k++) {
				const struct pol_rule *r = &s->rules[k];

				for (n = 0; n < r->ncidrs && !ret; n++) {
					const struct pol_cidr *cd = &r->cidrs[n];

					ret =
					    pfx_add(&a, cd->net.addr, cd->net.plen, 0, NULL, NULL);
					for (size_t e = 0; e < cd->nexcept && !ret; e++)
						ret = pfx_add(&a, cd->except[e].addr,
							      cd->except[e].plen, 0, NULL, NULL);
				}
			}
		}
	if (ret)
		goto nomem;

	/* Sort by address, shorter first; merge duplicates. */
	qsort(a.v, a.n, sizeof(*a.v), pfx_cmp);
	for (i = 0, n = 0; i < a.n; i++) {
		if (n && !pfx_cmp(&a.v[n - 1], &a.v[i])) {
			a.v[n - 1].flags |= a.v[i].flags;
			if (a.v[i].ep)
				a.v[n - 1].ep = a.v[i].ep;
			if (a.v[i].node)
				a.v[n - 1].node = a.v[i].node;
			continue;
		}
		a.v[n++] = a.v[i];
	}
	a.n = n;
	if (a.n > POL_MAX_IDENTS) {
		snprintf(msg, POL_ERR_MAX,
			 "the policies and the inventory name %zu address prefixes; the datapath "
			 "holds %d",
			 a.n, POL_MAX_IDENTS);
		free(a.v);
		return -E2BIG;
	}

	/*
	 * Parents: in (address, length) order a prefix follows every prefix that
	 * contains it, so the innermost open prefix on a stack is its parent.
	 */
	for (i = 0; i < a.n; i++) {
		struct pol_ident *id = &a.v[i];

		while (depth && !within(&id->pfx, &stack[depth - 1]->pfx))
			depth--;
		id->parent = depth ? stack[depth - 1] - a.v : -1;
		if (depth && (stack[depth - 1]->flags & ID_F_CLUSTER_CIDR))
			id->flags |= ID_F_CLUSTER_CIDR; /* inherited: inside the cluster */
		stack[depth++] = id;
		id->id = i + 1;
	}
	for (i = 0; i < a.n; i++) {
		struct pol_ident *id = &a.v[i];

		if ((id->flags & ID_HOSTISH) || (id->flags & ID_F_CLUSTER_CIDR))
			id->flags |= POL_ENT_CLUSTER;
		else
			id->flags |= POL_ENT_WORLD;
		id->flags &= ~ID_F_CLUSTER_CIDR;
	}
	c->idents = a.v;
	c->nidents = a.n;
	return 0;
nomem:
	free(a.v);
	snprintf(msg, POL_ERR_MAX, "out of memory");
	return -ENOMEM;
}

const struct pol_ident *pol_lookup_ident(const struct pol_compiled *c, uint32_t addr)
{
	const struct pol_ident *best = NULL;
	struct pol_prefix a = {.addr = addr, .plen = 32};

	for (size_t i = 0; i < c->nidents; i++)
		if (within(&a, &c->idents[i].pfx) &&
		    (!best || c->idents[i].pfx.plen > best->pfx.plen))
			best = &c->idents[i];
	return best;
}

/* --- peers ---------------------------------------------------------------- */

static bool peer_selector_match(const struct pol_selector *sel, const struct pol_ident *id)
{
	uint32_t reserved =
	    id->flags & (POL_ENT_HOST | POL_ENT_REMOTE_NODE | POL_ENT_APISERVER | POL_ENT_WORLD);

	if (!sel->reserved && !(id->flags & POL_ENT_ENDPOINT))
		return false; /* plain labels select workloads only */
	if ((sel->reserved & reserved) != sel->reserved)
		return false;
	if (id->ep && (id->flags & POL_ENT_ENDPOINT))
		return pol_selector_match(sel, id->ep->labels, id->ep->nlabels);
	return pol_selector_match(sel, NULL, 0);
}

static bool peer_match(const struct pol_rule *r, const struct pol_ident *id)
{
	if (r->any_peer)
		return true;
	if (r->entities & POL_ENT_ALL)
		return true;
	if (r->entities & id->flags &
	    (POL_ENT_HOST | POL_ENT_REMOTE_NODE | POL_ENT_APISERVER | POL_ENT_CLUSTER |
	     POL_ENT_WORLD))
		return true;
	if (!(id->flags & ID_HOSTISH)) {
		for (size_t i = 0; i < r->ncidrs; i++) {
			const struct pol_cidr *cd = &r->cidrs[i];
			bool excepted = false;

			if (!within(&id->pfx, &cd->net))
				continue;
			for (size_t e = 0; e < cd->nexcept; e++)
				excepted |= within(&id->pfx, &cd->except[e]);
			if (!excepted)
				return true;
		}
	}
	for (size_t i = 0; i < r->nendpoints; i++)
		if (peer_selector_match(&r->endpoints[i], id))
			return true;
	return false;
}

/* --- regions of (protocol, port prefix) ---------------------------------- */

struct region {
	uint32_t plen; /* POL_PLEN_* */
	uint8_t proto;
	uint16_t port; /* host order, first port of the prefix */
	/* contributions */
	uint32_t allow, deny, deny_audit; /* first rule id of each kind, 0: none */
};

struct regions {
	struct region *v;
	size_t n, cap;
};

static int region_add(struct regions *rs, uint32_t plen, uint8_t proto, uint16_t port, bool deny,
		      bool audit, uint32_t rule_id)
{
	struct region *r = NULL;

	for (size_t i = 0; i < rs->n; i++)
		if (rs->v[i].plen == plen && rs->v[i].proto == proto && rs->v[i].port == port)
			r = &rs->v[i];
	if (!r) {
		if (rs->n == rs->cap) {
			size_t cap = rs->cap ? rs->cap * 2 : 16;
			struct region *nv = reallocarray(rs->v, cap, sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			rs->v = nv;
			rs->cap = cap;
		}
		r = &rs->v[rs->n++];
		memset(r, 0, sizeof(*r));
		r->plen = plen;
		r->proto = proto;
		r->port = port;
	}
	if (!deny && !r->allow)
		r->allow = rule_id;
	else if (deny && !audit && !r->deny)
		r->deny = rule_id;
	else if (deny && audit && !r->deny_audit)
		r->deny_audit = rule_id;
	return 0;
}

/* Port range [lo, hi] as aligned prefixes. */
static int range_add(struct regions *rs, uint8_t proto, uint32_t lo, uint32_t hi, bool deny,
		     bool audit, uint32_t rule_id)
{
	int ret = 0;

	if (lo == 0 && hi == 65535)
		return region_add(rs, POL_PLEN_PROTO, proto, 0, deny, audit, rule_id);
	while (lo <= hi && !ret) {
		uint32_t bits = 0;

		while (bits < 16 && !(lo & ((2u << bits) - 1)) && lo + (2u << bits) - 1 <= hi)
			bits++;
		ret = region_add(rs, POL_PLEN_PORT(16 - bits), proto, lo, deny, audit, rule_id);
		lo += 1u << bits;
	}
	return ret;
}

static bool region_contains(const struct region *outer, const struct region *inner)
{
	uint32_t bits;

	if (outer->plen == POL_PLEN_L3)
		return true;
	if (outer->proto != inner->proto || outer->plen > inner->plen)
		return false;
	bits = outer->plen - POL_PLEN_PROTO;
	return !bits || (outer->port >> (16 - bits)) == (inner->port >> (16 - bits));
}

/* --- subjects and rule sets ------------------------------------------------ */

static bool dir_has_sec(int dir, enum pol_section sec)
{
	return dir == POL_DIR_IN ? sec == POL_SEC_INGRESS || sec == POL_SEC_INGRESS_DENY
				 : sec == POL_SEC_EGRESS || sec == POL_SEC_EGRESS_DENY;
}

static bool spec_default_deny(const struct pol_spec *s, int dir)
{
	return s->default_deny[dir] < 0 ? s->has_rules[dir] : s->default_deny[dir] > 0;
}

static bool spec_applies(const struct pol_spec *s, int dir)
{
	return s->has_rules[dir] || spec_default_deny(s, dir);
}

static int find_or_add_rset(struct pol_compiled *c, int dir, const size_t *specs, size_t n,
			    const struct pol_inventory *inv, uint32_t *id_out)
{
	struct pol_rset *rs;
	bool dd = false, all_audit = true;
	uint32_t enforce_rule = 0, audit_rule = 0;

	if (!n) {
		*id_out = 0;
		return 0;
	}
	for (size_t i = 0; i < c->nrsets; i++)
		if (c->rsets[i].dir == dir && c->rsets[i].nspecs == n &&
		    !memcmp(c->rsets[i].specs, specs, n * sizeof(*specs))) {
			*id_out = c->rsets[i].id;
			return 0;
		}
	rs = reallocarray(c->rsets, c->nrsets + 1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	c->rsets = rs;
	rs += c->nrsets;
	memset(rs, 0, sizeof(*rs));
	rs->specs = malloc(n * sizeof(*specs));
	if (!rs->specs)
		return -ENOMEM;
	memcpy(rs->specs, specs, n * sizeof(*specs));
	rs->nspecs = n;
	rs->dir = dir;
	rs->id = ++c->nrsets;
	for (size_t i = 0; i < n; i++) {
		const struct pol_specref *sr = &c->specrefs[specs[i]];
		bool audit = inv->audit || sr->pol->audit;

		if (!spec_default_deny(sr->spec, dir))
			continue;
		dd = true;
		if (!audit && !enforce_rule)
			enforce_rule = POL_RULE_ID(sr->pol->id, 0, 0);
		if (audit && !audit_rule)
			audit_rule = POL_RULE_ID(sr->pol->id, 0, 0);
		all_audit &= audit;
	}
	rs->def = dd ? POL_ACT_DENY : POL_ACT_ALLOW;
	rs->def_audit = dd && all_audit;
	rs->def_rule = dd ? (enforce_rule ? enforce_rule : audit_rule) : 0;
	*id_out = rs->id;
	return 0;
}

static int add_subject(struct pol_compiled *c, uint32_t addr, const struct pol_subj *val,
		       const struct pol_endpoint *ep)
{
	struct pol_subject *s = reallocarray(c->subjects, c->nsubjects + 1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	c->subjects = s;
	s += c->nsubjects++;
	s->addr = addr;
	s->val = *val;
	s->ep = ep;
	return 0;
}

/* The specs selecting a subject (labels) in dir, as indexes into specrefs. */
static size_t selecting_specs(const struct pol_compiled *c, bool host,
			      const struct pol_label *labels, size_t nlabels, int dir, size_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nspecrefs; i++) {
		const struct pol_spec *s = c->specrefs[i].spec;

		if (s->node != host || !spec_applies(s, dir))
			continue;
		if (pol_selector_match(&s->subject, labels, nlabels))
			out[n++] = i;
	}
	return n;
}

static int build_subject(struct pol_compiled *c, const struct pol_inventory *inv, bool host,
			 const struct pol_label *labels, size_t nlabels, struct pol_subj *val)
{
	size_t *specs = calloc(c->nspecrefs + 1, sizeof(*specs));
	int ret = 0;

	if (!specs)
		return -ENOMEM;
	memset(val, 0, sizeof(*val));
	val->kind = host ? POL_SUBJ_HOST : POL_SUBJ_ENDPOINT;
	for (int dir = 0; dir < 2 && !ret; dir++) {
		size_t n = selecting_specs(c, host, labels, nlabels, dir, specs);

		ret = find_or_add_rset(c, dir, specs, n, inv, &val->set[dir]);
		if (ret || !val->set[dir]) {
			val->def[dir] = POL_ACT_ALLOW;
			continue;
		}
		val->def[dir] = c->rsets[val->set[dir] - 1].def;
		val->def_audit[dir] = c->rsets[val->set[dir] - 1].def_audit;
		val->def_rule[dir] = c->rsets[val->set[dir] - 1].def_rule;
	}
	free(specs);
	return ret;
}

static int build_subjects(const struct pol_set *set, const struct pol_inventory *inv,
			  struct pol_compiled *c, char *msg)
{
	struct pol_subj val;
	size_t n = 0, i;
	int ret;

	for (i = 0; i < set->n; i++)
		n += set->pols[i].nspecs;
	c->specrefs = calloc(n + 1, sizeof(*c->specrefs));
	if (!c->specrefs)
		return -ENOMEM;
	for (i = 0; i < set->n; i++)
		for (size_t j = 0; j < set->pols[i].nspecs; j++) {
			c->specrefs[c->nspecrefs].pol = &set->pols[i];
			c->specrefs[c->nspecrefs++].spec = &set->pols[i].specs[j];
		}

	ret = build_subject(c, inv, true, inv->self.labels, inv->self.nlabels, &val);
	for (i = 0; i < inv->self.naddrs && !ret; i++)
		ret = add_subject(c, inv->self.addrs[i], &val, NULL);
	for (i = 0; i < inv->neps && !ret; i++) {
		const struct pol_endpoint *ep = &inv->eps[i];

		if (strcmp(ep->node, inv->self.name) || is_node_addr(inv, ep->addr))
			continue;
		ret = build_subject(c, inv, false, ep->labels, ep->nlabels, &val);
		if (!ret)
			ret = add_subject(c, ep->addr, &val, ep);
	}
	if (ret == -ENOMEM)
		snprintf(msg, POL_ERR_MAX, "out of memory");
	if (!ret && c->nsubjects > POL_MAX_SUBJECTS) {
		snprintf(msg, POL_ERR_MAX,
			 "%zu subject addresses on this node; the datapath holds %d", c->nsubjects,
			 POL_MAX_SUBJECTS);
		ret = -E2BIG;
	}
	return ret;
}

/* --- rule entries --------------------------------------------------------- */

static int emit(struct pol_compiled *c, size_t *cap, const struct pol_rset *rs,
		const struct pol_ident *id, const struct region *reg, const struct regions *all)
{
	uint32_t allow = 0, deny = 0, deny_audit = 0;
	struct pol_rule_entry *e;

	for (size_t i = 0; i < all->n; i++) {
		const struct region *o = &all->v[i];

		if (!region_contains(o, reg))
			continue;
		if (o->allow && !allow)
			allow = o->allow;
		if (o->deny && !deny)
			deny = o->deny;
		if (o->deny_audit && !deny_audit)
			deny_audit = o->deny_audit;
	}
	if (c->nrules == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct pol_rule_entry *nv = reallocarray(c->rules, ncap, sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		c->rules = nv;
		*cap = ncap;
	}
	e = &c->rules[c->nrules++];
	memset(e, 0, sizeof(*e));
	e->key.prefixlen = reg->plen;
	e->key.set = rs->id;
	e->key.peer = id->id;
	e->key.proto = reg->plen == POL_PLEN_L3 ? 0 : reg->proto;
	if (reg->plen > POL_PLEN_PROTO) {
		e->key.dport[0] = reg->port >> 8;
		e->key.dport[1] = reg->port & 0xff;
	}
	if (deny) {
		e->val.action = POL_ACT_DENY;
		e->val.rule_id = deny;
	} else if (deny_audit) {
		e->val.action = POL_ACT_DENY;
		e->val.audit = 1;
		e->val.rule_id = deny_audit;
	} else {
		e->val.action = POL_ACT_ALLOW;
		e->val.rule_id = allow;
	}
	return 0;
}

static int rule_regions(const struct pol_policy *pol, const struct pol_rule *r, bool audit,
			struct regions *rs)
{
	bool deny = r->sec == POL_SEC_INGRESS_DENY || r->sec == POL_SEC_EGRESS_DENY;
	uint32_t id = pol_rule_id(pol, r);
	int ret = 0;

	if (!r->nports)
		return region_add(rs, POL_PLEN_L3, 0, 0, deny, audit, id);
	for (size_t i = 0; i < r->nports && !ret; i++) {
		const struct pol_port *p = &r->ports[i];

		if (p->proto != IPPROTO_UDP)
			ret = range_add(rs, IPPROTO_TCP, p->port, p->end, deny, audit, id);
		if (!ret && p->proto != IPPROTO_TCP)
			ret = range_add(rs, IPPROTO_UDP, p->port, p->end, deny, audit, id);
	}
	return ret;
}

static int build_rules(const struct pol_inventory *inv, struct pol_compiled *c, char *msg)
{
	struct regions regs = {0};
	size_t cap = 0;
	int ret = 0;

	for (size_t s = 0; s < c->nrsets && !ret; s++) {
		const struct pol_rset *rs = &c->rsets[s];

		for (size_t i = 0; i < c->nidents && !ret; i++) {
			const struct pol_ident *id = &c->idents[i];

			regs.n = 0;
			for (size_t k = 0; k < rs->nspecs && !ret; k++) {
				const struct pol_specref *sr = &c->specrefs[rs->specs[k]];
				bool audit = inv->audit || sr->pol->audit;

				for (size_t r = 0; r < sr->spec->nrules && !ret; r++) {
					const struct pol_rule *rule = &sr->spec->rules[r];

					if (!dir_has_sec(rs->dir, rule->sec) ||
					    !peer_match(rule, id))
						continue;
					ret = rule_regions(sr->pol, rule, audit, &regs);
				}
			}
			for (size_t k = 0; k < regs.n && !ret; k++)
				ret = emit(c, &cap, rs, id, &regs.v[k], &regs);
			if (!ret && c->nrules > POL_MAX_RULES) {
				snprintf(msg, POL_ERR_MAX,
					 "the policies compile to more than %d datapath rule "
					 "entries (rule sets x peer identities x port prefixes); "
					 "use fewer CIDRs, port ranges or distinct selectors",
					 POL_MAX_RULES);
				ret = -E2BIG;
			}
		}
	}
	free(regs.v);
	if (ret == -ENOMEM)
		snprintf(msg, POL_ERR_MAX, "out of memory");
	return ret;
}

int pol_compile(const struct pol_set *set, const struct pol_inventory *inv,
		struct pol_compiled *out, char msg[POL_ERR_MAX])
{
	struct pol_compiled c = {0};
	int ret;

	msg[0] = 0;
	ret = build_idents(set, inv, &c, msg);
	if (!ret)
		ret = build_subjects(set, inv, &c, msg);
	if (!ret)
		ret = build_rules(inv, &c, msg);
	if (ret) {
		if (!msg[0])
			snprintf(msg, POL_ERR_MAX, "compiling the policies failed: %s",
				 strerror(-ret));
		pol_compiled_free(&c);
		return ret;
	}
	*out = c;
	return 0;
}

void pol_compiled_free(struct pol_compiled *c)
{
	for (size_t i = 0; i < c->nrsets; i++)
		free(c->rsets[i].specs);
	free(c->rsets);
	free(c->idents);
	free(c->subjects);
	free(c->specrefs);
	free(c->rules);
	memset(c, 0, sizeof(*c));
}

/* --- evaluation, as the datapath does it ------------------------------------ */

static bool key_match(const struct pol_rule_key *k, uint32_t set, uint32_t peer, uint8_t proto,
		      uint16_t dport_be)
{
	const uint8_t *dp = (const uint8_t *)&dport_be;
	uint16_t port = (uint16_t)dp[0] << 8 | dp[1];
	uint16_t kport = (uint16_t)k->dport[0] << 8 | k->dport[1];
	uint32_t bits;

	if (k->set != set || k->peer != peer)
		return false;
	if (k->prefixlen == POL_PLEN_L3)
		return true;
	if (k->proto != proto)
		return false;
	bits = k->prefixlen - POL_PLEN_PROTO;
	return !bits || (kport >> (16 - bits)) == (port >> (16 - bits));
}

struct pol_verdict pol_eval(const struct pol_compiled *c, int dir, uint32_t subject, uint32_t peer,
			    uint8_t proto, uint16_t dport_be)
{
	struct pol_verdict v = {.action = POL_ACT_ALLOW};
	const struct pol_subject *s = NULL;
	const struct pol_rule_entry *best = NULL;
	const struct pol_ident *id;

	for (size_t i = 0; i < c->nsubjects; i++)
		if (c->subjects[i].addr == subject)
			s = &c->subjects[i];
	if (!s || !s->val.set[dir])
		return v;
	id = pol_lookup_ident(c, peer);
	for (size_t i = 0; id && i < c->nrules; i++)
		if (key_match(&c->rules[i].key, s->val.set[dir], id->id, proto, dport_be) &&
		    (!best || c->rules[i].key.prefixlen > best->key.prefixlen))
			best = &c->rules[i];
	if (best)
		return best->val;
	v.action = s->val.def[dir];
	v.audit = s->val.def_audit[dir];
	v.rule_id = s->val.def_rule[dir];
	return v;
}

void pol_inventory_free(struct pol_inventory *inv)
{
	for (size_t i = 0; i <= inv->nnodes; i++) {
		struct pol_node *n = i ? &inv->nodes[i - 1] : &inv->self;

		free(n->name);
		free(n->addrs);
		for (size_t j = 0; j < n->nlabels; j++) {
			free(n->labels[j].key);
			free(n->labels[j].value);
		}
		free(n->labels);
	}
	free(inv->nodes);
	for (size_t i = 0; i < inv->neps; i++) {
		struct pol_endpoint *e = &inv->eps[i];

		free(e->name);
		free(e->node);
		for (size_t j = 0; j < e->nlabels; j++) {
			free(e->labels[j].key);
			free(e->labels[j].value);
		}
		free(e->labels);
	}
	free(inv->eps);
	free(inv->apiserver);
	free(inv->cluster_cidrs);
	memset(inv, 0, sizeof(*inv));
}
