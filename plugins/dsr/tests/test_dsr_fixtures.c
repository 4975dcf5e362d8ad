// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fixtures of DSR, hybrid, and the mode switch: packets built here go
 * through the stage programs of the dsr, hybrid and snat objects (the shared
 * sdk/bpf/bpflb/lb_core.h under three policies) with BPF_PROG_TEST_RUN.
 *
 * Two roles are played by two loads of the objects with their own pin roots:
 * the ingress node ("A", 192.168.1.10), which receives the client's packet
 * and dispatches it, and the backend node ("B", 192.168.1.20), which receives
 * the dispatched packet and sends the backend's reply.  Loading two objects
 * into one pin root shares their maps, which is how a mode switch looks to
 * the datapath: the test feeds a flow's first packet to one mode's program
 * and the next ones to another's.
 *
 * Every rewritten header is checked field by field with checksums recomputed
 * here from the bytes (IPv4 header, TCP/UDP with pseudo header, ICMP).  The
 * run happens in a network namespace of its own with an unconfigured
 * loopback: FIB lookups fail and packets fall back to the stack (TC_ACT_OK).
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

#include "dsr_bpf.skel.h"
#include "hybrid_bpf.skel.h"
#include "snat_bpf.skel.h"
#include "bpf_fixture.h"


/* The scene: a client, node A with a NodePort and an LB IP, backends on node B. */
#define CLIENT	 "10.1.0.5"
#define NODE_A	 "192.168.1.10"
#define NODE_B	 "192.168.1.20"
#define NODEPORT 30080
#define LB_IP	 "172.16.0.100"
#define LB_PORT	 53
#define BE_A	 "10.244.1.7" /* a pod on node A */
#define BE_B	 "10.244.2.9" /* a pod on node B */
#define BE_PORT	 8080
#define SNAT_MIN 40000
#define SNAT_MAX 40999
#define SEED	 0x9e3779b9u
#define IFINDEX	 1 /* the test's loopback: skb->ifindex of every run */

#define SVC_ID	1
#define BE_ID_A 1
#define BE_ID_B 2

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

static const uint8_t MAC_NODE[ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t MAC_PEER[ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

static char pin_base[PATH_MAX / 2]; /* this run's directory, removed at exit */
static int ncpus;

/* --- a node: one or more mode objects sharing one pin root --------------------- */

enum mode { M_SNAT, M_DSR, M_HYBRID };

struct node {
	char pin[PATH_MAX];
	struct snat_bpf *snat;
	struct dsr_bpf *dsr;
	struct hybrid_bpf *hybrid;
	int in[3], out[3];	/* program fds by enum mode, -1 when not loaded */
	struct bpf_object *obj; /* the first loaded: its maps are the pinned ones */
};

static struct node A, B;

static uint32_t ip(const char *s)
{
	return inet_addr(s);
}

static const char *ntoa(uint32_t a)
{
	static char bufs[8][INET_ADDRSTRLEN];
	static int n;
	char *b = bufs[n++ % 8];

	return inet_ntop(AF_INET, &a, b, INET_ADDRSTRLEN);
}

static int map_fd(struct node *n, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(n->obj, name);

	ck_assert_msg(m, "no map %s", name);
	return bpf_map__fd(m);
}

static void set_node(struct node *n, const char *addr, uint32_t flags)
{
	struct bpflb_node_cfg cfg = {
	    .addr = ip(addr),
	    .snat_port_min = SNAT_MIN,
	    .snat_port_max = SNAT_MAX,
	    .hash_seed = SEED,
	    .flags = flags,
	};
	uint32_t zero = 0;

	ck_assert_int_eq(bpf_map_update_elem(map_fd(n, "bpflb_node"), &zero, &cfg, 0), 0);
}

/* Load mode m into node n (a fresh pin root the first time). */
static void node_load(struct node *n, enum mode m, const char *addr, uint32_t flags)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	int err = 0;

	if (!n->obj) {
		snprintf(n->pin, sizeof(n->pin), "%s/n-XXXXXX", pin_base);
		ck_assert_ptr_nonnull(mkdtemp(n->pin));
		for (int i = 0; i < 3; i++)
			n->in[i] = n->out[i] = -1;
	}
	opts.pin_root_path = n->pin;
	switch (m) {
	case M_SNAT:
		n->snat = snat_bpf__open_opts(&opts);
		ck_assert_ptr_nonnull(n->snat);
		err = snat_bpf__load(n->snat);
		ck_assert_msg(!err, "loading snat: %d (verifier log above)", err);
		n->in[m] = bpf_program__fd(n->snat->progs.snat_in);
		n->out[m] = bpf_program__fd(n->snat->progs.snat_out);
		if (!n->obj)
			n->obj = n->snat->obj;
		break;
	case M_DSR:
		n->dsr = dsr_bpf__open_opts(&opts);
		ck_assert_ptr_nonnull(n->dsr);
		err = dsr_bpf__load(n->dsr);
		ck_assert_msg(!err, "loading dsr: %d (verifier log above)", err);
		n->in[m] = bpf_program__fd(n->dsr->progs.dsr_in);
		n->out[m] = bpf_program__fd(n->dsr->progs.dsr_out);
		if (!n->obj)
			n->obj = n->dsr->obj;
		break;
	case M_HYBRID:
		n->hybrid = hybrid_bpf__open_opts(&opts);
		ck_assert_ptr_nonnull(n->hybrid);
		err = hybrid_bpf__load(n->hybrid);
		ck_assert_msg(!err, "loading hybrid: %d (verifier log above)", err);
		n->in[m] = bpf_program__fd(n->hybrid->progs.hybrid_in);
		n->out[m] = bpf_program__fd(n->hybrid->progs.hybrid_out);
		if (!n->obj)
			n->obj = n->hybrid->obj;
		break;
	}
	set_node(n, addr, flags);
	/* The cluster: IP-in-IP is taken from these two nodes only. */
	for (int i = 0; i < 2; i++) {
		uint32_t peer = ip(i ? NODE_B : NODE_A), one = 1;

		ck_assert_int_eq(bpf_map_update_elem(map_fd(n, "bpflb_peers"), &peer, &one, 0), 0);
	}
}

static void node_unload(struct node *n)
{
	snat_bpf__destroy(n->snat);
	dsr_bpf__destroy(n->dsr);
	hybrid_bpf__destroy(n->hybrid);
	rm_tree(n->pin);
	memset(n, 0, sizeof(*n));
}

static void teardown(void)
{
	node_unload(&A);
	node_unload(&B);
}

static void add_service(struct node *n, const char *addr, uint16_t port, uint8_t proto, uint32_t id,
			uint16_t count, uint16_t total, uint16_t flags)
{
	struct bpflb_svc_key k = {.addr = ip(addr), .port = htons(port), .proto = proto};
	struct bpflb_svc v = {.id = id, .count = count, .total = total, .flags = flags};

	ck_assert_int_eq(bpf_map_update_elem(map_fd(n, "bpflb_svc"), &k, &v, 0), 0);
}

static void add_backend(struct node *n, uint32_t id, const char *addr, uint16_t port,
			const char *node_addr, uint8_t flags)
{
	struct bpflb_backend b = {
	    .addr = ip(addr),
	    .port = htons(port),
	    .state = BPFLB_BE_ACTIVE,
	    .flags = flags,
	    .node_addr = ip(node_addr),
	};

	ck_assert_int_eq(bpf_map_update_elem(map_fd(n, "bpflb_backends"), &id, &b, 0), 0);
}

static void add_slot(struct node *n, uint32_t svc_id, uint32_t slot, uint32_t backend_id)
{
	struct bpflb_slot_key k = {.svc_id = svc_id, .slot = slot};

	ck_assert_int_eq(bpf_map_update_elem(map_fd(n, "bpflb_slots"), &k, &backend_id, 0), 0);
}

static void set_mtu(struct node *n, uint32_t mtu)
{
	uint32_t k = IFINDEX;

	ck_assert_int_eq(bpf_map_update_elem(map_fd(n, "bpflb_dev_mtu"), &k, &mtu, 0), 0);
}

/* Node A's services: NodePort 30080/tcp and LB IP 53/udp, both to the pod on node B. */
static void scene_a(uint16_t svc_flags)
{
	add_service(&A, NODE_A, NODEPORT, IPPROTO_TCP, SVC_ID, 1, 1, svc_flags);
	add_service(&A, LB_IP, LB_PORT, IPPROTO_UDP, SVC_ID + 1, 1, 1, svc_flags);
	add_backend(&A, BE_ID_B, BE_B, BE_PORT, NODE_B, 0);
	add_slot(&A, SVC_ID, 0, BE_ID_B);
	add_slot(&A, SVC_ID + 1, 0, BE_ID_B);
}

static uint64_t drops(struct node *n, uint32_t reason)
{
	uint64_t v[ncpus], sum = 0;

	ck_assert_int_eq(bpf_map_lookup_elem(map_fd(n, "bpflb_drops"), &reason, v), 0);
	for (int i = 0; i < ncpus; i++)
		sum += v[i];
	return sum;
}

static uint64_t svc_fwd_packets(struct node *n, uint32_t id)
{
	struct bpflb_svc_stats v[ncpus];
	uint64_t sum = 0;

	if (bpf_map_lookup_elem(map_fd(n, "bpflb_svc_stats"), &id, v))
		return 0;
	for (int i = 0; i < ncpus; i++)
		sum += v[i].fwd_packets;
	return sum;
}

static int ct_get(struct node *n, uint8_t kind, uint8_t proto, const char *saddr, uint16_t sport,
		  const char *daddr, uint16_t dport, struct bpflb_ct_val *val)
{
	struct bpflb_ct_key k = {
	    .saddr = ip(saddr),
	    .daddr = ip(daddr),
	    .sport = htons(sport),
	    .dport = htons(dport),
	    .proto = proto,
	    .kind = kind,
	};

	return bpf_map_lookup_elem(map_fd(n, "bpflb_ct"), &k, val);
}

static unsigned int ct_count(struct node *n)
{
	struct bpflb_ct_key k, next;
	unsigned int cnt = 0;
	int fd = map_fd(n, "bpflb_ct");
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		k = next;
		prev = &k;
		cnt++;
	}
	return cnt;
}

