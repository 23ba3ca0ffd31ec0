// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/state_vcpu.c: one vCPU's saved state, the section "vcpu.<id>".
 *
 * Version 1 payload, in this order (little endian, field by field; the
 * field tables below give the order inside each struct):
 *   u32 vCPU id
 *   CPUID table, u32 count + entries (state_cpu.c)
 *   REGS (regs_fields)
 *   SREGS: u8 kind (1 KVM_GET_SREGS, 2 KVM_GET_SREGS2), the eight segments
 *          cs ds es fs gs ss tr ldt (segment_fields), sregs_fields; kind 1:
 *          interrupt_bitmap (4 u64); kind 2: sregs2_fields
 *   FPU: u8 kind (1: u32 length + the XSAVE image; 2: fpu_fields)
 *   XCRS: u32 count, u32 flags, count x (u32 xcr, u64 value)
 *   MSRs: u32 count + (u32 index, u64 value) each (state_cpu.c)
 *   LAPIC: u32 length (1024), the KVM_GET_LAPIC register page
 *   VCPU_EVENTS (events_fields), DEBUGREGS (debugregs_fields)
 *   MP_STATE: u32
 * The XSAVE image and the LAPIC page are architectural formats (SDM vol. 1
 * "XSAVE-Supported Features and State-Component Bitmaps", vol. 3A "Local
 * APIC" register offsets), kept as sized byte fields; x86 stores them in
 * little endian. Ioctls: Linux Documentation/virt/kvm/api.rst.
 */
#define LOG_MODULE "vcpu"
#include "state_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define SREGS_KIND_1   1
#define SREGS_KIND_2   2
#define FPU_KIND_XSAVE 1
#define FPU_KIND_FPU   2

/* the legacy region and the XSAVE header: the least an XSAVE image holds */
#define XSAVE_MIN_BYTES 576
#define XSAVE_MAX_BYTES (1u << 20)

/* everything a vCPU's section holds, between KVM and the wire */
struct vcpu_snap {
	uint32_t id;
	struct kvm_cpuid2 *cpuid;
	struct kvm_regs regs;
	uint8_t sregs_kind;
	struct kvm_sregs2 sregs; /* for kind 1, only the fields kvm_sregs shares */
	uint64_t interrupt_bitmap[4];
	uint8_t fpu_kind;
	uint8_t *xsave;
	uint32_t xsave_len;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_msrs *msrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp_state;
};

/* kvm_sregs and kvm_sregs2 share their layout up to apic_base */
#define SREGS_COMMON_BYTES offsetof(struct kvm_sregs, interrupt_bitmap)
_Static_assert(offsetof(struct kvm_sregs2, flags) == SREGS_COMMON_BYTES,
               "kvm_sregs and kvm_sregs2 differ before apic_base");

static void snap_free(struct vcpu_snap *s)
{
	free(s->cpuid);
	free(s->xsave);
	free(s->msrs);
}

#define F_REGS(m)  STATE_FIELD(struct kvm_regs, m)
#define F_SREGS(m) STATE_FIELD(struct kvm_sregs2, m)
#define F_SEG(m)   STATE_FIELD(struct kvm_segment, m)
#define F_FPU(m)   STATE_FIELD(struct kvm_fpu, m)
#define F_EV(m)    STATE_FIELD(struct kvm_vcpu_events, m)
#define F_DBG(m)   STATE_FIELD(struct kvm_debugregs, m)

static const struct state_field regs_fields[] = {
        F_REGS(rax), F_REGS(rbx), F_REGS(rcx), F_REGS(rdx), F_REGS(rsi), F_REGS(rdi),
        F_REGS(rsp), F_REGS(rbp), F_REGS(r8),  F_REGS(r9),  F_REGS(r10), F_REGS(r11),
        F_REGS(r12), F_REGS(r13), F_REGS(r14), F_REGS(r15), F_REGS(rip), F_REGS(rflags),
};

static const struct state_field segment_fields[] = {
        F_SEG(base), F_SEG(limit), F_SEG(selector), F_SEG(type), F_SEG(present), F_SEG(dpl),
        F_SEG(db),   F_SEG(s),     F_SEG(l),        F_SEG(g),    F_SEG(avl),     F_SEG(unusable),
};

/* after the eight segments */
static const struct state_field sregs_fields[] = {
        F_SREGS(gdt.base), F_SREGS(gdt.limit), F_SREGS(idt.base),  F_SREGS(idt.limit),
        F_SREGS(cr0),      F_SREGS(cr2),       F_SREGS(cr3),       F_SREGS(cr4),
        F_SREGS(cr8),      F_SREGS(efer),      F_SREGS(apic_base),
};

static const struct state_field sregs2_fields[] = {
        F_SREGS(flags),     F_SREGS(pdptrs[0]), F_SREGS(pdptrs[1]),
        F_SREGS(pdptrs[2]), F_SREGS(pdptrs[3]),
};

static const struct state_field fpu_fields[] = {
        F_FPU(fpr),     F_FPU(fcw),     F_FPU(fsw), F_FPU(ftwx),  F_FPU(last_opcode),
        F_FPU(last_ip), F_FPU(last_dp), F_FPU(xmm), F_FPU(mxcsr),
};

static const struct state_field events_fields[] = {
        F_EV(exception.injected),
        F_EV(exception.nr),
        F_EV(exception.has_error_code),
        F_EV(exception.pending),
        F_EV(exception.error_code),
        F_EV(interrupt.injected),
        F_EV(interrupt.nr),
        F_EV(interrupt.soft),
        F_EV(interrupt.shadow),
        F_EV(nmi.injected),
        F_EV(nmi.pending),
        F_EV(nmi.masked),
        F_EV(sipi_vector),
        F_EV(flags),
        F_EV(smi.smm),
        F_EV(smi.pending),
        F_EV(smi.smm_inside_nmi),
        F_EV(smi.latched_init),
        F_EV(triple_fault.pending),
        F_EV(exception_has_payload),
        F_EV(exception_payload),
};

static const struct state_field debugregs_fields[] = {
        F_DBG(db[0]), F_DBG(db[1]), F_DBG(db[2]), F_DBG(db[3]),
        F_DBG(dr6),   F_DBG(dr7),   F_DBG(flags),
};

#define PUT(w, base, table) vcpu_state_put_fields(w, base, table, ARRAY_SIZE(table))
#define GET(r, base, table) vcpu_state_get_fields(r, base, table, ARRAY_SIZE(table))

/* --------------------------------------------------------- SREGS, FPU */

static struct kvm_segment *sregs_segment(struct kvm_sregs2 *s, unsigned i)
{
	struct kvm_segment *segs[] = {&s->cs, &s->ds, &s->es, &s->fs,
	                              &s->gs, &s->ss, &s->tr, &s->ldt};
	return segs[i];
}

static void put_sregs(struct state_writer *w, const struct vcpu_snap *snap)
{
	struct kvm_sregs2 s = snap->sregs;
	sw_u8(w, snap->sregs_kind);
	for (unsigned i = 0; i < 8; i++)
		PUT(w, sregs_segment(&s, i), segment_fields);
	PUT(w, &s, sregs_fields);
	if (snap->sregs_kind == SREGS_KIND_1)
		for (unsigned i = 0; i < 4; i++)
			sw_u64(w, snap->interrupt_bitmap[i]);
	else
		PUT(w, &s, sregs2_fields);
}

static int get_sregs(struct state_reader *r, struct vcpu_snap *snap, struct errbuf *e)
{
	snap->sregs_kind = sr_u8(r);
	if (snap->sregs_kind != SREGS_KIND_1 && snap->sregs_kind != SREGS_KIND_2)
		return errf(e, EINVAL, "snapshot: unknown special-register format %u",
		            snap->sregs_kind);
	for (unsigned i = 0; i < 8; i++)
		GET(r, sregs_segment(&snap->sregs, i), segment_fields);
	GET(r, &snap->sregs, sregs_fields);
	if (snap->sregs_kind == SREGS_KIND_1)
		for (unsigned i = 0; i < 4; i++)
			snap->interrupt_bitmap[i] = sr_u64(r);
	else
		GET(r, &snap->sregs, sregs2_fields);
	return 0;
}

static void put_fpu(struct state_writer *w, const struct vcpu_snap *snap)
{
	sw_u8(w, snap->fpu_kind);
	if (snap->fpu_kind == FPU_KIND_XSAVE) {
		sw_u32(w, snap->xsave_len);
		sw_bytes(w, snap->xsave, snap->xsave_len);
	} else {
		PUT(w, &snap->fpu, fpu_fields);
	}
}

static int get_fpu(struct state_reader *r, struct vcpu_snap *snap, struct errbuf *e)
{
	snap->fpu_kind = sr_u8(r);
	if (snap->fpu_kind == FPU_KIND_FPU) {
		GET(r, &snap->fpu, fpu_fields);
		return 0;
	}
	if (snap->fpu_kind != FPU_KIND_XSAVE)
		return errf(e, EINVAL, "snapshot: unknown FPU state format %u", snap->fpu_kind);
	snap->xsave_len = sr_u32(r);
	if (sr_error(r) || snap->xsave_len < XSAVE_MIN_BYTES || snap->xsave_len > XSAVE_MAX_BYTES ||
	    snap->xsave_len > sr_left(r))
		return errf(e, EINVAL, "snapshot: bad or truncated XSAVE image of %u bytes",
		            snap->xsave_len);
	if (!(snap->xsave = malloc(snap->xsave_len)))
		return errf(e, ENOMEM, "out of memory for a saved XSAVE image");
	sr_bytes(r, snap->xsave, snap->xsave_len);
	return 0;
}

/* -------------------------------------------------------- the section */

static void put_snap(struct state_writer *w, const struct vcpu_snap *s)
{
	sw_u32(w, s->id);
	vcpu_state_put_cpuid(w, s->cpuid);
	PUT(w, &s->regs, regs_fields);
	put_sregs(w, s);
	put_fpu(w, s);
	sw_u32(w, s->xcrs.nr_xcrs);
	sw_u32(w, s->xcrs.flags);
	for (uint32_t i = 0; i < s->xcrs.nr_xcrs; i++) {
		sw_u32(w, s->xcrs.xcrs[i].xcr);
		sw_u64(w, s->xcrs.xcrs[i].value);
	}
	vcpu_state_put_msrs(w, s->msrs);
	sw_u32(w, sizeof(s->lapic.regs));
	sw_bytes(w, s->lapic.regs, sizeof(s->lapic.regs));
	PUT(w, &s->events, events_fields);
	PUT(w, &s->debugregs, debugregs_fields);
	sw_u32(w, s->mp_state.mp_state);
}

/* reads and checks a whole section `id` into `s` (freed by the caller) */
static int read_snap(struct state_reader *r, const char *id, struct vcpu_snap *s, struct errbuf *e)
{
	int ret;

	s->id = sr_u32(r);
	if ((ret = vcpu_state_read_cpuid(r, &s->cpuid, e)) < 0)
		return ret;
	GET(r, &s->regs, regs_fields);
	if ((ret = get_sregs(r, s, e)) < 0 || (ret = get_fpu(r, s, e)) < 0)
		return ret;
	s->xcrs.nr_xcrs = sr_u32(r);
	s->xcrs.flags = sr_u32(r);
	if (s->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return errf(e, EINVAL, "snapshot: %u XCRs, more than KVM's %d", s->xcrs.nr_xcrs,
		            KVM_MAX_XCRS);
	for (uint32_t i = 0; i < s->xcrs.nr_xcrs; i++) {
		s->xcrs.xcrs[i].xcr = sr_u32(r);
		s->xcrs.xcrs[i].value = sr_u64(r);
	}
	if ((ret = vcpu_state_read_msrs(r, &s->msrs, e)) < 0)
		return ret;
	uint32_t lapic_len = sr_u32(r);
	if (!sr_error(r) && lapic_len != sizeof(s->lapic.regs))
		return errf(e, EINVAL, "snapshot: the LAPIC page has %u bytes, not %zu", lapic_len,
		            sizeof(s->lapic.regs));
	sr_bytes(r, s->lapic.regs, sizeof(s->lapic.regs));
	GET(r, &s->events, events_fields);
	GET(r, &s->debugregs, debugregs_fields);
	s->mp_state.mp_state = sr_u32(r);
	return vcpu_state_check_end(r, id, e);
}

/* ---------------------------------------------------------- from KVM */

/* one ioctl on the vCPU, with "KVM_GET_X for vCPU n failed: ..." on failure */
static int vcpu_ioctl(struct vcpu *v, unsigned long req, void *arg, const char *name,
                      struct errbuf *e)
{
	if (ioctl(v->fd, req, arg) < 0)
		return errf(e, errno, "%s for vCPU %u failed: %s", name, v->id, strerror(errno));
	return 0;
}
#define VCPU_IOCTL(v, req, arg, e) vcpu_ioctl(v, req, arg, #req, e)

static int get_kvm_sregs(struct vcpu *v, struct vcpu_snap *s, struct errbuf *e)
{
	struct kvm_sregs old;
	int ret;

	if (kvm_check_cap(v->vm->kvm, KVM_CAP_SREGS2) > 0) {
		s->sregs_kind = SREGS_KIND_2;
		return VCPU_IOCTL(v, KVM_GET_SREGS2, &s->sregs, e);
	}
	s->sregs_kind = SREGS_KIND_1;
	if ((ret = VCPU_IOCTL(v, KVM_GET_SREGS, &old, e)) < 0)
		return ret;
	memcpy(&s->sregs, &old, SREGS_COMMON_BYTES);
	memcpy(s->interrupt_bitmap, old.interrupt_bitmap, sizeof(s->interrupt_bitmap));
	return 0;
}

/* bytes KVM_GET_XSAVE2 / KVM_SET_XSAVE move on this VM (api.rst KVM_CAP_XSAVE2) */
static uint32_t xsave_size(struct vm *vm)
{
	int size = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return size > (int)sizeof(struct kvm_xsave) ? (uint32_t)size : sizeof(struct kvm_xsave);
}

static int get_kvm_fpu(struct vcpu *v, struct vcpu_snap *s, struct errbuf *e)
{
	if (!v->vm->kvm->has_xsave) {
		s->fpu_kind = FPU_KIND_FPU;
		return VCPU_IOCTL(v, KVM_GET_FPU, &s->fpu, e);
	}
	s->fpu_kind = FPU_KIND_XSAVE;
	s->xsave_len = xsave_size(v->vm);
	if (!(s->xsave = calloc(1, s->xsave_len)))
		return errf(e, ENOMEM, "out of memory for vCPU %u's XSAVE state", v->id);
	if (s->xsave_len > sizeof(struct kvm_xsave))
		return VCPU_IOCTL(v, KVM_GET_XSAVE2, s->xsave, e);
	return VCPU_IOCTL(v, KVM_GET_XSAVE, s->xsave, e);
}

static int snap_from_kvm(struct vcpu *v, struct vcpu_snap *s, struct errbuf *e)
{
	int ret;

	s->id = v->id;
	if ((ret = vcpu_get_cpuid(v, &s->cpuid, e)) < 0 ||
	    (ret = VCPU_IOCTL(v, KVM_GET_REGS, &s->regs, e)) < 0 ||
	    (ret = get_kvm_sregs(v, s, e)) < 0 || (ret = get_kvm_fpu(v, s, e)) < 0)
		return ret;
	if (kvm_check_cap(v->vm->kvm, KVM_CAP_XCRS) > 0 &&
	    (ret = VCPU_IOCTL(v, KVM_GET_XCRS, &s->xcrs, e)) < 0)
		return ret;
	if ((ret = vcpu_state_get_msrs(v, &s->msrs, e)) < 0 ||
	    (ret = VCPU_IOCTL(v, KVM_GET_LAPIC, &s->lapic, e)) < 0 ||
	    (ret = VCPU_IOCTL(v, KVM_GET_VCPU_EVENTS, &s->events, e)) < 0 ||
	    (ret = VCPU_IOCTL(v, KVM_GET_DEBUGREGS, &s->debugregs, e)) < 0 ||
	    (ret = VCPU_IOCTL(v, KVM_GET_MP_STATE, &s->mp_state, e)) < 0)
		return ret;
	/* paused: the TSC as the guest last saw it (vm_hold_time) */
	for (uint32_t i = 0; v->vm->time_held && i < s->msrs->nmsrs; i++)
		if (s->msrs->entries[i].index == MSR_IA32_TSC)
			s->msrs->entries[i].data = v->held_tsc;
	return 0;
}

/* ------------------------------------------------------------ into KVM */

static int set_kvm_sregs(struct vcpu *v, const struct vcpu_snap *s, struct errbuf *e)
{
	struct kvm_sregs old;

	if (s->sregs_kind == SREGS_KIND_2 && kvm_check_cap(v->vm->kvm, KVM_CAP_SREGS2) > 0)
		return VCPU_IOCTL(v, KVM_SET_SREGS2, (void *)&s->sregs, e);
	/* without SREGS2 the PDPTRs are reloaded from CR3, as on a real mode switch */
	memset(&old, 0, sizeof(old));
	memcpy(&old, &s->sregs, SREGS_COMMON_BYTES);
	if (s->sregs_kind == SREGS_KIND_1)
		memcpy(old.interrupt_bitmap, s->interrupt_bitmap, sizeof(old.interrupt_bitmap));
	return VCPU_IOCTL(v, KVM_SET_SREGS, &old, e);
}

static int set_kvm_fpu(struct vcpu *v, const struct vcpu_snap *s, struct errbuf *e)
{
	if (s->fpu_kind == FPU_KIND_FPU)
		return VCPU_IOCTL(v, KVM_SET_FPU, (void *)&s->fpu, e);
	if (!v->vm->kvm->has_xsave)
		return errf(e, ENOTSUP, "snapshot: vCPU %u has XSAVE state; this host lacks XSAVE",
		            v->id);
	uint32_t size = xsave_size(v->vm);
	for (uint32_t i = size; i < s->xsave_len; i++)
		if (s->xsave[i])
			return errf(
			        e, ENOTSUP,
			        "snapshot: vCPU %u's XSAVE state has %u bytes; this host holds %u",
			        v->id, s->xsave_len, size);
	uint8_t *buf = calloc(1, size);
	if (!buf)
		return errf(e, ENOMEM, "out of memory for vCPU %u's XSAVE state", v->id);
	memcpy(buf, s->xsave, s->xsave_len < size ? s->xsave_len : size);
	int ret = VCPU_IOCTL(v, KVM_SET_XSAVE, buf, e);
	free(buf);
	return ret;
}

static int set_kvm_xcrs(struct vcpu *v, const struct vcpu_snap *s, struct errbuf *e)
{
	if (s->xcrs.nr_xcrs == 0)
		return 0;
	if (kvm_check_cap(v->vm->kvm, KVM_CAP_XCRS) <= 0)
		return errf(e, ENOTSUP, "snapshot: vCPU %u has XCRs; this host's KVM lacks XCRS",
		            v->id);
	return VCPU_IOCTL(v, KVM_SET_XCRS, (void *)&s->xcrs, e);
}

/* the events flags whose fields the section always carries, plus what KVM reported */
#define EVENTS_ALWAYS                                                                              \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |                       \
	 KVM_VCPUEVENT_VALID_SHADOW)

static int set_kvm_events(struct vcpu *v, const struct vcpu_snap *s, struct errbuf *e)
{
	struct kvm_vcpu_events ev = s->events;
	ev.flags |= EVENTS_ALWAYS;
	return VCPU_IOCTL(v, KVM_SET_VCPU_EVENTS, &ev, e);
}

/* api.rst KVM_SET_DEBUGREGS: flags must be 0 */
static int set_kvm_debugregs(struct vcpu *v, const struct vcpu_snap *s, struct errbuf *e)
{
	struct kvm_debugregs d = s->debugregs;
	d.flags = 0;
	return VCPU_IOCTL(v, KVM_SET_DEBUGREGS, &d, e);
}

/*
 * The order follows what KVM derives from what: CPUID first (it decides
 * which MSRs and XSAVE features are valid), SREGS before the MSRs and the
 * LAPIC (APIC base, EFER, CR4), MP state before the LAPIC and the LAPIC
 * before TSC_DEADLINE (ignored unless LVTT is in TSC-deadline mode), as
 * QEMU does; pending events and debug registers last.
 */
static int snap_to_kvm(struct vcpu *v, const struct vcpu_snap *s, struct errbuf *e)
{
	int ret;

	if ((ret = VCPU_IOCTL(v, KVM_SET_CPUID2, s->cpuid, e)) < 0 ||
	    (ret = set_kvm_sregs(v, s, e)) < 0 ||
	    (ret = VCPU_IOCTL(v, KVM_SET_REGS, (void *)&s->regs, e)) < 0 ||
	    (ret = vcpu_state_set_msrs(v, s->msrs, false, e)) < 0 ||
	    (ret = set_kvm_fpu(v, s, e)) < 0 || (ret = set_kvm_xcrs(v, s, e)) < 0 ||
	    (ret = VCPU_IOCTL(v, KVM_SET_MP_STATE, (void *)&s->mp_state, e)) < 0 ||
	    (ret = VCPU_IOCTL(v, KVM_SET_LAPIC, (void *)&s->lapic, e)) < 0 ||
	    (ret = vcpu_state_set_msrs(v, s->msrs, true, e)) < 0 ||
	    (ret = set_kvm_events(v, s, e)) < 0 || (ret = set_kvm_debugregs(v, s, e)) < 0)
		return ret;
	/* the TSC it had: KVM may take the IA32_TSC write for a resync with the
	 * new vCPU's own TSC and ignore it; vm_hold_time(vm, true) and the
	 * resume set it through the TSC offset instead (vm.c) */
	for (uint32_t i = 0; i < s->msrs->nmsrs; i++)
		if (s->msrs->entries[i].index == MSR_IA32_TSC)
			v->held_tsc = s->msrs->entries[i].data;
	/* api.rst KVM_KVMCLOCK_CTRL: EINVAL when the guest has not enabled kvmclock */
	if (kvm_check_cap(v->vm->kvm, KVM_CAP_KVMCLOCK_CTRL) > 0 &&
	    ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		log_warn("KVM_KVMCLOCK_CTRL for vCPU %u failed: %s", v->id, strerror(errno));
	return 0;
}

/* ------------------------------------------------------------ the API */

static bool vcpu_in_run(struct vcpu *v)
{
	pthread_mutex_lock(&v->lock);
	bool running = v->thread_started && v->state == VCPU_RUNNING;
	pthread_mutex_unlock(&v->lock);
	return running;
}

int vcpu_save(struct vcpu *v, struct state_writer *w, struct errbuf *e)
{
	struct vcpu_snap s;
	char id[STATE_ID_MAX + 1];
	int ret;

	if (vcpu_in_run(v))
		return errf(e, EBUSY, "vCPU %u is running: pause it before saving it", v->id);
	memset(&s, 0, sizeof(s));
	if ((ret = snap_from_kvm(v, &s, e)) == 0) {
		snprintf(id, sizeof(id), "vcpu.%u", v->id);
		sw_begin(w, id, VCPU_STATE_VERSION);
		put_snap(w, &s);
		sw_end(w);
		if ((ret = sw_error(w)) < 0)
			errf(e, -ret, "cannot write vCPU %u's state: %s", v->id, strerror(-ret));
	}
	snap_free(&s);
	return ret;
}

int vcpu_restore(struct vcpu *v, struct state_reader *r, uint16_t version, struct errbuf *e)
{
	struct kvm_cpuid2 *here = NULL;
	struct vcpu_snap s;
	char id[STATE_ID_MAX + 1];
	int ret;

	snprintf(id, sizeof(id), "vcpu.%u", v->id);
	if ((ret = vcpu_state_check_version(id, version, VCPU_STATE_MIN_VERSION, VCPU_STATE_VERSION,
	                                    e)) < 0)
		return ret;
	if (vcpu_in_run(v))
		return errf(e, EBUSY, "vCPU %u is running: it cannot be restored", v->id);
	memset(&s, 0, sizeof(s));
	if ((ret = read_snap(r, id, &s, e)) < 0)
		goto out;
	if (s.id != v->id) {
		ret = errf(e, EINVAL, "snapshot: section %s holds the state of vCPU %u", id, s.id);
		goto out;
	}
	/*
	 * What this host gives a vCPU: the table vcpu_create() set, as KVM reports
	 * it back (nested PVM adds host features KVM_GET_SUPPORTED_CPUID omits).
	 */
	if ((ret = vcpu_get_cpuid(v, &here, e)) < 0 ||
	    (ret = cpuid_check_compat(s.cpuid, here, "snapshot", e)) < 0)
		goto out;
	ret = snap_to_kvm(v, &s, e);
out:
	free(here);
	snap_free(&s);
	return ret;
}
