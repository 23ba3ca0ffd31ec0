// SPDX-License-Identifier: Apache-2.0
/*
 * The virtio-mmio transport (virtio/mmio.c, mmio_setup.c), driven as a
 * guest driver would drive it:
 * register accesses through the bus callbacks, rings in a real guest_mem,
 * a fake device type, and fake hypervisor ops that record the KVM wiring.
 * Interrupts arrive as writes to the transport's irq_fd.
 */
#include <criterion/criterion.h>

#include "virtio/virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define QSZ       8
#define DESC_GPA  0x10000ull
#define AVAIL_GPA 0x11000ull
#define USED_GPA  0x12000ull
#define BUF_GPA   0x100000ull
#define BASE      0xd0000000ull
#define GSI       7

/* ------------------------------------------------------- a fake device */

struct fake {
	struct virtio_dev dev;
	struct vq_chain chain;
	uint8_t config[12];
	unsigned activated, resets, served;
	int activate_ret;
	uint32_t saved_magic; /* its own saved state */
};

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

static int fake_activate(struct virtio_dev *d)
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
static void fake_notify(struct virtio_dev *d, uint16_t q)
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

static const struct virtio_dev_ops fake_ops = {
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

struct hv_log {
	int ioeventfds; /* currently assigned */
	uint64_t last_gpa;
	uint32_t datamatch_mask;
	int irqfds;
	uint32_t gsi;
};

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

static struct guest_mem gm;
static struct fake fk;
static struct virtio_mmio *m;
static struct hv_log hv;
static uint16_t avail_idx;

static void make_kind(struct fake *f, struct virtio_mmio **out, const struct virtio_hv_ops *ops,
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

static void make(struct fake *f, struct virtio_mmio **out, const struct virtio_hv_ops *ops)
{
	make_kind(f, out, ops, &fake_ops);
}

static void setup(void)
{
	struct errbuf e;
	cr_assert_eq(gm_init(&gm, MIB(4), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	memset(&hv, 0, sizeof(hv));
	avail_idx = 0;
	make(&fk, &m, &fake_hv);
}

static void teardown(void)
{
	virtio_mmio_destroy(m);
	gm_destroy(&gm);
}

TestSuite(mmio, .init = setup, .fini = teardown);

static uint32_t rd_on(struct virtio_mmio *t, uint64_t off)
{
	uint32_t v = 0xdeadbeef;
	virtio_mmio_bus_ops.read(t, off, &v, 4);
	return v;
}

static void wr_on(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	virtio_mmio_bus_ops.write(t, off, &v, 4);
}

static uint32_t rd(uint64_t off)
{
	return rd_on(m, off);
}

static void wr(uint64_t off, uint32_t v)
{
	wr_on(m, off, v);
}

#define S_ACK  VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRV  VIRTIO_STATUS_DRIVER
#define S_FOK  VIRTIO_STATUS_FEATURES_OK
#define S_DOK  VIRTIO_STATUS_DRIVER_OK
#define S_NEED VIRTIO_STATUS_DEVICE_NEEDS_RESET

static void negotiate_on(struct virtio_mmio *t)
{
	wr_on(t, VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	wr_on(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr_on(t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr_on(t, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK);
}

static void negotiate(uint64_t features)
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

static void setup_queue(uint16_t q, uint64_t desc)
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
static void bring_up(void)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK);
	memset(gm_ptr(&gm, DESC_GPA, 0x3000), 0, 0x3000);
	avail_idx = 0;
	setup_queue(0, DESC_GPA);
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
}

static void put_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *p = gm_ptr(&gm, DESC_GPA + 16ull * i, 16);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void offer(uint16_t head)
{
	uint16_t *ring = gm_ptr(&gm, AVAIL_GPA, 4 + 2 * QSZ);
	ring[2 + avail_idx % QSZ] = head;
	avail_idx++;
	__atomic_store_n(&ring[1], avail_idx, __ATOMIC_RELEASE);
}

static uint16_t used_idx(void)
{
	return __atomic_load_n((uint16_t *)gm_ptr(&gm, USED_GPA + 2, 2), __ATOMIC_ACQUIRE);
}

/* waits up to 2 s for an interrupt (a write to irq_fd); true if one came */
static bool wait_irq(struct virtio_mmio *t, int ms)
{
	struct pollfd p = {.fd = t->irq_fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return false;
	uint64_t v;
	cr_assert_eq(read(t->irq_fd, &v, 8), 8);
	return true;
}

static void wait_used(uint16_t want)
{
	for (int i = 0; i < 2000 && used_idx() != want; i++)
		usleep(1000);
	cr_assert_eq(used_idx(), want);
}

/* ----------------------------------------------------------- tests */

Test(mmio, identity_registers)
{
	cr_assert_eq(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	cr_assert_eq(rd(VIRTIO_MMIO_VERSION), 2);
	cr_assert_eq(rd(VIRTIO_MMIO_DEVICE_ID), 42);
	cr_assert_eq(rd(VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
	cr_assert_eq(rd(VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff, "no shared memory regions");
	cr_assert_eq(hv.irqfds, 1, "irqfd assigned at creation");
	cr_assert_eq(hv.gsi, GSI);
}

Test(mmio, device_features)
{
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t lo = rd(VIRTIO_MMIO_DEVICE_FEATURES);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint32_t hi = rd(VIRTIO_MMIO_DEVICE_FEATURES);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	cr_assert_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0);
	cr_assert_eq(lo, (1u << 3) | (1u << VIRTIO_F_INDIRECT_DESC) | (1u << VIRTIO_F_EVENT_IDX));
	cr_assert_eq(hi, 1u << (VIRTIO_F_VERSION_1 - 32));
}

Test(mmio, driver_without_version_1_is_refused)
{
	negotiate(1ull << 3);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV, "FEATURES_OK must not stick");
}

Test(mmio, driver_with_unoffered_features_is_refused)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1) | (1ull << 5));
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV);
}

Test(mmio, features_are_frozen_after_features_ok)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1) | (1ull << 3));
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0);
	cr_assert_eq(fk.dev.driver_features, VIRTIO_BIT(VIRTIO_F_VERSION_1) | (1ull << 3));
}

