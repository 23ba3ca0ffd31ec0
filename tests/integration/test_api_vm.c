// SPDX-License-Identifier: Apache-2.0
/*
 * The API acting on a running VM: PUT /cpu-config reaching the guest's
 * CPUID (and a bad MSR refused at InstanceStart), SendCtrlAltDel arriving
 * as keyboard scancodes, FlushMetrics writing what happened, the pause /
 * resume rules while the guest runs, and device ids as long as the API
 * takes them.
 */
#include "api_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(api_vm, .init = api_test_init, .fini = api_test_cleanup, .timeout = 120);

static void start_instance(void)
{
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
}

Test(api_vm, cpu_config_modifies_the_guests_cpuid)
{
	start_kiln(&kp);
	configure_hello("cpuid=0x40000000");
	/* KVM's signature leaf: ebx "KVMK" becomes "KKKK" (0x4b4b4b4b) */
	call_ok("PUT", "/cpu-config",
	        "{\"cpuid_modifiers\": [{\"leaf\": \"0x40000000\", \"subleaf\": \"0x0\", "
	        "\"flags\": 0, \"modifiers\": [{\"register\": \"ebx\", "
	        "\"bitmap\": \"0b01001011010010110100101101001011\"}]}]}");
	start_instance();
	cr_assert(kh_wait_for(&kp, "cpuid 0x40000000: 40000001 4b4b4b4b", 30000),
	          "the guest did not see the modified leaf:\n%s", kp.out);
}

Test(api_vm, cpu_config_with_an_unknown_msr_is_refused_at_start)
{
	start_kiln(&kp);
	configure_hello("");
	call_ok("PUT", "/cpu-config",
	        "{\"msr_modifiers\": [{\"addr\": \"0xdeadbeef\", \"bitmap\": "
	        "\"0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1\"}]}");
	call_fault("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, "0xdeadbeef");
	cr_assert_str_eq(state(), "Not started");
}

Test(api_vm, send_ctrl_alt_del_reaches_the_guest_keyboard)
{
	start_kiln(&kp);
	configure_hello("kbd=20000");
	start_instance();
	cr_assert(kh_wait_for(&kp, "kbd: waiting", 30000), "guest output:\n%s", kp.out);
	call_ok("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	/* set-1 make codes: Ctrl 1d, Alt 38, Del e0 53; then the breaks */
	cr_assert(kh_wait_for(&kp, "kbd: 1d 38 e0 53", 30000), "guest output:\n%s", kp.out);
}

Test(api_vm, flush_metrics_reports_requests_exits_and_latencies)
{
	tmp[0] = kh_write_temp("", ".metrics");
	start_kiln(&kp);
	char *body = kh_fmt("{\"metrics_path\": \"%s\"}", tmp[0]);
	call_ok("PUT", "/metrics", body);
	free(body);
	call_fault("PUT", "/metrics", "{\"metrics_path\": \"/tmp/x\"}", 400, "Reinitialization");
	configure_hello("sleep=5000");
	start_instance();
	cr_assert(kh_wait_for(&kp, "sleeping", 30000), "guest output:\n%s", kp.out);
	call_ok("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");

	json_error_t err;
	json_t *m = json_load_file(tmp[0], JSON_DISABLE_EOF_CHECK, &err);
	cr_assert(m, "metrics file: %s", err.text);
	json_t *starts =
	        json_object_get(json_object_get(m, "api_requests"), "PUT /actions InstanceStart");
	cr_expect_eq(json_integer_value(json_object_get(starts, "count")), 1);
	cr_expect_eq(json_integer_value(json_object_get(starts, "fails")), 0);
	json_t *vcpu = json_object_get(m, "vcpu");
	cr_expect_gt(json_integer_value(json_object_get(vcpu, "exit_io")), 10);
	cr_expect_gt(json_integer_value(json_object_get(json_object_get(m, "uart"), "tx_bytes")),
	             50);
	cr_expect_gt(
	        json_integer_value(json_object_get(json_object_get(m, "latencies_us"), "boot")), 0);
	json_decref(m);
}

Test(api_vm, pause_and_resume_rules_while_running)
{
	start_kiln(&kp);
	configure_hello("sleep=5000");
	start_instance();
	cr_assert(kh_wait_for(&kp, "sleeping", 30000), "guest output:\n%s", kp.out);
	/* idempotent both ways, as Firecracker's vCPU state machine answers */
	call_ok("PATCH", "/vm", "{\"state\": \"Resumed\"}");
	cr_assert_str_eq(state(), "Running");
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}");
	cr_assert_str_eq(state(), "Paused");
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}");
	cr_assert_str_eq(state(), "Paused");
	call_ok("PATCH", "/vm", "{\"state\": \"Resumed\"}");
	cr_assert_str_eq(state(), "Running");
	cr_assert(kh_wait_for(&kp, "bye", 60000), "guest output:\n%s", kp.out);
}

