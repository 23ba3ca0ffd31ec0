/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory: guest RAM and the two address buses (port I/O and MMIO).
 *
 * Guest physical layout on x86_64 (see gm_layout()):
 *   [0, min(ram, GM_HOLE_START))            RAM, slot 0
 *   [GM_HOLE_START, 4 GiB)                   the 32-bit MMIO hole (virtio-mmio
 *                                            devices, IOAPIC, LAPIC, TSS)
 *   [4 GiB, 4 GiB + ram - GM_HOLE_START)     the rest of RAM, slot 1
 * The host keeps all of RAM in one contiguous mapping so that snapshots and
 * migration can treat it as one file; the hole exists only in guest space.
 */
#ifndef KILN_MEMORY_H
#define KILN_MEMORY_H

#include "common/common.h"

#include <pthread.h>

#define GM_PAGE_SIZE   4096ull
#define GM_HOLE_START  0xC0000000ull  /* 3 GiB */
#define GM_HOLE_END    0x100000000ull /* 4 GiB */
#define GM_MAX_REGIONS 2
/* gm_init's smallest RAM: the kernel is loaded at 1 MiB and needs room above it */
#define GM_MIN_RAM_SIZE MIB(2)

/* where guest RAM lives on the host */
enum gm_backing {
	GM_BACKING_ANON,     /* private anonymous mapping (the default) */
	GM_BACKING_MEMFD,    /* memfd_create, shareable with another process */
	GM_BACKING_FILE,     /* a file at `path`, MAP_SHARED (created/truncated) */
	GM_BACKING_SNAPSHOT, /* an existing memory file at `path` of exactly ram_size
	                      * bytes, MAP_PRIVATE: pages come in from the file on first
	                      * touch and the guest's writes never reach it */
};

struct gm_region {
	uint64_t gpa;    /* guest physical start */
	uint64_t size;   /* bytes, a multiple of GM_PAGE_SIZE */
	uint64_t offset; /* offset of this region within the host mapping */
	uint8_t *hva;    /* host address of gpa */
};

