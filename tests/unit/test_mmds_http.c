// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_mmds_http.c: mmds/http.c, mmds/token.c and mmds/frame.c --
 * the guest's HTTP requests parsed from untrusted bytes and answered as
 * Firecracker's MMDS does, V1 and V2 (session tokens, their TTL rules and
 * their bound); which frames are the MMDS's, and the ARP reply.
 */
#include "mmds/mmds_int.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct mmds m;
static char resp[8192];

static void setup(void)
{
	cr_assert_eq(mmds_init(&m, 0), 0);
	json_t *j =
	        json_loads("{\"latest\": {\"meta-data\": {\"id\": \"i-1\", \"n\": 5}}}", 0, NULL);
	cr_assert_eq(mmds_put(&m, j, NULL), 0);
	json_decref(j);
}

static void teardown(void)
{
	mmds_destroy(&m);
}

TestSuite(mmds_http, .init = setup, .fini = teardown);

/* parses `req` (which must be whole) and answers it into resp */
static const char *ask(const char *req)
{
	struct mmds_http_req r;
	char *out;
	size_t len;

	cr_assert_eq(mmds_http_parse(req, strlen(req), &r), 1, "%s", req);
	cr_assert_eq(r.total, strlen(req));
	cr_assert_eq(mmds_http_respond(&m, &r, &out, &len), 0);
	cr_assert_lt(len, sizeof(resp));
	memcpy(resp, out, len);
	resp[len] = '\0';
	free(out);
	return resp;
}

static void expect_answer(const char *req, const char *status, const char *body)
{
	const char *a = ask(req), *b = strstr(a, "\r\n\r\n");
	cr_assert(!strncmp(a, status, strlen(status)), "%s ->\n%s", req, a);
	cr_assert(b, "%s", a);
	cr_assert_str_eq(b + 4, body, "%s", req);
}

