/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/vsock_int.h: what vsock.c (device, guest packets), vsock_conn.c
 * (connections, guest payload to the host), vsock_rx.c (packets to the
 * guest) and vsock_host.c (unix sockets, timers) share. Everything here runs on the device's I/O
 * thread, or parked (activate/reset), or on the VMM thread before the transport exists / after it
 * is gone.
 */
#ifndef KILN_VIRTIO_VSOCK_INT_H
#define KILN_VIRTIO_VSOCK_INT_H

#include "vsock.h"

#include <stddef.h>
#include <sys/un.h>

/* virtio 1.2 s5.10.2 queues */
#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
/* s5.10.3 */
#define VIRTIO_VSOCK_F_STREAM 0

/* s5.10.6 struct virtio_vsock_hdr, 44 bytes little endian, packed */
#define VSOCK_HDR_LEN     44
#define VSOCK_HOST_CID    2 /* s5.10.4: the well-known CID of the host */
#define VSOCK_TYPE_STREAM 1
enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
/* s5.10.6.6 SHUTDOWN flags: the sender will not receive / not send any more */
#define VSOCK_SHUT_RCV  1u
#define VSOCK_SHUT_SEND 2u
#define VSOCK_SHUT_BOTH 3u
/* s5.10.6.7 */
#define VSOCK_EVENT_TRANSPORT_RESET 0

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

/* the largest payload put in one rx packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE) */
#define VSOCK_MAX_PKT_PAYLOAD KIB(64)
/* pending RSTs towards the guest: the tx queue waits when this is full */
#define VSOCK_RST_RING  256
#define VSOCK_HASH_SIZE 2048 /* buckets of the connection table, a power of 2 */
/* host ports kiln picks for host-initiated connections: [base, 2^32) */
#define VSOCK_LOCAL_PORT_BASE 0x40000000u
/* the longest "CONNECT <port>\n" line accepted */
#define VSOCK_LINE_MAX 32

/* an intrusive doubly linked list (head is a sentinel) */
struct vsock_link {
	struct vsock_link *prev, *next;
};

static inline void vsock_link_init(struct vsock_link *l)
{
	l->prev = l->next = l;
}

static inline bool vsock_link_empty(const struct vsock_link *head)
{
	return head->next == head;
}

