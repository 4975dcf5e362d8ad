// SPDX-License-Identifier: GPL-2.0-only
/*
 * Plans of the load-balancing maps: the difference between two pictures of the
 * maps as a list of operations, and its execution.  See plan.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb/plan.h"

/* --- pictures ---------------------------------------------------------------- */

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

struct dfe *dstate_fe(const struct dstate *st, const struct bpflb_svc_key *k)
{
	return st->nfe ? bsearch(k, st->fe, st->nfe, sizeof(*st->fe), fe_cmp) : NULL;
}

struct dbe *dstate_be(const struct dstate *st, uint32_t id)
{
	struct dbe k = {.id = id};

	return st->nbe ? bsearch(&k, st->be, st->nbe, sizeof(*st->be), be_id_cmp) : NULL;
}

struct dsp *dstate_sp(const struct dstate *st, uint32_t id)
{
	struct dsp k = {.id = id};

	return st->nsp ? bsearch(&k, st->sp, st->nsp, sizeof(*st->sp), sp_id_cmp) : NULL;
}

void dstate_sort(struct dstate *st)
{
	if (st->nfe)
		qsort(st->fe, st->nfe, sizeof(*st->fe), fe_cmp);
	if (st->nbe)
		qsort(st->be, st->nbe, sizeof(*st->be), be_id_cmp);
	if (st->nsp)
		qsort(st->sp, st->nsp, sizeof(*st->sp), sp_id_cmp);
}

void dstate_free(struct dstate *st)
{
	for (size_t i = 0; i < st->nsp; i++) {
		free(st->sp[i].key);
		free(st->sp[i].slots);
		free(st->sp[i].mg);
	}
	free(st->sp);
	free(st->fe);
	free(st->be);
	free(st->hz);
	memset(st, 0, sizeof(*st));
}

void dstate_free_view(struct dstate *st)
{
	free(st->sp);
	free(st->fe);
	free(st->be);
	free(st->hz);
	memset(st, 0, sizeof(*st));
}

/*
 * One sorted array merged with a part removed (rm, sorted) and a part added or
 * replaced (add, sorted): out gets every element of a not in rm or add, and
 * every element of add, in order.  gone(x) is called for each element of a
 * that does not survive (replaced or removed).
 */
#define MERGE(T, a, na, rm, nrm, add, nadd, out, nout, cmp, gone)                                  \
	do {                                                                                       \
		size_t i_ = 0, r_ = 0, d_ = 0;                                                     \
		(nout) = 0;                                                                        \
		while (i_ < (na) || d_ < (nadd)) {                                                 \
			int c_ = i_ == (na) ? 1 : d_ == (nadd) ? -1 : cmp(&(a)[i_], &(add)[d_]);   \
			if (c_ > 0) {                                                              \
				(out)[(nout)++] = (add)[d_++];                                     \
				continue;                                                          \
			}                                                                          \
			if (c_ == 0) {                                                             \
				gone(&(a)[i_]);                                                    \
				(out)[(nout)++] = (add)[d_++];                                     \
				i_++;                                                              \
				continue;                                                          \
			}                                                                          \
			while (r_ < (nrm) && cmp(&(rm)[r_], &(a)[i_]) < 0)                         \
				r_++;                                                              \
			if (r_ < (nrm) && !cmp(&(rm)[r_], &(a)[i_])) {                             \
				gone(&(a)[i_]);                                                    \
				i_++;                                                              \
				continue;                                                          \
			}                                                                          \
			(out)[(nout)++] = (a)[i_++];                                               \
		}                                                                                  \
	} while (0)

#define KEEP(x) ((void)(x))

static void sp_gone(struct dsp *sp)
{
	free(sp->key);
	free(sp->slots);
	free(sp->mg);
}

