// SPDX-License-Identifier: Apache-2.0
/*
 * mmds/token.c: MMDS V2 session tokens, kept nowhere. Like Firecracker's
 * (which seals each token's expiry with AES-GCM), a token carries its own
 * expiry and a keyed MAC over it, so checking one needs only the store's
 * secret key: nothing is stored per token, a guest asking for tokens
 * without end grows nothing, and no request can push out a token another
 * process of the guest holds (a table of tokens had to evict one).
 *
 * A token is 32 hex digits: the expiry (CLOCK_MONOTONIC ns, 8 bytes big
 * endian) then SipHash-2-4 (Aumasson and Bernstein, 2012) of those 8 bytes
 * under the store's 128-bit random key, 8 bytes little endian. The key is
 * drawn at the store's first token and never leaves kiln.
 */
#include "mmds/mmds_int.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

/* one SipRound over the state v[0..3] */
static void sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13) ^ v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17) ^ v[2];
	v[2] = rotl(v[2], 32);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

/* SipHash-2-4 of the 8-byte message `msg` under `key` (the paper's s2) */
static uint64_t siphash24_8(const uint8_t key[16], const uint8_t msg[8])
{
	uint64_t k0 = le64(key), k1 = le64(key + 8), m = le64(msg);
	uint64_t v[4] = {k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
	                 k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull};

	v[3] ^= m; /* the one 8-byte block: c = 2 rounds */
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
	uint64_t b = (uint64_t)8 << 56; /* the last block: the length, no bytes left */
	v[3] ^= b;
	sip_round(v);
	sip_round(v);
	v[0] ^= b;
	v[2] ^= 0xff; /* finalisation: d = 4 rounds */
	for (int i = 0; i < 4; i++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* the MAC of the 8 expiry bytes; false when the key could not be drawn */
static bool token_mac(struct mmds *m, const uint8_t expiry[8], uint8_t mac[8])
{
	pthread_mutex_lock(&m->lock);
	if (!m->token_key_set &&
	    getrandom(m->token_key, sizeof(m->token_key), 0) == (ssize_t)sizeof(m->token_key))
		m->token_key_set = true;
	bool ok = m->token_key_set;
	uint64_t h = ok ? siphash24_8(m->token_key, expiry) : 0;
	pthread_mutex_unlock(&m->lock);
	for (int i = 0; i < 8; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	return ok;
}

int mmds_token_new(struct mmds *m, uint32_t ttl, char tok[MMDS_TOKEN_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[MMDS_TOKEN_MAX / 2];
	uint64_t expiry = now_ns() + (uint64_t)ttl * 1000000000ull;

	for (int i = 0; i < 8; i++)
		raw[i] = (uint8_t)(expiry >> (56 - 8 * i));
	if (!token_mac(m, raw, raw + 8))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++) {
		tok[2 * i] = hex[raw[i] >> 4];
		tok[2 * i + 1] = hex[raw[i] & 15];
	}
	tok[MMDS_TOKEN_MAX] = '\0';
	return 0;
}

/* a lower-case hex digit's value, or -1 */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool mmds_token_valid(struct mmds *m, const char *tok, size_t len)
{
	uint8_t raw[MMDS_TOKEN_MAX / 2], mac[8], diff = 0;
	uint64_t expiry = 0;

	if (len != MMDS_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < sizeof(raw); i++) {
		int hi = hexval(tok[2 * i]), lo = hexval(tok[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	for (int i = 0; i < 8; i++)
		expiry = expiry << 8 | raw[i];
	if (!token_mac(m, raw, mac))
		return false;
	for (int i = 0; i < 8; i++) /* the same time for any guess of the MAC */
		diff |= (uint8_t)(mac[i] ^ raw[8 + i]);
	return diff == 0 && expiry > now_ns();
}
