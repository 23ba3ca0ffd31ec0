// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/state_cpu.c: the CPUID and MSR parts of a vCPU's saved state, the
 * check that a saved CPU model can run on this host, and the field-table
 * reader and writer the saved-state files of vcpu/ share.
 * Reference: Linux Documentation/virt/kvm/api.rst (KVM_GET_CPUID2,
 * KVM_GET_MSRS / KVM_SET_MSRS; which MSRs: vcpu/msr.c); CPUID bits: Intel
 * SDM vol. 2A "CPUID", AMD APM vol. 3 appendix E; VMX capability MSRs
 * KVM derives: Linux arch/x86/kvm/vmx/nested.c.
 */
#define LOG_MODULE "vcpu"
#include "state_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

int vcpu_state_check_version(const char *id, uint16_t version, uint16_t min, uint16_t max,
                             struct errbuf *e)
{
	if (sr_check_version(id, version, min, max) < 0)
		return errf(
		        e, EINVAL,
		        "snapshot: section %s has version %u; this kiln reads versions %u to %u",
		        id, version, min, max);
	return 0;
}

int vcpu_state_check_end(struct state_reader *r, const char *id, struct errbuf *e)
{
	if (sr_error(r))
		return errf(e, EINVAL, "snapshot: section %s is truncated", id);
	if (sr_left(r))
		return errf(e, EINVAL, "snapshot: section %s has %zu bytes too many", id,
		            sr_left(r));
	return 0;
}

/* ----------------------------------------------------------------- fields */

/* a field of 1, 2, 4 or 8 bytes, in host order, as an integer and back */
union field_int {
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
};

static uint64_t field_load(const uint8_t *p, unsigned size)
{
	union field_int v;
	memcpy(&v, p, size);
	return size == 1 ? v.u8 : size == 2 ? v.u16 : size == 4 ? v.u32 : v.u64;
}

static void field_store(uint8_t *p, unsigned size, uint64_t x)
{
	union field_int v = {.u64 = 0};
	if (size == 1)
		v.u8 = (uint8_t)x;
	else if (size == 2)
		v.u16 = (uint16_t)x;
	else if (size == 4)
		v.u32 = (uint32_t)x;
	else
		v.u64 = x;
	memcpy(p, &v, size);
}

static bool field_is_int(unsigned size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

void vcpu_state_put_fields(struct state_writer *w, const void *base, const struct state_field *f,
                           size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = (const uint8_t *)base + f[i].off;
		if (!field_is_int(f[i].size)) {
			sw_bytes(w, p, f[i].size);
			continue;
		}
		uint64_t x = field_load(p, f[i].size);
		for (unsigned b = 0; b < f[i].size; b++) /* little endian */
			sw_u8(w, (uint8_t)(x >> (8 * b)));
	}
}

void vcpu_state_get_fields(struct state_reader *r, void *base, const struct state_field *f,
                           size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t *p = (uint8_t *)base + f[i].off;
		if (!field_is_int(f[i].size)) {
			sr_bytes(r, p, f[i].size);
			continue;
		}
		uint64_t x = 0;
		for (unsigned b = 0; b < f[i].size; b++)
			x |= (uint64_t)sr_u8(r) << (8 * b);
		field_store(p, f[i].size, x);
	}
}

/* ------------------------------------------------------------------ CPUID */

void vcpu_state_put_cpuid(struct state_writer *w, const struct kvm_cpuid2 *c)
{
	sw_u32(w, c->nent);
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *ent = &c->entries[i];
		sw_u32(w, ent->function);
		sw_u32(w, ent->index);
		sw_u32(w, ent->flags);
		sw_u32(w, ent->eax);
		sw_u32(w, ent->ebx);
		sw_u32(w, ent->ecx);
		sw_u32(w, ent->edx);
	}
}

#define CPUID_ENTRY_BYTES 28 /* seven u32 */

