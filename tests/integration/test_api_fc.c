// SPDX-License-Identifier: Apache-2.0
/*
 * Firecracker drop-in details of the real daemon, each checked against
 * what Firecracker's own source answers: the version that --version and
 * GET /version report (Kata's checkVersion parse), PUT /serial, the 400 of
 * an oversized body read by a client that sends all of it first, the
 * answers to unknown paths and wrong methods, the state rules of
 * Pause/Resume, SendCtrlAltDel, FlushMetrics, PUT /logger and /metrics,
 * a PATCHed rate limiter, the Deprecation header, GET /vm/config's shapes,
 * a config file's unknown keys, Firecracker's other flags and
 * huge_pages "Transparent" (the metrics: test_api_fc_metrics.c). With
 * KILN_API_LOG set, every exchange is logged for
 * scripts/validate-openapi.py.
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

TestSuite(api_fc, .init = api_test_init, .fini = api_test_cleanup, .timeout = 120);

/* Kata's checkVersion: the 2nd field of the first line, "v" stripped, "X.Y.Z[-pre]" */
static void parse_semver(const char *v, int out[3])
{
	char pre[32] = "";
	int n = sscanf(v, "%d.%d.%d%31s", &out[0], &out[1], &out[2], pre);
	cr_assert(n >= 3, "not a semantic version: '%s'", v);
	cr_assert(pre[0] == '\0' || pre[0] == '-', "bad pre-release in '%s'", v);
}

Test(api_fc, version_flag_and_get_version_report_firecrackers_api)
{
	struct kproc p = {0};
	const char *argv[] = {"kiln", "--version", NULL};
	char first[128], word1[64], word2[64];
	int ver[3];

	cr_assert_eq(kh_spawn(&p, argv), 0);
	cr_assert_eq(kh_wait_exit(&p, 5000), 0, "%s", p.out);
	cr_assert_eq(sscanf(p.out, "%127[^\n]", first), 1);
	cr_assert_eq(sscanf(first, "%63s %63s", word1, word2), 2, "%s", first);
	cr_assert_str_eq(word1, "Firecracker");
	cr_assert_eq(word2[0], 'v', "%s", first);
	parse_semver(word2 + 1, ver);
	/* Kata needs >= 0.21.1; kiln serves Firecracker's 1.x API */
	cr_assert_geq(ver[0], 1, "%s", first);
	cr_assert(strstr(p.out, "\nkiln v" KILN_VERSION "\n"), "%s", p.out);
	kh_kill(&p);

	start_kiln(&kp);
	json_t *j = call("GET", "/version", NULL, 200);
	cr_assert_str_eq(json_string_value(json_object_get(j, "firecracker_version")), word2 + 1);
	cr_assert_str_eq(json_string_value(json_object_get(j, "kiln_version")), KILN_VERSION);
	json_decref(j);
	j = call("GET", "/", NULL, 200);
	cr_assert_str_eq(json_string_value(json_object_get(j, "vmm_version")), word2 + 1);
	json_decref(j);
}

Test(api_fc, put_serial_sends_the_guests_console_to_the_file)
{
	tmp[0] = kh_write_temp("", ".serial");
	start_kiln(&kp);
	call_fault("PUT", "/serial", "{\"serial_out_path\": \"\"}", 400, "serial_out_path");
	call_fault("PUT", "/serial", "{\"serial_out_path\": 3}", 400, "serial_out_path");
	call_fault("PUT", "/serial", "{\"serial_out_path\": \"/nonexistent/dir/x\"}", 400,
	           "/nonexistent/dir/x");
	call_fault("PUT", "/serial", "{\"rate_limiter\": {\"size\": 1024}}", 400,
	           "serial.rate_limiter: missing required field \"refill_time\"");
	call_fault("PUT", "/serial", "{\"serial_out\": \"/tmp/x\"}", 400, "serial_out");
	/* the last one wins, as Firecracker replaces the path */
	call_ok("PUT", "/serial", "{\"serial_out_path\": \"/dev/null\"}");
	char *body = kh_fmt("{\"serial_out_path\": \"%s\"}", tmp[0]);
	call_ok("PUT", "/serial", body);
	configure_hello("");
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	call_fault("PUT", "/serial", body, 400, POST_BOOT);
	free(body);
	kh_wait_exit(&kp, 30000);

	char *out = slurp(tmp[0]);
	cr_assert(strstr(out, "bye"), "the serial file holds:\n%s\nkiln printed:\n%s", out, kp.out);
	/* and kiln's stdout got none of the guest's console */
	cr_assert_null(strstr(kp.out, "bye"), "%s", kp.out);
	free(out);
}

