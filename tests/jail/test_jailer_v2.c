// SPDX-License-Identifier: Apache-2.0
/*
 * kiln-jailer with --cgroup-version 2, in the test bed (meson suite 'kvm':
 * the bed's Linux mounts the unified hierarchy at /sys/fs/cgroup; this host
 * has v1). The values written, the process in cgroup.procs, the controller
 * enabled in every parent's cgroup.subtree_control, and the refusals that
 * leave no cgroup behind. Skipped where /sys/fs/cgroup is not cgroup2.
 */
#include <criterion/criterion.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "rig.h"

static void need_v2(void)
{
	struct statfs sf;

	if (statfs("/sys/fs/cgroup", &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC)
		cr_skip_test("/sys/fs/cgroup is not cgroup v2 here");
	setup();
}

TestSuite(jailer_v2, .init = need_v2, .fini = teardown, .timeout = 60);

/* CONTROLLER is a word of DIR/cgroup.subtree_control */
static void assert_enabled(const char *dir, const char *controller)
{
	char path[256], buf[1024], *tok;
	bool found = false;

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	read_file(path, buf, sizeof(buf));
	for (tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
		found |= !strcmp(tok, controller);
	cr_assert(found, "%s not enabled in %s", controller, path);
}

Test(jailer_v2, values_written_process_moved_controllers_enabled)
{
	char top[64], parent[96], dir[256], file[300], buf[4096], want[32];
	const char *const *args =
	        ARGS("--id", id, "--uid", UID, "--gid", GID, "--cgroup-version", "2", "--cgroup",
	             "pids.max=10", "--cgroup", "memory.max=104857600", "--parent-cgroup", parent,
	             "--", "--sleep");
	struct run r;
	pid_t pid;

	snprintf(top, sizeof(top), "kiln-jt-%d", (int)getpid());
	snprintf(parent, sizeof(parent), "%s/nested", top);
	start(&r, probe(), args);
	read_until(&r, "ready\n");
	cr_assert(strstr(r.out, "ready\n"), "no probe: %s / %s", r.out, r.err);
	pid = read_pid_file();
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s", parent, id);
	snprintf(file, sizeof(file), "%s/pids.max", dir);
	read_file(file, buf, sizeof(buf));
	cr_assert_str_eq(buf, "10\n");
	snprintf(file, sizeof(file), "%s/memory.max", dir);
	read_file(file, buf, sizeof(buf));
	cr_assert_str_eq(buf, "104857600\n");
	snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
	read_file(file, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%d\n", (int)pid);
	cr_assert(strstr(buf, want), "pid %d not in %s: %s", (int)pid, file, buf);
	for (const char *c = "pids"; c; c = strcmp(c, "pids") ? NULL : "memory") {
		assert_enabled("/sys/fs/cgroup", c);
		snprintf(file, sizeof(file), "/sys/fs/cgroup/%s", top);
		assert_enabled(file, c);
		snprintf(file, sizeof(file), "/sys/fs/cgroup/%s", parent);
		assert_enabled(file, c);
	}
	close(r.out_fd);
	kill_and_reap(pid);
	cr_assert(rmdir(dir) == 0);
	snprintf(file, sizeof(file), "/sys/fs/cgroup/%s", parent);
	cr_assert(rmdir(file) == 0);
	snprintf(file, sizeof(file), "/sys/fs/cgroup/%s", top);
	cr_assert(rmdir(file) == 0);
}

Test(jailer_v2, refusals_leave_no_cgroup)
{
	char parent[64];

	snprintf(parent, sizeof(parent), "kiln-jt-r%d", (int)getpid());
	REFUSED(15, "no cgroup v2 controller 'nosuch'", "--id", id, "--uid", UID, "--gid", GID,
	        "--cgroup-version", "2", "--parent-cgroup", parent, "--cgroup", "nosuch.x=1");
	/* accepted by the parser, fails at the write: dirs and chroot removed */
	REFUSED(15, "--cgroup pids.nosuch=1: writing", "--id", id, "--uid", UID, "--gid", GID,
	        "--cgroup-version", "2", "--parent-cgroup", parent, "--cgroup", "pids.max=10",
	        "--cgroup", "pids.nosuch=1");
}
