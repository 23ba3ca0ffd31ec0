// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_vcpu.c: /dev/kvm, a real VM with 2 MiB of RAM and tiny
 * 16-bit real-mode guests at 0x1000: port and MMIO exits to fake devices,
 * string I/O, a triple fault, an exit kiln does not know, pause /
 * resume / stop of two spinning vCPUs, and a pause that lands on an I/O
 * exit. Skipped when /dev/kvm cannot be opened.
 */
#include "vcpu/vcpu.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define CODE_GPA  0x1000ull
#define PIO_BASE  0x10
#define MMIO_BASE 0x200000ull /* just above the 2 MiB of RAM: no memory slot */
#define MAX_LOG   64
#define WAIT_NS   20000000000ull /* real mode is emulated here: be patient */

/* ------------------------------------------------------- fake devices */

struct access {
	uint64_t off, val;
	uint32_t len;
	bool write;
};

struct rec_dev {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct access log[MAX_LOG];
	unsigned n;
	uint64_t read_value;
	uint64_t done_offset; /* a write here sets `done` */
	bool done;
};

static void rec_access(struct rec_dev *d, uint64_t off, void *data, uint32_t len, bool write)
{
	pthread_mutex_lock(&d->lock);
	struct access a = {.off = off, .len = len, .write = write};
	if (write)
		memcpy(&a.val, data, len);
	else
		memcpy(data, &d->read_value, len);
	if (d->n < MAX_LOG)
		d->log[d->n++] = a;
	if (write && off == d->done_offset) {
		d->done = true;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
}

static void rec_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	rec_access(opaque, off, data, len, false);
}

static void rec_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	rec_access(opaque, off, (void *)data, len, true);
}

static const struct bus_dev_ops rec_ops = {.read = rec_read, .write = rec_write};

static struct timespec deadline(uint64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ns += (uint64_t)ts.tv_nsec;
	ts.tv_sec += ns / 1000000000ull;
	ts.tv_nsec = ns % 1000000000ull;
	return ts;
}

static bool rec_wait_done(struct rec_dev *d)
{
	struct timespec ts = deadline(WAIT_NS);
	pthread_mutex_lock(&d->lock);
	while (!d->done && pthread_cond_timedwait(&d->cond, &d->lock, &ts) == 0)
		;
	bool done = d->done;
	pthread_mutex_unlock(&d->lock);
	return done;
}

/* ---------------------------------------------------- on_stop recorder */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned calls;
	enum vm_stop_reason reason;
	char why[512];
} stops = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void on_stop(struct vm *vm, enum vm_stop_reason reason, const char *why)
{
	(void)vm;
	pthread_mutex_lock(&stops.lock);
	stops.calls++;
	stops.reason = reason;
	snprintf(stops.why, sizeof(stops.why), "%s", why);
	pthread_cond_broadcast(&stops.cond);
	pthread_mutex_unlock(&stops.lock);
}

static const struct vm_ops test_ops = {.on_stop = on_stop};

static bool wait_stop(void)
{
	struct timespec ts = deadline(WAIT_NS);
	pthread_mutex_lock(&stops.lock);
	while (stops.calls == 0 && pthread_cond_timedwait(&stops.cond, &stops.lock, &ts) == 0)
		;
	bool stopped = stops.calls > 0;
	pthread_mutex_unlock(&stops.lock);
	return stopped;
}

/* ------------------------------------------------------------ fixture */

static struct kvm kvm;
static struct guest_mem mem;
static struct vm vm;
static struct rec_dev pio_dev, mmio_dev;

