// SPDX-License-Identifier: GPL-2.0-only
/*
 * peerd: the backend server of the end-to-end tests.
 *
 *   peerd --name NAME [--tcp PORT[,PORT..]]... [--udp PORT[,PORT..]]...
 *         [--bind ADDR] [--verbose]
 *
 * Every TCP connection and every UDP datagram is answered with one line
 *
 *   NAME <peer-ip>:<peer-port> <local-ip>:<local-port>\n
 *
 * so a test sees which backend answered, which source address the backend
 * saw (SNAT or not) and which address it was reached at (DNAT or not).
 * IPv6 addresses are written as [addr]:port.
 *
 * TCP: after the line, everything the client sends is echoed back until the
 * client closes (then peerd flushes and closes too), so long-lived streams
 * can be verified byte for byte.  One epoll loop, no threads, any number of
 * concurrent connections (RLIMIT_NOFILE is raised to its hard limit).
 *
 * UDP: the reply leaves from the address the datagram was sent to (IP_PKTINFO),
 * even when bound to the wildcard address.
 *
 * When every socket is bound, "READY" is written to stdout (and flushed), so
 * a wrapper can wait for it.  SIGINT/SIGTERM end peerd with status 0.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 64
#define BUF_SIZE (64 * 1024)
#define ADDR_STR 64

enum kind { K_TCP_LISTEN, K_UDP, K_CONN };

struct item {
	enum kind kind;
	int fd;
	/* K_CONN only: pending output buf[off..len), set once EOF was read. */
	char *buf;
	size_t len, off;
	bool eof;
	bool want_out; /* current epoll interest is EPOLLOUT, not EPOLLIN */
	char peer[ADDR_STR];
	struct item *prev, *next; /* K_CONN: the open connections, closed at exit */
};

static struct item *g_conns;

static const char *g_name = "peerd";
static bool g_verbose;
static int g_epfd;
static volatile sig_atomic_t g_stop;
static unsigned long g_nconn, g_nudp;
static struct item *g_socks[2 * MAX_PORTS];
static int g_nsocks;

static void logmsg(const char *fmt, ...)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld peerd[%s]: ", ts, now.tv_nsec / 1000000, g_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "peerd[%s]: ", g_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: peerd --name NAME [--tcp PORT[,PORT..]] [--udp PORT[,PORT..]]\n"
		"             [--bind ADDR] [--verbose]\n"
		"Answers every TCP connection / UDP datagram with\n"
		"  NAME <peer-ip>:<peer-port> <local-ip>:<local-port>\n"
		"then echoes TCP data until the client closes.\n");
}

static void fmt_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(out, outlen, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(out, outlen, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(out, outlen, "?:0");
	}
}

static void add_ports(int *ports, int *n, char *list)
{
	char *save = NULL;

	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		long p = strtol(tok, &end, 10);

		if (*tok == '\0' || *end != '\0' || p <= 0 || p > 65535)
			die("bad port '%s'", tok);
		if (*n >= MAX_PORTS)
			die("too many ports");
		ports[(*n)++] = (int)p;
	}
}

static void parse_bind(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *sin6 = (void *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
			die("bad --bind address '%s'", addr);
		*len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
			die("bad --bind address '%s'", addr);
		*len = sizeof(*sin);
	}
}

static struct item *new_item(enum kind kind, int fd)
{
	struct item *it = calloc(1, sizeof(*it));

	if (!it)
		die("out of memory");
	it->kind = kind;
	it->fd = fd;
	return it;
}

static void ep_add(struct item *it, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = it };

	if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, it->fd, &ev) < 0)
		die("epoll_ctl add: %s", strerror(errno));
}

