/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One writer per bpffs root.  Two bpflbd on the same bpffs_root would both
 * rewrite the shared pinned maps, each believing its own picture of them; the
 * second one must refuse to start instead, naming the first.
 *
 * Why the lock is the directory itself and not a lock file inside it: bpffs
 * holds only directories and pinned objects (creating a regular file there
 * fails with EPERM), and a pinned object cannot be open()ed.  A directory can
 * be flock()ed, and the kernel keeps the holder's pid for us in /proc/locks,
 * so nothing needs to be written to name it.  flock() (not fcntl) because
 * fcntl write locks need a file opened for writing, which a directory is not.
 * The lock belongs to the open file description: it lasts exactly as long as
 * the fd, which the daemon keeps for its whole life, and it is released by
 * the kernel however the daemon ends (no stale lock after a crash).
 */
#ifndef BPFLB_CORE_STATE_LOCK_H
#define BPFLB_CORE_STATE_LOCK_H

#include <sys/types.h>

#include <bpflb/config.h>

/*
 * Take the exclusive lock of the existing directory root (open O_DIRECTORY |
 * O_NOFOLLOW | O_CLOEXEC, flock LOCK_EX | LOCK_NB).  Returns the fd holding it
 * or -errno with err set; -EBUSY means another process holds it:
 * "bpffs_root R is in use by bpflbd pid N".
 */
int bpflb_root_lock(const char *root, struct bpflb_err *err);
/* pid of the holder of an flock() on the file of fd as /proc/locks lists it; 0 unknown. */
pid_t bpflb_flock_holder(int fd);

#endif
