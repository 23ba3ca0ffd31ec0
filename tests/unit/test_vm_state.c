// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_vm_state.c: the CPU model check of a vCPU's saved state,
 * and the whole VM's sections (two vCPUs, irqchip, PIT, clock) through
 * vm_save / vm_restore, its bookkeeping of what a snapshot holds, and
 * guest time that does not go back. On real KVM, with the fixture of
 * vcpu_state_test.c; skipped when /dev/kvm cannot be opened.
 */
#include "vcpu_state_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

TestSuite(vm_state, .init = vs_setup, .fini = vs_teardown, .timeout = 240);

/* ------------------------------------------------------------- CPU model */

/* a copy of the table this host gives vCPU 0, with room for one more entry */
static struct kvm_cpuid2 *host_cpuid(struct vcpu *v)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 513 * sizeof(c->entries[0]));
	c->nent = 512;
	cr_assert_eq(ioctl(v->fd, KVM_GET_CPUID2, c), 0);
	return c;
}

static struct kvm_cpuid_entry2 *leaf(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == index)
			return &c->entries[i];
	cr_assert_fail("no CPUID leaf %#x.%u", fn, index);
	return NULL;
}

Test(vm_state, cpu_model_check)
{
	struct vcpu *v = new_vcpu(0, 0, 1);
	struct kvm_cpuid2 *host = host_cpuid(v), *saved = host_cpuid(v);

	cr_expect_eq(cpuid_check_compat(saved, host, "snapshot", &e), 0, "%s", e.msg);

	/* another model (leaf 1 EAX bits 7:4) */
	leaf(saved, 1, 0)->eax ^= 0x10;
	cr_expect_eq(cpuid_check_compat(saved, host, "snapshot", &e), -ENOTSUP);
	cr_expect(strstr(e.msg, "snapshot from a different CPU model: the guest ran on"), "%s",
	          e.msg);
	cr_expect(strstr(e.msg, "stepping"), "%s", e.msg);
	leaf(saved, 1, 0)->eax ^= 0x10;

	/* another vendor */
	leaf(saved, 0, 0)->ebx ^= 0x20;
	cr_expect_eq(cpuid_check_compat(saved, host, "snapshot", &e), -ENOTSUP);
	leaf(saved, 0, 0)->ebx ^= 0x20;

	/* features the host lacks, named where kiln knows the name */
	leaf(host, 7, 0)->ebx &= ~(1u << 5);
	leaf(saved, 7, 0)->ebx |= 1u << 5;
	leaf(host, 1, 0)->ecx &= ~(1u << 11);
	leaf(saved, 1, 0)->ecx |= 1u << 11;
	cr_expect_eq(cpuid_check_compat(saved, host, "snapshot", &e), -ENOTSUP);
	cr_expect(strstr(e.msg, "has 2 features this host's KVM does not offer"), "%s", e.msg);
	cr_expect(strstr(e.msg, "0x7.0 EBX bit 5 (avx2)"), "%s", e.msg);
	cr_expect(strstr(e.msg, "0x1.0 ECX bit 11,") || strstr(e.msg, "0x1.0 ECX bit 11"), "%s",
	          e.msg);

	/* bits set per vCPU are not features: OSXSAVE, the hypervisor bit */
	leaf(saved, 7, 0)->ebx &= ~(1u << 5);
	leaf(saved, 1, 0)->ecx &= ~(1u << 11);
	leaf(saved, 1, 0)->ecx |= (1u << 27) | (1u << 31);
	leaf(host, 1, 0)->ecx &= ~((1u << 27) | (1u << 31));
	cr_expect_eq(cpuid_check_compat(saved, host, "snapshot", &e), 0, "%s", e.msg);
	free(host);
	free(saved);
}

Test(vm_state, restore_refuses_another_cpu_model)
{
	struct vcpu *a = new_vcpu(0, 0, 1), *b = new_vcpu(1, 0, 1);
	struct kvm_regs regs;

	cr_assert_eq(vcpu_save(a, &w, &e), 0, "%s", e.msg);
	struct state_reader r = find_section("vcpu.0", NULL);
	struct payload p = copy_payload(&r);
	uint32_t n = get_u32(p.buf + 4);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *ent = p.buf + 8 + 28 * i;
		if (get_u32(ent) == 1 && get_u32(ent + 4) == 0)
			ent[12] ^= 0x10; /* leaf 1 EAX: the model */
	}
	cr_assert_eq(vcpu_get_regs(b, &regs), 0);
	cr_expect_eq(restore_payload(b, &p, VCPU_STATE_VERSION), -ENOTSUP);
	cr_expect(strstr(e.msg, "snapshot from a different CPU model"), "%s", e.msg);
	struct kvm_regs after;
	cr_assert_eq(vcpu_get_regs(b, &after), 0);
	cr_expect_eq(memcmp(&regs, &after, sizeof(regs)), 0, "nothing was set");
	free(p.buf);
}

/* ---------------------------------------------------------- the whole VM */

