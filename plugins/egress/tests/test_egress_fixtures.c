// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fixtures of the egress gateway datapath: a packet built here goes through
 * egress_out (the workload's node, tc egress) or egress_in (the gateway, tc
 * ingress) with BPF_PROG_TEST_RUN; the test checks the verdict, the tunnel
 * header, every rewritten field, the checksums (computed here from the bytes),
 * conntrack, counters and drop reasons.
 *
 * The maps are filled the way the plugin fills them, selection tries computed
 * by the plugin's own egress_model.c.  The run happens in a network namespace
 * of its own with one veth, eg0, on the node network 192.168.1.0/24, and
 * permanent neighbour entries for the workload node, the gateway node and a
 * router towards the outside, so the FIB lookups of the datapath answer.
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

#include "egress.h"
#include "egress_model.h"
#include "egress_bpf.skel.h"
#include "bpf_fixture.h"


/* The scene: a workload node, a gateway node, a router, the outside. */
#define NODE_W	   "192.168.1.10"
#define NODE_G	   "192.168.1.20"
#define NODE_X	   "192.168.1.30" /* a third node: no neighbour entry */
#define ROUTER	   "192.168.1.1"
#define EGRESS_IP  "192.168.1.50"
#define POD	   "10.244.1.5" /* selected */
#define POD_B	   "10.244.1.6" /* selected too */
#define POD_OTHER  "10.244.1.7" /* not selected */
#define POD_REMOTE "10.244.2.9"
#define EXT	   "203.0.113.7"
#define EXT_EXCL   "203.0.113.99" /* excluded from the policy */
#define PORT_MIN   1024
#define PORT_MAX   65535
#define MTU	   1500

static const uint8_t MAC_DEV[ETH_ALEN] = {0x02, 0xee, 0, 0, 0, 0x01};
static const uint8_t MAC_W[ETH_ALEN] = {0x02, 0xee, 0, 0, 0, 0x10};
static const uint8_t MAC_G[ETH_ALEN] = {0x02, 0xee, 0, 0, 0, 0x20};
static const uint8_t MAC_R[ETH_ALEN] = {0x02, 0xee, 0, 0, 0, 0x99};
static const uint8_t MAC_ANY[ETH_ALEN] = {0x02, 0, 0, 0, 0, 0x42};

static char pin_base[PATH_MAX / 2];
static char pin_dir[PATH_MAX];
static struct egress_bpf *skel;
static int ncpus;
static unsigned int dev_ifindex;

/* --- pins and maps ---------------------------------------------------------- */

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

static int fd_of(struct bpf_map *m)
{
	return bpf_map__fd(m);
}

static void set_cfg(const char *node)
{
	struct egress_cfg c = {
	    .node_addr = ip(node), .port_min = PORT_MIN, .port_max = PORT_MAX, .mtu = MTU};
	uint32_t zero = 0;

	ck_assert_int_eq(bpf_map_update_elem(fd_of(skel->maps.egress_cfg), &zero, &c, 0), 0);
}

static void set_policy(uint32_t idx, const char *gw, uint32_t flags)
{
	struct egress_policy_val v = {
	    .gw_addr = gw ? ip(gw) : 0, .egress_ip = ip(EGRESS_IP), .flags = flags, .id = idx + 1};

	ck_assert_int_eq(bpf_map_update_elem(fd_of(skel->maps.egress_policies), &idx, &v, 0), 0);
}

static void set_egress_ip(const char *addr, uint32_t flags)
{
	struct egress_ip_val v = {.flags = flags};
	uint32_t a = ip(addr);

	ck_assert_int_eq(bpf_map_update_elem(fd_of(skel->maps.egress_ips), &a, &v, 0), 0);
}

static void add_node(const char *addr)
{
	uint32_t a = ip(addr), one = 1;

	ck_assert_int_eq(bpf_map_update_elem(fd_of(skel->maps.egress_nodes), &a, &one, 0), 0);
}

static void prefix(struct egress_prefix_set *s, const char *addr, uint8_t plen)
{
	ck_assert_int_eq(egress_prefix_add(s, ntohl(ip(addr)), plen), 0);
}

static void write_lpm(struct bpf_map *map, const struct egress_lpm_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct egress_lpm_key k = {.prefixlen = e[i].p.plen, .addr = htonl(e[i].p.addr)};
		uint64_t bits = e[i].bits;

		ck_assert_int_eq(bpf_map_update_elem(fd_of(map), &k, &bits, 0), 0);
	}
}

/*
 * Policy 0: POD and POD_B to anything but EXT_EXCL, via NODE_G.  The cluster
 * (10.244.0.0/16 and the node addresses) is excluded, as the plugin does.
 */
