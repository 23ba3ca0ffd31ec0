// SPDX-License-Identifier: Apache-2.0
/*
 * krt library: the string functions (also what gcc calls by itself even
 * with -ffreestanding: memcpy, memmove, memset, memcmp), spinlocks, CPUID
 * in ring 0 and time from the TSC.
 */
#include "internal.h"

void *memcpy(void *dst, const void *src, size_t n)
{
	void *ret = dst;
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
	return ret;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *ret = dst;
	__asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(c) : "memory");
	return ret;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x != y)
			return x < y ? -1 : 1;
		if (x == 0)
			break;
	}
	return 0;
}

int strcmp(const char *a, const char *b)
{
	return strncmp(a, b, (size_t)-1);
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (*s == 0)
			return NULL;
	}
}

char *strstr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (strncmp(hay, needle, n) == 0)
			return (char *)hay;
	return n == 0 ? (char *)hay : NULL;
}

/* ------------------------------------------------------------- spinlocks */

static volatile uint64_t tsc_hz; /* 0 until calibrated (krt_tsc_hz) */

/* a lock held this long (TSC time, once calibrated) is reported, once */
#define SPIN_REPORT_S 5

/*
 * Says on the raw console (no lock) that `l` stayed locked SPIN_REPORT_S
 * seconds: the runtime's locks are held for microseconds, so on one vCPU
 * this means the lock's word in memory disagrees with where the CPU is
 * (after a restore: a page not carried over), not contention.
 */
static void spin_report(struct krt_spinlock *l)
{
	char msg[128];
	krt_snprintf(msg, sizeof(msg), "krt: spinlock at %p still locked after %u s\n", (void *)l,
	             SPIN_REPORT_S);
	krt_console_raw(msg);
}

void krt_spin_lock(struct krt_spinlock *l)
{
	uint64_t start = 0;
	bool told = false;

	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED)) {
			krt_pause();
			if (told)
				continue;
			uint64_t now = krt_rdtsc(), hz = tsc_hz;
			if (!start)
				start = now;
			else if (hz && now - start > SPIN_REPORT_S * hz)
				spin_report(l), told = true;
		}
}

void krt_spin_unlock(struct krt_spinlock *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ CPUID */

struct cpuid_args {
	uint32_t leaf, sub, r[4];
};

static long cpuid_ring0(long arg)
{
	struct cpuid_args *a = (struct cpuid_args *)arg;
	__asm__ volatile("cpuid"
	                 : "=a"(a->r[0]), "=b"(a->r[1]), "=c"(a->r[2]), "=d"(a->r[3])
	                 : "a"(a->leaf), "c"(a->sub));
	return 0;
}

void krt_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	struct cpuid_args a = {leaf, sub, {0}};
	krt_ring0(cpuid_ring0, (long)(uintptr_t)&a);
	memcpy(r, a.r, sizeof(a.r));
}

/* ------------------------------------------------------------------ time */

/* i8254 PIT (Intel 82C54 datasheet) channel 2, gated through port 0x61 */
#define PIT_HZ         1193182
#define PIT_CH2        0x42
#define PIT_MODE       0x43
#define PIT_CH2_MODE0  0xb0 /* channel 2, lobyte/hibyte, mode 0, binary */
#define PORT_B         0x61
#define PORT_B_GATE2   0x01
#define PORT_B_SPEAKER 0x02
#define PORT_B_OUT2    0x20
#define CALIBRATE_MS   10
#define DEFAULT_TSC_HZ 2000000000ull

static struct krt_spinlock tsc_lock = KRT_SPINLOCK_INIT;

/*
 * PIT channel 2 in mode 0 counts CALIBRATE_MS down with the gate high;
 * OUT2 (port 0x61 bit 5) goes high at zero. 0 when there is no PIT.
 */
static uint64_t tsc_hz_from_pit(void)
{
	const uint16_t latch = PIT_HZ * CALIBRATE_MS / 1000;
	uint8_t b = krt_inb(PORT_B);

	if (b == 0xff)
		return 0;
	krt_outb(PORT_B, (uint8_t)((b & ~PORT_B_SPEAKER) | PORT_B_GATE2));
	krt_outb(PIT_MODE, PIT_CH2_MODE0);
	krt_outb(PIT_CH2, latch & 0xff);
	krt_outb(PIT_CH2, latch >> 8);
	uint64_t t0 = krt_rdtsc(), t1 = t0;
	for (unsigned i = 0; i < 10000000 && !(krt_inb(PORT_B) & PORT_B_OUT2); i++)
		t1 = krt_rdtsc();
	krt_outb(PORT_B, b);
	uint64_t hz = (t1 - t0) * (1000 / CALIBRATE_MS);
	return hz < 10000000 ? 0 : hz; /* under 10 MHz: OUT2 never counted */
}

