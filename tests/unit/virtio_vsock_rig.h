/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny virtio-vsock driver for the unit tests of virtio/vsock (included
 * by test_virtio_vsock*.c): it drives the device through the virtio-mmio
 * transport's bus callbacks, without KVM, and plays the guest's side of
 * the protocol packet by packet; the host side is real unix sockets in a
 * temporary directory.
 */
#ifndef KILN_TEST_VIRTIO_VSOCK_RIG_H
#define KILN_TEST_VIRTIO_VSOCK_RIG_H

#include "virtio/vsock.h"

#include "virtio_fake_driver.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define QSZ       128
#define Q_GPA(q)  (0x10000ull + (q)*0x4000ull) /* desc +0, avail +0x1000, used +0x2000 */
#define RX_GPA    0x100000ull                  /* rx buffer i at RX_GPA + i * RX_BUF */
#define RX_BUF    4096u
#define EV_GPA    0x1f0000ull
#define TX_GPA    0x200000ull /* tx slot i: header, payload at +64 */
#define TX_SLOT   0x11000ull
#define TX_SLOTS  (QSZ / 2) /* two descriptors each */
#define MMIO_BASE 0xd0000000ull
#define GUEST_CID 3u
#define RXQ       0
#define TXQ       1
#define EVQ       2

/* s5.10.6 */
#define OP_REQUEST        1
#define OP_RESPONSE       2
#define OP_RST            3
#define OP_SHUTDOWN       4
#define OP_RW             5
#define OP_CREDIT_UPDATE  6
#define OP_CREDIT_REQUEST 7
#define SHUT_RCV          1u
#define SHUT_SEND         2u

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
	uint32_t dlen; /* payload bytes received */
	uint8_t data[RX_BUF];
};

struct rig {
	struct guest_mem gm;
	struct virtio_vsock *vs;
	struct virtio_mmio *m;
	char dir[32], uds[64];
	uint16_t avail[3], used_seen[3];
	uint16_t tx_sent;
	bool rx_refill; /* give each rx buffer back once read (default) */
};

static inline uint32_t reg_read(struct rig *g, uint64_t off)
{
	return vfd_reg_read(g->m, off);
}

static inline void reg_write(struct rig *g, uint64_t off, uint32_t v)
{
	vfd_reg_write(g->m, off, v);
}

static inline void put_desc(struct rig *g, int q, uint16_t i, uint64_t gpa, uint32_t len,
                            uint16_t flags, uint16_t next)
{
	vfd_put_desc(&g->gm, Q_GPA(q), i, gpa, len, flags, next);
}

/* s2.7.13: makes chain `head` available on q; notify or not */
static inline void offer(struct rig *g, int q, uint16_t head, bool notify)
{
	vfd_offer(&g->gm, g->m, (uint32_t)q, Q_GPA(q) + 0x1000, QSZ, &g->avail[q], head, notify);
}

static inline uint16_t used_idx(struct rig *g, int q)
{
	return vfd_used_idx(&g->gm, Q_GPA(q) + 0x2000);
}

static inline void used_elem(struct rig *g, int q, uint16_t n, uint32_t *id, uint32_t *len)
{
	vfd_used_elem(&g->gm, Q_GPA(q) + 0x2000, QSZ, n, id, len);
}

/* gives rx buffer `slot` to the device */
static inline void post_rx(struct rig *g, uint16_t slot, bool notify)
{
	put_desc(g, RXQ, slot, RX_GPA + (uint64_t)slot * RX_BUF, RX_BUF, VIRTQ_DESC_F_WRITE, 0);
	offer(g, RXQ, slot, notify);
}

static inline void post_all_rx(struct rig *g)
{
	for (uint16_t i = 0; i < QSZ; i++)
		post_rx(g, i, i == QSZ - 1);
}

