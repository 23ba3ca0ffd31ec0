// SPDX-License-Identifier: Apache-2.0
/* tests/unit/test_bus.c: range registration, dispatch, edges and concurrency of the buses. */
#include "memory/memory.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a device that records its last access and answers reads with base-tagged bytes */
struct fake {
	unsigned id;
	unsigned calls;
	uint64_t offset;
	uint32_t len;
	bool write;
	uint8_t data[8];
};

static void fake_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct fake *f = opaque;
	__atomic_add_fetch(&f->calls, 1, __ATOMIC_RELAXED);
	f->offset = offset;
	f->len = len;
	f->write = false;
	for (uint32_t i = 0; i < len; i++)
		((uint8_t *)data)[i] = (uint8_t)(f->id + offset + i);
}

static void fake_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct fake *f = opaque;
	__atomic_add_fetch(&f->calls, 1, __ATOMIC_RELAXED);
	f->offset = offset;
	f->len = len;
	f->write = true;
	memcpy(f->data, data, len);
}

static const struct bus_dev_ops fake_ops = {.read = fake_read, .write = fake_write};
/* a device whose reads write nothing: the bus's all-ones fill shows through */
static const struct bus_dev_ops silent_ops = {.read = NULL, .write = NULL};

static struct bus b;

static void setup(void)
{
	bus_init(&b, "test");
}

static void teardown(void)
{
	bus_destroy(&b);
}

TestSuite(bus, .init = setup, .fini = teardown);

static void expect_sorted(void)
{
	for (unsigned i = 1; i < b.nr; i++)
		cr_assert_gt(b.ranges[i].base, b.ranges[i - 1].base + (b.ranges[i - 1].len - 1),
		             "ranges %u and %u out of order or overlapping", i - 1, i);
}

Test(bus, overlaps_are_refused_touching_is_fine)
{
	struct fake f = {0};
	cr_assert_eq(bus_register(&b, 0x100, 0x10, &fake_ops, &f, "a"), 0);
	cr_expect_eq(bus_register(&b, 0x100, 0x10, &fake_ops, &f, "same"), -EEXIST);
	cr_expect_eq(bus_register(&b, 0x104, 0x4, &fake_ops, &f, "inside"), -EEXIST);
	cr_expect_eq(bus_register(&b, 0xf0, 0x30, &fake_ops, &f, "covering"), -EEXIST);
	cr_expect_eq(bus_register(&b, 0xf1, 0x10, &fake_ops, &f, "left by one"), -EEXIST);
	cr_expect_eq(bus_register(&b, 0x10f, 0x10, &fake_ops, &f, "right by one"), -EEXIST);
	cr_expect_eq(bus_register(&b, 0x100, 1, &fake_ops, &f, "same start"), -EEXIST);
	cr_expect_eq(bus_register(&b, 0x10f, 1, &fake_ops, &f, "last byte"), -EEXIST);
	cr_expect_eq(b.nr, 1);

	cr_expect_eq(bus_register(&b, 0xf0, 0x10, &fake_ops, &f, "touching left"), 0);
	cr_expect_eq(bus_register(&b, 0x110, 0x10, &fake_ops, &f, "touching right"), 0);
	cr_expect_eq(bus_register(&b, 0x0, 0xf0, &fake_ops, &f, "fills below"), 0);
	cr_expect_eq(bus_register(&b, 0xef, 2, &fake_ops, &f, "over two"), -EEXIST);
	cr_expect_eq(b.nr, 4);
	expect_sorted();
}

Test(bus, zero_length_null_ops_and_overflow)
{
	struct fake f = {0};
	cr_expect_eq(bus_register(&b, 0x100, 0, &fake_ops, &f, "empty"), -EINVAL);
	cr_expect_eq(bus_register(&b, 0x100, 1, NULL, &f, "no ops"), -EINVAL);
	cr_expect_eq(bus_register(&b, UINT64_MAX, 2, &fake_ops, &f, "wraps"), -EINVAL);
	cr_expect_eq(bus_register(&b, 2, UINT64_MAX, &fake_ops, &f, "last byte at 2^64"), -EINVAL);
	cr_expect_eq(bus_register(&b, 0x1000, UINT64_MAX - 0x800, &fake_ops, &f, "wraps"), -EINVAL);
	cr_expect_eq(b.nr, 0);
	/* ending exactly at 2^64 is not an overflow */
	cr_expect_eq(bus_register(&b, UINT64_MAX, 1, &fake_ops, &f, "last byte"), 0);
	cr_expect_eq(bus_register(&b, 0, UINT64_MAX, &fake_ops, &f, "all but the last"), 0);
	cr_expect_eq(bus_register(&b, 5, 1, &fake_ops, &f, "inside the big one"), -EEXIST);
	expect_sorted();
}

