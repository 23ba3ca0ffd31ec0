// SPDX-License-Identifier: Apache-2.0
/*
 * Host unit tests of the guest runtime's pure text code (rt/text.c,
 * rt/virtio_cmdline.c): formatting against the C library's snprintf,
 * number parsing, the command-line parameters and the virtio_mmio.device=
 * entries.
 */
#include "rt/krt.h"
#include "rt/virtio.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* formats with both krt_snprintf and snprintf; they must agree, return value included */
#define SAME(fmt, ...)                                                                             \
	do {                                                                                       \
		char a[128], b[128];                                                               \
		int na = krt_snprintf(a, sizeof(a), fmt, __VA_ARGS__);                             \
		int nb = snprintf(b, sizeof(b), fmt, __VA_ARGS__);                                 \
		cr_expect_str_eq(a, b, "format \"%s\"", fmt);                                      \
		cr_expect_eq(na, nb, "format \"%s\": %d vs %d", fmt, na, nb);                      \
	} while (0)

Test(text, integers_like_libc)
{
	SAME("%d %d %d", 0, -1, 2147483647);
	SAME("%d", (int)-2147483647 - 1);
	SAME("%u %u", 0u, 4294967295u);
	SAME("%x %X %o", 0xdeadbeefu, 0xabcu, 8u);
	SAME("%lx %lu %ld", 0xffffffffffffffffUL, 18446744073709551615UL, -9223372036854775807L);
	SAME("%llx %lld", 0x123456789abcdefULL, -5LL);
	SAME("%zu %zx", (size_t)12345, (size_t)0x1000);
	SAME("%hu %hd", (unsigned short)65535, (short)-3);
	SAME("%i", 42);
}

Test(text, widths_flags_and_strings_like_libc)
{
	SAME("[%5d] [%-5d] [%05d]", 42, 42, 42);
	SAME("[%05d] [%5d]", -42, -42);
	SAME("[%08lx] [%2x]", 0xbeefUL, 0x12345u);
	SAME("[%*d] [%-*d]", 6, 7, 6, 7);
	SAME("[%s] [%10s] [%-10s] [%.3s] [%.*s]", "abc", "abc", "abc", "abcdef", 2, "xyz");
	SAME("[%c] [%3c] [%-3c]", 'a', 'b', 'c');
	SAME("%% %s%%", "x");
	SAME("%p", (void *)0x1234);
}

Test(text, truncates_and_reports_the_full_length)
{
	char buf[8];
	int n = krt_snprintf(buf, sizeof(buf), "hello %s", "world");
	cr_expect_eq(n, 11);
	cr_expect_str_eq(buf, "hello w");
	cr_expect_eq(krt_snprintf(NULL, 0, "%d", 12345), 5);
	buf[0] = 'x';
	cr_expect_eq(krt_snprintf(buf, 1, "abc"), 3);
	cr_expect_eq(buf[0], 0);
}

Test(text, null_string_and_unknown_conversion)
{
	char buf[32];
	const char *volatile null = NULL;
	/* not literals: the compiler's format checks would reject them */
	const char *unknown = "a%qb", *trailing = "end%";

	krt_snprintf(buf, sizeof(buf), "%s", null);
	cr_expect_str_eq(buf, "(null)");
	krt_snprintf(buf, sizeof(buf), unknown);
	cr_expect_str_eq(buf, "a%qb");
	krt_snprintf(buf, sizeof(buf), trailing);
	cr_expect_str_eq(buf, "end%");
}

Test(text, strtou64)
{
	uint64_t v;
	const char *end;

	cr_expect_eq(krt_strtou64("1234x", &end, 0, &v), 0);
	cr_expect_eq(v, 1234);
	cr_expect_str_eq(end, "x");
	cr_expect_eq(krt_strtou64("0x1fG", &end, 0, &v), 0);
	cr_expect_eq(v, 0x1f);
	cr_expect_str_eq(end, "G");
	cr_expect_eq(krt_strtou64("ff", NULL, 16, &v), 0);
	cr_expect_eq(v, 0xff);
	cr_expect_eq(krt_strtou64("18446744073709551615", NULL, 0, &v), 0);
	cr_expect_eq(v, UINT64_MAX);
	cr_expect_eq(krt_strtou64("18446744073709551616", NULL, 0, &v), -KRT_EINVAL);
	cr_expect_eq(krt_strtou64("", &end, 0, &v), -KRT_EINVAL);
	cr_expect_eq(krt_strtou64("x1", &end, 0, &v), -KRT_EINVAL);
	cr_expect_eq(krt_strtou64("0x", &end, 0, &v), 0); /* "0", then "x" */
	cr_expect_eq(v, 0);
	cr_expect_str_eq(end, "x");
	cr_expect_eq(krt_strtou64("12", NULL, 1, &v), -KRT_EINVAL);
}

