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

/* the threads of run.sh's kiln (its child) during one second, or why not */
static char *kiln_threads(pid_t script)
{
	char path[64];
	int kiln = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", script, script);
	FILE *f = fopen(path, "r");
	if (!f || fscanf(f, "%d", &kiln) != 1 || kiln <= 0) {
		if (f)
			fclose(f);
		return kh_fmt("(no kiln under run.sh, pid %d)", script);
	}
	fclose(f);
	struct kh_threads *t = kh_threads_begin(kiln);
	usleep(1000000);
	return kh_threads_end(t);
}

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
	/* about 20 s on hardware, 75 in the TCG test bed; the wait is scaled there */
	if (!kh_wait_for(&kp, "kiln-rootfs: exit 0", 60000)) {
		char *why = kiln_threads(kp.pid);
		cr_assert_fail("the guest did not run the command (%s); the script printed:\n%s\n"
		               "%s",
		               kh_status(&kp), kp.out, why);
	}
	int st = kh_wait_exit(&kp, 30000);
	cr_assert_eq(st, 0, "run.sh exited %d:\n%s", st, kp.out);
	cr_assert(strstr(kp.out, "Linux version 6."), "no /proc/version on the console:\n%s",
	          kp.out);
}

/* the N of "  NAME: memck: report N" in the script's summary; 0 when absent */
static unsigned long report_of(const char *out, const char *name)
{
	char *key = kh_fmt("  %s: memck: report ", name);
	const char *at = strstr(out, key);
	unsigned long n = at ? strtoul(at + strlen(key), NULL, 10) : 0;
	free(key);
	return n;
}

/*
 * examples/migration.sh moves the memck guest from namespace a to b and
 * back to a new kiln in a, printing each move's downtime; the guest's
 * reports go on on each kiln. Needs root (ip netns).
 */
Test(examples, migration_moves_a_vm_and_back)
{
	if (geteuid() != 0)
		cr_skip_test("examples/migration.sh needs root for network namespaces");
	const char *root = getenv("KILN_SOURCE_ROOT");
	char script[4096];
	snprintf(script, sizeof(script), "%s/examples/migration.sh", root ? root : ".");
	const char *argv[] = {"/bin/bash", script, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 300000);
	cr_assert_eq(st, 0, "migration.sh exited %d:\n%s", st, kp.out);
	cr_assert(strstr(kp.out, "one -> two: migration to tcp:10.78.0.2:4700 complete: downtime "),
	          "%s", kp.out);
	cr_assert(
	        strstr(kp.out, "two -> three: migration to tcp:10.78.0.1:4701 complete: downtime "),
	        "%s", kp.out);
	unsigned long one = report_of(kp.out, "one"), two = report_of(kp.out, "two"),
	              three = report_of(kp.out, "three");
	cr_assert(one > 0 && two > one && three > two,
	          "the guest's reports did not go on (%lu, %lu, %lu):\n%s", one, two, three,
	          kp.out);
}

/* scripts/quickstart.sh [ARG] as it runs inside the test bed; its output */
static void quickstart(const char *arg)
{
	const char *root = getenv("KILN_SOURCE_ROOT");
	char script[4096], image[4096];
	snprintf(script, sizeof(script), "%s/scripts/quickstart.sh", root ? root : ".");
	snprintf(image, sizeof(image), "%s/tests/linux/cache/rootfs.ext4", root ? root : ".");
	if (access(image, R_OK) != 0)
		cr_skip_test("%s is absent: run tests/linux/build.py", image);
	const char *argv[] = {"/bin/bash", script, "--in-testbed", arg, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 300000);
	cr_assert_eq(st, 0, "quickstart.sh %s exited %d:\n%s", arg ? arg : "", st, kp.out);
	cr_assert(strstr(kp.out, "Linux version 6."), "no /proc/version on the console:\n%s",
	          kp.out);
	cr_assert(strstr(kp.out, "== kiln exited with status 0"), "%s", kp.out);
	cr_assert(strstr(kp.out, "{\"action_type\": \"InstanceStart\"}\n [HTTP 204]"), "%s",
	          kp.out);
}

/* the README's first command, past its install and build steps */
Test(examples, quickstart_boots_linux_through_the_api)
{
	quickstart(NULL);
}

/* the same with --jailed: kiln under kiln-jailer, as the script reports it */
Test(examples, quickstart_runs_jailed_with_one_flag)
{
	if (geteuid() != 0)
		cr_skip_test("quickstart.sh --jailed needs root");
	if (strcmp(getenv("KILN_STATIC") ? getenv("KILN_STATIC") : "", "1") != 0)
		cr_skip_test(
		        "this build's kiln is not static (a sanitizer build): it cannot be jailed");
	quickstart("--jailed");
	cr_assert(strstr(kp.out, "Uid: 10123 10123 10123 10123;Gid: 10123 10123 10123 10123;"
	                         "CapEff: 0000000000000000;NoNewPrivs: 1"),
	          "%s", kp.out);
	cr_assert(strstr(kp.out, "   root: ./vmlinux\n"), "%s", kp.out);
	cr_assert(!strstr(kp.out, "   root: ./tmp"), "%s", kp.out);
	/* "threads under seccomp: N of N", N >= 4 */
	const char *at = strstr(kp.out, "threads under seccomp: ");
	cr_assert(at, "%s", kp.out);
	unsigned filtered = 0, threads = 0;
	cr_assert_eq(sscanf(at, "threads under seccomp: %u of %u", &filtered, &threads), 2);
	cr_assert(threads >= 4 && filtered == threads, "%u of %u threads filtered:\n%s", filtered,
	          threads, kp.out);
}
