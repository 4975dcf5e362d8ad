// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fixtures of the SNAT datapath: a packet built here goes through snat_in or
 * snat_out with BPF_PROG_TEST_RUN; the test checks the verdict, every rewritten
 * field, the IP and TCP/UDP checksums (computed here, independently of the
 * kernel's helpers), conntrack, counters and pipeline marks.
 *
 * Each test loads the skeleton into a fresh pin root under /sys/fs/bpf, fills
 * the shared maps the way the daemon does, and removes every pin afterwards;
 * whatever a failing test leaves behind goes with the run's directory at exit.
 * The run happens in a network namespace of its own, where only an unconfigured
 * loopback exists: FIB lookups fail and translated packets fall back to the
 * stack (TC_ACT_OK), except in the one test that sets a route up to check the
 * redirect path.
 *
 * Needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN); exits 77 (skip) otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
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

#include <bpflb/hash.h>
#include <bpflb/lb.h>
#include <bpflb/stages.h>

#include "snat_bpf.skel.h"
#include "bpf_fixture.h"


/* The scene: a client, a node with a NodePort and an LB IP, two backends. */
#define CLIENT "10.1.0.5"
#define NODE "192.168.1.10"
#define NODEPORT 30080
#define LB_IP "172.16.0.100"
#define LB_PORT 53
#define BE_LOCAL "10.244.1.7"
#define BE_REMOTE "10.244.2.9"
#define BE_REMOTE2 "10.244.3.4"
#define BE_PORT 8080
#define SNAT_MIN 40000
#define SNAT_MAX 40999
#define SEED 0x9e3779b9u

#define SVC_ID 1
#define BE_ID_LOCAL 1
#define BE_ID_REMOTE 2
#define BE_ID_REMOTE2 3

static const uint8_t MAC_NODE[ETH_ALEN] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t MAC_PEER[ETH_ALEN] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };

static char pin_base[PATH_MAX / 2]; /* this run's directory, removed at exit */
static char pin_dir[PATH_MAX];  /* this test's pin root */
static struct snat_bpf *skel;
static int ncpus;

/* --- pins ------------------------------------------------------------------ */

/* --- maps, as the daemon fills them ------------------------------------------ */

static int map_fd(struct bpf_map *map)
{
	return bpf_map__fd(map);
}

static uint32_t ip(const char *s)
{
	return inet_addr(s);
}

static void set_node(uint32_t addr, uint16_t pmin, uint16_t pmax, uint32_t seed, uint32_t ev_rate)
{
	struct bpflb_node_cfg cfg = {
		.addr = addr,
		.snat_port_min = pmin,
		.snat_port_max = pmax,
		.hash_seed = seed,
		.events_per_sec = ev_rate,
	};
	uint32_t zero = 0;

	ck_assert_int_eq(bpf_map_update_elem(map_fd(skel->maps.bpflb_node), &zero, &cfg, 0), 0);
}

static void add_service(const char *addr, uint16_t port, uint8_t proto, uint32_t id,
			uint16_t count, uint16_t total, uint16_t flags)
{
	struct bpflb_svc_key k = { .addr = ip(addr), .port = htons(port), .proto = proto };
	struct bpflb_svc v = { .id = id, .count = count, .total = total, .flags = flags };

	ck_assert_int_eq(bpf_map_update_elem(map_fd(skel->maps.bpflb_svc), &k, &v, 0), 0);
}

static void add_backend(uint32_t id, const char *addr, uint16_t port, uint8_t state, uint8_t flags)
{
	struct bpflb_backend b = {
		.addr = ip(addr), .port = htons(port), .state = state, .flags = flags,
		.node_addr = flags & BPFLB_BE_F_LOCAL ? ip(NODE) : ip("192.168.1.20"),
	};

	ck_assert_int_eq(bpf_map_update_elem(map_fd(skel->maps.bpflb_backends), &id, &b, 0), 0);
}

static void set_backend_state(uint32_t id, uint8_t state)
{
	struct bpflb_backend b;
	int fd = map_fd(skel->maps.bpflb_backends);

	ck_assert_int_eq(bpf_map_lookup_elem(fd, &id, &b), 0);
	b.state = state;
	ck_assert_int_eq(bpf_map_update_elem(fd, &id, &b, 0), 0);
}

static void add_slot(uint32_t svc_id, uint32_t slot, uint32_t backend_id)
{
	struct bpflb_slot_key k = { .svc_id = svc_id, .slot = slot };

	ck_assert_int_eq(bpf_map_update_elem(map_fd(skel->maps.bpflb_slots), &k, &backend_id, 0), 0);
}

static uint64_t drops(uint32_t reason)
{
	uint64_t v[ncpus], sum = 0;

	ck_assert_int_eq(bpf_map_lookup_elem(map_fd(skel->maps.bpflb_drops), &reason, v), 0);
	for (int i = 0; i < ncpus; i++)
		sum += v[i];
	return sum;
}

static struct bpflb_svc_stats svc_stats(uint32_t id)
{
	struct bpflb_svc_stats v[ncpus], sum = { 0 };

	if (bpf_map_lookup_elem(map_fd(skel->maps.bpflb_svc_stats), &id, v))
		return sum;
	for (int i = 0; i < ncpus; i++) {
		sum.fwd_packets += v[i].fwd_packets;
		sum.fwd_bytes += v[i].fwd_bytes;
		sum.drop_packets += v[i].drop_packets;
		sum.drop_bytes += v[i].drop_bytes;
	}
	return sum;
}

static struct bpflb_ev_rate ev_rate(void)
{
	struct bpflb_ev_rate v[ncpus], sum = { 0 };
	uint32_t zero = 0;

	ck_assert_int_eq(bpf_map_lookup_elem(map_fd(skel->maps.bpflb_ev_rate), &zero, v), 0);
	for (int i = 0; i < ncpus; i++) {
		sum.sent += v[i].sent;
		sum.suppressed += v[i].suppressed;
	}
	return sum;
}

static int ct_get(uint8_t kind, uint8_t proto, const char *saddr, uint16_t sport,
		  const char *daddr, uint16_t dport, struct bpflb_ct_val *val)
{
	struct bpflb_ct_key k = {
		.saddr = ip(saddr), .daddr = ip(daddr), .sport = htons(sport),
		.dport = htons(dport), .proto = proto, .kind = kind,
	};

	return bpf_map_lookup_elem(map_fd(skel->maps.bpflb_ct), &k, val);
}

static unsigned int ct_count(void)
{
	struct bpflb_ct_key k, next;
	unsigned int n = 0;
	int fd = map_fd(skel->maps.bpflb_ct);
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

/* enum bpflb_ct_stat counter; 0 when the object has no bpflb_ct_stats map. */
static uint64_t ct_stat(uint32_t what)
{
	struct bpf_map *m = bpf_object__find_map_by_name(skel->obj, "bpflb_ct_stats");
	uint64_t v[ncpus], sum = 0;

	if (!m || bpf_map_lookup_elem(bpf_map__fd(m), &what, v))
		return 0;
	for (int i = 0; i < ncpus; i++)
		sum += v[i];
	return sum;
}

static int ct_del(uint8_t kind, uint8_t proto, const char *saddr, uint16_t sport,
		  const char *daddr, uint16_t dport)
{
	struct bpflb_ct_key k = {
		.saddr = ip(saddr), .daddr = ip(daddr), .sport = htons(sport),
		.dport = htons(dport), .proto = proto, .kind = kind,
	};

	return bpf_map_delete_elem(map_fd(skel->maps.bpflb_ct), &k);
}

/* Make every conntrack entry look idle for another `ns`. */
static void ct_age(uint64_t ns)
{
	struct bpflb_ct_key k, next;
	struct bpflb_ct_val v;
	int fd = map_fd(skel->maps.bpflb_ct);
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		ck_assert_int_eq(bpf_map_lookup_elem(fd, &k, &v), 0);
		v.last_seen -= ns;
		ck_assert_int_eq(bpf_map_update_elem(fd, &k, &v, BPF_EXIST), 0);
	}
}