/* --- packets --------------------------------------------------------------- */

struct spec {
	uint8_t proto;
	const char *saddr;
	uint16_t sport;
	const char *daddr;
	uint16_t dport;
	uint8_t tcp_flags;
	const uint8_t *opts; /* IPv4 options, a multiple of 4 bytes */
	size_t nopts;
	uint16_t mss;	/* TCP MSS option (4 bytes) when set */
	size_t payload; /* bytes of payload, a known pattern */
	uint8_t ttl;	/* 0: 64 */
	uint32_t seq;	/* TCP sequence number; 0: 1000 */
	uint32_t ack;	/* TCP acknowledgment number with F_ACK; 0: 2000 */
};

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

/* IPv4 + TCP/UDP + payload at buf, all checksums valid; returns its length. */
static size_t build_ip(uint8_t *buf, const struct spec *p)
{
	struct iphdr *iph = (void *)buf;
	size_t ihl = sizeof(*iph) + p->nopts;
	uint8_t *l4 = buf + ihl;
	size_t tcpopt = p->proto == IPPROTO_TCP && p->mss ? 4 : 0;
	size_t l4hdr =
	    (p->proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr)) + tcpopt;
	size_t l4len = l4hdr + p->payload;

	memset(buf, 0, ihl + l4len);
	iph->version = 4;
	iph->ihl = ihl / 4;
	iph->tot_len = htons(ihl + l4len);
	iph->id = htons(0x1234);
	iph->frag_off = htons(0x4000);
	iph->ttl = p->ttl ? p->ttl : 64;
	iph->protocol = p->proto;
	iph->saddr = ip(p->saddr);
	iph->daddr = ip(p->daddr);
	if (p->nopts)
		memcpy(iph + 1, p->opts, p->nopts);
	iph->check = htons(fold(sum16(iph, ihl, 0)));
	for (size_t i = 0; i < p->payload; i++)
		l4[l4hdr + i] = pattern(i);

	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		th->source = htons(p->sport);
		th->dest = htons(p->dport);
		th->seq = htonl(p->seq ? p->seq : 1000);
		th->ack_seq = htonl(p->tcp_flags & F_ACK ? (p->ack ? p->ack : 2000) : 0);
		th->doff = l4hdr / 4;
		l4[13] = p->tcp_flags;
		th->window = htons(65535);
		if (tcpopt) {
			l4[20] = 2;
			l4[21] = 4;
			l4[22] = p->mss >> 8;
			l4[23] = p->mss & 0xff;
		}
		th->check = htons(fold(sum16(l4, l4len, pseudo_sum(iph, l4len))));
	} else {
		struct udphdr *uh = (void *)l4;
		uint16_t c;

		uh->source = htons(p->sport);
		uh->dest = htons(p->dport);
		uh->len = htons(l4len);
		c = fold(sum16(l4, l4len, pseudo_sum(iph, l4len)));
		uh->check = htons(c ? c : 0xffff);
	}
	return ihl + l4len;
}

static size_t eth(uint8_t *buf)
{
	struct ethhdr *e = (void *)buf;

	memcpy(e->h_dest, MAC_NODE, ETH_ALEN);
	memcpy(e->h_source, MAC_PEER, ETH_ALEN);
	e->h_proto = htons(ETH_P_IP);
	return sizeof(*e);
}

static size_t build(uint8_t *buf, const struct spec *p)
{
	size_t n = eth(buf);

	return n + build_ip(buf + n, p);
}

/* The DSR option as the ingress node writes it. */
static void dsr_opt(uint8_t *o, const char *addr, uint16_t port)
{
	uint32_t a = ip(addr);

	o[0] = BPFLB_DSR_OPT_TYPE;
	o[1] = BPFLB_DSR_OPT_LEN;
	o[2] = port >> 8;
	o[3] = port & 0xff;
	memcpy(o + 4, &a, 4);
}

/* The inner packet p in IP-in-IP from osrc to odst. */
static size_t build_ipip(uint8_t *buf, const char *osrc, const char *odst, const struct spec *p)
{
	size_t n = eth(buf), inner = build_ip(buf + n + 20, p);
	struct iphdr *o = (void *)(buf + n);

	memset(o, 0, sizeof(*o));
	o->version = 4;
	o->ihl = 5;
	o->tot_len = htons(20 + inner);
	o->frag_off = htons(0x4000);
	o->ttl = 64;
	o->protocol = 4;
	o->saddr = ip(osrc);
	o->daddr = ip(odst);
	o->check = htons(fold(sum16(o, 20, 0)));
	return n + 20 + inner;
}

struct view {
	struct iphdr *outer; /* IP-in-IP: the outer header, else NULL */
	struct iphdr *ip;    /* the (inner) TCP/UDP packet */
	struct tcphdr *tcp;
	struct udphdr *udp;
	uint8_t *l4;
	uint32_t l4len;
};

static struct view view_of(uint8_t *buf, size_t len)
{
	struct view v = {0};
	struct iphdr *iph = (void *)(buf + sizeof(struct ethhdr));

	ck_assert_uint_ge(len, sizeof(struct ethhdr) + sizeof(struct iphdr));
	ck_assert_uint_eq(len, sizeof(struct ethhdr) + ntohs(iph->tot_len));
	if (iph->protocol == 4) {
		v.outer = iph;
		iph = (void *)((uint8_t *)iph + iph->ihl * 4);
		ck_assert_uint_eq(ntohs(v.outer->tot_len), v.outer->ihl * 4 + ntohs(iph->tot_len));
	}
	v.ip = iph;
	v.l4 = (uint8_t *)iph + iph->ihl * 4;
	v.l4len = ntohs(iph->tot_len) - iph->ihl * 4;
	if (iph->protocol == IPPROTO_TCP)
		v.tcp = (void *)v.l4;
	else if (iph->protocol == IPPROTO_UDP)
		v.udp = (void *)v.l4;
	return v;
}

/* Checksums recomputed here, from the bytes, without trusting the datapath. */
static void assert_csums(const struct view *v)
{
	if (v->outer)
		ck_assert_msg(fold(sum16(v->outer, v->outer->ihl * 4, 0)) == 0,
			      "bad outer IPv4 header checksum");
	ck_assert_msg(fold(sum16(v->ip, v->ip->ihl * 4, 0)) == 0, "bad IPv4 header checksum");
	if (v->udp && v->udp->check == 0)
		return;
	ck_assert_msg(fold(sum16(v->l4, v->l4len, pseudo_sum(v->ip, v->l4len))) == 0,
		      "bad %s checksum", v->tcp ? "TCP" : "UDP");
}

static uint16_t sport_of(const struct view *v)
{
	return ntohs(v->tcp ? v->tcp->source : v->udp->source);
}

static uint16_t dport_of(const struct view *v)
{
	return ntohs(v->tcp ? v->tcp->dest : v->udp->dest);
}

