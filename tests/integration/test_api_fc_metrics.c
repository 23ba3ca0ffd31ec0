// SPDX-License-Identifier: Apache-2.0
/*
 * The metrics line of the real daemon against Firecracker's
 * (src/vmm/src/logger/metrics.rs): its groups and names with per-line
 * deltas, emit_id and properties, and the serial rate limiter's
 * uart.rate_limiter_dropped_bytes. With KILN_API_LOG set, every exchange
 * is logged for scripts/validate-openapi.py.
 */
#include "api_test.h"
#include "common/common.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(api_fc_metrics, .init = api_test_init, .fini = api_test_cleanup, .timeout = 120);

/*
 * The metrics line has Firecracker's groups and names (metrics.rs), with
 * Firecracker's per-line deltas: two flushes apart, the request counts of
 * the first line are not counted again in the second.
 */
Test(api_fc_metrics, metrics_carry_firecrackers_groups_and_deltas)
{
	static const char *const groups[] = {"api_server",
	                                     "get_api_requests",
	                                     "put_api_requests",
	                                     "patch_api_requests",
	                                     "deprecated_api",
	                                     "latencies_us",
	                                     "logger",
	                                     "seccomp",
	                                     "vcpu",
	                                     "uart",
	                                     "block",
	                                     "block_d0",
	                                     "net"};
	tmp[0] = kh_write_temp("", ".metrics");
	tmp[1] = kh_write_temp("", ".img");
	cr_assert_eq(truncate(tmp[1], 1 << 20), 0);
	start_kiln(&kp);
	char *body = kh_fmt("{\"metrics_path\": \"%s\"}", tmp[0]);
	call_ok("PUT", "/metrics", body);
	free(body);
	put_drive_d0(tmp[1], "");
	call_ok("PUT", "/machine-config",
	        "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": \"None\"}");
	boot_hello_args("sleep=30000", "sleeping"); /* boot-source, machine-config, InstanceStart */
	json_decref(call("GET", "/", NULL, 200));
	json_decref(call("GET", "/", NULL, 200));
	json_decref(call("GET", "/version", NULL, 200));
	call_fault("PUT", "/boot-source", "{}", 400, "kernel_image_path");
	call_ok("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");

	json_t *m = last_metrics_line(tmp[0]);
	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		cr_assert(json_is_object(json_object_get(m, groups[i])), "no \"%s\" group",
		          groups[i]);
	cr_assert_eq(metric(m, "get_api_requests", "instance_info_count"), 2);
	cr_assert_eq(metric(m, "get_api_requests", "vmm_version_count"), 1);
	cr_assert_eq(metric(m, "put_api_requests", "boot_source_count"), 2);
	cr_assert_eq(metric(m, "put_api_requests", "boot_source_fails"), 1);
	cr_assert_eq(metric(m, "put_api_requests", "machine_cfg_count"), 2);
	cr_assert_eq(metric(m, "put_api_requests", "drive_count"), 1);
	cr_assert_eq(metric(m, "put_api_requests", "metrics_count"), 1);
	cr_assert_eq(metric(m, "put_api_requests", "actions_count"), 1); /* InstanceStart */
	cr_assert_eq(metric(m, "deprecated_api", "deprecated_http_api_calls"), 1);
	cr_assert_gt(metric(m, "vcpu", "exit_io"), 10);
	cr_assert_eq(metric(m, "vcpu", "failures"), 0);
	cr_assert_gt(metric(m, "uart", "write_count"), 50);
	cr_assert_eq(metric(m, "block_d0", "read_count"), metric(m, "block", "read_count"));
	cr_assert_gt(metric(m, "api_server", "process_startup_time_us"), 0);
	cr_assert_eq(metric(m, "seccomp", "num_faults"), 0);
	cr_assert_geq(metric(m, "latencies_us", "pause_vm"), 0);
	/* kiln's own totals beside them */
	cr_assert(json_is_object(json_object_get(m, "api_requests")));
	cr_assert(json_is_object(json_object_get(m, "devices")));
	json_decref(m);

	json_decref(call("GET", "/", NULL, 200));
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}");
	call_ok("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	m = last_metrics_line(tmp[0]);
	cr_assert_eq(metric(m, "get_api_requests", "instance_info_count"), 1);
	cr_assert_eq(metric(m, "put_api_requests", "boot_source_count"), 0);
	cr_assert_eq(metric(m, "put_api_requests", "actions_count"), 1); /* the first flush */
	cr_assert_eq(metric(m, "deprecated_api", "deprecated_http_api_calls"), 0);
	cr_assert_gt(metric(m, "latencies_us", "pause_vm"), 0);
	cr_assert_eq(metric(m, "latencies_us", "vmm_pause_vm"),
	             metric(m, "latencies_us", "pause_vm"));
	/* kiln's totals keep counting from the start */
	json_t *gets = json_object_get(json_object_get(m, "api_requests"), "GET /");
	cr_assert_geq(json_integer_value(json_object_get(gets, "count")), 3);
	json_decref(m);

	/* and a last line when kiln stops, as Firecracker writes one at Vmm::stop */
	kill(kp.pid, SIGTERM);
	cr_assert_eq(kh_wait_exit(&kp, 10000), 0, "%s", kp.out);
	char *text = slurp(tmp[0]);
	int lines = 0;
	for (char *nl = strchr(text, '\n'); nl; nl = strchr(nl + 1, '\n'))
		lines++;
	cr_assert_eq(lines, 3, "%s", text);
	free(text);
	m = last_metrics_line(tmp[0]);
	cr_assert_eq(metric(m, "put_api_requests", "actions_count"), 1); /* the second flush */
	json_decref(m);
}

