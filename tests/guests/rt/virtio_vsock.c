// SPDX-License-Identifier: Apache-2.0
/*
 * krt virtio-vsock driver (virtio 1.2 s5.10), stream sockets only: queue 0
 * receives packets, 1 transmits, 2 carries events (transport reset). A
 * packet is the 44-byte header (s5.10.6) and, for OP_RW, the data. Credit
 * (s5.10.6.3): each side says in every header how much buffer it has
 * (buf_alloc) and how many bytes it consumed (fwd_cnt); a sender keeps
 * tx_cnt - peer_fwd_cnt <= peer_buf_alloc.
 */
#include "virtio_drv.h"

#define CFG_GUEST_CID     0
#define HDR_LEN           44
#define RX_BUF            4096 /* header + up to 4052 bytes of data */
#define TX_SLOT           (64 + 4096)
#define TX_DATA_MAX       4096
#define NR_EVENTS         8
#define TYPE_STREAM       1
#define OP_REQUEST        1
#define OP_RESPONSE       2
#define OP_RST            3
#define OP_SHUTDOWN       4
#define OP_RW             5
#define OP_CREDIT_UPDATE  6
#define OP_CREDIT_REQUEST 7
#define SHUTDOWN_RCV      1
#define SHUTDOWN_SEND     2
#define SHUTDOWN_BOTH     (SHUTDOWN_RCV | SHUTDOWN_SEND)

/* s5.10.6 struct virtio_vsock_hdr (little endian, packed) */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vsock_hdr) == HDR_LEN, "s5.10.6 header");

static int post_rx(struct vvsock *v, uint8_t *buf)
{
	struct vq_seg s = {buf, RX_BUF, true};
	int ret = vq_add(&v->rx, &s, 1, buf);
	v->rx_to_kick++;
	return ret < 0 ? ret : 0;
}

static int alloc_buffers(struct vvsock *v)
{
	size_t rx = (size_t)v->rx.size * RX_BUF, tx = (size_t)v->tx.size * TX_SLOT;
	size_t conn = VSOCK_MAX_CONNS * (size_t)VSOCK_BUF_ALLOC;
	size_t extra = v->tx.size * sizeof(uint16_t) + NR_EVENTS * sizeof(uint32_t);
	uint8_t *m = krt_alloc_pages((rx + tx + conn + extra + KRT_PAGE_SIZE - 1) / KRT_PAGE_SIZE,
	                             KRT_PAGE_SIZE);
	if (!m)
		return -KRT_ENOMEM;
	v->rx_bufs = m;
	v->tx_bufs = m + rx;
	v->conn_bufs = m + rx + tx;
	v->tx_free = (uint16_t *)(m + rx + tx + conn);
	v->ev_bufs = (uint32_t *)(v->tx_free + v->tx.size);
	return 0;
}

int vsock_open(struct vvsock *v, unsigned nth)
{
	int ret;

	*v = (struct vvsock){0};
	if ((ret = virtio_find(&v->dev, VIRTIO_ID_VSOCK, nth)) < 0)
		return ret;
	if ((ret = virtio_start(&v->dev, virtio_transport_features())) < 0)
		return ret;
	v->guest_cid = virtio_cfg64(&v->dev, CFG_GUEST_CID);
	if ((ret = virtio_queue_setup(&v->dev, &v->rx, 0, 0)) < 0 ||
	    (ret = virtio_queue_setup(&v->dev, &v->tx, 1, 0)) < 0 ||
	    (ret = virtio_queue_setup(&v->dev, &v->ev, 2, 0)) < 0 || (ret = alloc_buffers(v)) < 0)
		goto err_failed;
	for (uint16_t i = 0; i < v->tx.size; i++)
		v->tx_free[i] = i;
	v->nr_tx_free = v->tx.size;
	for (uint16_t i = 0; i < v->rx.size; i++)
		if ((ret = post_rx(v, v->rx_bufs + (size_t)i * RX_BUF)) < 0)
			goto err_failed;
	for (unsigned i = 0; i < NR_EVENTS && i < v->ev.size; i++) {
		struct vq_seg s = {&v->ev_bufs[i], sizeof(uint32_t), true};
		if ((ret = vq_add(&v->ev, &s, 1, &v->ev_bufs[i])) < 0)
			goto err_failed;
	}
	virtio_driver_ok(&v->dev);
	vq_kick(&v->rx);
	vq_kick(&v->ev);
	v->rx_to_kick = 0;
	return 0;

err_failed:
	virtio_set_status(&v->dev, virtio_status(&v->dev) | VIRTIO_STATUS_FAILED);
	return ret;
}

