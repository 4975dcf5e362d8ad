/* SPDX-License-Identifier: GPL-2.0-only */
/* What bpflbd needs from the system: kernel version, bpffs, BPF features. */
#ifndef BPFLB_CORE_SYS_H
#define BPFLB_CORE_SYS_H

#include <stdbool.h>
#include <bpflb/config.h>
#include <bpflb/plugin.h>

#define BPFLB_MIN_KERNEL_MAJOR 5
#define BPFLB_MIN_KERNEL_MINOR 7

/* Check a kernel release string ("6.1.0-18-amd64") against the minimum. */
int sys_kernel_check(const char *release, struct bpflb_err *err);
/* Make sure dir lies on a bpffs (mounting one at /sys/fs/bpf when missing) and exists. */
int sys_bpffs_prepare(const char *dir, struct bpflb_err *err);
/* Probe every feature in list; err names the first missing one and who needs it. */
int sys_probe_features(const struct bpflb_feature *list, const char *who, struct bpflb_err *err);
/*
 * Set /proc/sys/KEY (slash separated, in this network namespace) to value when
 * it differs; *changed tells whether it did.
 */
int sys_sysctl_ensure(const char *key, const char *value, bool *changed);
/* Remove every pin below dir, then dir itself. */
int sys_rm_pins(const char *dir);

#endif
