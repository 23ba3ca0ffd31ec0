/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mmds: the microVM metadata service, as Firecracker's (docs/mmds in its
 * tree): a JSON document the host sets through the API (PUT/PATCH/GET
 * /mmds, --metadata FILE) and the guest reads over HTTP at a link-local
 * address on the network interfaces named in PUT /mmds/config.
 *
 * This header is the data store: one document, a size limit, the version
 * (V1, V2) and the IMDS compatibility switch. The document lives on the
 * host only; like Firecracker, kiln never writes it into a snapshot.
 *
 * Threads: the VMM thread changes the store (API actions); the virtio-net
 * I/O threads of the interfaces that serve MMDS read it to answer the
 * guest. Every function takes the store's own lock, so any thread may call
 * any of them.
 */
#ifndef KILN_MMDS_H
#define KILN_MMDS_H

#include "common/common.h"

#include <jansson.h>
#include <pthread.h>

/* Firecracker's default --mmds-size-limit: its --http-api-max-payload-size default */
#define MMDS_DEFAULT_SIZE_LIMIT 51200

enum mmds_version { MMDS_V1 = 0, MMDS_V2 = 1 };

/* how a value found at a path is written out for the guest */
enum mmds_format {
	MMDS_FMT_JSON, /* the value as compact JSON */
	MMDS_FMT_IMDS, /* EC2 IMDS plain text: an object's keys, or a string as is */
};

/* V2 session tokens (PUT /latest/api/token): Firecracker's TTL bounds */
#define MMDS_TOKEN_TTL_MIN 1
#define MMDS_TOKEN_TTL_MAX 21600
#define MMDS_TOKEN_MAX     32 /* characters of a token: expiry and MAC, 16 bytes in hex */

struct mmds {
	pthread_mutex_t lock;
	uint8_t token_key[16]; /* the tokens' MAC key (mmds/token.c), drawn at the first use */
	bool token_key_set;
	json_t *data; /* the document; NULL until the first PUT */
	size_t limit; /* bytes of its compact JSON text, at most */
	enum mmds_version version;
	bool imds_compat; /* answer IMDS text whatever the guest accepts */
};

/* an empty store (never PUT) with `limit` bytes (0: the default). 0 / -errno */
int mmds_init(struct mmds *m, size_t limit);
/* frees the document; the store must not be used afterwards */
void mmds_destroy(struct mmds *m);

/* the store holds a document (PUT at least once) */
bool mmds_initialized(struct mmds *m);

/*
 * PUT /mmds: `data` (any JSON value; the caller keeps its reference)
 * replaces the document. -EFBIG when its compact JSON text is longer than
 * the limit (Firecracker's 413), the store unchanged.
 */
int mmds_put(struct mmds *m, json_t *data, struct errbuf *e);

/*
 * PATCH /mmds: JSON merge patch (RFC 7396) of the document with `patch`
 * (the caller keeps its reference). -ENODATA before the first PUT ("not
 * initialized"), -EFBIG when the result would exceed the limit; either way
 * the store is unchanged.
 */
int mmds_patch(struct mmds *m, json_t *patch, struct errbuf *e);

/* GET /mmds: a deep copy of the document; {} before the first PUT. NULL: out of memory */
json_t *mmds_get(struct mmds *m);

/* the size limit in bytes; set before the guest runs (--mmds-size-limit) */
void mmds_set_limit(struct mmds *m, size_t limit);
void mmds_configure(struct mmds *m, enum mmds_version v, bool imds_compat);
enum mmds_version mmds_version(struct mmds *m);
bool mmds_imds_compat(struct mmds *m);

/*
 * The guest's answer for the URI path `path` (`len` bytes, not
 * NUL-terminated, from the guest: any bytes): runs of '/' count as one, one
 * trailing '/' is dropped, and the rest is a JSON pointer (RFC 6901, "~0"
 * and "~1" unescaped; array indexes in decimal without leading zeros).
 * The value there is written in `fmt` (MMDS_FMT_IMDS whatever `fmt` with
 * imds_compat): JSON compact; IMDS lists an object's keys one a line in
 * byte order, a sub-object's with a trailing '/', or gives a string as is.
 * *out is malloc'd (free() it), *out_len its length.
 *   0        found
 *   -ENOENT  nothing at that path
 *   -ENOTSUP IMDS form of a number, bool, null or array (Firecracker's 501)
 *   -ENOMEM  out of memory
 */
