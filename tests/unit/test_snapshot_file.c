// SPDX-License-Identifier: Apache-2.0
/* Unit tests for daemon/snapshot_file.c: the state file and the memory file. */
#include "daemon/snapshot.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kiln-snapfile-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vm.snap", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(snapfile, .init = setup, .fini = teardown);

static void write_sample(void)
{
	struct state_writer w;
	struct snap_info i = {.arch = SNAP_ARCH_X86_64,
	                      .type = SNAP_DIFF,
	                      .mem_size = MIB(128),
	                      .nr_vcpus = 2,
	                      .created_unix_ms = 1234};
	struct errbuf e;
	snap_host_cpu_model(i.cpu_model, sizeof(i.cpu_model));
	snprintf(i.kiln_version, sizeof(i.kiln_version), "%s", KILN_VERSION);
	sw_init(&w);
	snap_info_write(&w, &i);
	sw_begin(&w, "extra", 7);
	sw_u64(&w, 42);
	sw_end(&w);
	cr_assert_eq(snap_file_write(path, &w, &e), 0, "%s", e.msg);
	sw_free(&w);
}

/* flips/cuts the file on disk */
static void patch_file(off_t at, uint8_t xor_with, off_t truncate_to)
{
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	if (xor_with) {
		uint8_t b;
		cr_assert_eq(pread(fd, &b, 1, at), 1);
		b ^= xor_with;
		cr_assert_eq(pwrite(fd, &b, 1, at), 1);
	}
	if (truncate_to >= 0)
		cr_assert_eq(ftruncate(fd, truncate_to), 0);
	close(fd);
}

Test(snapfile, round_trip)
{
	write_sample();
	uint8_t *body;
	size_t len;
	struct errbuf e;
	cr_assert_eq(snap_file_read(path, &body, &len, &e), 0, "%s", e.msg);

	struct state_reader r, s;
	char id[STATE_ID_MAX + 1];
	uint16_t ver;
	struct snap_info i;
	sr_init(&r, body, len);
	cr_assert_eq(sr_next(&r, id, &ver, &s), 1);
	cr_assert_str_eq(id, "snapshot");
	cr_assert_eq(snap_info_read(&s, ver, &i, &e), 0, "%s", e.msg);
	cr_expect_eq(i.type, SNAP_DIFF);
	cr_expect_eq(i.mem_size, MIB(128));
	cr_expect_eq(i.nr_vcpus, 2);
	cr_expect_eq(i.created_unix_ms, 1234);
	char host[80];
	snap_host_cpu_model(host, sizeof(host));
	cr_expect_str_eq(i.cpu_model, host);
	cr_assert_eq(sr_next(&r, id, &ver, &s), 1);
	cr_expect_str_eq(id, "extra");
	cr_expect_eq(sr_u64(&s), 42);
	cr_assert_eq(sr_next(&r, id, &ver, &s), 0);
	free(body);
	/* no temporary file is left next to it */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "test $(ls %s | wc -l) -eq 1", dir);
	cr_expect_eq(system(cmd), 0);
}

Test(snapfile, corrupted_byte_is_a_checksum_error)
{
	write_sample();
	patch_file(20, 0x40, -1);
	uint8_t *body;
	size_t len;
	struct errbuf e;
	cr_assert_eq(snap_file_read(path, &body, &len, &e), -EINVAL);
	cr_expect(strstr(e.msg, "checksum"), "%s", e.msg);
}

Test(snapfile, truncated_file_is_refused)
{
	write_sample();
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	patch_file(0, 0, st.st_size - 10);
	uint8_t *body;
	size_t len;
	struct errbuf e;
	cr_assert_eq(snap_file_read(path, &body, &len, &e), -EINVAL);
	cr_expect(strstr(e.msg, "corrupted or truncated"), "%s", e.msg);
	patch_file(0, 0, 5);
	cr_assert_eq(snap_file_read(path, &body, &len, &e), -EINVAL);
	cr_expect(strstr(e.msg, "not a kiln snapshot"), "%s", e.msg);
}

