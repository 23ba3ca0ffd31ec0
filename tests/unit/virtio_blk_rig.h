/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny virtio-blk driver for the unit tests of virtio/blk (included by
 * test_virtio_blk*.c): it drives the device through the virtio-mmio
 * transport's bus callbacks, without KVM (interrupts arrive as writes to
 * the transport's irq_fd), over a temporary backing file.
 */
#ifndef KILN_TEST_VIRTIO_BLK_RIG_H
#define KILN_TEST_VIRTIO_BLK_RIG_H

#include "virtio/blk.h"

#include "virtio_fake_driver.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QSZ       128
#define DESC_GPA  0x10000ull
#define AVAIL_GPA 0x11000ull
#define USED_GPA  0x12000ull
#define REQ_GPA   0x100000ull /* request i: header, status at +0x800, data at +0x1000 */
#define REQ_STEP  0x40000ull  /* 256 KiB per request */
#define MMIO_BASE 0xd0000000ull
#define SECTOR    512u

/* s5.2.3 / s5.2.6 */
#define F_SEG_MAX  2
#define F_RO       5
#define F_BLK_SIZE 6
#define F_FLUSH    9
#define F_DISCARD  13
#define F_WZ       14
#define T_IN       0
#define T_OUT      1
#define T_FLUSH    4
#define T_GET_ID   8
#define T_DISCARD  11
#define T_WZ       13
#define S_OK       0
#define S_IOERR    1
#define S_UNSUPP   2

struct rig {
	struct guest_mem gm;
	struct virtio_blk *blk;
	struct virtio_mmio *m;
	char path[64];
	int fd; /* the test's own view of the backing file */
	uint16_t avail_idx, next_desc, used_seen;
	uint64_t dev_features;
};

static inline uint32_t reg_read(struct rig *g, uint64_t off)
{
	return vfd_reg_read(g->m, off);
}

static inline void reg_write(struct rig *g, uint64_t off, uint32_t v)
{
	vfd_reg_write(g->m, off, v);
}

static inline uint64_t cfg_read64(struct rig *g, uint32_t off)
{
	return reg_read(g, VIRTIO_MMIO_CONFIG + off) |
	       (uint64_t)reg_read(g, VIRTIO_MMIO_CONFIG + off + 4) << 32;
}

/* s3.1.1: the driver takes every offered feature except those in `drop` */
static inline void driver_init(struct rig *g, uint64_t drop)
{
	reg_write(g, VIRTIO_MMIO_STATUS, 0);
	memset(gm_ptr(&g->gm, DESC_GPA, 0x3000), 0, 0x3000); /* fresh rings */
	g->avail_idx = g->next_desc = g->used_seen = 0;
	vfd_acknowledge(g->m, VIRTIO_ID_BLOCK);
	g->dev_features = vfd_device_features(g->m);
	uint32_t st = vfd_features_ok(g->m, g->dev_features & ~drop);
	vfd_queue_setup(g->m, 0, VIRTIO_BLK_QUEUE_SIZE, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA);
	vfd_driver_ok(g->m, st);
}

/* a temporary file of `size` bytes, every byte `fill`, in `dir` */
static inline void make_file(char *path, size_t len, const char *dir, uint64_t size, int fill)
{
	snprintf(path, len, "%s/kiln-blk-XXXXXX", dir);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	static uint8_t buf[65536];
	memset(buf, fill, sizeof(buf));
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);
		cr_assert_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	}
	close(fd);
}

struct rig_opts {
	const char *id; /* default "drive0" */
	uint64_t size;  /* default 1 MiB */
	int fill;
	bool ro, writeback, async;
	const char *dir; /* default /tmp */
	const struct rl_bucket_cfg *bw, *ops;
	const struct rl_clock *clock;
	uint64_t drop_features;
};

