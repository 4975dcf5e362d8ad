// SPDX-License-Identifier: GPL-2.0-only
/*
 * Flow observation (flows.h): perf buffer reader on the loop, a ring of the
 * last events, subscribers.
 *
 * Nothing here can stall the loop for long: the datapath sends at most
 * events_per_sec per CPU, the perf buffers are bounded (what does not fit is
 * counted as lost by the kernel), and a client that reads too slowly loses
 * events (counted) rather than growing the daemon's memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/perf_event.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <bpflb/lb.h>

#include "log.h"
#include "ops/control.h"
#include "ops/flows.h"
#include "ops/metrics.h"
#include "ops/wire.h"

#define FLOWS_STATS_MS 1000
/*
 * The kernel wakes bpflbd once per FLOWS_WAKEUP events per CPU, not for each
 * one: a wakeup per new connection costs the connection itself several
 * microseconds on a small node (bench/run.sh, "flow events off").  A timer
 * drains whatever is pending instead: every FLOWS_FOLLOW_MS while someone
 * follows the stream (observe then lags by a few ms: this period plus the
 * reorder window), every FLOWS_IDLE_MS otherwise (only the history of
 * "observe --last" waits for it).
 */
#define FLOWS_WAKEUP	 64
#define FLOWS_FOLLOW_MS	 2
#define FLOWS_IDLE_MS	 100
#define FLOWS_REORDER_NS ((uint64_t)FLOWS_REORDER_MS * 1000000)
/* Events held for reordering; when full the oldest leaves early, still in order. */
#define FLOWS_PENDING 8192

/* observe --type: what an event is, as hubble names its event types */
enum {
	FLOWS_T_DROP = 1u << 0,	  /* verdict DROPPED or REJECTED */
	FLOWS_T_TRACE = 1u << 1,  /* forwarded or translated, not a policy's decision */
	FLOWS_T_POLICY = 1u << 2, /* a policy's decision (policy-verdict); with DROP for a deny */
};

struct flow_rec {
	struct bpflb_flow_event ev;
	int64_t wall_ns; /* CLOCK_REALTIME of ev.ts_ns */
	int cpu;	 /* whose perf buffer it came through */
};

/* An event waiting in the reorder stage. */
struct flow_pending {
	struct bpflb_flow_event ev;
	int cpu;
};

/* What observe selects; zero fields match everything. */
struct flows_filter {
	uint32_t svc_ids[FLOWS_MAX_SVC_IDS]; /* service-port ids of --service */
	unsigned int nsvc;
	bool by_service;
	uint32_t addr; /* network order; source, destination or translation (as ct list) */
	bool by_addr;
	uint32_t ip, from_ip, to_ip; /* network order; ip: either side */
	bool by_ip, by_from_ip, by_to_ip;
	uint16_t port, from_port, to_port; /* host order; 0: any.  port: either side */
	uint8_t proto;
	uint8_t verdict;
	unsigned int types;	    /* FLOWS_T_*; 0: every type */
	int64_t since_ns, until_ns; /* wall clock, unix ns; 0: open */
};

struct flows_sub {
	struct control_conn *c;
	struct flows_filter flt;
	uint64_t dropped;
	uint64_t last_suppressed, last_lost, last_dropped;
	struct flows_sub *next;
};

struct bpflb_flows {
	const struct flows_names *names;
	void *names_ctx;
	int events_fd, rate_fd;
	struct perf_buffer *pb;
	uv_poll_t *poll;
	uv_timer_t *timer;
	uv_timer_t *drain;
	struct flow_rec *ring;
	uint64_t head; /* events ever pushed; ring index head % FLOWS_RING */
	uint64_t lost, client_dropped, late;
	/* the reorder stage: a min-heap on ts_ns */
	struct flow_pending *pending;
	unsigned int npending;
	uint64_t released_ts;  /* ts_ns of the newest event shown */
	int64_t released_wall; /* its wall time: shown times never go back */
	struct flows_sub *subs;
	unsigned int nsubs;
};

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned int event_types(const struct bpflb_flow_event *e)
{
	unsigned int t = 0;

	if (e->verdict == BPFLB_VERDICT_DROPPED || e->verdict == BPFLB_VERDICT_REJECTED)
		t |= FLOWS_T_DROP;
	if (e->reason == BPFLB_DROP_POLICY)
		t |= FLOWS_T_POLICY;
	return t ? t : FLOWS_T_TRACE;
}

static bool flt_match(const struct flows_filter *f, const struct flow_rec *r)
{
	const struct bpflb_flow_event *e = &r->ev;
	uint16_t sport = ntohs(e->sport), dport = ntohs(e->dport);

	if (f->verdict && e->verdict != f->verdict)
		return false;
	if (f->proto && e->proto != f->proto)
		return false;
	if (f->types && !(f->types & event_types(e)))
		return false;
	if (f->by_addr && e->saddr != f->addr && e->daddr != f->addr && e->xaddr != f->addr)
		return false;
	if (f->by_ip && e->saddr != f->ip && e->daddr != f->ip)
		return false;
	if ((f->by_from_ip && e->saddr != f->from_ip) || (f->by_to_ip && e->daddr != f->to_ip))
		return false;
	if (f->port && sport != f->port && dport != f->port)
		return false;
	if ((f->from_port && sport != f->from_port) || (f->to_port && dport != f->to_port))
		return false;
	if ((f->since_ns && r->wall_ns < f->since_ns) || (f->until_ns && r->wall_ns > f->until_ns))
		return false;
	if (f->by_service) {
		bool hit = false;

		for (unsigned int i = 0; i < f->nsvc; i++)
			hit |= e->svc_id == f->svc_ids[i];
		if (!hit)
			return false;
	}
	return true;
}

