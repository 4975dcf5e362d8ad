// SPDX-License-Identifier: GPL-2.0-only
/*
 * Plugin loader: each fixture is refused (or accepted) for the right reason,
 * with a message that says what to do, and a refusal never stops the others.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "plugin_host.h"

static char tmpdir[256];

static void copy_fixture(const char *name, const char *dst_dir, mode_t mode, uid_t uid)
{
	char src[PATH_MAX], dst[PATH_MAX], cmd[3 * PATH_MAX];

	snprintf(src, sizeof(src), "%s/%s.so", FIXTURE_DIR, name);
	snprintf(dst, sizeof(dst), "%s/%s.so", dst_dir, name);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(chmod(dst, mode), 0);
	ck_assert_int_eq(chown(dst, uid, 0), 0);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bpflb-loader-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)system(cmd);
}

static int load(const char *name, struct plugin_host *h, struct bpflb_err *err)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s.so", tmpdir, name);
	memset(err, 0, sizeof(*err));
	return plugin_host_load(h, path, NULL, err);
}

START_TEST(good_plugin_loads)
{
	struct plugin_host h = { 0 };
	struct bpflb_err err;

	copy_fixture("good", tmpdir, 0755, 0);
	ck_assert_int_eq(load("good", &h, &err), 0);
	ck_assert_ptr_nonnull(plugin_host_find(&h, "good"));
	ck_assert_str_eq(plugin_host_find(&h, "good")->desc->version, "1");
	plugin_host_free(&h);
}
END_TEST

static void expect_refusal(const char *name, mode_t mode, uid_t uid, const char *why,
			   const char *todo)
{
	struct plugin_host h = { 0 };
	struct bpflb_err err;

	copy_fixture(name, tmpdir, mode, uid);
	ck_assert_int_ne(load(name, &h, &err), 0);
	ck_assert_msg(strstr(err.msg, why), "'%s' lacks '%s'", err.msg, why);
	ck_assert_msg(strstr(err.msg, todo), "'%s' lacks '%s'", err.msg, todo);
	ck_assert_msg(strstr(err.msg, tmpdir), "'%s' does not name the file", err.msg);
	ck_assert_ptr_null(h.head);
	plugin_host_free(&h);
}

START_TEST(wrong_abi_refused)
{
	expect_refusal("wrong_abi", 0755, 0, "built for plugin ABI 42", "rebuild the plugin");
}
END_TEST

START_TEST(short_descriptor_refused)
{
	expect_refusal("short_desc", 0755, 0, "descriptor is 8 bytes", "rebuild the plugin");
}
END_TEST

START_TEST(missing_symbol_refused)
{
	expect_refusal("no_symbol", 0755, 0, "no 'bpflb_plugin' descriptor",
		       "BPFLB_PLUGIN_DEFINE");
}
END_TEST

START_TEST(name_mismatch_refused)
{
	expect_refusal("misnamed", 0755, 0, "names the plugin 'something_else'", "rename");
}
END_TEST

START_TEST(group_writable_refused)
{
	expect_refusal("good", 0775, 0, "group or world writable", "chmod go-w");
}
END_TEST

START_TEST(world_writable_refused)
{
	expect_refusal("good", 0757, 0, "group or world writable", "chmod go-w");
}
END_TEST

START_TEST(non_root_owner_refused)
{
	expect_refusal("good", 0755, 65534, "owned by uid 65534", "chown root:root");
}
END_TEST

/* A directory with bad plugins beside a good one: the good one still loads. */
START_TEST(scan_keeps_the_good_ones)
{
	struct plugin_host h = { 0 };
	struct bpflb_err err;

	copy_fixture("good", tmpdir, 0755, 0);
	copy_fixture("wrong_abi", tmpdir, 0755, 0);
	copy_fixture("short_desc", tmpdir, 0755, 0);
	copy_fixture("no_symbol", tmpdir, 0755, 0);
	copy_fixture("misnamed", tmpdir, 0666, 0);
	ck_assert_int_eq(plugin_host_scan(&h, tmpdir, NULL), 4);
	ck_assert_ptr_nonnull(plugin_host_find(&h, "good"));
	ck_assert_uint_eq(h.nloaded, 1);
	/* A second scan loads nothing twice. */
	ck_assert_int_eq(load("good", &h, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "already loaded"));
	plugin_host_free(&h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plugin_host");
	TCase *tc = tcase_create("loader");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, good_plugin_loads);
	tcase_add_test(tc, wrong_abi_refused);
	tcase_add_test(tc, short_descriptor_refused);
	tcase_add_test(tc, missing_symbol_refused);
	tcase_add_test(tc, name_mismatch_refused);
	tcase_add_test(tc, group_writable_refused);
	tcase_add_test(tc, world_writable_refused);
	tcase_add_test(tc, non_root_owner_refused);
	tcase_add_test(tc, scan_keeps_the_good_ones);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
