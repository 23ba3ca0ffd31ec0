// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/mmio.c: the virtio-mmio transport, version 2 (virtio 1.2 s4.2):
 * the register file the driver sees, feature negotiation, device status
 * (s2.1), activation at DRIVER_OK, reset (s2.4), and the lock-free
 * interrupt / NEEDS_RESET paths used by the device's I/O thread.
 *
 * Locking: m->lock serialises vCPU threads on the registers. Activation and
 * reset run under it with the I/O thread parked (iothread_pause), so the
 * queue configuration the vCPU wrote is published to the I/O thread by the
 * pause/resume mutex (it never reads a queue that is being configured).
 * The I/O thread never takes m->lock: status, interrupt_status, broken and
 * config_generation are updated with atomics, so a vCPU holding m->lock
 * while it waits for the thread to park cannot deadlock with it.
 */
#define LOG_MODULE "virtio"
#include "virtio_int.h"

#include <endian.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* -------------------------------------------------------- KVM wiring */

static int kvm_ioeventfd(void *opaque, int fd, uint64_t gpa, uint32_t datamatch, bool assign)
{
	struct kvm_ioeventfd io = {
	        .datamatch = datamatch,
	        .addr = gpa,
	        .len = 4, /* s4.2.2: QueueNotify is a 32-bit register */
	        .fd = fd,
	        .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	return ioctl(*(int *)opaque, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int kvm_irqfd(void *opaque, int fd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd irq = {
	        .fd = (uint32_t)fd,
	        .gsi = gsi,
	        .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};
	return ioctl(*(int *)opaque, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

const struct virtio_hv_ops virtio_kvm_hv_ops = {
        .ioeventfd = kvm_ioeventfd,
        .irqfd = kvm_irqfd,
};

/* ------------------------------------------------ the device's helpers */

void virtio_efd_signal(int fd)
{
	uint64_t one = 1;
	/* fails only if the counter would overflow: it is then readable anyway */
	if (write(fd, &one, sizeof(one)) < 0) {
	}
}

static void efd_drain(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0) {
	}
}

/* s4.2.3.4: set the InterruptStatus bit, then pulse the line */
static void raise_irq(struct virtio_mmio *m, uint32_t bit)
{
	__atomic_fetch_or(&m->interrupt_status, bit, __ATOMIC_SEQ_CST);
	virtio_efd_signal(m->irq_fd);
}

static uint32_t status_of(const struct virtio_mmio *m)
{
	return __atomic_load_n(&m->status, __ATOMIC_ACQUIRE);
}

void virtio_dev_fail(struct virtio_dev *d, const char *fmt, ...)
{
	struct virtio_mmio *m = d->transport;
	char why[256];
	va_list ap;

	if (__atomic_exchange_n(&m->broken, true, __ATOMIC_SEQ_CST))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_err("%s %s: %s; device needs reset", d->ops->name, d->id, why);
	/* s2.1.2: set DEVICE_NEEDS_RESET; with DRIVER_OK, send a config change notification */
	uint32_t old =
	        __atomic_fetch_or(&m->status, VIRTIO_STATUS_DEVICE_NEEDS_RESET, __ATOMIC_SEQ_CST);
	if (old & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(m, VIRTIO_MMIO_INT_CONFIG);
}

bool virtio_dev_broken(const struct virtio_dev *d)
{
	return __atomic_load_n(&d->transport->broken, __ATOMIC_ACQUIRE);
}

static bool serving(const struct virtio_dev *d)
{
	const struct virtio_mmio *m = d->transport;
	return __atomic_load_n(&m->activated, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&m->broken, __ATOMIC_ACQUIRE);
}

int virtio_dev_pop(struct virtio_dev *d, uint16_t q, struct vq_chain *chain)
{
	if (q >= d->ops->nr_queues || !serving(d))
		return -EINVAL;
	int r = vq_pop(&d->vq[q], chain);
	if (r < 0)
		virtio_dev_fail(d, "queue %u: %s", q, d->vq[q].error);
	return r;
}

int virtio_dev_push(struct virtio_dev *d, uint16_t q, uint16_t head, uint32_t written)
{
	if (q >= d->ops->nr_queues || !serving(d))
		return -EINVAL;
	int r = vq_push(&d->vq[q], head, written);
	if (r < 0)
		virtio_dev_fail(d, "queue %u: used a descriptor head %u the queue does not hold", q,
		                head);
	return r;
}

void virtio_dev_notify_used(struct virtio_dev *d, uint16_t q)
{
	if (q < d->ops->nr_queues && serving(d) && vq_should_notify(&d->vq[q]))
		raise_irq(d->transport, VIRTIO_MMIO_INT_VRING);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
	struct virtio_mmio *m = d->transport;

	/* s2.5.1: the generation changes whenever the config may have changed */
	__atomic_fetch_add(&m->config_generation, 1, __ATOMIC_SEQ_CST);
	if (status_of(m) & VIRTIO_STATUS_DRIVER_OK)
		raise_irq(m, VIRTIO_MMIO_INT_CONFIG);
}

/* ------------------------------------------------ activation and reset */

/* the I/O thread: the driver wrote QueueNotify (through KVM or the bus) */
static void kick_cb(void *opaque, uint32_t events)
{
	struct virtio_mmio_kick *k = opaque;
	struct virtio_mmio *m = k->m;

	(void)events;
	efd_drain(m->kick_fd[k->q]);
	if (serving(m->dev))
		m->dev->ops->queue_notify(m->dev, k->q);
}

static uint64_t offered_features(const struct virtio_mmio *m)
{
	return m->dev->features | VIRTIO_TRANSPORT_FEATURES;
}

/* starts the ready queues and the device; m->lock held, I/O thread parked */
static void activate_parked(struct virtio_mmio *m)
{
	struct virtio_dev *d = m->dev;

	for (uint16_t q = 0; q < d->ops->nr_queues; q++) {
		if (d->vq[q].ready && vq_start(&d->vq[q], d->gm, d->driver_features) < 0) {
			virtio_dev_fail(d, "queue %u: %s", q, d->vq[q].error);
			return;
		}
	}
	if (d->ops->activate) {
		int r = d->ops->activate(d);
		if (r < 0) {
			virtio_dev_fail(d, "activation failed: %s", strerror(-r));
			return;
		}
	}
	for (uint16_t q = 0; q < d->ops->nr_queues; q++) {
		if (!d->vq[q].ready)
			continue;
		int r = iothread_add_fd(d->io, m->kick_fd[q], EPOLLIN, kick_cb, &m->kick[q]);
		if (r < 0) {
			virtio_dev_fail(d, "queue %u: cannot watch its eventfd: %s", q,
			                strerror(-r));
			return;
		}
		/* without the ioeventfd, notifies still come through the bus, slower */
		if (m->hv && m->hv->ioeventfd) {
			r = m->hv->ioeventfd(m->hv_opaque, m->kick_fd[q],
			                     m->base + VIRTIO_MMIO_QUEUE_NOTIFY, q, true);
			if (r < 0)
				log_warn("%s %s: KVM_IOEVENTFD for queue %u: %s", d->ops->name,
				         d->id, q, strerror(-r));
			m->ioeventfd_on[q] = r == 0;
		}
		/* buffers made available before DRIVER_OK (or before a snapshot) */
		virtio_efd_signal(m->kick_fd[q]);
	}
	__atomic_store_n(&m->activated, true, __ATOMIC_RELEASE);
}

void virtio_mmio_activate_locked(struct virtio_mmio *m)
{
	iothread_pause(m->dev->io);
	activate_parked(m);
	iothread_resume(m->dev->io);
}

/* s2.4: back to the initial state */
void virtio_mmio_reset_locked(struct virtio_mmio *m)
{
	struct virtio_dev *d = m->dev;

	iothread_pause(d->io);
	for (uint16_t q = 0; q < d->ops->nr_queues; q++) {
		if (m->ioeventfd_on[q])
			m->hv->ioeventfd(m->hv_opaque, m->kick_fd[q],
			                 m->base + VIRTIO_MMIO_QUEUE_NOTIFY, q, false);
		m->ioeventfd_on[q] = false;
		iothread_del_fd(d->io, m->kick_fd[q]); /* -ENOENT when never added */
		efd_drain(m->kick_fd[q]);
		vq_reset(&d->vq[q]);
	}
	if (d->ops->reset)
		d->ops->reset(d);
	__atomic_store_n(&m->activated, false, __ATOMIC_RELEASE);
	d->driver_features = 0;
	m->device_features_sel = m->driver_features_sel = m->queue_sel = 0;
	__atomic_store_n(&m->interrupt_status, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&m->broken, false, __ATOMIC_SEQ_CST);
	__atomic_store_n(&m->status, 0, __ATOMIC_SEQ_CST);
	iothread_resume(d->io);
}

/* s3.1.1 steps 4-6: accept FEATURES_OK only for a subset of ours with VERSION_1 */
static bool features_acceptable(const struct virtio_mmio *m)
{
	const struct virtio_dev *d = m->dev;
	uint64_t extra = d->driver_features & ~offered_features(m);

	if (extra) {
		log_warn("%s %s: driver accepted features 0x%llx the device does not offer",
		         d->ops->name, d->id, (unsigned long long)extra);
		return false;
	}
	if (!(d->driver_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		log_warn("%s %s: driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are "
		         "not supported)",
		         d->ops->name, d->id);
		return false;
	}
	return true;
}

static void status_write(struct virtio_mmio *m, uint32_t val)
{
	uint32_t old = status_of(m);

	if (val == 0) { /* s4.2.2.1: writing 0 resets the device */
		virtio_mmio_reset_locked(m);
		return;
	}
	/* s2.1.1: the driver never clears bits; NEEDS_RESET is the device's */
	uint32_t add = val & ~old & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET & 0xff;
	if ((add & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(m))
		add &= ~VIRTIO_STATUS_FEATURES_OK; /* the driver re-reads and gives up */
	if ((add & VIRTIO_STATUS_DRIVER_OK) && !((old | add) & VIRTIO_STATUS_FEATURES_OK)) {
		add &= ~VIRTIO_STATUS_DRIVER_OK;
		__atomic_fetch_or(&m->status, add, __ATOMIC_SEQ_CST);
		virtio_dev_fail(m->dev, "driver set DRIVER_OK without FEATURES_OK (s3.1.1)");
		return;
	}
	__atomic_fetch_or(&m->status, add, __ATOMIC_SEQ_CST);
	if ((add & VIRTIO_STATUS_DRIVER_OK) && !virtio_dev_broken(m->dev))
		virtio_mmio_activate_locked(m);
}

/* ------------------------------------------------------ the registers */

static struct virtq *sel_queue(struct virtio_mmio *m)
{
	return m->queue_sel < m->dev->ops->nr_queues ? &m->dev->vq[m->queue_sel] : NULL;
}

/* s4.2.2: reads of the 32-bit registers; write-only ones read as 0 */
static uint32_t reg_read(struct virtio_mmio *m, uint64_t off)
{
	const struct virtio_dev *d = m->dev;
	struct virtq *vq = sel_queue(m);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return d->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (m->device_features_sel > 1)
			return 0;
		return (uint32_t)(offered_features(m) >> (32 * m->device_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? d->ops->queue_max_size : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return vq ? vq->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return __atomic_load_n(&m->interrupt_status, __ATOMIC_SEQ_CST);
	case VIRTIO_MMIO_STATUS:
		return status_of(m);
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffffu; /* s4.2.2: no shared memory region: length -1 */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return __atomic_load_n(&m->config_generation, __ATOMIC_SEQ_CST);
	default:
		return 0;
	}
}

static void set_half(uint64_t *v, uint32_t val, bool high)
{
	if (high)
		*v = (*v & 0xffffffffull) | (uint64_t)val << 32;
	else
		*v = (*v & ~0xffffffffull) | val;
}

/*
 * The driver enables the selected queue (QueueReady = 1). s4.2.3.2: it
 * "MUST NOT write a value greater than QueueNumMax" to QueueNum, and s2.7
 * makes the size a power of 2. This is the one place a queue size enters:
 * every table a device sizes by its queue_max_size relies on it, so a
 * queue the device does not offer is never enabled; the driver broke the
 * protocol and the device needs a reset.
 */
static void queue_enable(struct virtio_mmio *m, struct virtq *vq)
{
	struct virtio_dev *d = m->dev;
	uint32_t n = vq->size, max = d->ops->queue_max_size;

	if (!virtio_queue_size_ok(d, n)) {
		virtio_dev_fail(d,
		                "queue %u: QueueNum %u is not a power of 2 in 1..QueueNumMax %u "
		                "(s4.2.3.2)",
		                m->queue_sel, n, max);
		return;
	}
	vq->ready = true;
}

/* the queue registers may change only while the queue is off (s4.2.3.2) */
static void queue_write(struct virtio_mmio *m, uint64_t off, uint32_t val)
{
	struct virtq *vq = sel_queue(m);

	if (!vq || m->activated)
		return;
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		if (!(val & 1))
			vq->ready = false;
		else if (!vq->ready)
			queue_enable(m, vq);
		return;
	}
	if (vq->ready)
		return;
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		vq->size = val > UINT16_MAX ? 0 : (uint16_t)val; /* checked by vq_start */
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_half(&vq->desc_gpa, val, off == VIRTIO_MMIO_QUEUE_DESC_HIGH);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		set_half(&vq->avail_gpa, val, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		set_half(&vq->used_gpa, val, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH);
		break;
	}
}

static void reg_write(struct virtio_mmio *m, uint64_t off, uint32_t val)
{
	struct virtio_dev *d = m->dev;

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		m->device_features_sel = val;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		m->driver_features_sel = val;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		/* s3.1.1: features are fixed once FEATURES_OK is set */
		if (m->driver_features_sel < 2 && !(status_of(m) & VIRTIO_STATUS_FEATURES_OK))
			set_half(&d->driver_features, val, m->driver_features_sel == 1);
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		m->queue_sel = val;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		queue_write(m, off, val);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* s4.2.3.3: the value is the queue index; KVM's ioeventfd catches
		 * these once activated, this path serves the rest */
		if (val < d->ops->nr_queues)
			virtio_efd_signal(m->kick_fd[val]);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		__atomic_fetch_and(&m->interrupt_status, ~val, __ATOMIC_SEQ_CST);
		break;
	case VIRTIO_MMIO_STATUS:
		status_write(m, val);
		break;
	default: /* read-only and unknown registers */
		break;
	}
}

static bool config_range(const struct virtio_mmio *m, uint64_t off, uint32_t len)
{
	return off >= VIRTIO_MMIO_CONFIG && off - VIRTIO_MMIO_CONFIG <= m->dev->ops->config_size &&
	       len <= m->dev->ops->config_size - (off - VIRTIO_MMIO_CONFIG);
}

static void mmio_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct virtio_mmio *m = opaque;

	memset(data, 0, len);
	if (off >= VIRTIO_MMIO_CONFIG) {
		/* s4.2.2.2: config space takes 8, 16, 32 and 64-bit accesses */
		if (!config_range(m, off, len))
			return;
		pthread_mutex_lock(&m->lock);
		m->dev->ops->config_read(m->dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
		pthread_mutex_unlock(&m->lock);
		return;
	}
	/* s4.2.2.2: the registers take aligned 32-bit accesses only */
	if (len != 4 || off % 4)
		return;
	pthread_mutex_lock(&m->lock);
	uint32_t v = htole32(reg_read(m, off));
	pthread_mutex_unlock(&m->lock);
	memcpy(data, &v, 4);
}

static void mmio_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct virtio_mmio *m = opaque;

	if (off >= VIRTIO_MMIO_CONFIG) {
		if (!config_range(m, off, len) || !m->dev->ops->config_write)
			return;
		pthread_mutex_lock(&m->lock);
		m->dev->ops->config_write(m->dev, (uint32_t)(off - VIRTIO_MMIO_CONFIG), data, len);
		pthread_mutex_unlock(&m->lock);
		return;
	}
	if (len != 4 || off % 4)
		return;
	uint32_t v;
	memcpy(&v, data, 4);
	pthread_mutex_lock(&m->lock);
	reg_write(m, off, le32toh(v));
	pthread_mutex_unlock(&m->lock);
}

const struct bus_dev_ops virtio_mmio_bus_ops = {
        .read = mmio_read,
        .write = mmio_write,
};
