// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk end to end: kiln boots the `blk` test guest (tests/guests/
 * blk.c) with drives from a config file; the guest's driver writes a
 * pattern, flushes, reads back and verifies, and this test then checks the
 * backing file byte by byte against the same pattern computed here. Also:
 * reads of a pattern the host wrote, WRITE_ZEROES / DISCARD, a read-only
 * drive, GET_ID, two drives, both io engines, and PATCH /drives on a
 * running VM through the API.
 *
 * The guest's pattern (tests/guests/blk.c): the 8-byte little-endian word
 * i (0..63) of sector s is mix64(seed * 0x9e3779b97f4a7c15 + s * 64 + i),
 * mix64 being the splitmix64 finaliser.
 */
#include "api_test.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR  512u
#define EXIT_OK 0

TestSuite(blk, .init = api_test_init, .fini = api_test_cleanup, .timeout = 240);

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* sector s of the guest's pattern for `seed` */
static void pattern_sector(uint64_t seed, uint64_t s, uint8_t out[SECTOR])
{
	for (unsigned i = 0; i < 64; i++) {
		uint64_t w = mix64(seed * 0x9e3779b97f4a7c15ull + s * 64 + i);
		for (unsigned b = 0; b < 8; b++)
			out[i * 8 + b] = (uint8_t)(w >> (8 * b));
	}
}

/* a temporary disk of `sectors` sectors, every byte `fill`; kept in tmp[slot] */
static const char *make_disk(unsigned slot, uint64_t sectors, int fill)
{
	char path[] = "/tmp/kiln-it-blk-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	uint8_t buf[SECTOR];
	memset(buf, fill, sizeof(buf));
	for (uint64_t s = 0; s < sectors; s++)
		cr_assert_eq(pwrite(fd, buf, SECTOR, (off_t)(s * SECTOR)), SECTOR);
	close(fd);
	tmp[slot] = strdup(path);
	return tmp[slot];
}

/* writes the pattern over [first, first + count) */
static void write_pattern(const char *path, uint64_t seed, uint64_t first, uint64_t count)
{
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	uint8_t buf[SECTOR];
	for (uint64_t s = first; s < first + count; s++) {
		pattern_sector(seed, s, buf);
		cr_assert_eq(pwrite(fd, buf, SECTOR, (off_t)(s * SECTOR)), SECTOR);
	}
	close(fd);
}

/* what a disk should hold: the pattern over [first, first + count), zeroes
 * over the `zeroed` sectors after that, `fill` everywhere else */
struct expect_disk {
	uint64_t sectors; /* its size */
	uint64_t seed, first, count, zeroed;
	int fill;
};

/* the file byte by byte over sectors [from, to) (to 0: to the end) */
static void check_disk(const char *path, const struct expect_disk *x, uint64_t from, uint64_t to)
{
	uint64_t sectors = x->sectors, first = x->first, count = x->count, zeroed = x->zeroed;
	int fill = x->fill;
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, sectors * SECTOR, "the file kept its size");
	uint8_t got[SECTOR], want[SECTOR];
	for (uint64_t s = from; s < (to ? to : sectors); s++) {
		cr_assert_eq(pread(fd, got, SECTOR, (off_t)(s * SECTOR)), SECTOR);
		if (s >= first && s < first + count)
			pattern_sector(x->seed, s, want);
		else
			memset(want, s >= first + count && s < first + count + zeroed ? 0 : fill,
			       SECTOR);
		for (unsigned i = 0; i < SECTOR; i++)
			cr_assert_eq(got[i], want[i],
			             "%s: sector %llu byte %u is 0x%02x, not 0x%02x", path,
			             (unsigned long long)s, i, got[i], want[i]);
	}
	close(fd);
}

static char *drive_json(const char *id, const char *path, bool ro, const char *cache,
                        const char *engine)
{
	return kh_fmt("{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", \"is_root_device\": false,"
	              " \"is_read_only\": %s, \"cache_type\": \"%s\", \"io_engine\": \"%s\"}",
	              id, path, ro ? "true" : "false", cache, engine);
}

/* boots the blk guest with `drives` (a JSON array body) and `args`; expects a clean exit */
static const char *boot_blk(const char *drives, const char *args)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	                   "\"" KH_GUEST_ARGS " %s\"}, \"machine-config\": {\"vcpu_count\": 1, "
	                   "\"mem_size_mib\": 128}, \"drives\": [%s]}",
	                   kh_guest("blk"), args, drives);
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	int st = kh_wait_exit(&kp, 120000);
	cr_assert_eq(st, EXIT_OK, "kiln exited with %d; output:\n%s", st, kp.out);
	cr_assert(!strstr(kp.out, "FAILED") && !strstr(kp.out, "MISMATCH"), "%s", kp.out);
	return kp.out;
}

/* boots the blk guest with one drive "data" on `disk` */
static const char *boot_disk(const char *disk, bool ro, const char *cache, const char *engine,
                             const char *args)
{
	char *d = drive_json("data", disk, ro, cache, engine);
	const char *out = boot_blk(d, args);
	free(d);
	return out;
}

static void expect(const char *out, const char *needle)
{
	cr_assert(strstr(out, needle) != NULL, "missing \"%s\" in output:\n%s", needle, out);
}

