// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/regs.c: the architectural state every vCPU gets before boot (MSRs,
 * x87/SSE control words, LAPIC local interrupt pins) and thin register
 * accessors for the boot code.
 * MSR numbers and reset values: Intel SDM vol. 4 (MSRs), vol. 3A "Initialization
 * Overview" (state after reset), vol. 3A "Local Vector Table".
 */
#define LOG_MODULE "vcpu"
#include "vcpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_IA32_SYSENTER_CS  0x00000174u
#define MSR_IA32_SYSENTER_ESP 0x00000175u
#define MSR_IA32_SYSENTER_EIP 0x00000176u
#define MSR_IA32_MISC_ENABLE  0x000001a0u
#define MSR_MTRR_DEF_TYPE     0x000002ffu
#define MSR_STAR              0xc0000081u
#define MSR_LSTAR             0xc0000082u
#define MSR_CSTAR             0xc0000083u
#define MSR_SYSCALL_MASK      0xc0000084u
#define MSR_KERNEL_GS_BASE    0xc0000102u

/* IA32_MISC_ENABLE bit 0: fast-string operations enabled */
#define MISC_ENABLE_FAST_STRING 1ull
/* IA32_MTRR_DEF_TYPE: bit 11 E (MTRRs enabled), bits 7:0 default type 6 (WB) */
#define MTRR_DEF_TYPE_E_WB 0x806ull

/* SDM vol. 1 "x87 FPU Control Word" / "MXCSR": FNINIT control word, MXCSR at reset */
#define FPU_FCW_DEFAULT   0x37f
#define FPU_MXCSR_DEFAULT 0x1f80

/* SDM vol. 3A "Local Vector Table": LVT LINT0/LINT1 offsets, delivery mode bits 10:8 */
#define APIC_LVT_LINT0       0x350
#define APIC_LVT_LINT1       0x360
#define APIC_DELIVERY_MASK   0x700u
#define APIC_DELIVERY_NMI    0x400u
#define APIC_DELIVERY_EXTINT 0x700u

struct msr_reset {
	uint32_t index;
	uint64_t value;
};

/* the values Linux expects at boot; only those in the vCPU's MSR list (vcpu_msr_list) are written
 */
static const struct msr_reset msr_reset_values[] = {
        {MSR_IA32_SYSENTER_CS, 0},
        {MSR_IA32_SYSENTER_ESP, 0},
        {MSR_IA32_SYSENTER_EIP, 0},
        {MSR_STAR, 0},
        {MSR_LSTAR, 0},
        {MSR_CSTAR, 0},
        {MSR_SYSCALL_MASK, 0},
        {MSR_KERNEL_GS_BASE, 0},
        {MSR_IA32_TSC, 0},
        {MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
        {MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_E_WB},
};

static int vcpu_init_msrs(struct vcpu *v, struct errbuf *e)
{
	size_t n = ARRAY_SIZE(msr_reset_values);
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + n * sizeof(msrs->entries[0]));
	struct kvm_msrs *list = vcpu_msr_list(v);
	int set, ret = 0;

	if (!msrs || !list) {
		ret = errf(e, ENOMEM, "out of memory for vCPU %u's MSRs", v->id);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!vcpu_msr_listed(list, msr_reset_values[i].index))
			continue;
		msrs->entries[msrs->nmsrs].index = msr_reset_values[i].index;
		msrs->entries[msrs->nmsrs].data = msr_reset_values[i].value;
		msrs->nmsrs++;
	}
	/* KVM_SET_MSRS returns how many it set, stopping at the first it refuses */
	set = msrs->nmsrs ? ioctl(v->fd, KVM_SET_MSRS, msrs) : 0;
	if (set < 0)
		ret = errf(e, errno, "KVM_SET_MSRS for vCPU %u failed: %s", v->id, strerror(errno));
	else if ((uint32_t)set != msrs->nmsrs)
		ret = errf(e, EINVAL, "KVM refused MSR %#x on vCPU %u", msrs->entries[set].index,
		           v->id);
out:
	free(list);
	free(msrs);
	return ret;
}

static int vcpu_init_fpu(struct vcpu *v, struct errbuf *e)
{
	struct kvm_fpu fpu = {.fcw = FPU_FCW_DEFAULT, .mxcsr = FPU_MXCSR_DEFAULT};

	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return errf(e, errno, "KVM_SET_FPU for vCPU %u failed: %s", v->id, strerror(errno));
	return 0;
}

static uint32_t lapic_get(const struct kvm_lapic_state *s, unsigned off)
{
	uint32_t val;
	memcpy(&val, &s->regs[off], sizeof(val));
	return val;
}

static void lapic_set(struct kvm_lapic_state *s, unsigned off, uint32_t val)
{
	memcpy(&s->regs[off], &val, sizeof(val));
}

static void lapic_set_delivery(struct kvm_lapic_state *s, unsigned off, uint32_t mode)
{
	lapic_set(s, off, (lapic_get(s, off) & ~APIC_DELIVERY_MASK) | mode);
}

/* like a PC's BIOS: LINT0 takes the 8259's ExtINT, LINT1 the NMI line */
static int vcpu_init_lapic(struct vcpu *v, struct errbuf *e)
{
	struct kvm_lapic_state lapic;

	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return errf(e, errno, "KVM_GET_LAPIC for vCPU %u failed: %s", v->id,
		            strerror(errno));
	lapic_set_delivery(&lapic, APIC_LVT_LINT0, APIC_DELIVERY_EXTINT);
	lapic_set_delivery(&lapic, APIC_LVT_LINT1, APIC_DELIVERY_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return errf(e, errno, "KVM_SET_LAPIC for vCPU %u failed: %s", v->id,
		            strerror(errno));
	return 0;
}

int vcpu_init_state(struct vcpu *v, struct errbuf *e)
{
	int ret;

	if ((ret = vcpu_init_msrs(v, e)) < 0 || (ret = vcpu_init_fpu(v, e)) < 0 ||
	    (ret = vcpu_init_lapic(v, e)) < 0)
		return ret;
	return 0;
}

int vcpu_get_regs(struct vcpu *v, struct kvm_regs *regs)
{
	return ioctl(v->fd, KVM_GET_REGS, regs) < 0 ? -errno : 0;
}

int vcpu_set_regs(struct vcpu *v, const struct kvm_regs *regs)
{
	return ioctl(v->fd, KVM_SET_REGS, regs) < 0 ? -errno : 0;
}

int vcpu_get_sregs(struct vcpu *v, struct kvm_sregs *sregs)
{
	return ioctl(v->fd, KVM_GET_SREGS, sregs) < 0 ? -errno : 0;
}

int vcpu_set_sregs(struct vcpu *v, const struct kvm_sregs *sregs)
{
	return ioctl(v->fd, KVM_SET_SREGS, sregs) < 0 ? -errno : 0;
}
