/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vcpu: /dev/kvm, the VM file descriptor, vCPU threads and their exits, and
 * the x86_64 boot of a kernel (ELF vmlinux, PVH, bzImage).
 *
 * Threads: kvm_* and vm_* run on the VMM thread; each vCPU runs its own
 * thread (vcpu_thread) that loops on KVM_RUN and dispatches I/O exits to the
 * buses. A vCPU thread never exits the process: a guest crash ends the VM
 * through vm->ops->on_stop and the VMM decides what to do.
 */
#ifndef KILN_VCPU_H
#define KILN_VCPU_H

#include "common/common.h"
#include "memory/memory.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>

#define VM_MAX_VCPUS 32

/* fixed guest-physical addresses inside the MMIO hole */
#define VM_IDENTITY_MAP_ADDR 0xfeffc000ull /* KVM_SET_IDENTITY_MAP_ADDR, 1 page */
#define VM_TSS_ADDR          0xfeffd000ull /* KVM_SET_TSS_ADDR, 3 pages */
#define VM_IOAPIC_ADDR       0xfec00000ull
#define VM_LAPIC_ADDR        0xfee00000ull

/* --------------------------------------------------------------- /dev/kvm */

struct kvm {
	int fd;                              /* /dev/kvm */
	int vcpu_mmap_size;                  /* KVM_GET_VCPU_MMAP_SIZE */
	unsigned max_vcpus;                  /* min(KVM_CAP_MAX_VCPUS, VM_MAX_VCPUS) */
	struct kvm_cpuid2 *supported_cpuid;  /* KVM_GET_SUPPORTED_CPUID, malloc'd */
	struct kvm_msr_list *msr_index_list; /* KVM_GET_MSR_INDEX_LIST, malloc'd */
	/* KVM_GET_MSR_FEATURE_INDEX_LIST, malloc'd; NULL without KVM_CAP_GET_MSR_FEATURES */
	struct kvm_msr_list *msr_feature_list;
	/* optional capabilities (absent on some hosts, e.g. under nested PVM) */
	bool has_identity_map_addr; /* KVM_CAP_SET_IDENTITY_MAP_ADDR */
	bool has_xsave;             /* KVM_CAP_XSAVE */
};

/*
 * Opens /dev/kvm, checks KVM_GET_API_VERSION == 12 and every capability kiln
 * relies on (the message names the first missing one), and reads the
 * supported CPUID and the MSR lists (saved MSRs; feature MSRs when KVM has
 * KVM_CAP_GET_MSR_FEATURES). 0 / -errno with a message.
 */
int kvm_open(struct kvm *k, struct errbuf *e);
/* Frees what kvm_open() got. Safe on a zeroed struct and after a failed open. */
void kvm_close(struct kvm *k);

/* KVM_CHECK_EXTENSION on /dev/kvm: the capability's value, 0 when absent */
int kvm_check_cap(const struct kvm *k, long cap);

/* true when `msr` is in KVM_GET_MSR_INDEX_LIST */
bool kvm_has_msr(const struct kvm *k, uint32_t msr);

/* ---------------------------------------------------------------- the VM */

enum vm_stop_reason {
	VM_STOP_RESET,     /* the guest asked for a reset (i8042, triple fault as reset) */
	VM_STOP_SHUTDOWN,  /* KVM_EXIT_SHUTDOWN or SYSTEM_EVENT shutdown/poweroff */
	VM_STOP_CRASH,     /* INTERNAL_ERROR, FAIL_ENTRY, unknown exits, ioctl errors */
	VM_STOP_REQUESTED, /* the VMM stopped it */
};

struct vm;

/* callbacks from vCPU threads to the VMM; both must be async-safe w.r.t. vCPUs */
struct vm_ops {
	/*
	 * The VM must stop. Called at most once per vCPU thread, from that
	 * thread, with a line describing why (already logged). The VMM then
	 * calls vm_stop_vcpus() from its own thread.
	 */
	void (*on_stop)(struct vm *vm, enum vm_stop_reason reason, const char *why);
};

struct vcpu;