int mmds_lookup(struct mmds *m, const char *path, size_t len, enum mmds_format fmt, char **out,
                size_t *out_len);

/*
 * A new V2 session token valid for `ttl` seconds (MMDS_TOKEN_TTL_MIN..MAX,
 * checked by the caller) into tok[MMDS_TOKEN_MAX + 1]. Nothing is kept per
 * token (it carries its expiry and a MAC over it), so a guest asking for
 * tokens without end grows nothing and revokes no other token. 0 / -errno.
 */
int mmds_token_new(struct mmds *m, uint32_t ttl, char tok[MMDS_TOKEN_MAX + 1]);
/* `tok` (len bytes from the guest) is a token made here and not expired */
bool mmds_token_valid(struct mmds *m, const char *tok, size_t len);

/* ------------------------------------------------ HTTP from the guest */

/* a request's line and headers, at most this many bytes, or it is refused */
#define MMDS_HTTP_MAX_REQUEST 4096

/* one parsed request; the pointers point into the caller's buffer */
struct mmds_http_req {
	char method[8];
	const char *uri; /* the path, without a query string */
	size_t uri_len;
	enum mmds_format fmt;    /* JSON for "Accept: application/json", else IMDS */
	const char *token, *ttl; /* X-metadata-token(-ttl-seconds) or the AWS names; NULL: none */
	size_t token_len, ttl_len;
	bool forwarded; /* X-Forwarded-For was sent */
	bool has_body;  /* a Content-Length other than 0 */
	size_t total;   /* bytes of buf the request took */
};

/*
 * Parses the request at the start of buf[0..len) (bytes from the guest).
 *   1        a whole request: r filled, r->total bytes used
 *   0        not complete yet: call again with more bytes
 *   -EINVAL  not an HTTP/1.x request, or one with a body (answer 400)
 *   -E2BIG   MMDS_HTTP_MAX_REQUEST bytes without the end of the headers
 */
int mmds_http_parse(const char *buf, size_t len, struct mmds_http_req *r);

/*
 * The whole HTTP response to `r` (status line, headers, body) as a
 * malloc'd text *out of *out_len bytes, as Firecracker's MMDS answers:
 * 200 with the value, 404, 501, 401 for V2 without a valid token, 405
 * for methods other than GET and PUT, the token for PUT
 * /latest/api/token. 0 / -ENOMEM.
 */
int mmds_http_respond(struct mmds *m, const struct mmds_http_req *r, char **out, size_t *out_len);

/* ------------------------------------------------ frames from the guest */

/* Firecracker's MMDS MAC address, the ARP replies' sender */
extern const uint8_t mmds_default_mac[6];

/*
 * The guest's Ethernet frame f[0..len) goes to the MMDS at `ip` (host
 * order): an ARP whose target protocol address is `ip`, or an IPv4 packet
 * to it. Such frames are the MMDS stack's, never the tap's. Any thread.
 */
bool mmds_frame_is_mmds(const uint8_t *f, size_t len, uint32_t ip);

/*
 * The ARP reply (42 bytes, into out[0..size)) to an Ethernet/IPv4 ARP
 * request for `ip`, from `mac`. Its length, -EINVAL when f is not such a
 * request, -ENOSPC when out is too small.
 */
int mmds_arp_reply(const uint8_t *f, size_t len, uint32_t ip, const uint8_t mac[6], uint8_t *out,
                   size_t size);

/*
 * An address fit for the MMDS stack, as Firecracker's is_link_local_valid:
 * 169.254.0.0/16 without 169.254.0.x and 169.254.255.x. `ip` is in host
 * order.
 */
bool mmds_ipv4_valid(uint32_t ip);
#define MMDS_DEFAULT_IPV4 0xa9fea9feu /* 169.254.169.254 */

/* ------------------------------------------------ the guest's network stack */

/*
 * The MMDS's own small IPv4 stack on one network interface (Firecracker's
 * mmds/ns.rs and dumbo/tcp): ARP replies, and a minimal TCP server on
 * port 80 of the MMDS address carrying the HTTP requests above. Everything
 * it holds is bounded: MMDS_NS_MAX_CONNECTIONS connections (a new one
 * evicts one silent for MMDS_NS_EVICT_NS, else is refused with a RST),
 * each with a receive buffer of MMDS_HTTP_MAX_REQUEST bytes and at most
 * one response; MMDS_NS_MAX_RESETS RSTs waiting; one ARP reply. A guest
 * flooding it recycles these, kiln's memory does not grow.
 *
 * Threads: one stack belongs to one device's I/O thread; only the metrics
 * are read from other threads.
 */
