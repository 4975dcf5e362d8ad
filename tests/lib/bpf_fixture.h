/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every BPF_PROG_TEST_RUN fixture suite needs besides its own cases:
 * bpffs mounted, a pin tree removed at the end, libbpf's warnings (they carry
 * the verifier log) on stderr, and Internet checksums computed independently
 * of the datapath's helpers, so a test checks the program rather than itself.
 * Include after the system headers (ftw.h, sys/statfs.h, sys/mount.h,
 * linux/ip.h, bpf/libbpf.h).
 */
#ifndef BPFLB_TESTS_BPF_FIXTURE_H
#define BPFLB_TESTS_BPF_FIXTURE_H

#define BPF_FS "/sys/fs/bpf"
#define BPF_FS_MAGIC_NR 0xcafe4a11

static inline int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Remove path and everything below it (a test's pin directory). */
static inline void rm_tree(const char *path)
{
	if (path[0])
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* Warnings carry the verifier log of a program that failed to load. */
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

/* Mount bpffs at BPF_FS unless it is there already. */
static inline int ensure_bpffs(void)
{
	struct statfs st;

	if (!statfs(BPF_FS, &st) && st.f_type == BPF_FS_MAGIC_NR)
		return 0;
	mkdir(BPF_FS, 0700);
	return mount("bpf", BPF_FS, "bpf", 0, "mode=0700");
}

/* RFC 1071 one's complement sum over data, added to sum (not folded). */
static inline uint32_t sum16(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *b = data;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

static inline uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Sum of the IPv4 pseudo header of a TCP/UDP segment of l4len bytes. */
static inline uint32_t pseudo_sum(const struct iphdr *iph, uint32_t l4len)
{
	uint32_t sum = 0;

	sum = sum16(&iph->saddr, 4, sum);
	sum = sum16(&iph->daddr, 4, sum);
	return sum + iph->protocol + l4len;
}

#endif
