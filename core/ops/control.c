// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control socket (protocol in control.h): a libuv pipe server, the
 * newline-delimited JSON framing, and the registry of commands that their
 * owners fill (bpflb_control_register).
 *
 * This file answers no command of its own but "help": what a command does is
 * its owner's business, so the socket neither includes nor links against the
 * state it serves.  Handlers run on the loop and must not block it for long
 * (the slowest are the conntrack listings, one batched map read).
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "ops/connlimit.h"
#include "ops/control.h"
#include "ops/metrics.h"

struct control_conn {
	uv_pipe_t pipe;
	uv_timer_t timer; /* client_timeout: closes a client that makes no progress */
	struct bpflb_control *ctl;
	struct control_conn *next, **pprev;
	int open_handles;
	bool closing;
	bool streaming;
	bool close_after_write;
	bool throttled; /* not read until its unread answers shrink */
	unsigned int pending;
	void (*on_close)(void *ctx, struct control_conn *c); /* a stream's owner */
	void *on_close_ctx;
	size_t len;
	char buf[CONTROL_MAX_REQUEST];
};

struct control_write {
	uv_write_t req;
	struct control_conn *c;
	size_t len;
	char data[];
};

struct control_entry {
	const struct bpflb_control_cmd *cmd;
	void *ctx;
};

struct bpflb_control {
	uv_pipe_t srv;
	bool listening;
	struct connlimit_listener lim;
	struct control_conn *conns;
	unsigned int nconns;
	uint64_t requests;
	/* registration order, which "help" keeps; a few dozen: a linear lookup */
	struct control_entry cmds[CONTROL_MAX_CMDS];
	unsigned int ncmds;
	const struct bpflb_control_fallback *fallback;
	void *fallback_ctx;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* --- arguments ------------------------------------------------------------- */

int control_arg_str(json_object *args, const char *key, bool required, const char **out,
		    struct bpflb_err *err)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			return bpflb_err_set(err, "argument '%s' is required", key), -EINVAL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return bpflb_err_set(err, "argument '%s' must be a string", key), -EINVAL;
	*out = json_object_get_string(v);
	return 0;
}

int control_arg_uint(json_object *args, const char *key, uint64_t max, uint64_t *out,
		     struct bpflb_err *err)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return bpflb_err_set(err, "argument '%s' must be an integer", key), -EINVAL;
	n = json_object_get_int64(v);
	if (n < 0 || (uint64_t)n > max)
		return bpflb_err_set(err, "argument '%s' must be 0-%llu", key,
				     (unsigned long long)max),
		       -EINVAL;
	*out = (uint64_t)n;
	return 0;
}

