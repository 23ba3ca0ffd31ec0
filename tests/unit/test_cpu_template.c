// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_cpu_template.c: Firecracker's static CPU templates
 * (vcpu/cpu_template.c) applied to a sample CPUID, leaf 0xd kept
 * consistent (cpuid_fix_xsave), which hosts may use each template
 * (daemon/cpu_config.c), and machine-config's cpu_template as the API and
 * the config file read it.
 */
#include "api/config.h"
#include "api/parse_int.h"
#include "daemon/vmm.h"
#include "vcpu/vcpu.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SIG    KVM_CPUID_FLAG_SIGNIFCANT_INDEX
#define BIT(n) (1u << (n))

#define FMS_CASCADE_LAKE 0x00050657u
#define FMS_SKYLAKE      0x00050654u
#define FMS_MILAN        0x00a00f11u
#define FMS_EMERALD      0x000c06f2u /* this project's build host: family 6, model 0xcf */

struct leaf {
	uint32_t fn, index, flags, eax, ebx, ecx, edx;
};

/*
 * An Intel host with everything on: leaf 1 ECX/EDX and leaf 7 all ones
 * (XSAVE, AVX, AVX-512, PKU, MPX included), the standard XSAVE layout of
 * a Skylake-SP (AVX 256 bytes at 576, MPX at 960 and 1024, AVX-512 at
 * 1088, 1152, 1664, PKRU at 2688: 2696 bytes in all) and XSAVEOPT,
 * XSAVEC, XGETBV1 and XSAVES in 0xd.1 EAX.
 */
static const struct leaf host[] = {
        {0x0, 0, 0, 0x16, 0x756e6547, 0x6c65746e, 0x49656e69},
        {0x1, 0, 0, 0x00003000 | FMS_CASCADE_LAKE, 0x00100800, 0xffffffff, 0xffffffff},
        {0x7, 0, SIG, 0, 0xffffffff, 0xffffffff, 0xffffffff},
        {0xd, 0, SIG, 0x2ff, 0, 0, 0},
        {0xd, 1, SIG, 0xf, 0, 0, 0},
        {0xd, 2, SIG, 256, 576, 0, 0},
        {0xd, 3, SIG, 64, 960, 0, 0},
        {0xd, 4, SIG, 64, 1024, 0, 0},
        {0xd, 5, SIG, 64, 1088, 0, 0},
        {0xd, 6, SIG, 512, 1152, 0, 0},
        {0xd, 7, SIG, 1024, 1664, 0, 0},
        {0xd, 9, SIG, 8, 2688, 0, 0},
        {0x80000001, 0, 0, 0, 0, 0xffffffff, 0xffffffff},
        {0x80000008, 0, 0, 0x3030, 0xffffffff, 0, 0},
};

static struct kvm_cpuid2 *table(void)
{
	size_t n = ARRAY_SIZE(host);
	struct kvm_cpuid2 *c =
	        calloc(1, sizeof(*c) + (n + CPUID_EXTRA_ENTRIES) * sizeof(c->entries[0]));
	cr_assert_not_null(c);
	for (size_t i = 0; i < n; i++)
		c->entries[i] = (struct kvm_cpuid_entry2){.function = host[i].fn,
		                                          .index = host[i].index,
		                                          .flags = host[i].flags,
		                                          .eax = host[i].eax,
		                                          .ebx = host[i].ebx,
		                                          .ecx = host[i].ecx,
		                                          .edx = host[i].edx};
	c->nent = (uint32_t)n;
	return c;
}

static struct kvm_cpuid_entry2 *ent(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	struct kvm_cpuid_entry2 *x = cpuid_entry(c, fn, index);
	cr_assert_not_null(x, "leaf %#x.%u missing", fn, index);
	return x;
}

static struct kvm_cpuid2 *templated(const char *name)
{
	struct kvm_cpuid2 *c = table();
	struct errbuf e = {0};
	const struct cpu_template *t = cpu_template_find(name);

