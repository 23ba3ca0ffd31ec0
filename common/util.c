// SPDX-License-Identifier: Apache-2.0
/* common/util.c: user-facing error messages, clocks, whole-file reads. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t kiln_start_ns;

int errf(struct errbuf *e, int errnum, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

void (*thread_confine)(enum thread_kind kind);

uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int read_file(const char *path, size_t max, char **out, size_t *len, struct errbuf *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errf(e, errno, "cannot open %s: %s", path, strerror(errno));

	struct stat st;
	int ret;
	if (fstat(fd, &st) < 0) {
		ret = errf(e, errno, "cannot stat %s: %s", path, strerror(errno));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = errf(e, EINVAL, "%s is not a regular file", path);
		goto err_close;
	}
	if ((uint64_t)st.st_size > max) {
		ret = errf(e, EFBIG, "%s is too large (%lld bytes, limit %zu)", path,
		           (long long)st.st_size, max);
		goto err_close;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = errf(e, ENOMEM, "out of memory reading %s", path);
		goto err_close;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = errf(e, n < 0 ? errno : EIO, "cannot read %s: %s", path,
			           n < 0 ? strerror(errno) : "file shrank while reading");
			free(buf);
			goto err_close;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	*out = buf;
	*len = got;
	return 0;

err_close:
	close(fd);
	return ret;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
