// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpflbctl observe: flow events as hubble shows them.
 *
 * bpflbd filters (core/ops/flows.c), so that following a few flows of a busy
 * node does not ship the rest over the socket; this side checks the options
 * first, so that a typo exits 2 naming the option instead of reaching the
 * daemon, and turns --since/--until into absolute times (unix ns).
 *
 * -o json prints each record as bpflbd sends it, one per line, shaped as
 * `hubble observe -o json`: {"flow": {...}, "node_name", "time"}; what was not
 * shown comes as {"lost_events": {...}} while following, and a one-shot query
 * ends with {"stats": {...}}.  Only flow records have a "flow" key.  Records
 * are in time order (the daemon reorders the CPUs' events).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "observe.h"

#define EXIT_USAGE   2
#define EXIT_CONNECT 3

#define NS 1000000000LL

struct observe_opts {
	const char *service, *addr, *proto, *verdict, *ip, *from_ip, *to_ip;
	long port, from_port, to_port;
	const char *types[3];
	unsigned int ntypes;
	long long since, until; /* unix ns; 0: open */
	long last;
	bool has_last, follow;
};

static void __attribute__((noreturn, format(printf, 1, 2))) bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bpflbctl observe: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(try bpflbctl --help)\n");
	exit(EXIT_USAGE);
}

/* "5m", "1h30m", "90s", "250ms": a duration before now */
static int parse_relative(const char *s, long long *ns)
{
	static const struct {
		const char *unit;
		long long ns;
	} units[] = {
	    {"ms", 1000000LL}, {"s", NS}, {"m", 60 * NS}, {"h", 3600 * NS}, {"d", 86400 * NS}};
	long long total = 0;

	if (!*s)
		return -EINVAL;
	while (*s) {
		long long v = 0;
		size_t k, n = 0;

		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		while (isdigit((unsigned char)*s)) {
			if (v > 1000000000LL)
				return -ERANGE;
			v = v * 10 + (*s++ - '0');
		}
		for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
			n = strlen(units[k].unit);
			if (!strncmp(s, units[k].unit, n)) /* "ms" is tried before "m" */
				break;
		}
		if (k == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		if (v > (100LL * 365 * 86400 * NS) / units[k].ns)
			return -ERANGE;
		total += v * units[k].ns;
		if (total > 100LL * 365 * 86400 * NS)
			return -ERANGE;
		s += n;
	}
	*ns = total;
	return 0;
}

/* 2026-12-07T14:01:53Z, ...53.123456789Z, ...53+01:00 */
static int parse_rfc3339(const char *s, long long *out)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	long long frac = 0, scale = NS, off = 0;
	time_t secs;

	if (!p)
		return -EINVAL;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, n = 0;

		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5 || hh > 23 || mm > 59)
			return -EINVAL;
		off = (hh * 3600LL + mm * 60) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	secs = timegm(&tm);
	/* unix ns in 64 bits end in 2262; the 2200s are far enough */
	if (secs < 0 || secs > 7258118400LL)
		return -ERANGE;
	*out = ((long long)secs - off) * NS + frac;
	return 0;
}

int observe_parse_time(const char *s, long long now_ns, long long *out_ns)
{
	long long d;

	if (isdigit((unsigned char)s[0]) && strchr(s, 'T'))
		return parse_rfc3339(s, out_ns);
	if (parse_relative(s, &d))
		return -EINVAL;
	*out_ns = now_ns - d;
	return 0;
}

static long port_arg(const char *opt, const char *v)
{
	char *end;
	long p;

	errno = 0;
	p = strtol(v, &end, 10);
	if (errno || *end || end == v || p < 1 || p > 65535)
		bad("%s '%s' is not a port (1..65535)", opt, v);
	return p;
}

static void ip_arg(const char *opt, const char *v)
{
	struct in_addr a;

	if (inet_pton(AF_INET, v, &a) != 1)
		bad("%s '%s' is not an IPv4 address", opt, v);
}