/* The payload made it through unchanged. */
static void assert_payload(const struct view *v, size_t n)
{
	size_t hdr = v->tcp ? v->tcp->doff * 4 : sizeof(struct udphdr);

	ck_assert_uint_eq(v->l4len, hdr + n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(v->l4[hdr + i] == pattern(i), "payload byte %zu changed", i);
}

static uint16_t mss_of(const struct view *v)
{
	ck_assert_uint_ge(v->tcp->doff, 6);
	ck_assert_uint_eq(v->l4[20], 2);
	return (uint16_t)(v->l4[22] << 8 | v->l4[23]);
}

#define assert_dst(v, addr, port)                                                                  \
	do {                                                                                       \
		ck_assert_str_eq(ntoa((v)->ip->daddr), addr);                                      \
		ck_assert_uint_eq(dport_of(v), port);                                              \
	} while (0)
#define assert_src(v, addr, port)                                                                  \
	do {                                                                                       \
		ck_assert_str_eq(ntoa((v)->ip->saddr), addr);                                      \
		ck_assert_uint_eq(sport_of(v), port);                                              \
	} while (0)

/* The DSR option is the first IPv4 option of the packet and names addr:port. */
static void assert_dsr_opt(const struct view *v, const char *addr, uint16_t port)
{
	uint8_t want[8];

	dsr_opt(want, addr, port);
	ck_assert_uint_ge(v->ip->ihl, 7);
	ck_assert_mem_eq((uint8_t *)(v->ip + 1), want, 8);
}

/* --- running a program ----------------------------------------------------- */

struct run {
	int ret;
	uint8_t out[4096];
	uint32_t out_len;
	struct __sk_buff ctx;
	struct view v;
};

static void run_fd(int prog_fd, const uint8_t *in, size_t len, struct run *r)
{
	struct __sk_buff ctx = {.ifindex = IFINDEX, .ingress_ifindex = IFINDEX};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = r->out,
		    .data_size_out = sizeof(r->out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .ctx_out = &r->ctx, .ctx_size_out = sizeof(r->ctx), .repeat = 1);
	int err;

	memset(r, 0, sizeof(*r));
	err = bpf_prog_test_run_opts(prog_fd, &o);
	ck_assert_msg(!err, "BPF_PROG_TEST_RUN: %s", strerror(errno));
	r->ret = o.retval;
	r->out_len = o.data_size_out;
	if (r->out_len >= sizeof(struct ethhdr) + sizeof(struct iphdr))
		r->v = view_of(r->out, r->out_len);
}

static void send_in(struct node *n, enum mode m, const struct spec *p, struct run *r)
{
	uint8_t pkt[4096];

	ck_assert_int_ge(n->in[m], 0);
	run_fd(n->in[m], pkt, build(pkt, p), r);
}

static void send_out(struct node *n, enum mode m, const struct spec *p, struct run *r)
{
	uint8_t pkt[4096];

	ck_assert_int_ge(n->out[m], 0);
	run_fd(n->out[m], pkt, build(pkt, p), r);
}

/* Feed what one run put out into another program (A's dispatch into B). */
static void forward(int prog_fd, const struct run *from, struct run *r)
{
	uint8_t pkt[4096];

	memcpy(pkt, from->out, from->out_len);
	run_fd(prog_fd, pkt, from->out_len, r);
}

static struct spec tcp(const char *saddr, uint16_t sport, const char *daddr, uint16_t dport,
		       uint8_t flags)
{
	return (struct spec){.proto = IPPROTO_TCP,
			     .saddr = saddr,
			     .sport = sport,
			     .daddr = daddr,
			     .dport = dport,
			     .tcp_flags = flags,
			     .payload = 12};
}

static struct spec udp(const char *saddr, uint16_t sport, const char *daddr, uint16_t dport)
{
	return (struct spec){.proto = IPPROTO_UDP,
			     .saddr = saddr,
			     .sport = sport,
			     .daddr = daddr,
			     .dport = dport,
			     .payload = 12};
}

/* --- ingress node: option dispatch ------------------------------------------------ */

START_TEST(test_opt_syn_dispatch)
{
	struct spec s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct bpflb_ct_val fv;
	struct run r;

	node_load(&A, M_DSR, NODE_A, 0);
	scene_a(0);
	s.mss = 1460;
	send_in(&A, M_DSR, &s, &r);

	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_ptr_null(r.v.outer);
	/* DNAT only: the client address reaches the backend. */
	assert_src(&r.v, CLIENT, 51000);
	assert_dst(&r.v, BE_B, BE_PORT);
	/* The frontend rides in the option, 8 bytes more in every length field. */
	ck_assert_uint_eq(r.v.ip->ihl, 7);
	assert_dsr_opt(&r.v, NODE_A, NODEPORT);
	ck_assert_uint_eq(ntohs(r.v.ip->tot_len), 20 + 8 + 24 + 12);
	ck_assert_uint_eq(r.v.ip->ttl, 64); /* no route here: the stack forwards, and decrements */
	ck_assert_uint_eq(mss_of(&r.v), 1460); /* option dispatch leaves data segments alone */
	assert_payload(&r.v, 12);
	assert_csums(&r.v);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], BPFLB_PKT_LB_DONE);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_SVC], SVC_ID);

	/* One half of the flow here: the FWD entry, no REV (replies never come back). */
	ck_assert_int_eq(
	    ct_get(&A, BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.fwd, BPFLB_FWD_DSR_OPT);
	ck_assert_uint_eq(fv.state, BPFLB_CT_NEW);
	ck_assert_str_eq(ntoa(fv.addr), BE_B);
	ck_assert_uint_eq(ntohs(fv.port), BE_PORT);
	ck_assert_uint_eq(fv.nat_addr, 0);
	ck_assert_uint_eq(fv.backend_id, BE_ID_B);
	ck_assert_uint_eq(ct_count(&A), 1);
	ck_assert_uint_eq(svc_fwd_packets(&A, SVC_ID), 1);
}
END_TEST

START_TEST(test_opt_rest_of_flow)
{
	struct spec s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct bpflb_ct_val fv;
	struct run r;

	node_load(&A, M_DSR, NODE_A, 0);
	scene_a(0);
	send_in(&A, M_DSR, &s, &r);

	/* A retransmitted SYN carries the option again: B may have missed the first. */
	send_in(&A, M_DSR, &s, &r);
	assert_dsr_opt(&r.v, NODE_A, NODEPORT);

	/* The client's ACK: no option, DNAT only, and it stands for the unseen SYN-ACK. */
	s.tcp_flags = F_ACK;
	send_in(&A, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.v.ip->ihl, 5);
	assert_src(&r.v, CLIENT, 51000);
	assert_dst(&r.v, BE_B, BE_PORT);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);
	ck_assert_int_eq(
	    ct_get(&A, BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_ESTABLISHED);

	s.tcp_flags = F_FIN | F_ACK;
	send_in(&A, M_DSR, &s, &r);
	ck_assert_int_eq(
	    ct_get(&A, BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.state, BPFLB_CT_CLOSING);
	ck_assert_uint_eq(ct_count(&A), 1);
}
END_TEST

START_TEST(test_opt_udp_every_datagram)
{
	struct spec s = udp(CLIENT, 5353, LB_IP, LB_PORT);
	struct bpflb_ct_val fv;
	struct run r;

	node_load(&A, M_DSR, NODE_A, 0);
	scene_a(0);
	for (int i = 0; i < 3; i++) {
		send_in(&A, M_DSR, &s, &r);
		ck_assert_int_eq(r.ret, TC_ACT_OK);
		assert_src(&r.v, CLIENT, 5353);
		assert_dst(&r.v, BE_B, BE_PORT);
		assert_dsr_opt(&r.v, LB_IP, LB_PORT);
		ck_assert_uint_eq(ntohs(r.v.udp->len), 8 + 12);
		assert_payload(&r.v, 12);
		assert_csums(&r.v);
	}
	ck_assert_int_eq(ct_get(&A, BPFLB_CT_FWD, IPPROTO_UDP, CLIENT, 5353, LB_IP, LB_PORT, &fv),
			 0);
	ck_assert_uint_eq(fv.fwd, BPFLB_FWD_DSR_OPT);
	ck_assert_uint_eq(ct_count(&A), 1);
}
END_TEST

START_TEST(test_opt_after_existing_options)
{
	/* Options already there stay, behind ours; a full header gets SNAT instead. */
	static const uint8_t nops[4] = {1, 1, 1, 0};
	static const uint8_t full[36] = {1, 1, 1, 1};
	struct spec s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct bpflb_ct_val fv;
	struct run r;

	node_load(&A, M_DSR, NODE_A, 0);
	scene_a(0);
	s.opts = nops;
	s.nopts = sizeof(nops);
	send_in(&A, M_DSR, &s, &r);
	ck_assert_uint_eq(r.v.ip->ihl, 8);
	assert_dsr_opt(&r.v, NODE_A, NODEPORT);
	ck_assert_mem_eq((uint8_t *)(r.v.ip + 1) + 8, nops, 4);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);

	s = tcp(CLIENT, 51001, NODE_A, NODEPORT, F_SYN);
	s.opts = full;
	s.nopts = sizeof(full);
	send_in(&A, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE_A);
	ck_assert_int_eq(
	    ct_get(&A, BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51001, NODE_A, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.fwd, BPFLB_FWD_SNAT);
}
END_TEST

/* --- ingress node: IP-in-IP dispatch ------------------------------------------------ */

static void assert_outer(const struct view *v, const char *src, const char *dst)
{
	ck_assert_ptr_nonnull(v->outer);
	ck_assert_uint_eq(v->outer->version, 4);
	ck_assert_uint_eq(v->outer->ihl, 5);
	ck_assert_uint_eq(v->outer->protocol, 4);
	ck_assert_uint_eq(v->outer->ttl, 64);
	ck_assert_uint_eq(ntohs(v->outer->frag_off), 0x4000);
	ck_assert_uint_eq(v->outer->tos, v->ip->tos);
	ck_assert_str_eq(ntoa(v->outer->saddr), src);
	ck_assert_str_eq(ntoa(v->outer->daddr), dst);
}

START_TEST(test_ipip_dispatch)
{
	struct spec s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct bpflb_ct_val fv;
	struct run r;

	node_load(&A, M_DSR, NODE_A, BPFLB_NODE_F_DSR_IPIP);
	scene_a(0);
	send_in(&A, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	/* Outer: this node to the backend's node, no options, DF. */
	assert_outer(&r.v, NODE_A, NODE_B);
	ck_assert_uint_eq(ntohs(r.v.outer->tot_len), 20 + 20 + 8 + 20 + 12);
	/* Inner: DNATed, client kept, option on the SYN, TTL spent by our routing. */
	assert_src(&r.v, CLIENT, 51000);
	assert_dst(&r.v, BE_B, BE_PORT);
	assert_dsr_opt(&r.v, NODE_A, NODEPORT);
	ck_assert_uint_eq(r.v.ip->ttl, 63);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);
	ck_assert_int_eq(
	    ct_get(&A, BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT, &fv), 0);
	ck_assert_uint_eq(fv.fwd, BPFLB_FWD_DSR_IPIP);

	/* The rest of the flow: encapsulated, no option. */
	s.tcp_flags = F_ACK;
	send_in(&A, M_DSR, &s, &r);
	assert_outer(&r.v, NODE_A, NODE_B);
	ck_assert_uint_eq(r.v.ip->ihl, 5);
	ck_assert_uint_eq(ntohs(r.v.outer->tot_len), 20 + 20 + 20 + 12);
	assert_dst(&r.v, BE_B, BE_PORT);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);

	/* UDP: encapsulated, and the option on every datagram. */
	s = udp(CLIENT, 5353, LB_IP, LB_PORT);
	send_in(&A, M_DSR, &s, &r);
	assert_outer(&r.v, NODE_A, NODE_B);
	assert_dsr_opt(&r.v, LB_IP, LB_PORT);
	assert_dst(&r.v, BE_B, BE_PORT);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);
}
END_TEST

