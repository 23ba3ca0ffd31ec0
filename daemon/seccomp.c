// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/seccomp.c: builds each thread kind's filter once, at the start,
 * into BPF (so that loading it is one system call, no allocation), from
 * kiln's defaults or a --seccomp-filter file, and loads it in the thread
 * that asks (confine_thread()). A trapped call is logged by the SIGSYS
 * handler, which then ends the process. See seccomp_filters.h.
 */
#define LOG_MODULE "seccomp"
#include "seccomp_filters.h"
#include "vmm.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define NR_NAMES 512

static struct sock_fprog progs[THREAD_KINDS];
static char call_names[NR_NAMES][24]; /* resolved before any filter, for the handler */
static int forbidden_kind = -1;       /* KILN_TEST_SECCOMP_VIOLATE: a test's trigger */
static __thread char thread_label[16];

static const char *const kind_names[THREAD_KINDS] = {
        [THREAD_VMM] = "vmm",
        [THREAD_API] = "api",
        [THREAD_VCPU] = "vcpu",
        [THREAD_IO] = "io",
        [THREAD_MIGRATION] = "migration",
};

const char *thread_kind_name(enum thread_kind kind)
{
	return kind < THREAD_KINDS ? kind_names[kind] : "?";
}

/* appends `s` to buf at *n, within size (signal-safe) */
static void put(char *buf, size_t size, size_t *n, const char *s)
{
	while (*s && *n + 1 < size)
		buf[(*n)++] = *s++;
}

static void put_num(char *buf, size_t size, size_t *n, unsigned long v)
{
	char d[24];
	int i = (int)sizeof(d) - 1;
	d[i] = '\0';
	do
		d[--i] = (char)('0' + v % 10);
	while ((v /= 10) && i > 0);
	put(buf, size, n, d + i);
}

/* the one log line, then the exit: only signal-safe calls */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	char line[256];
	size_t n = 0;
	unsigned nr = (unsigned)si->si_syscall;
	put(line, sizeof(line), &n, "[");
	put(line, sizeof(line), &n, log_instance_id());
	put(line, sizeof(line), &n, ":seccomp] thread ");
	put(line, sizeof(line), &n, thread_label[0] ? thread_label : "?");
	put(line, sizeof(line), &n, " made system call ");
	put_num(line, sizeof(line), &n, nr);
	if (nr < NR_NAMES && call_names[nr][0]) {
		put(line, sizeof(line), &n, " (");
		put(line, sizeof(line), &n, call_names[nr]);
		put(line, sizeof(line), &n, ")");
	}
	/* the first argument tells an ioctl's number, a socket's family, a prctl's option */
	const ucontext_t *uc = ctx;
	put(line, sizeof(line), &n, " with first argument ");
	put_num(line, sizeof(line), &n, (unsigned long)uc->uc_mcontext.gregs[REG_RDI]);
	if (nr == SYS_ioctl) {
		put(line, sizeof(line), &n, " and request ");
		put_num(line, sizeof(line), &n, (unsigned long)uc->uc_mcontext.gregs[REG_RSI]);
	}
	put(line, sizeof(line), &n, ", which its seccomp filter forbids; kiln exits\n");
	if (write(log_fileno(), line, n) < 0) {
	}
	_exit(KILN_EXIT_BAD_SYSCALL);
}

#ifndef __has_feature
#define __has_feature(x) 0
#endif

static void confine(enum thread_kind kind)
{
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
	/*
	 * A test build with LeakSanitizer: its check at the exit runs from a
	 * tracer cloned off the main thread, which hangs under the VMM
	 * filter. Only there the main thread stays unfiltered.
	 */
	if (kind == THREAD_VMM) {
		log_debug("the vmm filter is left off in a sanitizer build");
		return;
	}
#endif
	char name[16] = "";
	pthread_getname_np(pthread_self(), name, sizeof(name));
	memcpy(thread_label, name, sizeof(thread_label));
	/* a blocked SIGSYS would kill without the log line */
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &progs[kind]) < 0) {
		log_err("thread %s cannot load the %s seccomp filter: %s; kiln exits", name,
		        kind_names[kind], strerror(errno));
		_exit(KILN_EXIT_ERROR);
	}
	log_debug("thread %s runs under the %s filter", name, kind_names[kind]);
	if ((int)kind == forbidden_kind)
		syscall(SYS_getpgrp); /* in no list */
}

/* the set from `file`, or kiln's defaults for `mode` */
static int load_set(enum seccomp_mode mode, const char *file, struct seccomp_set *set,
                    struct errbuf *e)
{
	char *text;
	size_t len;

	if (!file)
		return seccomp_defaults(set, mode, e);
	int ret = read_file(file, SECCOMP_FILE_MAX, &text, &len, e);
	if (ret < 0)
		return ret;
	ret = seccomp_set_parse(text, len, set, e);
	free(text);
	return ret;
}

/* every kind's filter as BPF into progs[] */
static int compile_set(const struct seccomp_set *set, struct errbuf *e)
{
	for (int k = 0; k < THREAD_KINDS; k++) {
		int ret = seccomp_compile(&set->kinds[k], (enum thread_kind)k, (uint32_t)getpid(),
		                          &progs[k], e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int kiln_seccomp_print(enum seccomp_mode mode, const char *file, FILE *out, struct errbuf *e)
{
	struct seccomp_set set = {0};
	int ret = load_set(mode, file, &set, e);

	if (ret == 0)
		ret = compile_set(&set, e);
	for (int k = 0; k < THREAD_KINDS; k++) {
		free(progs[k].filter);
		progs[k] = (struct sock_fprog){0};
	}
	if (ret == 0)
		ret = seccomp_set_print(&set, out, e);
	seccomp_set_free(&set);
	return ret;
}

int kiln_seccomp_init(enum seccomp_mode mode, const char *file, struct errbuf *e)
{
	if (mode == SECCOMP_OFF)
		return 0;
	for (int nr = 0; nr < NR_NAMES; nr++) {
		char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (s)
			snprintf(call_names[nr], sizeof(call_names[nr]), "%s", s);
		free(s);
	}
	const char *t = getenv("KILN_TEST_SECCOMP_VIOLATE");
	for (int k = 0; t && k < THREAD_KINDS; k++)
		if (strcmp(t, kind_names[k]) == 0)
			forbidden_kind = k;
	struct seccomp_set set = {0};
	int ret = load_set(mode, file, &set, e);
	if (ret == 0)
		ret = compile_set(&set, e);
	seccomp_set_free(&set);
	if (ret < 0)
		return ret;
	/* every thread inherits it; a filter needs it without CAP_SYS_ADMIN */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return errf(e, errno, "cannot set no_new_privs: %s", strerror(errno));
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return errf(e, errno, "cannot handle SIGSYS: %s", strerror(errno));
	thread_confine = confine;
	return 0;
}
