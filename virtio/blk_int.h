/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/blk_int.h: what the block device's files share, not for users.
 *   blk.c        the device: create/update/destroy, config space, features,
 *                activate/reset, saved state
 *   blk_req.c    requests: parsing and checking a chain (s5.2.6), the Sync
 *                engine, DISCARD / WRITE_ZEROES, finishing a request
 *   blk_uring.c  the Async engine: io_uring, requests in flight, drain
 */
#ifndef KILN_VIRTIO_BLK_INT_H
#define KILN_VIRTIO_BLK_INT_H

#include "blk.h"

#include <liburing.h>

/* s5.2.3 feature bits kiln offers */
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* s5.2.6 request types and status values */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

#define BLK_SECTOR        512u
#define BLK_HDR_LEN       16u /* struct virtio_blk_req up to data[] */
#define BLK_SEG_LEN       16u /* struct virtio_blk_discard_write_zeroes */
#define BLK_WZ_FLAG_UNMAP 1u
/* limits offered in config space (s5.2.4) */
#define BLK_SEG_MAX        (VIRTIO_BLK_QUEUE_SIZE - 2) /* header and status take two */
#define BLK_MAX_DZ_SECTORS 0x3fffffu                   /* 2 GiB - 512 per DISCARD / WRITE_ZEROES */
#define BLK_MAX_DZ_SEG     32u
#define BLK_DISCARD_ALIGN  8u /* sectors: 4 KiB, the usual file system block */

/* a request being served, as parsed from its chain */
struct blk_req {
	uint32_t type;
	uint16_t head;
	uint8_t *status;   /* the status byte: the chain's last writable byte */
	uint64_t sector;   /* IN / OUT */
	uint64_t data_len; /* IN / OUT payload, GET_ID buffer, DISCARD / WRITE_ZEROES segments */
	uint32_t ok_len;   /* bytes written into the chain on success, status included */
};

/* a request finished while the device could not push it (drain, save) */
struct blk_done {
	uint16_t head;
	uint32_t len;
};

struct blk_uring; /* the Async engine, below */

struct virtio_blk {
	struct virtio_dev dev;
	/* serialises update, drain and the parked callbacks (reset, activate,
	 * save, restore) against each other: each of them believes it has the
	 * device alone once the I/O thread is parked */
	pthread_mutex_t lock;

	bool read_only, writeback;
	bool can_punch, can_zero; /* the first backing file's fallocate support */
	bool dsync;               /* every write synced: Writeback, F_FLUSH not negotiated */

	/* the backing file: used by the I/O thread, swapped while it is parked */
	int fd;
	bool is_blkdev;
	uint64_t capacity; /* sectors; atomic, config space reads it from vCPUs */
	uint8_t serial[VIRTIO_BLK_ID_BYTES];

	struct rate_limiter rl;
	bool timer_watched;
	int efd; /* eventfd: io_uring completions and "push what is done" */
	bool efd_watched;
	struct blk_uring *u; /* NULL for the Sync engine */
	bool stalled;        /* the Async engine ran out of room: serve again on completion */

	struct blk_done done[VIRTIO_BLK_QUEUE_SIZE];
	unsigned nr_done;

	struct virtio_blk_metrics m; /* written by one thread at a time, read with atomics */
	uint64_t log_ns;             /* rate limit of I/O error lines */
	unsigned log_suppressed;

	struct vq_chain chain;         /* the chain being parsed */
	struct iovec iov[VQ_MAX_SIZE]; /* its payload, for the Sync engine */
};

/* ------------------------------------------------------------ blk.c */

/* adds n to a counter of b->m (single writer, readers use atomics) */
void blk_count(uint64_t *counter, uint64_t n);
/* an I/O error line, at most one a second per device */
void blk_log_io(struct virtio_blk *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------- blk_req.c */

/* serves the request queue until it is empty, the limiter blocks or the
 * Async engine is full. I/O thread. */
void blk_serve(struct virtio_blk *b);

/*
 * Finishes a request: writes its status byte, counts it, and returns it to
 * the driver (virtio_dev_push), or, with `defer`, keeps it in b->done to be
 * pushed later by blk_push_done(). Returns whether it was pushed.
 */
bool blk_finish(struct virtio_blk *b, const struct blk_req *rq, uint8_t status, bool defer);

/* pushes b->done; returns whether anything was pushed. I/O thread. */
bool blk_push_done(struct virtio_blk *b);

/* ------------------------------------------------------- blk_uring.c */

/*
 * The Async engine's state, private to blk_uring.c; here only so that the
 * unit tests can reach the ring and the counts.
 */
#define POOL_IOVS (2 * VQ_MAX_SIZE) /* at least one largest chain */

struct blk_slot {
	bool busy;
	struct blk_req rq;
	uint64_t expect; /* cqe->res of a complete success */
};

struct blk_uring {
	struct io_uring ring;
	unsigned inflight; /* queued or submitted, not reaped: one CQE each is to come */
	unsigned queued;   /* SQEs given out and not yet taken by the kernel */
	unsigned pool_used;
	struct blk_slot slot[VIRTIO_BLK_QUEUE_SIZE]; /* by head: heads < queue size */
	struct iovec pool[POOL_IOVS];
};

/*
 * Sets up the ring (VIRTIO_BLK_QUEUE_SIZE entries) with b->efd registered
 * for completions. -errno with a message when io_uring is unavailable.
 */
int blk_uring_create(struct virtio_blk *b, struct errbuf *e);
void blk_uring_destroy(struct virtio_blk *b);

/*
 * Queues an IN, OUT or FLUSH request whose payload is iov[0..n) (from
 * blk_uring_iovs). 0; -EEXIST when the chain's head is already in flight,
 * -ERANGE when it is not below VIRTIO_BLK_QUEUE_SIZE (the driver broke the
 * protocol); -EAGAIN when the ring has no room (b->stalled is set: serve
 * again after completions). I/O thread.
 */
int blk_uring_queue(struct virtio_blk *b, const struct blk_req *rq, const struct iovec *iov,
                    unsigned n);
/* room for n payload iovecs that stay valid until the next submit; NULL: no room */
struct iovec *blk_uring_iovs(struct virtio_blk *b, unsigned n);
/* hands the queued requests to the kernel. I/O thread. */
void blk_uring_submit(struct virtio_blk *b);
/* finishes the requests the kernel completed; returns whether any was pushed. I/O thread. */
bool blk_uring_reap(struct virtio_blk *b);
/*
 * Waits for every request in flight and finishes it into b->done (or, with
 * `discard`, forgets it: the queue is being reset). Parked, b->lock held.
 */
void blk_uring_drain(struct virtio_blk *b, bool discard);

#endif
