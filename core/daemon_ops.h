/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's operations surface: the registries of core/ops/ (control
 * commands, metrics, flow events) and the one place that wires every owner's
 * registrations into them, in the order "help" and /metrics show.  The
 * daemon's own commands (status, plugin.list, reload, plugins' "PLUGIN.CMD")
 * and metrics (build, config, reloads, plugins, datapath drops) are here too.
 */
#ifndef BPFLB_CORE_DAEMON_OPS_H
#define BPFLB_CORE_DAEMON_OPS_H

#include <bpflb/config.h>

struct bpflb_daemon;
struct bpflb_cfg_section;

/*
 * Make d->control, d->metrics and d->flows and register every owner's
 * commands and metrics on them; nothing listens or reads yet.  d->services
 * must be what the commands serve (NULL: "the service state is not open").
 */
int daemon_ops_register(struct bpflb_daemon *d, struct bpflb_err *err);
/*
 * Start reading flow events and counting conntrack (both only warn when they
 * cannot), serve the control socket and, when [daemon] metrics_listen is set,
 * the metrics ([daemon] section ds).
 */
int daemon_ops_listen(struct bpflb_daemon *d, const struct bpflb_daemon_conf *dc,
		      struct bpflb_err *err);
/* Close and free all of it (also after a failed register or listen). */
void daemon_ops_close(struct bpflb_daemon *d);

#endif
