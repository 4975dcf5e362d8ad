// SPDX-License-Identifier: GPL-2.0-only
/*
 * Services: [lb] and [service] parsing with FILE:LINE messages, and apply on
 * real pinned maps: frontends, backends, slots, Maglev tables, only the
 * difference written, ids kept across reloads and daemon restarts, runtime
 * backend state, conntrack of removed backends.
 * The map tests need root (BPF); without it they pass after saying so.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>

#include "lb/maglev.h"
#include "lb/services_model.h"
#include "svc_fixture.h"

/* 10 lines: the line numbers of the cases below count from here. */
#define BASE                                                                                       \
	"[daemon]\n"                                                                               \
	"devices = lo\n"                                                                           \
	"[node]\n"                                                                                 \
	"name = node1\n"                                                                           \
	"address = 10.0.0.11\n"                                                                    \
	"external_addresses = 192.168.50.11\n"                                                     \
	"[cluster-node node2]\n"                                                                   \
	"address = 10.0.0.12\n"                                                                    \
	"[cluster-node node3]\n"                                                                   \
	"address = 10.0.0.13\n"
#define BASE_LINES 10

#define SVC_WEB                                                                                    \
	"[service web]\n"                                                                          \
	"type = nodeport\n"                                                                        \
	"port = http tcp 80 nodeport=30080 target=8080\n"                                          \
	"port = dns udp 53 nodeport=30053\n"                                                       \
	"backend = 10.244.1.5 node=node1\n"                                                        \
	"backend = 10.244.2.7 node=node2\n"                                                        \
	"backend = 10.244.3.9 node=node3 state=terminating\n"

#define SVC_LB                                                                                     \
	"[service shop]\n"                                                                         \
	"namespace = prod\n"                                                                       \
	"type = loadbalancer\n"                                                                    \
	"port = https tcp 443 nodeport=30443 target=8443\n"                                        \
	"lb_ips = 203.0.113.10\n"                                                                  \
	"external_ips = 198.51.100.20\n"                                                           \
	"external_traffic_policy = local\n"                                                        \
	"health_check_node_port = 32100\n"                                                         \
	"backend = 10.244.1.6 node=node1\n"                                                        \
	"backend = 10.244.2.8 node=node2\n"

static uint32_t ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* --- parsing and validation ------------------------------------------------ */

struct bad_case {
	const char *text;   /* appended to BASE */
	int line;	    /* line in text (1-based) the message starts with; 0: any */
	const char *expect; /* the message contains it */
};

/* 17 backends of one service, and a service with 9 ports: just over limits of 16. */
#define BE(n) "backend = 10.244.9." #n " node=node1\n"
#define BE17                                                                                       \
	BE(1) BE(2) BE(3) BE(4) BE(5) BE(6) BE(7) BE(8) BE(9) BE(10) BE(11) BE(12) BE(13) BE(14)   \
	    BE(15) BE(16) BE(17)
#define PORT(n) "port = p" #n " tcp 8" #n " nodeport=3008" #n "\n"
#define PORTS9 PORT(1) PORT(2) PORT(3) PORT(4) PORT(5) PORT(6) PORT(7) PORT(8) PORT(9)

static const struct bad_case bad_cases[] = {
    {"[service a]\ntype = nodeport\nport = http sctp 80 nodeport=30080\n", 3,
     "'sctp' is not a protocol; expected tcp or udp"},
    {"[service a]\ntype = nodeport\nport = http tcp 80\n", 3,
     "has no nodeport=; type=nodeport needs"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=29999\n", 3,
     "nodeport=29999 is outside [lb] nodeport_range 30000-32767"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "[service b]\ntype = nodeport\nport = web tcp 8080 nodeport=30080\n",
     6, "nodeport 30080/tcp is already the nodeport of [service a] (line 13)"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080 frob=1\n", 3,
     "unknown option 'frob=1'"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "backend = 10.244.1.5 node=node9\n",
     4, "node 'node9' is unknown; expected this node's name ('node1') or a [cluster-node"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "backend = 10.244.1.5 node=node1\nbackend = 10.244.1.5 node=node1\n",
     5, "10.244.1.5:80 is already a backend at line"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "backend = 10.244.1.5\n",
     4, "has no node="},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "backend = 10.244.1.5 node=node1 state=sleeping\n",
     4, "state 'sleeping' is unknown; expected active, terminating or maintenance"},
    {"[service a]\ntype = loadbalancer\nport = http tcp 80\n", 1, "type=loadbalancer needs lb_ips"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\nlb_ips = 203.0.113.1\n", 4,
     "lb_ips is only accepted for type=loadbalancer"},
    {"[service a]\ntype = externalip\nport = http tcp 80\nexternal_ips = 224.0.0.1\n", 4,
     "'224.0.0.1' is not a unicast IPv4 address"},
    {"[service a]\ntype = externalip\nport = http tcp 80 nodeport=30080\n"
     "external_ips = 198.51.100.1\n",
     3, "nodeport= is not accepted for type=externalip"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "health_check_node_port = 32000\n",
     4, "only served with external_traffic_policy = local"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "external_traffic_policy = local\nhealth_check_node_port = 30080\n",
     5, "health_check_node_port 30080/tcp is already the nodeport of [service a]"},
    {"[service a]\ntype = externalip\nport = http tcp 80\nexternal_ips = 198.51.100.1\n"
     "[service b]\ntype = externalip\nport = web tcp 80\nexternal_ips = 198.51.100.1\n",
     7, "198.51.100.1:80/tcp is already served by [service a] port 'http' (line 13)"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "port = http udp 80 nodeport=30081\n",
     4, "port name 'http' is already used at line"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "port = metrics tcp 9100 nodeport=30091\nbackend = 10.244.1.5:8081 node=node1\n",
     5, "ADDR:PORT needs a service with one port"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "backend = 10.244.1.5 node=node1 port.metrics=9101\n",
     4, "the service has no port named 'metrics'"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "backend = 10.244.1.5 node=node1\n"
     "[service b]\ntype = nodeport\nport = http tcp 80 nodeport=30081\n"
     "backend = 10.244.1.5 node=node2\n",
     8, "10.244.1.5:80 has another node than in [service a] (line 14)"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "backend = 10.0.0.99 node=node2 hostnet=yes\n",
     4, "hostnet=yes but 10.0.0.99 is not an address of node 'node2'"},
    {"[service a]\ntype = hostport\nport = web tcp 8081 target=80\n"
     "backend = 10.244.1.5 node=node1\nbackend = 10.244.1.6 node=node1\n",
     4, "type=hostport maps to exactly one backend (the pod), 2 given"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
     "[service hp]\ntype = hostport\nport = web tcp 30080\nbackend = 10.244.1.5 node=node1\n",
     6, "hostport 30080/tcp is already the nodeport of [service a]"},
    {"[service hp]\ntype = hostport\nport = web tcp 8081\nhost_ip = 10.0.0.12\n"
     "backend = 10.244.1.5 node=node1\n",
     4,
     "10.0.0.12 is not an address of node 'node1'; expected one of 10.0.0.11, "
     "192.168.50.11"},
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\nhost_ip = 10.0.0.11\n", 4,
     "only accepted for type=hostport"},
    /* 0.0.0.0 is written too, though the typed field reads 0 as "absent" */
    {"[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\nhost_ip = 0.0.0.0\n", 4,
     "only accepted for type=hostport"},
    {"[service Web]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n", 1,
     "service name 'Web' is not a DNS label"},
    {"[lb]\nmaglev_table_size = 16383\n", 2, "16383 is not a prime"},
    {"[lb]\nmaglev_table_size = 252\n", 2,
     "252 is not a prime; expected a prime from 251 to 131071, the nearest are 251 and 257"},
    {"[lb]\nmaglev_table_size = 131101\n", 2, "out of range; expected an integer from 251 to 131071"},
    {"[lb]\nsnat_ports = 30000-40000\n", 2, "overlaps nodeport_range 30000-32767"},
    {"[lb]\nnodeport_range = 32767-30000\n", 2, "'32767-30000' is not a port range"},
    {"[lb]\nsnat_ports = 80-1000\nnodeport_range = 30000-32767\n", 2, "80 is a privileged port"},
    {"[lb]\nct_tcp_timeout = 0\n", 2, "ct_tcp_timeout"},
    {"[lb]\ndsr_dispatch = ipip4\n", 2, "unknown value (did you mean ipip?)"},
    /* every capacity of the datapath maps names the [lb] key that sets it */
    {"[lb]\nmax_backends = 16\n[service a]\ntype = nodeport\n"
     "port = http tcp 80 nodeport=30080\n" BE17,
     2, "[lb] max_backends = 16: the services have 17 distinct backends (address:port), more "
        "than the 16 the datapath maps are sized for; raise [lb] max_backends"},
    {"[lb]\nmax_slots = 16\n[service a]\ntype = nodeport\n"
     "port = http tcp 80 nodeport=30080\n" BE17,
     2, "[lb] max_slots = 16: the service ports have 17 active backends together, more than "
        "the 16 the datapath maps are sized for; raise [lb] max_slots"},
    {"[lb]\nmax_services = 16\n[service a]\ntype = nodeport\n" PORTS9, 2,
     "[lb] max_services = 16: the services need 18 frontends (address, port, protocol), "
     "more than the 16 the datapath maps are sized for; raise [lb] max_services"},
    {"[lb]\nalgorithm = maglev\nmax_maglev_services = 1\n[service a]\ntype = nodeport\n"
     "port = http tcp 80 nodeport=30080\nport = dns udp 53 nodeport=30053\n"
     "backend = 10.244.1.5 node=node1\n",
     3, "[lb] max_maglev_services = 1: 2 service ports use a Maglev table, more than the 1 the "
        "datapath maps are sized for; raise [lb] max_maglev_services"},
    {"[lb]\nct_size = 100\n", 2, "ct_size = 100: out of range; expected an integer from 1024"},
};