	cr_assert_not_null(t, "%s", name);
	cr_assert_eq(cpu_template_apply_cpuid(c, t, &e), 0, "%s: %s", name, e.msg);
	return c;
}

Test(cpu_template, names_are_firecrackers)
{
	static const char *const names[] = {"C3", "T2", "T2S", "T2CL", "T2A"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const struct cpu_template *t = cpu_template_find(names[i]);
		cr_assert_not_null(t, "%s", names[i]);
		cr_expect_str_eq(t->name, names[i]);
		/* every value bit lies inside its mask: a table typo shows here */
		for (unsigned j = 0; j < cpu_template_rows(t); j++) {
			const struct cpu_tmpl_cpuid *m = cpu_template_row(t, j);
			cr_expect_eq(m->value & ~m->mask, 0, "%s leaf %#x", names[i], m->leaf);
		}
	}
	cr_expect_null(cpu_template_find("None"));
	cr_expect_null(cpu_template_find("t2"));
	cr_expect_null(cpu_template_find("T3"));
	cr_expect_null(cpu_template_find(NULL));
}

Test(cpu_template, t2_sets_and_clears_the_documented_bits)
{
	struct kvm_cpuid2 *c = templated("T2");
	struct kvm_cpuid_entry2 *l1 = ent(c, 1, 0), *l7 = ent(c, 7, 0);

	/* Haswell-EP's signature, processor type (bits 13:12) included */
	cr_expect_eq(l1->eax, 0x000306f2, "%#x", l1->eax);
	cr_expect_eq(l1->ecx & (BIT(3) | BIT(5) | BIT(15) | BIT(18)), 0, "MONITOR VMX PDCM DCA");
	cr_expect_eq(l1->ecx & (BIT(0) | BIT(12) | BIT(26) | BIT(28)),
	             BIT(0) | BIT(12) | BIT(26) | BIT(28), "SSE3 FMA XSAVE AVX are kept");
	cr_expect_eq(l1->edx & (BIT(7) | BIT(12)), BIT(7) | BIT(12), "MCE MTRR");
	cr_expect_eq(l1->edx & (BIT(18) | BIT(21) | BIT(31)), 0, "PSN DS PBE");
	cr_expect_eq(l7->ebx & (BIT(16) | BIT(17) | BIT(30) | BIT(31)), 0, "AVX512F DQ BW VL");
	cr_expect_eq(l7->ebx & (BIT(4) | BIT(11) | BIT(14) | BIT(29)), 0, "HLE RTM MPX SHA");
	cr_expect(l7->ebx & BIT(9), "ERMS");
	cr_expect_eq(l7->ebx & (BIT(0) | BIT(3) | BIT(5) | BIT(8)),
	             BIT(0) | BIT(3) | BIT(5) | BIT(8), "FSGSBASE BMI1 AVX2 BMI2 are kept");
	cr_expect_eq(l7->ecx & (BIT(3) | BIT(16) | BIT(22)), 0, "PKU LA57 RDPID");
	cr_expect_eq(l7->edx & (BIT(4) | BIT(8)), 0, "FSRM VP2INTERSECT");
	cr_expect_eq(ent(c, 0x80000001, 0)->ecx & (BIT(8) | BIT(29)), 0, "PREFETCHW MONITORX");
	cr_expect_eq(ent(c, 0x80000001, 0)->edx & BIT(26), 0, "1-GByte pages");
	cr_expect_eq(ent(c, 0x80000008, 0)->ebx & BIT(9), 0, "WBNOINVD");
	free(c);
}