Test(snapfile, newer_format_version_is_refused)
{
	write_sample();
	patch_file(8, 0x02, -1); /* version 1 -> 3 */
	uint8_t *body;
	size_t len;
	struct errbuf e;
	cr_assert_eq(snap_file_read(path, &body, &len, &e), -EINVAL);
	cr_expect(strstr(e.msg, "format version 3"), "%s", e.msg);
}

Test(snapfile, missing_file_names_the_path)
{
	uint8_t *body;
	size_t len;
	struct errbuf e;
	cr_assert_eq(snap_file_read("/nonexistent/x.snap", &body, &len, &e), -ENOENT);
	cr_expect(strstr(e.msg, "/nonexistent/x.snap"), "%s", e.msg);
}

Test(snapfile, newer_info_section_is_refused)
{
	struct state_reader r;
	struct snap_info i;
	struct errbuf e;
	uint8_t payload[64] = {0};
	sr_init(&r, payload, sizeof(payload));
	cr_assert_eq(snap_info_read(&r, SNAP_INFO_VERSION + 1, &i, &e), -EINVAL);
	sr_init(&r, payload, 3);
	cr_assert_eq(snap_info_read(&r, SNAP_INFO_VERSION, &i, &e), -EINVAL);
	cr_expect(strstr(e.msg, "truncated"), "%s", e.msg);
}

static void file_equals_memory(const char *p, const struct guest_mem *gm)
{
	FILE *f = fopen(p, "rb");
	cr_assert(f);
	uint8_t *buf = malloc(gm->ram_size);
	cr_assert_eq(fread(buf, 1, gm->ram_size, f), gm->ram_size);
	fclose(f);
	cr_expect_eq(memcmp(buf, gm->base, gm->ram_size), 0);
	free(buf);
}

Test(snapfile, full_memory_is_exact_and_sparse)
{
	struct guest_mem gm;
	struct errbuf e;
	char mem[128];
	snprintf(mem, sizeof(mem), "%s/mem", dir);
	cr_assert_eq(gm_init(&gm, MIB(16), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	memset(gm.base + 0x5000, 0xab, 3 * GM_PAGE_SIZE);
	gm.base[MIB(16) - 1] = 7;
	cr_assert_eq(snap_mem_write(&gm, mem, NULL, &e), 0, "%s", e.msg);
	file_equals_memory(mem, &gm);
	struct stat st;
	cr_assert_eq(stat(mem, &st), 0);
	cr_expect_eq((uint64_t)st.st_size, MIB(16));
	cr_expect_lt((uint64_t)st.st_blocks * 512, MIB(1), "zero pages must stay holes");
	gm_destroy(&gm);
}

Test(snapfile, diff_memory_writes_exactly_the_dirty_pages)
{
	struct guest_mem gm;
	struct errbuf e;
	char mem[128];
	snprintf(mem, sizeof(mem), "%s/diff", dir);
	cr_assert_eq(gm_init(&gm, MIB(4), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	memset(gm.base, 0x11, MIB(4));
	uint64_t *dirty = calloc(gm_dirty_bitmap_words(&gm), sizeof(uint64_t));
	dirty[0] = (1ull << 3) | (1ull << 4);                  /* pages 3 and 4 */
	dirty[1] = 1ull << 63;                                 /* page 127 */
	memset(gm.base + 127 * GM_PAGE_SIZE, 0, GM_PAGE_SIZE); /* a dirty zero page */
	cr_assert_eq(snap_mem_write(&gm, mem, dirty, &e), 0, "%s", e.msg);

	int fd = open(mem, O_RDONLY);
	cr_assert_geq(fd, 0);
	uint8_t page[GM_PAGE_SIZE];
	for (uint64_t p = 0; p < 130; p++) {
		cr_assert_eq(pread(fd, page, sizeof(page), (off_t)(p * GM_PAGE_SIZE)),
		             (ssize_t)sizeof(page));
		uint8_t want = (p == 3 || p == 4) ? 0x11 : 0;
		cr_expect_eq(page[0], want, "page %llu", (unsigned long long)p);
	}
	/* the dirty zero page is data in the file, not a hole */
	cr_expect_eq(lseek(fd, 127 * GM_PAGE_SIZE, SEEK_DATA), 127 * GM_PAGE_SIZE);
	close(fd);
	free(dirty);
	gm_destroy(&gm);
}
