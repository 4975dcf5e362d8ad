// SPDX-License-Identifier: GPL-2.0-only
/* bpflbctl's tables over libsmartcols (see table.h for the rules). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <libsmartcols/libsmartcols.h>

#include "table.h"

struct table {
	struct libscols_table *tb;
	struct libscols_line *ln;
	size_t ncols, next; /* next: the cell the next table_*() fills */
};

static void __attribute__((noreturn)) oom(void)
{
	fprintf(stderr, "bpflbctl: out of memory\n");
	exit(1);
}

struct table *table_new(const struct table_col *cols)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t || !(t->tb = scols_new_table()))
		oom();
	/*
	 * Never "a terminal": on one, libsmartcols shrinks and truncates
	 * columns to the terminal's width, and a cut name reads as another
	 * name.  A wide table wraps in the terminal instead, as kubectl's do.
	 */
	scols_table_set_termforce(t->tb, SCOLS_TERMFORCE_NEVER);
	scols_table_set_column_separator(t->tb, "  ");
	for (; cols[t->ncols].name; t->ncols++)
		if (!scols_table_new_column(t->tb, cols[t->ncols].name, 0,
					    cols[t->ncols].kind == T_NUM ? SCOLS_FL_RIGHT : 0))
			oom();
	return t;
}

void table_row(struct table *t)
{
	t->ln = scols_table_new_line(t->tb, NULL);
	if (!t->ln)
		oom();
	t->next = 0;
}

void table_str(struct table *t, const char *s)
{
	/* More cells than columns is this program's bug: drop them, print the rest. */
	if (!t->ln || t->next >= t->ncols)
		return;
	if (scols_line_set_data(t->ln, t->next++, s && *s ? s : "-"))
		oom();
}

void table_int(struct table *t, int64_t v)
{
	table_fmt(t, "%" PRId64, v);
}

void table_fmt(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	table_str(t, s);
	free(s);
}

void table_print(struct table *t)
{
	/* Cells a row left unset print "-" too: a blank would shift a split. */
	struct libscols_iter *it = scols_new_iter(SCOLS_ITER_FORWARD);
	struct libscols_line *ln;

	if (!it)
		oom();
	while (!scols_table_next_line(t->tb, it, &ln))
		for (size_t i = 0; i < t->ncols; i++) {
			struct libscols_cell *c = scols_line_get_cell(ln, i);

			if (c && !scols_cell_get_data(c) && scols_line_set_data(ln, i, "-"))
				oom();
		}
	scols_free_iter(it);
	fflush(stdout);
	/* libsmartcols prints nothing for an empty table; the header says what is empty. */
	if (!scols_table_get_nlines(t->tb))
		for (size_t i = 0; i < t->ncols; i++)
			printf("%s%s",
			       scols_cell_get_data(
				   scols_column_get_header(scols_table_get_column(t->tb, i))),
			       i + 1 < t->ncols ? "  " : "\n");
	else
		scols_print_table(t->tb);
	fflush(stdout);
	scols_unref_table(t->tb);
	free(t);
}
