// SPDX-License-Identifier: GPL-2.0-only
/*
 * Egress gateway, the userspace side (a feature plugin: features = egress).
 *
 * Egress policies ([egress-policy NAME]) select workloads (endpoint labels or
 * source CIDRs) and destinations (CIDRs minus exclusions, never the cluster),
 * and send that traffic out of a gateway node with an egress IP as its source.
 * The datapath is bpf/egress.bpf.c: the workload's node tunnels the packets to
 * the gateway (IP-in-IP built in BPF), the gateway translates them to the
 * egress IP and back.  This side decides, on every apply and every tick:
 *
 *   - what the selection tries hold (egress_model.c),
 *   - which node is each policy's gateway now:
 *       basic  the first gateway node in priority order; the egress IP is
 *              configured there by the operator, and the gateway itself checks
 *              it (netlink): while it is missing the policy is unhealthy and
 *              its traffic is dropped with BPFLB_DROP_NO_GATEWAY;
 *       vip    the holder of the egress IP's lease (egress_lease.h): candidates
 *              compete for it in priority order, the holder adds the address to
 *              its interface, announces it with gratuitous ARP and renews the
 *              lease every tick; a stopping daemon hands it over at once, a
 *              dead one loses it when the lease expires,
 *   - the neighbour entries of the gateway nodes (kept resolved for
 *     bpf_fib_lookup), and the conntrack GC of the gateway's translations.
 *
 * Policies whose gateway is unknown or unhealthy get gateway 0 in the map:
 * their traffic is dropped, never sent with the workload's own address.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>
#include <linux/bpf.h>

#include <bpflb/lb.h>
#include <bpflb/plugin.h>

#include "egress.h"
#include "egress_lease.h"
#include "egress_model.h"
#include "egress_nl.h"
#include "egress_bpf.skel.h"

#define EGRESS_NAME_MAX	      64
#define EGRESS_MAX_GW	      32
#define EGRESS_GARP_REPEAT    3 /* announcements of a newly held VIP: now and next ticks */
#define EGRESS_GC_INTERVAL_NS (10ull * 1000000000ull)
#define EGRESS_NS	      1000000000ull

/* --- configuration schema --------------------------------------------------- */

static const char *const egress_mode_choices[] = {"basic", "vip", NULL};

static const struct bpflb_cfg_key egress_keys[] = {
    {.name = "lease_dir",
     .type = BPFLB_CFG_PATH,
     .help = "directory where the gateway candidates keep the leases of virtual IPs "
	     "(vip mode); shared by the daemons of all candidate nodes"},
    {.name = "lease_duration",
     .type = BPFLB_CFG_DURATION,
     .def = "15",
     .min = 2,
     .max = 3600,
     .help = "a virtual IP whose holder did not renew its lease for this long moves "
	     "to another candidate; must exceed twice [daemon] tick_interval"},
    {.name = "cluster_cidrs",
     .type = BPFLB_CFG_CIDR_LIST,
     .def = "",
     .help = "destinations never steered (pod and service CIDRs); node addresses are "
	     "always excluded"},
    {.name = "port_min",
     .type = BPFLB_CFG_U32,
     .def = "1024",
     .min = 1,
     .max = 65535,
     .help = "lowest source port on an egress IP"},
    {.name = "port_max",
     .type = BPFLB_CFG_U32,
     .def = "65535",
     .min = 1,
     .max = 65535,
     .help = "highest source port on an egress IP"},
    {0},
};

static const struct bpflb_cfg_key policy_keys[] = {
    {.name = "mode",
     .type = BPFLB_CFG_ENUM,
     .def = "basic",
     .choices = egress_mode_choices,
     .help = "basic: the egress IP is configured on the gateway already; vip: the "
	     "daemon puts it on one candidate gateway and moves it on failure"},
    {.name = "egress_ip",
     .type = BPFLB_CFG_IPV4,
     .flags = BPFLB_CFG_F_REQUIRED,
     .help = "source address the selected traffic leaves the cluster with"},
    {.name = "destination_cidrs",
     .type = BPFLB_CFG_CIDR_LIST,
     .flags = BPFLB_CFG_F_REQUIRED,
     .help = "destinations the policy applies to, e.g. 0.0.0.0/0"},
    {.name = "excluded_cidrs",
     .type = BPFLB_CFG_CIDR_LIST,
     .def = "",
     .help = "destinations within destination_cidrs that go out directly"},
    {.name = "endpoint_selector",
     .type = BPFLB_CFG_LIST,
     .def = "",
     .help = "key=value labels an [endpoint] must all carry to be selected"},
    {.name = "source_cidrs",
     .type = BPFLB_CFG_CIDR_LIST,
     .def = "",
     .help = "workload addresses selected besides those of endpoint_selector"},
    {.name = "gateway_nodes",
     .type = BPFLB_CFG_LIST,
     .def = "",
     .help = "gateway node names, in priority order"},
    {.name = "gateway_selector",
     .type = BPFLB_CFG_LIST,
     .def = "",
     .help = "key=value labels of the gateway nodes (priority: by node name)"},
    {.name = "interface",
     .type = BPFLB_CFG_STRING,
     .help = "interface of the gateway that carries the egress IP; default: the first "
	     "of [daemon] devices"},
    {0},
};

static int labels_word_check(const struct bpflb_cfg_section *sec, const char *key,
			     struct bpflb_err *err)
{
	char w[BPFLB_CFG_WORD_MAX];

	for (unsigned int i = 0; bpflb_cfg_word(bpflb_cfg_str(sec, key), i, w, sizeof(w)); i++)
		if (w[0] == '=' || !strchr(w, '='))
			return bpflb_cfg_error(err, sec, key, 0,
					       "\"%s\" is not a label; expected key=value words "
					       "such as app=web",
					       w);
	return 0;
}

static int egress_section_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	if (bpflb_cfg_u32(sec, "port_min") > bpflb_cfg_u32(sec, "port_max"))
		return bpflb_cfg_error(err, sec, "port_min", 0,
				       "is above port_max (%u); expected port_min <= port_max",
				       bpflb_cfg_u32(sec, "port_max"));
	return 0;
}

static int policy_section_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	bool by_labels = bpflb_cfg_str(sec, "endpoint_selector")[0];
	bool by_cidrs = bpflb_cfg_str(sec, "source_cidrs")[0];
	bool gw_names = bpflb_cfg_str(sec, "gateway_nodes")[0];
	bool gw_labels = bpflb_cfg_str(sec, "gateway_selector")[0];
	int ret;

	if (!by_labels && !by_cidrs)
		return bpflb_cfg_error(err, sec, NULL, 0,
				       "selects no workload; expected endpoint_selector or "
				       "source_cidrs (or both)");
	if (gw_names == gw_labels)
		return bpflb_cfg_error(err, sec, gw_names ? "gateway_selector" : NULL, 0,
				       "%s; expected exactly one of gateway_nodes and "
				       "gateway_selector",
				       gw_names ? "given together with gateway_nodes"
						: "names no gateway");
	if (bpflb_cfg_has(sec, "interface") &&
	    strlen(bpflb_cfg_str(sec, "interface")) >= IF_NAMESIZE)
		return bpflb_cfg_error(err, sec, "interface", 0,
				       "is not an interface name; expected at most %d characters",
				       IF_NAMESIZE - 1);
	ret = labels_word_check(sec, "endpoint_selector", err);
	if (!ret)
		ret = labels_word_check(sec, "gateway_selector", err);
	return ret;
}

static const struct bpflb_cfg_section_def egress_section = {
    .name = "egress",
    .keys = egress_keys,
    .check = egress_section_check,
};

static const struct bpflb_cfg_section_def policy_section = {
    .name = "egress-policy",
    .named = true,
    .keys = policy_keys,
    .check = policy_section_check,
};

static const struct bpflb_cfg_section_def *const egress_sections[] = {
    &egress_section,
    &policy_section,
    NULL,
};

/* --- the plan: a configuration resolved against the cluster ----------------------- */

enum egress_mode {
	EGRESS_MODE_BASIC = 0,
	EGRESS_MODE_VIP = 1,
};

