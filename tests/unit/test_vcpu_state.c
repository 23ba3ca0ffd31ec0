// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_vcpu_state.c: saved state of vCPUs and of the VM on real
 * KVM. A real-mode guest at 0x1000 counts in EBX, sums the counts in ESI
 * and mirrors the count in memory; it is paused mid-loop with MSRs, debug
 * registers, XMM0, the LAPIC and events set beside, saved, restored into a
 * second VM over a copy of its memory, compared field by field, and let
 * run to the end, where its sum shows that it continued exactly. Then:
 * versions, truncation, changed MSR lists, the CPU model check, the
 * irqchip / PIT / clock sections and vm_restore's bookkeeping.
 * Skipped when /dev/kvm cannot be opened.
 */
#include "common/state.h"
#include "vcpu/vcpu.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define CODE_GPA    0x1000ull
#define COUNTER_GPA (CODE_GPA + 0x500)
#define LOOPS       200000u
#define WAIT_NS     60000000000ull /* real mode is emulated here: be patient */
#define TEST_TSC    (1ull << 44)
#define TSC_SLACK   20000000000ull /* cycles: seconds at any TSC rate */

/*
 * loop: inc ebx; add esi, ebx; mov [0x500], ebx; cmp ebx, LOOPS; jne loop
 *       mov eax, esi; out 0x10, eax; out 0x13, al; jmp $
 */
static const uint8_t count_code[] = {
        0x66,
        0x43,
        0x66,
        0x01,
        0xde,
        0x66,
        0x89,
        0x1e,
        0x00,
        0x05,
        0x66,
        0x81,
        0xfb,
        LOOPS & 0xff,
        (LOOPS >> 8) & 0xff,
        (LOOPS >> 16) & 0xff,
        LOOPS >> 24,
        0x75,
        0xed,
        0x66,
        0x89,
        0xf0,
        0x66,
        0xe7,
        0x10,
        0xe6,
        0x13,
        0xeb,
        0xfe,
};

/* ------------------------------------------------- the port the guest ends on */

struct done_port {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint32_t sum;
	bool done;
};

static void port_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct done_port *p = opaque;
	pthread_mutex_lock(&p->lock);
	if (off == 0 && len == 4)
		memcpy(&p->sum, data, 4);
	if (off == 3) {
		p->done = true;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
}

static void port_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	(void)opaque, (void)off, (void)data, (void)len;
}

static const struct bus_dev_ops port_ops = {.read = port_read, .write = port_write};

static bool wait_done(struct done_port *p)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_NS / 1000000000ull;
	pthread_mutex_lock(&p->lock);
	while (!p->done && pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
		;
	bool done = p->done;
	pthread_mutex_unlock(&p->lock);
	return done;
}

/* ----------------------------------------------------------------- fixture */

/* two machines: the one saved (0) and the one restored into (1) */
static struct kvm kvm;
static struct guest_mem mem[2];
static struct vm vm[2];
static struct done_port port[2];
static struct state_writer w;
static struct errbuf e;

