/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krt virtio device drivers on top of rt/virtio.h: block (virtio 1.2
 * s5.2), network (s5.1), entropy (s5.4) and socket (s5.10). Each polls its
 * queues; none uses interrupts. BSP only.
 */
#ifndef KRT_VIRTIO_DRV_H
#define KRT_VIRTIO_DRV_H

#include "virtio.h"

/* ------------------------------------------------------------ block, s5.2 */

#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_SECTOR 512
#define VIRTIO_BLK_ID_LEN 20

struct vblk_req; /* per in-flight request: header, status (virtio_blk.c) */

struct vblk {
	struct virtio_dev dev;
	struct virtq vq;
	uint64_t capacity; /* 512-byte sectors */
	uint32_t blk_size; /* 512 unless VIRTIO_BLK_F_BLK_SIZE */
	uint32_t seg_max, size_max;
	uint32_t max_discard_sectors, max_write_zeroes_sectors;
	struct vblk_req *reqs; /* vq.size of them */
	uint16_t *free_reqs, nr_free_reqs;
};

/*
 * Finds the nth block device, negotiates (RO, BLK_SIZE, FLUSH, SEG_MAX,
 * SIZE_MAX, DISCARD, WRITE_ZEROES + the transport's), reads the
 * configuration and sets up the request queue. 0 or -errno.
 */
int vblk_open(struct vblk *b, unsigned nth);
static inline bool vblk_has(const struct vblk *b, unsigned feature)
{
	return virtio_has(&b->dev, feature);
}

/*
 * Queues one request without notifying (vblk_kick): `buf`/`len` is the
 * data (read into for IN and GET_ID, written from for OUT; none for
 * FLUSH). For DISCARD and WRITE_ZEROES, `len` is the sector count and buf
 * NULL: the driver builds the one segment ({sector, num_sectors, flags};
 * flags bit 0 = unmap for WRITE_ZEROES when `unmap`). `tag` comes back
 * from vblk_complete(). 0, -KRT_ENOSPC (queue full: complete some first),
 * -KRT_EINVAL.
 */
int vblk_submit(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len, bool unmap,
                uint64_t tag);
void vblk_kick(struct vblk *b);
/*
 * One finished request: 1 with *tag and *status (VIRTIO_BLK_S_*), 0 when
 * none is ready, -KRT_EIO when the device broke the ring protocol.
 */
int vblk_complete(struct vblk *b, uint64_t *tag, uint8_t *status);
/* submit + kick + wait (timeout_us); returns the status byte or -errno */
int vblk_do(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len, bool unmap,
            uint64_t timeout_us);
unsigned vblk_in_flight(const struct vblk *b);

/* ---------------------------------------------------------- network, s5.1 */

#define VIRTIO_NET_F_MTU       3
#define VIRTIO_NET_F_MAC       5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS    16
#define VIRTIO_NET_HDR_LEN     12 /* struct virtio_net_hdr with VERSION_1 (s5.1.6) */
#define VNET_FRAME_MAX         1514
#define VNET_MAX_FRAGS         32

struct vnet {
	struct virtio_dev dev;
	struct virtq rx, tx;
	uint8_t mac[6];
	bool mrg; /* VIRTIO_NET_F_MRG_RXBUF accepted */
	uint32_t rx_buf_size;
	uint8_t *rx_bufs;  /* rx.size buffers of rx_buf_size */
	uint8_t *tx_bufs;  /* tx.size slots: header + frame */
	uint16_t *tx_free; /* free tx slot stack */
	size_t buf_pages;  /* of rx_bufs, tx_bufs and tx_free together */
	uint16_t nr_tx_free;
	uint16_t rx_to_kick; /* buffers re-posted since the last rx kick */
	uint64_t rx_dropped; /* frames that did not fit the caller's buffer */
};

/*
 * Finds the nth network device; `mrg` accepts MRG_RXBUF when offered;
 * rx_buf_size is the size of each receive buffer (0: 2048, the header
 * included; without MRG_RXBUF at least 12 + 1514). Fills the receive
 * queue. 0 or -errno.
 */
int vnet_open(struct vnet *n, unsigned nth, bool mrg, uint32_t rx_buf_size);
/*
 * Copies one Ethernet frame (14..1514 bytes, no FCS) behind a zero
 * virtio_net_hdr into a transmit slot (two descriptors: header, frame)
 * without notifying; reaps finished transmissions first. 0, -KRT_ENOSPC
 * (all slots in flight), -KRT_EINVAL.
 */
