// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_api.c: api/ without a server -- the router (every path and
 * method, Firecracker's 400s for both, ids), the body parsers of every endpoint (valid and
 * invalid bodies and their messages), the action queue, names and the
 * fault body.
 */
#include "api_rig.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

TestSuite(router, .fini = api_rig_fini);
TestSuite(parse, .fini = api_rig_fini);

#define DRIVE(id) "{\"drive_id\": \"" id "\", \"path_on_host\": \"/d\", \"is_root_device\": false}"
#define NET(id)   "{\"iface_id\": \"" id "\", \"host_dev_name\": \"tap0\"}"

Test(router, every_endpoint)
{
	expect_kind("GET", "/", NULL, API_GET_INFO);
	expect_kind("GET", "/version", NULL, API_GET_VERSION);
	expect_kind("GET", "/vm/config", NULL, API_GET_VM_CONFIG);
	expect_kind("GET", "/machine-config", NULL, API_GET_MACHINE_CONFIG);
	expect_kind("PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}",
	            API_PUT_MACHINE_CONFIG);
	expect_kind("PATCH", "/machine-config", "{\"vcpu_count\": 2}", API_PATCH_MACHINE_CONFIG);
	expect_kind("PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}", API_PUT_BOOT_SOURCE);
	expect_kind("PUT", "/cpu-config", "{}", API_PUT_CPU_CONFIG);
	expect_kind("PUT", "/drives/rootfs", DRIVE("rootfs"), API_PUT_DRIVE);
	expect_kind("PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}", API_PATCH_DRIVE);
	expect_kind("PUT", "/network-interfaces/eth0", NET("eth0"), API_PUT_NET);
	expect_kind("PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", API_PATCH_NET);
	expect_kind("PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/v.sock\"}",
	            API_PUT_VSOCK);
	expect_kind("PUT", "/entropy", "{}", API_PUT_ENTROPY);
	expect_kind("PUT", "/logger", "{\"log_path\": \"/l\", \"level\": \"debug\"}",
	            API_PUT_LOGGER);
	expect_kind("PUT", "/metrics", "{\"metrics_path\": \"/m\"}", API_PUT_METRICS);
	expect_kind("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", API_INSTANCE_START);
	expect_kind("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}",
	            API_SEND_CTRL_ALT_DEL);
	expect_kind("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", API_FLUSH_METRICS);
	expect_kind("PATCH", "/vm", "{\"state\": \"Paused\"}", API_PAUSE);
	expect_kind("PATCH", "/vm", "{\"state\": \"Resumed\"}", API_RESUME);
	expect_kind("PUT", "/snapshot/create",
	            "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}", API_SNAPSHOT_CREATE);
	expect_kind("PUT", "/snapshot/load",
	            "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}", API_SNAPSHOT_LOAD);
	/* one trailing slash is tolerated, as Firecracker's split does */
	expect_kind("GET", "/machine-config/", NULL, API_GET_MACHINE_CONFIG);
}

/* Firecracker's parsed_request.rs: 400 "Invalid request method and/or path: GET <segment>." */
Test(router, unknown_paths_are_400_as_in_firecracker)
{
	static const char *const paths[] = {"/nope",           "",
	                                    "/snapshot",       "/snapshot/x",
	                                    "/balloon/x",      "/balloon/hinting",
	                                    "/mmds/x",         "/mmds/config/x",
	                                    "/pmem/x",         "/serial/x",
	                                    "/hotplug/memory", "/drives/a/b",
	                                    "/vm/config/x",    "/machine-config//",
	                                    "/Version",        "/actions/x",
	                                    "/version?x"};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		expect("GET", paths[i], NULL, -ENOENT, "Invalid request method and/or path: GET ");
		cr_assert_eq(act.kind, API_ACTION_COUNT);
		cr_assert_eq(api_route_status(-ENOENT), 400);
	}
	/* the message names the first segment, as Firecracker's does */
	expect("PUT", "/pmem/x", "{}", -ENOENT, "Invalid request method and/or path: PUT pmem.");
	expect("GET", "/hotplug/memory", NULL, -ENOENT,
	       "Invalid request method and/or path: GET hotplug.");
	expect("PATCH", "", "{}", -ENOENT, "Invalid request method and/or path: PATCH .");
	/* a body on a GET, none on a PUT or PATCH: that mistake first, whatever the path */
	expect("GET", "/nope", "{}", -EINVAL, "GET request cannot have a body.");
	expect("PUT", "/nope", NULL, -EINVAL, "Empty PUT request.");
	expect("PATCH", "/pmem/x", NULL, -EINVAL, "Empty PATCH request.");
}

