// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/net_setup.c: the network device's life cycle -- creation on a tap,
 * feature offer, config space (virtio 1.2 s5.1.4), activation with the
 * tap's offloads set to what the driver negotiated, reset, saved state and
 * the run-time limiter updates. The data path is in net.c.
 */
#define LOG_MODULE "virtio-net"
#include "net_int.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define NET_STATE_VERSION 1

/* s5.1.4: mac, status, max_virtqueue_pairs = 1 (no VIRTIO_NET_F_MQ), mtu */
static void net_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct virtio_net *n = d->priv;
	uint8_t cfg[VIRTIO_NET_CONFIG_SIZE];
	uint16_t st = __atomic_load_n(&n->status, __ATOMIC_SEQ_CST);

	memcpy(cfg, n->mac, 6);
	cfg[6] = (uint8_t)st;
	cfg[7] = (uint8_t)(st >> 8);
	cfg[8] = 1;
	cfg[9] = 0;
	cfg[10] = (uint8_t)n->mtu; /* little-endian (s2.5: virtio 1 config fields) */
	cfg[11] = (uint8_t)(n->mtu >> 8);
	memcpy(data, cfg + off, len); /* the transport checked off + len <= config_size */
}

/*
 * The guest offloads the driver took become the tap's (TUNSETOFFLOAD), so
 * the tap never hands over a frame the driver cannot take (s5.1.6.4.1).
 * s5.1.3.1: they all need GUEST_CSUM.
 */
static unsigned net_guest_offloads(struct virtio_net *n, uint64_t f)
{
	unsigned off = 0;

	n->rx_gso_ok = 1u << VIRTIO_NET_HDR_GSO_NONE;
	if (!(f & NET_F(GUEST_CSUM)))
		return 0;
	off |= TUN_F_CSUM;
	if (f & NET_F(GUEST_TSO4)) {
		off |= TUN_F_TSO4;
		n->rx_gso_ok |= 1u << VIRTIO_NET_HDR_GSO_TCPV4;
	}
	if (f & NET_F(GUEST_TSO6)) {
		off |= TUN_F_TSO6;
		n->rx_gso_ok |= 1u << VIRTIO_NET_HDR_GSO_TCPV6;
	}
	if (f & NET_F(GUEST_UFO)) {
		off |= TUN_F_UFO;
		n->rx_gso_ok |= 1u << VIRTIO_NET_HDR_GSO_UDP;
	}
	return off & n->tap.offloads;
}

static void net_unwatch(struct virtio_net *n)
{
	struct iothread *io = n->dev.io;

	if (n->tap_watched)
		iothread_del_fd(io, n->tap_fd);
	if (n->timers_watched) {
		iothread_del_fd(io, rl_timer_fd(&n->rl_rx));
		iothread_del_fd(io, rl_timer_fd(&n->rl_tx));
	}
	n->tap_watched = n->timers_watched = false;
	n->tap_events = 0;
	net_mmds_unwatch(n);
}

static int net_activate(struct virtio_dev *d)
{
	struct virtio_net *n = d->priv;
	uint64_t f = d->driver_features;
	int r;

	n->mrg = f & NET_F(MRG_RXBUF);
	n->guest_csum = f & NET_F(GUEST_CSUM);
	unsigned off = net_guest_offloads(n, f);
	/* s5.1.6.3: the largest frame the tap can hand over now */
	n->rx_target = NET_HDR_LEN + ((off & (TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO))
	                                      ? VIRTIO_NET_MAX_FRAME
	                                      : n->tap.mtu + NET_ETH_HLEN + NET_VLAN_HLEN);
	if (n->rx_target > NET_HDR_LEN + VIRTIO_NET_MAX_FRAME)
		n->rx_target = NET_HDR_LEN + VIRTIO_NET_MAX_FRAME;
	if (!n->tap_gone && (r = tap_set_offload(n->tap_fd, off)) < 0)
		net_tap_gone(n, "TUNSETOFFLOAD", r);

	r = iothread_add_fd(d->io, rl_timer_fd(&n->rl_rx), EPOLLIN, net_rx_timer, n);
	if (r == 0) {
		r = iothread_add_fd(d->io, rl_timer_fd(&n->rl_tx), EPOLLIN, net_tx_timer, n);
		if (r < 0)
			iothread_del_fd(d->io, rl_timer_fd(&n->rl_rx));
	}
	if (r < 0)
		goto err;
	n->timers_watched = true;
	if ((r = net_mmds_watch(n)) < 0)
		goto err;
	if (!n->tap_gone) {
		r = iothread_add_fd(d->io, n->tap_fd, EPOLLIN, net_tap_event, n);
		if (r < 0)
			goto err;
		n->tap_watched = true;
		n->tap_events = EPOLLIN;
	}
	return 0;

err:
	log_err("%s: cannot watch the tap or the rate limiters' timers: %s", d->id, strerror(-r));
	net_unwatch(n);
	return r;
}

