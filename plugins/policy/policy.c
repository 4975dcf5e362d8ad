// SPDX-License-Identifier: GPL-2.0-only
/*
 * The policy feature plugin: CiliumClusterwideNetworkPolicy with audit mode.
 *
 * Configuration (INI; SIGHUP re-reads it and the policy directory):
 *
 *   [daemon]
 *   features = policy
 *
 *   [policy]
 *   dir = /etc/bpflb/policies    # *.yaml / *.yml, CiliumClusterwideNetworkPolicy
 *   audit_mode = no              # yes: every policy audits (Cilium's policyAuditMode)
 *   kube_apiserver = 10.0.0.1    # addresses of the kube-apiserver entity
 *   cluster_cidrs = 10.244.0.0/16  # pod CIDRs: addresses of the cluster entity
 *
 *   [node]            name, address, external_addresses, labels: the host
 *   [cluster-node N]  address, labels: remote-node
 *   [endpoint N]      address, labels, node: workloads (core-owned section)
 *
 * One policy audits alone with the annotation policy.bpflb.io/audit-mode: "true".
 *
 * validate parses every file and compiles the result (so a broken file or a
 * policy set too big for the maps is refused with file:line before anything
 * changes); apply writes the compiled tables into the idle generation of the
 * lookup maps and flips the generation: the previous set stays enforced until
 * that single write.  The datapath is bpf/policy.bpf.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include <linux/bpf.h>

#include <bpflb/lb.h>
#include <bpflb/plugin.h>

#include "policy_model.h"
#include "policy_bpf.skel.h"

#define NSEC 1000000000ull

/* Everything one configuration compiles to; owned as a unit. */
struct pol_state {
	const struct bpflb_config *cfg; /* compared only: which configuration this is */
	struct pol_set set;
	struct pol_inventory inv;
	struct pol_compiled comp;
	char dir[4096];
};

struct pol_idname {
	uint32_t id;
	char *name;
};

struct policy_priv {
	struct policy_bpf *skel;
	uint32_t gen;		   /* generation in use */
	struct pol_state *cur;	   /* applied */
	struct pol_state *old;	   /* applied before cur, until the next validate (rollback) */
	struct pol_state *pending; /* validated, not applied yet */
	struct pol_idname *ids;	   /* stable policy ids (mirrors bpflb_pol_names) */
	size_t nids;
	int ncpus;
};

static const struct bpflb_cfg_key policy_keys[] = {
    {.name = "dir",
     .type = BPFLB_CFG_PATH,
     .def = "/etc/bpflb/policies",
     .help = "directory of CiliumClusterwideNetworkPolicy files (*.yaml, *.yml)"},
    {.name = "audit_mode",
     .type = BPFLB_CFG_BOOL,
     .def = "no",
     .help = "yes: report what the policies would drop (verdict AUDIT) and drop nothing"},
    {.name = "kube_apiserver",
     .type = BPFLB_CFG_IPV4_LIST,
     .def = "",
     .help = "addresses of the kube-apiserver entity"},
    {.name = "cluster_cidrs",
     .type = BPFLB_CFG_CIDR_LIST,
     .def = "",
     .help = "pod CIDRs: their addresses belong to the cluster entity, not world"},
    {0},
};

static const struct bpflb_cfg_section_def policy_section = {
    .name = "policy",
    .keys = policy_keys,
};

static const struct bpflb_cfg_section_def *const policy_sections[] = {&policy_section, NULL};

static const struct bpflb_feature policy_requires[] = {
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PROG_ARRAY, "BPF_MAP_TYPE_PROG_ARRAY"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_LPM_TRIE, "BPF_MAP_TYPE_LPM_TRIE"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_LRU_HASH, "BPF_MAP_TYPE_LRU_HASH"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERCPU_HASH, "BPF_MAP_TYPE_PERCPU_HASH"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERCPU_ARRAY, "BPF_MAP_TYPE_PERCPU_ARRAY"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERF_EVENT_ARRAY, "BPF_MAP_TYPE_PERF_EVENT_ARRAY"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_tail_call, "bpf_tail_call"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_perf_event_output, "bpf_perf_event_output"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_skb_pull_data, "bpf_skb_pull_data"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns"},
    {BPFLB_FEAT_END, 0, NULL},
};

/* --- inventory from the INI configuration ---------------------------------- */

static int labels_of(const char *list, struct pol_label **out, size_t *n)
{
	char word[BPFLB_CFG_WORD_MAX];

	for (unsigned int i = 0; bpflb_cfg_word(list, i, word, sizeof(word)); i++) {
		char *eq = strchr(word, '=');
		struct pol_label *l = reallocarray(*out, *n + 1, sizeof(*l));

		if (!l)
			return -ENOMEM;
		*out = l;
		if (!eq) /* the core's labels_check refuses it; be safe */
			continue;
		*eq = 0;
		l[*n].key = strdup(word);
		l[*n].value = strdup(eq + 1);
		(*n)++;
		if (!l[*n - 1].key || !l[*n - 1].value)
			return -ENOMEM;
	}
	return 0;
}

