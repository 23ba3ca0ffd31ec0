// SPDX-License-Identifier: Apache-2.0
/*
 * krt virtio-net driver (virtio 1.2 s5.1): queue 0 receives, queue 1
 * transmits; every packet starts with the 12-byte struct virtio_net_hdr
 * (s5.1.6, VERSION_1 layout: flags, gso_type, hdr_len, gso_size,
 * csum_start, csum_offset, num_buffers). No offloads are negotiated, so
 * the header is all zeros on transmit and only num_buffers matters on
 * receive, with VIRTIO_NET_F_MRG_RXBUF (s5.1.6.4.2).
 */
#include "virtio_drv.h"

#define CFG_MAC          0 /* s5.1.4: mac[6] */
#define HDR_NUM_BUFFERS  10
#define TX_SLOT          2048 /* header at 0, frame at TX_FRAME_OFF */
#define TX_FRAME_OFF     16
#define RX_BUF_DEFAULT   2048
#define RX_BUF_MIN_NOMRG (VIRTIO_NET_HDR_LEN + VNET_FRAME_MAX) /* s5.1.6.3.1: 1526 */
#define RX_KICK_BATCH    16
#define MRG_WAIT_US      100000

static int post_rx(struct vnet *n, uint8_t *buf)
{
	struct vq_seg s = {buf, n->rx_buf_size, true};
	int ret = vq_add(&n->rx, &s, 1, buf);
	if (ret >= 0)
		n->rx_to_kick++;
	return ret < 0 ? ret : 0;
}

/* the buffers, or those of an earlier open (`old`) when they are large enough */
static int alloc_buffers(struct vnet *n, const struct vnet *old)
{
	size_t rx = (size_t)n->rx.size * n->rx_buf_size, tx = (size_t)n->tx.size * TX_SLOT;
	size_t pages =
	        (rx + tx + n->tx.size * sizeof(uint16_t) + KRT_PAGE_SIZE - 1) / KRT_PAGE_SIZE;
	uint8_t *m = old->rx_bufs;
	if (!m || pages > old->buf_pages)
		m = krt_alloc_pages(pages, KRT_PAGE_SIZE);
	if (!m)
		return -KRT_ENOMEM;
	n->buf_pages = m == old->rx_bufs ? old->buf_pages : pages;
	n->rx_bufs = m;
	n->tx_bufs = m + rx;
	n->tx_free = (uint16_t *)(m + rx + tx);
	return 0;
}

static void read_mac(struct vnet *n)
{
	static const uint8_t fallback[6] = {0x02, 0x6b, 0x69, 0x6c, 0x6e, 0x01}; /* local "kiln" */
	if (!virtio_has(&n->dev, VIRTIO_NET_F_MAC)) {
		memcpy(n->mac, fallback, sizeof(n->mac));
		return;
	}
	for (unsigned i = 0; i < 6; i++)
		n->mac[i] = virtio_cfg8(&n->dev, CFG_MAC + i);
}

int vnet_open(struct vnet *n, unsigned nth, bool mrg, uint32_t rx_buf_size)
{
	uint64_t want = virtio_transport_features() | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
	                (mrg ? VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) : 0);
	int ret;

	struct vnet old = *n; /* the memory of an earlier open is used again */
	*n = (struct vnet){.rx = old.rx, .tx = old.tx};
	n->rx_buf_size = rx_buf_size ? rx_buf_size : RX_BUF_DEFAULT;
	if ((ret = virtio_find(&n->dev, VIRTIO_ID_NET, nth)) < 0)
		return ret;
	if ((ret = virtio_start(&n->dev, want)) < 0)
		return ret;
	n->mrg = virtio_has(&n->dev, VIRTIO_NET_F_MRG_RXBUF);
	if (n->rx_buf_size < (n->mrg ? VIRTIO_NET_HDR_LEN : RX_BUF_MIN_NOMRG)) {
		ret = -KRT_EINVAL;
		goto err_failed;
	}
	read_mac(n);
	if ((ret = virtio_queue_setup(&n->dev, &n->rx, 0, 0)) < 0 ||
	    (ret = virtio_queue_setup(&n->dev, &n->tx, 1, 0)) < 0 ||
	    (ret = alloc_buffers(n, &old)) < 0)
		goto err_failed;
	for (uint16_t i = 0; i < n->tx.size; i++)
		n->tx_free[i] = i;
	n->nr_tx_free = n->tx.size;
	/* s5.1.6.3: fill the receive queue before DRIVER_OK */
	for (uint16_t i = 0; i < n->rx.size; i++)
		if ((ret = post_rx(n, n->rx_bufs + (size_t)i * n->rx_buf_size)) < 0)
			goto err_failed;
	virtio_driver_ok(&n->dev);
	vq_kick(&n->rx);
	n->rx_to_kick = 0;
	return 0;

