// SPDX-License-Identifier: Apache-2.0
/*
 * krt SMP: the CPU list from the MP table (Intel MultiProcessor
 * Specification 1.4) or the ACPI MADT (ACPI 6.5 s5.2.12), and the AP start
 * with INIT-SIPI-SIPI through the xAPIC, all from ring 3: the LAPIC page is
 * identity-mapped and user-accessible like everything else.
 */
#include "internal.h"

#define LAPIC_SVR        0x0f0
#define LAPIC_ICR_LOW    0x300
#define LAPIC_ICR_HIGH   0x310
#define SVR_ENABLE       0x100
#define SVR_SPURIOUS_VEC 0xff
/* ICR low (SDM vol. 3A s11.6.1) */
#define ICR_DM_INIT       0x00500
#define ICR_DM_STARTUP    0x00600
#define ICR_SEND_PENDING  0x01000
#define ICR_LEVEL_ASSERT  0x04000
#define ICR_TRIGGER_LEVEL 0x08000
#define ICR_ALL_BUT_SELF  0xc0000
/* MP spec 1.4 appendix B.4: 10 ms after INIT, 200 us after each STARTUP */
#define INIT_DELAY_US 10000
#define SIPI_DELAY_US 200

static uint32_t apic_ids[KRT_MAX_CPUS];
static unsigned nr_cpus;
static const char *cpu_source;
static volatile krt_ap_fn ap_fn;
static bool smp_started;

static uint8_t pb(uint64_t pa)
{
	return *(const volatile uint8_t *)krt_phys(pa);
}

static uint32_t pl(uint64_t pa)
{
	uint32_t v;
	memcpy(&v, krt_phys(pa), sizeof(v));
	return v;
}

static uint16_t pw(uint64_t pa)
{
	return (uint16_t)(pb(pa) | pb(pa + 1) << 8);
}

static bool checksum_ok(uint64_t pa, uint32_t len)
{
	uint8_t sum = 0;
	for (uint32_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + pb(pa + i));
	return sum == 0;
}

/* the first 16-byte aligned `sig` in [start, start + len) with a valid checksum */
static uint64_t scan(uint64_t start, uint64_t len, const char *sig, uint32_t sum_len)
{
	size_t n = strlen(sig);
	for (uint64_t pa = start; pa + 16 <= start + len; pa += 16)
		if (memcmp(krt_phys(pa), sig, n) == 0 && checksum_ok(pa, sum_len))
			return pa;
	return 0;
}

/* MP spec 1.4 s4: the EBDA's first KiB, the last KiB of base memory, the BIOS ROM */
static uint64_t find_low(const char *sig, uint32_t sum_len)
{
	uint64_t ebda = (uint64_t)pw(0x40e) << 4, pa = 0;

	if (ebda >= 0x80000 && ebda < 0xa0000)
		pa = scan(ebda, 1024, sig, sum_len);
	if (!pa)
		pa = scan(0x9fc00, 1024, sig, sum_len);
	if (!pa)
		pa = scan(0xe0000, 0x20000, sig, sum_len);
	return pa;
}

static void add_cpu(uint32_t apic_id)
{
	if (nr_cpus < KRT_MAX_CPUS)
		apic_ids[nr_cpus] = apic_id;
	nr_cpus++;
}

/* MP spec 1.4 s4.1 (floating pointer) and s4.2-4.3 (configuration table) */
static bool parse_mptable(void)
{
	uint64_t fp = find_low("_MP_", 16);
	if (!fp || pb(fp + 8) != 1)
		return false;
	uint64_t ct = pl(fp + 4);
	if (ct == 0 || ct >= KRT_HOLE_START || memcmp(krt_phys(ct), "PCMP", 4) != 0)
		return false;
	uint16_t len = pw(ct + 4), count = pw(ct + 34);
	if (len < 44 || !checksum_ok(ct, len))
		return false;
	uint64_t e = ct + 44, end = ct + len;
	for (unsigned i = 0; i < count && e < end; i++) {
		uint8_t type = pb(e);
		if (type == 0) { /* processor: APIC id at 1, flags at 3 (bit 0 enabled) */
			if (e + 20 > end)
				break;
			if (pb(e + 3) & 1)
				add_cpu(pb(e + 1));
			e += 20;
		} else if (type <= 4) {
			e += 8;
		} else {
			break; /* unknown entry: its length is unknown too */
		}
	}
	return nr_cpus > 0;
}

/* the MADT's enabled Local APIC (type 0) and x2APIC (type 9) entries */
static bool parse_madt(uint64_t madt)
{
	uint32_t len = pl(madt + 4);
	if (len < 44 || len > 0x100000 || !checksum_ok(madt, len))
		return false;
	for (uint64_t e = madt + 44; e + 2 <= madt + len && pb(e + 1) >= 2; e += pb(e + 1)) {
		if (pb(e) == 0 && pb(e + 1) >= 8 && (pl(e + 4) & 1))
			add_cpu(pb(e + 3));
		else if (pb(e) == 9 && pb(e + 1) >= 16 && (pl(e + 8) & 1))
			add_cpu(pl(e + 4));
	}
	return nr_cpus > 0;
}

