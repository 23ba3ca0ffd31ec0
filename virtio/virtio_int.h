/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/virtio_int.h: what mmio.c shares with mmio_setup.c, not for devices.
 */
#ifndef KILN_VIRTIO_INT_H
#define KILN_VIRTIO_INT_H

#include "virtio.h"

/*
 * Starts the ready queues, ops->activate, the queues' eventfds in the I/O
 * thread and KVM, then marks the transport activated; any failure is a
 * virtio_dev_fail (NEEDS_RESET). Pauses the I/O thread around the work.
 * m->lock held (vCPU thread) or the VMM thread with vCPUs paused.
 */
void virtio_mmio_activate_locked(struct virtio_mmio *m);

/*
 * s2.4 device reset: KVM wiring and eventfds off, queues zeroed,
 * ops->reset, registers and status back to 0. Pauses the I/O thread around
 * the work. Same callers as above.
 */
void virtio_mmio_reset_locked(struct virtio_mmio *m);

/* adds 1 to an eventfd (a wake-up); never fails in a way that loses it */
void virtio_efd_signal(int fd);

/* s2.7, s4.2.3.2: a queue of `n` entries is one the device offers (a power of 2 <= QueueNumMax) */
static inline bool virtio_queue_size_ok(const struct virtio_dev *d, uint32_t n)
{
	return n != 0 && n <= d->ops->queue_max_size && !(n & (n - 1));
}

#endif
