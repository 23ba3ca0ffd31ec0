// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: virtio-rng (virtio/rng.c) driven by the hostile driver
 * of fz_dev.c, getrandom(2) behind it. Variant bit 0 puts a small
 * bandwidth and ops limiter in front, so throttled requests and the
 * limiter's timer are fuzzed too.
 */
#include "tests/fuzz/fz_dev.h"
#include "virtio/rng.h"

static struct virtio_dev *rng_create(struct fz *f)
{
	static const struct rl_bucket_cfg bw = {.size = 4096, .refill_time_ms = 5},
	                                  ops = {.size = 4, .refill_time_ms = 5};
	struct virtio_rng *r;
	struct errbuf e = {{0}};
	bool rl = f->variant & 1;
	if (virtio_rng_create(&r, "rng", rl ? &bw : NULL, rl ? &ops : NULL, NULL, &e) < 0)
		return NULL;
	f->obj = r;
	return virtio_rng_dev(r);
}

static void rng_destroy(struct fz *f)
{
	virtio_rng_destroy(f->obj);
}

static const struct fz_kind rng_kind = {
        .name = "rng",
        .create = rng_create,
        .destroy = rng_destroy,
};

FZ_DEV_TARGET(rng_kind)
