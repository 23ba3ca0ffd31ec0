// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/mptable.c: the Intel MultiProcessor Specification 1.4 tables that
 * tell a guest without ACPI how many CPUs it has and how the legacy IRQs
 * reach the IOAPIC. Linux finds the floating pointer by scanning the last
 * KiB of base memory (639 KiB), where kiln's EBDA starts (GM_EBDA_START).
 */
#include "vcpu/vcpu.h"

#include <errno.h>
#include <string.h>

/* MP spec 1.4 s4.1: the MP floating pointer structure, 16 bytes */
struct mpf_intel {
	char signature[4];     /* "_MP_" */
	uint32_t physptr;      /* the configuration table */
	uint8_t length;        /* in 16-byte units: 1 */
	uint8_t specification; /* 4 = version 1.4 */
	uint8_t checksum;      /* all 16 bytes sum to 0 */
	uint8_t feature1;      /* 0: a configuration table is present */
	uint8_t feature2;      /* bit 7 IMCRP: 0, virtual wire mode */
	uint8_t feature3[3];
} __attribute__((packed));

/* s4.2: the configuration table header, 44 bytes */
struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;   /* header + base entries */
	uint8_t spec;      /* 4 */
	uint8_t checksum;  /* header + base entries sum to 0 */
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount; /* number of base entries */
	uint32_t lapic;    /* the local APICs' address */
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

/* s4.3.1: processor entry, 20 bytes */
struct mpc_cpu {
	uint8_t type; /* 0 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;      /* bit 0 enabled, bit 1 bootstrap processor */
	uint32_t cpufeature;  /* CPUID(1).EAX signature */
	uint32_t featureflag; /* CPUID(1).EDX */
	uint32_t reserved[2];
} __attribute__((packed));

/* s4.3.2: bus entry, 8 bytes */
struct mpc_bus {
	uint8_t type; /* 1 */
	uint8_t busid;
	char bustype[6]; /* "ISA   " */
} __attribute__((packed));

/* s4.3.3: I/O APIC entry, 8 bytes */
struct mpc_ioapic {
	uint8_t type; /* 2 */
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags; /* bit 0 usable */
	uint32_t apicaddr;
} __attribute__((packed));

/* s4.3.4 / s4.3.5: I/O and local interrupt assignment entries, 8 bytes */
struct mpc_intsrc {
	uint8_t type; /* 3 I/O, 4 local */
	uint8_t irqtype;
	uint16_t irqflag; /* 0: polarity and trigger conform to the bus */
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic; /* I/O APIC id, or local APIC id (0xff: all) */
	uint8_t dstirq;  /* INTIN# or LINTIN# */
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer");
_Static_assert(sizeof(struct mpc_table) == 44, "MP configuration table header");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP processor entry");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "MP interrupt entry");

enum {
	MP_PROCESSOR = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_INTSRC = 3,
	MP_LINTSRC = 4,
};
enum { MP_INT = 0, MP_NMI = 1, MP_SMI = 2, MP_EXTINT = 3 }; /* s4.3.4 table 4-9 */

#define MP_CPU_ENABLED    0x01
#define MP_CPU_BSP        0x02
#define MP_APIC_VERSION   0x14 /* an integrated local APIC (xAPIC) */
#define MP_IOAPIC_VERSION 0x11 /* what KVM's IOAPIC reports */
#define MP_ISA_BUS_ID     0
#define MP_IOAPIC_PINS    24
/* family 6 signature, FPU + APIC features: enough for a guest to trust the entry */
#define MP_CPU_SIGNATURE ((6u << 8) | (1u << 4) | 3u)
#define MP_CPU_FEATURES  ((1u << 0) | (1u << 9))

/* the entries after the header, in the order s4.3 asks for (by type) */
static size_t mpc_entries(unsigned nr_vcpus)
{
	return nr_vcpus + 1 /* bus */ + 1 /* ioapic */ + MP_IOAPIC_PINS + 2 /* LINT0, LINT1 */;
}

size_t boot_mptable_size(unsigned nr_vcpus)
{
	return sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
	       nr_vcpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
	       sizeof(struct mpc_ioapic) + (MP_IOAPIC_PINS + 2) * sizeof(struct mpc_intsrc);
}

/* the whole table for VM_MAX_VCPUS must fit between the EBDA and 640 KiB */
_Static_assert(sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
                               VM_MAX_VCPUS * sizeof(struct mpc_cpu) + 8 + 8 +
                               (MP_IOAPIC_PINS + 2) * 8 <=
                       0xa0000 - GM_EBDA_START,
               "the MP table for VM_MAX_VCPUS fits in the EBDA");

/* the byte that makes `len` bytes at `p` sum to 0 (mod 256) */
static uint8_t mp_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return (uint8_t)-sum;
}

