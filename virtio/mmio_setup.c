// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/mmio_setup.c: the life of a virtio-mmio transport outside the
 * guest's register accesses -- creation with its eventfds, I/O thread and
 * irqfd, the bus window, pause for the VMM, saved state (a versioned
 * section, field by field) and the kernel command-line announcement.
 */
#define LOG_MODULE "virtio"
#include "virtio_int.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int check_ops(const struct virtio_dev *d, struct errbuf *e)
{
	const struct virtio_dev_ops *o = d->ops;

	if (!o || !o->name || !o->queue_notify)
		return errf(e, EINVAL, "virtio device without name or queue_notify");
	if (!d->id[0] || !memchr(d->id, 0, sizeof(d->id)))
		return errf(e, EINVAL, "%s: device id must be 1..%d characters", o->name,
		            VIRTIO_ID_MAX);
	/* the state section "virtio-mmio.<name>.<id>" (virtio_mmio_save) */
	if (strlen("virtio-mmio..") + strlen(o->name) + strlen(d->id) > STATE_ID_MAX)
		return errf(e, EINVAL, "%s %s: name and id too long for a state section id",
		            o->name, d->id);
	if (o->nr_queues == 0 || o->nr_queues > VIRTIO_MAX_QUEUES)
		return errf(e, EINVAL, "%s %s: %u queues, must be 1..%d", o->name, d->id,
		            o->nr_queues, VIRTIO_MAX_QUEUES);
	uint16_t n = o->queue_max_size;
	if (n == 0 || n > VQ_MAX_SIZE || (n & (n - 1)))
		return errf(e, EINVAL, "%s %s: queue size %u is not a power of 2 in 1..%d", o->name,
		            d->id, n, VQ_MAX_SIZE);
	if (o->config_size > VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG ||
	    (o->config_size && !o->config_read))
		return errf(e, EINVAL,
		            "%s %s: config space of %u bytes without a reader or "
		            "beyond the 4 KiB window",
		            o->name, d->id, o->config_size);
	if (!o->save != !o->restore || (o->save && o->state_min_version > o->state_version))
		return errf(e, EINVAL, "%s %s: save/restore and their versions do not match",
		            o->name, d->id);
	return 0;
}

int virtio_mmio_create(struct virtio_mmio **out, struct virtio_dev *dev,
                       const struct virtio_mmio_params *p, struct errbuf *e)
{
	int r;

	*out = NULL;
	r = check_ops(dev, e);
	if (r < 0)
		return r;
	if (!p->gm)
		return errf(e, EINVAL, "%s %s: no guest memory", dev->ops->name, dev->id);
	if (p->base % VIRTIO_MMIO_SIZE || p->base > UINT64_MAX - VIRTIO_MMIO_SIZE)
		return errf(e, EINVAL, "%s %s: MMIO base 0x%" PRIx64 " is not a 4 KiB page",
		            dev->ops->name, dev->id, p->base);

	struct virtio_mmio *m = calloc(1, sizeof(*m));
	if (!m)
		return errf(e, ENOMEM, "out of memory for %s %s", dev->ops->name, dev->id);
	*m = (struct virtio_mmio){.dev = dev,
	                          .base = p->base,
	                          .gsi = p->gsi,
	                          .hv = p->hv,
	                          .hv_opaque = p->hv_opaque,
	                          .irq_fd = -1};
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		m->kick_fd[q] = -1;
		m->kick[q] = (struct virtio_mmio_kick){.m = m, .q = (uint16_t)q};
	}
	pthread_mutex_init(&m->lock, NULL);
	m->irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	for (unsigned q = 0; q < dev->ops->nr_queues && m->irq_fd >= 0; q++) {
		m->kick_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (m->kick_fd[q] < 0)
			break;
	}
	if (m->irq_fd < 0 || m->kick_fd[dev->ops->nr_queues - 1] < 0) {
		r = errf(e, errno, "%s %s: eventfd: %s", dev->ops->name, dev->id, strerror(errno));
		goto err_fds;
	}
	dev->gm = p->gm;
	dev->transport = m;
	dev->driver_features = 0;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vq_reset(&dev->vq[q]);
	r = iothread_create(&dev->io, dev->id, e);
	if (r < 0)
		goto err_fds;
	if (m->hv && m->hv->irqfd) {
		r = m->hv->irqfd(m->hv_opaque, m->irq_fd, m->gsi, true);
		if (r < 0) {
			r = errf(e, -r, "%s %s: KVM_IRQFD on GSI %u: %s", dev->ops->name, dev->id,
			         m->gsi, strerror(-r));
			goto err_thread;
		}
		m->irqfd_on = true;
	}
	*out = m;
	return 0;