static void open_socket(int type, const char *bind_addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd;

	parse_bind(bind_addr, port, &ss, &len);
	fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	} else {
		/* Allows binding an address (e.g. a VIP) that is not configured yet. */
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	}
	if (type == SOCK_DGRAM) {
		if (ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		else
			setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		die("bind %s %s port %d: %s", type == SOCK_STREAM ? "tcp" : "udp", bind_addr, port,
		    strerror(errno));
	if (type == SOCK_STREAM && listen(fd, 4096) < 0)
		die("listen: %s", strerror(errno));
	g_socks[g_nsocks] = new_item(type == SOCK_STREAM ? K_TCP_LISTEN : K_UDP, fd);
	ep_add(g_socks[g_nsocks++], EPOLLIN);
}

static void conn_close(struct item *c, const char *why)
{
	if (g_verbose)
		logmsg("tcp %s closed (%s)", c->peer, why);
	if (c->prev)
		c->prev->next = c->next;
	else
		g_conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->buf);
	free(c);
}

static void conn_interest(struct item *c, bool want_out)
{
	struct epoll_event ev = { .events = want_out ? EPOLLOUT : EPOLLIN, .data.ptr = c };

	if (c->want_out == want_out)
		return;
	c->want_out = want_out;
	if (epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl mod: %s", strerror(errno));
}

/* Writes pending output.  Returns false when the connection was closed. */
static bool conn_flush(struct item *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_interest(c, true);
				return true;
			}
			conn_close(c, strerror(errno));
			return false;
		}
		c->off += (size_t)n;
	}
	c->off = c->len = 0;
	if (c->eof) {
		conn_close(c, "eof");
		return false;
	}
	conn_interest(c, false);
	return true;
}

static void conn_read(struct item *c)
{
	/* Level triggered: read one buffer, echo it, come back for more. */
	ssize_t n = recv(c->fd, c->buf, BUF_SIZE, 0);

	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		conn_close(c, strerror(errno));
		return;
	}
	if (n == 0) {
		c->eof = true;
		conn_flush(c);
		return;
	}
	c->off = 0;
	c->len = (size_t)n;
	conn_flush(c);
}