static void setup(void)
{
	struct errbuf e = {""};
	int ret = kvm_open(&kvm, &e);
	if (ret == -ENOENT || ret == -EACCES || ret == -EPERM)
		cr_skip_test("no usable /dev/kvm: %s", e.msg);
	cr_assert_eq(ret, 0, "kvm_open: %s", e.msg);
	cr_assert_eq(gm_init(&mem, MIB(2), GM_BACKING_ANON, NULL, &e), 0, "gm_init: %s", e.msg);
	cr_assert_eq(vm_create(&vm, &kvm, &mem, &test_ops, NULL, &e), 0, "vm_create: %s", e.msg);

	memset(&pio_dev, 0, sizeof(pio_dev));
	memset(&mmio_dev, 0, sizeof(mmio_dev));
	pthread_mutex_init(&pio_dev.lock, NULL);
	pthread_cond_init(&pio_dev.cond, NULL);
	pthread_mutex_init(&mmio_dev.lock, NULL);
	pthread_cond_init(&mmio_dev.cond, NULL);
	pio_dev.done_offset = 3;
	pio_dev.read_value = 0x5a;
	mmio_dev.done_offset = ~0ull;
	mmio_dev.read_value = 0xcafe;
	cr_assert_eq(bus_register(&vm.pio, PIO_BASE, 4, &rec_ops, &pio_dev, "rec-pio"), 0);
	cr_assert_eq(bus_register(&vm.mmio, MMIO_BASE, 0x1000, &rec_ops, &mmio_dev, "rec-mmio"), 0);

	pthread_mutex_lock(&stops.lock);
	stops.calls = 0;
	stops.why[0] = 0;
	pthread_mutex_unlock(&stops.lock);
}

static void teardown(void)
{
	if (vm.kvm)
		vm_destroy(&vm);
	gm_destroy(&mem);
	kvm_close(&kvm);
}

static void set_seg(struct kvm_segment *s, uint64_t base)
{
	s->base = base;
	s->selector = (uint16_t)(base >> 4);
	s->limit = 0xffff;
}

/* creates vCPU `id` of `nr` running real-mode `code` (copied to CODE_GPA) at CS:0 */
static struct vcpu *guest(unsigned id, unsigned nr, const uint8_t *code, size_t len,
                          uint64_t ds_base)
{
	struct errbuf e = {""};
	struct vcpu *v = NULL;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = 0, .rflags = 2};

	cr_assert_eq(vcpu_create(&vm, id, nr, &v, &e), 0, "vcpu_create: %s", e.msg);
	cr_assert_eq(vm.vcpus[id], v);
	cr_assert_eq(gm_write(&mem, CODE_GPA, code, len), 0);
	cr_assert_eq(vcpu_get_sregs(v, &sregs), 0);
	set_seg(&sregs.cs, CODE_GPA);
	set_seg(&sregs.ds, ds_base);
	sregs.es.base = MMIO_BASE; /* beyond real mode's reach, as in "unreal" mode */
	sregs.es.limit = 0xffff;
	cr_assert_eq(vcpu_set_sregs(v, &sregs), 0);
	cr_assert_eq(vcpu_set_regs(v, &regs), 0);
	return v;
}

/* ------------------------------------------------------------- /dev/kvm */

Test(kvm, open_reads_capabilities, .init = setup, .fini = teardown)
{
	cr_expect_gt(kvm.fd, 0);
	cr_expect_geq(kvm.vcpu_mmap_size, (int)sizeof(struct kvm_run));
	cr_expect_geq(kvm.max_vcpus, 1);
	cr_expect_leq(kvm.max_vcpus, VM_MAX_VCPUS);
	cr_assert_not_null(kvm.supported_cpuid);
	cr_expect_gt(kvm.supported_cpuid->nent, 0);
	cr_assert_not_null(kvm.msr_index_list);
	cr_expect(kvm_has_msr(&kvm, 0x174), "IA32_SYSENTER_CS is saved by every KVM");
	cr_expect_not(kvm_has_msr(&kvm, 0xdeadbeef));
	cr_expect_gt(kvm_check_cap(&kvm, KVM_CAP_IRQCHIP), 0);
	cr_expect_eq(kvm_check_cap(&kvm, -1), 0);
}

Test(kvm, close_is_safe_twice)
{
	struct kvm k;
	struct errbuf e;
	memset(&k, 0, sizeof(k));
	kvm_close(&k);
	if (kvm_open(&k, &e) < 0)
		cr_skip_test("no usable /dev/kvm: %s", e.msg);
	kvm_close(&k);
	kvm_close(&k);
	cr_expect_eq(k.fd, -1);
}

/* --------------------------------------------------------- VM and vCPUs */

