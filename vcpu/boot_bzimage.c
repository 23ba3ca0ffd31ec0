// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/boot_bzimage.c: loads a bzImage for its 64-bit entry point, following
 * the Linux x86 boot protocol 2.15 (Documentation/arch/x86/boot.rst,
 * "64-bit BOOT PROTOCOL"): the real-mode setup code is skipped, the
 * protected-mode kernel goes to 1 MiB, and the setup header is later copied
 * into the zero page (boot_params.c). kiln needs protocol 2.12+, the first
 * with xloadflags and so with XLF_KERNEL_64 to say the 64-bit entry exists.
 */
#include "vcpu/boot_int.h"

#include <errno.h>
#include <string.h>

#define LOG_MODULE "boot"

#define BZ_MIN_VERSION  0x020c /* 2.12: xloadflags */
#define BZ_HDR_END_2_12 0x268  /* the header through handover_offset */
#define BZ_ENTRY_64     0x200  /* startup_64 is 0x200 bytes into the protected-mode kernel */
#define BZ_LOAD_ADDR    GM_HIMEM_START

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

bool boot_is_bzimage(const uint8_t *buf, size_t len)
{
	return len >= 0x206 && le16(buf + 0x1fe) == BOOT_FLAG_MAGIC &&
	       memcmp(buf + 0x202, "HdrS", 4) == 0;
}

/* the setup header: its end is 0x202 + the byte at 0x201 (boot.rst, 64-bit protocol) */
static int bz_read_header(const char *path, const uint8_t *buf, size_t len,
                          struct boot_setup_header *h, size_t *hdr_end, struct errbuf *e)
{
	size_t end = 0x202 + (size_t)buf[0x201];
	if (end > len)
		return errf(e, ENOEXEC,
		            "kernel %s: truncated bzImage: the setup header ends at 0x%zx, the "
		            "file at 0x%zx",
		            path, end, len);
	if (end > BOOT_HDR_END_MAX)
		return errf(e, ENOEXEC,
		            "kernel %s: setup header ends at 0x%zx, beyond the zero page's 0x%x",
		            path, end, BOOT_HDR_END_MAX);
	if (end < 0x208)
		return errf(e, ENOEXEC, "kernel %s: setup header too short for a version field",
		            path);
	memset(h, 0, sizeof(*h));
	size_t n = end - BOOT_HDR_OFFSET;
	memcpy(h, buf + BOOT_HDR_OFFSET, n < sizeof(*h) ? n : sizeof(*h));

	if (h->version < BZ_MIN_VERSION)
		return errf(e, ENOEXEC,
		            "kernel %s: boot protocol %u.%02u is too old; kiln needs 2.12 or later "
		            "(64-bit entry)",
		            path, h->version >> 8, h->version & 0xff);
	if (end < BZ_HDR_END_2_12)
		return errf(e, ENOEXEC,
		            "kernel %s: setup header ends at 0x%zx, too short for protocol %u.%02u",
		            path, end, h->version >> 8, h->version & 0xff);
	if (!(h->loadflags & BOOT_LOADED_HIGH))
		return errf(e, ENOEXEC,
		            "kernel %s: loads low (a zImage: LOADED_HIGH is not set); kiln boots "
		            "bzImages",
		            path);
	if (!(h->xloadflags & BOOT_XLF_KERNEL_64))
		return errf(e, ENOEXEC,
		            "kernel %s: has no 64-bit entry point (XLF_KERNEL_64 not set in "
		            "xloadflags 0x%x)",
		            path, h->xloadflags);
	*hdr_end = end;
	return 0;
}

/*
 * Where the decompressor will put the kernel (arch/x86/boot/compressed/
 * head_64.S): a relocatable kernel uses its load address rounded up to
 * kernel_alignment, never below pref_address (LOAD_PHYSICAL_ADDR); another
 * one uses pref_address. It needs init_size bytes there.
 */