Test(router, wrong_method_is_400_as_in_firecracker)
{
	char allow[64];

	expect("PATCH", "/boot-source", "{}", -ENOTSUP,
	       "Invalid request method and/or path: PATCH boot-source.");
	expect("DELETE", "/", NULL, -ENOTSUP, "Invalid request method and/or path: DELETE .");
	expect("POST", "/drives/x", "{}", -ENOTSUP,
	       "Invalid request method and/or path: POST drives.");
	expect("GET", "/actions", NULL, -ENOTSUP,
	       "Invalid request method and/or path: GET actions.");
	expect("PUT", "/version", "{}", -ENOTSUP,
	       "Invalid request method and/or path: PUT version.");
	expect("GET", "/vm", NULL, -ENOTSUP, "Invalid request method and/or path: GET vm.");
	expect("PATCH", "/vm/config", "{}", -ENOTSUP, "PATCH vm.");
	expect("get", "/", NULL, -ENOTSUP, NULL); /* methods are case-sensitive */
	/* Firecracker's order: the missing body is named before the method */
	expect("PUT", "/version", NULL, -EINVAL, "Empty PUT request.");
	expect("GET", "/actions", "{}", -EINVAL, "GET request cannot have a body.");
	cr_assert_eq(api_route_status(-ENOTSUP), 400);
	cr_assert_str_eq(api_route_allow("/machine-config", allow, sizeof(allow)),
	                 "GET, PUT, PATCH");
	cr_assert_str_eq(api_route_allow("/network-interfaces/x", allow, sizeof(allow)),
	                 "PUT, PATCH");
	cr_assert_str_eq(api_route_allow("/nope", allow, sizeof(allow)), "");
}

Test(router, path_ids)
{
	char id64[65], path[128], body[256];

	expect("PUT", "/drives", DRIVE("a"), -EINVAL, "The ID cannot be empty.");
	expect("PUT", "/drives/", DRIVE("a"), -EINVAL, "The ID cannot be empty.");
	expect("PATCH", "/network-interfaces", "{}", -EINVAL, "The ID cannot be empty.");
	expect("PUT", "/drives/a-b", DRIVE("a"), -EINVAL,
	       "API Resource IDs can only contain alphanumeric characters and underscores.");
	expect("PUT", "/drives/a.b", DRIVE("a"), -EINVAL, "alphanumeric");
	expect("PUT", "/drives/a b", DRIVE("a"), -EINVAL, "alphanumeric");
	expect("PUT", "/drives/\xc3\xa9", DRIVE("a"), -EINVAL, "alphanumeric");
	memset(id64, 'z', 64);
	id64[64] = '\0';
	snprintf(path, sizeof(path), "/drives/%s", id64);
	snprintf(body, sizeof(body), DRIVE("%s"), id64);
	expect_kind("PUT", path, body, API_PUT_DRIVE);
	cr_assert_str_eq(act.u.drive.drive_id, id64);
	strcat(path, "z");
	expect("PUT", path, body, -EINVAL, "at most 64 characters (got 65)");
	cr_assert_eq(act.kind, API_PUT_DRIVE, "the route names the kind even when refused");
	/* the body's id must be the path's */
	expect("PUT", "/drives/a", DRIVE("b"), -EINVAL,
	       "The id from the path does not match the id from the body!");
	expect("PATCH", "/drives/a", "{\"drive_id\": \"b\"}", -EINVAL, "does not match");
	expect("PUT", "/network-interfaces/a", NET("b"), -EINVAL, "does not match");
	expect("PATCH", "/network-interfaces/a", "{\"iface_id\": \"b\"}", -EINVAL,
	       "does not match");
}

