// SPDX-License-Identifier: Apache-2.0
/* tests/unit/test_memory.c: guest RAM layout, checked gpa helper, e820, backings. */
#include "memory/memory.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOLE GM_HOLE_START
#define G4   GM_HOLE_END

/* ------------------------------------------------------------ gm_layout */

Test(layout, rejects_zero_unaligned_and_overflow)
{
	struct gm_region r[GM_MAX_REGIONS];
	cr_expect_eq(gm_layout(0, r), -EINVAL);
	cr_expect_eq(gm_layout(4095, r), -EINVAL);
	cr_expect_eq(gm_layout(MIB(128) + 1, r), -EINVAL);
	cr_expect_eq(gm_layout(UINT64_MAX, r), -EINVAL);
	cr_expect_eq(gm_layout(ALIGN_DOWN(UINT64_MAX, GM_PAGE_SIZE), r), -EINVAL);
	/* high region [4 GiB, 2^64): its end does not fit in 64 bits */
	cr_expect_eq(gm_layout(HOLE + (0 - G4), r), -EINVAL);
	/* one page less ends at 2^64 - 4 KiB: fine */
	uint64_t high = 0 - G4 - GM_PAGE_SIZE;
	cr_assert_eq(gm_layout(HOLE + high, r), 2);
	cr_expect_eq(r[1].gpa, G4);
	cr_expect_eq(r[1].size, high);
	cr_expect_eq(r[1].gpa + r[1].size, 0 - GM_PAGE_SIZE);
}

static void expect_one(uint64_t size)
{
	struct gm_region r[GM_MAX_REGIONS];
	cr_assert_eq(gm_layout(size, r), 1, "size 0x%llx", (unsigned long long)size);
	cr_expect_eq(r[0].gpa, 0);
	cr_expect_eq(r[0].size, size);
	cr_expect_eq(r[0].offset, 0);
}

static void expect_two(uint64_t size)
{
	struct gm_region r[GM_MAX_REGIONS];
	cr_assert_eq(gm_layout(size, r), 2, "size 0x%llx", (unsigned long long)size);
	cr_expect_eq(r[0].gpa, 0);
	cr_expect_eq(r[0].size, HOLE);
	cr_expect_eq(r[0].offset, 0);
	cr_expect_eq(r[1].gpa, G4);
	cr_expect_eq(r[1].size, size - HOLE);
	cr_expect_eq(r[1].offset, HOLE);
}

Test(layout, sizes_below_and_at_the_hole)
{
	expect_one(GM_PAGE_SIZE);
	expect_one(MIB(128));
	expect_one(HOLE - GM_PAGE_SIZE);
	expect_one(HOLE); /* exactly 3 GiB: no high region */
}

Test(layout, sizes_above_the_hole)
{
	expect_two(HOLE + GM_PAGE_SIZE);
	expect_two(GIB(3) + MIB(512));
	expect_two(GIB(8));
	struct gm_region r[GM_MAX_REGIONS];
	gm_layout(GIB(8), r);
	cr_expect_eq(r[1].gpa + r[1].size, GIB(9), "8 GiB ends at 9 GiB in guest space");
}

/* --------------------------------------------------------------- gm_ptr */

static struct guest_mem big; /* 3.5 GiB: [0, 3G) and [4G, 4.5G) */

static void big_setup(void)
{
	struct errbuf e = {0};
	int ret = gm_init(&big, GIB(3) + MIB(512), GM_BACKING_ANON, NULL, &e);
	cr_assert_eq(ret, 0, "gm_init: %s", e.msg);
}

static void big_teardown(void)
{
	gm_destroy(&big);
}

TestSuite(ptr, .init = big_setup, .fini = big_teardown);

#define EXPECT_PTR(gpa, len, off)                                                                  \
	cr_expect_eq(gm_ptr(&big, (gpa), (len)), big.base + (off), "gm_ptr(0x%llx, 0x%llx)",       \
	             (unsigned long long)(gpa), (unsigned long long)(len))
#define EXPECT_NULL(gpa, len)                                                                      \
	cr_expect_null(gm_ptr(&big, (gpa), (len)), "gm_ptr(0x%llx, 0x%llx) should be NULL",        \
	               (unsigned long long)(gpa), (unsigned long long)(len))

