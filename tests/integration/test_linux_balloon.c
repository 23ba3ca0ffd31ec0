// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_balloon.c: virtio-balloon judged by Linux's
 * own driver (virtio_balloon, Debian's cloud kernel) in tests/linux's
 * image, kiln started as an orchestrator does it: --api-sock with a
 * --config-file that has a "balloon". The guest runs kt-balloon
 * (tests/linux/progs), which first writes all the memory it can take and
 * frees it, so that kiln's resident memory is high and the guest's free
 * pages are ones the host holds.
 *   - inflate: PATCH /balloon takes INFLATE_MIB; the guest's MemTotal
 *     falls by most of it (without deflate_on_oom Linux takes ballooned
 *     pages off its total), the statistics' actual_mib reaches it and
 *     kiln's VmRSS falls by at least half of it; the statistics carry the
 *     guest's numbers; deflate gives MemTotal back; a hinting run goes
 *     from start to the guest's answer and stop;
 *   - free page reporting: with nothing inflated, the memory the guest
 *     freed goes back to the host by itself (VmRSS falls);
 *   - deflate on OOM: with most of its memory in the balloon the guest
 *     allocates more than is free, the driver gives pages back and the
 *     allocation succeeds; actual_mib ends below the target.
 * Figures go to criterion's info log.
 */
#include "api_test.h"
#include "linux_guest.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM_MIB     256
#define INFLATE_MIB 128

static char disk[64];

static void fini(void)
{
	api_test_cleanup();
	if (disk[0])
		unlink(disk);
	disk[0] = '\0';
}

TestSuite(linux_balloon, .init = api_test_init, .fini = fini, .timeout = 900);

/* kiln on tests/linux's image with `balloon` and kiln.run=`run`, its API on `sock` */
static void boot(const char *balloon, const char *run)
{
	lg_copy_rootfs(disk);
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", "
	                   "\"initrd_path\": \"%s\", \"boot_args\": \"console=ttyS0 reboot=k "
	                   "panic=1 kiln.run=%s\"}, "
	                   "\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": %d}, "
	                   "\"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
	                   "\"is_root_device\": true, \"is_read_only\": false}], "
	                   "\"balloon\": %s}",
	                   lg_image("vmlinux"), lg_image("initramfs.cpio"), run, MEM_MIB, disk,
	                   balloon);
	tmp[0] = kh_write_temp(cfg, ".json");
	free(cfg);
	const char *extra[] = {"--level", "Info", "--config-file", tmp[0], NULL};
	start_kiln_args(&kp, extra);
}