Test(mmio, queue_registers)
{
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
	wr(VIRTIO_MMIO_QUEUE_SEL, 2);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "no queue 2");
	wr(VIRTIO_MMIO_QUEUE_READY, 1); /* ignored, no crash */
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
	wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0x2);
	cr_assert_eq(fk.dev.vq[1].size, 4);
	cr_assert_eq(fk.dev.vq[1].desc_gpa, 0x200001000ull);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_READY), 1);
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	cr_assert_eq(fk.dev.vq[1].size, 4, "a ready queue keeps its configuration");
}

Test(mmio, read_only_and_write_only_registers)
{
	wr(VIRTIO_MMIO_MAGIC_VALUE, 0);
	wr(VIRTIO_MMIO_DEVICE_ID, 0);
	wr(VIRTIO_MMIO_INTERRUPT_STATUS, 3);
	wr(0x0f0, 1);
	cr_assert_eq(rd(VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	cr_assert_eq(rd(VIRTIO_MMIO_DEVICE_ID), 42);
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	uint64_t wo[] = {VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DRIVER_FEATURES,
	                 VIRTIO_MMIO_QUEUE_SEL,           VIRTIO_MMIO_QUEUE_NUM,
	                 VIRTIO_MMIO_QUEUE_NOTIFY,        VIRTIO_MMIO_INTERRUPT_ACK,
	                 VIRTIO_MMIO_QUEUE_DESC_LOW,      VIRTIO_MMIO_QUEUE_DEVICE_HIGH};
	for (unsigned i = 0; i < ARRAY_SIZE(wo); i++)
		cr_assert_eq(rd(wo[i]), 0, "write-only register 0x%lx", (unsigned long)wo[i]);
}

Test(mmio, narrow_and_unaligned_register_accesses_are_ignored)
{
	uint8_t b = 0x55;
	virtio_mmio_bus_ops.read(m, VIRTIO_MMIO_MAGIC_VALUE, &b, 1);
	cr_assert_eq(b, 0);
	uint16_t h = 0x5555;
	virtio_mmio_bus_ops.read(m, VIRTIO_MMIO_VERSION, &h, 2);
	cr_assert_eq(h, 0);
	uint64_t q = ~0ull;
	virtio_mmio_bus_ops.read(m, VIRTIO_MMIO_MAGIC_VALUE, &q, 8);
	cr_assert_eq(q, 0);
	cr_assert_eq(rd(VIRTIO_MMIO_MAGIC_VALUE + 2), 0, "unaligned");
	uint8_t st = S_ACK;
	virtio_mmio_bus_ops.write(m, VIRTIO_MMIO_STATUS, &st, 1);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
	wr(VIRTIO_MMIO_STATUS + 1, S_ACK);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
}

Test(mmio, config_space_accesses)
{
	uint8_t b;
	uint16_t h;
	uint32_t w;
	uint64_t q;
	virtio_mmio_bus_ops.read(m, VIRTIO_MMIO_CONFIG + 1, &b, 1);
	cr_assert_eq(b, 'i');
	virtio_mmio_bus_ops.read(m, VIRTIO_MMIO_CONFIG + 2, &h, 2);
	cr_assert_eq(memcmp(&h, "ln", 2), 0);
	virtio_mmio_bus_ops.read(m, VIRTIO_MMIO_CONFIG + 4, &w, 4);
	cr_assert_eq(memcmp(&w, "conf", 4), 0);
	virtio_mmio_bus_ops.read(m, VIRTIO_MMIO_CONFIG + 4, &q, 8);
	cr_assert_eq(memcmp(&q, "config!", 8), 0);
	q = ~0ull;
	virtio_mmio_bus_ops.read(m, VIRTIO_MMIO_CONFIG + 8, &q, 8);
	cr_assert_eq(q, 0, "runs past the 12-byte config space");
	w = 0xffffffff;
	virtio_mmio_bus_ops.read(m, 0xffc, &w, 4);
	cr_assert_eq(w, 0, "end of the window");
	virtio_mmio_bus_ops.write(m, VIRTIO_MMIO_CONFIG + 10, "XYZ", 2);
	cr_assert_eq(memcmp(fk.config + 10, "XY", 2), 0);
	virtio_mmio_bus_ops.write(m, VIRTIO_MMIO_CONFIG + 10, "XYZW", 4);
	cr_assert_eq(fk.config[11], 'Y', "a write past the end is ignored");
}

Test(mmio, config_change_interrupt_and_generation)
{
	uint32_t gen = rd(VIRTIO_MMIO_CONFIG_GENERATION);
	virtio_dev_config_changed(&fk.dev);
	cr_assert_neq(rd(VIRTIO_MMIO_CONFIG_GENERATION), gen);
	cr_assert_not(wait_irq(m, 0), "no interrupt before DRIVER_OK");
	bring_up();
	virtio_dev_config_changed(&fk.dev);
	cr_assert(wait_irq(m, 1000));
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

Test(mmio, requests_flow_through_the_io_thread)
{
	bring_up();
	cr_assert_eq(fk.activated, 1);
	cr_assert_eq(hv.ioeventfds, 1, "one ioeventfd for the one ready queue");
	cr_assert_eq(hv.last_gpa, BASE + VIRTIO_MMIO_QUEUE_NOTIFY);
	cr_assert_eq(hv.datamatch_mask, 1u);
	put_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_used(1);
	cr_assert_eq(memcmp(gm_ptr(&gm, BUF_GPA, 2), "ok", 2), 0);
	cr_assert(wait_irq(m, 2000));
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);

	/* as KVM would: the ioeventfd itself is written */
	offer(0);
	uint64_t one = 1;
	cr_assert_eq(write(m->kick_fd[0], &one, 8), 8);
	wait_used(2);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 7); /* no such queue: ignored */
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1); /* not ready: nothing happens */
}

