/* SPDX-License-Identifier: Apache-2.0 */
/* krt internals shared by the runtime's C files (guests include krt.h only) */
#ifndef KRT_INTERNAL_H
#define KRT_INTERNAL_H

#include "arch.h"
#include "krt.h"

/* one per CPU, found through GS base (set in boot.S before the iretq) */
struct krt_percpu {
	uint32_t index;
	uint32_t apic_id;
	uint8_t pad[KRT_PERCPU_SIZE - 8];
};
_Static_assert(sizeof(struct krt_percpu) == KRT_PERCPU_SIZE, "boot.S shifts by 6");

/* 64-bit TSS (SDM vol. 3A s8.7, figure 8-11) */
struct krt_tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct krt_tss) == 104, "TSS layout");

/* the TSSs and their shared I/O bitmap (arch.h) */
struct krt_tss_area {
	struct {
		struct krt_tss tss;
		uint8_t pad[KRT_TSS_STRIDE - sizeof(struct krt_tss)];
	} cpu[KRT_MAX_CPUS];
	uint8_t iomap[KRT_IOMAP_SIZE + 1]; /* + the all-ones byte the SDM wants after it */
};
_Static_assert(__builtin_offsetof(struct krt_tss_area, iomap) == KRT_IOMAP_OFFSET, "arch.h");

/* what krt_isr_common pushed, lowest address first */
struct krt_trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* defined in boot.S / tables.S */
extern uint64_t krt_pml4[512], krt_pdpt_2m[512], krt_pdpt_1g[512];
extern uint64_t krt_gdt[KRT_GDT_SIZE / 8];
extern uint8_t krt_idt[256 * 16];
extern const char krt_isr_stubs[];
extern const char krt_tramp_start[], krt_tramp_end[];
extern char krt_image_start[], krt_image_end[]; /* link.ld */

/* defined in start.c, used by boot.S */
extern struct krt_percpu krt_percpu[KRT_MAX_CPUS];
extern struct krt_tss_area krt_tss_area;
extern uint8_t krt_kstacks[KRT_MAX_CPUS][KRT_KSTACK_SIZE];
extern uint8_t krt_ustacks[KRT_MAX_CPUS][KRT_USTACK_SIZE];
extern volatile uint32_t krt_ap_next;
extern uint8_t krt_has_1g_pages;
extern uint64_t krt_entry_tsc;

/* start.c: fills TSS `cpu` and its GDT descriptor (the BSP, for the APs) */
void krt_tss_setup(unsigned cpu);
/* start.c: counts a CPU that reached ring 3 */
void krt_cpu_arrived(unsigned index);

/* bootinfo.c: copies cmdline and memory map from the VMM's boot structure */
void krt_bootinfo_init(unsigned path, uint64_t info);
/* bootinfo.c: the ACPI RSDP the VMM passed, 0 when none */
uint64_t krt_bootinfo_rsdp(void);
/* bootinfo.c: maps RAM above 4 GiB when there are no 1 GiB pages; 0 / -errno */
int krt_map_high_ram(void);

/* console.c */
void krt_console_init(void);
/* console.c: writes `s` straight to COM1 without the lock (panics, ring 0) */
void krt_console_raw(const char *s);

/* smp.c: the APs' C entry (boot.S irets here) */
__attribute__((noreturn)) void krt_ap_start(unsigned index);

/* ring 0, never returns: parks this CPU */
__attribute__((noreturn)) void krt_halt(void);

#endif