struct egress_node {
	char name[EGRESS_NAME_MAX];
	uint32_t addr; /* network order */
};

struct egress_pol {
	char name[EGRESS_NAME_MAX];
	enum egress_mode mode;
	uint32_t egress_ip; /* network order */
	char iface[IF_NAMESIZE];
	int gw[EGRESS_MAX_GW]; /* indexes into plan.nodes, priority order */
	int ngw;
	size_t nendpoints; /* endpoints the selector matched */
	struct egress_model_policy m;
};

struct egress_plan {
	struct egress_node *nodes; /* nodes[0] is this node */
	size_t nnodes;
	struct egress_pol *pols;
	size_t npols;
	struct egress_prefix_set cluster; /* cluster_cidrs and every node address */
	char lease_dir[PATH_MAX];
	uint32_t lease_ms, tick_ms;
	uint16_t port_min, port_max;
	bool has_vip;
};

static void plan_free(struct egress_plan *p)
{
	for (size_t i = 0; i < p->npols; i++) {
		egress_prefix_set_free(&p->pols[i].m.src);
		egress_prefix_set_free(&p->pols[i].m.dst);
		egress_prefix_set_free(&p->pols[i].m.excl);
	}
	free(p->pols);
	free(p->nodes);
	egress_prefix_set_free(&p->cluster);
	memset(p, 0, sizeof(*p));
}

/* Does a labels list ("k=v k2=v2") carry every key=value word of selector? */
static bool labels_match(const char *labels, const char *selector)
{
	char want[BPFLB_CFG_WORD_MAX], have[BPFLB_CFG_WORD_MAX];

	for (unsigned int i = 0; bpflb_cfg_word(selector, i, want, sizeof(want)); i++) {
		bool found = false;

		for (unsigned int j = 0; labels && bpflb_cfg_word(labels, j, have, sizeof(have));
		     j++)
			if (!strcmp(want, have)) {
				found = true;
				break;
			}
		if (!found)
			return false;
	}
	return true;
}

static int add_cidrs(struct egress_prefix_set *set, const char *list)
{
	char w[BPFLB_CFG_WORD_MAX];
	uint32_t addr;
	uint8_t plen;
	int ret;

	for (unsigned int i = 0; bpflb_cfg_word(list, i, w, sizeof(w)); i++) {
		ret = bpflb_parse_cidr(w, &addr, &plen);
		if (ret && ret != -EDOM)
			return ret;
		ret = egress_prefix_add(set, ntohl(addr), plen);
		if (ret)
			return ret;
	}
	return 0;
}

/* Addresses of an [endpoint] section: plain addresses or CIDRs, one or more. */
static int add_endpoint(struct egress_prefix_set *set, const char *list)
{
	char w[BPFLB_CFG_WORD_MAX];
	uint32_t addr;
	uint8_t plen;

	for (unsigned int i = 0; list && bpflb_cfg_word(list, i, w, sizeof(w)); i++) {
		if (!bpflb_parse_ipv4(w, &addr))
			plen = 32;
		else if (bpflb_parse_cidr(w, &addr, &plen))
			continue;
		if (egress_prefix_add(set, ntohl(addr), plen))
			return -ENOMEM;
	}
	return 0;
}

static int node_find(const struct egress_plan *p, const char *name)
{
	for (size_t i = 0; i < p->nnodes; i++)
		if (!strcmp(p->nodes[i].name, name))
			return (int)i;
	return -1;
}

static int node_by_name_cmp(const void *a, const void *b, void *arg)
{
	const struct egress_plan *p = arg;

	return strcmp(p->nodes[*(const int *)a].name, p->nodes[*(const int *)b].name);
}

static int plan_nodes(const struct bpflb_config *cfg, struct egress_plan *p)
{
	const struct bpflb_cfg_section *sec;
	size_t n = 1;

	while (bpflb_cfg_section(cfg, "cluster-node", n - 1))
		n++;
	p->nodes = calloc(n, sizeof(*p->nodes));
	if (!p->nodes)
		return -ENOMEM;
	sec = bpflb_cfg_section(cfg, "node", 0);
	snprintf(p->nodes[0].name, sizeof(p->nodes[0].name), "%s", bpflb_cfg_str(sec, "name"));
	p->nodes[0].addr = bpflb_cfg_ipv4(sec, "address");
	for (size_t i = 1; i < n; i++) {
		sec = bpflb_cfg_section(cfg, "cluster-node", i - 1);
		snprintf(p->nodes[i].name, sizeof(p->nodes[i].name), "%s",
			 bpflb_cfg_section_name(sec));
		p->nodes[i].addr = bpflb_cfg_ipv4(sec, "address");
	}
	p->nnodes = n;
	return 0;
}

static const char *node_labels(const struct bpflb_config *cfg, size_t i)
{
	if (i == 0)
		return bpflb_cfg_str(bpflb_cfg_section(cfg, "node", 0), "labels");
	return bpflb_cfg_str(bpflb_cfg_section(cfg, "cluster-node", i - 1), "labels");
}

static int plan_gateways(const struct bpflb_config *cfg, const struct bpflb_cfg_section *sec,
			 struct egress_plan *p, struct egress_pol *pol, struct bpflb_err *err)
{
	const char *names = bpflb_cfg_str(sec, "gateway_nodes");
	const char *selector = bpflb_cfg_str(sec, "gateway_selector");
	char w[BPFLB_CFG_WORD_MAX];

	if (names[0]) {
		for (unsigned int i = 0; bpflb_cfg_word(names, i, w, sizeof(w)); i++) {
			int k = node_find(p, w);

			if (k < 0)
				return bpflb_cfg_error(err, sec, "gateway_nodes", 0,
						       "no node is named %s; expected this "
						       "node's [node] name or a [cluster-node] "
						       "section name",
						       w);
			for (int j = 0; j < pol->ngw; j++)
				if (pol->gw[j] == k)
					return bpflb_cfg_error(err, sec, "gateway_nodes", 0,
							       "%s is listed twice", w);
			if (pol->ngw == EGRESS_MAX_GW)
				return bpflb_cfg_error(err, sec, "gateway_nodes", 0,
						       "more than %d gateways", EGRESS_MAX_GW);
			pol->gw[pol->ngw++] = k;
		}
		return 0;
	}
	for (size_t k = 0; k < p->nnodes && pol->ngw < EGRESS_MAX_GW; k++)
		if (labels_match(node_labels(cfg, k), selector))
			pol->gw[pol->ngw++] = (int)k;
	qsort_r(pol->gw, pol->ngw, sizeof(pol->gw[0]), node_by_name_cmp, p);
	return 0;
}

static bool same_gateways(const struct egress_pol *a, const struct egress_pol *b)
{
	if (a->ngw != b->ngw)
		return false;
	for (int i = 0; i < a->ngw; i++)
		if (a->gw[i] != b->gw[i])
			return false;
	return true;
}

static const char *first_device(const struct bpflb_config *cfg, char *buf, size_t len)
{
	return bpflb_cfg_word(bpflb_cfg_str(bpflb_cfg_section(cfg, "daemon", 0), "devices"), 0, buf,
			      len);
}

static bool pol_has_gateway(const struct egress_pol *pol, int node)
{
	for (int i = 0; i < pol->ngw; i++)
		if (pol->gw[i] == node)
			return true;
	return false;
}

/*
 * Resolve cfg into a plan: nodes, policies with their workloads, destinations
 * and gateways.  Every cross-section rule is checked here, so validate() and
 * apply() share it.
 */
