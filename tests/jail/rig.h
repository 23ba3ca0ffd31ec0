/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kiln-jailer tests' rig: each test gets an empty --chroot-base-dir
 * (base) and an --id of its own (id) from setup(), removed by teardown();
 * start() runs $KILN_JAILER with the probe ($KILN_PROBE) or another exec
 * file; the probe's report (tests/jail/probe.c) comes back in run.out.
 * Every helper fails the calling criterion test on a broken step.
 */
#ifndef KILN_TESTS_JAIL_RIG_H
#define KILN_TESTS_JAIL_RIG_H

#include <sys/types.h>

/* an argument list for start(), NULL-ended */
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

#define UID "4242"
#define GID "4343"

extern char base[64]; /* the --chroot-base-dir of the running test */
extern char id[32];   /* its --id */

struct run {
	pid_t pid; /* the jailer, which becomes the probe without --new-pid-ns */
	int out_fd, err_fd;
	int status; /* exit status after finish(); 128+signal when killed */
	char out[65536];
	char err[4096];
};

/* criterion .init/.fini: base and id made, and every child reaped here */
void setup(void);
void teardown(void);

/* kiln-jailer --exec-file EXEC --chroot-base-dir base ARGS... */
void start(struct run *r, const char *exec, const char *const *args);
/* ARGV[0..N-1] then ARGS (argv has room for 64), run like start() */
void start_cmd(struct run *r, const char **argv, int n, const char *const *args);
/* reads the jailer's stdout into r->out until MARKER shows (or EOF) */
void read_until(struct run *r, const char *marker);
/* reads to EOF, waits for the jailer; r->status, r->err filled */
void finish(struct run *r);

const char *probe(void);
/* <base>/kiln-probe/<id>/root */
void chroot_of(char *buf, size_t size);
/* the pid in the jail's kiln-probe.pid, as the host sees it */
pid_t read_pid_file(void);
/* SIGKILL to PID, then every child reaped */
void kill_and_reap(pid_t pid);
ino_t ns_inode(pid_t pid, const char *ns);
/* the probe reported exactly LINE */
void assert_line(const struct run *r, const char *line);
void read_file(const char *path, char *buf, size_t size);
/* `find DIR -mindepth 1 | sort` into OUT */
void list_tree(const char *dir, char *out, size_t size);

/*
 * Runs the jailer, expects exit CODE and MSG in one line on stderr, nothing
 * new under base, and no cgroup kiln-jt-r<pid> (v1 cpu, pids, cpuset,
 * memory, or v2) left.
 */
void refused(const char *exec, const char *const *args, int code, const char *msg);

/* the same for CMD ARGS... (the jailer run under another program) */
void refused_cmd(const char *cmd, const char *const *args, int code, const char *msg);

#define REFUSED(code, msg, ...) refused(probe(), ARGS(__VA_ARGS__), code, msg)

#endif
