// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/vcpu.c: one vCPU -- its creation, its thread looping on KVM_RUN, the
 * exit dispatch, and pause/resume/stop.
 *
 * Kicking (Linux Documentation/virt/kvm/api.rst, "immediate_exit"): the VMM
 * thread sets a request flag under v->lock, sets run->immediate_exit = 1 and
 * sends VCPU_KICK_SIGNAL. The vCPU thread checks the flags under the same
 * lock before each KVM_RUN and clears immediate_exit only when no request
 * is pending, so a kick is never lost: either the thread sees the flag, or
 * KVM_RUN returns -EINTR at once (immediate_exit) or as soon as the signal
 * lands.
 *
 * Parking after an exit: an I/O or MMIO exit is complete, and the guest
 * state consistent, only once KVM_RUN is entered again (api.rst, "kvm_run":
 * KVM finishes the instruction, e.g. writes an IN's value into RAX and moves
 * RIP past it, then checks for signals and immediate_exit). So a thread
 * asked to pause after handling an exit enters KVM_RUN once more with
 * immediate_exit still set, which completes the operation and returns
 * -EINTR without running guest code, and parks only then: a snapshot of a
 * paused vCPU never holds a half-done instruction.
 */
#define LOG_MODULE "vcpu"
#include "vcpu.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* unhandled I/O: at most this many debug lines per vCPU per second */
#define UNHANDLED_LOG_BURST 10
#define UNHANDLED_LOG_NS    1000000000ull
/* while waiting for a vCPU to park, kick it again this often */
#define PARK_REKICK_NS 20000000ull

enum exit_action {
	EXIT_CONTINUE,
	EXIT_STOP, /* on_stop has been called: the thread ends */
};

/* ------------------------------------------------------------ stopping */

/*
 * Logs "vCPU N: <why>" at `level` and hands it to the VMM. Always returns
 * EXIT_STOP so that exit handlers can `return vcpu_stop_vm(...)`.
 */
__attribute__((format(printf, 4, 5))) static enum exit_action
vcpu_stop_vm(struct vcpu *v, enum log_level level, enum vm_stop_reason reason, const char *fmt, ...)
{
	char body[384], why[448];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(why, sizeof(why), "vCPU %u: %s", v->id, body);
	log_msg(level, LOG_MODULE, __FILE__, __LINE__, "%s", why);
	if (v->vm->ops && v->vm->ops->on_stop)
		v->vm->ops->on_stop(v->vm, reason, why);
	return EXIT_STOP;
}

/* ---------------------------------------------------------------- I/O */

/* Linux probes ports that have no device: worth a debug line, rate-limited */
static void vcpu_note_unhandled(struct vcpu *v, const char *bus, uint64_t addr, uint32_t len,
                                bool is_write, int rc)
{
	if (log_get_level() < LOG_DEBUG)
		return;
	uint64_t now = now_ns();
	if (now - v->unhandled_window_ns >= UNHANDLED_LOG_NS) {
		if (v->unhandled_suppressed)
			log_debug("vCPU %u: %u more unhandled accesses were not logged", v->id,
			          v->unhandled_suppressed);
		v->unhandled_window_ns = now;
		v->unhandled_in_window = 0;
		v->unhandled_suppressed = 0;
	}
	if (v->unhandled_in_window >= UNHANDLED_LOG_BURST) {
		v->unhandled_suppressed++;
		return;
	}
	v->unhandled_in_window++;
	log_debug("vCPU %u: unhandled %s %s of %u bytes at %#llx%s", v->id, bus,
	          is_write ? "write" : "read", len, (unsigned long long)addr,
	          rc == -EINVAL ? " (runs past the end of a device)" : "");
}