Test(bus, dispatch_offsets_and_values)
{
	struct fake f = {.id = 0x40};
	cr_assert_eq(bus_register(&b, 0x1000, 0x100, &fake_ops, &f, "dev"), 0);

	uint32_t v = 0;
	cr_expect_eq(bus_access(&b, 0x1010, &v, 4, false), 0);
	cr_expect_eq(f.offset, 0x10);
	cr_expect_eq(f.len, 4);
	cr_expect_eq(v, 0x53525150u, "bytes id+offset+i, little endian");

	uint64_t w = 0x1122334455667788ull;
	cr_expect_eq(bus_access(&b, 0x10f8, &w, 8, true), 0);
	cr_expect(f.write);
	cr_expect_eq(f.offset, 0xf8);
	cr_expect_eq(memcmp(f.data, &w, 8), 0);
	cr_expect_eq(f.calls, 2);
}

Test(bus, straddling_the_end_is_not_dispatched)
{
	struct fake f = {0};
	cr_assert_eq(bus_register(&b, 0x100, 8, &fake_ops, &f, "dev"), 0);
	cr_assert_eq(bus_register(&b, 0x108, 8, &fake_ops, &f, "next"), 0);

	uint64_t v = 0;
	cr_expect_eq(bus_access(&b, 0x104, &v, 8, false), -EINVAL);
	cr_expect_eq(v, UINT64_MAX, "all ones");
	cr_expect_eq(bus_access(&b, 0x105, &v, 4, true), -EINVAL);
	cr_expect_eq(bus_access(&b, 0x107, &v, 2, true), -EINVAL);
	cr_expect_eq(f.calls, 0, "a straddling access reaches neither device");

	cr_expect_eq(bus_access(&b, 0x104, &v, 4, false), 0);
	cr_expect_eq(bus_access(&b, 0x106, &v, 2, false), 0);
	cr_expect_eq(bus_access(&b, 0x100, &v, 8, false), 0);
	cr_expect_eq(f.calls, 3);
}

/* every width at the very last bytes of a range, also one ending at 2^64 */
static void check_last_bytes(uint64_t base, uint64_t len)
{
	struct fake f = {0};
	cr_assert_eq(bus_register(&b, base, len, &fake_ops, &f, "dev"), 0);
	uint64_t last = base + (len - 1);
	static const uint32_t widths[] = {1, 2, 4, 8};
	for (size_t i = 0; i < ARRAY_SIZE(widths); i++) {
		uint32_t w = widths[i];
		uint64_t v = 0;
		unsigned before = f.calls;
		cr_expect_eq(bus_access(&b, last - (w - 1), &v, w, false), 0, "len %u at end", w);
		cr_expect_eq(f.calls, before + 1);
		cr_expect_eq(f.offset, len - w);
		if (w > 1) {
			cr_expect_eq(bus_access(&b, last - (w - 2), &v, w, false), -EINVAL,
			             "len %u one past the end", w);
			cr_expect_eq(bus_access(&b, last, &v, w, true), -EINVAL);
		}
	}
	cr_expect_eq(bus_unregister(&b, base), 0);
}

Test(bus, every_width_at_the_last_bytes)
{
	check_last_bytes(0x3f8, 8);
	check_last_bytes(0xd0000000, 0x1000);
	check_last_bytes(UINT64_MAX - 7, 8);
	check_last_bytes(0, UINT64_MAX);
}

