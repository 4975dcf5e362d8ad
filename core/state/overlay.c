// SPDX-License-Identifier: GPL-2.0-only
/*
 * The overlay's state file: parse, check, load and replace it (format and
 * bounds in overlay.h).  The file is root's and is read by root: it is still
 * checked like any input (owner, mode, size, every field), because whoever
 * can write it decides which backends take traffic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "lb/services.h"
#include "lb/services_query.h"
#include "state/overlay.h"

static void svc_free(struct bpflb_overlay_svc *e)
{
	for (size_t i = 0; i < e->nlines; i++)
		free(e->lines[i]);
	free(e->lines);
	e->lines = NULL;
	e->nlines = 0;
}

void bpflb_overlay_free(struct bpflb_overlay *o)
{
	for (size_t i = 0; i < o->nsvcs; i++)
		svc_free(&o->svcs[i]);
	free(o->svcs);
	free(o->bes);
	memset(o, 0, sizeof(*o));
}

int bpflb_overlay_copy(const struct bpflb_overlay *src, struct bpflb_overlay *dst)
{
	memset(dst, 0, sizeof(*dst));
	dst->svcs = calloc(src->nsvcs + 1, sizeof(*dst->svcs));
	dst->bes = calloc(src->nbes + 1, sizeof(*dst->bes));
	if (!dst->svcs || !dst->bes)
		goto nomem;
	if (src->nbes) /* src->bes may be NULL then */
		memcpy(dst->bes, src->bes, src->nbes * sizeof(*dst->bes));
	dst->nbes = src->nbes;
	for (size_t i = 0; i < src->nsvcs; i++) {
		const struct bpflb_overlay_svc *s = &src->svcs[i];
		struct bpflb_overlay_svc *d = &dst->svcs[dst->nsvcs++];

		memcpy(d->name, s->name, sizeof(d->name));
		d->deleted = s->deleted;
		d->lines = calloc(s->nlines + 1, sizeof(*d->lines));
		if (!d->lines)
			goto nomem;
		for (size_t l = 0; l < s->nlines; l++) {
			d->lines[l] = strdup(s->lines[l]);
			if (!d->lines[l])
				goto nomem;
			d->nlines++;
		}
	}
	return 0;
nomem:
	bpflb_overlay_free(dst);
	return -ENOMEM;
}

long bpflb_overlay_svc_find(const struct bpflb_overlay *o, const char *name)
{
	for (size_t i = 0; i < o->nsvcs; i++)
		if (!strcmp(o->svcs[i].name, name))
			return (long)i;
	return -1;
}

long bpflb_overlay_be_find(const struct bpflb_overlay *o, uint32_t addr, uint16_t port)
{
	for (size_t i = 0; i < o->nbes; i++)
		if (o->bes[i].addr == addr && o->bes[i].port == port)
			return (long)i;
	return -1;
}

/* --- JSON ------------------------------------------------------------------ */

#define FIELD_ERR(...) (bpflb_err_set(err, __VA_ARGS__), -EINVAL)

static int parse_svc(json_object *j, size_t idx, const char *file, struct bpflb_overlay_svc *e,
		     struct bpflb_err *err)
{
	json_object *name, *del, *lines;
	const char *n;
	size_t nl;