static const char *ifname(struct bpflb_flows *f, uint32_t ifindex, char *buf)
{
	const char *dev = f->names->device(f->names_ctx, ifindex);

	if (dev)
		return dev;
	if (ifindex && if_indextoname(ifindex, buf))
		return buf;
	snprintf(buf, IF_NAMESIZE, "if%u", ifindex);
	return buf;
}

/* RFC 3339 with nanoseconds, UTC: hubble's "time" */
static const char *rfc3339(int64_t wall_ns, char *b, size_t len)
{
	time_t secs = (time_t)(wall_ns / 1000000000);
	struct tm tm;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(b, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(b + n, len - n, ".%09ldZ", (long)(wall_ns % 1000000000));
	return b;
}

/*
 * drop_reason_desc: Cilium's name where Cilium drops for the same cause (so
 * that dashboards built on hubble match), bpflb's own otherwise.
 */
static const char *drop_reason_desc(uint8_t reason)
{
	static const char *const names[BPFLB_DROP_MAX] = {
	    [BPFLB_DROP_NO_BACKEND] = "SERVICE_BACKEND_NOT_FOUND",
	    [BPFLB_DROP_NO_LOCAL_BACKEND] = "NO_LOCAL_BACKEND",
	    [BPFLB_DROP_SNAT_EXHAUSTED] = "SNAT_PORT_EXHAUSTED",
	    [BPFLB_DROP_BACKEND_MAINT] = "BACKEND_MAINTENANCE",
	    [BPFLB_DROP_BAD_PACKET] = "INVALID_PACKET_DROPPED",
	    [BPFLB_DROP_CT_FULL] = "CT_MAP_INSERTION_FAILED",
	    [BPFLB_DROP_FIB] = "FIB_LOOKUP_FAILED",
	    [BPFLB_DROP_POLICY] = "POLICY_DENIED",
	    [BPFLB_DROP_NO_GATEWAY] = "NO_EGRESS_GATEWAY",
	    [BPFLB_DROP_MTU] = "FRAG_NEEDED",
	    [BPFLB_DROP_NAT_NO_MAPPING] = "NAT_NO_MAPPING",
	};

	return reason < BPFLB_DROP_MAX && names[reason] ? names[reason] : "DROP_REASON_UNKNOWN";
}

static json_object *l4_json(const struct bpflb_flow_event *e, char *summary, size_t len)
{
	static const char *const flag_names[8] = {"FIN", "SYN", "RST", "PSH",
						  "ACK", "URG", "ECE", "CWR"};
	json_object *l4 = json_object_new_object(), *p = json_object_new_object();
	size_t n;

	switch (e->proto) {
	case IPPROTO_TCP: {
		json_object *fl = json_object_new_object();

		json_object_object_add(p, "source_port", json_object_new_int(ntohs(e->sport)));
		json_object_object_add(p, "destination_port", json_object_new_int(ntohs(e->dport)));
		n = (size_t)snprintf(summary, len, "TCP Flags:");
		for (int i = 0; i < 8; i++) {
			if (!(e->tcp_flags & (1u << i)))
				continue;
			json_object_object_add(fl, flag_names[i], json_object_new_boolean(true));
			if (n < len)
				n += (size_t)snprintf(summary + n, len - n, "%s %s",
						      n > strlen("TCP Flags:") ? "," : "",
						      flag_names[i]);
		}
		json_object_object_add(p, "flags", fl);
		json_object_object_add(l4, "TCP", p);
		break;
	}
	case IPPROTO_UDP:
		json_object_object_add(p, "source_port", json_object_new_int(ntohs(e->sport)));
		json_object_object_add(p, "destination_port", json_object_new_int(ntohs(e->dport)));
		json_object_object_add(l4, "UDP", p);
		snprintf(summary, len, "UDP");
		break;
	case IPPROTO_ICMP:
		json_object_object_add(l4, "ICMPv4", p);
		snprintf(summary, len, "ICMPv4");
		break;
	default:
		json_object_put(p);
		snprintf(summary, len, "IPv4 protocol %u", e->proto);
		break;
	}
	return l4;
}

/* [{"name": POLICY, "kind": ...}]: hubble's list of policies behind a verdict */
static json_object *policy_list(const struct bpflb_rule_desc *rd)
{
	json_object *a = json_object_new_array(), *p = json_object_new_object();

	json_object_object_add(p, "name", json_object_new_string(rd->policy));
	json_object_object_add(p, "kind", json_object_new_string("CiliumClusterwideNetworkPolicy"));
	json_object_array_add(a, p);
	return a;
}

static const char *rule_action_name(enum bpflb_rule_action a)
{
	return a == BPFLB_RULE_ALLOW ? "allow" : a == BPFLB_RULE_DENY ? "deny" : "default-deny";
}

/* The policy's names in hubble's fields, the rule in bpflb's. */
static void add_policy(struct bpflb_flows *f, const struct bpflb_flow_event *e, json_object *flow,
		       json_object *ext)
{
	struct bpflb_rule_desc rd;
	json_object *p;
	char key[32];

	if (!e->rule_id || !f->names->rule ||
	    !f->names->rule(f->names_ctx, e->stage, e->rule_id, &rd))
		return;
	p = json_object_new_object();
	json_object_object_add(p, "name", json_object_new_string(rd.policy));
	json_object_object_add(
	    p, "rule", rd.index < 0 ? json_object_new_null() : json_object_new_int(rd.index));
	json_object_object_add(p, "direction",
			       json_object_new_string(rd.ingress ? "ingress" : "egress"));
	json_object_object_add(p, "action", json_object_new_string(rule_action_name(rd.action)));
	json_object_object_add(ext, "policy", p);
	/*
	 * A deny, or a default deny (the policy selects the subject and no
	 * rule allows), names its policy under *_denied_by whether enforced
	 * (DROPPED) or only audited (AUDIT): which policy would have to change.
	 */
	snprintf(key, sizeof(key), "%s_%s_by", rd.ingress ? "ingress" : "egress",
		 rd.action == BPFLB_RULE_ALLOW ? "allowed" : "denied");
	json_object_object_add(flow, key, policy_list(&rd));
}

/* Is the event about a reply of a flow (known from the stage that reported it)? */
static bool event_is_reply(const struct bpflb_flow_event *e)
{
	/* reverse NAT of the backend's reply; the return traffic of an egress gateway */
	return e->verdict == BPFLB_VERDICT_FORWARDED &&
	       (e->stage == BPFLB_STAGE_OUT_LB || e->stage == BPFLB_STAGE_IN_EGRESS);
}

/* One record as `hubble observe -o json` prints it. */
static json_object *event_json(struct bpflb_flows *f, const struct flow_rec *r)
{
	const struct bpflb_flow_event *e = &r->ev;
	json_object *rec = json_object_new_object(), *o = json_object_new_object();
	json_object *ip = json_object_new_object(), *x, *ext = json_object_new_object();
	const char *svc = e->svc_id ? f->names->service(f->names_ctx, e->svc_id) : NULL;
	const char *node = f->names->node(f->names_ctx);
	unsigned int types = event_types(e);
	bool drop = types & FLOWS_T_DROP;
	char t[48], b[64], ib[IF_NAMESIZE + 8], summary[96];
	uint32_t be_addr;
	uint16_t be_port;

	rfc3339(r->wall_ns, t, sizeof(t));
	json_object_object_add(o, "time", json_object_new_string(t));
	/* hubble has no REJECTED: the packet did not pass, the reason says why */
	json_object_object_add(o, "verdict",
			       json_object_new_string(e->verdict == BPFLB_VERDICT_REJECTED
							  ? "DROPPED"
							  : wire_verdict_name(e->verdict)));
	if (drop)
		json_object_object_add(o, "drop_reason_desc",
				       json_object_new_string(drop_reason_desc(e->reason)));
	json_object_object_add(ip, "source",
			       json_object_new_string(wire_addrport(e->saddr, 0, b, sizeof(b))));
	json_object_object_add(ip, "destination",
			       json_object_new_string(wire_addrport(e->daddr, 0, b, sizeof(b))));
	json_object_object_add(ip, "ipVersion", json_object_new_string("IPv4"));
	json_object_object_add(o, "IP", ip);
	json_object_object_add(o, "l4", l4_json(e, summary, sizeof(summary)));
	json_object_object_add(o, "Type", json_object_new_string("L3_L4"));
	json_object_object_add(o, "node_name", json_object_new_string(node));
	/* hubble's monitor types: 1 drop (sub_type: the reason), 4 trace, 5 policy verdict */
	x = json_object_new_object();
	json_object_object_add(x, "type",
			       json_object_new_int(drop			    ? 1
						   : types & FLOWS_T_POLICY ? 5
									    : 4));
	json_object_object_add(x, "sub_type", json_object_new_int(drop ? e->reason : 0));
	json_object_object_add(o, "event_type", x);
	json_object_object_add(
	    o, "traffic_direction",
	    json_object_new_string(e->stage < BPFLB_STAGE_OUT_FIRST ? "INGRESS" : "EGRESS"));
	json_object_object_add(o, "is_reply", json_object_new_boolean(event_is_reply(e)));
	x = json_object_new_object();
	json_object_object_add(x, "index", json_object_new_int64(e->ifindex));
	json_object_object_add(x, "name", json_object_new_string(ifname(f, e->ifindex, ib)));
	json_object_object_add(o, "interface", x);
	if (svc) {
		x = json_object_new_object();
		json_object_object_add(x, "name", json_object_new_string(svc));
		json_object_object_add(o, "destination_service", x);
	}
	add_policy(f, e, o, ext);
	json_object_object_add(o, "Summary", json_object_new_string(summary));

	/* What hubble has no field for: the load balancer's side of the flow. */
	json_object_object_add(ext, "ts_ns", json_object_new_uint64(e->ts_ns));
	json_object_object_add(ext, "stage", json_object_new_int(e->stage));
	json_object_object_add(ext, "cpu", json_object_new_int(r->cpu));
	json_object_object_add(ext, "verdict",
			       json_object_new_string(wire_verdict_name(e->verdict)));
	json_object_object_add(ext, "reason",
			       drop || e->reason
				   ? json_object_new_string(wire_drop_reason_name(e->reason))
				   : json_object_new_null());
	json_object_object_add(ext, "service",
			       svc ? json_object_new_string(svc) : json_object_new_null());
	json_object_object_add(ext, "svc_id", json_object_new_int64(e->svc_id));
	json_object_object_add(ext, "backend_id", json_object_new_int64(e->backend_id));
	if (e->backend_id && f->names->backend(f->names_ctx, e->backend_id, &be_addr, &be_port))
		json_object_object_add(
		    ext, "backend",
		    json_object_new_string(wire_addrport(be_addr, ntohs(be_port), b, sizeof(b))));
	else
		json_object_object_add(ext, "backend", json_object_new_null());
	json_object_object_add(ext, "translation", json_object_new_string(wire_fwd_name(e->fwd)));
	json_object_object_add(ext, "xlate",
			       e->xaddr || e->xport ? json_object_new_string(wire_addrport(
							  e->xaddr, ntohs(e->xport), b, sizeof(b)))
						    : json_object_new_null());
	if (e->rule_id)
		json_object_object_add(ext, "rule_id", json_object_new_int64(e->rule_id));
	json_object_object_add(o, "bpflb", ext);

	json_object_object_add(rec, "flow", o);
	json_object_object_add(rec, "node_name", json_object_new_string(node));
	json_object_object_add(rec, "time", json_object_new_string(t));
	return rec;
}

/* {"lost_events": {"source", "num_events_lost"}, ...}: hubble's LostEvent */
static json_object *lost_json(struct bpflb_flows *f, const char *source, uint64_t n)
{
	json_object *rec = json_object_new_object(), *l = json_object_new_object();
	char t[48];

	json_object_object_add(l, "source", json_object_new_string(source));
	json_object_object_add(l, "num_events_lost", json_object_new_uint64(n));
	json_object_object_add(rec, "lost_events", l);
	json_object_object_add(rec, "node_name",
			       json_object_new_string(f->names->node(f->names_ctx)));
	json_object_object_add(
	    rec, "time", json_object_new_string(rfc3339(clock_ns(CLOCK_REALTIME), t, sizeof(t))));
	return rec;
}

static void rate_sum(struct bpflb_flows *f, uint64_t *sent, uint64_t *suppressed)
{
	int ncpu = libbpf_num_possible_cpus();
	struct bpflb_ev_rate *v;
	__u32 zero = 0;

	*sent = *suppressed = 0;
	if (f->rate_fd < 0 || ncpu <= 0)
		return;
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!v)
		return;
	if (!bpf_map_lookup_elem(f->rate_fd, &zero, v)) {
		for (int c = 0; c < ncpu; c++) {
			*sent += v[c].sent;
			*suppressed += v[c].suppressed;
		}
	}
	free(v);
}

