/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by testplug's BPF program and its userspace side. */
#ifndef TESTPLUG_H
#define TESTPLUG_H
#include <linux/types.h>

struct testplug_cfg {
	__u16 drop_port;  /* host order; 0 drops nothing */
	__u16 pad;
};

enum { TESTPLUG_CNT_SEEN = 0, TESTPLUG_CNT_DROPPED = 1, TESTPLUG_CNT_MAX = 2 };
#endif
