/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/state: saved state as versioned sections, for snapshots and live
 * migration. Every component writes its own section, field by field, in
 * little endian; nothing is ever dumped as a raw struct.
 *
 * A section on the wire:
 *   u8  id_len, id_len bytes of id (e.g. "vcpu.0", "virtio-blk.rootfs")
 *   u16 version      the layout version the writer used
 *   u32 length       bytes of payload that follow
 *   payload
 * A reader asks for the next section, checks the id and that the version
 * lies within what it can read (its minimum .. its current version), and
 * reads fields in the order that version wrote them. Errors are sticky:
 * after the first short read or overflow every further read returns 0 and
 * sr_error() reports -EINVAL, so a caller checks once at the end.
 */
#ifndef KILN_COMMON_STATE_H
#define KILN_COMMON_STATE_H

#include <stddef.h>
#include <stdint.h>

/* the longest id: "virtio-mmio.<device kind>.<64-character device id>" fits */
#define STATE_ID_MAX 127

struct state_writer {
	uint8_t *buf;
	size_t len, cap;
	size_t section_at; /* offset of the open section's length field, or SIZE_MAX */
	int err;           /* 0 or -ENOMEM / -EINVAL (sticky) */
};

void sw_init(struct state_writer *w);
void sw_free(struct state_writer *w);
/* opens a section; sections do not nest */
void sw_begin(struct state_writer *w, const char *id, uint16_t version);
void sw_end(struct state_writer *w);
void sw_u8(struct state_writer *w, uint8_t v);
void sw_u16(struct state_writer *w, uint16_t v);
void sw_u32(struct state_writer *w, uint32_t v);
void sw_u64(struct state_writer *w, uint64_t v);
void sw_bytes(struct state_writer *w, const void *p, size_t n);
/* 0 or the first error */
int sw_error(const struct state_writer *w);

struct state_reader {
	const uint8_t *buf;
	size_t len, off;
	int err;
};

void sr_init(struct state_reader *r, const void *buf, size_t len);
/*
 * Reads the next section header; `sub` is set to read exactly its payload.
 * Returns 1 when a section was read, 0 at the end of the buffer, -EINVAL on
 * a malformed header.
 */
int sr_next(struct state_reader *r, char id[STATE_ID_MAX + 1], uint16_t *version,
            struct state_reader *sub);
/* -EINVAL unless min <= version <= max; for the reader's version check */
int sr_check_version(const char *id, uint16_t version, uint16_t min, uint16_t max);
uint8_t sr_u8(struct state_reader *r);
uint16_t sr_u16(struct state_reader *r);
uint32_t sr_u32(struct state_reader *r);
uint64_t sr_u64(struct state_reader *r);
void sr_bytes(struct state_reader *r, void *p, size_t n);
/* bytes left unread in this reader */
size_t sr_left(const struct state_reader *r);
int sr_error(const struct state_reader *r);

#endif
