// SPDX-License-Identifier: Apache-2.0
/*
 * mmds/token.c: MMDS V2 session tokens. Firecracker seals each token's
 * expiry with AES-GCM and keeps nothing; kiln keeps a fixed table of
 * MMDS_TOKEN_SLOTS random tokens with their expiry instead, so a guest
 * that asks for tokens without end recycles the table and never grows
 * kiln's memory (the oldest-expiring token is the one that goes).
 */
#include "mmds/mmds_int.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

int mmds_token_new(struct mmds *m, uint32_t ttl, char tok[MMDS_TOKEN_MAX + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[MMDS_TOKEN_MAX / 2];
	uint64_t now = now_ns();
	struct mmds_token *slot;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	for (size_t i = 0; i < sizeof(rnd); i++) {
		tok[2 * i] = hex[rnd[i] >> 4];
		tok[2 * i + 1] = hex[rnd[i] & 15];
	}
	tok[MMDS_TOKEN_MAX] = '\0';
	pthread_mutex_lock(&m->lock);
	slot = &m->tokens[0];
	for (unsigned i = 0; i < MMDS_TOKEN_SLOTS; i++) {
		struct mmds_token *t = &m->tokens[i];
		if (t->expiry_ns <= now) { /* free or expired */
			slot = t;
			break;
		}
		if (t->expiry_ns < slot->expiry_ns)
			slot = t;
	}
	memcpy(slot->text, tok, MMDS_TOKEN_MAX);
	slot->expiry_ns = now + (uint64_t)ttl * 1000000000ull;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

bool mmds_token_valid(struct mmds *m, const char *tok, size_t len)
{
	uint64_t now = now_ns();
	bool ok = false;

	if (len != MMDS_TOKEN_MAX)
		return false;
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < MMDS_TOKEN_SLOTS; i++) {
		const struct mmds_token *t = &m->tokens[i];
		uint8_t diff = 0;
		for (size_t k = 0; k < MMDS_TOKEN_MAX; k++) /* the same time for any guess */
			diff |= (uint8_t)(t->text[k] ^ tok[k]);
		ok |= diff == 0 && t->expiry_ns > now;
	}
	pthread_mutex_unlock(&m->lock);
	return ok;
}
