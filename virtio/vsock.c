// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/vsock.c: the socket device (virtio 1.2 s5.10) -- its ops table,
 * config space, the guest's packets on the tx queue, the event queue,
 * saved state, create/destroy. Connections live in vsock_conn.c, the host's
 * unix sockets in vsock_host.c.
 *
 * A guest packet is handled whole before its chain goes back: payload is
 * written to the connection's unix socket straight from the chain's
 * buffers, and only what the socket does not take at once is copied into
 * that connection's buffer (bounded by the credit kiln advertised). So the
 * device holds no chain across callbacks, and a full rx queue never stops
 * the tx queue (s5.10.6.1) -- except when the RSTs owed to the guest fill
 * their ring, the "additional resources" the spec lets run out.
 */
#define LOG_MODULE "virtio-vsock"
#include "vsock_int.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define VSOCK_STATE_VERSION 1

void vsock_count(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

/* s5.10.6: struct virtio_vsock_hdr field by field */
static void hdr_decode(struct vsock_hdr *h, const uint8_t *b)
{
	h->src_cid = ld64(b);
	h->dst_cid = ld64(b + 8);
	h->src_port = ld32(b + 16);
	h->dst_port = ld32(b + 20);
	h->len = ld32(b + 24);
	h->type = ld16(b + 28);
	h->op = ld16(b + 30);
	h->flags = ld32(b + 32);
	h->buf_alloc = ld32(b + 36);
	h->fwd_cnt = ld32(b + 40);
}

void vsock_hdr_encode(uint8_t *b, const struct vsock_hdr *h)
{
	uint64_t q;
	uint32_t w;
	uint16_t s;
#define PUT(off, var, val, conv)                                                                   \
	do {                                                                                       \
		var = conv(val);                                                                   \
		memcpy(b + (off), &var, sizeof(var));                                              \
	} while (0)
	PUT(0, q, h->src_cid, htole64);
	PUT(8, q, h->dst_cid, htole64);
	PUT(16, w, h->src_port, htole32);
	PUT(20, w, h->dst_port, htole32);
	PUT(24, w, h->len, htole32);
	PUT(28, s, h->type, htole16);
	PUT(30, s, h->op, htole16);
	PUT(32, w, h->flags, htole32);
	PUT(36, w, h->buf_alloc, htole32);
	PUT(40, w, h->fwd_cnt, htole32);
#undef PUT
}

/* a guest packet kiln refuses; guest-caused, so debug level only */
static void bad_packet(struct virtio_vsock *v, const char *why, const struct vsock_hdr *h)
{
	vsock_count(&v->m.bad_packets, 1);
	if (h)
		log_debug("%s: bad packet (%s): %llu:%u -> %llu:%u op %u type %u len %u", v->dev.id,
		          why, (unsigned long long)h->src_cid, h->src_port,
		          (unsigned long long)h->dst_cid, h->dst_port, h->op, h->type, h->len);
	else
		log_debug("%s: bad packet (%s)", v->dev.id, why);
}

/* a packet for an existing connection c; I/O thread */
static void conn_packet(struct virtio_vsock *v, struct vsock_conn *c, const struct vsock_hdr *h)
{
	/* s5.10.6.3: every packet of a stream carries the sender's buffer state */
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (c->peer_buf_alloc - (c->tx_cnt - c->peer_fwd_cnt) != 0) {
		c->credit_requested = false;
		c->pend &= ~VP_CREDIT_REQUEST; /* not sent yet, and no longer needed */
	}

	switch (h->op) {
	case VSOCK_OP_RST:
		/* s5.10.6.6: the end of a clean disconnect, or an abort */
		vsock_conn_close(v, c, false,
		                 c->shut_sent != VSOCK_SHUT_BOTH &&
		                         c->peer_shut != VSOCK_SHUT_BOTH);
		return;
	case VSOCK_OP_RESPONSE:
		if (c->state != VC_LOCAL_INIT || (c->pend & VP_REQUEST))
			break;
		vsock_host_accepted(v, c);
		return;
	case VSOCK_OP_RW:
		if (c->state != VC_ESTABLISHED)
			break;
		vsock_conn_from_guest(v, c, h->len);
		vsock_conn_sync(v, c);
		return;
	case VSOCK_OP_SHUTDOWN:
		if (c->state != VC_ESTABLISHED)
			break;
		vsock_conn_guest_shutdown(v, c, h->flags);
		vsock_conn_sync(v, c);
		return;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pend |= VP_CREDIT_UPDATE;
		/* fall through */
	case VSOCK_OP_CREDIT_UPDATE:
		vsock_conn_sync(v, c);
		return;
	default: /* REQUEST on a live connection */
		break;
	}
	bad_packet(v, "op not valid in this connection state", h);
	vsock_conn_close(v, c, true, true);
}

/* one guest packet, in v->chain; I/O thread */
static void tx_packet(struct virtio_vsock *v)
{
	const struct vq_chain *ch = &v->chain;
	uint8_t raw[VSOCK_HDR_LEN];
	struct vsock_hdr h;

	if (ch->readable_len < VSOCK_HDR_LEN) {
		bad_packet(v, "chain shorter than a header", NULL);
		return;
	}
	vq_chain_read(ch, 0, raw, sizeof(raw)); /* one copy, then checked */
	hdr_decode(&h, raw);
	vsock_count(&v->m.tx_packets, 1);
	/* s5.10.6.5: the driver MUST use guest_cid as the source; a forged
	 * source gets nothing back */
	if (h.src_cid != v->guest_cid) {
		bad_packet(v, "source is not the guest's CID", &h);
		return;
	}
	struct vsock_conn *c =
	        h.dst_cid == VSOCK_HOST_CID ? vsock_conn_find(v, h.dst_port, h.src_port) : NULL;
	const char *why = NULL;
	if (h.dst_cid != VSOCK_HOST_CID)
		why = "destination is not the host";
	else if (h.type != VSOCK_TYPE_STREAM) /* s5.10.6.5: RST for an unknown type */
		why = "type is not STREAM";
	else if (h.len > ch->readable_len - VSOCK_HDR_LEN)
		why = "len beyond the chain";
	else if (h.op == VSOCK_OP_INVALID || h.op > VSOCK_OP_CREDIT_REQUEST)
		why = "unknown op";
	if (why) {
		bad_packet(v, why, &h);
		if (c)
			vsock_conn_close(v, c, true, true);
		else if (h.op != VSOCK_OP_RST) /* never answer an RST */
			vsock_rst_queue(v, h.dst_cid, h.dst_port, h.src_port);
		return;
	}
	if (c) {
		conn_packet(v, c, &h);
		return;
	}
	if (h.op == VSOCK_OP_REQUEST) {
		vsock_host_connect(v, &h);
	} else if (h.op != VSOCK_OP_RST) {
		/* s5.10.6.6: nothing listens / no such connection */
		vsock_rst_queue(v, VSOCK_HOST_CID, h.dst_port, h.src_port);
	}
}

/* serves the tx queue while an RST could still be queued; I/O thread */
static void tx_process(struct virtio_vsock *v)
{
	v->tx_stalled = false;
	while (v->rst_len < VSOCK_RST_RING) {
		if (virtio_dev_pop(&v->dev, VSOCK_TXQ, &v->chain) != 1)
			return;
		tx_packet(v);
		if (virtio_dev_push(&v->dev, VSOCK_TXQ, v->chain.head, 0) < 0)
			return;
		v->tx_pushed = true;
	}
	v->tx_stalled = true;
}

void vsock_run(struct virtio_vsock *v)
{
	for (;;) {
		tx_process(v);
		vsock_rx_pump(v);
		/* the pump made room for RSTs: the tx queue may go on */
		if (!v->tx_stalled || v->rst_len == VSOCK_RST_RING)
			break;
	}
	if (v->rx_pushed)
		virtio_dev_notify_used(&v->dev, VSOCK_RXQ);
	if (v->tx_pushed)
		virtio_dev_notify_used(&v->dev, VSOCK_TXQ);
	v->rx_pushed = v->tx_pushed = false;
	vsock_conn_reap(v);
}

void vsock_post_event(struct virtio_vsock *v)
{
	struct virtio_dev *d = &v->dev;
	if (!v->reset_event_pending || virtio_dev_pop(d, VSOCK_EVQ, &v->chain) != 1)
		return; /* a buffer added later notifies the event queue */
	/* s5.10.6.7 struct virtio_vsock_event { le32 id; } */
	if (v->chain.writable_len < 4) {
		virtio_dev_fail(d, "event buffer of %llu bytes, too small for an event",
		                (unsigned long long)v->chain.writable_len);
		return;
	}
	uint32_t id = htole32(VSOCK_EVENT_TRANSPORT_RESET);
	vq_chain_write(&v->chain, 0, &id, sizeof(id));
	if (virtio_dev_push(d, VSOCK_EVQ, v->chain.head, sizeof(id)) < 0)
		return;
	v->reset_event_pending = false;
	virtio_dev_notify_used(d, VSOCK_EVQ);
	log_info("%s: transport reset event posted to the guest", d->id);
}

static void vsock_queue_notify(struct virtio_dev *d, uint16_t q)
{
	struct virtio_vsock *v = d->priv;
	if (q == VSOCK_EVQ)
		vsock_post_event(v);
	vsock_run(v);
}

/* s5.10.4 struct virtio_vsock_config { le64 guest_cid; } */
static void vsock_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct virtio_vsock *v = d->priv;
	uint64_t cid = htole64(v->guest_cid); /* upper 32 bits reserved, zero */
	memcpy(data, (const uint8_t *)&cid + off, len);
}

