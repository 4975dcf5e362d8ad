// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the egress gateway's userspace logic that needs no kernel
 * privileges: the selection tries (egress_model.c, checked against a direct
 * evaluation of the policies on random scenes) and the directory lease store
 * (egress_lease.c: holder, expiry, ranks, release, concurrent acquirers).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "egress_lease.h"
#include "egress_model.h"

static uint32_t h(const char *s)
{
	return ntohl(inet_addr(s));
}

static void add(struct egress_prefix_set *s, const char *a, uint8_t plen)
{
	ck_assert_int_eq(egress_prefix_add(s, h(a), plen), 0);
}

static void free_pol(struct egress_model_policy *p)
{
	egress_prefix_set_free(&p->src);
	egress_prefix_set_free(&p->dst);
	egress_prefix_set_free(&p->excl);
}

/* --- selection ------------------------------------------------------------------ */

struct tries {
	struct egress_lpm_entry *src, *dst;
	size_t nsrc, ndst;
};

static void build(struct tries *t, const struct egress_model_policy *p, size_t n,
		  const struct egress_prefix_set *cluster)
{
	ck_assert_int_eq(egress_model_src(p, n, &t->src, &t->nsrc), 0);
	ck_assert_int_eq(egress_model_dst(p, n, cluster, &t->dst, &t->ndst), 0);
}

static int lookup(const struct tries *t, const char *s, const char *d)
{
	return egress_model_lookup(t->src, t->nsrc, t->dst, t->ndst, h(s), h(d));
}

START_TEST(test_model_nesting_and_exclusions)
{
	struct egress_model_policy p[2] = {0};
	struct egress_prefix_set cluster = {0};
	struct tries t;

	/* 0: every pod of node 1 to anywhere but 203.0.113.0/24. */
	add(&p[0].src, "10.244.1.0", 24);
	add(&p[0].dst, "0.0.0.0", 0);
	add(&p[0].excl, "203.0.113.0", 24);
	/* 1: one pod to 203.0.113.0/24 but .99. */
	add(&p[1].src, "10.244.1.5", 32);
	add(&p[1].dst, "203.0.113.0", 24);
	add(&p[1].excl, "203.0.113.99", 32);
	add(&cluster, "10.244.0.0", 16);
	add(&cluster, "192.168.1.10", 32);
	build(&t, p, 2, &cluster);

	ck_assert_int_eq(lookup(&t, "10.244.1.5", "8.8.8.8"), 0);
	ck_assert_int_eq(lookup(&t, "10.244.1.5", "203.0.113.7"), 1);
	ck_assert_int_eq(lookup(&t, "10.244.1.6", "203.0.113.7"), -1);
	ck_assert_int_eq(lookup(&t, "10.244.1.5", "203.0.113.99"), -1);
	ck_assert_int_eq(lookup(&t, "10.244.1.6", "8.8.8.8"), 0);
	ck_assert_int_eq(lookup(&t, "10.244.2.6", "8.8.8.8"), -1);
	/* The cluster is never steered, whatever the policies say. */
	ck_assert_int_eq(lookup(&t, "10.244.1.5", "10.244.3.3"), -1);
	ck_assert_int_eq(lookup(&t, "10.244.1.5", "192.168.1.10"), -1);
	ck_assert_int_eq(lookup(&t, "10.244.1.5", "192.168.1.11"), 0);

	free(t.src);
	free(t.dst);
	free_pol(&p[0]);
	free_pol(&p[1]);
	egress_prefix_set_free(&cluster);
}
END_TEST

START_TEST(test_model_wide_exclusion)
{
	struct egress_model_policy p = {0};
	struct tries t;

	add(&p.src, "10.244.1.5", 32);
	add(&p.dst, "203.0.113.0", 25);
	add(&p.excl, "203.0.113.0", 24);
	add(&p.excl, "10.1.2.3", 32); /* outside the destinations: harmless */
	build(&t, &p, 1, NULL);
	ck_assert_int_eq(lookup(&t, "10.244.1.5", "203.0.113.1"), -1);
	ck_assert_int_eq(lookup(&t, "10.244.1.5", "10.1.2.3"), -1);
	free(t.src);
	free(t.dst);
	free_pol(&p);
}
END_TEST

START_TEST(test_model_host_bits_and_duplicates)
{
	struct egress_prefix_set s = {0};

	add(&s, "10.1.2.3", 24);
	add(&s, "10.1.2.0", 24);
	add(&s, "10.1.2.0", 25);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_uint_eq(s.v[0].addr, h("10.1.2.0"));
	ck_assert_int_eq(egress_prefix_add(&s, 0, 33), -EINVAL);
	egress_prefix_set_free(&s);
}
END_TEST

