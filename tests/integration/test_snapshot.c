// SPDX-License-Identifier: Apache-2.0
/*
 * Snapshots end to end (issue 5): the memck guest (tests/guests/memck.c)
 * rewrites and checks 32 MiB every round and numbers its reports; a
 * snapshot restored in a new kiln process must go on with the next report,
 * a later round and memory intact. Full snapshots in a chain of ten
 * create/load cycles, the Uffd backend with examples/uffd_page_server, Diff
 * snapshots merged onto their base with scripts/merge-snapshot-mem.py
 * (equal byte for byte to a Full one of the same moment), the blk guest
 * snapshotted in the middle of its writes, GET /vm/config after a load,
 * and devices of two kinds sharing an id. Bad input is in
 * test_snapshot_bad.c, clones in test_snapshot_clones.c.
 */
#include "snap_test.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(snapshot, .init = snap_test_init, .fini = snap_test_fini, .timeout = 480);

/* pause, snapshot, kill; a new kiln loads it and resumes; memck goes on */
static struct skiln *cycle(struct skiln *k, struct memck_at *at, const char *name)
{
	sk_pause(k);
	*at = memck_last(k);
	sk_create(k, "Full", "vm.snap", "vm.mem");
	sk_kill(k);
	struct skiln *n = sk_start(name);
	sk_load(n, "vm.snap", "vm.mem", true);
	cr_assert_str_eq(sk_state(n), "Running");
	*at = memck_continues(n, *at);
	return n;
}

Test(snapshot, full_round_trip_ten_times)
{
	struct skiln *k = sk_start("k0");
	sk_boot_memck(k, NULL, false);
	struct memck_at at = memck_started(k, 3);
	/* the same file names each time: a VM restored from vm.mem writes vm.mem again */
	for (int i = 1; i <= 10; i++) {
		char name[16];
		snprintf(name, sizeof(name), "k%d", i);
		k = cycle(k, &at, name);
	}
	cr_assert_geq(at.report, 3 + 2 * 10);
}

Test(snapshot, uffd_backend)
{
	struct memck_at at;
	sk_kill(memck_snapshot(false, &at));

	pid_t server = sk_page_server("uffd.sock", "vm.mem");
	const char *usock = snap_file("uffd.sock");

	struct skiln *k = sk_start("k1");
	char *b = sk_load_body("vm.snap", "Uffd", usock, true, NULL);
	sk_ok(k, "PUT", "/snapshot/load", b);
	free(b);
	at = memck_continues(k, at);
	/* and once more, from the Uffd-backed VM to a File-backed one */
	k = cycle(k, &at, "k2");
	sk_page_server_stop(server);
}

Test(snapshot, diff_merged_onto_base)
{
	struct memck_at at;
	struct skiln *k = memck_snapshot(true, &at); /* the base */
	sk_resume(k);
	memck_wait(k, at.report + 3, 20000);
	sk_pause(k);
	at = memck_last(k);
	sk_create(k, "Diff", "diff.snap", "diff.mem");
	/* still paused: memory as the Diff saw it, in full */
	sk_create(k, "Full", "full.snap", "full.mem");
	sk_kill(k);

	sh("python3 %s/scripts/merge-snapshot-mem.py %s %s %s", getenv("KILN_SOURCE_ROOT"),
	   snap_file("vm.mem"), snap_file("diff.mem"), snap_file("merged.mem"));
	cr_assert(same_bytes(snap_file("merged.mem"), snap_file("full.mem")),
	          "base + diff differ from the live memory at the Diff snapshot");
	cr_assert(!same_bytes(snap_file("vm.mem"), snap_file("full.mem")),
	          "the guest changed nothing between the snapshots?");

	k = sk_start("k1");
	char *b = sk_load_body("diff.snap", "File", snap_file("merged.mem"), true,
	                       "\"track_dirty_pages\": true");
	sk_ok(k, "PUT", "/snapshot/load", b);
	free(b);
	at = memck_continues(k, at);

	/* a diff of the restored VM, merged in place onto the merged file */
	sk_pause(k);
	at = memck_last(k);
	sk_create(k, "Diff", "diff2.snap", "diff2.mem");
	sk_kill(k);
	sh("python3 %s/scripts/merge-snapshot-mem.py %s %s", getenv("KILN_SOURCE_ROOT"),
	   snap_file("merged.mem"), snap_file("diff2.mem"));
	k = sk_start("k2");
	sk_load(k, "diff2.snap", "merged.mem", true);
	memck_continues(k, at);
}