static int addr_add(uint32_t **v, size_t *n, uint32_t a)
{
	uint32_t *nv = reallocarray(*v, *n + 1, sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = a;
	*v = nv;
	return 0;
}

static int inv_build(const struct bpflb_config *cfg, struct pol_inventory *inv,
		     struct bpflb_err *err)
{
	const struct bpflb_cfg_section *node = bpflb_cfg_section(cfg, "node", 0);
	const struct bpflb_cfg_section *pol = bpflb_cfg_section(cfg, "policy", 0);
	const struct bpflb_cfg_section *sec;
	char word[BPFLB_CFG_WORD_MAX];
	unsigned int i, j;
	uint32_t a;
	uint8_t plen;
	int ret;

	memset(inv, 0, sizeof(*inv));
	inv->self.name = strdup(bpflb_cfg_str(node, "name"));
	if (!inv->self.name)
		goto nomem;
	if (addr_add(&inv->self.addrs, &inv->self.naddrs, bpflb_cfg_ipv4(node, "address")))
		goto nomem;
	for (i = 0;
	     bpflb_cfg_word(bpflb_cfg_str(node, "external_addresses"), i, word, sizeof(word)); i++)
		if (!bpflb_parse_ipv4(word, &a) && addr_add(&inv->self.addrs, &inv->self.naddrs, a))
			goto nomem;
	if (labels_of(bpflb_cfg_str(node, "labels"), &inv->self.labels, &inv->self.nlabels))
		goto nomem;

	for (i = 0; (sec = bpflb_cfg_section(cfg, "cluster-node", i)); i++) {
		struct pol_node *n = reallocarray(inv->nodes, inv->nnodes + 1, sizeof(*n));

		if (!n)
			goto nomem;
		inv->nodes = n;
		n += inv->nnodes++;
		memset(n, 0, sizeof(*n));
		n->name = strdup(bpflb_cfg_section_name(sec));
		if (!n->name || addr_add(&n->addrs, &n->naddrs, bpflb_cfg_ipv4(sec, "address")) ||
		    labels_of(bpflb_cfg_str(sec, "labels"), &n->labels, &n->nlabels))
			goto nomem;
		/* That node's other addresses are remote-node too. */
		for (j = 0; bpflb_cfg_has(sec, "external_addresses") &&
			    bpflb_cfg_word(bpflb_cfg_str(sec, "external_addresses"), j, word,
					   sizeof(word));
		     j++)
			if (!bpflb_parse_ipv4(word, &a) && addr_add(&n->addrs, &n->naddrs, a))
				goto nomem;
	}

	for (i = 0; (sec = bpflb_cfg_section(cfg, "endpoint", i)); i++) {
		const char *on = bpflb_cfg_str(sec, "node");
		struct pol_endpoint *e;
		bool known = !strcmp(on, inv->self.name);

		for (j = 0; j < inv->nnodes && !known; j++)
			known = !strcmp(on, inv->nodes[j].name);
		if (!known)
			return bpflb_cfg_error(err, sec, "node", 0,
					       "no node '%s'; expected the [node] name (%s) or the "
					       "name of a [cluster-node NAME] section",
					       on, inv->self.name);
		a = bpflb_cfg_ipv4(sec, "address");
		for (j = 0; j < inv->neps; j++)
			if (inv->eps[j].addr == a)
				return bpflb_cfg_error(err, sec, "address", 0,
						       "[endpoint %s] has this address already; "
						       "expected one endpoint per address",
						       inv->eps[j].name);
		e = reallocarray(inv->eps, inv->neps + 1, sizeof(*e));
		if (!e)
			goto nomem;
		inv->eps = e;
		e += inv->neps++;
		memset(e, 0, sizeof(*e));
		e->addr = a;
		e->name = strdup(bpflb_cfg_section_name(sec));
		e->node = strdup(on);
		if (!e->name || !e->node ||
		    labels_of(bpflb_cfg_str(sec, "labels"), &e->labels, &e->nlabels))
			goto nomem;
	}

	for (i = 0; bpflb_cfg_word(bpflb_cfg_str(pol, "kube_apiserver"), i, word, sizeof(word));
	     i++)
		if (!bpflb_parse_ipv4(word, &a) && addr_add(&inv->apiserver, &inv->napiserver, a))
			goto nomem;
	for (i = 0; bpflb_cfg_word(bpflb_cfg_str(pol, "cluster_cidrs"), i, word, sizeof(word));
	     i++) {
		struct pol_prefix *p;

		ret = bpflb_parse_cidr(word, &a, &plen);
		if (ret)
			continue; /* the schema refused it already */
		p = reallocarray(inv->cluster_cidrs, inv->ncluster_cidrs + 1, sizeof(*p));
		if (!p)
			goto nomem;
		inv->cluster_cidrs = p;
		p[inv->ncluster_cidrs].addr = a;
		p[inv->ncluster_cidrs++].plen = plen;
	}
	inv->audit = bpflb_cfg_bool(pol, "audit_mode");
	return 0;
nomem:
	bpflb_err_set(err, "policy: out of memory");
	return -ENOMEM;
}

/* --- stable policy ids ------------------------------------------------------ */

static uint32_t ids_find(const struct policy_priv *pp, const char *name)
{
	for (size_t i = 0; pp && i < pp->nids; i++)
		if (!strcmp(pp->ids[i].name, name))
			return pp->ids[i].id;
	return 0;
}

static bool id_taken(const struct policy_priv *pp, const struct pol_set *set, size_t upto,
		     uint32_t id)
{
	for (size_t i = 0; pp && i < pp->nids; i++)
		if (pp->ids[i].id == id)
			return true;
	for (size_t i = 0; i < upto; i++)
		if (set->pols[i].id == id)
			return true;
	return false;
}

/*
 * A policy keeps its id while its name exists (across reloads and, through
 * bpflb_pol_names, restarts), so rule ids in events and counters stay stable.
 * A new name gets the smallest id nobody holds.
 */
static int ids_assign(const struct policy_priv *pp, struct pol_set *set, char *msg)
{
	for (size_t i = 0; i < set->n; i++) {
		uint32_t id = ids_find(pp, set->pols[i].name);

		if (!id) {
			for (id = 1; id <= POL_MAX_POLICIES && id_taken(pp, set, i, id); id++)
				;
			if (id > POL_MAX_POLICIES) {
				snprintf(msg, POL_ERR_MAX, "more than %d policies",
					 POL_MAX_POLICIES);
				return -E2BIG;
			}
		}
		set->pols[i].id = id;
	}
	return 0;
}

static void ids_free(struct policy_priv *pp)
{
	for (size_t i = 0; i < pp->nids; i++)
		free(pp->ids[i].name);
	free(pp->ids);
	pp->ids = NULL;
	pp->nids = 0;
}

static int ids_add(struct policy_priv *pp, uint32_t id, const char *name)
{
	struct pol_idname *v = reallocarray(pp->ids, pp->nids + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	pp->ids = v;
	v[pp->nids].id = id;
	v[pp->nids].name = strdup(name);
	if (!v[pp->nids].name)
		return -ENOMEM;
	pp->nids++;
	return 0;
}

static void ids_load(struct policy_priv *pp)
{
	int fd = bpf_map__fd(pp->skel->maps.bpflb_pol_names);
	uint32_t key, next, *prev = NULL;
	struct pol_name v;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(fd, &key, &v)) {
			v.name[sizeof(v.name) - 1] = 0;
			ids_add(pp, key, v.name);
		}
	}
}

