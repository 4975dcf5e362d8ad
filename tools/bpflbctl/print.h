/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * bpflbctl's readers of the daemon's JSON replies and its printers for people
 * (print.c).  -o json never comes here: it prints the reply's "data" as is.
 */
#ifndef BPFLBCTL_PRINT_H
#define BPFLBCTL_PRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* o[key] as text; "-" when absent or null. */
static inline const char *S(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

/* o[key] as a number; 0 when absent. */
static inline int64_t I(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static inline json_object *G(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

/* Length of an array; 0 for anything else. */
static inline size_t L(json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

#define AT(a, i) json_object_array_get_idx((a), (i))

void print_status(json_object *d);
void print_plugins(json_object *arr);
void print_services(json_object *arr);
/* service get / set: the service's rows, its settings, counters and backends. */
void print_service(json_object *s);
void print_backends(json_object *arr);
void print_overlay(json_object *d);
/* ct list (nat false) or nat list (nat true). */
void print_ct(json_object *d, bool nat);
void print_maglev(json_object *d);
void print_policy_list(json_object *d);
void print_policy(json_object *p);
void print_egress_list(json_object *d);

#endif
