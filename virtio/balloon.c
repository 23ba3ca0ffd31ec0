// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/balloon.c: the balloon device (virtio 1.2 s5.5) -- its features
 * and config space, activation (which numbers the optional queues from the
 * negotiated features) and reset, saved state, and the calls the VMM makes
 * for the API: target size, statistics interval, statistics, hinting.
 * The queues themselves are served in balloon_queue.c.
 */
#define LOG_MODULE "virtio-balloon"
#include "balloon_int.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define BALLOON_STATE_VERSION 1
/* s5.5.4 struct virtio_balloon_config: num_pages, actual, free_page_hint_cmd_id, poison_val */
#define CFG_NUM_PAGES  0
#define CFG_ACTUAL     4
#define CFG_CMD_ID     8
#define CFG_POISON_VAL 12
#define CFG_SIZE       16

#define MIB_PAGES (MIB(1) >> VIRTIO_BALLOON_PFN_SHIFT)

static uint32_t ld32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void st32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* ----------------------------------------------------------- config space */

static void config_bytes(struct virtio_balloon *b, uint8_t out[CFG_SIZE])
{
	uint32_t v[4] = {htole32(ld32(&b->num_pages)), htole32(ld32(&b->actual)),
	                 htole32(ld32(&b->cmd_id)), htole32(ld32(&b->poison_val))};
	memcpy(out, v, CFG_SIZE);
}

static void balloon_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	uint8_t cfg[CFG_SIZE];
	config_bytes(d->priv, cfg);
	memcpy(data, cfg + off, len); /* the transport checked off + len <= CFG_SIZE */
}

/* s5.5.4: the driver writes `actual` (and poison_val); the rest is read-only to it */
static void balloon_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	struct virtio_balloon *b = d->priv;
	uint8_t cfg[CFG_SIZE];
	uint32_t v;

	config_bytes(b, cfg);
	memcpy(cfg + off, data, len);
	if (off < CFG_ACTUAL + 4 && off + len > CFG_ACTUAL) {
		memcpy(&v, cfg + CFG_ACTUAL, 4);
		st32(&b->actual, le32toh(v));
	}
	if (off + len > CFG_POISON_VAL) {
		memcpy(&v, cfg + CFG_POISON_VAL, 4);
		st32(&b->poison_val, le32toh(v));
	}
}

void balloon_set_cmd(struct virtio_balloon *b, uint32_t cmd)
{
	pthread_mutex_lock(&b->lock);
	b->hint.host_cmd = cmd;
	pthread_mutex_unlock(&b->lock);
	st32(&b->cmd_id, cmd);
	virtio_dev_config_changed(&b->dev);
}

/* --------------------------------------------------- activation and reset */

/* arms the statistics timer: the first poll after `first_ns`, then every interval */
static void timer_arm(struct virtio_balloon *b, uint64_t first_ns)
{
	uint16_t s = __atomic_load_n(&b->interval_s, __ATOMIC_ACQUIRE);
	struct itimerspec its = {
	        .it_interval = {.tv_sec = s},
	        .it_value = {.tv_sec = (time_t)(first_ns / 1000000000),
	                     .tv_nsec = (long)(first_ns % 1000000000)},
	};
	if (b->timer_fd >= 0 && timerfd_settime(b->timer_fd, 0, &its, NULL) < 0)
		log_warn("%s: cannot arm the statistics timer: %s", b->dev.id, strerror(errno));
}

/* s5.5.2: the optional queues, numbered in order among the negotiated ones */
static void number_queues(struct virtio_balloon *b)
{
	uint64_t f = b->dev.driver_features;
	uint16_t next = BALLOON_Q_DEFLATE + 1;

	b->q_stats = b->q_hint = b->q_report = BALLOON_NO_QUEUE;
	if (f & VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ))
		b->q_stats = next++;
	if (f & VIRTIO_BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT))
		b->q_hint = next++;
	if (f & VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING))
		b->q_report = next++;
}

