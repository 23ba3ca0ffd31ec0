// SPDX-License-Identifier: Apache-2.0
/* tests/integration/api_test.c: shared steps of the API integration tests. */
#include "api_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kproc kp, kp2;
char sock[64];
char *tmp[4];

static void no_sanitizer_report(struct kproc *p)
{
	if (!p->pid)
		return;
	kh_wait_for(p, "\x01", 50); /* collect what is left of its output */
	cr_expect(!p->out || (!strstr(p->out, "Sanitizer") && !strstr(p->out, "runtime error")),
	          "kiln reported a sanitizer error:\n%s", p->out);
}

void api_test_cleanup(void)
{
	no_sanitizer_report(&kp);
	no_sanitizer_report(&kp2);
	kh_kill(&kp);
	kh_kill(&kp2);
	unlink(sock);
	for (size_t i = 0; i < sizeof(tmp) / sizeof(tmp[0]); i++) {
		if (tmp[i])
			unlink(tmp[i]);
		free(tmp[i]);
		tmp[i] = NULL;
	}
}

void api_test_init(void)
{
	snprintf(sock, sizeof(sock), "/tmp/kiln-it-api-%d.sock", getpid());
	unlink(sock);
}

/* starts kiln on `sock` and waits until the socket accepts */
void start_kiln(struct kproc *p)
{
	start_kiln_args(p, NULL);
}

void start_kiln_args(struct kproc *p, const char *const *extra)
{
	const char *argv[16] = {"kiln", "--api-sock", sock, "--id", "api_test"};
	size_t n = 5;
	for (; extra && *extra; extra++) {
		cr_assert_lt(n, sizeof(argv) / sizeof(argv[0]) - 1, "too many arguments");
		argv[n++] = *extra;
	}
	argv[n] = NULL;

	cr_assert_eq(kh_spawn(p, argv), 0);
	for (int i = 0; i < 500; i++) {
		int fd = ac_connect(sock);
		if (fd >= 0) {
			close(fd);
			return;
		}
		cr_assert_eq(kh_wait_exit(p, 10), -1, "kiln exited early:\n%s", p->out);
	}
	cr_assert_fail("kiln's API socket never accepted:\n%s", kp.out);
}

/* one request; asserts the status; returns the parsed body (or NULL) */
json_t *call(const char *method, const char *path, const char *body, int status)
{
	struct ac_resp r;
	int got = ac_request(sock, method, path, body, &r);
	json_t *j = NULL;

	if (got != status)
		kh_wait_for(&kp, "\x01", 100); /* collect kiln's output for the message */
	cr_assert_eq(got, status, "%s %s %s: status %d, wanted %d; body: %s\nkiln said:\n%s",
	             method, path, body ? body : "", got, status, r.body ? r.body : "",
	             kp.out ? kp.out : "");
	if (r.body_len)
		j = json_loads(r.body, 0, NULL);
	cr_assert(r.body_len == 0 || j, "%s %s: body is not JSON: %s", method, path, r.body);
	ac_resp_free(&r);
	return j;
}

void call_ok(const char *method, const char *path, const char *body)
{
	json_decref(call(method, path, body, 204));
}

/* expects a 4xx answer whose fault_message contains `msg` */
void call_fault(const char *method, const char *path, const char *body, int status, const char *msg)
{
	json_t *j = call(method, path, body, status);
	const char *m = json_string_value(json_object_get(j, "fault_message"));

	cr_assert(m, "%s %s: no fault_message", method, path);
	cr_assert(strstr(m, msg), "%s %s: \"%s\" lacks \"%s\"", method, path, m, msg);
	json_decref(j);
}

const char *state(void)
{
	static char buf[32];
	json_t *j = call("GET", "/", NULL, 200);
	snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(j, "state")));
	json_decref(j);
	return buf;
}

void configure_hello(const char *args)
{
	char *body =
	        kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"" KH_GUEST_ARGS " %s\"}",
	               kh_guest("hello"), args);
	call_ok("PUT", "/boot-source", body);
	free(body);
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
}

void boot_hello_args(const char *args, const char *wait_for)
{
	configure_hello(args);
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	if (wait_for)
		cr_assert(kh_wait_for(&kp, wait_for, 30000), "guest output:\n%s", kp.out);
}

/* the whole of a small file as a malloc'd string ("" when absent) */
char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	if (f) {
		size_t n = fread(buf, 1, 65535, f);
		buf[n] = '\0';
		fclose(f);
	}
	return buf;
}

/* PUT /drives/d0: `path`, read-only, not root, and the `extra` fields (", ..." or "") */
void put_drive_d0(const char *path, const char *extra)
{
	char *body = kh_fmt("{\"drive_id\": \"d0\", \"path_on_host\": \"%s\", \"is_root_device\": "
	                    "false, \"is_read_only\": true%s}",
	                    path, extra);
	call_ok("PUT", "/drives/d0", body);
	free(body);
}

/* the last line of the metrics file, parsed (asserts it is one JSON object) */
json_t *last_metrics_line(const char *path)
{
	char *text = slurp(path), *last = text;
	for (char *nl = strchr(text, '\n'); nl && nl[1]; nl = strchr(nl + 1, '\n'))
		last = nl + 1;
	json_error_t err;
	json_t *m = json_loads(last, JSON_DISABLE_EOF_CHECK, &err);
	cr_assert(json_is_object(m), "metrics line is not a JSON object (%s): %s", err.text, last);
	free(text);
	return m;
}

json_int_t metric(json_t *m, const char *group, const char *key)
{
	json_t *v = json_object_get(json_object_get(m, group), key);
	cr_assert(json_is_integer(v), "no integer %s.%s in the metrics line", group, key);
	return json_integer_value(v);
}
