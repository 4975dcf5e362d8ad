// SPDX-License-Identifier: GPL-2.0-only
/*
 * Conntrack garbage collection on a real LRU map of the bpflb_ct layout, with
 * a fake clock: timeouts per protocol and state, FWD/REV pairs removed
 * together and only together, entries of removed backends.
 * Needs root (BPF maps); without it every test passes after saying so.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "lb/services.h"

#define S   1000000000ull
#define NOW (100000ull * S)

static int ct_fd = -1;

static void setup(void)
{
	ct_fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "ut_ct", sizeof(struct bpflb_ct_key),
			       sizeof(struct bpflb_ct_val), 16384, NULL);
	if (ct_fd < 0)
		fprintf(stderr, "test_ct_gc: cannot create BPF maps (not root?): skipping\n");
}

static void teardown(void)
{
	if (ct_fd >= 0)
		close(ct_fd);
	ct_fd = -1;
}

#define NEED_BPF()                                                                                 \
	do {                                                                                       \
		if (ct_fd < 0)                                                                     \
			return;                                                                    \
	} while (0)

static uint32_t ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

struct flow {
	const char *client;
	uint16_t cport;
	const char *frontend;
	uint16_t fport;
	const char *backend;
	uint16_t bport;
	const char *snat; /* NULL: local backend, no SNAT */
	uint16_t snat_port;
	uint8_t proto;
	uint8_t state;
	uint32_t backend_id;
};

static void fwd_key(const struct flow *f, struct bpflb_ct_key *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr = ip(f->client);
	k->sport = htons(f->cport);
	k->daddr = ip(f->frontend);
	k->dport = htons(f->fport);
	k->proto = f->proto;
	k->kind = BPFLB_CT_FWD;
}

static void rev_key(const struct flow *f, struct bpflb_ct_key *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr = ip(f->backend);
	k->sport = htons(f->bport);
	k->daddr = f->snat ? ip(f->snat) : ip(f->client);
	k->dport = f->snat ? htons(f->snat_port) : htons(f->cport);
	k->proto = f->proto;
	k->kind = BPFLB_CT_REV;
}

/* Put the FWD entry (age_fwd s idle) and/or the REV entry (age_rev); -1: leave out. */
static void put(const struct flow *f, long age_fwd, long age_rev)
{
	struct bpflb_ct_key k;
	struct bpflb_ct_val v;

	if (age_fwd >= 0) {
		fwd_key(f, &k);
		memset(&v, 0, sizeof(v));
		v.last_seen = NOW - (uint64_t)age_fwd * S;
		v.created = v.last_seen;
		v.addr = ip(f->backend);
		v.port = htons(f->bport);
		v.state = f->state;
		v.fwd = f->snat ? BPFLB_FWD_SNAT : BPFLB_FWD_LOCAL;
		v.nat_addr = f->snat ? ip(f->snat) : 0;
		v.nat_port = f->snat ? htons(f->snat_port) : 0;
		v.svc_id = 1;
		v.backend_id = f->backend_id;
		ck_assert_int_eq(bpf_map_update_elem(ct_fd, &k, &v, BPF_ANY), 0);
	}
	if (age_rev >= 0) {
		rev_key(f, &k);
		memset(&v, 0, sizeof(v));
		v.last_seen = NOW - (uint64_t)age_rev * S;
		v.created = v.last_seen;
		v.addr = ip(f->client);
		v.port = htons(f->cport);
		v.state = f->state;
		v.fwd = f->snat ? BPFLB_FWD_SNAT : BPFLB_FWD_LOCAL;
		v.nat_addr = ip(f->frontend);
		v.nat_port = htons(f->fport);
		v.svc_id = 1;
		v.backend_id = f->backend_id;
		ck_assert_int_eq(bpf_map_update_elem(ct_fd, &k, &v, BPF_ANY), 0);
	}
}

static bool has_fwd(const struct flow *f)
{
	struct bpflb_ct_key k;
	struct bpflb_ct_val v;

	fwd_key(f, &k);
	return !bpf_map_lookup_elem(ct_fd, &k, &v);
}

static bool has_rev(const struct flow *f)
{
	struct bpflb_ct_key k;
	struct bpflb_ct_val v;

	rev_key(f, &k);
	return !bpf_map_lookup_elem(ct_fd, &k, &v);
}

static const struct flow snat_tcp = {
    "192.0.2.50", 40001,       "10.0.0.11",	     30080, "10.244.2.7", 8080, "10.0.0.11",
    45000,	  IPPROTO_TCP, BPFLB_CT_ESTABLISHED, 7};
