// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/rate_limiter.c: token buckets with exact refill, a timerfd for the
 * block, and snapshot state. The semantics, and where they differ from
 * Firecracker's, are described in rate_limiter.h.
 */
#define LOG_MODULE "virtio"
#include "rate_limiter.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/state.h"

#define NS_PER_MS  1000000ull
#define NS_PER_SEC 1000000000ull
/* longest block; keeps now + delay far from overflow (about 146 years) */
#define RL_DELAY_MAX (UINT64_MAX / 4)

typedef unsigned __int128 u128;

static uint64_t rl_now(const struct rate_limiter *rl)
{
	return rl->clock.now_ns ? rl->clock.now_ns(rl->clock.opaque) : now_ns();
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ------------------------------------------------------------ one bucket */

/* 1: a bucket, 0: no limit, -EINVAL: refill_time would overflow */
static int bucket_cfg_check(const struct rl_bucket_cfg *c, const char *name, struct errbuf *e)
{
	if (!c || c->size == 0 || c->refill_time_ms == 0)
		return 0;
	if (c->refill_time_ms > RL_REFILL_MS_MAX)
		return errf(e, EINVAL, "%s refill_time %llu ms is too large (at most %llu)", name,
		            (unsigned long long)c->refill_time_ms,
		            (unsigned long long)RL_REFILL_MS_MAX);
	return 1;
}

/* a new bucket starts full, with its whole burst (Firecracker TokenBucket::new) */
static void bucket_init(struct token_bucket *b, const struct rl_bucket_cfg *c, uint64_t now)
{
	b->size = c->size;
	b->refill_ns = c->refill_time_ms * NS_PER_MS;
	b->initial_burst = c->one_time_burst;
	b->burst = c->one_time_burst;
	b->budget = c->size;
	b->rem = 0;
	b->last_ns = now;
}

/*
 * Credits the tokens earned since last_ns: (now - last_ns) * size / refill_ns,
 * the remainder of the division kept in `rem` for the next call, so any
 * number of small steps adds up to exactly the same as one big step.
 */
static void bucket_refill(struct token_bucket *b, uint64_t now)
{
	if (now <= b->last_ns)
		return; /* no time passed, or still paying a debt */
	uint64_t dt = now - b->last_ns;
	b->last_ns = now;
	if (b->budget == b->size || dt >= b->refill_ns) {
		b->budget = b->size;
		b->rem = 0;
		return;
	}
	/* dt < refill_ns and rem < refill_ns: fits in 128 bits */
	u128 num = (u128)dt * b->size + b->rem;
	u128 add = num / b->refill_ns;
	b->rem = (uint64_t)(num % b->refill_ns);
	if (add >= b->size - b->budget) {
		b->budget = b->size;
		b->rem = 0;
	} else {
		b->budget += (uint64_t)add;
	}
}

/* the request passes now: burst + budget cover it, or it is too big ever to fit */
static bool bucket_can(const struct token_bucket *b, uint64_t tokens)
{
	if (tokens <= b->burst)
		return true;
	tokens -= b->burst;
	return tokens <= b->budget || tokens > b->size;
}

/* ns until bucket_can(tokens), for a bucket refilled up to `now` */
static uint64_t bucket_wait(const struct token_bucket *b, uint64_t tokens, uint64_t now)
{
	if (bucket_can(b, tokens))
		return 0;
	uint64_t missing = tokens - b->burst - b->budget; /* 1 .. size */
	/* smallest dt with dt * size + rem >= missing * refill_ns */
	u128 num = (u128)missing * b->refill_ns - b->rem;
	uint64_t wait = (uint64_t)((num + b->size - 1) / b->size);
	if (b->last_ns > now)
		wait = add_sat(wait, b->last_ns - now);
	return wait;
}

/*
 * Takes a request that bucket_can() accepted. Returns 0, or for a request
 * larger than the bucket the ns the limiter must block: Firecracker's
 * OverConsumption, excess / size * refill_time. The bucket earns nothing
 * until then (last_ns moves into the future).
 */
static uint64_t bucket_take(struct token_bucket *b, uint64_t tokens, uint64_t now)
{
	if (tokens <= b->burst) {
		b->burst -= tokens;
		return 0;
	}
	tokens -= b->burst;
	b->burst = 0;
	if (tokens <= b->budget) {
		b->budget -= tokens;
		return 0;
	}
	u128 excess = tokens - b->budget;
	u128 debt = (excess * b->refill_ns + b->size - 1) / b->size;
	b->budget = 0;
	b->rem = 0;
	b->last_ns = add_sat(max_u64(b->last_ns, now),
	                     debt > RL_DELAY_MAX ? RL_DELAY_MAX : (uint64_t)debt);
	return b->last_ns - now;
}

/* ----------------------------------------------------------- the limiter */

static void rl_set_active(struct rate_limiter *rl)
{
	rl->active = rl->has[RL_BYTES] || rl->has[RL_OPS] || rl->blocked;
}

static int rl_arm(struct rate_limiter *rl, uint64_t delay_ns)
{
	struct itimerspec its = {0};
	its.it_value.tv_sec = (time_t)(delay_ns / NS_PER_SEC);
	its.it_value.tv_nsec = (long)(delay_ns % NS_PER_SEC);
	if (delay_ns == 0)
		its.it_value.tv_nsec = 1; /* an all-zero it_value would disarm */
	if (timerfd_settime(rl->timer_fd, 0, &its, NULL) < 0) {
		int err = errno;
		log_err("rate limiter: cannot arm timerfd %d: %s", rl->timer_fd, strerror(err));
		return -err;
	}
	return 0;
}

static void rl_disarm(struct rate_limiter *rl)
{
	struct itimerspec its = {0};
	timerfd_settime(rl->timer_fd, 0, &its, NULL);
}

/* blocks every consume for delay_ns; without a working timer it does not block */
static void rl_block(struct rate_limiter *rl, uint64_t now, uint64_t delay_ns)
{
	delay_ns = min_u64(delay_ns, RL_DELAY_MAX);
	if (rl_arm(rl, delay_ns) < 0)
		return;
	rl->blocked = true;
	rl->unblock_ns = now + delay_ns;
	rl->active = true;
}

int rl_init(struct rate_limiter *rl, const struct rl_bucket_cfg *bw,
            const struct rl_bucket_cfg *ops, const struct rl_clock *clock, struct errbuf *e)
{
	memset(rl, 0, sizeof(*rl));
	rl->timer_fd = -1;
	int has_bw = bucket_cfg_check(bw, "bandwidth", e);
	if (has_bw < 0)
		return has_bw;
	int has_ops = bucket_cfg_check(ops, "ops", e);
	if (has_ops < 0)
		return has_ops;
	if (clock)
		rl->clock = *clock;

	rl->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (rl->timer_fd < 0)
		return errf(e, errno, "rate limiter: timerfd_create: %s", strerror(errno));

	uint64_t now = rl_now(rl);
	if (has_bw)
		bucket_init(&rl->tb[RL_BYTES], bw, now);
	if (has_ops)
		bucket_init(&rl->tb[RL_OPS], ops, now);
	rl->has[RL_BYTES] = has_bw;
	rl->has[RL_OPS] = has_ops;
	rl_set_active(rl);
	return 0;
}

void rl_destroy(struct rate_limiter *rl)
{
	if (rl->timer_fd >= 0)
		close(rl->timer_fd);
	rl->timer_fd = -1;
	rl->active = rl->blocked = false;
	rl->has[RL_BYTES] = rl->has[RL_OPS] = false;
}

bool rl_consume_slow(struct rate_limiter *rl, uint64_t bytes, uint64_t ops)
{
	if (rl->blocked)
		return false;
	if (!(rl->has[RL_BYTES] && bytes) && !(rl->has[RL_OPS] && ops))
		return true; /* no bucket for what is asked: not even a clock read */
	const uint64_t want[2] = {[RL_BYTES] = bytes, [RL_OPS] = ops};
	uint64_t now = rl_now(rl);
	uint64_t wait = 0;
	for (int i = 0; i < 2; i++) {
		if (!rl->has[i] || !want[i])
			continue;
		bucket_refill(&rl->tb[i], now);
		wait = max_u64(wait, bucket_wait(&rl->tb[i], want[i], now));
	}
	if (wait) {
		rl_block(rl, now, wait);
		return false;
	}
	uint64_t debt = 0;
	for (int i = 0; i < 2; i++)
		if (rl->has[i] && want[i])
			debt = max_u64(debt, bucket_take(&rl->tb[i], want[i], now));
	if (debt)
		rl_block(rl, now, debt);
	return true;
}

/* Firecracker's force_replenish: to the burst while any is left, else the budget */
void rl_replenish(struct rate_limiter *rl, uint64_t tokens, enum rl_token_type type)
{
	if ((unsigned)type > RL_OPS || !rl->has[type])
		return;
	struct token_bucket *b = &rl->tb[type];
	if (b->burst > 0)
		b->burst = min_u64(add_sat(b->burst, tokens), b->initial_burst);
	else
		b->budget = min_u64(add_sat(b->budget, tokens), b->size);
}

uint64_t rl_wait_ns(const struct rate_limiter *rl, uint64_t tokens, enum rl_token_type type)
{
	if (!rl->active || (unsigned)type > RL_OPS)
		return 0;
	uint64_t now = rl_now(rl);
	uint64_t wait = 0;
	if (rl->blocked && rl->unblock_ns > now)
		wait = rl->unblock_ns - now;
	if (rl->has[type] && tokens) {
		struct token_bucket b = rl->tb[type];
		bucket_refill(&b, now);
		wait = max_u64(wait, bucket_wait(&b, tokens, now));
	}
	return wait;
}

int rl_timer_expired(struct rate_limiter *rl)
{
	uint64_t expirations;
	bool fired = read(rl->timer_fd, &expirations, sizeof(expirations)) == sizeof(expirations);
	if (!rl->blocked)
		return 0;
	uint64_t now = rl_now(rl);
	if (now < rl->unblock_ns) {
		rl_arm(rl, rl->unblock_ns - now);
		return -EAGAIN;
	}
	if (!fired)
		rl_disarm(rl); /* the clock ran ahead of the timer: no stale wake-up later */
	rl->blocked = false;
	rl_set_active(rl);
	return 0;
}

int rl_update(struct rate_limiter *rl, const struct rl_bucket_cfg *bw,
              const struct rl_bucket_cfg *ops, struct errbuf *e)
{
	int has_bw = bucket_cfg_check(bw, "bandwidth", e);
	if (has_bw < 0)
		return has_bw;
	int has_ops = bucket_cfg_check(ops, "ops", e);
	if (has_ops < 0)
		return has_ops;

	uint64_t now = rl_now(rl);
	const struct rl_bucket_cfg *cfg[2] = {[RL_BYTES] = bw, [RL_OPS] = ops};
	const int has[2] = {[RL_BYTES] = has_bw, [RL_OPS] = has_ops};
	for (int i = 0; i < 2; i++) {
		if (!cfg[i])
			continue;
		if (has[i])
			bucket_init(&rl->tb[i], cfg[i], now);
		rl->has[i] = has[i];
	}
	rl_set_active(rl);
	return 0;
}

void rl_get_cfg(const struct rate_limiter *rl, enum rl_token_type type, struct rl_bucket_cfg *out)
{
	memset(out, 0, sizeof(*out));
	if ((unsigned)type > RL_OPS || !rl->has[type])
		return;
	const struct token_bucket *b = &rl->tb[type];
	out->size = b->size;
	out->one_time_burst = b->initial_burst;
	out->refill_time_ms = b->refill_ns / NS_PER_MS;
}

/* ------------------------------------------------------------- snapshot */

/*
 * Fields, layout version 1:
 *   u8 version, u8 blocked, u64 block_left_ns,
 *   then for bandwidth and ops: u8 present, u64 size, refill_time_ms,
 *   initial_burst, burst, budget, rem, since_ns (time since last_ns), debt_ns
 *   (time until last_ns); all zero for an absent bucket.
 */
void rl_save(const struct rate_limiter *rl, struct state_writer *w)
{
	uint64_t now = rl_now(rl);
	sw_u8(w, RL_STATE_VERSION);
	sw_u8(w, rl->blocked);
	sw_u64(w, rl->blocked && rl->unblock_ns > now ? rl->unblock_ns - now : 0);
	for (int i = 0; i < 2; i++) {
		const struct token_bucket *b = &rl->tb[i];
		bool has = rl->has[i];
		sw_u8(w, has);
		sw_u64(w, has ? b->size : 0);
		sw_u64(w, has ? b->refill_ns / NS_PER_MS : 0);
		sw_u64(w, has ? b->initial_burst : 0);
		sw_u64(w, has ? b->burst : 0);
		sw_u64(w, has ? b->budget : 0);
		sw_u64(w, has ? b->rem : 0);
		sw_u64(w, has && now > b->last_ns ? now - b->last_ns : 0);
		sw_u64(w, has && b->last_ns > now ? b->last_ns - now : 0);
	}
}

static int bucket_restore(struct token_bucket *b, bool *has, struct state_reader *r,
                          const char *name, uint64_t now, struct errbuf *e)
{
	uint8_t present = sr_u8(r);
	struct rl_bucket_cfg c = {.size = sr_u64(r)};
	c.refill_time_ms = sr_u64(r);
	c.one_time_burst = sr_u64(r);
	uint64_t burst = sr_u64(r), budget = sr_u64(r), rem = sr_u64(r);
	uint64_t since = sr_u64(r), debt = sr_u64(r);
	if (sr_error(r))
		return errf(e, EINVAL, "rate limiter state: %s bucket is truncated", name);
	*has = present;
	if (present > 1)
		return errf(e, EINVAL, "rate limiter state: bad %s present flag %u", name, present);
	if (!present)
		return 0;
	int ret = bucket_cfg_check(&c, name, e);
	if (ret <= 0)
		return ret < 0 ? ret
		               : errf(e, EINVAL, "rate limiter state: %s bucket is empty", name);
	if (budget > c.size || burst > c.one_time_burst || rem >= c.refill_time_ms * NS_PER_MS ||
	    (since && debt) || debt > RL_DELAY_MAX)
		return errf(e, EINVAL, "rate limiter state: inconsistent %s bucket", name);
	bucket_init(b, &c, now);
	b->burst = burst;
	b->budget = budget;
	b->rem = rem;
	b->last_ns = debt ? now + debt : (since < now ? now - since : 0);
	return 0;
}

int rl_restore(struct rate_limiter *rl, struct state_reader *r, struct errbuf *e)
{
	uint8_t version = sr_u8(r);
	if (version != RL_STATE_VERSION)
		return errf(e, EINVAL, "rate limiter state: layout %u not supported (want %u)",
		            version, RL_STATE_VERSION);
	uint64_t now = rl_now(rl);
	uint8_t blocked = sr_u8(r);
	uint64_t left = sr_u64(r);
	struct token_bucket tb[2] = {0};
	bool has[2];
	int ret;
	for (int i = 0; i < 2; i++) {
		ret = bucket_restore(&tb[i], &has[i], r, i == RL_BYTES ? "bandwidth" : "ops", now,
		                     e);
		if (ret < 0)
			return ret;
	}
	if (blocked > 1 || left > RL_DELAY_MAX)
		return errf(e, EINVAL, "rate limiter state: bad block (%u, %llu ns)", blocked,
		            (unsigned long long)left);

	for (int i = 0; i < 2; i++) {
		rl->tb[i] = tb[i];
		rl->has[i] = has[i];
	}
	rl->blocked = false;
	if (blocked)
		rl_block(rl, now, left);
	else
		rl_disarm(rl);
	rl_set_active(rl);
	return 0;
}
