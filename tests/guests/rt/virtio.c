// SPDX-License-Identifier: Apache-2.0
/*
 * krt virtio: the virtio-mmio version 2 transport (virtio 1.2 s4.2) as a
 * driver sees it -- discovery, the initialisation sequence (s3.1.1),
 * feature negotiation, queue set-up (s4.2.3.2), configuration space and
 * reset. The split rings themselves are in virtq.c.
 */
#include "virtio.h"

#define RESET_TIMEOUT_US 1000000
#define DEFAULT_QSIZE    256

static uint32_t rd(const struct virtio_dev *d, uint32_t off)
{
	return krt_mmio_read32(d->base + off);
}

static void wr(struct virtio_dev *d, uint32_t off, uint32_t v)
{
	krt_mmio_write32(d->base + off, v);
}

uint32_t virtio_read_reg(const struct virtio_dev *d, uint32_t off)
{
	return rd(d, off);
}

void virtio_write_reg(struct virtio_dev *d, uint32_t off, uint32_t val)
{
	wr(d, off, val);
}

const char *virtio_id_name(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return "net";
	case VIRTIO_ID_BLOCK:
		return "blk";
	case VIRTIO_ID_RNG:
		return "rng";
	case VIRTIO_ID_VSOCK:
		return "vsock";
	default:
		return "?";
	}
}

