// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/cpu_template.c: Firecracker's static CPU templates (machine-config's
 * cpu_template) as kiln's data. Each is a list of CPUID register modifiers
 * (and, for T2S and T2CL, one MSR modifier) laid over the CPUID KVM
 * supports, the same operation as a custom template of PUT /cpu-config:
 * new = (old & ~mask) | (value & mask). The values are those of
 * Firecracker's src/vmm/src/cpu_config/x86_64/static_cpu_templates/ (C3:
 * an Ivy Bridge-EP with the features EC2's C3 lacks cleared; T2: a Haswell
 * E5-2676 v3 as seen in t2.micro; T2S: T2 with a fixed
 * IA32_ARCH_CAPABILITIES for secure migration between Skylake and Cascade
 * Lake; T2CL and T2A: one instruction set on Intel Cascade Lake / Ice Lake
 * and AMD Milan). Which hosts may use each is Firecracker's rule too
 * (custom_cpu_template.rs, get_cpu_template(): the vendor, then the model).
 * Bit names: Intel SDM vol. 2A "CPUID", AMD APM vol. 3 appendix E, Intel's
 * "CPUID Enumeration and Architectural MSRs".
 */
#include "vcpu.h"

#include <cpuid.h>
#include <errno.h>
#include <string.h>

#define MSR_IA32_ARCH_CAPABILITIES 0x10au

/* processor signatures (leaf 0x1 EAX & CPU_MODEL_MASK), Firecracker's cpu_model.rs */
#define FMS_SKYLAKE      0x00050654u
#define FMS_CASCADE_LAKE 0x00050657u
#define FMS_ICE_LAKE     0x000606a6u
#define FMS_MILAN        0x00a00f11u

#define R(leaf, sub, reg, mask, value)                                                             \
	{                                                                                          \
		leaf, sub, CPUID_##reg, mask, value                                                \
	}

/*
 * Shared by T2, T2S, T2CL and T2A.
 * 0x1 EAX: family 6, model 0x3f, stepping 2 (Haswell-EP), processor type 0.
 * 0x1 ECX cleared: DTES64, MONITOR, DS-CPL, VMX, SMX, EIST, TM2, CNXT-ID,
 *   SDBG, xTPR, PDCM, DCA.
 * 0x1 EDX set: MCE, MTRR; cleared: PSN, DS, ACPI, SS, TM, IA-64, PBE.
 * 0x7 EBX set: ERMS; cleared: SGX, HLE, RTM, RDT-M, MPX, RDT-A, AVX512F,
 *   AVX512DQ, RDSEED, ADX, AVX512_IFMA, bit 22, CLFLUSHOPT, CLWB, PT,
 *   AVX512PF, AVX512ER, AVX512CD, SHA, AVX512BW, AVX512VL.
 * 0x7 ECX cleared: AVX512_VBMI, UMIP, PKU, OSPKE, AVX512_VBMI2, GFNI, VAES,
 *   VPCLMULQDQ, AVX512_VNNI, AVX512_BITALG, AVX512_VPOPCNTDQ, LA57, RDPID,
 *   SGX_LC.
 * 0x7 EDX cleared: AVX512_4VNNIW, AVX512_4FMAPS, FSRM, AVX512_VP2INTERSECT.
 * 0xd.0 EAX cleared: the MPX, AVX-512 and PKRU state components.
 * 0xd.1 EAX cleared: XSAVEC, XGETBV with ECX=1, XSAVES.
 */
static const struct cpu_tmpl_cpuid t2_base[] = {
        R(0x1, 0, EAX, 0x0fff3fff, 0x000306f2), R(0x1, 0, ECX, 0x0004cdfc, 0),
        R(0x1, 0, EDX, 0xe8641080, 0x00001080), R(0x7, 0, EBX, 0xffefda14, 0x00000200),
        R(0x7, 0, ECX, 0x40415f5e, 0),          R(0x7, 0, EDX, 0x0000011c, 0),
        R(0xd, 0, EAX, 0x000002f8, 0),          R(0xd, 1, EAX, 0x0000000e, 0),
};

/*
 * T2 and T2S: 0x80000001 ECX cleared: PREFETCHW, MONITORX; EDX cleared:
 * 1-GByte pages. 0x80000008 EBX cleared: WBNOINVD.
 */
static const struct cpu_tmpl_cpuid t2_own[] = {
        R(0x80000001, 0, ECX, 0x20000100, 0),
        R(0x80000001, 0, EDX, 0x04000000, 0),
        R(0x80000008, 0, EBX, 0x00000200, 0),
};

/*
 * T2CL: 0x80000001 ECX cleared: SSE4A, MisAlignSse, PREFETCHW, MONITORX
 * (AMD's names; reserved on Intel); EDX cleared: MmxExt, MMX, FXSR, FFXSR,
 * 1-GByte pages. 0x80000008 EBX cleared: WBNOINVD.
 */
static const struct cpu_tmpl_cpuid t2cl_own[] = {
        R(0x80000001, 0, ECX, 0x200001c0, 0),
        R(0x80000001, 0, EDX, 0x07c00000, 0),
        R(0x80000008, 0, EBX, 0x00000200, 0),
};