/*
 * The dispatch method is a node setting read per packet: flows keep the one
 * they started with when it changes.
 */
START_TEST(test_dispatch_change_keeps_flows)
{
	struct spec s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct run r;

	node_load(&A, M_DSR, NODE_A, 0);
	scene_a(0);
	send_in(&A, M_DSR, &s, &r);
	set_node(&A, NODE_A, BPFLB_NODE_F_DSR_IPIP);
	s.tcp_flags = F_ACK;
	send_in(&A, M_DSR, &s, &r);
	ck_assert_ptr_null(r.v.outer);
	assert_dst(&r.v, BE_B, BE_PORT);

	s = tcp(CLIENT, 51001, NODE_A, NODEPORT, F_SYN);
	send_in(&A, M_DSR, &s, &r);
	assert_outer(&r.v, NODE_A, NODE_B);
}
END_TEST

/* --- MTU -------------------------------------------------------------------------- */

/* An ICMP fragmentation needed announcing mtu, quoting the original packet in. */
static void assert_frag_needed(const struct run *r, const uint8_t *in, uint16_t mtu)
{
	const struct iphdr *oip = (const void *)(in + sizeof(struct ethhdr));
	const struct ethhdr *e = (const void *)r->out;
	const struct iphdr *iph = (const void *)(r->out + sizeof(struct ethhdr));
	const uint8_t *icmp = (const uint8_t *)iph + 20;
	size_t quote = oip->ihl * 4 + 8;

	ck_assert_int_eq(r->ret, TC_ACT_REDIRECT);
	ck_assert_uint_eq(r->out_len, sizeof(struct ethhdr) + 20 + 8 + quote);
	ck_assert_mem_eq(e->h_dest, MAC_PEER, ETH_ALEN);
	ck_assert_uint_eq(iph->protocol, IPPROTO_ICMP);
	ck_assert_uint_eq(iph->saddr, oip->daddr);
	ck_assert_uint_eq(iph->daddr, oip->saddr);
	ck_assert_msg(fold(sum16(iph, 20, 0)) == 0, "bad IPv4 header checksum");
	ck_assert_uint_eq(icmp[0], 3);
	ck_assert_uint_eq(icmp[1], 4);
	ck_assert_uint_eq(icmp[6] << 8 | icmp[7], mtu);
	ck_assert_msg(fold(sum16(icmp, 8 + quote, 0)) == 0, "bad ICMP checksum");
	ck_assert_mem_eq(icmp + 8, oip, quote);
}

START_TEST(test_mtu_frag_needed)
{
	struct spec s = udp(CLIENT, 5353, LB_IP, LB_PORT);
	uint8_t in[4096];
	size_t len;
	struct run r;

	node_load(&A, M_DSR, NODE_A, 0);
	scene_a(0);
	set_mtu(&A, 1500);
	/* A full-size datagram fits the wire, not the wire plus the option. */
	s.payload = 1500 - 20 - 8;
	len = build(in, &s);
	run_fd(A.in[M_DSR], in, len, &r);
	assert_frag_needed(&r, in, 1500 - 8);
	ck_assert_uint_eq(drops(&A, BPFLB_DROP_MTU), 1);

	/* What the client sends next fits. */
	s.payload = 1492 - 20 - 8;
	send_in(&A, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(ntohs(r.v.ip->tot_len), 1500);
	assert_payload(&r.v, s.payload);
	assert_csums(&r.v);

	/* IP-in-IP: 20 bytes more on every packet, 28 with the option. */
	set_node(&A, NODE_A, BPFLB_NODE_F_DSR_IPIP);
	s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	send_in(&A, M_DSR, &s, &r);
	s.tcp_flags = F_ACK;
	s.payload = 1500 - 40;
	len = build(in, &s);
	run_fd(A.in[M_DSR], in, len, &r);
	assert_frag_needed(&r, in, 1500 - 20);
	s.payload = 1480 - 40;
	send_in(&A, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(ntohs(r.v.outer->tot_len), 1500);
	assert_payload(&r.v, s.payload);
	assert_csums(&r.v);

	/* A device with jumbo frames takes the same packet as it is. */
	set_mtu(&A, 9000);
	s.payload = 1500 - 40;
	send_in(&A, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(ntohs(r.v.outer->tot_len), 1520);
	ck_assert_uint_eq(drops(&A, BPFLB_DROP_MTU), 2);
}
END_TEST

/* --- which forwarding a new flow gets ------------------------------------------------ */

static uint8_t fwd_of(struct node *n, uint8_t proto, const char *saddr, uint16_t sport,
		      const char *daddr, uint16_t dport)
{
	struct bpflb_ct_val fv;

	ck_assert_int_eq(ct_get(n, BPFLB_CT_FWD, proto, saddr, sport, daddr, dport, &fv), 0);
	return fv.fwd;
}

START_TEST(test_hybrid_tcp_dsr_udp_snat)
{
	struct spec t = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct spec u = udp(CLIENT, 5353, LB_IP, LB_PORT);
	struct run r;

	node_load(&A, M_HYBRID, NODE_A, 0);
	scene_a(0);
	send_in(&A, M_HYBRID, &t, &r);
	assert_src(&r.v, CLIENT, 51000);
	assert_dsr_opt(&r.v, NODE_A, NODEPORT);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT),
			  BPFLB_FWD_DSR_OPT);
	send_in(&A, M_HYBRID, &u, &r);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE_A);
	ck_assert_uint_eq(r.v.ip->ihl, 5);
	assert_dst(&r.v, BE_B, BE_PORT);
	assert_csums(&r.v);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_UDP, CLIENT, 5353, LB_IP, LB_PORT), BPFLB_FWD_SNAT);
}
END_TEST

START_TEST(test_service_forwarding_override)
{
	struct spec t = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct run r;

	/* forwarding = snat in DSR mode. */
	node_load(&A, M_DSR, NODE_A, 0);
	scene_a(BPFLB_SVC_F_FWD_SNAT);
	send_in(&A, M_DSR, &t, &r);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE_A);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT), BPFLB_FWD_SNAT);
	node_unload(&A);

	/* forwarding = dsr in SNAT mode; and UDP in hybrid mode. */
	node_load(&A, M_SNAT, NODE_A, 0);
	node_load(&A, M_HYBRID, NODE_A, 0);
	scene_a(BPFLB_SVC_F_FWD_DSR);
	send_in(&A, M_SNAT, &t, &r);
	assert_src(&r.v, CLIENT, 51000);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT),
			  BPFLB_FWD_DSR_OPT);
	t = udp(CLIENT, 5353, LB_IP, LB_PORT);
	send_in(&A, M_HYBRID, &t, &r);
	assert_src(&r.v, CLIENT, 5353);
	assert_dsr_opt(&r.v, LB_IP, LB_PORT);
}
END_TEST