struct vm {
	struct kvm *kvm;
	int fd; /* KVM_CREATE_VM */
	struct guest_mem *mem;
	struct bus pio;
	struct bus mmio;
	const struct vm_ops *ops;
	void *opaque; /* for the VMM */
	unsigned nr_vcpus;
	/* two threads per core in the CPUID topology (machine-config smt); set before vcpu_create()
	 */
	bool smt;
	struct vcpu *vcpus[VM_MAX_VCPUS];
	/* per-exit-reason counters, indexed by KVM_EXIT_*, for metrics */
	uint64_t exit_counts[64];
	/*
	 * Guest time held while paused (vm_hold_time): kvmclock as KVM_GET_CLOCK
	 * read it, and each vCPU's IA32_TSC in its held_tsc. VMM thread only.
	 */
	bool time_held;
	struct kvm_clock_data held_clock;
};

/*
 * Creates the VM: KVM_CREATE_VM, TSS and identity-map addresses, the
 * in-kernel irqchip (PIC + IOAPIC + LAPICs) and PIT2, and empty buses.
 * Registers `mem` with KVM. 0 / -errno with a message. VMM thread.
 */
int vm_create(struct vm *vm, struct kvm *kvm, struct guest_mem *mem, const struct vm_ops *ops,
              void *opaque, struct errbuf *e);

/*
 * Stops and destroys every vCPU, empties the buses, closes the VM fd. Only
 * after a successful vm_create() (a no-op on a struct vm_create() failed on).
 * Guest memory stays the caller's. VMM thread.
 */
void vm_destroy(struct vm *vm);

/* the GSIs of the in-kernel IOAPIC (the default routing covers 0..23) */
#define VM_NR_GSIS 24

/*
 * Raises/lowers GSI `irq` on the in-kernel irqchip (KVM_IRQ_LINE). -EINVAL
 * for irq >= VM_NR_GSIS. Any thread.
 */
int vm_set_irq(struct vm *vm, uint32_t irq, bool level);

/* ---------------------------------------------------------------- vCPUs */

enum vcpu_run_state {
	VCPU_CREATED,
	VCPU_RUNNING,
	VCPU_PAUSED,
	VCPU_STOPPED,
};

struct vcpu {
	struct vm *vm;
	unsigned id; /* also its APIC id */
	int fd;
	struct kvm_run *run; /* mmap'd kvm_run */
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vcpu_run_state state;
	bool pause_requested;
	bool stop_requested;

	uint64_t held_tsc; /* IA32_TSC while the VM's time is held (struct vm) */

	/* rate limit of the debug lines about unhandled I/O (vCPU thread only) */
	uint64_t unhandled_window_ns;
	unsigned unhandled_in_window;
	unsigned unhandled_suppressed;
};

/*
 * The signal that kicks a vCPU thread out of KVM_RUN. Its handler does
 * nothing and is installed without SA_RESTART; vCPU threads block every
 * other signal. The seccomp filters must allow rt_sigreturn for it.
 */
#define VCPU_KICK_SIGNAL (SIGRTMIN + 1)

/*
 * Creates vCPU `id` (0 .. nr-1 of `nr`): KVM_CREATE_VCPU, mmap of kvm_run,
 * CPUID normalised for this vCPU (APIC id, topology leaves 0x1/0x4/0xb/0x1f
 * for `nr` vCPUs, hypervisor bit, KVM paravirt leaves), the MSRs Linux
 * expects at reset, FPU, and LAPIC LINT0 = ExtINT, LINT1 = NMI.
 * Does not start a thread. 0 / -errno with a message. VMM thread.
 */
int vcpu_create(struct vm *vm, unsigned id, unsigned nr, struct vcpu **out, struct errbuf *e);

/*
 * Stops v's thread if it runs (as vm_stop_vcpus() does for one vCPU),
 * removes v from its VM, closes it and frees it. VMM thread.
 */
void vcpu_destroy(struct vcpu *v);

/* thin KVM_GET/SET_REGS and KVM_GET/SET_SREGS wrappers: 0 / -errno. Any thread
 * while v's thread is not running or paused, else v's own thread. */
int vcpu_get_regs(struct vcpu *v, struct kvm_regs *regs);
int vcpu_set_regs(struct vcpu *v, const struct kvm_regs *regs);
int vcpu_get_sregs(struct vcpu *v, struct kvm_sregs *sregs);
int vcpu_set_sregs(struct vcpu *v, const struct kvm_sregs *sregs);

/*
 * The reset state Linux expects on every vCPU (vcpu/regs.c): the MSRs of
 * its list that vcpu_msr_list() holds on this host, the x87/SSE
 * control words (KVM_SET_FPU), and LAPIC LVT LINT0 = ExtINT, LINT1 = NMI.
 * 0 / -errno with a message. VMM thread, before the vCPU's thread starts.
 */
