/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The inventory both policy tests use, and loading + compiling YAML text
 * against it.  Include after <check.h> and "policy_model.h"; the includer
 * defines `static char msg[POL_ERR_MAX]`.
 *
 * The scene: node1 (this node) 10.99.0.1 + 192.0.2.1, node2 and node3;
 * workloads on node1 and node2; the kube-apiserver outside the cluster at
 * 10.99.0.100; pods in 10.244.0.0/16.
 */
#ifndef POLICY_SCENE_H
#define POLICY_SCENE_H

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t ip(const char *s)
{
	return inet_addr(s);
}

static inline uint16_t port_be(uint16_t p)
{
	return htons(p);
}

static inline void must_load(const char *yaml, struct pol_set *set)
{
	int ret = pol_load_buf("mem.yaml", yaml, strlen(yaml), set, msg);

	ck_assert_msg(!ret, "refused: %s\n%s", msg, yaml);
	for (size_t i = 0; i < set->n; i++)
		set->pols[i].id = i + 1;
}

static inline void must_refuse(const char *yaml, const char *want)
{
	struct pol_set set = {0};
	int ret = pol_load_buf("mem.yaml", yaml, strlen(yaml), &set, msg);

	ck_assert_msg(ret == -EINVAL, "accepted (%d):\n%s", ret, yaml);
	ck_assert_msg(strstr(msg, want), "message\n  %s\nlacks\n  %s", msg, want);
	pol_set_free(&set);
}

static inline void labels(struct pol_label **out, size_t *n, const char *spec)
{
	char *dup = strdup(spec), *save = NULL, *w;

	for (w = strtok_r(dup, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(w, '=');

		*out = reallocarray(*out, *n + 1, sizeof(**out));
		*eq = 0;
		(*out)[*n].key = strdup(w);
		(*out)[*n].value = strdup(eq + 1);
		(*n)++;
	}
	free(dup);
}

static inline void add_addr(uint32_t **v, size_t *n, const char *a)
{
	*v = reallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = ip(a);
}

static inline void add_node(struct pol_inventory *inv, const char *name, const char *addr,
			    const char *lbl)
{
	struct pol_node *n;

	inv->nodes = reallocarray(inv->nodes, inv->nnodes + 1, sizeof(*n));
	n = &inv->nodes[inv->nnodes++];
	memset(n, 0, sizeof(*n));
	n->name = strdup(name);
	add_addr(&n->addrs, &n->naddrs, addr);
	labels(&n->labels, &n->nlabels, lbl);
}

static inline void add_ep(struct pol_inventory *inv, const char *name, const char *addr,
			  const char *node, const char *lbl)
{
	struct pol_endpoint *e;

	inv->eps = reallocarray(inv->eps, inv->neps + 1, sizeof(*e));
	e = &inv->eps[inv->neps++];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	e->addr = ip(addr);
	e->node = strdup(node);
	labels(&e->labels, &e->nlabels, lbl);
}

#define NODE1	      "10.99.0.1"
#define NODE1_EXT     "192.0.2.1"
#define NODE2	      "10.99.0.2"
#define APISERVER     "10.99.0.100"
#define WORLD_IP      "203.0.113.9"
#define CLIENT1	      "10.244.1.2"
#define WEB1	      "10.244.1.3"
#define WEB1B	      "10.244.1.4"
#define DB1	      "10.244.1.5"
#define WEB2	      "10.244.2.3"
#define OTHER2	      "10.244.2.4"
#define UNMANAGED_POD "10.244.3.77"

static inline void scene(struct pol_inventory *inv, const char *self_labels)
{
	memset(inv, 0, sizeof(*inv));
	inv->self.name = strdup("node1");
	add_addr(&inv->self.addrs, &inv->self.naddrs, NODE1);
	add_addr(&inv->self.addrs, &inv->self.naddrs, NODE1_EXT);
	labels(&inv->self.labels, &inv->self.nlabels, self_labels);
	add_node(inv, "node2", NODE2, "zone=eu-2");
	add_node(inv, "node3", "10.99.0.3", "zone=eu-3");
	add_ep(inv, "client-1", CLIENT1, "node1", "app=client io.kubernetes.pod.namespace=shop");
	add_ep(inv, "web-1", WEB1, "node1", "app=web tier=frontend");
	add_ep(inv, "web-1b", WEB1B, "node1", "app=web tier=frontend");
	add_ep(inv, "db-1", DB1, "node1", "app=db");
	add_ep(inv, "web-2", WEB2, "node2", "app=web tier=frontend");
	add_ep(inv, "other-2", OTHER2, "node2", "app=other");
	add_addr(&inv->apiserver, &inv->napiserver, APISERVER);
	inv->cluster_cidrs = calloc(1, sizeof(*inv->cluster_cidrs));
	inv->cluster_cidrs[0].addr = ip("10.244.0.0");
	inv->cluster_cidrs[0].plen = 16;
	inv->ncluster_cidrs = 1;
}

struct world {
	struct pol_set set;
	struct pol_inventory inv;
	struct pol_compiled c;
};

static inline void build(struct world *w, const char *yaml, const char *self_labels, bool audit)
{
	int ret;

	memset(w, 0, sizeof(*w));
	must_load(yaml, &w->set);
	scene(&w->inv, self_labels);
	w->inv.audit = audit;
	ret = pol_compile(&w->set, &w->inv, &w->c, msg);
	ck_assert_msg(!ret, "compile: %s", msg);
}

static inline void unbuild(struct world *w)
{
	pol_compiled_free(&w->c);
	pol_set_free(&w->set);
	pol_inventory_free(&w->inv);
}

#endif
