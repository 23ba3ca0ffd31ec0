// SPDX-License-Identifier: Apache-2.0
/*
 * mmds: talks to kiln's MMDS through the first virtio-net device with raw
 * frames (no IP stack here: every header is built and checked by hand).
 *
 *  1. ARP: who has 169.254.169.254 -> the reply names 06:01:23:45:67:01.
 *  2. TCP to port 80: SYN -> SYN-ACK with an MSS option; a GET of
 *     mmds.path (default /latest/meta-data/id) -> the whole response,
 *     printed as "mmds: GET <path> -> <status line>" and "mmds: body <body>";
 *     FIN -> FIN-ACK; the last ACK.
 *  3. Malformed frames, each answered by nothing (a frame that reaches us
 *     within 200 ms fails the test): a bad TCP checksum, a bad IPv4
 *     checksum, IP options, a total length past the frame, a truncated TCP
 *     header, an ARP reply instead of a request.
 *  4. RSTs: a SYN to port 81, an ACK for no connection.
 * Ends with "mmds: ok", or "mmds: FAILED: <why>".
 */
#include "rt/virtio_drv.h"

#define MMDS_IP  0xa9fea9feu
#define GUEST_IP 0x0a000002u /* 10.0.0.2 */
#define PORT     49152
#define WAIT_MS  3000
#define QUIET_MS 200

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

static const uint8_t mmds_mac[6] = {0x06, 0x01, 0x23, 0x45, 0x67, 0x01};
static struct vnet n;
static uint8_t rx[2048];

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

/* RFC 1071 */
static uint32_t sum(uint32_t s, const uint8_t *p, size_t len)
{
	for (; len > 1; p += 2, len -= 2)
		s += rd16(p);
	if (len)
		s += (uint32_t)p[0] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static int fail(const char *why)
{
	krt_printf("mmds: FAILED: %s\n", why);
	return 1;
}

static int send(const uint8_t *f, size_t len)
{
	int r = vnet_send(&n, f, len);
	if (r == 0)
		vnet_kick_tx(&n);
	return r;
}

/* the next frame from the MMDS's MAC within `ms`; its length, 0 when none came */
static size_t recv_from_mmds(uint64_t ms)
{
	uint64_t hz = krt_tsc_hz(), end = krt_rdtsc() + ms * (hz / 1000);
	size_t len;

	while (krt_rdtsc() < end) {
		vnet_reap_tx(&n);
		int r = vnet_recv(&n, rx, sizeof(rx), &len);
		if (r < 0)
			return 0;
		if (r == 1 && len >= 14 && memcmp(rx + 6, mmds_mac, 6) == 0)
			return len;
	}
	return 0;
}

/* Ethernet + IPv4 (20 bytes) + TCP (20, or 24 with `mss`) + data to MMDS:dport */
static size_t tcp_frame(uint8_t *f, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
                        uint16_t mss, const char *data)
{
	size_t dl = data ? strlen(data) : 0, thl = mss ? 24 : 20, tl = thl + dl;
	uint8_t *ip = f + 14, *t = ip + 20, ph[12] = {0};

	memcpy(f, mmds_mac, 6);
	memcpy(f + 6, n.mac, 6);
	put16(f + 12, 0x0800);
	memset(ip, 0, 20 + thl);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + tl));
	ip[8] = 64;
	ip[9] = 6;
	put32(ip + 12, GUEST_IP);
	put32(ip + 16, MMDS_IP);
	put16(ip + 10, fold(sum(0, ip, 20)));
	put16(t, PORT);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (uint8_t)(thl / 4) << 4;
	t[13] = flags;
	put16(t + 14, 8192);
	if (mss) {
		t[20] = 2;
		t[21] = 4;
		put16(t + 22, mss);
	}
	memcpy(t + thl, data ? data : "", dl);
	put32(ph, GUEST_IP);
	put32(ph + 4, MMDS_IP);
	ph[9] = 6;
	put16(ph + 10, (uint16_t)tl);
	put16(t + 16, fold(sum(sum(0, ph, 12), t, tl)));
	return 34 + tl;
}

