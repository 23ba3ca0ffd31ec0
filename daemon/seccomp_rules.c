// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/seccomp_rules.c: what each kind of kiln thread may ask the
 * kernel, one line of why per system call. A call not listed for the
 * calling thread ends kiln (seccomp_filters.h). The lists are for x86-64 Linux
 * with glibc; the thread kinds are in common.h.
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

/* ioctls by thread kind: KVM's and the back ends' */
/* a vCPU: KVM_RUN and the exits it handles (serial, i8042, MMIO): the base list and these */
static const unsigned long vcpu_ioctls[] = {
        KVM_RUN,         KVM_IRQ_LINE,  KVM_KVMCLOCK_CTRL, KVM_GET_MSRS,
        KVM_SET_MSRS,    KVM_GET_REGS,  KVM_SET_REGS,      KVM_GET_SREGS,
        KVM_SET_SREGS,   KVM_IOEVENTFD, /* a virtio device the guest starts or resets... */
        KVM_IRQFD,                      /* ...has its notifications and interrupts wired */
        TUNSETOFFLOAD,                  /* the offloads virtio-net's guest accepted */
        TUNSETVNETHDRSZ,                /* the header size those features give */
};

/* the VMM thread after the start: snapshots, restores, migration's dirty log */
static const unsigned long vmm_ioctls[] = {
        KVM_RUN,
        KVM_IRQ_LINE,
        KVM_KVMCLOCK_CTRL,
        KVM_GET_MSRS,
        KVM_SET_MSRS,
        KVM_GET_REGS,
        KVM_SET_REGS,
        KVM_GET_SREGS,
        KVM_SET_SREGS,
        KVM_GET_FPU,
        KVM_SET_FPU,
        KVM_GET_LAPIC,
        KVM_SET_LAPIC,
        KVM_GET_MP_STATE,
        KVM_SET_MP_STATE,
        KVM_GET_VCPU_EVENTS,
        KVM_SET_VCPU_EVENTS,
        KVM_GET_DEBUGREGS,
        KVM_SET_DEBUGREGS,
        KVM_GET_XCRS,
        KVM_SET_XCRS,
        KVM_GET_XSAVE,
        KVM_SET_XSAVE,
        KVM_GET_XSAVE2,
        KVM_GET_SREGS2,
        KVM_SET_SREGS2,
        KVM_GET_CPUID2,
        KVM_SET_CPUID2,
        KVM_GET_CLOCK,
        KVM_SET_CLOCK,
        KVM_GET_IRQCHIP,
        KVM_SET_IRQCHIP,
        KVM_GET_PIT2,
        KVM_SET_PIT2,
        KVM_GET_DIRTY_LOG,
        KVM_SET_USER_MEMORY_REGION,
        KVM_CHECK_EXTENSION,
        KVM_GET_DEVICE_ATTR,
        KVM_SET_DEVICE_ATTR,
        KVM_HAS_DEVICE_ATTR,
        KVM_IOEVENTFD,
        KVM_IRQFD,
        BLKGETSIZE64,
        UFFDIO_API,
        UFFDIO_REGISTER,
        TCGETS, /* stdin: a terminal goes raw for the console... */
        TCSETS, /* ...and back at the exit */
};

static const unsigned long io_ioctls[] = {BLKGETSIZE64};

static const unsigned long migration_ioctls[] = {KVM_GET_DIRTY_LOG, KVM_CHECK_EXTENSION};

struct kind_rules {
	const struct seccomp_allow *allow;
	size_t nr_allow;
	const unsigned long *ioctls;
	size_t nr_ioctls;
	bool sockets;  /* socket(AF_UNIX / AF_INET / AF_INET6, SOCK_STREAM) */
	bool threads;  /* clone for a thread (clone3 answered ENOSYS) */
	bool set_name; /* prctl(PR_SET_NAME) for a thread it starts */
	bool opens;    /* openat is in its list */
};