/* --- packets --------------------------------------------------------------- */

struct flow {
	uint8_t proto;
	const char *saddr;
	uint16_t sport;
	const char *daddr;
	uint16_t dport;
	uint8_t tcp_flags;  /* TH_* bits of byte 13 */
	int ip_opts;        /* add a 4-byte IP option (NOP NOP NOP EOL) */
	int udp_no_csum;    /* send UDP with checksum 0 */
};

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

static const uint8_t PAYLOAD[12] = "bpflb-test!";

/* Ethernet + IPv4 (+ options) + TCP/UDP + 12 bytes, all checksums valid. */
static size_t build(uint8_t *buf, const struct flow *f)
{
	struct ethhdr *eth = (void *)buf;
	struct iphdr *iph = (void *)(eth + 1);
	size_t ihl = sizeof(*iph) + (f->ip_opts ? 4 : 0);
	uint8_t *l4 = (uint8_t *)iph + ihl;
	size_t l4hdr = f->proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr);
	size_t l4len = l4hdr + sizeof(PAYLOAD);

	memset(buf, 0, sizeof(*eth) + ihl + l4len);
	memcpy(eth->h_dest, MAC_NODE, ETH_ALEN);
	memcpy(eth->h_source, MAC_PEER, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);

	iph->version = 4;
	iph->ihl = ihl / 4;
	iph->tot_len = htons(ihl + l4len);
	iph->id = htons(0x1234);
	iph->frag_off = htons(0x4000);
	iph->ttl = 64;
	iph->protocol = f->proto;
	iph->saddr = ip(f->saddr);
	iph->daddr = ip(f->daddr);
	if (f->ip_opts)
		memcpy(iph + 1, "\x01\x01\x01\x00", 4);
	iph->check = htons(fold(sum16(iph, ihl, 0)));

	if (f->proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		th->source = htons(f->sport);
		th->dest = htons(f->dport);
		th->seq = htonl(1000);
		th->ack_seq = htonl(f->tcp_flags & F_ACK ? 2000 : 0);
		th->doff = 5;
		l4[13] = f->tcp_flags;
		th->window = htons(65535);
		memcpy(l4 + l4hdr, PAYLOAD, sizeof(PAYLOAD));
		th->check = htons(fold(sum16(l4, l4len, pseudo_sum(iph, l4len))));
	} else {
		struct udphdr *uh = (void *)l4;

		uh->source = htons(f->sport);
		uh->dest = htons(f->dport);
		uh->len = htons(l4len);
		memcpy(l4 + l4hdr, PAYLOAD, sizeof(PAYLOAD));
		if (!f->udp_no_csum) {
			uint16_t c = fold(sum16(l4, l4len, pseudo_sum(iph, l4len)));

			uh->check = htons(c ? c : 0xffff);
		}
	}
	return sizeof(*eth) + ihl + l4len;
}

struct view {
	struct ethhdr *eth;
	struct iphdr *ip;
	struct tcphdr *tcp;
	struct udphdr *udp;
	uint8_t *l4;
	uint32_t l4len;
};

static struct view view_of(uint8_t *buf, size_t len)
{
	struct view v = { 0 };

	ck_assert_uint_ge(len, sizeof(struct ethhdr) + sizeof(struct iphdr));
	v.eth = (void *)buf;
	v.ip = (void *)(v.eth + 1);
	ck_assert_uint_eq(len, sizeof(struct ethhdr) + ntohs(v.ip->tot_len));
	v.l4 = (uint8_t *)v.ip + v.ip->ihl * 4;
	v.l4len = ntohs(v.ip->tot_len) - v.ip->ihl * 4;
	if (v.ip->protocol == IPPROTO_TCP)
		v.tcp = (void *)v.l4;
	else if (v.ip->protocol == IPPROTO_UDP)
		v.udp = (void *)v.l4;
	return v;
}

/* Checksums recomputed here, from the bytes, without trusting the datapath. */
static void assert_csums(const struct view *v)
{
	ck_assert_msg(fold(sum16(v->ip, v->ip->ihl * 4, 0)) == 0, "bad IPv4 header checksum");
	if (v->udp && v->udp->check == 0)
		return; /* "no checksum" */
	ck_assert_msg(fold(sum16(v->l4, v->l4len, pseudo_sum(v->ip, v->l4len))) == 0,
		      "bad %s checksum", v->tcp ? "TCP" : "UDP");
}

static const char *ntoa(uint32_t a)
{
	static char bufs[8][INET_ADDRSTRLEN];
	static int n;
	char *b = bufs[n++ % 8];

	return inet_ntop(AF_INET, &a, b, INET_ADDRSTRLEN);
}

static uint16_t sport_of(const struct view *v)
{
	return ntohs(v->tcp ? v->tcp->source : v->udp->source);
}

static uint16_t dport_of(const struct view *v)
{
	return ntohs(v->tcp ? v->tcp->dest : v->udp->dest);
}

#define assert_dst(v, addr, port)                                     \
	do {                                                          \
		ck_assert_str_eq(ntoa((v)->ip->daddr), addr);         \
		ck_assert_uint_eq(dport_of(v), port);                 \
	} while (0)
#define assert_src(v, addr, port)                                     \
	do {                                                          \
		ck_assert_str_eq(ntoa((v)->ip->saddr), addr);         \
		ck_assert_uint_eq(sport_of(v), port);                 \
	} while (0)

/* --- running a program ----------------------------------------------------- */

struct run {
	int ret;
	uint8_t out[512];
	uint32_t out_len;
	struct __sk_buff ctx;
	struct view v;
};

static void run_prog(struct bpf_program *prog, const uint8_t *in, size_t len, struct run *r)
{
	struct __sk_buff ctx = { .ifindex = 1, .ingress_ifindex = 1 };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		    .data_in = in, .data_size_in = len,
		    .data_out = r->out, .data_size_out = sizeof(r->out),
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .ctx_out = &r->ctx, .ctx_size_out = sizeof(r->ctx),
		    .repeat = 1);
	int err;

	memset(r, 0, sizeof(*r));
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);
	ck_assert_msg(!err, "BPF_PROG_TEST_RUN: %s", strerror(errno));
	r->ret = o.retval;
	r->out_len = o.data_size_out;
	if (r->out_len >= sizeof(struct ethhdr) + sizeof(struct iphdr))
		r->v = view_of(r->out, r->out_len);
}

/* Send a flow's packet through snat_in (ingress) or snat_out (egress). */
static void send_in(const struct flow *f, struct run *r)
{
	uint8_t pkt[256];
	size_t len = build(pkt, f);

	run_prog(skel->progs.snat_in, pkt, len, r);
}

static void send_out(const struct flow *f, struct run *r)
{
	uint8_t pkt[256];
	size_t len = build(pkt, f);

	run_prog(skel->progs.snat_out, pkt, len, r);
}