int vcpu_init_state(struct vcpu *v, struct errbuf *e);

/*
 * The MSRs that make up v's state on this host (vcpu/msr.c), each once:
 * KVM_GET_MSR_INDEX_LIST, then KVM_GET_MSR_FEATURE_INDEX_LIST, then IA32_PAT
 * and the MTRRs that v's IA32_MTRRCAP announces (MTRR_DEF_TYPE, the fixed
 * ranges when its FIX bit is set, VCNT PHYSBASE/PHYSMASK pairs), which KVM
 * emulates without listing them. Values zeroed. A malloc'd table, NULL when
 * out of memory. Any thread while v is out of KVM_RUN.
 */
struct kvm_msrs *vcpu_msr_list(struct vcpu *v);
/* true when `index` is in `list` (from vcpu_msr_list; false for NULL) */
bool vcpu_msr_listed(const struct kvm_msrs *list, uint32_t index);

/* --------------------------------------------------------------- CPUID */

/* how many entries cpuid_normalize() may add to a table */
#define CPUID_EXTRA_ENTRIES 8

/*
 * Rewrites a KVM_GET_SUPPORTED_CPUID table for vCPU `id` of `nr` (all in
 * one package; 2 threads per core when `smt`, else 1): APIC ids and counts
 * in leaves 0x1, 0x4, 0xb, 0x1f, 0x80000008 and 0x8000001e, the hypervisor
 * bit, no VMX, the KVM signature leaf 0x40000000, leaf 0x6 reduced to ARAT,
 * leaf 0xa (PMU) zeroed, leaf 0xd made consistent (cpuid_fix_xsave).
 * Leaves 0xb (and 0x1f when the table has it) are rebuilt with their SMT
 * and core levels, so the table's allocation must hold c->nent +
 * CPUID_EXTRA_ENTRIES entries; c->nent grows accordingly. Pure. -EINVAL
 * for nr == 0, nr > 255 or id >= nr.
 */
int cpuid_normalize(struct kvm_cpuid2 *c, unsigned id, unsigned nr, bool smt);

/*
 * Makes leaf 0xD (XSAVE; SDM vol. 1 ch. 13, vol. 2A "CPUID") agree with
 * the rest of the table: no XSAVE in leaf 0x1 ECX[26] zeroes every 0xD
 * sub-leaf; an XCR0 component (0xD.0 EDX:EAX) whose feature flag is clear
 * (AVX, MPX, AVX-512F, PKU, AMX-TILE) or whose sub-leaf is absent or of
 * size 0 is dropped, IA32_XSS components (0xD.1 EDX:ECX) likewise and all
 * of them without XSAVES; 0xD.0 EBX and ECX become the standard-format size
 * of the XCR0 components kept, 0xD.1 EBX the compacted size of XCR0 | XSS
 * (0 without XSAVEC and XSAVES), and the sub-leaves of dropped components
 * are zeroed. Run by cpuid_normalize() and after a CPU template changed
 * the table. Pure; a table without leaf 0xD is left alone.
 */
void cpuid_fix_xsave(struct kvm_cpuid2 *c);

/*
 * The entry (fn, index) of `c`, NULL when the table has none. Pure.
 */
struct kvm_cpuid_entry2 *cpuid_entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index);

/* ---------------------------------------- CPU templates (cpu_template.c) */

