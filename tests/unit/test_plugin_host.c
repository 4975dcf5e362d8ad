// SPDX-License-Identifier: GPL-2.0-only
/*
 * Plugin loader: each fixture is refused (or accepted) for the right reason,
 * with a message that says what to do, and a refusal never stops the others.
 * The path to a plugin is checked as sshd's StrictModes does, and what was
 * checked is what is loaded.
 *
 * Every test works in its own directory under TEST_ROOT (in the build
 * directory), whose ancestors must pass the loader's own rules (a sticky
 * ancestor such as /tmp does).  dlopen() and qsort() are wrapped (-Wl,--wrap) so that a test
 * can act between the check and the load, and see every qsort() call.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "plugin_host.h"

#define NOBODY 65534

/* Short enough that every path made from it fits PATH_MAX. */
static char tmpdir[512];

/* --- wrappers -------------------------------------------------------------- */

void *__real_dlopen(const char *file, int flags);
void __real_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));

/* When set, the next dlopen() first renames swap_from over swap_to: the
 * attacker who wins the race between the loader's check and its load. */
static char swap_from[PATH_MAX], swap_to[PATH_MAX];

void *__wrap_dlopen(const char *file, int flags)
{
	if (swap_from[0]) {
		ck_assert_int_eq(rename(swap_from, swap_to), 0);
		swap_from[0] = '\0';
	}
	return __real_dlopen(file, flags);
}

/* qsort(NULL, 0, ...) is undefined (glibc declares base nonnull; UBSan). */
static int qsort_null;

void __wrap_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (!base)
		qsort_null++;
	__real_qsort(base, n, size, cmp);
}

/* --- helpers --------------------------------------------------------------- */

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void copy_fixture_as(const char *name, const char *as, const char *dst_dir, mode_t mode,
			    uid_t uid)
{
	char dst[PATH_MAX];

	snprintf(dst, sizeof(dst), "%s/%s.so", dst_dir, as);
	run("cp '%s/%s.so' '%s'", FIXTURE_DIR, name, dst);
	ck_assert_int_eq(chmod(dst, mode), 0);
	ck_assert_int_eq(chown(dst, uid, 0), 0);
}

static void copy_fixture(const char *name, const char *dst_dir, mode_t mode, uid_t uid)
{
	copy_fixture_as(name, name, dst_dir, mode, uid);
}

/* tmpdir/sub as a directory with mode and owner; its path into out. */
static char *subdir(const char *sub, mode_t mode, uid_t uid, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%s", tmpdir, sub);
	ck_assert_int_eq(mkdir(out, 0700), 0);
	ck_assert_int_eq(chmod(out, mode), 0);
	ck_assert_int_eq(chown(out, uid, 0), 0);
	return out;
}

/* tmpdir/name -> target, owned by uid; its path into out. */
static char *symlink_in(const char *name, const char *target, uid_t uid, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%s", tmpdir, name);
	ck_assert_int_eq(symlink(target, out), 0);
	ck_assert_int_eq(lchown(out, uid, 0), 0);
	return out;
}

/*
 * The tests' tree must be somewhere the loader accepts: every directory from
 * "/" to TEST_ROOT root-owned and not group/world writable, or (above
 * TEST_ROOT) sticky, as /tmp is.  Say so when the
 * build directory is not, rather than fail every test for a reason the
 * messages would not make obvious.
 */
static void check_test_root(void)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s", TEST_ROOT);
	for (;;) {
		ck_assert_int_eq(lstat(path, &st), 0);
		ck_assert_msg(st.st_uid == 0 && !S_ISLNK(st.st_mode) &&
				  (!(st.st_mode & (S_IWGRP | S_IWOTH)) ||
				   ((st.st_mode & S_ISVTX) && strcmp(path, TEST_ROOT))),
			      "%s must be a root-owned directory, not group/world writable (or "
			      "sticky above the tests' own directory), for "
			      "the loader tests (uid %u, mode %04o): build elsewhere",
			      path, st.st_uid, st.st_mode & 07777);
		if (!strcmp(path, "/"))
			break;
		*(strrchr(path, '/') + (strrchr(path, '/') == path)) = '\0';
	}
}

