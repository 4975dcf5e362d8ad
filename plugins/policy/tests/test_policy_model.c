// SPDX-License-Identifier: GPL-2.0-only
/*
 * The policy plugin without BPF: the YAML corpus (tests/policies/good and bad:
 * every bad file must be refused with the file, line and field its first line
 * names) and the semantics of the compiled tables, evaluated with pol_eval(),
 * which looks the tables up exactly as the datapath does.
 *
 * A bad file starts with
 *     # expect: LINE: TEXT
 * and its message must contain "FILE:LINE: TEXT".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy_model.h"

static char msg[POL_ERR_MAX];

/* --- helpers ------------------------------------------------------------------ */

#include "policy_scene.h"

/* "allow", "deny" or "audit" (a deny that passes) for a new flow. */
static const char *verdict(const struct world *w, int dir, const char *subject, const char *peer,
			   uint8_t proto, uint16_t port)
{
	struct pol_verdict v = pol_eval(&w->c, dir, ip(subject), ip(peer), proto, port_be(port));

	if (v.action != POL_ACT_DENY)
		return "allow";
	return v.audit ? "audit" : "deny";
}

static uint32_t rule_of(const struct world *w, int dir, const char *subject, const char *peer,
			uint8_t proto, uint16_t port)
{
	return pol_eval(&w->c, dir, ip(subject), ip(peer), proto, port_be(port)).rule_id;
}

#define IN   POL_DIR_IN
#define OUT  POL_DIR_OUT
#define TCP  IPPROTO_TCP
#define UDP  IPPROTO_UDP
#define ICMP IPPROTO_ICMP

#define HDR "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n"

/* --- corpus --------------------------------------------------------------------- */

