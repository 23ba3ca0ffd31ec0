// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/vm.c: the VM file descriptor -- its fixed x86 set-up (TSS, identity
 * map, in-kernel PIC/IOAPIC/LAPIC and PIT), guest RAM, the two buses, the
 * interrupt lines, and starting/pausing/stopping all vCPUs together.
 * Reference: Linux Documentation/virt/kvm/api.rst, the section of each ioctl.
 */
#define LOG_MODULE "vcpu"
#include "vcpu.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* KVM_CREATE_VM can fail with EINTR while the kernel sets up; retry a little */
#define CREATE_VM_TRIES 5

static int vm_create_fd(struct kvm *kvm, struct errbuf *e)
{
	int fd = -1;

	for (int i = 0; i < CREATE_VM_TRIES; i++) {
		fd = ioctl(kvm->fd, KVM_CREATE_VM, 0ul);
		if (fd >= 0 || errno != EINTR)
			break;
	}
	if (fd < 0)
		return errf(e, errno, "KVM_CREATE_VM failed: %s", strerror(errno));
	return fd;
}

/* the x86 pieces that must exist before any vCPU is created */
static int vm_setup_x86(struct vm *vm, struct errbuf *e)
{
	/* api.rst KVM_SET_TSS_ADDR: three pages the VMX real-mode emulation needs, inside the hole
	 */
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
		return errf(e, errno, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));

	/* api.rst KVM_SET_IDENTITY_MAP_ADDR: one page for the identity map; optional */
	if (vm->kvm->has_identity_map_addr) {
		uint64_t addr = VM_IDENTITY_MAP_ADDR;
		if (ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
			return errf(e, errno, "KVM_SET_IDENTITY_MAP_ADDR failed: %s",
			            strerror(errno));
	}

	/* api.rst KVM_CREATE_IRQCHIP: PIC + IOAPIC, and a LAPIC in every vCPU created after it */
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return errf(e, errno, "KVM_CREATE_IRQCHIP failed: %s", strerror(errno));

	/*
	 * api.rst KVM_CREATE_PIT2: the in-kernel i8254. KVM_PIT_SPEAKER_DUMMY lets
	 * KVM answer port 0x61 (speaker and PIT channel 2 gate) itself, which
	 * Linux reads while it calibrates the TSC against the PIT; as Firecracker.
	 */
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0)
		return errf(e, errno, "KVM_CREATE_PIT2 failed: %s", strerror(errno));
	return 0;
}

int vm_create(struct vm *vm, struct kvm *kvm, struct guest_mem *mem, const struct vm_ops *ops,
              void *opaque, struct errbuf *e)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
	if (!kvm || kvm->fd < 0)
		return errf(e, EINVAL, "cannot create a VM without an open /dev/kvm");
	if (!mem || mem->nr_regions == 0)
		return errf(e, EINVAL, "cannot create a VM without guest memory");

	if ((ret = vm_create_fd(kvm, e)) < 0)
		return ret;
	vm->fd = ret;
	vm->kvm = kvm;
	vm->mem = mem;
	vm->ops = ops;
	vm->opaque = opaque;

	/*
	 * Memory first: once the in-kernel irqchip exists, every memslot change
	 * waits for an SRCU grace period the irqchip's readers hold up (measured
	 * here: 5-12 ms instead of 0.08 ms for the same 128 MiB slot).
	 */
	if ((ret = gm_register(mem, vm->fd, mem->log_dirty)) < 0) {
		ret = errf(e, -ret, "cannot register guest memory with KVM: %s", strerror(-ret));
		goto err_close;
	}
	if ((ret = vm_setup_x86(vm, e)) < 0)
		goto err_close;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	return 0;

err_close:
	close(vm->fd);
	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
	return ret;
}

void vm_destroy(struct vm *vm)
{
	if (!vm->kvm)
		return; /* never created, or vm_create failed */
	vm_stop_vcpus(vm);
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		vcpu_destroy(vm->vcpus[i]);
	bus_destroy(&vm->mmio);
	bus_destroy(&vm->pio);
	close(vm->fd);
	vm->fd = -1;
	vm->kvm = NULL;
}

int vm_set_irq(struct vm *vm, uint32_t irq, bool level)
{
	struct kvm_irq_level line = {.irq = irq, .level = level ? 1 : 0};

	if (irq >= VM_NR_GSIS)
		return -EINVAL;
	return ioctl(vm->fd, KVM_IRQ_LINE, &line) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------- vCPUs */

int vm_start_vcpus(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i] && vm->vcpus[i]->thread_started)
			return -EBUSY;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (!vm->vcpus[i])
			continue;
		int ret = vcpu_start(vm->vcpus[i]);
		if (ret < 0) {
			log_err("cannot start vCPU %u's thread: %s", i, strerror(-ret));
			vm_stop_vcpus(vm);
			return ret;
		}
	}
	return 0;
}

/* applies `fn` to every created vCPU, in id order */
static void vm_each_vcpu(struct vm *vm, void (*fn)(struct vcpu *v))
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i])
			fn(vm->vcpus[i]);
}

