// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: virtio-net (virtio/net*.c, tap.c) driven by the hostile
 * driver of fz_dev.c, over a real tap "fz0" in a private network namespace
 * with an AF_PACKET socket for the host side. The back-end event sends a
 * frame of the input's bytes into the tap for the device to receive; what
 * the device transmits is read and dropped. Variant bit 0: no MAC offered;
 * bit 1: small rate limiters on both directions.
 */
#include "tests/fuzz/fz_dev.h"
#include "virtio/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define TAP "fz0"

static int pkt = -1;

static int write_text(const char *file, const char *text)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

/* a network namespace of our own: as root directly, else inside a user namespace */
static int netns(void)
{
	char map[32];
	unsigned uid = getuid(), gid = getgid();
	if (unshare(CLONE_NEWNET) == 0)
		return 0;
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		return -errno;
	write_text("/proc/self/setgroups", "deny");
	snprintf(map, sizeof(map), "0 %u 1", uid);
	write_text("/proc/self/uid_map", map);
	snprintf(map, sizeof(map), "0 %u 1", gid);
	return write_text("/proc/self/gid_map", map);
}

static int net_setup(void)
{
	struct ifreq ifr = {0};
	int r = netns();
	if (r < 0) {
		fprintf(stderr, "fz: no network namespace: %s\n", strerror(-r));
		return r;
	}
	write_text("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	write_text("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	strcpy(ifr.ifr_name, TAP);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0) {
		perror("fz: tap");
		return -EIO;
	}
	close(fd);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -EIO;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		return -EIO;
	close(s);
	pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
	struct sockaddr_ll a = {.sll_family = AF_PACKET,
	                        .sll_protocol = htons(ETH_P_ALL),
	                        .sll_ifindex = ifr.ifr_ifindex};
	if (pkt < 0 || bind(pkt, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("fz: packet socket");
		return -EIO;
	}
	return 0;
}

static struct virtio_dev *net_create(struct fz *f)
{
	static const uint8_t mac[6] = {0x02, 0x6b, 0x69, 0x6c, 0x6e, 0x01};
	static const struct rl_bucket_cfg bw = {.size = 16384, .refill_time_ms = 5},
	                                  ops = {.size = 4, .refill_time_ms = 5};
	struct virtio_net *n;
	struct errbuf e = {{0}};
	bool rl = f->variant & 2;
	struct virtio_net_params p = {
	        .id = "eth0",
	        .tap_name = TAP,
	        .mac = f->variant & 1 ? NULL : mac,
	        .rx_bw = rl ? &bw : NULL,
	        .rx_ops = rl ? &ops : NULL,
	        .tx_bw = rl ? &bw : NULL,
	        .tx_ops = rl ? &ops : NULL,
	};
	if (virtio_net_create(&n, &p, &e) < 0) {
		fprintf(stderr, "fz: virtio_net_create: %s\n", e.msg);
		return NULL;
	}
	f->obj = n;
	return virtio_net_dev(n);
}

static void net_destroy(struct fz *f)
{
	virtio_net_destroy(f->obj);
}

/* the frames the device wrote to the tap, read and dropped */
static void net_drain(struct fz *f)
{
	static uint8_t buf[65536];
	(void)f;
	while (recv(pkt, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

/* a frame from the host side, of any length up to what the input holds */
static void net_host(struct fz *f, struct fz_in *in)
{
	static uint8_t frame[9000];
	(void)f;
	size_t len = fz_bytes(in, frame, fz_u16(in) % sizeof(frame));
	if (len < 14)
		len = 14; /* the kernel wants an Ethernet header */
	if (send(pkt, frame, len, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS &&
	    errno != ENETDOWN && errno != EMSGSIZE)
		perror("fz: send");
}

static const struct fz_kind net_kind = {
        .name = "net",
        .setup = net_setup,
        .create = net_create,
        .destroy = net_destroy,
        .host = net_host,
        .drain = net_drain,
};

FZ_DEV_TARGET(net_kind)