/* virtio 1.2 s3.1.1 / s5.10.5: status, features, the three queues */
static inline void driver_init(struct rig *g, bool rx_buffers)
{
	reg_write(g, VIRTIO_MMIO_STATUS, 0);
	cr_assert_eq(reg_read(g, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	vfd_acknowledge(g->m, VIRTIO_ID_VSOCK);
	reg_write(g, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t lo = reg_read(g, VIRTIO_MMIO_DEVICE_FEATURES);
	cr_assert(lo & 1u, "VIRTIO_VSOCK_F_STREAM offered");
	/* VERSION_1 and F_STREAM */
	uint32_t st = vfd_features_ok(g->m, VIRTIO_BIT(VIRTIO_F_VERSION_1) | 1u);
	uint32_t cid_lo = reg_read(g, VIRTIO_MMIO_CONFIG),
	         cid_hi = reg_read(g, VIRTIO_MMIO_CONFIG + 4);
	cr_assert(cid_lo == GUEST_CID && cid_hi == 0, "guest_cid %u:%u", cid_hi, cid_lo);
	for (int q = 0; q < 3; q++) {
		memset(gm_ptr(&g->gm, Q_GPA(q), 0x3000), 0, 0x3000); /* fresh rings */
		vfd_queue_setup(g->m, (uint32_t)q, VIRTIO_VSOCK_QUEUE_SIZE, QSZ, Q_GPA(q),
		                Q_GPA(q) + 0x1000, Q_GPA(q) + 0x2000);
	}
	vfd_driver_ok(g->m, st);
	/* s5.10.5: an event buffer, then rx buffers */
	put_desc(g, EVQ, 0, EV_GPA, 4, VIRTQ_DESC_F_WRITE, 0);
	offer(g, EVQ, 0, true);
	if (rx_buffers)
		post_all_rx(g);
}

static inline void rig_up_cid(struct rig *g, uint32_t cid, bool rx_buffers)
{
	struct errbuf e = {{0}};
	memset(g, 0, sizeof(*g));
	g->rx_refill = true;
	strcpy(g->dir, "/tmp/kiln-vsock-XXXXXX");
	cr_assert_not_null(mkdtemp(g->dir));
	snprintf(g->uds, sizeof(g->uds), "%s/v.sock", g->dir);
	cr_assert_eq(gm_init(&g->gm, MIB(16), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	struct virtio_vsock_params p = {.id = "vsock", .guest_cid = cid, .uds_path = g->uds};
	cr_assert_eq(virtio_vsock_create(&g->vs, &p, &e), 0, "%s", e.msg);
	struct virtio_mmio_params mp = {.base = MMIO_BASE, .gsi = 5, .gm = &g->gm};
	cr_assert_eq(virtio_mmio_create(&g->m, virtio_vsock_dev(g->vs), &mp, &e), 0, "%s", e.msg);
	driver_init(g, rx_buffers);
}

static inline void rig_up(struct rig *g)
{
	rig_up_cid(g, GUEST_CID, true);
}

static inline void rig_down(struct rig *g)
{
	virtio_mmio_destroy(g->m);
	virtio_vsock_destroy(g->vs);
	gm_destroy(&g->gm);
	rmdir(g->dir); /* fails (and says so below) if a socket file was left */
}

static inline struct virtio_vsock_metrics metrics(struct rig *g)
{
	struct virtio_vsock_metrics m;
	virtio_vsock_metrics(g->vs, &m);
	return m;
}

static inline bool broken(struct rig *g)
{
	return virtio_dev_broken(virtio_vsock_dev(g->vs));
}

/* -------------------------------------------------------------- tx side */

static inline void hdr_put(uint8_t *b, const struct pkt *h)
{
	memcpy(b, &h->src_cid, 8);
	memcpy(b + 8, &h->dst_cid, 8);
	memcpy(b + 16, &h->src_port, 4);
	memcpy(b + 20, &h->dst_port, 4);
	memcpy(b + 24, &h->len, 4);
	memcpy(b + 28, &h->type, 2);
	memcpy(b + 30, &h->op, 2);
	memcpy(b + 32, &h->flags, 4);
	memcpy(b + 36, &h->buf_alloc, 4);
	memcpy(b + 40, &h->fwd_cnt, 4);
}

static inline bool wait_used(struct rig *g, int q, uint16_t want, int ms)
{
	for (int i = 0; i < ms * 10; i++) {
		if (used_idx(g, q) == want)
			return true;
		usleep(100);
	}
	return used_idx(g, q) == want;
}

/*
 * Sends a chain of `hdr_len` header bytes (from h, padded with zeroes) and
 * `plen` payload bytes in a second descriptor, and waits until the device
 * used it.
 */
static inline void tx_raw(struct rig *g, const struct pkt *h, uint32_t hdr_len, const void *payload,
                          uint32_t plen)
{
	uint16_t slot = g->tx_sent % TX_SLOTS, d0 = (uint16_t)(2 * slot);
	uint64_t gpa = TX_GPA + slot * TX_SLOT;
	uint8_t raw[64] = {0};
	hdr_put(raw, h);
	cr_assert_eq(gm_write(&g->gm, gpa, raw, hdr_len), 0);
	if (plen) {
		cr_assert_leq(plen, TX_SLOT - 64);
		cr_assert_eq(gm_write(&g->gm, gpa + 64, payload, plen), 0);
		put_desc(g, TXQ, d0, gpa, hdr_len, VIRTQ_DESC_F_NEXT, (uint16_t)(d0 + 1));
		put_desc(g, TXQ, (uint16_t)(d0 + 1), gpa + 64, plen, 0, 0);
	} else {
		put_desc(g, TXQ, d0, gpa, hdr_len, 0, 0);
	}
	offer(g, TXQ, d0, true);
	g->tx_sent++;
	cr_assert(wait_used(g, TXQ, g->tx_sent, 3000), "the device takes tx packet %u", g->tx_sent);
}

/* the guest's end of one connection */
struct gconn {
	uint32_t port, host_port;
	uint32_t buf_alloc, fwd_cnt; /* what the guest tells the device */
	uint32_t tx_cnt;             /* bytes the guest sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
};

static inline void tx(struct rig *g, struct gconn *c, uint16_t op, uint32_t flags, const void *data,
                      uint32_t len)
{
	struct pkt h = {.src_cid = GUEST_CID,
	                .dst_cid = 2,
	                .src_port = c->port,
	                .dst_port = c->host_port,
	                .len = len,
	                .type = 1,
	                .op = op,
	                .flags = flags,
	                .buf_alloc = c->buf_alloc,
	                .fwd_cnt = c->fwd_cnt};
	tx_raw(g, &h, 44, data, len);
	c->tx_cnt += len;
}

/* -------------------------------------------------------------- rx side */

/* the next packet from the device within `ms`; false on timeout */
static inline bool rx_get(struct rig *g, struct pkt *p, int ms)
{
	uint16_t n = g->used_seen[RXQ];
	for (int i = 0; i < ms * 10 && used_idx(g, RXQ) == n; i++)
		usleep(100);
	if (used_idx(g, RXQ) == n)
		return false;
	uint32_t id, len;
	used_elem(g, RXQ, n, &id, &len);
	g->used_seen[RXQ]++;
	cr_assert_lt(id, QSZ);
	cr_assert_geq(len, 44, "a packet is at least a header (len %u)", len);
	cr_assert_leq(len, RX_BUF);
	uint8_t raw[44];
	uint64_t gpa = RX_GPA + (uint64_t)id * RX_BUF;
	cr_assert_eq(gm_read(&g->gm, gpa, raw, 44), 0);
	memcpy(&p->src_cid, raw, 8);
	memcpy(&p->dst_cid, raw + 8, 8);
	memcpy(&p->src_port, raw + 16, 4);
	memcpy(&p->dst_port, raw + 20, 4);
	memcpy(&p->len, raw + 24, 4);
	memcpy(&p->type, raw + 28, 2);
	memcpy(&p->op, raw + 30, 2);
	memcpy(&p->flags, raw + 32, 4);
	memcpy(&p->buf_alloc, raw + 36, 4);
	memcpy(&p->fwd_cnt, raw + 40, 4);
	p->dlen = len - 44;
	cr_assert_eq(p->len, p->dlen, "hdr.len %u, used len %u", p->len, len);
	cr_assert_eq(gm_read(&g->gm, gpa + 44, p->data, p->dlen), 0);
	cr_assert_eq(p->dst_cid, GUEST_CID);
	cr_assert_eq(p->type, 1);
	if (g->rx_refill)
		post_rx(g, (uint16_t)id, true);
	return true;
}

/* the next packet must be `op` on connection c (NULL: any ports) */
static inline void rx_expect(struct rig *g, struct pkt *p, uint16_t op, struct gconn *c)
{
	cr_assert(rx_get(g, p, 3000), "expected op %u, got nothing", op);
	cr_assert_eq(p->op, op, "expected op %u, got op %u (%u -> %u flags %u len %u)", op, p->op,
	             p->src_port, p->dst_port, p->flags, p->len);
	if (c) {
		cr_assert_eq(p->src_port, c->host_port);
		cr_assert_eq(p->dst_port, c->port);
		c->peer_buf_alloc = p->buf_alloc;
		c->peer_fwd_cnt = p->fwd_cnt;
	}
}

static inline void rx_none(struct rig *g, int ms)
{
	struct pkt p;
	cr_assert_not(rx_get(g, &p, ms), "unexpected op %u %u -> %u", p.op, p.src_port, p.dst_port);
}

/* ------------------------------------------------------------ host side */

static inline void set_timeout(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static inline int unix_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -errno;
	}
	set_timeout(fd, 3000);
	return fd;
}

/* a host program listening on "<uds>_<port>" */
static inline int host_listen(struct rig *g, uint32_t port)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", g->uds, port);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	cr_assert_eq(listen(fd, 1024), 0);
	set_timeout(fd, 3000);
	return fd;
}

static inline void host_unlisten(struct rig *g, int fd, uint32_t port)
{
	char path[128];
	snprintf(path, sizeof(path), "%s_%u", g->uds, port);
	close(fd);
	unlink(path);
}

static inline void read_exact(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
		cr_assert_gt(r, 0, "read %zu of %zu: %s", got, n, r ? strerror(errno) : "EOF");
		got += (size_t)r;
	}
}

static inline void write_all_fd(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const uint8_t *)buf + done, n - done);
		cr_assert_gt(w, 0, "%s", strerror(errno));
		done += (size_t)w;
	}
}

