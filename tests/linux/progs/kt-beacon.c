// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-beacon.c: kt-beacon IFACE ADDR/PREFIX PEER MS LIMIT
 *
 * Brings IFACE up with ADDR/PREFIX, then LIMIT times, one every MS
 * milliseconds of the guest's monotonic clock, sends one ICMP echo request
 * to PEER without waiting for a reply and says "kt-beacon: N". Each is a
 * frame on IFACE (an ARP request first while PEER is unresolved), so the
 * host sees the guest transmit on whatever tap its network device is
 * attached to: clones of one snapshot each on their own tap. Exits 0 after
 * the last (1 on a failure, 2 for bad arguments).
 */
#include "kt.h"
#include "kt_net.h"

int main(int argc, char **argv)
{
	unsigned long long ms, limit;
	struct in_addr peer;

	if (argc != 6 || inet_pton(AF_INET, argv[3], &peer) != 1 ||
	    kt_parse_u64(argv[4], 3600000, &ms) || kt_parse_u64(argv[5], UINT32_MAX, &limit) ||
	    !ms) {
		kt_say("usage: kt-beacon IFACE ADDR/PREFIX PEER MS LIMIT");
		return 2;
	}
	if (kt_iface_up(argv[1], argv[2]) < 0) {
		kt_say("kt-beacon: bring the interface up: %s", strerror(errno));
		return 1;
	}
	int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (s < 0) {
		kt_say("kt-beacon: socket: %s", strerror(errno));
		return 1;
	}
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = peer};
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (unsigned long long n = 1; n <= limit; n++) {
		uint8_t pkt[64] = {0};
		struct icmphdr *h = (struct icmphdr *)pkt;
		h->type = ICMP_ECHO;
		h->un.echo.id = htons((uint16_t)getpid());
		h->un.echo.sequence = htons((uint16_t)n);
		h->checksum = kt_ip_checksum(pkt, sizeof(pkt));
		/* an unresolved peer queues the packet behind an ARP request: not an error */
		sendto(s, pkt, sizeof(pkt), MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
		kt_say("kt-beacon: %llu", n);
		next.tv_nsec += (long)(ms % 1000) * 1000000;
		next.tv_sec += (time_t)(ms / 1000) + next.tv_nsec / 1000000000;
		next.tv_nsec %= 1000000000;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	close(s);
	return 0;
}
