// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux.c: boots Debian's cloud kernel with kiln, 2
 * vCPUs and 256 MiB (also 1 vCPU, and 4 vCPUs with 3.5 GiB, which kiln
 * splits around the 32-bit MMIO hole), and a tiny initramfs built here
 * (busybox and an /init script), and checks
 *   - its first lines -- the command line it echoes ("Command line: ...")
 *     and the e820 map it was given ("BIOS-e820: [mem ...] usable") --
 *     against what kiln handed over;
 *   - that it found kiln's ACPI tables (the RSDP at 0xE0000 and the MADT)
 *     and so allows both vCPUs: the kernel has no MP-table parser
 *     (CONFIG_X86_MPPARSE is off);
 *   - that it reaches userspace: /init says so with this run's marker and
 *     the number of CPUs Linux brought up, then resets the machine (reboot
 *     -f with reboot=k: the i8042), and kiln exits cleanly;
 *   - that it finds the VM's devices in kiln's DSDT, the only place they
 *     are announced (the command line has no acpi=off, so no
 *     virtio_mmio.device=, which this kernel could not read anyway): COM1
 *     and the i8042 as PnP devices, and the entropy device as the platform
 *     device LNRO0005:00 with its window in /proc/iomem. /init then loads
 *     virtio_mmio and virtio-rng (modules in this kernel, which
 *     scripts/fetch-linux.sh extracts from the same package), which bind
 *     the device and read 16 bytes from /dev/hwrng through it: the window
 *     and the interrupt line of _CRS work;
 *   - that the serial console carries userspace's output and input: Linux
 *     finds COM1 and its IRQ 4 only in the DSDT (a hardware-reduced ACPI
 *     machine has no legacy PIC, so no ISA IRQ exists until ACPI names
 *     it); before kiln described COM1 there, opening ttyS0 failed with EIO
 *     and userspace output was lost while printk, which polls, got through.
 * The ELF vmlinux boots through PVH (its Xen PVH entry note), and a copy
 * whose note was retyped boots through the 64-bit entry (startup_64 with
 * the zero page), as Firecracker boots an ELF without that note.
 * The boot test's /init writes through /dev/kmsg so that it does not
 * depend on the console.
 * The kernel is fetched by scripts/fetch-linux.sh into tests/linux/cache;
 * /bin/busybox must be busybox-static.
 *
 * Measured in the test bed (QEMU TCG emulating AMD SVM, so guest code
 * runs emulated), one test at a time: the ELF vmlinux, booted through PVH,
 * starts /init about 18 s into its own clock and the whole test takes
 * 34-58 s of wall time; the bzImage, which first runs its own
 * decompressor, 37-48 s (it was 83 s on the nested PVM hosts, which
 * emulated its ring 0). The waits below leave room for both tests at once
 * on two emulated CPUs.
 */
#include "cpio.h"
#include "harness.h"
#include "memory/memory.h"
#include "vcpu/vcpu.h"

#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the VM of each test: 2 vCPUs and 256 MiB unless the test says otherwise */
static unsigned mem_mib = 256, nr_vcpus = 2;
#define BUSYBOX "/bin/busybox"

/* the modules /init loads, in order (modules/ of the kernel cache) */
static const char *const modules[] = {"virtio_ring", "virtio", "virtio_mmio", "virtio-rng"};

static struct kproc kp;
static char initrd[64]; /* this test's initramfs, removed at teardown */
static char nopvh[64];  /* a vmlinux without its PVH note, removed at teardown */

static void teardown(void)
{
	kh_kill(&kp);
	if (initrd[0])
		unlink(initrd);
	if (nopvh[0])
		unlink(nopvh);
	initrd[0] = nopvh[0] = '\0';
}

TestSuite(linux_boot, .fini = teardown, .timeout = 540);

