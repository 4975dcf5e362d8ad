// SPDX-License-Identifier: GPL-2.0-only
/*
 * [lb] and [service NAME]: the schema, the parser, and every check that needs
 * more than one key or more than one section.
 *
 * [lb]: node-wide load-balancing settings; every node of a cluster should have
 * the same values (the hash seed and Maglev size decide which backend a flow
 * goes to, and the same flow must pick the same backend on every node).
 *
 *   [lb]
 *   algorithm = random            # random | maglev: default of every service
 *   maglev_table_size = 16381     # prime; changing it needs a restart
 *   hash_seed = 0x9e3779b9        # same on every node
 *   snat_ports = 32768-65535      # SNAT source ports towards remote backends
 *   nodeport_range = 30000-32767  # every nodeport= and health_check_node_port
 *   ct_tcp_timeout = 6h           # established TCP flow idle timeout
 *   ct_tcp_syn_timeout = 60s      # TCP flow before the reply
 *   ct_tcp_close_timeout = 10s    # TCP flow after FIN/RST
 *   ct_udp_timeout = 60s          # UDP (and other) flows
 *   ct_gc_interval = 30s          # how often the daemon sweeps conntrack
 *   healthz_bind = 10.0.0.11      # health check listeners; default [node] address,
 *                                 # 0.0.0.0 for every address (kube-proxy's default)
 *   dsr_dispatch = option         # option | ipip: how DSR (modes dsr, hybrid, and
 *                                 # forwarding = dsr) sends new flows to the
 *                                 # backend's node: the IPv4 option, or IP-in-IP
 *
 * [service NAME]: one Kubernetes Service and its endpoints.  NAME is a DNS
 * label (a-z, 0-9, '-', starts with a letter, at most 63).
 *
 *   type = nodeport | loadbalancer | externalip | hostport       (required)
 *   namespace = default        # reported by the health check
 *   port = NAME tcp|udp PORT [nodeport=N] [target=N]            (one or more)
 *       NAME     DNS label, unique in the service
 *       PORT     service port: the port on lb_ips and external_ips; for
 *                type=hostport the host port
 *       nodeport required for type=nodeport, optional for loadbalancer,
 *                refused for externalip and hostport; within nodeport_range
 *                and unique per protocol over all services
 *       target   port of the backends (default PORT)
 *   backend = ADDR[:PORT] node=NODE [state=active|terminating|maintenance]
 *             [hostnet=yes|no] [port.NAME=N]                    (zero or more)
 *       ADDR     endpoint (pod) address; listed once per service
 *       :PORT    backend port instead of the port line's target (one-port
 *                services only); port.NAME=N does the same for port NAME
 *       node     [node] name or a [cluster-node NAME]: where it runs
 *       state    active (default) gets new flows; terminating keeps its
 *                flows, gets no new ones; maintenance gets nothing
 *       hostnet  a host-network endpoint: ADDR is one of its node's addresses
 *   lb_ips = IP...             # type=loadbalancer: required
 *   external_ips = IP...       # any type but hostport; required for externalip
 *   external_traffic_policy = cluster | local
 *       local: only backends on this node; keeps the client address
 *   health_check_node_port = N # only with local; kube-proxy's health check
 *   no_backend = drop | reject # reject answers ICMP unreachable
 *   algorithm = random | maglev          (default: [lb] algorithm)
 *   forwarding = auto | snat | dsr       (auto: the mode's choice)
 *   host_ip = IP               # type=hostport: the address to bind; default one
 *       of the backend node's addresses, a private one first (as Cilium)
 *
 * Frontends on this node: every port with a nodeport on each of this node's
 * addresses ([node] address and external_addresses), each lb_ips and
 * external_ips address on PORT, a hostport on its host_ip when its backend
 * runs on this node.
 *
 * Example:
 *   [service web]
 *   type = loadbalancer
 *   port = http tcp 80 nodeport=30080 target=8080
 *   port = metrics tcp 9100 nodeport=30091
 *   lb_ips = 203.0.113.10
 *   external_traffic_policy = local
 *   health_check_node_port = 32100
 *   algorithm = maglev
 *   backend = 10.244.1.5 node=node1
 *   backend = 10.244.2.7 node=node2 state=terminating
 *   backend = 10.244.2.9 node=node2 port.metrics=9101  # listens on 9101 for metrics
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "lb/maglev.h"
#include "lb/services_model.h"

static const char *const alg_choices[] = {"random", "maglev", NULL};
static const char *const type_choices[] = {"nodeport", "loadbalancer", "externalip", "hostport",
					   NULL};
static const char *const etp_choices[] = {"cluster", "local", NULL};
static const char *const nobe_choices[] = {"drop", "reject", NULL};
static const char *const fwd_choices[] = {"auto", "snat", "dsr", NULL};
static const char *const dispatch_choices[] = {"option", "ipip", NULL};

#define STR_(x) #x
#define STR(x) STR_(x)

#define LB_AT(member) BPFLB_CFG_AT(struct bpflb_lb_conf, member)

static const struct bpflb_cfg_key lb_keys[] = {
    {"algorithm", BPFLB_CFG_ENUM, LB_AT(algorithm), "random", 0, 0, alg_choices,
     "backend selection of new flows: random, or maglev (consistent hashing)"},
    {"maglev_table_size", BPFLB_CFG_U32, LB_AT(maglev_table_size), "16381", BPFLB_MAGLEV_MIN_M,
     BPFLB_MAGLEV_MAX_M, NULL,
     "entries of each Maglev table: any prime from " STR(BPFLB_MAGLEV_MIN_M) " to "
     STR(BPFLB_MAGLEV_MAX_M) ", well above the backends of a service (the default 16381 keeps "
     "shares even up to about 160)"},
    {"hash_seed", BPFLB_CFG_U32, LB_AT(hash_seed), "0x9e3779b9", 0, UINT32_MAX, NULL,
     "seed of the flow and Maglev hashes; the same on every node, so that every node "
     "picks the same backend for a flow"},
    {"snat_ports", BPFLB_CFG_STRING, LB_AT(snat_ports), "32768-65535", 0, 0, NULL,
     "LOW-HIGH: source ports of SNAT towards remote backends"},
    {"nodeport_range", BPFLB_CFG_STRING, LB_AT(nodeport_range), "30000-32767", 0, 0, NULL,
     "LOW-HIGH: the range of nodeport= and health_check_node_port"},
    {"ct_tcp_timeout", BPFLB_CFG_DURATION, LB_AT(ct_tcp_timeout), "6h", 1, 7 * 86400, NULL,
     "idle timeout of an established TCP flow"},
    {"ct_tcp_syn_timeout", BPFLB_CFG_DURATION, LB_AT(ct_tcp_syn_timeout), "60s", 1, 86400, NULL,
     "timeout of a TCP flow that saw no reply yet"},
    {"ct_tcp_close_timeout", BPFLB_CFG_DURATION, LB_AT(ct_tcp_close_timeout), "10s", 1, 86400, NULL,
     "timeout of a TCP flow after FIN or RST"},
    {"ct_udp_timeout", BPFLB_CFG_DURATION, LB_AT(ct_udp_timeout), "60s", 1, 7 * 86400, NULL,
     "idle timeout of a UDP (or other non-TCP) flow"},
    {"ct_gc_interval", BPFLB_CFG_DURATION, LB_AT(ct_gc_interval), "30s", 1, 3600, NULL,
     "how often expired conntrack entries are removed"},
    {"healthz_bind", BPFLB_CFG_IPV4, LB_AT(healthz_bind), NULL, 0, 0, NULL,
     "address of the health check node ports; default the [node] address, 0.0.0.0 for all"},
    {"dsr_dispatch", BPFLB_CFG_ENUM, LB_AT(dsr_dispatch), "option", 0, 0, dispatch_choices,
     "how DSR sends a new flow to the backend's node: option (the service address in an "
     "IPv4 option; pod addresses must be routed to their node) or ipip (IP-in-IP to the "
     "node's address)"},
    {"events_per_sec", BPFLB_CFG_U32, LB_AT(events_per_sec), "1000", 1, 1000000, NULL,
     "flow events the datapath reports per second and CPU; the rest is counted as "
     "suppressed"},
    /* Sizes of the shared pinned maps (map_size_keys below); fixed while running. */
    {"max_services", BPFLB_CFG_U32, LB_AT(sizes.services), STR(BPFLB_MAX_SERVICES), 16, 4194304,
     NULL, "frontends (address, port, protocol) the datapath holds; also bounds the service ports"},
    {"max_backends", BPFLB_CFG_U32, LB_AT(sizes.backends), STR(BPFLB_MAX_BACKENDS), 16, 4194304,
     NULL, "distinct backends (address:port) the datapath holds"},
    {"max_slots", BPFLB_CFG_U32, LB_AT(sizes.slots), STR(BPFLB_MAX_SLOTS), 16, 16777216, NULL,
     "active backends summed over all service ports (random selection slots)"},
    {"max_maglev_services", BPFLB_CFG_U32, LB_AT(sizes.maglev), STR(BPFLB_MAX_MAGLEV), 1, 65536,
     NULL, "service ports with a Maglev table (algorithm = maglev)"},
    {"ct_size", BPFLB_CFG_U32, LB_AT(sizes.ct), STR(BPFLB_CT_SIZE), 1024, 16777216, NULL,
     "conntrack entries (two per translated flow); the least recently used go when full"},
    {"max_nodes", BPFLB_CFG_U32, LB_AT(sizes.nodes), STR(BPFLB_MAX_NODES), 16, 1048576, NULL,
     "nodes of the cluster whose IP-in-IP the datapath accepts"},
    BPFLB_CFG_KEYS_END(struct bpflb_lb_conf),
};

/*
 * [service NAME] as the engine fills it, once per section when the file is
 * loaded: svc_parse() reads each key from here, never by name (at 100k
 * services the lookups by name were most of a reload).  Keys whose absence
 * means something else than any value have no default: -1 or 0 here.
 */
struct svc_conf {
	int type; /* type_choices; required */
	char *ns;
	struct bpflb_cfg_strs port, backend;
	struct bpflb_cfg_ipv4s lb_ips, external_ips;
	int etp;	  /* etp_choices; -1 not written (cluster, refused for hostport) */
	uint32_t hc_port; /* 0: not written (the schema's minimum is 1) */
	int no_backend;	  /* nobe_choices */
	int alg;	  /* alg_choices; -1 not written: [lb] algorithm */
	int fwd;	  /* fwd_choices */
	uint32_t host_ip; /* network order; 0: not written */
};

#define SVC_AT(member) BPFLB_CFG_AT(struct svc_conf, member)

static const struct bpflb_cfg_key svc_keys[] = {
    {"type", BPFLB_CFG_ENUM, BPFLB_CFG_F_REQUIRED | SVC_AT(type), NULL, 0, 0, type_choices,
     "nodeport, loadbalancer (lb_ips), externalip (external_ips) or hostport"},
    {"namespace", BPFLB_CFG_STRING, SVC_AT(ns), "default", 0, 0, NULL,
     "Kubernetes namespace, reported by the health check"},
    {"port", BPFLB_CFG_STRING, BPFLB_CFG_F_REQUIRED | BPFLB_CFG_F_MULTI | SVC_AT(port), NULL, 0, 0,
     NULL, "NAME tcp|udp PORT [nodeport=N] [target=N]"},
    {"backend", BPFLB_CFG_STRING, BPFLB_CFG_F_MULTI | SVC_AT(backend), NULL, 0, 0, NULL,
     "ADDR[:PORT] node=NODE [state=active|terminating|maintenance] [hostnet=yes|no] "
     "[port.NAME=N]"},
    {"lb_ips", BPFLB_CFG_IPV4_LIST, SVC_AT(lb_ips), NULL, 0, 0, NULL,
     "load balancer addresses (type=loadbalancer)"},
    {"external_ips", BPFLB_CFG_IPV4_LIST, SVC_AT(external_ips), NULL, 0, 0, NULL,
     "external addresses served on the service port"},
    {"external_traffic_policy", BPFLB_CFG_ENUM, SVC_AT(etp), NULL, 0, 0, etp_choices,
     "cluster (default), or local: only backends on this node, client address kept"},
    {"health_check_node_port", BPFLB_CFG_U32, SVC_AT(hc_port), NULL, 1, 65535, NULL,
     "TCP port of the kube-proxy compatible health check (external_traffic_policy=local)"},
    {"no_backend", BPFLB_CFG_ENUM, SVC_AT(no_backend), "drop", 0, 0, nobe_choices,
     "what a packet gets when no backend can take it: drop, or reject (ICMP unreachable)"},
    {"algorithm", BPFLB_CFG_ENUM, SVC_AT(alg), NULL, 0, 0, alg_choices,
     "random or maglev; default [lb] algorithm"},
    {"forwarding", BPFLB_CFG_ENUM, SVC_AT(fwd), "auto", 0, 0, fwd_choices,
     "auto (the mode decides), or always snat, or always dsr"},
    {"host_ip", BPFLB_CFG_IPV4, SVC_AT(host_ip), NULL, 0, 0, NULL,
     "type=hostport: the node address to bind (default: a private one of the node)"},
    BPFLB_CFG_KEYS_END(struct svc_conf),
};