/* Index of the first element of a[0..n) not below key. */
static size_t lower_bound(const char *a, size_t n, size_t sz, const void *key,
			  int (*cmp)(const void *, const void *))
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp(a + mid * sz, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * MERGE for a change of a few entries: replaced in place, the others moved by
 * memmove, so a one-service change touches a few entries, not all of them.
 * *arr has room for *n + nadd (made by the caller).
 */
static void merge_small(char *a, size_t *n, size_t sz, const char *rm, size_t nrm, const char *add,
			size_t nadd, int (*cmp)(const void *, const void *), void (*gone)(void *))
{
	for (size_t i = 0; i < nrm; i++) {
		size_t pos;

		if (nadd && bsearch(rm + i * sz, add, nadd, sz, cmp))
			continue; /* replaced below */
		pos = lower_bound(a, *n, sz, rm + i * sz, cmp);
		if (pos == *n || cmp(a + pos * sz, rm + i * sz))
			continue;
		if (gone)
			gone(a + pos * sz);
		memmove(a + pos * sz, a + (pos + 1) * sz, (*n - pos - 1) * sz);
		(*n)--;
	}
	for (size_t i = 0; i < nadd; i++) {
		size_t pos = lower_bound(a, *n, sz, add + i * sz, cmp);

		if (pos < *n && !cmp(a + pos * sz, add + i * sz)) {
			if (gone)
				gone(a + pos * sz);
		} else {
			memmove(a + (pos + 1) * sz, a + pos * sz, (*n - pos) * sz);
			(*n)++;
		}
		memcpy(a + pos * sz, add + i * sz, sz);
	}
}

static void sp_gone_v(void *p)
{
	sp_gone(p);
}

/* Past this many entries of a part, one pass over the whole array is cheaper. */
#define MERGE_SMALL 64

int dstate_merge(struct dstate *cur, struct dstate *D, struct dstate *C)
{
	size_t n;

	if (C->nfe + D->nfe + C->nbe + D->nbe + C->nsp + D->nsp <= MERGE_SMALL) {
		/* room first: nothing may fail once cur changes */
		struct dfe *fe = realloc(cur->fe, (cur->nfe + D->nfe + 1) * sizeof(*fe));
		struct dbe *be;
		struct dsp *sp;

		if (!fe)
			return -ENOMEM;
		cur->fe = fe;
		be = realloc(cur->be, (cur->nbe + D->nbe + 1) * sizeof(*be));
		if (!be)
			return -ENOMEM;
		cur->be = be;
		sp = realloc(cur->sp, (cur->nsp + D->nsp + 1) * sizeof(*sp));
		if (!sp)
			return -ENOMEM;
		cur->sp = sp;
		merge_small((char *)cur->fe, &cur->nfe, sizeof(*fe), (char *)C->fe, C->nfe,
			    (char *)D->fe, D->nfe, fe_cmp, NULL);
		merge_small((char *)cur->be, &cur->nbe, sizeof(*be), (char *)C->be, C->nbe,
			    (char *)D->be, D->nbe, be_id_cmp, NULL);
		merge_small((char *)cur->sp, &cur->nsp, sizeof(*sp), (char *)C->sp, C->nsp,
			    (char *)D->sp, D->nsp, sp_id_cmp, sp_gone_v);
	} else {
		struct dfe *fe = malloc((cur->nfe + D->nfe + 1) * sizeof(*fe));
		struct dbe *be = malloc((cur->nbe + D->nbe + 1) * sizeof(*be));
		struct dsp *sp = malloc((cur->nsp + D->nsp + 1) * sizeof(*sp));

		if (!fe || !be || !sp) {
			free(fe);
			free(be);
			free(sp);
			return -ENOMEM;
		}
		MERGE(struct dfe, cur->fe, cur->nfe, C->fe, C->nfe, D->fe, D->nfe, fe, n, fe_cmp,
		      KEEP);
		free(cur->fe);
		cur->fe = fe;
		cur->nfe = n;
		MERGE(struct dbe, cur->be, cur->nbe, C->be, C->nbe, D->be, D->nbe, be, n, be_id_cmp,
		      KEEP);
		free(cur->be);
		cur->be = be;
		cur->nbe = n;
		MERGE(struct dsp, cur->sp, cur->nsp, C->sp, C->nsp, D->sp, D->nsp, sp, n, sp_id_cmp,
		      sp_gone);
		free(cur->sp);
		cur->sp = sp;
		cur->nsp = n;
	}
	cur->nservices = cur->nservices + D->nservices - C->nservices;
	if (D->has_node) {
		cur->node = D->node;
		cur->has_node = true;
	}
	D->nsp = 0; /* its pointers live in cur now */
	dstate_free(D);
	dstate_free_view(C);
	return 0;
}

/* --- diff ---------------------------------------------------------------------- */

void plan_free(struct plan *p)
{
	free(p->ops);
	memset(p, 0, sizeof(*p));
}

static struct plan_op *op_add(struct plan *p, uint8_t map, uint8_t kind)
{
	struct plan_op *o;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct plan_op *n = realloc(p->ops, cap * sizeof(*n));

		if (!n)
			return NULL;
		p->ops = n;
		p->cap = cap;
	}
	o = &p->ops[p->n++];
	memset(o, 0, sizeof(*o));
	o->map = map;
	o->kind = kind;
	p->per_map[map]++;
	return o;
}