static void parse(int argc, char **argv, int first, struct observe_opts *o)
{
	enum {
		O_IP = 256,
		O_FROM_IP,
		O_TO_IP,
		O_PORT,
		O_FROM_PORT,
		O_TO_PORT,
		O_TYPE,
		O_SINCE,
		O_UNTIL
	};
	static const struct option lo[] = {
	    {"service", required_argument, NULL, 'S'},
	    {"addr", required_argument, NULL, 'a'},
	    {"proto", required_argument, NULL, 'p'},
	    {"protocol", required_argument, NULL, 'p'},
	    {"verdict", required_argument, NULL, 'v'},
	    {"last", required_argument, NULL, 'n'},
	    {"follow", no_argument, NULL, 'f'},
	    {"ip", required_argument, NULL, O_IP},
	    {"from-ip", required_argument, NULL, O_FROM_IP},
	    {"to-ip", required_argument, NULL, O_TO_IP},
	    {"port", required_argument, NULL, O_PORT},
	    {"from-port", required_argument, NULL, O_FROM_PORT},
	    {"to-port", required_argument, NULL, O_TO_PORT},
	    {"type", required_argument, NULL, O_TYPE},
	    {"since", required_argument, NULL, O_SINCE},
	    {"until", required_argument, NULL, O_UNTIL},
	    {0},
	};
	struct timespec now;
	long long now_ns;
	int c;

	clock_gettime(CLOCK_REALTIME, &now);
	now_ns = now.tv_sec * NS + now.tv_nsec;
	memset(o, 0, sizeof(*o));
	optind = first;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+f", lo, NULL)) != -1) {
		const char *opt = argv[optind - 1];
		char *end;

		switch (c) {
		case 'S':
			o->service = optarg;
			break;
		case 'a':
			ip_arg("--addr", optarg);
			o->addr = optarg;
			break;
		case 'p':
			if (strcasecmp(optarg, "tcp") && strcasecmp(optarg, "udp") &&
			    strcasecmp(optarg, "icmp"))
				bad("--proto '%s' is not tcp, udp or icmp", optarg);
			o->proto = optarg;
			break;
		case 'v':
			if (strcasecmp(optarg, "FORWARDED") && strcasecmp(optarg, "DROPPED") &&
			    strcasecmp(optarg, "REJECTED") && strcasecmp(optarg, "AUDIT"))
				bad("--verdict '%s' is not FORWARDED, DROPPED, REJECTED or AUDIT",
				    optarg);
			o->verdict = optarg;
			break;
		case 'n':
			errno = 0;
			o->last = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || o->last < 0)
				bad("--last '%s' is not a number", optarg);
			o->has_last = true;
			break;
		case 'f':
			o->follow = true;
			break;
		case O_IP:
			ip_arg("--ip", optarg);
			o->ip = optarg;
			break;
		case O_FROM_IP:
			ip_arg("--from-ip", optarg);
			o->from_ip = optarg;
			break;
		case O_TO_IP:
			ip_arg("--to-ip", optarg);
			o->to_ip = optarg;
			break;
		case O_PORT:
			o->port = port_arg("--port", optarg);
			break;
		case O_FROM_PORT:
			o->from_port = port_arg("--from-port", optarg);
			break;
		case O_TO_PORT:
			o->to_port = port_arg("--to-port", optarg);
			break;
		case O_TYPE:
			if (strcmp(optarg, "drop") && strcmp(optarg, "trace") &&
			    strcmp(optarg, "policy-verdict"))
				bad("--type '%s' is not drop, trace or policy-verdict", optarg);
			if (o->ntypes == sizeof(o->types) / sizeof(o->types[0]))
				bad("--type given more than 3 times");
			o->types[o->ntypes++] = optarg;
			break;
		case O_SINCE:
		case O_UNTIL:
			if (observe_parse_time(optarg, now_ns,
					       c == O_SINCE ? &o->since : &o->until))
				bad("%s '%s' is neither RFC 3339 (2006-01-02T15:04:05Z) nor a time "
				    "before now (30s, 5m, 1h30m)",
				    c == O_SINCE ? "--since" : "--until", optarg);
			break;
		default:
			bad("unknown or incomplete option %s", opt);
		}
	}
	if (optind != argc)
		bad("unexpected argument '%s'", argv[optind]);
	if (o->since && o->until && o->since > o->until)
		bad("--since is after --until");
	if (o->until && o->follow)
		bad("--until ends the history; it cannot be combined with --follow");
}

static const char *S(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return json_object_get_string(v);
}

static json_object *G(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o)
		json_object_object_get_ex(o, key, &v);
	return v;
}

static long long I(json_object *o, const char *key)
{
	json_object *v = G(o, key);

	return v ? json_object_get_int64(v) : 0;
}

/* "10.0.0.1:80" from IP.source and l4.*.source_port */
static const char *endpoint(json_object *flow, bool src, char *b, size_t len)
{
	json_object *l4 = G(flow, "l4"), *p = G(l4, "TCP");
	const char *ip = S(G(flow, "IP"), src ? "source" : "destination");

	if (!p)
		p = G(l4, "UDP");
	if (p)
		snprintf(b, len, "%s:%lld", ip ? ip : "?",
			 I(p, src ? "source_port" : "destination_port"));
	else
		snprintf(b, len, "%s", ip ? ip : "?");
	return b;
}

/*
 * One line per flow, time first:
 *   TIME NODE IFACE SRC -> DST PROTO [svc S] [=> BACKEND (how)] VERDICT [(reason)]
 *   [policy=NAME rule=N (ingress deny) | policy=NAME default-deny (ingress: no policy allows)]
 *   [(TCP Flags: ...)]
 */
