// SPDX-License-Identifier: GPL-2.0-only
/*
 * Service state of this node: from the model (services_config.c) to what the
 * pinned maps must hold, and from there to the few map writes that get them
 * there.
 *
 * The daemon keeps `cur`, its picture of the maps: read from the maps at open
 * (so a restarted daemon diffs against what its predecessor left, and keeps
 * its ids) and replaced by the desired state after each successful apply.  A
 * failed apply marks the picture stale and the next apply reads the maps again.
 *
 * Ids.  Conntrack entries record svc_id and backend_id, so an id must name the
 * same thing across reloads and restarts:
 *  - a backend is its address:port (one endpoint, whatever services list it):
 *    an address:port already in bpflb_backends keeps its id;
 *  - a service port keeps its id by name ("svc/port") across reloads, and,
 *    after a restart (names are not in the maps), by any of its frontends
 *    (address, port, protocol) found in bpflb_svc;
 *  - new ids are handed out round robin above the highest one in use, so a
 *    freed id is not reused before the whole id space went round.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb/healthz.h"
#include "log.h"
#include "lb/maglev.h"
#include "lb/plan.h"
#include "lb/services.h"
#include "lb/services_model.h"

/* A service of the overlay (set or deleted through the control socket). */
struct svc_runtime {
	char name[SVC_NAME_LEN];
	bool deleted;
	/*
	 * The file's def of the service this entry hides, put back when the entry
	 * is cleared; NULL when the file has no such service.  Kept here because
	 * the running configuration does not keep its [service] text.
	 */
	struct svc_def *shadow;
};

static void rt_free(struct svc_runtime *rt, size_t n)
{
	for (size_t i = 0; rt && i < n; i++)
		svc_def_free(rt[i].shadow);
	free(rt);
}

struct bpflb_services {
	char pin_root[PATH_MAX];
	uv_loop_t *loop;
	int fd_svc, fd_slots, fd_be, fd_mg, fd_node, fd_ct, fd_stats;
	uint32_t be_type, stats_type, stats_vsize;
	uint32_t mg_inner_m, mg_inner_flags;
	struct dstate cur;
	bool stale; /* cur may not match the maps: read them again */
	struct svc_stidx ix; /* beside cur, for changing a few services (services_change.c) */
	bool whole;	     /* every change computes the whole state (bench: the old way) */
	struct svc_model model;
	bool have_model;
	struct svc_ovr *ovr;
	size_t novr;
	uint32_t next_svc_id, next_be_id;
	struct bpflb_healthz *hz;
	uv_timer_t *gc_timer;
	uint64_t gc_interval_ms;
	struct bpflb_ct_timeouts ct;
	uint64_t map_writes;  /* every update and delete, ever */
	uint64_t last_writes; /* by the last successful apply */
	struct bpflb_services_summary summary; /* of the last successful apply */
	struct svc_runtime *rt; /* services changed through the control socket */
	size_t nrt;
	struct bpflb_services_gc gc;
	struct bpflb_services_repairs *repairs; /* set while a resync writes: what it repairs */
};

/* --- helpers ---------------------------------------------------------------- */

