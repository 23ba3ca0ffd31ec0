// SPDX-License-Identifier: Apache-2.0
/*
 * kiln-jailer: Firecracker's jailer flags and steps for kiln (docs/jailer.md).
 * This file: the flags, their checks, and the steps in Firecracker's order.
 */
#include "jail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <grp.h>

struct jail_opts {
	const char *id, *exec_file, *base, *netns, *parent_cgroup;
	char exec_name[256];
	uid_t uid;
	gid_t gid;
	bool have_uid, have_gid, daemonize, new_pid_ns, allow_root;
	rlim_t nofile, fsize;
	bool have_fsize;
	struct jail_cgroup_set cg;
	const char *cgroup_args[JAIL_MAX_CGROUPS];
	int n_cgroup_args;
	char **extra; /* the arguments after "--" */
	int n_extra;
};

static uint64_t now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int parse_u32(const char *flag, const char *s, uint32_t *out, struct jail_err *e)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || v > UINT32_MAX || s[0] == '-' || s[0] == '+')
		return jail_fail(e, JAIL_EXIT_UID_GID, EINVAL, "%s %s: not a number from 0 to %u",
		                 flag, s, UINT32_MAX);
	*out = (uint32_t)v;
	return 0;
}

static int check_id(const char *id, struct jail_err *e)
{
	size_t len = strlen(id);

	if (len < 1 || len > 64)
		return jail_fail(e, JAIL_EXIT_ID, EINVAL,
		                 "--id: must be 1 to 64 characters, not %zu", len);
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return jail_fail(e, JAIL_EXIT_ID, EINVAL,
			                 "--id %s: only ASCII letters, digits and '-' are allowed",
			                 id);
	}
	return 0;
}

static int check_exec_file(struct jail_opts *o, struct jail_err *e)
{
	const char *name = strrchr(o->exec_file, '/');
	struct stat st;

	name = name ? name + 1 : o->exec_file;
	if (lstat(o->exec_file, &st) < 0)
		return jail_fail(e, JAIL_EXIT_EXEC_FILE, errno, "--exec-file %s: %s", o->exec_file,
		                 strerror(errno));
	if (S_ISLNK(st.st_mode))
		return jail_fail(e, JAIL_EXIT_EXEC_FILE, ELOOP,
		                 "--exec-file %s: is a symlink; give the file itself",
		                 o->exec_file);
	if (!S_ISREG(st.st_mode))
		return jail_fail(e, JAIL_EXIT_EXEC_FILE, EINVAL,
		                 "--exec-file %s: not a regular file", o->exec_file);
	if (!(st.st_mode & 0111))
		return jail_fail(e, JAIL_EXIT_EXEC_FILE, EACCES, "--exec-file %s: not executable",
		                 o->exec_file);
	if (st.st_nlink > 1)
		return jail_fail(e, JAIL_EXIT_EXEC_FILE, EMLINK,
		                 "--exec-file %s: has %lu hard links; it must have one",
		                 o->exec_file, (unsigned long)st.st_nlink);
	if (!*name || strlen(name) >= sizeof(o->exec_name) || !strcmp(name, ".."))
		return jail_fail(e, JAIL_EXIT_EXEC_FILE, EINVAL, "--exec-file %s: bad file name",
		                 o->exec_file);
	strcpy(o->exec_name, name);
	return 0;
}

/* "--resource-limit no-file=N" or "fsize=N" (Firecracker's names) */
static int parse_rlimit(struct jail_opts *o, const char *arg, struct jail_err *e)
{
	const char *eq = strchr(arg, '=');
	char *end;
	unsigned long long v;

	if (!eq)
		return jail_fail(e, JAIL_EXIT_RLIMIT, EINVAL,
		                 "--resource-limit %s: expected no-file=N or fsize=N", arg);
	errno = 0;
	v = strtoull(eq + 1, &end, 10);
	if (!eq[1] || *end || errno || eq[1] == '-' || eq[1] == '+')
		return jail_fail(e, JAIL_EXIT_RLIMIT, EINVAL,
		                 "--resource-limit %s: the value is not a number", arg);
	if (!strncmp(arg, "no-file=", 8))
		o->nofile = v;
	else if (!strncmp(arg, "fsize=", 6))
		o->fsize = v, o->have_fsize = true;
	else
		return jail_fail(e, JAIL_EXIT_RLIMIT, EINVAL,
		                 "--resource-limit %s: unknown resource (no-file, fsize)", arg);
	return 0;
}

