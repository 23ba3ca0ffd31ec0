// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_acpi.c: the ACPI tables of vcpu/acpi.c read back the way
 * a guest does -- the RSDP found by scanning the BIOS area, both of its
 * checksums, XSDT -> FADT -> DSDT and MADT, every table's checksum and
 * length, and the MADT's entries for 1, 2 and 32 vCPUs; the DSDT's devices
 * as ACPICA's iasl disassembles them (iasl comes with acpica-tools, which
 * scripts/deps.sh installs: without it that test fails); the rule that
 * puts virtio devices on the command line only with acpi=off; then
 * boot_load placing the tables and pointing the zero page or the PVH
 * start info at them.
 */
#include "vcpu/boot_int.h"
#include "virtio/virtio.h"

#include <criterion/criterion.h>
#include <ctype.h>
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

static int write_tables(unsigned nr, const struct boot_acpi_devices *devs)
{
	memset(bios, 0xa5, sizeof(bios)); /* no stale zeroes helping a checksum */
	return boot_acpi_write(bios, sizeof(bios), BIOS_START, nr, devs);
}

/* where walk() found the DSDT */
static const uint8_t *dsdt;

/* walks RSDP -> XSDT -> FADT -> DSDT and MADT; returns the MADT */
static const uint8_t *walk(unsigned nr, const struct boot_acpi_devices *devs)
{
	int n = write_tables(nr, devs);
	cr_assert_eq(n, (int)boot_acpi_size(nr, devs));

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
	uint16_t want_8042 = devs && devs->i8042 ? 1u << 1 : 0;
	cr_assert_eq(boot_arch & (1u << 1), want_8042, "8042 flag as the i8042 is there or not");
	dsdt = table(dsdt_gpa, "DSDT", 2);
	cr_assert_gt(rd32(dsdt + 4), 36u, "a DSDT with AML (at least Scope (\\_SB_))");

	const uint8_t *m = table(madt_gpa, "APIC", 5);
	/* every table lies inside what boot_acpi_write reported, none overlaps another */
	uint64_t starts[] = {xsdt_gpa, fadt_gpa, dsdt_gpa, madt_gpa};
	uint64_t ends[] = {xsdt_gpa + xlen, fadt_gpa + 276, dsdt_gpa + rd32(dsdt + 4),
	                   madt_gpa + rd32(m + 4)};
	for (unsigned i = 0; i < ARRAY_SIZE(ends); i++)
		for (unsigned j = 0; j < ARRAY_SIZE(ends); j++)
			cr_assert(i == j || ends[i] <= starts[j] || ends[j] <= starts[i],
			          "tables %u and %u overlap", i, j);
	for (unsigned i = 0; i < ARRAY_SIZE(ends); i++)
		cr_assert_leq(ends[i], BIOS_START + (uint64_t)n);
	/* and nothing past it was touched */
	cr_assert_eq(bios[n], 0xa5);
	return m;
}

static void check_madt(unsigned nr)
{
	const uint8_t *m = walk(nr, NULL);
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
	struct boot_acpi_virtio v[BOOT_ACPI_VIRTIO_MAX];
	for (unsigned i = 0; i < BOOT_ACPI_VIRTIO_MAX; i++)
		v[i] = (struct boot_acpi_virtio){0xd0000000u + 0x1000u * i, 0x1000, 5 + i};
	struct boot_acpi_devices all = {v, BOOT_ACPI_VIRTIO_MAX, true, true};
	cr_assert_leq(BOOT_ACPI_RSDP_ADDR + boot_acpi_size(VM_MAX_VCPUS, &all), BOOT_ACPI_END);
	cr_assert_eq(write_tables(VM_MAX_VCPUS, &all), (int)boot_acpi_size(VM_MAX_VCPUS, &all));
	cr_assert_geq(BOOT_ACPI_RSDP_ADDR, GM_EBDA_START, "inside the range e820 reserves");
}

