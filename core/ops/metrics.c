// SPDX-License-Identifier: GPL-2.0-only
/*
 * The metrics endpoint (metrics.h): the exposition text written at each
 * scrape by the collectors their owners registered, served by http.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "ops/connlimit.h"
#include "ops/http.h"
#include "ops/metrics.h"

struct mx_collector {
	const char *name;
	bpflb_metrics_fn fn;
	void *ctx;
};

struct bpflb_metrics {
	struct bpflb_http_server *srv; /* NULL: not served */
	uint64_t scrapes;
	struct mx_collector collectors[METRICS_MAX_COLLECTORS];
	unsigned int ncollectors;
};

/* --- the exposition ------------------------------------------------------------ */

void bpflb_metrics_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*v, f);
	}
}

void bpflb_metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct bpflb_metrics *bpflb_metrics_new(void)
{
	return calloc(1, sizeof(struct bpflb_metrics));
}

int bpflb_metrics_register(struct bpflb_metrics *m, const char *name, bpflb_metrics_fn fn,
			   void *ctx, struct bpflb_err *err)
{
	for (unsigned int i = 0; i < m->ncollectors; i++)
		if (!strcmp(m->collectors[i].name, name))
			return bpflb_err_set(err, "metrics collector '%s' is registered twice",
					     name),
			       -EEXIST;
	if (m->ncollectors == METRICS_MAX_COLLECTORS)
		return bpflb_err_set(err,
				     "more than %d metrics collectors (METRICS_MAX_COLLECTORS)",
				     METRICS_MAX_COLLECTORS),
		       -ENOSPC;
	m->collectors[m->ncollectors++] = (struct mx_collector){name, fn, ctx};
	return 0;
}

/* --- process_*: the standard metrics of Prometheus' client libraries ------------------- */

/* Descriptors open now (the directory's own one not counted); -1 when unknown. */
static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* The boot time in seconds since the epoch (/proc/stat btime); 0 when unknown. */
static unsigned long long boot_time(void)
{
	unsigned long long bt = 0;
	char line[256];
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &bt) == 1)
			break;
	fclose(f);
	return bt;
}

/*
 * process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds (from
 * /proc/self/stat), process_open_fds, process_max_fds (RLIMIT_NOFILE's soft
 * limit, what an open() runs into).  A value that cannot be read is left out
 * with its family.
 */
static void process_metrics(FILE *f)
{
	unsigned long long utime, stime, start, vsize, rss_pages;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds = open_fds();
	char buf[1024], *p;
	struct rlimit rl;
	ssize_t n = -1;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	/* the fields after comm, which may hold spaces and parentheses: state is field 3 */
	p = n > 0 ? (buf[n] = '\0', strrchr(buf, ')')) : NULL;
	if (p && tck > 0 && page > 0 &&
	    sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
		   "%llu %llu %llu",
		   &utime, &stime, &start, &vsize, &rss_pages) == 5) {
		unsigned long long bt = boot_time();

		bpflb_metrics_head(f, "process_cpu_seconds_total", "counter",
				   "Total user and system CPU time spent in seconds.");
		fprintf(f, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / tck);
		bpflb_metrics_head(f, "process_resident_memory_bytes", "gauge",
				   "Resident memory size in bytes.");
		fprintf(f, "process_resident_memory_bytes %llu\n",
			rss_pages * (unsigned long long)page);
		bpflb_metrics_head(f, "process_virtual_memory_bytes", "gauge",
				   "Virtual memory size in bytes.");
		fprintf(f, "process_virtual_memory_bytes %llu\n", vsize);
		if (bt) {
			bpflb_metrics_head(
			    f, "process_start_time_seconds", "gauge",
			    "Start time of the process since unix epoch in seconds.");
			fprintf(f, "process_start_time_seconds %.2f\n", bt + (double)start / tck);
		}
	}
	if (fds >= 0) {
		bpflb_metrics_head(f, "process_open_fds", "gauge",
				   "Number of open file descriptors.");
		fprintf(f, "process_open_fds %ld\n", fds);
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		bpflb_metrics_head(f, "process_max_fds", "gauge",
				   "Maximum number of open file descriptors.");
		fprintf(f, "process_max_fds %.0f\n",
			rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
	}
}

/*
 * The registered collectors, then the process's and the listeners' own (the
 * listeners' prefixed bpflb_):
 *   process_*                                  see process_metrics()
 *   connections                                gauge, metrics, healthz and health check connections
 *   connections_refused_total                  counter, a listener paused at a cap
 *   metrics_scrapes_total                      counter
 */
char *metrics_render(struct bpflb_metrics *m, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	for (unsigned int i = 0; i < m->ncollectors; i++)
		m->collectors[i].fn(f, m->collectors[i].ctx);
	process_metrics(f);
	bpflb_metrics_head(f, "bpflb_connections", "gauge",
			   "Open connections of the metrics, healthz and health check listeners "
			   "(max_connections).");
	fprintf(f, "bpflb_connections %u\n", connlimit_total());
	bpflb_metrics_head(f, "bpflb_connections_refused_total", "counter",
			   "Times a listener stopped accepting at max_connections(_per_listener).");
	fprintf(f, "bpflb_connections_refused_total %llu\n",
		(unsigned long long)connlimit_refused());
	bpflb_metrics_head(f, "bpflb_metrics_scrapes_total", "counter", "Requests for /metrics.");
	fprintf(f, "bpflb_metrics_scrapes_total %llu\n", (unsigned long long)m->scrapes);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/* --- HTTP (http.c) ------------------------------------------------------------------ */

static void mx_request(void *ctx, const char *path, struct bpflb_http_answer *a)
{
	struct bpflb_metrics *m = ctx;

	if (strcmp(path, "/metrics"))
		return; /* 404 */
	m->scrapes++;
	a->body = metrics_render(m, &a->len);
	if (!a->body) {
		a->status = 500;
		return;
	}
	a->status = 200;
	a->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

int metrics_listen(struct bpflb_metrics *m, uv_loop_t *loop, const char *listen,
		   struct bpflb_err *err)
{
	uint32_t addr;
	uint16_t port;
	int ret;

	if (m->srv)
		return bpflb_err_set(err, "metrics are served already"), -EALREADY;
	if (bpflb_http_parse_listen(listen, &addr, &port))
		return bpflb_err_set(err, "metrics_listen '%s' is not ADDR:PORT", listen), -EINVAL;
	ret = bpflb_http_start(loop, addr, port, mx_request, m, &m->srv);
	if (ret)
		return bpflb_err_set(err, "cannot serve metrics on %s: %s", listen, strerror(-ret)),
		       ret;
	return 0;
}

void metrics_close(struct bpflb_metrics *m)
{
	if (!m)
		return;
	bpflb_http_stop(m->srv);
	free(m);
}
