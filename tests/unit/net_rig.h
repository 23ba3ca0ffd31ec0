/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-net unit tests' rig: a private network namespace with the tap
 * kt0, an AF_PACKET socket on it for the host side, and a small polling
 * virtio-mmio driver for the guest side (two queues of QSZ entries over
 * 8 MiB of guest memory, reached through the transport's bus callbacks).
 * Shared by test_virtio_net.c and test_virtio_net_setup.c; everything is
 * static inline so a file may use only part of it.
 */
#ifndef KILN_TEST_NET_RIG_H
#define KILN_TEST_NET_RIG_H

#include "virtio/net.h"

#include "virtio_fake_driver.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define TAP       "kt0"
#define ETYPE     0x88b5 /* IEEE 802 local experimental EtherType 1 */
#define RXQ       VIRTIO_NET_RXQ
#define TXQ       VIRTIO_NET_TXQ
#define QSZ       64
#define RING(q)   (0x10000ull + 0x4000ull * (q)) /* desc; avail +0x1000; used +0x2000 */
#define RXBUF     0x100000ull                    /* one 4 KiB slot per descriptor */
#define TXBUF     0x200000ull
#define MMIO_BASE 0xd0000000ull
#define NF(b)     VIRTIO_BIT(VIRTIO_NET_F_##b)

static const uint8_t guest_mac[6] = {0x02, 0x6b, 0x69, 0x6c, 0x6e, 0x01};
static const uint8_t host_mac[6] = {0x02, 0x6b, 0x69, 0x6c, 0x6e, 0x02};

struct rig_opts {
	bool no_mac;
	unsigned mtu; /* advertised with VIRTIO_NET_F_MTU; 0: none */
	const struct rl_bucket_cfg *rx_bw, *rx_ops, *tx_bw, *tx_ops;
};

struct rig {
	struct guest_mem gm;
	struct virtio_net *net;
	struct virtio_mmio *m;
	struct {
		uint16_t avail_idx; /* driver side: next avail entry */
		uint16_t next_desc; /* next descriptor slot to fill */
		uint16_t taken;     /* used entries the test consumed */
	} q[2];
	uint64_t offered;
	int pkt, ifindex;
	uint64_t fake_ns; /* the limiters' clock: starts at 1 s, moves only when told */
	struct rl_clock clock;
};

/* ------------------------------------------------------------ host side */

static inline void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
		close(fd);
	}
}

static inline void link_set_up(bool up)
{
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s, 0);
	strcpy(ifr.ifr_name, TAP);
	cr_assert_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0, "%s", strerror(errno));
	ifr.ifr_flags = (short)(up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP);
	cr_assert_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0, "%s", strerror(errno));
	close(s);
}

/* ethtool's legacy get of one offload of the tap (ETHTOOL_GTXCSUM, ETHTOOL_GTSO) */
static inline int ethtool_get(uint32_t cmd)
{
	struct ethtool_value v = {.cmd = cmd};
	struct ifreq ifr = {0};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	strcpy(ifr.ifr_name, TAP);
	ifr.ifr_data = (char *)&v;
	cr_assert_eq(ioctl(s, SIOCETHTOOL, &ifr), 0, "%s", strerror(errno));
	close(s);
	return (int)v.data;
}

/* a tap that persists without an owner process (as `ip tuntap add` makes) */
static inline void make_tap(const char *name, int owner)
{
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	strcpy(ifr.ifr_name, name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	cr_assert_eq(ioctl(fd, TUNSETIFF, &ifr), 0, "%s", strerror(errno));
	if (owner >= 0)
		cr_assert_eq(ioctl(fd, TUNSETOWNER, owner), 0);
	cr_assert_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
	close(fd);
}

/* once per test process: a new network namespace (IPv6 off: no stray frames) with kt0 up */
static inline void netns_up(void)
{
	static bool done;
	if (done)
		return;
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		cr_skip_test("needs root for a network namespace and a tap");
	write_text("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	write_text("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	make_tap(TAP, -1);
	link_set_up(true);
	done = true;
}

static inline int packet_socket(int ifindex)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETYPE));
	cr_assert_geq(s, 0, "%s", strerror(errno));
	struct sockaddr_ll a = {
	        .sll_family = AF_PACKET, .sll_protocol = htons(ETYPE), .sll_ifindex = ifindex};
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	return s;
}

