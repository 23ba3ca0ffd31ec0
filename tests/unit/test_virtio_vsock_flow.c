// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio/vsock under pressure: credit exhaustion and
 * recovery both ways (virtio 1.2 s5.10.6.3), an rx queue without buffers
 * (s5.10.6.1), many connections and the table's limit, and a guest that
 * sends garbage. Same fake driver as test_virtio_vsock.c.
 */
#include "virtio_vsock_rig.h"

#include <sys/resource.h>

#define CTL_GPA 0xf00000ull /* header-only packets sent without waiting: 64 bytes each */

/* host -> guest: never more than the guest's credit, a CREDIT_REQUEST when
 * it runs out, and every byte once the guest gives credit again */
Test(vsock_flow, guest_credit_exhaustion_and_recovery)
{
	struct rig g;
	struct gconn c;
	struct pkt p;
	enum { CREDIT = 1000, TOTAL = 20000 };
	static uint8_t out[TOTAL];
	rig_up(&g);
	int lfd = host_listen(&g, 5000);
	int fd = guest_connect(&g, lfd, &c, 1025, 5000, CREDIT);
	for (unsigned i = 0; i < TOTAL; i++)
		out[i] = pattern(i, 3);
	write_all_fd(fd, out, TOTAL); /* the socket holds what the guest cannot take */

	uint32_t got = 0, allowed = CREDIT, requests = 0;
	while (got < TOTAL) {
		cr_assert(rx_get(&g, &p, 3000), "stalled at %u of %u", got, TOTAL);
		if (p.op == OP_CREDIT_REQUEST) { /* may trail the guest's update a little */
			requests++;
			continue;
		}
		cr_assert_eq(p.op, OP_RW, "op %u", p.op);
		cr_assert_leq(got + p.dlen, allowed, "beyond the guest's credit");
		for (uint32_t k = 0; k < p.dlen; k++)
			cr_assert_eq(p.data[k], out[got + k], "byte %u", got + k);
		got += p.dlen;
		if (got == allowed && got < TOTAL) {
			/* only a CREDIT_REQUEST may come now, not data */
			while (rx_get(&g, &p, 30)) {
				cr_assert_eq(p.op, OP_CREDIT_REQUEST, "op %u with no credit", p.op);
				requests++;
			}
			c.fwd_cnt = got; /* the guest's application read it all */
			tx(&g, &c, OP_CREDIT_UPDATE, 0, NULL, 0);
			allowed = got + CREDIT;
		}
	}
	cr_assert_geq(requests, 1);
	cr_assert_leq(requests, TOTAL / CREDIT, "one request per stall at most");

	/* s5.10.6.3: a CREDIT_REQUEST is answered with the device's buffer state */
	tx(&g, &c, OP_CREDIT_REQUEST, 0, NULL, 0);
	rx_expect(&g, &p, OP_CREDIT_UPDATE, &c);
	cr_assert_eq(p.buf_alloc, VIRTIO_VSOCK_CONN_BUF);
	close(fd);
	host_unlisten(&g, lfd, 5000);
	rig_down(&g);
}

/* reads rx packets for `ms`, taking credit updates for c */
static void take_updates(struct rig *g, struct gconn *c, int ms)
{
	struct pkt p;
	while (rx_get(g, &p, ms)) {
		cr_assert_eq(p.op, OP_CREDIT_UPDATE, "op %u", p.op);
		cr_assert_eq(p.dst_port, c->port);
		c->peer_buf_alloc = p.buf_alloc;
		c->peer_fwd_cnt = p.fwd_cnt;
	}
}

/* guest -> host: a host that does not read fills the socket and then the
 * device's buffer; nothing is lost and credit comes back as it reads */
