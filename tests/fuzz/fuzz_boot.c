// SPDX-License-Identifier: Apache-2.0
/*
 * tests/fuzz/fuzz_boot.c: libFuzzer target for the kernel image loaders,
 * boot_load() of vcpu/boot.c: the choice between an ELF vmlinux and a
 * bzImage by their magic, the ELF loader with its PVH note (boot_elf.c),
 * the bzImage loader (boot_bzimage.c), the command line and the initrd
 * placed after them, the zero page or PVH start info (boot_params.c), the
 * MP and ACPI tables, then the BSP's entry state (boot_bsp_state) for
 * what was loaded. Every input gets a fresh guest_mem (gm_init), as a VM
 * does, so the loaders see zero-filled RAM.
 *
 * Input: a 3-byte header, then the kernel image.
 *   [0] bits 0-1  RAM: 2 MiB, 16 MiB, 64 MiB, or 3 GiB + 64 MiB (two
 *                 regions around the MMIO hole)
 *       bit 2     an initrd of [2] * 64 KiB (zeroes; 0: an empty file)
 *       bits 3-7  vCPUs - 1
 *   [1]           command line length / 8 (a run of 'x'; up to 2040 bytes)
 * The image and the initrd are memfds, opened by their /proc/self/fd path
 * as boot_load opens files. A refusal must say why; a load must leave the
 * entry inside the kernel and the initrd above it in RAM.
 *
 * KILN_FUZZ_BOOT_SEEDS=DIR fuzz_boot writes the seeds (small ELF kernels
 * with and without the PVH note, bzImages) into DIR and exits; they are
 * checked in under tests/fuzz/corpus/boot/.
 */
#include "vcpu/boot_int.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HDR          3
#define INITRD_UNIT  (64u << 10)
#define SEED_PADDR   0x200000ull /* ELF seeds' load address */
#define SEED_DATAOFF 0x400       /* their segment's bytes in the file */
#define SEED_FILESZ  0x800
#define SEED_VBASE   0xffffffff80000000ull

static const uint64_t ram_sizes[] = {MIB(2), MIB(16), MIB(64), GM_HOLE_START + MIB(64)};

static int kernel_fd = -1, initrd_fd = -1;
static char kernel_path[64], initrd_path[64];
static char cmdline[BOOT_CMDLINE_MAX];
static bool verbose; /* KILN_FUZZ_VERBOSE set: print what each load did */

/* `fd` now holds `len` bytes of `p` (p NULL: zeroes) */
static int fill(int fd, const uint8_t *p, size_t len)
{
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)len) < 0)
		return -errno;
	return p && len && pwrite(fd, p, len, 0) != (ssize_t)len ? -EIO : 0;
}

/* what every successful load promises */
static void check_loaded(const struct guest_mem *gm, const struct boot_info *bi)
{
	uint64_t low_top = gm->regions[0].size;

	if (bi->entry < bi->kernel_start || bi->entry >= bi->kernel_end ||
	    bi->kernel_start < BOOT_KERNEL_MIN_ADDR)
		abort();
	if (bi->initrd_size && (bi->initrd_gpa < bi->kernel_end || bi->initrd_gpa > low_top ||
	                        bi->initrd_size > low_top - bi->initrd_gpa))
		abort();
}

