/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's logger.  Three outputs, one per process (log_init):
 *   journal  sd_journal_send with PRIORITY, CODE_*, SYSLOG_IDENTIFIER and
 *            BPFLB_* fields; chosen when stderr is journald's stream
 *   text     "RFC3339-time bpflbd: level: [subsystem: ]message" on stderr
 *   json     one JSON object per line on stderr, for log shippers
 */
#ifndef BPFLB_CORE_LOG_H
#define BPFLB_CORE_LOG_H

#include <stdarg.h>
#include <syslog.h>

enum log_format {
	LOG_FORMAT_AUTO, /* journal under journald, text otherwise */
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON,
};

/*
 * A structured field of one line: key in lower case ("service"); journald
 * gets it as BPFLB_SERVICE, JSON as "service".  Arrays end with {NULL}.
 */
struct log_field {
	const char *key, *value;
};

void log_init(int max_level, enum log_format format);
void log_set_level(int max_level);
int log_level_from_name(const char *name);	  /* -1 when unknown */
int log_format_from_name(const char *name);	  /* -1 when unknown */
void log_at(int level, const char *subsystem, const char *file, int line, const char *func,
	    const struct log_field *fields, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
void log_vat(int level, const char *subsystem, const char *file, int line, const char *func,
	     const struct log_field *fields, const char *fmt, va_list ap);
/* Without a code location: plugins' bpflb_log() and libbpf's messages. */
void log_msg(int level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(int level, const char *subsystem, const char *fmt, va_list ap);
/*
 * A struct bpflb_err message as one line: "what: FILE:LINE: ..." gets the
 * config_file and config_line fields, so that journalctl -p err (or a JSON
 * query) finds why a start, reload or --check-config failed.
 */
void log_err_msg(int level, const char *what, const char *msg);
/*
 * While set, libbpf's warnings are logged as debug: for calls whose failure
 * is an expected answer the caller reports itself (detaching from a device
 * that has no hook).
 */
void log_libbpf_quiet(int quiet);

#define LOG_HERE(level, subsys, fields, ...)                                                       \
	log_at(level, subsys, __FILE__, __LINE__, __func__, fields, __VA_ARGS__)

#define pr_err(...)    LOG_HERE(LOG_ERR, NULL, NULL, __VA_ARGS__)
#define pr_warn(...)   LOG_HERE(LOG_WARNING, NULL, NULL, __VA_ARGS__)
#define pr_notice(...) LOG_HERE(LOG_NOTICE, NULL, NULL, __VA_ARGS__)
#define pr_info(...)   LOG_HERE(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define pr_debug(...)  LOG_HERE(LOG_DEBUG, NULL, NULL, __VA_ARGS__)

#endif
