// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/aml.c: the AML encoder of aml_int.h. Opcodes and encodings follow
 * the ACPI Specification 6.5, s20.2 (AML grammar) and s6.4 (resource data
 * types); the ASL each function stands for is in aml_int.h.
 */
#include "vcpu/aml_int.h"

#include <errno.h>
#include <string.h>

/* s20.2.3 / s20.2.5: the opcodes used here */
#define AML_ZERO          0x00
#define AML_ONE           0x01
#define AML_NAME_OP       0x08
#define AML_BYTE_PREFIX   0x0a
#define AML_WORD_PREFIX   0x0b
#define AML_DWORD_PREFIX  0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX  0x0e
#define AML_SCOPE_OP      0x10
#define AML_BUFFER_OP     0x11
#define AML_EXT_PREFIX    0x5b
#define AML_DEVICE_OP     0x82 /* after AML_EXT_PREFIX */

/* s20.2.2: name string prefixes */
#define AML_NULL_NAME   0x00
#define AML_DUAL_NAME   0x2e
#define AML_MULTI_NAME  0x2f
#define AML_ROOT_CHAR   '\\'
#define AML_PARENT_CHAR '^'

/* s6.4.2 / s6.4.3: resource descriptor tags (small: type << 3 | length) */
#define RES_IRQ_NOFLAGS 0x22 /* type 0x04, 2 bytes */
#define RES_IO          0x47 /* type 0x08, 7 bytes */
#define RES_END_TAG     0x79 /* type 0x0f, 1 byte */
#define RES_MEM32_FIXED 0x86 /* large, type 0x06 */
#define RES_EXT_IRQ     0x89 /* large, type 0x09 */

void aml_init(struct aml *a, void *buf, size_t cap)
{
	a->buf = buf;
	a->cap = buf ? cap : 0;
	a->len = 0;
	a->err = 0;
}

int aml_status(const struct aml *a)
{
	if (a->err)
		return a->err;
	return a->len > a->cap ? -ENOSPC : 0;
}

static void fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

void aml_byte(struct aml *a, uint8_t b)
{
	if (a->len < a->cap)
		a->buf[a->len] = b;
	a->len++;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		aml_byte(a, b[i]);
}

/* little endian, `n` bytes of `v` */
static void put_le(struct aml *a, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

int aml_pkglength(uint8_t out[4], size_t body)
{
	/*
	 * One byte holds 6 bits of length; with n following bytes the lead
	 * byte says n in bits 7-6 and holds the low nibble, each following
	 * byte the next 8 bits: 12, 20 or 28 bits in all.
	 */
	if (body + 1 <= 0x3f) {
		out[0] = (uint8_t)(body + 1);
		return 1;
	}
	for (unsigned n = 2; n <= 4; n++) {
		size_t total = body + n;
		if (total >= 1u << (4 + 8 * (n - 1)))
			continue;
		out[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return (int)n;
	}
	return -E2BIG;
}

size_t aml_pkg_begin(const struct aml *a)
{
	return a->len;
}

void aml_pkg_end(struct aml *a, size_t start)
{
	uint8_t pl[4];
	size_t body = a->len - start;
	int n = aml_pkglength(pl, body);
	if (n < 0) {
		fail(a, n);
		return;
	}
	/* the body moves up to make room; when it did not all fit, only count */
	if (a->len + (size_t)n <= a->cap) {
		memmove(a->buf + start + n, a->buf + start, body);
		memcpy(a->buf + start, pl, (size_t)n);
	}
	a->len += (size_t)n;
}

static bool lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
	return lead_char(c) || (c >= '0' && c <= '9');
}

/* the length of the segment at `s` (up to '.' or the end), 0 when it is not one */
static size_t segment_len(const char *s)
{
	size_t n = 0;
	while (s[n] && s[n] != '.') {
		if (n == 4 || !(n ? name_char(s[n]) : lead_char(s[n])))
			return 0;
		n++;
	}
	return n;
}

void aml_name(struct aml *a, const char *path)
{
	const char *p = path;
	if (*p == AML_ROOT_CHAR)
		aml_byte(a, (uint8_t)*p++);
	else
		while (*p == AML_PARENT_CHAR)
			aml_byte(a, (uint8_t)*p++);

	/* count and check the segments first: the prefix depends on their number */
	unsigned segs = 0;
	for (const char *s = p; *s;) {
		size_t n = segment_len(s);
		if (n == 0 || segs == 255) {
			fail(a, -EINVAL);
			return;
		}
		segs++;
		s += n;
		if (*s == '.' && !*++s) {
			fail(a, -EINVAL); /* a trailing dot */
			return;
		}
	}
	if (segs == 0) {
		/* only the root itself may go without a segment */
		if (p == path || p[-1] != AML_ROOT_CHAR)
			fail(a, -EINVAL);
		aml_byte(a, AML_NULL_NAME);
		return;
	}
	if (segs == 2) {
		aml_byte(a, AML_DUAL_NAME);
	} else if (segs > 2) {
		aml_byte(a, AML_MULTI_NAME);
		aml_byte(a, (uint8_t)segs);
	}
	while (*p) {
		size_t n = segment_len(p);
		aml_bytes(a, p, n);
		for (size_t i = n; i < 4; i++)
			aml_byte(a, '_');
		p += n;
		if (*p == '.')
			p++;
	}
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		aml_byte(a, AML_ONE);
	} else if (v <= UINT8_MAX) {
		aml_byte(a, AML_BYTE_PREFIX);
		put_le(a, v, 1);
	} else if (v <= UINT16_MAX) {
		aml_byte(a, AML_WORD_PREFIX);
		put_le(a, v, 2);
	} else if (v <= UINT32_MAX) {
		aml_byte(a, AML_DWORD_PREFIX);
		put_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		put_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING_PREFIX);
	for (; *s; s++) {
		/* s20.2.3: AsciiCharList holds 0x01-0x7F; kiln's are printable */
		if (*s < 0x20 || *s > 0x7e)
			fail(a, -EINVAL);
		aml_byte(a, (uint8_t)*s);
	}
	aml_byte(a, 0);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	/*
	 * s6.1.5: the three letters as 5-bit values ('A' is 1) in bits
	 * 30-16, the four hex digits in bits 15-0, the 32-bit value then
	 * stored big endian: "PNP0501" is 0x41d00501 -> bytes 41 d0 05 01.
	 */
	uint32_t v = 0;
	if (strlen(id) != 7) {
		fail(a, -EINVAL);
	} else {
		for (int i = 0; i < 3; i++) {
			if (id[i] < 'A' || id[i] > 'Z')
				fail(a, -EINVAL);
			v |= (uint32_t)(id[i] - 'A' + 1) << (26 - 5 * i);
		}
		for (int i = 3; i < 7; i++) {
			int d = hex_digit(id[i]);
			if (d < 0)
				fail(a, -EINVAL);
			v |= (uint32_t)(d & 0xf) << (4 * (6 - i));
		}
	}
	aml_byte(a, AML_DWORD_PREFIX);
	for (int i = 3; i >= 0; i--)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

void aml_name_decl(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	aml_name(a, name);
}

size_t aml_scope_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_SCOPE_OP);
	size_t start = aml_pkg_begin(a);
	aml_name(a, name);
	return start;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	size_t start = aml_pkg_begin(a);
	aml_name(a, name);
	return start;
}

