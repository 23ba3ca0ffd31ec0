// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/tap.c: attaching to an existing tap interface (Linux
 * Documentation/networking/tuntap.rst, include/uapi/linux/if_tun.h).
 */
#define LOG_MODULE "virtio-net"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Offload sets tried in turn, most first: TUNSETOFFLOAD rejects bits the
 * kernel does not know with EINVAL (TSO needs CSUM; kernels 4.14 refused
 * UFO).
 */
static const unsigned tap_offload_sets[] = {
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO,
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
        TUN_F_CSUM,
};

int tap_set_offload(int fd, unsigned offloads)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0 ? -errno : 0;
}

int tap_check(int fd)
{
	/* tun's read returns 0 at once for an empty buffer, -EBADFD when detached */
	return read(fd, NULL, 0) < 0 && errno != EAGAIN ? -errno : 0;
}

static unsigned tap_mtu(const char *name)
{
	struct ifreq ifr;
	unsigned mtu = 1500;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return mtu;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name) + 1);
	if (ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
		mtu = (unsigned)ifr.ifr_mtu;
	close(s);
	return mtu;
}

/* TUNSETIFF's errors, for the person who named the tap */
static int tap_setiff_error(const char *name, int err, struct errbuf *e)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return errf(e, err,
		            "tap %s: permission denied (it belongs to another user or group, and "
		            "kiln lacks CAP_NET_ADMIN)",
		            name);
	case EBUSY:
		return errf(e, err, "tap %s is busy: another process has it open", name);
	case EINVAL:
		return errf(e, err,
		            "%s is not a tap interface, or a tap created with other flags "
		            "(multi_queue is not supported)",
		            name);
	default:
		return errf(e, err, "tap %s: TUNSETIFF: %s", name, strerror(err));
	}
}

int tap_open(const char *name, int *fd_out, struct tap_info *info, struct errbuf *e)
{
	struct ifreq ifr;
	size_t len = name ? strlen(name) : 0;
	int fd, ret;

	if (len == 0)
		return errf(e, EINVAL, "host_dev_name must not be empty");
	if (len >= IFNAMSIZ)
		return errf(e, ENAMETOOLONG, "host_dev_name %s is longer than %d characters", name,
		            IFNAMSIZ - 1);
	/* TUNSETIFF would create a missing interface: only attach to one that exists */
	int ifindex = (int)if_nametoindex(name);
	if (ifindex == 0)
		return errf(e, ENODEV, "no network interface named %s (create the tap first)",
		            name);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		return errf(e, -ret, "tap %s: cannot open /dev/net/tun: %s", name, strerror(-ret));
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, len + 1);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = tap_setiff_error(name, errno, e);
		goto err_close;
	}
	/* it went away between the two calls and TUNSETIFF made a new one */
	if ((int)if_nametoindex(name) != ifindex) {
		ret = errf(e, ENODEV, "tap %s disappeared while kiln opened it", name);
		goto err_close;
	}
	int hdr = TAP_VNET_HDR_LEN;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		ret = -errno;
		errf(e, -ret, "tap %s: TUNSETVNETHDRSZ %d: %s", name, hdr, strerror(-ret));
		goto err_close;
	}
	info->offloads = 0;
	for (size_t i = 0; i < ARRAY_SIZE(tap_offload_sets); i++) {
		if (tap_set_offload(fd, tap_offload_sets[i]) == 0) {
			info->offloads = tap_offload_sets[i];
			break;
		}
	}
	ret = tap_set_offload(fd, 0);
	if (ret < 0) {
		errf(e, -ret, "tap %s: TUNSETOFFLOAD: %s", name, strerror(-ret));
		goto err_close;
	}
	info->mtu = tap_mtu(name);
	info->ifindex = ifindex;
	*fd_out = fd;
	return 0;

err_close:
	close(fd);
	return ret;
}
