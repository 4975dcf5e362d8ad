/* SPDX-License-Identifier: GPL-2.0-only */
/* bpflbd's state and its life cycle: start, reload (SIGHUP), stop, cleanup. */
#ifndef BPFLB_CORE_DAEMON_H
#define BPFLB_CORE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "config/config_internal.h"
#include "lb/services_ops.h"
#include "pipeline.h"
#include "plugin_host.h"

struct bpflb_services;
struct bpflb_control;
struct bpflb_flows;
struct bpflb_metrics;
struct ct_snapshot;
struct bpflb_state;

struct bpflb_daemon {
	uv_loop_t *loop;
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t tick;
	uv_timer_t watchdog; /* WATCHDOG=1 to systemd; initialized only under WatchdogSec= */
	char *config_path;
	struct bpflb_config *cfg; /* the running configuration */
	struct plugin_host plugins;
	struct pipeline pipeline;
	bool pipeline_ready;
	bool bpffs_private; /* bpffs_root's bpffs vanishes with our mount namespace */
	struct bpflb_services *services;
	/* what validate_config() parsed of the candidate, for apply_config() */
	struct bpflb_services_prepared *svc_prepared;
	struct bpflb_plugin_ctx *mode; /* active mode plugin, NULL for mode=none */
	uint64_t reloads_ok;
	uint64_t reloads_failed;
	char last_reload_error[1024];
	time_t started_at;
	struct bpflb_control *control; /* control commands and socket (daemon_ops.c) */
	struct bpflb_flows *flows;     /* flow event reader; reads nothing when unavailable */
	struct bpflb_metrics *metrics; /* metrics collectors; served when metrics_listen is set */
	struct ct_snapshot *ct_counts; /* conntrack counts (ct_snapshot.c); NULL without services */
	struct lb_ops lb_ops;	       /* what lb's commands and metrics read (daemon_ops.c) */
	struct bpflb_state *state;     /* overlay, reconcile, drift check (reconcile.c) */
	int root_lock_fd;	       /* holds the flock of bpffs_root (state/lock.h); -1 none */
};

/* Load, validate and apply the configuration, attach; errors are fatal (err). */
int daemon_start(struct bpflb_daemon *d, const char *config_path, struct bpflb_err *err);
/* Run the loop until SIGTERM/SIGINT. */
int daemon_run(struct bpflb_daemon *d);
/*
 * Re-read the file and switch to it; on any error the running configuration
 * and datapath stay exactly as they were, the error is logged and counted.
 */
int daemon_reload(struct bpflb_daemon *d);
/* Leave the datapath and pins in place, release userspace state. */
void daemon_stop(struct bpflb_daemon *d);

/* --check-config: everything daemon_start checks, without touching the system. */
int daemon_check_config(const char *config_path, struct bpflb_err *err);
/*
 * --cleanup: remove the instance's tc filters and the pins it made (by name);
 * refuses a bpffs_root that is not on a bpffs.
 */
int daemon_cleanup(const char *config_path, struct bpflb_err *err);

/*
 * The two halves of a start or reload, called by bpflb_reconcile()
 * (reconcile.h), the one entry point of every change:
 * daemon_validate() checks what needs the loaded plugins or the system;
 * daemon_apply() switches the running state from prev (NULL at start) to next
 * (services with the overlay, plugins, devices) and rolls back on failure.
 */
int daemon_validate(struct bpflb_daemon *d, const struct bpflb_config *next,
		    struct bpflb_err *err);
int daemon_apply(struct bpflb_daemon *d, const struct bpflb_config *next,
		 const struct bpflb_config *prev, struct bpflb_err *err);

/* Load and validate a configuration with the schema of the core and every loaded plugin. */
int daemon_load_config(struct bpflb_daemon *d, const char *path, struct bpflb_config **out,
		       struct bpflb_err *err);

#endif
