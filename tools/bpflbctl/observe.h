/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * bpflbctl observe (observe.c) and what it uses of bpflbctl.c's connection.
 */
#ifndef BPFLBCTL_OBSERVE_H
#define BPFLBCTL_OBSERVE_H

#include <stdbool.h>
#include <json-c/json.h>

/* bpflbctl.c: connect (exits on failure), one request, the reply's "data", stream lines */
void connect_to(const char *sock, const char *config);
void send_request(const char *cmd, json_object *args);
json_object *read_reply(json_object **whole);
json_object *read_line(void);

/*
 * observe [OPTIONS] from argv[first]: checks every option before connecting
 * (exit 2 naming the option), then prints flows as text or, with json, as
 * `hubble observe -o json` records.  Returns the exit status.
 */
int observe_main(int argc, char **argv, int first, const char *sock, const char *config, bool json);

/* Exposed for the fuzz target: RFC 3339 or a relative time ("5m": 5 minutes before now). */
int observe_parse_time(const char *s, long long now_ns, long long *out_ns);

#endif