int control_arg_bool(json_object *args, const char *key, bool *out, struct bpflb_err *err)
{
	json_object *v;

	if (!json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return bpflb_err_set(err, "argument '%s' must be true or false", key), -EINVAL;
	*out = json_object_get_boolean(v);
	return 0;
}

/* --- the registry ------------------------------------------------------------ */

static int h_help(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		  struct bpflb_err *err)
{
	struct bpflb_control *ctl = ctx;

	*data = json_object_new_object();
	for (unsigned int i = 0; i < ctl->ncmds; i++)
		json_object_object_add(*data, ctl->cmds[i].cmd->name,
				       json_object_new_string(ctl->cmds[i].cmd->help));
	return 0;
}

/* "help" stays last in its own listing, however many owners register after it. */
static const struct bpflb_control_cmd help_cmd = {"help", h_help, "this list"};

static const struct control_entry *cmd_find(const struct bpflb_control *ctl, const char *name)
{
	for (unsigned int i = 0; i < ctl->ncmds; i++)
		if (!strcmp(ctl->cmds[i].cmd->name, name))
			return &ctl->cmds[i];
	return NULL;
}

struct bpflb_control *bpflb_control_new(void)
{
	struct bpflb_control *ctl = calloc(1, sizeof(*ctl));

	if (!ctl)
		return NULL;
	ctl->cmds[ctl->ncmds++] = (struct control_entry){&help_cmd, ctl};
	return ctl;
}

int bpflb_control_register(struct bpflb_control *ctl, const struct bpflb_control_cmd *cmds,
			   void *ctx, struct bpflb_err *err)
{
	struct control_entry help = ctl->cmds[ctl->ncmds - 1];
	unsigned int n = 0;

	for (const struct bpflb_control_cmd *c = cmds; c->name; c++, n++) {
		if (cmd_find(ctl, c->name))
			return bpflb_err_set(err, "control command '%s' is registered twice",
					     c->name),
			       -EEXIST;
		for (const struct bpflb_control_cmd *p = cmds; p != c; p++)
			if (!strcmp(p->name, c->name))
				return bpflb_err_set(err,
						     "control command '%s' is registered twice",
						     c->name),
				       -EEXIST;
	}
	if (ctl->ncmds + n > CONTROL_MAX_CMDS)
		return bpflb_err_set(err, "more than %d control commands (CONTROL_MAX_CMDS)",
				     CONTROL_MAX_CMDS),
		       -ENOSPC;
	ctl->ncmds--; /* help, put back after them */
	for (const struct bpflb_control_cmd *c = cmds; c->name; c++)
		ctl->cmds[ctl->ncmds++] = (struct control_entry){c, ctx};
	ctl->cmds[ctl->ncmds++] = help;
	return 0;
}

void bpflb_control_set_fallback(struct bpflb_control *ctl, const struct bpflb_control_fallback *fb,
				void *ctx)
{
	ctl->fallback = fb;
	ctl->fallback_ctx = ctx;
}

/* --- dispatch ---------------------------------------------------------------------- */

static char *reply_string(json_object *reply)
{
	char *s = strdup(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(reply);
	return s;
}

static char *error_reply(json_object *id, int ret, const char *msg)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "ok", json_object_new_boolean(false));
	json_object_object_add(r, "error", json_object_new_string(msg));
	json_object_object_add(r, "errno", json_object_new_int(ret < 0 ? -ret : ret));
	if (id)
		json_object_object_add(r, "id", json_object_get(id));
	return reply_string(r);
}

char *control_dispatch(struct bpflb_control *ctl, struct control_conn *c, const char *line,
		       size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *req = NULL, *cmdv, *args = NULL, *id = NULL, *data = NULL, *r;
	const struct control_entry *cmd;
	struct bpflb_err err = {""};
	const char *name;
	size_t end;
	char *out;
	int ret;

	if (!tok)
		return error_reply(NULL, ENOMEM, "out of memory");
	if (len && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len)) {
		out = error_reply(NULL, EINVAL, "malformed request: NUL byte in the line");
		goto out;
	}
	req = json_tokener_parse_ex(tok, line, (int)len);
	/* Blanks may follow the object; line is not NUL-terminated. */
	for (end = tok->char_offset; end < len && (line[end] == ' ' || line[end] == '\t'); end++)
		;
	if (!req || json_tokener_get_error(tok) != json_tokener_success || end < len) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		char msg[256];

		if (req && e == json_tokener_success)
			snprintf(msg, sizeof(msg),
				 "malformed request: text after the JSON object at byte %d",
				 (int)tok->char_offset);
		else
			snprintf(msg, sizeof(msg), "malformed request: %s",
				 e == json_tokener_continue ? "incomplete JSON"
							    : json_tokener_error_desc(e));
		out = error_reply(NULL, EINVAL, msg);
		goto out;
	}
	if (!json_object_is_type(req, json_type_object)) {
		out = error_reply(NULL, EINVAL,
				  "malformed request: expected a JSON object "
				  "{\"cmd\": ..., \"args\": {...}}");
		goto out;
	}
	json_object_object_get_ex(req, "id", &id);
	if (!json_object_object_get_ex(req, "cmd", &cmdv) ||
	    !json_object_is_type(cmdv, json_type_string)) {
		out = error_reply(id, EINVAL, "malformed request: \"cmd\" (a string) is missing");
		goto out;
	}
	name = json_object_get_string(cmdv);
	cmd = cmd_find(ctl, name);
	if (!cmd && !(ctl->fallback && ctl->fallback->claims(ctl->fallback_ctx, name))) {
		char msg[256];

		snprintf(msg, sizeof(msg), "unknown command '%.64s'; 'help' lists the commands",
			 name);
		out = error_reply(id, EINVAL, msg);
		goto out;
	}
	if (json_object_object_get_ex(req, "args", &args) &&
	    !json_object_is_type(args, json_type_null)) {
		if (!json_object_is_type(args, json_type_object)) {
			out = error_reply(id, EINVAL,
					  "malformed request: \"args\" must be an "
					  "object");
			goto out;
		}
		json_object_get(args);
	} else {
		args = json_object_new_object();
	}
	ret = cmd ? cmd->cmd->fn(cmd->ctx, c, args, &data, &err)
		  : ctl->fallback->call(ctl->fallback_ctx, name, args, &data, &err);
	json_object_put(args);
	if (ret) {
		json_object_put(data);
		out = error_reply(id, ret, err.msg[0] ? err.msg : strerror(-ret));
		goto out;
	}
	r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(true));
	json_object_object_add(r, "data", data);
	if (id)
		json_object_object_add(r, "id", json_object_get(id));
	out = reply_string(r);
