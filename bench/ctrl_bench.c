// SPDX-License-Identifier: GPL-2.0-only
/*
 * ctrl_bench: the control plane's cost, through the core's own functions (the
 * ones bpflbd runs on start and on SIGHUP), on a real pinned map set:
 *
 *   ctrl_bench services --config FILE [--changed FILE2] [--changed-1pct FILE3]
 *                       [--pin DIR] [--rounds R]
 *       FILE holds [node] and N [service] sections; FILE2 the same with one
 *       service changed, FILE3 with every 100th.  Creates the pinned maps under
 *       DIR (as the daemon's pipeline does), then times
 *         load     bpflb_config_load (parse + schema checks)
 *         validate bpflb_services_prepare (parses and checks each service once)
 *         apply    bpflb_services_apply_prepared into empty maps (the first start)
 *         reload   load + validate + apply of the same file (nothing changes);
 *                  reload_whole the same computed whole
 *         change   load + validate + apply of FILE2 (one service differs),
 *                  then back to FILE
 *         change_1pct  the same with FILE3
 *         change_whole, change_1pct_whole  the same changes with every
 *                  change computed whole (the way before services_change.c)
 *         runtime  bpflb_services_svc_set of one service (what `bpflbctl
 *                  service set` does), alternating between two endpoints;
 *                  runtime_set_whole the same computed whole; the first set
 *                  (builds the model's indexes) and one after a reload apart
 *       and the heap in use (mallinfo2) and the RSS after each step, with the
 *       configuration freed after each apply (bpflbd releases its [service]
 *       text) and after malloc_trim(0).  Times are the median of R rounds,
 *       parse (load), validate and apply apart.
 *
 *   ctrl_bench maglev [--backends N[,N..]] [--m M] [--rounds R]
 *       bpflb_maglev_build for N backends and table size M (default 16381),
 *       median of R builds.
 *
 *   ctrl_bench listen --socket CTL --metrics ADDR:PORT --ct PIN [--scrapers N]
 *                     [--status S] [--reloads R]
 *       Against a running bpflbd (bench/listen_bench.sh): fills its bpflb_ct
 *       (pinned at PIN) to capacity, then times S `status` and R `reload`
 *       requests on the control socket while N clients load the daemon, in
 *       one run: first N clients whose every request walks the map on the
 *       loop (ct.list, what status and /metrics did before the counts were
 *       taken off the loop), then N scrapers of /metrics.
 *
 * Prints one JSON object on stdout; progress on stderr.  Needs root for the
 * services part (BPF maps under bpffs).  The pin directory is removed at exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "config/config_internal.h"
#include "log.h"
#include "lb/maglev.h"
#include "pipeline.h"
#include "lb/services.h"
#include "lb/services_model.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Bytes of heap in use, and the resident set, in MiB. */
static double heap_mb(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (mi.uordblks + mi.hblkhd) / 1048576.0;
}

static double rss_mb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static const struct bpflb_cfg_schema schemas[] = {
    {"bpflbd", bpflb_core_sections},
    {"bpflbd", bpflb_services_sections},
};

static int load(const char *path, struct bpflb_config **cfg, double *ms)
{
	struct bpflb_err err = {{0}};
	double t = now_ms();
	int ret = bpflb_config_load(path, schemas, 2, 0, cfg, &err);

	*ms = now_ms() - t;
	if (ret)
		fprintf(stderr, "ctrl_bench: %s\n", err.msg);
	return ret;
}

/* Parse and check every service once; the result is what apply() applies. */
static int validate(const struct bpflb_config *cfg, struct bpflb_services_prepared **p, double *ms)
{
	struct bpflb_err err = {{0}};
	double t = now_ms();
	int ret = bpflb_services_prepare(cfg, p, &err);

	*ms = now_ms() - t;
	if (ret)
		fprintf(stderr, "ctrl_bench: validate: %s\n", err.msg);
	return ret;
}

static int apply(struct bpflb_services *s, struct bpflb_services_prepared *p, double *ms)
{
	struct bpflb_err err = {{0}};
	double t = now_ms();
	int ret = bpflb_services_apply_prepared(s, p, &err);

	*ms = now_ms() - t;
	if (ret)
		fprintf(stderr, "ctrl_bench: apply: %s\n", err.msg);
	return ret;
}

