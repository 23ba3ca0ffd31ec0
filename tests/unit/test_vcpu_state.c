// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_vcpu_state.c: saved state of vCPUs on real KVM. A
 * real-mode guest at 0x1000 counts in EBX, sums the counts in ESI and
 * mirrors the count in memory; it is paused mid-loop with MSRs, debug
 * registers, XMM0, the LAPIC and events set beside, saved, restored into a
 * second VM over a copy of its memory, compared field by field, and let
 * run to the end, where its sum shows that it continued exactly. Then:
 * versions, truncation and changed MSR lists. The fixture is in
 * vcpu_state_test.c; test_vm_state.c has the CPU model check and the
 * whole VM. Skipped when /dev/kvm cannot be opened.
 */
#include "vcpu_state_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

TestSuite(vcpu_state, .init = vs_setup, .fini = vs_teardown, .timeout = 240);

/* ------------------------------------------------------------- round trip */

/* saves machine 0 paused mid-loop into `w`; returns vCPU 0 */
static struct vcpu *run_and_save(void)
{
	struct vcpu *v = count_guest();
	dress_vcpu(v);
	cr_assert_eq(vm_start_vcpus(&vm[0]), 0);
	uint64_t end = now_ns() + WAIT_NS;
	while (counter(0) < 1000 && now_ns() < end)
		usleep(1000);
	cr_assert_eq(vm_pause_vcpus(&vm[0]), 0);
	uint32_t seen = counter(0);
	cr_assert_geq(seen, 1000, "the guest does not count");
	cr_assert_lt(seen, LOOPS, "the guest finished before the pause: raise LOOPS");

	/* events a guest can leave behind: NMIs blocked, a SIPI vector */
	struct kvm_vcpu_events ev;
	cr_assert_eq(ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev), 0);
	ev.nmi.masked = 1;
	ev.sipi_vector = 0x42;
	ev.flags |= KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	cr_assert_eq(ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev), 0);

	cr_assert_eq(vcpu_save(v, &w, &e), 0, "%s", e.msg);
	return v;
}

static void restore_memory(void)
{
	memcpy(mem[1].base, mem[0].base, mem[0].ram_size);
}

Test(vcpu_state, guest_continues_exactly)
{
	struct vcpu *a = run_and_save();
	struct vcpu *b = new_vcpu(1, 0, 1);
	struct state_reader all, sub;
	char id[STATE_ID_MAX + 1];
	uint16_t version;
	bool deadline_mode = offer_tsc_deadline(b); /* the same CPU model as a */

	cr_expect_eq(vcpu_save(b, &w, &e) == 0 ? 0 : -1, 0, "a vCPU that never ran saves too");
	restore_memory();
	sr_init(&all, w.buf, w.len);
	cr_assert_eq(sr_next(&all, id, &version, &sub), 1);
	cr_assert_str_eq(id, "vcpu.0");
	cr_assert_eq(version, VCPU_STATE_VERSION);
	cr_assert_eq(vcpu_restore(b, &sub, version, &e), 0, "%s", e.msg);
	expect_same_vcpu(a, b);
	cr_expect_gt(rdtsc_of(b), TEST_TSC, "the TSC continues from the saved one");
	uint8_t *x = get_xsave(b);
	cr_expect_eq(x[160], 0xa0, "XMM0");
	free(x);
	uint64_t deadline;
	if (deadline_mode) {
		cr_expect_eq(get_msr(b, 0x6e0, &deadline), 1);
		cr_expect_gt(deadline, rdtsc_of(b), "TSC_DEADLINE after the LAPIC: still ahead");
	} else {
		cr_log_warn("this KVM has no TSC-deadline timer: IA32_TSC_DEADLINE not checked");
	}

	vm_stop_vcpus(&vm[0]);
	cr_assert_eq(vm_start_vcpus(&vm[1]), 0);
	cr_assert(wait_done(&port[1]), "the restored guest did not finish (counter %u)",
	          counter(1));
	uint32_t want = (uint32_t)((uint64_t)LOOPS * (LOOPS + 1) / 2);
	cr_expect_eq(port[1].sum, want, "sum %#x, want %#x", port[1].sum, want);
	cr_expect_eq(counter(1), LOOPS);
}