struct guest_mem {
	struct gm_region regions[GM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t ram_size; /* total RAM bytes (sum of regions) */
	uint8_t *base;     /* host mapping of all RAM, ram_size bytes */
	int fd;            /* memfd / file descriptor, -1 for anonymous */
	enum gm_backing backing;
	bool log_dirty;
	/* pages kiln itself wrote (device DMA), one bit per 4 KiB page of the
	 * mapping; NULL unless gm_track_dirty() ran. KVM's log only sees vCPU writes */
	uint64_t *dirty; /* vm_create registers the slots with KVM_MEM_LOG_DIRTY_PAGES */
};

/*
 * Maps `ram_size` bytes of guest RAM (a multiple of 4 KiB, at least
 * GM_MIN_RAM_SIZE) and lays it out around the MMIO hole. `path` is used only
 * for GM_BACKING_FILE: the file is created (mode 0600) or truncated, so its
 * old contents are lost, then sized to `ram_size`. ANON and MEMFD sizes are
 * checked against the host's RAM + swap, FILE sizes against the free space of
 * the file's filesystem. Pages are not touched (no prefault). 0 / -errno with
 * a message in `e`; on failure `gm` is left safe for gm_destroy().
 * Called once by the VMM thread before any vCPU exists.
 */
int gm_init(struct guest_mem *gm, uint64_t ram_size, enum gm_backing backing, const char *path,
            struct errbuf *e);

/* Unmaps RAM and closes the backing fd. Safe on a zeroed or failed gm. */
void gm_destroy(struct guest_mem *gm);

/*
 * Splits `ram_size` into guest regions around the hole without mapping
 * anything (pure; used by gm_init and by unit tests). Returns the number of
 * regions written to `out` (1 or 2), or -EINVAL for a size of 0, not a
 * multiple of 4 KiB, or one whose top would overflow the 64-bit space.
 */
int gm_layout(uint64_t ram_size, struct gm_region out[GM_MAX_REGIONS]);

/*
 * Registers every region with KVM_SET_USER_MEMORY_REGION (slot = region
 * index). `log_dirty` sets KVM_MEM_LOG_DIRTY_PAGES. Calling it again updates
 * the flags of the same slots (turning dirty logging on or off).
 * 0 / -errno (the failing region is logged). VMM thread.
 */
int gm_register(const struct guest_mem *gm, int vm_fd, bool log_dirty);

/*
 * THE checked guest-address helper: every guest pointer in kiln comes from
 * here. Returns the host address of [gpa, gpa + len) when the whole range
 * lies inside one RAM region; NULL when it does not (outside RAM, in the
 * hole, straddling a region edge, or gpa + len overflowing). len 0 is
 * treated as 1. Lock-free and callable from any thread.
 */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/*
 * Gives the host back the guest pages wholly inside [hva, hva + len), a
 * range that must lie inside guest RAM's host mapping (else -EFAULT and
 * nothing is touched, so a guest number can never make kiln drop memory
 * outside its RAM); partial pages at either end are left alone. The pages
 * read as zero afterwards in every backing: anonymous ones are dropped
 * (MADV_DONTNEED), shared file and memfd ones punched out (MADV_REMOVE),
 * and a snapshot file's copy-on-write pages replaced by fresh anonymous
 * ones, so the file's old contents do not show through. Returns the
 * number of bytes given back (0 when no whole page is in the range), or
 * -errno from the kernel. Any thread; the guest may touch the pages at
 * the same time (they then fault in again, zeroed).
 */
int64_t gm_discard(const struct guest_mem *gm, void *hva, uint64_t len);

/* copy helpers over gm_ptr() (same range rules, len 0 checks one byte); 0 or -EFAULT */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len);

/* ------------------------------------------------------------ dirty log */

/*
 * Fetches and clears KVM's dirty log of every region (KVM_GET_DIRTY_LOG;
 * the slots must have been registered with log_dirty) into `bitmap`, one
 * bit per 4 KiB page of the host mapping (bit n = the page at byte offset
 * n * 4 KiB of gm->base), gm_dirty_bitmap_words() 64-bit words long. Bits
 * are OR-ed in, so the caller zeroes the bitmap first. The pages kiln's
 * devices wrote (gm_track_dirty) are OR-ed into `bitmap` and, when it is
 * not NULL, into `devices` as well (migration resends those once the
 * devices are quiet: a device marks a buffer when it takes it, before it
 * fills it). 0 / -errno.
 */
int gm_get_dirty_log(const struct guest_mem *gm, int vm_fd, uint64_t *bitmap, uint64_t *devices);

/*
 * Starts tracking the pages kiln's own threads write into guest memory
 * (devices completing requests), so that Diff snapshots and migration see
 * them too; gm_get_dirty_log then also collects and clears these bits.
 * 0 / -ENOMEM. VMM thread; devices may be running (the bitmap is published
 * atomically, and a device marks a page after it takes the buffer).
 */
int gm_track_dirty(struct guest_mem *gm);

/*
 * ORs into `bitmap` (one bit per page of the mapping, as above) the pages
 * of an anonymous mapping no one has touched: neither present nor swapped
 * out (/proc/self/pagemap), so they read as zero. Migration sends none of
 * them: the target's fresh memory is zero too. -ENOTSUP for the other
 * backings (a page not mapped here may hold a file's data), -errno when
 * pagemap cannot be read. Memory served by userfaultfd must not be asked.
 */
int gm_untouched_pages(const struct guest_mem *gm, uint64_t *bitmap);

/* true when the 4 KiB page at `hva` (8-byte aligned) holds only zeroes */
bool gm_page_is_zero(const void *hva);

