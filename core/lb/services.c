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
#include "lb/services.h"
#include "lb/services_model.h"

#define SP_KEY_LEN (2 * SVC_NAME_LEN + 2)

struct dfe {
	struct bpflb_svc_key key;
	struct bpflb_svc val;
};

struct dbe {
	uint32_t id;
	struct bpflb_backend val;
};

struct dsp {
	uint32_t id;
	char key[SP_KEY_LEN]; /* "svc/port"; "" when read back from the maps */
	uint32_t nslots;
	uint32_t *slots; /* backend ids; 0 marks a hole read back from the maps */
	bool maglev;	 /* has a table in bpflb_maglev */
	bool sig_known;	 /* sig describes that table */
	uint64_t sig;
	struct bpflb_maglev_backend *mg; /* desired only: the table's inputs */
	uint32_t nmg;
};

struct dstate {
	struct dfe *fe;
	size_t nfe;
	struct dbe *be;
	size_t nbe;
	struct dsp *sp;
	size_t nsp;
	struct bpflb_node_cfg node;
	bool has_node;
	struct bpflb_healthz_svc *hz;
	size_t nhz;
	uint32_t nservices;
};

/* A service of the overlay (set or deleted through the control socket). */
struct svc_runtime {
	char name[SVC_NAME_LEN];
	bool deleted;
};

struct ovr {
	uint32_t addr;
	uint16_t port; /* 0: every port */
	uint8_t state;
};

struct bpflb_services {
	char pin_root[PATH_MAX];
	uv_loop_t *loop;
	int fd_svc, fd_slots, fd_be, fd_mg, fd_node, fd_ct, fd_stats;
	uint32_t be_type, stats_type, stats_vsize;
	uint32_t mg_inner_m, mg_inner_flags;
	struct dstate cur;
	bool stale; /* cur may not match the maps: read them again */
	struct svc_model model;
	bool have_model;
	struct ovr *ovr;
	size_t novr;
	uint32_t next_svc_id, next_be_id;
	struct bpflb_healthz *hz;
	uv_timer_t *gc_timer;
	uint64_t gc_interval_ms;
	struct bpflb_ct_timeouts ct;
	uint64_t map_writes;  /* every update and delete, ever */
	uint64_t last_writes; /* by the last successful apply */
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

static int fe_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct bpflb_svc_key));
}