void flows_counters(struct bpflb_flows *f, struct flows_counters *c)
{
	memset(c, 0, sizeof(*c));
	if (!f)
		return;
	c->received = f->head;
	c->lost = f->lost;
	c->client_dropped = f->client_dropped;
	c->late = f->late;
	c->subscribers = f->nsubs;
	rate_sum(f, &c->sent, &c->suppressed);
}

json_object *flows_stats_json(struct bpflb_flows *f)
{
	struct flows_counters c;
	json_object *o = json_object_new_object();

	flows_counters(f, &c);
	json_object_object_add(o, "received", json_object_new_uint64(c.received));
	json_object_object_add(o, "sent", json_object_new_uint64(c.sent));
	json_object_object_add(o, "suppressed", json_object_new_uint64(c.suppressed));
	json_object_object_add(o, "lost", json_object_new_uint64(c.lost));
	json_object_object_add(o, "client_dropped", json_object_new_uint64(c.client_dropped));
	json_object_object_add(o, "late", json_object_new_uint64(c.late));
	json_object_object_add(o, "subscribers", json_object_new_int(c.subscribers));
	json_object_object_add(o, "ring", json_object_new_int(FLOWS_RING));
	return o;
}

static void sub_send(struct bpflb_flows *f, struct flows_sub *s, json_object *line)
{
	if (control_conn_send(s->c, line) == -ENOBUFS) {
		s->dropped++;
		f->client_dropped++;
	}
}