static inline void vsock_link_add_tail(struct vsock_link *head, struct vsock_link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static inline void vsock_link_del(struct vsock_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	vsock_link_init(l);
}

/* the connection that holds link `l` as its member `m` */
#define VSOCK_CONN_OF(l, m) ((struct vsock_conn *)((char *)(l)-offsetof(struct vsock_conn, m)))

enum vsock_conn_state {
	VC_HELLO,      /* accepted on uds_path, reading "CONNECT <port>\n" */
	VC_LOCAL_INIT, /* host-initiated: REQUEST to the guest queued or sent */
	VC_ESTABLISHED,
};

/* packets a connection owes the guest (vsock_conn.pend) */
#define VP_REQUEST        1u
#define VP_RESPONSE       2u
#define VP_CREDIT_UPDATE  4u
#define VP_CREDIT_REQUEST 8u

struct vsock_conn {
	struct vsock_link all; /* virtio_vsock.conns (or .dead once closed) */
	struct vsock_link rxq; /* virtio_vsock.rxq while it has something for the guest */
	bool on_rxq;
	struct vsock_conn *hnext; /* hash chain, once the ports are known */
	bool hashed, dead;

	int fd;          /* the unix socket */
	uint32_t events; /* epoll interest now; in_ep: registered at all */
	bool in_ep;
	enum vsock_conn_state state;
	uint32_t local_port; /* the host side's vsock port */
	uint32_t peer_port;  /* the guest's */
	bool guest_knows;    /* the guest has seen this connection (RST it on errors) */
	uint32_t pend;       /* VP_* */
	uint64_t deadline;   /* now_ns() after which the timer ends it; 0: none */

	/* host -> guest (s5.10.6.3: we are the sender) */
	uint32_t tx_cnt;                       /* payload bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt; /* the guest's last word on its buffer */
	bool credit_requested;                 /* CREDIT_REQUEST sent, no credit since */
	bool host_readable;                    /* the socket may have data or EOF */
	bool host_eof;                         /* read() gave 0: the host sends no more */
	bool host_hup;                         /* the host closed (or the socket failed) */
	uint32_t shut_sent;                    /* SHUTDOWN flags sent to the guest */

	/* guest -> host (we are the receiver of VIRTIO_VSOCK_CONN_BUF bytes) */
	uint32_t rx_cnt;        /* payload bytes received from the guest */
	uint32_t fwd_cnt;       /* of them written to the unix socket */
	uint32_t last_fwd_sent; /* fwd_cnt as the guest last heard it */
	uint32_t peer_shut;     /* SHUTDOWN flags the guest sent */
	bool shut_wr_done, shut_rd_done;
	uint8_t *buf; /* VIRTIO_VSOCK_CONN_BUF bytes the socket did not take yet,
	               * allocated on first need */
	uint32_t buf_head, buf_len;

	char line[VSOCK_LINE_MAX]; /* VC_HELLO: the CONNECT line so far */
	uint8_t line_len;
};

/* ---- what a connection owes and can do (vsock_conn.c, vsock_rx.c) */

/* s5.10.6.3: what the guest can still take */
static inline uint32_t vsock_peer_credit(const struct vsock_conn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd_cnt;
	return used >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - used;
}

/* host bytes can go to the guest now */
static inline bool vsock_data_ready(const struct vsock_conn *c)
{
	return c->state == VC_ESTABLISHED && c->host_readable && !c->host_eof &&
	       !(c->peer_shut & VSOCK_SHUT_RCV) && vsock_peer_credit(c) > 0;
}

/* SHUTDOWN flags the guest should have heard by now: once the host's
 * stream ended, kiln sends no more; once the host closed, it takes no more */
static inline uint32_t vsock_shut_due(const struct vsock_conn *c)
{
	if (!c->host_eof)
		return 0;
	return VSOCK_SHUT_SEND | (c->host_hup ? VSOCK_SHUT_RCV : 0);
}

/* c has a packet for the guest now (it belongs on the rx queue) */
static inline bool vsock_wants_rx(const struct vsock_conn *c)
{
	return !c->dead && c->state != VC_HELLO &&
	       (c->pend || vsock_data_ready(c) || (vsock_shut_due(c) & ~c->shut_sent));
}

struct vsock_rst {
	uint64_t src_cid; /* the address the RST comes from (usually the host) */
	uint32_t src_port, dst_port;
};

struct virtio_vsock {
	struct virtio_dev dev;
	uint32_t guest_cid;
	char uds_path[VIRTIO_VSOCK_UDS_PATH_MAX + 1];

	int listen_fd; /* on uds_path */
	int ep_fd;     /* the device's own epoll: listener, timer, wake, every connection;
	                * itself one fd of dev.io while activated */
	int timer_fd;  /* timerfd for connection deadlines */
	int wake_fd;   /* eventfd: post the reset event (after a restore) */
	bool ep_watched, listen_paused;
	uint64_t timer_at; /* when timer_fd fires, 0: disarmed */

	struct vsock_conn *hash[VSOCK_HASH_SIZE];
	struct vsock_link conns; /* live connections */
	struct vsock_link dead;  /* closed ones, freed after the current batch */
	struct vsock_link rxq;   /* connections with something for the guest, FIFO */
	unsigned nr_conns;
	uint32_t next_local_port;

	struct vsock_rst rst[VSOCK_RST_RING];
	unsigned rst_head, rst_len;
	bool tx_stalled;          /* the tx queue waits for room in rst[] */
	bool reset_event_pending; /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET to post */
	bool rx_pushed, tx_pushed;

	struct virtio_vsock_metrics m; /* written by the I/O thread only */
	struct vq_chain chain;         /* the chain being handled (one at a time) */
	struct iovec iov[VQ_MAX_SIZE]; /* payload view of `chain` */
};

/* ---- vsock.c */
void vsock_count(uint64_t *counter, uint64_t n);
/* writes h as the 44 bytes of s5.10.6 */
void vsock_hdr_encode(uint8_t *b, const struct vsock_hdr *h);
/* posts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET if one is pending and the
 * driver gave an event buffer */
void vsock_post_event(struct virtio_vsock *v);
/* serves the tx queue and the rx queue until neither can progress, then
 * raises the interrupts owed and frees closed connections. I/O thread. */
void vsock_run(struct virtio_vsock *v);

/* ---- vsock_conn.c */
/* a new connection on `fd` (non-blocking) in `state`, watched for `events`;
 * NULL when out of memory (fd is then closed) */
struct vsock_conn *vsock_conn_new(struct virtio_vsock *v, int fd, enum vsock_conn_state state,
                                  uint32_t events);
struct vsock_conn *vsock_conn_find(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port);
void vsock_conn_hash(struct virtio_vsock *v, struct vsock_conn *c);
/* closes the socket and retires c; with `rst` an RST goes to the guest if
 * it knows the connection; `abortive` counts it in conns_reset */
void vsock_conn_close(struct virtio_vsock *v, struct vsock_conn *c, bool rst, bool abortive);
/* frees the connections closed since the last call */
void vsock_conn_reap(struct virtio_vsock *v);
/* recomputes what c owes the guest and what it waits for on its socket */
void vsock_conn_sync(struct virtio_vsock *v, struct vsock_conn *c);
/* only the socket events c waits for */
void vsock_conn_watch(struct virtio_vsock *v, struct vsock_conn *c);
/* dst[] = the bytes [off, off + len) of iovecs src[0 .. n); returns the count */
int vsock_iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
                    struct iovec *dst);