#define OP(p, map, kind)                                                                           \
	({                                                                                         \
		struct plan_op *o_ = op_add(p, map, kind);                                         \
		if (!o_)                                                                           \
			return -ENOMEM;                                                            \
		o_;                                                                                \
	})

/* Backends of D that differ from C: those leaving "active" (demoted) or the others. */
static int diff_backends(struct plan *p, const struct dstate *D, const struct dstate *C,
			 bool demoted)
{
	for (size_t i = 0; i < D->nbe; i++) {
		const struct dbe *c = dstate_be(C, D->be[i].id), *d = &D->be[i];
		struct plan_op *o;

		if (c && !memcmp(&c->val, &d->val, sizeof(c->val)))
			continue;
		if (demoted !=
		    (c && c->val.state == BPFLB_BE_ACTIVE && d->val.state != BPFLB_BE_ACTIVE))
			continue;
		o = OP(p, BPFLB_LBMAP_BACKENDS, PLAN_UPDATE);
		o->key.id = d->id;
		o->val.be = d->val;
	}
	return 0;
}

static int diff(const struct dstate *D, const struct dstate *C, struct plan *p)
{
	struct plan_op *o;
	size_t i;
	int ret;

	/* 1. node settings */
	if (D->has_node && (!C->has_node || memcmp(&C->node, &D->node, sizeof(D->node)))) {
		o = OP(p, BPFLB_LBMAP_NODE, PLAN_UPDATE);
		o->val.node = D->node;
	}
	/* 2. frontends that went away, first: nothing refers to a frontend */
	for (i = 0; i < C->nfe; i++) {
		if (dstate_fe(D, &C->fe[i].key))
			continue;
		o = OP(p, BPFLB_LBMAP_SVC, PLAN_DELETE);
		o->key.svc = C->fe[i].key;
	}
	/* 3. service ports that went away (no frontend refers to them now) */
	for (i = 0; i < C->nsp; i++) {
		const struct dsp *c = &C->sp[i];

		if (dstate_sp(D, c->id))
			continue;
		for (uint32_t k = 0; k < c->nslots; k++) {
			o = OP(p, BPFLB_LBMAP_SLOTS, PLAN_DELETE);
			o->key.slot = (struct bpflb_slot_key){c->id, k};
		}
		if (c->maglev) {
			o = OP(p, BPFLB_LBMAP_MAGLEV, PLAN_DELETE);
			o->key.id = c->id;
		}
		o = OP(p, BPFLB_LBMAP_STATS, PLAN_DELETE);
		o->key.id = c->id;
	}
	/* 4. backends, new and changed (those leaving "active" wait) */
	ret = diff_backends(p, D, C, false);
	if (ret)
		return ret;
	/* 5. Maglev tables and slots of every service port */
	for (i = 0; i < D->nsp; i++) {
		const struct dsp *d = &D->sp[i], *c = dstate_sp(C, d->id);

		if (d->maglev && !(c && c->maglev && c->sig_known && c->sig == d->sig)) {
			o = OP(p, BPFLB_LBMAP_MAGLEV, PLAN_UPDATE);
			o->key.id = d->id;
			o->val.mg = d;
			o->keep_same = c && c->maglev && !c->sig_known;
		}
		for (uint32_t k = 0; k < d->nslots; k++) {
			if (c && k < c->nslots && c->slots[k] == d->slots[k])
				continue;
			o = OP(p, BPFLB_LBMAP_SLOTS, PLAN_UPDATE);
			o->key.slot = (struct bpflb_slot_key){d->id, k};
			o->val.backend_id = d->slots[k];
		}
	}
	/* 6. frontends: new ones appear, changed counts and flags take effect */
	for (i = 0; i < D->nfe; i++) {
		const struct dfe *c = dstate_fe(C, &D->fe[i].key);

		if (c && !memcmp(&c->val, &D->fe[i].val, sizeof(c->val)))
			continue;
		o = OP(p, BPFLB_LBMAP_SVC, PLAN_UPDATE);
		o->key.svc = D->fe[i].key;
		o->val.svc = D->fe[i].val;
	}
	/* 7. slots no longer counted; tables no longer flagged */
	for (i = 0; i < D->nsp; i++) {
		const struct dsp *d = &D->sp[i], *c = dstate_sp(C, d->id);

		for (uint32_t k = d->nslots; c && k < c->nslots; k++) {
			o = OP(p, BPFLB_LBMAP_SLOTS, PLAN_DELETE);
			o->key.slot = (struct bpflb_slot_key){d->id, k};
		}
		if (c && c->maglev && !d->maglev) {
			o = OP(p, BPFLB_LBMAP_MAGLEV, PLAN_DELETE);
			o->key.id = d->id;
		}
	}
	/* 8. backends leaving "active": no slot or table offers them any more */
	ret = diff_backends(p, D, C, true);
	if (ret)
		return ret;
	/* 9. backends nothing refers to any more */
	for (i = 0; i < C->nbe; i++) {
		if (dstate_be(D, C->be[i].id))
			continue;
		o = OP(p, BPFLB_LBMAP_BACKENDS, PLAN_DELETE);
		o->key.id = C->be[i].id;
	}
	return 0;
}

