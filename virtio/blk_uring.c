// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/blk_uring.c: the Async engine -- IN, OUT and FLUSH go to the
 * kernel through an io_uring (liburing) instead of blocking the I/O thread.
 *
 * One ring of VIRTIO_BLK_QUEUE_SIZE entries per drive. Requests popped in
 * one notification are queued as SQEs and submitted together at the end of
 * the batch (blk_uring_submit). The kernel signals completions on the
 * drive's eventfd (io_uring_register_eventfd), which the I/O thread
 * watches; it then reaps the CQEs, writes the status bytes and pushes the
 * chains (blk_uring_reap).
 *
 * Requests in flight live in a table preallocated at create and indexed by
 * the chain's head: a head is unique while the device holds it, so the
 * table never fills, and a head that arrives while it is still in flight
 * means the driver broke the protocol. The table has a slot per entry of
 * the largest queue the device offers; a head beyond it (which the
 * transport does not let through) is refused, not looked up. The payload
 * iovecs of the queued SQEs come from a preallocated pool; the kernel
 * copies them when it takes the SQE (IORING_FEAT_SUBMIT_STABLE, required at
 * create), so the pool is reused after every submit. Nothing is allocated
 * per request.
 *
 * Draining (reset, save, PATCH with a new file, virtio_blk_drain) waits for
 * every request in flight from the thread that parked the I/O thread.
 */
#define LOG_MODULE "virtio-blk"
#include "blk_int.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

int blk_uring_create(struct virtio_blk *b, struct errbuf *e)
{
	struct blk_uring *u = calloc(1, sizeof(*u));
	if (!u)
		return errf(e, ENOMEM, "drive %s: out of memory for the io_uring engine",
		            b->dev.id);
	struct io_uring_params p = {0};
#ifdef IORING_SETUP_SUBMIT_ALL
	/* take every SQE even when one fails to start (Linux 5.18+) */
	p.flags = IORING_SETUP_SUBMIT_ALL;
#endif
	int ret = io_uring_queue_init_params(VIRTIO_BLK_QUEUE_SIZE, &u->ring, &p);
	if (ret == -EINVAL && p.flags) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(VIRTIO_BLK_QUEUE_SIZE, &u->ring, &p);
	}
	if (ret < 0) {
		ret = errf(e, -ret,
		           "drive %s: io_engine Async needs io_uring, which is not available here "
		           "(%s); use io_engine Sync",
		           b->dev.id, strerror(-ret));
		goto err_free;
	}
	if (!(p.features & IORING_FEAT_SUBMIT_STABLE)) {
		ret = errf(e, ENOSYS,
		           "drive %s: io_engine Async needs a kernel with stable io_uring "
		           "submissions (Linux 5.5+); use io_engine Sync",
		           b->dev.id);
		goto err_exit;
	}
	ret = io_uring_register_eventfd(&u->ring, b->efd);
	if (ret < 0) {
		ret = errf(e, -ret, "drive %s: io_uring_register_eventfd: %s", b->dev.id,
		           strerror(-ret));
		goto err_exit;
	}
	b->u = u;
	return 0;

err_exit:
	io_uring_queue_exit(&u->ring);
err_free:
	free(u);
	return ret;
}

void blk_uring_destroy(struct virtio_blk *b)
{
	struct blk_uring *u = b->u;
	blk_uring_drain(b, true); /* nothing may write into guest memory any more */
	io_uring_queue_exit(&u->ring);
	free(u);
	b->u = NULL;
}

struct iovec *blk_uring_iovs(struct virtio_blk *b, unsigned n)
{
	struct blk_uring *u = b->u;
	if (u->pool_used + n > POOL_IOVS || io_uring_sq_space_left(&u->ring) == 0)
		blk_uring_submit(b);
	if (u->pool_used + n > POOL_IOVS || io_uring_sq_space_left(&u->ring) == 0) {
		b->stalled = true;
		return NULL;
	}
	struct iovec *iov = u->pool + u->pool_used;
	u->pool_used += n;
	return iov;
}