/* ------------------------------------------------------------- transmit */

static int reap_tx(struct vvsock *v)
{
	void *token;
	uint32_t len;
	int ret;
	while ((ret = vq_get(&v->tx, &token, &len)) == 1)
		v->tx_free[v->nr_tx_free++] = (uint16_t)(((uint8_t *)token - v->tx_bufs) / TX_SLOT);
	return ret;
}

/*
 * Queues one packet to the connection's peer (or, c NULL, to the sender
 * of `to`: an RST for a stray packet). Does not kick.
 */
static int queue_pkt(struct vvsock *v, struct vsock_conn *c, const struct vsock_hdr *to,
                     uint16_t op, uint32_t flags, const void *data, uint32_t len)
{
	int ret = reap_tx(v);
	if (ret < 0)
		return ret;
	if (v->nr_tx_free == 0 || len > TX_DATA_MAX)
		return v->nr_tx_free ? -KRT_EINVAL : -KRT_ENOSPC;
	uint16_t slot = v->tx_free[v->nr_tx_free - 1];
	uint8_t *p = v->tx_bufs + (size_t)slot * TX_SLOT;
	struct vsock_hdr h = {
	        .src_cid = v->guest_cid,
	        .dst_cid = c ? c->peer_cid : to->src_cid,
	        .src_port = c ? c->local_port : to->dst_port,
	        .dst_port = c ? c->peer_port : to->src_port,
	        .len = len,
	        .type = TYPE_STREAM,
	        .op = op,
	        .flags = flags,
	        .buf_alloc = c ? VSOCK_BUF_ALLOC : 0,
	        .fwd_cnt = c ? c->fwd_cnt : 0,
	};
	memcpy(p, &h, sizeof(h));
	if (len)
		memcpy(p + 64, data, len);
	struct vq_seg segs[2] = {{p, HDR_LEN, false}, {p + 64, len, false}};
	if ((ret = vq_add(&v->tx, segs, len ? 2 : 1, p)) < 0)
		return ret;
	v->nr_tx_free--;
	if (c) {
		c->fwd_cnt_posted = c->fwd_cnt;
		c->tx_cnt += len;
	}
	return 0;
}

/* a control packet, sent at once; waits for a transmit slot when all are busy */
static int send_ctl(struct vvsock *v, struct vsock_conn *c, const struct vsock_hdr *to, uint16_t op,
                    uint32_t flags)
{
	int ret;
	for (unsigned tries = 0;
	     (ret = queue_pkt(v, c, to, op, flags, NULL, 0)) == -KRT_ENOSPC && tries < 100000;
	     tries++)
		krt_udelay(10);
	vq_kick(&v->tx);
	return ret;
}

/* --------------------------------------------------------------- receive */

static struct vsock_conn *lookup(struct vvsock *v, const struct vsock_hdr *h)
{
	struct vsock_conn *listener = NULL;
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = v->conns[i];
		if (!c || c->local_port != h->dst_port)
			continue;
		if (c->state == VSOCK_LISTEN)
			listener = c;
		else if (c->peer_port == h->src_port && c->peer_cid == h->src_cid)
			return c;
	}
	return h->op == OP_REQUEST ? listener : NULL;
}

/* s5.10.6.4: the peer's data into the connection's ring */
static int take_data(struct vsock_conn *c, const uint8_t *data, uint32_t len)
{
	if (len > VSOCK_BUF_ALLOC - c->rx_len)
		return -KRT_ENOSPC; /* beyond the credit we gave */
	for (uint32_t i = 0; i < len; i++)
		c->rx_buf[(c->rx_head + c->rx_len + i) % VSOCK_BUF_ALLOC] = data[i];
	c->rx_len += len;
	return 0;
}

static void dispatch(struct vvsock *v, const struct vsock_hdr *h, const uint8_t *data)
{
	struct vsock_conn *c = lookup(v, h);

	if (h->dst_cid != v->guest_cid || h->type != TYPE_STREAM || !c) {
		if (h->op != OP_RST)
			send_ctl(v, NULL, h, OP_RST, 0); /* s5.10.6.3: no such socket */
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case OP_REQUEST:
		if (c->state != VSOCK_LISTEN)
			break;
		c->peer_cid = h->src_cid;
		c->peer_port = h->src_port;
		c->state = VSOCK_CONNECTED;
		send_ctl(v, c, NULL, OP_RESPONSE, 0);
		break;
	case OP_RESPONSE:
		if (c->state == VSOCK_CONNECTING)
			c->state = VSOCK_CONNECTED;
		break;
	case OP_RST:
		c->reset = true;
		c->state = VSOCK_CLOSED;
		break;
	case OP_SHUTDOWN:
		c->peer_shut_rcv |= (h->flags & SHUTDOWN_RCV) != 0;
		c->peer_shut_send |= (h->flags & SHUTDOWN_SEND) != 0;
		break;
	case OP_RW:
		if (c->state == VSOCK_CONNECTED && take_data(c, data, h->len) < 0) {
			send_ctl(v, c, NULL, OP_RST, 0);
			c->reset = true;
			c->state = VSOCK_CLOSED;
		}
		break;
	case OP_CREDIT_REQUEST:
		send_ctl(v, c, NULL, OP_CREDIT_UPDATE, 0);
		break;
	default: /* OP_CREDIT_UPDATE: the header said it all */
		break;
	}
}

