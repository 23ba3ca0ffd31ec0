// SPDX-License-Identifier: Apache-2.0
/*
 * Snapshots refused (issue 5): state files truncated, with a flipped byte,
 * of a newer format version, from another CPU model or without one of
 * their sections (issue 9; these with their CRC-32 fixed up, so that only
 * the one thing is wrong); a memory file of the wrong size, missing files,
 * a load after configuration, a create while running and a Diff without
 * dirty page tracking. Each is a
 * 400 naming the problem, the daemon still answers, nothing stays half
 * loaded: a good load on the same daemon afterwards restores the guest.
 * The state file's layout is in daemon/snapshot.h.
 */
#include "common/common.h"
#include "snap_test.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(snapshot_bad, .init = snap_test_init, .fini = snap_test_fini, .timeout = 300);

/* writes buf into snap_file(name); with crc: a new CRC-32 over the last 4 bytes */
static void spit(const char *name, uint8_t *buf, size_t len, bool crc)
{
	if (crc) {
		uint32_t c = crc32_update(0, buf, len - 4);
		for (int i = 0; i < 4; i++)
			buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
	}
	int fd = open(snap_file(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/*
 * Removes the section `id` from the state file in buf (daemon/snapshot.h:
 * 8 bytes of magic, u32 version, sections, u32 CRC-32; common/state.h: u8
 * id length, id, u16 version, u32 payload length, payload); returns the
 * new length. The CRC is left for spit() to fix.
 */
static size_t drop_section(uint8_t *buf, size_t len, const char *id)
{
	size_t off = 12;
	while (off < len - 4) {
		size_t idlen = buf[off];
		uint32_t plen;
		memcpy(&plen, buf + off + 1 + idlen + 2, 4);
		size_t end = off + 1 + idlen + 2 + 4 + plen;
		cr_assert_leq(end, len - 4, "a malformed state file");
		if (idlen == strlen(id) && memcmp(buf + off + 1, id, idlen) == 0) {
			memmove(buf + off, buf + end, len - end);
			return len - (end - off);
		}
		off = end;
	}
	cr_assert_fail("the state file has no section %s", id);
	return len;
}

/* the good vm.snap without section `id`, as `name` */
static void spit_without(const char *name, const uint8_t *good, size_t len, const char *id)
{
	uint8_t *b = malloc(len);
	cr_assert(b);
	memcpy(b, good, len);
	spit(name, b, drop_section(b, len, id), true);
	free(b);
}

/* the bad state files, each made from a copy of the good vm.snap */
static void make_bad_states(void)
{
	size_t len;
	uint8_t *good = sk_slurp(snap_file("vm.snap"), &len), *b = malloc(len);
	cr_assert(good && b, "cannot read %s", snap_file("vm.snap"));
	cr_assert(b);

	spit("trunc.snap", good, len / 2, false);
	memcpy(b, good, len);
	b[len / 2] ^= 0x40;
	spit("flip.snap", b, len, false);
	memcpy(b, good, len);
	b[8] = 2; /* u32 format version, little endian, after the magic */
	spit("newer.snap", b, len, true);
	/* the CPU model in the "snapshot" section starts with the CPUID vendor */
	memcpy(b, good, len);
	uint8_t *v = memmem(b, len, "GenuineIntel", 12);
	if (!v)
		v = memmem(b, len, "AuthenticAMD", 12);
	cr_assert(v, "no CPU vendor string in the state file");
	memcpy(v, "KilnTestCPU!", 12);
	spit("cpu.snap", b, len, true);
	spit("junk.snap", (uint8_t *)"not a snapshot at all\n", 22, false);
	/* issue 9: complete but for one section */
	spit_without("novcpu.snap", good, len, "vcpu.0");
	spit_without("noclock.snap", good, len, "clock");
	spit_without("noirqchip.snap", good, len, "irqchip");
	spit_without("noserial.snap", good, len, "serial");
	spit_without("nolayout.snap", good, len, "layout");
	free(b);
	free(good);
}

/* vm.mem one page short */
static void make_short_mem(void)
{
	sh("cp --sparse=always %s %s && truncate -s -4096 %s", snap_file("vm.mem"),
	   snap_file("short.mem"), snap_file("short.mem"));
}

static void load_fails(struct skiln *k, const char *state, const char *type, const char *mem,
                       const char *msg)
{
	char *b = sk_load_body(state, type, mem, true, NULL);
	sk_fault(k, "PUT", "/snapshot/load", b, msg);
	free(b);
	cr_assert_str_eq(sk_state(k), "Not started", "a failed load left the kiln configured");
}

Test(snapshot_bad, refused_then_good_load)
{
	struct skiln *k = sk_start("k0");
	sk_boot_memck(k, NULL, false);
	memck_started(k, 2);
	char *create = kh_fmt("{\"snapshot_path\": \"%s\", \"mem_file_path\": \"%s\"}",
	                      snap_file("vm.snap"), snap_file("vm.mem"));
	sk_fault(k, "PUT", "/snapshot/create", create, "pause it first");
	sk_pause(k);
	char *diff = kh_fmt("{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"%s\", "
	                    "\"mem_file_path\": \"%s\"}",
	                    snap_file("d.snap"), snap_file("d.mem"));
	sk_fault(k, "PUT", "/snapshot/create", diff, "track_dirty_pages");
	cr_assert_eq(access(snap_file("d.snap"), F_OK), -1, "a refused Diff left a file");
	sk_ok(k, "PUT", "/snapshot/create", create);
	free(create);
	free(diff);
	struct memck_at at = memck_last(k);
	sk_kill(k);
	make_bad_states();
	make_short_mem();

	/* loading after configuration: checked before the files are read */
	struct skiln *cfg = sk_start("cfg");
	sk_ok(cfg, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	load_fails(cfg, "vm.snap", "File", snap_file("vm.mem"), "after configuring");
	sk_kill(cfg);

	k = sk_start("k1");
	const char *mem = snap_file("vm.mem");
	load_fails(k, "trunc.snap", "File", mem, "checksum");
	load_fails(k, "flip.snap", "File", mem, "checksum");
	load_fails(k, "newer.snap", "File", mem, "format version");
	load_fails(k, "cpu.snap", "File", mem, "KilnTestCPU!");
	load_fails(k, "junk.snap", "File", mem, "not a kiln snapshot");
	load_fails(k, "novcpu.snap", "File", mem, "no state for vCPU 0");
	load_fails(k, "noclock.snap", "File", mem, "section clock is missing");
	load_fails(k, "noirqchip.snap", "File", mem, "section irqchip is missing");
	load_fails(k, "noserial.snap", "File", mem, "no serial section");
	load_fails(k, "nolayout.snap", "File", mem, "no layout section");
	load_fails(k, "nosuch.snap", "File", mem, "nosuch.snap");
	load_fails(k, "vm.snap", "File", snap_file("short.mem"), "67104768 bytes");
	load_fails(k, "vm.snap", "File", snap_file("nosuch.mem"), "nosuch.mem");
	load_fails(k, "vm.snap", "Uffd", snap_file("nosuch.sock"), "nosuch.sock");
	/* the same daemon, the good files */
	sk_load(k, "vm.snap", "vm.mem", true);
	memck_continues(k, at);
}
