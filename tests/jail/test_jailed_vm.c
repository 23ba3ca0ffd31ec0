// SPDX-License-Identifier: Apache-2.0
/*
 * A real VM under kiln-jailer, in the test bed (meson suite 'kvm'): kiln
 * itself (static, $KILN_BIN) jailed with cgroup v2 limits and a PID
 * namespace, driven through its API socket inside the chroot, as
 * Firecracker's Go SDK drives a jailed Firecracker: the guest's files are
 * copied into the chroot after the jailer made it. Checked while the guest
 * runs: the chroot holds only the binary, the device nodes, the pid file,
 * the API socket and the guest's files; kiln runs as uid/gid with no
 * capability and no_new_privs, every thread under a seccomp filter, in its
 * own mount and PID namespaces and in the cgroup with the limit asked.
 * A sanitizer build's kiln is linked dynamically and cannot run in a
 * chroot without libraries: there the test is skipped, saying so.
 */
#include "../integration/api_client.h"
#include "rig.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

static char parent[64]; /* the --parent-cgroup, under /sys/fs/cgroup */
static pid_t kiln_pid;

static void need_bed(void)
{
	struct statfs sf;

	if (strcmp(getenv("KILN_STATIC") ? getenv("KILN_STATIC") : "", "1"))
		cr_skip_test("this build's kiln is not linked statically (a sanitizer build)");
	if (access("/dev/kvm", R_OK | W_OK) < 0)
		cr_skip_test("no /dev/kvm here");
	if (statfs("/sys/fs/cgroup", &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC)
		cr_skip_test("/sys/fs/cgroup is not cgroup v2 here");
	setup();
	snprintf(parent, sizeof(parent), "kiln-jv-%d", (int)getpid());
}

static void done(void)
{
	char dir[160];

	if (kiln_pid > 0)
		kill_and_reap(kiln_pid);
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/%s", parent, id);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s", parent);
	rmdir(dir);
	teardown();
}

TestSuite(jailed_vm, .init = need_bed, .fini = done, .timeout = 240);

/* <base>/kiln/<id>/root + REL */
static void in_jail(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/kiln/%s/root%s", base, id, rel);
}

/* copies SRC to the chroot as NAME, readable by the jailed uid */
static void give_file(const char *src, const char *name)
{
	char dst[256], buf[65536];
	int in = open(src, O_RDONLY), out;
	ssize_t n;

	in_jail(dst, sizeof(dst), name);
	cr_assert(in >= 0, "%s: %s", src, strerror(errno));
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0444);
	cr_assert(out >= 0, "%s: %s", dst, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert_eq(write(out, buf, (size_t)n), n);
	cr_assert_eq(n, 0);
	close(in);
	close(out);
}

static void put(const char *sock, const char *path, const char *body)
{
	struct ac_resp resp;
	int st = ac_request(sock, "PUT", path, body, &resp);

	cr_assert_eq(st, 204, "PUT %s: %d %s", path, st, st > 0 ? resp.body : "");
	ac_resp_free(&resp);
}

/* the value of FIELD ("Uid:") in /proc/PID/status, tabs and all */
static void status_field(pid_t pid, const char *field, char *out, size_t size)
{
	char path[64], buf[4096], *p, *end;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	read_file(path, buf, sizeof(buf));
	p = strstr(buf, field);
	cr_assert(p, "no %s in %s", field, path);
	p += strlen(field);
	end = strchr(p, '\n');
	snprintf(out, size, "%.*s", (int)(end ? end - p : (long)strlen(p)), p);
}

