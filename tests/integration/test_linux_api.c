// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_api.c: a Linux guest driven through the HTTP
 * API, as an orchestrator drives it. kiln starts with --api-sock; the test
 * configures tests/linux's image (tests/linux/README.md) with 2 vCPUs, its
 * root drive and a 1 MiB data drive, starts it, and with Linux running:
 *   - GET /vm/config reports the machine, the boot source and both drives;
 *   - PATCH /drives/data points the data drive at a 4 MiB file, and Linux's
 *     virtio_blk sees the new size (its "detected capacity change" line,
 *     after the configuration-change interrupt);
 *   - PATCH /vm pauses it for 25 s and resumes it; the state follows, the
 *     guest's monotonic clock did not run during the pause (kt-count, one
 *     count every 500 ms of it, goes on at that pace), and Linux does not
 *     take the pause for a CPU stuck in the kernel (its soft-lockup
 *     watchdog reports after 20 s);
 *   - PUT /actions SendCtrlAltDel: Linux's keyboard driver sees
 *     Ctrl+Alt+Del on the i8042 and the kernel restarts at once (its
 *     default), through the i8042 with reboot=k, and kiln exits 0 (its
 *     default log level does not say why; test_linux_blk checks that line).
 * The image's /init runs kt-count for 14 hours, so Linux only stops when told to.
 */
#include "api_test.h"
#include "linux_guest.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* longer than Linux's soft-lockup threshold (2 * watchdog_thresh, 20 s) */
#define PAUSE_S 25
/* kt-count's period; a count may come this much later under TCG and still be on time */
#define COUNT_MS   500
#define COUNT_MS_S "500"
#define SLACK_MS   4000

static char disk[64];

static void teardown(void)
{
	api_test_cleanup();
	lg_cleanup(&kp, disk);
}

TestSuite(linux_api, .init = api_test_init, .fini = teardown, .timeout = 540);

/* a file of `mib` MiB of zeros at a new temporary path (freed and removed at cleanup) */
static const char *sized_file(int slot, int mib)
{
	tmp[slot] = kh_write_temp("", ".img");
	cr_assert_not_null(tmp[slot]);
	cr_assert_eq(truncate(tmp[slot], (off_t)mib << 20), 0);
	return tmp[slot];
}

static void put_drive(const char *id, const char *path, bool root)
{
	char *uri = kh_fmt("/drives/%s", id);
	char *body = kh_fmt("{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", "
	                    "\"is_root_device\": %s, \"is_read_only\": false}",
	                    id, path, root ? "true" : "false");
	call_ok("PUT", uri, body);
	free(uri);
	free(body);
}

Test(linux_api, config_resize_pause_and_ctrl_alt_del)
{
	const char *root = lg_copy_rootfs(disk);
	const char *small = sized_file(0, 1), *big = sized_file(1, 4);
	start_kiln(&kp);
	char *boot = kh_fmt("{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
	                    "\"boot_args\": \"console=ttyS0 reboot=k panic=1 "
	                    "kiln.run=kt-count,100000," COUNT_MS_S "\"}",
	                    lg_image("vmlinux"), lg_image("initramfs.cpio"));
	call_ok("PUT", "/boot-source", boot);
	free(boot);
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}");
	put_drive("rootfs", root, true);
	put_drive("data", small, false);
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	lg_expect_line(&kp, "kiln-rootfs: run: kt-count 100000 " COUNT_MS_S, 300);

	json_t *cfg = call("GET", "/vm/config", NULL, 200);
	json_t *m = json_object_get(cfg, "machine-config");
	cr_assert_eq(json_integer_value(json_object_get(m, "vcpu_count")), 2);
	cr_assert_eq(json_integer_value(json_object_get(m, "mem_size_mib")), 256);
	json_t *drives = json_object_get(cfg, "drives");
	cr_assert_eq(json_array_size(drives), 2);
	const char *paths[2] = {root, small};
	for (size_t i = 0; i < 2; i++)
		cr_assert_str_eq(json_string_value(json_object_get(json_array_get(drives, i),
		                                                   "path_on_host")),
		                 paths[i]);
	const char *args = json_string_value(
	        json_object_get(json_object_get(cfg, "boot-source"), "boot_args"));
	cr_assert(args && strstr(args, "kiln.run=kt-count,100000," COUNT_MS_S), "boot_args: %s",
	          args);
	json_decref(cfg);

	char *patch = kh_fmt("{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}", big);
	call_ok("PATCH", "/drives/data", patch);
	free(patch);
	/* block/genhd.c, in 512-byte sectors */
	lg_expect_line(&kp, "vdb: detected capacity change from 2048 to 8192", 60);
	cfg = call("GET", "/vm/config", NULL, 200);
	drives = json_object_get(cfg, "drives");
	cr_assert_str_eq(
	        json_string_value(json_object_get(json_array_get(drives, 1), "path_on_host")), big);
	json_decref(cfg);

	lg_expect_line(&kp, "kt-count: 3 after", 60);
	call_ok("PATCH", "/vm", "{\"state\": \"Paused\"}");
	cr_assert_str_eq(state(), "Paused");
	kh_wait_for(&kp, "\x01", 500); /* all the guest wrote before the pause */
	unsigned long n = lg_last_count(kp.out, NULL);
	sleep(PAUSE_S);
	call_ok("PATCH", "/vm", "{\"state\": \"Resumed\"}");
	cr_assert_str_eq(state(), "Running");
	/* the count after the pause: the guest's monotonic clock did not take it in */
	char *line = kh_fmt("kt-count: %lu after", n + 3);
	lg_expect_line(&kp, line, 60);
	free(line);
	for (unsigned long i = n + 1; i <= n + 2; i++) {
		unsigned long gap = lg_count_gap(kp.out, i);
		cr_assert_lt(
		        gap, COUNT_MS + SLACK_MS,
		        "count %lu came %lu ms of guest time after the one before (%d s pause, "
		        "one every %d ms):\n%s",
		        i, gap, PAUSE_S, COUNT_MS, kp.out);
	}
	/* the watchdog's timer fires every 4 s: give it two rounds after the resume */
	line = kh_fmt("kt-count: %lu after", n + 3 + 8000 / COUNT_MS);
	lg_expect_line(&kp, line, 60);
	free(line);
	cr_assert(!strstr(kp.out, "soft lockup"), "Linux took the %d s pause for a stuck CPU:\n%s",
	          PAUSE_S, kp.out);

	call_ok("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	int st = kh_wait_exit(&kp, 120000);
	cr_assert_eq(st, 0, "kiln did not exit cleanly after Ctrl+Alt+Del (%d):\n%s", st, kp.out);
	cr_assert(strstr(kp.out, "reboot: Restarting system"),
	          "Linux did not restart on Ctrl+Alt+Del:\n%s", kp.out);
}