static void setup(void)
{
	if (mkdir(TEST_ROOT, 0755) && errno != EEXIST)
		ck_abort_msg("mkdir %s: %s", TEST_ROOT, strerror(errno));
	ck_assert_int_eq(chown(TEST_ROOT, 0, 0), 0);
	ck_assert_int_eq(chmod(TEST_ROOT, 0755), 0);
	check_test_root();
	snprintf(tmpdir, sizeof(tmpdir), "%s/plugins-XXXXXX", TEST_ROOT);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(chmod(tmpdir, 0755), 0);
}

static void teardown(void)
{
	run("rm -rf '%s'", tmpdir);
}

static int load_from(const char *dir, const char *name, struct plugin_host *h,
		     struct bpflb_err *err)
{
	char path[PATH_MAX + NAME_MAX];

	snprintf(path, sizeof(path), "%s/%s.so", dir, name);
	memset(err, 0, sizeof(*err));
	return plugin_host_load(h, path, NULL, err);
}

static int load(const char *name, struct plugin_host *h, struct bpflb_err *err)
{
	return load_from(tmpdir, name, h, err);
}

static void assert_has(const char *msg, const char *want)
{
	ck_assert_msg(msg && strstr(msg, want), "'%s' lacks '%s'", msg ? msg : "(null)", want);
}

/* good.so in dir must be refused with a message holding each of the strings. */
static void expect_dir_refusal(const char *dir, const char *want1, const char *want2)
{
	struct plugin_host h = {0};
	struct bpflb_err err;

	ck_assert_int_ne(load_from(dir, "good", &h, &err), 0);
	assert_has(err.msg, want1);
	assert_has(err.msg, want2);
	ck_assert_ptr_null(h.head);
	plugin_host_free(&h);
}

/* --- plugin files ---------------------------------------------------------- */

START_TEST(good_plugin_loads)
{
	struct plugin_host h = {0};
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
	struct plugin_host h = {0};
	struct bpflb_err err;

	copy_fixture(name, tmpdir, mode, uid);
	ck_assert_int_ne(load(name, &h, &err), 0);
	assert_has(err.msg, why);
	assert_has(err.msg, todo);
	assert_has(err.msg, tmpdir);
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
	expect_refusal("no_symbol", 0755, 0, "no 'bpflb_plugin' descriptor", "BPFLB_PLUGIN_DEFINE");
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
	expect_refusal("good", 0755, NOBODY, "owned by uid 65534", "chown root:root");
}
END_TEST

/* A root-owned symlink in a safe directory, to a good file: still refused. */
START_TEST(plugin_symlink_refused)
{
	char real[PATH_MAX], link[PATH_MAX], want[PATH_MAX + 32];

	copy_fixture("good", subdir("real", 0755, 0, real), 0755, 0);
	snprintf(link, sizeof(link), "%s/good.so", tmpdir);
	ck_assert_int_eq(symlink("real/good.so", link), 0);
	snprintf(want, sizeof(want), "%s: refused: a symlink", link);
	expect_dir_refusal(tmpdir, want, "a plugin must be a regular file");
}
END_TEST

/* --- the directories on the way ------------------------------------------- */

static void expect_mode_refused(mode_t mode, const char *mode_str)
{
	char want[PATH_MAX + 80];

	copy_fixture("good", tmpdir, 0755, 0);
	ck_assert_int_eq(chmod(tmpdir, mode), 0);
	snprintf(want, sizeof(want), "plugin dir %s: refused: mode %s is group or world writable",
		 tmpdir, mode_str);
	expect_dir_refusal(tmpdir, want, "chmod go-w");
}

START_TEST(dir_world_writable_refused)
{
	expect_mode_refused(0777, "0777");
}
END_TEST

