// SPDX-License-Identifier: GPL-2.0-only
/*
 * Views of the service state (services_query.h).  Everything here reads: the
 * applied model (what the configuration and runtime changes say), the ids the
 * services object handed out, and the pinned maps (what the datapath sees).
 * The only write is svcq_ct_flush(), an explicit operator request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb/services_model.h"
#include "lb/services_query.h"
#include "ops/wire.h"

/* --- names ------------------------------------------------------------------- */

static const char *const state_names[] = {"active", "terminating", "maintenance"};

const char *svcq_state_name(uint8_t state)
{
	return state < 3 ? state_names[state] : "unknown";
}

int svcq_state_parse(const char *s, uint8_t *state)
{
	for (uint8_t i = 0; i < 3; i++) {
		if (!strcmp(s, state_names[i])) {
			*state = i;
			return 0;
		}
	}
	return -EINVAL;
}

static json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : json_object_new_null();
}

static json_object *jaddr(uint32_t addr_be)
{
	char b[32];

	return json_object_new_string(wire_addrport(addr_be, 0, b, sizeof(b)));
}

static json_object *jap(uint32_t addr_be, uint16_t port)
{
	char b[32];

	return json_object_new_string(wire_addrport(addr_be, port, b, sizeof(b)));
}

/* --- services ------------------------------------------------------------------ */

static const char *type_name(enum svc_type t)
{
	static const char *const n[] = {"nodeport", "loadbalancer", "externalip", "hostport"};

	return (unsigned int)t < 4 ? n[t] : "unknown";
}

static uint8_t backend_state(struct bpflb_services *s, const struct svc_def *d,
			     const struct svc_backend *b, unsigned int pi, uint32_t *id)
{
	struct bpflb_backend be;

	*id = bpflb_services_backend_id(s, b->addr, svc_backend_port(d, b, pi));
	if (*id && bpflb_services_backend_get(s, *id, &be))
		return be.state;
	return b->state;
}

static int stats_sum(struct bpflb_services *s, uint32_t id, struct bpflb_svc_stats *sum)
{
	int fd = bpflb_services_map_fd(s, "bpflb_svc_stats"), ncpu = libbpf_num_possible_cpus();
	struct bpflb_svc_stats *v;

	memset(sum, 0, sizeof(*sum));
	if (fd < 0 || ncpu <= 0 || !id)
		return -ENOENT;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &id, v)) {
		free(v);
		return -errno;
	}
	for (int c = 0; c < ncpu; c++) {
		sum->fwd_packets += v[c].fwd_packets;
		sum->fwd_bytes += v[c].fwd_bytes;
		sum->drop_packets += v[c].drop_packets;
		sum->drop_bytes += v[c].drop_bytes;
	}
	free(v);
	return 0;
}