static void setup(void)
{
	int ret = kvm_open(&kvm, &e);
	if (ret == -ENOENT || ret == -EACCES || ret == -EPERM)
		cr_skip_test("no usable /dev/kvm: %s", e.msg);
	cr_assert_eq(ret, 0, "kvm_open: %s", e.msg);
	for (int m = 0; m < 2; m++) {
		cr_assert_eq(gm_init(&mem[m], MIB(2), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
		cr_assert_eq(vm_create(&vm[m], &kvm, &mem[m], NULL, NULL, &e), 0, "%s", e.msg);
		memset(&port[m], 0, sizeof(port[m]));
		pthread_mutex_init(&port[m].lock, NULL);
		pthread_cond_init(&port[m].cond, NULL);
		cr_assert_eq(bus_register(&vm[m].pio, 0x10, 4, &port_ops, &port[m], "done"), 0);
	}
	sw_init(&w);
	e.msg[0] = '\0';
}

static void teardown(void)
{
	sw_free(&w);
	for (int m = 0; m < 2; m++) {
		if (vm[m].kvm)
			vm_destroy(&vm[m]);
		gm_destroy(&mem[m]);
	}
	kvm_close(&kvm);
}

TestSuite(vcpu_state, .init = setup, .fini = teardown, .timeout = 240);

static struct vcpu *new_vcpu(int m, unsigned id, unsigned nr)
{
	struct vcpu *v = NULL;
	cr_assert_eq(vcpu_create(&vm[m], id, nr, &v, &e), 0, "vcpu_create: %s", e.msg);
	return v;
}

/* vCPU 0 of machine 0 in real mode at CS:IP = 0x100:0, DS = 0x100 */
static struct vcpu *count_guest(void)
{
	struct vcpu *v = new_vcpu(0, 0, 1);
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rflags = 2};

	cr_assert_eq(gm_write(&mem[0], CODE_GPA, count_code, sizeof(count_code)), 0);
	cr_assert_eq(vcpu_get_sregs(v, &sregs), 0);
	sregs.cs.base = sregs.ds.base = CODE_GPA;
	sregs.cs.selector = sregs.ds.selector = CODE_GPA >> 4;
	cr_assert_eq(vcpu_set_sregs(v, &sregs), 0);
	cr_assert_eq(vcpu_set_regs(v, &regs), 0);
	return v;
}

static uint32_t counter(int m)
{
	uint32_t *p = gm_ptr(&mem[m], COUNTER_GPA, 4);
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ ioctl helpers */

static void set_msr(struct vcpu *v, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry ent;
	} s = {.m.nmsrs = 1, .ent = {.index = index, .data = value}};
	cr_assert_eq(ioctl(v->fd, KVM_SET_MSRS, &s), 1, "set MSR %#x", index);
}

/* KVM_SET_MSRS of one MSR: 1 when KVM took it, 0 when it refused it */
static int try_set_msr(struct vcpu *v, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry ent;
	} s = {.m.nmsrs = 1, .ent = {.index = index, .data = value}};
	return ioctl(v->fd, KVM_SET_MSRS, &s);
}

/* 1 and the value, or 0 when KVM cannot read it */
static int get_msr(struct vcpu *v, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry ent;
	} s = {.m.nmsrs = 1, .ent.index = index};
	int n = ioctl(v->fd, KVM_GET_MSRS, &s);
	*value = s.ent.data;
	return n;
}

static uint64_t rdtsc_of(struct vcpu *v)
{
	uint64_t tsc;
	cr_assert_eq(get_msr(v, 0x10, &tsc), 1);
	return tsc;
}

static uint32_t xsave_bytes(void)
{
	int n = ioctl(vm[0].fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > 4096 ? (uint32_t)n : 4096;
}

static uint8_t *get_xsave(struct vcpu *v)
{
	uint8_t *x = calloc(1, xsave_bytes());
	cr_assert_eq(ioctl(v->fd, xsave_bytes() > 4096 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, x), 0);
	return x;
}

/*
 * MAXPHYADDR as v's CPUID says (leaf 0x80000008 EAX bits 7:0, else 36: SDM
 * vol. 3A "Physical Address Space"): KVM refuses MTRR masks with bits above it
 */
static unsigned maxphyaddr(struct vcpu *v)
{
	struct kvm_cpuid2 *c = NULL;
	unsigned bits = 36;

	cr_assert_eq(vcpu_get_cpuid(v, &c, &e), 0, "%s", e.msg);
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 0x80000008 && (c->entries[i].eax & 0xff))
			bits = c->entries[i].eax & 0xff;
	free(c);
	return bits;
}

/* IA32_MTRR_PHYSMASK for 2 GiB with the valid bit (11), within MAXPHYADDR */
static uint64_t mtrr_mask_2g(struct vcpu *v)
{
	return (((1ull << maxphyaddr(v)) - 1) & ~((2ull << 30) - 1)) | (1ull << 11);
}

