// SPDX-License-Identifier: Apache-2.0
/*
 * tests/fuzz/fz_snapshot_seeds.c: the seeds of the snapshot fuzz target,
 * state files as kiln writes them (snap_file_write), for the fake machine
 * of fuzz_snapshot.c. The device sections come from the devices' own save
 * functions, some after a driver set the virtio devices up (DRIVER_OK, one
 * ready queue each); the sections KVM fills (vcpu.N, irqchip, pit, clock)
 * are written here, field by field in the layouts vcpu/state_vcpu.c and
 * vcpu/state_vm.c describe, with plausible values. Without KVM a load ends
 * at the first of those, so the seeds put them in different orders: each
 * seed reaches another parser.
 *
 * Regenerate: scripts/fuzz.sh build snapshot, then
 *   KILN_FUZZ_SNAPSHOT_SEEDS=tests/fuzz/corpus/snapshot build-fuzz/fuzz_snapshot
 */
#include "fz_snapshot.h"

#include "daemon/snapshot.h"
#include "daemon/vmm.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the parts of a vCPU section that are plain bytes here (see state_vcpu.c) */
#define CPUID_ENTRY_WORDS 7
#define REGS_WORDS        18 /* rax .. r15, rip, rflags */
#define SEGMENT_BYTES     23 /* base, limit, selector, 9 flag bytes */
#define SREGS_BYTES       76 /* gdt, idt, cr0 .. cr8, efer, apic_base */
#define SREGS2_BYTES      40 /* flags, 4 PDPTRs */
#define FPU_BYTES         411
#define XSAVE_BYTES       576 /* the legacy area and the XSAVE header */
#define LAPIC_BYTES       1024
#define EVENTS_BYTES      37
#define DEBUGREGS_BYTES   56
#define PIC_BYTES         16
#define PIT_CHANNEL_BYTES 24
#define SEED_TIME_MS      1700000000000ull

/* a small machine: one vCPU, no virtio device */
static const char small_config[] =
        "{\"boot-source\": {\"kernel_image_path\": \"vmlinux\"},"
        " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 16}}";

/* two vCPUs, a root drive, a read-only drive and an entropy device */
static const char full_config[] =
        "{\"boot-source\": {\"kernel_image_path\": \"vmlinux\", \"boot_args\": \"console=ttyS0\"},"
        " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 32},"
        " \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"rootfs.ext4\","
        " \"is_root_device\": true, \"is_read_only\": false},"
        " {\"drive_id\": \"data\", \"path_on_host\": \"data.img\", \"is_root_device\": false,"
        " \"is_read_only\": true, \"cache_type\": \"Writeback\"}],"
        " \"entropy\": {}}";

/* one vCPU, a rate-limited drive (bandwidth and ops) and entropy device (ops) */
static const char limited_config[] =
        "{\"boot-source\": {\"kernel_image_path\": \"vmlinux\"},"
        " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 16},"
        " \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"rootfs.ext4\","
        " \"is_root_device\": true, \"is_read_only\": false, \"rate_limiter\": {"
        " \"bandwidth\": {\"size\": 1048576, \"one_time_burst\": 4096, \"refill_time\": 100},"
        " \"ops\": {\"size\": 100, \"refill_time\": 1000}}}],"
        " \"entropy\": {\"rate_limiter\": {\"ops\": {\"size\": 10, \"refill_time\": 100}}}}";

/*
 * One seed: its machine, whether a driver sets the virtio devices up
 * first, and its sections after "snapshot" and "config", one letter each:
 * L layout, S serial, K i8042, T boot timer, D the virtio devices,
 * V the vCPUs (X: with XSAVE and SREGS2), Q irqchip, P pit, C clock.
 */
static const struct seed {
	const char *name, *config;
	bool drive;
	const char *order;
} seeds[] = {
        {"kiln_order", "full", false, "LXQPCSKTD"},
        {"devices_first", "full", true, "LSKTDVQPC"},
        {"irqchip_first", "small", false, "LSKTQPCV"},
        {"pit_first", "small", false, "LSKTPCQV"},
        {"clock_first", "small", false, "LSKTCQPX"},
        {"small_vcpu_first", "small", false, "VLSKTQPC"},
        {"limited_devices_first", "limited", true, "LSKTDXQPC"},
        {"no_vm_sections", "full", true, "LSKTD"},
        {"no_layout", "limited", false, "SKTD"},
};

static void put_zeros(struct state_writer *w, size_t n)
{
	static const uint8_t zero[LAPIC_BYTES];
	while (n) {
		size_t k = n < sizeof(zero) ? n : sizeof(zero);
		sw_bytes(w, zero, k);
		n -= k;
	}
}

/* ------------------------------------------------- kiln's own sections */

