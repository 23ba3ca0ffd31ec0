// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_mmds_tcp.c: mmds/ns.c and mmds/tcp.c, the MMDS's network
 * stack, driven as a guest would: Ethernet frames in (ARP, TCP over IPv4,
 * good and malformed), frames out read back and checked (checksums, flags,
 * sequence numbers, MSS, windows): the handshake, a request and its
 * response in MSS-sized segments inside the guest's window, FIN, RST,
 * retransmission, the connection table's bound and eviction.
 */
#include "mmds_tcp_rig.h"

TestSuite(mmds_tcp, .init = setup, .fini = teardown);

Test(mmds_tcp, get_then_fin)
{
	char resp[4096];
	uint32_t snd = handshake(40000, 1460, 0), rcv = 1001;
	struct oseg o;

	get_response(40000, &snd, &rcv, "GET /latest/meta-data/id HTTP/1.1\r\nAccept: */*\r\n\r\n",
	             resp, sizeof(resp), 1460);
	cr_assert(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17), "%s", resp);
	cr_assert(strstr(resp, "\r\n\r\ni-1"), "%s", resp);
	/* a second request on the same connection */
	get_response(40000, &snd, &rcv, "GET /nothing HTTP/1.1\r\n\r\n", resp, sizeof(resp), 1460);
	cr_assert(!strncmp(resp, "HTTP/1.1 404 ", 13), "%s", resp);

	/* the guest closes: ACK and FIN back, then its ACK ends the connection */
	send_seg(&(struct gseg){
	        .sport = 40000, .seq = rcv, .ack = snd, .flags = MMDS_TCP_FIN | MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_FIN | MMDS_TCP_ACK);
	cr_assert_eq(o.seq, snd);
	cr_assert_eq(o.ack, rcv + 1);
	expect_nothing();
	cr_assert_eq(metrics().connections_destroyed, 0);
	send_seg(&(struct gseg){
	        .sport = 40000, .seq = rcv + 1, .ack = snd + 1, .flags = MMDS_TCP_ACK});
	struct mmds_ns_metrics m = metrics();
	cr_assert_eq(m.connections_created, 1);
	cr_assert_eq(m.connections_destroyed, 1);
	cr_assert_eq(m.rx_accepted_err, 0);
	/* the connection is gone: a late segment gets a RST */
	send_seg(&(struct gseg){
	        .sport = 40000, .seq = rcv + 1, .ack = snd + 1, .flags = MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_RST);
	cr_assert_eq(o.seq, snd + 1);
}

Test(mmds_tcp, response_in_mss_segments_inside_the_window)
{
	char big[6001];
	memset(big, 'x', 6000);
	big[6000] = '\0';
	json_t *j = json_pack("{s:{s:s}}", "latest", "big", big);
	cr_assert_eq(mmds_put(&store, j, NULL), 0);
	json_decref(j);

	uint32_t snd = handshake(40001, 536, 1000), rcv = 1001;
	const char *req = "GET /latest/big HTTP/1.1\r\n\r\n";
	struct oseg o;
	send_seg(&(struct gseg){.sport = 40001,
	                        .seq = rcv,
	                        .ack = snd,
	                        .win = 1000,
	                        .flags = MMDS_TCP_ACK,
	                        .data = req});
	rcv += (uint32_t)strlen(req);
	/* the window of 1000 bytes lets 536 + 464 out, then nothing */
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.len, 536);
	cr_assert_eq(o.seq, snd);
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.len, 464);
	expect_nothing();
	/* the rest as the guest acknowledges with the same window */
	size_t got = 1000;
	snd += 1000;
	for (int i = 0; i < 100; i++) {
		send_seg(&(struct gseg){.sport = 40001,
		                        .seq = rcv,
		                        .ack = snd,
		                        .win = 1000,
		                        .flags = MMDS_TCP_ACK});
		size_t flight = 0;
		while (recv_seg(&o)) {
			cr_assert_leq(o.len, 536);
			cr_assert_eq(o.seq, snd + flight);
			flight += o.len;
		}
		cr_assert_leq(flight, 1000);
		if (!flight)
			break;
		got += flight;
		snd += (uint32_t)flight;
	}
	cr_assert_gt(got, 6000);
}

