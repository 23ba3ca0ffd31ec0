// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_blk.c: Debian's cloud kernel on a virtio-blk
 * root, judged by Linux's own drivers. kiln boots tests/linux's image
 * (built by tests/linux/build.py into tests/linux/cache): the vmlinux, its
 * initramfs, and a copy of rootfs.ext4 as the root drive (is_root_device,
 * so kiln adds "root=/dev/vda rw" or "ro"). The initramfs loads
 * virtio_mmio and virtio_blk, mounts /dev/vda and switch_roots to it; the
 * image's /init runs kt-write (tests/linux/progs) as kiln.run= asks and
 * resets the machine without a sync (reboot -n -f, with reboot=k), so that
 * only what kt-write fsynced is known to be on the drive.
 *   - read-write: the file kt-write wrote and fsynced is in the image
 *     afterwards, its checksum the one the guest printed; the host checks
 *     it with e2fsprogs after a journal replay (e2fsck -fy, then -fn must
 *     find the file system clean; debugfs does not read the journal);
 *   - read-only (is_read_only): the root is mounted ro, the write fails
 *     with EROFS, the guest reports it, and the image is not changed by a
 *     single byte;
 *   - a second drive, on the other io engine and cache type (Async, that
 *     is io_uring, and Writeback, where the root is Sync and Unsafe), is
 *     /dev/vdb: kt-write writes its raw blocks and fsyncs, and the host
 *     finds the marker and the guest's checksum at the start of its file.
 * Every guest line goes through /dev/kmsg (see tests/linux/README.md).
 *
 * Linux finds kiln's virtio-mmio devices only in the ACPI DSDT (Debian's
 * kernels lack CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES); without it the
 * initramfs reports that /dev/vda never came.
 *
 * Measured in the test bed (TCG): the first two at once take 55 s of wall
 * time; the three one after the other, about 60 s. With kt-write's two fsyncs taken out, the reset
 * leaves the file in the image but empty, and the first test fails (its size is 0).
 */
#include "linux_guest.h"
#include "../linux/progs/kt.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM_MIB    256
#define FILE_BYTES 100000

static struct kproc kp;
static char disk[64]; /* this test's copy of rootfs.ext4, removed at teardown */
static char data[64]; /* the second drive's file */

static void teardown(void)
{
	lg_cleanup(&kp, disk);
	if (data[0])
		unlink(data);
	data[0] = '\0';
}

/* one boot takes 34-58 s of wall time in the test bed (see test_linux.c); two run at once */
TestSuite(linux_blk, .fini = teardown, .timeout = 540);

Test(linux_blk, fsynced_file_is_in_the_image)
{
	char marker[17], *cmd, *out;
	int st;

	cr_assert_eq(kh_marker(marker), 0);
	const char *root = lg_copy_rootfs(disk);
	char *run_arg = kh_fmt("kt-write,/kiln-%s,%d,%s", marker, FILE_BYTES, marker);
	lg_spawn(&kp, MEM_MIB, root, false, run_arg, "", "", NULL);
	free(run_arg);
	char *report = kh_fmt("kt-write: wrote /kiln-%s bytes=%d fnv1a=", marker, FILE_BYTES);
	lg_expect_run(&kp, "rw", report, 0);
	unsigned long long guest_sum = 0;
	const char *at = strstr(kp.out, report);
	cr_assert_eq(sscanf(at + strlen(report), "%16llx", &guest_sum), 1, "%s", at);
	free(report);

	/* the reset left the journal unreplayed: replay it, then the file system must be clean */
	cmd = kh_fmt("e2fsck -fy '%s' 2>&1", root);
	out = lg_sh(cmd, NULL, &st);
	cr_assert(st == 0 || st == 1, "%s exited %d:\n%s", cmd, st, out);
	free(out);
	free(cmd);
	cmd = kh_fmt("e2fsck -fn '%s' 2>&1", root);
	out = lg_sh(cmd, NULL, &st);
	cr_assert_eq(st, 0, "not clean after the replay: %s exited %d:\n%s", cmd, st, out);
	free(out);
	free(cmd);

	size_t len;
	cmd = kh_fmt("debugfs -R 'cat /kiln-%s' '%s' 2>/dev/null", marker, root);
	out = lg_sh(cmd, &len, &st);
	cr_assert_eq(st, 0, "%s exited %d", cmd, st);
	free(cmd);
	cr_assert_eq(len, (size_t)FILE_BYTES, "the image's /kiln-%s has %zu bytes, not %d", marker,
	             len, FILE_BYTES);
	cr_assert(!strncmp(out, marker, 16) && out[16] == '\n', "it does not start with %s",
	          marker);
	unsigned long long sum = kt_fnv1a(KT_FNV_INIT, out, len);
	cr_assert_eq(sum, guest_sum, "the image's file sums to %016llx, the guest wrote %016llx",
	             sum, guest_sum);
	free(out);
}