static void put_info(struct state_writer *w, const struct vm_config *c)
{
	struct snap_info i = {.arch = SNAP_ARCH_X86_64,
	                      .type = SNAP_FULL,
	                      .mem_size = MIB(c->machine.mem_size_mib),
	                      .nr_vcpus = c->machine.vcpu_count,
	                      .created_unix_ms = SEED_TIME_MS};
	snprintf(i.cpu_model, sizeof(i.cpu_model), "%s", FZ_SNAP_ANY_HOST);
	snprintf(i.kiln_version, sizeof(i.kiln_version), "%s", KILN_VERSION);
	snap_info_write(w, &i);
}

static int put_config(struct state_writer *w, const struct vm_config *c)
{
	json_t *j = cfg_to_json(c);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	sw_begin(w, "config", 1);
	sw_u32(w, (uint32_t)strlen(text));
	sw_bytes(w, text, strlen(text));
	sw_end(w);
	free(text);
	return 0;
}

/* RAM regions, then each virtio device's kind, id, window and line */
static void put_layout(struct state_writer *w, const struct vmm *v)
{
	sw_begin(w, "layout", 1);
	sw_u32(w, v->mem.nr_regions);
	for (const struct gm_region *g = v->mem.regions; g < v->mem.regions + v->mem.nr_regions;
	     g++) {
		sw_u64(w, g->gpa);
		sw_u64(w, g->size);
		sw_u64(w, g->offset);
	}
	sw_u32(w, v->nr_devs);
	for (const struct vmm_dev *d = v->devs; d < v->devs + v->nr_devs; d++) {
		sw_u8(w, (uint8_t)d->kind);
		sw_u8(w, (uint8_t)strlen(d->id));
		sw_bytes(w, d->id, strlen(d->id));
		sw_u64(w, d->base);
		sw_u32(w, d->gsi);
	}
	sw_end(w);
}

/* ------------------------------------------------- what KVM would fill */

static void put_cpuid(struct state_writer *w)
{
	static const uint32_t leaves[][CPUID_ENTRY_WORDS] = {
	        /* function, index, flags, eax, ebx, ecx, edx */
	        {0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69},
	        {1, 0, 0, 0x806f8, 0x800, 0xf6fa3203, 0x178bfbff},
	        {0xd, 0, 1, 0x7, 0x340, 0x340, 0},
	};
	sw_u32(w, ARRAY_SIZE(leaves));
	for (size_t i = 0; i < ARRAY_SIZE(leaves); i++)
		for (size_t k = 0; k < CPUID_ENTRY_WORDS; k++)
			sw_u32(w, leaves[i][k]);
}

/* a 64-bit vCPU at rest; `modern`: SREGS2 and an XSAVE image, else SREGS and FPU */
static void put_vcpu(struct state_writer *w, unsigned id, bool modern)
{
	char name[STATE_ID_MAX + 1];

	snprintf(name, sizeof(name), "vcpu.%u", id);
	sw_begin(w, name, 1);
	sw_u32(w, id);
	put_cpuid(w);
	put_zeros(w, (REGS_WORDS - 2) * 8);
	sw_u64(w, 0x1000000); /* rip */
	sw_u64(w, 0x2);       /* rflags */
	sw_u8(w, modern ? 2 : 1);
	put_zeros(w, 8 * SEGMENT_BYTES + SREGS_BYTES + (modern ? SREGS2_BYTES : 32));
	sw_u8(w, modern ? 1 : 2);
	if (modern)
		sw_u32(w, XSAVE_BYTES);
	put_zeros(w, modern ? XSAVE_BYTES : FPU_BYTES);
	sw_u32(w, 1); /* XCR0 = x87 | SSE */
	sw_u32(w, 0);
	sw_u32(w, 0);
	sw_u64(w, 3);
	sw_u32(w, 2); /* MSRs: TSC and APIC base */
	sw_u32(w, 0x10);
	sw_u64(w, 123456789);
	sw_u32(w, 0x1b);
	sw_u64(w, 0xfee00000 | (id ? 0 : 0x100) | 0x800);
	sw_u32(w, LAPIC_BYTES);
	put_zeros(w, LAPIC_BYTES + EVENTS_BYTES + DEBUGREGS_BYTES);
	sw_u32(w, 0); /* KVM_MP_STATE_RUNNABLE */
	sw_end(w);
}

static void put_irqchip(struct state_writer *w)
{
	sw_begin(w, "irqchip", 1);
	put_zeros(w, 2 * PIC_BYTES);
	sw_u64(w, VM_IOAPIC_ADDR);
	put_zeros(w, 12); /* ioregsel, id, irr */
	for (unsigned pin = 0; pin < 24; pin++)
		sw_u64(w, 1u << 16); /* masked */
	sw_end(w);
}

static void put_pit(struct state_writer *w)
{
	sw_begin(w, "pit", 1);
	for (unsigned i = 0; i < 3; i++) {
		sw_u32(w, 0x10000);
		put_zeros(w, PIT_CHANNEL_BYTES - 4);
	}
	sw_u32(w, 0);
	sw_end(w);
}