int vcpu_state_read_cpuid(struct state_reader *r, struct kvm_cpuid2 **out, struct errbuf *e)
{
	uint32_t n = sr_u32(r);

	if (sr_error(r) || n == 0 || n > VCPU_STATE_MAX_CPUID ||
	    (size_t)n * CPUID_ENTRY_BYTES > sr_left(r))
		return errf(e, EINVAL,
		            "snapshot: the CPUID table (%u entries) is empty, truncated or larger "
		            "than %d entries",
		            n, VCPU_STATE_MAX_CPUID);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
	if (!c)
		return errf(e, ENOMEM, "out of memory for a saved CPUID table");
	c->nent = n;
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *ent = &c->entries[i];
		ent->function = sr_u32(r);
		ent->index = sr_u32(r);
		ent->flags = sr_u32(r);
		ent->eax = sr_u32(r);
		ent->ebx = sr_u32(r);
		ent->ecx = sr_u32(r);
		ent->edx = sr_u32(r);
	}
	*out = c;
	return 0;
}

/* ------------------------------------------------------- CPU model check */

enum cpuid_reg { EAX, EBX, ECX, EDX };
static const char reg_names[4][4] = {"EAX", "EBX", "ECX", "EDX"};

/*
 * The feature words compared, and the bits left out: set per vCPU by KVM
 * from guest state (OSXSAVE from CR4, OSPKE from CR4, APIC from the APIC
 * base MSR) or by kiln (hypervisor bit, HTT for the topology).
 */
static const struct feature_word {
	uint32_t fn, index;
	enum cpuid_reg reg;
	uint32_t ignore;
} feature_words[] = {
        {0x1, 0, ECX, (1u << 27) | (1u << 31)},
        {0x1, 0, EDX, (1u << 9) | (1u << 28)},
        {0x7, 0, EBX, 0},
        {0x7, 0, ECX, 1u << 4},
        {0x7, 0, EDX, 0},
        {0x7, 1, EAX, 0},
        {0xd, 0, EAX, 0}, /* XCR0 components, low half */
        {0xd, 0, EDX, 0}, /* XCR0 components, high half */
        {0xd, 1, EAX, 0}, /* XSAVEOPT, XSAVEC, XGETBV1, XSAVES */
        {0x80000001, 0, ECX, 0},
        {0x80000001, 0, EDX, 1u << 9}, /* AMD mirrors the APIC bit here */
        {0x80000007, 0, EDX, 0},
        {0x80000008, 0, EBX, 0},
        {0x40000001, 0, EAX, 0}, /* KVM paravirtual features (cpuid.rst) */
};

/* names of the bits a guest is most likely to depend on, for the message */
static const struct feature_name {
	uint32_t fn, index;
	enum cpuid_reg reg;
	unsigned bit;
	const char *name;
} feature_names[] = {
        {0x1, 0, ECX, 0, "sse3"},
        {0x1, 0, ECX, 1, "pclmulqdq"},
        {0x1, 0, ECX, 9, "ssse3"},
        {0x1, 0, ECX, 12, "fma"},
        {0x1, 0, ECX, 13, "cx16"},
        {0x1, 0, ECX, 19, "sse4.1"},
        {0x1, 0, ECX, 20, "sse4.2"},
        {0x1, 0, ECX, 21, "x2apic"},
        {0x1, 0, ECX, 22, "movbe"},
        {0x1, 0, ECX, 23, "popcnt"},
        {0x1, 0, ECX, 24, "tsc-deadline"},
        {0x1, 0, ECX, 25, "aes"},
        {0x1, 0, ECX, 26, "xsave"},
        {0x1, 0, ECX, 28, "avx"},
        {0x1, 0, ECX, 29, "f16c"},
        {0x1, 0, ECX, 30, "rdrand"},
        {0x1, 0, EDX, 25, "sse"},
        {0x1, 0, EDX, 26, "sse2"},
        {0x7, 0, EBX, 3, "bmi1"},
        {0x7, 0, EBX, 5, "avx2"},
        {0x7, 0, EBX, 8, "bmi2"},
        {0x7, 0, EBX, 9, "erms"},
        {0x7, 0, EBX, 16, "avx512f"},
        {0x7, 0, EBX, 18, "rdseed"},
        {0x7, 0, EBX, 19, "adx"},
        {0x7, 0, EBX, 29, "sha"},
        {0x7, 0, ECX, 9, "vaes"},
        {0x7, 0, ECX, 10, "vpclmulqdq"},
        {0x7, 0, EDX, 4, "fsrm"},
        {0x7, 0, EDX, 24, "amx-tile"},
        {0xd, 0, EAX, 2, "xcr0.avx"},
        {0xd, 0, EAX, 5, "xcr0.opmask"},
        {0xd, 1, EAX, 0, "xsaveopt"},
        {0xd, 1, EAX, 1, "xsavec"},
        {0xd, 1, EAX, 3, "xsaves"},
        {0x80000001, 0, ECX, 5, "lzcnt"},
        {0x80000001, 0, EDX, 20, "nx"},
        {0x80000001, 0, EDX, 26, "pdpe1gb"},
        {0x80000001, 0, EDX, 27, "rdtscp"},
        {0x80000001, 0, EDX, 29, "lm"},
        {0x80000007, 0, EDX, 8, "invariant-tsc"},
        {0x40000001, 0, EAX, 3, "kvmclock2"},
};