START_TEST(test_bad_config)
{
	const struct bad_case *c = &bad_cases[_i];
	struct bpflb_err err = {{0}};
	struct bpflb_config *cfg;
	char text[4096], where[64];
	int ret;

	snprintf(text, sizeof(text), "%s%s", BASE, c->text);
	cfg = fx_config(text, &err);
	if (cfg) {
		ret = bpflb_services_validate(cfg, &err);
		bpflb_config_free(cfg);
		ck_assert_msg(ret == -EINVAL, "case %d accepted:\n%s", _i, c->text);
	}
	ck_assert_msg(strstr(err.msg, c->expect), "case %d: message\n  %s\nlacks\n  %s", _i,
		      err.msg, c->expect);
	if (c->line) {
		snprintf(where, sizeof(where), "test.ini:%d:", BASE_LINES + c->line);
		ck_assert_msg(!strncmp(err.msg, where, strlen(where)),
			      "case %d: message\n  %s\ndoes not start with %s", _i, err.msg, where);
	}
}
END_TEST

/* [service] sections alone, as the control socket loads `service set`. */
static struct bpflb_config *svc_only(const char *text, struct bpflb_err *err)
{
	const struct bpflb_cfg_schema schema = {"control", bpflb_services_sections};
	struct bpflb_config *cfg = NULL;
	FILE *fp = fmemopen((void *)text, strlen(text), "r");

	if (!fp)
		return NULL;
	if (bpflb_config_load_fp(fp, "service-set", &schema, 1, 0, &cfg, err))
		cfg = NULL;
	fclose(fp);
	return cfg;
}

/*
 * `service set` checks a service against the others by index lookups
 * (svc_model_check_set()), not by building the whole file: each bad case whose
 * last section is a [service] is refused the same way when that section is
 * set on the model of the sections before it.
 */
START_TEST(test_set_checks_like_file)
{
	const struct bad_case *c = &bad_cases[_i];
	struct bpflb_err err = {{0}};
	struct bpflb_config *cfg, *one;
	const char *last = strstr(c->text, "[service "), *p;
	struct svc_def *nd, *od;
	struct svc_model m;
	char text[4096];

	for (p = last; p && (p = strstr(p + 1, "\n[service ")); last = p + 1)
		;
	if (!last)
		return; /* not about a service */
	snprintf(text, sizeof(text), "%s%.*s", BASE, (int)(last - c->text), c->text);
	cfg = fx_config(text, &err);
	if (!cfg || svc_model_build(cfg, &m, &err)) {
		bpflb_config_free(cfg);
		return; /* the error is before the last service */
	}
	one = svc_only(last, &err);
	if (one) {
		const struct bpflb_cfg_section *sec = bpflb_cfg_section(one, "service", 0);

		ck_assert_msg(svc_model_check_set(&m, bpflb_cfg_section_name(sec), sec, &nd, &od,
						  &err) == -EINVAL,
			      "case %d accepted by service set:\n%s", _i, last);
	}
	{
		/* a capacity names [lb] at its line in a file; at runtime the file is gone */
		const char *core =
		    strncmp(c->expect, "[lb] ", 5) ? c->expect : strstr(c->expect, ": ") + 2;
		size_t n = strcspn(core, ";");
		char want[512];

		snprintf(want, sizeof(want), "%.*s", (int)n, core);
		ck_assert_msg(strstr(err.msg, want), "case %d: message\n  %s\nlacks\n  %s", _i,
			      err.msg, want);
	}
	bpflb_config_free(one);
	svc_model_free(&m);
	bpflb_config_free(cfg);
}
END_TEST

