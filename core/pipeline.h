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

#include "lb/services.h"

struct bpf_object;

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
	int pins_fd;			/* bpflb_pins: the names this instance pinned */
	struct bpflb_map_sizes sizes;	/* of the shared maps, fixed while running */
	struct pipeline_dev devs[PIPELINE_MAX_DEVICES];
	int ndevs;
	int ifindexes[PIPELINE_MAX_DEVICES]; /* mirror of devs[].ifindex for plugins */
};

/*
 * Check the schema records under pin_root, load the entry object (creating or
 * reusing the pinned maps) and record the schema.  Nothing is attached yet.
 */
int pipeline_open(struct pipeline *pl, const char *pin_root, uint32_t tc_handle,
		  uint32_t tc_priority, uint32_t maglev_m, const struct bpflb_map_sizes *sizes,
		  struct bpflb_err *err);
/*
 * Would start accept the maps pinned under pin_root (read only, for
 * --check-config)?  Their schema records (-ESTALE, as pipeline_open) and the
 * shared maps' sizes: 0, or -EMSGSIZE
 * with *key the [lb] key of the first map pinned with another size and err
 * saying what to do (the pin keeps its size: a restart after --cleanup, which
 * resets conntrack, or the pinned size in the file).
 */
int pipeline_sizes_check(const char *pin_root, const struct bpflb_map_sizes *sizes,
			 const char **key, struct bpflb_err *err);
/*
 * Between bpf_object__open and load of any object with pin_root_path = the
 * instance's root: give the shared maps their configured sizes (libbpf reuses
 * a pin only when they match) and record the names of the object's pins in
 * bpflb_pins, so that --cleanup removes exactly those.
 */
int pipeline_pins_prepare(struct pipeline *pl, struct bpf_object *obj);
struct bpf_map;
/* The name map is pinned under in pl's root, NULL when it is not pinned there. */
const char *pipeline_pin_name(const struct pipeline *pl, const struct bpf_map *map);
/*
 * The shared set a pin name belongs to: PIPELINE_MAP_SET for the pipeline's
 * own maps (the stage array, the schema records), which every plugin uses,
 * BPFLB_MAP_SET_LB for the other maps of the core's object (lb_maps.h), NULL
 * for a name the core does not pin.
 */
#define PIPELINE_MAP_SET "pipeline"
const char *pipeline_map_set(const char *pin);
/*
 * --cleanup: unlink the pins this instance made, by name (the core's own from
 * its BPF object, the rest from bpflb_pins), then pin_root when empty.  Files
 * not made by bpflb are left and named in err/the log.  pin_root must be on a
 * bpffs (checked by the caller).  The number of pins removed, or -errno.
 */
int pipeline_remove_pins(const char *pin_root, struct bpflb_err *err);
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
 * Schema record of a map set ("lb", a plugin's name): 0 when absent, equal to
 * version, or at least oldest (adopted in place, same layout); -ESTALE with a
 * message naming both versions otherwise.
 */
int pipeline_schema_check(struct pipeline *pl, const char *set, uint32_t version,
			  uint32_t oldest, struct bpflb_err *err);
int pipeline_schema_record(struct pipeline *pl, const char *set, uint32_t version);
/* pipeline_schema_check() on the records pinned under pin_root, without a pipeline. */
int pipeline_schema_check_pinned(const char *pin_root, const char *set, uint32_t version,
				 uint32_t oldest, struct bpflb_err *err);

/* Remove the core's tc filters from the named devices (cleanup): how many were there. */
int pipeline_detach_devices(const char *const *names, int n, uint32_t tc_handle,
			    uint32_t tc_priority);

#endif
