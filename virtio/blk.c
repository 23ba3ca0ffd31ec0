// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/blk.c: the block device (virtio 1.2 s5.2) -- the backing file,
 * config space and features, activation and reset, PATCH /drives, and the
 * saved state. Requests are served by blk_req.c (and blk_uring.c for the
 * Async engine) on the device's I/O thread.
 *
 * GET_ID answers what Firecracker answers (and kvmtool before it): the
 * decimal st_dev, st_rdev and st_ino of the backing file, concatenated and
 * cut to 20 bytes, NUL-padded. It changes when PATCH swaps the file.
 */
#define LOG_MODULE "virtio-blk"
#include "blk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLK_STATE_VERSION 1
#define BLK_CONFIG_SIZE   60 /* s5.2.4 up to write_zeroes_may_unmap and unused1 */

void blk_count(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

void blk_log_io(struct virtio_blk *b, const char *fmt, ...)
{
	uint64_t now = now_ns();
	if (b->log_ns && now - b->log_ns < 1000000000ull) {
		b->log_suppressed++;
		return;
	}
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (b->log_suppressed)
		log_warn("%s: %s (%u more such lines suppressed)", b->dev.id, msg,
		         b->log_suppressed);
	else
		log_warn("%s: %s", b->dev.id, msg);
	b->log_ns = now;
	b->log_suppressed = 0;
}

/* ------------------------------------------------------- the backing file */

struct blk_file {
	int fd;
	bool is_blkdev;
	uint64_t capacity;
	uint8_t serial[VIRTIO_BLK_ID_BYTES];
};

/* Firecracker's device id: "<st_dev><st_rdev><st_ino>", at most 20 bytes */
static void blk_serial(const struct stat *st, uint8_t out[VIRTIO_BLK_ID_BYTES])
{
	char s[64];
	int n = snprintf(s, sizeof(s), "%llu%llu%llu", (unsigned long long)st->st_dev,
	                 (unsigned long long)st->st_rdev, (unsigned long long)st->st_ino);
	memset(out, 0, VIRTIO_BLK_ID_BYTES);
	memcpy(out, s, n < VIRTIO_BLK_ID_BYTES ? (size_t)n : VIRTIO_BLK_ID_BYTES);
}

static int blk_file_open(const char *id, const char *path, bool ro, struct blk_file *f,
                         struct errbuf *e)
{
	if (!path || !*path)
		return errf(e, EINVAL, "drive %s: path_on_host is empty", id);
	/* O_NONBLOCK so that a FIFO given by mistake cannot hang the open */
	int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errf(e, errno, "drive %s: cannot open %s%s: %s", id, path,
		            ro ? " for reading" : " for reading and writing", strerror(errno));
	struct stat st;
	uint64_t size;
	int ret;
	if (fstat(fd, &st) < 0) {
		ret = errf(e, errno, "drive %s: cannot stat %s: %s", id, path, strerror(errno));
		goto err_close;
	}
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			ret = errf(e, errno, "drive %s: cannot get the size of block device %s: %s",
			           id, path, strerror(errno));
			goto err_close;
		}
	} else {
		ret = errf(e, EINVAL, "drive %s: %s is not a regular file or a block device", id,
		           path);
		goto err_close;
	}
	if (fcntl(fd, F_SETFL, 0) < 0) { /* back to blocking I/O */
		ret = errf(e, errno, "drive %s: fcntl on %s: %s", id, path, strerror(errno));
		goto err_close;
	}
	if (size % BLK_SECTOR)
		log_warn("drive %s: %s is %llu bytes, not a multiple of %u: the last %llu bytes "
		         "are not visible to the guest",
		         id, path, (unsigned long long)size, BLK_SECTOR,
		         (unsigned long long)(size % BLK_SECTOR));
	f->fd = fd;
	f->is_blkdev = S_ISBLK(st.st_mode);
	f->capacity = size / BLK_SECTOR;
	blk_serial(&st, f->serial);
	return 0;

err_close:
	close(fd);
	return ret;
}

/*
 * Whether the file system can punch holes and zero ranges (fallocate(2)),
 * tried beyond the end of the file so that no data changes; a block past
 * the end that zeroing allocated is punched again.
 */
static void blk_probe(struct virtio_blk *b)
{
	if (b->read_only)
		return;
	if (b->is_blkdev) {
		/* block devices take both modes; the kernel zeroes by writing if it must */
		b->can_punch = b->can_zero = true;
		return;
	}
	off_t at = (off_t)ALIGN_UP(b->capacity * BLK_SECTOR + BLK_SECTOR, 4096);
	b->can_punch = fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, 4096) == 0;
	b->can_zero = fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, at, 4096) == 0;
	if (b->can_zero && b->can_punch) /* best effort: give back what zeroing allocated */
		fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, 4096);
}

