/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mmds/mmds_int.h: private to the mmds/ files. The JSON helpers behind the data
 * store, apart so that the unit tests and the fuzz targets reach them
 * without a store around them.
 */
#ifndef KILN_MMDS_INT_H
#define KILN_MMDS_INT_H

#include "mmds/mmds.h"

/*
 * RFC 7396 merge of `patch` into *target (owned; NULL is JSON null), as
 * Firecracker's json_patch(): an object patch merges key by key (a null
 * value removes the key), anything else replaces. *target may be replaced
 * by a new reference. 0 / -ENOMEM (then *target is partly patched: apply
 * to a copy).
 */
int mmds_merge_patch(json_t **target, json_t *patch);

/*
 * The value at the guest's URI path in `root` (borrowed; NULL when
 * nothing is there). The path rules are mmds_lookup()'s.
 */
json_t *mmds_pointer(json_t *root, const char *path, size_t len);

/* the length of `v`'s compact JSON text (serde_json's to_vec, which Firecracker measures) */
size_t mmds_json_size(const json_t *v);

/* ------------------------------------ the network stack (ns.c, tcp.c) */

/* big-endian (network order) fields of frames, at offsets the caller checked */
static inline uint16_t mmds_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t mmds_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void mmds_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void mmds_put32(uint8_t *p, uint32_t v)
{
	mmds_put16(p, (uint16_t)(v >> 16));
	mmds_put16(p + 2, (uint16_t)v);
}

/* TCP flags (RFC 9293 s3.1) */
#define MMDS_TCP_FIN 0x01
#define MMDS_TCP_SYN 0x02
#define MMDS_TCP_RST 0x04
#define MMDS_TCP_PSH 0x08
#define MMDS_TCP_ACK 0x10

/* one TCP segment, as parsed from the guest or to be written to it */
struct mmds_seg {
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	uint16_t mss;        /* the MSS option (a SYN's); 0: none */
	const uint8_t *data; /* the payload (into the frame, or a response) */
	size_t len;
};

/* a connection to port 80, keyed by the guest's address and port */
struct mmds_conn {
	bool used;
	uint32_t raddr;
	uint16_t rport;
	uint8_t rmac[6]; /* where its segments go */
	bool synack_sent, established, ack_pending, dup_ack;
	bool fin_rcvd, fin_queued, fin_sent, fin_acked;
	bool rst_pending, done;
	uint32_t iss, snd_una, snd_nxt, snd_edge; /* snd_edge: the guest's window ends there */
	uint32_t snd_max; /* the highest sequence number sent: go_back() rewinds snd_nxt only */
	uint32_t rcv_nxt, fin_seq;
	uint16_t mss, last_win;
	unsigned rto_count;
	uint64_t rto_start, last_rx;
	uint64_t last_fast_rtx; /* the last go-back on a duplicate ACK (one per RTO period) */
	uint64_t persist_start; /* the guest's window closed with bytes to send: since then */
	bool persist;           /* ... and the persist timer runs */
	size_t rlen;            /* bytes of a request in rbuf */
	uint8_t rbuf[MMDS_HTTP_MAX_REQUEST];
	char *resp; /* the response being sent: resp[0] has sequence number resp_seq */
	size_t resp_len;
	uint32_t resp_seq;
};

/*
 * A new connection for the guest's SYN `s` (no payload; its MSS option,
 * capped at MMDS_NS_MSS_MAX, or MMDS_NS_MSS_DEFAULT), initial sequence
 * number `iss`. The SYN-ACK is its first output.
 */
void mmds_conn_open(struct mmds_conn *c, const struct mmds_seg *s, uint32_t iss, uint64_t now);

/*
 * A segment of the guest's for this connection (RFC 9293 s3.10.7.4, the
 * subset a server answering requests needs): ACKs move the send window,
 * in-order data fills the receive buffer (other data is dropped and
 * ACKed), a whole request is answered from `store`, FIN closes after the
 * last response, RST ends it. Counts what is unusual in `m`.
 */
void mmds_conn_input(struct mmds_conn *c, struct mmds *store, const struct mmds_seg *s,
                     uint64_t now, struct mmds_ns_metrics *m);

/*
 * The next segment the connection has to send, into *out (its data points
 * into the response). 1: one is due; 0: nothing now.
 */
int mmds_conn_output(struct mmds_conn *c, struct mmds_seg *out, uint64_t now);

/* tests and fuzzing: every new connection starts at sequence `iss` (0: random again) */
void mmds_ns_fix_iss(struct mmds_ns *ns, uint32_t iss);

/* the connection is over (RST either way, or both FINs acknowledged) */
bool mmds_conn_done(const struct mmds_conn *c);
/* when its retransmission or persist timer fires; 0: none runs */
uint64_t mmds_conn_deadline(const struct mmds_conn *c);
/* frees its response; the slot is free afterwards */
void mmds_conn_close(struct mmds_conn *c);

#endif
