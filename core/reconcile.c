// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpflb_reconcile(): the one entry point of every change (reconcile.h), the
 * overlay it keeps in step with its state file, and the drift check.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "daemon.h"
#include "lb/services.h"
#include "log.h"
#include "ops/metrics.h"
#include "ops/proxyhealth.h"
#include "state/overlay.h"
#include "reconcile.h"

struct bpflb_state {
	struct bpflb_daemon *d;
	int dir_fd; /* state_dir, checked once and kept; -1: no state file */
	char path[PATH_MAX];
	struct bpflb_overlay ov;
	uv_timer_t *drift;
	uint64_t interval_ms;
	uint64_t runs[BPFLB_RECONCILE_NREASONS][2]; /* [reason][0 ok, 1 failed] */
	uint64_t repairs[BPFLB_REPAIR_NMAPS];
};

static const char *const reason_names[BPFLB_RECONCILE_NREASONS] = {"start", "reload", "control",
								    "drift"};

/* --- the overlay applied to the services ------------------------------------------ */

/*
 * The sections of the overlay's services, parsed from their lines: cfgs[i]
 * belongs to ov->svcs[i] (NULL when deleted).  The state file names them in
 * errors.
 */
static int overlay_sections(const struct bpflb_state *st, const struct bpflb_overlay *ov,
			    struct bpflb_config ***cfgs, struct bpflb_services_svc_edit **edits,
			    struct bpflb_err *err)
{
	char origin[PATH_MAX + 96];
	int ret = 0;

	*cfgs = calloc(ov->nsvcs + 1, sizeof(**cfgs));
	*edits = calloc(ov->nsvcs + 1, sizeof(**edits));
	if (!*cfgs || !*edits)
		return bpflb_err_set(err, "out of memory"), -ENOMEM;
	for (size_t i = 0; i < ov->nsvcs && !ret; i++) {
		(*edits)[i].name = ov->svcs[i].name;
		if (ov->svcs[i].deleted)
			continue;
		snprintf(origin, sizeof(origin), "%s: service %s", st && st->path[0] ? st->path :
					     "overlay", ov->svcs[i].name);
		ret = bpflb_overlay_svc_config(&ov->svcs[i], origin, &(*cfgs)[i], err);
		if (!ret)
			(*edits)[i].sec = bpflb_cfg_find((*cfgs)[i], "service", ov->svcs[i].name);
	}
	return ret;
}

static void sections_free(struct bpflb_config **cfgs, size_t n, struct bpflb_services_svc_edit *e)
{
	for (size_t i = 0; cfgs && i < n; i++)
		bpflb_config_free(cfgs[i]);
	free(cfgs);
	free(e);
}

static int set_overrides(struct bpflb_services *s, const struct bpflb_overlay *ov)
{
	struct bpflb_backend_override *o = calloc(ov->nbes + 1, sizeof(*o));
	int ret;

	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < ov->nbes; i++)
		o[i] = (struct bpflb_backend_override){ov->bes[i].addr, ov->bes[i].port,
						       ov->bes[i].state};
	ret = bpflb_services_set_overrides(s, o, ov->nbes);
	free(o);
	return ret;
}

/*
 * The services hold source + ov (every override and service of ov), whole.
 * p: source's services as daemon_validate() parsed them (consumed); NULL:
 * parsed here.
 */
static int apply_whole(struct bpflb_daemon *d, const struct bpflb_config *source,
		       struct bpflb_services_prepared *p, const struct bpflb_overlay *ov,
		       struct bpflb_err *err)
{
	struct bpflb_services_svc_edit *edits = NULL;
	struct bpflb_config **cfgs = NULL;
	int ret = 0;

	if (!p)
		ret = bpflb_services_prepare(source, &p, err);
	if (ret)
		return ret;
	ret = overlay_sections(d->state, ov, &cfgs, &edits, err);
	if (!ret)
		ret = set_overrides(d->services, ov);
	if (!ret) {
		ret = bpflb_services_apply_overlay(d->services, p, edits, ov->nsvcs, err);
		p = NULL;
	}
	bpflb_services_prepared_free(p);
	sections_free(cfgs, ov->nsvcs, edits);
	return ret;
}

int bpflb_state_check(struct bpflb_daemon *d, const char *state_dir,
		      struct bpflb_services_prepared *p, struct bpflb_err *err)
{
	struct bpflb_services_svc_edit *edits = NULL;
	struct bpflb_config **cfgs = NULL;
	struct stat sb;
	int ret;