/* --- states ----------------------------------------------------------------- */

static void state_free(struct pol_state *st)
{
	if (!st)
		return;
	pol_compiled_free(&st->comp);
	pol_set_free(&st->set);
	pol_inventory_free(&st->inv);
	free(st);
}

/* Parse, check and compile everything next asks for; nothing is changed. */
static int state_build(const struct policy_priv *pp, const struct bpflb_config *next,
		       struct pol_state **out, struct bpflb_err *err)
{
	const struct bpflb_cfg_section *sec = bpflb_cfg_section(next, "policy", 0);
	const char *running = pp && pp->cur ? "; the running policies stay in force" : "";
	struct pol_state *st = calloc(1, sizeof(*st));
	char msg[POL_ERR_MAX];
	int ret;

	if (!st)
		return bpflb_err_set(err, "policy: out of memory"), -ENOMEM;
	st->cfg = next;
	snprintf(st->dir, sizeof(st->dir), "%s", bpflb_cfg_str(sec, "dir"));
	ret = inv_build(next, &st->inv, err);
	if (ret)
		goto out;
	ret = pol_load_dir(st->dir, &st->set, msg);
	if (ret) {
		if (ret == -ENOENT || ret == -ENOTDIR || ret == -EACCES)
			ret = bpflb_cfg_error(err, sec, "dir", 0, "%s", msg);
		else
			bpflb_err_set(err, "policy: %s%s", msg, running);
		goto out;
	}
	ret = ids_assign(pp, &st->set, msg);
	if (!ret)
		ret = pol_compile(&st->set, &st->inv, &st->comp, msg);
	if (ret) {
		bpflb_err_set(err, "policy: %s (policies in %s)%s", msg, st->dir, running);
		goto out;
	}
	*out = st;
	return 0;
out:
	state_free(st);
	return ret;
}

/* --- maps ------------------------------------------------------------------- */

static int write_state(struct bpflb_plugin_ctx *ctx, struct policy_priv *pp,
		       const struct pol_state *st, const struct bpflb_config *cfg,
		       struct bpflb_err *err)
{
	const struct bpflb_cfg_section *lb = bpflb_cfg_section(cfg, "lb", 0);
	struct pol_map_fds fds = {
	    .subj = bpf_map__fd(pp->skel->maps.bpflb_pol_subj),
	    .ident = bpf_map__fd(pp->skel->maps.bpflb_pol_ident),
	    .rules = bpf_map__fd(pp->skel->maps.bpflb_pol_rules),
	    .cfg = bpf_map__fd(pp->skel->maps.bpflb_pol_cfg),
	};
	struct pol_cfg pc = {
	    .tcp_timeout_ns = (uint64_t)bpflb_cfg_u32(lb, "ct_tcp_timeout") * NSEC,
	    .tcp_syn_timeout_ns = (uint64_t)bpflb_cfg_u32(lb, "ct_tcp_syn_timeout") * NSEC,
	    .tcp_close_timeout_ns = (uint64_t)bpflb_cfg_u32(lb, "ct_tcp_close_timeout") * NSEC,
	    .other_timeout_ns = (uint64_t)bpflb_cfg_u32(lb, "ct_udp_timeout") * NSEC,
	};
	const char *what = NULL;
	int ret;

	ret = pol_maps_write(&fds, &st->comp, &pc, &pp->gen, &what);
	if (ret)
		return bpflb_err_set(err,
				     "policy: %s failed: %s; the previous policies stay in force",
				     what, strerror(-ret)),
		       ret;
	return 0;
}

