// SPDX-License-Identifier: Apache-2.0
/*
 * Split virtqueues (virtio/queue.c): rings built by hand in a real
 * guest_mem, well-formed chains, notification suppression at its
 * boundaries and across the 16-bit wrap, and hostile rings that must all
 * end in -EINVAL without touching anything outside guest RAM.
 */
#include <criterion/criterion.h>

#include "virtio/virtio.h"

#include <errno.h>
#include <string.h>

#define RAM       MIB(4)
#define DESC_GPA  0x10000ull
#define AVAIL_GPA 0x20000ull
#define USED_GPA  0x30000ull
#define TABLE_GPA 0x40000ull /* indirect tables */
#define BUF_GPA   0x100000ull

static struct guest_mem gm;
static struct virtq vq;
static struct vq_chain chain;
static uint16_t avail_idx;

static void setup(void)
{
	struct errbuf e;
	cr_assert_eq(gm_init(&gm, RAM, GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	vq_reset(&vq);
	avail_idx = 0;
}

static void teardown(void)
{
	gm_destroy(&gm);
}

TestSuite(virtqueue, .init = setup, .fini = teardown);

static void put_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	uint8_t *p = gm_ptr(&gm, table + 16ull * i, 16);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static uint16_t *avail16(unsigned word)
{
	return gm_ptr(&gm, AVAIL_GPA + 2ull * word, 2);
}

static uint16_t *used16(unsigned word)
{
	return gm_ptr(&gm, USED_GPA + 2ull * word, 2);
}

/* avail: flags, idx, ring[size], used_event */
static void offer(uint16_t head)
{
	*avail16(2 + avail_idx % vq.size) = head;
	avail_idx++;
	*avail16(1) = avail_idx;
}

static void start(uint16_t size, uint64_t features)
{
	vq.size = size;
	vq.desc_gpa = DESC_GPA;
	vq.avail_gpa = AVAIL_GPA;
	vq.used_gpa = USED_GPA;
	vq.ready = true;
	cr_assert_eq(vq_start(&vq, &gm, features), 0, "%s", vq.error);
}

/* the pop must fail, and for the rule whose message contains `rule` */
static void expect_broken(const char *what, const char *rule)
{
	cr_assert_eq(vq_pop(&vq, &chain), -EINVAL, "%s accepted", what);
	cr_assert(vq.broken);
	cr_assert_not_null(vq.error);
	cr_assert(strstr(vq.error, rule), "%s: failed for \"%s\"", what, vq.error);
	/* sticky */
	cr_assert_eq(vq_pop(&vq, &chain), -EINVAL);
}

#define IND VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)
#define EVT VIRTIO_BIT(VIRTIO_F_EVENT_IDX)

Test(virtqueue, simple_chain_and_push)
{
	start(16, 0);
	put_desc(DESC_GPA, 3, BUF_GPA, 100, VIRTQ_DESC_F_NEXT, 7);
	put_desc(DESC_GPA, 7, BUF_GPA + 0x1000, 50, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA + 0x2000, 200, VIRTQ_DESC_F_WRITE, 0);
	cr_assert_eq(vq_pop(&vq, &chain), 0);
	offer(3);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_assert_eq(chain.head, 3);
	cr_assert_eq(chain.nr_segs, 3);
	cr_assert_eq(chain.nr_readable, 2);
	cr_assert_eq(chain.readable_len, 150);
	cr_assert_eq(chain.writable_len, 200);
	cr_assert_eq(chain.iov[0].iov_base, gm_ptr(&gm, BUF_GPA, 1));
	cr_assert_eq(chain.iov[2].iov_base, gm_ptr(&gm, BUF_GPA + 0x2000, 1));
	cr_assert_eq(chain.iov[2].iov_len, 200);
	cr_assert_eq(vq_pop(&vq, &chain), 0);

	cr_assert_eq(vq_push(&vq, 3, 42), 0);
	cr_assert_eq(*used16(1), 1);
	uint32_t elem[2];
	memcpy(elem, gm_ptr(&gm, USED_GPA + 4, 8), 8);
	cr_assert_eq(elem[0], 3);
	cr_assert_eq(elem[1], 42);
	cr_assert_eq(vq_push(&vq, 16, 0), -EINVAL, "head outside the queue");
}

Test(virtqueue, chain_copy_helpers)
{
	start(8, 0);
	memcpy(gm_ptr(&gm, BUF_GPA, 4), "abcd", 4);
	memcpy(gm_ptr(&gm, BUF_GPA + 0x100, 4), "efgh", 4);
	put_desc(DESC_GPA, 0, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA + 0x100, 4, VIRTQ_DESC_F_NEXT, 2);
	put_desc(DESC_GPA, 2, BUF_GPA + 0x200, 3, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	put_desc(DESC_GPA, 3, BUF_GPA + 0x300, 3, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	char buf[16] = {0};
	cr_assert_eq(vq_chain_read(&chain, 2, buf, sizeof(buf)), 6);
	cr_assert_str_eq(buf, "cdefgh");
	cr_assert_eq(vq_chain_write(&chain, 1, "WXYZ", 4), 4);
	cr_assert_eq(memcmp(gm_ptr(&gm, BUF_GPA + 0x201, 2), "WX", 2), 0);
	cr_assert_eq(memcmp(gm_ptr(&gm, BUF_GPA + 0x300, 2), "YZ", 2), 0);
	cr_assert_eq(vq_chain_write(&chain, 6, "x", 1), 0, "past the writable part");
}

Test(virtqueue, indirect_chain)
{
	start(8, IND);
	put_desc(TABLE_GPA, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(TABLE_GPA, 2, BUF_GPA + 0x100, 32, VIRTQ_DESC_F_NEXT, 1);
	put_desc(TABLE_GPA, 1, BUF_GPA + 0x200, 64, VIRTQ_DESC_F_WRITE, 0);
	/* a normal descriptor first, then the table (s2.7.5.3.2 allows it) */
	put_desc(DESC_GPA, 5, BUF_GPA + 0x300, 8, VIRTQ_DESC_F_NEXT, 6);
	put_desc(DESC_GPA, 6, TABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	offer(5);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_assert_eq(chain.head, 5);
	cr_assert_eq(chain.nr_segs, 4);
	cr_assert_eq(chain.nr_readable, 3);
	cr_assert_eq(chain.readable_len, 8 + 16 + 32);
	cr_assert_eq(chain.writable_len, 64);
}

Test(virtqueue, indirect_table_of_queue_size_is_fine)
{
	start(4, IND);
	for (uint16_t i = 0; i < 4; i++)
		put_desc(TABLE_GPA, i, BUF_GPA + i * 0x100, 8, i < 3 ? VIRTQ_DESC_F_NEXT : 0,
		         i + 1);
	put_desc(DESC_GPA, 0, TABLE_GPA, 4 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_assert_eq(chain.nr_segs, 4);
}

Test(virtqueue, zero_length_descriptors_are_counted)
{
	start(8, 0);
	put_desc(DESC_GPA, 0, 0xdeadbeef000ull, 0, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 10, VIRTQ_DESC_F_NEXT, 2);
	put_desc(DESC_GPA, 2, BUF_GPA, 0, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_assert_eq(chain.nr_segs, 1);
	cr_assert_eq(chain.nr_zero_len, 2);
	cr_assert_eq(vq.nr_zero_len, 2);
}

Test(virtqueue, many_chains_wrap_the_ring)
{
	start(4, 0);
	for (unsigned round = 0; round < 10; round++) {
		for (uint16_t i = 0; i < 4; i++) {
			put_desc(DESC_GPA, i, BUF_GPA, 8, 0, 0);
			offer(i);
		}
		for (uint16_t i = 0; i < 4; i++) {
			cr_assert_eq(vq_pop(&vq, &chain), 1);
			cr_assert_eq(chain.head, i);
			cr_assert_eq(vq_push(&vq, chain.head, 0), 0);
		}
		cr_assert_eq(vq_pop(&vq, &chain), 0);
	}
	cr_assert_eq(*used16(1), 40);
}

/* --------------------------------------------------------- notifications */

Test(virtqueue, nothing_pushed_nothing_to_notify)
{
	start(8, 0);
	cr_assert_not(vq_should_notify(&vq));
	vq_reset(&vq);
	start(8, EVT);
	cr_assert_not(vq_should_notify(&vq));
}

Test(virtqueue, should_notify_flags)
{
	start(8, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	vq_push(&vq, 0, 0);
	cr_assert(vq_should_notify(&vq));
	cr_assert_not(vq_should_notify(&vq), "nothing new pushed");
	*avail16(0) = VIRTQ_AVAIL_F_NO_INTERRUPT;
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	vq_push(&vq, 0, 0);
	cr_assert_not(vq_should_notify(&vq));
}

/* pushes one chain and returns vq_should_notify() */
static bool push_one(void)
{
	put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	vq_push(&vq, 0, 0);
	return vq_should_notify(&vq);
}

static void run_event_idx(uint16_t base)
{
	/* indices restored at `base`, as after a snapshot */
	vq.last_avail_idx = vq.used_idx = base;
	avail_idx = base;
	*avail16(1) = base;
	*used16(1) = base;
	start(8, EVT);
	uint16_t *used_event = avail16(2 + 8);

	*used_event = base; /* notify after the entry at `base` is used */
	cr_assert(push_one(), "first decision after start is never skipped");
	*used_event = (uint16_t)(base + 2);
	cr_assert_not(push_one(), "used idx %u, event %u", (uint16_t)(base + 2), *used_event);
	cr_assert(push_one(), "entry base+2 was written: cross");
	cr_assert_not(push_one(), "already past the event");
	/* several pushes in one batch that jump over the event */
	*used_event = (uint16_t)(base + 5);
	for (int i = 0; i < 3; i++) {
		put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
		offer(0);
		cr_assert_eq(vq_pop(&vq, &chain), 1);
		vq_push(&vq, 0, 0);
	}
	cr_assert(vq_should_notify(&vq), "batch crossed the event");
	/* an event far behind (driver slow) does not notify */
	*used_event = (uint16_t)(base - 100);
	cr_assert_not(push_one());
	/* the device's avail_event is re-armed on an empty pop */
	cr_assert_eq(vq_pop(&vq, &chain), 0);
	cr_assert_eq(*used16(2 + 4 * 8), vq.last_avail_idx);
}

Test(virtqueue, event_idx)
{
	run_event_idx(0);
}

Test(virtqueue, event_idx_across_the_16_bit_wrap)
{
	run_event_idx(65533);
	cr_assert_lt(vq.used_idx, 100, "used idx wrapped");
}

Test(virtqueue, enable_disable_notify_without_event_idx)
{
	start(8, 0);
	vq_disable_notify(&vq);
	cr_assert_eq(*used16(0), VIRTQ_USED_F_NO_NOTIFY);
	cr_assert_eq(vq_pop(&vq, &chain), 0);
	cr_assert_eq(*used16(0), VIRTQ_USED_F_NO_NOTIFY, "an empty pop keeps them disabled");
	cr_assert_not(vq_enable_notify(&vq));
	cr_assert_eq(*used16(0), 0);
	vq_disable_notify(&vq);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	cr_assert(vq_enable_notify(&vq), "a buffer arrived while disabled");
}

Test(virtqueue, enable_notify_with_event_idx)
{
	start(8, EVT);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	vq_disable_notify(&vq);
	cr_assert(vq_enable_notify(&vq));
	cr_assert_eq(*used16(2 + 4 * 8), 1, "avail_event = last_avail_idx");
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_assert_not(vq_enable_notify(&vq));
	cr_assert_eq(*used16(2 + 4 * 8), 2);
}

/* ------------------------------------------------------------ hostile */

Test(virtqueue, start_rejects_bad_rings)
{
	vq.desc_gpa = DESC_GPA, vq.avail_gpa = AVAIL_GPA, vq.used_gpa = USED_GPA;
	uint16_t bad_sizes[] = {0, 3, 2048};
	for (unsigned i = 0; i < ARRAY_SIZE(bad_sizes); i++) {
		vq.size = bad_sizes[i];
		cr_assert_eq(vq_start(&vq, &gm, 0), -EINVAL, "size %u", bad_sizes[i]);
	}
	vq.size = 8;
	vq.desc_gpa = DESC_GPA + 8;
	cr_assert_eq(vq_start(&vq, &gm, 0), -EINVAL, "misaligned table");
	vq.desc_gpa = RAM - 64; /* 8 * 16 bytes do not fit */
	cr_assert_eq(vq_start(&vq, &gm, 0), -EINVAL, "table past RAM");
	vq.desc_gpa = DESC_GPA;
	vq.used_gpa = GM_HOLE_START;
	cr_assert_eq(vq_start(&vq, &gm, 0), -EINVAL, "used ring in the hole");
	vq.used_gpa = USED_GPA;
	cr_assert_eq(vq_start(&vq, &gm, 0), 0);
}

Test(virtqueue, descriptor_loop)
{
	start(8, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	expect_broken("a NEXT loop", "loops");
}

Test(virtqueue, self_loop)
{
	start(1024, 0);
	put_desc(DESC_GPA, 9, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 9);
	offer(9);
	expect_broken("a descriptor pointing at itself", "loops");
}

Test(virtqueue, chain_longer_than_queue_through_indirect)
{
	start(4, IND);
	for (uint16_t i = 0; i < 5; i++)
		put_desc(TABLE_GPA, i, BUF_GPA, 8, i < 4 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	put_desc(DESC_GPA, 0, TABLE_GPA, 5 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("an indirect table longer than the queue", "longer than the queue");
}

Test(virtqueue, chain_longer_than_queue_direct_plus_indirect)
{
	start(4, IND);
	for (uint16_t i = 0; i < 3; i++)
		put_desc(TABLE_GPA, i, BUF_GPA, 8, i < 2 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
	put_desc(DESC_GPA, 2, TABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("2 direct + 3 indirect descriptors in a queue of 4", "longer than the queue");
}

Test(virtqueue, indirect_loop)
{
	start(8, IND);
	put_desc(TABLE_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(TABLE_GPA, 1, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 0);
	put_desc(DESC_GPA, 0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("a loop inside an indirect table", "loops");
}

static void one_desc(uint64_t addr, uint32_t len, uint16_t flags)
{
	start(8, IND);
	put_desc(DESC_GPA, 0, addr, len, flags, 0);
	offer(0);
}

Test(virtqueue, buffer_in_mmio_hole)
{
	one_desc(GM_HOLE_START + 0x1000, 16, 0);
	expect_broken("a buffer in the MMIO hole", "not in guest RAM");
}

Test(virtqueue, buffer_above_ram)
{
	one_desc(RAM, 1, VIRTQ_DESC_F_WRITE);
	expect_broken("a buffer just above RAM", "not in guest RAM");
}

Test(virtqueue, buffer_straddling_the_end_of_ram)
{
	one_desc(RAM - 8, 16, 0);
	expect_broken("a buffer running past RAM", "not in guest RAM");
}

Test(virtqueue, buffer_gpa_len_overflow)
{
	one_desc(UINT64_MAX - 8, 64, 0);
	expect_broken("gpa + len wrapping around 2^64", "not in guest RAM");
}

Test(virtqueue, oversized_descriptor)
{
	one_desc(BUF_GPA, UINT32_MAX, VIRTQ_DESC_F_WRITE);
	expect_broken("a 4 GiB descriptor in 4 MiB of RAM", "not in guest RAM");
}

Test(virtqueue, chain_over_the_byte_cap)
{
	vq.max_chain_len = 100;
	start(8, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 60, VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 60, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	expect_broken("120 bytes over a 100-byte cap", "2^32 bytes");
}

Test(virtqueue, bogus_avail_index)
{
	start(8, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	*avail16(1) = 9;
	expect_broken("avail idx 9 ahead in a queue of 8", "available index");
}

Test(virtqueue, avail_index_going_backwards)
{
	start(8, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, 0, 0);
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	*avail16(1) = 0;
	expect_broken("avail idx decremented", "available index");
}

Test(virtqueue, head_out_of_range)
{
	start(8, 0);
	offer(8);
	expect_broken("a head index equal to the queue size", "available ring entry");
}

Test(virtqueue, next_out_of_range)
{
	start(8, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 8);
	offer(0);
	expect_broken("next outside the table", "next is outside the descriptor table");
}

Test(virtqueue, indirect_inside_indirect)
{
	start(8, IND);
	put_desc(TABLE_GPA + 0x100, 0, BUF_GPA, 8, 0, 0);
	put_desc(TABLE_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(TABLE_GPA, 1, TABLE_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(DESC_GPA, 0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("an indirect table inside an indirect table", "inside an indirect table");
}

Test(virtqueue, indirect_bad_lengths)
{
	uint32_t lens[] = {0, 17, 8, 9 * 16};
	for (unsigned i = 0; i < ARRAY_SIZE(lens); i++) {
		vq_reset(&vq);
		avail_idx = 0;
		put_desc(TABLE_GPA, 0, BUF_GPA, 8, 0, 0);
		one_desc(TABLE_GPA, lens[i], VIRTQ_DESC_F_INDIRECT);
		expect_broken("bad indirect table length", "indirect table");
	}
}

Test(virtqueue, indirect_table_outside_ram)
{
	one_desc(RAM - 16, 32, VIRTQ_DESC_F_INDIRECT);
	expect_broken("an indirect table past RAM", "indirect table is not in guest RAM");
}

Test(virtqueue, indirect_with_next)
{
	put_desc(TABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	one_desc(TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT);
	expect_broken("INDIRECT together with NEXT", "both INDIRECT and NEXT");
}

Test(virtqueue, indirect_without_the_feature)
{
	start(8, 0);
	put_desc(TABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	put_desc(DESC_GPA, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("INDIRECT not negotiated", "VIRTIO_F_INDIRECT_DESC");
}

Test(virtqueue, indirect_next_out_of_range)
{
	put_desc(TABLE_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 2);
	one_desc(TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT);
	expect_broken("next outside the indirect table", "outside its table");
}

Test(virtqueue, writable_before_readable)
{
	start(8, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 8, 0, 0);
	offer(0);
	expect_broken("a readable descriptor after a writable one", "after a device-writable");
}

Test(virtqueue, empty_writable_before_readable)
{
	start(8, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(DESC_GPA, 1, BUF_GPA, 8, 0, 0);
	offer(0);
	expect_broken("a readable descriptor after an empty writable one",
	              "after a device-writable");
}

Test(virtqueue, reset_clears_broken)
{
	start(8, 0);
	offer(8);
	expect_broken("bad head", "available ring entry");
	vq_reset(&vq);
	avail_idx = 0;
	*avail16(1) = 0;
	start(8, 0);
	cr_assert_eq(vq_pop(&vq, &chain), 0);
}

static bool page_dirty(const uint64_t *map, uint64_t gpa)
{
	uint64_t p = gpa / GM_PAGE_SIZE; /* RAM below the hole: offset == gpa */
	return map[p / 64] & (1ull << (p % 64));
}

Test(virtqueue, device_writes_are_tracked_for_dirty_logging)
{
	cr_assert_eq(gm_track_dirty(&gm), 0);
	start(16, 0);
	put_desc(DESC_GPA, 0, BUF_GPA, 100, VIRTQ_DESC_F_NEXT, 1);              /* readable */
	put_desc(DESC_GPA, 1, BUF_GPA + 0x3000, 0x1800, VIRTQ_DESC_F_WRITE, 0); /* 2 pages */
	offer(0);
	cr_assert_eq(vq_pop(&vq, &chain), 1);
	cr_assert_eq(vq_push(&vq, 0, 0x1800), 0);

	uint64_t map[RAM / GM_PAGE_SIZE / 64] = {0};
	for (size_t w = 0; w < ARRAY_SIZE(map); w++)
		map[w] = __atomic_exchange_n(&gm.dirty[w], 0, __ATOMIC_RELAXED);
	cr_expect(page_dirty(map, BUF_GPA + 0x3000), "writable buffer page 1");
	cr_expect(page_dirty(map, BUF_GPA + 0x4000), "writable buffer page 2");
	cr_expect(!page_dirty(map, BUF_GPA + 0x5000), "past the buffer");
	cr_expect(!page_dirty(map, BUF_GPA), "a device-readable buffer is not written");
	cr_expect(page_dirty(map, USED_GPA), "the used ring");
	cr_expect(!page_dirty(map, DESC_GPA), "the descriptor table is the driver's");
}