/* One reload's cost, as bpflbd pays it: parse the file, check it, apply the difference. */
struct cost {
	double parse, validate, apply, total;
	uint64_t writes;
};

/*
 * A reload as bpflbd does it: the whole new file, checked, then the
 * difference.  The configuration is freed right after: bpflbd keeps no
 * [service] text once the model is built (bpflb_cfg_release()).
 */
static int reload(struct bpflb_services *s, const char *path, struct cost *c)
{
	struct bpflb_services_prepared *p = NULL;
	struct bpflb_services_counts cnt;
	struct bpflb_config *next;
	int ret;

	ret = load(path, &next, &c->parse);
	if (!ret)
		ret = validate(next, &p, &c->validate);
	bpflb_config_free(next);
	if (!ret)
		ret = apply(s, p, &c->apply);
	if (ret)
		return ret;
	c->total = c->parse + c->validate + c->apply;
	bpflb_services_counts(s, &cnt);
	c->writes = cnt.map_writes;
	return 0;
}

/* `service set` at runtime, as the control socket does it: [service NAME] alone. */
static int runtime_set(struct bpflb_services *s, const char *name, int variant, double *ms)
{
	static const struct bpflb_cfg_schema schema = {"bench", bpflb_services_sections};
	struct bpflb_err err = {{0}};
	struct bpflb_config *cfg = NULL;
	char text[512];
	FILE *fp;
	double t;
	int ret;

	snprintf(text, sizeof(text),
		 "[service %s]\ntype = loadbalancer\nport = http tcp 80 target=8080\n"
		 "lb_ips = 198.18.0.1\nbackend = 198.18.1.%d node=node1\n",
		 name, variant + 1);
	t = now_ms();
	fp = fmemopen(text, strlen(text), "r");
	if (!fp)
		return -ENOMEM;
	ret = bpflb_config_load_fp(fp, "service-set", &schema, 1, 0, &cfg, &err);
	fclose(fp);
	if (!ret)
		ret = bpflb_services_svc_set(s, bpflb_cfg_find(cfg, "service", name), &err);
	*ms = now_ms() - t;
	bpflb_config_free(cfg);
	if (ret)
		fprintf(stderr, "ctrl_bench: service set: %s\n", err.msg);
	return ret;
}