/* dst = the guest, src = the host, EtherType ETYPE, then a pattern from `seq` */
static inline void make_frame(uint8_t *f, size_t len, unsigned seq)
{
	memcpy(f, guest_mac, 6);
	memcpy(f + 6, host_mac, 6);
	f[12] = ETYPE >> 8;
	f[13] = ETYPE & 0xff;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seq * 31 + i * 7);
}

/* the host sends a frame into the tap: the device reads it */
static inline void host_send(struct rig *g, const uint8_t *f, size_t len)
{
	cr_assert_eq(send(g->pkt, f, len, 0), (ssize_t)len, "%s", strerror(errno));
}

/* the next frame the device wrote to the tap (our own sends skipped); -1 on timeout */
static inline ssize_t host_recv(struct rig *g, uint8_t *buf, size_t cap, int ms)
{
	for (;;) {
		struct pollfd p = {.fd = g->pkt, .events = POLLIN};
		if (poll(&p, 1, ms) != 1)
			return -1;
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(g->pkt, buf, cap, 0, (struct sockaddr *)&from, &fl);
		if (n < 0 && errno == ENETDOWN)
			continue; /* reported once after the link went down */
		cr_assert_geq(n, 0, "%s", strerror(errno));
		if (from.sll_pkttype != PACKET_OUTGOING)
			return n;
	}
}

static inline double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---------------------------------------------------------- guest side */

static inline uint32_t reg_read_n(struct rig *g, uint64_t off, unsigned len)
{
	return vfd_reg_read_n(g->m, off, len);
}

static inline void reg_write(struct rig *g, uint64_t off, uint32_t v)
{
	vfd_reg_write(g->m, off, v);
}

static inline bool wait_status(struct rig *g, uint32_t bit, int ms)
{
	for (int i = 0; i < ms && !(reg_read_n(g, VIRTIO_MMIO_STATUS, 4) & bit); i++)
		usleep(1000);
	return reg_read_n(g, VIRTIO_MMIO_STATUS, 4) & bit;
}

/*
 * s3.1.1: resets the device and initialises it again with VERSION_1 and
 * the net features in `want`, both queues of QSZ entries with empty rings.
 */
static inline void driver_init(struct rig *g, uint64_t want)
{
	reg_write(g, VIRTIO_MMIO_STATUS, 0);
	vfd_acknowledge(g->m, VIRTIO_ID_NET);
	g->offered = vfd_device_features(g->m);
	cr_assert_eq(want & ~g->offered, 0, "features 0x%llx not offered",
	             (unsigned long long)(want & ~g->offered));
	uint32_t st = vfd_features_ok(g->m, want | VIRTIO_BIT(VIRTIO_F_VERSION_1));
	memset(g->q, 0, sizeof(g->q));
	for (uint32_t q = 0; q < 2; q++) {
		memset(gm_ptr(&g->gm, RING(q), 0x3000), 0, 0x3000);
		vfd_queue_setup(g->m, q, VIRTIO_NET_QUEUE_SIZE, QSZ, RING(q), RING(q) + 0x1000,
		                RING(q) + 0x2000);
	}
	vfd_driver_ok(g->m, st);
}

static inline uint64_t rig_now(void *opaque)
{
	return __atomic_load_n((uint64_t *)opaque, __ATOMIC_SEQ_CST);
}

static inline void clock_advance(struct rig *g, uint64_t ms)
{
	__atomic_add_fetch(&g->fake_ns, ms * 1000000ull, __ATOMIC_SEQ_CST);
}

