// SPDX-License-Identifier: GPL-2.0-only
/*
 * Connection limits of the listeners (see connlimit.h).  The state is the
 * process's: descriptors are counted against one RLIMIT_NOFILE, whichever
 * listener holds them.
 */
#include <dirent.h>
#include <sys/resource.h>
#include <uv.h>

#include "ops/connlimit.h"
#include "log.h"

static struct {
	struct connlimit_cfg cfg;
	unsigned int total;		    /* connections of in_total listeners */
	uint64_t refused;		    /* times a listener paused at a cap */
	struct connlimit_listener *waiting; /* paused listeners, resumed in turn */
	unsigned int lowered_to;	    /* last max_total lowered to (logged once) */
} cl = {
    .cfg = {CONNLIMIT_DEF_TOTAL, CONNLIMIT_DEF_PER_LISTENER, CONNLIMIT_DEF_TIMEOUT_S * 1000},
};

unsigned long connlimit_raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		return 0;
	if (r.rlim_cur < r.rlim_max) {
		struct rlimit want = {r.rlim_max, r.rlim_max};

		if (!setrlimit(RLIMIT_NOFILE, &want))
			r.rlim_cur = r.rlim_max;
	}
	return r.rlim_cur == RLIM_INFINITY ? (unsigned long)-1 : (unsigned long)r.rlim_cur;
}

/* Descriptors open now; 0 when they cannot be counted (no fd to spare). */
static unsigned int fds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own fd */
}

void connlimit_set(const struct connlimit_cfg *cfg)
{
	struct rlimit r;
	unsigned long room;
	unsigned int used = fds_open();

	cl.cfg = *cfg;
	if (!cl.cfg.max_per_listener)
		cl.cfg.max_per_listener = 1;
	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_cur == RLIM_INFINITY || !used)
		return;
	/* connections open now are in used; their slots are part of the budget */
	used -= used > cl.total ? cl.total : used;
	room = r.rlim_cur > used + CONNLIMIT_FD_RESERVE + cl.cfg.max_per_listener
		   ? r.rlim_cur - used - CONNLIMIT_FD_RESERVE - cl.cfg.max_per_listener
		   : 1;
	if (cl.cfg.max_total <= room) {
		cl.lowered_to = 0;
		return;
	}
	cl.cfg.max_total = (unsigned int)room;
	if (cl.lowered_to != room)
		pr_warn("max_connections lowered to %lu: RLIMIT_NOFILE is %llu, %u descriptors are "
			"in use, %u are kept for reloads and max_connections_per_listener for "
			"the control socket; raise LimitNOFILE= or lower max_connections",
			room, (unsigned long long)r.rlim_cur, used, CONNLIMIT_FD_RESERVE);
	cl.lowered_to = (unsigned int)room;
}

const struct connlimit_cfg *connlimit_get(void)
{
	return &cl.cfg;
}

uint64_t connlimit_timeout_ms(void)
{
	return cl.cfg.timeout_ms;
}

uint64_t connlimit_refused(void)
{
	return cl.refused;
}

unsigned int connlimit_total(void)
{
	return cl.total;
}

void connlimit_listener_init(struct connlimit_listener *l, uv_stream_t *srv, bool in_total)
{
	*l = (struct connlimit_listener){.srv = srv, .in_total = in_total};
}

void connlimit_listener_init_cb(struct connlimit_listener *l,
				void (*resume)(struct connlimit_listener *l), void *ctx, bool in_total)
{
	*l = (struct connlimit_listener){.resume = resume, .ctx = ctx, .in_total = in_total};
}

static void unwait(struct connlimit_listener *l)
{
	if (!l->waiting)
		return;
	*l->pprev_waiting = l->next_waiting;
	if (l->next_waiting)
		l->next_waiting->pprev_waiting = l->pprev_waiting;
	l->waiting = false;
}

static bool has_room(const struct connlimit_listener *l)
{
	return l->nconns < cl.cfg.max_per_listener && (!l->in_total || cl.total < cl.cfg.max_total);
}

bool connlimit_admit(struct connlimit_listener *l)
{
	if (l->closing)
		return false;
	if (!has_room(l)) {
		if (!l->waiting) {
			/* at the end: listeners are resumed in the order they paused */
			struct connlimit_listener **pp = &cl.waiting;

			while (*pp)
				pp = &(*pp)->next_waiting;
			l->next_waiting = NULL;
			l->pprev_waiting = pp;
			*pp = l;
			l->waiting = true;
			cl.refused++;
		}
		return false;
	}
	unwait(l);
	l->nconns++;
	if (l->in_total)
		cl.total++;
	return true;
}

void connlimit_release(struct connlimit_listener *l)
{
	struct connlimit_listener *w;

	if (l->nconns)
		l->nconns--;
	if (l->in_total && cl.total)
		cl.total--;
	/*
	 * Resume whoever waits for the slot: calling its connection callback
	 * again accepts the connection libuv holds for it, and libuv polls the
	 * listener again.  A listener that still has no room stays in the list.
	 */
again:
	for (w = cl.waiting; w; w = w->next_waiting) {
		if (!has_room(w))
			continue;
		unwait(w);
		/* the callback may change the list: start over */
		if (w->resume)
			w->resume(w);
		else
			w->srv->connection_cb(w->srv, 0);
		goto again;
	}
}

void connlimit_listener_close(struct connlimit_listener *l)
{
	unwait(l);
	l->closing = true;
}
