// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/boot.c: boot_load() -- reads the kernel, tells an ELF from a
 * bzImage, places the command line, the initrd, the zero page or PVH start
 * info, the MP table and the ACPI tables -- and the BSP's entry state (GDT,
 * identity page tables, long mode or flat 32-bit protected mode).
 */
#include "vcpu/boot_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_MODULE "boot"

#define EBDA_END 0xa0000ull /* the EBDA runs up to the 640 KiB line */

/* the top of RAM below the MMIO hole: region 0 always starts at 0 */
static uint64_t low_ram_top(const struct guest_mem *gm)
{
	return gm->nr_regions ? gm->regions[0].gpa + gm->regions[0].size : 0;
}

/*
 * The initrd goes page-aligned as high as it can in low RAM, below
 * initrd_addr_max ("the highest address that may be occupied by the
 * initial ramdisk", boot.rst) and above the kernel, read straight into
 * guest memory.
 */
static int load_initrd(struct guest_mem *gm, const char *path, const struct boot_kernel *k,
                       struct boot_info *bi, struct errbuf *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errf(e, errno, "initrd %s: %s", path, strerror(errno));
	int ret;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		ret = errf(e, errno, "initrd %s: %s", path, strerror(errno));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		ret = errf(e, EINVAL, "initrd %s: %s", path,
		           S_ISREG(st.st_mode) ? "the file is empty" : "not a regular file");
		goto err_close;
	}
	uint64_t size = (uint64_t)st.st_size;
	uint64_t limit = low_ram_top(gm);
	if (k->initrd_addr_max < limit - 1)
		limit = k->initrd_addr_max + 1ull;
	uint64_t gpa = size <= limit ? ALIGN_DOWN(limit - size, GM_PAGE_SIZE) : 0;
	uint8_t *dst = gm_ptr(gm, gpa, size);
	if (size > limit || gpa < k->end || !dst) {
		ret = errf(e, ENOSPC,
		           "initrd %s (%llu bytes) does not fit below 0x%llx above the kernel's "
		           "end at 0x%llx",
		           path, (unsigned long long)size, (unsigned long long)limit,
		           (unsigned long long)k->end);
		goto err_close;
	}
	for (uint64_t got = 0; got < size;) {
		ssize_t n = pread(fd, dst + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = errf(e, n < 0 ? errno : EIO, "initrd %s: %s", path,
			           n < 0 ? strerror(errno) : "the file shrank while reading");
			goto err_close;
		}
		got += (uint64_t)n;
	}
	close(fd);
	bi->initrd_gpa = gpa;
	bi->initrd_size = size;
	return 0;

err_close:
	close(fd);
	return ret;
}

static int write_cmdline(struct guest_mem *gm, const char *cmdline, size_t max, const char *whose,
                         struct errbuf *e)
{
	size_t len = strlen(cmdline);
	if (len > max)
		return errf(e, E2BIG, "command line is %zu bytes, longer than %s limit of %zu", len,
		            whose, max);
	char *dst = gm_ptr(gm, BOOT_CMDLINE_ADDR, len + 1);
	if (!dst)
		return errf(e, EFAULT, "no guest RAM for the command line at 0x%llx",
		            BOOT_CMDLINE_ADDR);
	memcpy(dst, cmdline, len + 1);
	return 0;
}

static int write_mptable(struct guest_mem *gm, unsigned nr_vcpus, struct errbuf *e)
{
	void *ebda = gm_ptr(gm, GM_EBDA_START, EBDA_END - GM_EBDA_START);
	if (!ebda)
		return errf(e, EFAULT, "no guest RAM for the MP table at 0x%llx", GM_EBDA_START);
	int n = boot_mptable_write(ebda, EBDA_END - GM_EBDA_START, GM_EBDA_START, nr_vcpus);
	if (n < 0)
		return errf(e, -n, "the MP table for %u vCPUs does not fit in the EBDA", nr_vcpus);
	return 0;
}

static int write_acpi(struct guest_mem *gm, const struct boot_config *cfg, struct errbuf *e)
{
	uint64_t len = BOOT_ACPI_END - BOOT_ACPI_RSDP_ADDR;
	void *bios = gm_ptr(gm, BOOT_ACPI_RSDP_ADDR, len);
	if (!bios)
		return errf(e, EFAULT, "no guest RAM for the ACPI tables at 0x%llx",
		            BOOT_ACPI_RSDP_ADDR);
	int n = boot_acpi_write(bios, len, BOOT_ACPI_RSDP_ADDR, cfg->nr_vcpus, cfg->devices);
	if (n == -ENOSPC)
		return errf(
		        e, ENOSPC,
		        "the ACPI tables for %u vCPUs and %u virtio devices do not fit at 0x%llx",
		        cfg->nr_vcpus, cfg->devices ? cfg->devices->nr_virtio : 0,
		        BOOT_ACPI_RSDP_ADDR);
	if (n < 0)
		return errf(e, -n, "the ACPI tables cannot describe %u vCPUs and %u virtio devices",
		            cfg->nr_vcpus, cfg->devices ? cfg->devices->nr_virtio : 0);
	return 0;
}