err_thread:
	iothread_destroy(dev->io);
	dev->io = NULL;
err_fds:
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (m->kick_fd[q] >= 0)
			close(m->kick_fd[q]);
	if (m->irq_fd >= 0)
		close(m->irq_fd);
	pthread_mutex_destroy(&m->lock);
	dev->transport = NULL;
	free(m);
	return r;
}

int virtio_mmio_attach(struct virtio_mmio *m, struct bus *mmio)
{
	int r = bus_register(mmio, m->base, VIRTIO_MMIO_SIZE, &virtio_mmio_bus_ops, m,
	                     m->dev->ops->name);
	if (r == 0)
		m->bus = mmio;
	return r;
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
	if (!m)
		return;
	struct virtio_dev *d = m->dev;

	if (m->bus)
		bus_unregister(m->bus, m->base); /* no access in flight after this */
	pthread_mutex_lock(&m->lock);
	virtio_mmio_reset_locked(m);
	pthread_mutex_unlock(&m->lock);
	iothread_destroy(d->io);
	d->io = NULL;
	if (m->irqfd_on)
		m->hv->irqfd(m->hv_opaque, m->irq_fd, m->gsi, false);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (m->kick_fd[q] >= 0)
			close(m->kick_fd[q]);
	close(m->irq_fd);
	pthread_mutex_destroy(&m->lock);
	d->transport = NULL;
	free(m);
}

int virtio_mmio_pause(struct virtio_mmio *m)
{
	return iothread_pause(m->dev->io);
}

void virtio_mmio_resume(struct virtio_mmio *m)
{
	iothread_resume(m->dev->io);
}

int virtio_mmio_cmdline(char *buf, size_t len, uint64_t base, uint32_t gsi)
{
	/* Linux's virtio_mmio.device=<size>@<baseaddr>:<irq> */
	int n = snprintf(buf, len, "virtio_mmio.device=4K@0x%" PRIx64 ":%u", base, gsi);
	if (n < 0 || (size_t)n >= len) {
		if (len)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return n;
}

/* the length of the parameter at `p` (up to unquoted white space) */
static size_t param_len(const char *p)
{
	bool quoted = false;
	size_t n = 0;
	for (; p[n] && (quoted || !isspace((unsigned char)p[n])); n++)
		if (p[n] == '"')
			quoted = !quoted;
	return n;
}

/* whether the `n` bytes at `p`, double quotes dropped, spell `want` */
static bool param_is(const char *p, size_t n, const char *want)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"')
			continue;
		if (*want++ != p[i])
			return false;
	}
	return *want == '\0';
}

bool virtio_cmdline_acpi_off(const char *cmdline)
{
	bool off = false;
	for (const char *p = cmdline; *p;) {
		if (isspace((unsigned char)*p)) {
			p++;
			continue;
		}
		size_t n = param_len(p);
		if (param_is(p, n, "--"))
			break;
		if (param_is(p, n, "acpi=off"))
			off = true;
		else if (param_is(p, n, "acpi=force"))
			off = false;
		p += n;
	}
	return off;
}

int virtio_mmio_cmdline_add(char *cmdline, size_t size, uint64_t base, uint32_t gsi)
{
	if (!virtio_cmdline_acpi_off(cmdline))
		return 0;
	size_t len = strlen(cmdline);
	if (len + 1 >= size)
		return -ENOSPC;
	cmdline[len] = ' ';
	if (virtio_mmio_cmdline(cmdline + len + 1, size - len - 1, base, gsi) < 0) {
		cmdline[len] = '\0';
		return -ENOSPC;
	}
	return 1;
}

