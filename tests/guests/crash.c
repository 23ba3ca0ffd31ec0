// SPDX-License-Identifier: Apache-2.0
/*
 * crash: prints "crash: about to fault", then breaks the VM in the way
 * `crash=` asks:
 *   mmio   (default) jump into the MMIO hole: KVM cannot fetch instructions
 *          from MMIO and exits with KVM_EXIT_INTERNAL_ERROR (emulation
 *          failure), on VMX/SVM hosts and on PVM alike
 *   int3   an int3 in ring 0: KVM_EXIT_INTERNAL_ERROR on PVM hosts only
 *          (PLATFORM.md); elsewhere the guest's #BP handler panics
 *   ud2    an invalid opcode in ring 3: the runtime's "GUEST PANIC" path
 *   triple a triple fault: KVM_EXIT_SHUTDOWN
 */
#include "rt/krt.h"

/* far from where kiln and QEMU put devices in the hole */
#define UNBACKED_MMIO 0xf0000000ull

static long ring0_int3(long unused)
{
	(void)unused;
	__asm__ volatile("int3");
	return 0;
}

int main(void)
{
	size_t len;
	const char *mode = krt_param("crash", &len);

	if (!mode) {
		mode = "mmio";
		len = 4;
	}
	krt_printf("crash: about to fault (%.*s)\n", (int)len, mode);
	if (len == 4 && strncmp(mode, "int3", 4) == 0) {
		krt_ring0(ring0_int3, 0);
	} else if (len == 3 && strncmp(mode, "ud2", 3) == 0) {
		__asm__ volatile("ud2");
	} else if (len == 6 && strncmp(mode, "triple", 6) == 0) {
		krt_triple_fault();
	} else {
		void (*fn)(void) = (void (*)(void))krt_phys(UNBACKED_MMIO);
		fn();
	}
	krt_printf("crash: still alive, the fault did not stop the VM\n");
	return 1;
}