/* RSDP (ACPI 6.5 s5.2.5) -> RSDT/XSDT (s5.2.7-8) -> "APIC" */
static bool parse_acpi(void)
{
	uint64_t rsdp = krt_bootinfo_rsdp();
	if (!rsdp)
		rsdp = find_low("RSD PTR ", 20);
	if (!rsdp || !krt_is_mapped(rsdp, 36) || memcmp(krt_phys(rsdp), "RSD PTR ", 8))
		return false;
	bool x = pb(rsdp + 15) >= 2;
	uint64_t sdt = x ? pl(rsdp + 24) | (uint64_t)pl(rsdp + 28) << 32 : pl(rsdp + 16);
	unsigned esize = x ? 8 : 4;
	if (!sdt || !krt_is_mapped(sdt, 36))
		return false;
	uint32_t len = pl(sdt + 4);
	if (len < 36 || !krt_is_mapped(sdt, len))
		return false;
	for (uint64_t e = sdt + 36; e + esize <= sdt + len; e += esize) {
		uint64_t t = pl(e) | (x ? (uint64_t)pl(e + 4) << 32 : 0);
		if (t && krt_is_mapped(t, 36) && memcmp(krt_phys(t), "APIC", 4) == 0 &&
		    krt_is_mapped(t, pl(t + 4)))
			return parse_madt(t);
	}
	return false;
}

unsigned krt_cpu_count(void)
{
	if (!cpu_source) {
		cpu_source = "mptable";
		if (!parse_mptable()) {
			nr_cpus = 0;
			cpu_source = parse_acpi() ? "madt" : "none";
		}
	}
	return nr_cpus;
}

const char *krt_cpu_count_source(void)
{
	krt_cpu_count();
	return cpu_source;
}

static void icr_send(uint32_t dest, uint32_t low)
{
	uint64_t icr = KRT_LAPIC_BASE; /* the tables' LAPIC address is this in every VMM */

	krt_mmio_write32(icr + LAPIC_ICR_HIGH, dest << 24);
	krt_mmio_write32(icr + LAPIC_ICR_LOW, low);
	for (unsigned i = 0;
	     i < 100000 && (krt_mmio_read32(icr + LAPIC_ICR_LOW) & ICR_SEND_PENDING); i++)
		krt_pause();
}

/* one IPI to every AP of the list, or to all but self when there is no list */
static void ipi_aps(uint32_t low)
{
	if (nr_cpus == 0) {
		icr_send(0, low | ICR_ALL_BUT_SELF);
		return;
	}
	for (unsigned i = 0; i < nr_cpus && i < KRT_MAX_CPUS; i++)
		if (apic_ids[i] != krt_percpu[0].apic_id)
			icr_send(apic_ids[i], low);
}

static bool tramp_page_is_ram(void)
{
	const struct krt_mem_range *m;
	unsigned n = krt_memmap(&m);

	for (unsigned i = 0; i < n; i++)
		if (m[i].type == KRT_MEM_RAM && m[i].addr <= KRT_TRAMP_ADDR &&
		    KRT_TRAMP_ADDR + 4096 <= m[i].addr + m[i].size)
			return true;
	return n == 0; /* no map at all: assume the usual low RAM */
}

int krt_smp_start(krt_ap_fn fn)
{
	if (!fn || smp_started)
		return -KRT_EINVAL;
	unsigned n = krt_cpu_count();
	if (n > KRT_MAX_CPUS)
		return -KRT_ENOSPC;
	if (!tramp_page_is_ram())
		return -KRT_ENODEV;
	smp_started = true;
	ap_fn = fn;
	for (unsigned i = 1; i < KRT_MAX_CPUS; i++) {
		krt_percpu[i].index = i;
		krt_tss_setup(i);
	}
	memcpy(krt_phys(KRT_TRAMP_ADDR), krt_tramp_start,
	       (size_t)(krt_tramp_end - krt_tramp_start));
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* trampoline and TSSs before the IPIs */

	uint64_t svr = KRT_LAPIC_BASE + LAPIC_SVR;
	krt_mmio_write32(svr, krt_mmio_read32(svr) | SVR_ENABLE | SVR_SPURIOUS_VEC);
	ipi_aps(ICR_DM_INIT | ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL);
	ipi_aps(ICR_DM_INIT | ICR_TRIGGER_LEVEL); /* deassert, for pre-xAPIC parts */
	krt_udelay(INIT_DELAY_US);
	for (int k = 0; k < 2; k++) {
		ipi_aps(ICR_DM_STARTUP | (KRT_TRAMP_ADDR >> 12));
		krt_udelay(SIPI_DELAY_US);
	}
	return n ? (int)n - 1 : KRT_MAX_CPUS - 1;
}

static long park(long unused)
{
	(void)unused;
	krt_halt();
}

void krt_ap_start(unsigned index)
{
	krt_cpu_arrived(index);
	krt_ap_fn fn = ap_fn;
	if (fn)
		fn(index);
	krt_ring0(park, 0);
	for (;;) /* not reached */
		krt_pause();
}