/* the non-register state a guest could have set, on vCPU `v` before it runs */
static struct {
	uint32_t index;
	uint64_t value;
} test_msrs[] = {
        {0xc0000081, 0x0023001000000000ull}, /* STAR */
        {0xc0000082, 0xffffffff81000000ull}, /* LSTAR */
        {0xc0000083, 0xffffffff81000100ull}, /* CSTAR */
        {0xc0000084, 0x47700ull},            /* SYSCALL_MASK */
        {0xc0000102, 0xffff888000001000ull}, /* KERNEL_GS_BASE */
        {0x174, 0x10},                       /* SYSENTER_CS */
        {0x175, 0xffffc90000004000ull},      /* SYSENTER_ESP */
        {0x176, 0xffffffff81000200ull},      /* SYSENTER_EIP */
        {0x277, 0x0007010600070106ull},      /* PAT */
        {0x2ff, 0xc06},                      /* MTRR_DEF_TYPE */
        {0x200, 0x80000000ull},              /* MTRR_PHYSBASE0: UC from 2 GiB */
        {0x201, 0},                          /* MTRR_PHYSMASK0: 2 GiB (dress_vcpu) */
        {0x4b564d01, 0x2001},                /* kvmclock at 0x2000, enabled */
        {0x4b564d00, 0x3000},                /* wall clock at 0x3000 */
};

/*
 * Gives `v` (not run yet) the TSC-deadline timer (CPUID leaf 1 ECX bit 24)
 * where KVM emulates one (KVM_CAP_TSC_DEADLINE_TIMER): KVM_GET_SUPPORTED_CPUID
 * leaves the bit to the VMM, and without it the LAPIC has no TSC-deadline
 * mode and IA32_TSC_DEADLINE reads 0. false when this KVM has none.
 */
static bool offer_tsc_deadline(struct vcpu *v)
{
	struct kvm_cpuid2 *c = NULL;

	if (ioctl(vm[0].fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) <= 0)
		return false;
	cr_assert_eq(vcpu_get_cpuid(v, &c, &e), 0, "%s", e.msg);
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= 1u << 24;
	cr_assert_eq(ioctl(v->fd, KVM_SET_CPUID2, c), 0, "%s", strerror(errno));
	free(c);
	return true;
}

static void dress_vcpu(struct vcpu *v)
{
	offer_tsc_deadline(v);      /* first: KVM_SET_CPUID2 recomputes state derived from CPUID */
	set_msr(v, 0x10, TEST_TSC); /* far from where a new VM's TSC starts */
	for (size_t i = 0; i < ARRAY_SIZE(test_msrs); i++) {
		if (test_msrs[i].index == 0x201)
			test_msrs[i].value = mtrr_mask_2g(v);
		set_msr(v, test_msrs[i].index, test_msrs[i].value);
	}

	struct kvm_debugregs dbg = {.db = {0x1000, 0x2000, 0x3000, 0x4000}, .dr7 = 0x400};
	cr_assert_eq(ioctl(v->fd, KVM_SET_DEBUGREGS, &dbg), 0);

	uint8_t *x = get_xsave(v);
	for (int i = 0; i < 16; i++)
		x[160 + i] = (uint8_t)(0xa0 + i); /* XMM0 in the legacy region */
	x[512] |= 2;                              /* XSTATE_BV: SSE state present */
	cr_assert_eq(ioctl(v->fd, KVM_SET_XSAVE, x), 0, "%s", strerror(errno));
	free(x);

	/*
	 * LAPIC on, timer in TSC-deadline mode (masked), TPR 0x20, a deadline
	 * 2^40 cycles ahead: KVM turns (deadline - TSC) * 10^6 into ns in 64
	 * bits (lapic.c, start_sw_tscdeadline), so 2^44 or more would wrap
	 */
	struct kvm_lapic_state lapic;
	uint32_t spiv = 0x1ff, lvtt = (2u << 17) | (1u << 16) | 0xec, tpr = 0x20;
	cr_assert_eq(ioctl(v->fd, KVM_GET_LAPIC, &lapic), 0);
	memcpy(&lapic.regs[0xf0], &spiv, 4);
	memcpy(&lapic.regs[0x320], &lvtt, 4);
	memcpy(&lapic.regs[0x80], &tpr, 4);
	cr_assert_eq(ioctl(v->fd, KVM_SET_LAPIC, &lapic), 0);
	set_msr(v, 0x6e0, rdtsc_of(v) + (1ull << 40));
}