enum {
	OPT_ID = 256,
	OPT_EXEC,
	OPT_UID,
	OPT_GID,
	OPT_BASE,
	OPT_NETNS,
	OPT_CGV,
	OPT_CG,
	OPT_PCG,
	OPT_RL,
	OPT_DAEMON,
	OPT_PIDNS,
	OPT_ROOT,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option long_opts[] = {
        {"id", required_argument, NULL, OPT_ID},
        {"exec-file", required_argument, NULL, OPT_EXEC},
        {"uid", required_argument, NULL, OPT_UID},
        {"gid", required_argument, NULL, OPT_GID},
        {"chroot-base-dir", required_argument, NULL, OPT_BASE},
        {"netns", required_argument, NULL, OPT_NETNS},
        {"cgroup-version", required_argument, NULL, OPT_CGV},
        {"cgroup", required_argument, NULL, OPT_CG},
        {"parent-cgroup", required_argument, NULL, OPT_PCG},
        {"resource-limit", required_argument, NULL, OPT_RL},
        {"daemonize", no_argument, NULL, OPT_DAEMON},
        {"new-pid-ns", no_argument, NULL, OPT_PIDNS},
        {"allow-root", no_argument, NULL, OPT_ROOT},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
};

static const char usage[] =
        "usage: kiln-jailer --id ID --exec-file PATH --uid UID --gid GID\n"
        "         [--chroot-base-dir DIR] [--netns PATH] [--cgroup-version 1|2]\n"
        "         [--cgroup FILE=VALUE ...] [--parent-cgroup NAME]\n"
        "         [--resource-limit no-file=N|fsize=N ...] [--daemonize] [--new-pid-ns]\n"
        "         [--allow-root] [-- KILN ARGUMENTS]\n"
        "       kiln-jailer --version | --help\n";

static int parse_flags(int argc, char **argv, struct jail_opts *o, struct jail_err *e)
{
	const char *cgv = "1";
	uint32_t v;
	int c, r;

	o->base = "/srv/jailer";
	o->nofile = 2048;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_ID:
			o->id = optarg;
			break;
		case OPT_EXEC:
			o->exec_file = optarg;
			break;
		case OPT_UID:
			if ((r = parse_u32("--uid", optarg, &v, e)) < 0)
				return r;
			o->uid = v, o->have_uid = true;
			break;
		case OPT_GID:
			if ((r = parse_u32("--gid", optarg, &v, e)) < 0)
				return r;
			o->gid = v, o->have_gid = true;
			break;
		case OPT_BASE:
			o->base = optarg;
			break;
		case OPT_NETNS:
			o->netns = optarg;
			break;
		case OPT_CGV:
			cgv = optarg;
			break;
		case OPT_CG:
			if (o->n_cgroup_args == JAIL_MAX_CGROUPS)
				return jail_fail(e, JAIL_EXIT_CGROUP, E2BIG,
				                 "--cgroup: more than %d given", JAIL_MAX_CGROUPS);
			o->cgroup_args[o->n_cgroup_args++] = optarg;
			break;
		case OPT_PCG:
			o->parent_cgroup = optarg;
			break;
		case OPT_RL:
			if ((r = parse_rlimit(o, optarg, e)) < 0)
				return r;
			break;
		case OPT_DAEMON:
			o->daemonize = true;
			break;
		case OPT_PIDNS:
			o->new_pid_ns = true;
			break;
		case OPT_ROOT:
			o->allow_root = true;
			break;
		case OPT_HELP:
			fputs(usage, stdout);
			exit(0);
		case OPT_VERSION:
			printf("kiln-jailer v%s\n", KILN_VERSION);
			exit(0);
		default:
			return jail_fail(e, JAIL_EXIT_USAGE, EINVAL,
			                 "%s: unknown flag or missing value", argv[optind - 1]);
		}
	}
	o->extra = argv + optind;
	o->n_extra = argc - optind;
	if (!o->id || !o->exec_file || !o->have_uid || !o->have_gid)
		return jail_fail(e, JAIL_EXIT_USAGE, EINVAL,
		                 "--id, --exec-file, --uid and --gid are required");
	if ((r = check_id(o->id, e)) < 0 || (r = check_exec_file(o, e)) < 0)
		return r;
	if ((o->uid == 0 || o->gid == 0) && !o->allow_root)
		return jail_fail(e, JAIL_EXIT_ROOT, EPERM,
		                 "--uid %u --gid %u: the VMM would run as root; pass --allow-root "
		                 "to mean it",
		                 o->uid, o->gid);
	if (o->netns) {
		struct stat st;

		if (stat(o->netns, &st) < 0)
			return jail_fail(e, JAIL_EXIT_NETNS, errno, "--netns %s: %s", o->netns,
			                 strerror(errno));
	}
	if (strcmp(cgv, "1") && strcmp(cgv, "2"))
		return jail_fail(e, JAIL_EXIT_CGROUP, EINVAL, "--cgroup-version %s: must be 1 or 2",
		                 cgv);
	o->cg.version = cgv[0] - '0';
	o->cg.mount = "/sys/fs/cgroup";
	o->cg.parent = o->parent_cgroup ? o->parent_cgroup : o->exec_name;
	o->cg.id = o->id;
	if (o->parent_cgroup && (r = jail_cgroup_check_parent(o->parent_cgroup, e)) < 0)
		return r;
	for (int i = 0; i < o->n_cgroup_args; i++)
		if ((r = jail_cgroup_add(&o->cg, o->cgroup_args[i], e)) < 0)
			return r;
	if (o->base[0] != '/')
		return jail_fail(e, JAIL_EXIT_USAGE, EINVAL,
		                 "--chroot-base-dir %s: must be an absolute path", o->base);
	return 0;
}