/* Firecracker's Metrics.emit_id and properties: every line carries "id" and "properties" */
Test(api_fc_metrics, metrics_emit_id_and_properties)
{
	tmp[0] = kh_write_temp("", ".metrics");
	start_kiln(&kp);
	char *body = kh_fmt("{\"metrics_path\": \"%s\", \"properties\": {\"n\": 1}}", tmp[0]);
	call_fault("PUT", "/metrics", body, 400, "properties.n must be a string");
	free(body);
	call_fault("PUT", "/metrics", "{\"metrics_path\": \"/tmp/x\", \"emit_id\": \"yes\"}", 400,
	           "emit_id");
	body = kh_fmt("{\"metrics_path\": \"%s\", \"emit_id\": true, \"properties\": "
	              "{\"customer_id\": \"1234\", \"zone\": \"a\"}}",
	              tmp[0]);
	call_ok("PUT", "/metrics", body);
	free(body);
	json_t *cfg = call("GET", "/vm/config", NULL, 200), *mc = json_object_get(cfg, "metrics");
	cr_assert(json_is_true(json_object_get(mc, "emit_id")));
	cr_assert_str_eq(
	        json_string_value(json_object_get(json_object_get(mc, "properties"), "zone")), "a");
	json_decref(cfg);
	boot_hello_args("sleep=30000", "sleeping");
	call_ok("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	json_t *m = last_metrics_line(tmp[0]);
	cr_assert_str_eq(json_string_value(json_object_get(m, "id")), "api_test");
	json_t *props = json_object_get(m, "properties");
	cr_assert_str_eq(json_string_value(json_object_get(props, "customer_id")), "1234");
	cr_assert_eq(json_object_size(props), 2);
	json_decref(m);
}

/* the length of a file, -1 when absent */
static long file_len(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = -1;
	if (f && fseek(f, 0, SEEK_END) == 0)
		n = ftell(f);
	if (f)
		fclose(f);
	return n;
}

/*
 * PUT /serial's rate_limiter (Firecracker's TokenBucket, in bytes): the
 * guest's output past the bucket is dropped and counted in
 * uart.rate_limiter_dropped_bytes. 100 bytes per 1000 s and a burst of
 * 20: the hello guest's few hundred bytes leave 120 (and one more for
 * every 10 s it takes, under an emulated CPU) in the file.
 */
Test(api_fc_metrics, serial_rate_limiter_drops_what_passes_the_bucket)
{
	tmp[0] = kh_write_temp("", ".serial");
	tmp[1] = kh_write_temp("", ".metrics");
	start_kiln(&kp);
	char *body = kh_fmt("{\"serial_out_path\": \"%s\", \"rate_limiter\": {\"size\": 100, "
	                    "\"one_time_burst\": 20, \"refill_time\": 1000000}}",
	                    tmp[0]);
	call_ok("PUT", "/serial", body);
	free(body);
	body = kh_fmt("{\"metrics_path\": \"%s\"}", tmp[1]);
	call_ok("PUT", "/metrics", body);
	free(body);
	boot_hello_args("sleep=30000", NULL);
	for (int i = 0; i < kh_scaled_ms(3000) / 10 && file_len(tmp[0]) < 120; i++)
		usleep(10000);
	usleep(200000);
	call_ok("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	long n = file_len(tmp[0]);
	cr_assert(n >= 120 && n <= 125, "%ld bytes in the serial file", n);
	json_t *m = last_metrics_line(tmp[1]);
	json_int_t dropped = metric(m, "uart", "rate_limiter_dropped_bytes");
	cr_assert_gt(dropped, 50, "dropped %lld", (long long)dropped);
	cr_assert_eq(metric(m, "uart", "write_count"), n);
	json_decref(m);
}
