// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lastpick: a load-balancing mode as a vendor writes one, against the SDK
 * alone.  Its policy is deliberately visible from outside: every new flow of
 * a service goes to the backend in the LAST slot of the service's selection
 * set (bpflb_slots, slot count - 1), so one backend answers every new
 * connection, where snat spreads them.  Everything else (conntrack, NAT,
 * DSR's backend half, flows placed by another mode) is the shared datapath,
 * sdk/bpf/bpflb/lb_core.h, run with the SNAT policy for remote backends.
 *
 *   lastpick_in  (BPFLB_STAGE_IN_LB)    lastpick_out (BPFLB_STAGE_OUT_LB)
 */
#include <bpflb/lb_select.h>

#include "lastpick.h"

/* One entry: what this mode decided (read by `bpflbctl lastpick stats`). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lastpick_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lastpick_stats SEC(".maps");

/* bpflb_select()'s contract: NULL when the service has no usable backend. */
static __always_inline struct bpflb_backend *lastpick_select(const struct bpflb_svc *svc,
							     const struct bpflb_pkt *pkt,
							     const struct bpflb_node_cfg *cfg,
							     __u32 *backend_id)
{
	struct bpflb_slot_key key = {.svc_id = svc->id};
	struct lastpick_stats *st;
	struct bpflb_backend *be;
	__u32 zero = 0, *id;

	if (svc->count == 0)
		return NULL;
	key.slot = svc->count - 1;
	id = bpf_map_lookup_elem(&bpflb_slots, &key);
	if (!id)
		return NULL;
	be = bpflb_backend_lookup(*id);
	if (!be || be->state != BPFLB_BE_ACTIVE)
		return NULL;
	st = bpf_map_lookup_elem(&lastpick_stats, &zero);
	if (st) {
		__sync_fetch_and_add(&st->picks, 1);
		st->addr = be->addr;
		st->port = be->port;
	}
	*backend_id = *id;
	return be;
}

#define BPFLB_LB_SELECT lastpick_select
#define BPFLB_LB_POLICY BPFLB_POLICY_SNAT
#include <bpflb/lb_core.h>

SEC("tc")
int lastpick_in(struct __sk_buff *skb)
{
	return bpflb_lb_in(skb);
}

SEC("tc")
int lastpick_out(struct __sk_buff *skb)
{
	return bpflb_lb_out(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