START_TEST(dir_sticky_world_writable_refused)
{
	expect_mode_refused(01777, "1777");
}
END_TEST

START_TEST(dir_group_writable_refused)
{
	expect_mode_refused(0775, "0775");
}
END_TEST

START_TEST(dir_not_root_owned_refused)
{
	char want[PATH_MAX + 80];

	copy_fixture("good", tmpdir, 0755, 0);
	ck_assert_int_eq(chown(tmpdir, NOBODY, 0), 0);
	snprintf(want, sizeof(want),
		 "plugin dir %s: refused: owned by uid 65534, must be owned by root", tmpdir);
	expect_dir_refusal(tmpdir, want, "chown root:root");
}
END_TEST

/* The parent is named, and the message says which plugin_dir it leads to. */
static void expect_parent_refused(mode_t mode, uid_t uid, const char *why)
{
	char dir[PATH_MAX], want[PATH_MAX + 80], via[PATH_MAX + 80];

	copy_fixture("good", subdir("plugins", 0755, 0, dir), 0755, 0);
	ck_assert_int_eq(chmod(tmpdir, mode), 0);
	ck_assert_int_eq(chown(tmpdir, uid, 0), 0);
	snprintf(want, sizeof(want), "plugin dir %s: refused: %s", tmpdir, why);
	snprintf(via, sizeof(via), "on the way to plugin_dir %s", dir);
	expect_dir_refusal(dir, want, via);
}

START_TEST(parent_not_root_owned_refused)
{
	expect_parent_refused(0755, NOBODY, "owned by uid 65534");
}
END_TEST

START_TEST(parent_world_writable_refused)
{
	expect_parent_refused(0777, 0, "mode 0777 is group or world writable");
}
END_TEST

/*
 * A sticky world-writable ancestor (/tmp) is accepted: nobody but root can
 * rename or remove the root-owned plugin_dir in it.  A plugin_dir someone
 * else made there is refused for its owner.
 */
START_TEST(parent_sticky_accepted_for_root_child)
{
	struct plugin_host h = {0};
	struct bpflb_err err;
	char dir[PATH_MAX], want[PATH_MAX + 80];

	copy_fixture("good", subdir("plugins", 0755, 0, dir), 0755, 0);
	ck_assert_int_eq(chmod(tmpdir, 01777), 0);
	ck_assert_int_eq(load_from(dir, "good", &h, &err), 0);
	ck_assert_ptr_nonnull(plugin_host_find(&h, "good"));
	plugin_host_free(&h);

	ck_assert_int_eq(chown(dir, NOBODY, 0), 0);
	snprintf(want, sizeof(want), "plugin dir %s: refused: owned by uid 65534", dir);
	expect_dir_refusal(dir, want, "chown");
}
END_TEST

/* A user's symlink could be pointed anywhere: refused, even to a good dir. */
START_TEST(user_symlink_to_dir_refused)
{
	char real[PATH_MAX], link[PATH_MAX], want[PATH_MAX + 80];

	copy_fixture("good", subdir("real", 0755, 0, real), 0755, 0);
	symlink_in("link", "real", NOBODY, link);
	snprintf(want, sizeof(want), "plugin dir %s: refused: symlink owned by uid 65534", link);
	expect_dir_refusal(link, want, "chown -h root:root");
}
END_TEST

/* Root's symlinks are followed (relative, absolute, with ".."), and the
 * directories they lead to are checked in turn. */
START_TEST(root_symlinks_followed_and_checked)
{
	char real[PATH_MAX], open_dir[PATH_MAX], link[PATH_MAX], path[PATH_MAX + 16],
	    want[PATH_MAX + 80];
	struct plugin_host h = {0};
	struct bpflb_err err;

	copy_fixture("good", subdir("real", 0755, 0, real), 0755, 0);
	symlink_in("rel", "real", 0, link);
	ck_assert_int_eq(load_from(link, "good", &h, &err), 0);
	plugin_host_free(&h);

	symlink_in("abs", real, 0, link);
	snprintf(path, sizeof(path), "%s/../abs/./", link);
	ck_assert_int_eq(load_from(path, "good", &h, &err), 0);
	plugin_host_free(&h);

	copy_fixture("good", subdir("open", 0777, 0, open_dir), 0755, 0);
	symlink_in("to-open", "real/../open", 0, link);
	snprintf(want, sizeof(want), "plugin dir %s: refused: mode 0777", open_dir);
	expect_dir_refusal(link, want, "chmod go-w");
}
END_TEST