Test(vsock_flow, host_slow_reader_and_device_credit)
{
	struct rig g;
	struct gconn c;
	enum { CHUNK = 60000 };
	static uint8_t chunk[CHUNK], in[CHUNK];
	rig_up(&g);
	int lfd = host_listen(&g, 5000);
	int fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);
	cr_assert_eq(guest_credit(&c), VIRTIO_VSOCK_CONN_BUF);

	uint64_t sent = 0;
	for (;;) {
		uint32_t n = guest_credit(&c);
		if (n == 0) {
			take_updates(&g, &c, 100);
			if (guest_credit(&c) == 0)
				break;
			continue;
		}
		if (n > CHUNK)
			n = CHUNK;
		for (uint32_t k = 0; k < n; k++)
			chunk[k] = pattern(sent + k, 9);
		tx(&g, &c, OP_RW, 0, chunk, n);
		sent += n;
		take_updates(&g, &c, 0);
	}
	cr_assert_geq(sent, VIRTIO_VSOCK_CONN_BUF, "the socket took some, the buffer the rest");
	/* the host reads everything in order; credit returns to the guest */
	uint64_t got = 0;
	while (got < sent) {
		ssize_t r = read(fd, in, sizeof(in));
		cr_assert_gt(r, 0, "%s", strerror(errno));
		for (ssize_t k = 0; k < r; k++)
			cr_assert_eq(in[k], pattern(got + (uint64_t)k, 9), "byte %llu",
			             (unsigned long long)(got + (uint64_t)k));
		got += (uint64_t)r;
	}
	cr_assert_eq(got, sent);
	for (int i = 0; i < 30 && guest_credit(&c) < VIRTIO_VSOCK_CONN_BUF / 2; i++)
		take_updates(&g, &c, 100);
	cr_assert_geq(guest_credit(&c), VIRTIO_VSOCK_CONN_BUF / 2, "credit back: %u",
	              guest_credit(&c));
	guest_to_host(&g, &c, fd, "more", 4);
	struct virtio_vsock_metrics m = metrics(&g);
	cr_assert_eq(m.tx_bytes, sent + 4);
	cr_assert_eq(m.bad_packets, 0);
	close(fd);
	host_unlisten(&g, lfd, 5000);
	rig_down(&g);
}

/* a header-only packet on descriptor `i` of the tx queue, not waited for */
static void tx_nowait(struct rig *g, const struct pkt *h, uint16_t i)
{
	uint8_t raw[64] = {0};
	hdr_put(raw, h);
	cr_assert_eq(gm_write(&g->gm, CTL_GPA + 64ull * i, raw, 44), 0);
	put_desc(g, TXQ, i, CTL_GPA + 64ull * i, 44, 0, 0);
	offer(g, TXQ, i, true);
	g->tx_sent++;
}

/* s5.10.6.1: the tx queue is served while the rx queue has no buffer, until
 * the RSTs kiln owes the guest fill their ring; then it waits for the guest */
Test(vsock_flow, tx_served_while_rx_is_full)
{
	struct rig g;
	struct gconn c;
	struct pkt p;
	rig_up_cid(&g, GUEST_CID, false);
	g.rx_refill = false;
	post_rx(&g, 0, true); /* room for the RESPONSE only */
	int lfd = host_listen(&g, 5000);
	int fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);
	write_all_fd(fd, "held", 4); /* waits: no rx buffer */
	guest_to_host(&g, &c, fd, "ping", 4);
	rx_none(&g, 50);

	/* refused connections: every one owes an RST */
	uint16_t base = g.tx_sent;
	struct pkt h = {
	        .src_cid = GUEST_CID, .dst_cid = 2, .dst_port = 9, .type = 1, .op = OP_REQUEST};
	for (unsigned round = 0; round < 3; round++) {
		for (uint16_t i = 0; i < QSZ; i++) {
			h.src_port = 20000 + round * QSZ + i;
			tx_nowait(&g, &h, i);
		}
		if (round < 2)
			cr_assert(wait_used(&g, TXQ, g.tx_sent, 3000), "round %u", round);
	}
	usleep(50000);
	uint16_t done = (uint16_t)(used_idx(&g, TXQ) - base);
	cr_assert_geq(done, 256, "the RST ring takes 256");
	cr_assert_lt(done, 3 * QSZ, "then the tx queue waits");

	/* the guest gives buffers: every RST (in order) and the data come */
	g.rx_refill = true;
	for (uint16_t i = 0; i < QSZ; i++)
		post_rx(&g, i, true);
	cr_assert(wait_used(&g, TXQ, g.tx_sent, 3000), "the tx queue went on");
	unsigned rsts = 0, data = 0;
	while (rx_get(&g, &p, 200)) {
		if (p.op == OP_RST) {
			cr_assert_eq(p.dst_port, 20000 + rsts, "RSTs in order");
			rsts++;
		} else {
			cr_assert_eq(p.op, OP_RW);
			cr_assert(p.dlen == 4 && !memcmp(p.data, "held", 4));
			data++;
		}
	}
	cr_assert_eq(rsts, 3 * QSZ);
	cr_assert_eq(data, 1);
	close(fd);
	host_unlisten(&g, lfd, 5000);
	rig_down(&g);
}