static void print_flow(json_object *rec)
{
	json_object *f = G(rec, "flow"), *x = G(f, "bpflb"), *pol = G(x, "policy");
	json_object *l4 = G(f, "l4");
	const char *proto = G(l4, "TCP")      ? "TCP"
			    : G(l4, "UDP")    ? "UDP"
			    : G(l4, "ICMPv4") ? "ICMP"
					      : "IP";
	char a[64], b[64];

	printf("%s %s %s %s -> %s %s", S(f, "time"), S(f, "node_name"),
	       S(G(f, "interface"), "name") ? S(G(f, "interface"), "name") : "-",
	       endpoint(f, true, a, sizeof(a)), endpoint(f, false, b, sizeof(b)), proto);
	if (S(x, "service"))
		printf(" svc %s", S(x, "service"));
	if (S(x, "backend"))
		printf(" => %s (%s)", S(x, "backend"), S(x, "translation"));
	else if (S(x, "xlate"))
		printf(" => %s", S(x, "xlate"));
	printf(" %s", S(x, "verdict") ? S(x, "verdict") : S(f, "verdict"));
	if (S(x, "reason"))
		printf(" (%s)", S(x, "reason"));
	if (pol) {
		const char *action = S(pol, "action");

		if (action && !strcmp(action, "default-deny"))
			printf(" policy=%s default-deny (%s: no policy allows)", S(pol, "name"),
			       S(pol, "direction"));
		else
			printf(" policy=%s rule=%lld (%s %s)", S(pol, "name"), I(pol, "rule"),
			       S(pol, "direction"), action ? action : "?");
	} else if (G(x, "rule_id")) {
		/* a rule the daemon could not name (its policy is gone) */
		printf(" rule-id=%#llx", I(x, "rule_id"));
	}
	if (G(l4, "TCP") && S(f, "Summary"))
		printf(" (%s)", S(f, "Summary"));
	printf("\n");
}

static void print_stats(json_object *s)
{
	fprintf(stderr,
		"-- flow events not shown: %lld suppressed by the datapath rate limit, "
		"%lld lost (perf buffer full), %lld dropped for this client\n",
		I(s, "suppressed"), I(s, "lost"), I(s, "client_dropped"));
}

static void print_record(json_object *rec, bool json)
{
	json_object *l;

	if (json)
		printf("%s\n", json_object_to_json_string_ext(
				   rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (G(rec, "flow"))
		print_flow(rec);
	else if ((l = G(rec, "lost_events")))
		fprintf(stderr, "-- %lld flow events not shown (%s)\n", I(l, "num_events_lost"),
			S(l, "source"));
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int observe_main(int argc, char **argv, int first, const char *sock, const char *config, bool json)
{
	struct observe_opts o;
	json_object *args = json_object_new_object(), *whole, *data, *ev, *types;
	struct sigaction sa = {.sa_handler = on_signal};

	parse(argc, argv, first, &o);
#define ADD_STR(key, v)                                                                            \
	do {                                                                                       \
		if (v)                                                                             \
			json_object_object_add(args, key, json_object_new_string(v));              \
	} while (0)
#define ADD_INT(key, v)                                                                            \
	do {                                                                                       \
		if (v)                                                                             \
			json_object_object_add(args, key, json_object_new_int64(v));               \
	} while (0)
	ADD_STR("service", o.service);
	ADD_STR("addr", o.addr);
	ADD_STR("proto", o.proto);
	ADD_STR("verdict", o.verdict);
	ADD_STR("ip", o.ip);
	ADD_STR("from_ip", o.from_ip);
	ADD_STR("to_ip", o.to_ip);
	ADD_INT("port", o.port);
	ADD_INT("from_port", o.from_port);
	ADD_INT("to_port", o.to_port);
	ADD_INT("since", o.since);
	ADD_INT("until", o.until);
#undef ADD_STR
#undef ADD_INT
	if (o.ntypes) {
		types = json_object_new_array();
		for (unsigned int i = 0; i < o.ntypes; i++)
			json_object_array_add(types, json_object_new_string(o.types[i]));
		json_object_object_add(args, "types", types);
	}
	/* --since alone asks for the whole history since then, as hubble does */
	json_object_object_add(args, "last",
			       json_object_new_int64(o.has_last		  ? o.last
						     : o.since || o.until ? 8192
						     : o.follow		  ? 0
									  : 20));
	json_object_object_add(args, "follow", json_object_new_boolean(o.follow));

	connect_to(sock, config);
	send_request("observe", args);
	data = read_reply(&whole);
	ev = G(data, "events");
	for (size_t i = 0; ev && i < json_object_array_length(ev); i++)
		print_record(json_object_array_get_idx(ev, i), json);
	if (json) {
		json_object *st = json_object_new_object();

		json_object_object_add(st, "stats", json_object_get(G(data, "stats")));
		printf("%s\n", json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN));
		json_object_put(st);
	} else if (I(G(data, "stats"), "suppressed") || I(G(data, "stats"), "lost")) {
		print_stats(G(data, "stats"));
	}
	fflush(stdout);
	json_object_put(whole);
	if (!o.follow)
		return 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!stop) {
		json_object *line = read_line();

		if (!line) {
			if (stop || errno == EINTR)
				break;
			fprintf(stderr, "bpflbctl: bpflbd closed the stream\n");
			return EXIT_CONNECT;
		}
		print_record(line, json);
		fflush(stdout);
		json_object_put(line);
	}
	return 0;
}
