// SPDX-License-Identifier: Apache-2.0
/* tests/unit/test_cpuid.c: cpuid_normalize() on synthetic CPUID tables. */
#include "vcpu/vcpu.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX

struct leaf {
	uint32_t fn, index, flags, eax, ebx, ecx, edx;
};

/* a small host-like table, with junk where the normaliser must overwrite */
static const struct leaf host_leaves[] = {
        {0x0, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69},
        {0x1, 0, 0, 0x000906ea, 0x07100800, 0x7ffafbbf | (1u << 5), 0xbfebfbff},
        {0x4, 0, SIG, 0x1c004121, 0x01c0003f, 0x3f, 0},   /* L1d */
        {0x4, 1, SIG, 0x1c004122, 0x01c0003f, 0x3f, 0},   /* L1i */
        {0x4, 2, SIG, 0x1c004143, 0x00c0003f, 0x3ff, 0},  /* L2 */
        {0x4, 3, SIG, 0x1c03c163, 0x03c0003f, 0x2fff, 6}, /* L3 */
        {0x4, 4, SIG, 0, 0, 0, 0},                        /* no more caches */
        {0x6, 0, 0, 0x77 | (1u << 2), 2, 9, 1},
        {0xa, 0, 0, 0x07300404, 0, 0, 0x603},
        {0xb, 0, SIG, 1, 2, 0x100, 7},
        {0x1f, 0, SIG, 1, 2, 0x100, 7},
        {0x1f, 1, SIG, 4, 12, 0x201, 7},
        {0x40000001, 0, 0, 0x01007efb, 0, 0, 0},
        {0x80000001, 0, 0, 0, 0, 0x00400393 | (1u << 2), 0},
        {0x80000008, 0, 0, 0x3030, 0, 0x7001, 0},
        {0x8000001e, 0, 0, 9, 0x103, 0x301, 0},
};

/* a table shaped like KVM_GET_SUPPORTED_CPUID's, with room to grow */
static struct kvm_cpuid2 *make_table(const struct leaf *l, size_t n)
{
	struct kvm_cpuid2 *c =
	        calloc(1, sizeof(*c) + (n + CPUID_EXTRA_ENTRIES) * sizeof(c->entries[0]));
	cr_assert_not_null(c);
	for (size_t i = 0; i < n; i++) {
		c->entries[i] = (struct kvm_cpuid_entry2){
		        .function = l[i].fn,
		        .index = l[i].index,
		        .flags = l[i].flags,
		        .eax = l[i].eax,
		        .ebx = l[i].ebx,
		        .ecx = l[i].ecx,
		        .edx = l[i].edx,
		};
	}
	c->nent = (uint32_t)n;
	return c;
}

static struct kvm_cpuid2 *normalized(unsigned id, unsigned nr, bool smt)
{
	struct kvm_cpuid2 *c = make_table(host_leaves, ARRAY_SIZE(host_leaves));
	cr_assert_eq(cpuid_normalize(c, id, nr, smt), 0, "id %u nr %u", id, nr);
	cr_assert_leq(c->nent, ARRAY_SIZE(host_leaves) + CPUID_EXTRA_ENTRIES);
	return c;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	const struct kvm_cpuid_entry2 *found = NULL;
	for (uint32_t i = 0; i < c->nent; i++) {
		if (c->entries[i].function == fn && c->entries[i].index == index) {
			cr_assert_null(found, "leaf %#x.%u appears twice", fn, index);
			found = &c->entries[i];
		}
	}
	return found;
}

static const struct kvm_cpuid_entry2 *get(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	const struct kvm_cpuid_entry2 *e = find(c, fn, index);
	cr_assert_not_null(e, "leaf %#x.%u is missing", fn, index);
	return e;
}

