// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpflbctl: the operator's CLI over bpflbd's control socket.
 *
 * One request per run (newline-delimited JSON, see core/ops/control.h), printed
 * as a table for people or as the daemon's JSON "data" with -o json.
 *
 * Exit status: 0 ok, 1 the daemon answered with an error (message on stderr),
 * 2 usage error, 3 cannot connect to (or lost) the control socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "observe.h"

#define EXIT_ERROR   1
#define EXIT_USAGE   2
#define EXIT_CONNECT 3

#define DEFAULT_SOCKET "/run/bpflb/bpflbd.sock"
#define DEFAULT_LIMIT  10000 /* entries of ct/nat list unless --limit says otherwise */

static bool json_out;
static const char *prog = "bpflbctl";

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: bpflbctl [--socket PATH | -c CONFIG] [-o table|json] COMMAND [ARGS]\n"
	    "\n"
	    "Commands:\n"
	    "  status                              daemon, mode, plugins, devices, config, "
	    "reloads\n"
	    "  plugin list                         plugins: kind (mode or feature), state, maps\n"
	    "  service list                        services with frontends and backends\n"
	    "  service get NAME\n"
	    "  service set NAME KEY=VALUE...       add/replace a service (overlay, until cleared)\n"
	    "  service set NAME -f FILE            ... from the lines of a [service] section\n"
	    "  service delete NAME                 remove a service (overlay, until cleared)\n"
	    "  backend list\n"
	    "  backend set-state ADDR[:PORT] active|terminating|maintenance|configured\n"
	    "  overlay list                        control edits kept across reloads, restarts\n"
	    "  overlay clear [service NAME | backend ADDR[:PORT]]\n"
	    "                                      back to the configuration file (all: no args)\n"
	    "  ct list  [--service S[/P]] [--addr IP] [--proto tcp|udp] [--limit N]\n"
	    "                                      (--limit default 10000, 0: all)\n"
	    "  ct flush [--service S[/P]] [--addr IP] [--proto tcp|udp]\n"
	    "  nat list [--service S[/P]] [--addr IP] [--proto tcp|udp] [--limit N]\n"
	    "  maglev show SERVICE[/PORT]          share of the Maglev table per backend\n"
	    "  PLUGIN CMD [NAME]                   a plugin's own commands, answered in JSON:\n"
	    "                                      policy list, policy get NAME, egress list\n"
	    "  reload                              re-read the configuration (as SIGHUP)\n"
	    "  observe [--follow] [--last N] [--since T] [--until T] [--type drop|trace|\n"
	    "          policy-verdict]... [--verdict V] [--ip IP] [--from-ip IP] [--to-ip IP]\n"
	    "          [--port N] [--from-port N] [--to-port N] [--proto P] [--service S[/P]]\n"
	    "          [--addr IP]                 flows in time order (default: --last 20);\n"
	    "                                      T: RFC 3339 or before now (30s, 5m, 1h);\n"
	    "                                      -o json: hubble observe -o json records\n"
	    "\n"
	    "  -s, --socket PATH   control socket (default %s)\n"
	    "  -c, --config FILE   read control_socket from FILE's [daemon] section\n"
	    "  -o, --output FMT    table (default) or json\n"
	    "\n"
	    "Exit status: 0 ok, 1 error reply from bpflbd, 2 usage, 3 cannot connect.\n",
	    DEFAULT_SOCKET);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(try %s --help)\n", prog);
	exit(EXIT_USAGE);
}

