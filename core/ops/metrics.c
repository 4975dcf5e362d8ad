// SPDX-License-Identifier: GPL-2.0-only
/*
 * The metrics endpoint (metrics.h): a libuv TCP listener, one request per
 * connection, and the exposition text built from the daemon's state and the
 * pinned maps at each scrape.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ops/connlimit.h"
#include "ops/control.h"
#include "lb/ct_snapshot.h"
#include "daemon.h"
#include "ops/flows.h"
#include "ops/http.h"
#include "log.h"
#include "ops/metrics.h"
#include "lb/services.h"
#include "lb/services_query.h"

#define MX_MAX_HEAD 8192

struct mx_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct bpflb_metrics *m;
	int open_handles;
	bool closing, answered;
	size_t len;
	char buf[MX_MAX_HEAD];
};

struct bpflb_metrics {
	uv_tcp_t srv;
	struct connlimit_listener lim;
	struct bpflb_daemon *d;
	uint64_t scrapes;
};

/* --- the exposition ------------------------------------------------------------ */

/* A label value with \, " and newline escaped. */
static void label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * Plugins' own metrics: every enabled plugin with a control hook is asked
 * "metrics" and answers
 *   {"metrics": [{"name": "bpflb_x_total", "type": "counter", "help": "...",
 *                 "samples": [{"labels": {"k": "v"}, "value": N}, ...]}, ...]}
 * Names must start with "bpflb_<plugin>_"; anything else is skipped, so a
 * plugin cannot shadow the core's series.
 */
static void plugin_metrics(FILE *f, struct bpflb_daemon *d)
{
	for (struct bpflb_plugin_ctx *p = d->plugins.head; p; p = p->next) {
		json_object *reply = NULL, *fams, *fam, *v, *samples, *sm, *labels;
		char prefix[80];

		if ((p->state != PLUGIN_READY && p->state != PLUGIN_ATTACHED) ||
		    !BPFLB_PLUGIN_HAS(p->desc, control))
			continue;
		if (p->desc->control(p, "metrics", NULL, &reply) || !reply ||
		    !json_object_object_get_ex(reply, "metrics", &fams) ||
		    !json_object_is_type(fams, json_type_array)) {
			json_object_put(reply);
			continue;
		}
		snprintf(prefix, sizeof(prefix), "bpflb_%s_", p->desc->name);
		for (size_t i = 0; i < json_object_array_length(fams); i++) {
			const char *name, *type = "gauge", *help = "";

			fam = json_object_array_get_idx(fams, i);
			if (!json_object_object_get_ex(fam, "name", &v) ||
			    !(name = json_object_get_string(v)) ||
			    strncmp(name, prefix, strlen(prefix)) ||
			    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name) ||
			    !json_object_object_get_ex(fam, "samples", &samples))
				continue;
			if (json_object_object_get_ex(fam, "type", &v))
				type = json_object_get_string(v);
			if (json_object_object_get_ex(fam, "help", &v))
				help = json_object_get_string(v);
			head(f, name, type, help);
			for (size_t j = 0; j < json_object_array_length(samples); j++) {
				bool first = true;

				sm = json_object_array_get_idx(samples, j);
				if (!json_object_object_get_ex(sm, "value", &v))
					continue;
				fputs(name, f);
				if (json_object_object_get_ex(sm, "labels", &labels) &&
				    json_object_is_type(labels, json_type_object)) {
					json_object_object_foreach(labels, k, lv)
					{
						if (!*k || strspn(k, "abcdefghijklmnopqrstuvwxyz_") !=
								   strlen(k))
							continue;
						fprintf(f, "%s%s=\"", first ? "{" : ",", k);
						label(f, json_object_get_string(lv));
						fputc('"', f);
						first = false;
					}
				}
				fprintf(f, "%s %lld\n", first ? "" : "}",
					(long long)json_object_get_int64(v));
			}
		}
		json_object_put(reply);
	}
}

struct stats_ctx {
	FILE *f;
	int pass;
};

