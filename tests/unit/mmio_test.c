// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/mmio_test.c: the rig of test_virtio_mmio and
 * test_virtio_mmio_state: a fake device type, fake hypervisor ops that
 * record the KVM wiring, a transport on real guest memory, and a guest
 * driver's steps (register accesses, negotiation, a ring, interrupts).
 */
#include "mmio_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------- a fake device */

static void fake_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct fake *f = d->priv;
	memcpy(data, f->config + off, len);
}

static void fake_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	struct fake *f = d->priv;
	memcpy(f->config + off, data, len);
}

int fake_activate(struct virtio_dev *d)
{
	struct fake *f = d->priv;
	f->activated++;
	return f->activate_ret;
}

static void fake_reset(struct virtio_dev *d)
{
	struct fake *f = d->priv;
	f->resets++;
}

/* writes "ok" into each request and returns it */
void fake_notify(struct virtio_dev *d, uint16_t q)
{
	struct fake *f = d->priv;
	while (virtio_dev_pop(d, q, &f->chain) == 1) {
		size_t n = vq_chain_write(&f->chain, 0, "ok", 2);
		virtio_dev_push(d, q, f->chain.head, (uint32_t)n);
		__atomic_fetch_add(&f->served, 1, __ATOMIC_SEQ_CST);
	}
	virtio_dev_notify_used(d, q);
}

static void fake_save(struct virtio_dev *d, struct state_writer *w)
{
	struct fake *f = d->priv;
	sw_u32(w, f->saved_magic);
}

static int fake_restore(struct virtio_dev *d, struct state_reader *r, uint16_t version,
                        struct errbuf *e)
{
	struct fake *f = d->priv;
	(void)version;
	f->saved_magic = sr_u32(r);
	return sr_error(r) ? errf(e, EINVAL, "fake: bad state") : 0;
}

const struct virtio_dev_ops fake_ops = {
        .name = "virtio-fake",
        .device_id = 42,
        .nr_queues = 2,
        .queue_max_size = 16,
        .config_size = sizeof(((struct fake *)0)->config),
        .config_read = fake_config_read,
        .config_write = fake_config_write,
        .activate = fake_activate,
        .reset = fake_reset,
        .queue_notify = fake_notify,
        .state_version = 3,
        .state_min_version = 2,
        .save = fake_save,
        .restore = fake_restore,
};

/* ------------------------------------------------ fake hypervisor ops */

static int hv_ioeventfd(void *opaque, int fd, uint64_t gpa, uint32_t datamatch, bool assign)
{
	struct hv_log *h = opaque;
	cr_assert_geq(fd, 0);
	h->ioeventfds += assign ? 1 : -1;
	h->last_gpa = gpa;
	if (assign)
		h->datamatch_mask |= 1u << datamatch;
	else
		h->datamatch_mask &= ~(1u << datamatch);
	return 0;
}

static int hv_irqfd(void *opaque, int fd, uint32_t gsi, bool assign)
{
	struct hv_log *h = opaque;
	cr_assert_geq(fd, 0);
	h->irqfds += assign ? 1 : -1;
	h->gsi = gsi;
	return 0;
}

static const struct virtio_hv_ops fake_hv = {.ioeventfd = hv_ioeventfd, .irqfd = hv_irqfd};

/* ------------------------------------------------------- the rig */

struct guest_mem gm;
struct fake fk;
struct virtio_mmio *m;
struct hv_log hv;
uint16_t avail_idx;

void make_kind(struct fake *f, struct virtio_mmio **out, const struct virtio_hv_ops *ops,
               const struct virtio_dev_ops *kind)
{
	struct errbuf e = {{0}};
	memset(f, 0, sizeof(*f));
	f->dev.ops = kind;
	strcpy(f->dev.id, "fake0");
	f->dev.features = 1ull << 3;
	f->dev.priv = f;
	memcpy(f->config, "kilnconfig!", 12);
	struct virtio_mmio_params p = {
	        .base = BASE, .gsi = GSI, .gm = &gm, .hv = ops, .hv_opaque = &hv};
	cr_assert_eq(virtio_mmio_create(out, &f->dev, &p, &e), 0, "%s", e.msg);
}

void make(struct fake *f, struct virtio_mmio **out, const struct virtio_hv_ops *ops)
{
	make_kind(f, out, ops, &fake_ops);
}

void mmio_setup(void)
{
	struct errbuf e;
	cr_assert_eq(gm_init(&gm, MIB(4), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	memset(&hv, 0, sizeof(hv));
	avail_idx = 0;
	make(&fk, &m, &fake_hv);
}

void mmio_teardown(void)
{
	virtio_mmio_destroy(m);
	gm_destroy(&gm);
}

uint32_t rd_on(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v = 0xdeadbeef;
	virtio_mmio_bus_ops.read(t, off, &v, 4);
	return v;
}

void wr_on(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(t, off, &v, 4);
}

uint32_t rd(uint64_t off)
{
	return rd_on(m, off);
}

void wr(uint64_t off, uint32_t v)
{
	wr_on(m, off, v);
}

void negotiate_on(struct virtio_mmio *t)
{
	wr_on(t, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	wr_on(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr_on(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr_on(t, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK);
}

void negotiate(uint64_t features)
{
	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, S_ACK);
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK);
}

void setup_queue(uint16_t q, uint64_t desc)
{
	wr(VIRTIO_MMIO_QUEUE_SEL, q);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSZ);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL_GPA);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED_GPA);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

/* the whole s3.1.1 sequence with queue 0 ready */
void bring_up(void)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK);
	memset(gm_ptr(&gm, DESC_GPA, 0x3000), 0, 0x3000);
	avail_idx = 0;
	setup_queue(0, DESC_GPA);
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
}

void put_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = gm_ptr(&gm, DESC_GPA + 16ull * i, 16);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

void offer(uint16_t head)
{
	uint16_t *ring = gm_ptr(&gm, AVAIL_GPA, 4 + 2 * QSZ);
	ring[2 + avail_idx % QSZ] = head;
	avail_idx++;
	__atomic_store_n(&ring[1], avail_idx, __ATOMIC_RELEASE);
}

uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)gm_ptr(&gm, USED_GPA + 2, 2), __ATOMIC_ACQUIRE);
}

/* waits up to 2 s for an interrupt (a write to irq_fd); true if one came */
bool wait_irq(struct virtio_mmio *t, int ms)
{
	struct pollfd p = {.fd = t->irq_fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return false;
	uint64_t v;
	cr_assert_eq(read(t->irq_fd, &v, 8), 8);
	return true;
}

void wait_used(uint16_t want)
{
	for (int i = 0; i < 2000 && used_idx() != want; i++)
		usleep(1000);
	cr_assert_eq(used_idx(), want);
}

int restore_fresh(const struct state_writer *w, struct fake *f, struct virtio_mmio **out,
                  struct errbuf *e, size_t *left)
{
	struct state_reader r;
	make(f, out, NULL);
	sr_init(&r, w->buf, w->len);
	int ret = virtio_mmio_restore(*out, &r, e);
	if (left)
		*left = sr_left(&r);
	return ret;
}
