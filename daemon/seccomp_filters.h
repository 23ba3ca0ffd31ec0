// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/seccomp_filters.h: kiln's seccomp filters, one per thread kind
 * (common.h: enum thread_kind).
 *
 * A filter set is data (struct seccomp_set): per kind, the action for a
 * call no rule matches, the action for one that does, and the rules. The
 * set comes from kiln's defaults (seccomp_rules.c, one line of why per
 * system call) or from a file given with --seccomp-filter
 * (seccomp_json.c, the format in docs/seccomp.md), and
 * --print-seccomp-filter prints it in that format. seccomp_compile.c
 * turns each kind's filter into BPF through libseccomp; seccomp.c does
 * that once at the start and loads the result per thread.
 *
 * Each thread loads its own kind's filter once, after its set-up and
 * before it handles guest or client input (confine_thread()). A thread
 * created afterwards inherits its creator's filter as well as loading its
 * own, so it is held to both: the VMM thread loads its filter only once
 * the vCPU and I/O threads exist, and its list covers the migration
 * threads it may start later.
 *
 * With the defaults, a system call outside the calling thread's list is
 * trapped: one log line names the thread and the call, and the process
 * exits with KILN_EXIT_BAD_SYSCALL (148, Firecracker's code). A file's
 * "trap" action does the same.
 */
#ifndef KILN_DAEMON_SECCOMP_FILTERS_H
#define KILN_DAEMON_SECCOMP_FILTERS_H

#include "common/common.h"

#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define KILN_EXIT_BAD_SYSCALL 148

/* how the filters treat a call outside the list */
enum seccomp_mode {
	SECCOMP_OFF,   /* --no-seccomp: no filters at all */
	SECCOMP_TRAP,  /* the default: log the call and exit */
	SECCOMP_AUDIT, /* --seccomp-audit (development): the kernel logs it, it goes on */
};

/*
 * Sets the filters up for the whole process; called once by main, before
 * any thread starts. With SECCOMP_OFF it does nothing. `file` (NULL: the
 * defaults) is a --seccomp-filter file; it needs SECCOMP_TRAP (its own
 * actions say what happens). 0 / -errno with a message naming the file's
 * problem.
 */
int kiln_seccomp_init(enum seccomp_mode mode, const char *file, struct errbuf *e);

/*
 * --print-seccomp-filter: writes the filters kiln would load (the defaults
 * for `mode`, or `file` as kiln reads it) to `out` in the file format,
 * after compiling each one, so a file that prints is one kiln loads.
 * 0 / -errno with a message.
 */
int kiln_seccomp_print(enum seccomp_mode mode, const char *file, FILE *out, struct errbuf *e);

/* the name of a thread kind as the filters and the logs call it */
const char *thread_kind_name(enum thread_kind kind);

/* ------------------------------------------------------------ a filter set */

#define SECCOMP_ARGS     6 /* a system call's arguments, and a rule's comparisons at most */
#define SECCOMP_FILE_MAX (1u << 20)

enum seccomp_op {
	SECCOMP_OP_EQ,
	SECCOMP_OP_NE,
	SECCOMP_OP_LT,
	SECCOMP_OP_LE,
	SECCOMP_OP_GT,
	SECCOMP_OP_GE,
	SECCOMP_OP_MASKED_EQ, /* (argument & mask) == val */
};

/* one comparison of one argument */
struct seccomp_cond {
	unsigned index; /* the argument, 0 to 5 */
	bool qword;     /* all 64 bits; else (dword) only the low 32 */
	enum seccomp_op op;
	uint64_t mask; /* SECCOMP_OP_MASKED_EQ */
	uint64_t val;
	bool self_pid;       /* val is kiln's own pid ("self-pid"), filled in at the start */
	const char *comment; /* may be NULL */
};

/* calls of one system call that match: every comparison holds (none: every call) */
struct seccomp_rule {
	const char *syscall;
	const char *comment; /* may be NULL */
	bool has_action;     /* kiln's extension: its own action, else the filter's match_action */
	uint32_t action;     /* SCMP_ACT_* */
	unsigned nr_args;
	struct seccomp_cond args[SECCOMP_ARGS];
};

/* one thread kind's filter; the rules of one system call are ORed */
struct seccomp_filter {
	uint32_t mismatch_action, match_action; /* SCMP_ACT_* */
	struct seccomp_rule *rules;
	size_t nr_rules, cap;
};

struct seccomp_set {
	struct seccomp_filter kinds[THREAD_KINDS];
	void *doc; /* the parsed file (json_t) the strings point into, or NULL */
};

/* appends a copy of `r` to `f`: 0 / -ENOMEM */
int seccomp_filter_add(struct seccomp_filter *f, const struct seccomp_rule *r);

/* frees what a set holds (not the set itself); safe on a zeroed set */
void seccomp_set_free(struct seccomp_set *set);

/* ------------------------------------------------ seccomp_rules.c: defaults */

/*
 * Fills a zeroed `set` with kiln's own filters: calls outside them trap
 * (SECCOMP_TRAP) or are logged (SECCOMP_AUDIT). In a sanitizer build they
 * also allow the sanitizer runtime's calls. 0 / -ENOMEM; on failure the
 * caller still frees the set.
 */
int seccomp_defaults(struct seccomp_set *set, enum seccomp_mode mode, struct errbuf *e);

/* -------------------------------------------- seccomp_json.c: the file form */

/*
 * Parses a filter file (docs/seccomp.md) of `len` bytes into a zeroed
 * `set`: every kind present, no unknown key, thread kind or system call,
 * every value in range. A message gives the JSON path of what is wrong
 * (e.g. "vcpu.filter[3].args[0].op"), or the line and column of text that
 * is not JSON. 0 / -EINVAL / -ENOMEM; on failure the caller still frees
 * the set.
 */
int seccomp_set_parse(const char *text, size_t len, struct seccomp_set *set, struct errbuf *e);

/* writes `set` in the file format (one rule a line); 0 / -errno */
int seccomp_set_print(const struct seccomp_set *set, FILE *out, struct errbuf *e);

/* "allow", "trap", ... or "errno" for an SCMP_ACT_* (the file's names) */
const char *seccomp_action_name(uint32_t action);

/* ----------------------------------------- seccomp_compile.c: filter -> BPF */

/*
 * Compiles one kind's filter with libseccomp into BPF for this machine's
 * architecture, `pid` standing for "self-pid". A dword comparison looks
 * at the argument's low 32 bits only, as the kernel does for an int.
 * Refuses, naming "<kind>.filter[i]": a rule whose action is the
 * mismatch action, rules of one system call with different actions, two
 * comparisons of one argument in a rule, and a program longer than the
 * kernel takes. out->filter is malloc'd. 0 / -errno with a message.
 */
int seccomp_compile(const struct seccomp_filter *f, enum thread_kind kind, uint32_t pid,
                    struct sock_fprog *out, struct errbuf *e);

#endif