Test(vm, create_checks_arguments, .init = setup, .fini = teardown)
{
	struct errbuf e = {""};
	struct vm other;
	struct guest_mem none = {.nr_regions = 0};
	struct vcpu *v;

	cr_expect_eq(vm_create(&other, &kvm, &none, &test_ops, NULL, &e), -EINVAL);
	cr_expect(strstr(e.msg, "memory"), "%s", e.msg);
	vm_destroy(&other); /* a no-op after a failed create */

	cr_expect_eq(vcpu_create(&vm, 2, 2, &v, &e), -EINVAL);
	cr_expect(strstr(e.msg, "vCPU id 2"), "%s", e.msg);
	cr_expect_eq(vcpu_create(&vm, 0, 0, &v, &e), -EINVAL);
	cr_expect_eq(vcpu_create(&vm, 0, VM_MAX_VCPUS + 1, &v, &e), -EINVAL);
	cr_assert_eq(vcpu_create(&vm, 0, 1, &v, &e), 0, "%s", e.msg);
	cr_expect_eq(vcpu_create(&vm, 0, 1, &v, &e), -EEXIST);
	cr_expect_eq(vm.nr_vcpus, 1);

	cr_expect_eq(vm_set_irq(&vm, VM_NR_GSIS, true), -EINVAL);
	cr_expect_eq(vm_set_irq(&vm, 4, true), 0);
	cr_expect_eq(vm_set_irq(&vm, 4, false), 0);
}

Test(vm, vcpu_state_before_boot, .init = setup, .fini = teardown)
{
	struct errbuf e = {""};
	struct vcpu *v[2];

	for (unsigned id = 0; id < 2; id++) {
		cr_assert_eq(vcpu_create(&vm, id, 2, &v[id], &e), 0, "%s", e.msg);

		struct {
			struct kvm_cpuid2 c;
			struct kvm_cpuid_entry2 ent[512];
		} cpuid = {.c.nent = 512};
		cr_assert_eq(ioctl(v[id]->fd, KVM_GET_CPUID2, &cpuid), 0, "%s", strerror(errno));
		bool seen = false;
		for (uint32_t i = 0; i < cpuid.c.nent; i++) {
			struct kvm_cpuid_entry2 *ent = &cpuid.c.entries[i];
			if (ent->function == 1) {
				cr_expect_eq(ent->ebx >> 24, id, "APIC id");
				cr_expect(ent->ecx & (1u << 31), "hypervisor bit");
				seen = true;
			}
		}
		cr_expect(seen, "leaf 1 applied");

		/* vcpu_get_cpuid counts what KVM wrote (kernels before 6.4 leave nent alone) */
		struct kvm_cpuid2 *got = NULL;
		unsigned leaf0 = 0;
		cr_assert_eq(vcpu_get_cpuid(v[id], &got, &e), 0, "%s", e.msg);
		cr_expect_gt(got->nent, 0);
		cr_expect_leq(got->nent, kvm.supported_cpuid->nent + CPUID_EXTRA_ENTRIES);
		for (uint32_t i = 0; i < got->nent; i++)
			leaf0 += got->entries[i].function == 0;
		cr_expect_eq(leaf0, 1, "leaf 0 appears %u times", leaf0);
		free(got);

		/* KVM_GET_FPU reports MXCSR as 0 on some kernels: read it from XSAVE */
		struct kvm_fpu fpu;
		cr_assert_eq(ioctl(v[id]->fd, KVM_GET_FPU, &fpu), 0);
		cr_expect_eq(fpu.fcw, 0x37f);
		if (kvm.has_xsave) {
			struct kvm_xsave xs;
			cr_assert_eq(ioctl(v[id]->fd, KVM_GET_XSAVE, &xs), 0);
			cr_expect_eq(xs.region[0] & 0xffff, 0x37f, "FCW");
			cr_expect_eq(xs.region[6], 0x1f80, "MXCSR");
		}

		struct kvm_lapic_state lapic;
		uint32_t lint0, lint1;
		cr_assert_eq(ioctl(v[id]->fd, KVM_GET_LAPIC, &lapic), 0);
		memcpy(&lint0, &lapic.regs[0x350], 4);
		memcpy(&lint1, &lapic.regs[0x360], 4);
		cr_expect_eq(lint0 & 0x700, 0x700, "LINT0 ExtINT");
		cr_expect_eq(lint1 & 0x700, 0x400, "LINT1 NMI");

		struct {
			struct kvm_msrs m;
			struct kvm_msr_entry ent[1];
		} msrs = {.m.nmsrs = 1, .ent[0].index = 0x1a0};
		if (kvm_has_msr(&kvm, 0x1a0)) {
			cr_assert_eq(ioctl(v[id]->fd, KVM_GET_MSRS, &msrs), 1);
			cr_expect(msrs.ent[0].data & 1, "fast strings enabled");
		}
		/* MTRRs on, default type WB, where the vCPU has MTRRs (KVM lists none of them) */
		msrs.ent[0].index = 0xfe;
		if (ioctl(v[id]->fd, KVM_GET_MSRS, &msrs) == 1 && msrs.ent[0].data) {
			msrs.ent[0].index = 0x2ff;
			cr_assert_eq(ioctl(v[id]->fd, KVM_GET_MSRS, &msrs), 1);
			cr_expect_eq(msrs.ent[0].data, 0x806, "MTRR_DEF_TYPE %#llx",
			             (unsigned long long)msrs.ent[0].data);
		}
	}
	vcpu_destroy(v[1]);
	cr_expect_null(vm.vcpus[1]);
	cr_expect_eq(vm.nr_vcpus, 1);
}