/* `name` in the kernel cache, into `path`; skips the test when it is not there */
static const char *cached(const char *name, char path[4096])
{
	const char *root = getenv("KILN_SOURCE_ROOT");
	snprintf(path, 4096, "%s/tests/linux/cache/%s", root ? root : ".", name);
	if (access(path, R_OK) != 0)
		cr_skip_test("%s is absent: run scripts/fetch-linux.sh to fetch Debian's kernel",
		             path);
	return path;
}

static const char *kernel(const char *name)
{
	static char path[4096];
	return cached(name, path);
}

/*
 * /init: the proof that Linux ran userspace, and what it found. Run by the
 * kernel through binfmt_script as "/bin/busybox sh /init". Its marker lines
 * go to /dev/kmsg (see the top of this file): the CPUs, then the entropy
 * device -- whether its ACPI window is in /proc/iomem, the device the
 * virtio-mmio driver bound, the virtio device id it found there, and how
 * many bytes virtio-rng read.
 * `reboot -f` calls reboot(2) at once, which with reboot=k resets through
 * the i8042.
 */
static char *init_script(const char *marker)
{
	return kh_fmt(
	        "#!/bin/busybox sh\n"
	        "busybox mount -t proc proc /proc\n"
	        "busybox mount -t sysfs sysfs /sys\n"
	        "cpus=$(busybox grep -c '^processor' /proc/cpuinfo)\n"
	        "online=$(busybox cat /sys/devices/system/cpu/online)\n"
	        "echo \"kiln-init: %s cpus=$cpus online=$online\" >/dev/kmsg\n"
	        "iomem=$(busybox grep -c '%s : LNRO0005:00' /proc/iomem)\n"
	        "for m in %s %s %s %s; do busybox insmod /lib/$m.ko; done\n"
	        "drv=$(busybox ls /sys/bus/platform/drivers/virtio-mmio | busybox grep LNRO)\n"
	        "dev=$(busybox cat /sys/bus/virtio/devices/virtio0/device)\n"
	        "busybox mknod /dev/hwrng c 10 183\n"
	        "rng=$(busybox timeout 60 busybox head -c 16 /dev/hwrng | busybox wc -c)\n"
	        "echo \"kiln-init: %s iomem=$iomem virtio-mmio=$drv virtio0=$dev hwrng=$rng\" "
	        ">/dev/kmsg\n"
	        "busybox reboot -f\n"
	        "echo 'kiln-init: reboot -f returned' >/dev/kmsg\n",
	        marker, "d0000000-d0000fff", modules[0], modules[1], modules[2], modules[3],
	        marker);
}

/*
 * /init for the console test: a line out through the 8250 driver's
 * interrupt-driven transmit path, then the line typed on kiln's stdin read
 * back through its receive path and echoed.
 */
static char *console_script(const char *marker)
{
	return kh_fmt("#!/bin/busybox sh\n"
	              "echo \"kiln-console: ready %s\"\n"
	              "read -r line\n"
	              "echo \"kiln-console: got <$line>\"\n"
	              "busybox reboot -f\n",
	              marker);
}

/* writes an initramfs whose /init is `init` (freed) to a temporary file: its path */
static const char *make_initramfs(char *init)
{
	if (access(BUSYBOX, X_OK) != 0)
		cr_skip_test("%s is absent: apt-get install busybox-static", BUSYBOX);
	struct cpio c;
	cpio_init(&c);
	cpio_dir(&c, "bin", 0755);
	cpio_dir(&c, "dev", 0755);
	cpio_dir(&c, "proc", 0555);
	cpio_dir(&c, "sys", 0555);
	/* the kernel opens /dev/console for init's stdio before devtmpfs is there */
	cpio_chardev(&c, "dev/console", 0600, 5, 1);
	cpio_chardev(&c, "dev/kmsg", 0644, 1, 11);
	cpio_host_file(&c, "bin/busybox", 0755, BUSYBOX);
	cpio_dir(&c, "lib", 0755);
	for (size_t i = 0; i < ARRAY_SIZE(modules); i++) {
		char *name = kh_fmt("modules/%s.ko", modules[i]);
		char *path = kh_fmt("lib/%s.ko", modules[i]);
		char host[4096];
		cpio_host_file(&c, path, 0644, cached(name, host));
		free(name);
		free(path);
	}
	cr_assert_not_null(init);
	cpio_file(&c, "init", 0755, init, strlen(init));
	free(init);

	strcpy(initrd, "/tmp/kiln-test-initrd-XXXXXX");
	int fd = mkstemp(initrd);
	cr_assert_geq(fd, 0);
	close(fd);
	int ret = cpio_write(&c, initrd);
	cpio_free(&c);
	cr_assert_eq(ret, 0, "initramfs %s: %s", initrd, strerror(-ret));
	return initrd;
}

