/* SPDX-License-Identifier: GPL-2.0-only */
/* The daemon's logger: stderr, with syslog priority prefixes under journald. */
#ifndef BPFLB_CORE_LOG_H
#define BPFLB_CORE_LOG_H

#include <stdarg.h>
#include <syslog.h>

void log_init(int max_level);
void log_set_level(int max_level);
int log_level_from_name(const char *name); /* -1 when unknown */
void log_msg(int level, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap);

#define pr_err(...)    log_msg(LOG_ERR, NULL, __VA_ARGS__)
#define pr_warn(...)   log_msg(LOG_WARNING, NULL, __VA_ARGS__)
#define pr_notice(...) log_msg(LOG_NOTICE, NULL, __VA_ARGS__)
#define pr_info(...)   log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define pr_debug(...)  log_msg(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