static int balloon_activate(struct virtio_dev *d)
{
	struct virtio_balloon *b = d->priv;

	number_queues(b);
	/* bounded requests: a longer chain is a broken driver (NEEDS_RESET at its pop) */
	d->vq[BALLOON_Q_INFLATE].max_chain_len = BALLOON_MAX_PFN_BYTES;
	d->vq[BALLOON_Q_DEFLATE].max_chain_len = BALLOON_MAX_PFN_BYTES;
	if (b->q_stats == BALLOON_NO_QUEUE) {
		b->stats_held = false;
		return 0;
	}
	d->vq[b->q_stats].max_chain_len = BALLOON_MAX_STATS_BYTES;
	/* a buffer held in a restored state must belong to the queue as set up now */
	if (b->stats_held &&
	    (!d->vq[b->q_stats].started || b->stats_head >= d->vq[b->q_stats].size))
		b->stats_held = false;
	int ret = iothread_add_fd(d->io, b->timer_fd, EPOLLIN, balloon_stats_timer, b);
	if (ret < 0) {
		log_err("%s: cannot watch the statistics timer: %s", d->id, strerror(-ret));
		return ret;
	}
	b->timer_watched = true;
	timer_arm(b, (uint64_t)__atomic_load_n(&b->interval_s, __ATOMIC_ACQUIRE) * 1000000000);
	return 0;
}

static void balloon_reset(struct virtio_dev *d)
{
	struct virtio_balloon *b = d->priv;

	if (b->timer_watched)
		iothread_del_fd(d->io, b->timer_fd);
	b->timer_watched = false;
	timer_arm(b, 0); /* disarmed */
	b->stats_held = false;
	b->q_stats = b->q_hint = b->q_report = BALLOON_NO_QUEUE;
	st32(&b->actual, 0);
	st32(&b->cmd_id, VIRTIO_BALLOON_CMD_ID_STOP);
	st32(&b->poison_val, 0);
	pthread_mutex_lock(&b->lock);
	b->stats_have = 0;
	memset(b->stats_val, 0, sizeof(b->stats_val));
	memset(&b->hint, 0, sizeof(b->hint));
	pthread_mutex_unlock(&b->lock);
}

/* ------------------------------------------------------------ saved state */

static void balloon_save(struct virtio_dev *d, struct state_writer *w)
{
	struct virtio_balloon *b = d->priv;

	sw_u32(w, b->num_pages);
	sw_u32(w, b->actual);
	sw_u32(w, b->cmd_id);
	sw_u32(w, b->poison_val);
	sw_u16(w, b->interval_s);
	sw_u8(w, b->stats_held);
	sw_u16(w, b->stats_head);
	sw_u32(w, b->stats_have);
	for (unsigned i = 0; i < VIRTIO_BALLOON_NR_STATS; i++)
		sw_u64(w, b->stats_val[i]);
	sw_u32(w, b->hint.host_cmd);
	sw_u32(w, b->hint.last_cmd_id);
	sw_u32(w, b->hint.guest_cmd);
	sw_u8(w, b->hint.has_guest_cmd);
	sw_u8(w, b->hint.ack_on_stop);
}

static int balloon_restore(struct virtio_dev *d, struct state_reader *r, uint16_t version,
                           struct errbuf *e)
{
	struct virtio_balloon *b = d->priv;

