// SPDX-License-Identifier: Apache-2.0
/*
 * mmds/frame.c: the Ethernet frames of the MMDS's own small network stack
 * (Firecracker's mmds/ns.rs and dumbo/pdu): which frames a guest sends to
 * the MMDS address (is_mmds_frame: an ARP whose target protocol address it
 * is, or any IPv4 packet to it; they never reach the tap), and the ARP
 * reply that tells the guest the MMDS's MAC (RFC 826). Every offset is
 * checked against the frame's length; nothing else in it is trusted.
 */
#include "mmds/mmds_int.h"

#include <errno.h>
#include <string.h>

#define ETH_HDR        14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define ARP_LEN        28 /* Ethernet/IPv4 ARP (RFC 826) */

const uint8_t mmds_default_mac[6] = {0x06, 0x01, 0x23, 0x45, 0x67, 0x01};

bool mmds_frame_is_mmds(const uint8_t *f, size_t len, uint32_t ip)
{
	if (len < ETH_HDR)
		return false;
	switch (mmds_be16(f + 12)) {
	case ETHERTYPE_ARP: /* the target protocol address, as test_speculative_tpa */
		return len >= ETH_HDR + ARP_LEN && mmds_be32(f + ETH_HDR + 24) == ip;
	case ETHERTYPE_IPV4: /* the destination address, as test_speculative_dst_addr */
		return len >= ETH_HDR + 20 && mmds_be32(f + ETH_HDR + 16) == ip;
	default:
		return false;
	}
}

int mmds_arp_reply(const uint8_t *f, size_t len, uint32_t ip, const uint8_t mac[6], uint8_t *out,
                   size_t size)
{
	const uint8_t *a = f + ETH_HDR;
	uint8_t *r = out + ETH_HDR;

	if (len < ETH_HDR + ARP_LEN || mmds_be16(f + 12) != ETHERTYPE_ARP)
		return -EINVAL;
	/* an Ethernet/IPv4 request for the MMDS address (htype 1, ptype IPv4, 6, 4, op 1) */
	if (mmds_be16(a) != 1 || mmds_be16(a + 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 ||
	    mmds_be16(a + 6) != 1 || mmds_be32(a + 24) != ip)
		return -EINVAL;
	if (size < ETH_HDR + ARP_LEN)
		return -ENOSPC;
	memcpy(out, a + 8, 6); /* to the sender's hardware address */
	memcpy(out + 6, mac, 6);
	mmds_put16(out + 12, ETHERTYPE_ARP);
	mmds_put16(r, 1);
	mmds_put16(r + 2, ETHERTYPE_IPV4);
	r[4] = 6;
	r[5] = 4;
	mmds_put16(r + 6, 2); /* reply */
	memcpy(r + 8, mac, 6);
	memcpy(r + 14, a + 24, 4); /* the MMDS address */
	memcpy(r + 18, a + 8, 10); /* the asker's MAC and address */
	return ETH_HDR + ARP_LEN;
}