static const struct flow local_udp = {
    "192.0.2.51",	  5353, "10.0.0.11", 30053, "10.244.1.5", 53, NULL, 0, IPPROTO_UDP,
    BPFLB_CT_ESTABLISHED, 8};

static struct bpflb_ct_gc_stats gc(void)
{
	struct bpflb_ct_gc_stats st;

	ck_assert_int_eq(bpflb_ct_gc(ct_fd, &bpflb_ct_default_timeouts, NOW, NULL, NULL, &st), 0);
	return st;
}

START_TEST(test_timeouts)
{
	const struct bpflb_ct_timeouts *t = &bpflb_ct_default_timeouts;

	ck_assert_uint_eq(bpflb_ct_timeout_ns(t, IPPROTO_TCP, BPFLB_CT_NEW), 60 * S);
	ck_assert_uint_eq(bpflb_ct_timeout_ns(t, IPPROTO_TCP, BPFLB_CT_ESTABLISHED), 21600 * S);
	ck_assert_uint_eq(bpflb_ct_timeout_ns(t, IPPROTO_TCP, BPFLB_CT_CLOSING), 10 * S);
	ck_assert_uint_eq(bpflb_ct_timeout_ns(t, IPPROTO_UDP, BPFLB_CT_NEW), 60 * S);
	ck_assert_uint_eq(bpflb_ct_timeout_ns(t, IPPROTO_UDP, BPFLB_CT_ESTABLISHED), 60 * S);
	ck_assert_uint_eq(bpflb_ct_timeout_ns(t, IPPROTO_ICMP, BPFLB_CT_NEW), 60 * S);
}
END_TEST

START_TEST(test_pair_both_expired)
{
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	put(&snat_tcp, 21601, 21700);
	put(&local_udp, 61, 61);
	st = gc();
	ck_assert_uint_eq(st.scanned, 4);
	ck_assert_uint_eq(st.expired, 4);
	ck_assert(!has_fwd(&snat_tcp) && !has_rev(&snat_tcp));
	ck_assert(!has_fwd(&local_udp) && !has_rev(&local_udp));
}
END_TEST

/* One half of a DSR flow, as the ingress node (FWD) or the backend node (REV) holds it. */
static void put_dsr(const struct flow *f, uint8_t kind, long age)
{
	struct bpflb_ct_key k;
	struct bpflb_ct_val v;

	if (kind == BPFLB_CT_FWD)
		fwd_key(f, &k);
	else
		rev_key(f, &k);
	memset(&v, 0, sizeof(v));
	v.last_seen = NOW - (uint64_t)age * S;
	v.created = v.last_seen;
	v.addr = kind == BPFLB_CT_FWD ? ip(f->backend) : ip(f->client);
	v.port = kind == BPFLB_CT_FWD ? htons(f->bport) : htons(f->cport);
	v.nat_addr = kind == BPFLB_CT_FWD ? 0 : ip(f->frontend);
	v.nat_port = kind == BPFLB_CT_FWD ? 0 : htons(f->fport);
	v.state = f->state;
	v.fwd = BPFLB_FWD_DSR_IPIP;
	v.backend_id = kind == BPFLB_CT_FWD ? f->backend_id : 0;
	ck_assert_int_eq(bpf_map_update_elem(ct_fd, &k, &v, BPF_ANY), 0);
}

/*
 * The halves of a DSR flow have no partner: each ages alone, and never takes
 * an entry of another flow along that happens to sit at its partner's key.
 */
START_TEST(test_dsr_halves)
{
	struct flow dsr = local_udp, other = local_udp;
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	dsr.cport = other.cport = 5354;
	other.frontend = "203.0.113.10";
	other.fport = 53;
	put_dsr(&dsr, BPFLB_CT_FWD, 61);      /* ingress node's half, expired */
	put_dsr(&local_udp, BPFLB_CT_REV, 5); /* backend node's half, alive */
	/* Another flow's REV sits where the DSR FWD's partner would be. */
	put(&other, 1, 1);
	st = gc();
	ck_assert_uint_eq(st.expired, 1);
	ck_assert(!has_fwd(&dsr));
	ck_assert(has_fwd(&other) && has_rev(&other));
	ck_assert(has_rev(&local_udp));

	put_dsr(&local_udp, BPFLB_CT_REV, 61);
	st = gc();
	ck_assert_uint_eq(st.expired, 1);
	ck_assert(!has_rev(&local_udp));
	ck_assert(has_fwd(&other) && has_rev(&other));
}
END_TEST