/* fds above 2 closed (Firecracker's sanitize_process); the environment cleared */
static void sanitize(void)
{
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	clearenv();
}

static int set_rlimits(const struct jail_opts *o, struct jail_err *e)
{
	struct rlimit rl = {o->nofile, o->nofile};

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return jail_fail(e, JAIL_EXIT_RLIMIT, errno, "--resource-limit no-file=%llu: %s",
		                 (unsigned long long)o->nofile, strerror(errno));
	rl.rlim_cur = rl.rlim_max = o->fsize;
	if (o->have_fsize && setrlimit(RLIMIT_FSIZE, &rl) < 0)
		return jail_fail(e, JAIL_EXIT_RLIMIT, errno, "--resource-limit fsize=%llu: %s",
		                 (unsigned long long)o->fsize, strerror(errno));
	return 0;
}

static int join_netns(const char *path, struct jail_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return jail_fail(e, JAIL_EXIT_NETNS, errno, "--netns %s: %s", path,
		                 strerror(errno));
	if (setns(fd, CLONE_NEWNET) < 0)
		r = jail_fail(e, JAIL_EXIT_NETNS, errno, "--netns %s: not a network namespace: %s",
		              path, strerror(errno));
	close(fd);
	return r;
}

/* groups, gid, uid, every capability (bounding and ambient too), then no_new_privs */
static int drop_privileges(uid_t uid, gid_t gid, struct jail_err *e)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {{0}};
	const char *step;

	step = "dropping the bounding set";
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			goto err;
	step = "clearing ambient capabilities";
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		goto err;
	step = "setgroups";
	if (setgroups(0, NULL) < 0)
		goto err;
	step = "setresgid";
	if (setresgid(gid, gid, gid) < 0)
		goto err;
	step = "setresuid";
	if (setresuid(uid, uid, uid) < 0)
		goto err;
	/* a non-zero uid already lost them; with --allow-root and uid 0 it has not */
	step = "capset";
	if (syscall(SYS_capset, &hdr, data) < 0)
		goto err;
	step = "PR_SET_NO_NEW_PRIVS";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		goto err;
	return 0;