static int plan_build(const struct bpflb_config *cfg, struct egress_plan *p, struct bpflb_err *err)
{
	const struct bpflb_cfg_section *eg = bpflb_cfg_section(cfg, "egress", 0);
	const struct bpflb_cfg_section *ds = bpflb_cfg_section(cfg, "daemon", 0);
	const struct bpflb_cfg_section *sec;
	size_t n = 0;
	int ret;

	memset(p, 0, sizeof(*p));
	ret = plan_nodes(cfg, p);
	if (ret)
		goto nomem;
	while (bpflb_cfg_section(cfg, "egress-policy", n))
		n++;
	if (n > EGRESS_MAX_POLICIES) {
		ret = bpflb_cfg_error(err,
				      bpflb_cfg_section(cfg, "egress-policy", EGRESS_MAX_POLICIES),
				      NULL, 0, "more than %d egress policies; expected at most %d",
				      EGRESS_MAX_POLICIES, EGRESS_MAX_POLICIES);
		goto fail;
	}
	p->pols = calloc(n ? n : 1, sizeof(*p->pols));
	if (!p->pols)
		goto nomem;
	p->npols = n;
	p->lease_ms = bpflb_cfg_u32(eg, "lease_duration") * 1000u;
	p->tick_ms = bpflb_cfg_u32(ds, "tick_interval") * 1000u;
	p->port_min = bpflb_cfg_u32(eg, "port_min");
	p->port_max = bpflb_cfg_u32(eg, "port_max");
	if (bpflb_cfg_has(eg, "lease_dir"))
		snprintf(p->lease_dir, sizeof(p->lease_dir), "%s", bpflb_cfg_str(eg, "lease_dir"));

	/* The cluster itself is never steered: its CIDRs and every node's address. */
	if (add_cidrs(&p->cluster, bpflb_cfg_str(eg, "cluster_cidrs")))
		goto nomem;
	for (size_t i = 0; i < p->nnodes; i++)
		if (egress_prefix_add(&p->cluster, ntohl(p->nodes[i].addr), 32))
			goto nomem;

	for (size_t i = 0; i < n; i++) {
		struct egress_pol *pol = &p->pols[i];
		const char *sel;
		char dev[BPFLB_CFG_WORD_MAX];

		sec = bpflb_cfg_section(cfg, "egress-policy", i);
		snprintf(pol->name, sizeof(pol->name), "%s", bpflb_cfg_section_name(sec));
		pol->mode =
		    strcmp(bpflb_cfg_str(sec, "mode"), "vip") ? EGRESS_MODE_BASIC : EGRESS_MODE_VIP;
		pol->egress_ip = bpflb_cfg_ipv4(sec, "egress_ip");
		if (bpflb_cfg_has(sec, "interface"))
			snprintf(pol->iface, sizeof(pol->iface), "%.*s", IF_NAMESIZE - 1,
				 bpflb_cfg_str(sec, "interface"));
		else if (first_device(cfg, dev, sizeof(dev)))
			snprintf(pol->iface, sizeof(pol->iface), "%.*s", IF_NAMESIZE - 1, dev);

		if (add_cidrs(&pol->m.src, bpflb_cfg_str(sec, "source_cidrs")) ||
		    add_cidrs(&pol->m.dst, bpflb_cfg_str(sec, "destination_cidrs")) ||
		    add_cidrs(&pol->m.excl, bpflb_cfg_str(sec, "excluded_cidrs")))
			goto nomem;
		sel = bpflb_cfg_str(sec, "endpoint_selector");
		for (unsigned int e = 0; sel[0]; e++) {
			const struct bpflb_cfg_section *ep = bpflb_cfg_section(cfg, "endpoint", e);

			if (!ep)
				break;
			if (!labels_match(bpflb_cfg_str(ep, "labels"), sel))
				continue;
			if (add_endpoint(&pol->m.src, bpflb_cfg_str(ep, "address")))
				goto nomem;
			pol->nendpoints++;
		}

		ret = plan_gateways(cfg, sec, p, pol, err);
		if (ret)
			goto fail;

		if (pol->mode == EGRESS_MODE_VIP) {
			p->has_vip = true;
			if (!p->lease_dir[0]) {
				ret = bpflb_cfg_error(err, sec, "mode", 0,
						      "vip mode needs a lease store; expected "
						      "[egress] lease_dir = PATH (a directory "
						      "shared by the gateway candidates)");
				goto fail;
			}
			for (size_t k = 0; k < p->nnodes; k++)
				if (p->nodes[k].addr == pol->egress_ip) {
					ret = bpflb_cfg_error(err, sec, "egress_ip", 0,
							      "is the address of node %s; a "
							      "virtual IP must be an address of "
							      "its own (the daemon adds and "
							      "removes it)",
							      p->nodes[k].name);
					goto fail;
				}
		}
		/* The gateway must have the interface that carries the egress IP. */
		if (pol_has_gateway(pol, 0) && (!pol->iface[0] || !if_nametoindex(pol->iface))) {
			ret = bpflb_cfg_error(
			    err, sec, bpflb_cfg_has(sec, "interface") ? "interface" : NULL, 0,
			    "this node is a gateway of the policy but has no "
			    "interface %s; expected an existing interface",
			    pol->iface[0] ? pol->iface : "(none)");
			goto fail;
		}
		/* Policies sharing an egress IP share its gateway. */
		for (size_t j = 0; j < i; j++) {
			const struct egress_pol *o = &p->pols[j];

			if (o->egress_ip != pol->egress_ip)
				continue;
			if (o->mode != pol->mode || !same_gateways(o, pol) ||
			    strcmp(o->iface, pol->iface)) {
				ret = bpflb_cfg_error(err, sec, "egress_ip", 0,
						      "is also the egress IP of [egress-policy "
						      "%s] with another mode, interface or "
						      "gateway set; expected policies sharing "
						      "an egress IP to agree on them",
						      o->name);
				goto fail;
			}
		}
	}

	if (p->has_vip && p->lease_ms <= 2 * p->tick_ms) {
		ret = bpflb_cfg_error(err, eg, "lease_duration", 0,
				      "%u s is not more than twice [daemon] tick_interval (%u s); "
				      "the holder renews once a tick and must not lose its lease "
				      "to one late tick",
				      p->lease_ms / 1000, p->tick_ms / 1000);
		goto fail;
	}
	return 0;
nomem:
	ret = bpflb_err_set(err, "egress: out of memory resolving the policies");
	ret = -ENOMEM;
fail:
	plan_free(p);
	return ret;
}

/* --- runtime state ---------------------------------------------------------------- */

/* One per distinct egress IP of the plan. */
struct egress_ip_state {
	uint32_t ip; /* network order */
	enum egress_mode mode;
	const struct egress_pol *pol; /* first policy using it: gateways, interface */
	int rank;		      /* this node's place among the gateways, -1: not one */
	int ifindex;		      /* where the address lives here (gateways only) */
	char key[EGRESS_LEASE_KEY_MAX];
	bool active;	     /* basic: configured here; vip: lease held, address added */
	bool added;	     /* vip: we put the address on the interface */
	bool known;	     /* the health/holder below was logged at least once */
	int gw;		     /* node index of the gateway now, -1: none */
	uint64_t expires_ms; /* vip holder: our lease runs until */
	int garp_left;
};

struct egress_priv {
	struct egress_bpf *skel;
	struct egress_plan plan;
	bool have_plan;
	struct egress_ip_state *ips;
	size_t nips;
	struct egress_lease_store *store;
	char store_dir[PATH_MAX];
	struct egress_lpm_entry *src, *dst; /* what the tries hold now */
	size_t nsrc, ndst;
	uint64_t last_gc_ns;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * EGRESS_NS + (uint64_t)ts.tv_nsec;
}