static struct flow tcp_flow(const char *saddr, uint16_t sport, const char *daddr, uint16_t dport,
			    uint8_t flags)
{
	return (struct flow){ .proto = IPPROTO_TCP, .saddr = saddr, .sport = sport,
			      .daddr = daddr, .dport = dport, .tcp_flags = flags };
}

/* --- fixture ---------------------------------------------------------------- */

static void load(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	int err;

	snprintf(pin_dir, sizeof(pin_dir), "%s/t-XXXXXX", pin_base);
	ck_assert_ptr_nonnull(mkdtemp(pin_dir));
	opts.pin_root_path = pin_dir;
	skel = snat_bpf__open_opts(&opts);
	ck_assert_ptr_nonnull(skel);
	err = snat_bpf__load(skel);
	ck_assert_msg(!err, "loading snat.bpf.o: %d (verifier log above)", err);
	set_node(ip(NODE), SNAT_MIN, SNAT_MAX, SEED, 0);
}

static void unload(void)
{
	snat_bpf__destroy(skel);
	skel = NULL;
	rm_tree(pin_dir);
	pin_dir[0] = 0;
}

static void setup(void)
{
	load();
}

static void teardown(void)
{
	if (skel)
		unload();
}

/* A NodePort service with one backend, local or remote. */
static void one_backend_service(int local)
{
	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 1, 1, 0);
	if (local)
		add_backend(BE_ID_LOCAL, BE_LOCAL, BE_PORT, BPFLB_BE_ACTIVE, BPFLB_BE_F_LOCAL);
	else
		add_backend(BE_ID_REMOTE, BE_REMOTE, BE_PORT, BPFLB_BE_ACTIVE, 0);
	add_slot(SVC_ID, 0, local ? BE_ID_LOCAL : BE_ID_REMOTE);
}

/* --- tests: forward direction ------------------------------------------------ */

START_TEST(test_syn_local_backend)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct bpflb_ct_val fv, rv;
	struct bpflb_svc_stats st;
	struct run r;

	one_backend_service(1);
	send_in(&f, &r);

	/* No route in this namespace: translated, then left to the stack. */
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_LOCAL, BE_PORT);
	assert_src(&r.v, CLIENT, 51000);
	ck_assert_uint_eq(r.v.ip->ttl, 64);
	ck_assert_uint_eq(r.v.tcp->syn, 1);
	ck_assert_mem_eq(r.v.l4 + sizeof(struct tcphdr), PAYLOAD, sizeof(PAYLOAD));
	ck_assert_mem_eq(r.v.eth->h_dest, MAC_NODE, ETH_ALEN);
	assert_csums(&r.v);

	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.fwd, BPFLB_FWD_LOCAL);
	ck_assert_uint_eq(fv.state, BPFLB_CT_NEW);
	ck_assert_str_eq(ntoa(fv.addr), BE_LOCAL);
	ck_assert_uint_eq(ntohs(fv.port), BE_PORT);
	ck_assert_uint_eq(fv.nat_addr, 0);
	ck_assert_uint_eq(fv.backend_id, BE_ID_LOCAL);
	ck_assert_uint_eq(fv.svc_id, SVC_ID);
	ck_assert_int_eq(ct_get(BPFLB_CT_REV, IPPROTO_TCP, BE_LOCAL, BE_PORT, CLIENT, 51000, &rv), 0);
	ck_assert_str_eq(ntoa(rv.addr), CLIENT);
	ck_assert_uint_eq(ntohs(rv.port), 51000);
	ck_assert_str_eq(ntoa(rv.nat_addr), NODE);
	ck_assert_uint_eq(ntohs(rv.nat_port), NODEPORT);
	ck_assert_uint_eq(ct_count(), 2);

	st = svc_stats(SVC_ID);
	ck_assert_uint_eq(st.fwd_packets, 1);
	ck_assert_uint_eq(st.fwd_bytes, r.out_len);
	ck_assert_uint_eq(st.drop_packets, 0);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], BPFLB_PKT_LB_DONE);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_SVC], SVC_ID);
}
END_TEST

START_TEST(test_syn_remote_backend_snat)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct bpflb_ct_val fv, rv;
	uint16_t nat_port;
	struct run r;

	one_backend_service(0);
	send_in(&f, &r);

	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_REMOTE, BE_PORT);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE);
	nat_port = sport_of(&r.v);
	ck_assert_uint_ge(nat_port, SNAT_MIN);
	ck_assert_uint_le(nat_port, SNAT_MAX);
	assert_csums(&r.v);

	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.fwd, BPFLB_FWD_SNAT);
	ck_assert_str_eq(ntoa(fv.addr), BE_REMOTE);
	ck_assert_str_eq(ntoa(fv.nat_addr), NODE);
	ck_assert_uint_eq(ntohs(fv.nat_port), nat_port);
	ck_assert_uint_eq(fv.backend_id, BE_ID_REMOTE);
	ck_assert_int_eq(ct_get(BPFLB_CT_REV, IPPROTO_TCP, BE_REMOTE, BE_PORT, NODE, nat_port, &rv),
			 0);
	ck_assert_uint_eq(rv.fwd, BPFLB_FWD_SNAT);
	ck_assert_str_eq(ntoa(rv.addr), CLIENT);
	ck_assert_uint_eq(ntohs(rv.port), 51000);
	ck_assert_str_eq(ntoa(rv.nat_addr), NODE);
	ck_assert_uint_eq(ntohs(rv.nat_port), NODEPORT);
	ck_assert_uint_eq(ct_count(), 2);
}
END_TEST

START_TEST(test_established_reuses_backend_and_port)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	uint32_t backend;
	uint16_t nat_port;
	struct run r;

	/* Two remote backends picked at random: only conntrack keeps a flow on one. */
	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 2, 2, 0);
	add_backend(BE_ID_REMOTE, BE_REMOTE, BE_PORT, BPFLB_BE_ACTIVE, 0);
	add_backend(BE_ID_REMOTE2, BE_REMOTE2, BE_PORT, BPFLB_BE_ACTIVE, 0);
	add_slot(SVC_ID, 0, BE_ID_REMOTE);
	add_slot(SVC_ID, 1, BE_ID_REMOTE2);

	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	backend = r.v.ip->daddr;
	nat_port = sport_of(&r.v);

	f.tcp_flags = F_ACK;
	for (int i = 0; i < 16; i++) {
		send_in(&f, &r);
		ck_assert_int_eq(r.ret, TC_ACT_OK);
		ck_assert_str_eq(ntoa(r.v.ip->daddr), ntoa(backend));
		ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE);
		ck_assert_uint_eq(sport_of(&r.v), nat_port);
		assert_csums(&r.v);
	}
	ck_assert_uint_eq(ct_count(), 2);
	ck_assert_uint_eq(svc_stats(SVC_ID).fwd_packets, 17);
}
END_TEST

START_TEST(test_reply_from_remote_backend)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct bpflb_ct_val fv, rv;
	uint16_t nat_port;
	struct run r;

	one_backend_service(0);
	send_in(&f, &r);
	nat_port = sport_of(&r.v);

	/* SYN-ACK: backend -> node:nat port, back to the client from the frontend. */
	f = tcp_flow(BE_REMOTE, BE_PORT, NODE, nat_port, F_SYN | F_ACK);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, CLIENT, 51000);
	assert_src(&r.v, NODE, NODEPORT);
	ck_assert_uint_eq(r.v.tcp->syn, 1);
	ck_assert_uint_eq(r.v.tcp->ack, 1);
	assert_csums(&r.v);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], BPFLB_PKT_LB_DONE | BPFLB_PKT_REPLY);

	/* The reply direction establishes both entries. */
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_int_eq(ct_get(BPFLB_CT_REV, IPPROTO_TCP, BE_REMOTE, BE_PORT, NODE, nat_port, &rv),
			 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_ESTABLISHED);
	ck_assert_uint_eq(rv.state, BPFLB_CT_ESTABLISHED);

	/* A FIN from the client closes both. */
	f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_FIN | F_ACK);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_REMOTE, BE_PORT);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_int_eq(ct_get(BPFLB_CT_REV, IPPROTO_TCP, BE_REMOTE, BE_PORT, NODE, nat_port, &rv),
			 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_CLOSING);
	ck_assert_uint_eq(rv.state, BPFLB_CT_CLOSING);
	ck_assert_uint_eq(svc_stats(SVC_ID).fwd_packets, 3);
}
END_TEST

