// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/net_mmds.c: the MMDS on an interface mmds-config names, as
 * Firecracker's net device detours it (devices/virtio/net/device.rs
 * write_to_mmds_or_tap, read_from_mmds_or_tap): a transmitted frame that
 * mmds_frame_is_mmds() claims is copied out of the guest's buffers once
 * (the stack never reads guest memory the guest may still be changing),
 * its partial checksum completed as a NIC would (s5.1.6.2: the driver
 * negotiated VIRTIO_NET_F_CSUM), and given to the stack; it never reaches
 * the tap and is not charged to the TX limiter (as Firecracker). The
 * stack's answers are written one at a time into mmds_out, and net.c puts
 * them in the receive queue ahead of the tap's frames. A timerfd wakes the
 * I/O thread for the stack's retransmissions.
 *
 * I/O thread, except create/destroy (VMM thread, device not running).
 */
#define LOG_MODULE "virtio-net"
#include "net_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* the first bytes mmds_frame_is_mmds() reads: Ethernet and ARP */
#define MMDS_PEEK (NET_ETH_HLEN + 28)

uint64_t net_mmds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int net_mmds_create(struct virtio_net *n, const struct virtio_net_params *p, struct errbuf *e)
{
	int r;

	n->mmds_timer_fd = -1;
	if (!p->mmds)
		return 0;
	if (!mmds_ipv4_valid(p->mmds_ipv4))
		return errf(e, EINVAL, "network interface %s: MMDS address %#x is not link-local",
		            p->id, p->mmds_ipv4);
	n->mmds_in = malloc(VIRTIO_NET_MAX_FRAME);
	n->mmds_out = malloc(NET_HDR_LEN + MMDS_NS_FRAME_MAX);
	if (!n->mmds_in || !n->mmds_out) {
		r = errf(e, ENOMEM, "out of memory for the MMDS on network interface %s", p->id);
		goto err;
	}
	n->mmds_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (n->mmds_timer_fd < 0) {
		r = errf(e, errno, "network interface %s: the MMDS's timer: %s", p->id,
		         strerror(errno));
		goto err;
	}
	if ((r = mmds_ns_create(&n->mmds, p->mmds, p->mmds_ipv4)) < 0) {
		errf(e, -r, "out of memory for the MMDS on network interface %s", p->id);
		goto err;
	}
	n->mmds_ip = p->mmds_ipv4;
	return 0;

err:
	net_mmds_destroy(n);
	return r;
}

void net_mmds_destroy(struct virtio_net *n)
{
	mmds_ns_destroy(n->mmds);
	n->mmds = NULL;
	if (n->mmds_timer_fd >= 0)
		close(n->mmds_timer_fd);
	n->mmds_timer_fd = -1;
	free(n->mmds_in);
	free(n->mmds_out);
	n->mmds_in = n->mmds_out = NULL;
}

int net_mmds_watch(struct virtio_net *n)
{
	if (!n->mmds)
		return 0;
	int r = iothread_add_fd(n->dev.io, n->mmds_timer_fd, EPOLLIN, net_mmds_timer, n);
	n->mmds_watched = r == 0;
	return r;
}

void net_mmds_unwatch(struct virtio_net *n)
{
	if (n->mmds_watched)
		iothread_del_fd(n->dev.io, n->mmds_timer_fd);
	n->mmds_watched = false;
	n->mmds_out_len = 0; /* a frame not yet given is lost, as on a wire */
}

/*
 * s5.1.6.2: with NEEDS_CSUM the checksum field at csum_start + csum_offset
 * holds the pseudo-header's sum; the ones' complement of the sum from
 * csum_start to the end goes there. Offsets past the frame are left alone:
 * the stack's own check then drops the frame.
 */
static void complete_csum(const uint8_t *h, uint8_t *f, size_t len)
{
	size_t start = (size_t)(h[6] | h[7] << 8), off = (size_t)(h[8] | h[9] << 8);

	if (start >= len || off > len - start || len - start - off < 2)
		return;
	uint16_t c = mmds_csum_fold(mmds_csum_add(0, f + start, len - start));
	f[start + off] = (uint8_t)(c >> 8);
	f[start + off + 1] = (uint8_t)c;
}

bool net_mmds_tx(struct virtio_net *n, uint64_t len)
{
	const struct vq_chain *c = &n->chain;
	uint8_t head[MMDS_PEEK];
	size_t peek = len < MMDS_PEEK ? (size_t)len : MMDS_PEEK;

	if (!n->mmds || len < NET_ETH_HLEN || len > VIRTIO_NET_MAX_FRAME)
		return false;
	if (vq_chain_read(c, NET_HDR_LEN, head, peek) != peek ||
	    !mmds_frame_is_mmds(head, peek, n->mmds_ip))
		return false;
	/* one copy: what the stack reads cannot change under it */
	if (vq_chain_read(c, NET_HDR_LEN, n->mmds_in, (size_t)len) != len)
		return false;
	if (n->tx_hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM)
		complete_csum(n->tx_hdr, n->mmds_in, (size_t)len);
	mmds_ns_input(n->mmds, n->mmds_in, (size_t)len, net_mmds_now());
	n->mmds_kick = true;
	return true;
}

size_t net_mmds_next(struct virtio_net *n)
{
	if (!n->mmds)
		return 0;
	if (!n->mmds_out_len) {
		size_t len = mmds_ns_output(n->mmds, n->mmds_out + NET_HDR_LEN, MMDS_NS_FRAME_MAX,
		                            net_mmds_now());
		if (!len)
			return 0;
		/* s5.1.6.4: no offload, the checksums are whole; num_buffers set by net.c */
		memset(n->mmds_out, 0, NET_HDR_LEN);
		n->mmds_out_len = NET_HDR_LEN + len;
	}
	return n->mmds_out_len;
}

void net_mmds_arm(struct virtio_net *n, uint64_t at)
{
	struct itimerspec its = {{0, 0}, {0, 0}};

	if (!n->mmds_watched)
		return;
	if (at) {
		its.it_value.tv_sec = (time_t)(at / 1000000000ULL);
		its.it_value.tv_nsec = (long)(at % 1000000000ULL);
	}
	timerfd_settime(n->mmds_timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

int virtio_net_mmds_metrics(const struct virtio_net *n, struct mmds_ns_metrics *out)
{
	if (!n->mmds)
		return -ENOENT;
	mmds_ns_metrics(n->mmds, out);
	return 0;
}