static int check_config(const struct guest_mem *gm, const struct boot_config *cfg, struct errbuf *e)
{
	if (!cfg->kernel_path || !cfg->kernel_path[0])
		return errf(e, EINVAL, "no kernel image path");
	if (cfg->nr_vcpus == 0 || cfg->nr_vcpus > VM_MAX_VCPUS)
		return errf(e, EINVAL, "%u vCPUs: kiln boots 1 to %u", cfg->nr_vcpus, VM_MAX_VCPUS);
	if (cfg->cmdline && strlen(cfg->cmdline) > BOOT_CMDLINE_MAX - 1)
		return errf(e, E2BIG, "command line is %zu bytes, longer than kiln's limit of %u",
		            strlen(cfg->cmdline), BOOT_CMDLINE_MAX - 1);
	if (!gm_ptr(gm, 0, GM_HIMEM_START))
		return errf(e, EINVAL, "guest RAM (%llu KiB) does not cover the first MiB",
		            (unsigned long long)(gm->ram_size >> 10));
	return 0;
}

int boot_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_info *out,
              struct errbuf *e)
{
	int ret = check_config(gm, cfg, e);
	if (ret)
		return ret;

	const char *path = cfg->kernel_path;
	char *buf;
	size_t len;
	struct errbuf rf;
	ret = read_file(path, gm->ram_size, &buf, &len, &rf);
	if (ret)
		return errf(e, -ret, "kernel: %s", rf.msg);

	struct boot_kernel k;
	if (boot_is_elf((uint8_t *)buf, len))
		ret = boot_elf_load(gm, path, (uint8_t *)buf, len, &k, e);
	else if (boot_is_bzimage((uint8_t *)buf, len))
		ret = boot_bzimage_load(gm, path, (uint8_t *)buf, len, &k, e);
	else
		ret = errf(e, ENOEXEC, "kernel %s: not an ELF vmlinux or a bzImage", path);
	if (ret)
		goto out;

	struct boot_info bi = {
	        .mode = k.mode,
	        .entry = k.entry,
	        .kernel_start = k.start,
	        .kernel_end = k.end,
	        .format = k.format,
	};
	ret = write_cmdline(
	        gm, cfg->cmdline ? cfg->cmdline : "", k.cmdline_max,
	        k.format == BOOT_FORMAT_BZIMAGE ? "the kernel's cmdline_size" : "kiln's", e);
	if (ret)
		goto out;
	if (cfg->initrd_path) {
		ret = load_initrd(gm, cfg->initrd_path, &k, &bi, e);
		if (ret)
			goto out;
	}
	if (k.mode == BOOT_PVH)
		ret = boot_write_pvh_info(gm, &bi, &bi.params_gpa, e);
	else
		ret = boot_write_zero_page(gm, &k, &bi, &bi.params_gpa, e);
	if (ret)
		goto out;
	ret = write_mptable(gm, cfg->nr_vcpus, e);
	if (ret)
		goto out;
	/*
	 * for kernels without CONFIG_X86_MPPARSE or
	 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES; the params point at the RSDP
	 */
	ret = write_acpi(gm, cfg, e);
	if (ret)
		goto out;
	*out = bi;
out:
	free(buf);
	return ret;
}

/* ------------------------------------------------------------ BSP state */

/*
 * One GDT serves both modes: the 32-bit code segment for PVH, the 64-bit
 * one at Linux's __BOOT_CS (0x10), flat data at __BOOT_DS (0x18), and a
 * busy TSS of 0x68 bytes at base 0 (the PVH ABI's "32-bit TSS (active)";
 * in long mode the same type means a busy 64-bit TSS, whose upper half is
 * the zero entry after it).
 */
static const uint64_t boot_gdt[] = {
        [0] = 0,
        [BOOT_SEL_CODE32 / 8] = 0x00cf9b000000ffffull, /* G, D, P, code exec/read */
        [BOOT_SEL_CODE64 / 8] = 0x00af9b000000ffffull, /* G, L, P, code exec/read */
        [BOOT_SEL_DATA / 8] = 0x00cf93000000ffffull,   /* G, B, P, data read/write */
        [BOOT_SEL_TSS / 8] = 0x00008b0000000067ull,    /* P, busy TSS, limit 0x67 */
        [BOOT_SEL_TSS / 8 + 1] = 0,
};

