// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/state_vm.c: the VM-wide saved state -- the in-kernel PIC pair and
 * IOAPIC ("irqchip"), the PIT ("pit"), kvmclock ("clock") -- and the
 * dispatch of a VM's sections (see "saved state" in vcpu.h for the order
 * and for how guest time behaves).
 *
 * Version 1 payloads (little endian, field by field; the tables below give
 * the order inside each struct):
 *   irqchip: PIC master and PIC slave (pic_fields), the IOAPIC
 *            (ioapic_fields) and its 24 redirection entries as the 64-bit
 *            register (82093AA IOAPIC datasheet, "I/O Redirection Table
 *            Registers")
 *   pit:     3 channels (pit_channel_fields), u32 flags
 *   clock:   kvmclock ns (u64), flags (u32), KVM's realtime and host_tsc
 *            (u64, meaningful when flags say so), kiln's CLOCK_REALTIME ns
 * Ioctls: Linux Documentation/virt/kvm/api.rst.
 */
#define LOG_MODULE "vcpu"
#include "state_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define PIT_MODE_MAX    5       /* i8254 modes 0-5; KVM folds 6 and 7 into 2 and 3 */
#define PIT_MODE_RESET  0xff    /* KVM's mode for a channel not programmed since reset */
#define PIT_COUNT_MAX   0x10000 /* a count of 0 means 65536 */
#define PIT_FLAGS_KNOWN (KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)

static int vm_ioctl(struct vm *vm, unsigned long req, void *arg, const char *name, struct errbuf *e)
{
	if (ioctl(vm->fd, req, arg) < 0)
		return errf(e, errno, "%s failed: %s", name, strerror(errno));
	return 0;
}

/* ---------------------------------------------------------------- irqchip */

#define F_PIC(m)  STATE_FIELD(struct kvm_pic_state, m)
#define F_IO(m)   STATE_FIELD(struct kvm_ioapic_state, m)
#define F_PITC(m) STATE_FIELD(struct kvm_pit_channel_state, m)

static const struct state_field pic_fields[] = {
        F_PIC(last_irr),
        F_PIC(irr),
        F_PIC(imr),
        F_PIC(isr),
        F_PIC(priority_add),
        F_PIC(irq_base),
        F_PIC(read_reg_select),
        F_PIC(poll),
        F_PIC(special_mask),
        F_PIC(init_state),
        F_PIC(auto_eoi),
        F_PIC(rotate_on_auto_eoi),
        F_PIC(special_fully_nested_mode),
        F_PIC(init4),
        F_PIC(elcr),
        F_PIC(elcr_mask),
};

/* then the 24 redirection entries, each as its 64-bit register */
static const struct state_field ioapic_fields[] = {
        F_IO(base_address),
        F_IO(ioregsel),
        F_IO(id),
        F_IO(irr),
};

static const struct state_field pit_channel_fields[] = {
        F_PITC(count),
        F_PITC(latched_count),
        F_PITC(count_latched),
        F_PITC(status_latched),
        F_PITC(status),
        F_PITC(read_state),
        F_PITC(write_state),
        F_PITC(write_latch),
        F_PITC(rw_mode),
        F_PITC(mode),
        F_PITC(bcd),
        F_PITC(gate),
        F_PITC(count_load_time),
};

#define PUT(w, base, table) vcpu_state_put_fields(w, base, table, ARRAY_SIZE(table))
#define GET(r, base, table) vcpu_state_get_fields(r, base, table, ARRAY_SIZE(table))

static int save_irqchip(struct vm *vm, struct state_writer *w, struct errbuf *e)
{
	struct kvm_irqchip chip[KVM_NR_IRQCHIPS];
	int ret;

	for (uint32_t i = 0; i < KVM_NR_IRQCHIPS; i++) {
		memset(&chip[i], 0, sizeof(chip[i]));
		chip[i].chip_id = i;
		if ((ret = vm_ioctl(vm, KVM_GET_IRQCHIP, &chip[i], "KVM_GET_IRQCHIP", e)) < 0)
			return ret;
	}
	sw_begin(w, "irqchip", VM_STATE_VERSION);
	PUT(w, &chip[KVM_IRQCHIP_PIC_MASTER].chip.pic, pic_fields);
	PUT(w, &chip[KVM_IRQCHIP_PIC_SLAVE].chip.pic, pic_fields);
	const struct kvm_ioapic_state *io = &chip[KVM_IRQCHIP_IOAPIC].chip.ioapic;
	PUT(w, io, ioapic_fields);
	for (unsigned pin = 0; pin < KVM_IOAPIC_NUM_PINS; pin++)
		sw_u64(w, io->redirtbl[pin].bits);
	sw_end(w);
	return 0;
}

static int restore_irqchip(struct vm *vm, struct state_reader *r, struct errbuf *e)
{
	struct kvm_irqchip chip[KVM_NR_IRQCHIPS];
	int ret;

	memset(chip, 0, sizeof(chip));
	GET(r, &chip[KVM_IRQCHIP_PIC_MASTER].chip.pic, pic_fields);
	GET(r, &chip[KVM_IRQCHIP_PIC_SLAVE].chip.pic, pic_fields);
	struct kvm_ioapic_state *io = &chip[KVM_IRQCHIP_IOAPIC].chip.ioapic;
	GET(r, io, ioapic_fields);
	for (unsigned pin = 0; pin < KVM_IOAPIC_NUM_PINS; pin++)
		io->redirtbl[pin].bits = sr_u64(r);
	if ((ret = vcpu_state_check_end(r, "irqchip", e)) < 0)
		return ret;
	/* KVM decodes guest accesses at base_address: it must stay where kiln's MP table says */
	if (io->base_address != VM_IOAPIC_ADDR)
		return errf(e, EINVAL, "snapshot: the IOAPIC is at %#llx, not %#llx",
		            (unsigned long long)io->base_address, VM_IOAPIC_ADDR);
	for (uint32_t i = 0; i < KVM_NR_IRQCHIPS; i++) {
		chip[i].chip_id = i;
		if ((ret = vm_ioctl(vm, KVM_SET_IRQCHIP, &chip[i], "KVM_SET_IRQCHIP", e)) < 0)
			return ret;
	}
	return 0;
}

/* -------------------------------------------------------------------- pit */

static int save_pit(struct vm *vm, struct state_writer *w, struct errbuf *e)
{
	struct kvm_pit_state2 pit;
	int ret;

	memset(&pit, 0, sizeof(pit));
	if ((ret = vm_ioctl(vm, KVM_GET_PIT2, &pit, "KVM_GET_PIT2", e)) < 0)
		return ret;
	sw_begin(w, "pit", VM_STATE_VERSION);
	for (unsigned i = 0; i < 3; i++)
		PUT(w, &pit.channels[i], pit_channel_fields);
	sw_u32(w, pit.flags);
	sw_end(w);
	return 0;
}

/*
 * KVM_SET_PIT2 reloads each channel's count and restarts it from the time
 * of the call (count_load_time is the saving host's clock and is ignored),
 * so a periodic timer keeps its period but not its phase.
 */
static int restore_pit(struct vm *vm, struct state_reader *r, struct errbuf *e)
{
	struct kvm_pit_state2 pit;
	int ret;

	memset(&pit, 0, sizeof(pit));
	for (unsigned i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *c = &pit.channels[i];
		GET(r, c, pit_channel_fields);
		if (!sr_error(r) && ((c->mode > PIT_MODE_MAX && c->mode != PIT_MODE_RESET) ||
		                     c->count > PIT_COUNT_MAX))
			return errf(e, EINVAL, "snapshot: PIT channel %u has mode %u, count %u", i,
			            c->mode, c->count);
	}
	pit.flags = sr_u32(r);
	if ((ret = vcpu_state_check_end(r, "pit", e)) < 0)
		return ret;
	if (pit.flags & ~PIT_FLAGS_KNOWN)
		return errf(e, EINVAL, "snapshot: unknown PIT flags %#x", pit.flags);
	return vm_ioctl(vm, KVM_SET_PIT2, &pit, "KVM_SET_PIT2", e);
}

/* ------------------------------------------------------------------ clock */

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int save_clock(struct vm *vm, struct state_writer *w, struct errbuf *e)
{
	struct kvm_clock_data c;
	int ret;

	memset(&c, 0, sizeof(c));
	if (vm->time_held) /* paused: kvmclock as the guest last saw it (vm_hold_time) */
		c = vm->held_clock;
	else if ((ret = vm_ioctl(vm, KVM_GET_CLOCK, &c, "KVM_GET_CLOCK", e)) < 0)
		return ret;
	sw_begin(w, "clock", VM_STATE_VERSION);
	sw_u64(w, c.clock);
	sw_u32(w, c.flags);
	sw_u64(w, c.realtime);
	sw_u64(w, c.host_tsc);
	sw_u64(w, realtime_ns());
	sw_end(w);
	return 0;
}

static int restore_clock(struct vm *vm, struct state_reader *r, unsigned flags, struct errbuf *e)
{
	struct kvm_clock_data c;
	int ret;

	memset(&c, 0, sizeof(c));
	uint64_t clock = sr_u64(r);
	uint32_t saved_flags = sr_u32(r);
	uint64_t kvm_realtime = sr_u64(r);
	sr_u64(r); /* host_tsc: only meaningful on the host that saved it */
	uint64_t kiln_realtime = sr_u64(r);
	if ((ret = vcpu_state_check_end(r, "clock", e)) < 0)
		return ret;

	c.clock = clock;
	if (flags & VM_RESTORE_CLOCK_REALTIME) {
		if (saved_flags & KVM_CLOCK_REALTIME) {
			/* api.rst KVM_SET_CLOCK: KVM adds the realtime elapsed since `realtime` */
			c.flags = KVM_CLOCK_REALTIME;
			c.realtime = kvm_realtime;
		} else {
			uint64_t now = realtime_ns();
			if (now > kiln_realtime)
				c.clock += now - kiln_realtime;
		}
	}
	return vm_ioctl(vm, KVM_SET_CLOCK, &c, "KVM_SET_CLOCK", e);
}

/* -------------------------------------------------------------- dispatch */

static int check_paused(struct vm *vm, struct errbuf *e)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = vm->vcpus[i];
		if (!v)
			continue;
		pthread_mutex_lock(&v->lock);
		bool running = v->thread_started && v->state == VCPU_RUNNING;
		pthread_mutex_unlock(&v->lock);
		if (running)
			return errf(e, EBUSY, "vCPU %u is running: pause the VM first", i);
	}
	return 0;
}