#define RULES(a, i) .allow = a, .nr_allow = ARRAY_SIZE(a), .ioctls = i, .nr_ioctls = ARRAY_SIZE(i)

static const struct kind_rules kinds[THREAD_KINDS] = {
        [THREAD_VMM] = {RULES(vmm, vmm_ioctls), .sockets = true, .threads = true, .set_name = true,
                        .opens = true},
        [THREAD_API] = {.allow = api, .nr_allow = ARRAY_SIZE(api)},
        [THREAD_VCPU] = {RULES(vcpu, vcpu_ioctls)},
        [THREAD_IO] = {RULES(io, io_ioctls), .sockets = true},
        [THREAD_MIGRATION] = {RULES(migration, migration_ioctls), .sockets = true, .set_name = true,
                              .opens = true},
};

static int add_list(scmp_filter_ctx ctx, const struct seccomp_allow *l, size_t n, struct errbuf *e)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(l[i].name);
		if (nr == __NR_SCMP_ERROR)
			return errf(e, EINVAL, "no system call %s on this machine", l[i].name);
		int ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (ret < 0)
			return errf(e, -ret, "cannot allow %s: %s", l[i].name, strerror(-ret));
	}
	return 0;
}

/* a rule or a failure naming the call */
#define ADD(ctx, action, call, ...)                                                                \
	do {                                                                                       \
		int r_ = seccomp_rule_add(ctx, action, SCMP_SYS(call), __VA_ARGS__);               \
		if (r_ < 0)                                                                        \
			return errf(e, -r_, "cannot add a rule for %s: %s", #call, strerror(-r_)); \
	} while (0)

int seccomp_rules_add(scmp_filter_ctx ctx, enum thread_kind kind, struct errbuf *e)
{
	const struct kind_rules *k = &kinds[kind];
	int ret;

	if ((ret = add_list(ctx, base, ARRAY_SIZE(base), e)) < 0 ||
	    (ret = add_list(ctx, k->allow, k->nr_allow, e)) < 0)
		return ret;
#if SANITIZED
	if ((ret = add_list(ctx, sanitizer, ARRAY_SIZE(sanitizer), e)) < 0)
		return ret;
#endif
	/* mappings and protections never executable: guest memory, rings, malloc */
	ADD(ctx, SCMP_ACT_ALLOW, mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	ADD(ctx, SCMP_ACT_ALLOW, mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* only the listed ioctl numbers (the 32 bits the kernel reads) */
	for (size_t i = 0; i < k->nr_ioctls; i++)
		ADD(ctx, SCMP_ACT_ALLOW, ioctl, 1,
		    SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, k->ioctls[i] & 0xffffffffu));
	if (k->sockets) {
		static const int families[] = {AF_UNIX, AF_INET, AF_INET6};
		for (size_t i = 0; i < ARRAY_SIZE(families); i++)
			ADD(ctx, SCMP_ACT_ALLOW, socket, 1,
			    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]));
	}
	if (k->threads) {
		/* clone3's flags are in memory a filter cannot read: glibc falls back */
		ADD(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
		ADD(ctx, SCMP_ACT_ALLOW, clone, 1,
		    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	}
	/* signals to its own threads only: the vCPU kick, abort() */
	ADD(ctx, SCMP_ACT_ALLOW, tgkill, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	if (k->threads) /* the threads it starts load their own filters */
		ADD(ctx, SCMP_ACT_ALLOW, seccomp, 1,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)SECCOMP_SET_MODE_FILTER));
	/*
	 * Opening files is refused, not trapped, where not listed: glibc's
	 * malloc reads /proc/sys/vm/overcommit_memory the first time it
	 * shrinks a thread's heap, and keeps the memory when it cannot.
	 */
	if (!k->opens && !SANITIZED)
		ADD(ctx, SCMP_ACT_ERRNO(EACCES), openat, 0);
	/* a thread's own name, for the log line of a trapped call */
	ADD(ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME));
	if (k->set_name)
		ADD(ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	return 0;
}
