// SPDX-License-Identifier: GPL-2.0-only
/*
 * Compiled policies -> the datapath's lookup maps, in two generations: the idle
 * one is emptied and filled, then one write of bpflb_pol_cfg[0].gen switches the
 * datapath over.  The generation given up stays in the maps until the next
 * write, so a packet that read the old generation number just before the
 * switch still finds every entry it looks for.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "policy_model.h"

/* Delete every entry of generation gen (a __u32 at gen_off in the key). */
static int purge_gen(int fd, size_t key_size, size_t gen_off, uint32_t gen, size_t max)
{
	uint8_t prev[64], next[64], *keys = calloc(max, key_size);
	bool first = true;
	size_t n = 0;
	int ret = 0;

	if (!keys)
		return -ENOMEM;
	while (!bpf_map_get_next_key(fd, first ? NULL : prev, next)) {
		uint32_t g;

		first = false;
		memcpy(prev, next, key_size);
		memcpy(&g, next + gen_off, sizeof(g));
		if (g == gen && n < max)
			memcpy(keys + n++ * key_size, next, key_size);
	}
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, keys + i * key_size) && errno != ENOENT)
			ret = -errno;
	free(keys);
	return ret;
}

int pol_maps_write(const struct pol_map_fds *fds, const struct pol_compiled *c,
		   const struct pol_cfg *cfg, uint32_t *gen_io, const char **what)
{
	uint32_t gen = *gen_io ^ 1, zero = 0;
	struct pol_cfg pc = *cfg;
	size_t i;
	int ret;

	*what = "emptying the idle generation";
	ret = purge_gen(fds->subj, sizeof(struct pol_subj_key), offsetof(struct pol_subj_key, gen),
			gen, 2 * POL_MAX_SUBJECTS);
	if (!ret)
		ret = purge_gen(fds->ident, sizeof(struct pol_ident_key),
				offsetof(struct pol_ident_key, gen), gen, 2 * POL_MAX_IDENTS);
	if (!ret)
		ret = purge_gen(fds->rules, sizeof(struct pol_rule_key),
				offsetof(struct pol_rule_key, gen), gen, 2 * POL_MAX_RULES);
	if (ret)
		return ret;

	*what = "writing identities";
	for (i = 0; i < c->nidents; i++) {
		struct pol_ident_key k = {
		    .prefixlen = 32 + c->idents[i].pfx.plen,
		    .gen = gen,
		    .addr = c->idents[i].pfx.addr,
		};

		if (bpf_map_update_elem(fds->ident, &k, &c->idents[i].id, BPF_ANY))
			return -errno;
	}
	*what = "writing rules";
	for (i = 0; i < c->nrules; i++) {
		struct pol_rule_key k = c->rules[i].key;

		k.gen = gen;
		if (bpf_map_update_elem(fds->rules, &k, &c->rules[i].val, BPF_ANY))
			return -errno;
	}
	*what = "writing subjects";
	for (i = 0; i < c->nsubjects; i++) {
		struct pol_subj_key k = {.gen = gen, .addr = c->subjects[i].addr};

		if (bpf_map_update_elem(fds->subj, &k, &c->subjects[i].val, BPF_ANY))
			return -errno;
	}
	*what = "switching the generation";
	pc.gen = gen;
	if (bpf_map_update_elem(fds->cfg, &zero, &pc, BPF_ANY))
		return -errno;
	*gen_io = gen;
	*what = NULL;
	return 0;
}