/* ---------------------------------------------------------------- comparing */

/* KVM_GET_MSRS of every entry of `m` on `v`; the values land in `m` */
static void read_msrs(struct vcpu *v, struct kvm_msrs *m)
{
	for (uint32_t i = 0; i < m->nmsrs; i++) {
		uint64_t value;
		m->entries[i].data = get_msr(v, m->entries[i].index, &value) == 1 ? value : 0;
	}
}

/*
 * Every MSR of a's list (vcpu_msr_list) that a can read has the same value
 * on b, but for those that count time: a clock MSR changes between two reads
 * while a's vCPU stands still (the TSC; on hosts with Hyper-V emulation
 * HV_X64_MSR_VP_RUNTIME, which counts the reading thread's run time, and
 * HV_X64_MSR_TIME_REF_COUNT), so a restore cannot make it equal to the
 * saved machine's. The TSC must still be close; the others are only read.
 */
static void expect_same_msrs(struct vcpu *a, struct vcpu *b)
{
	struct kvm_msrs *first = vcpu_msr_list(a), *again = vcpu_msr_list(a);
	unsigned compared = 0, clocks = 0;

	cr_assert(first && again);
	read_msrs(a, first);
	/* 50 ms of this thread's time: VP_RUNTIME moves with the scheduler tick (HZ >= 100) */
	for (uint64_t end = now_ns() + 50000000; now_ns() < end;)
		;
	read_msrs(a, again);
	for (uint32_t i = 0; i < first->nmsrs; i++) {
		uint32_t index = first->entries[i].index;
		uint64_t va, vb;
		if (get_msr(a, index, &va) != 1)
			continue;
		cr_expect_eq(get_msr(b, index, &vb), 1, "MSR %#x readable after restore", index);
		if (index == 0x10) { /* both run on from the saved value: seconds apart at most */
			uint64_t d = va > vb ? va - vb : vb - va;
			cr_expect_lt(d, TSC_SLACK, "TSC %#llx saved machine, %#llx restored",
			             (unsigned long long)va, (unsigned long long)vb);
			continue;
		}
		if (first->entries[i].data != again->entries[i].data) {
			clocks++;
			continue;
		}
		compared++;
		cr_expect_eq(va, vb, "MSR %#x: %#llx saved, %#llx restored", index,
		             (unsigned long long)va, (unsigned long long)vb);
	}
	for (size_t i = 0; i < ARRAY_SIZE(test_msrs); i++)
		cr_expect(vcpu_msr_listed(first, test_msrs[i].index), "MSR %#x is not in the list",
		          test_msrs[i].index);
	cr_expect_geq(compared, ARRAY_SIZE(test_msrs) + 1, "%u MSRs compared", compared);
	cr_expect_leq(clocks, 4, "%u MSRs count time?", clocks);
	free(first);
	free(again);
}

