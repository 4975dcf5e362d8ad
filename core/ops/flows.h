/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Flow observation: the daemon's reader of the datapath's flow events.
 *
 * The datapath writes struct bpflb_flow_event to the perf event array
 * bpflb_events (sdk/bpf/bpflb/events.h), at most [lb] events_per_sec per CPU;
 * the rest is counted per CPU in bpflb_ev_rate ("suppressed").  The daemon
 * reads with libbpf's perf_buffer, whose epoll fd is a uv_poll on the loop,
 * keeps the last FLOWS_RING events in memory and streams new ones to the
 * control clients that subscribed ("observe --follow").  Events the kernel
 * could not write into a full per-CPU buffer are reported by perf as lost.
 */
#ifndef BPFLB_CORE_FLOWS_H
#define BPFLB_CORE_FLOWS_H

#include <stdint.h>
#include <json-c/json.h>

#include <bpflb/config.h>
#include <bpflb/lb.h>

#include "lb/services_query.h"

#define FLOWS_RING  8192
#define FLOWS_PAGES 64 /* perf buffer pages per CPU (256 KiB with 4 KiB pages) */

struct bpflb_daemon;
struct bpflb_flows;
struct control_conn;

struct flows_filter {
	struct svcq_ct_filter sel; /* service, address, protocol */
	uint8_t verdict;	   /* 0: any */
};

struct flows_counters {
	uint64_t received;	 /* events read by the daemon */
	uint64_t lost;		 /* perf: not written, the per-CPU buffer was full */
	uint64_t sent;		 /* datapath: let through by the rate limit (bpflb_ev_rate) */
	uint64_t suppressed;	 /* datapath: held back by the rate limit */
	uint64_t client_dropped; /* not streamed to a client that read too slowly */
	unsigned int subscribers;
};

/* Open bpflb_events and bpflb_ev_rate under d's pin root and start reading. */
int flows_open(struct bpflb_daemon *d, struct bpflb_flows **out, struct bpflb_err *err);
void flows_close(struct bpflb_flows *f);
void flows_counters(struct bpflb_flows *f, struct flows_counters *c);

/* Handle a decoded event as if read from the perf buffer (tests, replay). */
void flows_push(struct bpflb_flows *f, const struct bpflb_flow_event *ev);

/* The last n events matching flt, oldest first. */
json_object *flows_last(struct bpflb_flows *f, const struct flows_filter *flt, unsigned int n);
/* Stream new events matching flt to c until flows_unsubscribe(). */
int flows_subscribe(struct bpflb_flows *f, struct control_conn *c, const struct flows_filter *flt);
void flows_unsubscribe(struct bpflb_flows *f, struct control_conn *c);
/* {"sent":..,"suppressed":..,"lost":..,...} */
json_object *flows_stats_json(struct bpflb_flows *f);

#endif
