/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Limits shared by every listener of bpflbd: the control socket and the HTTP
 * servers (http.h: metrics, /healthz, the health check node ports).
 *
 * Descriptors are one budget for the whole process (RLIMIT_NOFILE), and a
 * reload needs some of them (the configuration file, plugins, BPF objects), so
 * no client may take them all:
 *
 *  - each listener accepts at most max_per_listener connections
 *    ([daemon] max_connections_per_listener);
 *  - the HTTP servers together accept at most
 *    max_total ([daemon] max_connections).  The control socket is not counted
 *    there: it has its own max_per_listener share, so a flood of the TCP ports
 *    never locks bpflbctl out;
 *  - max_total is lowered at start and at reload when RLIMIT_NOFILE leaves less
 *    than it, CONNLIMIT_FD_RESERVE descriptors and the control socket's share;
 *  - a listener at its cap stops accepting: libuv holds the one connection
 *    it took and stops polling the listener, further ones wait in the kernel's
 *    backlog, and the listener resumes when one of the connections closes;
 *  - a connection that completes no request within timeout_ms ([daemon]
 *    client_timeout) is closed: idle ones, slow partial requests and clients
 *    that leave their answers unread alike.
 */
#ifndef BPFLB_CORE_CONNLIMIT_H
#define BPFLB_CORE_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* Descriptors kept free of connections for reloads and the datapath's objects. */
#define CONNLIMIT_FD_RESERVE 256

/* Defaults of the [daemon] keys (config_core.c uses them too). */
#define CONNLIMIT_DEF_TOTAL	   1024
#define CONNLIMIT_DEF_PER_LISTENER 256
#define CONNLIMIT_DEF_TIMEOUT_S	   30

struct connlimit_cfg {
	unsigned int max_total;
	unsigned int max_per_listener;
	uint64_t timeout_ms;
};

struct uv_stream_s;

struct connlimit_listener {
	struct uv_stream_s *srv; /* uv_stream_t; no <uv.h> for config_core.c */
	/* instead of srv's connection callback, when set (http.c accepts itself) */
	void (*resume)(struct connlimit_listener *l);
	void *ctx; /* resume's */
	unsigned int nconns;
	bool in_total; /* false for the control socket (its own share) */
	bool waiting;  /* refused a connection; resumed when a slot frees */
	bool closing;
	struct connlimit_listener *next_waiting, **pprev_waiting;
};

/*
 * Raise RLIMIT_NOFILE's soft limit to the hard one (early in main, before
 * anything opens descriptors).  Returns the soft limit now in force.
 */
unsigned long connlimit_raise_nofile(void);

/*
 * Set the limits (start and reload).  max_total is lowered so that it, the
 * control socket's share and CONNLIMIT_FD_RESERVE fit into RLIMIT_NOFILE next
 * to the descriptors open now; a lowered value is logged once with the keys
 * to change.  The effective values are what connlimit_get() returns.
 */
void connlimit_set(const struct connlimit_cfg *cfg);
const struct connlimit_cfg *connlimit_get(void);
uint64_t connlimit_timeout_ms(void);

/* Connections refused so far because a cap was reached (metrics). */
uint64_t connlimit_refused(void);
/* Open connections of the HTTP servers (metrics, /healthz, health check ports). */
unsigned int connlimit_total(void);

void connlimit_listener_init(struct connlimit_listener *l, struct uv_stream_s *srv, bool in_total);
/* A listener that is not a libuv stream: resume(l) is called when a slot frees. */
void connlimit_listener_init_cb(struct connlimit_listener *l,
				void (*resume)(struct connlimit_listener *l), void *ctx,
				bool in_total);
/*
 * In the listener's connection callback, before uv_accept(): true when a
 * connection may be accepted (it is counted: connlimit_release() at its close).
 * false: do not call uv_accept(); the listener pauses and its connection
 * callback (or resume) is called again once a slot is free.
 */
bool connlimit_admit(struct connlimit_listener *l);
/* One of l's admitted connections is closed. */
void connlimit_release(struct connlimit_listener *l);
/* Before the listener's handle is closed: it is never resumed again. */
void connlimit_listener_close(struct connlimit_listener *l);

#endif