static int lb_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err);

static const struct bpflb_cfg_section_def lb_section = {
    .name = "lb",
    .keys = lb_keys,
    .check = lb_check,
};

static const struct bpflb_cfg_section_def svc_section = {
    .name = "service",
    .named = true,
    .keys = svc_keys,
    /* no check here: bpflb_services_prepare() parses each service once */
};

const struct bpflb_cfg_section_def *const bpflb_services_sections[] = {
    &lb_section,
    &svc_section,
    NULL,
};

/* --- small parsers ------------------------------------------------------- */

static const char *ipstr(uint32_t be, char *buf)
{
	struct in_addr a = {.s_addr = be};

	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static const char *proto_name(uint8_t p)
{
	return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "?";
}

static int parse_num(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int svc_parse_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	char buf[32], *dash;
	uint32_t a, b;

	if (!s || strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (!dash)
		return -EINVAL;
	*dash = '\0';
	if (parse_num(buf, 1, 65535, &a) || parse_num(dash + 1, 1, 65535, &b) || a > b)
		return -EINVAL;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

/* DNS label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63; alpha_first for services. */
static bool dns_label(const char *s, bool alpha_first)
{
	size_t n = strlen(s);

	if (!n || n > 63)
		return false;
	if (alpha_first ? !(s[0] >= 'a' && s[0] <= 'z')
			: !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	if (s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* An address a packet can be sent to: not 0/8, 127/8, multicast, reserved, broadcast. */
static bool ip_unicast(uint32_t be)
{
	uint32_t h = ntohl(be);

	return (h >> 24) != 0 && (h >> 24) != 127 && h < 0xe0000000u;
}

struct cidr4 {
	uint32_t net, mask;
};

bool svc_ip_private(uint32_t be)
{
	static const struct cidr4 blocks[] = {
	    {0x0a000000, 0xff000000}, /* 10.0.0.0/8      RFC 1918 */
	    {0xac100000, 0xfff00000}, /* 172.16.0.0/12   RFC 1918 */
	    {0xc0a80000, 0xffff0000}, /* 192.168.0.0/16  RFC 1918 */
	    {0x64400000, 0xffc00000}, /* 100.64.0.0/10   RFC 6598 shared */
	    {0xc0000000, 0xffffff00}, /* 192.0.0.0/24    IETF protocol assignments */
	    {0xc0000200, 0xffffff00}, /* 192.0.2.0/24    TEST-NET-1 */
	    {0xc6120000, 0xfffe0000}, /* 198.18.0.0/15   benchmarking */
	    {0xc6336400, 0xffffff00}, /* 198.51.100.0/24 TEST-NET-2 */
	    {0xcb007100, 0xffffff00}, /* 203.0.113.0/24  TEST-NET-3 */
	};
	uint32_t h = ntohl(be);

	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
		if ((h & blocks[i].mask) == blocks[i].net)
			return true;
	return false;
}

/* Split s into at most max whitespace-separated words, in buf. */
static int split_words(const char *s, char *buf, size_t len, char **words, int max)
{
	int n = 0;
	char *p, *save = NULL;

	if (strlen(s) >= len)
		return -E2BIG;
	strcpy(buf, s);
	for (p = strtok_r(buf, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -E2BIG;
		words[n++] = p;
	}
	return n;
}

/*
 * A checked copy of an address list key: the schema parsed the addresses;
 * here they must be unicast and listed once.
 */
static int parse_ip_list(const struct bpflb_cfg_section *sec, const char *key,
			 const struct bpflb_cfg_ipv4s *l, uint32_t **out, unsigned int *nout,
			 struct bpflb_err *err)
{
	char abuf[INET_ADDRSTRLEN];
	uint32_t *v;

	*out = NULL;
	*nout = 0;
	if (!l->n)
		return 0;
	for (uint32_t i = 0; i < l->n; i++) {
		/* inet_pton() took dotted quads only: printed back, the word as written */
		if (!ip_unicast(l->v[i]))
			return bpflb_cfg_error(
			    err, sec, key, 0,
			    "'%s' is not a unicast IPv4 address; expected "
			    "addresses like 203.0.113.10, comma or space separated",
			    ipstr(l->v[i], abuf));
		for (uint32_t j = 0; j < i; j++)
			if (l->v[j] == l->v[i])
				return bpflb_cfg_error(err, sec, key, 0, "%s is listed twice",
						       ipstr(l->v[i], abuf));
	}
	v = malloc(l->n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	memcpy(v, l->v, l->n * sizeof(*v));
	*out = v;
	*nout = l->n;
	return 0;
}

/* --- [lb] ------------------------------------------------------------------ */

/*
 * [lb] where a configuration has none to fill (no [lb] schema, or no
 * configuration): the defaults of lb_keys, which test_services compares with a
 * filled one.
 */
static const struct bpflb_lb_conf lb_defaults = {
    .algorithm = 0,
    .maglev_table_size = 16381,
    .hash_seed = 0x9e3779b9,
    .snat_ports = "32768-65535",
    .nodeport_range = "30000-32767",
    .ct_tcp_timeout = 6 * 3600,
    .ct_tcp_syn_timeout = 60,
    .ct_tcp_close_timeout = 10,
    .ct_udp_timeout = 60,
    .ct_gc_interval = 30,
    .dsr_dispatch = 0,
    .events_per_sec = 1000,
    .sizes = {BPFLB_MAX_SERVICES, BPFLB_MAX_BACKENDS, BPFLB_MAX_SLOTS, BPFLB_MAX_MAGLEV,
	      BPFLB_CT_SIZE, BPFLB_MAX_NODES},
};

static const struct bpflb_lb_conf *lb_conf(const struct bpflb_cfg_section *sec)
{
	const struct bpflb_lb_conf *c = bpflb_cfg_conf(sec);

	return c ? c : &lb_defaults;
}

const struct bpflb_lb_conf *bpflb_lb_conf(const struct bpflb_config *cfg)
{
	return lb_conf(cfg ? bpflb_cfg_section(cfg, "lb", 0) : NULL);
}

/* The [lb] key that sizes each shared map (sdk/bpf/bpflb/lb_maps.h). */
static const struct {
	const char *map, *key;
	size_t off;
} map_size_keys[] = {
    {"bpflb_svc", "max_services", offsetof(struct bpflb_map_sizes, services)},
    {"bpflb_svc_stats", "max_services", offsetof(struct bpflb_map_sizes, services)},
    {"bpflb_backends", "max_backends", offsetof(struct bpflb_map_sizes, backends)},
    {"bpflb_slots", "max_slots", offsetof(struct bpflb_map_sizes, slots)},
    {"bpflb_maglev", "max_maglev_services", offsetof(struct bpflb_map_sizes, maglev)},
    {"bpflb_ct", "ct_size", offsetof(struct bpflb_map_sizes, ct)},
    {"bpflb_peers", "max_nodes", offsetof(struct bpflb_map_sizes, nodes)},
};

void bpflb_services_map_sizes(const struct bpflb_config *cfg, struct bpflb_map_sizes *out)
{
	*out = bpflb_lb_conf(cfg)->sizes;
}

const char *bpflb_map_size_key(const char *map, const struct bpflb_map_sizes *sizes,
			       uint32_t *entries)
{
	for (size_t i = 0; i < sizeof(map_size_keys) / sizeof(map_size_keys[0]); i++)
		if (!strcmp(map, map_size_keys[i].map)) {
			*entries = *(const uint32_t *)((const char *)sizes + map_size_keys[i].off);
			return map_size_keys[i].key;
		}
	return NULL;
}

static int lb_parse(const struct bpflb_cfg_section *sec, struct svc_lb *lb, struct bpflb_err *err)
{
	const struct bpflb_lb_conf *c = lb_conf(sec);
	const uint64_t ns = 1000000000ull;

	memset(lb, 0, sizeof(*lb));
	lb->alg = c->algorithm == 1 ? SVC_ALG_MAGLEV : SVC_ALG_RANDOM;
	/* The schema checked the ranges (every duration's: at least 1 s). */
	lb->maglev_m = c->maglev_table_size;
	if (!bpflb_maglev_is_prime(lb->maglev_m)) {
		uint32_t lo = lb->maglev_m, hi = lb->maglev_m;

		/* the accepted values are every prime of the range: name the nearest */
		while (lo > BPFLB_MAGLEV_MIN_M && !bpflb_maglev_is_prime(--lo))
			;
		while (hi < BPFLB_MAGLEV_MAX_M && !bpflb_maglev_is_prime(++hi))
			;
		return bpflb_cfg_error(err, sec, "maglev_table_size", 0,
				       "%u is not a prime; expected a prime from %u to %u, "
				       "the nearest are %u and %u (e.g. 251, 1021, 4093, "
				       "16381, 65521, 131071)",
				       lb->maglev_m, BPFLB_MAGLEV_MIN_M, BPFLB_MAGLEV_MAX_M,
				       lo, hi);
	}
	lb->hash_seed = c->hash_seed;
	if (svc_parse_range(c->nodeport_range, &lb->np_min, &lb->np_max))
		return bpflb_cfg_error(err, sec, "nodeport_range", 0,
				       "'%s' is not a port range; expected LOW-HIGH within "
				       "1-65535, like 30000-32767",
				       c->nodeport_range ? c->nodeport_range : "");
	if (svc_parse_range(c->snat_ports, &lb->snat_min, &lb->snat_max))
		return bpflb_cfg_error(
		    err, sec, "snat_ports", 0,
		    "'%s' is not a port range; expected LOW-HIGH within 1-65535, "
		    "like 32768-65535",
		    c->snat_ports ? c->snat_ports : "");
	if (lb->snat_min < 1024)
		return bpflb_cfg_error(err, sec, "snat_ports", 0,
				       "%u is a privileged port; expected a range from 1024 up",
				       lb->snat_min);
	if (lb->snat_min <= lb->np_max && lb->np_min <= lb->snat_max)
		return bpflb_cfg_error(err, sec, "snat_ports", 0,
				       "%u-%u overlaps nodeport_range %u-%u: a translated flow "
				       "would take a node port; expected disjoint ranges",
				       lb->snat_min, lb->snat_max, lb->np_min, lb->np_max);
	lb->ct.tcp_syn_ns = c->ct_tcp_syn_timeout * ns;
	lb->ct.tcp_est_ns = c->ct_tcp_timeout * ns;
	lb->ct.tcp_close_ns = c->ct_tcp_close_timeout * ns;
	lb->ct.udp_ns = c->ct_udp_timeout * ns;
	lb->gc_interval_ms = c->ct_gc_interval * 1000ull;
	lb->events_per_sec = c->events_per_sec;
	lb->dsr_ipip = c->dsr_dispatch == 1;
	lb->hz_bind = c->healthz_bind;
	/*
	 * The one [lb] key whose zero means something (0.0.0.0: every address)
	 * and whose absence another (the [node] address): its presence is asked
	 * by name, once per configuration.
	 */
	lb->hz_bind_set = c->healthz_bind || bpflb_cfg_has(sec, "healthz_bind");
	lb->sizes = c->sizes;
	lb->sec = sec;
	return 0;
}

static int lb_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	struct svc_lb lb;

	return lb_parse(sec, &lb, err);
}

/* --- [node] and [cluster-node NAME] ---------------------------------------- */

/*
 * One node's addresses: address, then its external_addresses (from the typed
 * [node] or [cluster-node] of config_core.c; the schema parsed them).  No
 * address (a [node] absent from the file): none.
 */
static int node_read(const struct bpflb_cfg_section *sec, const char *name, uint32_t address,
		     const struct bpflb_cfg_ipv4s *ext, struct svc_node *n, struct bpflb_err *err)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	if (!address)
		return 0;
	n->addrs[n->naddrs++] = address;
	for (uint32_t i = 0; i < ext->n; i++) {
		uint32_t a = ext->v[i];
		bool dup = false;

		for (unsigned int j = 0; j < n->naddrs; j++)
			dup |= n->addrs[j] == a;
		if (dup)
			continue;
		if (n->naddrs == SVC_MAX_NODE_ADDRS)
			return bpflb_cfg_error(err, sec, "external_addresses", 0,
					       "more than %d addresses; expected fewer",
					       SVC_MAX_NODE_ADDRS - 1);
		n->addrs[n->naddrs++] = a;
	}
	return 0;
}

static int nodes_read(const struct bpflb_config *cfg, struct svc_model *m, struct bpflb_err *err)
{
	static const struct bpflb_cfg_ipv4s none;
	const struct bpflb_cfg_section *nsec = bpflb_cfg_section(cfg, "node", 0), *sec;
	const struct bpflb_node_conf *nc = bpflb_cfg_conf(nsec);
	const struct bpflb_cluster_node_conf *cc;
	const char *name = nc ? nc->name : NULL;
	char host[SVC_NAME_LEN] = "";
	unsigned int i, n = 0;
	int ret;

	if (!name || !*name) {
		if (gethostname(host, sizeof(host) - 1))
			snprintf(host, sizeof(host), "localhost");
		name = host;
	}
	ret = node_read(nsec, name, nc ? nc->address : 0, nc ? &nc->external_addresses : &none,
			&m->self, err);
	if (ret)
		return ret;
	if (!m->self.naddrs || !m->self.addrs[0])
		return bpflb_cfg_error(err, nsec, "address", 0,
				       "services need this node's address; expected "
				       "address = the node's InternalIP");

	while (bpflb_cfg_section(cfg, "cluster-node", n))
		n++;
	if (n >= UINT16_MAX) /* svc_backend.node */
		return bpflb_cfg_error(err, bpflb_cfg_section(cfg, "cluster-node", 0), NULL, 0,
				       "%u [cluster-node] sections; expected fewer than %u", n,
				       UINT16_MAX);
	m->nodes = calloc(n + 1, sizeof(*m->nodes));
	if (!m->nodes)
		return -ENOMEM;
	m->nodes[0] = m->self;
	m->nnodes = 1;
	for (i = 0; i < n; i++) {
		sec = bpflb_cfg_section(cfg, "cluster-node", i);
		if (!strcmp(bpflb_cfg_section_name(sec), m->self.name))
			continue; /* this node: [node] is authoritative */
		cc = bpflb_cfg_conf(sec);
		ret = node_read(sec, bpflb_cfg_section_name(sec), cc ? cc->address : 0,
				cc ? &cc->external_addresses : &none, &m->nodes[m->nnodes], err);
		if (ret)
			return ret;
		m->nnodes++;
	}
	return 0;
}

const struct svc_node *svc_model_node(const struct svc_model *m, const char *name)
{
	for (unsigned int i = 0; i < m->nnodes; i++)
		if (!strcmp(m->nodes[i].name, name))
			return &m->nodes[i];
	return NULL;
}

/* --- [service NAME] --------------------------------------------------------- */

#define PORT_SYNTAX "expected: port = NAME tcp|udp PORT [nodeport=N] [target=N]"
#define BACKEND_SYNTAX                                                                             \
	"expected: backend = ADDR[:PORT] node=NODE [state=active|terminating|maintenance] "        \
	"[hostnet=yes|no] [port.NAME=N]"

/*
 * The scratch space a [service] is parsed into: reused from one service to the
 * next, so parsing allocates little; svc_def_pack() then copies the def into
 * its one allocation.
 */
struct svc_scratch {
	struct svc_port ports[SVC_MAX_PORTS];
	char pname[SVC_MAX_PORTS][SVC_NAME_LEN];
	char name[SVC_NAME_LEN], ns[SVC_NAME_LEN];
	struct svc_backend *bes;
	size_t bes_cap;
	uint16_t *pport;
	size_t pport_cap;
};

static int port_parse(const struct bpflb_cfg_section *sec, const char *v, int line,
		      struct svc_port *p, char *name, struct bpflb_err *err)
{
	char buf[256], *w[8];
	uint32_t num;
	int n, i;

	memset(p, 0, sizeof(*p));
	p->line = line;
	n = split_words(v, buf, sizeof(buf), w, 8);
	if (n < 3)
		return bpflb_cfg_error(err, sec, "port", line, "too %s words; " PORT_SYNTAX,
				       n < 0 ? "many" : "few");
	if (!dns_label(w[0], false) || strlen(w[0]) >= SVC_NAME_LEN)
		return bpflb_cfg_error(err, sec, "port", line,
				       "'%s' is not a port name; expected a DNS label "
				       "(a-z, 0-9, '-'); " PORT_SYNTAX,
				       w[0]);
	strcpy(name, w[0]);
	p->name = name;
	if (!strcmp(w[1], "tcp"))
		p->proto = IPPROTO_TCP;
	else if (!strcmp(w[1], "udp"))
		p->proto = IPPROTO_UDP;
	else
		return bpflb_cfg_error(err, sec, "port", line,
				       "'%s' is not a protocol; expected tcp or udp", w[1]);
	if (parse_num(w[2], 1, 65535, &num))
		return bpflb_cfg_error(err, sec, "port", line,
				       "'%s' is not a port; expected 1-65535; " PORT_SYNTAX, w[2]);
	p->port = p->target = (uint16_t)num;
	for (i = 3; i < n; i++) {
		bool is_np = !strncmp(w[i], "nodeport=", 9), is_tg = !strncmp(w[i], "target=", 7);
		const char *val = is_np ? w[i] + 9 : is_tg ? w[i] + 7 : NULL;

		if (!val)
			return bpflb_cfg_error(err, sec, "port", line,
					       "unknown option '%s'; " PORT_SYNTAX, w[i]);
		if (parse_num(val, 1, 65535, &num))
			return bpflb_cfg_error(err, sec, "port", line,
					       "'%s' is not a port; expected 1-65535", w[i]);
		if (is_np) {
			if (p->nodeport)
				return bpflb_cfg_error(err, sec, "port", line,
						       "nodeport= given twice");
			p->nodeport = (uint16_t)num;
		} else {
			p->target = (uint16_t)num;
		}
	}
	return 0;
}

static int backend_parse(const struct bpflb_cfg_section *sec, const struct svc_model *m,
			 struct svc_scratch *sc, struct svc_def *d, const char *v, int line,
			 struct svc_backend *b, struct bpflb_err *err)
{
	const char *node = NULL;

	char buf[1024], *w[SVC_MAX_PORTS + 8], *colon;
	char abuf[INET_ADDRSTRLEN];
	uint32_t num;
	int n, i;

	memset(b, 0, sizeof(*b));
	b->line = line;
	n = split_words(v, buf, sizeof(buf), w, SVC_MAX_PORTS + 8);
	if (n < 1)
		return bpflb_cfg_error(err, sec, "backend", line, "%s; " BACKEND_SYNTAX,
				       n < 0 ? "too long" : "empty");
	colon = strchr(w[0], ':');
	if (colon) {
		*colon = '\0';
		if (parse_num(colon + 1, 1, 65535, &num))
			return bpflb_cfg_error(err, sec, "backend", line,
					       "'%s' is not a port; expected ADDR:1-65535",
					       colon + 1);
		if (d->nports != 1)
			return bpflb_cfg_error(err, sec, "backend", line,
					       "ADDR:PORT needs a service with one port, this one "
					       "has %u; expected port.NAME=N for each port that "
					       "differs from its target",
					       d->nports);
		b->port = (uint16_t)num;
	}
	if (bpflb_parse_ipv4(w[0], &b->addr) || !ip_unicast(b->addr))
		return bpflb_cfg_error(err, sec, "backend", line,
				       "'%s' is not a unicast IPv4 address; " BACKEND_SYNTAX, w[0]);
	for (i = 1; i < n; i++) {
		char *eq = strchr(w[i], '=');
		const char *k = w[i], *val;

		if (!eq || !eq[1])
			return bpflb_cfg_error(err, sec, "backend", line,
					       "'%s' is not KEY=VALUE; " BACKEND_SYNTAX, w[i]);
		*eq = '\0';
		val = eq + 1;
		if (!strcmp(k, "node")) {
			if (strlen(val) >= SVC_NAME_LEN)
				return bpflb_cfg_error(err, sec, "backend", line,
						       "node name '%s' is too long", val);
			node = val;
		} else if (!strcmp(k, "state")) {
			if (!strcmp(val, "active"))
				b->state = BPFLB_BE_ACTIVE;
			else if (!strcmp(val, "terminating"))
				b->state = BPFLB_BE_TERMINATING;
			else if (!strcmp(val, "maintenance"))
				b->state = BPFLB_BE_MAINTENANCE;
			else
				return bpflb_cfg_error(err, sec, "backend", line,
						       "state '%s' is unknown; expected active, "
						       "terminating or maintenance",
						       val);
		} else if (!strcmp(k, "hostnet")) {
			if (!strcmp(val, "yes") || !strcmp(val, "true"))
				b->hostnet = true;
			else if (!strcmp(val, "no") || !strcmp(val, "false"))
				b->hostnet = false;
			else
				return bpflb_cfg_error(err, sec, "backend", line,
						       "hostnet '%s'; expected yes or no", val);
		} else if (!strncmp(k, "port.", 5)) {
			unsigned int pi;

			for (pi = 0; pi < d->nports; pi++)
				if (!strcmp(d->ports[pi].name, k + 5))
					break;
			if (pi == d->nports)
				return bpflb_cfg_error(err, sec, "backend", line,
						       "'%s': the service has no port named '%s'",
						       k, k + 5);
			if (parse_num(val, 1, 65535, &num))
				return bpflb_cfg_error(err, sec, "backend", line,
						       "%s=%s is not a port; expected 1-65535", k,
						       val);
			if (!b->pport) {
				size_t need = (size_t)(d->npport + 1) * d->nports;

				if (need > sc->pport_cap) {
					uint16_t *np = realloc(sc->pport, 2 * need * sizeof(*np));

					if (!np)
						return -ENOMEM;
					sc->pport = np;
					sc->pport_cap = 2 * need;
				}
				d->pport = sc->pport;
				memset(&d->pport[(size_t)d->npport * d->nports], 0,
				       d->nports * sizeof(*d->pport));
				b->pport = (uint16_t)++d->npport;
			}
			d->pport[(size_t)(b->pport - 1) * d->nports + pi] = (uint16_t)num;
		} else {
			return bpflb_cfg_error(err, sec, "backend", line,
					       "unknown option '%s'; " BACKEND_SYNTAX, k);
		}
	}
	if (!node)
		return bpflb_cfg_error(err, sec, "backend", line,
				       "%s has no node=; expected the name of the node it runs "
				       "on ([node] name or a [cluster-node NAME])",
				       ipstr(b->addr, abuf));
	{
		const struct svc_node *n = svc_model_node(m, node);

		if (!n)
			return bpflb_cfg_error(err, sec, "backend", line,
					       "node '%s' is unknown; expected this node's name "
					       "('%s') or a [cluster-node NAME]",
					       node, m->self.name);
		b->node = (uint16_t)(n - m->nodes);
	}
	return 0;
}

struct dup_ent {
	uint32_t addr;
	uint16_t port;
	unsigned int bi;
};

static int dup_cmp(const void *a, const void *b)
{
	const struct dup_ent *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->bi < y->bi ? -1 : x->bi > y->bi;
}

/* An address:port listed twice for one port of the service (sorting: services can be big). */
static int svc_dup_backends(const struct svc_def *d, struct bpflb_err *err)
{
	char abuf[INET_ADDRSTRLEN];
	struct dup_ent *e;
	int ret = 0;

	if (d->nbes < 2)
		return 0;
	e = calloc(d->nbes, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (unsigned int pi = 0; pi < d->nports && !ret; pi++) {
		for (unsigned int i = 0; i < d->nbes; i++)
			e[i] = (struct dup_ent){d->bes[i].addr, svc_backend_port(d, &d->bes[i], pi),
						i};
		qsort(e, d->nbes, sizeof(*e), dup_cmp);
		for (unsigned int i = 1; i < d->nbes && !ret; i++) {
			const struct svc_backend *a = &d->bes[e[i - 1].bi], *b = &d->bes[e[i].bi];

			if (e[i].addr == e[i - 1].addr && e[i].port == e[i - 1].port)
				ret = bpflb_cfg_error(err, d->sec, "backend", b->line,
						      "%s:%u is already a backend at line %d",
						      ipstr(b->addr, abuf), e[i].port, a->line);
		}
	}
	free(e);
	return ret;
}

static void scratch_free(struct svc_scratch *sc)
{
	if (!sc)
		return;
	free(sc->bes);
	free(sc->pport);
	free(sc);
}

void svc_def_free(struct svc_def *d)
{
	free(d);
}

/* What d says, lines and pointers aside, for svc_def_same(). */
static uint64_t def_hash(const struct svc_def *d)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = svc_fnv1a(h, d->name, strlen(d->name));
	h = svc_fnv1a(h, d->ns, strlen(d->ns));
	for (unsigned int i = 0; i < d->nports; i++) {
		const struct svc_port *p = &d->ports[i];

		h = svc_fnv1a(h, p->name, strlen(p->name) + 1);
		h = svc_fnv1a(h, &p->proto, sizeof(p->proto));
		h = svc_fnv1a(h, &p->port, sizeof(p->port));
		h = svc_fnv1a(h, &p->nodeport, sizeof(p->nodeport));
		h = svc_fnv1a(h, &p->target, sizeof(p->target));
	}
	for (unsigned int i = 0; i < d->nbes; i++) {
		const struct svc_backend *b = &d->bes[i];

		h = svc_fnv1a(h, &b->addr, sizeof(b->addr));
		h = svc_fnv1a(h, &b->port, sizeof(b->port));
		h = svc_fnv1a(h, &b->node, sizeof(b->node));
		h = svc_fnv1a(h, &b->state, sizeof(b->state));
		h = svc_fnv1a(h, &b->hostnet, sizeof(b->hostnet));
		for (unsigned int p = 0; p < d->nports; p++) {
			uint16_t port = svc_backend_port(d, b, p);

			h = svc_fnv1a(h, &port, sizeof(port));
		}
	}
	h = svc_fnv1a(h, d->lb_ips, d->nlb * sizeof(*d->lb_ips));
	h = svc_fnv1a(h, d->ext_ips, d->next * sizeof(*d->ext_ips));
	{
		uint32_t v[] = {d->nports,    d->nbes,	 d->nlb,     d->next,
				d->type,      d->alg,	 d->fwd,     d->alg_set,
				d->etp_local, d->reject, d->hc_port, d->host_ip};

		h = svc_fnv1a(h, v, sizeof(v));
	}
	return h;
}

/* memcpy() and memcmp() of n bytes where an empty list may have no array at all */
static void copy_n(void *dst, const void *src, size_t n)
{
	if (n)
		memcpy(dst, src, n);
}

static bool same_n(const void *a, const void *b, size_t n)
{
	return !n || !memcmp(a, b, n);
}

bool svc_def_same(const struct svc_def *a, const struct svc_def *b)
{
	if (a->hash != b->hash || a->nports != b->nports || a->nbes != b->nbes ||
	    a->nlb != b->nlb || a->next != b->next || a->type != b->type || a->alg != b->alg ||
	    a->fwd != b->fwd || a->alg_set != b->alg_set || a->etp_local != b->etp_local ||
	    a->reject != b->reject || a->hc_port != b->hc_port || a->host_ip != b->host_ip ||
	    strcmp(a->name, b->name) || strcmp(a->ns, b->ns))
		return false;
	for (unsigned int i = 0; i < a->nports; i++) {
		const struct svc_port *x = &a->ports[i], *y = &b->ports[i];

		if (strcmp(x->name, y->name) || x->proto != y->proto || x->port != y->port ||
		    x->nodeport != y->nodeport || x->target != y->target)
			return false;
	}
	for (unsigned int i = 0; i < a->nbes; i++) {
		const struct svc_backend *x = &a->bes[i], *y = &b->bes[i];

		if (x->addr != y->addr || x->port != y->port || x->node != y->node ||
		    x->state != y->state || x->hostnet != y->hostnet)
			return false;
		for (unsigned int p = 0; p < a->nports; p++)
			if (svc_backend_port(a, x, p) != svc_backend_port(b, y, p))
				return false;
	}
	return same_n(a->lb_ips, b->lb_ips, a->nlb * sizeof(*a->lb_ips)) &&
	       same_n(a->ext_ips, b->ext_ips, a->next * sizeof(*a->ext_ips));
}


/* d (parsed into scratch) copied into one allocation; d's lb_ips and ext_ips are freed. */
static struct svc_def *svc_def_pack(struct svc_def *d)
{
	size_t sz = sizeof(*d), o_ports, o_bes, o_ips, o_pp, o_str, nstr = 0;
	bool def_ns = !strcmp(d->ns, "default");
	struct svc_def *n;
	char *blob, *str;

	o_ports = sz;
	sz += d->nports * sizeof(*d->ports);
	o_bes = sz = (sz + 7) & ~(size_t)7;
	sz += d->nbes * sizeof(*d->bes);
	o_ips = sz;
	sz += (d->nlb + d->next) * sizeof(uint32_t);
	o_pp = sz;
	sz += (size_t)d->npport * d->nports * sizeof(uint16_t);
	o_str = sz;
	nstr = strlen(d->name) + 1 + (def_ns ? 0 : strlen(d->ns) + 1);
	for (unsigned int i = 0; i < d->nports; i++)
		nstr += strlen(d->ports[i].name) + 1;
	sz += nstr;
	blob = malloc(sz);
	if (!blob)
		return NULL;
	n = (struct svc_def *)blob;
	*n = *d;
	n->ports = (struct svc_port *)(blob + o_ports);
	n->bes = (struct svc_backend *)(blob + o_bes);
	n->lb_ips = (uint32_t *)(blob + o_ips);
	n->ext_ips = n->lb_ips + d->nlb;
	n->pport = (uint16_t *)(blob + o_pp);
	copy_n(n->ports, d->ports, d->nports * sizeof(*d->ports));
	copy_n(n->bes, d->bes, d->nbes * sizeof(*d->bes));
	copy_n(n->lb_ips, d->lb_ips, d->nlb * sizeof(uint32_t));
	copy_n(n->ext_ips, d->ext_ips, d->next * sizeof(uint32_t));
	copy_n(n->pport, d->pport, (size_t)d->npport * d->nports * sizeof(uint16_t));
	str = blob + o_str;
#define PUT(dst, src)                                                                              \
	do {                                                                                       \
		size_t l_ = strlen(src) + 1;                                                       \
		memcpy(str, src, l_);                                                              \
		dst = str;                                                                         \
		str += l_;                                                                         \
	} while (0)
	PUT(n->name, d->name);
	if (def_ns)
		n->ns = "default"; /* most services: no copy */
	else
		PUT(n->ns, d->ns);
	for (unsigned int i = 0; i < d->nports; i++)
		PUT(n->ports[i].name, d->ports[i].name);
#undef PUT
	n->hash = def_hash(n);
	free(d->lb_ips);
	free(d->ext_ips);
	d->lb_ips = d->ext_ips = NULL;
	return n;
}

/* A def still in scratch that failed to parse. */
static void scratch_def_drop(struct svc_def *d)
{
	free(d->lb_ips);
	free(d->ext_ips);
	memset(d, 0, sizeof(*d));
}

/* Everything one [service] section says, checked on its own. */
static int svc_parse(const struct bpflb_cfg_section *sec, const struct svc_model *m,
		     struct svc_scratch *sc, struct svc_def *d, struct bpflb_err *err)
{
	static const enum svc_type types[] = {SVC_T_NODEPORT, SVC_T_LOADBALANCER, SVC_T_EXTERNALIP,
					      SVC_T_HOSTPORT};
	const struct svc_conf *c = bpflb_cfg_conf(sec);
	const char *name = bpflb_cfg_section_name(sec);
	char abuf[INET_ADDRSTRLEN];
	unsigned int i, j, n;
	bool host_ip_set;
	int ret, line;

	memset(d, 0, sizeof(*d));
	d->sec = sec;
	if (!c) /* not a [service] of the services schema: a caller's bug */
		return bpflb_cfg_error(err, sec, NULL, 0, "not a [service] section");
	if (!name || !dns_label(name, true))
		return bpflb_cfg_error(err, sec, NULL, 0,
				       "service name '%s' is not a DNS label; expected a-z, 0-9 "
				       "and '-', starting with a letter, at most 63",
				       name ? name : "");
	snprintf(sc->name, sizeof(sc->name), "%s", name);
	d->name = sc->name;
	if (!c->ns || !dns_label(c->ns, false))
		return bpflb_cfg_error(err, sec, "namespace", 0,
				       "'%s' is not a namespace name; expected a DNS label",
				       c->ns ? c->ns : "");
	snprintf(sc->ns, sizeof(sc->ns), "%s", c->ns);
	d->ns = sc->ns;

	/* type is required: the schema refused a section without one */
	if (c->type < 0 || c->type >= (int)(sizeof(types) / sizeof(types[0])))
		return bpflb_cfg_error(err, sec, "type", 0,
				       "expected nodeport, loadbalancer, externalip or hostport");
	d->type = types[c->type];
	d->etp_local = c->etp >= 0 && !strcmp(etp_choices[c->etp], "local");
	d->reject = !strcmp(nobe_choices[c->no_backend], "reject");
	d->alg_set = c->alg >= 0;
	d->alg =
	    d->alg_set && !strcmp(alg_choices[c->alg], "maglev") ? SVC_ALG_MAGLEV : SVC_ALG_RANDOM;
	d->fwd = !strcmp(fwd_choices[c->fwd], "snat")  ? SVC_FWD_SNAT
		 : !strcmp(fwd_choices[c->fwd], "dsr") ? SVC_FWD_DSR
						       : SVC_FWD_AUTO;
	/* the schema kept it within 1-65535; 0: not written */
	d->hc_port = (uint16_t)c->hc_port;
	/*
	 * 0 reads as "not written", but host_ip = 0.0.0.0 is written: refused
	 * below for every type (a hostport needs a unicast address, the others
	 * take no host_ip at all), so ask the section when the value is 0.
	 */
	host_ip_set = c->host_ip || bpflb_cfg_has(sec, "host_ip");
	d->host_ip = c->host_ip;

	/* ports */
	n = c->port.n;
	if (!n)
		return bpflb_cfg_error(err, sec, "port", 0, "a service needs a port; " PORT_SYNTAX);
	if (n > SVC_MAX_PORTS)
		return bpflb_cfg_error(err, sec, "port", 0, "%u ports; expected at most %d", n,
				       SVC_MAX_PORTS);
	d->ports = sc->ports;
	for (i = 0; i < n; i++) {
		line = c->port.line[i];
		ret = port_parse(sec, c->port.v[i], line, &d->ports[i], sc->pname[i], err);
		if (ret)
			return ret;
		d->nports++;
		for (j = 0; j < i; j++) {
			if (!strcmp(d->ports[j].name, d->ports[i].name))
				return bpflb_cfg_error(err, sec, "port", line,
						       "port name '%s' is already used at line %d; "
						       "expected names unique in the service",
						       d->ports[i].name, d->ports[j].line);
			if (d->ports[j].proto == d->ports[i].proto &&
			    d->ports[j].port == d->ports[i].port)
				return bpflb_cfg_error(
				    err, sec, "port", line, "%u/%s is already port '%s' at line %d",
				    d->ports[i].port, proto_name(d->ports[i].proto),
				    d->ports[j].name, d->ports[j].line);
			if (d->ports[i].nodeport && d->ports[j].proto == d->ports[i].proto &&
			    d->ports[j].nodeport == d->ports[i].nodeport)
				return bpflb_cfg_error(
				    err, sec, "port", line,
				    "nodeport=%u/%s is already used by port '%s' "
				    "at line %d",
				    d->ports[i].nodeport, proto_name(d->ports[i].proto),
				    d->ports[j].name, d->ports[j].line);
		}
		if (d->type == SVC_T_NODEPORT && !d->ports[i].nodeport)
			return bpflb_cfg_error(err, sec, "port", line,
					       "port '%s' has no nodeport=; type=nodeport needs "
					       "nodeport=N on every port",
					       d->ports[i].name);
		if ((d->type == SVC_T_EXTERNALIP || d->type == SVC_T_HOSTPORT) &&
		    d->ports[i].nodeport)
			return bpflb_cfg_error(err, sec, "port", line,
					       "nodeport= is not accepted for type=%s; expected "
					       "type=nodeport or loadbalancer",
					       type_choices[c->type]);
	}

	/* addresses */
	ret = parse_ip_list(sec, "lb_ips", &c->lb_ips, &d->lb_ips, &d->nlb, err);
	if (ret)
		return ret;
	ret = parse_ip_list(sec, "external_ips", &c->external_ips, &d->ext_ips, &d->next, err);
	if (ret)
		return ret;
	if (d->type == SVC_T_LOADBALANCER && !d->nlb)
		return bpflb_cfg_error(err, sec, "lb_ips", 0,
				       "type=loadbalancer needs lb_ips; expected the load "
				       "balancer's addresses");
	if (d->type != SVC_T_LOADBALANCER && d->nlb)
		return bpflb_cfg_error(err, sec, "lb_ips", 0,
				       "lb_ips is only accepted for type=loadbalancer, this one is "
				       "type=%s; expected external_ips",
				       type_choices[c->type]);
	if (d->type == SVC_T_EXTERNALIP && !d->next)
		return bpflb_cfg_error(err, sec, "external_ips", 0,
				       "type=externalip needs external_ips");
	if (d->type == SVC_T_HOSTPORT && d->next)
		return bpflb_cfg_error(err, sec, "external_ips", 0,
				       "not accepted for type=hostport; expected host_ip");
	for (i = 0; i < d->nlb; i++)
		for (j = 0; j < d->next; j++)
			if (d->lb_ips[i] == d->ext_ips[j])
				return bpflb_cfg_error(err, sec, "external_ips", 0,
						       "%s is also in lb_ips",
						       ipstr(d->ext_ips[j], abuf));

	/* policy keys that depend on the type */
	if (d->hc_port && !d->etp_local)
		return bpflb_cfg_error(err, sec, "health_check_node_port", 0,
				       "only served with external_traffic_policy = local; "
				       "expected that, or no health_check_node_port");
	if (d->type == SVC_T_HOSTPORT) {
		if (d->hc_port)
			return bpflb_cfg_error(err, sec, "health_check_node_port", 0,
					       "not accepted for type=hostport");
		if (c->etp >= 0)
			return bpflb_cfg_error(err, sec, "external_traffic_policy", 0,
					       "not accepted for type=hostport (always local)");
	} else if (host_ip_set) {
		return bpflb_cfg_error(err, sec, "host_ip", 0,
				       "only accepted for type=hostport; expected external_ips");
	}
	if (d->type == SVC_T_HOSTPORT && host_ip_set && !ip_unicast(d->host_ip))
		return bpflb_cfg_error(err, sec, "host_ip", 0, "%s is not a unicast address",
				       ipstr(d->host_ip, abuf));

	/* backends */
	n = c->backend.n;
	if (n > SVC_MAX_BACKENDS_PER_SVC)
		return bpflb_cfg_error(err, sec, "backend", 0, "%u backends; expected at most %d",
				       n, SVC_MAX_BACKENDS_PER_SVC);
	if (d->type == SVC_T_HOSTPORT && n != 1)
		return bpflb_cfg_error(err, sec, "backend", 0,
				       "type=hostport maps to exactly one backend (the pod), "
				       "%u given",
				       n);
	if (n > sc->bes_cap) {
		struct svc_backend *nb = realloc(sc->bes, n * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		sc->bes = nb;
		sc->bes_cap = n;
	}
	d->bes = sc->bes;
	d->pport = sc->pport;
	for (i = 0; i < n; i++) {
		struct svc_backend *b = &d->bes[i];

		line = c->backend.line[i];
		ret = backend_parse(sec, m, sc, d, c->backend.v[i], line, b, err);
		d->nbes++;
		if (ret)
			return ret;
		if (b->hostnet && d->type == SVC_T_HOSTPORT)
			return bpflb_cfg_error(err, sec, "backend", line,
					       "hostnet=yes with type=hostport: a host-network pod "
					       "already owns the host port; expected no hostport "
					       "service for it");
	}
	return svc_dup_backends(d, err);
}

/* --- checks across sections ------------------------------------------------ */

struct np_use {
	uint8_t proto;
	uint16_t port;
	uint32_t addr; /* hostport: its address; 0 otherwise */
	unsigned int svc, pi;
	int kind; /* 0 nodeport, 1 health check, 2 hostport */
};

static int np_cmp(const void *a, const void *b)
{
	const struct np_use *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->svc != y->svc)
		return x->svc < y->svc ? -1 : 1;
	return x->pi < y->pi ? -1 : x->pi > y->pi;
}

static const char *np_kind(int kind)
{
	return kind == 0 ? "nodeport" : kind == 1 ? "health_check_node_port" : "hostport";
}

/* nodeports, health check ports and hostports must not meet on any node. */
static int check_node_ports(const struct svc_model *m, struct bpflb_err *err)
{
	struct np_use *u;
	size_t n = 0, cap = 0, i, j;
	int ret = 0;

	for (i = 0; i < m->nsvcs; i++)
		cap += m->svcs[i]->nports + 1;
	u = calloc(cap ? cap : 1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	for (i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = m->svcs[i];

		for (j = 0; j < d->nports; j++) {
			if (d->type == SVC_T_HOSTPORT)
				u[n++] =
				    (struct np_use){d->ports[j].proto, d->ports[j].port, d->host_ip,
						    (unsigned int)i,   (unsigned int)j,	 2};
			else if (d->ports[j].nodeport)
				u[n++] =
				    (struct np_use){d->ports[j].proto, d->ports[j].nodeport, 0,
						    (unsigned int)i,   (unsigned int)j,	     0};
		}
		if (d->hc_port)
			u[n++] = (struct np_use){IPPROTO_TCP,	  d->hc_port,	   0,
						 (unsigned int)i, UINT32_MAX >> 1, 1};
	}
	qsort(u, n, sizeof(*u), np_cmp);
	for (i = 0; i + 1 < n && !ret; i++) {
		for (j = i + 1; j < n && u[j].proto == u[i].proto && u[j].port == u[i].port; j++) {
			const struct np_use *a = &u[i], *b = &u[j];
			const struct svc_def *da = m->svcs[a->svc], *db = m->svcs[b->svc];
			const char *key = b->kind == 1 ? "health_check_node_port" : "port";
			int line = b->kind == 1 ? 0 : db->ports[b->pi].line;
			int oline = a->kind == 1 ? bpflb_cfg_line(da->sec, "health_check_node_port")
						 : da->ports[a->pi].line;

			/* two hostports only meet on the same address */
			if (a->kind == 2 && b->kind == 2 && a->addr != b->addr)
				continue;
			ret =
			    bpflb_cfg_error(err, db->sec, key, line,
					    "%s %u/%s is already the %s of [service %s] (line %d); "
					    "expected ports unique on the node",
					    np_kind(b->kind), b->port, proto_name(b->proto),
					    np_kind(a->kind), da->name, oline);
			break;
		}
	}
	free(u);
	return ret;
}

struct be_use {
	uint32_t addr;
	uint16_t port;
	unsigned int svc, bi;
};

static int be_use_cmp(const void *a, const void *b)
{
	const struct be_use *x = a, *y = b;

	if (x->addr != y->addr)
		return ntohl(x->addr) < ntohl(y->addr) ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->svc != y->svc)
		return x->svc < y->svc ? -1 : 1;
	return x->bi < y->bi ? -1 : x->bi > y->bi;
}

/*
 * A capacity of the datapath maps is exceeded: name the [lb] key that sets it,
 * at its line when the file has one, else the file and the default in force.
 */
static int __attribute__((format(printf, 4, 5)))
limit_error(const struct svc_model *m, struct bpflb_err *err, const char *key, const char *fmt,
	    ...)
{
	const char *path = "the configuration";
	char what[512];
	uint32_t limit = 0;
	va_list ap;

	for (unsigned int i = 0; i < m->nsvcs; i++)
		if (m->svcs[i]->sec) {
			path = bpflb_cfg_path(bpflb_cfg_section_config(m->svcs[i]->sec));
			break;
		}

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < sizeof(map_size_keys) / sizeof(map_size_keys[0]); i++)
		if (!strcmp(map_size_keys[i].key, key))
			limit = *(const uint32_t *)((const char *)&m->lb.sizes +
						    map_size_keys[i].off);
	if (m->lb.sec && bpflb_cfg_has(m->lb.sec, key))
		return bpflb_cfg_error(err, m->lb.sec, key, 0,
				       "%s, more than the %u the datapath maps are sized for; "
				       "raise [lb] %s (takes effect at a restart)",
				       what, limit, key);
	bpflb_err_set(err,
		      "%s: %s, more than the %u the datapath maps are sized for ([lb] %s, "
		      "default %u); set a larger [lb] %s (takes effect at a restart)",
		      path, what, limit, key, limit, key);
	return -EINVAL;
}

/*
 * One address:port is one backend (one id in the datapath) whatever service
 * lists it, so the services must agree on where it runs and in which state.
 */
static int check_backends_agree(const struct svc_model *m, struct bpflb_err *err)
{
	struct be_use *u;
	size_t n = 0, cap = 0, i, distinct = 0;
	char abuf[INET_ADDRSTRLEN];
	int ret = 0;

	for (i = 0; i < m->nsvcs; i++)
		cap += (size_t)m->svcs[i]->nbes * m->svcs[i]->nports;
	if (!cap)
		return 0;
	u = calloc(cap, sizeof(*u));
	if (!u)
		return -ENOMEM;
	for (i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = m->svcs[i];

		for (unsigned int b = 0; b < d->nbes; b++)
			for (unsigned int p = 0; p < d->nports; p++)
				u[n++] = (struct be_use){d->bes[b].addr,
							 svc_backend_port(d, &d->bes[b], p),
							 (unsigned int)i, b};
	}
	qsort(u, n, sizeof(*u), be_use_cmp);
	for (i = 0; i < n; i++)
		distinct += !i || u[i].addr != u[i - 1].addr || u[i].port != u[i - 1].port;
	if (distinct > m->lb.sizes.backends) {
		ret = limit_error(m, err, "max_backends",
				  "the services have %zu distinct backends (address:port)", distinct);
		free(u);
		return ret;
	}
	for (i = 1; i < n; i++) {
		const struct svc_def *da = m->svcs[u[i - 1].svc], *db = m->svcs[u[i].svc];
		const struct svc_backend *a = &da->bes[u[i - 1].bi], *b = &db->bes[u[i].bi];
		const char *what = NULL;

		if (u[i].addr != u[i - 1].addr || u[i].port != u[i - 1].port || a == b)
			continue;
		if (a->node != b->node)
			what = "node";
		else if (a->state != b->state)
			what = "state";
		else if (a->hostnet != b->hostnet)
			what = "hostnet";
		if (!what)
			continue;
		ret = bpflb_cfg_error(err, db->sec, "backend", b->line,
				      "%s:%u has another %s than in [service %s] (line %d); "
				      "expected one address:port to be one endpoint everywhere",
				      ipstr(b->addr, abuf), u[i].port, what, da->name, a->line);
		break;
	}
	free(u);
	return ret;
}

static int check_service_nodes(const struct svc_model *m, struct svc_def *d, struct bpflb_err *err)
{
	char abuf[INET_ADDRSTRLEN], list[256];
	unsigned int i, k;

	for (i = 0; i < d->nports; i++) {
		const struct svc_port *p = &d->ports[i];

		if (p->nodeport && (p->nodeport < m->lb.np_min || p->nodeport > m->lb.np_max))
			return bpflb_cfg_error(err, d->sec, "port", p->line,
					       "nodeport=%u is outside [lb] nodeport_range %u-%u",
					       p->nodeport, m->lb.np_min, m->lb.np_max);
	}
	if (d->hc_port && (d->hc_port < m->lb.np_min || d->hc_port > m->lb.np_max))
		return bpflb_cfg_error(err, d->sec, "health_check_node_port", 0,
				       "%u is outside [lb] nodeport_range %u-%u", d->hc_port,
				       m->lb.np_min, m->lb.np_max);
	for (i = 0; i < d->nbes; i++) {
		struct svc_backend *b = &d->bes[i];
		const struct svc_node *node = &m->nodes[b->node];
		bool found = false;

		if (!node->naddrs)
			return bpflb_cfg_error(
			    err, d->sec, "backend", b->line,
			    "[cluster-node %s] has no address; the datapath needs "
			    "it to reach this backend",
			    node->name);
		for (k = 0; k < node->naddrs; k++)
			found |= node->addrs[k] == b->addr;
		if (b->hostnet && !found)
			return bpflb_cfg_error(err, d->sec, "backend", b->line,
					       "hostnet=yes but %s is not an address of node '%s'; "
					       "expected its address or one of its "
					       "external_addresses",
					       ipstr(b->addr, abuf), node->name);
	}
	if (d->type == SVC_T_HOSTPORT) {
		const struct svc_node *node = &m->nodes[d->bes[0].node];
		bool found = false;

		list[0] = '\0';
		for (k = 0; k < node->naddrs; k++) {
			found |= node->addrs[k] == d->host_ip;
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 k ? ", " : "", ipstr(node->addrs[k], abuf));
		}
		if (d->host_ip && !found)
			return bpflb_cfg_error(err, d->sec, "host_ip", 0,
					       "%s is not an address of node '%s'; expected one "
					       "of %s",
					       ipstr(d->host_ip, abuf), node->name, list);
		/* one address only: a private one first, else the node's address */
		for (k = 0; !d->host_ip && k < node->naddrs; k++)
			if (svc_ip_private(node->addrs[k]))
				d->host_ip = node->addrs[k];
		if (!d->host_ip)
			d->host_ip = node->addrs[0];
	}
	if (!d->alg_set)
		d->alg = m->lb.alg;
	return 0;
}

bool svc_on_node(const struct svc_model *m, const struct svc_def *d)
{
	return d->type != SVC_T_HOSTPORT || svc_be_local(&d->bes[0]);
}

unsigned int svc_max_frontends(const struct svc_model *m, const struct svc_def *d)
{
	return m->self.naddrs + d->nlb + d->next + 1;
}

unsigned int svc_frontends(const struct svc_model *m, const struct svc_def *d, unsigned int pi,
			   struct bpflb_svc_key *out)
{
	const struct svc_port *p = &d->ports[pi];
	unsigned int n = 0, i;

	if (!svc_on_node(m, d))
		return 0;
	if (d->type == SVC_T_HOSTPORT) {
		out[n++] = (struct bpflb_svc_key){d->host_ip, htons(p->port), p->proto, 0};
		return n;
	}
	if (p->nodeport)
		for (i = 0; i < m->self.naddrs; i++)
			out[n++] = (struct bpflb_svc_key){m->self.addrs[i], htons(p->nodeport),
							  p->proto, 0};
	for (i = 0; i < d->nlb; i++)
		out[n++] = (struct bpflb_svc_key){d->lb_ips[i], htons(p->port), p->proto, 0};
	for (i = 0; i < d->next; i++)
		out[n++] = (struct bpflb_svc_key){d->ext_ips[i], htons(p->port), p->proto, 0};
	return n;
}

bool svc_backend_selectable(const struct svc_model *m, const struct svc_def *d,
			    const struct svc_backend *b, uint8_t state)
{
	if (state != BPFLB_BE_ACTIVE)
		return false;
	if (d->etp_local || d->type == SVC_T_HOSTPORT)
		return svc_be_local(b);
	return true;
}

struct fe_use {
	struct bpflb_svc_key key;
	unsigned int svc, pi;
};

static int fe_use_cmp(const void *a, const void *b)
{
	const struct fe_use *x = a, *y = b;
	int c = memcmp(&x->key, &y->key, sizeof(x->key));

	if (c)
		return c;
	if (x->svc != y->svc)
		return x->svc < y->svc ? -1 : 1;
	return x->pi < y->pi ? -1 : x->pi > y->pi;
}

/*
 * Two service ports must not answer the same address:port/protocol on this
 * node, and the datapath maps must be able to hold it all.
 */
static int check_frontends(struct svc_model *m, struct bpflb_err *err)
{
	size_t cap = 0, n = 0, i, svc_ports = 0, slots = 0, maglev = 0;
	char abuf[INET_ADDRSTRLEN];
	struct fe_use *u;
	int ret = 0;

	for (i = 0; i < m->nsvcs; i++)
		cap += (size_t)m->svcs[i]->nports * svc_max_frontends(m, m->svcs[i]);
	u = calloc(cap ? cap : 1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	for (i = 0; i < m->nsvcs; i++) {
		const struct svc_def *d = m->svcs[i];
		struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];

		for (unsigned int pi = 0; pi < d->nports; pi++) {
			unsigned int k, nk, active = 0;

			if (svc_max_frontends(m, d) > sizeof(keys) / sizeof(keys[0])) {
				ret = bpflb_cfg_error(err, d->sec, "external_ips", 0,
						      "too many addresses; expected at most %zu "
						      "lb_ips and external_ips together",
						      sizeof(keys) / sizeof(keys[0]) -
							  SVC_MAX_NODE_ADDRS - 1);
				goto out;
			}
			nk = svc_frontends(m, d, pi, keys);
			for (k = 0; k < nk; k++)
				u[n++] = (struct fe_use){keys[k], (unsigned int)i, pi};
			if (!nk)
				continue;
			svc_ports++;
			for (unsigned int b = 0; b < d->nbes; b++)
				active += svc_backend_selectable(m, d, &d->bes[b], d->bes[b].state);
			slots += active;
			if (d->alg == SVC_ALG_MAGLEV && active) {
				maglev++;
				if (active > m->lb.maglev_m) {
					ret = bpflb_cfg_error(
					    err, d->sec, "backend", 0,
					    "%u active backends do not fit a Maglev table of "
					    "%u entries; expected algorithm = random",
					    active, m->lb.maglev_m);
					goto out;
				}
			}
		}
	}
	qsort(u, n, sizeof(*u), fe_use_cmp);
	for (i = 1; i < n; i++) {
		const struct fe_use *a = &u[i - 1], *b = &u[i];
		const struct svc_def *da = m->svcs[a->svc], *db = m->svcs[b->svc];

		if (memcmp(&a->key, &b->key, sizeof(a->key)))
			continue;
		ret = bpflb_cfg_error(err, db->sec, "port", db->ports[b->pi].line,
				      "%s:%u/%s is already served by [service %s] port '%s' "
				      "(line %d); expected every address:port/protocol to belong "
				      "to one service port",
				      ipstr(b->key.addr, abuf), ntohs(b->key.port),
				      proto_name(b->key.proto), da->name, da->ports[a->pi].name,
				      da->ports[a->pi].line);
		goto out;
	}
	m->nfe = n;
	m->nsp = svc_ports;
	m->nslots = slots;
	m->nmaglev = maglev;
	if (n > m->lb.sizes.services)
		ret = limit_error(m, err, "max_services",
				  "the services need %zu frontends (address, port, protocol)", n);
	else if (svc_ports > m->lb.sizes.services)
		ret = limit_error(m, err, "max_services",
				  "the services have %zu service ports with a frontend on this node",
				  svc_ports);
	else if (slots > m->lb.sizes.slots)
		ret = limit_error(m, err, "max_slots",
				  "the service ports have %zu active backends together", slots);
	else if (maglev > m->lb.sizes.maglev)
		ret = limit_error(m, err, "max_maglev_services",
				  "%zu service ports use a Maglev table", maglev);
out:
	free(u);
	return ret;
}

static uint32_t name_hash(const char *name)
{
	return (uint32_t)svc_fnv1a(0xcbf29ce484222325ull, name, strlen(name));
}

/* Room for n services in the name index (rebuilt): 0 or -ENOMEM. */
static int names_reserve(struct svc_model *m, size_t n)
{
	struct svc_def **b;
	uint32_t nb = 16;

	/* a load of at most 4/5: lookups stay short, 100k names take 1 MiB */
	if (m->nbuckets && 4 * (size_t)m->nbuckets >= 5 * n)
		return 0;
	while (4 * (size_t)nb < 5 * n)
		nb *= 2;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	free(m->by_name);
	m->by_name = b;
	m->nbuckets = nb;
	for (unsigned int i = 0; i < m->nsvcs; i++) {
		uint32_t h = name_hash(m->svcs[i]->name) & (nb - 1);

		while (b[h])
			h = (h + 1) & (nb - 1);
		b[h] = m->svcs[i];
	}
	return 0;
}

/* The bucket of name: its service, or the empty bucket where it would go. */
static struct svc_def **name_bucket(const struct svc_model *m, const char *name)
{
	uint32_t mask = m->nbuckets - 1, h = name_hash(name) & mask;

	while (m->by_name[h] && strcmp(m->by_name[h]->name, name))
		h = (h + 1) & mask;
	return &m->by_name[h];
}

/* Empty the bucket of name; backward shift keeps every probe run unbroken. */
static void name_del(struct svc_model *m, const char *name)
{
	uint32_t mask = m->nbuckets - 1, i = (uint32_t)(name_bucket(m, name) - m->by_name), j;

	for (j = (i + 1) & mask; m->by_name[j]; j = (j + 1) & mask) {
		uint32_t h = name_hash(m->by_name[j]->name) & mask;

		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			m->by_name[i] = m->by_name[j];
			i = j;
		}
	}
	m->by_name[i] = NULL;
}

struct svc_def *svc_model_find(const struct svc_model *m, const char *name)
{
	return m->nbuckets ? *name_bucket(m, name) : NULL;
}

bool svc_model_same_base(const struct svc_model *a, const struct svc_model *b)
{
	struct svc_lb x = a->lb, y = b->lb;

	x.sec = y.sec = NULL;
	if (memcmp(&x, &y, sizeof(x)) || a->nnodes != b->nnodes)
		return false;
	for (unsigned int i = 0; i < a->nnodes; i++)
		if (strcmp(a->nodes[i].name, b->nodes[i].name) ||
		    a->nodes[i].naddrs != b->nodes[i].naddrs ||
		    memcmp(a->nodes[i].addrs, b->nodes[i].addrs,
			   a->nodes[i].naddrs * sizeof(a->nodes[i].addrs[0])))
			return false;
	return true;
}

static void model_idx_free(struct svc_model_idx *x);

void svc_model_free(struct svc_model *m)
{
	for (unsigned int i = 0; i < m->nsvcs; i++)
		svc_def_free(m->svcs[i]);
	free(m->svcs);
	free(m->hashes);
	free(m->nodes);
	free(m->by_name);
	model_idx_free(m->idx);
	memset(m, 0, sizeof(*m));
}

/* Parse sec against m into a def of its own allocation (*out), checked on its own. */
static int def_parse(const struct bpflb_cfg_section *sec, const struct svc_model *m,
		     struct svc_scratch **scp, struct svc_def **out, struct bpflb_err *err)
{
	struct svc_def d;
	int ret;

	*out = NULL;
	if (!*scp && !(*scp = calloc(1, sizeof(**scp))))
		return -ENOMEM;
	ret = svc_parse(sec, m, *scp, &d, err);
	if (!ret)
		ret = check_service_nodes(m, &d, err);
	if (!ret && !(*out = svc_def_pack(&d)))
		ret = -ENOMEM;
	if (ret)
		scratch_def_drop(&d);
	return ret;
}

int svc_model_build(const struct bpflb_config *cfg, struct svc_model *m, struct bpflb_err *err)
{
	const struct bpflb_cfg_section *sec;
	struct svc_scratch *sc = NULL;
	unsigned int i, n = 0;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = lb_parse(bpflb_cfg_section(cfg, "lb", 0), &m->lb, err);
	if (ret)
		goto out;
	ret = nodes_read(cfg, m, err);
	if (ret)
		goto out;
	while (bpflb_cfg_section(cfg, "service", n))
		n++;
	m->svcs = calloc(n ? n : 1, sizeof(*m->svcs));
	m->hashes = calloc(n ? n : 1, sizeof(*m->hashes));
	m->cap = n ? n : 1;
	ret = -ENOMEM;
	if (!m->svcs || !m->hashes)
		goto out;
	for (i = 0; i < n; i++) {
		sec = bpflb_cfg_section(cfg, "service", i);
		ret = def_parse(sec, m, &sc, &m->svcs[i], err);
		if (ret)
			goto out;
		m->hashes[i] = m->svcs[i]->hash;
		m->nsvcs++;
	}
	ret = names_reserve(m, m->nsvcs);
	if (ret)
		goto out;
	ret = check_node_ports(m, err);
	if (ret)
		goto out;
	ret = check_backends_agree(m, err);
	if (ret)
		goto out;
	ret = check_frontends(m, err);
out:
	scratch_free(sc);
	for (i = 0; i < m->nsvcs; i++)
		m->svcs[i]->sec = NULL;
	m->lb.sec = NULL;
	if (ret == -ENOMEM)
		bpflb_err_set(err, "out of memory");
	if (ret)
		svc_model_free(m);
	return ret;
}

/* --- runtime changes (control socket: service set / delete) ---------------- */

/*
 * Indexes of a model for changing one service without a pass over the others:
 * the nodeports (with health check ports and hostports), frontends and
 * backends of every service, as multimaps key -> def.  An entry is 16 bytes:
 * the key's low bits say what is looked up (KEY_MATCH), its high bits which
 * port or backend of the def it is (aux).  Built on the first runtime change,
 * kept by svc_model_set() after that.
 */
struct mm_ent {
	uint64_t k; /* 0: empty */
	const struct svc_def *d;
};

struct mmap {
	struct mm_ent *e;
	size_t cap, n;	/* cap: a power of two */
	uint64_t match; /* the bits of k that are the key; the others are aux */
	unsigned int aux_shift;
};

struct svc_model_idx {
	struct mmap np, fe, be;
	size_t nbe_distinct;
};

static uint64_t mm_mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

static size_t mm_home(const struct mmap *t, uint64_t k)
{
	return mm_mix(k & t->match) & (t->cap - 1);
}

/* Room for more entries at a load of at most 7/8. */
static int mm_reserve(struct mmap *t, size_t more)
{
	struct mm_ent *old = t->e;
	size_t ocap = t->cap, cap = t->cap ? t->cap : 16;

	while (8 * (t->n + more) > 7 * cap)
		cap *= 2;
	if (cap == t->cap)
		return 0;
	t->e = calloc(cap, sizeof(*t->e));
	if (!t->e) {
		t->e = old;
		return -ENOMEM;
	}
	t->cap = cap;
	for (size_t i = 0; i < ocap; i++) {
		size_t h;

		if (!old[i].k)
			continue;
		for (h = mm_home(t, old[i].k); t->e[h].k; h = (h + 1) & (cap - 1))
			;
		t->e[h] = old[i];
	}
	free(old);
	return 0;
}

/* Room reserved by mm_reserve(). */
static void mm_add(struct mmap *t, uint64_t k, const struct svc_def *d)
{
	size_t h;

	for (h = mm_home(t, k); t->e[h].k; h = (h + 1) & (t->cap - 1))
		;
	t->e[h] = (struct mm_ent){k, d};
	t->n++;
}

/* Remove (k, d); backward shift keeps every probe run unbroken. */
static void mm_del(struct mmap *t, uint64_t k, const struct svc_def *d)
{
	size_t mask = t->cap - 1, i = mm_home(t, k), j;

	while (t->e[i].k && !(t->e[i].k == k && t->e[i].d == d))
		i = (i + 1) & mask;
	if (!t->e[i].k)
		return;
	t->n--;
	for (j = (i + 1) & mask; t->e[j].k; j = (j + 1) & mask) {
		size_t h = mm_home(t, t->e[j].k);

		/* move e[j] into the hole at i unless its home lies in (i, j] */
		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			t->e[i] = t->e[j];
			i = j;
		}
	}
	t->e[i].k = 0;
}

/* Iterate the entries whose key is key (aux bits ignored): *pos starts at SIZE_MAX. */
static const struct mm_ent *mm_next(const struct mmap *t, uint64_t key, size_t *pos)
{
	size_t mask = t->cap - 1, i;

	if (!t->cap)
		return NULL;
	i = *pos == SIZE_MAX ? mm_home(t, key) : (*pos + 1) & mask;
	for (; t->e[i].k; i = (i + 1) & mask)
		if ((t->e[i].k & t->match) == (key & t->match)) {
			*pos = i;
			return &t->e[i];
		}
	return NULL;
}

static unsigned int mm_aux(const struct mmap *t, const struct mm_ent *e)
{
	return (unsigned int)((e->k & ~t->match) >> t->aux_shift);
}

/* nodeports: bit 63 | proto << 16 | port; aux (bits 32..39): kind << 6 | port index */
static uint64_t np_key(uint8_t proto, uint16_t port, unsigned int aux)
{
	return 1ull << 63 | (uint64_t)aux << 32 | (uint64_t)proto << 16 | port;
}

/* frontends: bit 63 | addr << 24 | port << 8 | proto; aux (bits 56..61): port index */
static uint64_t fe_key(const struct bpflb_svc_key *k, unsigned int pi)
{
	return 1ull << 63 | (uint64_t)pi << 56 | (uint64_t)k->addr << 24 |
	       (uint64_t)ntohs(k->port) << 8 | k->proto;
}

/* backends: addr << 16 | port (addr is never 0); aux (bits 48..63): backend index */
static uint64_t be_key(uint32_t addr, uint16_t port, unsigned int bi)
{
	return (uint64_t)bi << 48 | (uint64_t)addr << 16 | port;
}

/* kind 0 nodeport, 1 health check, 2 hostport (as check_node_ports()) */
#define NP_AUX(kind, pi) ((unsigned int)(kind) << 6 | (pi))

/* The distinct address:ports of d, each with its first backend: sorted, malloc'ed. */
struct be_key_ent {
	uint64_t key; /* be_key(addr, port, 0) */
	unsigned int bi;
};

static int bke_cmp(const void *a, const void *b)
{
	const struct be_key_ent *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->bi < y->bi ? -1 : x->bi > y->bi;
}

static int def_be_keys(const struct svc_def *d, struct be_key_ent **out, size_t *nout)
{
	size_t n = 0, j = 0;
	struct be_key_ent *v = malloc(((size_t)d->nbes * d->nports + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (unsigned int b = 0; b < d->nbes; b++)
		for (unsigned int p = 0; p < d->nports; p++)
			v[n++] = (struct be_key_ent){
			    be_key(d->bes[b].addr, svc_backend_port(d, &d->bes[b], p), 0), b};
	qsort(v, n, sizeof(*v), bke_cmp);
	for (size_t i = 0; i < n; i++)
		if (!j || v[i].key != v[j - 1].key)
			v[j++] = v[i];
	*out = v;
	*nout = j;
	return 0;
}

static size_t def_nnp(const struct svc_def *d)
{
	size_t n = d->hc_port != 0;

	for (unsigned int j = 0; j < d->nports; j++)
		n += d->type == SVC_T_HOSTPORT || d->ports[j].nodeport;
	return n;
}

static size_t def_nfe(const struct svc_model *m, const struct svc_def *d)
{
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];
	size_t n = 0;

	for (unsigned int p = 0; p < d->nports; p++)
		n += svc_frontends(m, d, p, keys);
	return n;
}

/* Put d into (add) or take it out of the indexes; room reserved by idx_reserve(). */
static int idx_add(struct svc_model_idx *x, const struct svc_model *m, const struct svc_def *d,
		   bool add)
{
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];
	struct be_key_ent *bk;
	size_t nbk;

	if (def_be_keys(d, &bk, &nbk))
		return -ENOMEM;
	for (unsigned int j = 0; j < d->nports; j++) {
		const struct svc_port *p = &d->ports[j];
		uint64_t k = 0;
		unsigned int nk = svc_frontends(m, d, j, keys);

		if (d->type == SVC_T_HOSTPORT)
			k = np_key(p->proto, p->port, NP_AUX(2, j));
		else if (p->nodeport)
			k = np_key(p->proto, p->nodeport, NP_AUX(0, j));
		if (k)
			add ? mm_add(&x->np, k, d) : mm_del(&x->np, k, d);
		for (unsigned int f = 0; f < nk; f++)
			add ? mm_add(&x->fe, fe_key(&keys[f], j), d)
			    : mm_del(&x->fe, fe_key(&keys[f], j), d);
	}
	if (d->hc_port)
		add ? mm_add(&x->np, np_key(IPPROTO_TCP, d->hc_port, NP_AUX(1, 0)), d)
		    : mm_del(&x->np, np_key(IPPROTO_TCP, d->hc_port, NP_AUX(1, 0)), d);
	for (size_t i = 0; i < nbk; i++) {
		uint64_t k = bk[i].key | be_key(0, 0, bk[i].bi);
		size_t pos = SIZE_MAX;

		if (add) {
			x->nbe_distinct += !mm_next(&x->be, k, &pos);
			mm_add(&x->be, k, d);
		} else {
			mm_del(&x->be, k, d);
			x->nbe_distinct -= !mm_next(&x->be, k, &pos);
		}
	}
	free(bk);
	return 0;
}

static void model_idx_free(struct svc_model_idx *x)
{
	if (!x)
		return;
	free(x->np.e);
	free(x->fe.e);
	free(x->be.e);
	free(x);
}

static int model_idx_build(struct svc_model *m)
{
	struct svc_model_idx *x = calloc(1, sizeof(*x));
	size_t np = 0, fe = 0, be = 0;

	if (!x)
		return -ENOMEM;
	x->np.match = ~(0xffull << 32);
	x->np.aux_shift = 32;
	x->fe.match = ~(0x3full << 56);
	x->fe.aux_shift = 56;
	x->be.match = 0xffffffffffffull;
	x->be.aux_shift = 48;
	for (unsigned int i = 0; i < m->nsvcs; i++) {
		np += def_nnp(m->svcs[i]);
		fe += def_nfe(m, m->svcs[i]);
		be += (size_t)m->svcs[i]->nbes * m->svcs[i]->nports;
	}
	if (mm_reserve(&x->np, np) || mm_reserve(&x->fe, fe) || mm_reserve(&x->be, be)) {
		model_idx_free(x);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < m->nsvcs; i++)
		if (idx_add(x, m, m->svcs[i], true)) {
			model_idx_free(x);
			return -ENOMEM;
		}
	m->idx = x;
	return 0;
}

/* What d adds to the capacity counts; an error when its Maglev table cannot hold it. */
static void def_usage(const struct svc_model *m, const struct svc_def *d, size_t *fe, size_t *sp,
		      size_t *slots, size_t *maglev, unsigned int *max_active)
{
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];

	*fe = *sp = *slots = *maglev = 0;
	*max_active = 0;
	for (unsigned int pi = 0; pi < d->nports; pi++) {
		unsigned int nk = svc_frontends(m, d, pi, keys), active = 0;

		*fe += nk;
		if (!nk)
			continue;
		(*sp)++;
		for (unsigned int b = 0; b < d->nbes; b++)
			active += svc_backend_selectable(m, d, &d->bes[b], d->bes[b].state);
		*slots += active;
		if (d->alg == SVC_ALG_MAGLEV && active) {
			(*maglev)++;
			if (active > *max_active)
				*max_active = active;
		}
	}
}

/* nodeports, health check port and hostports of nd against the other services (not od). */
static int check_set_node_ports(const struct svc_model *m, const struct svc_def *od,
				const struct svc_def *nd, struct bpflb_err *err)
{
	struct svc_model_idx *x = m->idx;

	for (unsigned int j = 0; j <= nd->nports; j++) {
		const struct mm_ent *e;
		size_t pos = SIZE_MAX;
		int kind, line;
		uint8_t proto;
		uint16_t port;
		uint32_t addr = 0;
		const char *key = "port";

		if (j == nd->nports) {
			if (!nd->hc_port)
				break;
			kind = 1, proto = IPPROTO_TCP, port = nd->hc_port, line = 0;
			key = "health_check_node_port";
		} else if (nd->type == SVC_T_HOSTPORT) {
			kind = 2, proto = nd->ports[j].proto, port = nd->ports[j].port;
			addr = nd->host_ip, line = nd->ports[j].line;
		} else if (nd->ports[j].nodeport) {
			kind = 0, proto = nd->ports[j].proto, port = nd->ports[j].nodeport;
			line = nd->ports[j].line;
		} else {
			continue;
		}
		/* within the service: a nodeport that is also its health check port */
		if (kind == 1)
			for (unsigned int o = 0; o < nd->nports; o++)
				if (nd->ports[o].nodeport == port && nd->ports[o].proto == proto)
					return bpflb_cfg_error(
					    err, nd->sec, key, line,
					    "%s %u/%s is already the %s of [service %s] (line %d); "
					    "expected ports unique on the node",
					    np_kind(kind), port, proto_name(proto), np_kind(0),
					    nd->name, nd->ports[o].line);
		while ((e = mm_next(&x->np, np_key(proto, port, 0), &pos))) {
			const struct svc_def *da = e->d;
			int akind = (int)(mm_aux(&x->np, e) >> 6),
			    api = (int)(mm_aux(&x->np, e) & 63);
			int oline = akind == 1 ? 0 : da->ports[api].line;

			if (da == od)
				continue;
			if (akind == 2 && kind == 2 && da->host_ip != addr)
				continue;
			return bpflb_cfg_error(
			    err, nd->sec, key, line,
			    "%s %u/%s is already the %s of [service %s] (line %d); "
			    "expected ports unique on the node",
			    np_kind(kind), port, proto_name(proto), np_kind(akind), da->name,
			    oline);
		}
	}
	return 0;
}

static int check_set_backends(const struct svc_model *m, const struct svc_def *od,
			      const struct svc_def *nd, struct bpflb_err *err)
{
	struct svc_model_idx *x = m->idx;
	char abuf[INET_ADDRSTRLEN];
	size_t distinct = x->nbe_distinct, n;
	struct be_key_ent *bk = NULL;
	const struct mm_ent *e;
	int ret = 0;

	/* address:ports only od uses go away */
	if (od) {
		if (def_be_keys(od, &bk, &n))
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			size_t pos = SIZE_MAX;
			bool other = false;

			while (!other && (e = mm_next(&x->be, bk[i].key, &pos)))
				other = e->d != od;
			distinct -= !other;
		}
		free(bk);
		bk = NULL;
	}
	if (nd && def_be_keys(nd, &bk, &n))
		return -ENOMEM;
	for (size_t i = 0; nd && i < n && !ret; i++) {
		const struct svc_backend *nb = &nd->bes[bk[i].bi];
		uint16_t port = (uint16_t)(bk[i].key & 0xffff);
		size_t pos = SIZE_MAX;
		bool other = false;

		while ((e = mm_next(&x->be, bk[i].key, &pos))) {
			const struct svc_backend *a;
			const char *what = NULL;

			if (e->d == od)
				continue;
			other = true;
			a = &e->d->bes[mm_aux(&x->be, e)];
			if (a->node != nb->node)
				what = "node";
			else if (a->state != nb->state)
				what = "state";
			else if (a->hostnet != nb->hostnet)
				what = "hostnet";
			if (what) {
				ret = bpflb_cfg_error(
				    err, nd->sec, "backend", nb->line,
				    "%s:%u has another %s than in [service %s] (line %d); "
				    "expected one address:port to be one endpoint everywhere",
				    ipstr(nb->addr, abuf), port, what, e->d->name, a->line);
				break;
			}
		}
		distinct += !other;
	}
	free(bk);
	if (!ret && distinct > m->lb.sizes.backends)
		ret =
		    limit_error(m, err, "max_backends",
				"the services have %zu distinct backends (address:port)", distinct);
	return ret;
}

