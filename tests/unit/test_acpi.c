// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_acpi.c: the ACPI tables of vcpu/acpi.c read back the way
 * a guest does -- the RSDP found by scanning the BIOS area, both of its
 * checksums, XSDT -> FADT -> DSDT and MADT, every table's checksum and
 * length, and the MADT's entries for 1, 2 and 32 vCPUs; then boot_load
 * placing them and pointing the zero page or the PVH start info at them.
 */
#include "vcpu/boot_int.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BIOS_START 0xe0000ull
#define BIOS_LEN   0x20000ull

/* the guest's view of 0xE0000-0xFFFFF */
static uint8_t bios[BIOS_LEN];

static uint8_t *at(uint64_t gpa, uint64_t len)
{
	cr_assert(gpa >= BIOS_START && gpa + len <= BIOS_START + BIOS_LEN,
	          "0x%llx+%llu lies outside the BIOS area", (unsigned long long)gpa,
	          (unsigned long long)len);
	return bios + (gpa - BIOS_START);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* ACPI 6.5 s5.2.5.1: the RSDP on a 16-byte boundary, first 20 bytes sum to 0 */
static uint64_t scan_rsdp(void)
{
	for (uint64_t off = 0; off + 36 <= BIOS_LEN; off += 16)
		if (!memcmp(bios + off, "RSD PTR ", 8) && sum(bios + off, 20) == 0)
			return BIOS_START + off;
	return 0;
}

/* a table's header checked: signature, length within the area, checksum */
static const uint8_t *table(uint64_t gpa, const char *sig, uint8_t revision)
{
	const uint8_t *t = at(gpa, 36);
	cr_assert(!memcmp(t, sig, 4), "table at 0x%llx is not %s", (unsigned long long)gpa, sig);
	uint32_t len = rd32(t + 4);
	cr_assert_geq(len, 36u, "%s length", sig);
	at(gpa, len);
	cr_assert_eq(sum(t, len), 0, "%s checksum", sig);
	cr_assert_eq(t[8], revision, "%s revision", sig);
	cr_assert(!memcmp(t + 10, "KILN  ", 6), "%s OEM id", sig);
	return t;
}

static int write_tables(unsigned nr)
{
	memset(bios, 0xa5, sizeof(bios)); /* no stale zeroes helping a checksum */
	return boot_acpi_write(bios, sizeof(bios), BIOS_START, nr);
}

/* walks RSDP -> XSDT -> FADT -> DSDT and MADT; returns the MADT */
static const uint8_t *walk(unsigned nr)
{
	int n = write_tables(nr);
	cr_assert_eq(n, (int)boot_acpi_size(nr));

	uint64_t rsdp_gpa = scan_rsdp();
	cr_assert_eq(rsdp_gpa, BIOS_START, "the RSDP opens the tables");
	const uint8_t *r = at(rsdp_gpa, 36);
	cr_assert_eq(r[15], 2, "RSDP revision");
	cr_assert_eq(rd32(r + 16), 0u, "no RSDT");
	cr_assert_eq(rd32(r + 20), 36u, "RSDP length");
	cr_assert_eq(sum(r, 36), 0, "RSDP extended checksum");

	uint64_t xsdt_gpa = rd64(r + 24);
	const uint8_t *x = table(xsdt_gpa, "XSDT", 1);
	uint32_t xlen = rd32(x + 4);
	cr_assert_eq(xlen, 36u + 2 * 8, "XSDT holds FADT and MADT");
	uint64_t fadt_gpa = rd64(x + 36), madt_gpa = rd64(x + 44);

	const uint8_t *f = table(fadt_gpa, "FACP", 6);
	cr_assert_eq(rd32(f + 4), 276u, "FADT revision 6 length");
	cr_assert_eq(rd32(f + 112) & (1u << 20), 1u << 20, "HW_REDUCED_ACPI");
	uint16_t boot_arch = (uint16_t)(f[109] | f[110] << 8);
	cr_assert_eq(boot_arch & (1u << 2), 1u << 2, "VGA not present");
	cr_assert_eq(boot_arch & (1u << 5), 1u << 5, "CMOS RTC not present");
	for (unsigned off = 56; off < 88; off++)
		cr_assert_eq(f[off], 0, "no legacy PM block (byte %u)", off);
	cr_assert_eq(rd32(f + 36), 0u, "no FACS");
	uint64_t dsdt_gpa = rd64(f + 140);
	cr_assert_eq(rd32(f + 40), (uint32_t)dsdt_gpa, "DSDT and X_DSDT agree");
	const uint8_t *d = table(dsdt_gpa, "DSDT", 2);
	cr_assert_eq(rd32(d + 4), 36u, "an empty DSDT");

	const uint8_t *m = table(madt_gpa, "APIC", 5);
	/* every table lies inside what boot_acpi_write reported */
	uint64_t ends[] = {xsdt_gpa + xlen, fadt_gpa + 276, dsdt_gpa + 36, madt_gpa + rd32(m + 4)};
	for (unsigned i = 0; i < ARRAY_SIZE(ends); i++)
		cr_assert_leq(ends[i], BIOS_START + (uint64_t)n);
	/* and nothing past it was touched */
	cr_assert_eq(bios[n], 0xa5);
	return m;
}

static void check_madt(unsigned nr)
{
	const uint8_t *m = walk(nr);
	uint32_t len = rd32(m + 4);
	cr_assert_eq(len, 44u + 8 * nr + 12 + 6, "MADT length for %u vCPUs", nr);
	cr_assert_eq(rd32(m + 36), 0xfee00000u, "local APIC address");
	cr_assert_eq(rd32(m + 40), 1u, "PCAT_COMPAT");

	unsigned cpus = 0, ioapics = 0, nmis = 0;
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;
		cr_assert_geq(e[1], 2);
		cr_assert_leq(off + e[1], len, "entry at %u overruns the MADT", off);
		switch (e[0]) {
		case 0:
			cr_assert_eq(e[1], 8);
			cr_assert_eq(e[2], cpus, "processor UID");
			cr_assert_eq(e[3], cpus, "APIC id");
			cr_assert_eq(rd32(e + 4), 1u, "enabled");
			cpus++;
			break;
		case 1:
			cr_assert_eq(e[1], 12);
			cr_assert_eq(e[2], nr, "IOAPIC id as in the MP table");
			cr_assert_eq(rd32(e + 4), 0xfec00000u);
			cr_assert_eq(rd32(e + 8), 0u, "GSI base");
			ioapics++;
			break;
		case 4:
			cr_assert_eq(e[1], 6);
			cr_assert_eq(e[2], 0xff, "every processor");
			cr_assert_eq(e[5], 1, "LINT1");
			nmis++;
			break;
		default:
			cr_assert_fail("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	cr_assert_eq(cpus, nr);
	cr_assert_eq(ioapics, 1u);
	cr_assert_eq(nmis, 1u);
}

Test(acpi, one_vcpu)
{
	check_madt(1);
}

Test(acpi, two_vcpus)
{
	check_madt(2);
}

Test(acpi, max_vcpus)
{
	check_madt(VM_MAX_VCPUS);
}

Test(acpi, fits_below_1mib)
{
	cr_assert_leq(BOOT_ACPI_RSDP_ADDR + boot_acpi_size(VM_MAX_VCPUS), BOOT_ACPI_END);
	cr_assert_geq(BOOT_ACPI_RSDP_ADDR, GM_EBDA_START, "inside the range e820 reserves");
}

Test(acpi, bad_input)
{
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START, 0), -EINVAL);
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START, VM_MAX_VCPUS + 1), -EINVAL);
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START + 8, 1), -EINVAL);
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), GM_HOLE_END, 1), -EINVAL);
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), GM_HOLE_END - 256, 1), -EINVAL);
	memset(bios, 0xa5, sizeof(bios));
	cr_assert_eq(boot_acpi_write(bios, boot_acpi_size(2) - 1, BIOS_START, 2), -ENOSPC);
	cr_assert_eq(bios[0], 0xa5, "nothing written on failure");
}

