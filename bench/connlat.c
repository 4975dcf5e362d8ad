// SPDX-License-Identifier: GPL-2.0-only
/*
 * connlat: TCP connection setup latency, the cost a load balancer adds to the
 * first packets of a flow.
 *
 *   connlat serve [--bind ADDR] PORT
 *       TCP: accept connections and close them at once.  UDP on the same port:
 *       echo every datagram.  Runs until killed.
 *
 *   connlat connect HOST PORT [--udp] [--count N] [--timeout MS] [--duration S]
 *                   [--rate PER_S] [--raw FILE]
 *       N sequential connections (or as many as fit in S seconds): each one
 *       connect() (SYN out, SYN-ACK back: one round trip through the load
 *       balancer, which handles the flow's first packet there), then close
 *       with SO_LINGER 0 (an RST: no TIME_WAIT, so thousands of connections
 *       never run out of ports and never meet an old tuple).  The time of each
 *       connect() is a sample.  Prints one JSON object: count, failures,
 *       percentiles of the connect time in microseconds, the mean time of a
 *       whole connect+close, and with --duration the failures' times (a probe
 *       during a reload: how many attempts failed, and when).  SIGINT or
 *       SIGTERM ends the run early, with the report.  --rate R paces the
 *       attempts to R per second (a probe that leaves the CPUs to others).
 *       --udp: each attempt is a new socket (a new source port, so a new flow
 *       for the load balancer) sending one datagram and waiting for its echo;
 *       the sample is the round trip.
 *
 * Exit status 0 when every attempt succeeded, 1 otherwise, 2 on usage errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int serve(const char *bind_addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)}, from;
	struct pollfd p[2];
	socklen_t flen;
	char buf[2048];
	int one = 1, c;
	ssize_t n;

	if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "connlat: bad address %s\n", bind_addr);
		return 2;
	}
	p[0] = (struct pollfd){.fd = socket(AF_INET, SOCK_STREAM, 0), .events = POLLIN};
	p[1] = (struct pollfd){.fd = socket(AF_INET, SOCK_DGRAM, 0), .events = POLLIN};
	setsockopt(p[0].fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (p[0].fd < 0 || p[1].fd < 0 || bind(p[0].fd, (void *)&sa, sizeof(sa)) ||
	    listen(p[0].fd, 4096) || bind(p[1].fd, (void *)&sa, sizeof(sa))) {
		perror("connlat: listen");
		return 1;
	}
	printf("READY %s:%d\n", bind_addr, port);
	fflush(stdout);
	for (;;) {
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			c = accept(p[0].fd, NULL, NULL);
			if (c >= 0)
				close(c);
		}
		if (p[1].revents & POLLIN) {
			flen = sizeof(from);
			n = recvfrom(p[1].fd, buf, sizeof(buf), 0, (void *)&from, &flen);
			if (n > 0)
				sendto(p[1].fd, buf, n, 0, (void *)&from, flen);
		}
	}
}

/* One datagram on a new socket, its echo back; returns 0 or -errno. */
static int udp_probe(const struct sockaddr_in *dst, int timeout_ms, int64_t *ns)
{
	static const char msg[] = "connlat";
	struct pollfd p;
	char buf[64];
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	/* Connected: an answer from any other address (no reverse NAT) is not taken. */
	if (connect(fd, (const void *)dst, sizeof(*dst))) {
		err = -errno;
		goto out;
	}
	*ns = now_ns();
	if (send(fd, msg, sizeof(msg), 0) < 0) {
		err = -errno;
		goto out;
	}
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	err = poll(&p, 1, timeout_ms);
	if (err != 1) {
		err = err < 0 ? -errno : -ETIMEDOUT;
		goto out;
	}
	err = 0;
	if (recv(fd, buf, sizeof(buf), 0) != sizeof(msg)) {
		err = -(errno ? errno : EIO);
		goto out;
	}
	*ns = now_ns() - *ns;
out:
	close(fd);
	return err;
}

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	stop = 1;
}

/* connect() with a timeout; returns 0 or -errno; *ns: time from connect() to the answer. */
static int connect_to(const struct sockaddr_in *dst, int timeout_ms, int *out, int64_t *ns)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct pollfd p;
	socklen_t len = sizeof(int);
	int fd, err = 0, fl;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	*ns = now_ns();
	if (connect(fd, (const void *)dst, sizeof(*dst)) && errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	p = (struct pollfd){.fd = fd, .events = POLLOUT};
	err = poll(&p, 1, timeout_ms);
	if (err != 1) {
		err = err < 0 ? -errno : -ETIMEDOUT;
		close(fd);
		return err;
	}
	err = 0;
	*ns = now_ns() - *ns;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		close(fd);
		return -(err ? err : EIO);
	}
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	*out = fd;
	return 0;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	double pos = p * (n - 1);
	size_t lo = (size_t)pos;

	if (!n)
		return 0;
	return lo + 1 < n ? v[lo] + (v[lo + 1] - v[lo]) * (pos - lo) : v[lo];
}

