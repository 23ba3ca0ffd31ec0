// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_mmds_tcp_recovery.c: the MMDS stack's recovery from loss
 * and misuse (asked for by a review of the guest-facing code): an ACK for
 * bytes sent before a timeout's go-back, duplicate ACKs going back at most
 * once a period, a RST at the window's edge, a device reset, a window the
 * guest keeps closed (probed; reset after 15 unanswered probes).
 */
#include "mmds_tcp_rig.h"

TestSuite(mmds_tcp, .init = setup, .fini = teardown);

/* a response of `n` bytes of 'x' at /latest/big */
static void put_big(size_t n)
{
	char *big = malloc(n + 1);
	cr_assert(big);
	memset(big, 'x', n);
	big[n] = '\0';
	json_t *j = json_pack("{s:{s:s}}", "latest", "big", big);
	cr_assert_eq(mmds_put(&store, j, NULL), 0);
	json_decref(j);
	free(big);
}

/* GET /latest/big on `port`; the bytes of the first flight (the guest's window is 2000) */
static uint32_t first_flight(uint16_t port, uint32_t snd, uint32_t *rcv)
{
	const char *req = "GET /latest/big HTTP/1.1\r\n\r\n";
	struct oseg o;
	uint32_t sent = 0;

	send_seg(&(struct gseg){.sport = port,
	                        .seq = *rcv,
	                        .ack = snd,
	                        .win = 2000,
	                        .flags = MMDS_TCP_ACK,
	                        .data = req});
	*rcv += (uint32_t)strlen(req);
	while (recv_seg(&o)) {
		cr_assert_eq(o.seq, snd + sent);
		sent += (uint32_t)o.len;
	}
	cr_assert_eq(sent, 2000);
	return sent;
}

/* the guest acknowledges up to `ack` and closes its window */
static void ack_closed(uint16_t port, uint32_t rcv, uint32_t ack)
{
	send_seg(&(struct gseg){
	        .sport = port, .seq = rcv, .ack = ack, .closed = true, .flags = MMDS_TCP_ACK});
}

/* a 6000-byte GET on `port` whose first flight the guest takes, closing its window */
static uint32_t window_closed_after(uint16_t port, uint32_t *rcv)
{
	put_big(6000);
	*rcv = 1001;
	uint32_t snd = handshake(port, 536, 2000);
	uint32_t edge = snd + first_flight(port, snd, rcv);
	ack_closed(port, *rcv, edge);
	expect_nothing();
	return edge;
}

Test(mmds_tcp, an_ack_for_bytes_sent_before_a_timeout_is_taken)
{
	put_big(6000);
	uint32_t rcv = 1001, snd = handshake(40010, 536, 2000);
	uint32_t sent = first_flight(40010, snd, &rcv);
	struct oseg o;

	/* no ACK: after the timeout the first segment comes again (only it is taken out) */
	now += MMDS_NS_RTO_NS;
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.seq, snd);
	/* now the late ACK of the whole first flight: taken, and the next bytes follow it */
	uint64_t unusual = metrics().rx_accepted_unusual;
	send_seg(&(struct gseg){
	        .sport = 40010, .seq = rcv, .ack = snd + sent, .win = 2000, .flags = MMDS_TCP_ACK});
	cr_assert_eq(metrics().rx_accepted_unusual, unusual, "the ACK was refused");
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.seq, snd + sent, "sent again what the ACK covered");
}

Test(mmds_tcp, duplicate_acks_go_back_once_a_period)
{
	put_big(6000);
	uint32_t rcv = 1001, snd = handshake(40011, 536, 2000);
	first_flight(40011, snd, &rcv);
	struct oseg o;
	unsigned back = 0;

	for (int i = 0; i < 20; i++) {
		send_seg(&(struct gseg){.sport = 40011,
		                        .seq = rcv,
		                        .ack = snd,
		                        .win = 2000,
		                        .flags = MMDS_TCP_ACK});
		while (recv_seg(&o))
			back += o.seq == snd && o.len > 0;
	}
	cr_assert_eq(back, 1, "%u go-backs for 20 duplicate ACKs at one instant", back);
	now += MMDS_NS_RTO_NS;
	send_seg(&(struct gseg){
	        .sport = 40011, .seq = rcv, .ack = snd, .win = 2000, .flags = MMDS_TCP_ACK});
	back = 0;
	while (recv_seg(&o))
		back += o.seq == snd && o.len > 0;
	cr_assert_eq(back, 1, "a period later the segment comes again");
}

