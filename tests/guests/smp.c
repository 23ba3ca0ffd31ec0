// SPDX-License-Identifier: Apache-2.0
/*
 * smp: starts every AP; each prints "cpu <APIC id> up"; the BSP waits for
 * them (smp.timeout_ms, default 2000, by the TSC) and prints
 * "smp: <up>/<expected> cpus up".
 */
#include "rt/krt.h"

static volatile uint32_t reported;

static void ap_main(unsigned index)
{
	(void)index;
	krt_printf("cpu %u up\n", krt_apic_id());
	__atomic_add_fetch(&reported, 1, __ATOMIC_SEQ_CST);
}

int main(void)
{
	uint64_t timeout_ms = krt_param_u64("smp.timeout_ms", 2000);
	unsigned expected = krt_cpu_count();

	krt_printf("cpu %u up\n", krt_apic_id());
	int aps = krt_smp_start(ap_main);
	if (aps < 0) {
		krt_printf("smp: cannot start the APs (%d)\n", aps);
		return 1;
	}
	uint64_t t0 = krt_rdtsc();
	/* without a CPU list (broadcast) the count is unknown: wait the whole time */
	uint32_t want = expected ? (uint32_t)aps : UINT32_MAX;
	uint32_t got = krt_wait_u32(&reported, want, timeout_ms * 1000);
	uint64_t us = (krt_rdtsc() - t0) * 1000000 / krt_tsc_hz();
	if (expected && got < want)
		krt_printf("smp: timeout after %lu ms: %u of %u APs reported\n", timeout_ms, got,
		           want);
	if (expected)
		krt_printf("smp: %u/%u cpus up\n", got + 1, expected);
	else
		krt_printf("smp: %u/? cpus up (no MP table or MADT)\n", got + 1);
	krt_printf("smp: APs took %lu us\n", us);
	krt_printf("bye\n");
	return 0;
}
