// SPDX-License-Identifier: Apache-2.0
/*
 * The HTTP API of the real daemon: `kiln --api-sock PATH`, driven over the
 * unix socket with api_client. Bad input (unknown paths and methods, malformed JSON,
 * unknown fields, a 10 MiB body), clients that send half a request and
 * leave or stay, 200 concurrent clients, the socket file rules, every
 * resource configured and read back, the metrics of the API, and the VM
 * state rules before and after InstanceStart. With KILN_API_LOG set, every
 * exchange is logged for scripts/validate-openapi.py.
 */
#include "api_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

TestSuite(api_http, .init = api_test_init, .fini = api_test_cleanup, .timeout = 120);

Test(api_http, instance_info_version_and_config)
{
	start_kiln(&kp);
	json_t *j = call("GET", "/", NULL, 200);
	cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "api_test");
	cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "Not started");
	cr_assert_str_eq(json_string_value(json_object_get(j, "app_name")), "kiln");
	json_decref(j);
	json_decref(call("GET", "/version", NULL, 200));
	j = call("GET", "/machine-config", NULL, 200);
	cr_assert_eq(json_integer_value(json_object_get(j, "vcpu_count")), 1);
	cr_assert_eq(json_integer_value(json_object_get(j, "mem_size_mib")), 128);
	json_decref(j);
	json_decref(call("GET", "/vm/config", NULL, 200));
}

/* as Firecracker's parsed_request.rs: 400 and the method and first path segment, no Allow */
Test(api_http, unknown_paths_and_wrong_methods)
{
	struct ac_resp r;
	char allow[32];

	start_kiln(&kp);
	call_fault("GET", "/hotplug/memory", NULL, 400,
	           "Invalid request method and/or path: GET hotplug.");
	call_fault("GET", "/snapshot/create", NULL, 400,
	           "Invalid request method and/or path: GET snapshot.");
	call_fault("PUT", "/pmem/pmem0", "{\"id\": \"pmem0\"}", 400,
	           "Invalid request method and/or path: PUT pmem.");
	call_fault("PATCH", "/serial", "{}", 400,
	           "Invalid request method and/or path: PATCH serial.");
	call_fault("DELETE", "/", NULL, 400, "Invalid request method and/or path: DELETE .");
	call_fault("PUT", "/nope", NULL, 400, "Empty PUT request.");
	cr_assert_eq(ac_request(sock, "PATCH", "/boot-source", "{}", &r), 400);
	cr_assert_not(ac_header(&r, "Allow", allow, sizeof(allow)));
	ac_resp_free(&r);
}

Test(api_http, malformed_json_unknown_fields_and_ids)
{
	start_kiln(&kp);
	call_fault("PUT", "/boot-source", "{\"kernel_image_path\": ", 400,
	           "deserializing the json");
	call_fault("PUT", "/machine-config",
	           "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"foo\": 1}", 400,
	           "unknown field \"foo\"");
	call_fault("PUT", "/machine-config", "{\"vcpu_count\": \"2\", \"mem_size_mib\": 64}", 400,
	           "vcpu_count must be an integer");
	call_fault("PUT", "/drives/a",
	           "{\"drive_id\": \"b\", \"path_on_host\": \"/x\", "
	           "\"is_root_device\": false}",
	           400, "The id from the path does not match the id from the body!");
	call_fault("PUT", "/drives/a-b", "{}", 400, "alphanumeric");
	call_fault("PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400, "action_type");
	call_fault("PUT", "/actions", NULL, 400, "Empty PUT request.");
	cr_assert_str_eq(state(), "Not started");
}

Test(api_http, body_of_10_mib_is_refused_without_hanging)
{
	static const char head[] = "PUT /boot-source HTTP/1.1\r\nHost: x\r\n"
	                           "Content-Length: 10485760\r\n\r\n";
	size_t big = 10u << 20;
	char *body = malloc(big);
	struct ac_resp r;
	int fd;

	start_kiln(&kp);
	memset(body, 'a', big);
	fd = ac_connect(sock);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ac_send(fd, head, strlen(head)), 0);
	(void)ac_send(fd, body, big); /* fails with EPIPE once kiln has answered and closed */
	cr_assert_eq(ac_read(fd, &r, 10000), 0);
	close(fd);
	ac_log("PUT", "/boot-source", NULL, true, &r);
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(r.body, "Request payload with size 10485760 is larger than the limit of "
	                         "51200 allowed by server."),
	          "%s", r.body);
	ac_resp_free(&r);
	free(body);
	cr_assert_str_eq(state(), "Not started"); /* and it still serves */
}

