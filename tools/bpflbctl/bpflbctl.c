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
#include "print.h"

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
	    "       bpflbctl --version\n"
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
	    "  policy list                         network policies, the subjects on this node\n"
	    "  policy get NAME                     a policy's specs and rules with their counters\n"
	    "  egress list                         egress policies, gateways, counters\n"
	    "  PLUGIN CMD [NAME]                   another plugin's own commands, in JSON\n"
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
	    "  -V, --version       bpflbctl's version and the daemon's\n"
	    "\n"
	    "Exit status: 0 ok, 1 error reply from bpflbd, 2 usage (also a value an option\n"
	    "does not take), 3 cannot connect.\n",
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
static int check_peer(const char *path, char *why, size_t n)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uid_t me = getuid();

	if (getsockopt(conn_fd, SOL_SOCKET, SO_PEERCRED, &cr, &len)) {
		snprintf(why, n, "%s: cannot tell who serves it: %s", path, strerror(errno));
		return EXIT_CONNECT;
	}
	if (cr.uid == 0 || (me != 0 && cr.uid == me))
		return 0;
	snprintf(why, n,
		 "refusing %s: it is served by uid %u (pid %d), not by root%s; another user "
		 "may have put their own socket there",
		 path, (unsigned int)cr.uid, (int)cr.pid, me ? " or you" : "");
	return EXIT_CONNECT;
}

/* Connect and check the peer: 0, or the exit status with why set (--version goes on). */
static int try_connect(const char *path, char *why, size_t n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, n, "socket path too long: %s", path);
		return EXIT_USAGE;
	}
	strcpy(sa.sun_path, path);
	conn_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (conn_fd < 0 || connect(conn_fd, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(why, n, "cannot connect to %s: %s%s", path, strerror(errno),
			 errno == ENOENT || errno == ECONNREFUSED ? " (is bpflbd running?)" : "");
		return EXIT_CONNECT;
	}
	if ((ret = check_peer(path, why, n)))
		return ret;
	conn_in = fdopen(conn_fd, "r");
	if (!conn_in) {
		snprintf(why, n, "%s", strerror(errno));
		return EXIT_CONNECT;
	}
	return 0;
}

static char *socket_path(const char *sock, const char *config)
{
	return sock ? strdup(sock) : config ? socket_from_config(config) : strdup(DEFAULT_SOCKET);
}

void connect_to(const char *sock, const char *config)
{
	char *path = socket_path(sock, config), why[512];
	int ret = try_connect(path, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "%s: %s\n", prog, why);
		exit(ret);
	}
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