err:
	return jail_fail(e, JAIL_EXIT_SETUP, errno, "dropping privileges: %s failed: %s", step,
	                 strerror(errno));
}

/* "/<exec>.pid" in the jail, as Firecracker's jailer writes it */
static int write_pid_file(const char *name, pid_t pid, struct jail_err *e)
{
	char path[300], buf[32];
	int fd, len;

	snprintf(path, sizeof(path), "/%s.pid", name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "writing %s: %s", path,
		                 strerror(errno));
	len = snprintf(buf, sizeof(buf), "%d", (int)pid);
	if (write(fd, buf, len) != len) {
		close(fd);
		return jail_fail(e, JAIL_EXIT_SETUP, EIO, "writing %s failed", path);
	}
	close(fd);
	return 0;
}

/* fork; the parent exits 0 as Firecracker's does, the child returns 0 */
static int fork_and_leave(const char *flag, struct jail_err *e)
{
	pid_t pid = fork();

	if (pid < 0)
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "%s: fork: %s", flag, strerror(errno));
	if (pid)
		_exit(0);
	return 0;
}

/* daemonize as Firecracker: fork, setsid, fork again, /dev/null over 0, 1, 2 */
static int daemonize(int dev_null, uint64_t *cpu_us, struct jail_err *e)
{
	int r;

	if ((r = fork_and_leave("--daemonize", e)) < 0)
		return r;
	if (setsid() < 0)
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "--daemonize: setsid: %s",
		                 strerror(errno));
	*cpu_us += now_us(CLOCK_PROCESS_CPUTIME_ID);
	if ((r = fork_and_leave("--daemonize", e)) < 0)
		return r;
	if (dup2(dev_null, 0) < 0 || dup2(dev_null, 1) < 0 || dup2(dev_null, 2) < 0)
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "--daemonize: dup2: %s",
		                 strerror(errno));
	close(dev_null);
	*cpu_us += now_us(CLOCK_PROCESS_CPUTIME_ID);
	return 0;
}

static void exec_vmm(const struct jail_opts *o, uint64_t start_us, uint64_t jailer_cpu_us,
                     struct jail_err *e)
{
	char path[300], t[24], c[24], p[24];
	char **argv = calloc(o->n_extra + 10, sizeof(*argv));
	char *envp[] = {NULL};
	int n = 0;

	if (!argv) {
		jail_fail(e, JAIL_EXIT_EXEC, ENOMEM, "out of memory");
		return;
	}
	snprintf(path, sizeof(path), "/%s", o->exec_name);
	snprintf(t, sizeof(t), "%llu", (unsigned long long)start_us);
	snprintf(p, sizeof(p), "%llu", (unsigned long long)jailer_cpu_us);
	/* Firecracker: the CPU time of this process at the exec */
	snprintf(c, sizeof(c), "%llu", (unsigned long long)now_us(CLOCK_PROCESS_CPUTIME_ID));
	argv[n++] = path;
	argv[n++] = "--id";
	argv[n++] = (char *)o->id;
	argv[n++] = "--start-time-us";
	argv[n++] = t;
	argv[n++] = "--start-time-cpu-us";
	argv[n++] = c;
	argv[n++] = "--parent-cpu-time-us";
	argv[n++] = p;
	for (int i = 0; i < o->n_extra; i++)
		argv[n++] = o->extra[i];
	execve(path, argv, envp);
	jail_fail(e, JAIL_EXIT_EXEC, errno, "exec %s in the jail: %s", path, strerror(errno));
	free(argv);
}

/* the steps after the flags are checked; on failure the caller undoes U */
static int run(struct jail_opts *o, uint64_t start_us, uint64_t start_cpu_us, struct jail_undo *u,
               struct jail_err *e)
{
	char chroot[4096];
	int r, dev_null = -1, uffd_minor = jail_fs_uffd_minor();
	uint64_t jailer_cpu_us;