Test(vsock_flow, many_connections_both_ways)
{
	struct rig g;
	struct pkt p;
	enum { NG = 100, NH = 50 };
	static struct gconn c[NG + NH];
	static int fd[NG + NH];
	rig_up(&g);
	int lfd = host_listen(&g, 6000);
	for (int i = 0; i < NG; i++)
		fd[i] = guest_connect(&g, lfd, &c[i], 3000 + (uint32_t)i, 6000, 65536);
	for (int i = NG; i < NG + NH; i++)
		fd[i] = host_connect(&g, &c[i], 7000 + (uint32_t)(i - NG), 65536);

	/* every connection carries its own bytes, both ways */
	char msg[32], got[32];
	for (int i = 0; i < NG + NH; i++) {
		int n = snprintf(msg, sizeof(msg), "to host %d", i);
		tx(&g, &c[i], OP_RW, 0, msg, (uint32_t)n);
	}
	for (int i = 0; i < NG + NH; i++) {
		int n = snprintf(msg, sizeof(msg), "to host %d", i);
		read_exact(fd[i], got, (size_t)n);
		cr_assert_eq(memcmp(got, msg, (size_t)n), 0, "connection %d", i);
		n = snprintf(msg, sizeof(msg), "to guest %d", i);
		write_all_fd(fd[i], msg, (size_t)n);
	}
	static bool seen[NG + NH];
	for (int k = 0; k < NG + NH; k++) {
		cr_assert(rx_get(&g, &p, 3000), "%d of %d answers", k, NG + NH);
		cr_assert_eq(p.op, OP_RW);
		int i = p.dst_port >= 7000 ? NG + (int)(p.dst_port - 7000)
		                           : (int)(p.dst_port - 3000);
		cr_assert(i >= 0 && i < NG + NH && !seen[i]);
		cr_assert_eq(p.src_port, c[i].host_port);
		int n = snprintf(msg, sizeof(msg), "to guest %d", i);
		cr_assert(p.dlen == (uint32_t)n && !memcmp(p.data, msg, (size_t)n), "connection %d",
		          i);
		seen[i] = true;
	}
	/* the guest closes them all: RST for each, EOF on each host end */
	for (int i = 0; i < NG + NH; i++) {
		tx(&g, &c[i], OP_SHUTDOWN, SHUT_RCV | SHUT_SEND, NULL, 0);
		rx_expect(&g, &p, OP_RST, &c[i]);
		expect_eof(fd[i]);
		close(fd[i]);
	}
	struct virtio_vsock_metrics m = metrics(&g);
	cr_assert_eq(m.conns_opened, NG + NH);
	cr_assert_eq(m.conns_reset, 0);
	host_unlisten(&g, lfd, 6000);
	rig_down(&g);
}

Test(vsock_flow, connection_table_limit)
{
	struct rig g;
	struct gconn extra;
	struct pkt p;
	enum { N = VIRTIO_VSOCK_MAX_CONNS };
	static struct gconn c[N];
	static int fd[N];
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < 2 * N + 64)
		cr_skip_test("needs %d open files, the hard limit is %llu", 2 * N + 64,
		             (unsigned long long)rl.rlim_max);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	rig_up(&g);
	int lfd = host_listen(&g, 6000);
	for (int i = 0; i < N; i++)
		fd[i] = guest_connect(&g, lfd, &c[i], 10000 + (uint32_t)i, 6000, 65536);
	/* one more from the guest gets RST, one more from the host is closed */
	extra = (struct gconn){.port = 9999, .host_port = 6000, .buf_alloc = 65536};
	tx(&g, &extra, OP_REQUEST, 0, NULL, 0);
	rx_expect(&g, &p, OP_RST, &extra);
	int h = unix_connect(g.uds);
	cr_assert_geq(h, 0);
	expect_closed(h);
	close(h);
	/* a connection ends, a new one fits */
	tx(&g, &c[0], OP_RST, 0, NULL, 0);
	expect_closed(fd[0]);
	close(fd[0]);
	fd[0] = guest_connect(&g, lfd, &extra, 9999, 6000, 65536);
	for (int i = 0; i < N; i++)
		close(fd[i]);
	host_unlisten(&g, lfd, 6000);
	rig_down(&g);
}