Test(mmds_tcp, out_of_order_and_overlap)
{
	uint32_t snd = handshake(40002, 1460, 0), rcv = 1001;
	struct oseg o;

	/* a segment after a gap: dropped, ACK says what is expected */
	send_seg(&(struct gseg){.sport = 40002,
	                        .seq = rcv + 10,
	                        .ack = snd,
	                        .flags = MMDS_TCP_ACK,
	                        .data = "late"});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_ACK);
	cr_assert_eq(o.ack, rcv);
	cr_assert_eq(o.len, 0);
	cr_assert_eq(metrics().rx_accepted_unusual, 1);
	/* the first half, then a retransmission overlapping it with the rest */
	send_seg(&(struct gseg){.sport = 40002,
	                        .seq = rcv,
	                        .ack = snd,
	                        .flags = MMDS_TCP_ACK,
	                        .data = "GET /latest/meta"});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.ack, rcv + 16);
	send_seg(&(struct gseg){.sport = 40002,
	                        .seq = rcv + 11,
	                        .ack = snd,
	                        .flags = MMDS_TCP_ACK,
	                        .data = "/meta-data/id HTTP/1.0\r\n\r\n"});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.ack, rcv + 11 + 26);
	cr_assert(o.len > 0 && strstr((char *)o.data, "i-1"), "%.*s", (int)o.len, o.data);
}

Test(mmds_tcp, rst_for_unknown_and_closed_ports)
{
	struct oseg o;

	/* an ACK for no connection: RST with its ACK number as sequence */
	send_seg(&(struct gseg){.sport = 41000, .seq = 5, .ack = 777, .flags = MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_RST);
	cr_assert_eq(o.seq, 777);
	cr_assert_eq(o.dport, 41000);
	/* a SYN to port 81: RST|ACK for the SYN */
	send_seg(&(struct gseg){.sport = 41001, .dport = 81, .seq = 99, .flags = MMDS_TCP_SYN});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_RST | MMDS_TCP_ACK);
	cr_assert_eq(o.ack, 100);
	/* data without ACK to no connection: acknowledged past the data */
	send_seg(&(struct gseg){.sport = 41002, .seq = 10, .flags = MMDS_TCP_PSH, .data = "abc"});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.ack, 13);
	/* never a RST for a RST */
	send_seg(&(struct gseg){.sport = 41003, .seq = 10, .flags = MMDS_TCP_RST});
	expect_nothing();
	/* a flood of them is bounded by the RST queue */
	for (int i = 0; i < 3 * MMDS_NS_MAX_RESETS; i++)
		send_seg(&(struct gseg){.sport = 42000, .seq = 1, .ack = 2, .flags = MMDS_TCP_ACK});
	int n = 0;
	while (recv_seg(&o))
		n++;
	cr_assert_eq(n, MMDS_NS_MAX_RESETS);
}

