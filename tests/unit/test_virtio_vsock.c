// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio/vsock: connections both ways with Firecracker's
 * unix-socket convention, teardown, refusals, parameters and snapshots.
 * The guest is the fake driver of virtio_vsock_rig.h; the host programs
 * are unix sockets of the test itself. Flow control, many connections and
 * hostile packets are in test_virtio_vsock_flow.c.
 */
#include "virtio_vsock_rig.h"

#include <fcntl.h>

Test(vsock, host_initiated_connect_data_and_shutdown)
{
	struct rig g;
	struct gconn c;
	struct pkt p;
	rig_up(&g);
	int fd = host_connect(&g, &c, 1234, 65536);

	/* host -> guest */
	static const char hello[] = "hello from the host";
	host_to_guest(&g, &c, fd, hello, sizeof(hello));

	/* guest -> host */
	static const char back[] = "and hello from the guest";
	guest_to_host(&g, &c, fd, back, sizeof(back));

	/* the host half-closes: the guest hears SHUTDOWN(SEND) and may still send */
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	rx_expect(&g, &p, OP_SHUTDOWN, &c);
	cr_assert_eq(p.flags, SHUT_SEND);
	guest_to_host(&g, &c, fd, "tail", 4);

	/* s5.10.6.6: the guest shuts down both ways, kiln answers RST, the host reads EOF */
	tx(&g, &c, OP_SHUTDOWN, SHUT_RCV | SHUT_SEND, NULL, 0);
	rx_expect(&g, &p, OP_RST, &c);
	expect_eof(fd);
	close(fd);

	struct virtio_vsock_metrics m = metrics(&g);
	cr_assert_eq(m.conns_opened, 1);
	cr_assert_eq(m.conns_reset, 0);
	cr_assert_eq(m.bad_packets, 0);
	cr_assert_eq(m.rx_bytes, sizeof(hello));
	cr_assert_eq(m.tx_bytes, sizeof(back) + 4);
	cr_assert_geq(m.rx_packets, 4);
	cr_assert_not(broken(&g));
	rig_down(&g);
}

Test(vsock, guest_initiated_connect_data_and_host_close)
{
	struct rig g;
	struct gconn c;
	struct pkt p;
	rig_up(&g);
	int lfd = host_listen(&g, 5000);
	int fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);

	static const char req[] = "GET / HTTP/1.0\r\n\r\n";
	guest_to_host(&g, &c, fd, req, sizeof(req) - 1);
	static const char ans[] = "HTTP/1.0 200 OK\r\n\r\nbody";
	host_to_guest(&g, &c, fd, ans, sizeof(ans) - 1);

	/* the host closes: SHUTDOWN with both flags (maybe SEND first), the
	 * guest answers RST and the connection is gone */
	close(fd);
	rx_expect(&g, &p, OP_SHUTDOWN, &c);
	if (p.flags == SHUT_SEND)
		rx_expect(&g, &p, OP_SHUTDOWN, &c);
	cr_assert_eq(p.flags, SHUT_RCV | SHUT_SEND);
	tx(&g, &c, OP_RST, 0, NULL, 0);
	rx_none(&g, 50);
	/* the same ports can connect again */
	fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);
	close(fd);
	rx_expect(&g, &p, OP_SHUTDOWN, &c);
	host_unlisten(&g, lfd, 5000);

	struct virtio_vsock_metrics m = metrics(&g);
	cr_assert_eq(m.conns_opened, 2);
	cr_assert_eq(m.conns_reset, 0);
	rig_down(&g);
}

Test(vsock, guest_shutdown_send_is_a_half_close)
{
	struct rig g;
	struct gconn c;
	struct pkt p;
	rig_up(&g);
	int lfd = host_listen(&g, 7);
	int fd = guest_connect(&g, lfd, &c, 40000, 7, 65536);
	tx(&g, &c, OP_RW, 0, "abc", 3);
	tx(&g, &c, OP_SHUTDOWN, SHUT_SEND, NULL, 0);
	char buf[8];
	read_exact(fd, buf, 3);
	expect_eof(fd);                      /* the host reads the guest's EOF ... */
	host_to_guest(&g, &c, fd, "xyz", 3); /* ... and can still answer */
	close(fd);
	rx_expect(&g, &p, OP_SHUTDOWN, &c);
	host_unlisten(&g, lfd, 7);
	rig_down(&g);
}