	/* nothing kept yet (and a check creates nothing) */
	if (!state_dir || (stat(state_dir, &sb) && errno == ENOENT))
		return 0;
	ret = bpflb_state_open(d, state_dir, &d->state, err);
	if (ret)
		return ret;
	ret = overlay_sections(d->state, &d->state->ov, &cfgs, &edits, err);
	if (!ret && p)
		ret = bpflb_services_overlay_check(p, edits, d->state->ov.nsvcs, err);
	sections_free(cfgs, d->state->ov.nsvcs, edits);
	bpflb_state_close(d->state);
	d->state = NULL;
	return ret;
}

int bpflb_state_apply_services(struct bpflb_daemon *d, const struct bpflb_config *next,
			       struct bpflb_services_prepared *p, struct bpflb_err *err)
{
	static const struct bpflb_overlay none;

	return apply_whole(d, next, p, d->state ? &d->state->ov : &none, err);
}

/* --- control edits ------------------------------------------------------------------- */

/* next = ov with e applied (pure); -ENOENT/-ENOSPC/-EINVAL with err set. */
static bool source_has(const struct bpflb_daemon *d, const char *name);

static int overlay_edit(const struct bpflb_overlay *ov, const struct bpflb_overlay_edit *e,
			bool in_source, struct bpflb_overlay *next, struct bpflb_err *err)
{
	char abuf[INET_ADDRSTRLEN];
	long i;
	int ret;

	ret = bpflb_overlay_copy(ov, next);
	if (ret)
		return bpflb_err_set(err, "out of memory"), ret;
	switch (e->op) {
	case BPFLB_OV_SVC_SET:
	case BPFLB_OV_SVC_DELETE: {
		struct bpflb_overlay_svc *x;

		if (strlen(e->name) >= OVERLAY_NAME_LEN)
			return bpflb_err_set(err, "service name '%s' is longer than %d characters",
					     e->name, OVERLAY_NAME_LEN - 1),
			       -EINVAL;
		i = bpflb_overlay_svc_find(next, e->name);
		if (e->op == BPFLB_OV_SVC_DELETE && !in_source) {
			/* a service only the overlay had: deleting it clears it */
			if (i >= 0) {
				struct bpflb_overlay_svc gone = next->svcs[i];

				next->svcs[i] = next->svcs[--next->nsvcs];
				for (size_t l = 0; l < gone.nlines; l++)
					free(gone.lines[l]);
				free(gone.lines);
			}
			return 0;
		}
		if (i < 0) {
			if (next->nsvcs >= OVERLAY_MAX_SERVICES)
				return bpflb_err_set(err,
						     "the overlay holds %u services already, the "
						     "most it keeps; put the service into the "
						     "configuration file",
						     OVERLAY_MAX_SERVICES),
				       -ENOSPC;
			i = (long)next->nsvcs++;
			memset(&next->svcs[i], 0, sizeof(next->svcs[i]));
			snprintf(next->svcs[i].name, OVERLAY_NAME_LEN, "%s", e->name);
		}
		x = &next->svcs[i];
		for (size_t l = 0; l < x->nlines; l++)
			free(x->lines[l]);
		free(x->lines);
		x->lines = NULL;
		x->nlines = 0;
		x->deleted = e->op == BPFLB_OV_SVC_DELETE;
		if (x->deleted)
			return 0;
		if (e->nlines > OVERLAY_MAX_LINES)
			return bpflb_err_set(err, "%zu lines, at most %u", e->nlines,
					     OVERLAY_MAX_LINES),
			       -EINVAL;
		x->lines = calloc(e->nlines + 1, sizeof(*x->lines));
		if (!x->lines)
			return bpflb_err_set(err, "out of memory"), -ENOMEM;
		for (size_t l = 0; l < e->nlines; l++) {
			if (strlen(e->lines[l]) > OVERLAY_MAX_LINE)
				return bpflb_err_set(err, "lines[%zu] is longer than %u characters",
						     l, OVERLAY_MAX_LINE),
				       -EINVAL;
			x->lines[l] = strdup(e->lines[l]);
			if (!x->lines[l])
				return bpflb_err_set(err, "out of memory"), -ENOMEM;
			x->nlines++;
		}
		return 0;
	}
	case BPFLB_OV_SVC_CLEAR: {
		struct bpflb_overlay_svc gone;

		i = bpflb_overlay_svc_find(next, e->name);
		if (i < 0)
			return bpflb_err_set(err, "the overlay holds no service '%s'", e->name),
			       -ENOENT;
		gone = next->svcs[i];
		next->svcs[i] = next->svcs[--next->nsvcs];
		for (size_t l = 0; l < gone.nlines; l++)
			free(gone.lines[l]);
		free(gone.lines);
		return 0;
	}
	case BPFLB_OV_BE_SET:
		i = bpflb_overlay_be_find(next, e->addr, e->port);
		if (i < 0) {
			if (next->nbes >= OVERLAY_MAX_BACKENDS)
				return bpflb_err_set(err,
						     "the overlay holds %u backend states already, "
						     "the most it keeps",
						     OVERLAY_MAX_BACKENDS),
				       -ENOSPC;
			i = (long)next->nbes++;
		}
		next->bes[i] = (struct bpflb_overlay_be){e->addr, e->port, e->state};
		return 0;
	case BPFLB_OV_BE_CLEAR: {
		size_t kept = 0, n = next->nbes;

		for (size_t k = 0; k < n; k++) {
			const struct bpflb_overlay_be *b = &next->bes[k];

			if (b->addr == e->addr && (e->all_ports || b->port == e->port))
				continue;
			next->bes[kept++] = *b;
		}
		next->nbes = kept;
		/* "set-state configured" of nothing stays a no-op; "overlay clear" says so */
		if (kept == n && e->must_exist)
			return bpflb_err_set(err, "the overlay holds no backend state of %s",
					     inet_ntop(AF_INET, &e->addr, abuf, sizeof(abuf))),
			       -ENOENT;
		return 0;
	}
	case BPFLB_OV_CLEAR_ALL:
		bpflb_overlay_free(next);
		return 0;
	}
	return -EINVAL;
}