static const char *ipstr(uint32_t be, char *buf)
{
	struct in_addr a = {.s_addr = be};

	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

uint64_t svc_fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int svc_idset_init(struct svc_idset *s, uint32_t max)
{
	s->max = max;
	s->w = calloc((max + 63) / 64, sizeof(uint64_t));
	return s->w ? 0 : -ENOMEM;
}

bool svc_idset_has(const struct svc_idset *s, uint32_t id)
{
	return id < s->max && (s->w[id / 64] >> (id % 64)) & 1;
}

void svc_idset_add(struct svc_idset *s, uint32_t id)
{
	if (id < s->max)
		s->w[id / 64] |= 1ull << (id % 64);
}

/* Next free id in [1, max) from *cursor on, round robin; 0 when full. */
uint32_t svc_idset_alloc(struct svc_idset *s, uint32_t *cursor)
{
	uint32_t id = *cursor;

	for (uint32_t tries = 0; tries < s->max; tries++, id++) {
		if (id == 0 || id >= s->max)
			id = 1;
		if (!svc_idset_has(s, id)) {
			svc_idset_add(s, id);
			*cursor = id + 1 >= s->max ? 1 : id + 1;
			return id;
		}
	}
	return 0;
}

/* --- desired state ------------------------------------------------------------ */

/*
 * A backend DSR cannot reach, whose flows the datapath forwards by SNAT
 * instead (BPFLB_BE_F_NO_DSR): a host-network endpoint on one of its node's
 * other addresses, with option dispatch.  The dispatched packet is routed by
 * its destination, which may lead to a device of that node bpflbd does not
 * handle (no option read there, no source restored on the reply); IP-in-IP
 * always reaches the node's own address.
 */
static bool be_no_dsr(const struct svc_model *m, const struct svc_backend *b, uint32_t node_addr)
{
	return b->hostnet && !m->lb.dsr_ipip && b->addr != node_addr && !svc_be_local(b);
}

static void be_no_dsr_log(const struct svc_model *m, const struct svc_backend *b, uint16_t port)
{
	char a[INET_ADDRSTRLEN];

	pr_notice("backend %s:%u (hostnet on %s, not its node address): DSR option dispatch "
		  "cannot reach it; its flows use SNAT (dsr_dispatch = ipip would reach it)",
		  inet_ntop(AF_INET, &b->addr, a, sizeof(a)), port, m->nodes[b->node].name);
}

uint8_t svc_ovr_state(const struct svc_input *in, uint32_t addr, uint16_t port, uint8_t state)
{
	bool exact = false;

	for (size_t i = 0; i < in->novr; i++) {
		const struct svc_ovr *o = &in->ovr[i];

		if (o->addr != addr)
			continue;
		if (o->port == port) {
			state = o->state;
			exact = true;
		} else if (!o->port && !exact) {
			state = o->state;
		}
	}
	return state;
}

int svc_ident_cmp(const void *a, const void *b)
{
	const struct svc_be_ident *x = a, *y = b;

	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/* "svc/port", malloc'ed. */
char *svc_sp_key(const char *svc, const char *port)
{
	size_t a = strlen(svc), b = strlen(port);
	char *k = malloc(a + b + 2);

	if (k) {
		memcpy(k, svc, a);
		k[a] = '/';
		memcpy(k + a + 1, port, b + 1);
	}
	return k;
}

static int sp_key_cmp(const void *a, const void *b)
{
	const struct dsp *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

int svc_mg_cmp(const void *a, const void *b)
{
	const struct bpflb_maglev_backend *x = a, *y = b;

	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/* The entry of backend b at addr:port (host order); prev: its current entry, if any. */
void svc_be_fill(const struct svc_model *m, const struct svc_input *in, const struct svc_backend *b,
		 uint32_t addr, uint16_t port, const struct dbe *prev, struct dbe *e)
{
	const struct svc_node *node = &m->nodes[b->node];

	e->val.addr = addr;
	e->val.port = htons(port);
	e->val.state = svc_ovr_state(in, addr, port, b->state);
	e->val.flags =
	    (svc_be_local(b) ? BPFLB_BE_F_LOCAL : 0) | (b->hostnet ? BPFLB_BE_F_HOSTNET : 0);
	e->val.node_addr = node->naddrs ? node->addrs[0] : 0;
	if (be_no_dsr(m, b, e->val.node_addr)) {
		e->val.flags |= BPFLB_BE_F_NO_DSR;
		if (in->log && !(prev && (prev->val.flags & BPFLB_BE_F_NO_DSR)))
			be_no_dsr_log(m, b, port);
	}
}

/*
 * Slots, Maglev inputs and frontends of port pi of d (frontend keys[0..nk)),
 * into sp (its id set) and D->fe (room made by the caller).  ids: the
 * backends by identity (sorted, svc_ident_cmp), each with its desired entry.
 */
int svc_port_fill(const struct svc_model *m, const struct svc_def *d, unsigned int pi,
		  const struct bpflb_svc_key *keys, unsigned int nk, struct dsp *sp,
		  const struct svc_be_ident *ids, size_t nids, struct dstate *D)
{
	struct bpflb_maglev_backend *sel;
	unsigned int n = 0;
	uint16_t flags = 0;

	sel = calloc(d->nbes ? d->nbes : 1, sizeof(*sel));
	if (!sel)
		return -ENOMEM;
	for (unsigned int b = 0; b < d->nbes; b++) {
		struct svc_be_ident key = {d->bes[b].addr, svc_backend_port(d, &d->bes[b], pi),
					   NULL, NULL};
		const struct svc_be_ident *hit =
		    bsearch(&key, ids, nids, sizeof(*ids), svc_ident_cmp);
		const struct dbe *e = hit->e;

		if (svc_backend_selectable(m, d, &d->bes[b], e->val.state))
			sel[n++] = (struct bpflb_maglev_backend){e->id, key.addr, key.port};
	}
	/* identity order: the same on every node, whatever the ids */
	qsort(sel, n, sizeof(*sel), svc_mg_cmp);
	sp->nslots = n;
	sp->slots = calloc(n ? n : 1, sizeof(*sp->slots));
	if (!sp->slots) {
		free(sel);
		return -ENOMEM;
	}
	for (unsigned int b = 0; b < n; b++)
		sp->slots[b] = sel[b].id;
	if (d->alg == SVC_ALG_MAGLEV && n) {
		uint64_t h = 0xcbf29ce484222325ull;

		sp->maglev = true;
		sp->mg = sel;
		sp->nmg = n;
		h = svc_fnv1a(h, &m->lb.maglev_m, sizeof(m->lb.maglev_m));
		h = svc_fnv1a(h, &m->lb.hash_seed, sizeof(m->lb.hash_seed));
		for (unsigned int b = 0; b < n; b++)
			h = svc_fnv1a(h, &sel[b], sizeof(sel[b]));
		sp->sig = h;
		sp->sig_known = true;
		flags |= BPFLB_SVC_F_MAGLEV;
	} else {
		free(sel);
	}
	if (d->etp_local)
		flags |= BPFLB_SVC_F_ETP_LOCAL;
	if (d->reject)
		flags |= BPFLB_SVC_F_REJECT;
	if (d->fwd == SVC_FWD_SNAT)
		flags |= BPFLB_SVC_F_FWD_SNAT;
	if (d->fwd == SVC_FWD_DSR)
		flags |= BPFLB_SVC_F_FWD_DSR;
	if (d->type == SVC_T_HOSTPORT)
		flags |= BPFLB_SVC_F_HOSTPORT;
	for (unsigned int f = 0; f < nk; f++) {
		struct dfe *fe = &D->fe[D->nfe++];

		fe->key = keys[f];
		fe->val.id = sp->id;
		fe->val.count = (uint16_t)n;
		fe->val.flags = flags;
		fe->val.total = (uint16_t)d->nbes;
	}
	return 0;
}

/* The health check of d, when it has one, into D->hz (room made by the caller). */
void svc_hz_add(const struct svc_model *m, const struct svc_def *d, const struct svc_input *in,
		struct dstate *D)
{
	uint32_t local_eps = 0;

	if (!d->hc_port || !d->etp_local)
		return;
	/* kube-proxy counts local ready endpoints, i.e. addresses */
	for (unsigned int b = 0; b < d->nbes; b++) {
		const struct svc_backend *be = &d->bes[b];
		bool seen = false;

		if (!svc_be_local(be) || svc_ovr_state(in, be->addr, svc_backend_port(d, be, 0),
						       be->state) != BPFLB_BE_ACTIVE)
			continue;
		for (unsigned int o = 0; o < b; o++)
			seen |=
			    d->bes[o].addr == be->addr && svc_be_local(&d->bes[o]) &&
			    svc_ovr_state(in, d->bes[o].addr, svc_backend_port(d, &d->bes[o], 0),
					  d->bes[o].state) == BPFLB_BE_ACTIVE;
		local_eps += !seen;
	}
	D->hz[D->nhz++] = (struct bpflb_healthz_svc){
	    .ns = d->ns,
	    .name = d->name,
	    .addr = m->lb.hz_bind_set ? m->lb.hz_bind : m->self.addrs[0],
	    .port = d->hc_port,
	    .local_endpoints = local_eps,
	};
}

int svc_compute(const struct svc_model *m, struct svc_input *in, struct dstate *D,
		struct bpflb_err *err)
{
	const struct dstate *C = in->cur;
	uint32_t be_cursor = in->next_be_id, svc_cursor = in->next_svc_id;
	struct svc_idset be_used = {0}, svc_used = {0}, svc_taken = {0};
	struct svc_be_ident *ids = NULL, *cidx = NULL;
	const struct dsp **names = NULL;
	size_t nids = 0, cap = 0, ncidx = 0, nnames = 0, i, j;
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];
	int ret = -ENOMEM;

	memset(D, 0, sizeof(*D));
	/* Ids 1..size: as many as the maps ([lb] max_backends, max_services) hold. */
	if (svc_idset_init(&be_used, m->lb.sizes.backends + 1) ||
	    svc_idset_init(&svc_used, m->lb.sizes.services + 1) ||
	    svc_idset_init(&svc_taken, m->lb.sizes.services + 1))
		goto out;

	/* 1. backends: one per address:port of the services present here */
	for (i = 0; i < m->nsvcs; i++)
		if (svc_on_node(m, m->svcs[i]))
			cap += (size_t)m->svcs[i]->nbes * m->svcs[i]->nports;
	ids = calloc(cap ? cap : 1, sizeof(*ids));
	if (!ids)
		goto out;
	for (i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = m->svcs[i];

		if (!svc_on_node(m, d))
			continue;
		for (unsigned int b = 0; b < d->nbes; b++)
			for (unsigned int p = 0; p < d->nports; p++)
				ids[nids++] = (struct svc_be_ident){
				    d->bes[b].addr, svc_backend_port(d, &d->bes[b], p), &d->bes[b]};
	}
	qsort(ids, nids, sizeof(*ids), svc_ident_cmp);
	for (i = j = 0; i < nids; i++)
		if (!j || svc_ident_cmp(&ids[i], &ids[j - 1]))
			ids[j++] = ids[i];
	nids = j;

	/* index of the current backends by identity */
	if (C && C->nbe) {
		cidx = calloc(C->nbe, sizeof(*cidx));
		if (!cidx)
			goto out;
		for (i = 0; i < C->nbe; i++) {
			cidx[i] = (struct svc_be_ident){C->be[i].val.addr, ntohs(C->be[i].val.port),
							NULL, &C->be[i]};
			svc_idset_add(&be_used, C->be[i].id);
		}
		ncidx = C->nbe;
		qsort(cidx, ncidx, sizeof(*cidx), svc_ident_cmp);
	}
	D->be = calloc(nids ? nids : 1, sizeof(*D->be));
	if (!D->be)
		goto out;
	for (i = 0; i < nids; i++) {
		const struct svc_backend *b = ids[i].b;
		struct svc_be_ident *hit =
		    ncidx ? bsearch(&ids[i], cidx, ncidx, sizeof(*cidx), svc_ident_cmp) : NULL;
		struct dbe *e = &D->be[D->nbe++];

		e->id = hit ? hit->e->id : svc_idset_alloc(&be_used, &be_cursor);
		if (!e->id) {
			bpflb_err_set(err, "no free backend id: %u in use ([lb] max_backends)",
				      m->lb.sizes.backends);
			ret = -ENOSPC;
			goto out;
		}
		svc_be_fill(m, in, b, ids[i].addr, ids[i].port, hit ? hit->e : NULL, e);
		ids[i].e = e;
	}

	/* 2. service ports and their frontends */
	if (C) {
		for (i = 0; i < C->nfe; i++)
			svc_idset_add(&svc_used, C->fe[i].val.id);
		for (i = 0; i < C->nsp; i++)
			svc_idset_add(&svc_used, C->sp[i].id);
	}
	cap = 0;
	for (i = 0; i < m->nsvcs; i++)
		cap += m->svcs[i]->nports;
	D->sp = calloc(cap ? cap : 1, sizeof(*D->sp));
	if (!D->sp)
		goto out;
	for (i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = m->svcs[i];

		if (!svc_on_node(m, d))
			continue;
		D->nservices++;
		for (unsigned int p = 0; p < d->nports; p++) {
			struct dsp *sp = &D->sp[D->nsp];

			if (!svc_frontends(m, d, p, keys))
				continue;
			sp->key = svc_sp_key(d->name, d->ports[p].name);
			if (!sp->key)
				goto out;
			D->nsp++;
		}
	}
	/* ids: by name (reload), then by frontend (restart), then new */
	if (C && C->nsp) {
		names = calloc(C->nsp, sizeof(*names));
		if (!names)
			goto out;
		for (i = 0; i < C->nsp; i++)
			if (C->sp[i].key)
				names[nnames++] = &C->sp[i];
		qsort(names, nnames, sizeof(*names), sp_key_cmp);
	}
	for (i = 0; nnames && i < D->nsp; i++) {
		const struct dsp *want = &D->sp[i], **hit;

		hit = bsearch(&want, names, nnames, sizeof(*names), sp_key_cmp);
		if (hit && !svc_idset_has(&svc_taken, (*hit)->id)) {
			D->sp[i].id = (*hit)->id;
			svc_idset_add(&svc_taken, D->sp[i].id);
		}
	}
	for (size_t si = 0, k = 0; si < m->nsvcs; si++) {
		const struct svc_def *d = m->svcs[si];

		if (!svc_on_node(m, d))
			continue;
		for (unsigned int p = 0; p < d->nports; p++) {
			unsigned int nk = svc_frontends(m, d, p, keys);
			struct dsp *sp;

			if (!nk)
				continue;
			sp = &D->sp[k++];
			for (unsigned int f = 0; C && !sp->id && f < nk; f++) {
				struct dfe *hit = dstate_fe(C, &keys[f]);

				if (hit && hit->val.id && !svc_idset_has(&svc_taken, hit->val.id)) {
					sp->id = hit->val.id;
					svc_idset_add(&svc_taken, sp->id);
				}
			}
		}
	}
	for (i = 0; i < D->nsp; i++) {
		if (D->sp[i].id)
			continue;
		D->sp[i].id = svc_idset_alloc(&svc_used, &svc_cursor);
		if (!D->sp[i].id) {
			bpflb_err_set(err, "no free service id: %u in use ([lb] max_services)",
				      m->lb.sizes.services);
			ret = -ENOSPC;
			goto out;
		}
	}

	/* 3. slots, Maglev inputs, frontends, health checks */
	cap = 0;
	for (i = 0; i < m->nsvcs; i++)
		if (svc_on_node(m, m->svcs[i]))
			cap += (size_t)m->svcs[i]->nports * svc_max_frontends(m, m->svcs[i]);
	D->fe = calloc(cap ? cap : 1, sizeof(*D->fe));
	for (i = 0, j = 0; i < m->nsvcs; i++)
		j += m->svcs[i]->hc_port != 0;
	D->hz = calloc(j ? j : 1, sizeof(*D->hz)); /* a few: not one per service */
	if (!D->fe || !D->hz)
		goto out;
	for (size_t si = 0, k = 0; si < m->nsvcs; si++) {
		const struct svc_def *d = m->svcs[si];

		if (!svc_on_node(m, d))
			continue;
		for (unsigned int p = 0; p < d->nports; p++) {
			unsigned int nk = svc_frontends(m, d, p, keys);

			if (!nk)
				continue;
			if (svc_port_fill(m, d, p, keys, nk, &D->sp[k++], ids, nids, D))
				goto out;
		}
		svc_hz_add(m, d, in, D);
	}
	dstate_sort(D);
	D->node = (struct bpflb_node_cfg){
	    .addr = m->self.addrs[0],
	    .flags = m->lb.dsr_ipip ? BPFLB_NODE_F_DSR_IPIP : 0,
	    .snat_port_min = m->lb.snat_min,
	    .snat_port_max = m->lb.snat_max,
	    .hash_seed = m->lb.hash_seed,
	    .events_per_sec = m->lb.events_per_sec,
	    .maglev_m = m->lb.maglev_m,
	};
	D->has_node = true;
	in->next_be_id = be_cursor;
	in->next_svc_id = svc_cursor;
	ret = 0;
out:
	if (ret == -ENOMEM)
		bpflb_err_set(err, "out of memory computing the service state");
	if (ret)
		dstate_free(D);
	free(ids);
	free(cidx);
	free(names);
	free(be_used.w);
	free(svc_used.w);
	free(svc_taken.w);
	return ret;
}

struct bpflb_services_prepared {
	struct svc_model m;
};

/*
 * The model holds every check: the cross-service checks of svc_model_build()
 * bound frontends, service ports and backends by the map sizes, so the ids
 * compute hands out always fit; validation need not compute the state.
 */
int bpflb_services_prepare(const struct bpflb_config *cfg, struct bpflb_services_prepared **out,
			   struct bpflb_err *err)
{
	struct bpflb_services_prepared *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return bpflb_err_set(err, "out of memory"), -ENOMEM;
	ret = svc_model_build(cfg, &p->m, err);
	if (ret || !out) {
		if (!ret)
			svc_model_free(&p->m);
		free(p);
		return ret;
	}
	*out = p;
	return 0;
}

void bpflb_services_prepared_free(struct bpflb_services_prepared *p)
{
	if (!p)
		return;
	svc_model_free(&p->m);
	free(p);
}

int bpflb_services_validate(const struct bpflb_config *cfg, struct bpflb_err *err)
{
	return bpflb_services_prepare(cfg, NULL, err);
}

/* --- the maps ------------------------------------------------------------------ */

static int map_open(const char *root, const char *name, uint32_t ksz, uint32_t vsz, bool required,
		    struct bpf_map_info *info, struct bpflb_err *err)
{
	__u32 len = sizeof(*info);
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (!required && errno == ENOENT)
			return -ENOENT;
		return bpflb_err_set(err,
				     "cannot open the pinned map %s: %s; the datapath maps are "
				     "created when the pipeline is loaded",
				     path, strerror(errno)),
		       -errno;
	}
	memset(info, 0, sizeof(*info));
	if (bpf_obj_get_info_by_fd(fd, info, &len)) {
		int e = -errno;

		close(fd);
		bpflb_err_set(err, "cannot inspect %s: %s", path, strerror(-e));
		return e;
	}
	if ((ksz && info->key_size != ksz) || (vsz && info->value_size != vsz)) {
		close(fd);
		bpflb_err_set(err,
			      "pinned map %s has key/value sizes %u/%u, this bpflbd expects "
			      "%u/%u: it was made by another version; remove the instance's "
			      "pins (bpflbd --cleanup) and start again",
			      path, info->key_size, info->value_size, ksz, vsz);
		return -ESTALE;
	}
	return fd;
}

static void maps_close(struct bpflb_services *s)
{
	int *fds[] = {&s->fd_svc,  &s->fd_slots, &s->fd_be,   &s->fd_mg,
		      &s->fd_node, &s->fd_ct,	 &s->fd_stats};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static int maps_open(struct bpflb_services *s, struct bpflb_err *err)
{
	struct bpf_map_info info;
	int fd;

	fd = map_open(s->pin_root, "bpflb_svc", sizeof(struct bpflb_svc_key),
		      sizeof(struct bpflb_svc), true, &info, err);
	if (fd < 0)
		return fd;
	s->fd_svc = fd;
	fd = map_open(s->pin_root, "bpflb_slots", sizeof(struct bpflb_slot_key), sizeof(__u32),
		      true, &info, err);
	if (fd < 0)
		return fd;
	s->fd_slots = fd;
	fd = map_open(s->pin_root, "bpflb_backends", sizeof(__u32), sizeof(struct bpflb_backend),
		      true, &info, err);
	if (fd < 0)
		return fd;
	s->fd_be = fd;
	s->be_type = info.type;
	fd = map_open(s->pin_root, "bpflb_maglev", sizeof(__u32), sizeof(__u32), true, &info, err);
	if (fd < 0)
		return fd;
	s->fd_mg = fd;
	fd = map_open(s->pin_root, "bpflb_node", sizeof(__u32), sizeof(struct bpflb_node_cfg), true,
		      &info, err);
	if (fd < 0)
		return fd;
	s->fd_node = fd;
	fd = map_open(s->pin_root, "bpflb_ct", sizeof(struct bpflb_ct_key),
		      sizeof(struct bpflb_ct_val), true, &info, err);
	if (fd < 0)
		return fd;
	s->fd_ct = fd;
	fd = map_open(s->pin_root, "bpflb_svc_stats", sizeof(__u32), 0, false, &info, err);
	if (fd >= 0) {
		s->fd_stats = fd;
		s->stats_type = info.type;
		s->stats_vsize = info.value_size;
	} else if (fd != -ENOENT) {
		return fd;
	}
	return 0;
}

struct slot_ent {
	struct bpflb_slot_key k;
	__u32 id;
};

static int slot_ent_cmp(const void *a, const void *b)
{
	const struct slot_ent *x = a, *y = b;

	if (x->k.svc_id != y->k.svc_id)
		return x->k.svc_id < y->k.svc_id ? -1 : 1;
	return x->k.slot < y->k.slot ? -1 : x->k.slot > y->k.slot;
}

/* Append an empty service port; NULL on ENOMEM. */
static struct dsp *sp_add(struct dstate *st, uint32_t id)
{
	struct dsp *nsp = realloc(st->sp, (st->nsp + 1) * sizeof(*nsp));

	if (!nsp)
		return NULL;
	st->sp = nsp;
	memset(&nsp[st->nsp], 0, sizeof(*nsp));
	nsp[st->nsp].id = id;
	return &nsp[st->nsp++];
}

/* Find id among st->sp[0..nsorted) (sorted) and the unsorted tail after it. */
static struct dsp *sp_find_unsorted(struct dstate *st, uint32_t id, size_t nsorted)
{
	struct dsp *hit;

	hit = nsorted ? dstate_sp(&(struct dstate){.sp = st->sp, .nsp = nsorted}, id) : NULL;
	for (size_t j = nsorted; !hit && j < st->nsp; j++)
		if (st->sp[j].id == id)
			hit = &st->sp[j];
	return hit;
}

/* Read the maps into st (ids, entries; Maglev tables only as "present"). */
static int state_read(struct bpflb_services *s, struct dstate *st, struct bpflb_err *err)
{
	void *k = NULL, *v = NULL;
	size_t n = 0, i, nsorted;
	int ret;

	memset(st, 0, sizeof(*st));
	/* frontends */
	ret = svc_map_dump(s->fd_svc, sizeof(struct bpflb_svc_key), sizeof(struct bpflb_svc), &k,
			   &v, &n);
	if (ret)
		goto fail_map;
	st->fe = calloc(n ? n : 1, sizeof(*st->fe));
	if (!st->fe)
		goto nomem;
	for (i = 0; i < n; i++) {
		memcpy(&st->fe[i].key, (char *)k + i * sizeof(struct bpflb_svc_key),
		       sizeof(struct bpflb_svc_key));
		memcpy(&st->fe[i].val, (char *)v + i * sizeof(struct bpflb_svc),
		       sizeof(struct bpflb_svc));
	}
	st->nfe = n;
	dstate_sort(st);
	free(k);
	free(v);
	k = v = NULL;

	/* backends (an array map holds zeroed entries for unused ids) */
	ret = svc_map_dump(s->fd_be, sizeof(__u32), sizeof(struct bpflb_backend), &k, &v, &n);
	if (ret)
		goto fail_map;
	st->be = calloc(n ? n : 1, sizeof(*st->be));
	if (!st->be)
		goto nomem;
	for (i = 0; i < n; i++) {
		struct dbe *e = &st->be[st->nbe];

		memcpy(&e->id, (char *)k + i * sizeof(__u32), sizeof(__u32));
		memcpy(&e->val, (char *)v + i * sizeof(struct bpflb_backend),
		       sizeof(struct bpflb_backend));
		if (!e->id || (!e->val.addr && !e->val.port))
			continue;
		st->nbe++;
	}
	dstate_sort(st);
	free(k);
	free(v);
	k = v = NULL;

	/* slots, grouped by service id (sorted first: there can be a million) */
	ret = svc_map_dump(s->fd_slots, sizeof(struct bpflb_slot_key), sizeof(__u32), &k, &v, &n);
	if (ret)
		goto fail_map;
	{
		struct slot_ent *se = calloc(n ? n : 1, sizeof(*se));

		if (!se)
			goto nomem;
		for (i = 0; i < n; i++) {
			memcpy(&se[i].k, (char *)k + i * sizeof(se[i].k), sizeof(se[i].k));
			memcpy(&se[i].id, (char *)v + i * sizeof(se[i].id), sizeof(se[i].id));
		}
		qsort(se, n, sizeof(*se), slot_ent_cmp);
		ret = 0;
		for (i = 0; i < n && !ret;) {
			uint32_t id = se[i].k.svc_id;
			size_t j = i, last;
			struct dsp *sp;

			while (j < n && se[j].k.svc_id == id)
				j++;
			/* [i, j) is one service, by slot; absurd slots cannot be ours */
			last = j;
			while (last > i && se[last - 1].k.slot >= BPFLB_MAX_SLOTS)
				last--;
			if (last > i) {
				sp = sp_add(st, id);
				if (sp)
					sp->slots =
					    calloc(se[last - 1].k.slot + 1, sizeof(*sp->slots));
				if (!sp || !sp->slots) {
					ret = -ENOMEM;
					break;
				}
				sp->nslots = se[last - 1].k.slot + 1;
				for (size_t x = i; x < last; x++)
					sp->slots[se[x].k.slot] = se[x].id;
			}
			i = j;
		}
		free(se);
		if (ret)
			goto nomem;
	}
	free(k);
	free(v);
	k = v = NULL;
	dstate_sort(st);

	/* Maglev tables */
	ret = svc_map_dump(s->fd_mg, sizeof(__u32), sizeof(__u32), &k, &v, &n);
	if (ret)
		goto fail_map;
	nsorted = st->nsp;
	for (i = 0; i < n; i++) {
		struct dsp *sp = NULL;
		__u32 id;

		memcpy(&id, (char *)k + i * sizeof(id), sizeof(id));
		sp = sp_find_unsorted(st, id, nsorted);
		if (!sp)
			sp = sp_add(st, id);
		if (!sp)
			goto nomem;
		sp->maglev = true;
		if (!s->mg_inner_m) {
			__u32 inner_id, len;
			struct bpf_map_info info;
			int fd;

			memcpy(&inner_id, (char *)v + i * sizeof(inner_id), sizeof(inner_id));
			fd = bpf_map_get_fd_by_id(inner_id);
			len = sizeof(info);
			memset(&info, 0, sizeof(info));
			if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len)) {
				s->mg_inner_m = info.max_entries;
				s->mg_inner_flags = info.map_flags;
			}
			if (fd >= 0)
				close(fd);
		}
	}
	free(k);
	free(v);
	k = v = NULL;
	dstate_sort(st);

	/* the names of service ports we applied before survive a re-read */
	for (i = 0; i < st->nsp; i++) {
		struct dsp *old = dstate_sp(&s->cur, st->sp[i].id);

		if (old && old->key && !(st->sp[i].key = strdup(old->key)))
			goto nomem;
	}
	{
		__u32 zero = 0;

		st->has_node = !bpf_map_lookup_elem(s->fd_node, &zero, &st->node);
	}
	return 0;

nomem:
	ret = -ENOMEM;
fail_map:
	free(k);
	free(v);
	dstate_free(st);
	bpflb_err_set(err, "cannot read the service maps under %s: %s", s->pin_root,
		      strerror(-ret));
	return ret;
}

static void ids_from_state(struct bpflb_services *s)
{
	uint32_t max_be = 0, max_svc = 0;

	for (size_t i = 0; i < s->cur.nbe; i++)
		if (s->cur.be[i].id > max_be)
			max_be = s->cur.be[i].id;
	for (size_t i = 0; i < s->cur.nfe; i++)
		if (s->cur.fe[i].val.id > max_svc)
			max_svc = s->cur.fe[i].val.id;
	for (size_t i = 0; i < s->cur.nsp; i++)
		if (s->cur.sp[i].id > max_svc)
			max_svc = s->cur.sp[i].id;
	/* Past the id space the allocator wraps to 1 by itself. */
	s->next_be_id = max_be + 1;
	s->next_svc_id = max_svc + 1;
}

static void gc_tick(uv_timer_t *t);

static void gc_timer_closed(uv_handle_t *h)
{
	free(h);
}

int bpflb_services_open(const char *pin_root, uv_loop_t *loop, struct bpflb_services **out,
			struct bpflb_err *err)
{
	struct bpflb_services *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->fd_svc = s->fd_slots = s->fd_be = s->fd_mg = s->fd_node = s->fd_ct = s->fd_stats = -1;
	snprintf(s->pin_root, sizeof(s->pin_root), "%s", pin_root);
	s->loop = loop;
	s->ct = bpflb_ct_default_timeouts;
	s->gc_interval_ms = 30000;
	ret = maps_open(s, err);
	if (ret)
		goto fail;
	ret = state_read(s, &s->cur, err);
	if (ret)
		goto fail;
	ids_from_state(s);
	if (loop) {
		ret = bpflb_healthz_new(loop, &s->hz);
		if (ret)
			goto fail;
		s->gc_timer = calloc(1, sizeof(*s->gc_timer));
		if (!s->gc_timer) {
			ret = -ENOMEM;
			goto fail;
		}
		uv_timer_init(loop, s->gc_timer);
		s->gc_timer->data = s;
		uv_timer_start(s->gc_timer, gc_tick, s->gc_interval_ms, s->gc_interval_ms);
	}
	*out = s;
	return 0;
fail:
	bpflb_services_close(s);
	if (ret == -ENOMEM)
		bpflb_err_set(err, "out of memory opening the service maps");
	return ret;
}

void bpflb_services_close(struct bpflb_services *s)
{
	if (!s)
		return;
	if (s->gc_timer) {
		uv_timer_stop(s->gc_timer);
		uv_close((uv_handle_t *)s->gc_timer, gc_timer_closed);
	}
	bpflb_healthz_free(s->hz);
	maps_close(s);
	dstate_free(&s->cur);
	svc_stidx_free(&s->ix);
	if (s->have_model)
		svc_model_free(&s->model);
	free(s->ovr);
	rt_free(s->rt, s->nrt);
	free(s);
}

/* The maps a plan of s is committed to. */
static void plan_maps_of(const struct bpflb_services *s, const struct dstate *D,
			 struct plan_maps *pm)
{
	pm->fd[BPFLB_LBMAP_NODE] = s->fd_node;
	pm->fd[BPFLB_LBMAP_SVC] = s->fd_svc;
	pm->fd[BPFLB_LBMAP_SLOTS] = s->fd_slots;
	pm->fd[BPFLB_LBMAP_BACKENDS] = s->fd_be;
	pm->fd[BPFLB_LBMAP_MAGLEV] = s->fd_mg;
	pm->fd[BPFLB_LBMAP_STATS] = s->fd_stats;
	pm->be_type = s->be_type;
	pm->stats_type = s->stats_type;
	pm->stats_vsize = s->stats_vsize;
	pm->mg_inner_m = s->mg_inner_m;
	pm->mg_inner_flags = s->mg_inner_flags;
	pm->maglev_m = D->node.maglev_m;
	pm->hash_seed = D->node.hash_seed;
}

static void gc_schedule(struct bpflb_services *s, uint64_t interval_ms)
{
	if (!s->gc_timer || interval_ms == s->gc_interval_ms)
		return;
	s->gc_interval_ms = interval_ms;
	uv_timer_start(s->gc_timer, gc_tick, interval_ms, interval_ms);
}

/* Apply model m (owned by the caller until it succeeds: then by s). */
static void repair_note(void *ctx, const struct plan_op *o);

static int apply_model(struct bpflb_services *s, struct svc_model *m, bool adopt,
		       struct bpflb_err *err)
{
	struct dstate D, fresh;
	struct plan plan = {0};
	struct svc_input in;
	struct plan_maps pm;
	uint64_t writes0 = s->map_writes;
	int ret;

	if (s->stale) {
		ret = state_read(s, &fresh, err);
		if (ret)
			return ret;
		dstate_free(&s->cur);
		s->cur = fresh;
		s->stale = false;
	}
	in = (struct svc_input){.cur = &s->cur,
				.ovr = s->ovr,
				.novr = s->novr,
				.next_be_id = s->next_be_id,
				.next_svc_id = s->next_svc_id,
				.log = true};
	s->ix.valid = false; /* until the state computed here is committed */
	ret = svc_compute(m, &in, &D, err);
	if (ret)
		return ret;
	s->next_be_id = in.next_be_id;
	s->next_svc_id = in.next_svc_id;
	if (s->hz) {
		ret = bpflb_healthz_update(s->hz, D.hz, D.nhz, err);
		if (ret)
			goto out;
	}
	ret = plan_diff(&D, &s->cur, &plan);
	if (ret) {
		bpflb_err_set(err, "out of memory planning the service maps");
		goto out;
	}
	plan_maps_of(s, &D, &pm);
	ret = plan_commit_each(&plan, &pm, &s->map_writes, s->repairs ? repair_note : NULL,
			       s->repairs, err);
	if (ret) {
		/* the maps hold a mix of old and new: read them before the next plan */
		s->stale = true;
		goto out;
	}
	plan_summarize(&plan, &D, &s->cur, &s->summary);
	s->summary.map_writes = s->map_writes - writes0;
	s->last_writes = s->summary.map_writes;
	if (plan.n) {
		char line[256];

		bpflb_services_summary_str(&s->summary, line, sizeof(line));
		pr_info("services: %s", line);
	}
	dstate_free(&s->cur);
	s->cur = D;
	memset(&D, 0, sizeof(D));
	/* the listeners copied what they serve; the list would point into the model */
	free(s->cur.hz);
	s->cur.hz = NULL;
	s->cur.nhz = 0;
	/* what a later change of a few services needs; without it, that change computes all */
	if (svc_stidx_build(&s->ix, m, &s->cur))
		s->ix.valid = false;
	s->ct = m->lb.ct;
	gc_schedule(s, m->lb.gc_interval_ms);
	if (adopt) {
		if (s->have_model)
			svc_model_free(&s->model);
		s->model = *m;
		s->have_model = true;
		memset(m, 0, sizeof(*m));
	}
out:
	plan_free(&plan);
	dstate_free(&D);
	return ret;
}

/* Does the change touch a health check (their list is rebuilt from the model)? */
static bool change_hz(const struct svc_change *ch, size_t nch)
{
	for (size_t i = 0; i < nch; i++)
		if ((ch[i].old && ch[i].old->hc_port) || (ch[i].new &&ch[i].new->hc_port))
			return true;
	return false;
}

/* Can a change of a few services to model m skip the whole computation? */
static bool change_ok(const struct bpflb_services *s)
{
	return s->have_model && !s->stale && s->ix.valid && !s->whole;
}

void svc_services_force_whole(struct bpflb_services *s, bool on)
{
	s->whole = on;
}

/*
 * Apply the changed services ch[0..nch) of model m (whose [lb] and nodes are
 * the applied ones): compute, plan and commit only their part of the state
 * (services_change.c), then fold it into cur.  The same guarantees as
 * apply_model(): on a configuration or memory error nothing changed; on a map
 * error cur is stale.
 */
static int apply_change(struct bpflb_services *s, const struct svc_model *m,
			const struct svc_change *ch, size_t nch, struct bpflb_err *err)
{
	struct dstate D, C, hz = {0};
	struct plan plan = {0};
	struct svc_input in = {.cur = &s->cur,
			       .ovr = s->ovr,
			       .novr = s->novr,
			       .next_be_id = s->next_be_id,
			       .next_svc_id = s->next_svc_id,
			       .log = true};
	struct plan_maps pm;
	uint64_t writes0 = s->map_writes;
	int ret;

	ret = svc_compute_change(m, ch, nch, &in, &s->ix, &D, &C, err);
	if (ret)
		return ret;
	s->next_be_id = in.next_be_id;
	s->next_svc_id = in.next_svc_id;
	if (change_hz(ch, nch)) {
		/* health checks are few: their list is made again from the model */
		size_t nhc = 0;

		for (unsigned int i = 0; i < m->nsvcs; i++)
			nhc += m->svcs[i]->hc_port != 0;
		hz.hz = calloc(nhc ? nhc : 1, sizeof(*hz.hz));
		if (!hz.hz) {
			ret = -ENOMEM;
			bpflb_err_set(err, "out of memory");
			goto out;
		}
		for (unsigned int i = 0; i < m->nsvcs; i++)
			if (svc_on_node(m, m->svcs[i]))
				svc_hz_add(m, m->svcs[i], &in, &hz);
		if (s->hz) {
			ret = bpflb_healthz_update(s->hz, hz.hz, hz.nhz, err);
			if (ret)
				goto out;
		}
	}
	ret = plan_diff(&D, &C, &plan);
	if (ret) {
		bpflb_err_set(err, "out of memory planning the service maps");
		goto out;
	}
	plan_maps_of(s, &s->cur, &pm);
	ret = plan_commit(&plan, &pm, &s->map_writes, err);
	if (ret) {
		s->stale = true;
		goto out;
	}
	plan_summarize(&plan, &D, &C, &s->summary);
	s->summary.map_writes = s->map_writes - writes0;
	s->last_writes = s->summary.map_writes;
	if (plan.n) {
		char line[256];

		bpflb_services_summary_str(&s->summary, line, sizeof(line));
		pr_info("services: %s", line);
	}
	svc_stidx_commit(&s->ix, &D, &C);
	plan_free(&plan);
	if (dstate_merge(&s->cur, &D, &C)) {
		/* the maps hold the change; a picture that lacks it must be read again */
		s->stale = true;
		dstate_free(&D);
		dstate_free_view(&C);
	}
	free(hz.hz);
	return 0;
out:
	s->ix.valid = false;
	plan_free(&plan);
	dstate_free(&D);
	dstate_free_view(&C);
	free(hz.hz);
	return ret;
}

static bool change_add(struct svc_change **ch, size_t *n, size_t *cap, size_t max,
		       const struct svc_def *od, const struct svc_def *nd, unsigned int pos)
{
	if (*n == *cap) {
		struct svc_change *c;

		*cap = *cap ? 2 * *cap : 64;
		if (*cap / 2 > max || !(c = realloc(*ch, *cap * sizeof(*c))))
			return false;
		*ch = c;
	}
	(*ch)[(*n)++] = (struct svc_change){od, nd, pos};
	return true;
}

/*
 * The services of next that differ from the applied model (added, changed,
 * removed), in next's order, then the removed ones; false when the change is
 * better computed whole: [lb] or the nodes differ, or more than a quarter of
 * the services changed.  A service at the same place with the same content
 * hash is unchanged: the common reload compares two arrays of hashes and
 * touches no def; any other is looked up by name and compared in full.
 */
static bool reload_changes(const struct bpflb_services *s, const struct svc_model *next,
			   struct svc_change **out, size_t *nout)
{
	const struct svc_model *cur = &s->model;
	size_t n = 0, cap = 0, max = next->nsvcs / 4 + 64, matched = 0;
	struct svc_change *ch = NULL;

	*out = NULL;
	*nout = 0;
	if (!change_ok(s) || !svc_model_same_base(cur, next))
		return false;
	for (unsigned int i = 0; i < next->nsvcs; i++) {
		const struct svc_def *nd = next->svcs[i], *od;

		if (i < cur->nsvcs && cur->hashes[i] == next->hashes[i]) {
			matched++;
			continue;
		}
		od = svc_model_find(cur, nd->name);
		matched += od != NULL;
		if (od && svc_def_same(od, nd))
			continue;
		if (!change_add(&ch, &n, &cap, max, od, nd, i))
			goto whole;
	}
	/* names are unique: when every applied service was matched, none went away */
	for (unsigned int i = 0; matched < cur->nsvcs && i < cur->nsvcs; i++)
		if (!svc_model_find(next, cur->svcs[i]->name) &&
		    !change_add(&ch, &n, &cap, max, cur->svcs[i], NULL, i))
			goto whole;
	*out = ch;
	*nout = n;
	return true;
whole:
	free(ch);
	return false;
}

/* Past this many services added or removed, a reload adopts the new model whole. */
#define PATCH_MAX_MOVES 16

/*
 * Should the applied model take a reload's changes in place (keeping its
 * indexes for `service set`), rather than be replaced by the new model?  Yes
 * when few services come or go (each moves the arrays) and the room is there.
 */
static bool model_in_place(struct bpflb_services *s, const struct svc_change *ch, size_t nch)
{
	size_t moves = 0;

	for (size_t i = 0; i < nch; i++)
		moves += !ch[i].old || !ch[i].new;
	return s->model.idx && moves <= PATCH_MAX_MOVES && !svc_model_reserve(&s->model, ch, nch);
}

/*
 * The applied model becomes next by taking its changed defs (room reserved:
 * nothing fails): removals first, from the last, then changes and additions in
 * next's order, so the services keep next's order.  next keeps the rest.
 */
static void model_patch(struct bpflb_services *s, struct svc_model *next,
			const struct svc_change *ch, size_t nch)
{
	for (size_t i = nch; i-- > 0;) {
		if (ch[i].new)
			continue;
		svc_model_set(&s->model, (struct svc_def *)ch[i].old, NULL, ch[i].pos);
		svc_def_free((struct svc_def *)ch[i].old);
	}
	for (size_t i = 0; i < nch; i++) {
		if (!ch[i].new)
			continue;
		svc_model_set(&s->model, (struct svc_def *)ch[i].old, (struct svc_def *)ch[i].new,
			      ch[i].pos);
		next->svcs[ch[i].pos] = NULL; /* s->model's now */
		svc_def_free((struct svc_def *)ch[i].old);
	}
}

int bpflb_services_apply(struct bpflb_services *s, const struct bpflb_config *next,
			 struct bpflb_err *err)
{
	struct bpflb_services_prepared *p;
	int ret;

	ret = bpflb_services_prepare(next, &p, err);
	return ret ? ret : bpflb_services_apply_overlay(s, p, NULL, 0, err);
}

/* Apply the prepared model p (consumed); the overlay's notes are the caller's. */
static int apply_prepared(struct bpflb_services *s, struct bpflb_services_prepared *p,
			  struct bpflb_err *err)
{
	struct svc_change *ch;
	size_t nch;
	int ret;

	if (reload_changes(s, &p->m, &ch, &nch)) {
		bool in_place = model_in_place(s, ch, nch);

		ret = nch ? apply_change(s, &p->m, ch, nch, err) : 0;
		if (!ret && in_place) {
			model_patch(s, &p->m, ch, nch);
		} else if (!ret) {
			/* the same picture of the maps, now of the new model */
			svc_model_free(&s->model);
			s->model = p->m;
			memset(&p->m, 0, sizeof(p->m));
		}
		if (!ret && !nch)
			s->last_writes = 0, memset(&s->summary, 0, sizeof(s->summary));
		free(ch);
	} else {
		ret = apply_model(s, &p->m, true, err);
	}
	bpflb_services_prepared_free(p); /* adopted on success: then empty */
	return ret;
}

int bpflb_services_apply_prepared(struct bpflb_services *s, struct bpflb_services_prepared *p,
				  struct bpflb_err *err)
{
	return bpflb_services_apply_overlay(s, p, NULL, 0, err);
}

/* The overlay entry of name; NULL when none. */
static struct svc_runtime *rt_find(const struct bpflb_services *s, const char *name)
{
	for (size_t i = 0; i < s->nrt; i++)
		if (!strcmp(s->rt[i].name, name))
			return &s->rt[i];
	return NULL;
}

/*
 * [service NAME] replaced (by section sec, or by the def nd when sec is NULL;
 * both NULL: removed) in the applied model, then applied: checked against the
 * other services by index lookups, put in place, and only its part of the
 * state computed and committed (apply_change()); put back on failure.  The
 * def it replaces is handed back in *old (the caller frees or keeps it); nd
 * is the model's on success, the caller's on failure.
 */
static int svc_swap(struct bpflb_services *s, const char *name, const struct bpflb_cfg_section *sec,
		    struct svc_def *nd, struct svc_def **old, struct bpflb_err *err)
{
	struct svc_def *od;
	struct svc_change ch;
	unsigned int at;
	bool parsed = sec != NULL;
	int ret;

	*old = NULL;
	if (!s->have_model)
		return bpflb_err_set(err, "no configuration applied yet"), -EAGAIN;
	if (!sec && !nd && !svc_model_find(&s->model, name))
		return bpflb_err_set(err, "no service '%s' on this node", name), -ENOENT;
	ret = parsed ? svc_model_check_set(&s->model, name, sec, &nd, &od, err)
		     : svc_model_check_def(&s->model, name, nd, &od, err);
	if (ret)
		return ret;
	at = s->model.nsvcs; /* a new service goes last */
	while (od && s->model.svcs[--at] != od)
		;
	ret = svc_model_set(&s->model, od, nd, at);
	if (ret) {
		if (parsed)
			svc_def_free(nd);
		return bpflb_err_set(err, "out of memory"), ret;
	}
	ch = (struct svc_change){od, nd, at};
	ret = change_ok(s) ? apply_change(s, &s->model, &ch, 1, err)
			   : apply_model(s, &s->model, false, err);
	if (ret) {
		svc_model_set(&s->model, nd, od, at); /* room reserved: cannot fail */
		if (parsed)
			svc_def_free(nd);
		return ret;
	}
	*old = od;
	return 0;
}

/* A control edit of a service: it becomes (or stays) an overlay entry. */
static int svc_change(struct bpflb_services *s, const char *name,
		      const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	struct svc_runtime *r = rt_find(s, name), *n;
	struct svc_def *od;
	int ret;

	if (!r) { /* room first: nothing may fail after the apply */
		n = realloc(s->rt, (s->nrt + 1) * sizeof(*n));
		if (!n)
			return bpflb_err_set(err, "out of memory"), -ENOMEM;
		s->rt = n;
	}
	ret = svc_swap(s, name, sec, NULL, &od, err);
	if (ret)
		return ret;
	if (r) {
		svc_def_free(od); /* the file's def is the shadow already */
	} else {
		r = &s->rt[s->nrt++];
		memset(r, 0, sizeof(*r));
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->shadow = od;
	}
	r->deleted = !sec;
	return 0;
}

int bpflb_services_svc_set(struct bpflb_services *s, const struct bpflb_cfg_section *sec,
			   struct bpflb_err *err)
{
	return svc_change(s, bpflb_cfg_section_name(sec), sec, err);
}

int bpflb_services_svc_delete(struct bpflb_services *s, const char *name, struct bpflb_err *err)
{
	return svc_change(s, name, NULL, err);
}

int bpflb_services_svc_runtime(const struct bpflb_services *s, const char *name)
{
	for (size_t i = 0; i < s->nrt; i++)
		if (!strcmp(s->rt[i].name, name))
			return s->rt[i].deleted ? 2 : 1;
	return 0;
}

const char *bpflb_services_runtime_at(const struct bpflb_services *s, size_t idx, bool *deleted)
{
	if (idx >= s->nrt)
		return NULL;
	*deleted = s->rt[idx].deleted;
	return s->rt[idx].name;
}

bool bpflb_services_override_at(const struct bpflb_services *s, size_t idx, uint32_t *addr,
				uint16_t *port, uint8_t *state)
{
	if (idx >= s->novr)
		return false;
	*addr = s->ovr[idx].addr;
	*port = s->ovr[idx].port;
	*state = s->ovr[idx].state;
	return true;
}

const struct svc_model *svc_services_model(const struct bpflb_services *s)
{
	return s->have_model ? &s->model : NULL;
}

bool bpflb_services_backend_get(const struct bpflb_services *s, uint32_t id,
				struct bpflb_backend *out)
{
	const struct dbe *e = dstate_be(&s->cur, id);

	if (e)
		*out = e->val;
	return e != NULL;
}

size_t bpflb_services_backend_at(const struct bpflb_services *s, size_t idx, uint32_t *id,
				 struct bpflb_backend *out)
{
	if (idx >= s->cur.nbe)
		return 0;
	*id = s->cur.be[idx].id;
	*out = s->cur.be[idx].val;
	return 1;
}

const char *bpflb_services_svc_key(const struct bpflb_services *s, uint32_t id)
{
	const struct dsp *sp = dstate_sp(&s->cur, id);

	return sp ? sp->key : NULL;
}

int bpflb_services_map_fd(const struct bpflb_services *s, const char *name)
{
	if (!strcmp(name, "bpflb_ct"))
		return s->fd_ct;
	if (!strcmp(name, "bpflb_svc_stats"))
		return s->fd_stats;
	if (!strcmp(name, "bpflb_svc"))
		return s->fd_svc;
	if (!strcmp(name, "bpflb_backends"))
		return s->fd_be;
	if (!strcmp(name, "bpflb_slots"))
		return s->fd_slots;
	if (!strcmp(name, "bpflb_maglev"))
		return s->fd_mg;
	return -ENOENT;
}

int bpflb_services_maglev_table(struct bpflb_services *s, uint32_t svc_id, uint32_t *table,
				uint32_t m)
{
	return plan_maglev_read(s->fd_mg, svc_id, m, table);
}

void bpflb_services_gc_stats(const struct bpflb_services *s, struct bpflb_services_gc *out)
{
	*out = s->gc;
}

static bool model_has_backend(const struct svc_model *m, uint32_t addr, uint16_t port)
{
	for (unsigned int i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = m->svcs[i];

		for (unsigned int b = 0; b < d->nbes; b++) {
			if (d->bes[b].addr != addr)
				continue;
			if (!port)
				return true;
			for (unsigned int p = 0; p < d->nports; p++)
				if (svc_backend_port(d, &d->bes[b], p) == port)
					return true;
		}
	}
	return false;
}

int bpflb_services_backend_set_state(struct bpflb_services *s, uint32_t addr, uint16_t port,
				     enum bpflb_backend_state state, bool clear,
				     struct bpflb_err *err)
{
	struct svc_ovr *o = NULL, saved;
	size_t i;
	int ret;

	if (state > BPFLB_BE_MAINTENANCE)
		return bpflb_err_set(err, "unknown backend state %d", (int)state), -EINVAL;
	if (!clear && s->have_model && !model_has_backend(&s->model, addr, port)) {
		char abuf[INET_ADDRSTRLEN];

		return bpflb_err_set(err, "no backend %s%s%.0u in the configuration",
				     ipstr(addr, abuf), port ? ":" : "", port),
		       -ENOENT;
	}
	for (i = 0; i < s->novr; i++)
		if (s->ovr[i].addr == addr && s->ovr[i].port == port)
			o = &s->ovr[i];
	if (clear) {
		if (!o)
			return 0;
		saved = *o;
		*o = s->ovr[--s->novr];
	} else if (o) {
		saved = *o;
		o->state = (uint8_t)state;
	} else {
		struct svc_ovr *n = realloc(s->ovr, (s->novr + 1) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->ovr = n;
		s->ovr[s->novr++] = (struct svc_ovr){addr, port, (uint8_t)state};
	}
	if (!s->have_model)
		return 0; /* takes effect with the first apply */
	ret = apply_model(s, &s->model, false, err);
	if (ret) {
		/* undo the override: the running state stays what it was */
		if (clear) {
			s->ovr[s->novr++] = saved;
		} else if (o) {
			*o = saved;
		} else {
			s->novr--;
		}
	}
	return ret;
}

uint32_t bpflb_services_svc_id(const struct bpflb_services *s, const char *name,
			       const char *port_name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < s->cur.nsp; i++) {
		const char *k = s->cur.sp[i].key;

		if (k && !strncmp(k, name, n) && k[n] == '/' && !strcmp(k + n + 1, port_name))
			return s->cur.sp[i].id;
	}
	return 0;
}

uint32_t bpflb_services_backend_id(const struct bpflb_services *s, uint32_t addr, uint16_t port)
{
	for (size_t i = 0; i < s->cur.nbe; i++)
		if (s->cur.be[i].val.addr == addr && ntohs(s->cur.be[i].val.port) == port)
			return s->cur.be[i].id;
	return 0;
}

void bpflb_services_summary(const struct bpflb_services *s, struct bpflb_services_summary *out)
{
	*out = s->summary;
}

void bpflb_services_summary_str(const struct bpflb_services_summary *m, char *buf, size_t len)
{
	snprintf(buf, len,
		 "+%u -%u ~%u services, +%u -%u ~%u backends, +%u -%u ~%u frontends (%llu map "
		 "writes)",
		 m->svc_added, m->svc_removed, m->svc_changed, m->be_added, m->be_removed,
		 m->be_changed, m->fe_added, m->fe_removed, m->fe_changed,
		 (unsigned long long)m->map_writes);
}

void bpflb_services_counts(const struct bpflb_services *s, struct bpflb_services_counts *c)
{
	memset(c, 0, sizeof(*c));
	c->services = s->cur.nservices;
	c->frontends = (uint32_t)s->cur.nfe;
	c->svc_ports = (uint32_t)s->cur.nsp;
	c->backends = (uint32_t)s->cur.nbe;
	for (size_t i = 0; i < s->cur.nsp; i++) {
		c->slots += s->cur.sp[i].nslots;
		c->maglev += s->cur.sp[i].maglev;
	}
	c->healthz = (uint32_t)bpflb_healthz_count(s->hz);
	c->map_writes = s->last_writes;
}

/* --- conntrack ------------------------------------------------------------------- */

static bool backend_live(void *ctx, uint32_t id)
{
	return dstate_be(&((struct bpflb_services *)ctx)->cur, id) != NULL;
}

int bpflb_services_ct_gc(struct bpflb_services *s, uint64_t now_ns, struct bpflb_ct_gc_stats *st)
{
	/* with a stale picture of the backends, only time decides */
	return bpflb_ct_gc(s->fd_ct, &s->ct, now_ns, s->stale ? NULL : backend_live, s, st);
}

static void gc_tick(uv_timer_t *t)
{
	struct bpflb_services *s = t->data;
	struct bpflb_ct_gc_stats st;
	int ret;

	ret = bpflb_services_ct_gc(s, bpflb_mono_ns(), &st);
	s->gc.runs++;
	s->gc.last = st;
	s->gc.total.scanned += st.scanned;
	s->gc.total.expired += st.expired;
	s->gc.total.orphaned += st.orphaned;
	s->gc.total.kept += st.kept;
	if (ret)
		s->gc.errors++;
	if (ret)
		pr_warn("conntrack gc: %s", strerror(-ret));
	else if (st.expired || st.orphaned)
		pr_debug("conntrack gc: %llu entries, %llu expired, %llu of removed backends",
			 (unsigned long long)st.scanned, (unsigned long long)st.expired,
			 (unsigned long long)st.orphaned);
}

/* --- the overlay and the drift check (driven by core/reconcile.c) ----------------- */

/*
 * Put [service name] = sec (NULL: absent) into model m; the def it replaces
 * (the file's) goes to *shadow.  The error names the overlay entry.
 */
static int overlay_put(struct svc_model *m, const char *name, const struct bpflb_cfg_section *sec,
		       struct svc_def **shadow, struct bpflb_err *err)
{
	struct svc_def *nd, *od;
	unsigned int at;
	int ret;

	*shadow = NULL;
	if (!sec && !svc_model_find(m, name))
		return 0; /* deleting what the file does not have */
	ret = svc_model_check_set(m, name, sec, &nd, &od, err);
	if (ret) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		bpflb_err_set(err,
			      "overlay service '%s' does not fit the configuration: %s "
			      "(bpflbctl overlay clear service %s drops it)",
			      name, msg, name);
		return ret;
	}
	at = m->nsvcs; /* a new service goes last */
	while (od && m->svcs[--at] != od)
		;
	ret = svc_model_set(m, od, nd, at);
	if (ret) {
		svc_def_free(nd);
		return bpflb_err_set(err, "out of memory"), ret;
	}
	*shadow = od;
	return 0;
}