/* KVM's paravirtual clock (Documentation/virt/kvm/x86/msr.rst) */
#define KVM_CPUID_SIGNATURE        0x40000000
#define KVM_CPUID_FEATURES         0x40000001
#define KVM_FEATURE_CLOCKSOURCE2   3
#define MSR_KVM_SYSTEM_TIME_NEW    0x4b564d01
#define PVCLOCK_OFF_VERSION        0
#define PVCLOCK_OFF_TSC_TO_SYS_MUL 24
#define PVCLOCK_OFF_TSC_SHIFT      28

static volatile uint8_t pvclock[32] __attribute__((aligned(64)));

static long wrmsr_system_time(long val)
{
	__asm__ volatile("wrmsr"
	                 :
	                 : "c"(MSR_KVM_SYSTEM_TIME_NEW), "a"((uint32_t)val),
	                   "d"((uint32_t)(val >> 32))
	                 : "memory");
	return 0;
}

/*
 * The TSC rate from kvmclock's scale: ns = (tsc << shift) * mul >> 32, so
 * Hz = 10^9 * 2^32 / mul / 2^shift. Exact, and needs no timer device;
 * 0 when the VMM is not KVM or has no kvmclock.
 */
static uint64_t tsc_hz_from_kvmclock(void)
{
	uint32_t r[4];

	krt_cpuid(KVM_CPUID_SIGNATURE, 0, r);
	if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d || r[0] < KVM_CPUID_FEATURES)
		return 0; /* not "KVMKVMKVM\0\0\0" */
	krt_cpuid(KVM_CPUID_FEATURES, 0, r);
	if (!(r[0] & (1u << KVM_FEATURE_CLOCKSOURCE2)))
		return 0;
	krt_ring0(wrmsr_system_time, (long)(uintptr_t)pvclock | 1);
	uint64_t t0 = krt_rdtsc();
	while ((pvclock[PVCLOCK_OFF_VERSION] == 0 || (pvclock[PVCLOCK_OFF_VERSION] & 1)) &&
	       krt_rdtsc() - t0 < 100000000)
		krt_pause();
	uint32_t mul;
	memcpy(&mul, (const void *)&pvclock[PVCLOCK_OFF_TSC_TO_SYS_MUL], sizeof(mul));
	int8_t shift = (int8_t)pvclock[PVCLOCK_OFF_TSC_SHIFT];
	krt_ring0(wrmsr_system_time, 0); /* stop the updates */
	if (mul == 0 || shift < -31 || shift > 31)
		return 0;
	uint64_t hz = (1000000000ull << 32) / mul;
	return shift >= 0 ? hz >> shift : hz << -shift;
}

/* the TSC rate the CPUID says: hypervisor leaf 0x40000010 (kHz), 0x15, 0x16 */
static uint64_t tsc_hz_from_cpuid(bool base_mhz_ok)
{
	uint32_t r[4];

	krt_cpuid(0x40000000, 0, r);
	if (r[0] >= 0x40000010 && r[0] < 0x40010000) {
		krt_cpuid(0x40000010, 0, r);
		if (r[0])
			return (uint64_t)r[0] * 1000;
	}
	krt_cpuid(0, 0, r);
	uint32_t max = r[0];
	if (max >= 0x15) {
		krt_cpuid(0x15, 0, r); /* TSC = crystal (ecx) * ebx / eax (SDM vol. 2A CPUID) */
		if (r[0] && r[1] && r[2])
			return (uint64_t)r[2] * r[1] / r[0];
	}
	if (base_mhz_ok && max >= 0x16) {
		krt_cpuid(0x16, 0, r);
		if (r[0] & 0xffff)
			return (uint64_t)(r[0] & 0xffff) * 1000000;
	}
	return 0;
}

uint64_t krt_tsc_hz(void)
{
	if (tsc_hz)
		return tsc_hz;
	krt_spin_lock(&tsc_lock);
	if (!tsc_hz) {
		uint64_t hz = tsc_hz_from_kvmclock();
		if (!hz)
			hz = tsc_hz_from_cpuid(false);
		if (!hz)
			hz = tsc_hz_from_pit();
		if (!hz)
			hz = tsc_hz_from_cpuid(true);
		tsc_hz = hz ? hz : DEFAULT_TSC_HZ;
	}
	krt_spin_unlock(&tsc_lock);
	return tsc_hz;
}

static uint64_t us_to_tsc(uint64_t us)
{
	uint64_t hz = krt_tsc_hz();
	return us / 1000000 * hz + us % 1000000 * hz / 1000000;
}

void krt_udelay(uint64_t us)
{
	uint64_t t0 = krt_rdtsc(), n = us_to_tsc(us);
	while (krt_rdtsc() - t0 < n)
		krt_pause();
}

uint32_t krt_wait_u32(volatile uint32_t *p, uint32_t target, uint64_t timeout_us)
{
	uint64_t t0 = krt_rdtsc(), n = us_to_tsc(timeout_us);
	uint32_t v;

	while ((v = __atomic_load_n(p, __ATOMIC_ACQUIRE)) < target && krt_rdtsc() - t0 < n)
		krt_pause();
	return v;
}