/* the device alone, on kt0, with the rig's fake clock */
static inline int rig_create(struct rig *g, const struct rig_opts *o, struct errbuf *e)
{
	struct virtio_net_params p = {
	        .id = "net0",
	        .tap_name = TAP,
	        .mac = o && o->no_mac ? NULL : guest_mac,
	        .mtu = o ? o->mtu : 0,
	        .rx_bw = o ? o->rx_bw : NULL,
	        .rx_ops = o ? o->rx_ops : NULL,
	        .tx_bw = o ? o->tx_bw : NULL,
	        .tx_ops = o ? o->tx_ops : NULL,
	        .clock = &g->clock,
	};
	return virtio_net_create(&g->net, &p, e);
}

static inline void rig_transport(struct rig *g)
{
	struct errbuf e = {{0}};
	struct virtio_mmio_params mp = {.base = MMIO_BASE, .gsi = 5, .gm = &g->gm};
	cr_assert_eq(virtio_mmio_create(&g->m, virtio_net_dev(g->net), &mp, &e), 0, "%s", e.msg);
}

static inline void rig_up(struct rig *g, const struct rig_opts *o, uint64_t features)
{
	struct errbuf e = {{0}};
	netns_up();
	memset(g, 0, sizeof(*g));
	g->fake_ns = 1000000000ull;
	g->clock = (struct rl_clock){.now_ns = rig_now, .opaque = &g->fake_ns};
	cr_assert_eq(gm_init(&g->gm, MIB(8), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(rig_create(g, o, &e), 0, "%s", e.msg);
	rig_transport(g);
	g->ifindex = (int)if_nametoindex(TAP);
	g->pkt = packet_socket(g->ifindex);
	driver_init(g, features);
}

static inline void rig_down(struct rig *g)
{
	close(g->pkt);
	virtio_mmio_destroy(g->m);
	virtio_net_destroy(g->net);
	gm_destroy(&g->gm);
}

/* s2.7.5 descriptor i of queue q */
static inline void put_desc(struct rig *g, unsigned q, uint16_t i, uint64_t gpa, uint32_t len,
                            uint16_t flags, uint16_t next)
{
	vfd_put_desc(&g->gm, RING(q), i, gpa, len, flags, next);
}

/* s2.7.6: makes chain `head` available; notifies when `kick` */
static inline void offer(struct rig *g, unsigned q, uint16_t head, bool kick)
{
	vfd_offer(&g->gm, g->m, q, RING(q) + 0x1000, QSZ, &g->q[q].avail_idx, head, kick);
}

static inline uint16_t used_idx(struct rig *g, unsigned q)
{
	return vfd_used_idx(&g->gm, RING(q) + 0x2000);
}

static inline void used_elem(struct rig *g, unsigned q, uint16_t n, uint32_t *id, uint32_t *len)
{
	vfd_used_elem(&g->gm, RING(q) + 0x2000, QSZ, n, id, len);
}

/* waits up to `ms` for used->idx to reach at least `want` */
static inline bool wait_used(struct rig *g, unsigned q, uint16_t want, int ms)
{
	for (int i = 0; i < ms && (int16_t)(used_idx(g, q) - want) < 0; i++)
		usleep(1000);
	return (int16_t)(used_idx(g, q) - want) >= 0;
}

/*
 * Transmits header + frame (a zero header when hdr is NULL) from one TX
 * slot: one descriptor, or two split `split` bytes into header + frame.
 */
static inline void tx_send(struct rig *g, const uint8_t *f, size_t len, const uint8_t *hdr,
                           size_t split)
{
	uint16_t d = g->q[TXQ].next_desc;
	uint64_t gpa = TXBUF + 0x1000ull * (d / 2);
	uint8_t zero[VIRTIO_NET_HDR_LEN] = {0};
	size_t total = VIRTIO_NET_HDR_LEN + len;
	cr_assert_eq(gm_write(&g->gm, gpa, hdr ? hdr : zero, VIRTIO_NET_HDR_LEN), 0);
	cr_assert_eq(gm_write(&g->gm, gpa + VIRTIO_NET_HDR_LEN, f, len), 0);
	if (split == 0 || split >= total) {
		put_desc(g, TXQ, d, gpa, (uint32_t)total, 0, 0);
	} else {
		put_desc(g, TXQ, d, gpa, (uint32_t)split, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
		put_desc(g, TXQ, d + 1, gpa + split, (uint32_t)(total - split), 0, 0);
	}
	g->q[TXQ].next_desc = (uint16_t)((d + 2) % QSZ);
	offer(g, TXQ, d, true);
}

/* a transmit chain of `len` raw bytes, no header added */
static inline void tx_send_raw(struct rig *g, const uint8_t *bytes, size_t len)
{
	uint16_t d = g->q[TXQ].next_desc;
	uint64_t gpa = TXBUF + 0x1000ull * (d / 2);
	cr_assert_eq(gm_write(&g->gm, gpa, bytes, len), 0);
	put_desc(g, TXQ, d, gpa, (uint32_t)len, 0, 0);
	g->q[TXQ].next_desc = (uint16_t)((d + 2) % QSZ);
	offer(g, TXQ, d, true);
}

/* posts `n` receive buffers of `size` bytes (<= 4 KiB), one descriptor each, one notify */
static inline void rx_post(struct rig *g, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = g->q[RXQ].next_desc;
		memset(gm_ptr(&g->gm, RXBUF + 0x1000ull * d, 0x1000), 0xee, 0x1000);
		put_desc(g, RXQ, d, RXBUF + 0x1000ull * d, size, VIRTQ_DESC_F_WRITE, 0);
		g->q[RXQ].next_desc = (uint16_t)((d + 1) % QSZ);
		offer(g, RXQ, d, i + 1 == n);
	}
}

/* a receive buffer with a device-readable descriptor in front: a broken driver */
static inline void rx_post_readable(struct rig *g, uint32_t size)
{
	uint16_t d = g->q[RXQ].next_desc;
	put_desc(g, RXQ, d, RXBUF + 0x1000ull * d, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
	put_desc(g, RXQ, d + 1, RXBUF + 0x1000ull * (d + 1), size, VIRTQ_DESC_F_WRITE, 0);
	g->q[RXQ].next_desc = (uint16_t)((d + 2) % QSZ);
	offer(g, RXQ, d, true);
}

/*
 * The next received frame: waits for its first used buffer, reads the
 * header (into hdr) and num_buffers, then the frame over that many used
 * buffers. Returns the frame's length (header excluded).
 */
static inline size_t rx_take(struct rig *g, uint8_t *out, size_t cap, uint8_t *hdr, unsigned *nbufs,
                             int ms)
{
	uint16_t first = g->q[RXQ].taken;
	cr_assert(wait_used(g, RXQ, (uint16_t)(first + 1), ms), "no frame received");
	uint32_t id, len;
	used_elem(g, RXQ, first, &id, &len);
	cr_assert_lt(id, QSZ);
	cr_assert_geq(len, VIRTIO_NET_HDR_LEN);
	cr_assert_eq(gm_read(&g->gm, RXBUF + 0x1000ull * id, hdr, VIRTIO_NET_HDR_LEN), 0);
	*nbufs = hdr[10] | hdr[11] << 8;
	cr_assert_geq(*nbufs, 1);
	cr_assert(wait_used(g, RXQ, (uint16_t)(first + *nbufs), ms));
	size_t n = 0;
	for (unsigned b = 0; b < *nbufs; b++) {
		used_elem(g, RXQ, (uint16_t)(first + b), &id, &len);
		uint32_t skip = b == 0 ? VIRTIO_NET_HDR_LEN : 0;
		cr_assert_leq(n + len - skip, cap);
		cr_assert_eq(gm_read(&g->gm, RXBUF + 0x1000ull * id + skip, out + n, len - skip),
		             0);
		n += len - skip;
	}
	g->q[RXQ].taken = (uint16_t)(first + *nbufs);
	return n;
}

#endif