/* Show an event: into the history, to the followers whose filter it passes. */
static void flows_push(struct bpflb_flows *f, const struct flow_pending *p, int64_t wall_off)
{
	struct flow_rec *r = &f->ring[f->head++ % FLOWS_RING];
	uint64_t ts = p->ev.ts_ns;

	r->ev = p->ev;
	r->cpu = p->cpu;
	/*
	 * The offset between the clocks moves (NTP, and the two clock reads of
	 * each drain): an event later than the previous one keeps a later or
	 * equal wall time, so the times shown never go back.
	 */
	r->wall_ns = (int64_t)ts + wall_off;
	if (ts >= f->released_ts) {
		if (r->wall_ns < f->released_wall)
			r->wall_ns = f->released_wall;
		f->released_ts = ts;
		f->released_wall = r->wall_ns;
	}
	for (struct flows_sub *s = f->subs; s; s = s->next) {
		json_object *line;

		if (!flt_match(&s->flt, r))
			continue;
		line = event_json(f, r);
		sub_send(f, s, line);
		json_object_put(line);
	}
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC (bpf_ktime_get_ns) now */
static int64_t wall_offset(void)
{
	int64_t mono = clock_ns(CLOCK_MONOTONIC), real = clock_ns(CLOCK_REALTIME);

	return real - mono;
}

/* --- the reorder stage: a binary min-heap of pending events on ts_ns --- */

static void heap_pop(struct bpflb_flows *f, struct flow_pending *out)
{
	struct flow_pending *h = f->pending, last;
	unsigned int i = 0, n;

	*out = h[0];
	last = h[--f->npending];
	n = f->npending;
	while (2 * i + 1 < n) {
		unsigned int c = 2 * i + 1;

		if (c + 1 < n && h[c + 1].ev.ts_ns < h[c].ev.ts_ns)
			c++;
		if (last.ev.ts_ns <= h[c].ev.ts_ns)
			break;
		h[i] = h[c];
		i = c;
	}
	if (n)
		h[i] = last;
}

static void heap_push(struct bpflb_flows *f, const struct flow_pending *p)
{
	struct flow_pending *h = f->pending;
	unsigned int i = f->npending++;

	while (i && h[(i - 1) / 2].ev.ts_ns > p->ev.ts_ns) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = *p;
}

/* Show, in time order, the pending events older than horizon (ktime ns). */
static void flows_release(struct bpflb_flows *f, uint64_t horizon)
{
	int64_t off = wall_offset();
	struct flow_pending p;

	while (f->npending && f->pending[0].ev.ts_ns <= horizon) {
		heap_pop(f, &p);
		flows_push(f, &p, off);
	}
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct bpflb_flows *f = ctx;
	struct flow_pending p = {.cpu = cpu};

	if (size < sizeof(p.ev))
		return;
	memcpy(&p.ev, data, sizeof(p.ev));
	if (p.ev.ts_ns < f->released_ts) {
		/* newer events are out already: show it now rather than never */
		f->late++;
		flows_push(f, &p, wall_offset());
		return;
	}
	if (f->npending == FLOWS_PENDING) {
		struct flow_pending old;

		/* full: the oldest leaves early, which keeps the order unless a
		 * still older one is on its way */
		heap_pop(f, &old);
		flows_push(f, &old, wall_offset());
	}
	heap_push(f, &p);
}

static void on_lost(void *ctx, int cpu, __u64 cnt)
{
	((struct bpflb_flows *)ctx)->lost += cnt;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct bpflb_flows *f = p->data;
	int ret;

	if (status < 0)
		return;
	ret = perf_buffer__consume(f->pb);
	if (ret < 0 && ret != -EINTR)
		pr_debug("flow events: perf buffer: %s", strerror(-ret));
	flows_release(f, (uint64_t)clock_ns(CLOCK_MONOTONIC) - FLOWS_REORDER_NS);
}

/* Records of the raw perf buffer: samples carry a flow event, or a loss count. */
static enum bpf_perf_event_ret on_record(void *ctx, int cpu, struct perf_event_header *h)
{
	if (h->type == PERF_RECORD_SAMPLE) {
		struct {
			struct perf_event_header h;
			__u32 size;
			char data[];
		} *s = (void *)h;

		on_sample(ctx, cpu, s->data, s->size);
	} else if (h->type == PERF_RECORD_LOST) {
		struct {
			struct perf_event_header h;
			__u64 id;
			__u64 lost;
		} *l = (void *)h;

		on_lost(ctx, cpu, l->lost);
	}
	return LIBBPF_PERF_EVENT_CONT;
}

static void on_drain(uv_timer_t *t)
{
	struct bpflb_flows *f = t->data;

	perf_buffer__consume(f->pb);
	flows_release(f, (uint64_t)clock_ns(CLOCK_MONOTONIC) - FLOWS_REORDER_NS);
}

/* Drain often while someone follows the stream, rarely otherwise. */
static void drain_period(struct bpflb_flows *f)
{
	uint64_t ms = f->subs ? FLOWS_FOLLOW_MS : FLOWS_IDLE_MS;

	if (f->drain && uv_timer_get_repeat(f->drain) != ms)
		uv_timer_start(f->drain, on_drain, ms, ms);
}

/* Tell followers what they did not see, when that grew: hubble's LostEvent records. */
static void on_stats(uv_timer_t *t)
{
	struct bpflb_flows *f = t->data;
	uint64_t sent, suppressed;

	if (!f->subs)
		return;
	rate_sum(f, &sent, &suppressed);
	for (struct flows_sub *s = f->subs; s; s = s->next) {
		const struct {
			const char *source;
			uint64_t now, *last;
		} lost[] = {
		    /* the datapath's rate limit ([lb] events_per_sec) */
		    {"BPFLB_RATE_LIMIT", suppressed, &s->last_suppressed},
		    {"PERF_EVENT_RING_BUFFER", f->lost, &s->last_lost},
		    /* this client read too slowly */
		    {"OBSERVER_EVENTS_QUEUE", s->dropped, &s->last_dropped},
		};

		for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++) {
			json_object *line;

			if (lost[i].now <= *lost[i].last)
				continue;
			line = lost_json(f, lost[i].source, lost[i].now - *lost[i].last);
			*lost[i].last = lost[i].now;
			sub_send(f, s, line);
			json_object_put(line);
		}
	}
}

