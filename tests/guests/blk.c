// SPDX-License-Identifier: Apache-2.0
/*
 * blk: drives the first virtio-blk device (blk.nth=N for another).
 *
 *   blk.mode=verify (default): writes a pattern over blk.sectors sectors
 *     (default min(capacity, 2048)) from blk.start, FLUSHes, reads back and
 *     compares: "blk: wrote N sectors, verified ok" or the first mismatch.
 *     The 8-byte little-endian word i (0..63) of sector s holds
 *     mix64(seed * 0x9e3779b97f4a7c15 + s * 64 + i), blk.seed (default 1),
 *     with mix64 the splitmix64 finaliser (see README.md).
 *     blk.zero=1 then WRITE_ZEROES the first half (reads back zeroes) and
 *     DISCARDs the second half, where the device offers them.
 *   blk.mode=check: only reads and compares (the host wrote the pattern):
 *     "blk: read N sectors, verified ok".
 *   blk.mode=ro: a read works, a write fails with VIRTIO_BLK_S_IOERR.
 *   blk.mode=bench: sequential and random reads and writes of blk.bs bytes
 *     (default 4096), blk.depth in flight (default 32), blk.ms each
 *     (default 1000), over blk.sectors (default all); prints MB/s and IOPS.
 *     blk.bench=seqread,randwrite,... picks some (writes skipped when RO).
 * Requests carry blk.req sectors (default 128) with blk.depth in flight.
 * GET_ID is always asked: "blk: id <id>".
 */
#include "rt/virtio_drv.h"

#define TIMEOUT_US 10000000ull
#define MAX_DEPTH  256

static struct vblk b;
static uint64_t seed;

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t pattern_word(uint64_t sector, unsigned i)
{
	return mix64(seed * 0x9e3779b97f4a7c15ull + sector * 64 + i);
}

/* what a request does to its buffer before submission (OUT) or after completion (IN) */
enum io_kind { IO_FILL, IO_CHECK, IO_ZERO_CHECK, IO_NONE };

struct io_job {
	uint32_t type;
	enum io_kind kind;
	uint64_t first, count; /* sectors */
	uint32_t req_sectors, depth;
	uint64_t bad_sector; /* set when a check fails */
	unsigned bad_word;
	uint64_t got, want;
};

static int process(struct io_job *j, uint64_t *buf, uint64_t sector, uint32_t n)
{
	for (uint32_t s = 0; s < n; s++) {
		uint64_t *w = buf + (size_t)s * 64;
		for (unsigned i = 0; i < 64; i++) {
			uint64_t want = j->kind == IO_ZERO_CHECK ? 0 : pattern_word(sector + s, i);
			if (j->kind == IO_FILL) {
				w[i] = want;
			} else if (w[i] != want) {
				j->bad_sector = sector + s;
				j->bad_word = i;
				j->got = w[i];
				j->want = want;
				return -KRT_EINVAL;
			}
		}
	}
	return 0;
}

/* one pass of j->type requests over [first, first + count); 0, -errno, or a status > 0 */
static int run_job(struct io_job *j, uint8_t *bufs)
{
	uint64_t next = j->first, end = j->first + j->count, sectors[MAX_DEPTH];
	uint16_t free_slots[MAX_DEPTH], nr_free = 0;

	for (uint32_t i = 0; i < j->depth; i++)
		free_slots[nr_free++] = (uint16_t)i;
	while (next < end || nr_free < j->depth) {
		while (next < end && nr_free > 0) {
			uint16_t slot = free_slots[--nr_free];
			uint32_t n = end - next < j->req_sectors ? (uint32_t)(end - next)
			                                         : j->req_sectors;
			uint8_t *buf = bufs + (size_t)slot * j->req_sectors * VIRTIO_BLK_SECTOR;
			if (j->kind == IO_FILL)
				process(j, (uint64_t *)buf, next, n);
			int ret = vblk_submit(&b, j->type, next, buf, n * VIRTIO_BLK_SECTOR, false,
			                      slot | (uint64_t)n << 16);
			if (ret < 0) {
				free_slots[nr_free++] = slot;
				break; /* ring full: complete some first */
			}
			sectors[slot] = next;
			next += n;
		}
		vblk_kick(&b);
		uint64_t tag;
		uint8_t status;
		int ret;
		uint64_t t0 = krt_rdtsc(), limit = TIMEOUT_US * (krt_tsc_hz() / 1000000);
		while ((ret = vblk_complete(&b, &tag, &status)) == 0 && krt_rdtsc() - t0 < limit)
			krt_pause();
		if (ret <= 0)
			return ret < 0 ? ret : -KRT_ETIMEDOUT;
		if (status != VIRTIO_BLK_S_OK)
			return status;
		uint16_t slot = (uint16_t)tag;
		uint8_t *buf = bufs + (size_t)slot * j->req_sectors * VIRTIO_BLK_SECTOR;
		if ((j->kind == IO_CHECK || j->kind == IO_ZERO_CHECK) &&
		    process(j, (uint64_t *)buf, sectors[slot], (uint32_t)(tag >> 16)) < 0)
			return -KRT_EINVAL;
		free_slots[nr_free++] = slot;
	}
	return 0;
}

