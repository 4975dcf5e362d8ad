// SPDX-License-Identifier: GPL-2.0-only
/*
 * A change of a few services, at the cost of the change: the part of the
 * desired state the changed services make (D) and the part of the applied
 * state their old definitions made (C), so that plan_diff(D, C) is the plan of
 * the change and dstate_merge() folds it into the applied state.  A reload
 * that changes one service of 100k, or `service set`, then costs what the one
 * service costs, not what the whole state costs.
 *
 * Backends are shared by address:port across services, so the applied state
 * keeps, beside `cur`, each backend's id and how many service ports on this
 * node use it (struct svc_stidx): a backend the changed services drop stays
 * while another service uses it.  The ids follow svc_compute()'s rules (top of
 * services.c), in the same order, so the plan is the one the whole
 * computation would give (tests/unit/test_plan.c checks that).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lb/plan.h"
#include "lb/services_model.h"

static uint64_t be_key(uint32_t addr, uint16_t port)
{
	return (uint64_t)addr << 16 | port | 1ull << 63;
}

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

static struct svc_be_slot *be_find(const struct svc_stidx *ix, uint64_t key)
{
	size_t mask = ix->cap - 1, i;

	if (!ix->cap)
		return NULL;
	for (i = mix(key) & mask; ix->be[i].key; i = (i + 1) & mask)
		if (ix->be[i].key == key)
			return &ix->be[i];
	return NULL;
}

static int be_reserve(struct svc_stidx *ix, size_t more)
{
	struct svc_be_slot *old = ix->be;
	size_t ocap = ix->cap, cap = ix->cap ? ix->cap : 64;

	while (8 * (ix->n + more) > 7 * cap)
		cap *= 2;
	if (cap == ix->cap)
		return 0;
	ix->be = calloc(cap, sizeof(*ix->be));
	if (!ix->be) {
		ix->be = old;
		return -ENOMEM;
	}
	ix->cap = cap;
	for (size_t i = 0; i < ocap; i++) {
		size_t h;

		if (!old[i].key)
			continue;
		for (h = mix(old[i].key) & (cap - 1); ix->be[h].key; h = (h + 1) & (cap - 1))
			;
		ix->be[h] = old[i];
	}
	free(old);
	return 0;
}

/* The slot of key, added (id 0, no users) when absent; room reserved by be_reserve(). */
static struct svc_be_slot *be_get(struct svc_stidx *ix, uint64_t key)
{
	size_t mask = ix->cap - 1, i;

	for (i = mix(key) & mask; ix->be[i].key; i = (i + 1) & mask)
		if (ix->be[i].key == key)
			return &ix->be[i];
	ix->be[i] = (struct svc_be_slot){key, 0, 0};
	ix->n++;
	return &ix->be[i];
}

static void be_del(struct svc_stidx *ix, struct svc_be_slot *sl)
{
	size_t mask = ix->cap - 1, i = (size_t)(sl - ix->be), j;

	for (j = (i + 1) & mask; ix->be[j].key; j = (j + 1) & mask) {
		size_t h = mix(ix->be[j].key) & mask;

		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			ix->be[i] = ix->be[j];
			i = j;
		}
	}
	ix->be[i].key = 0;
	ix->n--;
}

void svc_stidx_free(struct svc_stidx *ix)
{
	free(ix->be);
	free(ix->be_used.w);
	free(ix->svc_used.w);
	memset(ix, 0, sizeof(*ix));
}

/* Each (backend, port) use of d on this node: +delta users; slots reserved. */
static void def_refs(struct svc_stidx *ix, const struct svc_model *m, const struct svc_def *d,
		     int delta)
{
	if (!d || !svc_on_node(m, d))
		return;
	for (unsigned int b = 0; b < d->nbes; b++)
		for (unsigned int p = 0; p < d->nports; p++)
			be_get(ix, be_key(d->bes[b].addr, svc_backend_port(d, &d->bes[b], p)))
			    ->refs += (uint32_t)delta;
}

static size_t def_uses(const struct svc_model *m, const struct svc_def *d)
{
	return d && svc_on_node(m, d) ? (size_t)d->nbes * d->nports : 0;
}

