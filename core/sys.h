/* SPDX-License-Identifier: GPL-2.0-only */
/* What bpflbd needs from the system: kernel version, bpffs, BPF features. */
#ifndef BPFLB_CORE_SYS_H
#define BPFLB_CORE_SYS_H

#include <stdbool.h>
#include <stdint.h>
#include <bpflb/config.h>
#include <bpflb/plugin.h>

#define BPFLB_MIN_KERNEL_MAJOR 5
#define BPFLB_MIN_KERNEL_MINOR 7

/* Check a kernel release string ("6.1.0-18-amd64") against the minimum. */
int sys_kernel_check(const char *release, struct bpflb_err *err);
/*
 * Is dir (or, when it does not exist yet, its nearest existing ancestor) on a
 * bpffs?  0, or -errno with err naming the file system found.  start_mounts:
 * accept a path under /sys/fs/bpf while nothing is mounted there, since start
 * mounts a bpffs first (--check-config).
 */
int sys_bpffs_check(const char *dir, bool start_mounts, struct bpflb_err *err);
/* Make sure dir lies on a bpffs (mounting one at /sys/fs/bpf when missing) and exists. */
int sys_bpffs_prepare(const char *dir, struct bpflb_err *err);
/*
 * 1 when dir's bpffs is private to this process's mount namespace (not the one
 * PID 1, or else our parent, sees at that path), so that pins vanish with the
 * namespace; else 0 (also when it cannot tell).
 * sys_bpffs_private_msg() says so and what to do instead.
 */
int sys_bpffs_private(const char *dir);
/* 1 when addr (network order) is an address of this network namespace, 0 if not, or -errno. */
int sys_addr_local(uint32_t addr);
const char *sys_bpffs_private_msg(void);
/* Probe every feature in list; err names the first missing one and who needs it. */
int sys_probe_features(const struct bpflb_feature *list, const char *who, struct bpflb_err *err);
/*
 * Set /proc/sys/KEY (slash separated, in this network namespace) to value when
 * it differs; *changed tells whether it did.
 */
int sys_sysctl_ensure(const char *key, const char *value, bool *changed);

#endif
