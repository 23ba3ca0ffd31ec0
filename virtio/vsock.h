/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/vsock: the socket device (virtio 1.2 s5.10, device id 19) with
 * Firecracker's host-side convention (Firecracker docs/vsock.md): guest
 * AF_VSOCK stream connections are bridged to AF_UNIX stream sockets on the
 * host.
 *   - host-initiated: a host program connects to the unix socket at
 *     `uds_path` (kiln creates and listens on it) and writes
 *     "CONNECT <port>\n"; kiln asks the guest for a connection to <port>
 *     and, once the guest accepted, answers "OK <host_port>\n" (host_port is
 *     the port kiln picked on the host side of the vsock connection);
 *     after that the unix connection carries the stream both ways. A guest
 *     that refuses (no listener), or no answer within
 *     VIRTIO_VSOCK_CONNECT_TIMEOUT_MS, closes the unix connection instead.
 *   - guest-initiated: a guest connecting to CID 2 (the host), port P, is
 *     bridged to the unix socket "<uds_path>_<P>", which a host program
 *     listens on; if nothing listens there, the guest gets a reset.
 *
 * Use: virtio_vsock_create(), then virtio_mmio_create() on
 * virtio_vsock_dev(); at the end virtio_mmio_destroy() first,
 * virtio_vsock_destroy() last. All connection work runs on the device's I/O
 * thread; no other thread touches a connection.
 *
 * Snapshots: connections are not saved. The device section holds the
 * guest CID only; a restored device that the driver had activated posts
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue, so that the guest
 * drops its old connections and re-reads guest_cid (s5.10.6.7), as
 * Firecracker does. No virtqueue chain is ever held by the device between
 * two I/O thread callbacks (each guest packet is written to its unix
 * socket or copied to that connection's buffer before its chain is
 * returned), so the saved queue indices are complete; host data buffered
 * for a connection dies with that connection.
 */
#ifndef KILN_VIRTIO_VSOCK_H
#define KILN_VIRTIO_VSOCK_H

#include "virtio/virtio.h"

/* Firecracker's queue size for all three queues */
#define VIRTIO_VSOCK_QUEUE_SIZE 256
/* connections at once (host-initiated ones still sending their CONNECT line
 * included); a guest REQUEST beyond it gets RST, a host connection is closed */
#define VIRTIO_VSOCK_MAX_CONNS 1024
/* receive buffer kiln advertises per connection (buf_alloc, s5.10.6.3) */
#define VIRTIO_VSOCK_CONN_BUF KIB(256)
/* a host-initiated connection must send its CONNECT line, and the guest
 * answer the REQUEST, within this time */
#define VIRTIO_VSOCK_CONNECT_TIMEOUT_MS 5000
/* after a clean shutdown was asked for, the peer's RST (or the host's
 * reading of the last bytes) is awaited this long before kiln resets */
#define VIRTIO_VSOCK_SHUTDOWN_TIMEOUT_MS 2000

struct virtio_vsock;

struct virtio_vsock_params {
	const char *id;       /* "vsock" (Firecracker's vsock_id is deprecated); NULL: "vsock" */
	uint32_t guest_cid;   /* >= 3, not 0xffffffff (s5.10.4) */
	const char *uds_path; /* kiln creates and listens on this unix socket (an existing
	                       * stale file is removed, a live one is an error); at most
	                       * VIRTIO_VSOCK_UDS_PATH_MAX characters so that
	                       * "<uds_path>_<port>" fits a sockaddr_un */
};
#define VIRTIO_VSOCK_UDS_PATH_MAX 96

/*
 * Creates the device: checks the parameters, creates and listens on
 * uds_path. Host programs may connect at once; their connections wait in
 * the listen backlog until the guest driver activates the device.
 * 0 / -errno with a message. VMM thread.
 */
int virtio_vsock_create(struct virtio_vsock **out, const struct virtio_vsock_params *p,
                        struct errbuf *e);

/* the virtio device to hand to virtio_mmio_create() */
struct virtio_dev *virtio_vsock_dev(struct virtio_vsock *v);

/* the configured guest CID and unix socket path (for GET /vm/config) */
uint32_t virtio_vsock_guest_cid(const struct virtio_vsock *v);
const char *virtio_vsock_uds_path(const struct virtio_vsock *v);

/*
 * Counters, for the metrics sink; updated by the I/O thread, read from any.
 * rx is towards the guest (its rx queue), tx from it; bytes are payload.
 */
struct virtio_vsock_metrics {
	uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes;
	uint64_t conns_opened; /* connections established, either direction */
	uint64_t conns_reset;  /* connections or attempts ended by RST, clean closes excluded */
	uint64_t bad_packets;  /* guest packets refused as malformed */
};
void virtio_vsock_metrics(const struct virtio_vsock *v, struct virtio_vsock_metrics *out);

/*
 * Frees the device: closes the listener and every socket left, removes
 * uds_path. Its transport must be destroyed already. Safe on NULL.
 */
void virtio_vsock_destroy(struct virtio_vsock *v);

#endif
