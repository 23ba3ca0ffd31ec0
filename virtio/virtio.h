/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio: the virtio 1.2 core shared by every kiln device -- split
 * virtqueues (queue.c), the virtio-mmio version 2 transport (mmio.c,
 * mmio_setup.c) and the per-device I/O thread (iothread.c).
 *
 * Threads and who touches what:
 *   - vCPU threads access the transport's registers through the MMIO bus;
 *     a per-transport mutex serialises them. Device set-up (activate) and
 *     teardown (reset) run there, under that mutex, while the device's I/O
 *     thread is parked.
 *   - The device's I/O thread runs ops->queue_notify and the callbacks of
 *     the device's backend fds. It alone pops and pushes the queues. It
 *     never takes the transport mutex: raising an interrupt, reporting a
 *     config change and breaking the device (NEEDS_RESET) are lock-free.
 *   - The VMM thread creates, pauses/resumes, saves/restores and destroys.
 *
 * A device is written as (see rng.c, blk.c for real ones):
 *	static void foo_notify(struct virtio_dev *d, uint16_t q)
 *	{
 *		struct foo *f = d->priv;
 *		int r;
 *		while ((r = virtio_dev_pop(d, q, &f->chain)) == 1) {
 *			... read chain.iov[0 .. nr_readable), write the rest ...
 *			virtio_dev_push(d, q, f->chain.head, written);
 *		}
 *		virtio_dev_notify_used(d, q); // one interrupt per batch, if wanted
 *	}
 * A pop that returns 0 has re-armed the driver's notifications (virtio 1.2
 * s2.7.10), so such a loop never misses a buffer; r < 0 means the guest
 * broke the ring and the device is already in NEEDS_RESET.
 */
#ifndef KILN_VIRTIO_H
#define KILN_VIRTIO_H

#include "common/common.h"
#include "common/state.h"
#include "memory/memory.h"

#include <pthread.h>
#include <sys/uio.h>

/* --------------------------------------------------- constants (virtio 1.2) */

/* s2.1 device status field */
#define VIRTIO_STATUS_ACKNOWLEDGE        1u
#define VIRTIO_STATUS_DRIVER             2u
#define VIRTIO_STATUS_DRIVER_OK          4u
#define VIRTIO_STATUS_FEATURES_OK        8u
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED             128u

/* s6 reserved feature bits the core implements */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_BIT(b)          (1ull << (b))
/* offered by every kiln device on top of its own features */
#define VIRTIO_TRANSPORT_FEATURES                                                                  \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |                     \
	 VIRTIO_BIT(VIRTIO_F_EVENT_IDX))

/* s5 device ids */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK   19

/* ------------------------------------------------------- split virtqueues */

/* s2.7.5 descriptor flags */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
/* s2.7.6 / s2.7.8 ring flags */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

/* the largest queue kiln offers (the spec allows 32768); also the most
 * descriptors one chain may have, indirect ones included (s2.7.5.3.1) */
#define VQ_MAX_SIZE 1024

/*
 * One descriptor chain, resolved: iov[0 .. nr_readable) are the
 * device-readable buffers, iov[nr_readable .. nr_segs) the device-writable
 * ones (s2.7.4.2 makes readable ones come first). Every iov lies wholly in
 * guest RAM. Zero-length descriptors are legal but carry nothing: they are
 * counted in nr_zero_len and get no iov. The guest can change the buffers'
 * contents at any time: copy a header once before validating it.
 * Caller-provided (about 16 KiB) so that the hot path allocates nothing.
 */
struct vq_chain {
	uint16_t head;         /* give it back to vq_push() */
	uint16_t nr_segs;      /* iovs filled */
	uint16_t nr_readable;  /* the first nr_readable iovs are device-readable */
	uint16_t nr_zero_len;  /* zero-length descriptors seen (and skipped) */
	uint64_t readable_len; /* total bytes of the readable iovs */
	uint64_t writable_len; /* total bytes of the writable iovs */
	struct iovec iov[VQ_MAX_SIZE];
};

