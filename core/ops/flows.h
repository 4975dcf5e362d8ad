/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Flow observation: the daemon's reader of the datapath's flow events.
 *
 * The datapath writes struct bpflb_flow_event to the perf event array
 * bpflb_events (sdk/bpf/bpflb/events.h), at most [lb] events_per_sec per CPU;
 * the rest is counted per CPU in bpflb_ev_rate ("suppressed").  The daemon
 * reads with libbpf's perf_buffer, whose epoll fd is a uv_poll on the loop,
 * keeps the last FLOWS_RING events in memory and streams new ones to the
 * control clients that subscribed ("observe --follow"; the "observe" command
 * is this file's).  Events the kernel could not write into a full per-CPU
 * buffer are reported by perf as lost.
 *
 * Order: each CPU has its own perf buffer, so events of different CPUs reach
 * the daemon in no particular order.  They pass a reorder stage keyed on the
 * datapath's timestamp (ts_ns, bpf_ktime_get_ns) and leave it, in time order,
 * once FLOWS_REORDER_MS old; an event that arrives later than that (never seen
 * in practice: it is written right after its timestamp is taken) is shown at
 * once and counted as "late".  The BPF ring buffer would give this order for
 * free but needs 5.8 and a new type for the pinned map every plugin shares.
 *
 * Records are shaped as `hubble observe -o json` prints them: {"flow": {...},
 * "node_name", "time"}, and lost or suppressed events as {"lost_events": {...}}.
 *
 * An event carries ids; what they name (services, backends, this node, the
 * devices) is the daemon's and the load-balancing control plane's business,
 * asked through struct flows_names, so that this file includes neither.
 */
#ifndef BPFLB_CORE_FLOWS_H
#define BPFLB_CORE_FLOWS_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include <uv.h>

#include <bpflb/config.h>
#include <bpflb/plugin.h>

#define FLOWS_RING	  8192
#define FLOWS_PAGES	  64 /* perf buffer pages per CPU (256 KiB with 4 KiB pages) */
#define FLOWS_REORDER_MS  3  /* how long an event waits for older ones of other CPUs */
#define FLOWS_MAX_SVC_IDS 64 /* service-port ids one observe --service selects */

struct bpflb_flows;
struct bpflb_control;
struct bpflb_metrics;

/* What the ids of an event name, answered by whoever owns them (ctx). */
struct flows_names {
	/* "NAME/PORT" of a service-port id; NULL when unknown */
	const char *(*service)(void *ctx, uint32_t svc_id);
	/* address and port (network order) of a backend id; false when unknown */
	bool (*backend)(void *ctx, uint32_t backend_id, uint32_t *addr_be, uint16_t *port_be);
	/*
	 * The service-port ids of "NAME" or "NAME/PORT" (observe --service), at
	 * most max; -errno with err set when there is no such service.
	 */
	int (*service_ids)(void *ctx, const char *spec, uint32_t *ids, unsigned int max,
			   unsigned int *n, struct bpflb_err *err);
	/* this node's name */
	const char *(*node)(void *ctx);
	/* the name of a device bpflbd attached to; NULL: the kernel's name of ifindex */
	const char *(*device)(void *ctx, uint32_t ifindex);
	/* the policy and rule behind rule_id of an event of stage; false when unknown */
	bool (*rule)(void *ctx, uint8_t stage, uint32_t rule_id, struct bpflb_rule_desc *out);
};

struct flows_counters {
	uint64_t received;	 /* events read by the daemon */
	uint64_t lost;		 /* perf: not written, the per-CPU buffer was full */
	uint64_t sent;		 /* datapath: let through by the rate limit (bpflb_ev_rate) */
	uint64_t suppressed;	 /* datapath: held back by the rate limit */
	uint64_t client_dropped; /* not streamed to a client that read too slowly */
	uint64_t late;		 /* came after the reorder window: shown out of order */
	unsigned int subscribers;
};

/* A reader that reads nothing yet (NULL on ENOMEM); names and ctx must outlive it. */
struct bpflb_flows *flows_new(const struct flows_names *names, void *ctx);
/* Open bpflb_events and bpflb_ev_rate under pin_root and read them on loop. */
int flows_start(struct bpflb_flows *f, uv_loop_t *loop, const char *pin_root,
		struct bpflb_err *err);
/* Stop reading, end the streams, free f (NULL: nothing). */
void flows_close(struct bpflb_flows *f);
/* "observe" on ctl and the flow event counters on m. */
int flows_register(struct bpflb_flows *f, struct bpflb_control *ctl, struct bpflb_metrics *m,
		   struct bpflb_err *err);

void flows_counters(struct bpflb_flows *f, struct flows_counters *c);
/* {"sent":..,"suppressed":..,"lost":..,...} */
json_object *flows_stats_json(struct bpflb_flows *f);

#endif
