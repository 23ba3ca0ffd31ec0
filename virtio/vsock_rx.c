// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/vsock_rx.c: the rx queue of the vsock device (virtio 1.2 s5.10.6):
 * everything kiln owes the guest -- RSTs first, then one packet per
 * connection in turn: REQUEST/RESPONSE, host bytes read from the unix
 * socket straight into the guest's buffer (never more than the guest's
 * credit, s5.10.6.3), credit packets, and SHUTDOWN once the host's stream
 * ended. A connection with nothing to send leaves the queue; what waits on
 * the guest (a buffer, credit) waits in the socket, not in kiln.
 */
#define LOG_MODULE "virtio-vsock"
#include "vsock_int.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#define BUF VIRTIO_VSOCK_CONN_BUF

/* reads host bytes into v->chain after the header; bytes, 0 at EOF, -errno */
static ssize_t read_to_chain(struct virtio_vsock *v, struct vsock_conn *c)
{
	const struct vq_chain *ch = &v->chain;
	uint64_t room = ch->writable_len - VSOCK_HDR_LEN;
	uint32_t credit = vsock_peer_credit(c);
	if (room > credit)
		room = credit;
	if (room > VSOCK_MAX_PKT_PAYLOAD)
		room = VSOCK_MAX_PKT_PAYLOAD;
	if (!room)
		return -ENOBUFS;
	int n = vsock_iov_slice(ch->iov + ch->nr_readable, ch->nr_segs - ch->nr_readable,
	                        VSOCK_HDR_LEN, room, v->iov);
	ssize_t r;
	do
		r = readv(c->fd, v->iov, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/*
 * Writes c's next packet into v->chain: the bytes written (header and
 * payload), 0 when c has nothing to send now, -1 when c was closed.
 * Order: REQUEST/RESPONSE, data, credit, then SHUTDOWN (after all data).
 */
static int conn_fill(struct virtio_vsock *v, struct vsock_conn *c)
{
	struct vsock_hdr h = {
	        .src_cid = VSOCK_HOST_CID,
	        .dst_cid = v->guest_cid,
	        .src_port = c->local_port,
	        .dst_port = c->peer_port,
	        .type = VSOCK_TYPE_STREAM,
	        .buf_alloc = BUF,
	};
	if (c->pend & VP_REQUEST) {
		h.op = VSOCK_OP_REQUEST;
		c->pend &= ~VP_REQUEST;
		c->guest_knows = true;
	} else if (c->pend & VP_RESPONSE) {
		h.op = VSOCK_OP_RESPONSE;
		c->pend &= ~VP_RESPONSE;
	} else if (vsock_data_ready(c)) {
		ssize_t n = read_to_chain(v, c);
		if (n > 0) {
			h.op = VSOCK_OP_RW;
			h.len = (uint32_t)n;
			c->tx_cnt += (uint32_t)n;
			vsock_count(&v->m.rx_bytes, (uint64_t)n);
		} else if (n == 0) {
			c->host_eof = true;
			c->host_readable = false;
		} else if (n == -EAGAIN || n == -EWOULDBLOCK) {
			c->host_readable = false;
		} else if (n != -ENOBUFS) {
			log_debug("%s: read from host port %u: %s; reset", v->dev.id, c->local_port,
			          strerror((int)-n));
			vsock_conn_close(v, c, true, true);
			return -1;
		}
	}
	if (!h.op && (c->pend & VP_CREDIT_UPDATE)) {
		h.op = VSOCK_OP_CREDIT_UPDATE;
	} else if (!h.op && (c->pend & VP_CREDIT_REQUEST)) {
		h.op = VSOCK_OP_CREDIT_REQUEST;
		c->pend &= ~VP_CREDIT_REQUEST;
	} else if (!h.op && (vsock_shut_due(c) & ~c->shut_sent)) {
		h.op = VSOCK_OP_SHUTDOWN;
		h.flags = vsock_shut_due(c);
		c->shut_sent |= h.flags;
		/* s5.10.6.6: the guest answers RST, or kiln sends one after a while */
		if (c->shut_sent == VSOCK_SHUT_BOTH)
			vsock_conn_deadline(v, c, VIRTIO_VSOCK_SHUTDOWN_TIMEOUT_MS);
	}
	if (!h.op)
		return 0;
	h.fwd_cnt = c->fwd_cnt; /* every packet tells the guest our buffer state */
	c->last_fwd_sent = c->fwd_cnt;
	c->pend &= ~VP_CREDIT_UPDATE;
	uint8_t raw[VSOCK_HDR_LEN];
	vsock_hdr_encode(raw, &h);
	vq_chain_write(&v->chain, 0, raw, sizeof(raw));
	return VSOCK_HDR_LEN + (int)h.len;
}

/* the oldest queued RST into v->chain */
static int rst_fill(struct virtio_vsock *v)
{
	const struct vsock_rst *r = &v->rst[v->rst_head];
	struct vsock_hdr h = {
	        .src_cid = r->src_cid,
	        .dst_cid = v->guest_cid,
	        .src_port = r->src_port,
	        .dst_port = r->dst_port,
	        .type = VSOCK_TYPE_STREAM,
	        .op = VSOCK_OP_RST,
	};
	uint8_t raw[VSOCK_HDR_LEN];
	vsock_hdr_encode(raw, &h);
	vq_chain_write(&v->chain, 0, raw, sizeof(raw));
	v->rst_head = (v->rst_head + 1) % VSOCK_RST_RING;
	v->rst_len--;
	return VSOCK_HDR_LEN;
}

/* the next connection with something for the guest (dropping those without) */
static struct vsock_conn *rxq_first(struct virtio_vsock *v)
{
	while (!vsock_link_empty(&v->rxq)) {
		struct vsock_conn *c = VSOCK_CONN_OF(v->rxq.next, rxq);
		if (vsock_wants_rx(c))
			return c;
		vsock_link_del(&c->rxq);
		c->on_rxq = false;
	}
	return NULL;
}

void vsock_rx_pump(struct virtio_vsock *v)
{
	struct virtio_dev *d = &v->dev;
	for (;;) {
		struct vsock_conn *c = v->rst_len ? NULL : rxq_first(v);
		if (!c && !v->rst_len)
			return;
		if (virtio_dev_pop(d, VSOCK_RXQ, &v->chain) != 1)
			return; /* a buffer added later notifies the rx queue */
		if (v->chain.writable_len < VSOCK_HDR_LEN) {
			virtio_dev_fail(d, "rx buffer of %llu bytes cannot hold a packet header",
			                (unsigned long long)v->chain.writable_len);
			return;
		}
		int n;
		if (!c) {
			n = rst_fill(v);
		} else {
			/* one packet per connection in turn */
			vsock_link_del(&c->rxq);
			c->on_rxq = false;
			n = conn_fill(v, c);
			if (n > 0)
				vsock_conn_sync(v,
				                c); /* to the back of the queue if more is owed */
			else if (n == 0)
				vsock_conn_watch(v, c); /* only watch the socket again */
		}
		if (n <= 0) {
			/* give the chain back: the next pop takes the same entry */
			v->dev.vq[VSOCK_RXQ].last_avail_idx--;
			continue;
		}
		if (virtio_dev_push(d, VSOCK_RXQ, v->chain.head, (uint32_t)n) < 0)
			return;
		vsock_count(&v->m.rx_packets, 1);
		v->rx_pushed = true;
	}
}