/*
 * A TCP segment to a SNAT port no flow holds is held back (a reset from the
 * stack would kill a connection whose REV half was lost), unless a socket of
 * the node owns the port (the range may overlap ip_local_port_range): then
 * it goes to the stack untouched.  The test runs in a network namespace of
 * its own (main), so the listener is private to it.
 */
START_TEST(test_reply_unknown_nat_port)
{
	struct flow f = tcp_flow(BE_REMOTE, BE_PORT, NODE, SNAT_MIN + 7, F_ACK);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(SNAT_MIN + 7)};
	uint8_t in[256];
	size_t len = build(in, &f);
	struct run r;
	int s;

	one_backend_service(0);
	run_prog(skel->progs.snat_in, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);

	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(s, 1), 0);
	run_prog(skel->progs.snat_in, in, len, &r);
	close(s);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.out_len, len);
	ck_assert_mem_eq(r.out, in, len);
}
END_TEST

START_TEST(test_egress_reply_from_local_backend)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct bpflb_ct_val fv;
	struct run r;

	one_backend_service(1);
	send_in(&f, &r);

	f = tcp_flow(BE_LOCAL, BE_PORT, CLIENT, 51000, F_SYN | F_ACK);
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_src(&r.v, NODE, NODEPORT);
	assert_dst(&r.v, CLIENT, 51000);
	ck_assert_uint_eq(r.v.ip->ttl, 64);
	assert_csums(&r.v);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], BPFLB_PKT_LB_DONE | BPFLB_PKT_REPLY);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_ESTABLISHED);
}
END_TEST

START_TEST(test_egress_other_traffic_passes)
{
	/* The node's own traffic and SNATed flows are not touched on egress. */
	struct flow f = tcp_flow(NODE, 41000, BE_REMOTE, BE_PORT, F_ACK);
	uint8_t in[256];
	size_t len = build(in, &f);
	struct run r;

	one_backend_service(1);
	run_prog(skel->progs.snat_out, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.out_len, len);
	ck_assert_mem_eq(r.out, in, len);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], 0);
}
END_TEST

START_TEST(test_etp_local_with_local_backend)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct run r;

	/* Two backends known, only the local one in the slots (the daemon's job). */
	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 1, 2, BPFLB_SVC_F_ETP_LOCAL);
	add_backend(BE_ID_LOCAL, BE_LOCAL, BE_PORT, BPFLB_BE_ACTIVE, BPFLB_BE_F_LOCAL);
	add_backend(BE_ID_REMOTE, BE_REMOTE, BE_PORT, BPFLB_BE_ACTIVE, 0);
	add_slot(SVC_ID, 0, BE_ID_LOCAL);

	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_LOCAL, BE_PORT);
	assert_src(&r.v, CLIENT, 51000); /* client address preserved */
	assert_csums(&r.v);
}
END_TEST

START_TEST(test_etp_local_without_local_backend)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct bpflb_svc_stats st;
	struct run r;

	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 0, 2,
		    BPFLB_SVC_F_ETP_LOCAL | BPFLB_SVC_F_REJECT);
	add_backend(BE_ID_REMOTE, BE_REMOTE, BE_PORT, BPFLB_BE_ACTIVE, 0);

	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_LOCAL_BACKEND), 1);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_BACKEND), 0);
	st = svc_stats(SVC_ID);
	ck_assert_uint_eq(st.drop_packets, 1);
	ck_assert_uint_eq(st.fwd_packets, 0);
	ck_assert_uint_eq(ct_count(), 0);
}
END_TEST

START_TEST(test_udp_to_lb_ip)
{
	struct flow f = { .proto = IPPROTO_UDP, .saddr = CLIENT, .sport = 5353,
			  .daddr = LB_IP, .dport = LB_PORT };
	struct bpflb_ct_val fv;
	uint16_t nat_port;
	struct run r;

	add_service(LB_IP, LB_PORT, IPPROTO_UDP, SVC_ID, 1, 1, 0);
	add_backend(BE_ID_REMOTE, BE_REMOTE, 1053, BPFLB_BE_ACTIVE, 0);
	add_slot(SVC_ID, 0, BE_ID_REMOTE);

	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_ptr_nonnull(r.v.udp);
	assert_dst(&r.v, BE_REMOTE, 1053);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE);
	nat_port = sport_of(&r.v);
	ck_assert_uint_ge(nat_port, SNAT_MIN);
	ck_assert_uint_le(nat_port, SNAT_MAX);
	ck_assert_uint_ne(r.v.udp->check, 0);
	assert_csums(&r.v);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_UDP, CLIENT, 5353, LB_IP, LB_PORT, &fv), 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_NEW);

	/* The answer comes back from the LB IP; UDP is established by it. */
	f = (struct flow){ .proto = IPPROTO_UDP, .saddr = BE_REMOTE, .sport = 1053,
			   .daddr = NODE, .dport = nat_port };
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_src(&r.v, LB_IP, LB_PORT);
	assert_dst(&r.v, CLIENT, 5353);
	assert_csums(&r.v);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_UDP, CLIENT, 5353, LB_IP, LB_PORT, &fv), 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_ESTABLISHED);

	/* A datagram without checksum keeps "no checksum" through both NATs. */
	f = (struct flow){ .proto = IPPROTO_UDP, .saddr = CLIENT, .sport = 5354,
			   .daddr = LB_IP, .dport = LB_PORT, .udp_no_csum = 1 };
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_REMOTE, 1053);
	ck_assert_uint_eq(r.v.udp->check, 0);
	assert_csums(&r.v);
}
END_TEST

START_TEST(test_no_backend_drops)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct run r;

	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 0, 0, 0);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_BACKEND), 1);
	ck_assert_uint_eq(svc_stats(SVC_ID).drop_packets, 1);
	ck_assert_uint_eq(ct_count(), 0);
}
END_TEST