/*
 * A client that sends a 100 KiB body in 10 KiB pieces 20 ms apart (as a
 * slow curl does) and only then reads: every piece is taken and the answer
 * is Firecracker's 400, not a reset (kiln used to answer at the headers
 * and close while the client still sent). Then a body sent in one go, a
 * declared length past the limit with Expect: 100-continue (answered
 * before the body), and the same connection still serves.
 */
Test(api_fc, oversized_body_is_read_and_answered_400)
{
	static const char head[] = "PUT /boot-source HTTP/1.1\r\nHost: x\r\n"
	                           "Content-Length: 102400\r\n\r\n";
	static const char expect[] = "PUT /boot-source HTTP/1.1\r\nHost: x\r\n"
	                             "Content-Length: 60000\r\nExpect: 100-continue\r\n\r\n";
	char piece[10240];
	struct ac_resp r;
	int fd;

	start_kiln(&kp);
	memset(piece, 'a', sizeof(piece));
	for (int round = 0; round < 2; round++) {
		fd = ac_connect(sock);
		cr_assert_geq(fd, 0);
		cr_assert_eq(ac_send(fd, head, strlen(head)), 0);
		for (int i = 0; i < 10; i++) {
			int ret = ac_send(fd, piece, sizeof(piece));
			cr_assert_eq(ret, 0, "piece %d of the body: %s", i, strerror(-ret));
			if (round == 0)
				usleep(20000);
		}
		cr_assert_eq(ac_read(fd, &r, 10000), 0);
		close(fd);
		ac_log("PUT", "/boot-source", NULL, true, &r);
		cr_assert_eq(r.status, 400);
		cr_assert(strstr(r.body,
		                 "Request payload with size 102400 is larger than the limit "
		                 "of 51200 allowed by server."),
		          "%s", r.body);
		ac_resp_free(&r);
	}

	fd = ac_connect(sock);
	cr_assert_eq(ac_send(fd, expect, strlen(expect)), 0);
	cr_assert_eq(ac_read(fd, &r, 10000), 0);
	close(fd);
	cr_assert_eq(r.status, 400, "%d %s", r.status, r.body);
	cr_assert(strstr(r.body, "size 60000 is larger"), "%s", r.body);
	cr_assert(strstr(r.body, "\"error\":\"Request payload"), "%s", r.body);
	ac_resp_free(&r);
	cr_assert_str_eq(state(), "Not started");
}

/*
 * Firecracker's rpc_interface.rs state rules: FlushMetrics, Pause, Resume
 * and SendCtrlAltDel are refused before the boot; after it Pause and
 * Resume are idempotent, FlushMetrics without a metrics file succeeds and
 * writes nothing, SendCtrlAltDel is taken while paused and the guest gets
 * the keys once resumed, and PUT /logger and /metrics are refused.
 */