void aml_block_end(struct aml *a, size_t start)
{
	aml_pkg_end(a, start);
}

/* ------------------------------------------------ resource templates */

void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	if (max < min)
		fail(r, -EINVAL);
	aml_byte(r, RES_IO);
	aml_byte(r, 0x01); /* bit 0: the device decodes all 16 address bits */
	put_le(r, min, 2);
	put_le(r, max, 2);
	aml_byte(r, align);
	aml_byte(r, len);
}

void aml_res_irq(struct aml *r, unsigned irq)
{
	if (irq > 15)
		fail(r, -EINVAL);
	aml_byte(r, RES_IRQ_NOFLAGS);
	put_le(r, irq > 15 ? 0 : 1u << irq, 2); /* the mask of IRQs 0-15 */
}

void aml_res_mem32_fixed(struct aml *r, bool writable, uint32_t base, uint32_t len)
{
	if (len && (uint64_t)base + len - 1 > UINT32_MAX)
		fail(r, -EINVAL);
	aml_byte(r, RES_MEM32_FIXED);
	put_le(r, 9, 2); /* the length of what follows */
	aml_byte(r, writable ? 0x01 : 0x00);
	put_le(r, base, 4);
	put_le(r, len, 4);
}

void aml_res_ext_irq(struct aml *r, unsigned flags, uint32_t gsi)
{
	if (flags & ~(AML_IRQ_CONSUMER | AML_IRQ_EDGE | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED))
		fail(r, -EINVAL);
	aml_byte(r, RES_EXT_IRQ);
	put_le(r, 6, 2); /* flags, count, one 32-bit interrupt number */
	aml_byte(r, (uint8_t)flags);
	aml_byte(r, 1);
	put_le(r, gsi, 4);
}

void aml_resource_template(struct aml *a, struct aml *r)
{
	aml_byte(r, RES_END_TAG);
	aml_byte(r, 0); /* checksum 0: "treated as if the checksum operation succeeded" */
	int st = aml_status(r);
	if (st)
		fail(a, st);
	/* s20.2.5.4: DefBuffer := BufferOp PkgLength BufferSize ByteList */
	aml_byte(a, AML_BUFFER_OP);
	size_t start = aml_pkg_begin(a);
	aml_integer(a, r->len);
	if (st == 0)
		aml_bytes(a, r->buf, r->len);
	else
		for (size_t i = 0; i < r->len; i++)
			aml_byte(a, 0); /* keeps the measure right; the run has failed */
	aml_pkg_end(a, start);
}