/*
 * Desired = the prepared model of the file with each overlay service edit on
 * top (each checked by index lookups, as `service set` is), then applied like
 * any reload: only the services that differ from the applied model are
 * planned.  An edit deleting a service the file does not have is a no-op; an
 * edit that no longer fits the file (a frontend now taken, a node gone) fails
 * the apply, naming the overlay entry, and nothing changes.  p is consumed.
 */
int bpflb_services_apply_overlay(struct bpflb_services *s, struct bpflb_services_prepared *p,
				 const struct bpflb_services_svc_edit *edits, size_t nedits,
				 struct bpflb_err *err)
{
	struct svc_runtime *rt = NULL;
	int ret = 0;

	if (nedits && !(rt = calloc(nedits, sizeof(*rt))))
		ret = (bpflb_err_set(err, "out of memory"), -ENOMEM);
	for (size_t i = 0; !ret && i < nedits; i++) {
		snprintf(rt[i].name, sizeof(rt[i].name), "%s", edits[i].name);
		rt[i].deleted = !edits[i].sec;
		ret = overlay_put(&p->m, edits[i].name, edits[i].sec, &rt[i].shadow, err);
	}
	if (!ret)
		ret = apply_prepared(s, p, err);
	else
		bpflb_services_prepared_free(p);
	if (ret) {
		rt_free(rt, nedits);
		return ret;
	}
	rt_free(s->rt, s->nrt);
	s->rt = rt;
	s->nrt = nedits;
	return 0;
}

