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
 * drains whatever is pending every FLOWS_DRAIN_MS, so observe lags by at
 * most that much.
 */
#define FLOWS_WAKEUP   64
#define FLOWS_DRAIN_MS 100

struct flow_rec {
	struct bpflb_flow_event ev;
	int64_t wall_ns; /* CLOCK_REALTIME of ev.ts_ns */
};

/* What observe selects; zero fields match everything. */
struct flows_filter {
	uint32_t svc_ids[FLOWS_MAX_SVC_IDS]; /* service-port ids of --service */
	unsigned int nsvc;
	bool by_service;
	uint32_t addr; /* network order; source, destination or translation */
	bool by_addr;
	uint8_t proto;
	uint8_t verdict;
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
	uint64_t lost, client_dropped;
	struct flows_sub *subs;
	unsigned int nsubs;
};

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool flt_match(const struct flows_filter *f, const struct bpflb_flow_event *e)
{
	if (f->verdict && e->verdict != f->verdict)
		return false;
	if (f->proto && e->proto != f->proto)
		return false;
	if (f->by_addr && e->saddr != f->addr && e->daddr != f->addr && e->xaddr != f->addr)
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

static json_object *event_json(struct bpflb_flows *f, const struct flow_rec *r)
{
	const struct bpflb_flow_event *e = &r->ev;
	json_object *o = json_object_new_object();
	const char *svc = e->svc_id ? f->names->service(f->names_ctx, e->svc_id) : NULL;
	char b[64], ib[IF_NAMESIZE + 8];
	time_t secs = (time_t)(r->wall_ns / 1000000000);
	struct tm tm;
	uint32_t be_addr;
	uint16_t be_port;

	gmtime_r(&secs, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(b + strlen(b), sizeof(b) - strlen(b), ".%06ldZ",
		 (long)(r->wall_ns % 1000000000) / 1000);
	json_object_object_add(o, "time", json_object_new_string(b));
	json_object_object_add(o, "ts_ns", json_object_new_uint64(e->ts_ns));
	json_object_object_add(o, "node", json_object_new_string(f->names->node(f->names_ctx)));
	json_object_object_add(o, "ifname", json_object_new_string(ifname(f, e->ifindex, ib)));
	json_object_object_add(o, "proto", json_object_new_string(wire_proto_name(e->proto)));
	json_object_object_add(
	    o, "src",
	    json_object_new_string(wire_addrport(e->saddr, ntohs(e->sport), b, sizeof(b))));
	json_object_object_add(
	    o, "dst",
	    json_object_new_string(wire_addrport(e->daddr, ntohs(e->dport), b, sizeof(b))));
	json_object_object_add(o, "service",
			       svc ? json_object_new_string(svc) : json_object_new_null());
	json_object_object_add(o, "svc_id", json_object_new_int64(e->svc_id));
	json_object_object_add(o, "backend_id", json_object_new_int64(e->backend_id));
	if (e->backend_id && f->names->backend(f->names_ctx, e->backend_id, &be_addr, &be_port))
		json_object_object_add(
		    o, "backend",
		    json_object_new_string(wire_addrport(be_addr, ntohs(be_port), b, sizeof(b))));
	else
		json_object_object_add(o, "backend", json_object_new_null());
	json_object_object_add(o, "translation", json_object_new_string(wire_fwd_name(e->fwd)));
	json_object_object_add(o, "xlate",
			       e->xaddr || e->xport ? json_object_new_string(wire_addrport(
							  e->xaddr, ntohs(e->xport), b, sizeof(b)))
						    : json_object_new_null());
	json_object_object_add(o, "verdict", json_object_new_string(wire_verdict_name(e->verdict)));
	json_object_object_add(o, "reason",
			       e->verdict == BPFLB_VERDICT_DROPPED || e->reason
				   ? json_object_new_string(wire_drop_reason_name(e->reason))
				   : json_object_new_null());
	json_object_object_add(o, "stage", json_object_new_int(e->stage));
	/* Which rule decided (policy: policy id << 16 | section/position; 0 none). */
	if (e->rule_id)
		json_object_object_add(o, "rule_id", json_object_new_int64(e->rule_id));
	return o;
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

static void flows_push(struct bpflb_flows *f, const struct bpflb_flow_event *ev)
{
	struct flow_rec *r = &f->ring[f->head++ % FLOWS_RING];
	int64_t now_mono = clock_ns(CLOCK_MONOTONIC);

	r->ev = *ev;
	r->wall_ns = clock_ns(CLOCK_REALTIME) -
		     (now_mono > (int64_t)ev->ts_ns ? now_mono - (int64_t)ev->ts_ns : 0);
	for (struct flows_sub *s = f->subs; s; s = s->next) {
		json_object *line;

		if (!flt_match(&s->flt, ev))
			continue;
		line = json_object_new_object();
		json_object_object_add(line, "event", event_json(f, r));
		sub_send(f, s, line);
		json_object_put(line);
	}
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	struct bpflb_flow_event ev;

	if (size < sizeof(ev))
		return;
	memcpy(&ev, data, sizeof(ev));
	flows_push(ctx, &ev);
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
}

/* Tell followers what they did not see, when that changed. */
static void on_stats(uv_timer_t *t)
{
	struct bpflb_flows *f = t->data;
	uint64_t sent, suppressed;

	if (!f->subs)
		return;
	rate_sum(f, &sent, &suppressed);
	for (struct flows_sub *s = f->subs; s; s = s->next) {
		json_object *line;

		if (s->last_suppressed == suppressed && s->last_lost == f->lost &&
		    s->last_dropped == s->dropped)
			continue;
		s->last_suppressed = suppressed;
		s->last_lost = f->lost;
		s->last_dropped = s->dropped;
		line = json_object_new_object();
		json_object_object_add(line, "stats", flows_stats_json(f));
		json_object_object_add(json_object_object_get(line, "stats"), "client_dropped",
				       json_object_new_uint64(s->dropped));
		sub_send(f, s, line);
		json_object_put(line);
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
		if (flt_match(flt, &f->ring[(i - 1) % FLOWS_RING].ev)) {
			found++;
			start = i - 1;
		}
	}
	for (i = start; found && i < f->head; i++)
		if (flt_match(flt, &f->ring[i % FLOWS_RING].ev))
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
	if (!f->ring) {
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
	uv_timer_start(f->drain, on_drain, FLOWS_DRAIN_MS, FLOWS_DRAIN_MS);
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
	}
	perf_buffer__free(f->pb);
	while (f->subs)
		flows_unsubscribe(f, f->subs->c);
	if (f->events_fd >= 0)
		close(f->events_fd);
	if (f->rate_fd >= 0)
		close(f->rate_fd);
	free(f->ring);
	free(f);
}

/* --- observe and the counters ------------------------------------------------ */

static void sub_closed(void *ctx, struct control_conn *c)
{
	flows_unsubscribe(ctx, c);
}

/*
 * observe {[service], [addr], [proto], [limit], [verdict], [last], [follow]}:
 * the selection reads as ct.list's (bpflbctl sends the same options, limit
 * included, which observe checks and does not use).
 */
static int h_observe(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		     struct bpflb_err *err)
{
	struct bpflb_flows *f = ctx;
	struct flows_filter flt = {0};
	const char *svc, *addr, *proto, *verdict;
	uint64_t limit = 0, last = 0;
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
	    (ret = control_arg_bool(args, "follow", &follow, err)))
		return ret;
	if (verdict && wire_verdict_parse(verdict, &flt.verdict))
		return bpflb_err_set(err,
				     "verdict '%s' is not FORWARDED, DROPPED, REJECTED or AUDIT",
				     verdict),
		       -EINVAL;
	if (!f->pb)
		return bpflb_err_set(err, "flow events are not being read"), -EAGAIN;
	if (follow && !c)
		return bpflb_err_set(err, "follow needs a connection"), -EINVAL;
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
     "flow events: {[service], [verdict], [addr], [proto], [last], [follow]}"},
    {NULL},
};

/*
 * Metrics (all prefixed bpflb_):
 *   flow_events_sent_total                     counter, datapath, let through the rate limit
 *   flow_events_suppressed_total               counter, datapath, held back by the rate limit
 *   flow_events_lost_total                     counter, perf buffer full
 *   flow_events_received_total                 counter, read by the daemon
 *   flow_events_client_dropped_total           counter, not streamed to slow observers
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
}

int flows_register(struct bpflb_flows *f, struct bpflb_control *ctl, struct bpflb_metrics *m,
		   struct bpflb_err *err)
{
	int ret = bpflb_control_register(ctl, flows_cmds, f, err);

	return ret ? ret : bpflb_metrics_register(m, "flows", flows_metrics, f, err);
}
