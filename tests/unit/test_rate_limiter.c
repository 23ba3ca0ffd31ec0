// SPDX-License-Identifier: Apache-2.0
/* Unit tests for virtio/rate_limiter: token buckets driven by a fake clock. */
#include "virtio/rate_limiter.h"
#include "common/state.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <sys/timerfd.h>

#define MS  1000000ull
#define SEC 1000000000ull

static uint64_t fake_now;

static uint64_t fake_clock_now(void *opaque)
{
	(void)opaque;
	return fake_now;
}

static const struct rl_clock fake_clock = {.now_ns = fake_clock_now};

static void setup(void)
{
	fake_now = 1000 * SEC;
}

TestSuite(rl, .init = setup);

static void init_rl(struct rate_limiter *rl, const struct rl_bucket_cfg *bw,
                    const struct rl_bucket_cfg *ops)
{
	struct errbuf e = {{0}};
	cr_assert_eq(rl_init(rl, bw, ops, &fake_clock, &e), 0, "%s", e.msg);
}

/* after fake time moved on: handle the timer the way a device does */
static void tick(struct rate_limiter *rl, uint64_t dt)
{
	fake_now += dt;
	if (rl_is_blocked(rl) && fake_now >= rl->unblock_ns)
		cr_assert_eq(rl_timer_expired(rl), 0);
}

/* takes `chunk`-sized requests until one fails; returns what was admitted */
static uint64_t drain(struct rate_limiter *rl, uint64_t chunk, enum rl_token_type type)
{
	uint64_t got = 0;
	while (!rl_is_blocked(rl) && rl_consume(rl, chunk, type))
		got += chunk;
	return got;
}

/* the timerfd's remaining time in ns */
static uint64_t timer_left(const struct rate_limiter *rl)
{
	struct itimerspec its;
	cr_assert_eq(timerfd_gettime(rl_timer_fd(rl), &its), 0);
	return (uint64_t)its.it_value.tv_sec * SEC + (uint64_t)its.it_value.tv_nsec;
}

Test(rl, bandwidth_admits_size_then_exactly_the_refill)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg bw = {.size = 1000, .refill_time_ms = 1000}; /* 1000 B/s */
	init_rl(&rl, &bw, NULL);
	cr_assert_eq(drain(&rl, 10, RL_BYTES), 1000);
	cr_assert(rl_is_blocked(&rl));
	/* the failed 10-byte request blocks the limiter until 10 bytes are there */
	cr_assert_eq(rl.unblock_ns - fake_now, 10 * MS);
	tick(&rl, 10 * MS);
	cr_assert_eq(drain(&rl, 1, RL_BYTES), 10);
	/* a greedy client polled every ms gets exactly 1 byte per ms more */
	uint64_t total = 0;
	for (int ms = 1; ms <= 990; ms++) {
		tick(&rl, MS);
		total += drain(&rl, 1, RL_BYTES);
		cr_assert_eq(total, (uint64_t)ms);
	}
	/* and after a long pause, the bucket is full again but no more */
	tick(&rl, 10 * SEC);
	cr_assert_eq(drain(&rl, 1, RL_BYTES), 1000);
	rl_destroy(&rl);
}

Test(rl, ops_bucket_limits_operations)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg ops = {.size = 10, .refill_time_ms = 100}; /* 100 ops/s */
	init_rl(&rl, NULL, &ops);
	cr_assert_eq(drain(&rl, 1, RL_OPS), 10);
	/* bytes have no bucket, but the limiter is blocked */
	cr_assert_not(rl_consume(&rl, 1, RL_BYTES));
	cr_assert_eq(rl_wait_ns(&rl, 1, RL_OPS), 10 * MS);
	tick(&rl, 50 * MS);
	cr_assert_eq(drain(&rl, 1, RL_OPS), 5);
	tick(&rl, SEC);
	cr_assert_eq(drain(&rl, 1, RL_OPS), 10);
	rl_destroy(&rl);
}