int bpflb_services_overlay_check(struct bpflb_services_prepared *p,
				 const struct bpflb_services_svc_edit *edits, size_t nedits,
				 struct bpflb_err *err)
{
	for (size_t i = 0; i < nedits; i++) {
		struct svc_def *shadow;
		int ret = overlay_put(&p->m, edits[i].name, edits[i].sec, &shadow, err);

		svc_def_free(shadow);
		if (ret)
			return ret;
	}
	return 0;
}

int bpflb_services_svc_clear(struct bpflb_services *s, const char *name, struct bpflb_err *err)
{
	struct svc_runtime *r = rt_find(s, name);
	struct svc_def *od = NULL, *file;
	int ret = 0;

	if (!r)
		return 0;
	file = r->shadow;
	/* back to the file's def, or gone when the file has none */
	if (s->have_model && (file || svc_model_find(&s->model, name)))
		ret = svc_swap(s, name, NULL, file, &od, err);
	if (ret)
		return ret;
	svc_def_free(od); /* the overlay's def */
	*r = s->rt[--s->nrt];
	return 0;
}

bool bpflb_services_svc_in_source(const struct bpflb_services *s, const char *name)
{
	const struct svc_runtime *r = rt_find(s, name);

	if (r)
		return r->shadow != NULL;
	return s->have_model && svc_model_find(&s->model, name);
}

