// SPDX-License-Identifier: GPL-2.0-only
/* The bpffs_root lock (see lock.h for why it is an flock on the directory). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "state/lock.h"

pid_t bpflb_flock_holder(int fd)
{
	unsigned int maj, min;
	unsigned long ino;
	char line[256], kind[16];
	struct stat st;
	pid_t pid = 0;
	long p;
	FILE *f;

	if (fstat(fd, &st))
		return 0;
	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	/* "1: FLOCK  ADVISORY  WRITE 22374 00:27:3708664 0 EOF"; "->" marks a waiter */
	while (!pid && fgets(line, sizeof(line), f)) {
		if (strstr(line, "->"))
			continue;
		if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%lu", kind, &p, &maj, &min, &ino) !=
		    5)
			continue;
		if (!strcmp(kind, "FLOCK") && maj == major(st.st_dev) &&
		    min == minor(st.st_dev) && ino == st.st_ino && p > 0)
			pid = (pid_t)p;
	}
	fclose(f);
	return pid;
}

int bpflb_root_lock(const char *root, struct bpflb_err *err)
{
	int fd, ret;
	pid_t pid;

	fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno; /* before formatting the message, which may change errno */
		bpflb_err_set(err, "cannot open bpffs_root %s to lock it: %s", root, strerror(-ret));
		return ret;
	}
	if (!flock(fd, LOCK_EX | LOCK_NB))
		return fd;
	ret = -errno;
	if (ret == -EWOULDBLOCK) {
		pid = bpflb_flock_holder(fd);
		if (pid)
			bpflb_err_set(err,
				      "bpffs_root %s is in use by bpflbd pid %d; one bpflbd per "
				      "bpffs_root (stop it, or give this one another bpffs_root)",
				      root, (int)pid);
		else
			bpflb_err_set(err,
				      "bpffs_root %s is in use by another bpflbd (its pid is not "
				      "visible here); one bpflbd per bpffs_root",
				      root);
		ret = -EBUSY;
	} else {
		bpflb_err_set(err, "cannot lock bpffs_root %s: %s", root, strerror(-ret));
	}
	close(fd);
	return ret;
}
