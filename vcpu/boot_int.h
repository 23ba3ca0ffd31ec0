/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vcpu/boot_int.h: what the boot files share -- the guest-visible layouts
 * of the Linux zero page and the PVH start info, and the loaders' result.
 * Layouts are little endian, as on the x86_64 host kiln runs on; every
 * offset is checked at compile time against the spec's table.
 */
#ifndef KILN_VCPU_BOOT_INT_H
#define KILN_VCPU_BOOT_INT_H

#include "vcpu/vcpu.h"

/* ------------------------------------------- Linux boot protocol 2.15 */

/* Documentation/arch/x86/boot.rst, "THE REAL-MODE KERNEL HEADER" */
#define BOOT_HDR_OFFSET         0x1f1
#define BOOT_HDR_END_MAX        0x290 /* the zero page's hdr is followed by edd_mbr_sig_buffer */
#define BOOT_FLAG_MAGIC         0xaa55
#define BOOT_HDRS_MAGIC         0x53726448 /* "HdrS" */
#define BOOT_LOADED_HIGH        0x01       /* loadflags */
#define BOOT_CAN_USE_HEAP       0x80
#define BOOT_XLF_KERNEL_64      0x01        /* xloadflags: 64-bit entry at load address + 0x200 */
#define BOOT_LOADER_OTHER       0xff        /* type_of_loader: "undefined" boot loader */
#define BOOT_INITRD_MAX_DEFAULT 0x37ffffffu /* initrd_addr_max before 2.03 / for ELF */

struct boot_setup_header {
	uint8_t setup_sects;            /* 0x1f1 */
	uint16_t root_flags;            /* 0x1f2 */
	uint32_t syssize;               /* 0x1f4, 16-byte units */
	uint16_t ram_size;              /* 0x1f8 */
	uint16_t vid_mode;              /* 0x1fa */
	uint16_t root_dev;              /* 0x1fc */
	uint16_t boot_flag;             /* 0x1fe, 0xaa55 */
	uint16_t jump;                  /* 0x200, its 2nd byte gives the header's end */
	uint32_t header;                /* 0x202, "HdrS" */
	uint16_t version;               /* 0x206 */
	uint32_t realmode_swtch;        /* 0x208 */
	uint16_t start_sys_seg;         /* 0x20c */
	uint16_t kernel_version;        /* 0x20e */
	uint8_t type_of_loader;         /* 0x210 */
	uint8_t loadflags;              /* 0x211 */
	uint16_t setup_move_size;       /* 0x212 */
	uint32_t code32_start;          /* 0x214 */
	uint32_t ramdisk_image;         /* 0x218 */
	uint32_t ramdisk_size;          /* 0x21c */
	uint32_t bootsect_kludge;       /* 0x220 */
	uint16_t heap_end_ptr;          /* 0x224 */
	uint8_t ext_loader_ver;         /* 0x226 */
	uint8_t ext_loader_type;        /* 0x227 */
	uint32_t cmd_line_ptr;          /* 0x228 */
	uint32_t initrd_addr_max;       /* 0x22c, the highest address the initrd may occupy */
	uint32_t kernel_alignment;      /* 0x230 */
	uint8_t relocatable_kernel;     /* 0x234 */
	uint8_t min_alignment;          /* 0x235 */
	uint16_t xloadflags;            /* 0x236 */
	uint32_t cmdline_size;          /* 0x238, without the NUL */
	uint32_t hardware_subarch;      /* 0x23c */
	uint64_t hardware_subarch_data; /* 0x240 */
	uint32_t payload_offset;        /* 0x248 */
	uint32_t payload_length;        /* 0x24c */
	uint64_t setup_data;            /* 0x250 */
	uint64_t pref_address;          /* 0x258 */
	uint32_t init_size;             /* 0x260 */
	uint32_t handover_offset;       /* 0x264 */
	uint32_t kernel_info_offset;    /* 0x268 */
} __attribute__((packed));

#define BOOT_E820_MAX 128 /* E820_MAX_ENTRIES_ZEROPAGE */

/* Documentation/arch/x86/zero-page.rst; only the fields kiln writes are named */
struct boot_params {
	uint8_t _pad0[0x070];
	uint64_t acpi_rsdp_addr; /* 0x070, boot protocol 2.14 */
	uint8_t _pad0b[0x0c0 - 0x078];
	uint32_t ext_ramdisk_image; /* 0x0c0 */
	uint32_t ext_ramdisk_size;  /* 0x0c4 */
	uint32_t ext_cmd_line_ptr;  /* 0x0c8 */
	uint8_t _pad1[0x1e8 - 0x0cc];
	uint8_t e820_entries; /* 0x1e8 */
	uint8_t _pad2[BOOT_HDR_OFFSET - 0x1e9];
	struct boot_setup_header hdr; /* 0x1f1 */
	uint8_t _pad3[0x2d0 - 0x26c];
	struct e820_entry e820_table[BOOT_E820_MAX]; /* 0x2d0 */
	uint8_t _pad4[0x1000 - 0xcd0];
} __attribute__((packed));

