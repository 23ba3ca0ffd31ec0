// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-rng end to end: kiln boots the `rng` test guest (tests/guests/
 * rng.c) with an entropy device (PUT /entropy, here from the config file);
 * the guest reads rng.bytes twice and checks that no 4 KiB chunk is zero
 * or repeats ("rng: N bytes ok"). With a bandwidth rate limiter the guest's
 * own timing line ("rng: N bytes in U us") must show at least the time the
 * token bucket implies: a full bucket of `size` bytes first, then `size`
 * bytes per `refill_time` ms (Firecracker's TokenBucket semantics).
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct kproc kp;

static void teardown(void)
{
	if (kp.pid && kp.out)
		cr_expect(!strstr(kp.out, "Sanitizer") && !strstr(kp.out, "runtime error"),
		          "kiln reported a sanitizer error:\n%s", kp.out);
	kh_kill(&kp);
}

TestSuite(rng, .fini = teardown, .timeout = 120);

/* boots the rng guest with `entropy` (a JSON object) and `args`; expects exit 0 */
static const char *boot_rng(const char *entropy, const char *args)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	                   "\"" KH_GUEST_ARGS " %s\"}, \"machine-config\": {\"vcpu_count\": 1, "
	                   "\"mem_size_mib\": 128}, \"entropy\": %s}",
	                   kh_guest("rng"), args, entropy);
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	int st = kh_wait_exit(&kp, 90000);
	cr_assert_eq(st, 0, "kiln exited with %d; output:\n%s", st, kp.out);
	cr_assert(!strstr(kp.out, "FAILED"), "%s", kp.out);
	return kp.out;
}

static void expect(const char *out, const char *needle)
{
	cr_assert(strstr(out, needle) != NULL, "missing \"%s\" in output:\n%s", needle, out);
}

/* the guest's "rng: N bytes in U us" for N = `bytes`: U */
static unsigned long long guest_us(const char *out, unsigned long long bytes)
{
	char *key = kh_fmt("rng: %llu bytes in ", bytes);
	const char *p = strstr(out, key);
	cr_assert(p, "missing \"%s\" in output:\n%s", key, out);
	unsigned long long us = strtoull(p + strlen(key), NULL, 10);
	free(key);
	return us;
}

Test(rng, entropy_device)
{
	const char *out = boot_rng("{}", "");
	expect(out, "rng: device at 0xd0000000");
	expect(out, "rng: 32768 bytes ok");
}

Test(rng, large_read_small_queue)
{
	/* 4 MiB twice through a queue of 8: many refills of the ring */
	const char *out = boot_rng("{}", "rng.bytes=4194304 virtio.qsize=8");
	expect(out, "queue size 8");
	expect(out, "rng: 8388608 bytes ok");
}

Test(rng, without_indirect_and_event_idx)
{
	const char *out = boot_rng("{}", "rng.bytes=65536 virtio.indirect=0 virtio.event_idx=0");
	expect(out, "rng: 131072 bytes ok");
}

Test(rng, unlimited_is_fast)
{
	/* 1 MiB read twice; no limiter: far below the limited test's second */
	const char *out = boot_rng("{\"rate_limiter\": null}", "rng.bytes=1048576");
	expect(out, "rng: 2097152 bytes ok");
	cr_expect_lt(guest_us(out, 2097152), 1000000, "%s", out);
}

/*
 * size 32 KiB per 250 ms = 128 KiB/s. The guest reads 2 x 64 KiB = 128 KiB:
 * the first 32 KiB from the full bucket, the other 96 KiB need three
 * refills, so at least 750 ms (and, refills being continuous, not much
 * more: under 3 s even on a slow host).
 */
Test(rng, bandwidth_limited)
{
	const char *out = boot_rng("{\"rate_limiter\": {\"bandwidth\": {\"size\": 32768, "
	                           "\"refill_time\": 250}}}",
	                           "rng.bytes=65536");
	expect(out, "rng: 131072 bytes ok");
	unsigned long long us = guest_us(out, 131072);
	cr_expect_geq(us, 750000 - 20000,
	              "the bucket allows 131072 bytes in >= 750 ms, took %llu us", us);
	cr_expect_lt(us, 3000000, "took %llu us:\n%s", us, out);
}

/* a one-time burst on top: 64 KiB burst + 32 KiB bucket, then 96 KiB per s */
Test(rng, bandwidth_with_one_time_burst)
{
	const char *out = boot_rng("{\"rate_limiter\": {\"bandwidth\": {\"size\": 32768, "
	                           "\"one_time_burst\": 65536, \"refill_time\": 1000}}}",
	                           "rng.bytes=65536");
	expect(out, "rng: 131072 bytes ok");
	/* 131072 - 65536 - 32768 = 32768 bytes at 32 KiB/s: 1 s */
	unsigned long long us = guest_us(out, 131072);
	cr_expect_geq(us, 1000000 - 20000, "took %llu us", us);
	cr_expect_lt(us, 4000000, "took %llu us:\n%s", us, out);
}

/* an ops limiter: 4 requests per 200 ms; each 4 KiB buffer is one request */
Test(rng, ops_limited)
{
	const char *out = boot_rng("{\"rate_limiter\": {\"ops\": {\"size\": 4, \"refill_time\": "
	                           "200}}}",
	                           "rng.bytes=32768");
	expect(out, "rng: 65536 bytes ok");
	unsigned long long us = guest_us(out, 65536);
	/* 16 buffers of 4 KiB at most; 4 from the bucket, 12 more in >= 600 ms */
	cr_expect_geq(us, 600000 - 20000, "took %llu us", us);
}