/* Names of the applied policies into bpflb_pol_names; counters of gone ones out. */
static void write_names(struct bpflb_plugin_ctx *ctx, struct policy_priv *pp,
			const struct pol_set *set)
{
	int names_fd = bpf_map__fd(pp->skel->maps.bpflb_pol_names);
	int rstat_fd = bpf_map__fd(pp->skel->maps.bpflb_pol_rstat);
	uint32_t key, next, *prev = NULL;
	size_t i;

	for (i = 0; i < pp->nids; i++) {
		bool gone = true;

		for (size_t j = 0; j < set->n && gone; j++)
			gone = set->pols[j].id != pp->ids[i].id;
		if (gone)
			bpf_map_delete_elem(names_fd, &pp->ids[i].id);
	}
	ids_free(pp);
	for (i = 0; i < set->n; i++) {
		struct pol_name v = {0};

		snprintf(v.name, sizeof(v.name), "%s", set->pols[i].name);
		if (bpf_map_update_elem(names_fd, &set->pols[i].id, &v, BPF_ANY))
			bpflb_log(ctx, LOG_WARNING, "cannot record the name of policy %s: %s",
				  set->pols[i].name, strerror(errno));
		ids_add(pp, set->pols[i].id, set->pols[i].name);
	}
	/* Per-rule counters of policies that are gone: their ids may be reused. */
	{
		uint32_t *dead = NULL;
		size_t n = 0;

		while (!bpf_map_get_next_key(rstat_fd, prev, &next)) {
			bool live = false;
			uint32_t *nd;

			key = next;
			prev = &key;
			for (i = 0; i < pp->nids && !live; i++)
				live = pp->ids[i].id == POL_RULE_POLICY(key);
			if (live || !(nd = reallocarray(dead, n + 1, sizeof(*dead))))
				continue;
			dead = nd;
			dead[n++] = key;
		}
		for (i = 0; i < n; i++)
			bpf_map_delete_elem(rstat_fd, &dead[i]);
		free(dead);
	}
}

/* --- reporting -------------------------------------------------------------- */

static const char *ip4(uint32_t a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static void log_state(struct bpflb_plugin_ctx *ctx, const struct pol_state *st)
{
	const struct pol_compiled *c = &st->comp;
	size_t naudit = 0, host_in = 0, host_out = 0, eps = 0;
	char b[INET_ADDRSTRLEN];

	for (size_t i = 0; i < st->set.n; i++)
		naudit += st->inv.audit || st->set.pols[i].audit;
	for (size_t i = 0; i < c->nsubjects; i++) {
		const struct pol_subject *s = &c->subjects[i];

		if (!s->ep) {
			host_in = s->val.set[POL_DIR_IN];
			host_out = s->val.set[POL_DIR_OUT];
			continue;
		}
		eps += s->val.set[0] || s->val.set[1];
	}
	bpflb_log(ctx, LOG_NOTICE,
		  "policies: %zu from %u files in %s (%zu audit%s, %zu enforcing); host selected "
		  "at ingress: %s, at egress: %s; local workloads selected: %zu; identities: %zu, "
		  "rule entries: %zu",
		  st->set.n, st->set.files, st->dir, naudit, st->inv.audit ? " by audit_mode" : "",
		  st->set.n - naudit, host_in ? "yes" : "no", host_out ? "yes" : "no", eps,
		  c->nidents, c->nrules);
	for (size_t i = 0; i < st->set.n; i++) {
		const struct pol_policy *p = &st->set.pols[i];
		size_t nr = 0;

		for (size_t j = 0; j < p->nspecs; j++)
			nr += p->specs[j].nrules;
		bpflb_log(ctx, LOG_INFO, "policy %s (id %u, %s:%d): %s, %zu specs, %zu rules",
			  p->name, p->id, p->file, p->line,
			  st->inv.audit || p->audit ? "audit" : "enforcing", p->nspecs, nr);
	}
	for (size_t i = 0; i < c->nsubjects; i++) {
		const struct pol_subject *s = &c->subjects[i];

		bpflb_log(ctx, LOG_INFO, "subject %s %s: ingress %s%s, egress %s%s",
			  s->ep ? s->ep->name : "host", ip4(s->addr, b),
			  !s->val.set[0]		  ? "open"
			  : s->val.def[0] == POL_ACT_DENY ? "default deny"
							  : "rules",
			  s->val.set[0] && s->val.def_audit[0] ? " (audit)" : "",
			  !s->val.set[1]		  ? "open"
			  : s->val.def[1] == POL_ACT_DENY ? "default deny"
							  : "rules",
			  s->val.set[1] && s->val.def_audit[1] ? " (audit)" : "");
	}
}

/* --- hooks ------------------------------------------------------------------ */

static int policy_init(struct bpflb_plugin_ctx *ctx)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpflb_pin_root(ctx));
	struct policy_priv *pp;
	int err;

	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	pp->ncpus = libbpf_num_possible_cpus();
	pp->skel = policy_bpf__open_opts(&opts);
	if (!pp->skel) {
		err = -errno;
		bpflb_log(ctx, LOG_ERR, "opening the BPF object failed: %d", err);
		goto out;
	}
	/* Shared map sizes from the configuration; our pins recorded for --cleanup. */
	err = bpflb_pins_prepare(ctx, pp->skel->obj) ?: policy_bpf__load(pp->skel);
	if (err) {
		bpflb_log(ctx, LOG_ERR,
			  "loading the BPF programs failed (%d); see the verifier log "
			  "above",
			  err);
		goto out;
	}
	ids_load(pp);
	bpflb_set_priv(ctx, pp);
	return 0;
out:
	policy_bpf__destroy(pp->skel);
	free(pp);
	return err;
}