static int vsock_activate(struct virtio_dev *d)
{
	struct virtio_vsock *v = d->priv;
	int ret = iothread_add_fd(d->io, v->ep_fd, EPOLLIN, vsock_host_poll, v);
	if (ret < 0) {
		log_err("%s: cannot watch the device's sockets: %s", d->id, strerror(-ret));
		return ret;
	}
	v->ep_watched = true;
	if (v->reset_event_pending) {
		uint64_t one = 1; /* the I/O thread posts it once it runs again */
		if (write(v->wake_fd, &one, sizeof(one)) < 0)
			log_err("%s: cannot wake the I/O thread: %s", d->id, strerror(errno));
	}
	return 0;
}

/* s2.4: every connection ends (the driver's reset forgets them all) */
static void vsock_reset(struct virtio_dev *d)
{
	struct virtio_vsock *v = d->priv;
	if (v->ep_watched)
		iothread_del_fd(d->io, v->ep_fd);
	v->ep_watched = false;
	while (!vsock_link_empty(&v->conns))
		vsock_conn_close(v, VSOCK_CONN_OF(v->conns.next, all), false, false);
	vsock_conn_reap(v);
	v->rst_head = v->rst_len = 0;
	v->tx_stalled = v->reset_event_pending = false;
	v->rx_pushed = v->tx_pushed = false;
	vsock_timer_arm(v, 0);
	uint64_t n;
	if (read(v->wake_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing was pending */
	}
	if (v->listen_paused)
		vsock_host_resume_listen(v);
}

static void vsock_save(struct virtio_dev *d, struct state_writer *w)
{
	struct virtio_vsock *v = d->priv;
	sw_u32(w, v->guest_cid);
}

static int vsock_restore(struct virtio_dev *d, struct state_reader *r, uint16_t version,
                         struct errbuf *e)
{
	struct virtio_vsock *v = d->priv;
	(void)version; /* only version 1 exists; the transport checked the range */
	uint32_t cid = sr_u32(r);
	if (sr_error(r))
		return errf(e, EINVAL, "snapshot: %s section is truncated", d->id);
	if (sr_left(r))
		return errf(e, EINVAL, "snapshot: virtio-vsock %s: %zu bytes too many", d->id,
		            sr_left(r));
	if (cid != v->guest_cid)
		log_info("%s: guest CID %u in the snapshot, %u now; the guest re-reads it", d->id,
		         cid, v->guest_cid);
	/* connections were not saved: tell a running driver so (s5.10.6.7) */
	if (__atomic_load_n(&d->transport->status, __ATOMIC_ACQUIRE) & VIRTIO_STATUS_DRIVER_OK)
		v->reset_event_pending = true;
	return 0;
}

static const struct virtio_dev_ops vsock_ops = {
        .name = "virtio-vsock",
        .device_id = VIRTIO_ID_VSOCK,
        .nr_queues = 3,
        .queue_max_size = VIRTIO_VSOCK_QUEUE_SIZE,
        .config_size = 8,
        .config_read = vsock_config_read,
        .activate = vsock_activate,
        .reset = vsock_reset,
        .queue_notify = vsock_queue_notify,
        .state_version = VSOCK_STATE_VERSION,
        .state_min_version = VSOCK_STATE_VERSION,
        .save = vsock_save,
        .restore = vsock_restore,
};

int virtio_vsock_create(struct virtio_vsock **out, const struct virtio_vsock_params *p,
                        struct errbuf *e)
{
	*out = NULL;
	if (!p)
		return errf(e, EINVAL, "vsock: no parameters");
	const char *id = p->id ? p->id : "vsock";
	size_t n = strlen(id);
	if (n == 0 || n > VIRTIO_ID_MAX)
		return errf(e, EINVAL, "vsock id must be 1 to %d characters", VIRTIO_ID_MAX);
	/*
	 * s5.10.4: 0, 1, 2 and 0xffffffff are reserved. Firecracker takes any
	 * value, and firecracker-containerd sends 0 (its agent is reached
	 * through uds_path, where the CID plays no part): taken, with a word.
	 */
	if (p->guest_cid < 3 || p->guest_cid == UINT32_MAX)
		log_warn("%s: guest_cid %u is reserved (virtio 1.2 s5.10.4); the guest may not "
		         "reach the host by CID",
		         id, p->guest_cid);
	if (!p->uds_path || !p->uds_path[0])
		return errf(e, EINVAL, "vsock uds_path is required");
	if (strlen(p->uds_path) > VIRTIO_VSOCK_UDS_PATH_MAX)
		return errf(e, ENAMETOOLONG,
		            "vsock uds_path is longer than %d characters (it and \"_<port>\" must "
		            "fit a unix socket address)",
		            VIRTIO_VSOCK_UDS_PATH_MAX);

	struct virtio_vsock *v = calloc(1, sizeof(*v));
	if (!v)
		return errf(e, ENOMEM, "out of memory for the vsock device");
	v->guest_cid = p->guest_cid;
	strcpy(v->uds_path, p->uds_path);
	v->listen_fd = v->ep_fd = v->timer_fd = v->wake_fd = -1;
	vsock_link_init(&v->conns);
	vsock_link_init(&v->dead);
	vsock_link_init(&v->rxq);
	v->next_local_port = VSOCK_LOCAL_PORT_BASE;
	int ret = vsock_host_open(v, e);
	if (ret < 0) {
		free(v);
		return ret;
	}
	v->dev.ops = &vsock_ops;
	memcpy(v->dev.id, id, n + 1);
	v->dev.features = VIRTIO_BIT(VIRTIO_VSOCK_F_STREAM); /* s5.10.3 */
	v->dev.priv = v;
	*out = v;
	return 0;
}

struct virtio_dev *virtio_vsock_dev(struct virtio_vsock *v)
{
	return &v->dev;
}

uint32_t virtio_vsock_guest_cid(const struct virtio_vsock *v)
{
	return v->guest_cid;
}

const char *virtio_vsock_uds_path(const struct virtio_vsock *v)
{
	return v->uds_path;
}

void virtio_vsock_metrics(const struct virtio_vsock *v, struct virtio_vsock_metrics *out)
{
	const struct virtio_vsock_metrics *m = &v->m;
	out->rx_packets = __atomic_load_n(&m->rx_packets, __ATOMIC_RELAXED);
	out->tx_packets = __atomic_load_n(&m->tx_packets, __ATOMIC_RELAXED);
	out->rx_bytes = __atomic_load_n(&m->rx_bytes, __ATOMIC_RELAXED);
	out->tx_bytes = __atomic_load_n(&m->tx_bytes, __ATOMIC_RELAXED);
	out->conns_opened = __atomic_load_n(&m->conns_opened, __ATOMIC_RELAXED);
	out->conns_reset = __atomic_load_n(&m->conns_reset, __ATOMIC_RELAXED);
	out->bad_packets = __atomic_load_n(&m->bad_packets, __ATOMIC_RELAXED);
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	while (!vsock_link_empty(&v->conns))
		vsock_conn_close(v, VSOCK_CONN_OF(v->conns.next, all), false, false);
	vsock_conn_reap(v);
	vsock_host_close(v);
	free(v);
}