Test(mmds_tcp, a_rst_at_the_window_edge_is_not_in_it)
{
	uint32_t snd = handshake(40012, 1460, 0);
	struct oseg o;

	send_seg(&(struct gseg){
	        .sport = 40012, .seq = 1001 + MMDS_HTTP_MAX_REQUEST, .flags = MMDS_TCP_RST});
	cr_assert_eq(metrics().connections_destroyed, 0, "the right edge is outside the window");
	send_seg(&(struct gseg){
	        .sport = 40012, .seq = 1001 + MMDS_HTTP_MAX_REQUEST - 1, .flags = MMDS_TCP_RST});
	cr_assert_eq(metrics().connections_destroyed, 1);
	send_seg(&(struct gseg){.sport = 40012, .seq = 1001, .ack = snd, .flags = MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_RST);
}

Test(mmds_tcp, a_device_reset_drops_every_session)
{
	uint32_t snd = handshake(40013, 1460, 0);
	struct oseg o;

	/* a SYN waiting for its SYN-ACK, and an ARP request, both pending */
	send_seg(&(struct gseg){.sport = 40014, .seq = 5, .flags = MMDS_TCP_SYN});
	mmds_ns_reset(ns);
	expect_nothing();
	/* the old connection is unknown now: its next segment gets a RST */
	send_seg(&(struct gseg){.sport = 40013, .seq = 1001, .ack = snd, .flags = MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags & MMDS_TCP_RST, MMDS_TCP_RST);
	expect_nothing();
}

Test(mmds_tcp, a_closed_window_is_probed_once_a_period)
{
	/* all acknowledged, and the window closed: nothing goes out, the persist timer runs */
	uint32_t rcv, edge = window_closed_after(40015, &rcv);
	struct oseg o;

	cr_assert_eq(mmds_ns_deadline(ns), now + MMDS_NS_RTO_NS);
	now += MMDS_NS_RTO_NS - 1;
	expect_nothing();
	now += 1;
	for (int round = 0; round < 3; round++) {
		/* one byte, the next one, past the closed window */
		cr_assert(recv_seg(&o), "round %d: no probe", round);
		cr_assert_eq(o.len, 1);
		cr_assert_eq(o.seq, edge);
		expect_nothing();
		/* the guest still has no room: it ACKs without taking the byte */
		ack_closed(40015, rcv, edge);
		expect_nothing();
		now += MMDS_NS_RTO_NS;
	}
	/* the window opens: the rest follows from the byte the probes carried */
	send_seg(&(struct gseg){
	        .sport = 40015, .seq = rcv, .ack = edge, .win = 2000, .flags = MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.seq, edge);
	cr_assert_eq(o.len, 536);
	cr_assert_eq(metrics().connections_destroyed, 0, "probing is no reason to reset");
}

Test(mmds_tcp, a_probe_byte_the_guest_takes_moves_the_send_side_on)
{
	uint32_t rcv, edge = window_closed_after(40016, &rcv);
	struct oseg o;

	now += MMDS_NS_RTO_NS;
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.len, 1);
	/* taken, and room for 100 more: the next segment starts after the probe's byte */
	send_seg(&(struct gseg){
	        .sport = 40016, .seq = rcv, .ack = edge + 1, .win = 100, .flags = MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.seq, edge + 1);
	cr_assert_eq(o.len, 100);
	expect_nothing();
}

Test(mmds_tcp, unanswered_probes_reset_as_retransmissions_do)
{
	uint32_t rcv, edge = window_closed_after(40017, &rcv);
	struct oseg o;
	int probes = 0;

	for (int i = 0; i < 100 && metrics().connections_destroyed == 0; i++) {
		now += MMDS_NS_RTO_NS;
		while (recv_seg(&o))
			probes += o.len == 1 && o.seq == edge;
	}
	cr_assert_eq(metrics().connections_destroyed, 1, "a silent guest is probed forever");
	cr_assert_eq(o.flags & MMDS_TCP_RST, MMDS_TCP_RST, "the last segment is the RST");
	cr_assert_geq(probes, MMDS_NS_RTO_MAX - 1, "%d probes", probes);
	cr_assert_leq(probes, MMDS_NS_RTO_MAX, "%d probes", probes);
}