Test(mmds_tcp, guest_rst_ends_the_connection)
{
	uint32_t snd = handshake(40003, 1460, 0);
	struct oseg o;

	/* out of the window: ignored */
	send_seg(&(struct gseg){.sport = 40003, .seq = 1001 + 60000, .flags = MMDS_TCP_RST});
	cr_assert_eq(metrics().connections_destroyed, 0);
	send_seg(&(struct gseg){.sport = 40003, .seq = 1001, .flags = MMDS_TCP_RST});
	cr_assert_eq(metrics().connections_destroyed, 1);
	send_seg(&(struct gseg){.sport = 40003, .seq = 1001, .ack = snd, .flags = MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_RST);
}

Test(mmds_tcp, bad_frames_are_dropped)
{
	uint8_t f[256], g[256];
	size_t n = guest_frame(
	        f, &(struct gseg){.sport = 40004, .seq = 1, .flags = MMDS_TCP_SYN, .mss = 1460});

	/* every truncation of a good SYN: nothing answered, nothing kept */
	for (size_t k = 0; k < n; k++) {
		memcpy(g, f, k);
		mmds_ns_input(ns, g, k, now);
	}
	expect_nothing();
	struct mmds_ns_metrics m = metrics();
	cr_assert_eq(m.rx_bad_eth, 14);
	cr_assert_eq(m.connections_created, 0);
	cr_assert_eq(m.rx_accepted, n);

	/* each broken alone: its checksums made right again unless a checksum is the case */
	static const struct {
		size_t off;
		uint8_t xor ;
		bool fix_ip, fix_tcp;
	} bad[] = {
	        {14 + 10, 1, false, false},   /* IPv4 checksum */
	        {14 + 0, 1, true, false},     /* IHL 6: options */
	        {14 + 0, 0x10, true, false},  /* version 5 */
	        {14 + 2, 0x80, true, false},  /* total length past the frame */
	        {14 + 16, 1, true, false},    /* not to the MMDS address */
	        {34 + 16, 1, false, false},   /* TCP checksum */
	        {34 + 12, 0x20, false, true}, /* data offset 4: shorter than a header */
	        {34 + 12, 0xc0, false, true}, /* data offset 10: past the segment */
	        {34 + 21, 1, false, true},    /* MSS option of length 5 */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memcpy(g, f, n);
		g[bad[i].off] ^= bad[i].xor ;
		if (bad[i].fix_ip) {
			mmds_put16(g + 24, 0);
			mmds_put16(g + 24, mmds_csum_fold(mmds_csum_add(0, g + 14, 20)));
		}
		if (bad[i].fix_tcp) {
			mmds_put16(g + 50, 0);
			mmds_put16(g + 50,
			           mmds_csum_fold(mmds_csum_add(pseudo(GUEST_IP, MMDS_IP, n - 34),
			                                        g + 34, n - 34)));
		}
		uint64_t before = metrics().rx_accepted_err;
		mmds_ns_input(ns, g, n, now);
		expect_nothing();
		cr_assert_eq(metrics().rx_accepted_err, before + 1, "case %zu", i);
	}
	/* a fragment and a UDP packet (checksum fixed): unusual, dropped */
	memcpy(g, f, n);
	g[14 + 6] = 0x20; /* more fragments */
	mmds_put16(g + 24, 0);
	mmds_put16(g + 24, mmds_csum_fold(mmds_csum_add(0, g + 14, 20)));
	mmds_ns_input(ns, g, n, now);
	memcpy(g, f, n);
	g[14 + 9] = 17;
	mmds_put16(g + 24, 0);
	mmds_put16(g + 24, mmds_csum_fold(mmds_csum_add(0, g + 14, 20)));
	mmds_ns_input(ns, g, n, now);
	expect_nothing();
	cr_assert_eq(metrics().rx_accepted_unusual, 2);
	/* the good one still works */
	mmds_ns_input(ns, f, n, now);
	struct oseg o;
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_SYN | MMDS_TCP_ACK);
}

Test(mmds_tcp, arp_request_answered)
{
	uint8_t f[60] = {0}, out[MMDS_NS_FRAME_MAX];
	mmds_arp_request(f, guest_mac, GUEST_IP, MMDS_IP);
	mmds_ns_input(ns, f, 42, now);
	cr_assert_eq(mmds_ns_output(ns, out, sizeof(out), now), 42);
	cr_assert(!memcmp(out, guest_mac, 6));
	cr_assert_eq(mmds_be16(out + 20), 2);
	cr_assert(!memcmp(out + 22, mmds_default_mac, 6));
	cr_assert_eq(mmds_be32(out + 28), MMDS_IP);
	cr_assert_eq(mmds_be32(out + 38), GUEST_IP);
	expect_nothing();
	/* a reply, not a request: dropped */
	mmds_put16(f + 20, 2);
	mmds_ns_input(ns, f, 42, now);
	expect_nothing();
	cr_assert_eq(metrics().rx_accepted_err, 1);
	/* too small a buffer: nothing written */
	mmds_put16(f + 20, 1);
	mmds_ns_input(ns, f, 42, now);
	cr_assert_eq(mmds_ns_output(ns, out, 100, now), 0);
	cr_assert_eq(mmds_ns_output(ns, out, sizeof(out), now), 42);
}