static int policy_validate(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			   struct bpflb_err *err)
{
	struct policy_priv *pp = bpflb_priv(ctx);
	struct pol_state *st = NULL;
	int ret;

	/* Not initialised yet (being enabled by this configuration): check only. */
	if (pp) {
		state_free(pp->pending);
		pp->pending = NULL;
		if (pp->old != pp->cur)
			state_free(pp->old);
		pp->old = NULL;
	}
	ret = state_build(pp, next, &st, err);
	if (ret)
		return ret;
	if (pp)
		pp->pending = st;
	else
		state_free(st);
	return 0;
}

static int policy_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			const struct bpflb_config *prev, struct bpflb_err *err)
{
	struct policy_priv *pp = bpflb_priv(ctx);
	struct pol_state *st;
	int ret;

	if (pp->pending && pp->pending->cfg == next) {
		st = pp->pending;
		pp->pending = NULL;
	} else if (pp->old && pp->old->cfg == next) {
		st = pp->old; /* rolling back to what ran before */
		pp->old = NULL;
	} else if (pp->cur && pp->cur->cfg == next) {
		st = pp->cur;
	} else {
		ret = state_build(pp, next, &st, err);
		if (ret)
			return ret;
	}
	ret = write_state(ctx, pp, st, next, err);
	if (ret) {
		if (st != pp->cur)
			state_free(st);
		return ret;
	}
	write_names(ctx, pp, &st->set);
	if (st != pp->cur) {
		state_free(pp->old);
		pp->old = pp->cur;
		pp->cur = st;
	}
	log_state(ctx, st);
	return 0;
}

static uint32_t prog_id(struct bpf_program *prog)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	return info.id;
}

static int policy_attach(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err)
{
	struct policy_priv *pp = bpflb_priv(ctx);
	int rc;

	rc =
	    bpflb_stage_set(ctx, BPFLB_STAGE_IN_POLICY, bpf_program__fd(pp->skel->progs.policy_in));
	if (rc)
		return bpflb_err_set(err,
				     "policy: cannot put policy_in into the ingress policy "
				     "stage: %s",
				     strerror(-rc)),
		       rc;
	rc = bpflb_stage_set(ctx, BPFLB_STAGE_OUT_POLICY,
			     bpf_program__fd(pp->skel->progs.policy_out));
	if (rc) {
		bpflb_stage_clear(ctx, BPFLB_STAGE_IN_POLICY);
		return bpflb_err_set(err,
				     "policy: cannot put policy_out into the egress policy "
				     "stage: %s",
				     strerror(-rc)),
		       rc;
	}
	return 0;
}

static int policy_detach(struct bpflb_plugin_ctx *ctx)
{
	struct policy_priv *pp = bpflb_priv(ctx);
	int rc = 0, rc2 = 0;

	if (!pp)
		return 0;
	if (bpflb_stage_prog_id(ctx, BPFLB_STAGE_IN_POLICY) == prog_id(pp->skel->progs.policy_in))
		rc = bpflb_stage_clear(ctx, BPFLB_STAGE_IN_POLICY);
	if (bpflb_stage_prog_id(ctx, BPFLB_STAGE_OUT_POLICY) == prog_id(pp->skel->progs.policy_out))
		rc2 = bpflb_stage_clear(ctx, BPFLB_STAGE_OUT_POLICY);
	return rc ? rc : rc2;
}

static void policy_fini(struct bpflb_plugin_ctx *ctx)
{
	struct policy_priv *pp = bpflb_priv(ctx);

	if (!pp)
		return;
	if (pp->old != pp->cur)
		state_free(pp->old);
	state_free(pp->cur);
	state_free(pp->pending);
	ids_free(pp);
	policy_bpf__destroy(pp->skel);
	free(pp);
	bpflb_set_priv(ctx, NULL);
}

/* Conntrack GC: flows idle past their timeout (the datapath ignores them already). */
static void policy_tick(struct bpflb_plugin_ctx *ctx)
{
	struct policy_priv *pp = bpflb_priv(ctx);
	int fd = bpf_map__fd(pp->skel->maps.bpflb_pol_ct);
	struct pol_ct_key *dead, key, next, *prev = NULL;
	struct pol_cfg cfg;
	struct pol_ct_val v;
	struct timespec ts;
	uint32_t zero = 0;
	size_t n = 0, cap = 1024;
	uint64_t now, t;

	if (bpf_map_lookup_elem(bpf_map__fd(pp->skel->maps.bpflb_pol_cfg), &zero, &cfg) ||
	    !cfg.tcp_timeout_ns)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * NSEC + ts.tv_nsec;
	dead = malloc(cap * sizeof(*dead));
	if (!dead)
		return;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		t = cfg.other_timeout_ns;
		if (key.proto == IPPROTO_TCP)
			t = v.flags & POL_CT_F_CLOSING	 ? cfg.tcp_close_timeout_ns
			    : v.flags & POL_CT_F_REPLIED ? cfg.tcp_timeout_ns
							 : cfg.tcp_syn_timeout_ns;
		if (now > v.last_seen && now - v.last_seen > t) {
			if (n == cap) {
				struct pol_ct_key *nd = reallocarray(dead, cap * 2, sizeof(*dead));

				if (!nd)
					break;
				dead = nd;
				cap *= 2;
			}
			dead[n++] = key;
		}
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &dead[i]);
	if (n)
		bpflb_log(ctx, LOG_DEBUG, "conntrack: %zu expired flows removed", n);
	free(dead);
}

/* --- control: `bpflbctl policy list|get` ---------------------------------------- */

static struct pol_rule_stats rule_stats(const struct policy_priv *pp, uint32_t id)
{
	struct pol_rule_stats sum = {0}, *v = calloc(pp->ncpus, sizeof(*v));

