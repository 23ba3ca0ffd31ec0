// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/cpuid.c: each vCPU's CPUID, derived from KVM_GET_SUPPORTED_CPUID.
 * Bit positions follow the Intel SDM vol. 2A, "CPUID" (leaves 0x1, 0x4, 0x6,
 * 0xa, 0xb, 0x1f), the AMD APM vol. 3, appendix E (0x80000001, 0x80000008,
 * 0x8000001e), Linux Documentation/virt/kvm/x86/cpuid.rst (0x40000000), and
 * the Intel SDM vol. 1 ch. 13 "Managing state using the XSAVE feature set"
 * (0xd).
 * All vCPUs sit in one package; APIC id == vCPU id.
 */
#define LOG_MODULE "vcpu"
#include "vcpu.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define LEAF1_ECX_VMX        (1u << 5)
#define LEAF1_ECX_XSAVE      (1u << 26)
#define LEAF1_ECX_AVX        (1u << 28)
#define LEAF1_ECX_HYPERVISOR (1u << 31)
#define LEAF1_EDX_HTT        (1u << 28)
#define LEAF6_EAX_ARAT       (1u << 2)
#define EXT1_ECX_SVM         (1u << 2)

/* leaf 0xb / 0x1f level types (ECX[15:8]) */
#define TOPO_LEVEL_INVALID 0
#define TOPO_LEVEL_SMT     1
#define TOPO_LEVEL_CORE    2

/* KVM_GET_CPUID2 answers E2BIG until the table is large enough */
#define CPUID_GET_FIRST 256
#define CPUID_GET_MAX   4096
/*
 * A function no CPUID table holds: marks the entries KVM_GET_CPUID2 did not
 * write. Before Linux 6.4 ("KVM: x86: Update KVM_GET_CPUID2 to return valid
 * entry count") KVM set nent only on failure, so a success leaves nent at
 * the size offered and the table's length must be counted.
 */
#define CPUID_UNWRITTEN 0xffffffffu

#define KVM_SIGNATURE_LEAF 0x40000000u
#define KVM_FEATURES_LEAF  0x40000001u

struct topo {
	unsigned id, nr;
	unsigned threads_per_core;
	unsigned smt_shift;  /* APIC id bits that select the thread */
	unsigned core_shift; /* APIC id bits below the package id */
};

static unsigned ceil_log2(unsigned n)
{
	unsigned s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

static unsigned min_u(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

static bool cpuid_has(struct kvm_cpuid2 *c, uint32_t fn)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn)
			return true;
	return false;
}

/* removes every sub-leaf of `fn`, keeping the order of the others */
static void cpuid_remove(struct kvm_cpuid2 *c, uint32_t fn)
{
	uint32_t out = 0;
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function != fn)
			c->entries[out++] = c->entries[i];
	c->nent = out;
}

/* the caller guarantees room (CPUID_EXTRA_ENTRIES) */
static struct kvm_cpuid_entry2 *cpuid_append(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index,
                                             uint32_t flags)
{
	struct kvm_cpuid_entry2 *ent = &c->entries[c->nent++];
	memset(ent, 0, sizeof(*ent));
	ent->function = fn;
	ent->index = index;
	ent->flags = flags;
	return ent;
}

/* SDM: leaf 0x1 EBX[31:24] initial APIC id, EBX[23:16] addressable logical ids */
static void leaf_1(struct kvm_cpuid_entry2 *ent, const struct topo *t)
{
	ent->ebx = (ent->ebx & 0xffffu) | (min_u(t->nr, 255) << 16) | (t->id << 24);
	ent->ecx = (ent->ecx | LEAF1_ECX_HYPERVISOR) & ~LEAF1_ECX_VMX;
	if (t->nr > 1)
		ent->edx |= LEAF1_EDX_HTT;
	else
		ent->edx &= ~LEAF1_EDX_HTT;
}

/*
 * SDM: leaf 0x4 EAX[31:26] addressable core ids - 1, EAX[25:14] logical
 * processors sharing this cache - 1 (a core's threads for L1/L2, the whole
 * package for L3), EAX[4:0] cache type (0: no more caches), EAX[7:5] level.
 */
