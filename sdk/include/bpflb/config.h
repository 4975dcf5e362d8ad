/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Typed INI configuration, as the core and the plugins see it.
 *
 * The core reads the file with inih into sections of (key, value, line), then
 * checks every section against the schema that its owner declared: the core's
 * own sections ([daemon], [node], ...) and every section each plugin declares
 * in its descriptor.  A section or key nobody declared, a value of the wrong
 * type, a number out of range or a missing required key is an error of the form
 *
 *     FILE:LINE: [section] key = value: what is wrong; expected what is accepted
 *
 * Once a configuration passed the schema, the accessors below cannot fail on
 * type errors: they return the parsed value or the declared default.
 *
 * Typed sections.  A section whose keys say where their value goes (.flags =
 * BPFLB_CFG_AT(struct, member)) and whose key array ends with
 * BPFLB_CFG_KEYS_END(struct) is filled into that struct once, when the file is
 * loaded, before the section's check runs; bpflb_cfg_conf() returns it.  The
 * key's type decides the member's type:
 *
 *     BOOL                 bool
 *     U32, DURATION        uint32_t (seconds for DURATION)
 *     IPV4                 uint32_t, network byte order
 *     ENUM                 int, index into choices[]
 *     STRING, PATH         char * (read-only: the value's text, or the schema's
 *                          default; NULL: absent, no default)
 *     STRING|PATH + MULTI  struct bpflb_cfg_strs (every occurrence in file order,
 *                          with its line; the default, a list of one, when absent)
 *     LIST                 struct bpflb_cfg_words
 *     IPV4_LIST            struct bpflb_cfg_ipv4s
 *     CIDR_LIST            struct bpflb_cfg_cidrs
 *
 * Everything the struct points to belongs to the configuration and lives as
 * long as it (or until bpflb_cfg_release()).  Sections without BPFLB_CFG_AT
 * keys (every plugin built before typed sections existed) work as before.
 *
 * ABI: typed sections change no layout of plugin ABI 1.  The member offset
 * travels in the upper 16 bits of bpflb_cfg_key.flags (old plugins leave them
 * zero) and the struct size in the max of the terminating key (old plugins
 * terminate with {0}), so a descriptor built against the previous SDK loads
 * unchanged.
 *
 * File format.  A line may hold BPFLB_CFG_LINE_MAX characters; a longer one
 * is refused, naming FILE:LINE.  The value of a list key (LIST, IPV4_LIST,
 * CIDR_LIST) may continue on the following lines when they are indented deeper
 * than the key's line, and the key may repeat: every occurrence adds its words
 * (at most BPFLB_CFG_LIST_MAX words, each at most BPFLB_CFG_WORD_MAX - 1
 * characters).  Elsewhere indentation means nothing.
 */
#ifndef BPFLB_CONFIG_H
#define BPFLB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Functions bpflbd exports to plugins. */
#ifndef BPFLB_API
#define BPFLB_API __attribute__((visibility("default")))
#endif

enum bpflb_cfg_type {
	BPFLB_CFG_STRING,    /* any non-empty text */
	BPFLB_CFG_BOOL,      /* yes/no, true/false, on/off, 1/0 */
	BPFLB_CFG_U32,       /* decimal or 0x hex, within [min, max] */
	BPFLB_CFG_IPV4,      /* dotted quad */
	BPFLB_CFG_IPV4_LIST, /* comma or space separated dotted quads */
	BPFLB_CFG_CIDR_LIST, /* comma or space separated a.b.c.d/len */
	BPFLB_CFG_ENUM,      /* one of choices[] */
	BPFLB_CFG_LIST,      /* comma or space separated words */
	BPFLB_CFG_PATH,      /* absolute path */
	BPFLB_CFG_DURATION,  /* seconds: "30", "30s", "5m", "1h", within [min, max] s */
};

/*
 * A key may appear several times in one section when BPFLB_CFG_F_MULTI is set
 * (each occurrence is a value of its own); list keys may always repeat (their
 * words add up).
 */
