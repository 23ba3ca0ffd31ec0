// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/blk_req.c: block requests (virtio 1.2 s5.2.6) -- parsing and
 * checking a chain, the rate limiter, the Sync engine, DISCARD and
 * WRITE_ZEROES, and handing a finished request back to the driver.
 *
 * A request is {le32 type, le32 reserved, le64 sector} (device-readable),
 * data, and a status byte, the last device-writable byte of the chain. The
 * header is copied once (vq_chain_read) before it is looked at; the payload
 * is never copied: preadv/pwritev (or io_uring) move it straight between
 * the file and the chain's buffers in guest memory.
 *
 * What the guest gets for a malformed request:
 *   - no 16-byte header, or no writable byte for the status: the device
 *     breaks (NEEDS_RESET), as there is no way to answer;
 *   - anything else that breaks s5.2.6 (data where there should be none, a
 *     length not a multiple of 512 or of a segment, a sector range beyond
 *     the capacity, GET_ID with less than 20 bytes, too many segments):
 *     VIRTIO_BLK_S_IOERR, counted in bad_requests;
 *   - a write, DISCARD or WRITE_ZEROES on a read-only drive: IOERR (s5.2.6.3);
 *   - an unknown type, or DISCARD / WRITE_ZEROES not negotiated, or a flag
 *     s5.2.6.3 rules out: VIRTIO_BLK_S_UNSUPP.
 * Invalid requests are answered without taking from the rate limiter (as
 * Firecracker, which limits only requests it parsed).
 *
 * DISCARD and WRITE_ZEROES run synchronously on the I/O thread with either
 * engine (fallocate(2) is quick for the sizes offered); a request is
 * checked whole before any segment is applied.
 */
#define LOG_MODULE "virtio-blk"
#include "blk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <unistd.h>

#define ST_PENDING 0xffu /* checked, to be executed */

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* [sector, sector + nsec) lies within the capacity; overflow-safe */
static bool in_range(uint64_t cap, uint64_t sector, uint64_t nsec)
{
	return sector <= cap && nsec <= cap - sector;
}

/* ------------------------------------------------------------ finishing */

bool blk_finish(struct virtio_blk *b, const struct blk_req *rq, uint8_t status, bool defer)
{
	uint32_t len = status == VIRTIO_BLK_S_OK ? rq->ok_len : 1;

	*rq->status = status; /* in guest memory; vq_push orders it before the used entry */
	if (status == VIRTIO_BLK_S_OK) {
		switch (rq->type) {
		case VIRTIO_BLK_T_IN:
			blk_count(&b->m.read_ops, 1);
			blk_count(&b->m.read_bytes, rq->data_len);
			break;
		case VIRTIO_BLK_T_OUT:
			blk_count(&b->m.write_bytes, rq->data_len);
			/* fall through */
		case VIRTIO_BLK_T_DISCARD:
		case VIRTIO_BLK_T_WRITE_ZEROES:
			blk_count(&b->m.write_ops, 1);
			break;
		case VIRTIO_BLK_T_FLUSH:
			blk_count(&b->m.flush_ops, 1);
			break;
		}
	}
	if (defer) {
		/* heads are distinct while the device holds them: the list cannot overflow
		 * unless the driver reused a head, which breaks the device */
		if (b->nr_done == ARRAY_SIZE(b->done)) {
			virtio_dev_fail(&b->dev, "more finished requests than the queue holds");
			return false;
		}
		b->done[b->nr_done++] = (struct blk_done){.head = rq->head, .len = len};
		return false;
	}
	return virtio_dev_push(&b->dev, 0, rq->head, len) == 0;
}

bool blk_push_done(struct virtio_blk *b)
{
	bool pushed = false;
	for (unsigned i = 0; i < b->nr_done; i++)
		pushed |= virtio_dev_push(&b->dev, 0, b->done[i].head, b->done[i].len) == 0;
	b->nr_done = 0;
	return pushed;
}

/* ------------------------------------------------------------- checking */

