// SPDX-License-Identifier: Apache-2.0
/*
 * memory/dirty.c: KVM's dirty page log, per region, gathered into one
 * bitmap over the host mapping (diff snapshots, live migration).
 */
#include "memory.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <unistd.h>

int gm_get_dirty_log(const struct guest_mem *gm, int vm_fd, uint64_t *bitmap, uint64_t *devices)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];
		uint64_t pages = r->size / GM_PAGE_SIZE;
		/* api.rst KVM_GET_DIRTY_LOG: one bit per page of the slot, in longs */
		size_t words = (size_t)((pages + 63) / 64);
		uint64_t *slot_map = calloc(words ? words : 1, sizeof(uint64_t));
		if (!slot_map)
			return -ENOMEM;
		struct kvm_dirty_log log = {.slot = i, .dirty_bitmap = slot_map};
		if (ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			int err = errno;
			free(slot_map);
			return -err;
		}
		/* the region's pages start at bit offset / 4 KiB of the host bitmap */
		uint64_t first = r->offset / GM_PAGE_SIZE;
		for (uint64_t p = 0; p < pages; p++)
			if (slot_map[p / 64] & (1ull << (p % 64)))
				bitmap[(first + p) / 64] |= 1ull << ((first + p) % 64);
		free(slot_map);
	}
	/* and what kiln's devices wrote since the last call */
	if (gm->dirty)
		for (size_t w = 0; w < gm_dirty_bitmap_words(gm); w++) {
			uint64_t bits = __atomic_exchange_n(&gm->dirty[w], 0, __ATOMIC_RELAXED);
			bitmap[w] |= bits;
			if (devices)
				devices[w] |= bits;
		}
	return 0;
}

int gm_track_dirty(struct guest_mem *gm)
{
	if (gm->dirty)
		return 0;
	uint64_t *d = calloc(gm_dirty_bitmap_words(gm), sizeof(uint64_t));
	if (!d)
		return -ENOMEM;
	__atomic_store_n(&gm->dirty, d, __ATOMIC_RELEASE);
	return 0;
}

bool gm_page_is_zero(const void *hva)
{
	const uint64_t *q = hva;
	for (size_t i = 0; i < GM_PAGE_SIZE / 8; i++)
		if (q[i])
			return false;
	return true;
}

/* proc(5) /proc/pid/pagemap: one u64 per page, bit 63 present, bit 62 swapped */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_CHUNK   65536 /* entries read at once */

int gm_untouched_pages(const struct guest_mem *gm, uint64_t *bitmap)
{
	if (gm->backing != GM_BACKING_ANON)
		return -ENOTSUP;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint64_t *pm = malloc(PM_CHUNK * sizeof(uint64_t));
	uint64_t total = gm->ram_size / GM_PAGE_SIZE, first = (uintptr_t)gm->base / GM_PAGE_SIZE;
	int ret = pm ? 0 : -ENOMEM;
	for (uint64_t p = 0; !ret && p < total; p += PM_CHUNK) {
		size_t n = total - p < PM_CHUNK ? (size_t)(total - p) : PM_CHUNK;
		ssize_t r = pread(fd, pm, n * sizeof(uint64_t),
		                  (off_t)((first + p) * sizeof(uint64_t)));
		if (r != (ssize_t)(n * sizeof(uint64_t))) {
			ret = r < 0 ? -errno : -EIO;
			break;
		}
		for (size_t i = 0; i < n; i++)
			if (!(pm[i] & (PM_PRESENT | PM_SWAPPED)))
				bitmap[(p + i) / 64] |= 1ull << ((p + i) % 64);
	}
	free(pm);
	close(fd);
	return ret;
}
