/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/unit/vcpu_state_test: the fixture of test_vcpu_state and
 * test_vm_state. Machine 0 is the one saved, machine 1 the one restored
 * into; both have 2 MiB of memory and a port at 0x10 where the counting
 * guest ends (port[m]). `w` collects saved sections, `e` the last error.
 * vs_setup skips the test when /dev/kvm cannot be opened.
 */
#ifndef KILN_TEST_VCPU_STATE_TEST_H
#define KILN_TEST_VCPU_STATE_TEST_H

#include "common/state.h"
#include "vcpu/vcpu.h"

#include <stdbool.h>
#include <stdint.h>

#define CODE_GPA    0x1000ull
#define COUNTER_GPA (CODE_GPA + 0x500)
#define LOOPS       200000u
#define WAIT_NS     60000000000ull /* real mode is emulated here: be patient */
#define TEST_TSC    (1ull << 44)
#define TSC_SLACK   20000000000ull /* cycles: seconds at any TSC rate */

/* where the counting guest ends: its sum, and whether it got there */
struct done_port {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint32_t sum;
	bool done;
};

/* a copy of a payload, to be changed and read back */
struct payload {
	uint8_t *buf;
	size_t len;
};

extern struct kvm kvm;
extern struct guest_mem mem[2];
extern struct vm vm[2];
extern struct done_port port[2];
extern struct state_writer w;
extern struct errbuf e;

/* criterion .init / .fini */
void vs_setup(void);
void vs_teardown(void);

/* waits (WAIT_NS at most) for the guest of port p to end; false: it did not */
bool wait_done(struct done_port *p);
/* vCPU `id` of `nr` on machine m (asserts) */
struct vcpu *new_vcpu(int m, unsigned id, unsigned nr);
/* vCPU 0 of machine 0 in real mode at CS:IP = 0x100:0, DS = 0x100, counting */
struct vcpu *count_guest(void);
/* the count the guest of machine m mirrors in memory */
uint32_t counter(int m);

/* one MSR: set (asserts); try to set (1 taken, 0 refused); get (1 and the value, or 0) */
void set_msr(struct vcpu *v, uint32_t index, uint64_t value);
int try_set_msr(struct vcpu *v, uint32_t index, uint64_t value);
int get_msr(struct vcpu *v, uint32_t index, uint64_t *value);
/* v's IA32_TSC */
uint64_t rdtsc_of(struct vcpu *v);
/* v's XSAVE image (KVM_GET_XSAVE or XSAVE2; free it) */
uint8_t *get_xsave(struct vcpu *v);
/* gives v the TSC-deadline timer where KVM emulates one; false when it has none */
bool offer_tsc_deadline(struct vcpu *v);
/* MSRs, debug registers, XMM0, LAPIC and a TSC deadline on v, before it runs */
void dress_vcpu(struct vcpu *v);
/* expects every piece of state of a and b to match (clocks within slack) */
void expect_same_vcpu(struct vcpu *a, struct vcpu *b);

/* the payload of section `want` in `w` (asserts it is there) and its version */
struct state_reader find_section(const char *want, uint16_t *version);
struct payload copy_payload(const struct state_reader *r);
/* vcpu_restore of a payload at `version`; the error in e */
int restore_payload(struct vcpu *v, const struct payload *p, uint16_t version);
/* a little-endian u32 */
uint32_t get_u32(const uint8_t *p);

#endif