/* ------------------------------------------------------------- exits */

/* port and MMIO exits, string I/O, and a value read back from each device */
static const uint8_t io_code[] = {
        0xb0, 0x42,                                                 /* mov al, 0x42 */
        0xe6, 0x10,                                                 /* out 0x10, al */
        0xb8, 0x34, 0x12,                                           /* mov ax, 0x1234 */
        0xe7, 0x12,                                                 /* out 0x12, ax */
        0xbe, 0x32, 0x00,                                           /* mov si, data */
        0xb9, 0x04, 0x00,                                           /* mov cx, 4 */
        0xba, 0x11, 0x00,                                           /* mov dx, 0x11 */
        0xf3, 0x6e,                                                 /* rep outsb */
        0x26, 0xc6, 0x06, 0x10, 0x00, 0x99,                         /* mov byte es:[0x10], 0x99 */
        0x26, 0x66, 0xc7, 0x06, 0x20, 0x00, 0xef, 0xbe, 0xad, 0xde, /* mov dword es:[0x20], .. */
        0x26, 0xa1, 0x30, 0x00,                                     /* mov ax, es:[0x30] */
        0xe7, 0x12,                                                 /* out 0x12, ax */
        0xe4, 0x10,                                                 /* in al, 0x10 */
        0xe6, 0x10,                                                 /* out 0x10, al */
        0xe6, 0x13,                                                 /* out 0x13, al: done */
        0xeb, 0xfe,                                                 /* jmp $ */
        'k',  'i',  'l',  'n',                                      /* data (offset 0x32) */
};

static void expect_access(const struct access *a, uint64_t off, uint32_t len, bool write,
                          uint64_t val)
{
	cr_expect_eq(a->off, off, "offset %#llx", (unsigned long long)a->off);
	cr_expect_eq(a->len, len, "len at offset %#llx", (unsigned long long)off);
	cr_expect_eq(a->write, write, "direction at offset %#llx", (unsigned long long)off);
	if (write)
		cr_expect_eq(a->val, val, "value %#llx at offset %#llx", (unsigned long long)a->val,
		             (unsigned long long)off);
}

