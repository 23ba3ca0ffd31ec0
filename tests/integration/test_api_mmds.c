// SPDX-License-Identifier: Apache-2.0
/*
 * The MMDS endpoints of the real daemon before the boot: PUT, PATCH and
 * GET /mmds (merge patch, the 413 of the size limit, --mmds-size-limit and
 * its default, the --http-api-max-payload-size), PUT /mmds/config (the
 * interface, address and version rules) and GET /vm/config's mmds-config,
 * --metadata FILE. Statuses and messages as Firecracker's.
 */
#include "api_test.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(api_mmds, .init = api_test_init, .fini = api_test_cleanup, .timeout = 60);

/* GET /mmds as compact sorted text (malloc'd) */
static char *get_mmds(void)
{
	struct ac_resp r;
	cr_assert_eq(ac_request(sock, "GET", "/mmds", NULL, &r), 200);
	json_t *j = json_loads(r.body, JSON_DECODE_ANY, NULL);
	cr_assert_not_null(j, "%s", r.body);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(j);
	ac_resp_free(&r);
	return s;
}

static void expect_mmds(const char *want)
{
	char *s = get_mmds();
	cr_expect_str_eq(s, want);
	free(s);
}

Test(api_mmds, put_patch_get)
{
	start_kiln(&kp);
	expect_mmds("{}");
	call_fault("PATCH", "/mmds", "{\"a\": 1}", 400,
	           "MMDS error: The MMDS data store is not initialized.");
	call_ok("PUT", "/mmds", "{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-1\", \"x\": 1}}}");
	expect_mmds("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"x\":1}}}");
	call_ok("PATCH", "/mmds",
	        "{\"latest\": {\"meta-data\": {\"x\": null, \"y\": [1]}}, \"z\": \"s\"}");
	expect_mmds("{\"latest\":{\"meta-data\":{\"ami-id\":\"ami-1\",\"y\":[1]}},\"z\":\"s\"}");
	/* any JSON value is a store, as serde's Value */
	call_ok("PUT", "/mmds", "\"text\"");
	expect_mmds("\"text\"");
	call_fault("PUT", "/mmds", "{\"a\": ", 400, "deserializing the json");
	call_fault("PUT", "/mmds", NULL, 400, "Empty PUT request.");
	call_fault("GET", "/mmds/config", NULL, 400,
	           "Invalid request method and/or path: GET mmds.");
	call_fault("DELETE", "/mmds", NULL, 400,
	           "Invalid request method and/or path: DELETE mmds.");
}

Test(api_mmds, size_limit_is_413)
{
	static const char *const args[] = {"--mmds-size-limit", "20", NULL};
	start_kiln_args(&kp, args);
	call_ok("PUT", "/mmds", "{\"a\": \"0123456789ab\"}"); /* 20 bytes compact */
	call_fault("PUT", "/mmds", "{\"a\": \"0123456789abc\"}", 413,
	           "MMDS limit exceeded error: The MMDS patch request doesn't fit.");
	call_fault("PATCH", "/mmds", "{\"b\": 1}", 413, "MMDS limit exceeded error");
	expect_mmds("{\"a\":\"0123456789ab\"}");
}

Test(api_mmds, default_limit_is_the_payload_limit)
{
	static const char *const args[] = {"--http-api-max-payload-size", "4096", NULL};
	char body[3000];
	start_kiln_args(&kp, args);
	/* a body the API takes, but three patches of it do not fit in 4096 bytes */
	memset(body, 'x', sizeof(body));
	memcpy(body, "{\"a\": \"", 7);
	strcpy(body + 1500, "\"}");
	call_ok("PUT", "/mmds", body);
	body[2] = 'b';
	call_ok("PATCH", "/mmds", body);
	body[2] = 'c';
	call_fault("PATCH", "/mmds", body, 413, "doesn't fit");
}