static void leaf_4(struct kvm_cpuid_entry2 *ent, const struct topo *t)
{
	if ((ent->eax & 0x1f) == 0)
		return;
	unsigned level = (ent->eax >> 5) & 7;
	unsigned cores = (t->nr + t->threads_per_core - 1) / t->threads_per_core;
	unsigned sharing = level <= 2 ? t->threads_per_core - 1 : t->nr - 1;

	ent->eax &= ~((0x3fu << 26) | (0xfffu << 14));
	ent->eax |= (min_u(cores - 1, 0x3f) << 26) | (min_u(sharing, 0xfff) << 14);
}

/*
 * SDM: leaves 0xb and 0x1f, one sub-leaf per level: EAX[4:0] the shift to
 * the next level's id, EBX[15:0] logical processors at this level, ECX[7:0]
 * the sub-leaf, ECX[15:8] the level type, EDX the x2APIC id. The sub-leaf
 * after the last level has type 0.
 */
static void leaf_topology(struct kvm_cpuid2 *c, uint32_t fn, const struct topo *t)
{
	struct kvm_cpuid_entry2 *ent;

	cpuid_remove(c, fn);
	ent = cpuid_append(c, fn, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	ent->eax = t->smt_shift;
	ent->ebx = t->threads_per_core;
	ent->ecx = 0 | (TOPO_LEVEL_SMT << 8);
	ent->edx = t->id;

	ent = cpuid_append(c, fn, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	ent->eax = t->core_shift;
	ent->ebx = t->nr;
	ent->ecx = 1 | (TOPO_LEVEL_CORE << 8);
	ent->edx = t->id;

	ent = cpuid_append(c, fn, 2, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	ent->ecx = 2 | (TOPO_LEVEL_INVALID << 8);
	ent->edx = t->id;
}

/* cpuid.rst: EAX the highest paravirt leaf, EBX:ECX:EDX "KVMKVMKVM\0\0\0" */
static void leaf_kvm_signature(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *ent = cpuid_entry(c, KVM_SIGNATURE_LEAF, 0);
	static const char sig[12] = "KVMKVMKVM\0\0\0";

	if (!ent)
		ent = cpuid_append(c, KVM_SIGNATURE_LEAF, 0, 0);
	ent->eax = cpuid_entry(c, KVM_FEATURES_LEAF, 0) ? KVM_FEATURES_LEAF : KVM_SIGNATURE_LEAF;
	memcpy(&ent->ebx, sig, 4);
	memcpy(&ent->ecx, sig + 4, 4);
	memcpy(&ent->edx, sig + 8, 4);
}

/*
 * APM: 0x80000008 ECX[7:0] cores - 1 ("NC"), ECX[15:12] APIC id bits for
 * the core; 0x8000001e EAX extended APIC id, EBX[15:8] threads per core - 1,
 * EBX[7:0] core id, ECX node 0 of 1.
 */
static void leaves_amd(struct kvm_cpuid2 *c, const struct topo *t)
{
	struct kvm_cpuid_entry2 *ent;

	if ((ent = cpuid_entry(c, 0x80000001u, 0)))
		ent->ecx &= ~EXT1_ECX_SVM;
	if ((ent = cpuid_entry(c, 0x80000008u, 0)))
		ent->ecx = (ent->ecx & ~0xf0ffu) | ((t->core_shift & 0xf) << 12) | (t->nr - 1);
	if ((ent = cpuid_entry(c, 0x8000001eu, 0))) {
		ent->eax = t->id;
		ent->ebx = ((t->threads_per_core - 1) << 8) | (t->id / t->threads_per_core);
		ent->ecx = 0;
		ent->edx = 0;
	}
}

/* --------------------------------------------------------- leaf 0xd */

#define XSAVE_LEAF        0xdu
#define XSAVE_LEGACY_SIZE 576u /* the legacy region (512) and the XSAVE header (64) */
#define XSAVE_D1_XSAVEC   (1u << 1)
#define XSAVE_D1_XSAVES   (1u << 3)
#define XSAVE_ALIGN64     (1u << 1) /* 0xd.i ECX: a 64-byte aligned component when compacted */
#define XCR0_ALWAYS       0x3ull    /* x87 and SSE: never dropped here */

/*
 * The feature flag each XCR0 component needs (SDM vol. 1 13.2; Linux
 * checks the same ones before it enables a component).
 */
static const struct {
	uint64_t components;
	uint32_t leaf;
	uint8_t reg; /* enum cpuid_regno */
	uint32_t flag;
} xsave_needs[] = {
        {1ull << 2, 0x1, CPUID_ECX, LEAF1_ECX_AVX}, /* YMM: AVX */
        {3ull << 3, 0x7, CPUID_EBX, 1u << 14},      /* BNDREGS, BNDCSR: MPX */
        {7ull << 5, 0x7, CPUID_EBX, 1u << 16},      /* opmask, ZMM: AVX512F */
        {1ull << 9, 0x7, CPUID_ECX, 1u << 3},       /* PKRU: PKU */
        {3ull << 17, 0x7, CPUID_EDX, 1u << 24},     /* XTILECFG, XTILEDATA: AMX-TILE */
};

static uint32_t reg_of(const struct kvm_cpuid_entry2 *ent, uint8_t reg)
{
	const uint32_t r[4] = {ent->eax, ent->ebx, ent->ecx, ent->edx};
	return r[reg & 3];
}

/* the components of `mask` (>= 2) whose sub-leaf is missing or of size 0 */
static uint64_t xsave_unsized(struct kvm_cpuid2 *c, uint64_t mask)
{
	uint64_t gone = 0;
	for (unsigned i = 2; i < 64; i++) {
		struct kvm_cpuid_entry2 *ent = cpuid_entry(c, XSAVE_LEAF, i);
		if ((mask >> i & 1) && (!ent || ent->eax == 0))
			gone |= 1ull << i;
	}
	return gone;
}

/*
 * SDM vol. 1 13.4.3 ("Extended Region of an XSAVE Area"): the XSAVE area for the components of
 * `mask`. Standard format: each component at its 0xd.i EBX offset; the
 * size reaches the end of the last one. Compacted: components follow each
 * other in order, at a 64-byte boundary when 0xd.i ECX[1] says so.
 */
static uint32_t xsave_size(struct kvm_cpuid2 *c, uint64_t mask, bool compacted)
{
	uint32_t size = XSAVE_LEGACY_SIZE;
	for (unsigned i = 2; i < 64; i++) {
		struct kvm_cpuid_entry2 *ent = cpuid_entry(c, XSAVE_LEAF, i);
		if (!(mask >> i & 1) || !ent)
			continue;
		if (!compacted) {
			if (ent->ebx + ent->eax > size)
				size = ent->ebx + ent->eax;
			continue;
		}
		if (ent->ecx & XSAVE_ALIGN64)
			size = (size + 63) & ~63u;
		size += ent->eax;
	}
	return size;
}

void cpuid_fix_xsave(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *d0 = cpuid_entry(c, XSAVE_LEAF, 0);
	struct kvm_cpuid_entry2 *d1 = cpuid_entry(c, XSAVE_LEAF, 1);
	struct kvm_cpuid_entry2 *l1 = cpuid_entry(c, 0x1, 0);
	uint64_t xcr0, xss = 0;

	if (!d0)
		return;
	xcr0 = d0->eax | (uint64_t)d0->edx << 32;
	if (!l1 || !(l1->ecx & LEAF1_ECX_XSAVE))
		xcr0 = 0;
	for (size_t i = 0; i < ARRAY_SIZE(xsave_needs); i++) {
		struct kvm_cpuid_entry2 *f = cpuid_entry(c, xsave_needs[i].leaf, 0);
		if (!f || !(reg_of(f, xsave_needs[i].reg) & xsave_needs[i].flag))
			xcr0 &= ~xsave_needs[i].components;
	}
	xcr0 &= ~xsave_unsized(c, xcr0 & ~XCR0_ALWAYS);
	if (d1 && xcr0 && (d1->eax & XSAVE_D1_XSAVES)) {
		xss = d1->ecx | (uint64_t)d1->edx << 32;
		xss &= ~xsave_unsized(c, xss & ~XCR0_ALWAYS);
	}

	d0->eax = (uint32_t)xcr0;
	d0->edx = (uint32_t)(xcr0 >> 32);
	d0->ebx = d0->ecx = xcr0 ? xsave_size(c, xcr0, false) : 0;
	if (d1) {
		if (!xcr0)
			d1->eax = 0;
		d1->ecx = (uint32_t)xss;
		d1->edx = (uint32_t)(xss >> 32);
		d1->ebx = d1->eax & (XSAVE_D1_XSAVEC | XSAVE_D1_XSAVES)
		                  ? xsave_size(c, xcr0 | xss, true)
		                  : 0;
	}
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *ent = &c->entries[i];
		if (ent->function == XSAVE_LEAF && ent->index >= 2 &&
		    (ent->index >= 64 || !((xcr0 | xss) >> ent->index & 1)))
			ent->eax = ent->ebx = ent->ecx = ent->edx = 0;
	}
}

int cpuid_normalize(struct kvm_cpuid2 *c, unsigned id, unsigned nr, bool smt)
{
	if (!c || nr == 0 || nr > 255 || id >= nr)
		return -EINVAL;

	struct topo t = {.id = id, .nr = nr, .threads_per_core = smt && nr > 1 ? 2 : 1};
	t.smt_shift = ceil_log2(t.threads_per_core);
	t.core_shift = ceil_log2(nr);
	if (t.core_shift < t.smt_shift)
		t.core_shift = t.smt_shift;

	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *ent = &c->entries[i];
		switch (ent->function) {
		case 0x1:
			leaf_1(ent, &t);
			break;
		case 0x4:
			leaf_4(ent, &t);
			break;
		case 0x6:
			/* no thermal or power management in a VM; the APIC timer keeps going */
			ent->eax &= LEAF6_EAX_ARAT;
			ent->ebx = ent->ecx = ent->edx = 0;
			break;
		case 0xa:
			/* no architectural PMU */
			ent->eax = ent->ebx = ent->ecx = ent->edx = 0;
			break;
		}
	}
	if (cpuid_has(c, 0xb))
		leaf_topology(c, 0xb, &t);
	if (cpuid_has(c, 0x1f))
		leaf_topology(c, 0x1f, &t);
	leaf_kvm_signature(c);
	leaves_amd(c, &t);
	cpuid_fix_xsave(c);
	return 0;
}

int vcpu_set_cpuid(struct vcpu *v, unsigned nr, struct errbuf *e)
{
	const struct kvm_cpuid2 *src = v->vm->kvm->supported_cpuid;
	size_t n = src->nent + CPUID_EXTRA_ENTRIES;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	int ret;

	if (!c)
		return errf(e, ENOMEM, "out of memory for vCPU %u's CPUID", v->id);
	memcpy(c, src, sizeof(*c) + src->nent * sizeof(src->entries[0]));
	ret = cpuid_normalize(c, v->id, nr, v->vm->smt);
	if (ret < 0) {
		errf(e, -ret, "cannot build the CPUID of vCPU %u of %u", v->id, nr);
		goto out;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		ret = errf(e, errno, "KVM_SET_CPUID2 for vCPU %u failed: %s", v->id,
		           strerror(errno));
		goto out;
	}
out:
	free(c);
	return ret;
}

int vcpu_get_cpuid(struct vcpu *v, struct kvm_cpuid2 **out, struct errbuf *e)
{
	for (uint32_t n = CPUID_GET_FIRST; n <= CPUID_GET_MAX; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return errf(e, ENOMEM, "out of memory for vCPU %u's CPUID", v->id);
		c->nent = n;
		for (uint32_t i = 0; i < n; i++)
			c->entries[i].function = CPUID_UNWRITTEN;
		if (ioctl(v->fd, KVM_GET_CPUID2, c) == 0) {
			uint32_t written = 0;
			while (written < n && c->entries[written].function != CPUID_UNWRITTEN)
				written++;
			c->nent = written;
			*out = c;
			return 0;
		}
		int err = errno;
		free(c);
		if (err != E2BIG)
			return errf(e, err, "KVM_GET_CPUID2 for vCPU %u failed: %s", v->id,
			            strerror(err));
	}
	return errf(e, E2BIG, "vCPU %u has more than %d CPUID entries", v->id, CPUID_GET_MAX);
}