int svc_stidx_build(struct svc_stidx *ix, const struct svc_model *m, const struct dstate *cur)
{
	size_t uses = 0;

	svc_stidx_free(ix);
	for (unsigned int i = 0; i < m->nsvcs; i++)
		uses += def_uses(m, m->svcs[i]);
	if (be_reserve(ix, uses) || svc_idset_init(&ix->be_used, m->lb.sizes.backends + 1) ||
	    svc_idset_init(&ix->svc_used, m->lb.sizes.services + 1)) {
		svc_stidx_free(ix);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < m->nsvcs; i++)
		def_refs(ix, m, m->svcs[i], 1);
	for (size_t i = 0; i < cur->nbe; i++) {
		/* after a whole computation cur holds exactly the backends the model uses */
		struct svc_be_slot *sl =
		    be_find(ix, be_key(cur->be[i].val.addr, ntohs(cur->be[i].val.port)));

		if (sl)
			sl->id = cur->be[i].id;
		svc_idset_add(&ix->be_used, cur->be[i].id);
	}
	for (size_t i = 0; i < cur->nfe; i++)
		svc_idset_add(&ix->svc_used, cur->fe[i].val.id);
	for (size_t i = 0; i < cur->nsp; i++)
		svc_idset_add(&ix->svc_used, cur->sp[i].id);
	ix->valid = true;
	return 0;
}

static int dfe_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct bpflb_svc_key));
}