/* service set adds, replaces in place and deletes; the indexes follow. */
START_TEST(test_set_replace_delete)
{
	struct bpflb_err err = {{0}};
	struct bpflb_config *cfg = fx_config(BASE SVC_WEB SVC_LB, &err), *one;
	struct svc_def *nd, *od;
	struct svc_model m;

	ck_assert_msg(cfg && !svc_model_build(cfg, &m, &err), "%s", err.msg);
	/* web again, one backend less: its own nodeports are no clash */
	one = svc_only("[service web]\ntype = nodeport\n"
		       "port = http tcp 80 nodeport=30080 target=8080\n"
		       "port = dns udp 53 nodeport=30053\n"
		       "backend = 10.244.1.5 node=node1\n",
		       &err);
	ck_assert_msg(
	    !svc_model_check_set(&m, "web", bpflb_cfg_section(one, "service", 0), &nd, &od, &err),
	    "%s", err.msg);
	ck_assert_ptr_eq(od, svc_model_find(&m, "web"));
	ck_assert_int_eq(svc_model_set(&m, od, nd, 0), 0);
	svc_def_free(od);
	ck_assert_ptr_eq(svc_model_find(&m, "web"), nd);
	ck_assert_ptr_eq(m.svcs[0], nd); /* the same place */
	ck_assert_uint_eq(m.svcs[0]->nbes, 1);
	bpflb_config_free(one);
	/* a new service on a nodeport web had: refused while web has it */
	one = svc_only("[service x]\ntype = nodeport\nport = d udp 53 nodeport=30053\n", &err);
	ck_assert_int_eq(
	    svc_model_check_set(&m, "x", bpflb_cfg_section(one, "service", 0), &nd, &od, &err),
	    -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "is already the nodeport of [service web]"));
	/* web deleted: now it is free */
	ck_assert_int_eq(svc_model_check_set(&m, "web", NULL, &nd, &od, &err), 0);
	ck_assert_ptr_null(nd);
	ck_assert_int_eq(svc_model_set(&m, od, NULL, 0), 0);
	svc_def_free(od);
	ck_assert_ptr_null(svc_model_find(&m, "web"));
	ck_assert_uint_eq(m.nsvcs, 1);
	ck_assert_msg(
	    !svc_model_check_set(&m, "x", bpflb_cfg_section(one, "service", 0), &nd, &od, &err),
	    "%s", err.msg);
	ck_assert_ptr_null(od);
	ck_assert_int_eq(svc_model_set(&m, NULL, nd, m.nsvcs), 0);
	ck_assert_ptr_eq(svc_model_find(&m, "x"), nd);
	ck_assert_ptr_eq(m.svcs[1], nd); /* added last */
	bpflb_config_free(one);
	svc_model_free(&m);
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_good_config)
{
	static const char *const goods[] = {
	    BASE SVC_WEB SVC_LB,
	    BASE "[lb]\nalgorithm = maglev\nhash_seed = 7\nct_tcp_timeout = 2h\n"
		 "healthz_bind = 0.0.0.0\n" SVC_WEB,
	    /* a backend listed by two services, the same endpoint */
	    BASE SVC_WEB "[service web2]\ntype = externalip\nport = http tcp 80 target=8080\n"
			 "external_ips = 198.51.100.7\nbackend = 10.244.1.5 node=node1\n",
	    /* per-port overrides, hostnet, hostport, empty service */
	    BASE "[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
		 "port = metrics tcp 9100 nodeport=30091\n"
		 "backend = 10.244.1.5 node=node1 port.metrics=9101\n"
		 "backend = 10.0.0.12 node=node2 hostnet=yes\n"
		 "[service hp]\ntype = hostport\nport = web tcp 8081 target=80\n"
		 "backend = 10.244.1.9 node=node1\n"
		 "[service empty]\ntype = nodeport\nport = x udp 99 nodeport=30099\n"
		 "no_backend = reject\n",
	    /* a node listed as cluster-node too */
	    BASE "[cluster-node node1]\naddress = 10.0.0.11\n" SVC_WEB,
	    /* DSR with IP-in-IP, and a host-network backend forwarded by DSR */
	    BASE "[lb]\ndsr_dispatch = ipip\n"
		 "[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
		 "forwarding = dsr\nbackend = 10.0.0.12 node=node2 hostnet=yes\n",
	};

	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		struct bpflb_err err = {{0}};
		struct bpflb_config *cfg = fx_config(goods[i], &err);

		ck_assert_msg(cfg, "good %zu refused: %s", i, err.msg);
		ck_assert_msg(!bpflb_services_validate(cfg, &err), "good %zu invalid: %s", i,
			      err.msg);
		bpflb_config_free(cfg);
	}
}
END_TEST

/* --- apply on pinned maps --------------------------------------------------- */

static struct fx_maps fx;
static bool have_bpf;

static void maps_setup(void)
{
	have_bpf = fx_bpf_available() && !fx_maps_create(&fx);
	if (!have_bpf)
		fprintf(stderr, "test_services: cannot create pinned BPF maps (root?): skipping\n");
}

static void maps_teardown(void)
{
	fx_maps_destroy(&fx);
}

#define NEED_BPF()                                                                                 \
	do {                                                                                       \
		if (!have_bpf)                                                                     \
			return;                                                                    \
	} while (0)

static struct bpflb_services *open_services(void)
{
	struct bpflb_err err = {{0}};
	struct bpflb_services *s = NULL;

	ck_assert_msg(!bpflb_services_open(fx.root, NULL, &s, &err), "open: %s", err.msg);
	return s;
}

static void apply_text(struct bpflb_services *s, const char *text)
{
	struct bpflb_err err = {{0}};
	struct bpflb_config *cfg = fx_config(text, &err);

	ck_assert_msg(cfg, "config: %s", err.msg);
	ck_assert_msg(!bpflb_services_apply(s, cfg, &err), "apply: %s", err.msg);
	bpflb_config_free(cfg);
}

static bool svc_lookup(const char *addr, uint16_t port, uint8_t proto, struct bpflb_svc *v)
{
	struct bpflb_svc_key k = {ip(addr), htons(port), proto, 0};
	int fd = fx_map_fd(&fx, "bpflb_svc");
	bool ok = !bpf_map_lookup_elem(fd, &k, v);

	close(fd);
	return ok;
}

static bool be_lookup(uint32_t id, struct bpflb_backend *b)
{
	int fd = fx_map_fd(&fx, "bpflb_backends");
	bool ok = !bpf_map_lookup_elem(fd, &id, b);

	close(fd);
	return ok;
}