/* The policies evaluated directly, as the documentation defines them. */
static int direct(const struct egress_model_policy *p, size_t n,
		  const struct egress_prefix_set *cluster, uint32_t s, uint32_t d)
{
	struct egress_prefix sa = {.addr = s, .plen = 32}, da = {.addr = d, .plen = 32};

	for (size_t j = 0; j < cluster->n; j++)
		if (egress_prefix_contains(&cluster->v[j], &da))
			return -1;
	for (size_t i = 0; i < n; i++) {
		bool in_src = false, in_dst = false, excl = false;

		for (size_t j = 0; j < p[i].src.n; j++)
			in_src |= egress_prefix_contains(&p[i].src.v[j], &sa);
		for (size_t j = 0; j < p[i].dst.n; j++)
			in_dst |= egress_prefix_contains(&p[i].dst.v[j], &da);
		for (size_t j = 0; j < p[i].excl.n; j++)
			excl |= egress_prefix_contains(&p[i].excl.v[j], &da);
		if (in_src && in_dst && !excl)
			return (int)i;
	}
	return -1;
}

/* Prefixes of a small address space (10.0.0.0/26), so that they overlap a lot. */
static void random_prefix(struct egress_prefix_set *s, unsigned int *seed)
{
	uint8_t plen = 26 + rand_r(seed) % 7;

	ck_assert_int_eq(egress_prefix_add(s, h("10.0.0.0") | (rand_r(seed) % 64), plen), 0);
}

START_TEST(test_model_random_scenes)
{
	unsigned int seed = 12345;

	for (int scene = 0; scene < 200; scene++) {
		struct egress_model_policy p[5] = {0};
		struct egress_prefix_set cluster = {0};
		size_t n = 1 + rand_r(&seed) % 5;
		struct tries t;

		for (size_t i = 0; i < n; i++) {
			for (int k = rand_r(&seed) % 3; k >= 0; k--)
				random_prefix(&p[i].src, &seed);
			for (int k = rand_r(&seed) % 3; k >= 0; k--)
				random_prefix(&p[i].dst, &seed);
			for (int k = rand_r(&seed) % 3; k > 0; k--)
				random_prefix(&p[i].excl, &seed);
		}
		if (rand_r(&seed) % 2)
			random_prefix(&cluster, &seed);
		build(&t, p, n, &cluster);
		for (uint32_t s = 0; s < 64; s++)
			for (uint32_t d = 0; d < 64; d++) {
				uint32_t sa = h("10.0.0.0") | s, da = h("10.0.0.0") | d;

				ck_assert_msg(
				    egress_model_lookup(t.src, t.nsrc, t.dst, t.ndst, sa, da) ==
					direct(p, n, &cluster, sa, da),
				    "scene %d: .%u -> .%u", scene, s, d);
			}
		free(t.src);
		free(t.dst);
		for (size_t i = 0; i < n; i++)
			free_pol(&p[i]);
		egress_prefix_set_free(&cluster);
	}
}
END_TEST

/* --- leases ------------------------------------------------------------------------ */

static char dir[] = "/tmp/egress-lease-XXXXXX";
static struct egress_lease_store *st;
static uint64_t clock_ms;