static void one_policy(void)
{
	struct egress_model_policy p = {0};
	struct egress_prefix_set cluster = {0};
	struct egress_lpm_entry *src, *dst;
	size_t nsrc, ndst;

	prefix(&p.src, POD, 32);
	prefix(&p.src, POD_B, 32);
	prefix(&p.dst, "0.0.0.0", 0);
	prefix(&p.excl, EXT_EXCL, 32);
	prefix(&cluster, "10.244.0.0", 16);
	prefix(&cluster, NODE_W, 32);
	prefix(&cluster, NODE_G, 32);
	prefix(&cluster, NODE_X, 32);
	ck_assert_int_eq(egress_model_src(&p, 1, &src, &nsrc), 0);
	ck_assert_int_eq(egress_model_dst(&p, 1, &cluster, &dst, &ndst), 0);
	write_lpm(skel->maps.egress_src, src, nsrc);
	write_lpm(skel->maps.egress_dst, dst, ndst);
	free(src);
	free(dst);
	egress_prefix_set_free(&p.src);
	egress_prefix_set_free(&p.dst);
	egress_prefix_set_free(&p.excl);
	egress_prefix_set_free(&cluster);
	add_node(NODE_W);
	add_node(NODE_G);
	add_node(NODE_X);
}

static uint64_t drops(uint32_t reason)
{
	uint64_t v[ncpus], sum = 0;

	ck_assert_int_eq(bpf_map_lookup_elem(fd_of(skel->maps.bpflb_drops), &reason, v), 0);
	for (int i = 0; i < ncpus; i++)
		sum += v[i];
	return sum;
}

static struct egress_stats stats(uint32_t idx)
{
	struct egress_stats v[ncpus], sum = {0};

	ck_assert_int_eq(bpf_map_lookup_elem(fd_of(skel->maps.egress_stats), &idx, v), 0);
	for (int i = 0; i < ncpus; i++) {
		sum.steered_packets += v[i].steered_packets;
		sum.steered_bytes += v[i].steered_bytes;
		sum.snat_packets += v[i].snat_packets;
		sum.reply_packets += v[i].reply_packets;
		sum.drop_packets += v[i].drop_packets;
	}
	return sum;
}

static uint64_t events_sent(void)
{
	struct bpflb_ev_rate v[ncpus];
	uint64_t sum = 0;
	uint32_t zero = 0;

	ck_assert_int_eq(bpf_map_lookup_elem(fd_of(skel->maps.bpflb_ev_rate), &zero, v), 0);
	for (int i = 0; i < ncpus; i++)
		sum += v[i].sent;
	return sum;
}

static int ct_get(uint8_t kind, uint8_t proto, const char *saddr, uint16_t sport, const char *daddr,
		  uint16_t dport, struct egress_ct_val *val)
{
	struct bpflb_ct_key k = {.saddr = ip(saddr),
				 .daddr = ip(daddr),
				 .sport = htons(sport),
				 .dport = htons(dport),
				 .proto = proto,
				 .kind = kind};

	return bpf_map_lookup_elem(fd_of(skel->maps.egress_ct), &k, val);
}

static unsigned int ct_count(void)
{
	struct bpflb_ct_key k, next;
	unsigned int n = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd_of(skel->maps.egress_ct), prev, &next)) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

/* --- packets ------------------------------------------------------------------ */

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

struct flow {
	uint8_t proto; /* IPPROTO_TCP, _UDP, _ICMP (echo) */
	const char *saddr;
	uint16_t sport; /* ICMP: the echo identifier */
	const char *daddr;
	uint16_t dport;
	uint8_t tcp_flags;
	uint8_t icmp_type;     /* 8 request, 0 reply */
	uint16_t mss;	       /* TCP: MSS option when non-zero */
	uint16_t payload;      /* bytes after the L4 header, default 12 */
	uint16_t frag;	       /* frag_off field (host order) */
	const char *outer_src; /* IP-in-IP: outer header src -> dst when set */
	const char *outer_dst;
	int plain_ipip; /* outer header without our option (as DSR sends it) */
};