Test(ptr, region_starts_and_ends)
{
	cr_assert_eq(big.nr_regions, 2);
	EXPECT_PTR(0, 1, 0);
	EXPECT_PTR(0, HOLE, 0); /* the whole low region */
	EXPECT_PTR(HOLE - 1, 1, HOLE - 1);
	EXPECT_PTR(HOLE - 8, 8, HOLE - 8);
	EXPECT_PTR(G4, 1, HOLE);
	EXPECT_PTR(G4, MIB(512), HOLE); /* the whole high region */
	EXPECT_PTR(G4 + MIB(512) - 8, 8, HOLE + MIB(512) - 8);
}

Test(ptr, straddling_edges_and_the_hole)
{
	EXPECT_NULL(0, HOLE + 1);
	EXPECT_NULL(HOLE - 1, 2);
	EXPECT_NULL(HOLE - GM_PAGE_SIZE, 2 * GM_PAGE_SIZE);
	EXPECT_NULL(HOLE, 1);
	EXPECT_NULL(G4 - 1, 1);
	EXPECT_NULL(G4 - 1, 2);
	EXPECT_NULL(HOLE - 1, G4 - HOLE + 2); /* low end, across the hole, into high */
	EXPECT_NULL(G4 + MIB(512) - 8, 9);
	EXPECT_NULL(G4 + MIB(512), 1);
	EXPECT_NULL(G4, MIB(512) + 1);
}

Test(ptr, overflowing_ranges)
{
	EXPECT_NULL(UINT64_MAX - 1, 4);
	EXPECT_NULL(UINT64_MAX, 1);
	EXPECT_NULL(0, UINT64_MAX);
	EXPECT_NULL(8, UINT64_MAX - 7); /* gpa + len wraps to exactly 0 */
	EXPECT_NULL(G4, UINT64_MAX);
	EXPECT_NULL(G4 + 16, 0 - (G4 + 16) + 8); /* wraps to 8, inside low RAM */
}

Test(ptr, len_zero_is_one_byte)
{
	EXPECT_PTR(0, 0, 0);
	EXPECT_PTR(HOLE - 1, 0, HOLE - 1);
	EXPECT_NULL(HOLE, 0);
	EXPECT_NULL(G4 + MIB(512), 0);
	EXPECT_NULL(UINT64_MAX, 0);
}

Test(ptr, read_write_round_trip)
{
	const char msg[] = "kiln guest memory";
	char back[sizeof(msg)] = {0};
	cr_assert_eq(gm_write(&big, G4 + 100, msg, sizeof(msg)), 0);
	cr_expect_str_eq((char *)big.base + HOLE + 100, msg, "high gpa lands after low RAM");
	cr_assert_eq(gm_read(&big, G4 + 100, back, sizeof(back)), 0);
	cr_expect_str_eq(back, msg);

	cr_expect_eq(gm_write(&big, HOLE - 4, msg, sizeof(msg)), -EFAULT);
	cr_expect_eq(gm_read(&big, HOLE - 4, back, sizeof(back)), -EFAULT);
	cr_expect_eq(gm_read(&big, UINT64_MAX - 1, back, 4), -EFAULT);
	cr_expect_eq(gm_write(&big, HOLE + 4, msg, 0), -EFAULT, "len 0 still checks the address");
	cr_expect_eq(gm_write(&big, 4, msg, 0), 0);
}

/* ----------------------------------------------------------------- e820 */

static void layout_gm(struct guest_mem *gm, uint64_t size)
{
	memset(gm, 0, sizeof(*gm));
	int n = gm_layout(size, gm->regions);
	cr_assert_gt(n, 0);
	gm->nr_regions = (unsigned)n;
	gm->ram_size = size;
}

static void expect_entry(const struct e820_entry *e, uint64_t start, uint64_t end, uint32_t type)
{
	cr_expect_eq(e->addr, start, "entry start 0x%llx, want 0x%llx", (unsigned long long)e->addr,
	             (unsigned long long)start);
	cr_expect_eq(e->size, end - start, "entry at 0x%llx: size 0x%llx, want 0x%llx",
	             (unsigned long long)start, (unsigned long long)e->size,
	             (unsigned long long)(end - start));
	cr_expect_eq(e->type, type);
}