/* s2.4: forget the buffers held and the frame in them; the limiters keep their state */
static void net_reset(struct virtio_dev *d)
{
	struct virtio_net *n = d->priv;

	net_unwatch(n);
	if (n->mmds)
		mmds_ns_reset(n->mmds);
	n->rx_nr = n->rx_iov_nr = 0;
	n->rx_cap = 0;
	n->rx_held = n->rx_spilled = false;
	n->tx_wait_out = false;
}

/*
 * Version 1: u16 receive buffers held (taken from the ring, not used),
 * then the RX and the TX limiter (rl_save).
 */
static void net_save(struct virtio_dev *d, struct state_writer *w)
{
	struct virtio_net *n = d->priv;

	sw_u16(w, (uint16_t)n->rx_nr);
	rl_save(&n->rl_rx, w);
	rl_save(&n->rl_tx, w);
}

/*
 * Runs after the transport restored the queues' indices, before activate:
 * the held buffers go back to the ring (they were the last ones taken, the
 * ring is in order), the frame one of them held is lost.
 */
static int net_restore(struct virtio_dev *d, struct state_reader *r, uint16_t version,
                       struct errbuf *e)
{
	struct virtio_net *n = d->priv;
	struct virtq *vq = &d->vq[VIRTIO_NET_RXQ];
	(void)version; /* only version 1 exists; the transport checked the range */

	uint16_t held = sr_u16(r);
	uint16_t outstanding = (uint16_t)(vq->last_avail_idx - vq->used_idx);
	if (sr_error(r))
		return errf(e, EINVAL, "snapshot: virtio-net %s: truncated state", d->id);
	if (held > outstanding || held > vq->size)
		return errf(e, EINVAL,
		            "snapshot: virtio-net %s: %u receive buffers held, but only %u taken "
		            "from a ring of %u",
		            d->id, held, outstanding, vq->size);
	int ret = rl_restore(&n->rl_rx, r, e);
	if (ret == 0)
		ret = rl_restore(&n->rl_tx, r, e);
	if (ret < 0)
		return ret;
	if (sr_left(r))
		return errf(e, EINVAL, "snapshot: virtio-net %s: %zu bytes too many", d->id,
		            sr_left(r));
	vq->last_avail_idx = (uint16_t)(vq->last_avail_idx - held);
	return 0;
}

static const struct virtio_dev_ops net_ops = {
        .name = "virtio-net",
        .device_id = VIRTIO_ID_NET,
        .nr_queues = 2, /* s5.1.2: receiveq1, transmitq1; no control queue */
        .queue_max_size = VIRTIO_NET_QUEUE_SIZE,
        .config_size = VIRTIO_NET_CONFIG_SIZE,
        .config_read = net_config_read,
        .activate = net_activate,
        .reset = net_reset,
        .queue_notify = net_queue_notify,
        .state_version = NET_STATE_VERSION,
        .state_min_version = NET_STATE_VERSION,
        .save = net_save,
        .restore = net_restore,
};

/* s5.1.3: what the tap lets the device honour; s5.1.3.1 dependencies kept */
static uint64_t net_features(const struct virtio_net *n, bool has_mac)
{
	/* s5.1.3: MTU is "the maximum MTU for the driver to use"; a guest
	 * driver then sets its interface to it (Firecracker's NetworkInterface.mtu) */
	/* the tap takes partial checksums and TSO frames from us (virtio_net_hdr) */
	uint64_t f = NET_F(MRG_RXBUF) | NET_F(STATUS) | NET_F(CSUM) | NET_F(HOST_TSO4) |
	             NET_F(HOST_TSO6);
	unsigned off = n->tap.offloads;

	if (has_mac)
		f |= NET_F(MAC);
	if (n->mtu)
		f |= NET_F(MTU);
	if (off & TUN_F_CSUM)
		f |= NET_F(GUEST_CSUM);
	if (off & TUN_F_TSO4)
		f |= NET_F(GUEST_TSO4);
	if (off & TUN_F_TSO6)
		f |= NET_F(GUEST_TSO6);
	/* kernels that refuse TUN_F_UFO (4.14) also refuse UFO frames from us */
	if (off & TUN_F_UFO)
		f |= NET_F(GUEST_UFO) | NET_F(HOST_UFO);
	return f;
}

/* rl_init with the limiter's name in front of a message */
static int net_rl_init(struct rate_limiter *rl, const char *what, const struct rl_bucket_cfg *bw,
                       const struct rl_bucket_cfg *ops, const struct rl_clock *clock,
                       struct errbuf *e)
{
	struct errbuf sub = {{0}};
	int r = rl_init(rl, bw, ops, clock, &sub);
	return r < 0 ? errf(e, -r, "%s: %s", what, sub.msg) : 0;
}