/*
 * T2A: 0x80000001 ECX cleared: SVM, SSE4A, MisAlignSse, 3DNowPrefetch,
 * MONITORX; EDX cleared: MmxExt, FFXSR, 1-GByte pages. 0x80000008 EBX set:
 * RstrFpErrPtrs, IbrsPreferred, IbrsSameMode, EferLmsleUnsupported;
 * cleared: CLZERO, WBNOINVD.
 */
static const struct cpu_tmpl_cpuid t2a_own[] = {
        R(0x80000001, 0, ECX, 0x200001c4, 0),
        R(0x80000001, 0, EDX, 0x06400000, 0),
        R(0x80000008, 0, EBX, 0x001c0205, 0x001c0004),
};

/*
 * C3: 0x1 EAX family 6, model 0x3e, stepping 4 (Ivy Bridge-EP), processor type 0.
 * 0x1 ECX cleared: DTES64, MONITOR, DS-CPL, VMX, TM2, CNXT-ID, SDBG, FMA,
 *   xTPR, PDCM, MOVBE.
 * 0x1 EDX set: MCE, MTRR; cleared: PSN, DS, ACPI, SS, TM, PBE.
 * 0x7 EBX cleared: SGX, BMI1, HLE, AVX2, BMI2, INVPCID, RTM, RDT-M, MPX,
 *   RDT-A, AVX512F, AVX512DQ, RDSEED, ADX, AVX512_IFMA, CLFLUSHOPT, CLWB,
 *   PT, AVX512PF, AVX512ER, AVX512CD, SHA, AVX512BW, AVX512VL.
 * 0x7 ECX cleared: AVX512_VBMI, UMIP, PKU, OSPKE, AVX512_VNNI,
 *   AVX512_VPOPCNTDQ, LA57, RDPID, SGX_LC.
 * 0x7 EDX cleared: AVX512_4VNNIW, AVX512_4FMAPS.
 * 0xd as T2. 0x80000001 ECX cleared: LZCNT, PREFETCHW; EDX cleared:
 * 1-GByte pages.
 */
static const struct cpu_tmpl_cpuid c3_own[] = {
        R(0x1, 0, EAX, 0x0fff3fff, 0x000306e4), R(0x1, 0, ECX, 0x0040dd3c, 0),
        R(0x1, 0, EDX, 0xa8641080, 0x00001080), R(0x7, 0, EBX, 0xffafdd3c, 0),
        R(0x7, 0, ECX, 0x4041481e, 0),          R(0x7, 0, EDX, 0x0000000c, 0),
        R(0xd, 0, EAX, 0x000002f8, 0),          R(0xd, 1, EAX, 0x0000000e, 0),
        R(0x80000001, 0, ECX, 0x00000120, 0),   R(0x80000001, 0, EDX, 0x04000000, 0),
};

/*
 * T2S: IA32_ARCH_CAPABILITIES fixed to RSBA, SKIP_L1DFL_VMENTRY,
 * IF_PSCHANGE_MC_NO, MISC_PACKAGE_CTLS, ENERGY_FILTERING_CTL, FB_CLEAR,
 * RRSBA, GDS_NO and RFDS_NO, every other bit clear: what the most
 * vulnerable of Skylake and Cascade Lake can promise.
 */
static const struct cpu_tmpl_msr t2s_msr[] = {
        {MSR_IA32_ARCH_CAPABILITIES, ~0ull, 0x0c0a0c4cull},
};

/*
 * T2CL: IA32_ARCH_CAPABILITIES keeps the mitigation bits KVM passes
 * through (RDCL_NO .. TAA_NO, SBDR_SSDP_NO, FBSDP_NO, PSDP_NO, FB_CLEAR,
 * RRSBA, PBRSB_NO, GDS_NO, RFDS_NO, RFDS_CLEAR); clears MCU_CONTROL,
 * MISC_PACKAGE_CTLS, ENERGY_FILTERING_CTL, DOITM, bit 16, FB_CLEAR_CTRL,
 * BHI_NO, XAPIC_DISABLE_STATUS, bit 22, OVERCLOCKING_STATUS, GDS_CTRL and
 * bits 29-63.
 */
static const struct cpu_tmpl_msr t2cl_msr[] = {
        {MSR_IA32_ARCH_CAPABILITIES, 0xffffffffe2f51e00ull, 0},
};

static const uint32_t models_sky_cas_ice[] = {FMS_SKYLAKE, FMS_CASCADE_LAKE, FMS_ICE_LAKE};
static const uint32_t models_sky_cas[] = {FMS_SKYLAKE, FMS_CASCADE_LAKE};
static const uint32_t models_cas_ice[] = {FMS_CASCADE_LAKE, FMS_ICE_LAKE};
static const uint32_t models_milan[] = {FMS_MILAN};

#define LIST(name, a) .name = a, .nr_##name = ARRAY_SIZE(a)