Test(e820, below_the_hole)
{
	uint64_t sizes[] = {MIB(2), MIB(128), HOLE - GM_PAGE_SIZE, HOLE};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct guest_mem gm;
		struct e820_entry map[8];
		layout_gm(&gm, sizes[i]);
		cr_assert_eq(gm_e820(&gm, map, 8), 3, "size 0x%llx", (unsigned long long)sizes[i]);
		expect_entry(&map[0], 0, GM_EBDA_START, E820_RAM);
		expect_entry(&map[1], GM_EBDA_START, GM_HIMEM_START, E820_RESERVED);
		expect_entry(&map[2], GM_HIMEM_START, sizes[i], E820_RAM);
	}
}

Test(e820, above_the_hole)
{
	uint64_t sizes[] = {HOLE + GM_PAGE_SIZE, GIB(3) + MIB(512), GIB(8)};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct guest_mem gm;
		struct e820_entry map[8];
		layout_gm(&gm, sizes[i]);
		cr_assert_eq(gm_e820(&gm, map, 8), 4, "size 0x%llx", (unsigned long long)sizes[i]);
		expect_entry(&map[0], 0, GM_EBDA_START, E820_RAM);
		expect_entry(&map[1], GM_EBDA_START, GM_HIMEM_START, E820_RESERVED);
		expect_entry(&map[2], GM_HIMEM_START, HOLE, E820_RAM);
		expect_entry(&map[3], G4, G4 + sizes[i] - HOLE, E820_RAM);
	}
}

Test(e820, tiny_layouts_leave_out_empty_entries)
{
	struct guest_mem gm;
	struct e820_entry map[8];

	layout_gm(&gm, MIB(1)); /* RAM ends where high memory would start */
	cr_assert_eq(gm_e820(&gm, map, 8), 2);
	expect_entry(&map[0], 0, GM_EBDA_START, E820_RAM);
	expect_entry(&map[1], GM_EBDA_START, GM_HIMEM_START, E820_RESERVED);

	layout_gm(&gm, 0x9f000); /* below the EBDA */
	cr_assert_eq(gm_e820(&gm, map, 8), 2);
	expect_entry(&map[0], 0, 0x9f000, E820_RAM);
	expect_entry(&map[1], GM_EBDA_START, GM_HIMEM_START, E820_RESERVED);

	layout_gm(&gm, MIB(1) + GM_PAGE_SIZE);
	cr_assert_eq(gm_e820(&gm, map, 8), 3);
	expect_entry(&map[2], GM_HIMEM_START, GM_HIMEM_START + GM_PAGE_SIZE, E820_RAM);
}

Test(e820, too_small_a_table_writes_nothing)
{
	struct guest_mem gm;
	struct e820_entry map[4];
	memset(map, 0xa5, sizeof(map));
	layout_gm(&gm, GIB(8));
	cr_expect_eq(gm_e820(&gm, map, 3), -ENOSPC);
	cr_expect_eq(gm_e820(&gm, map, 0), -ENOSPC);
	for (size_t i = 0; i < sizeof(map); i++)
		cr_assert_eq(((uint8_t *)map)[i], 0xa5, "byte %zu written", i);
	cr_expect_eq(gm_e820(&gm, map, 4), 4);

	struct guest_mem empty = {0};
	cr_expect_eq(gm_e820(&empty, map, 4), -EINVAL);
}

