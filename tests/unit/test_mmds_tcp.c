// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_mmds_tcp.c: mmds/ns.c and mmds/tcp.c, the MMDS's network
 * stack, driven as a guest would: Ethernet frames in (ARP, TCP over IPv4,
 * good and malformed), frames out read back and checked (checksums, flags,
 * sequence numbers, MSS, windows): the handshake, a request and its
 * response in MSS-sized segments inside the guest's window, FIN, RST,
 * retransmission, the connection table's bound and eviction.
 */
#include "mmds_frames.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define GUEST_IP 0x0a000002u /* 10.0.0.2 */
#define MMDS_IP  MMDS_DEFAULT_IPV4
#define SEC      1000000000ULL

static const uint8_t guest_mac[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x02};
static struct mmds store;
static struct mmds_ns *ns;
static uint64_t now = SEC;

static void setup(void)
{
	cr_assert_eq(mmds_init(&store, 0), 0);
	json_t *j = json_loads("{\"latest\": {\"meta-data\": {\"id\": \"i-1\"}}}", 0, NULL);
	cr_assert_eq(mmds_put(&store, j, NULL), 0);
	json_decref(j);
	cr_assert_eq(mmds_ns_create(&ns, &store, MMDS_IP), 0);
}

static void teardown(void)
{
	mmds_ns_destroy(ns);
	mmds_destroy(&store);
}

TestSuite(mmds_tcp, .init = setup, .fini = teardown);

static uint32_t pseudo(uint32_t src, uint32_t dst, size_t len)
{
	uint8_t ph[12] = {0};
	mmds_put32(ph, src);
	mmds_put32(ph + 4, dst);
	ph[9] = 6;
	mmds_put16(ph + 10, (uint16_t)len);
	return mmds_csum_add(0, ph, 12);
}

/* a guest segment to the MMDS: the whole frame into f, its length */
struct gseg {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win, mss;
	const char *data;
};