Test(router, body_presence_and_json)
{
	expect("GET", "/", "{}", -EINVAL, "GET request cannot have a body.");
	expect("PUT", "/boot-source", NULL, -EINVAL, "Empty PUT request.");
	expect("PATCH", "/vm", NULL, -EINVAL, "Empty PATCH request.");
	expect("PUT", "/boot-source", "{\"kernel_image_path\": ", -EINVAL,
	       "An error occurred when deserializing the json body of a request");
	expect("PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"} x", -EINVAL,
	       "deserializing");
	expect("PUT", "/boot-source",
	       "{\"kernel_image_path\": \"/k\", \"kernel_image_path\": \"/j\"}", -EINVAL,
	       "duplicate");
	expect("PUT", "/boot-source", "[1]", -EINVAL, "must be an object");
	expect("PUT", "/actions", "\"InstanceStart\"", -EINVAL, "must be an object");
	expect("PUT", "/actions", "{\"action_type\": \"Foo\"}", -EINVAL,
	       "action.action_type must be one of");
	cr_assert_eq(act.kind, API_ACTION_COUNT);
	/* a body with a NUL inside is not JSON */
	cr_assert_eq(api_route("PUT", "/entropy", "{}\0", 3, &act, &err), -EINVAL);
}

/* ----------------------------------------------------------- each body */

Test(parse, boot_source)
{
	expect_kind(
	        "PUT", "/boot-source",
	        "{\"kernel_image_path\": \"/k\", \"initrd_path\": \"/i\", \"boot_args\": \"a=b\"}",
	        API_PUT_BOOT_SOURCE);
	cr_assert_str_eq(act.u.boot_source.kernel_image_path, "/k");
	cr_assert_str_eq(act.u.boot_source.initrd_path, "/i");
	cr_assert_str_eq(act.u.boot_source.boot_args, "a=b");
	expect("PUT", "/boot-source", "{\"initrd_path\": \"/i\"}", -EINVAL, "kernel_image_path");
	expect("PUT", "/boot-source", "{\"kernel_image_path\": 1}", -EINVAL,
	       "kernel_image_path must be a string");
	expect("PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"x\": 1}", -EINVAL,
	       "unknown field \"x\"");
}

Test(parse, machine_config_put)
{
	expect_kind("PUT", "/machine-config",
	            "{\"vcpu_count\": 2, \"mem_size_mib\": 512, \"smt\": true, "
	            "\"track_dirty_pages\": true, \"huge_pages\": \"2M\"}",
	            API_PUT_MACHINE_CONFIG);
	cr_assert_eq(act.u.machine.vcpu_count, 2);
	cr_assert_eq(act.u.machine.mem_size_mib, 512);
	cr_assert(act.u.machine.smt && act.u.machine.track_dirty_pages);
	cr_assert_eq(act.u.machine.huge_pages, HUGE_PAGES_2M);
	expect("PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 512}", -EINVAL,
	       "vcpu_count");
	expect("PUT", "/machine-config", "{\"vcpu_count\": 1}", -EINVAL, "mem_size_mib");
}

Test(parse, machine_config_patch)
{
	struct machine_patch *p = &act.u.machine_patch;

	expect_kind("PATCH", "/machine-config", "{\"mem_size_mib\": 1024}",
	            API_PATCH_MACHINE_CONFIG);
	cr_assert(p->has_mem_size_mib && !p->has_vcpu_count && !p->has_smt);
	cr_assert_eq(p->mem_size_mib, 1024);
	expect_kind("PATCH", "/machine-config",
	            "{\"smt\": true, \"vcpu_count\": 4, \"mem_size_mib\": null}",
	            API_PATCH_MACHINE_CONFIG);
	cr_assert(p->has_smt && p->smt && p->has_vcpu_count && !p->has_mem_size_mib);
	cr_assert_eq(p->vcpu_count, 4);
	expect_kind("PATCH", "/machine-config", "{\"huge_pages\": \"2M\"}",
	            API_PATCH_MACHINE_CONFIG);
	cr_assert(p->has_huge_pages && p->huge_pages == HUGE_PAGES_2M);
	expect("PATCH", "/machine-config", "{}", -EINVAL, "Empty PATCH request.");
	expect("PATCH", "/machine-config", "{\"vcpu_count\": null}", -EINVAL, "Empty PATCH");
	expect("PATCH", "/machine-config", "{\"smt\": true, \"vcpu_count\": 3}", -EINVAL, "even");
	expect("PATCH", "/machine-config", "{\"vcpu_count\": 33}", -EINVAL, "vcpu_count");
	expect("PATCH", "/machine-config", "{\"vcpus\": 3}", -EINVAL, "unknown field \"vcpus\"");
	expect("PATCH", "/machine-config", "3", -EINVAL, "must be an object");
}

