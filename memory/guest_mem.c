// SPDX-License-Identifier: Apache-2.0
/*
 * memory/guest_mem.c: guest RAM -- one host mapping split into at most two
 * guest regions around the 32-bit MMIO hole, the checked gpa -> hva helper,
 * KVM slot registration and the e820 map.
 */
#define LOG_MODULE "memory"
#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

int gm_layout(uint64_t ram_size, struct gm_region out[GM_MAX_REGIONS])
{
	if (ram_size == 0 || ram_size % GM_PAGE_SIZE)
		return -EINVAL;

	if (ram_size <= GM_HOLE_START) {
		out[0] = (struct gm_region){.gpa = 0, .size = ram_size, .offset = 0};
		return 1;
	}

	uint64_t high = ram_size - GM_HOLE_START;
	/* the high region is [4 GiB, 4 GiB + high); its end must fit in 64 bits */
	if (high > UINT64_MAX - GM_HOLE_END)
		return -EINVAL;
	out[0] = (struct gm_region){.gpa = 0, .size = GM_HOLE_START, .offset = 0};
	out[1] = (struct gm_region){.gpa = GM_HOLE_END, .size = high, .offset = GM_HOLE_START};
	return 2;
}

/* Bytes the host can give anonymous or shmem memory: RAM + swap. */
static uint64_t host_memory_bytes(void)
{
	struct sysinfo si;
	if (sysinfo(&si) < 0)
		return UINT64_MAX; /* unknown: let mmap decide */
	uint64_t unit = si.mem_unit ? si.mem_unit : 1;
	return ((uint64_t)si.totalram + (uint64_t)si.totalswap) * unit;
}

static int check_host_memory(uint64_t ram_size, struct errbuf *e)
{
	uint64_t host = host_memory_bytes();
	if (ram_size > host)
		return errf(e, ENOMEM, "mem_size_mib %llu exceeds host memory (%llu MiB)",
		            (unsigned long long)(ram_size >> 20), (unsigned long long)(host >> 20));
	return 0;
}

/* Opens the backing fd for MEMFD / FILE and sizes it; -1 in *fd for ANON. */
static int open_backing(uint64_t ram_size, enum gm_backing backing, const char *path, int *fd,
                        struct errbuf *e)
{
	*fd = -1;
	switch (backing) {
	case GM_BACKING_ANON:
		return check_host_memory(ram_size, e);
	case GM_BACKING_MEMFD: {
		int ret = check_host_memory(ram_size, e);
		if (ret < 0)
			return ret;
		*fd = memfd_create("kiln-guest-ram", MFD_CLOEXEC);
		if (*fd < 0)
			return errf(e, errno, "memfd_create for guest memory failed: %s",
			            strerror(errno));
		if (ftruncate(*fd, (off_t)ram_size) < 0)
			return errf(e, errno, "cannot size guest memory memfd to %llu bytes: %s",
			            (unsigned long long)ram_size, strerror(errno));
		return 0;
	}
	case GM_BACKING_FILE: {
		if (!path || !*path)
			return errf(e, EINVAL, "file-backed guest memory needs a path");
		*fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (*fd < 0)
			return errf(e, errno, "cannot open guest memory file %s: %s", path,
			            strerror(errno));
		struct statvfs vfs;
		if (fstatvfs(*fd, &vfs) == 0) {
			uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
			if (ram_size > avail)
				return errf(e, ENOSPC,
				            "mem_size_mib %llu exceeds the free space for %s (%llu "
				            "MiB)",
				            (unsigned long long)(ram_size >> 20), path,
				            (unsigned long long)(avail >> 20));
		}
		if (ftruncate(*fd, (off_t)ram_size) < 0)
			return errf(e, errno, "cannot size guest memory file %s to %llu bytes: %s",
			            path, (unsigned long long)ram_size, strerror(errno));
		return 0;
	}
	case GM_BACKING_SNAPSHOT: {
		struct stat st;
		if (!path || !*path)
			return errf(e, EINVAL, "snapshot-backed guest memory needs a path");
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0)
			return errf(e, errno, "cannot open the memory file %s: %s", path,
			            strerror(errno));
		if (fstat(*fd, &st) < 0)
			return errf(e, errno, "cannot stat the memory file %s: %s", path,
			            strerror(errno));
		if ((uint64_t)st.st_size != ram_size)
			return errf(
			        e, EINVAL,
			        "the memory file %s is %llu bytes; the snapshot's guest has %llu "
			        "bytes of RAM",
			        path, (unsigned long long)st.st_size, (unsigned long long)ram_size);
		return 0;
	}
	}
	return errf(e, EINVAL, "unknown guest memory backing %d", (int)backing);
}

int gm_init(struct guest_mem *gm, uint64_t ram_size, enum gm_backing backing, const char *path,
            struct errbuf *e)
{
	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;

	if (ram_size == 0)
		return errf(e, EINVAL, "guest memory size must be > 0");
	if (ram_size % GM_PAGE_SIZE)
		return errf(e, EINVAL, "guest memory size %llu is not a multiple of 4 KiB",
		            (unsigned long long)ram_size);
	if (ram_size < GM_MIN_RAM_SIZE)
		return errf(e, EINVAL,
		            "guest memory size %llu KiB is below the minimum of %llu KiB (the "
		            "kernel is loaded at 1 MiB)",
		            (unsigned long long)(ram_size >> 10),
		            (unsigned long long)(GM_MIN_RAM_SIZE >> 10));

	struct gm_region regions[GM_MAX_REGIONS];
	int nr = gm_layout(ram_size, regions);
	if (nr < 0)
		return errf(e, EINVAL,
		            "guest memory size %llu bytes does not fit the address space",
		            (unsigned long long)ram_size);

