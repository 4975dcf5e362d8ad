// SPDX-License-Identifier: GPL-2.0-only
/*
 * Golden tests of the plan (core/lb/plan.h): a desired state computed from a
 * configuration, an actual state (the previous desired state, possibly edited
 * to play drift), and the exact operations plan_diff() orders between them,
 * compared as plan_render() prints them.  No maps are touched: no root needed.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>

#include "lb/plan.h"
#include "lb/services_model.h"
#include "svc_fixture.h"

#define NODE                                                                                       \
	"[daemon]\n"                                                                               \
	"devices = lo\n"                                                                           \
	"[lb]\n"                                                                                   \
	"maglev_table_size = 251\n"                                                                \
	"[node]\n"                                                                                 \
	"name = node1\n"                                                                           \
	"address = 10.0.0.11\n"                                                                    \
	"[cluster-node node2]\n"                                                                   \
	"address = 10.0.0.12\n"

#define WEB                                                                                        \
	"[service web]\n"                                                                          \
	"type = nodeport\n"                                                                        \
	"port = http tcp 80 nodeport=30080 target=8080\n"                                          \
	"backend = 10.244.1.5 node=node1\n"                                                        \
	"backend = 10.244.2.7 node=node2\n"

#define SHOP                                                                                       \
	"[service shop]\n"                                                                         \
	"type = loadbalancer\n"                                                                    \
	"algorithm = maglev\n"                                                                     \
	"port = https tcp 443 target=8443\n"                                                       \
	"lb_ips = 203.0.113.10\n"                                                                  \
	"backend = 10.244.1.6 node=node1\n"                                                        \
	"backend = 10.244.2.8 node=node2\n"

static uint32_t ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* Ids and overrides carried from one computation to the next, as the daemon does. */
struct world {
	struct svc_model m; /* of cur; nsvcs 0 before the first step */
	bool have_m;
	bool whole; /* overrides or cur edited: only the whole computation applies */
	struct dstate cur;
	uint32_t next_be_id, next_svc_id;
	struct svc_ovr ovr[4];
	size_t novr;
	struct bpflb_services_summary sum;
};

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->next_be_id = w->next_svc_id = 1;
}

static void world_free(struct world *w)
{
	dstate_free(&w->cur);
	if (w->have_m)
		svc_model_free(&w->m);
}

/*
 * The change from w->m to m computed for the changed services alone
 * (svc_compute_change(), what a reload or `service set` does) must plan
 * exactly what the whole computation planned (full), and w->cur with the
 * change merged must be the whole desired state D.
 */