Test(rl, one_time_burst_first_and_never_refilled)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg bw = {.size = 100, .one_time_burst = 50, .refill_time_ms = 1000};
	init_rl(&rl, &bw, NULL);
	cr_assert(rl_consume(&rl, 30, RL_BYTES));
	cr_assert_eq(rl.tb[RL_BYTES].burst, 20);
	cr_assert_eq(rl.tb[RL_BYTES].budget, 100, "the burst is spent before the bucket");
	cr_assert(rl_consume(&rl, 40, RL_BYTES)); /* 20 from the burst, 20 from the bucket */
	cr_assert_eq(rl.tb[RL_BYTES].burst, 0);
	cr_assert_eq(rl.tb[RL_BYTES].budget, 80);
	cr_assert_eq(drain(&rl, 1, RL_BYTES), 80);
	tick(&rl, 5 * SEC);
	cr_assert_eq(drain(&rl, 1, RL_BYTES), 100, "the burst does not come back");
	rl_destroy(&rl);
}

Test(rl, failed_request_takes_nothing_not_even_the_burst)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg bw = {.size = 100, .one_time_burst = 50, .refill_time_ms = 1000};
	struct rl_bucket_cfg ops = {.size = 1, .refill_time_ms = 1000};
	init_rl(&rl, &bw, &ops);
	cr_assert(rl_consume_both(&rl, 10, 1));
	cr_assert_not(rl_consume_both(&rl, 30, 1), "no op left");
	cr_assert_eq(rl.tb[RL_BYTES].burst, 40, "the bytes' burst is kept");
	cr_assert_eq(rl.tb[RL_BYTES].budget, 100);
	rl_destroy(&rl);
}

/* a greedy client over 10^6 small steps gets exactly floor(T * size / refill) */
static void check_no_drift(uint64_t size, uint64_t refill_ms, uint64_t step_ns)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg bw = {.size = size, .refill_time_ms = refill_ms};
	init_rl(&rl, &bw, NULL);
	cr_assert_eq(drain(&rl, size, RL_BYTES), size);
	uint64_t total = 0;
	const uint64_t steps = 1000000;
	for (uint64_t i = 0; i < steps; i++) {
		tick(&rl, step_ns);
		total += drain(&rl, 1, RL_BYTES);
	}
	uint64_t expect = (uint64_t)((unsigned __int128)steps * step_ns * size / (refill_ms * MS));
	cr_assert_eq(total, expect, "size %llu refill %llu ms step %llu: got %llu want %llu",
	             (unsigned long long)size, (unsigned long long)refill_ms,
	             (unsigned long long)step_ns, (unsigned long long)total,
	             (unsigned long long)expect);
	rl_destroy(&rl);
}

Test(rl, refill_is_exact_over_a_million_steps)
{
	check_no_drift(1000, 3, 7); /* 1/3000 token per ns, 7 ns steps */
	check_no_drift(7, 3, 1000); /* 7 tokens per 3 ms, 1 us steps */
	check_no_drift(997, 1009, 3331);
}

Test(rl, both_buckets_must_pass)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg bw = {.size = 2000, .refill_time_ms = 1000};
	struct rl_bucket_cfg ops = {.size = 10, .refill_time_ms = 1000};
	init_rl(&rl, &bw, &ops);
	for (int i = 0; i < 10; i++)
		cr_assert(rl_consume_both(&rl, 100, 1));
	cr_assert_not(rl_consume_both(&rl, 100, 1), "ops are gone");
	cr_assert_eq(rl.tb[RL_BYTES].budget, 1000, "bytes untouched by the failed request");
	cr_assert_eq(timer_left(&rl) > 99 * MS && timer_left(&rl) <= 100 * MS, 1);
	rl_destroy(&rl);

	init_rl(&rl, &bw, &ops);
	cr_assert(rl_consume_both(&rl, 1500, 1));
	cr_assert_not(rl_consume_both(&rl, 600, 1), "bytes are short");
	cr_assert_eq(rl.tb[RL_OPS].budget, 9, "ops untouched by the failed request");
	/* the wait is that of the slower bucket: 100 bytes at 2000 B/s */
	cr_assert_eq(rl.unblock_ns - fake_now, 50 * MS);
	rl_destroy(&rl);
}

