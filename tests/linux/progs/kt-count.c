// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-count.c: kt-count LIMIT MS
 *
 * Counts in userspace: first "kt-count: clocksource NAME" (the kernel's
 * current clocksource), then "kt-count: N after D ms" for N = 1 .. LIMIT,
 * one every MS milliseconds of the guest's monotonic clock, where D is how
 * much of that clock passed since the previous line (or the start); then
 * exits 0 (2 for bad arguments). A snapshot test restores a guest in the
 * middle and checks that the count goes on from where it was; a pause test
 * checks that D does not take in the time the VM was paused.
 */
#include "kt.h"

#include <errno.h>

int main(int argc, char **argv)
{
	char *end;
	unsigned long limit = 0, ms = 0;

	errno = 0;
	if (argc == 3) {
		limit = strtoul(argv[1], &end, 10);
		if (!*end)
			ms = strtoul(argv[2], &end, 10);
	}
	if (argc != 3 || errno || *end || !limit || !ms) {
		kt_say("usage: kt-count LIMIT MS");
		return 2;
	}
	char cs[64] = "unknown";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (f) {
		if (fscanf(f, "%63s", cs) != 1)
			strcpy(cs, "unreadable");
		fclose(f);
	}
	kt_say("kt-count: clocksource %s", cs);
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	uint64_t last = kt_now_ms();
	for (unsigned long n = 1; n <= limit; n++) {
		kt_tick(&next, ms);
		uint64_t now = kt_now_ms();
		kt_say("kt-count: %lu after %llu ms", n, (unsigned long long)(now - last));
		last = now;
	}
	return 0;
}
