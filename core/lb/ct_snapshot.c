// SPDX-License-Identifier: GPL-2.0-only
/* Conntrack counts off the loop (see ct_snapshot.h). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lb/ct_snapshot.h"
#include "log.h"
#include "lb/services_model.h"

struct ct_snapshot {
	uv_loop_t *loop;
	uv_timer_t timer;
	uv_work_t work;
	int fd;
	int refs; /* the timer handle and a count in flight */
	bool busy, closing;
	struct ct_counts cur;  /* what readers get */
	struct ct_counts next; /* the worker's, handed over in count_done */
};

static void snap_unref(struct ct_snapshot *s)
{
	if (--s->refs)
		return;
	close(s->fd);
	free(s);
}

/* On a thread of the pool: touches only s->fd and s->next. */
static void count_work(uv_work_t *w)
{
	struct ct_snapshot *s = w->data;
	struct timespec t0, t1;
	void *keys = NULL, *vals = NULL;
	size_t n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	s->next.error = svc_map_dump(s->fd, sizeof(struct bpflb_ct_key),
				     sizeof(struct bpflb_ct_val), &keys, &vals, &n);
	s->next.entries = s->next.tcp = s->next.udp = s->next.other = 0;
	for (size_t i = 0; !s->next.error && i < n; i++) {
		uint8_t proto = ((const struct bpflb_ct_key *)keys)[i].proto;

		s->next.entries++;
		if (proto == IPPROTO_TCP)
			s->next.tcp++;
		else if (proto == IPPROTO_UDP)
			s->next.udp++;
		else
			s->next.other++;
	}
	free(keys);
	free(vals);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s->next.walk_ms =
	    (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
}

static void count_done(uv_work_t *w, int status)
{
	struct ct_snapshot *s = w->data;

	s->busy = false;
	if (!status && !s->closing) {
		if (s->next.error) {
			/* keep the last good numbers; say the count failed */
			if (s->cur.error != s->next.error)
				pr_warn("conntrack count: %s", strerror(-s->next.error));
			s->cur.error = s->next.error;
		} else {
			s->cur = s->next;
		}
	}
	snap_unref(s);
}

static void count_start(struct ct_snapshot *s)
{
	if (s->busy || s->closing)
		return;
	s->next.taken_ms = uv_now(s->loop);
	if (!s->next.taken_ms)
		s->next.taken_ms = 1; /* 0 means "no count yet" */
	s->work.data = s;
	if (uv_queue_work(s->loop, &s->work, count_work, count_done))
		return;
	s->busy = true;
	s->refs++;
}

static void on_timer(uv_timer_t *t)
{
	count_start(t->data);
}

int ct_snapshot_open(uv_loop_t *loop, int ct_fd, struct ct_snapshot **out)
{
	struct ct_snapshot *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->fd = fcntl(ct_fd, F_DUPFD_CLOEXEC, 3);
	if (s->fd < 0) {
		int ret = -errno;

		free(s);
		return ret;
	}
	s->loop = loop;
	s->refs = 1;
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, on_timer, CT_SNAPSHOT_INTERVAL_MS, CT_SNAPSHOT_INTERVAL_MS);
	count_start(s);
	*out = s;
	return 0;
}

void ct_snapshot_get(struct ct_snapshot *s, struct ct_counts *out, uint64_t *age_ms)
{
	uint64_t now = uv_now(s->loop);

	*out = s->cur;
	*age_ms = s->cur.taken_ms && now > s->cur.taken_ms ? now - s->cur.taken_ms : 0;
	if (!s->cur.taken_ms || *age_ms > CT_SNAPSHOT_FRESH_MS)
		count_start(s);
}

static void timer_closed(uv_handle_t *h)
{
	snap_unref(h->data);
}

void ct_snapshot_close(struct ct_snapshot *s)
{
	if (!s)
		return;
	s->closing = true;
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, timer_closed);
}