/* ------------------------------------------------------- saved state */

#define QF_SIGNALLED_VALID 1u
#define QF_NOTIFY_ENABLED  2u

int virtio_mmio_save(struct virtio_mmio *m, struct state_writer *w)
{
	struct virtio_dev *d = m->dev;
	char id[STATE_ID_MAX + 1];

	pthread_mutex_lock(&m->lock);
	snprintf(id, sizeof(id), "virtio-mmio.%s.%s", d->ops->name, d->id);
	sw_begin(w, id, VIRTIO_MMIO_STATE_VERSION);
	sw_u32(w, m->status);
	sw_u32(w, m->interrupt_status);
	sw_u32(w, m->config_generation);
	sw_u32(w, m->device_features_sel);
	sw_u32(w, m->driver_features_sel);
	sw_u32(w, m->queue_sel);
	sw_u64(w, d->driver_features);
	sw_u8(w, m->broken);
	sw_u16(w, d->ops->nr_queues);
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		const struct virtq *vq = &d->vq[q];
		sw_u16(w, vq->size);
		sw_u8(w, vq->ready);
		sw_u64(w, vq->desc_gpa);
		sw_u64(w, vq->avail_gpa);
		sw_u64(w, vq->used_gpa);
		sw_u16(w, vq->last_avail_idx);
		sw_u16(w, vq->used_idx);
		sw_u16(w, vq->signalled_used);
		sw_u8(w, (vq->signalled_valid ? QF_SIGNALLED_VALID : 0) |
		                 (vq->notify_enabled ? QF_NOTIFY_ENABLED : 0));
	}
	sw_end(w);
	if (d->ops->save) {
		snprintf(id, sizeof(id), "%s.%s", d->ops->name, d->id);
		sw_begin(w, id, d->ops->state_version);
		d->ops->save(d, w);
		sw_end(w);
	}
	pthread_mutex_unlock(&m->lock);
	return sw_error(w);
}

bool virtio_mmio_state_match(const struct virtio_mmio *m, const char *id, uint16_t version)
{
	const struct virtio_dev *d = m->dev;
	char want[STATE_ID_MAX + 1];

	if (version >= 2)
		snprintf(want, sizeof(want), "virtio-mmio.%s.%s", d->ops->name, d->id);
	else
		snprintf(want, sizeof(want), "virtio-mmio.%s", d->id);
	return strcmp(id, want) == 0;
}

/* the transport's section, read into `m` and d->vq[] */
static int read_transport(struct virtio_mmio *m, struct state_reader *r, struct errbuf *e)
{
	struct virtio_dev *d = m->dev;
	char id[STATE_ID_MAX + 1];
	struct state_reader s;
	uint16_t ver;

	if (sr_next(r, id, &ver, &s) != 1 || !virtio_mmio_state_match(m, id, ver))
		return errf(e, EINVAL, "snapshot: expected section virtio-mmio.%s.%s", d->ops->name,
		            d->id);
	if (sr_check_version(id, ver, VIRTIO_MMIO_STATE_MIN_VERSION, VIRTIO_MMIO_STATE_VERSION) < 0)
		return errf(e, EINVAL, "snapshot: %s version %u not supported", id, ver);
	m->status = sr_u32(&s);
	m->interrupt_status = sr_u32(&s);
	m->config_generation = sr_u32(&s);
	m->device_features_sel = sr_u32(&s);
	m->driver_features_sel = sr_u32(&s);
	m->queue_sel = sr_u32(&s);
	d->driver_features = sr_u64(&s);
	m->broken = sr_u8(&s) != 0;
	uint16_t nq = sr_u16(&s);
	if (sr_error(&s) || nq != d->ops->nr_queues)
		return errf(e, EINVAL, "snapshot: %s is truncated or has %u queues, not %u", id, nq,
		            d->ops->nr_queues);
	for (unsigned q = 0; q < nq; q++) {
		struct virtq *vq = &d->vq[q];
		vq->size = sr_u16(&s);
		vq->ready = sr_u8(&s) != 0;
		vq->desc_gpa = sr_u64(&s);
		vq->avail_gpa = sr_u64(&s);
		vq->used_gpa = sr_u64(&s);
		vq->last_avail_idx = sr_u16(&s);
		vq->used_idx = sr_u16(&s);
		vq->signalled_used = sr_u16(&s);
		sr_u8(&s); /* flags: vq_start re-arms notifications, the first interrupt is sent */
	}
	if (sr_error(&s) || sr_left(&s))
		return errf(e, EINVAL, "snapshot: %s has a bad length", id);
	return 0;
}