/*
 * The lines Linux prints for the map kiln gives a guest of mem_mib
 * (arch/x86/kernel/e820.c: "%s: [mem %#018Lx-%#018Lx] " then the type),
 * computed from gm_e820 over the same layout, without mapping any RAM.
 */
static int expected_e820(char lines[][96], int max)
{
	struct guest_mem g = {0};
	int n = gm_layout(MIB((uint64_t)mem_mib), g.regions);
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

/* the lines of early boot: the command line echoed, the e820 map, ACPI */
static void check_early_boot(const char *cmdline, int timeout_s)
{
	char *echo = kh_fmt("Command line: %s", cmdline);
	bool seen = kh_wait_for(&kp, echo, timeout_s * 1000);
	cr_assert(seen, "no \"%s\" within %d s (%s); kiln printed:\n%s", echo, timeout_s,
	          kh_status(&kp), kp.out);
	free(echo);

	char lines[8][96];
	int n = expected_e820(lines, 8);
	for (int i = 0; i < n; i++)
		cr_assert(kh_wait_for(&kp, lines[i], 30000), "no \"%s\" (%s); kiln printed:\n%s",
		          lines[i], kh_status(&kp), kp.out);
	cr_expect_eq(count(kp.out, "BIOS-e820: [mem "), (unsigned)n,
	             "the kernel saw other e820 entries than kiln's %d:\n%s", n, kp.out);

	/*
	 * drivers/acpi/acpica/tbprint.c prints each table with its address,
	 * arch/x86/kernel/smpboot.c the CPUs the MADT gave: a few seconds
	 * after the e820 map (far more under an emulated CPU).
	 */
	char rsdp[64], cpus[64];
	snprintf(rsdp, sizeof(rsdp), "ACPI: RSDP 0x%016llX",
	         (unsigned long long)BOOT_ACPI_RSDP_ADDR);
	snprintf(cpus, sizeof(cpus), "smpboot: Allowing %u CPUs", nr_vcpus);
	/* drivers/pnp/pnpacpi/core.c: COM1 and the i8042 from the DSDT */
	const char *acpi[] = {rsdp,
	                      "ACPI: XSDT 0x",
	                      "ACPI: APIC 0x",
	                      "ACPI: DSDT 0x",
	                      cpus,
	                      "pnp: PnP ACPI: found 2 devices"};
	for (size_t i = 0; i < ARRAY_SIZE(acpi); i++)
		cr_assert(kh_wait_for(&kp, acpi[i], 120000), "no \"%s\" (%s); kiln printed:\n%s",
		          acpi[i], kh_status(&kp), kp.out);
}

/* /init ran, found nr_vcpus CPUs online, and its reset ended kiln with status 0 */
static void check_userspace(const char *marker, int timeout_s)
{
	cr_assert(kh_wait_for(&kp, "Run /init as init process", timeout_s * 1000),
	          "Linux did not start /init within %d s (%s); kiln printed:\n%s", timeout_s,
	          kh_status(&kp), kp.out);
	char *line = kh_fmt("kiln-init: %s cpus=", marker);
	cr_assert(kh_wait_for(&kp, line, 120000), "no \"%s\" from /init (%s); kiln printed:\n%s",
	          line, kh_status(&kp), kp.out);
	free(line);
	int st = kh_wait_exit(&kp, 120000);
	/* Linux writes a range of one CPU as that CPU alone */
	char *online = nr_vcpus > 1 ? kh_fmt("0-%u", nr_vcpus - 1) : kh_fmt("0");
	char *want = kh_fmt("kiln-init: %s cpus=%u online=%s", marker, nr_vcpus, online);
	free(online);
	cr_assert(strstr(kp.out, want), "Linux did not find %u CPUs (no \"%s\"):\n%s", nr_vcpus,
	          want, kp.out);
	free(want);
	/* virtio id 4: entropy (virtio 1.2 s5) */
	want = kh_fmt("kiln-init: %s iomem=1 virtio-mmio=LNRO0005:00 virtio0=0x0004 hwrng=16",
	              marker);
	cr_assert(strstr(kp.out, want),
	          "Linux did not bind the entropy device of the DSDT (no \"%s\"):\n%s", want,
	          kp.out);
	free(want);
	cr_assert(!strstr(kp.out, "virtio_mmio.device="),
	          "without acpi=off kiln announces devices in the DSDT only:\n%s", kp.out);
	cr_assert_eq(st, 0, "kiln did not exit cleanly after /init's reboot (%d); it printed:\n%s",
	             st, kp.out);
	cr_assert(strstr(kp.out, "the guest reset the machine through the i8042"),
	          "kiln did not stop through the i8042 reset:\n%s", kp.out);
	cr_assert(!strstr(kp.out, "Kernel panic"), "%s", kp.out);
}

/* starts kiln on `kernel_path` with the initramfs and command line given */
static void spawn_linux(const char *kernel_path, const char *initramfs, const char *cmdline,
                        bool with_stdin)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", "
	                   "\"initrd_path\": \"%s\", \"boot_args\": \"%s\"}, "
	                   "\"machine-config\": {\"vcpu_count\": %u, \"mem_size_mib\": %u}, "
	                   "\"entropy\": {}}",
	                   kernel_path, initramfs, cmdline, nr_vcpus, mem_mib);
	char *cfg_path = kh_write_temp(cfg, ".json");
	cr_assert_not_null(cfg_path);
	free(cfg);
	/* Info: the line saying why the VM stopped */
	const char *argv[] = {"kiln",          "--no-api", "--level", "Info",
	                      "--config-file", cfg_path,   NULL};
	cr_assert_eq(with_stdin ? kh_spawn_stdin(&kp, argv) : kh_spawn(&kp, argv), 0);
	kp.cfg_path = cfg_path; /* kh_kill removes it */
}

