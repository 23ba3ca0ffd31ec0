// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_examples.c: the examples work as their headers
 * say. examples/linux-guest/run.sh with a command boots Debian's kernel
 * through the API, the command's output reaches the console, and the
 * script ends with kiln's status 0 after the guest resets. It runs with
 * KILN_IN_TESTBED=1, as the script does inside the test bed: the build and
 * the image are already there.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct kproc kp;

static void teardown(void)
{
	kh_kill(&kp);
}

TestSuite(examples, .fini = teardown, .timeout = 540);

Test(examples, linux_guest_runs_a_command)
{
	const char *root = getenv("KILN_SOURCE_ROOT");
	char script[4096], image[4096];
	snprintf(script, sizeof(script), "%s/examples/linux-guest/run.sh", root ? root : ".");
	snprintf(image, sizeof(image), "%s/tests/linux/cache/rootfs.ext4", root ? root : ".");
	if (access(image, R_OK) != 0)
		cr_skip_test("%s is absent: run tests/linux/build.py", image);
	cr_assert_eq(setenv("KILN_IN_TESTBED", "1", 1), 0);
	const char *argv[] = {"/bin/bash", script, "cat", "/proc/version", NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	cr_assert(kh_wait_for(&kp, "kiln-rootfs: exit 0", 300000),
	          "the guest did not run the command (%s); the script printed:\n%s", kh_status(&kp),
	          kp.out);
	int st = kh_wait_exit(&kp, 120000);
	cr_assert_eq(st, 0, "run.sh exited %d:\n%s", st, kp.out);
	cr_assert(strstr(kp.out, "Linux version 6."), "no /proc/version on the console:\n%s",
	          kp.out);
}