/* marks [hva, hva + len) written by the host; one branch when not tracking. Any thread. */
static inline void gm_mark_dirty(const struct guest_mem *gm, const void *hva, size_t len)
{
	/* gm_track_dirty may publish the bitmap while devices run */
	uint64_t *dirty = __atomic_load_n(&gm->dirty, __ATOMIC_ACQUIRE);
	if (!dirty || !len)
		return;
	uint64_t first = (uint64_t)((const uint8_t *)hva - gm->base) / GM_PAGE_SIZE;
	uint64_t last = (uint64_t)((const uint8_t *)hva - gm->base + len - 1) / GM_PAGE_SIZE;
	for (uint64_t p = first; p <= last; p++)
		__atomic_fetch_or(&dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}
static inline size_t gm_dirty_bitmap_words(const struct guest_mem *gm)
{
	return (size_t)((gm->ram_size / GM_PAGE_SIZE + 63) / 64);
}

/* ------------------------------------------------------------------ e820 */

#define E820_RAM      1
#define E820_RESERVED 2

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* the start of the EBDA, where the MP table goes; RAM below it is usable */
#define GM_EBDA_START  0x9fc00ull
#define GM_HIMEM_START 0x100000ull /* 1 MiB */

/*
 * The e820 map the guest is given: usable [0, EBDA), reserved
 * [EBDA, 1 MiB), usable [1 MiB, top of low RAM), and usable high RAM above
 * 4 GiB. Entries that would be empty are left out (only possible for RAM
 * smaller than GM_MIN_RAM_SIZE, e.g. a layout built by hand in a test).
 * Returns the number of entries (<= max, at most 4), -ENOSPC when `max` is too
 * small (nothing written), -EINVAL for a gm without regions. Pure.
 */
int gm_e820(const struct guest_mem *gm, struct e820_entry *out, unsigned max);

/* ------------------------------------------------------------------- bus */

/*
 * A device on a bus. `offset` is relative to the range's base; `len` is
 * 1, 2, 4 or 8 and the access lies inside the range. A read's `data` is
 * filled with all ones before the call, so bytes a device does not write
 * read as a floating bus. Callbacks run on vCPU threads, possibly several at
 * once: the device locks its own state. They run under the bus's read lock
 * and must not call bus_register/bus_unregister/bus_access on the same bus.
 */
struct bus_dev_ops {
	void (*read)(void *opaque, uint64_t offset, void *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const void *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_dev_ops *ops;
	void *opaque;
	const char *name;
};

/* ranges kept sorted by base, looked up by binary search */
struct bus {
	const char *name; /* "pio" or "mmio", for log lines */
	struct bus_range *ranges;
	unsigned nr, cap;
	pthread_rwlock_t lock;
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);

/*
 * Adds [base, base + len). A range may end exactly at 2^64 (its last byte
 * UINT64_MAX). -EINVAL for len 0, a NULL ops, or the range running past
 * 2^64; -EEXIST when it overlaps a registered range (touching is fine);
 * -ENOMEM. `name` is not copied. Any thread, not from a bus callback.
 */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
                 void *opaque, const char *name);

/*
 * Removes the range starting exactly at `base`; -ENOENT if none. Returns
 * once no access to it is in flight, so the caller may then free `opaque`.
 * Any thread, not from a bus callback.
 */
int bus_unregister(struct bus *b, uint64_t base);

/*
 * Dispatches one access of `len` bytes at `addr`. Returns 0 when a device
 * handled it; -ENOENT when no device covers `addr` (reads then return all
 * ones in `data`); -EINVAL when the access starts inside a range but runs
 * past its end, or for a `len` other than 1, 2, 4 or 8 (not dispatched;
 * reads of up to 8 bytes return all ones). Nothing is logged: the caller
 * decides (rate-limited) what to log. Called from vCPU threads.
 */
int bus_access(struct bus *b, uint64_t addr, void *data, uint32_t len, bool is_write);

#endif
