// SPDX-License-Identifier: Apache-2.0
/* the kiln-jailer tests' rig (rig.h) */
#include "rig.h"

#include <criterion/criterion.h>
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

char base[64]; /* the --chroot-base-dir of each test, made empty */
char id[32];

void setup(void)
{
	snprintf(base, sizeof(base), "/tmp/kiln-jail-XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(id, sizeof(id), "jt-%d-%ld", (int)getpid(), (long)time(NULL) % 100000);
	/* the --new-pid-ns and --daemonize probes are left to us when the jailer exits */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	cr_assert_eq(system(cmd), 0);
}

void start(struct run *r, const char *exec, const char *const *args)
{
	const char *argv[64] = {getenv("KILN_JAILER"), "--exec-file", exec, "--chroot-base-dir",
	                        base};

	start_cmd(r, argv, 5, args);
}

void start_cmd(struct run *r, const char **argv, int n, const char *const *args)
{
	int out[2], err[2];

	for (; *args; args++)
		argv[n++] = *args;
	memset(r, 0, sizeof(*r));
	cr_assert(pipe(out) == 0 && pipe(err) == 0);
	r->pid = fork();
	cr_assert(r->pid >= 0);
	if (!r->pid) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	r->out_fd = out[0];
	/* the error pipe is read at the end; a refusal writes far below its size */
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	r->err_fd = err[0];
}

void read_until(struct run *r, const char *marker)
{
	size_t len = strlen(r->out);
	ssize_t n;

	while (!strstr(r->out, marker) && len < sizeof(r->out) - 1 &&
	       (n = read(r->out_fd, r->out + len, sizeof(r->out) - 1 - len)) > 0)
		len += n, r->out[len] = 0;
}

/* reads everything, waits for the jailer (or what it became), status in r->status */
void finish(struct run *r)
{
	int err_fd = r->err_fd, st;
	ssize_t n;

	read_until(r, "\x01never");
	close(r->out_fd);
	cr_assert_eq(waitpid(r->pid, &st, 0), r->pid);
	n = read(err_fd, r->err, sizeof(r->err) - 1);
	r->err[n > 0 ? n : 0] = 0;
	close(err_fd);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

const char *probe(void)
{
	return getenv("KILN_PROBE");
}

void chroot_of(char *buf, size_t size)
{
	snprintf(buf, size, "%s/kiln-probe/%s/root", base, id);
}

pid_t read_pid_file(void)
{
	char path[256], buf[32] = {0};
	int fd;

	snprintf(path, sizeof(path), "%s/kiln-probe/%s/root/kiln-probe.pid", base, id);
	fd = open(path, O_RDONLY);
	cr_assert(fd >= 0, "no pid file %s", path);
	cr_assert(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	return atoi(buf);
}

void kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0) {
	}
}

ino_t ns_inode(pid_t pid, const char *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	cr_assert(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return st.st_ino;
}

void assert_line(const struct run *r, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	cr_assert(strstr(r->out, want) || !strncmp(r->out, want + 1, strlen(want + 1)),
	          "probe report lacks \"%s\":\n%s\nstderr: %s", line, r->out, r->err);
}

void read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
	n = read(fd, buf, size - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fd);
}

/* names under DIR, "" when empty */
void list_tree(const char *dir, char *out, size_t size)
{
	char cmd[256];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "cd '%s' && find . -mindepth 1 | sort", dir);
	p = popen(cmd, "r");
	n = fread(out, 1, size - 1, p);
	out[n] = 0;
	pclose(p);
}

/* runs the jailer, expects CODE and MSG on stderr, and nothing new under base or cgroups */
static void check_refusal(const char **argv, int n, const char *const *args, int code,
                          const char *msg);

void refused(const char *exec, const char *const *args, int code, const char *msg)
{
	const char *argv[64] = {getenv("KILN_JAILER"), "--exec-file", exec, "--chroot-base-dir",
	                        base};

	check_refusal(argv, 5, args, code, msg);
}

void refused_cmd(const char *cmd, const char *const *args, int code, const char *msg)
{
	const char *argv[64] = {cmd};

	check_refusal(argv, 1, args, code, msg);
}

static void check_refusal(const char **argv, int n, const char *const *args, int code,
                          const char *msg)
{
	char before[4096], after[4096], cg[256];
	struct run r;

	list_tree(base, before, sizeof(before));
	start_cmd(&r, argv, n, args);
	finish(&r);
	cr_assert_eq(r.status, code, "exit %d (want %d), stderr: %s", r.status, code, r.err);
	cr_assert(strstr(r.err, msg), "stderr \"%s\" lacks \"%s\"", r.err, msg);
	cr_assert(!strchr(strchr(r.err, '\n') + 1, '\n') || strstr(r.err, "usage"),
	          "one line expected: %s", r.err);
	list_tree(base, after, sizeof(after));
	cr_assert_str_eq(after, before, "left behind under %s", base);
	for (const char *const *c = (const char *const[]){"cpu", "pids", "cpuset", "memory", NULL};
	     *c; c++) {
		snprintf(cg, sizeof(cg), "/sys/fs/cgroup/%s/kiln-jt-r%d", *c, (int)getpid());
		cr_assert(access(cg, F_OK) < 0, "%s left behind", cg);
	}
	snprintf(cg, sizeof(cg), "/sys/fs/cgroup/kiln-jt-r%d", (int)getpid());
	cr_assert(access(cg, F_OK) < 0, "%s left behind", cg);
}
