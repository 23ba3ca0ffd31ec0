// SPDX-License-Identifier: Apache-2.0
/*
 * kiln-jailer on this host (root, cgroup v1), with kiln-probe as the exec
 * file: what the jailed process sees (ids, capabilities, rlimits, argv, its
 * root), what the host sees of it (mount, pid and network namespaces, its
 * cgroup), and every refusal: its message, its exit code, and that nothing
 * it made is left on disk or in /sys/fs/cgroup.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rig.h"

/* the count of "entry " lines and each expected one */
static void assert_root(const struct run *r)
{
	char line[256];
	int entries = 0, uffd = -1, want = 8;
	FILE *f = fopen("/proc/misc", "r");
	char name[64];
	int minor;

	while (f && fscanf(f, "%d %63s", &minor, name) == 2)
		if (!strcmp(name, "userfaultfd"))
			uffd = minor;
	if (f)
		fclose(f);
	for (const char *p = r->out; (p = strstr(p, "\nentry ")); p++)
		entries++;
	assert_line(r, "entry /kiln-probe f 755 4242 4343 0 0");
	assert_line(r, "entry /kiln-probe.pid f 644 0 0 0 0");
	assert_line(r, "entry /dev d 700 4242 4343 0 0");
	assert_line(r, "entry /dev/net d 700 4242 4343 0 0");
	assert_line(r, "entry /dev/net/tun c 600 4242 4343 10 200");
	assert_line(r, "entry /dev/kvm c 600 4242 4343 10 232");
	assert_line(r, "entry /dev/urandom c 600 4242 4343 1 9");
	assert_line(r, "entry /run d 700 4242 4343 0 0");
	if (uffd >= 0) {
		snprintf(line, sizeof(line), "entry /dev/userfaultfd c 600 4242 4343 10 %d", uffd);
		assert_line(r, line);
		want++;
	}
	cr_assert_eq(entries, want, "the jail's root holds more than expected:\n%s", r->out);
}

TestSuite(jailer, .init = setup, .fini = teardown, .timeout = 60);

Test(jailer, jailed_view_ids_caps_rlimits_argv_root)
{
	const char *const *args =
	        ARGS("--id", id, "--uid", UID, "--gid", GID, "--resource-limit", "no-file=123",
	             "--resource-limit", "fsize=40960", "--", "--foo", "bar");
	struct timespec now;
	struct run r;

	start(&r, probe(), args);
	finish(&r);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	assert_line(&r, "uid 4242 4242 4242");
	assert_line(&r, "gid 4343 4343 4343");
	assert_line(&r, "cap eff 000000000");
	assert_line(&r, "cap prm 000000000");
	assert_line(&r, "cap inh 000000000");
	assert_line(&r, "bnd 0");
	assert_line(&r, "nnp 1");
	/* start() leaves its four pipe ends open in the jailer, and the test's environment */
	assert_line(&r, "fds 0");
	assert_line(&r, "env 0");
	assert_line(&r, "rlimit nofile 123 123");
	assert_line(&r, "rlimit fsize 40960 40960");
	assert_line(&r, "arg 0 /kiln-probe");
	assert_line(&r, "arg 1 --id");
	char line[128];

	snprintf(line, sizeof(line), "arg 2 %s", id);
	assert_line(&r, line);
	assert_line(&r, "arg 3 --start-time-us");
	assert_line(&r, "arg 5 --start-time-cpu-us");
	assert_line(&r, "arg 7 --parent-cpu-time-us");
	assert_line(&r, "arg 9 --foo");
	assert_line(&r, "arg 10 bar");
	/* --start-time-us is CLOCK_MONOTONIC in µs at the jailer's start */
	unsigned long long t = strtoull(strstr(r.out, "\narg 4 ") + 7, NULL, 10);

	clock_gettime(CLOCK_MONOTONIC, &now);
	unsigned long long now_us = now.tv_sec * 1000000ULL + now.tv_nsec / 1000;

	cr_assert(t <= now_us && now_us - t < 10000000, "start time %llu, now %llu", t, now_us);
	assert_root(&r);
}