/* T2 cleared XCR0's MPX, AVX-512 and PKRU and XSAVEC/XSAVES: the sizes follow */
Test(cpu_template, t2_leaves_leaf_0xd_consistent)
{
	struct kvm_cpuid2 *c = templated("T2");
	struct kvm_cpuid_entry2 *d0 = ent(c, 0xd, 0), *d1 = ent(c, 0xd, 1);

	cr_expect_eq(d0->eax, 0x7, "x87 SSE AVX only: %#x", d0->eax);
	cr_expect_eq(d0->ebx, 832, "%u", d0->ebx);
	cr_expect_eq(d0->ecx, 832, "%u", d0->ecx);
	cr_expect_eq(d1->eax, 0x1, "XSAVEOPT only: %#x", d1->eax);
	cr_expect_eq(d1->ebx, 0, "no compacted format: %u", d1->ebx);
	cr_expect_eq(ent(c, 0xd, 2)->eax, 256, "AVX's sub-leaf stays");
	for (uint32_t i = 3; i <= 9; i++)
		if (cpuid_entry(c, 0xd, i))
			cr_expect_eq(ent(c, 0xd, i)->eax | ent(c, 0xd, i)->ebx, 0, "0xd.%u zeroed",
			             i);
	free(c);
}

Test(cpu_template, c3_clears_what_t2_keeps)
{
	struct kvm_cpuid2 *c3 = templated("C3"), *t2 = templated("T2");

	cr_expect_eq(ent(c3, 1, 0)->eax, 0x000306e4, "Ivy Bridge-EP: %#x", ent(c3, 1, 0)->eax);
	cr_expect_eq(ent(c3, 7, 0)->ebx & (BIT(3) | BIT(5) | BIT(8) | BIT(9)), BIT(9),
	             "BMI1 AVX2 BMI2 cleared, ERMS kept");
	cr_expect_eq(ent(c3, 1, 0)->ecx & (BIT(12) | BIT(22)), 0, "FMA MOVBE");
	cr_expect_eq(ent(c3, 0x80000001, 0)->ecx & BIT(5), 0, "LZCNT");
	cr_expect(ent(c3, 0x80000008, 0)->ebx & BIT(9), "C3 leaves WBNOINVD alone");
	cr_expect_eq(ent(t2, 7, 0)->ebx & (BIT(3) | BIT(5) | BIT(8)), BIT(3) | BIT(5) | BIT(8));
	cr_expect_eq(ent(t2, 1, 0)->ecx & (BIT(12) | BIT(22)), BIT(12) | BIT(22));
	free(c3);
	free(t2);
}

Test(cpu_template, t2cl_and_t2a_extended_leaves)
{
	struct kvm_cpuid2 *cl = templated("T2CL"), *a = templated("T2A");

	cr_expect_eq(ent(cl, 0x80000001, 0)->edx & 0x07c00000, 0, "MmxExt MMX FXSR FFXSR 1G");
	cr_expect_eq(ent(cl, 0x80000001, 0)->ecx & BIT(2), BIT(2), "T2CL leaves bit 2 alone");
	cr_expect_eq(ent(a, 0x80000001, 0)->ecx & (BIT(2) | BIT(6)), 0, "SVM SSE4A");
	cr_expect(ent(a, 0x80000001, 0)->edx & BIT(23), "T2A keeps MMX");
	/* RstrFpErrPtrs, IbrsPreferred, IbrsSameMode, EferLmsleUnsupported set; CLZERO, WBNOINVD
	 * not */
	cr_expect_eq(ent(a, 0x80000008, 0)->ebx & 0x001c0205, 0x001c0004, "%#x",
	             ent(a, 0x80000008, 0)->ebx);
	free(cl);
	free(a);
}

Test(cpu_template, a_missing_leaf_is_named)
{
	struct kvm_cpuid2 *c = table();
	struct errbuf e = {0};

	c->nent--; /* drops 0x80000008 */
	cr_expect_eq(cpu_template_apply_cpuid(c, cpu_template_find("T2"), &e), -ENOENT);
	cr_expect(strstr(e.msg, "Leaf: 0x80000008, Subleaf: 0"), "%s", e.msg);
	free(c);
}

/* ------------------------------------------------------------- leaf 0xd */