START_TEST(test_local_and_fallbacks)
{
	struct spec t = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct run r;

	node_load(&A, M_DSR, NODE_A, 0);
	/* A backend on this node: DNAT only, as in every mode (also ETP=Local). */
	add_service(&A, NODE_A, NODEPORT, IPPROTO_TCP, SVC_ID, 1, 2, BPFLB_SVC_F_ETP_LOCAL);
	add_backend(&A, BE_ID_A, BE_A, BE_PORT, NODE_A, BPFLB_BE_F_LOCAL);
	add_slot(&A, SVC_ID, 0, BE_ID_A);
	send_in(&A, M_DSR, &t, &r);
	assert_src(&r.v, CLIENT, 51000);
	assert_dst(&r.v, BE_A, BE_PORT);
	ck_assert_uint_eq(r.v.ip->ihl, 5);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT),
			  BPFLB_FWD_LOCAL);
	ck_assert_uint_eq(ct_count(&A), 2);

	/* A backend the daemon marked unreachable by DSR: SNAT. */
	add_service(&A, NODE_A, NODEPORT, IPPROTO_TCP, SVC_ID, 1, 1, 0);
	add_backend(&A, BE_ID_B, BE_B, BE_PORT, NODE_B, BPFLB_BE_F_HOSTNET | BPFLB_BE_F_NO_DSR);
	add_slot(&A, SVC_ID, 0, BE_ID_B);
	t.sport = 51001;
	send_in(&A, M_DSR, &t, &r);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE_A);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, CLIENT, 51001, NODE_A, NODEPORT), BPFLB_FWD_SNAT);

	/* The client is the backend's node: its replies would never leave it. */
	add_backend(&A, BE_ID_B, BE_B, BE_PORT, NODE_B, 0);
	t = tcp(NODE_B, 51002, NODE_A, NODEPORT, F_SYN);
	send_in(&A, M_DSR, &t, &r);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE_A);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, NODE_B, 51002, NODE_A, NODEPORT), BPFLB_FWD_SNAT);
	t = tcp(CLIENT, 51003, NODE_A, NODEPORT, F_SYN);
	send_in(&A, M_DSR, &t, &r);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, CLIENT, 51003, NODE_A, NODEPORT),
			  BPFLB_FWD_DSR_OPT);
}
END_TEST

/* --- backend node -------------------------------------------------------------------- */

/* The dispatched SYN of CLIENT:51000 -> NODE_A:30080, as it arrives at node B. */
static struct spec dispatched(uint8_t *opt, uint8_t flags)
{
	struct spec s = tcp(CLIENT, 51000, BE_B, BE_PORT, flags);

	dsr_opt(opt, NODE_A, NODEPORT);
	s.opts = opt;
	s.nopts = 8;
	s.mss = 1460;
	return s;
}

static void assert_rev(struct node *n, uint8_t proto, const char *backend, uint16_t bport,
		       const char *fe, uint16_t fport, uint8_t fwd, uint8_t state)
{
	struct bpflb_ct_val rv;

	ck_assert_int_eq(ct_get(n, BPFLB_CT_REV, proto, backend, bport, CLIENT,
				proto == IPPROTO_TCP ? 51000 : 5353, &rv),
			 0);
	ck_assert_uint_eq(rv.fwd, fwd);
	ck_assert_uint_eq(rv.state, state);
	ck_assert_str_eq(ntoa(rv.addr), CLIENT);
	ck_assert_str_eq(ntoa(rv.nat_addr), fe);
	ck_assert_uint_eq(ntohs(rv.nat_port), fport);
	/* No backend id on this half: the client's SYN it was made for. */
	ck_assert_uint_eq(rv.syn_seq, proto == IPPROTO_TCP ? 1000 : 0);
}

START_TEST(test_backend_opt)
{
	uint8_t opt[8];
	struct spec s = dispatched(opt, F_SYN);
	struct run r;

	node_load(&B, M_DSR, NODE_B, 0);
	/* B serves the same NodePort: its service id goes to the statistics. */
	add_service(&B, NODE_B, NODEPORT, IPPROTO_TCP, 7, 1, 1, 0);
	send_in(&B, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	/* The backend gets the packet without the option, as the client sent it. */
	ck_assert_uint_eq(r.v.ip->ihl, 5);
	ck_assert_uint_eq(ntohs(r.v.ip->tot_len), 20 + 24 + 12);
	assert_src(&r.v, CLIENT, 51000);
	assert_dst(&r.v, BE_B, BE_PORT);
	ck_assert_uint_eq(mss_of(&r.v), 1460);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], BPFLB_PKT_LB_DONE);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_SVC], 7);
	/* The REV half: keyed by the reply, holding the frontend. */
	assert_rev(&B, IPPROTO_TCP, BE_B, BE_PORT, NODE_A, NODEPORT, BPFLB_FWD_DSR_OPT,
		   BPFLB_CT_NEW);
	ck_assert_uint_eq(ct_count(&B), 1);

	/* The SYN-ACK leaves with the frontend as source; MSS untouched (option dispatch). */
	s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_SYN | F_ACK);
	s.mss = 1460;
	send_out(&B, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	assert_src(&r.v, NODE_A, NODEPORT);
	assert_dst(&r.v, CLIENT, 51000);
	ck_assert_uint_eq(mss_of(&r.v), 1460);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], BPFLB_PKT_LB_DONE | BPFLB_PKT_REPLY);
	assert_rev(&B, IPPROTO_TCP, BE_B, BE_PORT, NODE_A, NODEPORT, BPFLB_FWD_DSR_OPT,
		   BPFLB_CT_ESTABLISHED);
	/* B counts what it translates for the service: the replies. */
	ck_assert_uint_eq(svc_fwd_packets(&B, 7), 1);

	/* The rest of the flow: nothing to do on the way in; FIN closes. */
	s = tcp(CLIENT, 51000, BE_B, BE_PORT, F_ACK);
	send_in(&B, M_DSR, &s, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], 0);
	s.tcp_flags = F_FIN | F_ACK;
	send_in(&B, M_DSR, &s, &r);
	assert_rev(&B, IPPROTO_TCP, BE_B, BE_PORT, NODE_A, NODEPORT, BPFLB_FWD_DSR_OPT,
		   BPFLB_CT_CLOSING);
}
END_TEST

START_TEST(test_backend_udp)
{
	uint8_t opt[8];
	struct spec s = udp(CLIENT, 5353, BE_B, BE_PORT);
	struct run r;

	node_load(&B, M_DSR, NODE_B, 0);
	dsr_opt(opt, LB_IP, LB_PORT);
	s.opts = opt;
	s.nopts = 8;
	for (int i = 0; i < 2; i++) {
		send_in(&B, M_DSR, &s, &r);
		ck_assert_uint_eq(r.v.ip->ihl, 5);
		assert_payload(&r.v, 12);
		assert_csums(&r.v);
	}
	assert_rev(&B, IPPROTO_UDP, BE_B, BE_PORT, LB_IP, LB_PORT, BPFLB_FWD_DSR_OPT, BPFLB_CT_NEW);
	ck_assert_uint_eq(ct_count(&B), 1);

	s = udp(BE_B, BE_PORT, CLIENT, 5353);
	send_out(&B, M_DSR, &s, &r);
	assert_src(&r.v, LB_IP, LB_PORT);
	assert_csums(&r.v);

	/* The client reuses its port toward another frontend: the entry follows. */
	s = udp(CLIENT, 5353, BE_B, BE_PORT);
	dsr_opt(opt, NODE_A, 30053);
	s.opts = opt;
	s.nopts = 8;
	send_in(&B, M_DSR, &s, &r);
	assert_rev(&B, IPPROTO_UDP, BE_B, BE_PORT, NODE_A, 30053, BPFLB_FWD_DSR_OPT, BPFLB_CT_NEW);
}
END_TEST