enum cpuid_regno { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/* one register of one CPUID entry: new = (old & ~mask) | (value & mask) */
struct cpu_tmpl_cpuid {
	uint32_t leaf, subleaf;
	uint8_t reg; /* enum cpuid_regno */
	uint32_t mask, value;
};

/* one MSR, read from the vCPU and written back: (old & ~mask) | (value & mask) */
struct cpu_tmpl_msr {
	uint32_t addr;
	uint64_t mask, value;
};

enum cpu_vendor { CPU_VENDOR_OTHER, CPU_VENDOR_INTEL, CPU_VENDOR_AMD };

/*
 * One of Firecracker's static CPU templates (machine-config's
 * cpu_template): the vendor and processor models it may be used on, and
 * its modifiers, a shared part (`base`) then the template's own (`own`).
 */
struct cpu_template {
	const char *name; /* "C3", "T2", "T2S", "T2CL", "T2A" */
	enum cpu_vendor vendor;
	const char *hosts;      /* the models below, for messages */
	const uint32_t *models; /* leaf 0x1 EAX & CPU_MODEL_MASK of each model */
	unsigned nr_models;
	const struct cpu_tmpl_cpuid *base, *own;
	unsigned nr_base, nr_own;
	const struct cpu_tmpl_msr *msr;
	unsigned nr_msr;
};

/* leaf 0x1 EAX without the processor type and reserved bits: family, model, stepping */
#define CPU_MODEL_MASK 0x0fff0fffu

/* how many CPUID rows `t` has (base and own), and row i < that: base first */
unsigned cpu_template_rows(const struct cpu_template *t);
const struct cpu_tmpl_cpuid *cpu_template_row(const struct cpu_template *t, unsigned i);

/* the template called `name`; NULL for "None" and for any other name */
const struct cpu_template *cpu_template_find(const char *name);

/* the vendor of a leaf 0x0 signature (EBX, EDX, ECX as 12 characters) */
enum cpu_vendor cpu_vendor_of(const char signature[12]);

/*
 * This host's processor, as the CPUID instruction reports it to kiln (not
 * KVM's view): the leaf 0x0 signature (12 characters and a NUL) and leaf
 * 0x1 EAX. Any thread.
 */
void cpu_host_id(char signature[13], uint32_t *leaf1_eax);

/*
 * Whether `t` may be used on a processor with `signature` and leaf 0x1
 * `eax`, as Firecracker decides (another vendor first, then a model not in
 * the template's list). 0, or -EINVAL with Firecracker's text and the
 * reason. Pure.
 */
int cpu_template_check_host(const struct cpu_template *t, const char signature[12], uint32_t eax,
                            struct errbuf *e);

/*
 * Applies one CPUID modifier to the entry (leaf, subleaf) of `c`. 0, or
 * -ENOENT when `c` has no such entry (Firecracker refuses the template
 * then). Pure.
 */
int cpuid_apply_modifier(struct kvm_cpuid2 *c, const struct cpu_tmpl_cpuid *m);

/*
 * Applies every CPUID modifier of `t` to `c`, then cpuid_fix_xsave(). 0, or
 * -ENOENT with a message naming the leaf the table lacks (c is then half
 * changed: the caller throws it away). Pure.
 */
int cpu_template_apply_cpuid(struct kvm_cpuid2 *c, const struct cpu_template *t, struct errbuf *e);

/*
 * Copies kvm->supported_cpuid, normalises it for vCPU v->id of `nr` (two
 * threads per core when v->vm->smt and nr > 1) and applies it with KVM_SET_CPUID2. 0 / -errno with
 * a message.
 */
int vcpu_set_cpuid(struct vcpu *v, unsigned nr, struct errbuf *e);

/*
 * KVM_GET_CPUID2 of `v` into a malloc'd table whose nent is the number of
 * entries KVM wrote (on every kernel: see CPUID_UNWRITTEN in cpuid.c).
 * 0 / -errno with a message. Any thread while v is out of KVM_RUN.
 */
int vcpu_get_cpuid(struct vcpu *v, struct kvm_cpuid2 **out, struct errbuf *e);

/*
 * One vCPU's thread, for vm_*_vcpus() below (VMM thread; never from a vCPU
 * thread). vcpu_start: -EBUSY if its thread runs, else pthread_create's
 * error. vcpu_request_pause / vcpu_request_stop kick it out of KVM_RUN and
 * return at once; vcpu_wait_parked returns once it is paused or its thread
 * has ended; vcpu_join waits for a stopped thread to end (idempotent).
 */
int vcpu_start(struct vcpu *v);
/* the same, but the thread parks before its first KVM_RUN (restored VMs): vcpu_resume runs it */
int vcpu_start_paused(struct vcpu *v);
void vcpu_request_pause(struct vcpu *v);
void vcpu_wait_parked(struct vcpu *v);
void vcpu_resume(struct vcpu *v);
void vcpu_request_stop(struct vcpu *v);
void vcpu_join(struct vcpu *v);

/*
 * Starts every vCPU's thread (KVM_RUN loop). The BSP's registers must have
 * been set by boot_setup_bsp(); APs wait for INIT/SIPI in the kernel.
 * 0 / -errno. VMM thread.
 */
int vm_start_vcpus(struct vm *vm);

/*
 * Pauses every vCPU: kicks each out of KVM_RUN (signal + immediate_exit)
 * and returns once all are parked outside KVM_RUN, each with its last
 * I/O or MMIO exit completed by KVM (so the saved state holds no half-done
 * instruction). vm_resume_vcpus() lets them run again. VMM thread. 0 / -errno.
 */
int vm_pause_vcpus(struct vm *vm);
int vm_resume_vcpus(struct vm *vm);

/*
 * Guest time does not run while the VM is paused, as it does not while a
 * snapshot sits on disk: vm_pause_vcpus() holds it (vm_hold_time: kvmclock
 * and every vCPU's TSC as they were once all vCPUs parked), and
 * vm_resume_vcpus() sets them back (the cycles that passed come off each
 * vCPU's TSC offset, then KVM_SET_CLOCK, then KVM_KVMCLOCK_CTRL so the
 * guest's watchdogs know it was stopped) before any vCPU runs again. So a
 * guest's monotonic clocks, whichever clocksource it picked (kvm-clock or
 * the TSC), do not jump by the length of a pause; its wall clock falls behind by it, as after a
 * snapshot restore, until the guest resynchronises (NTP, a guest agent).
 * A snapshot taken while paused saves the held values. Once a restored VM
 * is built and parked, vm_hold_time(vm, true) holds the restored time: the
 * TSCs the snapshot saved (vcpu_restore keeps them in held_tsc, because KVM
 * may take an IA32_TSC write close to a new vCPU's own TSC for a resync and
 * ignore it) and kvmclock as restored. A failing ioctl is logged and leaves
 * time running (the pause itself still works). Every vCPU must be parked.
 * VMM thread.
 */
void vm_hold_time(struct vm *vm, bool restored);
#define MSR_IA32_TSC 0x10u

/* Stops and joins every vCPU thread (idempotent). VMM thread. */
void vm_stop_vcpus(struct vm *vm);

/* ---------------------------------------------------------- saved state */

/*
 * Snapshots and live migration (vcpu/state_vcpu.c, state_cpu.c, state_vm.c):
 * each vCPU, the in-kernel irqchip, the PIT and kvmclock as versioned
 * common/state.h sections, written field by field. A restorer accepts every
 * section version from VCPU_STATE_MIN_VERSION (etc.) to the current one.
 *
 * Section ids and order as vm_save() writes them: "vcpu.0" .. "vcpu.<n-1>",
 * "irqchip", "pit", "clock". Restore them in that order, and the devices
 * (devices.h) after "irqchip", so that their re-driven interrupt lines meet
 * the restored PIC/IOAPIC.
 *
 * Guest time across save and restore (the "clock" section): KVM_GET_CLOCK
 * reads kvmclock (and, when the host clocksource is the TSC, the flags
 * KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC with a realtime/host TSC pair);
 * each vCPU's IA32_TSC is saved among its MSRs. By default a restore sets
 * kvmclock back to the saved value (KVM_SET_CLOCK, flags 0) and each TSC to
 * its saved value, as Firecracker does: the guest sees no time pass while it
 * sat in the snapshot, and its clocks never go backwards. With
 * VM_RESTORE_CLOCK_REALTIME (live migration), kvmclock is advanced by the
 * wall-clock time elapsed since the save (KVM_CLOCK_REALTIME when the saving
 * host reported it, else kiln's own CLOCK_REALTIME reading); the TSC is not
 * advanced (TSC_CONTROL is absent here), so only kvmclock users see the gap.
 * Every vCPU whose guest enabled kvmclock gets KVM_KVMCLOCK_CTRL at restore,
 * so the guest's soft-lockup watchdog forgives the pause.
 */
#define VCPU_STATE_VERSION     1
#define VCPU_STATE_MIN_VERSION 1
#define VM_STATE_VERSION       1 /* "irqchip", "pit" and "clock" */
#define VM_STATE_MIN_VERSION   1

struct state_writer;
struct state_reader;

/*
 * A CPUID table as snapshots and the migration handshake carry it: u32
 * count, then function, index, flags, eax, ebx, ecx, edx (u32 each) per
 * entry. The reader returns a malloc'd table, or -EINVAL with a message.
 */
void vcpu_state_put_cpuid(struct state_writer *w, const struct kvm_cpuid2 *c);
int vcpu_state_read_cpuid(struct state_reader *r, struct kvm_cpuid2 **out, struct errbuf *e);

/*
 * Appends the section "vcpu.<id>": CPUID table, REGS, SREGS (SREGS2 when
 * KVM has it), XSAVE (KVM_GET_XSAVE2 size, or 4 KiB; the FPU without
 * XSAVE), XCRs, every MSR of vcpu_msr_list() KVM_GET_MSRS can read, LAPIC,
 * VCPU_EVENTS, DEBUGREGS, MP_STATE. `v`
 * must be out of KVM_RUN (created, paused or stopped): -EBUSY otherwise.
 * 0 / -errno with a message. VMM thread.
 */
int vcpu_save(struct vcpu *v, struct state_writer *w, struct errbuf *e);

/*
 * Loads a "vcpu.<id>" payload of `version` into `v`, created by
 * vcpu_create() and not running (-EBUSY otherwise). The whole section is
 * read and checked before anything is set, and its CPUID is checked
 * (cpuid_check_compat) against the one vcpu_create() gave `v`, as KVM
 * reports it back: that is what this host offers a vCPU (under nested PVM
 * it has host features KVM_GET_SUPPORTED_CPUID leaves out). Then CPUID,
 * SREGS, REGS, MSRs, XSAVE/FPU, XCRs, MP_STATE, LAPIC, TSC_DEADLINE,
 * VCPU_EVENTS, DEBUGREGS are set in that order. An MSR this host's KVM
 * refuses is accepted when the vCPU holds the saved value already (KVM
 * derives it from other state), skipped when its saved value is 0, else
 * refused. 0 / -errno with a message; after a failure past the checks the
 * vCPU is half restored and should be destroyed. VMM thread.
 */
int vcpu_restore(struct vcpu *v, struct state_reader *r, uint16_t version, struct errbuf *e);

/*
 * Can a guest that ran with CPUID table `saved` continue on a host that
 * offers a vCPU the table `host` (KVM_GET_CPUID2 of a vCPU created here, or
 * KVM_GET_SUPPORTED_CPUID)? Refuses (-ENOTSUP, a message saying
 * what differs) another vendor, family, model or stepping, and any feature
 * bit of leaves 0x1, 0x7, 0xd, 0x80000001, 0x80000007, 0x80000008 and
 * 0x40000001 the host lacks (bits KVM or kiln set per vCPU, such as
 * OSXSAVE or the hypervisor bit, are not compared). `what` names the
 * saved guest in the message ("snapshot", "migration"). Pure.
 */
int cpuid_check_compat(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *host,
                       const char *what, struct errbuf *e);

/*
 * Appends every vCPU's section (vcpu_save, id order), then "irqchip" (PIC
 * master, PIC slave, IOAPIC), "pit" (KVM_GET_PIT2) and "clock"
 * (KVM_GET_CLOCK). Every vCPU must be out of KVM_RUN. 0 / -errno with a
 * message. VMM thread.
 */
int vm_save(struct vm *vm, struct state_writer *w, struct errbuf *e);

/* vm_restore flags */
#define VM_RESTORE_CLOCK_REALTIME 0x1u /* advance kvmclock by the wall time since the save */

/*
 * Restores one section that vm_save() wrote: "vcpu.<n>" into vm->vcpus[n]
 * (vcpu_restore), "irqchip", "pit" or "clock". `r` reads exactly the
 * section's payload (sr_next's sub-reader). Returns -ENOENT, without a
 * message, for an id that is not the VM's, so a caller can offer each
 * section to every module in turn; other failures are -errno with a
 * message. VMM thread, vCPUs not running.
 */
int vm_restore_section(struct vm *vm, const char *id, uint16_t version, struct state_reader *r,
                       unsigned flags, struct errbuf *e);

/*
 * Restores every section of `r` with vm_restore_section(), refusing an id
 * that is not the VM's, and checks that each vCPU, "irqchip", "pit" and
 * "clock" came exactly once. 0 / -errno with a message. VMM thread.
 */
int vm_restore(struct vm *vm, struct state_reader *r, unsigned flags, struct errbuf *e);

/*
 * For a caller that restores the VM's sections one by one among others
 * (vm_restore_section): vm_section_bit() is the section's bit in a mask of
 * the sections vm_save() writes (0 for an id that is not one of them, and
 * each id has a bit of its own); vm_restore_check() says whether a mask of
 * the sections restored has each vCPU of `vm`, "irqchip", "pit" and
 * "clock": 0, or -EINVAL naming the first one missing. Pure.
 */
uint64_t vm_section_bit(const char *id);
int vm_restore_check(const struct vm *vm, uint64_t seen, struct errbuf *e);

/* ----------------------------------------------------------------- boot */

/* one virtio-mmio device as the guest's DSDT describes it */
struct boot_acpi_virtio {
	uint64_t base; /* its register window; base + size must lie below 4 GiB */
	uint32_t size;
	uint32_t gsi; /* its interrupt line (edge-triggered, active high) */
};

/* the devices the DSDT describes, besides the CPUs the MADT lists */
struct boot_acpi_devices {
	const struct boot_acpi_virtio *virtio; /* nr_virtio entries, _UID = index */
	unsigned nr_virtio;                    /* at most BOOT_ACPI_VIRTIO_MAX */
	bool serial;                           /* COM1: I/O 0x3f8-0x3ff, ISA IRQ 4 */
	bool i8042;                            /* I/O 0x60 and 0x64, ISA IRQ 1 */
};

#define BOOT_ACPI_VIRTIO_MAX 64

struct boot_config {
	const char *kernel_path; /* ELF vmlinux or bzImage */
	const char *initrd_path; /* NULL for none */
	const char *cmdline;     /* NULL for empty */
	unsigned nr_vcpus;
	const struct boot_acpi_devices *devices; /* for the DSDT; NULL: none */
};

enum boot_mode {
	BOOT_LINUX64, /* 64-bit entry: long mode, rsi = boot_params (zero page) */
	BOOT_PVH,     /* PVH: 32-bit protected mode, ebx = hvm_start_info */
};

enum boot_kernel_format {
	BOOT_FORMAT_ELF,     /* an ELF64 x86_64 executable: vmlinux or a test guest */
	BOOT_FORMAT_BZIMAGE, /* a bzImage, entered at its 64-bit entry */
};

struct boot_info {
	enum boot_mode mode;
	uint64_t entry;                    /* guest-physical entry point */
	uint64_t params_gpa;               /* zero page (LINUX64) or hvm_start_info (PVH) */
	uint64_t kernel_start, kernel_end; /* guest-physical extent loaded */
	uint64_t initrd_gpa, initrd_size;
	enum boot_kernel_format format;
};

/*
 * Loads the kernel (ELF with or without a PVH note, or bzImage), the initrd
 * and the command line into guest memory, and writes the zero page /
 * hvm_start_info with the e820 map, plus the MP table and the ACPI tables
 * (at BOOT_ACPI_RSDP_ADDR, which the zero page / start info point at) for
 * `nr_vcpus` and cfg->devices.
 * Prefers PVH for an ELF that has the note, like Firecracker. Every bad
 * input is a precise message and -errno; nothing is written outside RAM.
 * Follows the Linux x86 boot protocol 2.15 (Documentation/arch/x86/boot.rst)
 * and the Xen PVH ABI (hvm_start_info version 1). VMM thread.
 * For a bzImage, kernel_end includes the init_size bytes its decompressor
 * claims; the initrd always lies above kernel_end.
 * `gm` must be RAM as gm_init left it (zero-filled): an ELF's BSS is not
 * cleared again.
 */
int boot_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_info *out,
              struct errbuf *e);

