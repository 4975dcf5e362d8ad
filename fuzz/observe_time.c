// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpflbctl observe --since/--until (tools/bpflbctl/observe.c): RFC 3339 times
 * and durations before now, from the command line.  A value is accepted or
 * refused; an accepted relative time is never after now.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "observe.h"

/* observe.c's connection side is bpflbctl.c's; the parser never reaches it. */
void connect_to(const char *sock, const char *config)
{
	abort();
}
void send_request(const char *cmd, json_object *args)
{
	abort();
}
json_object *read_reply(json_object **whole)
{
	abort();
}
json_object *read_line(void)
{
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const long long now = 1800000000LL * 1000000000LL;
	char s[128];
	long long t;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (!observe_parse_time(s, now, &t) && (s[0] < '0' || s[0] > '9' || !strchr(s, 'T')) &&
	    t > now)
		abort();
	return 0;
}