Test(cpu_template, xsave_sizes_follow_the_components)
{
	struct kvm_cpuid2 *c = table();
	cpuid_fix_xsave(c);
	struct kvm_cpuid_entry2 *d0 = ent(c, 0xd, 0), *d1 = ent(c, 0xd, 1);

	cr_expect_eq(d0->eax, 0x2ff, "%#x", d0->eax);
	cr_expect_eq(d0->ecx, 2696, "standard size, PKRU ends at 2696: %u", d0->ecx);
	cr_expect_eq(d0->ebx, 2696, "%u", d0->ebx);
	/* compacted: 576 + 256 + 64 + 64 + 64 + 512 + 1024 + 8 */
	cr_expect_eq(d1->ebx, 2568, "%u", d1->ebx);
	free(c);
}

/* the test bed's symptom: a component announced whose size the table lacks */
Test(cpu_template, xsave_drops_a_component_without_its_subleaf)
{
	struct kvm_cpuid2 *c = table();
	ent(c, 0xd, 9)->eax = 0; /* PKRU of size 0 */
	cpuid_fix_xsave(c);

	cr_expect_eq(ent(c, 0xd, 0)->eax, 0xff, "%#x", ent(c, 0xd, 0)->eax);
	cr_expect_eq(ent(c, 0xd, 0)->ecx, 2688, "%u", ent(c, 0xd, 0)->ecx);
	free(c);
}

/* a custom template that clears AVX512F but forgets leaf 0xd */
Test(cpu_template, xsave_follows_the_feature_flags)
{
	struct kvm_cpuid2 *c = table();
	ent(c, 7, 0)->ebx &= ~BIT(16);
	ent(c, 7, 0)->ecx &= ~BIT(3); /* PKU */
	cpuid_fix_xsave(c);

	cr_expect_eq(ent(c, 0xd, 0)->eax, 0x1f, "x87 SSE AVX MPX: %#x", ent(c, 0xd, 0)->eax);
	cr_expect_eq(ent(c, 0xd, 0)->ecx, 1088, "MPX's BNDCSR ends at 1088: %u",
	             ent(c, 0xd, 0)->ecx);
	cr_expect_eq(ent(c, 0xd, 6)->eax, 0, "ZMM_Hi256's sub-leaf zeroed");
	free(c);
}

/* kiln's normalisation runs the same fix: a leaf announcing a size the sub-leaves deny */
Test(cpu_template, normalize_fixes_leaf_0xd)
{
	struct kvm_cpuid2 *c = table();
	ent(c, 0xd, 0)->ebx = ent(c, 0xd, 0)->ecx = 576; /* stale sizes */
	ent(c, 0xd, 0)->edx = 1u << 18;                  /* XTILEDATA, without AMX or a sub-leaf */

	cr_assert_eq(cpuid_normalize(c, 0, 1, false), 0);
	cr_expect_eq(ent(c, 0xd, 0)->eax, 0x2ff, "%#x", ent(c, 0xd, 0)->eax);
	cr_expect_eq(ent(c, 0xd, 0)->edx, 0, "%#x", ent(c, 0xd, 0)->edx);
	cr_expect_eq(ent(c, 0xd, 0)->ecx, 2696, "%u", ent(c, 0xd, 0)->ecx);
	free(c);
}

Test(cpu_template, no_xsave_zeroes_leaf_0xd)
{
	struct kvm_cpuid2 *c = table();
	ent(c, 1, 0)->ecx &= ~BIT(26);
	cpuid_fix_xsave(c);

	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0xd)
			cr_expect_eq(c->entries[i].eax | c->entries[i].ebx | c->entries[i].ecx |
			                     c->entries[i].edx,
			             0, "0xd.%u", c->entries[i].index);
	free(c);
}

/* ------------------------------------------------------- which hosts */