	if (!json_object_is_type(j, json_type_object))
		return FIELD_ERR("%s: services[%zu]: not an object", file, idx);
	if (!json_object_object_get_ex(j, "name", &name) ||
	    !json_object_is_type(name, json_type_string))
		return FIELD_ERR("%s: services[%zu].name: missing or not a string", file, idx);
	n = json_object_get_string(name);
	if (!*n || strlen(n) >= sizeof(e->name) || strpbrk(n, "[]\n\r") ||
	    strlen(n) != (size_t)json_object_get_string_len(name))
		return FIELD_ERR("%s: services[%zu].name: '%.64s' is not a service name "
				 "(1 to %zu characters, no brackets or line breaks)",
				 file, idx, n, sizeof(e->name) - 1);
	snprintf(e->name, sizeof(e->name), "%s", n);
	if (json_object_object_get_ex(j, "deleted", &del)) {
		if (!json_object_is_type(del, json_type_boolean))
			return FIELD_ERR("%s: services[%zu].deleted: not true or false", file, idx);
		e->deleted = json_object_get_boolean(del);
	}
	if (!json_object_object_get_ex(j, "lines", &lines) ||
	    !json_object_is_type(lines, json_type_array))
		return FIELD_ERR("%s: services[%zu].lines: missing or not an array", file, idx);
	nl = json_object_array_length(lines);
	if (nl > OVERLAY_MAX_LINES)
		return FIELD_ERR("%s: services[%zu].lines: %zu lines, at most %u", file, idx, nl,
				 OVERLAY_MAX_LINES);
	if (e->deleted ? nl != 0 : nl == 0)
		return FIELD_ERR("%s: services[%zu].lines: %s", file, idx,
				 e->deleted ? "a deleted service has no lines"
					    : "a service needs at least one line");
	e->lines = calloc(nl + 1, sizeof(*e->lines));
	if (!e->lines)
		return bpflb_err_set(err, "out of memory"), -ENOMEM;
	for (size_t i = 0; i < nl; i++) {
		json_object *l = json_object_array_get_idx(lines, i);
		const char *s;
		size_t len;

		if (!json_object_is_type(l, json_type_string))
			return FIELD_ERR("%s: services[%zu].lines[%zu]: not a string", file, idx,
					 i);
		s = json_object_get_string(l);
		len = (size_t)json_object_get_string_len(l);
		if (len > OVERLAY_MAX_LINE || strlen(s) != len || strpbrk(s, "\n\r") ||
		    s[strspn(s, " \t")] == '[')
			return FIELD_ERR("%s: services[%zu].lines[%zu]: not a \"key = value\" "
					 "line of at most %u characters",
					 file, idx, i, OVERLAY_MAX_LINE);
		e->lines[i] = strdup(s);
		if (!e->lines[i])
			return bpflb_err_set(err, "out of memory"), -ENOMEM;
		e->nlines++;
	}
	return 0;
}

static int parse_be(json_object *j, size_t idx, const char *file, struct bpflb_overlay_be *b,
		    struct bpflb_err *err)
{
	json_object *addr, *port, *state;
	int64_t p = 0;

	if (!json_object_is_type(j, json_type_object))
		return FIELD_ERR("%s: backends[%zu]: not an object", file, idx);
	if (!json_object_object_get_ex(j, "addr", &addr) ||
	    !json_object_is_type(addr, json_type_string) ||
	    bpflb_parse_ipv4(json_object_get_string(addr), &b->addr))
		return FIELD_ERR("%s: backends[%zu].addr: missing or not an IPv4 address", file,
				 idx);
	if (json_object_object_get_ex(j, "port", &port)) {
		p = json_object_is_type(port, json_type_int) ? json_object_get_int64(port) : -1;
		if (p < 0 || p > 65535)
			return FIELD_ERR("%s: backends[%zu].port: not 0..65535 (0: every port)",
					 file, idx);
	}
	b->port = (uint16_t)p;
	if (!json_object_object_get_ex(j, "state", &state) ||
	    !json_object_is_type(state, json_type_string) ||
	    svcq_state_parse(json_object_get_string(state), &b->state))
		return FIELD_ERR("%s: backends[%zu].state: missing or not active, terminating or "
				 "maintenance",
				 file, idx);
	return 0;
}