/* api.rst KVM_EXIT_IO: `count` items of `size` bytes at run + data_offset */
static enum exit_action vcpu_exit_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset, area = (uint64_t)v->vm->kvm->vcpu_mmap_size;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	if ((size != 1 && size != 2 && size != 4) || count == 0 || off >= area ||
	    count > (area - off) / size)
		return vcpu_stop_vm(v, LOG_ERROR, VM_STOP_CRASH,
		                    "malformed KVM_EXIT_IO (size %u, count %u, offset %#llx)", size,
		                    count, (unsigned long long)off);

	uint8_t *data = (uint8_t *)run + off;
	for (uint32_t i = 0; i < count; i++) {
		int rc = bus_access(&v->vm->pio, run->io.port, data + (size_t)i * size, size,
		                    is_write);
		if (rc < 0)
			vcpu_note_unhandled(v, "pio", run->io.port, size, is_write, rc);
	}
	return EXIT_CONTINUE;
}

static enum exit_action vcpu_exit_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;
	int rc = -EINVAL;

	/* the bus takes naturally sized accesses; KVM may split odd ones at page edges */
	if (len == 1 || len == 2 || len == 4 || len == 8)
		rc = bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len,
		                run->mmio.is_write);
	else if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
	if (rc < 0)
		vcpu_note_unhandled(v, "mmio", run->mmio.phys_addr, len, run->mmio.is_write, rc);
	return EXIT_CONTINUE;
}

/* ------------------------------------------------------------- failures */

static const char *internal_suberror_name(uint32_t sub)
{
	switch (sub) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "emulation failure";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "cannot deliver an event";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected exit reason";
	}
	return "unknown";
}

static enum exit_action vcpu_exit_internal_error(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t n = run->internal.ndata;
	char data[16 * 20 + 1] = "";
	size_t len = 0;
	struct kvm_regs regs;

	if (n > ARRAY_SIZE(run->internal.data))
		n = ARRAY_SIZE(run->internal.data);
	for (uint32_t i = 0; i < n && len < sizeof(data); i++)
		len += snprintf(data + len, sizeof(data) - len, " %#llx",
		                (unsigned long long)run->internal.data[i]);
	bool have_rip = vcpu_get_regs(v, &regs) == 0;
	return vcpu_stop_vm(v, LOG_ERROR, VM_STOP_CRASH,
	                    "KVM internal error, suberror %u (%s), rip %s%llx, %u data words:%s",
	                    run->internal.suberror, internal_suberror_name(run->internal.suberror),
	                    have_rip ? "0x" : "unknown ", have_rip ? regs.rip : 0ull,
	                    run->internal.ndata, n ? data : " none");
}

static enum exit_action vcpu_exit_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		return vcpu_stop_vm(v, LOG_INFO, VM_STOP_SHUTDOWN, "the guest powered off");
	case KVM_SYSTEM_EVENT_RESET:
		return vcpu_stop_vm(v, LOG_INFO, VM_STOP_RESET, "the guest asked for a reset");
	case KVM_SYSTEM_EVENT_CRASH:
		return vcpu_stop_vm(v, LOG_ERROR, VM_STOP_CRASH, "the guest reported a crash");
	}
	return vcpu_stop_vm(v, LOG_ERROR, VM_STOP_CRASH, "unexpected system event type %u",
	                    v->run->system_event.type);
}

/* ------------------------------------------------------------- dispatch */

static void vcpu_count_exit(struct vm *vm, uint32_t reason)
{
	if (reason < ARRAY_SIZE(vm->exit_counts))
		__atomic_fetch_add(&vm->exit_counts[reason], 1, __ATOMIC_RELAXED);
}

