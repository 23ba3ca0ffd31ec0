// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/cpu_config.c: applies PUT /cpu-config (Firecracker's custom CPU
 * template: CPUID and MSR bit modifiers) to a vCPU after kiln normalised
 * its CPUID and before it first runs.
 */
#define LOG_MODULE "vmm"
#include "vmm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static uint32_t *cpuid_reg(struct kvm_cpuid_entry2 *ent, uint8_t reg)
{
	switch (reg) {
	case 0:
		return &ent->eax;
	case 1:
		return &ent->ebx;
	case 2:
		return &ent->ecx;
	default:
		return &ent->edx;
	}
}

static int apply_cpuid(struct vcpu *vc, const struct cpu_config *c, struct errbuf *e)
{
	struct kvm_cpuid2 *cpuid = NULL;
	int ret = vcpu_get_cpuid(vc, &cpuid, e);

	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < c->nr_cpuid; i++) {
		const struct cpuid_modifier *m = &c->cpuid[i];
		bool found = false;
		for (unsigned j = 0; j < cpuid->nent; j++) {
			struct kvm_cpuid_entry2 *ent = &cpuid->entries[j];
			if (ent->function != m->leaf || ent->index != m->subleaf)
				continue;
			uint32_t *r = cpuid_reg(ent, m->reg);
			*r = (*r & ~m->mask) | (m->value & m->mask);
			found = true;
		}
		if (!found) {
			ret = errf(e, EINVAL,
			           "cpu-config: CPUID leaf %#x subleaf %#x is not "
			           "present on this vCPU",
			           m->leaf, m->subleaf);
			goto out;
		}
	}
	if (ioctl(vc->fd, KVM_SET_CPUID2, cpuid) < 0)
		ret = errf(e, errno, "cpu-config: KVM_SET_CPUID2 refused the modified CPUID: %s",
		           strerror(errno));
out:
	free(cpuid);
	return ret;
}

static int apply_msr(struct vcpu *vc, const struct msr_modifier *m, struct errbuf *e)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry ent;
	} msrs = {.hdr.nmsrs = 1, .ent.index = m->addr};

	if (ioctl(vc->fd, KVM_GET_MSRS, &msrs) != 1)
		return errf(e, EINVAL, "cpu-config: MSR %#x cannot be read on this host", m->addr);
	msrs.ent.data = (msrs.ent.data & ~m->mask) | (m->value & m->mask);
	if (ioctl(vc->fd, KVM_SET_MSRS, &msrs) != 1)
		return errf(e, EINVAL, "cpu-config: MSR %#x refused the value %#llx", m->addr,
		            (unsigned long long)msrs.ent.data);
	return 0;
}

int vmm_apply_cpu_config(struct vcpu *vc, const struct cpu_config *c, struct errbuf *e)
{
	int ret = c->nr_cpuid ? apply_cpuid(vc, c, e) : 0;
	for (unsigned i = 0; ret == 0 && i < c->nr_msr; i++)
		ret = apply_msr(vc, &c->msr[i], e);
	return ret;
}
