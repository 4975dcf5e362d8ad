// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fixtures of the policy datapath: policies are compiled from YAML against the
 * test scene (policy_scene.h) and written into the maps by the same code the
 * plugin uses (pol_maps_write); packets built here go through policy_in or
 * policy_out with BPF_PROG_TEST_RUN.  Checked: the verdict (TC_ACT_OK: passed
 * on, TC_ACT_SHOT: dropped), the flow events read back from bpflb_events (a
 * perf buffer), the verdict counters, per-rule counters, bpflb_drops, and the
 * policy conntrack.
 *
 * Each test loads the skeleton into a fresh pin root under /sys/fs/bpf and
 * removes it afterwards.  Runs in a network namespace of its own, pinned to one
 * CPU (events and per-CPU counters are then this CPU's).
 *
 * Needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN); exits 77 (skip) otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpflb/lb.h>
#include <bpflb/stages.h>

#include "policy_model.h"
#include "policy_bpf.skel.h"

static char msg[POL_ERR_MAX];
#include "policy_scene.h"
#include "bpf_fixture.h"


static char pin_base[PATH_MAX / 2];
static char pin_dir[PATH_MAX];
static struct policy_bpf *skel;
static struct perf_buffer *pb;
static struct world w;
static bool built;
static uint32_t gen;
static int ncpus;

#define MAX_EVENTS 64
static struct bpflb_flow_event events[MAX_EVENTS];
static int nevents;

/* --- pins, maps ---------------------------------------------------------------- */

static void on_event(void *ctx, int cpu, void *data, __u32 size)
{
	if (nevents < MAX_EVENTS && size >= sizeof(struct bpflb_flow_event))
		memcpy(&events[nevents++], data, sizeof(struct bpflb_flow_event));
}

static void drain_events(void)
{
	nevents = 0;
	ck_assert_int_ge(perf_buffer__consume(pb), 0);
}

/* Compile yaml against the scene and switch the datapath to it. */
static void policy(const char *yaml, const char *self_labels, bool audit)
{
	struct pol_map_fds fds = {
	    .subj = bpf_map__fd(skel->maps.bpflb_pol_subj),
	    .ident = bpf_map__fd(skel->maps.bpflb_pol_ident),
	    .rules = bpf_map__fd(skel->maps.bpflb_pol_rules),
	    .cfg = bpf_map__fd(skel->maps.bpflb_pol_cfg),
	};
	struct pol_cfg cfg = {
	    .tcp_timeout_ns = 3600ull * 1000000000,
	    .tcp_syn_timeout_ns = 60ull * 1000000000,
	    .tcp_close_timeout_ns = 10ull * 1000000000,
	    .other_timeout_ns = 60ull * 1000000000,
	};
	const char *what;
	int ret;

	if (built)
		unbuild(&w);
	build(&w, yaml, self_labels, audit);
	built = true;
	ret = pol_maps_write(&fds, &w.c, &cfg, &gen, &what);
	ck_assert_msg(!ret, "%s: %s", what, strerror(-ret));
}

static struct pol_counters counters(int dir)
{
	struct pol_counters v[ncpus], s = {0};
	uint32_t key = dir;

	ck_assert_int_eq(bpf_map_lookup_elem(bpf_map__fd(skel->maps.bpflb_pol_cnt), &key, v), 0);
	for (int i = 0; i < ncpus; i++) {
		s.allowed += v[i].allowed;
		s.audit += v[i].audit;
		s.denied += v[i].denied;
		s.reply += v[i].reply;
		s.unselected += v[i].unselected;
	}
	return s;
}

static struct pol_rule_stats rule_stats(uint32_t id)
{
	struct pol_rule_stats v[ncpus], s = {0};

	if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.bpflb_pol_rstat), &id, v))
		return s;
	for (int i = 0; i < ncpus; i++) {
		s.allowed += v[i].allowed;
		s.audit += v[i].audit;
		s.denied += v[i].denied;
	}
	return s;
}

static uint64_t policy_drops(void)
{
	uint64_t v[ncpus], sum = 0;
	uint32_t reason = BPFLB_DROP_POLICY;

	ck_assert_int_eq(bpf_map_lookup_elem(bpf_map__fd(skel->maps.bpflb_drops), &reason, v), 0);
	for (int i = 0; i < ncpus; i++)
		sum += v[i];
	return sum;
}

