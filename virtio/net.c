// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/net.c: the network device (virtio 1.2 s5.1) on a tap.
 *
 * Receive (s5.1.6.3, s5.1.6.4): the device takes receive buffers from the
 * ring and keeps them, in ring order, until they are enough for the largest
 * frame the tap can hand over or the ring is empty (with MRG_RXBUF; without
 * it, one buffer is one frame), then readv()s the next frame from the tap
 * straight into them. Beyond them the read goes on into a spill area of the
 * device's own (MRG_RXBUF): a frame larger than the buffers held waits there
 * for the driver to add more, is copied into them and used then (dropped if
 * the ring cannot hold enough); without MRG_RXBUF one probe byte: a frame
 * that reaches it did not fit and is dropped. The buffers a frame filled are
 * used, the rest are kept for the next frame. With no buffers, the tap's
 * EPOLLIN is turned off until the driver adds some (its notification turns
 * it on again): frames wait in the tap's queue, nothing is dropped while the
 * guest is just slow. As buffers are filled long after they were taken, each
 * write into them marks it dirty again, so that the next Diff snapshot
 * carries the frame. The RX limiter is charged after the read, when the size is known; a frame
 * it holds back stays in its buffers, unused, until the limiter's timer.
 *
 * Transmit (s5.1.6.2): each chain is a virtio_net_hdr and a frame. The header
 * is copied once and checked against the negotiated features (a driver that
 * breaks s5.1.6.2.1 breaks the device); the copy and the chain's buffers
 * after it go to the tap in one writev(). A chain the TX limiter holds back
 * is put back on the ring and taken again when the timer fires.
 *
 * Everything here runs on the device's I/O thread except create/destroy,
 * update (which pauses the thread) and the parked callbacks.
 */
#define LOG_MODULE "virtio-net"
#include "net_int.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void count(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

/* copies between a buffer and the bytes [off, off + len) of an iovec array */
static void iov_copy(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len,
                     bool to_iov)
{
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t k = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		uint8_t *p = (uint8_t *)iov[i].iov_base + off;
		if (to_iov)
			memcpy(p, buf, k);
		else
			memcpy(buf, p, k);
		buf = (uint8_t *)buf + k;
		len -= k;
		off = 0;
	}
}

/* ------------------------------------------------------------ the tap */

static void tap_watch(struct virtio_net *n, bool rx)
{
	uint32_t ev = (rx ? EPOLLIN : 0) | (n->tx_wait_out ? EPOLLOUT : 0);
	if (n->tap_watched && ev != n->tap_events && iothread_mod_fd(n->dev.io, n->tap_fd, ev) == 0)
		n->tap_events = ev;
}

void net_tap_gone(struct virtio_net *n, const char *what, int err)
{
	count(&n->m.tap_errors, 1);
	if (n->tap_gone)
		return;
	n->tap_gone = true;
	log_err("%s: tap %s: %s: %s; the link is down, frames are dropped from now on", n->dev.id,
	        n->tap_name, what, strerror(-err));
	if (n->tap_watched)
		iothread_del_fd(n->dev.io, n->tap_fd);
	n->tap_watched = false;
	__atomic_and_fetch(&n->status, (uint16_t)~VIRTIO_NET_S_LINK_UP, __ATOMIC_SEQ_CST);
	virtio_dev_config_changed(&n->dev);
}

/* ------------------------------------------------------------- receive */

/*
 * Takes receive buffers from the ring, in ring order, while the held ones
 * add up to less than `want` bytes (with MRG_RXBUF; without it, until one
 * is held) and the device has room for more. 1: stopped with `want`
 * reached or without room for another buffer; 0: the ring ran empty first
 * (the driver notifies when it adds buffers); -1: the device is broken.
 */
