/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4): a
 * lookup table of M entries (M prime) in which every backend owns about M/N
 * entries, and removing a backend moves little else than that backend's own
 * entries.  The datapath picks table[hash(flow, hash_seed) % M].
 *
 * Every node must build the same table for the same backends, so the table is
 * a function of the backends' identities, the seed and M only: never of the
 * order they were listed in, nor of their ids (ids differ between nodes; the
 * table stores ids, but the id at each index names the same address:port on
 * every node).
 *
 * The identity of a backend is the text "a.b.c.d:port" (port in decimal).
 * Its offset is murmur3_32(identity, seed) % M and its skip is
 * murmur3_32(identity, ~seed) % (M - 1) + 1.  Backends take turns in the order
 * of (address, port), numerically.  Changing any of this changes which backend
 * every existing flow maps to on an upgrade: treat it as a wire format.
 */
#ifndef BPFLB_CORE_MAGLEV_H
#define BPFLB_CORE_MAGLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BPFLB_MAGLEV_MIN_M 251u
#define BPFLB_MAGLEV_MAX_M 131071u

struct bpflb_maglev_backend {
	uint32_t id;   /* what the table stores */
	uint32_t addr; /* network byte order */
	uint16_t port; /* host byte order */
};

bool bpflb_maglev_is_prime(uint32_t m);

/* MurmurHash3_x86_32 (public domain, Austin Appleby), as the table uses it. */
uint32_t bpflb_murmur3_32(const void *data, size_t len, uint32_t seed);

/*
 * Fill table[0..m) with the ids of be[0..n).  m must be prime and at least n;
 * n must be at least 1; identities must be distinct.  be[] is not modified.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int bpflb_maglev_build(const struct bpflb_maglev_backend *be, size_t n, uint32_t m, uint32_t seed,
		       uint32_t *table);

#endif