static void load(const uint8_t *data, size_t size)
{
	struct boot_config cfg = {.kernel_path = kernel_path,
	                          .initrd_path = data[0] & 4 ? initrd_path : NULL,
	                          .cmdline = cmdline,
	                          .nr_vcpus = (data[0] >> 3) + 1u};
	struct guest_mem gm;
	struct boot_info bi;
	struct errbuf e = {""};

	if (fill(kernel_fd, data + HDR, size - HDR) < 0 ||
	    (cfg.initrd_path && fill(initrd_fd, NULL, data[2] * INITRD_UNIT) < 0))
		return;
	memset(cmdline, 'x', data[1] * 8u);
	cmdline[data[1] * 8u] = '\0';
	if (gm_init(&gm, ram_sizes[data[0] & 3], GM_BACKING_ANON, NULL, &e) < 0)
		abort();
	int ret = boot_load(&gm, &cfg, &bi, &e);
	if (ret < 0 && !e.msg[0])
		abort();
	if (verbose)
		fprintf(stderr, "fuzz_boot: %s\n",
		        ret < 0               ? e.msg
		        : bi.mode == BOOT_PVH ? "loaded, PVH"
		                              : "loaded, 64-bit");
	if (ret == 0) {
		struct kvm_regs regs;
		struct kvm_sregs sregs;
		check_loaded(&gm, &bi);
		memset(&sregs, 0, sizeof(sregs));
		if (boot_bsp_state(&gm, &bi, &regs, &sregs) < 0 || regs.rip != bi.entry)
			abort();
	}
	gm_destroy(&gm);
}

/* ------------------------------------------------------------ the seeds */

/* an ELF kernel with one PT_LOAD and, when `note` is 4 or 8, a PVH note of that size */
static size_t seed_elf(uint8_t *f, int note, bool virtual_entry, uint64_t align)
{
	Elf64_Ehdr eh = {.e_type = ET_EXEC,
	                 .e_machine = EM_X86_64,
	                 .e_version = EV_CURRENT,
	                 .e_entry = (virtual_entry ? SEED_VBASE : 0) + SEED_PADDR + 0x40,
	                 .e_phoff = sizeof(Elf64_Ehdr),
	                 .e_ehsize = sizeof(Elf64_Ehdr),
	                 .e_phentsize = sizeof(Elf64_Phdr),
	                 .e_phnum = note ? 2 : 1};
	Elf64_Phdr ph[2] = {{.p_type = PT_LOAD,
	                     .p_offset = SEED_DATAOFF,
	                     .p_vaddr = SEED_VBASE + SEED_PADDR,
	                     .p_paddr = SEED_PADDR,
	                     .p_filesz = SEED_FILESZ,
	                     .p_memsz = 2 * SEED_FILESZ},
	                    {.p_type = PT_NOTE, .p_offset = 0x100, .p_align = align}};
	/* 4-byte aligned notes: a "GNU" note first, which the loader walks past */
	static const uint8_t gnu[] = {4, 0, 0,   0,   4,   0, 0, 0, 3, 0,
	                              0, 0, 'G', 'N', 'U', 0, 1, 2, 3, 4};
	Elf64_Nhdr xen = {.n_namesz = 4, .n_descsz = (Elf64_Word)note, .n_type = 18};
	uint64_t pvh = SEED_PADDR + 0x80;
	size_t at = 0x100 + (align == 4 ? sizeof(gnu) : 0);

	memset(f, 0, SEED_DATAOFF + SEED_FILESZ);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(f, &eh, sizeof(eh));
	if (align == 4)
		memcpy(f + 0x100, gnu, sizeof(gnu));
	memcpy(f + at, &xen, sizeof(xen));
	memcpy(f + at + sizeof(xen), "Xen", 4);
	memcpy(f + at + sizeof(xen) + ALIGN_UP(4, align), &pvh, (size_t)note);
	ph[1].p_filesz = at + sizeof(xen) + ALIGN_UP(4, align) + (uint64_t)note - 0x100;
	memcpy(f + sizeof(eh), ph, sizeof(ph));
	for (size_t i = 0; i < SEED_FILESZ; i++)
		f[SEED_DATAOFF + i] = (uint8_t)(0x90 + i % 7);
	return SEED_DATAOFF + SEED_FILESZ;
}

