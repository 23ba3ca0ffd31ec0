// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_boot.c: the x86_64 kernel loaders (ELF with and without
 * the PVH note, bzImage), the zero page / hvm_start_info, the MP table, the
 * BSP's entry state, and -- when /dev/kvm and Debian's kernel are there --
 * a real vCPU entering a loaded image and the real kernel's layout.
 */
#include "vcpu/boot_int.h"

#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------ fixtures */

static struct guest_mem gm;
static char tmp_paths[32][64];
static unsigned nr_tmp;

static void mem(uint64_t mib)
{
	struct errbuf e = {0};
	cr_assert_eq(gm_init(&gm, MIB(mib), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
}

static void teardown(void)
{
	gm_destroy(&gm);
	for (unsigned i = 0; i < nr_tmp; i++)
		unlink(tmp_paths[i]);
	nr_tmp = 0;
}

TestSuite(boot, .fini = teardown);

/* a temporary file holding `len` bytes of `buf` (or a sparse file of `len` bytes) */
static const char *tmp_file(const void *buf, size_t len)
{
	cr_assert_lt(nr_tmp, ARRAY_SIZE(tmp_paths));
	char *path = tmp_paths[nr_tmp++];
	strcpy(path, "/tmp/kiln-test-boot-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	if (buf)
		cr_assert_eq(write_all(fd, buf, len), 0);
	else
		cr_assert_eq(ftruncate(fd, (off_t)len), 0);
	close(fd);
	return path;
}

static uint8_t *gpa(uint64_t addr, uint64_t len)
{
	uint8_t *p = gm_ptr(&gm, addr, len);
	cr_assert_not_null(p, "gpa 0x%llx not in RAM", (unsigned long long)addr);
	return p;
}

static int load(const char *kernel, const char *initrd, const char *cmdline, struct boot_info *bi,
                struct errbuf *e)
{
	struct boot_config cfg = {kernel, initrd, cmdline, 1};
	memset(e, 0, sizeof(*e));
	return boot_load(&gm, &cfg, bi, e);
}

#define assert_fails(ret, e, errno_, text)                                                         \
	do {                                                                                       \
		cr_assert_eq((ret), -(errno_), "ret %d: %s", (ret), (e).msg);                      \
		cr_assert_not_null(strstr((e).msg, (text)), "message: %s", (e).msg);               \
	} while (0)

/* -------------------------------------------------- synthetic kernels */

#define ELF_PADDR   0x200000ull
#define ELF_FILESZ  0x2000
#define ELF_MEMSZ   0x3000
#define ELF_DATAOFF 0x1000
#define ELF_VBASE   0xffffffff80000000ull

struct elf_opts {
	uint64_t paddr, entry;
	int pvh_descsz; /* 0: no PVH note */
	uint8_t class;
	uint16_t machine;
};

/* ehdr, a PT_LOAD and a PT_NOTE, the note at 0x200, the segment's bytes at 0x1000 */
static size_t build_elf(uint8_t *f, struct elf_opts o)
{
	size_t len = ELF_DATAOFF + ELF_FILESZ;
	memset(f, 0, len);
	Elf64_Ehdr eh = {
	        .e_type = ET_EXEC,
	        .e_machine = o.machine ? o.machine : EM_X86_64,
	        .e_version = EV_CURRENT,
	        .e_entry = o.entry ? o.entry : ELF_PADDR + 0x10,
	        .e_phoff = sizeof(Elf64_Ehdr),
	        .e_ehsize = sizeof(Elf64_Ehdr),
	        .e_phentsize = sizeof(Elf64_Phdr),
	        .e_phnum = o.pvh_descsz ? 2 : 1,
	};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = o.class ? o.class : ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	uint64_t paddr = o.paddr ? o.paddr : ELF_PADDR;
	Elf64_Phdr ph[2] = {
	        {.p_type = PT_LOAD,
	         .p_offset = ELF_DATAOFF,
	         .p_vaddr = ELF_VBASE + paddr,
	         .p_paddr = paddr,
	         .p_filesz = ELF_FILESZ,
	         .p_memsz = ELF_MEMSZ},
	        {.p_type = PT_NOTE, .p_offset = 0x200, .p_filesz = 12 + 4 + 8, .p_align = 4},
	};
	memcpy(f, &eh, sizeof(eh));
	memcpy(f + sizeof(eh), ph, sizeof(ph));
	Elf64_Nhdr nh = {.n_namesz = 4, .n_descsz = (Elf64_Word)o.pvh_descsz, .n_type = 18};
	uint64_t pvh_entry = paddr + 0x20;
	memcpy(f + 0x200, &nh, sizeof(nh));
	memcpy(f + 0x20c, "Xen", 4);
	memcpy(f + 0x210, &pvh_entry, o.pvh_descsz == 4 ? 4 : 8);
	for (size_t i = 0; i < ELF_FILESZ; i++)
		f[ELF_DATAOFF + i] = (uint8_t)(i * 7 + 1);
	return len;
}

#define BZ_SETUP_SECTS 4
#define BZ_PM_SIZE     0x4000
#define BZ_SETUP_SIZE  ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_LEN         (BZ_SETUP_SIZE + BZ_PM_SIZE)

static struct boot_setup_header *bz_hdr(uint8_t *f)
{
	return (struct boot_setup_header *)(f + BOOT_HDR_OFFSET);
}

/* a bzImage of protocol 2.15 whose protected-mode part is a byte pattern */
static void build_bzimage(uint8_t *f)
{
	memset(f, 0, BZ_LEN);
	struct boot_setup_header *h = bz_hdr(f);
	h->setup_sects = BZ_SETUP_SECTS;
	h->syssize = BZ_PM_SIZE / 16;
	h->boot_flag = 0xaa55;
	h->jump = 0xeb | (0x6c - 0x02) << 8; /* the header ends at 0x26c */
	h->header = BOOT_HDRS_MAGIC;
	h->version = 0x020f;
	h->loadflags = BOOT_LOADED_HIGH;
	h->initrd_addr_max = 0x7fffffff;
	h->kernel_alignment = 0x200000;
	h->relocatable_kernel = 1;
	h->xloadflags = BOOT_XLF_KERNEL_64 | 0x2;
	h->cmdline_size = 2047;
	h->pref_address = 0x1000000;
	h->init_size = 0x800000;
	for (size_t i = 0; i < BZ_PM_SIZE; i++)
		f[BZ_SETUP_SIZE + i] = (uint8_t)(i * 13 + 5);
}

static void check_e820(const struct e820_entry *table, unsigned n)
{
	struct e820_entry want[8];
	int w = gm_e820(&gm, want, 8);
	cr_assert_eq((int)n, w);
	cr_assert_eq(memcmp(table, want, n * sizeof(want[0])), 0);
}

/* ------------------------------------------------------------ ELF */

Test(boot, elf_64bit_entry_and_zero_page)
{
	mem(64);
	uint8_t f[0x4000];
	size_t len = build_elf(f, (struct elf_opts){0});
	/* RAM is as gm_init left it (zero), so the BSS reads as zero without being cleared */
	struct boot_info bi;
	struct errbuf e;
	cr_assert_eq(load(tmp_file(f, len), NULL, "console=ttyS0 quiet", &bi, &e), 0, "%s", e.msg);

	cr_assert_eq(bi.mode, BOOT_LINUX64);
	cr_assert_eq(bi.format, BOOT_FORMAT_ELF);
	cr_assert_eq(bi.entry, ELF_PADDR + 0x10);
	cr_assert_eq(bi.kernel_start, ELF_PADDR);
	cr_assert_eq(bi.kernel_end, ELF_PADDR + ELF_MEMSZ);
	cr_assert_eq(memcmp(gpa(ELF_PADDR, ELF_FILESZ), f + ELF_DATAOFF, ELF_FILESZ), 0);
	for (unsigned i = ELF_FILESZ; i < ELF_MEMSZ; i++)
		cr_assert_eq(gpa(ELF_PADDR + i, 1)[0], 0, "bss byte 0x%x", i);

	cr_assert_eq(bi.params_gpa, BOOT_ZERO_PAGE_ADDR);
	struct boot_params *zp = (void *)gpa(BOOT_ZERO_PAGE_ADDR, 4096);
	cr_assert_eq(zp->hdr.boot_flag, 0xaa55);
	cr_assert_eq(zp->hdr.header, BOOT_HDRS_MAGIC);
	cr_assert_eq(zp->hdr.type_of_loader, 0xff);
	cr_assert_eq(zp->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	cr_assert_str_eq((char *)gpa(zp->hdr.cmd_line_ptr, 1), "console=ttyS0 quiet");
	cr_assert_eq(zp->hdr.ramdisk_image, 0);
	cr_assert_eq(zp->hdr.ramdisk_size, 0);
	check_e820(zp->e820_table, zp->e820_entries);
	cr_assert_eq(zp->e820_entries, 3);
	cr_assert_eq(memcmp(gpa(GM_EBDA_START, 4), "_MP_", 4), 0);
}

Test(boot, elf_virtual_entry_is_converted)
{
	mem(64);
	uint8_t f[0x4000];
	size_t len = build_elf(f, (struct elf_opts){.entry = ELF_VBASE + ELF_PADDR + 0x40});
	struct boot_info bi;
	struct errbuf e;
	cr_assert_eq(load(tmp_file(f, len), NULL, NULL, &bi, &e), 0, "%s", e.msg);
	cr_assert_eq(bi.entry, ELF_PADDR + 0x40);
	cr_assert_eq(gpa(BOOT_CMDLINE_ADDR, 1)[0], 0, "empty command line");
}

static void check_pvh(int descsz)
{
	mem(128);
	uint8_t f[0x4000];
	size_t len = build_elf(f, (struct elf_opts){.pvh_descsz = descsz});
	uint8_t rd[10000];
	for (size_t i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t)(i ^ 0x5a);
	struct boot_info bi;
	struct errbuf e;
	cr_assert_eq(load(tmp_file(f, len), tmp_file(rd, sizeof(rd)), "pvh", &bi, &e), 0, "%s",
	             e.msg);
	cr_assert_eq(bi.mode, BOOT_PVH);
	cr_assert_eq(bi.entry, ELF_PADDR + 0x20);
	cr_assert_eq(bi.params_gpa, BOOT_PVH_INFO_ADDR);

	/* the initrd: page-aligned, as high as possible in low RAM, above the kernel */
	cr_assert_eq(bi.initrd_size, sizeof(rd));
	cr_assert_eq(bi.initrd_gpa, ALIGN_DOWN(MIB(128) - sizeof(rd), 4096));
	cr_assert_geq(bi.initrd_gpa, bi.kernel_end);
	cr_assert_eq(memcmp(gpa(bi.initrd_gpa, sizeof(rd)), rd, sizeof(rd)), 0);

	struct hvm_start_info *si = (void *)gpa(BOOT_PVH_INFO_ADDR, sizeof(*si));
	cr_assert_eq(si->magic, 0x336ec578);
	cr_assert_eq(si->version, 1);
	cr_assert_str_eq((char *)gpa(si->cmdline_paddr, 1), "pvh");
	cr_assert_eq(si->nr_modules, 1);
	struct hvm_modlist_entry *mod = (void *)gpa(si->modlist_paddr, sizeof(*mod));
	cr_assert_eq(mod->paddr, bi.initrd_gpa);
	cr_assert_eq(mod->size, sizeof(rd));

	struct e820_entry want[8];
	int n = gm_e820(&gm, want, 8);
	cr_assert_eq(si->memmap_entries, (uint32_t)n);
	struct hvm_memmap_table_entry *mm = (void *)gpa(si->memmap_paddr, n * sizeof(*mm));
	for (int i = 0; i < n; i++) {
		cr_assert_eq(mm[i].addr, want[i].addr);
		cr_assert_eq(mm[i].size, want[i].size);
		cr_assert_eq(mm[i].type, want[i].type);
	}
}

Test(boot, elf_pvh_note_8_byte_with_initrd)
{
	check_pvh(8);
}

Test(boot, elf_pvh_note_4_byte_with_initrd)
{
	check_pvh(4);
}

Test(boot, elf_errors)
{
	mem(64);
	uint8_t f[0x4000];
	struct boot_info bi;
	struct errbuf e;
	size_t len = build_elf(f, (struct elf_opts){0});
	int ret = load(tmp_file(f, 40), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "truncated ELF header");

	((Elf64_Ehdr *)f)->e_phoff = len - 8;
	ret = load(tmp_file(f, len), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "program headers [0x2ff8, 0x3030) extend beyond");

	len = build_elf(f, (struct elf_opts){.paddr = GIB(1)});
	ret = load(tmp_file(f, len), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "segment 0 at [0x40000000, 0x40003000) is outside guest RAM");

	len = build_elf(f, (struct elf_opts){.paddr = GIB(5)});
	ret = load(tmp_file(f, len), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "ends above 4 GiB");

	len = build_elf(f, (struct elf_opts){.paddr = 0x8000, .entry = 0x8000});
	ret = load(tmp_file(f, len), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "overlaps the low boot area");

	len = build_elf(f, (struct elf_opts){.machine = EM_386});
	ret = load(tmp_file(f, len), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "ELF machine 3 is not x86_64");

	len = build_elf(f, (struct elf_opts){.class = ELFCLASS32});
	ret = load(tmp_file(f, len), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "32-bit ELF");

	len = build_elf(f, (struct elf_opts){0});
	ret = load(tmp_file(f, len - 1), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "segment 0: file bytes [0x1000, 0x3000) extend beyond");

	len = build_elf(f, (struct elf_opts){.entry = 0x5000000});
	ret = load(tmp_file(f, len), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "entry point 0x5000000 is in no PT_LOAD segment");

	len = build_elf(f, (struct elf_opts){.pvh_descsz = 8});
	((Elf64_Nhdr *)(f + 0x200))->n_descsz = 64; /* runs past the note segment */
	ret = load(tmp_file(f, len), NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "runs past its segment");
}

/*
 * Issue 9: a note whose descriptor padding runs past the end of its
 * segment (an 18-byte PT_NOTE, the last bytes of the file) is the
 * segment's last note: the next note header is not read beyond it.
 */
Test(boot, elf_note_padding_past_the_segment_end)
{
	mem(64);
	uint8_t f[0x4000];
	struct boot_info bi;
	struct errbuf e;
	size_t len = build_elf(f, (struct elf_opts){.pvh_descsz = 8});
	Elf64_Phdr *note = (Elf64_Phdr *)(f + sizeof(Elf64_Ehdr)) + 1;
	note->p_offset = len;
	note->p_filesz = 18;
	/* "GNU", 2 bytes of descriptor at 16..18, its padding would end at 20 */
	Elf64_Nhdr nh = {.n_namesz = 4, .n_descsz = 2, .n_type = 1};
	memcpy(f + len, &nh, sizeof(nh));
	memcpy(f + len + 12, "GNU", 4);
	memcpy(f + len + 16, "\x01\x02", 2);
	int ret = load(tmp_file(f, len + 18), NULL, NULL, &bi, &e);
	cr_assert_eq(ret, 0, "%s", e.msg);
	cr_assert_eq(bi.mode, BOOT_LINUX64, "no PVH note");
}

Test(boot, not_a_kernel_and_missing_files)
{
	mem(64);
	struct boot_info bi;
	struct errbuf e;
	const char *text = tmp_file("hello, world\n", 13);
	int ret = load(text, NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOEXEC, "not an ELF vmlinux or a bzImage");
	cr_assert_not_null(strstr(e.msg, text));

	ret = load("/nonexistent/vmlinux", NULL, NULL, &bi, &e);
	assert_fails(ret, e, ENOENT, "/nonexistent/vmlinux");
	cr_assert_not_null(strstr(e.msg, strerror(ENOENT)), "%s", e.msg);

	uint8_t f[0x4000];
	const char *k = tmp_file(f, build_elf(f, (struct elf_opts){0}));
	ret = load(k, "/nonexistent/initrd", NULL, &bi, &e);
	assert_fails(ret, e, ENOENT, "initrd /nonexistent/initrd: No such file");

	/* a sparse 80 MiB initrd cannot fit in 64 MiB */
	ret = load(k, tmp_file(NULL, MIB(80)), NULL, &bi, &e);
	assert_fails(ret, e, ENOSPC, "(83886080 bytes) does not fit below 0x4000000");

	struct boot_config cfg = {k, NULL, NULL, 0};
	cr_assert_eq(boot_load(&gm, &cfg, &bi, &e), -EINVAL);
	cfg.nr_vcpus = VM_MAX_VCPUS + 1;
	cr_assert_eq(boot_load(&gm, &cfg, &bi, &e), -EINVAL);
}

Test(boot, cmdline_too_long)
{
	mem(64);
	uint8_t f[0x4000];
	const char *k = tmp_file(f, build_elf(f, (struct elf_opts){0}));
	char line[BOOT_CMDLINE_MAX + 1];
	memset(line, 'x', sizeof(line));
	line[BOOT_CMDLINE_MAX] = 0;
	struct boot_info bi;
	struct errbuf e;
	int ret = load(k, NULL, line, &bi, &e);
	assert_fails(ret, e, E2BIG, "command line is 2048 bytes, longer than kiln's limit of 2047");
	line[BOOT_CMDLINE_MAX - 1] = 0;
	cr_assert_eq(load(k, NULL, line, &bi, &e), 0, "%s", e.msg);
	cr_assert_eq(strlen((char *)gpa(BOOT_CMDLINE_ADDR, BOOT_CMDLINE_MAX)),
	             BOOT_CMDLINE_MAX - 1);
}

/* ------------------------------------------------------------ bzImage */

Test(boot, bzimage_good)
{
	mem(64);
	static uint8_t f[BZ_LEN];
	build_bzimage(f);
	bz_hdr(f)->setup_sects = 0; /* "0 means 4" */
	uint8_t rd[5000];
	memset(rd, 0x3c, sizeof(rd));
	struct boot_info bi;
	struct errbuf e;
	cr_assert_eq(load(tmp_file(f, BZ_LEN), tmp_file(rd, sizeof(rd)), "root=/dev/vda", &bi, &e),
	             0, "%s", e.msg);
	cr_assert_eq(bi.format, BOOT_FORMAT_BZIMAGE);
	cr_assert_eq(bi.mode, BOOT_LINUX64);
	cr_assert_eq(bi.entry, 0x100200);
	cr_assert_eq(bi.kernel_start, 0x100000);
	cr_assert_eq(bi.kernel_end, 0x1800000, "pref_address + init_size");
	cr_assert_eq(memcmp(gpa(0x100000, BZ_PM_SIZE), f + BZ_SETUP_SIZE, BZ_PM_SIZE), 0);

	struct boot_params *zp = (void *)gpa(bi.params_gpa, 4096);
	/* the header is the file's but for vid_mode (0x1fa) and the loader's fields */
	cr_assert_eq(memcmp(&zp->hdr.root_flags, f + 0x1f2, 0x1fa - 0x1f2), 0, "header copied");
	cr_assert_eq(memcmp(&zp->hdr.root_dev, f + 0x1fc, 0x210 - 0x1fc), 0, "header copied");
	cr_assert_eq(zp->hdr.vid_mode, 0xffff);
	cr_assert_eq(zp->hdr.version, 0x020f);
	cr_assert_eq(zp->hdr.xloadflags, BOOT_XLF_KERNEL_64 | 0x2);
	cr_assert_eq(zp->hdr.kernel_alignment, 0x200000);
	cr_assert_eq(zp->hdr.type_of_loader, 0xff);
	cr_assert_eq(zp->hdr.loadflags, BOOT_LOADED_HIGH | BOOT_CAN_USE_HEAP);
	cr_assert_eq(zp->hdr.heap_end_ptr, 0xde00);
	cr_assert_eq(zp->hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	cr_assert_str_eq((char *)gpa(BOOT_CMDLINE_ADDR, 1), "root=/dev/vda");
	cr_assert_eq(zp->hdr.ramdisk_image, bi.initrd_gpa);
	cr_assert_eq(zp->hdr.ramdisk_size, sizeof(rd));
	cr_assert_eq(zp->ext_ramdisk_image, 0);
	cr_assert_eq(bi.initrd_gpa, ALIGN_DOWN(MIB(64) - sizeof(rd), 4096));
	check_e820(zp->e820_table, zp->e820_entries);
}

/* loading `len` bytes of `f` fails with `err` and a message containing `text` */
static void bz_refused(const uint8_t *f, size_t len, const char *cmdline, int err, const char *text)
{
	struct boot_info bi;
	struct errbuf e;
	int ret = load(tmp_file(f, len), NULL, cmdline, &bi, &e);
	assert_fails(ret, e, err, text);
}

Test(boot, bzimage_errors)
{
	mem(64);
	static uint8_t f[BZ_LEN];
	build_bzimage(f);
	memcpy(f + 0x202, "HdrX", 4);
	bz_refused(f, BZ_LEN, NULL, ENOEXEC, "not an ELF vmlinux or a bzImage");
	build_bzimage(f);
	bz_hdr(f)->version = 0x020b;
	bz_refused(f, BZ_LEN, NULL, ENOEXEC, "boot protocol 2.11 is too old");
	build_bzimage(f);
	bz_hdr(f)->xloadflags = 0x2;
	bz_refused(f, BZ_LEN, NULL, ENOEXEC, "XLF_KERNEL_64 not set");
	build_bzimage(f);
	bz_hdr(f)->loadflags = 0;
	bz_refused(f, BZ_LEN, NULL, ENOEXEC, "LOADED_HIGH");
	build_bzimage(f);
	bz_refused(f, BZ_LEN - 16, NULL, ENOEXEC, "syssize says 16384");
	bz_hdr(f)->init_size = 0x4000000; /* 64 MiB at 16 MiB */
	bz_refused(f, BZ_LEN, NULL, ENOEXEC, "needs init_size 67108864 bytes at 0x1000000");
	build_bzimage(f);
	bz_hdr(f)->cmdline_size = 16;
	bz_refused(f, BZ_LEN, "console=ttyS0 abc", E2BIG,
	           "17 bytes, longer than the kernel's cmdline_size limit of 16");

	struct boot_info bi;
	struct errbuf e;
	int ret = load(tmp_file(f, BZ_LEN), NULL, "console=ttyS0 ab", &bi, &e);
	cr_assert_eq(ret, 0, "%s", e.msg); /* exactly 16 */

	/* initrd_addr_max below the decompression area's end (24 MiB) */
	build_bzimage(f);
	bz_hdr(f)->initrd_addr_max = 0x1ffffff;
	ret = load(tmp_file(f, BZ_LEN), tmp_file(NULL, MIB(9)), NULL, &bi, &e);
	assert_fails(ret, e, ENOSPC, "(9437184 bytes) does not fit below 0x2000000");
	ret = load(tmp_file(f, BZ_LEN), tmp_file(NULL, MIB(7)), NULL, &bi, &e);
	cr_assert_eq(ret, 0, "%s", e.msg);
	cr_assert_eq(bi.initrd_gpa, 0x2000000 - MIB(7));
}

/* ------------------------------------------------------------ MP table */

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s += *p++;
	return s;
}

static void check_mptable(unsigned nr)
{
	uint8_t buf[1024];
	memset(buf, 0xee, sizeof(buf));
	int n = boot_mptable_write(buf, sizeof(buf), GM_EBDA_START, nr);
	cr_assert_eq(n, (int)boot_mptable_size(nr));
	cr_assert_leq(GM_EBDA_START + n, 0xa0000);
	cr_assert_eq(memcmp(buf, "_MP_", 4), 0);
	cr_assert_eq(sum(buf, 16), 0, "floating pointer checksum");
	uint32_t physptr;
	memcpy(&physptr, buf + 4, 4);
	cr_assert_eq(physptr, GM_EBDA_START + 16);
	cr_assert_eq(buf[8], 1);
	cr_assert_eq(buf[9], 4);

	uint8_t *t = buf + 16;
	uint16_t length, count;
	memcpy(&length, t + 4, 2);
	memcpy(&count, t + 34, 2);
	cr_assert_eq(memcmp(t, "PCMP", 4), 0);
	cr_assert_eq(16 + length, n);
	cr_assert_eq(sum(t, length), 0, "configuration table checksum");
	cr_assert_eq(count, nr + 1 + 1 + 24 + 2);

	unsigned cpus = 0, buses = 0, ioapics = 0, irqs = 0, lints = 0;
	uint8_t *p = t + 44;
	for (unsigned i = 0; i < count; i++) {
		switch (p[0]) {
		case 0:
			cr_assert_eq(p[1], cpus, "APIC id = index");
			cr_assert_eq(p[3], cpus == 0 ? 3 : 1, "enabled, BSP only on 0");
			cpus++;
			p += 20;
			continue;
		case 1:
			cr_assert_eq(memcmp(p + 2, "ISA   ", 6), 0);
			buses++;
			break;
		case 2: {
			uint32_t addr;
			memcpy(&addr, p + 4, 4);
			cr_assert_eq(p[1], nr, "IOAPIC id after the CPUs");
			cr_assert_eq(addr, 0xfec00000);
			ioapics++;
			break;
		}
		case 3:
			cr_assert_eq(p[5], irqs, "source IRQ");
			cr_assert_eq(p[6], nr, "to the IOAPIC");
			cr_assert_eq(p[7], irqs, "pin = IRQ");
			irqs++;
			break;
		case 4:
			cr_assert_eq(p[1], lints == 0 ? 3 : 1, "ExtINT then NMI");
			cr_assert_eq(p[7], lints, "LINT0 then LINT1");
			lints++;
			break;
		default:
			cr_assert_fail("unknown entry type %u", p[0]);
		}
		p += 8;
	}
	cr_assert_eq(p - t, length);
	cr_assert(cpus == nr && buses == 1 && ioapics == 1 && irqs == 24 && lints == 2);
}

Test(boot, mptable_1_2_32_vcpus)
{
	check_mptable(1);
	check_mptable(2);
	check_mptable(32);
	uint8_t buf[1024];
	cr_assert_eq(boot_mptable_write(buf, sizeof(buf), GM_EBDA_START, 0), -EINVAL);
	cr_assert_eq(boot_mptable_write(buf, sizeof(buf), GM_EBDA_START, 33), -EINVAL);
	cr_assert_eq(boot_mptable_write(buf, 100, GM_EBDA_START, 1), -ENOSPC);
}

/* ------------------------------------------------------------ BSP state */

/* walk the identity page tables kiln wrote */
static uint64_t translate(uint64_t va)
{
	uint64_t *pml4 = (void *)gpa(BOOT_PML4_ADDR, 4096);
	uint64_t pdpte = ((uint64_t *)gpa(pml4[va >> 39 & 511] & ~0xfffull, 4096))[va >> 30 & 511];
	uint64_t pde = ((uint64_t *)gpa(pdpte & ~0xfffull, 4096))[va >> 21 & 511];
	cr_assert_eq(pde & 0x83, 0x83, "present, writable, 2 MiB");
	return (pde & ~0x1fffffull & ((1ull << 52) - 1)) | (va & 0x1fffff);
}

/* the BSP state for `mode`, checking what both modes share */
static void bsp_state(enum boot_mode mode, uint64_t entry, uint64_t params, struct kvm_regs *regs,
                      struct kvm_sregs *s)
{
	mem(64);
	struct boot_info bi = {.mode = mode, .entry = entry, .params_gpa = params};
	memset(s, 0, sizeof(*s));
	cr_assert_eq(boot_bsp_state(&gm, &bi, regs, s), 0);
	cr_assert_eq(regs->rip, entry);
	cr_assert_eq(regs->rflags, 2);
	cr_assert(s->cs.base == 0 && s->cs.limit == 0xffffffff && s->cs.type == 0xb);
	cr_assert(s->tr.type == 11 && s->tr.base == 0 && s->tr.limit == 0x67 && !s->tr.s);
	cr_assert(s->ss.selector == 0x18 && s->ss.db == 1 && s->ds.limit == 0xffffffff);
}

Test(boot, bsp_state_linux64)
{
	struct kvm_regs regs;
	struct kvm_sregs s;
	bsp_state(BOOT_LINUX64, 0x1000000, 0x7000, &regs, &s);
	cr_assert_eq(regs.rsi, 0x7000);
	cr_assert_eq(s.cs.selector, 0x10);
	cr_assert(s.cs.l == 1 && s.cs.db == 0 && s.cs.present && s.cs.s && s.cs.g);
	cr_assert(s.ds.selector == 0x18 && s.es.selector == 0x18 && s.ds.type == 3);
	cr_assert_eq(s.tr.selector, 0x20);
	cr_assert_eq(s.cr0 & 0x80000001, 0x80000001);
	cr_assert_eq(s.cr3, BOOT_PML4_ADDR);
	cr_assert_eq(s.cr4, 0x20);
	cr_assert_eq(s.efer, 0x500);
	cr_assert_eq(s.gdt.base, BOOT_GDT_ADDR);
	uint64_t *gdt = (void *)gpa(s.gdt.base, s.gdt.limit + 1);
	cr_assert_eq(gdt[2], 0x00af9b000000ffffull);
	cr_assert_eq(gdt[3], 0x00cf93000000ffffull);
	uint64_t probes[] = {0, 0x7000, 0x1000000, 0x3fffffff, 0xbfe00123, 0xffffffff};
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++)
		cr_assert_eq(translate(probes[i]), probes[i]);
}

Test(boot, bsp_state_pvh)
{
	struct kvm_regs regs;
	struct kvm_sregs s;
	bsp_state(BOOT_PVH, 0x1000850, 0x6000, &regs, &s);
	cr_assert_eq(regs.rbx, 0x6000);
	cr_assert(s.cs.selector == 0x08 && s.cs.db == 1 && s.cs.l == 0);
	cr_assert_eq(s.cr0, 0x11);
	cr_assert(s.cr4 == 0 && s.efer == 0);
	struct boot_info bi = {.mode = BOOT_PVH, .entry = GIB(5)};
	cr_assert_eq(boot_bsp_state(&gm, &bi, &regs, &s), -EINVAL);
}

/* ------------------------------------------------ a real vCPU enters */

/*
 * Loads `code` as a tiny ELF kernel, enters it through boot_setup_bsp on a
 * real KVM vCPU, and returns the 4-byte value the code writes to port
 * 0xe9 (it reads the zero page through rsi, or the start info through ebx).
 */
static uint32_t run_guest(const uint8_t *code, size_t code_len, bool pvh)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		cr_skip_test("no /dev/kvm: %s", strerror(errno));
	mem(64);
	uint8_t f[0x4000];
	size_t len = build_elf(f, (struct elf_opts){.pvh_descsz = pvh ? 8 : 0});
	memcpy(f + ELF_DATAOFF + (pvh ? 0x20 : 0x10), code, code_len);
	struct boot_info bi;
	struct errbuf e;
	cr_assert_eq(load(tmp_file(f, len), NULL, "x", &bi, &e), 0, "%s", e.msg);
	cr_assert_eq(bi.mode, pvh ? BOOT_PVH : BOOT_LINUX64);

	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	cr_assert_geq(vm, 0);
	cr_assert_eq(ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul), 0);
	cr_assert_eq(gm_register(&gm, vm, false), 0);
	struct vcpu v = {.id = 0, .fd = ioctl(vm, KVM_CREATE_VCPU, 0)};
	cr_assert_geq(v.fd, 0);
	struct {
		struct kvm_cpuid2 c;
		struct kvm_cpuid_entry2 e[256];
	} cpuid = {.c.nent = 256};
	cr_assert_eq(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid), 0);
	cr_assert_eq(ioctl(v.fd, KVM_SET_CPUID2, &cpuid), 0);
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v.fd, 0);
	cr_assert_neq(run, MAP_FAILED);

	cr_assert_eq(boot_setup_bsp(&v, &gm, &bi), 0);
	cr_assert_eq(ioctl(v.fd, KVM_RUN, 0), 0);
	cr_assert_eq(run->exit_reason, KVM_EXIT_IO, "exit %u", run->exit_reason);
	cr_assert(run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0xe9 &&
	          run->io.size == 4);
	uint32_t val;
	memcpy(&val, (uint8_t *)run + run->io.data_offset, 4);
	munmap(run, run_size);
	close(v.fd);
	close(vm);
	close(kvm);
	return val;
}

