// SPDX-License-Identifier: GPL-2.0-only
/*
 * peerc: the client of the end-to-end tests (counterpart of peerd).
 *
 *   peerc tcp|udp HOST PORT [--count N] [--timeout MS] [--bind ADDR] [--sport PORT]
 *                [--sport-step S]
 *       N times: a new connection (TCP) or a new socket with a new source port
 *       (UDP, one datagram), prints the server's line.  With --sport, attempt
 *       i (from 0) binds source port PORT + i * S (S default 0: the same port;
 *       a TCP port then stays in TIME_WAIT toward HOST after the first).  A failed attempt prints
 *       "ERROR <reason>" instead; the other attempts still run.  --timeout is
 *       per attempt (connect + answer), default 2000.  The UDP socket is
 *       connected, so an answer from any other address than HOST:PORT (e.g. a
 *       missing reverse NAT) is not accepted and ends as "ERROR timeout".
 *
 *   peerc stream HOST PORT [--bytes N] [--chunk K] [--interval-ms T]
 *                [--timeout MS] [--seed S] [--bind ADDR] [--sport PORT] [--until FILE]
 *       One TCP connection: prints the greeting line, then sends N bytes
 *       (default 1 MiB) of a seeded pseudo-random pattern in chunks of K bytes
 *       (default 1024) with a pause of T ms (default 10) after each chunk,
 *       reads the echo concurrently and verifies every byte, half-closes and
 *       waits for the server's EOF.  --until FILE ends the sending early, at a
 *       chunk boundary, once FILE exists (N is then an upper bound).  Prints "OK bytes=N", or
 *       "FAIL <reason> sent=X received=Y".  --timeout (default 5000) is the
 *       longest time without progress while echo data is outstanding.
 *
 *   peerc ping HOST [--count N] [--timeout MS] [--bind ADDR]
 *       ICMP echo (raw socket: needs root/CAP_NET_RAW, IPv4 only), because
 *       the test machines have no ping binary.  Prints
 *       "REPLY HOST seq=I rtt_us=U" or "ERROR <reason>" per attempt.
 *
 * Exit status: 0 when every attempt succeeded, 1 when any failed, 2 on a
 * usage error.  Output goes to stdout, one line per attempt.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct opts {
	const char *mode, *host, *port, *bind, *until;
	long count, timeout_ms, chunk, interval_ms, sport, sport_step;
	uint64_t bytes, seed;
};

static struct sockaddr_storage g_dst, g_src;
static socklen_t g_dstlen, g_srclen;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: peerc tcp|udp HOST PORT [--count N] [--timeout MS] [--bind ADDR] [--sport PORT]\n"
		"                  [--sport-step S]\n"
		"       peerc stream HOST PORT [--bytes N] [--chunk K] [--interval-ms T]\n"
		"                  [--timeout MS] [--seed S] [--bind ADDR] [--sport PORT] [--until FILE]\n"
		"       peerc ping HOST [--count N] [--timeout MS] [--bind ADDR]\n");
}

static bool resolve(const char *host, const char *port, int socktype, struct sockaddr_storage *ss,
		    socklen_t *len, int family)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = socktype }, *res;
	int rc = getaddrinfo(host, port, &hints, &res);

	if (rc != 0) {
		fprintf(stderr, "peerc: cannot resolve '%s': %s\n", host, gai_strerror(rc));
		return false;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

static uint64_t parse_num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s) {
		fprintf(stderr, "peerc: bad %s '%s'\n", what, s);
		exit(2);
	}
	/* Size suffixes for --bytes: k, m, g (binary). */
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end) {
		fprintf(stderr, "peerc: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

/* A socket of the destination's family, bound to --bind/--sport if given. */
static int make_socket(const struct opts *o, int type, int proto, char *err, size_t errlen)
{
	int fd = socket(g_dst.ss_family, type | SOCK_CLOEXEC, proto);
	int one = 1;

	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (o->bind || o->sport) {
		struct sockaddr_storage src = g_src;
		socklen_t slen = g_srclen;

		if (!o->bind) {
			memset(&src, 0, sizeof(src));
			src.ss_family = g_dst.ss_family;
			slen = g_dst.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							   : sizeof(struct sockaddr_in);
		}
		if (src.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&src)->sin6_port = htons((uint16_t)o->sport);
		else
			((struct sockaddr_in *)&src)->sin_port = htons((uint16_t)o->sport);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, slen) < 0) {
			snprintf(err, errlen, "bind: %s", strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Waits for events on fd until deadline (ms).  0 = timeout, <0 = error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = events };
		int rc;

		if (left <= 0)
			return 0;
		rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		return rc;
	}
}

/* Non-blocking connect with deadline.  Returns fd (non-blocking) or -1. */
static int tcp_connect(const struct opts *o, int64_t deadline, char *err, size_t errlen)
{
	int fd = make_socket(o, SOCK_STREAM | SOCK_NONBLOCK, 0, err, errlen);
	int one = 1, soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&g_dst, g_dstlen) < 0 && errno != EINPROGRESS) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (wait_fd(fd, POLLOUT, deadline) == 0) {
		snprintf(err, errlen, "connect timeout");
		close(fd);
		return -1;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		snprintf(err, errlen, "connect: %s", strerror(soerr));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Reads one line (the greeting) byte by byte, so nothing after it is
 * consumed.  Returns true with the line (without '\n') in buf.
 */
static bool read_line(int fd, char *buf, size_t len, int64_t deadline, char *err, size_t errlen)
{
	size_t n = 0;

	while (n + 1 < len) {
		ssize_t r;

		if (wait_fd(fd, POLLIN, deadline) == 0) {
			snprintf(err, errlen, "timeout waiting for greeting");
			return false;
		}
		r = recv(fd, buf + n, 1, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, errlen, "read: %s", strerror(errno));
			return false;
		}
		if (r == 0) {
			snprintf(err, errlen, "closed before greeting");
			return false;
		}
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return true;
		}
		n++;
	}
	snprintf(err, errlen, "greeting too long");
	return false;
}

