// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpflbctl's output for people: one table per list (table.h), a few
 * "key: value" lines around them.  Field names are the daemon's replies
 * (core/daemon_ops.c, core/lb/services_query.c, the plugins' control hooks).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "print.h"
#include "table.h"

/*
 * The elements of array a joined by sep: strings as they are, objects by
 * their member key.  malloc'ed; "" for an empty or missing array.
 */
static char *join(json_object *a, const char *key, const char *sep)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		fprintf(stderr, "bpflbctl: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < L(a); i++) {
		json_object *x = AT(a, i);

		fprintf(f, "%s%s", i ? sep : "",
			key && json_object_is_type(x, json_type_object)
			    ? S(x, key)
			    : json_object_get_string(x));
	}
	fclose(f);
	return buf;
}

static void cell_join(struct table *t, json_object *a, const char *key)
{
	char *s = join(a, key, ",");

	table_str(t, s);
	free(s);
}

static bool yes(json_object *o, const char *key)
{
	return json_object_get_boolean(G(o, key));
}

/* --- the daemon ------------------------------------------------------------- */

void print_plugins(json_object *arr)
{
	/* MAPS: the shared sets a plugin drives (a mode: lb@VERSION) and its own maps' version. */
	struct table *t = table_new((const struct table_col[]){
	    {"PLUGIN"}, {"VERSION"}, {"KIND"}, {"STATE"}, {"MAPS"}, {"DESCRIPTION"}, {NULL}});

	for (size_t i = 0; i < L(arr); i++) {
		json_object *p = AT(arr, i);

		table_row(t);
		table_str(t, S(p, "name"));
		table_str(t, S(p, "version"));
		table_str(t, S(p, "kind"));
		table_str(t, S(p, "state"));
		table_str(t, S(p, "maps"));
		table_str(t, S(p, "description"));
	}
	table_print(t);
	for (size_t i = 0; i < L(arr); i++)
		if (strcmp(S(AT(arr, i), "last_error"), "-"))
			printf("%s: last error: %s\n", S(AT(arr, i), "name"),
			       S(AT(arr, i), "last_error"));
}

/* A list the daemon gives as an array (of strings or of objects with "name") or as a line. */
static void print_words(const char *label, json_object *v)
{
	char *s =
	    json_object_is_type(v, json_type_array)
		? join(v, "name", " ")
		: strdup(v && !json_object_is_type(v, json_type_null) ? json_object_get_string(v)
								      : "");

	printf("%-14s%s\n", label, s && *s ? s : "-");
	free(s);
}