/* --------------------------------------------------------- config space */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* s5.2.4 struct virtio_blk_config; vCPU thread */
static void blk_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct virtio_blk *b = d->priv;
	uint8_t cfg[BLK_CONFIG_SIZE] = {0};

	put_le64(cfg + 0, virtio_blk_capacity(b));
	put_le32(cfg + 12, BLK_SEG_MAX);
	put_le32(cfg + 20, BLK_SECTOR);
	if (d->features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)) {
		put_le32(cfg + 36, BLK_MAX_DZ_SECTORS);
		put_le32(cfg + 40, BLK_MAX_DZ_SEG);
		put_le32(cfg + 44, BLK_DISCARD_ALIGN);
	}
	if (d->features & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES)) {
		put_le32(cfg + 48, BLK_MAX_DZ_SECTORS);
		put_le32(cfg + 52, BLK_MAX_DZ_SEG);
		cfg[56] = b->can_punch; /* write_zeroes_may_unmap */
	}
	memcpy(data, cfg + off, len); /* the transport checked off + len <= BLK_CONFIG_SIZE */
}

/* ---------------------------------------------------- device callbacks */

static void blk_efd_drain(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing pending, the wake-up was consumed already */
	}
}

static void blk_wake(struct virtio_blk *b)
{
	uint64_t one = 1;
	if (write(b->efd, &one, sizeof(one)) < 0) {
		/* only fails when the counter is full, which still wakes the thread */
	}
}

/* completions (Async), requests finished while parked, or "serve again"; I/O thread */
static void blk_efd_cb(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;
	(void)events;
	blk_efd_drain(b->efd);
	bool pushed = blk_push_done(b);
	if (b->u)
		pushed |= blk_uring_reap(b);
	if (pushed)
		virtio_dev_notify_used(&b->dev, 0);
	blk_serve(b);
}

static void blk_timer_cb(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;
	(void)events;
	if (rl_timer_expired(&b->rl) == 0)
		blk_serve(b);
}

static void blk_queue_notify(struct virtio_dev *d, uint16_t q)
{
	(void)q; /* one queue */
	blk_serve(d->priv);
}

static int blk_activate(struct virtio_dev *d)
{
	struct virtio_blk *b = d->priv;
	int ret;

	pthread_mutex_lock(&b->lock);
	/* s5.2.6.2: with F_FLUSH offered but not taken, a completed write must be stable */
	b->dsync = b->writeback && !(d->driver_features & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	ret = iothread_add_fd(d->io, rl_timer_fd(&b->rl), EPOLLIN, blk_timer_cb, b);
	if (ret < 0) {
		log_err("%s: cannot watch the rate limiter's timer: %s", d->id, strerror(-ret));
		goto out;
	}
	b->timer_watched = true;
	ret = iothread_add_fd(d->io, b->efd, EPOLLIN, blk_efd_cb, b);
	if (ret < 0) {
		log_err("%s: cannot watch the completion eventfd: %s", d->id, strerror(-ret));
		goto out;
	}
	b->efd_watched = true;
	if (b->nr_done) /* finished before a snapshot: push them first */
		blk_wake(b);
out:
	pthread_mutex_unlock(&b->lock);
	return ret;
}

static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = d->priv;

	pthread_mutex_lock(&b->lock);
	if (b->u) /* the kernel may still be writing into guest memory: wait for it */
		blk_uring_drain(b, true);
	b->nr_done = 0;
	b->stalled = false;
	b->dsync = false;
	if (b->timer_watched)
		iothread_del_fd(d->io, rl_timer_fd(&b->rl));
	if (b->efd_watched)
		iothread_del_fd(d->io, b->efd);
	b->timer_watched = b->efd_watched = false;
	blk_efd_drain(b->efd);
	pthread_mutex_unlock(&b->lock);
}

/*
 * State, version 1: the rate limiter (rl_save), then the requests that
 * finished but are not in the used ring yet: u16 count, {u16 head,
 * u32 used length} each. Their data and status bytes are in guest memory.
 */
static void blk_save(struct virtio_dev *d, struct state_writer *w)
{
	struct virtio_blk *b = d->priv;

	pthread_mutex_lock(&b->lock);
	if (b->u)
		blk_uring_drain(b, false);
	rl_save(&b->rl, w);
	sw_u16(w, (uint16_t)b->nr_done);
	for (unsigned i = 0; i < b->nr_done; i++) {
		sw_u16(w, b->done[i].head);
		sw_u32(w, b->done[i].len);
	}
	if (b->nr_done)
		blk_wake(b); /* this VM pushes them when it runs again */
	pthread_mutex_unlock(&b->lock);
}

