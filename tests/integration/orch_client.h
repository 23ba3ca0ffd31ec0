/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/integration/orch_client: the HTTP requests the Go orchestrators
 * send, byte for byte as Go's net/http client under go-openapi's runtime
 * writes them (Host: localhost, User-Agent: Go-http-client/1.1, Accept
 * and, with a body, Content-Type application/json, Accept-Encoding: gzip),
 * on one kept-alive connection that is dialled again when the server
 * closed it, as Go's transport does. Used by test_orch_*.c. Each exchange
 * goes to KILN_API_LOG (api_client.h) for scripts/validate-openapi.py.
 *
 * A wrong status is a criterion *expectation* (the test fails but goes on),
 * so one run of a replay shows every answer that differs from
 * Firecracker's, not only the first.
 */
#ifndef KILN_TEST_ORCH_CLIENT_H
#define KILN_TEST_ORCH_CLIENT_H

#include "api_client.h"
#include "harness.h"

#include <jansson.h>

struct oc_conn {
	const char *sock; /* the API socket (relative paths are the caller's cwd) */
	int fd;           /* the kept-alive connection, or -1 */
	struct kproc *kp; /* the kiln answering, for failure messages */
};

/* a connection object for `sock` (nothing is dialled yet) */
void oc_init(struct oc_conn *c, const char *sock, struct kproc *kp);
/* closes the kept-alive connection */
void oc_close(struct oc_conn *c);

/*
 * One request as the Go client sends it; expects `status` (a failed
 * expectation, not an abort); the parsed body, NULL when there was none or
 * the status differed. `body` is JSON text or NULL.
 */
json_t *oc_call(struct oc_conn *c, const char *method, const char *path, const char *body,
                int status);
/* oc_call expecting 204 */
void oc_ok(struct oc_conn *c, const char *method, const char *path, const char *body);
/* oc_ok with the body made by printf */
void oc_okf(struct oc_conn *c, const char *method, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * The Go SDK's waitForSocket: until the socket exists and GET
 * /machine-config answers (every 10 ms, up to `ms`): true when it did.
 */
bool oc_wait_socket(struct oc_conn *c, int ms);

/* a new directory /tmp/kiln-orch-XXXXXX into dir (criterion asserts) */
void oc_mkdir(char dir[64]);
/* kills kiln and removes the directory with everything in it */
void oc_cleanup(struct kproc *kp, const char *dir);

/* the whole of a small file (malloc'd, "" when absent) */
char *oc_slurp(const char *path);

/* what a non-blocking fd holds now (malloc'd, NUL-terminated) */
char *oc_drain(int fd);

#endif
