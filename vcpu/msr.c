// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/msr.c: which MSRs make up a vCPU's state on this host -- what
 * vcpu_save() reads, what a restore compares against, what vcpu_create()
 * may initialise. KVM answers it: KVM_GET_MSR_INDEX_LIST ("the guest MSRs
 * that are supported", to be saved and restored), KVM_GET_MSR_FEATURE_INDEX_LIST
 * (feature MSRs, whose per-vCPU value the VMM sets; e.g. AMD's DE_CFG
 * appears only there), and IA32_MTRRCAP for the MTRRs, which KVM emulates
 * on every vCPU without listing them (QEMU saves them by name too).
 * References: Linux Documentation/virt/kvm/api.rst; Intel SDM vol. 3A
 * "Memory Type Range Registers (MTRRs)" (IA32_MTRRCAP: VCNT bits 7:0, FIX
 * bit 8; IA32_MTRR_PHYSBASEn/PHYSMASKn at 0x200 + 2n / 0x201 + 2n), vol. 4
 * for the MSR numbers.
 */
#define LOG_MODULE "vcpu"
#include "vcpu.h"

#include <stdlib.h>
#include <sys/ioctl.h>

#define MSR_IA32_MTRRCAP       0xfeu
#define MTRRCAP_VCNT_MASK      0xffu
#define MTRRCAP_FIX            (1u << 8)
#define MSR_IA32_MTRR_PHYSBASE 0x200u
#define MSR_IA32_PAT           0x277u
#define MSR_IA32_MTRR_DEF_TYPE 0x2ffu
/*
 * The variable-range pairs end below IA32_MTRR_FIX64K_00000 (0x250): a
 * VCNT beyond 40 would name other MSRs, so no more are taken.
 */
#define MTRR_VAR_MAX 40u

/* the fixed-range MTRRs: FIX64K_00000, FIX16K_80000 / A0000, FIX4K_C0000 .. F8000 */
static const uint32_t mtrr_fixed[] = {0x250, 0x258, 0x259, 0x268, 0x269, 0x26a,
                                      0x26b, 0x26c, 0x26d, 0x26e, 0x26f};

/* IA32_MTRRCAP of `v` as KVM reports it; 0 (no MTRRs) when KVM cannot read it */
static uint64_t mtrrcap(struct vcpu *v)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry ent;
	} s = {.m.nmsrs = 1, .ent.index = MSR_IA32_MTRRCAP};

	return ioctl(v->fd, KVM_GET_MSRS, &s) == 1 ? s.ent.data : 0;
}

static void add(struct kvm_msrs *m, uint32_t index)
{
	for (uint32_t i = 0; i < m->nmsrs; i++)
		if (m->entries[i].index == index)
			return;
	m->entries[m->nmsrs++].index = index;
}

static void add_list(struct kvm_msrs *m, const struct kvm_msr_list *l)
{
	for (uint32_t i = 0; l && i < l->nmsrs; i++)
		add(m, l->indices[i]);
}

struct kvm_msrs *vcpu_msr_list(struct vcpu *v)
{
	const struct kvm *k = v->vm->kvm;
	uint64_t cap = mtrrcap(v);
	uint32_t vcnt = (uint32_t)(cap & MTRRCAP_VCNT_MASK);
	size_t max = 2 + ARRAY_SIZE(mtrr_fixed) + 2 * MTRR_VAR_MAX;

	if (vcnt > MTRR_VAR_MAX)
		vcnt = MTRR_VAR_MAX;
	max += k->msr_index_list ? k->msr_index_list->nmsrs : 0;
	max += k->msr_feature_list ? k->msr_feature_list->nmsrs : 0;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + max * sizeof(m->entries[0]));
	if (!m)
		return NULL;
	add_list(m, k->msr_index_list);
	add_list(m, k->msr_feature_list);
	add(m, MSR_IA32_PAT); /* listed by current KVMs; emulated by all */
	if (cap) {
		add(m, MSR_IA32_MTRR_DEF_TYPE);
		for (size_t i = 0; (cap & MTRRCAP_FIX) && i < ARRAY_SIZE(mtrr_fixed); i++)
			add(m, mtrr_fixed[i]);
		for (uint32_t i = 0; i < 2 * vcnt; i++)
			add(m, MSR_IA32_MTRR_PHYSBASE + i);
	}
	return m;
}

bool vcpu_msr_listed(const struct kvm_msrs *list, uint32_t index)
{
	for (uint32_t i = 0; list && i < list->nmsrs; i++)
		if (list->entries[i].index == index)
			return true;
	return false;
}