static void check_change(struct world *w, const struct svc_model *m, const char *full,
			 const struct dstate *Dfull)
{
	struct svc_input in = {.cur = &w->cur,
			       .ovr = w->ovr,
			       .novr = w->novr,
			       .next_be_id = w->next_be_id,
			       .next_svc_id = w->next_svc_id};
	struct bpflb_err err = {{0}};
	struct svc_change *ch = calloc(m->nsvcs + w->m.nsvcs + 1, sizeof(*ch));
	struct svc_stidx ix = {0};
	struct dstate D, C, merged = {0};
	size_t nch = 0, len = 0;
	struct plan p;
	char *buf = NULL;
	FILE *out;

	for (unsigned int i = 0; i < m->nsvcs; i++) {
		const struct svc_def *od = svc_model_find(&w->m, m->svcs[i]->name);

		if (!od || !svc_def_same(od, m->svcs[i]))
			ch[nch++] = (struct svc_change){od, m->svcs[i]};
	}
	for (unsigned int i = 0; i < w->m.nsvcs; i++)
		if (!svc_model_find(m, w->m.svcs[i]->name))
			ch[nch++] = (struct svc_change){w->m.svcs[i], NULL};
	ck_assert_int_eq(svc_stidx_build(&ix, &w->m, &w->cur), 0);
	ck_assert_msg(!svc_compute_change(m, ch, nch, &in, &ix, &D, &C, &err), "%s", err.msg);
	ck_assert_int_eq(plan_diff(&D, &C, &p), 0);
	out = open_memstream(&buf, &len);
	plan_render(&p, out);
	fclose(out);
	ck_assert_msg(!strcmp(buf, full), "change plan:\n%s\nwhole plan:\n%s", buf, full);
	svc_stidx_commit(&ix, &D, &C);
	plan_free(&p);
	free(buf);
	/* merged into a copy of cur: the whole desired state */
	merged.fe = malloc((w->cur.nfe + 1) * sizeof(*merged.fe));
	merged.be = malloc((w->cur.nbe + 1) * sizeof(*merged.be));
	merged.sp = calloc(w->cur.nsp + 1, sizeof(*merged.sp));
	memcpy(merged.fe, w->cur.fe, w->cur.nfe * sizeof(*merged.fe));
	memcpy(merged.be, w->cur.be, w->cur.nbe * sizeof(*merged.be));
	merged.nfe = w->cur.nfe;
	merged.nbe = w->cur.nbe;
	for (size_t i = 0; i < w->cur.nsp; i++) {
		merged.sp[i] = w->cur.sp[i];
		merged.sp[i].key = w->cur.sp[i].key ? strdup(w->cur.sp[i].key) : NULL;
		merged.sp[i].slots = malloc((w->cur.sp[i].nslots + 1) * sizeof(uint32_t));
		memcpy(merged.sp[i].slots, w->cur.sp[i].slots,
		       w->cur.sp[i].nslots * sizeof(uint32_t));
		merged.sp[i].mg = NULL;
		merged.sp[i].nmg = 0;
	}
	merged.nsp = w->cur.nsp;
	merged.nservices = w->cur.nservices;
	merged.node = w->cur.node;
	merged.has_node = w->cur.has_node;
	/* C's entries must be those of merged (a view into it) */
	for (size_t i = 0; i < C.nsp; i++)
		C.sp[i] = *dstate_sp(&merged, C.sp[i].id);
	ck_assert_int_eq(dstate_merge(&merged, &D, &C), 0);
	ck_assert_uint_eq(merged.nfe, Dfull->nfe);
	ck_assert_uint_eq(merged.nbe, Dfull->nbe);
	ck_assert_uint_eq(merged.nsp, Dfull->nsp);
	ck_assert_uint_eq(merged.nservices, Dfull->nservices);
	ck_assert_int_eq(plan_diff(Dfull, &merged, &p), 0);
	ck_assert_uint_eq(p.n, 0);
	plan_free(&p);
	dstate_free(&merged);
	svc_stidx_free(&ix);
	free(ch);
}

/*
 * Desired state of text against w->cur, its plan rendered into a string
 * (malloc'ed); w->cur becomes the desired state, as after a commit.
 */
static char *step(struct world *w, const char *text)
{
	struct bpflb_err err = {{0}};
	struct bpflb_config *cfg = fx_config(text, &err);
	struct svc_input in = {.cur = &w->cur,
			       .ovr = w->ovr,
			       .novr = w->novr,
			       .next_be_id = w->next_be_id,
			       .next_svc_id = w->next_svc_id};
	struct svc_model m;
	struct dstate D;
	struct plan p;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	ck_assert_msg(cfg, "%s", err.msg);
	ck_assert_msg(!svc_model_build(cfg, &m, &err), "%s", err.msg);
	ck_assert_msg(!svc_compute(&m, &in, &D, &err), "%s", err.msg);
	ck_assert_int_eq(plan_diff(&D, &w->cur, &p), 0);
	out = open_memstream(&buf, &len);
	plan_render(&p, out);
	fclose(out);
	plan_summarize(&p, &D, &w->cur, &w->sum);
	plan_free(&p);
	if (w->have_m && !w->whole && svc_model_same_base(&w->m, &m))
		check_change(w, &m, buf, &D);
	dstate_free(&w->cur);
	w->cur = D;
	w->next_be_id = in.next_be_id;
	w->next_svc_id = in.next_svc_id;
	if (w->have_m)
		svc_model_free(&w->m);
	w->m = m;
	w->have_m = true;
	bpflb_config_free(cfg);
	return buf;
}

#define ck_plan(w, text, expected)                                                                 \
	do {                                                                                       \
		char *got_ = step(w, text);                                                        \
		ck_assert_msg(!strcmp(got_, expected), "plan:\n%s\nexpected:\n%s", got_,           \
			      expected);                                                           \
		free(got_);                                                                        \
	} while (0)