static void svc_stats_line(void *ctx, const char *svc, const char *port, uint32_t id,
			   const struct bpflb_svc_stats *sum)
{
	struct stats_ctx *c = ctx;
	const char *metric = c->pass ? "bpflb_service_bytes_total" : "bpflb_service_packets_total";

	for (int v = 0; v < 2; v++) {
		fprintf(c->f, "%s{service=\"", metric);
		label(c->f, svc);
		fprintf(c->f, "\",port=\"");
		label(c->f, port);
		fprintf(c->f, "\",verdict=\"%s\"} %llu\n", v ? "dropped" : "forwarded",
			(unsigned long long)(c->pass ? (v ? sum->drop_bytes : sum->fwd_bytes)
						     : (v ? sum->drop_packets : sum->fwd_packets)));
	}
}

static int pin_fd(struct bpflb_daemon *d, const char *name)
{
	char path[sizeof(d->pipeline.pin_root) + 32];

	snprintf(path, sizeof(path), "%s/%s", d->pipeline.pin_root, name);
	return bpf_obj_get(path);
}

/*
 * Sum over CPUs of the __u64 counters 0..n-1 of the pinned per-CPU array
 * `name` into out[]; counters that cannot be read stay 0.
 */
static void percpu_counters(struct bpflb_daemon *d, const char *name, uint64_t *out, uint32_t n)
{
	int fd = pin_fd(d, name), ncpu = libbpf_num_possible_cpus();
	uint64_t *v;

	if (fd < 0)
		return;
	v = ncpu > 0 ? calloc((size_t)ncpu, sizeof(*v)) : NULL;
	for (__u32 k = 0; v && k < n; k++)
		if (!bpf_map_lookup_elem(fd, &k, v))
			for (int c = 0; c < ncpu; c++)
				out[k] += v[c];
	free(v);
	close(fd);
}

static uint32_t map_max(int fd)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.max_entries;
}

static void fill(FILE *f, const char *map, uint64_t entries, uint32_t max)
{
	fprintf(f, "bpflb_map_entries{map=\"%s\"} %llu\n", map, (unsigned long long)entries);
	fprintf(f, "bpflb_map_capacity{map=\"%s\"} %u\n", map, max);
	fprintf(f, "bpflb_map_fill_ratio{map=\"%s\"} %.6f\n", map,
		max ? (double)entries / max : 0.0);
}

/*
 * Metrics (all prefixed bpflb_):
 *   build_info{version}                        1
 *   start_time_seconds                         gauge, unix time
 *   config_loaded_timestamp_seconds            gauge, when the running file was read
 *   reloads_total{result="ok|failed"}          counter
 *   plugin_info{plugin,version,kind,state}     1 per loaded plugin
 *   plugin_active{plugin}                      1 when initialised (ready/attached), else 0
 *   services, service_ports, backends          gauges (applied on this node)
 *   service_packets_total{service,port,verdict="forwarded|dropped"}   counter
 *   service_bytes_total{service,port,verdict}  counter
 *   drops_total{reason}                        counter, bpflb_drops
 *   snat_port_exhausted_total                  counter (drops_total{reason="snat_exhausted"})
 *   snat_ports_reused_total                    counter, bpflb_ct_stats: closed flows' ports reused
 *   conntrack_halves_lost_total{half="fwd|rev"}      counter, bpflb_ct_stats
 *   conntrack_halves_repaired_total{half="fwd|rev"}  counter, bpflb_ct_stats
 *   conntrack_conflicts_total                  counter, bpflb_ct_stats
 *   conntrack_entries                          gauge, from the last count (ct_snapshot.h)
 *   conntrack_count_age_seconds                gauge, how old that count is (-1: none yet)
 *   conntrack_gc_runs_total                    counter
 *   conntrack_gc_deleted_total{why="expired|orphaned"}  counter
 *   map_entries{map}, map_capacity{map}, map_fill_ratio{map}   ct, svc, backends, slots, maglev
 *   flow_events_sent_total                     counter, datapath, let through the rate limit
 *   flow_events_suppressed_total               counter, datapath, held back by the rate limit
 *   flow_events_lost_total                     counter, perf buffer full
 *   flow_events_received_total                 counter, read by the daemon
 *   flow_events_client_dropped_total           counter, not streamed to slow observers
 *   control_clients                            gauge
 *   control_requests_total                     counter
 *   connections                                gauge, metrics + health check connections
 *   connections_refused_total                  counter, a listener paused at a cap
 *   metrics_scrapes_total                      counter
 */