/* control_socket of CONFIG's [daemon] section (inih syntax: ';' and '#' comments). */
static char *socket_from_config(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *found = NULL;
	size_t cap = 0;
	bool in_daemon = false;

	if (!f) {
		fprintf(stderr, "%s: cannot read %s: %s\n", prog, path, strerror(errno));
		exit(EXIT_USAGE);
	}
	while (getline(&line, &cap, f) > 0) {
		char *s = line, *e, *eq;

		s += strspn(s, " \t");
		s[strcspn(s, "\r\n")] = '\0';
		if (*s == ';' || *s == '#' || !*s)
			continue;
		if (*s == '[') {
			e = strchr(s, ']');
			if (e)
				*e = '\0';
			in_daemon = !strcmp(s + 1, "daemon");
			continue;
		}
		eq = strchr(s, '=');
		if (!in_daemon || !eq)
			continue;
		for (e = eq; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		if (strcmp(s, "control_socket"))
			continue;
		eq++;
		eq += strspn(eq, " \t");
		for (e = eq + strlen(eq); e > eq && (e[-1] == ' ' || e[-1] == '\t'); e--)
			;
		*e = '\0';
		free(found);
		found = strdup(eq);
	}
	free(line);
	fclose(f);
	return found ? found : strdup(DEFAULT_SOCKET);
}

/* --- the connection ------------------------------------------------------------- */

static FILE *conn_in;
static int conn_fd = -1;

/*
 * Whoever answers gets our requests and decides what we print: only a bpflbd
 * of root (or, for a user who is not root, one of their own) is believed.
 * The peer's credentials are the kernel's of the connected socket
 * (SO_PEERCRED), so nothing can be swapped between the check and the use.
 */
static void check_peer(const char *path)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uid_t me = getuid();

	if (getsockopt(conn_fd, SOL_SOCKET, SO_PEERCRED, &cr, &len)) {
		fprintf(stderr, "%s: %s: cannot tell who serves it: %s\n", prog, path,
			strerror(errno));
		exit(EXIT_CONNECT);
	}
	if (cr.uid == 0 || (me != 0 && cr.uid == me))
		return;
	fprintf(stderr,
		"%s: refusing %s: it is served by uid %u (pid %d), not by root%s; another user "
		"may have put their own socket there\n",
		prog, path, (unsigned int)cr.uid, (int)cr.pid, me ? " or you" : "");
	exit(EXIT_CONNECT);
}

static void connect_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: socket path too long: %s\n", prog, path);
		exit(EXIT_USAGE);
	}
	strcpy(sa.sun_path, path);
	conn_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn_fd < 0 || connect(conn_fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "%s: cannot connect to %s: %s%s\n", prog, path, strerror(errno),
			errno == ENOENT || errno == ECONNREFUSED ? " (is bpflbd running?)" : "");
		exit(EXIT_CONNECT);
	}
	check_peer(path);
	conn_in = fdopen(conn_fd, "r");
	if (!conn_in) {
		fprintf(stderr, "%s: %s\n", prog, strerror(errno));
		exit(EXIT_CONNECT);
	}
}

void connect_to(const char *sock, const char *config)
{
	char *path = sock     ? strdup(sock)
		     : config ? socket_from_config(config)
			      : strdup(DEFAULT_SOCKET);

	connect_socket(path);
	free(path);
}

void send_request(const char *cmd, json_object *args)
{
	json_object *req = json_object_new_object();
	char *line;
	size_t len, off = 0;

	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "args", args);
	if (asprintf(&line, "%s\n",
		     json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE)) < 0) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(EXIT_ERROR);
	}
	len = strlen(line);
	while (off < len) {
		ssize_t w = send(conn_fd, line + off, len - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "%s: sending the request: %s\n", prog, strerror(errno));
			exit(EXIT_CONNECT);
		}
		off += (size_t)w;
	}
	free(line);
	json_object_put(req);
}

/* Next line from the daemon as JSON; NULL at EOF. */
json_object *read_line(void)
{
	static char *line;
	static size_t cap;
	ssize_t n = getline(&line, &cap, conn_in);
	json_object *o;

	if (n <= 0)
		return NULL;
	o = json_tokener_parse(line);
	if (!o) {
		fprintf(stderr, "%s: bpflbd sent something that is not JSON\n", prog);
		exit(EXIT_ERROR);
	}
	return o;
}

/* Reply of the request: its "data" (owned by the caller); exits on an error reply. */
json_object *read_reply(json_object **whole)
{
	json_object *r = read_line(), *ok, *data = NULL, *msg;

	if (!r) {
		fprintf(stderr, "%s: bpflbd closed the connection without an answer\n", prog);
		exit(EXIT_CONNECT);
	}
	if (!json_object_object_get_ex(r, "ok", &ok) || !json_object_get_boolean(ok)) {
		fprintf(stderr, "%s: %s\n", prog,
			json_object_object_get_ex(r, "error", &msg) ? json_object_get_string(msg)
								    : "error");
		exit(EXIT_ERROR);
	}
	json_object_object_get_ex(r, "data", &data);
	*whole = r;
	return data;
}

/* --- printing ---------------------------------------------------------------------- */