Test(e820, matches_a_real_gm)
{
	struct guest_mem gm;
	struct errbuf e = {0};
	struct e820_entry map[4];
	cr_assert_eq(gm_init(&gm, MIB(64), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(gm_e820(&gm, map, 4), 3);
	expect_entry(&map[2], GM_HIMEM_START, MIB(64), E820_RAM);
	cr_expect_eq(sizeof(struct e820_entry), 20, "the packed layout the boot protocol uses");
	gm_destroy(&gm);
}

/* -------------------------------------------------------------- gm_init */

Test(init, rejects_bad_sizes_with_messages)
{
	struct guest_mem gm;
	struct errbuf e = {0};

	cr_expect_eq(gm_init(&gm, 0, GM_BACKING_ANON, NULL, &e), -EINVAL);
	cr_expect(strstr(e.msg, "must be > 0"), "msg: %s", e.msg);
	cr_expect_eq(gm_init(&gm, MIB(2) + 1, GM_BACKING_ANON, NULL, &e), -EINVAL);
	cr_expect(strstr(e.msg, "not a multiple of 4 KiB"), "msg: %s", e.msg);
	cr_expect_eq(gm_init(&gm, MIB(1), GM_BACKING_ANON, NULL, &e), -EINVAL);
	cr_expect(strstr(e.msg, "minimum of 2048 KiB"), "msg: %s", e.msg);
	cr_expect_eq(gm_init(&gm, ALIGN_DOWN(UINT64_MAX, GM_PAGE_SIZE), GM_BACKING_ANON, NULL, &e),
	             -EINVAL);
	cr_expect(strstr(e.msg, "does not fit"), "msg: %s", e.msg);
	cr_expect_eq(gm_init(&gm, MIB(2), (enum gm_backing)7, NULL, &e), -EINVAL);
	cr_expect(strstr(e.msg, "backing"), "msg: %s", e.msg);
	cr_expect_eq(gm_init(&gm, MIB(2), GM_BACKING_ANON, NULL, NULL), 0, "NULL errbuf is fine");
	gm_destroy(&gm);
}

Test(init, oversize_is_refused_against_host_memory)
{
	struct guest_mem gm;
	struct errbuf e = {0};
	uint64_t size = MIB(1) << 20; /* 1 TiB */
	cr_expect_eq(gm_init(&gm, size, GM_BACKING_ANON, NULL, &e), -ENOMEM);
	cr_expect(strstr(e.msg, "mem_size_mib 1048576 exceeds host memory ("), "msg: %s", e.msg);
	cr_expect(strstr(e.msg, " MiB)"), "msg: %s", e.msg);
	cr_expect_null(gm.base);
	cr_expect_eq(gm.fd, -1);
	gm_destroy(&gm); /* a failed gm is safe to destroy */

	cr_expect_eq(gm_init(&gm, size, GM_BACKING_MEMFD, NULL, &e), -ENOMEM);
	cr_expect(strstr(e.msg, "exceeds host memory"), "msg: %s", e.msg);
}

Test(init, anon_does_not_touch_pages)
{
	struct guest_mem gm;
	struct errbuf e = {0};
	uint64_t size = GIB(1);
	cr_assert_eq(gm_init(&gm, size, GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	cr_expect_eq(gm.fd, -1);
	cr_expect_eq(gm.ram_size, size);
	cr_expect_eq(gm.regions[0].hva, gm.base);

	size_t pages = size / GM_PAGE_SIZE;
	unsigned char *vec = malloc(pages);
	cr_assert_eq(mincore(gm.base, size, vec), 0);
	size_t resident = 0;
	for (size_t i = 0; i < pages; i++)
		resident += vec[i] & 1;
	cr_expect_eq(resident, 0, "%zu pages resident after gm_init", resident);
	free(vec);
	gm_destroy(&gm);
	cr_expect_null(gm.base);
}

Test(init, destroy_of_a_zeroed_gm_leaves_fd_0_alone)
{
	struct guest_mem gm;
	memset(&gm, 0, sizeof(gm));
	int before = fcntl(0, F_GETFD);
	gm_destroy(&gm);
	gm_destroy(&gm);
	cr_expect_eq(fcntl(0, F_GETFD), before);
}

static char tmpdir[64];

static void tmp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kiln-test-memXXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", tmpdir);
}

TestSuite(backing, .init = tmp_setup, .fini = tmp_teardown);

Test(backing, file_has_the_size_and_sees_writes)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/ram", tmpdir);
	/* old contents are discarded */
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "old!", 4), 4);
	close(fd);

	struct guest_mem gm;
	struct errbuf e = {0};
	uint64_t size = GIB(3) + MIB(4); /* sparse, with a high region */
	cr_assert_eq(gm_init(&gm, size, GM_BACKING_FILE, path, &e), 0, "%s", e.msg);
	cr_expect_geq(gm.fd, 0);

	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq((uint64_t)st.st_size, size);
	cr_expect_eq(st.st_mode & 0777, 0600);

	cr_assert_eq(gm_write(&gm, 0x1000, "hello", 5), 0);
	cr_assert_eq(gm_write(&gm, G4 + 0x20, "high", 4), 0);

	char buf[8] = {0};
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_expect_eq(pread(fd, buf, 4, 0), 4);
	cr_expect_eq(memcmp(buf, "\0\0\0\0", 4), 0, "the file was truncated");
	cr_expect_eq(pread(fd, buf, 5, 0x1000), 5);
	cr_expect_eq(memcmp(buf, "hello", 5), 0);
	cr_expect_eq(pread(fd, buf, 4, (off_t)(HOLE + 0x20)), 4);
	cr_expect_eq(memcmp(buf, "high", 4), 0, "gpa 4 GiB is file offset 3 GiB");
	close(fd);
	gm_destroy(&gm);
}

