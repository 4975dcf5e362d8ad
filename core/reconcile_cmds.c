// SPDX-License-Identifier: GPL-2.0-only
/*
 * Control commands of the overlay (core/state/overlay.h): its edits.  Each builds a
 * bpflb_overlay_edit and hands it to bpflb_reconcile(); on error nothing
 * changed (neither the datapath nor the state file).
 *
 *   service.set {name, lines}          service.delete {name}
 *   backend.set-state {addr, [port], state: active|terminating|maintenance|configured}
 *   overlay.list                        overlay.clear {[service] | [addr, [port]]}
 */
#include <errno.h>
#include <string.h>

#include "config/config_internal.h"
#include "daemon.h"
#include "lb/services_query.h"
#include "log.h"
#include "ops/control.h"
#include "reconcile.h"

static int port_arg(json_object *args, uint16_t *port, struct bpflb_err *err)
{
	json_object *v;
	int64_t n;

	*port = 0;
	if (!json_object_object_get_ex(args, "port", &v) || json_object_is_type(v, json_type_null))
		return 0;
	n = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
	if (n < 0 || n > 65535)
		return bpflb_err_set(err, "argument 'port' must be 0-65535"), -EINVAL;
	*port = (uint16_t)n;
	return 0;
}

static int run(struct bpflb_daemon *d, const struct bpflb_overlay_edit *e, struct bpflb_err *err)
{
	return bpflb_reconcile(d, &(struct bpflb_change){.reason = BPFLB_RECONCILE_CONTROL, .edit = e},
			       err);
}

/*
 * service.set {"name": N, "lines": ["type = nodeport", "port = ...", ...]}: the
 * lines of a [service N] section, checked by the configuration engine with
 * the [service] schema, then against every other service.
 */
static int h_service_set(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		struct bpflb_err *err)
{
	struct bpflb_daemon *d = ctx;
	struct bpflb_overlay_edit e = {.op = BPFLB_OV_SVC_SET};
	const char **lines = NULL;
	json_object *jl;
	size_t n;
	int ret;

	ret = control_arg_str(args, "name", true, &e.name, err);
	if (ret)
		return ret;
	if (!json_object_object_get_ex(args, "lines", &jl) ||
	    !json_object_is_type(jl, json_type_array) || !json_object_array_length(jl))
		return bpflb_err_set(err, "argument 'lines' must be a non-empty array of "
					  "\"key = value\" strings"),
		       -EINVAL;
	if (strpbrk(e.name, "[]\n\r") || !*e.name)
		return bpflb_err_set(err, "'%s' is not a service name", e.name), -EINVAL;
	n = json_object_array_length(jl);
	lines = calloc(n, sizeof(*lines));
	if (!lines)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *l = json_object_array_get_idx(jl, i);
		const char *s = json_object_get_string(l);

		if (!json_object_is_type(l, json_type_string) || strpbrk(s, "\n\r") ||
		    s[strspn(s, " \t")] == '[') {
			free(lines);
			return bpflb_err_set(err, "lines[%zu] is not a \"key = value\" line", i),
			       -EINVAL;
		}
		lines[i] = s;
	}
	e.lines = lines;
	e.nlines = n;
	ret = run(d, &e, err);
	free(lines);
	if (ret)
		return ret;
	pr_notice("control: service %s set (overlay, kept until bpflbctl overlay clear)", e.name);
	*data = svcq_services(d->services, e.name, err);
	return 0;
}

static int h_service_delete(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		struct bpflb_err *err)
{
	struct bpflb_daemon *d = ctx;
	struct bpflb_overlay_edit e = {.op = BPFLB_OV_SVC_DELETE};
	int ret = control_arg_str(args, "name", true, &e.name, err);

	if (!ret)
		ret = run(d, &e, err);
	if (!ret)
		pr_notice("control: service %s deleted (overlay, kept until bpflbctl overlay "
			  "clear)",
			  e.name);
	return ret;
}