/*
 * One split virtqueue (s2.7). The transport fills size and the three ring
 * addresses from the driver's registers and calls vq_start(); after that
 * only the device's I/O thread uses it. Ring memory is reached through
 * host pointers computed once by vq_start() from gm_ptr().
 */
struct virtq {
	/* configuration, from the driver (s4.2.2: QueueNum, QueueDesc, ...) */
	uint16_t size;      /* entries, a power of 2 <= VQ_MAX_SIZE */
	bool ready;         /* QueueReady as the driver wrote it */
	uint64_t desc_gpa;  /* descriptor table, 16-byte aligned */
	uint64_t avail_gpa; /* available ring (driver area), 2-byte aligned */
	uint64_t used_gpa;  /* used ring (device area), 4-byte aligned */

	/* set by vq_start() */
	const struct guest_mem *gm;
	bool started;
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;  /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint8_t *desc;  /* host view of the rings */
	uint8_t *avail;
	uint8_t *used;
	/* byte cap of one chain: 2^32 (s2.7.5.1); a device may lower it in
	 * activate (vq_reset clears it) */
	uint64_t max_chain_len;

	/* device-side indices (saved and restored) */
	uint16_t last_avail_idx; /* next avail ring entry to take */
	uint16_t shadow_avail;   /* avail->idx as last read */
	uint16_t used_idx;       /* next used ring entry to fill (== used->idx) */
	uint16_t signalled_used; /* used_idx at the last vq_should_notify() (or the start) */
	bool signalled_valid;    /* false until then: the next push always notifies */
	bool notify_enabled;     /* driver notifications wanted (vq_enable_notify) */

	/* a broken queue stays broken until vq_reset() */
	bool broken;
	const char *error;    /* which rule the guest broke, for the log */
	uint64_t nr_zero_len; /* zero-length descriptors seen, for metrics */
};

/* Zeroes the queue: not started, not ready, size 0, indices 0. Any thread
 * while no one else uses the queue. */
void vq_reset(struct virtq *vq);

/*
 * Starts serving the queue described by its size and ring addresses:
 * checks that size is a power of 2 in 1..VQ_MAX_SIZE, the rings' alignment
 * (s2.7) and that each ring lies wholly in RAM, then caches host pointers.
 * `features` are the negotiated ones (EVENT_IDX, INDIRECT_DESC). Indices are
 * left as they are (0 after vq_reset, the saved ones after a restore).
 * 0, or -EINVAL with vq->error naming the problem. Transport, device parked.
 */
int vq_start(struct virtq *vq, const struct guest_mem *gm, uint64_t features);

/*
 * Takes the next available chain (s2.7.13) and resolves it into `chain`.
 * Returns 1 with a chain, 0 when the ring is empty (and, if notifications
 * are enabled, re-armed: a driver adding a buffer now will notify), or
 * -EINVAL when the guest broke the protocol; vq->error then names the rule
 * and the queue stays broken (every later call returns -EINVAL). Nothing
 * outside RAM is ever read or written. I/O thread.
 */
int vq_pop(struct virtq *vq, struct vq_chain *chain);

/*
 * Returns a chain to the driver: used ring entry {head, written} and then
 * used->idx (s2.7.8). `written` is the number of bytes the device wrote
 * into the chain's writable buffers (at most chain->writable_len).
 * -EINVAL for a head outside the queue or a queue not started. I/O thread.
 */
int vq_push(struct virtq *vq, uint16_t head, uint32_t written);

/*
 * After one or more vq_push(): whether the driver wants a used buffer
 * notification now (s2.7.7: used_event with EVENT_IDX, else the
 * NO_INTERRUPT flag). false when nothing was pushed since the last call.
 * I/O thread.
 */
bool vq_should_notify(struct virtq *vq);

