/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Frames a guest sends to the MMDS, for the unit tests of mmds/ns.c and of
 * virtio/net_mmds.c.
 */
#ifndef KILN_TEST_MMDS_FRAMES_H
#define KILN_TEST_MMDS_FRAMES_H

#include "mmds/mmds_int.h"

#include <string.h>

/* RFC 826: `mac` at `spa` asks who has `tpa`; 42 bytes into f */
static inline size_t mmds_arp_request(uint8_t *f, const uint8_t mac[6], uint32_t spa, uint32_t tpa)
{
	memset(f, 0, 42);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	mmds_put16(f + 12, 0x0806);
	mmds_put16(f + 14, 1);
	mmds_put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	mmds_put16(f + 20, 1);
	memcpy(f + 22, mac, 6);
	mmds_put32(f + 28, spa);
	mmds_put32(f + 38, tpa);
	return 42;
}

#endif