out:
	json_object_put(req);
	json_tokener_free(tok);
	return out;
}

/* --- connections --------------------------------------------------------------------- */

/*
 * A connection's timer (client_timeout, connlimit.h) closes it when it makes no
 * progress: it is restarted by every request answered and every answer the
 * client took, and runs while a request is incomplete, while the connection
 * is idle and while answers wait to be read.  A stream (observe --follow)
 * has no requests: its timer runs only while events wait to be read.
 */
static void conn_handle_closed(uv_handle_t *h)
{
	struct control_conn *c = h->data;

	if (--c->open_handles == 0)
		free(c);
}

static void conn_close(struct control_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->on_close)
		c->on_close(c->on_close_ctx, c);
	if (c->pprev) {
		*c->pprev = c->next;
		if (c->next)
			c->next->pprev = c->pprev;
		c->pprev = NULL;
		c->ctl->nconns--;
	}
	uv_read_stop((uv_stream_t *)&c->pipe);
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->pipe, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	/* last: it may accept a waiting connection */
	connlimit_release(&c->ctl->lim);
}

static void conn_timeout(uv_timer_t *t)
{
	struct control_conn *c = t->data;

	pr_debug("control: closing a client that made no progress in %llu ms (%s)",
		 (unsigned long long)connlimit_timeout_ms(),
		 c->pending ? "answers unread"
		 : c->len   ? "request incomplete"
			    : "idle");
	conn_close(c);
}

static void conn_progress(struct control_conn *c)
{
	if (c->streaming && !c->pending)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, conn_timeout, connlimit_timeout_ms(), 0);
}

static bool conn_over_queue(struct control_conn *c)
{
	return uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > CONTROL_MAX_QUEUED;
}

static void conn_process(struct control_conn *c);
static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);
static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);

static void conn_written(uv_write_t *req, int status)
{
	struct control_write *w = (struct control_write *)req;
	struct control_conn *c = w->c;

	free(w);
	c->pending--;
	if (c->closing)
		return;
	/* EPIPE, ECONNRESET: the client hung up; nothing more to send it */
	if (status < 0 || (c->close_after_write && !c->pending)) {
		conn_close(c);
		return;
	}
	conn_progress(c);
	/* a client that stopped reading is read again once it caught up */
	if (c->throttled &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) <= CONTROL_MAX_QUEUED / 2) {
		c->throttled = false;
		conn_process(c);
		if (!c->closing && !c->throttled && !c->close_after_write && !c->streaming &&
		    uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read))
			conn_close(c);
	}
}

static int conn_write(struct control_conn *c, const char *s, size_t len)
{
	struct control_write *w;
	uv_buf_t b;

	if (c->closing)
		return -EPIPE;
	w = malloc(sizeof(*w) + len + 1);
	if (!w)
		return -ENOMEM;
	memcpy(w->data, s, len);
	w->data[len] = '\n';
	w->c = c;
	b = uv_buf_init(w->data, (unsigned int)len + 1);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, conn_written)) {
		free(w);
		conn_close(c);
		return -EPIPE;
	}
	c->pending++;
	if (c->streaming && !uv_is_active((uv_handle_t *)&c->timer))
		conn_progress(c);
	return 0;
}