int plan_diff(const struct dstate *D, const struct dstate *C, struct plan *p)
{
	int ret;

	memset(p, 0, sizeof(*p));
	ret = diff(D, C, p);
	if (ret)
		plan_free(p);
	return ret;
}

/* --- summary ------------------------------------------------------------------- */

struct svc_ref {
	const char *name; /* "svc/port": the part before the last '/' */
	size_t len;
	bool existed, written;
};

static int svc_ref_cmp(const void *a, const void *b)
{
	const struct svc_ref *x = a, *y = b;
	int c = strncmp(x->name, y->name, x->len < y->len ? x->len : y->len);

	return c ? c : x->len < y->len ? -1 : x->len > y->len;
}

static struct svc_ref svc_ref(const struct dsp *sp)
{
	const char *slash = strrchr(sp->key, '/');

	return (struct svc_ref){sp->key, slash ? (size_t)(slash - sp->key) : strlen(sp->key)};
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void plan_summarize(const struct plan *p, const struct dstate *D, const struct dstate *C,
		    struct bpflb_services_summary *out)
{
	uint32_t *touched = malloc((p->n ? p->n : 1) * sizeof(*touched));
	struct svc_ref *dn = calloc(D->nsp + 1, sizeof(*dn)), *cn = calloc(C->nsp + 1, sizeof(*cn));
	size_t ntouched = 0, ndn = 0, ncn = 0, i, j;