Test(acpi, bad_input)
{
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START, 0, NULL), -EINVAL);
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START, VM_MAX_VCPUS + 1, NULL),
	             -EINVAL);
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START + 8, 1, NULL), -EINVAL);
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), GM_HOLE_END, 1, NULL), -EINVAL);
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), GM_HOLE_END - 256, 1, NULL), -EINVAL);
	memset(bios, 0xa5, sizeof(bios));
	cr_assert_eq(boot_acpi_write(bios, boot_acpi_size(2, NULL) - 1, BIOS_START, 2, NULL),
	             -ENOSPC);
	cr_assert_eq(bios[0], 0xa5, "nothing written on failure");

	/* virtio windows Memory32Fixed cannot describe, too many devices, no list */
	struct boot_acpi_virtio bad[] = {
	        {0xfffff000u, 0x2000, 5}, {0x100000000ull, 0x1000, 5}, {0xd0000000u, 0, 5}};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		struct boot_acpi_devices d = {&bad[i], 1, false, false};
		cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START, 1, &d), -EINVAL,
		             "window %u", i);
	}
	struct boot_acpi_virtio ok = {0xfffff000u, 0x1000, 23};
	struct boot_acpi_devices d = {&ok, BOOT_ACPI_VIRTIO_MAX + 1, false, false};
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START, 1, &d), -EINVAL);
	d = (struct boot_acpi_devices){NULL, 1, false, false};
	cr_assert_eq(boot_acpi_write(bios, sizeof(bios), BIOS_START, 1, &d), -EINVAL);
	cr_assert_eq(bios[0], 0xa5, "nothing written on failure");
	d = (struct boot_acpi_devices){&ok, 1, false, false};
	cr_assert_gt(boot_acpi_write(bios, sizeof(bios), BIOS_START, 1, &d), 0, "the last page");
}

/* three virtio devices where kiln puts its first three, COM1 and the i8042 */
static const struct boot_acpi_virtio three[] = {
        {0xd0000000u, 0x1000, 5}, {0xd0001000u, 0x1000, 6}, {0xd0002000u, 0x1000, 7}};
static const struct boot_acpi_devices three_devices = {three, ARRAY_SIZE(three), true, true};

/* ------------------------------------------- the DSDT, read by iasl */

static char tmpdir[64]; /* where iasl works; removed at teardown */

static void remove_tmpdir(void)
{
	static const char *const files[] = {"dsdt.dat", "dsdt.dsl", "re.aml"};
	for (unsigned i = 0; tmpdir[0] && i < ARRAY_SIZE(files); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	if (tmpdir[0])
		rmdir(tmpdir);
	tmpdir[0] = '\0';
}

/* runs `cmd` in tmpdir with a shell; its output (stdout and stderr) malloc'd */
static char *run(const char *cmd, int *status)
{
	char full[512];
	snprintf(full, sizeof(full), "cd %s && %s 2>&1", tmpdir, cmd);
	FILE *p = popen(full, "r");
	cr_assert_not_null(p, "popen %s", full);
	size_t len = 0, cap = 4096;
	char *out = malloc(cap);
	size_t n;
	while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (cap - len < 1024)
			out = realloc(out, cap *= 2);
	}
	out[len] = '\0';
	*status = pclose(p);
	return out;
}

static char *read_text(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	char *text = calloc(1, 1 << 20);
	size_t n = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	cr_assert_lt(n, (size_t)(1 << 20) - 1);
	return text;
}