START_TEST(test_backend_ipip_and_mss_clamp)
{
	uint8_t opt[8], in[4096];
	struct spec s = dispatched(opt, F_SYN);
	struct run r;

	node_load(&B, M_DSR, NODE_B, 0);
	set_mtu(&B, 1500);
	run_fd(B.in[M_DSR], in, build_ipip(in, NODE_A, NODE_B, &s), &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	/* Decapsulated, option removed: the packet the client sent, DNATed. */
	ck_assert_ptr_null(r.v.outer);
	ck_assert_uint_eq(r.v.ip->ihl, 5);
	assert_src(&r.v, CLIENT, 51000);
	assert_dst(&r.v, BE_B, BE_PORT);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);
	assert_rev(&B, IPPROTO_TCP, BE_B, BE_PORT, NODE_A, NODEPORT, BPFLB_FWD_DSR_IPIP,
		   BPFLB_CT_NEW);

	/* The SYN-ACK announces 20 bytes less: the client's segments get encapsulated. */
	s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_SYN | F_ACK);
	s.mss = 1460;
	send_out(&B, M_DSR, &s, &r);
	assert_src(&r.v, NODE_A, NODEPORT);
	ck_assert_uint_eq(mss_of(&r.v), 1500 - 20 - 40);
	assert_csums(&r.v);

	/* The rest of the flow is decapsulated and passed on. */
	s = tcp(CLIENT, 51000, BE_B, BE_PORT, F_ACK);
	run_fd(B.in[M_DSR], in, build_ipip(in, NODE_A, NODE_B, &s), &r);
	ck_assert_ptr_null(r.v.outer);
	assert_dst(&r.v, BE_B, BE_PORT);
	assert_payload(&r.v, 12);
	assert_csums(&r.v);

	/* An MSS already small enough stays. */
	s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_SYN | F_ACK);
	s.mss = 1200;
	send_out(&B, M_DSR, &s, &r);
	ck_assert_uint_eq(mss_of(&r.v), 1200);

	/* IP-in-IP to another node, or from a host not in the cluster, is not ours. */
	s = dispatched(opt, F_SYN);
	s.sport = 51001;
	for (int i = 0; i < 2; i++) {
		size_t len = i ? build_ipip(in, "192.168.1.99", NODE_B, &s)
			       : build_ipip(in, NODE_A, "192.168.1.30", &s);
		uint8_t copy[4096];

		memcpy(copy, in, len);
		run_fd(B.in[M_DSR], in, len, &r);
		ck_assert_int_eq(r.ret, TC_ACT_OK);
		ck_assert_uint_eq(r.out_len, len);
		ck_assert_mem_eq(r.out, copy, len);
	}
	ck_assert_uint_eq(ct_count(&B), 1);
}
END_TEST

/*
 * A host-network backend listening on B's own address and a port B also
 * serves as a frontend: the dispatched flow must reach it, not be balanced
 * again by B.
 */
START_TEST(test_backend_hostnet_on_frontend_port)
{
	struct spec s = tcp(CLIENT, 51000, NODE_B, NODEPORT, F_SYN);
	uint8_t opt[8];
	struct run r;

	node_load(&B, M_DSR, NODE_B, 0);
	add_service(&B, NODE_B, NODEPORT, IPPROTO_TCP, 7, 1, 1, 0);
	add_backend(&B, 9, NODE_B, NODEPORT, NODE_B, BPFLB_BE_F_LOCAL | BPFLB_BE_F_HOSTNET);
	add_slot(&B, 7, 0, 9);
	dsr_opt(opt, NODE_A, NODEPORT);
	s.opts = opt;
	s.nopts = 8;
	send_in(&B, M_DSR, &s, &r);
	ck_assert_uint_eq(r.v.ip->ihl, 5);
	assert_dst(&r.v, NODE_B, NODEPORT);
	s = tcp(CLIENT, 51000, NODE_B, NODEPORT, F_ACK);
	send_in(&B, M_DSR, &s, &r);
	assert_src(&r.v, CLIENT, 51000);
	assert_dst(&r.v, NODE_B, NODEPORT);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], 0);
	ck_assert_uint_eq(ct_count(&B), 1); /* no FWD entry: not balanced again */
	s = tcp(NODE_B, NODEPORT, CLIENT, 51000, F_ACK);
	send_out(&B, M_DSR, &s, &r);
	assert_src(&r.v, NODE_A, NODEPORT);
	assert_csums(&r.v);
}
END_TEST

/* --- backend node: stale DSR state and connections that did not come by DSR ----------- */

/* Node B's REV half of CLIENT:51000 (TCP) or CLIENT:5353 (UDP), or -1 when there is none. */
static int rev_get(uint8_t proto, struct bpflb_ct_val *rv)
{
	return ct_get(&B, BPFLB_CT_REV, proto, BE_B, BE_PORT, CLIENT,
		      proto == IPPROTO_TCP ? 51000 : 5353, rv);
}

/* The dispatched SYN of CLIENT:51000 with sequence number seq, by option or IP-in-IP. */
static void dsr_syn_in(int ipip, uint32_t seq, size_t payload, struct run *r)
{
	uint8_t opt[8], in[4096];
	struct spec s = dispatched(opt, F_SYN);

	s.seq = seq;
	s.payload = payload;
	if (ipip)
		run_fd(B.in[M_DSR], in, build_ipip(in, NODE_A, NODE_B, &s), r);
	else
		send_in(&B, M_DSR, &s, r);
	ck_assert_int_eq(r->ret, TC_ACT_OK);
	ck_assert_uint_eq(r->v.ip->ihl, 5);
	assert_dst(&r->v, BE_B, BE_PORT);
}

/* The backend's SYN-ACK to CLIENT:51000 acknowledging ack - 1, as it leaves node B. */
static void synack_out(uint32_t ack, struct run *r)
{
	struct spec s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_SYN | F_ACK);

	s.seq = 7000;
	s.ack = ack;
	s.mss = 1460;
	s.payload = 0;
	send_out(&B, M_DSR, &s, r);
	ck_assert_int_eq(r->ret, TC_ACT_OK);
	assert_dst(&r->v, CLIENT, 51000);
	assert_csums(&r->v);
}

/* A segment of CLIENT:51000 that came to node B by itself: no option, no IP-in-IP. */
static void plain_in(const char *daddr, uint16_t dport, uint8_t flags, uint32_t seq, struct run *r)
{
	struct spec s = tcp(CLIENT, 51000, daddr, dport, flags);
	uint8_t in[4096], copy[4096];
	size_t len;

	s.seq = seq;
	s.payload = 0;
	len = build(in, &s);
	memcpy(copy, in, len);
	run_fd(B.in[M_DSR], in, len, r);
	ck_assert_int_eq(r->ret, TC_ACT_OK);
	/* Not ours to translate: the packet goes on as it came. */
	ck_assert_uint_eq(r->out_len, len);
	ck_assert_mem_eq(r->out, copy, len);
}

/* A whole DSR connection on B, then closed by FIN both ways: the half is marked closed. */
static void dsr_conn_closed(int ipip)
{
	uint8_t fwd = ipip ? BPFLB_FWD_DSR_IPIP : BPFLB_FWD_DSR_OPT;
	struct bpflb_ct_val rv;
	struct spec s;
	uint8_t in[4096];
	struct run r;

	dsr_syn_in(ipip, 1000, 0, &r);
	synack_out(1001, &r);
	assert_src(&r.v, NODE_A, NODEPORT); /* the DSR SYN-ACK is translated */
	assert_rev(&B, IPPROTO_TCP, BE_B, BE_PORT, NODE_A, NODEPORT, fwd, BPFLB_CT_ESTABLISHED);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(rv.flags, 0);

	/* The client closes first (its FIN comes the way its ACKs come), then the backend. */
	s = tcp(CLIENT, 51000, BE_B, BE_PORT, F_FIN | F_ACK);
	if (ipip)
		run_fd(B.in[M_DSR], in, build_ipip(in, NODE_A, NODE_B, &s), &r);
	else
		send_in(&B, M_DSR, &s, &r);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(rv.state, BPFLB_CT_CLOSING);
	ck_assert_uint_eq(rv.flags, BPFLB_CT_F_FIN_CLIENT);
	s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_FIN | F_ACK);
	send_out(&B, M_DSR, &s, &r);
	assert_src(&r.v, NODE_A, NODEPORT);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	/* Closed both ways: the GC gives it the short timeout (tests/unit/test_ct_gc.c). */
	ck_assert(bpflb_ct_flags_closed(rv.flags));
}

/*
 * The reproduction of issue #13 item 18: after a DSR connection from
 * CLIENT:51000 closed, the client connects from the same port straight to
 * the pod.  The pod's SYN-ACK must leave B as the pod sent it, and so must
 * the rest of that connection.
 */
