/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The overlay: what the control socket changed on top of the desired state
 * the source (the INI file) produces, kept until cleared, across reloads and
 * restarts.
 *
 *   bpflbctl service set NAME ...   a [service NAME] of the overlay's own
 *   bpflbctl service delete NAME    NAME is absent whatever the file says
 *   bpflbctl backend set-state ...  a backend's state, whatever the file says
 *   bpflbctl overlay clear ...      back to what the file says
 *
 * Stored in <state_dir>/overlay.json, mode 0600, replaced atomically (temp
 * file, fsync, rename, fsync of the directory) after every change:
 *
 *   {"version": 1,
 *    "services": [{"name": "web", "deleted": false, "lines": ["type = nodeport", ...]},
 *                 {"name": "old", "deleted": true, "lines": []}],
 *    "backends": [{"addr": "10.244.1.5", "port": 0, "state": "maintenance"}]}
 *
 * A service keeps the "key = value" lines it was set with: they are parsed
 * again with the [service] schema at every reconcile, so that they are
 * checked against the file of the day like any [service] section.
 */
#ifndef BPFLB_CORE_STATE_OVERLAY_H
#define BPFLB_CORE_STATE_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <bpflb/config.h>

#define OVERLAY_FILE	      "overlay.json"
#define OVERLAY_VERSION	      1
/* Bounds of the file and of what it holds: a reconcile re-parses every service. */
#define OVERLAY_MAX_BYTES     (4u << 20)
#define OVERLAY_MAX_SERVICES  256
#define OVERLAY_MAX_LINES     4096
#define OVERLAY_MAX_LINE      4096
#define OVERLAY_MAX_BACKENDS  4096
#define OVERLAY_NAME_LEN      64

struct bpflb_overlay_svc {
	char name[OVERLAY_NAME_LEN];
	bool deleted;
	char **lines; /* "key = value"; none when deleted */
	size_t nlines;
};

struct bpflb_overlay_be {
	uint32_t addr; /* network order */
	uint16_t port; /* host order; 0: every port of addr */
	uint8_t state; /* enum bpflb_backend_state */
};

struct bpflb_overlay {
	struct bpflb_overlay_svc *svcs;
	size_t nsvcs;
	struct bpflb_overlay_be *bes;
	size_t nbes;
};

void bpflb_overlay_free(struct bpflb_overlay *o);
/* Deep copy; -ENOMEM. */
int bpflb_overlay_copy(const struct bpflb_overlay *src, struct bpflb_overlay *dst);

/*
 * Parse the JSON text of a state file (len bytes, need not be NUL terminated);
 * file names it in errors ("FILE: services[2].lines[0]: ...").  Every bound
 * above is checked.  Returns 0 or -EINVAL with err set.
 */
int bpflb_overlay_parse(const char *text, size_t len, const char *file, struct bpflb_overlay *out,
			struct bpflb_err *err);
/* The JSON of o (state file and `overlay list`); a new reference. */
json_object *bpflb_overlay_json(const struct bpflb_overlay *o);

/*
 * Open state_dir (created 0700 when missing, its parents 0755), checked as
 * sshd's StrictModes checks a home directory: every component from / down
 * opened with O_NOFOLLOW and fstat()ed, owned by root (or our euid), not
 * writable by group or others unless sticky (/tmp) and not the last.
 * Returns the directory fd or -errno with err set.
 */
int bpflb_state_dir_open(const char *state_dir, struct bpflb_err *err);
/*
 * Read <dirfd>/overlay.json (path: for messages).  A missing file is an empty
 * overlay.  Refused: not a regular file, a symlink, owned by another user,
 * writable by group or others, larger than OVERLAY_MAX_BYTES, or not what
 * bpflb_overlay_parse() accepts.
 */
int bpflb_overlay_load(int dirfd, const char *path, struct bpflb_overlay *out,
		       struct bpflb_err *err);
/* Replace <dirfd>/overlay.json with o atomically (see above). */
int bpflb_overlay_save(int dirfd, const char *path, const struct bpflb_overlay *o,
		       struct bpflb_err *err);

/* Index of service name / backend addr:port, or -1. */
long bpflb_overlay_svc_find(const struct bpflb_overlay *o, const char *name);
long bpflb_overlay_be_find(const struct bpflb_overlay *o, uint32_t addr, uint16_t port);

/*
 * The [service NAME] section of an overlay service: its lines parsed with the
 * [service] schema into *cfg (the caller frees it); origin names it in errors.
 */
int bpflb_overlay_svc_config(const struct bpflb_overlay_svc *e, const char *origin,
			     struct bpflb_config **cfg, struct bpflb_err *err);

#endif