int virtio_probe(struct virtio_dev *d, const struct virtio_mmio_slot *slot)
{
	*d = (struct virtio_dev){.base = slot->base, .irq = slot->irq};
	if (slot->size < VIRTIO_MMIO_CONFIG || !krt_is_mapped(slot->base, slot->size) ||
	    rd(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
		return -KRT_ENODEV;
	uint32_t version = rd(d, VIRTIO_MMIO_VERSION);
	d->device_id = rd(d, VIRTIO_MMIO_DEVICE_ID);
	d->vendor_id = rd(d, VIRTIO_MMIO_VENDOR_ID);
	if (d->device_id == 0)
		return -KRT_ENODEV; /* s4.2.3.1.1: a placeholder, no device behind it */
	if (version != 2)
		return -KRT_ENOTSUP; /* legacy (QEMU: -global virtio-mmio.force-legacy=off) */
	return 0;
}

/* the command line's slots, parsed once */
static struct virtio_mmio_slot slots[VIRTIO_MAX_DEVICES];
static unsigned nr_slots;
static bool slots_parsed;

static unsigned get_slots(void)
{
	if (!slots_parsed) {
		unsigned bad = 0;
		nr_slots = virtio_mmio_parse(krt_cmdline(), slots, VIRTIO_MAX_DEVICES, &bad);
		if (bad)
			krt_printf("virtio: %u virtio_mmio.device= entries ignored (malformed or "
			           "more than %u)\n",
			           bad, VIRTIO_MAX_DEVICES);
		slots_parsed = true;
	}
	return nr_slots;
}

int virtio_find(struct virtio_dev *d, uint32_t device_id, unsigned nth)
{
	unsigned n = get_slots();
	for (unsigned i = 0; i < n; i++) {
		if (virtio_probe(d, &slots[i]) == 0 && d->device_id == device_id && nth-- == 0)
			return 0;
	}
	return -KRT_ENODEV;
}

void virtio_print_devices(void)
{
	unsigned n = get_slots();
	struct virtio_dev d;

	if (n == 0)
		krt_printf("virtio: no virtio_mmio.device= on the command line\n");
	for (unsigned i = 0; i < n; i++) {
		int ret = virtio_probe(&d, &slots[i]);
		krt_printf("virtio: 0x%lx irq %u %s\n", slots[i].base, slots[i].irq,
		           ret == 0              ? virtio_id_name(d.device_id)
		           : ret == -KRT_ENOTSUP ? "legacy (version 1, not supported)"
		                                 : "no device");
	}
}

uint64_t virtio_transport_features(void)
{
	uint64_t f = VIRTIO_BIT(VIRTIO_F_VERSION_1);
	if (krt_param_u64("virtio.indirect", 1))
		f |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	if (krt_param_u64("virtio.event_idx", 1))
		f |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	return f;
}

uint32_t virtio_status(const struct virtio_dev *d)
{
	return rd(d, VIRTIO_MMIO_STATUS);
}

void virtio_set_status(struct virtio_dev *d, uint32_t status)
{
	wr(d, VIRTIO_MMIO_STATUS, status);
}

int virtio_reset(struct virtio_dev *d)
{
	wr(d, VIRTIO_MMIO_STATUS, 0);
	uint64_t t0 = krt_rdtsc(), limit = krt_tsc_hz() / 1000000 * RESET_TIMEOUT_US;
	while (rd(d, VIRTIO_MMIO_STATUS) != 0) {
		if (krt_rdtsc() - t0 > limit)
			return -KRT_EIO;
		krt_udelay(10);
	}
	d->features = 0;
	return 0;
}

static uint64_t read_features(struct virtio_dev *d)
{
	wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = rd(d, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return lo | (uint64_t)rd(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

/* s3.1.1 steps 1-6 */
int virtio_start(struct virtio_dev *d, uint64_t wanted)
{
	if (virtio_reset(d) < 0)
		return -KRT_EIO;
	wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	d->offered = read_features(d);
	uint64_t accept = d->offered & wanted;
	if (!(accept & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		goto err_refused; /* s6.1: a non-legacy driver needs VERSION_1 */
	wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)accept);
	wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(accept >> 32));
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	wr(d, VIRTIO_MMIO_STATUS, st);
	if (!(rd(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		goto err_refused; /* s3.1.1 step 6: the device does not take this subset */
	d->features = accept;
	return 0;

err_refused:
	wr(d, VIRTIO_MMIO_STATUS, rd(d, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_FAILED);
	return -KRT_ENOTSUP;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	wr(d, VIRTIO_MMIO_STATUS, rd(d, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* ------------------------------------------------------ configuration space */

uint8_t virtio_cfg8(const struct virtio_dev *d, uint32_t off)
{
	return *(volatile uint8_t *)krt_phys(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint16_t virtio_cfg16(const struct virtio_dev *d, uint32_t off)
{
	return *(volatile uint16_t *)krt_phys(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint32_t virtio_cfg32(const struct virtio_dev *d, uint32_t off)
{
	return rd(d, VIRTIO_MMIO_CONFIG + off);
}

/* s2.5.1: a field wider than 32 bits is read until ConfigGeneration holds still */
uint64_t virtio_cfg64(const struct virtio_dev *d, uint32_t off)
{
	uint32_t gen, lo, hi;
	unsigned tries = 0;
	do {
		gen = rd(d, VIRTIO_MMIO_CONFIG_GENERATION);
		lo = rd(d, VIRTIO_MMIO_CONFIG + off);
		hi = rd(d, VIRTIO_MMIO_CONFIG + off + 4);
	} while (rd(d, VIRTIO_MMIO_CONFIG_GENERATION) != gen && ++tries < 100);
	return lo | (uint64_t)hi << 32;
}

/* ------------------------------------------------------------ queue set-up */

/* desc table, then avail ring, then the used ring on a page boundary (s2.7) */
static size_t ring_bytes(uint32_t size, size_t *avail_off, size_t *used_off)
{
	*avail_off = 16ull * size;
	size_t used = *avail_off + 6 + 2ull * size;
	*used_off = (used + KRT_PAGE_SIZE - 1) & ~(KRT_PAGE_SIZE - 1);
	return *used_off + 6 + 8ull * size;
}

/* everything one queue of `size` needs: rings, tokens, counts, indirect tables */
static size_t queue_pages(uint32_t size, size_t *tok_off, size_t *cnt_off, size_t *ind_off)
{
	size_t a, u, end = ring_bytes(size, &a, &u);
	*tok_off = (end + 7) & ~7ul;
	*cnt_off = *tok_off + sizeof(void *) * size;
	*ind_off = (*cnt_off + 2ull * size + 15) & ~15ul;
	end = *ind_off + sizeof(struct virtq_desc) * VQ_INDIRECT_MAX * size;
	return (end + KRT_PAGE_SIZE - 1) / KRT_PAGE_SIZE;
}

static void wr64(struct virtio_dev *d, uint32_t lo_reg, uint64_t v)
{
	wr(d, lo_reg, (uint32_t)v);
	wr(d, lo_reg + 4, (uint32_t)(v >> 32));
}

/* the queue's memory, from the allocator or the previous set-up of the same size */
static int queue_memory(struct virtq *vq, uint32_t size)
{
	size_t tok, cnt, ind, pages = queue_pages(size, &tok, &cnt, &ind);
	if (!vq->mem || vq->mem_pages < pages) {
		vq->mem = krt_alloc_pages(pages, KRT_PAGE_SIZE);
		if (!vq->mem)
			return -KRT_ENOMEM;
		vq->mem_pages = pages;
	} else {
		memset(vq->mem, 0, vq->mem_pages * KRT_PAGE_SIZE);
	}
	size_t avail_off, used_off;
	uint8_t *m = vq->mem;
	ring_bytes(size, &avail_off, &used_off);
	vq->desc = (volatile struct virtq_desc *)m;
	vq->avail = (volatile uint16_t *)(m + avail_off);
	vq->used = (volatile uint16_t *)(m + used_off);
	vq->used_ring = (volatile struct virtq_used_elem *)(m + used_off + 4);
	vq->token = (void **)(m + tok);
	vq->chain_descs = (uint16_t *)(m + cnt);
	vq->ind = (struct virtq_desc *)(m + ind);
	return 0;
}

int virtio_queue_setup(struct virtio_dev *d, struct virtq *vq, uint16_t index, uint16_t want)
{
	wr(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (rd(d, VIRTIO_MMIO_QUEUE_READY))
		return -KRT_EBUSY;
	uint32_t max = rd(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max == 0)
		return -KRT_ENOENT;
	uint32_t size = want ? want : (uint32_t)krt_param_u64("virtio.qsize", DEFAULT_QSIZE);
	if (size > max)
		size = max;
	if (size > VQ_MAX_SIZE)
		size = VQ_MAX_SIZE;
	while (size & (size - 1))
		size &= size - 1; /* s2.7: a power of 2 */
	if (size == 0)
		return -KRT_EINVAL;
	int ret = queue_memory(vq, size);
	if (ret < 0)
		return ret;
	vq->dev = d;
	vq->index = index;
	vq->size = (uint16_t)size;
	vq->indirect = virtio_has(d, VIRTIO_F_INDIRECT_DESC);
	vq->event_idx = virtio_has(d, VIRTIO_F_EVENT_IDX);
	vq->avail_next = vq->avail_published = vq->last_used = 0;
	vq->kicks = vq->notifies = 0;
	for (uint32_t i = 0; i < size; i++)
		vq->desc[i].next = (uint16_t)(i + 1);
	vq->free_head = 0;
	vq->num_free = (uint16_t)size;
	/* the driver polls: no interrupts (s2.7.7; used_event far ahead with EVENT_IDX) */
	vq->avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	vq->avail[2 + size] = 0x7fff;
	wr(d, VIRTIO_MMIO_QUEUE_NUM, size);
	wr64(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint64_t)(uintptr_t)vq->desc);
	wr64(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint64_t)(uintptr_t)vq->avail);
	wr64(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint64_t)(uintptr_t)vq->used);
	wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return 0;
}
