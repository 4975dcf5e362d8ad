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
 * Streams: "observe" with "follow": true answers as usual, then the
 * connection carries one line per flow event, {"event": {...}}, and a line
 * {"stats": {...}} whenever the counts of events not shown change, until the
 * client closes it.
 */
#ifndef BPFLB_CORE_CONTROL_H
#define BPFLB_CORE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include <bpflb/config.h>

#define CONTROL_MAX_REQUEST 65536
/*
 * Queued output above which a client is not read (pipelined requests) and a
 * streaming client loses events (counted).
 */
#define CONTROL_MAX_QUEUED (1u << 20)

struct bpflb_daemon;
struct bpflb_control;
struct control_conn;

/*
 * A command: args is the request's "args" object (never NULL: an empty object
 * when absent).  On success return 0 and set *data (may stay NULL: null);
 * on failure return -errno with err set.  c is NULL when called without a
 * connection (tests).
 */
typedef int (*control_handler_fn)(struct bpflb_daemon *d, struct control_conn *c, json_object *args,
				  json_object **data, struct bpflb_err *err);

struct control_cmd {
	const char *name;
	control_handler_fn fn;
	const char *help;
};

/* The command table, NULL-terminated. */
extern const struct control_cmd control_cmds[];

/* -EADDRINUSE (err set) when a daemon answers on path; 0 otherwise.  Changes nothing. */
int control_check_free(const char *path, struct bpflb_err *err);
/*
 * Create the socket's directory (0750, root:group) when missing; refuse one
 * that someone other than root could write (-EPERM, err names it).
 */
int control_prepare_dir(const char *path, const char *group, struct bpflb_err *err);
/* Bind the socket (replacing a stale one) and serve it on d->loop. */
int control_open(struct bpflb_daemon *d, const char *path, const char *group,
		 struct bpflb_control **out, struct bpflb_err *err);
/* Close the listener and every connection; unlinks the socket. */
void control_close(struct bpflb_control *ctl);
unsigned int control_clients(const struct bpflb_control *ctl);
uint64_t control_requests(const struct bpflb_control *ctl);

/*
 * Answer one request line (without its '\n'): the reply line, malloc'ed,
 * without '\n'.  The core of the protocol, used by the connections and by the
 * unit tests (c NULL).
 */
char *control_dispatch(struct bpflb_daemon *d, struct control_conn *c, const char *line,
		       size_t len);

/*
 * Send one JSON line to a connection (streams).  -ENOBUFS when the client
 * does not read fast enough (more than CONTROL_MAX_QUEUED queued): the line is
 * not sent.  -EPIPE when the connection is closing.
 */
int control_conn_send(struct control_conn *c, json_object *o);
/* Mark c as a stream: later input is ignored, flows_unsubscribe() at close. */
void control_conn_stream(struct control_conn *c);

#endif