int bpflb_overlay_parse(const char *text, size_t len, const char *file, struct bpflb_overlay *out,
			struct bpflb_err *err)
{
	struct json_tokener *tok;
	json_object *root = NULL, *v, *a;
	int ret = -EINVAL;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (len > OVERLAY_MAX_BYTES)
		return FIELD_ERR("%s: %zu bytes, at most %u", file, len, OVERLAY_MAX_BYTES);
	if (memchr(text, '\0', len))
		return FIELD_ERR("%s: not a JSON text (holds a NUL byte)", file);
	/* depth 4 is what the format needs: {services: [{lines: [..]}]} */
	tok = json_tokener_new_ex(5);
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success) {
		if (json_tokener_get_error(tok) == json_tokener_continue)
			(void)FIELD_ERR("%s: not valid JSON: the text ends early", file);
		else
			(void)FIELD_ERR("%s: not valid JSON at byte %d: %s", file, (int)json_tokener_get_parse_end(tok),
				  json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (!strchr(" \t\r\n", text[i])) {
			(void)FIELD_ERR("%s: not valid JSON: data after the object at byte %zu", file, i);
			goto out;
		}
	}
	if (!json_object_is_type(root, json_type_object)) {
		(void)FIELD_ERR("%s: not a JSON object", file);
		goto out;
	}
	if (!json_object_object_get_ex(root, "version", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != OVERLAY_VERSION) {
		(void)FIELD_ERR("%s: version: missing or not %d (written by another bpflbd version?)",
			  file, OVERLAY_VERSION);
		goto out;
	}
	if (json_object_object_get_ex(root, "services", &a)) {
		if (!json_object_is_type(a, json_type_array)) {
			(void)FIELD_ERR("%s: services: not an array", file);
			goto out;
		}
		n = json_object_array_length(a);
		if (n > OVERLAY_MAX_SERVICES) {
			(void)FIELD_ERR("%s: services: %zu entries, at most %u", file, n,
				  OVERLAY_MAX_SERVICES);
			goto out;
		}
		out->svcs = calloc(n + 1, sizeof(*out->svcs));
		if (!out->svcs) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			ret = parse_svc(json_object_array_get_idx(a, i), i, file,
					&out->svcs[out->nsvcs++], err);
			if (ret)
				goto out;
			if (bpflb_overlay_svc_find(out, out->svcs[i].name) != (long)i) {
				ret = FIELD_ERR("%s: services[%zu].name: '%s' is listed twice",
						file, i, out->svcs[i].name);
				goto out;
			}
		}
	}
	if (json_object_object_get_ex(root, "backends", &a)) {
		if (!json_object_is_type(a, json_type_array)) {
			ret = FIELD_ERR("%s: backends: not an array", file);
			goto out;
		}
		n = json_object_array_length(a);
		if (n > OVERLAY_MAX_BACKENDS) {
			ret = FIELD_ERR("%s: backends: %zu entries, at most %u", file, n,
					OVERLAY_MAX_BACKENDS);
			goto out;
		}
		out->bes = calloc(n + 1, sizeof(*out->bes));
		if (!out->bes) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			struct bpflb_overlay_be *b = &out->bes[i];

			ret = parse_be(json_object_array_get_idx(a, i), i, file, b, err);
			if (ret)
				goto out;
			if (bpflb_overlay_be_find(out, b->addr, b->port) >= 0) {
				ret = FIELD_ERR("%s: backends[%zu]: listed twice", file, i);
				goto out;
			}
			out->nbes++;
		}
	}
	ret = 0;
out:
	if (ret == -ENOMEM)
		bpflb_err_set(err, "out of memory");
	if (ret)
		bpflb_overlay_free(out);
	json_object_put(root);
	json_tokener_free(tok);
	return ret;
}

