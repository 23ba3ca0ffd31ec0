/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krt static tables: the GDT and the identity page tables, built by the
 * assembler so that no ring-0 loop has to write them (PLATFORM.md: ring-0
 * code is emulated). Every mapping has U/S set: ring 3 may touch all of
 * physical memory, the page tables and descriptor tables included.
 *
 *   krt_pml4[0] -> krt_pdpt_2m: 0-4 GiB through 4 page directories of 2 MiB
 *                  pages (krt_pd_low); slots 4..511 are filled from ring 3
 *                  for RAM above 4 GiB when the CPU has no 1 GiB pages
 *               or krt_pdpt_1g: 512 GiB in 1 GiB pages (chosen in boot.S
 *                  when CPUID says Page1GB)
 * The MMIO hole [3 GiB, 4 GiB) is mapped PCD|PWT (uncached with the reset
 * PAT, SDM vol. 3A s11.12.3).
 */
#include "arch.h"

	.section .data.tables, "aw", @progbits
	.balign 4096
	.globl krt_pml4
krt_pml4:
	.quad krt_pdpt_2m + KRT_PTE_TABLE
	.fill 511, 8, 0

	.globl krt_pdpt_2m
krt_pdpt_2m:
	.quad krt_pd_low + 0 * 4096 + KRT_PTE_TABLE
	.quad krt_pd_low + 1 * 4096 + KRT_PTE_TABLE
	.quad krt_pd_low + 2 * 4096 + KRT_PTE_TABLE
	.quad krt_pd_low + 3 * 4096 + KRT_PTE_TABLE
	.fill 508, 8, 0

krt_pd_low:
	.set i, 0
	.rept 2048
	.if i >= (KRT_HOLE_START >> 21)
	.quad (i << 21) + KRT_PTE_LEAF + KRT_PTE_UC
	.else
	.quad (i << 21) + KRT_PTE_LEAF
	.endif
	.set i, i + 1
	.endr

	.globl krt_pdpt_1g
krt_pdpt_1g:
	.set i, 0
	.rept 512
	.if i == (KRT_HOLE_START >> 30)
	.quad (i << 30) + KRT_PTE_LEAF + KRT_PTE_UC
	.else
	.quad (i << 30) + KRT_PTE_LEAF
	.endif
	.set i, i + 1
	.endr

/* GDT (SDM vol. 3A s3.4.5); the TSS descriptors are written at run time */
	.section .data, "aw", @progbits
	.balign 16
	.globl krt_gdt
krt_gdt:
	.quad 0
	.quad 0x00af9b000000ffff	/* 0x08 ring-0 code, 64-bit */
	.quad 0x00cf93000000ffff	/* 0x10 ring-0 data */
	.quad 0x00cff3000000ffff	/* 0x18 ring-3 data */
	.quad 0x00affb000000ffff	/* 0x20 ring-3 code, 64-bit */
	.quad 0x00cf9b000000ffff	/* 0x28 ring-0 code, 32-bit (AP trampoline) */
	.fill 2 * KRT_MAX_CPUS, 8, 0	/* 0x30 TSS descriptors, 16 bytes each */

	.balign 16
	.globl krt_gdt_ptr
krt_gdt_ptr:				/* lgdt reads 6 bytes in 32-bit mode, 10 in 64-bit */
	.word KRT_GDT_SIZE - 1
	.quad krt_gdt

	.balign 16
	.globl krt_idt_ptr
krt_idt_ptr:
	.word 256 * 16 - 1
	.quad krt_idt

	.section .bss, "aw", @nobits
	.balign 4096
	.globl krt_idt
krt_idt:
	.skip 256 * 16

	.section .note.GNU-stack, "", @progbits
