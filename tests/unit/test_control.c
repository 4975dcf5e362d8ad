// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control protocol (core/ops/control.h) through control_dispatch() on the
 * commands the daemon registers (daemon_ops_register): framing errors, unknown
 * commands and bad arguments get error replies; the handlers answer from a
 * daemon without state, and, on pinned test maps, the service commands change
 * the service state only when the request is valid.
 */
#include <arpa/inet.h>
#include <check.h>
#include <json-c/json.h>

#include "daemon.h"
#include "daemon_ops.h"
#include "ops/control.h"
#include "svc_fixture.h"

static struct bpflb_daemon d;

/* The daemon's registries on d as it is now, as daemon_start makes them. */
static void ops_setup(void)
{
	struct bpflb_err err = {""};

	ck_assert_msg(!daemon_ops_register(&d, &err), "register: %s", err.msg);
}

static void ops_teardown(void)
{
	daemon_ops_close(&d);
}

/* Dispatch req; the parsed reply (put it). */
static json_object *call(const char *req)
{
	char *line = control_dispatch(d.control, NULL, req, strlen(req));
	json_object *r;

	ck_assert_ptr_nonnull(line);
	ck_assert_msg(!strchr(line, '\n'), "reply spans lines: %s", line);
	r = json_tokener_parse(line);
	ck_assert_msg(r, "reply is not JSON: %s", line);
	free(line);
	return r;
}

static bool reply_ok(json_object *r)
{
	json_object *ok;

	ck_assert(json_object_object_get_ex(r, "ok", &ok));
	return json_object_get_boolean(ok);
}

static const char *reply_error(json_object *r)
{
	json_object *e;

	return json_object_object_get_ex(r, "error", &e) ? json_object_get_string(e) : "";
}

static void expect_error(const char *req, const char *text)
{
	json_object *r = call(req);

	ck_assert_msg(!reply_ok(r), "%s: accepted", req);
	ck_assert_msg(strstr(reply_error(r), text), "%s: error '%s' lacks '%s'", req,
		      reply_error(r), text);
	json_object_put(r);
}

static json_object *data_of(json_object *r)
{
	json_object *v = NULL;

	ck_assert_msg(reply_ok(r), "error reply: %s", reply_error(r));
	json_object_object_get_ex(r, "data", &v);
	return v;
}

START_TEST(test_framing_errors)
{
	expect_error("", "malformed request");
	expect_error("not json", "malformed request");
	expect_error("{\"cmd\":\"status\"", "malformed request");
	expect_error("[1,2]", "expected a JSON object");
	expect_error("\"status\"", "expected a JSON object");
	expect_error("{}", "\"cmd\"");
	expect_error("{\"cmd\":42}", "\"cmd\"");
	expect_error("{\"cmd\":\"status\"} {\"cmd\":\"status\"}", "text after the JSON object");
	expect_error("{\"cmd\":\"frobnicate\"}", "unknown command 'frobnicate'");
	expect_error("{\"cmd\":\"status\",\"args\":[1]}", "\"args\" must be an object");
	{
		const char nul[] = "{\"cmd\":\"st\0atus\"}";
		char *line = control_dispatch(d.control, NULL, nul, sizeof(nul) - 1);

		ck_assert_ptr_nonnull(strstr(line, "NUL byte"));
		free(line);
	}
}
END_TEST

START_TEST(test_arguments)
{
	expect_error("{\"cmd\":\"service.get\"}", "argument 'name' is required");
	expect_error("{\"cmd\":\"service.get\",\"args\":{\"name\":7}}", "must be a string");
	expect_error("{\"cmd\":\"maglev.show\",\"args\":{}}", "argument 'service' is required");
	expect_error("{\"cmd\":\"observe\",\"args\":{\"last\":-1}}", "argument 'last' must be");
	expect_error("{\"cmd\":\"observe\",\"args\":{\"follow\":\"yes\"}}", "true or false");
	expect_error("{\"cmd\":\"ct.list\",\"args\":{\"addr\":\"10.0.0\"}}",
		     "service state is not open");
	expect_error("{\"cmd\":\"backend.set-state\",\"args\":{\"addr\":\"10.0.0.1\"}}",
		     "argument 'state' is required");
	expect_error("{\"cmd\":\"reload\"}", "not running a configuration");
}
END_TEST

