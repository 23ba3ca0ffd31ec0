/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krt: the kiln test-guest runtime. A guest is one C file with
 *	int main(void);
 * linked with this runtime. main() runs in ring 3 with port I/O allowed
 * (IOPL 3 and an all-zero I/O bitmap), interrupts off, all of RAM and the
 * MMIO hole identity-mapped and user-accessible. When main() returns, the runtime calls
 *krt_exit(ret). Single address space, no libc, no floating point or SIMD
 * (-mgeneral-regs-only). See tests/guests/README.md.
 *
 * Thread-safety: the console and everything marked "any CPU" may be used
 * from every CPU; the rest belongs to the BSP.
 */
#ifndef KRT_H
#define KRT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* errno values the runtime returns, negated (same numbers as Linux) */
#define KRT_ENOENT    2
#define KRT_ENODEV    19
#define KRT_EINVAL    22
#define KRT_ENOSPC    28
#define KRT_ENOMEM    12
#define KRT_ETIMEDOUT 110

#define KRT_PAGE_SIZE     4096ull
#define KRT_MIB(x)        ((uint64_t)(x) << 20)
#define KRT_GIB(x)        ((uint64_t)(x) << 30)
#define KRT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ the guest */

/* the guest's entry, in ring 3 on the BSP; its return value goes to krt_exit() */
int main(void);

/* ----------------------------------------------------------- boot facts */

enum krt_boot_path {
	KRT_BOOT_PATH_PVH = 1,     /* Xen PVH entry, hvm_start_info */
	KRT_BOOT_PATH_LINUX64 = 2, /* Linux 64-bit entry, boot_params */
};
enum krt_boot_path krt_boot_path(void);

/* the kernel command line, copied at start ("" when there was none) */
const char *krt_cmdline(void);

/*
 * The value of `key` on the command line (`key=value` separated by spaces;
 * a bare `key` has the value ""). Returns a pointer into krt_cmdline() and
 * its length in *len, or NULL when the key is absent. The last one wins.
 */
const char *krt_param(const char *key, size_t *len);
/* the same for any command line (pure; krt_param() uses krt_cmdline()) */
const char *krt_cmdline_param(const char *cmdline, const char *key, size_t *len);
/* true when `key` is present with exactly `value` */
bool krt_param_is(const char *key, const char *value);
/* `key` as a number (decimal, or hex with 0x); `dflt` when absent or not a number */
uint64_t krt_param_u64(const char *key, uint64_t dflt);

/* one memory-map entry, the same from either boot path (e820 types) */
struct krt_mem_range {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* KRT_MEM_RAM, 2 reserved, 3 ACPI, ... */
};
#define KRT_MEM_RAM    1
#define KRT_MEMMAP_MAX 128

/* the memory map, copied at start; returns the entry count */
unsigned krt_memmap(const struct krt_mem_range **out);
/* the sum of the KRT_MEM_RAM entries, in bytes */
uint64_t krt_ram_bytes(void);
/*
 * true when [addr, addr + len) is identity-mapped: everything below 512 GiB
 * with 1 GiB pages, else the low 4 GiB and the RAM ranges above
 */
bool krt_is_mapped(uint64_t addr, uint64_t len);
/* the page size of the identity map: 1 GiB when the CPU has Page1GB, else 2 MiB */
uint64_t krt_map_page_size(void);

/*
 * Pages of RAM after the image that nobody else uses, zeroed; `align` is
 * a power of two >= 4096. NULL when RAM runs out. BSP only.
 */
void *krt_alloc_pages(size_t npages, size_t align);

/* ------------------------------------------------------------- console */

/* COM1 (0x3f8), 115200 8N1, polled. Any CPU; each call's output stays whole. */
void krt_putc(char c);
void krt_puts(const char *s); /* no newline added */
int krt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int krt_vprintf(const char *fmt, va_list ap);

/*
 * printf formatting into `buf` (always NUL-terminated when n > 0): %d %i %u
 * %x %X %o %c %s %p %%, the l, ll, z and h modifiers, flags '-' and '0',
 * a width and (for %s) a precision, '*' for either. Returns the length the
 * whole output would have, like C99.
 */
int krt_snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int krt_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);

/* ------------------------------------------------------------- strings */

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
char *strstr(const char *hay, const char *needle);
/*
 * Parses an unsigned number (base 0: decimal, or hex after 0x) from s;
 * *end (may be NULL) is set past the digits. 0 / -KRT_EINVAL (no digit,
 * or overflow).
 */
int krt_strtou64(const char *s, const char **end, unsigned base, uint64_t *out);

/* ------------------------------------------------------------ CPU bits */

static inline void krt_outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t krt_inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline void krt_outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint16_t krt_inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline void krt_outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint32_t krt_inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint64_t krt_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
static inline void krt_pause(void)
{
	__asm__ volatile("pause" ::: "memory");
}
static inline void krt_barrier(void)
{
	__asm__ volatile("" ::: "memory");
}
/*
 * CPUID as the VMM configured it, executed in ring 0 (krt_ring0): on PVM
 * hosts a ring-3 CPUID may run on the host CPU and report its values (its
 * APIC id, its features). r = eax, ebx, ecx, edx. Any CPU.
 */