static char **list_dir(const char *dir, size_t *n)
{
	char **names = NULL;
	struct dirent *de;
	DIR *d = opendir(dir);

	ck_assert_msg(d, "%s: %s", dir, strerror(errno));
	*n = 0;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml"))
			continue;
		names = reallocarray(names, *n + 1, sizeof(*names));
		names[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	return names;
}

START_TEST(test_corpus_good)
{
	struct pol_set set = {0};
	char path[4096];
	size_t n, total = 0;
	char **names = list_dir(POLICY_CORPUS_DIR "/good", &n);

	ck_assert_uint_ge(n, 5);
	for (size_t i = 0; i < n; i++) {
		struct pol_set one = {0};

		snprintf(path, sizeof(path), POLICY_CORPUS_DIR "/good/%s", names[i]);
		ck_assert_msg(!pol_load_file(path, &one, msg), "%s refused: %s", names[i], msg);
		ck_assert_uint_ge(one.n, 1);
		total += one.n;
		pol_set_free(&one);
		free(names[i]);
	}
	free(names);
	/* The whole directory at once, as the plugin reads it. */
	ck_assert_msg(!pol_load_dir(POLICY_CORPUS_DIR "/good", &set, msg), "%s", msg);
	ck_assert_uint_eq(set.n, total);
	ck_assert_uint_eq(set.files, n);
	for (size_t i = 0; i < set.n; i++)
		ck_assert_uint_eq(set.pols[i].id, i + 1);
	pol_set_free(&set);
}
END_TEST

START_TEST(test_corpus_bad)
{
	char path[1024], line[512], want[2048];
	size_t n, failed = 0;
	char **names = list_dir(POLICY_CORPUS_DIR "/bad", &n);

	ck_assert_uint_ge(n, 20);
	for (size_t i = 0; i < n; i++) {
		struct pol_set set = {0};
		FILE *f;
		char *colon;
		int ret;

		snprintf(path, sizeof(path), POLICY_CORPUS_DIR "/bad/%s", names[i]);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
		fclose(f);
		line[strcspn(line, "\n")] = 0;
		ck_assert_msg(!strncmp(line, "# expect: ", 10), "%s: no '# expect:' line",
			      names[i]);
		colon = strchr(line + 10, ':');
		ck_assert_ptr_nonnull(colon);
		snprintf(want, sizeof(want), "%s:%.*s:%s", path, (int)(colon - line - 10),
			 line + 10, colon + 1);
		ret = pol_load_file(path, &set, msg);
		if (ret != -EINVAL || !strstr(msg, want)) {
			fprintf(stderr, "bad/%s:\n  got (%d): %s\n  expected: ...%s...\n", names[i],
				ret, msg, want);
			failed++;
		}
		pol_set_free(&set);
		free(names[i]);
	}
	free(names);
	ck_assert_msg(!failed, "%zu of %zu bad files not refused as expected", failed, n);
}
END_TEST

/* The documentation's policy, verbatim, means what it means in Cilium. */
START_TEST(test_doc_policy_parsed)
{
	struct pol_set set = {0};
	const struct pol_policy *p;

	ck_assert_msg(!pol_load_file(POLICY_CORPUS_DIR
				     "/good/allow-control-plane-connectivity.yaml",
				     &set, msg),
		      "%s", msg);
	ck_assert_uint_eq(set.n, 1);
	p = &set.pols[0];
	ck_assert_str_eq(p->name, "allow-control-plane-connectivity");
	ck_assert(!p->audit);
	ck_assert_uint_eq(p->nspecs, 1);
	ck_assert(p->specs[0].node);
	ck_assert_uint_eq(p->specs[0].subject.nlabels, 1);
	ck_assert_str_eq(p->specs[0].subject.labels[0].key,
			 "node-role.kubernetes.io/control-plane");
	ck_assert_str_eq(p->specs[0].subject.labels[0].value, "");
	ck_assert_uint_eq(p->specs[0].nrules, 1);
	ck_assert_int_eq(p->specs[0].rules[0].sec, POL_SEC_INGRESS);
	ck_assert_uint_eq(p->specs[0].rules[0].entities, POL_ENT_APISERVER);
	ck_assert_uint_eq(p->specs[0].rules[0].nports, 0);
	ck_assert(p->specs[0].has_rules[POL_DIR_IN]);
	ck_assert(!p->specs[0].has_rules[POL_DIR_OUT]);
	pol_set_free(&set);
}
END_TEST

START_TEST(test_parse_details)
{
	struct pol_set set = {0};
	const struct pol_rule *r;

	must_load(HDR
		  "metadata: {name: p}\n"
		  "spec:\n"
		  "  endpointSelector: {matchLabels: {'k8s:app': web}}\n"
		  "  ingress:\n"
		  "  - toPorts: [{ports: [{port: '9000', endPort: 9100}, {port: 53, protocol: UDP},"
		  " {protocol: TCP}]}]\n"
		  "  - {}\n"
		  "  - fromEndpoints: [{matchLabels: {'reserved:host': ''}}]\n",
		  &set);
	ck_assert_str_eq(set.pols[0].specs[0].subject.labels[0].key, "app");
	r = &set.pols[0].specs[0].rules[0];
	ck_assert(r->any_peer);
	ck_assert_uint_eq(r->nports, 3);
	ck_assert_uint_eq(r->ports[0].port, 9000);
	ck_assert_uint_eq(r->ports[0].end, 9100);
	ck_assert_uint_eq(r->ports[0].proto, 0);
	ck_assert_uint_eq(r->ports[1].port, 53);
	ck_assert_uint_eq(r->ports[1].end, 53);
	ck_assert_uint_eq(r->ports[1].proto, IPPROTO_UDP);
	ck_assert_uint_eq(r->ports[2].port, 0);
	ck_assert_uint_eq(r->ports[2].end, 65535);
	ck_assert_uint_eq(r->ordinal, 1);
	r = &set.pols[0].specs[0].rules[1];
	ck_assert(!r->any_peer); /* {} selects nobody */
	ck_assert_uint_eq(r->ordinal, 2);
	r = &set.pols[0].specs[0].rules[2];
	ck_assert_uint_eq(r->endpoints[0].reserved, POL_ENT_HOST);
	ck_assert_uint_eq(pol_rule_id(&set.pols[0], r), (1u << 16) | 3);
	pol_set_free(&set);
}
END_TEST

START_TEST(test_parse_errors_inline)
{
	must_refuse(HDR "metadata: {name: p}\nspec:\n  nodeSelector: {}\n  ingress: {}\n",
		    "mem.yaml:6: spec.ingress: expected a list, found a mapping");
	must_refuse(HDR "metadata: {name: p}\nspec:\n  nodeSelector:\n",
		    "mem.yaml:5: spec.nodeSelector: expected a label selector");
	must_refuse(HDR "metadata: {name: p}\nspec:\n  nodeSelector: {}\n  labels: []\n",
		    "mem.yaml:6: spec.labels: rule labels are not supported");
	must_refuse(HDR "metadata: {name: p}\nspec:\n  nodeSelector: {}\n"
			"  enableDefaultDeny: {ingress: maybe}\n",
		    "mem.yaml:6: spec.enableDefaultDeny.ingress: expected true or false");
	must_refuse("kind: Pod\n", "mem.yaml:1: kind: 'Pod' is not supported");
	must_refuse(HDR "metadata: {name: p}\nspec:\n  endpointSelector: {}\n"
			"  egress:\n  - toPorts:\n    - ports: []\n",
		    "mem.yaml:8: spec.egress[0].toPorts[0].ports: needs at least one port");
	must_refuse(HDR "metadata: {name: p}\nspec:\n  endpointSelector: {}\n"
			"  egress:\n  - toPorts:\n    - ports:\n      - endPort: 90\n",
		    "spec.egress[0].toPorts[0].ports[0].endPort: endPort needs a non-zero port");
	must_refuse(HDR "metadata: {name: p}\nspec:\n  endpointSelector:\n"
			"    matchExpressions: [{key: a, operator: Exists, values: [x]}]\n",
		    "operator Exists takes no values");
	must_refuse(HDR "metadata: {name: p}\nspec:\n  nodeSelector: {}\n"
			"  ingress:\n  - fromEndpoints: [{matchLabels: {'reserved:health': ''}}]\n",
		    "reserved label 'reserved:health' is not supported");
	must_refuse("a: [unclosed\n", "mem.yaml:2: YAML syntax error");
}
END_TEST

/* --- semantics --------------------------------------------------------------------- */

static const char doc_policy[] = "apiVersion: \"cilium.io/v2\"\n"
				 "kind: CiliumClusterwideNetworkPolicy\n"
				 "metadata:\n"
				 "  name: \"allow-control-plane-connectivity\"\n"
				 "spec:\n"
				 "  ingress:\n"
				 "  - fromEntities:\n"
				 "    - kube-apiserver\n"
				 "  nodeSelector:\n"
				 "    matchLabels:\n"
				 "      node-role.kubernetes.io/control-plane: \"\"\n";

START_TEST(test_doc_policy_semantics)
{
	struct world w;

	build(&w, doc_policy, "node-role.kubernetes.io/control-plane=", false);
	/* The control-plane node accepts the apiserver, on any port and protocol... */
	ck_assert_str_eq(verdict(&w, IN, NODE1, APISERVER, TCP, 6443), "allow");
	ck_assert_str_eq(verdict(&w, IN, NODE1, APISERVER, UDP, 53), "allow");
	ck_assert_str_eq(verdict(&w, IN, NODE1, APISERVER, ICMP, 0), "allow");
	ck_assert_str_eq(verdict(&w, IN, NODE1_EXT, APISERVER, TCP, 22), "allow");
	/* ...and nothing else once selected: SSH from anywhere is cut. */
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 22), "deny");
	ck_assert_str_eq(verdict(&w, IN, NODE1, NODE2, TCP, 10250), "deny");
	ck_assert_str_eq(verdict(&w, IN, NODE1, WEB2, TCP, 80), "deny");
	ck_assert_uint_eq(rule_of(&w, IN, NODE1, WORLD_IP, TCP, 22), POL_RULE_ID(1, 0, 0));
	ck_assert_uint_eq(rule_of(&w, IN, NODE1, APISERVER, TCP, 6443),
			  POL_RULE_ID(1, POL_SEC_INGRESS, 1));
	/* Egress of the node and the workloads stay open. */
	ck_assert_str_eq(verdict(&w, OUT, NODE1, WORLD_IP, TCP, 443), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 8080), "allow");
	unbuild(&w);

	/* On a worker the policy selects nothing. */
	build(&w, doc_policy, "node-role.kubernetes.io/worker=", false);
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 22), "allow");
	unbuild(&w);

	/* policyAuditMode: what would be dropped passes, as AUDIT. */
	build(&w, doc_policy, "node-role.kubernetes.io/control-plane=", true);
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 22), "audit");
	ck_assert_str_eq(verdict(&w, IN, NODE1, APISERVER, TCP, 6443), "allow");
	unbuild(&w);
}
END_TEST

