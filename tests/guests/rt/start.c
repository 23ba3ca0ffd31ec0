// SPDX-License-Identifier: Apache-2.0
/*
 * krt start-up in ring 3 (boot.S irets to krt_start), the per-CPU tables,
 * the fatal-exception handler and the exit.
 */
#include "internal.h"

struct krt_percpu krt_percpu[KRT_MAX_CPUS] __attribute__((aligned(64)));
/* page-aligned: no TSS crosses a page */
struct krt_tss_area krt_tss_area __attribute__((aligned(4096)));
uint8_t krt_kstacks[KRT_MAX_CPUS][KRT_KSTACK_SIZE] __attribute__((aligned(4096)));
uint8_t krt_ustacks[KRT_MAX_CPUS][KRT_USTACK_SIZE] __attribute__((aligned(4096)));
volatile uint32_t krt_ap_next = 1; /* boot.S: the next AP's index */
uint8_t krt_has_1g_pages;          /* boot.S: krt_pml4 uses krt_pdpt_1g */
uint64_t krt_entry_tsc;            /* boot.S: the TSC when the BSP reached the common path */
static uint64_t main_tsc;

static volatile uint32_t cpus_online;
static volatile uint32_t panicking; /* CPU index + 1 of the CPU printing a panic */

/* ports the exit path knows about */
#define I8042_COMMAND    0x64
#define I8042_CMD_RESET  0xfe
#define QEMU_DEBUG_EXIT  0xf4
#define BOOT_TIMER_PORT  0x440 /* kiln's (Firecracker's) boot timer */
#define BOOT_TIMER_MAGIC 123

/*
 * A 64-bit interrupt gate (SDM vol. 3A s6.14.1, figure 6-8): offset split
 * in three, the kernel code selector, IST index, type 0xE, DPL, present.
 */
static void idt_set(unsigned vec, uint64_t handler, unsigned dpl, unsigned ist)
{
	volatile uint64_t *g = (volatile uint64_t *)(krt_idt + 16 * vec);

	g[1] = handler >> 32;
	g[0] = (handler & 0xffff) | (uint64_t)KRT_SEL_KCODE << 16 | (uint64_t)ist << 32 |
	       (uint64_t)(0x8e | dpl << 5) << 40 | ((handler >> 16) & 0xffff) << 48;
}

/*
 * The IDT is written from ring 3 (it lies in user-accessible memory and
 * IDTR already points at it): 32 exception gates on IST 1; #UD doubles as
 * the way into ring 0 (krt_ring0 in boot.S).
 */
static void idt_init(void)
{
	for (unsigned v = 0; v < KRT_NR_EXCEPTIONS; v++)
		idt_set(v, (uint64_t)(uintptr_t)krt_isr_stubs + 16 * v, 0, 1);
}

void krt_tss_setup(unsigned cpu)
{
	struct krt_tss *t = &krt_tss_area.cpu[cpu].tss;
	uint64_t top = (uint64_t)(uintptr_t)krt_kstacks[cpu] + KRT_KSTACK_SIZE;
	uint64_t base = (uint64_t)(uintptr_t)t;
	uint64_t limit = KRT_TSS_LIMIT(cpu);

	t->rsp[0] = top;
	t->ist[0] = top - 4096;
	t->iomap_base = (uint16_t)(KRT_IOMAP_OFFSET - KRT_TSS_STRIDE * cpu);
	/* 16-byte TSS descriptor (SDM vol. 3A s8.2.3): limit, base, type 9, P */
	uint64_t *d = &krt_gdt[(KRT_SEL_TSS0 + 16 * cpu) / 8];
	d[1] = base >> 32;
	d[0] = (limit & 0xffff) | (base & 0xffffff) << 16 | 0x89ull << 40 |
	       (limit >> 16 & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
}

/*
 * The APIC id comes from the LAPIC's ID register, not CPUID leaf 1: on PVM
 * hosts a ring-3 CPUID runs on the host CPU and reports the host's APIC id.
 */
void krt_cpu_arrived(unsigned index)
{
	krt_percpu[index].index = index;
	krt_percpu[index].apic_id = krt_mmio_read32(KRT_LAPIC_BASE + KRT_LAPIC_ID) >> 24;
	__atomic_add_fetch(&cpus_online, 1, __ATOMIC_SEQ_CST);
}

uint64_t krt_tsc_at_entry(void)
{
	return krt_entry_tsc;
}

uint64_t krt_tsc_at_main(void)
{
	return main_tsc;
}

unsigned krt_cpus_online(void)
{
	return __atomic_load_n(&cpus_online, __ATOMIC_SEQ_CST);
}

unsigned krt_cpu_index(void)
{
	uint32_t v;

	__asm__ volatile("movl %%gs:0, %0" : "=r"(v));
	return v;
}

unsigned krt_apic_id(void)
{
	return krt_percpu[krt_cpu_index()].apic_id;
}

/* the BSP's first ring-3 code: boot.S irets here with the entry's facts */
__attribute__((noreturn, used)) void krt_start(unsigned path, uint64_t info)
{
	idt_init();
	krt_tss_area.iomap[KRT_IOMAP_SIZE] = 0xff;
	krt_percpu[0].index = 0;
	krt_cpu_arrived(0);
	krt_console_init();
	krt_bootinfo_init(path, info);
	if (!krt_has_1g_pages) {
		int ret = krt_map_high_ram();
		if (ret < 0)
			krt_printf("krt: RAM above 4 GiB is not mapped (%d)\n", ret);
	}
	krt_outb(BOOT_TIMER_PORT, BOOT_TIMER_MAGIC);
	main_tsc = krt_rdtsc();
	krt_exit(main());
}

static bool in_ring0(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return (cs & 3) == 0;
}

/*
 * A triple fault (SDM vol. 3A s6.15, interrupt 8: a fault while delivering
 * #DF shuts the processor down): an empty IDT, then any exception. QEMU
 * -no-reboot turns the shutdown into a clean exit.
 */
static long triple_fault_ring0(long unused)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = {0, 0};

	(void)unused;
	__asm__ volatile("lidt %0\n\tud2" : : "m"(empty));
	krt_halt();
}