static size_t build(uint8_t *buf, const struct flow *f)
{
	struct ethhdr *eth = (void *)buf;
	size_t outer = !f->outer_src ? 0 : f->plain_ipip ? 20 : EGRESS_TUN_HLEN;
	struct iphdr *oiph = (void *)(eth + 1);
	struct iphdr *iph = (void *)((uint8_t *)(eth + 1) + outer);
	uint8_t *l4 = (uint8_t *)(iph + 1);
	size_t opt = f->proto == IPPROTO_TCP && f->mss ? 4 : 0;
	size_t l4hdr = f->proto == IPPROTO_TCP	 ? sizeof(struct tcphdr) + opt
		       : f->proto == IPPROTO_UDP ? sizeof(struct udphdr)
						 : 8;
	size_t pay = f->payload ? f->payload : 12;
	size_t l4len = l4hdr + pay;

	memset(buf, 0, sizeof(*eth) + outer + sizeof(*iph) + l4len);
	memcpy(eth->h_dest, MAC_ANY, ETH_ALEN);
	memcpy(eth->h_source, MAC_ANY, ETH_ALEN);
	eth->h_source[5] = 0x43;
	eth->h_proto = htons(ETH_P_IP);

	iph->version = 4;
	iph->ihl = 5;
	iph->tot_len = htons(sizeof(*iph) + l4len);
	iph->id = htons(0x1234);
	iph->frag_off = htons(f->frag ? f->frag : 0x4000);
	iph->ttl = 63;
	iph->protocol = f->proto;
	iph->saddr = ip(f->saddr);
	iph->daddr = ip(f->daddr);
	iph->check = htons(fold(sum16(iph, sizeof(*iph), 0)));

	for (size_t i = 0; i < pay; i++)
		l4[l4hdr + i] = (uint8_t)('a' + i % 26);
	if (f->proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		th->source = htons(f->sport);
		th->dest = htons(f->dport);
		th->seq = htonl(1000);
		th->ack_seq = htonl(f->tcp_flags & F_ACK ? 2000 : 0);
		th->doff = (sizeof(*th) + opt) / 4;
		l4[13] = f->tcp_flags;
		th->window = htons(65535);
		if (opt) {
			l4[20] = 2;
			l4[21] = 4;
			l4[22] = f->mss >> 8;
			l4[23] = f->mss & 0xff;
		}
		th->check = htons(fold(sum16(l4, l4len, pseudo_sum(iph, l4len))));
	} else if (f->proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)l4;
		uint16_t c;

		uh->source = htons(f->sport);
		uh->dest = htons(f->dport);
		uh->len = htons(l4len);
		c = fold(sum16(l4, l4len, pseudo_sum(iph, l4len)));
		uh->check = htons(c ? c : 0xffff);
	} else {
		uint16_t c;

		l4[0] = f->icmp_type;
		l4[1] = 0;
		l4[4] = f->sport >> 8;
		l4[5] = f->sport & 0xff;
		l4[7] = 1; /* seq */
		c = fold(sum16(l4, l4len, 0));
		l4[2] = c >> 8;
		l4[3] = c & 0xff;
	}
	if (outer) {
		uint8_t *opt = (uint8_t *)(oiph + 1);

		oiph->version = 4;
		oiph->ihl = outer / 4;
		oiph->tot_len = htons(outer + sizeof(*iph) + l4len);
		oiph->frag_off = htons(0x4000);
		oiph->ttl = 64;
		oiph->protocol = IPPROTO_IPIP;
		oiph->saddr = ip(f->outer_src);
		oiph->daddr = ip(f->outer_dst);
		if (outer > 20) {
			opt[0] = EGRESS_TUN_OPT_TYPE;
			opt[1] = EGRESS_TUN_OPT_LEN;
			opt[3] = 1;
		}
		oiph->check = htons(fold(sum16(oiph, outer, 0)));
	}
	return sizeof(*eth) + outer + sizeof(*iph) + l4len;
}

struct view {
	struct ethhdr *eth;
	struct iphdr *ip;    /* the outermost IP header */
	struct iphdr *inner; /* IP-in-IP: the inner header, else == ip */
	uint8_t *l4;
	uint32_t l4len;
};

static struct view view_of(uint8_t *buf, size_t len)
{
	struct view v = {0};

	ck_assert_uint_ge(len, sizeof(struct ethhdr) + sizeof(struct iphdr));
	v.eth = (void *)buf;
	v.ip = (void *)(v.eth + 1);
	ck_assert_uint_eq(len, sizeof(struct ethhdr) + ntohs(v.ip->tot_len));
	v.inner = v.ip;
	if (v.ip->protocol == IPPROTO_IPIP)
		v.inner = (void *)((uint8_t *)v.ip + v.ip->ihl * 4);
	v.l4 = (uint8_t *)v.inner + v.inner->ihl * 4;
	v.l4len = ntohs(v.inner->tot_len) - v.inner->ihl * 4;
	return v;
}

static void assert_csums(const struct view *v)
{
	ck_assert_msg(fold(sum16(v->ip, v->ip->ihl * 4, 0)) == 0, "bad IPv4 header checksum");
	if (v->inner != v->ip)
		ck_assert_msg(fold(sum16(v->inner, v->inner->ihl * 4, 0)) == 0,
			      "bad inner IPv4 header checksum");
	if (ntohs(v->inner->frag_off) & 0x1fff)
		return;
	if (v->inner->protocol == IPPROTO_ICMP)
		ck_assert_msg(fold(sum16(v->l4, v->l4len, 0)) == 0, "bad ICMP checksum");
	else
		ck_assert_msg(fold(sum16(v->l4, v->l4len, pseudo_sum(v->inner, v->l4len))) == 0,
			      "bad %s checksum", v->inner->protocol == IPPROTO_TCP ? "TCP" : "UDP");
}

static uint16_t sport_of(const struct view *v)
{
	return (uint16_t)(v->l4[0] << 8 | v->l4[1]);
}

static uint16_t dport_of(const struct view *v)
{
	return (uint16_t)(v->l4[2] << 8 | v->l4[3]);
}

static uint16_t icmp_id_of(const struct view *v)
{
	return (uint16_t)(v->l4[4] << 8 | v->l4[5]);
}

/* --- running a program ----------------------------------------------------------- */