Test(mmio, buffers_offered_before_driver_ok_are_served)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	setup_queue(0, DESC_GPA);
	put_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	wait_used(1);
}

Test(mmio, broken_ring_needs_reset_then_recovers)
{
	bring_up();
	put_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0); /* a loop */
	offer(0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(wait_irq(m, 2000), "config interrupt");
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK | S_NEED);
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG,
	             VIRTIO_MMIO_INT_CONFIG);
	cr_assert(virtio_dev_broken(&fk.dev));
	cr_assert_eq(used_idx(), 0);

	/* the device no longer serves: a good chain is left alone */
	put_desc(1, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	usleep(50000);
	cr_assert_eq(used_idx(), 0);
	cr_assert_eq(fk.served, 0);

	/* the driver resets (s2.4) and starts over */
	unsigned resets = fk.resets;
	wr(VIRTIO_MMIO_STATUS, 0);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	cr_assert_eq(fk.resets, resets + 1);
	cr_assert_eq(hv.ioeventfds, 0, "ioeventfds removed at reset");
	cr_assert_not(virtio_dev_broken(&fk.dev));
	bring_up();
	put_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_used(1);
}

Test(mmio, driver_ok_without_features_ok)
{
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV);
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_DOK);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_NEED);
	cr_assert_eq(fk.activated, 0);
}

