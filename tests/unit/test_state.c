// SPDX-License-Identifier: Apache-2.0
/* Unit tests for common/state: versioned sections, sticky errors. */
#include "common/common.h"
#include "common/state.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(state, round_trip_two_sections)
{
	struct state_writer w;
	sw_init(&w);
	sw_begin(&w, "vcpu.0", 3);
	sw_u8(&w, 0xab);
	sw_u16(&w, 0x1234);
	sw_u32(&w, 0xdeadbeef);
	sw_u64(&w, 0x0102030405060708ull);
	sw_end(&w);
	sw_begin(&w, "serial", 1);
	sw_bytes(&w, "hello", 5);
	sw_end(&w);
	cr_assert_eq(sw_error(&w), 0);

	/* little endian on the wire, whatever the host */
	const uint8_t hdr[] = {6, 'v', 'c', 'p', 'u', '.',  '0',  3,
	                       0, 15,  0,   0,   0,   0xab, 0x34, 0x12};
	cr_assert_eq(memcmp(w.buf, hdr, sizeof(hdr)), 0);

	struct state_reader r, s;
	char id[STATE_ID_MAX + 1];
	uint16_t ver;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(sr_next(&r, id, &ver, &s), 1);
	cr_assert_str_eq(id, "vcpu.0");
	cr_assert_eq(ver, 3);
	cr_assert_eq(sr_u8(&s), 0xab);
	cr_assert_eq(sr_u16(&s), 0x1234);
	cr_assert_eq(sr_u32(&s), 0xdeadbeef);
	cr_assert_eq(sr_u64(&s), 0x0102030405060708ull);
	cr_assert_eq(sr_left(&s), 0);
	cr_assert_eq(sr_error(&s), 0);
	cr_assert_eq(sr_next(&r, id, &ver, &s), 1);
	cr_assert_str_eq(id, "serial");
	char buf[6] = {0};
	sr_bytes(&s, buf, 5);
	cr_assert_str_eq(buf, "hello");
	cr_assert_eq(sr_next(&r, id, &ver, &s), 0);
	sw_free(&w);
}

Test(state, short_payload_is_a_sticky_error)
{
	struct state_writer w;
	sw_init(&w);
	sw_begin(&w, "x", 1);
	sw_u16(&w, 7);
	sw_end(&w);

	struct state_reader r, s;
	char id[STATE_ID_MAX + 1];
	uint16_t ver;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(sr_next(&r, id, &ver, &s), 1);
	cr_assert_eq(sr_u32(&s), 0); /* only 2 bytes there */
	cr_assert_eq(sr_u8(&s), 0);  /* sticky even though 2 bytes remain */
	cr_assert_eq(sr_error(&s), -EINVAL);
	sw_free(&w);
}

Test(state, truncated_section_header_rejected)
{
	struct state_writer w;
	sw_init(&w);
	sw_begin(&w, "device", 2);
	sw_u64(&w, 1);
	sw_end(&w);
	for (size_t cut = 1; cut < w.len; cut++) {
		struct state_reader r, s;
		char id[STATE_ID_MAX + 1];
		uint16_t ver;
		sr_init(&r, w.buf, cut);
		cr_assert_eq(sr_next(&r, id, &ver, &s), -EINVAL, "cut at %zu", cut);
	}
	sw_free(&w);
}

Test(state, version_window)
{
	cr_assert_eq(sr_check_version("a", 2, 1, 3), 0);
	cr_assert_eq(sr_check_version("a", 1, 1, 3), 0);
	cr_assert_eq(sr_check_version("a", 3, 1, 3), 0);
	cr_assert_eq(sr_check_version("a", 0, 1, 3), -EINVAL);
	cr_assert_eq(sr_check_version("a", 4, 1, 3), -EINVAL);
}

Test(state, writer_rejects_nesting_bad_ids_and_unclosed_sections)
{
	struct state_writer w;
	sw_init(&w);
	sw_begin(&w, "a", 1);
	sw_begin(&w, "b", 1);
	cr_assert_eq(sw_error(&w), -EINVAL);
	sw_free(&w);

	sw_init(&w);
	sw_begin(&w, "", 1);
	cr_assert_eq(sw_error(&w), -EINVAL);
	sw_free(&w);

	char long_id[80];
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[79] = 0;
	sw_init(&w);
	sw_begin(&w, long_id, 1);
	cr_assert_eq(sw_error(&w), -EINVAL);
	sw_free(&w);

	sw_init(&w);
	sw_begin(&w, "open", 1);
	cr_assert_eq(sw_error(&w), -EINVAL);
	sw_end(&w);
	cr_assert_eq(sw_error(&w), 0);
	sw_free(&w);
}

Test(crc32, check_value_and_pieces)
{
	/* the standard check value of CRC-32/IEEE */
	cr_assert_eq(crc32_update(0, "123456789", 9), 0xcbf43926u);
	uint32_t c = crc32_update(0, "1234", 4);
	cr_assert_eq(crc32_update(c, "56789", 5), 0xcbf43926u);
	cr_assert_eq(crc32_update(0, "", 0), 0);
}
