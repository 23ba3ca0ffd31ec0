// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/seccomp_rules.c: what each kind of kiln thread may ask the
 * kernel, one line of why per system call, as data: seccomp_defaults()
 * turns these tables into the filter set that seccomp.c compiles and
 * --print-seccomp-filter prints (the why as each rule's "comment"). A
 * call not listed for the calling thread ends kiln (seccomp_filters.h).
 * The lists are for x86-64 Linux with glibc; the thread kinds are in
 * common.h.
 */
#define LOG_MODULE "seccomp"
#include "seccomp_filters.h"

#include <errno.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

/* a system call allowed without looking at its arguments, and why */
struct seccomp_allow {
	const char *name;
	const char *why;
};

#define ALLOW(n, w)                                                                                \
	{                                                                                          \
		n, w                                                                               \
	}

/* every thread, whatever it does */
static const struct seccomp_allow base[] = {
        ALLOW("read", "eventfds, sockets, files it was handed"),
        ALLOW("write", "log lines, eventfds, the serial output"),
        ALLOW("readv", "scattered reads on its descriptors"),
        ALLOW("writev", "gathered writes on its descriptors"),
        ALLOW("close", "descriptors it is done with"),
        ALLOW("futex", "pthread mutexes and condition variables"),
        ALLOW("rt_sigreturn", "the return from the vCPU kick and the SIGSYS handler"),
        ALLOW("rt_sigprocmask", "pthread_sigmask"),
        ALLOW("exit", "a thread ends"),
        ALLOW("exit_group", "the process ends"),
        ALLOW("brk", "malloc"),
        ALLOW("madvise", "malloc gives memory back; guest pages dropped"),
        ALLOW("munmap", "malloc, mappings it made"),
        ALLOW("clock_gettime", "timestamps (when the vDSO is not used)"),
        ALLOW("clock_nanosleep", "short waits"),
        ALLOW("nanosleep", "short waits"),
        ALLOW("gettid", "log lines, abort()"),
        ALLOW("getpid", "abort(), tgkill's own pid"),
        ALLOW("sched_yield", "spin-then-wait in locks"),
        ALLOW("restart_syscall", "a call interrupted by the vCPU kick goes on"),
        ALLOW("newfstatat", "stdio sizes a stream's buffer on its first use"),
        ALLOW("fstat", "stdio sizes a stream's buffer on its first use"),
        ALLOW("getrandom", "glibc's malloc seeds a new arena"),
        ALLOW("epoll_wait", "event loops"),
        ALLOW("epoll_pwait", "event loops"),
        ALLOW("epoll_ctl", "descriptors in and out of an event loop"),
        ALLOW("fcntl", "O_NONBLOCK on a descriptor it was handed"),
};

/* the main thread once the VM runs: API actions, snapshots, migration's start and end */
static const struct seccomp_allow vmm[] = {
        ALLOW("openat", "snapshot files, /proc/self/pagemap, files PATCH /drives names"),
        ALLOW("pread64", "snapshot and pagemap reads"),
        ALLOW("pwrite64", "snapshot writes"),
        ALLOW("preadv", "snapshot memory reads"),
        ALLOW("pwritev", "snapshot memory writes"),
        ALLOW("lseek", "snapshot files"),
        ALLOW("ftruncate", "a snapshot's memory file"),
        ALLOW("fallocate", "a snapshot's memory file"),
        ALLOW("fsync", "a snapshot is durable before the API answers"),
        ALLOW("fdatasync", "a snapshot is durable before the API answers"),
        ALLOW("unlink", "the API socket on exit, a half-written snapshot"),
        ALLOW("unlinkat", "the API socket on exit, a half-written snapshot"),
        ALLOW("rename", "a snapshot file written under a temporary name"),
        ALLOW("renameat", "a snapshot file written under a temporary name"),
        ALLOW("eventfd2", "a migration's cancel and call events"),
        ALLOW("timerfd_create", "a rate limiter PATCHed in"),
        ALLOW("timerfd_settime", "rate limiters, the metrics period"),
        ALLOW("timerfd_gettime", "rate limiters"),
        ALLOW("connect", "a migration's destination"),
        ALLOW("bind", "a migration target's listening socket"),
        ALLOW("listen", "a migration target's listening socket"),
        ALLOW("accept4", "a migration source"),
        ALLOW("setsockopt", "migration sockets"),
        ALLOW("getsockopt", "a non-blocking connect's result"),
        ALLOW("getsockname", "the port a migration target listens on"),
        ALLOW("shutdown", "a migration ends"),
        ALLOW("sendmsg", "migration frames, a Uffd handler's descriptor"),
        ALLOW("recvmsg", "migration frames"),
        ALLOW("sendto", "migration frames"),
        ALLOW("recvfrom", "migration frames"),
        ALLOW("poll", "a connect with a time limit"),
        ALLOW("ppoll", "a connect with a time limit"),
        ALLOW("set_robust_list", "a migration thread's start (glibc)"),
        ALLOW("rseq", "a migration thread's start (glibc)"),
        ALLOW("sigaltstack", "a migration thread's start (sanitizers)"),
        ALLOW("getrusage", "metrics"),
        ALLOW("sched_getaffinity", "glibc's thread start"),
};

/* libmicrohttpd's thread: clients of the API socket */
static const struct seccomp_allow api[] = {
        ALLOW("accept4", "a new client"),
        ALLOW("recvfrom", "a request"),
        ALLOW("sendto", "a response"),
        ALLOW("sendmsg", "a response"),
        ALLOW("shutdown", "a client is done"),
        ALLOW("setsockopt", "a client socket's options"),
        ALLOW("getsockopt", "a client socket's options"),
        ALLOW("ppoll", "libmicrohttpd's waits"),
        ALLOW("poll", "libmicrohttpd's waits"),
};

/* a vCPU: device starts and resets run in its MMIO exits */
static const struct seccomp_allow vcpu[] = {
        ALLOW("timerfd_settime", "a device's rate limiter armed as the guest starts it"),
        ALLOW("timerfd_gettime", "a device's rate limiter"),
        ALLOW("io_uring_setup", "a block device's ring, made as the guest starts it"),
        ALLOW("io_uring_register", "a block device's ring"),
        ALLOW("eventfd2", "a device's notification events"),
};

/* a device's I/O thread: its back end */
static const struct seccomp_allow io[] = {
        ALLOW("pread64", "block reads"),
        ALLOW("pwrite64", "block writes"),
        ALLOW("preadv", "block reads"),
        ALLOW("pwritev", "block writes"),
        ALLOW("preadv2", "block reads"),
        ALLOW("pwritev2", "block writes with RWF_DSYNC (the Sync engine, writethrough)"),
        ALLOW("fsync", "a guest's flush"),
        ALLOW("fdatasync", "a guest's flush"),
        ALLOW("fallocate", "a guest's discard or write-zeroes"),
        ALLOW("io_uring_enter", "the io_uring engine"),
        ALLOW("timerfd_settime", "rate limiters"),
        ALLOW("timerfd_gettime", "rate limiters"),
        ALLOW("connect", "vsock: the guest connects to a host unix socket"),
        ALLOW("accept4", "vsock: the host connects to the guest"),
        ALLOW("getsockopt", "a non-blocking connect's result"),
        ALLOW("shutdown", "vsock: one side closes"),
        ALLOW("sendmsg", "vsock and tap data"),
        ALLOW("recvmsg", "vsock and tap data"),
        ALLOW("sendto", "vsock data"),
        ALLOW("recvfrom", "vsock data"),
};

/* a migration's thread: the stream and the dirty log */
static const struct seccomp_allow migration[] = {
        ALLOW("openat", "/proc/self/pagemap"),
        ALLOW("pread64", "/proc/self/pagemap"),
        ALLOW("connect", "the destination"),
        ALLOW("accept4", "the source"),
        ALLOW("poll", "a connect or accept with a time limit"),
        ALLOW("ppoll", "a connect or accept with a time limit"),
        ALLOW("setsockopt", "the stream's options"),
        ALLOW("getsockopt", "a non-blocking connect's result"),
        ALLOW("shutdown", "the stream ends"),
        ALLOW("sendmsg", "pages straight from guest memory"),
        ALLOW("recvmsg", "the stream"),
        ALLOW("sendto", "the stream"),
        ALLOW("recvfrom", "the stream"),
};

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
/*
 * A test build with AddressSanitizer: its runtime's own calls in every
 * thread, and LeakSanitizer's check at the exit, which stops the threads
 * from a tracer it clones off the main thread. Never in a release build.
 */
static const struct seccomp_allow sanitizer[] = {
        ALLOW("sigaltstack", "ASan's signal stack, set up and torn down per thread"),
        ALLOW("rt_sigaction", "ASan's handlers"),
        ALLOW("prctl", "LSan: PR_SET_PTRACER, PR_SET_PDEATHSIG, dumpable"),
        ALLOW("clone", "LSan's tracer (not a thread)"),
        ALLOW("ptrace", "LSan's tracer stops the threads"),
        ALLOW("wait4", "LSan waits for its tracer"),
        ALLOW("getdents64", "LSan lists /proc/self/task"),
        ALLOW("openat", "LSan reads /proc/self/maps and the task list"),
        ALLOW("readlink", "symbolising a report"),
        ALLOW("sched_getaffinity", "the runtime's thread count"),
        ALLOW("getppid", "LSan's tracer watches its parent"),
        ALLOW("kill", "LSan ends its tracer"),
        ALLOW("process_vm_readv", "LSan reads the stopped threads"),
        ALLOW("lseek", "the runtime reads /proc files"),
        ALLOW("pread64", "the runtime reads /proc files"),
        ALLOW("mremap", "the runtime's own allocator"),
        ALLOW("fork", "a report's symboliser"),
        ALLOW("execve", "a report's symboliser"),
        ALLOW("pipe2", "a report's symboliser"),
        ALLOW("dup2", "a report's symboliser"),
        ALLOW("getrlimit", "the runtime's stack limits"),
        ALLOW("prlimit64", "the runtime's stack limits"),
        ALLOW("uname", "the runtime's kernel version check"),
};
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* an ioctl request allowed, its name (the comparison's comment) and why (NULL: its list's) */
struct ioctl_nr {
	unsigned long nr;
	const char *name;
	const char *why;
};

#define IOCTL(n, w)                                                                                \
	{                                                                                          \
		n, #n, w                                                                           \
	}

/* KVM_RUN and the exits it handles (serial, i8042, MMIO): a vCPU's, and the VMM thread's */
static const struct ioctl_nr run_ioctls[] = {
        IOCTL(KVM_RUN, NULL),      IOCTL(KVM_IRQ_LINE, NULL),  IOCTL(KVM_KVMCLOCK_CTRL, NULL),
        IOCTL(KVM_GET_MSRS, NULL), IOCTL(KVM_SET_MSRS, NULL),  IOCTL(KVM_GET_REGS, NULL),
        IOCTL(KVM_SET_REGS, NULL), IOCTL(KVM_GET_SREGS, NULL), IOCTL(KVM_SET_SREGS, NULL),
};

/* a vCPU: device starts and resets in its MMIO exits */
static const struct ioctl_nr vcpu_ioctls[] = {
        IOCTL(KVM_IOEVENTFD, "a virtio device the guest starts or resets has its notifications..."),
        IOCTL(KVM_IRQFD, "...and interrupts wired"),
        IOCTL(TUNSETOFFLOAD, "the offloads virtio-net's guest accepted"),
        IOCTL(TUNSETVNETHDRSZ, "the header size those features give"),
};

/* the VMM thread after the start: snapshots, restores, migration's dirty log */
static const struct ioctl_nr vmm_ioctls[] = {
        IOCTL(KVM_GET_FPU, NULL),
        IOCTL(KVM_SET_FPU, NULL),
        IOCTL(KVM_GET_LAPIC, NULL),
        IOCTL(KVM_SET_LAPIC, NULL),
        IOCTL(KVM_GET_MP_STATE, NULL),
        IOCTL(KVM_SET_MP_STATE, NULL),
        IOCTL(KVM_GET_VCPU_EVENTS, NULL),
        IOCTL(KVM_SET_VCPU_EVENTS, NULL),
        IOCTL(KVM_GET_DEBUGREGS, NULL),
        IOCTL(KVM_SET_DEBUGREGS, NULL),
        IOCTL(KVM_GET_XCRS, NULL),
        IOCTL(KVM_SET_XCRS, NULL),
        IOCTL(KVM_GET_XSAVE, NULL),
        IOCTL(KVM_SET_XSAVE, NULL),
        IOCTL(KVM_GET_XSAVE2, NULL),
        IOCTL(KVM_GET_SREGS2, NULL),
        IOCTL(KVM_SET_SREGS2, NULL),
        IOCTL(KVM_GET_CPUID2, NULL),
        IOCTL(KVM_SET_CPUID2, NULL),
        IOCTL(KVM_GET_CLOCK, NULL),
        IOCTL(KVM_SET_CLOCK, NULL),
        IOCTL(KVM_GET_IRQCHIP, NULL),
        IOCTL(KVM_SET_IRQCHIP, NULL),
        IOCTL(KVM_GET_PIT2, NULL),
        IOCTL(KVM_SET_PIT2, NULL),
        IOCTL(KVM_GET_DIRTY_LOG, NULL),
        IOCTL(KVM_SET_USER_MEMORY_REGION, NULL),
        IOCTL(KVM_CHECK_EXTENSION, NULL),
        IOCTL(KVM_GET_DEVICE_ATTR, NULL),
        IOCTL(KVM_SET_DEVICE_ATTR, NULL),
        IOCTL(KVM_HAS_DEVICE_ATTR, NULL),
        IOCTL(KVM_IOEVENTFD, NULL),
        IOCTL(KVM_IRQFD, NULL),
        IOCTL(BLKGETSIZE64, NULL),
        IOCTL(UFFDIO_API, NULL),
        IOCTL(UFFDIO_REGISTER, NULL),
        IOCTL(TCGETS, "stdin: a terminal goes raw for the console..."),
        IOCTL(TCSETS, "...and back at the exit"),
};

/* a device's I/O thread */
static const struct ioctl_nr io_ioctls[] = {IOCTL(BLKGETSIZE64, "a block device's size")};

/* a migration's thread: the dirty log */
static const struct ioctl_nr migration_ioctls[] = {IOCTL(KVM_GET_DIRTY_LOG, NULL),
                                                   IOCTL(KVM_CHECK_EXTENSION, NULL)};

/* comparisons of one argument: dword (its low 32 bits, an int) or qword (all 64) */
#define DWORD_EQ(i, v, c)                                                                          \
	{                                                                                          \
		.index = i, .op = SECCOMP_OP_EQ, .val = v, .comment = c                            \
	}
#define MASKED(i, q, m, v, c)                                                                      \
	{                                                                                          \
		.index = i, .qword = q, .op = SECCOMP_OP_MASKED_EQ, .mask = m, .val = v,           \
		.comment = c                                                                       \
	}
#define RULE1(call, why, cond)                                                                     \
	{                                                                                          \
		.syscall = call, .comment = why, .nr_args = 1, .args = { cond }                    \
	}

/* every thread */
static const struct seccomp_rule all_kinds[] = {
        RULE1("mmap", "mappings never executable: guest memory, rings, malloc",
              MASKED(2, false, PROT_EXEC, 0, "prot without PROT_EXEC")),
        RULE1("mprotect", "protections never executable: malloc's arenas, thread stacks",
              MASKED(2, false, PROT_EXEC, 0, "prot without PROT_EXEC")),
        {.syscall = "tgkill",
         .comment = "signals to its own threads only: the vCPU kick, abort()",
         .nr_args = 1,
         .args = {{.index = 0, .op = SECCOMP_OP_EQ, .self_pid = true, .comment = "kiln's pid"}}},
        RULE1("prctl", "a thread's own name, for the log line of a trapped call",
              DWORD_EQ(0, PR_GET_NAME, "PR_GET_NAME")),
};

/* a thread that opens sockets: the families kiln uses (migration streams, vsock) */
static const struct seccomp_rule sockets[] = {
        RULE1("socket", "migration streams, vsock's host side", DWORD_EQ(0, AF_UNIX, "AF_UNIX")),
        RULE1("socket", "migration streams", DWORD_EQ(0, AF_INET, "AF_INET")),
        RULE1("socket", "migration streams", DWORD_EQ(0, AF_INET6, "AF_INET6")),
};

/* a thread that starts threads */
static const struct seccomp_rule threads[] = {
        {.syscall = "clone3",
         .comment = "its flags are in memory a filter cannot read: ENOSYS, and glibc falls back",
         .has_action = true,
         .action = SCMP_ACT_ERRNO(ENOSYS)},
        RULE1("clone", "threads only, never a process",
              MASKED(0, true, CLONE_THREAD, CLONE_THREAD, "flags with CLONE_THREAD")),
        RULE1("seccomp", "the threads it starts load their own filters",
              DWORD_EQ(0, SECCOMP_SET_MODE_FILTER, "SECCOMP_SET_MODE_FILTER")),
};

/* a thread that names the threads it starts */
static const struct seccomp_rule set_name[] = {
        RULE1("prctl", "the name of a thread it starts", DWORD_EQ(0, PR_SET_NAME, "PR_SET_NAME")),
};

/*
 * Opening files is refused, not trapped, where not listed: glibc's malloc
 * reads /proc/sys/vm/overcommit_memory the first time it shrinks a
 * thread's heap, and keeps the memory when it cannot.
 */
static const struct seccomp_rule no_open[] = {
        {.syscall = "openat",
         .comment = "refused, not trapped: glibc's malloc reads overcommit_memory once",
         .has_action = true,
         .action = SCMP_ACT_ERRNO(EACCES)},
};

struct kind_rules {
	const struct seccomp_allow *allow;
	size_t nr_allow;
	const struct ioctl_nr *ioctls;
	size_t nr_ioctls;
	const char *ioctl_why; /* for the ioctls without their own */
	bool runs;             /* run_ioctls[] */
	bool sockets;          /* the families in sockets[] */
	bool threads;          /* threads[] */
	bool set_name;         /* set_name[] */
	bool opens;            /* openat is in its list, else no_open[] */
};

#define RULES(a, i, w)                                                                             \
	.allow = a, .nr_allow = ARRAY_SIZE(a), .ioctls = i, .nr_ioctls = ARRAY_SIZE(i),            \
	.ioctl_why = w

static const struct kind_rules kinds[THREAD_KINDS] = {
        [THREAD_VMM] = {RULES(vmm, vmm_ioctls,
                              "the VM's and vCPUs' state: snapshots, restores, "
                              "migration's dirty log"),
                        .runs = true, .sockets = true, .threads = true, .set_name = true,
                        .opens = true},
        [THREAD_API] = {.allow = api, .nr_allow = ARRAY_SIZE(api)},
        [THREAD_VCPU] = {RULES(vcpu, vcpu_ioctls, "KVM_RUN and the exits it handles"),
                         .runs = true},
        [THREAD_IO] = {RULES(io, io_ioctls, NULL), .sockets = true},
        [THREAD_MIGRATION] = {RULES(migration, migration_ioctls, "the dirty log"), .sockets = true,
                              .set_name = true, .opens = true},
};

static int add_allow(struct seccomp_filter *f, const struct seccomp_allow *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct seccomp_rule r = {.syscall = l[i].name, .comment = l[i].why};
		if (seccomp_filter_add(f, &r) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int add_rules(struct seccomp_filter *f, const struct seccomp_rule *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (seccomp_filter_add(f, &l[i]) < 0)
			return -ENOMEM;
	return 0;
}

/* only the listed requests: the 32 bits the kernel reads (a dword) */
static int add_ioctls(struct seccomp_filter *f, const struct ioctl_nr *l, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++) {
		struct seccomp_rule r = RULE1("ioctl", l[i].why ? l[i].why : why,
		                              DWORD_EQ(1, l[i].nr & 0xffffffffu, l[i].name));
		if (seccomp_filter_add(f, &r) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int add_kind(struct seccomp_filter *f, const struct kind_rules *k)
{
	if (add_allow(f, base, ARRAY_SIZE(base)) < 0 || add_allow(f, k->allow, k->nr_allow) < 0)
		return -ENOMEM;
#if SANITIZED
	if (add_allow(f, sanitizer, ARRAY_SIZE(sanitizer)) < 0)
		return -ENOMEM;
#endif
	if (add_rules(f, all_kinds, ARRAY_SIZE(all_kinds)) < 0 ||
	    (k->runs && add_ioctls(f, run_ioctls, ARRAY_SIZE(run_ioctls), k->ioctl_why) < 0) ||
	    add_ioctls(f, k->ioctls, k->nr_ioctls, k->ioctl_why) < 0 ||
	    (k->sockets && add_rules(f, sockets, ARRAY_SIZE(sockets)) < 0) ||
	    (k->threads && add_rules(f, threads, ARRAY_SIZE(threads)) < 0) ||
	    (k->set_name && add_rules(f, set_name, ARRAY_SIZE(set_name)) < 0) ||
	    (!k->opens && !SANITIZED && add_rules(f, no_open, ARRAY_SIZE(no_open)) < 0))
		return -ENOMEM;
	return 0;
}

int seccomp_defaults(struct seccomp_set *set, enum seccomp_mode mode, struct errbuf *e)
{
	for (int i = 0; i < THREAD_KINDS; i++) {
		struct seccomp_filter *f = &set->kinds[i];
		f->mismatch_action = mode == SECCOMP_AUDIT ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
		f->match_action = SCMP_ACT_ALLOW;
		if (add_kind(f, &kinds[i]) < 0)
			return errf(e, ENOMEM, "out of memory for the %s filter",
			            thread_kind_name((enum thread_kind)i));
	}
	return 0;
}