_Static_assert(sizeof(struct e820_entry) == 20, "boot_e820_entry is 20 bytes");
_Static_assert(__builtin_offsetof(struct boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
_Static_assert(__builtin_offsetof(struct boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(__builtin_offsetof(struct boot_params, hdr) == 0x1f1, "hdr");
_Static_assert(__builtin_offsetof(struct boot_params, hdr.header) == 0x202, "header");
_Static_assert(__builtin_offsetof(struct boot_params, hdr.cmd_line_ptr) == 0x228, "cmd_line_ptr");
_Static_assert(__builtin_offsetof(struct boot_params, hdr.xloadflags) == 0x236, "xloadflags");
_Static_assert(__builtin_offsetof(struct boot_params, hdr.init_size) == 0x260, "init_size");
_Static_assert(__builtin_offsetof(struct boot_params, e820_table) == 0x2d0, "e820_table");
_Static_assert(sizeof(struct boot_params) == 4096, "the zero page is one page");

/* ------------------------------------------- Xen PVH (start_info.h) */

#define PVH_START_MAGIC          0x336ec578
#define PVH_ELFNOTE_PHYS32_ENTRY 18 /* XEN_ELFNOTE_PHYS32_ENTRY, owner "Xen" */

struct hvm_start_info {
	uint32_t magic;          /* 0 */
	uint32_t version;        /* 4: 1 = has the memory map */
	uint32_t flags;          /* 8 */
	uint32_t nr_modules;     /* 12 */
	uint64_t modlist_paddr;  /* 16 */
	uint64_t cmdline_paddr;  /* 24 */
	uint64_t rsdp_paddr;     /* 32 */
	uint64_t memmap_paddr;   /* 40 */
	uint32_t memmap_entries; /* 48 */
	uint32_t reserved;       /* 52 */
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* 1 RAM, 2 reserved: the e820 numbers */
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry");

/* --------------------------------------------------- the loaders */

/* what a kernel loader found and placed */
struct boot_kernel {
	enum boot_kernel_format format;
	enum boot_mode mode;
	uint64_t entry;
	uint64_t start, end;      /* RAM the kernel occupies or will claim (init_size) */
	uint64_t initrd_addr_max; /* highest byte the initrd may occupy */
	size_t cmdline_max;       /* longest command line (without NUL) */
	const uint8_t *setup_hdr; /* bzImage: the header to copy into the zero page */
	size_t setup_hdr_len;     /* bytes from offset 0x1f1 */
};

/*
 * Load an ELF64 x86_64 executable (`buf`, `len` bytes, read from `path`)
 * into `gm`; `k` gets the entry (PVH when the note is there) and extent.
 * 0 / -errno with a message naming `path`.
 */
int boot_elf_load(struct guest_mem *gm, const char *path, const uint8_t *buf, size_t len,
                  struct boot_kernel *k, struct errbuf *e);

/* true when `buf` starts with the ELF magic */
bool boot_is_elf(const uint8_t *buf, size_t len);

/* the same for a bzImage (boot protocol 2.12+ with the 64-bit entry) */
int boot_bzimage_load(struct guest_mem *gm, const char *path, const uint8_t *buf, size_t len,
                      struct boot_kernel *k, struct errbuf *e);

/* boot sector signature 0xaa55 at 0x1fe and "HdrS" at 0x202 */
bool boot_is_bzimage(const uint8_t *buf, size_t len);

/*
 * Write the zero page at BOOT_ZERO_PAGE_ADDR (LINUX64) or the
 * hvm_start_info, its module list and memory map at BOOT_PVH_INFO_ADDR
 * (PVH), for the command line at BOOT_CMDLINE_ADDR and the initrd in `bi`. Returns the structure's
 * address through `*gpa`. 0 / -errno with a message.
 */
int boot_write_zero_page(struct guest_mem *gm, const struct boot_kernel *k,
                         const struct boot_info *bi, uint64_t *gpa, struct errbuf *e);
int boot_write_pvh_info(struct guest_mem *gm, const struct boot_info *bi, uint64_t *gpa,
                        struct errbuf *e);

#endif