	if (v && !bpf_map_lookup_elem(bpf_map__fd(pp->skel->maps.bpflb_pol_rstat), &id, v))
		for (int i = 0; i < pp->ncpus; i++) {
			sum.allowed += v[i].allowed;
			sum.audit += v[i].audit;
			sum.denied += v[i].denied;
		}
	free(v);
	return sum;
}

static json_object *stats_json(const struct policy_priv *pp, uint32_t id)
{
	struct pol_rule_stats st = rule_stats(pp, id);
	json_object *o = json_object_new_object();

	json_object_object_add(o, "allowed", json_object_new_uint64(st.allowed));
	json_object_object_add(o, "audit", json_object_new_uint64(st.audit));
	json_object_object_add(o, "denied", json_object_new_uint64(st.denied));
	return o;
}

static json_object *prefix_json(const struct pol_prefix *p)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN + 8];

	snprintf(b, sizeof(b), "%s/%u", ip4(p->addr, a), p->plen);
	return json_object_new_string(b);
}

static json_object *flags_json(uint32_t flags)
{
	json_object *a = json_object_new_array();

	for (uint32_t f = 1; f <= POL_ENT_ENDPOINT; f <<= 1)
		if (flags & f)
			json_object_array_add(a, json_object_new_string(pol_entity_name(f)));
	return a;
}

static bool spec_selects_subject(const struct pol_compiled *c, const struct pol_subject *s,
				 const struct pol_spec *spec)
{
	for (int dir = 0; dir < 2; dir++) {
		uint32_t set = s->val.set[dir];

		for (size_t i = 0; set && i < c->rsets[set - 1].nspecs; i++)
			if (c->specrefs[c->rsets[set - 1].specs[i]].spec == spec)
				return true;
	}
	return false;
}

/* Subjects on this node the spec selects (in a direction it has rules for). */
static json_object *selected_json(const struct pol_state *st, const struct pol_spec *spec)
{
	const struct pol_compiled *c = &st->comp;
	json_object *a = json_object_new_array();
	bool host = false;

	for (size_t i = 0; i < c->nsubjects; i++) {
		const struct pol_subject *s = &c->subjects[i];

		if (!spec_selects_subject(c, s, spec))
			continue;
		if (!s->ep) {
			if (!host)
				json_object_array_add(a, json_object_new_string("host"));
			host = true;
			continue;
		}
		json_object_array_add(a, json_object_new_string(s->ep->name));
	}
	return a;
}

static json_object *rule_json(const struct policy_priv *pp, const struct pol_state *st,
			      const struct pol_policy *pol, const struct pol_rule *r)
{
	json_object *o = json_object_new_object(), *a, *ids;
	const struct pol_compiled *c = &st->comp;

	json_object_object_add(o, "id", json_object_new_int64(pol_rule_id(pol, r)));
	json_object_object_add(o, "section", json_object_new_string(pol_section_name(r->sec)));
	json_object_object_add(o, "index", json_object_new_int(r->index));
	json_object_object_add(o, "line", json_object_new_int(r->line));
	a = json_object_new_array();
	for (uint32_t f = 1; f <= POL_ENT_ALL; f <<= 1)
		if (r->entities & f)
			json_object_array_add(a, json_object_new_string(pol_entity_name(f)));
	json_object_object_add(o, "entities", a);
	a = json_object_new_array();
	for (size_t i = 0; i < r->ncidrs; i++) {
		json_object *cd = json_object_new_object(), *ex = json_object_new_array();

		json_object_object_add(cd, "cidr", prefix_json(&r->cidrs[i].net));
		for (size_t e = 0; e < r->cidrs[i].nexcept; e++)
			json_object_array_add(ex, prefix_json(&r->cidrs[i].except[e]));
		json_object_object_add(cd, "except", ex);
		json_object_array_add(a, cd);
	}
	json_object_object_add(o, "cidrs", a);
	json_object_object_add(o, "endpoint_selectors", json_object_new_int(r->nendpoints));
	json_object_object_add(o, "any_peer", json_object_new_boolean(r->any_peer));
	a = json_object_new_array();
	for (size_t i = 0; i < r->nports; i++) {
		json_object *p = json_object_new_object();

		json_object_object_add(p, "port", json_object_new_int(r->ports[i].port));
		json_object_object_add(p, "end", json_object_new_int(r->ports[i].end));
		json_object_object_add(
		    p, "protocol",
		    json_object_new_string(r->ports[i].proto == IPPROTO_TCP   ? "TCP"
					   : r->ports[i].proto == IPPROTO_UDP ? "UDP"
									      : "ANY"));
		json_object_array_add(a, p);
	}
	json_object_object_add(o, "ports", a);
	/* What the peers resolved to: the identities whose entries name this rule. */
	ids = json_object_new_array();
	for (size_t i = 0; i < c->nidents; i++) {
		bool used = false;

		for (size_t k = 0; k < c->nrules && !used; k++)
			used = c->rules[k].key.peer == c->idents[i].id &&
			       c->rules[k].val.rule_id == pol_rule_id(pol, r);
		if (used) {
			json_object *id = json_object_new_object();

			json_object_object_add(id, "prefix", prefix_json(&c->idents[i].pfx));
			json_object_object_add(id, "entities", flags_json(c->idents[i].flags));
			if (c->idents[i].ep)
				json_object_object_add(
				    id, "endpoint", json_object_new_string(c->idents[i].ep->name));
			json_object_array_add(ids, id);
		}
	}
	json_object_object_add(o, "peers", ids);
	json_object_object_add(o, "packets", stats_json(pp, pol_rule_id(pol, r)));
	return o;
}

