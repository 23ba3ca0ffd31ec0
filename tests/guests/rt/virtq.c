// SPDX-License-Identifier: Apache-2.0
/*
 * krt virtio: the driver side of split virtqueues (virtio 1.2 s2.7) --
 * adding chains (direct or through an indirect table, s2.7.5.3), batched
 * publication and notification (s2.7.13), taking used buffers back
 * (s2.7.14) by polling, and raw ring writes for the evil guest.
 *
 * Ordering: the device is a host thread, and x86 keeps stores in order
 * and loads in order (TSO), so the compiler barriers below are enough
 * where a write must not pass a write or a read a read; the one store ->
 * load order that x86 does not keep (publishing avail->idx, then reading
 * the device's notification suppression) takes an mfence.
 */
#include "virtio.h"

static inline void compiler_barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static inline void full_barrier(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

/* the ring fields, by their place in the u16 arrays (s2.7.6, s2.7.8) */
#define AVAIL_FLAGS            0
#define AVAIL_IDX              1
#define AVAIL_RING(i)          (2 + (i))
#define AVAIL_USED_EVENT(size) (2 + (size))
#define USED_FLAGS             0
#define USED_IDX               1
#define USED_AVAIL_EVENT(size) (2 + 4 * (size)) /* after ring[size] of 8 bytes */

/* s2.7.4.2: device-readable buffers first */
static bool order_ok(const struct vq_seg *segs, unsigned nr)
{
	bool seen_write = false;
	for (unsigned i = 0; i < nr; i++) {
		if (segs[i].write)
			seen_write = true;
		else if (seen_write)
			return false;
	}
	return true;
}

static uint16_t seg_flags(const struct vq_seg *s, bool more)
{
	return (uint16_t)((s->write ? VIRTQ_DESC_F_WRITE : 0) | (more ? VIRTQ_DESC_F_NEXT : 0));
}

/* s2.7.5.3: the whole chain in the head's own table, one ring descriptor */
static void add_indirect(struct virtq *vq, uint16_t head, const struct vq_seg *segs, unsigned nr)
{
	struct virtq_desc *t = vq->ind + (size_t)head * VQ_INDIRECT_MAX;
	for (unsigned i = 0; i < nr; i++)
		t[i] = (struct virtq_desc){(uint64_t)(uintptr_t)segs[i].addr, segs[i].len,
		                           seg_flags(&segs[i], i + 1 < nr), (uint16_t)(i + 1)};
	volatile struct virtq_desc *d = &vq->desc[head];
	vq->free_head = d->next;
	d->addr = (uint64_t)(uintptr_t)t;
	d->len = (uint32_t)(nr * sizeof(*t));
	d->flags = VIRTQ_DESC_F_INDIRECT;
}

/* the chain follows the free list: each descriptor's next already links them */
static void add_direct(struct virtq *vq, uint16_t head, const struct vq_seg *segs, unsigned nr)
{
	uint16_t i = head;
	for (unsigned k = 0; k < nr; k++) {
		volatile struct virtq_desc *d = &vq->desc[i];
		d->addr = (uint64_t)(uintptr_t)segs[k].addr;
		d->len = segs[k].len;
		d->flags = seg_flags(&segs[k], k + 1 < nr);
		i = d->next;
	}
	vq->free_head = i;
}

int vq_add(struct virtq *vq, const struct vq_seg *segs, unsigned nr, void *token)
{
	if (nr == 0 || !token || !order_ok(segs, nr))
		return -KRT_EINVAL;
	bool indirect = vq->indirect && nr > 1 && nr <= VQ_INDIRECT_MAX;
	unsigned need = indirect ? 1 : nr;
	if (need > vq->num_free)
		return -KRT_ENOSPC;
	uint16_t head = vq->free_head;
	if (indirect)
		add_indirect(vq, head, segs, nr);
	else
		add_direct(vq, head, segs, nr);
	vq->num_free = (uint16_t)(vq->num_free - need);
	vq->chain_descs[head] = (uint16_t)need;
	vq->token[head] = token;
	vq->avail[AVAIL_RING(vq->avail_next & (vq->size - 1))] = head;
	vq->avail_next++;
	return head;
}

/* s2.7.10: with EVENT_IDX, notify when avail_event lies in [old, new) */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_kick(struct virtq *vq)
{
	uint16_t old = vq->avail_published, new_idx = vq->avail_next;
	if (old == new_idx)
		return false;
	/* s2.7.13.3: ring entries before the index (x86 keeps stores in order) */
	compiler_barrier();
	vq->avail[AVAIL_IDX] = new_idx;
	/* s2.7.13.4: the index store before the read of the suppression fields */
	full_barrier();
	vq->avail_published = new_idx;
	vq->kicks++;
	bool need = vq->event_idx ? need_event(vq->used[USED_AVAIL_EVENT(vq->size)], new_idx, old)
	                          : !(vq->used[USED_FLAGS] & VIRTQ_USED_F_NO_NOTIFY);
	if (need)
		vq_notify(vq);
	return need;
}

void vq_notify(struct virtq *vq)
{
	vq->notifies++;
	virtio_write_reg(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
}

/* puts the chain's descriptors back on the free list */
static void free_chain(struct virtq *vq, uint16_t head)
{
	uint16_t last = head;
	for (uint16_t n = vq->chain_descs[head]; n > 1; n--)
		last = vq->desc[last].next;
	vq->desc[last].next = vq->free_head;
	vq->free_head = head;
	vq->num_free = (uint16_t)(vq->num_free + vq->chain_descs[head]);
	vq->chain_descs[head] = 0;
	vq->token[head] = NULL;
}

int vq_get(struct virtq *vq, void **token, uint32_t *len)
{
	uint16_t idx = vq->used[USED_IDX];
	if (idx == vq->last_used)
		return 0;
	/* s2.7.14: the entry after the index (x86 keeps loads in order) */
	compiler_barrier();
	if ((uint16_t)(idx - vq->last_used) > vq->size)
		return -KRT_EIO; /* the device moved used->idx too far */
	struct virtq_used_elem e = vq->used_ring[vq->last_used & (vq->size - 1)];
	if (e.id >= vq->size || !vq->token[e.id])
		return -KRT_EIO; /* not a head in flight */
	*token = vq->token[e.id];
	*len = e.len;
	free_chain(vq, (uint16_t)e.id);
	vq->last_used++;
	if (vq->event_idx) /* keep used buffer notifications away: the driver polls */
		vq->avail[AVAIL_USED_EVENT(vq->size)] = (uint16_t)(vq->last_used + 0x7fff);
	return 1;
}

int vq_wait(struct virtq *vq, void **token, uint32_t *len, uint64_t timeout_us)
{
	uint64_t hz = krt_tsc_hz(), t0 = krt_rdtsc(), last_check = t0;
	uint64_t limit = timeout_us / 1000000 * hz + timeout_us % 1000000 * hz / 1000000;

	for (;;) {
		int ret = vq_get(vq, token, len);
		if (ret != 0)
			return ret;
		uint64_t now = krt_rdtsc();
		if (now - last_check > hz / 1000) {
			last_check = now;
			if (virtio_status(vq->dev) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
				return -KRT_EIO;
		}
		if (now - t0 > limit)
			return -KRT_ETIMEDOUT;
		krt_pause();
	}
}

unsigned vq_in_flight(const struct virtq *vq)
{
	return (uint16_t)(vq->avail_next - vq->last_used);
}

/* ---------------------------------------------------------------- raw */

void vq_raw_desc(struct virtq *vq, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
	volatile struct virtq_desc *d = &vq->desc[i & (vq->size - 1)];
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

void vq_raw_publish(struct virtq *vq, uint16_t head)
{
	vq->avail[AVAIL_RING(vq->avail_next & (vq->size - 1))] = head;
	vq->avail_next++;
	compiler_barrier();
	vq->avail[AVAIL_IDX] = vq->avail_next;
	vq->avail_published = vq->avail_next;
}

void vq_raw_set_avail_idx(struct virtq *vq, uint16_t idx)
{
	compiler_barrier();
	vq->avail[AVAIL_IDX] = idx;
	vq->avail_next = vq->avail_published = idx;
}