static int rx_fill(struct virtio_net *n, uint64_t want)
{
	struct virtio_dev *d = &n->dev;
	const struct vq_chain *c = &n->chain;
	/* no more than the ring can hold (QueueNumMax, checked by the
	 * transport) nor than the table has room for, whatever the queue says */
	unsigned most = d->vq[VIRTIO_NET_RXQ].size;
	if (most > ARRAY_SIZE(n->rx_buf))
		most = ARRAY_SIZE(n->rx_buf);

	while (n->mrg ? n->rx_cap < want : n->rx_nr == 0) {
		if (n->rx_nr >= most)
			return 1;
		int r = virtio_dev_pop(d, VIRTIO_NET_RXQ, &n->chain);
		if (r <= 0)
			return r;
		if (c->nr_readable) {
			virtio_dev_fail(
			        d, "receive buffer %u has device-readable descriptors (s5.1.6.3)",
			        c->head);
			return -1;
		}
		/* s5.1.6.3.1: every buffer holds at least the header */
		if (c->writable_len < NET_HDR_LEN) {
			virtio_dev_fail(d,
			                "receive buffer %u of %llu bytes is shorter than the "
			                "%d-byte virtio_net_hdr (s5.1.6.3.1)",
			                c->head, (unsigned long long)c->writable_len, NET_HDR_LEN);
			return -1;
		}
		unsigned nio = c->nr_segs;
		uint64_t len = c->writable_len;
		bool full = nio > NET_RX_IOV_MAX - n->rx_iov_nr;
		if (full && n->rx_nr > 0) { /* no room for its iovecs: back on the ring */
			d->vq[VIRTIO_NET_RXQ].last_avail_idx--;
			return 1;
		}
		if (full) { /* one buffer of more pieces than readv takes */
			nio = NET_RX_IOV_MAX;
			len = 0;
			for (unsigned i = 0; i < nio; i++)
				len += c->iov[i].iov_len;
		}
		memcpy(&n->rx_iov[n->rx_iov_nr], c->iov, nio * sizeof(struct iovec));
		n->rx_buf[n->rx_nr++] =
		        (struct net_rx_buf){.head = c->head, .nr_iov = (uint16_t)nio, .len = len};
		n->rx_iov_nr += nio;
		n->rx_cap += len;
		if (full)
			return 1;
	}
	return 1;
}

/* uses the buffers of the held frame (s5.1.6.4.1: all but the last one full) */
static int rx_complete(struct virtio_net *n)
{
	struct virtio_dev *d = &n->dev;
	uint64_t left = n->rx_held_len, freed = 0;
	unsigned k = n->rx_held_bufs, iovs = 0;

	for (unsigned i = 0; i < k; i++) {
		const struct net_rx_buf *b = &n->rx_buf[i];
		uint64_t w = b->len < left ? b->len : left;
		if (virtio_dev_push(d, VIRTIO_NET_RXQ, b->head, (uint32_t)w) < 0)
			return -1;
		left -= w;
		iovs += b->nr_iov;
		freed += b->len;
	}
	n->rx_nr -= k;
	memmove(n->rx_buf, n->rx_buf + k, n->rx_nr * sizeof(n->rx_buf[0]));
	n->rx_iov_nr -= iovs;
	memmove(n->rx_iov, n->rx_iov + iovs, n->rx_iov_nr * sizeof(n->rx_iov[0]));
	n->rx_cap -= freed;
	n->rx_held = false;
	count(&n->m.rx_packets, 1);
	count(&n->m.rx_bytes, n->rx_held_len - NET_HDR_LEN);
	return 1;
}

/*
 * Marks the bytes [off, off + len) of the held buffers written by the host.
 * The device fills buffers it took from the ring long before (queue.c
 * marked them when they were taken, and a snapshot may have collected that
 * mark since), so every write marks them again for Diff snapshots and
 * migration.
 */
static void rx_mark_written(struct virtio_net *n, uint64_t off, uint64_t len)
{
	for (unsigned i = 0; i < n->rx_iov_nr && len; i++) {
		if (off >= n->rx_iov[i].iov_len) {
			off -= n->rx_iov[i].iov_len;
			continue;
		}
		size_t k = n->rx_iov[i].iov_len - off < len ? n->rx_iov[i].iov_len - off : len;
		gm_mark_dirty(n->dev.gm, (uint8_t *)n->rx_iov[i].iov_base + off, k);
		len -= k;
		off = 0;
	}
}

