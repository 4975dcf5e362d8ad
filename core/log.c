// SPDX-License-Identifier: GPL-2.0-only
/*
 * Logging.  Under systemd (JOURNAL_STREAM names our stderr) each line goes to
 * journald through sd_journal_sendv: the priority, the code location and the
 * line's structured fields (BPFLB_SUBSYSTEM, BPFLB_SERVICE, BPFLB_CONFIG_FILE,
 * ...) become journal fields that journalctl -p / -o json can select on.
 * Elsewhere lines go to stderr, with an RFC 3339 timestamp (text) or as one
 * JSON object per line (--log-format json).  Every line is one write(2), so
 * lines of concurrent writers never interleave.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION /* we pass CODE_* ourselves */
#include <bpf/libbpf.h>
#include <systemd/sd-journal.h>

#include "log.h"

#define LOG_LINE_MAX 2048
#define LOG_FIELDS_MAX 8
#define JOURNAL_SOCKET "/run/systemd/journal/socket" /* sd_journal_send's, fixed */

static int log_max = LOG_INFO;
static enum log_format log_format = LOG_FORMAT_TEXT;
static bool log_journal;
static int libbpf_quiet;

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",	[LOG_CRIT] = "crit", [LOG_ERR] = "err",
    [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "DEV:INODE" of the stream journald gave us. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(2, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

/*
 * libbpf's messages go through our logger.  bpf_tc_hook_create() asks for an
 * exclusive clsact qdisc and the kernel explains the (expected) EEXIST of an
 * existing one; that is not worth a warning.
 */
static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;
	int level = lvl == LIBBPF_WARN ? LOG_WARNING : lvl == LIBBPF_INFO ? LOG_INFO : LOG_DEBUG;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (strstr(line, "Exclusivity flag on") || libbpf_quiet)
		level = LOG_DEBUG;
	/* libbpf's INFO is chatty (every map it reuses): keep it for debug. */
	if (level == LOG_INFO)
		level = LOG_DEBUG;
	/* the subsystem says libbpf already; its own "libbpf: " would say it twice */
	log_msg(level, "libbpf", "%s", strncmp(line, "libbpf: ", 8) ? line : line + 8);
	return 0;
}

void log_libbpf_quiet(int quiet)
{
	libbpf_quiet = quiet;
}

void log_init(int max_level, enum log_format format)
{
	log_max = max_level;
	/*
	 * An explicit --log-format wins: a shipper reading our stderr asked for
	 * it.  Only the default picks journald, and only when journald holds our
	 * stderr, so that bpflbd run from a shell on a systemd host still
	 * prints to the terminal.
	 */
	log_journal = format == LOG_FORMAT_AUTO && stderr_is_journal();
	log_format = format == LOG_FORMAT_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
	libbpf_set_print(libbpf_print);
}

void log_set_level(int max_level)
{
	log_max = max_level;
}

int log_level_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (level_names[i] && !strcmp(level_names[i], name))
			return (int)i;
	return -1;
}

int log_format_from_name(const char *name)
{
	if (!strcmp(name, "auto"))
		return LOG_FORMAT_AUTO;
	if (!strcmp(name, "text"))
		return LOG_FORMAT_TEXT;
	if (!strcmp(name, "json"))
		return LOG_FORMAT_JSON;
	return -1;
}

/* RFC 3339 local time with milliseconds: 2026-12-07T14:05:01.123+01:00 */
static void rfc3339_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char zone[8];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(zone, sizeof(zone), "%z", &tm); /* +0100 -> +01:00 */
	snprintf(buf + n, len - n, ".%03ld%.3s:%.2s", ts.tv_nsec / 1000000, zone, zone + 3);
}

/*
 * A JSON line under construction.  len keeps room for the closing "}\n", and
 * every piece is added only when it fits whole, so that a line cut short
 * (a huge message) still parses.
 */
struct sbuf {
	char *s;
	size_t len, off;
};

static size_t sb_room(const struct sbuf *b)
{
	return b->len - b->off;
}

static void sb_putc(struct sbuf *b, char c)
{
	if (b->off < b->len)
		b->s[b->off++] = c;
}