Test(backing, file_errors_name_the_path)
{
	struct guest_mem gm;
	struct errbuf e = {0};
	cr_expect_eq(gm_init(&gm, MIB(2), GM_BACKING_FILE, NULL, &e), -EINVAL);
	cr_expect(strstr(e.msg, "needs a path"), "msg: %s", e.msg);
	cr_expect_eq(gm_init(&gm, MIB(2), GM_BACKING_FILE, "", &e), -EINVAL);

	char path[128];
	snprintf(path, sizeof(path), "%s/no/such/dir/ram", tmpdir);
	cr_expect_eq(gm_init(&gm, MIB(2), GM_BACKING_FILE, path, &e), -ENOENT);
	cr_expect(strstr(e.msg, path), "msg: %s", e.msg);
	cr_expect(strstr(e.msg, "No such file"), "msg: %s", e.msg);
	cr_expect_eq(gm.fd, -1);

	/* far more than the filesystem has free */
	snprintf(path, sizeof(path), "%s/huge", tmpdir);
	cr_expect_eq(gm_init(&gm, MIB(1) << 30, GM_BACKING_FILE, path, &e), -ENOSPC);
	cr_expect(strstr(e.msg, "exceeds the free space"), "msg: %s", e.msg);
	cr_expect_eq(gm.fd, -1, "the fd was closed on failure");
}

Test(backing, memfd_is_shared_and_sized)
{
	struct guest_mem gm;
	struct errbuf e = {0};
	cr_assert_eq(gm_init(&gm, MIB(16), GM_BACKING_MEMFD, NULL, &e), 0, "%s", e.msg);
	cr_assert_geq(gm.fd, 0);
	cr_expect_eq(gm.backing, GM_BACKING_MEMFD);

	struct stat st;
	cr_assert_eq(fstat(gm.fd, &st), 0);
	cr_expect_eq((uint64_t)st.st_size, MIB(16));
	cr_expect(fcntl(gm.fd, F_GETFD) & FD_CLOEXEC);

	char link[64], target[128] = {0};
	snprintf(link, sizeof(link), "/proc/self/fd/%d", gm.fd);
	cr_assert_gt(readlink(link, target, sizeof(target) - 1), 0);
	cr_expect(strstr(target, "memfd:kiln-guest-ram"), "fd is %s", target);

	cr_assert_eq(gm_write(&gm, MIB(16) - 3, "end", 3), 0);
	char buf[3];
	cr_expect_eq(pread(gm.fd, buf, 3, (off_t)(MIB(16) - 3)), 3);
	cr_expect_eq(memcmp(buf, "end", 3), 0, "writes are visible through the fd");
	gm_destroy(&gm);
	cr_expect_eq(gm.fd, -1);
}

/* ---------------------------------------------------------- gm_register */