Test(rl, larger_than_size_passes_and_blocks_for_the_excess)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg bw = {.size = 1000, .refill_time_ms = 1000};
	init_rl(&rl, &bw, NULL);
	cr_assert(rl_consume(&rl, 3500, RL_BYTES), "Firecracker lets it through");
	cr_assert(rl_is_blocked(&rl));
	cr_assert_eq(rl.tb[RL_BYTES].budget, 0);
	uint64_t left = timer_left(&rl);
	cr_assert(left > 2490 * MS && left <= 2500 * MS, "timer %llu ns", (unsigned long long)left);
	cr_assert_not(rl_consume(&rl, 1, RL_BYTES));
	cr_assert_not(rl_consume(&rl, 1, RL_OPS), "a blocked limiter refuses every type");
	cr_assert_eq(rl_wait_ns(&rl, 1, RL_BYTES), 2501 * MS);
	tick(&rl, 2500 * MS);
	cr_assert_not(rl_is_blocked(&rl));
	cr_assert_eq(drain(&rl, 1, RL_BYTES), 0, "nothing was earned while paying the debt");
	tick(&rl, SEC);
	cr_assert_eq(drain(&rl, 1, RL_BYTES), 1000);
	rl_destroy(&rl);

	/* not full: the excess is counted from what was left; a burst is spent first */
	struct rl_bucket_cfg b2 = {.size = 1000, .one_time_burst = 500, .refill_time_ms = 1000};
	init_rl(&rl, &b2, NULL);
	cr_assert(rl_consume(&rl, 1000, RL_BYTES)); /* 500 burst + 500 */
	cr_assert(rl_consume(&rl, 1100, RL_BYTES)); /* > size: 500 taken, 600 excess */
	cr_assert_eq(rl.unblock_ns - fake_now, 600 * MS);
	rl_destroy(&rl);
}

Test(rl, replenish_gives_back)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg bw = {.size = 1000, .refill_time_ms = 1000};
	init_rl(&rl, &bw, NULL);
	cr_assert(rl_consume(&rl, 600, RL_BYTES));
	rl_replenish(&rl, 200, RL_BYTES);
	cr_assert(rl_consume(&rl, 600, RL_BYTES));
	cr_assert_not(rl_consume(&rl, 1, RL_BYTES));
	rl_replenish(&rl, UINT64_MAX, RL_BYTES);
	cr_assert_eq(rl.tb[RL_BYTES].budget, 1000, "capped at size");
	rl_replenish(&rl, 5, RL_OPS); /* no ops bucket: nothing happens */
	rl_replenish(&rl, 5, (enum rl_token_type)7);
	rl_destroy(&rl);

	struct rl_bucket_cfg b2 = {.size = 100, .one_time_burst = 100, .refill_time_ms = 1000};
	init_rl(&rl, &b2, NULL);
	cr_assert(rl_consume(&rl, 50, RL_BYTES));
	rl_replenish(&rl, 80, RL_BYTES);
	cr_assert_eq(rl.tb[RL_BYTES].burst, 100, "to the burst, capped at its size");
	cr_assert_eq(rl.tb[RL_BYTES].budget, 100);
	rl_destroy(&rl);
}

