// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/cpio.c: the newc writer (see cpio.h). Each entry is a
 * 110-byte ASCII header -- "070701" and 13 fields of 8 hex digits: ino,
 * mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
 * rdevminor, namesize (with its NUL), check (0 for newc) -- then the name
 * and its NUL, padded to 4 bytes, then the data, padded to 4 bytes. The
 * last entry is named "TRAILER!!!".
 */
#include "cpio.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NEWC_MAGIC   "070701"
#define NEWC_HDR_LEN 110

void cpio_init(struct cpio *c)
{
	memset(c, 0, sizeof(*c));
	c->next_ino = 1;
}

void cpio_free(struct cpio *c)
{
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

/* room for `n` more bytes; false (and c->err set) when out of memory */
static bool reserve(struct cpio *c, size_t n)
{
	if (c->err)
		return false;
	if (c->len + n <= c->cap)
		return true;
	size_t cap = c->cap ? c->cap : 4096;
	while (cap < c->len + n)
		cap *= 2;
	uint8_t *b = realloc(c->buf, cap);
	if (!b) {
		c->err = -ENOMEM;
		return false;
	}
	c->buf = b;
	c->cap = cap;
	return true;
}

static void put(struct cpio *c, const void *p, size_t n)
{
	if (!reserve(c, n))
		return;
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

/* zero bytes up to the next multiple of 4 (newc aligns names and data) */
static void pad4(struct cpio *c)
{
	static const uint8_t zero[4];
	put(c, zero, (4 - c->len % 4) % 4);
}

static void entry(struct cpio *c, const char *name, uint32_t mode, uint32_t nlink, const void *data,
                  size_t len, unsigned rmajor, unsigned rminor)
{
	char hdr[NEWC_HDR_LEN + 1];
	size_t namesize = strlen(name) + 1;

	if (c->err)
		return;
	if (len > UINT32_MAX) {
		c->err = -EFBIG;
		return;
	}
	snprintf(hdr, sizeof(hdr),
	         NEWC_MAGIC "%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", c->next_ino++,
	         mode, 0u, 0u, nlink, 0u, (uint32_t)len, 0u, 0u, rmajor, rminor, (uint32_t)namesize,
	         0u);
	put(c, hdr, NEWC_HDR_LEN);
	put(c, name, namesize);
	pad4(c);
	if (len)
		put(c, data, len);
	pad4(c);
}

void cpio_dir(struct cpio *c, const char *name, unsigned perm)
{
	entry(c, name, S_IFDIR | (perm & 07777), 2, NULL, 0, 0, 0);
}

void cpio_file(struct cpio *c, const char *name, unsigned perm, const void *data, size_t len)
{
	entry(c, name, S_IFREG | (perm & 07777), 1, data, len, 0, 0);
}

void cpio_host_file(struct cpio *c, const char *name, unsigned perm, const char *host_path)
{
	if (c->err)
		return;
	int fd = open(host_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		c->err = -errno;
		goto out;
	}
	uint8_t *data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data) {
		c->err = -ENOMEM;
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
		if (n <= 0) {
			c->err = n < 0 ? -errno : -EIO; /* shrank while we read it */
			break;
		}
		got += (size_t)n;
	}
	if (!c->err)
		cpio_file(c, name, perm, data, got);
	free(data);
out:
	if (fd >= 0)
		close(fd);
}

void cpio_chardev(struct cpio *c, const char *name, unsigned perm, unsigned major, unsigned minor)
{
	entry(c, name, S_IFCHR | (perm & 07777), 1, NULL, 0, major, minor);
}

int cpio_write(struct cpio *c, const char *path)
{
	entry(c, "TRAILER!!!", 0, 1, NULL, 0, 0, 0);
	if (c->err)
		return c->err;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t done = 0;
	int ret = 0;
	while (done < c->len) {
		ssize_t n = write(fd, c->buf + done, c->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0 && !ret)
		ret = -errno;
	return ret;
}
