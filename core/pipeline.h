/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The datapath the core owns: its entry programs on the tc hooks of every
 * configured device, the pinned stage array, and the schema records that stop
 * a daemon from reusing maps pinned with another layout.
 */
#ifndef BPFLB_CORE_PIPELINE_H
#define BPFLB_CORE_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>
#include <bpflb/config.h>
#include <bpflb/stages.h>

#define PIPELINE_MAX_DEVICES 32

struct pipeline_dev {
	char name[16];
	int ifindex;
};

struct pipeline {
	char pin_root[4096];
	uint32_t tc_handle;
	uint32_t tc_priority;
	struct bpflb_entry *skel; /* the core's BPF object (entry programs, shared maps) */
	int stages_fd;
	int schema_fd;
	struct pipeline_dev devs[PIPELINE_MAX_DEVICES];
	int ndevs;
	int ifindexes[PIPELINE_MAX_DEVICES]; /* mirror of devs[].ifindex for plugins */
};

/*
 * Check the schema records under pin_root, load the entry object (creating or
 * reusing the pinned maps) and record the schema.  Nothing is attached yet.
 */
int pipeline_open(struct pipeline *pl, const char *pin_root, uint32_t tc_handle,
		  uint32_t tc_priority, uint32_t maglev_m, struct bpflb_err *err);
void pipeline_close(struct pipeline *pl);

/*
 * Make the attached devices match names[] (attaching to new devices first,
 * then detaching from devices that left the list).  On error nothing changed.
 */
int pipeline_set_devices(struct pipeline *pl, const char *const *names, int n,
			 struct bpflb_err *err);
/* Resolve names to ifindexes without changing anything (validation). */
int pipeline_check_devices(const char *const *names, int n, struct bpflb_err *err);

int pipeline_stage_set(struct pipeline *pl, enum bpflb_stage st, int prog_fd);
int pipeline_stage_clear(struct pipeline *pl, enum bpflb_stage st);
/* Program id in a slot, 0 when empty. */
uint32_t pipeline_stage_prog_id(struct pipeline *pl, enum bpflb_stage st);

/*
 * Schema record of a map set ("lb", a plugin's name): 0 when absent or equal to
 * version, -ESTALE with a message naming both versions when it differs.
 */
int pipeline_schema_check(struct pipeline *pl, const char *set, uint32_t version,
			  struct bpflb_err *err);
int pipeline_schema_record(struct pipeline *pl, const char *set, uint32_t version);

/* Remove the core's tc filters from the named devices (cleanup). */
int pipeline_detach_devices(const char *const *names, int n, uint32_t tc_handle,
			    uint32_t tc_priority);

#endif