/*
 * s5.1.6.4.1: only what the driver negotiated reaches it. Fixes the header
 * the tap wrote (flags, num_buffers); false: drop the frame (one the tap
 * queued before the driver turned offloads off).
 */
static bool rx_fix_header(struct virtio_net *n, unsigned nbufs)
{
	uint8_t h[2];
	iov_copy(n->rx_iov, n->rx_iov_nr, 0, h, 2, false);
	unsigned gso = h[1];
	if (gso >= 32 || !(n->rx_gso_ok & (1u << gso)))
		return false;
	if (!n->guest_csum) {
		if (h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return false;
		h[0] = 0;
		iov_copy(n->rx_iov, n->rx_iov_nr, 0, h, 1, true);
	}
	uint8_t nb[2] = {(uint8_t)nbufs, (uint8_t)(nbufs >> 8)}; /* le16 num_buffers */
	iov_copy(n->rx_iov, n->rx_iov_nr, 10, nb, 2, true);
	rx_mark_written(n, 0, NET_HDR_LEN);
	return true;
}

/*
 * A frame of `len` bytes (virtio header included) lies whole in the held
 * buffers: fixes its header, charges the limiter and uses its buffers.
 * 1: handled (used, or dropped for its header); -1: stop (held back by the
 * limiter, or the device broke).
 */
static int rx_deliver(struct virtio_net *n, uint64_t len)
{
	unsigned k = 1;
	for (uint64_t acc = n->rx_buf[0].len; acc < len; k++)
		acc += n->rx_buf[k].len;
	if (!rx_fix_header(n, k)) {
		count(&n->m.rx_dropped, 1);
		return 1;
	}
	n->rx_held = true;
	n->rx_held_len = len;
	n->rx_held_bufs = k;
	if (!rl_consume_both(&n->rl_rx, len - NET_HDR_LEN, 1)) {
		count(&n->m.rx_throttled, 1);
		return -1;
	}
	return rx_complete(n);
}

/*
 * Reads one frame into the held buffers and, beyond them, into the spill
 * area (MRG_RXBUF) or one probe byte (without it: one buffer per frame).
 * 1: a frame was handled (used, dropped, or spilled: it waits for more
 * buffers); 0: the tap is empty; -1: stop (held by the limiter, tap gone,
 * device broken).
 */
static int rx_read(struct virtio_net *n)
{
	unsigned niov = n->rx_iov_nr; /* without MRG_RXBUF, one buffer is held */
	uint64_t cap = n->rx_cap;
	ssize_t got;

	n->rx_iov[niov] = (struct iovec){.iov_base = n->rx_spill,
	                                 .iov_len = n->mrg ? sizeof(n->rx_spill) : 1};
	do
		got = readv(n->tap_fd, n->rx_iov, (int)niov + 1);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		if (errno == EAGAIN)
			return 0;
		net_tap_gone(n, "read", -errno);
		return -1;
	}
	uint64_t len = (uint64_t)got;
	rx_mark_written(n, 0, len < cap ? len : cap);
	/* larger than the buffers without MRG_RXBUF (the MTU grew, or the driver
	 * gave small buffers), larger than any frame, or not even a header */
	if ((!n->mrg && len > cap) || len > NET_HDR_LEN + VIRTIO_NET_MAX_FRAME ||
	    len < NET_HDR_LEN + NET_ETH_HLEN) {
		count(&n->m.rx_dropped, 1);
		return 1;
	}
	if (len > cap) { /* its tail is in rx_spill until the driver adds buffers */
		n->rx_spilled = true;
		n->rx_spill_len = len;
		n->rx_spill_at = cap;
		return 1;
	}
	return rx_deliver(n, len);
}

/*
 * The spilled frame: moves its tail from rx_spill into the buffers taken
 * since, then delivers it; drops it when the device cannot hold buffers
 * enough for it. 1: handled; -1: stop (as rx_deliver).
 */