Test(vsock, rst_when_nothing_listens)
{
	struct rig g;
	struct gconn c = {.port = 1026, .host_port = 5001, .buf_alloc = 65536};
	struct pkt p;
	rig_up(&g);
	/* s5.10.6.6: no listener at <uds>_5001 */
	tx(&g, &c, OP_REQUEST, 0, NULL, 0);
	rx_expect(&g, &p, OP_RST, &c);
	cr_assert_eq(p.src_cid, 2);
	/* packets of a connection that does not exist get RST, an RST nothing */
	tx(&g, &c, OP_RW, 0, "x", 1);
	rx_expect(&g, &p, OP_RST, &c);
	tx(&g, &c, OP_CREDIT_REQUEST, 0, NULL, 0);
	rx_expect(&g, &p, OP_RST, &c);
	tx(&g, &c, OP_RST, 0, NULL, 0);
	rx_none(&g, 50);
	struct virtio_vsock_metrics m = metrics(&g);
	cr_assert_eq(m.conns_opened, 0);
	cr_assert_eq(m.conns_reset, 1);
	cr_assert_eq(m.bad_packets, 0);
	cr_assert_not(broken(&g));
	rig_down(&g);
}

Test(vsock, guest_refuses_a_host_connection)
{
	struct rig g;
	struct pkt p;
	rig_up(&g);
	int fd = unix_connect(g.uds);
	cr_assert_geq(fd, 0);
	write_all_fd(fd, "CONNECT 99\n", 11);
	rx_expect(&g, &p, OP_REQUEST, NULL);
	struct gconn c = {.port = 99, .host_port = p.src_port};
	tx(&g, &c, OP_RST, 0, NULL, 0); /* no listener in the guest */
	expect_eof(fd);
	close(fd);
	cr_assert_eq(metrics(&g).conns_reset, 1);

	/* data sent right after the CONNECT line is not lost */
	fd = unix_connect(g.uds);
	write_all_fd(fd, "CONNECT 100\nearly", 17);
	rx_expect(&g, &p, OP_REQUEST, NULL);
	c = (struct gconn){.port = 100, .host_port = p.src_port, .buf_alloc = 4096};
	tx(&g, &c, OP_RESPONSE, 0, NULL, 0);
	char line[32];
	read_line(fd, line, sizeof(line));
	cr_assert_eq(strncmp(line, "OK ", 3), 0);
	rx_expect(&g, &p, OP_RW, &c);
	cr_assert(p.dlen == 5 && !memcmp(p.data, "early", 5));
	close(fd);
	rig_down(&g);
}

Test(vsock, bad_connect_lines_are_closed)
{
	struct rig g;
	rig_up(&g);
	static const char *const bad[] = {
	        "CONNECT\n",
	        "CONNECT x\n",
	        "CONNECT 4294967296\n",
	        "connect 5\n",
	        "CONNECT 5 6\n",
	        "CONNECT 00000000000000000001\n",
	        "CONNECT 123456789012345678901234567890\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int fd = unix_connect(g.uds);
		cr_assert_geq(fd, 0);
		write_all_fd(fd, bad[i], strlen(bad[i]));
		expect_closed(fd);
		close(fd);
	}
	/* a host that connects and goes away says nothing to the guest */
	int fd = unix_connect(g.uds);
	close(fd);
	rx_none(&g, 100);
	cr_assert_eq(metrics(&g).conns_opened, 0);
	rig_down(&g);
}