#define NODE_LINE "node update addr=10.0.0.11 snat=32768-65535 seed=2654435769 flags=0 events=1000 m=251\n"

/* Empty maps: node first, then backends, slots and tables, then frontends. */
START_TEST(first_apply_order)
{
	struct world w;

	world_init(&w);
	ck_plan(&w, NODE WEB SHOP,
		NODE_LINE
		"backend update 1 10.244.1.5:8080 active flags=0x1 node=10.0.0.11\n"
		"backend update 2 10.244.1.6:8443 active flags=0x1 node=10.0.0.11\n"
		"backend update 3 10.244.2.7:8080 active flags=0 node=10.0.0.12\n"
		"backend update 4 10.244.2.8:8443 active flags=0 node=10.0.0.12\n"
		"slot update 1/0 backend=1\n"
		"slot update 1/1 backend=3\n"
		"maglev update 2 backends=2,4\n"
		"slot update 2/0 backend=2\n"
		"slot update 2/1 backend=4\n"
		"svc update 10.0.0.11:30080/tcp id=1 count=2 total=2 flags=0\n"
		"svc update 203.0.113.10:443/tcp id=2 count=2 total=2 flags=0x4\n");
	ck_assert_uint_eq(w.sum.svc_added, 2);
	ck_assert_uint_eq(w.sum.be_added, 4);
	ck_assert_uint_eq(w.sum.fe_added, 2);
	ck_assert_uint_eq(w.sum.per_map[BPFLB_LBMAP_SLOTS], 4);
	/* the same configuration again: nothing to write */
	ck_plan(&w, NODE WEB SHOP, "");
	ck_assert_uint_eq(w.sum.svc_added + w.sum.svc_changed + w.sum.svc_removed, 0);
	world_free(&w);
}
END_TEST

/*
 * A service goes, one comes, one changes its backends: departing frontends
 * first, the departed service port's slots, table and counters next, new
 * backends before the slots and frontends that use them, the removed
 * backends last.
 */
START_TEST(add_remove_change_order)
{
	struct world w;
	char *p;

	world_init(&w);
	free(step(&w, NODE WEB SHOP));
	ck_plan(&w,
		NODE
		"[service web]\n"
		"type = nodeport\n"
		"port = http tcp 80 nodeport=30080 target=8080\n"
		"backend = 10.244.1.5 node=node1\n"
		"backend = 10.244.2.9 node=node2\n"
		"[service api]\n"
		"type = externalip\n"
		"port = grpc tcp 9000\n"
		"external_ips = 198.51.100.7\n"
		"backend = 10.244.1.5:9000 node=node1\n",
		"svc delete 203.0.113.10:443/tcp\n"
		"slot delete 2/0\n"
		"slot delete 2/1\n"
		"maglev delete 2\n"
		"stats reset 2\n"
		"backend update 5 10.244.1.5:9000 active flags=0x1 node=10.0.0.11\n"
		"backend update 6 10.244.2.9:8080 active flags=0 node=10.0.0.12\n"
		"slot update 1/1 backend=6\n"
		"slot update 3/0 backend=5\n"
		"svc update 198.51.100.7:9000/tcp id=3 count=1 total=1 flags=0\n"
		"backend delete 2\n"
		"backend delete 3\n"
		"backend delete 4\n");
	ck_assert_uint_eq(w.sum.svc_added, 1);
	ck_assert_uint_eq(w.sum.svc_removed, 1);
	ck_assert_uint_eq(w.sum.svc_changed, 1);
	ck_assert_uint_eq(w.sum.be_added, 2);
	ck_assert_uint_eq(w.sum.be_removed, 3);
	ck_assert_uint_eq(w.sum.fe_added, 1);
	ck_assert_uint_eq(w.sum.fe_removed, 1);
	ck_assert_uint_eq(w.sum.fe_changed, 0);
	/* a removed service's name comes back: a new id, the old one is not reused */
	p = step(&w, NODE WEB SHOP);
	ck_assert_ptr_nonnull(strstr(p, "maglev update 4 "));
	free(p);
	world_free(&w);
}
END_TEST

/*
 * Maglev: a backend leaving "active" gets a new table and a shorter slot list
 * before its own entry says so; the frontend's count shrinks before the slot
 * it no longer counts goes.
 */
