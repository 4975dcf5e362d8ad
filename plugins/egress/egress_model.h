/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * From policies to the contents of the two selection tries (egress.h explains
 * the lookup).  Pure computation, no BPF and no configuration: the unit test
 * drives it directly.
 *
 * The value stored at a prefix P must be right for every address whose
 * longest configured prefix is P.  Configured prefixes that contain such an
 * address are exactly those that contain P (prefixes nest), so
 *   source bits of P      = policies with a source prefix containing P
 *   destination bits of P = policies with a destination prefix containing P,
 *                           and no exclusion of theirs and no cluster prefix
 *                           containing P
 * and every prefix that appears anywhere (exclusions and cluster prefixes
 * included, with their bits usually 0) is stored.
 */
#ifndef EGRESS_MODEL_H
#define EGRESS_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct egress_prefix {
	uint32_t addr; /* host byte order, host bits zero */
	uint8_t plen;
};

struct egress_prefix_set {
	struct egress_prefix *v;
	size_t n, cap;
};

struct egress_model_policy {
	struct egress_prefix_set src;  /* selected workloads */
	struct egress_prefix_set dst;  /* destinations */
	struct egress_prefix_set excl; /* destinations excluded */
};

struct egress_lpm_entry {
	struct egress_prefix p;
	uint64_t bits;
};

/* Add a prefix (duplicates are kept out); host bits are cleared. */
int egress_prefix_add(struct egress_prefix_set *s, uint32_t addr, uint8_t plen);
void egress_prefix_set_free(struct egress_prefix_set *s);

/* Does a contain b? */
int egress_prefix_contains(const struct egress_prefix *a, const struct egress_prefix *b);

/* Trie contents; *out is malloc()ed (free it), *n may be 0. */
int egress_model_src(const struct egress_model_policy *pols, size_t npols,
		     struct egress_lpm_entry **out, size_t *n);
int egress_model_dst(const struct egress_model_policy *pols, size_t npols,
		     const struct egress_prefix_set *cluster, struct egress_lpm_entry **out,
		     size_t *n);

/* What the tries answer for saddr -> daddr (host order): the policy index or -1. */
int egress_model_lookup(const struct egress_lpm_entry *src, size_t nsrc,
			const struct egress_lpm_entry *dst, size_t ndst, uint32_t saddr,
			uint32_t daddr);

#endif