/*
 * Sets the BSP's registers for `bi`: for LINUX64 a GDT, identity page
 * tables for the first 4 GiB, long mode in sregs and rsi = zero page; for
 * PVH flat 32-bit protected mode and ebx = start_info. 0 / -errno
 * (logged). VMM thread, before the vCPU's thread starts.
 */
int boot_setup_bsp(struct vcpu *bsp, struct guest_mem *gm, const struct boot_info *bi);

/*
 * The pure half of boot_setup_bsp(): writes the GDT (and for LINUX64 the
 * page tables) into `gm`, fills all of `regs` and the mode fields of
 * `sregs` (segments, GDT/IDT, CR0/CR3/CR4, EFER); other sregs fields keep
 * what the caller read from KVM. 0, -EINVAL for a bad mode or an entry
 * above 4 GiB in PVH, -EFAULT when low RAM is missing.
 */
int boot_bsp_state(struct guest_mem *gm, const struct boot_info *bi, struct kvm_regs *regs,
                   struct kvm_sregs *sregs);

/*
 * The Intel MultiProcessor Specification 1.4 tables for `nr_vcpus` CPUs:
 * the floating pointer followed by the configuration table (one processor
 * entry per vCPU, the ISA bus, the IOAPIC, IRQs 0-15 and LINT0/LINT1),
 * written into `buf` (`len` bytes) that the guest sees at `gpa`. Pure.
 * Returns the bytes written, -EINVAL for nr_vcpus 0 or > VM_MAX_VCPUS or
 * a gpa above 4 GiB, -ENOSPC when `len` is too small.
 */