static int ct_has(uint8_t proto, const char *saddr, uint16_t sport, const char *daddr,
		  uint16_t dport)
{
	struct pol_ct_key k = {
	    .saddr = ip(saddr),
	    .daddr = ip(daddr),
	    .sport = htons(sport),
	    .dport = htons(dport),
	    .proto = proto,
	};
	struct pol_ct_val v;

	return !bpf_map_lookup_elem(bpf_map__fd(skel->maps.bpflb_pol_ct), &k, &v);
}

/* --- packets ------------------------------------------------------------------- */

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

struct flow {
	uint8_t proto;
	const char *saddr;
	uint16_t sport; /* ICMP: the echo identifier */
	const char *daddr;
	uint16_t dport; /* ICMP: type << 8 | code */
	uint8_t tcp_flags;
	uint16_t frag_off; /* host order, flags + offset */
};

static size_t build_pkt(uint8_t *buf, const struct flow *f)
{
	struct ethhdr *eth = (void *)buf;
	struct iphdr *iph = (void *)(eth + 1);
	uint8_t *l4 = (uint8_t *)(iph + 1);
	size_t l4len = f->proto == IPPROTO_TCP ? 20 + 8 : 8 + 8;

	memset(buf, 0, sizeof(*eth) + sizeof(*iph) + l4len);
	memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	iph->version = 4;
	iph->ihl = 5;
	iph->tot_len = htons(sizeof(*iph) + l4len);
	iph->frag_off = htons(f->frag_off ? f->frag_off : 0x4000);
	iph->ttl = 64;
	iph->protocol = f->proto;
	iph->saddr = ip(f->saddr);
	iph->daddr = ip(f->daddr);
	iph->check = htons(fold(sum16(iph, sizeof(*iph), 0)));
	if (f->proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		th->source = htons(f->sport);
		th->dest = htons(f->dport);
		th->doff = 5;
		l4[13] = f->tcp_flags;
	} else if (f->proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)l4;

		uh->source = htons(f->sport);
		uh->dest = htons(f->dport);
		uh->len = htons(l4len);
	} else { /* ICMP */
		l4[0] = f->dport >> 8;
		l4[1] = f->dport & 0xff;
		l4[4] = f->sport >> 8;
		l4[5] = f->sport & 0xff;
	}
	return sizeof(*eth) + sizeof(*iph) + l4len;
}

static int run(struct bpf_program *prog, const struct flow *f, uint32_t cb_flags)
{
	struct __sk_buff ctx = {.ifindex = 1, .ingress_ifindex = 1};
	uint8_t in[256], out[256];
	size_t len = build_pkt(in, f);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = 1);

	ctx.cb[BPFLB_CB_FLAGS] = cb_flags;
	ck_assert_msg(!bpf_prog_test_run_opts(bpf_program__fd(prog), &o), "BPF_PROG_TEST_RUN: %s",
		      strerror(errno));
	/* Policy never rewrites a packet. */
	ck_assert_uint_eq(o.data_size_out, len);
	ck_assert_mem_eq(out, in, len);
	return o.retval;
}

static int in(const struct flow *f)
{
	return run(skel->progs.policy_in, f, 0);
}

static int out(const struct flow *f)
{
	return run(skel->progs.policy_out, f, 0);
}

static struct flow tcp(const char *s, uint16_t sp, const char *d, uint16_t dp, uint8_t flags)
{
	return (struct flow){.proto = IPPROTO_TCP,
			     .saddr = s,
			     .sport = sp,
			     .daddr = d,
			     .dport = dp,
			     .tcp_flags = flags};
}

static struct flow udp(const char *s, uint16_t sp, const char *d, uint16_t dp)
{
	return (struct flow){
	    .proto = IPPROTO_UDP, .saddr = s, .sport = sp, .daddr = d, .dport = dp};
}

static struct flow icmp(const char *s, const char *d, uint8_t type, uint16_t id)
{
	return (struct flow){.proto = IPPROTO_ICMP,
			     .saddr = s,
			     .sport = id,
			     .daddr = d,
			     .dport = (uint16_t)type << 8};
}

/* --- fixture -------------------------------------------------------------------- */

