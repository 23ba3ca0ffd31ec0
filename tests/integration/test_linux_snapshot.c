// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_snapshot.c: a running Linux snapshotted and
 * restored in a new kiln process. The guest is tests/linux's image
 * (tests/linux/README.md), booted through the API on a read-write root,
 * whose /init runs kt-count: a userspace program reporting "kt-count: N"
 * every COUNT_MS of the guest's clock up to LIMIT, then exiting, after
 * which the guest resets.
 *   1. Once it has counted a few, the VM is paused and a Full snapshot
 *      taken; that kiln is killed.
 *   2. A new kiln loads the snapshot (File backend) and resumes: the first
 *      number it prints is the one after the last before the pause, the
 *      count reaches LIMIT, the guest resets and kiln exits 0.
 *   3. The root file system is intact: e2fsck replays the journal and then
 *      finds it clean.
 */
#include "linux_guest.h"
#include "snap_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIMIT    40
#define COUNT_MS 250

static void fini(void)
{
	snap_test_fini();
}

TestSuite(linux_snapshot, .init = snap_test_init, .fini = fini, .timeout = 600);

/* the last "kt-count: N" in `out` whose line is complete: N, 0 when none */
static unsigned long last_count(const char *out)
{
	unsigned long last = 0;
	for (const char *p = out; (p = strstr(p, "kt-count: ")); p++) {
		char *end;
		unsigned long n = strtoul(p + strlen("kt-count: "), &end, 10);
		if (*end == '\n' || *end == '\r')
			last = n;
	}
	return last;
}

Test(linux_snapshot, full_snapshot_of_a_counting_linux_goes_on)
{
	const char *root = snap_file("rootfs.ext4");
	char *cmd = kh_fmt("cp --sparse=always '%s' '%s'", lg_image("rootfs.ext4"), root);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	free(cmd);

	struct skiln *k = sk_start("k0");
	char *b =
	        kh_fmt("{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
	               "\"boot_args\": \"console=ttyS0 reboot=k panic=1 kiln.run=kt-count,%d,%d\"}",
	               lg_image("vmlinux"), lg_image("initramfs.cpio"), LIMIT, COUNT_MS);
	sk_ok(k, "PUT", "/boot-source", b);
	free(b);
	sk_ok(k, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 256}");
	b = kh_fmt("{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	           "\"is_read_only\": false}",
	           root);
	sk_ok(k, "PUT", "/drives/rootfs", b);
	free(b);
	sk_ok(k, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	/* a line is whole once the next one has begun (the console may end lines with \r\n) */
	cr_assert(kh_wait_for(&k->p, "kt-count: 5", 300000),
	          "Linux did not start counting (%s):\n%s", kh_status(&k->p), k->p.out);

	sk_pause(k);
	kh_wait_for(&k->p, "\x01", 500); /* all the guest wrote before the pause */
	unsigned long before = last_count(k->p.out);
	cr_assert(before >= 4 && before < LIMIT, "counted to %lu before the pause", before);
	sk_create(k, "Full", "vm.snap", "vm.mem");
	sk_kill(k);

	struct skiln *k1 = sk_start("k1");
	sk_load(k1, "vm.snap", "vm.mem", true);
	char *next = kh_fmt("kt-count: %lu", before + 2);
	cr_assert(kh_wait_for(&k1->p, next, 120000), "no \"%s\" after the restore (%s):\n%s", next,
	          kh_status(&k1->p), k1->p.out);
	free(next);
	const char *first = strstr(k1->p.out, "kt-count: ");
	cr_assert_eq(strtoul(first + strlen("kt-count: "), NULL, 10), before + 1,
	             "the restored guest's first count is not %lu:\n%s", before + 1, k1->p.out);
	cr_assert(kh_wait_for(&k1->p, "kiln-rootfs: exit 0", 120000),
	          "the count did not reach %d:\n%s", LIMIT, k1->p.out);
	cr_assert_eq(last_count(k1->p.out), LIMIT, "%s", k1->p.out);
	int st = kh_wait_exit(&k1->p, 120000);
	cr_assert_eq(st, 0, "the restored kiln did not exit cleanly (%d):\n%s", st, k1->p.out);

	cmd = kh_fmt("e2fsck -fy '%s' >/dev/null 2>&1; e2fsck -fn '%s' 2>&1", root, root);
	int fst;
	char *out = lg_sh(cmd, NULL, &fst);
	cr_assert_eq(fst, 0, "the root is not clean after the journal replay:\n%s", out);
	free(out);
	free(cmd);
}
