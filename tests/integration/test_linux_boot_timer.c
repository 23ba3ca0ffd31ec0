// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_boot_timer.c: the boot-timer device with a
 * Linux guest. kiln runs with --boot-timer and boots tests/linux's image
 * (tests/linux/README.md), whose /init runs kt-boottime: Linux userspace
 * writes 123 to port 0x440 as Firecracker's test init does, and kiln logs
 * "Guest-boot-time = X us Y ms since start" once. The test logs the
 * figure: the time from kiln's start to Linux's userspace, under the test
 * bed's emulated CPU when there is no /dev/kvm.
 */
#include "linux_guest.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_MIB 256
#define LINE    "Guest-boot-time = "

static struct kproc kp;
static char disk[64];

static void teardown(void)
{
	lg_cleanup(&kp, disk);
}

TestSuite(linux_boot_timer, .fini = teardown, .timeout = 540);

Test(linux_boot_timer, linux_userspace_reports_its_boot)
{
	lg_spawn(&kp, MEM_MIB, lg_copy_rootfs(disk), false, "kt-boottime", "", "", "--boot-timer");
	lg_expect_run(&kp, "rw", "kt-boottime: wrote 123 to port 0x440", 0);
	const char *at = strstr(kp.out, LINE);
	cr_assert(at, "kiln logged no \"" LINE "\"; it printed:\n%s", kp.out);
	cr_assert_null(strstr(at + 1, LINE), "kiln logged the boot time twice:\n%s", kp.out);
	unsigned long long us = 0, ms = 0;
	cr_assert_eq(sscanf(at + strlen(LINE), "%llu us %llu ms since start", &us, &ms), 2, "%s",
	             at);
	cr_assert(us > 0 && ms == us / 1000, "%s", at);
	/* the write came from userspace: after the image's /init started */
	const char *up = strstr(kp.out, "kiln-rootfs: up, / is rw");
	cr_assert(up && up < at, "the boot time was logged before Linux's userspace ran:\n%s",
	          kp.out);
	cr_log_info("kiln start to Linux userspace's write: %llu ms", ms);
}
