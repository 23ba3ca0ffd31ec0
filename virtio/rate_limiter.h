/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/rate_limiter: Firecracker's rate limiter -- two optional token
 * buckets, bandwidth (bytes) and ops (requests), per device or per direction.
 *
 * A bucket holds up to `size` tokens and starts full. It refills at
 * size / refill_time_ms tokens per ms, computed exactly: the fraction of a
 * token earned between two updates is kept, so no token is lost to rounding
 * however often the bucket is read. `one_time_burst` is an extra budget that
 * is spent before the bucket and never refilled.
 *
 * Semantics follow Firecracker's src/vmm/src/rate_limiter/mod.rs, with the
 * differences marked "kiln:" below:
 * - A request that fits is taken at once. One that does not fit fails, takes
 *   nothing, and blocks the limiter: its timerfd is armed and every consume
 *   fails until the device calls rl_timer_expired() and retries.
 *   kiln: the timer is armed for the exact time until the request fits
 *   (Firecracker uses a fixed 100 ms).
 * - A request larger than `size` (after the burst) can never fit, so it is
 *   let through at once ("over-consumption"): it empties the bucket and
 *   blocks the limiter for the time the bucket needs to refill the excess,
 *   excess * refill_time / size.
 *   kiln: the bucket does not refill while that debt is paid, so the long-run
 *   rate stays size / refill_time (Firecracker refills during the block).
 * - The bucket is refilled on every consume. kiln: Firecracker refills only
 *   when the budget runs short, which credits time the bucket spent full.
 * - rl_replenish() gives tokens back (to the burst while any is left, capped
 *   at the configured burst; else to the budget, capped at size).
 * - rl_update() replaces a bucket: the new one starts full with its whole
 *   burst, as Firecracker's update_buckets(). A block in progress runs out.
 * - A bucket with size 0 or refill_time 0 is no bucket (no limit).
 * - kiln: rl_consume_both() takes a request's bytes and op together or not
 *   at all (Firecracker's devices take the op, then the bytes, and give the
 *   op back when the bytes fail).
 *
 * Threads: a limiter belongs to one device thread; nothing here locks. A
 * PATCH from the API must reach it through that thread.
 */
#ifndef KILN_VIRTIO_RATE_LIMITER_H
#define KILN_VIRTIO_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

struct state_writer;
struct state_reader;

/* where the limiter reads the time; NULL in rl_init means CLOCK_MONOTONIC */
struct rl_clock {
	uint64_t (*now_ns)(void *opaque);
	void *opaque;
};

enum rl_token_type { RL_BYTES = 0, RL_OPS = 1 };

