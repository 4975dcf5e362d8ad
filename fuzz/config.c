// SPDX-License-Identifier: GPL-2.0-only
/*
 * The configuration engine with the core's and the services' sections: the
 * input is one INI file, parsed and validated as --check-config does up to
 * the plugins and the devices (bpflb_services_validate builds the whole
 * service model: frontends, backends, Maglev sizes, node ports).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>

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
	if (!bpflb_config_load_fp(fp, "fuzz.ini", schemas, 2, 0, &cfg, &err))
		bpflb_services_validate(cfg, &err);
	bpflb_config_free(cfg);
	fclose(fp);
	return 0;
}