/* ---------------------------------------------- boot_load's placement */

/* a test guest from the build tree (hello.elf has the PVH note, hello-nopvh.elf not) */
static const char *guest(const char *name)
{
	static char path[4096];
	const char *root = getenv("KILN_BUILD_ROOT");
	snprintf(path, sizeof(path), "%s/tests/guests/%s", root ? root : "build", name);
	if (access(path, R_OK) != 0)
		cr_skip_test("%s is absent (built with the test guests)", path);
	return path;
}

static void boot_and_find(const char *name, enum boot_mode mode)
{
	const char *path = guest(name);
	struct guest_mem gm;
	struct errbuf e = {0};
	cr_assert_eq(gm_init(&gm, MIB(64), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	struct boot_config cfg = {.kernel_path = path, .nr_vcpus = 3};
	struct boot_info bi;
	cr_assert_eq(boot_load(&gm, &cfg, &bi, &e), 0, "%s", e.msg);
	cr_assert_eq(bi.mode, mode);

	uint64_t rsdp;
	if (mode == BOOT_PVH) {
		struct hvm_start_info *si = gm_ptr(&gm, bi.params_gpa, sizeof(*si));
		rsdp = si->rsdp_paddr;
	} else {
		struct boot_params *zp = gm_ptr(&gm, bi.params_gpa, sizeof(*zp));
		rsdp = zp->acpi_rsdp_addr;
	}
	cr_assert_eq(rsdp, BOOT_ACPI_RSDP_ADDR);
	size_t size = boot_acpi_size(3);
	memcpy(bios, gm_ptr(&gm, BIOS_START, BIOS_LEN), BIOS_LEN);
	cr_assert_eq(scan_rsdp(), rsdp, "the legacy scan finds the same RSDP");
	/* the guest holds exactly what boot_acpi_write makes for 3 vCPUs */
	uint8_t *in_guest = gm_ptr(&gm, BOOT_ACPI_RSDP_ADDR, size);
	cr_assert_eq(write_tables(3), (int)size);
	cr_assert(!memcmp(in_guest, bios, size));
	gm_destroy(&gm);
}

Test(acpi, boot_load_pvh_start_info)
{
	boot_and_find("hello.elf", BOOT_PVH);
}

Test(acpi, boot_load_zero_page)
{
	boot_and_find("hello-nopvh.elf", BOOT_LINUX64);
}