static int check_set_frontends(const struct svc_model *m, const struct svc_def *od,
			       const struct svc_def *nd, struct bpflb_err *err)
{
	struct bpflb_svc_key keys[SVC_MAX_NODE_ADDRS + 512];
	size_t fe = m->nfe, sp = m->nsp, slots = m->nslots, maglev = m->nmaglev, a, b, c, d;
	char abuf[INET_ADDRSTRLEN];
	unsigned int max_active;

	if (od) {
		def_usage(m, od, &a, &b, &c, &d, &max_active);
		fe -= a, sp -= b, slots -= c, maglev -= d;
	}
	if (!nd)
		return 0;
	if (svc_max_frontends(m, nd) > sizeof(keys) / sizeof(keys[0]))
		return bpflb_cfg_error(err, nd->sec, "external_ips", 0,
				       "too many addresses; expected at most %zu "
				       "lb_ips and external_ips together",
				       sizeof(keys) / sizeof(keys[0]) - SVC_MAX_NODE_ADDRS - 1);
	def_usage(m, nd, &a, &b, &c, &d, &max_active);
	if (max_active > m->lb.maglev_m)
		return bpflb_cfg_error(err, nd->sec, "backend", 0,
				       "%u active backends do not fit a Maglev table of "
				       "%u entries; expected algorithm = random",
				       max_active, m->lb.maglev_m);
	fe += a, sp += b, slots += c, maglev += d;
	for (unsigned int pi = 0; pi < nd->nports; pi++) {
		unsigned int nk = svc_frontends(m, nd, pi, keys);

		for (unsigned int k = 0; k < nk; k++) {
			const struct mm_ent *e;
			size_t pos = SIZE_MAX;

			while ((e = mm_next(&m->idx->fe, fe_key(&keys[k], 0), &pos))) {
				unsigned int api = mm_aux(&m->idx->fe, e);

				if (e->d == od)
					continue;
				return bpflb_cfg_error(
				    err, nd->sec, "port", nd->ports[pi].line,
				    "%s:%u/%s is already served by [service %s] port '%s' "
				    "(line %d); expected every address:port/protocol to belong "
				    "to one service port",
				    ipstr(keys[k].addr, abuf), ntohs(keys[k].port),
				    proto_name(keys[k].proto), e->d->name, e->d->ports[api].name,
				    e->d->ports[api].line);
			}
		}
	}
	if (fe > m->lb.sizes.services)
		return limit_error(m, err, "max_services",
				   "the services need %zu frontends (address, port, protocol)", fe);
	if (sp > m->lb.sizes.services)
		return limit_error(
		    m, err, "max_services",
		    "the services have %zu service ports with a frontend on this node", sp);
	if (slots > m->lb.sizes.slots)
		return limit_error(m, err, "max_slots",
				   "the service ports have %zu active backends together", slots);
	if (maglev > m->lb.sizes.maglev)
		return limit_error(m, err, "max_maglev_services",
				   "%zu service ports use a Maglev table", maglev);
	return 0;
}

