// SPDX-License-Identifier: Apache-2.0
/*
 * mmds/tcp.c: one TCP connection of the MMDS's (RFC 9293, the passive side
 * only), as Firecracker's dumbo/tcp/connection.rs and endpoint.rs behave:
 * SYN -> SYN-ACK with the guest's MSS, in-order data only (anything else
 * is dropped and ACKed), one HTTP request answered at a time and its
 * response sent in MSS-sized segments within the guest's window,
 * retransmission from the oldest unacknowledged byte after a timeout, a
 * one-byte probe of a window the guest keeps closed (RFC 9293 s3.8.6.1),
 * a FIN answered once the last response went out, RST to end it.
 *
 * Sequence numbers are compared modulo 2^32 (RFC 9293 s3.4). Every length
 * is checked against the connection's own buffers before a byte is copied.
 */
#include "mmds/mmds_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the smallest MSS honoured, as Linux's tcp_min_snd_mss (CVE-2019-11479) */
#define MSS_MIN 48

/* a response longer than this is refused (no store is near it) */
#define RESP_MAX (1u << 30)

static bool seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static bool seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

static void bump(uint64_t *counter)
{
	__atomic_store_n(counter, *counter + 1, __ATOMIC_RELAXED);
}

/* the receive window: what is left of the request buffer */
static uint16_t rcv_wnd(const struct mmds_conn *c)
{
	return (uint16_t)(sizeof(c->rbuf) - c->rlen);
}

void mmds_conn_open(struct mmds_conn *c, const struct mmds_seg *s, uint32_t iss, uint64_t now)
{
	uint16_t mss = s->mss ? s->mss : MMDS_NS_MSS_DEFAULT;

	/* a tiny MSS would cut a response into a frame per byte: Linux's tcp_min_snd_mss */
	if (mss < MSS_MIN)
		mss = MSS_MIN;

	memset(c, 0, offsetof(struct mmds_conn, rbuf));
	c->resp = NULL;
	c->resp_len = 0;
	c->used = true;
	c->mss = mss > MMDS_NS_MSS_MAX ? MMDS_NS_MSS_MAX : mss;
	c->iss = iss;
	c->snd_una = c->snd_nxt = c->snd_max = iss + 1;
	c->last_fast_rtx =
	        now - MMDS_NS_RTO_NS; /* (mod 2^64) the first duplicate ACK may go back */
	c->snd_edge = iss + 1 + s->win;
	c->last_win = s->win;
	c->rcv_nxt = s->seq + 1;
	c->last_rx = now;
}

/* we end the connection: one RST, then it is gone */
static void conn_reset(struct mmds_conn *c)
{
	c->rst_pending = true;
}

/* a copy of the guest's first SYN (it did not get our SYN-ACK) */
static bool same_syn(const struct mmds_conn *c, const struct mmds_seg *s)
{
	return (s->flags & (MMDS_TCP_SYN | MMDS_TCP_ACK | MMDS_TCP_RST | MMDS_TCP_FIN)) ==
	               MMDS_TCP_SYN &&
	       s->len == 0 && s->seq + 1 == c->rcv_nxt;
}

/* an ACK on an established connection: the send side moves on */
static void ack_input(struct mmds_conn *c, const struct mmds_seg *s, uint64_t now,
                      struct mmds_ns_metrics *m)
{
	/* snd_max, not snd_nxt: after a go-back, bytes sent before it are still acknowledgeable */
	if (seq_lt(s->ack, c->snd_una) || seq_lt(c->snd_max, s->ack)) {
		bump(&m->rx_accepted_unusual); /* old, or for bytes never sent */
		if (seq_lt(c->snd_max, s->ack))
			c->ack_pending = true; /* RFC 9293 s3.10.7.4: ACK it */
		return;
	}
	if (s->ack == c->snd_una) {
		/* nothing new acknowledged, and not a window update: the guest misses data */
		if (s->ack != c->snd_nxt && s->len == 0 && s->win == c->last_win &&
		    !(s->flags & MMDS_TCP_FIN))
			c->dup_ack = true;
	} else {
		c->snd_una = s->ack;
		if (seq_lt(c->snd_nxt, s->ack)) /* acknowledged past a go-back: no need to resend */
			c->snd_nxt = s->ack;
		c->rto_start = now;
		c->rto_count = 0;
	}
	/* our FIN acknowledged (ack <= snd_max: it was sent, maybe before a go-back) */
	if (c->fin_queued && s->ack == c->fin_seq + 1) {
		c->fin_sent = true;
		c->fin_acked = true;
	}
	c->last_win = s->win;
	uint32_t edge = s->ack + s->win;
	if (seq_lt(c->snd_edge, edge))
		c->snd_edge = edge;
}