static uint32_t slot(uint32_t svc_id, uint32_t i)
{
	struct bpflb_slot_key k = {svc_id, i};
	int fd = fx_map_fd(&fx, "bpflb_slots");
	uint32_t id = 0;

	if (bpf_map_lookup_elem(fd, &k, &id))
		id = 0;
	close(fd);
	return id;
}

static struct bpflb_services_counts counts(struct bpflb_services *s)
{
	struct bpflb_services_counts c;

	bpflb_services_counts(s, &c);
	return c;
}

/* `service set` as the control socket does it: [service NAME] alone. */
static int set_text(struct bpflb_services *s, const char *name, const char *text,
		    struct bpflb_err *err)
{
	struct bpflb_config *one = svc_only(text, err);
	int ret;

	if (!one)
		return -EINVAL;
	ret = bpflb_services_svc_set(s, bpflb_cfg_find(one, "service", name), err);
	bpflb_config_free(one);
	return ret;
}

/*
 * A reload after a `service set` takes its changes into the applied model in
 * place (its indexes kept): services in the file's order, and the next
 * `service set` checked against what the reload added and removed.
 */
START_TEST(test_reload_patches_model)
{
	struct bpflb_err err = {{0}};
	const struct svc_model *m;
	struct bpflb_services *s;
	struct bpflb_svc v;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE SVC_WEB SVC_LB);
	/* builds the indexes */
	ck_assert_msg(!set_text(s, "x",
				"[service x]\ntype = nodeport\n"
				"port = p tcp 81 nodeport=30081\n"
				"backend = 10.244.1.5 node=node1\n",
				&err),
		      "%s", err.msg);
	/* web changed, shop removed, extra added after web */
	apply_text(s, BASE "[service web]\ntype = nodeport\n"
			   "port = http tcp 80 nodeport=30080 target=8080\n"
			   "port = dns udp 53 nodeport=30053\n"
			   "backend = 10.244.1.5 node=node1\n"
			   "[service extra]\ntype = nodeport\n"
			   "port = q tcp 82 nodeport=30082\n"
			   "backend = 10.244.1.7 node=node1\n");
	m = svc_services_model(s);
	ck_assert_uint_eq(m->nsvcs, 2);
	ck_assert_str_eq(m->svcs[0]->name, "web");
	ck_assert_str_eq(m->svcs[1]->name, "extra");
	ck_assert_uint_eq(m->svcs[0]->nbes, 1);
	ck_assert_ptr_null(svc_model_find(m, "shop"));
	ck_assert_ptr_null(svc_model_find(m, "x")); /* a reload forgets runtime services */
	ck_assert(svc_lookup("10.0.0.11", 30082, IPPROTO_TCP, &v));
	ck_assert(!svc_lookup("203.0.113.10", 443, IPPROTO_TCP, &v));
	/* extra's nodeport is taken, shop's is free again */
	ck_assert_int_eq(set_text(s, "y",
				  "[service y]\ntype = nodeport\n"
				  "port = p tcp 81 nodeport=30082\n",
				  &err),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "is already the nodeport of [service extra]"));
	ck_assert_msg(!set_text(s, "y",
				"[service y]\ntype = nodeport\n"
				"port = p tcp 443 nodeport=30443\n"
				"backend = 10.244.1.8 node=node1\n",
				&err),
		      "%s", err.msg);
	ck_assert(svc_lookup("10.0.0.11", 30443, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.count, 1);
	bpflb_services_close(s);
}
END_TEST

