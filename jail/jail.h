/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kiln-jailer: Firecracker's jailer for kiln (docs/jailer.md).
 *
 * One process, one thread, run as root. main.c parses and validates every
 * flag before anything is made; fs.c makes the chroot, pivots into it and
 * makes the device nodes; cgroup.c places the process in its cgroups. What
 * this run makes on disk (directories, the copied binary, cgroup
 * directories) is recorded in struct jail_undo so a failure before the exec
 * removes exactly that and nothing else.
 *
 * Every function returns 0 or -errno and, on failure, leaves a one-line
 * message in struct jail_err naming the flag or the step.
 */
#ifndef KILN_JAIL_H
#define KILN_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* exit statuses: one per kind of refusal (docs/jailer.md lists them) */
enum jail_exit {
	JAIL_EXIT_USAGE = 2,      /* unknown flag, missing value, missing --id ... */
	JAIL_EXIT_ID = 10,        /* --id */
	JAIL_EXIT_EXEC_FILE = 11, /* --exec-file */
	JAIL_EXIT_UID_GID = 12,   /* --uid / --gid not numbers */
	JAIL_EXIT_ROOT = 13,      /* uid or gid 0 without --allow-root */
	JAIL_EXIT_NETNS = 14,     /* --netns */
	JAIL_EXIT_CGROUP = 15,    /* --cgroup, --cgroup-version, --parent-cgroup */
	JAIL_EXIT_RLIMIT = 16,    /* --resource-limit */
	JAIL_EXIT_IN_USE = 17,    /* the chroot dir already holds something */
	JAIL_EXIT_SETUP = 18,     /* a step of the set-up failed (message says which) */
	JAIL_EXIT_EXEC = 19,      /* execve of the copied binary failed */
};

struct jail_err {
	int exit_code;
	char msg[512];
};

/* records the message and exit code; returns -err (err > 0) for chaining */
int jail_fail(struct jail_err *e, int exit_code, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* the chroot path, binary, pid file, 4 dirs + 4 nodes, 16 cgroups of 2+ levels */
#define JAIL_MAX_UNDO 96

/*
 * What this run created, removed in reverse order by jail_undo_run().
 * Paths are absolute on the host; they are resolved from root_fd (the host's
 * root, kept open across pivot_root, O_CLOEXEC so it never reaches the exec).
 */
struct jail_undo {
	int root_fd;
	int n;
	struct {
		char path[4096];
		bool dir;
		bool cgroup; /* a cgroup dir: move this process out before rmdir */
		char cgroup_root[256];
		char procs_file[16];
	} item[JAIL_MAX_UNDO];
};

void jail_undo_init(struct jail_undo *u);
/* records PATH as made by this run; -ENOSPC when the table is full */
int jail_undo_add(struct jail_undo *u, const char *path, bool dir);
/* removes everything recorded, newest first; best effort, never fails */
void jail_undo_run(struct jail_undo *u);
/* forgets everything (the exec is about to happen) and closes root_fd */
void jail_undo_forget(struct jail_undo *u);

/* ---- fs.c: chroot, binary copy, pivot_root, device nodes ---- */

/*
 * Makes CHROOT (absolute; "<base>/<exec name>/<id>/root") and its missing
 * parents, recording those it made. Refuses with JAIL_EXIT_IN_USE when
 * CHROOT already holds NAME (the exec file's name) or NAME.pid: another
 * VM's jail. Anything else found there (an orchestrator's files) is kept.
 */
int jail_fs_make_chroot(const char *chroot, const char *name, struct jail_undo *u,
                        struct jail_err *e);

/*
 * Copies EXEC (already validated) to CHROOT/NAME with EXEC's permission
 * bits, owned by uid:gid as Firecracker does.
 */
int jail_fs_copy_exec(const char *exec, const char *chroot, const char *name, uid_t uid, gid_t gid,
                      struct jail_undo *u, struct jail_err *e);

/*
 * New mount namespace, mounts made slaves, CHROOT bind-mounted onto itself,
 * pivot_root into it, old root unmounted and removed. Afterwards "/" is
 * CHROOT; u->root_fd still reaches the host's files for undo.
 */
int jail_fs_pivot(const char *chroot, struct jail_err *e);

/*
 * Inside the jail (after jail_fs_pivot): /, /dev, /dev/net, /run owned by
 * uid:gid mode 0700, and the char nodes /dev/kvm, /dev/net/tun,
 * /dev/urandom and, when UFFD_MINOR >= 0, /dev/userfaultfd, mode 0600 owned
 * by uid:gid. CHROOT is the host path of "/", used to record undo entries.
 */
int jail_fs_populate(const char *chroot, uid_t uid, gid_t gid, int uffd_minor, struct jail_undo *u,
                     struct jail_err *e);

/* the host's /dev/userfaultfd minor from /proc/misc, or -1 when absent */
int jail_fs_uffd_minor(void);

/* ---- cgroup.c ---- */

#define JAIL_MAX_CGROUPS 16

struct jail_cgroup_set {
	int version;        /* 1 or 2 */
	const char *mount;  /* /sys/fs/cgroup */
	const char *parent; /* --parent-cgroup, or the exec file's name */
	const char *id;
	int n;
	struct {
		char controller[64];
		char file[128];
		char value[256];
	} item[JAIL_MAX_CGROUPS];
};

/*
 * Parses one "--cgroup FILE=VALUE" into S: the controller is FILE up to its
 * first '.', and must be one the host has for S->version. Refusals are
 * JAIL_EXIT_CGROUP.
 */
int jail_cgroup_add(struct jail_cgroup_set *s, const char *arg, struct jail_err *e);

/* checks --parent-cgroup: a relative path without "..", "." or "//" */
int jail_cgroup_check_parent(const char *parent, struct jail_err *e);

/*
 * Makes <mount>[/<controller>]/<parent>/<id> for each controller, writes the
 * values, then moves this process in (tasks for v1, cgroup.procs for v2);
 * v2 first enables each controller in the parents' cgroup.subtree_control.
 * Directories made are recorded in U.
 */
int jail_cgroup_setup(const struct jail_cgroup_set *s, struct jail_undo *u, struct jail_err *e);

#endif
