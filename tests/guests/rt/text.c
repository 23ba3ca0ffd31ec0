// SPDX-License-Identifier: Apache-2.0
/*
 * krt text: printf-style formatting, number parsing and the command-line
 * parameters. Pure functions of their arguments (no port, no global), so
 * tests/guests/test_text.c runs them on the host too.
 */
#include "krt.h"

struct out {
	char *buf;
	size_t size, len; /* len counts what would have been written */
};

static void emit(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

struct spec {
	bool left, zero;
	int width, prec; /* prec -1: none */
};

static void emit_padded(struct out *o, const struct spec *sp, const char *s, size_t n)
{
	size_t pad = sp->width > 0 && (size_t)sp->width > n ? (size_t)sp->width - n : 0;
	char padc = sp->zero && !sp->left ? '0' : ' ';

	/* zero padding goes after a sign */
	if (padc == '0' && n > 0 && *s == '-') {
		emit(o, *s++);
		n--;
	}
	for (size_t i = 0; !sp->left && i < pad; i++)
		emit(o, padc);
	for (size_t i = 0; i < n; i++)
		emit(o, s[i]);
	for (size_t i = 0; sp->left && i < pad; i++)
		emit(o, ' ');
}

static void emit_number(struct out *o, const struct spec *sp, uint64_t v, bool neg, unsigned base,
                        bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = digits[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[--i] = '-';
	emit_padded(o, sp, tmp + i, sizeof(tmp) - i);
}

/* reads a width or precision: digits or '*' */
static int read_int(const char **f, va_list *ap)
{
	int n = 0;
	if (**f == '*') {
		(*f)++;
		return va_arg(*ap, int);
	}
	while (**f >= '0' && **f <= '9')
		n = n * 10 + (*(*f)++ - '0');
	return n;
}

/* size modifiers: 0 int, 1 long, 2 long long, 3 size_t, -1 short */
static uint64_t fetch_unsigned(va_list *ap, int size)
{
	switch (size) {
	case 1:
		return va_arg(*ap, unsigned long);
	case 2:
		return va_arg(*ap, unsigned long long);
	case 3:
		return va_arg(*ap, size_t);
	case -1:
		return (unsigned short)va_arg(*ap, unsigned);
	default:
		return va_arg(*ap, unsigned);
	}
}

static int64_t fetch_signed(va_list *ap, int size)
{
	switch (size) {
	case 1:
		return va_arg(*ap, long);
	case 2:
		return va_arg(*ap, long long);
	case 3:
		return (int64_t)va_arg(*ap, size_t);
	case -1:
		return (short)va_arg(*ap, int);
	default:
		return va_arg(*ap, int);
	}
}

static void format_one(struct out *o, const char **f, va_list *ap)
{
	struct spec sp = {.prec = -1};
	int size = 0;

	for (;; (*f)++) {
		if (**f == '-')
			sp.left = true;
		else if (**f == '0')
			sp.zero = true;
		else
			break;
	}
	sp.width = read_int(f, ap);
	if (sp.width < 0) {
		sp.left = true;
		sp.width = -sp.width;
	}
	if (**f == '.') {
		(*f)++;
		sp.prec = read_int(f, ap);
	}
	for (; **f == 'l' || **f == 'z' || **f == 'h'; (*f)++)
		size = **f == 'z' ? 3 : **f == 'h' ? -1 : size + 1;

	char c = *(*f)++;
	switch (c) {
	case 'd':
	case 'i': {
		int64_t v = fetch_signed(ap, size);
		emit_number(o, &sp, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, false);
		break;
	}
	case 'u':
		emit_number(o, &sp, fetch_unsigned(ap, size), false, 10, false);
		break;
	case 'x':
	case 'X':
		emit_number(o, &sp, fetch_unsigned(ap, size), false, 16, c == 'X');
		break;
	case 'o':
		emit_number(o, &sp, fetch_unsigned(ap, size), false, 8, false);
		break;
	case 'p':
		emit(o, '0');
		emit(o, 'x');
		emit_number(o, &sp, (uint64_t)(uintptr_t)va_arg(*ap, void *), false, 16, false);
		break;
	case 'c': {
		char ch = (char)va_arg(*ap, int);
		emit_padded(o, &sp, &ch, 1);
		break;
	}
	case 's': {
		const char *s = va_arg(*ap, const char *);
		if (!s)
			s = "(null)";
		emit_padded(o, &sp, s, sp.prec >= 0 ? strnlen(s, (size_t)sp.prec) : strlen(s));
		break;
	}
	case '%':
		emit(o, '%');
		break;
	default: /* unknown: show it as written */
		emit(o, '%');
		if (c)
			emit(o, c);
		else
			(*f)--;
		break;
	}
}

int krt_vsnprintf(char *buf, size_t n, const char *fmt, va_list ap)
{
	struct out o = {buf, n, 0};
	va_list aq;

	va_copy(aq, ap);
	while (*fmt) {
		if (*fmt != '%') {
			emit(&o, *fmt++);
			continue;
		}
		fmt++;
		format_one(&o, &fmt, &aq);
	}
	va_end(aq);
	if (n > 0)
		buf[o.len < n ? o.len : n - 1] = 0;
	return (int)o.len;
}

int krt_snprintf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int ret = krt_vsnprintf(buf, n, fmt, ap);
	va_end(ap);
	return ret;
}

/* ------------------------------------------------------- number parsing */

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

int krt_strtou64(const char *s, const char **end, unsigned base, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
	    digit_value(p[2]) < 16) {
		p += 2;
		base = 16;
	} else if (base == 0) {
		base = 10;
	}
	if (base < 2 || base > 16 || digit_value(*p) >= (int)base) {
		if (end)
			*end = s;
		return -KRT_EINVAL;
	}
	for (int d; (d = digit_value(*p)) < (int)base; p++) {
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return -KRT_EINVAL;
		v = v * base + (uint64_t)d;
	}
	if (end)
		*end = p;
	*out = v;
	return 0;
}

/* ---------------------------------------------------- command line */

const char *krt_cmdline_param(const char *cmdline, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	const char *found = NULL;

	for (const char *p = cmdline; *p;) {
		while (*p == ' ')
			p++;
		const char *tok = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - tok) < klen || strncmp(tok, key, klen) != 0)
			continue;
		if (tok + klen == p) {
			found = p; /* bare key: "" */
			*len = 0;
		} else if (tok[klen] == '=') {
			found = tok + klen + 1;
			*len = (size_t)(p - found);
		}
	}
	return found;
}
