// SPDX-License-Identifier: GPL-2.0-only
/*
 * Without libFuzzer: run a fuzz target once over every file of the given
 * directories (its seed corpus, with the input of every fixed finding), so
 * that ctest checks them in every build, and under ASan+UBSan in
 * scripts/test-asan.sh.  Exits non-zero if a file cannot be read; a finding
 * crashes or is reported by the sanitizers.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	size_t len = 0, cap = 0;
	uint8_t *buf = NULL;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -errno;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap = cap ? 2 * cap : 4096);

			if (!nb) {
				ret = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		ret = -EIO;
		goto out;
	}
	/* An exact-size copy, so that ASan sees a read past the input. */
	uint8_t *exact = malloc(len ? len : 1);

	if (!exact) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(exact, buf, len);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
out:
	free(buf);
	fclose(f);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned int files = 0;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		struct dirent **names;
		int n = scandir(argv[i], &names, NULL, alphasort);

		if (n < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];

			if (names[j]->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
				if (run_file(path))
					ret = 1;
				files++;
			}
			free(names[j]);
		}
		free(names);
	}
	printf("%u inputs\n", files);
	return ret || !files;
}
