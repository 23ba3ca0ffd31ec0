// SPDX-License-Identifier: Apache-2.0
/*
 * tests/fuzz/fuzz_mmds_tcp.c: libFuzzer target for the MMDS's network
 * stack (mmds/ns.c, mmds/tcp.c, and the HTTP and store code behind them):
 * the input is a sequence of guest frames, with the clock moved and the
 * stack's output drained between them, as a guest on virtio-net would
 * drive it.
 *
 * Byte 0: bit 0 V2, bit 1 imds_compat, bit 2 checksums left as given (else
 * the harness makes the IPv4 and TCP checksums right, so the fuzzer gets
 * past them). Then records: an op byte, op % 4 = 0: a frame of the next
 * 2 bytes' length (big endian, at most what is left); 1: the output
 * drained (op / 4 frames at most); 2: the clock moved by op * 10 ms;
 * 3: the clock moved past the retransmission timeout. Connections
 * start at sequence 0x12345678, so inputs can acknowledge them. Every frame out must
 * fit MMDS_NS_FRAME_MAX and carry right checksums; at the end the output
 * drains in a bounded number of frames. Built and run by scripts/fuzz.sh;
 * seeds in tests/fuzz/corpus/mmds_tcp/.
 */
#include "mmds/mmds_int.h"

#include <stdlib.h>
#include <string.h>

static const char doc[] = "{\"latest\": {\"meta-data\": {\"id\": \"i-1\", \"n\": 5}, \"big\": "
                          "\"0123456789012345678901234567890123456789\"}}";

/* the checksums of an IPv4/TCP frame made right where its lengths allow */
static void fix_checksums(uint8_t *f, size_t len)
{
	if (len < 34 || f[12] != 0x08 || f[13] != 0x00 || (f[14] & 0x0f) != 5)
		return;
	uint8_t *ip = f + 14;
	mmds_put16(ip + 10, 0);
	mmds_put16(ip + 10, mmds_csum_fold(mmds_csum_add(0, ip, 20)));
	size_t tot = mmds_be16(ip + 2);
	if (ip[9] != 6 || tot < 40 || tot > len - 14)
		return;
	uint8_t ph[12] = {0}, *t = ip + 20;
	memcpy(ph, ip + 12, 8);
	ph[9] = 6;
	mmds_put16(ph + 10, (uint16_t)(tot - 20));
	mmds_put16(t + 16, 0);
	mmds_put16(t + 16, mmds_csum_fold(mmds_csum_add(mmds_csum_add(0, ph, 12), t, tot - 20)));
}

/* a frame of the stack's: ARP, or IPv4/TCP with right checksums */
static void check_out(const uint8_t *f, size_t len)
{
	if (len > MMDS_NS_FRAME_MAX || len < 42)
		__builtin_trap();
	if (f[12] == 0x08 && f[13] == 0x06)
		return;
	const uint8_t *ip = f + 14;
	if (mmds_be16(ip + 2) != len - 14 || mmds_csum_fold(mmds_csum_add(0, ip, 20)) != 0)
		__builtin_trap();
	uint8_t ph[12] = {0};
	memcpy(ph, ip + 12, 8);
	ph[9] = 6;
	mmds_put16(ph + 10, (uint16_t)(len - 34));
	if (mmds_csum_fold(mmds_csum_add(mmds_csum_add(0, ph, 12), ip + 20, len - 34)) != 0)
		__builtin_trap();
}

static void drain(struct mmds_ns *ns, unsigned most, uint64_t now)
{
	static uint8_t out[MMDS_NS_FRAME_MAX];
	size_t len;

	for (unsigned i = 0; i < most && (len = mmds_ns_output(ns, out, sizeof(out), now)); i++)
		check_out(out, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[65536];
	struct mmds store;
	struct mmds_ns *ns;
	uint64_t now = 1000000000ULL;
	size_t off = 1;

	if (size < 1 || mmds_init(&store, 0) < 0)
		return 0;
	json_t *j = json_loads(doc, 0, NULL);
	mmds_put(&store, j, NULL);
	json_decref(j);
	mmds_configure(&store, data[0] & 1 ? MMDS_V2 : MMDS_V1, data[0] & 2);
	if (mmds_ns_create(&ns, &store, MMDS_DEFAULT_IPV4) < 0) {
		mmds_destroy(&store);
		return 0;
	}
	mmds_ns_fix_iss(ns, 0x12345678); /* as Firecracker's fuzzing build: ACKs can be guessed */
	while (off < size) {
		uint8_t op = data[off++];
		switch (op % 4) {
		case 0: {
			if (size - off < 2)
				goto done;
			size_t len = mmds_be16(data + off);
			off += 2;
			if (len > size - off)
				len = size - off;
			memcpy(frame, data + off, len);
			off += len;
			if (!(data[0] & 4))
				fix_checksums(frame, len);
			/* as the device: only what the MMDS claims reaches the stack */
			if (mmds_frame_is_mmds(frame, len, MMDS_DEFAULT_IPV4))
				mmds_ns_input(ns, frame, len, now);
			break;
		}
		case 1:
			drain(ns, op / 4u + 1, now);
			break;
		case 2:
			now += (uint64_t)op * 10000000ULL;
			break;
		default:
			now += MMDS_NS_RTO_NS;
		}
	}
done:
	/* whatever the guest did, the stack has a bounded amount to say */
	drain(ns, MMDS_NS_MAX_RESETS + 1 + MMDS_NS_MAX_CONNECTIONS * 64, now);
	mmds_ns_destroy(ns);
	mmds_destroy(&store);
	return 0;
}
