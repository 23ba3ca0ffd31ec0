/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vcpu/state_int.h: what the saved-state files of vcpu/ share -- the CPUID
 * and MSR parts of a vCPU's section (state_cpu.c), used by state_vcpu.c.
 * Not part of the module's interface.
 */
#ifndef KILN_VCPU_STATE_INT_H
#define KILN_VCPU_STATE_INT_H

#include "common/state.h"
#include "vcpu.h"

#include <stddef.h>

/* what a section may claim at most, so that a bad file cannot make kiln allocate without bound */
#define VCPU_STATE_MAX_CPUID 4096
#define VCPU_STATE_MAX_MSRS  8192

/* IA32_TSC_DEADLINE: written after the LAPIC, which must be in TSC-deadline mode first */
#define MSR_IA32_TSC_DEADLINE 0x6e0u

/*
 * One field of a kernel struct as the wire carries it: sizes 1, 2, 4 and 8
 * are little-endian integers, any other size a byte array (e.g. the x87
 * registers). A table of them describes a struct's wire layout once, for
 * both directions.
 */
struct state_field {
	uint16_t off, size;
};
#define STATE_FIELD(type, member)                                                                  \
	{                                                                                          \
		offsetof(type, member), sizeof(((type *)0)->member)                                \
	}

void vcpu_state_put_fields(struct state_writer *w, const void *base, const struct state_field *f,
                           size_t n);
void vcpu_state_get_fields(struct state_reader *r, void *base, const struct state_field *f,
                           size_t n);

/* "snapshot: section <id> has version V, this kiln reads MIN..MAX" (-EINVAL) */
int vcpu_state_check_version(const char *id, uint16_t version, uint16_t min, uint16_t max,
                             struct errbuf *e);

/* "snapshot: section <id> is truncated / has N bytes too many" unless `r` was read exactly */
int vcpu_state_check_end(struct state_reader *r, const char *id, struct errbuf *e);

/*
 * Reads every MSR of vcpu_msr_list(v) that KVM_GET_MSRS returns for `v`
 * (those it refuses are left out), into a malloc'd table. 0 / -errno with
 * a message.
 */
int vcpu_state_get_msrs(struct vcpu *v, struct kvm_msrs **out, struct errbuf *e);
/* u32 count, then (u32 index, u64 value) per MSR */
void vcpu_state_put_msrs(struct state_writer *w, const struct kvm_msrs *m);
int vcpu_state_read_msrs(struct state_reader *r, struct kvm_msrs **out, struct errbuf *e);

/*
 * KVM_SET_MSRS of the saved MSRs: with `late` false every one but
 * IA32_TSC_DEADLINE, with `late` true only that one. An MSR KVM refuses is
 * fine when the vCPU holds the saved value already (KVM derives it), skipped
 * (logged) when its saved value is 0, else the restore fails naming it.
 */
int vcpu_state_set_msrs(struct vcpu *v, const struct kvm_msrs *m, bool late, struct errbuf *e);

#endif
