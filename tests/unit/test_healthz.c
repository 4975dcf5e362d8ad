// SPDX-License-Identifier: GPL-2.0-only
/*
 * Health check node ports (served by ops/http.c, libmicrohttpd): kube-proxy's
 * answers, requests split over many reads, pipelined requests, HTTP/1.0, bad
 * requests, listeners following updates, a port already taken, and the
 * services apply driving it all.
 *
 * The server runs on a libuv loop in the test's thread; a client thread with
 * blocking sockets talks to it and stops the loop when done.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "lb/healthz.h"
#include "svc_fixture.h"

static uint32_t lo_addr(void)
{
	return htonl(INADDR_LOOPBACK);
}

/* A TCP port free right now on 127.0.0.1. */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

struct job {
	uint16_t port;
	const char *req;
	size_t chunk;	 /* send in pieces of this size (0: at once) */
	bool half_close; /* shutdown(SHUT_WR) after sending */
	char out[8192];
	size_t len;
	int connect_errno;
	bool eof; /* the server closed */
	uv_async_t *done;
};

static void *client(void *arg)
{
	struct job *j = arg;
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(j->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 3};
	size_t off = 0, n = strlen(j->req);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t r = -1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		j->connect_errno = errno;
		goto out;
	}
	while (off < n) {
		size_t c = j->chunk && j->chunk < n - off ? j->chunk : n - off;

		if (send(fd, j->req + off, c, MSG_NOSIGNAL) < 0)
			break;
		off += c;
		if (j->chunk) {
			struct timespec ts = {0, 2000000};

			nanosleep(&ts, NULL);
		}
	}
	if (j->half_close)
		shutdown(fd, SHUT_WR);
	while (j->len < sizeof(j->out) - 1 &&
	       (r = recv(fd, j->out + j->len, sizeof(j->out) - 1 - j->len, 0)) > 0)
		j->len += (size_t)r;
	j->eof = r == 0;
	j->out[j->len] = '\0';
out:
	close(fd);
	uv_async_send(j->done);
	return NULL;
}

static void stop_loop(uv_async_t *a)
{
	uv_stop(a->loop);
}

static uv_loop_t loop;
static uv_async_t done;

static void loop_setup(void)
{
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(uv_async_init(&loop, &done, stop_loop), 0);
}

