// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/acpi.c: the ACPI tables that tell a guest built without an MP-table
 * parser (Debian's cloud kernel has no CONFIG_X86_MPPARSE) how many CPUs it
 * has, and one built without CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES where its
 * devices are: RSDP -> XSDT -> FADT (-> DSDT) and MADT, as a
 * hardware-reduced ACPI platform with no legacy PM blocks, like
 * Firecracker's microVMs. Section numbers are those of the ACPI
 * Specification 6.5.
 */
#include "vcpu/aml_int.h"
#include "vcpu/vcpu.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* s5.2.5.3: the Root System Description Pointer, 36 bytes for revision 2 */
struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* the first 20 bytes sum to 0 */
	char oem_id[6];
	uint8_t revision;   /* 2: ACPI 2.0 and later, the XSDT is valid */
	uint32_t rsdt_addr; /* 0: no RSDT, the XSDT replaces it */
	uint32_t length;    /* 36 */
	uint64_t xsdt_addr;
	uint8_t ext_checksum; /* all 36 bytes sum to 0 */
	uint8_t reserved[3];
} __attribute__((packed));

/* s5.2.6: the header every System Description Table starts with, 36 bytes */
struct acpi_header {
	char signature[4];
	uint32_t length; /* the whole table, header included */
	uint8_t revision;
	uint8_t checksum; /* the whole table sums to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* s5.2.3.2: Generic Address Structure, 12 bytes (all zero: not present) */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

/* s5.2.9 Table 5.9: the Fixed ACPI Description Table, revision 6, 276 bytes */
struct acpi_fadt {
	struct acpi_header h;   /* "FACP" */
	uint32_t firmware_ctrl; /* 36: no FACS (hardware-reduced) */
	uint32_t dsdt;          /* 40 */
	uint8_t reserved0;
	uint8_t preferred_pm_profile; /* 45 */
	uint16_t sci_int;             /* 46 */
	uint32_t smi_cmd;             /* 48 */
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk; /* 56 */
	uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len; /* 88 */
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;    /* 96 */
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century; /* 104 */
	uint16_t iapc_boot_arch;                                      /* 109 */
	uint8_t reserved1;
	uint32_t flags; /* 112 */
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;    /* 131 */
	uint64_t x_firmware_ctrl; /* 132 */
	uint64_t x_dsdt;          /* 140 */
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg, sleep_status_reg; /* 244, 256 */
	char hypervisor_vendor_id[8];                        /* 268 */
} __attribute__((packed));

/* Table 5.10: FADT flags */
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
/* Table 5.11: IA-PC boot architecture flags. No VGA, no MSI (no PCI bus),
 * no CMOS RTC: kiln emulates none of them. No LEGACY_DEVICES (the DSDT
 * lists the ISA devices there are); 8042 when the i8042 is there. */
#define FADT_BOOT_8042                 (1u << 1)
#define FADT_BOOT_VGA_NOT_PRESENT      (1u << 2)
#define FADT_BOOT_MSI_NOT_SUPPORTED    (1u << 3)
#define FADT_BOOT_CMOS_RTC_NOT_PRESENT (1u << 5)

/* s5.2.12 Table 5.19: the Multiple APIC Description Table header */
struct acpi_madt {
	struct acpi_header h; /* "APIC" */
	uint32_t lapic_addr;
	uint32_t flags; /* bit 0 PCAT_COMPAT: dual 8259s are present too */
} __attribute__((packed));

#define MADT_PCAT_COMPAT 1u

/* s5.2.12.2 Table 5.22: Processor Local APIC structure, type 0 */
struct madt_lapic {
	uint8_t type, length; /* 0, 8 */
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags; /* bit 0 Enabled */
} __attribute__((packed));

/* s5.2.12.3 Table 5.24: I/O APIC structure, type 1 */
struct madt_ioapic {
	uint8_t type, length; /* 1, 12 */
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

/* s5.2.12.7 Table 5.30: Local APIC NMI structure, type 4 */
struct madt_lapic_nmi {
	uint8_t type, length;  /* 4, 6 */
	uint8_t processor_uid; /* 0xff: every processor */
	uint16_t flags;        /* 0: polarity and trigger conform to the bus */
	uint8_t lint;          /* LINT# the NMI is wired to */
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS");
_Static_assert(__builtin_offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "IAPC_BOOT_ARCH");
_Static_assert(__builtin_offsetof(struct acpi_fadt, flags) == 112, "FADT flags");
_Static_assert(__builtin_offsetof(struct acpi_fadt, minor_version) == 131, "FADT minor");
_Static_assert(__builtin_offsetof(struct acpi_fadt, x_dsdt) == 140, "X_DSDT");
_Static_assert(__builtin_offsetof(struct acpi_fadt, sleep_control_reg) == 244, "SLEEP_CONTROL");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header");
_Static_assert(sizeof(struct madt_lapic) == 8, "MADT local APIC");
_Static_assert(sizeof(struct madt_ioapic) == 12, "MADT I/O APIC");
_Static_assert(sizeof(struct madt_lapic_nmi) == 6, "MADT local APIC NMI");

#define ACPI_OEM_ID       "KILN  "
#define ACPI_OEM_TABLE_ID "KILNVM  "
#define ACPI_CREATOR_ID   "KILN"
#define ACPI_XSDT_ENTRIES 2 /* FADT, MADT (the DSDT hangs off the FADT) */

/*
 * The layout inside the buffer: each table 16-byte aligned after the RSDP;
 * the DSDT, whose length depends on the devices, comes last.
 */
#define ACPI_ALIGN 16u
#define OFF_RSDP   0u
#define OFF_XSDT   ALIGN_UP(sizeof(struct acpi_rsdp), ACPI_ALIGN)
#define XSDT_LEN   (sizeof(struct acpi_header) + 8u * ACPI_XSDT_ENTRIES)
#define OFF_FADT   ALIGN_UP(OFF_XSDT + XSDT_LEN, ACPI_ALIGN)
#define OFF_MADT   ALIGN_UP(OFF_FADT + sizeof(struct acpi_fadt), ACPI_ALIGN)

static size_t madt_size(unsigned nr_vcpus)
{
	return sizeof(struct acpi_madt) + nr_vcpus * sizeof(struct madt_lapic) +
	       sizeof(struct madt_ioapic) + sizeof(struct madt_lapic_nmi);
}

static size_t dsdt_off(unsigned nr_vcpus)
{
	return ALIGN_UP(OFF_MADT + madt_size(nr_vcpus), ACPI_ALIGN);
}

/* ------------------------------------------------------------ the DSDT */

_Static_assert(BOOT_ACPI_VIRTIO_MAX <= 100, "the devices' names are VR00 to VR99");

/*
 * Linux's drivers/virtio/virtio_mmio.c binds to _HID "LNRO0005" and takes
 * the first memory and interrupt resources of _CRS; _CCA 1 (s6.2.17) says
 * its DMA is cache-coherent. kiln raises the line with an irqfd, a pulse:
 * edge-triggered, active high, not shared.
 */
static void dsdt_virtio(struct aml *a, unsigned uid, const struct boot_acpi_virtio *v)
{
	char name[5];
	snprintf(name, sizeof(name), "VR%02u", uid % 100);
	size_t dev = aml_device_begin(a, name);
	aml_name_decl(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_name_decl(a, "_UID");
	aml_integer(a, uid);
	aml_name_decl(a, "_CCA");
	aml_integer(a, 1);

	uint8_t crs[32];
	struct aml r;
	aml_init(&r, crs, sizeof(crs));
	aml_res_mem32_fixed(&r, true, (uint32_t)v->base, v->size);
	aml_res_ext_irq(&r, AML_IRQ_CONSUMER | AML_IRQ_EDGE, v->gsi);
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
	aml_block_end(a, dev);
}

/* a PNP device on fixed ISA ports and one ISA IRQ (edge, active high, as in the MADT) */
struct isa_dev {
	const char *name, *eisaid;
	uint16_t ports[2];
	unsigned nr_ports;
	uint8_t align, len; /* of each port range */
	unsigned irq;
};

/*
 * Where every PC has them (devices/devices.h), described as QEMU's microvm
 * does: COM1 for 8250_pnp, IO(Decode16, 0x3F8, 0x3F8, 0, 8) and
 * IRQNoFlags() {4}; the i8042's data port, then its command port, for
 * i8042's PNP probe.
 */
static const struct isa_dev isa_com1 = {"COM1", "PNP0501", {0x3f8}, 1, 0, 8, 4};
static const struct isa_dev isa_i8042 = {"KBD_", "PNP0303", {0x60, 0x64}, 2, 1, 1, 1};

static void dsdt_isa(struct aml *a, const struct isa_dev *d)
{
	size_t dev = aml_device_begin(a, d->name);
	aml_name_decl(a, "_HID");
	aml_eisaid(a, d->eisaid);
	aml_name_decl(a, "_UID");
	aml_integer(a, 0);

	uint8_t crs[32];
	struct aml r;
	aml_init(&r, crs, sizeof(crs));
	for (unsigned i = 0; i < d->nr_ports; i++)
		aml_res_io(&r, d->ports[i], d->ports[i], d->align, d->len);
	aml_res_irq(&r, d->irq);
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
	aml_block_end(a, dev);
}

/* s5.2.11.1: the DSDT's TermList: Scope (\_SB_) { the devices } */
static void dsdt_body(struct aml *a, const struct boot_acpi_devices *devs)
{
	size_t sb = aml_scope_begin(a, "\\_SB_");
	if (devs && devs->serial)
		dsdt_isa(a, &isa_com1);
	if (devs && devs->i8042)
		dsdt_isa(a, &isa_i8042);
	for (unsigned i = 0; devs && i < devs->nr_virtio; i++)
		dsdt_virtio(a, i, &devs->virtio[i]);
	aml_block_end(a, sb);
}

static int check_devices(const struct boot_acpi_devices *devs)
{
	if (!devs)
		return 0;
	if (devs->nr_virtio > BOOT_ACPI_VIRTIO_MAX || (devs->nr_virtio && !devs->virtio))
		return -EINVAL;
	for (unsigned i = 0; i < devs->nr_virtio; i++) {
		const struct boot_acpi_virtio *v = &devs->virtio[i];
		if (v->size == 0 || v->base > UINT32_MAX || UINT32_MAX - v->base < v->size - 1)
			return -EINVAL;
	}
	return 0;
}

/*
 * The DSDT's length, its header and the AML that dsdt_body() writes, into
 * *len: 0, or -EINVAL for devices it cannot describe (*len is then that of
 * a DSDT without them).
 */
static int dsdt_measure(const struct boot_acpi_devices *devs, size_t *len)
{
	struct aml a;
	int ret = check_devices(devs);
	if (ret)
		devs = NULL;
	aml_init(&a, NULL, 0);
	dsdt_body(&a, devs);
	*len = sizeof(struct acpi_header) + a.len;
	return ret ? ret : a.err ? -EINVAL : 0;
}

size_t boot_acpi_size(unsigned nr_vcpus, const struct boot_acpi_devices *devs)
{
	size_t len;
	dsdt_measure(devs, &len);
	return dsdt_off(nr_vcpus) + len;
}

/* the byte that makes `len` bytes at `p` sum to 0 when stored in a zeroed slot */
static uint8_t acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return (uint8_t)-sum;
}

static void put_header(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = 1;
}

/* sets h->checksum once the table's `h->length` bytes are final */
static void seal(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = acpi_checksum(h, h->length);
}

/* `buf` is zeroed: only the fields that are not 0 are set */
static void write_fadt(uint8_t *buf, uint64_t dsdt, bool i8042)
{
	/*
	 * Filled in place rather than in a local copied over: GCC 12 -O2
	 * dropped the header stores of such a copy (RTL dead-store
	 * elimination across the `rep movsq` it made of the memcpy, when the
	 * MADT reused its stack slot).
	 */
	struct acpi_fadt *f = (struct acpi_fadt *)(buf + OFF_FADT);
	put_header(&f->h, "FACP", sizeof(*f), 6);
	/*
	 * s4.1 / s5.2.9: on a hardware-reduced platform every fixed hardware
	 * field (PM1/PM2/PM timer/GPE blocks, SCI, SMI_CMD, FACS) is ignored
	 * and left zero; X_DSDT is used when non-zero, DSDT is kept for older
	 * readers since the table lies below 4 GiB.
	 */
	f->dsdt = (uint32_t)dsdt;
	f->x_dsdt = dsdt;
	f->flags = FADT_F_HW_REDUCED_ACPI;
	f->iapc_boot_arch = FADT_BOOT_VGA_NOT_PRESENT | FADT_BOOT_MSI_NOT_SUPPORTED |
	                    FADT_BOOT_CMOS_RTC_NOT_PRESENT | (i8042 ? FADT_BOOT_8042 : 0);
	f->minor_version = 5;
	memcpy(f->hypervisor_vendor_id, "KILNKILN", 8);
	seal(&f->h);
}

/*
 * One enabled Processor Local APIC per vCPU (UID = APIC id = vCPU index, as
 * vcpu_create sets it), the IOAPIC with the id the MP table gives it
 * (nr_vcpus) and GSIs 0-23 from base 0, and LINT1 = NMI on every CPU.
 *
 * No Interrupt Source Override: kiln leaves KVM's default GSI routing, in
 * which GSI n (the in-kernel PIT raises GSI 0) reaches IOAPIC pin n, as
 * the MP table says (IRQ n -> INTIN n) and as Firecracker's MADT implies.
 * QEMU declares "ISA IRQ 0 -> GSI 2" only because it reroutes GSI 0 to
 * pin 2 with KVM_SET_GSI_ROUTING; copying that override here would point
 * Linux's timer at a pin the PIT never drives. Without overrides the ISA
 * IRQs map 1:1 (s5.2.12.5), edge-triggered, active high.
 */
static void write_madt(uint8_t *buf, unsigned nr_vcpus)
{
	uint8_t *t = buf + OFF_MADT;
	size_t len = madt_size(nr_vcpus);
	struct acpi_madt m = {.lapic_addr = (uint32_t)VM_LAPIC_ADDR, .flags = MADT_PCAT_COMPAT};
	put_header(&m.h, "APIC", (uint32_t)len, 5);
	uint8_t *p = t + sizeof(m);
	for (unsigned i = 0; i < nr_vcpus; i++) {
		struct madt_lapic l = {.type = 0,
		                       .length = sizeof(l),
		                       .processor_uid = (uint8_t)i,
		                       .apic_id = (uint8_t)i,
		                       .flags = 1};
		memcpy(p, &l, sizeof(l));
		p += sizeof(l);
	}
	struct madt_ioapic io = {.type = 1,
	                         .length = sizeof(io),
	                         .ioapic_id = (uint8_t)nr_vcpus,
	                         .address = (uint32_t)VM_IOAPIC_ADDR,
	                         .gsi_base = 0};
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	struct madt_lapic_nmi nmi = {
	        .type = 4, .length = sizeof(nmi), .processor_uid = 0xff, .flags = 0, .lint = 1};
	memcpy(p, &nmi, sizeof(nmi));
	memcpy(t, &m, sizeof(m));
	struct acpi_header *h = (struct acpi_header *)t;
	h->checksum = acpi_checksum(t, len);
}

/* s5.2.11.1: the DSDT, a definition block: the header, then the AML */
static int write_dsdt(uint8_t *buf, size_t off, size_t len, const struct boot_acpi_devices *devs)
{
	struct aml a;
	size_t hlen = sizeof(struct acpi_header);
	aml_init(&a, buf + off + hlen, len - hlen);
	dsdt_body(&a, devs);
	if (aml_status(&a))
		return -EINVAL; /* dsdt_measure() said it fits and encodes */
	struct acpi_header *h = (struct acpi_header *)(buf + off);
	put_header(h, "DSDT", (uint32_t)len, 2);
	seal(h);
	return 0;
}

int boot_acpi_write(void *buf, size_t len, uint64_t gpa, unsigned nr_vcpus,
                    const struct boot_acpi_devices *devs)
{
	size_t dsdt = dsdt_off(nr_vcpus), dsdt_len;
	if (nr_vcpus == 0 || nr_vcpus > VM_MAX_VCPUS || gpa % ACPI_ALIGN ||
	    dsdt_measure(devs, &dsdt_len))
		return -EINVAL;
	size_t size = dsdt + dsdt_len;
	if (gpa >= GM_HOLE_END || GM_HOLE_END - gpa < size)
		return -EINVAL;
	if (len < size)
		return -ENOSPC;
	uint8_t *b = buf;
	memset(b, 0, size);

	int ret = write_dsdt(b, dsdt, dsdt_len, devs);
	if (ret)
		return ret;
	write_fadt(b, gpa + dsdt, devs && devs->i8042);
	write_madt(b, nr_vcpus);

	/* s5.2.8: the XSDT, 64-bit pointers to every table but the DSDT */
	struct acpi_header xh = {0};
	put_header(&xh, "XSDT", XSDT_LEN, 1);
	uint64_t entries[ACPI_XSDT_ENTRIES] = {gpa + OFF_FADT, gpa + OFF_MADT};
	memcpy(b + OFF_XSDT, &xh, sizeof(xh));
	memcpy(b + OFF_XSDT + sizeof(xh), entries, sizeof(entries));
	b[OFF_XSDT + __builtin_offsetof(struct acpi_header, checksum)] =
	        acpi_checksum(b + OFF_XSDT, XSDT_LEN);

	struct acpi_rsdp r = {.revision = 2, .length = sizeof(r), .xsdt_addr = gpa + OFF_XSDT};
	memcpy(r.signature, "RSD PTR ", 8);
	memcpy(r.oem_id, ACPI_OEM_ID, 6);
	r.checksum = acpi_checksum(&r, 20); /* s5.2.5.3: the ACPI 1.0 part */
	r.ext_checksum = acpi_checksum(&r, sizeof(r));
	memcpy(b + OFF_RSDP, &r, sizeof(r));
	return (int)size;
}