struct run {
	int ret;
	uint8_t out[2048];
	uint32_t out_len;
	struct __sk_buff ctx;
	struct view v;
};

static void run_prog(struct bpf_program *prog, const uint8_t *in, size_t len, struct run *r)
{
	struct __sk_buff ctx = {.ifindex = dev_ifindex, .ingress_ifindex = dev_ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = len, .data_out = r->out,
		    .data_size_out = sizeof(r->out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .ctx_out = &r->ctx, .ctx_size_out = sizeof(r->ctx), .repeat = 1);
	int err;

	memset(r, 0, sizeof(*r));
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);
	ck_assert_msg(!err, "BPF_PROG_TEST_RUN: %s", strerror(errno));
	r->ret = o.retval;
	r->out_len = o.data_size_out;
	if (r->out_len >= sizeof(struct ethhdr) + sizeof(struct iphdr) &&
	    ((struct ethhdr *)r->out)->h_proto == htons(ETH_P_IP))
		r->v = view_of(r->out, r->out_len);
}

static void send_out(const struct flow *f, struct run *r)
{
	uint8_t pkt[2048];

	run_prog(skel->progs.egress_out, pkt, build(pkt, f), r);
}

static void send_in(const struct flow *f, struct run *r)
{
	uint8_t pkt[2048];

	run_prog(skel->progs.egress_in, pkt, build(pkt, f), r);
}

/* The packet left exactly as it came. */
static void assert_untouched(struct bpf_program *prog, const struct flow *f)
{
	uint8_t in[2048];
	size_t len = build(in, f);
	struct run r;

	run_prog(prog, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.out_len, len);
	ck_assert_mem_eq(r.out, in, len);
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

/* The same flow tunnelled from the workload node to the gateway. */
static struct flow tunnelled(struct flow f)
{
	f.outer_src = NODE_W;
	f.outer_dst = NODE_G;
	return f;
}

/* --- fixture -------------------------------------------------------------------------- */

static void setup(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	int err;

	snprintf(pin_dir, sizeof(pin_dir), "%s/t-XXXXXX", pin_base);
	ck_assert_ptr_nonnull(mkdtemp(pin_dir));
	opts.pin_root_path = pin_dir;
	skel = egress_bpf__open_opts(&opts);
	ck_assert_ptr_nonnull(skel);
	err = egress_bpf__load(skel);
	ck_assert_msg(!err, "loading egress.bpf.o: %d (verifier log above)", err);
	one_policy();
}

static void teardown(void)
{
	egress_bpf__destroy(skel);
	skel = NULL;
	rm_tree(pin_dir);
	pin_dir[0] = 0;
}

/* The workload node's view: policy 0 goes to NODE_G. */
static void workload_node(void)
{
	set_cfg(NODE_W);
	set_policy(0, NODE_G, 0);
}

/* The gateway's view: it serves the egress IP. */
static void gateway_node(void)
{
	set_cfg(NODE_G);
	set_policy(0, NODE_G, EGRESS_POL_F_LOCAL);
	set_egress_ip(EGRESS_IP, EGRESS_IP_F_ACTIVE);
}

/* --- workload node ---------------------------------------------------------------------- */

START_TEST(test_steer_tcp_syn)
{
	struct flow f = tcp(POD, 40000, EXT, 443, F_SYN);
	uint8_t in[2048];
	size_t len = build(in, &f);
	uint64_t ev = events_sent();
	struct run r;

	workload_node();
	run_prog(skel->progs.egress_out, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.out_len, len + EGRESS_TUN_HLEN);
	/* Outer header: node -> gateway, IP-in-IP, DF copied, fresh TTL, our option. */
	ck_assert_uint_eq(r.v.ip->protocol, IPPROTO_IPIP);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE_W);
	ck_assert_str_eq(ntoa(r.v.ip->daddr), NODE_G);
	ck_assert_uint_eq(r.v.ip->ttl, 64);
	ck_assert_uint_eq(r.v.ip->ihl, EGRESS_TUN_HLEN / 4);
	ck_assert_mem_eq((uint8_t *)(r.v.ip + 1), "\xde\x04\x00\x01", 4);
	ck_assert_uint_eq(ntohs(r.v.ip->frag_off), 0x4000);
	ck_assert_uint_eq(r.v.ip->tos, 0);
	/* The inner packet is the workload's, byte for byte. */
	ck_assert_mem_eq(r.out + 14 + EGRESS_TUN_HLEN, in + 14, len - 14);
	/* Next hop: the gateway's MAC, from our device. */
	ck_assert_mem_eq(r.v.eth->h_dest, MAC_G, ETH_ALEN);
	ck_assert_mem_eq(r.v.eth->h_source, MAC_DEV, ETH_ALEN);
	assert_csums(&r.v);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_FLAGS] & BPFLB_PKT_REDIRECT, 0);
	ck_assert_uint_eq(stats(0).steered_packets, 1);
	ck_assert_uint_eq(stats(0).steered_bytes, len);
	ck_assert_uint_eq(events_sent(), ev + 1);
	/* No state on the workload's node. */
	ck_assert_uint_eq(ct_count(), 0);
}
END_TEST

