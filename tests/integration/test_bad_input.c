// SPDX-License-Identifier: Apache-2.0
/*
 * Bad input to `kiln --no-api --config-file`: every case must end with a
 * precise message and Firecracker's exit code for a bad configuration (152)
 * or bad arguments (153), never a crash or a hang.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_BAD_CONFIG 152
#define EXIT_ARGS       153

static struct kproc kp;
static char *tmp_files[4];

static void teardown(void)
{
	kh_kill(&kp);
	for (size_t i = 0; i < 4; i++) {
		if (tmp_files[i])
			unlink(tmp_files[i]);
		free(tmp_files[i]);
		tmp_files[i] = NULL;
	}
}

TestSuite(bad_input, .fini = teardown, .timeout = 60);

/* runs kiln on `json`, expects exit code `code` and `needle` in the output */
/* kiln started with `argv` exits with `code` and says `needle` (kp.out keeps the output) */
static void expect_exit(const char *const argv[], int code, const char *needle)
{
	if (kp.pid > 0)
		kh_kill(&kp); /* the one before; the suite's teardown ends the last */
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 20000);
	cr_assert_eq(st, code, "%s %s: output:\n%s", argv[1], argv[2] ? argv[2] : "", kp.out);
	cr_assert(strstr(kp.out, needle) != NULL, "no \"%s\" in the output:\n%s", needle, kp.out);
}

static void expect_refused(const char *json, int code, const char *needle)
{
	cr_assert_eq(kh_spawn_config(&kp, json), 0);
	int st = kh_wait_exit(&kp, 20000);
	cr_assert_eq(st, code, "exit %d (wanted %d); output:\n%s", st, code, kp.out);
	cr_expect(strstr(kp.out, needle) != NULL, "missing \"%s\" in:\n%s", needle, kp.out);
	cr_expect(strstr(kp.out, "AddressSanitizer") == NULL, "sanitizer report:\n%s", kp.out);
}

static char *config_with_kernel(const char *kernel, const char *extra)
{
	return kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\"}%s}", kernel,
	              extra ? extra : "");
}

Test(bad_input, missing_kernel)
{
	char *c = config_with_kernel("/nonexistent/vmlinux", NULL);
	expect_refused(c, EXIT_BAD_CONFIG, "/nonexistent/vmlinux");
	free(c);
}

Test(bad_input, kernel_is_not_elf_or_bzimage)
{
	tmp_files[0] = kh_write_temp("#!/bin/sh\necho this is not a kernel\n", ".bin");
	char *c = config_with_kernel(tmp_files[0], NULL);
	expect_refused(c, EXIT_BAD_CONFIG, "not an ELF");
	free(c);
}