Test(parse, actions_and_vm_state)
{
	expect("PUT", "/actions", "{}", -EINVAL, "action_type");
	expect("PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"payload\": 1}", -EINVAL,
	       "unknown field \"payload\"");
	expect("PUT", "/actions", "{\"action_type\": \"instancestart\"}", -EINVAL,
	       "\"InstanceStart\", \"SendCtrlAltDel\", \"FlushMetrics\"");
	expect("PUT", "/actions", "{\"action_type\": 1}", -EINVAL, "must be a string");
	expect("PATCH", "/vm", "{\"state\": \"Running\"}", -EINVAL,
	       "vm.state must be one of \"Paused\", \"Resumed\"");
	expect("PATCH", "/vm", "{\"state\": null}", -EINVAL, "vm.state must not be null");
	expect("PATCH", "/vm", "{}", -EINVAL, "state");
}

Test(parse, drives)
{
	expect_kind("PUT", "/drives/root",
	            "{\"drive_id\": \"root\", \"path_on_host\": \"/r\", \"is_root_device\": true, "
	            "\"is_read_only\": true, \"cache_type\": \"Writeback\"}",
	            API_PUT_DRIVE);
	cr_assert(act.u.drive.is_root_device && act.u.drive.is_read_only);
	cr_assert_str_eq(act.u.drive.path_on_host, "/r");
	expect("PUT", "/drives/root", "{\"drive_id\": \"root\", \"path_on_host\": \"/r\"}", -EINVAL,
	       "is_root_device");

	expect_kind("PATCH", "/drives/root",
	            "{\"drive_id\": \"root\", \"path_on_host\": \"/new\", \"rate_limiter\": "
	            "{\"bandwidth\": {\"size\": 1000, \"refill_time\": 100}}}",
	            API_PATCH_DRIVE);
	cr_assert_str_eq(act.u.drive_patch.path_on_host, "/new");
	cr_assert(act.u.drive_patch.has_rate_limiter);
	cr_assert_eq(act.u.drive_patch.rate_limiter.bandwidth.size, 1000);
	expect_kind("PATCH", "/drives/root", "{\"drive_id\": \"root\", \"rate_limiter\": null}",
	            API_PATCH_DRIVE);
	cr_assert(!act.u.drive_patch.has_rate_limiter && !act.u.drive_patch.path_on_host);
	expect("PATCH", "/drives/root", "{\"drive_id\": \"root\", \"is_read_only\": true}", -EINVAL,
	       "unknown field \"is_read_only\" in drive");
	expect("PATCH", "/drives/root", "{\"path_on_host\": \"/p\"}", -EINVAL, "drive_id");
	expect("PATCH", "/drives/root", "{\"drive_id\": \"root\", \"path_on_host\": \"\"}", -EINVAL,
	       "path_on_host must not be empty");
	expect("PATCH", "/drives/root",
	       "{\"drive_id\": \"root\", \"rate_limiter\": {\"ops\": {\"size\": 1}}}", -EINVAL,
	       "refill_time");
}