	memset(out, 0, sizeof(*out));
	memcpy(out->per_map, p->per_map, sizeof(out->per_map));
	for (i = 0; i < p->n; i++) {
		const struct plan_op *o = &p->ops[i];
		uint32_t id = 0;

		switch (o->map) {
		case BPFLB_LBMAP_SVC:
			if (o->kind == PLAN_DELETE)
				out->fe_removed++;
			else if (dstate_fe(C, &o->key.svc))
				out->fe_changed++;
			else
				out->fe_added++;
			id = o->kind == PLAN_UPDATE ? o->val.svc.id : 0;
			break;
		case BPFLB_LBMAP_BACKENDS:
			if (o->kind == PLAN_DELETE)
				out->be_removed++;
			else if (dstate_be(C, o->key.id))
				out->be_changed++;
			else
				out->be_added++;
			break;
		case BPFLB_LBMAP_SLOTS:
			id = o->key.slot.svc_id;
			break;
		case BPFLB_LBMAP_MAGLEV:
			id = o->key.id;
			break;
		}
		if (id && touched)
			touched[ntouched++] = id;
	}
	if (!touched || !dn || !cn)
		goto out; /* the frontend and backend counts stand */
	qsort(touched, ntouched, sizeof(*touched), u32_cmp);
	/*
	 * A [service] is its service ports grouped by name: added when none of its
	 * ports existed, changed when the plan writes any of them, removed when
	 * no port of its name is left.
	 */
	for (i = 0; i < D->nsp; i++) {
		const struct dsp *d = &D->sp[i];

		if (!d->key)
			continue;
		dn[ndn] = svc_ref(d);
		dn[ndn].existed = dstate_sp(C, d->id) != NULL;
		dn[ndn].written =
		    bsearch(&d->id, touched, ntouched, sizeof(*touched), u32_cmp) != NULL;
		ndn++;
	}
	qsort(dn, ndn, sizeof(*dn), svc_ref_cmp);
	for (i = 0; i < ndn; i = j) {
		bool existed = false, written = false;

		for (j = i; j < ndn && !svc_ref_cmp(&dn[i], &dn[j]); j++) {
			existed |= dn[j].existed;
			written |= dn[j].written;
		}
		out->svc_added += !existed;
		out->svc_changed += existed && written;
	}
	for (i = 0; i < C->nsp; i++) {
		const struct dsp *c = &C->sp[i];

		if (dstate_sp(D, c->id))
			continue;
		if (!c->key) {
			out->svc_removed++; /* read back after a restart: a port is all we know */
			continue;
		}
		cn[ncn] = svc_ref(c);
		if (!ndn || !bsearch(&cn[ncn], dn, ndn, sizeof(*dn), svc_ref_cmp))
			ncn++;
	}
	qsort(cn, ncn, sizeof(*cn), svc_ref_cmp);
	for (i = 0; i < ncn; i++)
		out->svc_removed += !i || svc_ref_cmp(&cn[i - 1], &cn[i]);
out:
	free(touched);
	free(dn);
	free(cn);
}

/* --- commit -------------------------------------------------------------------- */

static int upd(int fd, const void *k, const void *v, uint64_t *writes)
{
	(*writes)++;
	return bpf_map_update_elem(fd, k, v, BPF_ANY) ? -errno : 0;
}

static int del(int fd, const void *k, uint64_t *writes)
{
	(*writes)++;
	if (!bpf_map_delete_elem(fd, k) || errno == ENOENT)
		return 0;
	return -errno;
}

/* Counters of a service id that went away start from zero if it comes back. */
static void stats_reset(const struct plan_maps *pm, uint32_t id)
{
	int fd = pm->fd[BPFLB_LBMAP_STATS], ncpu;
	void *zero;

	if (fd < 0)
		return;
	if (pm->stats_type == BPF_MAP_TYPE_HASH || pm->stats_type == BPF_MAP_TYPE_PERCPU_HASH ||
	    pm->stats_type == BPF_MAP_TYPE_LRU_HASH ||
	    pm->stats_type == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
		bpf_map_delete_elem(fd, &id);
		return;
	}
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return;
	zero = calloc((size_t)ncpu, ((size_t)pm->stats_vsize + 7) & ~(size_t)7);
	if (zero)
		bpf_map_update_elem(fd, &id, zero, BPF_ANY);
	free(zero);
}

int plan_maglev_read(int fd_mg, uint32_t id, uint32_t m, uint32_t *table)
{
	__u32 inner_id, k;
	int fd, ret = 0;

	if (bpf_map_lookup_elem(fd_mg, &id, &inner_id))
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

/* Install a new table for d (atomically replacing the old one in the outer map). */
static int mg_install(const struct plan_maps *pm, const struct plan_op *op, uint64_t *writes,
		      struct bpflb_err *err)
{
	LIBBPF_OPTS(bpf_map_create_opts, copts);
	const struct dsp *d = op->val.mg;
	uint32_t mm = pm->maglev_m, *table, *cmp = NULL, *keys = NULL, count;
	int ret, fd = -1;

	if (pm->mg_inner_m && pm->mg_inner_m != mm)
		return bpflb_err_set(err,
				     "the datapath's Maglev tables have %u entries, the "
				     "configuration asks for %u",
				     pm->mg_inner_m, mm),
		       -EINVAL;
	table = malloc(mm * sizeof(*table));
	if (!table)
		return -ENOMEM;
	ret = bpflb_maglev_build(d->mg, d->nmg, mm, pm->hash_seed, table);
	if (ret) {
		bpflb_err_set(err, "cannot build the Maglev table of %s: %s", d->key,
			      strerror(-ret));
		goto out;
	}
	if (op->keep_same) {
		/* first apply after a restart: keep an identical table */
		cmp = malloc(mm * sizeof(*cmp));
		if (cmp && !plan_maglev_read(pm->fd[BPFLB_LBMAP_MAGLEV], d->id, mm, cmp) &&
		    !memcmp(cmp, table, mm * sizeof(*cmp)))
			goto out;
	}
	copts.map_flags = pm->mg_inner_flags;
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
	ret = upd(pm->fd[BPFLB_LBMAP_MAGLEV], &d->id, &fd, writes);
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

static const char *ipstr(uint32_t be, char *buf)
{
	struct in_addr a = {.s_addr = be};

	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static int commit_one(const struct plan_maps *pm, const struct plan_op *o, uint64_t *writes,
		      struct bpflb_err *err)
{
	static const struct bpflb_backend zero_be;
	int fd = pm->fd[o->map], ret = 0;
	char abuf[INET_ADDRSTRLEN];
	__u32 zero = 0;

	switch (o->map) {
	case BPFLB_LBMAP_NODE:
		ret = upd(fd, &zero, &o->val.node, writes);
		break;
	case BPFLB_LBMAP_SVC:
		ret = o->kind == PLAN_DELETE ? del(fd, &o->key.svc, writes)
					     : upd(fd, &o->key.svc, &o->val.svc, writes);
		if (ret && o->kind == PLAN_UPDATE)
			return bpflb_err_set(err, "cannot write service %s:%u into bpflb_svc: %s",
					     ipstr(o->key.svc.addr, abuf), ntohs(o->key.svc.port),
					     strerror(-ret)),
			       ret;
		break;
	case BPFLB_LBMAP_SLOTS:
		ret = o->kind == PLAN_DELETE ? del(fd, &o->key.slot, writes)
					     : upd(fd, &o->key.slot, &o->val.backend_id, writes);
		break;
	case BPFLB_LBMAP_BACKENDS:
		if (o->kind == PLAN_UPDATE) {
			ret = upd(fd, &o->key.id, &o->val.be, writes);
			if (ret)
				return bpflb_err_set(
					   err,
					   "cannot write backend %u (%s:%u) into bpflb_backends: %s",
					   o->key.id, ipstr(o->val.be.addr, abuf),
					   ntohs(o->val.be.port), strerror(-ret)),
				       ret;
		} else if (pm->be_type == BPF_MAP_TYPE_ARRAY) {
			/* an array cannot delete: a zeroed entry is "no backend" */
			ret = upd(fd, &o->key.id, &zero_be, writes);
		} else {
			ret = del(fd, &o->key.id, writes);
		}
		break;
	case BPFLB_LBMAP_MAGLEV:
		if (o->kind == PLAN_UPDATE)
			return mg_install(pm, o, writes, err);
		ret = del(fd, &o->key.id, writes);
		break;
	case BPFLB_LBMAP_STATS:
		stats_reset(pm, o->key.id);
		break;
	}
	if (ret)
		bpflb_err_set(err, "cannot write %s: %s", plan_map_name(o->map), strerror(-ret));
	return ret;
}

int plan_commit(const struct plan *p, const struct plan_maps *maps, uint64_t *writes,
		struct bpflb_err *err)
{
	return plan_commit_each(p, maps, writes, NULL, NULL, err);
}

int plan_commit_each(const struct plan *p, const struct plan_maps *maps, uint64_t *writes,
		     void (*written)(void *ctx, const struct plan_op *op), void *ctx,
		     struct bpflb_err *err)
{
	for (size_t i = 0; i < p->n; i++) {
		uint64_t before = *writes;
		int ret = commit_one(maps, &p->ops[i], writes, err);

		/* a Maglev op that found the same table in place wrote nothing */
		if (written && *writes != before)
			written(ctx, &p->ops[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* --- rendering ----------------------------------------------------------------- */

const char *plan_map_name(unsigned int map)
{
	static const char *const names[BPFLB_LBMAP_COUNT] = {
	    [BPFLB_LBMAP_NODE] = "bpflb_node",	       [BPFLB_LBMAP_SVC] = "bpflb_svc",
	    [BPFLB_LBMAP_SLOTS] = "bpflb_slots",       [BPFLB_LBMAP_BACKENDS] = "bpflb_backends",
	    [BPFLB_LBMAP_MAGLEV] = "bpflb_maglev",     [BPFLB_LBMAP_STATS] = "bpflb_svc_stats",
	};

	return map < BPFLB_LBMAP_COUNT ? names[map] : "?";
}

static const char *proto_str(uint8_t p)
{
	return p == 6 ? "tcp" : p == 17 ? "udp" : "?";
}

static void render_op(const struct plan_op *o, FILE *out)
{
	static const char *const states[] = {"active", "terminating", "maintenance"};
	const char *verb = o->kind == PLAN_DELETE ? "delete" : "update";
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

	switch (o->map) {
	case BPFLB_LBMAP_NODE:
		fprintf(out, "node update addr=%s snat=%u-%u seed=%u flags=%#x events=%u m=%u\n",
			ipstr(o->val.node.addr, a), o->val.node.snat_port_min,
			o->val.node.snat_port_max, o->val.node.hash_seed, o->val.node.flags,
			o->val.node.events_per_sec, o->val.node.maglev_m);
		break;
	case BPFLB_LBMAP_SVC:
		fprintf(out, "svc %s %s:%u/%s", verb, ipstr(o->key.svc.addr, a),
			ntohs(o->key.svc.port), proto_str(o->key.svc.proto));
		if (o->kind == PLAN_UPDATE)
			fprintf(out, " id=%u count=%u total=%u flags=%#x", o->val.svc.id,
				o->val.svc.count, o->val.svc.total, o->val.svc.flags);
		fputc('\n', out);
		break;
	case BPFLB_LBMAP_SLOTS:
		fprintf(out, "slot %s %u/%u", verb, o->key.slot.svc_id, o->key.slot.slot);
		if (o->kind == PLAN_UPDATE)
			fprintf(out, " backend=%u", o->val.backend_id);
		fputc('\n', out);
		break;
	case BPFLB_LBMAP_BACKENDS:
		fprintf(out, "backend %s %u", verb, o->key.id);
		if (o->kind == PLAN_UPDATE)
			fprintf(out, " %s:%u %s flags=%#x node=%s", ipstr(o->val.be.addr, a),
				ntohs(o->val.be.port),
				o->val.be.state < 3 ? states[o->val.be.state] : "?",
				o->val.be.flags, ipstr(o->val.be.node_addr, b));
		fputc('\n', out);
		break;
	case BPFLB_LBMAP_MAGLEV:
		fprintf(out, "maglev %s %u", verb, o->key.id);
		if (o->kind == PLAN_UPDATE) {
			fprintf(out, " backends=");
			for (uint32_t i = 0; i < o->val.mg->nmg; i++)
				fprintf(out, "%s%u", i ? "," : "", o->val.mg->mg[i].id);
			if (o->keep_same)
				fprintf(out, " keep-same");
		}
		fputc('\n', out);
		break;
	case BPFLB_LBMAP_STATS:
		fprintf(out, "stats reset %u\n", o->key.id);
		break;
	}
}

void plan_render(const struct plan *p, FILE *out)
{
	for (size_t i = 0; i < p->n; i++)
		render_op(&p->ops[i], out);
}
