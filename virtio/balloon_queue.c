// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/balloon_queue.c: the balloon's queues, served on its I/O thread
 * (virtio 1.2 s5.5.6): inflate and deflate requests (arrays of 32-bit PFNs
 * in the chain's device-readable part), the statistics buffer the device
 * keeps until its timer asks for new numbers, free page hints and free
 * page reports (ranges in the chain's buffers).
 *
 * Every guest number is checked where it enters: a PFN must name a page of
 * guest RAM (gm_ptr), a PFN request must be whole PFNs, a hint command
 * exactly 4 bytes; else the device needs a reset. Pages go back to the
 * host only through gm_discard(), which refuses anything outside RAM.
 */
#define LOG_MODULE "virtio-balloon"
#include "balloon_int.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

/* a run of contiguous host pages waiting to be discarded */
struct run {
	uint8_t *start;
	uint64_t len;
};

/* discards the run (if any), counting what went back; I/O thread */
static void run_flush(struct virtio_balloon *b, struct run *r, uint64_t *freed)
{
	if (!r->len)
		return;
	int64_t n = gm_discard(b->dev.gm, r->start, r->len);
	if (n < 0) {
		balloon_count(&b->m.discard_fails, 1);
		log_warn("%s: cannot give %llu bytes back to the host: %s", b->dev.id,
		         (unsigned long long)r->len, strerror((int)-n));
	} else {
		balloon_count(freed, (uint64_t)n);
	}
	r->len = 0;
}

/* adds [p, p + len) to the run, flushing it first when not contiguous */
static void run_add(struct virtio_balloon *b, struct run *r, uint8_t *p, uint64_t len,
                    uint64_t *freed)
{
	if (r->len && r->start + r->len == p) {
		r->len += len;
		return;
	}
	run_flush(b, r, freed);
	r->start = p;
	r->len = len;
}

/*
 * s5.5.6 steps 2-3: the chain's readable part is an array of le32 PFNs.
 * Each must name a page of guest RAM; inflated ones are given back to the
 * host, deflated ones only checked (they fault in again, zeroed, when the
 * guest touches them). 0, or -EINVAL with the device failed.
 */
static int pfn_request(struct virtio_balloon *b, bool inflate)
{
	const struct vq_chain *c = &b->chain;
	struct run run = {0};
	uint32_t pfns[64];

	if (c->readable_len % sizeof(uint32_t)) {
		virtio_dev_fail(&b->dev, "%s request of %llu bytes is not a whole number of PFNs",
		                inflate ? "inflate" : "deflate",
		                (unsigned long long)c->readable_len);
		return -EINVAL;
	}
	for (uint64_t off = 0; off < c->readable_len; off += sizeof(pfns)) {
		size_t got = vq_chain_read(c, off, pfns, sizeof(pfns)) / sizeof(uint32_t);
		for (size_t i = 0; i < got; i++) {
			uint32_t pfn = le32toh(pfns[i]);
			uint64_t gpa = (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT;
			uint8_t *p = gm_ptr(b->dev.gm, gpa, GM_PAGE_SIZE);
			if (!p) {
				run_flush(b, &run, &b->m.inflated_bytes);
				virtio_dev_fail(&b->dev,
				                "%s request names PFN %#x outside guest RAM",
				                inflate ? "inflate" : "deflate", pfn);
				return -EINVAL;
			}
			if (inflate)
				run_add(b, &run, p, GM_PAGE_SIZE, &b->m.inflated_bytes);
		}
	}
	run_flush(b, &run, &b->m.inflated_bytes);
	return 0;
}

/* inflateq / deflateq: every request is answered with a used length of 0 */
static void serve_pfns(struct virtio_balloon *b, uint16_t q)
{
	struct virtio_dev *d = &b->dev;
	bool inflate = q == BALLOON_Q_INFLATE, pushed = false;

	while (virtio_dev_pop(d, q, &b->chain) == 1) {
		if (pfn_request(b, inflate) < 0 || virtio_dev_push(d, q, b->chain.head, 0) < 0)
			return;
		balloon_count(inflate ? &b->m.inflate_count : &b->m.deflate_count, 1);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_used(d, q);
}

/* s5.5.6.3: the entries of a statistics buffer, le16 tag + le64 value each */
static void stats_read(struct virtio_balloon *b)
{
	const struct vq_chain *c = &b->chain;
	uint8_t ent[VIRTIO_BALLOON_STAT_LEN];
	uint64_t unknown = 0;

	pthread_mutex_lock(&b->lock);
	for (uint64_t off = 0; off + sizeof(ent) <= c->readable_len; off += sizeof(ent)) {
		uint16_t tag;
		uint64_t val;
		vq_chain_read(c, off, ent, sizeof(ent));
		memcpy(&tag, ent, 2);
		memcpy(&val, ent + 2, 8);
		tag = le16toh(tag);
		/* s5.5.6.3.2: the device ignores tags it does not know */
		if (tag >= VIRTIO_BALLOON_NR_STATS) {
			unknown++;
			continue;
		}
		b->stats_have |= 1u << tag;
		b->stats_val[tag] = le64toh(val);
	}
	pthread_mutex_unlock(&b->lock);
	balloon_count(&b->m.stats_update_fails, unknown);
	balloon_count(&b->m.stats_updates_count, 1);
}

/* gives the held statistics buffer back: the driver refills it (s5.5.6.3 step 1) */
static void stats_release(struct virtio_balloon *b)
{
	if (!b->stats_held)
		return;
	b->stats_held = false;
	if (virtio_dev_push(&b->dev, b->q_stats, b->stats_head, 0) == 0)
		virtio_dev_notify_used(&b->dev, b->q_stats);
}

/* statsq: the device keeps one buffer (s5.5.6.3 step 5) until the next poll */
static void serve_stats(struct virtio_balloon *b)
{
	while (virtio_dev_pop(&b->dev, b->q_stats, &b->chain) == 1) {
		/* a driver must have one buffer there at most; give an older one back */
		stats_release(b);
		stats_read(b);
		b->stats_held = true;
		b->stats_head = b->chain.head;
	}
}

void balloon_stats_timer(void *opaque, uint32_t events)
{
	struct virtio_balloon *b = opaque;
	uint64_t ticks;

	(void)events;
	if (read(b->timer_fd, &ticks, sizeof(ticks)) < 0) {
	} /* EAGAIN: re-armed meanwhile */
	if (b->q_stats != BALLOON_NO_QUEUE)
		stats_release(b);
}

/* the hint command the guest sent in the chain's readable part (s5.5.6.4) */
static int hint_command(struct virtio_balloon *b, bool *complete)
{
	const struct vq_chain *c = &b->chain;
	uint32_t cmd;

	if (!c->readable_len)
		return 0;
	/* s5.5.6.4.1: "an output buffer size of 4 bytes" */
	if (c->readable_len != sizeof(cmd)) {
		virtio_dev_fail(&b->dev, "free page hint command of %llu bytes, not 4",
		                (unsigned long long)c->readable_len);
		return -EINVAL;
	}
	vq_chain_read(c, 0, &cmd, sizeof(cmd));
	cmd = le32toh(cmd);
	pthread_mutex_lock(&b->lock);
	b->hint.guest_cmd = cmd;
	b->hint.has_guest_cmd = true;
	pthread_mutex_unlock(&b->lock);
	/* STOP ends the guest's run; DONE is the device's word, taken as a STOP */
	*complete = cmd == VIRTIO_BALLOON_CMD_ID_STOP || cmd == VIRTIO_BALLOON_CMD_ID_DONE;
	return 0;
}

/* free_page_vq: commands, and page ranges in device-writable buffers */
static void serve_hints(struct virtio_balloon *b)
{
	struct virtio_dev *d = &b->dev;
	bool pushed = false, complete = false, ack;

	while (virtio_dev_pop(d, b->q_hint, &b->chain) == 1) {
		if (hint_command(b, &complete) < 0)
			return;
		const struct vq_chain *c = &b->chain;
		pthread_mutex_lock(&b->lock);
		/* s5.5.6.4.2: only hints of the current run count; none once stopped */
		bool take = b->hint.host_cmd > VIRTIO_BALLOON_CMD_ID_DONE &&
		            b->hint.has_guest_cmd && b->hint.guest_cmd == b->hint.host_cmd;
		pthread_mutex_unlock(&b->lock);
		struct run run = {0};
		for (unsigned i = c->nr_readable; take && i < c->nr_segs; i++) {
			balloon_count(&b->m.free_page_hint_count, 1);
			run_add(b, &run, c->iov[i].iov_base, c->iov[i].iov_len,
			        &b->m.free_page_hint_freed);
		}
		run_flush(b, &run, &b->m.free_page_hint_freed);
		if (virtio_dev_push(d, b->q_hint, c->head, 0) < 0)
			return;
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_used(d, b->q_hint);
	pthread_mutex_lock(&b->lock);
	ack = b->hint.ack_on_stop;
	pthread_mutex_unlock(&b->lock);
	if (complete && ack)
		balloon_set_cmd(b, VIRTIO_BALLOON_CMD_ID_DONE);
}

/* reporting_vq: every buffer of a report is a free range, given back (s5.5.6.6) */
static void serve_reports(struct virtio_balloon *b)
{
	struct virtio_dev *d = &b->dev;
	bool pushed = false;

	while (virtio_dev_pop(d, b->q_report, &b->chain) == 1) {
		const struct vq_chain *c = &b->chain;
		struct run run = {0};
		for (unsigned i = 0; i < c->nr_segs; i++) {
			balloon_count(&b->m.free_page_report_count, 1);
			run_add(b, &run, c->iov[i].iov_base, c->iov[i].iov_len,
			        &b->m.free_page_report_freed);
		}
		run_flush(b, &run, &b->m.free_page_report_freed);
		if (virtio_dev_push(d, b->q_report, c->head, 0) < 0)
			return;
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_used(d, b->q_report);
}

void balloon_queue_notify(struct virtio_dev *d, uint16_t q)
{
	struct virtio_balloon *b = d->priv;

	if (q == BALLOON_Q_INFLATE || q == BALLOON_Q_DEFLATE)
		serve_pfns(b, q);
	else if (q == b->q_stats)
		serve_stats(b);
	else if (q == b->q_hint)
		serve_hints(b);
	else if (q == b->q_report)
		serve_reports(b);
	/* else a queue the negotiated features do not have: nothing to serve */
}