START_TEST(test_steer_any_protocol_and_fragments)
{
	struct flow f = udp(POD_B, 5353, EXT, 53);
	struct run r;

	workload_node();
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.v.ip->protocol, IPPROTO_IPIP);
	ck_assert_uint_eq(r.v.inner->protocol, IPPROTO_UDP);
	assert_csums(&r.v);

	/* ICMP echo, and a non-first fragment: no ports, still never sent as they are. */
	f = (struct flow){
	    .proto = IPPROTO_ICMP, .saddr = POD, .sport = 77, .daddr = EXT, .icmp_type = 8};
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.v.ip->protocol, IPPROTO_IPIP);
	f = udp(POD, 5353, EXT, 53);
	f.frag = 0x0010; /* offset 128 bytes, last fragment */
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.v.ip->protocol, IPPROTO_IPIP);
	ck_assert_uint_eq(ntohs(r.v.ip->frag_off), 0);
	ck_assert_uint_eq(stats(0).steered_packets, 3);
}
END_TEST

START_TEST(test_untouched_traffic)
{
	struct flow f;
	uint8_t in[256];
	size_t len;
	struct run r;

	workload_node();
	/* Not selected. */
	f = tcp(POD_OTHER, 40000, EXT, 443, F_SYN);
	assert_untouched(skel->progs.egress_out, &f);
	/* Excluded destination. */
	f = tcp(POD, 40000, EXT_EXCL, 443, F_SYN);
	assert_untouched(skel->progs.egress_out, &f);
	/* Inside the cluster: a pod of another node, a node address. */
	f = tcp(POD, 40000, POD_REMOTE, 8080, F_SYN);
	assert_untouched(skel->progs.egress_out, &f);
	f = udp(POD, 40000, NODE_G, 53);
	assert_untouched(skel->progs.egress_out, &f);
	/* The node's own traffic. */
	f = tcp(NODE_W, 40000, EXT, 443, F_SYN);
	assert_untouched(skel->progs.egress_out, &f);
	/* Not IPv4. */
	f = tcp(POD, 40000, EXT, 443, F_SYN);
	len = build(in, &f);
	((struct ethhdr *)in)->h_proto = htons(ETH_P_ARP);
	run_prog(skel->progs.egress_out, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_mem_eq(r.out, in, len);
	ck_assert_uint_eq(stats(0).steered_packets, 0);
}
END_TEST

START_TEST(test_lb_reply_untouched)
{
	/* A local backend answering a service client keeps the service's path. */
	struct bpflb_ct_key k = {.saddr = ip(POD),
				 .daddr = ip(EXT),
				 .sport = htons(8080),
				 .dport = htons(5555),
				 .proto = IPPROTO_TCP,
				 .kind = BPFLB_CT_REV};
	struct bpflb_ct_val v = {.fwd = BPFLB_FWD_LOCAL};
	struct flow f = tcp(POD, 8080, EXT, 5555, F_SYN | F_ACK);

	workload_node();
	ck_assert_int_eq(bpf_map_update_elem(fd_of(skel->maps.bpflb_ct), &k, &v, 0), 0);
	assert_untouched(skel->progs.egress_out, &f);
}
END_TEST

START_TEST(test_no_gateway_drops)
{
	struct flow f = tcp(POD, 40000, EXT, 443, F_SYN);
	struct run r;

	set_cfg(NODE_W);
	set_policy(0, NULL, 0);
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	f = udp(POD, 40000, EXT, 53);
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_GATEWAY), 2);
	ck_assert_uint_eq(stats(0).drop_packets, 2);
	ck_assert_uint_eq(stats(0).steered_packets, 0);
}
END_TEST

START_TEST(test_tunnel_too_big)
{
	struct flow f = udp(POD, 40000, EXT, 53);
	uint8_t in[2048];
	size_t len;
	struct run r;

	workload_node();
	/* 20 + 8 + 1448 = 1476: with the tunnel exactly the MTU. */
	f.payload = 1448;
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(ntohs(r.v.ip->tot_len), MTU);

	/* One byte more with DF: the workload hears "fragmentation needed". */
	f.payload = 1449;
	len = build(in, &f);
	run_prog(skel->progs.egress_out, in, len, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_uint_eq(r.v.ip->protocol, IPPROTO_ICMP);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), NODE_W);
	ck_assert_str_eq(ntoa(r.v.ip->daddr), POD);
	ck_assert_uint_eq(r.v.l4[0], 3);
	ck_assert_uint_eq(r.v.l4[1], 4);
	ck_assert_uint_eq(r.v.l4[6] << 8 | r.v.l4[7], MTU - EGRESS_TUN_HLEN);
	/* The quote: the workload's IP header and the first 8 bytes after it. */
	ck_assert_uint_eq(r.v.l4len, 8 + 28);
	ck_assert_mem_eq(r.v.l4 + 8, in + 14, 28);
	/* Routed to the workload (in this scene: via the workload node's MAC). */
	ck_assert_mem_eq(r.v.eth->h_dest, MAC_W, ETH_ALEN);
	assert_csums(&r.v);
	ck_assert_uint_eq(drops(BPFLB_DROP_MTU), 1);

	/* Without DF: only dropped. */
	f.frag = 0x2000; /* MF, offset 0: a first fragment */
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_MTU), 2);
	ck_assert_uint_eq(stats(0).drop_packets, 2);
}
END_TEST