static const char *S(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

static int64_t I(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static json_object *G(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static size_t L(json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

#define AT(a, i) json_object_array_get_idx((a), (i))

static void print_json(json_object *data)
{
	printf("%s\n", json_object_to_json_string_ext(data, JSON_C_TO_STRING_PRETTY |
								JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void print_plugins(json_object *arr)
{
	/* MAPS: the shared sets a plugin drives (a mode: lb@VERSION) and its own maps' version. */
	printf("%-12s %-10s %-8s %-9s %-16s %s\n", "PLUGIN", "VERSION", "KIND", "STATE", "MAPS",
	       "DESCRIPTION");
	for (size_t i = 0; i < L(arr); i++) {
		json_object *p = AT(arr, i);
		const char *maps = S(p, "maps");

		printf("%-12s %-10s %-8s %-9s %-16s %s\n", S(p, "name"), S(p, "version"),
		       S(p, "kind"), S(p, "state"), *maps ? maps : "-", S(p, "description"));
		if (strcmp(S(p, "last_error"), "-"))
			printf("  last error: %s\n", S(p, "last_error"));
	}
}

static void print_status(json_object *d)
{
	json_object *x = G(d, "devices"), *r = G(d, "reloads"), *svc = G(d, "services");
	json_object *ct = G(d, "conntrack"), *fe = G(d, "flow_events"), *rt = G(d, "runtime");

	printf("bpflbd %s, pid %lld, node %s, up %llds\n", S(d, "version"), (long long)I(d, "pid"),
	       S(d, "node"), (long long)I(d, "uptime_s"));
	printf("mode:         %s\n", S(d, "mode"));
	printf("features:     %s\n", *S(d, "features") ? S(d, "features") : "-");
	printf("devices:     ");
	for (size_t i = 0; i < L(x); i++)
		printf(" %s", S(AT(x, i), "name"));
	printf("\nconfig:       %s (loaded %s)\n", S(G(d, "config"), "path"),
	       S(G(d, "config"), "loaded_at"));
	printf("reloads:      %lld ok, %lld failed\n", (long long)I(r, "ok"),
	       (long long)I(r, "failed"));
	if (strcmp(S(r, "last_error"), "-"))
		printf("last error:   %s\n", S(r, "last_error"));
	if (svc)
		printf("services:     %lld services, %lld frontends, %lld backends\n",
		       (long long)I(svc, "services"), (long long)I(svc, "frontends"),
		       (long long)I(svc, "backends"));
	if (ct)
		printf("conntrack:    %lld of %lld entries (counted %.1f s ago), %lld GC runs\n",
		       (long long)I(ct, "entries"), (long long)I(ct, "capacity"),
		       I(ct, "snapshot_age_ms") / 1000.0, (long long)I(ct, "gc_runs"));
	if (fe)
		printf("flow events:  %lld sent, %lld suppressed, %lld lost, %lld received\n",
		       (long long)I(fe, "sent"), (long long)I(fe, "suppressed"),
		       (long long)I(fe, "lost"), (long long)I(fe, "received"));
	for (size_t i = 0; rt && i < L(G(rt, "services")); i++)
		printf("overlay:      service %s %s (until overlay clear)\n",
		       S(AT(G(rt, "services"), i), "name"), S(AT(G(rt, "services"), i), "change"));
	for (size_t i = 0; rt && i < L(G(rt, "backend_states")); i++)
		printf("overlay:      backend %s %s\n",
		       S(AT(G(rt, "backend_states"), i), "backend"),
		       S(AT(G(rt, "backend_states"), i), "state"));
	printf("control:      %s (%lld clients)\n", S(G(d, "control"), "socket"),
	       (long long)I(G(d, "control"), "clients"));
	printf("metrics:      %s\n", S(d, "metrics_listen"));
	printf("\n");
	print_plugins(G(d, "plugins"));
}

static void print_service(json_object *s, bool details)
{
	json_object *ports = G(s, "ports"), *bes = G(s, "backends");

	for (size_t p = 0; p < L(ports); p++) {
		json_object *po = AT(ports, p), *fes = G(po, "frontends");
		char fe[512] = "", nb[32];

		for (size_t f = 0; f < L(fes); f++)
			snprintf(fe + strlen(fe), sizeof(fe) - strlen(fe), "%s%s", f ? "," : "",
				 json_object_get_string(AT(fes, f)));
		/* selectable for new flows / configured */
		snprintf(nb, sizeof(nb), "%lld/%zu", (long long)I(po, "selectable_backends"),
			 L(bes) / (L(ports) ? L(ports) : 1));
		printf("%-16s %-8s %-5s %-6lld %-12s %-8s %-6lld %-8s %s\n", S(s, "name"),
		       S(po, "name"), S(po, "proto"), (long long)I(po, "id"), S(s, "type"),
		       S(s, "origin"), (long long)I(po, "target"), nb, *fe ? fe : "-");
	}
	if (!details)
		return;
	printf("\n  policy: external_traffic_policy=%s no_backend=%s algorithm=%s forwarding=%s\n",
	       S(s, "external_traffic_policy"), S(s, "no_backend"), S(s, "algorithm"),
	       S(s, "forwarding"));
	for (size_t p = 0; p < L(ports); p++) {
		json_object *st = G(AT(ports, p), "stats");

		printf("  %s: forwarded %lld packets %lld bytes, dropped %lld packets %lld bytes\n",
		       S(AT(ports, p), "name"), (long long)I(st, "fwd_packets"),
		       (long long)I(st, "fwd_bytes"), (long long)I(st, "drop_packets"),
		       (long long)I(st, "drop_bytes"));
	}
	printf("\n  %-20s %-8s %-10s %-12s %-12s %s\n", "BACKEND", "PORT", "NODE", "STATE",
	       "CONFIGURED", "ID");
	for (size_t b = 0; b < L(bes); b++) {
		json_object *be = AT(bes, b);
		char ap[64];

		snprintf(ap, sizeof(ap), "%s:%lld", S(be, "addr"), (long long)I(be, "port"));
		printf("  %-20s %-8s %-10s %-12s %-12s %lld\n", ap, S(be, "service_port"),
		       S(be, "node"), S(be, "state"), S(be, "configured_state"),
		       (long long)I(be, "id"));
	}
}

static void print_service_header(void)
{
	printf("%-16s %-8s %-5s %-6s %-12s %-8s %-6s %-8s %s\n", "SERVICE", "PORT", "PROTO", "ID",
	       "TYPE", "ORIGIN", "TARGET", "BACKENDS", "FRONTENDS");
}

static void print_backends(json_object *arr)
{
	printf("%-6s %-22s %-12s %-12s %-10s %-6s %s\n", "ID", "BACKEND", "STATE", "CONFIGURED",
	       "NODE", "LOCAL", "SERVICES");
	for (size_t i = 0; i < L(arr); i++) {
		json_object *b = AT(arr, i), *u = G(b, "services");
		char ap[64], us[512] = "";

		snprintf(ap, sizeof(ap), "%s:%lld", S(b, "addr"), (long long)I(b, "port"));
		for (size_t k = 0; k < L(u); k++)
			snprintf(us + strlen(us), sizeof(us) - strlen(us), "%s%s", k ? "," : "",
				 json_object_get_string(AT(u, k)));
		printf("%-6lld %-22s %-12s %-12s %-10s %-6s %s%s\n", (long long)I(b, "id"), ap,
		       S(b, "state"), S(b, "configured_state"), S(b, "node"),
		       json_object_get_boolean(G(b, "local")) ? "yes" : "no", *us ? us : "-",
		       json_object_get_boolean(G(b, "override")) ? " (override)" : "");
	}
}

static void print_ct(json_object *d, bool nat)
{
	json_object *e = G(d, "entries");

	if (nat)
		printf("%-5s %-22s %-22s %-22s %-22s %-12s %s\n", "PROTO", "CLIENT", "FRONTEND",
		       "SNAT", "BACKEND", "STATE", "SERVICE");
	else
		printf("%-4s %-5s %-22s %-22s %-22s %-22s %-12s %-9s %-16s %s\n", "KIND", "PROTO",
		       "SRC", "DST", "BACKEND/CLIENT", "NAT/FRONTEND", "STATE", "FWD", "SERVICE",
		       "IDLE");
	for (size_t i = 0; i < L(e); i++) {
		json_object *x = AT(e, i);
		bool rev = !strcmp(S(x, "kind"), "rev");

		if (nat)
			printf("%-5s %-22s %-22s %-22s %-22s %-12s %s\n", S(x, "proto"),
			       S(x, "src"), S(x, "dst"), S(x, "nat"), S(x, "backend"),
			       S(x, "state"), S(x, "service"));
		else
			printf("%-4s %-5s %-22s %-22s %-22s %-22s %-12s %-9s %-16s %llds\n",
			       S(x, "kind"), S(x, "proto"), S(x, "src"), S(x, "dst"),
			       S(x, rev ? "client" : "backend"), S(x, rev ? "frontend" : "nat"),
			       S(x, "state"), S(x, "fwd"), S(x, "service"),
			       (long long)I(x, "idle_s"));
	}
	printf("%lld %s%s\n", (long long)I(d, "total"), nat ? "SNAT mappings" : "entries",
	       json_object_get_boolean(G(d, "truncated")) ? " (list truncated: use --limit)" : "");
}

static void print_maglev(json_object *d)
{
	json_object *b = G(d, "backends");

	printf("%s/%s (id %lld): %lld entries, %lld empty\n", S(d, "service"), S(d, "port"),
	       (long long)I(d, "id"), (long long)I(d, "size"), (long long)I(d, "empty"));
	printf("%-6s %-22s %-8s %s\n", "ID", "BACKEND", "ENTRIES", "SHARE");
	for (size_t i = 0; i < L(b); i++)
		printf("%-6lld %-22s %-8lld %5.1f%%\n", (long long)I(AT(b, i), "id"),
		       S(AT(b, i), "backend"), (long long)I(AT(b, i), "entries"),
		       100 * json_object_get_double(G(AT(b, i), "share")));
}

/* --- commands ----------------------------------------------------------------------- */

struct opts {
	const char *service, *addr, *proto, *verdict, *file;
	long limit, last;
	bool follow, has_limit, has_last;
};

static void parse_opts(int argc, char **argv, int first, struct opts *o, const char *allowed)
{
	static const struct option lo[] = {
	    {"service", required_argument, NULL, 'S'},
	    {"addr", required_argument, NULL, 'a'},
	    {"proto", required_argument, NULL, 'p'},
	    {"verdict", required_argument, NULL, 'v'},
	    {"limit", required_argument, NULL, 'l'},
	    {"last", required_argument, NULL, 'n'},
	    {"follow", no_argument, NULL, 'F'},
	    {"file", required_argument, NULL, 'f'},
	    {0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = first;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+f:", lo, NULL)) != -1) {
		char *end;

		if (c == '?' || c == ':')
			die_usage("unknown or incomplete option %s", argv[optind - 1]);
		if (!strchr(allowed, c))
			die_usage("option %s does not apply to this command", argv[optind - 1]);
		switch (c) {
		case 'S':
			o->service = optarg;
			break;
		case 'a':
			o->addr = optarg;
			break;
		case 'p':
			o->proto = optarg;
			break;
		case 'v':
			o->verdict = optarg;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'F':
			o->follow = true;
			break;
		case 'l':
		case 'n': {
			long *val = c == 'l' ? &o->limit : &o->last;

			errno = 0;
			*val = strtol(optarg, &end, 10);
			if (errno || *end || *val < 0)
				die_usage("%s needs a number", c == 'l' ? "--limit" : "--last");
			*(c == 'l' ? &o->has_limit : &o->has_last) = true;
			break;
		}
		}
	}
}

static json_object *selection_args(const struct opts *o)
{
	json_object *a = json_object_new_object();

	if (o->service)
		json_object_object_add(a, "service", json_object_new_string(o->service));
	if (o->addr)
		json_object_object_add(a, "addr", json_object_new_string(o->addr));
	if (o->proto)
		json_object_object_add(a, "proto", json_object_new_string(o->proto));
	if (o->has_limit)
		json_object_object_add(a, "limit", json_object_new_int64(o->limit));
	return a;
}

/* "type=nodeport" -> "type = nodeport" */
static json_object *service_lines(int argc, char **argv, int first, const char *file)
{
	json_object *lines = json_object_new_array();

	if (file) {
		FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
		char *line = NULL;
		size_t cap = 0;

		if (!f) {
			fprintf(stderr, "%s: cannot read %s: %s\n", prog, file, strerror(errno));
			exit(EXIT_USAGE);
		}
		while (getline(&line, &cap, f) > 0) {
			char *s = line + strspn(line, " \t");

			s[strcspn(s, "\r\n")] = '\0';
			if (!*s || *s == ';' || *s == '#' || *s == '[')
				continue;
			json_object_array_add(lines, json_object_new_string(s));
		}
		free(line);
		if (f != stdin)
			fclose(f);
	}
	for (int i = first; i < argc; i++) {
		char *eq = strchr(argv[i], '='), buf[4096];

		if (!eq || eq == argv[i])
			die_usage("'%s' is not KEY=VALUE", argv[i]);
		snprintf(buf, sizeof(buf), "%.*s = %s", (int)(eq - argv[i]), argv[i], eq + 1);
		json_object_array_add(lines, json_object_new_string(buf));
	}
	if (!json_object_array_length(lines))
		die_usage("service set needs KEY=VALUE arguments or -f FILE");
	return lines;
}

static bool is(const char *a, const char *b)
{
	return a && !strcmp(a, b);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"config", required_argument, NULL, 'c'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *sock = NULL, *config = NULL, *cmd, *sub;
	json_object *args = NULL, *whole = NULL, *data;
	struct opts o;
	int c, argi;

	while ((c = getopt_long(argc, argv, "+s:c:o:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				json_out = true;
			else if (strcmp(optarg, "table"))
				die_usage("-o takes table or json, not '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (sock && config)
		die_usage("give --socket or --config, not both");
	if (optind >= argc)
		die_usage("a command is required");
	cmd = argv[optind];
	sub = optind + 1 < argc ? argv[optind + 1] : NULL;
	argi = optind + 2;

	/* Check the command line completely before connecting. */
	const char *req = NULL;
	enum {
		P_JSON,
		P_STATUS,
		P_PLUGINS,
		P_SVCS,
		P_SVC,
		P_BES,
		P_CT,
		P_NAT,
		P_MAGLEV,
		P_NONE
	} pr;

	if (is(cmd, "status") && !sub) {
		req = "status", pr = P_STATUS, argi = optind + 1;
	} else if (is(cmd, "plugin") && is(sub, "list")) {
		req = "plugin.list", pr = P_PLUGINS;
	} else if (is(cmd, "service") && is(sub, "list")) {
		req = "service.list", pr = P_SVCS;
	} else if (is(cmd, "service") && (is(sub, "get") || is(sub, "delete"))) {
		if (argi + 1 != argc)
			die_usage("service %s NAME", sub);
		args = json_object_new_object();
		json_object_object_add(args, "name", json_object_new_string(argv[argi]));
		req = is(sub, "get") ? "service.get" : "service.delete";
		pr = is(sub, "get") ? P_SVC : P_NONE;
		argi++;
	} else if (is(cmd, "service") && is(sub, "set")) {
		const char *name = argi < argc ? argv[argi] : NULL;

		if (!name || name[0] == '-')
			die_usage("service set NAME KEY=VALUE... | -f FILE");
		parse_opts(argc, argv, argi + 1, &o, "f");
		args = json_object_new_object();
		json_object_object_add(args, "name", json_object_new_string(name));
		json_object_object_add(args, "lines", service_lines(argc, argv, optind, o.file));
		req = "service.set", pr = P_SVC, argi = argc;
	} else if (is(cmd, "backend") && is(sub, "list")) {
		req = "backend.list", pr = P_BES;
	} else if (is(cmd, "backend") && is(sub, "set-state")) {
		char addr[64], *colon;
		long port = 0;

		if (argi + 2 != argc)
			die_usage("backend set-state ADDR[:PORT] "
				  "active|terminating|maintenance|configured");
		snprintf(addr, sizeof(addr), "%s", argv[argi]);
		colon = strchr(addr, ':');
		if (colon) {
			char *end;

			*colon = '\0';
			port = strtol(colon + 1, &end, 10);
			if (*end || port < 1 || port > 65535)
				die_usage("'%s' is not ADDR[:PORT]", argv[argi]);
		}
		args = json_object_new_object();
		json_object_object_add(args, "addr", json_object_new_string(addr));
		if (port)
			json_object_object_add(args, "port", json_object_new_int(port));
		json_object_object_add(args, "state", json_object_new_string(argv[argi + 1]));
		req = "backend.set-state", pr = P_BES, argi = argc;
	} else if (is(cmd, "overlay") && is(sub, "list")) {
		req = "overlay.list", pr = P_JSON;
	} else if (is(cmd, "overlay") && is(sub, "clear")) {
		args = json_object_new_object();
		if (argi + 2 == argc && is(argv[argi], "service")) {
			json_object_object_add(args, "service", json_object_new_string(argv[argi + 1]));
		} else if (argi + 2 == argc && is(argv[argi], "backend")) {
			char addr[64], *colon, *end;
			long port;

			snprintf(addr, sizeof(addr), "%s", argv[argi + 1]);
			colon = strchr(addr, ':');
			if (colon) {
				*colon = '\0';
				port = strtol(colon + 1, &end, 10);
				if (*end || port < 0 || port > 65535)
					die_usage("'%s' is not ADDR[:PORT]", argv[argi + 1]);
				json_object_object_add(args, "port", json_object_new_int(port));
			}
			json_object_object_add(args, "addr", json_object_new_string(addr));
		} else if (argi != argc) {
			die_usage("overlay clear [service NAME | backend ADDR[:PORT]]");
		}
		req = "overlay.clear", pr = P_JSON, argi = argc;
	} else if ((is(cmd, "ct") && (is(sub, "list") || is(sub, "flush"))) ||
		   (is(cmd, "nat") && is(sub, "list"))) {
		bool flush = is(sub, "flush");

		parse_opts(argc, argv, argi, &o, flush ? "Sap" : "Sapl");
		argi = optind;
		if (!flush && !o.has_limit) {
			o.has_limit = true; /* a full table is 262144 entries: ask for them */
			o.limit = DEFAULT_LIMIT;
		}
		args = selection_args(&o);
		req = is(cmd, "nat") ? "nat.list" : flush ? "ct.flush" : "ct.list";
		pr = is(cmd, "nat") ? P_NAT : flush ? P_NONE : P_CT;
	} else if (is(cmd, "maglev") && is(sub, "show")) {
		if (argi + 1 != argc)
			die_usage("maglev show SERVICE[/PORT]");
		args = json_object_new_object();
		json_object_object_add(args, "service", json_object_new_string(argv[argi]));
		req = "maglev.show", pr = P_MAGLEV, argi++;
	} else if (is(cmd, "reload") && !sub) {
		req = "reload", pr = P_NONE, argi = optind + 1;
	} else if (is(cmd, "observe")) {
		return observe_main(argc, argv, optind + 1, sock, config, json_out);
	} else if (is(cmd, "help")) {
		usage(stdout);
		return 0;
	} else if (sub && strspn(cmd, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(cmd)) {
		/*
		 * PLUGIN CMD [NAME]: answered by that plugin's control hook
		 * (policy list, policy get NAME, egress list).  bpflbd says
		 * "unknown command" when no enabled plugin takes it.
		 */
		static char plugin_req[160];

		snprintf(plugin_req, sizeof(plugin_req), "%s.%s", cmd, sub);
		if (argi < argc) {
			args = json_object_new_object();
			json_object_object_add(args, "name", json_object_new_string(argv[argi]));
			argi++;
		}
		req = plugin_req, pr = P_JSON;
	} else {
		die_usage("unknown command '%s%s%s'", cmd, sub ? " " : "", sub ? sub : "");
	}
	if (argi < argc)
		die_usage("unexpected argument '%s'", argv[argi]);

	connect_to(sock, config);
	send_request(req, args);
	data = read_reply(&whole);
	if (json_out) {
		print_json(data);
	} else {
		switch (pr) {
		case P_STATUS:
			print_status(data);
			break;
		case P_PLUGINS:
			print_plugins(data);
			break;
		case P_SVCS:
			print_service_header();
			for (size_t i = 0; i < L(data); i++)
				print_service(AT(data, i), false);
			break;
		case P_SVC:
			print_service_header();
			print_service(data, true);
			break;
		case P_BES:
			print_backends(data);
			break;
		case P_CT:
			print_ct(data, false);
			break;
		case P_NAT:
			print_ct(data, true);
			break;
		case P_MAGLEV:
			print_maglev(data);
			break;
		case P_NONE:
			if (is(req, "ct.flush"))
				printf("%lld conntrack entries deleted\n",
				       (long long)I(data, "deleted"));
			else if (is(req, "reload"))
				printf("reloaded: mode %s\n", S(data, "mode"));
			else
				printf("ok\n");
			break;
		case P_JSON:
			print_json(data);
			break;
		}
	}
	json_object_put(whole);
	return 0;
}
