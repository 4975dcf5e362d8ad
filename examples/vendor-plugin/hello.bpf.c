// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* A vendor plugin's datapath: count the packets reaching the last ingress stage. */
#include <bpflb/pipeline.h>

/* Packets seen; pinned under the instance's bpffs root as "hello_packets". */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hello_packets SEC(".maps");

SEC("tc")
int hello_in(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&hello_packets, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
	return bpflb_stage_next(skb, BPFLB_STAGE_IN_POST);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