/* The backend node's half of a DSR TCP flow: state, FIN flags, client SYN, idle s. */
static void put_dsr_tcp(uint16_t cport, uint8_t state, uint16_t flags, uint32_t syn_seq, long age)
{
	struct flow f = snat_tcp;
	struct bpflb_ct_key k;
	struct bpflb_ct_val v;

	f.snat = NULL;
	f.cport = cport;
	f.state = state;
	put_dsr(&f, BPFLB_CT_REV, age);
	rev_key(&f, &k);
	ck_assert_int_eq(bpf_map_lookup_elem(ct_fd, &k, &v), 0);
	v.flags = flags;
	v.syn_seq = syn_seq;
	ck_assert_int_eq(bpf_map_update_elem(ct_fd, &k, &v, BPF_EXIST), 0);
}

static bool has_dsr_tcp(uint16_t cport)
{
	struct flow f = snat_tcp;

	f.snat = NULL;
	f.cport = cport;
	return has_rev(&f);
}

static bool no_backend_lives(void *ctx, uint32_t id)
{
	(void)ctx;
	(void)id;
	return false;
}

/*
 * A DSR backend half closed both ways (FIN from both sides, or an RST) goes
 * after 2 s idle; half-closed, it keeps the close timeout.  Its syn_seq is no
 * backend id: a half is never taken for the flow of a removed backend.
 */
START_TEST(test_dsr_closed_half)
{
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	put_dsr_tcp(41000, BPFLB_CT_CLOSING, BPFLB_CT_F_FIN_CLIENT | BPFLB_CT_F_FIN_BACKEND, 1000, 3);
	put_dsr_tcp(41001, BPFLB_CT_CLOSING, BPFLB_CT_F_FIN_CLIENT, 1000, 3);
	put_dsr_tcp(41002, BPFLB_CT_CLOSING, BPFLB_CT_F_FIN_BACKEND, 1000, 3);
	put_dsr_tcp(41003, BPFLB_CT_CLOSING, BPFLB_CT_F_FIN_CLIENT | BPFLB_CT_F_FIN_BACKEND, 1000, 1);
	put_dsr_tcp(41004, BPFLB_CT_ESTABLISHED, 0, 123456789, 1);
	put_dsr_tcp(41005, BPFLB_CT_CLOSING, BPFLB_CT_F_FIN_CLIENT, 1000, 11);
	ck_assert_int_eq(
	    bpflb_ct_gc(ct_fd, &bpflb_ct_default_timeouts, NOW, no_backend_lives, NULL, &st), 0);
	ck_assert_uint_eq(st.expired, 2);
	ck_assert_uint_eq(st.orphaned, 0);
	ck_assert(!has_dsr_tcp(41000) && !has_dsr_tcp(41005));
	ck_assert(has_dsr_tcp(41001) && has_dsr_tcp(41002) && has_dsr_tcp(41003) &&
		  has_dsr_tcp(41004));
}
END_TEST

/* One-way traffic keeps only one entry fresh: the pair stays. */
START_TEST(test_pair_partner_alive)
{
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	put(&snat_tcp, 30000, 5); /* FWD idle, replies still flowing */
	put(&local_udp, 1, 3600); /* REV idle, requests still flowing */
	st = gc();
	ck_assert_uint_eq(st.expired, 0);
	ck_assert_uint_eq(st.kept, 2);
	ck_assert(has_fwd(&snat_tcp) && has_rev(&snat_tcp));
	ck_assert(has_fwd(&local_udp) && has_rev(&local_udp));
}
END_TEST

START_TEST(test_partner_missing)
{
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	put(&snat_tcp, 21601, -1); /* FWD alone (DSR, or REV evicted by the LRU) */
	put(&local_udp, -1, 61);   /* REV alone */
	st = gc();
	ck_assert_uint_eq(st.expired, 2);
	ck_assert(!has_fwd(&snat_tcp));
	ck_assert(!has_rev(&local_udp));
}
END_TEST

START_TEST(test_partner_key_of_another_flow)
{
	struct flow a = snat_tcp, b = snat_tcp;
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	/* A lost its REV half; B got A's port since and is alive. */
	b.client = "192.0.2.60";
	put(&a, 21601, -1);
	put(&b, 5, 5);
	st = gc();
	ck_assert_uint_eq(st.expired, 1);
	ck_assert(!has_fwd(&a));
	ck_assert(has_fwd(&b) && has_rev(&b));
	/* B idle one way only stays whole; A's stale FWD half still goes. */
	put(&a, 21601, -1);
	put(&b, 21601, 5);
	st = gc();
	ck_assert(!has_fwd(&a));
	ck_assert(has_fwd(&b) && has_rev(&b));
}
END_TEST

