// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_rng.c: virtio-rng judged by Linux's own
 * driver. kiln boots tests/linux's image (tests/linux/README.md) with an
 * entropy device; the image's /init runs kt-rng (tests/linux/progs), which
 * reports the hardware RNG Linux picked and times a read of READ_BYTES
 * from /dev/hwrng.
 *   - without a rate limiter: Linux's current hwrng is virtio_rng.0 (the
 *     device of kiln's DSDT, bound by the virtio_rng module), and the read
 *     completes;
 *   - with a bandwidth limiter of BUCKET bytes refilled every REFILL_MS,
 *     the same read takes at least (READ_BYTES - BUCKET) / BUCKET refills
 *     (less a tenth, see MIN_MS): a lower bound, which a slow CPU cannot
 *     make pass by accident. Linux's
 *     own hwrng thread may draw from the same bucket; that only makes the
 *     read slower.
 * Both times are logged (criterion's info level).
 */
#include "linux_guest.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM_MIB    256
#define READ_BYTES 16384
#define BUCKET     4096
#define REFILL_MS  1000
/*
 * The bucket starts full, so the rest needs (READ_BYTES - BUCKET) / BUCKET
 * refills: 3000 ms (measured in the test bed: 3005 ms; 234 ms without the
 * limiter). The bound keeps a tenth of that for the guest's clock against
 * the host's.
 */
#define MIN_MS ((READ_BYTES - BUCKET) / BUCKET * REFILL_MS * 9 / 10)

static struct kproc kp;
static char disk[64];

static void teardown(void)
{
	lg_cleanup(&kp, disk);
}

TestSuite(linux_rng, .fini = teardown, .timeout = 540);

/* boots with `entropy` as the entropy device's configuration: the read's time in ms */
static unsigned long long read_hwrng(const char *entropy)
{
	char *run_arg = kh_fmt("kt-rng,%d", READ_BYTES);
	char *extra = kh_fmt(", \"entropy\": %s", entropy);
	lg_spawn(&kp, MEM_MIB, lg_copy_rootfs(disk), false, run_arg, "", extra, NULL);
	free(run_arg);
	free(extra);
	char *done = kh_fmt("kt-rng: read=%d done", READ_BYTES);
	lg_expect_run(&kp, "rw", done, 0);
	free(done);
	cr_assert(strstr(kp.out, "kt-rng: current=virtio_rng.0"),
	          "Linux did not pick virtio_rng as its hwrng; kiln printed:\n%s", kp.out);
	const char *at = strstr(kp.out, "kt-rng: took ");
	cr_assert_not_null(at);
	return strtoull(at + strlen("kt-rng: took "), NULL, 10);
}

Test(linux_rng, linux_picks_virtio_rng_and_reads_it)
{
	unsigned long long ms = read_hwrng("{}");
	cr_log_info("no limiter: %d bytes from /dev/hwrng in %llu ms", READ_BYTES, ms);
}

Test(linux_rng, the_limiter_caps_what_linux_reads)
{
	char *cfg =
	        kh_fmt("{\"rate_limiter\": {\"bandwidth\": {\"size\": %d, \"refill_time\": %d}}}",
	               BUCKET, REFILL_MS);
	unsigned long long ms = read_hwrng(cfg);
	free(cfg);
	cr_log_info("limited to %d bytes per %d ms: %d bytes in %llu ms", BUCKET, REFILL_MS,
	            READ_BYTES, ms);
	cr_assert_geq(ms, MIN_MS, "%d bytes took %llu ms under a limiter of %d bytes per %d ms",
	              READ_BYTES, ms, BUCKET, REFILL_MS);
}
