// SPDX-License-Identifier: GPL-2.0-only
/*
 * The directory lease store (egress_lease.h).
 *
 * Writers take an exclusive flock() on KEY.lock, read KEY.lease, decide, and
 * replace KEY.lease with a temporary file renamed over it: rename() is atomic,
 * so readers, who take no lock, see the old record or the new one, never half
 * of one.  The lock file is never removed (removing it would let two writers
 * lock two different inodes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "egress_lease.h"

struct lease_dir {
	struct egress_lease_store base;
	char dir[PATH_MAX];
};

uint64_t egress_lease_realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int key_ok(const char *key)
{
	size_t n = strlen(key);

	return n > 0 && n < EGRESS_LEASE_KEY_MAX && key[0] != '.' &&
	       strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
		   n;
}

static int path_of(const struct lease_dir *d, char *buf, size_t len, const char *key,
		   const char *suffix)
{
	int n = snprintf(buf, len, "%s/%s%s", d->dir, key, suffix);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Parse a record; a missing file is a lease never held. */
static int lease_read(const struct lease_dir *d, const char *key, struct egress_lease *out)
{
	char path[PATH_MAX], line[256], holder[EGRESS_LEASE_HOLDER_MAX];
	uint64_t v;
	FILE *f;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = path_of(d, path, sizeof(path), key, ".lease");
	if (ret)
		return ret;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "holder %63s", holder) == 1)
			snprintf(out->holder, sizeof(out->holder), "%s", holder);
		else if (sscanf(line, "expires_ms %" SCNu64, &v) == 1)
			out->expires_ms = v;
		else if (sscanf(line, "free_since_ms %" SCNu64, &v) == 1)
			out->free_since_ms = v;
	}
	fclose(f);
	/* "holder -" is how a released lease is written. */
	if (!strcmp(out->holder, "-"))
		out->holder[0] = '\0';
	return 0;
}

static int lease_write(const struct lease_dir *d, const char *key, const char *me,
		       const struct egress_lease *l)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *f;
	int ret;

	ret = path_of(d, path, sizeof(path), key, ".lease");
	if (ret)
		return ret;
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.%s.tmp", d->dir, key, me) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "holder %s\nexpires_ms %" PRIu64 "\nfree_since_ms %" PRIu64 "\n",
		l->holder[0] ? l->holder : "-", l->expires_ms, l->free_since_ms);
	if (fflush(f) || fsync(fileno(f))) {
		ret = -errno;
		fclose(f);
		unlink(tmp);
		return ret;
	}
	if (fclose(f)) {
		ret = -errno;
		unlink(tmp);
		return ret;
	}
	if (rename(tmp, path)) {
		ret = -errno;
		unlink(tmp);
		return ret;
	}
	return 0;
}

static int lease_lock(const struct lease_dir *d, const char *key)
{
	char path[PATH_MAX];
	int fd, ret;

	ret = path_of(d, path, sizeof(path), key, ".lock");
	if (ret)
		return ret;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX)) {
		if (errno != EINTR) {
			ret = -errno;
			close(fd);
			return ret;
		}
	}
	return fd;
}

static void lease_unlock(int fd)
{
	flock(fd, LOCK_UN);
	close(fd);
}

/* A lease whose holder did not renew in time reads as free since its expiry. */
static void lease_normalise(struct egress_lease *l, uint64_t now)
{
	if (l->holder[0] && now >= l->expires_ms) {
		l->holder[0] = '\0';
		l->free_since_ms = l->expires_ms;
	}
}

static int dir_get(struct egress_lease_store *s, const char *key, struct egress_lease *out)
{
	struct lease_dir *d = (struct lease_dir *)s;
	int ret;

	if (!key_ok(key))
		return -EINVAL;
	ret = lease_read(d, key, out);
	if (!ret)
		lease_normalise(out, s->now_ms());
	return ret;
}