static json_object *flows_last(struct bpflb_flows *f, const struct flows_filter *flt,
			       unsigned int n)
{
	json_object *arr = json_object_new_array();
	uint64_t first = f->head > FLOWS_RING ? f->head - FLOWS_RING : 0, i, start;
	unsigned int found = 0;

	if (!n)
		return arr;
	/* walk back to find where the last n matches begin, then forward */
	for (i = f->head, start = f->head; i > first && found < n; i--) {
		if (flt_match(flt, &f->ring[(i - 1) % FLOWS_RING])) {
			found++;
			start = i - 1;
		}
	}
	for (i = start; found && i < f->head; i++)
		if (flt_match(flt, &f->ring[i % FLOWS_RING]))
			json_object_array_add(arr, event_json(f, &f->ring[i % FLOWS_RING]));
	return arr;
}

static int flows_subscribe(struct bpflb_flows *f, struct control_conn *c,
			   const struct flows_filter *flt)
{
	struct flows_sub *s = calloc(1, sizeof(*s));
	uint64_t sent;

	if (!s)
		return -ENOMEM;
	s->c = c;
	s->flt = *flt;
	rate_sum(f, &sent, &s->last_suppressed);
	s->last_lost = f->lost;
	s->next = f->subs;
	f->subs = s;
	f->nsubs++;
	drain_period(f);
	return 0;
}