Test(boot, kvm_enters_64bit_with_zero_page)
{
	/* mov eax, [rsi + 0x202]; out 0xe9, eax; hlt */
	static const uint8_t code[] = {0x8b, 0x86, 0x02, 0x02, 0x00, 0x00, 0xe7, 0xe9, 0xf4};
	cr_assert_eq(run_guest(code, sizeof(code), false), BOOT_HDRS_MAGIC);
}

Test(boot, kvm_enters_pvh_with_start_info)
{
	/* mov eax, [ebx]; out 0xe9, eax; hlt */
	static const uint8_t code[] = {0x8b, 0x03, 0xe7, 0xe9, 0xf4};
	cr_assert_eq(run_guest(code, sizeof(code), true), PVH_START_MAGIC);
}

/* ----------------------------------------------- Debian's real kernel */

/* reads Debian's `name` into *file and loads it into 256 MiB; skips when absent */
static void load_cached(const char *name, char **file, size_t *len, struct boot_info *bi)
{
	const char *root = getenv("KILN_SOURCE_ROOT");
	static char path[4096];
	snprintf(path, sizeof(path), "%s/tests/linux/cache/%s", root ? root : ".", name);
	if (access(path, R_OK) != 0)
		cr_skip_test("%s is absent: run scripts/fetch-linux.sh to fetch Debian's kernel",
		             path);
	struct errbuf e;
	cr_assert_eq(read_file(path, GIB(1), file, len, &e), 0, "%s", e.msg);
	mem(256);
	cr_assert_eq(load(path, NULL, "console=ttyS0", bi, &e), 0, "%s", e.msg);
}