static int bz_decompress_area(const char *path, const struct boot_setup_header *h, uint64_t *out,
                              struct errbuf *e)
{
	uint64_t at = h->pref_address;
	if (h->relocatable_kernel) {
		uint32_t a = h->kernel_alignment;
		if (a == 0 || (a & (a - 1)))
			return errf(e, ENOEXEC,
			            "kernel %s: kernel_alignment 0x%x is not a power of two", path,
			            a);
		uint64_t aligned = ALIGN_UP(BZ_LOAD_ADDR, a);
		if (aligned > at)
			at = aligned;
	}
	*out = at;
	return 0;
}

int boot_bzimage_load(struct guest_mem *gm, const char *path, const uint8_t *buf, size_t len,
                      struct boot_kernel *k, struct errbuf *e)
{
	struct boot_setup_header h;
	size_t hdr_end = 0;
	int ret = bz_read_header(path, buf, len, &h, &hdr_end, e);
	if (ret)
		return ret;

	/* "setup_sects: ... If this field is 0, the real value is 4." */
	unsigned sects = h.setup_sects ? h.setup_sects : 4;
	size_t setup_size = ((size_t)sects + 1) * 512;
	if (setup_size + BZ_ENTRY_64 >= len)
		return errf(e, ENOEXEC,
		            "kernel %s: truncated bzImage: %u setup sectors leave no "
		            "protected-mode kernel in %zu bytes",
		            path, sects, len);
	size_t pm_size = len - setup_size;
	if ((uint64_t)h.syssize * 16 > pm_size)
		return errf(e, ENOEXEC,
		            "kernel %s: truncated bzImage: the protected-mode kernel is %zu bytes, "
		            "syssize says %llu",
		            path, pm_size, (unsigned long long)h.syssize * 16);

	uint8_t *dst = gm_ptr(gm, BZ_LOAD_ADDR, pm_size);
	if (!dst)
		return errf(e, ENOEXEC,
		            "kernel %s: %zu bytes at 0x%llx do not fit in guest RAM (%llu MiB)",
		            path, pm_size, BZ_LOAD_ADDR, (unsigned long long)(gm->ram_size >> 20));
	uint64_t area = 0;
	ret = bz_decompress_area(path, &h, &area, e);
	if (ret)
		return ret;
	if (!gm_ptr(gm, area, h.init_size))
		return errf(e, ENOEXEC,
		            "kernel %s: needs init_size %u bytes at 0x%llx to decompress, beyond "
		            "guest RAM (%llu MiB)",
		            path, h.init_size, (unsigned long long)area,
		            (unsigned long long)(gm->ram_size >> 20));

	memcpy(dst, buf + setup_size, pm_size);

	memset(k, 0, sizeof(*k));
	k->format = BOOT_FORMAT_BZIMAGE;
	k->mode = BOOT_LINUX64;
	k->entry = BZ_LOAD_ADDR + BZ_ENTRY_64;
	k->start = BZ_LOAD_ADDR;
	k->end = BZ_LOAD_ADDR + pm_size;
	if (area + h.init_size > k->end)
		k->end = area + h.init_size;
	k->initrd_addr_max = h.initrd_addr_max;
	k->cmdline_max =
	        h.cmdline_size < BOOT_CMDLINE_MAX - 1 ? h.cmdline_size : BOOT_CMDLINE_MAX - 1;
	k->setup_hdr = buf + BOOT_HDR_OFFSET;
	k->setup_hdr_len = hdr_end - BOOT_HDR_OFFSET;
	log_info("kernel %s: bzImage protocol %u.%02u, %zu bytes at 0x%llx, entry 0x%llx, "
	         "decompresses at 0x%llx (%u bytes)",
	         path, h.version >> 8, h.version & 0xff, pm_size, BZ_LOAD_ADDR,
	         (unsigned long long)k->entry, (unsigned long long)area, h.init_size);
	return 0;
}