static void sb_puts(struct sbuf *b, const char *s)
{
	while (*s)
		sb_putc(b, *s++);
}

/* Length of the valid UTF-8 sequence at s, 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] >= 0xf5 ? 0 : s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * A JSON string.  Log lines carry operator input (config values, names from
 * the control socket): control bytes are escaped and invalid UTF-8 becomes
 * U+FFFD, so that every line stays parseable.  Cut when the line is full;
 * the room checks leave space for the closing quote.
 */
static void sb_json_str(struct sbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	sb_putc(b, '"');
	while (*p && sb_room(b) > 8) {
		char esc[8];
		size_t n;

		if (*p == '"' || *p == '\\') {
			sb_putc(b, '\\');
			sb_putc(b, (char)*p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p++);
			sb_puts(b, esc);
		} else if (*p < 0x80) {
			sb_putc(b, (char)*p++);
		} else if (!(n = utf8_len(p))) {
			sb_puts(b, "\\ufffd");
			p++;
		} else {
			while (n--)
				sb_putc(b, (char)*p++);
		}
	}
	sb_putc(b, '"');
}

/* "key":"value" when at least the key and a part of the value fit */
static void sb_json_field(struct sbuf *b, const char *key, const char *value)
{
	if (sb_room(b) < strlen(key) + 32)
		return;
	sb_puts(b, ",\"");
	sb_puts(b, key);
	sb_puts(b, "\":");
	sb_json_str(b, value);
}

/* stderr is unbuffered: one write(2) per line, a short write is not retried */
static void write_line(const char *s, size_t n)
{
	ssize_t r = write(2, s, n);

	(void)r;
}

static void emit_text(int level, const char *subsystem, const char *msg)
{
	char ts[48], out[LOG_LINE_MAX + 256];
	int n;

	rfc3339_now(ts, sizeof(ts));
	n = snprintf(out, sizeof(out), "%s bpflbd: %s: %s%s%s", ts, level_names[level & 7],
		     subsystem ?: "", subsystem ? ": " : "", msg);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(out) - 2)
		n = (int)sizeof(out) - 2;
	out[n++] = '\n';
	write_line(out, (size_t)n);
}

static void emit_json(int level, const char *subsystem, const char *file, int line,
		      const struct log_field *fields, const char *msg)
{
	char ts[48], out[4 * LOG_LINE_MAX], num[16];
	struct sbuf b = {out, sizeof(out) - 2, 0};

	rfc3339_now(ts, sizeof(ts));
	sb_puts(&b, "{\"time\":\"");
	sb_puts(&b, ts);
	sb_puts(&b, "\",\"level\":\"");
	sb_puts(&b, level_names[level & 7]);
	sb_puts(&b, "\",\"subsystem\":");
	sb_json_str(&b, subsystem ?: "core");
	sb_json_field(&b, "msg", msg);
	for (const struct log_field *f = fields; f && f->key; f++)
		sb_json_field(&b, f->key, f->value ?: "");
	if (file) {
		snprintf(num, sizeof(num), "%d", line);
		sb_json_field(&b, "code_file", file);
		sb_json_field(&b, "code_line", num);
	}
	out[b.off++] = '}';
	out[b.off++] = '\n';
	write_line(out, b.off);
}

/*
 * sd_journal_sendv: -errno when journald cannot take it (socket full, ...).
 * It reports success when the socket is missing (journald stopped): that
 * one is checked here, so that the line falls back to stderr instead.
 */