static const char *const vm_sections[] = {"vcpu.0", "vcpu.1", "irqchip", "pit", "clock"};

/* machine 0 with two vCPUs, an interrupt line raised and PIT channel 2 programmed, saved */
static void save_two_vcpu_vm(void)
{
	struct vcpu *ap = (new_vcpu(0, 0, 2), new_vcpu(0, 1, 2));
	struct kvm_regs regs;
	struct kvm_pit_state2 pit;

	cr_assert_eq(vcpu_get_regs(ap, &regs), 0);
	regs.rax = 0x1111;
	cr_assert_eq(vcpu_set_regs(ap, &regs), 0);
	cr_assert_eq(vm_set_irq(&vm[0], 4, true), 0);
	cr_assert_eq(ioctl(vm[0].fd, KVM_GET_PIT2, &pit), 0);
	/* channel 2: its gate (port 0x61) is low, so it raises no interrupt while compared */
	pit.channels[2].count = 0x1234;
	pit.channels[2].mode = 2;
	pit.channels[2].rw_mode = 3;
	cr_assert_eq(ioctl(vm[0].fd, KVM_SET_PIT2, &pit), 0);
	cr_assert_eq(vm_save(&vm[0], &w, &e), 0, "%s", e.msg);
}

Test(vm_state, vm_round_trip)
{
	struct state_reader all, sub;
	char id[STATE_ID_MAX + 1];
	uint16_t version;

	save_two_vcpu_vm();
	sr_init(&all, w.buf, w.len);
	for (size_t i = 0; i < ARRAY_SIZE(vm_sections); i++) {
		cr_assert_eq(sr_next(&all, id, &version, &sub), 1);
		cr_expect_str_eq(id, vm_sections[i]);
	}
	cr_expect_eq(sr_next(&all, id, &version, &sub), 0);

	new_vcpu(1, 0, 2);
	new_vcpu(1, 1, 2);
	sr_init(&all, w.buf, w.len);
	cr_assert_eq(vm_restore(&vm[1], &all, 0, &e), 0, "%s", e.msg);
	for (unsigned i = 0; i < 2; i++)
		expect_same_vcpu(vm[0].vcpus[i], vm[1].vcpus[i]);

	for (uint32_t chip = 0; chip < KVM_NR_IRQCHIPS; chip++) {
		struct kvm_irqchip ca = {.chip_id = chip}, cb = {.chip_id = chip};
		cr_assert_eq(ioctl(vm[0].fd, KVM_GET_IRQCHIP, &ca), 0);
		cr_assert_eq(ioctl(vm[1].fd, KVM_GET_IRQCHIP, &cb), 0);
		cr_expect_eq(memcmp(&ca, &cb, sizeof(ca)), 0, "irqchip %u", chip);
		if (chip == KVM_IRQCHIP_IOAPIC)
			cr_expect(cb.chip.ioapic.irr & (1u << 4), "IOAPIC pin 4 pending");
	}
	struct kvm_pit_state2 pa, pb;
	cr_assert_eq(ioctl(vm[0].fd, KVM_GET_PIT2, &pa), 0);
	cr_assert_eq(ioctl(vm[1].fd, KVM_GET_PIT2, &pb), 0);
	for (unsigned i = 0; i < 3; i++) {
		pa.channels[i].count_load_time = pb.channels[i].count_load_time = 0;
		cr_expect_eq(memcmp(&pa.channels[i], &pb.channels[i], sizeof(pa.channels[i])), 0,
		             "PIT channel %u", i);
	}
	cr_expect_eq(pb.channels[2].count, 0x1234);
	cr_expect_eq(pa.flags, pb.flags);
}

/* a buffer of machine 0's sections in the order of `ids` ("foreign" adds a stranger) */
static struct state_writer pick(const char *const *ids, size_t n)
{
	struct state_writer out;
	sw_init(&out);
	for (size_t i = 0; i < n; i++) {
		uint16_t version = 1;
		if (!strcmp(ids[i], "foreign")) {
			sw_begin(&out, "serial", 1);
			sw_u8(&out, 0);
			sw_end(&out);
			continue;
		}
		struct state_reader r = find_section(ids[i], &version);
		sw_begin(&out, ids[i], version);
		sw_bytes(&out, r.buf, r.len);
		sw_end(&out);
	}
	return out;
}

static int restore_picked(const char *const *ids, size_t n)
{
	struct state_writer b = pick(ids, n);
	struct state_reader r;
	sr_init(&r, b.buf, b.len);
	e.msg[0] = '\0';
	int ret = vm_restore(&vm[1], &r, 0, &e);
	sw_free(&b);
	return ret;
}

