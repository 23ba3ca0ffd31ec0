// SPDX-License-Identifier: Apache-2.0
/*
 * The broken rings of the evil guest: each rule writes descriptors, ring
 * entries or queue registers that break one requirement of virtio 1.2
 * s2.7 (split virtqueues) or s4.2.3.2 (queue set-up), then notifies.
 * Buffers that are not themselves the fault point into the scratch pages,
 * so only the rule under test is broken.
 */
#include "evil.h"

#define FAR_AWAY   (1ull << 40) /* 1 TiB: no RAM of a test VM is there */
#define SCRATCH(c) ((uint64_t)(uintptr_t)(c)->scratch)
#define TABLE(c)   (SCRATCH(c) + 4096) /* an indirect table */
#define TABLE2(c)  (SCRATCH(c) + 8192) /* a second one */
#define BIG(c)     (SCRATCH(c) + 16384)

/* what the device may write into: rng and blk reads want writable buffers */
static uint16_t wflag(const struct evil_ctx *c)
{
	return c->target_id == VIRTIO_ID_NET ? 0 : VIRTQ_DESC_F_WRITE;
}

static void put_table(uint64_t at, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
                      uint16_t next)
{
	struct virtq_desc *t = (struct virtq_desc *)(uintptr_t)at;
	t[i] = (struct virtq_desc){addr, len, flags, next};
}

/* s2.7.5.2: a chain must end; here 0 -> 1 -> 0 */
static int rule_loop(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	vq_raw_desc(vq, 0, SCRATCH(c), 64, wflag(c) | VIRTQ_DESC_F_NEXT, 1);
	vq_raw_desc(vq, 1, SCRATCH(c) + 64, 64, wflag(c) | VIRTQ_DESC_F_NEXT, 0);
	vq_raw_publish(vq, 0);
	return 0;
}

/* a buffer at a guest-physical address where there is no RAM */
static int rule_oob(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	vq_raw_desc(vq, 0, FAR_AWAY, 512, wflag(c), 0);
	vq_raw_publish(vq, 0);
	return 0;
}

/* a buffer whose end wraps around the address space */
static int rule_wrap(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	vq_raw_desc(vq, 0, 0xfffffffffffff000ull, 0x2000, wflag(c), 0);
	vq_raw_publish(vq, 0);
	return 0;
}