	if (snprintf(chroot, sizeof(chroot), "%s/%s/%s/root", o->base, o->exec_name, o->id) >=
	    (int)sizeof(chroot))
		return jail_fail(e, JAIL_EXIT_USAGE, ENAMETOOLONG, "--chroot-base-dir: too long");
	if ((r = jail_fs_make_chroot(chroot, o->exec_name, u, e)) < 0 ||
	    (r = jail_fs_copy_exec(o->exec_file, chroot, o->exec_name, o->uid, o->gid, u, e)) < 0)
		return r;
	if (o->netns && (r = join_netns(o->netns, e)) < 0)
		return r;
	if ((r = set_rlimits(o, e)) < 0 || (r = jail_cgroup_setup(&o->cg, u, e)) < 0)
		return r;
	if (o->daemonize && (dev_null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "--daemonize: /dev/null: %s",
		                 strerror(errno));
	if ((r = jail_fs_pivot(chroot, e)) < 0 ||
	    (r = jail_fs_populate(chroot, o->uid, o->gid, uffd_minor, u, e)) < 0)
		return r;
	jailer_cpu_us = now_us(CLOCK_PROCESS_CPUTIME_ID) - start_cpu_us;
	if (o->daemonize && (r = daemonize(dev_null, &jailer_cpu_us, e)) < 0)
		return r;
	if (o->new_pid_ns) {
		/* Firecracker: a session leader's child gets its own session (no SIGHUP) */
		bool leader = !o->daemonize && getsid(0) == getpid();
		pid_t pid;

		if (unshare(CLONE_NEWPID) < 0)
			return jail_fail(e, JAIL_EXIT_SETUP, errno, "--new-pid-ns: unshare: %s",
			                 strerror(errno));
		pid = fork();
		if (pid < 0)
			return jail_fail(e, JAIL_EXIT_SETUP, errno, "--new-pid-ns: fork: %s",
			                 strerror(errno));
		if (pid) {
			if ((r = write_pid_file(o->exec_name, pid, e)) < 0) {
				kill(pid, SIGKILL);
				return r;
			}
			_exit(0);
		}
		jail_undo_forget(u); /* the parent owns the clean-up now */
		if (leader && setsid() < 0)
			return jail_fail(e, JAIL_EXIT_SETUP, errno, "--new-pid-ns: setsid: %s",
			                 strerror(errno));
	} else if ((r = write_pid_file(o->exec_name, getpid(), e)) < 0) {
		return r;
	} else {
		char host[4400];

		snprintf(host, sizeof(host), "%s/%s.pid", chroot, o->exec_name);
		if (jail_undo_add(u, host, false) < 0) {
			unlink(host + strlen(chroot));
			return jail_fail(e, JAIL_EXIT_SETUP, ENOSPC, "jail: undo table full");
		}
	}
	if ((r = drop_privileges(o->uid, o->gid, e)) < 0)
		return r;
	/* past this point the jail stays (as Firecracker's): uid cannot remove it */
	jail_undo_forget(u);
	exec_vmm(o, start_us, jailer_cpu_us, e);
	return -1;
}

int main(int argc, char **argv)
{
	uint64_t start_us = now_us(CLOCK_MONOTONIC);
	uint64_t start_cpu_us = now_us(CLOCK_PROCESS_CPUTIME_ID);
	struct jail_opts o = {0};
	struct jail_err e = {0};
	static struct jail_undo u; /* ~400 KiB: not on the stack */

	if (parse_flags(argc, argv, &o, &e) < 0) {
		fprintf(stderr, "kiln-jailer: %s\n", e.msg);
		if (e.exit_code == JAIL_EXIT_USAGE)
			fputs(usage, stderr);
		return e.exit_code;
	}
	sanitize();
	jail_undo_init(&u);
	if (u.root_fd < 0) {
		fprintf(stderr, "kiln-jailer: opening /: %s\n", strerror(errno));
		return JAIL_EXIT_SETUP;
	}
	run(&o, start_us, start_cpu_us, &u, &e);
	/* only failures come back here */
	fprintf(stderr, "kiln-jailer: %s\n", e.msg);
	jail_undo_run(&u);
	return e.exit_code ? e.exit_code : JAIL_EXIT_SETUP;
}