static void boot_and_check(const char *kernel_path, int early_s, int userspace_s)
{
	char marker[17];
	cr_assert_eq(kh_marker(marker), 0);
	const char *initramfs = make_initramfs(init_script(marker));
	char *cmdline = kh_fmt("earlyprintk=serial,ttyS0 console=ttyS0 reboot=k panic=1 "
	                       "kiln.marker=%s",
	                       marker);
	spawn_linux(kernel_path, initramfs, cmdline, false);
	check_early_boot(cmdline, early_s);
	free(cmdline);
	check_userspace(marker, userspace_s);
}

Test(linux_boot, vmlinux_pvh_reaches_userspace)
{
	boot_and_check(kernel("vmlinux"), 120, 300);
	cr_assert(strstr(kp.out, "PVH entry at"), "kiln did not enter through PVH:\n%s", kp.out);
}

/*
 * A copy of `path` whose Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY, 18,
 * owner "Xen") has another type, so that a loader sees no PVH entry and
 * takes the ELF entry point, Linux's startup_64: into `out`.
 */
static void without_pvh_note(const char *path, char out[64])
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fseek(f, 0, SEEK_END), 0);
	size_t len = (size_t)ftell(f);
	rewind(f);
	char *elf = malloc(len);
	cr_assert(elf && len > sizeof(Elf64_Ehdr) && fread(elf, 1, len, f) == len, "cannot read %s",
	          path);
	fclose(f);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
	cr_assert(eh->e_phoff < len && eh->e_phnum <= (len - eh->e_phoff) / sizeof(Elf64_Phdr));
	unsigned patched = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(elf + eh->e_phoff) + i;
		if (ph->p_type != PT_NOTE || ph->p_offset > len ||
		    ph->p_filesz > len - ph->p_offset)
			continue;
		for (size_t off = 0; off + sizeof(Elf64_Nhdr) <= ph->p_filesz;) {
			Elf64_Nhdr *nh = (Elf64_Nhdr *)(elf + ph->p_offset + off);
			const char *name = (const char *)(nh + 1);
			size_t step = sizeof(*nh) + ((nh->n_namesz + 3) & ~3u) +
			              ((nh->n_descsz + 3) & ~3u);
			if (nh->n_namesz == 4 && !memcmp(name, "Xen", 4) && nh->n_type == 18) {
				nh->n_type = 0x7fff;
				patched++;
			}
			off += step;
		}
	}
	cr_assert_eq(patched, 1, "%u PVH entry notes in %s", patched, path);
	snprintf(out, 64, "/tmp/kiln-vmlinux-XXXXXX");
	int fd = mkstemp(out);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, elf, len), (ssize_t)len);
	close(fd);
	free(elf);
}

