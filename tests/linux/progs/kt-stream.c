// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-stream.c: one stream each way over TCP or vsock,
 * checksummed on both ends.
 *
 *   kt-stream tcp IFACE ADDR/PREFIX PEER PORT SEED BYTES
 *       brings IFACE up with ADDR/PREFIX, sends three ICMP echo requests
 *       to PEER and waits for the replies, then connects to PEER:PORT;
 *   kt-stream vsock-connect PORT SEED BYTES
 *       connects to the host (CID 2) on vsock PORT;
 *   kt-stream vsock-listen PORT SEED BYTES
 *       listens on vsock PORT, says so, and takes one connection;
 *   several of these joined by "+" run one after the other.
 *
 * On each connection kt_exchange (kt.h) sends BYTES bytes of the xorshift64
 * stream seeded with SEED and reads the peer's to its end, both at once.
 * It reports, through kt_say,
 *   kt-stream: pings=3/3                                       (tcp only)
 *   kt-stream: listening on vsock port P                 (vsock-listen only)
 *   kt-stream: KIND took T ms
 *   kt-stream: KIND sent=N fnv1a=HEX got=M fnv1a=HEX
 * with the milliseconds from connected to done and the FNV-1a of each
 * direction, and exits 0 after the last; the first failure is reported with the
 * step and errno's text, exit status 1 (2 for bad arguments).
 */
#define _GNU_SOURCE /* accept4 */
#include "kt.h"
#include "kt_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#define PINGS    3
#define HOST_CID 2

static int fail(const char *step)
{
	kt_say("kt-stream: %s: %s", step, strerror(errno));
	return 1;
}

static int usage(void)
{
	kt_say("usage: kt-stream SPEC [+ SPEC ...]; SPEC: tcp IFACE ADDR/PREFIX PEER PORT SEED "
	       "BYTES | vsock-connect PORT SEED BYTES | vsock-listen PORT SEED BYTES");
	return 2;
}

/* one SPEC (argv[0] is its kind): the connection's exit status */
static int run_spec(int argc, char **argv)
{
	unsigned long long port, seed, bytes;
	int fd;

	if (argc == 7 && !strcmp(argv[0], "tcp")) {
		struct sockaddr_in peer = {.sin_family = AF_INET};
		if (kt_parse_u64(argv[4], 65535, &port) ||
		    kt_parse_u64(argv[5], UINT64_MAX, &seed) ||
		    kt_parse_u64(argv[6], UINT64_MAX, &bytes) ||
		    inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1)
			return usage();
		peer.sin_port = htons((uint16_t)port);
		if (kt_iface_up(argv[1], argv[2]) < 0)
			return fail("bring the interface up");
		int answered = kt_ping(&peer.sin_addr, PINGS);
		if (answered < 0)
			return fail("ping");
		kt_say("kt-stream: pings=%d/%d", answered, PINGS);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
			return fail("tcp connect");
	} else if (argc == 4 && !strncmp(argv[0], "vsock-", 6)) {
		if (kt_parse_u64(argv[1], UINT32_MAX, &port) ||
		    kt_parse_u64(argv[2], UINT64_MAX, &seed) ||
		    kt_parse_u64(argv[3], UINT64_MAX, &bytes))
			return usage();
		struct sockaddr_vm vm = {.svm_family = AF_VSOCK, .svm_port = (unsigned)port};
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fail("vsock socket");
		if (!strcmp(argv[0], "vsock-connect")) {
			vm.svm_cid = HOST_CID;
			if (connect(fd, (struct sockaddr *)&vm, sizeof(vm)) < 0)
				return fail("vsock connect");
		} else if (!strcmp(argv[0], "vsock-listen")) {
			vm.svm_cid = VMADDR_CID_ANY;
			if (bind(fd, (struct sockaddr *)&vm, sizeof(vm)) < 0 || listen(fd, 1) < 0)
				return fail("vsock listen");
			kt_say("kt-stream: listening on vsock port %llu", port);
			int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				return fail("vsock accept");
			close(fd);
			fd = c;
		} else {
			return usage();
		}
	} else {
		return usage();
	}
	struct kt_flow f;
	const char *step;
	if (kt_exchange(fd, seed, bytes, false, &f, &step) < 0)
		return fail(step);
	close(fd);
	/* the time first: a reader waiting for the sums line then has both whole */
	kt_say("kt-stream: %s took %llu ms", argv[0], (unsigned long long)f.ms);
	kt_say("kt-stream: %s sent=%llu fnv1a=%016llx got=%llu fnv1a=%016llx", argv[0], f.sent,
	       (unsigned long long)f.sent_fnv, f.got, (unsigned long long)f.got_fnv);
	return 0;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc;) {
		int j = i;
		while (j < argc && strcmp(argv[j], "+"))
			j++;
		int ret = run_spec(j - i, argv + i);
		if (ret)
			return ret;
		i = j + 1;
	}
	return argc > 1 ? 0 : usage();
}