int control_conn_send(struct control_conn *c, json_object *o)
{
	const char *s;

	if (c->closing)
		return -EPIPE;
	if (conn_over_queue(c))
		return -ENOBUFS;
	s = json_object_to_json_string_ext(o,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	return conn_write(c, s, strlen(s));
}

void control_conn_stream(struct control_conn *c,
			 void (*on_close)(void *ctx, struct control_conn *c), void *ctx)
{
	c->streaming = true;
	c->on_close = on_close;
	c->on_close_ctx = ctx;
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct control_conn *c = h->data;

	*b = uv_buf_init(c->buf + c->len, (unsigned int)(sizeof(c->buf) - c->len));
}

/*
 * Answer the complete lines in c->buf.  Stops reading from a client whose
 * unread answers exceed CONTROL_MAX_QUEUED (pipelined requests it does not
 * read): conn_written reads it again once half of them went out.
 */
static void conn_process(struct control_conn *c)
{
	bool answered = false;
	char *nl;

	while (!c->streaming && !c->closing && !c->close_after_write &&
	       (nl = memchr(c->buf, '\n', c->len))) {
		size_t l = (size_t)(nl - c->buf);
		char *reply;

		if (conn_over_queue(c)) {
			c->throttled = true;
			uv_read_stop((uv_stream_t *)&c->pipe);
			break;
		}
		c->ctl->requests++;
		reply = control_dispatch(c->ctl, c, c->buf, l);
		memmove(c->buf, nl + 1, c->len - l - 1);
		c->len -= l + 1;
		if (!reply) {
			conn_close(c);
			return;
		}
		conn_write(c, reply, strlen(reply));
		free(reply);
		answered = true;
	}
	if (c->closing)
		return;
	if (answered)
		conn_progress(c);
	if (c->len == sizeof(c->buf) && !c->throttled && !memchr(c->buf, '\n', c->len)) {
		char *reply;

		c->ctl->requests++;
		reply = error_reply(NULL, E2BIG, "request longer than 65536 bytes; closing");
		c->len = 0;
		if (reply) {
			conn_write(c, reply, strlen(reply));
			free(reply);
		}
		c->close_after_write = true;
		uv_read_stop((uv_stream_t *)&c->pipe);
		if (!c->pending)
			conn_close(c);
	}
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
	struct control_conn *c = st->data;

	if (nread < 0) {
		uv_read_stop(st);
		if (nread == UV_EOF && c->pending)
			c->close_after_write = true;
		else
			conn_close(c);
		return;
	}
	if (!nread || c->closing || c->close_after_write)
		return;
	if (c->streaming)
		return; /* a stream takes no more requests */
	c->len += (size_t)nread;
	conn_process(c);
}

static void on_connection(uv_stream_t *srv, int status)
{
	struct bpflb_control *ctl = srv->data;
	struct control_conn *c;

	if (status < 0)
		return;
	if (!connlimit_admit(&ctl->lim))
		return; /* resumed when a connection closes */
	c = calloc(1, sizeof(*c));
	if (!c) {
		connlimit_release(&ctl->lim);
		return;
	}
	c->ctl = ctl;
	uv_pipe_init(srv->loop, &c->pipe, 0);
	uv_timer_init(srv->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->open_handles = 2;
	c->next = ctl->conns;
	if (ctl->conns)
		ctl->conns->pprev = &c->next;
	c->pprev = &ctl->conns;
	ctl->conns = c;
	ctl->nconns++;
	if (uv_accept(srv, (uv_stream_t *)&c->pipe) ||
	    uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read)) {
		conn_close(c);
		return;
	}
	conn_progress(c);
}

/* --- the listener ------------------------------------------------------------------------ */

static bool socket_answers(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return !ret;
}

int control_check_free(const char *path, struct bpflb_err *err)
{
	if (!socket_answers(path))
		return 0;
	return bpflb_err_set(err,
			     "control_socket %s is served by another running bpflbd; stop it "
			     "or give this instance its own control_socket",
			     path),
	       -EADDRINUSE;
}

/* A socket file left by a daemon that died: remove it; one that answers: refuse. */
static int stale_socket(const char *path, struct bpflb_err *err)
{
	struct stat st;
	int ret;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		return bpflb_err_set(err, "control_socket %s: %s", path, strerror(errno)), -errno;
	}
	if (!S_ISSOCK(st.st_mode))
		return bpflb_err_set(err,
				     "control_socket %s exists and is not a socket; remove it or "
				     "choose another path",
				     path),
		       -EEXIST;
	ret = control_check_free(path, err);
	if (ret)
		return ret;
	if (unlink(path) && errno != ENOENT)
		return bpflb_err_set(err, "cannot remove the stale control socket %s: %s", path,
				     strerror(errno)),
		       -errno;
	return 0;
}

