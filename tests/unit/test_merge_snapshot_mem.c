// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_merge_snapshot_mem.c: scripts/merge-snapshot-mem.py, run
 * through system() on sparse files made here the way snap_mem_write() makes
 * them: a base with holes, and a diff of the same size holding exactly some
 * pages (one of them all zeros, which must still replace the base's page).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE   4096
#define NPAGES 16

static char dir[64], base[128], diff[128], out[128], log_path[128];

static void setup(void)
{
	strcpy(dir, "/tmp/kiln-merge-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(base, sizeof(base), "%s/base.mem", dir);
	snprintf(diff, sizeof(diff), "%s/diff.mem", dir);
	snprintf(out, sizeof(out), "%s/out.mem", dir);
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(merge, .init = setup, .fini = teardown, .timeout = 60);

/* a sparse file of npages pages: page i holds `fill(i)` where fill >= 0, else a hole */
static void make_file(const char *path, int npages, int (*fill)(int))
{
	uint8_t page[PAGE];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)npages * PAGE), 0);
	for (int i = 0; i < npages; i++) {
		if (fill(i) < 0)
			continue;
		memset(page, fill(i), PAGE);
		cr_assert_eq(pwrite(fd, page, PAGE, (off_t)i * PAGE), PAGE);
	}
	close(fd);
}

/* base: page i is 0x10 + i, pages 4 and 5 are holes */
static int base_fill(int i)
{
	return i == 4 || i == 5 ? -1 : 0x10 + i;
}

/* diff: pages 2, 5 and 9 dirtied (9 back to zeros), the rest holes */
static int diff_fill(int i)
{
	return i == 2 ? 0xa2 : i == 5 ? 0xa5 : i == 9 ? 0 : -1;
}

/* a diff of a snapshot taken with no page written since the last one */
static int no_page(int i)
{
	(void)i;
	return -1;
}

/* base_fill with diff_fill laid over it (holes read as zeros) */
static int merged_fill(int i)
{
	int d = diff_fill(i), b = base_fill(i);
	return d >= 0 ? d : b >= 0 ? b : 0;
}

static void expect_pages(const char *path, int (*fill)(int))
{
	uint8_t page[PAGE];
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0, "%s is missing", path);
	for (int i = 0; i < NPAGES; i++) {
		int want = fill(i) < 0 ? 0 : fill(i);
		cr_assert_eq(pread(fd, page, PAGE, (off_t)i * PAGE), PAGE);
		for (int j = 0; j < PAGE; j++)
			cr_assert_eq(page[j], want, "%s page %d byte %d: %#x, wanted %#x", path, i,
			             j, page[j], want);
	}
	close(fd);
}

/* runs the script on BASE DIFF [OUT] (NULLs left out); its exit status, its output in log_path */
static int run(const char *a, const char *b, const char *c)
{
	const char *root = getenv("KILN_SOURCE_ROOT");
	char cmd[1024];
	int st;

	cr_assert_not_null(root, "KILN_SOURCE_ROOT is not set (run through meson test)");
	snprintf(cmd, sizeof(cmd), "python3 %s/scripts/merge-snapshot-mem.py %s %s %s >%s 2>&1",
	         root, a, b ? b : "", c ? c : "", log_path);
	st = system(cmd);
	cr_assert(WIFEXITED(st), "the script did not exit normally");
	return WEXITSTATUS(st);
}

static void expect_log(const char *text)
{
	char buf[2048] = "";
	FILE *f = fopen(log_path, "r");

	cr_assert_not_null(f);
	buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
	fclose(f);
	cr_assert(strstr(buf, text), "the output lacks \"%s\":\n%s", text, buf);
}

Test(merge, into_a_copy)
{
	struct stat st;

	make_file(base, NPAGES, base_fill);
	make_file(diff, NPAGES, diff_fill);
	cr_assert_eq(run(base, diff, out), 0);
	expect_log("3 extent(s), 12288 bytes");
	expect_pages(out, merged_fill);
	expect_pages(base, base_fill); /* untouched */
	/* base's hole at page 4 stays a hole in the copy */
	cr_assert_eq(stat(out, &st), 0);
	cr_assert_lt(st.st_blocks * 512, (off_t)NPAGES * PAGE, "the copy is not sparse");
	cr_assert_eq(st.st_mode & 0777, 0644);
}

Test(merge, in_place)
{
	make_file(base, NPAGES, base_fill);
	make_file(diff, NPAGES, diff_fill);
	cr_assert_eq(run(base, diff, NULL), 0);
	expect_pages(base, merged_fill);
	/* OUT naming BASE is in place too */
	make_file(base, NPAGES, base_fill);
	cr_assert_eq(run(base, diff, base), 0);
	expect_pages(base, merged_fill);
}

Test(merge, an_empty_diff_changes_nothing)
{
	make_file(base, NPAGES, base_fill);
	make_file(diff, NPAGES, no_page);
	cr_assert_eq(run(base, diff, out), 0);
	expect_log("0 extent(s), 0 bytes");
	expect_pages(out, base_fill);
}

Test(merge, sizes_must_match)
{
	make_file(base, NPAGES, base_fill);
	make_file(diff, NPAGES - 1, diff_fill);
	cr_assert_eq(run(base, diff, out), 1);
	expect_log("has 65536 bytes but DIFF");
	cr_assert_neq(access(out, F_OK), 0, "OUT was written after an error");
	expect_pages(base, base_fill);
}

Test(merge, bad_arguments)
{
	char missing[160];

	make_file(base, NPAGES, base_fill);
	make_file(diff, NPAGES, diff_fill);
	snprintf(missing, sizeof(missing), "%s/nope.mem", dir);
	cr_assert_eq(run(base, missing, out), 1);
	expect_log("No such file or directory");
	cr_assert_eq(run(dir, diff, out), 1);
	expect_log("is not a regular file");
	cr_assert_eq(run(base, base, out), 1);
	expect_log("the same file");
	cr_assert_eq(run(base, diff, diff), 1);
	expect_log("OUT must not be DIFF");
	cr_assert_eq(run(base, NULL, NULL), 2); /* argparse: DIFF missing */
	expect_pages(base, base_fill);
	expect_pages(diff, diff_fill);
}
