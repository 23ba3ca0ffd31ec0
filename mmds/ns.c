// SPDX-License-Identifier: Apache-2.0
/*
 * mmds/ns.c: the MMDS's network stack on one interface (Firecracker's
 * mmds/ns.rs and dumbo/tcp/handler.rs): frames in from the guest (ARP,
 * IPv4, TCP: every header checked against the frame's length and its
 * checksum, IP options and fragments dropped), the connection table
 * (MMDS_NS_MAX_CONNECTIONS, a full table evicts a silent connection or
 * refuses with a RST), RSTs for segments no connection takes, and frames
 * out to the guest with their checksums (RFC 791, RFC 9293, RFC 826).
 *
 * The connections themselves are tcp.c's.
 */
#define LOG_MODULE "mmds"
#include "mmds/mmds_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ETH_HDR        14
#define IP_HDR         20
#define TCP_HDR        20
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define ARP_FRAME      42
#define IPPROTO_TCP_   6

struct ns_rst {
	uint32_t addr;
	uint16_t port;
	uint8_t mac[6];
	struct mmds_seg seg;
};

struct mmds_ns {
	struct mmds *store;
	uint32_t ip;
	uint32_t rng;       /* xorshift32 state for initial sequence numbers */
	uint32_t fixed_iss; /* tests and fuzzing: every connection's ISN; 0: random */
	uint16_t ip_id;     /* IPv4 identification of the next packet */
	unsigned next;      /* the connection whose turn it is to send */
	bool arp_pending;
	uint8_t arp[ARP_FRAME];
	unsigned nr_rst;
	struct ns_rst rst[MMDS_NS_MAX_RESETS];
	struct mmds_ns_metrics m;
	struct mmds_conn conn[MMDS_NS_MAX_CONNECTIONS];
};

static void bump(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

uint32_t mmds_csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (; n >= 2; p += 2, n -= 2) {
		sum += mmds_be16(p);
		sum = (sum & 0xffff) + (sum >> 16);
	}
	if (n)
		sum += (uint32_t)p[0] << 8;
	return (sum & 0xffff) + (sum >> 16);
}

uint16_t mmds_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* the TCP pseudo-header (RFC 9293 s3.1) of a segment of `len` bytes */
static uint32_t pseudo_sum(uint32_t src, uint32_t dst, size_t len)
{
	uint8_t ph[12];

	mmds_put32(ph, src);
	mmds_put32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = IPPROTO_TCP_;
	mmds_put16(ph + 10, (uint16_t)len);
	return mmds_csum_add(0, ph, sizeof(ph));
}

int mmds_ns_create(struct mmds_ns **out, struct mmds *store, uint32_t ip)
{
	struct mmds_ns *ns = calloc(1, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	ns->store = store;
	ns->ip = ip;
	if (getrandom(&ns->rng, sizeof(ns->rng), GRND_NONBLOCK) != sizeof(ns->rng))
		ns->rng = (uint32_t)(uintptr_t)ns;
	ns->rng |= 1; /* xorshift never leaves 0 */
	*out = ns;
	return 0;
}

void mmds_ns_destroy(struct mmds_ns *ns)
{
	if (!ns)
		return;
	for (unsigned i = 0; i < MMDS_NS_MAX_CONNECTIONS; i++)
		if (ns->conn[i].used)
			mmds_conn_close(&ns->conn[i]);
	free(ns);
}

void mmds_ns_reset(struct mmds_ns *ns)
{
	for (unsigned i = 0; i < MMDS_NS_MAX_CONNECTIONS; i++)
		if (ns->conn[i].used)
			mmds_conn_close(&ns->conn[i]);
	ns->nr_rst = 0;
	ns->arp_pending = false;
	ns->next = 0;
}

void mmds_ns_fix_iss(struct mmds_ns *ns, uint32_t iss)
{
	ns->fixed_iss = iss;
}

static uint32_t next_iss(struct mmds_ns *ns)
{
	uint32_t x = ns->rng;

	if (ns->fixed_iss)
		return ns->fixed_iss;
	/* unpredictable from the last one a guest saw; xorshift only if getrandom fails */
	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) == (ssize_t)sizeof(x))
		return x;
	x = ns->rng;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return ns->rng = x;
}