/*
 * Available buffer notification suppression (s2.7.10), for batching:
 * vq_disable_notify asks the driver not to notify; vq_enable_notify asks it
 * to notify again and returns true when buffers arrived in between (the
 * caller must then pop again). vq_pop re-arms by itself when it finds the
 * ring empty unless notifications were disabled. I/O thread.
 */
void vq_disable_notify(struct virtq *vq);
bool vq_enable_notify(struct virtq *vq);

/*
 * Copy helpers over a chain's buffers: copy `len` bytes starting `off`
 * bytes into the readable part (from) or the writable part (to). Return
 * the number of bytes copied, less than `len` when the part is shorter.
 */
size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, size_t len);
size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, size_t len);

/* ----------------------------------------------------------- I/O thread */

/*
 * One thread per device, named "kiln_io_<id>" (truncated to 15 chars), that
 * waits in epoll on the queues' notification eventfds and the device's
 * backend fds and runs their callbacks. Fds are level-triggered: a callback
 * must consume the readiness it is called for (read the eventfd, drain the
 * socket) or it is called again.
 */
struct iothread;

/* `events` are the EPOLL* bits that fired */
typedef void (*iothread_cb)(void *opaque, uint32_t events);

/* Creates and starts the thread. 0 / -errno with a message. VMM thread. */
int iothread_create(struct iothread **out, const char *id, struct errbuf *e);

/*
 * Stops and joins the thread, then frees it (fds added are not closed).
 * Safe on NULL. Not from the thread itself. VMM thread.
 */
void iothread_destroy(struct iothread *t);

/*
 * Watches `fd` for `events` (EPOLLIN, EPOLLOUT, ...); cb(opaque, events)
 * runs on the I/O thread. -EEXIST if fd is watched, -ENOSPC beyond
 * IOTHREAD_MAX_FDS, or epoll_ctl's error. Any thread.
 */
#define IOTHREAD_MAX_FDS 64
int iothread_add_fd(struct iothread *t, int fd, uint32_t events, iothread_cb cb, void *opaque);
/* changes the events watched on fd; -ENOENT if not watched. Any thread. */
int iothread_mod_fd(struct iothread *t, int fd, uint32_t events);
/*
 * Stops watching fd; its callback is not called after this returns. -ENOENT
 * if not watched. From the I/O thread itself, or from any thread while the
 * I/O thread is paused (iothread_pause) -- never while it may be running
 * that fd's callback.
 */
int iothread_del_fd(struct iothread *t, int fd);

/*
 * Parks the thread outside every callback and returns once it is parked,
 * so that the caller may touch the device or guest memory alone. Pauses
 * nest: the thread runs again after as many iothread_resume() calls.
 * -EDEADLK when called from the I/O thread itself. Any other thread.
 */
int iothread_pause(struct iothread *t);
void iothread_resume(struct iothread *t);
/* true when the calling thread is t's thread */
bool iothread_is_current(const struct iothread *t);

/* ---------------------------------------------------------- the device */

struct virtio_dev;
struct virtio_mmio;

/*
 * What a device type provides, as one const table. Callbacks marked
 * "parked" run with the device's I/O thread parked and the transport's
 * mutex held (vCPU or VMM thread): they must not call iothread_pause nor
 * anything of the transport that takes its mutex (virtio_dev_* below are
 * fine).
 *
 * The transport never enables a queue larger than queue_max_size (a driver
 * that asks for one breaks the device at QueueReady), so the heads a device
 * is given stay below it; a device still bounds every table it indexes by
 * a head or a count by that table's own size.
 */
struct virtio_dev_ops {
	const char *name;        /* "virtio-blk": log lines and state section ids */
	uint32_t device_id;      /* VIRTIO_ID_* */
	uint16_t nr_queues;      /* 1 .. VIRTIO_MAX_QUEUES */
	uint16_t queue_max_size; /* QueueNumMax of every queue: power of 2 <= VQ_MAX_SIZE */
	uint32_t config_size;    /* bytes of device config space (s4.2.2 Config, 0x100+) */

