/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krt boot code: the two entries (PVH 32-bit and Linux 64-bit), the short
 * ring-0 path they share, the AP trampoline, the exception stubs and the
 * way back into ring 0 (krt_ring0, through #UD). Everything else runs in
 * ring 3.
 *
 * Ring-0 code is emulated instruction by instruction on PVM hosts (about
 * 1 us per instruction, /work/shared/PLATFORM.md), so this path does only
 * what needs ring 0: GDT, segments, CR3, TSS, IDTR, GS base and the iretq.
 * The page tables are static data (tables.S); the IDT gates and the AP's
 * TSSs are written from ring 3 (start.c, smp.c) into user-accessible pages.
 */
#include "arch.h"

#ifndef KRT_NO_PVH
	.section .note.Xen, "a", @note
	/* Xen PVH ABI: ELF note "Xen", XEN_ELFNOTE_PHYS32_ENTRY (18), the 32-bit entry */
	.balign 4
	.long 4			/* namesz, "Xen\0" */
	.long 4			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long krt_pvh_entry
	.balign 4
#endif

	.text
/*
 * PVH entry (Xen PVH ABI, "x86/HVM direct boot ABI"): flat 32-bit protected
 * mode, paging off, interrupts off, ebx = physical address of struct
 * hvm_start_info. No stack. Enter long mode on the static page tables.
 */
	.code32
	.globl krt_pvh_entry
krt_pvh_entry:
	cli
	cld
	lgdt krt_gdt_ptr
	mov $krt_pvh64, %ebp
	/* fall through */

/*
 * 32-bit protected mode on the runtime's GDT -> long mode on the static
 * page tables (SDM vol. 3A s10.8.5: PAE, CR3, EFER.LME, then CR0.PG), and
 * on to the 64-bit code at ebp. Shared by the PVH entry and the AP
 * trampoline; uses eax, ecx, edx only (ebx is PVH's start_info).
 */
krt_enter_long_mode:
	mov $KRT_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %cr4, %eax
	or $KRT_CR4_PAE, %eax
	mov %eax, %cr4
	mov $krt_pml4, %eax
	mov %eax, %cr3
	mov $KRT_MSR_EFER, %ecx
	rdmsr
	or $KRT_EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $(KRT_CR0_PG | KRT_CR0_PE), %eax
	mov %eax, %cr0
	ljmp $KRT_SEL_KCODE, $1f
	.code64
1:	mov %ebp, %eax			/* the upper halves are undefined after the switch */
	jmp *%rax

krt_pvh64:
	mov $KRT_BOOT_PVH, %edi
	mov %ebx, %esi			/* zero-extends: start_info is below 4 GiB */
	jmp krt_common

/*
 * Linux x86_64 boot protocol (Documentation/arch/x86/boot.rst, "64-bit boot
 * protocol"): long mode, identity paging of what is needed, a flat __BOOT_CS,
 * interrupts off, rsi = struct boot_params (the zero page). This is e_entry.
 */
	.globl krt_linux64_entry
krt_linux64_entry:
	cli
	cld
	mov $KRT_BOOT_LINUX64, %edi
	/* rsi is the zero page already */

/*
 * The ring-0 path both entries share: edi = boot path, rsi = boot info.
 * Both stay untouched until krt_start() gets them in ring 3.
 * Only the BSP goes on: QEMU on PVM hosts sometimes lets an AP run the
 * firmware and the kernel entry too. Halted here, it still answers the
 * INIT-SIPI-SIPI of krt_smp_start() later (MP spec 1.4 s3.7 / SDM vol. 3A
 * s9.4.1: IA32_APIC_BASE bit 8 marks the BSP).
 */
krt_common:
	mov $KRT_MSR_APIC_BASE, %ecx
	rdmsr
	bt $KRT_APIC_BASE_BSP, %eax
	jnc krt_halt
	rdtsc
	mov %eax, krt_entry_tsc(%rip)
	mov %edx, krt_entry_tsc+4(%rip)
	lgdt krt_gdt_ptr(%rip)
	mov $KRT_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	lea krt_kstacks+KRT_KSTACK_SIZE(%rip), %rsp
	pushq $KRT_SEL_KCODE
	lea 2f(%rip), %rax
	push %rax
	lretq
2:
	/* 1 GiB pages when the CPU has them (CPUID 0x80000001 EDX bit 26, Page1GB) */
	mov $0x80000000, %eax
	cpuid
	cmp $0x80000001, %eax
	jb 3f
	mov $0x80000001, %eax
	cpuid
	bt $26, %edx
	jnc 3f
	lea krt_pdpt_1g+KRT_PTE_TABLE(%rip), %rax
	mov %rax, krt_pml4(%rip)
	movb $1, krt_has_1g_pages(%rip)
3:	lea krt_pml4(%rip), %rax
	mov %rax, %cr3

	/* TSS 0: rsp0, IST1, the shared I/O bitmap (SDM vol. 3A s8.7, arch.h) ... */
	lea krt_tss_area(%rip), %rbx
	lea krt_kstacks+KRT_KSTACK_SIZE(%rip), %rax
	mov %rax, 4(%rbx)
	sub $4096, %rax
	mov %rax, 36(%rbx)
	movw $KRT_IOMAP_OFFSET, 102(%rbx)
	/* ... and its descriptor: base, limit (< 64 KiB), type 9 (available 64-bit TSS), P */
	mov %ebx, %edx
	and $0xffffff, %edx
	shl $16, %rdx
	or $KRT_TSS_LIMIT(0), %rdx
	mov %ebx, %ecx
	shr $24, %ecx
	shl $56, %rcx
	or %rcx, %rdx
	bts $47, %rdx			/* P */
	bts $43, %rdx			/* type 9: bits 40 and 43 */
	bts $40, %rdx
	mov %rdx, krt_gdt+KRT_SEL_TSS0(%rip)
	mov $KRT_SEL_TSS0, %eax
	ltr %ax
	lidt krt_idt_ptr(%rip)

	xor %r12d, %r12d		/* CPU index 0 */
	lea krt_start(%rip), %rcx
	jmp krt_to_ring3

/*
 * Sets GS base to &krt_percpu[r12], then leaves ring 0 with iretq: rip = rcx,
 * the ring-3 stack of CPU r12, RFLAGS = IOPL 3 with interrupts off. rdi and
 * rsi pass through as the first two arguments.
 */
krt_to_ring3:
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs			/* null: iretq leaves a null selector alone */
	mov %rcx, %r13
	mov %r12, %rax
	shl $6, %rax			/* KRT_PERCPU_SIZE */
	lea krt_percpu(%rip), %rdx
	add %rdx, %rax
	mov %rax, %rdx
	shr $32, %rdx
	mov $KRT_MSR_GS_BASE, %ecx
	wrmsr
	lea 1(%r12), %rax
	imul $KRT_USTACK_SIZE, %rax, %rax
	lea krt_ustacks(%rip), %rdx
	lea -8(%rdx,%rax), %rax		/* as if called: rsp + 8 is 16-aligned */
	pushq $(KRT_SEL_UDATA | 3)
	push %rax
	pushq $(KRT_RFLAGS_IOPL3 | KRT_RFLAGS_FIXED)
	pushq $(KRT_SEL_UCODE | 3)
	push %r13
	iretq

/*
 * The 64-bit half of the AP start (the trampoline below jumps here): take
 * the next CPU index, its kernel stack and TSS (prepared by the BSP), the
 * shared IDT, and go to krt_ap_start(index) in ring 3.
 */
krt_ap64:
	mov $KRT_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov $1, %eax
	lock xadd %eax, krt_ap_next(%rip)
	cmp $KRT_MAX_CPUS, %eax
	jae krt_halt
	mov %eax, %r12d
	lea 1(%r12), %rax
	imul $KRT_KSTACK_SIZE, %rax, %rax
	lea krt_kstacks(%rip), %rsp
	add %rax, %rsp
	mov %r12d, %eax
	shl $4, %eax
	add $KRT_SEL_TSS0, %eax
	ltr %ax
	lidt krt_idt_ptr(%rip)
	mov %r12, %rdi
	lea krt_ap_start(%rip), %rcx
	jmp krt_to_ring3

/* parks this CPU for good: interrupts off, hlt (ring 0 only) */
	.globl krt_halt
krt_halt:
	cli
1:	hlt
	jmp 1b

/*
 * AP trampoline, copied to KRT_TRAMP_ADDR by the BSP and entered in real
 * mode at CS = KRT_TRAMP_ADDR >> 4, IP = 0 after INIT-SIPI-SIPI (Intel MP
 * spec 1.4 appendix B.4). Real mode -> 32-bit protected mode on the BSP's
 * GDT, then krt_enter_long_mode in the image on to krt_ap64 (SDM vol. 3A
 * s10.8.5: protected mode first). Position-dependent only through
 * KRT_TRAMP_ADDR.
 */
	.code16
	.globl krt_tramp_start, krt_tramp_end
krt_tramp_start:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lgdtl (krt_tramp_gdtr - krt_tramp_start)
	movl $krt_ap64, %ebp
	mov %cr0, %eax
	or $KRT_CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $KRT_SEL_KCODE32, $krt_enter_long_mode
	.balign 8
krt_tramp_gdtr:
	.word KRT_GDT_SIZE - 1
	.long krt_gdt
krt_tramp_end:
	.code64

/*
 * Exception stubs, 16 bytes apart (start.c computes the gate addresses):
 * push a zero error code where the CPU pushes none (SDM vol. 3A s6.15),
 * then the vector, and go to krt_trap() in C. It never returns.
 */
.macro ISR
	.balign 16
	.if vec == 6
	jmp krt_ud_entry
	.elseif (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	pushq $vec
	.else
	pushq $0
	pushq $vec
	.endif
	jmp krt_isr_common
.endm

	.balign 16
	.globl krt_isr_stubs
krt_isr_stubs:
	.set vec, 0
	.rept KRT_NR_EXCEPTIONS
	ISR
	.set vec, vec + 1
	.endr

krt_isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	cld
	mov %rsp, %rdi			/* struct krt_trap_frame * */
	and $-16, %rsp
	call krt_trap
	jmp krt_halt

/*
 * The ring-0 service: long krt_ring0(long (*fn)(long), long arg) calls
 * fn(arg) in ring 0. Ring 3 gets there through the #UD of the ud2 at
 * krt_ring0_site: a software interrupt (int n) is no way in on PVM hosts,
 * where a user-mode "int 0x80" is not delivered to the guest's IDT, while
 * exceptions are, on every host. The #UD stub sees the site's address,
 * calls fn on the IST stack (the CPU pushed 5 qwords on a 16-aligned
 * stack; 8 more keep the call aligned), skips the ud2 and returns.
 */
	.globl krt_ring0
krt_ring0:
	mov %rdi, %rax
	mov %rsi, %rdi
krt_ring0_site:
	ud2
	ret

krt_ud_entry:
	cmpq $krt_ring0_site, (%rsp)
	jne 1f
	cld
	sub $8, %rsp
	call *%rax
	add $8, %rsp
	addq $2, (%rsp)			/* past the ud2 */
	iretq
1:	pushq $0
	pushq $6
	jmp krt_isr_common

	.section .note.GNU-stack, "", @progbits