static bool tcp_once(const struct opts *o, char *line, size_t len, char *err, size_t errlen)
{
	int64_t deadline = now_ms() + o->timeout_ms;
	int fd = tcp_connect(o, deadline, err, errlen);
	bool ok;

	if (fd < 0)
		return false;
	ok = read_line(fd, line, len, deadline, err, errlen);
	close(fd);
	return ok;
}

static bool udp_once(const struct opts *o, long seq, char *line, size_t len, char *err,
		     size_t errlen)
{
	int64_t deadline = now_ms() + o->timeout_ms;
	int fd = make_socket(o, SOCK_DGRAM | SOCK_NONBLOCK, 0, err, errlen);
	char msg[64];
	int mlen = snprintf(msg, sizeof(msg), "peerc %ld\n", seq);
	ssize_t r;

	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&g_dst, g_dstlen) < 0) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		goto fail;
	}
	if (send(fd, msg, (size_t)mlen, 0) < 0) {
		snprintf(err, errlen, "send: %s", strerror(errno));
		goto fail;
	}
	for (;;) {
		if (wait_fd(fd, POLLIN, deadline) == 0) {
			snprintf(err, errlen, "timeout");
			goto fail;
		}
		r = recv(fd, line, len - 1, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			/* ICMP errors (port unreachable -> ECONNREFUSED) land here. */
			snprintf(err, errlen, "recv: %s", strerror(errno));
			goto fail;
		}
		line[r] = '\0';
		if (r > 0 && line[r - 1] == '\n')
			line[r - 1] = '\0';
		close(fd);
		return true;
	}
fail:
	close(fd);
	return false;
}