Test(bus, unknown_addresses_read_all_ones)
{
	struct fake f = {0};
	cr_assert_eq(bus_register(&b, 0x100, 0x10, &fake_ops, &f, "dev"), 0);
	uint64_t probes[] = {0, 0xff, 0x110, 0xfc, UINT64_MAX};
	static const uint32_t widths[] = {1, 2, 4, 8};
	for (size_t p = 0; p < ARRAY_SIZE(probes); p++) {
		for (size_t i = 0; i < ARRAY_SIZE(widths); i++) {
			uint8_t buf[9];
			memset(buf, 0x5a, sizeof(buf));
			cr_expect_eq(bus_access(&b, probes[p], buf, widths[i], false), -ENOENT,
			             "0x%llx len %u", (unsigned long long)probes[p], widths[i]);
			for (uint32_t j = 0; j < widths[i]; j++)
				cr_expect_eq(buf[j], 0xff);
			cr_expect_eq(buf[widths[i]], 0x5a, "nothing written past len");
			cr_expect_eq(bus_access(&b, probes[p], buf, widths[i], true), -ENOENT);
		}
	}
	cr_expect_eq(f.calls, 0, "0xfc len 8 starts outside the device: not dispatched");

	struct bus empty;
	bus_init(&empty, "empty");
	uint16_t v = 0;
	cr_expect_eq(bus_access(&empty, 0x60, &v, 2, false), -ENOENT);
	cr_expect_eq(v, 0xffff);
	bus_destroy(&empty);
}

Test(bus, bad_lengths_and_silent_devices)
{
	struct fake f = {0};
	cr_assert_eq(bus_register(&b, 0x100, 0x10, &fake_ops, &f, "dev"), 0);
	cr_assert_eq(bus_register(&b, 0x200, 0x10, &silent_ops, NULL, "silent"), 0);
	uint8_t buf[16];
	memset(buf, 0, sizeof(buf));
	cr_expect_eq(bus_access(&b, 0x100, buf, 3, false), -EINVAL);
	cr_expect_eq(buf[0] & buf[1] & buf[2], 0xff);
	cr_expect_eq(bus_access(&b, 0x100, buf, 0, true), -EINVAL);
	cr_expect_eq(bus_access(&b, 0x100, buf, 16, true), -EINVAL);
	cr_expect_eq(f.calls, 0);

	uint32_t v = 0;
	cr_expect_eq(bus_access(&b, 0x204, &v, 4, false), 0);
	cr_expect_eq(v, 0xffffffffu, "a device that writes nothing reads as all ones");
	cr_expect_eq(bus_access(&b, 0x204, &v, 4, true), 0, "a NULL write callback is fine");
}

Test(bus, unregister_then_register_again)
{
	struct fake f1 = {.id = 1}, f2 = {.id = 2};
	cr_assert_eq(bus_register(&b, 0x100, 0x10, &fake_ops, &f1, "one"), 0);
	cr_expect_eq(bus_unregister(&b, 0x104), -ENOENT, "only the exact base unregisters");
	cr_expect_eq(bus_unregister(&b, 0x200), -ENOENT);
	cr_expect_eq(bus_unregister(&b, 0x100), 0);
	cr_expect_eq(bus_unregister(&b, 0x100), -ENOENT);

	uint8_t v;
	cr_expect_eq(bus_access(&b, 0x100, &v, 1, false), -ENOENT);
	cr_assert_eq(bus_register(&b, 0x100, 0x10, &fake_ops, &f2, "two"), 0);
	cr_expect_eq(bus_access(&b, 0x105, &v, 1, false), 0);
	cr_expect_eq(v, 2 + 5);
	cr_expect_eq(f1.calls, 0);
	cr_expect_eq(f2.calls, 1);
}

#define MANY 1000

Test(bus, many_ranges_in_random_order)
{
	static struct fake devs[MANY];
	unsigned order[MANY];
	for (unsigned i = 0; i < MANY; i++) {
		devs[i] = (struct fake){.id = i};
		order[i] = i;
	}
	srand(42);
	for (unsigned i = MANY - 1; i > 0; i--) {
		unsigned j = (unsigned)rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	/* device i covers [i * 0x20, i * 0x20 + 8 + i % 24): gaps between all */
	for (unsigned k = 0; k < MANY; k++) {
		unsigned i = order[k];
		cr_assert_eq(bus_register(&b, i * 0x20ull, 8 + i % 24, &fake_ops, &devs[i], "d"),
		             0);
	}
	cr_assert_eq(b.nr, MANY);
	expect_sorted();

	for (unsigned i = 0; i < MANY; i++) {
		uint64_t base = i * 0x20ull, len = 8 + i % 24;
		uint8_t v;
		cr_assert_eq(bus_access(&b, base, &v, 1, false), 0);
		cr_assert_eq(v, (uint8_t)i, "base of %u", i);
		cr_assert_eq(bus_access(&b, base + len - 1, &v, 1, true), 0);
		cr_assert_eq(devs[i].offset, len - 1);
		if (len < 0x20)
			cr_assert_eq(bus_access(&b, base + len, &v, 1, false), -ENOENT, "gap %u",
			             i);
		cr_assert_eq(devs[i].calls, 2);
	}

	/* remove the odd ones in random order; the even ones still dispatch */
	for (unsigned k = 0; k < MANY; k++)
		if (order[k] % 2)
			cr_assert_eq(bus_unregister(&b, order[k] * 0x20ull), 0);
	cr_assert_eq(b.nr, MANY / 2);
	expect_sorted();
	for (unsigned i = 0; i < MANY; i++) {
		uint8_t v;
		int ret = bus_access(&b, i * 0x20ull + 3, &v, 1, false);
		cr_assert_eq(ret, i % 2 ? -ENOENT : 0, "device %u", i);
		if (!(i % 2))
			cr_assert_eq(v, (uint8_t)(i + 3));
	}
}

/* ------------------------------------------------------------ threads */

struct blocker {
	volatile int entered, release;
};

static void blocking_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct blocker *bl = opaque;
	(void)offset;
	__atomic_store_n(&bl->entered, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&bl->release, __ATOMIC_SEQ_CST))
		usleep(1000);
	memset(data, 0x11, len);
}

