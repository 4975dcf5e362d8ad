// SPDX-License-Identifier: GPL-2.0-only
/*
 * CiliumClusterwideNetworkPolicy YAML: the input is one policy file, parsed
 * with its limits, and when accepted compiled for the policy tests' node and
 * evaluated for a few flows, as the plugin does on a reload.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>

#include "policy_model.h"

static char msg[POL_ERR_MAX];

#include "policy_scene.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const peers[] = {WORLD_IP, NODE2, APISERVER, WEB2, UNMANAGED_POD};
	static const char *const subjects[] = {NODE1, WEB1, DB1};
	struct pol_inventory inv;
	struct pol_compiled c = {0};
	struct pol_set set = {0};

	if (pol_load_buf("fuzz.yaml", (const char *)data, size, &set, msg))
		goto out;
	for (size_t i = 0; i < set.n; i++)
		set.pols[i].id = i + 1;
	scene(&inv, "role=fuzz");
	if (!pol_compile(&set, &inv, &c, msg))
		for (size_t s = 0; s < sizeof(subjects) / sizeof(*subjects); s++)
			for (size_t p = 0; p < sizeof(peers) / sizeof(*peers); p++)
				for (int dir = POL_DIR_IN; dir <= POL_DIR_OUT; dir++)
					pol_eval(&c, dir, ip(subjects[s]), ip(peers[p]),
						 IPPROTO_TCP, port_be(443));
	pol_compiled_free(&c);
	pol_inventory_free(&inv);
out:
	pol_set_free(&set);
	return 0;
}
