/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio/balloon: the traditional memory balloon (virtio 1.2 s5.5, device
 * id 5), as Firecracker's PUT /balloon: the host sets a target size, the
 * guest's driver hands pages to the balloon (inflateq) and takes them
 * back (deflateq); inflated pages go back to the host (gm_discard), so the
 * VMM's resident memory falls. Options, fixed when the device is made:
 * deflate on OOM, a statistics queue polled every stats_polling_interval_s,
 * free page hinting (host-started runs, Firecracker's start/stop/status)
 * and free page reporting (the guest reports free ranges, discarded too).
 *
 * Threads: the VMM thread creates and destroys the device and runs the
 * virtio_balloon_* calls below for the API; the device's I/O thread serves
 * the queues and the statistics timer; vCPU threads read and write the
 * config space. Nothing the guest writes is trusted: a PFN outside guest
 * RAM, a request that is not whole PFNs, an oversized chain or a hint
 * command of the wrong size puts the device into NEEDS_RESET.
 *
 * Use: virtio_balloon_create(), virtio_mmio_create() on
 * virtio_balloon_dev(); at the end virtio_mmio_destroy() first,
 * virtio_balloon_destroy() last.
 */
#ifndef KILN_VIRTIO_BALLOON_H
#define KILN_VIRTIO_BALLOON_H

#include "virtio/virtio.h"

/* s5.5.3 feature bits */
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

/* s5.5.6.4 free page hinting: the reserved command ids */
#define VIRTIO_BALLOON_CMD_ID_STOP 0
#define VIRTIO_BALLOON_CMD_ID_DONE 1

/* Firecracker's queue size for every balloon queue */
#define VIRTIO_BALLOON_QUEUE_SIZE 256
/* s5.5.6: PFNs are in 4 KiB units whatever the guest's page size */
#define VIRTIO_BALLOON_PFN_SHIFT 12
/* s5.5.6.3 statistics tags 0..15 (Linux 6.12 has 16) and their 10-byte entries */
#define VIRTIO_BALLOON_NR_STATS 16
#define VIRTIO_BALLOON_STAT_LEN 10

struct virtio_balloon;

struct virtio_balloon_params {
	const char *id;                    /* [A-Za-z0-9_], 1..VIRTIO_ID_MAX chars */
	uint32_t amount_mib;               /* target size; amount_mib * 256 fits 32 bits */
	bool deflate_on_oom;               /* VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	uint16_t stats_polling_interval_s; /* 0: no statistics queue at all */
	bool free_page_hinting;            /* VIRTIO_BALLOON_F_FREE_PAGE_HINT */
	bool free_page_reporting;          /* VIRTIO_BALLOON_F_PAGE_REPORTING */
};

/* GET /balloon/statistics: the config space plus the guest's last report */
struct virtio_balloon_stats {
	uint32_t target_pages, actual_pages;
	uint32_t have; /* bit t: the guest reported tag t */
	uint64_t val[VIRTIO_BALLOON_NR_STATS];
};

/* GET /balloon/hinting/status */
struct virtio_balloon_hinting {
	uint32_t host_cmd;  /* the last command id the device set */
	bool has_guest_cmd; /* the guest sent one since the device's reset */
	uint32_t guest_cmd; /* the last command id the guest sent */
};

/* counters (Firecracker's balloon metrics); updated by the I/O thread, read from any */
struct virtio_balloon_metrics {
	uint64_t inflate_count;          /* inflate requests */
	uint64_t deflate_count;          /* deflate requests */
	uint64_t inflated_bytes;         /* bytes given back to the host by inflation */
	uint64_t stats_updates_count;    /* statistics buffers received */
	uint64_t stats_update_fails;     /* entries with a tag kiln does not know */
	uint64_t free_page_report_count; /* reported ranges */
	uint64_t free_page_report_freed; /* bytes they gave back */
	uint64_t free_page_hint_count;   /* hinted ranges taken */
	uint64_t free_page_hint_freed;   /* bytes they gave back */
	uint64_t discard_fails;          /* madvise/mmap refused to drop a range */
};

/* 0 / -errno with a message. VMM thread. */
int virtio_balloon_create(struct virtio_balloon **out, const struct virtio_balloon_params *p,
                          struct errbuf *e);

/* the virtio device to hand to virtio_mmio_create() */
struct virtio_dev *virtio_balloon_dev(struct virtio_balloon *b);

/* the device's options and current target, as GET /balloon reports them */
void virtio_balloon_config(const struct virtio_balloon *b, struct virtio_balloon_params *out);

/*
 * PATCH /balloon: a new target of `amount_mib`, at most guest RAM; the
 * guest gets a config change notification. -EINVAL with a message. VMM
 * thread, transport created.
 */
int virtio_balloon_set_target(struct virtio_balloon *b, uint32_t amount_mib, struct errbuf *e);

/*
 * PATCH /balloon/statistics: a new polling interval, with one update at
 * once. Statistics cannot be turned on or off once the device exists
 * (-EINVAL). VMM thread.
 */
int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint16_t interval_s,
                                      struct errbuf *e);

/* GET /balloon/statistics: -ENOTSUP (with a message) when statistics are off. Any thread. */
int virtio_balloon_stats(struct virtio_balloon *b, struct virtio_balloon_stats *out,
                         struct errbuf *e);

/*
 * Free page hinting (Firecracker's semantics): start sets a new command
 * id (2 and up) and, with `ack_on_stop`, the device answers the guest's
 * STOP with DONE by itself; stop sets DONE, which lets the guest reuse the
 * hinted pages. -ENOTSUP with a message when hinting is off. VMM thread.
 */
int virtio_balloon_hint_start(struct virtio_balloon *b, bool ack_on_stop, struct errbuf *e);
int virtio_balloon_hint_stop(struct virtio_balloon *b, struct errbuf *e);
int virtio_balloon_hint_status(struct virtio_balloon *b, struct virtio_balloon_hinting *out,
                               struct errbuf *e);

void virtio_balloon_metrics(const struct virtio_balloon *b, struct virtio_balloon_metrics *out);

/* frees the device; its transport must be destroyed already. Safe on NULL. */
void virtio_balloon_destroy(struct virtio_balloon *b);

#endif