static const char *status_name(int st)
{
	return st == VIRTIO_BLK_S_IOERR ? "IOERR" : st == VIRTIO_BLK_S_UNSUPP ? "UNSUPP" : "?";
}

/* prints the outcome of a job that failed; returns 1 for main() */
static int report(const char *what, struct io_job *j, int ret)
{
	if (ret == -KRT_EINVAL && j->kind != IO_FILL)
		krt_printf("blk: MISMATCH after %s at sector %lu word %u: got 0x%lx want 0x%lx\n",
		           what, j->bad_sector, j->bad_word, j->got, j->want);
	else if (ret > 0)
		krt_printf("blk: FAILED: %s: status %d (%s)\n", what, ret, status_name(ret));
	else
		krt_printf("blk: FAILED: %s: error %d\n", what, ret);
	return 1;
}

/* one run_job() of `type` and `kind`; 0, or 1 after reporting the failure */
static int pass(struct io_job *j, uint8_t *bufs, uint32_t type, enum io_kind kind, const char *what)
{
	j->type = type;
	j->kind = kind;
	int ret = run_job(j, bufs);
	return ret ? report(what, j, ret) : 0;
}

static void print_id(void)
{
	char id[VIRTIO_BLK_ID_LEN + 1] = {0};
	int st = vblk_do(&b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_LEN, false, TIMEOUT_US);
	if (st == VIRTIO_BLK_S_OK)
		krt_printf("blk: id %s\n", id); /* NUL-padded, not terminated when 20 long */
	else
		krt_printf("blk: id unavailable (%d)\n", st);
}

/* WRITE_ZEROES over the first half (read back), DISCARD over the second */
static int zero_and_discard(struct io_job *j, uint8_t *bufs)
{
	uint64_t half = j->count / 2, rest = j->count - half;
	if (!vblk_has(&b, VIRTIO_BLK_F_WRITE_ZEROES)) {
		krt_printf("blk: write-zeroes not offered\n");
	} else if (half) {
		int st = vblk_do(&b, VIRTIO_BLK_T_WRITE_ZEROES, j->first, NULL, (uint32_t)half,
		                 false, TIMEOUT_US);
		if (st != VIRTIO_BLK_S_OK)
			return report("write-zeroes", j, st);
		struct io_job z = *j;
		z.count = half;
		if (pass(&z, bufs, VIRTIO_BLK_T_IN, IO_ZERO_CHECK, "write-zeroes"))
			return 1;
		krt_printf("blk: write-zeroes %lu sectors, read back zeroes ok\n", half);
	}
	if (!vblk_has(&b, VIRTIO_BLK_F_DISCARD)) {
		krt_printf("blk: discard not offered\n");
	} else if (rest) {
		int st = vblk_do(&b, VIRTIO_BLK_T_DISCARD, j->first + half, NULL, (uint32_t)rest,
		                 false, TIMEOUT_US);
		if (st != VIRTIO_BLK_S_OK)
			return report("discard", j, st);
		krt_printf("blk: discard %lu sectors ok\n", rest);
	}
	return 0;
}

/* blk.mode=check: reads and compares only (the host wrote the pattern) */
static int check_only(struct io_job *j, uint8_t *bufs)
{
	if (pass(j, bufs, VIRTIO_BLK_T_IN, IO_CHECK, "read"))
		return 1;
	krt_printf("blk: read %lu sectors, verified ok\n", j->count);
	return 0;
}