static uint8_t *put_intsrc(uint8_t *p, uint8_t type, uint8_t irqtype, uint8_t srcbusirq,
                           uint8_t dstapic, uint8_t dstirq)
{
	struct mpc_intsrc in = {
	        .type = type,
	        .irqtype = irqtype,
	        .irqflag = 0,
	        .srcbus = MP_ISA_BUS_ID,
	        .srcbusirq = srcbusirq,
	        .dstapic = dstapic,
	        .dstirq = dstirq,
	};
	memcpy(p, &in, sizeof(in));
	return p + sizeof(in);
}

int boot_mptable_write(void *buf, size_t len, uint64_t gpa, unsigned nr_vcpus)
{
	if (nr_vcpus == 0 || nr_vcpus > VM_MAX_VCPUS)
		return -EINVAL;
	size_t size = boot_mptable_size(nr_vcpus);
	if (gpa > UINT32_MAX - size) /* the floating pointer holds a 32-bit address */
		return -EINVAL;
	if (len < size)
		return -ENOSPC;
	memset(buf, 0, size);

	uint8_t *start = buf;
	uint8_t *table = start + sizeof(struct mpf_intel);
	uint8_t *p = table + sizeof(struct mpc_table);
	uint8_t ioapic_id = (uint8_t)nr_vcpus; /* after the local APIC ids 0..nr-1 */

	for (unsigned i = 0; i < nr_vcpus; i++) {
		struct mpc_cpu cpu = {
		        .type = MP_PROCESSOR,
		        .apicid = (uint8_t)i,
		        .apicver = MP_APIC_VERSION,
		        .cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
		        .cpufeature = MP_CPU_SIGNATURE,
		        .featureflag = MP_CPU_FEATURES,
		};
		memcpy(p, &cpu, sizeof(cpu));
		p += sizeof(cpu);
	}

	struct mpc_bus bus = {.type = MP_BUS, .busid = MP_ISA_BUS_ID};
	memcpy(bus.bustype, "ISA   ", sizeof(bus.bustype));
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);

	struct mpc_ioapic ioapic = {
	        .type = MP_IOAPIC,
	        .apicid = ioapic_id,
	        .apicver = MP_IOAPIC_VERSION,
	        .flags = 1,
	        .apicaddr = (uint32_t)VM_IOAPIC_ADDR,
	};
	memcpy(p, &ioapic, sizeof(ioapic));
	p += sizeof(ioapic);

	/* IRQ n -> IOAPIC pin n for all 24 pins, the routing KVM's in-kernel irqchip uses:
	 * 0-15 the ISA lines, 5 and up also the virtio-mmio devices' own lines (as Firecracker) */
	for (unsigned irq = 0; irq < MP_IOAPIC_PINS; irq++)
		p = put_intsrc(p, MP_INTSRC, MP_INT, (uint8_t)irq, ioapic_id, (uint8_t)irq);
	/* s5.1 virtual wire mode: the 8259 through LINT0 of the BSP, NMI to LINT1 of all */
	p = put_intsrc(p, MP_LINTSRC, MP_EXTINT, 0, 0, 0);
	p = put_intsrc(p, MP_LINTSRC, MP_NMI, 0, 0xff, 1);

	struct mpc_table hdr = {
	        .length = (uint16_t)(p - table),
	        .spec = 4,
	        .oemcount = (uint16_t)mpc_entries(nr_vcpus),
	        .lapic = (uint32_t)VM_LAPIC_ADDR,
	};
	memcpy(hdr.signature, "PCMP", 4);
	memcpy(hdr.oem, "KILN    ", 8);
	memcpy(hdr.productid, "MICROVM     ", 12);
	memcpy(table, &hdr, sizeof(hdr));
	table[__builtin_offsetof(struct mpc_table, checksum)] = mp_checksum(table, hdr.length);

	struct mpf_intel mpf = {
	        .physptr = (uint32_t)(gpa + sizeof(struct mpf_intel)),
	        .length = 1,
	        .specification = 4,
	};
	memcpy(mpf.signature, "_MP_", 4);
	mpf.checksum = mp_checksum(&mpf, sizeof(mpf));
	memcpy(start, &mpf, sizeof(mpf));

	return (int)(p - start);
}
