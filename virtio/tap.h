/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/tap: the host side of virtio-net -- an existing Linux tap interface
 * opened through /dev/net/tun (Documentation/networking/tuntap.rst) with a
 * virtio_net_hdr in front of every frame, both ways.
 */
#ifndef KILN_VIRTIO_TAP_H
#define KILN_VIRTIO_TAP_H

#include "common/common.h"

/* the virtio 1.2 s5.1.6 header without HASH_REPORT: 12 bytes (num_buffers included) */
#define TAP_VNET_HDR_LEN 12

/* what tap_open learnt about the interface */
struct tap_info {
	unsigned offloads; /* TUN_F_* bits TUNSETOFFLOAD accepted (the tap can hand them to us) */
	unsigned mtu;      /* the interface's MTU when opened (1500 if it could not be read) */
	int ifindex;
};

/*
 * Attaches to the existing tap interface `name` (IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR, non-blocking, close-on-exec), sets the vnet header size to
 * TAP_VNET_HDR_LEN, probes which offloads TUNSETOFFLOAD accepts and leaves
 * them all off (the device turns on what the driver negotiates). Never
 * creates an interface. 0 with the fd in *fd, or -errno with a message:
 * -ENODEV no such interface, -EINVAL not a tap (or one created with other
 * flags, e.g. multi_queue), -EPERM/-EACCES not allowed, -EBUSY attached
 * to another process, -ENAMETOOLONG. VMM thread.
 */
int tap_open(const char *name, int *fd, struct tap_info *info, struct errbuf *e);

/* TUNSETOFFLOAD: which offloaded frames the tap may hand us. 0 / -errno. Any thread. */
int tap_set_offload(int fd, unsigned offloads);

/*
 * Whether the interface the fd is attached to still exists: 0 yes, or the
 * -errno a read gives (-EBADFD once the interface was deleted). Reads
 * nothing. Any thread.
 */
int tap_check(int fd);

#endif