Test(snapshot, vm_config_after_load)
{
	struct memck_at at;
	struct skiln *k = memck_snapshot(false, &at);
	json_t *before, *after;
	cr_assert_eq(sk_req(k, "GET", "/vm/config", NULL, &before), 200);
	sk_kill(k);

	k = sk_start("k1");
	sk_load(k, "vm.snap", "vm.mem", false);
	cr_assert_str_eq(sk_state(k), "Paused");
	cr_assert_eq(sk_req(k, "GET", "/vm/config", NULL, &after), 200);
	json_t *m = json_object_get(after, "machine-config");
	cr_assert_eq(json_integer_value(json_object_get(m, "mem_size_mib")), GUEST_MEM_MIB);
	cr_assert_eq(json_integer_value(json_object_get(m, "vcpu_count")), 1);
	const char *args = json_string_value(
	        json_object_get(json_object_get(after, "boot-source"), "boot_args"));
	cr_assert(args && strstr(args, MEMCK_ARGS), "boot_args: %s", args ? args : "(none)");
	char *a = json_dumps(before, JSON_SORT_KEYS), *b = json_dumps(after, JSON_SORT_KEYS);
	cr_assert_str_eq(a, b, "the configuration changed across the load");
	free(a);
	free(b);
	json_decref(before);
	json_decref(after);
	sk_resume(k);
	memck_continues(k, at);
}

/*
 * Issue 9: device ids are unique only within a kind. A drive named "rng"
 * next to the entropy device (whose id is "rng") is saved and loaded, each
 * device into its own.
 */
Test(snapshot, devices_of_two_kinds_with_one_id)
{
	const char *disk = snap_file("rng.img");
	sh("truncate -s 1M %s", disk);
	struct skiln *k = sk_start("k0");
	char *b = kh_fmt("{\"drive_id\": \"rng\", \"path_on_host\": \"%s\", "
	                 "\"is_root_device\": false, \"is_read_only\": false}",
	                 disk);
	sk_ok(k, "PUT", "/drives/rng", b);
	free(b);
	sk_ok(k, "PUT", "/entropy", "{}");
	sk_boot_memck(k, NULL, false);
	struct memck_at at = memck_started(k, 2);
	k = cycle(k, &at, "k1");
	json_t *c;
	cr_assert_eq(sk_req(k, "GET", "/vm/config", NULL, &c), 200);
	json_t *d = json_array_get(json_object_get(c, "drives"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(d, "drive_id")), "rng");
	cr_assert(json_is_object(json_object_get(c, "entropy")));
	json_decref(c);
}

/*
 * The blk guest writing 128 MiB in small requests (about 3 s here) is
 * snapshotted half a second into its writes, in-flight requests drained;
 * restored, it finishes, reads everything back and verifies it; then this
 * side checks the file against the guest's pattern (see tests/guests/blk.c).
 */
Test(snapshot, blk_in_the_middle_of_its_writes)
{
	const char *disk = snap_file("disk.img");
	struct skiln *k = sk_start("k0");
	sk_boot_blk(k, disk);
	usleep(500000);
	sk_pause(k);
	cr_assert(!strstr(k->p.out, "verified"), "the guest finished before the snapshot");
	sk_create(k, "Full", "vm.snap", "vm.mem");
	sk_kill(k);

	k = sk_start("k1");
	/* loaded paused: once resumed, the guest may finish and kiln exit at once */
	sk_load(k, "vm.snap", "vm.mem", false);
	json_t *c;
	cr_assert_eq(sk_req(k, "GET", "/vm/config", NULL, &c), 200);
	json_t *d = json_array_get(json_object_get(c, "drives"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(d, "drive_id")), "data");
	cr_assert_str_eq(json_string_value(json_object_get(d, "path_on_host")), disk);
	json_decref(c);
	sk_resume(k);
	cr_assert(kh_wait_for(&k->p, "verified ok", 60000), "%s", k->p.out);
	cr_assert_eq(kh_wait_exit(&k->p, 10000), 0, "kiln exited badly:\n%s", k->p.out);
	cr_assert(!strstr(k->p.out, "MISMATCH") && !strstr(k->p.out, "FAILED"), "%s", k->p.out);
	check_blk_pattern(disk);
}