START_TEST(test_apply_basic)
{
	struct bpflb_services *s;
	struct bpflb_svc v;
	struct bpflb_backend b;
	struct bpflb_node_cfg node;
	uint32_t http, be5, be7, zero = 0;
	int fd;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE SVC_WEB SVC_LB);

	/* web: 2 ports x 2 node addresses; shop: nodeport x 2, LB IP, external IP */
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_svc"), 8);
	ck_assert_uint_eq(counts(s).svc_ports, 3);
	ck_assert_uint_eq(counts(s).services, 2);
	/* web: 3 endpoints x 2 target ports; shop: 2 x 1 */
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_backends"), 8);
	/* web/http 2 active, web/dns 2 active, shop/https 1 local active */
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_slots"), 5);

	http = bpflb_services_svc_id(s, "web", "http");
	ck_assert_uint_ne(http, 0);
	ck_assert(svc_lookup("10.0.0.11", 30080, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.id, http);
	ck_assert_uint_eq(v.count, 2);
	ck_assert_uint_eq(v.total, 3);
	ck_assert_uint_eq(v.flags, 0);
	ck_assert(svc_lookup("192.168.50.11", 30080, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.id, http);
	ck_assert(svc_lookup("10.0.0.11", 30053, IPPROTO_UDP, &v));
	ck_assert_uint_eq(v.id, bpflb_services_svc_id(s, "web", "dns"));
	ck_assert(!svc_lookup("10.0.0.11", 30053, IPPROTO_TCP, &v));

	/* slots in address order: 10.244.1.5, then 10.244.2.7; never the terminating one */
	be5 = bpflb_services_backend_id(s, ip("10.244.1.5"), 8080);
	be7 = bpflb_services_backend_id(s, ip("10.244.2.7"), 8080);
	ck_assert_uint_eq(slot(http, 0), be5);
	ck_assert_uint_eq(slot(http, 1), be7);
	ck_assert_uint_eq(slot(http, 2), 0);
	ck_assert(be_lookup(be5, &b));
	ck_assert_uint_eq(b.addr, ip("10.244.1.5"));
	ck_assert_uint_eq(ntohs(b.port), 8080);
	ck_assert_uint_eq(b.flags, BPFLB_BE_F_LOCAL);
	ck_assert_uint_eq(b.node_addr, ip("10.0.0.11"));
	ck_assert(be_lookup(be7, &b));
	ck_assert_uint_eq(b.flags, 0);
	ck_assert_uint_eq(b.node_addr, ip("10.0.0.12"));
	ck_assert(be_lookup(bpflb_services_backend_id(s, ip("10.244.3.9"), 53), &b));
	ck_assert_uint_eq(b.state, BPFLB_BE_TERMINATING);

	/* externalTrafficPolicy=Local: one local slot out of two backends */
	ck_assert(svc_lookup("203.0.113.10", 443, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.flags, BPFLB_SVC_F_ETP_LOCAL);
	ck_assert_uint_eq(v.count, 1);
	ck_assert_uint_eq(v.total, 2);
	ck_assert_uint_eq(slot(v.id, 0), bpflb_services_backend_id(s, ip("10.244.1.6"), 8443));
	ck_assert(svc_lookup("198.51.100.20", 443, IPPROTO_TCP, &v));
	ck_assert(svc_lookup("10.0.0.11", 30443, IPPROTO_TCP, &v));

	fd = fx_map_fd(&fx, "bpflb_node");
	ck_assert_int_eq(bpf_map_lookup_elem(fd, &zero, &node), 0);
	close(fd);
	ck_assert_uint_eq(node.addr, ip("10.0.0.11"));
	ck_assert_uint_eq(node.snat_port_min, 32768);
	ck_assert_uint_eq(node.snat_port_max, 65535);
	ck_assert_uint_eq(node.hash_seed, 0x9e3779b9u);
	bpflb_services_close(s);
}
END_TEST

/*
 * [lb] dsr_dispatch reaches the datapath as a node flag; a host-network
 * backend on another address than its node's InternalIP is marked for SNAT
 * under option dispatch only.
 */
START_TEST(test_dsr_settings)
{
	static const char *const text =
	    "[daemon]\ndevices = lo\n[node]\nname = node1\naddress = 10.0.0.11\n"
	    "[cluster-node node2]\naddress = 10.0.0.12\nexternal_addresses = 192.168.50.12\n"
	    "[lb]\ndsr_dispatch = %s\n"
	    "[service h]\ntype = nodeport\nport = http tcp 80 nodeport=30080 target=8080\n"
	    "backend = 10.0.0.12 node=node2 hostnet=yes\n"
	    "backend = 192.168.50.12 node=node2 hostnet=yes\n"
	    "backend = 10.244.2.7 node=node2\n";
	static const char *const dispatch[] = {"option", "ipip"};
	struct bpflb_services *s;
	struct bpflb_node_cfg node;
	struct bpflb_backend b;
	uint32_t zero = 0;
	char buf[1024];
	int fd;

	NEED_BPF();
	s = open_services();
	for (int i = 0; i < 2; i++) {
		snprintf(buf, sizeof(buf), text, dispatch[i]);
		apply_text(s, buf);
		fd = fx_map_fd(&fx, "bpflb_node");
		ck_assert_int_eq(bpf_map_lookup_elem(fd, &zero, &node), 0);
		close(fd);
		ck_assert_uint_eq(node.flags, i ? BPFLB_NODE_F_DSR_IPIP : 0);
		ck_assert(be_lookup(bpflb_services_backend_id(s, ip("10.0.0.12"), 8080), &b));
		ck_assert_uint_eq(b.flags, BPFLB_BE_F_HOSTNET);
		ck_assert(be_lookup(bpflb_services_backend_id(s, ip("192.168.50.12"), 8080), &b));
		ck_assert_uint_eq(b.flags, BPFLB_BE_F_HOSTNET | (i ? 0 : BPFLB_BE_F_NO_DSR));
		ck_assert_uint_eq(b.node_addr, ip("10.0.0.12"));
		ck_assert(be_lookup(bpflb_services_backend_id(s, ip("10.244.2.7"), 8080), &b));
		ck_assert_uint_eq(b.flags, 0);
	}
	bpflb_services_close(s);
}
END_TEST

START_TEST(test_apply_only_difference)
{
	struct bpflb_services *s;
	uint32_t http, dns, be5, be9;
	struct bpflb_svc v;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE SVC_WEB SVC_LB);
	ck_assert_uint_gt(counts(s).map_writes, 0);
	apply_text(s, BASE SVC_WEB SVC_LB);
	ck_assert_uint_eq(counts(s).map_writes, 0);

	http = bpflb_services_svc_id(s, "web", "http");
	dns = bpflb_services_svc_id(s, "web", "dns");
	be5 = bpflb_services_backend_id(s, ip("10.244.1.5"), 8080);
	be9 = bpflb_services_backend_id(s, ip("10.244.3.9"), 8080);

	/* 10.244.2.7 leaves: per port one count update and one slot delete, plus its
	 * two backend entries, and 4 frontends' values (count 2 -> 1) */
	apply_text(s, BASE "[service web]\ntype = nodeport\n"
			   "port = http tcp 80 nodeport=30080 target=8080\n"
			   "port = dns udp 53 nodeport=30053\n"
			   "backend = 10.244.1.5 node=node1\n"
			   "backend = 10.244.3.9 node=node3 state=terminating\n" SVC_LB);
	ck_assert_uint_eq(counts(s).map_writes, 4 + 2 + 2);
	ck_assert_uint_eq(bpflb_services_svc_id(s, "web", "http"), http);
	ck_assert_uint_eq(bpflb_services_svc_id(s, "web", "dns"), dns);
	ck_assert_uint_eq(bpflb_services_backend_id(s, ip("10.244.1.5"), 8080), be5);
	ck_assert_uint_eq(bpflb_services_backend_id(s, ip("10.244.3.9"), 8080), be9);
	ck_assert_uint_eq(bpflb_services_backend_id(s, ip("10.244.2.7"), 8080), 0);
	ck_assert(svc_lookup("10.0.0.11", 30080, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.count, 1);
	ck_assert_uint_eq(v.total, 2);
	ck_assert_uint_eq(slot(http, 0), be5);
	ck_assert_uint_eq(slot(http, 1), 0);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_backends"), 6);

	/* the terminating one becomes active: its backend entries and one slot each */
	apply_text(s, BASE "[service web]\ntype = nodeport\n"
			   "port = http tcp 80 nodeport=30080 target=8080\n"
			   "port = dns udp 53 nodeport=30053\n"
			   "backend = 10.244.1.5 node=node1\n"
			   "backend = 10.244.3.9 node=node3\n" SVC_LB);
	ck_assert_uint_eq(bpflb_services_backend_id(s, ip("10.244.3.9"), 8080), be9);
	ck_assert_uint_eq(slot(http, 1), be9);

	/* a service goes: its frontends, slots, backends; the other stays untouched */
	apply_text(s, BASE SVC_LB);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_svc"), 4);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_slots"), 1);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_backends"), 2);
	apply_text(s, BASE);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_svc"), 0);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_slots"), 0);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_backends"), 0);
	bpflb_services_close(s);
}
END_TEST

