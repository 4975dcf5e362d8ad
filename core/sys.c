// SPDX-License-Identifier: GPL-2.0-only
/*
 * System checks at start: the kernel must be 5.7 or newer (the module's stated
 * minimum; the datapath also relies on features of that era), the pin root must
 * be on a bpffs, and every BPF feature an enabled plugin declares must probe ok.
 */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/magic.h>

#include "log.h"
#include "sys.h"

int sys_kernel_check(const char *release, struct bpflb_err *err)
{
	unsigned int major, minor;

	if (sscanf(release, "%u.%u", &major, &minor) != 2)
		return bpflb_err_set(err, "cannot parse kernel release '%s'", release);
	if (major > BPFLB_MIN_KERNEL_MAJOR ||
	    (major == BPFLB_MIN_KERNEL_MAJOR && minor >= BPFLB_MIN_KERNEL_MINOR))
		return 0;
	return bpflb_err_set(err,
			     "kernel %u.%u is too old: bpflb needs Linux %d.%d or newer "
			     "(BPF tc programs with bpf_fib_lookup, LRU and map-in-map maps); "
			     "install a newer kernel (Ubuntu 20.04: the HWE kernel; "
			     "CentOS 7/8: a kernel from the elrepo repository)",
			     major, minor, BPFLB_MIN_KERNEL_MAJOR, BPFLB_MIN_KERNEL_MINOR);
}

static bool on_bpffs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *dir, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int sys_bpffs_prepare(const char *dir, struct bpflb_err *err)
{
	const char *std_mnt = "/sys/fs/bpf";
	int ret;

	if (strncmp(dir, std_mnt, strlen(std_mnt)) == 0 && !on_bpffs(std_mnt)) {
		if (mount("bpf", std_mnt, "bpf", 0, "mode=0700") < 0)
			return bpflb_err_set(
			    err, "bpffs is not mounted at %s and mounting it failed: %s", std_mnt,
			    strerror(errno));
		pr_notice("mounted bpffs at %s", std_mnt);
	}
	ret = mkdir_p(dir, 0700);
	if (ret)
		return bpflb_err_set(err, "cannot create bpffs_root %s: %s", dir, strerror(-ret));
	if (!on_bpffs(dir))
		return bpflb_err_set(
		    err,
		    "bpffs_root %s is not on a bpf filesystem; "
		    "mount one (mount -t bpf bpf DIR) or use a path under /sys/fs/bpf",
		    dir);
	return 0;
}

static const char *map_type_name(uint32_t t)
{
	const char *n = libbpf_bpf_map_type_str(t);
	return n ? n : "?";
}

int sys_probe_features(const struct bpflb_feature *list, const char *who, struct bpflb_err *err)
{
	if (!list)
		return 0;
	for (const struct bpflb_feature *f = list; f->kind != BPFLB_FEAT_END; f++) {
		int ret;

		switch (f->kind) {
		case BPFLB_FEAT_MAP_TYPE:
			ret = libbpf_probe_bpf_map_type(f->id, NULL);
			if (ret != 1)
				return bpflb_err_set(
				    err,
				    "%s needs BPF map type %s (%s), which this kernel "
				    "lacks",
				    who, map_type_name(f->id), f->name ? f->name : "");
			break;
		case BPFLB_FEAT_HELPER:
			ret = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, f->id, NULL);
			if (ret != 1)
				return bpflb_err_set(
				    err,
				    "%s needs BPF helper %s for tc programs, which "
				    "this kernel lacks",
				    who, f->name ? f->name : "?");
			break;
		default:
			return bpflb_err_set(err, "%s declares an unknown feature kind %d", who,
					     f->kind);
		}
	}
	return 0;
}

static int rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			ret = rm_tree(p) ?: ret;
		else if (unlink(p) < 0)
			ret = -errno;
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		ret = -errno;
	return ret;
}

int sys_rm_pins(const char *dir)
{
	return rm_tree(dir);
}

int sys_sysctl_ensure(const char *key, const char *value, bool *changed)
{
	char path[PATH_MAX], cur[64] = "";
	ssize_t n;
	int fd;

	*changed = false;
	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, cur, sizeof(cur) - 1);
	if (n > 0 && (size_t)n >= strlen(value) && !strncmp(cur, value, strlen(value)) &&
	    (cur[strlen(value)] == '\n' || cur[strlen(value)] == '\0')) {
		close(fd);
		return 0;
	}
	if (pwrite(fd, value, strlen(value), 0) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	close(fd);
	*changed = true;
	return 0;
}