static void handle_events(struct vvsock *v)
{
	void *token;
	uint32_t len;
	bool any = false;
	while (vq_get(&v->ev, &token, &len) == 1) {
		v->events++; /* s5.10.6.7: TRANSPORT_RESET; nothing is connected across it here */
		struct vq_seg s = {token, sizeof(uint32_t), true};
		vq_add(&v->ev, &s, 1, token);
		any = true;
	}
	if (any)
		vq_kick(&v->ev);
}

int vsock_poll(struct vvsock *v)
{
	void *token;
	uint32_t len;
	int ret;

	while ((ret = vq_get(&v->rx, &token, &len)) == 1) {
		struct vsock_hdr h;
		if (len < HDR_LEN || len > RX_BUF)
			return -KRT_EIO;
		memcpy(&h, token, sizeof(h)); /* copied once, then checked */
		if (h.len > len - HDR_LEN)
			return -KRT_EIO;
		dispatch(v, &h, (const uint8_t *)token + HDR_LEN);
		if ((ret = post_rx(v, token)) < 0)
			return ret;
	}
	if (v->rx_to_kick) {
		vq_kick(&v->rx);
		v->rx_to_kick = 0;
	}
	handle_events(v);
	return ret < 0 ? ret : reap_tx(v);
}

/* ------------------------------------------------------------ connections */

static int attach(struct vvsock *v, struct vsock_conn *c)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		if (!v->conns[i]) {
			v->conns[i] = c;
			c->rx_buf = v->conn_bufs + (size_t)i * VSOCK_BUF_ALLOC;
			return 0;
		}
	}
	return -KRT_ENOSPC;
}

static void detach(struct vvsock *v, struct vsock_conn *c)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		if (v->conns[i] == c)
			v->conns[i] = NULL;
	c->state = VSOCK_CLOSED;
}