static void flows_unsubscribe(struct bpflb_flows *f, struct control_conn *c)
{
	for (struct flows_sub **ps = f ? &f->subs : NULL; ps && *ps;) {
		struct flows_sub *s = *ps;

		if (s->c != c) {
			ps = &s->next;
			continue;
		}
		*ps = s->next;
		free(s);
		f->nsubs--;
	}
	if (f)
		drain_period(f);
}

static int open_pin(const char *root, const char *name)
{
	char path[4096 + 32];

	snprintf(path, sizeof(path), "%s/%s", root, name);
	return bpf_obj_get(path);
}

static void handle_closed(uv_handle_t *h)
{
	free(h);
}

struct bpflb_flows *flows_new(const struct flows_names *names, void *ctx)
{
	struct bpflb_flows *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->names = names;
	f->names_ctx = ctx;
	f->events_fd = f->rate_fd = -1;
	return f;
}

int flows_start(struct bpflb_flows *f, uv_loop_t *loop, const char *pin_root, struct bpflb_err *err)
{
	int ret;

	if (f->pb)
		return bpflb_err_set(err, "flow events are read already"), -EALREADY;
	f->ring = calloc(FLOWS_RING, sizeof(*f->ring));
	f->pending = calloc(FLOWS_PENDING, sizeof(*f->pending));
	if (!f->ring || !f->pending) {
		ret = -ENOMEM;
		goto fail;
	}
	f->rate_fd = open_pin(pin_root, "bpflb_ev_rate");
	f->events_fd = open_pin(pin_root, "bpflb_events");
	if (f->events_fd < 0) {
		ret = -errno;
		bpflb_err_set(err, "cannot open %s/bpflb_events: %s", pin_root, strerror(-ret));
		goto fail;
	}
	/* Installs this process's perf events into the array, replacing a
	 * predecessor's (a restarted daemon takes the stream over). */
	struct perf_event_attr attr = {
	    .type = PERF_TYPE_SOFTWARE,
	    .config = PERF_COUNT_SW_BPF_OUTPUT,
	    .sample_type = PERF_SAMPLE_RAW,
	    .sample_period = 1,
	    .wakeup_events = FLOWS_WAKEUP,
	};
	f->pb = perf_buffer__new_raw(f->events_fd, FLOWS_PAGES, &attr, on_record, f, NULL);
	if (!f->pb) {
		ret = -errno;
		bpflb_err_set(err, "cannot read flow events from bpflb_events: %s", strerror(-ret));
		goto fail;
	}
	f->poll = calloc(1, sizeof(*f->poll));
	f->timer = calloc(1, sizeof(*f->timer));
	f->drain = calloc(1, sizeof(*f->drain));
	if (!f->poll || !f->timer || !f->drain) {
		ret = -ENOMEM;
		goto fail;
	}
	uv_poll_init(loop, f->poll, perf_buffer__epoll_fd(f->pb));
	f->poll->data = f;
	uv_poll_start(f->poll, UV_READABLE, on_readable);
	uv_timer_init(loop, f->timer);
	f->timer->data = f;
	uv_timer_start(f->timer, on_stats, FLOWS_STATS_MS, FLOWS_STATS_MS);
	uv_timer_init(loop, f->drain);
	f->drain->data = f;
	uv_timer_start(f->drain, on_drain, FLOWS_IDLE_MS, FLOWS_IDLE_MS);
	return 0;
fail:
	/* back to reading nothing: observe says so, the counters stay 0 */
	free(f->poll);
	free(f->timer);
	free(f->drain);
	f->poll = NULL;
	f->timer = NULL;
	f->drain = NULL;
	perf_buffer__free(f->pb);
	f->pb = NULL;
	if (f->events_fd >= 0)
		close(f->events_fd);
	if (f->rate_fd >= 0)
		close(f->rate_fd);
	f->events_fd = f->rate_fd = -1;
	free(f->ring);
	f->ring = NULL;
	free(f->pending);
	f->pending = NULL;
	return ret;
}

