// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/queue.c: split virtqueues (virtio 1.2 s2.7) on the device side.
 *
 * The guest owns the rings and may change them at any time, from another
 * vCPU, while we read them. So every descriptor is copied out of guest
 * memory once into a local struct and only the copy is validated and used;
 * every index read from the guest is checked against the queue size before
 * it indexes anything; every buffer address goes through gm_ptr(). Loops
 * cannot hang us: a chain may have at most `size` descriptors in total
 * (s2.7.5.3.1), so a NEXT cycle is caught as a chain that is too long.
 *
 * Barriers (x86 makes most of them compiler barriers, but they are written
 * for the C memory model so that the code is right on any host):
 *   - avail->idx is read with acquire: pairs with the driver's write
 *     barrier before it publishes avail->idx (s2.7.13.3.1), so the ring
 *     entries and descriptors it covers are read after it.
 *   - used->idx is written with release: pairs with the driver's read
 *     barrier after it reads used->idx, so the used elements and the data
 *     the device wrote into buffers are visible first (s2.7.8.2).
 *   - a full fence separates our used->idx store from the used_event/flags
 *     load (and our avail_event/flags store from the avail->idx re-load):
 *     pairs with the driver's full barrier between publishing its index
 *     and reading our suppression field (s2.7.13.4.1), so at least one of
 *     the two sides sees the other's update and no notification is lost.
 */
#include "virtio.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* s2.7.5: struct virtq_desc, 16 bytes, little endian */
#define DESC_SIZE 16u

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* ring offsets, s2.7.6 (avail) and s2.7.8 (used) */
#define AVAIL_FLAGS   0
#define AVAIL_IDX     2
#define AVAIL_RING    4
#define USED_FLAGS    0
#define USED_IDX      2
#define USED_RING     4
#define USED_ELEM_LEN 8u

static uint16_t *avail_idx_p(const struct virtq *vq)
{
	return (uint16_t *)(vq->avail + AVAIL_IDX);
}

static uint16_t *used_event_p(const struct virtq *vq)
{
	return (uint16_t *)(vq->avail + AVAIL_RING + 2u * vq->size);
}

static uint16_t *used_idx_p(const struct virtq *vq)
{
	return (uint16_t *)(vq->used + USED_IDX);
}

static uint16_t *avail_event_p(const struct virtq *vq)
{
	return (uint16_t *)(vq->used + USED_RING + USED_ELEM_LEN * vq->size);
}

/* the guest writes these concurrently: relaxed atomics, ordered by the fences below */
static uint16_t load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static void store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static int vq_fail(struct virtq *vq, const char *why)
{
	vq->broken = true;
	vq->error = why;
	return -EINVAL;
}

