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
 * The second test takes a Full snapshot, lets Linux count on, takes a Diff,
 * merges it onto the Full and restores through the Uffd backend with
 * examples/uffd_page_server; the same three checks follow.
 */
#include "linux_guest.h"
#include "snap_test.h"

#include <criterion/criterion.h>
#include <ctype.h>
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

/*
 * A new kiln "k0" boots the image on a copy of its root in snap_dir, 1 vCPU,
 * 256 MiB, dirty-page tracking on when `track_dirty`; returns once Linux
 * has printed "kt-count: 5 after".
 */
static struct skiln *boot_counting(bool track_dirty)
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
	b = kh_fmt("{\"vcpu_count\": 1, \"mem_size_mib\": 256, \"track_dirty_pages\": %s}",
	           track_dirty ? "true" : "false");
	sk_ok(k, "PUT", "/machine-config", b);
	free(b);
	b = kh_fmt("{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	           "\"is_read_only\": false}",
	           root);
	sk_ok(k, "PUT", "/drives/rootfs", b);
	free(b);
	sk_ok(k, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	/* a line is whole once the next one has begun (the console may end lines with \r\n) */
	cr_assert(kh_wait_for(&k->p, "kt-count: 5 after", 300000),
	          "Linux did not start counting (%s):\n%s", kh_status(&k->p), k->p.out);
	return k;
}

/*
 * Pauses k: the count whose line a restore of this moment must print whole
 * first. That is the one after the last whole line, or the one after that
 * when the pause cut a count's line (the restored guest prints its rest).
 */
static unsigned long pause_at(struct skiln *k)
{
	sk_pause(k);
	kh_wait_for(&k->p, "\x01", 500); /* all the guest wrote before the pause */
	unsigned long at = lg_last_count(k->p.out, NULL);
	cr_assert(at >= 4 && at < LIMIT - 1, "counted to %lu before the pause", at);
	const char *tail = strrchr(k->p.out, '\n');
	bool cut = tail && strstr(tail, "kt-count: ");
	return at + 1 + cut;
}

/*
 * k1 was loaded from a snapshot that pause_at() said `first` of: its first
 * whole count is that one, it reaches LIMIT, the guest resets and kiln exits 0,
 * and the root file system is clean after its journal replay.
 */
static void goes_on_to_the_end(struct skiln *k1, unsigned long first_count)
{
	char *next = kh_fmt("kt-count: %lu after", first_count + 1);
	cr_assert(kh_wait_for(&k1->p, next, 120000), "no \"%s\" after the restore (%s):\n%s", next,
	          kh_status(&k1->p), k1->p.out);
	free(next);
	const char *first = strstr(k1->p.out, "kt-count: ");
	while (first && !isdigit((unsigned char)first[strlen("kt-count: ")]))
		first = strstr(first + 1, "kt-count: ");
	cr_assert_not_null(first, "%s", k1->p.out);
	cr_assert_eq(strtoul(first + strlen("kt-count: "), NULL, 10), first_count,
	             "the restored guest's first count is not %lu:\n%s", first_count, k1->p.out);
	cr_assert(kh_wait_for(&k1->p, "kiln-rootfs: exit 0", 120000),
	          "the count did not reach %d:\n%s", LIMIT, k1->p.out);
	cr_assert_eq(lg_last_count(k1->p.out, NULL), LIMIT, "%s", k1->p.out);
	int st = kh_wait_exit(&k1->p, 120000);
	cr_assert_eq(st, 0, "the restored kiln did not exit cleanly (%d):\n%s", st, k1->p.out);

	const char *root = snap_file("rootfs.ext4");
	char *cmd = kh_fmt("e2fsck -fy '%s' >/dev/null 2>&1; e2fsck -fn '%s' 2>&1", root, root);
	int fst;
	char *out = lg_sh(cmd, NULL, &fst);
	cr_assert_eq(fst, 0, "the root is not clean after the journal replay:\n%s", out);
	free(out);
	free(cmd);
}

Test(linux_snapshot, full_snapshot_of_a_counting_linux_goes_on)
{
	struct skiln *k = boot_counting(false);
	unsigned long before = pause_at(k);
	sk_create(k, "Full", "vm.snap", "vm.mem");
	sk_kill(k);

	struct skiln *k1 = sk_start("k1");
	sk_load(k1, "vm.snap", "vm.mem", true);
	goes_on_to_the_end(k1, before);
}

/*
 * A Full snapshot, the guest runs on, a Diff snapshot; the Diff merged onto
 * the Full with scripts/merge-snapshot-mem.py is served to a new kiln by
 * examples/uffd_page_server (the Uffd backend), so every page Linux touches
 * after the restore comes from the merged file through the page server.
 */
Test(linux_snapshot, diff_merged_and_served_by_uffd_goes_on)
{
	struct skiln *k = boot_counting(true);
	unsigned long base = pause_at(k);
	sk_create(k, "Full", "vm.snap", "vm.mem");
	sk_resume(k);
	char *later = kh_fmt("kt-count: %lu after", base + 5);
	cr_assert(kh_wait_for(&k->p, later, 60000), "no \"%s\" after the resume:\n%s", later,
	          k->p.out);
	free(later);
	unsigned long before = pause_at(k);
	sk_create(k, "Diff", "diff.snap", "diff.mem");
	sk_kill(k);

	sh("python3 %s/scripts/merge-snapshot-mem.py %s %s %s", getenv("KILN_SOURCE_ROOT"),
	   snap_file("vm.mem"), snap_file("diff.mem"), snap_file("merged.mem"));
	pid_t server = sk_page_server("uffd.sock", "merged.mem");
	const char *usock = snap_file("uffd.sock");

	struct skiln *k1 = sk_start("k1");
	char *b = sk_load_body("diff.snap", "Uffd", usock, true, NULL);
	sk_ok(k1, "PUT", "/snapshot/load", b);
	free(b);
	goes_on_to_the_end(k1, before);
	sk_page_server_stop(server);
}