struct seg {
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t mss;
	const uint8_t *data;
	size_t len;
};

/* the MMDS's next TCP segment, its checksums checked; 0 or fail()'s 1 */
static int recv_seg(struct seg *s)
{
	size_t len = recv_from_mmds(WAIT_MS);
	const uint8_t *ip = rx + 14, *t = ip + 20;
	uint8_t ph[12] = {0};

	if (len < 54 || rd16(rx + 12) != 0x0800)
		return fail("no TCP segment from the MMDS");
	if (memcmp(rx, n.mac, 6) || ip[0] != 0x45 || rd16(ip + 2) != len - 14 ||
	    fold(sum(0, ip, 20)) || rd32(ip + 12) != MMDS_IP || rd32(ip + 16) != GUEST_IP)
		return fail("a bad IPv4 header from the MMDS");
	size_t tl = len - 34, thl = (size_t)(t[12] >> 4) * 4;
	put32(ph, MMDS_IP);
	put32(ph + 4, GUEST_IP);
	ph[9] = 6;
	put16(ph + 10, (uint16_t)tl);
	if (fold(sum(sum(0, ph, 12), t, tl)) || thl < 20 || thl > tl || rd16(t) != 80)
		return fail("a bad TCP header from the MMDS");
	*s = (struct seg){.seq = rd32(t + 4),
	                  .ack = rd32(t + 8),
	                  .flags = t[13],
	                  .data = t + thl,
	                  .len = tl - thl};
	s->mss = thl == 24 && t[20] == 2 && t[21] == 4 ? rd16(t + 22) : 0;
	return 0;
}

static int arp(void)
{
	uint8_t f[42] = {0};

	memset(f, 0xff, 6);
	memcpy(f + 6, n.mac, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 1);
	memcpy(f + 22, n.mac, 6);
	put32(f + 28, GUEST_IP);
	put32(f + 38, MMDS_IP);
	if (send(f, sizeof(f)) < 0)
		return fail("cannot send");
	size_t len = recv_from_mmds(WAIT_MS);
	if (len < 42 || rd16(rx + 12) != 0x0806 || rd16(rx + 20) != 2 ||
	    memcmp(rx + 22, mmds_mac, 6) || rd32(rx + 28) != MMDS_IP || memcmp(rx + 32, n.mac, 6) ||
	    rd32(rx + 38) != GUEST_IP)
		return fail("no good ARP reply");
	krt_printf("mmds: arp 169.254.169.254 is at 06:01:23:45:67:01\n");
	/* a reply is no question: nothing comes back */
	put16(f + 20, 2);
	send(f, sizeof(f));
	return recv_from_mmds(QUIET_MS) ? fail("an ARP reply was answered") : 0;
}