Test(exits, pio_and_mmio_reach_devices, .init = setup, .fini = teardown)
{
	guest(0, 1, io_code, sizeof(io_code), CODE_GPA);
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	cr_assert_eq(vm_start_vcpus(&vm), -EBUSY);
	cr_assert(rec_wait_done(&pio_dev), "the guest never reached its last out");
	vm_stop_vcpus(&vm);
	vm_stop_vcpus(&vm); /* idempotent */
	cr_expect_eq(vm.vcpus[0]->state, VCPU_STOPPED);
	cr_expect_not(vm.vcpus[0]->thread_started);

	cr_assert_eq(pio_dev.n, 10, "port accesses: %u", pio_dev.n);
	expect_access(&pio_dev.log[0], 0, 1, true, 0x42);
	expect_access(&pio_dev.log[1], 2, 2, true, 0x1234);
	for (unsigned i = 0; i < 4; i++)
		expect_access(&pio_dev.log[2 + i], 1, 1, true, (uint8_t) "kiln"[i]);
	expect_access(&pio_dev.log[6], 2, 2, true, 0xcafe);
	expect_access(&pio_dev.log[7], 0, 1, false, 0);
	expect_access(&pio_dev.log[8], 0, 1, true, 0x5a);
	expect_access(&pio_dev.log[9], 3, 1, true, 0x5a);

	cr_assert_eq(mmio_dev.n, 3, "MMIO accesses: %u", mmio_dev.n);
	expect_access(&mmio_dev.log[0], 0x10, 1, true, 0x99);
	expect_access(&mmio_dev.log[1], 0x20, 4, true, 0xdeadbeef);
	expect_access(&mmio_dev.log[2], 0x30, 2, false, 0);

	/* string I/O may come as one exit with count 4 or as several */
	cr_expect_geq(vm.exit_counts[KVM_EXIT_IO], 7);
	cr_expect_leq(vm.exit_counts[KVM_EXIT_IO], 10);
	cr_expect_eq(vm.exit_counts[KVM_EXIT_MMIO], 3);
	cr_expect_eq(stops.calls, 0, "no on_stop: %s", stops.why);
}

/* counts the lines of `path` that contain `needle` */
static unsigned count_lines(const char *path, const char *needle)
{
	char line[1024];
	unsigned n = 0;
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

Test(exits, unhandled_io_is_not_fatal_and_rate_limited, .init = setup, .fini = teardown)
{
	static const uint8_t code[] = {
	        0xb9, 0x1e, 0x00, /* mov cx, 30 */
	        0xe4, 0x70,       /* in al, 0x70: no device, reads all ones */
	        0xe2, 0xfc,       /* loop back to the in */
	        0xe6, 0x10,       /* out 0x10, al */
	        0xe6, 0x13,       /* out 0x13, al: done */
	        0xeb, 0xfe,       /* jmp $ */
	};
	char path[] = "/tmp/kiln-test-vcpu-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);

	log_set_file(fdopen(fd, "w"));
	log_configure(LOG_DEBUG, true, false, "vcpu");
	guest(0, 1, code, sizeof(code), CODE_GPA);
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	cr_assert(rec_wait_done(&pio_dev));
	vm_stop_vcpus(&vm);
	log_configure(LOG_WARN, false, false, NULL);
	log_set_file(NULL); /* closes our file */

	cr_assert_geq(pio_dev.n, 2);
	expect_access(&pio_dev.log[0], 0, 1, true, 0xff);
	cr_expect_eq(stops.calls, 0);
	unsigned lines = count_lines(path, "unhandled pio read of 1 bytes at 0x70");
	unlink(path);
	/* 10 a second: 30 reads log 10, or up to 20 if they straddle a second */
	cr_expect_geq(lines, 1);
	cr_expect_leq(lines, 20, "%u lines for 30 unhandled reads", lines);
	cr_expect_geq(vm.exit_counts[KVM_EXIT_IO], 32);
}

/* flat 32-bit protected mode at CODE_GPA with an empty IDT: any exception triple-faults */
static void guest_pmode(const uint8_t *code, size_t len)
{
	struct errbuf e = {""};
	struct vcpu *v = NULL;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = CODE_GPA, .rflags = 2};
	struct kvm_segment flat = {.limit = 0xffffffff, .present = 1, .db = 1, .s = 1, .g = 1};

	cr_assert_eq(vcpu_create(&vm, 0, 1, &v, &e), 0, "vcpu_create: %s", e.msg);
	cr_assert_eq(gm_write(&mem, CODE_GPA, code, len), 0);
	cr_assert_eq(vcpu_get_sregs(v, &sregs), 0);
	sregs.cs = flat;
	sregs.cs.type = 0xb; /* execute/read, accessed */
	sregs.cs.selector = 0x8;
	sregs.ds = flat;
	sregs.ds.type = 0x3; /* read/write, accessed */
	sregs.ds.selector = 0x10;
	sregs.es = sregs.ss = sregs.fs = sregs.gs = sregs.ds;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 |= 1; /* PE */
	cr_assert_eq(vcpu_set_sregs(v, &sregs), 0);
	cr_assert_eq(vcpu_set_regs(v, &regs), 0);
}

