// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/vsock_conn.c: vsock connections -- the table, their state and
 * sockets, guest payload to the host with credit-based flow control
 * (virtio 1.2 s5.10.6.3) and teardown (s5.10.6.6). What goes to the guest
 * is written by vsock_rx.c.
 *
 * Flow control, kiln as sender (host -> guest): at most
 * peer_buf_alloc - (tx_cnt - peer_fwd_cnt) bytes are ever read from the
 * unix socket for the guest, straight into the rx chain's buffers; what the
 * guest has no room or no buffer for stays in the socket, so nothing is
 * lost and a stalled guest stalls its host writer.
 * Kiln as receiver (guest -> host): it advertises VIRTIO_VSOCK_CONN_BUF
 * bytes per connection. Guest payload goes to the socket from the chain;
 * what the socket refuses is copied to the connection's buffer, which can
 * never overflow because a guest sending beyond its credit is reset. fwd_cnt
 * counts bytes the socket took; CREDIT_UPDATE tells the guest once it has
 * used half of its credit and a useful part of that was forwarded.
 *
 * A socket is watched for EPOLLIN only until it is known readable (then
 * the rx pump reads it as credit and buffers allow, and watches again once
 * it would block), for EPOLLOUT only while buffered bytes wait: no event
 * fires that the I/O thread cannot act on. A closed connection is freed at
 * the end of the I/O thread's callback, so that later events of the same
 * epoll batch never see freed memory.
 */
#define LOG_MODULE "virtio-vsock"
#include "vsock_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF VIRTIO_VSOCK_CONN_BUF

/* ------------------------------------------------------------ the table */

static unsigned bucket(uint32_t local_port, uint32_t peer_port)
{
	uint32_t h = local_port * 0x9e3779b1u ^ peer_port * 0x85ebca6bu;
	return (h ^ h >> 16) & (VSOCK_HASH_SIZE - 1);
}

struct vsock_conn *vsock_conn_find(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port)
{
	struct vsock_conn *c = v->hash[bucket(local_port, peer_port)];
	while (c && (c->local_port != local_port || c->peer_port != peer_port))
		c = c->hnext;
	return c;
}

void vsock_conn_hash(struct virtio_vsock *v, struct vsock_conn *c)
{
	struct vsock_conn **b = &v->hash[bucket(c->local_port, c->peer_port)];
	c->hnext = *b;
	*b = c;
	c->hashed = true;
}

static void conn_unhash(struct virtio_vsock *v, struct vsock_conn *c)
{
	struct vsock_conn **p = &v->hash[bucket(c->local_port, c->peer_port)];
	while (*p != c)
		p = &(*p)->hnext;
	*p = c->hnext;
	c->hashed = false;
}

static int ep_set(struct virtio_vsock *v, struct vsock_conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	if (epoll_ctl(v->ep_fd, c->in_ep ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0)
		return -errno;
	c->in_ep = true;
	c->events = events;
	return 0;
}

static void ep_del(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->in_ep)
		epoll_ctl(v->ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
	c->in_ep = false;
}

struct vsock_conn *vsock_conn_new(struct virtio_vsock *v, int fd, enum vsock_conn_state state,
                                  uint32_t events)
{
	struct vsock_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		log_err("%s: out of memory for a connection", v->dev.id);
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->state = state;
	vsock_link_init(&c->rxq);
	vsock_link_add_tail(&v->conns, &c->all);
	v->nr_conns++;
	int ret = ep_set(v, c, events);
	if (ret < 0) {
		log_err("%s: cannot watch a connection's socket: %s", v->dev.id, strerror(-ret));
		vsock_conn_close(v, c, false, false);
		return NULL;
	}
	return c;
}

bool vsock_rst_queue(struct virtio_vsock *v, uint64_t src_cid, uint32_t src_port, uint32_t dst_port)
{
	if (v->rst_len == VSOCK_RST_RING) {
		log_debug("%s: RST ring full, RST %u -> %u dropped", v->dev.id, src_port, dst_port);
		return false;
	}
	struct vsock_rst *r = &v->rst[(v->rst_head + v->rst_len++) % VSOCK_RST_RING];
	r->src_cid = src_cid;
	r->src_port = src_port;
	r->dst_port = dst_port;
	return true;
}

void vsock_conn_close(struct virtio_vsock *v, struct vsock_conn *c, bool rst, bool abortive)
{
	if (c->dead)
		return;
	if (rst && c->guest_knows)
		vsock_rst_queue(v, VSOCK_HOST_CID, c->local_port, c->peer_port);
	if (abortive)
		vsock_count(&v->m.conns_reset, 1);
	if (c->hashed)
		conn_unhash(v, c);
	if (c->on_rxq)
		vsock_link_del(&c->rxq);
	c->on_rxq = false;
	ep_del(v, c);
	close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	vsock_link_del(&c->all);
	vsock_link_add_tail(&v->dead, &c->all);
	c->dead = true;
	v->nr_conns--;
	if (v->listen_paused)
		vsock_host_resume_listen(v);
}

void vsock_conn_reap(struct virtio_vsock *v)
{
	while (!vsock_link_empty(&v->dead)) {
		struct vsock_conn *c = VSOCK_CONN_OF(v->dead.next, all);
		vsock_link_del(&c->all);
		free(c);
	}
}

void vsock_conn_deadline(struct virtio_vsock *v, struct vsock_conn *c, uint64_t ms)
{
	c->deadline = ms ? now_ns() + ms * 1000000 : 0;
	if (c->deadline && (!v->timer_at || c->deadline < v->timer_at))
		vsock_timer_arm(v, c->deadline);
}

/* ------------------------------------------------------- state */

/* the guest has used half its credit and enough of that was forwarded */
static bool credit_update_due(const struct vsock_conn *c)
{
	uint32_t unseen = c->fwd_cnt - c->last_fwd_sent;
	uint32_t used_as_seen = c->rx_cnt - c->last_fwd_sent;
	if (!unseen || (c->peer_shut & VSOCK_SHUT_SEND))
		return false;
	return used_as_seen >= BUF / 2 && (unseen >= BUF / 8 || c->fwd_cnt == c->rx_cnt);
}

/*
 * The guest has no room and the socket was readable: ask for credit
 * (s5.10.6.3) if host bytes really wait, rather than on a guess; an EOF
 * needs no credit to be told.
 */
static void out_of_credit(struct virtio_vsock *v, struct vsock_conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0) {
		c->pend |= VP_CREDIT_REQUEST;
		c->credit_requested = true;
	} else if (n == 0) {
		c->host_eof = true;
		c->host_readable = false;
	} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->host_readable = false;
	} else if (errno != EINTR) {
		log_debug("%s: host port %u: %s; reset", v->dev.id, c->local_port, strerror(errno));
		vsock_conn_close(v, c, true, true);
	}
}