Test(api_fc, state_rules_of_pause_resume_keys_metrics_and_logger)
{
	tmp[0] = kh_write_temp("", ".log");
	start_kiln(&kp);
	call_fault("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 400, PRE_BOOT);
	call_fault("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400, PRE_BOOT);
	call_fault("PATCH", "/vm", "{\"state\": \"Paused\"}", 400, PRE_BOOT);
	call_fault("PATCH", "/vm", "{\"state\": \"Resumed\"}", 400, PRE_BOOT);
	char *logger = kh_fmt("{\"log_path\": \"%s\", \"level\": \"Info\"}", tmp[0]);
	call_ok("PUT", "/logger", logger);
	boot_hello_args("kbd=30000", "kbd: waiting");

	call_ok("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	/* idempotent both ways: before the keys, which end the guest once it reads them */
	call_ok("PATCH", "/vm", "{\"state\": \"Resumed\"}");
	cr_assert_str_eq(state(), "Running");
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}");
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}");
	cr_assert_str_eq(state(), "Paused");
	call_ok("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	call_fault("PUT", "/logger", logger, 400, POST_BOOT);
	call_fault("PUT", "/metrics", "{\"metrics_path\": \"/tmp/kiln-fc-m\"}", 400, POST_BOOT);
	cr_assert_eq(access("/tmp/kiln-fc-m", F_OK), -1, "PUT /metrics made its file");
	free(logger);
	usleep(300000);
	cr_assert_null(strstr(kp.out, "kbd: 1d"), "a paused guest read keys:\n%s", kp.out);
	call_ok("PATCH", "/vm", "{\"state\": \"Resumed\"}");
	/* set-1 make codes: Ctrl 1d, Alt 38, Del e0 53 */
	cr_assert(kh_wait_for(&kp, "kbd: 1d 38 e0 53", 30000), "guest output:\n%s", kp.out);
}

/* drives[0].rate_limiter.<bucket> of GET /vm/config (a new reference; NULL when none) */
static json_t *drive_bucket(const char *bucket)
{
	json_t *cfg = call("GET", "/vm/config", NULL, 200);
	json_t *d = json_array_get(json_object_get(cfg, "drives"), 0);
	json_t *b = json_object_get(json_object_get(d, "rate_limiter"), bucket);
	json_incref(b);
	json_decref(cfg);
	return json_is_object(b) ? b : (json_decref(b), NULL);
}

/*
 * Firecracker's RateLimiterUpdate: a PATCH naming one bucket leaves the
 * other as it was; a bucket given with size 0 is removed.
 */
Test(api_fc, patched_rate_limiter_keeps_the_bucket_it_does_not_name)
{
	tmp[0] = kh_write_temp("", ".img");
	cr_assert_eq(truncate(tmp[0], 1 << 20), 0);
	start_kiln(&kp);
	put_drive_d0(tmp[0], ", \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, "
	                     "\"refill_time\": 1000}}");
	boot_hello_args("sleep=30000", "sleeping");

	call_ok("PATCH", "/drives/d0",
	        "{\"drive_id\": \"d0\", \"rate_limiter\": {\"ops\": {\"size\": 100, "
	        "\"refill_time\": 1000}}}");
	json_t *bw = drive_bucket("bandwidth"), *ops = drive_bucket("ops");
	cr_assert_not_null(bw, "the bandwidth bucket went with a PATCH of ops");
	cr_assert_eq(json_integer_value(json_object_get(bw, "size")), 1048576);
	cr_assert_eq(json_integer_value(json_object_get(bw, "refill_time")), 1000);
	cr_assert_not_null(ops);
	cr_assert_eq(json_integer_value(json_object_get(ops, "size")), 100);
	json_decref(bw);
	json_decref(ops);

	/* size 0 removes the bucket named; ops stays */
	call_ok("PATCH", "/drives/d0",
	        "{\"drive_id\": \"d0\", \"rate_limiter\": {\"bandwidth\": {\"size\": 0, "
	        "\"refill_time\": 0}}}");
	bw = drive_bucket("bandwidth");
	ops = drive_bucket("ops");
	cr_assert_null(bw);
	cr_assert_not_null(ops, "ops went with a PATCH of bandwidth");
	cr_assert_eq(json_integer_value(json_object_get(ops, "size")), 100);
	json_decref(ops);
}

/* the status of one request, and whether its answer carried `Deprecation: true` */
static bool deprecated(const char *method, const char *path, const char *body, int status)
{
	struct ac_resp r;
	char v[16] = "";

	cr_assert_eq(ac_request(sock, method, path, body, &r), status, "%s %s %s: %d %s", method,
	             path, body, r.status, r.body ? r.body : "");
	ac_log(method, path, body, false, &r);
	bool dep = ac_header(&r, "Deprecation", v, sizeof(v));
	if (dep)
		cr_assert_str_eq(v, "true");
	ac_resp_free(&r);
	return dep;
}

/*
 * Firecracker's Deprecation header: machine-config's cpu_template (PUT and
 * PATCH), MMDS V1 (also by default), snapshot load's mem_file_path and
 * enable_diff_snapshots, on success and on failure alike; not otherwise.
 */
Test(api_fc, deprecation_header_on_deprecated_fields)
{
	start_kiln(&kp);
	cr_assert_not(deprecated("PUT", "/machine-config",
	                         "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", 204));
	cr_assert(deprecated(
	        "PUT", "/machine-config",
	        "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": \"None\"}", 204));
	cr_assert(deprecated("PATCH", "/machine-config", "{\"cpu_template\": \"None\"}", 204));
	cr_assert_not(deprecated("PATCH", "/machine-config",
	                         "{\"cpu_template\": null, "
	                         "\"vcpu_count\": 1}",
	                         204));
	call_ok("PUT", "/network-interfaces/eth0",
	        "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap-fc0\"}");
	cr_assert(deprecated("PUT", "/mmds/config", "{\"network_interfaces\": [\"eth0\"]}", 204));
	cr_assert(deprecated("PUT", "/mmds/config",
	                     "{\"network_interfaces\": [\"eth0\"], \"version\": \"V1\"}", 204));
	cr_assert_not(deprecated("PUT", "/mmds/config",
	                         "{\"network_interfaces\": [\"eth0\"], \"version\": \"V2\"}", 204));
	cr_assert_not(deprecated("GET", "/vm/config", NULL, 200));
	cr_assert(deprecated(
	        "PUT", "/vsock",
	        "{\"guest_cid\": 3, \"uds_path\": \"/tmp/kiln-fc.v\", \"vsock_id\": \"v\"}", 204));
	cr_assert_not(deprecated("PUT", "/vsock",
	                         "{\"guest_cid\": 3, \"uds_path\": \"/tmp/kiln-fc.v\"}", 204));

	/* a fresh kiln for the loads: the deprecated one fails (no such file), flagged all the same
	 */
	kh_kill(&kp);
	start_kiln(&kp);
	cr_assert(deprecated("PUT", "/snapshot/load",
	                     "{\"snapshot_path\": \"/nonexistent/s\", \"mem_file_path\": "
	                     "\"/nonexistent/m\"}",
	                     400));
	cr_assert_not(
	        deprecated("PUT", "/snapshot/load",
	                   "{\"snapshot_path\": \"/nonexistent/s\", \"mem_backend\": "
	                   "{\"backend_type\": \"File\", \"backend_path\": \"/nonexistent/m\"}}",
	                   400));
	cr_assert(kh_wait_for(&kp,
	                      "PUT /snapshot/load: mem_file_path and enable_diff_snapshots "
	                      "fields are deprecated.",
	                      2000),
	          "no warning logged:\n%s", kp.out);
}

/*
 * GET /vm/config before anything is configured has Firecracker's VmmConfig
 * shape: its 13 keys, boot-source as BootSourceConfig::default() ("" and
 * nulls), null objects, empty lists, machine-config's defaults without
 * cpu_template; after PUT /boot-source the path shows.
 */
Test(api_fc, vm_config_shapes_before_and_after_put)
{
	static const char *const keys[] = {
	        "balloon",        "drives",  "boot-source",   "cpu-config",         "logger",
	        "machine-config", "metrics", "mmds-config",   "network-interfaces", "vsock",
	        "entropy",        "pmem",    "memory-hotplug"};
	static const char *const nulls[] = {"balloon", "cpu-config",    "logger",
	                                    "metrics", "mmds-config",   "vsock",
	                                    "entropy", "memory-hotplug"};
	start_kiln(&kp);
	json_t *j = call("GET", "/vm/config", NULL, 200);
	cr_assert_eq(json_object_size(j), ARRAY_SIZE(keys), "%zu keys", json_object_size(j));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		cr_assert_not_null(json_object_get(j, keys[i]), "no \"%s\"", keys[i]);
	for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
		cr_assert(json_is_null(json_object_get(j, nulls[i])), "\"%s\" is not null",
		          nulls[i]);
	cr_assert_eq(json_array_size(json_object_get(j, "drives")), 0);
	cr_assert_eq(json_array_size(json_object_get(j, "network-interfaces")), 0);
	cr_assert_eq(json_array_size(json_object_get(j, "pmem")), 0);
	json_t *bs = json_object_get(j, "boot-source");
	cr_assert_str_eq(json_string_value(json_object_get(bs, "kernel_image_path")), "");
	cr_assert(json_is_null(json_object_get(bs, "initrd_path")));
	cr_assert(json_is_null(json_object_get(bs, "boot_args")));
	json_t *mc = json_object_get(j, "machine-config");
	cr_assert_eq(json_integer_value(json_object_get(mc, "vcpu_count")), 1);
	cr_assert_eq(json_integer_value(json_object_get(mc, "mem_size_mib")), 128);
	cr_assert(json_is_false(json_object_get(mc, "smt")));
	cr_assert(json_is_false(json_object_get(mc, "track_dirty_pages")));
	cr_assert_str_eq(json_string_value(json_object_get(mc, "huge_pages")), "None");
	cr_assert_null(json_object_get(mc, "cpu_template"));
	json_decref(j);

	char *body = kh_fmt("{\"kernel_image_path\": \"%s\"}", kh_guest("hello"));
	call_ok("PUT", "/boot-source", body);
	free(body);
	j = call("GET", "/vm/config", NULL, 200);
	bs = json_object_get(j, "boot-source");
	cr_assert_str_eq(json_string_value(json_object_get(bs, "kernel_image_path")),
	                 kh_guest("hello"));
	cr_assert(json_is_null(json_object_get(bs, "boot_args")));
	json_decref(j);
}

/*
 * A config file with top-level keys Firecracker does not know boots, as
 * Firecracker's VmmConfig ignores them; kiln names each in a warning. A
 * key unknown inside a resource is refused (exit 152), as in Firecracker.
 */
Test(api_fc, config_file_ignores_unknown_top_level_keys)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	                   "\"%s\"}, \"future-device\": {\"x\": 1}, \"serial\": "
	                   "{\"serial_out_path\": \"/tmp/x\"}}",
	                   kh_guest("hello"), KH_GUEST_ARGS);
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	cr_assert_eq(kh_wait_exit(&kp, 30000), 0, "%s", kp.out);
	cr_assert(strstr(kp.out, "bye"), "%s", kp.out);
	cr_assert(strstr(kp.out, "unknown top-level field \"future-device\" ignored"), "%s",
	          kp.out);
	cr_assert(strstr(kp.out, "unknown top-level field \"serial\" ignored"), "%s", kp.out);
	kh_kill(&kp);

	cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"kernel_args\": \"x\"}}",
	             kh_guest("hello"));
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	cr_assert_eq(kh_wait_exit(&kp, 30000), 152, "%s", kp.out);
	cr_assert(strstr(kp.out, "unknown field \"kernel_args\" in boot-source"), "%s", kp.out);
}