Test(jailer, default_no_file_is_2048)
{
	const char *const *args = ARGS("--id", id, "--uid", UID, "--gid", GID);
	struct run r;

	start(&r, probe(), args);
	finish(&r);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	assert_line(&r, "rlimit nofile 2048 2048");
}

/* a v1 cgroup file of the test's cgroup holds WANT */
static void assert_cg(const char *ctl, const char *parent, const char *file, const char *want)
{
	char path[256], buf[4096];

	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s/%s/%s", ctl, parent, id, file);
	read_file(path, buf, sizeof(buf));
	cr_assert(!strcmp(buf, want) || (want[0] == '\n' && strstr(buf, want + 1)),
	          "%s holds %s, not %s", path, buf, want);
}

Test(jailer, own_mount_ns_and_cgroup_v1)
{
	static const char *const ctl[] = {"cpu", "pids", "cpuset"};
	char parent[64], dir[256], root[256], want[32], mems[64];
	const char *const *args = ARGS("--id", id, "--uid", UID, "--gid", GID, "--cgroup",
	                               "cpu.shares=512", "--cgroup", "pids.max=10", "--cgroup",
	                               "cpuset.cpus=0", "--parent-cgroup", parent, "--", "--sleep");
	struct stat a, b;
	struct run r;
	pid_t pid;

	snprintf(parent, sizeof(parent), "kiln-jt-%d", (int)getpid());
	start(&r, probe(), args);
	read_until(&r, "ready\n");
	cr_assert(strstr(r.out, "ready\n"), "probe did not get ready: %s / %s", r.out, r.err);
	pid = read_pid_file();
	cr_assert_eq(pid, r.pid, "without --new-pid-ns the jailer becomes the probe");
	cr_assert_neq(ns_inode(pid, "mnt"), ns_inode(getpid(), "mnt"));
	/* its root is the chroot */
	snprintf(dir, sizeof(dir), "/proc/%d/root/kiln-probe", (int)pid);
	chroot_of(root, sizeof(root));
	strcat(root, "/kiln-probe");
	cr_assert(stat(dir, &a) == 0 && stat(root, &b) == 0 && a.st_ino == b.st_ino);
	assert_cg("cpu", parent, "cpu.shares", "512\n");
	assert_cg("pids", parent, "pids.max", "10\n");
	assert_cg("cpuset", parent, "cpuset.cpus", "0\n");
	/* an empty cpuset.mems takes no task: it was copied from the root's */
	read_file("/sys/fs/cgroup/cpuset/cpuset.mems", mems, sizeof(mems));
	assert_cg("cpuset", parent, "cpuset.mems", mems);
	snprintf(want, sizeof(want), "\n%d\n", (int)pid);
	for (size_t i = 0; i < 3; i++)
		assert_cg(ctl[i], parent, "tasks", want);
	kill_and_reap(pid);
	for (size_t i = 0; i < 3; i++) {
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s/%s", ctl[i], parent, id);
		cr_assert(rmdir(dir) == 0, "%s: %s", dir, strerror(errno));
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s", ctl[i], parent);
		cr_assert(rmdir(dir) == 0, "%s: %s", dir, strerror(errno));
	}
}