static int client(const char *host, int port, long count, int timeout_ms, double duration,
		  const char *raw, int udp, double rate)
{
	int64_t next = 0, gap = rate > 0 ? (int64_t)(1e9 / rate) : 0;
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
	size_t cap = count > 0 ? (size_t)count : 1 << 16, n = 0, nfail = 0, fcap = 64;
	double *lat = malloc(cap * sizeof(double)), *fail_at = malloc(fcap * sizeof(double));
	int64_t t0 = now_ns(), end = duration > 0 ? t0 + (int64_t)(duration * 1e9) : 0, a, ns = 0;
	double total_us = 0;
	char first_err[64] = "";
	long i;
	FILE *rf = NULL;

	if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
		fprintf(stderr, "connlat: bad address %s\n", host);
		return 2;
	}
	if (raw && !(rf = fopen(raw, "w"))) {
		perror(raw);
		return 2;
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	for (i = 0; !stop && (end ? now_ns() < end : i < count); i++) {
		int fd = -1, r;

		if (gap) {
			int64_t t = now_ns();

			next = next ? next + gap : t;
			if (next > t) {
				struct timespec ts = {.tv_sec = (next - t) / 1000000000,
						      .tv_nsec = (next - t) % 1000000000};

				nanosleep(&ts, NULL);
			}
		}
		a = now_ns();
		r = udp ? udp_probe(&dst, timeout_ms, &ns) : connect_to(&dst, timeout_ms, &fd, &ns);
		/* Stopped in the middle of an attempt: that one has no outcome. */
		if (r && stop)
			break;
		if (r) {
			if (nfail == fcap)
				fail_at = realloc(fail_at, (fcap *= 2) * sizeof(double));
			fail_at[nfail++] = (a - t0) / 1e9;
			if (!first_err[0])
				snprintf(first_err, sizeof(first_err), "%s", strerror(-r));
			/* A refused connection returns at once: do not spin. */
			if (r != -ETIMEDOUT)
				usleep(1000);
			continue;
		}
		if (fd >= 0)
			close(fd);
		total_us += (now_ns() - a) / 1e3;
		if (n == cap)
			lat = realloc(lat, (cap *= 2) * sizeof(double));
		lat[n++] = ns / 1e3;
		if (rf)
			fprintf(rf, "%.2f\n", ns / 1e3);
	}
	if (rf)
		fclose(rf);
	qsort(lat, n, sizeof(double), dcmp);
	printf("{\"target\": \"%s:%d\", \"proto\": \"%s\", \"attempts\": %ld, \"ok\": %zu, "
	       "\"failures\": %zu, "
	       "\"elapsed_s\": %.3f, \"connect_us\": {\"p50\": %.2f, \"p10\": %.2f, \"p90\": %.2f, "
	       "\"p99\": %.2f, \"min\": %.2f, \"max\": %.2f}, \"connect_close_mean_us\": %.2f",
	       host, port, udp ? "udp" : "tcp", i, n, nfail, (now_ns() - t0) / 1e9,
	       pct(lat, n, 0.5), pct(lat, n, 0.1), pct(lat, n, 0.9), pct(lat, n, 0.99),
	       n ? lat[0] : 0, n ? lat[n - 1] : 0, n ? total_us / n : 0);
	if (nfail) {
		printf(", \"first_error\": \"%s\", \"failed_at_s\": [", first_err);
		for (size_t k = 0; k < nfail && k < 1000; k++)
			printf("%s%.3f", k ? ", " : "", fail_at[k]);
		printf("]");
	}
	printf("}\n");
	free(lat);
	free(fail_at);
	return nfail ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: connlat serve [--bind ADDR] PORT\n"
	    "       connlat connect HOST PORT [--udp] [--count N] [--timeout MS] [--duration S]\n"
	    "                       [--rate PER_S] [--raw FILE]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"bind", required_argument, NULL, 'b'},
					     {"count", required_argument, NULL, 'c'},
					     {"timeout", required_argument, NULL, 't'},
					     {"duration", required_argument, NULL, 'd'},
					     {"raw", required_argument, NULL, 'r'},
					     {"udp", no_argument, NULL, 'u'},
					     {"rate", required_argument, NULL, 'R'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *bind_addr = "0.0.0.0", *raw = NULL;
	long count = 1000;
	int timeout_ms = 1000, udp = 0, c;
	double duration = 0, rate = 0;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			bind_addr = optarg;
			break;
		case 'c':
			count = strtol(optarg, NULL, 10);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'd':
			duration = strtod(optarg, NULL);
			break;
		case 'r':
			raw = optarg;
			break;
		case 'u':
			udp = 1;
			break;
		case 'R':
			rate = strtod(optarg, NULL);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	optind++; /* getopt saw argv + 1 */
	if (!strcmp(argv[1], "serve") && optind == argc - 1)
		return serve(bind_addr, atoi(argv[optind]));
	if (!strcmp(argv[1], "connect") && optind == argc - 2)
		return client(argv[optind], atoi(argv[optind + 1]), count, timeout_ms, duration,
			      raw, udp, rate);
	usage(stderr);
	return 2;
}
