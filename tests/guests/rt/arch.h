/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krt (the kiln test-guest runtime): constants shared by the assembly
 * entry code and the C runtime. Internal to tests/guests/rt; guests include
 * krt.h only.
 */
#ifndef KRT_ARCH_H
#define KRT_ARCH_H

/* the most CPUs the runtime brings up (kiln's VM_MAX_VCPUS) */
#define KRT_MAX_CPUS 32

/*
 * The AP trampoline page (real mode: SIPI vector KRT_TRAMP_ADDR >> 12).
 * kiln uses 0x500 (GDT), 0x6000 (hvm_start_info), 0x7000 (zero page),
 * 0x8000 (stack), 0x9000-0xefff (page tables), 0x20000 (cmdline) and
 * 0x9fc00 (MP table) for the boot; 0x3000 is none of them, and the runtime
 * copies the boot information away before it writes the trampoline anyway.
 */
#define KRT_TRAMP_ADDR 0x3000

/* GDT selectors (Intel SDM vol. 3A s3.4.5, s7.2.3 for the 16-byte TSS descriptor) */
#define KRT_SEL_KCODE   0x08 /* 64-bit ring-0 code */
#define KRT_SEL_KDATA   0x10
#define KRT_SEL_UDATA   0x18 /* DPL 3, used as 0x1b */
#define KRT_SEL_UCODE   0x20 /* 64-bit DPL 3, used as 0x23 */
#define KRT_SEL_KCODE32 0x28 /* 32-bit ring-0 code, only for the AP trampoline */
#define KRT_SEL_TSS0    0x30 /* TSS of CPU i at KRT_SEL_TSS0 + 16 * i */
#define KRT_GDT_SIZE    (KRT_SEL_TSS0 + 16 * KRT_MAX_CPUS)

/*
 * The TSSs, KRT_TSS_STRIDE apart, followed by one I/O permission bitmap
 * they all share (each TSS's iomap_base is the distance to it). The bitmap
 * is all zeros: every port allowed. IOPL 3 alone is not enough on PVM
 * hosts: PVM takes RFLAGS back from the hardware at every exit, where IOPL
 * is always 0, and its instruction emulator then consults the bitmap.
 */
#define KRT_TSS_STRIDE     128
#define KRT_IOMAP_OFFSET   (KRT_TSS_STRIDE * KRT_MAX_CPUS)
#define KRT_IOMAP_SIZE     8192 /* 65536 ports, one bit each */
#define KRT_TSS_LIMIT(cpu) (KRT_IOMAP_OFFSET - KRT_TSS_STRIDE * (cpu) + KRT_IOMAP_SIZE)

/* per-CPU stacks */
#define KRT_KSTACK_SIZE 8192  /* rsp0 at the top, IST1 (exceptions) 4 KiB below */
#define KRT_USTACK_SIZE 32768 /* ring-3 stack */

/* interrupt vectors with a handler: the exceptions */
#define KRT_NR_EXCEPTIONS 32

/* page-table entry bits (SDM vol. 3A s4.5) */
#define KRT_PTE_P     0x001
#define KRT_PTE_RW    0x002
#define KRT_PTE_US    0x004
#define KRT_PTE_PWT   0x008
#define KRT_PTE_PCD   0x010
#define KRT_PTE_A     0x020
#define KRT_PTE_D     0x040
#define KRT_PTE_PS    0x080
#define KRT_PTE_TABLE (KRT_PTE_P | KRT_PTE_RW | KRT_PTE_US | KRT_PTE_A)
#define KRT_PTE_LEAF  (KRT_PTE_TABLE | KRT_PTE_D | KRT_PTE_PS)
#define KRT_PTE_UC    (KRT_PTE_PCD | KRT_PTE_PWT)

/* the local APIC (xAPIC MMIO, SDM vol. 3A s11.4.1), at its reset address */
#define KRT_LAPIC_BASE    0xfee00000
#define KRT_LAPIC_ID      0x020 /* bits 31:24 */
#define KRT_MSR_APIC_BASE 0x1b
#define KRT_APIC_BASE_BSP 8 /* bit: this is the bootstrap processor */

/* the 32-bit MMIO hole, mapped uncached */
#define KRT_HOLE_START 0xC0000000
#define KRT_HOLE_END   0x100000000

/* control registers and MSRs */
#define KRT_CR0_PE       0x00000001
#define KRT_CR0_ET       0x00000010
#define KRT_CR0_PG       0x80000000
#define KRT_CR4_PAE      0x00000020
#define KRT_MSR_EFER     0xC0000080
#define KRT_EFER_LME     0x00000100
#define KRT_MSR_GS_BASE  0xC0000101
#define KRT_RFLAGS_IOPL3 0x3000
#define KRT_RFLAGS_FIXED 0x0002

/* the boot paths, as passed from the entry code to krt_start() */
#define KRT_BOOT_PVH     1
#define KRT_BOOT_LINUX64 2

/* struct krt_percpu: offsets the assembly uses */
#define KRT_PERCPU_SIZE 64

#endif
