// SPDX-License-Identifier: GPL-2.0-only
/*
 * prog_cost: what the datapath costs per packet, through BPF_PROG_TEST_RUN.
 *
 *   prog_cost [--rounds R] [--calls K] [--services N] [--list] [--only NAME,..]
 *
 * Every case is a program and a packet: a new TCP flow to a NodePort (each
 * call a fresh 5-tuple), a packet of an established flow, a reply being
 * reverse-translated, DSR dispatch (when the dsr plugin is built), the whole
 * pipeline as attached (core entry program tail-calling the mode's stage), a
 * packet for no service, and the floor: an empty tc program.
 *
 * How it is timed.  A program that rewrites the packet must see the original
 * packet on every call, so every call is repeat=1 on a fresh copy of the
 * input (repeat=N would re-run the already rewritten packet: another path).
 * The kernel reports the run time of that one call (opts.duration, ns); we
 * take the median over all calls.  BPF_PROG_TEST_RUN's own overhead is in
 * every number; the empty program measures it, and "minus floor" is what the
 * case costs above it.  The cases run interleaved: each round runs a batch
 * of K calls of every case (in an order that rotates every round), so slow
 * drifts of a shared machine hit all cases alike.
 *
 * The scene: this process runs in a network namespace of its own with one
 * veth whose routes reach the backends, the clients and the other node
 * through a neighbour with a permanent entry, so FIB lookups succeed and the
 * forwarded cases end in a redirect, as on a node.  The maps are filled the way
 * the daemon fills them (bpflb_node, bpflb_svc, bpflb_backends, bpflb_slots),
 * with N filler services besides the two the packets use.  New-flow cases
 * flush conntrack before each batch, so the map never fills up.
 *
 * Adding a case is one entry in cases[]; adding a BPF object (another mode
 * plugin) one entry in objs[].
 *
 * A case whose first call does not take the intended path (verdict, address
 * the packet leaves toward) is reported as invalid instead of timed;
 * BENCH_DEBUG=1 dumps its packet in and out.
 *
 * Output: one JSON object on stdout, a table on stderr.  Needs root.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
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

#include "bench_empty_bpf.skel.h"
#include "bpflb_entry.skel.h"
#include "snat_bpf.skel.h"
#ifdef BENCH_HAVE_DSR
#include "dsr_bpf.skel.h"
#endif

#define BPF_FS		"/sys/fs/bpf"
#define BPF_FS_MAGIC_NR 0xcafe4a11

/* --- the scene ------------------------------------------------------------- */

#define NODE	     "192.168.1.10"
#define NODE2	     "192.168.1.20" /* where the remote backend runs */
#define GW	     "10.200.0.2"
#define CLIENT_NET   0x0a010000u /* 10.1.0.0/16, host order */
#define CLIENT	     "10.1.0.5"
#define BE_LOCAL     "10.244.1.7"
#define BE_REMOTE    "10.244.2.9"
#define BE_PORT	     8080
#define NP_LOCAL     30080 /* service 1: one backend on this node */
#define NP_REMOTE    30081 /* service 2: one backend on NODE2 */
#define SNAT_MIN     1024
#define SNAT_MAX     65535
#define SEED	     0x9e3779b9u
#define SVC_LOCAL    1
#define SVC_REMOTE   2
#define BE_ID_LOCAL  1
#define BE_ID_REMOTE 2

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10

