// SPDX-License-Identifier: Apache-2.0
/*
 * blk.mode=bench for the blk guest: for blk.ms milliseconds each,
 * sequential and random reads and writes of blk.bs bytes with blk.depth
 * requests in flight over the first `sectors` of the disk, timed by the
 * TSC. One line per pattern:
 *   blk bench: randread bs 4096 depth 32: 123.4 MB/s 30126 IOPS
 * blk.bench=seqread,seqwrite,randread,randwrite chooses (default all;
 * writes are skipped on a read-only device).
 */
#include "rt/virtio_drv.h"

#define MAX_DEPTH  256
#define TIMEOUT_US 10000000ull

struct pattern {
	const char *name;
	uint32_t type;
	bool random;
};

static const struct pattern patterns[] = {
        {"seqread", VIRTIO_BLK_T_IN, false},
        {"seqwrite", VIRTIO_BLK_T_OUT, false},
        {"randread", VIRTIO_BLK_T_IN, true},
        {"randwrite", VIRTIO_BLK_T_OUT, true},
};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* whether `name` is in the comma-separated blk.bench list (absent: all) */
static bool wanted(const char *name)
{
	size_t len, n = strlen(name);
	const char *v = krt_param("blk.bench", &len);
	if (!v)
		return true;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && v[j] != ',')
			j++;
		if (j - i == n && strncmp(v + i, name, n) == 0)
			return true;
		i = j + 1;
	}
	return false;
}

struct run {
	uint32_t bs, depth;
	uint64_t blocks; /* of bs in the region */
	uint64_t ops, ticks;
};

/* one pattern for `ms`; 0 or the failing status / -errno */
static int run_pattern(struct vblk *b, const struct pattern *p, struct run *r, uint8_t *bufs,
                       uint64_t ms)
{
	uint64_t hz = krt_tsc_hz(), rnd = 0x9e3779b97f4a7c15ull, next = 0;
	uint64_t t0 = krt_rdtsc(), stop = t0 + ms * (hz / 1000), deadline;
	uint32_t spb = r->bs / VIRTIO_BLK_SECTOR;
	uint16_t free_slots[MAX_DEPTH];
	unsigned in_flight = 0;
	bool ending = false;

	for (unsigned i = 0; i < r->depth; i++)
		free_slots[i] = (uint16_t)(r->depth - 1 - i);
	r->ops = 0;
	for (;;) {
		while (!ending && in_flight < r->depth) {
			uint64_t blk = p->random ? xorshift(&rnd) % r->blocks : next++ % r->blocks;
			uint16_t slot = free_slots[r->depth - 1 - in_flight];
			uint8_t *buf = bufs + (size_t)slot * r->bs;
			if (vblk_submit(b, p->type, blk * spb, buf, r->bs, false, slot) < 0)
				break;
			in_flight++;
		}
		vblk_kick(b);
		uint64_t tag;
		uint8_t status;
		int ret;
		deadline = krt_rdtsc() + TIMEOUT_US * (hz / 1000000);
		while ((ret = vblk_complete(b, &tag, &status)) == 0 && krt_rdtsc() < deadline)
			krt_pause();
		if (ret <= 0)
			return ret < 0 ? ret : -KRT_ETIMEDOUT;
		do { /* everything that is done, then one batch of new requests */
			if (status != VIRTIO_BLK_S_OK)
				return status;
			in_flight--;
			free_slots[r->depth - 1 - in_flight] = (uint16_t)tag;
			r->ops++;
		} while ((ret = vblk_complete(b, &tag, &status)) == 1);
		if (ret < 0)
			return ret;
		if (!ending && krt_rdtsc() >= stop)
			ending = true; /* stop submitting, drain what is in flight */
		if (ending && in_flight == 0)
			break;
	}
	r->ticks = krt_rdtsc() - t0;
	return 0;
}

int blk_bench(struct vblk *b, uint64_t sectors);

int blk_bench(struct vblk *b, uint64_t sectors)
{
	struct run r = {
	        .bs = (uint32_t)krt_param_u64("blk.bs", 4096),
	        .depth = (uint32_t)krt_param_u64("blk.depth", 32),
	};
	uint64_t ms = krt_param_u64("blk.ms", 1000), hz = krt_tsc_hz();

	if (r.depth > b->vq.size)
		r.depth = b->vq.size;
	if (sectors > b->capacity)
		sectors = b->capacity;
	r.blocks = sectors / (r.bs / VIRTIO_BLK_SECTOR ? r.bs / VIRTIO_BLK_SECTOR : 1);
	if (r.bs == 0 || r.bs % VIRTIO_BLK_SECTOR || r.bs > KRT_MIB(1) || r.depth == 0 ||
	    r.depth > MAX_DEPTH || r.blocks == 0) {
		krt_printf("blk bench: FAILED: bad parameters (bs %u depth %u sectors %lu)\n", r.bs,
		           r.depth, sectors);
		return 1;
	}
	uint8_t *bufs = krt_alloc_pages(
	        ((size_t)r.bs * r.depth + KRT_PAGE_SIZE - 1) / KRT_PAGE_SIZE, KRT_PAGE_SIZE);
	if (!bufs) {
		krt_printf("blk bench: FAILED: no memory\n");
		return 1;
	}
	for (size_t i = 0; i < (size_t)r.bs * r.depth; i++)
		bufs[i] = (uint8_t)(i * 131 + 7);
	for (size_t i = 0; i < KRT_ARRAY_SIZE(patterns); i++) {
		const struct pattern *p = &patterns[i];
		if (!wanted(p->name) ||
		    (p->type == VIRTIO_BLK_T_OUT && vblk_has(b, VIRTIO_BLK_F_RO)))
			continue;
		uint64_t kicks = b->vq.kicks, notifies = b->vq.notifies;
		int ret = run_pattern(b, p, &r, bufs, ms);
		if (ret) {
			krt_printf("blk bench: FAILED: %s: %d\n", p->name, ret);
			return 1;
		}
		unsigned __int128 bytes = (unsigned __int128)r.ops * r.bs;
		uint64_t kbps = (uint64_t)(bytes * hz / r.ticks / 100000); /* tenths of MB/s */
		uint64_t iops = (uint64_t)((unsigned __int128)r.ops * hz / r.ticks);
		krt_printf("blk bench: %s bs %u depth %u: %lu.%lu MB/s %lu IOPS (%lu ops, %lu ms, "
		           "%lu kicks, %lu notifies)\n",
		           p->name, r.bs, r.depth, kbps / 10, kbps % 10, iops, r.ops,
		           r.ticks * 1000 / hz, b->vq.kicks - kicks, b->vq.notifies - notifies);
	}
	krt_printf("blk bench: done\n");
	return 0;
}