static const struct kvm_cpuid_entry2 *find_leaf(const struct kvm_cpuid2 *c, uint32_t fn,
                                                uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return &c->entries[i];
	return NULL;
}

static uint32_t leaf_reg(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t index,
                         enum cpuid_reg reg)
{
	const struct kvm_cpuid_entry2 *ent = find_leaf(c, fn, index);
	if (!ent)
		return 0;
	const uint32_t regs[4] = {ent->eax, ent->ebx, ent->ecx, ent->edx};
	return regs[reg];
}

struct cpu_model {
	char vendor[13];
	unsigned family, model, stepping;
};

/* SDM "CPUID" leaf 0 (vendor in EBX, EDX, ECX) and leaf 1 EAX (display family/model) */
static void cpu_model(const struct kvm_cpuid2 *c, struct cpu_model *m)
{
	uint32_t vend[3] = {leaf_reg(c, 0, 0, EBX), leaf_reg(c, 0, 0, EDX), leaf_reg(c, 0, 0, ECX)};
	uint32_t sig = leaf_reg(c, 1, 0, EAX);
	unsigned base_family = (sig >> 8) & 0xf;

	memcpy(m->vendor, vend, 12);
	m->vendor[12] = '\0';
	m->family = base_family == 0xf ? base_family + ((sig >> 20) & 0xff) : base_family;
	m->model = (sig >> 4) & 0xf;
	if (base_family == 0x6 || base_family == 0xf)
		m->model |= ((sig >> 16) & 0xf) << 4;
	m->stepping = sig & 0xf;
}

static const char *feature_name(const struct feature_word *fw, unsigned bit)
{
	for (size_t i = 0; i < ARRAY_SIZE(feature_names); i++) {
		const struct feature_name *n = &feature_names[i];
		if (n->fn == fw->fn && n->index == fw->index && n->reg == fw->reg && n->bit == bit)
			return n->name;
	}
	return NULL;
}

/* appends " leaf 0x7.0 EBX bit 5 (avx2)," for each missing bit; returns how many */
static unsigned list_missing(const struct feature_word *fw, uint32_t missing, char *buf, size_t len,
                             size_t *used)
{
	unsigned n = 0;
	for (unsigned bit = 0; bit < 32; bit++) {
		if (!(missing & (1u << bit)))
			continue;
		const char *name = feature_name(fw, bit);
		if (*used < len)
			*used += (size_t)snprintf(
			        buf + *used, len - *used, "%s%#x.%u %s bit %u%s%s%s",
			        *used ? ", " : " ", fw->fn, fw->index, reg_names[fw->reg], bit,
			        name ? " (" : "", name ? name : "", name ? ")" : "");
		n++;
	}
	return n;
}