START_TEST(test_handlers_without_state)
{
	json_object *r, *data, *v;

	r = call("{\"cmd\":\"status\",\"id\":17}");
	data = data_of(r);
	ck_assert(json_object_object_get_ex(data, "mode", &v));
	ck_assert_str_eq(json_object_get_string(v), "none");
	ck_assert(json_object_object_get_ex(r, "id", &v));
	ck_assert_int_eq(json_object_get_int(v), 17);
	json_object_put(r);

	r = call("{\"cmd\":\"plugin.list\"}");
	ck_assert_int_eq(json_object_array_length(data_of(r)), 0);
	json_object_put(r);
	r = call("{\"cmd\":\"service.list\",\"args\":null}");
	ck_assert_int_eq(json_object_array_length(data_of(r)), 0);
	json_object_put(r);

	/* every command of the single table the core had before owners registered theirs */
	r = call("{\"cmd\":\"help\"}");
	data = data_of(r);
	{
		static const char *const names[] = {
		    "status",	     "plugin.list",    "service.list",	    "service.get",
		    "backend.list",  "ct.list",	       "ct.flush",	    "nat.list",
		    "maglev.show",   "service.set",    "service.delete",    "backend.set-state",
		    "overlay.list",  "overlay.clear",  "reload",	    "observe",
		    "help",
		};
		size_t i = 0;

		ck_assert_uint_eq(json_object_object_length(data),
				  sizeof(names) / sizeof(names[0]));
		json_object_object_foreach(data, name, help)
		{
			ck_assert_str_eq(name, names[i++]);
			ck_assert(json_object_get_string_len(help) > 0);
		}
	}
	json_object_put(r);
}
END_TEST

/* --- on pinned maps ------------------------------------------------------------- */

static struct fx_maps fx;
static bool have_bpf;

static void maps_setup(void)
{
	struct bpflb_err err = {""};
	struct bpflb_config *cfg;

	memset(&d, 0, sizeof(d));
	have_bpf = fx_bpf_available() && !fx_maps_create(&fx);
	if (!have_bpf) {
		ops_setup();
		return;
	}
	ck_assert_msg(!bpflb_services_open(fx.root, NULL, &d.services, &err), "open: %s", err.msg);
	cfg = fx_config("[daemon]\ndevices = lo\n[node]\nname = n1\naddress = 10.0.0.1\n"
			"[cluster-node n2]\naddress = 10.0.0.2\n"
			"[service web]\ntype = nodeport\nport = http tcp 80 nodeport=30080\n"
			"backend = 10.1.0.1 node=n1\nbackend = 10.1.0.2 node=n2\n",
			&err);
	ck_assert_msg(cfg, "%s", err.msg);
	ck_assert_msg(!bpflb_services_apply(d.services, cfg, &err), "apply: %s", err.msg);
	bpflb_config_free(cfg);
	ops_setup();
}

static void maps_teardown(void)
{
	ops_teardown();
	if (d.services)
		bpflb_services_close(d.services);
	d.services = NULL;
	if (have_bpf)
		fx_maps_destroy(&fx);
}

static size_t nfrontends(void)
{
	return fx_map_count(&fx, "bpflb_svc");
}