	int fd, ret = open_backing(ram_size, backing, path, &fd, e);
	if (ret < 0)
		goto err_fd;

	/* never MAP_POPULATE or touch: the guest faults pages in as it uses them */
	int flags = fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE : MAP_SHARED;
	if (backing == GM_BACKING_SNAPSHOT)
		flags = MAP_PRIVATE | MAP_NORESERVE; /* copy-on-write over the file */
	void *base = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (base == MAP_FAILED) {
		ret = errf(e, errno, "cannot map %llu MiB of guest memory: %s",
		           (unsigned long long)(ram_size >> 20), strerror(errno));
		goto err_fd;
	}

	gm->base = base;
	gm->fd = fd;
	gm->backing = backing;
	gm->ram_size = ram_size;
	gm->nr_regions = (unsigned)nr;
	for (int i = 0; i < nr; i++) {
		gm->regions[i] = regions[i];
		gm->regions[i].hva = gm->base + regions[i].offset;
	}
	return 0;

err_fd:
	if (fd >= 0)
		close(fd);
	return ret;
}

void gm_destroy(struct guest_mem *gm)
{
	free(gm->dirty);
	/* a zeroed gm has fd 0 but no mapping: only a mapped gm owns its fd */
	if (gm->base) {
		munmap(gm->base, gm->ram_size);
		if (gm->fd >= 0)
			close(gm->fd);
	}
	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
}

int gm_register(const struct guest_mem *gm, int vm_fd, bool log_dirty)
{
	if (vm_fd < 0 || gm->nr_regions == 0 || gm->nr_regions > GM_MAX_REGIONS)
		return -EINVAL;

	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];
		struct kvm_userspace_memory_region kr = {
		        .slot = i,
		        .flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		        .guest_phys_addr = r->gpa,
		        .memory_size = r->size,
		        .userspace_addr = (uint64_t)(uintptr_t)r->hva,
		};
		if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0) {
			int err = errno;
			log_err("KVM_SET_USER_MEMORY_REGION slot %u [0x%llx, 0x%llx) failed: %s", i,
			        (unsigned long long)r->gpa, (unsigned long long)(r->gpa + r->size),
			        strerror(err));
			return -err;
		}
	}
	return 0;
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];
		/*
		 * No gpa + len anywhere, so nothing can wrap. A gpa below the
		 * region wraps `off` to at least 2^64 - r->gpa, which is >= size
		 * because every region ends below 2^64 (gm_layout checks it).
		 */
		uint64_t off = gpa - r->gpa;
		if (off < r->size && len <= r->size - off)
			return r->hva + off;
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int64_t gm_discard(const struct guest_mem *gm, void *hva, uint64_t len)
{
	uintptr_t lo = (uintptr_t)gm->base, p = (uintptr_t)hva;

	/* inside the mapping, written without p + len so nothing can wrap */
	if (!gm->base || p < lo || p - lo > gm->ram_size || len > gm->ram_size - (p - lo))
		return -EFAULT;
	uint64_t first = (p - lo + GM_PAGE_SIZE - 1) / GM_PAGE_SIZE;
	uint64_t end = (p - lo + len) / GM_PAGE_SIZE;
	if (end <= first)
		return 0;
	uint8_t *start = gm->base + first * GM_PAGE_SIZE;
	size_t bytes = (size_t)((end - first) * GM_PAGE_SIZE);
	int r;
	switch (gm->backing) {
	case GM_BACKING_MEMFD:
	case GM_BACKING_FILE:
		/* a shared mapping keeps its pages in the file: punch them out */
		r = madvise(start, bytes, MADV_REMOVE);
		break;
	case GM_BACKING_SNAPSHOT:
		/* MADV_DONTNEED would bring the file's page back: map zeroes over it */
		r = mmap(start, bytes, PROT_READ | PROT_WRITE,
		         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
		         0) == MAP_FAILED
		            ? -1
		            : 0;
		break;
	default:
		r = madvise(start, bytes, MADV_DONTNEED);
		break;
	}
	return r < 0 ? -errno : (int64_t)bytes;
}

static void e820_add(struct e820_entry *out, unsigned *n, uint64_t start, uint64_t end,
                     uint32_t type)
{
	if (end <= start)
		return;
	out[*n] = (struct e820_entry){.addr = start, .size = end - start, .type = type};
	(*n)++;
}

int gm_e820(const struct guest_mem *gm, struct e820_entry *out, unsigned max)
{
	if (gm->nr_regions == 0 || gm->nr_regions > GM_MAX_REGIONS)
		return -EINVAL;

	/* built in a local table first so that -ENOSPC writes nothing */
	struct e820_entry map[4];
	unsigned n = 0;
	uint64_t low_end = gm->regions[0].gpa + gm->regions[0].size;
	uint64_t usable_end = low_end < GM_EBDA_START ? low_end : GM_EBDA_START;

	e820_add(map, &n, 0, usable_end, E820_RAM);
	/* the EBDA and the legacy BIOS/VGA area, whether or not RAM backs it */
	e820_add(map, &n, GM_EBDA_START, GM_HIMEM_START, E820_RESERVED);
	e820_add(map, &n, GM_HIMEM_START, low_end, E820_RAM);
	if (gm->nr_regions == 2)
		e820_add(map, &n, gm->regions[1].gpa, gm->regions[1].gpa + gm->regions[1].size,
		         E820_RAM);

	if (n > max)
		return -ENOSPC;
	memcpy(out, map, n * sizeof(map[0]));
	return (int)n;
}