static const struct cpu_template templates[] = {
        {.name = "C3",
         .vendor = CPU_VENDOR_INTEL,
         .hosts = "Intel Skylake, Cascade Lake and Ice Lake",
         LIST(models, models_sky_cas_ice),
         LIST(own, c3_own)},
        {.name = "T2",
         .vendor = CPU_VENDOR_INTEL,
         .hosts = "Intel Skylake, Cascade Lake and Ice Lake",
         LIST(models, models_sky_cas_ice),
         LIST(base, t2_base),
         LIST(own, t2_own)},
        {.name = "T2S",
         .vendor = CPU_VENDOR_INTEL,
         .hosts = "Intel Skylake and Cascade Lake",
         LIST(models, models_sky_cas),
         LIST(base, t2_base),
         LIST(own, t2_own),
         LIST(msr, t2s_msr)},
        {.name = "T2CL",
         .vendor = CPU_VENDOR_INTEL,
         .hosts = "Intel Cascade Lake and Ice Lake",
         LIST(models, models_cas_ice),
         LIST(base, t2_base),
         LIST(own, t2cl_own),
         LIST(msr, t2cl_msr)},
        {.name = "T2A",
         .vendor = CPU_VENDOR_AMD,
         .hosts = "AMD Milan",
         LIST(models, models_milan),
         LIST(base, t2_base),
         LIST(own, t2a_own)},
};

const struct cpu_template *cpu_template_find(const char *name)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(templates); i++)
		if (strcmp(templates[i].name, name) == 0)
			return &templates[i];
	return NULL;
}

unsigned cpu_template_rows(const struct cpu_template *t)
{
	return t->nr_base + t->nr_own;
}

const struct cpu_tmpl_cpuid *cpu_template_row(const struct cpu_template *t, unsigned i)
{
	return i < t->nr_base ? &t->base[i] : &t->own[i - t->nr_base];
}

enum cpu_vendor cpu_vendor_of(const char signature[12])
{
	if (memcmp(signature, "GenuineIntel", 12) == 0)
		return CPU_VENDOR_INTEL;
	if (memcmp(signature, "AuthenticAMD", 12) == 0)
		return CPU_VENDOR_AMD;
	return CPU_VENDOR_OTHER;
}

void cpu_host_id(char signature[13], uint32_t *leaf1_eax)
{
	unsigned a = 0, b = 0, c = 0, d = 0;

	__cpuid(0, a, b, c, d);
	memcpy(signature, &b, 4);
	memcpy(signature + 4, &d, 4);
	memcpy(signature + 8, &c, 4);
	signature[12] = '\0';
	__cpuid(1, a, b, c, d);
	*leaf1_eax = a;
}

static const char *vendor_name(enum cpu_vendor v)
{
	return v == CPU_VENDOR_INTEL ? "Intel" : v == CPU_VENDOR_AMD ? "AMD" : "other";
}

int cpu_template_check_host(const struct cpu_template *t, const char signature[12], uint32_t eax,
                            struct errbuf *e)
{
	uint32_t fms = eax & CPU_MODEL_MASK;

	if (cpu_vendor_of(signature) != t->vendor)
		return errf(e, EINVAL,
		            "CPU vendor mismatched between actual CPU and CPU template. (%s is "
		            "for %s processors; this host's is %.12s)",
		            t->name, vendor_name(t->vendor), signature);
	for (unsigned i = 0; i < t->nr_models; i++)
		if (t->models[i] == fms)
			return 0;
	unsigned family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
	unsigned model = ((eax >> 16) & 0xf) << 4 | ((eax >> 4) & 0xf);
	return errf(e, EINVAL,
	            "The current CPU model is not permitted to apply the CPU template. (%s is "
	            "for %s; this host is family %u, model %u (%#x), stepping %u; a custom "
	            "template through PUT /cpu-config has no such limit)",
	            t->name, t->hosts, family, model, model, eax & 0xf);
}

int cpuid_apply_modifier(struct kvm_cpuid2 *c, const struct cpu_tmpl_cpuid *m)
{
	struct kvm_cpuid_entry2 *ent = cpuid_entry(c, m->leaf, m->subleaf);
	uint32_t *r;

	if (!ent)
		return -ENOENT;
	switch (m->reg) {
	case CPUID_EAX:
		r = &ent->eax;
		break;
	case CPUID_EBX:
		r = &ent->ebx;
		break;
	case CPUID_ECX:
		r = &ent->ecx;
		break;
	default:
		r = &ent->edx;
		break;
	}
	*r = (*r & ~m->mask) | (m->value & m->mask);
	return 0;
}

int cpu_template_apply_cpuid(struct kvm_cpuid2 *c, const struct cpu_template *t, struct errbuf *e)
{
	for (unsigned i = 0; i < cpu_template_rows(t); i++) {
		const struct cpu_tmpl_cpuid *m = cpu_template_row(t, i);
		if (cpuid_apply_modifier(c, m) < 0)
			return errf(
			        e, ENOENT,
			        "Template changes a CPUID entry not supported by KVM: Leaf: %#x, "
			        "Subleaf: %#x (CPU template %s)",
			        m->leaf, m->subleaf, t->name);
	}
	cpuid_fix_xsave(c);
	return 0;
}