Test(vsock_flow, garbage_from_the_guest)
{
	struct rig g;
	struct gconn c;
	struct pkt p, h;
	rig_up(&g);
	uint64_t bad = 0;
	struct pkt base = {.src_cid = GUEST_CID,
	                   .dst_cid = 2,
	                   .src_port = 1,
	                   .dst_port = 2,
	                   .type = 1,
	                   .op = OP_REQUEST};

	h = base; /* shorter than a header: dropped */
	tx_raw(&g, &h, 20, NULL, 0);
	cr_assert_eq(metrics(&g).bad_packets, ++bad);
	h = base; /* s5.10.6.5: a forged source gets nothing back */
	h.src_cid = 7;
	tx_raw(&g, &h, 44, NULL, 0);
	h.src_cid = GUEST_CID | 1ull << 32;
	tx_raw(&g, &h, 44, NULL, 0);
	bad += 2;
	rx_none(&g, 30);
	h = base; /* not for the host: RST from where it was going */
	h.dst_cid = 5;
	tx_raw(&g, &h, 44, NULL, 0);
	rx_expect(&g, &p, OP_RST, NULL);
	cr_assert(p.src_cid == 5 && p.src_port == 2 && p.dst_port == 1);
	h = base; /* s5.10.6.5: unknown type */
	h.type = 2;
	tx_raw(&g, &h, 44, NULL, 0);
	rx_expect(&g, &p, OP_RST, NULL);
	h = base; /* unknown ops */
	h.op = 0;
	tx_raw(&g, &h, 44, NULL, 0);
	rx_expect(&g, &p, OP_RST, NULL);
	h.op = 99;
	tx_raw(&g, &h, 44, NULL, 0);
	rx_expect(&g, &p, OP_RST, NULL);
	h = base; /* len beyond the chain */
	h.op = OP_RW;
	h.len = 100;
	tx_raw(&g, &h, 44, "0123456789", 10);
	rx_expect(&g, &p, OP_RST, NULL);
	h.op = OP_RST; /* an RST is never answered, bad or not */
	tx_raw(&g, &h, 44, NULL, 0);
	bad += 6;
	rx_none(&g, 30);
	cr_assert_eq(metrics(&g).bad_packets, bad);

	/* on a live connection, the same mistakes reset it */
	int lfd = host_listen(&g, 5000);
	int fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);
	tx(&g, &c, OP_RESPONSE, 0, NULL, 0); /* RESPONSE to nothing */
	rx_expect(&g, &p, OP_RST, &c);
	expect_eof(fd);
	close(fd);
	fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);
	tx(&g, &c, OP_REQUEST, 0, NULL, 0); /* a second REQUEST */
	rx_expect(&g, &p, OP_RST, &c);
	close(fd);
	fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);
	h = base;
	h.src_port = 1025;
	h.dst_port = 5000;
	h.op = OP_RW;
	h.len = 1000;
	tx_raw(&g, &h, 44, "short", 5);
	rx_expect(&g, &p, OP_RST, &c);
	close(fd);
	bad += 3;

	/* data beyond the credit the device gave: the host does not read */
	fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);
	static uint8_t big[64 * 1024];
	bool reset = false;
	for (int i = 0; i < 64 && !reset; i++) {
		tx(&g, &c, OP_RW, 0, big, sizeof(big));
		while (rx_get(&g, &p, 0)) {
			cr_assert(p.op == OP_CREDIT_UPDATE || p.op == OP_RST, "op %u", p.op);
			reset |= p.op == OP_RST;
		}
	}
	cr_assert(reset, "a guest ignoring its credit is reset");
	close(fd);
	bad += 1;
	cr_assert_eq(metrics(&g).bad_packets, bad);

	/* through all this the device stayed up */
	cr_assert_not(broken(&g));
	fd = guest_connect(&g, lfd, &c, 1026, 5000, 65536);
	guest_to_host(&g, &c, fd, "still here", 10);
	close(fd);
	host_unlisten(&g, lfd, 5000);
	rig_down(&g);
}

/* an rx buffer that cannot hold a header breaks the device, not kiln */
Test(vsock_flow, rx_buffer_smaller_than_a_header)
{
	struct rig g;
	rig_up_cid(&g, GUEST_CID, false);
	put_desc(&g, RXQ, 0, RX_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(&g, RXQ, 0, true);
	int fd = unix_connect(g.uds);
	write_all_fd(fd, "CONNECT 5\n", 10);
	/* broken first, then the status bit (virtio_dev_fail logs in between) */
	for (int i = 0;
	     i < 3000 && !(reg_read(&g, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	     i++)
		usleep(1000);
	cr_assert(reg_read(&g, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	cr_assert(broken(&g));
	close(fd);
	rig_down(&g);
}