/* The reject of flow f: ICMP port unreachable, back out of the device. */
static void check_reject(const struct flow *f)
{
	uint8_t in[256];
	size_t len = build(in, f);
	const struct iphdr *oip = (void *)(in + sizeof(struct ethhdr));
	size_t quote = oip->ihl * 4 + 8;
	const uint8_t *icmp;
	struct run r;

	run_prog(skel->progs.snat_in, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_uint_eq(r.out_len, sizeof(struct ethhdr) + 20 + 8 + quote);
	ck_assert_mem_eq(r.v.eth->h_dest, MAC_PEER, ETH_ALEN);
	ck_assert_mem_eq(r.v.eth->h_source, MAC_NODE, ETH_ALEN);
	ck_assert_uint_eq(ntohs(r.v.eth->h_proto), ETH_P_IP);
	ck_assert_uint_eq(r.v.ip->ihl, 5);
	ck_assert_uint_eq(r.v.ip->protocol, IPPROTO_ICMP);
	ck_assert_uint_eq(r.v.ip->ttl, 64);
	ck_assert_uint_eq(ntohs(r.v.ip->frag_off) & 0x1fff, 0);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), f->daddr);
	ck_assert_str_eq(ntoa(r.v.ip->daddr), f->saddr);
	ck_assert_msg(fold(sum16(r.v.ip, 20, 0)) == 0, "bad IPv4 header checksum");
	icmp = r.v.l4;
	ck_assert_uint_eq(icmp[0], 3); /* destination unreachable */
	ck_assert_uint_eq(icmp[1], 3); /* port unreachable */
	ck_assert_msg(fold(sum16(icmp, 8 + quote, 0)) == 0, "bad ICMP checksum");
	/* The original IP header, options included, and 8 bytes of its L4 header. */
	ck_assert_mem_eq(icmp + 8, oip, quote);
}

START_TEST(test_no_backend_reject)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct flow u = { .proto = IPPROTO_UDP, .saddr = CLIENT, .sport = 5353,
			  .daddr = LB_IP, .dport = LB_PORT, .ip_opts = 1 };

	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 0, 0, BPFLB_SVC_F_REJECT);
	add_service(LB_IP, LB_PORT, IPPROTO_UDP, SVC_ID + 1, 0, 0, BPFLB_SVC_F_REJECT);
	check_reject(&f);
	check_reject(&u);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_BACKEND), 2);
	ck_assert_uint_eq(svc_stats(SVC_ID).drop_packets, 1);
	ck_assert_uint_eq(svc_stats(SVC_ID + 1).drop_packets, 1);
	ck_assert_uint_eq(ct_count(), 0);
}
END_TEST

START_TEST(test_unknown_port_untouched)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, 22, F_SYN);
	uint8_t in[256];
	size_t len = build(in, &f);
	struct run r;

	one_backend_service(0);
	run_prog(skel->progs.snat_in, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.out_len, len);
	ck_assert_mem_eq(r.out, in, len);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], 0);
	ck_assert_uint_eq(ct_count(), 0);

	/* Same port, other protocol: not the service either. */
	f.proto = IPPROTO_UDP;
	f.dport = NODEPORT;
	len = build(in, &f);
	run_prog(skel->progs.snat_in, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_mem_eq(r.out, in, len);
}
END_TEST

START_TEST(test_non_ip_and_fragments_untouched)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	uint8_t in[256];
	size_t len;
	struct iphdr *iph = (void *)(in + sizeof(struct ethhdr));
	struct run r;

	one_backend_service(1);
	/* A non-first fragment: no ports to match, passed on. */
	len = build(in, &f);
	iph->frag_off = htons(0x0004);
	iph->check = 0;
	iph->check = htons(fold(sum16(iph, 20, 0)));
	run_prog(skel->progs.snat_in, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_mem_eq(r.out, in, len);

	/* ARP (or anything not IPv4). */
	len = build(in, &f);
	((struct ethhdr *)in)->h_proto = htons(ETH_P_ARP);
	run_prog(skel->progs.snat_in, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_mem_eq(r.out, in, len);
	ck_assert_uint_eq(ct_count(), 0);
}
END_TEST

START_TEST(test_ip_options)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct run r;

	f.ip_opts = 1;
	one_backend_service(0);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.v.ip->ihl, 6);
	ck_assert_mem_eq(r.v.ip + 1, "\x01\x01\x01\x00", 4);
	assert_dst(&r.v, BE_REMOTE, BE_PORT);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE);
	ck_assert_mem_eq(r.v.l4 + sizeof(struct tcphdr), PAYLOAD, sizeof(PAYLOAD));
	assert_csums(&r.v);
}
END_TEST

START_TEST(test_midstream_packet_without_ct)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_ACK);
	struct bpflb_ct_val fv;
	uint8_t in[256];
	size_t len;
	struct run r;

	one_backend_service(1);
	/* Conntrack lost (restart, eviction): the flow is balanced again. */
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_LOCAL, BE_PORT);
	assert_csums(&r.v);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_ESTABLISHED);

	/* A lone RST creates nothing and is left to the stack as it is. */
	f = tcp_flow(CLIENT, 52000, NODE, NODEPORT, F_RST);
	len = build(in, &f);
	run_prog(skel->progs.snat_in, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_mem_eq(r.out, in, len);
	ck_assert_uint_eq(ct_count(), 2);
}
END_TEST

START_TEST(test_syn_reopens_closing_flow)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct bpflb_ct_val fv;
	struct run r;

	one_backend_service(0);
	send_in(&f, &r);
	f.tcp_flags = F_RST;
	send_in(&f, &r);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_CLOSING);

	/* The tuple is reused: a new flow, NEW again, still one pair. */
	f.tcp_flags = F_SYN;
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_REMOTE, BE_PORT);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_NEW);
	ck_assert_uint_eq(ntohs(fv.nat_port), sport_of(&r.v));
	ck_assert_uint_eq(ct_count(), 2);
}
END_TEST

/* --- tests: backend states ----------------------------------------------------- */

START_TEST(test_terminating_backend_keeps_flow)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct run r;

	one_backend_service(1);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);

	/* The daemon marks it terminating and takes it out of the selection. */
	set_backend_state(BE_ID_LOCAL, BPFLB_BE_TERMINATING);
	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 0, 1, 0);

	f.tcp_flags = F_ACK;
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_LOCAL, BE_PORT);
	assert_csums(&r.v);

	/* New flows get nothing. */
	f = tcp_flow(CLIENT, 51001, NODE, NODEPORT, F_SYN);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_BACKEND), 1);
}
END_TEST

START_TEST(test_maintenance_backend_drops_flow)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	struct run r;

	one_backend_service(0);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);

	set_backend_state(BE_ID_REMOTE, BPFLB_BE_MAINTENANCE);
	f.tcp_flags = F_ACK;
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_BACKEND_MAINT), 1);
	ck_assert_uint_eq(svc_stats(SVC_ID).drop_packets, 1);

	/* A backend removed altogether is the same for its flows. */
	ck_assert_int_eq(bpf_map_delete_elem(map_fd(skel->maps.bpflb_backends),
					     &(uint32_t){ BE_ID_REMOTE }), 0);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_BACKEND_MAINT), 2);
}
END_TEST

/* --- tests: SNAT ports --------------------------------------------------------- */

START_TEST(test_snat_port_exhaustion)
{
	uint16_t ports[2];
	struct run r;

	set_node(ip(NODE), 40000, 40001, SEED, 0);
	one_backend_service(0);
	for (int i = 0; i < 3; i++) {
		struct flow f = tcp_flow(CLIENT, 51001 + i, NODE, NODEPORT, F_SYN);

		send_in(&f, &r);
		if (i < 2) {
			ck_assert_int_eq(r.ret, TC_ACT_OK);
			ports[i] = sport_of(&r.v);
			ck_assert_uint_ge(ports[i], 40000);
			ck_assert_uint_le(ports[i], 40001);
		} else {
			ck_assert_int_eq(r.ret, TC_ACT_SHOT);
		}
	}
	ck_assert_uint_ne(ports[0], ports[1]);
	ck_assert_uint_eq(drops(BPFLB_DROP_SNAT_EXHAUSTED), 1);
	ck_assert_uint_eq(ct_count(), 4);
}
END_TEST