Test(exits, invalid_instruction_triple_faults, .init = setup, .fini = teardown)
{
	/* ud2: #UD -> IDT limit 0 -> #GP -> #DF -> shutdown */
	static const uint8_t code[] = {0x0f, 0x0b, 0xeb, 0xfe};

	guest_pmode(code, sizeof(code));
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	cr_assert(wait_stop(), "on_stop was not called");
	vm_stop_vcpus(&vm);
	cr_expect_eq(stops.calls, 1);
	cr_expect_eq(stops.reason, VM_STOP_CRASH, "reason %d: %s", stops.reason, stops.why);
	cr_expect(strstr(stops.why, "vCPU 0: guest triple-faulted (KVM_EXIT_SHUTDOWN)"), "%s",
	          stops.why);
	cr_expect_eq(vm.exit_counts[KVM_EXIT_SHUTDOWN], 1);
	cr_expect_eq(vm.vcpus[0]->state, VCPU_STOPPED);
}

Test(exits, int3_ends_the_vm, .init = setup, .fini = teardown)
{
	/*
	 * int3 with an empty IDT: a triple fault on VMX/SVM hosts; under nested
	 * PVM an emulation failure (KVM_EXIT_INTERNAL_ERROR). Either ends the VM.
	 */
	static const uint8_t code[] = {0xcc, 0xeb, 0xfe};

	guest_pmode(code, sizeof(code));
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	cr_assert(wait_stop(), "on_stop was not called");
	vm_stop_vcpus(&vm);
	cr_expect_eq(stops.calls, 1);
	cr_expect_eq(stops.reason, VM_STOP_CRASH, "reason %d: %s", stops.reason, stops.why);
	if (vm.exit_counts[KVM_EXIT_INTERNAL_ERROR]) {
		cr_expect(strstr(stops.why, "KVM internal error, suberror 1 (emulation failure), "
		                            "rip 0x1000"),
		          "%s", stops.why);
		cr_expect_eq(vm.exit_counts[KVM_EXIT_INTERNAL_ERROR], 1);
	} else {
		cr_expect_eq(vm.exit_counts[KVM_EXIT_SHUTDOWN], 1, "%s", stops.why);
	}
}

Test(exits, unknown_exit_is_a_crash, .init = setup, .fini = teardown)
{
	/* mov ecx, 0x12345678; rdmsr: with user-space MSR exits, an exit kiln does not handle */
	static const uint8_t code[] = {0x66, 0xb9, 0x78, 0x56, 0x34, 0x12, 0x0f, 0x32, 0xeb, 0xfe};
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR,
	                             .args[0] = KVM_MSR_EXIT_REASON_UNKNOWN};

	if (kvm_check_cap(&kvm, KVM_CAP_X86_USER_SPACE_MSR) <= 0)
		cr_skip_test("KVM_CAP_X86_USER_SPACE_MSR is not available");
	cr_assert_eq(ioctl(vm.fd, KVM_ENABLE_CAP, &cap), 0, "%s", strerror(errno));
	guest(0, 1, code, sizeof(code), CODE_GPA);
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	cr_assert(wait_stop(), "on_stop was not called");
	vm_stop_vcpus(&vm);
	cr_expect_eq(stops.reason, VM_STOP_CRASH, "reason %d: %s", stops.reason, stops.why);
	cr_expect(strstr(stops.why, "unexpected KVM exit reason 29"), "%s", stops.why);
	cr_expect_eq(vm.exit_counts[KVM_EXIT_X86_RDMSR], 1);
}

/* ---------------------------------------------------- pause and resume */

/* inc dword [0x500]; jmp back -- each vCPU its own counter through DS */
static const uint8_t spin_code[] = {0x66, 0xff, 0x06, 0x00, 0x05, 0xeb, 0xf9};