/* s2.7.5.3.1: an indirect chain of queue size + 1 descriptors */
static int rule_chain(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	unsigned n = vq->size + 1u;
	if ((uint64_t)n * 16 > EVIL_SCRATCH_PAGES * KRT_PAGE_SIZE - 16384)
		return -KRT_ENOMEM;
	for (unsigned i = 0; i < n; i++)
		put_table(BIG(c), i, SCRATCH(c), 16,
		          (uint16_t)(wflag(c) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
		          (uint16_t)(i + 1));
	vq_raw_desc(vq, 0, BIG(c), n * 16, VIRTQ_DESC_F_INDIRECT, 0);
	vq_raw_publish(vq, 0);
	return 0;
}

/* s2.7.13: avail->idx more than the queue size ahead of the device */
static int rule_avail(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	vq_raw_desc(vq, 0, SCRATCH(c), 64, wflag(c), 0);
	vq_raw_set_avail_idx(vq, (uint16_t)(vq->size + 1));
	return 0;
}

/* s2.7.6: an avail ring entry that is not a descriptor index */
static int rule_head(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	(void)c;
	vq_raw_publish(vq, (uint16_t)(vq->size + 7));
	return 0;
}

/* s2.7.5: a next outside the descriptor table */
static int rule_next(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	vq_raw_desc(vq, 0, SCRATCH(c), 64, wflag(c) | VIRTQ_DESC_F_NEXT, (uint16_t)(vq->size + 3));
	vq_raw_publish(vq, 0);
	return 0;
}

/* s2.7.5.3.1: an indirect descriptor inside an indirect table */
static int rule_indirect(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	put_table(TABLE2(c), 0, SCRATCH(c), 64, wflag(c), 0);
	put_table(TABLE(c), 0, TABLE2(c), 16, VIRTQ_DESC_F_INDIRECT, 0);
	vq_raw_desc(vq, 0, TABLE(c), 16, VIRTQ_DESC_F_INDIRECT, 0);
	vq_raw_publish(vq, 0);
	return 0;
}

/*
 * Ring descriptor 0 points at an indirect table holding one good buffer;
 * `table_len` and `flags` carry the fault (with NEXT, descriptor 1 follows).
 */
static int one_indirect(struct evil_ctx *c, struct virtq *vq, uint32_t table_len, uint16_t flags)
{
	put_table(TABLE(c), 0, SCRATCH(c), 64, wflag(c), 0);
	vq_raw_desc(vq, 0, TABLE(c), table_len, VIRTQ_DESC_F_INDIRECT | flags, 1);
	vq_raw_desc(vq, 1, SCRATCH(c) + 64, 64, wflag(c), 0);
	vq_raw_publish(vq, 0);
	return 0;
}

/* s2.7.5.3: an indirect table of length 0 */
static int rule_zerolen(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	return one_indirect(c, vq, 0, 0);
}

/* s2.7.5.3: an indirect table whose length is not a multiple of 16 */
static int rule_indlen(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	return one_indirect(c, vq, 24, 0);
}

/* s2.7.5.3.1: INDIRECT and NEXT together */
static int rule_indnext(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	return one_indirect(c, vq, 16, VIRTQ_DESC_F_NEXT);
}

/* s2.7.5.3: an indirect descriptor when INDIRECT_DESC was not negotiated */
static int rule_noind(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	return one_indirect(c, vq, 16, 0);
}

/* s2.7.4.2: a device-readable buffer after a device-writable one */
static int rule_order(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	vq_raw_desc(vq, 0, SCRATCH(c), 64, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	vq_raw_desc(vq, 1, SCRATCH(c) + 64, 64, 0, 0);
	vq_raw_publish(vq, 0);
	return 0;
}

/* the size of the largest power-of-2 buffer of RAM at HUGE_AT, 0 when none */
#define HUGE_AT KRT_MIB(32) /* above what the guest allocates */
static uint64_t huge_len(void)
{
	const struct krt_mem_range *m;
	unsigned n = krt_memmap(&m);
	for (unsigned i = 0; i < n; i++) {
		if (m[i].type != KRT_MEM_RAM || m[i].addr > HUGE_AT ||
		    m[i].addr + m[i].size <= HUGE_AT + KRT_MIB(1))
			continue;
		uint64_t len = KRT_GIB(1), room = m[i].addr + m[i].size - HUGE_AT;
		while (len > room)
			len >>= 1;
		return len;
	}
	return 0;
}

/*
 * s2.7.5.1: a chain longer than 2^32 bytes, every buffer in RAM (the same
 * one, 4 GiB / len + 1 times), so that only the total is wrong; without
 * enough RAM or descriptors, three buffers of 1.5 GiB (then also outside RAM)
 */
static int rule_huge(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)q;
	uint64_t len = huge_len(), n = len ? KRT_GIB(4) / len + 1 : 0;
	uint64_t addr = HUGE_AT;
	if (n == 0 || n > vq->size) {
		n = 3;
		len = 0x60000000u;
		addr = SCRATCH(c);
	}
	for (uint16_t i = 0; i < n; i++)
		vq_raw_desc(vq, i, addr, (uint32_t)len,
		            (uint16_t)(wflag(c) | (i + 1u < n ? VIRTQ_DESC_F_NEXT : 0)),
		            (uint16_t)(i + 1));
	vq_raw_publish(vq, 0);
	return 0;
}

/* s4.2.3.2 by hand with one value wrong; `bad` picks which */
enum setup_fault { RING_FAR, RING_MISALIGNED, SIZE_NOT_POW2 };

static int bad_setup(struct evil_ctx *c, uint16_t q, enum setup_fault bad)
{
	struct virtio_dev *d = &c->raw;
	uint32_t size = 8;
	uint64_t desc = SCRATCH(c) + 4096, avail = SCRATCH(c) + 8192, used = SCRATCH(c) + 12288;

	memset(c->scratch + 4096, 0, 3 * 4096);
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_SEL, q);
	uint32_t max = virtio_read_reg(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max < 8)
		return -KRT_EINVAL;
	if (bad == RING_FAR)
		desc = FAR_AWAY;
	else if (bad == RING_MISALIGNED)
		desc += 8; /* s2.7: the table is 16-byte aligned */
	else
		size = 6;
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_NUM, size);
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_READY, 1);
	virtio_driver_ok(d);
	/* one buffer in the (possibly broken) ring, and a notify */
	volatile uint16_t *av = (volatile uint16_t *)(uintptr_t)avail;
	av[2] = 0;
	av[1] = 1;
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	return 0;
}