	/*
	 * Device config space access (s2.5): `off` + `len` <= config_size
	 * (checked by the transport), len 1, 2, 4 or 8. vCPU thread, transport
	 * mutex held; the device locks whatever its I/O thread also changes.
	 * A NULL config_write ignores writes.
	 */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *data, uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len);

	/*
	 * The driver set DRIVER_OK: d->driver_features are final and the
	 * ready queues are started. The device opens its backends and may add
	 * fds to d->io. 0, or -errno (logged by the device) which puts the
	 * device into NEEDS_RESET. Parked. May be NULL.
	 */
	int (*activate)(struct virtio_dev *d);

	/*
	 * The driver reset the device (s2.4) or the VMM destroys it: forget
	 * requests in flight, remove the device's own fds from d->io, go back
	 * to the state before activate. Called on every reset, activated or
	 * not. Parked. May be NULL.
	 */
	void (*reset)(struct virtio_dev *d);

	/* The driver notified queue q (s4.2.3.3). I/O thread. */
	void (*queue_notify)(struct virtio_dev *d, uint16_t q);

	/*
	 * Saved state beyond the transport's: the device's own section
	 * "<name>.<id>" at version state_version; the transport opens and
	 * closes it. restore() gets a version in [state_min_version,
	 * state_version] and runs before activate. Parked. NULL: no section.
	 */
	uint16_t state_version, state_min_version;
	void (*save)(struct virtio_dev *d, struct state_writer *w);
	int (*restore)(struct virtio_dev *d, struct state_reader *r, uint16_t version,
	               struct errbuf *e);
};

#define VIRTIO_MAX_QUEUES 8
/* device ids: Firecracker's drive_id / iface_id, [A-Za-z0-9_]{1,64}, as the API's */
#define VIRTIO_ID_MAX 64

/*
 * A device instance. The device embeds it (or points to it), fills the
 * first block and hands it to virtio_mmio_create(); the transport fills
 * the rest.
 */
struct virtio_dev {
	/* by the device */
	const struct virtio_dev_ops *ops;
	char id[VIRTIO_ID_MAX + 1]; /* e.g. the drive_id: log lines, thread name, state ids */
	uint64_t features; /* device-specific feature bits offered (s6 added by the core) */
	void *priv;        /* the device's own state */

	/* by the transport */
	struct guest_mem *gm;
	uint64_t driver_features; /* negotiated (valid from FEATURES_OK) */
	struct virtq vq[VIRTIO_MAX_QUEUES];
	struct iothread *io;
	struct virtio_mmio *transport;
};

/*
 * vq_pop on queue q, plus: a broken ring puts the device into NEEDS_RESET
 * (virtio_dev_fail), and once the device is broken or not activated every
 * pop returns -EINVAL without reading the ring. 1 / 0 / -EINVAL as
 * vq_pop. I/O thread.
 */
int virtio_dev_pop(struct virtio_dev *d, uint16_t q, struct vq_chain *chain);
/* vq_push on queue q; an invalid head breaks the device. I/O thread. */
int virtio_dev_push(struct virtio_dev *d, uint16_t q, uint16_t head, uint32_t written);
/* raises the used-buffer interrupt for queue q if vq_should_notify says so. I/O thread. */
void virtio_dev_notify_used(struct virtio_dev *d, uint16_t q);
/* the device changed its config space: bump ConfigGeneration, config interrupt. Any thread. */
void virtio_dev_config_changed(struct virtio_dev *d);
/*
 * The guest broke the protocol (or the device hit a fatal guest error):
 * logs one error line "<name> <id>: <why>; device needs reset", sets
 * DEVICE_NEEDS_RESET and raises a config interrupt (s2.1.2), and stops
 * serving the device until the driver resets it. Later calls are silent.
 * Any thread; lock-free.
 */
