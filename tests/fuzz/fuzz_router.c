// SPDX-License-Identifier: Apache-2.0
/*
 * tests/fuzz/fuzz_router.c: libFuzzer target for the API's request router
 * and body parsers (api/router.c, api/parse_*.c and the cfg_parse_*() they
 * share with --config-file). No server, no VMM: one input is
 *	METHOD '\n' PATH '\n' BODY
 * and everything the parsers allocate is freed, so ASan also catches
 * leaks. Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/router/.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

/* copies the bytes up to the next '\n' (at most size - 1) into buf */
static const uint8_t *field(const uint8_t *p, const uint8_t *end, char *buf, size_t size)
{
	const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n = (size_t)((nl ? nl : end) - p);

	if (n > size - 1)
		n = size - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return nl ? nl + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size, *p = data;
	char method[16], path[4096], allow[32];
	struct api_action a;
	struct errbuf e;
	char *fault;
	int ret;

	p = field(p, end, method, sizeof(method));
	p = field(p, end, path, sizeof(path));
	memset(&a, 0, sizeof(a));
	memset(&e, 0, sizeof(e));
	ret = api_route(method, path, (const char *)p, (size_t)(end - p), &a, &e);

	/* the router's contract, checked on every input */
	if (ret == 0 && a.kind >= API_ACTION_COUNT)
		abort(); /* a parsed request always names its action */
	if (ret < 0 && !e.msg[0])
		abort(); /* every refusal says why */
	if (api_route_status(ret) < 200 || api_route_status(ret) > 599)
		abort();
	if (ret == 0)
		api_action_release(&a);

	fault = api_fault_json(e.msg);
	free(fault);
	api_route_allow(path, allow, sizeof(allow));
	(void)api_action_name(a.kind);
	return 0;
}