void vsock_conn_watch(struct virtio_vsock *v, struct vsock_conn *c)
{
	uint32_t want = 0;
	if (c->dead || !c->in_ep)
		return;
	if (c->state == VC_HELLO) {
		want = EPOLLIN;
	} else if (c->state == VC_ESTABLISHED) {
		if (!c->host_readable && !c->host_eof && !(c->peer_shut & VSOCK_SHUT_RCV))
			want |= EPOLLIN;
		if (c->buf_len)
			want |= EPOLLOUT;
	}
	if (want != c->events) {
		int ret = ep_set(v, c, want);
		if (ret < 0) {
			log_err("%s: epoll_ctl on a connection: %s; it is reset", v->dev.id,
			        strerror(-ret));
			vsock_conn_close(v, c, true, true);
		}
	}
}

void vsock_conn_sync(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->dead)
		return;
	if (c->state == VC_ESTABLISHED) {
		if (c->host_readable && !c->host_eof && !(c->peer_shut & VSOCK_SHUT_RCV) &&
		    vsock_peer_credit(c) == 0 && !c->credit_requested)
			out_of_credit(v, c);
		if (c->dead)
			return;
		if (credit_update_due(c))
			c->pend |= VP_CREDIT_UPDATE;
	}
	vsock_conn_watch(v, c);
	if (vsock_wants_rx(c) && !c->on_rxq) {
		vsock_link_add_tail(&v->rxq, &c->rxq);
		c->on_rxq = true;
	}
}

/* ------------------------------------------------------- guest -> host */

int vsock_iov_slice(const struct iovec *src, unsigned n, uint64_t off, uint64_t len,
                    struct iovec *dst)
{
	int k = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= src[i].iov_len) {
			off -= src[i].iov_len;
			continue;
		}
		size_t take = src[i].iov_len - off;
		if (take > len)
			take = len;
		dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[k++].iov_len = take;
		len -= take;
		off = 0;
	}
	return k;
}

/* sendmsg without SIGPIPE; bytes taken (0 when it would block) or -errno */
static ssize_t sock_send(int fd, struct iovec *iov, int n)
{
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	ssize_t r;
	do
		r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	return r;
}

/* copies len bytes at `off` of the chain's readable part into c's buffer */
static int buf_append(struct virtio_vsock *v, struct vsock_conn *c, uint64_t off, uint32_t len)
{
	if (!c->buf && !(c->buf = malloc(BUF)))
		return -ENOMEM;
	uint32_t tail = (c->buf_head + c->buf_len) % BUF;
	uint32_t first = len < BUF - tail ? len : BUF - tail;
	vq_chain_read(&v->chain, off, c->buf + tail, first);
	vq_chain_read(&v->chain, off + first, c->buf, len - first);
	c->buf_len += len;
	return 0;
}