Test(boot, debian_bzimage)
{
	char *file;
	size_t len;
	struct boot_info bi;
	load_cached("bzImage", &file, &len, &bi);
	struct boot_setup_header h;
	memcpy(&h, file + BOOT_HDR_OFFSET, sizeof(h));
	cr_assert_geq(h.version, 0x020c);
	cr_assert(h.xloadflags & BOOT_XLF_KERNEL_64);
	size_t setup = ((h.setup_sects ? h.setup_sects : 4) + 1) * 512ul;

	cr_assert_eq(bi.format, BOOT_FORMAT_BZIMAGE);
	cr_assert_eq(bi.entry, 0x100200);
	cr_assert_eq(memcmp(gpa(0x100000, len - setup), file + setup, len - setup), 0);
	struct boot_params *zp = (void *)gpa(bi.params_gpa, 4096);
	cr_assert_eq(zp->hdr.version, h.version);
	cr_assert_eq(zp->hdr.setup_sects, h.setup_sects);
	cr_assert_eq(zp->hdr.xloadflags, h.xloadflags);
	cr_assert_eq(zp->hdr.init_size, h.init_size);
	cr_assert_eq(bi.kernel_end, h.pref_address + h.init_size);
	free(file);
}

Test(boot, debian_vmlinux_pvh)
{
	char *file;
	size_t len;
	struct boot_info bi;
	load_cached("vmlinux", &file, &len, &bi);
	cr_assert_eq(bi.mode, BOOT_PVH, "Debian's vmlinux has the PVH note");
	cr_assert(bi.entry >= bi.kernel_start && bi.entry < bi.kernel_end);
	Elf64_Ehdr eh;
	memcpy(&eh, file, sizeof(eh));
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, file + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD)
			cr_assert_eq(memcmp(gpa(ph.p_paddr, ph.p_filesz), file + ph.p_offset,
			                    ph.p_filesz),
			             0, "segment %u", i);
	}
	free(file);
}