START_TEST(test_gateway_unreachable_drops)
{
	struct flow f = tcp(POD, 40000, EXT, 443, F_SYN);
	struct run r;

	/* NODE_X has no neighbour entry: dropped, never sent without the tunnel. */
	set_cfg(NODE_W);
	set_policy(0, NODE_X, 0);
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_FIB), 1);
}
END_TEST

START_TEST(test_local_gateway_snat)
{
	struct flow f = tcp(POD, 40000, EXT, 443, F_SYN);
	struct egress_ct_val fv, rv;
	struct run r;

	/* The workload runs on the gateway: translated here, no tunnel. */
	gateway_node();
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_OK);
	ck_assert_uint_eq(r.v.ip->protocol, IPPROTO_TCP);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), EGRESS_IP);
	ck_assert_uint_eq(sport_of(&r.v), 40000); /* the workload's port when free */
	ck_assert_str_eq(ntoa(r.v.ip->daddr), EXT);
	ck_assert_uint_eq(dport_of(&r.v), 443);
	assert_csums(&r.v);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, POD, 40000, EXT, 443, &fv), 0);
	ck_assert_str_eq(ntoa(fv.addr), EGRESS_IP);
	ck_assert_uint_eq(fv.node_addr, 0);
	ck_assert_int_eq(ct_get(BPFLB_CT_REV, IPPROTO_TCP, EXT, 443, EGRESS_IP, 40000, &rv), 0);
	ck_assert_str_eq(ntoa(rv.addr), POD);
	ck_assert_uint_eq(stats(0).snat_packets, 1);

	/* An inactive egress IP makes the userspace clear LOCAL: no translation, a drop. */
	set_policy(0, NULL, 0);
	send_out(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_GATEWAY), 1);
}
END_TEST

/* --- gateway node -------------------------------------------------------------------------- */

START_TEST(test_gateway_decap_snat_and_reply)
{
	struct flow f = tunnelled(tcp(POD, 40000, EXT, 443, F_SYN));
	struct egress_ct_val fv, rv;
	struct run r;
	uint64_t ev;

	gateway_node();
	ev = events_sent();
	send_in(&f, &r);
	/* Translated and routed: redirect out of eg0 to the router. */
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_uint_eq(r.v.ip->protocol, IPPROTO_TCP);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), EGRESS_IP);
	ck_assert_uint_eq(sport_of(&r.v), 40000);
	ck_assert_str_eq(ntoa(r.v.ip->daddr), EXT);
	ck_assert_uint_eq(dport_of(&r.v), 443);
	ck_assert_uint_eq(r.v.ip->ttl, 62);
	ck_assert_mem_eq(r.v.eth->h_dest, MAC_R, ETH_ALEN);
	ck_assert_mem_eq(r.v.eth->h_source, MAC_DEV, ETH_ALEN);
	assert_csums(&r.v);
	ck_assert_uint_eq(r.ctx.cb[BPFLB_CB_REDIRECT], dev_ifindex);
	ck_assert_uint_eq(events_sent(), ev + 1);
	ck_assert_int_eq(ct_get(BPFLB_CT_FWD, IPPROTO_TCP, POD, 40000, EXT, 443, &fv), 0);
	ck_assert_str_eq(ntoa(fv.node_addr), NODE_W);
	ck_assert_uint_eq(fv.state, BPFLB_CT_NEW);
	ck_assert_uint_eq(ct_count(), 2);
	ck_assert_uint_eq(stats(0).snat_packets, 1);

	/* The SYN-ACK: back to the pod via its node; MSS lowered for the tunnel. */
	f = tcp(EXT, 443, EGRESS_IP, 40000, F_SYN | F_ACK);
	f.mss = 1460;
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), EXT);
	ck_assert_uint_eq(sport_of(&r.v), 443);
	ck_assert_str_eq(ntoa(r.v.ip->daddr), POD);
	ck_assert_uint_eq(dport_of(&r.v), 40000);
	ck_assert_uint_eq(r.v.l4[22] << 8 | r.v.l4[23], MTU - EGRESS_TUN_HLEN - 40);
	ck_assert_mem_eq(r.v.eth->h_dest, MAC_W, ETH_ALEN);
	assert_csums(&r.v);
	ck_assert_uint_ne(r.ctx.cb[BPFLB_CB_FLAGS] & BPFLB_PKT_REPLY, 0);
	ck_assert_int_eq(ct_get(BPFLB_CT_REV, IPPROTO_TCP, EXT, 443, EGRESS_IP, 40000, &rv), 0);
	ck_assert_uint_eq(rv.state, BPFLB_CT_ESTABLISHED);
	ck_assert_uint_eq(stats(0).reply_packets, 1);

	/* A smaller MSS is left alone. */
	f.mss = 1200;
	send_in(&f, &r);
	ck_assert_uint_eq(r.v.l4[22] << 8 | r.v.l4[23], 1200);
	assert_csums(&r.v);

	/* The established flow keeps its port. */
	f = tunnelled(tcp(POD, 40000, EXT, 443, F_ACK));
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), EGRESS_IP);
	ck_assert_uint_eq(sport_of(&r.v), 40000);
	ck_assert_uint_eq(ct_count(), 2);
}
END_TEST

