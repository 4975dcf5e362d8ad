// SPDX-License-Identifier: GPL-2.0-only
/*
 * core/state/ without a daemon: the state file's parser names the field of
 * every error, what is saved loads back the same (0600, atomically replaced),
 * untrusted files and directories are refused, and the bpffs_root lock names
 * its holder.  The lock is tried on a plain directory: flock() is the same on
 * every file system.  Runs as any user; the owner checks need root.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/lock.h"
#include "state/overlay.h"

static char tmp[64];

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/bpflb-state-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

static void parse_fails(const char *text, const char *want)
{
	struct bpflb_overlay o;
	struct bpflb_err err = {""};

	ck_assert_int_eq(bpflb_overlay_parse(text, strlen(text), "f.json", &o, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, want), "error '%s' lacks '%s'", err.msg, want);
}

START_TEST(test_parse_errors)
{
	parse_fails("{\"version\": 2}", "f.json: version:");
	parse_fails("[]", "f.json: not a JSON object");
	parse_fails("{\"version\": 1, \"services\": [", "f.json: not valid JSON: the text ends early");
	parse_fails("{\"version\": 1} x", "data after the object");
	parse_fails("{\"version\": 1, \"services\": {}}", "f.json: services: not an array");
	parse_fails("{\"version\": 1, \"services\": [{\"name\": \"a]\", \"lines\": [\"a = b\"]}]}",
		    "services[0].name:");
	parse_fails("{\"version\": 1, \"services\": [{\"name\": \"a\", \"lines\": [\"a = b\"]},"
		    "{\"name\": \"a\", \"lines\": [\"a = b\"]}]}",
		    "services[1].name: 'a' is listed twice");
	parse_fails("{\"version\": 1, \"services\": [{\"name\": \"a\", \"lines\": [\"[service b]\"]}]}",
		    "services[0].lines[0]: not a \"key = value\" line");
	parse_fails("{\"version\": 1, \"services\": [{\"name\": \"a\", \"lines\": [1]}]}",
		    "services[0].lines[0]: not a string");
	parse_fails("{\"version\": 1, \"services\": [{\"name\": \"a\", \"deleted\": true, "
		    "\"lines\": [\"a = b\"]}]}",
		    "a deleted service has no lines");
	parse_fails("{\"version\": 1, \"backends\": [{\"addr\": \"10.0.0.1\", \"port\": 65536, "
		    "\"state\": \"active\"}]}",
		    "backends[0].port: not 0..65535");
	parse_fails("{\"version\": 1, \"backends\": [{\"addr\": \"10.0.0.300\", \"state\": \"active\"}]}",
		    "backends[0].addr:");
	parse_fails("{\"version\": 1, \"backends\": [{\"addr\": \"10.0.0.1\", \"state\": \"asleep\"}]}",
		    "backends[0].state:");
	parse_fails("{\"version\": 1, \"backends\": [{\"addr\": \"10.0.0.1\", \"state\": \"active\"},"
		    "{\"addr\": \"10.0.0.1\", \"port\": 0, \"state\": \"maintenance\"}]}",
		    "backends[1]: listed twice");
	parse_fails("[[[[[[[[[[1]]]]]]]]]]", "not valid JSON");
}
END_TEST

START_TEST(test_save_load)
{
	static const char *lines[] = {"type = nodeport", "port = http tcp 80 nodeport=30100"};
	struct bpflb_overlay_svc svcs[2] = {{.name = "extra", .lines = (char **)lines, .nlines = 2},
					    {.name = "old", .deleted = true}};
	struct bpflb_overlay_be bes[1] = {{.addr = 0x0202f40a, .port = 8080, .state = 2}};
	struct bpflb_overlay o = {svcs, 2, bes, 1}, back;
	struct bpflb_err err = {""};
	char dir[128], path[192];
	struct stat st;
	int fd;

	snprintf(dir, sizeof(dir), "%s/var/lib/bpflb", tmp);
	fd = bpflb_state_dir_open(dir, &err);
	ck_assert_msg(fd >= 0, "%s", err.msg);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/overlay.json", dir);

	ck_assert_int_eq(bpflb_overlay_load(fd, path, &back, &err), 0); /* none yet: empty */
	ck_assert_uint_eq(back.nsvcs + back.nbes, 0);
	ck_assert_msg(!bpflb_overlay_save(fd, path, &o, &err), "%s", err.msg);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_msg(!bpflb_overlay_load(fd, path, &back, &err), "%s", err.msg);
	ck_assert_uint_eq(back.nsvcs, 2);
	ck_assert_str_eq(back.svcs[0].name, "extra");
	ck_assert_uint_eq(back.svcs[0].nlines, 2);
	ck_assert_str_eq(back.svcs[0].lines[1], "port = http tcp 80 nodeport=30100");
	ck_assert(back.svcs[1].deleted);
	ck_assert_uint_eq(back.nbes, 1);
	ck_assert_uint_eq(back.bes[0].addr, 0x0202f40a);
	ck_assert_uint_eq(back.bes[0].port, 8080);
	ck_assert_uint_eq(back.bes[0].state, 2);
	bpflb_overlay_free(&back);

	/* group-writable file, symlink, another owner: refused */
	chmod(path, 0620);
	ck_assert_int_eq(bpflb_overlay_load(fd, path, &back, &err), -EPERM);
	ck_assert_msg(strstr(err.msg, "mode 0620"), "%s", err.msg);
	chmod(path, 0600);
	if (!geteuid()) {
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
		ck_assert_int_eq(bpflb_overlay_load(fd, path, &back, &err), -EPERM);
		ck_assert_msg(strstr(err.msg, "owned by uid 65534"), "%s", err.msg);
		ck_assert_int_eq(chown(path, 0, 0), 0);
	}
	ck_assert_int_eq(renameat(fd, "overlay.json", fd, "real.json"), 0);
	ck_assert_int_eq(symlinkat("real.json", fd, "overlay.json"), 0);
	ck_assert_int_lt(bpflb_overlay_load(fd, path, &back, &err), 0);
	close(fd);
}
END_TEST