	(void)version; /* only version 1 exists; the transport checked the range */
	uint32_t num_pages = sr_u32(r), actual = sr_u32(r), cmd = sr_u32(r);
	uint32_t poison = sr_u32(r);
	uint16_t interval = sr_u16(r);
	bool held = sr_u8(r) != 0;
	uint16_t head = sr_u16(r);
	b->stats_have = sr_u32(r) & ((1u << VIRTIO_BALLOON_NR_STATS) - 1);
	for (unsigned i = 0; i < VIRTIO_BALLOON_NR_STATS; i++)
		b->stats_val[i] = sr_u64(r);
	b->hint.host_cmd = sr_u32(r);
	b->hint.last_cmd_id = sr_u32(r);
	b->hint.guest_cmd = sr_u32(r);
	b->hint.has_guest_cmd = sr_u8(r) != 0;
	b->hint.ack_on_stop = sr_u8(r) != 0;
	if (sr_error(r))
		return errf(e, EINVAL, "snapshot: virtio-balloon %s is truncated", d->id);
	if (sr_left(r))
		return errf(e, EINVAL, "snapshot: virtio-balloon %s: %zu bytes too many", d->id,
		            sr_left(r));
	if (num_pages > d->gm->ram_size / GM_PAGE_SIZE || (!interval) != (b->timer_fd < 0) ||
	    head >= VIRTIO_BALLOON_QUEUE_SIZE)
		return errf(e, EINVAL,
		            "snapshot: virtio-balloon %s: target %u pages, interval %u s or "
		            "statistics buffer %u do not fit this device",
		            d->id, num_pages, interval, head);
	b->num_pages = num_pages;
	b->actual = actual;
	b->poison_val = poison;
	b->interval_s = interval;
	b->stats_held = held;
	b->stats_head = head;
	b->cmd_id = cmd;
	/* a hinting run does not survive a restore: DONE lets the guest reuse its
	 * hinted pages (Firecracker does the same) */
	if (cmd > VIRTIO_BALLOON_CMD_ID_DONE)
		balloon_set_cmd(b, VIRTIO_BALLOON_CMD_ID_DONE);
	return 0;
}

static const struct virtio_dev_ops balloon_ops = {
        .name = "virtio-balloon",
        .device_id = VIRTIO_ID_BALLOON,
        .nr_queues = BALLOON_MAX_QUEUES,
        .queue_max_size = VIRTIO_BALLOON_QUEUE_SIZE,
        .config_size = CFG_SIZE,
        .config_read = balloon_config_read,
        .config_write = balloon_config_write,
        .activate = balloon_activate,
        .reset = balloon_reset,
        .queue_notify = balloon_queue_notify,
        .state_version = BALLOON_STATE_VERSION,
        .state_min_version = BALLOON_STATE_VERSION,
        .save = balloon_save,
        .restore = balloon_restore,
};

/* ------------------------------------------------------ creation, the VMM */

int virtio_balloon_create(struct virtio_balloon **out, const struct virtio_balloon_params *p,
                          struct errbuf *e)
{
	size_t n = p->id ? strlen(p->id) : 0;
	if (n == 0 || n > VIRTIO_ID_MAX)
		return errf(e, EINVAL, "balloon device id must be 1 to %d characters",
		            VIRTIO_ID_MAX);
	if (p->amount_mib > UINT32_MAX / MIB_PAGES)
		return errf(e, EINVAL, "balloon amount_mib %u is too large", p->amount_mib);
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	if (!b)
		return errf(e, ENOMEM, "out of memory for the balloon device");
	b->timer_fd = -1;
	if (p->stats_polling_interval_s) {
		b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (b->timer_fd < 0) {
			int ret = errf(e, errno, "balloon statistics timer: %s", strerror(errno));
			free(b);
			return ret;
		}
	}
	pthread_mutex_init(&b->lock, NULL);
	b->cfg = *p;
	b->cfg.id = b->dev.id;
	memcpy(b->dev.id, p->id, n + 1);
	b->num_pages = p->amount_mib * MIB_PAGES;
	b->interval_s = p->stats_polling_interval_s;
	b->q_stats = b->q_hint = b->q_report = BALLOON_NO_QUEUE;
	b->dev.ops = &balloon_ops;
	b->dev.priv = b;
	/* s5.5.3: the statistics queue exists only when statistics are on */
	b->dev.features =
	        (p->deflate_on_oom ? VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) : 0) |
	        (p->stats_polling_interval_s ? VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) : 0) |
	        (p->free_page_hinting ? VIRTIO_BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT) : 0) |
	        (p->free_page_reporting ? VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING) : 0);
	*out = b;
	return 0;
}

struct virtio_dev *virtio_balloon_dev(struct virtio_balloon *b)
{
	return &b->dev;
}