Test(vm_state, vm_restore_checks_its_sections)
{
	save_two_vcpu_vm();
	new_vcpu(1, 0, 2);
	new_vcpu(1, 1, 2);

	const char *const no_ap[] = {"vcpu.0", "irqchip", "pit", "clock"};
	cr_expect_eq(restore_picked(no_ap, ARRAY_SIZE(no_ap)), -EINVAL);
	cr_expect(strstr(e.msg, "no state for vCPU 1"), "%s", e.msg);
	const char *const no_clock[] = {"vcpu.0", "vcpu.1", "irqchip", "pit"};
	cr_expect_eq(restore_picked(no_clock, ARRAY_SIZE(no_clock)), -EINVAL);
	cr_expect(strstr(e.msg, "section clock is missing"), "%s", e.msg);
	const char *const twice[] = {"irqchip", "irqchip"};
	cr_expect_eq(restore_picked(twice, ARRAY_SIZE(twice)), -EINVAL);
	cr_expect(strstr(e.msg, "irqchip appears twice"), "%s", e.msg);
	const char *const stranger[] = {"vcpu.0", "foreign"};
	cr_expect_eq(restore_picked(stranger, ARRAY_SIZE(stranger)), -EINVAL);
	cr_expect(strstr(e.msg, "section serial is not part of a VM's state"), "%s", e.msg);

	/* the per-section entry point: foreign ids are -ENOENT, without a message */
	struct state_reader r = find_section("vcpu.1", NULL);
	e.msg[0] = '\0';
	cr_expect_eq(vm_restore_section(&vm[1], "serial", 1, &r, 0, &e), -ENOENT);
	cr_expect_eq(vm_restore_section(&vm[1], "vcpu.01", 1, &r, 0, &e), -ENOENT);
	cr_expect_eq(vm_restore_section(&vm[1], "vcpu.", 1, &r, 0, &e), -ENOENT);
	cr_expect_eq(vm_restore_section(&vm[1], "vcpu.32", 1, &r, 0, &e), -ENOENT);
	cr_expect_str_eq(e.msg, "");
	cr_expect_eq(vm_restore_section(&vm[1], "vcpu.5", 1, &r, 0, &e), -EINVAL);
	cr_expect(strstr(e.msg, "it has vCPU 5, this VM has 2 vCPUs"), "%s", e.msg);

	r = find_section("irqchip", NULL);
	cr_expect_eq(vm_restore_section(&vm[1], "irqchip", 2, &r, 0, &e), -EINVAL);
	cr_expect(strstr(e.msg, "irqchip has version 2"), "%s", e.msg);
	struct payload p = copy_payload(&r);
	p.buf[32 + 1] = 0x10; /* IOAPIC base_address 0xfec01000 */
	sr_init(&r, p.buf, p.len);
	cr_expect_eq(vm_restore_section(&vm[1], "irqchip", 1, &r, 0, &e), -EINVAL);
	cr_expect(strstr(e.msg, "the IOAPIC is at 0xfec01000"), "%s", e.msg);
	free(p.buf);

	r = find_section("pit", NULL);
	p = copy_payload(&r);
	p.buf[13] = 7; /* channel 0's mode */
	sr_init(&r, p.buf, p.len);
	cr_expect_eq(vm_restore_section(&vm[1], "pit", 1, &r, 0, &e), -EINVAL);
	cr_expect(strstr(e.msg, "PIT channel 0 has mode 7"), "%s", e.msg);
	free(p.buf);

	r = find_section("clock", NULL);
	r.len -= 4;
	cr_expect_eq(vm_restore_section(&vm[1], "clock", 1, &r, 0, &e), -EINVAL);
	cr_expect(strstr(e.msg, "section clock is truncated"), "%s", e.msg);
}

static uint64_t kvmclock(int m)
{
	struct kvm_clock_data c = {0};
	cr_assert_eq(ioctl(vm[m].fd, KVM_GET_CLOCK, &c), 0);
	return c.clock;
}

Test(vm_state, guest_time_does_not_go_back)
{
	cr_assert_eq(vm_save(&vm[0], &w, &e), 0, "%s", e.msg);
	struct state_reader r = find_section("clock", NULL);
	uint64_t saved = sr_u64(&(struct state_reader){r.buf, r.len, 0, 0});
	usleep(200000);

	/* by default the guest's clock stood still while it was saved */
	cr_assert_eq(vm_restore_section(&vm[1], "clock", 1, &r, 0, &e), 0, "%s", e.msg);
	uint64_t now = kvmclock(1);
	cr_expect_geq(now, saved);
	cr_expect_lt(now - saved, 150000000ull, "%llu ns ahead", (unsigned long long)(now - saved));
	cr_expect_gt(kvmclock(0), now + 150000000ull, "the saved VM's clock ran on");

	/* live migration: the wall-clock time since the save is added */
	r = find_section("clock", NULL);
	cr_assert_eq(vm_restore_section(&vm[1], "clock", 1, &r, VM_RESTORE_CLOCK_REALTIME, &e), 0,
	             "%s", e.msg);
	now = kvmclock(1);
	cr_expect_geq(now, saved + 200000000ull, "%llu ns ahead",
	              (unsigned long long)(now - saved));
	cr_expect_lt(now, saved + 10000000000ull);
}
