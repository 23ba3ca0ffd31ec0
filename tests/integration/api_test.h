/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/integration/api_test: the steps every API integration test takes --
 * start `kiln --api-sock`, call an endpoint and assert the status, read the
 * state -- over api_client. One kiln per test (kp; kp2 for a second one),
 * on the socket path `sock`; api_test_cleanup() kills them, checks that no
 * sanitizer spoke, and removes the files named in tmp[].
 */
#ifndef KILN_TEST_API_TEST_H
#define KILN_TEST_API_TEST_H

#include "api_client.h"
#include "harness.h"

#include <jansson.h>

#define PRE_BOOT  "The requested operation is not supported before starting the microVM."
#define POST_BOOT "The requested operation is not supported after starting the microVM."

extern struct kproc kp, kp2;
extern char sock[64];
extern char *tmp[4];

/* criterion .init / .fini of the API suites */
void api_test_init(void);
void api_test_cleanup(void);

/* starts kiln on `sock` and waits until the socket accepts */
void start_kiln(struct kproc *p);
/* start_kiln with more arguments (a NULL-ended list, or NULL) */
void start_kiln_args(struct kproc *p, const char *const *extra);
/* one request; asserts the status; returns the parsed body (or NULL) */
json_t *call(const char *method, const char *path, const char *body, int status);
/* expects 204 */
void call_ok(const char *method, const char *path, const char *body);
/* expects a 4xx answer whose fault_message contains `msg` */
void call_fault(const char *method, const char *path, const char *body, int status,
                const char *msg);
/*
 * PUT /boot-source with the hello test guest and "KH_GUEST_ARGS <args>",
 * then PUT /machine-config 1 vCPU, 64 MiB (expects 204s)
 */
void configure_hello(const char *args);
/* configure_hello(args), InstanceStart, and waits up to 30 s for `wait_for` (NULL: none) */
void boot_hello_args(const char *args, const char *wait_for);
/* the whole of a small file as a malloc'd string ("" when absent; free it) */
char *slurp(const char *path);
/* PUT /drives/d0: `path`, read-only, not root, and the `extra` fields (", ..." or "") */
void put_drive_d0(const char *path, const char *extra);
/* the last line of a metrics file, parsed (asserts it is one JSON object; decref it) */
json_t *last_metrics_line(const char *path);
/* m[group][key] (asserts it is an integer) */
json_int_t metric(json_t *m, const char *group, const char *key);
/* GET / "state" (a static buffer) */
const char *state(void);

#endif
