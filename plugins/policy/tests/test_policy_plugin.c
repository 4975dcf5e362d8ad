// SPDX-License-Identifier: GPL-2.0-only
/*
 * The policy plugin as the daemon drives it: policy.so is loaded by the core's
 * loader, configured from INI files (the core's schema plus the plugin's), and
 * its hooks are called in the daemon's order: init, validate, apply, control,
 * tick, fini.  Checked: the inventory read from [node], [cluster-node],
 * [endpoint] and [policy]; refused configurations (file:line) that leave the
 * applied state alone; the rollback apply(prev) the daemon does when a later
 * step fails; policy ids kept across reloads and restarts (bpflb_pol_names);
 * the control hook's "list" and "get".
 *
 * Needs root (loads BPF, pins under /sys/fs/bpf); exits 77 (skip) otherwise.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon.h"
#include "plugin_host.h"

#include "policy_structs.h"

static char tmp[PATH_MAX / 4], pins[PATH_MAX / 4], poldir[PATH_MAX / 2];
static struct bpflb_daemon d;
static struct bpflb_plugin_ctx *ctx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static const char base_ini[] = "[daemon]\n"
			       "mode = none\n"
			       "features = policy\n"
			       "devices = lo\n"
			       "\n"
			       "[node]\n"
			       "name = node1\n"
			       "address = 10.99.0.1\n"
			       "labels = node-role.kubernetes.io/control-plane=\n"
			       "\n"
			       "[cluster-node node2]\n"
			       "address = 10.99.0.2\n"
			       "\n"
			       "[endpoint web-1]\n"
			       "address = 10.244.1.2\n"
			       "node = node1\n"
			       "labels = app=web\n"
			       "\n"
			       "[endpoint web-2]\n"
			       "address = 10.244.2.2\n"
			       "node = node2\n"
			       "labels = app=web\n"
			       "\n";

/* Write node1.ini with base_ini, [policy] and extra; load it with every schema. */
static int config(const char *policy_extra, const char *extra, struct bpflb_config **cfg,
		  struct bpflb_err *err)
{
	char text[8192], path[PATH_MAX];

	snprintf(text, sizeof(text), "%s[policy]\ndir = %s\nkube_apiserver = 10.99.0.100\n%s\n%s",
		 base_ini, poldir, policy_extra, extra);
	write_file(tmp, "node1.ini", text);
	snprintf(path, sizeof(path), "%s/node1.ini", tmp);
	memset(err, 0, sizeof(*err));
	return daemon_load_config(&d, path, cfg, err);
}

static struct bpflb_config *good_config(const char *policy_extra, const char *extra)
{
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;

	ck_assert_msg(!config(policy_extra, extra, &cfg, &err), "%s", err.msg);
	return cfg;
}

static const char doc_policy[] = "apiVersion: \"cilium.io/v2\"\n"
				 "kind: CiliumClusterwideNetworkPolicy\n"
				 "metadata:\n"
				 "  name: \"allow-control-plane-connectivity\"\n"
				 "spec:\n"
				 "  ingress:\n"
				 "  - fromEntities:\n"
				 "    - kube-apiserver\n"
				 "  nodeSelector:\n"
				 "    matchLabels:\n"
				 "      node-role.kubernetes.io/control-plane: \"\"\n";

static const char web_policy[] = "apiVersion: cilium.io/v2\n"
				 "kind: CiliumClusterwideNetworkPolicy\n"
				 "metadata:\n"
				 "  name: web\n"
				 "spec:\n"
				 "  endpointSelector: {matchLabels: {app: web}}\n"
				 "  ingress:\n"
				 "  - fromEntities: [cluster]\n"
				 "    toPorts: [{ports: [{port: '8080'}]}]\n";

static json_object *control(const char *cmd, const char *name, int want)
{
	json_object *req = NULL, *reply = NULL;
	int ret;

	ck_assert(BPFLB_PLUGIN_HAS(ctx->desc, control));
	if (name) {
		req = json_object_new_object();
		json_object_object_add(req, "name", json_object_new_string(name));
	}
	ret = ctx->desc->control(ctx, cmd, req, &reply);
	json_object_put(req);
	ck_assert_msg(ret == want, "control %s: %d, expected %d", cmd, ret, want);
	ck_assert_ptr_nonnull(reply);
	return reply;
}

static const char *jstr(json_object *o, const char *path)
{
	char buf[256], *save = NULL, *tok;
	json_object *cur = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		char *end;
		long idx = strtol(tok, &end, 10);

		if (!*end)
			cur = json_object_array_get_idx(cur, idx);
		else if (!json_object_object_get_ex(cur, tok, &cur))
			return NULL;
		if (!cur)
			return NULL;
	}
	return json_object_get_string(cur);
}

static uint32_t pinned_name_id(const char *want)
{
	char path[PATH_MAX];
	uint32_t key, next, *prev = NULL, found = 0;
	struct pol_name v;
	int fd;

	snprintf(path, sizeof(path), "%s/bpflb_pol_names", pins);
	fd = bpf_obj_get(path);
	ck_assert_int_ge(fd, 0);
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(fd, &key, &v) && !strcmp(v.name, want))
			found = key;
	}
	close(fd);
	return found;
}