/* kiln with `flag value` exits with `code` before serving */
static void expect_exit(const char *flag, const char *value, int code, const char *msg)
{
	const char *argv[] = {"kiln", "--api-sock", sock, flag, value, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	cr_expect_eq(kh_wait_exit(&kp, 5000), code, "%s", kp.out);
	cr_expect(kp.out && strstr(kp.out, msg), "%s", kp.out);
}

Test(api_mmds, bad_flags)
{
	expect_exit("--mmds-size-limit", "0", 153, "--mmds-size-limit must be");
}

Test(api_mmds, config_rules_and_vm_config)
{
	start_kiln(&kp);
	call_fault("PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"]}", 400,
	           "MMDS config error: mmds-config.network_interfaces: The list of network "
	           "interface IDs provided contains at least one ID that does not correspond to "
	           "any existing network interface.");
	call_ok("PUT", "/network-interfaces/eth0",
	        "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tapm0\"}");
	call_ok("PUT", "/network-interfaces/eth1",
	        "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tapm1\"}");
	call_fault("PUT", "/mmds/config", "{\"network_interfaces\": []}", 400, "is empty");
	call_fault("PUT", "/mmds/config", "{}", 400,
	           "missing required field \"network_interfaces\"");
	call_fault("PUT", "/mmds/config",
	           "{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": \"169.254.255.1\"}", 400,
	           "The MMDS IPv4 address is not link local.");
	call_fault("PUT", "/mmds/config",
	           "{\"network_interfaces\": [\"eth0\"], \"version\": \"V9\"}", 400, "version");
	json_t *j = call("GET", "/vm/config", NULL, 200);
	cr_expect(json_is_null(json_object_get(j, "mmds-config")));
	json_decref(j);

	call_ok("PUT", "/mmds/config",
	        "{\"network_interfaces\": [\"eth1\", \"eth0\"], \"version\": \"V2\","
	        " \"ipv4_address\": \"169.254.170.2\", \"imds_compat\": true}");
	j = call("GET", "/vm/config", NULL, 200);
	char *s = json_dumps(json_object_get(j, "mmds-config"), JSON_COMPACT | JSON_SORT_KEYS);
	cr_expect_str_eq(s, "{\"imds_compat\":true,\"ipv4_address\":\"169.254.170.2\","
	                    "\"network_interfaces\":[\"eth0\",\"eth1\"],\"version\":\"V2\"}");
	free(s);
	json_decref(j);
	/* the config made the store: GET answers it */
	expect_mmds("{}");
}

Test(api_mmds, metadata_file)
{
	tmp[0] = kh_write_temp("{\"latest\": {\"user-data\": \"hello\"}}", ".json");
	const char *const args[] = {"--metadata", tmp[0], NULL};
	start_kiln_args(&kp, args);
	expect_mmds("{\"latest\":{\"user-data\":\"hello\"}}");
	call_ok("PATCH", "/mmds", "{\"latest\": {\"more\": \"x\"}}");
	expect_mmds("{\"latest\":{\"more\":\"x\",\"user-data\":\"hello\"}}");
}

Test(api_mmds, metadata_file_refused)
{
	tmp[0] = kh_write_temp("{\"latest\": ", ".json");
	expect_exit("--metadata", tmp[0], 152, "metadata is not valid JSON");
	free(tmp[0]);
	tmp[0] = kh_write_temp("[\"more than 10 bytes\"]", ".json");
	kh_kill(&kp);
	const char *argv[] = {"kiln", "--api-sock", sock,   "--mmds-size-limit",
	                      "10",   "--metadata", tmp[0], NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	cr_expect_eq(kh_wait_exit(&kp, 5000), 152, "%s", kp.out);
	cr_expect(kp.out && strstr(kp.out, "Populating MMDS from file failed"), "%s", kp.out);
}

/* a booted VM: the hello guest, 1 vCPU, 64 MiB (a test bed with KVM) */
static void boot_hello(void)
{
	/* sleep: the guest stays up while the test calls the API after the boot */
	char *body = kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"" KH_GUEST_ARGS
	                    " sleep=30000\"}",
	                    kh_guest("hello"));
	call_ok("PUT", "/boot-source", body);
	free(body);
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
}

Test(api_mmds, after_the_boot)
{
	/* a store made before the boot stays usable after it */
	start_kiln(&kp);
	call_ok("PUT", "/mmds", "{\"a\": 1}");
	boot_hello();
	call_ok("PATCH", "/mmds", "{\"b\": 2}");
	expect_mmds("{\"a\":1,\"b\":2}");
	call_ok("PUT", "/mmds", "{\"c\": 3}");
	expect_mmds("{\"c\":3}");
	call_fault("PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"]}", 400, POST_BOOT);
	kh_kill(&kp);
	unlink(sock);

	/* none made before: Firecracker has no store to give after the boot */
	start_kiln(&kp);
	boot_hello();
	call_fault("GET", "/mmds", NULL, 400,
	           "MMDS error: The MMDS data store is not initialized.");
	call_fault("PUT", "/mmds", "{}", 400, "not initialized");
}