/* Out of memory half way through an index update: built again at the next change. */
static void model_idx_drop(struct svc_model *m)
{
	model_idx_free(m->idx);
	m->idx = NULL;
}

int svc_model_check_set(struct svc_model *m, const char *name, const struct bpflb_cfg_section *sec,
			struct svc_def **out, struct svc_def **old, struct bpflb_err *err)
{
	struct svc_scratch *sc = NULL;
	struct svc_def *nd = NULL, *od = svc_model_find(m, name);
	int ret = 0;

	*out = NULL;
	*old = od;
	if (!m->idx && model_idx_build(m))
		return bpflb_err_set(err, "out of memory"), -ENOMEM;
	if (sec) {
		ret = def_parse(sec, m, &sc, &nd, err);
		scratch_free(sc);
		if (ret)
			goto out;
		nd->sec = sec;
		ret = check_set_node_ports(m, od, nd, err);
		if (!ret)
			ret = check_set_backends(m, od, nd, err);
		if (!ret)
			ret = check_set_frontends(m, od, nd, err);
		nd->sec = NULL;
	}
out:
	if (ret == -ENOMEM)
		bpflb_err_set(err, "out of memory");
	if (ret) {
		svc_def_free(nd);
		return ret;
	}
	*out = nd;
	return 0;
}

