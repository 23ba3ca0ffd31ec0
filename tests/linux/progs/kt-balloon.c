// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-balloon.c: what a Linux guest's memory does while
 * the host drives its virtio-balloon (tests/integration/test_linux_balloon.c).
 *
 *   kt-balloon touch SECS
 *     writes every page of all the memory it can take (MemAvailable less
 *     a margin), says
 *       kt-balloon: touched N MiB
 *     gives it back to the kernel (so the pages are free in the guest but
 *     held by the host), then for SECS seconds says every 250 ms
 *       kt-balloon: mem total=T free=F avail=A
 *     (/proc/meminfo, KiB), and exits 0.
 *   kt-balloon oom TAKEN_MIB ALLOC_MIB
 *     waits (up to 10 minutes) until MemFree is TAKEN_MIB lower than when
 *     it started (the host inflated the balloon), says
 *       kt-balloon: balloon took N MiB, free=F
 *     then allocates and writes ALLOC_MIB one MiB at a time, more than is
 *     free, so that the balloon driver must give pages back (deflate on
 *     OOM), and says
 *       kt-balloon: allocated ALLOC_MIB MiB
 *     holds it for 10 s more and exits 0 (or is killed by the OOM killer,
 *     which the test sees).
 * Bad arguments: exit status 2.
 */
#include "kt.h"

#include <sys/mman.h>

#define MIB        (1024UL * 1024)
#define MARGIN_MIB 24 /* left to the kernel when touching */

/* a /proc/meminfo field in KiB, 0 when missing */
static unsigned long meminfo(const char *field)
{
	char line[128];
	unsigned long kib = 0;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			kib = strtoul(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

static void say_mem(void)
{
	kt_say("kt-balloon: mem total=%lu free=%lu avail=%lu", meminfo("MemTotal"),
	       meminfo("MemFree"), meminfo("MemAvailable"));
}

/* writes one byte in every page of n bytes at p */
static void touch(volatile char *p, size_t n)
{
	for (size_t off = 0; off < n; off += 4096)
		p[off] = (char)(off >> 12);
}

static int do_touch(unsigned long secs)
{
	unsigned long avail = meminfo("MemAvailable") / 1024;
	size_t mib = avail > MARGIN_MIB ? avail - MARGIN_MIB : 0, n = mib * MIB;
	char *p = mib ? mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
	              : MAP_FAILED;

	if (p == MAP_FAILED) {
		kt_say("kt-balloon: cannot map %zu MiB: %s", mib, strerror(errno));
		return 1;
	}
	touch(p, n);
	kt_say("kt-balloon: touched %zu MiB", mib);
	munmap(p, n);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (unsigned long i = 0; i < secs * 4; i++) {
		say_mem();
		kt_tick(&next, 250);
	}
	return 0;
}

static int do_oom(unsigned long taken_mib, unsigned long alloc_mib)
{
	unsigned long start = meminfo("MemFree"), now = start;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	say_mem();
	for (int i = 0; i < 2400 && now + taken_mib * 1024 > start; i++) {
		kt_tick(&next, 250);
		now = meminfo("MemFree");
	}
	if (now + taken_mib * 1024 > start) {
		kt_say("kt-balloon: the balloon never took %lu MiB (free %lu of %lu KiB)",
		       taken_mib, now, start);
		return 1;
	}
	kt_say("kt-balloon: balloon took %lu MiB, free=%lu", (start - now) / 1024, now);
	for (unsigned long i = 0; i < alloc_mib; i++) {
		char *p =
		        mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			kt_say("kt-balloon: mmap after %lu MiB: %s", i, strerror(errno));
			return 1;
		}
		touch(p, MIB);
	}
	kt_say("kt-balloon: allocated %lu MiB", alloc_mib);
	say_mem();
	clock_gettime(CLOCK_MONOTONIC, &next);
	kt_tick(&next, 10000); /* holding it while the host reads the balloon's numbers */
	return 0;
}

int main(int argc, char **argv)
{
	char *end1 = NULL, *end2 = NULL;
	unsigned long a = argc > 2 ? strtoul(argv[2], &end1, 10) : 0;
	unsigned long b = argc > 3 ? strtoul(argv[3], &end2, 10) : 0;

	if (argc == 3 && !strcmp(argv[1], "touch") && !*end1 && a)
		return do_touch(a);
	if (argc == 4 && !strcmp(argv[1], "oom") && !*end1 && !*end2 && a && b)
		return do_oom(a, b);
	kt_say("usage: kt-balloon touch SECS | kt-balloon oom TAKEN_MIB ALLOC_MIB");
	return 2;
}