START_TEST(test_snat_ports_unique_per_backend)
{
	struct flow f;
	struct run r;
	uint8_t seen[SNAT_MAX - SNAT_MIN + 1] = { 0 };

	one_backend_service(0);
	for (int i = 0; i < 64; i++) {
		f = tcp_flow(CLIENT, 20000 + i, NODE, NODEPORT, F_SYN);
		send_in(&f, &r);
		ck_assert_int_eq(r.ret, TC_ACT_OK);
		ck_assert_uint_ge(sport_of(&r.v), SNAT_MIN);
		ck_assert_uint_le(sport_of(&r.v), SNAT_MAX);
		ck_assert_uint_eq(seen[sport_of(&r.v) - SNAT_MIN], 0);
		seen[sport_of(&r.v) - SNAT_MIN] = 1;
	}
	ck_assert_uint_eq(ct_count(), 128);
}
END_TEST

/* --- tests: conntrack pairs that lose a half --------------------------------------- */

#define CLIENT2 "10.1.0.6"
#define SEC_NS 1000000000ull

/* SYN from client:sport, SYN-ACK from the backend: an established SNAT flow; its port. */
static uint16_t snat_establish(const char *client, uint16_t sport)
{
	struct flow f = tcp_flow(client, sport, NODE, NODEPORT, F_SYN);
	uint16_t nat_port;
	struct run r;

	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE);
	nat_port = sport_of(&r.v);
	f = tcp_flow(BE_REMOTE, BE_PORT, NODE, nat_port, F_SYN | F_ACK);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, client, sport);
	return nat_port;
}

/* A backend packet to nat_port reaches client:sport, from the frontend. */
static void assert_reply_to(uint16_t nat_port, const char *client, uint16_t sport)
{
	struct flow f = tcp_flow(BE_REMOTE, BE_PORT, NODE, nat_port, F_ACK);
	struct run r;

	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, client, sport);
	assert_src(&r.v, NODE, NODEPORT);
	assert_csums(&r.v);
}

START_TEST(test_snat_lost_rev_half_repaired)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_ACK);
	struct bpflb_ct_val rv;
	uint16_t port;
	struct run r;

	one_backend_service(0);
	port = snat_establish(CLIENT, 51000);
	/* The LRU evicts the REV half (or a flush got half way). */
	ck_assert_int_eq(ct_del(BPFLB_CT_REV, IPPROTO_TCP, BE_REMOTE, BE_PORT, NODE, port), 0);

	/* The client's next segment keeps its port and puts the REV half back... */
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_dst(&r.v, BE_REMOTE, BE_PORT);
	assert_src(&r.v, NODE, port);
	ck_assert_int_eq(ct_get(BPFLB_CT_REV, IPPROTO_TCP, BE_REMOTE, BE_PORT, NODE, port, &rv), 0);
	ck_assert_str_eq(ntoa(rv.addr), CLIENT);
	ck_assert_uint_eq(rv.state, BPFLB_CT_ESTABLISHED);
	/* ...so the backend's answer still reaches it. */
	assert_reply_to(port, CLIENT, 51000);
	ck_assert_uint_eq(ct_count(), 2);
	ck_assert_uint_eq(ct_stat(BPFLB_CT_STAT_LOST_REV), 1);
	ck_assert_uint_eq(ct_stat(BPFLB_CT_STAT_REPAIRED_REV), 1);
}
END_TEST

/*
 * The backend speaks first after the REV half was lost: its segment cannot
 * name the client, and handed to the stack it would draw a reset that kills
 * the connection.  It is held back; the client's next segment repairs the
 * pair and the backend's retransmission goes through.
 */
START_TEST(test_snat_lost_rev_half_reply_held_back)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_ACK);
	uint16_t port;
	struct run r;

	one_backend_service(0);
	port = snat_establish(CLIENT, 51000);
	ck_assert_int_eq(ct_del(BPFLB_CT_REV, IPPROTO_TCP, BE_REMOTE, BE_PORT, NODE, port), 0);

	f = tcp_flow(BE_REMOTE, BE_PORT, NODE, port, F_ACK);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);

	f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_ACK);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_src(&r.v, NODE, port);
	assert_reply_to(port, CLIENT, 51000);
}
END_TEST

START_TEST(test_snat_lost_fwd_half_repaired_by_reply)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_ACK);
	struct bpflb_ct_val fv;
	uint16_t port;
	struct run r;

	one_backend_service(0);
	port = snat_establish(CLIENT, 51000);
	ck_assert_int_eq(ct_del(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT), 0);

	/* The backend speaks first: its packet puts the FWD half back. */
	assert_reply_to(port, CLIENT, 51000);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_uint_eq(ntohs(fv.nat_port), port);
	ck_assert_uint_eq(fv.backend_id, BE_ID_REMOTE);

	/* The client goes on with the same port: the backend's connection lives on. */
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_src(&r.v, NODE, port);
	assert_dst(&r.v, BE_REMOTE, BE_PORT);
	ck_assert_uint_eq(ct_count(), 2);
	ck_assert_uint_eq(ct_stat(BPFLB_CT_STAT_LOST_FWD), 1);
	ck_assert_uint_eq(ct_stat(BPFLB_CT_STAT_REPAIRED_FWD), 1);
}
END_TEST

START_TEST(test_snat_lost_fwd_half_found_by_client)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_ACK);
	struct bpflb_ct_val fv;
	uint16_t port;
	struct run r;

	one_backend_service(0);
	port = snat_establish(CLIENT, 51000);
	ck_assert_int_eq(ct_del(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT), 0);

	/* The client speaks first: its flow finds its REV half at its first port candidate. */
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_src(&r.v, NODE, port);
	assert_dst(&r.v, BE_REMOTE, BE_PORT);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	ck_assert_uint_eq(ntohs(fv.nat_port), port);
	assert_reply_to(port, CLIENT, 51000);
	ck_assert_uint_eq(ct_count(), 2);
	ck_assert_uint_eq(ct_stat(BPFLB_CT_STAT_REPAIRED_FWD), 1);
}
END_TEST

START_TEST(test_snat_port_of_lost_half_never_shared)
{
	struct flow a = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_ACK);
	uint16_t port, port_b;
	struct run r;

	/* One SNAT port: whoever holds it, there is no other. */
	set_node(ip(NODE), SNAT_MIN, SNAT_MIN, SEED, 0);
	one_backend_service(0);
	port = snat_establish(CLIENT, 51000);
	ck_assert_int_eq(ct_del(BPFLB_CT_REV, IPPROTO_TCP, BE_REMOTE, BE_PORT, NODE, port), 0);

	/* Client B gets the port A's lost REV half freed. */
	port_b = snat_establish(CLIENT2, 52000);
	ck_assert_uint_eq(port_b, port);

	/* A's next segments never go out with B's port, now or after a second. */
	for (int i = 0; i < 2; i++) {
		send_in(&a, &r);
		ck_assert_msg(r.ret == TC_ACT_SHOT || sport_of(&r.v) != port,
			      "client A's segment went to the backend with client B's port %u", port);
		if (i == 0)
			ct_age(2 * SEC_NS);
	}
	/* The backend's packets on that port reach B only. */
	assert_reply_to(port, CLIENT2, 52000);
	ck_assert_uint_ge(ct_stat(BPFLB_CT_STAT_CONFLICT), 1);
}
END_TEST