static int for_host(const char *name, const char *sig, uint32_t eax, struct cpu_config *out,
                    struct errbuf *e)
{
	return vmm_cpu_template_for(name, sig, eax, out, e);
}

Test(cpu_template, intel_templates_are_refused_on_amd)
{
	static const char *const intel[] = {"C3", "T2", "T2S", "T2CL"};
	struct cpu_config cc;
	struct errbuf e = {0};

	for (size_t i = 0; i < ARRAY_SIZE(intel); i++) {
		cr_expect_eq(for_host(intel[i], "AuthenticAMD", FMS_MILAN, &cc, &e), -EINVAL);
		cr_expect(strstr(e.msg, "Failed to get CPU template: CPU vendor mismatched between "
		                        "actual CPU and CPU template."),
		          "%s", e.msg);
		cr_expect(strstr(e.msg, "AuthenticAMD"), "%s", e.msg);
	}
	cr_expect_eq(for_host("T2A", "GenuineIntel", FMS_CASCADE_LAKE, &cc, &e), -EINVAL);
	cr_expect(strstr(e.msg, "CPU vendor mismatched") && strstr(e.msg, "T2A is for AMD"), "%s",
	          e.msg);
	cr_expect_eq(for_host("T2A", "HygonGenuine", FMS_MILAN, &cc, &e), -EINVAL);
}

Test(cpu_template, models_outside_the_list_are_refused)
{
	struct cpu_config cc;
	struct errbuf e = {0};

	cr_expect_eq(for_host("T2", "GenuineIntel", FMS_EMERALD, &cc, &e), -EINVAL);
	cr_expect(strstr(e.msg,
	                 "The current CPU model is not permitted to apply the CPU template.") &&
	                  strstr(e.msg, "model 207 (0xcf)"),
	          "%s", e.msg);
	cr_expect_eq(for_host("T2S", "GenuineIntel", 0x000606a6, &cc, &e), -EINVAL, "Ice Lake");
	cr_expect_eq(for_host("T2CL", "GenuineIntel", FMS_SKYLAKE, &cc, &e), -EINVAL);
	cr_expect_eq(for_host("T2A", "AuthenticAMD", 0x00a00f10, &cc, &e), -EINVAL, "stepping 0");
	cr_expect_eq(for_host("None", "GenuineIntel", FMS_SKYLAKE, &cc, &e), -EINVAL);
}

Test(cpu_template, allowed_hosts_get_the_modifiers)
{
	struct cpu_config cc;
	struct errbuf e = {0};

	/* the processor type bits (13:12) do not count, as in Firecracker's CpuModel */
	cr_assert_eq(for_host("T2", "GenuineIntel", 0x3000 | FMS_CASCADE_LAKE, &cc, &e), 0, "%s",
	             e.msg);
	cr_expect_eq(cc.nr_cpuid, 11);
	cr_expect_eq(cc.nr_msr, 0);
	cr_assert_eq(for_host("T2S", "GenuineIntel", FMS_SKYLAKE, &cc, &e), 0, "%s", e.msg);
	cr_expect_eq(cc.nr_msr, 1);
	cr_expect(cc.msr[0].addr == 0x10a && cc.msr[0].mask == ~0ull &&
	          cc.msr[0].value == 0x0c0a0c4cull);
	cr_assert_eq(for_host("T2CL", "GenuineIntel", 0x000606a6, &cc, &e), 0, "%s", e.msg);
	cr_expect(cc.msr[0].addr == 0x10a && cc.msr[0].value == 0 && (cc.msr[0].mask & 0x3f) == 0,
	          "RDCL_NO .. MDS_NO pass through");
	cr_assert_eq(for_host("T2A", "AuthenticAMD", FMS_MILAN, &cc, &e), 0, "%s", e.msg);
	cr_expect_eq(cc.nr_cpuid, 11);
	cr_assert_eq(for_host("C3", "GenuineIntel", FMS_SKYLAKE, &cc, &e), 0, "%s", e.msg);
	cr_expect_eq(cc.nr_cpuid, 10);
}