static const char *ntoa(uint32_t a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static int map_fd(struct bpf_map *m)
{
	return bpf_map__fd(m);
}

/* --- virtual IPs -------------------------------------------------------------------- */

static void vip_drop_address(struct bpflb_plugin_ctx *ctx, struct egress_ip_state *s,
			     const char *why)
{
	char a[INET_ADDRSTRLEN];
	int ret;

	if (s->ifindex <= 0)
		return;
	if (egress_nl_addr_has(s->ifindex, s->ip) != 1) {
		s->added = false;
		return;
	}
	ret = egress_nl_addr_del(s->ifindex, s->ip, 32);
	if (ret)
		bpflb_log(ctx, LOG_ERR, "cannot remove virtual IP %s from %s: %s", ntoa(s->ip, a),
			  s->pol->iface, strerror(-ret));
	else
		bpflb_log(ctx, LOG_NOTICE, "virtual IP %s removed from %s (%s)", ntoa(s->ip, a),
			  s->pol->iface, why);
	s->added = false;
}

static void vip_lose(struct bpflb_plugin_ctx *ctx, struct egress_ip_state *s, const char *why)
{
	s->active = false;
	vip_drop_address(ctx, s, why);
}

static void vip_candidate(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv,
			  struct egress_ip_state *s)
{
	const char *me = priv->plan.nodes[0].name;
	struct egress_lease l;
	char a[INET_ADDRSTRLEN];
	uint64_t now = priv->store->now_ms();
	int ret;

	if (s->active) {
		ret = priv->store->ops->renew(priv->store, s->key, me, priv->plan.lease_ms, &l);
		if (!ret) {
			s->expires_ms = l.expires_ms;
		} else if (ret == -EBUSY) {
			bpflb_log(ctx, LOG_WARNING, "lost the lease of virtual IP %s to %s",
				  ntoa(s->ip, a), l.holder[0] ? l.holder : "nobody");
			vip_lose(ctx, s, "lease lost");
			return;
		} else if (now + priv->plan.tick_ms >= s->expires_ms) {
			/* Cannot renew before it runs out: let the address go first. */
			bpflb_log(ctx, LOG_ERR, "cannot renew the lease of virtual IP %s in %s: %s",
				  ntoa(s->ip, a), priv->store_dir, strerror(-ret));
			vip_lose(ctx, s, "lease store unreachable");
			return;
		}
		/* Someone removed the address under us: put it back. */
		if (egress_nl_addr_has(s->ifindex, s->ip) == 0) {
			ret = egress_nl_addr_add(s->ifindex, s->ip, 32);
			if (ret) {
				bpflb_log(ctx, LOG_ERR, "cannot add virtual IP %s to %s: %s",
					  ntoa(s->ip, a), s->pol->iface, strerror(-ret));
				priv->store->ops->release(priv->store, s->key, me);
				vip_lose(ctx, s, "cannot configure it");
				return;
			}
			s->garp_left = EGRESS_GARP_REPEAT;
		}
	} else {
		ret = priv->store->ops->acquire(priv->store, s->key, me, priv->plan.lease_ms,
						(uint32_t)s->rank * priv->plan.tick_ms, &l);
		if (ret) {
			if (ret != -EBUSY && ret != -EAGAIN)
				bpflb_log(ctx, LOG_ERR, "lease store %s: %s: %s", priv->store_dir,
					  s->key, strerror(-ret));
			/* Not ours: it must not be on our interface either. */
			vip_drop_address(ctx, s, "not held by this node");
			return;
		}
		ret = egress_nl_addr_add(s->ifindex, s->ip, 32);
		if (ret) {
			bpflb_log(ctx, LOG_ERR,
				  "cannot add virtual IP %s to %s: %s; giving up "
				  "the lease",
				  ntoa(s->ip, a), s->pol->iface, strerror(-ret));
			priv->store->ops->release(priv->store, s->key, me);
			return;
		}
		s->active = true;
		s->added = true;
		s->expires_ms = l.expires_ms;
		s->garp_left = EGRESS_GARP_REPEAT;
		bpflb_log(ctx, LOG_NOTICE, "holding virtual IP %s on %s (lease %s/%s.lease)",
			  ntoa(s->ip, a), s->pol->iface, priv->store_dir, s->key);
	}
	if (s->garp_left > 0) {
		s->garp_left--;
		ret = egress_garp(s->ifindex, s->ip);
		if (ret)
			bpflb_log(ctx, LOG_WARNING, "gratuitous ARP for %s on %s failed: %s",
				  ntoa(s->ip, a), s->pol->iface, strerror(-ret));
	}
}

/* Where the traffic of the egress IP goes now (node index, -1: nowhere). */
static int vip_holder(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv,
		      struct egress_ip_state *s)
{
	struct egress_lease l;
	char a[INET_ADDRSTRLEN];
	int k, ret;

	if (s->active)
		return 0;
	ret = priv->store->ops->get(priv->store, s->key, &l);
	if (ret) {
		bpflb_log(ctx, LOG_ERR, "cannot read lease %s in %s: %s", s->key, priv->store_dir,
			  strerror(-ret));
		return -1;
	}
	if (!egress_lease_held(&l, priv->store->now_ms()))
		return -1;
	k = node_find(&priv->plan, l.holder);
	if (k <= 0 || !pol_has_gateway(s->pol, k)) {
		/* Ourselves without the address, a node we do not know, or no candidate. */
		if (k != 0)
			bpflb_log(ctx, LOG_DEBUG,
				  "virtual IP %s is held by '%s', not one of its "
				  "gateway nodes here; its traffic is dropped",
				  ntoa(s->ip, a), l.holder);
		return -1;
	}
	return k;
}

/* --- basic mode ------------------------------------------------------------------------ */

static void basic_check(struct bpflb_plugin_ctx *ctx, struct egress_ip_state *s)
{
	char a[INET_ADDRSTRLEN];
	bool was = s->active;
	int has;

	s->gw = s->pol->ngw ? s->pol->gw[0] : -1;
	if (s->gw != 0) {
		s->active = false;
		return;
	}
	has = egress_nl_addr_has(s->ifindex, s->ip);
	s->active = has == 1;
	if (s->known && was == s->active)
		return;
	s->known = true;
	if (s->active)
		bpflb_log(ctx, LOG_NOTICE, "egress IP %s is configured on %s: gateway healthy",
			  ntoa(s->ip, a), s->pol->iface);
	else
		bpflb_log(ctx, LOG_ERR,
			  "egress IP %s is not configured on %s of this gateway "
			  "node%s%s: policy %s is unhealthy, its traffic is dropped "
			  "(no_gateway) until the address is added",
			  ntoa(s->ip, a), s->pol->iface, has < 0 ? ", netlink: " : "",
			  has < 0 ? strerror(-has) : "", s->pol->name);
}

/* --- maps ---------------------------------------------------------------------------- */

static struct egress_ip_state *ip_state(struct egress_priv *priv, uint32_t ip)
{
	for (size_t i = 0; i < priv->nips; i++)
		if (priv->ips[i].ip == ip)
			return &priv->ips[i];
	return NULL;
}

static void write_policies(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv)
{
	int fd = map_fd(priv->skel->maps.egress_policies);

	for (uint32_t i = 0; i < priv->plan.npols; i++) {
		const struct egress_pol *pol = &priv->plan.pols[i];
		struct egress_ip_state *s = ip_state(priv, pol->egress_ip);
		struct egress_policy_val v = {.egress_ip = pol->egress_ip, .id = i + 1};

		if (s && s->gw == 0 && s->active) {
			v.gw_addr = priv->plan.nodes[0].addr;
			v.flags = EGRESS_POL_F_LOCAL;
		} else if (s && s->gw > 0) {
			v.gw_addr = priv->plan.nodes[s->gw].addr;
		}
		if (bpf_map_update_elem(fd, &i, &v, BPF_ANY))
			bpflb_log(ctx, LOG_ERR, "cannot update egress_policies[%u]: %s", i,
				  strerror(errno));
	}
}

static void write_ips(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv)
{
	int fd = map_fd(priv->skel->maps.egress_ips);
	uint32_t key, next, *prev = NULL, stale[EGRESS_MAX_IPS];
	size_t nstale = 0;

	for (size_t i = 0; i < priv->nips; i++) {
		struct egress_ip_state *s = &priv->ips[i];
		struct egress_ip_val v = {.flags = s->active ? EGRESS_IP_F_ACTIVE : 0};

		if (s->rank < 0)
			continue;
		if (bpf_map_update_elem(fd, &s->ip, &v, BPF_ANY))
			bpflb_log(ctx, LOG_ERR, "cannot update egress_ips: %s", strerror(errno));
	}
	while (!bpf_map_get_next_key(fd, prev, &next) && nstale < EGRESS_MAX_IPS) {
		struct egress_ip_state *s = ip_state(priv, next);

		if (!s || s->rank < 0)
			stale[nstale++] = next;
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < nstale; i++)
		bpf_map_delete_elem(fd, &stale[i]);
}

/* Decide every egress IP's gateway now, and publish it to the datapath. */
static void refresh(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv)
{
	char a[INET_ADDRSTRLEN];

	for (size_t i = 0; i < priv->nips; i++) {
		struct egress_ip_state *s = &priv->ips[i];
		int gw;

		if (s->mode == EGRESS_MODE_BASIC) {
			basic_check(ctx, s);
			continue;
		}
		if (s->rank >= 0)
			vip_candidate(ctx, priv, s);
		gw = vip_holder(ctx, priv, s);
		if (!s->known || gw != s->gw) {
			if (gw >= 0)
				bpflb_log(ctx, LOG_INFO, "virtual IP %s: gateway is %s",
					  ntoa(s->ip, a), priv->plan.nodes[gw].name);
			else
				bpflb_log(ctx, LOG_WARNING,
					  "virtual IP %s has no gateway now: "
					  "its traffic is dropped (no_gateway)",
					  ntoa(s->ip, a));
		}
		s->known = true;
		s->gw = gw;
	}
	write_policies(ctx, priv);
	write_ips(ctx, priv);
}

/* Keep the neighbour entries of the gateways we tunnel to resolved. */
static void neigh_refresh(struct egress_priv *priv)
{
	uint32_t done[EGRESS_MAX_IPS];
	size_t ndone = 0;

	for (size_t i = 0; i < priv->nips; i++) {
		const struct egress_ip_state *s = &priv->ips[i];
		uint32_t addr;
		bool seen = false;
		int oif;

		if (s->gw <= 0)
			continue;
		addr = priv->plan.nodes[s->gw].addr;
		for (size_t j = 0; j < ndone; j++)
			seen |= done[j] == addr;
		if (seen)
			continue;
		done[ndone++] = addr;
		if (!egress_nl_route_oif(addr, &oif))
			egress_nl_neigh_use(oif, addr);
	}
}

static int lpm_sync(struct bpflb_plugin_ctx *ctx, struct bpf_map *map,
		    const struct egress_lpm_entry *next, size_t nnext,
		    const struct egress_lpm_entry *prev, size_t nprev, struct bpflb_err *err)
{
	int fd = map_fd(map);

	/* New contents first, stale prefixes after: no moment without the new rules. */
	for (size_t i = 0; i < nnext; i++) {
		struct egress_lpm_key k = {.prefixlen = next[i].p.plen,
					   .addr = htonl(next[i].p.addr)};
		__u64 bits = next[i].bits;

		if (bpf_map_update_elem(fd, &k, &bits, BPF_ANY))
			return bpflb_err_set(err, "egress: cannot write %s (%zu prefixes): %s",
					     bpf_map__name(map), nnext, strerror(errno)),
			       -errno;
	}
	for (size_t i = 0; i < nprev; i++) {
		struct egress_lpm_key k = {.prefixlen = prev[i].p.plen,
					   .addr = htonl(prev[i].p.addr)};
		bool keep = false;

		for (size_t j = 0; j < nnext && !keep; j++)
			keep = next[j].p.plen == prev[i].p.plen && next[j].p.addr == prev[i].p.addr;
		if (!keep)
			bpf_map_delete_elem(fd, &k);
	}
	(void)ctx;
	return 0;
}

/* Empty whatever a previous daemon left in a trie we have no record of. */
static void lpm_clear(struct bpf_map *map)
{
	struct egress_lpm_key k;
	int fd = map_fd(map);

	while (!bpf_map_get_next_key(fd, NULL, &k))
		if (bpf_map_delete_elem(fd, &k))
			break;
}

static void sync_nodes(struct egress_priv *priv)
{
	int fd = map_fd(priv->skel->maps.egress_nodes);
	uint32_t key, next, *prev = NULL, one = 1;
	uint32_t *stale = calloc(EGRESS_MAX_NODES, sizeof(*stale));
	size_t nstale = 0;

	for (size_t i = 0; i < priv->plan.nnodes; i++)
		bpf_map_update_elem(fd, &priv->plan.nodes[i].addr, &one, BPF_ANY);
	while (stale && !bpf_map_get_next_key(fd, prev, &next) && nstale < EGRESS_MAX_NODES) {
		bool keep = false;

		for (size_t i = 0; i < priv->plan.nnodes && !keep; i++)
			keep = priv->plan.nodes[i].addr == next;
		if (!keep)
			stale[nstale++] = next;
		key = next;
		prev = &key;
	}
	for (size_t i = 0; i < nstale; i++)
		bpf_map_delete_elem(fd, &stale[i]);
	free(stale);
}

/* Conntrack GC: a pair goes once both entries are idle past their timeout. */
static uint64_t ct_timeout_ns(uint8_t proto, uint8_t state)
{
	if (proto != IPPROTO_TCP)
		return 60 * EGRESS_NS;
	if (state == BPFLB_CT_NEW)
		return 60 * EGRESS_NS;
	if (state == BPFLB_CT_CLOSING)
		return 10 * EGRESS_NS;
	return 21600 * EGRESS_NS;
}

static bool ct_idle(const struct bpflb_ct_key *k, const struct egress_ct_val *v, uint64_t now)
{
	return now > v->last_seen && now - v->last_seen > ct_timeout_ns(k->proto, v->state);
}

static void ct_gc(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv)
{
	int fd = map_fd(priv->skel->maps.egress_ct);
	struct bpflb_ct_key k, next, *prev = NULL, *del = NULL;
	size_t ndel = 0, cap = 0;
	uint64_t now = mono_ns();
	struct egress_ct_val v;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &v) || !ct_idle(&k, &v, now))
			continue;
		if (ndel == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct bpflb_ct_key *d = realloc(del, ncap * sizeof(*d));

			if (!d)
				break;
			del = d;
			cap = ncap;
		}
		del[ndel++] = k;
	}
	/* Look again before deleting: the datapath may have used the flow since. */
	for (size_t i = 0; i < ndel; i++) {
		struct bpflb_ct_key pk = {0};
		struct egress_ct_val pv;

		if (bpf_map_lookup_elem(fd, &del[i], &v) || !ct_idle(&del[i], &v, now))
			continue;
		if (del[i].kind == BPFLB_CT_FWD) {
			pk.saddr = del[i].daddr;
			pk.daddr = v.addr;
			pk.sport = del[i].dport;
			pk.dport = v.port;
			pk.kind = BPFLB_CT_REV;
		} else {
			pk.saddr = v.addr;
			pk.daddr = del[i].saddr;
			pk.sport = v.port;
			pk.dport = del[i].sport;
			pk.kind = BPFLB_CT_FWD;
		}
		pk.proto = del[i].proto;
		if (!bpf_map_lookup_elem(fd, &pk, &pv) && !ct_idle(&pk, &pv, now))
			continue;
		bpf_map_delete_elem(fd, &pk);
		bpf_map_delete_elem(fd, &del[i]);
	}
	if (ndel)
		bpflb_log(ctx, LOG_DEBUG, "conntrack GC: %zu idle entries", ndel);
	free(del);
}