static void setup(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	int err;

	snprintf(pin_dir, sizeof(pin_dir), "%s/t-XXXXXX", pin_base);
	ck_assert_ptr_nonnull(mkdtemp(pin_dir));
	opts.pin_root_path = pin_dir;
	skel = policy_bpf__open_opts(&opts);
	ck_assert_ptr_nonnull(skel);
	err = policy_bpf__load(skel);
	ck_assert_msg(!err, "loading policy.bpf.o: %d (verifier log above)", err);
	pb = perf_buffer__new(bpf_map__fd(skel->maps.bpflb_events), 8, on_event, NULL, NULL, NULL);
	ck_assert_msg(pb, "perf_buffer__new: %s", strerror(errno));
	gen = 0;
	nevents = 0;
}

static void teardown(void)
{
	if (built)
		unbuild(&w);
	built = false;
	perf_buffer__free(pb);
	pb = NULL;
	policy_bpf__destroy(skel);
	skel = NULL;
	rm_tree(pin_dir);
	pin_dir[0] = 0;
}

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
#define CP_LABELS "node-role.kubernetes.io/control-plane="
#define HDR	  "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n"

/* --- tests ----------------------------------------------------------------------- */

START_TEST(test_allow)
{
	struct flow f = tcp(WORLD_IP, 40000, NODE1, 22, F_SYN);

	policy(HDR
	       "metadata: {name: ssh}\nspec:\n  nodeSelector: {}\n  ingress:\n"
	       "  - fromEntities: [world]\n    toPorts: [{ports: [{port: '22', protocol: TCP}]}]\n",
	       "", false);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	ck_assert_uint_eq(counters(POL_DIR_IN).allowed, 1);
	ck_assert_uint_eq(rule_stats(POL_RULE_ID(1, POL_SEC_INGRESS, 1)).allowed, 1);
	ck_assert(ct_has(IPPROTO_TCP, WORLD_IP, 40000, NODE1, 22));
	drain_events();
	ck_assert_int_eq(nevents, 0);
	/* The node's other address is the host too. */
	f.daddr = NODE1_EXT;
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	ck_assert_uint_eq(counters(POL_DIR_IN).allowed, 2);
}
END_TEST

START_TEST(test_deny)
{
	struct flow f = tcp(WORLD_IP, 40000, NODE1, 22, F_SYN);

	policy(HDR "metadata: {name: deny-ssh}\nspec:\n  nodeSelector: {}\n"
		   "  ingress:\n  - fromEntities: [all]\n"
		   "  ingressDeny:\n  - fromEntities: [world]\n"
		   "    toPorts: [{ports: [{port: '22', protocol: TCP}]}]\n",
	       "", false);
	ck_assert_int_eq(in(&f), TC_ACT_SHOT);
	drain_events();
	ck_assert_int_eq(nevents, 1);
	ck_assert_uint_eq(events[0].verdict, BPFLB_VERDICT_DROPPED);
	ck_assert_uint_eq(events[0].reason, BPFLB_DROP_POLICY);
	ck_assert_uint_eq(events[0].stage, BPFLB_STAGE_IN_POLICY);
	ck_assert_uint_eq(events[0].rule_id, POL_RULE_ID(1, POL_SEC_INGRESS_DENY, 1));
	ck_assert_uint_eq(events[0].saddr, ip(WORLD_IP));
	ck_assert_uint_eq(events[0].dport, htons(22));
	ck_assert_uint_eq(policy_drops(), 1);
	ck_assert_uint_eq(counters(POL_DIR_IN).denied, 1);
	ck_assert_uint_eq(rule_stats(POL_RULE_ID(1, POL_SEC_INGRESS_DENY, 1)).denied, 1);
	ck_assert(!ct_has(IPPROTO_TCP, WORLD_IP, 40000, NODE1, 22));
	/* The same peer on another port, or UDP 22: allowed by fromEntities all. */
	f.dport = 80;
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	f = udp(WORLD_IP, 40000, NODE1, 22);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
}
END_TEST