/* one bucket's settings, as the API's TokenBucket; size or refill 0: none */
struct rl_bucket_cfg {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

/* refill_time_ms above this overflows nanoseconds in 64 bits */
#define RL_REFILL_MS_MAX (UINT64_MAX / 1000000u)

struct token_bucket {
	uint64_t size;          /* capacity in tokens, > 0 */
	uint64_t refill_ns;     /* time to refill from empty to full, > 0 */
	uint64_t initial_burst; /* one_time_burst as configured */
	uint64_t burst;         /* one_time_burst left */
	uint64_t budget;        /* tokens available, <= size */
	uint64_t rem;           /* fraction of a token earned: rem / refill_ns, < refill_ns */
	uint64_t last_ns;       /* refill credited up to here; in the future while in debt */
};

struct rate_limiter {
	bool active; /* a bucket exists or a block is pending: the one hot-path test */
	bool has[2]; /* indexed by enum rl_token_type */
	struct token_bucket tb[2];
	bool blocked;        /* consumes fail until rl_timer_expired() */
	uint64_t unblock_ns; /* clock time the block ends */
	int timer_fd;        /* CLOCK_MONOTONIC timerfd, non-blocking; always open */
	struct rl_clock clock;
};

/*
 * Sets up `rl` with the given buckets (NULL or size/refill 0: none) and opens
 * its timerfd even when there is no bucket, so a later rl_update() needs no
 * new file descriptor (a seccomp filter may forbid it by then). `clock` is
 * copied; NULL reads CLOCK_MONOTONIC, which the timerfd also uses.
 * 0 / -EINVAL (refill_time too large) / -errno of timerfd_create.
 */
int rl_init(struct rate_limiter *rl, const struct rl_bucket_cfg *bw,
            const struct rl_bucket_cfg *ops, const struct rl_clock *clock, struct errbuf *e);
/* closes the timerfd; `rl` may then be initialised again */
void rl_destroy(struct rate_limiter *rl);

bool rl_consume_slow(struct rate_limiter *rl, uint64_t bytes, uint64_t ops);

/*
 * Takes `tokens` of `type`: true when the request may go ahead (tokens
 * removed), false when the device must wait for the timerfd (nothing removed,
 * limiter blocked). A type without a bucket always passes unless the limiter
 * is blocked. A limiter without buckets costs one branch.
 */
static inline bool rl_consume(struct rate_limiter *rl, uint64_t tokens, enum rl_token_type type)
{
	if (!rl->active)
		return true;
	return type == RL_OPS ? rl_consume_slow(rl, 0, tokens) : rl_consume_slow(rl, tokens, 0);
}

/*
 * One request of `bytes` bytes and `ops` operations: passes only when both
 * buckets pass, and then takes from both; otherwise takes from neither.
 */
static inline bool rl_consume_both(struct rate_limiter *rl, uint64_t bytes, uint64_t ops)
{
	if (!rl->active)
		return true;
	return rl_consume_slow(rl, bytes, ops);
}

/* gives back tokens of a request that could not be completed */
void rl_replenish(struct rate_limiter *rl, uint64_t tokens, enum rl_token_type type);

/*
 * Nanoseconds until rl_consume(tokens, type) would pass: 0 if it would pass
 * now, the rest of the block if the limiter is blocked. Changes nothing.
 */
uint64_t rl_wait_ns(const struct rate_limiter *rl, uint64_t tokens, enum rl_token_type type);

/* the limiter is blocked; the device stops taking requests until the timer */
static inline bool rl_is_blocked(const struct rate_limiter *rl)
{
	return rl->blocked;
}

/* the fd to poll for EPOLLIN; it fires when a block ends */
static inline int rl_timer_fd(const struct rate_limiter *rl)
{
	return rl->timer_fd;
}

/*
 * Call when the timerfd is readable. Clears the expiration and, if the block
 * is over by the limiter's clock, unblocks: 0, the device retries its
 * pending requests. -EAGAIN when the block is not over yet (an early or stale
 * wake-up); the timer is re-armed for the rest. 0 when not blocked at all.
 */
int rl_timer_expired(struct rate_limiter *rl);

/*
 * PATCH: replaces the bandwidth and/or ops bucket; NULL keeps that bucket as
 * it is, size or refill_time 0 removes it. Validates both before changing
 * anything. 0 / -EINVAL with a message.
 */
int rl_update(struct rate_limiter *rl, const struct rl_bucket_cfg *bw,
              const struct rl_bucket_cfg *ops, struct errbuf *e);

/* the bucket's settings (all 0 when there is none), for GET /vm/config */
void rl_get_cfg(const struct rate_limiter *rl, enum rl_token_type type, struct rl_bucket_cfg *out);

/*
 * Snapshot: rl_save appends the buckets and the block to the section the
 * caller (the device's save) has open, led by a u8 layout version
 * (RL_STATE_VERSION), so the device's own version need not change when this
 * layout does. Times are saved relative to now, so the state moves between
 * hosts. rl_restore reads them back from the device's section into an
 * initialised limiter, checks every field (the file is not trusted) and
 * re-arms a block; it leaves the reader after its fields. 0 / -EINVAL with a
 * message, the limiter unchanged.
 */
#define RL_STATE_VERSION 1
void rl_save(const struct rate_limiter *rl, struct state_writer *w);
int rl_restore(struct rate_limiter *rl, struct state_reader *r, struct errbuf *e);

#endif