/* polls the device until done(c), for up to timeout_us; 0 or -errno */
static int wait_for(struct vvsock *v, struct vsock_conn *c, bool (*done)(const struct vsock_conn *),
                    uint64_t timeout_us)
{
	uint64_t hz = krt_tsc_hz(), t0 = krt_rdtsc(), checked = t0;
	uint64_t limit = timeout_us / 1000 * (hz / 1000);

	for (;;) {
		int ret = vsock_poll(v);
		if (ret < 0)
			return ret;
		if (done(c))
			return 0;
		uint64_t now = krt_rdtsc();
		if (now - t0 >= limit)
			return -KRT_ETIMEDOUT;
		if (now - checked > hz / 1000) { /* a Status read is an exit: once a millisecond */
			checked = now;
			if (virtio_status(&v->dev) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
				return -KRT_EIO;
		}
		krt_pause();
	}
}

static bool not_connecting(const struct vsock_conn *c)
{
	return c->state != VSOCK_CONNECTING;
}

static bool not_listening(const struct vsock_conn *c)
{
	return c->state != VSOCK_LISTEN;
}

static uint32_t credit(const struct vsock_conn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd_cnt; /* s5.10.6.3, modulo 2^32 */
	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

static bool has_credit_or_closed(const struct vsock_conn *c)
{
	return credit(c) > 0 || c->state != VSOCK_CONNECTED || c->peer_shut_rcv;
}

static bool readable(const struct vsock_conn *c)
{
	return c->rx_len > 0 || c->peer_shut_send || c->state != VSOCK_CONNECTED;
}

static bool was_reset(const struct vsock_conn *c)
{
	return c->reset;
}

int vsock_connect(struct vvsock *v, struct vsock_conn *c, uint64_t cid, uint32_t port,
                  uint32_t local_port, uint64_t timeout_us)
{
	*c = (struct vsock_conn){.state = VSOCK_CONNECTING,
	                         .local_port = local_port,
	                         .peer_port = port,
	                         .peer_cid = cid};
	int ret = attach(v, c);
	if (ret < 0)
		return ret;
	if ((ret = send_ctl(v, c, NULL, OP_REQUEST, 0)) == 0)
		ret = wait_for(v, c, not_connecting, timeout_us);
	if (ret == 0 && c->state == VSOCK_CONNECTED)
		return 0;
	detach(v, c);
	return ret < 0 ? ret : -KRT_ECONNREFU;
}

int vsock_listen(struct vvsock *v, struct vsock_conn *c, uint32_t port)
{
	*c = (struct vsock_conn){.state = VSOCK_LISTEN, .local_port = port};
	return attach(v, c);
}

int vsock_accept(struct vvsock *v, struct vsock_conn *c, uint64_t timeout_us)
{
	int ret = wait_for(v, c, not_listening, timeout_us);
	if (ret == 0 && c->state == VSOCK_CONNECTED)
		return 0;
	if (ret != -KRT_ETIMEDOUT)
		detach(v, c);
	return ret < 0 ? ret : -KRT_ECONNRST;
}

int vsock_send(struct vvsock *v, struct vsock_conn *c, const void *buf, size_t len,
               uint64_t timeout_us)
{
	const uint8_t *p = buf;
	bool asked = false;

	for (size_t off = 0; off < len;) {
		if (c->state != VSOCK_CONNECTED || c->peer_shut_rcv)
			return c->reset ? -KRT_ECONNRST : -KRT_ENOTCONN;
		uint32_t n = credit(c);
		if (n == 0) { /* s5.10.6.3: ask once, then wait for an update */
			int ret = asked ? 0 : send_ctl(v, c, NULL, OP_CREDIT_REQUEST, 0);
			asked = true;
			if (ret < 0 || (ret = wait_for(v, c, has_credit_or_closed, timeout_us)) < 0)
				return ret;
			continue;
		}
		if (n > len - off)
			n = (uint32_t)(len - off);
		if (n > TX_DATA_MAX)
			n = TX_DATA_MAX;
		int ret = queue_pkt(v, c, NULL, OP_RW, 0, p + off, n);
		if (ret == -KRT_ENOSPC) { /* every slot in flight: let the device catch up */
			vq_kick(&v->tx);
			if ((ret = vsock_poll(v)) < 0)
				return ret;
			continue;
		}
		if (ret < 0)
			return ret;
		off += n;
		asked = false;
	}
	vq_kick(&v->tx);
	return 0;
}

long vsock_recv(struct vvsock *v, struct vsock_conn *c, void *buf, size_t max, uint64_t timeout_us)
{
	int ret = wait_for(v, c, readable, timeout_us);
	if (ret < 0)
		return ret;
	if (c->rx_len == 0)
		return c->reset ? -KRT_ECONNRST : c->peer_shut_send ? 0 : -KRT_ENOTCONN;
	uint32_t n = max < c->rx_len ? (uint32_t)max : c->rx_len;
	uint8_t *out = buf;
	for (uint32_t i = 0; i < n; i++)
		out[i] = c->rx_buf[(c->rx_head + i) % VSOCK_BUF_ALLOC];
	c->rx_head = (c->rx_head + n) % VSOCK_BUF_ALLOC;
	c->rx_len -= n;
	c->fwd_cnt += n;
	/* s5.10.6.3: tell the peer about the room once a quarter of the buffer is free again */
	if (c->fwd_cnt - c->fwd_cnt_posted >= VSOCK_BUF_ALLOC / 4 && c->state == VSOCK_CONNECTED &&
	    (ret = send_ctl(v, c, NULL, OP_CREDIT_UPDATE, 0)) < 0)
		return ret;
	return n;
}

/*
 * s5.10.6.6: the side that shuts down waits for the peer's RST; the side
 * that saw the peer shut both directions answers with an RST.
 */
int vsock_close(struct vvsock *v, struct vsock_conn *c, uint64_t timeout_us)
{
	int ret = 0;

	if (c->state == VSOCK_CONNECTED && !c->reset) {
		if (c->peer_shut_rcv && c->peer_shut_send) {
			ret = send_ctl(v, c, NULL, OP_RST, 0);
		} else if ((ret = send_ctl(v, c, NULL, OP_SHUTDOWN, SHUTDOWN_BOTH)) == 0) {
			ret = wait_for(v, c, was_reset, timeout_us);
			if (ret == -KRT_ETIMEDOUT)
				send_ctl(v, c, NULL, OP_RST, 0);
		}
	}
	detach(v, c);
	return ret;
}