int vm_save(struct vm *vm, struct state_writer *w, struct errbuf *e)
{
	int ret;

	if ((ret = check_paused(vm, e)) < 0)
		return ret;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i] && (ret = vcpu_save(vm->vcpus[i], w, e)) < 0)
			return ret;
	if ((ret = save_irqchip(vm, w, e)) < 0 || (ret = save_pit(vm, w, e)) < 0 ||
	    (ret = save_clock(vm, w, e)) < 0)
		return ret;
	if ((ret = sw_error(w)) < 0)
		return errf(e, -ret, "cannot write the VM's state: %s", strerror(-ret));
	return 0;
}

/* "vcpu.<n>" with n a plain decimal below VM_MAX_VCPUS -> n, else -1 */
static int vcpu_section_index(const char *id)
{
	const char *p = id + strlen("vcpu.");
	unsigned n = 0;

	if (strncmp(id, "vcpu.", 5) || !*p || (p[0] == '0' && p[1]))
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || (n = n * 10 + (unsigned)(*p - '0')) >= VM_MAX_VCPUS)
			return -1;
	}
	return (int)n;
}

/* bits of vm_restore's "seen" mask: one per vCPU, then the three VM sections */
#define SEEN_IRQCHIP (1ull << VM_MAX_VCPUS)
#define SEEN_PIT     (SEEN_IRQCHIP << 1)
#define SEEN_CLOCK   (SEEN_IRQCHIP << 2)