/* --- sysctls a gateway needs ---------------------------------------------------------- */

static void sysctl_ensure(struct bpflb_plugin_ctx *ctx, const char *key, const char *value)
{
	char path[256], cur[16] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		bpflb_log(ctx, LOG_WARNING, "cannot open %s: %s", path, strerror(errno));
		return;
	}
	n = read(fd, cur, sizeof(cur) - 1);
	if (n > 0 && (size_t)n >= strlen(value) && !strncmp(cur, value, strlen(value))) {
		close(fd);
		return;
	}
	if (pwrite(fd, value, strlen(value), 0) < 0)
		bpflb_log(ctx, LOG_WARNING, "cannot set %s = %s: %s", key, value, strerror(errno));
	else
		bpflb_log(ctx, LOG_NOTICE,
			  "set %s = %s (a gateway forwards translated packets "
			  "whose source is one of its addresses)",
			  key, value);
	close(fd);
}

static void gateway_sysctls(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv)
{
	const int *ifs;
	int n = bpflb_devices(ctx, &ifs);
	char name[IF_NAMESIZE], key[96];
	bool gateway = false;

	for (size_t i = 0; i < priv->nips; i++)
		gateway |= priv->ips[i].rank >= 0;
	if (!gateway)
		return;
	sysctl_ensure(ctx, "net/ipv4/ip_forward", "1");
	for (int i = 0; i < n; i++) {
		if (!if_indextoname(ifs[i], name))
			continue;
		snprintf(key, sizeof(key), "net/ipv4/conf/%s/accept_local", name);
		sysctl_ensure(ctx, key, "1");
	}
}