START_TEST(test_default_deny_once_selected)
{
	struct flow api = tcp(APISERVER, 41000, NODE1, 6443, F_SYN);
	struct flow ssh = tcp(WORLD_IP, 41001, NODE1, 22, F_SYN);
	struct flow node2 = udp(NODE2, 8472, NODE1, 8472);

	/* Not labelled control-plane: not selected, everything passes. */
	policy(doc_policy, "node-role.kubernetes.io/worker=", false);
	ck_assert_int_eq(in(&ssh), TC_ACT_OK);
	ck_assert_uint_eq(counters(POL_DIR_IN).unselected, 1);

	/* Labelled: the apiserver passes, nothing else does. */
	policy(doc_policy, CP_LABELS, false);
	ck_assert_int_eq(in(&api), TC_ACT_OK);
	ssh.sport++;
	ck_assert_int_eq(in(&ssh), TC_ACT_SHOT);
	ck_assert_int_eq(in(&node2), TC_ACT_SHOT);
	drain_events();
	ck_assert_int_eq(nevents, 2);
	ck_assert_uint_eq(events[0].rule_id, POL_RULE_ID(1, 0, 0));
	ck_assert_uint_eq(events[0].verdict, BPFLB_VERDICT_DROPPED);
	ck_assert_uint_eq(rule_stats(POL_RULE_ID(1, 0, 0)).denied, 2);
	ck_assert_uint_eq(rule_stats(POL_RULE_ID(1, POL_SEC_INGRESS, 1)).allowed, 1);
	/* Egress is not selected: the node's own traffic leaves. */
	ssh = tcp(NODE1, 50000, WORLD_IP, 443, F_SYN);
	ck_assert_int_eq(out(&ssh), TC_ACT_OK);
	/* Workloads are not selected by a host policy. */
	ssh = tcp(WORLD_IP, 41002, WEB1, 8080, F_SYN);
	ck_assert_int_eq(in(&ssh), TC_ACT_OK);
}
END_TEST

START_TEST(test_cidr_except)
{
	struct flow f;

	policy(HDR
	       "metadata: {name: cidr}\nspec:\n  endpointSelector: {matchLabels: {app: client}}\n"
	       "  egress:\n  - toCIDRSet:\n    - cidr: 10.0.0.0/8\n"
	       "      except: [10.1.0.0/16]\n",
	       "", false);
	f = tcp(CLIENT1, 42000, "10.2.3.4", 443, F_SYN);
	ck_assert_int_eq(out(&f), TC_ACT_OK);
	f = tcp(CLIENT1, 42001, "10.1.3.4", 443, F_SYN);
	ck_assert_int_eq(out(&f), TC_ACT_SHOT);
	f = udp(CLIENT1, 42002, "10.1.0.1", 53);
	ck_assert_int_eq(out(&f), TC_ACT_SHOT);
	f = tcp(CLIENT1, 42003, "11.0.0.1", 443, F_SYN);
	ck_assert_int_eq(out(&f), TC_ACT_SHOT);
	/* A node inside the CIDR is not selected by it. */
	f = tcp(CLIENT1, 42004, NODE2, 443, F_SYN);
	ck_assert_int_eq(out(&f), TC_ACT_SHOT);
	drain_events();
	ck_assert_int_eq(nevents, 4);
	ck_assert_uint_eq(events[0].stage, BPFLB_STAGE_OUT_POLICY);
	ck_assert_uint_eq(counters(POL_DIR_OUT).denied, 4);
	ck_assert_uint_eq(counters(POL_DIR_OUT).allowed, 1);
}
END_TEST