static unsigned ceil_log2(unsigned n)
{
	unsigned s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

static const unsigned counts[] = {1, 2, 32};

Test(cpuid, apic_id_of_every_vcpu)
{
	for (size_t k = 0; k < ARRAY_SIZE(counts); k++) {
		unsigned nr = counts[k];
		for (unsigned id = 0; id < nr; id++) {
			struct kvm_cpuid2 *c = normalized(id, nr, false);
			const struct kvm_cpuid_entry2 *l1 = get(c, 0x1, 0);
			cr_expect_eq(l1->ebx >> 24, id);
			cr_expect_eq((l1->ebx >> 16) & 0xff, nr);
			cr_expect_eq(l1->ebx & 0xffff, 0x0800, "CLFLUSH size kept");
			for (uint32_t sub = 0; sub < 3; sub++) {
				cr_expect_eq(get(c, 0xb, sub)->edx, id);
				cr_expect_eq(get(c, 0x1f, sub)->edx, id);
			}
			cr_expect_eq(get(c, 0x8000001e, 0)->eax, id);
			free(c);
		}
	}
}

Test(cpuid, counts_for_1_2_32)
{
	for (size_t k = 0; k < ARRAY_SIZE(counts); k++) {
		unsigned nr = counts[k];
		struct kvm_cpuid2 *c = normalized(nr - 1, nr, false);
		const struct kvm_cpuid_entry2 *l1 = get(c, 0x1, 0);

		cr_expect_eq(!!(l1->edx & (1u << 28)), nr > 1, "HTT for nr %u", nr);
		for (uint32_t sub = 0; sub < 4; sub++) {
			uint32_t eax = get(c, 0x4, sub)->eax;
			unsigned level = (eax >> 5) & 7;
			cr_expect_eq(eax >> 26, nr - 1, "cores for nr %u", nr);
			cr_expect_eq((eax >> 14) & 0xfff, level == 3 ? nr - 1 : 0,
			             "sharing of L%u for nr %u", level, nr);
			cr_expect_eq(eax & 0x3fff, host_leaves[2 + sub].eax & 0x3fff,
			             "cache type/level kept");
		}
		cr_expect_eq(get(c, 0x4, 4)->eax, 0, "the null cache leaf stays null");
		uint32_t ecx = get(c, 0x80000008, 0)->ecx;
		cr_expect_eq(ecx & 0xff, nr - 1);
		cr_expect_eq((ecx >> 12) & 0xf, ceil_log2(nr));
		free(c);
	}
}

Test(cpuid, hypervisor_bit_and_no_nested_virt)
{
	struct kvm_cpuid2 *c = normalized(0, 2, false);
	uint32_t ecx = get(c, 0x1, 0)->ecx;
	cr_expect(ecx & (1u << 31), "hypervisor bit");
	cr_expect_not(ecx & (1u << 5), "VMX cleared");
	cr_expect_eq(ecx & ~((1u << 31) | (1u << 5)),
	             host_leaves[1].ecx & ~((1u << 31) | (1u << 5)),
	             "the other feature bits are kept");
	cr_expect_not(get(c, 0x80000001, 0)->ecx & (1u << 2), "SVM cleared");
	free(c);
}

Test(cpuid, kvm_signature_leaf)
{
	struct kvm_cpuid2 *c = normalized(0, 1, false);
	const struct kvm_cpuid_entry2 *s = get(c, 0x40000000, 0);
	char sig[12];

	memcpy(sig, &s->ebx, 4);
	memcpy(sig + 4, &s->ecx, 4);
	memcpy(sig + 8, &s->edx, 4);
	cr_expect_eq(memcmp(sig, "KVMKVMKVM\0\0\0", 12), 0);
	cr_expect_eq(s->eax, 0x40000001);
	cr_expect_eq(get(c, 0x40000001, 0)->eax, 0x01007efb, "paravirt features kept");
	free(c);
}

Test(cpuid, kvm_signature_without_features_leaf)
{
	struct leaf l[] = {{0x1, 0, 0, 0, 0, 0, 0}, {0x40000000, 0, 0, 0x40000010, 1, 2, 3}};
	struct kvm_cpuid2 *c = make_table(l, ARRAY_SIZE(l));
	cr_assert_eq(cpuid_normalize(c, 0, 1, false), 0);
	const struct kvm_cpuid_entry2 *s = get(c, 0x40000000, 0);
	cr_expect_eq(s->eax, 0x40000000, "no 0x40000001 leaf to point at");
	cr_expect_eq(s->ebx, 0x4b4d564b); /* "KVMK" */
	free(c);
}

Test(cpuid, leaf_0xb_levels)
{
	for (size_t k = 0; k < ARRAY_SIZE(counts); k++) {
		unsigned nr = counts[k];
		struct kvm_cpuid2 *c = normalized(0, nr, false);
		for (uint32_t fn = 0xb; fn <= 0x1f; fn += 0x1f - 0xb) {
			const struct kvm_cpuid_entry2 *smt = get(c, fn, 0);
			const struct kvm_cpuid_entry2 *core = get(c, fn, 1);
			const struct kvm_cpuid_entry2 *end = get(c, fn, 2);

			cr_expect_eq(smt->ecx, 0 | (1 << 8), "SMT level, sub-leaf 0");
			cr_expect_eq(smt->ebx, 1, "one thread per core");
			cr_expect_eq(smt->eax, 0);
			cr_expect_eq(core->ecx, 1 | (2 << 8), "core level, sub-leaf 1");
			cr_expect_eq(core->ebx, nr);
			cr_expect_eq(core->eax, ceil_log2(nr));
			cr_expect_eq(end->ecx, 2, "invalid level ends the list");
			cr_expect_eq(end->eax | end->ebx, 0);
			cr_expect(smt->flags & SIG);
			cr_expect_null(find(c, fn, 3));
		}
		free(c);
	}
}

Test(cpuid, leaf_0xb_with_smt)
{
	struct kvm_cpuid2 *c = normalized(5, 8, true);
	cr_expect_eq(get(c, 0xb, 0)->ebx, 2);
	cr_expect_eq(get(c, 0xb, 0)->eax, 1);
	cr_expect_eq(get(c, 0xb, 1)->ebx, 8);
	cr_expect_eq(get(c, 0xb, 1)->eax, 3);
	cr_expect_eq(get(c, 0x4, 0)->eax >> 26, 3, "4 cores of 2 threads");
	cr_expect_eq((get(c, 0x4, 0)->eax >> 14) & 0xfff, 1, "L1 shared by a core's 2 threads");
	cr_expect_eq(get(c, 0x8000001e, 0)->ebx, (1u << 8) | 2, "thread 1 of core 2");
	free(c);
}

Test(cpuid, leaf_0x1f_only_when_present)
{
	struct leaf l[] = {{0x1, 0, 0, 0, 0, 0, 0}, {0xb, 0, SIG, 0, 0, 0, 0}};
	struct kvm_cpuid2 *c = make_table(l, ARRAY_SIZE(l));
	cr_assert_eq(cpuid_normalize(c, 1, 4, false), 0);
	cr_expect_null(find(c, 0x1f, 0));
	cr_expect_not_null(find(c, 0xb, 1), "the core level is added");
	cr_expect_eq(c->nent, 2 - 1 + 3 + 1, "0x1, three 0xb sub-leaves, 0x40000000");
	free(c);
}

Test(cpuid, thermal_and_pmu_leaves)
{
	struct kvm_cpuid2 *c = normalized(0, 2, false);
	const struct kvm_cpuid_entry2 *l6 = get(c, 0x6, 0);
	const struct kvm_cpuid_entry2 *la = get(c, 0xa, 0);
	cr_expect_eq(l6->eax, 1u << 2, "only ARAT");
	cr_expect_eq(l6->ebx | l6->ecx | l6->edx, 0);
	cr_expect_eq(la->eax | la->ebx | la->ecx | la->edx, 0);
	free(c);
}

Test(cpuid, bad_arguments)
{
	struct kvm_cpuid2 *c = make_table(host_leaves, ARRAY_SIZE(host_leaves));
	cr_expect_eq(cpuid_normalize(c, 0, 0, false), -EINVAL);
	cr_expect_eq(cpuid_normalize(c, 2, 2, false), -EINVAL);
	cr_expect_eq(cpuid_normalize(c, 0, 256, false), -EINVAL);
	cr_expect_eq(cpuid_normalize(NULL, 0, 1, false), -EINVAL);
	cr_expect_eq(c->nent, ARRAY_SIZE(host_leaves), "a refused call changes nothing");
	cr_expect_eq(memcmp(&c->entries[1].ebx, &host_leaves[1].ebx, 4), 0);
	free(c);
}