/* RFC 9293 s3.10.7.1: the RST that answers `s` when no connection takes it */
static void queue_rst(struct mmds_ns *ns, uint32_t addr, uint16_t port, const uint8_t mac[6],
                      const struct mmds_seg *s)
{
	if (s->flags & MMDS_TCP_RST)
		return; /* never a RST for a RST */
	if (ns->nr_rst == MMDS_NS_MAX_RESETS)
		return; /* Firecracker forgoes RSTs past its queue too */
	struct ns_rst *r = &ns->rst[ns->nr_rst++];
	r->addr = addr;
	r->port = port;
	memcpy(r->mac, mac, 6);
	if (s->flags & MMDS_TCP_ACK) {
		r->seg = (struct mmds_seg){.seq = s->ack, .flags = MMDS_TCP_RST};
	} else {
		uint32_t ctl = !!(s->flags & MMDS_TCP_SYN) + !!(s->flags & MMDS_TCP_FIN);
		r->seg = (struct mmds_seg){.ack = s->seq + (uint32_t)s->len + ctl,
		                           .flags = MMDS_TCP_RST | MMDS_TCP_ACK};
	}
}

static void conn_remove(struct mmds_ns *ns, struct mmds_conn *c)
{
	mmds_conn_close(c);
	bump(&ns->m.connections_destroyed, 1);
}

/* a SYN with no connection: a new one, in a free slot or an evicted one's */
static void conn_new(struct mmds_ns *ns, uint32_t addr, uint16_t port, const uint8_t mac[6],
                     const struct mmds_seg *s, uint64_t now)
{
	struct mmds_conn *c = NULL, *old = NULL;

	for (unsigned i = 0; i < MMDS_NS_MAX_CONNECTIONS && !c; i++) {
		struct mmds_conn *k = &ns->conn[i];
		if (!k->used)
			c = k;
		else if (!old && now - k->last_rx > MMDS_NS_EVICT_NS)
			old = k;
	}
	if (!c && !old) { /* every connection is busy: refuse this one */
		bump(&ns->m.rx_accepted_unusual, 1);
		queue_rst(ns, addr, port, mac, s);
		return;
	}
	if (!c) { /* the evicted one hears of it */
		struct mmds_seg rst = {.ack = old->snd_nxt,
		                       .flags = MMDS_TCP_ACK}; /* seq snd_nxt */
		queue_rst(ns, old->raddr, old->rport, old->rmac, &rst);
		conn_remove(ns, old);
		c = old;
	}
	mmds_conn_open(c, s, next_iss(ns), now);
	c->raddr = addr;
	c->rport = port;
	memcpy(c->rmac, mac, 6);
	bump(&ns->m.connections_created, 1);
}

/* the MSS option of a SYN; -1: the options are malformed */
static int parse_mss(const uint8_t *o, size_t n)
{
	int mss = 0;

	for (size_t i = 0; i < n;) {
		if (o[i] == 0) /* end of options */
			break;
		if (o[i] == 1) { /* no-operation */
			i++;
			continue;
		}
		if (i + 1 >= n || o[i + 1] < 2 || o[i + 1] > n - i)
			return -1;
		if (o[i] == 2) {
			if (o[i + 1] != 4)
				return -1;
			mss = mmds_be16(o + i + 2);
			if (mss == 0)
				return -1;
		}
		i += o[i + 1];
	}
	return mss;
}

