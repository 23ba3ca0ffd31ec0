// SPDX-License-Identifier: Apache-2.0
/*
 * rng: reads rng.bytes (default 16384) of entropy from the first
 * virtio-rng device twice and checks that every 4 KiB chunk holds
 * something other than zeros and that no two chunks are equal. Prints
 * "rng: <N> bytes ok", or "rng: FAILED ..." and exits with 1.
 */
#include "rt/virtio_drv.h"

#define CHUNK      4096
#define TIMEOUT_US 5000000

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* 0 when every chunk of buf is non-zero and differs from every other */
static int check(const uint8_t *buf, size_t len, size_t *bad)
{
	for (size_t a = 0; a < len; a += CHUNK) {
		size_t la = len - a < CHUNK ? len - a : CHUNK;
		*bad = a;
		if (la >= 8 && all_zero(buf + a, la))
			return -KRT_EINVAL;
		for (size_t b = a + CHUNK; b < len; b += CHUNK) {
			size_t lb = len - b < CHUNK ? len - b : CHUNK;
			if (la == lb && la >= 8 && memcmp(buf + a, buf + b, la) == 0)
				return -KRT_EINVAL;
		}
	}
	return 0;
}

int main(void)
{
	static struct vrng r;
	size_t len = krt_param_u64("rng.bytes", 16384);

	if (len == 0 || len > KRT_MIB(64)) {
		krt_printf("rng: FAILED: rng.bytes=%lu is not in 1..64 MiB\n", len);
		return 1;
	}
	uint8_t *buf = krt_alloc_pages(2 * ((len + KRT_PAGE_SIZE - 1) / KRT_PAGE_SIZE), 4096);
	int ret = vrng_open(&r, 0);
	if (!buf || ret < 0) {
		krt_printf("rng: FAILED: no device (%d)\n", buf ? ret : -KRT_ENOMEM);
		virtio_print_devices();
		return 1;
	}
	krt_printf("rng: device at 0x%lx, queue size %u, features 0x%lx\n", r.dev.base, r.vq.size,
	           r.dev.features);
	uint64_t t0 = krt_rdtsc();
	for (int round = 0; round < 2; round++) {
		long got = vrng_read(&r, buf + (size_t)round * len, len, TIMEOUT_US);
		if (got != (long)len) {
			krt_printf("rng: FAILED: read %ld of %lu bytes\n", got, len);
			return 1;
		}
	}
	uint64_t us = (krt_rdtsc() - t0) * 1000000 / krt_tsc_hz();
	size_t bad;
	if (check(buf, 2 * len, &bad) < 0) {
		krt_printf("rng: FAILED: chunk at %lu is zero or repeats\n", bad);
		return 1;
	}
	krt_printf("rng: %lu bytes in %lu us, %lu notifies\n", 2 * len, us, r.vq.notifies);
	krt_printf("rng: %lu bytes ok\n", 2 * len);
	return 0;
}