void vq_reset(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

int vq_start(struct virtq *vq, const struct guest_mem *gm, uint64_t features)
{
	uint64_t n = vq->size;

	vq->started = false;
	/* s2.7: Queue Size is a power of 2; kiln offers at most VQ_MAX_SIZE */
	if (n == 0 || n > VQ_MAX_SIZE || (n & (n - 1)))
		return vq_fail(vq, "queue size is not a power of 2 within QueueNumMax");
	/* s2.7.1: alignment of the descriptor table, available and used rings */
	if (vq->desc_gpa % 16 || vq->avail_gpa % 2 || vq->used_gpa % 4)
		return vq_fail(vq, "virtqueue ring is misaligned (s2.7)");
	vq->desc = gm_ptr(gm, vq->desc_gpa, DESC_SIZE * n);
	/* both rings with the event-index word at their end, s2.7.6 / s2.7.8 */
	vq->avail = gm_ptr(gm, vq->avail_gpa, 6 + 2 * n);
	vq->used = gm_ptr(gm, vq->used_gpa, 6 + USED_ELEM_LEN * n);
	if (!vq->desc || !vq->avail || !vq->used)
		return vq_fail(vq, "virtqueue ring is not in guest RAM");

	vq->gm = gm;
	vq->event_idx = features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	vq->indirect = features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	if (!vq->max_chain_len)
		vq->max_chain_len = 1ull << 32; /* s2.7.5.1: no chain beyond 2^32 bytes */
	vq->shadow_avail = vq->last_avail_idx;
	vq->signalled_used = vq->used_idx; /* nothing pushed yet since the start */
	vq->signalled_valid = false;
	vq->notify_enabled = true;
	vq->broken = false;
	vq->error = NULL;
	vq->started = true;
	return 0;
}

/* copies descriptor i of a table of `n` at host address `table` once */
static void desc_read(const uint8_t *table, uint32_t i, struct desc *d)
{
	uint8_t raw[DESC_SIZE];

	memcpy(raw, table + (uint64_t)i * DESC_SIZE, DESC_SIZE);
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

/* the state of one chain walk */
struct walk {
	struct vq_chain *c;
	uint32_t budget; /* descriptors still allowed: s2.7.5.3.1, none beyond the queue size */
	bool saw_write;  /* a device-writable descriptor (even empty) was seen */
};

/* adds one (non-indirect) descriptor to the chain, checking s2.7.4.2 and RAM */
static int chain_add(struct virtq *vq, struct walk *w, const struct desc *d)
{
	struct vq_chain *c = w->c;
	bool writable = d->flags & VIRTQ_DESC_F_WRITE;

	/* s2.7.4.2: device-writable elements after device-readable ones */
	if (!writable && w->saw_write)
		return vq_fail(vq, "device-readable descriptor after a device-writable one");
	w->saw_write |= writable;
	if (d->len == 0) {
		/* legal but carries nothing: counted, no iov */
		c->nr_zero_len++;
		vq->nr_zero_len++;
		return 0;
	}
	uint64_t *total = writable ? &c->writable_len : &c->readable_len;
	if (d->len > vq->max_chain_len - c->readable_len - c->writable_len)
		return vq_fail(vq, "descriptor chain longer than the device takes (at most 2^32 "
		                   "bytes, s2.7.5.1)");
	void *p = gm_ptr(vq->gm, d->addr, d->len);
	if (!p)
		return vq_fail(vq, "descriptor buffer is not in guest RAM");
	c->iov[c->nr_segs].iov_base = p;
	c->iov[c->nr_segs].iov_len = d->len;
	c->nr_segs++;
	if (!writable)
		c->nr_readable++;
	else /* the device may write all of it: dirty for snapshots and migration */
		gm_mark_dirty(vq->gm, p, d->len);
	*total += d->len;
	return 0;
}

/*
 * Walks the indirect table described by `d` (s2.7.5.3): its entries count
 * against the same budget of `size` descriptors as the direct ones.
 */
static int chain_indirect(struct virtq *vq, struct walk *w, const struct desc *d)
{
	if (!vq->indirect)
		return vq_fail(vq, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
	/* s2.7.5.3.1: INDIRECT and NEXT together are forbidden */
	if (d->flags & VIRTQ_DESC_F_NEXT)
		return vq_fail(vq, "descriptor has both INDIRECT and NEXT");
	if (d->len == 0 || d->len % DESC_SIZE)
		return vq_fail(vq, "indirect table length is not a non-zero multiple of 16");
	uint32_t n = d->len / DESC_SIZE;
	if (n > w->budget)
		return vq_fail(vq, "indirect table makes the chain longer than the queue size");
	const uint8_t *table = gm_ptr(vq->gm, d->addr, d->len);
	if (!table)
		return vq_fail(vq, "indirect table is not in guest RAM");

	uint32_t i = 0;
	for (;;) {
		struct desc e;
		if (w->budget == 0)
			return vq_fail(vq, "indirect chain loops or is longer than the queue size");
		w->budget--;
		desc_read(table, i, &e);
		/* s2.7.5.3.1: only one table per descriptor */
		if (e.flags & VIRTQ_DESC_F_INDIRECT)
			return vq_fail(vq, "indirect descriptor inside an indirect table");
		int r = chain_add(vq, w, &e);
		if (r < 0)
			return r;
		if (!(e.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (e.next >= n)
			return vq_fail(vq, "indirect descriptor's next is outside its table");
		i = e.next;
	}
}

/* resolves the chain starting at `head` (already checked < size) */
static int chain_walk(struct virtq *vq, struct vq_chain *c, uint16_t head)
{
	struct walk w = {.c = c, .budget = vq->size};
	uint16_t i = head;

	c->head = head;
	c->nr_segs = c->nr_readable = c->nr_zero_len = 0;
	c->readable_len = c->writable_len = 0;
	for (;;) {
		struct desc d;
		if (w.budget == 0)
			return vq_fail(vq,
			               "descriptor chain loops or is longer than the queue size");
		desc_read(vq->desc, i, &d);
		/* the descriptor naming a table is not a buffer: only the
		 * table's entries count against the budget */
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return chain_indirect(vq, &w, &d);
		w.budget--;
		int r = chain_add(vq, &w, &d);
		if (r < 0)
			return r;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= vq->size)
			return vq_fail(vq, "descriptor's next is outside the descriptor table");
		i = d.next;
	}
}

/*
 * Refreshes shadow_avail from the guest; -EINVAL when the driver moved
 * avail->idx by more than the queue size (s2.7.13: at most `size` chains
 * can be outstanding, and it must never decrement, s2.7.6.1).
 */
static int avail_refresh(struct virtq *vq)
{
	/* acquire: pairs with the driver's barrier before its avail->idx update */
	uint16_t idx = le16toh(__atomic_load_n(avail_idx_p(vq), __ATOMIC_ACQUIRE));
	if ((uint16_t)(idx - vq->last_avail_idx) > vq->size)
		return vq_fail(vq, "available index moved more than the queue size");
	vq->shadow_avail = idx;
	return 0;
}

/* a 16-bit store into the used ring (device area), tracked for dirty logging */
static void used_store16(struct virtq *vq, uint16_t *p, uint16_t v)
{
	store16(p, v);
	gm_mark_dirty(vq->gm, p, sizeof(*p));
}

/* s2.7.10: "notify me when you publish entry last_avail_idx" */
static void arm_avail_event(struct virtq *vq)
{
	if (vq->event_idx)
		used_store16(vq, avail_event_p(vq), vq->last_avail_idx);
	else
		used_store16(vq, (uint16_t *)(vq->used + USED_FLAGS), 0);
}

int vq_pop(struct virtq *vq, struct vq_chain *chain)
{
	if (vq->broken)
		return -EINVAL;
	if (!vq->started)
		return 0;
	if (vq->last_avail_idx == vq->shadow_avail) {
		if (avail_refresh(vq) < 0)
			return -EINVAL;
		if (vq->last_avail_idx == vq->shadow_avail) {
			if (!vq->notify_enabled)
				return 0;
			/* empty: re-arm, then look again so a racing add is not lost */
			arm_avail_event(vq);
			/* full fence: pairs with the driver's barrier between its avail->idx
			 * store and its avail_event / flags load (s2.7.13.4.1) */
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (avail_refresh(vq) < 0)
				return -EINVAL;
			if (vq->last_avail_idx == vq->shadow_avail)
				return 0;
		}
	}

	/* ordered after the acquire load of avail->idx in avail_refresh() */
	uint16_t slot = vq->last_avail_idx & (vq->size - 1);
	uint16_t head = load16((uint16_t *)(vq->avail + AVAIL_RING + 2u * slot));
	if (head >= vq->size)
		return vq_fail(vq, "available ring entry is outside the descriptor table");
	int r = chain_walk(vq, chain, head);
	if (r < 0)
		return r;
	vq->last_avail_idx++;
	return 1;
}

int vq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	if (!vq->started || vq->broken || head >= vq->size)
		return -EINVAL;
	uint8_t *elem = vq->used + USED_RING + USED_ELEM_LEN * (vq->used_idx & (vq->size - 1));
	uint32_t id = htole32(head), len = htole32(written);
	memcpy(elem, &id, 4);
	memcpy(elem + 4, &len, 4);
	vq->used_idx++;
	gm_mark_dirty(vq->gm, elem, USED_ELEM_LEN);
	gm_mark_dirty(vq->gm, used_idx_p(vq), sizeof(uint16_t));
	/* release: pairs with the driver's read barrier after it reads used->idx;
	 * the element above and the data written to the buffers come first */
	__atomic_store_n(used_idx_p(vq), htole16(vq->used_idx), __ATOMIC_RELEASE);
	return 0;
}

bool vq_should_notify(struct virtq *vq)
{
	if (!vq->started)
		return false;
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_valid;

	if (old == now)
		return false; /* nothing pushed since the last decision */
	vq->signalled_used = now;
	vq->signalled_valid = true;
	/* full fence: pairs with the driver's barrier between writing used_event
	 * (or flags) and re-reading used->idx (s2.7.7) */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16((uint16_t *)(vq->avail + AVAIL_FLAGS)) &
		         VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	/* s2.7.7.2: notify when the used index crossed used_event, i.e. the
	 * entry at used_event was written in (old, now]; all mod 2^16 */
	uint16_t event = load16(used_event_p(vq));
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

void vq_disable_notify(struct virtq *vq)
{
	if (!vq->started)
		return;
	vq->notify_enabled = false;
	/* with EVENT_IDX the stale avail_event already suppresses (s2.7.10) */
	if (!vq->event_idx)
		used_store16(vq, (uint16_t *)(vq->used + USED_FLAGS), VIRTQ_USED_F_NO_NOTIFY);
}

bool vq_enable_notify(struct virtq *vq)
{
	if (!vq->started || vq->broken)
		return false;
	vq->notify_enabled = true;
	arm_avail_event(vq);
	/* full fence: as in vq_pop, before re-reading avail->idx */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t idx = le16toh(__atomic_load_n(avail_idx_p(vq), __ATOMIC_ACQUIRE));
	return idx != vq->last_avail_idx;
}

/* copies between a flat buffer and iov[first .. first + n), skipping `off` bytes */
static size_t iov_copy(const struct iovec *iov, unsigned n, uint64_t off, void *buf, size_t len,
                       bool to_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t k = iov[i].iov_len - off;
		if (k > len - done)
			k = len - done;
		uint8_t *g = (uint8_t *)iov[i].iov_base + off;
		if (to_iov)
			memcpy(g, (const uint8_t *)buf + done, k);
		else
			memcpy((uint8_t *)buf + done, g, k);
		done += k;
		off = 0;
	}
	return done;
}

size_t vq_chain_read(const struct vq_chain *c, uint64_t off, void *dst, size_t len)
{
	return iov_copy(c->iov, c->nr_readable, off, dst, len, false);
}

size_t vq_chain_write(const struct vq_chain *c, uint64_t off, const void *src, size_t len)
{
	return iov_copy(c->iov + c->nr_readable, c->nr_segs - c->nr_readable, off, (void *)src, len,
	                true);
}
