/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krt virtio: a small virtio 1.2 driver core for the test guests -- device
 * discovery from the command line, the virtio-mmio version 2 transport
 * (s4.2) and split virtqueues (s2.7) that the driver POLLS (the guests run
 * in ring 3 with interrupts off). Guest-physical = virtual (identity map),
 * so buffer addresses are plain pointers.
 *
 * Every MMIO access is a VM exit (about 2.5 us with an ioeventfd, more when
 * it reaches the VMM), so the API batches: vq_add() only writes memory,
 * vq_kick() publishes every added chain with one notify (or none when the
 * device said it does not need one).
 *
 * Command-line parameters read by the core:
 *   virtio.indirect=0|1   accept VIRTIO_F_INDIRECT_DESC when offered (default 1)
 *   virtio.event_idx=0|1  accept VIRTIO_F_RING_EVENT_IDX when offered (default 1)
 *   virtio.qsize=N        queue size wanted, capped by QueueNumMax (default 256)
 *
 * Everything here is BSP-only, like krt_alloc_pages().
 */
#ifndef KRT_VIRTIO_H
#define KRT_VIRTIO_H

#include "krt.h"

#define KRT_EIO       5
#define KRT_EBUSY     16
#define KRT_ENOTSUP   95
#define KRT_ECONNRST  104
#define KRT_ENOTCONN  107
#define KRT_ECONNREFU 111

/* --------------------------------------------------- virtio-mmio (s4.2.2) */

#define VIRTIO_MMIO_MAGIC_VALUE         0x000 /* "virt" */
#define VIRTIO_MMIO_VERSION             0x004 /* 2; 1 is the legacy interface */
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100
#define VIRTIO_MMIO_MAGIC               0x74726976

/* s2.1 device status */
#define VIRTIO_STATUS_ACKNOWLEDGE        1u
#define VIRTIO_STATUS_DRIVER             2u
#define VIRTIO_STATUS_DRIVER_OK          4u
#define VIRTIO_STATUS_FEATURES_OK        8u
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED             128u

/* s6 reserved feature bits */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_BIT(b)          (1ull << (b))

/* s5 device ids */
#define VIRTIO_ID_NET   1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG   4
#define VIRTIO_ID_VSOCK 19

/* one `virtio_mmio.device=<size>@<base>:<irq>` from the command line */
struct virtio_mmio_slot {
	uint64_t base, size;
	uint32_t irq;
};
#define VIRTIO_MAX_DEVICES 32

/*
 * Parses every `virtio_mmio.device=<size>[K|M|G]@<base>:<irq>[:<id>]` of
 * `cmdline` (the Linux virtio_mmio module syntax; base in hex with 0x, or
 * decimal) into out[0 .. max), sorted by base. Returns the count; entries
 * that do not parse are skipped and counted in *bad (may be NULL). Pure.
 */
unsigned virtio_mmio_parse(const char *cmdline, struct virtio_mmio_slot *out, unsigned max,
                           unsigned *bad);

/* one device: the transport registers at `base` */
struct virtio_dev {
	uint64_t base;
	uint32_t irq;
	uint32_t device_id, vendor_id;
	uint64_t offered;  /* DeviceFeatures, read by virtio_start() */
	uint64_t features; /* what was accepted (FEATURES_OK) */
};

/* a name for a device id ("blk", "net", ...; "?" when unknown) */
const char *virtio_id_name(uint32_t device_id);

/*
 * Reads MagicValue, Version and DeviceID at slot->base. 0 with d filled,
 * -KRT_ENODEV when there is no virtio-mmio device there (or DeviceID 0, a
 * placeholder), -KRT_ENOTSUP for the legacy Version 1.
 */
int virtio_probe(struct virtio_dev *d, const struct virtio_mmio_slot *slot);

/*
 * The `nth` (from 0) device with `device_id` among the command line's
 * slots in base order. 0, or -KRT_ENODEV.
 */
int virtio_find(struct virtio_dev *d, uint32_t device_id, unsigned nth);

/* prints one line per device of the command line: "virtio: <base> irq <n> <name>" */
void virtio_print_devices(void);

/*
 * The transport features a driver may add to its own: VERSION_1 always,
 * INDIRECT_DESC and EVENT_IDX unless virtio.indirect=0 / virtio.event_idx=0.
 */
uint64_t virtio_transport_features(void);

/*
 * Initialisation up to FEATURES_OK (s3.1.1): reset, ACKNOWLEDGE, DRIVER,
 * accept offered & wanted, FEATURES_OK and check that it stuck. VERSION_1
 * must be offered and wanted. 0 or -KRT_ENOTSUP (the device refused or
 * lacks VERSION_1; FAILED is then set), -KRT_EIO (the reset did not finish).
 */
int virtio_start(struct virtio_dev *d, uint64_t wanted);
/* sets DRIVER_OK: the device is live (s3.1.1 step 8) */
void virtio_driver_ok(struct virtio_dev *d);
/* writes 0 to Status and waits until it reads 0 (s4.2.3.1); 0 or -KRT_EIO */
int virtio_reset(struct virtio_dev *d);
uint32_t virtio_status(const struct virtio_dev *d);
void virtio_set_status(struct virtio_dev *d, uint32_t status);
static inline bool virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return (d->features >> bit) & 1;
}

/*
 * Device configuration space (s4.2.2.2: accesses of the field's width,
 * 64-bit fields as two 32-bit reads under ConfigGeneration, s2.5.1).
 */