Test(vcpu_state, save_refuses_a_running_vcpu)
{
	struct vcpu *v = count_guest();
	cr_assert_eq(vm_start_vcpus(&vm[0]), 0);
	cr_expect_eq(vcpu_save(v, &w, &e), -EBUSY);
	cr_expect(strstr(e.msg, "vCPU 0 is running"), "%s", e.msg);
	cr_expect_eq(vm_save(&vm[0], &w, &e), -EBUSY);
	cr_expect_eq(vcpu_restore(v, NULL, VCPU_STATE_VERSION, &e), -EBUSY);
	vm_stop_vcpus(&vm[0]);
}

/* ------------------------------------------------------- versions, lengths */

Test(vcpu_state, versions_and_lengths_are_checked)
{
	struct vcpu *a = new_vcpu(0, 0, 1), *b = new_vcpu(1, 0, 1);
	cr_assert_eq(vcpu_save(a, &w, &e), 0, "%s", e.msg);
	struct state_reader r = find_section("vcpu.0", NULL);
	struct payload p = copy_payload(&r);

	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION + 1), -EINVAL);
	cr_expect(strstr(e.msg, "vcpu.0 has version 2; this kiln reads versions 1 to 1"), "%s",
	          e.msg);
	cr_expect_eq(restore_payload(b, &p, 0), -EINVAL);
	p.len--;
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), -EINVAL);
	cr_expect(strstr(e.msg, "truncated"), "%s", e.msg);
	p.len = 20; /* inside the CPUID table */
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), -EINVAL);
	cr_expect(strstr(e.msg, "CPUID table"), "%s", e.msg);
	p.len = r.len + 1;
	p.buf[r.len] = 0;
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), -EINVAL);
	cr_expect(strstr(e.msg, "1 bytes too many"), "%s", e.msg);

	p.len = r.len;
	memcpy(p.buf, "\x01\0\0\0", 4); /* the state of vCPU 1 offered to vCPU 0 */
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), -EINVAL);
	cr_expect(strstr(e.msg, "holds the state of vCPU 1"), "%s", e.msg);
	memcpy(p.buf, "\0\0\0\0", 4);
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), 0, "%s", e.msg);
	free(p.buf);
}

/* ------------------------------------------------------------- MSR lists */

/*
 * The offset of the MSR count in a version 1 vCPU payload: after the id,
 * the CPUID table (28 bytes an entry), REGS (18 u64), SREGS (kind, 8
 * segments of 23 bytes, 76 bytes of tables and control registers, then 32
 * bytes of interrupt bitmap or 40 of SREGS2 flags and PDPTRs), the FPU
 * (kind, then u32 length + XSAVE image or 411 bytes of FXSAVE fields) and
 * the XCRs (count, flags, 12 bytes each).
 */
static size_t msr_offset(const struct payload *p)
{
	size_t off = 4;
	off += 4 + 28 * (size_t)get_u32(p->buf + off);
	off += 18 * 8;
	off += 1 + 8 * 23 + 76 + (p->buf[off] == 1 ? 32 : 40);
	off += 1 + (p->buf[off] == 1 ? 4 + (size_t)get_u32(p->buf + off + 1) : 411);
	off += 8 + 12 * (size_t)get_u32(p->buf + off);
	cr_assert_lt(off, p->len);
	return off;
}

/* replaces MSR `index`'s (index, value) pair, or appends one when absent */
static void put_msr(struct payload *p, uint32_t index, uint64_t value, bool drop)
{
	size_t off = msr_offset(p), n = get_u32(p->buf + off), at = off + 4 + 12 * n;
	for (size_t i = 0; i < n; i++)
		if (get_u32(p->buf + off + 4 + 12 * i) == index)
			at = off + 4 + 12 * i;
	bool found = at < off + 4 + 12 * n;
	if (drop) {
		cr_assert(found, "MSR %#x was saved", index);
		memmove(p->buf + at, p->buf + at + 12, p->len - at - 12);
		p->len -= 12;
		n--;
	} else {
		if (!found) {
			memmove(p->buf + at + 12, p->buf + at, p->len - at);
			p->len += 12;
			n++;
		}
		for (int i = 0; i < 4; i++)
			p->buf[at + i] = (uint8_t)(index >> (8 * i));
		for (int i = 0; i < 8; i++)
			p->buf[at + 4 + i] = (uint8_t)(value >> (8 * i));
	}
	for (int i = 0; i < 4; i++)
		p->buf[off + i] = (uint8_t)(n >> (8 * i));
}

