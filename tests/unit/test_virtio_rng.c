// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio/rng: a tiny virtio-mmio driver in the test drives
 * the device through the transport's bus callbacks, without KVM (no
 * hypervisor ops: interrupts arrive as writes to the transport's irq_fd).
 */
#include "virtio/rng.h"

#include "virtio_fake_driver.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define QSZ       8
#define DESC_GPA  0x10000ull
#define AVAIL_GPA 0x11000ull
#define USED_GPA  0x12000ull
#define BUF_GPA   0x100000ull /* request buffers, 128 KiB apart */
#define BUF_STEP  0x20000ull
#define MMIO_BASE 0xd0000000ull

struct rig {
	struct guest_mem gm;
	struct virtio_rng *rng;
	struct virtio_mmio *m;
	uint16_t avail_idx;
};

/* virtio 1.2 s3.1.1 / s4.2.3: the driver's side of device initialisation */
static void driver_init(struct rig *g)
{
	vfd_reg_write(g->m, VIRTIO_MMIO_STATUS, 0);
	cr_assert_eq(vfd_reg_read(g->m, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	vfd_acknowledge(g->m, VIRTIO_ID_RNG);
	uint32_t st = vfd_features_ok(g->m, VIRTIO_BIT(VIRTIO_F_VERSION_1)); /* VERSION_1 only */
	vfd_queue_setup(g->m, 0, VIRTIO_RNG_QUEUE_SIZE, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA);
	vfd_driver_ok(g->m, st);
}

static void rig_up(struct rig *g, const struct rl_bucket_cfg *bw, const struct rl_bucket_cfg *ops)
{
	struct errbuf e = {{0}};
	memset(g, 0, sizeof(*g));
	cr_assert_eq(gm_init(&g->gm, MIB(4), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(virtio_rng_create(&g->rng, "rng0", bw, ops, NULL, &e), 0, "%s", e.msg);
	struct virtio_mmio_params p = {.base = MMIO_BASE, .gsi = 5, .gm = &g->gm};
	cr_assert_eq(virtio_mmio_create(&g->m, virtio_rng_dev(g->rng), &p, &e), 0, "%s", e.msg);
	driver_init(g);
}

static void rig_down(struct rig *g)
{
	virtio_mmio_destroy(g->m);
	virtio_rng_destroy(g->rng);
	gm_destroy(&g->gm);
}

/* s2.7.5 descriptor i: one buffer */
static void put_desc(struct rig *g, uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	vfd_put_desc(&g->gm, DESC_GPA, i, gpa, len, flags, next);
}

/* s2.7.6: makes chain `head` available and notifies */
static void offer(struct rig *g, uint16_t head)
{
	vfd_offer(&g->gm, g->m, 0, AVAIL_GPA, QSZ, &g->avail_idx, head, true);
}

static uint16_t used_idx(struct rig *g)
{
	return vfd_used_idx(&g->gm, USED_GPA);
}

/* the used element `n`: s2.7.8 {le32 id, le32 len} */
static void used_elem(struct rig *g, uint16_t n, uint32_t *id, uint32_t *len)
{
	vfd_used_elem(&g->gm, USED_GPA, QSZ, n, id, len);
}

/* waits up to `ms` for used->idx to reach `want` */
static bool wait_used(struct rig *g, uint16_t want, int ms)
{
	return vfd_wait_used(&g->gm, USED_GPA, want, ms);
}

static bool all_zero(struct rig *g, uint64_t gpa, size_t len)
{
	const uint8_t *p = gm_ptr(&g->gm, gpa, len);
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static uint64_t mono_ms(void)
{
	return now_ns() / 1000000;
}

Test(rng, fills_writable_buffers)
{
	struct rig g;
	rig_up(&g, NULL, NULL);
	/* a two-buffer chain: 16 + 48 writable bytes */
	put_desc(&g, 0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(&g, 1, BUF_GPA + 0x1000, 48, VIRTQ_DESC_F_WRITE, 0);
	offer(&g, 0);
	cr_assert(wait_used(&g, 1, 2000));
	uint32_t id, len;
	used_elem(&g, 0, &id, &len);
	cr_assert_eq(id, 0);
	cr_assert_eq(len, 64);
	cr_assert_not(all_zero(&g, BUF_GPA, 16));
	cr_assert_not(all_zero(&g, BUF_GPA + 0x1000, 48));
	cr_assert(all_zero(&g, BUF_GPA + 16, 64), "nothing past the buffer");
	struct pollfd p = {.fd = g.m->irq_fd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 2000), 1, "a used-buffer interrupt");

	/* larger than VIRTIO_RNG_MAX_REQ: only that much is given (s5.4.6) */
	put_desc(&g, 2, BUF_GPA + BUF_STEP, (uint32_t)(VIRTIO_RNG_MAX_REQ + 4096),
	         VIRTQ_DESC_F_WRITE, 0);
	offer(&g, 2);
	cr_assert(wait_used(&g, 2, 2000));
	used_elem(&g, 1, &id, &len);
	cr_assert_eq(id, 2);
	cr_assert_eq(len, VIRTIO_RNG_MAX_REQ);
	cr_assert(all_zero(&g, BUF_GPA + BUF_STEP + VIRTIO_RNG_MAX_REQ, 4096));

	/* a read-only buffer gets nothing, and the device goes on */
	put_desc(&g, 3, BUF_GPA + 2 * BUF_STEP, 32, 0, 0);
	offer(&g, 3);
	cr_assert(wait_used(&g, 3, 2000));
	used_elem(&g, 2, &id, &len);
	cr_assert_eq(len, 0);
	cr_assert(all_zero(&g, BUF_GPA + 2 * BUF_STEP, 32));
	cr_assert_not(virtio_dev_broken(virtio_rng_dev(g.rng)));

	struct virtio_rng_metrics m;
	virtio_rng_metrics(g.rng, &m);
	cr_assert_eq(m.requests, 3);
	cr_assert_eq(m.bytes, 64 + VIRTIO_RNG_MAX_REQ);
	rig_down(&g);
}

Test(rng, bandwidth_limit_paces_requests)
{
	struct rig g;
	struct rl_bucket_cfg bw = {.size = 100, .refill_time_ms = 100}; /* 1 byte per ms */
	rig_up(&g, &bw, NULL);
	for (uint16_t i = 0; i < 3; i++)
		put_desc(&g, i, BUF_GPA + i * BUF_STEP, 64, VIRTQ_DESC_F_WRITE, 0);
	uint64_t t0 = mono_ms();
	offer(&g, 0);
	offer(&g, 1);
	offer(&g, 2);
	/* 64 at once; 64 more once 28 bytes have refilled; 64 more 64 ms later */
	cr_assert(wait_used(&g, 1, 2000));
	cr_assert(wait_used(&g, 3, 5000));
	uint64_t took = mono_ms() - t0;
	cr_assert_geq(took, 85, "three 64-byte requests at 1 B/ms after a 100-byte bucket: %llu ms",
	              (unsigned long long)took);
	struct virtio_rng_metrics m;
	virtio_rng_metrics(g.rng, &m);
	cr_assert_eq(m.bytes, 192);
	cr_assert_geq(m.throttled, 2);
	rig_down(&g);
}

Test(rng, ops_limit_and_over_consumption)
{
	struct rig g;
	struct rl_bucket_cfg bw = {.size = 32, .refill_time_ms = 50};
	struct rl_bucket_cfg ops = {.size = 1, .refill_time_ms = 1};
	rig_up(&g, &bw, &ops);
	/* 64 bytes from a 32-byte bucket: served at once, then 50 ms of block */
	put_desc(&g, 0, BUF_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
	put_desc(&g, 1, BUF_GPA + BUF_STEP, 1, VIRTQ_DESC_F_WRITE, 0);
	uint64_t t0 = mono_ms();
	offer(&g, 0);
	cr_assert(wait_used(&g, 1, 2000));
	offer(&g, 1);
	cr_assert(wait_used(&g, 2, 5000));
	cr_assert_geq(mono_ms() - t0, 45);
	struct rl_bucket_cfg got_bw, got_ops;
	virtio_rng_limiter_cfg(g.rng, &got_bw, &got_ops);
	cr_assert(got_bw.size == 32 && got_bw.refill_time_ms == 50);
	cr_assert(got_ops.size == 1 && got_ops.refill_time_ms == 1);
	rig_down(&g);
}

Test(rng, create_rejects_bad_input)
{
	struct virtio_rng *r = NULL;
	struct errbuf e = {{0}};
	cr_assert_eq(virtio_rng_create(&r, "", NULL, NULL, NULL, &e), -EINVAL);
	cr_assert_eq(virtio_rng_create(&r, NULL, NULL, NULL, NULL, &e), -EINVAL);
	struct rl_bucket_cfg bad = {.size = 1, .refill_time_ms = UINT64_MAX};
	cr_assert_eq(virtio_rng_create(&r, "rng0", &bad, NULL, NULL, &e), -EINVAL);
	cr_assert(strstr(e.msg, "refill_time") != NULL, "%s", e.msg);
	cr_assert_null(r);
	virtio_rng_destroy(NULL);
}

Test(rng, snapshot_keeps_the_held_request_and_the_block)
{
	struct rig g;
	struct errbuf e = {{0}};
	struct rl_bucket_cfg bw = {.size = 64, .refill_time_ms = 500};
	rig_up(&g, &bw, NULL);
	put_desc(&g, 0, BUF_GPA, 64, VIRTQ_DESC_F_WRITE, 0);
	put_desc(&g, 1, BUF_GPA + BUF_STEP, 64, VIRTQ_DESC_F_WRITE, 0);
	offer(&g, 0);
	offer(&g, 1);
	cr_assert(wait_used(&g, 1, 2000));
	usleep(20000);
	cr_assert_eq(used_idx(&g), 1, "the second request waits for the limiter");

	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(g.m, &w), 0);
	virtio_mmio_resume(g.m);
	uint64_t t_save = mono_ms();
	/* a new device over the same guest memory, as after a snapshot load */
	virtio_mmio_destroy(g.m);
	virtio_rng_destroy(g.rng);
	cr_assert_eq(virtio_rng_create(&g.rng, "rng0", &bw, NULL, NULL, &e), 0, "%s", e.msg);
	struct virtio_mmio_params p = {.base = MMIO_BASE, .gsi = 5, .gm = &g.gm};
	cr_assert_eq(virtio_mmio_create(&g.m, virtio_rng_dev(g.rng), &p, &e), 0, "%s", e.msg);
	struct state_reader r;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(g.m, &r, &e), 0, "%s", e.msg);
	sw_free(&w);

	cr_assert_eq(used_idx(&g), 1);
	cr_assert(wait_used(&g, 2, 3000), "the request held back is served after restore");
	cr_assert_geq(mono_ms() - t_save, 400, "the block survived the snapshot");
	uint32_t id, len;
	used_elem(&g, 1, &id, &len);
	cr_assert(id == 1 && len == 64);
	cr_assert_not(all_zero(&g, BUF_GPA + BUF_STEP, 64));
	rig_down(&g);
}

/* a device section longer than the device wrote is refused, not half read */
Test(rng, restore_refuses_trailing_bytes)
{
	struct rig g;
	rig_up(&g, NULL, NULL);
	vfd_expect_padding_refused(&g.m, &g.gm, "virtio-rng.rng0", 1);
	rig_down(&g);
}