static json_object *service_json(struct bpflb_services *s, const struct svc_model *m,
				 const struct svc_def *d)
{
	json_object *o = json_object_new_object(), *ports = json_object_new_array();
	json_object *bes = json_object_new_array(), *a;
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];
	int rt = bpflb_services_svc_runtime(s, d->name);

	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "namespace", json_object_new_string(d->ns));
	json_object_object_add(o, "type", json_object_new_string(type_name(d->type)));
	json_object_object_add(o, "origin", json_object_new_string(rt ? "overlay" : "config"));
	json_object_object_add(o, "on_node", json_object_new_boolean(svc_on_node(m, d)));
	json_object_object_add(o, "external_traffic_policy",
			       json_object_new_string(d->etp_local ? "local" : "cluster"));
	json_object_object_add(o, "no_backend",
			       json_object_new_string(d->reject ? "reject" : "drop"));
	json_object_object_add(
	    o, "algorithm", json_object_new_string(d->alg == SVC_ALG_MAGLEV ? "maglev" : "random"));
	json_object_object_add(o, "forwarding",
			       json_object_new_string(d->fwd == SVC_FWD_SNAT  ? "snat"
						      : d->fwd == SVC_FWD_DSR ? "dsr"
									      : "auto"));
	if (d->hc_port)
		json_object_object_add(o, "health_check_node_port",
				       json_object_new_int(d->hc_port));
	a = json_object_new_array();
	for (unsigned int i = 0; i < d->nlb; i++)
		json_object_array_add(a, jaddr(d->lb_ips[i]));
	json_object_object_add(o, "lb_ips", a);
	a = json_object_new_array();
	for (unsigned int i = 0; i < d->next; i++)
		json_object_array_add(a, jaddr(d->ext_ips[i]));
	json_object_object_add(o, "external_ips", a);

	for (unsigned int p = 0; p < d->nports; p++) {
		const struct svc_port *sp = &d->ports[p];
		json_object *po = json_object_new_object(), *fes = json_object_new_array(), *st;
		unsigned int nk = svc_frontends(m, d, p, keys);
		uint32_t id = bpflb_services_svc_id(s, d->name, sp->name), nsel = 0;
		struct bpflb_svc_stats sum;

		json_object_object_add(po, "name", json_object_new_string(sp->name));
		json_object_object_add(po, "proto",
				       json_object_new_string(wire_proto_name(sp->proto)));
		json_object_object_add(po, "port", json_object_new_int(sp->port));
		json_object_object_add(po, "nodeport", json_object_new_int(sp->nodeport));
		json_object_object_add(po, "target", json_object_new_int(sp->target));
		json_object_object_add(po, "id", json_object_new_int64(id));
		for (unsigned int f = 0; f < nk; f++)
			json_object_array_add(fes, jap(keys[f].addr, ntohs(keys[f].port)));
		json_object_object_add(po, "frontends", fes);
		for (unsigned int b = 0; b < d->nbes; b++) {
			uint32_t bid;

			nsel += svc_backend_selectable(m, d, &d->bes[b],
						       backend_state(s, d, &d->bes[b], p, &bid));
		}
		json_object_object_add(po, "selectable_backends", json_object_new_int64(nsel));
		st = json_object_new_object();
		stats_sum(s, id, &sum);
		json_object_object_add(st, "fwd_packets", json_object_new_uint64(sum.fwd_packets));
		json_object_object_add(st, "fwd_bytes", json_object_new_uint64(sum.fwd_bytes));
		json_object_object_add(st, "drop_packets",
				       json_object_new_uint64(sum.drop_packets));
		json_object_object_add(st, "drop_bytes", json_object_new_uint64(sum.drop_bytes));
		json_object_object_add(po, "stats", st);
		json_object_array_add(ports, po);
	}
	json_object_object_add(o, "ports", ports);

	for (unsigned int b = 0; b < d->nbes; b++) {
		const struct svc_backend *be = &d->bes[b];

		for (unsigned int p = 0; p < d->nports; p++) {
			json_object *bo = json_object_new_object();
			uint32_t bid;
			uint8_t state = backend_state(s, d, be, p, &bid);

			json_object_object_add(bo, "addr", jaddr(be->addr));
			json_object_object_add(bo, "port",
					       json_object_new_int(svc_backend_port(d, be, p)));
			json_object_object_add(bo, "service_port",
					       json_object_new_string(d->ports[p].name));
			json_object_object_add(bo, "node",
					       json_object_new_string(svc_be_node(m, be)));
			json_object_object_add(bo, "state",
					       json_object_new_string(svcq_state_name(state)));
			json_object_object_add(bo, "configured_state",
					       json_object_new_string(svcq_state_name(be->state)));
			json_object_object_add(bo, "hostnet", json_object_new_boolean(be->hostnet));
			json_object_object_add(bo, "id", json_object_new_int64(bid));
			json_object_array_add(bes, bo);
		}
	}
	json_object_object_add(o, "backends", bes);
	return o;
}

json_object *svcq_services(struct bpflb_services *s, const char *name, struct bpflb_err *err)
{
	const struct svc_model *m = s ? svc_services_model(s) : NULL;
	json_object *arr;

	if (!m) {
		if (name) {
			bpflb_err_set(err, "no service '%s': no configuration applied", name);
			return NULL;
		}
		return json_object_new_array();
	}
	if (name) {
		const struct svc_def *d = svc_model_find(m, name);

		if (d)
			return service_json(s, m, d);
		bpflb_err_set(err, "no service '%s'", name);
		return NULL;
	}
	arr = json_object_new_array();
	for (unsigned int i = 0; i < m->nsvcs; i++)
		json_object_array_add(arr, service_json(s, m, m->svcs[i]));
	return arr;
}