START_TEST(test_service_commands)
{
	json_object *r, *data, *v;
	size_t before;

	if (!have_bpf)
		return;
	before = nfrontends();
	ck_assert_uint_eq(before, 1);

	r = call("{\"cmd\":\"service.get\",\"args\":{\"name\":\"web\"}}");
	data = data_of(r);
	ck_assert(json_object_object_get_ex(data, "origin", &v));
	ck_assert_str_eq(json_object_get_string(v), "config");
	json_object_put(r);
	expect_error("{\"cmd\":\"service.get\",\"args\":{\"name\":\"nope\"}}", "no service 'nope'");

	/* invalid runtime services change nothing */
	expect_error("{\"cmd\":\"service.set\",\"args\":{\"name\":\"x\"}}", "'lines'");
	expect_error("{\"cmd\":\"service.set\",\"args\":{\"name\":\"x\",\"lines\":"
		     "[\"type = nodeport\",\"port = http tcp 80 nodeport=30080\"]}}",
		     "30080");
	expect_error("{\"cmd\":\"service.set\",\"args\":{\"name\":\"x\",\"lines\":"
		     "[\"type = nodeport\",\"[service y]\"]}}",
		     "not a \"key = value\" line");
	expect_error("{\"cmd\":\"service.set\",\"args\":{\"name\":\"x\",\"lines\":"
		     "[\"type = nodeport\",\"port = http tcp 80 nodeport=30081\","
		     "\"backend = 10.1.0.9 node=n9\"]}}",
		     "node 'n9' is unknown");
	ck_assert_uint_eq(nfrontends(), before);

	r = call("{\"cmd\":\"service.set\",\"args\":{\"name\":\"x\",\"lines\":"
		 "[\"type = nodeport\",\"port = http tcp 80 nodeport=30081\","
		 "\"backend = 10.1.0.2 node=n2\"]}}");
	data = data_of(r);
	ck_assert(json_object_object_get_ex(data, "origin", &v));
	ck_assert_str_eq(json_object_get_string(v), "overlay");
	json_object_put(r);
	ck_assert_uint_eq(nfrontends(), before + 1);

	expect_error("{\"cmd\":\"service.delete\",\"args\":{\"name\":\"nope\"}}", "no service");
	r = call("{\"cmd\":\"service.delete\",\"args\":{\"name\":\"web\"}}");
	data_of(r);
	json_object_put(r);
	ck_assert_uint_eq(nfrontends(), before);

	r = call("{\"cmd\":\"status\"}");
	data = data_of(r);
	ck_assert(json_object_object_get_ex(data, "runtime", &v));
	ck_assert_str_eq(json_object_to_json_string_ext(json_object_object_get(v, "services"),
							JSON_C_TO_STRING_PLAIN),
			 "[{\"name\":\"x\",\"change\":\"set\"},{\"name\":\"web\",\"change\":"
			 "\"deleted\"}]");
	json_object_put(r);
}
END_TEST

START_TEST(test_backend_state)
{
	json_object *r;
	uint32_t id;
	struct bpflb_backend be;

	if (!have_bpf)
		return;
	expect_error("{\"cmd\":\"backend.set-state\",\"args\":{\"addr\":\"10.1.0.1\","
		     "\"state\":\"asleep\"}}",
		     "is not active");
	expect_error("{\"cmd\":\"backend.set-state\",\"args\":{\"addr\":\"10.9.9.9\","
		     "\"state\":\"maintenance\"}}",
		     "no backend");
	r = call("{\"cmd\":\"backend.set-state\",\"args\":{\"addr\":\"10.1.0.1\","
		 "\"port\":80,\"state\":\"maintenance\"}}");
	data_of(r);
	json_object_put(r);
	id = bpflb_services_backend_id(d.services, inet_addr("10.1.0.1"), 80);
	ck_assert_uint_ne(id, 0);
	ck_assert(bpflb_services_backend_get(d.services, id, &be));
	ck_assert_uint_eq(be.state, BPFLB_BE_MAINTENANCE);
	r = call("{\"cmd\":\"backend.set-state\",\"args\":{\"addr\":\"10.1.0.1\","
		 "\"port\":80,\"state\":\"configured\"}}");
	data_of(r);
	json_object_put(r);
	ck_assert(bpflb_services_backend_get(d.services, id, &be));
	ck_assert_uint_eq(be.state, BPFLB_BE_ACTIVE);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tp = tcase_create("protocol"), *tm = tcase_create("maps");

	tcase_add_checked_fixture(tp, ops_setup, ops_teardown);
	tcase_add_test(tp, test_framing_errors);
	tcase_add_test(tp, test_arguments);
	tcase_add_test(tp, test_handlers_without_state);
	suite_add_tcase(s, tp);
	tcase_add_checked_fixture(tm, maps_setup, maps_teardown);
	tcase_add_test(tm, test_service_commands);
	tcase_add_test(tm, test_backend_state);
	suite_add_tcase(s, tm);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(control_suite());
	int failed;

	fx_cleanup_run();
	srunner_run_all(sr, CK_NORMAL);
	fx_cleanup_run();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
