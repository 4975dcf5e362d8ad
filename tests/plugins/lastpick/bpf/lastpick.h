/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* lastpick's own map, shared by its BPF object and its userspace. */
#ifndef LASTPICK_H
#define LASTPICK_H

#include <linux/types.h>

/* Bump when lastpick_stats changes: the descriptor's map_schema_version. */
#define LASTPICK_SCHEMA 1u

/* What the mode decided: new flows it placed, and the last backend it picked. */
struct lastpick_stats {
	__u64 picks;
	__be32 addr;
	__be16 port;
	__u16 pad;
};
_Static_assert(sizeof(struct lastpick_stats) == 16, "lastpick_stats layout");

#endif