#define MMDS_NS_PORT            80
#define MMDS_NS_MAX_CONNECTIONS 30  /* Firecracker's DEFAULT_MAX_CONNECTIONS */
#define MMDS_NS_MAX_RESETS      100 /* Firecracker's DEFAULT_MAX_PENDING_RESETS */
#define MMDS_NS_MSS_DEFAULT     536 /* RFC 9293 s3.7.1, without an MSS option */
#define MMDS_NS_MSS_MAX         1460
#define MMDS_NS_RTO_NS          1200000000ULL  /* retransmission period (Firecracker's 1.2 s) */
#define MMDS_NS_RTO_MAX         15             /* retransmissions before a reset */
#define MMDS_NS_EVICT_NS        40000000000ULL /* silent this long: evictable (Firecracker's 40 s) */
/* the largest frame the stack writes: Ethernet, IPv4, TCP with MSS, MSS bytes */
#define MMDS_NS_FRAME_MAX (14 + 20 + 24 + MMDS_NS_MSS_MAX)

/* Firecracker's "mmds" metrics, the names it gives them */
struct mmds_ns_metrics {
	uint64_t rx_accepted;         /* frames the device handed to the stack */
	uint64_t rx_accepted_err;     /* ... that were malformed (checksum, lengths, ARP) */
	uint64_t rx_accepted_unusual; /* ... not TCP, fragments, out of order, beyond the window */
	uint64_t rx_bad_eth;          /* ... too short for an Ethernet header */
	uint64_t rx_count;            /* TCP segments to the MMDS address taken in */
	uint64_t rx_invalid_token;    /* V2 GETs with a token not valid */
	uint64_t rx_no_token;         /* V2 GETs without a token */
	uint64_t tx_bytes, tx_frames; /* frames the device gave the guest, their bytes */
	uint64_t tx_count;            /* frames the stack wrote */
	uint64_t tx_errors;           /* frames it could not write (no room, no memory) */
	uint64_t connections_created, connections_destroyed;
};

struct mmds_ns;

/* a stack answering at `ip` (host order) from `store` (not owned). 0 / -errno */
int mmds_ns_create(struct mmds_ns **out, struct mmds *store, uint32_t ip);
/* frees the stack and its connections; safe on NULL */
void mmds_ns_destroy(struct mmds_ns *ns);
/*
 * The device was reset (a new driver, a reboot): every connection, queued
 * RST and ARP reply is dropped, so nothing of the old driver's sessions
 * reaches the new one's buffers. The caller keeps the I/O thread away.
 */
void mmds_ns_reset(struct mmds_ns *ns);

/*
 * Takes one Ethernet frame f[0..len) from the guest that
 * mmds_frame_is_mmds() gave to the stack (its checksums complete: a
 * device completes a partial one first). Nothing in it is trusted; a
 * malformed frame is counted and dropped. `now` is CLOCK_MONOTONIC in ns.
 */
void mmds_ns_input(struct mmds_ns *ns, const uint8_t *f, size_t len, uint64_t now);

/*
 * Writes the next frame the stack has for the guest into buf[0..size):
 * ARP reply first, then RSTs, then the connections' segments in turn. Its
 * length, or 0 when nothing is due (or size < MMDS_NS_FRAME_MAX).
 */
size_t mmds_ns_output(struct mmds_ns *ns, uint8_t *buf, size_t size, uint64_t now);

/* when a retransmission is due (CLOCK_MONOTONIC ns); 0: none is waiting */
uint64_t mmds_ns_deadline(const struct mmds_ns *ns);

/* the device gave the guest a frame of `len` bytes that mmds_ns_output wrote */
void mmds_ns_delivered(struct mmds_ns *ns, size_t len);

/* RFC 1071 ones' complement sum of p[0..n) added to `sum` (not folded) */
uint32_t mmds_csum_add(uint32_t sum, const uint8_t *p, size_t n);
/* folds a sum into the 16-bit checksum field's value */
uint16_t mmds_csum_fold(uint32_t sum);

/* the counters, from any thread */
void mmds_ns_metrics(const struct mmds_ns *ns, struct mmds_ns_metrics *out);

#endif