int cpuid_check_compat(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *host,
                       const char *what, struct errbuf *e)
{
	struct cpu_model s, h;
	char missing[320] = "";
	size_t used = 0;
	unsigned n = 0;

	if (!saved || !host || saved->nent == 0)
		return errf(e, EINVAL, "%s: no CPUID table to compare", what);
	cpu_model(saved, &s);
	cpu_model(host, &h);
	if (strcmp(s.vendor, h.vendor) || s.family != h.family || s.model != h.model ||
	    s.stepping != h.stepping)
		return errf(
		        e, ENOTSUP,
		        "%s from a different CPU model: the guest ran on %s family %#x "
		        "model %#x stepping %u, this host is %s family %#x model %#x stepping %u",
		        what, s.vendor, s.family, s.model, s.stepping, h.vendor, h.family, h.model,
		        h.stepping);

	for (size_t i = 0; i < ARRAY_SIZE(feature_words); i++) {
		const struct feature_word *fw = &feature_words[i];
		uint32_t want = leaf_reg(saved, fw->fn, fw->index, fw->reg) & ~fw->ignore;
		uint32_t have = leaf_reg(host, fw->fn, fw->index, fw->reg);
		if (want & ~have)
			n += list_missing(fw, want & ~have, missing, sizeof(missing), &used);
	}
	if (n)
		return errf(e, ENOTSUP,
		            "%s from a different CPU model: the guest's CPU has %u feature%s "
		            "this host's KVM does not offer (CPUID leaf.subleaf register bit):%s",
		            what, n, n == 1 ? "" : "s", missing);
	return 0;
}

/* ------------------------------------------------------------------- MSRs */

static struct kvm_msrs *msrs_alloc(size_t n)
{
	return calloc(1, sizeof(struct kvm_msrs) + n * sizeof(struct kvm_msr_entry));
}

/*
 * KVM_GET_MSRS / KVM_SET_MSRS on entries [from, from + n) of `m`: they
 * return how many they handled, stopping at the first MSR KVM refuses.
 */
static int msrs_ioctl(struct vcpu *v, unsigned long req, struct kvm_msrs *m, uint32_t from,
                      uint32_t n, struct kvm_msrs *scratch)
{
	scratch->nmsrs = n;
	memcpy(scratch->entries, &m->entries[from], n * sizeof(m->entries[0]));
	int done = ioctl(v->fd, req, scratch);
	if (done > 0)
		memcpy(&m->entries[from], scratch->entries, (size_t)done * sizeof(m->entries[0]));
	return done < 0 ? -errno : done;
}

int vcpu_state_get_msrs(struct vcpu *v, struct kvm_msrs **out, struct errbuf *e)
{
	struct kvm_msrs *want = vcpu_msr_list(v);
	struct kvm_msrs *scratch = want ? msrs_alloc(want->nmsrs) : NULL;
	struct kvm_msrs *got = want ? msrs_alloc(want->nmsrs) : NULL;
	int ret = 0;

	if (!want || !scratch || !got) {
		ret = errf(e, ENOMEM, "out of memory for vCPU %u's MSRs", v->id);
		goto out;
	}
	for (uint32_t pos = 0; pos < want->nmsrs;) {
		int done = msrs_ioctl(v, KVM_GET_MSRS, want, pos, want->nmsrs - pos, scratch);
		if (done < 0) {
			ret = errf(e, -done, "KVM_GET_MSRS for vCPU %u failed: %s", v->id,
			           strerror(-done));
			goto out;
		}
		memcpy(&got->entries[got->nmsrs], &want->entries[pos],
		       (size_t)done * sizeof(got->entries[0]));
		got->nmsrs += (uint32_t)done;
		pos += (uint32_t)done + 1; /* skip the one KVM cannot read for this vCPU */
	}
	*out = got;
	got = NULL;
out:
	free(got);
	free(scratch);
	free(want);
	return ret;
}