/* every task of PID shows Seccomp: 2; how many there are */
static int all_tasks_filtered(pid_t pid)
{
	char path[64], status[600], line[256];
	int tasks = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	cr_assert(d, "%s: %s", path, strerror(errno));
	for (struct dirent *t; (t = readdir(d));) {
		bool filtered = false;
		FILE *f;

		if (t->d_name[0] == '.')
			continue;
		snprintf(status, sizeof(status), "%s/%s/status", path, t->d_name);
		f = fopen(status, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			filtered |= !strcmp(line, "Seccomp:\t2\n");
		fclose(f);
		cr_assert(filtered, "task %s of kiln has no seccomp filter", t->d_name);
		tasks++;
	}
	closedir(d);
	return tasks;
}

Test(jailed_vm, boots_confined_with_nothing_else_in_its_root)
{
	char sock[256], path[320], buf[4096], want[1024], guest[256];
	const char *kiln = getenv("KILN_BIN");
	struct run r;
	int tasks;

	start(&r, kiln,
	      ARGS("--id", id, "--uid", UID, "--gid", GID, "--cgroup-version", "2", "--cgroup",
	           "pids.max=64", "--parent-cgroup", parent, "--new-pid-ns", "--", "--api-sock",
	           "/run/kiln.socket"));
	/* with --new-pid-ns the jailer exits 0 once kiln's pid is in the pid file */
	in_jail(sock, sizeof(sock), "/run/kiln.socket");
	for (int i = 0; i < 1000 && access(sock, F_OK) < 0; i++)
		usleep(10000);
	cr_assert(access(sock, F_OK) == 0, "no API socket %s", sock);
	in_jail(path, sizeof(path), "/kiln.pid");
	read_file(path, buf, sizeof(buf));
	kiln_pid = atoi(buf);
	cr_assert_gt(kiln_pid, 1, "pid file: \"%s\"", buf);

	/* the guest's kernel goes in as the Go SDK links it, then the API */
	snprintf(guest, sizeof(guest), "%s/memck.elf", getenv("KILN_GUEST_DIR"));
	give_file(guest, "/memck.elf");
	put(sock, "/boot-source",
	    "{\"kernel_image_path\": \"/memck.elf\", \"boot_args\": \"acpi=off memck.mib=4 "
	    "memck.report_ms=100\"}");
	put(sock, "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	put(sock, "/entropy", "{}");
	put(sock, "/actions", "{\"action_type\": \"InstanceStart\"}");
	read_until(&r, "memck: report 2 ");
	cr_assert(strstr(r.out, "memck: report 2 "), "no guest report; stdout:\n%s", r.out);

	/* the root: the binary, the nodes, the pid file, the socket, the guest */
	in_jail(path, sizeof(path), "");
	list_tree(path, buf, sizeof(buf));
	snprintf(want, sizeof(want),
	         "./dev\n./dev/kvm\n./dev/net\n./dev/net/tun\n./dev/urandom\n%s./kiln\n"
	         "./kiln.pid\n./memck.elf\n./run\n./run/kiln.socket\n",
	         access("/dev/userfaultfd", F_OK) == 0 ? "./dev/userfaultfd\n" : "");
	cr_assert_str_eq(buf, want, "the chroot holds:\n%s", buf);

	/* who it runs as, and what it may do */
	status_field(kiln_pid, "Uid:", buf, sizeof(buf));
	cr_assert_str_eq(buf, "\t" UID "\t" UID "\t" UID "\t" UID);
	status_field(kiln_pid, "Gid:", buf, sizeof(buf));
	cr_assert_str_eq(buf, "\t" GID "\t" GID "\t" GID "\t" GID);
	status_field(kiln_pid, "Groups:", buf, sizeof(buf));
	cr_assert(buf[strspn(buf, "\t ")] == 0, "supplementary groups: %s", buf);
	for (const char *const *c = ARGS("CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"); *c;
	     c++) {
		status_field(kiln_pid, *c, buf, sizeof(buf));
		cr_assert_str_eq(buf, "\t0000000000000000", "%s%s", *c, buf);
	}
	status_field(kiln_pid, "NoNewPrivs:", buf, sizeof(buf));
	cr_assert_str_eq(buf, "\t1");
	tasks = all_tasks_filtered(kiln_pid);
	/* the VMM, API, vCPU and entropy device threads at least */
	cr_assert_geq(tasks, 4, "only %d threads", tasks);

	/* its namespaces and cgroup */
	cr_assert_neq(ns_inode(kiln_pid, "mnt"), ns_inode(getpid(), "mnt"));
	cr_assert_neq(ns_inode(kiln_pid, "pid"), ns_inode(getpid(), "pid"));
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)kiln_pid);
	read_file(path, buf, sizeof(buf));
	snprintf(want, sizeof(want), "0::/%s/%s\n", parent, id);
	cr_assert_str_eq(buf, want);
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s/pids.max", parent, id);
	read_file(path, buf, sizeof(buf));
	cr_assert_str_eq(buf, "64\n");
	/* its root is the chroot: the host's /tmp is not there */
	snprintf(path, sizeof(path), "/proc/%d/root/tmp", (int)kiln_pid);
	cr_assert(access(path, F_OK) < 0, "the host's /tmp is visible in the jail");
	close(r.out_fd);
	close(r.err_fd);
}
