/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vcpu/aml_int.h: a small encoder of ACPI Machine Language, enough for the
 * DSDT that vcpu/acpi.c writes -- name strings, package lengths, scopes,
 * devices, named integers, strings, EISA ids and resource templates.
 * Section numbers are those of the ACPI Specification 6.5 (s20: AML, s6.4:
 * resource data types). Not part of the module's interface.
 *
 * Every call appends to a `struct aml`. Nothing is written past its
 * capacity, but `len` goes on counting, so that a run with a capacity of 0
 * measures what a real run writes. Bad input (a malformed name, an IRQ out
 * of range) does not stop the run either: the first such error stays in
 * `err`. A caller checks both once at the end.
 */
#ifndef KILN_VCPU_AML_INT_H
#define KILN_VCPU_AML_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t cap; /* bytes `buf` holds */
	size_t len; /* bytes emitted, those past `cap` included */
	int err;    /* 0, or the first -EINVAL / -E2BIG of a bad argument */
};

/* starts an empty stream into `buf` (`cap` bytes; NULL and 0 to measure) */
void aml_init(struct aml *a, void *buf, size_t cap);

/* 0 when every byte fitted and no argument was bad, else -errno (-ENOSPC: too small) */
int aml_status(const struct aml *a);

void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);

/*
 * s20.2.4: the PkgLength of a package whose body (what follows the
 * PkgLength) has `body` bytes, into `out`. The value counts its own 1 to 4
 * bytes. Returns how many bytes it took, or -E2BIG past 2^28 - 1. Pure.
 */
int aml_pkglength(uint8_t out[4], size_t body);

/*
 * A package: aml_pkg_begin() is called right after the opcode and returns
 * where the body starts; aml_pkg_end(), once the body is written, puts the
 * PkgLength in front of it. Pairs nest.
 */
size_t aml_pkg_begin(const struct aml *a);
void aml_pkg_end(struct aml *a, size_t start);

/*
 * s20.2.2: a NameString from its ASL spelling: an optional root prefix "\"
 * or parent prefixes "^", then dot-separated segments of 1 to 4 characters
 * (A-Z, '_' first; A-Z, 0-9, '_' after), each padded to 4 with '_' as ASL
 * does ("KBD" is "KBD_"). "\" alone is the root. A bad name sets -EINVAL.
 */
void aml_name(struct aml *a, const char *path);

/* s20.2.3: the shortest of Zero, One, Byte/Word/DWord/QWordConst for `v` */
void aml_integer(struct aml *a, uint64_t v);
/* s20.2.3: a String of printable ASCII, NUL-terminated */
void aml_string(struct aml *a, const char *s);
/*
 * s6.1.5: the compressed EISA id of "PNP0501" (three letters A-Z, four hex
 * digits) as a DWordConst, the way ASL's EISAID() compiles it.
 */
void aml_eisaid(struct aml *a, const char *id);

/* s20.2.5.1: Name(`name`, ...): the caller then writes the object */
void aml_name_decl(struct aml *a, const char *name);
/* s20.2.5.1: Scope(`name`) { ... } and s20.2.5.2: Device(`name`) { ... } */
size_t aml_scope_begin(struct aml *a, const char *name);
size_t aml_device_begin(struct aml *a, const char *name);
/* closes what aml_scope_begin() or aml_device_begin() opened */
void aml_block_end(struct aml *a, size_t start);

/* ------------------------------------------ resource templates (s6.4) */

/* s6.4.3.6 Table 6.255: Extended Interrupt descriptor flags */
#define AML_IRQ_CONSUMER   0x01u /* else a producer */
#define AML_IRQ_EDGE       0x02u /* else level-triggered */
#define AML_IRQ_ACTIVE_LOW 0x04u /* else active high */
#define AML_IRQ_SHARED     0x08u /* else exclusive */

/*
 * The descriptors go into a `struct aml` of their own (a few dozen bytes
 * on the caller's stack), which aml_resource_template() then closes with
 * the End Tag and appends to `a` as a Buffer.
 */
/* s6.4.2.5: I/O Port, 16-bit decode: IO(Decode16, min, max, align, len) */
void aml_res_io(struct aml *r, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* s6.4.2.1: IRQNoFlags() { irq }, an ISA IRQ 0-15 (edge, active high, exclusive) */
void aml_res_irq(struct aml *r, unsigned irq);
/* s6.4.3.4: Memory32Fixed(ReadWrite or ReadOnly, base, len) */
void aml_res_mem32_fixed(struct aml *r, bool writable, uint32_t base, uint32_t len);
/* s6.4.3.6: Interrupt(flags) { gsi }, one interrupt, no resource source */
void aml_res_ext_irq(struct aml *r, unsigned flags, uint32_t gsi);
/* s6.4.2.9 + s20.2.5.4: ends `r` with an End Tag and appends Buffer() { r } to `a` */
void aml_resource_template(struct aml *a, struct aml *r);

#endif
