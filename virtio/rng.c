// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/rng.c: the entropy device (virtio 1.2 s5.4). Each request is one
 * chain of device-writable buffers; the device fills up to
 * VIRTIO_RNG_MAX_REQ bytes of it straight from getrandom(2) (the payload's
 * only copy) and returns the count in the used ring.
 *
 * Rate limiting as Firecracker's entropy device: one op and the bytes of a
 * request are taken from the limiter before the request is served. When the
 * limiter refuses, the chain is put back on the ring (its avail entry is
 * taken again later, so nothing device-side is left in flight and a snapshot
 * needs no pending request) and the queue is served again when the limiter's
 * timerfd fires.
 */
#define LOG_MODULE "virtio-rng"
#include "rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#define RNG_STATE_VERSION 1

struct virtio_rng {
	struct virtio_dev dev;
	struct rate_limiter rl;
	bool timer_watched;          /* rl's timerfd is on dev.io */
	struct virtio_rng_metrics m; /* written by the I/O thread only */
	struct vq_chain chain;       /* the request being served */
};

static void count(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

/*
 * Fills the first `len` bytes of the chain's writable buffers with random
 * bytes; returns how many were written (less only if getrandom failed).
 */
static uint64_t rng_fill(struct virtio_rng *r, uint64_t len)
{
	const struct vq_chain *c = &r->chain;
	uint64_t done = 0;
	for (unsigned i = c->nr_readable; i < c->nr_segs && done < len; i++) {
		uint8_t *p = c->iov[i].iov_base;
		size_t n = c->iov[i].iov_len;
		if (n > len - done)
			n = len - done;
		while (n > 0) {
			ssize_t got = getrandom(p, n, 0);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				log_err("%s: getrandom: %s", r->dev.id,
				        got < 0 ? strerror(errno) : "0 bytes");
				count(&r->m.host_rng_fail, 1);
				return done;
			}
			p += got;
			n -= (size_t)got;
			done += (uint64_t)got;
		}
	}
	return done;
}

/*
 * Puts the chain just popped back on the ring: the next pop takes the same
 * avail entry again (Firecracker's undo_pop). The device has not pushed it,
 * so used_idx and the driver's view are unchanged.
 */
static void rng_unpop(struct virtio_rng *r)
{
	r->dev.vq[0].last_avail_idx--;
}

/* serves requests until the ring is empty or the limiter says wait; I/O thread */
static void rng_process(struct virtio_rng *r)
{
	struct virtio_dev *d = &r->dev;
	bool pushed = false;
	while (!rl_is_blocked(&r->rl) && virtio_dev_pop(d, 0, &r->chain) == 1) {
		uint64_t len = r->chain.writable_len;
		if (len > VIRTIO_RNG_MAX_REQ)
			len = VIRTIO_RNG_MAX_REQ;
		if (!rl_consume_both(&r->rl, len, 1)) {
			rng_unpop(r);
			count(&r->m.throttled, 1);
			break;
		}
		uint64_t written = rng_fill(r, len);
		if (virtio_dev_push(d, 0, r->chain.head, (uint32_t)written) < 0)
			break; /* the device is broken now */
		count(&r->m.requests, 1);
		count(&r->m.bytes, written);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_used(d, 0);
}

static void rng_queue_notify(struct virtio_dev *d, uint16_t q)
{
	(void)q; /* the transport only notifies queues that exist: there is one */
	rng_process(d->priv);
}

static void rng_timer(void *opaque, uint32_t events)
{
	struct virtio_rng *r = opaque;
	(void)events;
	if (rl_timer_expired(&r->rl) == 0)
		rng_process(r);
}

static int rng_activate(struct virtio_dev *d)
{
	struct virtio_rng *r = d->priv;
	int ret = iothread_add_fd(d->io, rl_timer_fd(&r->rl), EPOLLIN, rng_timer, r);
	if (ret < 0) {
		log_err("%s: cannot watch the rate limiter's timer: %s", d->id, strerror(-ret));
		return ret;
	}
	r->timer_watched = true;
	return 0;
}

static void rng_reset(struct virtio_dev *d)
{
	struct virtio_rng *r = d->priv;
	if (r->timer_watched)
		iothread_del_fd(d->io, rl_timer_fd(&r->rl));
	r->timer_watched = false;
}

static void rng_save(struct virtio_dev *d, struct state_writer *w)
{
	struct virtio_rng *r = d->priv;
	rl_save(&r->rl, w);
}

static int rng_restore(struct virtio_dev *d, struct state_reader *rd, uint16_t version,
                       struct errbuf *e)
{
	struct virtio_rng *r = d->priv;
	(void)version; /* only version 1 exists; the transport checked the range */
	int ret = rl_restore(&r->rl, rd, e);
	if (ret == 0 && sr_left(rd))
		ret = errf(e, EINVAL, "snapshot: virtio-rng %s: %zu bytes too many", d->id,
		           sr_left(rd));
	return ret;
}

static const struct virtio_dev_ops rng_ops = {
        .name = "virtio-rng",
        .device_id = VIRTIO_ID_RNG,
        .nr_queues = 1,
        .queue_max_size = VIRTIO_RNG_QUEUE_SIZE,
        .config_size = 0, /* s5.4.4: no device configuration layout */
        .activate = rng_activate,
        .reset = rng_reset,
        .queue_notify = rng_queue_notify,
        .state_version = RNG_STATE_VERSION,
        .state_min_version = RNG_STATE_VERSION,
        .save = rng_save,
        .restore = rng_restore,
};

int virtio_rng_create(struct virtio_rng **out, const char *id, const struct rl_bucket_cfg *bw,
                      const struct rl_bucket_cfg *ops, const struct rl_clock *clock,
                      struct errbuf *e)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > VIRTIO_ID_MAX)
		return errf(e, EINVAL, "entropy device id must be 1 to %d characters",
		            VIRTIO_ID_MAX);
	struct virtio_rng *r = calloc(1, sizeof(*r));
	if (!r)
		return errf(e, ENOMEM, "out of memory for the entropy device");
	int ret = rl_init(&r->rl, bw, ops, clock, e);
	if (ret < 0)
		goto err_free;
	r->dev.ops = &rng_ops;
	memcpy(r->dev.id, id, n + 1);
	r->dev.features = 0; /* s5.4.3: none */
	r->dev.priv = r;
	*out = r;
	return 0;

err_free:
	free(r);
	return ret;
}

struct virtio_dev *virtio_rng_dev(struct virtio_rng *r)
{
	return &r->dev;
}

void virtio_rng_limiter_cfg(const struct virtio_rng *r, struct rl_bucket_cfg *bw,
                            struct rl_bucket_cfg *ops)
{
	rl_get_cfg(&r->rl, RL_BYTES, bw);
	rl_get_cfg(&r->rl, RL_OPS, ops);
}

void virtio_rng_metrics(const struct virtio_rng *r, struct virtio_rng_metrics *out)
{
	out->requests = __atomic_load_n(&r->m.requests, __ATOMIC_RELAXED);
	out->bytes = __atomic_load_n(&r->m.bytes, __ATOMIC_RELAXED);
	out->throttled = __atomic_load_n(&r->m.throttled, __ATOMIC_RELAXED);
	out->host_rng_fail = __atomic_load_n(&r->m.host_rng_fail, __ATOMIC_RELAXED);
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	if (!r)
		return;
	rl_destroy(&r->rl);
	free(r);
}