static void direct_after_dsr(int ipip)
{
	struct bpflb_ct_val rv;
	struct spec s;
	struct run r;

	node_load(&B, M_DSR, NODE_B, 0);
	set_mtu(&B, 1500);
	dsr_conn_closed(ipip);

	/* The plain SYN passes B untouched; the stale half is still there... */
	plain_in(BE_B, BE_PORT, F_SYN, 5000, &r);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	/* ... but the pod's SYN-ACK acknowledges another SYN: untouched, half gone. */
	synack_out(5001, &r);
	assert_src(&r.v, BE_B, BE_PORT);
	ck_assert_uint_eq(mss_of(&r.v), 1460); /* no IP-in-IP clamp either */
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], 0);
	ck_assert_int_ne(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(ct_count(&B), 0);

	/* The rest of the direct connection: nothing translated either way. */
	plain_in(BE_B, BE_PORT, F_ACK, 5001, &r);
	s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_ACK);
	send_out(&B, M_DSR, &s, &r);
	assert_src(&r.v, BE_B, BE_PORT);
	ck_assert_uint_eq(ct_count(&B), 0);

	/* A later DSR connection on the tuple is translated again. */
	dsr_syn_in(ipip, 9000, 0, &r);
	synack_out(9001, &r);
	assert_src(&r.v, NODE_A, NODEPORT);
}

START_TEST(test_direct_after_dsr_option)
{
	direct_after_dsr(0);
}
END_TEST

START_TEST(test_direct_after_dsr_ipip)
{
	direct_after_dsr(1);
}
END_TEST

/*
 * The stale half need not be closing: a DSR SYN the pod never answered, or
 * a flow whose FINs B never saw.  Only the SYN-ACK of the SYN the half was
 * made for is translated, whatever the state.
 */
START_TEST(test_synack_bound_to_dsr_syn)
{
	struct bpflb_ct_val rv;
	struct run r;

	node_load(&B, M_DSR, NODE_B, 0);
	/* NEW: dispatched, never answered. */
	dsr_syn_in(0, 1000, 0, &r);
	plain_in(BE_B, BE_PORT, F_SYN, 3000, &r);
	synack_out(3001, &r);
	assert_src(&r.v, BE_B, BE_PORT);
	ck_assert_uint_eq(ct_count(&B), 0);

	/* ESTABLISHED: answered, then the client went away without a FIN B saw. */
	dsr_syn_in(0, 1000, 0, &r);
	synack_out(1001, &r);
	assert_src(&r.v, NODE_A, NODEPORT);
	synack_out(1001, &r); /* a retransmitted SYN-ACK of the DSR connection */
	assert_src(&r.v, NODE_A, NODEPORT);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(rv.state, BPFLB_CT_ESTABLISHED);
	synack_out(4001, &r);
	assert_src(&r.v, BE_B, BE_PORT);
	ck_assert_uint_eq(ct_count(&B), 0);

	/* A retransmitted DSR SYN keeps the half; a new one (another sequence) remakes it. */
	dsr_syn_in(0, 1000, 0, &r);
	synack_out(1001, &r);
	dsr_syn_in(0, 1000, 0, &r);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(rv.state, BPFLB_CT_ESTABLISHED);
	dsr_syn_in(0, 6000, 0, &r);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(rv.state, BPFLB_CT_NEW);
	ck_assert_uint_eq(rv.syn_seq, 6000);
	synack_out(1001, &r);
	assert_src(&r.v, BE_B, BE_PORT);
	ck_assert_uint_eq(ct_count(&B), 0);

	/* TCP Fast Open: the SYN-ACK may acknowledge the SYN's data too. */
	dsr_syn_in(0, 1000, 100, &r);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(rv.flags, BPFLB_CT_F_SYN_DATA);
	synack_out(1101, &r);
	assert_src(&r.v, NODE_A, NODEPORT);
	synack_out(1001, &r);
	assert_src(&r.v, NODE_A, NODEPORT);
}
END_TEST

/* An RST from either side closes the half both ways. */
START_TEST(test_rst_closes_dsr_half)
{
	struct bpflb_ct_val rv;
	struct spec s;
	struct run r;

	node_load(&B, M_DSR, NODE_B, 0);
	dsr_syn_in(0, 1000, 0, &r);
	s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_RST | F_ACK);
	s.ack = 1001;
	send_out(&B, M_DSR, &s, &r);
	assert_src(&r.v, NODE_A, NODEPORT); /* the client learns of it from the frontend */
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(rv.state, BPFLB_CT_CLOSING);
	ck_assert(bpflb_ct_flags_closed(rv.flags));

	dsr_syn_in(0, 2000, 0, &r);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert_uint_eq(rv.flags, 0);
	plain_in(BE_B, BE_PORT, F_RST, 2001, &r);
	ck_assert_int_eq(rev_get(IPPROTO_TCP, &rv), 0);
	ck_assert(bpflb_ct_flags_closed(rv.flags));
}
END_TEST

/* UDP has no handshake: a datagram that came without DSR ends the DSR half of its tuple. */
START_TEST(test_udp_direct_after_dsr)
{
	uint8_t opt[8], in[4096];
	struct bpflb_ct_val rv;
	struct spec s = udp(CLIENT, 5353, BE_B, BE_PORT);
	struct run r;

	for (int ipip = 0; ipip < 2; ipip++) {
		node_load(&B, M_DSR, NODE_B, 0);
		dsr_opt(opt, LB_IP, LB_PORT);
		s.opts = opt;
		s.nopts = 8;
		if (ipip)
			run_fd(B.in[M_DSR], in, build_ipip(in, NODE_A, NODE_B, &s), &r);
		else
			send_in(&B, M_DSR, &s, &r);
		ck_assert_int_eq(rev_get(IPPROTO_UDP, &rv), 0);
		s = udp(BE_B, BE_PORT, CLIENT, 5353);
		send_out(&B, M_DSR, &s, &r);
		assert_src(&r.v, LB_IP, LB_PORT);

		/* Straight to the pod from the same port: the answer is the pod's own. */
		s = udp(CLIENT, 5353, BE_B, BE_PORT);
		send_in(&B, M_DSR, &s, &r);
		ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], 0);
		ck_assert_int_ne(rev_get(IPPROTO_UDP, &rv), 0);
		s = udp(BE_B, BE_PORT, CLIENT, 5353);
		send_out(&B, M_DSR, &s, &r);
		assert_src(&r.v, BE_B, BE_PORT);
		assert_csums(&r.v);
		ck_assert_uint_eq(ct_count(&B), 0);
		node_unload(&B);
		s = udp(CLIENT, 5353, BE_B, BE_PORT);
	}
}
END_TEST

/*
 * A host-network backend on a port B also serves as a frontend: after a DSR
 * flow of CLIENT:51000 closed, a SYN from that port to B's own frontend is a
 * new flow of B's service, not the rest of the dispatched one.
 */
START_TEST(test_frontend_after_closed_dsr)
{
	struct spec s = tcp(CLIENT, 51000, NODE_B, NODEPORT, F_SYN);
	struct bpflb_ct_val v;
	uint8_t opt[8];
	struct run r;

	node_load(&B, M_DSR, NODE_B, 0);
	add_service(&B, NODE_B, NODEPORT, IPPROTO_TCP, 7, 1, 1, 0);
	add_backend(&B, 9, NODE_B, NODEPORT, NODE_B, BPFLB_BE_F_LOCAL | BPFLB_BE_F_HOSTNET);
	add_slot(&B, 7, 0, 9);
	dsr_opt(opt, NODE_A, NODEPORT);
	s.opts = opt;
	s.nopts = 8;
	send_in(&B, M_DSR, &s, &r);
	s = tcp(CLIENT, 51000, NODE_B, NODEPORT, F_FIN | F_ACK);
	send_in(&B, M_DSR, &s, &r);
	ck_assert_int_ne(ct_get(&B, BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE_B, NODEPORT, &v),
			 0);
	/* The client's FIN reached the hostnet backend and closed B's half. */
	ck_assert_int_eq(ct_get(&B, BPFLB_CT_REV, IPPROTO_TCP, NODE_B, NODEPORT, CLIENT, 51000, &v),
			 0);
	ck_assert_uint_eq(v.state, BPFLB_CT_CLOSING);
	ck_assert_uint_eq(v.flags & (BPFLB_CT_F_FIN_CLIENT | BPFLB_CT_F_FIN_BACKEND | BPFLB_CT_F_RST), BPFLB_CT_F_FIN_CLIENT);

	s = tcp(CLIENT, 51000, NODE_B, NODEPORT, F_SYN);
	s.seq = 5000;
	send_in(&B, M_DSR, &s, &r);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS], BPFLB_PKT_LB_DONE);
	ck_assert_int_eq(ct_get(&B, BPFLB_CT_FWD, IPPROTO_TCP, CLIENT, 51000, NODE_B, NODEPORT, &v),
			 0);
	ck_assert_uint_eq(v.fwd, BPFLB_FWD_LOCAL);
	s = tcp(NODE_B, NODEPORT, CLIENT, 51000, F_SYN | F_ACK);
	s.ack = 5001;
	send_out(&B, M_DSR, &s, &r);
	assert_src(&r.v, NODE_B, NODEPORT);
	assert_csums(&r.v);
}
END_TEST

/* --- both nodes, end to end through the programs ------------------------------------- */

