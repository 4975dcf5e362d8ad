// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control protocol: the input is what a client writes on the socket; each
 * line (at most CONTROL_MAX_REQUEST bytes, as the connection code frames them)
 * goes through control_dispatch() on the commands of a daemon that runs no
 * configuration (daemon_ops_register), as tests/unit/test_control.c drives
 * it, and every reply must be one line.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "daemon_ops.h"
#include "ops/control.h"

static struct bpflb_daemon d;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct bpflb_err err = {""};

	if (!d.control && daemon_ops_register(&d, &err))
		abort();

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t len = (nl ? nl : end) - p;
		char *reply;

		if (len < CONTROL_MAX_REQUEST) {
			reply = control_dispatch(d.control, NULL, p, len);
			if (!reply || strchr(reply, '\n'))
				abort();
			free(reply);
		}
		p += len + 1;
	}
	return 0;
}