START_TEST(test_snat_stale_rev_half_not_used)
{
	struct flow f;
	struct bpflb_ct_val fv;
	struct bpflb_ct_key fk = {
		.saddr = ip(CLIENT), .daddr = ip(NODE), .sport = htons(51000),
		.dport = htons(NODEPORT), .proto = IPPROTO_TCP, .kind = BPFLB_CT_FWD,
	};
	uint8_t in[256];
	size_t len;
	uint16_t port;
	struct run r;

	one_backend_service(0);
	port = snat_establish(CLIENT, 51000);
	/* The client's FWD half moved on to another port (it was lost and re-made). */
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE, NODEPORT, &fv), 0);
	fv.nat_port = htons(port == SNAT_MAX ? SNAT_MIN : port + 1);
	ck_assert_int_eq(bpf_map_update_elem(map_fd(skel->maps.bpflb_ct), &fk, &fv, BPF_EXIST), 0);

	/* A packet to the old port is not translated, and the stale REV half goes. */
	f = tcp_flow(BE_REMOTE, BE_PORT, NODE, port, F_ACK);
	len = build(in, &f);
	run_prog(skel->progs.snat_in, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_mem_eq(r.out, in, len);
	ck_assert_int_ne(ct_get(BPFLB_CT_REV, IPPROTO_TCP, BE_REMOTE, BE_PORT, NODE, port, &fv), 0);
	ck_assert_uint_eq(ct_stat(BPFLB_CT_STAT_CONFLICT), 1);
}
END_TEST

/* Close the flow of client:sport on nat_port: FIN each way (or a RST from the client). */
static void snat_close(const char *client, uint16_t sport, uint16_t nat_port, int rst)
{
	struct flow f = tcp_flow(client, sport, NODE, NODEPORT, rst ? F_RST : F_FIN | F_ACK);
	struct run r;

	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	if (rst)
		return;
	f = tcp_flow(BE_REMOTE, BE_PORT, NODE, nat_port, F_FIN | F_ACK);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
}

START_TEST(test_snat_closed_port_reused)
{
	struct flow b = tcp_flow(CLIENT2, 52000, NODE, NODEPORT, F_SYN);
	struct bpflb_ct_val v;
	uint16_t port;
	struct run r;

	set_node(ip(NODE), SNAT_MIN, SNAT_MIN, SEED, 0);
	one_backend_service(0);
	for (int rst = 0; rst < 2; rst++) {
		port = snat_establish(CLIENT, 51000 + rst);
		snat_close(CLIENT, 51000 + rst, port, rst);
		ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000 + rst, NODE,
					NODEPORT, &v), 0);
		ck_assert_uint_eq(v.flags, rst ? BPFLB_CT_F_RST
					       : BPFLB_CT_F_FIN_CLIENT | BPFLB_CT_F_FIN_BACKEND);

		/* Just closed: the port is not handed out at once. */
		b.sport = 52000 + rst;
		send_in(&b, &r);
		ck_assert_int_eq(r.ret, TC_ACT_SHOT);

		/* Idle past the grace: the new flow takes it, the old pair is gone. */
		ct_age(3 * SEC_NS);
		port = snat_establish(CLIENT2, 52000 + rst);
		ck_assert_uint_eq(port, SNAT_MIN);
		ck_assert_int_ne(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000 + rst, NODE,
					NODEPORT, &v), 0);
		assert_reply_to(port, CLIENT2, 52000 + rst);
		ck_assert_uint_eq(ct_count(), 2);
		ck_assert_uint_eq(ct_stat(BPFLB_CT_STAT_SNAT_REUSED), 2 * rst + 1);

		/* Close B's flow too; the next round's A takes it over. */
		snat_close(CLIENT2, 52000 + rst, port, 1);
		ct_age(3 * SEC_NS);
	}
	ck_assert_uint_eq(drops(BPFLB_DROP_SNAT_EXHAUSTED), 2);
}
END_TEST

START_TEST(test_snat_half_closed_port_kept)
{
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_FIN | F_ACK);
	struct flow b = tcp_flow(CLIENT2, 52000, NODE, NODEPORT, F_SYN);
	uint16_t port;
	struct run r;

	set_node(ip(NODE), SNAT_MIN, SNAT_MIN, SEED, 0);
	one_backend_service(0);
	port = snat_establish(CLIENT, 51000);
	/* The client half-closes; the backend may still be working on its answer. */
	send_in(&f, &r);
	ct_age(30 * SEC_NS);
	send_in(&b, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	assert_reply_to(port, CLIENT, 51000);
}
END_TEST

/* --- tests: Maglev ---------------------------------------------------------------- */

#define MAGLEV_FLOWS 32

/* table[i]: one of three local backends, a pattern the daemon could have built. */
static uint32_t maglev_entry(uint32_t i)
{
	return 1 + (i * 7) % 3;
}

static void maglev_service(void)
{
	static const char *const addrs[] = { "10.244.1.1", "10.244.1.2", "10.244.1.3" };
	int inner, outer = map_fd(skel->maps.bpflb_maglev);
	uint32_t svc_id = SVC_ID;

	/* No slots: a hit can only come from the Maglev table. */
	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 3, 3, BPFLB_SVC_F_MAGLEV);
	for (uint32_t id = 1; id <= 3; id++)
		add_backend(id, addrs[id - 1], BE_PORT, BPFLB_BE_ACTIVE, BPFLB_BE_F_LOCAL);

	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "maglev_svc", 4, 4, BPFLB_MAGLEV_DEFAULT_M, NULL);
	ck_assert_int_ge(inner, 0);
	for (uint32_t i = 0; i < BPFLB_MAGLEV_DEFAULT_M; i++) {
		uint32_t id = maglev_entry(i);

		ck_assert_int_eq(bpf_map_update_elem(inner, &i, &id, 0), 0);
	}
	ck_assert_int_eq(bpf_map_update_elem(outer, &svc_id, &inner, 0), 0);
	close(inner);
}

/* Backend id each flow went to. */
static void maglev_pick(uint32_t *ids)
{
	struct run r;

	for (int i = 0; i < MAGLEV_FLOWS; i++) {
		struct flow f = tcp_flow(CLIENT, 30000 + i * 101, NODE, NODEPORT, F_SYN);
		struct bpflb_ct_val fv;

		send_in(&f, &r);
		ck_assert_int_eq(r.ret, TC_ACT_OK);
		ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 30000 + i * 101, NODE,
					NODEPORT, &fv), 0);
		ck_assert_str_eq(ntoa(r.v.ip->daddr), ntoa(fv.addr));
		ids[i] = fv.backend_id;
	}
}

START_TEST(test_maglev_consistent)
{
	uint32_t first[MAGLEV_FLOWS], second[MAGLEV_FLOWS], other[MAGLEV_FLOWS];
	int used[4] = { 0 }, moved = 0;

	maglev_service();
	maglev_pick(first);
	for (int i = 0; i < MAGLEV_FLOWS; i++) {
		/* The pick is table[hash % M], as userspace computes it. */
		uint32_t h = bpflb_flow_hash(ip(CLIENT), ip(NODE), htons(30000 + i * 101),
					     htons(NODEPORT), IPPROTO_TCP, SEED);

		ck_assert_uint_eq(first[i], maglev_entry(h % BPFLB_MAGLEV_DEFAULT_M));
		used[first[i]]++;
	}
	ck_assert_msg(used[1] && used[2] && used[3], "flows did not spread over the backends");

	/* Another load, other pins (another node, a restart): same seed, same picks. */
	unload();
	load();
	maglev_service();
	maglev_pick(second);
	ck_assert_mem_eq(first, second, sizeof(first));

	/* The seed is part of the hash. */
	unload();
	load();
	set_node(ip(NODE), SNAT_MIN, SNAT_MAX, SEED + 1, 0);
	maglev_service();
	maglev_pick(other);
	for (int i = 0; i < MAGLEV_FLOWS; i++)
		moved += other[i] != first[i];
	ck_assert_int_gt(moved, 0);
}
END_TEST

