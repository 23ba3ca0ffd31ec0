// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-write.c: kt-write PATH BYTES MARKER
 *
 * Creates (or truncates) PATH and writes BYTES bytes to it: the line
 * "MARKER\n", then a xorshift64 stream seeded from the marker. It then
 * fsyncs the file and the folder holding it, so that both the data and the
 * new name are on the disk when it reports, in one line through kt_say:
 *   kt-write: wrote PATH bytes=BYTES fnv1a=<16 hex digits of the file's FNV-1a>
 * and exits 0. On any failure it reports the step and errno's text instead,
 *   kt-write: open PATH: Read-only file system
 * and exits 1 (2 for bad arguments).
 */
#include "kt.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 65536

static int fail(const char *step, const char *path)
{
	kt_say("kt-write: %s %s: %s", step, path, strerror(errno));
	return 1;
}

/* writes all of buf[0 .. len) at the file offset: 0, or -1 with errno set */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsyncs the folder that holds `path`, so that its new entry is durable too */
static int sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = fsync(fd);
	close(fd);
	return ret;
}

/* fills buf[0 .. len) from the generator, the marker line first when at the file's start */
static void fill(uint8_t *buf, size_t len, size_t done, const char *marker, uint64_t *state)
{
	size_t mlen = strlen(marker);
	size_t i = 0;

	for (; done + i < mlen + 1 && i < len; i++)
		buf[i] = done + i < mlen ? (uint8_t)marker[done + i] : '\n';
	for (; i < len; i++)
		buf[i] = (uint8_t)kt_xorshift(state);
}

int main(int argc, char **argv)
{
	static uint8_t buf[CHUNK];

	if (argc != 4) {
		kt_say("usage: kt-write PATH BYTES MARKER");
		return 2;
	}
	const char *path = argv[1], *marker = argv[3];
	char *end;
	errno = 0;
	unsigned long long total = strtoull(argv[2], &end, 10);
	if (errno || *end || end == argv[2] || total < strlen(marker) + 1) {
		kt_say("kt-write: BYTES must hold the marker line: %s", argv[2]);
		return 2;
	}

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("open", path);
	uint64_t state = kt_fnv1a(KT_FNV_INIT, marker, strlen(marker)) | 1;
	uint64_t sum = KT_FNV_INIT;
	for (unsigned long long done = 0; done < total;) {
		size_t n = total - done < CHUNK ? (size_t)(total - done) : CHUNK;
		fill(buf, n, (size_t)done, marker, &state);
		if (write_all(fd, buf, n) < 0)
			return fail("write", path);
		sum = kt_fnv1a(sum, buf, n);
		done += n;
	}
	if (fsync(fd) < 0)
		return fail("fsync", path);
	if (close(fd) < 0)
		return fail("close", path);
	if (sync_parent(path) < 0)
		return fail("fsync the folder of", path);
	kt_say("kt-write: wrote %s bytes=%llu fnv1a=%016llx", path, total, (unsigned long long)sum);
	return 0;
}
