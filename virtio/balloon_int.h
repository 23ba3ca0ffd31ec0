/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/balloon_int.h: what balloon.c (the device, its config space, saved
 * state and the VMM's calls) shares with balloon_queue.c (the queues, on
 * the I/O thread). Not for other modules.
 */
#ifndef KILN_VIRTIO_BALLOON_INT_H
#define KILN_VIRTIO_BALLOON_INT_H

#include "virtio/balloon.h"

/* s5.5.2: inflateq and deflateq always; the others follow in this order
 * when their feature is negotiated (a driver numbers only the queues it
 * uses, as Linux's find_vqs does) */
#define BALLOON_Q_INFLATE  0
#define BALLOON_Q_DEFLATE  1
#define BALLOON_MAX_QUEUES 5
#define BALLOON_NO_QUEUE   0xffff

/* the longest chain a PFN queue takes: 16384 PFNs, 64 MiB (Linux sends 256) */
#define BALLOON_MAX_PFN_BYTES KIB(64)
/* the longest statistics buffer: 256 entries (Linux 6.12 sends 16) */
#define BALLOON_MAX_STATS_BYTES (256 * VIRTIO_BALLOON_STAT_LEN)

struct virtio_balloon {
	struct virtio_dev dev;
	struct virtio_balloon_params cfg; /* as created; amount_mib follows num_pages */

	/* s5.5.4 config space; atomics: VMM, vCPU and I/O threads share them */
	uint32_t num_pages, actual, cmd_id, poison_val;

	uint16_t interval_s; /* statistics period (atomic: the VMM changes it) */
	int timer_fd;        /* statistics timer, -1 without statistics */
	bool timer_watched;  /* on dev.io */

	/* queue numbers of the negotiated optional queues (BALLOON_NO_QUEUE: none),
	 * set by activate while the I/O thread is parked */
	uint16_t q_stats, q_hint, q_report;

	/* the statistics buffer held until the next poll (I/O thread, or parked) */
	bool stats_held;
	uint16_t stats_head;

	/* `lock` guards what the VMM thread reads while the I/O thread runs */
	pthread_mutex_t lock;
	uint32_t stats_have;
	uint64_t stats_val[VIRTIO_BALLOON_NR_STATS];
	struct {
		uint32_t host_cmd, last_cmd_id, guest_cmd;
		bool has_guest_cmd, ack_on_stop;
	} hint;

	struct virtio_balloon_metrics m; /* written by the I/O thread only */
	struct vq_chain chain;           /* the request being served */
};

/* the I/O thread's work (balloon_queue.c) */
void balloon_queue_notify(struct virtio_dev *d, uint16_t q);
/* the statistics timer fired: give the held buffer back, which asks for new numbers */
void balloon_stats_timer(void *opaque, uint32_t events);

/* a relaxed atomic add to a counter only the I/O thread writes */
static inline void balloon_count(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

/* sets the hint command id and tells the guest; any thread, `lock` not held */
void balloon_set_cmd(struct virtio_balloon *b, uint32_t cmd);

#endif