static int dbe_id_cmp(const void *a, const void *b)
{
	const struct dbe *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int dsp_id_cmp(const void *a, const void *b)
{
	const struct dsp *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* C: what the old defs made in cur (a view). */
static int old_part(const struct svc_model *m, const struct svc_change *ch, size_t nch,
		    const struct dstate *cur, const struct svc_stidx *ix, struct dstate *C)
{
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];
	size_t nfe = 0, nsp = 0, nbe = 0, i, j;

	C->node = cur->node; /* not part of a change: [lb] and the nodes are the same */
	C->has_node = cur->has_node;
	for (i = 0; i < nch; i++) {
		const struct svc_def *d = ch[i].old;

		if (!d || !svc_on_node(m, d))
			continue;
		C->nservices++;
		nsp += d->nports;
		nfe += (size_t)d->nports * svc_max_frontends(m, d);
		nbe += def_uses(m, d);
	}
	C->fe = calloc(nfe ? nfe : 1, sizeof(*C->fe));
	C->sp = calloc(nsp ? nsp : 1, sizeof(*C->sp));
	C->be = calloc(nbe ? nbe : 1, sizeof(*C->be));
	if (!C->fe || !C->sp || !C->be)
		return -ENOMEM;
	for (i = 0; i < nch; i++) {
		const struct svc_def *d = ch[i].old;

		if (!d || !svc_on_node(m, d))
			continue;
		for (unsigned int p = 0; p < d->nports; p++) {
			unsigned int nk = svc_frontends(m, d, p, keys);
			const struct dsp *sp = NULL;

			for (unsigned int f = 0; f < nk; f++) {
				const struct dfe *hit = dstate_fe(cur, &keys[f]);

				if (!hit)
					continue;
				C->fe[C->nfe++] = *hit;
				if (!sp)
					sp = dstate_sp(cur, hit->val.id);
			}
			if (sp)
				C->sp[C->nsp++] = *sp;
		}
		for (unsigned int b = 0; b < d->nbes; b++)
			for (unsigned int p = 0; p < d->nports; p++) {
				const struct svc_be_slot *sl = be_find(
				    ix, be_key(d->bes[b].addr, svc_backend_port(d, &d->bes[b], p)));
				const struct dbe *e = sl && sl->id ? dstate_be(cur, sl->id) : NULL;

				if (e)
					C->be[C->nbe++] = *e;
			}
	}
	qsort(C->fe, C->nfe, sizeof(*C->fe), dfe_cmp);
	qsort(C->sp, C->nsp, sizeof(*C->sp), dsp_id_cmp);
	for (i = j = 0; i < C->nsp; i++)
		if (!j || C->sp[i].id != C->sp[j - 1].id)
			C->sp[j++] = C->sp[i];
	C->nsp = j;
	qsort(C->be, C->nbe, sizeof(*C->be), dbe_id_cmp);
	for (i = j = 0; i < C->nbe; i++)
		if (!j || C->be[i].id != C->be[j - 1].id)
			C->be[j++] = C->be[i];
	C->nbe = j;
	return 0;
}

int svc_compute_change(const struct svc_model *m, const struct svc_change *ch, size_t nch,
		       struct svc_input *in, struct svc_stidx *ix, struct dstate *D,
		       struct dstate *C, struct bpflb_err *err)
{
	const struct dstate *cur = in->cur;
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];
	struct svc_be_ident *ids = NULL;
	uint32_t *assigned = NULL;
	size_t nids = 0, uses = 0, nsp = 0, nfe = 0, nassigned = 0, i, j, k;
	int ret = -ENOMEM;

	memset(D, 0, sizeof(*D));
	memset(C, 0, sizeof(*C));
	for (i = 0; i < nch; i++) {
		uses += def_uses(m, ch[i].old) + def_uses(m, ch[i].new);
		if (ch[i].new &&svc_on_node(m, ch[i].new)) {
			nsp += ch[i].new->nports;
			nfe += (size_t)ch[i].new->nports *svc_max_frontends(m, ch[i].new);
		}
	}
	if (be_reserve(ix, uses))
		goto out;
	ret = old_part(m, ch, nch, cur, ix, C);
	if (ret)
		goto out;
	ret = -ENOMEM;
	/* the users of each backend after the change */
	for (i = 0; i < nch; i++) {
		def_refs(ix, m, ch[i].old, -1);
		def_refs(ix, m, ch[i].new, 1);
	}

	/* 1. backends: those of the new defs, and those of the old ones still used */
	ids = calloc(uses + C->nbe + 1, sizeof(*ids));
	if (!ids)
		goto out;
	for (i = 0; i < nch; i++) {
		const struct svc_def *d = ch[i].new;

		if (!d || !svc_on_node(m, d))
			continue;
		for (unsigned int b = 0; b < d->nbes; b++)
			for (unsigned int p = 0; p < d->nports; p++)
				ids[nids++] = (struct svc_be_ident){
				    d->bes[b].addr, svc_backend_port(d, &d->bes[b], p), &d->bes[b],
				    NULL};
	}
	qsort(ids, nids, sizeof(*ids), svc_ident_cmp);
	for (i = j = 0; i < nids; i++)
		if (!j || svc_ident_cmp(&ids[i], &ids[j - 1]))
			ids[j++] = ids[i];
	nids = j;
	D->be = calloc(nids + C->nbe + 1, sizeof(*D->be));
	if (!D->be)
		goto out;
	for (i = 0; i < nids; i++) {
		struct svc_be_slot *sl = be_find(ix, be_key(ids[i].addr, ids[i].port));
		const struct dbe *prev = sl->id ? dstate_be(cur, sl->id) : NULL;
		struct dbe *e = &D->be[D->nbe++];

		e->id = sl->id ? sl->id : svc_idset_alloc(&ix->be_used, &in->next_be_id);
		if (!e->id) {
			bpflb_err_set(err, "no free backend id: %u in use ([lb] max_backends)",
				      m->lb.sizes.backends);
			ret = -ENOSPC;
			goto out;
		}
		sl->id = e->id;
		svc_be_fill(m, in, ids[i].b, ids[i].addr, ids[i].port, prev, e);
		ids[i].e = e;
	}
	/* C holds what cur has of every backend D writes, so that the plan sees what is there */
	{
		struct dbe *nb = realloc(C->be, (C->nbe + nids + 1) * sizeof(*nb));
		size_t n0 = C->nbe;

		if (!nb)
			goto out;
		C->be = nb;
		for (i = 0; i < D->nbe; i++) {
			const struct dbe *prev = dstate_be(cur, D->be[i].id);

			if (prev && !(n0 && bsearch(prev, C->be, n0, sizeof(*C->be), dbe_id_cmp)))
				C->be[C->nbe++] = *prev;
		}
		qsort(C->be, C->nbe, sizeof(*C->be), dbe_id_cmp);
	}
	for (i = 0; i < C->nbe; i++) {
		const struct svc_be_slot *sl =
		    be_find(ix, be_key(C->be[i].val.addr, ntohs(C->be[i].val.port)));
		struct svc_be_ident key = {C->be[i].val.addr, ntohs(C->be[i].val.port), NULL, NULL};

		/* still used by a service that did not change: it stays as it is */
		if (sl && sl->refs &&
		    !(nids && bsearch(&key, ids, nids, sizeof(*ids), svc_ident_cmp)))
			D->be[D->nbe++] = C->be[i];
	}

	/* 2. service ports: ids by name, then by frontend, then new (as svc_compute()) */
	D->sp = calloc(nsp ? nsp : 1, sizeof(*D->sp));
	D->fe = calloc(nfe ? nfe : 1, sizeof(*D->fe));
	assigned = calloc(nsp ? nsp : 1, sizeof(*assigned));
	if (!D->sp || !D->fe || !assigned)
		goto out;
	for (i = 0; i < nch; i++) {
		const struct svc_def *d = ch[i].new, *o = ch[i].old;

		if (!d || !svc_on_node(m, d))
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
			/* by name: the old def's port of that name */
			for (unsigned int q = 0; o && svc_on_node(m, o) && q < o->nports; q++) {
				unsigned int nk;
				const struct dfe *hit;

				if (strcmp(o->ports[q].name, d->ports[p].name))
					continue;
				nk = svc_frontends(m, o, q, keys);
				hit = nk ? dstate_fe(cur, &keys[0]) : NULL;
				if (hit && hit->val.id) {
					sp->id = hit->val.id;
					assigned[nassigned++] = sp->id;
				}
				break;
			}
		}
	}
	qsort(assigned, nassigned, sizeof(*assigned), u32_cmp);
	for (i = 0, k = 0; i < nch; i++) {
		const struct svc_def *d = ch[i].new;

		if (!d || !svc_on_node(m, d))
			continue;
		for (unsigned int p = 0; p < d->nports; p++) {
			unsigned int nk = svc_frontends(m, d, p, keys);
			struct dsp *sp;

			if (!nk)
				continue;
			sp = &D->sp[k++];
			/* by frontend: an id only a changed service held, not claimed yet */
			for (unsigned int f = 0; !sp->id && f < nk; f++) {
				const struct dfe *hit = dstate_fe(cur, &keys[f]);
				struct dsp want = {.id = hit ? hit->val.id : 0};

				if (!hit || !hit->val.id ||
				    !bsearch(&want, C->sp, C->nsp, sizeof(*C->sp), dsp_id_cmp))
					continue;
				if (nassigned && bsearch(&want.id, assigned, nassigned,
							 sizeof(*assigned), u32_cmp))
					continue;
				sp->id = want.id;
				for (j = nassigned; j > 0 && assigned[j - 1] > sp->id; j--)
					assigned[j] = assigned[j - 1];
				assigned[j] = sp->id;
				nassigned++;
			}
		}
	}
	for (i = 0; i < D->nsp; i++) {
		if (D->sp[i].id)
			continue;
		D->sp[i].id = svc_idset_alloc(&ix->svc_used, &in->next_svc_id);
		if (!D->sp[i].id) {
			bpflb_err_set(err, "no free service id: %u in use ([lb] max_services)",
				      m->lb.sizes.services);
			ret = -ENOSPC;
			goto out;
		}
	}

	/* 3. slots, Maglev inputs, frontends */
	for (i = 0, k = 0; i < nch; i++) {
		const struct svc_def *d = ch[i].new;

		if (!d || !svc_on_node(m, d))
			continue;
		for (unsigned int p = 0; p < d->nports; p++) {
			unsigned int nk = svc_frontends(m, d, p, keys);

			if (!nk)
				continue;
			if (svc_port_fill(m, d, p, keys, nk, &D->sp[k++], ids, nids, D))
				goto out;
		}
	}
	dstate_sort(D);
	D->node = cur->node;
	D->has_node = cur->has_node;
	ret = 0;
out:
	if (ret == -ENOMEM)
		bpflb_err_set(err, "out of memory computing the service state");
	if (ret) {
		dstate_free(D);
		dstate_free_view(C);
		ix->valid = false; /* users and ids went half way */
	}
	free(ids);
	free(assigned);
	return ret;
}

void svc_stidx_commit(struct svc_stidx *ix, const struct dstate *D, const struct dstate *C)
{
	/* backends no service uses any more are gone from the maps: their ids are free */
	for (size_t i = 0; i < C->nbe; i++) {
		struct svc_be_slot *sl =
		    be_find(ix, be_key(C->be[i].val.addr, ntohs(C->be[i].val.port)));

		if (sl && !sl->refs) {
			if (ix->be_used.w && C->be[i].id < ix->be_used.max)
				ix->be_used.w[C->be[i].id / 64] &= ~(1ull << (C->be[i].id % 64));
			be_del(ix, sl);
		}
	}
	for (size_t i = 0; i < C->nsp; i++) {
		uint32_t id = C->sp[i].id;

		if (!dstate_sp(D, id) && ix->svc_used.w && id < ix->svc_used.max)
			ix->svc_used.w[id / 64] &= ~(1ull << (id % 64));
	}
}