void krt_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]);
/*
 * A physical address as a pointer (identity map). The empty asm hides the
 * constant from the compiler, which would otherwise reason about objects
 * at small addresses (page 0, the BIOS area).
 */
static inline void *krt_phys(uint64_t pa)
{
	__asm__("" : "+r"(pa));
	return (void *)(uintptr_t)pa;
}

/* MMIO accessors: one access of exactly that width */
static inline uint32_t krt_mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)krt_phys(addr);
}
static inline void krt_mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)krt_phys(addr) = v;
}

/* ------------------------------------------------------------- locking */

struct krt_spinlock {
	volatile uint32_t locked;
};
#define KRT_SPINLOCK_INIT                                                                          \
	{                                                                                          \
		0                                                                                  \
	}
void krt_spin_lock(struct krt_spinlock *l);
void krt_spin_unlock(struct krt_spinlock *l);

/* ---------------------------------------------------------------- time */

/*
 * TSC ticks per second, found once: kvmclock's scale, else CPUID leaves
 * 0x40000010 / 0x15, else PIT channel 2 (10 ms), else CPUID 0x16, else
 * 2 GHz. Any CPU.
 */
uint64_t krt_tsc_hz(void);
/* the TSC when the BSP entered the runtime's ring-0 path, and just before main() */
uint64_t krt_tsc_at_entry(void);
uint64_t krt_tsc_at_main(void);
/* busy-waits (pause loop) for `us` microseconds. Any CPU. */
void krt_udelay(uint64_t us);
/*
 * Waits until *p >= target or `timeout_us` passed. Any CPU.
 * Returns the last value seen.
 */
uint32_t krt_wait_u32(volatile uint32_t *p, uint32_t target, uint64_t timeout_us);

/* ----------------------------------------------------------------- SMP */

/*
 * CPUs listed (enabled) in the MP table (Intel MP spec 1.4), or the ACPI
 * MADT when there is no MP table; 0 when neither exists. BSP only.
 */
unsigned krt_cpu_count(void);
/* where krt_cpu_count() came from: "mptable", "madt" or "none" */
const char *krt_cpu_count_source(void);
/* the runtime's index of the calling CPU (BSP 0, APs from 1 in start order). Any CPU. */
unsigned krt_cpu_index(void);
/* the calling CPU's APIC id (from its LAPIC, read when it started). Any CPU. */
unsigned krt_apic_id(void);
/* CPUs that reached ring 3, the BSP included. Any CPU. */
unsigned krt_cpus_online(void);

/* the code each AP runs in ring 3 after it started; when it returns, the AP halts */
typedef void (*krt_ap_fn)(unsigned cpu_index);

/*
 * Starts every AP with INIT-SIPI-SIPI (Intel MP spec 1.4 appendix B.4) on
 * the xAPIC at 0xfee00000, each running `fn` in ring 3 on its own stack:
 * the APs of the MP table / MADT when there is one, else an all-excluding-
 * self broadcast. Returns the number of APs signalled (0 .. KRT_MAX_CPUS-1,
 * unknown (KRT_MAX_CPUS - 1) for a broadcast), or -KRT_ENOSPC / -KRT_ENODEV.
 * Does not wait for them: use krt_wait_u32() on a counter of your own, or
 * krt_cpus_online(). BSP only, once.
 */
int krt_smp_start(krt_ap_fn fn);

/* ------------------------------------------------------------- ring 0 */

/*
 * Calls fn(arg) in ring 0 on this CPU and returns its result. The way in
 * is the #UD of a ud2 the runtime recognises (software interrupts from
 * ring 3 do not reach the guest on PVM hosts). fn runs with interrupts off
 * on the 4 KiB exception stack, so a fault in fn is the end; keep it short:
 * ring-0 code is emulated on PVM hosts. Any CPU.
 */
long krt_ring0(long (*fn)(long), long arg);

/* ---------------------------------------------------------------- exit */

/*
 * Ends the VM: a reset through the i8042 (kiln ends the VM cleanly), else
 * QEMU's isa-debug-exit at port 0xf4 when configured with iobase=0xf4
 * (exit status (code << 1) | 1), else a triple fault (QEMU -no-reboot
 * exits). Any CPU.
 */
__attribute__((noreturn)) void krt_exit(int code);
/* ends the VM with a triple fault (KVM_EXIT_SHUTDOWN). Any CPU. */
__attribute__((noreturn)) void krt_triple_fault(void);
/* prints "GUEST PANIC: <message>" and exits like krt_exit(1). Any CPU. */
__attribute__((noreturn, format(printf, 1, 2))) void krt_panic(const char *fmt, ...);

#endif