static int rx_unspill(struct virtio_net *n)
{
	uint64_t len = n->rx_spill_len, at = n->rx_spill_at;

	n->rx_spilled = false;
	if (n->rx_cap < len) {
		count(&n->m.rx_dropped, 1);
		return 1;
	}
	iov_copy(n->rx_iov, n->rx_iov_nr, at, n->rx_spill, len - at, true);
	rx_mark_written(n, at, len - at);
	return rx_deliver(n, len);
}

/*
 * The MMDS stack's next frame into the held buffers, ahead of the tap's
 * (as Firecracker's read_from_mmds_or_tap). 1: one was handled (used,
 * dropped, or held by the limiter); 0: none is due; -1: wait for buffers.
 */
static int rx_mmds(struct virtio_net *n)
{
	size_t len = net_mmds_next(n);

	if (!len) {
		n->mmds_idle = true;
		return 0;
	}
	if (n->rx_cap < len && n->mrg && rx_fill(n, len) <= 0)
		return -1;     /* it waits in mmds_out for more buffers */
	if (n->rx_cap < len) { /* buffers too small for 1.5 KB (without MRG_RXBUF) */
		n->mmds_out_len = 0;
		count(&n->m.rx_dropped, 1);
		return 1;
	}
	iov_copy(n->rx_iov, n->rx_iov_nr, 0, n->mmds_out, len, true);
	rx_mark_written(n, 0, len);
	n->mmds_out_len = 0;
	mmds_ns_delivered(n->mmds, len - NET_HDR_LEN);
	return rx_deliver(n, len) < 0 ? -1 : 1;
}

/*
 * The next step of the receive loop: 1 a frame was handled, 0 the tap is
 * empty (watch it), -1 wait for something else (buffers, the limiter's
 * timer, a reset).
 */
static int rx_step(struct virtio_net *n)
{
	int r;

	/* a frame already in the guest's buffers needs no tap */
	if (n->rx_held) {
		if (!rl_consume_both(&n->rl_rx, n->rx_held_len - NET_HDR_LEN, 1)) {
			count(&n->m.rx_throttled, 1);
			return -1;
		}
		return rx_complete(n);
	}
	/* a frame partly in rx_spill needs more buffers, or room for them */
	if (n->rx_spilled) {
		r = rx_fill(n, n->rx_spill_len);
		if (r < 0 || (r == 0 && n->rx_cap < n->rx_spill_len))
			return -1;
		return rx_unspill(n);
	}
	if ((n->tap_gone && !n->mmds) || rl_is_blocked(&n->rl_rx))
		return -1;
	/* s5.1.6.3: as many buffers as the largest frame needs while the ring
	 * has them (MRG_RXBUF), but whatever is held serves: a frame that does
	 * not fit waits in rx_spill for the rest */
	r = rx_fill(n, n->rx_target);
	if (r < 0 || n->rx_nr == 0)
		return -1;
	if (n->mmds && (r = rx_mmds(n)) != 0)
		return r;
	return n->tap_gone ? -1 : rx_read(n);
}

/* moves frames from the tap to the guest until something says wait */
static void rx_process(struct virtio_net *n)
{
	struct virtio_dev *d = &n->dev;
	bool listen = true; /* keep EPOLLIN: the tap is empty, or the batch ended */
	unsigned i, done = 0;

	n->mmds_idle = false;
	for (i = 0; i < NET_RX_BATCH; i++) {
		int r = virtio_dev_broken(d) ? -1 : rx_step(n);
		if (r <= 0) {
			listen = r == 0;
			break;
		}
		done++;
	}
	tap_watch(n, listen);
	if (done)
		virtio_dev_notify_used(d, VIRTIO_NET_RXQ);
	/* the MMDS: more after the other fds' turn, its next retransmission,
	 * or nothing until buffers or the limiter's timer call again */
	if (n->mmds)
		net_mmds_arm(n, i == NET_RX_BATCH ? 1
		                : n->mmds_idle    ? mmds_ns_deadline(n->mmds)
		                                  : 0);
}

