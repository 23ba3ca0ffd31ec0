/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/integration/api_client: a tiny HTTP/1.1 client over a unix socket
 * for the API tests. It sends exactly the bytes it is given (so tests can
 * send half requests, huge bodies or garbage) and reads one response.
 *
 * When the environment variable KILN_API_LOG names a file, every exchange
 * is appended to it as one JSON line
 *   {"method", "path", "status", "request_body", "response_body"}
 * (bodies as raw strings or null; "raw": true when the request bytes were
 * handcrafted), which scripts/validate-openapi.py checks against
 * openapi.yaml.
 */
#ifndef KILN_TEST_API_CLIENT_H
#define KILN_TEST_API_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct ac_resp {
	int status; /* 0 when no status line arrived */
	char *head; /* status line and headers, NUL-terminated */
	char *body; /* NUL-terminated, body_len bytes */
	size_t body_len;
};

/* connects to the unix socket at `path`: the fd, or -errno */
int ac_connect(const char *path);

/* writes all of buf (no SIGPIPE): 0, or -errno (-EPIPE once the server closed) */
int ac_send(int fd, const void *buf, size_t len);

/*
 * Reads one response: headers, then Content-Length bytes of body (or up
 * to EOF without one). 0, -ETIMEDOUT after `timeout_ms`, -ECONNRESET when
 * the server closed before a status line, or -errno.
 */
int ac_read(int fd, struct ac_resp *r, int timeout_ms);

/*
 * One request on a fresh connection ("Connection: close"), `body` (JSON
 * text) or NULL; logged to KILN_API_LOG. The status, or -errno.
 */
int ac_request(const char *sock, const char *method, const char *path, const char *body,
               struct ac_resp *r);

/* a header's value (case-insensitive name) into buf; false when absent */
bool ac_header(const struct ac_resp *r, const char *name, char *buf, size_t size);

/* appends one exchange to KILN_API_LOG (if set); raw: handcrafted request bytes */
void ac_log(const char *method, const char *path, const char *req_body, bool raw,
            const struct ac_resp *r);

void ac_resp_free(struct ac_resp *r);

#endif