static int blk_restore(struct virtio_dev *d, struct state_reader *r, uint16_t version,
                       struct errbuf *e)
{
	struct virtio_blk *b = d->priv;
	int ret;

	(void)version; /* only version 1 exists; the transport checked the range */
	pthread_mutex_lock(&b->lock);
	ret = rl_restore(&b->rl, r, e);
	if (ret < 0)
		goto out;
	unsigned n = sr_u16(r);
	if (n > ARRAY_SIZE(b->done)) {
		ret = errf(e, EINVAL, "snapshot: drive %s: %u finished requests, at most %zu",
		           d->id, n, ARRAY_SIZE(b->done));
		goto out;
	}
	bool seen[VIRTIO_BLK_QUEUE_SIZE] = {false};
	for (unsigned i = 0; i < n; i++) {
		uint16_t head = sr_u16(r);
		uint32_t len = sr_u32(r);
		if (sr_error(r))
			break;
		if (head >= d->vq[0].size || head >= ARRAY_SIZE(seen) || seen[head]) {
			ret = errf(e, EINVAL, "snapshot: drive %s: finished request head %u is %s",
			           d->id, head,
			           head < d->vq[0].size && head < ARRAY_SIZE(seen)
			                   ? "repeated"
			                   : "outside the queue");
			goto out;
		}
		seen[head] = true;
		b->done[i] = (struct blk_done){.head = head, .len = len};
	}
	if (sr_error(r) || sr_left(r)) {
		ret = errf(e, EINVAL, "snapshot: drive %s: device state has a bad length", d->id);
		goto out;
	}
	b->nr_done = n;
out:
	if (ret < 0)
		b->nr_done = 0;
	pthread_mutex_unlock(&b->lock);
	return ret;
}

static const struct virtio_dev_ops blk_ops = {
        .name = "virtio-blk",
        .device_id = VIRTIO_ID_BLOCK,
        .nr_queues = 1,
        .queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
        .config_size = BLK_CONFIG_SIZE,
        .config_read = blk_config_read,
        .activate = blk_activate,
        .reset = blk_reset,
        .queue_notify = blk_queue_notify,
        .state_version = BLK_STATE_VERSION,
        .state_min_version = BLK_STATE_VERSION,
        .save = blk_save,
        .restore = blk_restore,
};

/* ------------------------------------------------------------ the API */

static int blk_check_id(const char *id, struct errbuf *e)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > VIRTIO_ID_MAX)
		return errf(e, EINVAL, "drive_id must be 1 to %d characters", VIRTIO_ID_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return errf(e, EINVAL,
			            "drive_id %s: only letters, digits and _ are allowed", id);
	}
	return 0;
}

static void blk_set_features(struct virtio_blk *b)
{
	uint64_t f = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE);
	if (b->read_only)
		f |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	if (b->writeback)
		f |= VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
	if (b->can_punch)
		f |= VIRTIO_BIT(VIRTIO_BLK_F_DISCARD);
	if (b->can_punch || b->can_zero)
		f |= VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	b->dev.features = f;
}

int virtio_blk_create(struct virtio_blk **out, const struct virtio_blk_params *p, struct errbuf *e)
{
	int ret = blk_check_id(p->id, e);
	if (ret < 0)
		return ret;
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b)
		return errf(e, ENOMEM, "drive %s: out of memory", p->id);
	pthread_mutex_init(&b->lock, NULL);
	b->read_only = p->read_only;
	b->writeback = p->writeback;
	b->efd = -1;
	struct blk_file f;
	ret = blk_file_open(p->id, p->path, p->read_only, &f, e);
	if (ret < 0)
		goto err_free;
	b->fd = f.fd;
	b->is_blkdev = f.is_blkdev;
	b->capacity = f.capacity;
	memcpy(b->serial, f.serial, sizeof(b->serial));
	blk_probe(b);
	ret = rl_init(&b->rl, p->bw, p->ops, p->clock, e);
	if (ret < 0)
		goto err_close;
	b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->efd < 0) {
		ret = errf(e, errno, "drive %s: eventfd: %s", p->id, strerror(errno));
		goto err_rl;
	}
	if (p->async) {
		memcpy(b->dev.id, p->id, strlen(p->id) + 1); /* for the message */
		ret = blk_uring_create(b, e);
		if (ret < 0)
			goto err_efd;
	}
	b->dev.ops = &blk_ops;
	memcpy(b->dev.id, p->id, strlen(p->id) + 1);
	b->dev.priv = b;
	blk_set_features(b);
	log_info("drive %s: %s, %llu sectors, %s%s, %s engine%s%s", p->id, p->path,
	         (unsigned long long)b->capacity, b->read_only ? "read-only" : "read-write",
	         b->writeback ? ", writeback" : "", p->async ? "Async" : "Sync",
	         b->can_punch ? ", discard" : "",
	         b->can_punch || b->can_zero ? ", write-zeroes" : "");
	*out = b;
	return 0;