Test(kvm, register_slots_and_dirty_logging)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		cr_skip_test("/dev/kvm: %s", strerror(errno));
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	cr_assert_geq(vm, 0, "KVM_CREATE_VM: %s", strerror(errno));

	struct guest_mem gm;
	struct errbuf e = {0};
	cr_assert_eq(gm_init(&gm, GIB(3) + MIB(2), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	cr_expect_eq(gm_register(&gm, -1, false), -EINVAL);
	cr_expect_eq(gm_register(&gm, kvm, false), -EINVAL, "/dev/kvm is not a VM fd");

	cr_assert_eq(gm_register(&gm, vm, true), 0);
	/* KVM_GET_DIRTY_LOG only works on slots that log: both must */
	uint64_t *bitmap = calloc(HOLE / GM_PAGE_SIZE / 64, sizeof(uint64_t));
	for (unsigned slot = 0; slot < 2; slot++) {
		struct kvm_dirty_log log = {.slot = slot, .dirty_bitmap = bitmap};
		cr_expect_eq(ioctl(vm, KVM_GET_DIRTY_LOG, &log), 0, "slot %u: %s", slot,
		             strerror(errno));
	}
	/* registering again turns logging off on the same slots */
	cr_assert_eq(gm_register(&gm, vm, false), 0);
	struct kvm_dirty_log log = {.slot = 1, .dirty_bitmap = bitmap};
	cr_expect_eq(ioctl(vm, KVM_GET_DIRTY_LOG, &log), -1);
	cr_expect_eq(errno, ENOENT);

	free(bitmap);
	close(vm);
	close(kvm);
	gm_destroy(&gm);
}

Test(backing, snapshot_file_is_copy_on_write_and_size_checked)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/mem", tmpdir);
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)MIB(4)), 0);
	cr_assert_eq(pwrite(fd, "saved", 5, 0x3000), 5);
	close(fd);

	struct guest_mem gm;
	struct errbuf e = {0};
	cr_assert_eq(gm_init(&gm, MIB(4), GM_BACKING_SNAPSHOT, path, &e), 0, "%s", e.msg);
	char buf[8] = {0};
	cr_assert_eq(gm_read(&gm, 0x3000, buf, 5), 0);
	cr_expect_eq(memcmp(buf, "saved", 5), 0, "the guest sees the file's bytes");
	cr_assert_eq(gm_write(&gm, 0x3000, "WRITE", 5), 0);
	gm_destroy(&gm);

	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_expect_eq(pread(fd, buf, 5, 0x3000), 5);
	close(fd);
	cr_expect_eq(memcmp(buf, "saved", 5), 0, "the guest's writes must not reach the file");

	cr_expect_eq(gm_init(&gm, MIB(8), GM_BACKING_SNAPSHOT, path, &e), -EINVAL);
	cr_expect(strstr(e.msg, "is 4194304 bytes"), "msg: %s", e.msg);
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	cr_expect_eq(gm_init(&gm, MIB(4), GM_BACKING_SNAPSHOT, path, &e), -ENOENT);
	cr_expect(strstr(e.msg, path), "msg: %s", e.msg);
}

/* ------------------------------------------------------ untouched pages */

static bool bit(const uint64_t *map, uint64_t p)
{
	return map[p / 64] >> (p % 64) & 1;
}

/* a page written or read is touched; every other page of fresh anonymous memory is not */
Test(untouched, written_and_read_pages_are_touched)
{
	struct guest_mem gm;
	struct errbuf e;
	cr_assert_eq(gm_init(&gm, MIB(8), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	uint64_t *map = calloc(gm_dirty_bitmap_words(&gm), sizeof(uint64_t));
	cr_assert_eq(gm_untouched_pages(&gm, map), 0);
	for (uint64_t p = 0; p < MIB(8) / GM_PAGE_SIZE; p++)
		cr_assert(bit(map, p), "fresh page %llu counts as touched", (unsigned long long)p);

	gm.base[5 * GM_PAGE_SIZE] = 1;
	gm.base[100 * GM_PAGE_SIZE + 4095] = 2;
	volatile uint8_t r = gm.base[7 * GM_PAGE_SIZE]; /* a read maps the zero page */
	(void)r;
	memset(map, 0, gm_dirty_bitmap_words(&gm) * sizeof(uint64_t));
	cr_assert_eq(gm_untouched_pages(&gm, map), 0);
	cr_expect(!bit(map, 5) && !bit(map, 100) && !bit(map, 7));
	cr_expect(bit(map, 0) && bit(map, 6) && bit(map, 101) &&
	          bit(map, MIB(8) / GM_PAGE_SIZE - 1));
	/* pages given back (a balloon, MADV_DONTNEED) read as zero: untouched again */
	cr_assert_eq(madvise(gm.base + 5 * GM_PAGE_SIZE, GM_PAGE_SIZE, MADV_DONTNEED), 0);
	memset(map, 0, gm_dirty_bitmap_words(&gm) * sizeof(uint64_t));
	cr_assert_eq(gm_untouched_pages(&gm, map), 0);
	cr_expect(bit(map, 5) && !bit(map, 100));
	free(map);
	gm_destroy(&gm);
}

/* a memfd's page may hold data without being mapped here: not answered */
Test(untouched, only_for_anonymous_memory)
{
	struct guest_mem gm;
	struct errbuf e;
	cr_assert_eq(gm_init(&gm, MIB(4), GM_BACKING_MEMFD, NULL, &e), 0, "%s", e.msg);
	uint64_t map[16] = {0};
	cr_expect_eq(gm_untouched_pages(&gm, map), -ENOTSUP);
	gm_destroy(&gm);
}