static uint32_t counter(unsigned id)
{
	uint32_t *p = gm_ptr(&mem, CODE_GPA + id * 0x10 + 0x500, 4);
	cr_assert_not_null(p);
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* waits until vCPU `id`'s counter passes `above` */
static bool counter_moves(unsigned id, uint32_t above)
{
	uint64_t end = now_ns() + WAIT_NS;
	while (now_ns() < end) {
		if (counter(id) > above)
			return true;
		usleep(1000);
	}
	return false;
}

Test(pause, two_spinning_vcpus, .init = setup, .fini = teardown)
{
	struct vcpu *v[2];
	struct kvm_mp_state runnable = {.mp_state = KVM_MP_STATE_RUNNABLE};

	for (unsigned id = 0; id < 2; id++)
		v[id] = guest(id, 2, spin_code, sizeof(spin_code), CODE_GPA + id * 0x10);
	/* the AP would wait for INIT/SIPI: let it run the same code at once */
	cr_assert_eq(ioctl(v[1]->fd, KVM_SET_MP_STATE, &runnable), 0, "%s", strerror(errno));

	cr_assert_eq(vm_pause_vcpus(&vm), 0, "pausing vCPUs that never started");
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	for (unsigned id = 0; id < 2; id++)
		cr_assert(counter_moves(id, 0), "vCPU %u does not run", id);

	for (int round = 0; round < 3; round++) {
		cr_assert_eq(vm_pause_vcpus(&vm), 0);
		cr_assert_eq(vm_pause_vcpus(&vm), 0, "pausing twice");
		uint32_t seen[2] = {counter(0), counter(1)};
		for (unsigned id = 0; id < 2; id++)
			cr_expect_eq(v[id]->state, VCPU_PAUSED);
		usleep(50000);
		for (unsigned id = 0; id < 2; id++)
			cr_expect_eq(counter(id), seen[id], "vCPU %u ran while paused", id);

		cr_assert_eq(vm_resume_vcpus(&vm), 0);
		for (unsigned id = 0; id < 2; id++)
			cr_assert(counter_moves(id, seen[id]), "vCPU %u did not resume", id);
	}

	/* stop from the paused state too */
	cr_assert_eq(vm_pause_vcpus(&vm), 0);
	vm_stop_vcpus(&vm);
	for (unsigned id = 0; id < 2; id++) {
		cr_expect_eq(v[id]->state, VCPU_STOPPED);
		cr_expect_not(v[id]->thread_started);
	}
	cr_expect_eq(stops.calls, 0, "%s", stops.why);
	cr_expect_gt(vm.exit_counts[KVM_EXIT_INTR], 0, "the kicks were counted");
}

/* kvmclock as KVM reads it now, in ns */
static uint64_t kvmclock_now(void)
{
	struct kvm_clock_data c = {0};
	cr_assert_eq(ioctl(vm.fd, KVM_GET_CLOCK, &c), 0, "%s", strerror(errno));
	return c.clock;
}

Test(pause, guest_time_stands_still_while_paused, .init = setup, .fini = teardown)
{
	struct vcpu *v[2];
	struct kvm_mp_state runnable = {.mp_state = KVM_MP_STATE_RUNNABLE};
	for (unsigned id = 0; id < 2; id++)
		v[id] = guest(id, 2, spin_code, sizeof(spin_code), CODE_GPA + id * 0x10);
	cr_assert_eq(ioctl(v[1]->fd, KVM_SET_MP_STATE, &runnable), 0, "%s", strerror(errno));
	int khz = ioctl(v[0]->fd, KVM_GET_TSC_KHZ, 0);
	cr_assert_gt(khz, 0, "KVM_GET_TSC_KHZ: %s", strerror(errno));
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	cr_assert(counter_moves(0, 0));

	cr_assert_eq(vm_pause_vcpus(&vm), 0);
	cr_assert(vm.time_held, "pausing did not hold guest time");
	uint64_t clock = vm.held_clock.clock, tsc[2] = {v[0]->held_tsc, v[1]->held_tsc};
	/* under a second: KVM would take an IA32_TSC write this close for a resync */
	usleep(300000);
	cr_assert_eq(vm_pause_vcpus(&vm), 0, "pausing twice");
	cr_assert_eq(vm.held_clock.clock, clock, "a second pause held a later time");
	usleep(300000);
	cr_assert_gt(kvmclock_now(), clock + 550000000ull, "KVM's clock itself stood still?");

	cr_assert_eq(vm_resume_vcpus(&vm), 0);
	cr_assert_not(vm.time_held);
	uint64_t after = kvmclock_now();
	cr_assert(counter_moves(0, counter(0)));
	cr_assert_eq(vm_pause_vcpus(&vm), 0);
	/* about the time it ran between the two pauses, not the second it sat paused */
	cr_expect_geq(after, clock, "kvmclock went back");
	cr_expect_lt(after - clock, 300000000ull, "kvmclock took in %llu ms of the pause",
	             (unsigned long long)((after - clock) / 1000000));
	for (unsigned id = 0; id < 2; id++) {
		uint64_t ran = v[id]->held_tsc - tsc[id];
		cr_expect_geq(v[id]->held_tsc, tsc[id], "vCPU %u's TSC went back", id);
		cr_expect_lt(ran / (uint64_t)khz, 300, "vCPU %u's TSC took in %llu ms of the pause",
		             id, (unsigned long long)(ran / (uint64_t)khz));
	}
	vm_stop_vcpus(&vm);
}

Test(pause, restart_after_stop, .init = setup, .fini = teardown)
{
	guest(0, 1, spin_code, sizeof(spin_code), CODE_GPA);
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	cr_assert(counter_moves(0, 0));
	vm_stop_vcpus(&vm);
	uint32_t seen = counter(0);
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	cr_assert(counter_moves(0, seen), "a stopped vCPU can be started again");
	vm_destroy(&vm); /* stops and joins by itself */
	cr_expect_null(vm.kvm);
}

/*
 * A vCPU paused while its thread handles an IN exit: KVM completes the IN
 * (AL, RIP) only at the next KVM_RUN, so kiln enters it once more before
 * parking, and the registers a snapshot would save are past the IN. The
 * port's read blocks until the pause was requested, as when the VMM asks
 * while a device is busy.
 */
struct held_port {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool reading, pause_requested;
};

static struct held_port held = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void held_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct held_port *h = opaque;
	struct timespec ts = deadline(WAIT_NS);
	(void)off;
	memset(data, 0x77, len);
	pthread_mutex_lock(&h->lock);
	h->reading = true;
	pthread_cond_broadcast(&h->cond);
	while (!h->pause_requested && pthread_cond_timedwait(&h->cond, &h->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&h->lock);
}

static void held_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	(void)opaque, (void)off, (void)data, (void)len;
}