static enum exit_action vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	vcpu_count_exit(v->vm, run->exit_reason);
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return vcpu_exit_io(v);
	case KVM_EXIT_MMIO:
		return vcpu_exit_mmio(v);
	case KVM_EXIT_HLT:
		/* with the in-kernel LAPIC, HLT waits in KVM; should it exit, it is idle */
	case KVM_EXIT_INTR:
		return EXIT_CONTINUE;
	case KVM_EXIT_SHUTDOWN:
		/* a triple fault: the guest crashed (Linux resets with reboot=k, not this) */
		return vcpu_stop_vm(v, LOG_ERROR, VM_STOP_CRASH,
		                    "guest triple-faulted (KVM_EXIT_SHUTDOWN)");
	case KVM_EXIT_INTERNAL_ERROR:
		return vcpu_exit_internal_error(v);
	case KVM_EXIT_FAIL_ENTRY:
		return vcpu_stop_vm(
		        v, LOG_ERROR, VM_STOP_CRASH,
		        "KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY), "
		        "hardware entry failure reason %#llx on host CPU %u",
		        (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
		        run->fail_entry.cpu);
	case KVM_EXIT_SYSTEM_EVENT:
		return vcpu_exit_system_event(v);
	}
	return vcpu_stop_vm(v, LOG_ERROR, VM_STOP_CRASH, "unexpected KVM exit reason %u",
	                    run->exit_reason);
}

/* ---------------------------------------------------------- the thread */

/*
 * Parks while a pause is requested, unless `completing`: the last KVM_RUN
 * ended in an exit whose operation only the next KVM_RUN completes; then it
 * returns true with immediate_exit still set (see the top). Returns false
 * when the thread must end. Clears immediate_exit only when no request is
 * pending.
 */
static bool vcpu_wait_runnable(struct vcpu *v, bool completing)
{
	pthread_mutex_lock(&v->lock);
	while (v->pause_requested && !v->stop_requested && !completing) {
		if (v->state != VCPU_PAUSED) {
			v->state = VCPU_PAUSED;
			pthread_cond_broadcast(&v->cond);
		}
		pthread_cond_wait(&v->cond, &v->lock);
	}
	bool run = !v->stop_requested;
	if (run) {
		v->state = VCPU_RUNNING;
		if (!v->pause_requested)
			v->run->immediate_exit = 0;
	}
	pthread_mutex_unlock(&v->lock);
	return run;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	sigset_t kick;

	/* created with every signal blocked (vcpu_start): let only the kick in */
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	snprintf(name, sizeof(name), "kiln_vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	confine_thread(THREAD_VCPU);

	bool completing = false; /* the last exit is complete only after one more KVM_RUN */
	while (vcpu_wait_runnable(v, completing)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			int err = errno;
			if (err == EINTR || err == EAGAIN) {
				vcpu_count_exit(v->vm, KVM_EXIT_INTR);
				completing = false;
				continue;
			}
			vcpu_stop_vm(v, LOG_ERROR, VM_STOP_CRASH, "KVM_RUN failed: %s",
			             strerror(err));
			break;
		}
		completing = true;
		if (vcpu_handle_exit(v) == EXIT_STOP)
			break;
	}

	pthread_mutex_lock(&v->lock);
	v->state = VCPU_STOPPED;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* ------------------------------------------------------------- control */

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* its only job is to make KVM_RUN return -EINTR */
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;
static int kick_install_err;

static void vcpu_install_kick_handler(void)
{
	struct sigaction sa = {.sa_handler = vcpu_kick_handler}; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		kick_install_err = errno;
}

/* called with v->lock held */
static void vcpu_kick_locked(struct vcpu *v)
{
	v->run->immediate_exit = 1;
	if (v->thread_started && v->state != VCPU_STOPPED)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

static int vcpu_spawn(struct vcpu *v, bool paused)
{
	sigset_t all, old;
	int ret;

	pthread_once(&kick_once, vcpu_install_kick_handler);
	if (kick_install_err)
		return -kick_install_err;
	if (v->thread_started)
		return -EBUSY;

	pthread_mutex_lock(&v->lock);
	v->pause_requested = paused; /* paused: it parks before its first KVM_RUN */
	v->stop_requested = false;
	v->state = paused ? VCPU_CREATED : VCPU_RUNNING;
	pthread_mutex_unlock(&v->lock);

	/* the thread inherits a full mask; it unblocks only the kick */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret != 0) {
		v->state = VCPU_CREATED;
		return -ret;
	}
	v->thread_started = true;
	return 0;
}

int vcpu_start(struct vcpu *v)
{
	return vcpu_spawn(v, false);
}

int vcpu_start_paused(struct vcpu *v)
{
	return vcpu_spawn(v, true);
}

void vcpu_request_pause(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	v->pause_requested = true;
	vcpu_kick_locked(v);
	pthread_mutex_unlock(&v->lock);
}

void vcpu_wait_parked(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	while (v->thread_started && v->state != VCPU_PAUSED && v->state != VCPU_STOPPED) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + PARK_REKICK_NS;
		ts.tv_sec += ns / 1000000000ull;
		ts.tv_nsec = ns % 1000000000ull;
		if (pthread_cond_timedwait(&v->cond, &v->lock, &ts) == ETIMEDOUT)
			vcpu_kick_locked(v); /* e.g. the signal landed in a device callback */
	}
	pthread_mutex_unlock(&v->lock);
}