/*
 * Whoever can write the socket's directory can put their own socket in its
 * place and answer root's bpflbctl.  As sshd's StrictModes: every directory
 * from / to the socket's (symlinks resolved) must belong to root or to us and
 * must not be writable by group or others; an ancestor may be if it is
 * sticky (/tmp), where nobody renames or removes what they do not own.  A
 * missing directory is created 0750, root:control_group with a group.
 */
static int socket_dir_check(const char *path, const char *dir, struct stat *st,
			    struct bpflb_err *err)
{
	char real[PATH_MAX], *p;

	if (!realpath(dir, real))
		return bpflb_err_set(err, "control_socket %s: directory %s: %s", path, dir,
				     strerror(errno)),
		       -errno;
	for (p = real;; p++) {
		bool last = !*p;
		char c = *p;

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (lstat(p == real ? "/" : real, st)) {
			int ret = -errno;

			*p = c;
			return bpflb_err_set(err, "control_socket %s: directory %s: %s", path, real,
					     strerror(-ret)),
			       ret;
		}
		if (st->st_uid != 0 && st->st_uid != geteuid())
			return bpflb_err_set(
				   err,
				   "control_socket %s: refusing directory %s: owned by "
				   "uid %u, not root; whoever owns it can replace the "
				   "socket (use a root-owned directory such as /run/bpflb)",
				   path, p == real ? "/" : real, st->st_uid),
			       -EPERM;
		if ((st->st_mode & (S_IWGRP | S_IWOTH)) && (last || !(st->st_mode & S_ISVTX)))
			return bpflb_err_set(err,
					     "control_socket %s: refusing directory %s: mode %04o "
					     "is writable by %s, who could replace the socket "
					     "(chmod go-w, or use a directory such as /run/bpflb)",
					     path, p == real ? "/" : real,
					     (unsigned int)(st->st_mode & 07777),
					     st->st_mode & S_IWOTH ? "others" : "its group"),
			       -EPERM;
		*p = c;
		if (last)
			return 0;
	}
}

static int socket_dir_prepare(const char *path, const gid_t *gid, struct bpflb_err *err)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *p;
	struct stat st;
	int ret;

	snprintf(dir, sizeof(dir), "%s", path);
	p = strrchr(dir, '/');
	if (!p)
		snprintf(dir, sizeof(dir), ".");
	else
		p[p == dir] = '\0'; /* "/x.sock": the directory is "/" */
	if (stat(dir, &st) && errno == ENOENT) {
		/* parents as mkdir -p would; the socket's own directory 0750 */
		for (p = dir + 1; *p; p++) {
			if (*p != '/')
				continue;
			*p = '\0';
			ret = mkdir(dir, 0755) && errno != EEXIST ? -errno : 0;
			*p = '/';
			if (ret)
				goto mkdir_failed;
		}
		if (mkdir(dir, 0700) && errno != EEXIST) {
			ret = -errno;
			goto mkdir_failed;
		}
		if (chown(dir, 0, gid ? *gid : 0) || chmod(dir, 0750)) {
			ret = -errno;
			goto mkdir_failed;
		}
	}
	ret = socket_dir_check(path, dir, &st, err);
	if (ret)
		return ret;
	if (gid && !(st.st_mode & S_IXOTH) && (st.st_gid != *gid || !(st.st_mode & S_IXGRP)))
		pr_warn("control_socket %s: members of control_group cannot enter directory %s "
			"(mode %04o, group %u); bpflbctl works for root only",
			path, dir, (unsigned int)(st.st_mode & 07777), st.st_gid);
	return 0;