static int be_id_cmp(const void *a, const void *b)
{
	const struct dbe *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int sp_id_cmp(const void *a, const void *b)
{
	const struct dsp *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static struct dfe *fe_find(const struct dstate *st, const struct bpflb_svc_key *k)
{
	return st->nfe ? bsearch(k, st->fe, st->nfe, sizeof(*st->fe), fe_cmp) : NULL;
}

static struct dbe *be_find(const struct dstate *st, uint32_t id)
{
	struct dbe k = {.id = id};

	return st->nbe ? bsearch(&k, st->be, st->nbe, sizeof(*st->be), be_id_cmp) : NULL;
}

static struct dsp *sp_find(const struct dstate *st, uint32_t id)
{
	struct dsp k = {.id = id};

	return st->nsp ? bsearch(&k, st->sp, st->nsp, sizeof(*st->sp), sp_id_cmp) : NULL;
}

static void dstate_free(struct dstate *st)
{
	for (size_t i = 0; i < st->nsp; i++) {
		free(st->sp[i].slots);
		free(st->sp[i].mg);
	}
	free(st->sp);
	free(st->fe);
	free(st->be);
	free(st->hz);
	memset(st, 0, sizeof(*st));
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Bitmap of ids in use, [0, max). */
struct idset {
	uint64_t *w;
	uint32_t max;
};

static int idset_init(struct idset *s, uint32_t max)
{
	s->max = max;
	s->w = calloc((max + 63) / 64, sizeof(uint64_t));
	return s->w ? 0 : -ENOMEM;
}

static bool idset_has(const struct idset *s, uint32_t id)
{
	return id < s->max && (s->w[id / 64] >> (id % 64)) & 1;
}

static void idset_add(struct idset *s, uint32_t id)
{
	if (id < s->max)
		s->w[id / 64] |= 1ull << (id % 64);
}

/* Next free id in [1, max) from *cursor on, round robin; 0 when full. */
static uint32_t idset_alloc(struct idset *s, uint32_t *cursor)
{
	uint32_t id = *cursor;

	for (uint32_t tries = 0; tries < s->max; tries++, id++) {
		if (id == 0 || id >= s->max)
			id = 1;
		if (!idset_has(s, id)) {
			idset_add(s, id);
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
	return b->hostnet && !m->lb.dsr_ipip && b->addr != node_addr &&
	       strcmp(b->node, m->self.name);
}

static void be_no_dsr_log(const struct svc_backend *b, uint16_t port)
{
	char a[INET_ADDRSTRLEN];

	pr_notice("backend %s:%u (hostnet on %s, not its node address): DSR option dispatch "
		  "cannot reach it; its flows use SNAT (dsr_dispatch = ipip would reach it)",
		  inet_ntop(AF_INET, &b->addr, a, sizeof(a)), port, b->node);
}

static uint8_t ovr_state(const struct bpflb_services *s, uint32_t addr, uint16_t port,
			 uint8_t state)
{
	bool exact = false;

	for (size_t i = 0; s && i < s->novr; i++) {
		const struct ovr *o = &s->ovr[i];

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

struct be_ident {
	uint32_t addr;		     /* network order */
	uint16_t port;		     /* host order */
	const struct svc_backend *b; /* as configured */
	const struct dbe *e;	     /* its entry: current (index of C) or desired */
};

static int ident_cmp(const void *a, const void *b)
{
	const struct be_ident *x = a, *y = b;

	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

static int sp_key_cmp(const void *a, const void *b)
{
	const struct dsp *const *x = a, *const *y = b;

	return strcmp((*x)->key, (*y)->key);
}

static int mg_cmp(const void *a, const void *b)
{
	const struct bpflb_maglev_backend *x = a, *y = b;

	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/*
 * The state the maps must hold for model m.  Ids come from s (its current
 * state and cursors, which advance) when s is given, else are numbered from
 * 1 (validation).  Fails only on memory or a full id space.
 */
static int compute(struct bpflb_services *s, const struct svc_model *m, struct dstate *D,
		   struct bpflb_err *err)
{
	const struct dstate *C = s ? &s->cur : NULL;
	uint32_t be_cursor = s ? s->next_be_id : 1, svc_cursor = s ? s->next_svc_id : 1;
	struct idset be_used = {0}, svc_used = {0}, svc_taken = {0};
	struct be_ident *ids = NULL, *cidx = NULL;
	const struct dsp **names = NULL;
	size_t nids = 0, cap = 0, ncidx = 0, nnames = 0, i, j;
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];
	int ret = -ENOMEM;

	memset(D, 0, sizeof(*D));
	/* Ids 1..size: as many as the maps ([lb] max_backends, max_services) hold. */
	if (idset_init(&be_used, m->lb.sizes.backends + 1) ||
	    idset_init(&svc_used, m->lb.sizes.services + 1) ||
	    idset_init(&svc_taken, m->lb.sizes.services + 1))
		goto out;

	/* 1. backends: one per address:port of the services present here */
	for (i = 0; i < m->nsvcs; i++)
		if (svc_on_node(m, &m->svcs[i]))
			cap += (size_t)m->svcs[i].nbes * m->svcs[i].nports;
	ids = calloc(cap ? cap : 1, sizeof(*ids));
	if (!ids)
		goto out;
	for (i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = &m->svcs[i];

		if (!svc_on_node(m, d))
			continue;
		for (unsigned int b = 0; b < d->nbes; b++)
			for (unsigned int p = 0; p < d->nports; p++)
				ids[nids++] = (struct be_ident){
				    d->bes[b].addr, svc_backend_port(d, &d->bes[b], p), &d->bes[b]};
	}
	qsort(ids, nids, sizeof(*ids), ident_cmp);
	for (i = j = 0; i < nids; i++)
		if (!j || ident_cmp(&ids[i], &ids[j - 1]))
			ids[j++] = ids[i];
	nids = j;

	/* index of the current backends by identity */
	if (C && C->nbe) {
		cidx = calloc(C->nbe, sizeof(*cidx));
		if (!cidx)
			goto out;
		for (i = 0; i < C->nbe; i++) {
			cidx[i] = (struct be_ident){C->be[i].val.addr, ntohs(C->be[i].val.port),
						    NULL, &C->be[i]};
			idset_add(&be_used, C->be[i].id);
		}
		ncidx = C->nbe;
		qsort(cidx, ncidx, sizeof(*cidx), ident_cmp);
	}
	D->be = calloc(nids ? nids : 1, sizeof(*D->be));
	if (!D->be)
		goto out;
	for (i = 0; i < nids; i++) {
		const struct svc_backend *b = ids[i].b;
		const struct svc_node *node = svc_model_node(m, b->node);
		struct be_ident *hit =
		    ncidx ? bsearch(&ids[i], cidx, ncidx, sizeof(*cidx), ident_cmp) : NULL;
		struct dbe *e = &D->be[D->nbe++];

		e->id = hit ? hit->e->id : idset_alloc(&be_used, &be_cursor);
		if (!e->id) {
			bpflb_err_set(err, "no free backend id: %u in use ([lb] max_backends)",
				      m->lb.sizes.backends);
			ret = -ENOSPC;
			goto out;
		}
		e->val.addr = ids[i].addr;
		e->val.port = htons(ids[i].port);
		e->val.state = ovr_state(s, ids[i].addr, ids[i].port, b->state);
		e->val.flags = (!strcmp(b->node, m->self.name) ? BPFLB_BE_F_LOCAL : 0) |
			       (b->hostnet ? BPFLB_BE_F_HOSTNET : 0);
		e->val.node_addr = node && node->naddrs ? node->addrs[0] : 0;
		if (be_no_dsr(m, b, e->val.node_addr)) {
			e->val.flags |= BPFLB_BE_F_NO_DSR;
			if (s && !(hit && (hit->e->val.flags & BPFLB_BE_F_NO_DSR)))
				be_no_dsr_log(b, ids[i].port);
		}
		ids[i].e = e;
	}

	/* 2. service ports and their frontends */
	if (C) {
		for (i = 0; i < C->nfe; i++)
			idset_add(&svc_used, C->fe[i].val.id);
		for (i = 0; i < C->nsp; i++)
			idset_add(&svc_used, C->sp[i].id);
	}
	cap = 0;
	for (i = 0; i < m->nsvcs; i++)
		cap += m->svcs[i].nports;
	D->sp = calloc(cap ? cap : 1, sizeof(*D->sp));
	if (!D->sp)
		goto out;
	for (i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = &m->svcs[i];

		if (!svc_on_node(m, d))
			continue;
		D->nservices++;
		for (unsigned int p = 0; p < d->nports; p++) {
			struct dsp *sp = &D->sp[D->nsp];

			if (!svc_frontends(m, d, p, keys))
				continue;
			snprintf(sp->key, sizeof(sp->key), "%s/%s", d->name, d->ports[p].name);
			D->nsp++;
		}
	}
	/* ids: by name (reload), then by frontend (restart), then new */
	if (C && C->nsp) {
		names = calloc(C->nsp, sizeof(*names));
		if (!names)
			goto out;
		for (i = 0; i < C->nsp; i++)
			if (C->sp[i].key[0])
				names[nnames++] = &C->sp[i];
		qsort(names, nnames, sizeof(*names), sp_key_cmp);
	}
	for (i = 0; nnames && i < D->nsp; i++) {
		const struct dsp *want = &D->sp[i], **hit;

		hit = bsearch(&want, names, nnames, sizeof(*names), sp_key_cmp);
		if (hit && !idset_has(&svc_taken, (*hit)->id)) {
			D->sp[i].id = (*hit)->id;
			idset_add(&svc_taken, D->sp[i].id);
		}
	}
	for (size_t si = 0, k = 0; si < m->nsvcs; si++) {
		const struct svc_def *d = &m->svcs[si];

		if (!svc_on_node(m, d))
			continue;
		for (unsigned int p = 0; p < d->nports; p++) {
			unsigned int nk = svc_frontends(m, d, p, keys);
			struct dsp *sp;

			if (!nk)
				continue;
			sp = &D->sp[k++];
			for (unsigned int f = 0; C && !sp->id && f < nk; f++) {
				struct dfe *hit = fe_find(C, &keys[f]);

				if (hit && hit->val.id && !idset_has(&svc_taken, hit->val.id)) {
					sp->id = hit->val.id;
					idset_add(&svc_taken, sp->id);
				}
			}
		}
	}
	for (i = 0; i < D->nsp; i++) {
		if (D->sp[i].id)
			continue;
		D->sp[i].id = idset_alloc(&svc_used, &svc_cursor);
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
		if (svc_on_node(m, &m->svcs[i]))
			cap += (size_t)m->svcs[i].nports * svc_max_frontends(m, &m->svcs[i]);
	D->fe = calloc(cap ? cap : 1, sizeof(*D->fe));
	D->hz = calloc(m->nsvcs ? m->nsvcs : 1, sizeof(*D->hz));
	if (!D->fe || !D->hz)
		goto out;
	for (size_t si = 0, k = 0; si < m->nsvcs; si++) {
		const struct svc_def *d = &m->svcs[si];
		uint32_t local_eps = 0;

		if (!svc_on_node(m, d))
			continue;
		for (unsigned int p = 0; p < d->nports; p++) {
			unsigned int nk = svc_frontends(m, d, p, keys), n = 0;
			struct bpflb_maglev_backend *sel;
			struct dsp *sp;
			uint16_t flags = 0;

			if (!nk)
				continue;
			sp = &D->sp[k++];
			sel = calloc(d->nbes ? d->nbes : 1, sizeof(*sel));
			if (!sel)
				goto out;
			for (unsigned int b = 0; b < d->nbes; b++) {
				struct be_ident key = {d->bes[b].addr,
						       svc_backend_port(d, &d->bes[b], p), NULL};
				struct be_ident *hit =
				    bsearch(&key, ids, nids, sizeof(*ids), ident_cmp);
				const struct dbe *e = hit->e;

				if (svc_backend_selectable(m, d, &d->bes[b], e->val.state))
					sel[n++] = (struct bpflb_maglev_backend){e->id, key.addr,
										 key.port};
			}
			/* identity order: the same on every node, whatever the ids */
			qsort(sel, n, sizeof(*sel), mg_cmp);
			sp->nslots = n;
			sp->slots = calloc(n ? n : 1, sizeof(*sp->slots));
			if (!sp->slots) {
				free(sel);
				goto out;
			}
			for (unsigned int b = 0; b < n; b++)
				sp->slots[b] = sel[b].id;
			if (d->alg == SVC_ALG_MAGLEV && n) {
				uint64_t h = 0xcbf29ce484222325ull;

				sp->maglev = true;
				sp->mg = sel;
				sp->nmg = n;
				h = fnv1a(h, &m->lb.maglev_m, sizeof(m->lb.maglev_m));
				h = fnv1a(h, &m->lb.hash_seed, sizeof(m->lb.hash_seed));
				for (unsigned int b = 0; b < n; b++)
					h = fnv1a(h, &sel[b], sizeof(sel[b]));
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
		}
		if (!d->hc_port || !d->etp_local)
			continue;
		/* kube-proxy counts local ready endpoints, i.e. addresses */
		for (unsigned int b = 0; b < d->nbes; b++) {
			const struct svc_backend *be = &d->bes[b];
			bool seen = false;

			if (strcmp(be->node, m->self.name) ||
			    ovr_state(s, be->addr, svc_backend_port(d, be, 0), be->state) !=
				BPFLB_BE_ACTIVE)
				continue;
			for (unsigned int o = 0; o < b; o++)
				seen |=
				    d->bes[o].addr == be->addr &&
				    !strcmp(d->bes[o].node, m->self.name) &&
				    ovr_state(s, d->bes[o].addr, svc_backend_port(d, &d->bes[o], 0),
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
	qsort(D->fe, D->nfe, sizeof(*D->fe), fe_cmp);
	qsort(D->be, D->nbe, sizeof(*D->be), be_id_cmp);
	qsort(D->sp, D->nsp, sizeof(*D->sp), sp_id_cmp);
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
	if (s) {
		s->next_be_id = be_cursor;
		s->next_svc_id = svc_cursor;
	}
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

int bpflb_services_validate(const struct bpflb_config *cfg, struct bpflb_err *err)
{
	struct svc_model m;
	struct dstate D;
	int ret;

	ret = svc_model_build(cfg, &m, err);
	if (ret)
		return ret;
	ret = compute(NULL, &m, &D, err);
	dstate_free(&D);
	svc_model_free(&m);
	return ret;
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
	struct dsp key = {.id = id}, *hit;

	hit = nsorted ? bsearch(&key, st->sp, nsorted, sizeof(*st->sp), sp_id_cmp) : NULL;
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
	qsort(st->fe, st->nfe, sizeof(*st->fe), fe_cmp);
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
	qsort(st->be, st->nbe, sizeof(*st->be), be_id_cmp);
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
	if (st->nsp)
		qsort(st->sp, st->nsp, sizeof(*st->sp), sp_id_cmp);

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
	if (st->nsp)
		qsort(st->sp, st->nsp, sizeof(*st->sp), sp_id_cmp);

	/* the names of service ports we applied before survive a re-read */
	for (i = 0; i < st->nsp; i++) {
		struct dsp *old = sp_find(&s->cur, st->sp[i].id);

		if (old)
			memcpy(st->sp[i].key, old->key, sizeof(old->key));
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
	if (s->have_model)
		svc_model_free(&s->model);
	free(s->ovr);
	free(s->rt);
	free(s);
}

/* --- writing the difference ------------------------------------------------------ */

static void repair_note(struct bpflb_services *s, int fd, const void *k);

static int upd(struct bpflb_services *s, int fd, const void *k, const void *v)
{
	s->map_writes++;
	if (s->repairs)
		repair_note(s, fd, k);
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

static int del(struct bpflb_services *s, int fd, const void *k)
{
	s->map_writes++;
	if (s->repairs)
		repair_note(s, fd, k);
	if (!bpf_map_delete_elem(fd, k) || errno == ENOENT)
		return 0;
	return -errno;
}

static int be_remove(struct bpflb_services *s, uint32_t id)
{
	static const struct bpflb_backend zero;

	if (s->be_type == BPF_MAP_TYPE_ARRAY)
		return upd(s, s->fd_be, &id, &zero);
	return del(s, s->fd_be, &id);
}

/* Counters of a service id that went away start from zero if it comes back. */
static void stats_reset(struct bpflb_services *s, uint32_t id)
{
	int ncpu;
	void *zero;

	if (s->fd_stats < 0)
		return;
	if (s->stats_type == BPF_MAP_TYPE_HASH || s->stats_type == BPF_MAP_TYPE_PERCPU_HASH ||
	    s->stats_type == BPF_MAP_TYPE_LRU_HASH ||
	    s->stats_type == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
		bpf_map_delete_elem(s->fd_stats, &id);
		return;
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return;
	zero = calloc((size_t)ncpu, ((size_t)s->stats_vsize + 7) & ~(size_t)7);
	if (zero)
		bpf_map_update_elem(s->fd_stats, &id, zero, BPF_ANY);
	free(zero);
}

static int mg_read(struct bpflb_services *s, uint32_t id, uint32_t m, uint32_t *table)
{
	__u32 inner_id, k;
	int fd, ret = 0;

	if (bpf_map_lookup_elem(s->fd_mg, &id, &inner_id))
		return -errno;
	fd = bpf_map_get_fd_by_id(inner_id);
	if (fd < 0)
		return -errno;
	for (k = 0; k < m && !ret; k++)
		if (bpf_map_lookup_elem(fd, &k, &table[k]))
			ret = -errno;
	close(fd);
	return ret;
}

/* Install a new table for sp (atomically replacing the old one in the outer map). */
static int mg_install(struct bpflb_services *s, const struct svc_model *m, struct dsp *d,
		      const struct dsp *c, struct bpflb_err *err)
{
	LIBBPF_OPTS(bpf_map_create_opts, copts);
	uint32_t mm = m->lb.maglev_m, *table, *cmp = NULL, *keys = NULL, count;
	int ret, fd = -1;

	if (s->mg_inner_m && s->mg_inner_m != mm)
		return bpflb_err_set(err,
				     "the datapath's Maglev tables have %u entries, the "
				     "configuration asks for %u",
				     s->mg_inner_m, mm),
		       -EINVAL;
	table = malloc(mm * sizeof(*table));
	if (!table)
		return -ENOMEM;
	ret = bpflb_maglev_build(d->mg, d->nmg, mm, m->lb.hash_seed, table);
	if (ret) {
		bpflb_err_set(err, "cannot build the Maglev table of %s: %s", d->key,
			      strerror(-ret));
		goto out;
	}
	if (c && c->maglev && !c->sig_known) {
		/* first apply after a restart: keep an identical table */
		cmp = malloc(mm * sizeof(*cmp));
		if (cmp && !mg_read(s, d->id, mm, cmp) && !memcmp(cmp, table, mm * sizeof(*cmp)))
			goto out;
	}
	copts.map_flags = s->mg_inner_flags;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "bpflb_mg_inner", sizeof(__u32), sizeof(__u32), mm,
			    &copts);
	if (fd < 0) {
		ret = -errno;
		bpflb_err_set(err, "cannot create a Maglev table for %s: %s", d->key,
			      strerror(-ret));
		goto out;
	}
	keys = malloc(mm * sizeof(*keys));
	if (!keys) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < mm; i++)
		keys[i] = i;
	count = mm;
	if (bpf_map_update_batch(fd, keys, table, &count, NULL) || count != mm) {
		for (uint32_t i = 0; i < mm; i++) {
			if (bpf_map_update_elem(fd, &keys[i], &table[i], BPF_ANY)) {
				ret = -errno;
				bpflb_err_set(err, "cannot fill the Maglev table of %s: %s", d->key,
					      strerror(-ret));
				goto out;
			}
		}
	}
	ret = upd(s, s->fd_mg, &d->id, &fd);
	if (ret)
		bpflb_err_set(err,
			      "cannot install the Maglev table of %s (id %u) into "
			      "bpflb_maglev: %s",
			      d->key, d->id, strerror(-ret));
out:
	if (fd >= 0)
		close(fd);
	free(keys);
	free(cmp);
	free(table);
	return ret;
}

static int write_failed(struct bpflb_err *err, const char *what, int ret)
{
	bpflb_err_set(err, "cannot write %s: %s", what, strerror(-ret));
	return ret;
}

/*
 * Write the backends of D that differ from C: the demoted ones (active in C,
 * not in D) when demoted is true, the others when it is false.
 */
static int write_backends(struct bpflb_services *s, const struct dstate *D, const struct dstate *C,
			  bool demoted, struct bpflb_err *err)
{
	char abuf[INET_ADDRSTRLEN];
	int ret;

	for (size_t i = 0; i < D->nbe; i++) {
		const struct dbe *c = be_find(C, D->be[i].id), *d = &D->be[i];

		if (c && !memcmp(&c->val, &d->val, sizeof(c->val)))
			continue;
		if (demoted !=
		    (c && c->val.state == BPFLB_BE_ACTIVE && d->val.state != BPFLB_BE_ACTIVE))
			continue;
		ret = upd(s, s->fd_be, &d->id, &d->val);
		if (ret) {
			bpflb_err_set(
			    err, "cannot write backend %u (%s:%u) into bpflb_backends: %s", d->id,
			    ipstr(d->val.addr, abuf), ntohs(d->val.port), strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/*
 * Make the maps go from C to D.  The order is what keeps the datapath safe:
 * every id a packet can reach through bpflb_svc, bpflb_slots or a Maglev table
 * exists when it is reached.  Frontends that go away go first (they refer to
 * nothing that stays, and a map near its capacity needs the room); then
 * backends, tables and slots before the frontends that use them; a shrinking
 * service's count before the slots it stops counting; backends last.
 */
static int diff_apply(struct bpflb_services *s, const struct svc_model *m, struct dstate *D,
		      const struct dstate *C, struct bpflb_err *err)
{
	char abuf[INET_ADDRSTRLEN];
	size_t i;
	int ret;

	/* 1. node settings */
	if (!C->has_node || memcmp(&C->node, &D->node, sizeof(D->node))) {
		__u32 zero = 0;

		ret = upd(s, s->fd_node, &zero, &D->node);
		if (ret)
			return write_failed(err, "bpflb_node", ret);
	}
	/* 2. frontends that went away, first: nothing refers to a frontend */
	for (i = 0; i < C->nfe; i++) {
		if (fe_find(D, &C->fe[i].key))
			continue;
		ret = del(s, s->fd_svc, &C->fe[i].key);
		if (ret)
			return write_failed(err, "bpflb_svc", ret);
	}
	/* 3. service ports that went away (no frontend refers to them now) */
	for (i = 0; i < C->nsp; i++) {
		const struct dsp *c = &C->sp[i];

		if (sp_find(D, c->id))
			continue;
		for (uint32_t k = 0; k < c->nslots; k++) {
			struct bpflb_slot_key sk = {c->id, k};

			ret = del(s, s->fd_slots, &sk);
			if (ret)
				return write_failed(err, "bpflb_slots", ret);
		}
		if (c->maglev) {
			ret = del(s, s->fd_mg, &c->id);
			if (ret)
				return write_failed(err, "bpflb_maglev", ret);
		}
		stats_reset(s, c->id);
	}
	/* 4. backends, new and changed (those leaving "active" wait) */
	ret = write_backends(s, D, C, false, err);
	if (ret)
		return ret;
	/* 5. Maglev tables and slots of every service port */
	for (i = 0; i < D->nsp; i++) {
		struct dsp *d = &D->sp[i];
		const struct dsp *c = sp_find(C, d->id);

		if (d->maglev && !(c && c->maglev && c->sig_known && c->sig == d->sig)) {
			ret = mg_install(s, m, d, c, err);
			if (ret)
				return ret;
		}
		for (uint32_t k = 0; k < d->nslots; k++) {
			struct bpflb_slot_key sk = {d->id, k};

			if (c && k < c->nslots && c->slots[k] == d->slots[k])
				continue;
			ret = upd(s, s->fd_slots, &sk, &d->slots[k]);
			if (ret)
				return write_failed(err, "bpflb_slots", ret);
		}
	}
	/* 6. frontends: new ones appear, changed counts and flags take effect */
	for (i = 0; i < D->nfe; i++) {
		const struct dfe *c = fe_find(C, &D->fe[i].key);

		if (c && !memcmp(&c->val, &D->fe[i].val, sizeof(c->val)))
			continue;
		ret = upd(s, s->fd_svc, &D->fe[i].key, &D->fe[i].val);
		if (ret) {
			bpflb_err_set(err, "cannot write service %s:%u into bpflb_svc: %s",
				      ipstr(D->fe[i].key.addr, abuf), ntohs(D->fe[i].key.port),
				      strerror(-ret));
			return ret;
		}
	}
	/* 7. slots no longer counted; tables no longer flagged */
	for (i = 0; i < D->nsp; i++) {
		const struct dsp *d = &D->sp[i], *c = sp_find(C, d->id);

		for (uint32_t k = d->nslots; c && k < c->nslots; k++) {
			struct bpflb_slot_key sk = {d->id, k};

			ret = del(s, s->fd_slots, &sk);
			if (ret)
				return write_failed(err, "bpflb_slots", ret);
		}
		if (c && c->maglev && !d->maglev) {
			ret = del(s, s->fd_mg, &d->id);
			if (ret)
				return write_failed(err, "bpflb_maglev", ret);
		}
	}
	/* 8. backends leaving "active": no slot or table offers them any more */
	ret = write_backends(s, D, C, true, err);
	if (ret)
		return ret;
	/* 9. backends nothing refers to any more */
	for (i = 0; i < C->nbe; i++) {
		if (be_find(D, C->be[i].id))
			continue;
		ret = be_remove(s, C->be[i].id);
		if (ret)
			return write_failed(err, "bpflb_backends", ret);
	}
	return 0;
}

static void gc_schedule(struct bpflb_services *s, uint64_t interval_ms)
{
	if (!s->gc_timer || interval_ms == s->gc_interval_ms)
		return;
	s->gc_interval_ms = interval_ms;
	uv_timer_start(s->gc_timer, gc_tick, interval_ms, interval_ms);
}

/* Apply model m (owned by the caller until it succeeds: then by s). */
static int apply_model(struct bpflb_services *s, struct svc_model *m, bool adopt,
		       struct bpflb_err *err)
{
	struct dstate D, fresh;
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
	ret = compute(s, m, &D, err);
	if (ret)
		return ret;
	if (s->hz) {
		ret = bpflb_healthz_update(s->hz, D.hz, D.nhz, err);
		if (ret)
			goto out;
	}
	ret = diff_apply(s, m, &D, &s->cur, err);
	if (ret) {
		s->stale = true;
		goto out;
	}
	pr_debug("services: %u services, %zu frontends, %zu backends applied with %llu map "
		 "writes",
		 D.nservices, D.nfe, D.nbe, (unsigned long long)(s->map_writes - writes0));
	s->last_writes = s->map_writes - writes0;
	dstate_free(&s->cur);
	s->cur = D;
	memset(&D, 0, sizeof(D));
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
	dstate_free(&D);
	return ret;
}

int bpflb_services_apply(struct bpflb_services *s, const struct bpflb_config *next,
			 struct bpflb_err *err)
{
	return bpflb_services_apply_overlay(s, next, NULL, 0, err);
}

static int runtime_note(struct bpflb_services *s, const char *name, bool deleted)
{
	struct svc_runtime *n;

	for (size_t i = 0; i < s->nrt; i++) {
		if (!strcmp(s->rt[i].name, name)) {
			s->rt[i].deleted = deleted;
			return 0;
		}
	}
	n = realloc(s->rt, (s->nrt + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->rt = n;
	snprintf(n[s->nrt].name, sizeof(n[s->nrt].name), "%s", name);
	n[s->nrt++].deleted = deleted;
	return 0;
}

/* [service NAME] replaced (sec) or removed (NULL) in the applied model, then re-applied. */
static int svc_change(struct bpflb_services *s, const char *name,
		      const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	size_t nrt = s->nrt;
	int was = bpflb_services_svc_runtime(s, name);
	struct svc_model m;
	bool known = false;
	int ret;

	if (!s->have_model)
		return bpflb_err_set(err, "no configuration applied yet"), -EAGAIN;
	for (unsigned int i = 0; i < s->model.nsvcs; i++)
		known |= !strcmp(s->model.svcs[i].name, name);
	if (!sec && !known)
		return bpflb_err_set(err, "no service '%s' on this node", name), -ENOENT;
	ret = runtime_note(s, name, !sec); /* room first: nothing may fail after the apply */
	if (ret)
		return ret;
	ret = svc_model_replace(&s->model, name, sec, &m, err);
	if (!ret) {
		ret = apply_model(s, &m, true, err);
		if (ret)
			svc_model_free(&m);
	}
	if (ret) {
		/* the applied model did not change: neither does the note */
		s->nrt = nrt;
		for (size_t i = 0; was && i < s->nrt; i++)
			if (!strcmp(s->rt[i].name, name))
				s->rt[i].deleted = was == 2;
	}
	return ret;
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
	const struct dbe *e = be_find(&s->cur, id);

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
	const struct dsp *sp = sp_find(&s->cur, id);

	return sp && sp->key[0] ? sp->key : NULL;
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
	return mg_read(s, svc_id, m, table);
}

void bpflb_services_gc_stats(const struct bpflb_services *s, struct bpflb_services_gc *out)
{
	*out = s->gc;
}

static bool model_has_backend(const struct svc_model *m, uint32_t addr, uint16_t port)
{
	for (unsigned int i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = &m->svcs[i];

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
	struct ovr *o = NULL, saved;
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
		struct ovr *n = realloc(s->ovr, (s->novr + 1) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->ovr = n;
		s->ovr[s->novr++] = (struct ovr){addr, port, (uint8_t)state};
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
	char key[SP_KEY_LEN];

	snprintf(key, sizeof(key), "%s/%s", name, port_name);
	for (size_t i = 0; i < s->cur.nsp; i++)
		if (!strcmp(s->cur.sp[i].key, key))
			return s->cur.sp[i].id;
	return 0;
}

uint32_t bpflb_services_backend_id(const struct bpflb_services *s, uint32_t addr, uint16_t port)
{
	for (size_t i = 0; i < s->cur.nbe; i++)
		if (s->cur.be[i].val.addr == addr && ntohs(s->cur.be[i].val.port) == port)
			return s->cur.be[i].id;
	return 0;
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
	return be_find(&((struct bpflb_services *)ctx)->cur, id) != NULL;
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

/* --- the overlay and the drift check (driven by core/state/reconcile.c) ----------------- */

/*
 * Desired = the model of next with each overlay service edit on top, applied
 * whole.  An edit deleting a service the file no longer has is a no-op; an
 * edit that no longer fits the file (a frontend now taken, a node gone) fails
 * the apply, naming the overlay entry, and nothing changes.
 */
int bpflb_services_apply_overlay(struct bpflb_services *s, const struct bpflb_config *next,
				 const struct bpflb_services_svc_edit *edits, size_t nedits,
				 struct bpflb_err *err)
{
	struct svc_runtime *rt = NULL;
	struct svc_model m, t;
	int ret;

	if (nedits && !(rt = calloc(nedits, sizeof(*rt))))
		return bpflb_err_set(err, "out of memory"), -ENOMEM;
	ret = svc_model_build(next, &m, err);
	if (ret) {
		free(rt);
		return ret;
	}
	for (size_t i = 0; i < nedits; i++) {
		const struct bpflb_services_svc_edit *e = &edits[i];
		bool known = false;

		snprintf(rt[i].name, sizeof(rt[i].name), "%s", e->name);
		rt[i].deleted = !e->sec;
		for (unsigned int k = 0; !e->sec && k < m.nsvcs; k++)
			known |= !strcmp(m.svcs[k].name, e->name);
		if (!e->sec && !known)
			continue;
		ret = svc_model_replace(&m, e->name, e->sec, &t, err);
		svc_model_free(&m);
		if (ret) {
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			bpflb_err_set(err,
				      "overlay service '%s' does not fit the configuration: %s "
				      "(bpflbctl overlay clear service %s drops it)",
				      e->name, msg, e->name);
			free(rt);
			return ret;
		}
		m = t;
	}
	ret = apply_model(s, &m, true, err);
	if (ret) {
		svc_model_free(&m);
		free(rt);
		return ret;
	}
	free(s->rt);
	s->rt = rt;
	s->nrt = nedits;
	return 0;
}

int bpflb_services_svc_clear(struct bpflb_services *s, const char *name,
			     const struct bpflb_cfg_section *src, struct bpflb_err *err)
{
	struct svc_model m;
	bool known = false;
	size_t i;
	int ret;

	for (i = 0; i < s->nrt && strcmp(s->rt[i].name, name); i++)
		;
	if (i == s->nrt)
		return 0;
	for (unsigned int k = 0; s->have_model && k < s->model.nsvcs; k++)
		known |= !strcmp(s->model.svcs[k].name, name);
	if (s->have_model && (src || known)) {
		ret = svc_model_replace(&s->model, name, src, &m, err);
		if (ret)
			return ret;
		ret = apply_model(s, &m, true, err);
		if (ret) {
			svc_model_free(&m);
			return ret;
		}
	}
	s->rt[i] = s->rt[--s->nrt];
	return 0;
}

int bpflb_services_set_overrides(struct bpflb_services *s, const struct bpflb_backend_override *o,
				 size_t n)
{
	struct ovr *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = (struct ovr){o[i].addr, o[i].port, o[i].state};
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
static void repair_note(struct bpflb_services *s, int fd, const void *k)
{
	struct bpflb_services_repairs *r = s->repairs;
	char key[48], abuf[INET_ADDRSTRLEN];
	unsigned int m;
	size_t len;

	if (fd == s->fd_svc) {
		const struct bpflb_svc_key *sk = k;

		m = BPFLB_REPAIR_SVC;
		snprintf(key, sizeof(key), "%s:%u/%s", ipstr(sk->addr, abuf), ntohs(sk->port),
			 sk->proto == IPPROTO_UDP ? "udp" : "tcp");
	} else if (fd == s->fd_be) {
		m = BPFLB_REPAIR_BACKENDS;
		snprintf(key, sizeof(key), "%u", *(const uint32_t *)k);
	} else if (fd == s->fd_slots) {
		const struct bpflb_slot_key *sk = k;

		m = BPFLB_REPAIR_SLOTS;
		snprintf(key, sizeof(key), "%u/%u", sk->svc_id, sk->slot);
	} else if (fd == s->fd_mg) {
		m = BPFLB_REPAIR_MAGLEV;
		snprintf(key, sizeof(key), "%u", *(const uint32_t *)k);
	} else if (fd == s->fd_node) {
		m = BPFLB_REPAIR_NODE;
		snprintf(key, sizeof(key), "0");
	} else {
		return;
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
 * put back under its id, not re-numbered) and the writes are diffed against
 * what the maps hold now.  Maglev tables read back are compared whole with
 * what they must hold (mg_install), so an entry changed inside a table is
 * found as well.  Every write is a repair: the desired state did not change.
 */
int bpflb_services_resync(struct bpflb_services *s, struct bpflb_services_repairs *r,
			  struct bpflb_err *err)
{
	struct dstate actual, D;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!s->have_model)
		return 0;
	if (s->stale) {
		/* our picture is unknown after a failed apply: converge as an apply does */
		s->repairs = r;
		ret = apply_model(s, &s->model, false, err);
		s->repairs = NULL;
		return ret;
	}
	ret = state_read(s, &actual, err);
	if (ret)
		return ret;
	ret = compute(s, &s->model, &D, err);
	if (ret) {
		dstate_free(&actual);
		return ret;
	}
	s->repairs = r;
	ret = diff_apply(s, &s->model, &D, &actual, err);
	s->repairs = NULL;
	dstate_free(&actual);
	if (ret) {
		s->stale = true;
		dstate_free(&D);
		return ret;
	}
	dstate_free(&s->cur);
	s->cur = D;
	return 0;
}
