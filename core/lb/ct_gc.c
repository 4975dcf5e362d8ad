// SPDX-License-Identifier: GPL-2.0-only
/*
 * Conntrack garbage collection of bpflb_ct (layout and pairing in lb.h).
 *
 * The datapath refreshes last_seen of the entry a packet hit, so a flow whose
 * packets go one way only keeps just one of its two entries fresh: an entry
 * is therefore removed only together with its partner, once both are idle
 * past their timeout (or the partner is gone, or the entry at the partner key
 * belongs to another flow: see sdk/bpf/bpflb/ct.h).  The scan works on a snapshot;
 * before a pair is deleted both entries are read again, and a pair that the
 * datapath touched meanwhile stays.
 *
 * The backend node's half of a DSR TCP flow that saw FIN from both sides (or
 * an RST) only has the last ACK and retransmissions left to translate: it
 * expires after CT_DSR_CLOSED_NS idle instead of the close timeout.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "lb/services.h"
#include "lb/services_model.h"

#define CT_DSR_CLOSED_NS (2ull * 1000000000ull)

const struct bpflb_ct_timeouts bpflb_ct_default_timeouts = {
    .tcp_syn_ns = 60ull * 1000000000ull,
    .tcp_est_ns = 21600ull * 1000000000ull,
    .tcp_close_ns = 10ull * 1000000000ull,
    .udp_ns = 60ull * 1000000000ull,
};

uint64_t bpflb_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bpflb_ct_timeout_ns(const struct bpflb_ct_timeouts *t, uint8_t proto, uint8_t state)
{
	if (proto != IPPROTO_TCP)
		return t->udp_ns;
	switch (state) {
	case BPFLB_CT_NEW:
		return t->tcp_syn_ns;
	case BPFLB_CT_CLOSING:
		return t->tcp_close_ns;
	default:
		return t->tcp_est_ns;
	}
}

/* Double the key and value arrays of a map dump; on failure both stay valid. */
static int dump_grow(char **k, char **v, size_t *cap, uint32_t ksz, uint32_t vsz)
{
	char *nk = realloc(*k, *cap * 2 * ksz), *nv;

	if (!nk)
		return -ENOMEM;
	*k = nk;
	nv = realloc(*v, *cap * 2 * vsz);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap *= 2;
	return 0;
}

int svc_map_dump(int fd, uint32_t ksz, uint32_t vsz, void **keys, void **vals, size_t *n)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t cap = 1024, cnt = 0;
	char *k = malloc(cap * ksz), *v = malloc(cap * vsz);
	char in[64], out[64], cur[64], next[64];
	bool first = true, batch = true;
	int ret = 0;

	if (!k || !v || ksz > sizeof(in)) {
		ret = k && v ? -EINVAL : -ENOMEM;
		goto fail;
	}
	while (batch) {
		__u32 count;

		if (cap - cnt < 256 && (ret = dump_grow(&k, &v, &cap, ksz, vsz)))
			goto fail;
		count = (__u32)(cap - cnt);
		ret = bpf_map_lookup_batch(fd, first ? NULL : in, out, k + cnt * ksz, v + cnt * vsz,
					   &count, &opts);
		ret = ret < 0 ? -errno : 0;
		if (ret && ret != -ENOENT && first && !cnt) {
			batch = false; /* no batch ops for this map/kernel: one by one */
			break;
		}
		cnt += count;
		if (ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (ret)
			goto fail;
		memcpy(in, out, sizeof(in));
		first = false;
	}
	if (!batch) {
		void *prev = NULL;

		cnt = 0;
		while (!bpf_map_get_next_key(fd, prev, next)) {
			memcpy(cur, next, ksz);
			prev = cur;
			if (cnt == cap && (ret = dump_grow(&k, &v, &cap, ksz, vsz)))
				goto fail;
			if (bpf_map_lookup_elem(fd, cur, v + cnt * vsz))
				continue; /* deleted between the two calls */
			memcpy(k + cnt * ksz, cur, ksz);
			cnt++;
		}
		if (errno != ENOENT) {
			ret = -errno;
			goto fail;
		}
	}
	*keys = k;
	*vals = v;
	*n = cnt;
	return 0;
fail:
	free(k);
	free(v);
	return ret;
}

struct ct_ent {
	struct bpflb_ct_key k;
	struct bpflb_ct_val v;
};

static int ct_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct bpflb_ct_key));
}