Test(mmio, bad_queue_at_driver_ok)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	setup_queue(0, DESC_GPA + 8); /* misaligned descriptor table */
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	cr_assert(rd(VIRTIO_MMIO_STATUS) & S_NEED);
	cr_assert(wait_irq(m, 1000));
	cr_assert_eq(fk.activated, 0);
	cr_assert_eq(hv.ioeventfds, 0);
}

Test(mmio, failed_activation)
{
	fk.activate_ret = -EIO;
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	setup_queue(0, DESC_GPA);
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	cr_assert(rd(VIRTIO_MMIO_STATUS) & S_NEED);
	cr_assert_eq(fk.activated, 1);
}

Test(mmio, queue_size_over_the_max)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 0x10000 + 8); /* does not fit 16 bits */
	cr_assert_eq(fk.dev.vq[0].size, 0);
}

/*
 * Issue 9: QueueNum is checked against QueueNumMax (16 here) when the
 * driver enables the queue. A size the device does not offer, or one that
 * is not a power of 2, breaks the device with the queue left off; after a
 * reset a good size works.
 */
Test(mmio, queue_num_above_queue_num_max_needs_reset)
{
	static const uint32_t bad[] = {32, 1024, 12, 0};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
		wr(VIRTIO_MMIO_QUEUE_SEL, 0);
		cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
		wr(VIRTIO_MMIO_QUEUE_NUM, bad[i]);
		wr(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC_GPA);
		wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)AVAIL_GPA);
		wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)USED_GPA);
		wr(VIRTIO_MMIO_QUEUE_READY, 1);
		cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0, "QueueNum %u: enabled", bad[i]);
		cr_assert_eq(rd(VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_NEED, "QueueNum %u",
		             bad[i]);
		cr_assert(virtio_dev_broken(&fk.dev));
		wr(VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
		cr_assert_eq(fk.activated, 0, "QueueNum %u: activated", bad[i]);
		cr_assert_eq(hv.ioeventfds, 0);
	}
	wr(VIRTIO_MMIO_STATUS, 0);
	bring_up();
	put_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_used(1);
}

/* a restored queue is held to the same rule, started or not */
Test(mmio, restore_refuses_a_queue_above_queue_num_max)
{
	negotiate(VIRTIO_BIT(VIRTIO_F_VERSION_1));
	setup_queue(0, DESC_GPA);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_READY), 1);
	fk.dev.vq[0].size = 32; /* what a forged state file could say */
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(m, &w), 0);

	struct fake f2;
	struct virtio_mmio *m2;
	make(&f2, &m2, NULL);
	struct state_reader r;
	struct errbuf e = {{0}};
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(m2, &r, &e), -EINVAL);
	cr_assert(strstr(e.msg, "QueueNumMax"), "%s", e.msg);
	cr_assert_eq(rd_on(m2, VIRTIO_MMIO_STATUS), 0);
	virtio_mmio_destroy(m2);
	sw_free(&w);
}