#define BPFLB_CFG_F_REQUIRED (1u << 0)
#define BPFLB_CFG_F_MULTI    (1u << 1)
#define BPFLB_CFG_F_FIELD    (1u << 2) /* set by BPFLB_CFG_AT: the offset below is valid */
/* Where a typed section's key stores its value: .flags = BPFLB_CFG_AT(struct my_conf, port) */
#define BPFLB_CFG_AT(type, member) \
	(BPFLB_CFG_F_FIELD | ((uint32_t)offsetof(type, member) << 16))
#define BPFLB_CFG_FIELD_OFFSET(flags) ((size_t)((flags) >> 16))
/* The terminator of a typed section's keys: it carries the struct's size. */
#define BPFLB_CFG_KEYS_END(type) {.name = NULL, .max = sizeof(type)}

/* Limits of the file format (README, Configure: Limits). */
#define BPFLB_CFG_LINE_MAX 65536  /* characters of one line, without its newline */
#define BPFLB_CFG_LIST_MAX 65536  /* words of one list key, all occurrences together */
#define BPFLB_CFG_VALUE_MAX (1u << 20) /* characters of one list value, all lines together */
#define BPFLB_CFG_NAME_MAX 64     /* characters of a key or a section type */

/* The storage of typed list keys. */
struct bpflb_cfg_words {
	char **v;
	uint32_t n;
};

struct bpflb_cfg_ipv4s {
	uint32_t *v; /* network byte order */
	uint32_t n;
};

struct bpflb_cfg_cidr {
	uint32_t addr; /* network byte order, host bits clear */
	uint8_t plen;
};

struct bpflb_cfg_cidrs {
	struct bpflb_cfg_cidr *v;
	uint32_t n;
};

/* A MULTI key: each occurrence and the line it is on, for messages. */
struct bpflb_cfg_strs {
	char **v;
	int *line;
	uint32_t n;
};

struct bpflb_cfg_key {
	const char *name;
	enum bpflb_cfg_type type;
	uint32_t flags;
	const char *def;              /* default, as it would be written; NULL: none */
	uint64_t min, max;            /* U32 and DURATION; max 0: no upper bound;
				       * in the terminator: size of the typed struct */
	const char *const *choices;   /* ENUM: NULL-terminated */
	const char *help;             /* one line: what the key means */
};

struct bpflb_cfg_section;
struct bpflb_config;
struct bpflb_err;

struct bpflb_cfg_section_def {
	const char *name;    /* "daemon" -> [daemon]; "service" + named -> [service NAME] */
	bool named;          /* instances carry a name: [service web] */
	bool required;       /* the file must contain it (unnamed sections only) */
	/* terminated by an entry with name == NULL (BPFLB_CFG_KEYS_END for a typed section) */
	const struct bpflb_cfg_key *keys;
	/*
	 * Checks that span keys of one section (after the per-key checks passed
	 * and, in a typed section, after its struct was filled).
	 */
	int (*check)(const struct bpflb_cfg_section *sec, struct bpflb_err *err);
};

/* Room for one error message naming file, line, section and key. */
struct bpflb_err {
	char msg[1024];
};

/* --- sections --- */
BPFLB_API const char *bpflb_cfg_path(const struct bpflb_config *cfg);
/* The idx-th section of this type ("service"), in file order; NULL past the end. */
BPFLB_API const struct bpflb_cfg_section *bpflb_cfg_section(const struct bpflb_config *cfg,
						  const char *type, unsigned int idx);
/* A named section ([service web]) by name; NULL when absent. */
BPFLB_API const struct bpflb_cfg_section *bpflb_cfg_find(const struct bpflb_config *cfg,
					       const char *type, const char *name);
BPFLB_API const char *bpflb_cfg_section_type(const struct bpflb_cfg_section *sec);
BPFLB_API const char *bpflb_cfg_section_name(const struct bpflb_cfg_section *sec); /* "" unnamed */
BPFLB_API int bpflb_cfg_section_line(const struct bpflb_cfg_section *sec);
BPFLB_API const struct bpflb_config *bpflb_cfg_section_config(const struct bpflb_cfg_section *sec);
/*
 * The struct a typed section was filled into (defaults for keys not written;
 * an absent unnamed section is all defaults); NULL for an untyped section or
 * sec NULL.  Read fields, never the same key again by name.
 */