Test(mmds_http, parse_incomplete_bad_and_too_long)
{
	struct mmds_http_req r;
	const char *ok = "GET /latest?x=1 HTTP/1.1\r\nHost: 169.254.169.254\r\n"
	                 "accept:  application/json \r\n\r\nGET / HTTP/1.1\r\n";
	size_t whole = strstr(ok, "\r\n\r\n") + 4 - ok;

	for (size_t n = 0; n < whole; n++)
		cr_assert_eq(mmds_http_parse(ok, n, &r), 0, "at %zu", n);
	cr_assert_eq(mmds_http_parse(ok, strlen(ok), &r), 1);
	cr_assert_eq(r.total, whole);
	cr_assert_str_eq(r.method, "GET");
	cr_assert_eq(r.uri_len, 7);
	cr_assert(!memcmp(r.uri, "/latest", 7));
	cr_assert_eq(r.fmt, MMDS_FMT_JSON);

	static const char *const bad[] = {
	        "GET /\r\n\r\n",
	        "GET / HTTP/2.0\r\n\r\n",
	        " / HTTP/1.1\r\n\r\n",
	        "GET  HTTP/1.1\r\n\r\n",
	        "GETTINGLONG / HTTP/1.1\r\n\r\n",
	        "PUT / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_expect_eq(mmds_http_parse(bad[i], strlen(bad[i]), &r), -EINVAL, "%s", bad[i]);

	char *big = malloc(MMDS_HTTP_MAX_REQUEST);
	memset(big, 'a', MMDS_HTTP_MAX_REQUEST);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	cr_expect_eq(mmds_http_parse(big, MMDS_HTTP_MAX_REQUEST, &r), -E2BIG);
	cr_expect_eq(mmds_http_parse(big, 100, &r), 0);
	free(big);
}

Test(mmds_http, v1_gets)
{
	expect_answer("GET /latest/meta-data HTTP/1.1\r\n\r\n", "HTTP/1.1 200", "id\nn");
	expect_answer("GET /latest/meta-data/ HTTP/1.1\r\nAccept: application/json\r\n\r\n",
	              "HTTP/1.1 200", "{\"id\":\"i-1\",\"n\":5}");
	cr_assert(strstr(resp, "Content-Type: application/json\r\n"));
	cr_assert(strstr(resp, "Content-Length: 18\r\n"));
	expect_answer("GET //latest//meta-data/id HTTP/1.0\r\nAccept: */*\r\n\r\n", "HTTP/1.1 200",
	              "i-1");
	expect_answer("GET /latest/x HTTP/1.1\r\n\r\n", "HTTP/1.1 404",
	              "Resource not found: /latest/x.");
	expect_answer("GET /latest/meta-data/n HTTP/1.1\r\n\r\n", "HTTP/1.1 501",
	              "Cannot retrieve value. The value has an unsupported type.");
	expect_answer("POST / HTTP/1.1\r\n\r\n", "HTTP/1.1 405", "Not allowed HTTP method.");
	cr_assert(strstr(resp, "Allow: GET, PUT\r\n"));
	/* V1 takes a token it does not need, valid or not */
	expect_answer("GET /latest/meta-data/id HTTP/1.1\r\nX-metadata-token: nope\r\n\r\n",
	              "HTTP/1.1 200", "i-1");
	/* imds_compat: text whatever the guest accepts */
	mmds_configure(&m, MMDS_V1, true);
	expect_answer("GET /latest/meta-data HTTP/1.1\r\nAccept: application/json\r\n\r\n",
	              "HTTP/1.1 200", "id\nn");
	cr_assert(strstr(resp, "Content-Type: text/plain\r\n"));
}

Test(mmds_http, v2_tokens)
{
	char req[256];

	mmds_configure(&m, MMDS_V2, false);
	expect_answer("GET /latest/meta-data/id HTTP/1.1\r\n\r\n", "HTTP/1.1 401",
	              "No MMDS token provided. Use `X-metadata-token` or "
	              "`X-aws-ec2-metadata-token` header to specify the session token.");
	expect_answer("PUT /latest/api/token HTTP/1.1\r\n\r\n", "HTTP/1.1 400",
	              "Token time to live value not found. Use `X-metadata-token-ttl-seconds` or "
	              "`X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's "
	              "lifetime.");
	expect_answer("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 0\r\n\r\n",
	              "HTTP/1.1 400",
	              "Invalid time to live value provided for token: 0. Please provide a value "
	              "between 1 and 21600.");
	expect_answer("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 9x\r\n\r\n",
	              "HTTP/1.1 400", "Invalid value for the token's TTL.");
	expect_answer("PUT /latest/api/token HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n"
	              "X-metadata-token-ttl-seconds: 60\r\n\r\n",
	              "HTTP/1.1 400", "Invalid header: X-Forwarded-For.");
	expect_answer("PUT /latest/api/tokens HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n",
	              "HTTP/1.1 404", "Resource not found: /latest/api/tokens.");

	ask("PUT //latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n");
	cr_assert(!strncmp(resp, "HTTP/1.1 200", 12), "%s", resp);
	cr_assert(strstr(resp, "X-metadata-token-ttl-seconds: 60\r\n"));
	const char *tok = strstr(resp, "\r\n\r\n") + 4;
	cr_assert_eq(strlen(tok), MMDS_TOKEN_MAX);
	snprintf(req, sizeof(req),
	         "GET /latest/meta-data/id HTTP/1.1\r\nX-metadata-token: %s\r\n\r\n", tok);
	expect_answer(req, "HTTP/1.1 200", "i-1");
	req[strstr(req, "token: ") - req + 7] ^= 1; /* one character off */
	expect_answer(req, "HTTP/1.1 401", "MMDS token not valid.");
}

Test(mmds_http, token_flood_revokes_nothing_and_expiry_holds)
{
	char tok[MMDS_TOKEN_MAX + 1], first[MMDS_TOKEN_MAX + 1], forged[MMDS_TOKEN_MAX + 1];

	cr_assert_eq(mmds_token_new(&m, 60, first), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(mmds_token_new(&m, 600, tok), 0);
	/* nothing is kept per token: another process's token outlives a flood */
	cr_assert(mmds_token_valid(&m, tok, strlen(tok)));
	cr_assert(mmds_token_valid(&m, first, strlen(first)));
	cr_assert_not(mmds_token_valid(&m, tok, strlen(tok) - 1));
	cr_assert_not(mmds_token_valid(&m, "", 0));
	/* a later expiry written into a token breaks its MAC; so does any digit of the MAC */
	memcpy(forged, first, sizeof(forged));
	forged[8] = forged[8] == 'f' ? 'e' : 'f';
	cr_assert_not(mmds_token_valid(&m, forged, strlen(forged)));
	memcpy(forged, first, sizeof(forged));
	forged[31] = forged[31] == '0' ? '1' : '0';
	cr_assert_not(mmds_token_valid(&m, forged, strlen(forged)));
	memcpy(forged, first, sizeof(forged));
	forged[0] = 'G';
	cr_assert_not(mmds_token_valid(&m, forged, strlen(forged)));
	/* another store (another kiln) does not take this one's tokens */
	struct mmds other;
	cr_assert_eq(mmds_init(&other, 0), 0);
	cr_assert_not(mmds_token_valid(&other, first, strlen(first)));
	mmds_destroy(&other);

	/* a 1 s token is gone after 1 s */
	mmds_destroy(&m);
	cr_assert_eq(mmds_init(&m, 0), 0);
	cr_assert_eq(mmds_token_new(&m, 1, tok), 0);
	cr_assert(mmds_token_valid(&m, tok, strlen(tok)));
	usleep(1100 * 1000);
	cr_assert_not(mmds_token_valid(&m, tok, strlen(tok)));
}

/* an Ethernet/IPv4 ARP request from 06:00:ac:10:00:02 (172.16.0.2) for `tpa` */
static size_t arp_request(uint8_t *f, uint32_t tpa)
{
	static const uint8_t head[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 6,    0, 0xac, 0x10,
	                               0,    2,    0x08, 0x06, 0,    1,    0x08, 0, 6,    4,
	                               0,    1,    6,    0,    0xac, 0x10, 0,    2, 172,  16,
	                               0,    2,    0,    0,    0,    0,    0,    0};
	memcpy(f, head, sizeof(head));
	f[38] = (uint8_t)(tpa >> 24);
	f[39] = (uint8_t)(tpa >> 16);
	f[40] = (uint8_t)(tpa >> 8);
	f[41] = (uint8_t)tpa;
	return 42;
}

Test(mmds_http, frames_for_the_mmds_and_arp)
{
	uint8_t f[64] = {0}, out[64];
	size_t n = arp_request(f, MMDS_DEFAULT_IPV4);

	cr_assert(mmds_frame_is_mmds(f, n, MMDS_DEFAULT_IPV4));
	cr_assert_not(mmds_frame_is_mmds(f, n - 1, MMDS_DEFAULT_IPV4));
	cr_assert_not(mmds_frame_is_mmds(f, n, 0xa9fe0102));
	cr_assert_eq(mmds_arp_reply(f, n, MMDS_DEFAULT_IPV4, mmds_default_mac, out, sizeof(out)),
	             42);
	static const uint8_t want[42] = {
	        6,   0,   0xac, 0x10, 0, 2, 6,    1,    0x23, 0x45, 0x67, 1,    0x08, 0x06,
	        0,   1,   0x08, 0,    6, 4, 0,    2,    6,    1,    0x23, 0x45, 0x67, 1,
	        169, 254, 169,  254,  6, 0, 0xac, 0x10, 0,    2,    172,  16,   0,    2};
	cr_assert_arr_eq(out, want, 42);
	cr_assert_eq(mmds_arp_reply(f, n, MMDS_DEFAULT_IPV4, mmds_default_mac, out, 41), -ENOSPC);
	f[21] = 2; /* a reply, not a request: the MMDS's still, but not answered */
	cr_assert(mmds_frame_is_mmds(f, n, MMDS_DEFAULT_IPV4));
	cr_assert_eq(mmds_arp_reply(f, n, MMDS_DEFAULT_IPV4, mmds_default_mac, out, 64), -EINVAL);

	/* IPv4: any protocol to the address; too short or another address is not */
	memset(f, 0, sizeof(f));
	f[12] = 0x08;
	f[14] = 0x45;
	memcpy(f + 30, (uint8_t[]){169, 254, 169, 254}, 4);
	cr_assert(mmds_frame_is_mmds(f, 34, MMDS_DEFAULT_IPV4));
	cr_assert_not(mmds_frame_is_mmds(f, 33, MMDS_DEFAULT_IPV4));
	f[33] = 1;
	cr_assert_not(mmds_frame_is_mmds(f, 34, MMDS_DEFAULT_IPV4));
	f[12] = 0x86; /* IPv6 */
	f[13] = 0xdd;
	cr_assert_not(mmds_frame_is_mmds(f, 64, MMDS_DEFAULT_IPV4));
	cr_assert_not(mmds_frame_is_mmds(f, 3, MMDS_DEFAULT_IPV4));
}