Test(api_vm, patch_machine_config_checks_the_merged_result)
{
	start_kiln(&kp);
	configure_hello("");
	call_ok("PATCH", "/machine-config", "{\"vcpu_count\": 3}");
	call_fault("PATCH", "/machine-config", "{\"smt\": true}", 400, "even number");
	json_t *m = call("GET", "/machine-config", NULL, 200);
	cr_expect_eq(json_integer_value(json_object_get(m, "vcpu_count")), 3);
	cr_expect(json_is_false(json_object_get(m, "smt")), "a refused PATCH changes nothing");
	json_decref(m);
	/* an even count with smt: taken, and the VM starts (two threads per core) */
	call_ok("PATCH", "/machine-config", "{\"vcpu_count\": 2, \"smt\": true}");
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	cr_assert(kh_wait_for(&kp, "cpus: 2", 30000), "guest output:\n%s", kp.out);
}

Test(api_vm, drives_and_interfaces_follow_the_config_file_rules)
{
	start_kiln(&kp);
	tmp[0] = kh_write_temp("", ".img");
	char *body;
	/* a data drive first, then the root drive: the root one becomes the first (vda) */
	body = kh_fmt("{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": "
	              "false, \"is_read_only\": false}",
	              tmp[0]);
	call_ok("PUT", "/drives/data", body);
	free(body);
	body = kh_fmt("{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": "
	              "true, \"is_read_only\": true}",
	              tmp[0]);
	call_ok("PUT", "/drives/rootfs", body);
	free(body);
	body = kh_fmt("{\"drive_id\": \"other\", \"path_on_host\": \"%s\", \"is_root_device\": "
	              "true, \"is_read_only\": true}",
	              tmp[0]);
	call_fault("PUT", "/drives/other", body, 400, "A root block device already exists!");
	free(body);
	json_t *c = call("GET", "/vm/config", NULL, 200);
	json_t *drives = json_object_get(c, "drives");
	cr_expect_eq(json_array_size(drives), 2);
	cr_expect_str_eq(json_string_value(json_object_get(json_array_get(drives, 0), "drive_id")),
	                 "rootfs");
	json_decref(c);

	call_ok("PUT", "/network-interfaces/eth0",
	        "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tapa\", \"guest_mac\": "
	        "\"06:00:00:00:00:01\"}");
	call_fault("PUT", "/network-interfaces/eth1",
	           "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tapb\", \"guest_mac\": "
	           "\"06:00:00:00:00:01\"}",
	           400, "already in use");
	call_fault("PUT", "/network-interfaces/eth1",
	           "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tapa\"}", 400, "already in use");
	/* replacing eth0 itself with its own MAC and tap is fine */
	call_ok("PUT", "/network-interfaces/eth0",
	        "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tapa\", \"guest_mac\": "
	        "\"06:00:00:00:00:01\"}");
}

/*
 * Issue 9: ids of up to 64 characters pass the API (Firecracker's rule),
 * and the devices take them too: InstanceStart does not refuse them.
 */
Test(api_vm, ids_the_api_takes_start)
{
	static const char id[] = "a_drive_id_of_64_characters_0123456789_0123456789_0123456789_012";
	start_kiln(&kp);
	configure_hello("virtio=1");
	tmp[0] = kh_write_temp("", ".img");
	char *body = kh_fmt("{\"drive_id\": \"%s0\", \"path_on_host\": \"%s\", "
	                    "\"is_root_device\": false, \"is_read_only\": true}",
	                    id, tmp[0]);
	char *path = kh_fmt("/drives/%s0", id);
	call_fault("PUT", path, body, 400, "64");
	free(path);
	free(body);
	body = kh_fmt("{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", \"is_root_device\": "
	              "false, \"is_read_only\": true}",
	              id, tmp[0]);
	path = kh_fmt("/drives/%s", id);
	call_ok("PUT", path, body);
	free(path);
	free(body);
	start_instance();
	cr_assert(kh_wait_for(&kp, "bye", 30000), "guest output:\n%s", kp.out);
	cr_assert(strstr(kp.out, "virtio: "), "the guest saw no drive:\n%s", kp.out);
}