static void tcp_accept(struct item *l)
{
	for (;;) {
		struct sockaddr_storage peer, local;
		socklen_t plen = sizeof(peer), llen = sizeof(local);
		char lstr[ADDR_STR];
		struct item *c;
		int one = 1;
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				logmsg("accept: %s", strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		getsockname(fd, (struct sockaddr *)&local, &llen);
		c = new_item(K_CONN, fd);
		c->next = g_conns;
		if (g_conns)
			g_conns->prev = c;
		g_conns = c;
		c->buf = malloc(BUF_SIZE);
		if (!c->buf)
			die("out of memory");
		fmt_addr(&peer, c->peer, sizeof(c->peer));
		fmt_addr(&local, lstr, sizeof(lstr));
		c->len = (size_t)snprintf(c->buf, BUF_SIZE, "%s %s %s\n", g_name, c->peer, lstr);
		c->off = 0;
		g_nconn++;
		if (g_verbose)
			logmsg("tcp %s -> %s accepted", c->peer, lstr);
		ep_add(c, EPOLLIN);
		conn_flush(c);
	}
}

static void udp_serve(struct item *u)
{
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);

	getsockname(u->fd, (struct sockaddr *)&bound, &blen);
	for (;;) {
		char data[2048], cbuf[256], reply[256], pstr[ADDR_STR], lstr[ADDR_STR];
		struct sockaddr_storage peer, local = bound;
		struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
		struct msghdr msg = {
			.msg_name = &peer, .msg_namelen = sizeof(peer),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
			struct cmsghdr align;
		} out;
		struct msghdr rmsg = { 0 };
		ssize_t n = recvmsg(u->fd, &msg, 0);
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				logmsg("udp recvmsg: %s", strerror(errno));
			return;
		}
		memset(&out, 0, sizeof(out));
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				struct sockaddr_in *sin = (void *)&local;
				struct in_pktinfo *opi;
				struct cmsghdr *oc;

				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				sin->sin_addr = pi.ipi_addr;
				rmsg.msg_control = out.buf;
				rmsg.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
				oc = CMSG_FIRSTHDR(&rmsg);
				oc->cmsg_level = IPPROTO_IP;
				oc->cmsg_type = IP_PKTINFO;
				oc->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
				opi = (struct in_pktinfo *)CMSG_DATA(oc);
				opi->ipi_spec_dst = pi.ipi_addr;
			} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;
				struct sockaddr_in6 *sin6 = (void *)&local;
				struct in6_pktinfo *opi;
				struct cmsghdr *oc;

				memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
				sin6->sin6_addr = pi.ipi6_addr;
				rmsg.msg_control = out.buf;
				rmsg.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
				oc = CMSG_FIRSTHDR(&rmsg);
				oc->cmsg_level = IPPROTO_IPV6;
				oc->cmsg_type = IPV6_PKTINFO;
				oc->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
				opi = (struct in6_pktinfo *)CMSG_DATA(oc);
				opi->ipi6_addr = pi.ipi6_addr;
			}
		}
		fmt_addr(&peer, pstr, sizeof(pstr));
		fmt_addr(&local, lstr, sizeof(lstr));
		len = snprintf(reply, sizeof(reply), "%s %s %s\n", g_name, pstr, lstr);
		iov.iov_base = reply;
		iov.iov_len = (size_t)len;
		rmsg.msg_name = &peer;
		rmsg.msg_namelen = msg.msg_namelen;
		rmsg.msg_iov = &iov;
		rmsg.msg_iovlen = 1;
		g_nudp++;
		if (g_verbose)
			logmsg("udp %s -> %s %zd bytes", pstr, lstr, n);
		if (sendmsg(u->fd, &rmsg, MSG_NOSIGNAL) < 0)
			logmsg("udp sendmsg to %s: %s", pstr, strerror(errno));
	}
}

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", required_argument, NULL, 't' },
		{ "udp", required_argument, NULL, 'u' },
		{ "name", required_argument, NULL, 'n' },
		{ "bind", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int tcp[MAX_PORTS], udp[MAX_PORTS], ntcp = 0, nudp = 0, opt;
	const char *bind_addr = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, orig;
	struct rlimit rl;

	while ((opt = getopt_long(argc, argv, "t:u:n:b:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 't': add_ports(tcp, &ntcp, optarg); break;
		case 'u': add_ports(udp, &nudp, optarg); break;
		case 'n': g_name = optarg; break;
		case 'b': bind_addr = optarg; break;
		case 'v': g_verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (ntcp == 0 && nudp == 0)) {
		usage(stderr);
		return 2;
	}
	if (strpbrk(g_name, " \n"))
		die("--name must not contain blanks");
	if (!bind_addr)
		bind_addr = "0.0.0.0";

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* Signals are only delivered inside epoll_pwait: no lost wake-ups. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);

	g_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g_epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	for (int i = 0; i < ntcp; i++)
		open_socket(SOCK_STREAM, bind_addr, tcp[i]);
	for (int i = 0; i < nudp; i++)
		open_socket(SOCK_DGRAM, bind_addr, udp[i]);

	logmsg("listening on %s (%d tcp, %d udp ports)", bind_addr, ntcp, nudp);
	printf("READY\n");
	fflush(stdout);

	while (!g_stop) {
		struct epoll_event evs[64];
		int n = epoll_pwait(g_epfd, evs, 64, -1, &orig);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct item *it = evs[i].data.ptr;

			switch (it->kind) {
			case K_TCP_LISTEN:
				tcp_accept(it);
				break;
			case K_UDP:
				udp_serve(it);
				break;
			case K_CONN:
				if (it->want_out)
					conn_flush(it);
				else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
					conn_read(it);
				break;
			}
		}
	}
	logmsg("exiting: %lu tcp connections, %lu udp datagrams served", g_nconn, g_nudp);
	/* stopped with connections open (a test's stream): close them, free all */
	while (g_conns)
		conn_close(g_conns, "exiting");
	for (int i = 0; i < g_nsocks; i++) {
		close(g_socks[i]->fd);
		free(g_socks[i]);
	}
	return 0;
}