/* a protocol 2.15 bzImage of `sects` setup sectors and a 4 KiB protected-mode part */
static size_t seed_bzimage(uint8_t *f, unsigned sects, bool relocatable, unsigned hdr_end)
{
	size_t setup = ((sects ? sects : 4) + 1) * 512ul, len = setup + 0x1000;
	struct boot_setup_header h = {.setup_sects = (uint8_t)sects,
	                              .syssize = 0x1000 / 16,
	                              .boot_flag = BOOT_FLAG_MAGIC,
	                              .jump = (uint16_t)(0xeb | (hdr_end - 0x202) << 8),
	                              .header = BOOT_HDRS_MAGIC,
	                              .version = 0x020f,
	                              .loadflags = BOOT_LOADED_HIGH,
	                              .initrd_addr_max = 0x7fffffff,
	                              .kernel_alignment = 0x200000,
	                              .relocatable_kernel = relocatable,
	                              .xloadflags = BOOT_XLF_KERNEL_64,
	                              .cmdline_size = 255,
	                              .pref_address = 0x1000000,
	                              .init_size = 0x400000};

	memset(f, 0, len);
	memcpy(f + BOOT_HDR_OFFSET, &h, hdr_end - BOOT_HDR_OFFSET);
	for (size_t i = setup; i < len; i++)
		f[i] = (uint8_t)(i * 13 + 5);
	return len;
}

static int write_seed(const char *dir, const char *name, const uint8_t hdr[HDR], const uint8_t *f,
                      size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *out = fopen(path, "wb");
	if (!out)
		return -errno;
	bool ok = fwrite(hdr, 1, HDR, out) == HDR && fwrite(f, 1, len, out) == len;
	return fclose(out) == 0 && ok ? 0 : -EIO;
}

/* header byte 0: RAM choice | initrd << 2 | (vCPUs - 1) << 3 */
static int write_seeds(const char *dir)
{
	static uint8_t f[0x2000];
	const struct {
		const char *name;
		uint8_t hdr[HDR];
		int kind; /* 0..3: ELF with a note of 0/4/8 bytes, 4..6: bzImage variants */
	} seeds[] = {
	        {"elf_linux64", {1, 4, 0}, 0},
	        {"elf_pvh4_initrd", {1 | 4 | 8, 2, 1}, 1},
	        {"elf_pvh8_align8", {2 | 4, 0, 3}, 2},
	        {"elf_virtual_entry", {1 | 24, 1, 0}, 3},
	        {"bzimage", {2 | 4, 3, 1}, 4},
	        {"bzimage_fixed_high_ram", {3 | 4, 8, 5}, 5},
	        {"bzimage_short_header", {2, 0, 0}, 6},
	};
	int ret = 0;

	for (size_t i = 0; i < ARRAY_SIZE(seeds) && ret == 0; i++) {
		int k = seeds[i].kind;
		size_t len = k == 0   ? seed_elf(f, 0, false, 4)
		             : k == 1 ? seed_elf(f, 4, false, 4)
		             : k == 2 ? seed_elf(f, 8, false, 8)
		             : k == 3 ? seed_elf(f, 0, true, 4)
		             : k == 4 ? seed_bzimage(f, 4, true, 0x26c)
		             : k == 5 ? seed_bzimage(f, 0, false, 0x26c)
		                      : seed_bzimage(f, 2, true, 0x268);
		ret = write_seed(dir, seeds[i].name, seeds[i].hdr, f, len);
	}
	return ret;
}

/* ------------------------------------------------------------ libFuzzer */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_configure(LOG_OFF, false, false, NULL);
	verbose = getenv("KILN_FUZZ_VERBOSE") != NULL;
	const char *seeds = getenv("KILN_FUZZ_BOOT_SEEDS");
	if (seeds) {
		int ret = write_seeds(seeds);
		if (ret < 0)
			fprintf(stderr, "fuzz_boot: cannot write the seeds: %s\n", strerror(-ret));
		exit(ret < 0);
	}
	kernel_fd = memfd_create("kiln-fuzz-kernel", MFD_CLOEXEC);
	initrd_fd = memfd_create("kiln-fuzz-initrd", MFD_CLOEXEC);
	if (kernel_fd < 0 || initrd_fd < 0)
		abort();
	snprintf(kernel_path, sizeof(kernel_path), "/proc/self/fd/%d", kernel_fd);
	snprintf(initrd_path, sizeof(initrd_path), "/proc/self/fd/%d", initrd_fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= HDR)
		load(data, size);
	return 0;
}