void print_status(json_object *d)
{
	json_object *r = G(d, "reloads"), *svc = G(d, "services");
	json_object *ct = G(d, "conntrack"), *fe = G(d, "flow_events"), *rt = G(d, "runtime");

	printf("bpflbd %s, pid %lld, node %s, up %llds\n", S(d, "version"), (long long)I(d, "pid"),
	       S(d, "node"), (long long)I(d, "uptime_s"));
	printf("mode:         %s\n", S(d, "mode"));
	print_words("features:", G(d, "features"));
	print_words("devices:", G(d, "devices"));
	printf("config:       %s (loaded %s)\n", S(G(d, "config"), "path"),
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

/* --- services and backends -------------------------------------------------------- */

static struct table *services_table(void)
{
	/* BACKENDS: selectable for new flows / configured */
	return table_new((const struct table_col[]){{"SERVICE"},
						    {"NAMESPACE"},
						    {"PORT"},
						    {"PROTO"},
						    {"ID", T_NUM},
						    {"TYPE"},
						    {"ORIGIN"},
						    {"TARGET", T_NUM},
						    {"BACKENDS", T_NUM},
						    {"FRONTENDS"},
						    {NULL}});
}

static void service_rows(struct table *t, json_object *s)
{
	json_object *ports = G(s, "ports");
	size_t nbe = L(G(s, "backends")) / (L(ports) ? L(ports) : 1);

	for (size_t p = 0; p < L(ports); p++) {
		json_object *po = AT(ports, p);

		table_row(t);
		table_str(t, S(s, "name"));
		table_str(t, S(s, "namespace"));
		table_str(t, S(po, "name"));
		table_str(t, S(po, "proto"));
		table_int(t, I(po, "id"));
		table_str(t, S(s, "type"));
		table_str(t, S(s, "origin"));
		table_int(t, I(po, "target"));
		table_fmt(t, "%lld/%zu", (long long)I(po, "selectable_backends"), nbe);
		cell_join(t, G(po, "frontends"), NULL);
	}
}

void print_services(json_object *arr)
{
	struct table *t = services_table();

	for (size_t i = 0; i < L(arr); i++)
		service_rows(t, AT(arr, i));
	table_print(t);
}

void print_service(json_object *s)
{
	json_object *ports = G(s, "ports"), *bes = G(s, "backends");
	struct table *t = services_table();

	service_rows(t, s);
	table_print(t);
	printf("\npolicy: external_traffic_policy=%s no_backend=%s algorithm=%s forwarding=%s\n",
	       S(s, "external_traffic_policy"), S(s, "no_backend"), S(s, "algorithm"),
	       S(s, "forwarding"));
	printf("\n");
	t = table_new((const struct table_col[]){{"PORT"},
						 {"FWD-PACKETS", T_NUM},
						 {"FWD-BYTES", T_NUM},
						 {"DROP-PACKETS", T_NUM},
						 {"DROP-BYTES", T_NUM},
						 {NULL}});
	for (size_t p = 0; p < L(ports); p++) {
		json_object *st = G(AT(ports, p), "stats");

		table_row(t);
		table_str(t, S(AT(ports, p), "name"));
		table_int(t, I(st, "fwd_packets"));
		table_int(t, I(st, "fwd_bytes"));
		table_int(t, I(st, "drop_packets"));
		table_int(t, I(st, "drop_bytes"));
	}
	table_print(t);
	printf("\n");
	t = table_new((const struct table_col[]){
	    {"BACKEND"}, {"PORT"}, {"NODE"}, {"STATE"}, {"CONFIGURED"}, {"ID", T_NUM}, {NULL}});
	for (size_t b = 0; b < L(bes); b++) {
		json_object *be = AT(bes, b);

		table_row(t);
		table_fmt(t, "%s:%lld", S(be, "addr"), (long long)I(be, "port"));
		table_str(t, S(be, "service_port"));
		table_str(t, S(be, "node"));
		table_str(t, S(be, "state"));
		table_str(t, S(be, "configured_state"));
		table_int(t, I(be, "id"));
	}
	table_print(t);
}

void print_backends(json_object *arr)
{
	struct table *t = table_new((const struct table_col[]){{"ID", T_NUM},
							       {"BACKEND"},
							       {"STATE"},
							       {"CONFIGURED"},
							       {"NODE"},
							       {"LOCAL"},
							       {"OVERRIDE"},
							       {"SERVICES"},
							       {NULL}});

	for (size_t i = 0; i < L(arr); i++) {
		json_object *b = AT(arr, i);

		table_row(t);
		table_int(t, I(b, "id"));
		table_fmt(t, "%s:%lld", S(b, "addr"), (long long)I(b, "port"));
		table_str(t, S(b, "state"));
		table_str(t, S(b, "configured_state"));
		table_str(t, S(b, "node"));
		table_str(t, yes(b, "local") ? "yes" : "no");
		table_str(t, yes(b, "override") ? "yes" : "no");
		cell_join(t, G(b, "services"), NULL);
	}
	table_print(t);
}

/* overlay list / clear: what control edits changed (core/state/overlay.c bpflb_overlay_json) */
void print_overlay(json_object *d)
{
	json_object *svcs = G(d, "services"), *bes = G(d, "backends");
	struct table *t = table_new(
	    (const struct table_col[]){{"KIND"}, {"NAME"}, {"CHANGE"}, {"LINES"}, {NULL}});

	printf("state file: %s\n\n", S(d, "state_file"));
	for (size_t i = 0; i < L(svcs); i++) {
		json_object *e = AT(svcs, i);
		char *lines = join(G(e, "lines"), NULL, "; ");

		table_row(t);
		table_str(t, "service");
		table_str(t, S(e, "name"));
		table_str(t, yes(e, "deleted") ? "deleted" : "set");
		table_str(t, lines);
		free(lines);
	}
	for (size_t i = 0; i < L(bes); i++) {
		json_object *e = AT(bes, i);

		table_row(t);
		table_str(t, "backend");
		/* port 0: the state applies to every port of the address */
		if (I(e, "port"))
			table_fmt(t, "%s:%lld", S(e, "addr"), (long long)I(e, "port"));
		else
			table_str(t, S(e, "addr"));
		table_str(t, S(e, "state"));
		table_str(t, "-");
	}
	table_print(t);
}

/* --- conntrack, NAT, Maglev ------------------------------------------------------ */

void print_ct(json_object *d, bool nat)
{
	json_object *e = G(d, "entries");
	struct table *t;

	if (nat)
		t = table_new((const struct table_col[]){{"PROTO"},
							 {"CLIENT"},
							 {"FRONTEND"},
							 {"SNAT"},
							 {"BACKEND"},
							 {"STATE"},
							 {"SERVICE"},
							 {NULL}});
	else
		t = table_new((const struct table_col[]){{"KIND"},
							 {"PROTO"},
							 {"SRC"},
							 {"DST"},
							 {"BACKEND/CLIENT"},
							 {"NAT/FRONTEND"},
							 {"STATE"},
							 {"FWD"},
							 {"SERVICE"},
							 {"IDLE", T_NUM},
							 {NULL}});
	for (size_t i = 0; i < L(e); i++) {
		json_object *x = AT(e, i);
		bool rev = !strcmp(S(x, "kind"), "rev");

		table_row(t);
		if (nat) {
			table_str(t, S(x, "proto"));
			table_str(t, S(x, "src"));
			table_str(t, S(x, "dst"));
			table_str(t, S(x, "nat"));
			table_str(t, S(x, "backend"));
			table_str(t, S(x, "state"));
			table_str(t, S(x, "service"));
			continue;
		}
		table_str(t, S(x, "kind"));
		table_str(t, S(x, "proto"));
		table_str(t, S(x, "src"));
		table_str(t, S(x, "dst"));
		table_str(t, S(x, rev ? "client" : "backend"));
		table_str(t, S(x, rev ? "frontend" : "nat"));
		table_str(t, S(x, "state"));
		table_str(t, S(x, "fwd"));
		table_str(t, S(x, "service"));
		table_fmt(t, "%llds", (long long)I(x, "idle_s"));
	}
	table_print(t);
	printf("%lld %s%s\n", (long long)I(d, "total"), nat ? "SNAT mappings" : "entries",
	       yes(d, "truncated") ? " (list truncated: use --limit)" : "");
}

void print_maglev(json_object *d)
{
	json_object *b = G(d, "backends");
	struct table *t = table_new((const struct table_col[]){
	    {"ID", T_NUM}, {"BACKEND"}, {"ENTRIES", T_NUM}, {"SHARE", T_NUM}, {NULL}});

	printf("%s/%s (id %lld): %lld entries, %lld empty\n", S(d, "service"), S(d, "port"),
	       (long long)I(d, "id"), (long long)I(d, "size"), (long long)I(d, "empty"));
	for (size_t i = 0; i < L(b); i++) {
		table_row(t);
		table_int(t, I(AT(b, i), "id"));
		table_str(t, S(AT(b, i), "backend"));
		table_int(t, I(AT(b, i), "entries"));
		table_fmt(t, "%.1f%%", 100 * json_object_get_double(G(AT(b, i), "share")));
	}
	table_print(t);
}

/* --- plugins: policy (plugins/policy/policy.c policy_control) ----------------------- */

/* The endpoints a policy's specs select, each once. */
static char *policy_selects(json_object *specs)
{
	json_object *seen = json_object_new_array();
	char *s;

	for (size_t i = 0; i < L(specs); i++) {
		json_object *sel = G(AT(specs, i), "selects");

		for (size_t k = 0; k < L(sel); k++) {
			const char *name = json_object_get_string(AT(sel, k));
			bool dup = false;

			for (size_t j = 0; j < L(seen) && !dup; j++)
				dup = !strcmp(json_object_get_string(AT(seen, j)), name);
			if (!dup)
				json_object_array_add(seen, json_object_new_string(name));
		}
	}
	s = join(seen, NULL, ",");
	json_object_put(seen);
	return s;
}

void print_policy_list(json_object *d)
{
	json_object *pols = G(d, "policies"), *subj = G(d, "subjects"), *pk = G(d, "packets");
	struct table *t;

	printf("policies from %s: generation %lld, audit mode %s, %lld identities, %lld rule "
	       "entries\n\n",
	       S(d, "dir"), (long long)I(d, "generation"), yes(d, "audit_mode") ? "on" : "off",
	       (long long)I(d, "identities"), (long long)I(d, "rule_entries"));
	/* DEFAULT-DENIED: packets no rule allowed (the policy's default deny) */
	t = table_new((const struct table_col[]){{"POLICY"},
						 {"ID", T_NUM},
						 {"MODE"},
						 {"SPECS", T_NUM},
						 {"RULES", T_NUM},
						 {"DEFAULT-DENIED", T_NUM},
						 {"FILE"},
						 {"SELECTS"},
						 {NULL}});
	for (size_t i = 0; i < L(pols); i++) {
		json_object *p = AT(pols, i), *specs = G(p, "specs");
		int64_t rules = 0;
		char *sel = policy_selects(specs);

		for (size_t k = 0; k < L(specs); k++)
			rules += I(AT(specs, k), "rules");
		table_row(t);
		table_str(t, S(p, "name"));
		table_int(t, I(p, "id"));
		table_str(t, S(p, "mode"));
		table_int(t, (int64_t)L(specs));
		table_int(t, rules);
		table_int(t, I(G(p, "default_deny_packets"), "denied"));
		table_fmt(t, "%s:%lld", S(p, "file"), (long long)I(p, "line"));
		table_str(t, sel);
		free(sel);
	}
	table_print(t);

	printf("\n");
	t = table_new(
	    (const struct table_col[]){{"SUBJECT"}, {"ADDRESS"}, {"INGRESS"}, {"EGRESS"}, {NULL}});
	for (size_t i = 0; i < L(subj); i++) {
		table_row(t);
		table_str(t, S(AT(subj, i), "subject"));
		table_str(t, S(AT(subj, i), "address"));
		table_str(t, S(AT(subj, i), "ingress"));
		table_str(t, S(AT(subj, i), "egress"));
	}
	table_print(t);

	printf("\n");
	t = table_new((const struct table_col[]){{"PACKETS"},
						 {"ALLOWED", T_NUM},
						 {"AUDIT", T_NUM},
						 {"DENIED", T_NUM},
						 {"REPLY", T_NUM},
						 {"UNSELECTED", T_NUM},
						 {NULL}});
	for (int dir = 0; dir < 2; dir++) {
		json_object *c = G(pk, dir ? "egress" : "ingress");

		table_row(t);
		table_str(t, dir ? "egress" : "ingress");
		table_int(t, I(c, "allowed"));
		table_int(t, I(c, "audit"));
		table_int(t, I(c, "denied"));
		table_int(t, I(c, "reply"));
		table_int(t, I(c, "unselected"));
	}
	table_print(t);
}

/* A rule's peers: entities, CIDRs (with their exceptions), endpoint selectors. */
static char *rule_peers(json_object *r)
{
	char *buf = NULL, *ent = join(G(r, "entities"), NULL, ",");
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *sep = "";

	if (!f || !ent) {
		fprintf(stderr, "bpflbctl: out of memory\n");
		exit(1);
	}
	if (*ent) {
		fprintf(f, "%s", ent);
		sep = ",";
	}
	for (size_t i = 0; i < L(G(r, "cidrs")); i++) {
		json_object *c = AT(G(r, "cidrs"), i);
		char *ex = join(G(c, "except"), NULL, ",");

		fprintf(f, "%s%s%s%s%s", sep, S(c, "cidr"), *ex ? "(except " : "", ex,
			*ex ? ")" : "");
		sep = ",";
		free(ex);
	}
	if (I(r, "endpoint_selectors")) {
		fprintf(f, "%s%lld endpoint selector%s", sep, (long long)I(r, "endpoint_selectors"),
			I(r, "endpoint_selectors") == 1 ? "" : "s");
		sep = ",";
	}
	if (yes(r, "any_peer"))
		fprintf(f, "%sany", sep);
	fclose(f);
	free(ent);
	return buf;
}

static char *rule_ports(json_object *r)
{
	json_object *ports = G(r, "ports");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		fprintf(stderr, "bpflbctl: out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < L(ports); i++) {
		json_object *p = AT(ports, i);

		fprintf(f, "%s%lld", i ? "," : "", (long long)I(p, "port"));
		if (I(p, "end") > I(p, "port"))
			fprintf(f, "-%lld", (long long)I(p, "end"));
		fprintf(f, "/%s", S(p, "protocol"));
	}
	fclose(f);
	return buf;
}

void print_policy(json_object *p)
{
	json_object *specs = G(p, "specs"), *dd = G(p, "default_deny_packets");
	struct table *t;

	printf("policy %s (id %lld, %s) from %s:%lld; default deny: %lld packets denied, %lld "
	       "audited\n\n",
	       S(p, "name"), (long long)I(p, "id"), S(p, "mode"), S(p, "file"),
	       (long long)I(p, "line"), (long long)I(dd, "denied"), (long long)I(dd, "audit"));
	t = table_new((const struct table_col[]){
	    {"SPEC", T_NUM}, {"SELECTOR"}, {"LINE", T_NUM}, {"DEFAULT-DENY"}, {"SELECTS"}, {NULL}});
	for (size_t i = 0; i < L(specs); i++) {
		json_object *s = AT(specs, i);
		bool in = yes(s, "ingress_default_deny"), eg = yes(s, "egress_default_deny");

		table_row(t);
		table_int(t, (int64_t)i);
		table_str(t, S(s, "selector"));
		table_int(t, I(s, "line"));
		table_str(t, in && eg ? "ingress,egress" : in ? "ingress" : eg ? "egress" : "-");
		cell_join(t, G(s, "selects"), NULL);
	}
	table_print(t);

	printf("\n");
	t = table_new((const struct table_col[]){{"SPEC", T_NUM},
						 {"SECTION"},
						 {"RULE", T_NUM},
						 {"LINE", T_NUM},
						 {"ALLOWED", T_NUM},
						 {"AUDIT", T_NUM},
						 {"DENIED", T_NUM},
						 {"PORTS"},
						 {"PEERS"},
						 {NULL}});
	for (size_t i = 0; i < L(specs); i++) {
		json_object *rules = G(AT(specs, i), "rule_list");

		for (size_t k = 0; k < L(rules); k++) {
			json_object *r = AT(rules, k), *pk = G(r, "packets");
			char *ports = rule_ports(r), *peers = rule_peers(r);

			table_row(t);
			table_int(t, (int64_t)i);
			table_str(t, S(r, "section"));
			table_int(t, I(r, "index"));
			table_int(t, I(r, "line"));
			table_int(t, I(pk, "allowed"));
			table_int(t, I(pk, "audit"));
			table_int(t, I(pk, "denied"));
			table_str(t, *ports ? ports : "any");
			table_str(t, peers);
			free(ports);
			free(peers);
		}
	}
	table_print(t);
}

/* --- plugins: egress (plugins/egress/egress.c egress_control) ---------------------- */

void print_egress_list(json_object *d)
{
	json_object *pols = G(d, "policies");
	struct table *t;

	/* lease_dir is empty without vip-mode policies: basic mode needs no leases */
	if (*S(d, "lease_dir"))
		printf("node %s, leases in %s (%llds)\n\n", S(d, "node"), S(d, "lease_dir"),
		       (long long)I(d, "lease_duration_s"));
	else
		printf("node %s, no lease store\n\n", S(d, "node"));
	/* packets: steered to the gateway, SNATed there, replies, dropped */
	t = table_new((const struct table_col[]){{"POLICY"},
						 {"ID", T_NUM},
						 {"MODE"},
						 {"EGRESS-IP"},
						 {"INTERFACE"},
						 {"STATE"},
						 {"GATEWAY"},
						 {"SOURCES", T_NUM},
						 {"ENDPOINTS", T_NUM},
						 {"STEERED", T_NUM},
						 {"SNAT", T_NUM},
						 {"REPLIES", T_NUM},
						 {"DROPPED", T_NUM},
						 {"GATEWAY-NODES"},
						 {NULL}});
	for (size_t i = 0; i < L(pols); i++) {
		json_object *p = AT(pols, i), *pk = G(p, "packets");

		table_row(t);
		table_str(t, S(p, "name"));
		table_int(t, I(p, "id"));
		table_str(t, S(p, "mode"));
		table_str(t, S(p, "egress_ip"));
		table_str(t, S(p, "interface"));
		table_str(t, S(p, "state"));
		table_str(t, S(p, "gateway"));
		table_int(t, I(p, "sources"));
		table_int(t, I(p, "endpoints"));
		table_int(t, I(pk, "steered_packets"));
		table_int(t, I(pk, "snat_packets"));
		table_int(t, I(pk, "reply_packets"));
		table_int(t, I(pk, "drop_packets"));
		cell_join(t, G(p, "gateway_nodes"), NULL);
	}
	table_print(t);
}