/* KVM_GET_MSRS / KVM_SET_MSRS of IA32_TSC alone on v: 0 / -errno */
static int tsc_msr(struct vcpu *v, unsigned long req, uint64_t *val)
{
	struct {
		struct kvm_msrs head;
		struct kvm_msr_entry entry;
	} m;
	memset(&m, 0, sizeof(m));
	m.head.nmsrs = 1;
	m.entry.index = MSR_IA32_TSC;
	m.entry.data = *val;
	int n = ioctl(v->fd, req, &m);
	if (n != 1)
		return n < 0 ? -errno : -EIO;
	*val = m.entry.data;
	return 0;
}

void vm_hold_time(struct vm *vm, bool restored)
{
	vm->time_held = false;
	memset(&vm->held_clock, 0, sizeof(vm->held_clock));
	if (ioctl(vm->fd, KVM_GET_CLOCK, &vm->held_clock) < 0) {
		log_warn("KVM_GET_CLOCK failed, guest time runs on while paused: %s",
		         strerror(errno));
		return;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		/* restored: the snapshot's TSC, unless it had none */
		int ret = v && !(restored && v->held_tsc) ? tsc_msr(v, KVM_GET_MSRS, &v->held_tsc)
		                                          : 0;
		if (ret < 0) {
			log_warn(
			        "reading vCPU %u's TSC failed, guest time runs on while paused: %s",
			        i, strerror(-ret));
			return;
		}
	}
	vm->time_held = true;
}

/* KVM_GET_DEVICE_ATTR / KVM_SET_DEVICE_ATTR of v's TSC offset: 0 / -errno */
static int tsc_offset(struct vcpu *v, unsigned long req, uint64_t *offset)
{
	struct kvm_device_attr a = {.group = KVM_VCPU_TSC_CTRL,
	                            .attr = KVM_VCPU_TSC_OFFSET,
	                            .addr = (uint64_t)(uintptr_t)offset};
	return ioctl(v->fd, req, &a) < 0 ? -errno : 0;
}

/*
 * Every vCPU's TSC back to its held value, through the TSC offsets
 * (devices/vcpu.rst, KVM_VCPU_TSC_OFFSET): the first vCPU's offset is moved
 * by what its TSC gained since the hold (or lost, when KVM took a restored
 * IA32_TSC for a resync), and every vCPU gets that offset, so all run in
 * step. Writing IA32_TSC instead is the fallback for kernels without that
 * attribute (before 5.16): KVM takes a write within a second of where the
 * TSC would be for a synchronisation and keeps the running TSC, so there a
 * pause shorter than that is not hidden from the TSC.
 */
static void release_tsc(struct vm *vm)
{
	struct vcpu *first = NULL;
	for (unsigned i = 0; i < vm->nr_vcpus && !first; i++)
		first = vm->vcpus[i];
	uint64_t now = 0, off;
	if (!first || tsc_msr(first, KVM_GET_MSRS, &now) < 0 ||
	    tsc_offset(first, KVM_GET_DEVICE_ATTR, &off) < 0) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++) {
			struct vcpu *v = vm->vcpus[i];
			int ret = v ? tsc_msr(v, KVM_SET_MSRS, &v->held_tsc) : 0;
			if (ret < 0)
				log_warn("setting vCPU %u's TSC back failed: %s", i,
				         strerror(-ret));
		}
		return;
	}
	off -= now - first->held_tsc; /* mod 2^64: a TSC behind its held value moves ahead */
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		int ret = v ? tsc_offset(v, KVM_SET_DEVICE_ATTR, &off) : 0;
		if (ret < 0)
			log_warn("setting vCPU %u's TSC offset back failed: %s", i, strerror(-ret));
	}
}

/* sets the time vm_hold_time() held back, before the vCPUs run again */
static void release_time(struct vm *vm)
{
	if (!vm->time_held)
		return;
	vm->time_held = false;
	/* the TSCs first: kvmclock's readings are taken against them */
	release_tsc(vm);
	struct kvm_clock_data c;
	memset(&c, 0, sizeof(c));
	c.clock = vm->held_clock.clock;
	if (ioctl(vm->fd, KVM_SET_CLOCK, &c) < 0)
		log_warn("KVM_SET_CLOCK failed, kvmclock ran on while paused: %s", strerror(errno));
	/* api.rst KVM_KVMCLOCK_CTRL: EINVAL when the guest has not enabled kvmclock */
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i] && ioctl(vm->vcpus[i]->fd, KVM_KVMCLOCK_CTRL, 0) < 0 &&
		    errno != EINVAL)
			log_warn("KVM_KVMCLOCK_CTRL for vCPU %u failed: %s", i, strerror(errno));
}

int vm_pause_vcpus(struct vm *vm)
{
	/* kick them all first so that they park in parallel */
	vm_each_vcpu(vm, vcpu_request_pause);
	vm_each_vcpu(vm, vcpu_wait_parked);
	if (!vm->time_held) /* paused already: keep the time of the first pause */
		vm_hold_time(vm, false);
	return 0;
}

int vm_resume_vcpus(struct vm *vm)
{
	release_time(vm);
	vm_each_vcpu(vm, vcpu_resume);
	return 0;
}

void vm_stop_vcpus(struct vm *vm)
{
	vm_each_vcpu(vm, vcpu_request_stop);
	vm_each_vcpu(vm, vcpu_join);
}