Test(mmds_tcp, table_bound_and_eviction)
{
	struct oseg o;

	for (uint16_t i = 0; i < MMDS_NS_MAX_CONNECTIONS; i++)
		handshake((uint16_t)(43000 + i), 1460, 0);
	cr_assert_eq(metrics().connections_created, MMDS_NS_MAX_CONNECTIONS);
	/* all fresh: the next SYN is refused */
	send_seg(&(struct gseg){.sport = 44000, .seq = 50, .flags = MMDS_TCP_SYN});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_RST | MMDS_TCP_ACK);
	cr_assert_eq(o.ack, 51);
	cr_assert_eq(metrics().connections_created, MMDS_NS_MAX_CONNECTIONS);
	/* later, all but one silent: a silent one is evicted (and told) */
	now += MMDS_NS_EVICT_NS / 2;
	send_seg(&(struct gseg){.sport = 43000, .seq = 1001, .flags = MMDS_TCP_ACK});
	now += MMDS_NS_EVICT_NS / 2 + 1;
	send_seg(&(struct gseg){.sport = 44001, .seq = 60, .flags = MMDS_TCP_SYN});
	bool rst = false, synack = false;
	while (recv_seg(&o)) {
		if (o.flags == MMDS_TCP_RST) {
			cr_assert_neq(o.dport, 43000, "the live one was evicted");
			rst = true;
		}
		if (o.flags == (MMDS_TCP_SYN | MMDS_TCP_ACK) && o.dport == 44001)
			synack = true;
	}
	cr_assert(rst && synack);
	struct mmds_ns_metrics m = metrics();
	cr_assert_eq(m.connections_created, MMDS_NS_MAX_CONNECTIONS + 1);
	cr_assert_eq(m.connections_destroyed, 1);
}

Test(mmds_tcp, retransmission_then_reset)
{
	uint32_t snd = handshake(40005, 1460, 0), rcv = 1001;
	const char *req = "GET /latest/meta-data/id HTTP/1.1\r\n\r\n";
	struct oseg o, first;

	send_seg(&(struct gseg){
	        .sport = 40005, .seq = rcv, .ack = snd, .flags = MMDS_TCP_ACK, .data = req});
	cr_assert(recv_seg(&first));
	cr_assert_gt(first.len, 0);
	expect_nothing();
	cr_assert_eq(mmds_ns_deadline(ns), now + MMDS_NS_RTO_NS);
	/* no ACK: the same bytes again after each timeout, then a RST */
	for (int i = 1; i < MMDS_NS_RTO_MAX; i++) {
		now += MMDS_NS_RTO_NS;
		cr_assert(recv_seg(&o), "retransmission %d", i);
		cr_assert_eq(o.seq, snd);
		cr_assert_eq(o.len, first.len);
		cr_assert(!memcmp(o.data, first.data, o.len));
	}
	now += MMDS_NS_RTO_NS;
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags & MMDS_TCP_RST, MMDS_TCP_RST);
	cr_assert_eq(metrics().connections_destroyed, 1);
	cr_assert_eq(mmds_ns_deadline(ns), 0);
}