Test(api_http, half_requests_neither_block_nor_crash)
{
	static const char half[] = "PUT /machine-config HTTP/1.1\r\nHost: x\r\n"
	                           "Content-Length: 60\r\n\r\n{\"vcpu_count\": 1,";
	int stay, leave;

	start_kiln(&kp);
	leave = ac_connect(sock);
	cr_assert_eq(ac_send(leave, half, strlen(half)), 0);
	close(leave); /* disconnects mid-request */
	stay = ac_connect(sock);
	cr_assert_eq(ac_send(stay, "GET / HTTP/1.1\r\nHost:", 21), 0); /* and stays */
	for (int i = 0; i < 20; i++)
		cr_assert_str_eq(state(), "Not started");
	close(stay);
	cr_assert_eq(kh_wait_exit(&kp, 0), -1, "kiln died:\n%s", kp.out);
}

struct client {
	pthread_t t;
	int status;
};

static void *get_root(void *arg)
{
	struct client *c = arg;
	struct ac_resp r;
	c->status = ac_request(sock, "GET", "/", NULL, &r);
	ac_resp_free(&r);
	return NULL;
}

Test(api_http, two_hundred_concurrent_clients)
{
	static struct client c[200];

	start_kiln(&kp);
	for (int i = 0; i < 200; i++)
		cr_assert_eq(pthread_create(&c[i].t, NULL, get_root, &c[i]), 0);
	for (int i = 0; i < 200; i++) {
		pthread_join(c[i].t, NULL);
		cr_assert_eq(c[i].status, 200, "client %d got %d", i, c[i].status);
	}
}

/* ------------------------------------------------------ the socket file */

Test(api_http, stale_socket_file_is_replaced)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(sa.sun_path, sock);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd); /* the file stays, nobody listens: a killed kiln's leftover */
	start_kiln(&kp);
	cr_assert_str_eq(state(), "Not started");
}

Test(api_http, live_socket_and_regular_file_are_refused)
{
	const char *argv[] = {"kiln", "--api-sock", sock, NULL};
	struct stat st;
	int fd;

	start_kiln(&kp);
	cr_assert_eq(kh_spawn(&kp2, argv), 0);
	cr_assert_neq(kh_wait_exit(&kp2, 10000), 0, "a second kiln on a live socket must fail");
	cr_assert(strstr(kp2.out, "is in use by another process"), "%s", kp2.out);
	cr_assert_str_eq(state(), "Not started", "the first kiln must keep serving");
	kh_kill(&kp);
	kh_kill(&kp2);

	unlink(sock);
	fd = open(sock, O_CREAT | O_WRONLY, 0600);
	close(fd);
	cr_assert_eq(kh_spawn(&kp2, argv), 0);
	cr_assert_neq(kh_wait_exit(&kp2, 10000), 0);
	cr_assert(strstr(kp2.out, "is not a socket"), "%s", kp2.out);
	cr_assert(stat(sock, &st) == 0 && S_ISREG(st.st_mode), "the file must be left alone");
}

Test(api_http, socket_file_removed_on_exit)
{
	start_kiln(&kp);
	kill(kp.pid, SIGTERM);
	cr_assert_geq(kh_wait_exit(&kp, 10000), 0, "kiln did not exit on SIGTERM");
	cr_assert_neq(access(sock, F_OK), 0, "the socket file must be removed on exit");
}

/* ----------------------------------------------------- configuration */