/* --- plugin hooks -------------------------------------------------------------------- */

static const struct bpflb_feature egress_requires[] = {
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PROG_ARRAY, "BPF_MAP_TYPE_PROG_ARRAY"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_LPM_TRIE, "BPF_MAP_TYPE_LPM_TRIE"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_LRU_HASH, "BPF_MAP_TYPE_LRU_HASH"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERCPU_ARRAY, "BPF_MAP_TYPE_PERCPU_ARRAY"},
    {BPFLB_FEAT_MAP_TYPE, BPF_MAP_TYPE_PERF_EVENT_ARRAY, "BPF_MAP_TYPE_PERF_EVENT_ARRAY"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_skb_adjust_room, "bpf_skb_adjust_room"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_fib_lookup, "bpf_fib_lookup"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_redirect, "bpf_redirect"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_tail_call, "bpf_tail_call"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_l3_csum_replace, "bpf_l3_csum_replace"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_l4_csum_replace, "bpf_l4_csum_replace"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_csum_diff, "bpf_csum_diff"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_skb_store_bytes, "bpf_skb_store_bytes"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_skb_load_bytes, "bpf_skb_load_bytes"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_skb_pull_data, "bpf_skb_pull_data"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_skb_change_tail, "bpf_skb_change_tail"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_perf_event_output, "bpf_perf_event_output"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_get_prandom_u32, "bpf_get_prandom_u32"},
    {BPFLB_FEAT_HELPER, BPF_FUNC_ktime_get_ns, "bpf_ktime_get_ns"},
    {BPFLB_FEAT_END, 0, NULL},
};

static int egress_init(struct bpflb_plugin_ctx *ctx)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = bpflb_pin_root(ctx));
	struct egress_priv *priv;
	int err;

	priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	priv->skel = egress_bpf__open_opts(&opts);
	if (!priv->skel) {
		err = -errno;
		bpflb_log(ctx, LOG_ERR, "opening the BPF object failed: %d", err);
		goto out;
	}
	/* Shared map sizes from the configuration; our pins recorded for --cleanup. */
	err = bpflb_pins_prepare(ctx, priv->skel->obj) ?: egress_bpf__load(priv->skel);
	if (err) {
		bpflb_log(ctx, LOG_ERR,
			  "loading the BPF programs failed (%d); "
			  "see the verifier log above",
			  err);
		goto out;
	}
	/* Tries left by an earlier daemon: apply writes them whole again. */
	lpm_clear(priv->skel->maps.egress_src);
	lpm_clear(priv->skel->maps.egress_dst);
	bpflb_set_priv(ctx, priv);
	return 0;
out:
	egress_bpf__destroy(priv->skel);
	free(priv);
	return err;
}

static int egress_validate(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			   struct bpflb_err *err)
{
	struct egress_plan plan;
	int ret = plan_build(next, &plan, err);

	if (ret)
		return ret;
	if (plan.has_vip) {
		struct egress_lease_store *st;

		ret = egress_lease_dir_open(plan.lease_dir, &st);
		if (ret)
			ret = bpflb_cfg_error(
			    err, bpflb_cfg_section(next, "egress", 0), "lease_dir", 0,
			    "cannot use it: %s; expected a writable directory", strerror(-ret));
		else
			st->ops->close(st);
	}
	plan_free(&plan);
	return ret;
}

/* Build the egress IP states of a new plan, carrying over what the old ones hold. */
static int ips_build(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv,
		     const struct egress_plan *plan, struct egress_ip_state **out, size_t *nout)
{
	struct egress_ip_state *v = calloc(plan->npols ? plan->npols : 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < plan->npols; i++) {
		const struct egress_pol *pol = &plan->pols[i];
		struct egress_ip_state *s = NULL, *old;
		char a[INET_ADDRSTRLEN];

		for (size_t j = 0; j < n && !s; j++)
			if (v[j].ip == pol->egress_ip)
				s = &v[j];
		if (s)
			continue;
		s = &v[n++];
		s->ip = pol->egress_ip;
		s->mode = pol->mode;
		s->pol = pol;
		s->gw = -1;
		s->rank = -1;
		for (int r = 0; r < pol->ngw; r++)
			if (pol->gw[r] == 0)
				s->rank = r;
		if (s->mode == EGRESS_MODE_BASIC && s->rank > 0)
			s->rank = -1; /* only the first gateway serves a basic policy */
		s->ifindex = s->rank >= 0 ? (int)if_nametoindex(pol->iface) : 0;
		snprintf(s->key, sizeof(s->key), "egress-%s", ntoa(s->ip, a));
		old = ip_state(priv, s->ip);
		if (old && old->mode == s->mode && old->rank >= 0 && s->rank >= 0 &&
		    old->ifindex == s->ifindex) {
			s->active = old->active;
			s->added = old->added;
			s->known = old->known;
			s->expires_ms = old->expires_ms;
			s->garp_left = old->garp_left;
			s->gw = old->gw;
		}
	}
	*out = v;
	*nout = n;
	(void)ctx;
	return 0;
}

/* Let go of a virtual IP we hold (it is no longer ours to serve, or we stop). */
static void vip_release(struct bpflb_plugin_ctx *ctx, struct egress_priv *priv,
			struct egress_ip_state *s, const char *why)
{
	if (s->mode != EGRESS_MODE_VIP || !s->active)
		return;
	if (priv->store)
		priv->store->ops->release(priv->store, s->key, priv->plan.nodes[0].name);
	vip_lose(ctx, s, why);
}

static void stats_reset(struct egress_priv *priv, uint32_t idx)
{
	int ncpus = libbpf_num_possible_cpus();
	struct egress_stats *zero;

	if (ncpus <= 0)
		return;
	zero = calloc(ncpus, sizeof(*zero));
	if (!zero)
		return;
	bpf_map_update_elem(map_fd(priv->skel->maps.egress_stats), &idx, zero, BPF_ANY);
	free(zero);
}