static void expect_same_vcpu(struct vcpu *a, struct vcpu *b)
{
	struct kvm_regs ra, rb;
	struct kvm_sregs sa, sb;
	struct kvm_lapic_state la, lb;
	struct kvm_vcpu_events ea, eb;
	struct kvm_debugregs da, db;
	struct kvm_mp_state ma, mb;
	struct kvm_xcrs xa = {0}, xb = {0};

	cr_assert_eq(vcpu_get_regs(a, &ra), 0);
	cr_assert_eq(vcpu_get_regs(b, &rb), 0);
	cr_expect_eq(memcmp(&ra, &rb, sizeof(ra)), 0, "REGS (rip %llx / %llx, rbx %llx / %llx)",
	             ra.rip, rb.rip, ra.rbx, rb.rbx);
	cr_assert_eq(vcpu_get_sregs(a, &sa), 0);
	cr_assert_eq(vcpu_get_sregs(b, &sb), 0);
	cr_expect_eq(memcmp(&sa, &sb, sizeof(sa)), 0, "SREGS");
	expect_same_msrs(a, b);

	cr_assert_eq(ioctl(a->fd, KVM_GET_LAPIC, &la), 0);
	cr_assert_eq(ioctl(b->fd, KVM_GET_LAPIC, &lb), 0);
	memset(&la.regs[0x390], 0, 4); /* the timer's current count runs */
	memset(&lb.regs[0x390], 0, 4);
	cr_expect_eq(memcmp(&la, &lb, sizeof(la)), 0, "LAPIC");

	cr_assert_eq(ioctl(a->fd, KVM_GET_VCPU_EVENTS, &ea), 0);
	cr_assert_eq(ioctl(b->fd, KVM_GET_VCPU_EVENTS, &eb), 0);
	cr_expect_eq(memcmp(&ea, &eb, sizeof(ea)), 0, "VCPU_EVENTS");
	cr_assert_eq(ioctl(a->fd, KVM_GET_DEBUGREGS, &da), 0);
	cr_assert_eq(ioctl(b->fd, KVM_GET_DEBUGREGS, &db), 0);
	cr_expect_eq(memcmp(&da, &db, sizeof(da)), 0, "DEBUGREGS");
	cr_assert_eq(ioctl(a->fd, KVM_GET_MP_STATE, &ma), 0);
	cr_assert_eq(ioctl(b->fd, KVM_GET_MP_STATE, &mb), 0);
	cr_expect_eq(ma.mp_state, mb.mp_state, "MP_STATE");
	cr_assert_eq(ioctl(a->fd, KVM_GET_XCRS, &xa), 0);
	cr_assert_eq(ioctl(b->fd, KVM_GET_XCRS, &xb), 0);
	cr_expect_eq(memcmp(&xa, &xb, sizeof(xa)), 0, "XCRS");

	uint8_t *fa = get_xsave(a), *fb = get_xsave(b);
	cr_expect_eq(memcmp(fa, fb, xsave_bytes()), 0, "XSAVE");
	free(fa);
	free(fb);

	struct kvm_cpuid2 *ca = NULL, *cb = NULL;
	cr_assert_eq(vcpu_get_cpuid(a, &ca, &e), 0, "%s", e.msg);
	cr_assert_eq(vcpu_get_cpuid(b, &cb, &e), 0, "%s", e.msg);
	cr_expect_eq(ca->nent, cb->nent);
	cr_expect_eq(memcmp(ca->entries, cb->entries,
	                    (ca->nent < cb->nent ? ca->nent : cb->nent) * sizeof(ca->entries[0])),
	             0, "CPUID");
	free(ca);
	free(cb);
}

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

/* the payload of section `id` in `w` (the section must be there) */
static struct state_reader find_section(const char *want, uint16_t *version)
{
	struct state_reader all, sub;
	char id[STATE_ID_MAX + 1];
	uint16_t ver;

	sr_init(&all, w.buf, w.len);
	while (sr_next(&all, id, &ver, &sub) == 1)
		if (!strcmp(id, want)) {
			if (version)
				*version = ver;
			return sub;
		}
	cr_assert_fail("no section %s", want);
	return sub;
}

/* a copy of a payload, to be changed and read back */
struct payload {
	uint8_t *buf;
	size_t len;
};

static struct payload copy_payload(const struct state_reader *r)
{
	struct payload p = {.buf = malloc(r->len + 64), .len = r->len};
	memcpy(p.buf, r->buf, r->len);
	return p;
}

static int restore_payload(struct vcpu *v, const struct payload *p, uint16_t version)
{
	struct state_reader r;
	sr_init(&r, p->buf, p->len);
	e.msg[0] = '\0';
	return vcpu_restore(v, &r, version, &e);
}

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

static uint32_t get_u32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

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

Test(vcpu_state, cpu_model_check)
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

Test(vcpu_state, restore_refuses_another_cpu_model)
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

Test(vcpu_state, vm_round_trip)
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

Test(vcpu_state, vm_restore_checks_its_sections)
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

Test(vcpu_state, guest_time_does_not_go_back)
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