static const uint8_t MAC_NODE[ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t MAC_PEER[ETH_ALEN] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

static uint32_t ip(const char *s)
{
	return inet_addr(s);
}

/* --- BPF objects ------------------------------------------------------------- */

struct obj_def {
	const char *name;
	const void *(*elf)(size_t *sz);
	struct bpf_object *obj;
};

static struct obj_def objs[] = {
    {"empty", bench_empty_bpf__elf_bytes},
    {"entry", bpflb_entry__elf_bytes},
    {"snat", snat_bpf__elf_bytes},
#ifdef BENCH_HAVE_DSR
    {"dsr", dsr_bpf__elf_bytes},
#endif
};
#define NOBJS (sizeof(objs) / sizeof(objs[0]))

static char pin_dir[PATH_MAX];
static int ifindex;

static struct bpf_object *obj_get(const char *name)
{
	for (size_t i = 0; i < NOBJS; i++)
		if (!strcmp(objs[i].name, name))
			return objs[i].obj;
	return NULL;
}

static int prog_fd(const char *obj, const char *prog)
{
	struct bpf_object *o = obj_get(obj);
	struct bpf_program *p = o ? bpf_object__find_program_by_name(o, prog) : NULL;

	return p ? bpf_program__fd(p) : -1;
}

static int map_fd(const char *name)
{
	/* The shared maps are pinned: any object that declares them has the same fd. */
	struct bpf_map *m = bpf_object__find_map_by_name(obj_get("snat"), name);

	if (!m) {
		fprintf(stderr, "prog_cost: no map %s\n", name);
		exit(1);
	}
	return bpf_map__fd(m);
}

static void die(const char *what)
{
	fprintf(stderr, "prog_cost: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void update(const char *map, const void *k, const void *v)
{
	if (bpf_map_update_elem(map_fd(map), k, v, 0))
		die(map);
}

/* --- maps, filled as the daemon does ------------------------------------------ */

static void set_node(uint32_t flags)
{
	struct bpflb_node_cfg cfg = {
	    .addr = ip(NODE),
	    .snat_port_min = SNAT_MIN,
	    .snat_port_max = SNAT_MAX,
	    .hash_seed = SEED,
	    .flags = flags,
	};
	uint32_t zero = 0;

	update("bpflb_node", &zero, &cfg);
}

static void add_service(uint32_t addr, uint16_t port, uint32_t id, uint16_t count)
{
	struct bpflb_svc_key k = {.addr = addr, .port = htons(port), .proto = IPPROTO_TCP};
	struct bpflb_svc v = {.id = id, .count = count, .total = count};

	update("bpflb_svc", &k, &v);
}

static void add_backend(uint32_t id, uint32_t addr, uint8_t flags, uint32_t node)
{
	struct bpflb_backend b = {
	    .addr = addr, .port = htons(BE_PORT), .flags = flags, .node_addr = node};

	update("bpflb_backends", &id, &b);
}

static void add_slot(uint32_t svc, uint32_t slot, uint32_t backend)
{
	struct bpflb_slot_key k = {.svc_id = svc, .slot = slot};

	update("bpflb_slots", &k, &backend);
}

static void fill_maps(unsigned int fillers)
{
	struct bpf_map *peers = bpf_object__find_map_by_name(obj_get("snat"), "bpflb_peers");
	uint32_t node2 = ip(NODE2), one = 1;

	set_node(0);
	/* The other node, where IP-in-IP may come from (maps of newer datapaths only). */
	if (peers && bpf_map_update_elem(bpf_map__fd(peers), &node2, &one, 0))
		die("bpflb_peers");
	add_backend(BE_ID_LOCAL, ip(BE_LOCAL), BPFLB_BE_F_LOCAL, ip(NODE));
	add_backend(BE_ID_REMOTE, ip(BE_REMOTE), 0, ip(NODE2));
	add_service(ip(NODE), NP_LOCAL, SVC_LOCAL, 1);
	add_slot(SVC_LOCAL, 0, BE_ID_LOCAL);
	add_service(ip(NODE), NP_REMOTE, SVC_REMOTE, 1);
	add_slot(SVC_REMOTE, 0, BE_ID_REMOTE);
	/* LoadBalancer services on 172.16.0.0/12, each with a backend of its own. */
	for (unsigned int i = 0; i < fillers; i++) {
		uint32_t id = 3 + i;

		add_backend(id, htonl(0x64400000u + i + 1), 0, ip(NODE2)); /* 100.64.0.0/10 */
		add_service(htonl(0xac100000u + i + 1), 80, id, 1);
		add_slot(id, 0, id);
	}
}

/* Forget every flow: new-flow batches start from an empty conntrack. */
static unsigned int ct_gen;

static void ct_flush(void)
{
	int fd = map_fd("bpflb_ct");
	struct bpflb_ct_key *keys = NULL, k;
	size_t n = 0, cap = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, &k)) {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			keys = realloc(keys, cap * sizeof(*keys));
			if (!keys)
				die("realloc");
		}
		keys[n++] = k;
		prev = &keys[n - 1];
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &keys[i]);
	free(keys);
	ct_gen++;
}

/* --- packets ------------------------------------------------------------------ */