static void chain(uint32_t flags)
{
	struct spec s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	uint8_t in[4096];
	struct run ra, rb;
	int ipip = flags & BPFLB_NODE_F_DSR_IPIP;

	node_load(&A, M_DSR, NODE_A, flags);
	node_load(&B, M_DSR, NODE_B, flags);
	scene_a(0);
	s.mss = 1460;
	/* Client -> A -> B: the backend sees the client's SYN. */
	send_in(&A, M_DSR, &s, &ra);
	forward(B.in[M_DSR], &ra, &rb);
	ck_assert_int_eq(rb.ret, TC_ACT_OK);
	ck_assert_ptr_null(rb.v.outer);
	ck_assert_uint_eq(rb.v.ip->ihl, 5);
	assert_src(&rb.v, CLIENT, 51000);
	assert_dst(&rb.v, BE_B, BE_PORT);
	ck_assert_uint_eq(rb.v.ip->ttl, ipip ? 63 : 64);
	ck_assert_uint_eq(mss_of(&rb.v), 1460);
	assert_payload(&rb.v, 12);
	assert_csums(&rb.v);
	/* ... as the client sent it: every byte but address, port, TTL and checksums. */
	{
		size_t len = build(in, &s);
		struct view c = view_of(in, len);

		ck_assert_uint_eq(rb.out_len, len);
		ck_assert_mem_eq(rb.v.l4 + 4, c.l4 + 4, 12); /* seq, ack, doff, flags, window */
		ck_assert_mem_eq(rb.v.l4 + 20, c.l4 + 20, c.l4len - 20);
	}
	/* The backend's SYN-ACK leaves B from the address the client connected to. */
	s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_SYN | F_ACK);
	s.mss = 1460;
	send_out(&B, M_DSR, &s, &rb);
	assert_src(&rb.v, NODE_A, NODEPORT);
	assert_dst(&rb.v, CLIENT, 51000);
	ck_assert_uint_eq(mss_of(&rb.v), ipip ? 1440 : 1460);
	assert_csums(&rb.v);
	/* The client's ACK, through A and B, with no option left anywhere. */
	s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_ACK);
	send_in(&A, M_DSR, &s, &ra);
	forward(B.in[M_DSR], &ra, &rb);
	ck_assert_ptr_null(rb.v.outer);
	ck_assert_uint_eq(rb.v.ip->ihl, 5);
	assert_dst(&rb.v, BE_B, BE_PORT);
	assert_payload(&rb.v, 12);
	assert_csums(&rb.v);
	ck_assert_uint_eq(ct_count(&A), 1);
	ck_assert_uint_eq(ct_count(&B), 1);
}

START_TEST(test_chain_option)
{
	chain(0);
}
END_TEST

START_TEST(test_chain_ipip)
{
	chain(BPFLB_NODE_F_DSR_IPIP);
}
END_TEST

/* --- mode switch: the flow keeps what it started with --------------------------------- */

START_TEST(test_switch_keeps_forwarding)
{
	struct spec s = tcp(CLIENT, 51000, NODE_A, NODEPORT, F_SYN);
	struct spec d = tcp(CLIENT, 52000, NODE_A, NODEPORT, F_SYN);
	uint16_t nat_port;
	struct run r;

	/* Node A runs snat, then dsr, then hybrid, then snat: the same maps throughout. */
	node_load(&A, M_SNAT, NODE_A, 0);
	node_load(&A, M_DSR, NODE_A, 0);
	node_load(&A, M_HYBRID, NODE_A, 0);
	scene_a(0);

	send_in(&A, M_SNAT, &s, &r);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE_A);
	nat_port = sport_of(&r.v);
	send_in(&A, M_DSR, &d, &r);
	assert_src(&r.v, CLIENT, 52000);

	s.tcp_flags = d.tcp_flags = F_ACK;
	for (enum mode m = M_SNAT; m <= M_HYBRID; m++) {
		/* The SNAT flow stays SNATed, and its replies still find the client... */
		send_in(&A, m, &s, &r);
		assert_src(&r.v, NODE_A, nat_port);
		assert_dst(&r.v, BE_B, BE_PORT);
		assert_csums(&r.v);
		{
			struct spec rep = tcp(BE_B, BE_PORT, NODE_A, nat_port, F_ACK);

			send_in(&A, m, &rep, &r);
			assert_src(&r.v, NODE_A, NODEPORT);
			assert_dst(&r.v, CLIENT, 51000);
			assert_csums(&r.v);
		}
		/* ... and the DSR flow keeps the client's address. */
		send_in(&A, m, &d, &r);
		assert_src(&r.v, CLIENT, 52000);
		assert_dst(&r.v, BE_B, BE_PORT);
		assert_csums(&r.v);
	}
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, CLIENT, 51000, NODE_A, NODEPORT), BPFLB_FWD_SNAT);
	ck_assert_uint_eq(fwd_of(&A, IPPROTO_TCP, CLIENT, 52000, NODE_A, NODEPORT),
			  BPFLB_FWD_DSR_OPT);
	ck_assert_uint_eq(ct_count(&A), 3);
}
END_TEST

/* The backend half works in every mode: other nodes may not have switched yet. */
START_TEST(test_backend_half_in_every_mode)
{
	static const enum mode modes[] = {M_SNAT, M_HYBRID};

	for (size_t i = 0; i < 2; i++) {
		uint8_t opt[8], in[4096];
		struct spec s = dispatched(opt, F_SYN);
		struct run r;

		node_load(&B, modes[i], NODE_B, 0);
		run_fd(B.in[modes[i]], in, build_ipip(in, NODE_A, NODE_B, &s), &r);
		ck_assert_ptr_null(r.v.outer);
		ck_assert_uint_eq(r.v.ip->ihl, 5);
		assert_rev(&B, IPPROTO_TCP, BE_B, BE_PORT, NODE_A, NODEPORT, BPFLB_FWD_DSR_IPIP,
			   BPFLB_CT_NEW);
		s = tcp(BE_B, BE_PORT, CLIENT, 51000, F_SYN | F_ACK);
		s.mss = 1460;
		send_out(&B, modes[i], &s, &r);
		assert_src(&r.v, NODE_A, NODEPORT);
		ck_assert_uint_eq(mss_of(&r.v), 1440);
		assert_csums(&r.v);
		node_unload(&B);
	}
}
END_TEST

/* --- runner --------------------------------------------------------------------------- */

static Suite *dsr_suite(void)
{
	Suite *s = suite_create("dsr");
	struct {
		const char *name;
		const TTest *test;
	} tests[] = {
	    {"ingress_option", test_opt_syn_dispatch},
	    {"ingress_option", test_opt_rest_of_flow},
	    {"ingress_option", test_opt_udp_every_datagram},
	    {"ingress_option", test_opt_after_existing_options},
	    {"ingress_ipip", test_ipip_dispatch},
	    {"ingress_ipip", test_dispatch_change_keeps_flows},
	    {"mtu", test_mtu_frag_needed},
	    {"policy", test_hybrid_tcp_dsr_udp_snat},
	    {"policy", test_service_forwarding_override},
	    {"policy", test_local_and_fallbacks},
	    {"backend", test_backend_opt},
	    {"backend", test_backend_udp},
	    {"backend", test_backend_ipip_and_mss_clamp},
	    {"backend", test_backend_hostnet_on_frontend_port},
	    {"stale", test_direct_after_dsr_option},
	    {"stale", test_direct_after_dsr_ipip},
	    {"stale", test_synack_bound_to_dsr_syn},
	    {"stale", test_rst_closes_dsr_half},
	    {"stale", test_udp_direct_after_dsr},
	    {"stale", test_frontend_after_closed_dsr},
	    {"chain", test_chain_option},
	    {"chain", test_chain_ipip},
	    {"switch", test_switch_keeps_forwarding},
	    {"switch", test_backend_half_in_every_mode},
	};
	TCase *tc = NULL;
	const char *cur = NULL;

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (!cur || strcmp(cur, tests[i].name)) {
			cur = tests[i].name;
			tc = tcase_create(cur);
			tcase_add_checked_fixture(tc, NULL, teardown);
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
		fprintf(stderr, "test_dsr_fixtures: needs root (BPF, bpffs, netns); skipped\n");
		return 77;
	}
	libbpf_set_print(libbpf_print);
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0 || ensure_bpffs()) {
		perror("test_dsr_fixtures: bpffs at " BPF_FS);
		return 1;
	}
	/* No routes, no devices up: FIB lookups fail, translation is all we see. */
	if (unshare(CLONE_NEWNET)) {
		perror("test_dsr_fixtures: unshare(CLONE_NEWNET)");
		return 1;
	}
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	snprintf(pin_base, sizeof(pin_base), BPF_FS "/bpflb-dsr-test-XXXXXX");
	if (!mkdtemp(pin_base)) {
		perror("test_dsr_fixtures: mkdtemp under " BPF_FS);
		return 1;
	}

	sr = srunner_create(dsr_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(pin_base);
	return failed ? 1 : 0;
}