/* the values a driver could not have produced through the registers */
static int check_restored(struct virtio_mmio *m, struct errbuf *e)
{
	struct virtio_dev *d = m->dev;
	uint32_t st = m->status;
	uint64_t extra = d->driver_features & ~(d->features | VIRTIO_TRANSPORT_FEATURES);

	if (st & ~0xffu || m->interrupt_status & ~3u)
		return errf(e, EINVAL, "snapshot: %s %s: bad status 0x%x or interrupt status 0x%x",
		            d->ops->name, d->id, st, m->interrupt_status);
	if ((st & VIRTIO_STATUS_FEATURES_OK) &&
	    (extra || !(d->driver_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))))
		return errf(e, EINVAL, "snapshot: %s %s: features 0x%" PRIx64 " not offered here",
		            d->ops->name, d->id, d->driver_features);
	if ((st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_FEATURES_OK))
		return errf(e, EINVAL, "snapshot: %s %s: DRIVER_OK without FEATURES_OK",
		            d->ops->name, d->id);
	/* a ready queue passed the QueueReady check (mmio.c), started or not */
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		uint32_t n = d->vq[q].size;
		if (d->vq[q].ready && !virtio_queue_size_ok(d, n))
			return errf(e, EINVAL,
			            "snapshot: %s %s queue %u: size %u is not a power of 2 in "
			            "1..QueueNumMax %u",
			            d->ops->name, d->id, q, n, d->ops->queue_max_size);
	}
	if (!(st & VIRTIO_STATUS_DRIVER_OK) || m->broken)
		return 0;
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		struct virtq probe = d->vq[q];
		if (probe.ready && vq_start(&probe, d->gm, d->driver_features))
			return errf(e, EINVAL, "snapshot: %s %s queue %u: %s", d->ops->name, d->id,
			            q, probe.error);
	}
	return 0;
}

static int read_device(struct virtio_mmio *m, struct state_reader *r, struct errbuf *e)
{
	struct virtio_dev *d = m->dev;
	char id[STATE_ID_MAX + 1], want[STATE_ID_MAX + 1];
	struct state_reader s;
	uint16_t ver;

	if (!d->ops->restore)
		return 0;
	snprintf(want, sizeof(want), "%s.%s", d->ops->name, d->id);
	if (sr_next(r, id, &ver, &s) != 1 || strcmp(id, want))
		return errf(e, EINVAL, "snapshot: expected section %s", want);
	if (sr_check_version(id, ver, d->ops->state_min_version, d->ops->state_version) < 0)
		return errf(e, EINVAL, "snapshot: %s version %u not in %u..%u", id, ver,
		            d->ops->state_min_version, d->ops->state_version);
	return d->ops->restore(d, &s, ver, e);
}

int virtio_mmio_restore(struct virtio_mmio *m, struct state_reader *r, struct errbuf *e)
{
	struct virtio_dev *d = m->dev;
	int ret;

	pthread_mutex_lock(&m->lock);
	if (m->status || m->activated) {
		ret = errf(e, EBUSY, "%s %s: restore needs a freshly created device", d->ops->name,
		           d->id);
		goto out;
	}
	iothread_pause(d->io);
	ret = read_transport(m, r, e);
	if (ret == 0)
		ret = check_restored(m, e);
	if (ret == 0)
		ret = read_device(m, r, e);
	iothread_resume(d->io);
	if (ret < 0) {
		virtio_mmio_reset_locked(m);
		goto out;
	}
	if ((m->status & VIRTIO_STATUS_DRIVER_OK) && !m->broken)
		virtio_mmio_activate_locked(m);
	/* an edge that was pending when the state was saved is sent again */
	if (m->interrupt_status)
		virtio_efd_signal(m->irq_fd);
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}