START_TEST(test_entities)
{
	struct world w;

	build(&w,
	      HDR "metadata: {name: e}\nspec:\n  endpointSelector: {matchLabels: {app: db}}\n"
		  "  ingress:\n"
		  "  - fromEntities: [host]\n    toPorts: [{ports: [{port: '1'}]}]\n"
		  "  - fromEntities: [remote-node]\n    toPorts: [{ports: [{port: '2'}]}]\n"
		  "  - fromEntities: [kube-apiserver]\n    toPorts: [{ports: [{port: '3'}]}]\n"
		  "  - fromEntities: [cluster]\n    toPorts: [{ports: [{port: '4'}]}]\n"
		  "  - fromEntities: [world]\n    toPorts: [{ports: [{port: '5'}]}]\n"
		  "  - fromEntities: [all]\n    toPorts: [{ports: [{port: '6'}]}]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, DB1, NODE1, TCP, 1), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, NODE1_EXT, TCP, 1), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, NODE2, TCP, 1), "deny");
	ck_assert_str_eq(verdict(&w, IN, DB1, NODE2, TCP, 2), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, NODE1, TCP, 2), "deny");
	ck_assert_str_eq(verdict(&w, IN, DB1, APISERVER, TCP, 3), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, NODE2, TCP, 3), "deny");
	/* cluster: nodes, workloads, unmanaged pod addresses; not the outside apiserver. */
	ck_assert_str_eq(verdict(&w, IN, DB1, NODE2, TCP, 4), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, WEB2, TCP, 4), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, UNMANAGED_POD, TCP, 4), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, WORLD_IP, TCP, 4), "deny");
	ck_assert_str_eq(verdict(&w, IN, DB1, APISERVER, TCP, 4), "deny");
	/* world: outside the cluster, the outside apiserver included. */
	ck_assert_str_eq(verdict(&w, IN, DB1, WORLD_IP, TCP, 5), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, APISERVER, TCP, 5), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, NODE2, TCP, 5), "deny");
	ck_assert_str_eq(verdict(&w, IN, DB1, UNMANAGED_POD, TCP, 5), "deny");
	ck_assert_str_eq(verdict(&w, IN, DB1, "8.8.8.8", TCP, 6), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, WEB1, TCP, 6), "allow");
	/* No rule for this port: default deny. */
	ck_assert_str_eq(verdict(&w, IN, DB1, WEB1, TCP, 7), "deny");
	/* Workloads the selector does not pick stay open. */
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 7), "allow");
	unbuild(&w);
}
END_TEST