Test(jailer, new_pid_ns_makes_the_probe_pid_1)
{
	const char *const *args =
	        ARGS("--id", id, "--uid", UID, "--gid", GID, "--new-pid-ns", "--", "--sleep");
	struct run r;
	pid_t pid;
	int st;

	start(&r, probe(), args);
	read_until(&r, "ready\n");
	assert_line(&r, "pid 1");
	cr_assert_eq(waitpid(r.pid, &st, 0), r.pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the jailer's parent half exits 0");
	pid = read_pid_file();
	cr_assert_neq(pid, r.pid);
	cr_assert_neq(ns_inode(pid, "pid"), ns_inode(getpid(), "pid"));
	close(r.out_fd);
	kill_and_reap(pid);
}

Test(jailer, netns_is_joined)
{
	char name[64], path[128], cmd[160];
	const char *const *args =
	        ARGS("--id", id, "--uid", UID, "--gid", GID, "--netns", path, "--", "--sleep");
	struct stat st;
	struct run r;
	pid_t pid;

	snprintf(name, sizeof(name), "kiln-jt-%d", (int)getpid());
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	snprintf(cmd, sizeof(cmd), "ip netns add %s", name);
	cr_assert_eq(system(cmd), 0);
	start(&r, probe(), args);
	read_until(&r, "ready\n");
	pid = read_pid_file();
	cr_assert(stat(path, &st) == 0);
	ino_t ino = ns_inode(pid, "net");

	close(r.out_fd);
	kill_and_reap(pid);
	snprintf(cmd, sizeof(cmd), "ip netns delete %s", name);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(ino, st.st_ino, "the probe is not in the --netns namespace");
}

Test(jailer, daemonize_detaches)
{
	const char *const *args = ARGS("--id", id, "--uid", UID, "--gid", GID, "--daemonize", "--",
	                               "--report", "/report");
	char path[256], buf[65536] = {0};
	struct run r;

	start(&r, probe(), args);
	finish(&r);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	cr_assert_str_eq(r.out, "", "a daemon's stdout is /dev/null");
	snprintf(path, sizeof(path), "%s/kiln-probe/%s/root/report", base, id);
	for (int i = 0; i < 500 && !strstr(buf, "\nend\n"); i++) {
		usleep(10000);
		int fd = open(path, O_RDONLY);

		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);

			buf[n > 0 ? n : 0] = 0;
			close(fd);
		}
	}
	cr_assert(strstr(buf, "\nend\n"), "no report from the daemon: %s", buf);
	int pid = atoi(strstr(buf, "\npid ") + 5), sid = atoi(strstr(buf, "\nsid ") + 5);

	cr_assert_neq(sid, getsid(0), "the daemon has a session of its own");
	cr_assert_neq(pid, sid, "the daemon is not its session's leader (double fork)");
	while (waitpid(-1, NULL, 0) > 0) {
	}
}

/* ---- refusals ---- */

Test(jailer, refuses_bad_ids)
{
	char long_id[80];

	memset(long_id, 'a', 65);
	long_id[65] = 0;
	REFUSED(10, "--id a_b: only ASCII letters", "--id", "a_b", "--uid", UID, "--gid", GID);
	REFUSED(10, "--id a/b: only", "--id", "a/b", "--uid", UID, "--gid", GID);
	REFUSED(10, "--id: must be 1 to 64 characters, not 65", "--id", long_id, "--uid", UID,
	        "--gid", GID);
	REFUSED(10, "--id: must be 1 to 64", "--id", "", "--uid", UID, "--gid", GID);
	/* a UUID passes the --id check: the refusal is the next flag's */
	REFUSED(12, "--uid x", "--id", "0b2c6e3e-8b3c-4b7e-9a61-6c2d0f0e9a11", "--uid", "x",
	        "--gid", GID);
}