/* VmRSS of kiln, KiB */
static long rss_kib(void)
{
	char *path = kh_fmt("/proc/%d/status", (int)kp.pid), line[256];
	FILE *f = fopen(path, "r");
	long kib = -1;

	cr_assert_not_null(f, "%s", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	free(path);
	return kib;
}

/* the last complete "kt-balloon: mem" line's numbers (KiB); false when none yet */
static bool last_mem(unsigned long *total, unsigned long *free_kib)
{
	bool found = false;
	unsigned long t, f, a;
	int len;

	for (const char *p = kp.out; p && (p = strstr(p, "kt-balloon: mem ")); p++) {
		len = 0;
		if (sscanf(p, "kt-balloon: mem total=%lu free=%lu avail=%lu%n", &t, &f, &a, &len) ==
		            3 &&
		    len && (p[len] == '\r' || p[len] == '\n')) {
			*total = t;
			*free_kib = f;
			found = true;
		}
	}
	return found;
}

/* a fresh mem line (one printed after this call), waiting up to `s` seconds (scaled) */
static void next_mem(unsigned long *total, unsigned long *free_kib, int s)
{
	size_t seen = kp.len;
	for (int i = 0; i < kh_scaled_ms(s * 1000) / 250; i++) {
		kh_wait_for(&kp, "\x01", 250);
		if (kp.len > seen && strstr(kp.out + seen, "kt-balloon: mem ") &&
		    last_mem(total, free_kib))
			return;
	}
	cr_assert_fail("no new kt-balloon line in %d s (%s):\n%s", s, kh_status(&kp), kp.out);
}

/* an integer member of GET /balloon/statistics (-1 when absent) */
static long long stat_of(const char *name)
{
	json_t *s = call("GET", "/balloon/statistics", NULL, 200);
	json_t *v = json_object_get(s, name);
	long long n = json_is_integer(v) ? json_integer_value(v) : -1;
	json_decref(s);
	return n;
}

/* polls actual_mib until `ok` says it is there (up to `s` seconds, scaled) */
static long long wait_actual(bool (*ok)(long long), int s)
{
	long long a = -1;
	for (int i = 0; i < kh_scaled_ms(s * 1000) / 250; i++) {
		if (ok(a = stat_of("actual_mib")))
			return a;
		usleep(250000);
	}
	cr_assert_fail("actual_mib stayed at %lld:\n%s", a, kp.out);
	return a;
}

static bool inflated(long long a)
{
	return a >= INFLATE_MIB;
}

static bool deflated(long long a)
{
	return a == 0;
}

Test(linux_balloon, inflate_and_deflate_move_guest_and_host_memory)
{
	unsigned long total0, free0, total1, free1, total2, free2;

	boot("{\"amount_mib\": 0, \"deflate_on_oom\": false, \"stats_polling_interval_s\": 1, "
	     "\"free_page_hinting\": true}",
	     "kt-balloon,touch,600");
	lg_expect_line(&kp, "kt-balloon: touched ", 300);
	next_mem(&total0, &free0, 60);
	long rss0 = rss_kib();

	call_ok("PATCH", "/balloon", "{\"amount_mib\": 128}");
	long long actual = wait_actual(inflated, 120);
	next_mem(&total1, &free1, 60);
	next_mem(&total1, &free1, 60); /* one whole period after the driver's last page */
	long rss1 = rss_kib();
	cr_log_info("inflate %d MiB: MemTotal %lu -> %lu KiB, MemFree %lu -> %lu KiB, "
	            "VmRSS %ld -> %ld KiB, actual_mib %lld",
	            INFLATE_MIB, total0, total1, free0, free1, rss0, rss1, actual);
	cr_assert_leq(total1 + INFLATE_MIB * 1024 * 9 / 10, total0, "MemTotal %lu -> %lu KiB",
	              total0, total1);
	cr_assert_leq(free1 + INFLATE_MIB * 1024 / 2, free0, "MemFree %lu -> %lu KiB", free0,
	              free1);
	cr_assert_leq(rss1 + INFLATE_MIB * 1024 / 2, rss0, "VmRSS %ld -> %ld KiB", rss0, rss1);

	/*
	 * The guest's own numbers (virtio 1.2 s5.5.6.3), in Firecracker's names:
	 * MemTotal as the guest sent it last, in bytes, within a few MiB of
	 * /proc/meminfo's. The driver sends them every second; under TCG one
	 * sent during the inflation can still be the last, so a few periods
	 * (scaled) are allowed for one sent after it.
	 */
	json_t *s = NULL, *tm = NULL, *fm = NULL;
	long long diff = 0;
	for (long long waited = 0, end = kh_scaled_ms(5000);; waited += 250) {
		json_decref(s);
		s = call("GET", "/balloon/statistics", NULL, 200);
		cr_assert_eq(json_integer_value(json_object_get(s, "target_mib")), INFLATE_MIB);
		tm = json_object_get(s, "total_memory");
		fm = json_object_get(s, "free_memory");
		cr_assert(json_is_integer(tm) && json_is_integer(fm), "no guest statistics: %s",
		          json_dumps(s, 0));
		diff = json_integer_value(tm) / 1024 - (long long)total1;
		if ((diff > -8192 && diff < 8192) || waited >= end)
			break;
		usleep(250000);
	}
	cr_assert(diff > -8192 && diff < 8192, "total_memory %lld B vs MemTotal %lu KiB",
	          json_integer_value(tm), total1);
	json_decref(s);

	call_ok("PATCH", "/balloon", "{\"amount_mib\": 0}");
	wait_actual(deflated, 120);
	next_mem(&total2, &free2, 60);
	next_mem(&total2, &free2, 60);
	cr_log_info("deflate: MemTotal %lu KiB, MemFree %lu KiB", total2, free2);
	cr_assert_geq(total2 + 1024, total0, "MemTotal %lu after deflating, %lu before", total2,
	              total0);

	/* a hinting run: the guest answers the host's command id */
	call_ok("PATCH", "/balloon/hinting/start", NULL);
	json_t *h = NULL;
	for (int i = 0; i < kh_scaled_ms(60000) / 250; i++) {
		json_decref(h);
		h = call("GET", "/balloon/hinting/status", NULL, 200);
		if (json_is_integer(json_object_get(h, "guest_cmd")))
			break;
		usleep(250000);
	}
	cr_assert(json_is_integer(json_object_get(h, "guest_cmd")), "the guest never answered: %s",
	          json_dumps(h, 0));
	cr_log_info("hinting: host_cmd %lld guest_cmd %lld",
	            json_integer_value(json_object_get(h, "host_cmd")),
	            json_integer_value(json_object_get(h, "guest_cmd")));
	json_decref(h);
	call_ok("PATCH", "/balloon/hinting/stop", NULL);
	h = call("GET", "/balloon/hinting/status", NULL, 200);
	cr_assert_eq(json_integer_value(json_object_get(h, "host_cmd")), 1); /* DONE */
	json_decref(h);
}

Test(linux_balloon, free_page_reporting_gives_freed_memory_back)
{
	unsigned long total, free_kib;

	boot("{\"amount_mib\": 0, \"deflate_on_oom\": true, \"free_page_reporting\": true}",
	     "kt-balloon,touch,600");
	/* VmRSS right after the touch: the freed pages are still the host's */
	lg_expect_line(&kp, "kt-balloon: touched ", 300);
	long rss0 = rss_kib();
	const char *at = strstr(kp.out, "kt-balloon: touched ");
	long touched = strtol(at + strlen("kt-balloon: touched "), NULL, 10);
	long rss1 = rss0;
	/* Linux reports free 2 MiB blocks 2 s after they gather (mm/page_reporting.c) */
	for (int i = 0; i < kh_scaled_ms(60000) / 250 && rss0 - rss1 < touched * 1024 / 2; i++) {
		kh_wait_for(&kp, "\x01", 250);
		rss1 = rss_kib();
	}
	next_mem(&total, &free_kib, 30); /* the guest still runs */
	cr_log_info("reporting: touched %ld MiB, VmRSS %ld -> %ld KiB", touched, rss0, rss1);
	cr_assert_geq(rss0 - rss1, touched * 1024 / 2, "VmRSS %ld -> %ld KiB after %ld MiB freed",
	              rss0, rss1, touched);
}

Test(linux_balloon, deflate_on_oom_gives_pages_back_to_the_guest)
{
	boot("{\"amount_mib\": 0, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 1}",
	     "kt-balloon,oom,128,150");
	lg_expect_line(&kp, "kt-balloon: mem ", 300);
	call_ok("PATCH", "/balloon", "{\"amount_mib\": 160}");
	lg_expect_line(&kp, "kt-balloon: balloon took ", 180);
	lg_expect_line(&kp, "kt-balloon: allocated 150 MiB", 300);
	long long actual = stat_of("actual_mib");
	cr_log_info("deflate on OOM: actual_mib %lld of a 160 MiB target after the guest took "
	            "150 MiB",
	            actual);
	cr_assert_lt(actual, 160, "the balloon kept %lld MiB", actual);
	lg_expect_line(&kp, "kiln-rootfs: exit 0", 120);
}