void krt_exit(int code)
{
	/* a missing i8042 reads 0xff; with one, the reset ends a kiln VM at once */
	bool have_i8042 = krt_inb(I8042_COMMAND) != 0xff;

	krt_outb(I8042_COMMAND, I8042_CMD_RESET);
	if (have_i8042) {
		uint64_t t0 = krt_rdtsc();
		while (krt_rdtsc() - t0 < 2000000000ull) /* ~1 s at 2 GHz: no calibration here */
			krt_pause();
	}
	krt_outb(QEMU_DEBUG_EXIT, (uint8_t)code);
	krt_triple_fault();
}

void krt_triple_fault(void)
{
	if (in_ring0())
		triple_fault_ring0(0);
	krt_ring0(triple_fault_ring0, 0);
	krt_halt(); /* not reached */
}

void krt_panic(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n = krt_snprintf(buf, sizeof(buf), "GUEST PANIC: ");

	va_start(ap, fmt);
	krt_vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	krt_printf("%s\n", buf);
	krt_exit(1);
}

static const char *const exception_names[KRT_NR_EXCEPTIONS] = {
        "#DE divide error",
        "#DB debug",
        "NMI",
        "#BP breakpoint",
        "#OF overflow",
        "#BR bound range",
        "#UD invalid opcode",
        "#NM no math",
        "#DF double fault",
        "coprocessor overrun",
        "#TS invalid TSS",
        "#NP segment not present",
        "#SS stack fault",
        "#GP general protection",
        "#PF page fault",
        "reserved",
        "#MF x87 error",
        "#AC alignment check",
        "#MC machine check",
        "#XM SIMD error",
        "#VE virtualization",
        "#CP control protection",
};

/*
 * Every exception is fatal (ring 0, IST 1, from krt_isr_common): print what
 * happened and end the VM. A fault while this CPU prints ends it at once;
 * a second CPU faulting meanwhile halts.
 */
__attribute__((noreturn, used)) void krt_trap(struct krt_trap_frame *f)
{
	unsigned cpu = krt_cpu_index() % KRT_MAX_CPUS;
	uint32_t none = 0;
	char buf[200];
	uint64_t cr2;

	if (!__atomic_compare_exchange_n(&panicking, &none, cpu + 1, false, __ATOMIC_SEQ_CST,
	                                 __ATOMIC_SEQ_CST)) {
		if (none == cpu + 1)
			krt_exit(1);
		krt_halt();
	}
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	const char *name = f->vector < KRT_NR_EXCEPTIONS && exception_names[f->vector]
	                           ? exception_names[f->vector]
	                           : "?";
	krt_snprintf(buf, sizeof(buf),
	             "\nGUEST PANIC: vector %lu (%s) error 0x%lx rip 0x%lx cs 0x%lx rflags 0x%lx "
	             "rsp 0x%lx cr2 0x%lx cpu %u\n",
	             f->vector, name, f->error, f->rip, f->cs, f->rflags, f->rsp, cr2, cpu);
	krt_console_raw(buf);
	krt_exit(1);
}
