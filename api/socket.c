// SPDX-License-Identifier: Apache-2.0
/*
 * api/socket.c: the API's unix socket. kiln binds it itself (the HTTP
 * library only accepts on it) so that a stale socket file left by a killed
 * kiln is replaced, while a live one -- another kiln serving there -- is a
 * clear error instead of a stolen path.
 */
#include "api/http_int.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_addr(const char *path, struct sockaddr_un *sa, struct errbuf *e)
{
	size_t len = strlen(path);

	if (len == 0)
		return errf(e, EINVAL, "the API socket path is empty");
	if (len >= sizeof(sa->sun_path))
		return errf(e, ENAMETOOLONG,
		            "the API socket path %s is too long (%zu bytes, at most %zu)", path,
		            len, sizeof(sa->sun_path) - 1);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

/* an existing file at `path`: remove it if it is a stale socket, else refuse */
static int clear_stale(const char *path, const struct sockaddr_un *sa, struct errbuf *e)
{
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return errf(e, errno, "cannot check the API socket path %s: %s", path,
		            strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return errf(e, EEXIST, "%s exists and is not a socket; refusing to replace it",
		            path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errf(e, errno, "socket: %s", strerror(errno));
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 : errno;
	close(fd);
	if (ret == 0)
		return errf(e, EADDRINUSE, "socket %s is in use by another process", path);
	if (ret != ECONNREFUSED)
		return errf(e, ret, "cannot check whether socket %s is in use: %s", path,
		            strerror(ret));
	if (unlink(path) < 0 && errno != ENOENT)
		return errf(e, errno, "cannot remove the stale socket %s: %s", path,
		            strerror(errno));
	return 0;
}

int api_bind_unix(const char *path, struct stat *st, struct errbuf *e)
{
	struct sockaddr_un sa;
	int fd, ret;

	if ((ret = unix_addr(path, &sa, e)) < 0 || (ret = clear_stale(path, &sa, e)) < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errf(e, errno, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = errno == EADDRINUSE
		              ? errf(e, EADDRINUSE, "socket %s is in use by another process", path)
		              : errf(e, errno, "cannot bind the API socket %s: %s", path,
		                     strerror(errno));
		goto err_close;
	}
	if (listen(fd, SOMAXCONN) < 0) {
		ret = errf(e, errno, "cannot listen on %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	if (stat(path, st) < 0) {
		ret = errf(e, errno, "cannot stat the API socket %s: %s", path, strerror(errno));
		goto err_unlink;
	}
	return fd;

err_unlink:
	unlink(path);
err_close:
	close(fd);
	return ret;
}