/* runs `kiln args...` (NULL-ended) to its end: the exit status, its output in p->out */
static int run_kiln(struct kproc *p, const char *const *argv)
{
	cr_assert_eq(kh_spawn(p, argv), 0);
	return kh_wait_exit(p, 10000);
}

/*
 * Firecracker's other informational flags: --snapshot-version prints the
 * format of the snapshots kiln writes, --describe-snapshot FILE the one of
 * a state file (a file that is none is refused), --enable-pci is taken
 * with a warning (kiln has no PCI).
 */
Test(api_fc, snapshot_version_describe_snapshot_and_enable_pci_flags)
{
	struct kproc p = {0};
	char *snap = kh_fmt("/tmp/kiln-fc-%d.snap", getpid()), *mem = kh_fmt("%s.mem", snap);
	tmp[0] = snap;
	tmp[1] = mem;

	const char *ver[] = {"kiln", "--snapshot-version", NULL};
	cr_assert_eq(run_kiln(&p, ver), 0, "%s", p.out);
	cr_assert_str_eq(p.out, "v1.0.0\n");
	kh_kill(&p);

	start_kiln(&kp);
	boot_hello_args("sleep=30000", "sleeping");
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}");
	char *body = kh_fmt("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}", snap, mem);
	call_ok("PUT", "/snapshot/create", body);
	free(body);
	const char *desc[] = {"kiln", "--describe-snapshot", snap, NULL};
	cr_assert_eq(run_kiln(&p, desc), 0, "%s", p.out);
	cr_assert_str_eq(p.out, "v1.0.0\n");
	kh_kill(&p);
	const char *bad[] = {"kiln", "--describe-snapshot", mem, NULL};
	cr_assert_eq(run_kiln(&p, bad), 1, "%s", p.out);
	cr_assert(strstr(p.out, "is not a kiln snapshot state file"), "%s", p.out);
	kh_kill(&p);

	const char *pci[] = {"kiln", "--enable-pci", "--version", NULL};
	cr_assert_eq(run_kiln(&p, pci), 0, "%s", p.out);
	cr_assert(strstr(p.out, "--enable-pci: kiln has no PCI transport"), "%s", p.out);
	kh_kill(&p);
}