size_t boot_mptable_size(unsigned nr_vcpus);
int boot_mptable_write(void *buf, size_t len, uint64_t gpa, unsigned nr_vcpus);

/*
 * The ACPI 6.5 tables for `nr_vcpus` CPUs and the devices `devs` (NULL:
 * none), for kernels without an MP-table parser or the virtio-mmio
 * command-line option: the RSDP (revision 2, both checksums) at `gpa`
 * itself, then the XSDT, a hardware-reduced FADT (revision 6), the MADT
 * (one enabled local APIC per vCPU, the IOAPIC with id nr_vcpus at
 * VM_IOAPIC_ADDR from GSI 0, LINT1 = NMI; no interrupt source override, as
 * KVM's default routing sends GSI n to pin n) and the DSDT, whose AML
 * declares under \_SB_ each virtio device (Linux's virtio-mmio binding:
 * _HID "LNRO0005", _UID its index, _CCA 1, _CRS its window and GSI), COM1
 * (PNP0501) and the i8042 (PNP0303) when present. Written into `buf`
 * (`len` bytes) that the guest sees at `gpa`. Pure. boot_acpi_size() is
 * the size boot_acpi_write() needs for the same arguments (for arguments it
 * refuses, a size that means nothing). boot_acpi_write() returns the
 * bytes written, -EINVAL for nr_vcpus 0 or > VM_MAX_VCPUS, a gpa not
 * 16-byte aligned, tables crossing 4 GiB, more than BOOT_ACPI_VIRTIO_MAX
 * virtio devices or one whose window is empty or crosses 4 GiB, -ENOSPC
 * when `len` is too small.
 */