static int http(void)
{
	static uint8_t f[2048];
	static char resp[8192], req[256];
	size_t plen, got = 0;
	const char *path = krt_param("mmds.path", &plen);
	struct seg s;

	if (!path)
		path = "/latest/meta-data/id", plen = strlen(path);
	if (plen > 200)
		return fail("mmds.path too long");
	send(f, tcp_frame(f, 80, 1000, 0, TCP_SYN, 1460, NULL));
	if (recv_seg(&s))
		return 1;
	if (s.flags != (TCP_SYN | TCP_ACK) || s.ack != 1001 || s.mss != 1460)
		return fail("no good SYN-ACK");
	uint32_t snd = 1001, rcv = s.seq + 1;
	memcpy(req, "GET ", 4);
	memcpy(req + 4, path, plen);
	memcpy(req + 4 + plen, " HTTP/1.1\r\nAccept: */*\r\n\r\n", 28);
	send(f, tcp_frame(f, 80, snd, rcv, TCP_ACK | TCP_PSH, 0, req));
	snd += (uint32_t)strlen(req);
	/* the response, segment by segment, until its Content-Length is there */
	for (;;) {
		if (recv_seg(&s))
			return 1;
		if (s.seq != rcv || s.ack != snd || !s.len || got + s.len >= sizeof(resp))
			return fail("a response segment out of place");
		memcpy(resp + got, s.data, s.len);
		got += s.len;
		rcv += (uint32_t)s.len;
		send(f, tcp_frame(f, 80, snd, rcv, TCP_ACK, 0, NULL));
		resp[got] = '\0';
		const char *body = strstr(resp, "\r\n\r\n"), *cl = strstr(resp, "Content-Length: ");
		uint64_t clen;
		if (body && cl && krt_strtou64(cl + 16, NULL, 10, &clen) == 0 &&
		    (size_t)(body + 4 - resp) + clen == got)
			break;
	}
	char *eol = strstr(resp, "\r\n"), *body = strstr(resp, "\r\n\r\n") + 4;
	*eol = '\0';
	krt_printf("mmds: GET %.*s -> %s\n", (int)plen, path, resp);
	krt_printf("mmds: body %s\n", body);
	/* we close: FIN-ACK back, then our last ACK */
	send(f, tcp_frame(f, 80, snd, rcv, TCP_FIN | TCP_ACK, 0, NULL));
	if (recv_seg(&s))
		return 1;
	if (s.flags != (TCP_FIN | TCP_ACK) || s.seq != rcv || s.ack != snd + 1)
		return fail("no FIN-ACK");
	send(f, tcp_frame(f, 80, snd + 1, rcv + 1, TCP_ACK, 0, NULL));
	return recv_from_mmds(QUIET_MS) ? fail("a segment after the close") : 0;
}

/* each broken alone, then sent: nothing may answer */
static int malformed(void)
{
	static uint8_t f[2048];
	static const struct {
		const char *what;
		size_t off;
		uint8_t xor ;
		int cut; /* bytes cut off the end */
	} bad[] = {
	        {"a bad TCP checksum", 50, 0x01, 0},
	        {"a bad IPv4 checksum", 24, 0x01, 0},
	        {"IHL 6 (options)", 14, 0x01, 0},
	        {"a total length past the frame", 16, 0x04, 0},
	        {"a truncated TCP header", 0, 0, 30},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = tcp_frame(f, 80, 5000 + i, 0, TCP_SYN, 1460, NULL);
		f[bad[i].off] ^= bad[i].xor ;
		if (send(f, len - (size_t)bad[i].cut) < 0)
			return fail("cannot send");
		if (recv_from_mmds(QUIET_MS)) {
			krt_printf("mmds: answered %s\n", bad[i].what);
			return fail("a malformed frame was answered");
		}
	}
	krt_printf("mmds: %u malformed frames dropped\n", (unsigned)(sizeof(bad) / sizeof(bad[0])));
	return 0;
}

static int resets(void)
{
	static uint8_t f[256];
	struct seg s;

	send(f, tcp_frame(f, 81, 77, 0, TCP_SYN, 0, NULL));
	if (recv_seg(&s))
		return 1;
	if (s.flags != (TCP_RST | TCP_ACK) || s.ack != 78)
		return fail("no RST for port 81");
	send(f, tcp_frame(f, 80, 90, 12345, TCP_ACK, 0, NULL));
	if (recv_seg(&s))
		return 1;
	if (s.flags != TCP_RST || s.seq != 12345)
		return fail("no RST for an unknown connection");
	krt_printf("mmds: resets ok\n");
	return 0;
}

int main(void)
{
	int ret = vnet_open(&n, 0, true, 0);
	if (ret < 0) {
		krt_printf("mmds: FAILED: no network device (%d)\n", ret);
		return 1;
	}
	if (arp() || http() || malformed() || resets())
		return 1;
	krt_printf("mmds: ok\n");
	return 0;
}
