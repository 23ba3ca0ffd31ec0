// SPDX-License-Identifier: Apache-2.0
/*
 * kiln's seccomp filters (daemon/seccomp_filters.h): every thread of a
 * running VM is filtered (Seccomp: 2 in /proc), and each thread kind that
 * makes a call outside its list ends kiln with exit 148 and one log line
 * naming the thread and the call. The trigger is the test-only
 * KILN_TEST_SECCOMP_VIOLATE=<kind>: that kind's thread calls getpgrp (in no
 * list) right after loading its filter. --no-seccomp leaves threads bare.
 */
#include "api_client.h"
#include "harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_BAD_SYSCALL 148

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
/* seccomp.c: LeakSanitizer's exit check needs the main thread unfiltered */
#define SKIP_IF_SANITIZED() cr_skip_test("a sanitizer build leaves the vmm thread unfiltered")
#else
#define SKIP_IF_SANITIZED() ((void)0)
#endif

static struct kproc kp;
static char sock[64], *cfg_path;

static void setup(void)
{
	snprintf(sock, sizeof(sock), "/tmp/kiln-it-seccomp-%d.sock", getpid());
	unlink(sock);
}

static void teardown(void)
{
	kh_kill(&kp);
	unsetenv("KILN_TEST_SECCOMP_VIOLATE");
	unlink(sock);
	if (cfg_path)
		unlink(cfg_path);
	free(cfg_path);
	cfg_path = NULL;
}

TestSuite(seccomp, .init = setup, .fini = teardown, .timeout = 180);

/* kiln with the API and memck (a vCPU) with an entropy device (an I/O thread) */
static void start_vm(const char *extra)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	                   "\"" KH_GUEST_ARGS
	                   " memck.mib=4 memck.report_ms=100\"}, \"machine-config\": "
	                   "{\"vcpu_count\": 1, \"mem_size_mib\": 128}, \"entropy\": {}}",
	                   kh_guest("memck"));
	cfg_path = kh_write_temp(cfg, ".json");
	free(cfg);
	const char *argv[] = {"kiln", "--api-sock", sock, "--config-file", cfg_path, extra, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
}

/* a request once the socket accepts; its status or -errno */
static int get_root(void)
{
	struct ac_resp r;
	int st = -1;
	for (int i = 0; i < 500 && st < 0; i++) {
		st = ac_request(sock, "GET", "/", NULL, &r);
		if (st < 0)
			usleep(10000);
		else
			ac_resp_free(&r);
	}
	return st;
}

/* how many of kiln's threads show Seccomp: 2, of how many */
static void count_filtered(int *filtered, int *threads)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", kp.pid);
	DIR *d = opendir(path);
	cr_assert(d, "cannot list %s", path);
	*filtered = *threads = 0;
	for (struct dirent *t; (t = readdir(d));) {
		if (t->d_name[0] == '.')
			continue;
		char status[512], line[256];
		snprintf(status, sizeof(status), "%s/%s/status", path, t->d_name);
		FILE *f = fopen(status, "r");
		if (!f)
			continue;
		(*threads)++;
		while (fgets(line, sizeof(line), f))
			if (strcmp(line, "Seccomp:\t2\n") == 0)
				(*filtered)++;
		fclose(f);
	}
	closedir(d);
}

Test(seccomp, every_thread_of_a_running_vm_is_filtered)
{
	SKIP_IF_SANITIZED();
	start_vm(NULL);
	cr_assert_eq(get_root(), 200, "output:\n%s", kp.out);
	cr_assert(kh_wait_for(&kp, "memck: report 1 ", 60000), "no report: %s", kp.out);
	int filtered, threads;
	count_filtered(&filtered, &threads);
	/* the VMM, the API's, the vCPU's and the entropy device's threads at least */
	cr_assert_geq(threads, 4, "%d threads", threads);
	cr_assert_eq(filtered, threads, "%d of %d threads filtered; output:\n%s", filtered, threads,
	             kp.out);
}

Test(seccomp, no_seccomp_leaves_threads_unfiltered)
{
	start_vm("--no-seccomp");
	cr_assert_eq(get_root(), 200, "output:\n%s", kp.out);
	cr_assert(kh_wait_for(&kp, "memck: report 1 ", 60000), "no report: %s", kp.out);
	int filtered, threads;
	count_filtered(&filtered, &threads);
	cr_assert_eq(filtered, 0, "%d of %d threads filtered", filtered, threads);
}

/* kind `kind` calls getpgrp: kiln exits 148 naming `thread` and the call */
static void expect_killed(const char *kind, const char *thread)
{
	char *want = kh_fmt("thread %s", thread);
	int st = kh_wait_exit(&kp, 60000);
	cr_assert_eq(st, EXIT_BAD_SYSCALL, "%s: kiln ended with %d (%s); output:\n%s", kind, st,
	             kh_status(&kp), kp.out);
	const char *line = strstr(kp.out, want);
	cr_assert(line, "%s: no \"%s\" in the output:\n%s", kind, want, kp.out);
	cr_assert(strstr(line, "made system call 111 (getpgrp)"), "%s: output:\n%s", kind, kp.out);
	free(want);
}

Test(seccomp, vmm_thread_outside_its_list)
{
	SKIP_IF_SANITIZED();
	setenv("KILN_TEST_SECCOMP_VIOLATE", "vmm", 1);
	start_vm(NULL);
	expect_killed("vmm", "kiln ");
}

Test(seccomp, vcpu_thread_outside_its_list)
{
	setenv("KILN_TEST_SECCOMP_VIOLATE", "vcpu", 1);
	start_vm(NULL);
	expect_killed("vcpu", "kiln_vcpu0");
}

Test(seccomp, io_thread_outside_its_list)
{
	setenv("KILN_TEST_SECCOMP_VIOLATE", "io", 1);
	start_vm(NULL);
	expect_killed("io", "kiln_io");
}

Test(seccomp, api_thread_outside_its_list)
{
	setenv("KILN_TEST_SECCOMP_VIOLATE", "api", 1);
	const char *argv[] = {"kiln", "--api-sock", sock, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	get_root(); /* the first client: the thread loads its filter, then trips */
	expect_killed("api", "MHD");
}

Test(seccomp, migration_thread_outside_its_list)
{
	setenv("KILN_TEST_SECCOMP_VIOLATE", "migration", 1);
	const char *argv[] = {"kiln", "--api-sock", sock, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	cr_assert_eq(get_root(), 200, "output:\n%s", kp.out);
	char *body = kh_fmt("{\"listen\": \"unix:%s.mig\"}", sock);
	struct ac_resp r;
	ac_request(sock, "PUT", "/migration/receive", body, &r);
	ac_resp_free(&r);
	free(body);
	expect_killed("migration", "kiln_mig_recv");
	char *mig = kh_fmt("%s.mig", sock);
	unlink(mig);
	free(mig);
}