json_object *svcq_backends(struct bpflb_services *s)
{
	const struct svc_model *m = s ? svc_services_model(s) : NULL;
	json_object *arr = json_object_new_array();
	struct bpflb_backend be;
	uint32_t id;

	for (size_t i = 0; s && bpflb_services_backend_at(s, i, &id, &be); i++) {
		json_object *o = json_object_new_object(), *users = json_object_new_array();
		const char *node = NULL;
		uint8_t configured = be.state;
		uint32_t addr;
		uint16_t oport;
		uint8_t ostate;
		bool overridden = false;

		for (unsigned int si = 0; m && si < m->nsvcs; si++) {
			const struct svc_def *d = m->svcs[si];

			for (unsigned int b = 0; b < d->nbes; b++) {
				if (d->bes[b].addr != be.addr)
					continue;
				for (unsigned int p = 0; p < d->nports; p++) {
					char key[2 * SVC_NAME_LEN + 2];

					if (svc_backend_port(d, &d->bes[b], p) != ntohs(be.port))
						continue;
					snprintf(key, sizeof(key), "%s/%s", d->name,
						 d->ports[p].name);
					json_object_array_add(users, json_object_new_string(key));
					node = svc_be_node(m, &d->bes[b]);
					configured = d->bes[b].state;
				}
			}
		}
		for (size_t k = 0; bpflb_services_override_at(s, k, &addr, &oport, &ostate); k++)
			overridden |= addr == be.addr && (!oport || oport == ntohs(be.port));
		json_object_object_add(o, "id", json_object_new_int64(id));
		json_object_object_add(o, "addr", jaddr(be.addr));
		json_object_object_add(o, "port", json_object_new_int(ntohs(be.port)));
		json_object_object_add(o, "state",
				       json_object_new_string(svcq_state_name(be.state)));
		json_object_object_add(o, "configured_state",
				       json_object_new_string(svcq_state_name(configured)));
		json_object_object_add(o, "override", json_object_new_boolean(overridden));
		json_object_object_add(o, "node", jstr(node));
		json_object_object_add(o, "node_addr", jaddr(be.node_addr));
		json_object_object_add(o, "local",
				       json_object_new_boolean(be.flags & BPFLB_BE_F_LOCAL));
		json_object_object_add(o, "hostnet",
				       json_object_new_boolean(be.flags & BPFLB_BE_F_HOSTNET));
		json_object_object_add(o, "services", users);
		json_object_array_add(arr, o);
	}
	return arr;
}

/* --- conntrack ---------------------------------------------------------------- */

int svcq_ct_filter_service(struct bpflb_services *s, const char *spec, struct svcq_ct_filter *f,
			   struct bpflb_err *err)
{
	const struct svc_model *m = svc_services_model(s);
	char name[SVC_NAME_LEN], *slash;
	const char *port = NULL;

	snprintf(name, sizeof(name), "%s", spec);
	slash = strchr(name, '/');
	if (slash) {
		*slash = '\0';
		port = slash + 1;
	}
	f->by_service = true;
	f->nsvc = 0;
	for (unsigned int i = 0; m && i < m->nsvcs; i++) {
		const struct svc_def *d = m->svcs[i];

		if (strcmp(d->name, name))
			continue;
		for (unsigned int p = 0; p < d->nports && f->nsvc < 64; p++) {
			uint32_t id;

			if (port && strcmp(port, d->ports[p].name))
				continue;
			id = bpflb_services_svc_id(s, d->name, d->ports[p].name);
			if (id)
				f->svc_ids[f->nsvc++] = id;
		}
		if (port && !f->nsvc)
			return bpflb_err_set(err, "service '%s' has no port '%s' on this node",
					     name, port),
			       -ENOENT;
		return 0;
	}
	return bpflb_err_set(err, "no service '%s'", name), -ENOENT;
}

static bool ct_match(const struct svcq_ct_filter *f, const struct bpflb_ct_key *k,
		     const struct bpflb_ct_val *v)
{
	if (f->proto && k->proto != f->proto)
		return false;
	if (f->nat_only && (k->kind != BPFLB_CT_FWD || !v->nat_port))
		return false;
	if (f->by_addr && k->saddr != f->addr && k->daddr != f->addr && v->addr != f->addr &&
	    v->nat_addr != f->addr)
		return false;
	if (f->by_service) {
		bool hit = false;

		for (unsigned int i = 0; i < f->nsvc; i++)
			hit |= v->svc_id == f->svc_ids[i];
		if (!hit)
			return false;
	}
	return true;
}

static const char *ct_state_name(uint8_t st)
{
	return st == BPFLB_CT_NEW	    ? "new"
	       : st == BPFLB_CT_ESTABLISHED ? "established"
	       : st == BPFLB_CT_CLOSING	    ? "closing"
					    : "unknown";
}