void vcpu_state_put_msrs(struct state_writer *w, const struct kvm_msrs *m)
{
	sw_u32(w, m->nmsrs);
	for (uint32_t i = 0; i < m->nmsrs; i++) {
		sw_u32(w, m->entries[i].index);
		sw_u64(w, m->entries[i].data);
	}
}

#define MSR_ENTRY_BYTES 12 /* u32 index, u64 value */

int vcpu_state_read_msrs(struct state_reader *r, struct kvm_msrs **out, struct errbuf *e)
{
	uint32_t n = sr_u32(r);

	if (sr_error(r) || n > VCPU_STATE_MAX_MSRS || (size_t)n * MSR_ENTRY_BYTES > sr_left(r))
		return errf(e, EINVAL,
		            "snapshot: the MSR list (%u MSRs) is truncated or longer than %d", n,
		            VCPU_STATE_MAX_MSRS);
	struct kvm_msrs *m = msrs_alloc(n);
	if (!m)
		return errf(e, ENOMEM, "out of memory for %u saved MSRs", n);
	m->nmsrs = n;
	for (uint32_t i = 0; i < n; i++) {
		m->entries[i].index = sr_u32(r);
		m->entries[i].data = sr_u64(r);
	}
	*out = m;
	return 0;
}

/*
 * A saved MSR KVM_SET_MSRS refused, checked once every other MSR is set.
 * Fine when `v` holds that value already: KVM derives some MSRs from others
 * or from CPUID and refuses them as input (on Intel hosts with nested VMX,
 * the non-"true" VMX control MSRs and VMX_CR0/CR4_FIXED1, which KVM lists:
 * Linux arch/x86/kvm/vmx/nested.c, vmx_set_vmx_msr). Fine, with a debug
 * line, when the saved value is 0 (an MSR this KVM lacks, never set by the
 * guest). Anything else is -ENOTSUP naming the MSR.
 */
static int msr_refused(struct vcpu *v, const struct kvm_msr_entry *saved, struct errbuf *e)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry ent;
	} now = {.m.nmsrs = 1, .ent.index = saved->index};

	if (ioctl(v->fd, KVM_GET_MSRS, &now) == 1 && now.ent.data == saved->data)
		return 0;
	if (saved->data != 0)
		return errf(e, ENOTSUP,
		            "snapshot: this host's KVM refuses MSR %#x = %#llx of vCPU %u",
		            saved->index, (unsigned long long)saved->data, v->id);
	log_debug("vCPU %u: this KVM refuses saved MSR %#x; its value is 0, skipped", v->id,
	          saved->index);
	return 0;
}

int vcpu_state_set_msrs(struct vcpu *v, const struct kvm_msrs *saved, bool late, struct errbuf *e)
{
	struct kvm_msrs *m = msrs_alloc(saved->nmsrs);
	struct kvm_msrs *scratch = msrs_alloc(saved->nmsrs);
	struct kvm_msrs *refused = msrs_alloc(saved->nmsrs);
	int ret = 0;

	if (!m || !scratch || !refused) {
		ret = errf(e, ENOMEM, "out of memory for vCPU %u's MSRs", v->id);
		goto out;
	}
	for (uint32_t i = 0; i < saved->nmsrs; i++)
		if ((saved->entries[i].index == MSR_IA32_TSC_DEADLINE) == late)
			m->entries[m->nmsrs++] = saved->entries[i];

	for (uint32_t pos = 0; pos < m->nmsrs;) {
		int done = msrs_ioctl(v, KVM_SET_MSRS, m, pos, m->nmsrs - pos, scratch);
		if (done < 0) {
			ret = errf(e, -done, "KVM_SET_MSRS for vCPU %u failed: %s", v->id,
			           strerror(-done));
			goto out;
		}
		pos += (uint32_t)done;
		if (pos < m->nmsrs)
			refused->entries[refused->nmsrs++] = m->entries[pos++];
	}
	for (uint32_t i = 0; i < refused->nmsrs && ret == 0; i++)
		ret = msr_refused(v, &refused->entries[i], e);
out:
	free(refused);
	free(scratch);
	free(m);
	return ret;
}