/* whether the 64 MiB mapping of process `pid` (its guest RAM) has VM_HUGEPAGE ("hg") */
static bool ram_has_hugepage_hint(pid_t pid)
{
	char path[64], line[512];
	bool in_ram = false, hint = false;
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in_ram = hi - lo == 64ul << 20;
		else if (in_ram && strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " hg"))
			hint = true;
	}
	fclose(f);
	return hint;
}

/* machine-config huge_pages "Transparent" (Firecracker's): guest RAM gets MADV_HUGEPAGE */
Test(api_fc, huge_pages_transparent_marks_guest_ram)
{
	if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0)
		cr_skip_test("this host's kernel has no transparent huge pages");
	start_kiln(&kp);
	configure_hello("sleep=30000");
	call_ok("PATCH", "/machine-config", "{\"huge_pages\": \"Transparent\"}");
	json_t *mc = call("GET", "/machine-config", NULL, 200);
	cr_assert_str_eq(json_string_value(json_object_get(mc, "huge_pages")), "Transparent");
	json_decref(mc);
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	cr_assert(kh_wait_for(&kp, "sleeping", 30000), "%s", kp.out);
	cr_assert(ram_has_hugepage_hint(kp.pid), "no 64 MiB mapping with VmFlags hg");
	kh_kill(&kp);

	/* and not without it */
	start_kiln(&kp);
	boot_hello_args("sleep=30000", "sleeping");
	cr_assert_not(ram_has_hugepage_hint(kp.pid));
}