/* ASL with its comments dropped and every run of white space one space */
static void squeeze(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		if (r[0] == '/' && r[1] == '/') {
			r += strcspn(r, "\n");
		} else if (r[0] == '/' && r[1] == '*') {
			const char *end = strstr(r + 2, "*/");
			r = end ? end + 2 : r + strlen(r);
		} else if (isspace((unsigned char)*r)) {
			while (isspace((unsigned char)*r))
				r++;
			if (w > s && w[-1] != ' ')
				*w++ = ' ';
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* the text of Device (`name`) up to the next device or the end */
static char *device_block(const char *asl, const char *name)
{
	char head[32];
	snprintf(head, sizeof(head), "Device (%s) {", name);
	const char *start = strstr(asl, head);
	cr_assert_not_null(start, "no \"%s\" in:\n%s", head, asl);
	cr_assert_null(strstr(start + 1, head), "%s declared twice", name);
	const char *end = strstr(start + 1, "Device (");
	return strndup(start, end ? (size_t)(end - start) : strlen(start));
}

static void expect_in(const char *block, const char *what)
{
	cr_assert_not_null(strstr(block, what), "no \"%s\" in\n%s", what, block);
}

static void check_virtio_asl(const char *asl, unsigned i, const struct boot_acpi_virtio *v)
{
	char name[8], num[8], uid[32], mem[96], irq[96];
	snprintf(name, sizeof(name), "VR%02u", i);
	char *b = device_block(asl, name);
	expect_in(b, "Name (_HID, \"LNRO0005\")");
	/* iasl writes 0 and 1 as Zero and One */
	snprintf(num, sizeof(num), "0x%02X", i);
	snprintf(uid, sizeof(uid), "Name (_UID, %s)", i == 0 ? "Zero" : i == 1 ? "One" : num);
	expect_in(b, uid);
	expect_in(b, "Name (_CCA, One)");
	snprintf(mem, sizeof(mem), "Memory32Fixed (ReadWrite, 0x%08llX, 0x%08X, )",
	         (unsigned long long)v->base, v->size);
	expect_in(b, mem);
	snprintf(irq, sizeof(irq),
	         "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x%08X, }",
	         v->gsi);
	expect_in(b, irq);
	free(b);
}

static void check_legacy_asl(const char *asl)
{
	char *b = device_block(asl, "COM1");
	expect_in(b, "Name (_HID, EisaId (\"PNP0501\")");
	expect_in(b, "Name (_UID, Zero)");
	expect_in(b, "IO (Decode16, 0x03F8, 0x03F8, 0x00, 0x08, )");
	expect_in(b, "IRQNoFlags () {4}");
	free(b);
	b = device_block(asl, "KBD");
	expect_in(b, "Name (_HID, EisaId (\"PNP0303\")");
	expect_in(b, "IO (Decode16, 0x0060, 0x0060, 0x01, 0x01, )");
	expect_in(b, "IO (Decode16, 0x0064, 0x0064, 0x01, 0x01, )");
	expect_in(b, "IRQNoFlags () {1}");
	free(b);
}

static void need_iasl(void)
{
	if (system("command -v iasl >/dev/null 2>&1") != 0)
		cr_assert_fail("iasl is not installed: apt-get install acpica-tools "
		               "(scripts/deps.sh installs it)");
}

/*
 * The DSDT for 2 vCPUs, 3 virtio devices, COM1 and the i8042, disassembled
 * by ACPICA's iasl: no error or warning, every device once with its ids,
 * window and interrupt; then the ASL compiled again (-oa: no optimization)
 * gives back the very AML kiln wrote.
 */
Test(acpi, dsdt_disassembles_with_every_device, .fini = remove_tmpdir)
{
	need_iasl();
	walk(2, &three_devices);
	uint32_t len = rd32(dsdt + 4);

	strcpy(tmpdir, "/tmp/kiln-dsdt-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	char path[128];
	snprintf(path, sizeof(path), "%s/dsdt.dat", tmpdir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(dsdt, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);

	int st;
	char *out = run("iasl -d dsdt.dat", &st);
	cr_assert_eq(st, 0, "iasl -d failed (%d):\n%s", st, out);
	cr_assert_not_null(strstr(out, "Disassembly completed"), "%s", out);
	cr_assert(!strcasestr(out, "error") && !strcasestr(out, "warning"), "iasl -d:\n%s", out);
	free(out);

	char *asl = read_text("dsdt.dsl");
	squeeze(asl);
	expect_in(asl, "DefinitionBlock (\"\", \"DSDT\", 2, \"KILN \", \"KILNVM \", 0x00000001)");
	expect_in(asl, "Scope (\\_SB) {");
	for (unsigned i = 0; i < ARRAY_SIZE(three); i++)
		check_virtio_asl(asl, i, &three[i]);
	check_legacy_asl(asl);
	unsigned devices = 0;
	for (const char *p = asl; (p = strstr(p, "Device (")); p++)
		devices++;
	cr_assert_eq(devices, ARRAY_SIZE(three) + 2, "only those devices:\n%s", asl);
	free(asl);

	out = run("iasl -oa -p re dsdt.dsl", &st);
	cr_assert_eq(st, 0, "iasl could not compile its own disassembly (%d):\n%s", st, out);
	cr_assert_not_null(strstr(out, "0 Errors, 0 Warnings, 0 Remarks"), "%s", out);
	free(out);
	snprintf(path, sizeof(path), "%s/re.aml", tmpdir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	static uint8_t re[0x10000];
	size_t n = fread(re, 1, sizeof(re), f);
	fclose(f);
	cr_assert_eq(n, len, "iasl's DSDT has %zu bytes, kiln's %u", n, len);
	cr_assert(!memcmp(re + 36, dsdt + 36, len - 36), "iasl encodes the same ASL otherwise");
}

Test(acpi, dsdt_lists_only_what_is_there)
{
	/* no devices at all: an empty Scope (\_SB_) */
	walk(1, NULL);
	static const uint8_t empty[] = {0x10, 0x06, '\\', '_', 'S', 'B', '_'};
	cr_assert_eq(rd32(dsdt + 4), 36 + sizeof(empty));
	cr_assert(!memcmp(dsdt + 36, empty, sizeof(empty)));
	/* one virtio device alone: one Device op, LNRO0005 once, no EISA id */
	struct boot_acpi_devices one = {three, 1, false, false};
	walk(1, &one);
	uint32_t len = rd32(dsdt + 4);
	unsigned ops = 0, hids = 0;
	for (uint32_t i = 36; i + 8 <= len; i++) {
		ops += dsdt[i] == 0x5b && dsdt[i + 1] == 0x82;
		hids += !memcmp(dsdt + i, "LNRO0005", 8);
	}
	cr_assert_eq(ops, 1u);
	cr_assert_eq(hids, 1u);
}

/* ------------------------- the command line, the other way to announce */

static int add(char *cmdline, size_t size, const char *start, unsigned n)
{
	snprintf(cmdline, size, "%s", start);
	int ret = 0;
	for (unsigned i = 0; i < n && ret >= 0; i++)
		ret = virtio_mmio_cmdline_add(cmdline, size, 0xd0000000u + 0x1000u * i, 5 + i);
	return ret;
}

Test(acpi, cmdline_announces_virtio_only_with_acpi_off)
{
	/*
	 * ACPI on: the DSDT has them, the command line stays as it was;
	 * acpi=off: each device once on the command line, in order
	 */
	static const struct {
		const char *cmdline;
		bool acpi_off;
	} cases[] = {
	        {"console=ttyS0 reboot=k panic=1", false},
	        {"", false},
	        {"acpi=off acpi=force", false},
	        {"acpi=offx noacpi=off xacpi=off acpi=of", false},
	        {"init=/init -- acpi=off", false},
	        {"foo=\"x acpi=off\" bar", false},
	        {"console=ttyS0 acpi=off", true},
	        {"acpi=off", true},
	        {"acpi=force\tacpi=off\n", true},
	        {"acpi=\"off\" x=\"a b\"", true},
	};
	char c[512], want[512];
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *in = cases[i].cmdline;
		bool off = cases[i].acpi_off;
		cr_assert_eq(virtio_cmdline_acpi_off(in), off, "\"%s\"", in);
		cr_assert_eq(add(c, sizeof(c), in, 3), off ? 1 : 0, "\"%s\"", in);
		snprintf(want, sizeof(want), "%s%s", in,
		         off ? " virtio_mmio.device=4K@0xd0000000:5"
		               " virtio_mmio.device=4K@0xd0001000:6"
		               " virtio_mmio.device=4K@0xd0002000:7"
		             : "");
		cr_assert_str_eq(c, want);
	}
	/* no room: -ENOSPC and the command line unchanged */
	cr_assert_eq(add(c, 20, "acpi=off", 1), -ENOSPC);
	cr_assert_str_eq(c, "acpi=off");
	cr_assert_eq(add(c, 9, "acpi=off", 1), -ENOSPC);
	cr_assert_str_eq(c, "acpi=off");
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
	struct boot_config cfg = {.kernel_path = path, .nr_vcpus = 3, .devices = &three_devices};
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
	size_t size = boot_acpi_size(3, &three_devices);
	memcpy(bios, gm_ptr(&gm, BIOS_START, BIOS_LEN), BIOS_LEN);
	cr_assert_eq(scan_rsdp(), rsdp, "the legacy scan finds the same RSDP");
	/* the guest holds exactly what boot_acpi_write makes for 3 vCPUs and the devices */
	uint8_t *in_guest = gm_ptr(&gm, BOOT_ACPI_RSDP_ADDR, size);
	cr_assert_eq(write_tables(3, &three_devices), (int)size);
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