/* ------------------------------------------- machine-config's cpu_template */

static json_t *js(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	cr_assert_not_null(j, "%s: %s", text, err.text);
	return j;
}

static int parse_machine(const char *text, struct machine_cfg *m, struct errbuf *e)
{
	json_t *j = js(text);
	int ret = cfg_parse_machine(j, m, e);
	json_decref(j);
	return ret;
}

Test(cpu_template, machine_config_takes_the_six_names)
{
	static const char *const names[] = {"C3", "T2", "T2S", "T2CL", "T2A"};
	struct machine_cfg m;
	struct errbuf e = {0};
	char body[128];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(body, sizeof(body),
		         "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": \"%s\"}",
		         names[i]);
		cr_assert_eq(parse_machine(body, &m, &e), 0, "%s: %s", names[i], e.msg);
		cr_expect_str_eq(m.cpu_template, names[i]);
		cr_expect(m.cpu_template_set);
		machine_cfg_free(&m);
	}
	cr_assert_eq(parse_machine("{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": "
	                           "\"None\"}",
	                           &m, &e),
	             0);
	cr_expect(m.cpu_template_set && !m.cpu_template, "None is named, and is no template");
	machine_cfg_free(&m);
	cr_assert_eq(parse_machine("{\"vcpu_count\": 1, \"mem_size_mib\": 64}", &m, &e), 0);
	cr_expect(!m.cpu_template_set && !m.cpu_template);
	machine_cfg_free(&m);
}

Test(cpu_template, machine_config_refuses_other_values)
{
	static const char *const bad[] = {"\"T3\"",   "\"t2\"", "\"T2 \"", "\"\"",
	                                  "\"V1N1\"", "2",      "true"};
	struct machine_cfg m;
	struct errbuf e = {0};
	char body[128];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(body, sizeof(body),
		         "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": %s}", bad[i]);
		cr_expect_eq(parse_machine(body, &m, &e), -EINVAL, "%s", bad[i]);
		cr_expect(strstr(e.msg, "cpu_template"), "%s: %s", bad[i], e.msg);
	}
	parse_machine("{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": \"T3\"}", &m,
	              &e);
	cr_expect(strstr(e.msg, "must be one of \"C3\", \"T2\", \"T2S\", \"T2CL\", \"T2A\" or "
	                        "\"None\" (got \"T3\")"),
	          "%s", e.msg);
}

Test(cpu_template, machine_config_patch_carries_the_template)
{
	struct api_action a;
	struct errbuf e = {0};
	json_t *j = js("{\"cpu_template\": \"T2S\"}");

	memset(&a, 0, sizeof(a));
	cr_assert_eq(api_parse_machine_patch(j, NULL, &a, &e), 0, "%s", e.msg);
	cr_expect(a.u.machine_patch.has_cpu_template && !a.u.machine_patch.has_vcpu_count);
	cr_expect_str_eq(a.u.machine_patch.cpu_template, "T2S");
	json_decref(j);

	j = js("{\"cpu_template\": \"None\"}");
	cr_assert_eq(api_parse_machine_patch(j, NULL, &a, &e), 0, "%s", e.msg);
	cr_expect(a.u.machine_patch.has_cpu_template);
	cr_expect_str_eq(a.u.machine_patch.cpu_template, "");
	json_decref(j);

	j = js("{\"vcpu_count\": 2}");
	cr_assert_eq(api_parse_machine_patch(j, NULL, &a, &e), 0, "%s", e.msg);
	cr_expect(!a.u.machine_patch.has_cpu_template);
	json_decref(j);

	j = js("{\"cpu_template\": \"T9\"}");
	cr_expect_eq(api_parse_machine_patch(j, NULL, &a, &e), -EINVAL);
	cr_expect(strstr(e.msg, "got \"T9\""), "%s", e.msg);
	json_decref(j);
}