int virtio_net_create(struct virtio_net **out, const struct virtio_net_params *p, struct errbuf *e)
{
	size_t idlen = p && p->id ? strlen(p->id) : 0;
	int ret;

	if (idlen == 0 || idlen > VIRTIO_ID_MAX)
		return errf(e, EINVAL, "network interface id must be 1 to %d characters",
		            VIRTIO_ID_MAX);
	if (p->mtu && (p->mtu < 68 || p->mtu > 65535))
		return errf(e, EINVAL, "%s: mtu %u is not in 68..65535", p->id, p->mtu);
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n)
		return errf(e, ENOMEM, "out of memory for network interface %s", p->id);
	ret = net_rl_init(&n->rl_rx, "rx_rate_limiter", p->rx_bw, p->rx_ops, p->clock, e);
	if (ret < 0)
		goto err_free;
	ret = net_rl_init(&n->rl_tx, "tx_rate_limiter", p->tx_bw, p->tx_ops, p->clock, e);
	if (ret < 0)
		goto err_rx;
	ret = net_mmds_create(n, p, e);
	if (ret < 0)
		goto err_tx;
	ret = tap_open(p->tap_name, &n->tap_fd, &n->tap, e);
	if (ret < 0)
		goto err_mmds;
	snprintf(n->tap_name, sizeof(n->tap_name), "%s", p->tap_name);
	if (p->mac)
		memcpy(n->mac, p->mac, 6);
	n->mtu = (uint16_t)p->mtu;
	n->status = VIRTIO_NET_S_LINK_UP;
	pthread_mutex_init(&n->cfg_lock, NULL);
	n->dev.ops = &net_ops;
	memcpy(n->dev.id, p->id, idlen + 1);
	n->dev.features = net_features(n, p->mac != NULL);
	n->dev.priv = n;
	log_info("%s: tap %s, mtu %u, tap offloads 0x%x, features 0x%llx%s", p->id, n->tap_name,
	         n->tap.mtu, n->tap.offloads, (unsigned long long)n->dev.features,
	         n->mmds ? ", MMDS" : "");
	*out = n;
	return 0;

err_mmds:
	net_mmds_destroy(n);
err_tx:
	rl_destroy(&n->rl_tx);
err_rx:
	rl_destroy(&n->rl_rx);
err_free:
	free(n);
	return ret;
}

struct virtio_dev *virtio_net_dev(struct virtio_net *n)
{
	return &n->dev;
}

int virtio_net_update(struct virtio_net *n, bool rx, const struct rl_bucket_cfg *rx_bw,
                      const struct rl_bucket_cfg *rx_ops, bool tx,
                      const struct rl_bucket_cfg *tx_bw, const struct rl_bucket_cfg *tx_ops,
                      struct errbuf *e)
{
	/* validate both on scratch limiters (no timer is touched) before changing either */
	struct rate_limiter probe = {.timer_fd = -1};
	struct errbuf sub = {{0}};
	int r;

	if (rx && (r = rl_update(&probe, rx_bw, rx_ops, &sub)) < 0)
		return errf(e, -r, "rx_rate_limiter: %s", sub.msg);
	if (tx && (r = rl_update(&probe, tx_bw, tx_ops, &sub)) < 0)
		return errf(e, -r, "tx_rate_limiter: %s", sub.msg);
	struct iothread *io = n->dev.io;
	bool paused = io && !iothread_is_current(io) && iothread_pause(io) == 0;
	pthread_mutex_lock(&n->cfg_lock);
	if (rx)
		rl_update(&n->rl_rx, rx_bw, rx_ops, NULL);
	if (tx)
		rl_update(&n->rl_tx, tx_bw, tx_ops, NULL);
	pthread_mutex_unlock(&n->cfg_lock);
	if (paused)
		iothread_resume(io);
	return 0;
}

void virtio_net_limiter_cfg(const struct virtio_net *n, struct rl_bucket_cfg *rx_bw,
                            struct rl_bucket_cfg *rx_ops, struct rl_bucket_cfg *tx_bw,
                            struct rl_bucket_cfg *tx_ops)
{
	pthread_mutex_t *lock = (pthread_mutex_t *)&n->cfg_lock; /* taken, not changed */

	pthread_mutex_lock(lock);
	rl_get_cfg(&n->rl_rx, RL_BYTES, rx_bw);
	rl_get_cfg(&n->rl_rx, RL_OPS, rx_ops);
	rl_get_cfg(&n->rl_tx, RL_BYTES, tx_bw);
	rl_get_cfg(&n->rl_tx, RL_OPS, tx_ops);
	pthread_mutex_unlock(lock);
}

void virtio_net_metrics(const struct virtio_net *n, struct virtio_net_metrics *out)
{
#define NET_LOAD(f) out->f = __atomic_load_n(&n->m.f, __ATOMIC_RELAXED)
	NET_LOAD(rx_packets);
	NET_LOAD(rx_bytes);
	NET_LOAD(tx_packets);
	NET_LOAD(tx_bytes);
	NET_LOAD(rx_dropped);
	NET_LOAD(tx_dropped);
	NET_LOAD(rx_throttled);
	NET_LOAD(tx_throttled);
	NET_LOAD(tap_errors);
#undef NET_LOAD
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	close(n->tap_fd);
	net_mmds_destroy(n);
	rl_destroy(&n->rl_rx);
	rl_destroy(&n->rl_tx);
	pthread_mutex_destroy(&n->cfg_lock);
	free(n);
}