static void put_clock(struct state_writer *w)
{
	sw_begin(w, "clock", 1);
	sw_u64(w, 5000000000ull);
	sw_u32(w, 0);
	sw_u64(w, 0);
	sw_u64(w, 0);
	sw_u64(w, SEED_TIME_MS * 1000000ull);
	sw_end(w);
}

/* ------------------------------------------------ a virtio driver's work */

static void mmio_write(struct vmm *v, const struct vmm_dev *d, uint32_t reg, uint32_t val)
{
	bus_access(&v->vm.mmio, d->base + reg, &val, 4, true);
}

static uint32_t mmio_read(struct vmm *v, const struct vmm_dev *d, uint32_t reg)
{
	uint32_t val = 0;
	bus_access(&v->vm.mmio, d->base + reg, &val, 4, false);
	return val;
}

/* every feature offered taken, queue 0 of 8 entries ready, DRIVER_OK */
static void set_up_device(struct vmm *v, unsigned n)
{
	const struct vmm_dev *d = &v->devs[n];
	uint64_t ring = 0x100000 + (uint64_t)n * 0x4000;

	mmio_write(v, d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	for (uint32_t sel = 0; sel < 2; sel++) {
		mmio_write(v, d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
		uint32_t f = mmio_read(v, d, VIRTIO_MMIO_DEVICE_FEATURES);
		mmio_write(v, d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		mmio_write(v, d, VIRTIO_MMIO_DRIVER_FEATURES, f);
	}
	mmio_write(v, d, VIRTIO_MMIO_STATUS,
	           VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	mmio_write(v, d, VIRTIO_MMIO_QUEUE_SEL, 0);
	mmio_write(v, d, VIRTIO_MMIO_QUEUE_NUM, 8);
	mmio_write(v, d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)ring);
	mmio_write(v, d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)ring + 0x1000);
	mmio_write(v, d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)ring + 0x2000);
	mmio_write(v, d, VIRTIO_MMIO_QUEUE_READY, 1);
	mmio_write(v, d, VIRTIO_MMIO_STATUS,
	           VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	                   VIRTIO_STATUS_DRIVER_OK);
}

/* ----------------------------------------------------------- the seeds */

static int put_sections(struct state_writer *w, struct vmm *v, const char *order)
{
	struct errbuf e;
	int ret = 0;

	for (const char *p = order; *p && ret == 0; p++) {
		switch (*p) {
		case 'L':
			put_layout(w, v);
			break;
		case 'S':
			ret = serial_save(&v->serial, w, &e);
			break;
		case 'K':
			ret = i8042_save(&v->i8042, w, &e);
			break;
		case 'T':
			ret = boot_timer_save(&v->boot_timer, w, &e);
			break;
		case 'D':
			for (unsigned i = 0; i < v->nr_devs && ret == 0; i++)
				ret = virtio_mmio_save(v->devs[i].mmio, w);
			break;
		case 'V':
		case 'X':
			for (unsigned i = 0; i < v->cfg.machine.vcpu_count; i++)
				put_vcpu(w, i, *p == 'X');
			break;
		case 'Q':
			put_irqchip(w);
			break;
		case 'P':
			put_pit(w);
			break;
		default:
			put_clock(w);
			break;
		}
	}
	return ret;
}

static int write_seed(const char *dir, const struct seed *s, struct vmm *v)
{
	const char *json = !strcmp(s->config, "full")      ? full_config
	                   : !strcmp(s->config, "limited") ? limited_config
	                                                   : small_config;
	struct vmm_build b = {.backing = VMM_MEM_ANON};
	struct state_writer w;
	struct errbuf e;
	char path[4096];
	int ret;

	memset(v, 0, sizeof(*v));
	vm_config_init(&v->cfg);
	v->opts.boot_timer = true;
	sw_init(&w);
	if ((ret = cfg_parse_document(json, strlen(json), &v->cfg, &e)) < 0 ||
	    (ret = vmm_build(v, &b, &e)) < 0) {
		fprintf(stderr, "seed %s: %s\n", s->name, e.msg);
		goto out;
	}
	for (unsigned i = 0; s->drive && i < v->nr_devs; i++)
		set_up_device(v, i);
	put_info(&w, &v->cfg);
	if ((ret = put_config(&w, &v->cfg)) == 0 && (ret = put_sections(&w, v, s->order)) == 0) {
		snprintf(path, sizeof(path), "%s/%s", dir, s->name);
		if ((ret = snap_file_write(path, &w, &e)) < 0)
			fprintf(stderr, "seed %s: %s\n", s->name, e.msg);
	}
	vmm_unbuild(v);
out:
	sw_free(&w);
	vm_config_free(&v->cfg);
	return ret;
}

int fz_snapshot_write_seeds(const char *dir)
{
	static struct vmm v;
	int ret = 0;

	for (size_t i = 0; i < ARRAY_SIZE(seeds) && ret == 0; i++)
		ret = write_seed(dir, &seeds[i], &v);
	return ret;
}
