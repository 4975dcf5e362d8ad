// SPDX-License-Identifier: GPL-2.0-only
/* Maglev lookup table: see maglev.h for the exact definition. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/maglev.h"

bool bpflb_maglev_is_prime(uint32_t m)
{
	if (m < 2)
		return false;
	if (m % 2 == 0)
		return m == 2;
	for (uint32_t d = 3; (uint64_t)d * d <= m; d += 2)
		if (m % d == 0)
			return false;
	return true;
}

static inline uint32_t rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

uint32_t bpflb_murmur3_32(const void *data, size_t len, uint32_t seed)
{
	const uint8_t *p = data;
	const uint32_t c1 = 0xcc9e2d51, c2 = 0x1b873593;
	uint32_t h = seed, k;
	size_t i, nblocks = len / 4;

	for (i = 0; i < nblocks; i++) {
		/* little-endian block read, independent of the host */
		k = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		    (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
		h = rotl32(h, 13);
		h = h * 5 + 0xe6546b64;
	}
	k = 0;
	switch (len & 3) {
	case 3:
		k ^= (uint32_t)p[4 * nblocks + 2] << 16;
		/* fallthrough */
	case 2:
		k ^= (uint32_t)p[4 * nblocks + 1] << 8;
		/* fallthrough */
	case 1:
		k ^= p[4 * nblocks];
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
	}
	h ^= (uint32_t)len;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

struct perm {
	uint32_t id;
	uint32_t addr; /* host order, for sorting */
	uint16_t port;
	uint32_t pos; /* next candidate index */
	uint32_t skip;
};

static int perm_cmp(const void *a, const void *b)
{
	const struct perm *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return 0;
}

int bpflb_maglev_build(const struct bpflb_maglev_backend *be, size_t n, uint32_t m, uint32_t seed,
		       uint32_t *table)
{
	struct perm *p;
	size_t i, filled = 0;
	char ident[32];
	int len;

	if (!n || n > m || m < 2 || !bpflb_maglev_is_prime(m))
		return -EINVAL;
	p = calloc(n, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct in_addr a = {.s_addr = be[i].addr};
		char abuf[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &a, abuf, sizeof(abuf));
		len = snprintf(ident, sizeof(ident), "%s:%u", abuf, be[i].port);
		p[i].id = be[i].id;
		p[i].addr = ntohl(be[i].addr);
		p[i].port = be[i].port;
		p[i].pos = bpflb_murmur3_32(ident, (size_t)len, seed) % m;
		p[i].skip = bpflb_murmur3_32(ident, (size_t)len, ~seed) % (m - 1) + 1;
	}
	qsort(p, n, sizeof(*p), perm_cmp);
	for (i = 1; i < n; i++) {
		if (!perm_cmp(&p[i - 1], &p[i])) {
			free(p);
			return -EINVAL;
		}
	}

	/*
	 * UINT32_MAX marks a free entry (ids are never that large).  Each
	 * backend in turn takes the next free entry of its own permutation
	 * offset, offset + skip, offset + 2 skip, ... (mod m); since m is prime
	 * every permutation visits every entry, so the loop ends.
	 */
	for (uint32_t j = 0; j < m; j++)
		table[j] = UINT32_MAX;
	for (;;) {
		for (i = 0; i < n; i++) {
			struct perm *q = &p[i];

			while (table[q->pos] != UINT32_MAX)
				q->pos = (uint32_t)(((uint64_t)q->pos + q->skip) % m);
			table[q->pos] = q->id;
			q->pos = (uint32_t)(((uint64_t)q->pos + q->skip) % m);
			if (++filled == m) {
				free(p);
				return 0;
			}
		}
	}
}