static uint16_t icmp_csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static bool ping_once(const struct opts *o, int fd, uint16_t id, uint16_t seq, char *line,
		      size_t len, char *err, size_t errlen)
{
	int64_t start = now_us(), deadline = now_ms() + o->timeout_ms;
	struct sockaddr_in *dst = (struct sockaddr_in *)&g_dst;
	uint8_t pkt[64] = { 0 };
	struct icmphdr *ic = (struct icmphdr *)pkt;
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &dst->sin_addr, ip, sizeof(ip));
	ic->type = ICMP_ECHO;
	ic->un.echo.id = htons(id);
	ic->un.echo.sequence = htons(seq);
	memcpy(pkt + sizeof(*ic), "peerc-ping", 10);
	ic->checksum = icmp_csum(pkt, sizeof(pkt));
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&g_dst, g_dstlen) < 0) {
		snprintf(err, errlen, "sendto: %s", strerror(errno));
		return false;
	}
	for (;;) {
		uint8_t buf[1500];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		const struct iphdr *iph = (const void *)buf;
		const struct icmphdr *r;
		size_t hl;
		ssize_t n;

		if (wait_fd(fd, POLLIN, deadline) == 0) {
			snprintf(err, errlen, "timeout");
			return false;
		}
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, errlen, "recvfrom: %s", strerror(errno));
			return false;
		}
		hl = (size_t)iph->ihl * 4;
		if ((size_t)n < hl + sizeof(*r))
			continue;
		r = (const void *)(buf + hl);
		if (r->type == ICMP_ECHOREPLY && ntohs(r->un.echo.id) == id &&
		    ntohs(r->un.echo.sequence) == seq &&
		    from.sin_addr.s_addr == dst->sin_addr.s_addr) {
			snprintf(line, len, "REPLY %s seq=%u rtt_us=%" PRId64, ip, seq,
				 now_us() - start);
			return true;
		}
		if (r->type == ICMP_DEST_UNREACH || r->type == ICMP_TIME_EXCEEDED) {
			/* The offending packet follows: our echo request? */
			const uint8_t *inner = (const uint8_t *)(r + 1);
			size_t ihl;
			const struct icmphdr *ie;

			if ((size_t)n < hl + sizeof(*r) + sizeof(struct iphdr))
				continue;
			ihl = (size_t)(inner[0] & 0xf) * 4;
			if ((size_t)n < hl + sizeof(*r) + ihl + 8)
				continue;
			ie = (const void *)(inner + ihl);
			if (ie->type == ICMP_ECHO && ntohs(ie->un.echo.id) == id &&
			    ntohs(ie->un.echo.sequence) == seq) {
				char fs[INET_ADDRSTRLEN];

				inet_ntop(AF_INET, &from.sin_addr, fs, sizeof(fs));
				snprintf(err, errlen, "icmp %s type=%u code=%u from %s",
					 r->type == ICMP_DEST_UNREACH ? "unreachable" : "time-exceeded",
					 r->type, r->code, fs);
				return false;
			}
		}
	}
}

static int run_simple(const struct opts *o)
{
	int failures = 0, pfd = -1;
	uint16_t id = (uint16_t)getpid();

	if (!strcmp(o->mode, "ping")) {
		char err[256];

		if (g_dst.ss_family != AF_INET) {
			fprintf(stderr, "peerc: ping supports IPv4 only\n");
			return 2;
		}
		pfd = make_socket(o, SOCK_RAW, IPPROTO_ICMP, err, sizeof(err));
		if (pfd < 0) {
			printf("ERROR %s\n", err);
			return 1;
		}
	}
	for (long i = 0; i < o->count; i++) {
		struct opts a = *o;
		char line[512], err[256];
		bool ok;

		if (o->sport)
			a.sport = o->sport + i * o->sport_step;
		if (!strcmp(o->mode, "tcp"))
			ok = tcp_once(&a, line, sizeof(line), err, sizeof(err));
		else if (!strcmp(o->mode, "udp"))
			ok = udp_once(&a, i, line, sizeof(line), err, sizeof(err));
		else
			ok = ping_once(o, pfd, id, (uint16_t)(i + 1), line, sizeof(line), err,
				       sizeof(err));
		if (ok) {
			printf("%s\n", line);
		} else {
			printf("ERROR %s\n", err);
			failures++;
		}
		fflush(stdout);
	}
	if (pfd >= 0)
		close(pfd);
	return failures ? 1 : 0;
}

/* The stream pattern: byte i is byte (i % 8) of splitmix64(seed + i / 8). */
static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static void pattern(uint64_t seed, uint64_t off, uint8_t *buf, size_t len)
{
	uint64_t block = UINT64_MAX, word = 0;

	for (size_t i = 0; i < len; i++) {
		uint64_t pos = off + i;

		if (pos / 8 != block) {
			block = pos / 8;
			word = splitmix64(seed + block);
		}
		buf[i] = (uint8_t)(word >> ((pos % 8) * 8));
	}
}

