/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/blk: the block device (virtio 1.2 s5.2, device id 2) on a host
 * file or block device, as Firecracker's PUT /drives: one request queue,
 * cache_type Unsafe or Writeback, io_engine Sync (preadv/pwritev on the
 * device's I/O thread) or Async (io_uring), a rate limiter (bandwidth in
 * bytes of IN/OUT data, ops for every request), and PATCH /drives for a new
 * backing file or new limits at run time.
 *
 * Requests: IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES (the last two
 * when the host file system can punch holes / zero ranges, probed at
 * create); any other type is answered VIRTIO_BLK_S_UNSUPP. A request the
 * device can answer (bad sector range, data not a multiple of 512, a write
 * on a read-only drive, a misshapen chain that still has a status byte) is
 * answered VIRTIO_BLK_S_IOERR; a chain without a 16-byte header or without
 * a writable status byte breaks the device (NEEDS_RESET), since no status
 * can be given. Host I/O errors become VIRTIO_BLK_S_IOERR and a
 * rate-limited log line.
 *
 * Snapshots: the device's save() first waits for every request in flight
 * (Async) to finish, writes their status bytes and data into guest memory,
 * and saves them as "finished, not yet in the used ring"; they are pushed
 * when the device runs again (here, or after restore). The VMM therefore
 * must save the devices before it dumps guest memory (Firecracker's order),
 * or call virtio_blk_drain() after pausing.
 *
 * Use: virtio_blk_create(), then virtio_mmio_create() on virtio_blk_dev();
 * at the end virtio_mmio_destroy() first, virtio_blk_destroy() last.
 */
#ifndef KILN_VIRTIO_BLK_H
#define KILN_VIRTIO_BLK_H

#include "virtio/rate_limiter.h"
#include "virtio/virtio.h"

/* Firecracker's block queue size */
#define VIRTIO_BLK_QUEUE_SIZE 256
/* s5.2.6: the device ID string of GET_ID, NUL-padded */
#define VIRTIO_BLK_ID_BYTES 20

struct virtio_blk;

struct virtio_blk_params {
	const char *id;   /* drive_id: [A-Za-z0-9_], 1..VIRTIO_ID_MAX characters */
	const char *path; /* path_on_host: a regular file or a block device */
	bool read_only;   /* is_read_only: opened O_RDONLY, VIRTIO_BLK_F_RO, writes get IOERR */
	/*
	 * cache_type "Writeback": VIRTIO_BLK_F_FLUSH is offered and FLUSH does
	 * fdatasync (a driver that does not take F_FLUSH gets every write
	 * synced, s5.2.6.2). "Unsafe" (false): F_FLUSH is not offered and a
	 * FLUSH the guest sends anyway is answered OK at once, as Firecracker.
	 */
	bool writeback;
	/* io_engine "Async": io_uring; create fails when io_uring is unavailable */
	bool async;
	const struct rl_bucket_cfg *bw, *ops; /* NULL or size/refill 0: no bucket */
	const struct rl_clock *clock;         /* tests; NULL: CLOCK_MONOTONIC */
};

/*
 * Opens the backing file (O_RDONLY for a read-only drive, else O_RDWR) and
 * sets the device up: capacity = size / 512 (a remainder is not visible to
 * the guest, with a warning), GET_ID serial, DISCARD / WRITE_ZEROES probe,
 * io_uring for Async. 0 / -errno with a message naming the drive and the
 * file (missing, unreadable, not a regular file or block device, ...).
 * VMM thread.
 */
int virtio_blk_create(struct virtio_blk **out, const struct virtio_blk_params *p, struct errbuf *e);

/* the virtio device to hand to virtio_mmio_create() */
struct virtio_dev *virtio_blk_dev(struct virtio_blk *b);

/*
 * PATCH /drives/{id}: a new backing file (new_path not NULL) and/or new
 * rate limiter buckets (update_limiter: bw / ops as rl_update, NULL keeps a
 * bucket, size 0 removes it). Everything is checked and the new file opened
 * before anything changes. Pauses the device's I/O thread inside, finishes
 * requests in flight on the old file, then swaps; a new file changes the
 * capacity in config space and raises a config-change interrupt (s5.2.6.3),
 * as Firecracker. Features stay as negotiated. 0 / -errno with a message.
 * Any thread except the device's I/O thread.
 */
int virtio_blk_update(struct virtio_blk *b, const char *new_path, const struct rl_bucket_cfg *bw,
                      const struct rl_bucket_cfg *ops, bool update_limiter, struct errbuf *e);

/* the rate limiter's settings for GET /vm/config. Any thread. */
void virtio_blk_limiter_cfg(const struct virtio_blk *b, struct rl_bucket_cfg *bw,
                            struct rl_bucket_cfg *ops);

/* counters for the metrics sink; updated by the I/O thread, read from any */
struct virtio_blk_metrics {
	uint64_t read_ops, write_ops,
	        flush_ops;                /* completed OK; DISCARD, WRITE_ZEROES are writes */
	uint64_t read_bytes, write_bytes; /* payload moved OK */
	uint64_t io_errors;               /* host I/O failures (answered IOERR) */
	uint64_t throttled;               /* times the rate limiter held a request back */
	uint64_t bad_requests;            /* invalid or unsupported requests refused */
};
void virtio_blk_metrics(const struct virtio_blk *b, struct virtio_blk_metrics *out);

/* the capacity in 512-byte sectors as the guest sees it now. Any thread. */
uint64_t virtio_blk_capacity(const struct virtio_blk *b);

/*
 * Waits until no request is in flight on the host (Async; a no-op for
 * Sync) and keeps their completions to be pushed when the device runs
 * again. For the VMM before it saves guest memory. VMM thread, device
 * paused (virtio_mmio_pause). 0 / -errno.
 */
int virtio_blk_drain(struct virtio_blk *b);

/* frees the device; its transport must be destroyed already. Safe on NULL. */
void virtio_blk_destroy(struct virtio_blk *b);

#endif
