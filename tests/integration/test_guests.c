// SPDX-License-Identifier: Apache-2.0
/*
 * Boots the freestanding test guests with `kiln --no-api --config-file` and
 * checks what they print on the serial port and how kiln exits.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_OK    0
#define EXIT_CRASH 2

static struct kproc kp;

static void teardown(void)
{
	kh_kill(&kp);
}

TestSuite(guests, .fini = teardown, .timeout = 120);

/* boots `name`, expects a clean exit, returns the output (owned by kp) */
static const char *boot_ok(const char *name, unsigned vcpus, unsigned mem, const char *args)
{
	char *cfg = kh_guest_config(name, vcpus, mem, args);
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	int st = kh_wait_exit(&kp, 60000);
	cr_assert_eq(st, EXIT_OK, "kiln exited with %d; output:\n%s", st, kp.out);
	return kp.out;
}

static void expect(const char *out, const char *needle)
{
	cr_expect(strstr(out, needle) != NULL, "missing \"%s\" in output:\n%s", needle, out);
}

Test(guests, hello_pvh_sees_cmdline_memory_and_cpu)
{
	const char *out = boot_ok("hello", 1, 128, "kiln.test=pvh-7f3a touch=1");
	expect(out, "hello from the kiln test guest");
	expect(out, "cmdline: kiln.test=pvh-7f3a touch=1");
	expect(out, "cpus: 1");
	expect(out, "touch: ok");
	expect(out, "bye");
}

Test(guests, hello_64bit_entry_sees_cmdline_memory_and_cpu)
{
	const char *out = boot_ok("hello-nopvh", 1, 64, "kiln.test=linux64-91c2 touch=1");
	expect(out, "hello from the kiln test guest");
	expect(out, "cmdline: kiln.test=linux64-91c2 touch=1");
	expect(out, "cpus: 1");
	expect(out, "touch: ok");
	expect(out, "bye");
}

/* the runtime reports a lock that stays locked (after a restore: a lost page) */
Test(guests, a_lock_nobody_holds_is_reported)
{
	char *cfg = kh_guest_config("hello", 1, 64, "stuck_lock=1");
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	cr_assert(kh_wait_for(&kp, "taking a lock nobody holds", 30000), "%s", kp.out);
	cr_assert(kh_wait_for(&kp, "still locked after 5 s", 30000), "%s\n%s", kh_status(&kp),
	          kp.out);
	cr_expect_null(strstr(kp.out, "bye"), "the guest went past the lock:\n%s", kp.out);
}

Test(guests, ram_size_reported_by_guest_matches_config)
{
	const char *out = boot_ok("hello", 1, 256, NULL);
	/* usable RAM: 0x9fc00 below the EBDA + everything from 1 MiB up */
	expect(out, "ram: 255 MiB");
}

Test(guests, smp_two_vcpus_all_report_in)
{
	const char *out = boot_ok("smp", 2, 128, NULL);
	expect(out, "cpu 0 up");
	expect(out, "cpu 1 up");
	expect(out, "smp: 2/2 cpus up");
}

Test(guests, hello_counts_two_vcpus_from_mp_table)
{
	const char *out = boot_ok("hello", 2, 128, NULL);
	expect(out, "cpus: 2");
}

Test(guests, layout_around_the_mmio_hole_3_5_gib, .timeout = 180)
{
	const char *out = boot_ok("hello", 1, 3584, "touch=1");
	/* 3 GiB below the hole, 512 MiB from 4 GiB up; the guest touched both */
	expect(out, "mem: 0x100000 0xc0000000 1");
	expect(out, "mem: 0x100000000 0x120000000 1");
	expect(out, "ram: 3583 MiB");
	expect(out, "touch: ok");
}

Test(guests, crash_guest_ends_vm_with_crash_status)
{
	char *cfg = kh_guest_config("crash", 1, 64, NULL);
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	int st = kh_wait_exit(&kp, 60000);
	cr_assert_eq(st, EXIT_CRASH, "kiln exited with %d; output:\n%s", st, kp.out);
	expect(kp.out, "crash: about to fault");
	expect(kp.out, "VM crashed");
	cr_expect(strstr(kp.out, "bye") == NULL);
}

Test(guests, boot_timer_logs_guest_boot_time)
{
	char *cfg = kh_guest_config("hello", 1, 64, NULL);
	char *path = kh_write_temp(cfg, ".json");
	const char *argv[] = {"kiln", "--no-api",      "--boot-timer", "--level",
	                      "Info", "--config-file", path,           NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 60000);
	unlink(path);
	free(path);
	free(cfg);
	cr_assert_eq(st, EXIT_OK, "output:\n%s", kp.out);
	expect(kp.out, "Guest-boot-time =");
}

Test(guests, serial_output_to_file)
{
	char *out_path = kh_write_temp("", ".serial");
	char *cfg = kh_guest_config("hello", 1, 64, "kiln.test=to-file");
	char *path = kh_write_temp(cfg, ".json");
	const char *argv[] = {"kiln", "--no-api", "--serial-out", out_path, "--config-file",
	                      path,   NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 60000);
	cr_assert_eq(st, EXIT_OK, "output:\n%s", kp.out);
	cr_expect(strstr(kp.out, "hello from") == NULL, "serial went to stdout too");

	FILE *f = fopen(out_path, "r");
	cr_assert(f);
	char buf[8192] = {0};
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	expect(buf, "cmdline: kiln.test=to-file");
	unlink(out_path);
	unlink(path);
	free(out_path);
	free(path);
	free(cfg);
}

Test(guests, triple_fault_is_a_crash)
{
	char *cfg = kh_guest_config("crash", 1, 64, "crash=triple");
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	int st = kh_wait_exit(&kp, 60000);
	cr_assert_eq(st, EXIT_CRASH, "kiln exited with %d; output:\n%s", st, kp.out);
	expect(kp.out, "triple-faulted");
}
