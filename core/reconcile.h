/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one reconcile entry point.  Every change of what the datapath holds goes
 * through bpflb_reconcile():
 *
 *   reason    who                         source (INI file)   overlay
 *   start     daemon_start                parsed now          loaded from the state file
 *   reload    SIGHUP, bpflbctl reload     parsed now          kept
 *   control   bpflbctl service|backend|   the running one     edited, then saved
 *             overlay commands
 *   drift     [daemon] reconcile_interval the running one     kept
 *
 * desired = source + overlay, validated whole (schema and plugins at load and
 * in daemon_validate(), services and overlay while the model is built, before
 * any map is written), then the services apply computes what differs from the
 * actual maps and commits it in an order that never shows the datapath a
 * dangling reference (core/lb/services.c).  On any failure the previous
 * state stays, and the overlay and its file are what they were.
 *
 * A later source (the cluster datastore) is one more reason: it hands a new
 * source here, as reload does.
 */
#ifndef BPFLB_CORE_STATE_RECONCILE_H
#define BPFLB_CORE_STATE_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <bpflb/config.h>

struct bpflb_daemon;
struct bpflb_state;

enum bpflb_reconcile_reason {
	BPFLB_RECONCILE_START,
	BPFLB_RECONCILE_RELOAD,
	BPFLB_RECONCILE_CONTROL,
	BPFLB_RECONCILE_DRIFT,
	BPFLB_RECONCILE_NREASONS
};

/* What a control command changes in the overlay. */
enum bpflb_overlay_op {
	BPFLB_OV_SVC_SET,    /* name, lines */
	BPFLB_OV_SVC_DELETE, /* name */
	BPFLB_OV_SVC_CLEAR,  /* name: back to the file */
	BPFLB_OV_BE_SET,     /* addr, port, state */
	BPFLB_OV_BE_CLEAR,   /* addr, port (0 with all_ports: every override of addr) */
	BPFLB_OV_CLEAR_ALL,
};

struct bpflb_overlay_edit {
	enum bpflb_overlay_op op;
	const char *name;
	const char *const *lines;
	size_t nlines;
	uint32_t addr; /* network order */
	uint16_t port;
	uint8_t state;
	bool all_ports;
	bool must_exist; /* BE_CLEAR of all_ports: refuse when addr has no override */
};

struct bpflb_change {
	enum bpflb_reconcile_reason reason;
	const struct bpflb_config *source;     /* start, reload: the file as just parsed */
	const struct bpflb_overlay_edit *edit; /* control */
};

/*
 * The one function every change goes through (see above).  start and reload
 * switch d->cfg to nothing themselves: the caller keeps source on success.
 * Returns 0 or -errno with err set; the run is counted by reason and result.
 */
int bpflb_reconcile(struct bpflb_daemon *d, const struct bpflb_change *ch, struct bpflb_err *err);

/*
 * The state keeper of a daemon: state_dir (NULL: no state file, the overlay
 * lives in memory only), its overlay, the drift timer and the counters.  Opens
 * and checks state_dir and loads the overlay: a state file that cannot be
 * trusted or read fails here, before the datapath is touched.
 */
int bpflb_state_open(struct bpflb_daemon *d, const char *state_dir, struct bpflb_state **out,
		     struct bpflb_err *err);
void bpflb_state_close(struct bpflb_state *st);

/* After start and each reload: (re)arm the drift check at [daemon] reconcile_interval. */
void bpflb_state_started(struct bpflb_daemon *d);

/*
 * Apply next + the overlay to the services (the services step of
 * daemon_apply()); p: next's services as daemon_validate() prepared them
 * (consumed), NULL to parse them from next.
 */
struct bpflb_services_prepared;
/*
 * --check-config: is the state file under state_dir trusted and readable, and
 * does its overlay fit p (the file's services as daemon_validate() prepared
 * them; changed)?  A state_dir that does not exist holds no overlay: fine.
 */
int bpflb_state_check(struct bpflb_daemon *d, const char *state_dir,
		      struct bpflb_services_prepared *p, struct bpflb_err *err);
int bpflb_state_apply_services(struct bpflb_daemon *d, const struct bpflb_config *next,
			       struct bpflb_services_prepared *p, struct bpflb_err *err);

/* The overlay as JSON (`overlay list`); a new reference. */
struct json_object *bpflb_state_overlay_json(const struct bpflb_daemon *d);
struct bpflb_control;
struct bpflb_metrics;
/* The overlay's control commands (reconcile_cmds.c) and the reconcile, drift and overlay metrics. */
int bpflb_state_control_register(struct bpflb_control *ctl, struct bpflb_daemon *d,
				 struct bpflb_err *err);
int bpflb_state_metrics_register(struct bpflb_metrics *m, struct bpflb_daemon *d,
				 struct bpflb_err *err);

#endif