int vnet_send(struct vnet *n, const void *frame, size_t len);
void vnet_kick_tx(struct vnet *n);
/* takes finished transmissions back; returns how many, or -KRT_EIO */
int vnet_reap_tx(struct vnet *n);
/*
 * One received frame into frame[0 .. max): 1 with *len, 0 when none is
 * waiting, -KRT_EIO on a device protocol error. Frames longer than max
 * are dropped (counted). Re-posts the buffers, notifying once per batch.
 */
int vnet_recv(struct vnet *n, void *frame, size_t max, size_t *len);

/* ---------------------------------------------------------- entropy, s5.4 */

struct vrng {
	struct virtio_dev dev;
	struct virtq vq;
};
int vrng_open(struct vrng *r, unsigned nth);
/*
 * Fills buf[0 .. len) with entropy, in requests of at most 4 KiB, all
 * posted at once. Returns the bytes received (the device may return fewer
 * per request; the rest is requested again) or -errno.
 */
long vrng_read(struct vrng *r, void *buf, size_t len, uint64_t timeout_us);

/* ----------------------------------------------------------- socket, s5.10 */

#define VSOCK_HOST_CID 2

enum vsock_state {
	VSOCK_CLOSED = 0,
	VSOCK_LISTEN,
	VSOCK_CONNECTING,
	VSOCK_CONNECTED,
};

/* one stream connection (the driver keeps its receive buffer) */
struct vsock_conn {
	enum vsock_state state;
	uint32_t local_port, peer_port;
	uint64_t peer_cid;
	/* s5.10.6.3 credit: what the peer said, and our counters */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;         /* bytes sent */
	uint32_t fwd_cnt;        /* bytes taken out of rx_buf by the application */
	uint32_t fwd_cnt_posted; /* fwd_cnt last told to the peer */
	bool peer_shut_send;     /* the peer will send no more */
	bool peer_shut_rcv;      /* the peer will receive no more */
	bool reset;              /* RST received */
	uint8_t *rx_buf;         /* ring of VSOCK_BUF_ALLOC bytes */
	uint32_t rx_head, rx_len;
};
#define VSOCK_BUF_ALLOC 65536
#define VSOCK_MAX_CONNS 4

struct vvsock {
	struct virtio_dev dev;
	struct virtq rx, tx, ev;
	uint64_t guest_cid;
	uint8_t *rx_bufs; /* rx.size buffers of VSOCK_RX_BUF */
	uint8_t *tx_bufs; /* tx.size slots of header + VSOCK_TX_MAX */
	uint16_t *tx_free, nr_tx_free;
	uint32_t *ev_bufs;
	uint8_t *conn_bufs; /* VSOCK_MAX_CONNS receive rings of VSOCK_BUF_ALLOC */
	struct vsock_conn *conns[VSOCK_MAX_CONNS];
	uint16_t rx_to_kick;
	uint64_t events; /* transport reset events seen */
};

/* finds the nth socket device, reads guest_cid, fills rx and event queues */
int vsock_open(struct vvsock *v, unsigned nth);
/*
 * Connects to (cid, port) from local_port (OP_REQUEST, waits for
 * OP_RESPONSE). 0, -KRT_ECONNREFU (RST), -KRT_ETIMEDOUT, -errno.
 */
int vsock_connect(struct vvsock *v, struct vsock_conn *c, uint64_t cid, uint32_t port,
                  uint32_t local_port, uint64_t timeout_us);
/*
 * Starts listening on `port`: from now on a peer's OP_REQUEST to it is
 * answered with OP_RESPONSE whenever the driver polls (one connection).
 */
int vsock_listen(struct vvsock *v, struct vsock_conn *c, uint32_t port);
/* waits until the listening c is connected; 0, -KRT_ETIMEDOUT (still listening), -errno */
int vsock_accept(struct vvsock *v, struct vsock_conn *c, uint64_t timeout_us);
/*
 * Sends len bytes as OP_RW packets within the peer's credit (asks for
 * credit with OP_CREDIT_REQUEST when there is none). 0 or -errno.
 */
int vsock_send(struct vvsock *v, struct vsock_conn *c, const void *buf, size_t len,
               uint64_t timeout_us);
/*
 * Receives up to max bytes, waiting until at least one arrived: returns
 * the count, 0 at end of stream (peer shut down sending), or -errno.
 * Sends OP_CREDIT_UPDATE when it freed enough room.
 */
long vsock_recv(struct vvsock *v, struct vsock_conn *c, void *buf, size_t max, uint64_t timeout_us);
/*
 * OP_SHUTDOWN (both directions), waits for the peer's RST, then forgets
 * the connection. 0 or -KRT_ETIMEDOUT (an RST is sent then).
 */
int vsock_close(struct vvsock *v, struct vsock_conn *c, uint64_t timeout_us);
/* handles every packet waiting on the receive queue; 0 or -errno */
int vsock_poll(struct vvsock *v);

#endif