size_t boot_acpi_size(unsigned nr_vcpus, const struct boot_acpi_devices *devs);
int boot_acpi_write(void *buf, size_t len, uint64_t gpa, unsigned nr_vcpus,
                    const struct boot_acpi_devices *devs);

/*
 * Where boot_load puts the ACPI tables: the RSDP at the start of the BIOS
 * area that e820 reserves (Linux's legacy scan of 0xE0000-0xFFFFF finds it
 * there too; the zero page's acpi_rsdp_addr and hvm_start_info.rsdp_paddr
 * point at it).
 */
#define BOOT_ACPI_RSDP_ADDR 0xe0000ull
#define BOOT_ACPI_END       0x100000ull

/* the largest command line kiln accepts (boot protocol cmdline_size for 2.06+) */
#define BOOT_CMDLINE_MAX 2048

/*
 * Guest-physical layout of what boot_load and boot_setup_bsp write. All of
 * it lies in the usable RAM below the EBDA (the guest copies what it keeps
 * before reusing that RAM); the MP table is at GM_EBDA_START and the
 * kernel never below BOOT_KERNEL_MIN_ADDR.
 */
#define BOOT_GDT_ADDR         0x500ull
#define BOOT_PVH_INFO_ADDR    0x6000ull /* struct hvm_start_info */
#define BOOT_PVH_MODLIST_ADDR 0x6040ull /* one hvm_modlist_entry: the initrd */
#define BOOT_PVH_MEMMAP_ADDR  0x6100ull /* up to BOOT_PVH_MEMMAP_MAX entries */
#define BOOT_PVH_MEMMAP_MAX   128
#define BOOT_ZERO_PAGE_ADDR   0x7000ull
#define BOOT_STACK_TOP        0x8ff0ull
#define BOOT_PML4_ADDR        0x9000ull
#define BOOT_PDPT_ADDR        0xa000ull
#define BOOT_PD_ADDR          0xb000ull /* 4 pages: 4 GiB in 2 MiB pages */
#define BOOT_CMDLINE_ADDR     0x20000ull
#define BOOT_KERNEL_MIN_ADDR  GM_HIMEM_START

/* GDT selectors (LINUX64 uses Linux's __BOOT_CS / __BOOT_DS) */
#define BOOT_SEL_CODE32 0x08
#define BOOT_SEL_CODE64 0x10
#define BOOT_SEL_DATA   0x18
#define BOOT_SEL_TSS    0x20

#endif