/* Firecracker answers a request it cannot parse with 400, then closes */
static int bad_request(struct mmds_conn *c)
{
	static const char msg[] = "Invalid request.";
	int n = asprintf(&c->resp,
	                 "HTTP/1.1 400 Bad Request\r\nServer: kiln MMDS\r\n"
	                 "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
	                 sizeof(msg) - 1, msg);
	if (n < 0) {
		c->resp = NULL;
		return -ENOMEM;
	}
	c->resp_len = (size_t)n;
	return 0;
}

/* Firecracker's token metrics, counted where it counts them: V2 GETs */
static void count_token(struct mmds *store, const struct mmds_http_req *r,
                        struct mmds_ns_metrics *m)
{
	if (strcmp(r->method, "GET") != 0 || mmds_version(store) != MMDS_V2)
		return;
	if (!r->token)
		bump(&m->rx_no_token);
	else if (!mmds_token_valid(store, r->token, r->token_len))
		bump(&m->rx_invalid_token);
}

/*
 * The response sent is acknowledged: forget it. Then, with none pending,
 * the next whole request in rbuf gets its response (one at a time, as
 * Firecracker's endpoint).
 */
static void serve(struct mmds_conn *c, struct mmds *store, struct mmds_ns_metrics *m)
{
	struct mmds_http_req r;

	if (c->resp) {
		if (seq_lt(c->snd_una, c->resp_seq + (uint32_t)c->resp_len))
			return;
		free(c->resp);
		c->resp = NULL;
		c->resp_len = 0;
	}
	if (c->fin_queued || c->rlen == 0)
		return;
	int ret = mmds_http_parse((const char *)c->rbuf, c->rlen, &r);
	if (ret == 0 && c->rlen < sizeof(c->rbuf))
		return;                  /* more is to come */
	if (ret == 0 || ret == -E2BIG) { /* a request past MMDS_HTTP_MAX_REQUEST */
		bump(&m->rx_accepted_unusual);
		conn_reset(c);
		return;
	}
	bool was_full = c->rlen == sizeof(c->rbuf);
	if (ret < 0) {
		/* not HTTP: answer 400 and close, as its end cannot be known */
		c->rlen = 0;
		c->fin_queued = true;
		ret = bad_request(c);
	} else {
		count_token(store, &r, m);
		ret = mmds_http_respond(store, &r, &c->resp, &c->resp_len);
		memmove(c->rbuf, c->rbuf + r.total, c->rlen - r.total);
		c->rlen -= r.total;
	}
	if (ret < 0 || c->resp_len > RESP_MAX) {
		bump(&m->tx_errors);
		free(c->resp);
		c->resp = NULL;
		c->resp_len = 0;
		conn_reset(c);
		return;
	}
	c->resp_seq = c->snd_nxt;
	if (c->fin_queued)
		c->fin_seq = c->snd_nxt + (uint32_t)c->resp_len;
	if (was_full)
		c->ack_pending = true; /* the window opens again: say so */
}

/* in-order payload into rbuf; a FIN right after it. false: dropped */
static bool data_input(struct mmds_conn *c, const struct mmds_seg *s, struct mmds_ns_metrics *m)
{
	const uint8_t *p = s->data;
	size_t len = s->len;
	uint32_t seq = s->seq, end = s->seq + (uint32_t)s->len;

	if (len) {
		if (c->fin_rcvd) { /* data after the guest's FIN */
			bump(&m->rx_accepted_unusual);
			return false;
		}
		/* a retransmission overlapping what we have: keep its new tail */
		if (seq_lt(seq, c->rcv_nxt) && seq_lt(c->rcv_nxt, end)) {
			size_t skip = c->rcv_nxt - seq;
			p += skip;
			len -= skip;
			seq = c->rcv_nxt;
		}
		c->ack_pending = true;
		if (seq != c->rcv_nxt) { /* out of order or old: dropped, ACKed */
			bump(&m->rx_accepted_unusual);
			return false;
		}
		size_t room = sizeof(c->rbuf) - c->rlen;
		if (len > room) { /* beyond our window: take what fits */
			bump(&m->rx_accepted_unusual);
			len = room;
		}
		memcpy(c->rbuf + c->rlen, p, len);
		c->rlen += len;
		c->rcv_nxt += (uint32_t)len;
	}
	if ((s->flags & MMDS_TCP_FIN) && !c->fin_rcvd) {
		if (end == c->rcv_nxt) {
			c->fin_rcvd = true;
			c->rcv_nxt++;
			c->ack_pending = true;
		} else {
			bump(&m->rx_accepted_unusual);
		}
	}
	return true;
}