/* The services take edit e (one service or backend, not the whole state). */
static int services_edit(struct bpflb_daemon *d, const struct bpflb_overlay *prev,
			 const struct bpflb_overlay *next, const struct bpflb_overlay_edit *e,
			 struct bpflb_err *err)
{
	struct bpflb_services *s = d->services;
	struct bpflb_config *cfg = NULL;
	int ret = 0;

	switch (e->op) {
	case BPFLB_OV_SVC_SET: {
		const struct bpflb_overlay_svc *x = &next->svcs[bpflb_overlay_svc_find(next, e->name)];

		ret = bpflb_overlay_svc_config(x, "service-set", &cfg, err);
		if (!ret)
			ret = bpflb_services_svc_set(s, bpflb_cfg_find(cfg, "service", e->name), err);
		bpflb_config_free(cfg);
		return ret;
	}
	case BPFLB_OV_SVC_DELETE:
		ret = bpflb_services_svc_delete(s, e->name, err);
		/* not in the file: nothing to keep deleted, the overlay forgot it */
		if (!ret && !source_has(d, e->name))
			ret = bpflb_services_svc_clear(s, e->name, err);
		return ret;
	case BPFLB_OV_SVC_CLEAR:
		return bpflb_services_svc_clear(s, e->name, err);
	case BPFLB_OV_BE_SET:
		return bpflb_services_backend_set_state(s, e->addr, e->port, e->state, false, err);
	case BPFLB_OV_BE_CLEAR:
		for (size_t k = 0; k < prev->nbes && !ret; k++)
			if (prev->bes[k].addr == e->addr && (e->all_ports || prev->bes[k].port == e->port))
				ret = bpflb_services_backend_set_state(s, e->addr, prev->bes[k].port, 0,
								       true, err);
		if (!e->all_ports && !ret)
			ret = bpflb_services_backend_set_state(s, e->addr, e->port, 0, true, err);
		return ret;
	case BPFLB_OV_CLEAR_ALL:
		return bpflb_services_overlay_reset(s, err);
	}
	return -EINVAL;
}

/*
 * Does the file define service name?  The services know (the running
 * configuration does not keep its [service] text); without a running
 * configuration (unit tests) assume it does.
 */
static bool source_has(const struct bpflb_daemon *d, const char *name)
{
	return !d->cfg || bpflb_services_svc_in_source(d->services, name);
}

static int reconcile_control(struct bpflb_daemon *d, const struct bpflb_overlay_edit *e,
			     struct bpflb_err *err)
{
	static const struct bpflb_overlay none;
	struct bpflb_state *st = d->state;
	const struct bpflb_overlay *prev = st ? &st->ov : &none;
	struct bpflb_overlay next;
	struct bpflb_err ignore;
	int ret;