static json_object *ct_json(struct bpflb_services *s, const struct bpflb_ct_key *k,
			    const struct bpflb_ct_val *v, uint64_t now)
{
	json_object *o = json_object_new_object();
	const char *svc = bpflb_services_svc_key(s, v->svc_id);

	json_object_object_add(o, "kind",
			       json_object_new_string(k->kind == BPFLB_CT_FWD	? "fwd"
						      : k->kind == BPFLB_CT_REV ? "rev"
										: "unknown"));
	json_object_object_add(o, "proto", json_object_new_string(wire_proto_name(k->proto)));
	json_object_object_add(o, "src", jap(k->saddr, ntohs(k->sport)));
	json_object_object_add(o, "dst", jap(k->daddr, ntohs(k->dport)));
	json_object_object_add(o, "state", json_object_new_string(ct_state_name(v->state)));
	json_object_object_add(o, "fwd", json_object_new_string(wire_fwd_name(v->fwd)));
	json_object_object_add(o, "service", jstr(svc));
	json_object_object_add(o, "svc_id", json_object_new_int64(v->svc_id));
	json_object_object_add(
	    o, "backend_id", json_object_new_int64(bpflb_ct_is_dsr_rev(k, v) ? 0 : v->backend_id));
	/* FWD: the backend; REV: the client */
	json_object_object_add(o, k->kind == BPFLB_CT_REV ? "client" : "backend",
			       jap(v->addr, ntohs(v->port)));
	/* FWD: SNAT source; REV: the frontend restored as the reply's source */
	json_object_object_add(o, k->kind == BPFLB_CT_REV ? "frontend" : "nat",
			       v->nat_port || v->nat_addr ? jap(v->nat_addr, ntohs(v->nat_port))
							  : json_object_new_null());
	json_object_object_add(
	    o, "age_s",
	    json_object_new_uint64(now > v->created ? (now - v->created) / 1000000000ull : 0));
	json_object_object_add(
	    o, "idle_s",
	    json_object_new_uint64(now > v->last_seen ? (now - v->last_seen) / 1000000000ull : 0));
	return o;
}

static int ct_dump(struct bpflb_services *s, void **k, void **v, size_t *n, struct bpflb_err *err)
{
	int fd = bpflb_services_map_fd(s, "bpflb_ct"), ret;

	if (fd < 0)
		return bpflb_err_set(err, "conntrack map not open"), -ENOENT;
	ret = svc_map_dump(fd, sizeof(struct bpflb_ct_key), sizeof(struct bpflb_ct_val), k, v, n);
	if (ret)
		bpflb_err_set(err, "cannot read bpflb_ct: %s", strerror(-ret));
	return ret;
}

int svcq_ct_list(struct bpflb_services *s, const struct svcq_ct_filter *f, json_object **out,
		 struct bpflb_err *err)
{
	void *k = NULL, *v = NULL;
	size_t n = 0, total = 0;
	uint64_t now = bpflb_mono_ns();
	json_object *arr, *o;
	int ret;

	ret = ct_dump(s, &k, &v, &n, err);
	if (ret)
		return ret;
	arr = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		const struct bpflb_ct_key *ck = (const struct bpflb_ct_key *)k + i;
		const struct bpflb_ct_val *cv = (const struct bpflb_ct_val *)v + i;

		if (!ct_match(f, ck, cv))
			continue;
		if (!f->limit || total < f->limit)
			json_object_array_add(arr, ct_json(s, ck, cv, now));
		total++;
	}
	free(k);
	free(v);
	o = json_object_new_object();
	json_object_object_add(o, "total", json_object_new_uint64(total));
	json_object_object_add(o, "truncated",
			       json_object_new_boolean(f->limit && total > f->limit));
	json_object_object_add(o, "entries", arr);
	*out = o;
	return 0;
}

long svcq_ct_count(struct bpflb_services *s)
{
	void *k = NULL, *v = NULL;
	size_t n = 0;
	struct bpflb_err err;
	int ret = ct_dump(s, &k, &v, &n, &err);

	free(k);
	free(v);
	return ret ? ret : (long)n;
}

int svcq_ct_flush(struct bpflb_services *s, const struct svcq_ct_filter *f, uint64_t *deleted,
		  struct bpflb_err *err)
{
	int fd = bpflb_services_map_fd(s, "bpflb_ct"), ret;
	void *k = NULL, *v = NULL;
	size_t n = 0;

	*deleted = 0;
	ret = ct_dump(s, &k, &v, &n, err);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		const struct bpflb_ct_key *ck = (const struct bpflb_ct_key *)k + i;
		const struct bpflb_ct_val *cv = (const struct bpflb_ct_val *)v + i;
		struct bpflb_ct_key pk;

		if (!ct_match(f, ck, cv))
			continue;
		/* the partner goes too: entries of a flow live and die as a pair (lb.h) */
		if (!bpf_map_delete_elem(fd, ck))
			(*deleted)++;
		if (bpflb_ct_partner(ck, cv, &pk) && !bpf_map_delete_elem(fd, &pk))
			(*deleted)++;
	}
	free(k);
	free(v);
	return 0;
}

/* --- Maglev ---------------------------------------------------------------------- */