Test(linux_blk, read_only_root_refuses_the_write)
{
	char marker[17], *cmd, *out;
	int st;

	cr_assert_eq(kh_marker(marker), 0);
	const char *root = lg_copy_rootfs(disk);
	char *run_arg = kh_fmt("kt-write,/kiln-%s,4096,%s", marker, marker);
	lg_spawn(&kp, MEM_MIB, root, true, run_arg, "", "", NULL);
	free(run_arg);
	char *report = kh_fmt("kt-write: open /kiln-%s: Read-only file system", marker);
	lg_expect_run(&kp, "ro", report, 1);
	free(report);

	cmd = kh_fmt("cmp '%s' '%s' 2>&1", lg_image("rootfs.ext4"), root);
	out = lg_sh(cmd, NULL, &st);
	cr_assert_eq(st, 0, "the read-only root changed: %s", out);
	free(out);
	free(cmd);
}

Test(linux_blk, second_drive_async_writeback_is_vdb)
{
	char marker[17];
	int st;

	cr_assert_eq(kh_marker(marker), 0);
	strcpy(data, "/tmp/kiln-linux-vdb-XXXXXX");
	int fd = mkstemp(data);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 8 << 20), 0);
	close(fd);
	char *drives = kh_fmt(", {\"drive_id\": \"data\", \"path_on_host\": \"%s\", "
	                      "\"is_root_device\": false, \"is_read_only\": false, "
	                      "\"io_engine\": \"Async\", \"cache_type\": \"Writeback\"}",
	                      data);
	char *run_arg = kh_fmt("kt-write,/dev/vdb,%d,%s", FILE_BYTES, marker);
	lg_spawn(&kp, MEM_MIB, lg_copy_rootfs(disk), false, run_arg, drives, "", NULL);
	free(drives);
	free(run_arg);
	char *report = kh_fmt("kt-write: wrote /dev/vdb bytes=%d fnv1a=", FILE_BYTES);
	lg_expect_run(&kp, "rw", report, 0);
	char *engine =
	        kh_fmt("drive data: %s, 16384 sectors, read-write, writeback, Async engine", data);
	cr_assert(strstr(kp.out, engine), "kiln did not report \"%s\":\n%s", engine, kp.out);
	free(engine);
	unsigned long long guest_sum = 0;
	const char *at = strstr(kp.out, report);
	cr_assert_eq(sscanf(at + strlen(report), "%16llx", &guest_sum), 1, "%s", at);
	free(report);

	char *cmd = kh_fmt("head -c %d '%s'", FILE_BYTES, data);
	size_t len;
	char *out = lg_sh(cmd, &len, &st);
	free(cmd);
	cr_assert_eq(len, (size_t)FILE_BYTES);
	cr_assert(!strncmp(out, marker, 16) && out[16] == '\n', "the drive does not start with %s",
	          marker);
	unsigned long long sum = kt_fnv1a(KT_FNV_INIT, out, len);
	cr_assert_eq(sum, guest_sum,
	             "the drive's first %d bytes sum to %016llx, the guest wrote %016llx",
	             FILE_BYTES, sum, guest_sum);
	free(out);
}