static void expect_param(const char *cmdline, const char *key, const char *value)
{
	size_t len = 99;
	const char *v = krt_cmdline_param(cmdline, key, &len);
	if (!value) {
		cr_expect_null(v, "\"%s\" in \"%s\"", key, cmdline);
		return;
	}
	cr_assert_not_null(v, "\"%s\" in \"%s\"", key, cmdline);
	cr_expect_eq(len, strlen(value));
	cr_expect_eq(strncmp(v, value, len), 0, "\"%s\": got \"%.*s\"", key, (int)len, v);
}

Test(text, cmdline_params)
{
	expect_param("kiln.test=pvh-7f3a touch=1", "touch", "1");
	expect_param("kiln.test=pvh-7f3a touch=1", "kiln.test", "pvh-7f3a");
	expect_param("a b c", "b", "");
	expect_param("a b c", "d", NULL);
	expect_param("touchy=1 touch", "touch", "");
	expect_param("touchy=1", "touch", NULL);
	expect_param("x=1 x=2", "x", "2");
	expect_param("  x=a=b  ", "x", "a=b");
	expect_param("", "x", NULL);
	expect_param("x=", "x", "");
}

Test(text, virtio_mmio_devices_qemu_and_kiln_syntax)
{
	struct virtio_mmio_slot s[4];
	unsigned bad = 99;
	/* what QEMU microvm appends (seen under QEMU 7.2), in its order */
	unsigned n = virtio_mmio_parse("foo=1 virtio_mmio.device=512@0xfeb00e00:12 "
	                               "virtio_mmio.device=512@0xfeb00c00:11",
	                               s, 4, &bad);
	cr_assert_eq(n, 2);
	cr_expect_eq(bad, 0);
	cr_expect_eq(s[0].base, 0xfeb00c00); /* sorted by base */
	cr_expect_eq(s[0].size, 512);
	cr_expect_eq(s[0].irq, 11);
	cr_expect_eq(s[1].base, 0xfeb00e00);
	cr_expect_eq(s[1].irq, 12);
	/* kiln's: a K suffix; an optional platform device id */
	n = virtio_mmio_parse(
	        "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=1M@0xd0001000:6:3", s, 4,
	        &bad);
	cr_assert_eq(n, 2);
	cr_expect_eq(s[0].size, 4096);
	cr_expect_eq(s[0].base, 0xd0000000);
	cr_expect_eq(s[0].irq, 5);
	cr_expect_eq(s[1].size, 1u << 20);
	cr_expect_eq(s[1].irq, 6);
}

Test(text, virtio_mmio_devices_malformed_and_too_many)
{
	struct virtio_mmio_slot s[2];
	unsigned bad = 0;
	unsigned n =
	        virtio_mmio_parse("virtio_mmio.device= virtio_mmio.device=4K "
	                          "virtio_mmio.device=4K@0xd0000000 virtio_mmio.device=0@0x1:5 "
	                          "virtio_mmio.device=4K@0xd0000000:5x "
	                          "virtio_mmio.device=4X@0x1000:5 "
	                          "virtio_mmio.device=16G@0xfffffffc00000000:5 "
	                          "xvirtio_mmio.device=4K@0x1000:5",
	                          s, 2, &bad);
	cr_expect_eq(n, 0);
	cr_expect_eq(bad, 7);
	n = virtio_mmio_parse("virtio_mmio.device=4K@0x3000:1 virtio_mmio.device=4K@0x2000:2 "
	                      "virtio_mmio.device=4K@0x1000:3",
	                      s, 2, &bad);
	cr_expect_eq(n, 2);
	cr_expect_eq(bad, 1);
	cr_expect_eq(s[0].base, 0x2000);
	cr_expect_eq(virtio_mmio_parse("", s, 2, NULL), 0);
}
