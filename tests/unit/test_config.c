// SPDX-License-Identifier: GPL-2.0-only
/*
 * The configuration engine: typed keys, defaults, lists, durations, multi
 * keys, messages, and a corpus of good and broken files.
 *
 * Every tests/configs/bad/NAME.ini starts with two comment lines:
 *     # expect: <text the message must contain>
 *     # line: <N>
 * and must be refused with a message containing "NAME.ini:N:" (or "NAME.ini: "
 * when N is 0, for errors about the whole file) and the expected text.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config_internal.h"
#include "lb/services.h"

#ifndef CONFIG_CORPUS_DIR
#error "CONFIG_CORPUS_DIR must name tests/configs"
#endif

/* --- a plugin-like schema with a key of every type --- */

static const char *const color_choices[] = {"red", "green", "blue", NULL};
static const char *const proto_choices[] = {"tcp", "udp", NULL};

static const struct bpflb_cfg_key test_keys[] = {
    {.name = "flag", .type = BPFLB_CFG_BOOL, .def = "no"},
    {.name = "count", .type = BPFLB_CFG_U32, .def = "10", .min = 1, .max = 1000},
    {.name = "mask", .type = BPFLB_CFG_U32, .def = "0xff"}, /* max 0: unbounded */
    {.name = "gateway", .type = BPFLB_CFG_IPV4, .def = "192.0.2.1"},
    {.name = "peers", .type = BPFLB_CFG_IPV4_LIST, .def = ""},
    {.name = "prefixes", .type = BPFLB_CFG_CIDR_LIST, .def = "10.0.0.0/8"},
    {.name = "color", .type = BPFLB_CFG_ENUM, .def = "green", .choices = color_choices},
    {.name = "words", .type = BPFLB_CFG_LIST, .def = "alpha beta"},
    {.name = "state_dir", .type = BPFLB_CFG_PATH, .def = "/var/lib/test"},
    {.name = "timeout", .type = BPFLB_CFG_DURATION, .def = "2m", .min = 1, .max = 86400},
    {.name = "label", .type = BPFLB_CFG_STRING, .def = "none"},
    {.name = "note", .type = BPFLB_CFG_STRING},
    {.name = "extra", .type = BPFLB_CFG_STRING, .flags = BPFLB_CFG_F_MULTI},
    {.name = "tag", .type = BPFLB_CFG_STRING, .flags = BPFLB_CFG_F_MULTI, .def = "default-tag"},
    {0}};

static const struct bpflb_cfg_key service_keys[] = {
    {.name = "port",
     .type = BPFLB_CFG_U32,
     .flags = BPFLB_CFG_F_REQUIRED,
     .min = 1,
     .max = 65535,
     .help = "service port"},
    {.name = "protocol", .type = BPFLB_CFG_ENUM, .def = "tcp", .choices = proto_choices},
    {.name = "backend", .type = BPFLB_CFG_IPV4, .flags = BPFLB_CFG_F_MULTI},
    {0}};

static int service_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	const char *a, *b;
	unsigned int i, j;
	int la, lb;

	/* Refused without a message: the engine must word one. */
	if (bpflb_cfg_u32(sec, "port") == 9)
		return -EOPNOTSUPP;
	for (i = 0; (a = bpflb_cfg_multi(sec, "backend", i, &la)); i++)
		for (j = 0; j < i && (b = bpflb_cfg_multi(sec, "backend", j, &lb)); j++)
			if (!strcmp(a, b))
				return bpflb_cfg_error(err, sec, "backend", la,
						       "duplicate backend, first at line %d; "
						       "expected each backend once",
						       lb);
	return 0;
}

static const struct bpflb_cfg_section_def test_section = {
    .name = "test",
    .keys = test_keys,
};

static const struct bpflb_cfg_section_def service_section = {
    .name = "service",
    .named = true,
    .keys = service_keys,
    .check = service_check,
};

/* A section without keys. */
static const struct bpflb_cfg_section_def marker_section = {
    .name = "marker",
};

static const struct bpflb_cfg_section_def *const test_sections[] = {
    &test_section,
    &service_section,
    &marker_section,
    NULL,
};

static const struct bpflb_cfg_schema schemas[] = {
    {.owner = "core", .sections = bpflb_core_sections},
    {.owner = "testplug", .sections = test_sections},
};

#define NSCHEMAS (sizeof(schemas) / sizeof(schemas[0]))

#define MINIMAL                                                                                    \
	"[daemon]\n"                                                                               \
	"devices = eth0\n"                                                                         \
	"[node]\n"                                                                                 \
	"name = node1\n"                                                                           \
	"address = 10.0.0.1\n"

static int load_buf(const char *text, size_t len, unsigned int flags,
		    const struct bpflb_cfg_schema *sch, size_t nsch, struct bpflb_config **cfg,
		    struct bpflb_err *err)
{
	FILE *fp;
	int r;

	fp = fmemopen((void *)text, len, "r");
	ck_assert_ptr_nonnull(fp);
	r = bpflb_config_load_fp(fp, "mem.ini", sch, nsch, flags, cfg, err);
	fclose(fp);
	if (r)
		ck_assert_ptr_null(*cfg);
	return r;
}

static int load_str(const char *text, struct bpflb_config **cfg, struct bpflb_err *err)
{
	return load_buf(text, strlen(text), 0, schemas, NSCHEMAS, cfg, err);
}

/* Load text that must be refused, and return the message. */
static const char *refuse(const char *text, struct bpflb_err *err)
{
	struct bpflb_config *cfg = NULL;
	int r;

	memset(err, 0, sizeof(*err));
	r = load_str(text, &cfg, err);
	ck_assert_msg(r == -EINVAL, "expected -EINVAL, got %d for:\n%s", r, text);
	return err->msg;
}

static struct bpflb_config *accept_str(const char *text)
{
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err = {{0}};
	int r;

