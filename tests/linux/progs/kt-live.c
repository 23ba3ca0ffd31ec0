// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-live.c: a guest busy in three ways while it is
 * moved between hosts (live migration).
 *
 *   kt-live IFACE ADDR/PREFIX PEER TCP_PORT SEED BYTES COUNT_MS FILE
 *
 * Brings IFACE up with ADDR/PREFIX, pings PEER three times ("kt-live:
 * pings=N/3"), connects to PEER:TCP_PORT ("kt-live: tcp connected"), then
 * runs three things at once:
 *   - a child runs kt_exchange (kt.h) on the connection with SEED and
 *     BYTES; the host takes part only when it wants to (after the moves),
 *     then "kt-live: tcp sent=N fnv1a=HEX got=M fnv1a=HEX" and three more
 *     pings, "kt-live: pings after=N/3";
 *   - a child appends 4 KiB pieces of the xorshift64 stream seeded with
 *     SEED + 2 to FILE, each made durable (fdatasync), one every 50 ms up
 *     to FILE_MAX; when told to stop (SIGTERM) it syncs FILE and its
 *     folder, reads FILE back and says "kt-live: file bytes=N fnv1a=HEX ok"
 *     (or "MISMATCH" when the read-back differs from what it wrote);
 *   - this process counts as kt-count does ("kt-count: N after D ms"
 *     every COUNT_MS of the guest's monotonic clock) until the connection's
 *     child is done, then stops the writer.
 * Exits 0 when all three succeeded, 1 otherwise (with the step and
 * errno's text), 2 for bad arguments.
 */
#include "kt.h"
#include "kt_net.h"

#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>

#define PIECE    4096
#define FILE_MAX (4u << 20)
#define PIECE_MS 50

static int fail(const char *step)
{
	kt_say("kt-live: %s: %s", step, strerror(errno));
	return 1;
}

static int tcp_side(int fd, const struct in_addr *peer, uint64_t seed, unsigned long long bytes)
{
	struct kt_flow f;
	const char *step;
	if (kt_exchange(fd, seed, bytes, false, &f, &step) < 0)
		return fail(step);
	close(fd);
	kt_say("kt-live: tcp sent=%llu fnv1a=%016llx got=%llu fnv1a=%016llx", f.sent,
	       (unsigned long long)f.sent_fnv, f.got, (unsigned long long)f.got_fnv);
	int answered = kt_ping(peer, 3);
	if (answered < 0)
		return fail("ping after");
	kt_say("kt-live: pings after=%d/3", answered);
	return answered == 3 ? 0 : 1;
}

static volatile sig_atomic_t stop_writing;

static void on_term(int sig)
{
	(void)sig;
	stop_writing = 1;
}

/* the writer's end: FILE and its folder durable, then read back and summed */
static int check_file(const char *path, int fd, size_t size, uint64_t want)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fsync(fd) < 0 || dfd < 0 || fsync(dfd) < 0)
		return fail("sync the file");
	close(dfd);
	uint8_t buf[PIECE];
	uint64_t h = KT_FNV_INIT;
	size_t got = 0;
	ssize_t n;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return fail("seek");
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		h = kt_fnv1a(h, buf, (size_t)n);
		got += (size_t)n;
	}
	if (n < 0)
		return fail("read the file back");
	close(fd);
	bool ok = got == size && h == want;
	kt_say("kt-live: file bytes=%zu fnv1a=%016llx %s", got, (unsigned long long)h,
	       ok ? "ok" : "MISMATCH");
	return ok ? 0 : 1;
}

/* SIGTERM (on_term, set before the fork) ends the writing */
static int writer(const char *path, uint64_t seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail("open the file");
	uint64_t state = seed | 1, h = KT_FNV_INIT;
	uint8_t piece[PIECE];
	size_t size = 0;
	while (!stop_writing) {
		if (size < FILE_MAX) {
			for (size_t i = 0; i < PIECE; i++)
				piece[i] = (uint8_t)kt_xorshift(&state);
			for (size_t off = 0; off < PIECE;) {
				ssize_t w = write(fd, piece + off, PIECE - off);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					return fail("write the file");
				off += (size_t)w;
			}
			if (fdatasync(fd) < 0 && errno != EINTR)
				return fail("fdatasync");
			h = kt_fnv1a(h, piece, PIECE);
			size += PIECE;
		}
		struct timespec ts = {0, PIECE_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	return check_file(path, fd, size, h);
}

static int wait_child(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* kt-count's lines every `ms` until the child `tcp` has ended; its status */
static int count_until(pid_t tcp, unsigned long long ms)
{
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	uint64_t last = kt_now_ms();
	for (unsigned long n = 1;; n++) {
		kt_tick(&next, ms);
		uint64_t now = kt_now_ms();
		kt_say("kt-count: %lu after %llu ms", n, (unsigned long long)(now - last));
		last = now;
		int st;
		pid_t done = waitpid(tcp, &st, WNOHANG);
		if (done == tcp)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
		if (done < 0 && errno != EINTR)
			return 1;
	}
}

int main(int argc, char **argv)
{
	unsigned long long port, seed, bytes, ms;
	struct sockaddr_in peer = {.sin_family = AF_INET};

	if (argc != 9 || kt_parse_u64(argv[4], 65535, &port) ||
	    kt_parse_u64(argv[5], UINT64_MAX - 2, &seed) ||
	    kt_parse_u64(argv[6], UINT64_MAX, &bytes) || kt_parse_u64(argv[7], 60000, &ms) || !ms ||
	    inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1) {
		kt_say("usage: kt-live IFACE ADDR/PREFIX PEER TCP_PORT SEED BYTES COUNT_MS FILE");
		return 2;
	}
	peer.sin_port = htons((uint16_t)port);
	if (kt_iface_up(argv[1], argv[2]) < 0)
		return fail("bring the interface up");
	int answered = kt_ping(&peer.sin_addr, 3);
	if (answered < 0)
		return fail("ping");
	kt_say("kt-live: pings=%d/3", answered);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		return fail("tcp connect");
	kt_say("kt-live: tcp connected");

	pid_t tcp = fork();
	if (tcp < 0)
		return fail("fork");
	if (tcp == 0)
		_exit(tcp_side(fd, &peer.sin_addr, seed, bytes));
	close(fd);
	signal(SIGTERM, on_term);
	pid_t wr = fork();
	if (wr < 0)
		return fail("fork");
	if (wr == 0)
		_exit(writer(argv[8], seed + 2));

	int ret = count_until(tcp, ms);
	kill(wr, SIGTERM);
	int wret = wait_child(wr);
	return ret || wret ? 1 : 0;
}