void mmds_conn_input(struct mmds_conn *c, struct mmds *store, const struct mmds_seg *s,
                     uint64_t now, struct mmds_ns_metrics *m)
{
	if (c->rst_pending || c->done)
		return;
	c->last_rx = now;
	if (s->flags & MMDS_TCP_RST) {
		/* RFC 9293 s3.10.7.4: only a RST inside the window ends it */
		uint32_t wnd = rcv_wnd(c); /* with no window, only a RST at rcv_nxt */
		if (wnd ? seq_le(c->rcv_nxt, s->seq) && seq_lt(s->seq, c->rcv_nxt + wnd)
		        : s->seq == c->rcv_nxt)
			c->done = true;
		else
			bump(&m->rx_accepted_unusual);
		return;
	}
	if (!c->established) {
		if (same_syn(c, s)) { /* our SYN-ACK was lost: send it again */
			c->synack_sent = false;
			return;
		}
		if ((s->flags & MMDS_TCP_SYN) || !(s->flags & MMDS_TCP_ACK) ||
		    s->ack != c->iss + 1 || !c->synack_sent) {
			bump(&m->rx_accepted_unusual);
			conn_reset(c);
			return;
		}
		c->established = true;
		c->rto_count = 0;
		c->last_win = s->win;
		c->snd_edge = s->ack + s->win;
	} else if (s->flags & MMDS_TCP_SYN) {
		bump(&m->rx_accepted_unusual);
		conn_reset(c);
		return;
	} else if (s->flags & MMDS_TCP_ACK) {
		ack_input(c, s, now, m);
	} else {
		bump(&m->rx_accepted_unusual); /* RFC 9293: no ACK, no use */
		return;
	}
	if (!data_input(c, s, m))
		return;
	serve(c, store, m);
	/* the guest is done sending and has its answers: close our side */
	if (c->fin_rcvd && !c->resp && !c->fin_queued) {
		c->fin_queued = true;
		c->fin_seq = c->snd_nxt;
	}
}

/* a segment from snd_nxt with `flags`, carrying what we acknowledge */
static void seg_at(const struct mmds_conn *c, struct mmds_seg *out, uint32_t seq, uint8_t flags)
{
	*out = (struct mmds_seg){.seq = seq, .ack = c->rcv_nxt, .flags = flags, .win = rcv_wnd(c)};
}

/* data from snd_nxt within the guest's window, at most one MSS; false: none */
static bool data_output(struct mmds_conn *c, struct mmds_seg *out, uint64_t now)
{
	if (!c->resp)
		return false;
	uint32_t end = c->resp_seq + (uint32_t)c->resp_len;
	if (!seq_lt(c->snd_nxt, end) || !seq_lt(c->snd_nxt, c->snd_edge))
		return false;
	uint32_t len = end - c->snd_nxt;
	if (len > c->mss)
		len = c->mss;
	if (len > c->snd_edge - c->snd_nxt)
		len = c->snd_edge - c->snd_nxt;
	seg_at(c, out, c->snd_nxt, MMDS_TCP_ACK | MMDS_TCP_PSH);
	out->data = (const uint8_t *)c->resp + (c->snd_nxt - c->resp_seq);
	out->len = len;
	if (c->snd_una == c->snd_nxt)
		c->rto_start = now;
	c->snd_nxt += len;
	if (seq_lt(c->snd_max, c->snd_nxt))
		c->snd_max = c->snd_nxt;
	return true;
}

/* bytes wait, none is in flight, and the guest's window is closed */
static bool window_closed(const struct mmds_conn *c)
{
	return c->resp && c->snd_una == c->snd_nxt &&
	       seq_lt(c->snd_nxt, c->resp_seq + (uint32_t)c->resp_len) &&
	       !seq_lt(c->snd_nxt, c->snd_edge);
}

