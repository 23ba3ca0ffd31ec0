/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pieces of a fake virtio-mmio driver that the virtio device unit
 * tests share: register access through the transport's bus callbacks
 * (no KVM), feature negotiation, queue setup, and the split virtqueue's
 * driver side (descriptors, avail ring, used ring) in guest memory. Each
 * test's rig keeps its own layout and state and passes the addresses in.
 * Everything is static inline so a test may use only part of it.
 */
#ifndef KILN_TEST_VIRTIO_FAKE_DRIVER_H
#define KILN_TEST_VIRTIO_FAKE_DRIVER_H

#include "memory/memory.h"
#include "virtio/virtio.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* reads `len` bytes (1, 2 or 4) of the register at `off` */
static inline uint32_t vfd_reg_read_n(struct virtio_mmio *m, uint64_t off, unsigned len)
{
	uint32_t v = 0;
	virtio_mmio_bus_ops.read(m, off, &v, len);
	return v;
}

static inline uint32_t vfd_reg_read(struct virtio_mmio *m, uint64_t off)
{
	return vfd_reg_read_n(m, off, 4);
}

static inline void vfd_reg_write(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(m, off, &v, 4);
}

/* virtio 1.2 s3.1.1 steps 2-3: checks the device type, sets ACKNOWLEDGE | DRIVER */
static inline void vfd_acknowledge(struct virtio_mmio *m, uint32_t device_id)
{
	cr_assert_eq(vfd_reg_read(m, VIRTIO_MMIO_DEVICE_ID), device_id);
	vfd_reg_write(m, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
}

/* s4.2.2: the 64 feature bits the device offers */
static inline uint64_t vfd_device_features(struct virtio_mmio *m)
{
	vfd_reg_write(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t f = vfd_reg_read(m, VIRTIO_MMIO_DEVICE_FEATURES);
	vfd_reg_write(m, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)vfd_reg_read(m, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

/*
 * s3.1.1 steps 4-6: accepts the features `f`, sets FEATURES_OK and checks
 * the device kept it; returns the status written.
 */
static inline uint32_t vfd_features_ok(struct virtio_mmio *m, uint64_t f)
{
	vfd_reg_write(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vfd_reg_write(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	vfd_reg_write(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vfd_reg_write(m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	vfd_reg_write(m, VIRTIO_MMIO_STATUS, st);
	cr_assert(vfd_reg_read(m, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	return st;
}

/* s4.2.3.2: queue q of `size` entries at desc/avail/used; the device must offer `max` */
static inline void vfd_queue_setup(struct virtio_mmio *m, uint32_t q, uint32_t max, uint32_t size,
                                   uint64_t desc, uint64_t avail, uint64_t used)
{
	vfd_reg_write(m, VIRTIO_MMIO_QUEUE_SEL, q);
	cr_assert_eq(vfd_reg_read(m, VIRTIO_MMIO_QUEUE_NUM_MAX), max);
	vfd_reg_write(m, VIRTIO_MMIO_QUEUE_NUM, size);
	vfd_reg_write(m, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	vfd_reg_write(m, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	vfd_reg_write(m, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	vfd_reg_write(m, VIRTIO_MMIO_QUEUE_READY, 1);
}

/*
 * Stands for a transport that let through a queue the device does not
 * offer (issue 9): with the device's I/O thread parked, queue q gets `size`
 * entries at desc/avail/used and starts, past the QueueReady check. For
 * the tests of each device's own bounds; the device must be activated.
 */
static inline void vfd_queue_force(struct virtio_mmio *m, uint16_t q, uint16_t size, uint64_t desc,
                                   uint64_t avail, uint64_t used)
{
	struct virtio_dev *d = m->dev;
	struct virtq *vq = &d->vq[q];
	cr_assert_eq(virtio_mmio_pause(m), 0);
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	vq->last_avail_idx = vq->used_idx = 0;
	cr_assert_eq(vq_start(vq, d->gm, d->driver_features), 0, "%s", vq->error);
	virtio_mmio_resume(m);
}

/* s3.1.1 step 8: sets DRIVER_OK over status `st` and checks it stuck */
static inline void vfd_driver_ok(struct virtio_mmio *m, uint32_t st)
{
	vfd_reg_write(m, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	cr_assert_eq(vfd_reg_read(m, VIRTIO_MMIO_STATUS), st | VIRTIO_STATUS_DRIVER_OK);
}

/* s2.7.5: descriptor i of the table at `table` */
static inline void vfd_put_desc(struct guest_mem *gm, uint64_t table, uint16_t i, uint64_t gpa,
                                uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	cr_assert_eq(gm_write(gm, table + 16ull * i, d, 16), 0);
}

/*
 * s2.7.13: makes chain `head` available on the ring at `avail` (of `size`
 * entries, *avail_idx the driver's next index) and notifies queue q when
 * `kick`.
 */
static inline void vfd_offer(struct guest_mem *gm, struct virtio_mmio *m, uint32_t q,
                             uint64_t avail, uint16_t size, uint16_t *avail_idx, uint16_t head,
                             bool kick)
{
	cr_assert_eq(gm_write(gm, avail + 4 + 2ull * (*avail_idx % size), &head, 2), 0);
	(*avail_idx)++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* ring entry before idx, as a driver's wmb */
	cr_assert_eq(gm_write(gm, avail + 2, avail_idx, 2), 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* idx before the notify */
	if (kick)
		vfd_reg_write(m, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* s2.7.8: the used ring's idx at `used` */
static inline uint16_t vfd_used_idx(struct guest_mem *gm, uint64_t used)
{
	uint16_t v;
	cr_assert_eq(gm_read(gm, used + 2, &v, 2), 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* idx before the elements, as a driver's rmb */
	return v;
}

/* s2.7.8: used element `n` {le32 id, le32 len} of a ring of `size` entries */
static inline void vfd_used_elem(struct guest_mem *gm, uint64_t used, uint16_t size, uint16_t n,
                                 uint32_t *id, uint32_t *len)
{
	cr_assert_eq(gm_read(gm, used + 4 + 8ull * (n % size), id, 4), 0);
	cr_assert_eq(gm_read(gm, used + 8 + 8ull * (n % size), len, 4), 0);
}

/* waits up to `ms` (1 ms steps) for the used idx at `used` to be `want` */
static inline bool vfd_wait_used(struct guest_mem *gm, uint64_t used, uint16_t want, int ms)
{
	for (int i = 0; i < ms && vfd_used_idx(gm, used) != want; i++)
		usleep(1000);
	return vfd_used_idx(gm, used) == want;
}

/*
 * Copies the saved sections of `in` into `out` (initialised by the caller),
 * with `extra` zero bytes appended to the payload of the section named
 * `id`: a state file that says more than the device wrote.
 */
static inline void vfd_state_pad(const struct state_writer *in, const char *id, size_t extra,
                                 struct state_writer *out)
{
	struct state_reader all, sub;
	char name[STATE_ID_MAX + 1];
	uint16_t version;
	bool found = false;

	sr_init(&all, in->buf, in->len);
	while (sr_next(&all, name, &version, &sub) == 1) {
		sw_begin(out, name, version);
		sw_bytes(out, sub.buf + sub.off, sr_left(&sub));
		for (size_t i = 0; strcmp(name, id) == 0 && i < extra; i++)
			sw_u8(out, 0);
		found |= strcmp(name, id) == 0;
		sw_end(out);
	}
	cr_assert(found, "no section %s", id);
	cr_assert_eq(sw_error(out), 0);
}

/*
 * Saves the device behind *m, then checks that a new transport refuses
 * that state with `extra` bytes appended to the section `id` ("N bytes too
 * many") and takes the state as saved. *m is the new transport afterwards.
 */
static inline void vfd_expect_padding_refused(struct virtio_mmio **m, struct guest_mem *gm,
                                              const char *id, size_t extra)
{
	struct virtio_dev *dev = (*m)->dev;
	struct errbuf e = {{0}};
	struct state_writer w, padded;
	struct state_reader r;
	char want[32];

	cr_assert_eq(virtio_mmio_pause(*m), 0);
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(*m, &w), 0);
	virtio_mmio_resume(*m);
	sw_init(&padded);
	vfd_state_pad(&w, id, extra, &padded);
	virtio_mmio_destroy(*m);
	struct virtio_mmio_params p = {.base = 0xd0000000ull, .gsi = 5, .gm = gm};
	cr_assert_eq(virtio_mmio_create(m, dev, &p, &e), 0, "%s", e.msg);
	sr_init(&r, padded.buf, padded.len);
	cr_assert_eq(virtio_mmio_restore(*m, &r, &e), -EINVAL);
	snprintf(want, sizeof(want), "%zu bytes too many", extra);
	cr_expect(strstr(e.msg, want), "%s", e.msg);
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(*m, &r, &e), 0, "%s", e.msg);
	sw_free(&w);
	sw_free(&padded);
}

#endif
