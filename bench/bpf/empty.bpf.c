// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor of the per-packet benchmark (bench/prog_cost.c): a tc program that
 * does nothing.  BPF_PROG_TEST_RUN's own cost per call (context setup, the
 * timer) is all it measures; what the real programs cost above it is theirs.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