/*
 * The persist timer: a window closed for a period is probed with the next
 * byte, so that a window update the guest sent and we missed cannot stall
 * the response. The guest ACKs the probe without taking the byte (a
 * duplicate ACK, which goes back) or takes it and opens its window.
 */
static bool probe_output(struct mmds_conn *c, struct mmds_seg *out, uint64_t now)
{
	if (!window_closed(c)) {
		c->persist = false;
		return false;
	}
	if (!c->persist) {
		c->persist = true;
		c->persist_start = now;
		return false;
	}
	if (now - c->persist_start < MMDS_NS_RTO_NS)
		return false;
	seg_at(c, out, c->snd_nxt, MMDS_TCP_ACK);
	out->data = (const uint8_t *)c->resp + (c->snd_nxt - c->resp_seq);
	out->len = 1;
	c->rto_start = now;
	c->snd_nxt++;
	if (seq_lt(c->snd_max, c->snd_nxt))
		c->snd_max = c->snd_nxt;
	c->persist = false;
	return true;
}

/* go back to the oldest byte not acknowledged (timeout or duplicate ACK) */
static void go_back(struct mmds_conn *c)
{
	c->snd_nxt = c->snd_una;
	if (c->fin_sent && !c->fin_acked && seq_le(c->snd_una, c->fin_seq))
		c->fin_sent = false;
}

int mmds_conn_output(struct mmds_conn *c, struct mmds_seg *out, uint64_t now)
{
	if (c->done)
		return 0;
	if (c->rst_pending) {
		seg_at(c, out, c->snd_nxt, MMDS_TCP_RST | MMDS_TCP_ACK);
		c->done = true;
		return 1;
	}
	/* the timer runs while a SYN-ACK or bytes wait for their ACK */
	bool timeout = now - c->rto_start >= MMDS_NS_RTO_NS;
	if (!c->established) {
		if (c->synack_sent && !timeout)
			return 0;
		if (c->synack_sent && ++c->rto_count >= MMDS_NS_RTO_MAX) {
			conn_reset(c);
			return mmds_conn_output(c, out, now);
		}
		seg_at(c, out, c->iss, MMDS_TCP_SYN | MMDS_TCP_ACK);
		out->mss = c->mss;
		c->synack_sent = true;
		c->rto_start = now;
		return 1;
	}
	if (c->snd_una != c->snd_nxt && timeout) {
		if (++c->rto_count >= MMDS_NS_RTO_MAX) {
			conn_reset(c);
			return mmds_conn_output(c, out, now);
		}
		go_back(c);
		c->rto_start = now;
	} else if (c->dup_ack && now - c->last_fast_rtx >= MMDS_NS_RTO_NS) {
		/* at most once a period: a flood of duplicate ACKs cannot make us resend without
		 * end */
		go_back(c);
		c->last_fast_rtx = now;
	}
	c->dup_ack = false;
	if (data_output(c, out, now) || probe_output(c, out, now)) {
		c->ack_pending = false;
		return 1;
	}
	if (c->fin_queued && !c->fin_sent && c->snd_nxt == c->fin_seq) {
		seg_at(c, out, c->snd_nxt, MMDS_TCP_FIN | MMDS_TCP_ACK);
		if (c->snd_una == c->snd_nxt)
			c->rto_start = now;
		c->snd_nxt++;
		if (seq_lt(c->snd_max, c->snd_nxt))
			c->snd_max = c->snd_nxt;
		c->fin_sent = true;
		c->ack_pending = false;
		return 1;
	}
	if (c->ack_pending) {
		seg_at(c, out, c->snd_nxt, MMDS_TCP_ACK);
		c->ack_pending = false;
		return 1;
	}
	return 0;
}

bool mmds_conn_done(const struct mmds_conn *c)
{
	/* both FINs acknowledged, ours by the guest, the guest's by us */
	return c->done || (c->fin_rcvd && c->fin_acked && !c->ack_pending);
}

uint64_t mmds_conn_deadline(const struct mmds_conn *c)
{
	if (c->done || c->rst_pending)
		return 0;
	if (c->established && c->persist && window_closed(c))
		return c->persist_start + MMDS_NS_RTO_NS;
	if (c->established ? c->snd_una == c->snd_nxt : !c->synack_sent)
		return 0;
	return c->rto_start + MMDS_NS_RTO_NS;
}

void mmds_conn_close(struct mmds_conn *c)
{
	free(c->resp);
	c->resp = NULL;
	c->resp_len = 0;
	c->used = false;
}
