// SPDX-License-Identifier: Apache-2.0
/*
 * kiln-jailer: cgroups v1 and v2 (jail.h). As Firecracker's jailer: the
 * cgroup is <mount>/<parent>/<id>, parent being --parent-cgroup or the exec
 * file's name; v1 controllers are mounted at <mount>/<controller>, v2 is the
 * unified hierarchy at <mount> itself.
 */
#include "jail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* does the host have CONTROLLER for VERSION? */
static bool has_controller(const struct jail_cgroup_set *s, const char *controller)
{
	char path[512], buf[1024];
	struct stat st;
	ssize_t n;
	int fd;

	if (s->version == 1) {
		snprintf(path, sizeof(path), "%s/%s/tasks", s->mount, controller);
		return stat(path, &st) == 0;
	}
	snprintf(path, sizeof(path), "%s/cgroup.controllers", s->mount);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
		if (!strcmp(tok, controller))
			return true;
	return false;
}

int jail_cgroup_add(struct jail_cgroup_set *s, const char *arg, struct jail_err *e)
{
	const char *eq = strchr(arg, '='), *dot = strchr(arg, '.');

	if (s->n == JAIL_MAX_CGROUPS)
		return jail_fail(e, JAIL_EXIT_CGROUP, E2BIG, "--cgroup: more than %d given",
		                 JAIL_MAX_CGROUPS);
	if (!eq || eq == arg || !eq[1] || !dot || dot == arg || dot > eq || dot + 1 == eq)
		return jail_fail(e, JAIL_EXIT_CGROUP, EINVAL,
		                 "--cgroup %s: expected <controller>.<file>=<value>", arg);
	if ((size_t)(eq - arg) >= sizeof(s->item[0].file) ||
	    (size_t)(dot - arg) >= sizeof(s->item[0].controller) ||
	    strlen(eq + 1) >= sizeof(s->item[0].value))
		return jail_fail(e, JAIL_EXIT_CGROUP, ENAMETOOLONG, "--cgroup %s: too long", arg);
	if (memchr(arg, '/', eq - arg))
		return jail_fail(e, JAIL_EXIT_CGROUP, EINVAL,
		                 "--cgroup %s: the file name may not hold '/'", arg);
	snprintf(s->item[s->n].controller, sizeof(s->item[0].controller), "%.*s", (int)(dot - arg),
	         arg);
	snprintf(s->item[s->n].file, sizeof(s->item[0].file), "%.*s", (int)(eq - arg), arg);
	snprintf(s->item[s->n].value, sizeof(s->item[0].value), "%s", eq + 1);
	if (!has_controller(s, s->item[s->n].controller))
		return jail_fail(e, JAIL_EXIT_CGROUP, ENOENT,
		                 "--cgroup %s: this host has no cgroup v%d controller '%s'", arg,
		                 s->version, s->item[s->n].controller);
	s->n++;
	return 0;
}

int jail_cgroup_check_parent(const char *parent, struct jail_err *e)
{
	if (!*parent || parent[0] == '/' || strstr(parent, "//") ||
	    parent[strlen(parent) - 1] == '/')
		goto bad;
	for (const char *p = parent; p; p = strchr(p, '/')) {
		if (*p == '/')
			p++;
		if (!strncmp(p, "..", 2) && (p[2] == '/' || !p[2]))
			goto bad;
		if (p[0] == '.' && (p[1] == '/' || !p[1]))
			goto bad;
	}
	return 0;
bad:
	return jail_fail(e, JAIL_EXIT_CGROUP, EINVAL,
	                 "--parent-cgroup %s: must be a relative path under the cgroup mount, "
	                 "without '.', '..' or empty parts",
	                 parent);
}

static int write_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;
	size_t len = strlen(value);

	if (fd < 0)
		return -errno;
	if (write(fd, value, len) != (ssize_t)len)
		r = -errno;
	close(fd);
	return r;
}

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return (int)n;
}

/* mkdir -p TOP/REL, recording what was made as cgroup dirs leaving to TOP/PROCS */
static int make_cgroup_dirs(const char *top, const char *rel, const char *procs,
                            struct jail_undo *u, struct jail_err *e)
{
	char path[512];
	size_t start = strlen(top) + 1;

	if (snprintf(path, sizeof(path), "%s/%s", top, rel) >= (int)sizeof(path))
		return jail_fail(e, JAIL_EXIT_CGROUP, ENAMETOOLONG, "cgroup path too long");
	for (size_t i = start;; i++) {
		char c = path[i];

		if (c != '/' && c)
			continue;
		path[i] = 0;
		if (mkdir(path, 0755) == 0) {
			if (jail_undo_add(u, path, true) < 0)
				return jail_fail(e, JAIL_EXIT_SETUP, ENOSPC, "undo table full");
			u->item[u->n - 1].cgroup = true;
			snprintf(u->item[u->n - 1].cgroup_root, sizeof(u->item[0].cgroup_root),
			         "%s", top);
			snprintf(u->item[u->n - 1].procs_file, sizeof(u->item[0].procs_file), "%s",
			         procs);
		} else if (errno != EEXIST) {
			return jail_fail(e, JAIL_EXIT_SETUP, errno, "cgroup: mkdir %s: %s", path,
			                 strerror(errno));
		}
		if (!c)
			return 0;
		path[i] = c;
	}
}

