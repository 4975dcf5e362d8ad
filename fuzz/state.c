// SPDX-License-Identifier: GPL-2.0-only
/*
 * The state file (core/state/overlay.h): the input is the bytes of
 * overlay.json.  What bpflb_overlay_parse() accepts must be written back by
 * bpflb_overlay_json() and parse again to the same overlay (the daemon saves
 * what it loaded), and each accepted service's lines must go through the
 * [service] schema without harm, as a start does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "state/overlay.h"

static void same(const struct bpflb_overlay *a, const struct bpflb_overlay *b)
{
	if (a->nsvcs != b->nsvcs || a->nbes != b->nbes)
		abort();
	for (size_t i = 0; i < a->nbes; i++)
		if (a->bes[i].addr != b->bes[i].addr || a->bes[i].port != b->bes[i].port ||
		    a->bes[i].state != b->bes[i].state)
			abort();
	for (size_t i = 0; i < a->nsvcs; i++) {
		if (strcmp(a->svcs[i].name, b->svcs[i].name) ||
		    a->svcs[i].deleted != b->svcs[i].deleted || a->svcs[i].nlines != b->svcs[i].nlines)
			abort();
		for (size_t l = 0; l < a->svcs[i].nlines; l++)
			if (strcmp(a->svcs[i].lines[l], b->svcs[i].lines[l]))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bpflb_overlay o, again;
	struct bpflb_err err = {""};
	json_object *j;
	const char *text;

	if (bpflb_overlay_parse((const char *)data, size, "fuzz.json", &o, &err))
		return 0;
	j = bpflb_overlay_json(&o);
	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	if (bpflb_overlay_parse(text, strlen(text), "again.json", &again, &err))
		abort();
	same(&o, &again);
	for (size_t i = 0; i < o.nsvcs; i++) {
		struct bpflb_config *cfg = NULL;

		if (o.svcs[i].deleted)
			continue;
		if (!bpflb_overlay_svc_config(&o.svcs[i], "fuzz", &cfg, &err))
			bpflb_config_free(cfg);
	}
	bpflb_overlay_free(&again);
	bpflb_overlay_free(&o);
	json_object_put(j);
	return 0;
}