START_TEST(test_ports_and_ranges)
{
	static const struct {
		uint8_t proto;
		uint16_t port;
		int ret;
	} cases[] = {
	    {IPPROTO_TCP, 7999, TC_ACT_SHOT}, {IPPROTO_TCP, 8000, TC_ACT_OK},
	    {IPPROTO_TCP, 8063, TC_ACT_OK},   {IPPROTO_TCP, 8064, TC_ACT_OK},
	    {IPPROTO_TCP, 8100, TC_ACT_OK},   {IPPROTO_TCP, 8101, TC_ACT_SHOT},
	    {IPPROTO_UDP, 8050, TC_ACT_SHOT}, {IPPROTO_UDP, 53, TC_ACT_OK},
	    {IPPROTO_TCP, 53, TC_ACT_SHOT},   {IPPROTO_UDP, 30000, TC_ACT_OK},
	    {IPPROTO_TCP, 65535, TC_ACT_OK},  {IPPROTO_TCP, 29999, TC_ACT_SHOT},
	};

	policy(HDR "metadata: {name: ports}\nspec:\n  endpointSelector: {matchLabels: {app: web}}\n"
		   "  ingress:\n  - fromEntities: [world]\n"
		   "    toPorts:\n    - ports:\n"
		   "      - {port: '8000', endPort: 8100, protocol: TCP}\n"
		   "      - {port: '53', protocol: UDP}\n"
		   "      - {port: '30000', endPort: 65535}\n",
	       "", false);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct flow f = cases[i].proto == IPPROTO_TCP
				    ? tcp(WORLD_IP, 43000 + i, WEB1, cases[i].port, F_SYN)
				    : udp(WORLD_IP, 43000 + i, WEB1, cases[i].port);

		ck_assert_msg(in(&f) == cases[i].ret, "%s port %u: expected %s",
			      cases[i].proto == IPPROTO_TCP ? "TCP" : "UDP", cases[i].port,
			      cases[i].ret == TC_ACT_OK ? "pass" : "drop");
	}
	/* web-1b has the same labels: the same rule set. */
	{
		struct flow f = tcp(WORLD_IP, 43100, WEB1B, 8080, F_SYN);

		ck_assert_int_eq(in(&f), TC_ACT_OK);
		f.dport = 7000;
		ck_assert_int_eq(in(&f), TC_ACT_SHOT);
	}
}
END_TEST

START_TEST(test_audit)
{
	struct flow f = tcp(WORLD_IP, 44000, NODE1, 22, F_SYN);
	struct pol_counters c;

	/* [policy] audit_mode = yes with the documentation's policy. */
	policy(doc_policy, CP_LABELS, true);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	drain_events();
	ck_assert_int_eq(nevents, 1);
	ck_assert_uint_eq(events[0].verdict, BPFLB_VERDICT_AUDIT);
	ck_assert_uint_eq(events[0].reason, BPFLB_DROP_POLICY);
	ck_assert_uint_eq(events[0].rule_id, POL_RULE_ID(1, 0, 0));
	ck_assert_uint_eq(events[0].stage, BPFLB_STAGE_IN_POLICY);
	ck_assert_uint_eq(events[0].dport, htons(22));
	/* The rest of the flow: counted, one event per flow only, never dropped. */
	f.tcp_flags = F_ACK;
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	drain_events();
	ck_assert_int_eq(nevents, 0);
	c = counters(POL_DIR_IN);
	ck_assert_uint_eq(c.audit, 3);
	ck_assert_uint_eq(c.denied, 0);
	ck_assert_uint_eq(policy_drops(), 0);
	ck_assert_uint_eq(rule_stats(POL_RULE_ID(1, 0, 0)).audit, 3);
	/* The reply passes as a reply. */
	f = tcp(NODE1, 22, WORLD_IP, 44000, F_SYN | F_ACK);
	ck_assert_int_eq(out(&f), TC_ACT_OK);
	ck_assert_uint_eq(counters(POL_DIR_OUT).reply, 1);

	/* Switched to enforcing (same flow, next packet): dropped, reported as such. */
	policy(doc_policy, CP_LABELS, false);
	f = tcp(WORLD_IP, 44000, NODE1, 22, F_ACK);
	ck_assert_int_eq(in(&f), TC_ACT_SHOT);
	drain_events();
	ck_assert_int_eq(nevents, 1);
	ck_assert_uint_eq(events[0].verdict, BPFLB_VERDICT_DROPPED);
	/* ...and its replies lost their permission with it. */
	ck_assert(!ct_has(IPPROTO_TCP, WORLD_IP, 44000, NODE1, 22));

	/* Per-policy audit by annotation. */
	policy(HDR "metadata:\n  name: audited\n  annotations:\n"
		   "    policy.bpflb.io/audit-mode: \"true\"\n"
		   "spec:\n  nodeSelector: {}\n  ingress:\n  - fromEntities: [kube-apiserver]\n",
	       "", false);
	f = udp(WORLD_IP, 44001, NODE1, 53);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	drain_events();
	ck_assert_int_eq(nevents, 1);
	ck_assert_uint_eq(events[0].verdict, BPFLB_VERDICT_AUDIT);
}
END_TEST