Test(parse, network_interfaces)
{
	expect_kind("PUT", "/network-interfaces/eth0",
	            "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": "
	            "\"06:00:AC:10:00:02\"}",
	            API_PUT_NET);
	cr_assert(act.u.net.has_mac);
	cr_assert_eq(act.u.net.guest_mac[5], 2);
	expect("PUT", "/network-interfaces/eth0",
	       "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"zz\"}",
	       -EINVAL, "guest_mac");
	expect_kind("PATCH", "/network-interfaces/eth0",
	            "{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"ops\": {\"size\": 5, "
	            "\"refill_time\": 10}}}",
	            API_PATCH_NET);
	cr_assert(act.u.net_patch.has_tx && !act.u.net_patch.has_rx);
	cr_assert_eq(act.u.net_patch.tx_rate_limiter.ops.size, 5);
	expect("PATCH", "/network-interfaces/eth0",
	       "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap1\"}", -EINVAL,
	       "unknown field \"host_dev_name\" in network-interface");
}

Test(parse, vsock_entropy_logger_metrics)
{
	expect_kind("PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/v\"}", API_PUT_VSOCK);
	cr_assert_eq(act.u.vsock.guest_cid, 3);
	expect("PUT", "/vsock", "{\"guest_cid\": -1, \"uds_path\": \"/v\"}", -EINVAL, "guest_cid");
	/* Firecracker takes any u32 (firecracker-containerd sends 0) */
	expect_kind("PUT", "/vsock", "{\"guest_cid\": 0, \"uds_path\": \"/v\"}", API_PUT_VSOCK);
	cr_assert_eq(act.u.vsock.guest_cid, 0);
	expect_kind("PUT", "/entropy",
	            "{\"rate_limiter\": {\"bandwidth\": {\"size\": 10, \"refill_time\": 1}}}",
	            API_PUT_ENTROPY);
	expect("PUT", "/entropy", "{\"rate\": 1}", -EINVAL, "unknown field");
	expect_kind("PUT", "/logger", "{\"level\": \"Warning\", \"show_level\": true}",
	            API_PUT_LOGGER);
	cr_assert_eq(act.u.logger.level, LOG_WARN);
	expect("PUT", "/logger", "{\"level\": \"Loud\"}", -EINVAL, "level");
	expect_kind("PUT", "/metrics", "{\"metrics_path\": \"/m\"}", API_PUT_METRICS);
	cr_assert_str_eq(act.u.metrics.metrics_path, "/m");
	expect("PUT", "/metrics", "{}", -EINVAL, "metrics_path");
}

/* --------------------------------------------------------- cpu-config */

#define B32(s) "\"0b" s "\""
#define ONES8  "11111111"
#define XS8    "xxxxxxxx"

Test(parse, cpu_config_valid)
{
	struct cpu_config *c = &act.u.cpu_config;

	expect_kind("PUT", "/cpu-config",
	            "{\"kvm_capabilities\": [], \"cpuid_modifiers\": ["
	            " {\"leaf\": \"0x1\", \"subleaf\": \"0b0\", \"flags\": 0, \"modifiers\": ["
	            "   {\"register\": \"ecx\", \"bitmap\": " B32(
	                    XS8 XS8 XS8
	                    "xxxxxx01") "},"
	                                "   {\"register\": \"edx\", \"bitmap\": " B32(
	                                        "1xxx_xxxx" XS8 XS8
	                                        "0000000x") "}]},"
	                                                    " {\"leaf\": 7, \"subleaf\": \"10\", "
	                                                    "\"flags\": 1, \"modifiers\": []}],"
	                                                    " \"msr_modifiers\": [{\"addr\": "
	                                                    "\"0x10a\", \"bitmap\": \"0b" XS8 XS8
	                                                            XS8 XS8 XS8 XS8 XS8
	                                                    "xxxxxxx1\"}],"
	                                                    " \"reg_modifiers\": [], "
	                                                    "\"vcpu_features\": null}",
	            API_PUT_CPU_CONFIG);
	cr_assert_eq(c->nr_cpuid, 2);
	cr_assert_eq(c->cpuid[0].leaf, 1);
	cr_assert_eq(c->cpuid[0].subleaf, 0);
	cr_assert_eq(c->cpuid[0].reg, 2);
	cr_assert_eq(c->cpuid[0].mask, 0x3);
	cr_assert_eq(c->cpuid[0].value, 0x1);
	cr_assert_eq(c->cpuid[1].reg, 3);
	cr_assert_eq(c->cpuid[1].mask, 0x800000feu);
	cr_assert_eq(c->cpuid[1].value, 0x80000000u);
	cr_assert_eq(c->nr_msr, 1);
	cr_assert_eq(c->msr[0].addr, 0x10a);
	cr_assert_eq(c->msr[0].mask, 1);
	cr_assert_eq(c->msr[0].value, 1);
	expect_kind("PUT", "/cpu-config",
	            "{\"cpuid_modifiers\": [{\"leaf\": \"4294967295\", "
	            "\"subleaf\": \"0xFFFFFFFF\", \"flags\": 0, \"modifiers\": []}]}",
	            API_PUT_CPU_CONFIG);
	cr_assert_eq(c->nr_cpuid, 0, "a leaf without register modifiers changes nothing");
}