START_TEST(test_state_dir_checks)
{
	struct bpflb_err err = {""};
	char dir[128], link[128];
	int fd;

	snprintf(dir, sizeof(dir), "%s/open", tmp);
	ck_assert_int_eq(mkdir(dir, 0770), 0);
	chmod(dir, 0770);
	fd = bpflb_state_dir_open(dir, &err);
	ck_assert_int_eq(fd, -EPERM);
	ck_assert_msg(strstr(err.msg, "writable by its group"), "%s", err.msg);
	snprintf(link, sizeof(link), "%s/link", tmp);
	ck_assert_int_eq(symlink(dir, link), 0);
	chmod(dir, 0700);
	fd = bpflb_state_dir_open(link, &err);
	ck_assert_int_lt(fd, 0);
	ck_assert_msg(strstr(err.msg, "is a symlink"), "%s", err.msg);
	ck_assert_int_eq(bpflb_state_dir_open("relative/dir", &err), -EINVAL);
	snprintf(link, sizeof(link), "%s/../x", tmp);
	ck_assert_int_eq(bpflb_state_dir_open(link, &err), -EINVAL);
}
END_TEST

START_TEST(test_root_lock)
{
	struct bpflb_err err = {""};
	char want[160];
	int a, b;

	a = bpflb_root_lock(tmp, &err);
	ck_assert_msg(a >= 0, "%s", err.msg);
	/* another open file description: refused as another process would be */
	b = bpflb_root_lock(tmp, &err);
	ck_assert_int_eq(b, -EBUSY);
	snprintf(want, sizeof(want), "bpffs_root %s is in use by bpflbd pid %d", tmp, (int)getpid());
	ck_assert_msg(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
	close(a);
	b = bpflb_root_lock(tmp, &err);
	ck_assert_msg(b >= 0, "after the holder closed: %s", err.msg);
	close(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_save_load);
	tcase_add_test(tc, test_state_dir_checks);
	tcase_add_test(tc, test_root_lock);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
