// SPDX-License-Identifier: GPL-2.0-only
/*
 * The configuration engine with the core's and the services' sections: the
 * input is one INI file, parsed and validated as --check-config does up to
 * the plugins and the devices (bpflb_services_validate builds the whole
 * service model: frontends, backends, Maglev sizes, node ports).  Then the
 * typed [daemon] struct is walked and the services are released, as the
 * running daemon does once its model is built.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"
#include "lb/services.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct bpflb_cfg_schema schemas[] = {
	    {"bpflbd", bpflb_core_sections},
	    {"bpflbd", bpflb_services_sections},
	};
	struct bpflb_config *cfg = NULL;
	struct bpflb_err err = {""};
	FILE *fp;

	/* fmemopen() refuses an empty buffer; a file with no bytes is still a file. */
	fp = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	if (!fp)
		return 0;
	if (!bpflb_config_load_fp(fp, "fuzz.ini", schemas, 2, 0, &cfg, &err)) {
		const struct bpflb_daemon_conf *dc = bpflb_daemon_conf(cfg);
		size_t n = 0;

		bpflb_services_validate(cfg, &err);
		for (uint32_t i = 0; i < dc->devices.n; i++)
			n += strlen(dc->devices.v[i]);
		if (n > (size_t)BPFLB_CFG_LIST_MAX * BPFLB_CFG_WORD_MAX)
			__builtin_trap();
		bpflb_cfg_release(cfg, "service");
		if (bpflb_cfg_section(cfg, "service", 0))
			__builtin_trap();
	}
	bpflb_config_free(cfg);
	fclose(fp);
	return 0;
}