Test(rl, update_replaces_buckets)
{
	struct rate_limiter rl;
	struct errbuf e = {{0}};
	struct rl_bucket_cfg bw = {.size = 1000, .refill_time_ms = 1000};
	struct rl_bucket_cfg ops = {.size = 5, .refill_time_ms = 1000};
	init_rl(&rl, &bw, &ops);
	cr_assert(rl_consume_both(&rl, 1000, 5));

	struct rl_bucket_cfg nbw = {.size = 500, .one_time_burst = 10, .refill_time_ms = 100};
	cr_assert_eq(rl_update(&rl, &nbw, NULL, &e), 0);
	cr_assert_eq(rl.tb[RL_BYTES].budget, 500, "a new bucket starts full");
	cr_assert_eq(rl.tb[RL_OPS].budget, 0, "NULL keeps the ops bucket as it is");
	struct rl_bucket_cfg got;
	rl_get_cfg(&rl, RL_BYTES, &got);
	cr_assert(got.size == 500 && got.one_time_burst == 10 && got.refill_time_ms == 100);

	struct rl_bucket_cfg bad = {.size = 1, .refill_time_ms = RL_REFILL_MS_MAX + 1};
	struct rl_bucket_cfg off = {0};
	cr_assert_eq(rl_update(&rl, &off, &bad, &e), -EINVAL);
	cr_assert(strstr(e.msg, "ops refill_time") != NULL, "%s", e.msg);
	cr_assert(rl.has[RL_BYTES], "a refused update changes nothing");

	cr_assert_eq(rl_update(&rl, &off, &off, &e), 0);
	cr_assert_not(rl.active);
	cr_assert(rl_consume_both(&rl, UINT64_MAX, UINT64_MAX));
	rl_get_cfg(&rl, RL_OPS, &got);
	cr_assert_eq(got.size, 0);
	cr_assert_eq(rl_update(&rl, NULL, &ops, &e), 0);
	cr_assert(rl.active);
	cr_assert_eq(drain(&rl, 1, RL_OPS), 5);
	rl_destroy(&rl);
}

Test(rl, empty_limiter_never_blocks)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg half = {.size = 100,
	                             .refill_time_ms = 0}; /* as Firecracker: no limit */
	init_rl(&rl, NULL, &half);
	cr_assert_not(rl.active);
	cr_assert(rl_timer_fd(&rl) >= 0, "the timerfd exists for a later update");
	for (int i = 0; i < 1000; i++)
		cr_assert(rl_consume_both(&rl, UINT64_MAX, UINT64_MAX));
	cr_assert_eq(rl_wait_ns(&rl, UINT64_MAX, RL_BYTES), 0);
	cr_assert_eq(rl_timer_expired(&rl), 0);
	rl_destroy(&rl);
}

Test(rl, init_rejects_overflowing_refill)
{
	struct rate_limiter rl;
	struct errbuf e = {{0}};
	struct rl_bucket_cfg bw = {.size = 1, .refill_time_ms = UINT64_MAX};
	cr_assert_eq(rl_init(&rl, &bw, NULL, &fake_clock, &e), -EINVAL);
	cr_assert(strstr(e.msg, "bandwidth refill_time") != NULL, "%s", e.msg);
	cr_assert_eq(rl.timer_fd, -1);
	rl_destroy(&rl); /* harmless after a failed init */
}

Test(rl, timer_armed_for_the_exact_wait)
{
	struct rate_limiter rl;
	struct rl_bucket_cfg bw = {.size = 1000, .refill_time_ms = 1000};
	init_rl(&rl, &bw, NULL);
	cr_assert_eq(timer_left(&rl), 0, "disarmed while tokens are there");
	cr_assert(rl_consume(&rl, 1000, RL_BYTES));
	cr_assert_eq(rl_wait_ns(&rl, 500, RL_BYTES), 500 * MS);
	cr_assert_not(rl_consume(&rl, 500, RL_BYTES));
	uint64_t left = timer_left(&rl);
	cr_assert(left > 490 * MS && left <= 500 * MS, "timer %llu ns", (unsigned long long)left);
	cr_assert_eq(rl.unblock_ns - fake_now, 500 * MS);

	/* an early wake-up re-arms for the rest */
	fake_now += 200 * MS;
	cr_assert_eq(rl_timer_expired(&rl), -EAGAIN);
	left = timer_left(&rl);
	cr_assert(left > 290 * MS && left <= 300 * MS, "timer %llu ns", (unsigned long long)left);
	fake_now += 300 * MS;
	cr_assert_eq(rl_timer_expired(&rl), 0);
	cr_assert_eq(timer_left(&rl), 0, "disarmed when the block ends");
	cr_assert(rl_consume(&rl, 500, RL_BYTES));
	rl_destroy(&rl);
}