int bpflb_services_overlay_reset(struct bpflb_services *s, struct bpflb_err *err)
{
	bool ovr = s->novr != 0;
	int ret;

	while (s->nrt) {
		ret = bpflb_services_svc_clear(s, s->rt[s->nrt - 1].name, err);
		if (ret)
			return ret;
	}
	s->novr = 0;
	return ovr && s->have_model ? apply_model(s, &s->model, false, err) : 0;
}

int bpflb_services_set_overrides(struct bpflb_services *s, const struct bpflb_backend_override *o,
				 size_t n)
{
	struct svc_ovr *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = (struct svc_ovr){o[i].addr, o[i].port, o[i].state};
	free(s->ovr);
	s->ovr = v;
	s->novr = n;
	return 0;
}

static const char *const repair_maps[BPFLB_REPAIR_NMAPS] = {
    "bpflb_svc", "bpflb_backends", "bpflb_slots", "bpflb_maglev", "bpflb_node"};

const char *bpflb_repair_map_name(unsigned int i)
{
	return i < BPFLB_REPAIR_NMAPS ? repair_maps[i] : NULL;
}

/* Count a write of a resync against its map, and name the first few keys. */
static void repair_note(void *ctx, const struct plan_op *o)
{
	static const int repair_of[BPFLB_LBMAP_COUNT] = {
	    [BPFLB_LBMAP_NODE] = BPFLB_REPAIR_NODE,	    [BPFLB_LBMAP_SVC] = BPFLB_REPAIR_SVC,
	    [BPFLB_LBMAP_SLOTS] = BPFLB_REPAIR_SLOTS,	    [BPFLB_LBMAP_BACKENDS] = BPFLB_REPAIR_BACKENDS,
	    [BPFLB_LBMAP_MAGLEV] = BPFLB_REPAIR_MAGLEV, [BPFLB_LBMAP_STATS] = -1,
	};
	struct bpflb_services_repairs *r = ctx;
	char key[48], abuf[INET_ADDRSTRLEN];
	size_t len;
	int m;

	if (o->map >= BPFLB_LBMAP_COUNT || (m = repair_of[o->map]) < 0)
		return;
	switch (o->map) {
	case BPFLB_LBMAP_SVC:
		snprintf(key, sizeof(key), "%s:%u/%s", ipstr(o->key.svc.addr, abuf),
			 ntohs(o->key.svc.port), o->key.svc.proto == IPPROTO_UDP ? "udp" : "tcp");
		break;
	case BPFLB_LBMAP_SLOTS:
		snprintf(key, sizeof(key), "%u/%u", o->key.slot.svc_id, o->key.slot.slot);
		break;
	default:
		snprintf(key, sizeof(key), "%u", o->key.id);
	}
	r->n[m]++;
	len = strlen(r->keys[m]);
	if (r->n[m] <= BPFLB_REPAIR_KEYS_SHOWN)
		snprintf(r->keys[m] + len, sizeof(r->keys[m]) - len, "%s%s", len ? " " : "", key);
	else if (r->n[m] == BPFLB_REPAIR_KEYS_SHOWN + 1)
		snprintf(r->keys[m] + len, sizeof(r->keys[m]) - len, " ...");
}