static void print_json(json_object *data)
{
	printf("%s\n", json_object_to_json_string_ext(data, JSON_C_TO_STRING_PRETTY |
								JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* --- commands ----------------------------------------------------------------------- */

struct opts {
	const char *service, *addr, *proto, *file;
	long limit;
	bool has_limit;
};

static void parse_opts(int argc, char **argv, int first, struct opts *o, const char *allowed)
{
	static const struct option lo[] = {
	    {"service", required_argument, NULL, 'S'},
	    {"addr", required_argument, NULL, 'a'},
	    {"proto", required_argument, NULL, 'p'},
	    {"limit", required_argument, NULL, 'l'},
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
		case 'f':
			o->file = optarg;
			break;
		case 'l':
			errno = 0;
			o->limit = strtol(optarg, &end, 10);
			if (errno || *end || o->limit < 0)
				die_usage("--limit needs a number");
			o->has_limit = true;
			break;
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

/*
 * An option with a closed set of values (set ends with NULL): anything else
 * is a usage error naming the option and what it takes, before connecting.
 */
static void check_choice(const char *opt, const char *value, const char *const *set)
{
	char list[256] = "";

	for (size_t i = 0; set[i]; i++) {
		if (!strcmp(value, set[i]))
			return;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 set[i]);
	}
	die_usage("%s: '%s' is not one of %s", opt, value, list);
}

/*
 * --version: ours, from the build (CMake's project version), and the daemon's
 * from its status when one answers on the socket.  Not reaching the daemon is
 * no error here: the client's version is still the answer asked for.
 */
static int print_version(const char *sock, const char *config)
{
	char *path = socket_path(sock, config), why[512];
	json_object *whole = NULL, *data = NULL, *out;
	int ret = try_connect(path, why, sizeof(why));

	if (!ret) {
		send_request("status", NULL);
		data = read_reply(&whole);
	}
	if (json_out) {
		out = json_object_new_object();
		json_object_object_add(out, "bpflbctl", json_object_new_string(BPFLB_VERSION));
		json_object_object_add(out, "bpflbd",
				       data ? json_object_get(G(data, "version")) : NULL);
		json_object_object_add(out, "socket", json_object_new_string(path));
		print_json(out);
		json_object_put(out);
	} else {
		printf("bpflbctl %s\n", BPFLB_VERSION);
		if (data)
			printf("bpflbd %s (pid %lld, %s)\n", S(data, "version"),
			       (long long)I(data, "pid"), path);
		else
			printf("bpflbd: %s\n", why);
	}
	json_object_put(whole);
	free(path);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"config", required_argument, NULL, 'c'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	static const char *const outputs[] = {"table", "json", NULL};
	static const char *const ct_protos[] = {"tcp", "udp", NULL};
	static const char *const be_states[] = {"active", "terminating", "maintenance",
						"configured", NULL};
	const char *sock = NULL, *config = NULL, *cmd, *sub;
	json_object *args = NULL, *whole = NULL, *data;
	bool version = false;
	struct opts o;
	int c, argi;

	while ((c = getopt_long(argc, argv, "+s:c:o:hV", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'o':
			check_choice("-o/--output", optarg, outputs);
			json_out = !strcmp(optarg, "json");
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			version = true;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (sock && config)
		die_usage("give --socket or --config, not both");
	if (version) {
		if (optind < argc)
			die_usage("--version takes no command");
		return print_version(sock, config);
	}
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
		P_POLICIES,
		P_POLICY,
		P_EGRESS,
		P_OVERLAY,
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
		check_choice("set-state STATE", argv[argi + 1], be_states);
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
		req = "overlay.list", pr = P_OVERLAY;
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
		req = "overlay.clear", pr = P_OVERLAY, argi = argc;
	} else if ((is(cmd, "ct") && (is(sub, "list") || is(sub, "flush"))) ||
		   (is(cmd, "nat") && is(sub, "list"))) {
		bool flush = is(sub, "flush");

		parse_opts(argc, argv, argi, &o, flush ? "Sap" : "Sapl");
		argi = optind;
		/* conntrack and SNAT hold TCP and UDP flows only */
		if (o.proto)
			check_choice("--proto", o.proto, ct_protos);
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
	} else if (is(cmd, "policy") && is(sub, "list")) {
		req = "policy.list", pr = P_POLICIES;
	} else if (is(cmd, "policy") && is(sub, "get")) {
		if (argi + 1 != argc)
			die_usage("policy get NAME");
		args = json_object_new_object();
		json_object_object_add(args, "name", json_object_new_string(argv[argi]));
		req = "policy.get", pr = P_POLICY, argi++;
	} else if (is(cmd, "policy")) {
		die_usage("policy takes list or get NAME%s%s%s", sub ? ", not '" : "",
			  sub ? sub : "", sub ? "'" : "");
	} else if (is(cmd, "egress") && is(sub, "list")) {
		req = "egress.list", pr = P_EGRESS;
	} else if (is(cmd, "egress")) {
		die_usage("egress takes list%s%s%s", sub ? ", not '" : "", sub ? sub : "",
			  sub ? "'" : "");
	} else if (is(cmd, "reload") && !sub) {
		req = "reload", pr = P_NONE, argi = optind + 1;
	} else if (is(cmd, "observe")) {
		return observe_main(argc, argv, optind + 1, sock, config, json_out);
	} else if (is(cmd, "help")) {
		usage(stdout);
		return 0;
	} else if (sub && strspn(cmd, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(cmd)) {
		/*
		 * PLUGIN CMD [NAME]: answered by that plugin's control hook, in
		 * JSON (policy and egress have their own tables above).  bpflbd
		 * says "unknown command" when no enabled plugin takes it.
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
			print_services(data);
			break;
		case P_SVC:
			print_service(data);
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
		case P_POLICIES:
			print_policy_list(data);
			break;
		case P_POLICY:
			print_policy(data);
			break;
		case P_EGRESS:
			print_egress_list(data);
			break;
		case P_OVERLAY:
			print_overlay(data);
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
