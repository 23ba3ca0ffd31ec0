// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/vmm.c: the VM object and its life cycle on the VMM thread --
 * building the machine at InstanceStart, pausing, resuming, and ending it
 * when a vCPU or device asks.
 */
#define LOG_MODULE "vmm"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* Firecracker's default when boot-source has no boot_args */
#define DEFAULT_CMDLINE                                                                            \
	"reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.nopnp "   \
	"i8042.dumbkbd"

static unsigned long long since_start_us(void)
{
	return (unsigned long long)((now_ns() - kiln_start_ns) / 1000);
}

const char *vmm_state_name(enum vmm_state s)
{
	switch (s) {
	case VMM_NOT_STARTED:
		return "Not started";
	case VMM_RUNNING:
		return "Running";
	case VMM_PAUSED:
		return "Paused";
	case VMM_HALTED:
		return "Halted";
	}
	return "Unknown";
}

void vmm_request_stop(struct vmm *v, enum vm_stop_reason reason, const char *why)
{
	int expected = -1;
	if (__atomic_compare_exchange_n(&v->stop_reason, &expected, (int)reason, false,
	                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		snprintf(v->stop_why, sizeof(v->stop_why), "%s", why);
		uint64_t one = 1;
		/* an eventfd write of 1 cannot fail short of overflow; nothing to do if it does */
		if (write(v->stop_efd, &one, sizeof(one)) < 0)
			log_err("cannot signal the VMM thread: %s", strerror(errno));
	}
}

static void on_vcpu_stop(struct vm *vm, enum vm_stop_reason reason, const char *why)
{
	vmm_request_stop(vm->opaque, reason, why);
}

static const struct vm_ops vmm_vm_ops = {
        .on_stop = on_vcpu_stop,
};

static void serial_irq(void *opaque, bool level)
{
	struct vmm *v = opaque;
	vm_set_irq(&v->vm, SERIAL_COM1_IRQ, level);
}

static void kbd_irq(void *opaque, bool level)
{
	struct vmm *v = opaque;
	vm_set_irq(&v->vm, I8042_KBD_IRQ, level);
}

static void i8042_reset(void *opaque)
{
	vmm_request_stop(opaque, VM_STOP_RESET, "the guest reset the machine through the i8042");
}

/* ------------------------------------------------------------- stdin */

static void on_stdin(void *opaque, uint32_t events);

/*
 * Offers buffered host input to the UART. While its FIFO is full, stdin is
 * not read (so nothing is lost) and a 10 ms timer retries.
 */
static void stdin_pump(struct vmm *v)
{
	while (v->in_off < v->in_len) {
		size_t n = serial_input(&v->serial, v->in_buf + v->in_off, v->in_len - v->in_off);
		if (n == 0)
			break;
		v->in_off += n;
	}
	bool pending = v->in_off < v->in_len;
	struct itimerspec its = {.it_value.tv_nsec = pending ? 10000000 : 0,
	                         .it_interval.tv_nsec = pending ? 10000000 : 0};
	timerfd_settime(v->in_timer_fd, 0, &its, NULL);
	if (pending && v->stdin_watched) {
		el_del(&v->loop, STDIN_FILENO);
		v->stdin_watched = false;
	} else if (!pending && !v->stdin_watched && !v->stdin_eof) {
		v->stdin_watched = el_add(&v->loop, STDIN_FILENO, EPOLLIN, on_stdin, v) == 0;
	}
}

static void on_in_timer(void *opaque, uint32_t events)
{
	struct vmm *v = opaque;
	uint64_t ticks;
	(void)events;
	if (read(v->in_timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	stdin_pump(v);
}

static void on_stdin(void *opaque, uint32_t events)
{
	struct vmm *v = opaque;
	ssize_t n = read(STDIN_FILENO, v->in_buf, sizeof(v->in_buf));
	(void)events;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF or error: the guest just gets no more input */
		el_del(&v->loop, STDIN_FILENO);
		v->stdin_watched = false;
		v->stdin_eof = true;
		return;
	}
	v->in_len = (size_t)n;
	v->in_off = 0;
	stdin_pump(v);
}

/* ------------------------------------------------------------ stopping */

static void vmm_halt(struct vmm *v)
{
	int reason = __atomic_load_n(&v->stop_reason, __ATOMIC_ACQUIRE);

	vm_stop_vcpus(&v->vm);
	v->state = VMM_HALTED;
	if (v->serial.first_tx_ns)
		log_debug("the guest's first serial byte came %llu us after exec",
		          (unsigned long long)((v->serial.first_tx_ns - kiln_start_ns) / 1000));
	switch (reason) {
	case VM_STOP_RESET:
	case VM_STOP_SHUTDOWN:
	case VM_STOP_REQUESTED:
		log_info("VM stopped: %s", v->stop_why);
		v->exit_code = KILN_EXIT_OK;
		break;
	default:
		log_err("VM crashed: %s", v->stop_why);
		v->exit_code = KILN_EXIT_GUEST_CRASH;
		break;
	}
	if (v->opts.exit_on_halt)
		el_quit(&v->loop);
}

static void on_stop_efd(void *opaque, uint32_t events)
{
	struct vmm *v = opaque;
	uint64_t n;
	(void)events;
	if (read(v->stop_efd, &n, sizeof(n)) < 0)
		return;
	if (v->state == VMM_RUNNING || v->state == VMM_PAUSED)
		vmm_halt(v);
}

static void on_signal(void *opaque, uint32_t events)
{
	struct vmm *v = opaque;
	struct signalfd_siginfo si;
	(void)events;
	if (read(v->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_warn("received signal %u, stopping", si.ssi_signo);
	if (v->state == VMM_RUNNING || v->state == VMM_PAUSED) {
		vmm_request_stop(v, VM_STOP_REQUESTED, "stopped by a signal");
		vmm_halt(v);
	}
	v->exit_code = KILN_EXIT_OK;
	el_quit(&v->loop);
}

void vmm_migrated_away(struct vmm *v, const char *peer)
{
	vm_stop_vcpus(&v->vm);
	v->state = VMM_HALTED;
	snprintf(v->stop_why, sizeof(v->stop_why), "the guest migrated to %s", peer);
	v->exit_code = KILN_EXIT_OK;
	el_quit(&v->loop);
}

void vmm_migration_failed(struct vmm *v, const char *why)
{
	log_err("the incoming migration failed: %s; nothing of it is kept", why);
	vmm_unbuild(v);
	v->state = VMM_NOT_STARTED;
	v->exit_code = KILN_EXIT_ERROR;
	el_quit(&v->loop);
}

/* --------------------------------------------------------------- set-up */

int vmm_init(struct vmm *v, const struct vmm_options *opts, struct errbuf *e)
{
	int ret;

	memset(v, 0, sizeof(*v));
	v->opts = *opts;
	v->stop_reason = -1;
	v->serial_out_fd = STDOUT_FILENO;
	v->stop_efd = v->signal_fd = v->in_timer_fd = -1;
	v->metrics_fd = v->metrics_timer_fd = -1;
	v->uffd_sock = v->uffd_fd = -1;
	vm_config_init(&v->cfg);
	mmds_init(&v->mmds, opts->mmds_size_limit);

	ret = el_init(&v->loop);
	if (ret < 0)
		return errf(e, -ret, "epoll_create1: %s", strerror(-ret));

	v->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	v->in_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	v->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (v->stop_efd < 0 || v->in_timer_fd < 0 || v->signal_fd < 0)
		return errf(e, errno, "cannot create the VMM's event fds: %s", strerror(errno));

	if ((ret = el_add(&v->loop, v->stop_efd, EPOLLIN, on_stop_efd, v)) < 0 ||
	    (ret = el_add(&v->loop, v->signal_fd, EPOLLIN, on_signal, v)) < 0 ||
	    (ret = el_add(&v->loop, v->in_timer_fd, EPOLLIN, on_in_timer, v)) < 0)
		return errf(e, -ret, "cannot watch the VMM's event fds: %s", strerror(-ret));

	if (opts->serial_out) {
		v->serial_out_fd =
		        open(opts->serial_out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (v->serial_out_fd < 0)
			return errf(e, errno, "cannot open serial output %s: %s", opts->serial_out,
			            strerror(errno));
	}
	return 0;
}

static int vmm_attach_legacy(struct vmm *v, struct errbuf *e)
{
	int ret = serial_init(&v->serial, v->serial_out_fd, serial_irq, v);
	if (ret == 0 && v->serial_limit.set)
		serial_set_limit(&v->serial, v->serial_limit.size, v->serial_limit.one_time_burst,
		                 v->serial_limit.refill_time_ms);
	if (ret == 0)
		ret = serial_attach(&v->serial, &v->vm.pio);
	if (ret == 0)
		ret = i8042_init(&v->i8042, i8042_reset, v, kbd_irq, v);
	if (ret == 0)
		ret = i8042_attach(&v->i8042, &v->vm.pio);
	if (ret == 0 && v->opts.boot_timer) {
		v->boot_timer.start_ns = kiln_start_ns;
		ret = boot_timer_attach(&v->boot_timer, &v->vm.pio);
	}
	if (ret < 0)
		return errf(e, -ret, "cannot attach the legacy devices: %s", strerror(-ret));
	return 0;
}

static int vmm_create_vcpus(struct vmm *v, const struct vmm_build *b, struct errbuf *e)
{
	unsigned nr = v->cfg.machine.vcpu_count;
	/* one or the other: the last of PUT /cpu-config and machine-config's cpu_template */
	const struct cpu_config *cc = b->cpu_template  ? b->cpu_template
	                              : v->has_cpu_cfg ? &v->cpu_cfg
	                                               : NULL;

	if (nr == 0 || nr > v->kvm.max_vcpus)
		return errf(e, EINVAL, "vcpu_count %u is out of range: this host allows 1 to %u",
		            nr, v->kvm.max_vcpus);
	/* Firecracker's smt: the CPUID topology says two threads per core; the
	 * APIC ids stay 0..nr-1 (thread in bit 0), as the MP table and MADT give them */
	v->vm.smt = v->cfg.machine.smt;
	for (unsigned i = 0; i < nr; i++) {
		struct vcpu *vc;
		int ret = vcpu_create(&v->vm, i, nr, &vc, e);
		if (ret == 0 && cc)
			ret = vmm_apply_cpu_config(vc, cc, e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void vmm_teardown(struct vmm *v)
{
	if (v->vm_created) {
		vm_stop_vcpus(&v->vm);
		vmm_devices_destroy(v);
		vm_destroy(&v->vm);
		v->vm_created = false;
	}
	vmm_uffd_close(v);
	if (v->mem_init) {
		gm_destroy(&v->mem);
		v->mem_init = false;
	}
	if (v->kvm_open) {
		kvm_close(&v->kvm);
		v->kvm_open = false;
	}
}

void vmm_unbuild(struct vmm *v)
{
	vmm_teardown(v);
	memset(&v->serial, 0, sizeof(v->serial));
	memset(&v->i8042, 0, sizeof(v->i8042));
	memset(&v->boot_timer, 0, sizeof(v->boot_timer));
}

static int vmm_map_memory(struct vmm *v, const struct vmm_build *b, struct errbuf *e)
{
	uint64_t size = MIB(v->cfg.machine.mem_size_mib);
	int ret;

	switch (b->backing) {
	case VMM_MEM_SNAPSHOT:
		ret = gm_init(&v->mem, size, GM_BACKING_SNAPSHOT, b->mem_path, e);
		break;
	case VMM_MEM_UFFD:
		ret = gm_init(&v->mem, size, GM_BACKING_ANON, NULL, e);
		break;
	default:
		ret = gm_init(&v->mem, size, GM_BACKING_ANON, NULL, e);
		break;
	}
	if (ret < 0)
		return ret;
	v->mem_init = true;
	/*
	 * huge_pages "Transparent", as Firecracker's: guest RAM may be backed
	 * by transparent huge pages. Only a hint: refused (a snapshot's file
	 * mapping, a host without THP), the guest runs on small pages.
	 */
	if (v->cfg.machine.huge_pages == HUGE_PAGES_TRANSPARENT &&
	    madvise(v->mem.base, v->mem.ram_size, MADV_HUGEPAGE) < 0)
		log_info("huge_pages Transparent: madvise(MADV_HUGEPAGE) refused (%s); guest RAM "
		         "stays on small pages",
		         strerror(errno));
	/* the page server gets the memory before anything (even KVM) touches it */
	if (b->backing == VMM_MEM_UFFD)
		return vmm_uffd_attach(v, b->mem_path, e);
	return 0;
}

int vmm_build(struct vmm *v, const struct vmm_build *b, struct errbuf *e)
{
	const struct vm_config *c = &v->cfg;
	int ret;

	v->start_ns = now_ns();
	/* accepted by the API as Firecracker does, not built yet: refused, not ignored */
	if (c->machine.huge_pages == HUGE_PAGES_2M)
		return errf(e, ENOTSUP, "huge_pages \"2M\" is not supported by kiln yet");
	if ((ret = kvm_open(&v->kvm, e)) < 0)
		goto err;
	v->kvm_open = true;
	log_debug("start: kvm open at %llu us", since_start_us());
	if ((ret = vmm_map_memory(v, b, e)) < 0)
		goto err;
	log_debug("start: memory mapped at %llu us", since_start_us());
	v->mem.log_dirty = c->machine.track_dirty_pages;
	if (v->mem.log_dirty && (ret = gm_track_dirty(&v->mem)) < 0) {
		errf(e, -ret, "out of memory for the dirty page bitmap");
		goto err;
	}
	if ((ret = vm_create(&v->vm, &v->kvm, &v->mem, &vmm_vm_ops, v, e)) < 0)
		goto err;
	v->vm_created = true;
	log_debug("start: VM created at %llu us", since_start_us());
	if ((ret = vmm_attach_legacy(v, e)) < 0 || (ret = vmm_create_vcpus(v, b, e)) < 0)
		goto err;
	log_debug("start: vCPUs created at %llu us", since_start_us());

	/*
	 * the guest's command line: the configured one plus the devices'
	 * parameters. Each virtio device is announced once: in the ACPI DSDT,
	 * or, when the command line has acpi=off (the guest then reads no
	 * DSDT), as virtio_mmio.device= here. kiln's freestanding test guests
	 * find devices only on the command line: their tests pass acpi=off.
	 */
	const char *args = c->boot_source.boot_args ? c->boot_source.boot_args : DEFAULT_CMDLINE;
	if (strlen(args) >= sizeof(v->cmdline)) {
		ret = errf(e, E2BIG, "the kernel command line is %zu bytes; at most %zu fit",
		           strlen(args), sizeof(v->cmdline) - 1);
		goto err;
	}
	snprintf(v->cmdline, sizeof(v->cmdline), "%s", args);
	if ((ret = vmm_devices_attach(v, v->cmdline, sizeof(v->cmdline), e)) < 0)
		goto err;
	return 0;
err:
	vmm_unbuild(v);
	return ret;
}

/* the VM is built: stdin to the serial port from now on */
/* the VM runs (or waits, paused, to be resumed): its threads all exist */
static void vmm_started(struct vmm *v)
{
	confine_thread(THREAD_VMM);
	if (!v->stdin_watched && !v->stdin_eof)
		v->stdin_watched = el_add(&v->loop, STDIN_FILENO, EPOLLIN, on_stdin, v) == 0;
}

int vmm_start(struct vmm *v, struct errbuf *e)
{
	const struct vm_config *c = &v->cfg;
	struct vmm_build b = {.backing = VMM_MEM_ANON};
	struct cpu_config tmpl;
	int ret;

	if (v->state != VMM_NOT_STARTED)
		return errf(e, EINVAL, "the microVM has already been started");
	if (!c->has_boot_source || !c->boot_source.kernel_image_path)
		return errf(e, EINVAL, "Cannot start microvm without kernel configuration.");
	/* a static CPU template is checked against the host before anything is built */
	if ((ret = vmm_cpu_template(v, &tmpl, e)) < 0)
		return ret;
	b.cpu_template = ret ? &tmpl : NULL;
	if ((ret = vmm_build(v, &b, e)) < 0)
		return ret;

	/* the DSDT describes every device; the command line only with acpi=off */
	struct boot_acpi_virtio virtio[VMM_MAX_DEVS];
	struct boot_acpi_devices acpi = {
	        .virtio = virtio,
	        .nr_virtio = vmm_devices_acpi(v, virtio),
	        .serial = true, /* vmm_attach_legacy: always there */
	        .i8042 = true,
	};
	struct boot_config bc = {
	        .kernel_path = c->boot_source.kernel_image_path,
	        .initrd_path = c->boot_source.initrd_path,
	        .cmdline = v->cmdline,
	        .nr_vcpus = c->machine.vcpu_count,
	        .devices = &acpi,
	};
	if ((ret = boot_load(&v->mem, &bc, &v->boot, e)) < 0)
		goto err;
	log_debug("start: kernel loaded at %llu us", since_start_us());
	if ((ret = boot_setup_bsp(v->vm.vcpus[0], &v->mem, &v->boot)) < 0) {
		errf(e, -ret, "cannot set the boot vCPU's registers: %s", strerror(-ret));
		goto err;
	}
	if ((ret = vm_start_vcpus(&v->vm)) < 0) {
		errf(e, -ret, "cannot start the vCPU threads: %s", strerror(-ret));
		goto err;
	}
	v->state = VMM_RUNNING;
	vmm_started(v);
	log_info("VM started: %u vCPU(s), %llu MiB, %s entry at %#llx in %llu us",
	         c->machine.vcpu_count, (unsigned long long)c->machine.mem_size_mib,
	         v->boot.mode == BOOT_PVH ? "PVH" : "64-bit", (unsigned long long)v->boot.entry,
	         (unsigned long long)((now_ns() - v->start_ns) / 1000));
	return 0;

err:
	vmm_unbuild(v);
	return ret;
}

int vmm_start_paused(struct vmm *v, struct errbuf *e)
{
	/* each thread parks before its first KVM_RUN: nothing runs until resume */
	for (unsigned i = 0; i < v->vm.nr_vcpus; i++) {
		int ret = vcpu_start_paused(v->vm.vcpus[i]);
		if (ret < 0)
			return errf(e, -ret, "cannot start the vCPU threads: %s", strerror(-ret));
	}
	for (unsigned i = 0; i < v->vm.nr_vcpus; i++)
		vcpu_wait_parked(v->vm.vcpus[i]);
	vm_hold_time(&v->vm, true); /* the restored clocks, until the resume */
	int ret;
	if ((ret = vmm_devices_pause(v, e)) < 0)
		return ret;
	v->state = VMM_PAUSED;
	vmm_started(v);
	return 0;
}

int vmm_pause(struct vmm *v, struct errbuf *e)
{
	if (v->state != VMM_RUNNING)
		return errf(e, EINVAL, "the microVM is not running (state: %s)",
		            vmm_state_name(v->state));
	int ret = vm_pause_vcpus(&v->vm);
	if (ret < 0)
		return errf(e, -ret, "cannot pause the vCPUs: %s", strerror(-ret));
	/* then the devices: nothing touches guest memory once this returns */
	if ((ret = vmm_devices_pause(v, e)) < 0) {
		vm_resume_vcpus(&v->vm);
		return ret;
	}
	v->state = VMM_PAUSED;
	return 0;
}

int vmm_resume(struct vmm *v, struct errbuf *e)
{
	if (v->state != VMM_PAUSED)
		return errf(e, EINVAL, "the microVM is not paused (state: %s)",
		            vmm_state_name(v->state));
	vmm_devices_resume(v);
	int ret = vm_resume_vcpus(&v->vm);
	if (ret < 0)
		return errf(e, -ret, "cannot resume the vCPUs: %s", strerror(-ret));
	v->state = VMM_RUNNING;
	return 0;
}

/* ------------------------------------------------------------------ API */

static void on_api_queue(void *opaque, uint32_t events)
{
	struct vmm *v = opaque;
	struct api_action *a;
	(void)events;
	while ((a = api_queue_take(&v->queue)) != NULL) {
		vmm_execute(v, a);
		a->done(a);
	}
}

int vmm_serve_api(struct vmm *v, const char *sock_path, size_t max_payload, struct errbuf *e)
{
	int ret = api_queue_init(&v->queue);
	if (ret < 0)
		return errf(e, -ret, "cannot create the API queue: %s", strerror(-ret));
	v->queue_init = true;
	ret = el_add(&v->loop, v->queue.efd, EPOLLIN, on_api_queue, v);
	if (ret < 0)
		return errf(e, -ret, "cannot watch the API queue: %s", strerror(-ret));
	struct api_server_config sc = {
	        .socket_path = sock_path,
	        .max_payload = max_payload,
	        .queue = &v->queue,
	};
	ret = api_server_start(&sc, &v->server, e);
	if (ret < 0)
		return ret;
	v->api_ready_ns = now_ns();
	struct timespec cpu;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0)
		v->api_ready_cpu_ns = (uint64_t)cpu.tv_sec * 1000000000ull + (uint64_t)cpu.tv_nsec;
	log_info("API server listening on %s after %llu us", sock_path,
	         (unsigned long long)((v->api_ready_ns - kiln_start_ns) / 1000));
	return 0;
}

int vmm_run(struct vmm *v)
{
	int ret = el_run(&v->loop);
	return ret < 0 ? KILN_EXIT_ERROR : v->exit_code;
}

void vmm_destroy(struct vmm *v)
{
	/* the server first: no client may wait on an action that never completes */
	if (v->server)
		api_server_stop(v->server);
	v->server = NULL;
	if (v->queue_init) {
		struct api_action *a;
		while ((a = api_queue_take(&v->queue)) != NULL) {
			a->status = 400;
			snprintf(a->fault, sizeof(a->fault), "kiln is shutting down");
			a->done(a);
		}
		api_queue_destroy(&v->queue);
		v->queue_init = false;
	}
	vmm_migration_destroy(v);
	vmm_metrics_close(v);
	vmm_teardown(v);
	if (v->serial_out_fd >= 0 && v->serial_out_fd != STDOUT_FILENO)
		close(v->serial_out_fd);
	if (v->stop_efd >= 0)
		close(v->stop_efd);
	if (v->signal_fd >= 0)
		close(v->signal_fd);
	if (v->in_timer_fd >= 0)
		close(v->in_timer_fd);
	el_destroy(&v->loop);
	vm_config_free(&v->cfg);
	mmds_destroy(&v->mmds);
}
