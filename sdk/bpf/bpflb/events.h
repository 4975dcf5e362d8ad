/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Observation: flow events to the daemon, per-service and per-reason counters.
 *
 * Events go through the perf event array bpflb_events (ring buffers need 5.8).
 * Each CPU may send at most bpflb_node_cfg.events_per_sec events a second
 * (token bucket in bpflb_ev_rate); what the limit suppresses is counted there,
 * so a flood of drops cannot flood the daemon while the counters stay exact.
 */
#ifndef BPFLB_BPF_EVENTS_H
#define BPFLB_BPF_EVENTS_H

#include <linux/pkt_cls.h>

#include <bpflb/lb_maps.h>
#include <bpflb/parse.h>

#ifndef BPFLB_NSEC_PER_SEC
#define BPFLB_NSEC_PER_SEC 1000000000ull
#endif

/* May this CPU send an event now?  Takes a token when it may. */
static __always_inline int bpflb_event_allowed(void)
{
	struct bpflb_node_cfg *cfg;
	struct bpflb_ev_rate *r;
	__u64 now, rate, add, elapsed;
	__u32 zero = 0;

	r = bpf_map_lookup_elem(&bpflb_ev_rate, &zero);
	if (!r)
		return 0;
	cfg = bpf_map_lookup_elem(&bpflb_node, &zero);
	rate = cfg && cfg->events_per_sec ? cfg->events_per_sec : BPFLB_EVENTS_PER_SEC_DEFAULT;

	now = bpf_ktime_get_ns();
	elapsed = now - r->last_ns;
	if (elapsed >= BPFLB_NSEC_PER_SEC) {
		r->tokens = rate;
		r->last_ns = now;
	} else {
		/* Refill in whole tokens; the time of a partial token is kept. */
		add = elapsed * rate / BPFLB_NSEC_PER_SEC;
		if (add) {
			r->tokens = r->tokens + add > rate ? rate : r->tokens + add;
			r->last_ns += add * BPFLB_NSEC_PER_SEC / rate;
		}
	}
	if (!r->tokens) {
		r->suppressed++;
		return 0;
	}
	r->tokens--;
	r->sent++;
	return 1;
}

/* The packet's tuple as received; the caller adds what the stage decided. */
static __always_inline void bpflb_event_init(struct bpflb_flow_event *ev,
					     const struct bpflb_pkt *pkt, __u8 verdict, __u8 stage)
{
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->saddr = pkt->saddr;
	ev->daddr = pkt->daddr;
	ev->sport = pkt->sport;
	ev->dport = pkt->dport;
	ev->proto = pkt->proto;
	ev->tcp_flags = pkt->tcp_flags;
	ev->verdict = verdict;
	ev->stage = stage;
}

static __always_inline void bpflb_event_send(struct __sk_buff *skb, struct bpflb_flow_event *ev)
{
	if (!bpflb_event_allowed())
		return;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->ifindex = skb->ifindex;
	/* No reader attached (daemon restarting) is not an error for the packet. */
	bpf_perf_event_output(skb, &bpflb_events, BPF_F_CURRENT_CPU, ev, sizeof(*ev));
}

/* Count a packet of a service as forwarded or dropped (per-CPU, no atomics). */
static __always_inline void bpflb_svc_account(__u32 svc_id, __u32 bytes, int dropped)
{
	struct bpflb_svc_stats *st, zero = {};

	st = bpf_map_lookup_elem(&bpflb_svc_stats, &svc_id);
	if (!st) {
		bpf_map_update_elem(&bpflb_svc_stats, &svc_id, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&bpflb_svc_stats, &svc_id);
		if (!st)
			return;
	}
	if (dropped) {
		st->drop_packets++;
		st->drop_bytes += bytes;
	} else {
		st->fwd_packets++;
		st->fwd_bytes += bytes;
	}
}

static __always_inline void bpflb_drop_count(__u32 reason)
{
	__u64 *cnt = bpf_map_lookup_elem(&bpflb_drops, &reason);

	if (cnt)
		*cnt += 1;
}

/*
 * Drop a packet: count it by reason (and by service when svc_id != 0), report
 * it, and return the verdict for the stage to return.
 */
static __always_inline int bpflb_drop(struct __sk_buff *skb, const struct bpflb_pkt *pkt,
				      __u32 svc_id, __u32 backend_id, __u8 reason, __u8 stage)
{
	struct bpflb_flow_event ev;

	bpflb_drop_count(reason);
	if (svc_id)
		bpflb_svc_account(svc_id, skb->len, 1);
	bpflb_event_init(&ev, pkt, BPFLB_VERDICT_DROPPED, stage);
	ev.svc_id = svc_id;
	ev.backend_id = backend_id;
	ev.reason = reason;
	bpflb_event_send(skb, &ev);
	return TC_ACT_SHOT;
}

#endif