static char pin_dir[PATH_MAX];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_pins(void)
{
	if (pin_dir[0])
		nftw(pin_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	pin_dir[0] = 0;
}

/* Medians of R reloads of one kind. */
struct costs {
	double *parse, *validate, *apply, *total;
	uint64_t writes;
};

static int costs_init(struct costs *c, int rounds)
{
	c->parse = calloc(rounds, sizeof(double));
	c->validate = calloc(rounds, sizeof(double));
	c->apply = calloc(rounds, sizeof(double));
	c->total = calloc(rounds, sizeof(double));
	return c->parse && c->validate && c->apply && c->total ? 0 : -ENOMEM;
}

static void costs_put(struct costs *c, int r, const struct cost *one)
{
	c->parse[r] = one->parse;
	c->validate[r] = one->validate;
	c->apply[r] = one->apply;
	c->total[r] = one->total;
	c->writes = one->writes;
}

static void costs_print(const char *name, struct costs *c, int rounds)
{
	printf(" \"%s_ms\": %.3f, \"%s_parse_ms\": %.3f, \"%s_validate_ms\": %.3f, "
	       "\"%s_apply_ms\": %.3f, \"%s_map_writes\": %llu,\n",
	       name, median(c->total, rounds), name, median(c->parse, rounds), name,
	       median(c->validate, rounds), name, median(c->apply, rounds), name,
	       (unsigned long long)c->writes);
}

static void costs_free(struct costs *c)
{
	free(c->parse), free(c->validate), free(c->apply), free(c->total);
}

/* RSS after malloc_trim(0), and how long the trim took (what bpflbd does after a reload). */
static double rss_trimmed(double *trim_ms)
{
	double t = now_ms();

	malloc_trim(0);
	if (trim_ms)
		*trim_ms = now_ms() - t;
	return rss_mb();
}

/*
 * Reloads of path (nothing changed), changed (one service) and changed1 (1%),
 * each back to path, R rounds; the changes also with every change computed
 * whole (svc_services_force_whole(): the way before services_change.c), side
 * by side.  Then `service set` both ways.
 */
static int run_services(const char *path, const char *changed, const char *changed1,
			const char *pin_base, int rounds)
{
	struct bpflb_services_prepared *prep = NULL;
	double t_load, t_val, t_apply, h0, h_cfg, h_applied, h_model, trim_ms = 0;
	double rss_cfg, rss_loaded, rss_reloaded, rss_untrimmed, rs_after;
	double *rs = calloc(rounds, sizeof(double)), *rsw = calloc(rounds, sizeof(double));
	struct costs same, samew, ch, chw, c1, c1w;
	char rt_name[32];
	uint64_t first_writes;
	struct bpflb_services_counts cnt;
	struct bpflb_config *cfg = NULL;
	struct bpflb_services *s = NULL;
	struct bpflb_err err = {{0}};
	struct pipeline pl = {0};
	struct bpflb_map_sizes sizes;
	struct cost one, back;
	int ret;

	if (!rs || !rsw || costs_init(&same, rounds) || costs_init(&samew, rounds) ||
	    costs_init(&ch, rounds) || costs_init(&chw, rounds) || costs_init(&c1, rounds) ||
	    costs_init(&c1w, rounds))
		return 1;
	snprintf(pin_dir, sizeof(pin_dir), "%s/ctrl-bench-XXXXXX", pin_base);
	if (!mkdtemp(pin_dir)) {
		fprintf(stderr, "ctrl_bench: mkdtemp %s: %s\n", pin_dir, strerror(errno));
		pin_dir[0] = 0;
		return 1;
	}
	atexit(rm_pins);

	h0 = heap_mb();
	ret = load(path, &cfg, &t_load);
	if (ret)
		return 1;
	h_cfg = heap_mb();
	if (validate(cfg, &prep, &t_val))
		return 1;

	pl.stages_fd = pl.schema_fd = pl.pins_fd = -1;
	bpflb_services_map_sizes(cfg, &sizes);
	ret = pipeline_open(&pl, pin_dir, 0x1b1b0000, 1,
			    bpflb_cfg_u32(bpflb_cfg_section(cfg, "lb", 0), "maglev_table_size"),
			    &sizes, &err);
	if (!ret)
		ret = bpflb_services_open(pin_dir, NULL, &s, &err);
	if (ret) {
		fprintf(stderr, "ctrl_bench: maps: %s\n", err.msg);
		return 1;
	}
	if (apply(s, prep, &t_apply))
		return 1;
	rss_cfg = rss_mb();
	h_applied = heap_mb();
	/* bpflbd keeps no [service] text once applied (bpflb_cfg_release()) */
	bpflb_config_free(cfg);
	cfg = NULL;
	h_model = heap_mb();
	rss_loaded = rss_trimmed(NULL);
	bpflb_services_counts(s, &cnt);
	first_writes = cnt.map_writes;
	fprintf(stderr, "ctrl_bench: %u services: load %.1f ms, validate %.1f ms, apply %.1f ms\n",
		cnt.services, t_load, t_val, t_apply);

	for (int r = 0; r < rounds; r++) {
		if (reload(s, path, &one))
			return 1;
		costs_put(&same, r, &one);
		for (int whole = 0; whole < 2; whole++) {
			svc_services_force_whole(s, whole);
			if (whole) {
				if (reload(s, path, &one))
					return 1;
				costs_put(&samew, r, &one);
			}
			if (changed) {
				if (reload(s, changed, &one) || reload(s, path, &back))
					return 1;
				costs_put(whole ? &chw : &ch, r, &one);
			}
			if (changed1) {
				if (reload(s, changed1, &one) || reload(s, path, &back))
					return 1;
				costs_put(whole ? &c1w : &c1, r, &one);
			}
		}
		svc_services_force_whole(s, false);
	}
	rss_untrimmed = rss_mb();
	rss_reloaded = rss_trimmed(&trim_ms);
	/* A filler in the middle: every service but the target is named sN. */
	snprintf(rt_name, sizeof(rt_name), "s%u", cnt.services > 2 ? cnt.services / 2 : 1);
	for (int r = 0; r < rounds && cnt.services > 1; r++) {
		svc_services_force_whole(s, false);
		if (runtime_set(s, rt_name, r % 2, &rs[r]))
			return 1;
		svc_services_force_whole(s, true);
		if (runtime_set(s, rt_name, (r + 1) % 2, &rsw[r]))
			return 1;
	}
	svc_services_force_whole(s, false);
	/* a reload now patches the model in place: the next set finds its indexes built */
	rs_after = -1;
	if (cnt.services > 1 && changed && !reload(s, changed, &one) && !reload(s, path, &back) &&
	    runtime_set(s, rt_name, 0, &rs_after))
		return 1;

	printf("{\"services\": %u, \"frontends\": %u, \"backends\": %u, \"slots\": %u,\n"
	       " \"load_ms\": %.3f, \"validate_ms\": %.3f, \"apply_ms\": %.3f, \"first_total_ms\": "
	       "%.3f,\n"
	       " \"first_map_writes\": %llu,\n",
	       cnt.services, cnt.frontends, cnt.backends, cnt.slots, t_load, t_val, t_apply,
	       t_load + t_val + t_apply, (unsigned long long)first_writes);
	costs_print("reload", &same, rounds);
	costs_print("reload_whole", &samew, rounds);
	if (changed) {
		costs_print("change", &ch, rounds);
		costs_print("change_whole", &chw, rounds);
	}
	if (changed1) {
		costs_print("change_1pct", &c1, rounds);
		costs_print("change_1pct_whole", &c1w, rounds);
	}
	if (cnt.services > 1)
		/* the first set builds the model's indexes (svc_model_check_set()) */
		printf(" \"runtime_set_ms\": %.3f, \"runtime_set_first_ms\": %.3f, "
		       "\"runtime_set_after_reload_ms\": %.3f, \"runtime_set_whole_ms\": %.3f,\n",
		       rounds > 1 ? median(rs + 1, rounds - 1) : rs[0], rs[0], rs_after,
		       median(rsw, rounds));
	/*
	 * The process: model and map state, the configuration freed (as bpflbd
	 * releases its [service] text), after malloc_trim(0), which bpflbd runs
	 * after a reload; with the configuration still held, and untrimmed, beside.
	 */
	printf(" \"rss_mb_loaded\": %.2f, \"rss_mb_after_reloads\": %.2f,\n"
	       " \"rss_mb_loaded_with_config\": %.2f, \"rss_mb_after_reloads_untrimmed\": %.2f,"
	       " \"malloc_trim_ms\": %.3f,\n",
	       rss_loaded, rss_reloaded, rss_cfg, rss_untrimmed, trim_ms);
	printf(" \"heap_mb\": {\"start\": %.2f, \"config\": %.2f, \"applied\": %.2f, "
	       "\"model_and_state\": %.2f, \"after_reloads\": %.2f},\n"
	       " \"rss_mb\": %.2f, \"rss_mb_after_malloc_trim\": %.2f, \"rounds\": %d}\n",
	       h0, h_cfg, h_applied, h_model, heap_mb(), rss_mb(), rss_trimmed(NULL), rounds);

	bpflb_services_close(s);
	pipeline_close(&pl);
	costs_free(&same), costs_free(&samew), costs_free(&ch), costs_free(&chw), costs_free(&c1),
	    costs_free(&c1w);
	free(rs), free(rsw);
	return 0;
}

static int run_maglev(const char *list, uint32_t m, int rounds)
{
	char *dup = strdup(list), *save = NULL, *tok;
	const char *sep = "";
	double *t = calloc(rounds, sizeof(double));
	uint32_t *table = calloc(m, sizeof(uint32_t));

	printf("{\"m\": %u, \"rounds\": %d, \"builds\": [", m, rounds);
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t n = strtoul(tok, NULL, 10);
		struct bpflb_maglev_backend *be = calloc(n, sizeof(*be));

		for (size_t i = 0; i < n; i++) {
			be[i].id = i + 1;
			be[i].addr = htobe32(0x0af40000u + (uint32_t)i + 2); /* 10.244.x.y */
			be[i].port = 8080;
		}
		for (int r = 0; r < rounds; r++) {
			double t0 = now_ms();

			if (bpflb_maglev_build(be, n, m, 0x9e3779b9u + r, table)) {
				fprintf(stderr, "ctrl_bench: maglev build of %zu failed\n", n);
				return 1;
			}
			t[r] = now_ms() - t0;
		}
		printf("%s{\"backends\": %zu, \"ms\": %.4f}", sep, n, median(t, rounds));
		fprintf(stderr, "ctrl_bench: maglev %zu backends, M=%u: %.3f ms\n", n, m,
			median(t, rounds));
		sep = ", ";
		free(be);
	}
	printf("]}\n");
	free(dup), free(t), free(table);
	return 0;
}