err_failed:
	virtio_set_status(&n->dev, virtio_status(&n->dev) | VIRTIO_STATUS_FAILED);
	return ret;
}

int vnet_reap_tx(struct vnet *n)
{
	void *token;
	uint32_t len;
	int ret, got = 0;

	while ((ret = vq_get(&n->tx, &token, &len)) == 1) {
		n->tx_free[n->nr_tx_free++] = (uint16_t)(((uint8_t *)token - n->tx_bufs) / TX_SLOT);
		got++;
	}
	return ret < 0 ? ret : got;
}

int vnet_send(struct vnet *n, const void *frame, size_t len)
{
	if (len < 14 || len > VNET_FRAME_MAX)
		return -KRT_EINVAL;
	int ret = vnet_reap_tx(n);
	if (ret < 0)
		return ret;
	if (n->nr_tx_free == 0)
		return -KRT_ENOSPC;
	uint16_t slot = n->tx_free[n->nr_tx_free - 1];
	uint8_t *p = n->tx_bufs + (size_t)slot * TX_SLOT;
	memset(p, 0, VIRTIO_NET_HDR_LEN); /* no offloads: s5.1.6.2 */
	memcpy(p + TX_FRAME_OFF, frame, len);
	struct vq_seg segs[2] = {
	        {p, VIRTIO_NET_HDR_LEN, false},
	        {p + TX_FRAME_OFF, (uint32_t)len, false},
	};
	if ((ret = vq_add(&n->tx, segs, 2, p)) < 0)
		return ret;
	n->nr_tx_free--;
	return 0;
}

void vnet_kick_tx(struct vnet *n)
{
	vq_kick(&n->tx);
}

/* the next used rx buffer, waiting up to MRG_WAIT_US (the rest of a merged packet) */
static int next_rx(struct vnet *n, uint8_t **buf, uint32_t *len, bool wait)
{
	void *token;
	int ret = wait ? vq_wait(&n->rx, &token, len, MRG_WAIT_US) : vq_get(&n->rx, &token, len);
	if (ret == 1) {
		*buf = token;
		if (*len > n->rx_buf_size)
			return -KRT_EIO; /* the device wrote past the buffer */
	}
	return ret == -KRT_ETIMEDOUT ? -KRT_EIO : ret;
}

int vnet_recv(struct vnet *n, void *frame, size_t max, size_t *len)
{
	for (;;) {
		uint8_t *buf = NULL;
		uint32_t blen = 0;
		int ret = next_rx(n, &buf, &blen, false);
		if (ret <= 0) {
			if (n->rx_to_kick) {
				vq_kick(&n->rx);
				n->rx_to_kick = 0;
			}
			return ret;
		}
		if (blen < VIRTIO_NET_HDR_LEN)
			return -KRT_EIO;
		uint16_t nbufs = 1;
		if (n->mrg)
			memcpy(&nbufs, buf + HDR_NUM_BUFFERS, sizeof(nbufs));
		if (nbufs == 0 || nbufs > n->rx.size)
			return -KRT_EIO;
		size_t total = 0;
		uint8_t *data = buf + VIRTIO_NET_HDR_LEN;
		uint32_t dlen = blen - VIRTIO_NET_HDR_LEN;
		for (uint16_t i = 0;;) {
			if (total + dlen <= max)
				memcpy((uint8_t *)frame + total, data, dlen);
			total += dlen;
			if ((ret = post_rx(n, buf)) < 0)
				return ret;
			if (++i == nbufs)
				break;
			if ((ret = next_rx(n, &buf, &blen, true)) < 0)
				return ret;
			data = buf;
			dlen = blen;
		}
		if (n->rx_to_kick >= RX_KICK_BATCH) {
			vq_kick(&n->rx);
			n->rx_to_kick = 0;
		}
		if (total <= max) {
			*len = total;
			return 1;
		}
		n->rx_dropped++;
	}
}