static int rule_ring(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)vq;
	return bad_setup(c, q, RING_FAR);
}

static int rule_misalign(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)vq;
	return bad_setup(c, q, RING_MISALIGNED);
}

static int rule_qsize(struct evil_ctx *c, struct virtq *vq, uint16_t q)
{
	(void)vq;
	return bad_setup(c, q, SIZE_NOT_POW2);
}

const struct evil_rule evil_rules[] = {
        {"loop", "a descriptor loop", 0, rule_loop},
        {"oob", "a buffer outside RAM", 0, rule_oob},
        {"wrap", "a buffer wrapping around 2^64", 0, rule_wrap},
        {"chain", "an indirect chain longer than the queue", EVIL_NEEDS_INDIRECT, rule_chain},
        {"avail", "avail->idx more than the queue size ahead", 0, rule_avail},
        {"head", "an avail entry outside the table", 0, rule_head},
        {"next", "a next outside the table", 0, rule_next},
        {"indirect", "an indirect table inside an indirect table", EVIL_NEEDS_INDIRECT,
         rule_indirect},
        {"zerolen", "an indirect table of length 0", EVIL_NEEDS_INDIRECT, rule_zerolen},
        {"indlen", "an indirect table length not a multiple of 16", EVIL_NEEDS_INDIRECT,
         rule_indlen},
        {"indnext", "INDIRECT together with NEXT", EVIL_NEEDS_INDIRECT, rule_indnext},
        {"noind", "INDIRECT without VIRTIO_F_INDIRECT_DESC", EVIL_NO_INDIRECT, rule_noind},
        {"order", "a readable buffer after a writable one", 0, rule_order},
        {"huge", "a chain of more than 4 GiB", 0, rule_huge},
        {"ring", "a descriptor table outside RAM", EVIL_SETUP, rule_ring},
        {"misalign", "a descriptor table not 16-byte aligned", EVIL_SETUP, rule_misalign},
        {"qsize", "a queue size that is not a power of 2", EVIL_SETUP, rule_qsize},
};
const unsigned evil_nr_rules = KRT_ARRAY_SIZE(evil_rules);

int evil_break(struct evil_ctx *c, const struct evil_rule *r)
{
	uint64_t f = virtio_transport_features();
	uint16_t q = c->target_id == VIRTIO_ID_NET ? 1 : 0; /* net: the transmit queue */
	int ret;

	if (r->flags & EVIL_NO_INDIRECT)
		f &= ~VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	if (r->flags & EVIL_NEEDS_INDIRECT)
		f |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	if ((ret = virtio_find(&c->raw, c->target_id, c->target_nth)) < 0 ||
	    (ret = virtio_start(&c->raw, f)) < 0)
		return ret;
	if ((r->flags & EVIL_NEEDS_INDIRECT) && !virtio_has(&c->raw, VIRTIO_F_INDIRECT_DESC)) {
		krt_printf("evil: %s skipped: the device does not offer INDIRECT_DESC\n", r->name);
		virtio_reset(&c->raw);
		return -KRT_ENOTSUP;
	}
	krt_printf("evil: %s: %s\n", r->name, r->what);
	for (uint16_t i = 0; i < q; i++)
		if ((ret = virtio_queue_setup(&c->raw, &c->rawq[i], i, 0)) < 0)
			return ret;
	if (r->flags & EVIL_SETUP)
		return r->fn(c, NULL, q);
	if ((ret = virtio_queue_setup(&c->raw, &c->rawq[q], q, 0)) < 0)
		return ret;
	virtio_driver_ok(&c->raw);
	if ((ret = r->fn(c, &c->rawq[q], q)) < 0)
		return ret;
	vq_notify(&c->rawq[q]);
	return 0;
}
