/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Leases: how the nodes agree which of them holds an egress IP in virtual-IP
 * mode, until the cluster has a state store of its own.
 *
 * A lease is a named record {holder, expiry}.  Every candidate gateway renews
 * the lease it holds on each tick; a lease nobody renewed for its duration is
 * free.  Every node (candidate or not) reads the holder on each tick to know
 * where to steer the traffic.  The store is an interface so that the
 * directory store below (one machine, or a shared NFS directory) can be
 * replaced by etcd (a key per egress IP bound to an etcd lease, acquire = a
 * transaction "create if absent", renew = keep-alive, release = revoke)
 * without touching the plugin.
 *
 * Times are wall-clock milliseconds (CLOCK_REALTIME): the nodes sharing a
 * directory must have synchronised clocks, as they do on one machine or with
 * NTP; the margin of one tick covers ordinary skew.
 */
#ifndef EGRESS_LEASE_H
#define EGRESS_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#define EGRESS_LEASE_HOLDER_MAX 64
#define EGRESS_LEASE_KEY_MAX	64

struct egress_lease {
	char holder[EGRESS_LEASE_HOLDER_MAX]; /* node name; "" when free (released) */
	uint64_t expires_ms;		      /* the holder must renew before; free afterwards */
	uint64_t free_since_ms;		      /* released or expired since (0: never held) */
};

struct egress_lease_store;

struct egress_lease_ops {
	const char *name;
	/*
	 * The lease as it is now, without changing it.  A lease never written
	 * reads as free since 0.  Returns 0 or -errno (store unreachable).
	 */
	int (*get)(struct egress_lease_store *s, const char *key, struct egress_lease *out);
	/*
	 * Take the lease for `me` for ttl_ms, if `me` holds it already (a renewal)
	 * or it has been free for at least wait_ms (the candidate's rank times a
	 * step, so that better-ranked live candidates win).  Returns 0 when `me`
	 * holds it afterwards, -EBUSY when another node holds it, -EAGAIN when it
	 * is free but not for long enough, -errno on store errors.  out (may be
	 * NULL) receives the lease as it is after the call.
	 */
	int (*acquire)(struct egress_lease_store *s, const char *key, const char *me,
		       uint32_t ttl_ms, uint32_t wait_ms, struct egress_lease *out);
	/* Extend a lease `me` holds; -EBUSY when it is lost to another node. */
	int (*renew)(struct egress_lease_store *s, const char *key, const char *me, uint32_t ttl_ms,
		     struct egress_lease *out);
	/* Give the lease up now if `me` holds it (a handover, not a wait for expiry). */
	int (*release)(struct egress_lease_store *s, const char *key, const char *me);
	void (*close)(struct egress_lease_store *s);
};

struct egress_lease_store {
	const struct egress_lease_ops *ops;
	/* Wall clock in ms; tests replace it. */
	uint64_t (*now_ms)(void);
};

/* Is the lease held by someone at `now`? */
static inline bool egress_lease_held(const struct egress_lease *l, uint64_t now)
{
	return l->holder[0] && now < l->expires_ms;
}

/*
 * The directory store: DIR/KEY.lease holds "holder NAME\nexpires_ms N\n
 * free_since_ms N\n", replaced atomically (write a temporary file, rename)
 * while DIR/KEY.lock is flock()ed, so that concurrent acquirers serialise and
 * readers (who do not lock) always see a whole record.
 */
int egress_lease_dir_open(const char *dir, struct egress_lease_store **out);

uint64_t egress_lease_realtime_ms(void);

#endif