static const struct bus_dev_ops held_ops = {.read = held_read, .write = held_write};

Test(pause, completes_the_exit_it_interrupts, .init = setup, .fini = teardown)
{
	/* in al, 0x14; jmp $ (0x14: after rec-pio, no in-kernel device there) */
	static const uint8_t code[] = {0xe4, 0x14, 0xeb, 0xfe};
	struct timespec ts = deadline(WAIT_NS);
	struct kvm_regs regs;

	held.reading = held.pause_requested = false;
	cr_assert_eq(bus_register(&vm.pio, 0x14, 1, &held_ops, &held, "held"), 0);
	struct vcpu *v = guest(0, 1, code, sizeof(code), CODE_GPA);
	cr_assert_eq(vm_start_vcpus(&vm), 0);
	pthread_mutex_lock(&held.lock);
	while (!held.reading && pthread_cond_timedwait(&held.cond, &held.lock, &ts) == 0)
		;
	cr_assert(held.reading, "the guest never read the port");
	vcpu_request_pause(v);
	held.pause_requested = true;
	pthread_cond_broadcast(&held.cond);
	pthread_mutex_unlock(&held.lock);
	vcpu_wait_parked(v);

	cr_assert_eq(v->state, VCPU_PAUSED);
	cr_assert_eq(vcpu_get_regs(v, &regs), 0);
	cr_expect_eq(regs.rip, 2, "RIP %#llx: the IN is not complete", regs.rip);
	cr_expect_eq(regs.rax & 0xff, 0x77, "AL %#llx", regs.rax & 0xff);
	vm_stop_vcpus(&vm);
	cr_expect_eq(stops.calls, 0, "%s", stops.why);
}
