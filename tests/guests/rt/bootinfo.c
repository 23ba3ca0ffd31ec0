// SPDX-License-Identifier: Apache-2.0
/*
 * krt boot information: the command line, the memory map and the ACPI RSDP
 * from either boot path, copied into the image at start (the VMM's boot
 * area is ordinary RAM the guest may reuse), the mapping of RAM above
 * 4 GiB without 1 GiB pages, and a page allocator. The parameter parsing
 * is in text.c.
 */
#include "internal.h"

#define CMDLINE_MAX 4096

/* Xen PVH ABI, struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h) */
#define HVM_START_MAGIC    0x336ec578
#define HVM_OFF_MAGIC      0
#define HVM_OFF_VERSION    4
#define HVM_OFF_NR_MODULES 12
#define HVM_OFF_MODLIST    16
#define HVM_OFF_CMDLINE    24
#define HVM_OFF_RSDP       32
#define HVM_OFF_MEMMAP     40 /* version >= 1 */
#define HVM_OFF_MEMMAP_NR  48
#define HVM_MEMMAP_ENTRY   24 /* u64 addr, u64 size, u32 type, u32 reserved */
#define HVM_MODLIST_ENTRY  32 /* u64 paddr, u64 size, u64 cmdline_paddr, u64 reserved */

/* Linux struct boot_params (Documentation/arch/x86/zero-page.rst, boot.rst) */
#define BP_OFF_ACPI_RSDP     0x070
#define BP_OFF_EXT_CMD_LINE  0x0c8
#define BP_OFF_E820_ENTRIES  0x1e8
#define BP_OFF_RAMDISK_IMAGE 0x218
#define BP_OFF_RAMDISK_SIZE  0x21c
#define BP_OFF_CMD_LINE_PTR  0x228
#define BP_OFF_E820_TABLE    0x2d0
#define BP_E820_ENTRY        20 /* u64 addr, u64 size, u32 type (packed) */
#define BP_E820_MAX          128

static enum krt_boot_path boot_path;
static char cmdline[CMDLINE_MAX];
static struct krt_mem_range memmap[KRT_MEMMAP_MAX];
static unsigned memmap_nr;
static uint64_t rsdp, initrd_addr, initrd_size;
static uint64_t mapped_top = KRT_HOLE_END; /* without 1 GiB pages: what the tables cover */
static uint64_t alloc_next, alloc_end;

static uint64_t rd64(uint64_t pa)
{
	uint64_t v;
	memcpy(&v, krt_phys(pa), sizeof(v));
	return v;
}

static uint32_t rd32(uint64_t pa)
{
	uint32_t v;
	memcpy(&v, krt_phys(pa), sizeof(v));
	return v;
}

uint64_t krt_map_page_size(void)
{
	return krt_has_1g_pages ? KRT_GIB(1) : KRT_MIB(2);
}

bool krt_is_mapped(uint64_t addr, uint64_t len)
{
	uint64_t top = krt_has_1g_pages ? KRT_GIB(512) : mapped_top;
	return addr <= top && len <= top - addr;
}

static void copy_cmdline(uint64_t pa)
{
	if (pa == 0)
		return;
	if (!krt_is_mapped(pa, 1)) {
		krt_printf("krt: command line at 0x%lx is not mapped\n", pa);
		return;
	}
	for (size_t i = 0; i < sizeof(cmdline) - 1 && krt_is_mapped(pa + i, 1); i++) {
		char c = *(const volatile char *)krt_phys(pa + i);
		if (c == 0)
			break;
		cmdline[i] = c;
	}
}

static void add_range(uint64_t addr, uint64_t size, uint32_t type)
{
	if (size == 0)
		return; /* QEMU's PVH loader leaves a blank entry at the end */
	if (memmap_nr == KRT_MEMMAP_MAX) {
		krt_printf("krt: memory map: entry 0x%lx+0x%lx dropped (more than %u)\n", addr,
		           size, KRT_MEMMAP_MAX);
		return;
	}
	memmap[memmap_nr++] = (struct krt_mem_range){addr, size, type};
}

static void parse_pvh(uint64_t si)
{
	if (!krt_is_mapped(si, 56) || rd32(si + HVM_OFF_MAGIC) != HVM_START_MAGIC) {
		krt_printf("krt: no hvm_start_info at 0x%lx (bad magic)\n", si);
		return;
	}
	copy_cmdline(rd64(si + HVM_OFF_CMDLINE));
	rsdp = rd64(si + HVM_OFF_RSDP);
	if (rd32(si + HVM_OFF_NR_MODULES) > 0) {
		uint64_t mod = rd64(si + HVM_OFF_MODLIST);
		if (krt_is_mapped(mod, HVM_MODLIST_ENTRY)) {
			initrd_addr = rd64(mod);
			initrd_size = rd64(mod + 8);
		}
	}
	if (rd32(si + HVM_OFF_VERSION) < 1)
		return; /* version 0 has no memory map */
	uint64_t map = rd64(si + HVM_OFF_MEMMAP);
	uint32_t nr = rd32(si + HVM_OFF_MEMMAP_NR);
	for (uint32_t i = 0; i < nr && krt_is_mapped(map + i * HVM_MEMMAP_ENTRY, HVM_MEMMAP_ENTRY);
	     i++) {
		uint64_t e = map + i * HVM_MEMMAP_ENTRY;
		add_range(rd64(e), rd64(e + 8), rd32(e + 16));
	}
}