/* --- listen: control and reload latency under scrapers, full conntrack ------------ */

struct scraper {
	pthread_t th;
	const char *how; /* "metrics": GET /metrics; "walk": ct.list on the control socket */
	uint64_t done, failed;
};

static volatile int scrapers_stop;
static struct sockaddr_in mx_addr;
static char ctl_path[108];

static int ctl_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctl_path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request line, its whole answer line; 0 on "ok": true. */
static int ctl_roundtrip(int fd, const char *req)
{
	static __thread char buf[1 << 16];
	size_t len = strlen(req);
	bool ok = false;
	ssize_t n;

	if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -1;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		if (!ok && memmem(buf, (size_t)n, "\"ok\":true", 9))
			ok = true;
		if (buf[n - 1] == '\n')
			return ok ? 0 : -1;
	}
	return -1;
}

static int scrape_once(void)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n";
	char buf[1 << 16];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = -1;
	ssize_t n;

	if (fd < 0)
		return -1;
	if (!connect(fd, (struct sockaddr *)&mx_addr, sizeof(mx_addr)) &&
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == sizeof(req) - 1) {
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			ret = 0;
	}
	close(fd);
	return ret;
}

static void *scraper_run(void *arg)
{
	struct scraper *s = arg;
	int fd = -1;

	while (!scrapers_stop) {
		int ret;

		if (!strcmp(s->how, "metrics")) {
			ret = scrape_once();
		} else {
			/* what `status` and every scrape cost before: a walk of bpflb_ct on the
			 * loop */
			if (fd < 0)
				fd = ctl_connect();
			ret = fd < 0 ? -1
				     : ctl_roundtrip(
					   fd, "{\"cmd\":\"ct.list\",\"args\":{\"limit\":1}}\n");
			if (ret && fd >= 0) {
				close(fd);
				fd = -1;
			}
		}
		if (ret) {
			s->failed++;
			usleep(10000);
		} else {
			s->done++;
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* Fill bpflb_ct to max_entries with fresh established TCP entries. */
static int ct_fill(const char *pin, uint32_t *filled)
{
	int fd = bpf_obj_get(pin), ret = 0;
	struct bpf_map_info info = {0};
	__u32 ilen = sizeof(info), chunk = 4096;
	struct bpflb_ct_key *k = NULL;
	struct bpflb_ct_val *v = NULL;
	uint64_t now = bpflb_mono_ns();

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		fprintf(stderr, "ctrl_bench: %s: %s\n", pin, strerror(errno));
		return -errno;
	}
	k = calloc(chunk, sizeof(*k));
	v = calloc(chunk, sizeof(*v));
	for (uint32_t i = 0; k && v && i < info.max_entries && !ret; i += chunk) {
		__u32 n = info.max_entries - i < chunk ? info.max_entries - i : chunk;

		for (__u32 j = 0; j < n; j++) {
			uint32_t id = i + j;

			k[j] = (struct bpflb_ct_key){.saddr = htonl(0x0a000000u | id),
						     .daddr = htonl(0xc6120001u),
						     .sport = htons(1024 + id % 60000),
						     .dport = htons(80),
						     .proto = IPPROTO_TCP,
						     .kind = BPFLB_CT_FWD};
			v[j] = (struct bpflb_ct_val){
			    .last_seen = now, .created = now, .state = BPFLB_CT_ESTABLISHED};
		}
		if (bpf_map_update_batch(fd, k, v, &n, NULL))
			ret = -errno;
	}
	*filled = info.max_entries;
	free(k);
	free(v);
	close(fd);
	return ret;
}

/* The latency of `status` (a new connection each, as bpflbctl) and of `reload`. */
static void measure(const char *phase, int nstatus, int nreload, const char *sep)
{
	double *st = calloc(nstatus, sizeof(double)), *rl = calloc(nreload, sizeof(double));
	int fails = 0;

	for (int i = 0; i < nstatus + nreload; i++) {
		const char *req = i < nstatus ? "{\"cmd\":\"status\"}\n" : "{\"cmd\":\"reload\"}\n";
		double t = now_ms();
		int fd = ctl_connect();

		if (fd < 0 || ctl_roundtrip(fd, req))
			fails++;
		if (fd >= 0)
			close(fd);
		if (i < nstatus)
			st[i] = now_ms() - t;
		else
			rl[i - nstatus] = now_ms() - t;
		usleep(20000);
	}
	qsort(st, nstatus, sizeof(double), dbl_cmp);
	qsort(rl, nreload, sizeof(double), dbl_cmp);
	printf("%s\"%s\": {\"status_p50_ms\": %.2f, \"status_p99_ms\": %.2f, \"status_max_ms\": "
	       "%.2f, \"reload_p50_ms\": %.2f, \"reload_p99_ms\": %.2f, \"reload_max_ms\": %.2f, "
	       "\"failed\": %d",
	       sep, phase, st[nstatus / 2], st[(nstatus * 99) / 100], st[nstatus - 1],
	       rl[nreload / 2], rl[(nreload * 99) / 100], rl[nreload - 1], fails);
	fprintf(stderr,
		"ctrl_bench: %s: status p50 %.1f p99 %.1f ms, reload p50 %.1f p99 %.1f ms\n", phase,
		st[nstatus / 2], st[(nstatus * 99) / 100], rl[nreload / 2],
		rl[(nreload * 99) / 100]);
	free(st);
	free(rl);
}

static int run_phase(const char *phase, const char *how, int nscrapers, int nstatus, int nreload,
		     const char *sep)
{
	struct scraper *s = calloc(nscrapers, sizeof(*s));
	uint64_t done = 0, failed = 0;
	double t0 = now_ms(), secs;

	scrapers_stop = 0;
	for (int i = 0; i < nscrapers; i++) {
		s[i].how = how;
		if (pthread_create(&s[i].th, NULL, scraper_run, &s[i]))
			return 1;
	}
	usleep(500000); /* every scraper in flight */
	measure(phase, nstatus, nreload, sep);
	scrapers_stop = 1;
	for (int i = 0; i < nscrapers; i++) {
		pthread_join(s[i].th, NULL);
		done += s[i].done;
		failed += s[i].failed;
	}
	secs = (now_ms() - t0) / 1000;
	printf(", \"scrapers\": %d, \"requests_per_s\": %.1f, \"scraper_errors\": %llu}", nscrapers,
	       done / secs, (unsigned long long)failed);
	free(s);
	return 0;
}

/*
 * Against a running bpflbd (bench/listen_bench.sh starts one): fill its
 * bpflb_ct, then measure `status` and `reload` over the control socket while
 * N clients hammer it, twice in one run:
 *   walk     N clients each asking ct.list --limit 1 in a loop: every request
 *            walks the whole map on the loop, as `status` and every /metrics
 *            scrape did before the counts moved off the loop (before);
 *   metrics  N Prometheus-like scrapers of /metrics (after: the counts come
 *            from the snapshot).
 */
static int run_listen(const char *sock, const char *metrics, const char *ct_pin, int nscrapers,
		      int nstatus, int nreload)
{
	const char *colon = strrchr(metrics, ':');
	uint32_t filled = 0;
	double walk[5];

	snprintf(ctl_path, sizeof(ctl_path), "%s", sock);
	mx_addr.sin_family = AF_INET;
	mx_addr.sin_port = htons(colon ? atoi(colon + 1) : 9962);
	if (!colon ||
	    inet_pton(AF_INET, strndupa(metrics, colon - metrics), &mx_addr.sin_addr) != 1)
		return fprintf(stderr, "ctrl_bench: --metrics ADDR:PORT\n"), 2;
	if (ct_fill(ct_pin, &filled))
		return 1;
	/* one walk of the full map, as svcq_ct_count did on the loop per request */
	for (int i = 0; i < 5; i++) {
		int fd = bpf_obj_get(ct_pin);
		void *k = NULL, *v = NULL;
		size_t n = 0;
		double t = now_ms();

		svc_map_dump(fd, sizeof(struct bpflb_ct_key), sizeof(struct bpflb_ct_val), &k, &v,
			     &n);
		walk[i] = now_ms() - t;
		free(k);
		free(v);
		close(fd);
	}
	printf("{\"ct_entries\": %u, \"walk_ms\": %.2f, ", filled, median(walk, 5));
	fprintf(stderr, "ctrl_bench: %u conntrack entries, one walk %.1f ms\n", filled,
		median(walk, 5));
	/* before: each sample waits behind up to N walks; fewer samples */
	if (run_phase("before_walk_per_request", "walk", nscrapers, 5, 2, "") ||
	    run_phase("after_snapshot", "metrics", nscrapers, nstatus, nreload, ", "))
		return 1;
	printf("}\n");
	return 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ctrl_bench services --config FILE [--changed FILE] [--changed-1pct FILE]\n"
	    "                          [--pin DIR] [--rounds R]\n"
	    "       ctrl_bench maglev [--backends N[,N..]] [--m M] [--rounds R]\n"
	    "       ctrl_bench listen --socket CTL --metrics ADDR:PORT --ct PIN [--scrapers N]\n"
	    "                         [--status S] [--reloads R]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},	{"changed", required_argument, NULL, 'C'},
	    {"changed-1pct", required_argument, NULL, '1'},
	    {"pin", required_argument, NULL, 'p'},	{"rounds", required_argument, NULL, 'r'},
	    {"backends", required_argument, NULL, 'b'}, {"m", required_argument, NULL, 'm'},
	    {"socket", required_argument, NULL, 's'},	{"metrics", required_argument, NULL, 'M'},
	    {"ct", required_argument, NULL, 't'},	{"scrapers", required_argument, NULL, 'n'},
	    {"status", required_argument, NULL, 'S'},	{"reloads", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},		{0}};
	const char *sock = NULL, *metrics = NULL, *ct_pin = NULL;
	int scrapers = 200, nstatus = 200, nreload = 20;
	const char *config = NULL, *changed = NULL, *changed1 = NULL, *pin = "/sys/fs/bpf", *backends = "100,1000";
	int rounds = 5, c;
	uint32_t m = 16381;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'C':
			changed = optarg;
			break;
		case '1':
			changed1 = optarg;
			break;
		case 'p':
			pin = optarg;
			break;
		case 'r':
			rounds = atoi(optarg) > 0 ? atoi(optarg) : 1;
			break;
		case 'b':
			backends = optarg;
			break;
		case 'm':
			m = strtoul(optarg, NULL, 0);
			break;
		case 's':
			sock = optarg;
			break;
		case 'M':
			metrics = optarg;
			break;
		case 't':
			ct_pin = optarg;
			break;
		case 'n':
			scrapers = atoi(optarg) > 0 ? atoi(optarg) : 1;
			break;
		case 'S':
			nstatus = atoi(optarg) > 1 ? atoi(optarg) : 2;
			break;
		case 'R':
			nreload = atoi(optarg) > 1 ? atoi(optarg) : 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	log_init(LOG_WARNING, LOG_FORMAT_AUTO);
	if (!strcmp(argv[1], "maglev"))
		return run_maglev(backends, m, rounds);
	if (!strcmp(argv[1], "listen") && sock && metrics && ct_pin)
		return run_listen(sock, metrics, ct_pin, scrapers, nstatus, nreload);
	if (!strcmp(argv[1], "services") && config)
		return run_services(config, changed, changed1, pin, rounds);
	usage(stderr);
	return 2;
}