void virtio_balloon_config(const struct virtio_balloon *b, struct virtio_balloon_params *out)
{
	*out = b->cfg;
	out->amount_mib = __atomic_load_n(&b->num_pages, __ATOMIC_ACQUIRE) / MIB_PAGES;
	out->stats_polling_interval_s = __atomic_load_n(&b->interval_s, __ATOMIC_ACQUIRE);
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint32_t amount_mib, struct errbuf *e)
{
	uint64_t ram_mib = b->dev.gm->ram_size / MIB(1);
	/* Firecracker's TooMuchMemoryRequested: never more than the guest has */
	if (amount_mib > ram_mib)
		return errf(e, EINVAL,
		            "The balloon cannot be larger than guest memory: amount_mib %u > "
		            "%llu MiB.",
		            amount_mib, (unsigned long long)ram_mib);
	st32(&b->num_pages, amount_mib * MIB_PAGES);
	virtio_dev_config_changed(&b->dev);
	return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint16_t interval_s,
                                      struct errbuf *e)
{
	uint16_t cur = __atomic_load_n(&b->interval_s, __ATOMIC_ACQUIRE);
	if (cur == interval_s)
		return 0;
	if (!cur || !interval_s)
		return errf(e, EINVAL, "Statistics cannot be enabled/disabled after activation.");
	__atomic_store_n(&b->interval_s, interval_s, __ATOMIC_RELEASE);
	timer_arm(b, 1); /* one poll now, then at the new interval */
	return 0;
}

int virtio_balloon_stats(struct virtio_balloon *b, struct virtio_balloon_stats *out,
                         struct errbuf *e)
{
	if (b->timer_fd < 0)
		return errf(e, ENOTSUP, "Statistics for the balloon device are not enabled");
	out->target_pages = ld32(&b->num_pages);
	out->actual_pages = ld32(&b->actual);
	pthread_mutex_lock(&b->lock);
	out->have = b->stats_have;
	memcpy(out->val, b->stats_val, sizeof(out->val));
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static int hinting_on(const struct virtio_balloon *b, struct errbuf *e)
{
	if (!b->cfg.free_page_hinting)
		return errf(e, ENOTSUP, "Free page hinting is not enabled on the balloon device");
	return 0;
}

int virtio_balloon_hint_start(struct virtio_balloon *b, bool ack_on_stop, struct errbuf *e)
{
	int ret = hinting_on(b, e);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&b->lock);
	/* s5.5.6.4: 0 and 1 are reserved; ids are not reused back to back */
	uint32_t cmd = b->hint.last_cmd_id + 1;
	if (cmd <= VIRTIO_BALLOON_CMD_ID_DONE)
		cmd = VIRTIO_BALLOON_CMD_ID_DONE + 1;
	b->hint.last_cmd_id = cmd;
	b->hint.ack_on_stop = ack_on_stop;
	pthread_mutex_unlock(&b->lock);
	balloon_set_cmd(b, cmd);
	return 0;
}

int virtio_balloon_hint_stop(struct virtio_balloon *b, struct errbuf *e)
{
	int ret = hinting_on(b, e);
	if (ret == 0)
		balloon_set_cmd(b, VIRTIO_BALLOON_CMD_ID_DONE);
	return ret;
}

int virtio_balloon_hint_status(struct virtio_balloon *b, struct virtio_balloon_hinting *out,
                               struct errbuf *e)
{
	int ret = hinting_on(b, e);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&b->lock);
	out->host_cmd = b->hint.host_cmd;
	out->has_guest_cmd = b->hint.has_guest_cmd;
	out->guest_cmd = b->hint.guest_cmd;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

void virtio_balloon_metrics(const struct virtio_balloon *b, struct virtio_balloon_metrics *out)
{
	const uint64_t *in = (const uint64_t *)&b->m;
	uint64_t *to = (uint64_t *)out;
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		to[i] = __atomic_load_n(&in[i], __ATOMIC_RELAXED);
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