static int emit_journal(int level, const char *subsystem, const char *file, int line,
			const char *func, const struct log_field *fields, const char *msg)
{
	char prio[16], codeline[32], sub[64], codefile[256], codefunc[128];
	char fbuf[LOG_FIELDS_MAX][384];
	char message[LOG_LINE_MAX + 96];
	struct iovec iov[8 + LOG_FIELDS_MAX];
	int n = 0, nf = 0;

	if (access(JOURNAL_SOCKET, F_OK))
		return -errno;
#define IOV_STR(s) (iov[n++] = (struct iovec){.iov_base = (void *)(s), .iov_len = strlen(s)})
	snprintf(prio, sizeof(prio), "PRIORITY=%d", level & 7);
	IOV_STR(prio);
	/* MESSAGE keeps the subsystem: journalctl's default output shows MESSAGE only. */
	snprintf(message, sizeof(message), "MESSAGE=%s%s%s", subsystem ?: "", subsystem ? ": " : "",
		 msg);
	IOV_STR(message);
	IOV_STR("SYSLOG_IDENTIFIER=bpflbd");
	if (subsystem) {
		snprintf(sub, sizeof(sub), "BPFLB_SUBSYSTEM=%s", subsystem);
		IOV_STR(sub);
	}
	if (file) {
		snprintf(codefile, sizeof(codefile), "CODE_FILE=%s", file);
		snprintf(codeline, sizeof(codeline), "CODE_LINE=%d", line);
		snprintf(codefunc, sizeof(codefunc), "CODE_FUNC=%s", func ?: "");
		IOV_STR(codefile);
		IOV_STR(codeline);
		IOV_STR(codefunc);
	}
	for (const struct log_field *f = fields; f && f->key && nf < LOG_FIELDS_MAX; f++, nf++) {
		/* journal field names are upper case: service -> BPFLB_SERVICE */
		int k = snprintf(fbuf[nf], sizeof(fbuf[nf]), "BPFLB_");

		for (const char *c = f->key; *c && k < 64; c++)
			fbuf[nf][k++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
		snprintf(fbuf[nf] + k, sizeof(fbuf[nf]) - (size_t)k, "=%s", f->value ?: "");
		IOV_STR(fbuf[nf]);
	}
#undef IOV_STR
	return sd_journal_sendv(iov, n);
}

void log_vat(int level, const char *subsystem, const char *file, int line, const char *func,
	     const struct log_field *fields, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];

	if (level > log_max)
		return;
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	if (log_journal && emit_journal(level, subsystem, file, line, func, fields, msg) >= 0)
		return;
	/* journald gone: the line still goes somewhere, on stderr with its level spelled out */
	if (log_format == LOG_FORMAT_JSON)
		emit_json(level, subsystem, file, line, fields, msg);
	else
		emit_text(level, subsystem, msg);
}

void log_at(int level, const char *subsystem, const char *file, int line, const char *func,
	    const struct log_field *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vat(level, subsystem, file, line, func, fields, fmt, ap);
	va_end(ap);
}

void log_vmsg(int level, const char *subsystem, const char *fmt, va_list ap)
{
	log_vat(level, subsystem, NULL, 0, NULL, NULL, fmt, ap);
}

void log_msg(int level, const char *subsystem, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vat(level, subsystem, NULL, 0, NULL, NULL, fmt, ap);
	va_end(ap);
}

/*
 * msg as bpflb_cfg_error() writes it: "PATH:LINE: [section] key = value: ...".
 * The path may hold ':', so the line number is the first ":DIGITS: " run.
 */
void log_err_msg(int level, const char *what, const char *msg)
{
	char file[256] = "", lineno[16] = "", key[64] = "";
	struct log_field fields[4] = {{NULL}};
	int nf = 0;

	for (const char *p = strchr(msg, ':'); p; p = strchr(p + 1, ':')) {
		size_t d = strspn(p + 1, "0123456789");

		if (d && d < sizeof(lineno) && p[1 + d] == ':' && p[2 + d] == ' ' &&
		    (size_t)(p - msg) < sizeof(file)) {
			const char *rest = p + 3 + d, *end;

			snprintf(file, sizeof(file), "%.*s", (int)(p - msg), msg);
			snprintf(lineno, sizeof(lineno), "%.*s", (int)d, p + 1);
			fields[nf++] = (struct log_field){"config_file", file};
			fields[nf++] = (struct log_field){"config_line", lineno};
			/* "[section] key = ..." or "[section] key: ..." */
			if (*rest == '[' && (end = strchr(rest, ']')) && end[1] == ' ') {
				size_t k = strcspn(end + 2, " :");

				if (k && k < sizeof(key)) {
					snprintf(key, sizeof(key), "%.*s", (int)k, end + 2);
					fields[nf++] = (struct log_field){"config_key", key};
				}
			}
			break;
		}
	}
	log_at(level, NULL, NULL, 0, NULL, fields, "%s%s%s", what ?: "", what ? ": " : "", msg);
}