BPFLB_API const void *bpflb_cfg_conf(const struct bpflb_cfg_section *sec);
/*
 * Did the owner of the sections of type release them (bpflb_cfg_release())?
 * Released sections read as absent: bpflb_cfg_section() and bpflb_cfg_find()
 * return NULL for them, as for a file without any.
 */
BPFLB_API bool bpflb_cfg_released(const struct bpflb_config *cfg, const char *type);

/*
 * --- values ---
 * A key absent from its section reads as its declared default.  An unnamed
 * section absent from the file is still found by bpflb_cfg_section(), with
 * line 0, so its keys read as their defaults too.  sec may be NULL (a named
 * section that does not exist): the zero value is returned (NULL, false, 0).
 */
BPFLB_API bool bpflb_cfg_has(const struct bpflb_cfg_section *sec, const char *key);
/* Line of the (first) occurrence of key, or of the section header when absent. */
BPFLB_API int bpflb_cfg_line(const struct bpflb_cfg_section *sec, const char *key);
BPFLB_API const char *bpflb_cfg_str(const struct bpflb_cfg_section *sec, const char *key);
BPFLB_API bool bpflb_cfg_bool(const struct bpflb_cfg_section *sec, const char *key);
BPFLB_API uint32_t bpflb_cfg_u32(const struct bpflb_cfg_section *sec, const char *key);
/* IPv4 in network byte order. */
BPFLB_API uint32_t bpflb_cfg_ipv4(const struct bpflb_cfg_section *sec, const char *key);
/* The idx-th value of a MULTI key, with its line; NULL past the end. */
BPFLB_API const char *bpflb_cfg_multi(const struct bpflb_cfg_section *sec, const char *key,
			    unsigned int idx, int *line);
/*
 * Split a LIST/IPV4_LIST/CIDR_LIST value: the idx-th word copied into buf; NULL
 * past the end.  A word longer than len - 1 is cut: a buffer of
 * BPFLB_CFG_WORD_MAX holds any word, as the engine refuses longer ones.  A
 * list key that repeats or continues reads as one value, its words in file
 * order.
 */
#define BPFLB_CFG_WORD_MAX 256
BPFLB_API const char *bpflb_cfg_word(const char *list, unsigned int idx, char *buf, size_t len);

/*
 * --- parsing helpers shared by every section owner ---
 * They return 0, -EINVAL when s is malformed, or -ERANGE when it is outside
 * [min, max].  bpflb_parse_cidr() returns -EDOM when host bits are set
 * (10.0.0.1/24), after filling addr_be and plen so that the caller can
 * suggest the network.
 */
BPFLB_API int bpflb_parse_ipv4(const char *s, uint32_t *addr_be);
BPFLB_API int bpflb_parse_cidr(const char *s, uint32_t *addr_be, uint8_t *plen);
BPFLB_API int bpflb_parse_u32(const char *s, uint64_t min, uint64_t max, uint32_t *out);
/* "30", "30s", "5m", "2h" -> seconds */
BPFLB_API int bpflb_parse_duration(const char *s, uint64_t min, uint64_t max, uint32_t *secs);

/*
 * Format an error about sec/key as "FILE:LINE: [section] key = value: ..." into
 * err and return -EINVAL.  key may be NULL (error about the section itself);
 * line 0 means "line of key in sec".
 */
BPFLB_API int bpflb_cfg_error(struct bpflb_err *err, const struct bpflb_cfg_section *sec,
		    const char *key, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
BPFLB_API int bpflb_err_set(struct bpflb_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * The same, for errors that have a cause other than the file's text (a
 * system call failed): return errnum (a negative errno) instead of -EINVAL, so
 * the caller can tell EACCES from a typo.
 */
BPFLB_API int bpflb_cfg_error_errno(struct bpflb_err *err, int errnum,
				    const struct bpflb_cfg_section *sec, const char *key,
				    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#ifdef __cplusplus
}
#endif
#endif