/* --- tests: events, routing --------------------------------------------------------- */

START_TEST(test_event_rate_limit)
{
	struct bpflb_ev_rate ev;
	struct run r;

	/* 1 event a second: of 5 drops in a burst, 1 is reported, 4 only counted. */
	set_node(ip(NODE), SNAT_MIN, SNAT_MAX, SEED, 1);
	add_service(NODE, NODEPORT, IPPROTO_TCP, SVC_ID, 0, 0, 0);
	for (int i = 0; i < 5; i++) {
		struct flow f = tcp_flow(CLIENT, 51000 + i, NODE, NODEPORT, F_SYN);

		send_in(&f, &r);
		ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	}
	ev = ev_rate();
	ck_assert_uint_eq(ev.sent, 1);
	ck_assert_uint_eq(ev.suppressed, 4);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_BACKEND), 5);
}
END_TEST

static void sh(const char *cmd)
{
	int rc = system(cmd);

	ck_assert_msg(rc == 0, "`%s` failed (%d): iproute2 is needed by this test", cmd, rc);
}

START_TEST(test_fib_redirect)
{
	static const uint8_t dev_mac[ETH_ALEN] = { 0x02, 0x00, 0x00, 0x00, 0xaa, 0x01 };
	static const uint8_t gw_mac[ETH_ALEN] = { 0x02, 0x00, 0x00, 0x00, 0xaa, 0x02 };
	struct flow f = tcp_flow(CLIENT, 51000, NODE, NODEPORT, F_SYN);
	unsigned int ifindex;
	FILE *fwd;
	struct run r;

	/* A namespace of this test's own with a route to the backend via a neighbour. */
	ck_assert_int_eq(unshare(CLONE_NEWNET), 0);
	sh("ip link add bpflb0 address 02:00:00:00:aa:01 type veth peer name bpflb1");
	sh("ip link set bpflb1 up");
	sh("ip link set bpflb0 up");
	sh("ip addr add 10.200.0.1/24 dev bpflb0");
	sh("ip route add 10.244.0.0/16 via 10.200.0.2 dev bpflb0");
	sh("ip neigh add 10.200.0.2 lladdr 02:00:00:00:aa:02 dev bpflb0 nud permanent");
	fwd = fopen("/proc/sys/net/ipv4/conf/all/forwarding", "w");
	ck_assert_ptr_nonnull(fwd);
	fputs("1", fwd);
	fclose(fwd);
	ifindex = if_nametoindex("bpflb0");
	ck_assert_uint_ne(ifindex, 0);

	one_backend_service(0);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_mem_eq(r.v.eth->h_dest, gw_mac, ETH_ALEN);
	ck_assert_mem_eq(r.v.eth->h_source, dev_mac, ETH_ALEN);
	ck_assert_uint_eq(r.v.ip->ttl, 63);
	assert_dst(&r.v, BE_REMOTE, BE_PORT);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE);
	assert_csums(&r.v);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], BPFLB_PKT_LB_DONE | BPFLB_PKT_REDIRECT);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_REDIRECT], ifindex);

	/* TTL 1 would expire: the stack must answer, no redirect. */
	{
		uint8_t in[256];
		size_t len;
		struct iphdr *iph = (void *)(in + sizeof(struct ethhdr));

		f.sport = 51001;
		len = build(in, &f);
		iph->ttl = 1;
		iph->check = 0;
		iph->check = htons(fold(sum16(iph, 20, 0)));
		run_prog(skel->progs.snat_in, in, len, &r);
		ck_assert_int_eq(r.ret, TC_ACT_OK);
		ck_assert_uint_eq(r.v.ip->ttl, 1);
		assert_dst(&r.v, BE_REMOTE, BE_PORT);
		assert_csums(&r.v);
	}
}
END_TEST

/* --- runner ------------------------------------------------------------------- */

static Suite *snat_suite(void)
{
	Suite *s = suite_create("snat");
	struct {
		const char *name;
		const TTest *test;
	} tests[] = {
		{ "forward", test_syn_local_backend },
		{ "forward", test_syn_remote_backend_snat },
		{ "forward", test_established_reuses_backend_and_port },
		{ "forward", test_etp_local_with_local_backend },
		{ "forward", test_udp_to_lb_ip },
		{ "forward", test_ip_options },
		{ "forward", test_midstream_packet_without_ct },
		{ "forward", test_syn_reopens_closing_flow },
		{ "reply", test_reply_from_remote_backend },
		{ "reply", test_reply_unknown_nat_port },
		{ "reply", test_egress_reply_from_local_backend },
		{ "reply", test_egress_other_traffic_passes },
		{ "no_backend", test_etp_local_without_local_backend },
		{ "no_backend", test_no_backend_drops },
		{ "no_backend", test_no_backend_reject },
		{ "passthrough", test_unknown_port_untouched },
		{ "passthrough", test_non_ip_and_fragments_untouched },
		{ "backend_state", test_terminating_backend_keeps_flow },
		{ "backend_state", test_maintenance_backend_drops_flow },
		{ "snat_ports", test_snat_port_exhaustion },
		{ "snat_ports", test_snat_ports_unique_per_backend },
		{ "snat_ports", test_snat_closed_port_reused },
		{ "snat_ports", test_snat_half_closed_port_kept },
		{ "ct_pairs", test_snat_lost_rev_half_repaired },
		{ "ct_pairs", test_snat_lost_rev_half_reply_held_back },
		{ "ct_pairs", test_snat_lost_fwd_half_repaired_by_reply },
		{ "ct_pairs", test_snat_lost_fwd_half_found_by_client },
		{ "ct_pairs", test_snat_port_of_lost_half_never_shared },
		{ "ct_pairs", test_snat_stale_rev_half_not_used },
		{ "maglev", test_maglev_consistent },
		{ "observe", test_event_rate_limit },
		{ "routing", test_fib_redirect },
	};
	TCase *tc = NULL;
	const char *cur = NULL;

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (!cur || strcmp(cur, tests[i].name)) {
			cur = tests[i].name;
			tc = tcase_create(cur);
			tcase_add_checked_fixture(tc, setup, teardown);
			tcase_set_timeout(tc, 60);
			suite_add_tcase(s, tc);
		}
		tcase_add_test(tc, tests[i].test);
	}
	return s;
}

int main(void)
{
	SRunner *sr;
	cpu_set_t cpus;
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "test_snat_fixtures: needs root (BPF, bpffs, netns); skipped\n");
		return 77;
	}
	libbpf_set_print(libbpf_print);
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0 || ensure_bpffs()) {
		perror("test_snat_fixtures: bpffs at " BPF_FS);
		return 1;
	}
	/* No routes, no devices up: FIB lookups fail, translation is all we see. */
	if (unshare(CLONE_NEWNET)) {
		perror("test_snat_fixtures: unshare(CLONE_NEWNET)");
		return 1;
	}
	/* One CPU: per-CPU state (event token bucket) is then the whole state. */
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	snprintf(pin_base, sizeof(pin_base), BPF_FS "/bpflb-snat-test-XXXXXX");
	if (!mkdtemp(pin_base)) {
		perror("test_snat_fixtures: mkdtemp under " BPF_FS);
		return 1;
	}

	sr = srunner_create(snat_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(pin_base);
	return failed ? 1 : 0;
}