void flows_close(struct bpflb_flows *f)
{
	if (!f)
		return;
	if (f->poll) {
		uv_poll_stop(f->poll);
		uv_close((uv_handle_t *)f->poll, handle_closed);
	}
	if (f->timer) {
		uv_timer_stop(f->timer);
		uv_close((uv_handle_t *)f->timer, handle_closed);
	}
	if (f->drain) {
		uv_timer_stop(f->drain);
		uv_close((uv_handle_t *)f->drain, handle_closed);
		f->drain = NULL; /* unsubscribing below must not restart it */
	}
	perf_buffer__free(f->pb);
	while (f->subs)
		flows_unsubscribe(f, f->subs->c);
	if (f->events_fd >= 0)
		close(f->events_fd);
	if (f->rate_fd >= 0)
		close(f->rate_fd);
	free(f->ring);
	free(f->pending);
	free(f);
}

/* --- observe and the counters ------------------------------------------------ */

static void sub_closed(void *ctx, struct control_conn *c)
{
	flows_unsubscribe(ctx, c);
}

/* An IPv4 argument into *addr (network order); *set tells whether it was given. */
static int arg_ip(json_object *args, const char *key, uint32_t *addr, bool *set,
		  struct bpflb_err *err)
{
	const char *v;
	int ret = control_arg_str(args, key, false, &v, err);

	if (ret || !v)
		return ret;
	if (bpflb_parse_ipv4(v, addr))
		return bpflb_err_set(err, "%s '%s' is not an IPv4 address", key, v), -EINVAL;
	*set = true;
	return 0;
}

static int arg_port(json_object *args, const char *key, uint16_t *port, struct bpflb_err *err)
{
	uint64_t v = 0;
	int ret = control_arg_uint(args, key, 65535, &v, err);

	if (!ret && json_object_object_get_ex(args, key, NULL) && !v)
		return bpflb_err_set(err, "%s must be 1..65535", key), -EINVAL;
	*port = (uint16_t)v;
	return ret;
}

/* "types": ["drop", "trace", "policy-verdict"] */
static int arg_types(json_object *args, unsigned int *types, struct bpflb_err *err)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} names[] = {
	    {"drop", FLOWS_T_DROP}, {"trace", FLOWS_T_TRACE}, {"policy-verdict", FLOWS_T_POLICY}};
	json_object *a;

	*types = 0;
	if (!args || !json_object_object_get_ex(args, "types", &a))
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return bpflb_err_set(err, "argument 'types' must be an array of strings"), -EINVAL;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *v = json_object_array_get_idx(a, i);
		const char *s =
		    json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
		size_t k;

		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (!strcmp(s, names[k].name))
				break;
		if (k == sizeof(names) / sizeof(names[0]))
			return bpflb_err_set(err, "type '%s' is not drop, trace or policy-verdict",
					     s),
			       -EINVAL;
		*types |= names[k].bit;
	}
	return 0;
}

/*
 * observe {[service], [addr], [proto], [limit], [verdict], [ip], [from_ip],
 * [to_ip], [port], [from_port], [to_port], [types], [since], [until] (unix
 * ns), [last], [follow]}: filters run here, so a follower of a few flows on a
 * busy node is not sent the rest.  The selection reads as ct.list's
 * (bpflbctl sends the same options, limit included, which observe checks and
 * does not use).
 */