/*
 * v1 cpuset: a new cpuset has empty cpus and mems and takes no task until
 * they are set; copy them down from the nearest ancestor (Firecracker does).
 */
static int inherit_cpuset(const char *top, const char *rel, struct jail_err *e)
{
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	char path[512], parent[512], val[4096];

	for (size_t f = 0; f < 2; f++) {
		if (snprintf(path, sizeof(path), "%s/%s", top, rel) >= (int)sizeof(path))
			return jail_fail(e, JAIL_EXIT_CGROUP, ENAMETOOLONG, "cgroup path too long");
		size_t base = strlen(path);

		/* each level from the top down takes its parent's value when empty */
		for (size_t i = strlen(top) + 1; i <= base; i++) {
			if (path[i] != '/' && path[i])
				continue;
			char c = path[i];

			path[i] = 0;
			snprintf(parent, sizeof(parent), "%s", path);
			*strrchr(parent, '/') = 0;
			char file[600], pfile[600];

			snprintf(file, sizeof(file), "%s/%s", path, files[f]);
			snprintf(pfile, sizeof(pfile), "%s/%s", parent, files[f]);
			if (read_file(file, val, sizeof(val)) <= 1 &&
			    read_file(pfile, val, sizeof(val)) > 0 && write_file(file, val) < 0)
				return jail_fail(e, JAIL_EXIT_SETUP, errno,
				                 "cgroup: could not copy %s into %s", files[f],
				                 path);
			path[i] = c;
		}
	}
	return 0;
}

/* v2: "+controller" in the subtree_control of <mount> and each dir down to REL's parent */
static int enable_v2(const char *top, const char *rel, const char *controller, struct jail_err *e)
{
	char path[512], ctl[600], plus[80];

	snprintf(plus, sizeof(plus), "+%s", controller);
	if (snprintf(path, sizeof(path), "%s/%s", top, rel) >= (int)sizeof(path))
		return jail_fail(e, JAIL_EXIT_CGROUP, ENAMETOOLONG, "cgroup path too long");
	*strrchr(path, '/') = 0; /* the leaf's own subtree is not needed */
	for (size_t i = strlen(top);; i++) {
		char c = path[i];

		if (c != '/' && c)
			continue;
		path[i] = 0;
		snprintf(ctl, sizeof(ctl), "%s/cgroup.subtree_control", path);
		int r = write_file(ctl, plus);

		if (r < 0)
			return jail_fail(e, JAIL_EXIT_SETUP, -r, "cgroup: enabling %s in %s: %s",
			                 controller, ctl, strerror(-r));
		if (!c)
			return 0;
		path[i] = c;
	}
}

int jail_cgroup_setup(const struct jail_cgroup_set *s, struct jail_undo *u, struct jail_err *e)
{
	char rel[512], top[512], file[1200], pid[32];
	const char *procs = s->version == 1 ? "tasks" : "cgroup.procs";
	int r;

	if (!s->n)
		return 0;
	snprintf(rel, sizeof(rel), "%s/%s", s->parent, s->id);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	for (int i = 0; i < s->n; i++) {
		if (s->version == 1)
			snprintf(top, sizeof(top), "%s/%s", s->mount, s->item[i].controller);
		else
			snprintf(top, sizeof(top), "%s", s->mount);
		if ((r = make_cgroup_dirs(top, rel, procs, u, e)) < 0)
			return r;
		if (s->version == 2 && (r = enable_v2(top, rel, s->item[i].controller, e)) < 0)
			return r;
		if (s->version == 1 && !strcmp(s->item[i].controller, "cpuset") &&
		    (r = inherit_cpuset(top, rel, e)) < 0)
			return r;
		snprintf(file, sizeof(file), "%s/%s/%s", top, rel, s->item[i].file);
		if ((r = write_file(file, s->item[i].value)) < 0)
			return jail_fail(e, JAIL_EXIT_CGROUP, -r, "--cgroup %s=%s: writing %s: %s",
			                 s->item[i].file, s->item[i].value, file, strerror(-r));
	}
	/* every value is in place: now move in (once per hierarchy) */
	for (int i = 0; i < s->n; i++) {
		if (s->version == 1)
			snprintf(top, sizeof(top), "%s/%s", s->mount, s->item[i].controller);
		else
			snprintf(top, sizeof(top), "%s", s->mount);
		snprintf(file, sizeof(file), "%s/%s/%s", top, rel, procs);
		if ((r = write_file(file, pid)) < 0)
			return jail_fail(e, JAIL_EXIT_SETUP, -r, "cgroup: joining %s: %s", file,
			                 strerror(-r));
	}
	return 0;
}