Test(mmio, pause_keeps_the_io_thread_off)
{
	bring_up();
	cr_assert_eq(virtio_mmio_pause(m), 0);
	put_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	usleep(100000);
	cr_assert_eq(used_idx(), 0, "served while paused");
	virtio_mmio_resume(m);
	wait_used(1);
}

Test(mmio, save_and_restore)
{
	bring_up();
	put_desc(0, BUF_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_used(1);
	cr_assert(wait_irq(m, 2000));
	fk.saved_magic = 0x1234;
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);

	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_pause(m), 0);
	cr_assert_eq(virtio_mmio_save(m, &w), 0);
	virtio_mmio_resume(m);

	struct fake f2;
	struct virtio_mmio *m2;
	make(&f2, &m2, NULL);
	struct state_reader r;
	struct errbuf e = {{0}};
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(m2, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(sr_left(&r), 0);
	cr_assert_eq(f2.saved_magic, 0x1234);
	cr_assert_eq(f2.activated, 1);
	cr_assert_eq(rd_on(m2, VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
	cr_assert_eq(rd_on(m2, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	cr_assert(wait_irq(m2, 1000), "the pending interrupt is raised again");
	cr_assert_eq(rd_on(m2, VIRTIO_MMIO_QUEUE_NUM_MAX), 16, "QueueSel restored (queue 1)");
	cr_assert_eq(virtio_mmio_pause(m2), 0); /* the I/O thread owns the indices */
	cr_assert_eq(f2.dev.vq[0].last_avail_idx, 1);
	cr_assert_eq(f2.dev.vq[0].used_idx, 1);
	cr_assert_eq(f2.dev.driver_features, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	virtio_mmio_resume(m2);

	/* the restored device goes on where the first one stopped */
	offer(0);
	wr_on(m2, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wait_used(2);
	virtio_mmio_destroy(m2);

	/* a truncated snapshot is refused and leaves the device reset */
	make(&f2, &m2, NULL);
	sr_init(&r, w.buf, w.len - 3);
	cr_assert_lt(virtio_mmio_restore(m2, &r, &e), 0);
	cr_assert_eq(rd_on(m2, VIRTIO_MMIO_STATUS), 0);
	virtio_mmio_destroy(m2);
	sw_free(&w);
}

Test(mmio, restore_rejects_bad_state)
{
	/* a snapshot with a queue in the MMIO hole */
	bring_up();
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(m, &w), 0);
	/* section header: u8 id_len, id, u16 version, u32 length, then 6 u32,
	 * u64 features, u8 broken, u16 nq, then queue 0: u16 size, u8 ready, u64 desc */
	size_t off = 1 + strlen("virtio-mmio.virtio-fake.fake0") + 2 + 4 + 24 + 8 + 1 + 2 + 2 + 1;
	uint64_t hole = GM_HOLE_START;
	memcpy(w.buf + off, &hole, 8);

	struct fake f2;
	struct virtio_mmio *m2;
	make(&f2, &m2, NULL);
	struct state_reader r;
	struct errbuf e = {{0}};
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(m2, &r, &e), -EINVAL);
	cr_assert(strstr(e.msg, "queue 0"), "%s", e.msg);
	cr_assert_eq(f2.activated, 0);
	/* and not twice into a live device */
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(m, &r, &e), -EBUSY);
	virtio_mmio_destroy(m2);
	sw_free(&w);
}

/* another kind of device, without state of its own */
static const struct virtio_dev_ops other_ops = {
        .name = "virtio-other",
        .device_id = 43,
        .nr_queues = 2,
        .queue_max_size = 16,
        .queue_notify = fake_notify,
        .activate = fake_activate,
};

/*
 * Issue 9: ids are unique only within a kind, so the transport's section
 * names both ("virtio-mmio.<name>.<id>", version 2); a device of another
 * kind with the same id does not take it. A version 1 section, which named
 * the id alone, still loads.
 */
Test(mmio, state_section_names_the_kind)
{
	bring_up();
	fk.saved_magic = 0x5678;
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(m, &w), 0);
	struct state_reader r, sub;
	char id[STATE_ID_MAX + 1];
	uint16_t ver;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(sr_next(&r, id, &ver, &sub), 1);
	cr_assert_str_eq(id, "virtio-mmio.virtio-fake.fake0");
	cr_assert_eq(ver, 2);
	cr_assert(virtio_mmio_state_match(m, id, ver));

	struct fake o;
	struct virtio_mmio *mo;
	struct errbuf e = {{0}};
	make_kind(&o, &mo, NULL, &other_ops);
	cr_assert_not(virtio_mmio_state_match(mo, id, ver));
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(mo, &r, &e), -EINVAL);
	cr_assert(strstr(e.msg, "virtio-mmio.virtio-other.fake0"), "%s", e.msg);
	cr_assert_eq(o.activated, 0);
	cr_assert_eq(rd_on(mo, VIRTIO_MMIO_STATUS), 0);
	virtio_mmio_destroy(mo);

	/* the same state as version 1 wrote it: "virtio-mmio.fake0" */
	size_t old_len = strlen(id), new_len = strlen("virtio-mmio.fake0");
	uint8_t *v1 = malloc(w.len);
	cr_assert(v1);
	v1[0] = (uint8_t)new_len;
	memcpy(v1 + 1, "virtio-mmio.fake0", new_len);
	memcpy(v1 + 1 + new_len, w.buf + 1 + old_len, w.len - 1 - old_len);
	uint16_t one = 1;
	memcpy(v1 + 1 + new_len, &one, 2);
	size_t v1_len = w.len - (old_len - new_len);
	sr_init(&r, v1, v1_len);
	cr_assert_eq(sr_next(&r, id, &ver, &sub), 1);
	cr_assert(virtio_mmio_state_match(m, id, ver));
	cr_assert_not(virtio_mmio_state_match(m, id, 2));

	struct fake f2;
	struct virtio_mmio *m2;
	make(&f2, &m2, NULL);
	sr_init(&r, v1, v1_len);
	cr_assert_eq(virtio_mmio_restore(m2, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(sr_left(&r), 0);
	cr_assert_eq(f2.saved_magic, 0x5678);
	cr_assert_eq(f2.activated, 1);
	virtio_mmio_destroy(m2);
	free(v1);
	sw_free(&w);
}

Test(mmio, attach_to_a_bus)
{
	struct bus b;
	bus_init(&b, "mmio");
	cr_assert_eq(virtio_mmio_attach(m, &b), 0);
	uint32_t v = 0;
	cr_assert_eq(bus_access(&b, BASE + VIRTIO_MMIO_MAGIC_VALUE, &v, 4, false), 0);
	cr_assert_eq(v, VIRTIO_MMIO_MAGIC);
	virtio_mmio_destroy(m); /* unregisters */
	m = NULL;
	cr_assert_eq(bus_access(&b, BASE, &v, 4, false), -ENOENT);
	bus_destroy(&b);
	cr_assert_eq(hv.irqfds, 0, "irqfd removed");
}

Test(mmio, create_rejects_bad_devices)
{
	struct fake f;
	struct virtio_mmio *t;
	struct errbuf e;
	struct virtio_dev_ops bad = fake_ops;
	struct virtio_mmio_params p = {.base = BASE, .gsi = GSI, .gm = &gm};

	memset(&f, 0, sizeof(f));
	strcpy(f.dev.id, "x");
	f.dev.ops = &bad;
	bad.queue_max_size = 12;
	cr_assert_eq(virtio_mmio_create(&t, &f.dev, &p, &e), -EINVAL);
	cr_assert(strstr(e.msg, "power of 2"), "%s", e.msg);
	bad = fake_ops;
	bad.nr_queues = VIRTIO_MAX_QUEUES + 1;
	cr_assert_eq(virtio_mmio_create(&t, &f.dev, &p, &e), -EINVAL);
	bad = fake_ops;
	bad.config_size = 0xf01;
	cr_assert_eq(virtio_mmio_create(&t, &f.dev, &p, &e), -EINVAL);
	bad = fake_ops;
	p.base = BASE + 0x800;
	cr_assert_eq(virtio_mmio_create(&t, &f.dev, &p, &e), -EINVAL);
	p.base = BASE;
	f.dev.id[0] = 0;
	cr_assert_eq(virtio_mmio_create(&t, &f.dev, &p, &e), -EINVAL);
}

Test(mmio, cmdline)
{
	char buf[64];
	cr_assert_eq(virtio_mmio_cmdline(buf, sizeof(buf), 0xd0001000ull, 6), 34);
	cr_assert_str_eq(buf, "virtio_mmio.device=4K@0xd0001000:6");
	cr_assert_eq(virtio_mmio_cmdline(buf, 10, 0xd0001000ull, 6), -ENOSPC);
	cr_assert_str_eq(buf, "");
}

/* the real KVM_IOEVENTFD / KVM_IRQFD calls, on a VM with an in-kernel irqchip */
Test(mmio, kvm_wiring)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		cr_skip_test("no /dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	cr_assert_geq(vm, 0);
	cr_assert_eq(ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0);

	struct fake f;
	struct virtio_mmio *t;
	struct errbuf e = {{0}};
	memset(&f, 0, sizeof(f));
	f.dev.ops = &fake_ops;
	strcpy(f.dev.id, "kvm0");
	f.dev.priv = &f;
	struct virtio_mmio_params p = {
	        .base = BASE, .gsi = GSI, .gm = &gm, .hv = &virtio_kvm_hv_ops, .hv_opaque = &vm};
	cr_assert_eq(virtio_mmio_create(&t, &f.dev, &p, &e), 0, "%s", e.msg);
	cr_assert(t->irqfd_on);
	/* the same eventfd on the same GSI twice is refused: it is assigned */
	cr_assert_eq(virtio_kvm_hv_ops.irqfd(&vm, t->irq_fd, GSI, true), -EBUSY);

	negotiate_on(t);
	for (uint16_t q = 0; q < 2; q++) {
		wr_on(t, VIRTIO_MMIO_QUEUE_SEL, q);
		wr_on(t, VIRTIO_MMIO_QUEUE_NUM, QSZ);
		wr_on(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(DESC_GPA + 0x4000 * q));
		wr_on(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(AVAIL_GPA + 0x4000 * q));
		wr_on(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(USED_GPA + 0x4000 * q));
		wr_on(t, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr_on(t, VIRTIO_MMIO_STATUS, S_ACK | S_DRV | S_FOK | S_DOK);
	cr_assert_eq(rd_on(t, VIRTIO_MMIO_STATUS), S_ACK | S_DRV | S_FOK | S_DOK);
	cr_assert(t->ioeventfd_on[0] && t->ioeventfd_on[1]);
	/* assigned: a second identical registration is refused by KVM */
	cr_assert_eq(virtio_kvm_hv_ops.ioeventfd(&vm, t->kick_fd[1],
	                                         BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 1, true),
	             -EEXIST);
	wr_on(t, VIRTIO_MMIO_STATUS, 0);
	cr_assert_not(t->ioeventfd_on[0] || t->ioeventfd_on[1]);
	/* deassigned: so it can be assigned again (and removed) */
	cr_assert_eq(virtio_kvm_hv_ops.ioeventfd(&vm, t->kick_fd[1],
	                                         BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 1, true),
	             0);
	cr_assert_eq(virtio_kvm_hv_ops.ioeventfd(&vm, t->kick_fd[1],
	                                         BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 1, false),
	             0);
	int irq_fd = dup(t->irq_fd);
	virtio_mmio_destroy(t);
	/* the irqfd was removed with the transport: it can be assigned anew */
	cr_assert_eq(virtio_kvm_hv_ops.irqfd(&vm, irq_fd, GSI, true), 0);
	cr_assert_eq(virtio_kvm_hv_ops.irqfd(&vm, irq_fd, GSI, false), 0);
	close(irq_fd);
	close(vm);
	close(kvm);
}
