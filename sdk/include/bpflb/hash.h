/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The flow hash, one definition for the BPF datapath and userspace.
 *
 * Maglev selection indexes a service's table with this hash, so every node
 * (sharing bpflb_node_cfg.hash_seed) sends a flow to the same backend, and
 * userspace (bpflbctl, tests) can tell which backend a tuple maps to without
 * asking the datapath.  The mixing is Bob Jenkins' lookup3 final round, the
 * one the kernel's jhash_3words() uses.
 */
#ifndef BPFLB_HASH_H
#define BPFLB_HASH_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define BPFLB_HASH_INIT 0xdeadbeefu

static __always_inline __u32 bpflb_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

static __always_inline __u32 bpflb_hash_3words(__u32 a, __u32 b, __u32 c, __u32 seed)
{
	a += BPFLB_HASH_INIT + (3u << 2) + seed;
	b += BPFLB_HASH_INIT + (3u << 2) + seed;
	c += BPFLB_HASH_INIT + (3u << 2) + seed;

	c ^= b; c -= bpflb_rol32(b, 14);
	a ^= c; a -= bpflb_rol32(c, 11);
	b ^= a; b -= bpflb_rol32(a, 25);
	c ^= b; c -= bpflb_rol32(b, 16);
	a ^= c; a -= bpflb_rol32(c, 4);
	b ^= a; b -= bpflb_rol32(a, 14);
	c ^= b; c -= bpflb_rol32(b, 24);
	return c;
}

/*
 * Hash of a flow as the client sent it.  Addresses and ports are used as they
 * sit in the packet (network byte order, no swapping) on both sides; nodes of
 * one byte order (x86_64, arm64: little endian) therefore agree.
 */
static __always_inline __u32 bpflb_flow_hash(__be32 saddr, __be32 daddr, __be16 sport,
					     __be16 dport, __u8 proto, __u32 seed)
{
	__u32 ports = ((__u32)sport << 16) | (__u32)dport;

	return bpflb_hash_3words((__u32)saddr, (__u32)daddr, ports, seed ^ proto);
}

#endif