Test(vsock, create_checks_its_parameters)
{
	struct virtio_vsock *v = (void *)1;
	struct errbuf e = {{0}};
	char dir[] = "/tmp/kiln-vsock-XXXXXX", path[256];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v.sock", dir);

	/* a reserved CID is taken, as Firecracker takes it (firecracker-containerd sends 0) */
	struct virtio_vsock_params p = {.guest_cid = 0, .uds_path = path};
	cr_assert_eq(virtio_vsock_create(&v, &p, &e), 0, "%s", e.msg);
	virtio_vsock_destroy(v);
	v = (void *)1;
	p.guest_cid = 3;
	p.uds_path = NULL;
	cr_assert_eq(virtio_vsock_create(&v, &p, &e), -EINVAL);
	cr_assert(strstr(e.msg, "uds_path"), "%s", e.msg);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	p.uds_path = longp;
	cr_assert_eq(virtio_vsock_create(&v, &p, &e), -ENAMETOOLONG);
	p.uds_path = path;
	p.id = "";
	cr_assert_eq(virtio_vsock_create(&v, &p, &e), -EINVAL);
	p.id = NULL;

	/* a file that is not a socket is left alone */
	int f = open(path, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(f, 0);
	close(f);
	cr_assert_eq(virtio_vsock_create(&v, &p, &e), -EEXIST, "%s", e.msg);
	unlink(path);

	/* a live socket is an error, a stale one is replaced */
	struct virtio_vsock *v1 = NULL, *v2 = NULL;
	cr_assert_eq(virtio_vsock_create(&v1, &p, &e), 0, "%s", e.msg);
	cr_assert_str_eq(virtio_vsock_dev(v1)->id, "vsock");
	cr_assert_eq(virtio_vsock_guest_cid(v1), 3);
	cr_assert_str_eq(virtio_vsock_uds_path(v1), path);
	cr_assert_eq(virtio_vsock_create(&v2, &p, &e), -EADDRINUSE, "%s", e.msg);
	virtio_vsock_destroy(v1);
	struct stat st;
	cr_assert_eq(stat(path, &st), -1, "destroy removes uds_path");

	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	close(s); /* bound, never listening: stale */
	cr_assert_eq(virtio_vsock_create(&v2, &p, &e), 0, "%s", e.msg);
	int fd = unix_connect(path);
	cr_assert_geq(fd, 0, "kiln listens on the replaced socket");
	close(fd);
	virtio_vsock_destroy(v2);
	virtio_vsock_destroy(NULL);
	rmdir(dir);
}

Test(vsock, snapshot_resets_connections_with_an_event)
{
	struct rig g;
	struct gconn c;
	struct pkt p;
	struct errbuf e = {{0}};
	rig_up(&g);
	int lfd = host_listen(&g, 5000);
	int fd = guest_connect(&g, lfd, &c, 1025, 5000, 65536);

	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(g.m, &w), 0);
	virtio_mmio_resume(g.m);
	uint16_t ev_used = used_idx(&g, EVQ);
	cr_assert_eq(ev_used, 0, "no event before the restore");

	/* a new process: a new device over the same guest memory */
	virtio_mmio_destroy(g.m);
	virtio_vsock_destroy(g.vs);
	expect_eof(fd); /* the old connection's host end is closed */
	close(fd);
	struct virtio_vsock_params vp = {.id = "vsock", .guest_cid = GUEST_CID, .uds_path = g.uds};
	cr_assert_eq(virtio_vsock_create(&g.vs, &vp, &e), 0, "%s", e.msg);
	struct virtio_mmio_params mp = {.base = MMIO_BASE, .gsi = 5, .gm = &g.gm};
	cr_assert_eq(virtio_mmio_create(&g.m, virtio_vsock_dev(g.vs), &mp, &e), 0, "%s", e.msg);
	struct state_reader r;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(g.m, &r, &e), 0, "%s", e.msg);
	sw_free(&w);

	/* s5.10.6.7: VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue */
	cr_assert(wait_used(&g, EVQ, 1, 3000), "the reset event is posted");
	uint32_t id, len, ev = 0xffffffff;
	used_elem(&g, EVQ, 0, &id, &len);
	cr_assert(id == 0 && len == 4);
	cr_assert_eq(gm_read(&g.gm, EV_GPA, &ev, 4), 0);
	cr_assert_eq(ev, 0);

	/* the old connection is unknown now; a new one works */
	tx(&g, &c, OP_RW, 0, "stale", 5);
	rx_expect(&g, &p, OP_RST, &c);
	fd = guest_connect(&g, lfd, &c, 1026, 5000, 65536);
	guest_to_host(&g, &c, fd, "fresh", 5);
	close(fd);
	host_unlisten(&g, lfd, 5000);
	rig_down(&g);
}

Test(vsock, driver_reset_ends_every_connection)
{
	struct rig g;
	struct gconn c1, c2;
	rig_up(&g);
	int lfd = host_listen(&g, 5000);
	int fd1 = guest_connect(&g, lfd, &c1, 1025, 5000, 65536);
	int fd2 = host_connect(&g, &c2, 80, 65536);
	/* s2.4: the driver resets the device */
	reg_write(&g, VIRTIO_MMIO_STATUS, 0);
	expect_eof(fd1);
	expect_eof(fd2);
	close(fd1);
	close(fd2);
	/* and starts it again */
	memset(g.avail, 0, sizeof(g.avail));
	memset(g.used_seen, 0, sizeof(g.used_seen));
	g.tx_sent = 0;
	driver_init(&g, true);
	fd1 = guest_connect(&g, lfd, &c1, 1025, 5000, 65536);
	close(fd1);
	host_unlisten(&g, lfd, 5000);
	rig_down(&g);
}

/* a device section longer than the device wrote is refused, not half read */
Test(vsock, restore_refuses_trailing_bytes)
{
	struct rig g;
	rig_up(&g);
	vfd_expect_padding_refused(&g.m, &g.gm, "virtio-vsock.vsock", 3);
	rig_down(&g);
}