/* The key of the other entry of the flow (see lb.h); false for an unknown kind and for DSR. */
bool bpflb_ct_partner(const struct bpflb_ct_key *k, const struct bpflb_ct_val *v,
		       struct bpflb_ct_key *p)
{
	memset(p, 0, sizeof(*p));
	/* Each half of a DSR flow is alone on its node (lb.h). */
	if (v->fwd == BPFLB_FWD_DSR_OPT || v->fwd == BPFLB_FWD_DSR_IPIP)
		return false;
	p->proto = k->proto;
	p->saddr = v->addr;
	p->sport = v->port;
	if (k->kind == BPFLB_CT_FWD) {
		/* reply: backend -> SNAT address/port, or -> client when not SNATed */
		p->kind = BPFLB_CT_REV;
		p->daddr = v->nat_addr ? v->nat_addr : k->saddr;
		p->dport = v->nat_addr ? v->nat_port : k->sport;
		return true;
	}
	if (k->kind == BPFLB_CT_REV) {
		/* request: client -> frontend */
		p->kind = BPFLB_CT_FWD;
		p->daddr = v->nat_addr;
		p->dport = v->nat_port;
		return true;
	}
	return false;
}

/* Is pv, found at k's partner key pk, k's partner, or another flow's entry at that key? */
static bool ct_pair_agrees(const struct bpflb_ct_key *k, const struct bpflb_ct_key *pk,
			   const struct bpflb_ct_val *pv)
{
	struct bpflb_ct_key back;

	return bpflb_ct_partner(pk, pv, &back) && !memcmp(&back, k, sizeof(back));
}

static bool ct_expired(const struct bpflb_ct_timeouts *t, const struct bpflb_ct_key *k,
		       const struct bpflb_ct_val *v, uint64_t now)
{
	uint64_t timeout = bpflb_ct_timeout_ns(t, k->proto, v->state);

	if (bpflb_ct_is_dsr_rev(k, v) && bpflb_ct_flags_closed(v->flags) &&
	    timeout > CT_DSR_CLOSED_NS)
		timeout = CT_DSR_CLOSED_NS;
	return now > v->last_seen && now - v->last_seen > timeout;
}

int bpflb_ct_gc(int ct_fd, const struct bpflb_ct_timeouts *t, uint64_t now_ns,
		bool (*backend_live)(void *ctx, uint32_t backend_id), void *ctx,
		struct bpflb_ct_gc_stats *st)
{
	struct bpflb_ct_gc_stats dummy;
	struct ct_ent *e = NULL;
	void *keys = NULL, *vals = NULL;
	uint8_t *done = NULL;
	size_t n = 0, i;
	int ret;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	ret = svc_map_dump(ct_fd, sizeof(struct bpflb_ct_key), sizeof(struct bpflb_ct_val), &keys,
			   &vals, &n);
	if (ret)
		return ret;
	e = malloc((n ? n : 1) * sizeof(*e));
	done = calloc(n ? n : 1, 1);
	if (!e || !done) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		memcpy(&e[i].k, (char *)keys + i * sizeof(e[i].k), sizeof(e[i].k));
		memcpy(&e[i].v, (char *)vals + i * sizeof(e[i].v), sizeof(e[i].v));
	}
	qsort(e, n, sizeof(*e), ct_key_cmp);
	st->scanned = n;

	for (i = 0; i < n; i++) {
		struct bpflb_ct_key pk;
		struct bpflb_ct_val cur, pcur, psnap;
		struct ct_ent *p = NULL;
		bool orphan, has_p, p_exists = false;

		if (done[i])
			continue;
		done[i] = 1;
		orphan = backend_live && !bpflb_ct_is_dsr_rev(&e[i].k, &e[i].v) &&
			 e[i].v.backend_id && !backend_live(ctx, e[i].v.backend_id);
		if (!orphan && !ct_expired(t, &e[i].k, &e[i].v, now_ns))
			continue;
		has_p = bpflb_ct_partner(&e[i].k, &e[i].v, &pk);
		if (has_p) {
			/* An entry at the partner key that names another flow is not ours (ct.h). */
			p = bsearch(&pk, e, n, sizeof(*e), ct_key_cmp);
			if (p && ct_pair_agrees(&e[i].k, &pk, &p->v)) {
				done[p - e] = 1;
				psnap = p->v;
				p_exists = true;
			} else if (!p && !bpf_map_lookup_elem(ct_fd, &pk, &psnap) &&
				   ct_pair_agrees(&e[i].k, &pk, &psnap)) {
				p_exists = true; /* created after the snapshot */
			}
		}
		if (!orphan && p_exists && !ct_expired(t, &pk, &psnap, now_ns)) {
			st->kept++;
			continue;
		}
		/* read both again: the datapath may have used the flow meanwhile */
		if (bpf_map_lookup_elem(ct_fd, &e[i].k, &cur))
			continue;
		if (!orphan && cur.last_seen != e[i].v.last_seen)
			continue;
		if (p_exists && !bpf_map_lookup_elem(ct_fd, &pk, &pcur) && !orphan &&
		    pcur.last_seen != psnap.last_seen)
			continue;
		if (!bpf_map_delete_elem(ct_fd, &e[i].k))
			*(orphan ? &st->orphaned : &st->expired) += 1;
		if (p_exists && !bpf_map_delete_elem(ct_fd, &pk))
			*(orphan ? &st->orphaned : &st->expired) += 1;
	}
out:
	free(done);
	free(e);
	free(keys);
	free(vals);
	return ret;
}