static void expect_cpu(const char *body, const char *msg)
{
	expect("PUT", "/cpu-config", body, -EINVAL, msg);
	cr_assert_eq(act.u.cpu_config.nr_cpuid + act.u.cpu_config.nr_msr, 0);
}

#define LEAF(l)                                                                                    \
	"{\"cpuid_modifiers\": [{\"leaf\": " l                                                     \
	", \"subleaf\": 0, \"flags\": 0, \"modifiers\": []}]}"
#define MOD(r, b)                                                                                  \
	"{\"cpuid_modifiers\": [{\"leaf\": 1, \"subleaf\": 0, \"flags\": 0, \"modifiers\": "       \
	"[{\"register\": " r ", \"bitmap\": " b "}]}]}"

Test(parse, cpu_config_invalid)
{
	expect_cpu(LEAF("\"0x\""), "cpu-config.cpuid_modifiers[0].leaf must be a 32-bit number");
	expect_cpu(LEAF("\"0x100000000\""), "leaf must be a 32-bit number");
	expect_cpu(LEAF("\"-1\""), "leaf");
	expect_cpu(LEAF("\" 1\""), "leaf");
	expect_cpu(LEAF("\"0b12\""), "leaf");
	expect_cpu(LEAF("\"0x0x1\""), "leaf");
	expect_cpu(LEAF("-1"), "leaf");
	expect_cpu(LEAF("1.5"), "leaf");
	expect_cpu(MOD("\"eax\"", B32(ONES8)),
	           "modifiers[0].bitmap must be a string \"0b\" followed by 32");
	expect_cpu(MOD("\"eax\"", B32(ONES8 ONES8 ONES8 ONES8 "1")), "followed by 32");
	expect_cpu(MOD("\"eax\"", B32(ONES8 ONES8 ONES8 "1111111y")), "'0', '1' or 'x'");
	expect_cpu(MOD("\"eax\"", "\"" ONES8 ONES8 ONES8 ONES8 "\""), "bitmap");
	expect_cpu(MOD("\"eax\"", "7"), "bitmap");
	expect_cpu(MOD("\"rax\"", B32(ONES8 ONES8 ONES8 ONES8)), "register must be one of");
	expect_cpu("{\"cpuid_modifiers\": [{\"leaf\": 1, \"subleaf\": 0, \"modifiers\": []}]}",
	           "flags");
	expect_cpu("{\"cpuid_modifiers\": {}}", "cpuid_modifiers must be an array");
	expect_cpu("{\"msr_modifiers\": [{\"addr\": \"0x10a\", \"bitmap\": " B32(
	                   ONES8 ONES8 ONES8 ONES8) "}]}",
	           "followed by 64");
	expect_cpu("{\"kvm_capabilities\": [\"121\"]}", "KVM capabilities is not supported");
	expect_cpu("{\"reg_modifiers\": [{\"addr\": \"0x0\", \"bitmap\": \"0b1\"}]}", "aarch64");
	expect_cpu("{\"vcpu_features\": [{}]}", "aarch64");
	expect_cpu("{\"cpu_template\": \"T2\"}", "unknown field \"cpu_template\" in cpu-config");
}

