// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux.c: boots Debian's cloud kernel with kiln and
 * checks its first lines -- the command line it echoes ("Command line:
 * ...") and the e820 map it was given ("BIOS-e820: [mem ...] usable") --
 * against what kiln handed over, then that it found kiln's ACPI tables
 * (the RSDP at 0xE0000 and the MADT) and so allows both vCPUs: the kernel
 * has no MP-table parser (CONFIG_X86_MPPARSE is off). On this project's nested PVM hosts a stock
 * kernel gets no further (see shared/PLATFORM.md); these lines are the fair
 * check of the boot protocol. The kernel is fetched by
 * scripts/fetch-linux.sh into tests/linux/cache.
 *
 * The ELF vmlinux boots through PVH and prints them in about 12 s. The
 * bzImage first runs its own decompressor in emulated ring 0 (83 s measured
 * with kiln, about 5 minutes with QEMU), so it runs only with
 * KILN_LONG_TESTS=1.
 */
#include "harness.h"
#include "memory/memory.h"
#include "vcpu/vcpu.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM_MIB  256
#define NR_VCPUS 2

static struct kproc kp;

static void teardown(void)
{
	kh_kill(&kp);
}

TestSuite(linux_boot, .fini = teardown, .timeout = 540);

static const char *kernel(const char *name)
{
	static char path[4096];
	const char *root = getenv("KILN_SOURCE_ROOT");
	snprintf(path, sizeof(path), "%s/tests/linux/cache/%s", root ? root : ".", name);
	if (access(path, R_OK) != 0)
		cr_skip_test("%s is absent: run scripts/fetch-linux.sh to fetch Debian's kernel",
		             path);
	return path;
}

/* 16 random hex digits, so the command line the kernel echoes is this run's */
static void random_marker(char out[17])
{
	uint8_t b[8] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, b, sizeof(b)), (ssize_t)sizeof(b));
	close(fd);
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/*
 * The lines Linux prints for the map kiln gives a guest of MEM_MIB
 * (arch/x86/kernel/e820.c: "%s: [mem %#018Lx-%#018Lx] " then the type),
 * computed from gm_e820 over the same layout, without mapping any RAM.
 */
static int expected_e820(char lines[][96], int max)
{
	struct guest_mem g = {0};
	int n = gm_layout(MIB(MEM_MIB), g.regions);
	cr_assert_gt(n, 0);
	g.nr_regions = (unsigned)n;
	struct e820_entry map[8];
	n = gm_e820(&g, map, 8);
	cr_assert(n > 0 && n <= max);
	for (int i = 0; i < n; i++)
		snprintf(lines[i], 96, "BIOS-e820: [mem 0x%016llx-0x%016llx] %s",
		         (unsigned long long)map[i].addr,
		         (unsigned long long)(map[i].addr + map[i].size - 1),
		         map[i].type == E820_RAM ? "usable" : "reserved");
	return n;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void boot_and_check(const char *kernel_path, int timeout_s)
{
	char marker[17];
	random_marker(marker);
	char *cmdline = kh_fmt("earlyprintk=serial,ttyS0 console=ttyS0 reboot=k panic=1 "
	                       "kiln.marker=%s",
	                       marker);
	char *cfg =
	        kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	               "\"%s\"}, \"machine-config\": {\"vcpu_count\": %d, \"mem_size_mib\": %d}}",
	               kernel_path, cmdline, NR_VCPUS, MEM_MIB);
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);

	char *echo = kh_fmt("Command line: %s", cmdline);
	bool seen = kh_wait_for(&kp, echo, timeout_s * 1000);
	cr_assert(seen, "no \"%s\" within %d s; kiln printed:\n%s", echo, timeout_s, kp.out);
	free(echo);
	free(cmdline);

	char lines[8][96];
	int n = expected_e820(lines, 8);
	for (int i = 0; i < n; i++)
		cr_assert(kh_wait_for(&kp, lines[i], 30000), "no \"%s\"; kiln printed:\n%s",
		          lines[i], kp.out);
	cr_expect_eq(count(kp.out, "BIOS-e820: [mem "), (unsigned)n,
	             "the kernel saw other e820 entries than kiln's %d:\n%s", n, kp.out);

	/*
	 * drivers/acpi/acpica/tbprint.c prints each table with its address,
	 * arch/x86/kernel/smpboot.c the CPUs the MADT gave: about 6 s after
	 * the e820 map here.
	 */
	char rsdp[64], cpus[64];
	snprintf(rsdp, sizeof(rsdp), "ACPI: RSDP 0x%016llX",
	         (unsigned long long)BOOT_ACPI_RSDP_ADDR);
	snprintf(cpus, sizeof(cpus), "smpboot: Allowing %d CPUs", NR_VCPUS);
	const char *acpi[] = {rsdp, "ACPI: XSDT 0x", "ACPI: APIC 0x", cpus};
	for (size_t i = 0; i < ARRAY_SIZE(acpi); i++)
		cr_assert(kh_wait_for(&kp, acpi[i], 30000), "no \"%s\"; kiln printed:\n%s", acpi[i],
		          kp.out);
	kh_kill(&kp);
}

Test(linux_boot, vmlinux_pvh_echoes_cmdline_and_e820)
{
	boot_and_check(kernel("vmlinux"), 90);
}

Test(linux_boot, bzimage_echoes_cmdline_and_e820)
{
	const char *path = kernel("bzImage");
	const char *on = getenv("KILN_LONG_TESTS");
	if (!on || strcmp(on, "1") != 0)
		cr_skip_test("the bzImage decompresses in emulated ring 0 (1.5-5 min here): "
		             "set KILN_LONG_TESTS=1 to run it");
	boot_and_check(path, 480);
}
