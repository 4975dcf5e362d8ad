// SPDX-License-Identifier: GPL-2.0-only
/*
 * The load-balancing control plane's metrics (services_ops.h), from the
 * applied model, the pinned maps' counters and the last conntrack count
 * (ct_snapshot.h: never a walk of bpflb_ct at a scrape).
 */
#include <stdio.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "lb/ct_snapshot.h"
#include "lb/services.h"
#include "lb/services_ops.h"
#include "lb/services_query.h"
#include "ops/metrics.h"

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
		bpflb_metrics_label(c->f, svc);
		fprintf(c->f, "\",port=\"");
		bpflb_metrics_label(c->f, port);
		fprintf(c->f, "\",verdict=\"%s\"} %llu\n", v ? "dropped" : "forwarded",
			(unsigned long long)(c->pass ? (v ? sum->drop_bytes : sum->fwd_bytes)
						     : (v ? sum->drop_packets : sum->fwd_packets)));
	}
}

static uint32_t map_max(int fd)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.max_entries;
}

/* One family per kind; a family's samples follow its own TYPE line (parsers need that). */
enum fill_kind { FILL_ENTRIES, FILL_CAPACITY, FILL_RATIO };

static void fill(FILE *f, enum fill_kind k, const char *map, uint64_t entries, uint32_t max)
{
	if (k == FILL_ENTRIES)
		fprintf(f, "bpflb_map_entries{map=\"%s\"} %llu\n", map,
			(unsigned long long)entries);
	else if (k == FILL_CAPACITY)
		fprintf(f, "bpflb_map_capacity{map=\"%s\"} %u\n", map, max);
	else
		fprintf(f, "bpflb_map_fill_ratio{map=\"%s\"} %.6f\n", map,
			max ? (double)entries / max : 0.0);
}

/*
 * Metrics (all prefixed bpflb_), none while the service state is not open:
 *   services, service_ports, backends          gauges (applied on this node)
 *   service_packets_total{service,port,verdict="forwarded|dropped"}   counter
 *   service_bytes_total{service,port,verdict}  counter
 *   conntrack_entries                          gauge, from the last count (ct_snapshot.h)
 *   conntrack_count_age_seconds                gauge, how old that count is (-1: none yet)
 *   conntrack_gc_runs_total                    counter
 *   conntrack_gc_deleted_total{why="expired|orphaned"}  counter
 *   map_entries{map}, map_capacity{map}, map_fill_ratio{map}   ct, svc, backends, slots, maglev
 */
static void lb_metrics(FILE *f, void *ctx)
{
	const struct lb_ops *lo = ctx;
	struct bpflb_services *s = lo->services;
	struct bpflb_services_counts cnt;
	struct bpflb_services_gc gc;
	struct stats_ctx sc = {f, 0};
	struct ct_counts ctc = {0};
	uint64_t ct_age = 0, ct;

	if (!s)
		return;
	if (lo->ct_counts)
		ct_snapshot_get(lo->ct_counts, &ctc, &ct_age);
	ct = ctc.entries;

	bpflb_services_counts(s, &cnt);
	bpflb_metrics_head(f, "bpflb_services", "gauge", "Services applied on this node.");
	fprintf(f, "bpflb_services %u\n", cnt.services);
	bpflb_metrics_head(f, "bpflb_service_ports", "gauge",
			   "Service ports (ids) applied on this node.");
	fprintf(f, "bpflb_service_ports %u\n", cnt.svc_ports);
	bpflb_metrics_head(f, "bpflb_backends", "gauge", "Backends in bpflb_backends.");
	fprintf(f, "bpflb_backends %u\n", cnt.backends);
	bpflb_metrics_head(f, "bpflb_service_packets_total", "counter",
			   "Packets of a service port by verdict (both directions).");
	svcq_svc_stats(s, svc_stats_line, &sc);
	bpflb_metrics_head(f, "bpflb_service_bytes_total", "counter",
			   "Bytes of a service port by verdict (both directions).");
	sc.pass = 1;
	svcq_svc_stats(s, svc_stats_line, &sc);

	bpflb_services_gc_stats(s, &gc);
	bpflb_metrics_head(f, "bpflb_conntrack_entries", "gauge",
			   "Entries in bpflb_ct (two per flow), as of the last count.");
	fprintf(f, "bpflb_conntrack_entries %llu\n", (unsigned long long)ct);
	bpflb_metrics_head(f, "bpflb_conntrack_count_age_seconds", "gauge",
			   "Age of the conntrack counts (counted off the loop).");
	fprintf(f, "bpflb_conntrack_count_age_seconds %.3f\n",
		ctc.taken_ms ? ct_age / 1000.0 : -1.0);
	bpflb_metrics_head(f, "bpflb_conntrack_gc_runs_total", "counter", "Conntrack GC sweeps.");
	fprintf(f, "bpflb_conntrack_gc_runs_total %llu\n", (unsigned long long)gc.runs);
	bpflb_metrics_head(f, "bpflb_conntrack_gc_deleted_total", "counter",
			   "Conntrack entries the GC deleted, by why.");
	fprintf(f, "bpflb_conntrack_gc_deleted_total{why=\"expired\"} %llu\n",
		(unsigned long long)gc.total.expired);
	fprintf(f, "bpflb_conntrack_gc_deleted_total{why=\"orphaned\"} %llu\n",
		(unsigned long long)gc.total.orphaned);

	static const struct {
		const char *name, *help;
	} fam[] = {
	    [FILL_ENTRIES] = {"bpflb_map_entries", "Entries in a pinned map."},
	    [FILL_CAPACITY] = {"bpflb_map_capacity", "max_entries of a pinned map."},
	    [FILL_RATIO] = {"bpflb_map_fill_ratio", "entries / max_entries of a pinned map."},
	};
	for (enum fill_kind k = FILL_ENTRIES; k <= FILL_RATIO; k++) {
		bpflb_metrics_head(f, fam[k].name, "gauge", fam[k].help);
		fill(f, k, "ct", ct, map_max(bpflb_services_map_fd(s, "bpflb_ct")));
		fill(f, k, "svc", cnt.frontends, map_max(bpflb_services_map_fd(s, "bpflb_svc")));
		fill(f, k, "backends", cnt.backends,
		     map_max(bpflb_services_map_fd(s, "bpflb_backends")));
		fill(f, k, "slots", cnt.slots, map_max(bpflb_services_map_fd(s, "bpflb_slots")));
		fill(f, k, "maglev", cnt.maglev, map_max(bpflb_services_map_fd(s, "bpflb_maglev")));
	}
}

int lb_metrics_register(struct bpflb_metrics *m, struct lb_ops *lo, struct bpflb_err *err)
{
	return bpflb_metrics_register(m, "services", lb_metrics, lo, err);
}