static uint64_t fake_now(void)
{
	return clock_ms;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void lease_setup(void)
{
	strcpy(dir, "/tmp/egress-lease-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(egress_lease_dir_open(dir, &st), 0);
	st->now_ms = fake_now;
	clock_ms = 1000000;
}

static void lease_teardown(void)
{
	st->ops->close(st);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#define K "egress-10.99.0.60"

START_TEST(test_lease_acquire_renew_expire)
{
	struct egress_lease l;

	ck_assert_int_eq(st->ops->get(st, K, &l), 0);
	ck_assert_str_eq(l.holder, "");
	ck_assert_int_eq(st->ops->acquire(st, K, "node2", 3000, 0, &l), 0);
	ck_assert_str_eq(l.holder, "node2");
	ck_assert_uint_eq(l.expires_ms, clock_ms + 3000);
	ck_assert_int_eq(st->ops->acquire(st, K, "node3", 3000, 0, &l), -EBUSY);
	ck_assert_str_eq(l.holder, "node2");
	ck_assert_int_eq(st->ops->renew(st, K, "node3", 3000, &l), -EBUSY);

	clock_ms += 2000;
	ck_assert_int_eq(st->ops->renew(st, K, "node2", 3000, &l), 0);
	ck_assert_uint_eq(l.expires_ms, clock_ms + 3000);
	clock_ms += 2999;
	ck_assert_int_eq(st->ops->get(st, K, &l), 0);
	ck_assert(egress_lease_held(&l, clock_ms));

	/* Not renewed: free since its expiry; rank 1 (one step of 1000 ms) waits. */
	clock_ms += 1;
	ck_assert_int_eq(st->ops->get(st, K, &l), 0);
	ck_assert(!egress_lease_held(&l, clock_ms));
	ck_assert_uint_eq(l.free_since_ms, clock_ms);
	clock_ms += 999;
	ck_assert_int_eq(st->ops->acquire(st, K, "node3", 3000, 1000, &l), -EAGAIN);
	clock_ms += 1;
	ck_assert_int_eq(st->ops->acquire(st, K, "node3", 3000, 1000, &l), 0);
	ck_assert_str_eq(l.holder, "node3");
	/* The old holder's late renewal fails: it lost the lease. */
	ck_assert_int_eq(st->ops->renew(st, K, "node2", 3000, &l), -EBUSY);
	ck_assert_str_eq(l.holder, "node3");
}
END_TEST

START_TEST(test_lease_late_renewal_keeps_it)
{
	struct egress_lease l;

	ck_assert_int_eq(st->ops->acquire(st, K, "node2", 3000, 0, &l), 0);
	clock_ms += 3500;
	/* Expired, but nobody took it: still the holder's to renew. */
	ck_assert_int_eq(st->ops->renew(st, K, "node2", 3000, &l), 0);
	ck_assert(egress_lease_held(&l, clock_ms));
}
END_TEST

START_TEST(test_lease_ranks_order_first_acquisition)
{
	struct egress_lease l;

	/* The rank-1 candidate comes first: it starts the clock, and waits. */
	ck_assert_int_eq(st->ops->acquire(st, K, "node3", 3000, 1000, &l), -EAGAIN);
	clock_ms += 500;
	ck_assert_int_eq(st->ops->acquire(st, K, "node3", 3000, 1000, &l), -EAGAIN);
	/* The rank-0 candidate takes it at once. */
	ck_assert_int_eq(st->ops->acquire(st, K, "node2", 3000, 0, &l), 0);
	clock_ms += 1000;
	ck_assert_int_eq(st->ops->acquire(st, K, "node3", 3000, 1000, &l), -EBUSY);
	ck_assert_str_eq(l.holder, "node2");
}
END_TEST

START_TEST(test_lease_release_hands_over)
{
	struct egress_lease l;

	ck_assert_int_eq(st->ops->acquire(st, K, "node2", 15000, 0, &l), 0);
	/* Only the holder can release. */
	ck_assert_int_eq(st->ops->release(st, K, "node3"), 0);
	ck_assert_int_eq(st->ops->get(st, K, &l), 0);
	ck_assert_str_eq(l.holder, "node2");
	clock_ms += 100;
	ck_assert_int_eq(st->ops->release(st, K, "node2"), 0);
	ck_assert_int_eq(st->ops->get(st, K, &l), 0);
	ck_assert_str_eq(l.holder, "");
	ck_assert_uint_eq(l.free_since_ms, clock_ms);
	/* No waiting for the 15 s lease: rank 1 after its one step. */
	clock_ms += 1000;
	ck_assert_int_eq(st->ops->acquire(st, K, "node3", 15000, 1000, &l), 0);
}
END_TEST

START_TEST(test_lease_bad_names)
{
	struct egress_lease l;

	ck_assert_int_eq(st->ops->get(st, "../etc", &l), -EINVAL);
	ck_assert_int_eq(st->ops->acquire(st, K, "a/b", 3000, 0, &l), -EINVAL);
	ck_assert_int_eq(st->ops->acquire(st, ".hidden", "n", 3000, 0, &l), -EINVAL);
	ck_assert_int_eq(egress_lease_dir_open("/nonexistent-egress-dir", &st), -ENOENT);
}
END_TEST

START_TEST(test_lease_concurrent_acquirers)
{
	enum { N = 8 };
	pid_t pids[N];
	int winners = 0;
	struct egress_lease l;

	/* Real clock, real processes: the flock serialises them, one wins. */
	st->now_ms = egress_lease_realtime_ms;
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (!pids[i]) {
			char me[16];

			snprintf(me, sizeof(me), "node%d", i);
			_exit(st->ops->acquire(st, K, me, 60000, 0, NULL) == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;

		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status));
		winners += WEXITSTATUS(status) == 0;
	}
	ck_assert_int_eq(winners, 1);
	ck_assert_int_eq(st->ops->get(st, K, &l), 0);
	ck_assert(egress_lease_held(&l, egress_lease_realtime_ms()));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("egress_unit");
	TCase *model = tcase_create("model"), *lease = tcase_create("lease");
	SRunner *sr;
	int failed;

	tcase_add_test(model, test_model_nesting_and_exclusions);
	tcase_add_test(model, test_model_wide_exclusion);
	tcase_add_test(model, test_model_host_bits_and_duplicates);
	tcase_add_test(model, test_model_random_scenes);
	tcase_set_timeout(model, 60);
	suite_add_tcase(s, model);
	tcase_add_checked_fixture(lease, lease_setup, lease_teardown);
	tcase_add_test(lease, test_lease_acquire_renew_expire);
	tcase_add_test(lease, test_lease_late_renewal_keeps_it);
	tcase_add_test(lease, test_lease_ranks_order_first_acquisition);
	tcase_add_test(lease, test_lease_release_hands_over);
	tcase_add_test(lease, test_lease_bad_names);
	tcase_add_test(lease, test_lease_concurrent_acquirers);
	suite_add_tcase(s, lease);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