static void loop_teardown(void)
{
	uv_close((uv_handle_t *)&done, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
}

/* Run the client against the server on the loop; returns its job. */
static void run(struct job *j)
{
	pthread_t t;

	j->done = &done;
	ck_assert_int_eq(pthread_create(&t, NULL, client, j), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	pthread_join(t, NULL);
}

static unsigned int count(const char *hay, const char *needle)
{
	unsigned int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static struct bpflb_healthz *server(uint16_t port, uint32_t local)
{
	struct bpflb_healthz_svc v = {"prod", "shop", lo_addr(), port, local};
	struct bpflb_err err = {{0}};
	struct bpflb_healthz *h;

	ck_assert_int_eq(bpflb_healthz_new(&loop, &h), 0);
	ck_assert_msg(!bpflb_healthz_update(h, &v, 1, &err), "%s", err.msg);
	return h;
}

START_TEST(test_healthy)
{
	uint16_t port = free_port();
	struct bpflb_healthz *h = server(port, 2);
	struct job j = {
	    .port = port, .req = "GET / HTTP/1.1\r\nHost: node\r\n\r\n", .half_close = true};
	static const char body[] = "{\"service\":{\"namespace\":\"prod\",\"name\":\"shop\"},"
				   "\"localEndpoints\":2,\"serviceProxyHealthy\":true}";
	char clen[64];

	run(&j);
	ck_assert_msg(!strncmp(j.out, "HTTP/1.1 200 OK\r\n", 17), "%s", j.out);
	ck_assert_ptr_nonnull(strstr(j.out, "\r\nContent-Type: application/json\r\n"));
	ck_assert_ptr_nonnull(strstr(j.out, "\r\nX-Content-Type-Options: nosniff\r\n"));
	snprintf(clen, sizeof(clen), "\r\nContent-Length: %zu\r\n", strlen(body));
	ck_assert_ptr_nonnull(strstr(j.out, clen));
	ck_assert_ptr_nonnull(strstr(j.out, "\r\n\r\n"));
	ck_assert_str_eq(strstr(j.out, "\r\n\r\n") + 4, body);
	bpflb_healthz_free(h);
}
END_TEST

START_TEST(test_unhealthy)
{
	uint16_t port = free_port();
	struct bpflb_healthz *h = server(port, 0);
	struct job j = {.port = port, .req = "GET /healthz HTTP/1.1\r\n\r\n", .half_close = true};

	run(&j);
	ck_assert_msg(!strncmp(j.out, "HTTP/1.1 503 Service Unavailable\r\n", 34), "%s", j.out);
	ck_assert_ptr_nonnull(strstr(j.out, "\"localEndpoints\":0,\"serviceProxyHealthy\":true}"));
	bpflb_healthz_free(h);
}
END_TEST

/* One byte per read, and two requests pipelined in one send. */
START_TEST(test_partial_and_pipelined)
{
	uint16_t port = free_port();
	struct bpflb_healthz *h = server(port, 1);
	struct job j1 = {.port = port,
			 .req = "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\n\r\n",
			 .chunk = 1,
			 .half_close = true};
	struct job j2 = {.port = port,
			 .req =
			     "GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\n\r\n"
			     "GET /x HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n"};

	run(&j1);
	ck_assert_uint_eq(count(j1.out, "HTTP/1.1 200 OK"), 1);
	/* three answers; the fourth request comes after "Connection: close" */
	run(&j2);
	ck_assert_msg(count(j2.out, "HTTP/1.1 200 OK") == 3, "%s", j2.out);
	ck_assert_uint_eq(count(j2.out, "\"localEndpoints\":1"), 2); /* HEAD: no body */
	ck_assert_uint_eq(count(j2.out, "Connection: close"), 1);
	ck_assert(j2.eof);
	bpflb_healthz_free(h);
}
END_TEST

START_TEST(test_http10_and_errors)
{
	uint16_t port = free_port();
	struct bpflb_healthz *h = server(port, 1);
	struct job j1 = {.port = port, .req = "GET / HTTP/1.0\r\n\r\n"};
	struct job j2 = {.port = port, .req = "BLAH\r\n\r\n"};
	struct job j3 = {.port = port,
			 .req = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
				"GET / HTTP/1.1\r\n\r\n",
			 .half_close = true};
	struct job j4 = {.port = port,
			 .req = "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"};

	/* HTTP/1.0 without keep-alive: answered and closed by the server */
	run(&j1);
	ck_assert_msg(!strncmp(j1.out, "HTTP/1.1 200 OK\r\n", 17), "%s", j1.out);
	ck_assert_ptr_nonnull(strstr(j1.out, "Connection: close\r\n"));
	ck_assert(j1.eof);
	/* not HTTP: libmicrohttpd closes without an answer */
	run(&j2);
	ck_assert_msg(!strstr(j2.out, "200 OK"), "%s", j2.out);
	ck_assert(j2.eof);
	/* the body of the refused POST is skipped, the next request served */
	run(&j3);
	ck_assert_msg(!strncmp(j3.out, "HTTP/1.1 405 Method Not Allowed\r\n", 33), "%s", j3.out);
	ck_assert_ptr_nonnull(strstr(j3.out, "Allow: GET, HEAD\r\n"));
	ck_assert_uint_eq(count(j3.out, "HTTP/1.1 200 OK"), 1);
	/* a malformed chunked body: 400, closed */
	run(&j4);
	ck_assert_msg(!strncmp(j4.out, "HTTP/1.1 400", 12), "%s", j4.out);
	ck_assert(j4.eof);
	bpflb_healthz_free(h);
}
END_TEST

START_TEST(test_head_too_large)
{
	uint16_t port = free_port();
	struct bpflb_healthz *h = server(port, 1);
	static char big[12000];
	struct job j = {.port = port, .req = big};

	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	memset(big + 19, 'a', sizeof(big) - 20);
	run(&j);
	ck_assert_msg(!strncmp(j.out, "HTTP/1.1 431", 12), "%s", j.out);
	bpflb_healthz_free(h);
}
END_TEST

START_TEST(test_update)
{
	uint16_t p1 = free_port(), p2 = free_port();
	struct bpflb_healthz_svc v[2] = {{"default", "a", lo_addr(), p1, 1},
					 {"default", "b", lo_addr(), p2, 0}};
	struct bpflb_err err = {{0}};
	struct bpflb_healthz *h;
	struct job j;
	int busy;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	ck_assert_int_eq(bpflb_healthz_new(&loop, &h), 0);
	ck_assert(!bpflb_healthz_update(h, v, 2, &err));
	ck_assert_uint_eq(bpflb_healthz_count(h), 2);
	j = (struct job){.port = p2, .req = "GET / HTTP/1.1\r\n\r\n", .half_close = true};
	run(&j);
	ck_assert_ptr_nonnull(strstr(j.out, "503"));
	ck_assert_ptr_nonnull(strstr(j.out, "\"name\":\"b\""));

	/* b gains an endpoint, a goes away */
	v[1].local_endpoints = 3;
	ck_assert(!bpflb_healthz_update(h, &v[1], 1, &err));
	ck_assert_uint_eq(bpflb_healthz_count(h), 1);
	j = (struct job){.port = p2, .req = "GET / HTTP/1.1\r\n\r\n", .half_close = true};
	run(&j);
	ck_assert_ptr_nonnull(strstr(j.out, "\"localEndpoints\":3"));
	uv_run(&loop, UV_RUN_NOWAIT); /* close callbacks */
	j = (struct job){.port = p1, .req = "GET / HTTP/1.1\r\n\r\n"};
	run(&j);
	ck_assert_int_eq(j.connect_errno, ECONNREFUSED);

	/* a port someone else listens on: refused, and nothing else changes */
	busy = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_port = htons(p1);
	ck_assert_int_eq(bind(busy, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(busy, 1), 0);
	v[1].local_endpoints = 5;
	ck_assert_int_ne(bpflb_healthz_update(h, v, 2, &err), 0);
	ck_assert_msg(strstr(err.msg, "cannot serve the health check of service default/a on "
				      "127.0.0.1:"),
		      "%s", err.msg);
	ck_assert_uint_eq(bpflb_healthz_count(h), 1);
	j = (struct job){.port = p2, .req = "GET / HTTP/1.1\r\n\r\n", .half_close = true};
	run(&j);
	ck_assert_ptr_nonnull(strstr(j.out, "\"localEndpoints\":3"));
	close(busy);
	bpflb_healthz_free(h);
}
END_TEST

/* The services apply starts, updates and stops the listeners. */
START_TEST(test_services_drive_healthz)
{
	struct bpflb_err err = {{0}};
	struct bpflb_services *s = NULL;
	struct bpflb_config *cfg;
	struct fx_maps fx;
	uint16_t port = free_port();
	char text[2048];
	struct job j;

	if (!fx_bpf_available() || fx_maps_create(&fx)) {
		fprintf(stderr, "test_healthz: no BPF maps (root?): skipping the services test\n");
		return;
	}
	ck_assert_msg(!bpflb_services_open(fx.root, &loop, &s, &err), "%s", err.msg);
	snprintf(text, sizeof(text),
		 "[daemon]\ndevices = lo\n[node]\nname = n1\naddress = 10.0.0.11\n"
		 "[cluster-node n2]\naddress = 10.0.0.12\n[lb]\nhealthz_bind = 127.0.0.1\n"
		 "nodeport_range = 1024-65000\nsnat_ports = 65001-65535\n"
		 "[service shop]\ntype = loadbalancer\nport = https tcp 443 target=8443\n"
		 "lb_ips = 203.0.113.10\nexternal_traffic_policy = local\n"
		 "health_check_node_port = %u\n"
		 "backend = 10.244.1.6 node=n1\nbackend = 10.244.1.7 node=n1 state=terminating\n"
		 "backend = 10.244.2.8 node=n2\n",
		 port);
	cfg = fx_config(text, &err);
	ck_assert_msg(cfg, "%s", err.msg);
	ck_assert_msg(!bpflb_services_apply(s, cfg, &err), "%s", err.msg);
	bpflb_config_free(cfg);

	j = (struct job){.port = port, .req = "GET / HTTP/1.1\r\n\r\n", .half_close = true};
	run(&j);
	ck_assert_msg(strstr(j.out, "{\"service\":{\"namespace\":\"default\",\"name\":\"shop\"},"
				    "\"localEndpoints\":1,"),
		      "%s", j.out);

	/* no local endpoint left: 503 */
	ck_assert(!bpflb_services_backend_set_state(s, htonl(0x0af40106), 0, BPFLB_BE_MAINTENANCE,
						    false, &err));
	j = (struct job){.port = port, .req = "GET / HTTP/1.1\r\n\r\n", .half_close = true};
	run(&j);
	ck_assert_msg(!strncmp(j.out, "HTTP/1.1 503", 12), "%s", j.out);

	bpflb_services_close(s);
	uv_run(&loop, UV_RUN_NOWAIT);
	j = (struct job){.port = port, .req = "GET / HTTP/1.1\r\n\r\n"};
	run(&j);
	ck_assert_int_eq(j.connect_errno, ECONNREFUSED);
	fx_maps_destroy(&fx);
}
END_TEST

static Suite *healthz_suite(void)
{
	Suite *s = suite_create("healthz");
	TCase *tc = tcase_create("http");

	tcase_add_checked_fixture(tc, loop_setup, loop_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_healthy);
	tcase_add_test(tc, test_unhealthy);
	tcase_add_test(tc, test_partial_and_pipelined);
	tcase_add_test(tc, test_http10_and_errors);
	tcase_add_test(tc, test_head_too_large);
	tcase_add_test(tc, test_update);
	tcase_add_test(tc, test_services_drive_healthz);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(healthz_suite());
	int failed;

	fx_cleanup_run();
	srunner_run_all(sr, CK_NORMAL);
	fx_cleanup_run();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