static json_object *policy_json(const struct policy_priv *pp, const struct pol_state *st,
				const struct pol_policy *pol, bool detail)
{
	json_object *o = json_object_new_object(), *specs = json_object_new_array();
	bool audit = st->inv.audit || pol->audit;

	json_object_object_add(o, "name", json_object_new_string(pol->name));
	json_object_object_add(o, "id", json_object_new_int64(pol->id));
	json_object_object_add(o, "file", json_object_new_string(pol->file));
	json_object_object_add(o, "line", json_object_new_int(pol->line));
	json_object_object_add(o, "mode", json_object_new_string(audit ? "audit" : "enforcing"));
	for (size_t i = 0; i < pol->nspecs; i++) {
		const struct pol_spec *s = &pol->specs[i];
		json_object *so = json_object_new_object(), *rules = json_object_new_array();

		json_object_object_add(
		    so, "selector",
		    json_object_new_string(s->node ? "nodeSelector" : "endpointSelector"));
		json_object_object_add(so, "line", json_object_new_int(s->line));
		json_object_object_add(so, "selects", selected_json(st, s));
		for (int dir = 0; dir < 2; dir++)
			json_object_object_add(so,
					       dir ? "egress_default_deny" : "ingress_default_deny",
					       json_object_new_boolean(s->default_deny[dir] < 0
									   ? s->has_rules[dir]
									   : s->default_deny[dir]));
		json_object_object_add(so, "rules", json_object_new_int(s->nrules));
		if (detail) {
			for (size_t r = 0; r < s->nrules; r++)
				json_object_array_add(rules, rule_json(pp, st, pol, &s->rules[r]));
			json_object_object_add(so, "rule_list", rules);
		} else {
			json_object_put(rules);
		}
		json_object_array_add(specs, so);
	}
	json_object_object_add(o, "specs", specs);
	json_object_object_add(o, "default_deny_packets",
			       stats_json(pp, POL_RULE_ID(pol->id, 0, 0)));
	return o;
}

static json_object *counters_json(const struct policy_priv *pp)
{
	json_object *o = json_object_new_object();
	struct pol_counters *v = calloc(pp->ncpus, sizeof(*v));

	for (uint32_t dir = 0; v && dir < 2; dir++) {
		struct pol_counters s = {0};
		json_object *d = json_object_new_object();

		if (!bpf_map_lookup_elem(bpf_map__fd(pp->skel->maps.bpflb_pol_cnt), &dir, v))
			for (int i = 0; i < pp->ncpus; i++) {
				s.allowed += v[i].allowed;
				s.audit += v[i].audit;
				s.denied += v[i].denied;
				s.reply += v[i].reply;
				s.unselected += v[i].unselected;
			}
		json_object_object_add(d, "allowed", json_object_new_uint64(s.allowed));
		json_object_object_add(d, "audit", json_object_new_uint64(s.audit));
		json_object_object_add(d, "denied", json_object_new_uint64(s.denied));
		json_object_object_add(d, "reply", json_object_new_uint64(s.reply));
		json_object_object_add(d, "unselected", json_object_new_uint64(s.unselected));
		json_object_object_add(o, dir ? "egress" : "ingress", d);
	}
	free(v);
	return o;
}

/*
 * "metrics" for the core's /metrics: bpflb_policy_packets_total by direction
 * and verdict, from the same counters `policy list` shows.
 */
static json_object *metrics_json(const struct policy_priv *pp)
{
	static const char *const verdicts[] = { "allowed", "audit", "denied", "reply",
						"unselected" };
	json_object *c = counters_json(pp), *fam = json_object_new_object();
	json_object *samples = json_object_new_array(), *out = json_object_new_object();
	json_object *fams = json_object_new_array();

	for (int dir = 0; dir < 2; dir++) {
		json_object *d, *v;

		if (!json_object_object_get_ex(c, dir ? "egress" : "ingress", &d))
			continue;
		for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
			json_object *sm = json_object_new_object(), *l = json_object_new_object();

			json_object_object_get_ex(d, verdicts[i], &v);
			json_object_object_add(l, "direction",
					       json_object_new_string(dir ? "egress" : "ingress"));
			json_object_object_add(l, "verdict", json_object_new_string(verdicts[i]));
			json_object_object_add(sm, "labels", l);
			json_object_object_add(sm, "value", json_object_get(v));
			json_object_array_add(samples, sm);
		}
	}
	json_object_put(c);
	json_object_object_add(fam, "name", json_object_new_string("bpflb_policy_packets_total"));
	json_object_object_add(fam, "type", json_object_new_string("counter"));
	json_object_object_add(fam, "help",
			       json_object_new_string("Packets judged by network policy, by "
						      "direction and verdict (audit: would have "
						      "been dropped, passed)."));
	json_object_object_add(fam, "samples", samples);
	json_object_array_add(fams, fam);
	json_object_object_add(out, "metrics", fams);
	return out;
}

/*
 * observe: a rule id (POL_RULE_ID) back to the policy's name and the rule.
 * pp->ids also keeps names read back from bpflb_pol_names, so a drop that a
 * policy removed a moment ago still names it.
 */