/* A restarted daemon finds its ids in the maps and writes nothing for the same config. */
START_TEST(test_restart_keeps_ids)
{
	struct bpflb_services *s;
	uint32_t http, dns, https, be5, be8;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE SVC_WEB SVC_LB);
	http = bpflb_services_svc_id(s, "web", "http");
	dns = bpflb_services_svc_id(s, "web", "dns");
	https = bpflb_services_svc_id(s, "shop", "https");
	be5 = bpflb_services_backend_id(s, ip("10.244.1.5"), 53);
	be8 = bpflb_services_backend_id(s, ip("10.244.2.8"), 8443);
	bpflb_services_close(s);

	s = open_services();
	ck_assert_uint_eq(counts(s).frontends, 8);
	ck_assert_uint_eq(counts(s).backends, 8);
	ck_assert_uint_eq(counts(s).slots, 5);
	/* new services first in the file: ids still follow the frontends */
	apply_text(
	    s,
	    BASE "[service new]\ntype = externalip\nport = p tcp 81\n"
		 "external_ips = 198.51.100.99\nbackend = 10.244.9.9 node=node2\n" SVC_LB SVC_WEB);
	ck_assert_uint_eq(bpflb_services_svc_id(s, "web", "http"), http);
	ck_assert_uint_eq(bpflb_services_svc_id(s, "web", "dns"), dns);
	ck_assert_uint_eq(bpflb_services_svc_id(s, "shop", "https"), https);
	ck_assert_uint_eq(bpflb_services_backend_id(s, ip("10.244.1.5"), 53), be5);
	ck_assert_uint_eq(bpflb_services_backend_id(s, ip("10.244.2.8"), 8443), be8);
	ck_assert_uint_gt(bpflb_services_svc_id(s, "new", "p"), https);
	ck_assert_uint_gt(bpflb_services_svc_id(s, "new", "p"), http);
	/* the new service and its backend only */
	ck_assert_uint_eq(counts(s).map_writes, 3);
	bpflb_services_close(s);

	s = open_services();
	apply_text(
	    s,
	    BASE "[service new]\ntype = externalip\nport = p tcp 81\n"
		 "external_ips = 198.51.100.99\nbackend = 10.244.9.9 node=node2\n" SVC_LB SVC_WEB);
	ck_assert_uint_eq(counts(s).map_writes, 0);
	bpflb_services_close(s);
}
END_TEST

/* A service port that gains a frontend keeps its id (reload: by name). */
START_TEST(test_ids_by_name)
{
	struct bpflb_services *s;
	uint32_t https, ids_before;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE SVC_LB);
	https = bpflb_services_svc_id(s, "shop", "https");
	apply_text(s, BASE "[service shop]\nnamespace = prod\ntype = loadbalancer\n"
			   "port = https tcp 443 target=8443\nlb_ips = 203.0.113.11\n"
			   "backend = 10.244.1.6 node=node1\n");
	ck_assert_uint_eq(bpflb_services_svc_id(s, "shop", "https"), https);
	ids_before = bpflb_services_backend_id(s, ip("10.244.1.6"), 8443);
	ck_assert_uint_ne(ids_before, 0);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_svc"), 1);
	bpflb_services_close(s);
}
END_TEST

