// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/boot_params.c: what the kernel reads at its entry -- the Linux zero
 * page (struct boot_params, Documentation/arch/x86/zero-page.rst) for the
 * 64-bit entry, or the Xen hvm_start_info (arch-x86/hvm/start_info.h,
 * version 1) for PVH -- each with kiln's e820 map from gm_e820().
 */
#include "vcpu/boot_int.h"

#include <errno.h>
#include <string.h>

#define LOG_MODULE "boot"

/* boot.rst "Sample Boot Configuration": heap_end = 0xe000, heap_end_ptr = heap_end - 0x200 */
#define BOOT_HEAP_END_PTR    (0xe000 - 0x200)
#define BOOT_VID_MODE_NORMAL 0xffff /* "normal" VGA mode: ask nothing of the video BIOS */

int boot_write_zero_page(struct guest_mem *gm, const struct boot_kernel *k,
                         const struct boot_info *bi, uint64_t *gpa, struct errbuf *e)
{
	struct boot_params *zp = gm_ptr(gm, BOOT_ZERO_PAGE_ADDR, sizeof(*zp));
	if (!zp)
		return errf(e, EFAULT, "no guest RAM for the zero page at 0x%llx",
		            BOOT_ZERO_PAGE_ADDR);
	memset(zp, 0, sizeof(*zp));
	struct boot_setup_header *h = &zp->hdr;

	if (k->format == BOOT_FORMAT_BZIMAGE) {
		/*
		 * 64-bit boot protocol: "the setup header at offset 0x01f1 of
		 * kernel image on should be loaded into struct boot_params",
		 * then the loader's fields are written ("write" / "modify" in
		 * the header table).
		 */
		memcpy(h, k->setup_hdr, k->setup_hdr_len);
		h->vid_mode = BOOT_VID_MODE_NORMAL;
		h->loadflags |= BOOT_CAN_USE_HEAP;
		h->heap_end_ptr = BOOT_HEAP_END_PTR;
	} else {
		/* an ELF vmlinux carries no header: fill what Linux checks */
		h->boot_flag = BOOT_FLAG_MAGIC;
		h->header = BOOT_HDRS_MAGIC;
		h->kernel_alignment = 0x1000000; /* CONFIG_PHYSICAL_ALIGN's upper bound */
		h->cmdline_size = (uint32_t)k->cmdline_max;
	}
	h->type_of_loader = BOOT_LOADER_OTHER;
	h->cmd_line_ptr = (uint32_t)BOOT_CMDLINE_ADDR;
	zp->ext_cmd_line_ptr = (uint32_t)(BOOT_CMDLINE_ADDR >> 32);
	if (bi->initrd_size) {
		h->ramdisk_image = (uint32_t)bi->initrd_gpa;
		h->ramdisk_size = (uint32_t)bi->initrd_size;
		zp->ext_ramdisk_image = (uint32_t)(bi->initrd_gpa >> 32);
		zp->ext_ramdisk_size = (uint32_t)(bi->initrd_size >> 32);
	}

	int n = gm_e820(gm, zp->e820_table, BOOT_E820_MAX);
	if (n < 0)
		return errf(e, -n, "the e820 map does not fit the zero page (%u entries)",
		            BOOT_E820_MAX);
	zp->e820_entries = (uint8_t)n;
	/* zero-page.rst: "ACPI RSDP address"; boot_load wrote the tables there */
	zp->acpi_rsdp_addr = BOOT_ACPI_RSDP_ADDR;
	*gpa = BOOT_ZERO_PAGE_ADDR;
	return 0;
}

/*
 * Xen's start_info.h: hvm_start_info at BOOT_PVH_INFO_ADDR, version 1 so
 * that the memory map is read from memmap_paddr; the initrd is module 0.
 * The memmap types are the e820 ones (XEN_HVM_MEMMAP_TYPE_RAM = 1,
 * _RESERVED = 2).
 */
int boot_write_pvh_info(struct guest_mem *gm, const struct boot_info *bi, uint64_t *gpa,
                        struct errbuf *e)
{
	struct hvm_start_info *si = gm_ptr(gm, BOOT_PVH_INFO_ADDR, sizeof(*si));
	struct hvm_modlist_entry *mod =
	        gm_ptr(gm, BOOT_PVH_MODLIST_ADDR, sizeof(struct hvm_modlist_entry));
	struct hvm_memmap_table_entry *mm =
	        gm_ptr(gm, BOOT_PVH_MEMMAP_ADDR, BOOT_PVH_MEMMAP_MAX * sizeof(*mm));
	if (!si || !mod || !mm)
		return errf(e, EFAULT, "no guest RAM for the PVH start info at 0x%llx",
		            BOOT_PVH_INFO_ADDR);

	struct e820_entry map[BOOT_PVH_MEMMAP_MAX];
	int n = gm_e820(gm, map, BOOT_PVH_MEMMAP_MAX);
	if (n < 0)
		return errf(e, -n, "the e820 map does not fit the PVH memory map (%u entries)",
		            BOOT_PVH_MEMMAP_MAX);
	memset(mm, 0, BOOT_PVH_MEMMAP_MAX * sizeof(*mm));
	for (int i = 0; i < n; i++) {
		mm[i].addr = map[i].addr;
		mm[i].size = map[i].size;
		mm[i].type = map[i].type;
	}

	memset(mod, 0, sizeof(*mod));
	memset(si, 0, sizeof(*si));
	si->magic = PVH_START_MAGIC;
	si->version = 1;
	si->cmdline_paddr = BOOT_CMDLINE_ADDR;
	si->memmap_paddr = BOOT_PVH_MEMMAP_ADDR;
	si->memmap_entries = (uint32_t)n;
	si->rsdp_paddr = BOOT_ACPI_RSDP_ADDR; /* the ACPI tables boot_load wrote */
	if (bi->initrd_size) {
		mod->paddr = bi->initrd_gpa;
		mod->size = bi->initrd_size;
		si->nr_modules = 1;
		si->modlist_paddr = BOOT_PVH_MODLIST_ADDR;
	}
	*gpa = BOOT_PVH_INFO_ADDR;
	return 0;
}
