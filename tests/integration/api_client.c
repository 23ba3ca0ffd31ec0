// SPDX-License-Identifier: Apache-2.0
/* tests/integration/api_client.c: raw HTTP/1.1 over a unix socket, for tests. */
#include "api_client.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int ac_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

int ac_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static long long mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Appends at most `max` bytes of what arrives within the deadline; 1 data,
 * 0 EOF, -errno. With `head` set it stops right after the blank line that
 * ends the headers (it peeks first), so that a pipelined second answer
 * stays in the socket for the next ac_read().
 */
static int read_more(int fd, char **buf, size_t *len, size_t *cap, size_t max, bool head,
                     long long deadline)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	long long left = deadline - mono_ms();
	size_t want = max < 4096 ? max : 4096;
	ssize_t n;

	if (left <= 0 || poll(&p, 1, (int)left) == 0)
		return -ETIMEDOUT;
	if (*len + 4097 > *cap) {
		size_t c = *cap ? *cap * 2 : 8192;
		char *b = realloc(*buf, c);
		if (!b)
			return -ENOMEM;
		*buf = b;
		*cap = c;
	}
	if (head) {
		n = recv(fd, *buf + *len, want, MSG_PEEK);
		if (n > 0) {
			(*buf)[*len + (size_t)n] = '\0';
			char *end = strstr(*buf + (*len > 3 ? *len - 3 : 0), "\r\n\r\n");
			if (end)
				want = (size_t)(end + 4 - (*buf + *len));
		}
	}
	n = recv(fd, *buf + *len, want, 0);
	if (n < 0)
		return errno == ECONNRESET ? 0 : -errno;
	*len += (size_t)n;
	(*buf)[*len] = '\0';
	return n > 0;
}

/* reads exactly one answer: its headers, then Content-Length bytes (or to EOF) */
int ac_read(int fd, struct ac_resp *r, int timeout_ms)
{
	long long deadline = mono_ms() + kh_scaled_ms(timeout_ms);
	size_t len = 0, cap = 0, hlen, want = (size_t)-1;
	char *buf = NULL, *end, cl[32];
	int ret = 0;

	memset(r, 0, sizeof(*r));
	while (!buf || !(end = strstr(buf, "\r\n\r\n"))) {
		if ((ret = read_more(fd, &buf, &len, &cap, SIZE_MAX, true, deadline)) <= 0) {
			free(buf);
			return ret == 0 ? -ECONNRESET : ret;
		}
	}
	hlen = (size_t)(end - buf) + 4;
	r->head = strndup(buf, hlen - 2);
	if (!r->head || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
		free(buf);
		return -EPROTO;
	}
	if (ac_header(r, "Content-Length", cl, sizeof(cl)))
		want = strtoul(cl, NULL, 10);
	else if (r->status == 204 || r->status == 304)
		want = 0;
	while (len - hlen < want &&
	       (ret = read_more(fd, &buf, &len, &cap, want - (len - hlen), false, deadline)) > 0)
		;
	if (want != (size_t)-1 && len - hlen < want) {
		free(buf);
		return ret < 0 ? ret : -EPROTO;
	}
	r->body_len = want != (size_t)-1 ? want : len - hlen;
	r->body = malloc(r->body_len + 1);
	if (!r->body) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(r->body, buf + hlen, r->body_len);
	r->body[r->body_len] = '\0';
	free(buf);
	return 0;
}

bool ac_header(const struct ac_resp *r, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);

	for (const char *l = r->head ? strstr(r->head, "\r\n") : NULL; l; l = strstr(l, "\r\n")) {
		l += 2;
		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			const char *v = l + n + 1, *e = strstr(v, "\r\n");
			while (*v == ' ')
				v++;
			snprintf(buf, size, "%.*s", (int)(e ? (size_t)(e - v) : strlen(v)), v);
			return true;
		}
	}
	return false;
}

int ac_request(const char *sock, const char *method, const char *path, const char *body,
               struct ac_resp *r)
{
	size_t blen = body ? strlen(body) : 0;
	char *head = NULL;
	int fd, ret;

	memset(r, 0, sizeof(*r));
	if (body)
		ret = asprintf(&head,
		               "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		               method, path, blen);
	else
		ret = asprintf(&head,
		               "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		               method, path);
	if (ret < 0)
		return -ENOMEM;
	fd = ac_connect(sock);
	if (fd < 0) {
		free(head);
		return fd;
	}
	ret = ac_send(fd, head, strlen(head));
	if (ret == 0 && blen)
		ret = ac_send(fd, body, blen);
	/* a server that refuses a body answers and closes before reading it all */
	if (ret == 0 || ret == -EPIPE || ret == -ECONNRESET)
		ret = ac_read(fd, r, 20000);
	close(fd);
	free(head);
	if (ret < 0)
		return ret;
	ac_log(method, path, body, false, r);
	return r->status;
}

static json_t *text_or_null(const char *s, size_t len)
{
	json_t *j = s ? json_stringn(s, len) : NULL;
	return j ? j : json_null(); /* not UTF-8: logged as null */
}

void ac_log(const char *method, const char *path, const char *req_body, bool raw,
            const struct ac_resp *r)
{
	const char *file = getenv("KILN_API_LOG");
	json_t *line;
	char *text;
	int fd;

	if (!file || !file[0])
		return;
	line = json_pack("{s:s, s:s, s:i, s:o, s:o, s:b}", "method", method, "path", path, "status",
	                 r->status, "request_body",
	                 text_or_null(req_body, req_body ? strlen(req_body) : 0), "response_body",
	                 r->body_len ? text_or_null(r->body, r->body_len) : json_null(), "raw",
	                 raw);
	text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	fd = text ? open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
	if (fd >= 0) {
		size_t n = strlen(text);
		text[n] = '\n'; /* one write per line keeps concurrent writers' lines whole */
		if (write(fd, text, n + 1) < 0)
			perror("KILN_API_LOG");
		close(fd);
	}
	free(text);
}

void ac_resp_free(struct ac_resp *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}