static void parse_linux64(uint64_t bp)
{
	if (!krt_is_mapped(bp, 4096)) {
		krt_printf("krt: boot_params at 0x%lx is not mapped\n", bp);
		return;
	}
	const volatile uint8_t *zp = (const volatile uint8_t *)krt_phys(bp);
	copy_cmdline(rd32(bp + BP_OFF_CMD_LINE_PTR) | (uint64_t)rd32(bp + BP_OFF_EXT_CMD_LINE)
	                                                      << 32);
	rsdp = rd64(bp + BP_OFF_ACPI_RSDP);
	initrd_addr = rd32(bp + BP_OFF_RAMDISK_IMAGE);
	initrd_size = rd32(bp + BP_OFF_RAMDISK_SIZE);
	unsigned nr = zp[BP_OFF_E820_ENTRIES];
	if (nr > BP_E820_MAX)
		nr = BP_E820_MAX;
	for (unsigned i = 0; i < nr; i++) {
		uint64_t e = bp + BP_OFF_E820_TABLE + i * BP_E820_ENTRY;
		add_range(rd64(e), rd64(e + 8), rd32(e + 16));
	}
}

/* the first allocation goes after the image, in the RAM range that holds it */
static void alloc_init(void)
{
	uint64_t end = ((uint64_t)(uintptr_t)krt_image_end + 4095) & ~4095ull;

	for (unsigned i = 0; i < memmap_nr; i++) {
		const struct krt_mem_range *m = &memmap[i];
		if (m->type == KRT_MEM_RAM && m->addr <= end && end < m->addr + m->size) {
			alloc_next = end;
			alloc_end = m->addr + m->size;
		}
	}
}

void krt_bootinfo_init(unsigned path, uint64_t info)
{
	boot_path = (enum krt_boot_path)path;
	if (info == 0)
		krt_printf("krt: the VMM passed no boot information\n");
	else if (path == KRT_BOOT_PVH)
		parse_pvh(info);
	else
		parse_linux64(info);
	alloc_init();
}

void *krt_alloc_pages(size_t npages, size_t align)
{
	if (align < KRT_PAGE_SIZE || (align & (align - 1)))
		return NULL;
	for (;;) {
		uint64_t p = (alloc_next + align - 1) & ~(uint64_t)(align - 1);
		uint64_t len = npages * KRT_PAGE_SIZE;
		if (p < alloc_next || p > alloc_end || len > alloc_end - p ||
		    !krt_is_mapped(p, len))
			return NULL;
		if (initrd_size && p < initrd_addr + initrd_size && initrd_addr < p + len) {
			alloc_next = initrd_addr + initrd_size; /* keep the initrd */
			continue;
		}
		alloc_next = p + len;
		return memset((void *)(uintptr_t)p, 0, len);
	}
}

static long reload_cr3(long pml4)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(pml4) : "memory");
	return 0;
}

/*
 * Without 1 GiB pages the static tables cover 4 GiB; RAM above gets page
 * directories of 2 MiB pages in krt_pdpt_2m, written from ring 3. The
 * entries were not present, so no TLB entry is stale (SDM vol. 3A
 * s4.10.4.3); the CR3 reload is for the paging-structure caches anyway.
 */
int krt_map_high_ram(void)
{
	for (unsigned i = 0; i < memmap_nr; i++) {
		const struct krt_mem_range *m = &memmap[i];
		uint64_t end = m->addr + m->size;
		if (m->type != KRT_MEM_RAM || end <= KRT_HOLE_END || m->size == 0)
			continue;
		uint64_t first = (m->addr < KRT_HOLE_END ? KRT_HOLE_END : m->addr) >> 30;
		for (uint64_t g = first; g <= (end - 1) >> 30; g++) {
			if (g >= 512)
				return -KRT_ENOSPC;
			if (krt_pdpt_2m[g])
				continue;
			uint64_t *pd = krt_alloc_pages(1, KRT_PAGE_SIZE);
			if (!pd)
				return -KRT_ENOMEM;
			for (uint64_t j = 0; j < 512; j++)
				pd[j] = (g << 30) + (j << 21) + KRT_PTE_LEAF;
			krt_pdpt_2m[g] = (uint64_t)(uintptr_t)pd + KRT_PTE_TABLE;
			if ((g + 1) << 30 > mapped_top)
				mapped_top = (g + 1) << 30;
		}
	}
	krt_ring0(reload_cr3, (long)(uintptr_t)krt_pml4);
	return 0;
}

enum krt_boot_path krt_boot_path(void)
{
	return boot_path;
}

const char *krt_cmdline(void)
{
	return cmdline;
}

uint64_t krt_bootinfo_rsdp(void)
{
	return rsdp;
}

unsigned krt_memmap(const struct krt_mem_range **out)
{
	*out = memmap;
	return memmap_nr;
}

uint64_t krt_ram_bytes(void)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < memmap_nr; i++)
		if (memmap[i].type == KRT_MEM_RAM)
			sum += memmap[i].size;
	return sum;
}

const char *krt_param(const char *key, size_t *len)
{
	return krt_cmdline_param(krt_cmdline(), key, len);
}

bool krt_param_is(const char *key, const char *value)
{
	size_t len;
	const char *v = krt_param(key, &len);
	return v && strlen(value) == len && strncmp(v, value, len) == 0;
}

uint64_t krt_param_u64(const char *key, uint64_t dflt)
{
	size_t len;
	const char *v = krt_param(key, &len), *end;
	uint64_t n;

	if (!v || krt_strtou64(v, &end, 0, &n) < 0 || end != v + len)
		return dflt;
	return n;
}
