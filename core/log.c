// SPDX-License-Identifier: GPL-2.0-only
/*
 * Logging to stderr.  Under systemd (JOURNAL_STREAM names our stderr) every
 * line starts with "<N>" so journald records the right priority; on a terminal
 * the level is spelled out instead.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <bpf/libbpf.h>

#include "log.h"

static int log_max = LOG_INFO;
static bool log_journal;

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
	if (strstr(line, "Exclusivity flag on"))
		level = LOG_DEBUG;
	/* libbpf's INFO is chatty (every map it reuses): keep it for debug. */
	if (level == LOG_INFO)
		level = LOG_DEBUG;
	log_msg(level, "libbpf", "%s", line);
	return 0;
}

void log_init(int max_level)
{
	log_max = max_level;
	log_journal = stderr_is_journal();
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

void log_vmsg(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (level > log_max)
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* One write per line, so lines of concurrent writers never interleave. */
	if (log_journal)
		fprintf(stderr, "<%d>%s%s%s\n", level, prefix ? prefix : "", prefix ? ": " : "",
			line);
	else
		fprintf(stderr, "bpflbd: %s: %s%s%s\n", level_names[level & 7],
			prefix ? prefix : "", prefix ? ": " : "", line);
}

void log_msg(int level, const char *prefix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, prefix, fmt, ap);
	va_end(ap);
}
