// SPDX-License-Identifier: GPL-2.0-only
/*
 * Selection tries from policies (egress_model.h).  Quadratic in the number of
 * prefixes, which is fine for the few thousand a node holds; it runs on a
 * reload, not per packet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "egress_model.h"

static uint32_t mask_of(uint8_t plen)
{
	return plen ? ~0u << (32 - plen) : 0;
}

int egress_prefix_contains(const struct egress_prefix *a, const struct egress_prefix *b)
{
	return a->plen <= b->plen && (b->addr & mask_of(a->plen)) == a->addr;
}

int egress_prefix_add(struct egress_prefix_set *s, uint32_t addr, uint8_t plen)
{
	struct egress_prefix p = {.plen = plen};

	if (plen > 32)
		return -EINVAL;
	p.addr = addr & mask_of(plen); /* a shift by 32 - plen < 0 is undefined */
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].addr == p.addr && s->v[i].plen == p.plen)
			return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct egress_prefix *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = p;
	return 0;
}

void egress_prefix_set_free(struct egress_prefix_set *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int any_contains(const struct egress_prefix_set *s, const struct egress_prefix *p)
{
	for (size_t i = 0; i < s->n; i++)
		if (egress_prefix_contains(&s->v[i], p))
			return 1;
	return 0;
}

static int to_entries(const struct egress_prefix_set *all, struct egress_lpm_entry **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!all->n)
		return 0;
	*out = calloc(all->n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < all->n; i++)
		(*out)[i].p = all->v[i];
	*n = all->n;
	return 0;
}

int egress_model_src(const struct egress_model_policy *pols, size_t npols,
		     struct egress_lpm_entry **out, size_t *n)
{
	struct egress_prefix_set all = {0};
	int ret = 0;

	if (npols > 64)
		return -E2BIG;
	for (size_t i = 0; i < npols && !ret; i++)
		for (size_t j = 0; j < pols[i].src.n && !ret; j++)
			ret = egress_prefix_add(&all, pols[i].src.v[j].addr, pols[i].src.v[j].plen);
	if (!ret)
		ret = to_entries(&all, out, n);
	egress_prefix_set_free(&all);
	if (ret)
		return ret;
	for (size_t e = 0; e < *n; e++)
		for (size_t i = 0; i < npols; i++)
			if (any_contains(&pols[i].src, &(*out)[e].p))
				(*out)[e].bits |= 1ull << i;
	return 0;
}

int egress_model_dst(const struct egress_model_policy *pols, size_t npols,
		     const struct egress_prefix_set *cluster, struct egress_lpm_entry **out,
		     size_t *n)
{
	struct egress_prefix_set all = {0};
	int ret = 0;

	if (npols > 64)
		return -E2BIG;
	for (size_t i = 0; i < npols && !ret; i++) {
		for (size_t j = 0; j < pols[i].dst.n && !ret; j++)
			ret = egress_prefix_add(&all, pols[i].dst.v[j].addr, pols[i].dst.v[j].plen);
		for (size_t j = 0; j < pols[i].excl.n && !ret; j++)
			ret =
			    egress_prefix_add(&all, pols[i].excl.v[j].addr, pols[i].excl.v[j].plen);
	}
	for (size_t j = 0; cluster && j < cluster->n && !ret; j++)
		ret = egress_prefix_add(&all, cluster->v[j].addr, cluster->v[j].plen);
	if (!ret)
		ret = to_entries(&all, out, n);
	egress_prefix_set_free(&all);
	if (ret)
		return ret;
	for (size_t e = 0; e < *n; e++) {
		const struct egress_prefix *p = &(*out)[e].p;

		if (cluster && any_contains(cluster, p))
			continue;
		for (size_t i = 0; i < npols; i++)
			if (any_contains(&pols[i].dst, p) && !any_contains(&pols[i].excl, p))
				(*out)[e].bits |= 1ull << i;
	}
	return 0;
}

static const struct egress_lpm_entry *longest(const struct egress_lpm_entry *v, size_t n,
					      uint32_t addr)
{
	const struct egress_lpm_entry *best = NULL;
	struct egress_prefix a = {.addr = addr, .plen = 32};

	for (size_t i = 0; i < n; i++)
		if (egress_prefix_contains(&v[i].p, &a) && (!best || v[i].p.plen > best->p.plen))
			best = &v[i];
	return best;
}

int egress_model_lookup(const struct egress_lpm_entry *src, size_t nsrc,
			const struct egress_lpm_entry *dst, size_t ndst, uint32_t saddr,
			uint32_t daddr)
{
	const struct egress_lpm_entry *s = longest(src, nsrc, saddr),
				      *d = longest(dst, ndst, daddr);
	uint64_t m;

	if (!s || !d)
		return -1;
	m = s->bits & d->bits;
	if (!m)
		return -1;
	return __builtin_ctzll(m);
}
