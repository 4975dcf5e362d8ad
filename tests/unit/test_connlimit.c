// SPDX-License-Identifier: GPL-2.0-only
/*
 * Connection caps shared by the listeners (connlimit.h): a listener at its own
 * cap or at the total stops accepting, is counted as refused, and resumes in
 * turn as connections close; the total never exceeds max_total.  Two Unix
 * socket listeners in a temporary directory, clients in the test's thread.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "ops/connlimit.h"

struct lst {
	uv_pipe_t srv;
	struct connlimit_listener lim;
	uv_pipe_t *conns[16];
	int n;
	char path[108];
};

static void on_conn(uv_stream_t *srv, int status)
{
	struct lst *l = srv->data;
	uv_pipe_t *c;

	ck_assert_int_eq(status, 0);
	if (!connlimit_admit(&l->lim))
		return;
	c = calloc(1, sizeof(*c));
	uv_pipe_init(srv->loop, c, 0);
	ck_assert_int_eq(uv_accept(srv, (uv_stream_t *)c), 0);
	l->conns[l->n++] = c;
}

static void lst_open(uv_loop_t *loop, struct lst *l, const char *dir, const char *name)
{
	snprintf(l->path, sizeof(l->path), "%s/%s", dir, name);
	uv_pipe_init(loop, &l->srv, 0);
	l->srv.data = l;
	connlimit_listener_init(&l->lim, (uv_stream_t *)&l->srv, true);
	ck_assert_int_eq(uv_pipe_bind(&l->srv, l->path), 0);
	ck_assert_int_eq(uv_listen((uv_stream_t *)&l->srv, 16, on_conn), 0);
}

static int client(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void spin(uv_loop_t *loop)
{
	for (int i = 0; i < 20; i++)
		uv_run(loop, UV_RUN_NOWAIT);
}

/* What the listeners' connection close does: the handle, then the slot. */
static void drop_one(struct lst *l)
{
	uv_pipe_t *c = l->conns[--l->n];

	uv_close((uv_handle_t *)c, (uv_close_cb)free);
	connlimit_release(&l->lim);
}

START_TEST(caps_pause_and_resume)
{
	struct connlimit_cfg cfg = {.max_total = 3, .max_per_listener = 2, .timeout_ms = 1000};
	char dir[] = "/tmp/bctl-connlimit-XXXXXX";
	struct lst a = {0}, b = {0};
	uv_loop_t loop;
	uint64_t refused0 = connlimit_refused();
	int fds[8];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	uv_loop_init(&loop);
	connlimit_set(&cfg);
	ck_assert_uint_eq(connlimit_get()->max_total, 3);
	lst_open(&loop, &a, dir, "a");
	lst_open(&loop, &b, dir, "b");

	/* a: 4 clients, 2 accepted (its own cap), the rest wait */
	for (int i = 0; i < 4; i++)
		fds[i] = client(a.path);
	spin(&loop);
	ck_assert_int_eq(a.n, 2);
	/* b: 2 clients, 1 accepted (the total of 3) */
	fds[4] = client(b.path);
	fds[5] = client(b.path);
	spin(&loop);
	ck_assert_int_eq(b.n, 1);
	ck_assert_uint_eq(connlimit_total(), 3);
	ck_assert_uint_ge(connlimit_refused() - refused0, 2);

	/* a slot of a frees: a (paused first, for its own cap) takes it back */
	drop_one(&a);
	spin(&loop);
	ck_assert_int_eq(a.n, 2);
	ck_assert_int_eq(b.n, 1);
	/* b frees one: total room again, b's waiting client is accepted */
	drop_one(&b);
	spin(&loop);
	ck_assert_int_eq(b.n, 1);
	ck_assert_uint_eq(connlimit_total(), 3);
	/* raising the cap at reload does not accept by itself; the next close does */
	cfg.max_total = 10;
	cfg.max_per_listener = 10;
	connlimit_set(&cfg);
	drop_one(&a);
	spin(&loop);
	ck_assert_int_eq(a.n, 2); /* its fourth client, the last one waiting */
	ck_assert_int_eq(b.n, 1);

	for (int i = 0; i < 6; i++)
		close(fds[i]);
	connlimit_listener_close(&a.lim);
	connlimit_listener_close(&b.lim);
	while (a.n)
		drop_one(&a);
	while (b.n)
		drop_one(&b);
	uv_close((uv_handle_t *)&a.srv, NULL);
	uv_close((uv_handle_t *)&b.srv, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_uint_eq(connlimit_total(), 0);
	uv_loop_close(&loop);
	unlink(a.path);
	unlink(b.path);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("connlimit");
	TCase *tc = tcase_create("caps");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, caps_pause_and_resume);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
