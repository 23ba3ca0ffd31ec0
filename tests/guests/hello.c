// SPDX-License-Identifier: Apache-2.0
/*
 * hello: what the guest learnt from the VMM -- command line, memory map,
 * RAM size, CPU count -- and, with touch=1, a write/read-back in the first
 * and last page of every RAM range; with virtio=1, the virtio-mmio devices
 * the command line announces ("virtio: <base> irq <n> <kind>"). Ends with
 * "bye".
 */
#include "rt/virtio.h"

/* writes a pattern to the first 8 bytes of page `pa`, reads it back, restores them */
static bool touch_page(uint64_t pa)
{
	volatile uint64_t *p = krt_phys(pa);           /* page 0 included */
	uint64_t pattern = 0x6b696c6e5a5a0000ull ^ pa; /* "kiln" */
	uint64_t old = *p;

	*p = pattern;
	bool ok = *p == pattern;
	*p = old;
	return ok;
}

/* 0 when every RAM range's first and last whole page hold a pattern, else the address */
static int touch_all(uint64_t *bad)
{
	const struct krt_mem_range *m;
	unsigned n = krt_memmap(&m);

	for (unsigned i = 0; i < n; i++) {
		uint64_t first = (m[i].addr + KRT_PAGE_SIZE - 1) & ~(KRT_PAGE_SIZE - 1);
		uint64_t end = (m[i].addr + m[i].size) & ~(KRT_PAGE_SIZE - 1);
		if (m[i].type != KRT_MEM_RAM || end < first + KRT_PAGE_SIZE)
			continue;
		uint64_t last = end - KRT_PAGE_SIZE;
		if (!krt_is_mapped(first, end - first)) {
			*bad = first;
			return -KRT_ENOENT;
		}
		if (!touch_page(first) || !touch_page(last)) {
			*bad = touch_page(first) ? last : first;
			return -KRT_EINVAL;
		}
	}
	return 0;
}

/* cpuid=LEAF: the leaf's registers, so tests see what the VMM (and PUT /cpu-config) set */
static void print_cpuid(void)
{
	size_t len;
	if (!krt_param("cpuid", &len))
		return;
	uint32_t leaf = (uint32_t)krt_param_u64("cpuid", 0), r[4];
	krt_cpuid(leaf, 0, r);
	krt_printf("cpuid 0x%x: %x %x %x %x\n", leaf, r[0], r[1], r[2], r[3]);
}

/*
 * kbd=MS: polls the i8042 for up to MS milliseconds and prints the bytes
 * the keyboard sent (SendCtrlAltDel arrives as scancodes), 8 at most.
 */
static void read_keyboard(void)
{
	uint64_t ms = krt_param_u64("kbd", 0);
	if (!ms)
		return;
	krt_printf("kbd: waiting\n");
	uint64_t end = krt_rdtsc() + ms * (krt_tsc_hz() / 1000);
	unsigned got = 0;
	char line[64] = "kbd:";
	size_t at = 4;
	while (got < 8 && krt_rdtsc() < end) {
		if (!(krt_inb(0x64) & 1)) { /* status: output buffer full */
			krt_udelay(200);
			continue;
		}
		uint8_t b = krt_inb(0x60);
		static const char hex[] = "0123456789abcdef";
		line[at++] = ' ';
		line[at++] = hex[b >> 4];
		line[at++] = hex[b & 15];
		got++;
	}
	line[at] = 0;
	krt_printf("%s%s\n", line, got ? "" : " nothing");
}

int main(void)
{
	const struct krt_mem_range *m;
	unsigned n = krt_memmap(&m);

	krt_printf("hello from the kiln test guest\n");
	krt_printf("boot: %s\n", krt_boot_path() == KRT_BOOT_PATH_PVH ? "pvh" : "linux64");
	krt_printf("cmdline: %s\n", krt_cmdline());
	for (unsigned i = 0; i < n; i++)
		krt_printf("mem: 0x%lx 0x%lx %u\n", m[i].addr, m[i].addr + m[i].size, m[i].type);
	krt_printf("ram: %lu MiB\n", krt_ram_bytes() >> 20);
	krt_printf("pages: %lu MiB\n", krt_map_page_size() >> 20);
	if (krt_cpu_count())
		krt_printf("cpus: %u (%s)\n", krt_cpu_count(), krt_cpu_count_source());
	else
		krt_printf("cpus: 1? (no MP table or MADT)\n");
	if (krt_param_is("touch", "1")) {
		uint64_t bad = 0;
		int ret = touch_all(&bad);
		if (ret == 0)
			krt_printf("touch: ok\n");
		else
			krt_printf("touch: FAILED at 0x%lx%s\n", bad,
			           ret == -KRT_ENOENT ? " (not mapped)" : "");
	}
	if (krt_param_is("timing", "1")) {
		uint64_t hz = krt_tsc_hz(), now = krt_rdtsc();
		krt_printf("timing: entry to main %lu us, main to here %lu us (TSC %lu MHz)\n",
		           (krt_tsc_at_main() - krt_tsc_at_entry()) * 1000000 / hz,
		           (now - krt_tsc_at_main()) * 1000000 / hz, hz / 1000000);
	}
	print_cpuid();
	/*
	 * stuck_lock=1: a lock whose word says locked while nobody holds it, as
	 * after a restore that lost the page the unlock wrote; the runtime says
	 * so after 5 s and spins on (the test kills kiln)
	 */
	if (krt_param_is("stuck_lock", "1")) {
		static struct krt_spinlock stuck = KRT_SPINLOCK_INIT;
		krt_printf("taking a lock nobody holds (TSC %lu MHz)\n", krt_tsc_hz() / 1000000);
		__atomic_store_n(&stuck.locked, 1, __ATOMIC_RELAXED);
		krt_spin_lock(&stuck);
	}
	if (krt_param_is("virtio", "1"))
		virtio_print_devices(); /* the command line's virtio_mmio.device= entries, probed */
	read_keyboard();
	/* sleep=MS keeps the VM running a while (benchmarks read the VMM's RSS,
	 * the quickstart pauses and resumes it) */
	uint64_t sleep_ms = krt_param_u64("sleep", 0);
	if (sleep_ms) {
		krt_printf("sleeping %lu ms\n", sleep_ms);
		krt_udelay(sleep_ms * 1000);
	}
	krt_printf("bye\n");
	return 0;
}