static int egress_apply(struct bpflb_plugin_ctx *ctx, const struct bpflb_config *next,
			const struct bpflb_config *prev, struct bpflb_err *err)
{
	struct egress_priv *priv = bpflb_priv(ctx);
	struct egress_lpm_entry *src = NULL, *dst = NULL;
	struct egress_model_policy *mp = NULL;
	struct egress_ip_state *ips = NULL;
	struct egress_lease_store *store = NULL;
	size_t nsrc = 0, ndst = 0, nips = 0;
	struct egress_plan plan;
	struct egress_cfg cfg = {0};
	const int *ifs;
	uint32_t zero = 0, mtu;
	int ret, ndev;

	ret = plan_build(next, &plan, err);
	if (ret)
		return ret;
	mp = calloc(plan.npols ? plan.npols : 1, sizeof(*mp));
	if (!mp) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < plan.npols; i++)
		mp[i] = plan.pols[i].m;
	ret = egress_model_src(mp, plan.npols, &src, &nsrc);
	if (!ret)
		ret = egress_model_dst(mp, plan.npols, &plan.cluster, &dst, &ndst);
	if (ret) {
		bpflb_err_set(err, "egress: cannot compute the selection tries: %s",
			      strerror(-ret));
		goto fail;
	}
	if (nsrc > EGRESS_MAX_PREFIXES || ndst > EGRESS_MAX_PREFIXES) {
		ret = bpflb_err_set(err,
				    "egress: %zu source and %zu destination prefixes; at most "
				    "%d of each fit",
				    nsrc, ndst, EGRESS_MAX_PREFIXES);
		ret = -E2BIG;
		goto fail;
	}
	if (plan.has_vip) {
		ret = egress_lease_dir_open(plan.lease_dir, &store);
		if (ret) {
			bpflb_err_set(err, "egress: lease_dir %s: %s", plan.lease_dir,
				      strerror(-ret));
			goto fail;
		}
	}
	ret = ips_build(ctx, priv, &plan, &ips, &nips);
	if (ret)
		goto fail;

	/* This node, as the datapath needs it. */
	cfg.node_addr = plan.nodes[0].addr;
	cfg.port_min = plan.port_min;
	cfg.port_max = plan.port_max;
	ndev = bpflb_devices(ctx, &ifs);
	for (int i = 0; i < ndev; i++)
		if (!egress_link_mtu(ifs[i], &mtu) && (!cfg.mtu || mtu < cfg.mtu))
			cfg.mtu = mtu;
	if (bpf_map_update_elem(map_fd(priv->skel->maps.egress_cfg), &zero, &cfg, BPF_ANY)) {
		ret = -errno;
		bpflb_err_set(err, "egress: cannot write egress_cfg: %s", strerror(errno));
		goto fail;
	}

	/* Virtual IPs this node no longer serves go now, before the new state takes over. */
	for (size_t i = 0; i < priv->nips; i++) {
		struct egress_ip_state *o = &priv->ips[i];
		bool kept = false;

		for (size_t j = 0; j < nips && !kept; j++)
			kept = ips[j].ip == o->ip && ips[j].active;
		if (!kept)
			vip_release(ctx, priv, o, "no longer configured for this node");
	}

	/*
	 * Counters are per policy index: on a reload, a slot that now holds
	 * another policy starts at 0.  A restarted daemon keeps the pinned ones.
	 */
	for (uint32_t i = 0; priv->have_plan && i < plan.npols; i++)
		if (i >= priv->plan.npols || strcmp(priv->plan.pols[i].name, plan.pols[i].name))
			stats_reset(priv, i);

	/* Swap in the new plan; the lease store follows lease_dir. */
	if (priv->have_plan)
		plan_free(&priv->plan);
	priv->plan = plan;
	priv->have_plan = true;
	memset(&plan, 0, sizeof(plan));
	free(priv->ips);
	priv->ips = ips;
	priv->nips = nips;
	ips = NULL;
	/* ips point at the plan's policies: fix up after the move. */
	for (size_t i = 0; i < priv->nips; i++)
		for (size_t j = 0; j < priv->plan.npols; j++)
			if (priv->plan.pols[j].egress_ip == priv->ips[i].ip) {
				priv->ips[i].pol = &priv->plan.pols[j];
				break;
			}
	if (priv->store)
		priv->store->ops->close(priv->store);
	priv->store = store;
	store = NULL;
	snprintf(priv->store_dir, sizeof(priv->store_dir), "%s", priv->plan.lease_dir);

	sync_nodes(priv);
	gateway_sysctls(ctx, priv);
	refresh(ctx, priv);
	ret = lpm_sync(ctx, priv->skel->maps.egress_src, src, nsrc, priv->src, priv->nsrc, err);
	if (!ret)
		ret = lpm_sync(ctx, priv->skel->maps.egress_dst, dst, ndst, priv->dst, priv->ndst,
			       err);
	free(priv->src);
	free(priv->dst);
	priv->src = src;
	priv->nsrc = nsrc;
	priv->dst = dst;
	priv->ndst = ndst;
	src = dst = NULL;
	/* Slots of policies that no longer exist: no gateway, no id. */
	for (uint32_t i = priv->plan.npols; i < EGRESS_MAX_POLICIES; i++) {
		struct egress_policy_val v = {0};

		bpf_map_update_elem(map_fd(priv->skel->maps.egress_policies), &i, &v, BPF_ANY);
	}
	neigh_refresh(priv);
	for (size_t i = 0; i < priv->plan.npols; i++) {
		const struct egress_pol *pol = &priv->plan.pols[i];
		char a[INET_ADDRSTRLEN];

		bpflb_log(ctx, LOG_INFO,
			  "policy %s: %s mode, egress IP %s, %d gateway node(s)%s%s, "
			  "%zu source prefix(es) (%zu endpoint(s))",
			  pol->name, pol->mode == EGRESS_MODE_VIP ? "vip" : "basic",
			  ntoa(pol->egress_ip, a), pol->ngw, pol->ngw ? " first " : "",
			  pol->ngw ? priv->plan.nodes[pol->gw[0]].name : "", pol->m.src.n,
			  pol->nendpoints);
		if (!pol->ngw)
			bpflb_log(ctx, LOG_WARNING,
				  "policy %s: its gateway_selector matches no "
				  "node; its traffic is dropped (no_gateway)",
				  pol->name);
	}
	free(mp);
	(void)prev;
	return ret;
fail:
	free(mp);
	free(src);
	free(dst);
	free(ips);
	if (store)
		store->ops->close(store);
	plan_free(&plan);
	return ret;
}

static void egress_tick(struct bpflb_plugin_ctx *ctx)
{
	struct egress_priv *priv = bpflb_priv(ctx);
	uint64_t now;

	if (!priv || !priv->have_plan)
		return;
	refresh(ctx, priv);
	neigh_refresh(priv);
	now = mono_ns();
	if (now - priv->last_gc_ns >= EGRESS_GC_INTERVAL_NS) {
		priv->last_gc_ns = now;
		ct_gc(ctx, priv);
	}
}

static uint32_t prog_id(struct bpf_program *prog)
{
	struct bpf_prog_info info = {0};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return 0;
	return info.id;
}

static int egress_attach(struct bpflb_plugin_ctx *ctx, struct bpflb_err *err)
{
	struct egress_priv *priv = bpflb_priv(ctx);
	int rc;

	rc = bpflb_stage_set(ctx, BPFLB_STAGE_IN_EGRESS,
			     bpf_program__fd(priv->skel->progs.egress_in));
	if (rc)
		return bpflb_err_set(err,
				     "egress: cannot put egress_in into the ingress egress "
				     "stage: %s",
				     strerror(-rc)),
		       rc;
	rc = bpflb_stage_set(ctx, BPFLB_STAGE_OUT_EGRESS,
			     bpf_program__fd(priv->skel->progs.egress_out));
	if (rc)
		return bpflb_err_set(err,
				     "egress: cannot put egress_out into the egress egress "
				     "stage: %s",
				     strerror(-rc)),
		       rc;
	return 0;
}

static int detach_stage(struct bpflb_plugin_ctx *ctx, enum bpflb_stage stage,
			struct bpf_program *prog)
{
	uint32_t ours = prog_id(prog);

	if (!ours || bpflb_stage_prog_id(ctx, stage) != ours)
		return 0;
	return bpflb_stage_clear(ctx, stage);
}

static int egress_detach(struct bpflb_plugin_ctx *ctx)
{
	struct egress_priv *priv = bpflb_priv(ctx);
	int rc, rc2;

	if (!priv)
		return 0;
	rc = detach_stage(ctx, BPFLB_STAGE_IN_EGRESS, priv->skel->progs.egress_in);
	rc2 = detach_stage(ctx, BPFLB_STAGE_OUT_EGRESS, priv->skel->progs.egress_out);
	return rc ? rc : rc2;
}

/*
 * Stopping (SIGTERM, or the feature disabled): hand the virtual IPs over at
 * once instead of letting their leases expire, and stop translating to them
 * here.  Programs and the other maps stay for the next daemon.
 */
static void egress_fini(struct bpflb_plugin_ctx *ctx)
{
	struct egress_priv *priv = bpflb_priv(ctx);
	bool changed = false;

	if (!priv)
		return;
	for (size_t i = 0; i < priv->nips; i++) {
		struct egress_ip_state *s = &priv->ips[i];

		if (s->mode == EGRESS_MODE_VIP && s->active) {
			vip_release(ctx, priv, s, "daemon stopping");
			s->gw = -1;
			changed = true;
		}
	}
	if (changed) {
		write_policies(ctx, priv);
		write_ips(ctx, priv);
	}
	if (priv->store)
		priv->store->ops->close(priv->store);
	if (priv->have_plan)
		plan_free(&priv->plan);
	free(priv->ips);
	free(priv->src);
	free(priv->dst);
	egress_bpf__destroy(priv->skel);
	free(priv);
	bpflb_set_priv(ctx, NULL);
}