START_TEST(test_deny_wins)
{
	struct world w;

	/* Allow everything, deny TCP 22 from world: 22 denied, the rest allowed. */
	build(&w,
	      HDR "metadata: {name: d}\nspec:\n  nodeSelector: {}\n"
		  "  ingress:\n  - fromEntities: [all]\n"
		  "  ingressDeny:\n  - fromEntities: [world]\n"
		  "    toPorts: [{ports: [{port: '22', protocol: TCP}]}]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 22), "deny");
	ck_assert_uint_eq(rule_of(&w, IN, NODE1, WORLD_IP, TCP, 22),
			  POL_RULE_ID(1, POL_SEC_INGRESS_DENY, 1));
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, UDP, 22), "allow");
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 80), "allow");
	ck_assert_str_eq(verdict(&w, IN, NODE1, NODE2, TCP, 22), "allow");
	unbuild(&w);

	/* Deny L3 from a CIDR, allow one port from everywhere: the deny still wins. */
	build(&w,
	      HDR "metadata: {name: d}\nspec:\n  nodeSelector: {}\n"
		  "  ingress:\n  - toPorts: [{ports: [{port: '443'}]}]\n"
		  "  ingressDeny:\n  - fromCIDR: [203.0.113.0/24]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 443), "deny");
	ck_assert_str_eq(verdict(&w, IN, NODE1, "198.51.100.1", TCP, 443), "allow");
	ck_assert_str_eq(verdict(&w, IN, NODE1, "198.51.100.1", TCP, 444), "deny");
	unbuild(&w);

	/* A deny-only policy still puts the subject into default deny (Cilium). */
	build(&w,
	      HDR "metadata: {name: d}\nspec:\n  nodeSelector: {}\n"
		  "  ingressDeny:\n  - fromCIDR: [203.0.113.0/24]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, NODE1, "198.51.100.1", TCP, 443), "deny");
	unbuild(&w);
}
END_TEST

START_TEST(test_cidr_except)
{
	struct world w;

	build(&w,
	      HDR "metadata: {name: c}\nspec:\n  endpointSelector: {matchLabels: {app: client}}\n"
		  "  egress:\n  - toCIDRSet:\n    - cidr: 10.0.0.0/8\n"
		  "      except: [10.1.0.0/16, 10.244.0.0/16]\n"
		  "  - toCIDR: [203.0.113.9/32]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, "10.2.3.4", TCP, 80), "allow");
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, "10.1.2.3", TCP, 80), "deny");
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, "10.1.255.255", UDP, 53), "deny");
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, "10.2.0.0", ICMP, 0), "allow");
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, "11.0.0.1", TCP, 80), "deny");
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, WORLD_IP, TCP, 80), "allow");
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, "203.0.113.10", TCP, 80), "deny");
	/* CIDRs never select nodes or workloads, even inside the range (Cilium). */
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, NODE2, TCP, 80), "deny");
	ck_assert_str_eq(verdict(&w, OUT, CLIENT1, APISERVER, TCP, 80), "allow");
	unbuild(&w);
}
END_TEST

