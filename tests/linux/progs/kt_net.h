/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/linux/progs/kt_net.h: the network steps the guest programs share,
 * header only: a decimal argument, an interface brought up with an IPv4
 * address (the ioctls ifconfig uses), and ICMP echo requests on a raw
 * socket (no busybox ping needed).
 */
#ifndef KILN_KT_NET_H
#define KILN_KT_NET_H

#include "kt.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/ioctl.h>

#define KT_PING_WAIT_MS 60000 /* a ping reply; an emulated CPU is slow */

/* s as a decimal of at most max: 0, or -1 */
static inline int kt_parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end || end == s || *out > max ? -1 : 0;
}

/* IFACE up with ADDR/PREFIX (ioctls, as ifconfig does): 0 or -1 with errno */
static inline int kt_iface_up(const char *name, const char *cidr)
{
	char addr[32];
	const char *slash = strchr(cidr, '/');
	unsigned long long prefix;
	if (!slash || (size_t)(slash - cidr) >= sizeof(addr) ||
	    kt_parse_u64(slash + 1, 32, &prefix)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - cidr), cidr);

	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	int ret = -1;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) {
		errno = EINVAL;
		goto out;
	}
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
		goto out;
	sin->sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto out;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	ret = ioctl(s, SIOCSIFFLAGS, &ifr);
out:
	close(s);
	return ret;
}

static inline uint16_t kt_ip_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/*
 * `count` echo requests to `peer`, one at a time, each waited for up to
 * KT_PING_WAIT_MS: how many were answered, or -1 with errno
 */
static inline int kt_ping(const struct in_addr *peer, int count)
{
	int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (s < 0)
		return -1;
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = *peer};
	int answered = 0;
	for (uint16_t seq = 1; seq <= count; seq++) {
		uint8_t pkt[64] = {0};
		struct icmphdr *h = (struct icmphdr *)pkt;
		h->type = ICMP_ECHO;
		h->un.echo.id = htons((uint16_t)getpid());
		h->un.echo.sequence = htons(seq);
		memcpy(pkt + sizeof(*h), "kiln", 4);
		h->checksum = kt_ip_checksum(pkt, sizeof(pkt));
		if (sendto(s, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
			close(s);
			return -1;
		}
		for (uint64_t end = kt_now_ms() + KT_PING_WAIT_MS; kt_now_ms() < end;) {
			struct pollfd pfd = {.fd = s, .events = POLLIN};
			if (poll(&pfd, 1, 1000) <= 0)
				continue;
			uint8_t in[1500];
			ssize_t n = recv(s, in, sizeof(in), 0);
			if (n < (ssize_t)sizeof(struct iphdr))
				continue;
			const struct iphdr *ip = (const struct iphdr *)in;
			size_t hl = (size_t)ip->ihl * 4;
			if ((size_t)n < hl + sizeof(struct icmphdr))
				continue;
			const struct icmphdr *r = (const struct icmphdr *)(in + hl);
			if (ip->saddr == peer->s_addr && r->type == ICMP_ECHOREPLY &&
			    r->un.echo.id == h->un.echo.id &&
			    r->un.echo.sequence == h->un.echo.sequence) {
				answered++;
				break;
			}
		}
	}
	close(s);
	return answered;
}

#endif