/* "blk: id <Firecracker's id>": st_dev, st_rdev, st_ino in decimal, cut to 20 */
static void expect_id(const char *out, const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	char id[64], line[96];
	snprintf(id, sizeof(id), "%llu%llu%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_rdev, (unsigned long long)st.st_ino);
	id[20] = 0;
	snprintf(line, sizeof(line), "blk: id %s\n", id);
	expect(out, line);
}

static void write_verify(const char *cache, const char *engine)
{
	const char *disk = make_disk(0, 8192, 0xee);
	const char *out =
	        boot_disk(disk, false, cache, engine, "blk.start=100 blk.sectors=3000 blk.seed=7");
	expect(out, "blk: capacity 8192 sectors");
	expect(out, "blk: wrote 3000 sectors, verified ok");
	if (!strcmp(cache, "Unsafe"))
		expect(out, "blk: flush not offered");
	expect_id(out, disk);
	check_disk(disk, &(struct expect_disk){8192, 7, 100, 3000, 0, 0xee}, 0, 0);
}

Test(blk, guest_writes_flushes_reads_back_sync_writeback)
{
	write_verify("Writeback", "Sync");
}

Test(blk, guest_writes_flushes_reads_back_async_writeback)
{
	write_verify("Writeback", "Async");
}

Test(blk, guest_writes_reads_back_async_unsafe)
{
	write_verify("Unsafe", "Async");
}

Test(blk, guest_reads_what_the_host_wrote)
{
	const char *disk = make_disk(0, 4096, 0);
	write_pattern(disk, 11, 0, 4096);
	const char *out = boot_disk(disk, true, "Unsafe", "Async",
	                            "blk.mode=check blk.seed=11 blk.sectors=4096 blk.depth=32");
	expect(out, "blk: read 4096 sectors, verified ok");
	check_disk(disk, &(struct expect_disk){4096, 11, 0, 4096, 0, 0}, 0, 0);
}

Test(blk, write_zeroes_and_discard)
{
	const char *disk = make_disk(0, 4096, 0xee);
	const char *out = boot_disk(disk, false, "Writeback", "Sync",
	                            "blk.sectors=2048 blk.seed=3 blk.zero=1");
	expect(out, "blk: wrote 2048 sectors, verified ok");
	expect(out, "blk: write-zeroes 1024 sectors, read back zeroes ok");
	expect(out, "blk: discard 1024 sectors ok");
	/* the zeroed half reads zeroes, the discarded half is unspecified (not
	 * checked), the rest of the disk untouched */
	struct expect_disk x = {4096, 3, 0, 0, 1024, 0xee};
	check_disk(disk, &x, 0, 1024);
	check_disk(disk, &x, 2048, 0);
}

Test(blk, read_only_drive_refuses_writes)
{
	const char *disk = make_disk(0, 2048, 0x3c);
	const char *out = boot_disk(disk, true, "Writeback", "Sync", "blk.mode=ro");
	expect(out, ", read-only");
	expect(out, "blk: read-only: write refused with IOERR, ok");
	check_disk(disk, &(struct expect_disk){2048, 0, 0, 0, 0, 0x3c}, 0, 0);
}

Test(blk, second_drive)
{
	const char *a = make_disk(0, 2048, 0x11);
	const char *b = make_disk(1, 1024, 0x22);
	char *da = drive_json("first", a, false, "Unsafe", "Sync");
	char *db = drive_json("second", b, false, "Writeback", "Async");
	char *both = kh_fmt("%s, %s", da, db);
	const char *out = boot_blk(both, "blk.nth=1 blk.sectors=1024 blk.seed=5");
	free(da);
	free(db);
	free(both);
	expect(out, "blk: capacity 1024 sectors");
	expect(out, "blk: wrote 1024 sectors, verified ok");
	check_disk(b, &(struct expect_disk){1024, 5, 0, 1024, 0, 0x22}, 0, 0);
	check_disk(a, &(struct expect_disk){2048, 0, 0, 0, 0, 0x11}, 0, 0);
}

/* ---------------------------------------------------- PATCH /drives, live */

Test(blk, patch_drive_while_running)
{
	const char *disk = make_disk(0, 2048, 0);
	const char *next = make_disk(1, 4096, 0);
	start_kiln(&kp);
	char *body = kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"" KH_GUEST_ARGS
	                    " sleep=4000\"}",
	                    kh_guest("hello"));
	call_ok("PUT", "/boot-source", body);
	free(body);
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	char *d = drive_json("data", disk, false, "Writeback", "Async");
	call_fault("PATCH", "/drives/data", "{\"drive_id\": \"data\"}", 400, "");
	call_ok("PUT", "/drives/data", d);
	free(d);
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	cr_assert(kh_wait_for(&kp, "hello from the kiln test guest", 30000), "%s", kp.out);

	body = kh_fmt("{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}", next);
	call_ok("PATCH", "/drives/data", body);
	free(body);
	call_fault("PATCH", "/drives/data",
	           "{\"drive_id\": \"data\", \"path_on_host\": \"/nonexistent/disk\"}", 400,
	           "/nonexistent/disk");
	call_ok("PATCH", "/drives/data",
	        "{\"drive_id\": \"data\", \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, "
	        "\"refill_time\": 100}}}");
	json_t *cfg = call("GET", "/vm/config", NULL, 200);
	json_t *drive = json_array_get(json_object_get(cfg, "drives"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(drive, "path_on_host")), next);
	json_decref(cfg);
	cr_assert_eq(kh_wait_exit(&kp, 30000), EXIT_OK, "%s", kp.out);
}
