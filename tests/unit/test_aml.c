// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_aml.c: the AML encoder of vcpu/aml.c byte by byte
 * against the ACPI 6.5 encodings -- PkgLength at the edges of its 1-, 2-,
 * 3- and 4-byte forms (read back with a decoder written from s20.2.4),
 * packages whose body moves when the PkgLength grows, name strings and
 * their '_' padding, integers, strings, EISA ids, resource descriptors,
 * and measuring with no buffer.
 */
#include "vcpu/aml_int.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

/* s20.2.4 read back: the length the PkgLength at `p` says, its size in *n */
static size_t pkglength_decode(const uint8_t *p, unsigned *n)
{
	unsigned follow = p[0] >> 6;
	*n = follow + 1;
	if (follow == 0)
		return p[0] & 0x3f;
	size_t v = p[0] & 0x0f;
	for (unsigned i = 1; i <= follow; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

static void expect_pkglength(size_t body, int want_n, const uint8_t *want)
{
	uint8_t out[4] = {0};
	int n = aml_pkglength(out, body);
	cr_assert_eq(n, want_n, "body %zu: %d bytes, not %d", body, n, want_n);
	cr_assert(!memcmp(out, want, (size_t)n), "body %zu: %02x %02x %02x %02x", body, out[0],
	          out[1], out[2], out[3]);
	unsigned dn;
	cr_assert_eq(pkglength_decode(out, &dn), body + (size_t)n, "counts itself");
	cr_assert_eq(dn, (unsigned)n);
}

Test(aml, pkglength_one_byte_up_to_63)
{
	expect_pkglength(0, 1, (const uint8_t[]){0x01});
	expect_pkglength(5, 1, (const uint8_t[]){0x06});
	expect_pkglength(62, 1, (const uint8_t[]){0x3f});
}

Test(aml, pkglength_two_bytes_up_to_4095)
{
	/* 63 + 2 = 65 = 0x041: lead 01 00 0001, then 0x04 */
	expect_pkglength(63, 2, (const uint8_t[]){0x41, 0x04});
	expect_pkglength(4093, 2, (const uint8_t[]){0x4f, 0xff});
}

Test(aml, pkglength_three_and_four_bytes)
{
	/* 4094 + 3 = 0x1001 */
	expect_pkglength(4094, 3, (const uint8_t[]){0x81, 0x00, 0x01});
	expect_pkglength((1u << 20) - 4, 3, (const uint8_t[]){0x8f, 0xff, 0xff});
	/* (2^20 - 3) + 4 = 0x100001 */
	expect_pkglength((1u << 20) - 3, 4, (const uint8_t[]){0xc1, 0x00, 0x00, 0x01});
	expect_pkglength((1u << 28) - 5, 4, (const uint8_t[]){0xcf, 0xff, 0xff, 0xff});
	uint8_t out[4];
	cr_assert_eq(aml_pkglength(out, (1u << 28) - 4), -E2BIG);
}

Test(aml, pkglength_shortest_form_everywhere)
{
	for (size_t body = 0; body < (1u << 21); body += body < 5000 ? 1 : 997) {
		uint8_t out[4];
		int n = aml_pkglength(out, body);
		unsigned dn;
		cr_assert_eq(pkglength_decode(out, &dn), body + (size_t)n);
		size_t limit = n == 1 ? 0 : n == 2 ? 63 : n == 3 ? 4095 : (1u << 20) - 1;
		cr_assert_gt(body + (size_t)n, limit, "body %zu fits a shorter form", body);
	}
}

/* the bytes `a` holds are `want` (`n` of them), and nothing went wrong */
static void expect_bytes(const struct aml *a, const uint8_t *want, size_t n)
{
	cr_assert_eq(aml_status(a), 0, "status %d", aml_status(a));
	cr_assert_eq(a->len, n, "%zu bytes, not %zu", a->len, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(a->buf[i], want[i], "byte %zu: %02x, not %02x", i, a->buf[i], want[i]);
}

#define EXPECT(a, ...)                                                                             \
	do {                                                                                       \
		static const uint8_t want_[] = {__VA_ARGS__};                                      \
		expect_bytes((a), want_, sizeof(want_));                                           \
	} while (0)

static uint8_t buf[8192];
static struct aml a;

static void fresh(void)
{
	memset(buf, 0xee, sizeof(buf));
	aml_init(&a, buf, sizeof(buf));
}

Test(aml, package_body_moves_for_a_longer_pkglength)
{
	/* Device (DEV_) with a 70-byte body: the PkgLength takes 2 bytes */
	fresh();
	size_t d = aml_device_begin(&a, "DEV");
	for (int i = 0; i < 66; i++)
		aml_byte(&a, (uint8_t)i);
	aml_block_end(&a, d);
	cr_assert_eq(aml_status(&a), 0);
	cr_assert_eq(a.len, 2 + 2 + 4 + 66u);
	cr_assert_eq(buf[0], 0x5b);
	cr_assert_eq(buf[1], 0x82);
	unsigned n;
	cr_assert_eq(pkglength_decode(buf + 2, &n), 2 + 4 + 66u);
	cr_assert_eq(n, 2u);
	cr_assert(!memcmp(buf + 4, "DEV_", 4));
	for (int i = 0; i < 66; i++)
		cr_assert_eq(buf[8 + i], i);
	cr_assert_eq(buf[a.len], 0xee, "nothing past the package");

	/* nested: Scope (\_SB_) { Device (A) {} } */
	fresh();
	size_t s = aml_scope_begin(&a, "\\_SB_");
	d = aml_device_begin(&a, "A");
	aml_block_end(&a, d);
	aml_block_end(&a, s);
	EXPECT(&a, 0x10, 0x0d, '\\', '_', 'S', 'B', '_', 0x5b, 0x82, 0x05, 'A', '_', '_', '_');
}

/* aml_name(`path`) gives the `n` bytes `want` */
static void expect_name(const char *path, const char *want, size_t n)
{
	fresh();
	aml_name(&a, path);
	expect_bytes(&a, (const uint8_t *)want, n);
}

#define EXPECT_NAME(path, want) expect_name((path), (want), sizeof(want) - 1)

Test(aml, name_strings_pad_segments_with_underscores)
{
	EXPECT_NAME("KBD", "KBD_");
	EXPECT_NAME("_SB", "_SB_");
	EXPECT_NAME("V", "V___");
	EXPECT_NAME("VR07", "VR07");
}

Test(aml, name_strings_prefixes_and_paths)
{
	/* s20.2.2: RootChar, DualNamePrefix 0x2e, MultiNamePrefix 0x2f + count */
	EXPECT_NAME("\\_SB.COM1", "\\\x2e_SB_COM1");
	EXPECT_NAME("A.BC.DEF", "\x2f\x03"
	                        "A___BC__DEF_");
	EXPECT_NAME("^^FOO", "^^FOO_");
	EXPECT_NAME("\\", "\\\x00");
}

Test(aml, bad_names_are_refused)
{
	static const char *const bad[] = {"",  "kbd",  "ABCDE", "1ABC", "A..B",  "A.", ".A",
	                                  "^", "\\.A", "A-B",   "A B",  "\\\\A", "A^"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fresh();
		aml_name(&a, bad[i]);
		cr_assert_eq(aml_status(&a), -EINVAL, "\"%s\" was taken", bad[i]);
	}
}

Test(aml, integers_take_the_shortest_form)
{
	fresh();
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 2);
	aml_integer(&a, 0xff);
	aml_integer(&a, 0x100);
	aml_integer(&a, 0xd0001000u);
	aml_integer(&a, 0x100000000ull);
	EXPECT(&a, 0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00, 0x01, 0x0c, 0x00, 0x10, 0x00,
	       0xd0, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
}

Test(aml, strings_and_eisa_ids)
{
	fresh();
	aml_name_decl(&a, "_HID");
	aml_string(&a, "LNRO0005");
	EXPECT(&a, 0x08, '_', 'H', 'I', 'D', 0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0x00);
	/* EISAID ("PNP0501"): the DWord 0x0105D041 */
	fresh();
	aml_eisaid(&a, "PNP0501");
	aml_eisaid(&a, "PNP0303");
	EXPECT(&a, 0x0c, 0x41, 0xd0, 0x05, 0x01, 0x0c, 0x41, 0xd0, 0x03, 0x03);
	static const char *const bad[] = {"pnp0501", "PNP05G1", "PNP050", "PNP05011", "PN@0501"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fresh();
		aml_eisaid(&a, bad[i]);
		cr_assert_eq(aml_status(&a), -EINVAL, "\"%s\" was taken", bad[i]);
		cr_assert_eq(a.len, 5u, "the same length for a bad id");
	}
	fresh();
	aml_string(&a, "tab\there");
	cr_assert_eq(aml_status(&a), -EINVAL);
}

Test(aml, resource_descriptors)
{
	uint8_t rbuf[64];
	struct aml r;
	aml_init(&r, rbuf, sizeof(rbuf));
	aml_res_io(&r, 0x3f8, 0x3f8, 0, 8);
	aml_res_irq(&r, 4);
	aml_res_mem32_fixed(&r, true, 0xd0001000u, 0x1000);
	aml_res_ext_irq(&r, AML_IRQ_CONSUMER | AML_IRQ_EDGE, 6);
	EXPECT(&r, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, /* IO */
	       0x22, 0x10, 0x00,                                   /* IRQNoFlags () {4} */
	       0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00, 0x89, 0x06,
	       0x00, 0x03, 0x01, 0x06, 0x00, 0x00, 0x00);

	/* the template: Buffer (size) { descriptors, End Tag } */
	fresh();
	aml_init(&r, rbuf, sizeof(rbuf));
	aml_res_irq(&r, 1);
	aml_resource_template(&a, &r);
	EXPECT(&a, 0x11, 0x08, 0x0a, 0x05, 0x22, 0x02, 0x00, 0x79, 0x00);

	/* out of range */
	aml_init(&r, rbuf, sizeof(rbuf));
	aml_res_irq(&r, 16);
	cr_assert_eq(aml_status(&r), -EINVAL);
	aml_init(&r, rbuf, sizeof(rbuf));
	aml_res_mem32_fixed(&r, true, 0xfffff000u, 0x2000);
	cr_assert_eq(aml_status(&r), -EINVAL);
	aml_init(&r, rbuf, sizeof(rbuf));
	aml_res_io(&r, 0x64, 0x60, 1, 1);
	cr_assert_eq(aml_status(&r), -EINVAL);
	/* a bad descriptor fails the template it goes into */
	fresh();
	aml_init(&r, rbuf, sizeof(rbuf));
	aml_res_ext_irq(&r, 0x10, 5);
	aml_resource_template(&a, &r);
	cr_assert_eq(aml_status(&a), -EINVAL);
}

/* a device with every kind of object, into `x` */
static void sample(struct aml *x)
{
	size_t s = aml_scope_begin(x, "\\_SB_");
	size_t d = aml_device_begin(x, "VR00");
	aml_name_decl(x, "_HID");
	aml_string(x, "LNRO0005");
	aml_name_decl(x, "_UID");
	aml_integer(x, 0);
	uint8_t rbuf[32];
	struct aml r;
	aml_init(&r, rbuf, sizeof(rbuf));
	aml_res_mem32_fixed(&r, true, 0xd0000000u, 0x1000);
	aml_res_ext_irq(&r, AML_IRQ_CONSUMER | AML_IRQ_EDGE, 5);
	aml_name_decl(x, "_CRS");
	aml_resource_template(x, &r);
	aml_block_end(x, d);
	aml_block_end(x, s);
}

Test(aml, measuring_without_a_buffer_and_running_short)
{
	struct aml m;
	aml_init(&m, NULL, 0);
	sample(&m);
	cr_assert_eq(aml_status(&m), -ENOSPC, "nothing fits in nothing");
	cr_assert_eq(m.err, 0);

	fresh();
	sample(&a);
	cr_assert_eq(aml_status(&a), 0);
	cr_assert_eq(a.len, m.len, "the measure is the real length");

	/* one byte short: -ENOSPC, and the byte past the capacity untouched */
	memset(buf, 0xee, sizeof(buf));
	aml_init(&a, buf, m.len - 1);
	sample(&a);
	cr_assert_eq(aml_status(&a), -ENOSPC);
	cr_assert_eq(a.len, m.len);
	cr_assert_eq(buf[m.len - 1], 0xee);
}
