// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/seccomp_filters.h: kiln's seccomp filters, one per thread kind
 * (common.h: enum thread_kind). The allowlists are in seccomp_rules.c,
 * one line of why per system call; seccomp.c builds and loads them.
 *
 * Each thread loads its own kind's filter once, after its set-up and
 * before it handles guest or client input (confine_thread()). A thread
 * created afterwards inherits its creator's filter as well as loading its
 * own, so it is held to both: the VMM thread loads its filter only once
 * the vCPU and I/O threads exist, and its list covers the migration
 * threads it may start later.
 *
 * A system call outside the calling thread's list is trapped: one log
 * line names the thread and the call, and the process exits with
 * KILN_EXIT_BAD_SYSCALL (148, Firecracker's code).
 */
#ifndef KILN_DAEMON_SECCOMP_FILTERS_H
#define KILN_DAEMON_SECCOMP_FILTERS_H

#include "common/common.h"

#include <seccomp.h>
#include <stdbool.h>

#define KILN_EXIT_BAD_SYSCALL 148

/* how the filters treat a call outside the list */
enum seccomp_mode {
	SECCOMP_OFF,   /* --no-seccomp: no filters at all */
	SECCOMP_TRAP,  /* the default: log the call and exit */
	SECCOMP_AUDIT, /* --seccomp-audit (development): the kernel logs it, it goes on */
};

/*
 * Sets the filters up for the whole process; called once by main, before
 * any thread starts. With SECCOMP_OFF it does nothing. 0 / -errno.
 */
int kiln_seccomp_init(enum seccomp_mode mode, struct errbuf *e);

/* the name of a thread kind as the filters and the logs call it */
const char *thread_kind_name(enum thread_kind kind);

/* --------------------------------------------- seccomp_rules.c: the lists */

/* a system call allowed without looking at its arguments, and why */
struct seccomp_allow {
	const char *name;
	const char *why;
};

/*
 * Adds `kind`'s rules to `ctx` (created with the mode's default action):
 * its plain allowlist and the calls it may make only with some arguments
 * (ioctl numbers, mmap/mprotect without PROT_EXEC, socket families,
 * clone only for threads). 0 / -errno, with the failing call named in e.
 */
int seccomp_rules_add(scmp_filter_ctx ctx, enum thread_kind kind, struct errbuf *e);

#endif