Test(api_http, every_resource_configured_and_read_back)
{
	char *body;
	json_t *cfg;

	start_kiln(&kp);
	tmp[0] = kh_write_temp("not a real disk\n", ".img");
	tmp[1] = kh_write_temp("", ".log");
	tmp[2] = kh_write_temp("", ".metrics");
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}");
	call_ok("PATCH", "/machine-config", "{\"mem_size_mib\": 512}");
	body = kh_fmt(
	        "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	        "\"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"refill_time\": 100}}}",
	        tmp[0]);
	call_ok("PUT", "/drives/rootfs", body);
	free(body);
	call_ok("PUT", "/network-interfaces/eth0",
	        "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": "
	        "\"06:00:ac:10:00:02\"}");
	call_ok("PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/tmp/kiln-it-v.sock\"}");
	call_ok("PUT", "/entropy", "{}");
	call_ok("PUT", "/cpu-config",
	        "{\"cpuid_modifiers\": [{\"leaf\": \"0x1\", \"subleaf\": \"0x0\", \"flags\": 0, "
	        "\"modifiers\": [{\"register\": \"ecx\", \"bitmap\": "
	        "\"0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1\"}]}], \"kvm_capabilities\": []}");
	body = kh_fmt("{\"log_path\": \"%s\", \"level\": \"Info\", \"show_level\": true}", tmp[1]);
	call_ok("PUT", "/logger", body);
	free(body);
	body = kh_fmt("{\"metrics_path\": \"%s\"}", tmp[2]);
	call_ok("PUT", "/metrics", body);
	call_fault("PUT", "/metrics", body, 400, "Reinitialization of metrics not allowed.");
	free(body);

	cfg = call("GET", "/vm/config", NULL, 200);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(cfg, "machine-config"),
	                                                "mem_size_mib")),
	             512);
	cr_assert_str_eq(json_string_value(json_object_get(
	                         json_array_get(json_object_get(cfg, "drives"), 0), "drive_id")),
	                 "rootfs");
	cr_assert_eq(json_array_size(json_object_get(cfg, "network-interfaces")), 1);
	cr_assert_eq(
	        json_integer_value(json_object_get(json_object_get(cfg, "vsock"), "guest_cid")), 3);
	cr_assert(json_is_object(json_object_get(cfg, "entropy")));
	json_decref(cfg);
}

