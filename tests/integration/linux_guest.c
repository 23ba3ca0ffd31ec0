// SPDX-License-Identifier: Apache-2.0
/* tests/integration/linux_guest.c: see linux_guest.h */
#include "linux_guest.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* e2fsprogs lives in /sbin; the test's PATH may lack it */
#define SBIN_PATH "PATH=\"$PATH:/usr/sbin:/sbin\" "

const char *lg_image(const char *name)
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

char *lg_sh(const char *cmd, size_t *len, int *status)
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

const char *lg_copy_rootfs(char path[64])
{
	const char *src = lg_image("rootfs.ext4");
	strcpy(path, "/tmp/kiln-linux-root-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	char *cmd = kh_fmt("cp --sparse=always '%s' '%s' 2>&1", src, path);
	int st;
	char *out = lg_sh(cmd, NULL, &st);
	cr_assert_eq(st, 0, "%s: %s", cmd, out);
	free(out);
	free(cmd);
	return path;
}

void lg_spawn(struct kproc *kp, unsigned mem_mib, const char *root, bool read_only,
              const char *run_arg, const char *drives, const char *extra, const char *flag)
{
	lg_spawn_api(kp, mem_mib, root, read_only, run_arg, drives, extra, flag, NULL);
}

void lg_spawn_api(struct kproc *kp, unsigned mem_mib, const char *root, bool read_only,
                  const char *run_arg, const char *drives, const char *extra, const char *flag,
                  const char *sock)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", "
	                   "\"initrd_path\": \"%s\", \"boot_args\": \"console=ttyS0 reboot=k "
	                   "panic=1 kiln.run=%s\"}, "
	                   "\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": %u}, "
	                   "\"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", "
	                   "\"is_root_device\": true, \"is_read_only\": %s}%s]%s}",
	                   lg_image("vmlinux"), lg_image("initramfs.cpio"), run_arg, mem_mib, root,
	                   read_only ? "true" : "false", drives, extra);
	char *cfg_path = kh_write_temp(cfg, ".json");
	cr_assert_not_null(cfg_path);
	free(cfg);
	const char *argv[10];
	size_t n = 0;
	argv[n++] = "kiln";
	if (sock) {
		argv[n++] = "--api-sock";
		argv[n++] = sock;
	} else {
		argv[n++] = "--no-api";
	}
	argv[n++] = "--level";
	argv[n++] = "Info";
	argv[n++] = "--config-file";
	argv[n++] = cfg_path;
	argv[n++] = flag; /* may be NULL: the end */
	argv[n] = NULL;
	cr_assert_eq(kh_spawn(kp, argv), 0);
	kp->cfg_path = cfg_path; /* kh_kill removes it */
}

void lg_cleanup(struct kproc *kp, char path[64])
{
	kh_kill(kp);
	if (path[0])
		unlink(path);
	path[0] = '\0';
}

void lg_expect_line(struct kproc *kp, const char *line, int s)
{
	cr_assert(kh_wait_for(kp, line, s * 1000), "no \"%s\" within %d s (%s); kiln printed:\n%s",
	          line, s, kh_status(kp), kp->out);
}

void lg_expect_run(struct kproc *kp, const char *mode, const char *report, int status)
{
	char *mounted = kh_fmt("kiln-initramfs: /dev/vda mounted %s", mode);
	lg_expect_line(kp, mounted, 180);
	free(mounted);
	char *up = kh_fmt("kiln-rootfs: up, / is %s", mode);
	lg_expect_line(kp, up, 60);
	free(up);
	lg_expect_line(kp, report, 60);
	char *exit_line = kh_fmt("kiln-rootfs: exit %d", status);
	lg_expect_line(kp, exit_line, 30);
	free(exit_line);
	int st = kh_wait_exit(kp, 60000);
	cr_assert_eq(st, 0, "kiln did not exit cleanly after the guest's reboot (%d):\n%s", st,
	             kp->out);
	cr_assert(strstr(kp->out, "the guest reset the machine through the i8042"),
	          "kiln did not stop through the i8042 reset:\n%s", kp->out);
	cr_assert(!strstr(kp->out, "Kernel panic"), "%s", kp->out);
}

/* at p, a complete "kt-count: N after D ms" line: true with N and D */
static bool count_line(const char *p, unsigned long *n, unsigned long *d)
{
	int len = 0;
	return sscanf(p, "kt-count: %lu after %lu ms%n", n, d, &len) == 2 && len > 0 &&
	       (p[len] == '\r' || p[len] == '\n');
}

unsigned long lg_last_count(const char *out, unsigned long *gap)
{
	unsigned long last = 0, n, d;
	for (const char *p = out; (p = strstr(p, "kt-count: ")); p++)
		if (count_line(p, &n, &d)) {
			last = n;
			if (gap)
				*gap = d;
		}
	return last;
}

unsigned long lg_count_gap(const char *out, unsigned long want)
{
	unsigned long n, d;
	for (const char *p = out; (p = strstr(p, "kt-count: ")); p++)
		if (count_line(p, &n, &d) && n == want)
			return d;
	return ULONG_MAX;
}
