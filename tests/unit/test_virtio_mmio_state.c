// SPDX-License-Identifier: Apache-2.0
/*
 * The virtio-mmio transport's pause, saved state (its checks, the device
 * kind in the section) and set-up (virtio/mmio_setup.c: the bus, bad
 * devices, the kernel command line, the KVM wiring), on mmio_test.c's rig.
 */
#include "mmio_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

TestSuite(mmio_state, .init = mmio_setup, .fini = mmio_teardown);

Test(mmio_state, pause_keeps_the_io_thread_off)
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

Test(mmio_state, save_and_restore)
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
	size_t left = 1;
	struct errbuf e = {{0}};
	cr_assert_eq(restore_fresh(&w, &f2, &m2, &e, &left), 0, "%s", e.msg);
	cr_assert_eq(left, 0);
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
	struct state_reader r;
	make(&f2, &m2, NULL);
	sr_init(&r, w.buf, w.len - 3);
	cr_assert_lt(virtio_mmio_restore(m2, &r, &e), 0);
	cr_assert_eq(rd_on(m2, VIRTIO_MMIO_STATUS), 0);
	virtio_mmio_destroy(m2);
	sw_free(&w);
}

Test(mmio_state, restore_rejects_bad_state)
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
	struct errbuf e = {{0}};
	cr_assert_eq(restore_fresh(&w, &f2, &m2, &e, NULL), -EINVAL);
	cr_assert(strstr(e.msg, "queue 0"), "%s", e.msg);
	cr_assert_eq(f2.activated, 0);
	/* and not twice into a live device */
	struct state_reader r;
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
Test(mmio_state, state_section_names_the_kind)
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

Test(mmio_state, attach_to_a_bus)
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

Test(mmio_state, create_rejects_bad_devices)
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

Test(mmio_state, cmdline)
{
	char buf[64];
	cr_assert_eq(virtio_mmio_cmdline(buf, sizeof(buf), 0xd0001000ull, 6), 34);
	cr_assert_str_eq(buf, "virtio_mmio.device=4K@0xd0001000:6");
	cr_assert_eq(virtio_mmio_cmdline(buf, 10, 0xd0001000ull, 6), -ENOSPC);
	cr_assert_str_eq(buf, "");
}

/* the real KVM_IOEVENTFD / KVM_IRQFD calls, on a VM with an in-kernel irqchip */
Test(mmio_state, kvm_wiring)
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