	if (!d->services)
		return bpflb_err_set(err, "the service state is not open"), -EAGAIN;
	if ((e->op == BPFLB_OV_SVC_SET || e->op == BPFLB_OV_SVC_DELETE ||
	     e->op == BPFLB_OV_SVC_CLEAR) &&
	    (!e->name || !*e->name))
		return bpflb_err_set(err, "a service name is required"), -EINVAL;
	ret = overlay_edit(prev, e, source_has(d, e->name ? e->name : ""), &next, err);
	if (ret) {
		bpflb_overlay_free(&next);
		return ret;
	}
	/*
	 * The state file first: what is applied and what survives a restart must
	 * not part ways.  A file that cannot be written refuses the edit with
	 * nothing applied; an edit the services refuse puts the file back.
	 */
	if (st && st->dir_fd >= 0) {
		ret = bpflb_overlay_save(st->dir_fd, st->path, &next, err);
		if (ret) {
			bpflb_overlay_free(&next);
			return ret;
		}
	}
	ret = services_edit(d, prev, &next, e, err);
	if (ret) {
		if (st && st->dir_fd >= 0 && bpflb_overlay_save(st->dir_fd, st->path, prev, &ignore))
			pr_err("overlay: cannot put %s back after a refused edit: %s", st->path,
			       ignore.msg);
		bpflb_overlay_free(&next);
		return ret;
	}
	if (!st) {
		/* no state keeper (unit tests of the control socket): memory only */
		bpflb_overlay_free(&next);
		return 0;
	}
	bpflb_overlay_free(&st->ov);
	st->ov = next;
	return 0;
}

/* --- drift ----------------------------------------------------------------------------- */

static int reconcile_drift(struct bpflb_daemon *d, struct bpflb_err *err)
{
	struct bpflb_state *st = d->state;
	struct bpflb_services_repairs r;
	char line[1024] = "";
	size_t len = 0;
	int ret;

	if (!d->services)
		return 0;
	ret = bpflb_services_resync(d->services, &r, err);
	for (unsigned int m = 0; m < BPFLB_REPAIR_NMAPS; m++) {
		if (!r.n[m])
			continue;
		if (st)
			st->repairs[m] += r.n[m];
		len += (size_t)snprintf(line + len, len < sizeof(line) ? sizeof(line) - len : 0,
					"%s%s: %llu (%s)", len ? "; " : "", bpflb_repair_map_name(m),
					(unsigned long long)r.n[m], r.keys[m]);
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
	}
	if (line[0])
		pr_warn("drift: the pinned maps differed from the applied state; repaired %s",
			line);
	return ret;
}

static void drift_tick(uv_timer_t *t)
{
	struct bpflb_daemon *d = t->data;
	struct bpflb_err err = {""};
	const struct bpflb_change ch = {.reason = BPFLB_RECONCILE_DRIFT};

	if (bpflb_reconcile(d, &ch, &err))
		pr_err("drift check failed: %s", err.msg);
}

static void drift_arm(struct bpflb_daemon *d)
{
	struct bpflb_state *st = d->state;
	uint64_t ms;

	if (!st || !d->loop || !d->cfg)
		return;
	ms = (uint64_t)bpflb_daemon_conf(d->cfg)->reconcile_interval * 1000;
	if (!st->drift) {
		st->drift = calloc(1, sizeof(*st->drift));
		if (!st->drift)
			return;
		uv_timer_init(d->loop, st->drift);
		st->drift->data = d;
	}
	if (ms == st->interval_ms && uv_is_active((uv_handle_t *)st->drift))
		return;
	st->interval_ms = ms;
	uv_timer_stop(st->drift);
	if (ms)
		uv_timer_start(st->drift, drift_tick, ms, ms);
}

/* --- the entry point ------------------------------------------------------------------- */

int bpflb_reconcile(struct bpflb_daemon *d, const struct bpflb_change *ch, struct bpflb_err *err)
{
	int ret;

	switch (ch->reason) {
	case BPFLB_RECONCILE_START:
		/* daemon_start validated the source before it touched anything */
		ret = daemon_apply(d, ch->source, NULL, err);
		break;
	case BPFLB_RECONCILE_RELOAD:
		/* desired = the new source + the overlay; validated whole, then applied */
		ret = daemon_validate(d, ch->source, err);
		if (!ret)
			ret = daemon_apply(d, ch->source, d->cfg, err);
		break;
	case BPFLB_RECONCILE_CONTROL:
		ret = ch->edit ? reconcile_control(d, ch->edit, err) : -EINVAL;
		break;
	case BPFLB_RECONCILE_DRIFT:
		ret = reconcile_drift(d, err);
		break;
	default:
		ret = -EINVAL;
	}
	if (d->state)
		d->state->runs[ch->reason][ret != 0]++;
	/* /healthz: the datapath is as desired as of now (a failure keeps the old time) */
	if (!ret)
		proxyhealth_synced();
	return ret;
}