int blk_uring_queue(struct virtio_blk *b, const struct blk_req *rq, const struct iovec *iov,
                    unsigned n)
{
	struct blk_uring *u = b->u;
	/* the transport offers VIRTIO_BLK_QUEUE_SIZE entries; the table does not trust it */
	if (rq->head >= ARRAY_SIZE(u->slot))
		return -ERANGE;
	struct blk_slot *s = &u->slot[rq->head];
	if (s->busy)
		return -EEXIST;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring); /* blk_uring_iovs made room */
	if (!sqe) {
		b->stalled = true;
		return -EAGAIN;
	}
	off_t off = (off_t)(rq->sector * BLK_SECTOR);
	switch (rq->type) {
	case VIRTIO_BLK_T_IN:
		io_uring_prep_readv(sqe, b->fd, iov, n, off);
		break;
	case VIRTIO_BLK_T_OUT:
		io_uring_prep_writev(sqe, b->fd, iov, n, off);
		sqe->rw_flags = b->dsync ? RWF_DSYNC : 0;
		break;
	default: /* FLUSH */
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		break;
	}
	sqe->user_data = rq->head;
	s->busy = true;
	s->rq = *rq;
	s->expect = rq->type == VIRTIO_BLK_T_FLUSH ? 0 : rq->data_len;
	u->inflight++;
	u->queued++;
	return 0;
}

void blk_uring_submit(struct virtio_blk *b)
{
	struct blk_uring *u = b->u;
	int r;

	if (!u->queued)
		return;
	do
		r = io_uring_submit(&u->ring);
	while (r == -EINTR);
	if (r < 0)
		blk_log_io(b, "io_uring submit: %s; retrying when requests complete", strerror(-r));
	u->queued = io_uring_sq_ready(&u->ring);
	if (u->queued)
		b->stalled = true; /* the pool stays taken until the kernel has them all */
	else
		u->pool_used = 0;
}

/* one CQE: the request finishes (pushed, deferred, or forgotten) */
static bool blk_uring_complete(struct virtio_blk *b, uint64_t tag, int res, bool defer,
                               bool discard)
{
	struct blk_uring *u = b->u;
	/* every SQE queued gets exactly one CQE: count it even if its tag is
	 * unknown, or a drain would wait for it forever */
	if (u->inflight)
		u->inflight--;
	if (tag >= ARRAY_SIZE(u->slot) || !u->slot[tag].busy) {
		log_err("%s: io_uring completion for %llu, which is not in flight", b->dev.id,
		        (unsigned long long)tag);
		return false;
	}
	struct blk_slot *s = &u->slot[tag];
	s->busy = false;
	if (discard)
		return false;
	uint8_t st = VIRTIO_BLK_S_OK;
	if (res < 0 || (uint64_t)res != s->expect) {
		const char *what = s->rq.type == VIRTIO_BLK_T_IN    ? "read"
		                   : s->rq.type == VIRTIO_BLK_T_OUT ? "write"
		                                                    : "flush";
		blk_count(&b->m.io_errors, 1);
		if (res < 0)
			blk_log_io(b, "%s at sector %llu failed: %s", what,
			           (unsigned long long)s->rq.sector, strerror(-res));
		else
			blk_log_io(b, "%s at sector %llu moved %d of %llu bytes (end of file?)",
			           what, (unsigned long long)s->rq.sector, res,
			           (unsigned long long)s->expect);
		st = VIRTIO_BLK_S_IOERR;
	}
	return blk_finish(b, &s->rq, st, defer);
}

bool blk_uring_reap(struct virtio_blk *b)
{
	struct blk_uring *u = b->u;
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	bool pushed = false;

	io_uring_for_each_cqe(&u->ring, head, cqe)
	{
		pushed |= blk_uring_complete(b, cqe->user_data, cqe->res, false, false);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
	return pushed;
}

void blk_uring_drain(struct virtio_blk *b, bool discard)
{
	struct blk_uring *u = b->u;

	while (u->inflight) {
		struct io_uring_cqe *cqe;
		/* submits what is still queued, then waits for one completion */
		int r = io_uring_submit_and_wait(&u->ring, 1);
		if (r == -EINTR)
			continue;
		if (r < 0 && r != -EAGAIN && r != -EBUSY) {
			log_err("%s: cannot wait for %u requests in flight: %s", b->dev.id,
			        u->inflight, strerror(-r));
			return;
		}
		while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
			blk_uring_complete(b, cqe->user_data, cqe->res, true, discard);
			io_uring_cqe_seen(&u->ring, cqe);
		}
	}
	u->queued = 0;
	u->pool_used = 0;
}