/*
 * The drift check: read the maps again and write whatever differs from the
 * state last applied.  The desired state is computed against the daemon's own
 * picture (so every id stays what it was: a backend entry someone rewrote is
 * put back under its id, not re-numbered; a service port whose frontends were
 * all deleted keeps its id, which the maps alone could not tell) and planned
 * against what the maps hold now.  A Maglev table read back has no known
 * signature, so its plan op compares the table whole (keep_same) and writes it
 * only when an entry differs.  Every write is a repair: the desired state did
 * not change.
 */
int bpflb_services_resync(struct bpflb_services *s, struct bpflb_services_repairs *r,
			  struct bpflb_err *err)
{
	struct dstate actual = {0}, D = {0};
	struct plan plan = {0};
	struct svc_input in;
	struct plan_maps pm;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!s->have_model)
		return 0;
	if (s->stale) {
		/* our picture is unknown after a failed commit: converge as an apply does */
		s->repairs = r;
		ret = apply_model(s, &s->model, false, err);
		s->repairs = NULL;
		return ret;
	}
	ret = state_read(s, &actual, err);
	if (ret)
		return ret;
	in = (struct svc_input){.cur = &s->cur,
				.ovr = s->ovr,
				.novr = s->novr,
				.next_be_id = s->next_be_id,
				.next_svc_id = s->next_svc_id};
	ret = svc_compute(&s->model, &in, &D, err);
	if (ret)
		goto out;
	ret = plan_diff(&D, &actual, &plan);
	if (ret) {
		bpflb_err_set(err, "out of memory planning the service maps");
		goto out;
	}
	plan_maps_of(s, &D, &pm);
	ret = plan_commit_each(&plan, &pm, &s->map_writes, repair_note, r, err);
	if (ret)
		s->stale = true; /* the next apply or resync reads the maps again */
out:
	plan_free(&plan);
	dstate_free(&D);
	dstate_free(&actual);
	return ret;
}