/* queues an RST to the guest; false when the ring is full (dropped) */
bool vsock_rst_queue(struct virtio_vsock *v, uint64_t src_cid, uint32_t src_port,
                     uint32_t dst_port);
/* guest payload for c: `len` bytes at VSOCK_HDR_LEN in v->chain */
void vsock_conn_from_guest(struct virtio_vsock *v, struct vsock_conn *c, uint32_t len);
/* the guest's SHUTDOWN flags for c */
void vsock_conn_guest_shutdown(struct virtio_vsock *v, struct vsock_conn *c, uint32_t flags);
/* epoll events on c's socket */
void vsock_conn_event(struct virtio_vsock *v, struct vsock_conn *c, uint32_t events);

/* ---- vsock_rx.c */
/* fills rx buffers with RSTs and what connections owe the guest */
void vsock_rx_pump(struct virtio_vsock *v);
/* sets c's deadline `ms` from now (0: none) and arms the timer */
void vsock_conn_deadline(struct virtio_vsock *v, struct vsock_conn *c, uint64_t ms);

/* ---- vsock_host.c */
/* listener on v->uds_path (stale socket files removed) and the epoll set */
int vsock_host_open(struct virtio_vsock *v, struct errbuf *e);
/* closes them and removes uds_path */
void vsock_host_close(struct virtio_vsock *v);
/* the iothread callback of ep_fd */
void vsock_host_poll(void *opaque, uint32_t events);
/* the guest's REQUEST h (to host port h->dst_port) with no connection yet:
 * connects to "<uds_path>_<dst_port>"; RST to the guest when that fails */
void vsock_host_connect(struct virtio_vsock *v, const struct vsock_hdr *h);
/* the guest answered RESPONSE to the REQUEST of host-initiated c: "OK <port>\n" */
void vsock_host_accepted(struct virtio_vsock *v, struct vsock_conn *c);
/* VC_HELLO: reads the CONNECT line as far as it came */
void vsock_host_hello(struct virtio_vsock *v, struct vsock_conn *c);
/* listener watched again (after EMFILE or a full table) */
void vsock_host_resume_listen(struct virtio_vsock *v);
/* re-arms timer_fd for the earliest deadline */
void vsock_timer_arm(struct virtio_vsock *v, uint64_t at);

#endif