Test(rl, real_clock_timer_fires)
{
	struct rate_limiter rl;
	struct errbuf e = {{0}};
	struct rl_bucket_cfg bw = {.size = 1000, .refill_time_ms = 20};
	cr_assert_eq(rl_init(&rl, &bw, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert(rl_consume(&rl, 1000, RL_BYTES));
	cr_assert_not(rl_consume(&rl, 1000, RL_BYTES));
	struct pollfd p = {.fd = rl_timer_fd(&rl), .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 2000), 1);
	cr_assert_eq(rl_timer_expired(&rl), 0);
	cr_assert(rl_consume(&rl, 1000, RL_BYTES));
	rl_destroy(&rl);
}

static int save_restore(struct rate_limiter *from, struct rate_limiter *to, struct errbuf *e)
{
	struct state_writer w;
	sw_init(&w);
	sw_begin(&w, "dev", 3); /* the device's own section */
	rl_save(from, &w);
	sw_u32(&w, 0xfeed); /* the device's fields after the limiter's */
	sw_end(&w);
	cr_assert_eq(sw_error(&w), 0);
	struct state_reader r, s;
	char id[STATE_ID_MAX + 1];
	uint16_t ver;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(sr_next(&r, id, &ver, &s), 1);
	cr_assert_eq(ver, 3);
	int ret = rl_restore(to, &s, e);
	if (ret == 0)
		cr_assert_eq(sr_u32(&s), 0xfeed);
	sw_free(&w);
	return ret;
}

Test(rl, snapshot_round_trip)
{
	struct rate_limiter a, b;
	struct errbuf e = {{0}};
	struct rl_bucket_cfg bw = {.size = 1000, .one_time_burst = 7, .refill_time_ms = 1000};
	struct rl_bucket_cfg ops = {.size = 10, .refill_time_ms = 100};
	init_rl(&a, &bw, &ops);
	init_rl(&b, NULL, NULL);
	cr_assert(rl_consume_both(&a, 1507, 1)); /* 500 excess: blocked 500 ms */
	tick(&a, 100 * MS);
	cr_assert_eq(save_restore(&a, &b, &e), 0, "%s", e.msg);
	cr_assert(rl_is_blocked(&b));
	cr_assert_eq(b.unblock_ns - fake_now, 400 * MS);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(memcmp(&a.tb[i], &b.tb[i], sizeof(a.tb[i])), 0, "bucket %d", i);
	tick(&b, 400 * MS);
	tick(&b, 250 * MS);
	cr_assert_eq(drain(&b, 1, RL_BYTES), 250);

	/* a tampered state is refused and changes nothing */
	struct rate_limiter c;
	init_rl(&c, NULL, NULL);
	a.tb[RL_BYTES].budget = 2000;
	cr_assert_eq(save_restore(&a, &c, &e), -EINVAL);
	cr_assert(strstr(e.msg, "inconsistent bandwidth") != NULL, "%s", e.msg);
	cr_assert_not(c.active);
	struct state_reader r;
	sr_init(&r, "", 0);
	cr_assert_eq(rl_restore(&c, &r, &e), -EINVAL, "empty");
	const uint8_t v2[] = {2, 0};
	sr_init(&r, v2, sizeof(v2));
	cr_assert_eq(rl_restore(&c, &r, &e), -EINVAL);
	cr_assert(strstr(e.msg, "layout 2") != NULL, "%s", e.msg);
	/* truncated anywhere: refused */
	struct state_writer w;
	sw_init(&w);
	rl_save(&b, &w);
	for (size_t cut = 0; cut < w.len; cut++) {
		sr_init(&r, w.buf, cut);
		cr_assert_eq(rl_restore(&c, &r, &e), -EINVAL, "cut at %zu", cut);
	}
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(rl_restore(&c, &r, &e), 0, "%s", e.msg);
	sw_free(&w);
	rl_destroy(&a);
	rl_destroy(&b);
	rl_destroy(&c);
}
