// SPDX-License-Identifier: Apache-2.0
/*
 * crash: prints "crash: about to fault", then breaks the VM in the way
 * `crash=` asks:
 *   mmio   (default) jump into the MMIO hole from ring 0: KVM cannot fetch
 *          instructions from MMIO and exits with KVM_EXIT_INTERNAL_ERROR
 *          (emulation failure), on VMX/SVM hosts and on PVM alike. Ring 0
 *          matters: KVM turns an emulation failure at CPL 3 into a #UD for
 *          the guest (Linux arch/x86/kvm/x86.c, handle_emulation_failure),
 *          which would only reach the runtime's panic path
 *   ud2    an invalid opcode in ring 3: the runtime's "GUEST PANIC" path
 *   triple a triple fault: KVM_EXIT_SHUTDOWN
 */
#include "rt/krt.h"

/* far from where kiln and QEMU put devices in the hole */
#define UNBACKED_MMIO 0xf0000000ull

/* ring 0 (krt_ring0): fetches the next instruction from `target`; never returns */
static long ring0_jump(long target)
{
	void (*fn)(void) = (void (*)(void))(uintptr_t)target;

	fn();
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
	if (len == 3 && strncmp(mode, "ud2", 3) == 0) {
		__asm__ volatile("ud2");
	} else if (len == 6 && strncmp(mode, "triple", 6) == 0) {
		krt_triple_fault();
	} else {
		krt_ring0(ring0_jump, (long)(uintptr_t)krt_phys(UNBACKED_MMIO));
	}
	krt_printf("crash: still alive, the fault did not stop the VM\n");
	return 1;
}
