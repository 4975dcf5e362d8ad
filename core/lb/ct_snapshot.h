/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Conntrack counts for `status` and /metrics without walking bpflb_ct on the
 * daemon's loop: a full map (262k entries) takes tens of milliseconds to
 * read, and one walk per request let a few hundred scrapers stall control and
 * reloads for seconds.  A worker thread (uv_queue_work) counts the map and
 * readers get the last snapshot with its age:
 *  - a reader that finds the snapshot older than CT_SNAPSHOT_FRESH_MS starts a
 *    new count (at most one runs at a time) and gets the previous numbers;
 *  - a timer recounts every CT_SNAPSHOT_INTERVAL_MS, so that a reader who comes
 *    rarely (a scrape every 15 s) still sees numbers that recent.
 * The cost on the loop is constant, whatever the map holds.
 */
#ifndef BPFLB_CORE_CT_SNAPSHOT_H
#define BPFLB_CORE_CT_SNAPSHOT_H

#include <stdint.h>
#include <uv.h>

#define CT_SNAPSHOT_FRESH_MS	1000
#define CT_SNAPSHOT_INTERVAL_MS 10000

struct ct_counts {
	uint64_t entries; /* two per flow (lb.h) */
	uint64_t tcp, udp, other;
	uint64_t taken_ms; /* uv_now() when the count began; 0: no count yet */
	uint64_t walk_ms;  /* how long it took */
	int error;	   /* -errno of the last count, or 0 */
};

struct ct_snapshot;

/* Count the map ct_fd (dup'ed: the caller keeps its fd) on loop's thread pool. */
int ct_snapshot_open(uv_loop_t *loop, int ct_fd, struct ct_snapshot **out);
/* The last counts; *age_ms how old they are.  Starts a count when stale. */
void ct_snapshot_get(struct ct_snapshot *s, struct ct_counts *out, uint64_t *age_ms);
/* The memory goes once a count in flight finished. */
void ct_snapshot_close(struct ct_snapshot *s);

#endif