START_TEST(test_ports_and_ranges)
{
	struct world w;

	build(&w,
	      HDR "metadata: {name: p}\nspec:\n  endpointSelector: {matchLabels: {app: web}}\n"
		  "  ingress:\n  - fromEntities: [world]\n"
		  "    toPorts:\n    - ports:\n"
		  "      - {port: '8000', endPort: 8100, protocol: TCP}\n"
		  "      - {port: '53', protocol: UDP}\n"
		  "      - {port: '30000', endPort: 65535}\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 7999), "deny");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 8000), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 8064), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 8100), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 8101), "deny");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, UDP, 8050), "deny");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, UDP, 53), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 53), "deny");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 29999), "deny");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, UDP, 30000), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 65535), "allow");
	/* Ports say nothing about ICMP: not allowed. */
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, ICMP, 0), "deny");
	ck_assert_str_eq(verdict(&w, IN, WEB1, NODE2, TCP, 8000), "deny");
	/* Two workloads with the same labels share one rule set. */
	ck_assert_uint_eq(w.c.nrsets, 1);
	unbuild(&w);
}
END_TEST

START_TEST(test_endpoint_selectors)
{
	struct world w;

	build(&w,
	      HDR "metadata: {name: s}\nspec:\n"
		  "  endpointSelector:\n    matchExpressions:\n"
		  "    - {key: app, operator: In, values: [web, db]}\n"
		  "  ingress:\n  - fromEndpoints:\n    - matchLabels: {app: client}\n"
		  "    - matchExpressions: [{key: app, operator: NotIn, values: [client, web]}]\n"
		  "      matchLabels: {'k8s:app': other}\n"
		  "  - fromEndpoints: [{matchLabels: {'reserved:remote-node': ''}}]\n"
		  "    toPorts: [{ports: [{port: '10250'}]}]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, WEB1, CLIENT1, TCP, 80), "allow");
	ck_assert_str_eq(verdict(&w, IN, DB1, CLIENT1, TCP, 80), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, OTHER2, TCP, 80), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, WEB2, TCP, 80), "deny");
	/* Label selectors pick workloads, never nodes or the world... */
	ck_assert_str_eq(verdict(&w, IN, WEB1, WORLD_IP, TCP, 80), "deny");
	ck_assert_str_eq(verdict(&w, IN, WEB1, NODE2, TCP, 80), "deny");
	/* ...unless they name a reserved label. */
	ck_assert_str_eq(verdict(&w, IN, WEB1, NODE2, TCP, 10250), "allow");
	ck_assert_str_eq(verdict(&w, IN, WEB1, NODE1, TCP, 10250), "deny");
	/* client-1 is not selected. */
	ck_assert_str_eq(verdict(&w, IN, CLIENT1, WORLD_IP, TCP, 80), "allow");
	/* Workloads of other nodes are their nodes' business. */
	ck_assert_uint_eq(pol_eval(&w.c, IN, ip(WEB2), ip(WORLD_IP), TCP, port_be(80)).action,
			  POL_ACT_ALLOW);
	unbuild(&w);
}
END_TEST