/* --- control: `bpflbctl egress list` ------------------------------------------------- */

static json_object *policy_counters(struct egress_priv *priv, uint32_t idx)
{
	int ncpus = libbpf_num_possible_cpus();
	struct egress_stats *v, sum = {0};
	json_object *o = json_object_new_object();

	v = ncpus > 0 ? calloc(ncpus, sizeof(*v)) : NULL;
	if (v && !bpf_map_lookup_elem(map_fd(priv->skel->maps.egress_stats), &idx, v)) {
		for (int i = 0; i < ncpus; i++) {
			sum.steered_packets += v[i].steered_packets;
			sum.steered_bytes += v[i].steered_bytes;
			sum.snat_packets += v[i].snat_packets;
			sum.snat_bytes += v[i].snat_bytes;
			sum.reply_packets += v[i].reply_packets;
			sum.reply_bytes += v[i].reply_bytes;
			sum.drop_packets += v[i].drop_packets;
			sum.drop_bytes += v[i].drop_bytes;
		}
	}
	free(v);
	json_object_object_add(o, "steered_packets", json_object_new_uint64(sum.steered_packets));
	json_object_object_add(o, "steered_bytes", json_object_new_uint64(sum.steered_bytes));
	json_object_object_add(o, "snat_packets", json_object_new_uint64(sum.snat_packets));
	json_object_object_add(o, "snat_bytes", json_object_new_uint64(sum.snat_bytes));
	json_object_object_add(o, "reply_packets", json_object_new_uint64(sum.reply_packets));
	json_object_object_add(o, "reply_bytes", json_object_new_uint64(sum.reply_bytes));
	json_object_object_add(o, "drop_packets", json_object_new_uint64(sum.drop_packets));
	json_object_object_add(o, "drop_bytes", json_object_new_uint64(sum.drop_bytes));
	return o;
}

/*
 * "metrics" for the core's /metrics: packets and bytes per egress policy and
 * what this node did with them (steered to a gateway, translated to the
 * egress IP, replies translated back, dropped).
 */
static json_object *egress_metrics(struct egress_priv *priv)
{
	static const char *const what[] = { "steered", "snat", "reply", "drop" };
	json_object *fams = json_object_new_array(), *out = json_object_new_object();

	for (int unit = 0; unit < 2; unit++) {
		json_object *fam = json_object_new_object(), *samples = json_object_new_array();

		for (uint32_t i = 0; priv->have_plan && i < priv->plan.npols; i++) {
			json_object *c = policy_counters(priv, i), *v;

			for (size_t w = 0; w < sizeof(what) / sizeof(what[0]); w++) {
				json_object *sm = json_object_new_object();
				json_object *l = json_object_new_object();
				char key[32];

				snprintf(key, sizeof(key), "%s_%s", what[w], unit ? "bytes" : "packets");
				json_object_object_get_ex(c, key, &v);
				json_object_object_add(l, "policy",
						       json_object_new_string(priv->plan.pols[i].name));
				json_object_object_add(l, "action", json_object_new_string(what[w]));
				json_object_object_add(sm, "labels", l);
				json_object_object_add(sm, "value", json_object_get(v));
				json_object_array_add(samples, sm);
			}
			json_object_put(c);
		}
		json_object_object_add(fam, "name",
				       json_object_new_string(unit ? "bpflb_egress_bytes_total"
								   : "bpflb_egress_packets_total"));
		json_object_object_add(fam, "type", json_object_new_string("counter"));
		json_object_object_add(fam, "help",
				       json_object_new_string("Egress gateway traffic per policy: "
							      "steered, translated (snat), replies, "
							      "dropped."));
		json_object_object_add(fam, "samples", samples);
		json_object_array_add(fams, fam);
	}
	json_object_object_add(out, "metrics", fams);
	return out;
}

/* What this node does for the policy now, in one word. */
static const char *policy_state(const struct egress_ip_state *s)
{
	if (!s || s->gw < 0)
		return "no-gateway";
	if (s->gw == 0)
		return s->active ? "gateway" : "unhealthy";
	return "steering";
}

static int egress_control(struct bpflb_plugin_ctx *ctx, const char *cmd, json_object *req,
			  json_object **reply)
{
	struct egress_priv *priv = bpflb_priv(ctx);
	json_object *o, *a;
	char b[INET_ADDRSTRLEN];

	*reply = NULL;
	if (priv && !strcmp(cmd, "metrics")) {
		*reply = egress_metrics(priv);
		return 0;
	}
	if (strcmp(cmd, "list")) {
		*reply = json_object_new_object();
		json_object_object_add(*reply, "error",
				       json_object_new_string("unknown command; expected list"));
		return -ENOENT;
	}
	if (!priv || !priv->have_plan) {
		*reply = json_object_new_object();
		json_object_object_add(*reply, "error",
				       json_object_new_string("no configuration applied yet"));
		return -ENOENT;
	}
	o = json_object_new_object();
	json_object_object_add(o, "node", json_object_new_string(priv->plan.nodes[0].name));
	json_object_object_add(o, "lease_dir", json_object_new_string(priv->plan.lease_dir));
	json_object_object_add(o, "lease_duration_s",
			       json_object_new_int((int)(priv->plan.lease_ms / 1000)));
	a = json_object_new_array();
	for (uint32_t i = 0; i < priv->plan.npols; i++) {
		const struct egress_pol *pol = &priv->plan.pols[i];
		const struct egress_ip_state *s = ip_state(priv, pol->egress_ip);
		json_object *p = json_object_new_object(), *gws = json_object_new_array();

		json_object_object_add(p, "name", json_object_new_string(pol->name));
		json_object_object_add(p, "id", json_object_new_int((int)i + 1));
		json_object_object_add(
		    p, "mode",
		    json_object_new_string(pol->mode == EGRESS_MODE_VIP ? "vip" : "basic"));
		json_object_object_add(p, "egress_ip",
				       json_object_new_string(ntoa(pol->egress_ip, b)));
		json_object_object_add(p, "interface", json_object_new_string(pol->iface));
		for (int g = 0; g < pol->ngw; g++)
			json_object_array_add(
			    gws, json_object_new_string(priv->plan.nodes[pol->gw[g]].name));
		json_object_object_add(p, "gateway_nodes", gws);
		json_object_object_add(
		    p, "gateway",
		    s && s->gw >= 0 ? json_object_new_string(priv->plan.nodes[s->gw].name) : NULL);
		json_object_object_add(p, "state", json_object_new_string(policy_state(s)));
		json_object_object_add(p, "sources", json_object_new_int64((int64_t)pol->m.src.n));
		json_object_object_add(p, "endpoints",
				       json_object_new_int64((int64_t)pol->nendpoints));
		json_object_object_add(p, "packets", policy_counters(priv, i));
		json_object_array_add(a, p);
	}
	json_object_object_add(o, "policies", a);
	*reply = o;
	(void)req;
	return 0;
}

/* Flow events, drops and the node settings are shared; the gateway state is ours. */
static const struct bpflb_map_set egress_map_sets[] = {
	{BPFLB_MAP_SET_LB, BPFLB_LB_SCHEMA},
	{NULL, 0},
};
static const char *const egress_own_maps[] = {
	"egress_cfg",  "egress_src", "egress_dst", "egress_policies", "egress_nodes",
	"egress_ips", "egress_ct",  "egress_stats", NULL};

BPFLB_PLUGIN_DEFINE(.name = "egress", .version = "0.1.0", .kind = BPFLB_PLUGIN_FEATURE,
		    .map_schema_version = EGRESS_SCHEMA, .map_sets = egress_map_sets,
		    .own_maps = egress_own_maps,
		    .description =
			"egress gateway: selected workloads leave through a gateway node with an "
			"egress IP (basic and virtual-IP modes)",
		    .sections = egress_sections, .requires = egress_requires, .init = egress_init,
		    .validate = egress_validate, .apply = egress_apply, .attach = egress_attach,
		    .detach = egress_detach, .fini = egress_fini, .tick = egress_tick,
		    .control = egress_control, );