/* a TCP segment t[0..n) from src to the MMDS address; the IP header was checked */
static void tcp_input(struct mmds_ns *ns, const uint8_t mac[6], uint32_t src, const uint8_t *t,
                      size_t n, uint64_t now)
{
	struct mmds_seg s;

	if (n < TCP_HDR || (size_t)(t[12] >> 4) * 4 < TCP_HDR || (size_t)(t[12] >> 4) * 4 > n ||
	    mmds_csum_fold(mmds_csum_add(pseudo_sum(src, ns->ip, n), t, n)) != 0) {
		bump(&ns->m.rx_accepted_err, 1);
		return;
	}
	size_t doff = (size_t)(t[12] >> 4) * 4;
	uint16_t sport = mmds_be16(t), dport = mmds_be16(t + 2);
	s = (struct mmds_seg){.seq = mmds_be32(t + 4),
	                      .ack = mmds_be32(t + 8),
	                      .flags = t[13] & 0x3f,
	                      .win = mmds_be16(t + 14),
	                      .data = t + doff,
	                      .len = n - doff};
	int mss = parse_mss(t + TCP_HDR, doff - TCP_HDR);
	if (mss < 0) {
		bump(&ns->m.rx_accepted_err, 1);
		return;
	}
	s.mss = (uint16_t)mss;
	bump(&ns->m.rx_count, 1);
	if (dport != MMDS_NS_PORT) { /* a closed port */
		bump(&ns->m.rx_accepted_unusual, 1);
		queue_rst(ns, src, sport, mac, &s);
		return;
	}
	for (unsigned i = 0; i < MMDS_NS_MAX_CONNECTIONS; i++) {
		struct mmds_conn *c = &ns->conn[i];
		if (!c->used || c->raddr != src || c->rport != sport)
			continue;
		memcpy(c->rmac, mac, 6);
		mmds_conn_input(c, ns->store, &s, now, &ns->m);
		if (mmds_conn_done(c))
			conn_remove(ns, c);
		return;
	}
	if ((s.flags & (MMDS_TCP_SYN | MMDS_TCP_ACK | MMDS_TCP_RST | MMDS_TCP_FIN)) ==
	            MMDS_TCP_SYN &&
	    s.len == 0)
		conn_new(ns, src, sport, mac, &s, now);
	else
		queue_rst(ns, src, sport, mac, &s);
}

/* an IPv4 packet p[0..n) to the MMDS address */
static void ipv4_input(struct mmds_ns *ns, const uint8_t mac[6], const uint8_t *p, size_t n,
                       uint64_t now)
{
	/* version 4, no options (RFC 791 s3.1), a length inside the frame, a good checksum */
	if (n < IP_HDR || p[0] != 0x45 || mmds_be16(p + 2) < IP_HDR || mmds_be16(p + 2) > n ||
	    mmds_csum_fold(mmds_csum_add(0, p, IP_HDR)) != 0 || mmds_be32(p + 16) != ns->ip) {
		bump(&ns->m.rx_accepted_err, 1);
		return;
	}
	uint32_t src = mmds_be32(p + 12);
	/* fragments (MF or an offset), not TCP, or from no one to answer */
	if ((mmds_be16(p + 6) & 0x3fff) || p[9] != IPPROTO_TCP_ || src == 0 || src >= 0xe0000000u) {
		bump(&ns->m.rx_accepted_unusual, 1);
		return;
	}
	tcp_input(ns, mac, src, p + IP_HDR, mmds_be16(p + 2) - IP_HDR, now);
}

void mmds_ns_input(struct mmds_ns *ns, const uint8_t *f, size_t len, uint64_t now)
{
	bump(&ns->m.rx_accepted, 1);
	if (len < ETH_HDR) {
		bump(&ns->m.rx_bad_eth, 1);
		return;
	}
	switch (mmds_be16(f + 12)) {
	case ETHERTYPE_ARP:
		/* one reply waits at a time, to the latest asker (as Firecracker) */
		if (mmds_arp_reply(f, len, ns->ip, mmds_default_mac, ns->arp, sizeof(ns->arp)) ==
		    ARP_FRAME)
			ns->arp_pending = true;
		else
			bump(&ns->m.rx_accepted_err, 1);
		return;
	case ETHERTYPE_IPV4:
		ipv4_input(ns, f + 6, f + ETH_HDR, len - ETH_HDR, now);
		return;
	default:
		bump(&ns->m.rx_bad_eth, 1);
	}
}