static uint32_t sum16(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *b = data;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

struct pkt {
	uint32_t saddr, daddr; /* network order */
	uint16_t sport, dport; /* host order */
	uint8_t flags;
	bool dsr_opt; /* the DSR option, frontend fe_addr:fe_port */
	uint32_t fe_addr;
	uint16_t fe_port;
	uint32_t outer_src; /* != 0: wrapped in IP-in-IP outer_src -> outer_dst */
	uint32_t outer_dst;
	uint8_t proto;	    /* 0: TCP; IPPROTO_UDP: a datagram with the same payload */
	uint32_t ack;	    /* TCP acknowledgment number when F_ACK; 0: 2000 */
};

static const uint8_t PAYLOAD[16] = "bpflb-bench-pkt";

static size_t ip_hdr(uint8_t *b, uint32_t saddr, uint32_t daddr, uint8_t proto, const uint8_t *opt,
		     size_t optlen, size_t payload)
{
	struct iphdr *iph = (void *)b;
	size_t ihl = sizeof(*iph) + optlen;

	memset(iph, 0, sizeof(*iph));
	iph->version = 4;
	iph->ihl = ihl / 4;
	iph->tot_len = htons(ihl + payload);
	iph->id = htons(0x1234);
	iph->frag_off = htons(0x4000);
	iph->ttl = 64;
	iph->protocol = proto;
	iph->saddr = saddr;
	iph->daddr = daddr;
	if (optlen) /* opt is NULL without options: memcpy's arguments must not be */
		memcpy(iph + 1, opt, optlen);
	iph->check = htons(fold(sum16(iph, ihl, 0)));
	return ihl;
}

/* Ethernet + [outer IPv4] + IPv4 [+ DSR option] + TCP/UDP + 16 bytes, checksums valid. */
static size_t build(uint8_t *buf, const struct pkt *p)
{
	struct ethhdr *eth = (void *)buf;
	uint8_t opt[BPFLB_DSR_OPT_LEN], *l3 = (uint8_t *)(eth + 1), *l4;
	uint8_t proto = p->proto ? p->proto : IPPROTO_TCP;
	size_t l4hdr = proto == IPPROTO_UDP ? sizeof(struct udphdr) : sizeof(struct tcphdr);
	size_t optlen = 0, l4len = l4hdr + sizeof(PAYLOAD), ihl;
	struct tcphdr *th;
	uint32_t ps;

	memcpy(eth->h_dest, MAC_NODE, ETH_ALEN);
	memcpy(eth->h_source, MAC_PEER, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	if (p->dsr_opt) {
		struct bpflb_dsr_opt o = {.type = BPFLB_DSR_OPT_TYPE,
					  .len = BPFLB_DSR_OPT_LEN,
					  .port = htons(p->fe_port),
					  .addr = p->fe_addr};

		memcpy(opt, &o, sizeof(o));
		optlen = sizeof(o);
	}
	if (p->outer_src) {
		size_t inner = sizeof(struct iphdr) + optlen + l4len;

		l3 += ip_hdr(l3, p->outer_src, p->outer_dst, IPPROTO_IPIP, NULL, 0, inner);
	}
	ihl = ip_hdr(l3, p->saddr, p->daddr, proto, opt, optlen, l4len);
	l4 = l3 + ihl;
	ps = sum16(&p->saddr, 4, 0);
	ps = sum16(&p->daddr, 4, ps) + proto + l4len;
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = (void *)l4;

		uh->source = htons(p->sport);
		uh->dest = htons(p->dport);
		uh->len = htons(l4len);
		uh->check = 0;
		memcpy(l4 + sizeof(*uh), PAYLOAD, sizeof(PAYLOAD));
		uh->check = htons(fold(sum16(l4, l4len, ps)));
		return (size_t)(l4 - buf) + l4len;
	}
	th = (void *)l4;
	memset(th, 0, sizeof(*th));
	th->source = htons(p->sport);
	th->dest = htons(p->dport);
	th->seq = htonl(1000);
	th->ack_seq = htonl(p->flags & F_ACK ? (p->ack ? p->ack : 2000) : 0);
	th->doff = 5;
	l4[13] = p->flags;
	th->window = htons(65535);
	memcpy(l4 + sizeof(*th), PAYLOAD, sizeof(PAYLOAD));
	th->check = htons(fold(sum16(l4, l4len, ps)));
	return (size_t)(l4 - buf) + l4len;
}

/* --- running ------------------------------------------------------------------- */

struct out {
	int ret;
	uint32_t duration;
	uint8_t data[256];
	uint32_t len;
};

static int run(int fd, const uint8_t *in, size_t len, struct out *o, bool egress)
{
	struct __sk_buff ctx = {.ifindex = ifindex, .ingress_ifindex = egress ? 0 : ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = len,
		    .data_out = o->data, .data_size_out = sizeof(o->data), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	if (bpf_prog_test_run_opts(fd, &opts))
		return -errno;
	o->ret = opts.retval;
	o->duration = opts.duration;
	o->len = opts.data_size_out;
	return 0;
}

static uint32_t out_daddr(const struct out *o)
{
	const struct iphdr *iph = (const void *)(o->data + sizeof(struct ethhdr));

	return o->len >= sizeof(struct ethhdr) + sizeof(*iph) ? iph->daddr : 0;
}

static uint16_t out_sport(const struct out *o)
{
	const struct iphdr *iph = (const void *)(o->data + sizeof(struct ethhdr));
	const struct tcphdr *th = (const void *)((const uint8_t *)iph + iph->ihl * 4);

	return ntohs(th->source);
}

/* --- flows the established and reply cases use ------------------------------------- */

/* One flow, set up through the programs themselves (untimed) when a flush lost it. */
struct flow {
	const char *obj, *in, *out; /* the mode's programs */
	uint32_t node_flags;
	uint16_t cport, np; /* client port, NodePort */
	bool local;
	bool be_half;      /* the backend node's half of a DSR flow (dispatched SYN) */
	unsigned int gen;  /* ct_gen it was made in; 0: never */
	uint16_t nat_port; /* SNAT source port the node chose */
};

static struct flow fl_snat = {"snat", "snat_in", "snat_out", 0, 40000, NP_REMOTE, false};
static struct flow fl_local = {"snat", "snat_in", "snat_out", 0, 40001, NP_LOCAL, true};
static struct flow fl_dsr_opt = {"dsr", "dsr_in", "dsr_out", 0, 40002, NP_REMOTE, false};
static struct flow fl_dsr_ipip = {"dsr", "dsr_in",  "dsr_out", BPFLB_NODE_F_DSR_IPIP,
				  40003, NP_REMOTE, false};
/* Node 2 dispatched these to our local backend (client port, frontend node 2:NP_REMOTE). */
static struct flow fl_be_opt = {"dsr", "dsr_in", "dsr_out", 0, 40004, NP_REMOTE, true, true};
static struct flow fl_be_ipip = {"dsr", "dsr_in", "dsr_out", 0, 40005, NP_REMOTE, true, true};

static void flow_ensure(struct flow *f)
{
	struct pkt syn = {.saddr = ip(CLIENT),
			  .daddr = ip(NODE),
			  .sport = f->cport,
			  .dport = f->np,
			  .flags = F_SYN};
	uint8_t buf[256];
	struct out o;
	size_t len;

	if (f->gen == ct_gen && ct_gen)
		return;
	set_node(f->node_flags);
	if (f->be_half) {
		syn.daddr = ip(BE_LOCAL);
		syn.dport = BE_PORT;
		syn.dsr_opt = true;
		syn.fe_addr = ip(NODE2);
		syn.fe_port = f->np;
		if (f == &fl_be_ipip) {
			syn.outer_src = ip(NODE2);
			syn.outer_dst = ip(NODE);
		}
	}
	len = build(buf, &syn);
	if (run(prog_fd(f->obj, f->in), buf, len, &o, false))
		die("flow setup");
	f->nat_port = out_sport(&o);
	if (!strcmp(f->obj, "snat")) {
		/* The SYN-ACK establishes both entries. */
		struct pkt sa = {.saddr = f->local ? ip(BE_LOCAL) : ip(BE_REMOTE),
				 .daddr = f->local ? ip(CLIENT) : ip(NODE),
				 .sport = BE_PORT,
				 .dport = f->local ? f->cport : f->nat_port,
				 .flags = F_SYN | F_ACK};

		len = build(buf, &sa);
		if (run(prog_fd(f->obj, f->local ? f->out : f->in), buf, len, &o, f->local))
			die("flow setup");
	}
	f->gen = ct_gen ? ct_gen : (ct_gen = 1);
}

/* --- cases ---------------------------------------------------------------------- */

struct bcase;
typedef size_t (*pkt_fn)(const struct bcase *c, uint64_t i, uint8_t *buf);

struct bcase {
	const char *name;
	const char *desc;
	const char *obj, *prog; /* the program timed */
	const char *stage_obj;	/* pipeline cases: this object's stage_prog goes into */
	const char *stage_prog; /* the IN_LB slot while the case runs */
	uint32_t node_flags;	/* bpflb_node_cfg.flags during the case */
	bool fresh;		/* every call a new flow: flush conntrack first */
	bool egress;
	struct flow *flow; /* the flow the packets belong to */
	pkt_fn packet;
	int expect_ret;		  /* verdict of the intended path */
	const char *expect_daddr; /* address the packet must leave toward, NULL: unchecked */
	/* results */
	uint32_t *dur;
	size_t ndur;
	bool skipped, wrong;
	char why[128];
};

/* A new flow per call: client address and port from the call number. */
static size_t pkt_new(const struct bcase *c, uint64_t i, uint8_t *buf, uint16_t np)
{
	struct pkt p = {.saddr = htonl(CLIENT_NET + 256 + (uint32_t)(i / 50000)),
			.daddr = ip(NODE),
			.sport = (uint16_t)(10000 + i % 50000),
			.dport = np,
			.flags = F_SYN};

	return build(buf, &p);
}

static size_t pkt_new_local(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	return pkt_new(c, i, buf, NP_LOCAL);
}

static size_t pkt_new_remote(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	return pkt_new(c, i, buf, NP_REMOTE);
}

/* Client -> frontend, ACK, of the case's flow. */
static size_t pkt_est(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	struct pkt p = {.saddr = ip(CLIENT),
			.daddr = ip(NODE),
			.sport = c->flow->cport,
			.dport = c->flow->np,
			.flags = F_ACK};

	return build(buf, &p);
}

/* Remote backend -> node:SNAT port, ACK: the reply of a SNATed flow. */
static size_t pkt_reply_snat(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	struct pkt p = {.saddr = ip(BE_REMOTE),
			.daddr = ip(NODE),
			.sport = BE_PORT,
			.dport = c->flow->nat_port,
			.flags = F_ACK};

	return build(buf, &p);
}

/* Local backend -> client, ACK, leaving the node (tc egress). */
static size_t pkt_reply_local(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	struct pkt p = {.saddr = ip(BE_LOCAL),
			.daddr = ip(CLIENT),
			.sport = BE_PORT,
			.dport = c->flow->cport,
			.flags = F_ACK};

	return build(buf, &p);
}

/* To the node, port 22: no service, not a SNAT port. */
static size_t pkt_other(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	struct pkt p = {
	    .saddr = ip(CLIENT), .daddr = ip(NODE), .sport = 50000, .dport = 22, .flags = F_ACK};

	return build(buf, &p);
}

/* Our local backend -> client, leaving the node: the reply of a flow node 2 dispatched. */
static size_t pkt_reply_dsr(const struct bcase *c, uint64_t i, uint8_t *buf, uint8_t flags)
{
	struct pkt p = {.saddr = ip(BE_LOCAL),
			.daddr = ip(CLIENT),
			.sport = BE_PORT,
			.dport = c->flow->cport,
			.flags = flags,
			.ack = 1001}; /* the SYN's sequence number is 1000 */

	return build(buf, &p);
}

static size_t pkt_reply_dsr_ack(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	return pkt_reply_dsr(c, i, buf, F_ACK);
}

static size_t pkt_reply_dsr_synack(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	return pkt_reply_dsr(c, i, buf, F_SYN | F_ACK);
}

/* A UDP datagram to a local pod, for no service: what every such packet costs. */
static size_t pkt_udp_other(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	struct pkt p = {.saddr = ip(CLIENT),
			.daddr = ip(BE_LOCAL),
			.sport = 50000,
			.dport = 53,
			.proto = IPPROTO_UDP};

	return build(buf, &p);
}

/* Backend node of DSR: a dispatched SYN to our local backend, new flow per call. */
static size_t pkt_dsr_backend(const struct bcase *c, uint64_t i, uint8_t *buf, bool ipip)
{
	struct pkt p = {.saddr = htonl(CLIENT_NET + 256 + (uint32_t)(i / 50000)),
			.daddr = ip(BE_LOCAL),
			.sport = (uint16_t)(10000 + i % 50000),
			.dport = BE_PORT,
			.flags = F_SYN,
			.dsr_opt = true,
			.fe_addr = ip(NODE2),
			.fe_port = NP_REMOTE};

	if (ipip) {
		p.outer_src = ip(NODE2);
		p.outer_dst = ip(NODE);
	}
	return build(buf, &p);
}

static size_t pkt_dsr_backend_opt(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	return pkt_dsr_backend(c, i, buf, false);
}

static size_t pkt_dsr_backend_ipip(const struct bcase *c, uint64_t i, uint8_t *buf)
{
	return pkt_dsr_backend(c, i, buf, true);
}

#define OK    TC_ACT_OK
#define REDIR TC_ACT_REDIRECT

static struct bcase cases[] = {
    {"floor", "empty tc program (BPF_PROG_TEST_RUN overhead)", "empty", "bench_empty",
     .packet = pkt_other, .expect_ret = OK},
    {"entry_only", "core entry program, no stage loaded", "entry", "bpflb_entry_in",
     .packet = pkt_other, .expect_ret = OK},
    {"no_service", "snat_in: packet for no service (passes)", "snat", "snat_in",
     .packet = pkt_other, .expect_ret = OK},
    {"syn_local", "snat_in: new flow (SYN) to a NodePort, local backend: DNAT", "snat", "snat_in",
     .fresh = true, .packet = pkt_new_local, .expect_ret = REDIR, .expect_daddr = BE_LOCAL},
    {"syn_snat", "snat_in: new flow (SYN) to a NodePort, remote backend: DNAT+SNAT", "snat",
     "snat_in", .fresh = true, .packet = pkt_new_remote, .expect_ret = REDIR,
     .expect_daddr = BE_REMOTE},
    {"est_local", "snat_in: established flow, local backend", "snat", "snat_in", .flow = &fl_local,
     .packet = pkt_est, .expect_ret = REDIR, .expect_daddr = BE_LOCAL},
    {"est_snat", "snat_in: established flow, remote backend (SNAT)", "snat", "snat_in",
     .flow = &fl_snat, .packet = pkt_est, .expect_ret = REDIR, .expect_daddr = BE_REMOTE},
    {"reply_snat", "snat_in: reply of a SNATed flow, reverse NAT", "snat", "snat_in",
     .flow = &fl_snat, .packet = pkt_reply_snat, .expect_ret = REDIR, .expect_daddr = CLIENT},
    {"reply_local", "snat_out: reply of a local backend, reverse NAT (egress)", "snat", "snat_out",
     .egress = true, .flow = &fl_local, .packet = pkt_reply_local, .expect_ret = OK,
     .expect_daddr = CLIENT},
    {"pipeline_est_snat", "entry -> tail call -> snat_in: established flow (as attached)", "entry",
     "bpflb_entry_in", "snat", "snat_in", .flow = &fl_snat, .packet = pkt_est, .expect_ret = REDIR,
     .expect_daddr = BE_REMOTE},
    {"dsr_syn_opt", "dsr_in: new flow (SYN), remote backend, IPv4 option dispatch", "dsr", "dsr_in",
     .fresh = true, .packet = pkt_new_remote, .expect_ret = REDIR, .expect_daddr = BE_REMOTE},
    {"dsr_syn_ipip", "dsr_in: new flow (SYN), remote backend, IP-in-IP dispatch", "dsr", "dsr_in",
     .node_flags = BPFLB_NODE_F_DSR_IPIP, .fresh = true, .packet = pkt_new_remote,
     .expect_ret = REDIR, .expect_daddr = NODE2},
    {"dsr_est_opt", "dsr_in: established flow, option dispatch (DNAT only)", "dsr", "dsr_in",
     .flow = &fl_dsr_opt, .packet = pkt_est, .expect_ret = REDIR, .expect_daddr = BE_REMOTE},
    {"dsr_est_ipip", "dsr_in: established flow, IP-in-IP (every packet encapsulated)", "dsr",
     "dsr_in", .node_flags = BPFLB_NODE_F_DSR_IPIP, .flow = &fl_dsr_ipip, .packet = pkt_est,
     .expect_ret = REDIR, .expect_daddr = NODE2},
    {"dsr_backend_opt", "dsr_in on the backend node: SYN with the option (read, removed)", "dsr",
     "dsr_in", .fresh = true, .packet = pkt_dsr_backend_opt, .expect_ret = REDIR,
     .expect_daddr = BE_LOCAL},
    {"dsr_backend_ipip", "dsr_in on the backend node: IP-in-IP SYN (decapsulated)", "dsr", "dsr_in",
     .fresh = true, .packet = pkt_dsr_backend_ipip, .expect_ret = REDIR, .expect_daddr = BE_LOCAL},
    {"dsr_reply_opt", "dsr_out on the backend node: reply of a dispatched flow (source = frontend)",
     "dsr", "dsr_out", .egress = true, .flow = &fl_be_opt, .packet = pkt_reply_dsr_ack,
     .expect_ret = OK, .expect_daddr = CLIENT},
    {"dsr_synack_ipip", "dsr_out on the backend node: SYN-ACK of an IP-in-IP flow (MSS clamp)",
     "dsr", "dsr_out", .egress = true, .flow = &fl_be_ipip, .packet = pkt_reply_dsr_synack,
     .expect_ret = OK, .expect_daddr = CLIENT},
    {"dsr_no_service_udp", "dsr_in: UDP datagram to a local pod, no service, no DSR (passes)",
     "dsr", "dsr_in", .packet = pkt_udp_other, .expect_ret = OK},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* --- setup ---------------------------------------------------------------------- */

static void sh(const char *cmd)
{
	if (system(cmd)) {
		fprintf(stderr, "prog_cost: failed: %s\n", cmd);
		exit(1);
	}
}

static void net_setup(void)
{
	FILE *f;

	if (unshare(CLONE_NEWNET))
		die("unshare(CLONE_NEWNET)");
	sh("ip link set lo up");
	sh("ip link add bench0 address 02:00:00:00:aa:01 type veth peer name bench1");
	sh("ip link set bench1 up && ip link set bench0 up");
	sh("ip addr add 10.200.0.1/24 dev bench0 && ip addr add 192.168.1.11/24 dev bench0");
	sh("ip route add 10.244.0.0/16 via " GW " dev bench0");
	sh("ip route add 10.1.0.0/16 via " GW " dev bench0");
	sh("ip neigh add " GW " lladdr 02:00:00:00:aa:02 dev bench0 nud permanent");
	sh("ip neigh add " NODE2 " lladdr 02:00:00:00:aa:03 dev bench0 nud permanent");
	f = fopen("/proc/sys/net/ipv4/conf/all/forwarding", "w");
	if (!f || fputs("1", f) < 0 || fclose(f))
		die("net.ipv4.conf.all.forwarding");
	ifindex = if_nametoindex("bench0");
	if (!ifindex)
		die("bench0");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void cleanup(void)
{
	for (size_t i = 0; i < NOBJS; i++)
		bpf_object__close(objs[i].obj);
	if (pin_dir[0])
		nftw(pin_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

static void load_objects(void)
{
	struct statfs st;

	if (statfs(BPF_FS, &st) || st.f_type != BPF_FS_MAGIC_NR) {
		mkdir(BPF_FS, 0700);
		if (mount("bpf", BPF_FS, "bpf", 0, "mode=0700"))
			die("mount bpffs");
	}
	snprintf(pin_dir, sizeof(pin_dir), BPF_FS "/bpflb-bench-XXXXXX");
	if (!mkdtemp(pin_dir))
		die("mkdtemp under " BPF_FS);
	atexit(cleanup);
	for (size_t i = 0; i < NOBJS; i++) {
		LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir,
			    .object_name = objs[i].name);
		size_t sz;
		const void *elf = objs[i].elf(&sz);

		objs[i].obj = bpf_object__open_mem(elf, sz, &opts);
		if (!objs[i].obj || bpf_object__load(objs[i].obj)) {
			fprintf(stderr, "prog_cost: loading %s failed (verifier log above)\n",
				objs[i].name);
			exit(1);
		}
	}
}

/* --- measuring -------------------------------------------------------------------- */

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p)
{
	double pos = p * (n - 1);
	size_t lo = (size_t)pos;

	return lo + 1 < n ? v[lo] + (v[lo + 1] - v[lo]) * (pos - lo) : v[lo];
}

static uint64_t fresh_seq;

static void batch(struct bcase *c, unsigned int calls)
{
	int fd = prog_fd(c->obj, c->prog), stages = -1;
	uint32_t slot = BPFLB_STAGE_IN_LB;
	uint8_t buf[256];
	struct out o;
	size_t len;

	if (c->fresh)
		ct_flush();
	if (c->flow)
		flow_ensure(c->flow);
	set_node(c->node_flags);
	if (c->stage_obj) {
		int sfd = prog_fd(c->stage_obj, c->stage_prog);

		stages = map_fd("bpflb_stages");
		if (bpf_map_update_elem(stages, &slot, &sfd, 0))
			die("bpflb_stages");
	}
	len = c->packet(c, 0, buf);
	for (unsigned int i = 0; i < calls; i++) {
		if (c->fresh)
			len = c->packet(c, fresh_seq++, buf);
		if (run(fd, buf, len, &o, c->egress)) {
			snprintf(c->why, sizeof(c->why), "BPF_PROG_TEST_RUN: %s", strerror(errno));
			c->wrong = true;
			break;
		}
		if (i == 0 && !c->wrong &&
		    (o.ret != c->expect_ret ||
		     (c->expect_daddr && out_daddr(&o) != ip(c->expect_daddr)))) {
			char d[INET_ADDRSTRLEN];
			uint32_t a = out_daddr(&o);

			inet_ntop(AF_INET, &a, d, sizeof(d));
			snprintf(c->why, sizeof(c->why),
				 "not the intended path: verdict %d (want %d), to %s (want %s)",
				 o.ret, c->expect_ret, d, c->expect_daddr ? c->expect_daddr : "-");
			c->wrong = true;
			if (getenv("BENCH_DEBUG")) {
				for (uint32_t q = 0; q < len; q++)
					fprintf(stderr, "%02x%s", buf[q],
						q % 16 == 15 ? "\n" : " ");
				fprintf(stderr, "\n-> %u bytes\n", o.len);
				for (uint32_t q = 0; q < o.len; q++)
					fprintf(stderr, "%02x%s", o.data[q],
						q % 16 == 15 ? "\n" : " ");
				fprintf(stderr, "\n");
			}
		}
		c->dur[c->ndur++] = o.duration;
	}
	if (stages >= 0)
		bpf_map_delete_elem(stages, &slot);
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: prog_cost [--rounds R] [--calls K] [--services N] [--only NAME,..] [--list]\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {{"rounds", required_argument, NULL, 'r'},
					      {"calls", required_argument, NULL, 'k'},
					      {"services", required_argument, NULL, 's'},
					      {"only", required_argument, NULL, 'o'},
					      {"list", no_argument, NULL, 'l'},
					      {"help", no_argument, NULL, 'h'},
					      {0}};
	unsigned int rounds = 20, calls = 2000, fillers = 1000;
	const char *only = NULL, *sep = "";
	double floor_med = 0;
	cpu_set_t cpus;
	int c;

	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rounds = strtoul(optarg, NULL, 10);
			break;
		case 'k':
			calls = strtoul(optarg, NULL, 10);
			break;
		case 's':
			fillers = strtoul(optarg, NULL, 10);
			break;
		case 'o':
			only = optarg;
			break;
		case 'l':
			for (size_t i = 0; i < NCASES; i++)
				printf("%-20s %s\n", cases[i].name, cases[i].desc);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!rounds || !calls || calls > 50000) {
		fprintf(stderr, "prog_cost: --rounds >= 1, 1 <= --calls <= 50000\n");
		return 2;
	}
	if (geteuid()) {
		fprintf(stderr, "prog_cost: needs root (BPF, bpffs, network namespace)\n");
		return 77;
	}
	libbpf_set_print(libbpf_print);
	net_setup();
	load_objects();
	fill_maps(fillers);

	/* One CPU: the per-CPU state is then the whole state, and no migrations. */
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	for (size_t i = 0; i < NCASES; i++) {
		struct bcase *k = &cases[i];
		char list[256];

		if (only) {
			snprintf(list, sizeof(list), ",%s,", only);
			char name[64];

			snprintf(name, sizeof(name), ",%s,", k->name);
			if (!strstr(list, name) && strcmp(k->name, "floor"))
				k->skipped = true;
		}
		if (!obj_get(k->obj) || (k->stage_obj && !obj_get(k->stage_obj))) {
			k->skipped = true;
			snprintf(k->why, sizeof(k->why), "object %s not built", k->obj);
		}
		k->dur = calloc((size_t)rounds * calls, sizeof(uint32_t));
		if (!k->dur)
			die("calloc");
	}

	for (unsigned int r = 0; r < rounds; r++)
		for (size_t j = 0; j < NCASES; j++) {
			struct bcase *k = &cases[(j + r) % NCASES];

			if (!k->skipped && !k->wrong)
				batch(k, calls);
		}

	fprintf(stderr, "%-18s %9s %9s %9s %12s  %s\n", "case", "median", "p10", "p90",
		"minus floor", "(ns per call, BPF_PROG_TEST_RUN repeat=1)");
	for (size_t i = 0; i < NCASES; i++)
		if (!strcmp(cases[i].name, "floor") && cases[i].ndur) {
			qsort(cases[i].dur, cases[i].ndur, sizeof(uint32_t), u32_cmp);
			floor_med = pct(cases[i].dur, cases[i].ndur, 0.5);
		}
	printf("{\"rounds\": %u, \"calls_per_round\": %u, \"filler_services\": %u,\n"
	       " \"method\": \"BPF_PROG_TEST_RUN repeat=1 per call on a fresh copy of the packet; "
	       "kernel-reported duration; median over all calls; cases interleaved in rounds\",\n"
	       " \"floor_ns\": %.1f, \"cases\": [\n",
	       rounds, calls, fillers, floor_med);
	for (size_t i = 0; i < NCASES; i++) {
		struct bcase *k = &cases[i];
		double med, p10, p90;

		if (k->skipped || k->wrong || !k->ndur) {
			if (k->wrong || (k->skipped && k->why[0]))
				fprintf(stderr, "%-18s %s: %s\n", k->name,
					k->wrong ? "INVALID" : "skipped", k->why);
			if (k->wrong)
				printf(
				    "%s  {\"name\": \"%s\", \"desc\": \"%s\", \"error\": \"%s\"}",
				    sep, k->name, k->desc, k->why),
				    sep = ",\n";
			continue;
		}
		qsort(k->dur, k->ndur, sizeof(uint32_t), u32_cmp);
		med = pct(k->dur, k->ndur, 0.5);
		p10 = pct(k->dur, k->ndur, 0.1);
		p90 = pct(k->dur, k->ndur, 0.9);
		fprintf(stderr, "%-18s %9.0f %9.0f %9.0f %12.0f  %s\n", k->name, med, p10, p90,
			med - floor_med, k->desc);
		printf(
		    "%s  {\"name\": \"%s\", \"desc\": \"%s\", \"calls\": %zu, \"median_ns\": %.1f, "
		    "\"p10_ns\": %.1f, \"p90_ns\": %.1f, \"minus_floor_ns\": %.1f, "
		    "\"ratio_to_floor\": %.3f}",
		    sep, k->name, k->desc, k->ndur, med, p10, p90, med - floor_med,
		    floor_med > 0 ? med / floor_med : 0);
		sep = ",\n";
	}
	printf("\n]}\n");
	return 0;
}