/* --- metrics of core/state/ (reconcile runs, drift repairs, overlay; state/reconcile.c);
 * declared here until core/state/ registers them through the metrics registration API --- */
void bpflb_state_metrics(FILE *f, const struct bpflb_daemon *d);

char *metrics_render(struct bpflb_daemon *d, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	struct flows_counters fc;
	uint64_t drops[BPFLB_DROP_MAX] = {0}, cts[BPFLB_CT_STAT_MAX] = {0};

	if (!f)
		return NULL;
	head(f, "bpflb_build_info", "gauge", "Version of the running bpflbd.");
	fprintf(f, "bpflb_build_info{version=\"%s\"} 1\n", BPFLB_VERSION);
	head(f, "bpflb_start_time_seconds", "gauge", "When bpflbd started, unix time.");
	fprintf(f, "bpflb_start_time_seconds %lld\n", (long long)d->started_at);
	head(f, "bpflb_config_loaded_timestamp_seconds", "gauge",
	     "When the running configuration was read, unix time.");
	fprintf(f, "bpflb_config_loaded_timestamp_seconds %lld\n",
		d->cfg ? (long long)bpflb_config_loaded_at(d->cfg) : 0LL);
	head(f, "bpflb_reloads_total", "counter", "Configuration reloads by result.");
	fprintf(f, "bpflb_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)d->reloads_ok);
	fprintf(f, "bpflb_reloads_total{result=\"failed\"} %llu\n",
		(unsigned long long)d->reloads_failed);

	head(f, "bpflb_plugin_info", "gauge", "Plugins loaded from plugin_dir, with their state.");
	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		static const char *const st[] = {"loaded", "ready", "attached", "failed"};

		fprintf(f, "bpflb_plugin_info{plugin=\"");
		label(f, c->desc->name);
		fprintf(f, "\",version=\"");
		label(f, c->desc->version ? c->desc->version : "");
		fprintf(f, "\",kind=\"%s\",state=\"%s\"} 1\n",
			c->desc->kind == BPFLB_PLUGIN_MODE ? "mode" : "feature",
			(unsigned int)c->state < 4 ? st[c->state] : "unknown");
	}
	head(f, "bpflb_plugin_active", "gauge", "1 when the plugin is initialised and enabled.");
	for (struct bpflb_plugin_ctx *c = d->plugins.head; c; c = c->next) {
		fprintf(f, "bpflb_plugin_active{plugin=\"");
		label(f, c->desc->name);
		fprintf(f, "\"} %d\n", c->state == PLUGIN_READY || c->state == PLUGIN_ATTACHED);
	}

	if (d->services) {
		struct bpflb_services_counts cnt;
		struct bpflb_services_gc gc;
		struct stats_ctx sc = {f, 0};
		struct ct_counts ctc = {0};
		uint64_t ct_age = 0, ct;

		if (d->ct_counts)
			ct_snapshot_get(d->ct_counts, &ctc, &ct_age);
		ct = ctc.entries;

		bpflb_services_counts(d->services, &cnt);
		head(f, "bpflb_services", "gauge", "Services applied on this node.");
		fprintf(f, "bpflb_services %u\n", cnt.services);
		head(f, "bpflb_service_ports", "gauge",
		     "Service ports (ids) applied on this node.");
		fprintf(f, "bpflb_service_ports %u\n", cnt.svc_ports);
		head(f, "bpflb_backends", "gauge", "Backends in bpflb_backends.");
		fprintf(f, "bpflb_backends %u\n", cnt.backends);
		head(f, "bpflb_service_packets_total", "counter",
		     "Packets of a service port by verdict (both directions).");
		svcq_svc_stats(d->services, svc_stats_line, &sc);
		head(f, "bpflb_service_bytes_total", "counter",
		     "Bytes of a service port by verdict (both directions).");
		sc.pass = 1;
		svcq_svc_stats(d->services, svc_stats_line, &sc);

		bpflb_services_gc_stats(d->services, &gc);
		head(f, "bpflb_conntrack_entries", "gauge",
		     "Entries in bpflb_ct (two per flow), as of the last count.");
		fprintf(f, "bpflb_conntrack_entries %llu\n", (unsigned long long)ct);
		head(f, "bpflb_conntrack_count_age_seconds", "gauge",
		     "Age of the conntrack counts (counted off the loop).");
		fprintf(f, "bpflb_conntrack_count_age_seconds %.3f\n",
			ctc.taken_ms ? ct_age / 1000.0 : -1.0);
		head(f, "bpflb_conntrack_gc_runs_total", "counter", "Conntrack GC sweeps.");
		fprintf(f, "bpflb_conntrack_gc_runs_total %llu\n", (unsigned long long)gc.runs);
		head(f, "bpflb_conntrack_gc_deleted_total", "counter",
		     "Conntrack entries the GC deleted, by why.");
		fprintf(f, "bpflb_conntrack_gc_deleted_total{why=\"expired\"} %llu\n",
			(unsigned long long)gc.total.expired);
		fprintf(f, "bpflb_conntrack_gc_deleted_total{why=\"orphaned\"} %llu\n",
			(unsigned long long)gc.total.orphaned);

		head(f, "bpflb_map_entries", "gauge", "Entries in a pinned map.");
		head(f, "bpflb_map_capacity", "gauge", "max_entries of a pinned map.");
		head(f, "bpflb_map_fill_ratio", "gauge", "entries / max_entries of a pinned map.");
		fill(f, "ct", ct,
		     map_max(bpflb_services_map_fd(d->services, "bpflb_ct")));
		fill(f, "svc", cnt.frontends,
		     map_max(bpflb_services_map_fd(d->services, "bpflb_svc")));
		fill(f, "backends", cnt.backends,
		     map_max(bpflb_services_map_fd(d->services, "bpflb_backends")));
		fill(f, "slots", cnt.slots,
		     map_max(bpflb_services_map_fd(d->services, "bpflb_slots")));
		fill(f, "maglev", cnt.maglev,
		     map_max(bpflb_services_map_fd(d->services, "bpflb_maglev")));
	}

	percpu_counters(d, "bpflb_drops", drops, BPFLB_DROP_MAX);
	head(f, "bpflb_drops_total", "counter", "Packets the datapath dropped, by reason.");
	for (unsigned int r = 1; r < BPFLB_DROP_MAX; r++) {
		const char *name = svcq_drop_reason_name((uint8_t)r);

		if (strcmp(name, "other") || drops[r])
			fprintf(f, "bpflb_drops_total{reason=\"%s\"} %llu\n", name,
				(unsigned long long)drops[r]);
	}
	head(f, "bpflb_snat_port_exhausted_total", "counter",
	     "New flows dropped because no SNAT port was free.");
	fprintf(f, "bpflb_snat_port_exhausted_total %llu\n",
		(unsigned long long)drops[BPFLB_DROP_SNAT_EXHAUSTED]);

	percpu_counters(d, "bpflb_ct_stats", cts, BPFLB_CT_STAT_MAX);
	head(f, "bpflb_conntrack_halves_lost_total", "counter",
	     "Conntrack pairs the datapath found with one half missing (LRU eviction, flush).");
	fprintf(f, "bpflb_conntrack_halves_lost_total{half=\"fwd\"} %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_LOST_FWD]);
	fprintf(f, "bpflb_conntrack_halves_lost_total{half=\"rev\"} %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_LOST_REV]);
	head(f, "bpflb_conntrack_halves_repaired_total", "counter",
	     "Missing conntrack halves the datapath re-created from the surviving one.");
	fprintf(f, "bpflb_conntrack_halves_repaired_total{half=\"fwd\"} %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_REPAIRED_FWD]);
	fprintf(f, "bpflb_conntrack_halves_repaired_total{half=\"rev\"} %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_REPAIRED_REV]);
	head(f, "bpflb_conntrack_conflicts_total", "counter",
	     "Packets whose conntrack halves disagreed (NAT port held by another flow): not "
	     "translated with that mapping.");
	fprintf(f, "bpflb_conntrack_conflicts_total %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_CONFLICT]);
	head(f, "bpflb_snat_ports_reused_total", "counter",
	     "SNAT ports of closed TCP flows given to new flows before the GC removed them.");
	fprintf(f, "bpflb_snat_ports_reused_total %llu\n",
		(unsigned long long)cts[BPFLB_CT_STAT_SNAT_REUSED]);

	flows_counters(d->flows, &fc);
	head(f, "bpflb_flow_events_sent_total", "counter",
	     "Flow events the datapath let through its rate limit.");
	fprintf(f, "bpflb_flow_events_sent_total %llu\n", (unsigned long long)fc.sent);
	head(f, "bpflb_flow_events_suppressed_total", "counter",
	     "Flow events the datapath held back ([lb] events_per_sec).");
	fprintf(f, "bpflb_flow_events_suppressed_total %llu\n", (unsigned long long)fc.suppressed);
	head(f, "bpflb_flow_events_lost_total", "counter",
	     "Flow events lost because a perf buffer was full.");
	fprintf(f, "bpflb_flow_events_lost_total %llu\n", (unsigned long long)fc.lost);
	head(f, "bpflb_flow_events_received_total", "counter", "Flow events read by bpflbd.");
	fprintf(f, "bpflb_flow_events_received_total %llu\n", (unsigned long long)fc.received);
	head(f, "bpflb_flow_events_client_dropped_total", "counter",
	     "Flow events not streamed to observers that read too slowly.");
	fprintf(f, "bpflb_flow_events_client_dropped_total %llu\n",
		(unsigned long long)fc.client_dropped);
	plugin_metrics(f, d);
	bpflb_state_metrics(f, d); /* core/state/ block, see above */
	head(f, "bpflb_control_clients", "gauge", "Open control socket connections.");
	fprintf(f, "bpflb_control_clients %u\n", control_clients(d->control));
	head(f, "bpflb_control_requests_total", "counter", "Control socket requests.");
	fprintf(f, "bpflb_control_requests_total %llu\n",
		(unsigned long long)control_requests(d->control));
	head(f, "bpflb_connections", "gauge",
	     "Open connections of the metrics and health check listeners (max_connections).");
	fprintf(f, "bpflb_connections %u\n", connlimit_total());
	head(f, "bpflb_connections_refused_total", "counter",
	     "Times a listener stopped accepting at max_connections(_per_listener).");
	fprintf(f, "bpflb_connections_refused_total %llu\n",
		(unsigned long long)connlimit_refused());
	head(f, "bpflb_metrics_scrapes_total", "counter", "Requests for /metrics.");
	fprintf(f, "bpflb_metrics_scrapes_total %llu\n",
		(unsigned long long)(d->metrics ? d->metrics->scrapes : 0));
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/* --- HTTP ------------------------------------------------------------------------- */

static void mx_handle_closed(uv_handle_t *h)
{
	struct mx_conn *c = h->data;

	if (--c->open_handles == 0)
		free(c);
}

static void mx_close(struct mx_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->tcp, mx_handle_closed);
	uv_close((uv_handle_t *)&c->timer, mx_handle_closed);
	connlimit_release(&c->m->lim); /* may accept a waiting connection */
}

struct mx_write {
	uv_write_t req;
	struct mx_conn *c;
	char *body;
	char head[256];
};

static void mx_written(uv_write_t *req, int status)
{
	struct mx_write *w = (struct mx_write *)req;

	mx_close(w->c);
	free(w->body);
	free(w);
}

static void mx_respond(struct mx_conn *c, int code, const char *ctype, char *body, size_t blen,
		       bool head_only)
{
	const char *reason = code == 200   ? "OK"
			     : code == 404 ? "Not Found"
			     : code == 405 ? "Method Not Allowed"
			     : code == 413 ? "Payload Too Large"
			     : code == 431 ? "Request Header Fields Too Large"
			     : code == 500 ? "Internal Server Error"
					   : "Bad Request";
	struct mx_write *w = calloc(1, sizeof(*w));
	uv_buf_t b[2];
	int n;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (!w) {
		free(body);
		mx_close(c);
		return;
	}
	if (!body) {
		char tmp[64];
		int l = snprintf(tmp, sizeof(tmp), "%d %s\n", code, reason);

		body = strdup(tmp);
		blen = body ? (size_t)l : 0;
		ctype = "text/plain; charset=utf-8";
	}
	w->c = c;
	w->body = body;
	n = snprintf(w->head, sizeof(w->head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: close\r\n\r\n",
		     code, reason, ctype, blen, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	b[0] = uv_buf_init(w->head, (unsigned int)n);
	b[1] = uv_buf_init(body ? body : "", head_only || !body ? 0 : (unsigned int)blen);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, b, 2, mx_written)) {
		free(w->body);
		free(w);
		mx_close(c);
	}
}

static void mx_request(struct mx_conn *c, char *head)
{
	struct bpflb_http_req req;
	int code = bpflb_http_parse(head, 0, &req);
	bool head_only;
	char *body, *q;
	size_t len = 0;

	if (code) {
		mx_respond(c, code, NULL, NULL, 0, false);
		return;
	}
	head_only = !strcmp(req.method, "HEAD");
	if (strcmp(req.method, "GET") && !head_only) {
		mx_respond(c, 405, NULL, NULL, 0, false);
		return;
	}
	q = strchr(req.target, '?');
	if (q)
		*q = '\0';
	if (strcmp(req.target, "/metrics")) {
		mx_respond(c, 404, NULL, NULL, 0, head_only);
		return;
	}
	c->m->scrapes++;
	body = metrics_render(c->m->d, &len);
	if (!body) {
		mx_respond(c, 500, NULL, NULL, 0, head_only);
		return;
	}
	mx_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, head_only);
}

static void mx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct mx_conn *c = h->data;

	*b = uv_buf_init(c->buf + c->len, (unsigned int)(sizeof(c->buf) - c->len - 1));
}

static void mx_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct mx_conn *c = st->data;
	size_t end;

	if (nread < 0) {
		if (!c->answered)
			mx_close(c);
		return;
	}
	if (!nread || c->answered)
		return;
	c->len += (size_t)nread;
	end = bpflb_http_head_end(c->buf, c->len);
	if (end) {
		c->buf[end] = '\0';
		mx_request(c, c->buf);
	} else if (c->len >= sizeof(c->buf) - 1) {
		mx_respond(c, 431, NULL, NULL, 0, false);
	}
}

static void mx_idle(uv_timer_t *t)
{
	mx_close(t->data);
}

static void mx_connection(uv_stream_t *srv, int status)
{
	struct bpflb_metrics *m = srv->data;
	struct mx_conn *c;

	if (status < 0)
		return;
	if (!connlimit_admit(&m->lim))
		return; /* resumed when a connection closes */
	c = calloc(1, sizeof(*c));
	if (!c) {
		connlimit_release(&m->lim);
		return;
	}
	c->m = m;
	uv_tcp_init(srv->loop, &c->tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) ||
	    uv_read_start((uv_stream_t *)&c->tcp, mx_alloc, mx_read)) {
		mx_close(c);
		return;
	}
	/* one request per connection: a deadline for reading it and taking the answer */
	uv_timer_start(&c->timer, mx_idle, connlimit_timeout_ms(), 0);
}

static void srv_closed(uv_handle_t *h)
{
	free(h->data);
}

int metrics_open(struct bpflb_daemon *d, const char *listen, struct bpflb_metrics **out,
		 struct bpflb_err *err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = strrchr(listen, ':');
	struct bpflb_metrics *m;
	char addr[64];
	int ret;

	if (!colon || (size_t)(colon - listen) >= sizeof(addr))
		return bpflb_err_set(err, "metrics_listen '%s' is not ADDR:PORT", listen), -EINVAL;
	snprintf(addr, sizeof(addr), "%.*s", (int)(colon - listen), listen);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 || atoi(colon + 1) <= 0 ||
	    atoi(colon + 1) > 65535)
		return bpflb_err_set(err, "metrics_listen '%s' is not ADDR:PORT", listen), -EINVAL;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->d = d;
	uv_tcp_init(d->loop, &m->srv);
	m->srv.data = m;
	connlimit_listener_init(&m->lim, (uv_stream_t *)&m->srv, true);
	ret = uv_tcp_bind(&m->srv, (const struct sockaddr *)&sa, 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&m->srv, 64, mx_connection);
	if (ret) {
		bpflb_err_set(err, "cannot serve metrics on %s: %s", listen, uv_strerror(ret));
		uv_close((uv_handle_t *)&m->srv, srv_closed);
		return ret;
	}
	*out = m;
	return 0;
}

void metrics_close(struct bpflb_metrics *m)
{
	if (!m)
		return;
	connlimit_listener_close(&m->lim);
	uv_close((uv_handle_t *)&m->srv, srv_closed);
}