/* Ethernet, IPv4 and TCP headers around `s` (its payload copied); the frame's length */
static size_t write_segment(struct mmds_ns *ns, uint8_t *buf, uint32_t dst, uint16_t dport,
                            const uint8_t mac[6], const struct mmds_seg *s)
{
	uint8_t *ip = buf + ETH_HDR, *t = ip + IP_HDR;
	size_t thl = TCP_HDR + (s->mss ? 4 : 0), tl = thl + s->len;

	memcpy(buf, mac, 6);
	memcpy(buf + 6, mmds_default_mac, 6);
	mmds_put16(buf + 12, ETHERTYPE_IPV4);
	memset(ip, 0, IP_HDR);
	ip[0] = 0x45;
	mmds_put16(ip + 2, (uint16_t)(IP_HDR + tl));
	mmds_put16(ip + 4, ns->ip_id++);
	mmds_put16(ip + 6, 0x4000); /* don't fragment */
	ip[8] = 64;
	ip[9] = IPPROTO_TCP_;
	mmds_put32(ip + 12, ns->ip);
	mmds_put32(ip + 16, dst);
	mmds_put16(ip + 10, mmds_csum_fold(mmds_csum_add(0, ip, IP_HDR)));

	mmds_put16(t, MMDS_NS_PORT);
	mmds_put16(t + 2, dport);
	mmds_put32(t + 4, s->seq);
	mmds_put32(t + 8, s->ack);
	t[12] = (uint8_t)(thl / 4) << 4;
	t[13] = s->flags;
	mmds_put16(t + 14, s->win);
	mmds_put32(t + 16, 0); /* checksum, urgent pointer */
	if (s->mss) {
		t[20] = 2;
		t[21] = 4;
		mmds_put16(t + 22, s->mss);
	}
	if (s->len)
		memcpy(t + thl, s->data, s->len);
	mmds_put16(t + 16, mmds_csum_fold(mmds_csum_add(pseudo_sum(ns->ip, dst, tl), t, tl)));
	return ETH_HDR + IP_HDR + tl;
}

size_t mmds_ns_output(struct mmds_ns *ns, uint8_t *buf, size_t size, uint64_t now)
{
	struct mmds_seg s;
	size_t len = 0;

	if (size < MMDS_NS_FRAME_MAX) {
		bump(&ns->m.tx_errors, 1);
		return 0;
	}
	if (ns->arp_pending) {
		memcpy(buf, ns->arp, ARP_FRAME);
		ns->arp_pending = false;
		len = ARP_FRAME;
	} else if (ns->nr_rst) {
		struct ns_rst *r = &ns->rst[--ns->nr_rst];
		len = write_segment(ns, buf, r->addr, r->port, r->mac, &r->seg);
	} else {
		for (unsigned k = 0; k < MMDS_NS_MAX_CONNECTIONS && !len; k++) {
			struct mmds_conn *c = &ns->conn[(ns->next + k) % MMDS_NS_MAX_CONNECTIONS];
			if (!c->used || mmds_conn_output(c, &s, now) <= 0)
				continue;
			/* the segment fits: mss <= MMDS_NS_MSS_MAX, options 4 bytes */
			len = write_segment(ns, buf, c->raddr, c->rport, c->rmac, &s);
			if (mmds_conn_done(c))
				conn_remove(ns, c);
			ns->next = (ns->next + k + 1) % MMDS_NS_MAX_CONNECTIONS;
		}
	}
	if (len)
		bump(&ns->m.tx_count, 1);
	return len;
}

uint64_t mmds_ns_deadline(const struct mmds_ns *ns)
{
	uint64_t first = 0;

	for (unsigned i = 0; i < MMDS_NS_MAX_CONNECTIONS; i++) {
		uint64_t d = ns->conn[i].used ? mmds_conn_deadline(&ns->conn[i]) : 0;
		if (d && (!first || d < first))
			first = d;
	}
	return first;
}

void mmds_ns_delivered(struct mmds_ns *ns, size_t len)
{
	bump(&ns->m.tx_frames, 1);
	bump(&ns->m.tx_bytes, len);
}

void mmds_ns_metrics(const struct mmds_ns *ns, struct mmds_ns_metrics *out)
{
	const uint64_t *from = (const uint64_t *)&ns->m;
	uint64_t *to = (uint64_t *)out;

	/* the struct is only uint64_t counters */
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}