void bpflb_state_started(struct bpflb_daemon *d)
{
	drift_arm(d);
}

/* --- life cycle, reports ------------------------------------------------------------- */

int bpflb_state_open(struct bpflb_daemon *d, const char *state_dir, struct bpflb_state **out,
		     struct bpflb_err *err)
{
	struct bpflb_state *st = calloc(1, sizeof(*st));
	int ret;

	if (!st)
		return -ENOMEM;
	st->d = d;
	st->dir_fd = -1;
	if (state_dir) {
		st->dir_fd = bpflb_state_dir_open(state_dir, err);
		if (st->dir_fd < 0) {
			ret = st->dir_fd;
			free(st);
			return ret;
		}
		snprintf(st->path, sizeof(st->path), "%s/%s", state_dir, OVERLAY_FILE);
		ret = bpflb_overlay_load(st->dir_fd, st->path, &st->ov, err);
		if (ret) {
			char msg[sizeof(err->msg)];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			bpflb_err_set(err,
				      "%s; bpflbd keeps the overlay of control-socket edits there "
				      "and does not start without it: fix the file, or move it "
				      "away to start from the configuration file alone",
				      msg);
			close(st->dir_fd);
			free(st);
			return ret;
		}
		if (st->ov.nsvcs || st->ov.nbes)
			pr_notice("overlay from %s: %zu services, %zu backend states", st->path,
				  st->ov.nsvcs, st->ov.nbes);
	}
	*out = st;
	return 0;
}

static void drift_closed(uv_handle_t *h)
{
	free(h);
}

void bpflb_state_close(struct bpflb_state *st)
{
	if (!st)
		return;
	if (st->drift) {
		uv_timer_stop(st->drift);
		uv_close((uv_handle_t *)st->drift, drift_closed);
	}
	if (st->dir_fd >= 0)
		close(st->dir_fd);
	bpflb_overlay_free(&st->ov);
	free(st);
}

json_object *bpflb_state_overlay_json(const struct bpflb_daemon *d)
{
	static const struct bpflb_overlay none;
	const struct bpflb_state *st = d->state;
	json_object *o = bpflb_overlay_json(st ? &st->ov : &none);

	json_object_object_add(o, "state_file",
			       st && st->path[0] ? json_object_new_string(st->path) : NULL);
	return o;
}

static void state_metrics(FILE *f, void *ctx)
{
	const struct bpflb_daemon *d = ctx;
	const struct bpflb_state *st = d->state;

	if (!st)
		return;
	bpflb_metrics_head(f, "bpflb_reconcile_runs_total", "counter",
			   "Runs of the reconcile entry point by reason and result.");
	for (int r = 0; r < BPFLB_RECONCILE_NREASONS; r++)
		for (int x = 0; x < 2; x++)
			fprintf(f, "bpflb_reconcile_runs_total{reason=\"%s\",result=\"%s\"} %llu\n",
				reason_names[r], x ? "failed" : "ok",
				(unsigned long long)st->runs[r][x]);
	bpflb_metrics_head(f, "bpflb_drift_repairs_total", "counter",
			   "Map entries the drift check rewrote because they differed from the "
			   "applied state.");
	for (unsigned int m = 0; m < BPFLB_REPAIR_NMAPS; m++)
		fprintf(f, "bpflb_drift_repairs_total{map=\"%s\"} %llu\n", bpflb_repair_map_name(m),
			(unsigned long long)st->repairs[m]);
	bpflb_metrics_head(f, "bpflb_overlay_entries", "gauge",
			   "Entries of the overlay of control-socket edits.");
	fprintf(f, "bpflb_overlay_entries{kind=\"service\"} %zu\n", st->ov.nsvcs);
	fprintf(f, "bpflb_overlay_entries{kind=\"backend\"} %zu\n", st->ov.nbes);
}

int bpflb_state_metrics_register(struct bpflb_metrics *m, struct bpflb_daemon *d,
				 struct bpflb_err *err)
{
	return bpflb_metrics_register(m, "state", state_metrics, d, err);
}
