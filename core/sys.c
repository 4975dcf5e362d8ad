// SPDX-License-Identifier: GPL-2.0-only
/*
 * System checks at start: the kernel must be 5.7 or newer (the module's stated
 * minimum; the datapath also relies on features of that era), the pin root must
 * be on a bpffs (checked before anything is created or removed there: a typo in
 * bpffs_root must not make --cleanup delete files of an ordinary directory),
 * and every BPF feature an enabled plugin declares must probe ok.
 */
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
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

/* The standard bpffs mount point, which start mounts when nothing is there. */
#define STD_BPFFS "/sys/fs/bpf"

static bool under_std_bpffs(const char *dir)
{
	size_t n = strlen(STD_BPFFS);

	return !strncmp(dir, STD_BPFFS, n) && (dir[n] == '/' || dir[n] == '\0');
}

/*
 * The file system type of dir or, when dir does not exist yet, of its nearest
 * existing ancestor (which start would create dir on): 0 and *magic set, or
 * -errno.
 */
static int fs_magic_of(const char *dir, long *magic)
{
	char buf[PATH_MAX];
	struct statfs sfs;
	size_t len = strlen(dir);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (;;) {
		char *slash;

		if (statfs(buf[0] ? buf : "/", &sfs) == 0) {
			*magic = (long)sfs.f_type;
			return 0;
		}
		if (errno != ENOENT)
			return -errno;
		slash = strrchr(buf, '/');
		if (!slash)
			return -ENOENT;
		*slash = '\0';
	}
}

static const char *fs_name(long magic)
{
	switch (magic) {
	case TMPFS_MAGIC:
		return "tmpfs";
	case EXT4_SUPER_MAGIC:
		return "ext2/3/4";
	case SYSFS_MAGIC:
		return "sysfs";
	case PROC_SUPER_MAGIC:
		return "proc";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlayfs";
	case XFS_SUPER_MAGIC:
		return "xfs";
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	default:
		return "not bpffs";
	}
}

int sys_bpffs_check(const char *dir, bool start_mounts, struct bpflb_err *err)
{
	long magic = 0;
	int ret;

	if (dir[0] != '/')
		return bpflb_err_set(err, "'%s' is not an absolute path", dir), -EINVAL;
	/* Start mounts a bpffs at /sys/fs/bpf when none is there: nothing to refuse yet. */
	if (start_mounts && under_std_bpffs(dir) && !on_bpffs(STD_BPFFS))
		return 0;
	ret = fs_magic_of(dir, &magic);
	if (ret)
		return bpflb_err_set(err, "cannot inspect %s: %s", dir, strerror(-ret)), ret;
	if (magic == BPF_FS_MAGIC)
		return 0;
	return bpflb_err_set(err,
			     "%s is not on a bpf filesystem (it is on %s, f_type 0x%lx); "
			     "expected a directory of a bpffs mount, such as /sys/fs/bpf/bpflb "
			     "(mount one with: mount -t bpf bpf DIR)",
			     dir, fs_name(magic), (unsigned long)magic),
	       -ENOTDIR;
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
	int ret;

	if (under_std_bpffs(dir) && !on_bpffs(STD_BPFFS)) {
		if (mount("bpf", STD_BPFFS, "bpf", 0, "mode=0700") < 0)
			return bpflb_err_set(
			    err, "bpffs is not mounted at %s and mounting it failed: %s", STD_BPFFS,
			    strerror(errno));
		pr_notice("mounted bpffs at %s", STD_BPFFS);
	}
	/* Checked before mkdir: nothing is created on another file system. */
	ret = sys_bpffs_check(dir, false, err);
	if (ret)
		return ret;
	ret = mkdir_p(dir, 0700);
	if (ret)
		return bpflb_err_set(err, "cannot create %s: %s", dir, strerror(-ret));
	if (!on_bpffs(dir))
		return sys_bpffs_check(dir, false, err);
	return 0;
}

int sys_bpffs_private(const char *dir)
{
	char path[PATH_MAX], ref[64], ref_ns[96], host_view[PATH_MAX + 64];
	struct stat self_ns, other_ns, here, there;
	size_t len = strlen(dir);

	/*
	 * Compare with PID 1 (the host's init), or, where its namespaces are
	 * hidden from us (a sandbox without CAP_SYS_PTRACE over it), with the
	 * process that started us: `ip netns exec` makes the new mount
	 * namespace for the command it runs, so its caller is still outside.
	 */
	if (stat("/proc/self/ns/mnt", &self_ns))
		return 0;
	snprintf(ref, sizeof(ref), "/proc/1");
	snprintf(ref_ns, sizeof(ref_ns), "%s/ns/mnt", ref);
	if (stat(ref_ns, &other_ns)) {
		snprintf(ref, sizeof(ref), "/proc/%d", (int)getppid());
		snprintf(ref_ns, sizeof(ref_ns), "%s/ns/mnt", ref);
		if (stat(ref_ns, &other_ns))
			return 0; /* cannot tell: say nothing */
	}
	if (self_ns.st_ino == other_ns.st_ino && self_ns.st_dev == other_ns.st_dev)
		return 0;
	/*
	 * Another mount namespace (ip netns exec, a container): the pins survive
	 * us only if the file system they are on is the one the other process
	 * sees at that path (a bind mount of the host's bpffs), not a mount of
	 * our namespace.  A root that does not exist yet is judged by its
	 * nearest existing ancestor.
	 */
	if (dir[0] != '/' || len >= sizeof(path))
		return 0;
	memcpy(path, dir, len + 1);
	while (stat(path[0] ? path : "/", &here)) {
		char *slash = strrchr(path, '/');

		if (errno != ENOENT || !slash)
			return 0;
		*slash = '\0';
	}
	if (snprintf(host_view, sizeof(host_view), "%s/root%s", ref, path) >= (int)sizeof(host_view))
		return 0;
	if (stat(host_view, &there) == 0 && there.st_dev == here.st_dev)
		return 0;
	return 1;
}

const char *sys_bpffs_private_msg(void)
{
	return "this process runs in a mount namespace other than PID 1's (as under "
	       "'ip netns exec', which mounts a fresh /sys) and its bpffs is not the host's: "
	       "pins vanish when the namespace's last process exits, so the datapath state "
	       "does not outlive this process and other processes cannot see it. Run bpflbd "
	       "with 'nsenter --net=/run/netns/NAME' (network namespace only), or mount the "
	       "host's bpffs into the namespace";
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

int sys_addr_local(uint32_t addr)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = addr};
	int fd, ret = 1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		ret = errno == EADDRNOTAVAIL ? 0 : -errno;
	close(fd);
	return ret;
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