	r = load_str(text, &cfg, &err);
	ck_assert_msg(r == 0, "refused (%d): %s\n%s", r, err.msg, text);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

static uint32_t ip(const char *s)
{
	struct in_addr in;

	ck_assert_int_eq(inet_pton(AF_INET, s, &in), 1);
	return in.s_addr;
}

/* --- defaults --- */

START_TEST(test_core_defaults)
{
	struct bpflb_config *cfg = accept_str(MINIMAL);
	const struct bpflb_cfg_section *d, *n;
	char w[BPFLB_CFG_WORD_MAX];

	d = bpflb_cfg_section(cfg, "daemon", 0);
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_null(bpflb_cfg_section(cfg, "daemon", 1));
	ck_assert_str_eq(bpflb_cfg_section_type(d), "daemon");
	ck_assert_str_eq(bpflb_cfg_section_name(d), "");
	ck_assert_str_eq(bpflb_cfg_section_owner(d), "core");
	ck_assert_int_eq(bpflb_cfg_section_line(d), 1);
	ck_assert_ptr_eq(bpflb_cfg_section_config(d), cfg);

	ck_assert_str_eq(bpflb_cfg_str(d, "mode"), "snat");
	ck_assert_str_eq(bpflb_cfg_str(d, "features"), "");
	ck_assert_ptr_null(bpflb_cfg_word(bpflb_cfg_str(d, "features"), 0, w, sizeof(w)));
	ck_assert_str_eq(bpflb_cfg_str(d, "plugin_dir"), "/usr/lib/bpflb/plugins");
	ck_assert_str_eq(bpflb_cfg_str(d, "bpffs_root"), "/sys/fs/bpf/bpflb");
	ck_assert_str_eq(bpflb_cfg_str(d, "control_socket"), "/run/bpflb/bpflbd.sock");
	ck_assert_str_eq(bpflb_cfg_str(d, "devices"), "eth0");
	ck_assert_uint_eq(bpflb_cfg_u32(d, "tc_priority"), 1);
	ck_assert_uint_eq(bpflb_cfg_u32(d, "tc_handle"), 0xb1b);
	ck_assert_str_eq(bpflb_cfg_str(d, "log_level"), "info");
	ck_assert_uint_eq(bpflb_cfg_u32(d, "tick_interval"), 5);

	ck_assert(!bpflb_cfg_has(d, "mode"));
	ck_assert(bpflb_cfg_has(d, "devices"));
	ck_assert_int_eq(bpflb_cfg_line(d, "mode"), 1); /* absent: the header's line */
	ck_assert_int_eq(bpflb_cfg_line(d, "devices"), 2);

	n = bpflb_cfg_section(cfg, "node", 0);
	ck_assert_str_eq(bpflb_cfg_str(n, "name"), "node1");
	ck_assert_uint_eq(bpflb_cfg_ipv4(n, "address"), ip("10.0.0.1"));
	ck_assert_str_eq(bpflb_cfg_str(n, "external_addresses"), "");
	ck_assert_str_eq(bpflb_cfg_str(n, "labels"), "");

	ck_assert_ptr_null(bpflb_cfg_section(cfg, "cluster-node", 0));
	ck_assert_ptr_null(bpflb_cfg_find(cfg, "cluster-node", "node2"));
	ck_assert_ptr_null(bpflb_cfg_section(cfg, "service", 0));
	ck_assert_str_eq(bpflb_cfg_path(cfg), "mem.ini");
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_absent_section_defaults)
{
	struct bpflb_config *cfg = accept_str(MINIMAL);
	const struct bpflb_cfg_section *t;
	int line = -1;

	/* [test] is not in the file: it stands in with line 0 and its defaults. */
	t = bpflb_cfg_section(cfg, "test", 0);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(bpflb_cfg_section_line(t), 0);
	ck_assert_str_eq(bpflb_cfg_section_owner(t), "testplug");
	ck_assert_ptr_eq(bpflb_cfg_find(cfg, "test", ""), t);
	ck_assert(!bpflb_cfg_bool(t, "flag"));
	ck_assert_uint_eq(bpflb_cfg_u32(t, "count"), 10);
	ck_assert_uint_eq(bpflb_cfg_u32(t, "mask"), 0xff);
	ck_assert_uint_eq(bpflb_cfg_ipv4(t, "gateway"), ip("192.0.2.1"));
	ck_assert_str_eq(bpflb_cfg_str(t, "peers"), "");
	ck_assert_str_eq(bpflb_cfg_str(t, "prefixes"), "10.0.0.0/8");
	ck_assert_str_eq(bpflb_cfg_str(t, "color"), "green");
	ck_assert_str_eq(bpflb_cfg_str(t, "words"), "alpha beta");
	ck_assert_str_eq(bpflb_cfg_str(t, "state_dir"), "/var/lib/test");
	ck_assert_uint_eq(bpflb_cfg_u32(t, "timeout"), 120);
	ck_assert_str_eq(bpflb_cfg_str(t, "label"), "none");
	ck_assert_ptr_null(bpflb_cfg_str(t, "note"));
	ck_assert_ptr_null(bpflb_cfg_multi(t, "extra", 0, &line));
	ck_assert_str_eq(bpflb_cfg_multi(t, "tag", 0, &line), "default-tag");
	ck_assert_int_eq(line, 0);
	ck_assert_ptr_null(bpflb_cfg_multi(t, "tag", 1, &line));
	/* An undeclared key reads as nothing. */
	ck_assert_ptr_null(bpflb_cfg_str(t, "nonexistent"));
	ck_assert_uint_eq(bpflb_cfg_u32(t, "nonexistent"), 0);
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_null_section)
{
	int line = 7;

	ck_assert_ptr_null(bpflb_cfg_str(NULL, "mode"));
	ck_assert(!bpflb_cfg_bool(NULL, "flag"));
	ck_assert_uint_eq(bpflb_cfg_u32(NULL, "count"), 0);
	ck_assert_uint_eq(bpflb_cfg_ipv4(NULL, "address"), 0);
	ck_assert(!bpflb_cfg_has(NULL, "mode"));
	ck_assert_int_eq(bpflb_cfg_line(NULL, "mode"), 0);
	ck_assert_ptr_null(bpflb_cfg_multi(NULL, "tag", 0, &line));
	ck_assert_int_eq(line, 7);
	ck_assert_ptr_null(bpflb_cfg_section_type(NULL));
	ck_assert_ptr_null(bpflb_cfg_section(NULL, "daemon", 0));
	ck_assert_ptr_null(bpflb_cfg_find(NULL, "daemon", ""));
	ck_assert_int_eq(bpflb_config_loaded_at(NULL), 0);
	bpflb_config_free(NULL);
}
END_TEST

/* --- values of every type --- */

START_TEST(test_typed_values_ok)
{
	struct bpflb_config *cfg =
	    accept_str(MINIMAL "[test]\n"
			       "flag = on\n"
			       "count = 0x10\n"
			       "mask = 0xffffffff\n"
			       "gateway = 198.51.100.7\n"
			       "peers = 192.0.2.1, 192.0.2.2 192.0.2.3\n"
			       "prefixes = 10.0.0.0/8,192.168.0.0/16 0.0.0.0/0\n"
			       "color = blue\n"
			       "words = one,two\n"
			       "state_dir = /tmp/x y\n"
			       "timeout = 2h\n"
			       "label = hello world ; a comment\n");
	const struct bpflb_cfg_section *t = bpflb_cfg_section(cfg, "test", 0);
	char w[BPFLB_CFG_WORD_MAX];

	ck_assert_int_eq(bpflb_cfg_section_line(t), 6);
	ck_assert(bpflb_cfg_bool(t, "flag"));
	ck_assert_uint_eq(bpflb_cfg_u32(t, "count"), 16);
	ck_assert_uint_eq(bpflb_cfg_u32(t, "mask"), 0xffffffffu);
	ck_assert_uint_eq(bpflb_cfg_ipv4(t, "gateway"), ip("198.51.100.7"));
	ck_assert_str_eq(bpflb_cfg_word(bpflb_cfg_str(t, "peers"), 2, w, sizeof(w)), "192.0.2.3");
	ck_assert_str_eq(bpflb_cfg_word(bpflb_cfg_str(t, "prefixes"), 1, w, sizeof(w)),
			 "192.168.0.0/16");
	ck_assert_ptr_null(bpflb_cfg_word(bpflb_cfg_str(t, "prefixes"), 3, w, sizeof(w)));
	ck_assert_str_eq(bpflb_cfg_str(t, "color"), "blue");
	ck_assert_str_eq(bpflb_cfg_word(bpflb_cfg_str(t, "words"), 1, w, sizeof(w)), "two");
	ck_assert_str_eq(bpflb_cfg_str(t, "state_dir"), "/tmp/x y");
	ck_assert_uint_eq(bpflb_cfg_u32(t, "timeout"), 7200);
	ck_assert_str_eq(bpflb_cfg_str(t, "label"), "hello world");
	ck_assert_int_eq(bpflb_cfg_line(t, "label"), 17);
	/* Given in the file, so not the default, even if it reads the same. */
	ck_assert(bpflb_cfg_has(t, "color"));
	ck_assert(!bpflb_cfg_has(t, "note"));
	bpflb_config_free(cfg);
}
END_TEST

static const struct {
	const char *text;
	bool value;
} bools[] = {
    {"yes", true}, {"no", false}, {"true", true}, {"false", false}, {"on", true}, {"off", false},
    {"1", true},   {"0", false},  {"Yes", true},  {"FALSE", false}, {"On", true}, {"OFF", false},
};

START_TEST(test_bool_spellings)
{
	char text[256];
	struct bpflb_config *cfg;

	snprintf(text, sizeof(text), MINIMAL "[test]\nflag = %s\n", bools[_i].text);
	cfg = accept_str(text);
	ck_assert_int_eq(bpflb_cfg_bool(bpflb_cfg_section(cfg, "test", 0), "flag"),
			 bools[_i].value);
	bpflb_config_free(cfg);
}
END_TEST

static const struct {
	const char *text;
	uint32_t secs; /* 0: refused */
	const char *why;
} durations[] = {
    {"30", 30, NULL},
    {"30s", 30, NULL},
    {"5m", 300, NULL},
    {"2h", 7200, NULL},
    {"24h", 86400, NULL},
    {"1", 1, NULL},
    {"0", 0, "out of range"},
    {"25h", 0, "out of range"},
    {"86401", 0, "out of range"},
    {"99999999999h", 0, "out of range"},
    {"5d", 0, "not a duration"},
    {"m", 0, "not a duration"},
    {"1.5h", 0, "not a duration"},
    {"-1", 0, "not a duration"},
    {"5 m", 0, "not a duration"},
    {"30ss", 0, "not a duration"},
    {"5M", 0, "not a duration"},
    {"0x10", 0, "not a duration"},
};

START_TEST(test_durations)
{
	struct bpflb_err err;
	struct bpflb_config *cfg;
	char text[256];

	snprintf(text, sizeof(text), MINIMAL "[test]\ntimeout = %s\n", durations[_i].text);
	if (durations[_i].secs) {
		cfg = accept_str(text);
		ck_assert_uint_eq(bpflb_cfg_u32(bpflb_cfg_section(cfg, "test", 0), "timeout"),
				  durations[_i].secs);
		bpflb_config_free(cfg);
		return;
	}
	refuse(text, &err);
	ck_assert_msg(strstr(err.msg, durations[_i].why), "%s: %s", durations[_i].text, err.msg);
	ck_assert_msg(
	    strstr(err.msg, "expected a duration from 1s to 24h, such as 30, 30s, 5m or 2h"), "%s",
	    err.msg);
}
END_TEST

/* --- lists --- */

START_TEST(test_words)
{
	const char *list = " a, b,,c\td ,";
	char w[BPFLB_CFG_WORD_MAX], small[3];

	ck_assert_str_eq(bpflb_cfg_word(list, 0, w, sizeof(w)), "a");
	ck_assert_str_eq(bpflb_cfg_word(list, 1, w, sizeof(w)), "b");
	ck_assert_str_eq(bpflb_cfg_word(list, 2, w, sizeof(w)), "c");
	ck_assert_str_eq(bpflb_cfg_word(list, 3, w, sizeof(w)), "d");
	ck_assert_ptr_null(bpflb_cfg_word(list, 4, w, sizeof(w)));
	ck_assert_ptr_null(bpflb_cfg_word("", 0, w, sizeof(w)));
	ck_assert_ptr_null(bpflb_cfg_word(" , ", 0, w, sizeof(w)));
	ck_assert_ptr_null(bpflb_cfg_word(NULL, 0, w, sizeof(w)));
	ck_assert_ptr_null(bpflb_cfg_word("a", 0, w, 0));
	/* Cut, never overflowed. */
	ck_assert_str_eq(bpflb_cfg_word("abcdef xy", 0, small, sizeof(small)), "ab");
	ck_assert_str_eq(bpflb_cfg_word("abcdef xy", 1, small, sizeof(small)), "xy");
}
END_TEST

START_TEST(test_empty_lists)
{
	struct bpflb_config *cfg;
	struct bpflb_err err;

	/* An optional list may be given empty... */
	cfg = accept_str(MINIMAL "[test]\npeers =\nprefixes = ,\n");
	ck_assert_str_eq(bpflb_cfg_str(bpflb_cfg_section(cfg, "test", 0), "prefixes"), ",");
	bpflb_config_free(cfg);
	/* ...a required one needs a word. */
	refuse("[daemon]\ndevices =\n[node]\nname = n\naddress = 10.0.0.1\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:2: [daemon] devices = \"\": empty list; expected "
				  "words separated by commas or spaces");
}
END_TEST

/* --- multi keys and named sections --- */

START_TEST(test_multi)
{
	struct bpflb_config *cfg = accept_str(MINIMAL "[service web]\n"	       /* 6 */
						      "port = 80\n"	       /* 7 */
						      "backend = 192.0.2.10\n" /* 8 */
						      "backend = 192.0.2.11\n" /* 9 */
						      "protocol = tcp\n"       /* 10 */
						      "backend = 192.0.2.12\n" /* 11 */
						      "[test]\n"
						      "tag = one\n"
						      "tag = two\n");
	const struct bpflb_cfg_section *s = bpflb_cfg_find(cfg, "service", "web");
	const struct bpflb_cfg_section *t = bpflb_cfg_section(cfg, "test", 0);
	int line = 0;

	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(bpflb_cfg_multi(s, "backend", 0, &line), "192.0.2.10");
	ck_assert_int_eq(line, 8);
	ck_assert_str_eq(bpflb_cfg_multi(s, "backend", 1, &line), "192.0.2.11");
	ck_assert_int_eq(line, 9);
	ck_assert_str_eq(bpflb_cfg_multi(s, "backend", 2, &line), "192.0.2.12");
	ck_assert_int_eq(line, 11);
	ck_assert_ptr_null(bpflb_cfg_multi(s, "backend", 3, &line));
	ck_assert_str_eq(bpflb_cfg_multi(s, "backend", 1, NULL), "192.0.2.11");
	/* Single-value accessors read the first occurrence. */
	ck_assert_str_eq(bpflb_cfg_str(s, "backend"), "192.0.2.10");
	ck_assert_uint_eq(bpflb_cfg_ipv4(s, "backend"), ip("192.0.2.10"));
	ck_assert_int_eq(bpflb_cfg_line(s, "backend"), 8);
	/* A given MULTI key hides its default. */
	ck_assert_str_eq(bpflb_cfg_multi(t, "tag", 0, NULL), "one");
	ck_assert_str_eq(bpflb_cfg_multi(t, "tag", 1, NULL), "two");
	ck_assert_ptr_null(bpflb_cfg_multi(t, "tag", 2, NULL));
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_named_sections)
{
	struct bpflb_config *cfg = accept_str(MINIMAL "[cluster-node node3]\n"
						      "address = 10.0.0.3\n"
						      "[service   web front ]\n"
						      "port = 443\n"
						      "[cluster-node node2]\n"
						      "address = 10.0.0.2\n"
						      "labels = zone=a, rack=r1\n");
	const struct bpflb_cfg_section *a, *b, *w;

	a = bpflb_cfg_section(cfg, "cluster-node", 0);
	b = bpflb_cfg_section(cfg, "cluster-node", 1);
	ck_assert_ptr_null(bpflb_cfg_section(cfg, "cluster-node", 2));
	ck_assert_str_eq(bpflb_cfg_section_name(a), "node3"); /* file order */
	ck_assert_str_eq(bpflb_cfg_section_name(b), "node2");
	ck_assert_ptr_eq(bpflb_cfg_find(cfg, "cluster-node", "node2"), b);
	ck_assert_ptr_null(bpflb_cfg_find(cfg, "cluster-node", "node4"));
	ck_assert_int_eq(bpflb_cfg_section_line(b), 10);
	ck_assert_uint_eq(bpflb_cfg_ipv4(b, "address"), ip("10.0.0.2"));
	ck_assert_str_eq(bpflb_cfg_str(a, "labels"), "");
	ck_assert_str_eq(bpflb_cfg_str(b, "labels"), "zone=a, rack=r1");
	ck_assert_str_eq(bpflb_cfg_section_owner(b), "core");

	/* The name is the rest of the header, trimmed. */
	w = bpflb_cfg_find(cfg, "service", "web front");
	ck_assert_ptr_nonnull(w);
	ck_assert_str_eq(bpflb_cfg_section_type(w), "service");
	ck_assert_str_eq(bpflb_cfg_section_owner(w), "testplug");
	ck_assert_uint_eq(bpflb_cfg_u32(w, "port"), 443);
	ck_assert_str_eq(bpflb_cfg_str(w, "protocol"), "tcp");
	bpflb_config_free(cfg);
}
END_TEST

/* --- layout: comments, indentation, BOM, CRLF --- */

START_TEST(test_layout)
{
	static const char text[] = "\xEF\xBB\xBF# a comment\r\n"	 /* 1 */
				   "; another\r\n"			 /* 2 */
				   "\r\n"				 /* 3 */
				   "  [ daemon ]   # the core\r\n"	 /* 4 */
				   "    devices = eth0 eth1\r\n"	 /* 5 */
				   "\tmode: dsr ; colon and comment\r\n" /* 6 */
				   "[node] ; this node\r\n"		 /* 7 */
				   "  name=n1\r\n"			 /* 8 */
				   "  address   =   10.0.0.1   \r\n"	 /* 9 */
				   "  labels = zone=a\r\n"		 /* 10 */
				   "  # a commented = key\r\n"		 /* 11 */
				   "  external_addresses = 10.1.0.1";	 /* 12, no newline */
	struct bpflb_config *cfg = accept_str(text);
	const struct bpflb_cfg_section *d = bpflb_cfg_section(cfg, "daemon", 0);
	const struct bpflb_cfg_section *n = bpflb_cfg_section(cfg, "node", 0);

	ck_assert_int_eq(bpflb_cfg_section_line(d), 4);
	ck_assert_str_eq(bpflb_cfg_str(d, "devices"), "eth0 eth1");
	ck_assert_int_eq(bpflb_cfg_line(d, "devices"), 5);
	ck_assert_str_eq(bpflb_cfg_str(d, "mode"), "dsr");
	ck_assert_int_eq(bpflb_cfg_line(d, "mode"), 6);
	ck_assert_str_eq(bpflb_cfg_str(n, "name"), "n1");
	ck_assert_uint_eq(bpflb_cfg_ipv4(n, "address"), ip("10.0.0.1"));
	/* Indented lines are keys, not continuations of the value above. */
	ck_assert_str_eq(bpflb_cfg_str(n, "labels"), "zone=a");
	ck_assert_int_eq(bpflb_cfg_line(n, "external_addresses"), 12);
	bpflb_config_free(cfg);
}
END_TEST

/* A line of n characters: "label = xxx...x". */
static char *long_label_file(size_t n, const char *before, const char *after)
{
	size_t head = strlen(MINIMAL "[test]\n") + strlen(before), len = n - strlen("label = ");
	char *text = malloc(head + n + strlen(after) + 2);

	ck_assert_ptr_nonnull(text);
	sprintf(text, MINIMAL "[test]\n%slabel = ", before);
	memset(text + strlen(text), 'x', len);
	sprintf(text + head + n, "\n%s", after);
	return text;
}

START_TEST(test_long_line)
{
	struct bpflb_config *cfg;
	struct bpflb_err err;
	char *text;

	/* inih's own buffer ends at 199 characters; a line of the maximum fits whole... */
	text = long_label_file(BPFLB_CFG_LINE_MAX, "", "note = after\n");
	cfg = accept_str(text);
	ck_assert_uint_eq(strlen(bpflb_cfg_str(bpflb_cfg_section(cfg, "test", 0), "label")),
			  BPFLB_CFG_LINE_MAX - strlen("label = "));
	ck_assert_str_eq(bpflb_cfg_str(bpflb_cfg_section(cfg, "test", 0), "note"), "after");
	ck_assert_int_eq(bpflb_cfg_line(bpflb_cfg_section(cfg, "test", 0), "note"), 8);
	bpflb_config_free(cfg);
	free(text);

	/* ...one more character is refused, naming the line; nothing is cut. */
	text = long_label_file(BPFLB_CFG_LINE_MAX + 1, "", "");
	refuse(text, &err);
	ck_assert_str_eq(err.msg, "mem.ini:7: line longer than 65536 characters; expected at "
				  "most 65536 (for a longer list, continue it on indented lines "
				  "or repeat the key)");
	free(text);
}
END_TEST

/* The cut at inih's buffer keeps spaces, comments and the value exact. */
START_TEST(test_long_line_cut)
{
	struct bpflb_config *cfg;
	const struct bpflb_cfg_section *t;
	char text[4096], value[1024];
	struct bpflb_err err;
	size_t i;

	for (i = 0; i < 600; i++)
		value[i] = (i % 7 == 6) ? ' ' : (char)('a' + i % 26);
	value[600] = '\0';
	/* Runs of spaces across the cut (inih's buffer holds 199 characters). */
	memset(value + 180, ' ', 40);
	snprintf(text, sizeof(text), MINIMAL "[test]\nlabel = %s ; a comment ; more\n", value);
	cfg = accept_str(text);
	t = bpflb_cfg_section(cfg, "test", 0);
	ck_assert_str_eq(bpflb_cfg_str(t, "label"), value);
	bpflb_config_free(cfg);

	/* A value that starts past inih's buffer. */
	snprintf(text, sizeof(text), MINIMAL "[test]\nlabel =%250s%s\n", "", "far");
	cfg = accept_str(text);
	ck_assert_str_eq(bpflb_cfg_str(bpflb_cfg_section(cfg, "test", 0), "label"), "far");
	bpflb_config_free(cfg);

	/* No = where inih can see it. */
	memset(value, 'k', 300);
	value[300] = '\0';
	snprintf(text, sizeof(text), MINIMAL "[test]\n%s = 1\n", value);
	refuse(text, &err);
	ck_assert_str_eq(err.msg, "mem.ini:7: syntax error: no = in the first 199 characters; "
				  "expected key = value with a key of at most 64 characters");
}
END_TEST

/* The cases of issue 14: eight Kubernetes labels and 16 load balancer IPs, one line each. */
START_TEST(test_long_lists)
{
	static const char labels[] =
	    "app.kubernetes.io/name=checkout app.kubernetes.io/instance=checkout-eu1 "
	    "app.kubernetes.io/version=5.7.2 app.kubernetes.io/component=frontend "
	    "app.kubernetes.io/part-of=webshop app.kubernetes.io/managed-by=helm "
	    "topology.kubernetes.io/zone=eu-west-1a topology.kubernetes.io/region=eu-west-1";
	const struct bpflb_cfg_schema sch[] = {
	    {"core", bpflb_core_sections},
	    {"lb", bpflb_services_sections},
	};
	char text[8192], ips[1024] = "";
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;
	const struct bpflb_node_conf *nc;
	int i;

	ck_assert_uint_gt(strlen(labels), 230);
	for (i = 0; i < 16; i++)
		sprintf(ips + strlen(ips), "%s198.51.100.%d", i ? ", " : "", 100 + i);
	snprintf(text, sizeof(text),
		 MINIMAL "labels = %s\n"
			 "[service web]\ntype = loadbalancer\nport = http tcp 80\n"
			 "backend = 10.1.0.1 node=node1\nlb_ips = %s\n",
		 labels, ips);
	ck_assert_int_eq(load_buf(text, strlen(text), 0, sch, 2, &cfg, &err), 0);
	nc = bpflb_cfg_conf(bpflb_cfg_section(cfg, "node", 0));
	ck_assert_uint_eq(nc->labels.n, 8);
	ck_assert_str_eq(nc->labels.v[7], "topology.kubernetes.io/region=eu-west-1");
	ck_assert_str_eq(bpflb_cfg_str(bpflb_cfg_find(cfg, "service", "web"), "lb_ips"), ips);
	ck_assert_int_eq(bpflb_services_validate(cfg, &err), 0);
	bpflb_config_free(cfg);
}
END_TEST

/* List keys repeat and continue on deeper indented lines; their words add up. */
START_TEST(test_list_continue)
{
	static const char text[] = MINIMAL	      /* 1-5 */
	    "labels = zone=a\n"			      /* 6 */
	    "  rack=r7, row=3   ; comment\n"	      /* 7 */
	    "; a comment does not end the list\n"    /* 8 */
	    "\n"				      /* 9 */
	    "\tpod=x\n"				      /* 10 */
	    "labels = team=net\n"		      /* 11 */
	    "external_addresses =\n"		      /* 12 */
	    "    192.0.2.1\n"			      /* 13 */
	    "    192.0.2.2 192.0.2.3\n"		      /* 14 */
	    "[test]\n"				      /* 15 */
	    "  words = a\n"			      /* 16 */
	    "  color = red\n"			      /* 17: as deep: a key */
	    "  prefixes = 10.0.0.0/8\n"		      /* 18 */
	    "      192.168.0.0/16\n";		      /* 19 */
	struct bpflb_config *cfg = accept_str(text);
	const struct bpflb_cfg_section *n = bpflb_cfg_section(cfg, "node", 0);
	const struct bpflb_cfg_section *t = bpflb_cfg_section(cfg, "test", 0);
	const struct bpflb_node_conf *nc = bpflb_cfg_conf(n);

	ck_assert_str_eq(bpflb_cfg_str(n, "labels"), "zone=a rack=r7, row=3 pod=x team=net");
	ck_assert_int_eq(bpflb_cfg_line(n, "labels"), 6);
	ck_assert_uint_eq(nc->labels.n, 5);
	ck_assert_str_eq(nc->labels.v[4], "team=net");
	ck_assert_uint_eq(nc->external_addresses.n, 3);
	ck_assert_uint_eq(nc->external_addresses.v[2], ip("192.0.2.3"));
	ck_assert_str_eq(bpflb_cfg_str(t, "words"), "a");
	ck_assert_str_eq(bpflb_cfg_str(t, "color"), "red");
	ck_assert_str_eq(bpflb_cfg_str(t, "prefixes"), "10.0.0.0/8 192.168.0.0/16");
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_list_continue_errors)
{
	struct bpflb_err err;

	/* Only list keys continue: a deeper line under mode is a line of its own. */
	refuse("[daemon]\nmode = snat\n   dsr\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:3: syntax error: expected [section] or key = value");
	/* A continuation word is checked where it is. */
	refuse(MINIMAL "external_addresses = 192.0.2.1\n  192.0.2.x\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:7: [node] external_addresses = 192.0.2.x: \"192.0.2.x\" "
				  "is not an IPv4 address; expected IPv4 addresses such as "
				  "192.0.2.10, separated by commas or spaces");
	refuse(MINIMAL "external_addresses = 192.0.2.1\nexternal_addresses = 1.2.3\n", &err);
	ck_assert_ptr_nonnull(strstr(err.msg, "mem.ini:7: [node] external_addresses = 1.2.3: "));
	/* An indented key under a list is refused, not read as three words. */
	refuse(MINIMAL "labels = zone=a\n    name = n2\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:7: [node] labels = name = n2: this line is indented "
				  "deeper than labels at line 6, so it continues that list, but "
				  "it reads as a name line; expected it unindented to set name, "
				  "or these words on a line of their own \"labels = ...\"");
	/* Words longer than a word buffer would be cut by bpflb_cfg_word(): refused. */
	{
		char text[1024], word[300];

		memset(word, 'w', 299);
		word[299] = '\0';
		snprintf(text, sizeof(text), MINIMAL "labels = a=b\n  k=%s\n", word);
		refuse(text, &err);
		ck_assert_ptr_nonnull(strstr(err.msg, "mem.ini:7: [node] labels = k=www"));
		ck_assert_ptr_nonnull(strstr(err.msg, "a word of 301 characters"));
	}
}
END_TEST

START_TEST(test_list_max_words)
{
	size_t len = strlen(MINIMAL "[test]\n") + 70000 * 12;
	char *text = malloc(len), *p;
	struct bpflb_err err;
	int i;

	ck_assert_ptr_nonnull(text);
	p = text + sprintf(text, MINIMAL "[test]\n");
	for (i = 0; i < 7; i++) {
		/* 7 lines of 10000 one-letter words: 70000 > BPFLB_CFG_LIST_MAX */
		p += sprintf(p, "words =");
		for (int j = 0; j < 10000; j++)
			p += sprintf(p, " w");
		p += sprintf(p, "\n");
	}
	refuse(text, &err);
	/* The seventh line passes the limit; the message names it. */
	ck_assert_str_eq(err.msg, "mem.ini:13: [test] words: list too long; expected at most "
				  "65536 words and 1048576 characters in all its lines");
	free(text);
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = MINIMAL "[test]\nlabel = a\0b\n";
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;

	ck_assert_int_eq(load_buf(text, sizeof(text) - 1, 0, schemas, NSCHEMAS, &cfg, &err),
			 -EINVAL);
	ck_assert_str_eq(err.msg, "mem.ini:7: NUL character in line; expected text");
}
END_TEST

/* --- messages --- */

START_TEST(test_message_format)
{
	struct bpflb_err err;

	refuse("[daemon]\nlog_level = loud\ndevices = eth0\n[node]\nname = n\naddress = "
	       "10.0.0.1\n",
	       &err);
	ck_assert_str_eq(err.msg, "mem.ini:2: [daemon] log_level = loud: unknown value; expected "
				  "one of err, warning, notice, info, debug");

	refuse("[daemon]\ndevices = eth0\n[node]\nname = n\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:3: [node] address: missing required key; expected "
				  "address = an IPv4 address such as 192.0.2.10 (the node's "
				  "InternalIP)");

	refuse("[daemon]\ndevices = eth0\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini: missing required section [node]");

	refuse(MINIMAL "[service web]\nport = 80\nbackend = 192.0.2.1\nbackend = 192.0.2.2\n"
		       "backend = 192.0.2.1\n",
	       &err);
	ck_assert_str_eq(err.msg, "mem.ini:10: [service web] backend = 192.0.2.1: duplicate "
				  "backend, first at line 8; expected each backend once");

	refuse(MINIMAL "[daemon]\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:6: [daemon]: duplicate section, first at line 1; "
				  "expected the section once");

	refuse(MINIMAL "[test]\nprefixes = 10.0.0.0/8 10.1.2.3/16\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:7: [test] prefixes = 10.0.0.0/8 10.1.2.3/16: "
				  "10.1.2.3/16 has host bits set; did you mean 10.1.0.0/16?");

	refuse(MINIMAL "[test]\nlabel =\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:7: [test] label = \"\": empty value; expected a "
				  "non-empty value");
}
END_TEST

START_TEST(test_check_without_message)
{
	struct bpflb_err err;

	refuse(MINIMAL "[service discard]\nport = 9\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:6: [service discard]: refused by the checks of "
				  "testplug: Operation not supported");
}
END_TEST

START_TEST(test_hash_comment_hint)
{
	struct bpflb_err err;

	refuse("[daemon]\ndevices = eth0\nlog_level = debug # while we look\n", &err);
	ck_assert_msg(strstr(err.msg, "mem.ini:3: [daemon] log_level = debug # while we look: "
				      "unknown value; expected one of err, warning, notice, info, "
				      "debug "
				      "(after a value, a comment starts with \" ;\"; \"#\" only "
				      "comments out a whole line)"),
		      "%s", err.msg);
}
END_TEST

START_TEST(test_first_error_wins)
{
	struct bpflb_err err;

	/* A syntax error above a bad value... */
	refuse("[daemon]\ndevices = eth0\noops\nlog_level = loud\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:3: syntax error: expected [section] or key = value");
	/* ...and a bad value above a syntax error. */
	refuse("[daemon]\ndevices = eth0\nlog_level = loud\noops\n", &err);
	ck_assert_ptr_nonnull(strstr(err.msg, "mem.ini:3: [daemon] log_level = loud"));
	/* Per-key errors come before missing keys and sections. */
	refuse("[node]\naddress = 10.0.0.999\n", &err);
	ck_assert_ptr_nonnull(strstr(err.msg, "mem.ini:2: [node] address = 10.0.0.999"));
}
END_TEST

START_TEST(test_error_helpers)
{
	struct bpflb_config *cfg = accept_str(MINIMAL "[service web]\nport = 80\n"
						      "backend = 192.0.2.1\nbackend = 192.0.2.2\n");
	const struct bpflb_cfg_section *s = bpflb_cfg_find(cfg, "service", "web");
	struct bpflb_err err;

	ck_assert_int_eq(bpflb_cfg_error(&err, s, "port", 0, "too %s; expected less", "low"),
			 -EINVAL);
	ck_assert_str_eq(err.msg, "mem.ini:7: [service web] port = 80: too low; expected less");
	/* line picks one value of a MULTI key */
	bpflb_cfg_error(&err, s, "backend", 9, "bad");
	ck_assert_str_eq(err.msg, "mem.ini:9: [service web] backend = 192.0.2.2: bad");
	/* no key: the section itself, at its header */
	bpflb_cfg_error(&err, s, NULL, 0, "bad");
	ck_assert_str_eq(err.msg, "mem.ini:6: [service web]: bad");
	/* an absent key: at the header, without a value */
	bpflb_cfg_error(&err, s, "protocol", 0, "bad");
	ck_assert_str_eq(err.msg, "mem.ini:6: [service web] protocol: bad");
	/* a section absent from the file has no line */
	bpflb_cfg_error(&err, bpflb_cfg_section(cfg, "test", 0), "count", 0, "bad");
	ck_assert_str_eq(err.msg, "mem.ini: [test] count: bad");
	bpflb_cfg_error(&err, NULL, NULL, 0, "plain %d", 1);
	ck_assert_str_eq(err.msg, "plain 1");
	ck_assert_int_eq(bpflb_cfg_error(NULL, s, "port", 0, "x"), -EINVAL);

	ck_assert_int_eq(bpflb_err_set(&err, "%s %d", "x", 2), -EINVAL);
	ck_assert_str_eq(err.msg, "x 2");
	ck_assert_int_eq(bpflb_err_set(NULL, "x"), -EINVAL);
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_long_message_is_cut)
{
	struct bpflb_err err;
	char text[1024], value[180];

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	snprintf(text, sizeof(text), MINIMAL "[test]\ncolor = %s #\n", value);
	refuse(text, &err);
	ck_assert_uint_lt(strlen(err.msg), sizeof(err.msg));
	ck_assert_ptr_nonnull(strstr(err.msg, "mem.ini:7: [test] color = vvv"));
}
END_TEST

/* --- typed sections: the engine fills structs --- */

struct typed_conf {
	bool flag;
	uint32_t count;
	uint32_t gateway;
	struct bpflb_cfg_ipv4s peers;
	struct bpflb_cfg_cidrs prefixes;
	int color;
	int shape; /* ENUM without a default */
	struct bpflb_cfg_words words;
	char *state_dir;
	uint32_t timeout;
	char *label;
	char *note; /* no default */
	struct bpflb_cfg_strs extra;
	uint32_t untyped_guard;
};

static const char *const shape_choices[] = {"round", "square", NULL};

static const struct bpflb_cfg_key typed_keys[] = {
    {.name = "flag", .type = BPFLB_CFG_BOOL, .def = "no", .flags = BPFLB_CFG_AT(struct typed_conf, flag)},
    {.name = "count", .type = BPFLB_CFG_U32, .def = "10", .min = 1, .max = 1000,
     .flags = BPFLB_CFG_AT(struct typed_conf, count)},
    {.name = "gateway", .type = BPFLB_CFG_IPV4, .def = "192.0.2.1",
     .flags = BPFLB_CFG_AT(struct typed_conf, gateway)},
    {.name = "peers", .type = BPFLB_CFG_IPV4_LIST, .flags = BPFLB_CFG_AT(struct typed_conf, peers)},
    {.name = "prefixes", .type = BPFLB_CFG_CIDR_LIST, .def = "10.0.0.0/8",
     .flags = BPFLB_CFG_AT(struct typed_conf, prefixes)},
    {.name = "color", .type = BPFLB_CFG_ENUM, .def = "green", .choices = color_choices,
     .flags = BPFLB_CFG_AT(struct typed_conf, color)},
    {.name = "shape", .type = BPFLB_CFG_ENUM, .choices = shape_choices,
     .flags = BPFLB_CFG_AT(struct typed_conf, shape)},
    {.name = "words", .type = BPFLB_CFG_LIST, .def = "alpha beta",
     .flags = BPFLB_CFG_AT(struct typed_conf, words)},
    {.name = "state_dir", .type = BPFLB_CFG_PATH, .def = "/var/lib/test",
     .flags = BPFLB_CFG_AT(struct typed_conf, state_dir)},
    {.name = "timeout", .type = BPFLB_CFG_DURATION, .def = "2m", .min = 1, .max = 86400,
     .flags = BPFLB_CFG_AT(struct typed_conf, timeout)},
    {.name = "label", .type = BPFLB_CFG_STRING, .def = "none",
     .flags = BPFLB_CFG_AT(struct typed_conf, label)},
    {.name = "note", .type = BPFLB_CFG_STRING, .flags = BPFLB_CFG_AT(struct typed_conf, note)},
    {.name = "extra", .type = BPFLB_CFG_STRING,
     .flags = BPFLB_CFG_F_MULTI | BPFLB_CFG_AT(struct typed_conf, extra)},
    /* A key a typed section may still leave to the string accessors. */
    {.name = "loose", .type = BPFLB_CFG_U32, .def = "7"},
    BPFLB_CFG_KEYS_END(struct typed_conf)};

static int typed_checked;

/* The check sees the filled struct. */
static int typed_check(const struct bpflb_cfg_section *sec, struct bpflb_err *err)
{
	const struct typed_conf *c = bpflb_cfg_conf(sec);

	typed_checked++;
	if (c->count == 13)
		return bpflb_cfg_error(err, sec, "count", 0, "unlucky; expected any other number");
	return 0;
}

static const struct bpflb_cfg_section_def typed_section = {
    .name = "typed", .named = true, .keys = typed_keys, .check = typed_check};
static const struct bpflb_cfg_section_def typed_one_section = {
    .name = "typed-one", .keys = typed_keys};
static const struct bpflb_cfg_section_def *const typed_sections[] = {&typed_section,
								     &typed_one_section, NULL};
static const struct bpflb_cfg_schema typed_schemas[] = {
    {.owner = "core", .sections = bpflb_core_sections},
    {.owner = "typedplug", .sections = typed_sections},
};

static int load_typed(const char *text, struct bpflb_config **cfg, struct bpflb_err *err)
{
	return load_buf(text, strlen(text), 0, typed_schemas, 2, cfg, err);
}

START_TEST(test_typed_fill)
{
	static const char text[] = MINIMAL "[typed t]\n"
					   "flag = on\n"
					   "count = 0x20\n"
					   "gateway = 198.51.100.7\n"
					   "peers = 192.0.2.1, 192.0.2.2\n"
					   "peers = 192.0.2.3\n"
					   "prefixes = 172.16.0.0/12\n"
					   "   192.168.0.0/16 0.0.0.0/0\n"
					   "color = blue\n"
					   "shape = square\n"
					   "words = one,two three\n"
					   "state_dir = /srv/x y\n"
					   "timeout = 1h\n"
					   "label = a = b : c\n"
					   "note = n\n"
					   "extra = first\n"
					   "extra = second\n";
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;
	const struct typed_conf *c;

	typed_checked = 0;
	ck_assert_int_eq(load_typed(text, &cfg, &err), 0);
	ck_assert_int_eq(typed_checked, 1);
	c = bpflb_cfg_conf(bpflb_cfg_find(cfg, "typed", "t"));
	ck_assert_ptr_nonnull(c);
	ck_assert(c->flag);
	ck_assert_uint_eq(c->count, 32);
	ck_assert_uint_eq(c->gateway, ip("198.51.100.7"));
	ck_assert_uint_eq(c->peers.n, 3);
	ck_assert_uint_eq(c->peers.v[0], ip("192.0.2.1"));
	ck_assert_uint_eq(c->peers.v[2], ip("192.0.2.3"));
	ck_assert_uint_eq(c->prefixes.n, 3);
	ck_assert_uint_eq(c->prefixes.v[1].addr, ip("192.168.0.0"));
	ck_assert_uint_eq(c->prefixes.v[1].plen, 16);
	ck_assert_uint_eq(c->prefixes.v[2].plen, 0);
	ck_assert_int_eq(c->color, 2);
	ck_assert_int_eq(c->shape, 1);
	ck_assert_uint_eq(c->words.n, 3);
	ck_assert_str_eq(c->words.v[0], "one");
	ck_assert_str_eq(c->words.v[2], "three");
	ck_assert_str_eq(c->state_dir, "/srv/x y");
	ck_assert_uint_eq(c->timeout, 3600);
	ck_assert_str_eq(c->label, "a = b : c");
	ck_assert_str_eq(c->note, "n");
	ck_assert_uint_eq(c->extra.n, 2);
	ck_assert_str_eq(c->extra.v[1], "second");
	ck_assert_int_eq(c->extra.line[1], 22);
	ck_assert_uint_eq(c->untyped_guard, 0);
	/* The accessors keep working for plugins, on the same values. */
	ck_assert_uint_eq(bpflb_cfg_u32(bpflb_cfg_find(cfg, "typed", "t"), "count"), 32);
	ck_assert_uint_eq(bpflb_cfg_u32(bpflb_cfg_find(cfg, "typed", "t"), "loose"), 7);
	bpflb_config_free(cfg);

	/* The check runs on the struct and its message names the line. */
	ck_assert_int_eq(load_typed(MINIMAL "[typed t]\ncount = 13\n", &cfg, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "mem.ini:7: [typed t] count = 13: unlucky; expected any other "
				  "number");
	/* Typed keys keep the messages of untyped ones: did you mean. */
	ck_assert_int_eq(load_typed(MINIMAL "[typed t]\ncolour = red\n", &cfg, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "mem.ini:7: [typed t] colour = red: unknown key "
					      "(did you mean color?); expected one of flag, count"));
	ck_assert_int_eq(load_typed(MINIMAL "[typed t]\ncolor = bleu\n", &cfg, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "mem.ini:7: [typed t] color = bleu: unknown value (did you "
				  "mean blue?); expected one of red, green, blue");
}
END_TEST

START_TEST(test_typed_defaults)
{
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;
	const struct typed_conf *c;

	ck_assert_int_eq(load_typed(MINIMAL "[typed t]\n", &cfg, &err), 0);
	/* A written section and the stand-in for an absent unnamed one: defaults alike. */
	for (int i = 0; i < 2; i++) {
		c = bpflb_cfg_conf(i ? bpflb_cfg_section(cfg, "typed-one", 0)
				     : bpflb_cfg_find(cfg, "typed", "t"));
		ck_assert_ptr_nonnull(c);
		ck_assert(!c->flag);
		ck_assert_uint_eq(c->count, 10);
		ck_assert_uint_eq(c->gateway, ip("192.0.2.1"));
		ck_assert_uint_eq(c->peers.n, 0);
		ck_assert_ptr_null(c->peers.v);
		ck_assert_uint_eq(c->prefixes.n, 1);
		ck_assert_int_eq(c->color, 1);
		ck_assert_int_eq(c->shape, -1);
		ck_assert_uint_eq(c->words.n, 2);
		ck_assert_str_eq(c->state_dir, "/var/lib/test");
		ck_assert_uint_eq(c->timeout, 120);
		ck_assert_str_eq(c->label, "none");
		ck_assert_ptr_null(c->note);
		ck_assert_uint_eq(c->extra.n, 0);
	}
	/* Untyped sections have no struct. */
	ck_assert_ptr_null(bpflb_cfg_conf(NULL));
	bpflb_config_free(cfg);
	cfg = accept_str(MINIMAL "[test]\n");
	ck_assert_ptr_null(bpflb_cfg_conf(bpflb_cfg_section(cfg, "test", 0)));
	bpflb_config_free(cfg);
}
END_TEST

/* The core's sections are typed: what daemon.c reads. */
START_TEST(test_typed_core)
{
	struct bpflb_config *cfg =
	    accept_str("[daemon]\ndevices = eth0, eth1\nmode = dsr\nlog_level = debug\n"
		       "metrics_listen = 127.0.0.1:9962\nclient_timeout = 2m\n"
		       "[node]\nname = n1\naddress = 10.0.0.1\nexternal_addresses = 10.0.0.9\n"
		       "[endpoint web-1]\naddress = 10.1.0.1\nnode = n1\nlabels = app=web\n");
	const struct bpflb_daemon_conf *dc = bpflb_daemon_conf(cfg);
	const struct bpflb_node_conf *nc = bpflb_node_conf(cfg);
	const struct bpflb_endpoint_conf *ec = bpflb_cfg_conf(bpflb_cfg_find(cfg, "endpoint", "web-1"));

	ck_assert_str_eq(dc->mode, "dsr");
	ck_assert_str_eq(bpflb_log_levels[dc->log_level], "debug");
	ck_assert_uint_eq(dc->devices.n, 2);
	ck_assert_str_eq(dc->devices.v[1], "eth1");
	ck_assert_uint_eq(dc->features.n, 0);
	ck_assert_str_eq(dc->bpffs_root, "/sys/fs/bpf/bpflb");
	ck_assert_str_eq(dc->metrics_listen, "127.0.0.1:9962");
	ck_assert_ptr_null(dc->control_group);
	ck_assert_uint_eq(dc->client_timeout, 120);
	ck_assert_uint_eq(dc->tc_handle, 0xb1b);
	ck_assert_str_eq(nc->name, "n1");
	ck_assert_uint_eq(nc->address, ip("10.0.0.1"));
	ck_assert_uint_eq(nc->external_addresses.n, 1);
	ck_assert_str_eq(ec->node, "n1");
	ck_assert_str_eq(ec->labels.v[0], "app=web");
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_typed_schema_errors)
{
	struct small {
		uint32_t a;
	};
	static const struct bpflb_cfg_key outside[] = {
	    {.name = "w", .type = BPFLB_CFG_LIST, .flags = BPFLB_CFG_AT(struct typed_conf, words)},
	    BPFLB_CFG_KEYS_END(struct small)};
	static const struct bpflb_cfg_key untyped_end[] = {
	    {.name = "a", .type = BPFLB_CFG_U32, .flags = BPFLB_CFG_AT(struct small, a)}, {0}};
	static const struct bpflb_cfg_key multi_u32[] = {
	    {.name = "a", .type = BPFLB_CFG_U32,
	     .flags = BPFLB_CFG_F_MULTI | BPFLB_CFG_AT(struct small, a)},
	    BPFLB_CFG_KEYS_END(struct small)};
	static const struct bpflb_cfg_section_def d1 = {.name = "x", .keys = outside};
	static const struct bpflb_cfg_section_def d2 = {.name = "x", .keys = untyped_end};
	static const struct bpflb_cfg_section_def d3 = {.name = "x", .keys = multi_u32};
	const struct bpflb_cfg_section_def *const s1[] = {&d1, NULL}, *const s2[] = {&d2, NULL},
						     *const s3[] = {&d3, NULL};
	struct bpflb_cfg_schema sch = {"bad", s1};
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;

	ck_assert_int_eq(load_buf("", 0, 0, &sch, 1, &cfg, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "schema of bad: [x] w: its member is outside the section's "
				  "struct (end the keys with BPFLB_CFG_KEYS_END(struct))");
	sch.sections = s2;
	ck_assert_int_eq(load_buf("", 0, 0, &sch, 1, &cfg, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "schema of bad: [x] a: its member is outside the section's "
				  "struct (end the keys with BPFLB_CFG_KEYS_END(struct))");
	sch.sections = s3;
	ck_assert_int_eq(load_buf("", 0, 0, &sch, 1, &cfg, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "schema of bad: [x] a: a typed MULTI key must be STRING or PATH");
}
END_TEST

/* The memory hook: an owner drops the sections it built its model from. */
START_TEST(test_release)
{
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;
	char *text = malloc(1 << 17), *p = text;
	int i;

	ck_assert_ptr_nonnull(text);
	p += sprintf(p, MINIMAL);
	for (i = 0; i < 1000; i++)
		p += sprintf(p, "[typed t%d]\ncount = %d\n[cluster-node c%d]\naddress = 10.2.%d.%d\n",
			     i, i % 12 + 1, i, i / 250, i % 250);
	ck_assert_msg(load_typed(text, &cfg, &err) == 0, "%s", err.msg);
	ck_assert(!bpflb_cfg_released(cfg, "typed"));
	ck_assert_ptr_nonnull(bpflb_cfg_find(cfg, "typed", "t999"));
	ck_assert_int_eq(bpflb_cfg_release(cfg, "typed"), 0);
	ck_assert(bpflb_cfg_released(cfg, "typed"));
	/* Released sections read as absent... */
	ck_assert_ptr_null(bpflb_cfg_find(cfg, "typed", "t5"));
	ck_assert_ptr_null(bpflb_cfg_section(cfg, "typed", 0));
	/* ...the others are untouched, and found by name as before. */
	ck_assert(!bpflb_cfg_released(cfg, "cluster-node"));
	for (i = 0; i < 1000; i += 111)
		ck_assert_int_eq(bpflb_cfg_section_line(bpflb_cfg_find(cfg, "cluster-node",
									(snprintf(text, 16, "c%d", i), text))),
				 8 + 4 * i);
	ck_assert_str_eq(bpflb_node_conf(cfg)->name, "node1");
	/* Twice, or a type without sections: nothing to do. */
	ck_assert_int_eq(bpflb_cfg_release(cfg, "typed"), 0);
	ck_assert_int_eq(bpflb_cfg_release(cfg, "nothing"), 0);
	bpflb_config_free(cfg);
	free(text);
}
END_TEST

START_TEST(test_error_errno)
{
	struct bpflb_config *cfg = accept_str(MINIMAL);
	const struct bpflb_cfg_section *d = bpflb_cfg_section(cfg, "daemon", 0);
	struct bpflb_err err;

	ck_assert_int_eq(bpflb_cfg_error_errno(&err, -EACCES, d, "devices", "cannot open %s: %s",
					       "x", strerror(EACCES)),
			 -EACCES);
	ck_assert_str_eq(err.msg, "mem.ini:2: [daemon] devices = eth0: cannot open x: Permission "
				  "denied");
	ck_assert_int_eq(bpflb_cfg_error_errno(&err, EPERM, d, NULL, "x"), -EPERM);
	ck_assert_int_eq(bpflb_cfg_error_errno(&err, 0, d, NULL, "x"), -EINVAL);
	bpflb_config_free(cfg);
}
END_TEST

/* --- loading --- */

START_TEST(test_cannot_open)
{
	struct bpflb_config *cfg = (struct bpflb_config *)&cfg;
	struct bpflb_err err;

	ck_assert_int_eq(
	    bpflb_config_load("/nonexistent/bpflb.ini", schemas, NSCHEMAS, 0, &cfg, &err), -ENOENT);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err.msg, "/nonexistent/bpflb.ini: cannot open: No such file or directory");

	/* A directory opens, but does not read: the cause is returned, not a fixed errno. */
	ck_assert_int_eq(bpflb_config_load(CONFIG_CORPUS_DIR, schemas, NSCHEMAS, 0, &cfg, &err),
			 -EISDIR);
	ck_assert_ptr_null(cfg);
	ck_assert_str_eq(err.msg, CONFIG_CORPUS_DIR ":1: read error: Is a directory");

	ck_assert_int_eq(bpflb_config_load(CONFIG_CORPUS_DIR "/good/full.ini/x", schemas, NSCHEMAS,
					   0, &cfg, &err),
			 -ENOTDIR);
	ck_assert_str_eq(err.msg, CONFIG_CORPUS_DIR "/good/full.ini/x: cannot open: Not a directory");
}
END_TEST

START_TEST(test_loaded_at)
{
	struct bpflb_config *cfg;
	time_t before = time(NULL), after;

	cfg = accept_str(MINIMAL);
	after = time(NULL);
	ck_assert_int_ge(bpflb_config_loaded_at(cfg), before);
	ck_assert_int_le(bpflb_config_loaded_at(cfg), after);
	bpflb_config_free(cfg);
}
END_TEST

START_TEST(test_skip_unknown)
{
	static const char text[] = "[egress]\nrule = x\n" MINIMAL "[service web]\nport = 1\n"
				   "[test]\nbogus = 1\n";
	const struct bpflb_cfg_schema core_only[] = {{"core", bpflb_core_sections}};
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;

	/* The first pass at start-up reads [daemon] with the core's schema alone. */
	ck_assert_int_eq(
	    load_buf(text, strlen(text), BPFLB_CFG_LOAD_SKIP_UNKNOWN, core_only, 1, &cfg, &err), 0);
	ck_assert_str_eq(bpflb_cfg_str(bpflb_cfg_section(cfg, "node", 0), "name"), "node1");
	ck_assert_ptr_null(bpflb_cfg_section(cfg, "service", 0));
	ck_assert_ptr_null(bpflb_cfg_section(cfg, "egress", 0));
	bpflb_config_free(cfg);

	ck_assert_int_eq(load_buf(text, strlen(text), 0, core_only, 1, &cfg, &err), -EINVAL);
	ck_assert_str_eq(err.msg, "mem.ini:1: [egress]: unknown section: [egress] belongs to no "
				  "loaded plugin (is its plugin enabled by [daemon] mode or "
				  "features?); expected [daemon], [node], [cluster-node NAME], "
				  "[endpoint NAME] from "
				  "core");
}
END_TEST

START_TEST(test_unknown_section_lists_owners)
{
	struct bpflb_err err;

	refuse(MINIMAL "[policy]\n", &err);
	ck_assert_str_eq(err.msg, "mem.ini:6: [policy]: unknown section: [policy] belongs to no "
				  "loaded plugin (is its plugin enabled by [daemon] mode or "
				  "features?); expected [daemon], [node], [cluster-node NAME], "
				  "[endpoint NAME] from "
				  "core; [test], [service NAME], [marker] from testplug");
}
END_TEST

START_TEST(test_unknown_section_groups_owners)
{
	static const char text[] = MINIMAL "[policy]\n";
	const struct bpflb_cfg_schema sch[] = {
	    {"bpflbd", bpflb_core_sections},
	    {"bpflbd", test_sections},
	};
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;

	/* The core's sections may come in several schemas: one group per owner. */
	ck_assert_int_eq(load_buf(text, strlen(text), 0, sch, 2, &cfg, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "; expected [daemon], [node], [cluster-node NAME], "
					      "[endpoint NAME], [test], [service NAME], [marker] "
					      "from bpflbd"));
	/* No schema at all: nothing to suggest. */
	ck_assert_int_eq(load_buf(text, strlen(text), 0, sch, 0, &cfg, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "mem.ini:1: [daemon]: unknown section"));
}
END_TEST

START_TEST(test_err_optional)
{
	static const char text[] = "[daemon]\n";
	struct bpflb_config *cfg = NULL;

	ck_assert_int_eq(load_buf(text, strlen(text), 0, schemas, NSCHEMAS, &cfg, NULL), -EINVAL);
	ck_assert_int_eq(bpflb_config_load("/nonexistent", schemas, NSCHEMAS, 0, &cfg, NULL),
			 -ENOENT);
}
END_TEST

/* --- schemas are checked too --- */

static const struct bpflb_cfg_key bad_default_keys[] = {
    {.name = "n", .type = BPFLB_CFG_U32, .def = "abc", .max = 10}, {0}};
static const struct bpflb_cfg_key enum_no_choices_keys[] = {{.name = "e", .type = BPFLB_CFG_ENUM},
							    {0}};
static const struct bpflb_cfg_key twice_keys[] = {
    {.name = "k", .type = BPFLB_CFG_STRING}, {.name = "k", .type = BPFLB_CFG_BOOL}, {0}};
static const struct bpflb_cfg_key required_default_keys[] = {
    {.name = "k", .type = BPFLB_CFG_STRING, .flags = BPFLB_CFG_F_REQUIRED, .def = "x"}, {0}};
static const struct bpflb_cfg_key min_max_keys[] = {
    {.name = "k", .type = BPFLB_CFG_DURATION, .min = 10, .max = 5}, {0}};
static const struct bpflb_cfg_key host_bits_default_keys[] = {
    {.name = "k", .type = BPFLB_CFG_CIDR_LIST, .def = "10.0.0.1/8"}, {0}};

#define SCHEMA_CASE(sec_name, named_, required_, keys_, why_)                                      \
	{                                                                                          \
		{.name = sec_name, .named = named_, .required = required_, .keys = keys_}, why_    \
	}

static const struct {
	struct bpflb_cfg_section_def def;
	const char *why;
} schema_cases[] = {
    SCHEMA_CASE("bad", false, false, bad_default_keys,
		"schema of bad: [bad] n: default \"abc\": not a number; expected an integer "
		"from 0 to 10, decimal or 0x hex"),
    SCHEMA_CASE("bad", false, false, enum_no_choices_keys,
		"schema of bad: [bad] e: enum without choices"),
    SCHEMA_CASE("bad", false, false, twice_keys, "schema of bad: [bad] k: declared twice"),
    SCHEMA_CASE("bad", false, false, required_default_keys,
		"schema of bad: [bad] k: required key with a default"),
    SCHEMA_CASE("bad", false, false, min_max_keys, "schema of bad: [bad] k: min is above max"),
    SCHEMA_CASE("bad", false, false, host_bits_default_keys,
		"schema of bad: [bad] k: default \"10.0.0.1/8\": 10.0.0.1/8 has host bits set; "
		"did you mean 10.0.0.0/8?"),
    SCHEMA_CASE("bad", true, true, NULL,
		"schema of bad: [bad NAME] is named and required; only unnamed sections can "
		"be required"),
    SCHEMA_CASE("two words", false, false, NULL,
		"schema of bad: section name \"two words\" is empty, longer than 64 or has "
		"spaces or brackets"),
    SCHEMA_CASE("test", false, false, NULL,
		"schema of bad: section [test] is already declared by testplug"),
};

START_TEST(test_schema_errors)
{
	const struct bpflb_cfg_section_def *defs[] = {&schema_cases[_i].def, NULL};
	const struct bpflb_cfg_schema sch[] = {
	    {"core", bpflb_core_sections},
	    {"testplug", test_sections},
	    {"bad", defs},
	};
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;

	ck_assert_int_eq(load_buf(MINIMAL, strlen(MINIMAL), 0, sch, 3, &cfg, &err), -EINVAL);
	ck_assert_str_eq(err.msg, schema_cases[_i].why);
}
END_TEST

START_TEST(test_schema_without_sections)
{
	const struct bpflb_cfg_schema sch[] = {
	    {"core", bpflb_core_sections},
	    {"nothing", NULL},
	};
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err;

	ck_assert_int_eq(load_buf(MINIMAL, strlen(MINIMAL), 0, sch, 2, &cfg, &err), 0);
	bpflb_config_free(cfg);
}
END_TEST

/* --- parsing helpers --- */

START_TEST(test_parse_u32)
{
	uint32_t v = 0;

	ck_assert_int_eq(bpflb_parse_u32("0", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(bpflb_parse_u32("10", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 10);
	ck_assert_int_eq(bpflb_parse_u32("007", 0, 10, &v), 0); /* decimal, not octal */
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(bpflb_parse_u32("0X1f", 0, 100, &v), 0);
	ck_assert_uint_eq(v, 31);
	ck_assert_int_eq(bpflb_parse_u32("4294967295", 0, UINT64_MAX, &v), 0);
	ck_assert_uint_eq(v, UINT32_MAX);
	ck_assert_int_eq(bpflb_parse_u32("11", 0, 10, &v), -ERANGE);
	ck_assert_int_eq(bpflb_parse_u32("4", 5, 10, &v), -ERANGE);
	ck_assert_int_eq(bpflb_parse_u32("4294967296", 0, UINT64_MAX, &v), -ERANGE);
	ck_assert_int_eq(bpflb_parse_u32("0x100000000", 0, UINT64_MAX, &v), -ERANGE);
	ck_assert_int_eq(bpflb_parse_u32("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	ck_assert_int_eq(bpflb_parse_u32("99999999999999999999999x", 0, UINT64_MAX, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32("", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32("0x", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32("+1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32("-1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32(" 1", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32("1 ", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32("1a", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32("0x1g", 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32(NULL, 0, 10, &v), -EINVAL);
	ck_assert_int_eq(bpflb_parse_u32("5", 0, 10, NULL), 0);
}
END_TEST

START_TEST(test_parse_duration)
{
	uint32_t s = 0;

	ck_assert_int_eq(bpflb_parse_duration("90", 0, UINT64_MAX, &s), 0);
	ck_assert_uint_eq(s, 90);
	ck_assert_int_eq(bpflb_parse_duration("90s", 0, UINT64_MAX, &s), 0);
	ck_assert_uint_eq(s, 90);
	ck_assert_int_eq(bpflb_parse_duration("5m", 0, UINT64_MAX, &s), 0);
	ck_assert_uint_eq(s, 300);
	ck_assert_int_eq(bpflb_parse_duration("1193046h", 0, UINT64_MAX, &s), 0);
	ck_assert_uint_eq(s, 1193046u * 3600);
	ck_assert_int_eq(bpflb_parse_duration("1193047h", 0, UINT64_MAX, &s), -ERANGE);
	ck_assert_int_eq(bpflb_parse_duration("61s", 0, 60, &s), -ERANGE);
	ck_assert_int_eq(bpflb_parse_duration("h", 0, 60, &s), -EINVAL);
	ck_assert_int_eq(bpflb_parse_duration("", 0, 60, &s), -EINVAL);
	ck_assert_int_eq(bpflb_parse_duration(NULL, 0, 60, &s), -EINVAL);
}
END_TEST

START_TEST(test_parse_ipv4)
{
	uint32_t a = 0;

	ck_assert_int_eq(bpflb_parse_ipv4("10.0.0.1", &a), 0);
	ck_assert_uint_eq(a, htonl(0x0a000001));
	ck_assert_int_eq(bpflb_parse_ipv4("255.255.255.255", &a), 0);
	ck_assert_int_eq(bpflb_parse_ipv4("0.0.0.0", NULL), 0);
	ck_assert_int_eq(bpflb_parse_ipv4("10.0.0", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4("10.1", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4("10.0.0.256", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4("010.0.0.1", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4("0x0a.0.0.1", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4(" 10.0.0.1", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4("10.0.0.1 ", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4("10.0.0.1/32", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4("", &a), -EINVAL);
	ck_assert_int_eq(bpflb_parse_ipv4(NULL, &a), -EINVAL);
}
END_TEST

START_TEST(test_parse_cidr)
{
	uint32_t a = 0;
	uint8_t len = 99;

	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.0/8", &a, &len), 0);
	ck_assert_uint_eq(a, htonl(0x0a000000));
	ck_assert_uint_eq(len, 8);
	ck_assert_int_eq(bpflb_parse_cidr("0.0.0.0/0", &a, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(bpflb_parse_cidr("192.0.2.7/32", &a, &len), 0);
	ck_assert_uint_eq(len, 32);
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.0/08", &a, &len), 0);
	ck_assert_uint_eq(len, 8);
	/* Host bits: refused, but the address is handed back. */
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.1/24", &a, &len), -EDOM);
	ck_assert_uint_eq(a, htonl(0x0a000001));
	ck_assert_uint_eq(len, 24);
	ck_assert_int_eq(bpflb_parse_cidr("1.0.0.0/0", &a, &len), -EDOM);
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.0/33", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.0/", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.0", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.0/8x", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.0/-1", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0.0/008", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr("10.0.0/8", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr("255.255.255.255.255/8", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr("/8", &a, &len), -EINVAL);
	ck_assert_int_eq(bpflb_parse_cidr(NULL, &a, &len), -EINVAL);
}
END_TEST

/* --- the corpus --- */

static int ini_only(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 4 && !strcmp(d->d_name + n - 4, ".ini");
}

/* The files of CONFIG_CORPUS_DIR/sub, sorted; returns their number. */
static int corpus(const char *sub, struct dirent ***names)
{
	char dir[512];
	int n;

	snprintf(dir, sizeof(dir), "%s/%s", CONFIG_CORPUS_DIR, sub);
	n = scandir(dir, names, ini_only, alphasort);
	ck_assert_msg(n >= 0, "%s: %s", dir, strerror(errno));
	return n;
}

static void free_names(struct dirent **names, int n)
{
	while (n--)
		free(names[n]);
	free(names);
}

START_TEST(test_corpus_good)
{
	struct bpflb_config *cfg;
	struct dirent **names;
	struct bpflb_err err;
	char path[1024];
	int i, n, bad = 0;

	n = corpus("good", &names);
	ck_assert_int_ge(n, 3);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/good/%s", CONFIG_CORPUS_DIR, names[i]->d_name);
		cfg = NULL;
		if (bpflb_config_load(path, schemas, NSCHEMAS, 0, &cfg, &err)) {
			fprintf(stderr, "good/%s refused: %s\n", names[i]->d_name, err.msg);
			bad++;
		}
		bpflb_config_free(cfg);
	}
	free_names(names, n);
	ck_assert_msg(!bad, "%d good file(s) refused", bad);
}
END_TEST

/* "# expect: TEXT" and "# line: N" from the first two lines of path. */
static int read_expectation(const char *path, char *expect, size_t len, int *line)
{
	char buf[512];
	FILE *fp = fopen(path, "r");
	int ret = -EINVAL;

	if (!fp)
		return -errno;
	if (!fgets(buf, sizeof(buf), fp) || strncmp(buf, "# expect: ", 10))
		goto out;
	buf[strcspn(buf, "\r\n")] = '\0';
	snprintf(expect, len, "%s", buf + 10);
	if (!fgets(buf, sizeof(buf), fp) || sscanf(buf, "# line: %d", line) != 1)
		goto out;
	ret = 0;
out:
	fclose(fp);
	return ret;
}

START_TEST(test_corpus_bad)
{
	char path[1024], expect[512], where[300];
	struct bpflb_config *cfg;
	struct dirent **names;
	struct bpflb_err err;
	int i, n, line, r, bad = 0;

	n = corpus("bad", &names);
	ck_assert_int_ge(n, 25);
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;

		snprintf(path, sizeof(path), "%s/bad/%s", CONFIG_CORPUS_DIR, name);
		if (read_expectation(path, expect, sizeof(expect), &line)) {
			fprintf(stderr, "bad/%s: no \"# expect:\" and \"# line:\" header\n", name);
			bad++;
			continue;
		}
		if (line > 0)
			snprintf(where, sizeof(where), "%s:%d: ", name, line);
		else
			snprintf(where, sizeof(where), "%s: ", name);
		cfg = NULL;
		memset(&err, 0, sizeof(err));
		r = bpflb_config_load(path, schemas, NSCHEMAS, 0, &cfg, &err);
		if (r != -EINVAL || cfg) {
			fprintf(stderr, "bad/%s: accepted or odd error (%d): %s\n", name, r,
				err.msg);
			bad++;
		} else if (!strstr(err.msg, where) || !strstr(err.msg, expect)) {
			fprintf(stderr, "bad/%s:\n  got:      %s\n  expected: %s...%s\n", name,
				err.msg, where, expect);
			bad++;
		}
		bpflb_config_free(cfg);
	}
	free_names(names, n);
	ck_assert_msg(!bad, "%d of %d bad file(s) not refused as expected", bad, n);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("values");
	tcase_add_test(tc, test_core_defaults);
	tcase_add_test(tc, test_absent_section_defaults);
	tcase_add_test(tc, test_null_section);
	tcase_add_test(tc, test_typed_values_ok);
	tcase_add_loop_test(tc, test_bool_spellings, 0, sizeof(bools) / sizeof(bools[0]));
	tcase_add_loop_test(tc, test_durations, 0, sizeof(durations) / sizeof(durations[0]));
	tcase_add_test(tc, test_words);
	tcase_add_test(tc, test_empty_lists);
	tcase_add_test(tc, test_multi);
	tcase_add_test(tc, test_named_sections);
	suite_add_tcase(s, tc);

	tc = tcase_create("reading");
	tcase_add_test(tc, test_layout);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_long_line_cut);
	tcase_add_test(tc, test_long_lists);
	tcase_add_test(tc, test_list_continue);
	tcase_add_test(tc, test_list_continue_errors);
	tcase_add_test(tc, test_list_max_words);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_cannot_open);
	tcase_add_test(tc, test_loaded_at);
	tcase_add_test(tc, test_skip_unknown);
	tcase_add_test(tc, test_err_optional);
	suite_add_tcase(s, tc);

	tc = tcase_create("typed");
	tcase_add_test(tc, test_typed_fill);
	tcase_add_test(tc, test_typed_defaults);
	tcase_add_test(tc, test_typed_core);
	tcase_add_test(tc, test_typed_schema_errors);
	tcase_add_test(tc, test_release);
	tcase_add_test(tc, test_error_errno);
	suite_add_tcase(s, tc);

	tc = tcase_create("messages");
	tcase_add_test(tc, test_message_format);
	tcase_add_test(tc, test_check_without_message);
	tcase_add_test(tc, test_hash_comment_hint);
	tcase_add_test(tc, test_first_error_wins);
	tcase_add_test(tc, test_error_helpers);
	tcase_add_test(tc, test_long_message_is_cut);
	tcase_add_test(tc, test_unknown_section_lists_owners);
	tcase_add_test(tc, test_unknown_section_groups_owners);
	suite_add_tcase(s, tc);

	tc = tcase_create("schemas");
	tcase_add_loop_test(tc, test_schema_errors, 0,
			    sizeof(schema_cases) / sizeof(schema_cases[0]));
	tcase_add_test(tc, test_schema_without_sections);
	suite_add_tcase(s, tc);

	tc = tcase_create("helpers");
	tcase_add_test(tc, test_parse_u32);
	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_parse_ipv4);
	tcase_add_test(tc, test_parse_cidr);
	suite_add_tcase(s, tc);

	tc = tcase_create("corpus");
	tcase_add_test(tc, test_corpus_good);
	tcase_add_test(tc, test_corpus_bad);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