uint8_t virtio_cfg8(const struct virtio_dev *d, uint32_t off);
uint16_t virtio_cfg16(const struct virtio_dev *d, uint32_t off);
uint32_t virtio_cfg32(const struct virtio_dev *d, uint32_t off);
uint64_t virtio_cfg64(const struct virtio_dev *d, uint32_t off);

/* raw register access, for the evil guest */
uint32_t virtio_read_reg(const struct virtio_dev *d, uint32_t off);
void virtio_write_reg(struct virtio_dev *d, uint32_t off, uint32_t val);

/* ------------------------------------------------ split virtqueues (s2.7) */

/* s2.7.5 descriptor and its flags */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_DESC_F_INDIRECT      4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1 /* s2.7.6 */
#define VIRTQ_USED_F_NO_NOTIFY     1 /* s2.7.8 */

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* the most entries an indirect table of one chain has (the driver's choice) */
#define VQ_INDIRECT_MAX 32
#define VQ_MAX_SIZE     32768

/*
 * One split virtqueue as the driver sees it. The rings lie in pages of
 * their own (krt_alloc_pages); a second virtio_queue_setup() of the same
 * queue reuses them. Free descriptors form a list through desc[].next.
 */
struct virtq {
	struct virtio_dev *dev;
	uint16_t index, size;
	bool indirect;  /* VIRTIO_F_INDIRECT_DESC accepted */
	bool event_idx; /* VIRTIO_F_EVENT_IDX accepted */

	/* the rings (s2.7.5, s2.7.6, s2.7.8), guest-physical = these pointers */
	volatile struct virtq_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;  /* flags, idx, then ring[size] of 8 bytes, avail_event */
	volatile struct virtq_used_elem *used_ring;

	/* driver state */
	uint16_t free_head, num_free;
	uint16_t avail_next;      /* the avail idx vq_kick() will publish */
	uint16_t avail_published; /* the avail idx of the last kick */
	uint16_t last_used;       /* the next used entry to take */
	void **token;             /* per head: the caller's token, NULL when free */
	uint16_t *chain_descs;    /* per head: descriptors it holds in the table */
	struct virtq_desc *ind;   /* per head: an indirect table of VQ_INDIRECT_MAX */

	/* where the pages came from, for reuse */
	void *mem;
	size_t mem_pages;
	uint32_t alloc_size;

	/* statistics */
	uint64_t kicks, notifies;
};

/* one buffer of a chain; device-readable ones must come first (s2.7.4.2) */
struct vq_seg {
	const void *addr;
	uint32_t len;
	bool write; /* device-writable */
};

/*
 * Sets up queue `index` of a device between virtio_start() and
 * virtio_driver_ok() (s4.2.3.2): size = min(want, QueueNumMax) rounded
 * down to a power of 2 (want 0: virtio.qsize), rings allocated (or reused)
 * and zeroed, addresses written, QueueReady = 1. Interrupts suppressed:
 * the driver polls. 0, -KRT_ENOENT (no such queue), -KRT_EBUSY (already
 * ready), -KRT_ENOMEM.
 */
int virtio_queue_setup(struct virtio_dev *d, struct virtq *vq, uint16_t index, uint16_t want);

/*
 * Adds a chain of `nr` buffers without publishing it (see vq_kick). With
 * indirect descriptors accepted, a chain of 2..VQ_INDIRECT_MAX buffers
 * takes one descriptor pointing at the head's indirect table. Returns the
 * head (>= 0), -KRT_ENOSPC when the table is full, -KRT_EINVAL for an
 * empty chain, a NULL token or a readable buffer after a writable one.
 */
int vq_add(struct virtq *vq, const struct vq_seg *segs, unsigned nr, void *token);

/*
 * Publishes the chains added since the last kick (avail->idx, s2.7.13.3)
 * and notifies the device unless it said it needs no notification
 * (s2.7.10: avail_event with EVENT_IDX, else used->flags NO_NOTIFY).
 * Returns true when it wrote QueueNotify.
 */
bool vq_kick(struct virtq *vq);

/*
 * Takes the next used buffer (s2.7.14): 1 with *token and *len (bytes the
 * device wrote), 0 when there is none, -KRT_EIO when the device returned
 * a head that is not in flight (its bug). The chain's descriptors are free
 * again.
 */
int vq_get(struct virtq *vq, void **token, uint32_t *len);

/*
 * vq_get() in a pause loop for up to timeout_us; -KRT_ETIMEDOUT, or
 * -KRT_EIO when the device set DEVICE_NEEDS_RESET meanwhile (checked every
 * millisecond: a Status read is an exit).
 */
int vq_wait(struct virtq *vq, void **token, uint32_t *len, uint64_t timeout_us);

/* chains in flight (added, not yet taken back) */
unsigned vq_in_flight(const struct virtq *vq);

/* ------------------------------------------ raw access for the evil guest */

/* writes descriptor i of the table as given (no bookkeeping) */
void vq_raw_desc(struct virtq *vq, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next);
/* puts `head` (any value) in the next avail ring entry and publishes it */
void vq_raw_publish(struct virtq *vq, uint16_t head);
/* writes avail->idx as given */
void vq_raw_set_avail_idx(struct virtq *vq, uint16_t idx);
/* writes QueueNotify unconditionally */
void vq_notify(struct virtq *vq);

#endif