json_object *svcq_maglev(struct bpflb_services *s, const char *spec, struct bpflb_err *err)
{
	const struct svc_model *m = svc_services_model(s);
	char name[SVC_NAME_LEN], *slash;
	const char *port = NULL;
	const struct svc_def *d = NULL;
	const struct svc_port *sp = NULL;
	json_object *o, *arr;
	uint32_t id, *table, *ids = NULL, *cnt = NULL, nids = 0, empty = 0, mm;
	int ret;

	snprintf(name, sizeof(name), "%s", spec);
	slash = strchr(name, '/');
	if (slash) {
		*slash = '\0';
		port = slash + 1;
	}
	if (m)
		d = svc_model_find(m, name);
	if (!d) {
		bpflb_err_set(err, "no service '%s'", name);
		return NULL;
	}
	if (!port && d->nports > 1) {
		bpflb_err_set(err, "service '%s' has %u ports; name one as %s/PORT", name,
			      d->nports, name);
		return NULL;
	}
	for (unsigned int p = 0; p < d->nports; p++)
		if (!port || !strcmp(port, d->ports[p].name))
			sp = &d->ports[p];
	if (!sp) {
		bpflb_err_set(err, "service '%s' has no port '%s'", name, port);
		return NULL;
	}
	if (d->alg != SVC_ALG_MAGLEV) {
		bpflb_err_set(err, "service '%s' selects backends at random, not with Maglev",
			      name);
		return NULL;
	}
	id = bpflb_services_svc_id(s, d->name, sp->name);
	mm = m->lb.maglev_m;
	table = calloc(mm, sizeof(*table));
	if (!table) {
		bpflb_err_set(err, "out of memory");
		return NULL;
	}
	ret = id ? bpflb_services_maglev_table(s, id, table, mm) : -ENOENT;
	if (ret) {
		bpflb_err_set(err,
			      "no Maglev table for %s/%s in bpflb_maglev (%s): the service has no "
			      "selectable backend on this node",
			      d->name, sp->name, strerror(-ret));
		free(table);
		return NULL;
	}
	for (uint32_t i = 0; i < mm; i++) {
		uint32_t j;

		if (!table[i]) {
			empty++;
			continue;
		}
		for (j = 0; j < nids && ids[j] != table[i]; j++)
			;
		if (j == nids) {
			uint32_t *ni = realloc(ids, (nids + 1) * sizeof(*ids));
			uint32_t *nc = ni ? realloc(cnt, (nids + 1) * sizeof(*cnt)) : NULL;

			if (ni)
				ids = ni;
			if (!nc) {
				free(ids);
				free(cnt);
				free(table);
				bpflb_err_set(err, "out of memory");
				return NULL;
			}
			cnt = nc;
			ids[nids] = table[i];
			cnt[nids++] = 0;
		}
		cnt[j]++;
	}
	o = json_object_new_object();
	arr = json_object_new_array();
	json_object_object_add(o, "service", json_object_new_string(d->name));
	json_object_object_add(o, "port", json_object_new_string(sp->name));
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "size", json_object_new_int64(mm));
	json_object_object_add(o, "empty", json_object_new_int64(empty));
	for (uint32_t i = 0; i < nids; i++) {
		json_object *b = json_object_new_object();
		struct bpflb_backend be;

		json_object_object_add(b, "id", json_object_new_int64(ids[i]));
		if (bpflb_services_backend_get(s, ids[i], &be))
			json_object_object_add(b, "backend", jap(be.addr, ntohs(be.port)));
		else
			json_object_object_add(b, "backend", json_object_new_null());
		json_object_object_add(b, "entries", json_object_new_int64(cnt[i]));
		json_object_object_add(b, "share", json_object_new_double((double)cnt[i] / mm));
		json_object_array_add(arr, b);
	}
	json_object_object_add(o, "backends", arr);
	free(ids);
	free(cnt);
	free(table);
	return o;
}

/* --- counters ---------------------------------------------------------------------- */

int svcq_svc_stats(struct bpflb_services *s, svcq_stats_cb cb, void *ctx)
{
	const struct svc_model *m = svc_services_model(s);

	for (unsigned int i = 0; m && i < m->nsvcs; i++) {
		const struct svc_def *d = m->svcs[i];

		for (unsigned int p = 0; p < d->nports; p++) {
			uint32_t id = bpflb_services_svc_id(s, d->name, d->ports[p].name);
			struct bpflb_svc_stats sum;

			if (!id)
				continue;
			stats_sum(s, id, &sum);
			cb(ctx, d->name, d->ports[p].name, id, &sum);
		}
	}
	return 0;
}
