// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/vcpu_state_test.c: what test_vcpu_state and test_vm_state
 * share: two machines on real KVM, the counting real-mode guest, one-MSR
 * ioctls, the non-register state a guest could set (dress_vcpu), the
 * field-by-field comparison of two vCPUs, and reading sections back.
 */
#include "vcpu_state_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/*
 * loop: inc ebx; add esi, ebx; mov [0x500], ebx; cmp ebx, LOOPS; jne loop
 *       mov eax, esi; out 0x10, eax; out 0x13, al; jmp $
 */
// clang-format off
static const uint8_t count_code[] = {
	0x66, 0x43,
	0x66, 0x01, 0xde,
	0x66, 0x89, 0x1e, 0x00, 0x05,
	0x66, 0x81, 0xfb, LOOPS & 0xff, (LOOPS >> 8) & 0xff, (LOOPS >> 16) & 0xff, LOOPS >> 24,
	0x75, 0xed,
	0x66, 0x89, 0xf0,
	0x66, 0xe7, 0x10,
	0xe6, 0x13,
	0xeb, 0xfe,
};
// clang-format on

/* ------------------------------------------------- the port the guest ends on */

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

bool wait_done(struct done_port *p)
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
struct kvm kvm;
struct guest_mem mem[2];
struct vm vm[2];
struct done_port port[2];
struct state_writer w;
struct errbuf e;

void vs_setup(void)
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

void vs_teardown(void)
{
	sw_free(&w);
	for (int m = 0; m < 2; m++) {
		if (vm[m].kvm)
			vm_destroy(&vm[m]);
		gm_destroy(&mem[m]);
	}
	kvm_close(&kvm);
}

struct vcpu *new_vcpu(int m, unsigned id, unsigned nr)
{
	struct vcpu *v = NULL;
	cr_assert_eq(vcpu_create(&vm[m], id, nr, &v, &e), 0, "vcpu_create: %s", e.msg);
	return v;
}

/* vCPU 0 of machine 0 in real mode at CS:IP = 0x100:0, DS = 0x100 */
struct vcpu *count_guest(void)
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

uint32_t counter(int m)
{
	uint32_t *p = gm_ptr(&mem[m], COUNTER_GPA, 4);
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ ioctl helpers */

void set_msr(struct vcpu *v, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry ent;
	} s = {.m.nmsrs = 1, .ent = {.index = index, .data = value}};
	cr_assert_eq(ioctl(v->fd, KVM_SET_MSRS, &s), 1, "set MSR %#x", index);
}

/* KVM_SET_MSRS of one MSR: 1 when KVM took it, 0 when it refused it */
int try_set_msr(struct vcpu *v, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry ent;
	} s = {.m.nmsrs = 1, .ent = {.index = index, .data = value}};
	return ioctl(v->fd, KVM_SET_MSRS, &s);
}

/* 1 and the value, or 0 when KVM cannot read it */
int get_msr(struct vcpu *v, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs m;
		struct kvm_msr_entry ent;
	} s = {.m.nmsrs = 1, .ent.index = index};
	int n = ioctl(v->fd, KVM_GET_MSRS, &s);
	*value = s.ent.data;
	return n;
}

uint64_t rdtsc_of(struct vcpu *v)
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

uint8_t *get_xsave(struct vcpu *v)
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
bool offer_tsc_deadline(struct vcpu *v)
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

void dress_vcpu(struct vcpu *v)
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

void expect_same_vcpu(struct vcpu *a, struct vcpu *b)
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

/* the payload of section `id` in `w` (the section must be there) */
struct state_reader find_section(const char *want, uint16_t *version)
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

struct payload copy_payload(const struct state_reader *r)
{
	struct payload p = {.buf = malloc(r->len + 64), .len = r->len};
	memcpy(p.buf, r->buf, r->len);
	return p;
}

int restore_payload(struct vcpu *v, const struct payload *p, uint16_t version)
{
	struct state_reader r;
	sr_init(&r, p->buf, p->len);
	e.msg[0] = '\0';
	return vcpu_restore(v, &r, version, &e);
}

uint32_t get_u32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}
