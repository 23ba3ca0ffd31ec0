// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-balloon end to end, through the API: kiln boots the `balloon`
 * test guest (tests/guests/balloon.c), which writes to 32 MiB and then
 * follows the balloon's target. PATCH /balloon to 24 MiB: the guest
 * inflates 6144 pages and kiln's resident memory (VmRSS) falls by at
 * least 20 MiB; GET /balloon/statistics shows the target and the actual
 * size the guest wrote; PATCH back to 0: the guest deflates and finds every
 * page it takes back zeroed. Also the API's rules: PUT only before boot,
 * the PATCHes and GETs of a running balloon only after, a target beyond
 * guest memory refused, hinting refused when not enabled, and the balloon
 * in GET /vm/config.
 */
#include "api_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(balloon, .init = api_test_init, .fini = api_test_cleanup, .timeout = 180);

/* VmRSS of kiln, in KiB */
static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static long stat_of(const char *key)
{
	json_t *s = call("GET", "/balloon/statistics", NULL, 200);
	long v = (long)json_integer_value(json_object_get(s, key));
	json_decref(s);
	return v;
}

static void boot(const char *balloon)
{
	start_kiln(&kp);
	char *src = kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"" KH_GUEST_ARGS "\"}",
	                   kh_guest("balloon"));
	call_ok("PUT", "/boot-source", src);
	free(src);
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	call_ok("PUT", "/balloon", balloon);
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
}

Test(balloon, inflate_gives_memory_back_and_deflate_returns_it)
{
	boot("{\"amount_mib\": 0, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 1}");
	cr_assert(kh_wait_for(&kp, "balloon: touched 8192 pages", kh_scaled_ms(30000)), "%s",
	          kp.out);
	long before = rss_kib(kp.pid);
	call_ok("PATCH", "/balloon", "{\"amount_mib\": 24}");
	cr_assert(kh_wait_for(&kp, "balloon: inflated 6144 pages", kh_scaled_ms(30000)), "%s",
	          kp.out);
	long after = rss_kib(kp.pid);
	cr_assert_geq(before - after, 20 * 1024, "VmRSS %ld -> %ld KiB", before, after);
	cr_assert_eq(stat_of("target_pages"), 6144);
	cr_assert_eq(stat_of("target_mib"), 24);
	for (int i = 0; i < 100 && stat_of("actual_pages") != 6144; i++)
		usleep(20000);
	cr_assert_eq(stat_of("actual_mib"), 24);
	json_t *b = call("GET", "/balloon", NULL, 200);
	cr_assert_eq(json_integer_value(json_object_get(b, "amount_mib")), 24);
	json_decref(b);
	call_ok("PATCH", "/balloon", "{\"amount_mib\": 0}");
	cr_assert(kh_wait_for(&kp, "balloon: done", kh_scaled_ms(30000)), "%s", kp.out);
	cr_assert(strstr(kp.out, "balloon: deflated to 0 pages, zero ok"), "%s", kp.out);
}

Test(balloon, api_rules)
{
	start_kiln(&kp);
	call_fault("GET", "/balloon", NULL, 400, "No balloon device found.");
	call_fault("PATCH", "/balloon", "{\"amount_mib\": 1}", 400, PRE_BOOT);
	call_fault("GET", "/balloon/statistics", NULL, 400, PRE_BOOT);
	call_fault("PUT", "/balloon", "{\"amount_mib\": 1}", 400, "deflate_on_oom");
	call_fault("PUT", "/balloon", "{\"amount_mib\": 1, \"deflate_on_oom\": false, \"x\": 1}",
	           400, "x");
	call_fault("PUT", "/balloon", "{\"amount_mib\": 100000, \"deflate_on_oom\": false}", 400,
	           "too large");
	kh_kill(&kp);
	boot("{\"amount_mib\": 1, \"deflate_on_oom\": false}");
	json_t *c = call("GET", "/vm/config", NULL, 200);
	json_t *b = json_object_get(c, "balloon");
	cr_assert_eq(json_integer_value(json_object_get(b, "amount_mib")), 1);
	cr_assert(json_is_false(json_object_get(b, "free_page_hinting")));
	json_decref(c);
	call_fault("PUT", "/balloon", "{\"amount_mib\": 1, \"deflate_on_oom\": false}", 400,
	           POST_BOOT);
	call_fault("PATCH", "/balloon", "{\"amount_mib\": 65}", 400, "larger than guest memory");
	call_fault("GET", "/balloon/statistics", NULL, 400, "not enabled");
	call_fault("PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 2}", 400,
	           "enabled/disabled");
	call_fault("PATCH", "/balloon/hinting/start", NULL, 400, "not enabled");
	call_fault("GET", "/balloon/hinting/status", NULL, 400, "not enabled");
	call_fault("PATCH", "/balloon/hinting/stop", "{}", 400, "not enabled");
	call_ok("PATCH", "/balloon", "{\"amount_mib\": 2}");
}

Test(balloon, hinting_endpoints)
{
	boot("{\"amount_mib\": 0, \"deflate_on_oom\": false, \"free_page_hinting\": true}");
	json_t *h = call("GET", "/balloon/hinting/status", NULL, 200);
	cr_assert_eq(json_integer_value(json_object_get(h, "host_cmd")), 0);
	cr_assert(json_is_null(json_object_get(h, "guest_cmd")));
	json_decref(h);
	call_ok("PATCH", "/balloon/hinting/start", NULL);
	h = call("GET", "/balloon/hinting/status", NULL, 200);
	cr_assert_eq(json_integer_value(json_object_get(h, "host_cmd")), 2);
	json_decref(h);
	call_ok("PATCH", "/balloon/hinting/start", "{\"acknowledge_on_stop\": false}");
	call_ok("PATCH", "/balloon/hinting/stop", NULL);
	h = call("GET", "/balloon/hinting/status", NULL, 200);
	cr_assert_eq(json_integer_value(json_object_get(h, "host_cmd")), 1);
	json_decref(h);
}