int svc_model_check_def(struct svc_model *m, const char *name, struct svc_def *nd,
			struct svc_def **old, struct bpflb_err *err)
{
	struct svc_def *od = svc_model_find(m, name);
	int ret = 0;

	*old = od;
	if (!m->idx && model_idx_build(m))
		return bpflb_err_set(err, "out of memory"), -ENOMEM;
	if (nd) {
		ret = check_set_node_ports(m, od, nd, err);
		if (!ret)
			ret = check_set_backends(m, od, nd, err);
		if (!ret)
			ret = check_set_frontends(m, od, nd, err);
	}
	if (ret == -ENOMEM)
		bpflb_err_set(err, "out of memory");
	return ret;
}

/* Index of od in m, looked for from hint outwards (a change rarely moves a service far). */
static unsigned int model_pos(const struct svc_model *m, const struct svc_def *od,
			      unsigned int hint)
{
	if (hint >= m->nsvcs)
		hint = m->nsvcs ? m->nsvcs - 1 : 0;
	for (unsigned int k = 0; k < m->nsvcs; k++) {
		if (hint + k < m->nsvcs && m->svcs[hint + k] == od)
			return hint + k;
		if (k <= hint && m->svcs[hint - k] == od)
			return hint - k;
	}
	return m->nsvcs; /* not reached: od is in m */
}