Test(mmds_tcp, request_too_long_resets)
{
	char chunk[1025];
	struct oseg o;
	uint32_t snd = handshake(40006, 1460, 0), rcv = 1001;

	memset(chunk, 'a', 1024);
	chunk[1024] = '\0';
	memcpy(chunk, "GET /", 5);
	for (int i = 0; i < 4; i++) {
		send_seg(&(struct gseg){.sport = 40006,
		                        .seq = rcv,
		                        .ack = snd,
		                        .flags = MMDS_TCP_ACK,
		                        .data = chunk});
		rcv += 1024;
		cr_assert(recv_seg(&o));
		if (i < 3) {
			cr_assert_eq(o.flags, MMDS_TCP_ACK);
			cr_assert_eq(o.win, MMDS_HTTP_MAX_REQUEST - 1024 * (i + 1));
		}
	}
	cr_assert_eq(o.flags, MMDS_TCP_RST | MMDS_TCP_ACK);
	cr_assert_eq(metrics().connections_destroyed, 1);
}

Test(mmds_tcp, bad_request_400_and_close)
{
	char resp[4096];
	uint32_t snd = handshake(40007, 1460, 0), rcv = 1001;
	struct oseg o;

	send_seg(&(struct gseg){.sport = 40007,
	                        .seq = rcv,
	                        .ack = snd,
	                        .flags = MMDS_TCP_ACK,
	                        .data = "HELLO\r\n\r\n"});
	rcv += 9;
	cr_assert(recv_seg(&o));
	memcpy(resp, o.data, o.len);
	resp[o.len] = '\0';
	cr_assert(!strncmp(resp, "HTTP/1.1 400 ", 13), "%s", resp);
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_FIN | MMDS_TCP_ACK);
}

Test(mmds_tcp, v2_token_metrics)
{
	char resp[4096];
	uint32_t snd = handshake(40008, 1460, 0), rcv = 1001;

	mmds_configure(&store, MMDS_V2, false);
	get_response(40008, &snd, &rcv, "GET /latest HTTP/1.1\r\n\r\n", resp, sizeof(resp), 1460);
	cr_assert(!strncmp(resp, "HTTP/1.1 401 ", 13), "%s", resp);
	get_response(40008, &snd, &rcv, "GET /latest HTTP/1.1\r\nX-metadata-token: abc\r\n\r\n",
	             resp, sizeof(resp), 1460);
	cr_assert(!strncmp(resp, "HTTP/1.1 401 ", 13), "%s", resp);
	get_response(40008, &snd, &rcv,
	             "PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n",
	             resp, sizeof(resp), 1460);
	cr_assert(!strncmp(resp, "HTTP/1.1 200 ", 13), "%s", resp);
	char req[256];
	snprintf(req, sizeof(req),
	         "GET /latest/meta-data/id HTTP/1.1\r\nX-metadata-token: %s\r\n\r\n",
	         strstr(resp, "\r\n\r\n") + 4);
	get_response(40008, &snd, &rcv, req, resp, sizeof(resp), 1460);
	cr_assert(strstr(resp, "\r\n\r\ni-1"), "%s", resp);
	struct mmds_ns_metrics m = metrics();
	cr_assert_eq(m.rx_no_token, 1);
	cr_assert_eq(m.rx_invalid_token, 1);
}

Test(mmds_tcp, lost_synack_and_bad_handshake)
{
	struct oseg o;

	send_seg(&(struct gseg){.sport = 40009, .seq = 7, .flags = MMDS_TCP_SYN});
	cr_assert(recv_seg(&o));
	uint32_t iss = o.seq;
	/* the same SYN again: the same SYN-ACK again */
	send_seg(&(struct gseg){.sport = 40009, .seq = 7, .flags = MMDS_TCP_SYN});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.seq, iss);
	cr_assert_eq(o.flags, MMDS_TCP_SYN | MMDS_TCP_ACK);
	/* an ACK for something else: the half-open connection is reset */
	send_seg(&(struct gseg){.sport = 40009, .seq = 8, .ack = iss + 5, .flags = MMDS_TCP_ACK});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_RST | MMDS_TCP_ACK);
	cr_assert_eq(metrics().connections_destroyed, 1);
}