START_TEST(test_maglev_tables)
{
	struct bpflb_services *s;
	struct bpflb_maglev_backend mb[2];
	uint32_t http, inner_id, *want, got;
	struct bpflb_svc v;
	int outer, inner;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE "[lb]\nalgorithm = maglev\nhash_seed = 99\n" SVC_WEB);
	http = bpflb_services_svc_id(s, "web", "http");
	ck_assert(svc_lookup("10.0.0.11", 30080, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.flags, BPFLB_SVC_F_MAGLEV);
	ck_assert_uint_eq(counts(s).maglev, 2);

	mb[0] = (struct bpflb_maglev_backend){bpflb_services_backend_id(s, ip("10.244.1.5"), 8080),
					      ip("10.244.1.5"), 8080};
	mb[1] = (struct bpflb_maglev_backend){bpflb_services_backend_id(s, ip("10.244.2.7"), 8080),
					      ip("10.244.2.7"), 8080};
	want = malloc(BPFLB_MAGLEV_DEFAULT_M * sizeof(*want));
	ck_assert_int_eq(bpflb_maglev_build(mb, 2, BPFLB_MAGLEV_DEFAULT_M, 99, want), 0);
	outer = fx_map_fd(&fx, "bpflb_maglev");
	ck_assert_int_eq(bpf_map_lookup_elem(outer, &http, &inner_id), 0);
	inner = bpf_map_get_fd_by_id(inner_id);
	ck_assert_int_ge(inner, 0);
	for (uint32_t j = 0; j < BPFLB_MAGLEV_DEFAULT_M; j += 97) {
		ck_assert_int_eq(bpf_map_lookup_elem(inner, &j, &got), 0);
		ck_assert_uint_eq(got, want[j]);
	}
	close(inner);

	/* the same again writes nothing, also after a restart (tables compared) */
	apply_text(s, BASE "[lb]\nalgorithm = maglev\nhash_seed = 99\n" SVC_WEB);
	ck_assert_uint_eq(counts(s).map_writes, 0);
	bpflb_services_close(s);
	s = open_services();
	apply_text(s, BASE "[lb]\nalgorithm = maglev\nhash_seed = 99\n" SVC_WEB);
	ck_assert_uint_eq(counts(s).map_writes, 0);

	/* another seed: new tables swapped in, nothing else */
	apply_text(s, BASE "[lb]\nalgorithm = maglev\nhash_seed = 100\n" SVC_WEB);
	ck_assert_uint_eq(counts(s).map_writes, 2 + 1); /* two tables, node cfg */

	/* back to random: flags first, then the tables go */
	apply_text(s, BASE SVC_WEB);
	ck_assert(svc_lookup("10.0.0.11", 30080, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.flags, 0);
	ck_assert_int_ne(bpf_map_lookup_elem(outer, &http, &inner_id), 0);
	ck_assert_uint_eq(counts(s).maglev, 0);
	close(outer);
	free(want);
	bpflb_services_close(s);
}
END_TEST

START_TEST(test_hostport)
{
	static const char *base =
	    "[daemon]\ndevices = lo\n[node]\nname = node1\naddress = 45.0.0.11\n"
	    "external_addresses = 10.1.0.11\n[cluster-node node2]\naddress = 10.0.0.12\n";
	struct bpflb_services *s;
	struct bpflb_svc v;
	char text[2048];

	NEED_BPF();
	s = open_services();
	snprintf(text, sizeof(text),
		 "%s[service hp]\ntype = hostport\nport = web tcp 8081 target=80\n"
		 "backend = 10.244.1.9 node=node1\n"
		 "[service hp2]\ntype = hostport\nport = web tcp 8082 target=80\n"
		 "backend = 10.244.2.9 node=node2\n",
		 base);
	apply_text(s, text);
	/* the private address wins over the public InternalIP; node2's hostport is not here */
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_svc"), 1);
	ck_assert(svc_lookup("10.1.0.11", 8081, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.flags, BPFLB_SVC_F_HOSTPORT);
	ck_assert_uint_eq(v.count, 1);
	ck_assert_uint_eq(slot(v.id, 0), bpflb_services_backend_id(s, ip("10.244.1.9"), 80));
	ck_assert_uint_eq(bpflb_services_backend_id(s, ip("10.244.2.9"), 80), 0);

	/* host_ip given: that one */
	snprintf(text, sizeof(text),
		 "%s[service hp]\ntype = hostport\nport = web tcp 8081 target=80\n"
		 "host_ip = 45.0.0.11\nbackend = 10.244.1.9 node=node1\n",
		 base);
	apply_text(s, text);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_svc"), 1);
	ck_assert(svc_lookup("45.0.0.11", 8081, IPPROTO_TCP, &v));
	bpflb_services_close(s);
}
END_TEST

START_TEST(test_backend_set_state)
{
	struct bpflb_err err = {{0}};
	struct bpflb_services *s;
	struct bpflb_backend b;
	struct bpflb_svc v;
	uint32_t http, be5;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE SVC_WEB);
	http = bpflb_services_svc_id(s, "web", "http");
	be5 = bpflb_services_backend_id(s, ip("10.244.1.5"), 8080);

	ck_assert(!bpflb_services_backend_set_state(s, ip("10.244.1.5"), 0, BPFLB_BE_MAINTENANCE,
						    false, &err));
	ck_assert(svc_lookup("10.0.0.11", 30080, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.count, 1);
	ck_assert_uint_ne(slot(http, 0), be5);
	ck_assert(be_lookup(be5, &b));
	ck_assert_uint_eq(b.state, BPFLB_BE_MAINTENANCE);
	ck_assert_uint_eq(bpflb_services_backend_id(s, ip("10.244.1.5"), 8080), be5);

	/* kept across a reload; a port-specific override beats the address-wide one */
	apply_text(s, BASE SVC_WEB);
	ck_assert(be_lookup(be5, &b));
	ck_assert_uint_eq(b.state, BPFLB_BE_MAINTENANCE);
	ck_assert(!bpflb_services_backend_set_state(s, ip("10.244.1.5"), 8080, BPFLB_BE_ACTIVE,
						    false, &err));
	ck_assert(be_lookup(be5, &b));
	ck_assert_uint_eq(b.state, BPFLB_BE_ACTIVE);
	ck_assert(be_lookup(bpflb_services_backend_id(s, ip("10.244.1.5"), 53), &b));
	ck_assert_uint_eq(b.state, BPFLB_BE_MAINTENANCE);

	/* a backend the configuration does not have */
	ck_assert_int_eq(
	    bpflb_services_backend_set_state(s, ip("10.9.9.9"), 0, BPFLB_BE_ACTIVE, false, &err),
	    -ENOENT);
	ck_assert_msg(strstr(err.msg, "no backend 10.9.9.9 in the configuration"), "%s", err.msg);
	ck_assert_int_eq(
	    bpflb_services_backend_set_state(s, ip("10.244.1.5"), 81, BPFLB_BE_ACTIVE, false, &err),
	    -ENOENT);
	ck_assert_msg(strstr(err.msg, "no backend 10.244.1.5:81 in"), "%s", err.msg);

	/* cleared: back to the configured states */
	ck_assert(!bpflb_services_backend_set_state(s, ip("10.244.1.5"), 8080, 0, true, &err));
	ck_assert(!bpflb_services_backend_set_state(s, ip("10.244.1.5"), 0, 0, true, &err));
	ck_assert(svc_lookup("10.0.0.11", 30080, IPPROTO_TCP, &v));
	ck_assert_uint_eq(v.count, 2);
	ck_assert_uint_eq(slot(http, 0), be5);
	bpflb_services_close(s);
}
END_TEST

/* Conntrack entries of a backend that was removed go with the next GC. */
START_TEST(test_gc_removed_backend)
{
	struct bpflb_services *s;
	struct bpflb_ct_gc_stats st;
	struct bpflb_ct_key k = {0};
	struct bpflb_ct_val v = {0};
	uint64_t now = bpflb_mono_ns();
	int ct;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE SVC_WEB);
	ct = fx_map_fd(&fx, "bpflb_ct");
	k = (struct bpflb_ct_key){ip("192.0.2.1"),
				  ip("10.0.0.11"),
				  htons(5000),
				  htons(30080),
				  IPPROTO_TCP,
				  BPFLB_CT_FWD,
				  0};
	v.last_seen = now;
	v.addr = ip("10.244.2.7");
	v.port = htons(8080);
	v.state = BPFLB_CT_ESTABLISHED;
	v.nat_addr = ip("10.0.0.11");
	v.nat_port = htons(45000);
	v.svc_id = bpflb_services_svc_id(s, "web", "http");
	v.backend_id = bpflb_services_backend_id(s, ip("10.244.2.7"), 8080);
	ck_assert_int_eq(bpf_map_update_elem(ct, &k, &v, BPF_ANY), 0);

	ck_assert_int_eq(bpflb_services_ct_gc(s, now, &st), 0);
	ck_assert_uint_eq(st.scanned, 1);
	ck_assert_uint_eq(st.orphaned, 0);

	apply_text(s, BASE "[service web]\ntype = nodeport\n"
			   "port = http tcp 80 nodeport=30080 target=8080\n"
			   "port = dns udp 53 nodeport=30053\n"
			   "backend = 10.244.1.5 node=node1\n");
	ck_assert_int_eq(bpflb_services_ct_gc(s, now, &st), 0);
	ck_assert_uint_eq(st.orphaned, 1);
	ck_assert_int_ne(bpf_map_lookup_elem(ct, &k, &v), 0);
	close(ct);
	bpflb_services_close(s);
}
END_TEST

/* A configuration error leaves maps and ids exactly as they were. */
START_TEST(test_apply_error_changes_nothing)
{
	struct bpflb_err err = {{0}};
	struct bpflb_services *s;
	struct bpflb_config *cfg;

	NEED_BPF();
	s = open_services();
	apply_text(s, BASE SVC_WEB);
	/* passes the schema, fails across sections (unknown node) */
	cfg = fx_config(BASE SVC_WEB "[service b]\ntype = nodeport\nport = x tcp 1 nodeport=30001\n"
				     "backend = 10.244.7.7 node=nowhere\n",
			&err);
	ck_assert_msg(cfg, "%s", err.msg);
	ck_assert_int_eq(bpflb_services_apply(s, cfg, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "node 'nowhere' is unknown"), "%s", err.msg);
	bpflb_config_free(cfg);
	ck_assert_uint_eq(fx_map_count(&fx, "bpflb_svc"), 4);
	ck_assert_uint_eq(counts(s).frontends, 4);
	bpflb_services_close(s);
}
END_TEST

/*
 * A map write that fails half way (bpflb_svc full) leaves a consistent mix;
 * the next apply reads the maps again and converges, with the same ids.
 */
START_TEST(test_failed_write_resyncs)
{
	struct bpflb_err err = {{0}};
	struct bpflb_services *s;
	struct bpflb_config *cfg;
	struct fx_maps small;
	uint32_t http;

	NEED_BPF();
	ck_assert_int_eq(fx_maps_create_sized(&small, 6), 0);
	ck_assert(!bpflb_services_open(small.root, NULL, &s, &err));
	/* web alone: 4 frontends */
	cfg = fx_config(BASE SVC_WEB, &err);
	ck_assert(!bpflb_services_apply(s, cfg, &err));
	bpflb_config_free(cfg);
	http = bpflb_services_svc_id(s, "web", "http");

	/* + shop: 8 frontends do not fit into 6 */
	cfg = fx_config(BASE SVC_WEB SVC_LB, &err);
	ck_assert_int_ne(bpflb_services_apply(s, cfg, &err), 0);
	ck_assert_msg(strstr(err.msg, "into bpflb_svc"), "%s", err.msg);
	bpflb_config_free(cfg);

	/* shop without its external IP: 7... still too many; without node ports: 6 */
	cfg = fx_config(BASE SVC_WEB
			"[service shop]\ntype = loadbalancer\n"
			"port = https tcp 443 target=8443\nlb_ips = 203.0.113.10\n"
			"external_ips = 198.51.100.20\nbackend = 10.244.1.6 node=node1\n",
			&err);
	ck_assert_msg(!bpflb_services_apply(s, cfg, &err), "%s", err.msg);
	bpflb_config_free(cfg);
	ck_assert_uint_eq(bpflb_services_svc_id(s, "web", "http"), http);
	ck_assert_uint_eq(fx_map_count(&small, "bpflb_svc"), 6);
	ck_assert_uint_eq(fx_map_count(&small, "bpflb_backends"), 7);
	ck_assert_uint_eq(fx_map_count(&small, "bpflb_slots"), 5);
	bpflb_services_close(s);
	fx_maps_destroy(&small);
}
END_TEST

/*
 * [lb] reads the same whether the engine filled it (a file without [lb]) or
 * the file's schema has none (bpflb_lb_conf(NULL)): the defaults in
 * services_config.c agree with the keys' declared defaults.
 */
START_TEST(test_lb_defaults_match_schema)
{
	struct bpflb_err err = {{0}};
	struct bpflb_config *cfg =
	    svc_only("[service a]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n", &err);
	const struct bpflb_lb_conf *f, *d = bpflb_lb_conf(NULL);

	ck_assert_msg(cfg, "%s", err.msg);
	f = bpflb_lb_conf(cfg);
	ck_assert_ptr_ne(f, d);
	ck_assert_int_eq(f->algorithm, d->algorithm);
	ck_assert_uint_eq(f->maglev_table_size, d->maglev_table_size);
	ck_assert_uint_eq(f->hash_seed, d->hash_seed);
	ck_assert_str_eq(f->snat_ports, d->snat_ports);
	ck_assert_str_eq(f->nodeport_range, d->nodeport_range);
	ck_assert_uint_eq(f->ct_tcp_timeout, d->ct_tcp_timeout);
	ck_assert_uint_eq(f->ct_tcp_syn_timeout, d->ct_tcp_syn_timeout);
	ck_assert_uint_eq(f->ct_tcp_close_timeout, d->ct_tcp_close_timeout);
	ck_assert_uint_eq(f->ct_udp_timeout, d->ct_udp_timeout);
	ck_assert_uint_eq(f->ct_gc_interval, d->ct_gc_interval);
	ck_assert_uint_eq(f->healthz_bind, d->healthz_bind);
	ck_assert_int_eq(f->dsr_dispatch, d->dsr_dispatch);
	ck_assert_uint_eq(f->events_per_sec, d->events_per_sec);
	ck_assert_mem_eq(&f->sizes, &d->sizes, sizeof(f->sizes));
	bpflb_config_free(cfg);
}
END_TEST

/*
 * A service's repeated keys are read from its typed struct: with thousands of
 * backends, an error about the last one still names its own line.
 */
START_TEST(test_many_backends_line)
{
	enum { N = 20000 };
	struct bpflb_err err = {{0}};
	struct svc_model m;
	struct bpflb_config *cfg;
	size_t len = 256 + (size_t)N * 48, off;
	char *text = malloc(len), want[64];

	ck_assert_ptr_nonnull(text);
	off = (size_t)snprintf(text, len,
			       BASE "[service big]\ntype = nodeport\nport = http tcp 80 "
				    "nodeport=30080\n");
	for (int i = 0; i < N - 1; i++)
		off += (size_t)snprintf(text + off, len - off, "backend = 10.%d.%d.%d node=node1\n",
					1 + i / 65536, (i / 256) % 256, i % 256);
	/* BASE, three lines, N - 1 backends, then this one */
	off += (size_t)snprintf(text + off, len - off, "backend = 10.250.0.1 node=nowhere\n");
	cfg = fx_config(text, &err);
	free(text);
	ck_assert_msg(cfg, "%s", err.msg);
	ck_assert_int_ne(svc_model_build(cfg, &m, &err), 0);
	snprintf(want, sizeof(want), ":%d: [service big] backend = ", BASE_LINES + 3 + N);
	ck_assert_msg(strstr(err.msg, want), "%s lacks %s", err.msg, want);
	svc_model_free(&m);
	bpflb_config_free(cfg);
}
END_TEST

static Suite *services_suite(void)
{
	Suite *s = suite_create("services");
	TCase *tc = tcase_create("config");
	TCase *tm = tcase_create("maps");

	tcase_add_loop_test(tc, test_bad_config, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_good_config);
	tcase_add_loop_test(tc, test_set_checks_like_file, 0,
			    sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_set_replace_delete);
	tcase_add_test(tc, test_lb_defaults_match_schema);
	tcase_add_test(tc, test_many_backends_line);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tm, maps_setup, maps_teardown);
	tcase_set_timeout(tm, 60);
	tcase_add_test(tm, test_apply_basic);
	tcase_add_test(tm, test_reload_patches_model);
	tcase_add_test(tm, test_dsr_settings);
	tcase_add_test(tm, test_apply_only_difference);
	tcase_add_test(tm, test_restart_keeps_ids);
	tcase_add_test(tm, test_ids_by_name);
	tcase_add_test(tm, test_maglev_tables);
	tcase_add_test(tm, test_hostport);
	tcase_add_test(tm, test_backend_set_state);
	tcase_add_test(tm, test_gc_removed_backend);
	tcase_add_test(tm, test_apply_error_changes_nothing);
	tcase_add_test(tm, test_failed_write_resyncs);
	suite_add_tcase(s, tm);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(services_suite());
	int failed;

	fx_cleanup_run();
	srunner_run_all(sr, CK_NORMAL);
	fx_cleanup_run();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