/* the cached part of a segment register, as loading `sel` from boot_gdt would set it */
static struct kvm_segment seg_from_gdt(uint16_t sel)
{
	uint64_t d = boot_gdt[sel / 8];
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	struct kvm_segment s = {
	        .base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000),
	        .selector = sel,
	        .type = (d >> 40) & 0xf,
	        .s = (d >> 44) & 1,
	        .dpl = (d >> 45) & 3,
	        .present = (d >> 47) & 1,
	        .avl = (d >> 52) & 1,
	        .l = (d >> 53) & 1,
	        .db = (d >> 54) & 1,
	        .g = (d >> 55) & 1,
	};
	s.limit = s.g ? (limit << 12) | 0xfff : limit;
	s.unusable = !s.present;
	return s;
}

/* PML4 -> one PDPT -> four page directories of 2 MiB pages: [0, 4 GiB) identity */
static int write_page_tables(struct guest_mem *gm)
{
	uint64_t *pml4 = gm_ptr(gm, BOOT_PML4_ADDR, GM_PAGE_SIZE);
	uint64_t *pdpt = gm_ptr(gm, BOOT_PDPT_ADDR, GM_PAGE_SIZE);
	uint64_t *pd = gm_ptr(gm, BOOT_PD_ADDR, 4 * GM_PAGE_SIZE);
	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, GM_PAGE_SIZE);
	memset(pdpt, 0, GM_PAGE_SIZE);
	pml4[0] = BOOT_PDPT_ADDR | 0x3; /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_ADDR + i * GM_PAGE_SIZE) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
	return 0;
}

#define CR0_PE   0x1ull
#define CR0_ET   0x10ull
#define CR0_PG   0x80000000ull
#define CR4_PAE  0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

int boot_bsp_state(struct guest_mem *gm, const struct boot_info *bi, struct kvm_regs *regs,
                   struct kvm_sregs *sregs)
{
	if (bi->mode != BOOT_LINUX64 && bi->mode != BOOT_PVH)
		return -EINVAL;
	if (bi->mode == BOOT_PVH && bi->entry > UINT32_MAX)
		return -EINVAL;
	void *gdt = gm_ptr(gm, BOOT_GDT_ADDR, sizeof(boot_gdt));
	if (!gdt)
		return -EFAULT;
	memcpy(gdt, boot_gdt, sizeof(boot_gdt));
	sregs->gdt.base = BOOT_GDT_ADDR;
	sregs->gdt.limit = sizeof(boot_gdt) - 1;
	sregs->idt.base = 0; /* no IDT: the kernel loads its own before enabling interrupts */
	sregs->idt.limit = 0;

	bool lm = bi->mode == BOOT_LINUX64;
	sregs->cs = seg_from_gdt(lm ? BOOT_SEL_CODE64 : BOOT_SEL_CODE32);
	sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = seg_from_gdt(BOOT_SEL_DATA);
	sregs->tr = seg_from_gdt(BOOT_SEL_TSS);

	memset(regs, 0, sizeof(*regs));
	regs->rflags = 0x2; /* bit 1 is reserved-one; IF, TF and VM clear */
	regs->rip = bi->entry;
	if (lm) {
		/* boot.rst "64-bit BOOT PROTOCOL": paging on, identity map, rsi = boot_params */
		int ret = write_page_tables(gm);
		if (ret)
			return ret;
		sregs->cr0 = CR0_PE | CR0_ET | CR0_PG;
		sregs->cr3 = BOOT_PML4_ADDR;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
		regs->rsi = bi->params_gpa;
		regs->rsp = regs->rbp = BOOT_STACK_TOP;
	} else {
		/* the PVH ABI: CR0.PE only (ET is fixed on), CR4 zero, ebx = start info */
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
		regs->rbx = bi->params_gpa;
	}
	return 0;
}

int boot_setup_bsp(struct vcpu *bsp, struct guest_mem *gm, const struct boot_info *bi)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	if (ioctl(bsp->fd, KVM_GET_SREGS, &sregs) < 0) {
		int ret = -errno;
		log_err("vCPU %u: KVM_GET_SREGS: %s", bsp->id, strerror(-ret));
		return ret;
	}
	int ret = boot_bsp_state(gm, bi, &regs, &sregs);
	if (ret) {
		log_err("vCPU %u: no boot state for mode %d, entry 0x%llx: %s", bsp->id, bi->mode,
		        (unsigned long long)bi->entry, strerror(-ret));
		return ret;
	}
	if (ioctl(bsp->fd, KVM_SET_SREGS, &sregs) < 0) {
		ret = -errno;
		log_err("vCPU %u: KVM_SET_SREGS: %s", bsp->id, strerror(-ret));
		return ret;
	}
	if (ioctl(bsp->fd, KVM_SET_REGS, &regs) < 0) {
		ret = -errno;
		log_err("vCPU %u: KVM_SET_REGS: %s", bsp->id, strerror(-ret));
		return ret;
	}
	return 0;
}