uint64_t vm_section_bit(const char *id)
{
	int n = vcpu_section_index(id);
	if (n >= 0)
		return 1ull << n;
	if (!strcmp(id, "irqchip"))
		return SEEN_IRQCHIP;
	if (!strcmp(id, "pit"))
		return SEEN_PIT;
	return !strcmp(id, "clock") ? SEEN_CLOCK : 0;
}

int vm_restore_section(struct vm *vm, const char *id, uint16_t version, struct state_reader *r,
                       unsigned flags, struct errbuf *e)
{
	uint64_t bit = vm_section_bit(id);
	int ret;

	if (!bit)
		return -ENOENT;
	if (bit < SEEN_IRQCHIP) {
		int n = vcpu_section_index(id);
		if ((unsigned)n >= vm->nr_vcpus || !vm->vcpus[n])
			return errf(e, EINVAL, "snapshot: it has vCPU %d, this VM has %u vCPUs", n,
			            vm->nr_vcpus);
		return vcpu_restore(vm->vcpus[n], r, version, e);
	}
	if ((ret = check_paused(vm, e)) < 0 ||
	    (ret = vcpu_state_check_version(id, version, VM_STATE_MIN_VERSION, VM_STATE_VERSION,
	                                    e)) < 0)
		return ret;
	if (bit == SEEN_IRQCHIP)
		return restore_irqchip(vm, r, e);
	if (bit == SEEN_PIT)
		return restore_pit(vm, r, e);
	return restore_clock(vm, r, flags, e);
}

int vm_restore_check(const struct vm *vm, uint64_t seen, struct errbuf *e)
{
	uint64_t want = SEEN_IRQCHIP | SEEN_PIT | SEEN_CLOCK;

	_Static_assert(VM_MAX_VCPUS + 3 <= 64, "vm_restore's mask is too small");
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i])
			want |= 1ull << i;
	if (seen != want) {
		uint64_t missing = want & ~seen;
		unsigned bit = (unsigned)__builtin_ctzll(missing);
		if (bit < VM_MAX_VCPUS)
			return errf(e, EINVAL, "snapshot: it has no state for vCPU %u", bit);
		return errf(e, EINVAL, "snapshot: section %s is missing",
		            missing & SEEN_IRQCHIP ? "irqchip"
		            : missing & SEEN_PIT   ? "pit"
		                                   : "clock");
	}
	return 0;
}

int vm_restore(struct vm *vm, struct state_reader *r, unsigned flags, struct errbuf *e)
{
	char id[STATE_ID_MAX + 1];
	struct state_reader sub;
	uint16_t version;
	uint64_t seen = 0;
	int ret;

	while ((ret = sr_next(r, id, &version, &sub)) == 1) {
		uint64_t bit = vm_section_bit(id);
		if (!bit)
			return errf(e, EINVAL, "snapshot: section %s is not part of a VM's state",
			            id);
		if (seen & bit)
			return errf(e, EINVAL, "snapshot: section %s appears twice", id);
		if ((ret = vm_restore_section(vm, id, version, &sub, flags, e)) < 0)
			return ret;
		seen |= bit;
	}
	if (ret < 0)
		return errf(e, EINVAL, "snapshot: a section header is truncated or malformed");
	return vm_restore_check(vm, seen, e);
}