static int policy_describe_rule(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage,
				uint32_t rule_id, struct bpflb_rule_desc *out)
{
	const struct policy_priv *pp = bpflb_priv(ctx);
	uint32_t pol = POL_RULE_POLICY(rule_id), sec = POL_RULE_SECTION(rule_id);

	if (!pp || (stage != BPFLB_STAGE_IN_POLICY && stage != BPFLB_STAGE_OUT_POLICY))
		return -ENOENT;
	for (size_t i = 0; i < pp->nids; i++) {
		if (pp->ids[i].id != pol)
			continue;
		snprintf(out->policy, sizeof(out->policy), "%s", pp->ids[i].name);
		if (!(rule_id & 0xffff)) {
			/* a default deny's id has no section: the stage is the direction */
			out->index = -1;
			out->ingress = stage == BPFLB_STAGE_IN_POLICY;
			out->action = BPFLB_RULE_DEFAULT_DENY;
		} else {
			out->index = (int)POL_RULE_INDEX(rule_id) - 1;
			out->ingress = sec == POL_SEC_INGRESS || sec == POL_SEC_INGRESS_DENY;
			out->action = sec == POL_SEC_INGRESS_DENY || sec == POL_SEC_EGRESS_DENY
					  ? BPFLB_RULE_DENY
					  : BPFLB_RULE_ALLOW;
		}
		return 0;
	}
	return -ENOENT;
}

static int policy_control(struct bpflb_plugin_ctx *ctx, const char *cmd, json_object *req,
			  json_object **reply)
{
	struct policy_priv *pp = bpflb_priv(ctx);
	const struct pol_state *st = pp ? pp->cur : NULL;
	json_object *name = NULL, *o, *a;
	char b[INET_ADDRSTRLEN];

	*reply = NULL;
	if (pp && !strcmp(cmd, "metrics")) {
		*reply = metrics_json(pp);
		return 0;
	}
	if (!st) {
		*reply = json_object_new_object();
		json_object_object_add(*reply, "error",
				       json_object_new_string("no policy set applied yet"));
		return -ENOENT;
	}
	if (!strcmp(cmd, "list")) {
		o = json_object_new_object();
		json_object_object_add(o, "dir", json_object_new_string(st->dir));
		json_object_object_add(o, "audit_mode", json_object_new_boolean(st->inv.audit));
		json_object_object_add(o, "generation", json_object_new_int(pp->gen));
		json_object_object_add(o, "identities", json_object_new_int64(st->comp.nidents));
		json_object_object_add(o, "rule_entries", json_object_new_int64(st->comp.nrules));
		a = json_object_new_array();
		for (size_t i = 0; i < st->set.n; i++)
			json_object_array_add(a, policy_json(pp, st, &st->set.pols[i], false));
		json_object_object_add(o, "policies", a);
		a = json_object_new_array();
		for (size_t i = 0; i < st->comp.nsubjects; i++) {
			const struct pol_subject *s = &st->comp.subjects[i];
			json_object *so = json_object_new_object();

			json_object_object_add(
			    so, "subject", json_object_new_string(s->ep ? s->ep->name : "host"));
			json_object_object_add(so, "address",
					       json_object_new_string(ip4(s->addr, b)));
			for (int dir = 0; dir < 2; dir++)
				json_object_object_add(
				    so, dir ? "egress" : "ingress",
				    json_object_new_string(
					!s->val.set[dir]		  ? "open"
					: s->val.def_audit[dir]		  ? "default deny (audit)"
					: s->val.def[dir] == POL_ACT_DENY ? "default deny"
									  : "rules"));
			json_object_array_add(a, so);
		}
		json_object_object_add(o, "subjects", a);
		json_object_object_add(o, "packets", counters_json(pp));
		*reply = o;
		return 0;
	}
	if (!strcmp(cmd, "get")) {
		const char *want = NULL;

		if (req && json_object_object_get_ex(req, "name", &name))
			want = json_object_get_string(name);
		for (size_t i = 0; want && i < st->set.n; i++)
			if (!strcmp(st->set.pols[i].name, want)) {
				*reply = policy_json(pp, st, &st->set.pols[i], true);
				return 0;
			}
		*reply = json_object_new_object();
		json_object_object_add(
		    *reply, "error",
		    json_object_new_string(want ? "no such policy" : "get needs {\"name\": NAME}"));
		return want ? -ENOENT : -EINVAL;
	}
	*reply = json_object_new_object();
	json_object_object_add(*reply, "error",
			       json_object_new_string("unknown command; expected list or get"));
	return -ENOENT;
}

/* Flow events and drop counters go to the shared maps; the rules are ours. */
static const struct bpflb_map_set policy_map_sets[] = {
	{BPFLB_MAP_SET_LB, BPFLB_LB_SCHEMA},
	{NULL, 0},
};
static const char *const policy_own_maps[] = {"bpflb_pol_ct", "bpflb_pol_cnt", "bpflb_pol_rstat",
					      "bpflb_pol_names", NULL};

BPFLB_PLUGIN_DEFINE(.name = "policy", .version = "0.1.0", .kind = BPFLB_PLUGIN_FEATURE,
		    .map_schema_version = POLICY_SCHEMA, .map_sets = policy_map_sets,
		    .own_maps = policy_own_maps,
		    .description =
			"CiliumClusterwideNetworkPolicy for the node and its workloads, with audit "
			"mode",
		    .sections = policy_sections, .requires = policy_requires, .init = policy_init,
		    .validate = policy_validate, .apply = policy_apply, .attach = policy_attach,
		    .detach = policy_detach, .fini = policy_fini, .tick = policy_tick,
		    .control = policy_control, .describe_rule = policy_describe_rule, );