Test(parse, cpu_config_too_many_modifiers)
{
	char *body = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&body, &size);

	fprintf(f, "{\"cpuid_modifiers\": [");
	for (int i = 0; i <= CPU_CFG_MAX_MODIFIERS; i++)
		fprintf(f,
		        "%s{\"leaf\": %d, \"subleaf\": 0, \"flags\": 0, \"modifiers\": "
		        "[{\"register\": \"eax\", \"bitmap\": " B32(XS8 XS8 XS8 XS8) "}]}",
		        i ? "," : "", i);
	fprintf(f, "]}");
	fclose(f);
	expect_cpu(body, "at most 64 CPUID register modifiers");
	free(body);
}

/* ------------------------------------------------------ queue and misc */

Test(queue, fifo_and_eventfd)
{
	struct api_queue q;
	struct api_action a[3] = {{0}};
	struct pollfd p;

	cr_assert_eq(api_queue_init(&q), 0);
	p = (struct pollfd){.fd = q.efd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 0), 0, "a new queue must not wake its consumer");
	cr_assert_null(api_queue_take(&q));
	for (int i = 0; i < 3; i++)
		api_queue_post(&q, &a[i]);
	cr_assert_eq(poll(&p, 1, 0), 1, "a post must make the eventfd readable");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(api_queue_take(&q), &a[i], "FIFO order broken at %d", i);
	cr_assert_eq(poll(&p, 1, 0), 0, "take must drain the eventfd");
	cr_assert_null(api_queue_take(&q));
	api_queue_post(&q, &a[1]);
	cr_assert_eq(api_queue_take(&q), &a[1]);
	cr_assert_null(a[1].next);
	api_queue_destroy(&q);
}

#define PRODUCERS    4
#define PER_PRODUCER 2000

static struct api_queue mt_q;
static struct api_action mt_a[PRODUCERS][PER_PRODUCER];

static void *producer(void *arg)
{
	struct api_action *mine = arg;
	for (int i = 0; i < PER_PRODUCER; i++) {
		mine[i].status = i;
		api_queue_post(&mt_q, &mine[i]);
	}
	return NULL;
}

Test(queue, many_producers_one_consumer)
{
	pthread_t t[PRODUCERS];
	int next[PRODUCERS] = {0}, got = 0;

	cr_assert_eq(api_queue_init(&mt_q), 0);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_create(&t[i], NULL, producer, mt_a[i]);
	while (got < PRODUCERS * PER_PRODUCER) {
		struct pollfd p = {.fd = mt_q.efd, .events = POLLIN};
		struct api_action *a;
		cr_assert_eq(poll(&p, 1, 5000), 1, "lost wake-up after %d actions", got);
		while ((a = api_queue_take(&mt_q)) != NULL) {
			int who = (int)((a - &mt_a[0][0]) / PER_PRODUCER);
			cr_assert_eq(a->status, next[who]++, "producer %d out of order", who);
			got++;
		}
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	api_queue_destroy(&mt_q);
}

Test(misc, action_names)
{
	for (int k = 0; k < API_ACTION_COUNT; k++) {
		const char *n = api_action_name((enum api_action_kind)k);
		cr_assert(strncmp(n, "GET /", 5) == 0 || strncmp(n, "PUT /", 5) == 0 ||
		                  strncmp(n, "PATCH /", 7) == 0,
		          "kind %d named \"%s\"", k, n);
		for (int j = 0; j < k; j++)
			cr_assert_str_neq(n, api_action_name((enum api_action_kind)j));
	}
	cr_assert_str_eq(api_action_name(API_ACTION_COUNT), "unknown action");
	cr_assert_str_eq(api_action_name(API_INSTANCE_START), "PUT /actions InstanceStart");
}

Test(misc, fault_json)
{
	char *j = api_fault_json("bad \"x\"\n");
	cr_assert_str_eq(j, "{\"fault_message\":\"bad \\\"x\\\"\\n\"}");
	free(j);
	j = api_fault_json("path /\xff\xfe\xc3\xa9");
	cr_assert_str_eq(j, "{\"fault_message\":\"path /????\"}");
	free(j);
	j = api_fault_json("caf\xc3\xa9");
	cr_assert_str_eq(j, "{\"fault_message\":\"caf\xc3\xa9\"}");
	free(j);
}
