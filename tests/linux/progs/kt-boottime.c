// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-boottime.c: kt-boottime
 *
 * Tells the VMM that the guest has booted, as Firecracker's test init does:
 * writes the byte 123 to I/O port 0x440 (the boot-timer device), after
 * ioperm(2) gave this process that port. Reports
 *   kt-boottime: wrote 123 to port 0x440
 * and exits 0, or the failed step and errno's text, exit status 1.
 */
#include "kt.h"

#include <errno.h>
#include <sys/io.h>

#define BOOT_TIMER_PORT  0x440
#define BOOT_TIMER_MAGIC 123

int main(void)
{
	if (ioperm(BOOT_TIMER_PORT, 1, 1) != 0) {
		kt_say("kt-boottime: ioperm: %s", strerror(errno));
		return 1;
	}
	outb(BOOT_TIMER_MAGIC, BOOT_TIMER_PORT);
	kt_say("kt-boottime: wrote %d to port %#x", BOOT_TIMER_MAGIC, BOOT_TIMER_PORT);
	return 0;
}