Test(linux_boot, vmlinux_64bit_entry_reaches_userspace)
{
	without_pvh_note(kernel("vmlinux"), nopvh);
	boot_and_check(nopvh, 120, 300);
	cr_assert(strstr(kp.out, "64-bit entry at"),
	          "kiln did not enter through the 64-bit entry:\n%s", kp.out);
}

Test(linux_boot, bzimage_reaches_userspace)
{
	boot_and_check(kernel("bzImage"), 180, 300);
}

/*
 * 1 and 4 vCPUs, and 3.5 GiB, which kiln splits around the 32-bit MMIO
 * hole: the e820 lines must be the two RAM ranges on either side of it.
 */
Test(linux_boot, one_vcpu)
{
	nr_vcpus = 1;
	boot_and_check(kernel("vmlinux"), 120, 300);
}

Test(linux_boot, four_vcpus_and_memory_across_the_32bit_hole)
{
	nr_vcpus = 4;
	mem_mib = 3584;
	boot_and_check(kernel("vmlinux"), 180, 400);
}

/*
 * The serial console both ways, as a user at a shell prompt uses it: what
 * Linux userspace writes to /dev/console reaches kiln's stdout, and a line
 * typed on kiln's stdin reaches userspace.
 */
Test(linux_boot, console_output_and_input)
{
	char marker[17];
	cr_assert_eq(kh_marker(marker), 0);
	const char *initramfs = make_initramfs(console_script(marker));
	spawn_linux(kernel("vmlinux"), initramfs, "console=ttyS0 reboot=k panic=1", true);

	char *ready = kh_fmt("kiln-console: ready %s", marker);
	cr_assert(kh_wait_for(&kp, ready, 300000),
	          "Linux userspace output did not reach the console (no \"%s\"; %s); kiln "
	          "printed:\n%s",
	          ready, kh_status(&kp), kp.out);
	free(ready);
	char *typed = kh_fmt("typed-%s\n", marker);
	cr_assert_eq(kh_type(&kp, typed), 0);
	free(typed);
	char *got = kh_fmt("kiln-console: got <typed-%s>", marker);
	cr_assert(kh_wait_for(&kp, got, 120000),
	          "the line typed on kiln's stdin did not reach userspace (no \"%s\"; %s); kiln "
	          "printed:\n%s",
	          got, kh_status(&kp), kp.out);
	free(got);
	int st = kh_wait_exit(&kp, 120000);
	cr_assert_eq(st, 0, "kiln did not exit cleanly after reboot -f (%d):\n%s", st, kp.out);
}
