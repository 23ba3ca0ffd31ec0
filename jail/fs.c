// SPDX-License-Identifier: Apache-2.0
/* kiln-jailer: the chroot, the binary's copy, pivot_root, device nodes (jail.h) */
#include "jail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int jail_fail(struct jail_err *e, int exit_code, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	e->exit_code = exit_code;
	return -err;
}

void jail_undo_init(struct jail_undo *u)
{
	memset(u, 0, sizeof(*u));
	u->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int jail_undo_add(struct jail_undo *u, const char *path, bool dir)
{
	if (u->n == JAIL_MAX_UNDO || strlen(path) >= sizeof(u->item[0].path))
		return -ENOSPC;
	memset(&u->item[u->n], 0, sizeof(u->item[0]));
	snprintf(u->item[u->n].path, sizeof(u->item[0].path), "%s", path);
	u->item[u->n].dir = dir;
	u->n++;
	return 0;
}

/* writes our pid to ROOT/PROCS (host path) so the cgroup below can go */
static void leave_cgroup(int root_fd, const char *root, const char *procs)
{
	char path[512], pid[32];
	int fd, len;

	snprintf(path, sizeof(path), "%s/%s", root + 1, procs);
	fd = openat(root_fd, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	len = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (write(fd, pid, len) < 0) {
		/* nothing better to do: the rmdir will fail and say so */
	}
	close(fd);
}

void jail_undo_run(struct jail_undo *u)
{
	if (u->root_fd < 0)
		return;
	for (int i = u->n - 1; i >= 0; i--) {
		const char *rel = u->item[i].path + 1; /* absolute -> relative to root_fd */

		if (u->item[i].cgroup)
			leave_cgroup(u->root_fd, u->item[i].cgroup_root, u->item[i].procs_file);
		if (unlinkat(u->root_fd, rel, u->item[i].dir ? AT_REMOVEDIR : 0) < 0)
			fprintf(stderr, "kiln-jailer: could not remove %s: %s\n", u->item[i].path,
			        strerror(errno));
	}
	u->n = 0;
}

void jail_undo_forget(struct jail_undo *u)
{
	u->n = 0;
	if (u->root_fd >= 0)
		close(u->root_fd);
	u->root_fd = -1;
}

/* CHROOT/NAME exists (as anything, a dangling symlink included) */
static bool holds(const char *chroot, const char *name, const char *suffix)
{
	char path[4400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s%s", chroot, name, suffix);
	return lstat(path, &st) == 0;
}

int jail_fs_make_chroot(const char *chroot, const char *name, struct jail_undo *u,
                        struct jail_err *e)
{
	char path[4096];
	struct stat st;

	if (strlen(chroot) >= sizeof(path) || chroot[0] != '/')
		return jail_fail(
		        e, JAIL_EXIT_USAGE, EINVAL,
		        "--chroot-base-dir: the chroot path %s is not absolute or too long",
		        chroot);
	if (lstat(chroot, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return jail_fail(e, JAIL_EXIT_IN_USE, EEXIST,
			                 "chroot %s exists and is not a directory", chroot);
		/*
		 * What an orchestrator put there first is kept (Kata makes run/
		 * and bind-mounts the kernel and disks before it starts the
		 * jailer); the binary or the pid file of an earlier jailer is not.
		 */
		if (holds(chroot, name, "") || holds(chroot, name, ".pid"))
			return jail_fail(
			        e, JAIL_EXIT_IN_USE, EEXIST,
			        "chroot %s already holds %s%s: another VM with this --id is "
			        "jailed there (or was not cleaned up)",
			        chroot, name, holds(chroot, name, "") ? "" : ".pid");
		return 0;
	}
	/* make each missing component, recording it, from the top down */
	strcpy(path, chroot);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;

		*p = 0;
		if (mkdir(path, 0755) == 0) {
			if (jail_undo_add(u, path, true) < 0) {
				rmdir(path);
				return jail_fail(e, JAIL_EXIT_SETUP, ENOSPC,
				                 "chroot path too deep");
			}
		} else if (errno != EEXIST) {
			return jail_fail(e, JAIL_EXIT_SETUP, errno, "could not make %s: %s", path,
			                 strerror(errno));
		}
		if (!c)
			break;
		*p = c;
	}
	return 0;
}

int jail_fs_copy_exec(const char *exec, const char *chroot, const char *name, uid_t uid, gid_t gid,
                      struct jail_undo *u, struct jail_err *e)
{
	char dst[4096], buf[65536];
	struct stat st;
	int in, out, r = 0;
	ssize_t n;

	snprintf(dst, sizeof(dst), "%s/%s", chroot, name);
	in = open(exec, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		r = jail_fail(e, JAIL_EXIT_EXEC_FILE, errno, "--exec-file %s: %s", exec,
		              strerror(errno));
		goto err_in;
	}
	/* a copy, not a link: no two VMs share the pages of one binary (Firecracker) */
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
	if (out < 0) {
		r = jail_fail(e, JAIL_EXIT_SETUP, errno, "could not create %s: %s", dst,
		              strerror(errno));
		goto err_in;
	}
	if (jail_undo_add(u, dst, false) < 0) {
		unlink(dst);
		r = jail_fail(e, JAIL_EXIT_SETUP, ENOSPC, "undo table full");
		goto err_out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n) {
			n = -1;
			break;
		}
	if (n < 0 || fchown(out, uid, gid) < 0 || fchmod(out, st.st_mode & 07777) < 0)
		r = jail_fail(e, JAIL_EXIT_SETUP, errno ? errno : EIO,
		              "could not copy %s to %s: %s", exec, dst, strerror(errno));
err_out:
	close(out);
err_in:
	if (in >= 0)
		close(in);
	return r;
}

int jail_fs_pivot(const char *chroot, struct jail_err *e)
{
	const char *step;

	step = "unshare(CLONE_NEWNS)";
	if (unshare(CLONE_NEWNS) < 0)
		goto err;
	/* nothing mounted in the jail's namespace reaches the host */
	step = "making / a recursive slave mount";
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		goto err;
	/* pivot_root(2) needs the new root to be a mount point */
	step = "bind-mounting the chroot onto itself";
	if (mount(chroot, chroot, NULL, MS_BIND | MS_REC, NULL) < 0)
		goto err;
	step = "chdir to the chroot";
	if (chdir(chroot) < 0)
		goto err;
	step = "making old_root";
	if (mkdir("old_root", 0700) < 0)
		goto err;
	step = "pivot_root";
	if (syscall(SYS_pivot_root, ".", "old_root") < 0) {
		int err = errno;

		rmdir("old_root");
		errno = err;
		goto err;
	}
	step = "chdir to the new /";
	if (chdir("/") < 0)
		goto err;
	step = "unmounting the old root";
	if (umount2("/old_root", MNT_DETACH) < 0)
		goto err;
	step = "removing /old_root";
	if (rmdir("/old_root") < 0)
		goto err;
	return 0;
err:
	return jail_fail(e, JAIL_EXIT_SETUP, errno, "jail: %s failed: %s", step, strerror(errno));
}

int jail_fs_uffd_minor(void)
{
	FILE *f = fopen("/proc/misc", "re");
	char name[64];
	int minor;

	if (!f)
		return -1;
	while (fscanf(f, "%d %63s", &minor, name) == 2)
		if (!strcmp(name, "userfaultfd")) {
			fclose(f);
			return minor;
		}
	fclose(f);
	return -1;
}

/* PATH inside the jail; records CHROOT+PATH for undo when made here */
static int own_dir(const char *chroot, const char *path, uid_t uid, gid_t gid, struct jail_undo *u,
                   struct jail_err *e)
{
	char host[4096];

	if (mkdir(path, 0700) == 0) {
		snprintf(host, sizeof(host), "%s%s", chroot, path);
		if (jail_undo_add(u, host, true) < 0) {
			rmdir(path);
			return jail_fail(e, JAIL_EXIT_SETUP, ENOSPC, "jail: undo table full");
		}
	} else if (errno != EEXIST) {
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "jail: mkdir %s: %s", path,
		                 strerror(errno));
	}
	if (chown(path, uid, gid) < 0 || chmod(path, 0700) < 0)
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "jail: chown %s: %s", path,
		                 strerror(errno));
	return 0;
}

static int own_node(const char *chroot, const char *path, unsigned int maj, unsigned int min,
                    uid_t uid, gid_t gid, struct jail_undo *u, struct jail_err *e)
{
	char host[4096];

	if (mknod(path, S_IFCHR | 0600, makedev(maj, min)) < 0)
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "jail: mknod %s: %s", path,
		                 strerror(errno));
	snprintf(host, sizeof(host), "%s%s", chroot, path);
	if (jail_undo_add(u, host, false) < 0) {
		unlink(path);
		return jail_fail(e, JAIL_EXIT_SETUP, ENOSPC, "jail: undo table full");
	}
	if (chown(path, uid, gid) < 0)
		return jail_fail(e, JAIL_EXIT_SETUP, errno, "jail: chown %s: %s", path,
		                 strerror(errno));
	return 0;
}

int jail_fs_populate(const char *chroot, uid_t uid, gid_t gid, int uffd_minor, struct jail_undo *u,
                     struct jail_err *e)
{
	static const char *const dirs[] = {"/", "/dev", "/dev/net", "/run"};
	int r;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if ((r = own_dir(chroot, dirs[i], uid, gid, u, e)) < 0)
			return r;
	/* Documentation/admin-guide/devices.txt: misc 232 kvm, 200 tun; mem 9 urandom */
	if ((r = own_node(chroot, "/dev/net/tun", 10, 200, uid, gid, u, e)) < 0 ||
	    (r = own_node(chroot, "/dev/kvm", 10, 232, uid, gid, u, e)) < 0 ||
	    (r = own_node(chroot, "/dev/urandom", 1, 9, uid, gid, u, e)) < 0)
		return r;
	if (uffd_minor >= 0)
		return own_node(chroot, "/dev/userfaultfd", 10, uffd_minor, uid, gid, u, e);
	return 0;
}
