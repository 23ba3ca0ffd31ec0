// SPDX-License-Identifier: Apache-2.0
/* common/state.c: versioned little-endian state sections (see state.h). */
#include "state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sw_init(struct state_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->section_at = SIZE_MAX;
}

void sw_free(struct state_writer *w)
{
	free(w->buf);
	sw_init(w);
}

static uint8_t *sw_reserve(struct state_writer *w, size_t n)
{
	if (w->err)
		return NULL;
	if (n > SIZE_MAX / 2 - w->len) {
		w->err = -EINVAL;
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *nb = realloc(w->buf, cap);
		if (!nb) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->buf = nb;
		w->cap = cap;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void sw_le(struct state_writer *w, uint64_t v, unsigned n)
{
	uint8_t *p = sw_reserve(w, n);
	if (p)
		put_le(p, v, n);
}

void sw_u8(struct state_writer *w, uint8_t v)
{
	sw_le(w, v, 1);
}

void sw_u16(struct state_writer *w, uint16_t v)
{
	sw_le(w, v, 2);
}

void sw_u32(struct state_writer *w, uint32_t v)
{
	sw_le(w, v, 4);
}

void sw_u64(struct state_writer *w, uint64_t v)
{
	sw_le(w, v, 8);
}

void sw_bytes(struct state_writer *w, const void *src, size_t n)
{
	uint8_t *p = sw_reserve(w, n);
	if (p && n)
		memcpy(p, src, n);
}

void sw_begin(struct state_writer *w, const char *id, uint16_t version)
{
	size_t id_len = strlen(id);
	if (w->section_at != SIZE_MAX || id_len == 0 || id_len > STATE_ID_MAX) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	sw_u8(w, (uint8_t)id_len);
	sw_bytes(w, id, id_len);
	sw_u16(w, version);
	w->section_at = w->len;
	sw_u32(w, 0); /* patched by sw_end */
}

void sw_end(struct state_writer *w)
{
	if (w->section_at == SIZE_MAX) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	size_t payload = w->len - w->section_at - 4;
	if (!w->err && payload > UINT32_MAX)
		w->err = -EINVAL;
	if (!w->err)
		put_le(w->buf + w->section_at, payload, 4);
	w->section_at = SIZE_MAX;
}

int sw_error(const struct state_writer *w)
{
	if (w->err)
		return w->err;
	return w->section_at == SIZE_MAX ? 0 : -EINVAL;
}

void sr_init(struct state_reader *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

static const uint8_t *sr_take(struct state_reader *r, size_t n)
{
	if (r->err || n > r->len - r->off) {
		r->err = -EINVAL;
		return NULL;
	}
	const uint8_t *p = r->buf + r->off;
	r->off += n;
	return p;
}

static uint64_t sr_le(struct state_reader *r, unsigned n)
{
	const uint8_t *p = sr_take(r, n);
	uint64_t v = 0;
	if (!p)
		return 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t sr_u8(struct state_reader *r)
{
	return (uint8_t)sr_le(r, 1);
}

uint16_t sr_u16(struct state_reader *r)
{
	return (uint16_t)sr_le(r, 2);
}

uint32_t sr_u32(struct state_reader *r)
{
	return (uint32_t)sr_le(r, 4);
}

uint64_t sr_u64(struct state_reader *r)
{
	return sr_le(r, 8);
}

void sr_bytes(struct state_reader *r, void *dst, size_t n)
{
	const uint8_t *p = sr_take(r, n);
	if (p)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

size_t sr_left(const struct state_reader *r)
{
	return r->err ? 0 : r->len - r->off;
}

int sr_error(const struct state_reader *r)
{
	return r->err;
}

int sr_next(struct state_reader *r, char id[STATE_ID_MAX + 1], uint16_t *version,
            struct state_reader *sub)
{
	if (r->err)
		return r->err;
	if (r->off == r->len)
		return 0;
	uint8_t id_len = sr_u8(r);
	if (id_len == 0 || id_len > STATE_ID_MAX)
		r->err = -EINVAL;
	sr_bytes(r, id, r->err ? 0 : id_len);
	*version = sr_u16(r);
	uint32_t len = sr_u32(r);
	const uint8_t *payload = sr_take(r, len);
	if (r->err)
		return r->err;
	id[id_len] = '\0';
	sr_init(sub, payload, len);
	return 1;
}

int sr_check_version(const char *id, uint16_t version, uint16_t min, uint16_t max)
{
	(void)id;
	return version >= min && version <= max ? 0 : -EINVAL;
}
