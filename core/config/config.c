// SPDX-License-Identifier: GPL-2.0-only
/*
 * The configuration engine: reads an INI file with inih and checks it, whole,
 * against the schemas of the core and of the loaded plugins.
 *
 * inih is driven through ini_parse_stream() with our own line reader, for
 * four reasons: the Debian build reports no line numbers to the handler
 * (INI_HANDLER_LINENO=0); its line buffer is fixed at build time (INI_MAX_LINE
 * 200, on the stack) and a longer line would be split silently into two; it
 * does not tell the handler about a section header
 * (INI_CALL_HANDLER_ON_NEW_SECTION=0), so an empty [node] would go unseen; and
 * it takes every indented line for the continuation of the value above, where
 * here only list keys continue.  The reader reads whole lines of up to
 * BPFLB_CFG_LINE_MAX characters itself, counts them, handles section headers
 * and decides what is a continuation; inih still parses "key = value",
 * comments and continuation lines and reports syntax errors.
 *
 * A line longer than inih's buffer reaches inih cut: the key and the start of
 * the value (the reader removed the inline comment first, as inih would), and
 * the handler appends the rest, which the reader kept (cfg_parser.tail).
 *
 * Sections whose schema is typed are then filled into their structs, once,
 * before the sections' checks run; consumers read fields.
 *
 * The first error wins, in file order, so that the operator fixes the file
 * from the top.  Nothing is kept after an error: a reload either gets a whole
 * new configuration or keeps the running one.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <ini.h>

#include "config/config_internal.h"

#define CFG_SEPARATORS ", \t"
#define CFG_SPACES     " \t\r\n\f\v"

struct cfg_value {
	/* its schema key: the name, and where a typed section stores the value */
	const struct bpflb_cfg_key *k;
	char *value;
	int line;
	size_t cap;     /* of value, when a list key grew by repetition or continuation */
	uint32_t words; /* of a list value, against BPFLB_CFG_LIST_MAX */
};

struct bpflb_cfg_section {
	const struct bpflb_config *cfg;
	const struct bpflb_cfg_section_def *def;
	const char *owner;
	char *header; /* between the brackets, as written: "service web" */
	char *type;
	char *name; /* "" when unnamed */
	int line;   /* 0: declared but absent from the file */
	struct cfg_value *vals;
	size_t nvals;
	size_t cap;
	void *conf; /* a typed section's struct; NULL: untyped */
};

/* The sections of one type in file order, for bpflb_cfg_section(). */
struct cfg_type_list {
	char *type;
	struct bpflb_cfg_section **secs;
	size_t n;
	size_t cap;
	bool released; /* bpflb_cfg_release(): the sections are gone */
};

struct bpflb_config {
	char *path;
	time_t loaded_at;
	struct bpflb_cfg_section **secs; /* pointers: sections never move */
	size_t nsecs;
	size_t cap;
	/*
	 * Indexes, so that a file of 100k [service] sections loads in linear
	 * time: by type (a handful of types), and an open-addressing hash of
	 * (type, name) for duplicates and bpflb_cfg_find().
	 */
	struct cfg_type_list *types;
	size_t ntypes;
	struct bpflb_cfg_section **by_name; /* hcap slots, NULL: empty */
	size_t hcap;			    /* power of two, or 0 */
};

struct cfg_parser {
	FILE *fp;
	const struct bpflb_cfg_schema *schemas;
	size_t nschemas;
	unsigned int flags;
	struct bpflb_config *cfg;
	struct bpflb_cfg_section *cur; /* where keys go; NULL before any header */
	bool skipping;		       /* in a section skipped by SKIP_UNKNOWN */
	int lineno;
	char *line; /* the whole current line, up to BPFLB_CFG_LINE_MAX characters */
	size_t line_cap;
	/* The rest of a line too long for inih, which the handler appends; or NULL. */
	const char *tail;
	/*
	 * The list key whose value indented lines continue: its value (index
	 * into cur->vals), its line and how deep the key line was indented.
	 * cont_key is NULL when no list key is open.
	 */
	const struct bpflb_cfg_key *cont_key;
	size_t cont_val;
	int cont_line;
	size_t key_indent;  /* of the current key line */
	size_t cont_indent; /* of cont_key's line */
	bool in_cont;	    /* the current line continues cont_key */
	int ret;      /* first error, or 0 */
	int err_line; /* its line */
	struct bpflb_err *err;
};

/* --- messages --- */

/* A bounded string builder: output past the end is cut, never overflows. */
struct strbuf {
	char *s;
	size_t len;
	size_t off;
};

static void sb_vadd(struct strbuf *b, const char *fmt, va_list ap)
{
	int n;

	if (b->off + 1 >= b->len)
		return;
	n = vsnprintf(b->s + b->off, b->len - b->off, fmt, ap);
	if (n < 0)
		return;
	b->off += (size_t)n;
	if (b->off >= b->len)
		b->off = b->len - 1;
}

static void __attribute__((format(printf, 2, 3))) sb_add(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vadd(b, fmt, ap);
	va_end(ap);
}

/* "FILE:LINE: [header] key = value: " + the message; parts may be absent. */
static int cfg_verror(struct bpflb_err *err, const char *file, int line, const char *header,
		      const char *key, const char *value, const char *fmt, va_list ap)
{
	struct strbuf b;

	if (!err)
		return -EINVAL;
	b = (struct strbuf){.s = err->msg, .len = sizeof(err->msg)};
	err->msg[0] = '\0';
	if (file) {
		sb_add(&b, "%s:", file);
		if (line > 0)
			sb_add(&b, "%d:", line);
		sb_add(&b, " ");
	}
	if (header)
		sb_add(&b, "[%s]", header);
	if (key)
		sb_add(&b, "%s%s", header ? " " : "", key);
	if (key && value)
		sb_add(&b, *value ? " = %s" : " = \"\"", value);
	if (header || key)
		sb_add(&b, ": ");
	sb_vadd(&b, fmt, ap);
	return -EINVAL;
}

static int __attribute__((format(printf, 7, 8)))
cfg_errorf(struct bpflb_err *err, const char *file, int line, const char *header, const char *key,
	   const char *value, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cfg_verror(err, file, line, header, key, value, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int bpflb_err_set(struct bpflb_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const struct cfg_value *cfg_find_value(const struct bpflb_cfg_section *sec, const char *key,
					      int line)
{
	size_t i;

	for (i = 0; i < sec->nvals; i++)
		if (!strcmp(sec->vals[i].k->name, key) && (!line || sec->vals[i].line == line))
			return &sec->vals[i];
	return NULL;
}

int bpflb_cfg_error(struct bpflb_err *err, const struct bpflb_cfg_section *sec, const char *key,
		    int line, const char *fmt, ...)
{
	const struct cfg_value *v = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (!sec) {
		cfg_verror(err, NULL, 0, NULL, key, NULL, fmt, ap);
		goto out;
	}
	if (key)
		v = cfg_find_value(sec, key, line);
	if (!line)
		line = v ? v->line : sec->line;
	cfg_verror(err, sec->cfg->path, line, sec->header, key, v ? v->value : NULL, fmt, ap);
out:
	va_end(ap);
	return -EINVAL;
}

int bpflb_cfg_error_errno(struct bpflb_err *err, int errnum, const struct bpflb_cfg_section *sec,
			  const char *key, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bpflb_cfg_error(err, sec, key, 0, "%s", msg);
	return errnum < 0 ? errnum : errnum > 0 ? -errnum : -EINVAL;
}

/*
 * Edit distance, to suggest "did you mean" for a mistyped key, section or mode
 * (config_internal.h).  Names that differ only in case are 0 apart; names are
 * short, longer ones simply get no suggestion (~0).
 */
unsigned int bpflb_name_distance(const char *a, const char *b)
{
	unsigned int row[33], i, j;
	size_t la = strlen(a), lb = strlen(b);

	if (!strcasecmp(a, b))
		return 0;
	if (la > 32 || lb > 32)
		return ~0u;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		unsigned int diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			unsigned int up = row[j];

			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return row[lb];
}

static bool cfg_close(const char *typo, const char *name)
{
	unsigned int d = bpflb_name_distance(typo, name);

	return d <= 2 && d < strlen(name);
}

/* --- parsing helpers --- */

int bpflb_parse_u32(const char *s, uint64_t min, uint64_t max, uint32_t *out)
{
	const char *p = s;
	uint64_t v = 0;
	bool hex = false, big = false;

	if (!s)
		return -EINVAL;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		hex = true;
		p += 2;
	}
	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		unsigned int d;

		if (isdigit((unsigned char)*p))
			d = (unsigned int)(*p - '0');
		else if (hex && isxdigit((unsigned char)*p))
			d = (unsigned int)(tolower((unsigned char)*p) - 'a' + 10);
		else
			return -EINVAL;
		/* Keep scanning after an overflow: "99999999999x" is a syntax error. */
		if (!big)
			v = v * (hex ? 16 : 10) + d;
		if (v > UINT32_MAX)
			big = true;
	}
	if (max > UINT32_MAX)
		max = UINT32_MAX;
	if (big || v < min || v > max)
		return -ERANGE;
	if (out)
		*out = (uint32_t)v;
	return 0;
}

int bpflb_parse_duration(const char *s, uint64_t min, uint64_t max, uint32_t *secs)
{
	const char *p = s;
	uint64_t v = 0, unit = 1;
	bool big = false;

	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (!big)
			v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			big = true;
	}
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	default:
		return -EINVAL;
	}
	if (*p && p[1])
		return -EINVAL;
	v *= unit;
	if (max > UINT32_MAX)
		max = UINT32_MAX;
	if (big || v < min || v > max)
		return -ERANGE;
	if (secs)
		*secs = (uint32_t)v;
	return 0;
}

