// SPDX-License-Identifier: Apache-2.0
/*
 * tests/fuzz/fuzz_mmds_http.c: libFuzzer target for the MMDS's guest side
 * (mmds/http.c, mmds/token.c, mmds/frame.c, the store's lookups): the
 * input's first byte picks V1/V2 and imds_compat, and whether the rest is
 * one Ethernet frame (classified, ARP answered) or a stream of HTTP
 * requests as a guest would send them, parsed and answered one after the
 * other as the connection would. Built and run by scripts/fuzz.sh; seeds
 * in tests/fuzz/corpus/mmds_http/.
 */
#include "mmds/mmds_int.h"

#include <stdlib.h>
#include <string.h>

static const char doc[] = "{\"latest\": {\"meta-data\": {\"id\": \"i-1\", \"n\": 5, \"a/b\": "
                          "{\"c~d\": [1, \"x\", {}]}}, \"user-data\": \"u\"}, \"\": \"e\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mmds m;
	struct mmds_http_req r;
	char *out, tok[MMDS_TOKEN_MAX + 1];
	size_t off = 1, len;

	if (size < 1 || mmds_init(&m, 0) < 0)
		return 0;
	json_t *j = json_loads(doc, 0, NULL);
	mmds_put(&m, j, NULL);
	json_decref(j);
	mmds_configure(&m, data[0] & 1 ? MMDS_V2 : MMDS_V1, data[0] & 2);
	if (data[0] & 4) /* a known token a request may quote */
		mmds_token_new(&m, 60, tok);
	if (data[0] & 8) { /* a frame */
		uint8_t reply[64];
		int n = mmds_arp_reply(data + 1, size - 1, MMDS_DEFAULT_IPV4, mmds_default_mac,
		                       reply, sizeof(reply));
		if (n >= 0 && !mmds_frame_is_mmds(data + 1, size - 1, MMDS_DEFAULT_IPV4))
			__builtin_trap(); /* answered a frame that is not the MMDS's */
		off = size;
	}
	while (off < size) {
		/* the stack hands the parser at most a request's worth of bytes */
		size_t n = size - off < MMDS_HTTP_MAX_REQUEST ? size - off : MMDS_HTTP_MAX_REQUEST;
		int ret = mmds_http_parse((const char *)data + off, n, &r);
		if (ret <= 0)
			break;
		if (r.total == 0 || r.total > n)
			__builtin_trap();
		if (mmds_http_respond(&m, &r, &out, &len) == 0) {
			if (len < 12 || memcmp(out, "HTTP/1.1 ", 9) != 0)
				__builtin_trap();
			free(out);
		}
		off += r.total;
	}
	mmds_destroy(&m);
	return 0;
}