Test(bad_input, truncated_elf)
{
	/* the first 200 bytes of a real guest: ELF header intact, program headers cut */
	int in = open(kh_guest("hello"), O_RDONLY);
	cr_assert(in >= 0);
	char buf[200];
	cr_assert_eq(read(in, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(in);
	tmp_files[0] = kh_write_temp("", ".elf");
	int out = open(tmp_files[0], O_WRONLY | O_TRUNC);
	cr_assert_eq(write(out, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(out);
	char *c = config_with_kernel(tmp_files[0], NULL);
	expect_refused(c, EXIT_BAD_CONFIG, "beyond the end of the file");
	free(c);
}

Test(bad_input, memory_size_zero)
{
	char *c = config_with_kernel(
	        kh_guest("hello"),
	        ", \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 0}");
	expect_refused(c, EXIT_BAD_CONFIG, "mem_size_mib");
	free(c);
}

Test(bad_input, memory_larger_than_host)
{
	char *c = config_with_kernel(
	        kh_guest("hello"),
	        ", \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 900000}");
	expect_refused(c, EXIT_BAD_CONFIG, "host");
	free(c);
}

Test(bad_input, zero_vcpus)
{
	char *c = config_with_kernel(
	        kh_guest("hello"),
	        ", \"machine-config\": {\"vcpu_count\": 0, \"mem_size_mib\": 64}");
	expect_refused(c, EXIT_BAD_CONFIG, "vcpu_count");
	free(c);
}

Test(bad_input, too_many_vcpus)
{
	char *c = config_with_kernel(
	        kh_guest("hello"),
	        ", \"machine-config\": {\"vcpu_count\": 33, \"mem_size_mib\": 64}");
	expect_refused(c, EXIT_BAD_CONFIG, "vcpu_count");
	free(c);
}

Test(bad_input, command_line_too_long)
{
	char args[4000];
	memset(args, 'a', sizeof(args) - 1);
	args[sizeof(args) - 1] = 0;
	char *c =
	        kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"%s\"}}",
	               kh_guest("hello"), args);
	expect_refused(c, EXIT_BAD_CONFIG, "command line");
	free(c);
}

Test(bad_input, initrd_does_not_fit)
{
	tmp_files[0] = kh_write_temp("", ".initrd");
	cr_assert_eq(truncate(tmp_files[0], 200 << 20), 0); /* 200 MiB, sparse */
	char *c = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"initrd_path\": "
	                 "\"%s\"}, \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64}}",
	                 kh_guest("hello"), tmp_files[0]);
	expect_refused(c, EXIT_BAD_CONFIG, "initrd");
	free(c);
}

Test(bad_input, malformed_json)
{
	expect_refused("{\"boot-source\": {\"kernel_image_path\": ", EXIT_BAD_CONFIG,
	               "invalid JSON");
}

/* as Firecracker's VmmConfig: ignored (kiln names it in a warning), the VM boots */
Test(bad_input, unknown_top_level_key)
{
	char *c = config_with_kernel(kh_guest("hello"), ", \"flux-capacitor\": {}");
	expect_refused(c, 0, "unknown top-level field \"flux-capacitor\" ignored");
	free(c);
}

Test(bad_input, missing_boot_source)
{
	expect_refused("{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64}}",
	               EXIT_BAD_CONFIG, "boot-source");
}

Test(bad_input, missing_config_file)
{
	const char *argv[] = {"kiln", "--no-api", "--config-file", "/nonexistent/vm.json", NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 20000);
	cr_assert_eq(st, EXIT_BAD_CONFIG, "output:\n%s", kp.out);
	cr_expect(strstr(kp.out, "/nonexistent/vm.json") != NULL, "output:\n%s", kp.out);
}

Test(bad_input, unknown_flag)
{
	const char *argv[] = {"kiln", "--frobnicate", NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 20000);
	cr_assert_eq(st, EXIT_ARGS, "output:\n%s", kp.out);
	cr_expect(strstr(kp.out, "frobnicate") != NULL, "output:\n%s", kp.out);
}

Test(bad_input, no_api_without_config_file)
{
	const char *argv[] = {"kiln", "--no-api", NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 20000);
	cr_assert_eq(st, EXIT_ARGS, "output:\n%s", kp.out);
	cr_expect(strstr(kp.out, "--config-file") != NULL, "output:\n%s", kp.out);
}

/* --id: Firecracker's instance ids (UUIDs have '-') pass; anything else is refused */
Test(bad_input, instance_id)
{
	const char *bad[] = {"", "a/b", "a b", "x.y", NULL};
	char long_id[66];
	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	for (int i = 0; i < 5; i++) {
		const char *id = bad[i] ? bad[i] : long_id;
		const char *argv[] = {"kiln", "--id", id, "--no-api", NULL};
		cr_assert_eq(kh_spawn(&kp, argv), 0);
		int st = kh_wait_exit(&kp, 20000);
		cr_assert_eq(st, EXIT_ARGS, "--id '%s': output:\n%s", id, kp.out);
		cr_expect(strstr(kp.out, "--id must be") != NULL, "output:\n%s", kp.out);
		kh_kill(&kp);
	}
	/* a good id gets past the check to the next one (--no-api alone) */
	const char *argv[] = {"kiln", "--id", "4f5c2a7e-0b1d-4c3e-9f00-a1b2c3d4e5f6", "--no-api",
	                      NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 20000);
	cr_assert_eq(st, EXIT_ARGS, "output:\n%s", kp.out);
	cr_assert(strstr(kp.out, "--config-file") && !strstr(kp.out, "--id must be"), "output:\n%s",
	          kp.out);
}

/* a jailer's flags: numbers of microseconds only */
Test(bad_input, start_time_flags)
{
	const char *flags[] = {"--start-time-us", "--start-time-cpu-us", "--parent-cpu-time-us"};
	const char *bad[] = {"", "-1", "12x", "99999999999999999999"};
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 4; j++) {
			const char *argv[] = {"kiln", flags[i], bad[j], "--no-api", NULL};
			expect_exit(argv, EXIT_ARGS, "must be a number of microseconds");
			cr_expect(strstr(kp.out, flags[i]), "output:\n%s", kp.out);
		}
	/* good values and --no-seccomp get past to the next check (--no-api alone) */
	const char *argv[] = {"kiln",     "--start-time-us",
	                      "123",      "--start-time-cpu-us",
	                      "4",        "--parent-cpu-time-us",
	                      "0",        "--no-seccomp",
	                      "--no-api", NULL};
	expect_exit(argv, EXIT_ARGS, "--no-api needs --config-file");
}