static int stream_fail(const char *why, uint64_t sent, uint64_t recvd)
{
	printf("FAIL %s sent=%" PRIu64 " received=%" PRIu64 "\n", why, sent, recvd);
	fflush(stdout);
	return 1;
}

static int stream_loop(const struct opts *o, uint8_t *sbuf, uint8_t *rbuf, uint8_t *ebuf,
		       size_t bufsz)
{
	uint64_t sent = 0, recvd = 0, chunk_left = 0, limit = o->bytes;
	int64_t next_send = 0, last_progress;
	char line[512], err[256], why[256];
	bool shut = false;
	int fd;

	fd = tcp_connect(o, now_ms() + o->timeout_ms, err, sizeof(err));
	if (fd < 0)
		return stream_fail(err, 0, 0);
	if (!read_line(fd, line, sizeof(line), now_ms() + o->timeout_ms, err, sizeof(err)))
		return stream_fail(err, 0, 0);
	printf("%s\n", line);
	fflush(stdout);

	last_progress = now_ms();
	for (;;) {
		int64_t now = now_ms(), wait;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int rc;

		/* --until FILE: stop sending at a chunk boundary once FILE exists */
		if (o->until && !chunk_left && sent < limit && !access(o->until, F_OK))
			limit = sent;
		if (sent == limit && !shut) {
			if (shutdown(fd, SHUT_WR) < 0) {
				snprintf(why, sizeof(why), "shutdown: %s", strerror(errno));
				return stream_fail(why, sent, recvd);
			}
			shut = true;
		}
		if (sent < limit && now >= next_send)
			p.events |= POLLOUT;
		/* Sleep until the next chunk is due or the stall timeout hits. */
		wait = o->timeout_ms;
		if (recvd < sent || shut)
			wait = last_progress + o->timeout_ms - now;
		if (sent < limit && !(p.events & POLLOUT) && next_send - now < wait)
			wait = next_send - now;
		if (o->until && sent < limit && wait > 100)
			wait = 100; /* look for the file now and then */
		if (wait < 0)
			wait = 0;
		rc = poll(&p, 1, (int)wait);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, sizeof(why), "poll: %s", strerror(errno));
			return stream_fail(why, sent, recvd);
		}
		now = now_ms();
		if (rc == 0)
			p.revents = 0;
		if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
			ssize_t n = recv(fd, rbuf, bufsz, 0);

			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				snprintf(why, sizeof(why), "%s",
					 errno == ECONNRESET ? "reset" : strerror(errno));
				return stream_fail(why, sent, recvd);
			}
			if (n == 0) {
				if (recvd < limit)
					return stream_fail("closed early", sent, recvd);
				break; /* EOF after the full echo: done */
			}
			if (n > 0) {
				if (recvd + (uint64_t)n > sent)
					return stream_fail("more echoed than sent", sent,
							   recvd + (uint64_t)n);
				pattern(o->seed, recvd, ebuf, (size_t)n);
				if (memcmp(rbuf, ebuf, (size_t)n)) {
					size_t i = 0;

					while (rbuf[i] == ebuf[i])
						i++;
					snprintf(why, sizeof(why),
						 "mismatch at offset %" PRIu64 " expected 0x%02x got 0x%02x",
						 recvd + i, ebuf[i], rbuf[i]);
					return stream_fail(why, sent, recvd + i);
				}
				recvd += (uint64_t)n;
				last_progress = now;
			}
		}
		if ((p.revents & POLLOUT) && sent < limit) {
			ssize_t n;

			if (chunk_left == 0) {
				chunk_left = limit - sent < (uint64_t)o->chunk ? limit - sent
										  : (uint64_t)o->chunk;
			}
			pattern(o->seed, sent, sbuf, (size_t)chunk_left);
			n = send(fd, sbuf, (size_t)chunk_left, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				snprintf(why, sizeof(why), "%s",
					 errno == ECONNRESET || errno == EPIPE ? "reset"
									     : strerror(errno));
				return stream_fail(why, sent, recvd);
			}
			if (n > 0) {
				if (recvd == sent)
					last_progress = now; /* stall clock starts at the first byte */
				sent += (uint64_t)n;
				chunk_left -= (uint64_t)n;
				if (chunk_left == 0)
					next_send = now + o->interval_ms;
			}
		}
		/* Stalled: echo outstanding (or EOF awaited) and no progress. */
		if ((recvd < sent || shut) && now - last_progress >= o->timeout_ms)
			return stream_fail(shut && recvd == sent ? "timeout waiting for EOF"
								 : "timeout (stalled)",
					   sent, recvd);
	}
	close(fd);
	printf("OK bytes=%" PRIu64 "\n", recvd);
	fflush(stdout);
	return 0;
}