START_TEST(maglev_demote_order)
{
	struct world w;

	world_init(&w);
	free(step(&w, NODE SHOP));
	ck_plan(&w,
		NODE "[service shop]\n"
		     "type = loadbalancer\n"
		     "algorithm = maglev\n"
		     "port = https tcp 443 target=8443\n"
		     "lb_ips = 203.0.113.10\n"
		     "backend = 10.244.1.6 node=node1 state=terminating\n"
		     "backend = 10.244.2.8 node=node2\n",
		"maglev update 1 backends=2\n"
		"slot update 1/0 backend=2\n"
		"svc update 203.0.113.10:443/tcp id=1 count=1 total=2 flags=0x4\n"
		"slot delete 1/1\n"
		"backend update 1 10.244.1.6:8443 terminating flags=0x1 node=10.0.0.11\n");
	ck_assert_uint_eq(w.sum.svc_changed, 1);
	ck_assert_uint_eq(w.sum.be_changed, 1);
	ck_assert_uint_eq(w.sum.fe_changed, 1);
	/* the last active backend goes: no table, the service answers with none */
	ck_plan(&w,
		NODE "[service shop]\n"
		     "type = loadbalancer\n"
		     "algorithm = maglev\n"
		     "port = https tcp 443 target=8443\n"
		     "lb_ips = 203.0.113.10\n"
		     "backend = 10.244.1.6 node=node1 state=terminating\n"
		     "backend = 10.244.2.8 node=node2 state=maintenance\n",
		"svc update 203.0.113.10:443/tcp id=1 count=0 total=2 flags=0\n"
		"slot delete 1/0\n"
		"maglev delete 1\n"
		"backend update 2 10.244.2.8:8443 maintenance flags=0 node=10.0.0.12\n");
	world_free(&w);
}
END_TEST

/* A backend state override (every port of the address) re-plans like a configured state. */
START_TEST(override_plans_like_state)
{
	struct world w;

	world_init(&w);
	free(step(&w, NODE WEB));
	w.whole = true;
	w.ovr[w.novr++] = (struct svc_ovr){ip("10.244.1.5"), 0, BPFLB_BE_MAINTENANCE};
	ck_plan(&w, NODE WEB,
		"slot update 1/0 backend=2\n"
		"svc update 10.0.0.11:30080/tcp id=1 count=1 total=2 flags=0\n"
		"slot delete 1/1\n"
		"backend update 1 10.244.1.5:8080 maintenance flags=0x1 node=10.0.0.11\n");
	/* back to active: the backend first, then the slots, then the count */
	w.novr = 0;
	ck_plan(&w, NODE WEB,
		"backend update 1 10.244.1.5:8080 active flags=0x1 node=10.0.0.11\n"
		"slot update 1/0 backend=1\n"
		"slot update 1/1 backend=2\n"
		"svc update 10.0.0.11:30080/tcp id=1 count=2 total=2 flags=0\n");
	world_free(&w);
}
END_TEST

/* Drift: what someone else deleted or changed in the maps is written again, nothing more. */
START_TEST(drift_repaired)
{
	struct world w;
	struct dfe *fe;
	struct dbe *be;

	world_init(&w);
	free(step(&w, NODE WEB SHOP));
	/* the NodePort's frontend deleted behind the daemon's back */
	w.whole = true;
	fe = dstate_fe(&w.cur, &(struct bpflb_svc_key){ip("10.0.0.11"), htons(30080), IPPROTO_TCP});
	ck_assert_ptr_nonnull(fe);
	memmove(fe, fe + 1, (w.cur.nfe - (size_t)(fe - w.cur.fe) - 1) * sizeof(*fe));
	w.cur.nfe--;
	/* a backend corrupted, a slot emptied, a Maglev table of unknown content */
	be = dstate_be(&w.cur, 3);
	be->val.node_addr = ip("10.9.9.9");
	dstate_sp(&w.cur, 1)->slots[1] = 0;
	dstate_sp(&w.cur, 2)->sig_known = false;
	ck_plan(&w, NODE WEB SHOP,
		"backend update 3 10.244.2.7:8080 active flags=0 node=10.0.0.12\n"
		"slot update 1/1 backend=3\n"
		"maglev update 2 backends=2,4 keep-same\n"
		"svc update 10.0.0.11:30080/tcp id=1 count=2 total=2 flags=0\n");
	ck_assert_uint_eq(w.sum.per_map[BPFLB_LBMAP_SVC], 1);
	ck_assert_uint_eq(w.sum.per_map[BPFLB_LBMAP_BACKENDS], 1);
	ck_assert_uint_eq(w.sum.per_map[BPFLB_LBMAP_SLOTS], 1);
	ck_assert_uint_eq(w.sum.per_map[BPFLB_LBMAP_MAGLEV], 1);
	world_free(&w);
}
END_TEST

