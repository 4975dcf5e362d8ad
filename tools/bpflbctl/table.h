/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * bpflbctl's tables: every table it prints goes through here, so that all of
 * them size each column to its widest cell (Kubernetes names run to 63
 * characters), right-align numbers, and never truncate.  libsmartcols does
 * the layout (as for lsblk, findmnt); this wrapper only fixes the policy.
 *
 *     struct table *t = table_new((const struct table_col[]){
 *         {"NAME"}, {"ID", T_NUM}, {NULL}});
 *     table_row(t);
 *     table_str(t, name);
 *     table_fmt(t, "%d", id);
 *     table_print(t);                 (prints to stdout and frees t)
 *
 * Cells are filled left to right; a missing or empty cell prints "-" so that
 * every row has a word in every column (scripts and tests split on blanks).
 */
#ifndef BPFLBCTL_TABLE_H
#define BPFLBCTL_TABLE_H

#include <stdint.h>

enum { T_TEXT = 0, T_NUM = 1 /* right-aligned */ };

struct table_col {
	const char *name;
	int kind; /* T_TEXT or T_NUM */
};

struct table;

/* A table with cols (ended by {NULL}); exits on ENOMEM like the rest of bpflbctl. */
struct table *table_new(const struct table_col *cols);
/* Start the next row; the cells that follow fill it left to right. */
void table_row(struct table *t);
void table_str(struct table *t, const char *s);
void table_int(struct table *t, int64_t v);
void table_fmt(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print to stdout and free t. */
void table_print(struct table *t);

#endif