void vcpu_resume(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	v->pause_requested = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

void vcpu_request_stop(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	v->stop_requested = true;
	vcpu_kick_locked(v);
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

void vcpu_join(struct vcpu *v)
{
	if (!v->thread_started)
		return;
	if (pthread_equal(pthread_self(), v->thread)) {
		log_err("vCPU %u: its own thread asked to join it; left running", v->id);
		return;
	}
	pthread_join(v->thread, NULL);
	v->thread_started = false;
}

/* ------------------------------------------------------ create/destroy */

int vcpu_create(struct vm *vm, unsigned id, unsigned nr, struct vcpu **out, struct errbuf *e)
{
	struct vcpu *v;
	pthread_condattr_t ca;
	int ret;

	if (!vm->kvm)
		return errf(e, EINVAL, "cannot create a vCPU before the VM");
	if (nr == 0 || nr > vm->kvm->max_vcpus)
		return errf(e, EINVAL, "vCPU count %u is out of range: this host allows 1 to %u",
		            nr, vm->kvm->max_vcpus);
	if (id >= nr)
		return errf(e, EINVAL, "vCPU id %u is out of range for %u vCPUs", id, nr);
	if (vm->vcpus[id])
		return errf(e, EEXIST, "vCPU %u already exists", id);

	v = calloc(1, sizeof(*v));
	if (!v)
		return errf(e, ENOMEM, "out of memory for vCPU %u", id);
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		ret = errf(e, errno, "KVM_CREATE_VCPU %u failed: %s", id, strerror(errno));
		goto err_free;
	}
	v->run = mmap(NULL, (size_t)vm->kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	              v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = errf(e, errno, "cannot map vCPU %u's run area: %s", id, strerror(errno));
		goto err_close;
	}
	if ((ret = vcpu_set_cpuid(v, nr, e)) < 0 || (ret = vcpu_init_state(v, e)) < 0)
		goto err_unmap;

	pthread_mutex_init(&v->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->cond, &ca);
	pthread_condattr_destroy(&ca);
	v->state = VCPU_CREATED;

	vm->vcpus[id] = v;
	if (vm->nr_vcpus < id + 1)
		vm->nr_vcpus = id + 1;
	if (out)
		*out = v;
	return 0;

err_unmap:
	munmap(v->run, (size_t)vm->kvm->vcpu_mmap_size);
err_close:
	close(v->fd);
err_free:
	free(v);
	return ret;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	struct vm *vm = v->vm;

	vcpu_request_stop(v);
	vcpu_join(v);
	if (v->thread_started)
		return; /* called from its own thread: leak rather than free a running vCPU */
	munmap(v->run, (size_t)vm->kvm->vcpu_mmap_size);
	close(v->fd);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	if (vm->vcpus[v->id] == v)
		vm->vcpus[v->id] = NULL;
	while (vm->nr_vcpus > 0 && !vm->vcpus[vm->nr_vcpus - 1])
		vm->nr_vcpus--;
	free(v);
}