static int dir_acquire(struct egress_lease_store *s, const char *key, const char *me,
		       uint32_t ttl_ms, uint32_t wait_ms, struct egress_lease *out)
{
	struct lease_dir *d = (struct lease_dir *)s;
	struct egress_lease l;
	uint64_t now;
	int fd, ret;

	if (!key_ok(key) || !key_ok(me))
		return -EINVAL;
	fd = lease_lock(d, key);
	if (fd < 0)
		return fd;
	ret = lease_read(d, key, &l);
	if (ret)
		goto out;
	now = s->now_ms();
	lease_normalise(&l, now);
	if (l.holder[0] && strcmp(l.holder, me)) {
		ret = -EBUSY;
		goto out;
	}
	if (!l.holder[0]) {
		if (!l.free_since_ms && wait_ms) {
			/*
			 * Never held: start the clock now, so that the ranks
			 * order the first acquisition as they order a takeover.
			 */
			l.free_since_ms = now;
			ret = lease_write(d, key, me, &l);
			ret = ret ? ret : -EAGAIN;
			goto out;
		}
		if (now < l.free_since_ms + wait_ms) {
			ret = -EAGAIN;
			goto out;
		}
	}
	snprintf(l.holder, sizeof(l.holder), "%s", me);
	l.expires_ms = now + ttl_ms;
	l.free_since_ms = 0;
	ret = lease_write(d, key, me, &l);
out:
	if (out)
		*out = l;
	lease_unlock(fd);
	return ret;
}

static int dir_renew(struct egress_lease_store *s, const char *key, const char *me, uint32_t ttl_ms,
		     struct egress_lease *out)
{
	struct lease_dir *d = (struct lease_dir *)s;
	struct egress_lease l;
	int fd, ret;

	if (!key_ok(key) || !key_ok(me))
		return -EINVAL;
	fd = lease_lock(d, key);
	if (fd < 0)
		return fd;
	ret = lease_read(d, key, &l);
	if (ret)
		goto out;
	/*
	 * Still ours even if it expired a moment ago, as long as nobody took it:
	 * a late renewal is not a handover.
	 */
	if (strcmp(l.holder, me)) {
		lease_normalise(&l, s->now_ms());
		ret = -EBUSY;
		goto out;
	}
	l.expires_ms = s->now_ms() + ttl_ms;
	l.free_since_ms = 0;
	ret = lease_write(d, key, me, &l);
out:
	if (out)
		*out = l;
	lease_unlock(fd);
	return ret;
}

static int dir_release(struct egress_lease_store *s, const char *key, const char *me)
{
	struct lease_dir *d = (struct lease_dir *)s;
	struct egress_lease l;
	int fd, ret;

	if (!key_ok(key) || !key_ok(me))
		return -EINVAL;
	fd = lease_lock(d, key);
	if (fd < 0)
		return fd;
	ret = lease_read(d, key, &l);
	if (!ret && !strcmp(l.holder, me)) {
		l.holder[0] = '\0';
		l.expires_ms = 0;
		l.free_since_ms = s->now_ms();
		ret = lease_write(d, key, me, &l);
	}
	lease_unlock(fd);
	return ret;
}

static void dir_close(struct egress_lease_store *s)
{
	free(s);
}

static const struct egress_lease_ops dir_ops = {
    .name = "dir",
    .get = dir_get,
    .acquire = dir_acquire,
    .renew = dir_renew,
    .release = dir_release,
    .close = dir_close,
};

int egress_lease_dir_open(const char *dir, struct egress_lease_store **out)
{
	struct lease_dir *d;
	struct stat st;

	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (access(dir, R_OK | W_OK | X_OK))
		return -errno;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (snprintf(d->dir, sizeof(d->dir), "%s", dir) >= (int)sizeof(d->dir)) {
		free(d);
		return -ENAMETOOLONG;
	}
	d->base.ops = &dir_ops;
	d->base.now_ms = egress_lease_realtime_ms;
	*out = &d->base;
	return 0;
}
