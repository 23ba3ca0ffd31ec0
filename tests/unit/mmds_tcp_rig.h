// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/mmds_tcp_rig.h: a guest's side of the MMDS's network stack for
 * the unit tests (test_mmds_tcp*.c): frames built as the guest would send
 * them, frames out read back with their checksums checked, the handshake
 * and a request's response. Each test file has its own store and stack.
 */
#ifndef KILN_TEST_MMDS_TCP_RIG_H
#define KILN_TEST_MMDS_TCP_RIG_H

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

static inline void setup(void)
{
	cr_assert_eq(mmds_init(&store, 0), 0);
	json_t *j = json_loads("{\"latest\": {\"meta-data\": {\"id\": \"i-1\"}}}", 0, NULL);
	cr_assert_eq(mmds_put(&store, j, NULL), 0);
	json_decref(j);
	cr_assert_eq(mmds_ns_create(&ns, &store, MMDS_IP), 0);
}

static inline void teardown(void)
{
	mmds_ns_destroy(ns);
	mmds_destroy(&store);
}

static inline uint32_t pseudo(uint32_t src, uint32_t dst, size_t len)
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
	uint16_t win, mss; /* win 0: 65535 ... */
	bool closed;       /* ... unless the window is closed */
	const char *data;
};

static inline size_t guest_frame(uint8_t *f, const struct gseg *g)
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
	mmds_put16(t + 14, g->closed ? 0 : g->win ? g->win : 65535);
	if (g->mss) {
		t[20] = 2;
		t[21] = 4;
		mmds_put16(t + 22, g->mss);
	}
	memcpy(t + thl, g->data ? g->data : "", dl);
	mmds_put16(t + 16, mmds_csum_fold(mmds_csum_add(pseudo(GUEST_IP, MMDS_IP, tl), t, tl)));
	return 14 + 20 + tl;
}

static inline void send_seg(const struct gseg *g)
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
static inline bool recv_seg(struct oseg *o)
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

static inline void expect_nothing(void)
{
	uint8_t f[MMDS_NS_FRAME_MAX];
	cr_assert_eq(mmds_ns_output(ns, f, sizeof(f), now), 0, "a frame out that should not be");
}

static inline struct mmds_ns_metrics metrics(void)
{
	struct mmds_ns_metrics m;
	mmds_ns_metrics(ns, &m);
	return m;
}

/* SYN from port `port` (initial sequence 1000), SYN-ACK checked; the MMDS's first sequence */
static inline uint32_t handshake(uint16_t port, uint16_t mss, uint16_t win)
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
static inline size_t get_response(uint16_t port, uint32_t *snd, uint32_t *rcv, const char *req,
                                  char *out, size_t size, uint16_t mss)
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

#endif
