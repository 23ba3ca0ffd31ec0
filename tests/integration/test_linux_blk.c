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
 *     single byte.
 * Every guest line goes through /dev/kmsg (see tests/linux/README.md).
 *
 * Linux finds kiln's virtio-mmio devices only in the ACPI DSDT (Debian's
 * kernels lack CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES); without it the
 * initramfs reports that /dev/vda never came.
 *
 * Measured in the test bed (TCG): both tests at once take 55 s of wall
 * time. With kt-write's two fsyncs taken out, the reset leaves the file in
 * the image but empty, and the first test fails (its size is 0).
 */
#include "harness.h"
#include "../linux/progs/kt.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEM_MIB    256
#define FILE_BYTES 100000
/* e2fsprogs lives in /sbin; the test's PATH may lack it */
#define SBIN_PATH "PATH=\"$PATH:/usr/sbin:/sbin\" "

static struct kproc kp;
static char disk[64]; /* this test's copy of rootfs.ext4, removed at teardown */

static void teardown(void)
{
	kh_kill(&kp);
	if (disk[0])
		unlink(disk);
	disk[0] = '\0';
}

/* one boot takes 34-58 s of wall time in the test bed (see test_linux.c); two run at once */
TestSuite(linux_blk, .fini = teardown, .timeout = 540);

/* tests/linux/cache/<name>, or the test is skipped */
static const char *image_file(const char *name)
{
	static __thread char path[3][4096];
	static __thread int next;
	const char *root = getenv("KILN_SOURCE_ROOT");
	char *p = path[next++ % 3];

	snprintf(p, sizeof(path[0]), "%s/tests/linux/cache/%s", root ? root : ".", name);
	if (access(p, R_OK) != 0)
		cr_skip_test("%s is absent: run tests/linux/build.py", p);
	return p;
}

/*
 * Runs `cmd` with sh -c (SBIN_PATH first); what it wrote to stdout, `len`
 * bytes in a malloc'd buffer with a NUL after them, and its exit status.
 */
static char *run(const char *cmd, size_t *len, int *status)
{
	char *full = kh_fmt(SBIN_PATH "%s", cmd);
	FILE *f = popen(full, "r");
	cr_assert_not_null(f, "popen %s: %s", full, strerror(errno));
	free(full);
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	cr_assert_not_null(buf);
	for (size_t got; (got = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			cr_assert_not_null(buf);
		}
	}
	int st = pclose(f);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* a sparse copy of rootfs.ext4 in disk[]: its path */
static const char *copy_rootfs(void)
{
	const char *src = image_file("rootfs.ext4");
	strcpy(disk, "/tmp/kiln-linux-blk-XXXXXX");
	int fd = mkstemp(disk);
	cr_assert_geq(fd, 0);
	close(fd);
	char *cmd = kh_fmt("cp --sparse=always '%s' '%s' 2>&1", src, disk);
	int st;
	char *out = run(cmd, NULL, &st);
	cr_assert_eq(st, 0, "%s: %s", cmd, out);
	free(out);
	free(cmd);
	return disk;
}

/*
 * Starts kiln on the vmlinux and initramfs with `root` as the root drive,
 * and the guest's /init running `run_arg` (kiln.run=). Info level: kiln's
 * line saying why the VM stopped.
 */
static void spawn_guest(const char *root, bool read_only, const char *run_arg)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", "
	                   "\"initrd_path\": \"%s\", \"boot_args\": \"console=ttyS0 reboot=k "
	                   "panic=1 kiln.run=%s\"}, "
	                   "\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": %d}, "
	                   "\"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
	                   "\"is_root_device\": true, \"is_read_only\": %s}]}",
	                   image_file("vmlinux"), image_file("initramfs.cpio"), run_arg, MEM_MIB,
	                   root, read_only ? "true" : "false");
	char *cfg_path = kh_write_temp(cfg, ".json");
	cr_assert_not_null(cfg_path);
	free(cfg);
	const char *argv[] = {"kiln",          "--no-api", "--level", "Info",
	                      "--config-file", cfg_path,   NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	kp.cfg_path = cfg_path; /* kh_kill removes it */
}

/* waits for `line` in kiln's output (`s` seconds on real hardware) */
static void expect_line(const char *line, int s)
{
	cr_assert(kh_wait_for(&kp, line, s * 1000), "no \"%s\" within %d s; kiln printed:\n%s",
	          line, s, kp.out);
}

/* the guest mounted its root `mode`, ran its command, which exited `status`, and kiln ended 0 */
static void expect_run(const char *mode, const char *report, int status)
{
	char *mounted = kh_fmt("kiln-initramfs: /dev/vda mounted %s", mode);
	expect_line(mounted, 180);
	free(mounted);
	char *up = kh_fmt("kiln-rootfs: up, / is %s", mode);
	expect_line(up, 60);
	free(up);
	expect_line(report, 60);
	char *exit_line = kh_fmt("kiln-rootfs: exit %d", status);
	expect_line(exit_line, 30);
	free(exit_line);
	int st = kh_wait_exit(&kp, 60000);
	cr_assert_eq(st, 0, "kiln did not exit cleanly after the guest's reboot (%d):\n%s", st,
	             kp.out);
	cr_assert(strstr(kp.out, "the guest reset the machine through the i8042"),
	          "kiln did not stop through the i8042 reset:\n%s", kp.out);
	cr_assert(!strstr(kp.out, "Kernel panic"), "%s", kp.out);
}

Test(linux_blk, fsynced_file_is_in_the_image)
{
	char marker[17], *cmd, *out;
	int st;

	cr_assert_eq(kh_marker(marker), 0);
	const char *root = copy_rootfs();
	char *run_arg = kh_fmt("kt-write,/kiln-%s,%d,%s", marker, FILE_BYTES, marker);
	spawn_guest(root, false, run_arg);
	free(run_arg);
	char *report = kh_fmt("kt-write: wrote /kiln-%s bytes=%d fnv1a=", marker, FILE_BYTES);
	expect_run("rw", report, 0);
	unsigned long long guest_sum = 0;
	const char *at = strstr(kp.out, report);
	cr_assert_eq(sscanf(at + strlen(report), "%16llx", &guest_sum), 1, "%s", at);
	free(report);

	/* the reset left the journal unreplayed: replay it, then the file system must be clean */
	cmd = kh_fmt("e2fsck -fy '%s' 2>&1", root);
	out = run(cmd, NULL, &st);
	cr_assert(st == 0 || st == 1, "%s exited %d:\n%s", cmd, st, out);
	free(out);
	free(cmd);
	cmd = kh_fmt("e2fsck -fn '%s' 2>&1", root);
	out = run(cmd, NULL, &st);
	cr_assert_eq(st, 0, "not clean after the replay: %s exited %d:\n%s", cmd, st, out);
	free(out);
	free(cmd);

	size_t len;
	cmd = kh_fmt("debugfs -R 'cat /kiln-%s' '%s' 2>/dev/null", marker, root);
	out = run(cmd, &len, &st);
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
	const char *root = copy_rootfs();
	char *run_arg = kh_fmt("kt-write,/kiln-%s,4096,%s", marker, marker);
	spawn_guest(root, true, run_arg);
	free(run_arg);
	char *report = kh_fmt("kt-write: open /kiln-%s: Read-only file system", marker);
	expect_run("ro", report, 1);
	free(report);

	cmd = kh_fmt("cmp '%s' '%s' 2>&1", image_file("rootfs.ext4"), root);
	out = run(cmd, NULL, &st);
	cr_assert_eq(st, 0, "the read-only root changed: %s", out);
	free(out);
	free(cmd);
}
