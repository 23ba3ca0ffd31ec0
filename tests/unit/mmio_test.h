/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/unit/mmio_test: the rig of test_virtio_mmio and
 * test_virtio_mmio_state. mmio_setup gives each test 4 MiB of guest
 * memory (gm) and `m`, a virtio-mmio transport at BASE, GSI 7, over `fk`,
 * a device of the fake type (fake_ops: 2 queues of 16 at most, 12 bytes
 * of config, saved state version 3, restores 2 and 3); its KVM wiring goes
 * to `hv`. Queue rings live at DESC_GPA, AVAIL_GPA and USED_GPA, QSZ
 * entries each. Interrupts arrive as writes to the transport's irq_fd.
 */
#ifndef KILN_TEST_MMIO_TEST_H
#define KILN_TEST_MMIO_TEST_H

#include "virtio/virtio.h"

#include <stdbool.h>
#include <stdint.h>

#define QSZ       8
#define DESC_GPA  0x10000ull
#define AVAIL_GPA 0x11000ull
#define USED_GPA  0x12000ull
#define BUF_GPA   0x100000ull
#define BASE      0xd0000000ull
#define GSI       7

#define S_ACK  VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRV  VIRTIO_STATUS_DRIVER
#define S_FOK  VIRTIO_STATUS_FEATURES_OK
#define S_DOK  VIRTIO_STATUS_DRIVER_OK
#define S_NEED VIRTIO_STATUS_DEVICE_NEEDS_RESET

/* the fake device: what it was asked to do */
struct fake {
	struct virtio_dev dev;
	struct vq_chain chain;
	uint8_t config[12];
	unsigned activated, resets, served;
	int activate_ret;
	uint32_t saved_magic; /* its own saved state */
};

/* the fake hypervisor's record of the wiring */
struct hv_log {
	int ioeventfds; /* currently assigned */
	uint64_t last_gpa;
	uint32_t datamatch_mask;
	int irqfds;
	uint32_t gsi;
};

extern const struct virtio_dev_ops fake_ops;
extern struct guest_mem gm;
extern struct fake fk;
extern struct virtio_mmio *m;
extern struct hv_log hv;
extern uint16_t avail_idx;

/* criterion .init / .fini */
void mmio_setup(void);
void mmio_teardown(void);

/* the fake type's activate (counts, returns activate_ret) and queue_notify (serves) */
int fake_activate(struct virtio_dev *d);
void fake_notify(struct virtio_dev *d, uint16_t q);
/* a transport over f of device type `kind` (make: fake_ops) with hypervisor ops */
void make_kind(struct fake *f, struct virtio_mmio **out, const struct virtio_hv_ops *ops,
               const struct virtio_dev_ops *kind);
void make(struct fake *f, struct virtio_mmio **out, const struct virtio_hv_ops *ops);

/*
 * a new transport over f (fake_ops, no hypervisor ops) with w's saved state
 * restored into it: virtio_mmio_restore's result; *left (if given) the
 * bytes of w it did not read
 */
int restore_fresh(const struct state_writer *w, struct fake *f, struct virtio_mmio **out,
                  struct errbuf *e, size_t *left);
/* a 32-bit register read or write on transport t, or on m */
uint32_t rd_on(struct virtio_mmio *t, uint64_t off);
void wr_on(struct virtio_mmio *t, uint64_t off, uint32_t v);
uint32_t rd(uint64_t off);
void wr(uint64_t off, uint32_t v);
/* t to FEATURES_OK with VERSION_1 only */
void negotiate_on(struct virtio_mmio *t);
/* m reset and to FEATURES_OK with `features` */
void negotiate(uint64_t features);
/* queue q of m: QSZ entries, its table at `desc`, the rings at AVAIL_GPA and USED_GPA, ready */
void setup_queue(uint16_t q, uint64_t desc);
/* the whole s3.1.1 sequence with queue 0 ready */
void bring_up(void);
/* descriptor i of queue 0 */
void put_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/* head into the available ring of queue 0 */
void offer(uint16_t head);
/* queue 0's used index */
uint16_t used_idx(void);
/* waits up to `ms` for an interrupt (a write to irq_fd); true if one came */
bool wait_irq(struct virtio_mmio *t, int ms);
/* waits up to 2 s for queue 0's used index to be `want` (asserts) */
void wait_used(uint16_t want);

#endif