/* the rig's temporary file (g->path, g->fd) */
static inline void rig_file(struct rig *g, const struct rig_opts *o)
{
	memset(g, 0, sizeof(*g));
	make_file(g->path, sizeof(g->path), o->dir ? o->dir : "/tmp", o->size ? o->size : MIB(1),
	          o->fill);
	g->fd = open(g->path, O_RDWR);
	cr_assert_geq(g->fd, 0);
}

/* guest memory, the device on `dev_path` (NULL: the rig's file), the transport, the driver */
static inline void rig_start(struct rig *g, const struct rig_opts *o, const char *dev_path)
{
	struct errbuf e = {{0}};
	cr_assert_eq(gm_init(&g->gm, MIB(64), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	struct virtio_blk_params p = {.id = o->id ? o->id : "drive0",
	                              .path = dev_path ? dev_path : g->path,
	                              .read_only = o->ro,
	                              .writeback = o->writeback,
	                              .async = o->async,
	                              .bw = o->bw,
	                              .ops = o->ops,
	                              .clock = o->clock};
	cr_assert_eq(virtio_blk_create(&g->blk, &p, &e), 0, "%s", e.msg);
	struct virtio_mmio_params mp = {.base = MMIO_BASE, .gsi = 5, .gm = &g->gm};
	cr_assert_eq(virtio_mmio_create(&g->m, virtio_blk_dev(g->blk), &mp, &e), 0, "%s", e.msg);
	driver_init(g, o->drop_features);
}

static inline void rig_up(struct rig *g, const struct rig_opts *o)
{
	rig_file(g, o);
	rig_start(g, o, NULL);
}

static inline void rig_down(struct rig *g)
{
	virtio_mmio_destroy(g->m);
	virtio_blk_destroy(g->blk);
	gm_destroy(&g->gm);
	close(g->fd);
	unlink(g->path);
}

/* ------------------------------------------------------------- requests */

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

/* s2.7.5: writes the chain's descriptors and makes it available; returns its head */
static inline uint16_t offer_chain(struct rig *g, const struct seg *s, unsigned n, bool kick)
{
	uint16_t head = g->next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % QSZ);
		uint16_t flags = (s[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
		                 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		vfd_put_desc(&g->gm, DESC_GPA, idx, s[i].gpa, s[i].len, flags,
		             (uint16_t)((idx + 1) % QSZ));
	}
	g->next_desc = (uint16_t)((head + n) % QSZ);
	vfd_offer(&g->gm, g->m, 0, AVAIL_GPA, QSZ, &g->avail_idx, head, kick);
	return head;
}

static inline uint16_t used_idx(struct rig *g)
{
	return vfd_used_idx(&g->gm, USED_GPA);
}

static inline void used_elem(struct rig *g, uint16_t n, uint32_t *id, uint32_t *len)
{
	vfd_used_elem(&g->gm, USED_GPA, QSZ, n, id, len);
}

static inline bool wait_used(struct rig *g, uint16_t want, int ms)
{
	return vfd_wait_used(&g->gm, USED_GPA, want, ms);
}

static inline uint64_t req_gpa(unsigned slot)
{
	return REQ_GPA + REQ_STEP * slot;
}

/* writes a request header for slot `slot` and resets its status to 0xff */
static inline void put_header(struct rig *g, unsigned slot, uint32_t type, uint64_t sector)
{
	uint8_t h[16] = {0};
	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	cr_assert_eq(gm_write(&g->gm, req_gpa(slot), h, 16), 0);
	uint8_t ff = 0xff;
	cr_assert_eq(gm_write(&g->gm, req_gpa(slot) + 0x800, &ff, 1), 0);
}

static inline uint8_t status_of(struct rig *g, unsigned slot)
{
	uint8_t st;
	cr_assert_eq(gm_read(&g->gm, req_gpa(slot) + 0x800, &st, 1), 0);
	return st;
}

/*
 * Offers the usual three-part request in slot `slot`: header, `len` data
 * bytes at +0x1000 (device-writable when `dev_writes`), status; no kick.
 */
static inline uint16_t offer_req(struct rig *g, unsigned slot, uint32_t type, uint64_t sector,
                                 uint32_t len, bool dev_writes, bool kick)
{
	put_header(g, slot, type, sector);
	struct seg s[3] = {{req_gpa(slot), 16, false}};
	unsigned n = 1;
	if (len)
		s[n++] = (struct seg){req_gpa(slot) + 0x1000, len, dev_writes};
	s[n++] = (struct seg){req_gpa(slot) + 0x800, 1, true};
	return offer_chain(g, s, n, kick);
}

/* one request, waited for; returns its status byte; *used_len if wanted */
static inline uint8_t do_req(struct rig *g, uint32_t type, uint64_t sector, void *data,
                             uint32_t len, bool dev_writes, uint32_t *used_len)
{
	if (len) /* what the device does not write stays as it was */
		cr_assert_eq(gm_write(&g->gm, req_gpa(0) + 0x1000, data, len), 0);
	uint16_t head = offer_req(g, 0, type, sector, len, dev_writes, true);
	g->used_seen++;
	cr_assert(wait_used(g, g->used_seen, 5000), "request type %u was not answered", type);
	uint32_t id, ulen;
	used_elem(g, (uint16_t)(g->used_seen - 1), &id, &ulen);
	cr_assert_eq(id, head);
	if (used_len)
		*used_len = ulen;
	if (len && dev_writes)
		cr_assert_eq(gm_read(&g->gm, req_gpa(0) + 0x1000, data, len), 0);
	return status_of(g, 0);
}

/* DISCARD / WRITE_ZEROES with one segment */
static inline uint8_t do_dz(struct rig *g, uint32_t type, uint64_t sector, uint32_t n,
                            uint32_t flags)
{
	uint8_t seg[16];
	memcpy(seg, &sector, 8);
	memcpy(seg + 8, &n, 4);
	memcpy(seg + 12, &flags, 4);
	return do_req(g, type, 0, seg, 16, false, NULL);
}

/* ------------------------------------------- queues larger than offered */

/* rings of a BIG_QSZ-entry queue (issue 9: more than VIRTIO_BLK_QUEUE_SIZE) */
#define BIG_QSZ   1024
#define BIG_DESC  0x20000ull /* 16 KiB of descriptors */
#define BIG_AVAIL 0x24000ull
#define BIG_USED  0x26000ull

/*
 * Offers a read of one sector as request slot 0 at descriptors head,
 * head + 1, head + 2 of the BIG_QSZ-entry queue, and notifies.
 */
static inline void offer_big_req(struct rig *g, uint16_t head)
{
	put_header(g, 0, T_IN, 0);
	vfd_put_desc(&g->gm, BIG_DESC, head, req_gpa(0), 16, VIRTQ_DESC_F_NEXT, head + 1);
	vfd_put_desc(&g->gm, BIG_DESC, head + 1, req_gpa(0) + 0x1000, SECTOR,
	             VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, head + 2);
	vfd_put_desc(&g->gm, BIG_DESC, head + 2, req_gpa(0) + 0x800, 1, VIRTQ_DESC_F_WRITE, 0);
	vfd_offer(&g->gm, g->m, 0, BIG_AVAIL, BIG_QSZ, &g->avail_idx, head, true);
}

static inline bool needs_reset(struct rig *g)
{
	return reg_read(g, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

static inline void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed * 13 + (i >> 9));
}

static inline bool file_is(struct rig *g, uint64_t off, const void *want, size_t len)
{
	uint8_t *buf = malloc(len);
	cr_assert_not_null(buf);
	bool ok = pread(g->fd, buf, len, (off_t)off) == (ssize_t)len && !memcmp(buf, want, len);
	free(buf);
	return ok;
}

static inline bool file_all(struct rig *g, uint64_t off, size_t len, int byte)
{
	uint8_t *want = malloc(len);
	cr_assert_not_null(want);
	memset(want, byte, len);
	bool ok = file_is(g, off, want, len);
	free(want);
	return ok;
}

#endif