START_TEST(test_gateway_port_conflict)
{
	struct flow a = tunnelled(udp(POD, 5000, EXT, 53));
	struct flow b = tunnelled(udp(POD_B, 5000, EXT, 53));
	uint16_t pa, pb;
	struct run r;

	gateway_node();
	send_in(&a, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	pa = sport_of(&r.v);
	send_in(&b, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	pb = sport_of(&r.v);
	assert_csums(&r.v);
	ck_assert_uint_eq(pa, 5000);
	ck_assert_uint_ne(pb, pa);
	ck_assert_uint_ge(pb, PORT_MIN);

	/* Each reply finds its own pod. */
	a = udp(EXT, 53, EGRESS_IP, pa);
	send_in(&a, &r);
	ck_assert_str_eq(ntoa(r.v.ip->daddr), POD);
	ck_assert_uint_eq(dport_of(&r.v), 5000);
	assert_csums(&r.v);
	b = udp(EXT, 53, EGRESS_IP, pb);
	send_in(&b, &r);
	ck_assert_str_eq(ntoa(r.v.ip->daddr), POD_B);
	ck_assert_uint_eq(dport_of(&r.v), 5000);
	assert_csums(&r.v);
	ck_assert_uint_eq(ct_count(), 4);
}
END_TEST

START_TEST(test_gateway_icmp_echo)
{
	struct flow f = {
	    .proto = IPPROTO_ICMP, .saddr = POD, .sport = 4242, .daddr = EXT, .icmp_type = 8};
	struct flow g = f;
	uint16_t id1, id2;
	struct run r;

	gateway_node();
	f = tunnelled(f);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), EGRESS_IP);
	id1 = icmp_id_of(&r.v);
	ck_assert_uint_eq(id1, 4242);
	assert_csums(&r.v);
	/* Another pod with the same identifier gets another one. */
	g.saddr = POD_B;
	g = tunnelled(g);
	send_in(&g, &r);
	id2 = icmp_id_of(&r.v);
	ck_assert_uint_ne(id2, id1);
	assert_csums(&r.v);

	f = (struct flow){
	    .proto = IPPROTO_ICMP, .saddr = EXT, .sport = id2, .daddr = EGRESS_IP, .icmp_type = 0};
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_str_eq(ntoa(r.v.ip->daddr), POD_B);
	ck_assert_uint_eq(icmp_id_of(&r.v), 4242);
	assert_csums(&r.v);
}
END_TEST

START_TEST(test_gateway_inactive_ip_drops)
{
	struct flow f = tunnelled(tcp(POD, 40000, EXT, 443, F_SYN));
	struct run r;

	/* Basic mode without the address configured, or a VIP this node lost. */
	gateway_node();
	set_egress_ip(EGRESS_IP, 0);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_NO_GATEWAY), 1);
	ck_assert_uint_eq(stats(0).drop_packets, 1);
	ck_assert_uint_eq(ct_count(), 0);
}
END_TEST

START_TEST(test_gateway_ignores_foreign_tunnels)
{
	struct flow f;

	gateway_node();
	/* From an address that is not a cluster node: not ours to relay. */
	f = tcp(POD, 40000, EXT, 443, F_SYN);
	f.outer_src = "198.51.100.1";
	f.outer_dst = NODE_G;
	assert_untouched(skel->progs.egress_in, &f);
	/* Inner packet no policy selects (another user of IP-in-IP). */
	f = tunnelled(tcp(POD_OTHER, 40000, EXT, 443, F_SYN));
	assert_untouched(skel->progs.egress_in, &f);
	/* The load balancer's IP-in-IP (no option) is not ours either. */
	f = tunnelled(tcp(POD, 40000, EXT, 443, F_SYN));
	f.plain_ipip = 1;
	assert_untouched(skel->progs.egress_in, &f);
	/* Tunnel to another node. */
	f = tunnelled(tcp(POD, 40000, EXT, 443, F_SYN));
	f.outer_dst = NODE_X;
	assert_untouched(skel->progs.egress_in, &f);
	/* Traffic to the egress IP that belongs to no translated flow. */
	f = tcp(EXT, 443, EGRESS_IP, 22, F_SYN);
	assert_untouched(skel->progs.egress_in, &f);
	ck_assert_uint_eq(ct_count(), 0);
}
END_TEST

