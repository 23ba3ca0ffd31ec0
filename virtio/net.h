/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/net: the network device (virtio 1.2 s5.1, device id 1) on a host
 * tap interface, as Firecracker's network-interfaces: one receive and one
 * transmit queue, the MAC from guest_mac, a rate limiter per direction
 * (bandwidth in frame bytes, ops in frames), and the offloads Linux guests
 * use as far as the tap supports them (checksum, TSO4/6, UFO, mergeable
 * receive buffers).
 *
 * Use: virtio_net_create(), then virtio_mmio_create() on virtio_net_dev();
 * at the end virtio_mmio_destroy() first, virtio_net_destroy() last.
 *
 * Frames are read from the tap straight into the guest's receive buffers
 * and written to it straight from the guest's transmit buffers: one copy,
 * by the kernel. A tap that goes away (the interface deleted) makes the
 * device drop every frame, count it, log once and report the link down in
 * the config space; the device and the VM go on. A tap that is
 * administratively down drops transmitted frames (counted) until it is up.
 *
 * Snapshots: receive buffers taken from the ring but not yet used (a frame
 * held back by the RX rate limiter, or buffers gathered for a mergeable
 * frame) are given back to the ring on restore, so a frame held back at
 * snapshot time (or waiting for more mergeable buffers) is lost, as on a
 * wire. A snapshot may be restored onto another tap (Firecracker's
 * network_overrides): create the device with the new host_dev_name before
 * virtio_mmio_restore(); the restore fails if the driver negotiated
 * offloads the new tap cannot do.
 */
#ifndef KILN_VIRTIO_NET_H
#define KILN_VIRTIO_NET_H

#include "mmds/mmds.h"
#include "virtio/rate_limiter.h"
#include "virtio/virtio.h"

/* s5.1.3 feature bits */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_GUEST_UFO  10
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13
#define VIRTIO_NET_F_HOST_UFO   14
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

/* s5.1.4 config space: mac[6], le16 status, le16 max_virtqueue_pairs */
#define VIRTIO_NET_CONFIG_SIZE 12 /* mac, status, max_virtqueue_pairs, mtu */
#define VIRTIO_NET_S_LINK_UP   1

/* s5.1.6 struct virtio_net_hdr (12 bytes with VERSION_1) */
#define VIRTIO_NET_HDR_LEN          12
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

/* s5.1.2 queues */
#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
/* Firecracker's queue size */
#define VIRTIO_NET_QUEUE_SIZE 256

/*
 * The largest frame (Ethernet header on) the device passes either way:
 * s5.1.6.3, 14 + 40 + 65535 bytes with segmentation offload.
 */
#define VIRTIO_NET_MAX_FRAME 65589u

struct virtio_net;

struct virtio_net_params {
	const char *id;       /* iface_id: 1 to VIRTIO_ID_MAX characters */
	const char *tap_name; /* host_dev_name: an existing tap interface */
	const uint8_t *mac;   /* guest_mac (6 bytes); NULL: VIRTIO_NET_F_MAC not offered */
	/* the MTU to advertise (68..65535, VIRTIO_NET_F_MTU); 0: not offered */
	unsigned mtu;
	/* rate limiters; NULL or size/refill_time 0: no such bucket */
	const struct rl_bucket_cfg *rx_bw, *rx_ops, *tx_bw, *tx_ops;
	/* kiln: where the limiters read the time (tests); NULL: CLOCK_MONOTONIC */
	const struct rl_clock *clock;
	/*
	 * The MMDS store when this interface is one of mmds-config's
	 * network_interfaces (NULL: not), and its address (host order): the
	 * guest's frames to that address go to the MMDS's stack, never to
	 * the tap, and its answers come in ahead of the tap's frames.
	 */
	struct mmds *mmds;
	uint32_t mmds_ipv4;
};

/*
 * Creates the device and attaches it to its tap now, so that a wrong
 * host_dev_name fails the API call, with a precise message: no such
 * interface (-ENODEV), not a tap (-EINVAL), permission (-EPERM/-EACCES),
 * busy (-EBUSY), an MTU out of 68..65535 (-EINVAL). Offers
 * VIRTIO_NET_F_MAC when a MAC is given, MTU when an MTU is, STATUS,
 * MRG_RXBUF, CSUM with HOST_TSO4/6 and, if the tap takes them,
 * GUEST_CSUM, GUEST_TSO4/6, GUEST_UFO/HOST_UFO. 0 / -errno. VMM thread.
 */
int virtio_net_create(struct virtio_net **out, const struct virtio_net_params *p, struct errbuf *e);

/* the virtio device to hand to virtio_mmio_create() */
struct virtio_dev *virtio_net_dev(struct virtio_net *n);

/*
 * PATCH /network-interfaces/{id}: replaces the RX limiter's buckets when
 * `rx` is true and the TX limiter's when `tx` is true (within one limiter a
 * NULL bucket stays as it is, size or refill_time 0 removes it, as
 * rl_update). Both are validated before either changes. Any thread but the
 * device's I/O thread, not concurrently with virtio_mmio_create/destroy:
 * the I/O thread is paused around the change. 0 / -errno with a message.
 */
int virtio_net_update(struct virtio_net *n, bool rx, const struct rl_bucket_cfg *rx_bw,
                      const struct rl_bucket_cfg *rx_ops, bool tx,
                      const struct rl_bucket_cfg *tx_bw, const struct rl_bucket_cfg *tx_ops,
                      struct errbuf *e);

/* the limiters' settings, for GET /vm/config; any thread */
void virtio_net_limiter_cfg(const struct virtio_net *n, struct rl_bucket_cfg *rx_bw,
                            struct rl_bucket_cfg *rx_ops, struct rl_bucket_cfg *tx_bw,
                            struct rl_bucket_cfg *tx_ops);

/* counters, updated by the I/O thread, read from any thread */
struct virtio_net_metrics {
	uint64_t rx_packets,
	        rx_bytes; /* frames given to the guest, their bytes (no virtio header) */
	uint64_t tx_packets, tx_bytes; /* frames written to the tap */
	/* rx: larger than the buffer (without MRG_RXBUF) or than all the
	 * buffers the device can hold (with it), or with offloads the driver
	 * did not negotiate; tx: larger than VIRTIO_NET_MAX_FRAME, smaller than
	 * an Ethernet header, refused by the tap, or the tap down or gone */
	uint64_t rx_dropped, tx_dropped;
	uint64_t rx_throttled, tx_throttled; /* times a limiter held traffic back */
	uint64_t tap_errors;                 /* tap reads/writes that failed */
};
void virtio_net_metrics(const struct virtio_net *n, struct virtio_net_metrics *out);

/* the MMDS stack's counters; -ENOENT when this interface does not serve it. Any thread. */
int virtio_net_mmds_metrics(const struct virtio_net *n, struct mmds_ns_metrics *out);

/* frees the device and closes the tap; its transport must be destroyed already. Safe on NULL. */
void virtio_net_destroy(struct virtio_net *n);

#endif
