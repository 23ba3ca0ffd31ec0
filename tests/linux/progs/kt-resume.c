// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-resume.c: connections that live through a snapshot.
 *
 *   kt-resume IFACE ADDR/PREFIX PEER TCP_PORT VSOCK_PORT SEED BYTES
 *
 * Brings IFACE up with ADDR/PREFIX, pings PEER three times, then
 *   - connects to PEER:TCP_PORT and says "kt-resume: tcp connected"; a
 *     child process runs kt_exchange (kt.h) on it with SEED and BYTES
 *     (the host side may wait a long time before it takes part, e.g. until
 *     the VM was snapshotted and restored elsewhere), reports the sums as
 *     "kt-resume: tcp sent=N fnv1a=HEX got=M fnv1a=HEX", and pings PEER
 *     three times again ("kt-resume: pings after=3/3");
 *   - connects to the host (CID 2) on vsock VSOCK_PORT, says "kt-resume:
 *     vsock connected" and reads until the connection ends. A restored
 *     VM's device resets the vsock transport, which ends it with an error
 *     ("kt-resume: vsock ended: TEXT"); it then connects again ("kt-resume:
 *     vsock connected again") and runs kt_exchange with SEED + 1 and BYTES
 *     ("kt-resume: vsock sent=... got=...").
 * Exits 0 once both are done, 1 on the first failure (reported with its
 * step and errno's text), 2 for bad arguments.
 */
#include "kt.h"
#include "kt_net.h"

#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/wait.h>

#define HOST_CID 2

static int fail(const char *step)
{
	kt_say("kt-resume: %s: %s", step, strerror(errno));
	return 1;
}

static int vsock_connect(unsigned port)
{
	struct sockaddr_vm vm = {.svm_family = AF_VSOCK, .svm_cid = HOST_CID, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&vm, sizeof(vm)) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* says what kt_exchange moved on fd, `kind` naming the connection */
static int exchange(const char *kind, int fd, uint64_t seed, unsigned long long bytes)
{
	struct kt_flow f;
	const char *step;
	if (kt_exchange(fd, seed, bytes, false, &f, &step) < 0)
		return fail(step);
	close(fd);
	kt_say("kt-resume: %s sent=%llu fnv1a=%016llx got=%llu fnv1a=%016llx", kind, f.sent,
	       (unsigned long long)f.sent_fnv, f.got, (unsigned long long)f.got_fnv);
	return 0;
}

static int tcp_side(int fd, const struct in_addr *peer, uint64_t seed, unsigned long long bytes)
{
	if (exchange("tcp", fd, seed, bytes))
		return 1;
	int answered = kt_ping(peer, 3);
	if (answered < 0)
		return fail("ping after");
	kt_say("kt-resume: pings after=%d/3", answered);
	return answered == 3 ? 0 : 1;
}

static int vsock_side(unsigned port, uint64_t seed, unsigned long long bytes)
{
	int fd = vsock_connect(port);
	if (fd < 0)
		return fail("vsock connect");
	kt_say("kt-resume: vsock connected");
	char buf[256];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		;
	kt_say("kt-resume: vsock ended: %s", n == 0 ? "end of stream" : strerror(errno));
	close(fd);
	if ((fd = vsock_connect(port)) < 0)
		return fail("vsock connect again");
	kt_say("kt-resume: vsock connected again");
	return exchange("vsock", fd, seed + 1, bytes);
}

int main(int argc, char **argv)
{
	unsigned long long tcp_port, vsock_port, seed, bytes;
	struct sockaddr_in peer = {.sin_family = AF_INET};

	if (argc != 8 || kt_parse_u64(argv[4], 65535, &tcp_port) ||
	    kt_parse_u64(argv[5], UINT32_MAX, &vsock_port) ||
	    kt_parse_u64(argv[6], UINT64_MAX - 1, &seed) ||
	    kt_parse_u64(argv[7], UINT64_MAX, &bytes) ||
	    inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1) {
		kt_say("usage: kt-resume IFACE ADDR/PREFIX PEER TCP_PORT VSOCK_PORT SEED BYTES");
		return 2;
	}
	peer.sin_port = htons((uint16_t)tcp_port);
	if (kt_iface_up(argv[1], argv[2]) < 0)
		return fail("bring the interface up");
	int answered = kt_ping(&peer.sin_addr, 3);
	if (answered < 0)
		return fail("ping");
	kt_say("kt-resume: pings=%d/3", answered);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		return fail("tcp connect");
	kt_say("kt-resume: tcp connected");
	pid_t child = fork();
	if (child < 0)
		return fail("fork");
	if (child == 0)
		_exit(tcp_side(fd, &peer.sin_addr, seed, bytes));
	close(fd);
	int ret = vsock_side((unsigned)vsock_port, seed, bytes);
	int st;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	return ret || !WIFEXITED(st) || WEXITSTATUS(st) ? 1 : 0;
}
