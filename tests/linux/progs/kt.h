/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/linux/progs/kt.h: what the guest programs of kiln's Linux tests
 * share, header only. tests/linux/build.py compiles each C file of
 * progs/ on its own (gcc -static) into /bin of the test image; the host
 * side of a test includes this header too, so both sides compute the same
 * checksum.
 *
 * Output: kt_say() writes each line to /dev/kmsg, where it becomes one
 * printk record and so reaches kiln's stdout through the kernel's console
 * whatever state the serial driver is in. With KT_SAY=stdout in the
 * environment (a program tried on the host), or when /dev/kmsg cannot be
 * opened, the line goes to stdout instead.
 */
#ifndef KILN_KT_H
#define KILN_KT_H

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* FNV-1a, 64 bits: kt_fnv1a(KT_FNV_INIT, data, len), chained over pieces */
#define KT_FNV_INIT 0xcbf29ce484222325ULL

static inline uint64_t kt_fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* the next value of a xorshift64 generator (state must not be 0) */
static inline uint64_t kt_xorshift(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/*
 * One line (no newline in fmt; one is added) to /dev/kmsg or stdout (see
 * the top). Each call is a single write, so a line is never split.
 */
static inline __attribute__((format(printf, 1, 2))) void kt_say(const char *fmt, ...)
{
	static int fd = -2;
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (fd == -2) {
		const char *to = getenv("KT_SAY");
		fd = to && !strcmp(to, "stdout") ? -1 : open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	}
	if (write(fd >= 0 ? fd : STDOUT_FILENO, line, (size_t)n) < 0 && fd >= 0)
		(void)!write(STDOUT_FILENO, line, (size_t)n);
}

#endif
