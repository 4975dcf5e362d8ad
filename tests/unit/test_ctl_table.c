// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpflbctl's table helper (tools/bpflbctl/table.c) without a daemon: columns
 * as wide as their widest cell with 63-character names kept whole, numbers
 * right-aligned under their header, "-" for empty cells, the header of an
 * empty table, and control characters from the daemon's strings escaped
 * rather than sent to the terminal.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "table.h"

#define NAME63 "svc-abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvz"

/* What fn prints on stdout, malloc'ed. */
static char *captured(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved = dup(STDOUT_FILENO);
	char *buf;
	long n;

	ck_assert_ptr_nonnull(tmp);
	fflush(stdout);
	dup2(fileno(tmp), STDOUT_FILENO);
	fn();
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = ftell(tmp);
	ck_assert_int_ge(n, 0);
	buf = calloc(1, (size_t)n + 1);
	rewind(tmp);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, tmp), (size_t)n);
	fclose(tmp);
	return buf;
}

static void two_rows(void)
{
	struct table *t = table_new((const struct table_col[]){
	    {"SERVICE"}, {"ID", T_NUM}, {"STATE"}, {"FRONTENDS"}, {NULL}});

	table_row(t);
	table_str(t, NAME63);
	table_int(t, 7);
	table_str(t, "");
	table_str(t, "10.0.0.1:80");
	table_row(t);
	table_str(t, "web");
	table_int(t, 12345);
	table_str(t, "active");
	table_print(t); /* FRONTENDS of this row never set */
}

START_TEST(test_widths)
{
	char *out = captured(two_rows), *l1, *l2, *l3;
	size_t svc_w = strlen(NAME63);

	l1 = strtok(out, "\n");
	l2 = strtok(NULL, "\n");
	l3 = strtok(NULL, "\n");
	ck_assert_ptr_nonnull(l3);
	ck_assert_ptr_null(strtok(NULL, "\n"));
	/* the long name whole, the next column two blanks after it in every line */
	ck_assert(!strncmp(l2, NAME63 "  ", svc_w + 2));
	ck_assert(!strncmp(l1, "SERVICE ", 8));
	ck_assert(!strncmp(l3, "web ", 4));
	/* ID right-aligned: every line's column ends at the same offset */
	ck_assert(!strncmp(l1 + svc_w + 2, "   ID  ", 7));
	ck_assert(!strncmp(l2 + svc_w + 2, "    7  ", 7));
	ck_assert(!strncmp(l3 + svc_w + 2, "12345  ", 7));
	/* STATE and FRONTENDS start under their headers; unset cells print "-" */
	ck_assert(!strncmp(l1 + svc_w + 9, "STATE   FRONTENDS", 17));
	ck_assert(!strncmp(l2 + svc_w + 9, "-       10.0.0.1:80", 19));
	ck_assert(!strncmp(l3 + svc_w + 9, "active  -", 9));
	free(out);
}
END_TEST

static void empty(void)
{
	table_print(table_new((const struct table_col[]){{"PROTO"}, {"IDLE", T_NUM}, {NULL}}));
}

START_TEST(test_empty)
{
	char *out = captured(empty);

	ck_assert_str_eq(out, "PROTO  IDLE\n");
	free(out);
}
END_TEST

static void hostile(void)
{
	struct table *t = table_new((const struct table_col[]){{"NAME"}, {NULL}});

	table_row(t);
	table_str(t, "x\033[2Jy");
	table_print(t);
}

START_TEST(test_escapes)
{
	char *out = captured(hostile);

	ck_assert_ptr_null(strchr(out, '\033'));
	ck_assert_ptr_nonnull(strstr(out, "x\\x1b[2Jy"));
	free(out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctl_table");
	TCase *tc = tcase_create("table");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_widths);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_escapes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
