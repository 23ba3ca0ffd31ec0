// SPDX-License-Identifier: Apache-2.0
/* tests/integration/orch_client.c: see orch_client.h */
#include "orch_client.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void oc_init(struct oc_conn *c, const char *sock, struct kproc *kp)
{
	c->sock = sock;
	c->fd = -1;
	c->kp = kp;
}

void oc_close(struct oc_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* the request head Go's client writes (header order as net/http sends them) */
static char *go_head(const char *method, const char *path, size_t blen, bool has_body)
{
	if (has_body)
		return kh_fmt(
		        "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Go-http-client/1.1\r\n"
		        "Content-Length: %zu\r\nAccept: application/json\r\n"
		        "Content-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n",
		        method, path, blen);
	return kh_fmt("%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Go-http-client/1.1\r\n"
	              "Accept: application/json\r\nAccept-Encoding: gzip\r\n\r\n",
	              method, path);
}

/* one exchange on the kept-alive connection: 0 with *r filled, or -errno */
static int exchange(struct oc_conn *c, const char *head, const char *body, struct ac_resp *r)
{
	int ret;

	if (c->fd < 0 && (c->fd = ac_connect(c->sock)) < 0) {
		ret = c->fd;
		c->fd = -1;
		return ret;
	}
	ret = ac_send(c->fd, head, strlen(head));
	if (ret == 0 && body)
		ret = ac_send(c->fd, body, strlen(body));
	if (ret == 0 || ret == -EPIPE || ret == -ECONNRESET)
		ret = ac_read(c->fd, r, 20000);
	if (ret < 0)
		oc_close(c);
	else {
		char conn[32];
		/* the server said it closes: the next request dials again */
		if (ac_header(r, "Connection", conn, sizeof(conn)) && !strcasecmp(conn, "close"))
			oc_close(c);
	}
	return ret;
}

json_t *oc_call(struct oc_conn *c, const char *method, const char *path, const char *body,
                int status)
{
	char *head = go_head(method, path, body ? strlen(body) : 0, body != NULL);
	struct ac_resp r;
	json_t *j = NULL;
	int ret = exchange(c, head, body, &r);

	/* a kept-alive connection the server had closed: Go dials again once */
	if (ret == -ECONNRESET || ret == -EPIPE)
		ret = exchange(c, head, body, &r);
	free(head);
	cr_expect_geq(ret, 0, "%s %s: no answer (%s)", method, path, strerror(-ret));
	if (ret < 0)
		return NULL;
	ac_log(method, path, body, false, &r);
	if (r.status != status && c->kp)
		kh_wait_for(c->kp, "\x01", 100); /* kiln's output for the message */
	cr_expect_eq(r.status, status, "%s %s %s: status %d, Firecracker answers %d; body: %s\n%s",
	             method, path, body ? body : "", r.status, status, r.body,
	             c->kp && c->kp->out ? c->kp->out : "");
	if (r.body_len) {
		j = json_loads(r.body, 0, NULL);
		cr_expect_not_null(j, "%s %s: the body is not JSON: %s", method, path, r.body);
	}
	if (r.status != status) {
		json_decref(j);
		j = NULL;
	}
	ac_resp_free(&r);
	return j;
}

void oc_ok(struct oc_conn *c, const char *method, const char *path, const char *body)
{
	json_decref(oc_call(c, method, path, body, 204));
}

void oc_okf(struct oc_conn *c, const char *method, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *body;

	va_start(ap, fmt);
	int n = vasprintf(&body, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	oc_ok(c, method, path, body);
	free(body);
}

bool oc_wait_socket(struct oc_conn *c, int ms)
{
	struct stat st;

	for (int waited = 0; waited < kh_scaled_ms(ms); waited += 10) {
		if (stat(c->sock, &st) == 0) {
			char *head = go_head("GET", "/machine-config", 0, false);
			struct ac_resp r;
			int ret = exchange(c, head, NULL, &r);
			free(head);
			if (ret == 0) {
				ac_log("GET", "/machine-config", NULL, false, &r);
				bool ok = r.status == 200;
				ac_resp_free(&r);
				if (ok)
					return true;
			}
		}
		if (c->kp && kh_wait_exit(c->kp, 10) != -1)
			return false;
	}
	return false;
}

void oc_mkdir(char dir[64])
{
	strcpy(dir, "/tmp/kiln-orch-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

void oc_cleanup(struct kproc *kp, const char *dir)
{
	kh_kill(kp);
	char *cmd = kh_fmt("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(cmd);
}

char *oc_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);

	cr_assert_not_null(buf);
	if (f) {
		size_t n = fread(buf, 1, (1 << 20) - 1, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

char *oc_drain(int fd)
{
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap + 1);

	cr_assert_not_null(buf);
	for (ssize_t got; n < cap && (got = read(fd, buf + n, cap - n)) > 0;)
		n += (size_t)got;
	buf[n] = '\0';
	return buf;
}