json_object *bpflb_overlay_json(const struct bpflb_overlay *o)
{
	json_object *root = json_object_new_object(), *svcs = json_object_new_array();
	json_object *bes = json_object_new_array();
	char abuf[INET_ADDRSTRLEN];

	json_object_object_add(root, "version", json_object_new_int(OVERLAY_VERSION));
	for (size_t i = 0; i < o->nsvcs; i++) {
		json_object *e = json_object_new_object(), *lines = json_object_new_array();

		json_object_object_add(e, "name", json_object_new_string(o->svcs[i].name));
		json_object_object_add(e, "deleted", json_object_new_boolean(o->svcs[i].deleted));
		for (size_t l = 0; l < o->svcs[i].nlines; l++)
			json_object_array_add(lines, json_object_new_string(o->svcs[i].lines[l]));
		json_object_object_add(e, "lines", lines);
		json_object_array_add(svcs, e);
	}
	for (size_t i = 0; i < o->nbes; i++) {
		json_object *e = json_object_new_object();
		struct in_addr a = {.s_addr = o->bes[i].addr};

		json_object_object_add(
		    e, "addr", json_object_new_string(inet_ntop(AF_INET, &a, abuf, sizeof(abuf))));
		json_object_object_add(e, "port", json_object_new_int(o->bes[i].port));
		json_object_object_add(e, "state",
				       json_object_new_string(svcq_state_name(o->bes[i].state)));
		json_object_array_add(bes, e);
	}
	json_object_object_add(root, "services", svcs);
	json_object_object_add(root, "backends", bes);
	return root;
}

/* --- the file ------------------------------------------------------------------ */

/* StrictModes for one opened directory: root's (or ours), not writable by others. */
static int dir_check(int fd, const char *shown, bool last, struct bpflb_err *err)
{
	struct stat st;

	if (fstat(fd, &st))
		return bpflb_err_set(err, "state_dir: %s: %s", shown, strerror(errno)), -errno;
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return bpflb_err_set(err,
				     "state_dir: refusing %s: owned by uid %u, not root; whoever "
				     "owns it can replace the overlay the daemon applies",
				     shown, st.st_uid),
		       -EPERM;
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && (last || !(st.st_mode & S_ISVTX)))
		return bpflb_err_set(err,
				     "state_dir: refusing %s: mode %04o is writable by %s, who "
				     "could replace the overlay (chmod go-w)",
				     shown, (unsigned int)(st.st_mode & 07777),
				     st.st_mode & S_IWOTH ? "others" : "its group"),
		       -EPERM;
	return 0;
}

int bpflb_state_dir_open(const char *state_dir, struct bpflb_err *err)
{
	char path[PATH_MAX], shown[PATH_MAX] = "", *comp, *save = NULL;
	size_t len = strlen(state_dir);
	int fd, next, ret;

	if (state_dir[0] != '/' || len >= sizeof(path))
		return bpflb_err_set(err, "state_dir %s: not an absolute path", state_dir),
		       -EINVAL;
	/* "/var/lib/bpflb/" is "/var/lib/bpflb": the last component is known up front */
	while (len > 1 && state_dir[len - 1] == '/')
		len--;
	snprintf(path, sizeof(path), "%.*s", (int)len, state_dir);
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = dir_check(fd, "/", len == 1, err);
	for (comp = strtok_r(path, "/", &save); !ret && comp; comp = strtok_r(NULL, "/", &save)) {
		size_t sl = strlen(shown);
		bool last;

		snprintf(shown + sl, sizeof(shown) - sl, "/%s", comp);
		last = strlen(shown) == len;
		if (!strcmp(comp, "..") || !strcmp(comp, ".")) {
			ret = (bpflb_err_set(err, "state_dir %s: '.' and '..' are not allowed",
					     state_dir),
			       -EINVAL);
			break;
		}
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT) {
			/* the last component is ours alone; parents as mkdir -p would */
			if (mkdirat(fd, comp, last ? 0700 : 0755) && errno != EEXIST) {
				ret = -errno;
				bpflb_err_set(err, "cannot create state_dir %s: %s", shown,
					      strerror(-ret));
				break;
			}
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			ret = -errno;
			if (ret == -ELOOP || ret == -ENOTDIR)
				bpflb_err_set(err,
					      "state_dir %s: %s is a symlink or not a directory; give "
					      "the real path of a directory",
					      state_dir, shown);
			else
				bpflb_err_set(err, "state_dir %s: %s: %s", state_dir, shown,
					      strerror(-ret));
			break;
		}
		close(fd);
		fd = next;
		ret = dir_check(fd, shown, last, err);
	}
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int bpflb_overlay_load(int dirfd, const char *path, struct bpflb_overlay *out,
		       struct bpflb_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	fd = openat(dirfd, OVERLAY_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return bpflb_err_set(err, "state file %s: %s", path, strerror(errno)), -errno;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		bpflb_err_set(err, "state file %s: %s", path, strerror(-ret));
		goto out;
	}
	ret = -EPERM;
	if (!S_ISREG(st.st_mode)) {
		bpflb_err_set(err, "state file %s: not a regular file", path);
		goto out;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		bpflb_err_set(err,
			      "state file %s: owned by uid %u, not root: refusing an overlay "
			      "someone else may have written",
			      path, st.st_uid);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		bpflb_err_set(err, "state file %s: mode %04o is writable by others than root", path,
			      (unsigned int)(st.st_mode & 07777));
		goto out;
	}
	ret = -EFBIG;
	if (st.st_size > OVERLAY_MAX_BYTES) {
		bpflb_err_set(err, "state file %s: %lld bytes, at most %u", path,
			      (long long)st.st_size, OVERLAY_MAX_BYTES);
		goto out;
	}
	/* one byte more than allowed: a file that grew since fstat is seen */
	buf = malloc(OVERLAY_MAX_BYTES + 1);
	ret = -ENOMEM;
	if (!buf)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf + got, OVERLAY_MAX_BYTES + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			bpflb_err_set(err, "state file %s: %s", path, strerror(-ret));
			goto out;
		}
		if (!n)
			break;
		got += (size_t)n;
		if (got > OVERLAY_MAX_BYTES) {
			ret = -EFBIG;
			bpflb_err_set(err, "state file %s: more than %u bytes", path,
				      OVERLAY_MAX_BYTES);
			goto out;
		}
	}
	ret = bpflb_overlay_parse(buf, got, path, out, err);
	if (ret) {
		char msg[sizeof(err->msg)];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		bpflb_err_set(err, "state file %s", msg);
	}
