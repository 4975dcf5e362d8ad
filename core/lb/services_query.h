/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Read-only views of the service state for the control socket and the
 * metrics endpoint: the applied model joined with the ids and entries of the
 * pinned maps, as json-c objects, plus conntrack listing and flushing.
 */
#ifndef BPFLB_CORE_SERVICES_QUERY_H
#define BPFLB_CORE_SERVICES_QUERY_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include <bpflb/config.h>
#include <bpflb/lb.h>

#include "lb/services.h"

/* Service list (name NULL) or one service; NULL with err set when it does not exist. */
json_object *svcq_services(struct bpflb_services *s, const char *name, struct bpflb_err *err);
/* Every backend in bpflb_backends, with the services that use it. */
json_object *svcq_backends(struct bpflb_services *s);

/* Conntrack filters; zero fields match everything. */
struct svcq_ct_filter {
	uint32_t svc_ids[64]; /* service-port ids of --service */
	unsigned int nsvc;
	bool by_service;
	uint32_t addr; /* network order; any address of the entry */
	bool by_addr;
	uint8_t proto;
	bool nat_only;	/* FWD entries with a SNAT port */
	uint32_t limit; /* most entries returned; 0 no limit */
};
/* Fill f->svc_ids from "NAME" or "NAME/PORT"; -ENOENT with err set when unknown. */
int svcq_ct_filter_service(struct bpflb_services *s, const char *spec, struct svcq_ct_filter *f,
			   struct bpflb_err *err);
/* {"total": matched, "entries": [...], "truncated": bool} */
int svcq_ct_list(struct bpflb_services *s, const struct svcq_ct_filter *f, json_object **out,
		 struct bpflb_err *err);
/* Delete the matching entries (both entries of a flow); *deleted counts entries. */
int svcq_ct_flush(struct bpflb_services *s, const struct svcq_ct_filter *f, uint64_t *deleted,
		  struct bpflb_err *err);
/* Entries in bpflb_ct (-errno on failure). */
long svcq_ct_count(struct bpflb_services *s);

/* Maglev table summary of "NAME" or "NAME/PORT". */
json_object *svcq_maglev(struct bpflb_services *s, const char *spec, struct bpflb_err *err);

/* Per-service counters summed over CPUs, for each applied service port. */
typedef void (*svcq_stats_cb)(void *ctx, const char *svc, const char *port, uint32_t id,
			      const struct bpflb_svc_stats *sum);
int svcq_svc_stats(struct bpflb_services *s, svcq_stats_cb cb, void *ctx);

/* Backend states (enum bpflb_backend_state) as the listings and backend.set-state name them. */
const char *svcq_state_name(uint8_t state);
int svcq_state_parse(const char *s, uint8_t *state);

#endif