START_TEST(test_reply_allowed)
{
	struct flow f;

	/* Host ingress: default deny (only the apiserver may come in). */
	policy(doc_policy, CP_LABELS, false);
	/* The node's own flow out (egress not selected) is tracked... */
	f = tcp(NODE1, 51000, WORLD_IP, 443, F_SYN);
	ck_assert_int_eq(out(&f), TC_ACT_OK);
	ck_assert(ct_has(IPPROTO_TCP, NODE1, 51000, WORLD_IP, 443));
	ck_assert_uint_eq(counters(POL_DIR_OUT).unselected, 1);
	/* ...so its reply comes in despite the default deny. */
	f = tcp(WORLD_IP, 443, NODE1, 51000, F_SYN | F_ACK);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	ck_assert_uint_eq(counters(POL_DIR_IN).reply, 1);
	/* A different port of the same peer is no reply. */
	f = tcp(WORLD_IP, 443, NODE1, 51001, F_SYN | F_ACK);
	ck_assert_int_eq(in(&f), TC_ACT_SHOT);
	/* UDP and ICMP echo the same way. */
	f = udp(NODE1, 52000, "198.51.100.53", 53);
	ck_assert_int_eq(out(&f), TC_ACT_OK);
	f = udp("198.51.100.53", 53, NODE1, 52000);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	f = icmp(NODE1, WORLD_IP, 8, 77);
	ck_assert_int_eq(out(&f), TC_ACT_OK);
	f = icmp(WORLD_IP, NODE1, 0, 77);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	f = icmp(WORLD_IP, NODE1, 0, 78);
	ck_assert_int_eq(in(&f), TC_ACT_SHOT);
	/* ICMP errors are related traffic: they pass. */
	f = icmp(WORLD_IP, NODE1, 3, 0);
	ck_assert_int_eq(in(&f), TC_ACT_OK);

	/* A workload with egress default deny still answers a flow it accepted. */
	policy(HDR "metadata: {name: web}\nspec:\n  endpointSelector: {matchLabels: {app: web}}\n"
		   "  ingress:\n  - fromEndpoints: [{matchLabels: {app: client}}]\n"
		   "  egress:\n  - {}\n",
	       "", false);
	f = tcp(CLIENT1, 53000, WEB1, 8080, F_SYN);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	f = tcp(WEB1, 8080, CLIENT1, 53000, F_SYN | F_ACK);
	ck_assert_int_eq(out(&f), TC_ACT_OK);
	f = tcp(WEB1, 8081, CLIENT1, 53000, F_SYN);
	ck_assert_int_eq(out(&f), TC_ACT_SHOT);
}
END_TEST

START_TEST(test_load_balanced_flows)
{
	struct flow f;
	struct bpflb_ct_key k = {
	    .saddr = ip(WEB2),
	    .daddr = ip(NODE1),
	    .sport = htons(8080),
	    .dport = htons(40123),
	    .proto = IPPROTO_TCP,
	    .kind = BPFLB_CT_REV,
	};
	struct bpflb_ct_val v = {.fwd = BPFLB_FWD_SNAT};

	/* Host: default deny both ways. */
	policy(HDR "metadata: {name: lock}\nspec:\n  nodeSelector: {}\n"
		   "  ingress:\n  - {}\n  egress:\n  - {}\n",
	       "", false);
	/* A reply the LB stage translated (cb marks) is not judged again. */
	f = tcp(NODE1, 30080, WORLD_IP, 45000, F_ACK);
	ck_assert_int_eq(run(skel->progs.policy_in, &f, BPFLB_PKT_LB_DONE | BPFLB_PKT_REPLY),
			 TC_ACT_OK);
	/* A service packet is judged on its translated destination. */
	f = tcp(WORLD_IP, 45001, NODE1, 8080, F_SYN);
	ck_assert_int_eq(run(skel->progs.policy_in, &f, BPFLB_PKT_LB_DONE), TC_ACT_SHOT);
	/* The host's SNATed packet of a load-balanced flow is not its own traffic. */
	ck_assert_int_eq(bpf_map_update_elem(bpf_map__fd(skel->maps.bpflb_ct), &k, &v, 0), 0);
	f = tcp(NODE1, 40123, WEB2, 8080, F_SYN);
	ck_assert_int_eq(out(&f), TC_ACT_OK);
	f = tcp(NODE1, 40124, WEB2, 8080, F_SYN);
	ck_assert_int_eq(out(&f), TC_ACT_SHOT);
}
END_TEST

