// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/cpu_config.c: applies a CPU template to a vCPU after kiln
 * normalised its CPUID and before it first runs: PUT /cpu-config's custom
 * template (CPUID and MSR bit modifiers), or machine-config's static
 * cpu_template (vcpu/cpu_template.c's tables, turned into the same
 * modifiers once the host may use them). Only one of the two is ever set:
 * the last request wins, as in Firecracker, where both fill the one
 * cpu_template slot of its MachineConfig.
 */
#define LOG_MODULE "vmm"
#include "vmm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static int apply_cpuid(struct vcpu *vc, const struct cpu_config *c, struct errbuf *e)
{
	struct kvm_cpuid2 *cpuid = NULL;
	int ret = vcpu_get_cpuid(vc, &cpuid, e);

	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < c->nr_cpuid; i++) {
		const struct cpuid_modifier *m = &c->cpuid[i];
		const struct cpu_tmpl_cpuid t = {m->leaf, m->subleaf, m->reg, m->mask, m->value};
		if (cpuid_apply_modifier(cpuid, &t) < 0) {
			ret = errf(e, EINVAL,
			           "cpu-config: CPUID leaf %#x subleaf %#x is not "
			           "present on this vCPU",
			           m->leaf, m->subleaf);
			goto out;
		}
	}
	/* a template that clears AVX-512 or XSAVES changes what leaf 0xd must say */
	cpuid_fix_xsave(cpuid);
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

int vmm_cpu_template_for(const char *name, const char signature[12], uint32_t leaf1_eax,
                         struct cpu_config *out, struct errbuf *e)
{
	const struct cpu_template *t = cpu_template_find(name);
	struct errbuf why = {0};
	unsigned n = 0;

	memset(out, 0, sizeof(*out));
	if (!t)
		return errf(e, EINVAL,
		            "Failed to get CPU template: Invalid static CPU template: %s",
		            name ? name : "None");
	if (cpu_template_check_host(t, signature, leaf1_eax, &why) < 0)
		return errf(e, EINVAL, "Failed to get CPU template: %s", why.msg);
	if (cpu_template_rows(t) > CPU_CFG_MAX_MODIFIERS || t->nr_msr > CPU_CFG_MAX_MODIFIERS)
		return errf(e, E2BIG, "CPU template %s has too many modifiers", t->name);
	for (unsigned i = 0; i < cpu_template_rows(t); i++) {
		const struct cpu_tmpl_cpuid *m = cpu_template_row(t, i);
		out->cpuid[n++] = (struct cpuid_modifier){.leaf = m->leaf,
		                                          .subleaf = m->subleaf,
		                                          .reg = m->reg,
		                                          .mask = m->mask,
		                                          .value = m->value};
	}
	out->nr_cpuid = n;
	for (unsigned i = 0; i < t->nr_msr; i++)
		out->msr[i] = (struct msr_modifier){
		        .addr = t->msr[i].addr, .mask = t->msr[i].mask, .value = t->msr[i].value};
	out->nr_msr = t->nr_msr;
	return 0;
}

int vmm_cpu_template(const struct vmm *v, struct cpu_config *out, struct errbuf *e)
{
	char signature[13];
	uint32_t eax;
	int ret;

	if (!v->cfg.machine.cpu_template)
		return 0;
	cpu_host_id(signature, &eax);
	ret = vmm_cpu_template_for(v->cfg.machine.cpu_template, signature, eax, out, e);
	return ret < 0 ? ret : 1;
}
