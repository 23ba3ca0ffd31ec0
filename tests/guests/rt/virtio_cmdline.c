// SPDX-License-Identifier: Apache-2.0
/*
 * krt virtio: the `virtio_mmio.device=` entries of the command line, the
 * way the VMM announces virtio-mmio devices to Linux (the virtio_mmio
 * module's parameter: <size>[KMG]@<base>:<irq>[:<id>]). QEMU microvm
 * appends `512@0xfeb00e00:12`, kiln `4K@0xd0000000:5`. Pure (no port, no
 * global), so tests/guests/test_text.c runs it on the host too.
 */
#include "virtio.h"

#define KEY "virtio_mmio.device="

/* a size with an optional K/M/G suffix (memparse style) */
static int parse_size(const char *s, const char **end, uint64_t *out)
{
	uint64_t v;
	if (krt_strtou64(s, &s, 0, &v) < 0)
		return -KRT_EINVAL;
	unsigned shift = 0;
	if (*s == 'K' || *s == 'k')
		shift = 10;
	else if (*s == 'M' || *s == 'm')
		shift = 20;
	else if (*s == 'G' || *s == 'g')
		shift = 30;
	if (shift) {
		if (v > (UINT64_MAX >> shift))
			return -KRT_EINVAL;
		v <<= shift;
		s++;
	}
	*end = s;
	*out = v;
	return 0;
}

/* one value, [s, s + len): 0 with *slot, or -KRT_EINVAL */
static int parse_one(const char *s, size_t len, struct virtio_mmio_slot *slot)
{
	const char *end = s + len, *p;
	uint64_t size, base, irq, id;

	if (parse_size(s, &p, &size) < 0 || size == 0 || p >= end || *p != '@')
		return -KRT_EINVAL;
	if (krt_strtou64(p + 1, &p, 0, &base) < 0 || p >= end || *p != ':')
		return -KRT_EINVAL;
	if (krt_strtou64(p + 1, &p, 0, &irq) < 0 || irq > UINT32_MAX)
		return -KRT_EINVAL;
	if (p < end && *p == ':' && krt_strtou64(p + 1, &p, 0, &id) < 0)
		return -KRT_EINVAL; /* the optional platform device id */
	if (p != end || base + size < base)
		return -KRT_EINVAL;
	*slot = (struct virtio_mmio_slot){base, size, (uint32_t)irq};
	return 0;
}

static void insert_sorted(struct virtio_mmio_slot *out, unsigned n,
                          const struct virtio_mmio_slot *s)
{
	unsigned i = n;
	while (i > 0 && out[i - 1].base > s->base) {
		out[i] = out[i - 1];
		i--;
	}
	out[i] = *s;
}

unsigned virtio_mmio_parse(const char *cmdline, struct virtio_mmio_slot *out, unsigned max,
                           unsigned *bad)
{
	unsigned n = 0, nbad = 0;
	const char *p = cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		const char *word = p;
		while (*p && *p != ' ')
			p++;
		size_t klen = sizeof(KEY) - 1;
		if ((size_t)(p - word) < klen || strncmp(word, KEY, klen) != 0)
			continue;
		struct virtio_mmio_slot s;
		if (parse_one(word + klen, (size_t)(p - word) - klen, &s) < 0 || n == max) {
			nbad++;
			continue;
		}
		insert_sorted(out, n++, &s);
	}
	if (bad)
		*bad = nbad;
	return n;
}