static size_t guest_frame(uint8_t *f, const struct gseg *g)
{
	size_t dl = g->data ? strlen(g->data) : 0, thl = g->mss ? 24 : 20, tl = thl + dl;
	uint8_t *ip = f + 14, *t = ip + 20;

	memcpy(f, mmds_default_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	mmds_put16(f + 12, 0x0800);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	mmds_put16(ip + 2, (uint16_t)(20 + tl));
	ip[8] = 64;
	ip[9] = 6;
	mmds_put32(ip + 12, GUEST_IP);
	mmds_put32(ip + 16, MMDS_IP);
	mmds_put16(ip + 10, mmds_csum_fold(mmds_csum_add(0, ip, 20)));
	memset(t, 0, thl);
	mmds_put16(t, g->sport);
	mmds_put16(t + 2, g->dport ? g->dport : 80);
	mmds_put32(t + 4, g->seq);
	mmds_put32(t + 8, g->ack);
	t[12] = (uint8_t)(thl / 4) << 4;
	t[13] = g->flags;
	mmds_put16(t + 14, g->win ? g->win : 65535);
	if (g->mss) {
		t[20] = 2;
		t[21] = 4;
		mmds_put16(t + 22, g->mss);
	}
	memcpy(t + thl, g->data ? g->data : "", dl);
	mmds_put16(t + 16, mmds_csum_fold(mmds_csum_add(pseudo(GUEST_IP, MMDS_IP, tl), t, tl)));
	return 14 + 20 + tl;
}

static void send_seg(const struct gseg *g)
{
	uint8_t f[8192];
	size_t n = guest_frame(f, g);
	cr_assert(mmds_frame_is_mmds(f, n, MMDS_IP));
	mmds_ns_input(ns, f, n, now);
}

/* a segment the stack sent, its checksums checked */
struct oseg {
	uint16_t dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win, mss;
	size_t len;
	uint8_t data[2048];
};

/* the next frame out, a TCP segment; false: nothing */
static bool recv_seg(struct oseg *o)
{
	uint8_t f[MMDS_NS_FRAME_MAX];
	size_t n = mmds_ns_output(ns, f, sizeof(f), now);

	if (!n)
		return false;
	cr_assert_geq(n, 54);
	cr_assert(!memcmp(f, guest_mac, 6));
	cr_assert(!memcmp(f + 6, mmds_default_mac, 6));
	cr_assert_eq(mmds_be16(f + 12), 0x0800);
	const uint8_t *ip = f + 14, *t = ip + 20;
	cr_assert_eq(ip[0], 0x45);
	cr_assert_eq(mmds_be16(ip + 2), n - 14);
	cr_assert_eq(mmds_csum_fold(mmds_csum_add(0, ip, 20)), 0, "IPv4 checksum");
	cr_assert_eq(mmds_be32(ip + 12), MMDS_IP);
	cr_assert_eq(mmds_be32(ip + 16), GUEST_IP);
	size_t tl = n - 34, thl = (size_t)(t[12] >> 4) * 4;
	cr_assert_eq(mmds_csum_fold(mmds_csum_add(pseudo(MMDS_IP, GUEST_IP, tl), t, tl)), 0,
	             "TCP checksum");
	cr_assert_eq(mmds_be16(t), 80);
	memset(o, 0, sizeof(*o));
	o->dport = mmds_be16(t + 2);
	o->seq = mmds_be32(t + 4);
	o->ack = mmds_be32(t + 8);
	o->flags = t[13];
	o->win = mmds_be16(t + 14);
	if (thl == 24 && t[20] == 2 && t[21] == 4)
		o->mss = mmds_be16(t + 22);
	o->len = tl - thl;
	cr_assert_leq(o->len, sizeof(o->data));
	memcpy(o->data, t + thl, o->len);
	return true;
}

static void expect_nothing(void)
{
	uint8_t f[MMDS_NS_FRAME_MAX];
	cr_assert_eq(mmds_ns_output(ns, f, sizeof(f), now), 0, "a frame out that should not be");
}

static struct mmds_ns_metrics metrics(void)
{
	struct mmds_ns_metrics m;
	mmds_ns_metrics(ns, &m);
	return m;
}

/* SYN from port `port` (initial sequence 1000), SYN-ACK checked; the MMDS's first sequence */
static uint32_t handshake(uint16_t port, uint16_t mss, uint16_t win)
{
	struct oseg o;

	send_seg(&(struct gseg){
	        .sport = port, .seq = 1000, .flags = MMDS_TCP_SYN, .mss = mss, .win = win});
	cr_assert(recv_seg(&o));
	cr_assert_eq(o.flags, MMDS_TCP_SYN | MMDS_TCP_ACK);
	cr_assert_eq(o.ack, 1001);
	cr_assert_eq(o.dport, port);
	cr_assert_eq(o.mss, mss ? (mss > MMDS_NS_MSS_MAX ? MMDS_NS_MSS_MAX : mss) : 536);
	cr_assert_eq(o.win, MMDS_HTTP_MAX_REQUEST);
	send_seg(&(struct gseg){
	        .sport = port, .seq = 1001, .ack = o.seq + 1, .flags = MMDS_TCP_ACK, .win = win});
	return o.seq + 1;
}

/* the response to `req` on an established connection, acked segment by segment */
static size_t get_response(uint16_t port, uint32_t *snd, uint32_t *rcv, const char *req, char *out,
                           size_t size, uint16_t mss)
{
	struct oseg o;
	size_t got = 0;

	send_seg(&(struct gseg){.sport = port,
	                        .seq = *rcv,
	                        .ack = *snd,
	                        .flags = MMDS_TCP_ACK | MMDS_TCP_PSH,
	                        .data = req});
	*rcv += (uint32_t)strlen(req);
	while (recv_seg(&o)) {
		cr_assert_eq(o.ack, *rcv, "the request is acknowledged");
		if (!o.len)
			continue;
		cr_assert_eq(o.seq, *snd);
		cr_assert_leq(o.len, mss);
		cr_assert_lt(got + o.len, size);
		memcpy(out + got, o.data, o.len);
		got += o.len;
		*snd += (uint32_t)o.len;
		send_seg(&(struct gseg){
		        .sport = port, .seq = *rcv, .ack = *snd, .flags = MMDS_TCP_ACK});
	}
	out[got] = '\0';
	return got;
}

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

/* ------------------------------------------- behaviours a review asked for */

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