/*
 * n nodeport services; every backend moved by shift (a change of every
 * service), or only service only's when only < n; service skip left out.
 */
static char *many_some(unsigned int n, unsigned int shift, unsigned int skip, unsigned int only)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	fputs(NODE, out);
	for (unsigned int i = 0; i < n; i++) {
		if (i == skip)
			continue;
		fprintf(out,
			"[service s%u]\ntype = nodeport\nport = p tcp 80 nodeport=%u\n"
			"backend = 10.244.%u.%u node=node%u\n"
			"backend = 10.244.9.9 node=node1\n",
			i, 30000 + i, 1 + i / 200,
			1 + (i + (only >= n || only == i ? shift : 0)) % 200, 1 + i % 2);
	}
	fclose(out);
	return buf;
}

static char *many(unsigned int n, unsigned int shift, unsigned int skip)
{
	return many_some(n, shift, skip, n);
}

/*
 * A change of many services (past MERGE_SMALL entries: merged in one pass)
 * and of one service among many (merged in place): each plans what the whole
 * computation plans, and the merged state is the whole desired state.  A
 * backend (10.244.9.9) that every service shares stays while any uses it.
 */
START_TEST(change_plans_like_whole)
{
	char *a = many(60, 0, 100), *b = many(60, 7, 100), *c = many(60, 7, 30);
	struct world w;
	char *p;

	world_init(&w);
	free(step(&w, a));
	free(step(&w, b)); /* every service changed */
	p = step(&w, c);   /* one service removed */
	ck_assert_ptr_nonnull(strstr(p, "svc delete 10.0.0.11:30030/tcp"));
	ck_assert_ptr_null(strstr(p, "backend delete 1\n"));
	free(p);
	free(step(&w, b)); /* and back */
	world_free(&w);
	free(a);
	free(b);
	free(c);
}
END_TEST

/* One service of 60 changes its backend: the plan is that service's operations, no more. */
START_TEST(one_change_of_many)
{
	char *a = many(60, 0, 100), *b = many_some(60, 150, 100, 17);
	struct world w;

	world_init(&w);
	free(step(&w, a));
	/* s17 (id 18) on node2: 10.244.1.18 -> 10.244.1.168 (a new backend, id 62) */
	ck_plan(&w, b,
		"backend update 62 10.244.1.168:80 active flags=0 node=10.0.0.12\n"
		"slot update 18/0 backend=62\n"
		"backend delete 18\n");
	ck_assert_uint_eq(w.sum.svc_changed, 1);
	ck_assert_uint_eq(w.sum.be_added, 1);
	ck_assert_uint_eq(w.sum.be_removed, 1);
	world_free(&w);
	free(a);
	free(b);
}
END_TEST

START_TEST(summary_line)
{
	struct bpflb_services_summary s = {
	    .svc_added = 2, .svc_removed = 1, .svc_changed = 3, .be_added = 4, .be_changed = 1,
	    .fe_added = 2, .fe_removed = 1, .map_writes = 17};
	char line[256];

	bpflb_services_summary_str(&s, line, sizeof(line));
	ck_assert_str_eq(line, "+2 -1 ~3 services, +4 -0 ~1 backends, +2 -1 ~0 frontends (17 map "
			       "writes)");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plan");
	TCase *tc = tcase_create("golden");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, first_apply_order);
	tcase_add_test(tc, add_remove_change_order);
	tcase_add_test(tc, maglev_demote_order);
	tcase_add_test(tc, override_plans_like_state);
	tcase_add_test(tc, drift_repaired);
	tcase_add_test(tc, summary_line);
	tcase_add_test(tc, change_plans_like_whole);
	tcase_add_test(tc, one_change_of_many);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