START_TEST(test_states)
{
	struct flow syn = snat_tcp, fin = snat_tcp, est = snat_tcp, udp_young = local_udp;
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	syn.cport = 40002;
	syn.snat_port = 45002;
	syn.state = BPFLB_CT_NEW;
	fin.cport = 40003;
	fin.snat_port = 45003;
	fin.state = BPFLB_CT_CLOSING;
	est.cport = 40004;
	est.snat_port = 45004;
	udp_young.cport = 5454;
	put(&syn, 61, 61);	 /* SYN without answer for a minute: gone */
	put(&fin, 11, 11);	 /* closed 11 s ago: gone */
	put(&est, 61, 61);	 /* established, idle a minute: stays */
	put(&udp_young, 59, 59); /* UDP idle 59 s: stays */
	st = gc();
	ck_assert_uint_eq(st.expired, 4);
	ck_assert(!has_fwd(&syn) && !has_fwd(&fin));
	ck_assert(has_fwd(&est) && has_rev(&est) && has_fwd(&udp_young) && has_rev(&udp_young));
}
END_TEST

/* A last_seen after "now" (clock read before the datapath's update) is not expired. */
START_TEST(test_future_last_seen)
{
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	put(&local_udp, 0, 0);
	ck_assert_int_eq(
	    bpflb_ct_gc(ct_fd, &bpflb_ct_default_timeouts, NOW - 5 * S, NULL, NULL, &st), 0);
	ck_assert_uint_eq(st.expired, 0);
	ck_assert(has_fwd(&local_udp));
}
END_TEST

static bool only_8_lives(void *ctx, uint32_t id)
{
	(void)ctx;
	return id == 8;
}

/* Flows of a removed backend go at once, fresh or not; backend 0 means "none". */
START_TEST(test_orphans)
{
	struct flow nobackend = local_udp;
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	nobackend.cport = 6000;
	nobackend.backend_id = 0;
	put(&snat_tcp, 1, 1);  /* backend 7: removed */
	put(&local_udp, 1, 1); /* backend 8: alive */
	put(&nobackend, 1, 1);
	ck_assert_int_eq(
	    bpflb_ct_gc(ct_fd, &bpflb_ct_default_timeouts, NOW, only_8_lives, NULL, &st), 0);
	ck_assert_uint_eq(st.orphaned, 2);
	ck_assert_uint_eq(st.expired, 0);
	ck_assert(!has_fwd(&snat_tcp) && !has_rev(&snat_tcp));
	ck_assert(has_fwd(&local_udp) && has_rev(&local_udp));
	ck_assert(has_fwd(&nobackend) && has_rev(&nobackend));
}
END_TEST

/* Thousands of entries: the batched scan sees them all. */
START_TEST(test_many)
{
	struct bpflb_ct_gc_stats st;

	NEED_BPF();
	for (int i = 0; i < 3000; i++) {
		struct flow f = snat_tcp;

		f.cport = (uint16_t)(10000 + i);
		f.snat_port = (uint16_t)(40000 + i);
		put(&f, i % 2 ? 21601 : 10, i % 2 ? 21601 : 10);
	}
	st = gc();
	ck_assert_uint_eq(st.scanned, 6000);
	ck_assert_uint_eq(st.expired, 3000);
	st = gc();
	ck_assert_uint_eq(st.scanned, 3000);
	ck_assert_uint_eq(st.expired, 0);
}
END_TEST

static Suite *gc_suite(void)
{
	Suite *s = suite_create("ct_gc");
	TCase *tc = tcase_create("lru");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_timeouts);
	tcase_add_test(tc, test_pair_both_expired);
	tcase_add_test(tc, test_pair_partner_alive);
	tcase_add_test(tc, test_dsr_halves);
	tcase_add_test(tc, test_dsr_closed_half);
	tcase_add_test(tc, test_partner_missing);
	tcase_add_test(tc, test_partner_key_of_another_flow);
	tcase_add_test(tc, test_states);
	tcase_add_test(tc, test_future_last_seen);
	tcase_add_test(tc, test_orphans);
	tcase_add_test(tc, test_many);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gc_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
