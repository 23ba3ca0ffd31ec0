// SPDX-License-Identifier: Apache-2.0
/*
 * memory/bus.c: the port I/O and MMIO buses -- a sorted array of
 * non-overlapping ranges, looked up by binary search under a read lock.
 *
 * Ranges are kept as [base, last] with last = base + len - 1 so that a range
 * ending exactly at 2^64 needs no special case and no sum can wrap.
 */
#define LOG_MODULE "bus"
#include "memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t range_last(const struct bus_range *r)
{
	return r->base + (r->len - 1);
}

/* The index of the first range whose base is > addr (0 .. nr). */
static unsigned upper_bound(const struct bus *b, uint64_t addr)
{
	unsigned lo = 0, hi = b->nr;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (b->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The range that contains addr, or NULL. Caller holds the lock. */
static const struct bus_range *find_range(const struct bus *b, uint64_t addr)
{
	unsigned i = upper_bound(b, addr);
	if (i == 0)
		return NULL;
	const struct bus_range *r = &b->ranges[i - 1];
	return addr <= range_last(r) ? r : NULL;
}

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;

	/*
	 * vCPUs take the read lock on every access; prefer writers so that a
	 * register/unregister is not starved by a guest doing constant I/O.
	 * (Not recursive: callbacks must not re-enter the bus, see memory.h.)
	 */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&b->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

void bus_destroy(struct bus *b)
{
	free(b->ranges);
	b->ranges = NULL;
	b->nr = b->cap = 0;
	pthread_rwlock_destroy(&b->lock);
}

static int bus_grow(struct bus *b)
{
	if (b->nr < b->cap)
		return 0;
	unsigned cap = b->cap ? b->cap * 2 : 16;
	struct bus_range *r = realloc(b->ranges, cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	b->ranges = r;
	b->cap = cap;
	return 0;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
                 void *opaque, const char *name)
{
	if (len == 0 || !ops)
		return -EINVAL;
	if (len - 1 > UINT64_MAX - base) /* last byte would be past 2^64 - 1 */
		return -EINVAL;
	uint64_t last = base + (len - 1);

	pthread_rwlock_wrlock(&b->lock);
	int ret = 0;
	unsigned i = upper_bound(b, base);
	/* ranges[i - 1] starts at or before base, ranges[i] after it */
	if (i > 0 && range_last(&b->ranges[i - 1]) >= base) {
		ret = -EEXIST;
		goto out;
	}
	if (i < b->nr && b->ranges[i].base <= last) {
		ret = -EEXIST;
		goto out;
	}
	ret = bus_grow(b);
	if (ret < 0)
		goto out;

	memmove(&b->ranges[i + 1], &b->ranges[i], (b->nr - i) * sizeof(b->ranges[0]));
	b->ranges[i] = (struct bus_range){
	        .base = base, .len = len, .ops = ops, .opaque = opaque, .name = name};
	b->nr++;
out:
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

int bus_unregister(struct bus *b, uint64_t base)
{
	/* taking the write lock waits for every access in flight to return */
	pthread_rwlock_wrlock(&b->lock);
	int ret = -ENOENT;
	unsigned i = upper_bound(b, base);
	if (i > 0 && b->ranges[i - 1].base == base) {
		i--;
		memmove(&b->ranges[i], &b->ranges[i + 1], (b->nr - i - 1) * sizeof(b->ranges[0]));
		b->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}

static bool valid_len(uint32_t len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

int bus_access(struct bus *b, uint64_t addr, void *data, uint32_t len, bool is_write)
{
	/* a read nobody answers sees a floating bus: all ones */
	if (!is_write && len <= 8)
		memset(data, 0xff, len);
	if (!valid_len(len))
		return -EINVAL;

	pthread_rwlock_rdlock(&b->lock);
	int ret;
	const struct bus_range *r = find_range(b, addr);
	if (!r) {
		ret = -ENOENT;
	} else if (len - 1 > range_last(r) - addr) {
		ret = -EINVAL; /* starts inside the range, runs past its end */
	} else {
		uint64_t off = addr - r->base;
		if (is_write) {
			if (r->ops->write)
				r->ops->write(r->opaque, off, data, len);
		} else if (r->ops->read) {
			r->ops->read(r->opaque, off, data, len);
		}
		ret = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return ret;
}