/* Paths that are no directory of plugins: a loop, a file, a FIFO named *.so
 * (opened without blocking, so a scan cannot hang on it). */
START_TEST(odd_paths_refused)
{
	char a[PATH_MAX], b[PATH_MAX], file[PATH_MAX], fifo[PATH_MAX];
	struct plugin_host h = {0};

	symlink_in("a", "b", 0, a);
	symlink_in("b", "a", 0, b);
	expect_dir_refusal(a, "too many symlinks", "");
	snprintf(file, sizeof(file), "%s/file", tmpdir);
	run("touch '%s'", file);
	expect_dir_refusal(file, "plugin dir ", ": refused: not a directory");

	snprintf(fifo, sizeof(fifo), "%s/fifo.so", tmpdir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	copy_fixture("good", tmpdir, 0755, 0);
	ck_assert_int_eq(plugin_host_scan(&h, tmpdir, NULL), 1);
	assert_has(plugin_host_refusal(&h, "fifo"), "fifo.so: refused: not a regular file");
	ck_assert_ptr_nonnull(plugin_host_find(&h, "good"));
	plugin_host_free(&h);
}
END_TEST

START_TEST(relative_dir_refused)
{
	struct plugin_host h = {0};
	struct bpflb_err err;

	ck_assert_int_ne(plugin_host_load(&h, "plugins/good.so", NULL, &err), 0);
	assert_has(err.msg, "not an absolute path");
}
END_TEST

/*
 * What was checked is what is loaded.  Between the loader's check and its
 * dlopen(), good.so is replaced (a writer of the directory, or a symlink
 * swapped on the way, could do that): the plugin loaded must still be the
 * file that was checked, not the swapped-in one.
 */
START_TEST(swap_after_check_loads_the_checked_file)
{
	struct plugin_host h = {0};
	struct bpflb_err err;

	copy_fixture("good", tmpdir, 0755, 0);
	copy_fixture("swapped", tmpdir, 0755, 0);
	snprintf(swap_from, sizeof(swap_from), "%s/swapped.so", tmpdir);
	snprintf(swap_to, sizeof(swap_to), "%s/good.so", tmpdir);
	ck_assert_int_eq(load("good", &h, &err), 0);
	ck_assert_msg(!swap_from[0], "dlopen() was not called");
	ck_assert_ptr_nonnull(plugin_host_find(&h, "good"));
	ck_assert_str_eq(plugin_host_find(&h, "good")->desc->version, "1");
	plugin_host_free(&h);
}
END_TEST

/* Two files loaded one after the other are two plugins, though the first
 * descriptor number may come back: the name /proc/self/fd/N must not. */
START_TEST(descriptor_names_are_not_reused)
{
	const struct bpflb_plugin *kept;
	struct plugin_host h = {0};
	struct bpflb_err err;

	copy_fixture("good", tmpdir, 0755, 0);
	copy_fixture("misnamed", tmpdir, 0755, 0);
	copy_fixture_as("good", "other", tmpdir, 0755, 0);
	ck_assert_int_eq(load("good", &h, &err), 0);
	kept = plugin_host_find(&h, "good")->desc;
	plugin_host_free(&h);
	/* An accepted plugin stays mapped (RTLD_NODELETE)... */
	ck_assert_str_eq(kept->version, "1");
	/* ...a refused one is unmapped and its descriptor closed... */
	ck_assert_int_ne(load("misnamed", &h, &err), 0);
	assert_has(err.msg, "something_else");
	/* ...and the next file gets its own object, not good's or misnamed's. */
	ck_assert_int_ne(load("other", &h, &err), 0);
	assert_has(err.msg, "descriptor names the plugin 'good', the file is 'other.so'");
	plugin_host_free(&h);
}
END_TEST

/* --- scans ---------------------------------------------------------------- */

/* A directory with bad plugins beside a good one: the good one still loads. */
START_TEST(scan_keeps_the_good_ones)
{
	struct plugin_host h = {0};
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

START_TEST(scan_empty_dir)
{
	struct plugin_host h = {0};

	ck_assert_int_eq(plugin_host_scan(&h, tmpdir, NULL), 0);
	ck_assert_ptr_null(h.head);
	ck_assert_int_eq(qsort_null, 0);
	plugin_host_free(&h);
}
END_TEST

START_TEST(scan_unsafe_dir_loads_nothing)
{
	struct plugin_host h = {0};

	copy_fixture("good", tmpdir, 0755, 0);
	ck_assert_int_eq(chmod(tmpdir, 0777), 0);
	ck_assert_int_lt(plugin_host_scan(&h, tmpdir, NULL), 0);
	ck_assert_ptr_null(h.head);
	plugin_host_free(&h);
}
END_TEST

/* --- why a plugin is not there --------------------------------------------- */

START_TEST(refusal_kept_per_plugin)
{
	struct plugin_host h = {0};

	copy_fixture("good", tmpdir, 0666, 0);
	copy_fixture("wrong_abi", tmpdir, 0755, 0);
	copy_fixture("goodmode", tmpdir, 0755, 0);
	ck_assert_int_eq(plugin_host_scan(&h, tmpdir, NULL), 2);
	assert_has(plugin_host_refusal(&h, "good"), "good.so: refused: mode 0666 is group or "
						    "world writable");
	assert_has(plugin_host_refusal(&h, "wrong_abi"), "built for plugin ABI 42");
	ck_assert_ptr_null(plugin_host_refusal(&h, "goodmode"));
	ck_assert_ptr_null(plugin_host_refusal(&h, "absent"));
	plugin_host_free(&h);
}
END_TEST

/* A refused directory is the reason for every plugin that would be in it. */
START_TEST(dir_refusal_applies_to_every_name)
{
	struct plugin_host h = {0};
	char want[PATH_MAX + 40];

	copy_fixture("good", tmpdir, 0755, 0);
	ck_assert_int_eq(chown(tmpdir, NOBODY, 0), 0);
	plugin_host_scan(&h, tmpdir, NULL);
	snprintf(want, sizeof(want), "plugin dir %s: refused: owned by uid 65534", tmpdir);
	assert_has(plugin_host_refusal(&h, "good"), want);
	assert_has(plugin_host_refusal(&h, "dsr"), want);
	plugin_host_free(&h);
}
END_TEST

/* Each scan (each SIGHUP) judges the files again, loaded or not. */
START_TEST(rescan_judges_files_again)
{
	struct plugin_host h = {0};
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/good.so", tmpdir);
	copy_fixture("good", tmpdir, 0666, 0);
	ck_assert_int_eq(plugin_host_scan(&h, tmpdir, NULL), 1);
	ck_assert_ptr_null(plugin_host_find(&h, "good"));

	/* Fixed since: loaded, and no longer refused. */
	ck_assert_int_eq(chmod(path, 0755), 0);
	ck_assert_int_eq(plugin_host_scan(&h, tmpdir, NULL), 0);
	ck_assert_ptr_nonnull(plugin_host_find(&h, "good"));
	ck_assert_ptr_null(plugin_host_refusal(&h, "good"));

	/* Broken since it was loaded: it stays loaded, but the reason is known. */
	ck_assert_int_eq(chown(path, NOBODY, 0), 0);
	plugin_host_scan(&h, tmpdir, NULL);
	ck_assert_ptr_nonnull(plugin_host_find(&h, "good"));
	assert_has(plugin_host_refusal(&h, "good"), "owned by uid 65534");
	ck_assert_int_eq(chown(path, 0, 0), 0);
	ck_assert_int_eq(chmod(tmpdir, 0775), 0);
	plugin_host_scan(&h, tmpdir, NULL);
	assert_has(plugin_host_refusal(&h, "good"), "mode 0775");

	ck_assert_int_eq(chmod(tmpdir, 0755), 0);
	plugin_host_scan(&h, tmpdir, NULL);
	ck_assert_ptr_null(plugin_host_refusal(&h, "good"));
	ck_assert_int_eq(unlink(path), 0);
	plugin_host_scan(&h, tmpdir, NULL);
	assert_has(plugin_host_refusal(&h, "good"), "No such file");
	plugin_host_free(&h);
}
END_TEST

/* --- map declarations: what a mode drives, what a plugin owns ---------------- */

START_TEST(mode_declares_the_lb_maps)
{
	struct plugin_host h = {0};
	struct bpflb_plugin_ctx *c;
	struct bpflb_err err;
	char desc[64];

	copy_fixture("goodmode", tmpdir, 0755, 0);
	ck_assert_int_eq(load("goodmode", &h, &err), 0);
	c = plugin_host_find(&h, "goodmode");
	ck_assert(plugin_is_mode(c));
	ck_assert(c->maps.declared);
	ck_assert_uint_eq(c->maps.nsets, 1);
	ck_assert_uint_eq(c->maps.own_schema, 0);
	plugin_maps_describe(c, desc, sizeof(desc));
	ck_assert_str_eq(desc, "lb@2");
	plugin_host_free(&h);
}
END_TEST

START_TEST(mode_without_lb_maps_refused)
{
	expect_refusal("mode_nolb", 0755, 0,
		       "a mode plugin must declare the shared load-balancing maps it drives",
		       ".map_sets = {{BPFLB_MAP_SET_LB, BPFLB_LB_SCHEMA}, {NULL, 0}}");
}
END_TEST

START_TEST(mode_of_other_lb_schema_refused)
{
	expect_refusal("mode_oldlb", 0755, 0,
		       "built against schema version 1 of the 'lb' maps, this bpflbd keeps "
		       "version 2",
		       "rebuild the plugin");
}
END_TEST

START_TEST(unknown_map_set_refused)
{
	expect_refusal("mode_otherset", 0755, 0, "uses the map set 'nat'", "it keeps 'lb'");
}
END_TEST

START_TEST(mode_named_none_refused)
{
	expect_refusal("none", 0755, 0, "'none' is the mode that runs without a mode plugin",
		       "rename the plugin");
}
END_TEST

START_TEST(own_maps_need_a_version)
{
	expect_refusal("own_noversion", 0755, 0, "declares maps of its own (own_maps) but no "
		       "map_schema_version", "set it");
}
END_TEST

/* An older SDK's descriptor ends before map_sets: read as plugin.h promises. */
START_TEST(older_sdk_mode_still_loads)
{
	struct plugin_host h = {0};
	struct bpflb_plugin_ctx *c;
	struct bpflb_err err;

	copy_fixture("oldsdk_mode", tmpdir, 0755, 0);
	ck_assert_int_eq(load("oldsdk_mode", &h, &err), 0);
	c = plugin_host_find(&h, "oldsdk_mode");
	ck_assert(!c->maps.declared);
	ck_assert_uint_eq(c->maps.nsets, 1);
	ck_assert_str_eq(c->maps.sets[0].name, "lb");
	ck_assert_uint_eq(c->maps.sets[0].schema, 2);
	ck_assert_uint_eq(c->maps.own_schema, 0);
	/* Nothing declared to check its pins against: they are not checked. */
	ck_assert_int_eq(plugin_pin_allowed(c, "anything", NULL, &err), 0);
	plugin_host_free(&h);

	expect_refusal("oldsdk_mode1", 0755, 0,
		       "built against schema version 1 of the 'lb' maps, this bpflbd keeps "
		       "version 2",
		       "rebuild the plugin");
}
END_TEST

/* A plugin may pin the maps of the sets it declares, and the ones it owns. */
START_TEST(pins_must_be_declared)
{
	struct plugin_host h = {0};
	struct bpflb_plugin_ctx *c;
	struct bpflb_err err;

	copy_fixture("goodmode", tmpdir, 0755, 0);
	copy_fixture("own_maps", tmpdir, 0755, 0);
	ck_assert_int_eq(plugin_host_scan(&h, tmpdir, NULL), 0);

	c = plugin_host_find(&h, "goodmode");
	ck_assert_int_eq(plugin_pin_allowed(c, "bpflb_svc", "lb", &err), 0);
	ck_assert_int_eq(plugin_pin_allowed(c, "own_counts", NULL, &err), -EPERM);
	assert_has(err.msg, "pins own_counts, which its descriptor does not declare: add it to "
			    "own_maps");

	c = plugin_host_find(&h, "own_maps");
	ck_assert_uint_eq(c->maps.own_schema, 3);
	ck_assert_int_eq(plugin_pin_allowed(c, "own_counts", NULL, &err), 0);
	ck_assert_int_eq(plugin_pin_allowed(c, "bpflb_ct", "lb", &err), -EPERM);
	assert_has(err.msg, "pins bpflb_ct, a map of the shared 'lb' set, but its descriptor "
			    "does not declare that set");
	plugin_host_free(&h);
}
END_TEST

/* --- what the daemon says about a refused plugin ---------------------------- */

static void write_config(char path[PATH_MAX], const char *mode, const char *features,
			 const char *more)
{
	FILE *f;

	snprintf(path, PATH_MAX, "%s/bpflb.ini", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"[daemon]\nmode = %s\nfeatures = %s\ndevices = lo\nplugin_dir = %s\n"
		"bpffs_root = /sys/fs/bpf/bpflb-unit-loader\ncontrol_socket = %s/ctl.sock\nstate_dir = %s/state\n"
		"[node]\nname = n1\naddress = 127.0.0.1\n%s",
		mode, features, tmpdir, tmpdir, tmpdir, more);
	fclose(f);
}

/*
 * mode = dsr with dsr.so refused for its permissions: the error is about
 * why, not "no mode plugin 'dsr' is loaded ... install dsr.so there".  A
 * feature plugin the same, also when the file has a section of that plugin.
 */
START_TEST(config_error_repeats_the_refusal)
{
	char ini[PATH_MAX], want[PATH_MAX + 80];
	struct bpflb_err err = {""};

	copy_fixture("good", tmpdir, 0755, 0);
	copy_fixture_as("good", "dsr", tmpdir, 0666, 0);
	write_config(ini, "dsr", "", "");
	ck_assert_int_ne(daemon_check_config(ini, &err), 0);
	snprintf(want, sizeof(want),
		 "mode = dsr: plugin 'dsr' cannot be enabled: %s/dsr.so: "
		 "refused: mode 0666 is group or world writable",
		 tmpdir);
	assert_has(err.msg, want);

	write_config(ini, "none", "good", "");
	ck_assert_int_eq(daemon_check_config(ini, &err), 0);
	/* The reason comes before "unknown section [good]": the plugin would
	 * have declared it. */
	ck_assert_int_eq(chmod(tmpdir, 0770), 0);
	write_config(ini, "none", "good", "[good]\nkey = 1\n");
	ck_assert_int_ne(daemon_check_config(ini, &err), 0);
	snprintf(want, sizeof(want),
		 "features = good: plugin 'good' cannot be enabled: plugin dir "
		 "%s: refused: mode 0770",
		 tmpdir);
	assert_has(err.msg, want);
}
END_TEST

/*
 * The modes are the loaded mode plugins: a name that is none of them is an
 * error at its line that lists them, with a guess for a typo.
 */
START_TEST(unknown_mode_lists_the_loaded_modes)
{
	char ini[PATH_MAX], want[2 * PATH_MAX];
	struct bpflb_err err = {""};

	copy_fixture("good", tmpdir, 0755, 0);
	copy_fixture("goodmode", tmpdir, 0755, 0);
	copy_fixture("oldsdk_mode", tmpdir, 0755, 0);
	write_config(ini, "godmode", "", "");
	ck_assert_int_ne(daemon_check_config(ini, &err), 0);
	snprintf(want, sizeof(want),
		 "%s:2: [daemon] mode = godmode: no mode plugin 'godmode' is loaded from %s; "
		 "modes available: goodmode, oldsdk_mode, none (did you mean goodmode?)",
		 ini, tmpdir);
	ck_assert_str_eq(err.msg, want);

	write_config(ini, "good", "", "");
	ck_assert_int_ne(daemon_check_config(ini, &err), 0);
	assert_has(err.msg, ":2: [daemon] mode = good: 'good' is a feature plugin, not a mode "
			    "(list it in features); modes available: goodmode, oldsdk_mode, none");

	/* An absent mode is the build's default, named as such. */
	snprintf(want, sizeof(want), "[daemon]\ndevices = lo\nplugin_dir = %s\n", tmpdir);
	{
		FILE *f = fopen(ini, "w");

		ck_assert_ptr_nonnull(f);
		fprintf(f, "%s[node]\nname = n1\naddress = 127.0.0.1\n", want);
		fclose(f);
	}
	ck_assert_int_ne(daemon_check_config(ini, &err), 0);
	assert_has(err.msg, ":1: [daemon] mode: no mode plugin '" BPFLB_DEFAULT_MODE "' is "
			    "loaded from");
	assert_has(err.msg, "(the default mode); modes available: goodmode, oldsdk_mode, none");
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
	tcase_add_test(tc, plugin_symlink_refused);
	tcase_add_test(tc, dir_world_writable_refused);
	tcase_add_test(tc, dir_sticky_world_writable_refused);
	tcase_add_test(tc, dir_group_writable_refused);
	tcase_add_test(tc, dir_not_root_owned_refused);
	tcase_add_test(tc, parent_not_root_owned_refused);
	tcase_add_test(tc, parent_world_writable_refused);
	tcase_add_test(tc, parent_sticky_accepted_for_root_child);
	tcase_add_test(tc, user_symlink_to_dir_refused);
	tcase_add_test(tc, root_symlinks_followed_and_checked);
	tcase_add_test(tc, odd_paths_refused);
	tcase_add_test(tc, relative_dir_refused);
	tcase_add_test(tc, swap_after_check_loads_the_checked_file);
	tcase_add_test(tc, descriptor_names_are_not_reused);
	tcase_add_test(tc, scan_keeps_the_good_ones);
	tcase_add_test(tc, scan_empty_dir);
	tcase_add_test(tc, scan_unsafe_dir_loads_nothing);
	tcase_add_test(tc, refusal_kept_per_plugin);
	tcase_add_test(tc, dir_refusal_applies_to_every_name);
	tcase_add_test(tc, rescan_judges_files_again);
	tcase_add_test(tc, config_error_repeats_the_refusal);
	tcase_add_test(tc, mode_declares_the_lb_maps);
	tcase_add_test(tc, mode_without_lb_maps_refused);
	tcase_add_test(tc, mode_of_other_lb_schema_refused);
	tcase_add_test(tc, unknown_map_set_refused);
	tcase_add_test(tc, mode_named_none_refused);
	tcase_add_test(tc, own_maps_need_a_version);
	tcase_add_test(tc, older_sdk_mode_still_loads);
	tcase_add_test(tc, pins_must_be_declared);
	tcase_add_test(tc, unknown_mode_lists_the_loaded_modes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	/* A failed test (in its forked child) skips its teardown: clean up here. */
	if (system("rm -rf '" TEST_ROOT "'"))
		failed++;
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