out:
	free(buf);
	close(fd);
	return ret;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int bpflb_overlay_save(int dirfd, const char *path, const struct bpflb_overlay *o,
		       struct bpflb_err *err)
{
	json_object *j = bpflb_overlay_json(o);
	const char *text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE);
	char tmp[64];
	int fd, ret;

	snprintf(tmp, sizeof(tmp), ".%s.%d.tmp", OVERLAY_FILE, (int)getpid());
	/* a leftover of a crash in the middle of a save is ours to replace */
	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = write_all(fd, text, strlen(text));
	if (!ret)
		ret = write_all(fd, "\n", 1);
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && renameat(dirfd, tmp, dirfd, OVERLAY_FILE))
		ret = -errno;
	/* the rename itself must survive a crash too */
	if (!ret && fsync(dirfd))
		ret = -errno;
	if (ret)
		unlinkat(dirfd, tmp, 0);
fail:
	json_object_put(j);
	if (ret)
		bpflb_err_set(err, "cannot write the state file %s: %s", path, strerror(-ret));
	return ret;
}

int bpflb_overlay_svc_config(const struct bpflb_overlay_svc *e, const char *origin,
			     struct bpflb_config **cfg, struct bpflb_err *err)
{
	const struct bpflb_cfg_schema schema = {"bpflbctl", bpflb_services_sections};
	char *text = NULL;
	size_t tlen = 0;
	FILE *fp;
	int ret;

	*cfg = NULL;
	fp = open_memstream(&text, &tlen);
	if (!fp)
		return -ENOMEM;
	fprintf(fp, "[service %s]\n", e->name);
	for (size_t i = 0; i < e->nlines; i++)
		fprintf(fp, "%s\n", e->lines[i]);
	if (fclose(fp)) {
		free(text);
		return -ENOMEM;
	}
	fp = fmemopen(text, tlen, "r");
	if (!fp) {
		free(text);
		return -ENOMEM;
	}
	ret = bpflb_config_load_fp(fp, origin, &schema, 1, 0, cfg, err);
	fclose(fp);
	free(text);
	return ret;
}