static int run_stream(const struct opts *o)
{
	const size_t bufsz = 64 * 1024;
	uint8_t *sbuf = malloc((size_t)o->chunk), *rbuf = malloc(bufsz), *ebuf = malloc(bufsz);
	int rc = 2;

	if (sbuf && rbuf && ebuf)
		rc = stream_loop(o, sbuf, rbuf, ebuf, bufsz);
	else
		fprintf(stderr, "peerc: out of memory\n");
	free(sbuf);
	free(rbuf);
	free(ebuf);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "bind", required_argument, NULL, 'b' },
		{ "sport", required_argument, NULL, 'p' },
		{ "sport-step", required_argument, NULL, 'S' },
		{ "bytes", required_argument, NULL, 'B' },
		{ "chunk", required_argument, NULL, 'k' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "seed", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = {
		.count = 1, .timeout_ms = -1, .chunk = 1024, .interval_ms = 10,
		.bytes = 1 << 20, .seed = 1,
	};
	bool is_ping, is_stream;
	int opt, npos;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "c:t:b:p:S:B:k:i:s:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c': o.count = (long)parse_num(optarg, "--count"); break;
		case 't': o.timeout_ms = (long)parse_num(optarg, "--timeout"); break;
		case 'b': o.bind = optarg; break;
		case 'p': o.sport = (long)parse_num(optarg, "--sport"); break;
		case 'S': o.sport_step = (long)parse_num(optarg, "--sport-step"); break;
		case 'B': o.bytes = parse_num(optarg, "--bytes"); break;
		case 'k': o.chunk = (long)parse_num(optarg, "--chunk"); break;
		case 'i': o.interval_ms = (long)parse_num(optarg, "--interval-ms"); break;
		case 's': o.seed = parse_num(optarg, "--seed"); break;
		case 'u': o.until = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	/* GNU getopt permutes: options may come before or after HOST PORT. */
	for (npos = optind; npos < argc; npos++) {
		if (!o.mode) o.mode = argv[npos];
		else if (!o.host) o.host = argv[npos];
		else if (!o.port) o.port = argv[npos];
		else { usage(stderr); return 2; }
	}
	if (!o.mode || !o.host) {
		usage(stderr);
		return 2;
	}
	is_ping = !strcmp(o.mode, "ping");
	is_stream = !strcmp(o.mode, "stream");
	if (!is_ping && !is_stream && strcmp(o.mode, "tcp") && strcmp(o.mode, "udp")) {
		usage(stderr);
		return 2;
	}
	if ((!is_ping && !o.port) || (is_ping && o.port) || o.count < 1 || o.chunk < 1 ||
	    o.sport < 0 || o.sport > 65535 || o.sport_step < 0 ||
	    o.sport + (o.count - 1) * o.sport_step > 65535) {
		usage(stderr);
		return 2;
	}
	if (o.timeout_ms < 0)
		o.timeout_ms = is_stream ? 5000 : 2000;
	if (!resolve(o.host, o.port ? o.port : "0",
		     !strcmp(o.mode, "udp") ? SOCK_DGRAM : SOCK_STREAM, &g_dst, &g_dstlen, AF_UNSPEC))
		return 2;
	if (o.bind && !resolve(o.bind, "0", SOCK_STREAM, &g_src, &g_srclen, g_dst.ss_family))
		return 2;
	return is_stream ? run_stream(&o) : run_simple(&o);
}