/* writes c's buffer to the socket as far as it goes; 0 / -errno */
static int buf_flush(struct vsock_conn *c)
{
	while (c->buf_len) {
		uint32_t first = c->buf_len < BUF - c->buf_head ? c->buf_len : BUF - c->buf_head;
		struct iovec iov[2] = {{c->buf + c->buf_head, first}, {c->buf, c->buf_len - first}};
		ssize_t n = sock_send(c->fd, iov, iov[1].iov_len ? 2 : 1);
		if (n <= 0)
			return (int)n;
		c->buf_head = (c->buf_head + (uint32_t)n) % BUF;
		c->buf_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	return 0;
}

/* once the buffer is empty: the half-close or the clean end the guest asked for */
static void after_drain(struct virtio_vsock *v, struct vsock_conn *c)
{
	if (c->dead || c->buf_len)
		return;
	if ((c->peer_shut & VSOCK_SHUT_SEND) && !c->shut_wr_done) {
		shutdown(c->fd, SHUT_WR); /* the host reads EOF */
		c->shut_wr_done = true;
	}
	/* s5.10.6.6: SHUTDOWN both ways is answered by RST */
	if (c->peer_shut == VSOCK_SHUT_BOTH)
		vsock_conn_close(v, c, true, false);
}

void vsock_conn_from_guest(struct virtio_vsock *v, struct vsock_conn *c, uint32_t len)
{
	vsock_count(&v->m.tx_bytes, len);
	if (!len)
		return;
	const char *why = NULL;
	if (c->peer_shut & VSOCK_SHUT_SEND)
		why = "data after SHUTDOWN(SEND)";
	else if ((uint64_t)(c->rx_cnt - c->fwd_cnt) + len > BUF)
		why = "data beyond the credit kiln gave";
	if (why) {
		vsock_count(&v->m.bad_packets, 1);
		log_debug("%s: %u -> %u: %s; reset", v->dev.id, c->peer_port, c->local_port, why);
		vsock_conn_close(v, c, true, true);
		return;
	}
	if (c->host_hup) { /* the host is gone: nowhere to put it */
		vsock_conn_close(v, c, true, true);
		return;
	}
	c->rx_cnt += len;
	uint32_t done = 0;
	if (!c->buf_len) { /* straight from guest memory to the socket: the only copy */
		int n = vsock_iov_slice(v->chain.iov, v->chain.nr_readable, VSOCK_HDR_LEN, len,
		                        v->iov);
		ssize_t w = sock_send(c->fd, v->iov, n);
		if (w < 0) {
			log_debug("%s: write to host port %u: %s; reset", v->dev.id, c->local_port,
			          strerror((int)-w));
			vsock_conn_close(v, c, true, true);
			return;
		}
		done = (uint32_t)w;
		c->fwd_cnt += done;
	}
	if (done < len && buf_append(v, c, VSOCK_HDR_LEN + done, len - done) < 0) {
		log_err("%s: out of memory for a connection buffer; reset", v->dev.id);
		vsock_conn_close(v, c, true, true);
	}
}

void vsock_conn_guest_shutdown(struct virtio_vsock *v, struct vsock_conn *c, uint32_t flags)
{
	/* s5.10.6.6: the hints are permanent; other bits are ignored */
	c->peer_shut |= flags & VSOCK_SHUT_BOTH;
	if ((c->peer_shut & VSOCK_SHUT_RCV) && !c->shut_rd_done) {
		shutdown(c->fd, SHUT_RD); /* the host's writes now fail with EPIPE */
		c->shut_rd_done = true;
	}
	if (c->peer_shut == VSOCK_SHUT_BOTH && c->buf_len) {
		if (c->host_hup) { /* nobody will read what is left */
			vsock_conn_close(v, c, true, true);
			return;
		}
		vsock_conn_deadline(v, c, VIRTIO_VSOCK_SHUTDOWN_TIMEOUT_MS);
	}
	after_drain(v, c);
}

void vsock_conn_event(struct virtio_vsock *v, struct vsock_conn *c, uint32_t events)
{
	if (c->dead)
		return;
	if (c->state == VC_HELLO) {
		vsock_host_hello(v, c);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR)) {
		/* reported whatever the interest: stop watching, drain what is left */
		c->host_hup = true;
		ep_del(v, c);
		if (!c->host_eof)
			c->host_readable = true;
	}
	if (events & EPOLLIN)
		c->host_readable = true;
	if (c->state == VC_LOCAL_INIT) {
		if (c->host_hup) /* the host gave up before the guest answered */
			vsock_conn_close(v, c, true, true);
		return;
	}
	if ((events & EPOLLOUT) || (c->host_hup && c->buf_len)) {
		int ret = buf_flush(c);
		if (ret < 0 || (c->host_hup && c->buf_len)) {
			log_debug("%s: host port %u: %s; reset", v->dev.id, c->local_port,
			          ret < 0 ? strerror(-ret) : "closed with data unread");
			vsock_conn_close(v, c, true, true);
			return;
		}
		after_drain(v, c);
	}
	vsock_conn_sync(v, c);
}