/* the header and the status byte; -EINVAL (device broken) when either is missing */
static int blk_parse(struct virtio_blk *b, struct blk_req *rq)
{
	const struct vq_chain *c = &b->chain;
	uint8_t hdr[BLK_HDR_LEN];

	if (c->readable_len < BLK_HDR_LEN || c->writable_len < 1) {
		blk_count(&b->m.bad_requests, 1);
		virtio_dev_fail(
		        &b->dev, "request %u has %s (%llu readable, %llu writable bytes; s5.2.6)",
		        c->head,
		        c->readable_len < BLK_HDR_LEN ? "no 16-byte header"
		                                      : "no writable status byte",
		        (unsigned long long)c->readable_len, (unsigned long long)c->writable_len);
		return -EINVAL;
	}
	vq_chain_read(c, 0, hdr, sizeof(hdr));
	const struct iovec *last = &c->iov[c->nr_segs - 1];
	*rq = (struct blk_req){
	        .type = get_le32(hdr),
	        .head = c->head,
	        .status = (uint8_t *)last->iov_base + last->iov_len - 1,
	        .sector = get_le64(hdr + 8),
	        .ok_len = 1,
	};
	return 0;
}

static uint8_t blk_bad(struct virtio_blk *b, const struct blk_req *rq, uint8_t status,
                       const char *why)
{
	blk_count(&b->m.bad_requests, 1);
	blk_log_io(b, "request type %u refused: %s", rq->type, why);
	return status;
}

/* IN / OUT: whole sectors within the capacity */
static uint8_t blk_check_rw(struct virtio_blk *b, struct blk_req *rq, uint64_t len)
{
	rq->data_len = len;
	if (len % BLK_SECTOR)
		return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "data is not a multiple of 512 bytes");
	if (!in_range(virtio_blk_capacity(b), rq->sector, len / BLK_SECTOR))
		return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "sectors beyond the capacity");
	if (rq->type == VIRTIO_BLK_T_IN)
		rq->ok_len = (uint32_t)len + 1; /* a chain holds at most 2^32 bytes (s2.7.5.1) */
	return ST_PENDING;
}

/* DISCARD / WRITE_ZEROES: a whole number of segments */
static uint8_t blk_check_dz(struct virtio_blk *b, struct blk_req *rq, uint64_t out_len,
                            uint64_t in_len)
{
	uint32_t feature =
	        rq->type == VIRTIO_BLK_T_DISCARD ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES;
	if (!(b->dev.driver_features & VIRTIO_BIT(feature)))
		return blk_bad(b, rq, VIRTIO_BLK_S_UNSUPP, "feature not negotiated");
	if (b->read_only)
		return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "the drive is read-only");
	if (in_len)
		return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "writable data in a request without any");
	if (out_len == 0 || out_len % BLK_SEG_LEN || out_len / BLK_SEG_LEN > BLK_MAX_DZ_SEG)
		return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "not 1 to 32 whole segments");
	rq->data_len = out_len;
	return ST_PENDING;
}

/* s5.2.6.1 / s5.2.6.3: ST_PENDING, or the status to answer at once */
static uint8_t blk_check(struct virtio_blk *b, struct blk_req *rq)
{
	const struct vq_chain *c = &b->chain;
	uint64_t out_len = c->readable_len - BLK_HDR_LEN; /* readable data after the header */
	uint64_t in_len = c->writable_len - 1;            /* writable data before the status */

	switch (rq->type) {
	case VIRTIO_BLK_T_IN:
		if (out_len)
			return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "readable data in a read");
		return blk_check_rw(b, rq, in_len);
	case VIRTIO_BLK_T_OUT:
		if (in_len)
			return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "writable data in a write");
		if (b->read_only)
			return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "the drive is read-only");
		return blk_check_rw(b, rq, out_len);
	case VIRTIO_BLK_T_FLUSH:
		return ST_PENDING; /* data "SHOULD NOT" be there, and is ignored */
	case VIRTIO_BLK_T_GET_ID:
		if (out_len || in_len < VIRTIO_BLK_ID_BYTES)
			return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "GET_ID needs a 20-byte buffer");
		rq->data_len = VIRTIO_BLK_ID_BYTES;
		rq->ok_len = VIRTIO_BLK_ID_BYTES + 1;
		return ST_PENDING;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_check_dz(b, rq, out_len, in_len);
	default:
		return blk_bad(b, rq, VIRTIO_BLK_S_UNSUPP, "unsupported type");
	}
}

/* ---------------------------------------------------------- Sync engine */

/*
 * The payload of an IN (the writable buffers but the status byte) or of an
 * OUT (the readable buffers after the header) as iovecs into `out`, which
 * has room for the chain's iovs of that direction. Returns the count.
 */
static unsigned blk_payload(const struct vq_chain *c, bool in, struct iovec *out)
{
	unsigned i = in ? c->nr_readable : 0, end = in ? c->nr_segs : c->nr_readable, n = 0;
	uint64_t skip = in ? 0 : BLK_HDR_LEN;
	uint64_t left = in ? c->writable_len - 1 : c->readable_len - BLK_HDR_LEN;

	for (; i < end && left; i++) {
		uint8_t *p = c->iov[i].iov_base;
		uint64_t len = c->iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		p += skip;
		len -= skip;
		skip = 0;
		if (len > left)
			len = left;
		out[n++] = (struct iovec){.iov_base = p, .iov_len = len};
		left -= len;
	}
	return n;
}