err_efd:
	close(b->efd);
err_rl:
	rl_destroy(&b->rl);
err_close:
	close(b->fd);
err_free:
	pthread_mutex_destroy(&b->lock);
	free(b);
	return ret;
}

struct virtio_dev *virtio_blk_dev(struct virtio_blk *b)
{
	return &b->dev;
}

uint64_t virtio_blk_capacity(const struct virtio_blk *b)
{
	return __atomic_load_n(&b->capacity, __ATOMIC_ACQUIRE);
}

/* parks the I/O thread if there is one; -EDEADLK from the I/O thread itself */
static int blk_park(struct virtio_blk *b)
{
	return b->dev.io ? iothread_pause(b->dev.io) : 0;
}

static void blk_unpark(struct virtio_blk *b)
{
	if (b->dev.io)
		iothread_resume(b->dev.io);
}

int virtio_blk_update(struct virtio_blk *b, const char *new_path, const struct rl_bucket_cfg *bw,
                      const struct rl_bucket_cfg *ops, bool update_limiter, struct errbuf *e)
{
	struct blk_file f = {.fd = -1};
	int ret = 0;

	if (new_path && (ret = blk_file_open(b->dev.id, new_path, b->read_only, &f, e)) < 0)
		return ret;
	pthread_mutex_lock(&b->lock);
	if ((ret = blk_park(b)) < 0) {
		errf(e, -ret, "drive %s: cannot be updated from its own I/O thread", b->dev.id);
		goto out_unlock;
	}
	if (update_limiter && (ret = rl_update(&b->rl, bw, ops, e)) < 0)
		goto out_unpark;
	if (new_path) {
		if (b->u) /* the requests in flight finish on the old file */
			blk_uring_drain(b, false);
		close(b->fd);
		b->fd = f.fd;
		f.fd = -1;
		b->is_blkdev = f.is_blkdev;
		memcpy(b->serial, f.serial, sizeof(b->serial));
		__atomic_store_n(&b->capacity, f.capacity, __ATOMIC_RELEASE);
		log_info("drive %s: backing file now %s, %llu sectors", b->dev.id, new_path,
		         (unsigned long long)f.capacity);
	}
	blk_wake(b); /* push what the drain finished, serve with the new limits */
out_unpark:
	blk_unpark(b);
out_unlock:
	pthread_mutex_unlock(&b->lock);
	if (f.fd >= 0)
		close(f.fd);
	/* s5.2.6.3: the capacity may have changed; Firecracker always tells */
	if (ret == 0 && new_path && b->dev.transport)
		virtio_dev_config_changed(&b->dev);
	return ret;
}

int virtio_blk_drain(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->lock);
	if (b->u) {
		blk_uring_drain(b, false);
		if (b->nr_done)
			blk_wake(b);
	}
	pthread_mutex_unlock(&b->lock);
	return 0;
}

void virtio_blk_limiter_cfg(const struct virtio_blk *b, struct rl_bucket_cfg *bw,
                            struct rl_bucket_cfg *ops)
{
	rl_get_cfg(&b->rl, RL_BYTES, bw);
	rl_get_cfg(&b->rl, RL_OPS, ops);
}

void virtio_blk_metrics(const struct virtio_blk *b, struct virtio_blk_metrics *out)
{
	out->read_ops = __atomic_load_n(&b->m.read_ops, __ATOMIC_RELAXED);
	out->write_ops = __atomic_load_n(&b->m.write_ops, __ATOMIC_RELAXED);
	out->flush_ops = __atomic_load_n(&b->m.flush_ops, __ATOMIC_RELAXED);
	out->read_bytes = __atomic_load_n(&b->m.read_bytes, __ATOMIC_RELAXED);
	out->write_bytes = __atomic_load_n(&b->m.write_bytes, __ATOMIC_RELAXED);
	out->io_errors = __atomic_load_n(&b->m.io_errors, __ATOMIC_RELAXED);
	out->throttled = __atomic_load_n(&b->m.throttled, __ATOMIC_RELAXED);
	out->bad_requests = __atomic_load_n(&b->m.bad_requests, __ATOMIC_RELAXED);
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	if (b->u)
		blk_uring_destroy(b);
	close(b->efd);
	close(b->fd);
	rl_destroy(&b->rl);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