mkdir_failed:
	return bpflb_err_set(err, "cannot create the directory of control_socket %s: %s", path,
			     strerror(-ret)),
	       ret;
}

static void srv_closed(uv_handle_t *h)
{
	free(h->data);
}

static int group_id(const char *group, gid_t *gid, struct bpflb_err *err)
{
	struct group *g = getgrnam(group);

	if (!g)
		return bpflb_err_set(err, "control_group '%s' is not a group of this system",
				     group),
		       -ENOENT;
	*gid = g->gr_gid;
	return 0;
}

int control_prepare_dir(const char *path, const char *group, struct bpflb_err *err)
{
	gid_t gid = 0;
	int ret = group ? group_id(group, &gid, err) : 0;

	return ret ? ret : socket_dir_prepare(path, group ? &gid : NULL, err);
}

int control_listen(struct bpflb_control *ctl, uv_loop_t *loop, const char *path, const char *group,
		   struct bpflb_err *err)
{
	gid_t gid = 0;
	mode_t old;
	int ret;

	if (ctl->listening)
		return bpflb_err_set(err, "the control socket is served already"), -EALREADY;
	if (strlen(path) >= sizeof(ctl->path))
		return bpflb_err_set(err, "control_socket %s is longer than %zu characters", path,
				     sizeof(ctl->path) - 1),
		       -ENAMETOOLONG;
	if (group && (ret = group_id(group, &gid, err)))
		return ret;
	ret = socket_dir_prepare(path, group ? &gid : NULL, err);
	if (ret)
		return ret;
	ret = stale_socket(path, err);
	if (ret)
		return ret;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	uv_pipe_init(loop, &ctl->srv, 0);
	ctl->srv.data = ctl;
	/* from here on control_close() closes the handle, which frees ctl */
	ctl->listening = true;
	connlimit_listener_init(&ctl->lim, (uv_stream_t *)&ctl->srv, false);
	/* created 0600: never a moment in which others could connect */
	old = umask(0177);
	ret = uv_pipe_bind(&ctl->srv, path);
	umask(old);
	if (!ret && group && (chown(path, (uid_t)-1, gid) || chmod(path, 0660)))
		ret = -errno;
	if (!ret)
		ret = uv_listen((uv_stream_t *)&ctl->srv, 64, on_connection);
	if (ret) {
		bpflb_err_set(err, "cannot serve control_socket %s: %s", path, uv_strerror(ret));
		unlink(path);
		ctl->path[0] = '\0';
		return ret;
	}
	return 0;
}

void control_close(struct bpflb_control *ctl)
{
	if (!ctl)
		return;
	if (!ctl->listening) {
		free(ctl);
		return;
	}
	connlimit_listener_close(&ctl->lim);
	while (ctl->conns)
		conn_close(ctl->conns);
	if (ctl->path[0])
		unlink(ctl->path);
	uv_close((uv_handle_t *)&ctl->srv, srv_closed);
}

const char *control_path(const struct bpflb_control *ctl)
{
	return ctl ? ctl->path : "";
}

unsigned int control_clients(const struct bpflb_control *ctl)
{
	return ctl ? ctl->nconns : 0;
}

uint64_t control_requests(const struct bpflb_control *ctl)
{
	return ctl ? ctl->requests : 0;
}

static void control_metrics(FILE *f, void *ctx)
{
	const struct bpflb_control *ctl = ctx;

	bpflb_metrics_head(f, "bpflb_control_clients", "gauge", "Open control socket connections.");
	fprintf(f, "bpflb_control_clients %u\n", control_clients(ctl));
	bpflb_metrics_head(f, "bpflb_control_requests_total", "counter",
			   "Control socket requests.");
	fprintf(f, "bpflb_control_requests_total %llu\n",
		(unsigned long long)control_requests(ctl));
}

int control_metrics_register(struct bpflb_control *ctl, struct bpflb_metrics *m,
			     struct bpflb_err *err)
{
	return bpflb_metrics_register(m, "control", control_metrics, ctl, err);
}