static const struct bus_dev_ops blocking_ops = {.read = blocking_read};

static void *reader(void *arg)
{
	uint8_t v;
	return (void *)(intptr_t)bus_access(arg, 0x500, &v, 1, false);
}

struct unreg_arg {
	struct bus *b;
	volatile int done;
};

static void *unregisterer(void *arg)
{
	struct unreg_arg *u = arg;
	bus_unregister(u->b, 0x500);
	__atomic_store_n(&u->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

Test(bus, unregister_waits_for_accesses_in_flight, .timeout = 10)
{
	struct blocker bl = {0};
	cr_assert_eq(bus_register(&b, 0x500, 1, &blocking_ops, &bl, "slow"), 0);
	pthread_t rt, ut;
	pthread_create(&rt, NULL, reader, &b);
	while (!__atomic_load_n(&bl.entered, __ATOMIC_SEQ_CST))
		usleep(1000);

	struct unreg_arg u = {.b = &b};
	pthread_create(&ut, NULL, unregisterer, &u);
	usleep(50 * 1000);
	cr_expect_eq(u.done, 0, "unregister returned while the device was still in use");

	__atomic_store_n(&bl.release, 1, __ATOMIC_SEQ_CST);
	void *ret;
	pthread_join(rt, &ret);
	pthread_join(ut, NULL);
	cr_expect_eq((intptr_t)ret, 0);
	cr_expect_eq(u.done, 1);
	cr_expect_eq(b.nr, 0);
}

static volatile int stop_hammer;

static void *hammer(void *arg)
{
	struct fake *f = arg;
	while (!__atomic_load_n(&stop_hammer, __ATOMIC_RELAXED)) {
		uint32_t v;
		if (bus_access(&b, 0x4000 + f->id * 0x10, &v, 4, false) != 0)
			return (void *)1;
	}
	return NULL;
}

Test(bus, accesses_race_with_register_and_unregister, .timeout = 30)
{
	static struct fake stable[4];
	pthread_t th[4];
	for (unsigned i = 0; i < 4; i++) {
		stable[i] = (struct fake){.id = i};
		cr_assert_eq(bus_register(&b, 0x4000 + i * 0x10, 0x10, &fake_ops, &stable[i], "s"),
		             0);
	}
	stop_hammer = 0;
	for (unsigned i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, &stable[i]);

	struct fake churn = {0};
	unsigned least = 0;
	for (unsigned round = 0; round < 20000 || least < 1000; round++) {
		/* below and above the stable devices, so inserts shift them both ways */
		uint64_t base =
		        (round % 2) ? (round % 0x300) * 0x10ull : 0x100000 + round * 0x10ull;
		cr_assert_eq(bus_register(&b, base, 0x10, &fake_ops, &churn, "c"), 0);
		cr_assert_eq(bus_unregister(&b, base), 0);
		least = UINT32_MAX;
		for (unsigned i = 0; i < 4; i++) {
			unsigned c = __atomic_load_n(&stable[i].calls, __ATOMIC_RELAXED);
			least = c < least ? c : least;
		}
	}
	__atomic_store_n(&stop_hammer, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < 4; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		cr_expect_null(ret, "thread %u saw a failed access", i);
		cr_expect_geq(stable[i].calls, 1000);
	}
	cr_expect_eq(b.nr, 4);
}