Test(vcpu_state, a_different_msr_list_is_handled)
{
	struct vcpu *a = new_vcpu(0, 0, 1), *b = new_vcpu(1, 0, 1);
	uint64_t v;

	set_msr(a, 0xc0000082, 0xffffffff81000000ull);
	set_msr(a, 0xc0000081, 0x0023001000000000ull);
	cr_assert_eq(vcpu_save(a, &w, &e), 0, "%s", e.msg);
	struct state_reader r = find_section("vcpu.0", NULL);
	struct payload p = copy_payload(&r);

	/* fewer MSRs: LSTAR keeps the value vcpu_create gave it, the rest is restored */
	put_msr(&p, 0xc0000082, 0, true);
	cr_assert_eq(restore_payload(b, &p, VCPU_STATE_VERSION), 0, "%s", e.msg);
	cr_expect_eq(get_msr(b, 0xc0000082, &v), 1);
	cr_expect_eq(v, 0, "LSTAR was not in the section");
	cr_expect_eq(get_msr(b, 0xc0000081, &v), 1);
	cr_expect_eq(v, 0x0023001000000000ull, "STAR");

	/*
	 * An MSR KVM refuses to set but derives itself (on Intel hosts the
	 * non-"true" VMX control MSRs): fine when the vCPU holds the saved
	 * value. IA32_MTRRCAP stands in for them where KVM refuses it too.
	 */
	uint64_t cap;
	if (get_msr(b, 0xfe, &cap) == 1 && try_set_msr(b, 0xfe, cap ^ 1) == 0) {
		put_msr(&p, 0xfe, cap, false);
		cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), 0, "%s", e.msg);
		put_msr(&p, 0xfe, cap ^ 1, false);
		cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), -ENOTSUP);
		cr_expect(strstr(e.msg, "refuses MSR 0xfe"), "%s", e.msg);
		put_msr(&p, 0xfe, 0, true);
	}

	/* an MSR this KVM does not know: skipped when 0, refused otherwise */
	put_msr(&p, 0x12345678, 0, false);
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), 0, "%s", e.msg);
	put_msr(&p, 0x12345678, 5, false);
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), -ENOTSUP);
	cr_expect(strstr(e.msg, "refuses MSR 0x12345678 = 0x5 of vCPU 0"), "%s", e.msg);

	/* a count larger than the entries that follow */
	size_t off = msr_offset(&p);
	p.buf[off + 1]++; /* 256 more */
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), -EINVAL);
	cr_expect(strstr(e.msg, "MSR list"), "%s", e.msg);
	free(p.buf);
}

/* KVM's two lists, and the MTRRs as IA32_MTRRCAP counts them (vcpu/msr.c) */
Test(vcpu_state, msr_list_is_what_kvm_says)
{
	struct vcpu *v = new_vcpu(0, 0, 1);
	struct kvm_msrs *l = vcpu_msr_list(v);
	uint64_t cap, value;

	cr_assert_not_null(l);
	for (uint32_t i = 0; i < kvm.msr_index_list->nmsrs; i++)
		cr_expect(vcpu_msr_listed(l, kvm.msr_index_list->indices[i]));
	for (uint32_t i = 0; kvm.msr_feature_list && i < kvm.msr_feature_list->nmsrs; i++)
		cr_expect(vcpu_msr_listed(l, kvm.msr_feature_list->indices[i]));
	for (uint32_t i = 0; i < l->nmsrs; i++)
		for (uint32_t j = i + 1; j < l->nmsrs; j++)
			cr_expect_neq(l->entries[i].index, l->entries[j].index, "MSR %#x twice",
			              l->entries[i].index);
	if (get_msr(v, 0xfe, &cap) == 1 && cap) {
		uint32_t vcnt = (uint32_t)(cap & 0xff);
		cr_expect(vcpu_msr_listed(l, 0x2ff), "MTRR_DEF_TYPE");
		for (uint32_t i = 0; i < 2 * vcnt; i++) {
			cr_expect(vcpu_msr_listed(l, 0x200 + i), "MTRR %#x", 0x200 + i);
			cr_expect_eq(get_msr(v, 0x200 + i, &value), 1, "MTRR %#x", 0x200 + i);
		}
		if (!kvm_has_msr(&kvm, 0x200 + 2 * vcnt))
			cr_expect_not(vcpu_msr_listed(l, 0x200 + 2 * vcnt),
			              "MTRR %#x beyond VCNT %u", 0x200 + 2 * vcnt, vcnt);
		cr_expect_eq(vcpu_msr_listed(l, 0x250), (cap & 0x100) != 0, "FIX64K_00000");
		cr_expect_eq(vcpu_msr_listed(l, 0x26f), (cap & 0x100) != 0, "FIX4K_F8000");
	}
	free(l);
}