static int h_backend_set_state(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		struct bpflb_err *err)
{
	struct bpflb_daemon *d = ctx;
	struct bpflb_overlay_edit e = {.op = BPFLB_OV_BE_SET};
	const char *addr, *state;
	int ret;

	if ((ret = control_arg_str(args, "addr", true, &addr, err)) || (ret = port_arg(args, &e.port, err)) ||
	    (ret = control_arg_str(args, "state", true, &state, err)))
		return ret;
	if (bpflb_parse_ipv4(addr, &e.addr))
		return bpflb_err_set(err, "addr '%s' is not an IPv4 address", addr), -EINVAL;
	/*
	 * "configured" undoes what set-state did.  Without a port it undoes
	 * every override of the address: set-state ADDR:PORT maintenance then
	 * set-state ADDR configured must leave nothing behind.
	 */
	if (!strcmp(state, "configured")) {
		e.op = BPFLB_OV_BE_CLEAR;
		e.all_ports = !e.port;
	}
	else if (svcq_state_parse(state, &e.state))
		return bpflb_err_set(err,
				     "state '%s' is not active, terminating, maintenance or "
				     "configured",
				     state),
		       -EINVAL;
	ret = run(d, &e, err);
	if (ret)
		return ret;
	pr_notice("control: backend %s%s%.0u state %s (overlay)", addr, e.port ? ":" : "", e.port,
		  state);
	*data = svcq_backends(d->services);
	return 0;
}

static int h_overlay_list(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		struct bpflb_err *err)
{
	struct bpflb_daemon *d = ctx;
	*data = bpflb_state_overlay_json(d);
	return 0;
}

/* overlay.clear {}: everything; {service: N}; {addr: A, [port: P]} (no port: every port). */
static int h_overlay_clear(void *ctx, struct control_conn *c, json_object *args, json_object **data,
		struct bpflb_err *err)
{
	struct bpflb_daemon *d = ctx;
	struct bpflb_overlay_edit e = {.op = BPFLB_OV_CLEAR_ALL};
	const char *svc, *addr;
	json_object *p;
	int ret;

	if ((ret = control_arg_str(args, "service", false, &svc, err)) ||
	    (ret = control_arg_str(args, "addr", false, &addr, err)) || (ret = port_arg(args, &e.port, err)))
		return ret;
	if (svc && addr)
		return bpflb_err_set(err, "give a service or a backend address, not both"), -EINVAL;
	if (svc) {
		e.op = BPFLB_OV_SVC_CLEAR;
		e.name = svc;
	} else if (addr) {
		if (bpflb_parse_ipv4(addr, &e.addr))
			return bpflb_err_set(err, "addr '%s' is not an IPv4 address", addr), -EINVAL;
		e.op = BPFLB_OV_BE_CLEAR;
		e.all_ports = !json_object_object_get_ex(args, "port", &p) || !p;
		e.must_exist = e.all_ports;
	}
	ret = run(d, &e, err);
	if (ret)
		return ret;
	pr_notice("control: overlay cleared (%s%s)", svc ? "service " : addr ? "backend " : "all",
		  svc ? svc : addr ? addr : "");
	*data = bpflb_state_overlay_json(d);
	return 0;
}

static const struct bpflb_control_cmd state_cmds[] = {
    {"service.set", h_service_set,
     "add or replace a service (overlay, kept until cleared): {name, lines: [\"key = value\"...]}"},
    {"service.delete", h_service_delete, "remove a service (overlay, kept until cleared): {name}"},
    {"backend.set-state", h_backend_set_state,
     "{addr, [port], state: active|terminating|maintenance|configured} (overlay)"},
    {"overlay.list", h_overlay_list, "the overlay: services and backend states set at runtime"},
    {"overlay.clear", h_overlay_clear, "drop overlay entries: {} all, {service}, {addr, [port]}"},
    {NULL},
};

int bpflb_state_control_register(struct bpflb_control *ctl, struct bpflb_daemon *d,
				 struct bpflb_err *err)
{
	return bpflb_control_register(ctl, state_cmds, d, err);
}