START_TEST(test_per_policy_audit)
{
	struct world w;

	/* One enforcing policy and one audited: the audited one's deny only reports. */
	build(&w,
	      HDR "metadata: {name: enforce}\nspec:\n  nodeSelector: {}\n"
		  "  ingress:\n  - fromEntities: [all]\n    toPorts: [{ports: [{port: '22'}]}]\n"
		  "---\n" HDR "metadata:\n  name: audit\n"
		  "  annotations: {policy.bpflb.io/audit-mode: 'true'}\n"
		  "spec:\n  nodeSelector: {}\n"
		  "  ingressDeny:\n  - fromEntities: [world]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 22), "audit");
	ck_assert_uint_eq(rule_of(&w, IN, NODE1, WORLD_IP, TCP, 22),
			  POL_RULE_ID(2, POL_SEC_INGRESS_DENY, 1));
	ck_assert_str_eq(verdict(&w, IN, NODE1, NODE2, TCP, 22), "allow");
	/* Default deny comes from an enforcing policy: enforced. */
	ck_assert_str_eq(verdict(&w, IN, NODE1, NODE2, TCP, 80), "deny");
	ck_assert_uint_eq(rule_of(&w, IN, NODE1, NODE2, TCP, 80), POL_RULE_ID(1, 0, 0));
	unbuild(&w);

	/* Only an audited policy selects: its default deny is audited too. */
	build(&w,
	      HDR "metadata:\n  name: audit\n"
		  "  annotations: {policy.bpflb.io/audit-mode: 'true'}\n"
		  "spec:\n  nodeSelector: {}\n  ingress:\n  - fromEntities: [cluster]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 22), "audit");
	ck_assert_str_eq(verdict(&w, IN, NODE1, NODE2, TCP, 22), "allow");
	unbuild(&w);
}
END_TEST

START_TEST(test_default_deny_switches)
{
	struct world w;

	/* enableDefaultDeny false: rules add allows and denies, nothing else changes. */
	build(&w,
	      HDR
	      "metadata: {name: nodd}\nspec:\n  nodeSelector: {}\n"
	      "  enableDefaultDeny: {ingress: false}\n"
	      "  ingressDeny:\n  - fromEntities: [world]\n    toPorts: [{ports: [{port: '23'}]}]\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 23), "deny");
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 22), "allow");
	unbuild(&w);

	/* ingress: [{}] denies all ingress; egress untouched. */
	build(&w, HDR "metadata: {name: dd}\nspec:\n  endpointSelector: {}\n  ingress:\n  - {}\n",
	      "", false);
	ck_assert_str_eq(verdict(&w, IN, WEB1, CLIENT1, TCP, 80), "deny");
	ck_assert_str_eq(verdict(&w, IN, CLIENT1, WEB1, TCP, 80), "deny");
	ck_assert_str_eq(verdict(&w, OUT, WEB1, WORLD_IP, TCP, 80), "allow");
	/* Not the host: an endpointSelector never selects the node. */
	ck_assert_str_eq(verdict(&w, IN, NODE1, WORLD_IP, TCP, 22), "allow");
	unbuild(&w);

	/* ingress: [] selects nothing: no default deny. */
	build(&w, HDR "metadata: {name: empty}\nspec:\n  endpointSelector: {}\n  ingress: []\n", "",
	      false);
	ck_assert_str_eq(verdict(&w, IN, WEB1, CLIENT1, TCP, 80), "allow");
	unbuild(&w);
}
END_TEST

START_TEST(test_identities)
{
	struct world w;
	const struct pol_ident *id;

	build(&w,
	      HDR "metadata: {name: i}\nspec:\n  nodeSelector: {}\n"
		  "  ingress:\n  - fromCIDR: [10.0.0.0/8, 10.99.0.0/24]\n",
	      "", false);
	id = pol_lookup_ident(&w.c, ip(NODE1));
	ck_assert_uint_eq(id->flags, POL_ENT_HOST | POL_ENT_CLUSTER);
	id = pol_lookup_ident(&w.c, ip(NODE2));
	ck_assert_uint_eq(id->flags, POL_ENT_REMOTE_NODE | POL_ENT_CLUSTER);
	id = pol_lookup_ident(&w.c, ip(APISERVER));
	ck_assert_uint_eq(id->flags, POL_ENT_APISERVER | POL_ENT_WORLD);
	id = pol_lookup_ident(&w.c, ip(WEB2));
	ck_assert_uint_eq(id->flags, POL_ENT_ENDPOINT | POL_ENT_CLUSTER);
	ck_assert_str_eq(id->ep->name, "web-2");
	id = pol_lookup_ident(&w.c, ip(UNMANAGED_POD));
	ck_assert_uint_eq(id->flags, POL_ENT_CLUSTER);
	ck_assert_uint_eq(id->pfx.plen, 16);
	id = pol_lookup_ident(&w.c, ip("10.99.0.50"));
	ck_assert_uint_eq(id->flags, POL_ENT_WORLD);
	ck_assert_uint_eq(id->pfx.plen, 24);
	ck_assert_int_ge(id->parent, 0);
	ck_assert_uint_eq(w.c.idents[id->parent].pfx.plen, 8);
	id = pol_lookup_ident(&w.c, ip("1.2.3.4"));
	ck_assert_uint_eq(id->pfx.plen, 0);
	/* Subjects: the host's two addresses and node1's four workloads. */
	ck_assert_uint_eq(w.c.nsubjects, 6);
	unbuild(&w);
}
END_TEST

/* The good corpus compiles against the scene (no map limit reached). */
START_TEST(test_corpus_compiles)
{
	struct pol_inventory inv;
	struct pol_compiled c;
	struct pol_set set = {0};

	ck_assert_msg(!pol_load_dir(POLICY_CORPUS_DIR "/good", &set, msg), "%s", msg);
	scene(&inv, "node-role.kubernetes.io/control-plane= zone=eu-1");
	ck_assert_msg(!pol_compile(&set, &inv, &c, msg), "%s", msg);
	ck_assert_uint_gt(c.nrules, 10);
	pol_compiled_free(&c);
	pol_inventory_free(&inv);
	pol_set_free(&set);
}
END_TEST

/* Write text to a new file in a temporary directory; the path (free it). */
static char *temp_file(const char *name, const char *text, size_t len)
{
	char dir[] = "/tmp/bpflb-polXXXXXX", *path;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_gt(asprintf(&path, "%s/%s", dir, name), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	fclose(f);
	return path;
}

static void temp_remove(char *path)
{
	unlink(path);
	*strrchr(path, '/') = 0;
	rmdir(path);
	free(path);
}

/* A policy whose description nests depth lists: "[[[...]]]". */
static char *nested(size_t depth, size_t *len)
{
	static const char head[] = HDR "metadata:\n  name: deep\nspec:\n  description: ";
	char *s = malloc(sizeof(head) + 2 * depth + 1);

	memcpy(s, head, sizeof(head) - 1);
	memset(s + sizeof(head) - 1, '[', depth);
	memset(s + sizeof(head) - 1 + depth, ']', depth);
	strcpy(s + sizeof(head) - 1 + 2 * depth, "\n");
	*len = strlen(s);
	return s;
}

/*
 * Issue 13 item 8: 70k nested lists kept libyaml's scanner busy for 14 s (it is
 * quadratic in the depth); now the event stream stops at POL_DEPTH_MAX with the
 * file and line, a file over POL_FILE_MAX is refused before it is parsed, and
 * a file at the depth limit still reaches the schema walk.
 */
START_TEST(test_limits)
{
	struct pol_set set = {0};
	size_t len;
	char *text, *path, want[256];

	text = nested(70000, &len);
	path = temp_file("deep.yaml", text, len);
	ck_assert_int_ne(pol_load_file(path, &set, msg), 0);
	snprintf(want, sizeof(want), "%s:6: nested deeper than %u lists and mappings", path,
		 POL_DEPTH_MAX);
	ck_assert_msg(strstr(msg, want), "got: %s", msg);
	ck_assert_uint_eq(set.n, 0);
	temp_remove(path);
	free(text);

	/* At the limit: the root mapping, spec and 30 lists. */
	text = nested(POL_DEPTH_MAX - 2, &len);
	ck_assert_int_ne(pol_load_buf("at.yaml", text, len, &set, msg), 0);
	ck_assert_msg(strstr(msg, "at.yaml:6: spec.description: expected a string, found a list"),
		      "got: %s", msg);
	pol_set_free(&set);
	free(text);
	text = nested(POL_DEPTH_MAX - 1, &len);
	ck_assert_int_ne(pol_load_buf("over.yaml", text, len, &set, msg), 0);
	ck_assert_msg(strstr(msg, "over.yaml:6: nested deeper than"), "got: %s", msg);
	ck_assert_uint_eq(set.n, 0);
	free(text);

	/* One byte over the size limit: a valid policy padded with a comment. */
	text = malloc(POL_FILE_MAX + 1);
	len = snprintf(text, POL_FILE_MAX,
		       HDR "metadata:\n  name: big\nspec:\n  nodeSelector: {}\n#");
	memset(text + len, 'x', POL_FILE_MAX + 1 - len);
	path = temp_file("big.yaml", text, POL_FILE_MAX);
	ck_assert_msg(!pol_load_file(path, &set, msg), "at the size limit: %s", msg);
	ck_assert_uint_eq(set.n, 1);
	pol_set_free(&set);
	temp_remove(path);
	path = temp_file("big.yaml", text, POL_FILE_MAX + 1);
	ck_assert_int_eq(pol_load_file(path, &set, msg), -EFBIG);
	snprintf(want, sizeof(want), "%s: larger than %u bytes", path, POL_FILE_MAX);
	ck_assert_msg(strstr(msg, want), "got: %s", msg);
	ck_assert_uint_eq(set.n, 0);
	temp_remove(path);
	free(text);
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy_model");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_corpus_good);
	tcase_add_test(tc, test_corpus_bad);
	tcase_add_test(tc, test_doc_policy_parsed);
	tcase_add_test(tc, test_parse_details);
	tcase_add_test(tc, test_parse_errors_inline);
	tcase_add_test(tc, test_limits);
	suite_add_tcase(s, tc);
	tc = tcase_create("semantics");
	tcase_add_test(tc, test_doc_policy_semantics);
	tcase_add_test(tc, test_entities);
	tcase_add_test(tc, test_deny_wins);
	tcase_add_test(tc, test_cidr_except);
	tcase_add_test(tc, test_ports_and_ranges);
	tcase_add_test(tc, test_endpoint_selectors);
	tcase_add_test(tc, test_per_policy_audit);
	tcase_add_test(tc, test_default_deny_switches);
	tcase_add_test(tc, test_identities);
	tcase_add_test(tc, test_corpus_compiles);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
