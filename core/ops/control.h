/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control socket: bpflbctl's API, served on the daemon's libuv loop.
 *
 * Transport: a Unix stream socket at [daemon] control_socket, mode 0600
 * (owner root), or 0660 with the group [daemon] control_group; never
 * accessible to others.  Its directory must be writable by root alone
 * (control_prepare_dir).  Connections are capped and time out (connlimit.h);
 * a client whose unread answers exceed CONTROL_MAX_QUEUED is not read until it
 * takes them.
 *
 * Framing: newline-delimited JSON.  A request is one JSON object on one line,
 * at most CONTROL_MAX_REQUEST bytes with its '\n':
 *
 *     {"cmd": "service.get", "args": {"name": "web"}, "id": 7}
 *
 * "args" is optional (an object), "id" is optional (any JSON value, echoed).
 * Every request gets exactly one reply line:
 *
 *     {"ok": true, "data": ..., "id": 7}
 *     {"ok": false, "error": "no service 'web'", "errno": 2, "id": 7}
 *
 * A malformed line, a line that is not an object, an unknown command or bad
 * arguments get an error reply and change nothing; the connection stays
 * usable.  A request longer than CONTROL_MAX_REQUEST gets an error reply and
 * the connection is closed (there is no way to find the next request).
 *
 * Streams: a command may turn its connection into a stream after answering
 * (control_conn_stream): "observe" with "follow": true answers as usual, then
 * the connection carries one line per flow event, {"event": {...}}, and a
 * line {"stats": {...}} whenever the counts of events not shown change, until
 * the client closes it.
 *
 * Commands: this file knows none.  Each owner registers its own on the
 * registry (bpflb_control_register) when the daemon opens its operations
 * surface (core/daemon_ops.c, daemon_ops_register): the daemon "status",
 * "plugin.list", "reload" (core/daemon_ops.c), the load-balancing control
 * plane "service.*", "backend.*", "ct.*", "nat.list", "maglev.show"
 * (core/lb/services_ctl.c), flow events "observe" (core/ops/flows.c); "help"
 * is built in and lists them in the order they were registered.  A name no
 * table has may be claimed by the fallback ("PLUGIN.CMD": the plugin's
 * control hook, core/daemon_ops.c).
 *
 * Adding commands (e.g. in core/state/):
 *
 *     static int h_overlay_list(void *ctx, struct control_conn *c, json_object *args,
 *                               json_object **data, struct bpflb_err *err);
 *     static const struct bpflb_control_cmd state_cmds[] = {
 *         {"overlay.list", h_overlay_list, "the overlay's entries"},
 *         {NULL},
 *     };
 *     ret = bpflb_control_register(ctl, state_cmds, st, err);
 *
 * and call that from daemon_ops_register(), where the order of "help" is made.
 * Read arguments with control_arg_*() so that errors read alike; a handler
 * that changes state says so in the log (pr_notice) and, on error, changes
 * nothing.
 */
#ifndef BPFLB_CORE_CONTROL_H
#define BPFLB_CORE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include <uv.h>

#include <bpflb/config.h>

#define CONTROL_MAX_REQUEST 65536
/*
 * Queued output above which a client is not read (pipelined requests) and a
 * streaming client loses events (counted).
 */
#define CONTROL_MAX_QUEUED (1u << 20)

#define CONTROL_MAX_CMDS 64 /* registered commands; "help" is one */

struct bpflb_control;
struct bpflb_metrics;
struct control_conn;

/*
 * A command: ctx is what its owner registered it with; args is the request's
 * "args" object (never NULL: an empty object when absent).  On success return
 * 0 and set *data (may stay NULL: null); on failure return -errno with err
 * set.  c is NULL when called without a connection (tests).
 */
typedef int (*bpflb_control_fn)(void *ctx, struct control_conn *c, json_object *args,
				json_object **data, struct bpflb_err *err);

