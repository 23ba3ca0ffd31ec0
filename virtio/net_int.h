/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/net_int.h: what net.c (the data path) shares with net_setup.c (the
 * device's life cycle), not for other modules.
 */
#ifndef KILN_VIRTIO_NET_INT_H
#define KILN_VIRTIO_NET_INT_H

#include "net.h"
#include "tap.h"

#include <net/if.h>

#define NET_HDR_LEN    VIRTIO_NET_HDR_LEN
#define NET_ETH_HLEN   14
#define NET_VLAN_HLEN  4
#define NET_RX_BATCH   64                /* frames per callback before the other fds get a turn */
#define NET_TX_BATCH   256               /* chains per callback, idem */
#define NET_IOV_MAX    1024              /* readv/writev take at most UIO_MAXIOV iovecs */
#define NET_RX_IOV_MAX (NET_IOV_MAX - 1) /* the last one is the spill area */
/* the largest frame the tap hands over, and one byte more: too large */
#define NET_SPILL_LEN (NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 1)

#define NET_F(b) VIRTIO_BIT(VIRTIO_NET_F_##b)

/* a receive buffer taken from the ring and not used yet */
struct net_rx_buf {
	uint16_t head;
	uint16_t nr_iov; /* its iovecs, next in rx_iov */
	uint64_t len;
};

struct virtio_net {
	struct virtio_dev dev;
	char tap_name[IFNAMSIZ];
	int tap_fd;
	struct tap_info tap;
	uint8_t mac[6];
	uint16_t mtu;    /* config space mtu, offered with VIRTIO_NET_F_MTU; 0: not offered */
	uint16_t status; /* config space status (atomic): VIRTIO_NET_S_LINK_UP */
	struct rate_limiter rl_rx, rl_tx;
	pthread_mutex_t cfg_lock;    /* the limiters' settings: update vs limiter_cfg */
	struct virtio_net_metrics m; /* written by the I/O thread only */

	/* I/O thread (or parked) from here on */
	bool tap_watched, timers_watched;
	uint32_t tap_events; /* what the tap fd is watched for */
	bool tap_gone;       /* the interface is gone: drop everything */
	bool tap_down;       /* writes fail with EIO (interface down), logged */
	bool mrg, guest_csum;
	uint32_t rx_gso_ok; /* bit g: gso_type g may reach the driver */
	uint64_t rx_target; /* bytes of buffers taken while the ring has them (MRG_RXBUF) */

	unsigned rx_nr, rx_iov_nr;
	uint64_t rx_cap; /* bytes of all held buffers */
	struct net_rx_buf rx_buf[VIRTIO_NET_QUEUE_SIZE];
	struct iovec rx_iov[NET_IOV_MAX];
	bool rx_held;         /* a frame sits in the first rx_held_bufs, held by the limiter */
	uint64_t rx_held_len; /* its length, virtio header included */
	unsigned rx_held_bufs;
	/* a frame read beyond the buffers held (MRG_RXBUF): its bytes from
	 * rx_spill_at on are at the start of rx_spill, waiting for buffers */
	bool rx_spilled;
	uint64_t rx_spill_len; /* the frame's length, virtio header included */
	uint64_t rx_spill_at;
	uint8_t rx_spill[NET_SPILL_LEN]; /* also the probe byte without MRG_RXBUF */

	/* the MMDS's stack (mmds-config names this interface); NULL: none */
	struct mmds_ns *mmds;
	uint32_t mmds_ip;
	int mmds_timer_fd;   /* its retransmission timer (CLOCK_MONOTONIC) */
	bool mmds_watched;   /* the timer is on the I/O thread */
	bool mmds_kick;      /* frames went to the stack: look for its answers */
	bool mmds_idle;      /* the stack had nothing due in this round of receive */
	size_t mmds_out_len; /* a frame of the stack's waits in mmds_out */
	uint8_t *mmds_in;    /* a transmitted frame copied for the stack */
	uint8_t *mmds_out;   /* virtio_net_hdr + a frame of the stack's */

	bool tx_wait_out; /* the tap said EAGAIN: wait for EPOLLOUT */
	uint8_t tx_hdr[NET_HDR_LEN];
	struct iovec tx_iov[NET_IOV_MAX];
	struct vq_chain chain;
};

/* the interface is gone for good: stop watching it, link down, drop from now on */
void net_tap_gone(struct virtio_net *n, const char *what, int err);

/* net_mmds.c: the MMDS's side of the interface */
/* sets up the stack when p->mmds is given (create time). 0 / -errno with a message */
int net_mmds_create(struct virtio_net *n, const struct virtio_net_params *p, struct errbuf *e);
void net_mmds_destroy(struct virtio_net *n);
/* activate: the stack's timer on the I/O thread; unwatch: off it */
int net_mmds_watch(struct virtio_net *n);
void net_mmds_unwatch(struct virtio_net *n);
/*
 * The chain in n->chain (header in n->tx_hdr, `len` frame bytes after it)
 * is for the MMDS: copied, its partial checksum completed, handed to the
 * stack. false: not the MMDS's, it goes to the tap.
 */
bool net_mmds_tx(struct virtio_net *n, uint64_t len);
/* the next frame of the stack's into n->mmds_out; its length with the header, 0: none */
size_t net_mmds_next(struct virtio_net *n);
/* the stack's timer fires at `at` (CLOCK_MONOTONIC ns; 1: at once; 0: off) */
void net_mmds_arm(struct virtio_net *n, uint64_t at);
/* CLOCK_MONOTONIC in ns */
uint64_t net_mmds_now(void);

/* the I/O thread's callbacks (opaque = struct virtio_net *) */
void net_queue_notify(struct virtio_dev *d, uint16_t q);
void net_tap_event(void *opaque, uint32_t events);
void net_rx_timer(void *opaque, uint32_t events);
void net_tx_timer(void *opaque, uint32_t events);
void net_mmds_timer(void *opaque, uint32_t events);

#endif