static int h_observe(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		     struct bpflb_err *err)
{
	struct bpflb_flows *f = ctx;
	struct flows_filter flt = {0};
	const char *svc, *addr, *proto, *verdict;
	uint64_t limit = 0, last = 0, since = 0, until = 0;
	bool follow = false;
	int ret;

	if ((ret = control_arg_str(args, "service", false, &svc, err)) ||
	    (ret = control_arg_str(args, "addr", false, &addr, err)) ||
	    (ret = control_arg_str(args, "proto", false, &proto, err)) ||
	    (ret = control_arg_uint(args, "limit", UINT32_MAX, &limit, err)))
		return ret;
	if (svc) {
		ret = f->names->service_ids(f->names_ctx, svc, flt.svc_ids, FLOWS_MAX_SVC_IDS,
					    &flt.nsvc, err);
		if (ret)
			return ret;
		flt.by_service = true;
	}
	if (addr) {
		if (bpflb_parse_ipv4(addr, &flt.addr))
			return bpflb_err_set(err, "addr '%s' is not an IPv4 address", addr),
			       -EINVAL;
		flt.by_addr = true;
	}
	if (proto && wire_proto_parse(proto, &flt.proto))
		return bpflb_err_set(err, "proto '%s' is not tcp, udp or icmp", proto), -EINVAL;
	if ((ret = control_arg_str(args, "verdict", false, &verdict, err)) ||
	    (ret = control_arg_uint(args, "last", FLOWS_RING, &last, err)) ||
	    (ret = control_arg_bool(args, "follow", &follow, err)) ||
	    (ret = arg_ip(args, "ip", &flt.ip, &flt.by_ip, err)) ||
	    (ret = arg_ip(args, "from_ip", &flt.from_ip, &flt.by_from_ip, err)) ||
	    (ret = arg_ip(args, "to_ip", &flt.to_ip, &flt.by_to_ip, err)) ||
	    (ret = arg_port(args, "port", &flt.port, err)) ||
	    (ret = arg_port(args, "from_port", &flt.from_port, err)) ||
	    (ret = arg_port(args, "to_port", &flt.to_port, err)) ||
	    (ret = arg_types(args, &flt.types, err)) ||
	    (ret = control_arg_uint(args, "since", INT64_MAX, &since, err)) ||
	    (ret = control_arg_uint(args, "until", INT64_MAX, &until, err)))
		return ret;
	if (verdict && wire_verdict_parse(verdict, &flt.verdict))
		return bpflb_err_set(err,
				     "verdict '%s' is not FORWARDED, DROPPED, REJECTED or AUDIT",
				     verdict),
		       -EINVAL;
	flt.since_ns = (int64_t)since;
	flt.until_ns = (int64_t)until;
	if (until && since > until)
		return bpflb_err_set(err, "since is after until"), -EINVAL;
	if (!f->pb)
		return bpflb_err_set(err, "flow events are not being read"), -EAGAIN;
	if (follow && !c)
		return bpflb_err_set(err, "follow needs a connection"), -EINVAL;
	/* the history up to the reorder window, not up to the last idle drain */
	perf_buffer__consume(f->pb);
	flows_release(f, (uint64_t)clock_ns(CLOCK_MONOTONIC) - FLOWS_REORDER_NS);
	*data = json_object_new_object();
	json_object_object_add(*data, "events", flows_last(f, &flt, (unsigned int)last));
	json_object_object_add(*data, "stats", flows_stats_json(f));
	json_object_object_add(*data, "follow", json_object_new_boolean(follow));
	if (follow) {
		ret = flows_subscribe(f, c, &flt);
		if (ret) {
			json_object_put(*data);
			*data = NULL;
			return ret;
		}
		control_conn_stream(c, sub_closed, f);
	}
	return 0;
}

static const struct bpflb_control_cmd flows_cmds[] = {
    {"observe", h_observe,
     "flow events: {[service], [verdict], [addr], [proto], [ip], [from_ip], [to_ip], [port], "
     "[from_port], [to_port], [types], [since], [until], [last], [follow]}"},
    {NULL},
};

/*
 * Metrics (all prefixed bpflb_):
 *   flow_events_sent_total                     counter, datapath, let through the rate limit
 *   flow_events_suppressed_total               counter, datapath, held back by the rate limit
 *   flow_events_lost_total                     counter, perf buffer full
 *   flow_events_received_total                 counter, read by the daemon
 *   flow_events_client_dropped_total           counter, not streamed to slow observers
 *   flow_events_late_total                     counter, came after the reorder window
 */
static void flows_metrics(FILE *out, void *ctx)
{
	struct flows_counters fc;

	flows_counters(ctx, &fc);
	bpflb_metrics_head(out, "bpflb_flow_events_sent_total", "counter",
			   "Flow events the datapath let through its rate limit (a pinned count: "
			   "survives bpflbd restarts).");
	fprintf(out, "bpflb_flow_events_sent_total %llu\n", (unsigned long long)fc.sent);
	bpflb_metrics_head(out, "bpflb_flow_events_suppressed_total", "counter",
			   "Flow events the datapath held back ([lb] events_per_sec; pinned: "
			   "survives bpflbd restarts).");
	fprintf(out, "bpflb_flow_events_suppressed_total %llu\n",
		(unsigned long long)fc.suppressed);
	bpflb_metrics_head(out, "bpflb_flow_events_lost_total", "counter",
			   "Flow events lost because a perf buffer was full (since bpflbd started).");
	fprintf(out, "bpflb_flow_events_lost_total %llu\n", (unsigned long long)fc.lost);
	bpflb_metrics_head(out, "bpflb_flow_events_received_total", "counter",
			   "Flow events read by bpflbd (since it started).");
	fprintf(out, "bpflb_flow_events_received_total %llu\n", (unsigned long long)fc.received);
	bpflb_metrics_head(out, "bpflb_flow_events_client_dropped_total", "counter",
			   "Flow events not streamed to observers that read too slowly.");
	fprintf(out, "bpflb_flow_events_client_dropped_total %llu\n",
		(unsigned long long)fc.client_dropped);
	bpflb_metrics_head(out, "bpflb_flow_events_late_total", "counter",
			   "Flow events that came after the reorder window, shown out of order.");
	fprintf(out, "bpflb_flow_events_late_total %llu\n", (unsigned long long)fc.late);
}

int flows_register(struct bpflb_flows *f, struct bpflb_control *ctl, struct bpflb_metrics *m,
		   struct bpflb_err *err)
{
	int ret = bpflb_control_register(ctl, flows_cmds, f, err);

	return ret ? ret : bpflb_metrics_register(m, "flows", flows_metrics, f, err);
}