/* ------------------------------------------------------------ transmit */

/* s5.1.6.2.1: what a driver must not send, given the negotiated features */
static const char *tx_hdr_error(uint64_t f, const uint8_t *h)
{
	uint8_t flags = h[0], gso = h[1];
	uint16_t gso_size = (uint16_t)(h[4] | h[5] << 8);

	if ((flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(f & NET_F(CSUM)))
		return "NEEDS_CSUM without VIRTIO_NET_F_CSUM";
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return NULL;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4 && !(f & NET_F(HOST_TSO4)))
		return "gso_type TCPV4 without VIRTIO_NET_F_HOST_TSO4";
	if (gso == VIRTIO_NET_HDR_GSO_TCPV6 && !(f & NET_F(HOST_TSO6)))
		return "gso_type TCPV6 without VIRTIO_NET_F_HOST_TSO6";
	if (gso == VIRTIO_NET_HDR_GSO_UDP && !(f & NET_F(HOST_UFO)))
		return "gso_type UDP without VIRTIO_NET_F_HOST_UFO";
	if (gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6 &&
	    gso != VIRTIO_NET_HDR_GSO_UDP)
		return "an unknown gso_type (or ECN, not offered)";
	if (!(flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return "a GSO frame without NEEDS_CSUM";
	if (gso_size == 0)
		return "a GSO frame with gso_size 0";
	return NULL;
}

/* the header copy, then the chain's readable bytes after the header; -1: too many pieces */
static int tx_iovecs(struct virtio_net *n)
{
	const struct vq_chain *c = &n->chain;
	uint64_t skip = NET_HDR_LEN;
	int k = 1;

	n->tx_iov[0] = (struct iovec){.iov_base = n->tx_hdr, .iov_len = NET_HDR_LEN};
	for (unsigned i = 0; i < c->nr_readable; i++) {
		if (skip >= c->iov[i].iov_len) {
			skip -= c->iov[i].iov_len;
			continue;
		}
		if (k == NET_IOV_MAX)
			return -1;
		n->tx_iov[k++] = (struct iovec){.iov_base = (uint8_t *)c->iov[i].iov_base + skip,
		                                .iov_len = c->iov[i].iov_len - skip};
		skip = 0;
	}
	return k;
}

/* a write failed with `err`: 1 the frame is dropped, 0 wait for EPOLLOUT */
static int tx_write_failed(struct virtio_net *n, int err, uint64_t len)
{
	if (err == EAGAIN) {
		rl_replenish(&n->rl_tx, len, RL_BYTES);
		rl_replenish(&n->rl_tx, 1, RL_OPS);
		n->tx_wait_out = true;
		tap_watch(n, n->tap_events & EPOLLIN);
		return 0;
	}
	count(&n->m.tx_dropped, 1);
	if (err == EINVAL || err == EFAULT || err == ENOMEM || err == ENOBUFS || err == EMSGSIZE)
		return 1; /* the tap refused this frame (its headers), not the tap's fault */
	if (err != EIO) {
		net_tap_gone(n, "write", -err);
		return 1;
	}
	count(&n->m.tap_errors, 1);
	if (!n->tap_down)
		log_warn("%s: tap %s is down: dropping transmitted frames until it is up",
		         n->dev.id, n->tap_name);
	n->tap_down = true;
	return 1;
}

/* 1: the chain is done (sent or dropped); 0: back on the ring for later; -1: broken */
static int tx_frame(struct virtio_net *n)
{
	struct virtio_dev *d = &n->dev;
	const struct vq_chain *c = &n->chain;

	if (c->readable_len < NET_HDR_LEN) {
		virtio_dev_fail(d,
		                "transmit chain %u of %llu bytes has no room for the %d-byte "
		                "virtio_net_hdr (s5.1.6.2)",
		                c->head, (unsigned long long)c->readable_len, NET_HDR_LEN);
		return -1;
	}
	vq_chain_read(c, 0, n->tx_hdr, NET_HDR_LEN);
	const char *bad = tx_hdr_error(d->driver_features, n->tx_hdr);
	if (bad) {
		virtio_dev_fail(d, "transmit chain %u: %s (s5.1.6.2.1)", c->head, bad);
		return -1;
	}
	/* s5.1.6.2: flags the device does not use are ignored; num_buffers is unused */
	n->tx_hdr[0] &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	n->tx_hdr[10] = n->tx_hdr[11] = 0;
	uint64_t len = c->readable_len - NET_HDR_LEN;
	if (net_mmds_tx(n, len))
		return 1; /* the MMDS's, never the tap's; not charged to the limiter */
	int niov = tx_iovecs(n);
	if (len < NET_ETH_HLEN || len > VIRTIO_NET_MAX_FRAME || niov < 0 || n->tap_gone) {
		count(&n->m.tx_dropped, 1);
		return 1;
	}
	if (!rl_consume_both(&n->rl_tx, len, 1)) {
		d->vq[VIRTIO_NET_TXQ].last_avail_idx--; /* taken again after the timer */
		count(&n->m.tx_throttled, 1);
		return 0;
	}
	ssize_t w;
	do
		w = writev(n->tap_fd, n->tx_iov, niov);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		int r = tx_write_failed(n, errno, len);
		if (r == 0)
			d->vq[VIRTIO_NET_TXQ].last_avail_idx--;
		return r;
	}
	if (n->tap_down)
		log_info("%s: tap %s is up again", d->id, n->tap_name);
	n->tap_down = false;
	count(&n->m.tx_packets, 1);
	count(&n->m.tx_bytes, len);
	return 1;
}

static void tx_process(struct virtio_net *n)
{
	struct virtio_dev *d = &n->dev;
	unsigned i, done = 0;

	for (i = 0; i < NET_TX_BATCH; i++) {
		if (n->tx_wait_out || rl_is_blocked(&n->rl_tx) ||
		    virtio_dev_pop(d, VIRTIO_NET_TXQ, &n->chain) <= 0)
			break;
		if (tx_frame(n) <= 0 || virtio_dev_push(d, VIRTIO_NET_TXQ, n->chain.head, 0) <
		                                0) /* s5.1.6.2: nothing written */
			break;
		done++;
	}
	/* more may wait: come back after the other fds had their turn */
	if (i == NET_TX_BATCH)
		eventfd_write(d->transport->kick_fd[VIRTIO_NET_TXQ], 1);
	if (done)
		virtio_dev_notify_used(d, VIRTIO_NET_TXQ);
	if (n->mmds_kick) { /* the MMDS may have answers */
		n->mmds_kick = false;
		rx_process(n);
	}
}

/* ------------------------------------------------------ event sources */

void net_queue_notify(struct virtio_dev *d, uint16_t q)
{
	if (q == VIRTIO_NET_RXQ)
		rx_process(d->priv); /* new receive buffers */
	else
		tx_process(d->priv);
}

void net_tap_event(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;

	/* tun reports EPOLLERR once the interface is deleted */
	if (events & (EPOLLERR | EPOLLHUP)) {
		int r = tap_check(n->tap_fd);
		net_tap_gone(n, "poll", r < 0 ? r : -EIO);
		return;
	}
	if (events & EPOLLOUT) {
		n->tx_wait_out = false;
		tap_watch(n, n->tap_events & EPOLLIN);
		tx_process(n);
	}
	if (events & EPOLLIN)
		rx_process(n);
}

void net_rx_timer(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	(void)events;
	if (rl_timer_expired(&n->rl_rx) == 0)
		rx_process(n);
}

void net_mmds_timer(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	uint64_t ticks;
	(void)events;
	if (read(n->mmds_timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		log_warn("%s: the MMDS's timer: %s", n->dev.id, strerror(errno));
	rx_process(n);
}

void net_tx_timer(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	(void)events;
	if (rl_timer_expired(&n->rl_tx) == 0)
		tx_process(n);
}