START_TEST(test_passthrough)
{
	struct flow f;

	policy(HDR "metadata: {name: lock}\nspec:\n  nodeSelector: {}\n  ingress:\n  - {}\n", "",
	       false);
	/* Not to a subject of this node: not looked at. */
	f = tcp(WORLD_IP, 46000, WEB2, 80, F_SYN);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	f = tcp(WORLD_IP, 46000, "10.99.0.77", 80, F_SYN);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	/* Non-first fragments carry no ports: not judged. */
	f = udp(WORLD_IP, 46001, NODE1, 80);
	f.frag_off = 0x00b9;
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	ck_assert_uint_eq(counters(POL_DIR_IN).denied, 0);
	ck_assert_uint_eq(counters(POL_DIR_IN).allowed, 0);
	/* A lone RST of an unknown flow starts nothing. */
	f = tcp(NODE1, 46002, WORLD_IP, 80, F_RST);
	ck_assert_int_eq(out(&f), TC_ACT_OK);
	ck_assert(!ct_has(IPPROTO_TCP, NODE1, 46002, WORLD_IP, 80));
}
END_TEST

/* A new policy set replaces the old one at once, for established flows too. */
START_TEST(test_generation_switch)
{
	struct flow f = tcp(WORLD_IP, 47000, NODE1, 8080, F_SYN);

	policy(HDR "metadata: {name: a}\nspec:\n  nodeSelector: {}\n  ingress:\n"
		   "  - toPorts: [{ports: [{port: '8080'}]}]\n",
	       "", false);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	ck_assert_uint_eq(gen, 1);
	policy(HDR "metadata: {name: b}\nspec:\n  nodeSelector: {}\n  ingress:\n"
		   "  - toPorts: [{ports: [{port: '9090'}]}]\n",
	       "", false);
	ck_assert_uint_eq(gen, 0);
	f.tcp_flags = F_ACK;
	ck_assert_int_eq(in(&f), TC_ACT_SHOT);
	f = tcp(WORLD_IP, 47001, NODE1, 9090, F_SYN);
	ck_assert_int_eq(in(&f), TC_ACT_OK);
	/* And back: the generation given up was emptied and refilled. */
	policy(HDR "metadata: {name: a}\nspec:\n  nodeSelector: {}\n  ingress:\n"
		   "  - toPorts: [{ports: [{port: '8080'}]}]\n",
	       "", false);
	ck_assert_int_eq(in(&f), TC_ACT_SHOT);
}
END_TEST

static Suite *fixtures_suite(void)
{
	Suite *s = suite_create("policy_fixtures");
	TCase *tc = tcase_create("datapath");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_allow);
	tcase_add_test(tc, test_deny);
	tcase_add_test(tc, test_default_deny_once_selected);
	tcase_add_test(tc, test_cidr_except);
	tcase_add_test(tc, test_ports_and_ranges);
	tcase_add_test(tc, test_audit);
	tcase_add_test(tc, test_reply_allowed);
	tcase_add_test(tc, test_load_balanced_flows);
	tcase_add_test(tc, test_passthrough);
	tcase_add_test(tc, test_generation_switch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	cpu_set_t cpus;
	SRunner *sr;
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "test_policy_fixtures: needs root (BPF, bpffs, netns); skipped\n");
		return 77;
	}
	libbpf_set_print(libbpf_print);
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0 || ensure_bpffs()) {
		perror("test_policy_fixtures: bpffs at " BPF_FS);
		return 1;
	}
	if (unshare(CLONE_NEWNET)) {
		perror("test_policy_fixtures: unshare(CLONE_NEWNET)");
		return 1;
	}
	/* One CPU: the events of a run are on this CPU's ring. */
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	snprintf(pin_base, sizeof(pin_base), BPF_FS "/bpflb-policy-test-XXXXXX");
	if (!mkdtemp(pin_base)) {
		perror("test_policy_fixtures: mkdtemp under " BPF_FS);
		return 1;
	}
	sr = srunner_create(fixtures_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(pin_base);
	return failed ? 1 : 0;
}