struct bpflb_control_cmd {
	const char *name; /* "noun.verb" as bpflbctl sends it */
	bpflb_control_fn fn;
	const char *help; /* one line for "help": what it does, {its args} */
};

/*
 * Names no registered command has: claims() says whether call() answers
 * name (asked before the arguments are checked, so that an unknown command
 * reads as unknown whatever its arguments).
 */
struct bpflb_control_fallback {
	bool (*claims)(void *ctx, const char *name);
	int (*call)(void *ctx, const char *name, json_object *args, json_object **data,
		    struct bpflb_err *err);
};

/* An empty registry (only "help"), serving nothing yet; NULL on ENOMEM. */
struct bpflb_control *bpflb_control_new(void);
/*
 * Register the commands of cmds (ended by {NULL}), each called with ctx.
 * All or none: -EEXIST when a name is taken, -ENOSPC beyond CONTROL_MAX_CMDS
 * (err set).  The table and ctx must outlive the registry.
 */
int bpflb_control_register(struct bpflb_control *ctl, const struct bpflb_control_cmd *cmds,
			   void *ctx, struct bpflb_err *err);
/* The one fallback (replaces an earlier one); fb must outlive the registry. */
void bpflb_control_set_fallback(struct bpflb_control *ctl, const struct bpflb_control_fallback *fb,
				void *ctx);

/*
 * Arguments of a request, for handlers: 0 with *out set, or left as it was
 * when the key is absent or null (strings: NULL; -EINVAL when required);
 * -EINVAL with err naming the key when it has another type or range.
 */
int control_arg_str(json_object *args, const char *key, bool required, const char **out,
		    struct bpflb_err *err);
int control_arg_uint(json_object *args, const char *key, uint64_t max, uint64_t *out,
		     struct bpflb_err *err);
int control_arg_bool(json_object *args, const char *key, bool *out, struct bpflb_err *err);

/* -EADDRINUSE (err set) when a daemon answers on path; 0 otherwise.  Changes nothing. */
int control_check_free(const char *path, struct bpflb_err *err);
/*
 * Create the socket's directory (0750, root:group) when missing; refuse one
 * that someone other than root could write (-EPERM, err names it).
 */
int control_prepare_dir(const char *path, const char *group, struct bpflb_err *err);
/* Bind the socket (replacing a stale one) and serve ctl's commands on loop. */
int control_listen(struct bpflb_control *ctl, uv_loop_t *loop, const char *path, const char *group,
		   struct bpflb_err *err);
/* Close the listener and every connection, unlink the socket, free ctl (NULL: nothing). */
void control_close(struct bpflb_control *ctl);
/* Its metrics (bpflb_control_clients, bpflb_control_requests_total) on m. */
int control_metrics_register(struct bpflb_control *ctl, struct bpflb_metrics *m,
			     struct bpflb_err *err);
/* The socket's path ("" when not listening), open connections, requests answered. */
const char *control_path(const struct bpflb_control *ctl);
unsigned int control_clients(const struct bpflb_control *ctl);
uint64_t control_requests(const struct bpflb_control *ctl);

/*
 * Answer one request line (without its '\n'): the reply line, malloc'ed,
 * without '\n'.  The core of the protocol, used by the connections and by the
 * unit tests (c NULL).
 */
char *control_dispatch(struct bpflb_control *ctl, struct control_conn *c, const char *line,
		       size_t len);

/*
 * Send one JSON line to a connection (streams).  -ENOBUFS when the client
 * does not read fast enough (more than CONTROL_MAX_QUEUED queued): the line is
 * not sent.  -EPIPE when the connection is closing.
 */
int control_conn_send(struct control_conn *c, json_object *o);
/*
 * Make c a stream: later input is ignored, and on_close(ctx, c) runs when it
 * closes (the stream's owner forgets it there).
 */
void control_conn_stream(struct control_conn *c,
			 void (*on_close)(void *ctx, struct control_conn *c), void *ctx);

#endif