int bpflb_parse_ipv4(const char *s, uint32_t *addr_be)
{
	struct in_addr in;

	/* inet_pton() takes dotted quads only: no "10.1", no octal, no hex. */
	if (!s || inet_pton(AF_INET, s, &in) != 1)
		return -EINVAL;
	if (addr_be)
		*addr_be = in.s_addr;
	return 0;
}

static uint32_t cfg_mask_be(unsigned int plen)
{
	return plen ? htonl(~0u << (32 - plen)) : 0;
}

int bpflb_parse_cidr(const char *s, uint32_t *addr_be, uint8_t *plen)
{
	char ip[INET_ADDRSTRLEN];
	const char *slash, *p;
	unsigned int len = 0;
	uint32_t addr;

	if (!s || !(slash = strchr(s, '/')) || (size_t)(slash - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	if (bpflb_parse_ipv4(ip, &addr))
		return -EINVAL;
	p = slash + 1;
	if (!*p || strlen(p) > 2)
		return -EINVAL;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		len = len * 10 + (unsigned int)(*p - '0');
	}
	if (len > 32)
		return -EINVAL;
	if (addr_be)
		*addr_be = addr;
	if (plen)
		*plen = (uint8_t)len;
	/* The address is still returned, so that the caller can suggest the network. */
	return (addr & ~cfg_mask_be(len)) ? -EDOM : 0;
}

static int cfg_parse_bool(const char *s, bool *b)
{
	static const char *const yes[] = {"yes", "true", "on", "1", NULL};
	static const char *const no[] = {"no", "false", "off", "0", NULL};
	unsigned int i;

	for (i = 0; s && yes[i]; i++) {
		if (!strcasecmp(s, yes[i])) {
			*b = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*b = false;
			return 0;
		}
	}
	return -EINVAL;
}

const char *bpflb_cfg_word(const char *list, unsigned int idx, char *buf, size_t len)
{
	const char *p = list;
	unsigned int i;
	size_t n;

	if (!list || !buf || !len)
		return NULL;
	for (i = 0;; i++) {
		p += strspn(p, CFG_SEPARATORS);
		if (!*p)
			return NULL;
		n = strcspn(p, CFG_SEPARATORS);
		if (i == idx)
			break;
		p += n;
	}
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

/* --- checking one value against its key --- */

static uint64_t cfg_max(const struct bpflb_cfg_key *k)
{
	return k->max ? k->max : UINT32_MAX;
}

/* 90 -> "90s", 300 -> "5m", 7200 -> "2h" */
static const char *cfg_fmt_secs(uint64_t s, char *buf, size_t len)
{
	if (s && !(s % 3600))
		snprintf(buf, len, "%lluh", (unsigned long long)(s / 3600));
	else if (s && !(s % 60))
		snprintf(buf, len, "%llum", (unsigned long long)(s / 60));
	else
		snprintf(buf, len, "%llus", (unsigned long long)s);
	return buf;
}

/* What a key accepts, for the "; expected ..." part of a message. */
static void cfg_expect(struct strbuf *b, const struct bpflb_cfg_key *k)
{
	char lo[32], hi[32];
	unsigned int i;

	switch (k->type) {
	case BPFLB_CFG_STRING:
		sb_add(b, "a non-empty value");
		break;
	case BPFLB_CFG_BOOL:
		sb_add(b, "yes, no, true, false, on, off, 1 or 0");
		break;
	case BPFLB_CFG_U32:
		sb_add(b, "an integer from %llu to %llu, decimal or 0x hex",
		       (unsigned long long)k->min, (unsigned long long)cfg_max(k));
		break;
	case BPFLB_CFG_IPV4:
		sb_add(b, "an IPv4 address such as 192.0.2.10");
		break;
	case BPFLB_CFG_IPV4_LIST:
		sb_add(b, "IPv4 addresses such as 192.0.2.10, separated by commas or spaces");
		break;
	case BPFLB_CFG_CIDR_LIST:
		sb_add(b, "prefixes a.b.c.d/len with len 0 to 32, separated by commas or spaces");
		break;
	case BPFLB_CFG_ENUM:
		sb_add(b, "one of ");
		for (i = 0; k->choices && k->choices[i]; i++)
			sb_add(b, "%s%s", i ? ", " : "", k->choices[i]);
		break;
	case BPFLB_CFG_LIST:
		sb_add(b, "words separated by commas or spaces");
		break;
	case BPFLB_CFG_PATH:
		sb_add(b, "an absolute path, starting with /");
		break;
	case BPFLB_CFG_DURATION:
		sb_add(b, "a duration from %s to %s, such as 30, 30s, 5m or 2h",
		       cfg_fmt_secs(k->min, lo, sizeof(lo)),
		       cfg_fmt_secs(cfg_max(k), hi, sizeof(hi)));
		break;
	default:
		sb_add(b, "a value of a known type");
		break;
	}
}

static bool cfg_is_list(enum bpflb_cfg_type t)
{
	return t == BPFLB_CFG_LIST || t == BPFLB_CFG_IPV4_LIST || t == BPFLB_CFG_CIDR_LIST;
}

/*
 * Check v against k.  On error, write "what is wrong; expected what is
 * accepted" into why and return -EINVAL.
 */
static int cfg_check_value(const struct bpflb_cfg_key *k, const char *v, char *why, size_t len)
{
	struct strbuf b = {.s = why, .len = len};
	char word[BPFLB_CFG_WORD_MAX], net[INET_ADDRSTRLEN];
	uint32_t addr;
	uint8_t plen;
	unsigned int i;
	bool bval;
	int r;

	why[0] = '\0';
	if (cfg_is_list(k->type)) {
		/* bpflb_cfg_word() callers hold a word in BPFLB_CFG_WORD_MAX. */
		for (const char *w = v + strspn(v, CFG_SEPARATORS); *w;
		     w += strspn(w, CFG_SEPARATORS)) {
			size_t n = strcspn(w, CFG_SEPARATORS);

			if (n >= BPFLB_CFG_WORD_MAX) {
				sb_add(&b, "a word of %zu characters (\"%.20s...\"); expected words "
					   "of at most %d characters",
				       n, w, BPFLB_CFG_WORD_MAX - 1);
				return -EINVAL;
			}
			w += n;
		}
	}
	if (!*v) {
		/* An empty list is a list; "required" asks for at least one word. */
		if (cfg_is_list(k->type) && !(k->flags & BPFLB_CFG_F_REQUIRED))
			return 0;
		sb_add(&b, cfg_is_list(k->type) ? "empty list" : "empty value");
		goto fail;
	}
	switch (k->type) {
	case BPFLB_CFG_STRING:
	case BPFLB_CFG_LIST:
		return 0;
	case BPFLB_CFG_BOOL:
		if (!cfg_parse_bool(v, &bval))
			return 0;
		sb_add(&b, "not a boolean");
		goto fail;
	case BPFLB_CFG_U32:
		r = bpflb_parse_u32(v, k->min, cfg_max(k), NULL);
		if (!r)
			return 0;
		sb_add(&b, r == -ERANGE ? "out of range" : "not a number");
		goto fail;
	case BPFLB_CFG_DURATION:
		r = bpflb_parse_duration(v, k->min, cfg_max(k), NULL);
		if (!r)
			return 0;
		sb_add(&b, r == -ERANGE ? "out of range" : "not a duration");
		goto fail;
	case BPFLB_CFG_IPV4:
		if (!bpflb_parse_ipv4(v, NULL))
			return 0;
		sb_add(&b, "not an IPv4 address");
		goto fail;
	case BPFLB_CFG_IPV4_LIST:
		for (i = 0; bpflb_cfg_word(v, i, word, sizeof(word)); i++) {
			if (bpflb_parse_ipv4(word, NULL)) {
				sb_add(&b, "\"%s\" is not an IPv4 address", word);
				goto fail;
			}
		}
		return 0;
	case BPFLB_CFG_CIDR_LIST:
		for (i = 0; bpflb_cfg_word(v, i, word, sizeof(word)); i++) {
			r = bpflb_parse_cidr(word, &addr, &plen);
			if (r == -EDOM) {
				addr &= cfg_mask_be(plen);
				inet_ntop(AF_INET, &addr, net, sizeof(net));
				sb_add(&b, "%s has host bits set; did you mean %s/%u?", word, net,
				       plen);
				return -EINVAL;
			}
			if (r) {
				sb_add(&b, "\"%s\" is not a prefix", word);
				goto fail;
			}
		}
		return 0;
	case BPFLB_CFG_ENUM:
		for (i = 0; k->choices && k->choices[i]; i++)
			if (!strcmp(v, k->choices[i]))
				return 0;
		sb_add(&b, "unknown value");
		for (i = 0; k->choices && k->choices[i]; i++) {
			if (cfg_close(v, k->choices[i])) {
				sb_add(&b, " (did you mean %s?)", k->choices[i]);
				break;
			}
		}
		goto fail;
	case BPFLB_CFG_PATH:
		if (v[0] == '/')
			return 0;
		sb_add(&b, "not an absolute path");
		goto fail;
	}
	sb_add(&b, "key of unknown type %d", (int)k->type);
fail:
	sb_add(&b, "; expected ");
	cfg_expect(&b, k);
	/* inih only knows ";" comments after a value; "#" ones end up in it. */
	if (strstr(v, " #") || strstr(v, "\t#"))
		sb_add(&b, " (after a value, a comment starts with \" ;\"; \"#\" only comments out "
			   "a whole line)");
	return -EINVAL;
}

/* --- typed sections --- */

/* Words of a list value: separated by commas or spaces. */
static uint32_t cfg_count_words(const char *v)
{
	uint32_t n = 0;

	for (v += strspn(v, CFG_SEPARATORS); *v; v += strspn(v, CFG_SEPARATORS)) {
		n++;
		v += strcspn(v, CFG_SEPARATORS);
	}
	return n;
}


/* Size of a typed section's struct (carried by its keys' terminator), 0: untyped. */
static size_t cfg_conf_size(const struct bpflb_cfg_section_def *def)
{
	const struct bpflb_cfg_key *k;

	for (k = def->keys; k && k->name; k++)
		;
	return k ? (size_t)k->max : 0;
}

/* Bytes the member of a BPFLB_CFG_AT key occupies: the key's type decides. */
static size_t cfg_field_size(const struct bpflb_cfg_key *k)
{
	switch (k->type) {
	case BPFLB_CFG_STRING:
	case BPFLB_CFG_PATH:
		return (k->flags & BPFLB_CFG_F_MULTI) ? sizeof(struct bpflb_cfg_strs)
						      : sizeof(char *);
	case BPFLB_CFG_BOOL:
		return sizeof(bool);
	case BPFLB_CFG_U32:
	case BPFLB_CFG_IPV4:
	case BPFLB_CFG_DURATION:
		return sizeof(uint32_t);
	case BPFLB_CFG_ENUM:
		return sizeof(int);
	case BPFLB_CFG_LIST:
		return sizeof(struct bpflb_cfg_words);
	case BPFLB_CFG_IPV4_LIST:
		return sizeof(struct bpflb_cfg_ipv4s);
	case BPFLB_CFG_CIDR_LIST:
		return sizeof(struct bpflb_cfg_cidrs);
	}
	return 0;
}

static void cfg_conf_free(const struct bpflb_cfg_section_def *def, void *conf)
{
	const struct bpflb_cfg_key *k;

	if (!conf)
		return;
	for (k = def->keys; k && k->name; k++) {
		char *at = (char *)conf + BPFLB_CFG_FIELD_OFFSET(k->flags);

		if (!(k->flags & BPFLB_CFG_F_FIELD))
			continue;
		switch (k->type) {
		case BPFLB_CFG_STRING:
		case BPFLB_CFG_PATH:
			/* The strings are the section's; a MULTI key owns its arrays. */
			if (k->flags & BPFLB_CFG_F_MULTI)
				free(((struct bpflb_cfg_strs *)at)->v);
			break;
		case BPFLB_CFG_LIST:
			free(((struct bpflb_cfg_words *)at)->v);
			break;
		case BPFLB_CFG_IPV4_LIST:
			free(((struct bpflb_cfg_ipv4s *)at)->v);
			break;
		case BPFLB_CFG_CIDR_LIST:
			free(((struct bpflb_cfg_cidrs *)at)->v);
			break;
		default:
			break;
		}
	}
	free(conf);
}

/*
 * The words of a checked list value as one allocation: n pointers, then the
 * words they point to.
 */
static int cfg_fill_words(const char *list, struct bpflb_cfg_words *out)
{
	uint32_t n = cfg_count_words(list), i = 0;
	char **v, *text;
	const char *w;

	out->n = 0;
	out->v = NULL;
	if (!n)
		return 0;
	v = malloc(n * sizeof(*v) + strlen(list) + 1);
	if (!v)
		return -ENOMEM;
	text = (char *)(v + n);
	for (w = list + strspn(list, CFG_SEPARATORS); *w; w += strspn(w, CFG_SEPARATORS)) {
		size_t len = strcspn(w, CFG_SEPARATORS);

		v[i++] = text;
		memcpy(text, w, len);
		text[len] = '\0';
		text += len + 1;
		w += len;
	}
	out->v = v;
	out->n = n;
	return 0;
}

/* Fill one member from the checked (or default) text s. */
static int cfg_fill_key(const struct bpflb_cfg_key *k, const char *s, char *at)
{
	struct bpflb_cfg_words words;
	uint32_t i;
	int ret = 0;

	switch (k->type) {
	case BPFLB_CFG_STRING:
	case BPFLB_CFG_PATH:
		/* the value's text, or the schema's default: read-only either way */
		*(char **)at = (char *)s;
		return 0;
	case BPFLB_CFG_BOOL:
		if (s)
			cfg_parse_bool(s, (bool *)at);
		return 0;
	case BPFLB_CFG_U32:
		if (s)
			bpflb_parse_u32(s, 0, UINT32_MAX, (uint32_t *)at);
		return 0;
	case BPFLB_CFG_DURATION:
		if (s)
			bpflb_parse_duration(s, 0, UINT32_MAX, (uint32_t *)at);
		return 0;
	case BPFLB_CFG_IPV4:
		if (s)
			bpflb_parse_ipv4(s, (uint32_t *)at);
		return 0;
	case BPFLB_CFG_ENUM:
		*(int *)at = -1; /* absent without a default */
		for (i = 0; s && k->choices[i]; i++)
			if (!strcmp(s, k->choices[i]))
				*(int *)at = (int)i;
		return 0;
	case BPFLB_CFG_LIST:
		return cfg_fill_words(s ? s : "", (struct bpflb_cfg_words *)at);
	case BPFLB_CFG_IPV4_LIST:
	case BPFLB_CFG_CIDR_LIST:
		break;
	}
	/* Address lists: parse the words, then keep only the numbers. */
	ret = cfg_fill_words(s ? s : "", &words);
	if (ret || !words.n)
		return ret;
	if (k->type == BPFLB_CFG_IPV4_LIST) {
		struct bpflb_cfg_ipv4s *l = (struct bpflb_cfg_ipv4s *)at;

		l->v = calloc(words.n, sizeof(*l->v));
		for (i = 0; l->v && i < words.n; i++)
			bpflb_parse_ipv4(words.v[i], &l->v[i]);
		l->n = l->v ? words.n : 0;
		ret = l->v ? 0 : -ENOMEM;
	} else {
		struct bpflb_cfg_cidrs *l = (struct bpflb_cfg_cidrs *)at;

		l->v = calloc(words.n, sizeof(*l->v));
		for (i = 0; l->v && i < words.n; i++)
			bpflb_parse_cidr(words.v[i], &l->v[i].addr, &l->v[i].plen);
		l->n = l->v ? words.n : 0;
		ret = l->v ? 0 : -ENOMEM;
	}
	free(words.v);
	return ret;
}

/*
 * The room a MULTI key's values need: n pointers and lines, and the default's
 * text when the key is absent.  The values themselves stay the section's.
 */
static int cfg_strs_alloc(const struct bpflb_cfg_key *k, uint32_t n, struct bpflb_cfg_strs *out)
{
	size_t text = !n && k->def ? strlen(k->def) + 1 : 0;

	if (text)
		n = 1;
	if (!n)
		return 0;
	out->v = malloc(n * (sizeof(char *) + sizeof(int)) + text);
	if (!out->v)
		return -ENOMEM;
	out->line = (int *)(out->v + n);
	if (text) {
		out->v[0] = strcpy((char *)(out->line + 1), k->def);
		out->line[0] = 0; /* filled by the caller: the section's line */
		out->n = 1;
	}
	return 0;
}

/*
 * Fill a typed section's struct from its checked values and the defaults, in
 * two walks over the values whatever their number: reading a repeated key by
 * index (bpflb_cfg_multi) rescans the section for each value, O(n^2) for a
 * service with 65k backends.
 */
static int cfg_fill(struct bpflb_cfg_section *sec)
{
	size_t size = cfg_conf_size(sec->def), nkeys = 0, i;
	const struct cfg_value *few[32], **first = few;
	const struct bpflb_cfg_key *k;
	uint32_t cnt[32], *count = cnt;
	int ret = 0;

	if (!size)
		return 0;
	sec->conf = calloc(1, size);
	if (!sec->conf)
		return -ENOMEM;
	for (k = sec->def->keys; k->name; k++)
		nkeys++;
	if (nkeys > 32) {
		first = calloc(nkeys, sizeof(*first));
		count = calloc(nkeys, sizeof(*count));
		if (!first || !count) {
			ret = -ENOMEM;
			goto out;
		}
	} else {
		memset(few, 0, sizeof(few));
		memset(cnt, 0, sizeof(cnt));
	}
	for (i = 0; i < sec->nvals; i++) {
		size_t ki = (size_t)(sec->vals[i].k - sec->def->keys);

		if (!first[ki])
			first[ki] = &sec->vals[i];
		count[ki]++;
	}
	for (k = sec->def->keys, i = 0; k->name && !ret; k++, i++) {
		char *at = (char *)sec->conf + BPFLB_CFG_FIELD_OFFSET(k->flags);

		if (!(k->flags & BPFLB_CFG_F_FIELD))
			continue;
		if (!(k->flags & BPFLB_CFG_F_MULTI)) {
			ret = cfg_fill_key(k, first[i] ? first[i]->value : k->def, at);
			continue;
		}
		ret = cfg_strs_alloc(k, count[i], (struct bpflb_cfg_strs *)at);
		if (!ret && !count[i] && k->def)
			((struct bpflb_cfg_strs *)at)->line[0] = sec->line;
	}
	/* The MULTI keys' values, in file order. */
	for (i = 0; i < sec->nvals && !ret; i++) {
		const struct cfg_value *v = &sec->vals[i];
		struct bpflb_cfg_strs *l;

		if ((v->k->flags & (BPFLB_CFG_F_FIELD | BPFLB_CFG_F_MULTI)) !=
		    (BPFLB_CFG_F_FIELD | BPFLB_CFG_F_MULTI))
			continue;
		l = (struct bpflb_cfg_strs *)((char *)sec->conf +
					      BPFLB_CFG_FIELD_OFFSET(v->k->flags));
		l->v[l->n] = v->value;
		l->line[l->n++] = v->line;
	}
out:
	if (first != few)
		free(first);
	if (count != cnt)
		free(count);
	return ret;
}

const void *bpflb_cfg_conf(const struct bpflb_cfg_section *sec)
{
	return sec ? sec->conf : NULL;
}

/* --- schemas --- */

static const struct bpflb_cfg_key *cfg_key_def(const struct bpflb_cfg_section_def *def,
					       const char *key)
{
	const struct bpflb_cfg_key *k;

	for (k = def->keys; k && k->name; k++)
		if (!strcmp(k->name, key))
			return k;
	return NULL;
}

static const struct bpflb_cfg_section_def *cfg_find_def(const struct bpflb_cfg_schema *schemas,
							size_t nschemas, const char *type,
							const char **owner)
{
	const struct bpflb_cfg_section_def *const *d;
	size_t i;

	for (i = 0; i < nschemas; i++) {
		for (d = schemas[i].sections; d && *d; d++) {
			if (!strcmp((*d)->name, type)) {
				if (owner)
					*owner = schemas[i].owner;
				return *d;
			}
		}
	}
	return NULL;
}

/*
 * A plugin's schema is code, not configuration, but a mistake in it (a bad
 * default, a section another plugin owns) would otherwise surface as a
 * confusing message about the operator's file, or not at all.
 */
static int cfg_check_def(const struct bpflb_cfg_schema *schemas, size_t si,
			 const struct bpflb_cfg_section_def *def, struct bpflb_err *err)
{
	const char *owner = schemas[si].owner ? schemas[si].owner : "?", *other;
	const struct bpflb_cfg_section_def *prev;
	const struct bpflb_cfg_key *k, *j;
	char why[512];
	size_t size;

	if (!def->name || !*def->name || def->name[strcspn(def->name, CFG_SPACES "[]")] ||
	    strlen(def->name) > BPFLB_CFG_NAME_MAX)
		return bpflb_err_set(err,
				     "schema of %s: section name \"%s\" is empty, longer than "
				     "64 or has spaces or brackets",
				     owner, def->name ? def->name : "(null)");
	if (def->named && def->required)
		return bpflb_err_set(err,
				     "schema of %s: [%s NAME] is named and required; "
				     "only unnamed sections can be required",
				     owner, def->name);
	prev = cfg_find_def(schemas, si + 1, def->name, &other);
	if (prev && prev != def)
		return bpflb_err_set(err, "schema of %s: section [%s] is already declared by %s",
				     owner, def->name, other ? other : "?");
	size = cfg_conf_size(def);
	for (k = def->keys; k && k->name; k++) {
		if (strlen(k->name) > BPFLB_CFG_NAME_MAX)
			return bpflb_err_set(err, "schema of %s: [%s] %s: name longer than %d",
					     owner, def->name, k->name, BPFLB_CFG_NAME_MAX);
		if ((k->flags & BPFLB_CFG_F_FIELD) &&
		    (!size || !cfg_field_size(k) ||
		     BPFLB_CFG_FIELD_OFFSET(k->flags) + cfg_field_size(k) > size))
			return bpflb_err_set(err,
					     "schema of %s: [%s] %s: its member is outside the "
					     "section's struct (end the keys with "
					     "BPFLB_CFG_KEYS_END(struct))",
					     owner, def->name, k->name);
		if ((k->flags & BPFLB_CFG_F_MULTI) && cfg_is_list(k->type))
			return bpflb_err_set(err,
					     "schema of %s: [%s] %s: a list key repeats anyway; "
					     "drop BPFLB_CFG_F_MULTI",
					     owner, def->name, k->name);
		if ((k->flags & BPFLB_CFG_F_MULTI) && (k->flags & BPFLB_CFG_F_FIELD) &&
		    k->type != BPFLB_CFG_STRING && k->type != BPFLB_CFG_PATH)
			return bpflb_err_set(err,
					     "schema of %s: [%s] %s: a typed MULTI key must be "
					     "STRING or PATH",
					     owner, def->name, k->name);
		for (j = def->keys; j != k; j++)
			if (!strcmp(j->name, k->name))
				return bpflb_err_set(err, "schema of %s: [%s] %s: declared twice",
						     owner, def->name, k->name);
		if (k->type == BPFLB_CFG_ENUM && (!k->choices || !k->choices[0]))
			return bpflb_err_set(err, "schema of %s: [%s] %s: enum without choices",
					     owner, def->name, k->name);
		if ((k->type == BPFLB_CFG_U32 || k->type == BPFLB_CFG_DURATION) &&
		    k->min > cfg_max(k))
			return bpflb_err_set(err, "schema of %s: [%s] %s: min is above max", owner,
					     def->name, k->name);
		if (k->def && (k->flags & BPFLB_CFG_F_REQUIRED))
			return bpflb_err_set(err,
					     "schema of %s: [%s] %s: required key with a "
					     "default",
					     owner, def->name, k->name);
		if (k->def && cfg_check_value(k, k->def, why, sizeof(why)))
			return bpflb_err_set(err, "schema of %s: [%s] %s: default \"%s\": %s",
					     owner, def->name, k->name, k->def, why);
	}
	return 0;
}

static int cfg_check_schemas(const struct bpflb_cfg_schema *schemas, size_t nschemas,
			     struct bpflb_err *err)
{
	const struct bpflb_cfg_section_def *const *d;
	size_t i;
	int r;

	for (i = 0; i < nschemas; i++) {
		for (d = schemas[i].sections; d && *d; d++) {
			r = cfg_check_def(schemas, i, *d, err);
			if (r)
				return r;
		}
	}
	return 0;
}

/* --- building the configuration --- */

static void cfg_section_free(struct bpflb_cfg_section *sec)
{
	size_t i;

	if (!sec)
		return;
	for (i = 0; i < sec->nvals; i++) {
		free(sec->vals[i].value);
	}
	free(sec->vals);
	cfg_conf_free(sec->def, sec->conf);
	free(sec); /* and header, type and name: one block */
}

void bpflb_config_free(struct bpflb_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->nsecs; i++)
		cfg_section_free(cfg->secs[i]);
	for (i = 0; i < cfg->ntypes; i++) {
		free(cfg->types[i].secs);
		free(cfg->types[i].type);
	}
	free(cfg->types);
	free(cfg->by_name);
	free(cfg->secs);
	free(cfg->path);
	free(cfg);
}

/* FNV-1a of "type\0name". */
static size_t cfg_name_hash(const char *type, const char *name)
{
	uint32_t h = 2166136261u;

	for (; *type; type++)
		h = (h ^ (unsigned char)*type) * 16777619u;
	h *= 16777619u;
	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h;
}

static struct bpflb_cfg_section **cfg_name_slot(struct bpflb_cfg_section **tab, size_t cap,
						const char *type, const char *name)
{
	size_t i = cfg_name_hash(type, name) & (cap - 1);

	while (tab[i] && (strcmp(tab[i]->type, type) || strcmp(tab[i]->name, name)))
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

/* The section named (type, name), NULL when none. */
static struct bpflb_cfg_section *cfg_name_get(const struct bpflb_config *cfg, const char *type,
					      const char *name)
{
	if (!cfg->hcap)
		return NULL;
	return *cfg_name_slot(cfg->by_name, cfg->hcap, type, name);
}

/* Index a new section; the first of a (type, name) stays the one found. */
static int cfg_index_add(struct bpflb_config *cfg, struct bpflb_cfg_section *sec)
{
	struct bpflb_cfg_section **slot, **tab;
	struct cfg_type_list *tl = NULL;
	size_t i;

	for (i = 0; i < cfg->ntypes; i++) {
		if (!strcmp(cfg->types[i].type, sec->type)) {
			tl = &cfg->types[i];
			break;
		}
	}
	if (!tl) {
		char *type = strdup(sec->type);

		tl = type ? realloc(cfg->types, (cfg->ntypes + 1) * sizeof(*tl)) : NULL;
		if (!tl) {
			free(type);
			return -ENOMEM;
		}
		cfg->types = tl;
		tl = &cfg->types[cfg->ntypes++];
		*tl = (struct cfg_type_list){.type = type};
	}
	if (tl->n == tl->cap) {
		size_t cap = tl->cap ? 2 * tl->cap : 8;

		tab = realloc(tl->secs, cap * sizeof(*tab));
		if (!tab)
			return -ENOMEM;
		tl->secs = tab;
		tl->cap = cap;
	}
	tl->secs[tl->n++] = sec;

	/* Keep the hash at most half full. */
	if (2 * (cfg->nsecs + 1) > cfg->hcap) {
		size_t cap = cfg->hcap ? 2 * cfg->hcap : 64;

		tab = calloc(cap, sizeof(*tab));
		if (!tab)
			return -ENOMEM;
		for (i = 0; i < cfg->hcap; i++)
			if (cfg->by_name[i])
				*cfg_name_slot(tab, cap, cfg->by_name[i]->type,
					       cfg->by_name[i]->name) = cfg->by_name[i];
		free(cfg->by_name);
		cfg->by_name = tab;
		cfg->hcap = cap;
	}
	slot = cfg_name_slot(cfg->by_name, cfg->hcap, sec->type, sec->name);
	if (!*slot)
		*slot = sec;
	return 0;
}

static struct bpflb_cfg_section *cfg_add_section(struct bpflb_config *cfg,
						 const struct bpflb_cfg_section_def *def,
						 const char *owner, const char *header,
						 const char *type, const char *name, int line)
{
	size_t hl = strlen(header) + 1, tl = strlen(type) + 1, nl = strlen(name) + 1;
	struct bpflb_cfg_section *sec, **secs;

	if (cfg->nsecs == cfg->cap) {
		size_t cap = cfg->cap ? 2 * cfg->cap : 8;

		secs = realloc(cfg->secs, cap * sizeof(*secs));
		if (!secs)
			return NULL;
		cfg->secs = secs;
		cfg->cap = cap;
	}
	/* The names in the section's block: 100k [service] sections, 300k mallocs fewer. */
	sec = calloc(1, sizeof(*sec) + hl + tl + nl);
	if (!sec)
		return NULL;
	sec->cfg = cfg;
	sec->def = def;
	sec->owner = owner;
	sec->line = line;
	sec->header = memcpy((char *)(sec + 1), header, hl);
	sec->type = memcpy(sec->header + hl, type, tl);
	sec->name = memcpy(sec->type + tl, name, nl);
	if (cfg_index_add(cfg, sec)) {
		cfg_section_free(sec);
		return NULL;
	}
	cfg->secs[cfg->nsecs++] = sec;
	return sec;
}

static int cfg_add_value(struct bpflb_cfg_section *sec, const struct bpflb_cfg_key *k,
			 const char *value, int line)
{
	struct cfg_value *vals, *v;

	if (sec->nvals == sec->cap) {
		size_t cap = sec->cap ? 2 * sec->cap : 8;

		vals = realloc(sec->vals, cap * sizeof(*vals));
		if (!vals)
			return -ENOMEM;
		sec->vals = vals;
		sec->cap = cap;
	}
	v = &sec->vals[sec->nvals];
	*v = (struct cfg_value){.k = k, .line = line};
	v->value = strdup(value);
	if (!v->value)
		return -ENOMEM;
	sec->nvals++;
	return 0;
}

/* --- reading --- */

/* Record the first error; the reader then ends the parse. */
static int cfg_fail(struct cfg_parser *p, int ret)
{
	if (!p->ret) {
		p->ret = ret;
		p->err_line = p->lineno;
	}
	return ret;
}

static int cfg_syntax_error(struct cfg_parser *p, int line, const char *detail)
{
	return cfg_errorf(p->err, p->cfg->path, line, NULL, NULL, NULL,
			  "syntax error: %sexpected [section] or key = value", detail);
}

static int cfg_oom(struct cfg_parser *p)
{
	cfg_errorf(p->err, p->cfg->path, p->lineno, NULL, NULL, NULL, "out of memory");
	return cfg_fail(p, -ENOMEM);
}

static int cfg_unknown_section(struct cfg_parser *p, const char *header, const char *type)
{
	const struct bpflb_cfg_section_def *const *d;
	const char *guess = NULL, *owner, *group = NULL;
	char list[768];
	struct strbuf b = {.s = list, .len = sizeof(list)};
	size_t i;

	/* "[a], [b] from core; [c] from snat": who would accept what. */
	list[0] = '\0';
	for (i = 0; i < p->nschemas; i++) {
		owner = p->schemas[i].owner ? p->schemas[i].owner : "?";
		for (d = p->schemas[i].sections; d && *d; d++) {
			if (group && strcmp(group, owner))
				sb_add(&b, " from %s; ", group);
			else if (group)
				sb_add(&b, ", ");
			group = owner;
			sb_add(&b, "[%s%s]", (*d)->name, (*d)->named ? " NAME" : "");
			if (!guess && cfg_close(type, (*d)->name))
				guess = (*d)->name;
		}
	}
	if (group)
		sb_add(&b, " from %s", group);
	else
		sb_add(&b, "no section: none is declared");
	if (guess)
		return cfg_errorf(p->err, p->cfg->path, p->lineno, header, NULL, NULL,
				  "unknown section (did you mean [%s]?); expected %s", guess, list);
	return cfg_errorf(p->err, p->cfg->path, p->lineno, header, NULL, NULL,
			  "unknown section: [%s] belongs to no loaded plugin (is its plugin "
			  "enabled by [daemon] mode or features?); expected %s",
			  type, list);
}

/*
 * A section header, seen by the reader before inih parses the line (which it
 * must find unchanged).  Returns 0 or -errno; on error the parse stops.
 */
static int cfg_header(struct cfg_parser *p, const char *text)
{
	const struct bpflb_cfg_section_def *def;
	struct bpflb_cfg_section *sec;
	char *line, *end, *rest, *inner, *name;
	const char *owner = NULL;
	char *type = NULL;
	size_t i, tlen;
	int ret = 0;

	line = strdup(text);
	if (!line) {
		ret = -ENOMEM;
		cfg_errorf(p->err, p->cfg->path, p->lineno, NULL, NULL, NULL, "out of memory");
		goto out;
	}

	/* Find "]" as inih does: an inline comment (" ;") ends the search. */
	for (end = line + 1; *end && *end != ']'; end++)
		if (*end == ';' && isspace((unsigned char)end[-1]))
			break;
	if (*end != ']') {
		ret = cfg_syntax_error(p, p->lineno, "no closing ] in section header; ");
		goto out;
	}
	rest = end + 1 + strspn(end + 1, CFG_SPACES);
	if (*rest && *rest != ';' && *rest != '#') {
		ret = cfg_syntax_error(p, p->lineno, "text after ] in section header; ");
		goto out;
	}
	*end = '\0';
	inner = line + 1 + strspn(line + 1, CFG_SPACES);
	for (i = strlen(inner); i && isspace((unsigned char)inner[i - 1]); i--)
		inner[i - 1] = '\0';
	if (!*inner) {
		ret = cfg_errorf(p->err, p->cfg->path, p->lineno, "", NULL, NULL,
				 "empty section header; expected [section] or [section NAME]");
		goto out;
	}
	tlen = strcspn(inner, CFG_SPACES);
	name = inner + tlen + strspn(inner + tlen, CFG_SPACES);
	type = strndup(inner, tlen);
	if (!type) {
		ret = -ENOMEM;
		cfg_errorf(p->err, p->cfg->path, p->lineno, NULL, NULL, NULL, "out of memory");
		goto out;
	}

	def = cfg_find_def(p->schemas, p->nschemas, type, &owner);
	if (!def) {
		if (p->flags & BPFLB_CFG_LOAD_SKIP_UNKNOWN) {
			p->cur = NULL;
			p->skipping = true;
			goto out;
		}
		ret = cfg_unknown_section(p, inner, type);
		goto out;
	}
	if (def->named && !*name) {
		ret = cfg_errorf(p->err, p->cfg->path, p->lineno, inner, NULL, NULL,
				 "section needs a name; expected [%s NAME]", type);
		goto out;
	}
	if (!def->named && *name) {
		ret = cfg_errorf(p->err, p->cfg->path, p->lineno, inner, NULL, NULL,
				 "section takes no name; expected [%s]", type);
		goto out;
	}
	sec = cfg_name_get(p->cfg, type, name);
	if (sec && sec->def == def) {
		ret = cfg_errorf(p->err, p->cfg->path, p->lineno, inner, NULL, NULL,
				 "duplicate section, first at line %d; expected %s", sec->line,
				 def->named ? "one section of each name" : "the section once");
		goto out;
	}
	p->cur = cfg_add_section(p->cfg, def, owner, inner, type, name, p->lineno);
	p->skipping = false;
	if (!p->cur) {
		ret = -ENOMEM;
		cfg_errorf(p->err, p->cfg->path, p->lineno, NULL, NULL, NULL, "out of memory");
	}
out:
	free(type);
	free(line);
	return ret ? cfg_fail(p, ret) : 0;
}

/*
 * Read one line into p->line.  Returns its length, or -1 at the end of the
 * file or on an error (then recorded in p).  The stream is ours alone:
 * getc_unlocked() spares a lock per character (a file of 100k services has 30
 * million of them).
 */
static long cfg_getline(struct cfg_parser *p)
{
	size_t n = 0;
	int c, e;

	errno = 0;
	c = getc_unlocked(p->fp);
	if (c == EOF)
		goto eof;
	p->lineno++;
	for (; c != EOF && c != '\n'; c = getc_unlocked(p->fp)) {
		if (n >= BPFLB_CFG_LINE_MAX) {
			cfg_errorf(p->err, p->cfg->path, p->lineno, NULL, NULL, NULL,
				   "line longer than %d characters; expected at most %d (for a "
				   "longer list, continue it on indented lines or repeat the key)",
				   BPFLB_CFG_LINE_MAX, BPFLB_CFG_LINE_MAX);
			cfg_fail(p, -EINVAL);
			return -1;
		}
		if (c == '\0') {
			cfg_errorf(p->err, p->cfg->path, p->lineno, NULL, NULL, NULL,
				   "NUL character in line; expected text");
			cfg_fail(p, -EINVAL);
			return -1;
		}
		if (n + 1 >= p->line_cap) {
			size_t cap = p->line_cap ? 2 * p->line_cap : 256;
			char *line;

			if (cap > BPFLB_CFG_LINE_MAX + 1)
				cap = BPFLB_CFG_LINE_MAX + 1;
			line = realloc(p->line, cap);
			if (!line) {
				cfg_oom(p);
				return -1;
			}
			p->line = line;
			p->line_cap = cap;
		}
		p->line[n++] = (char)c;
	}
	if (c == EOF && ferror(p->fp))
		goto eof;
	if (!p->line) {
		p->line = malloc(p->line_cap = 256);
		if (!p->line) {
			cfg_oom(p);
			return -1;
		}
	}
	p->line[n] = '\0';
	return (long)n;
eof:
	if (ferror(p->fp)) {
		/* The cause (EIO, EISDIR, ...) is what the caller returns. */
		e = errno ? errno : EIO;
		cfg_errorf(p->err, p->cfg->path, p->lineno + 1, NULL, NULL, NULL,
			   "read error: %s", strerror(e));
		cfg_fail(p, -e);
	}
	return -1;
}

/*
 * fgets() for inih, one line per call, so that p->lineno is the line inih
 * works on when it calls the handler.  inih sees a line in the shape that
 * makes it do what this format means: a section header as "[]" (read here),
 * a comment as an empty line, a continuation of a list key indented by one
 * space and every other line unindented, and a line longer than its buffer
 * (num) cut, with the rest in p->tail.
 */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parser *p = stream;
	size_t indent, len, cut, sep;
	char *text;
	bool cont;

	p->tail = NULL;
	p->in_cont = false;
	if (p->ret || cfg_getline(p) < 0)
		return NULL;
	text = p->line;
	if (p->lineno == 1 && !strncmp(text, "\xEF\xBB\xBF", 3))
		text += 3;
	indent = strspn(text, CFG_SPACES);
	text += indent;
	str[0] = '\0';
	if (!*text || *text == ';' || *text == '#')
		return str;
	if (*text == '[') {
		p->cont_key = NULL;
		if (cfg_header(p, text))
			return NULL;
		snprintf(str, (size_t)num, "[]");
		return str;
	}
	/* The real pass checks the syntax of sections the first pass skips. */
	if (p->skipping)
		return str;
	cont = p->cont_key && indent > p->cont_indent;
	if (!cont) {
		p->cont_key = NULL;
		p->key_indent = indent;
	}
	p->in_cont = cont;

	len = strlen(text);
	if (cont || len >= (size_t)num) {
		/*
		 * Cut the inline comment as inih does on key lines (";" after a
		 * space): inih 55 keeps it in a continuation line's value.
		 */
		for (cut = 1; cut < len; cut++) {
			if (text[cut] == ';' && isspace((unsigned char)text[cut - 1])) {
				len = cut;
				break;
			}
		}
		while (len && isspace((unsigned char)text[len - 1]))
			len--;
		text[len] = '\0';
	}
	cut = len;
	if (len + cont >= (size_t)num) {
		cut = (size_t)num - 1 - cont;
		sep = strcspn(text, "=:");
		if (!cont && sep >= cut) {
			cfg_errorf(p->err, p->cfg->path, p->lineno, NULL, NULL, NULL,
				   "syntax error: no = in the first %zu characters; expected key "
				   "= value with a key of at most %d characters",
				   cut, BPFLB_CFG_NAME_MAX);
			cfg_fail(p, -EINVAL);
			return NULL;
		}
		/* inih strips the head's trailing spaces: they stay in the tail. */
		while (cut > sep + 1 && isspace((unsigned char)text[cut - 1]))
			cut--;
		p->tail = text + cut;
	}
	if (cont)
		str[0] = ' ';
	memcpy(str + cont, text, cut);
	str[cut + cont] = '\0';
	return str;
}

/*
 * Add the words of piece (a repeated list key or a continuation line, already
 * checked) to the list value v.
 */
static int cfg_list_append(struct cfg_parser *p, struct cfg_value *v, const char *piece)
{
	size_t len = strlen(v->value), plen = strlen(piece), need;
	uint32_t words = cfg_count_words(piece);
	char *s;

	if (!words)
		return 0;
	need = len + 1 + plen + 1;
	if (v->words + words > BPFLB_CFG_LIST_MAX || need > BPFLB_CFG_VALUE_MAX)
		return bpflb_cfg_error(p->err, p->cur, v->k->name, p->lineno,
				       "list too long; expected at most %d words and %u "
				       "characters in all its lines",
				       BPFLB_CFG_LIST_MAX, BPFLB_CFG_VALUE_MAX);
	if (need > v->cap) {
		size_t cap = v->cap ? v->cap : len + 1;

		while (cap < need)
			cap *= 2;
		s = realloc(v->value, cap);
		if (!s)
			return cfg_oom(p);
		v->value = s;
		v->cap = cap;
	}
	if (len)
		v->value[len++] = ' ';
	memcpy(v->value + len, piece, plen + 1);
	v->words += words;
	return 0;
}

/* An indented line under a list key: more words for it. */
static int cfg_continue(struct cfg_parser *p, const char *piece)
{
	const struct bpflb_cfg_key *k = p->cont_key, *other;
	struct cfg_value *v = &p->cur->vals[p->cont_val];
	char why[768], name[BPFLB_CFG_NAME_MAX + 1];
	size_t n = strcspn(piece, "=:" CFG_SPACES);

	/*
	 * "    mode = dsr" under a list reads as three words of that list;
	 * refuse rather than guess which one the operator meant.
	 */
	if (n && n <= BPFLB_CFG_NAME_MAX && strchr("=:", piece[n + strspn(piece + n, CFG_SPACES)])) {
		memcpy(name, piece, n);
		name[n] = '\0';
		other = cfg_key_def(p->cur->def, name);
		if (other)
			return cfg_errorf(p->err, p->cfg->path, p->lineno, p->cur->header, k->name,
					  piece,
					  "this line is indented deeper than %s at line %d, so "
					  "it continues that list, but it reads as a %s line; "
					  "expected it unindented to set %s, or these words on a "
					  "line of their own \"%s = ...\"",
					  k->name, p->cont_line, name, name, k->name);
	}
	if (cfg_check_value(k, piece, why, sizeof(why)))
		return cfg_errorf(p->err, p->cfg->path, p->lineno, p->cur->header, k->name, piece,
				  "%s", why);
	return cfg_list_append(p, v, piece);
}

static int cfg_unknown_key(struct cfg_parser *p, const char *key, const char *value)
{
	const struct bpflb_cfg_section_def *def = p->cur->def;
	const struct bpflb_cfg_key *k;
	char names[512];
	struct strbuf b = {.s = names, .len = sizeof(names)};
	const char *guess = NULL;

	names[0] = '\0';
	for (k = def->keys; k && k->name; k++) {
		sb_add(&b, "%s%s", b.off ? ", " : "", k->name);
		if (!guess && cfg_close(key, k->name))
			guess = k->name;
	}
	if (guess)
		return cfg_errorf(p->err, p->cfg->path, p->lineno, p->cur->header, key, value,
				  "unknown key (did you mean %s?); expected one of %s", guess,
				  names);
	return cfg_errorf(p->err, p->cfg->path, p->lineno, p->cur->header, key, value,
			  "unknown key; expected %s%s",
			  def->keys && def->keys->name ? "one of " : "no keys in this section",
			  names);
}

static int cfg_key_line(struct cfg_parser *p, const char *key, const char *value)
{
	const struct bpflb_cfg_key *k;
	struct cfg_value *prev;
	char why[768];
	int r;

	if (!*key)
		return cfg_syntax_error(p, p->lineno, "no key before =; ");
	if (!p->cur) {
		if (p->skipping)
			return 0;
		return cfg_errorf(p->err, p->cfg->path, p->lineno, NULL, key, value,
				  "key outside any section; expected a [section] header above it");
	}
	k = cfg_key_def(p->cur->def, key);
	if (!k)
		return cfg_unknown_key(p, key, value);
	prev = (struct cfg_value *)cfg_find_value(p->cur, key, 0);
	if (prev && cfg_is_list(k->type)) {
		/* A list key may repeat: its words add up. */
		if (cfg_check_value(k, value, why, sizeof(why)))
			return cfg_errorf(p->err, p->cfg->path, p->lineno, p->cur->header, key,
					  value, "%s", why);
		r = cfg_list_append(p, prev, value);
		if (r)
			return r;
		goto open_list;
	}
	if (prev && !(k->flags & BPFLB_CFG_F_MULTI))
		return cfg_errorf(p->err, p->cfg->path, p->lineno, p->cur->header, key, value,
				  "key given twice, first at line %d; expected it once per "
				  "section",
				  prev->line);
	if (cfg_add_value(p->cur, k, value, p->lineno))
		return cfg_oom(p);
	prev = &p->cur->vals[p->cur->nvals - 1];
	if (cfg_check_value(k, value, why, sizeof(why)))
		return bpflb_cfg_error(p->err, p->cur, key, p->lineno, "%s", why);
	if (!cfg_is_list(k->type))
		return 0;
	prev->words = cfg_count_words(value);
	if (prev->words > BPFLB_CFG_LIST_MAX)
		return bpflb_cfg_error(p->err, p->cur, key, p->lineno,
				       "list too long; expected at most %d words",
				       BPFLB_CFG_LIST_MAX);
open_list:
	p->cont_key = k;
	p->cont_val = (size_t)(prev - p->cur->vals);
	p->cont_line = prev->line;
	p->cont_indent = p->key_indent;
	return 0;
}

static int cfg_on_value(void *user, const char *section, const char *key, const char *value)
{
	struct cfg_parser *p = user;
	char *full = NULL;
	int r;

	(void)section; /* ours is p->cur: inih does not trim it */
	if (p->ret)
		return 0;
	if (p->tail) {
		/* The rest of a long line; inih's head stopped inside its value. */
		const char *tail = *value ? p->tail : p->tail + strspn(p->tail, CFG_SPACES);
		size_t vlen = strlen(value), tlen = strlen(tail);

		full = malloc(vlen + tlen + 1);
		if (!full)
			return !cfg_oom(p);
		memcpy(full, value, vlen);
		memcpy(full + vlen, tail, tlen + 1);
		value = full;
	}
	r = p->in_cont ? cfg_continue(p, value) : cfg_key_line(p, key, value);
	free(full);
	if (r)
		cfg_fail(p, r);
	return !r;
}

/* Checks that need the whole file: required keys, section checks, required sections. */
static int cfg_check_whole(struct cfg_parser *p)
{
	const struct bpflb_cfg_section_def *const *d;
	struct bpflb_cfg_section *sec;
	const struct bpflb_cfg_key *k;
	char expect[512];
	struct strbuf b;
	size_t i, j;
	int r;

	for (i = 0; i < p->cfg->nsecs; i++) {
		sec = p->cfg->secs[i];
		for (k = sec->def->keys; k && k->name; k++) {
			if (!(k->flags & BPFLB_CFG_F_REQUIRED) || cfg_find_value(sec, k->name, 0))
				continue;
			b = (struct strbuf){.s = expect, .len = sizeof(expect)};
			expect[0] = '\0';
			cfg_expect(&b, k);
			if (k->help)
				sb_add(&b, " (%s)", k->help);
			return bpflb_cfg_error(p->err, sec, k->name, 0,
					       "missing required key; expected %s = %s", k->name,
					       expect);
		}
		if (cfg_fill(sec)) {
			bpflb_err_set(p->err, "%s: out of memory", p->cfg->path);
			return -ENOMEM;
		}
		if (!sec->def->check)
			continue;
		p->err->msg[0] = '\0';
		r = sec->def->check(sec, p->err);
		if (!r)
			continue;
		if (r > 0)
			r = -EINVAL;
		if (!p->err->msg[0])
			bpflb_cfg_error(p->err, sec, NULL, 0, "refused by the checks of %s: %s",
					sec->owner ? sec->owner : "?", strerror(-r));
		/* Whatever the check's reason, the file is what is refused. */
		return r == -ENOMEM ? r : -EINVAL;
	}
	for (i = 0; i < p->nschemas; i++) {
		for (d = p->schemas[i].sections; d && *d; d++) {
			if (!(*d)->required || (*d)->named)
				continue;
			for (j = 0; j < p->cfg->nsecs; j++)
				if (p->cfg->secs[j]->def == *d)
					break;
			if (j == p->cfg->nsecs)
				return cfg_errorf(p->err, p->cfg->path, 0, NULL, NULL, NULL,
						  "missing required section [%s]", (*d)->name);
		}
	}
	return 0;
}

/*
 * Unnamed sections missing from the file stand in with line 0, so that
 * bpflb_cfg_section() finds them and their keys read as the defaults.
 */
static int cfg_add_absent(struct cfg_parser *p)
{
	const struct bpflb_cfg_section_def *const *d;
	struct bpflb_cfg_section *sec;
	size_t i, j;

	for (i = 0; i < p->nschemas; i++) {
		for (d = p->schemas[i].sections; d && *d; d++) {
			if ((*d)->named)
				continue;
			for (j = 0; j < p->cfg->nsecs; j++)
				if (p->cfg->secs[j]->def == *d)
					break;
			if (j < p->cfg->nsecs)
				continue;
			sec = cfg_add_section(p->cfg, *d, p->schemas[i].owner, (*d)->name,
					      (*d)->name, "", 0);
			if (!sec || cfg_fill(sec)) {
				bpflb_err_set(p->err, "%s: out of memory", p->cfg->path);
				return -ENOMEM;
			}
		}
	}
	return 0;
}

int bpflb_config_load_fp(FILE *fp, const char *name, const struct bpflb_cfg_schema *schemas,
			 size_t nschemas, unsigned int flags, struct bpflb_config **out,
			 struct bpflb_err *err)
{
	struct bpflb_err scratch = {{0}}; /* err is optional */
	struct cfg_parser p = {
	    .fp = fp,
	    .schemas = schemas,
	    .nschemas = nschemas,
	    .flags = flags,
	    .err = err ? err : &scratch,
	};
	int ret, line;

	*out = NULL;
	p.err->msg[0] = '\0';
	ret = cfg_check_schemas(schemas, nschemas, p.err);
	if (ret)
		goto out;
	if (!name)
		name = "(config)";
	p.cfg = calloc(1, sizeof(*p.cfg));
	if (p.cfg)
		p.cfg->path = strdup(name);
	if (!p.cfg || !p.cfg->path) {
		bpflb_err_set(p.err, "%s: out of memory", name);
		ret = -ENOMEM;
		goto out;
	}
	p.cfg->loaded_at = time(NULL);

	line = ini_parse_stream(cfg_reader, &p, cfg_on_value, &p);
	/*
	 * inih goes on after a syntax error, and our handler only sees the
	 * lines after it: an earlier syntax error is the first error.
	 */
	if (line > 0 && (!p.ret || line < p.err_line)) {
		ret = cfg_syntax_error(&p, line, "");
		goto out;
	}
	if (line < 0 && !p.ret) {
		bpflb_err_set(p.err, "%s: out of memory", name);
		ret = -ENOMEM;
		goto out;
	}
	ret = p.ret;
	if (ret)
		goto out;
	ret = cfg_check_whole(&p);
	if (ret)
		goto out;
	ret = cfg_add_absent(&p);
	if (ret)
		goto out;
	*out = p.cfg;
	p.cfg = NULL;
out:
	free(p.line);
	bpflb_config_free(p.cfg);
	return ret;
}

int bpflb_config_load(const char *path, const struct bpflb_cfg_schema *schemas, size_t nschemas,
		      unsigned int flags, struct bpflb_config **out, struct bpflb_err *err)
{
	FILE *fp;
	int ret;

	*out = NULL;
	fp = fopen(path, "r");
	if (!fp) {
		ret = -errno;
		bpflb_err_set(err, "%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	ret = bpflb_config_load_fp(fp, path, schemas, nschemas, flags, out, err);
	fclose(fp);
	return ret;
}

time_t bpflb_config_loaded_at(const struct bpflb_config *cfg)
{
	return cfg ? cfg->loaded_at : 0;
}

/* --- sections --- */

const char *bpflb_cfg_path(const struct bpflb_config *cfg)
{
	return cfg ? cfg->path : NULL;
}

const struct bpflb_cfg_section *bpflb_cfg_section(const struct bpflb_config *cfg, const char *type,
						  unsigned int idx)
{
	size_t i;

	for (i = 0; cfg && i < cfg->ntypes; i++)
		if (!strcmp(cfg->types[i].type, type))
			return idx < cfg->types[i].n ? cfg->types[i].secs[idx] : NULL;
	return NULL;
}

bool bpflb_cfg_released(const struct bpflb_config *cfg, const char *type)
{
	size_t i;

	for (i = 0; cfg && type && i < cfg->ntypes; i++)
		if (!strcmp(cfg->types[i].type, type))
			return cfg->types[i].released;
	return false;
}

int bpflb_cfg_release(struct bpflb_config *cfg, const char *type)
{
	struct cfg_type_list *tl = NULL;
	struct bpflb_cfg_section **tab;
	size_t i, n = 0;

	for (i = 0; cfg && i < cfg->ntypes; i++)
		if (!strcmp(cfg->types[i].type, type))
			tl = &cfg->types[i];
	if (!tl || tl->released)
		return 0;
	/* Rebuild the name index without them rather than delete from open addressing. */
	tab = cfg->hcap ? calloc(cfg->hcap, sizeof(*tab)) : NULL;
	if (cfg->hcap && !tab)
		return -ENOMEM;
	for (i = 0; i < cfg->nsecs; i++) {
		struct bpflb_cfg_section *sec = cfg->secs[i], **slot;

		if (!strcmp(sec->type, type)) {
			cfg_section_free(sec);
			continue;
		}
		cfg->secs[n++] = sec;
		slot = cfg_name_slot(tab, cfg->hcap, sec->type, sec->name);
		if (!*slot)
			*slot = sec;
	}
	cfg->nsecs = n;
	free(cfg->by_name);
	cfg->by_name = tab;
	free(tl->secs);
	tl->secs = NULL;
	tl->n = tl->cap = 0;
	tl->released = true;
	return 0;
}

const struct bpflb_cfg_section *bpflb_cfg_find(const struct bpflb_config *cfg, const char *type,
					       const char *name)
{
	return cfg ? cfg_name_get(cfg, type, name) : NULL;
}

const char *bpflb_cfg_section_type(const struct bpflb_cfg_section *sec)
{
	return sec ? sec->type : NULL;
}

const char *bpflb_cfg_section_name(const struct bpflb_cfg_section *sec)
{
	return sec ? sec->name : NULL;
}

int bpflb_cfg_section_line(const struct bpflb_cfg_section *sec)
{
	return sec ? sec->line : 0;
}

const struct bpflb_config *bpflb_cfg_section_config(const struct bpflb_cfg_section *sec)
{
	return sec ? sec->cfg : NULL;
}

const char *bpflb_cfg_section_owner(const struct bpflb_cfg_section *sec)
{
	return sec ? sec->owner : NULL;
}

/* --- values --- */

/* The value written in the file, else the declared default, else NULL. */
static const char *cfg_raw(const struct bpflb_cfg_section *sec, const char *key,
			   const struct bpflb_cfg_key **kp)
{
	const struct bpflb_cfg_key *k;
	const struct cfg_value *v;

	if (kp)
		*kp = NULL;
	if (!sec || !key)
		return NULL;
	k = cfg_key_def(sec->def, key);
	if (kp)
		*kp = k;
	v = cfg_find_value(sec, key, 0);
	if (v)
		return v->value;
	return k ? k->def : NULL;
}

bool bpflb_cfg_has(const struct bpflb_cfg_section *sec, const char *key)
{
	return sec && key && cfg_find_value(sec, key, 0);
}

int bpflb_cfg_line(const struct bpflb_cfg_section *sec, const char *key)
{
	const struct cfg_value *v;

	if (!sec)
		return 0;
	v = key ? cfg_find_value(sec, key, 0) : NULL;
	return v ? v->line : sec->line;
}

const char *bpflb_cfg_str(const struct bpflb_cfg_section *sec, const char *key)
{
	return cfg_raw(sec, key, NULL);
}

bool bpflb_cfg_bool(const struct bpflb_cfg_section *sec, const char *key)
{
	bool b = false;

	cfg_parse_bool(cfg_raw(sec, key, NULL), &b);
	return b;
}

uint32_t bpflb_cfg_u32(const struct bpflb_cfg_section *sec, const char *key)
{
	const struct bpflb_cfg_key *k;
	const char *s = cfg_raw(sec, key, &k);
	uint32_t v = 0;

	if (k && k->type == BPFLB_CFG_DURATION)
		bpflb_parse_duration(s, 0, UINT32_MAX, &v);
	else
		bpflb_parse_u32(s, 0, UINT32_MAX, &v);
	return v;
}

uint32_t bpflb_cfg_ipv4(const struct bpflb_cfg_section *sec, const char *key)
{
	uint32_t addr = 0;

	bpflb_parse_ipv4(cfg_raw(sec, key, NULL), &addr);
	return addr;
}

const char *bpflb_cfg_multi(const struct bpflb_cfg_section *sec, const char *key, unsigned int idx,
			    int *line)
{
	const struct bpflb_cfg_key *k;
	size_t i;
	bool any = false;

	if (!sec || !key)
		return NULL;
	for (i = 0; i < sec->nvals; i++) {
		if (strcmp(sec->vals[i].k->name, key))
			continue;
		any = true;
		if (idx--)
			continue;
		if (line)
			*line = sec->vals[i].line;
		return sec->vals[i].value;
	}
	/* An absent key reads as its default, a list of one value. */
	k = cfg_key_def(sec->def, key);
	if (any || idx || !k || !k->def)
		return NULL;
	if (line)
		*line = sec->line;
	return k->def;
}
