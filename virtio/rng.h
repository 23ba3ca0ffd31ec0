/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/rng: the entropy device (virtio 1.2 s5.4, device id 4), as
 * Firecracker's PUT /entropy: one request queue whose device-writable
 * buffers are filled from getrandom(2), rate-limited by a bandwidth bucket
 * (bytes handed out) and an ops bucket (requests).
 *
 * Use: virtio_rng_create(), then virtio_mmio_create() on virtio_rng_dev();
 * at the end virtio_mmio_destroy() first, virtio_rng_destroy() last.
 */
#ifndef KILN_VIRTIO_RNG_H
#define KILN_VIRTIO_RNG_H

#include "virtio/rate_limiter.h"
#include "virtio/virtio.h"

/* Firecracker's entropy queue size */
#define VIRTIO_RNG_QUEUE_SIZE 256
/* bytes given per request at most; s5.4.6 lets the device use less than the buffer */
#define VIRTIO_RNG_MAX_REQ KIB(64)

struct virtio_rng;

/* counters, for the metrics sink; updated by the I/O thread, read from any */
struct virtio_rng_metrics {
	uint64_t requests;      /* requests completed */
	uint64_t bytes;         /* random bytes written to the guest */
	uint64_t throttled;     /* times the rate limiter held a request back */
	uint64_t host_rng_fail; /* getrandom failures (the request got 0 bytes) */
};

/*
 * Creates the device `id` ([A-Za-z0-9_], at most VIRTIO_ID_MAX chars) with
 * an optional rate limiter (NULL or size/refill 0: no such bucket). `clock`
 * is for tests (NULL: CLOCK_MONOTONIC). 0 / -errno with a message. VMM thread.
 */
int virtio_rng_create(struct virtio_rng **out, const char *id, const struct rl_bucket_cfg *bw,
                      const struct rl_bucket_cfg *ops, const struct rl_clock *clock,
                      struct errbuf *e);

/* the virtio device to hand to virtio_mmio_create() */
struct virtio_dev *virtio_rng_dev(struct virtio_rng *r);

/* the rate limiter's settings for GET /vm/config */
void virtio_rng_limiter_cfg(const struct virtio_rng *r, struct rl_bucket_cfg *bw,
                            struct rl_bucket_cfg *ops);

void virtio_rng_metrics(const struct virtio_rng *r, struct virtio_rng_metrics *out);

/* frees the device; its transport must be destroyed already. Safe on NULL. */
void virtio_rng_destroy(struct virtio_rng *r);

#endif
