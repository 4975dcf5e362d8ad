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

#include "ops/control.h"
#include "daemon.h"
#include "ops/flows.h"
#include "log.h"
#include "lb/services.h"

#define FLOWS_STATS_MS 1000
/*
 * The kernel wakes bpflbd once per FLOWS_WAKEUP events per CPU, not for each
 * one: a wakeup per new connection costs the connection itself several
 * microseconds on a small node (bench/run.sh, "flow events off").  A timer
 * drains whatever is pending every FLOWS_DRAIN_MS, so observe lags by at
 * most that much.
 */
#define FLOWS_WAKEUP 64
#define FLOWS_DRAIN_MS 100

struct flow_rec {
	struct bpflb_flow_event ev;
	int64_t wall_ns; /* CLOCK_REALTIME of ev.ts_ns */
};

struct flows_sub {
	struct control_conn *c;
	struct flows_filter flt;
	uint64_t dropped;
	uint64_t last_suppressed, last_lost, last_dropped;
	struct flows_sub *next;
};

struct bpflb_flows {
	struct bpflb_daemon *d;
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
	const struct svcq_ct_filter *s = &f->sel;

	if (f->verdict && e->verdict != f->verdict)
		return false;
	if (s->proto && e->proto != s->proto)
		return false;
	if (s->by_addr && e->saddr != s->addr && e->daddr != s->addr && e->xaddr != s->addr)
		return false;
	if (s->by_service) {
		bool hit = false;

		for (unsigned int i = 0; i < s->nsvc; i++)
			hit |= e->svc_id == s->svc_ids[i];
		if (!hit)
			return false;
	}
	return true;
}

static const char *ifname(struct bpflb_flows *f, uint32_t ifindex, char *buf)
{
	for (int i = 0; i < f->d->pipeline.ndevs; i++)
		if (f->d->pipeline.devs[i].ifindex == (int)ifindex)
			return f->d->pipeline.devs[i].name;
	if (ifindex && if_indextoname(ifindex, buf))
		return buf;
	snprintf(buf, IF_NAMESIZE, "if%u", ifindex);
	return buf;
}

static json_object *event_json(struct bpflb_flows *f, const struct flow_rec *r)
{
	const struct bpflb_flow_event *e = &r->ev;
	const struct bpflb_config *cfg = f->d->cfg;
	json_object *o = json_object_new_object();
	const char *svc =
	    f->d->services && e->svc_id ? bpflb_services_svc_key(f->d->services, e->svc_id) : NULL;
	char b[64], ib[IF_NAMESIZE + 8];
	time_t secs = (time_t)(r->wall_ns / 1000000000);
	struct tm tm;
	struct bpflb_backend be;

	gmtime_r(&secs, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(b + strlen(b), sizeof(b) - strlen(b), ".%06ldZ",
		 (long)(r->wall_ns % 1000000000) / 1000);
	json_object_object_add(o, "time", json_object_new_string(b));
	json_object_object_add(o, "ts_ns", json_object_new_uint64(e->ts_ns));
	json_object_object_add(
	    o, "node",
	    json_object_new_string(cfg ? bpflb_cfg_str(bpflb_cfg_section(cfg, "node", 0), "name")
				       : ""));
	json_object_object_add(o, "ifname", json_object_new_string(ifname(f, e->ifindex, ib)));
	json_object_object_add(o, "proto", json_object_new_string(svcq_proto_name(e->proto)));
	json_object_object_add(
	    o, "src",
	    json_object_new_string(svcq_addrport(e->saddr, ntohs(e->sport), b, sizeof(b))));
	json_object_object_add(
	    o, "dst",
	    json_object_new_string(svcq_addrport(e->daddr, ntohs(e->dport), b, sizeof(b))));
	json_object_object_add(o, "service",
			       svc ? json_object_new_string(svc) : json_object_new_null());
	json_object_object_add(o, "svc_id", json_object_new_int64(e->svc_id));
	json_object_object_add(o, "backend_id", json_object_new_int64(e->backend_id));
	if (e->backend_id && f->d->services &&
	    bpflb_services_backend_get(f->d->services, e->backend_id, &be))
		json_object_object_add(
		    o, "backend",
		    json_object_new_string(svcq_addrport(be.addr, ntohs(be.port), b, sizeof(b))));
	else
		json_object_object_add(o, "backend", json_object_new_null());
	json_object_object_add(o, "translation", json_object_new_string(svcq_fwd_name(e->fwd)));
	json_object_object_add(o, "xlate",
			       e->xaddr || e->xport ? json_object_new_string(svcq_addrport(
							  e->xaddr, ntohs(e->xport), b, sizeof(b)))
						    : json_object_new_null());
	json_object_object_add(o, "verdict", json_object_new_string(svcq_verdict_name(e->verdict)));
	json_object_object_add(o, "reason",
			       e->verdict == BPFLB_VERDICT_DROPPED || e->reason
				   ? json_object_new_string(svcq_drop_reason_name(e->reason))
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

void flows_push(struct bpflb_flows *f, const struct bpflb_flow_event *ev)
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

json_object *flows_last(struct bpflb_flows *f, const struct flows_filter *flt, unsigned int n)
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

int flows_subscribe(struct bpflb_flows *f, struct control_conn *c, const struct flows_filter *flt)
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

void flows_unsubscribe(struct bpflb_flows *f, struct control_conn *c)
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

int flows_open(struct bpflb_daemon *d, struct bpflb_flows **out, struct bpflb_err *err)
{
	struct bpflb_flows *f = calloc(1, sizeof(*f));
	int ret;

	if (!f)
		return -ENOMEM;
	f->d = d;
	f->events_fd = f->rate_fd = -1;
	f->ring = calloc(FLOWS_RING, sizeof(*f->ring));
	if (!f->ring) {
		ret = -ENOMEM;
		goto fail;
	}
	f->rate_fd = open_pin(d->pipeline.pin_root, "bpflb_ev_rate");
	f->events_fd = open_pin(d->pipeline.pin_root, "bpflb_events");
	if (f->events_fd < 0) {
		ret = -errno;
		bpflb_err_set(err, "cannot open %s/bpflb_events: %s", d->pipeline.pin_root,
			      strerror(-ret));
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
		free(f->poll);
		free(f->timer);
		free(f->drain);
		f->poll = NULL;
		f->timer = NULL;
		f->drain = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	uv_poll_init(d->loop, f->poll, perf_buffer__epoll_fd(f->pb));
	f->poll->data = f;
	uv_poll_start(f->poll, UV_READABLE, on_readable);
	uv_timer_init(d->loop, f->timer);
	f->timer->data = f;
	uv_timer_start(f->timer, on_stats, FLOWS_STATS_MS, FLOWS_STATS_MS);
	uv_timer_init(d->loop, f->drain);
	f->drain->data = f;
	uv_timer_start(f->drain, on_drain, FLOWS_DRAIN_MS, FLOWS_DRAIN_MS);
	*out = f;
	return 0;
fail:
	flows_close(f);
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