int svc_model_reserve(struct svc_model *m, const struct svc_change *ch, size_t nch)
{
	size_t add = 0, np = 0, fe = 0, be = 0;

	for (size_t i = 0; i < nch; i++) {
		for (int k = 0; k < 2; k++) {
			const struct svc_def *d = k ? ch[i].new : ch[i].old;

			if (!d)
				continue;
			np += def_nnp(d);
			fe += def_nfe(m, d);
			be += (size_t)d->nbes * d->nports;
		}
		add += ch[i].new && !ch[i].old;
	}
	if (m->nsvcs + add > m->cap) {
		size_t cap = m->nsvcs + add + 16;
		struct svc_def **n = realloc(m->svcs, cap * sizeof(*n));
		uint64_t *h;

		if (!n)
			return -ENOMEM;
		m->svcs = n;
		h = realloc(m->hashes, cap * sizeof(*h));
		if (!h)
			return -ENOMEM; /* svcs has room to spare: harmless */
		m->hashes = h;
		m->cap = (unsigned int)cap;
	}
	if (names_reserve(m, m->nsvcs + add))
		return -ENOMEM;
	if (m->idx && (mm_reserve(&m->idx->np, np) || mm_reserve(&m->idx->fe, fe) ||
		       mm_reserve(&m->idx->be, be)))
		return -ENOMEM;
	return 0;
}

