// SPDX-License-Identifier: GPL-2.0-only
/* The request-head reader of healthz.c and metrics.c (see http.h). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ops/http.h"

/* Case-insensitive "name:" at the start of line; *val points past blanks. */
static bool header_is(const char *line, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncasecmp(line, name, n) || line[n] != ':')
		return false;
	line += n + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	*val = line;
	return true;
}

/* Comma-separated tokens, case-insensitive. */
static bool token_has(const char *val, const char *word)
{
	size_t n = strlen(word);

	while (*val) {
		while (*val == ' ' || *val == '\t' || *val == ',')
			val++;
		if (!strncasecmp(val, word, n) &&
		    (!val[n] || val[n] == ',' || val[n] == ' ' || val[n] == '\t'))
			return true;
		while (*val && *val != ',')
			val++;
	}
	return false;
}

size_t bpflb_http_head_end(const char *b, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (b[i] != '\n')
			continue;
		if (i + 1 < len && b[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && b[i + 1] == '\r' && b[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

int bpflb_http_parse(char *head, uint64_t max_body, struct bpflb_http_req *req)
{
	char *line, *save = NULL, *method, *target, *version, *sp1, *sp2;
	bool ka_hdr = false, close_hdr = false;
	const char *val;

	memset(req, 0, sizeof(*req));
	line = strtok_r(head, "\n", &save);
	if (!line)
		return 400;
	line[strcspn(line, "\r")] = '\0';
	method = line;
	sp1 = strchr(method, ' ');
	if (!sp1)
		return 400;
	*sp1 = '\0';
	target = sp1 + 1;
	sp2 = strchr(target, ' ');
	if (!sp2)
		return 400;
	*sp2 = '\0';
	version = sp2 + 1;
	if (!*method || !*target || strchr(version, ' '))
		return 400;
	for (const char *p = method; *p; p++)
		if (!isupper((unsigned char)*p))
			return 400;
	if (!strcmp(version, "HTTP/1.1"))
		req->http11 = true;
	else if (strcmp(version, "HTTP/1.0"))
		return 400;

	while ((line = strtok_r(NULL, "\n", &save))) {
		line[strcspn(line, "\r")] = '\0';
		if (!*line)
			continue;
		if (!strchr(line, ':') || *line == ' ' || *line == '\t')
			return 400;
		if (header_is(line, "connection", &val)) {
			close_hdr |= token_has(val, "close");
			ka_hdr |= token_has(val, "keep-alive");
		} else if (header_is(line, "content-length", &val)) {
			unsigned long long clen;
			char *end;

			errno = 0;
			clen = strtoull(val, &end, 10);
			if (errno || end == val || (*end && *end != ' ' && *end != '\t'))
				return 400;
			if (clen > max_body)
				return 413;
			req->content_length = clen;
		} else if (header_is(line, "transfer-encoding", &val)) {
			return 400; /* no bodies expected: no chunked decoding here */
		}
	}
	req->method = method;
	req->target = target;
	req->keep_alive = req->http11 ? !close_hdr : ka_hdr && !close_hdr;
	return 0;
}