START_TEST(test_gateway_fragments_dropped)
{
	struct flow f = tunnelled(udp(POD, 5000, EXT, 53));
	struct run r;

	gateway_node();
	f.frag = 0x2000; /* first fragment: MF */
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	f.frag = 0x0010;
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_SHOT);
	ck_assert_uint_eq(drops(BPFLB_DROP_BAD_PACKET), 2);
}
END_TEST

START_TEST(test_gateway_policy_moved_egress_ip)
{
	struct flow f = tunnelled(udp(POD, 5000, EXT, 53));
	struct egress_policy_val v;
	struct run r;
	uint32_t zero = 0;

	gateway_node();
	send_in(&f, &r);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), EGRESS_IP);
	/* The policy now uses another egress IP: the flow starts over with it. */
	ck_assert_int_eq(bpf_map_lookup_elem(fd_of(skel->maps.egress_policies), &zero, &v), 0);
	v.egress_ip = ip("192.168.1.51");
	ck_assert_int_eq(bpf_map_update_elem(fd_of(skel->maps.egress_policies), &zero, &v, 0), 0);
	set_egress_ip("192.168.1.51", EGRESS_IP_F_ACTIVE);
	send_in(&f, &r);
	ck_assert_int_eq(r.ret, TC_ACT_REDIRECT);
	ck_assert_str_eq(ntoa(r.v.ip->saddr), "192.168.1.51");
	ck_assert_uint_eq(ct_count(), 2);
}
END_TEST

/* --- runner ----------------------------------------------------------------------------------- */

static Suite *egress_suite(void)
{
	Suite *s = suite_create("egress");
	struct {
		const char *name;
		const TTest *test;
	} tests[] = {
	    {"workload", test_steer_tcp_syn},
	    {"workload", test_steer_any_protocol_and_fragments},
	    {"workload", test_untouched_traffic},
	    {"workload", test_lb_reply_untouched},
	    {"workload", test_no_gateway_drops},
	    {"workload", test_tunnel_too_big},
	    {"workload", test_gateway_unreachable_drops},
	    {"workload", test_local_gateway_snat},
	    {"gateway", test_gateway_decap_snat_and_reply},
	    {"gateway", test_gateway_port_conflict},
	    {"gateway", test_gateway_icmp_echo},
	    {"gateway", test_gateway_inactive_ip_drops},
	    {"gateway", test_gateway_ignores_foreign_tunnels},
	    {"gateway", test_gateway_fragments_dropped},
	    {"gateway", test_gateway_policy_moved_egress_ip},
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

static int sh(const char *cmd)
{
	int rc = system(cmd);

	if (rc)
		fprintf(stderr, "test_egress_fixtures: `%s` failed (%d)\n", cmd, rc);
	return rc;
}

static int write_file(const char *path, const char *v)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(v, f);
	return fclose(f);
}

/* The node network of the fixture: eg0 with neighbours for every next hop. */
static int scene(void)
{
	if (sh("ip link set lo up") ||
	    sh("ip link add eg0 address 02:ee:00:00:00:01 type veth peer name eg1") ||
	    sh("ip link set eg1 up") || sh("ip link set eg0 up") ||
	    sh("ip addr add 192.168.1.2/24 dev eg0") ||
	    sh("ip neigh add 192.168.1.10 lladdr 02:ee:00:00:00:10 dev eg0 nud permanent") ||
	    sh("ip neigh add 192.168.1.20 lladdr 02:ee:00:00:00:20 dev eg0 nud permanent") ||
	    sh("ip neigh add 192.168.1.1 lladdr 02:ee:00:00:00:99 dev eg0 nud permanent") ||
	    sh("ip route add 203.0.113.0/24 via 192.168.1.1 dev eg0") ||
	    sh("ip route add 10.244.1.0/24 via 192.168.1.10 dev eg0"))
		return -1;
	if (write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1") ||
	    write_file("/proc/sys/net/ipv4/conf/eg0/forwarding", "1"))
		return -1;
	dev_ifindex = if_nametoindex("eg0");
	return dev_ifindex ? 0 : -1;
}

int main(void)
{
	SRunner *sr;
	cpu_set_t cpus;
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "test_egress_fixtures: needs root (BPF, bpffs, netns); skipped\n");
		return 77;
	}
	libbpf_set_print(libbpf_print);
	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0 || ensure_bpffs()) {
		perror("test_egress_fixtures: bpffs at " BPF_FS);
		return 1;
	}
	if (unshare(CLONE_NEWNET)) {
		perror("test_egress_fixtures: unshare(CLONE_NEWNET)");
		return 1;
	}
	if (scene()) {
		fprintf(stderr, "test_egress_fixtures: cannot set up the fixture's network "
				"(iproute2 needed)\n");
		return 1;
	}
	/* One CPU: per-CPU state (event token bucket) is then the whole state. */
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	snprintf(pin_base, sizeof(pin_base), BPF_FS "/bpflb-egress-test-XXXXXX");
	if (!mkdtemp(pin_base)) {
		perror("test_egress_fixtures: mkdtemp under " BPF_FS);
		return 1;
	}
	sr = srunner_create(egress_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(pin_base);
	return failed ? 1 : 0;
}