void virtio_dev_fail(struct virtio_dev *d, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* true once virtio_dev_fail ran, until the driver's reset */
bool virtio_dev_broken(const struct virtio_dev *d);

/* ------------------------------------------------- virtio-mmio transport */

/* s4.2.2 register offsets (version 2, no legacy registers) */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
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
#define VIRTIO_MMIO_SHM_SEL             0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH        0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW        0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_QUEUE_RESET         0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

#define VIRTIO_MMIO_MAGIC      0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR     0x4e4c494bu /* "KILN" */
#define VIRTIO_MMIO_SIZE       0x1000u     /* each device's window */
#define VIRTIO_MMIO_INT_VRING  1u          /* InterruptStatus: used buffer */
#define VIRTIO_MMIO_INT_CONFIG 2u          /* InterruptStatus: config change */

/*
 * How the transport reaches the hypervisor; kiln's is virtio_kvm_hv_ops
 * (opaque: a pointer to the VM fd). NULL ops (unit tests, fuzzing): the
 * guest's notifies only arrive through the bus callbacks, and interrupts
 * only as writes to m->irq_fd, which the test reads.
 *   ioeventfd: KVM_IOEVENTFD, a 4-byte MMIO write of `datamatch` at `gpa`
 *              signals `fd` inside the kernel (no exit to user space).
 *   irqfd:     KVM_IRQFD, a write to `fd` pulses GSI `gsi`.
 * Both return 0 / -errno.
 */
struct virtio_hv_ops {
	int (*ioeventfd)(void *opaque, int fd, uint64_t gpa, uint32_t datamatch, bool assign);
	int (*irqfd)(void *opaque, int fd, uint32_t gsi, bool assign);
};
extern const struct virtio_hv_ops virtio_kvm_hv_ops;

struct virtio_mmio_params {
	uint64_t base; /* the 4 KiB window's guest-physical address, page aligned */
	uint32_t gsi;  /* the device's own interrupt line (edge, not shared) */
	struct guest_mem *gm;
	const struct virtio_hv_ops *hv; /* NULL: no hypervisor (tests) */
	void *hv_opaque;
};

/*
 * One virtio-mmio device (s4.2). Interrupts: each device has its own GSI,
 * driven through an irqfd, which pulses the line (edge-triggered, as the
 * MP table declares ISA lines and as Firecracker does). An edge is sent
 * on every new InterruptStatus event, the guest reads InterruptStatus and
 * acknowledges exactly what it read, so no event is lost without a level
 * line and resamplefd; the cost is that the line cannot be shared.
 */
struct virtio_mmio {
	struct virtio_dev *dev;
	uint64_t base;
	uint32_t gsi;
	const struct virtio_hv_ops *hv;
	void *hv_opaque;
	struct bus *bus; /* set by virtio_mmio_attach */

	int irq_fd;                     /* eventfd: a write raises the GSI */
	int kick_fd[VIRTIO_MAX_QUEUES]; /* eventfd per queue: driver notifications */
	bool ioeventfd_on[VIRTIO_MAX_QUEUES];
	bool irqfd_on;

	/* the register file; vCPU threads, under `lock` */
	pthread_mutex_t lock;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint32_t config_generation;
	bool activated; /* DRIVER_OK accepted: the I/O thread serves the queues */
	/* shared with the I/O thread without the lock (atomics) */
	uint32_t status;           /* s2.1 */
	uint32_t interrupt_status; /* VIRTIO_MMIO_INT_* */
	bool broken;               /* virtio_dev_fail ran */

	/* one per queue, the opaque of its kick callback */
	struct virtio_mmio_kick {
		struct virtio_mmio *m;
		uint16_t q;
	} kick[VIRTIO_MAX_QUEUES];
};

/*
 * Creates the transport for `dev` (whose ops, id and features are set):
 * checks the ops table and params, creates the eventfds and the device's
 * I/O thread, and assigns the irqfd. The device is in reset state.
 * 0 / -errno with a message. VMM thread.
 */
int virtio_mmio_create(struct virtio_mmio **out, struct virtio_dev *dev,
                       const struct virtio_mmio_params *p, struct errbuf *e);

/* Registers the window [base, base + 4 KiB) on `mmio`. 0 / -errno (bus_register). */
int virtio_mmio_attach(struct virtio_mmio *m, struct bus *mmio);

/*
 * Unregisters it from the bus, resets the device (ops->reset), stops its
 * I/O thread, removes the KVM wiring, closes the fds and frees `m`. Call
 * it before the bus, the VM fd or the device itself go away. Safe on NULL.
 * VMM thread, vCPUs stopped or paused.
 */
void virtio_mmio_destroy(struct virtio_mmio *m);

/* the MMIO bus callbacks (opaque = struct virtio_mmio *), exposed for tests */
extern const struct bus_dev_ops virtio_mmio_bus_ops;

/* Pauses / resumes the device's I/O thread for the VMM (PATCH /vm Paused). */
int virtio_mmio_pause(struct virtio_mmio *m);
void virtio_mmio_resume(struct virtio_mmio *m);

/*
 * Saved state: the section "virtio-mmio.<name>.<id>" (e.g.
 * "virtio-mmio.virtio-blk.rootfs": ids are unique only within a kind) of
 * version 2 (registers, features, status, every queue's configuration and
 * indices), followed by the device's own section "<name>.<id>" if it has
 * save(). Version 1 had the same payload under "virtio-mmio.<id>", which
 * does not say the kind. VMM thread, device paused.
 */
#define VIRTIO_MMIO_STATE_VERSION     2
#define VIRTIO_MMIO_STATE_MIN_VERSION 1
int virtio_mmio_save(struct virtio_mmio *m, struct state_writer *w);

/*
 * Whether the section `id` of `version` is this transport's: the kind and
 * the id from version 2 on; the id alone at version 1, so two devices of
 * different kinds may both match an old section (their sections come in
 * the order of the devices that saved them). Pure.
 */
bool virtio_mmio_state_match(const struct virtio_mmio *m, const char *id, uint16_t version);

/*
 * Reads the next section(s) of `r` as virtio_mmio_save wrote them into a
 * freshly created transport (status 0), checking every value, then
 * restarts the device as the driver left it: queues started, activate,
 * notifications re-armed, and a pending interrupt raised again.
 * 0 / -errno with a message (the device is then left reset). VMM thread.
 */
int virtio_mmio_restore(struct virtio_mmio *m, struct state_reader *r, struct errbuf *e);

/*
 * Formats the Linux kernel parameter announcing one device,
 * "virtio_mmio.device=4K@0x<base>:<gsi>" (Documentation/admin-guide/
 * kernel-parameters.txt), into buf. Returns its length, or -ENOSPC when
 * `len` is too small (buf then holds ""). Pure.
 */
int virtio_mmio_cmdline(char *buf, size_t len, uint64_t base, uint32_t gsi);

/*
 * Whether the Linux command line `cmdline` turns ACPI off: its last
 * "acpi=off" or "acpi=force" parameter is "acpi=off" (arch/x86/kernel/
 * acpi/boot.c, parse_acpi). Parameters are split at unquoted white space,
 * double quotes are dropped, and nothing after "--" (init's arguments)
 * counts. Pure.
 */
bool virtio_cmdline_acpi_off(const char *cmdline);

/*
 * Announces one device on the NUL-terminated command line `cmdline`
 * (`size` bytes) -- appends " virtio_mmio.device=4K@0x<base>:<gsi>" --
 * only when that command line turns ACPI off. Otherwise the guest finds the
 * device in the DSDT (vcpu/acpi.c) and a second announcement would make
 * Linux register it twice. Returns 1 when appended, 0 when ACPI announces
 * it, -ENOSPC when it does not fit (`cmdline` is then unchanged). Pure.
 */
int virtio_mmio_cmdline_add(char *cmdline, size_t size, uint64_t base, uint32_t gsi);

#endif