int svc_model_set(struct svc_model *m, struct svc_def *od, struct svc_def *nd, unsigned int pos)
{
	struct svc_change ch = {od, nd, pos};
	size_t a, b, c, d;
	unsigned int i = 0, max_active;

	/* every allocation first (room for od again too: a failed apply puts it back) */
	if (svc_model_reserve(m, &ch, 1))
		return -ENOMEM;
	if (od) {
		def_usage(m, od, &a, &b, &c, &d, &max_active);
		m->nfe -= a, m->nsp -= b, m->nslots -= c, m->nmaglev -= d;
		if (m->idx && idx_add(m->idx, m, od, false))
			model_idx_drop(m);
		i = model_pos(m, od, pos);
	}
	if (nd) {
		def_usage(m, nd, &a, &b, &c, &d, &max_active);
		m->nfe += a, m->nsp += b, m->nslots += c, m->nmaglev += d;
		if (m->idx && idx_add(m->idx, m, nd, true))
			model_idx_drop(m);
	}
	if (od && nd) {
		m->svcs[i] = nd; /* the same place in the file order */
		m->hashes[i] = nd->hash;
		*name_bucket(m, od->name) = nd;
	} else if (nd) {
		i = pos < m->nsvcs ? pos : m->nsvcs;
		memmove(&m->svcs[i + 1], &m->svcs[i], (m->nsvcs - i) * sizeof(*m->svcs));
		memmove(&m->hashes[i + 1], &m->hashes[i], (m->nsvcs - i) * sizeof(*m->hashes));
		m->hashes[i] = nd->hash;
		m->svcs[i] = nd;
		m->nsvcs++;
		*name_bucket(m, nd->name) = nd;
	} else if (od) {
		name_del(m, od->name);
		memmove(&m->svcs[i], &m->svcs[i + 1], (m->nsvcs - i - 1) * sizeof(*m->svcs));
		memmove(&m->hashes[i], &m->hashes[i + 1], (m->nsvcs - i - 1) * sizeof(*m->hashes));
		m->nsvcs--;
	}
	return 0;
}