Test(jailer, refuses_symlinked_and_hard_linked_exec_files)
{
	char dir[96], sym[128], copy[128], hard[128], cmd[512];
	const char *const *args = ARGS("--id", id, "--uid", UID, "--gid", GID);

	snprintf(dir, sizeof(dir), "/tmp/kiln-jail-exec-%d", (int)getpid());
	mkdir(dir, 0755);
	snprintf(sym, sizeof(sym), "%s/kiln-probe", dir);
	cr_assert(symlink(probe(), sym) == 0);
	refused(sym, args, 11, "is a symlink");
	unlink(sym);
	snprintf(copy, sizeof(copy), "%s/kiln-probe", dir);
	snprintf(hard, sizeof(hard), "%s/kiln-probe2", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", probe(), copy);
	cr_assert_eq(system(cmd), 0);
	cr_assert(link(copy, hard) == 0);
	refused(copy, args, 11, "has 2 hard links; it must have one");
	refused("/nonexistent/kiln-probe", args, 11,
	        "--exec-file /nonexistent/kiln-probe: No such");
	refused(dir, args, 11, "not a regular file");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(jailer, refuses_root_unless_allowed)
{
	REFUSED(13, "pass --allow-root", "--id", id, "--uid", "0", "--gid", GID);
	REFUSED(13, "pass --allow-root", "--id", id, "--uid", UID, "--gid", "0");
}

Test(jailer, refuses_a_missing_netns)
{
	REFUSED(14, "--netns /run/netns/kiln-none: No such file", "--id", id, "--uid", UID, "--gid",
	        GID, "--netns", "/run/netns/kiln-none");
	/* a file that is not a namespace fails at setns, after the chroot was made */
	REFUSED(14, "not a network namespace", "--id", id, "--uid", UID, "--gid", GID, "--netns",
	        "/etc/hostname");
}

Test(jailer, refuses_bad_cgroups_and_leaves_no_cgroup_dir)
{
	char parent[64];

	snprintf(parent, sizeof(parent), "kiln-jt-r%d", (int)getpid());
	REFUSED(15, "expected <controller>.<file>=<value>", "--id", id, "--uid", UID, "--gid", GID,
	        "--parent-cgroup", parent, "--cgroup", "cpushares=5");
	REFUSED(15, "expected <controller>.<file>=<value>", "--id", id, "--uid", UID, "--gid", GID,
	        "--parent-cgroup", parent, "--cgroup", "cpu.shares");
	REFUSED(15, "no cgroup v1 controller 'nosuch'", "--id", id, "--uid", UID, "--gid", GID,
	        "--parent-cgroup", parent, "--cgroup", "nosuch.x=1");
	REFUSED(15, "--cgroup-version 3: must be 1 or 2", "--id", id, "--uid", UID, "--gid", GID,
	        "--cgroup-version", "3");
	REFUSED(15, "--parent-cgroup ../x", "--id", id, "--uid", UID, "--gid", GID,
	        "--parent-cgroup", "../x", "--cgroup", "cpu.shares=5");
	/* accepted by the parser, fails at the write: the dirs and chroot made are removed */
	REFUSED(15, "--cgroup cpu.nosuch=1: writing", "--id", id, "--uid", UID, "--gid", GID,
	        "--parent-cgroup", parent, "--cgroup", "cpu.shares=512", "--cgroup",
	        "cpu.nosuch=1");
}

Test(jailer, refuses_bad_resource_limits)
{
	REFUSED(16, "--resource-limit no-file=abc: the value is not a number", "--id", id, "--uid",
	        UID, "--gid", GID, "--resource-limit", "no-file=abc");
	REFUSED(16, "--resource-limit cores=5: unknown resource", "--id", id, "--uid", UID, "--gid",
	        GID, "--resource-limit", "cores=5");
	REFUSED(16, "expected no-file=N or fsize=N", "--id", id, "--uid", UID, "--gid", GID,
	        "--resource-limit", "fsize");
	REFUSED(16, "--resource-limit fsize=-1", "--id", id, "--uid", UID, "--gid", GID,
	        "--resource-limit", "fsize=-1");
}

Test(jailer, refuses_a_chroot_that_holds_another_vm)
{
	char root[256], file[600];
	const char *const *args = ARGS("--id", id, "--uid", UID, "--gid", GID);

	chroot_of(root, sizeof(root));
	snprintf(file, sizeof(file), "mkdir -p '%s' && touch '%s/kiln-probe'", root, root);
	cr_assert_eq(system(file), 0);
	refused(probe(), args, 17, "already holds kiln-probe: another VM");
	/* a pid file left by an earlier jailer is another VM too */
	snprintf(file, sizeof(file), "mv '%s/kiln-probe' '%s/kiln-probe.pid'", root, root);
	cr_assert_eq(system(file), 0);
	refused(probe(), args, 17, "already holds kiln-probe.pid: another VM");
}

/* Kata makes <root>/run and bind-mounts its files before it runs the jailer */
Test(jailer, keeps_what_an_orchestrator_put_in_the_chroot_first)
{
	char root[256], cmd[700], listing[4096];
	struct run r;

	chroot_of(root, sizeof(root));
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/run' && echo kernel > '%s/vmlinux'", root, root);
	cr_assert_eq(system(cmd), 0);
	start(&r, probe(), ARGS("--id", id, "--uid", UID, "--gid", GID));
	finish(&r);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	list_tree(root, listing, sizeof(listing));
	cr_assert(strstr(listing, "./vmlinux\n") && strstr(listing, "./kiln-probe\n") &&
	                  strstr(listing, "./dev/kvm\n"),
	          "the chroot holds:\n%s", listing);
	snprintf(cmd, sizeof(cmd), "%s/vmlinux", root);
	read_file(cmd, listing, sizeof(listing));
	cr_assert_str_eq(listing, "kernel\n");
}

Test(jailer, refuses_an_exec_file_without_x)
{
	char dir[96], copy[128], cmd[512];
	const char *const *args = ARGS("--id", id, "--uid", UID, "--gid", GID);

	/* refused before anything is made: the copy keeps its mode, execve would fail */
	snprintf(dir, sizeof(dir), "/tmp/kiln-jail-noexec-%d", (int)getpid());
	mkdir(dir, 0755);
	snprintf(copy, sizeof(copy), "%s/kiln-probe", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 644 '%s'", probe(), copy, copy);
	cr_assert_eq(system(cmd), 0);
	refused(copy, args, 11, ": not executable");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/*
 * A step after pivot_root failing (strace's fault injection makes the
 * second mknod, /dev/kvm's, fail): what the run made, inside the chroot
 * (reached through the host root kept open), above it and in the cgroup it
 * had joined, is removed.
 */
Test(jailer, a_failure_after_pivot_root_removes_what_it_made)
{
	char parent[64];
	const char *const *args;

	if (system("command -v strace >/dev/null") != 0)
		cr_skip_test("no strace (scripts/deps.sh installs it)");
	snprintf(parent, sizeof(parent), "kiln-jt-r%d", (int)getpid());
	args = ARGS("-qq", "-f", "-o", "/dev/null", "-e", "trace=mknod,mknodat", "-e",
	            "inject=mknod,mknodat:error=EPERM:when=2",
	            /* LeakSanitizer cannot run under ptrace (the ASan build) */
	            "-E", "ASAN_OPTIONS=detect_leaks=0", getenv("KILN_JAILER"), "--exec-file",
	            probe(), "--chroot-base-dir", base, "--id", id, "--uid", UID, "--gid", GID,
	            "--cgroup", "cpu.shares=512", "--cgroup", "pids.max=10", "--cgroup",
	            "cpuset.cpus=0", "--cgroup", "memory.limit_in_bytes=100000000",
	            "--parent-cgroup", parent);
	refused_cmd("strace", args, 18, "jail: mknod /dev/kvm: Operation not permitted");
}

Test(jailer, usage_errors)
{
	REFUSED(2, "are required", "--uid", UID, "--gid", GID);
	REFUSED(2, "--bogus: unknown flag", "--id", id, "--bogus", "--uid", UID, "--gid", GID);
}

Test(jailer, version_and_help)
{
	char cmd[512], out[512] = {0};
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' --version && '%s' --help", getenv("KILN_JAILER"),
	         getenv("KILN_JAILER"));
	p = popen(cmd, "r");
	cr_assert(fread(out, 1, sizeof(out) - 1, p) > 0);
	cr_assert_eq(pclose(p), 0);
	cr_assert(!strncmp(out, "kiln-jailer v", 13), "%s", out);
	cr_assert(strstr(out, "usage: kiln-jailer --id ID --exec-file PATH"), "%s", out);
}