static int verify(struct io_job *j, uint8_t *bufs)
{
	if (pass(j, bufs, VIRTIO_BLK_T_OUT, IO_FILL, "write"))
		return 1;
	if (vblk_has(&b, VIRTIO_BLK_F_FLUSH)) {
		int st = vblk_do(&b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, TIMEOUT_US);
		if (st != VIRTIO_BLK_S_OK)
			return report("flush", j, st);
	} else {
		krt_printf("blk: flush not offered\n");
	}
	memset(bufs, 0xa5, (size_t)j->depth * j->req_sectors * VIRTIO_BLK_SECTOR);
	if (pass(j, bufs, VIRTIO_BLK_T_IN, IO_CHECK, "read"))
		return 1;
	krt_printf("blk: wrote %lu sectors, verified ok\n", j->count);
	if (krt_param_u64("blk.zero", 0))
		return zero_and_discard(j, bufs);
	return 0;
}

static int read_only(uint8_t *buf)
{
	int st = vblk_do(&b, VIRTIO_BLK_T_IN, 0, buf, VIRTIO_BLK_SECTOR, false, TIMEOUT_US);
	if (st != VIRTIO_BLK_S_OK) {
		krt_printf("blk: FAILED: read-only drive: read status %d\n", st);
		return 1;
	}
	st = vblk_do(&b, VIRTIO_BLK_T_OUT, 0, buf, VIRTIO_BLK_SECTOR, false, TIMEOUT_US);
	if (st != VIRTIO_BLK_S_IOERR) {
		krt_printf("blk: FAILED: read-only drive: write status %d, want IOERR\n", st);
		return 1;
	}
	krt_printf("blk: read-only: write refused with IOERR, ok\n");
	return 0;
}

int blk_bench(struct vblk *dev, uint64_t sectors);

int main(void)
{
	uint64_t nth = krt_param_u64("blk.nth", 0);
	int ret = vblk_open(&b, (unsigned)nth);
	if (ret < 0) {
		krt_printf("blk: FAILED: no block device %lu (%d)\n", nth, ret);
		virtio_print_devices();
		return 1;
	}
	bool ro = vblk_has(&b, VIRTIO_BLK_F_RO);
	krt_printf("blk: capacity %lu sectors, block size %u, queue size %u, features 0x%lx%s\n",
	           b.capacity, b.blk_size, b.vq.size, b.dev.features, ro ? ", read-only" : "");
	print_id();

	struct io_job j = {0};
	seed = krt_param_u64("blk.seed", 1);
	j.first = krt_param_u64("blk.start", 0);
	uint64_t dflt = b.capacity < 2048 ? b.capacity : 2048;
	j.count = krt_param_u64("blk.sectors", dflt);
	j.req_sectors = (uint32_t)krt_param_u64("blk.req", 128);
	j.depth = (uint32_t)krt_param_u64("blk.depth", 16);
	if (j.depth > b.vq.size)
		j.depth = b.vq.size;
	if (j.first > b.capacity || j.count > b.capacity - j.first || j.count == 0 ||
	    j.req_sectors == 0 || j.req_sectors > 2048 || j.depth == 0 || j.depth > MAX_DEPTH) {
		krt_printf("blk: FAILED: bad parameters (start %lu sectors %lu req %u depth %u, "
		           "capacity %lu)\n",
		           j.first, j.count, j.req_sectors, j.depth, b.capacity);
		return 1;
	}
	size_t bytes = (size_t)j.depth * j.req_sectors * VIRTIO_BLK_SECTOR;
	uint8_t *bufs = krt_alloc_pages((bytes + KRT_PAGE_SIZE - 1) / KRT_PAGE_SIZE, KRT_PAGE_SIZE);
	if (!bufs) {
		krt_printf("blk: FAILED: no memory for %lu bytes of buffers\n", bytes);
		return 1;
	}
	if (krt_param_is("blk.mode", "ro"))
		return read_only(bufs);
	if (krt_param_is("blk.mode", "check"))
		return check_only(&j, bufs);
	if (krt_param_is("blk.mode", "bench"))
		return blk_bench(&b, krt_param_u64("blk.sectors", b.capacity));
	return verify(&j, bufs);
}