/* reads up to '\n' (included) into line */
static inline void read_line(int fd, char *line, size_t max)
{
	size_t n = 0;
	while (n + 1 < max) {
		cr_assert_eq(read(fd, line + n, 1), 1, "line so far \"%.*s\"", (int)n, line);
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
}

/* expects EOF on fd within its timeout */
static inline void expect_eof(int fd)
{
	char c;
	ssize_t r = read(fd, &c, 1);
	cr_assert_eq(r, 0, "EOF expected, read gave %zd (%s)", r, r < 0 ? strerror(errno) : "data");
}

/* expects the connection closed: EOF, or a reset when kiln left bytes unread */
static inline void expect_closed(int fd)
{
	char c;
	ssize_t r = read(fd, &c, 1);
	cr_assert(r == 0 || (r < 0 && errno == ECONNRESET), "closed expected, read gave %zd (%s)",
	          r, r < 0 ? strerror(errno) : "data");
}

/* --------------------------------------------------------- handshakes */

/* the guest connects from `port` to host port `host_port`; returns the host's end */
static inline int guest_connect(struct rig *g, int lfd, struct gconn *c, uint32_t port,
                                uint32_t host_port, uint32_t buf_alloc)
{
	struct pkt p;
	*c = (struct gconn){.port = port, .host_port = host_port, .buf_alloc = buf_alloc};
	tx(g, c, OP_REQUEST, 0, NULL, 0);
	rx_expect(g, &p, OP_RESPONSE, c);
	cr_assert_eq(p.buf_alloc, VIRTIO_VSOCK_CONN_BUF);
	cr_assert_eq(p.src_cid, 2);
	int fd = accept(lfd, NULL, NULL);
	cr_assert_geq(fd, 0, "%s", strerror(errno));
	set_timeout(fd, 3000);
	return fd;
}

/* the host connects to guest port `port`; the guest accepts. Returns the host's end */
static inline int host_connect(struct rig *g, struct gconn *c, uint32_t port, uint32_t buf_alloc)
{
	struct pkt p;
	char line[64];
	int fd = unix_connect(g->uds);
	cr_assert_geq(fd, 0, "connect to %s: %s", g->uds, strerror(-fd));
	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	write_all_fd(fd, line, strlen(line));
	rx_expect(g, &p, OP_REQUEST, NULL);
	cr_assert_eq(p.src_cid, 2);
	cr_assert_eq(p.dst_port, port);
	cr_assert_geq(p.src_port, 0x40000000u);
	*c = (struct gconn){.port = port,
	                    .host_port = p.src_port,
	                    .buf_alloc = buf_alloc,
	                    .peer_buf_alloc = p.buf_alloc,
	                    .peer_fwd_cnt = p.fwd_cnt};
	tx(g, c, OP_RESPONSE, 0, NULL, 0);
	read_line(fd, line, sizeof(line));
	char want[32];
	snprintf(want, sizeof(want), "OK %u\n", c->host_port);
	cr_assert_str_eq(line, want);
	return fd;
}

/* the guest sends `len` bytes on c; the host end fd reads exactly them */
static inline void guest_to_host(struct rig *g, struct gconn *c, int fd, const void *data,
                                 uint32_t len)
{
	uint8_t buf[256];
	cr_assert_leq(len, sizeof(buf));
	tx(g, c, OP_RW, 0, data, len);
	read_exact(fd, buf, len);
	cr_assert_eq(memcmp(buf, data, len), 0);
}

/* the host end fd sends `len` bytes; the guest gets them in one RW on c */
static inline void host_to_guest(struct rig *g, struct gconn *c, int fd, const void *data,
                                 uint32_t len)
{
	struct pkt p;
	write_all_fd(fd, data, len);
	rx_expect(g, &p, OP_RW, c);
	cr_assert(p.dlen == len && !memcmp(p.data, data, len), "%u bytes, not %u", p.dlen, len);
	cr_assert_eq(p.buf_alloc, VIRTIO_VSOCK_CONN_BUF);
}

/* s5.10.6.3: what the device can still take from the guest */
static inline uint32_t guest_credit(const struct gconn *c)
{
	return c->peer_buf_alloc - (c->tx_cnt - c->peer_fwd_cnt);
}

static inline uint8_t pattern(uint64_t i, uint32_t seed)
{
	return (uint8_t)(i * 7 + seed + (i >> 11));
}

#endif