static void setup(void)
{
	struct bpflb_err err = {""};
	char path[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "/tmp/bpflb-policy-plugin-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(pins, sizeof(pins), "/sys/fs/bpf/bpflb-policy-plugin-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pins));
	snprintf(poldir, sizeof(poldir), "%s/policies", tmp);
	ck_assert_int_eq(mkdir(poldir, 0755), 0);
	memset(&d, 0, sizeof(d));
	snprintf(d.pipeline.pin_root, sizeof(d.pipeline.pin_root), "%s", pins);
	snprintf(path, sizeof(path), "%s", POLICY_SO);
	ck_assert_msg(!plugin_host_load(&d.plugins, path, &d, &err), "%s", err.msg);
	ctx = plugin_host_find(&d.plugins, "policy");
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(ctx->desc->init(ctx), 0);
}

static void teardown(void)
{
	if (ctx && ctx->priv)
		ctx->desc->fini(ctx);
	plugin_host_free(&d.plugins);
	ctx = NULL;
	nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	nftw(pins, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

START_TEST(test_apply_and_list)
{
	struct bpflb_config *cfg;
	struct bpflb_err err = {""};
	json_object *r;

	write_file(poldir, "10-doc.yaml", doc_policy);
	write_file(poldir, "20-web.yaml", web_policy);
	write_file(poldir, "README", "not a policy: skipped\n");
	cfg = good_config("", "");
	ck_assert_msg(!ctx->desc->validate(ctx, cfg, &err), "%s", err.msg);
	ck_assert_msg(!ctx->desc->apply(ctx, cfg, NULL, &err), "%s", err.msg);

	r = control("list", NULL, 0);
	ck_assert_str_eq(jstr(r, "policies.0.name"), "allow-control-plane-connectivity");
	ck_assert_str_eq(jstr(r, "policies.0.mode"), "enforcing");
	ck_assert_str_eq(jstr(r, "policies.0.specs.0.selects.0"), "host");
	ck_assert_str_eq(jstr(r, "policies.1.name"), "web");
	ck_assert_str_eq(jstr(r, "policies.1.specs.0.selects.0"), "web-1");
	/* web-2 runs on node2: not a subject here. */
	ck_assert_ptr_null(jstr(r, "policies.1.specs.0.selects.1"));
	ck_assert_str_eq(jstr(r, "subjects.0.subject"), "host");
	ck_assert_str_eq(jstr(r, "subjects.0.ingress"), "default deny");
	ck_assert_str_eq(jstr(r, "subjects.0.egress"), "open");
	ck_assert_str_eq(jstr(r, "subjects.1.subject"), "web-1");
	ck_assert_str_eq(jstr(r, "packets.ingress.denied"), "0");
	json_object_put(r);

	r = control("get", "allow-control-plane-connectivity", 0);
	ck_assert_str_eq(jstr(r, "specs.0.rule_list.0.entities.0"), "kube-apiserver");
	ck_assert_str_eq(jstr(r, "specs.0.rule_list.0.id"), "65537");
	/* What the entity resolved to on this node. */
	ck_assert_str_eq(jstr(r, "specs.0.rule_list.0.peers.0.prefix"), "10.99.0.100/32");
	json_object_put(r);
	r = control("get", "web", 0);
	ck_assert_str_eq(jstr(r, "specs.0.rule_list.0.ports.0.port"), "8080");
	json_object_put(r);
	json_object_put(control("get", "nope", -ENOENT));
	json_object_put(control("get", NULL, -EINVAL));
	json_object_put(control("frobnicate", NULL, -ENOENT));

	ck_assert_uint_eq(pinned_name_id("allow-control-plane-connectivity"), 1);
	ck_assert_uint_eq(pinned_name_id("web"), 2);
	ctx->desc->tick(ctx);
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_refused_and_rollback)
{
	struct bpflb_config *cfg, *bad, *next;
	struct bpflb_err err = {""};
	char path[PATH_MAX];
	json_object *r;

	write_file(poldir, "10-doc.yaml", doc_policy);
	cfg = good_config("", "");
	ck_assert_msg(!ctx->desc->validate(ctx, cfg, &err), "%s", err.msg);
	ck_assert_msg(!ctx->desc->apply(ctx, cfg, NULL, &err), "%s", err.msg);

	/* A broken file: refused with file:line:field, the applied set untouched. */
	write_file(poldir, "30-bad.yaml",
		   "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n"
		   "metadata: {name: bad}\nspec:\n  nodeSelector: {}\n"
		   "  egress:\n  - toFQDNs: [{matchName: example.com}]\n");
	bad = good_config("", "");
	ck_assert_int_eq(ctx->desc->validate(ctx, bad, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "30-bad.yaml:7: spec.egress[0].toFQDNs: DNS based rules"),
		      "%s", err.msg);
	ck_assert_msg(strstr(err.msg, "the running policies stay in force"), "%s", err.msg);
	r = control("list", NULL, 0);
	ck_assert_ptr_null(jstr(r, "policies.1"));
	json_object_put(r);
	bpflb_config_free(bad);
	snprintf(path, sizeof(path), "%s/30-bad.yaml", poldir);
	ck_assert_int_eq(unlink(path), 0);

	/* audit_mode on, applied; then the daemon rolls back to cfg. */
	next = good_config("audit_mode = yes\n", "");
	ck_assert_msg(!ctx->desc->validate(ctx, next, &err), "%s", err.msg);
	ck_assert_msg(!ctx->desc->apply(ctx, next, cfg, &err), "%s", err.msg);
	r = control("list", NULL, 0);
	ck_assert_str_eq(jstr(r, "policies.0.mode"), "audit");
	ck_assert_str_eq(jstr(r, "subjects.0.ingress"), "default deny (audit)");
	json_object_put(r);
	ck_assert_msg(!ctx->desc->apply(ctx, cfg, next, &err), "%s", err.msg);
	r = control("list", NULL, 0);
	ck_assert_str_eq(jstr(r, "policies.0.mode"), "enforcing");
	ck_assert_str_eq(jstr(r, "subjects.0.ingress"), "default deny");
	json_object_put(r);
	bpflb_config_free(next);
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_config_errors)
{
	struct bpflb_config *cfg;
	struct bpflb_err err = {""};

	/* An endpoint on a node nobody declared. */
	cfg = good_config("", "[endpoint lost]\naddress = 10.244.9.9\nnode = node9\n");
	ck_assert_int_eq(ctx->desc->validate(ctx, cfg, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "node1.ini:") &&
			  strstr(err.msg, "[endpoint lost] node = node9"
					  ": no node 'node9'"),
		      "%s", err.msg);
	bpflb_config_free(cfg);
	/* Two endpoints, one address. */
	cfg = good_config("", "[endpoint twin]\naddress = 10.244.1.2\nnode = node1\n");
	ck_assert_int_eq(ctx->desc->validate(ctx, cfg, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "[endpoint web-1] has this address already"), "%s", err.msg);
	bpflb_config_free(cfg);
	/* No policy directory. */
	ck_assert_int_eq(rmdir(poldir), 0);
	cfg = good_config("", "");
	ck_assert_int_eq(ctx->desc->validate(ctx, cfg, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "[policy] dir = ") && strstr(err.msg, "No such file"), "%s",
		      err.msg);
	bpflb_config_free(cfg);
	/* The schema refuses a bad [policy] key (the core's engine, the plugin's schema). */
	ck_assert_int_eq(config("audit_mode = maybe\n", "", &cfg, &err), -EINVAL);
	ck_assert_msg(strstr(err.msg, "[policy] audit_mode = maybe"), "%s", err.msg);
}
END_TEST

/* Policy ids follow names across reloads and restarts (rule ids in events stay valid). */
START_TEST(test_stable_ids)
{
	struct bpflb_config *cfg;
	struct bpflb_err err = {""};
	json_object *r;

	write_file(poldir, "20-web.yaml", web_policy);
	cfg = good_config("", "");
	ck_assert_msg(!ctx->desc->validate(ctx, cfg, &err), "%s", err.msg);
	ck_assert_msg(!ctx->desc->apply(ctx, cfg, NULL, &err), "%s", err.msg);
	ck_assert_uint_eq(pinned_name_id("web"), 1);
	bpflb_config_free(cfg);

	/* A restart: a new instance of the plugin on the same pins. */
	ctx->desc->fini(ctx);
	ck_assert_int_eq(ctx->desc->init(ctx), 0);
	write_file(poldir, "10-doc.yaml", doc_policy); /* sorts first now */
	cfg = good_config("", "");
	ck_assert_msg(!ctx->desc->validate(ctx, cfg, &err), "%s", err.msg);
	ck_assert_msg(!ctx->desc->apply(ctx, cfg, NULL, &err), "%s", err.msg);
	r = control("list", NULL, 0);
	ck_assert_str_eq(jstr(r, "policies.0.name"), "allow-control-plane-connectivity");
	ck_assert_str_eq(jstr(r, "policies.0.id"), "2");
	ck_assert_str_eq(jstr(r, "policies.1.name"), "web");
	ck_assert_str_eq(jstr(r, "policies.1.id"), "1");
	json_object_put(r);
	bpflb_config_free(cfg);
}
END_TEST

static Suite *plugin_suite(void)
{
	Suite *s = suite_create("policy_plugin");
	TCase *tc = tcase_create("hooks");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_apply_and_list);
	tcase_add_test(tc, test_refused_and_rollback);
	tcase_add_test(tc, test_config_errors);
	tcase_add_test(tc, test_stable_ids);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "test_policy_plugin: needs root (BPF, bpffs); skipped\n");
		return 77;
	}
	sr = srunner_create(plugin_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