/* the whole of iov at off, through short transfers; 0 / -errno (-EIO at end of file) */
static int blk_rw_all(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write, int flags)
{
	while (n) {
		ssize_t r = write ? pwritev2(fd, iov, (int)n, (off_t)off, flags)
		                  : preadv2(fd, iov, (int)n, (off_t)off, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* the file shrank under the drive */
		off += (uint64_t)r;
		while (n && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static uint8_t blk_io_error(struct virtio_blk *b, const struct blk_req *rq, const char *what,
                            int err)
{
	blk_count(&b->m.io_errors, 1);
	blk_log_io(b, "%s at sector %llu failed: %s", what, (unsigned long long)rq->sector,
	           strerror(-err));
	return VIRTIO_BLK_S_IOERR;
}

/* zeroes by writing, when the file cannot zero a range itself */
static int blk_write_zeroes(struct virtio_blk *b, uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[KIB(64)];
	struct iovec iov[16];
	while (len) {
		unsigned n = 0;
		uint64_t chunk = 0;
		for (; n < ARRAY_SIZE(iov) && chunk < len; n++) {
			uint64_t l = len - chunk < sizeof(zeroes) ? len - chunk : sizeof(zeroes);
			iov[n] = (struct iovec){.iov_base = (void *)zeroes, .iov_len = l};
			chunk += l;
		}
		int r = blk_rw_all(b->fd, iov, n, off, true, b->dsync ? RWF_DSYNC : 0);
		if (r < 0)
			return r;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

/* one segment; 0 / -errno */
static int blk_apply_segment(struct virtio_blk *b, uint32_t type, uint64_t off, uint64_t len,
                             bool unmap)
{
	int mode, r;
	if (len == 0)
		return 0;
	if (type == VIRTIO_BLK_T_DISCARD) {
		r = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		              (off_t)len);
		/* s5.2.6.3: discarding is a "MAY"; a file that cannot is no error */
		return r < 0 && errno != EOPNOTSUPP ? -errno : 0;
	}
	/* write zeroes: a hole when allowed (s5.2.6.3, unmap), else zeroed blocks */
	if (unmap && b->can_punch && !b->is_blkdev)
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	else if (b->can_zero)
		mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	else if (b->can_punch && !b->is_blkdev)
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE; /* reads back zeroes */
	else
		return blk_write_zeroes(b, off, len);
	r = fallocate(b->fd, mode, (off_t)off, (off_t)len);
	if (r < 0 && errno == EOPNOTSUPP) /* a new file (PATCH) that cannot */
		return blk_write_zeroes(b, off, len);
	if (r == 0 && b->dsync)
		r = fdatasync(b->fd);
	return r < 0 ? -errno : 0;
}

/* s5.2.6: every segment is checked before any is applied */
static uint8_t blk_exec_dz(struct virtio_blk *b, struct blk_req *rq)
{
	uint8_t segs[BLK_MAX_DZ_SEG][BLK_SEG_LEN];
	unsigned n = (unsigned)(rq->data_len / BLK_SEG_LEN);
	bool discard = rq->type == VIRTIO_BLK_T_DISCARD;
	uint32_t allowed = discard ? 0 : BLK_WZ_FLAG_UNMAP;

	vq_chain_read(&b->chain, BLK_HDR_LEN, segs, n * BLK_SEG_LEN);
	for (unsigned i = 0; i < n; i++) {
		uint32_t flags = get_le32(segs[i] + 12);
		if (flags & ~allowed)
			return blk_bad(b, rq, VIRTIO_BLK_S_UNSUPP,
			               discard ? "discard with unmap or unknown flags"
			                       : "write zeroes with unknown flags");
		if (!in_range(virtio_blk_capacity(b), get_le64(segs[i]), get_le32(segs[i] + 8)))
			return blk_bad(b, rq, VIRTIO_BLK_S_IOERR, "segment beyond the capacity");
	}
	for (unsigned i = 0; i < n; i++) {
		rq->sector = get_le64(segs[i]);
		int r = blk_apply_segment(b, rq->type, rq->sector * BLK_SECTOR,
		                          (uint64_t)get_le32(segs[i] + 8) * BLK_SECTOR,
		                          get_le32(segs[i] + 12) & BLK_WZ_FLAG_UNMAP);
		if (r < 0)
			return blk_io_error(b, rq, discard ? "discard" : "write zeroes", r);
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_exec_sync(struct virtio_blk *b, struct blk_req *rq)
{
	int r;
	switch (rq->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT: {
		bool in = rq->type == VIRTIO_BLK_T_IN;
		unsigned n = blk_payload(&b->chain, in, b->iov);
		r = blk_rw_all(b->fd, b->iov, n, rq->sector * BLK_SECTOR, !in,
		               b->dsync ? RWF_DSYNC : 0);
		return r < 0 ? blk_io_error(b, rq, in ? "read" : "write", r) : VIRTIO_BLK_S_OK;
	}
	case VIRTIO_BLK_T_FLUSH:
		/* Unsafe: F_FLUSH was not offered; a flush sent anyway is a no-op */
		if (b->writeback && fdatasync(b->fd) < 0)
			return blk_io_error(b, rq, "flush", -errno);
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		vq_chain_write(&b->chain, 0, b->serial, VIRTIO_BLK_ID_BYTES);
		return VIRTIO_BLK_S_OK;
	default: /* DISCARD, WRITE_ZEROES: blk_check let nothing else through */
		return blk_exec_dz(b, rq);
	}
}

/* ---------------------------------------------------------------- serving */

static bool blk_goes_async(const struct virtio_blk *b, const struct blk_req *rq)
{
	return b->u && (rq->type == VIRTIO_BLK_T_IN || rq->type == VIRTIO_BLK_T_OUT ||
	                (rq->type == VIRTIO_BLK_T_FLUSH && b->writeback));
}

/* 0 queued, -EAGAIN no room (retry later), -EEXIST / -ERANGE as blk_uring_queue */
static int blk_queue_async(struct virtio_blk *b, const struct blk_req *rq)
{
	const struct vq_chain *c = &b->chain;
	bool in = rq->type == VIRTIO_BLK_T_IN;
	unsigned room = rq->type == VIRTIO_BLK_T_FLUSH ? 0
	                : in                           ? c->nr_segs - c->nr_readable
	                                               : c->nr_readable;
	struct iovec *iov = blk_uring_iovs(b, room);
	if (!iov)
		return -EAGAIN;
	unsigned n = room ? blk_payload(c, in, iov) : 0;
	return blk_uring_queue(b, rq, iov, n);
}

/*
 * Puts the chain just popped back on the ring, as rng.c does: the next pop
 * takes the same avail entry again.
 */
static void blk_unpop(struct virtio_blk *b)
{
	b->dev.vq[0].last_avail_idx--;
}

void blk_serve(struct virtio_blk *b)
{
	struct virtio_dev *d = &b->dev;
	bool pushed = blk_push_done(b);

	b->stalled = false;
	while (!rl_is_blocked(&b->rl) && virtio_dev_pop(d, 0, &b->chain) == 1) {
		struct blk_req rq;
		if (blk_parse(b, &rq) < 0)
			break; /* the device is broken now */
		uint8_t st = blk_check(b, &rq);
		if (st != ST_PENDING) {
			pushed |= blk_finish(b, &rq, st, false);
			continue;
		}
		/* Firecracker: one op for every request, bytes for IN and OUT */
		bool rw = rq.type == VIRTIO_BLK_T_IN || rq.type == VIRTIO_BLK_T_OUT;
		uint64_t bytes = rw ? rq.data_len : 0;
		if (!rl_consume_both(&b->rl, bytes, 1)) {
			blk_unpop(b);
			blk_count(&b->m.throttled, 1);
			break;
		}
		if (!blk_goes_async(b, &rq)) {
			pushed |= blk_finish(b, &rq, blk_exec_sync(b, &rq), false);
			continue;
		}
		int r = blk_queue_async(b, &rq);
		if (r == 0)
			continue;
		rl_replenish(&b->rl, 1, RL_OPS);
		if (bytes)
			rl_replenish(&b->rl, bytes, RL_BYTES);
		if (r == -EAGAIN) {
			blk_unpop(b); /* served again when requests complete */
			break;
		}
		if (r == -ERANGE)
			virtio_dev_fail(
			        d,
			        "request head %u is outside the %u-entry queue the device offers",
			        rq.head, VIRTIO_BLK_QUEUE_SIZE);
		else
			virtio_dev_fail(d, "request head %u made available again while in flight",
			                rq.head);
		break;
	}
	if (b->u)
		blk_uring_submit(b);
	if (pushed)
		virtio_dev_notify_used(d, 0);
}