Test(api_http, metrics_count_api_requests)
{
	char *body, *text = NULL, *last;
	size_t len;
	json_t *m, *reqs;

	start_kiln(&kp);
	tmp[0] = kh_write_temp("", ".metrics");
	body = kh_fmt("{\"metrics_path\": \"%s\"}", tmp[0]);
	call_ok("PUT", "/metrics", body);
	free(body);
	cr_assert_str_eq(state(), "Not started");
	cr_assert_str_eq(state(), "Not started");
	json_decref(call("GET", "/nope", NULL, 400));
	json_decref(call("PUT", "/boot-source", "{", 400));
	boot_hello_args("sleep=3000", "sleeping"); /* FlushMetrics needs a booted VM */
	call_ok("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");

	FILE *f = fopen(tmp[0], "r");
	cr_assert(f);
	cr_assert_gt(getdelim(&text, &len, '\0', f), 0, "no metrics were written");
	fclose(f);
	last = text; /* the file holds JSON lines; take the last */
	for (char *nl = strchr(text, '\n'); nl && nl[1]; nl = strchr(nl + 1, '\n'))
		last = nl + 1;
	m = json_loads(last, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert(m, "metrics line is not JSON: %s", last);
	reqs = json_object_get(m, "api_requests");
	cr_assert(reqs, "no api_requests in %s", last);
	cr_assert_geq(json_integer_value(json_object_get(json_object_get(reqs, "GET /"), "count")),
	              2);
	cr_assert_geq(
	        json_integer_value(json_object_get(json_object_get(reqs, "errors"), "not_found")),
	        1);
	cr_assert_geq(json_integer_value(
	                      json_object_get(json_object_get(reqs, "PUT /boot-source"), "fails")),
	              1);
	json_decref(m);
	free(text);
}

/*
 * A jailer's start times (Firecracker's flags) become the api_server
 * metrics: a launch begun 2 s ago at 0 CPU us, after a parent spent 3 s of
 * CPU, reports at least 2 s and 3 s (kiln itself takes far less than 1 s).
 */
Test(api_http, startup_times_from_a_jailer)
{
	char start[32], *body, *text = NULL, *last;
	size_t len;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	uint64_t now_us = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
	snprintf(start, sizeof(start), "%llu", (unsigned long long)(now_us - 2000000));
	const char *extra[] = {"--start-time-us",      start,     "--start-time-cpu-us", "0",
	                       "--parent-cpu-time-us", "3000000", "--no-seccomp",        NULL};
	start_kiln_args(&kp, extra);
	tmp[0] = kh_write_temp("", ".metrics");
	body = kh_fmt("{\"metrics_path\": \"%s\"}", tmp[0]);
	call_ok("PUT", "/metrics", body);
	free(body);
	boot_hello_args("sleep=3000", "sleeping"); /* FlushMetrics needs a booted VM */
	call_ok("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");

	FILE *f = fopen(tmp[0], "r");
	cr_assert(f);
	cr_assert_gt(getdelim(&text, &len, '\0', f), 0, "no metrics were written");
	fclose(f);
	last = text;
	for (char *nl = strchr(text, '\n'); nl && nl[1]; nl = strchr(nl + 1, '\n'))
		last = nl + 1;
	json_t *m = json_loads(last, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert(m, "metrics line is not JSON: %s", last);
	json_t *api = json_object_get(m, "api_server");
	json_int_t wall = json_integer_value(json_object_get(api, "process_startup_time_us"));
	json_int_t cpu = json_integer_value(json_object_get(api, "process_startup_time_cpu_us"));
	cr_assert(wall >= 2000000 && wall < 60000000, "process_startup_time_us %lld: %s",
	          (long long)wall, last);
	cr_assert(cpu >= 3000000 && cpu < 60000000, "process_startup_time_cpu_us %lld: %s",
	          (long long)cpu, last);
	json_decref(m);
	free(text);
}

/* ------------------------------------------------------ state rules */

Test(api_http, state_rules_before_start)
{
	start_kiln(&kp);
	call_fault("PATCH", "/vm", "{\"state\": \"Paused\"}", 400, PRE_BOOT);
	call_fault("PATCH", "/vm", "{\"state\": \"Resumed\"}", 400, PRE_BOOT);
	call_fault("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400, PRE_BOOT);
	call_fault("PATCH", "/drives/rootfs",
	           "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/x\"}", 400, PRE_BOOT);
	call_fault("PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400, PRE_BOOT);
	/* starting without a kernel is refused and leaves the VM configurable */
	json_decref(call("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400));
	cr_assert_str_eq(state(), "Not started");
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
}

Test(api_http, state_rules_after_start)
{
	char *body;

	if (access(kh_guest("hello"), R_OK) != 0)
		cr_skip_test("the hello test guest is not built (%s)", kh_guest("hello"));
	start_kiln(&kp);
	body = kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0 "
	              "sleep=3000\"}",
	              kh_guest("hello"));
	call_ok("PUT", "/boot-source", body);
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	/* the guest sleeps 3 s before it ends: long enough to pause it */
	cr_assert(kh_wait_for(&kp, "sleeping", 30000), "guest output:\n%s", kp.out);
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}");
	cr_assert_str_eq(state(), "Paused");
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}"); /* idempotent, as Firecracker */
	cr_assert_str_eq(state(), "Paused");
	call_fault("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, POST_BOOT);
	call_fault("PUT", "/boot-source", body, 400, POST_BOOT);
	call_fault("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 400,
	           POST_BOOT);
	free(body);
	json_decref(call("GET", "/vm/config", NULL, 200)); /* still served after boot */
	call_ok("PATCH", "/vm", "{\"state\": \"Resumed\"}");
	/* hello prints "bye" and resets through the i8042: kiln stops, as Firecracker does */
	cr_assert(kh_wait_for(&kp, "bye", 60000), "the guest did not finish:\n%s", kp.out);
	cr_assert_geq(kh_wait_exit(&kp, 20000), 0, "kiln did not exit after the guest:\n%s",
	              kp.out);
	cr_assert_neq(access(sock, F_OK), 0, "the socket file must be removed on exit");
}
