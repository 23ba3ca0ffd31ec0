// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-vsock end to end: kiln boots the `vsock` test guest
 * (tests/guests/vsock.c) with a vsock device (guest_cid 3, uds_path in a
 * temporary directory), and a thread of this test is the host program,
 * with Firecracker's convention as tests/guests/tools/vsock_host.py:
 *   1. it listens on <uds_path>_1234; the guest connects to host port 1234,
 *      sends "kiln vsock guest <seed>\n" and vsock.bytes bytes (byte i =
 *      (i * 7 + seed) & 0xff); this side checks every byte and echoes it,
 *      the guest checks the echo;
 *   2. it connects to uds_path, says "CONNECT 1235", expects "OK <port>\n",
 *      sends its own bytes (byte i = (i * 3 + 5) & 0xff), reads the guest's
 *      echo and checks every byte, shuts down its sending side and waits for
 *      the end of the stream.
 * Also: a guest connecting where nothing listens is refused at once, and
 * uds_path is created, replaced when stale, refused when live, and removed
 * at exit.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define GUEST_PORT   1234 /* the host port the guest connects to */
#define GUEST_LISTEN 1235
#define WAIT_MS      60000

static struct kproc kp;
static char dir[64], uds[128], path_port[160];

static void setup(void)
{
	strcpy(dir, "/tmp/kiln-it-vsock-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	snprintf(path_port, sizeof(path_port), "%s_%u", uds, GUEST_PORT);
}

static void teardown(void)
{
	kh_kill(&kp);
	unlink(path_port);
	unlink(uds);
	rmdir(dir);
}

TestSuite(vsock, .init = setup, .fini = teardown, .timeout = 240);

struct host {
	uint32_t seed;
	uint64_t guest_bytes, host_bytes;
	int lfd; /* listening on <uds>_1234 */
	/* results */
	uint64_t echoed, got_back;
	uint32_t ok_port;
	char err[256];
};

static uint8_t guest_byte(const struct host *h, const char *greet, size_t glen, uint64_t i)
{
	return i < glen ? (uint8_t)greet[i] : (uint8_t)((i - glen) * 7 + h->seed);
}

static uint8_t host_byte(uint64_t i)
{
	return (uint8_t)(i * 3 + 5);
}

/* poll for `events` on fd up to WAIT_MS; false on timeout */
static bool wait_fd(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};
	return poll(&p, 1, WAIT_MS) == 1;
}

static bool send_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

/* checks bytes [at, at + n) of the guest's stream */
static bool check_guest_bytes(struct host *h, const uint8_t *b, uint64_t at, size_t n,
                              const char *greet, size_t glen)
{
	for (size_t k = 0; k < n; k++) {
		uint8_t want = guest_byte(h, greet, glen, at + k);
		if (b[k] != want) {
			snprintf(h->err, sizeof(h->err), "guest byte %llu is 0x%02x, not 0x%02x",
			         (unsigned long long)(at + k), b[k], want);
			return false;
		}
	}
	return true;
}

/*
 * Step 1: the guest's connection, checked byte by byte and echoed. This
 * side never stops reading while its echo waits: the guest reads its echo
 * only between its own sends, so an echo that blocked the reading would
 * close a circle of full buffers (guest -> kiln -> host -> kiln -> guest).
 */
static bool echo_guest(struct host *h)
{
	char greet[64];
	size_t glen = (size_t)snprintf(greet, sizeof(greet), "kiln vsock guest %u\n", h->seed);
	uint64_t total = glen + h->guest_bytes, sent = 0;
	bool eof = false;

	if (!wait_fd(h->lfd, POLLIN))
		return snprintf(h->err, sizeof(h->err), "the guest did not connect"), false;
	int fd = accept(h->lfd, NULL, NULL);
	if (fd < 0)
		return snprintf(h->err, sizeof(h->err), "accept: %s", strerror(errno)), false;
	uint8_t *buf = malloc(total + 1);
	cr_assert_not_null(buf);
	while (!h->err[0] && (!eof || sent < h->echoed)) {
		struct pollfd p = {
		        .fd = fd,
		        .events = (short)((eof ? 0 : POLLIN) | (sent < h->echoed ? POLLOUT : 0))};
		if (poll(&p, 1, WAIT_MS) != 1) {
			snprintf(h->err, sizeof(h->err), "stalled: got %llu, echoed %llu",
			         (unsigned long long)h->echoed, (unsigned long long)sent);
			break;
		}
		if (p.revents & (POLLOUT | POLLERR) && sent < h->echoed) {
			ssize_t w =
			        send(fd, buf + sent, h->echoed - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno != EAGAIN) {
				snprintf(h->err, sizeof(h->err), "echo: %s", strerror(errno));
				break;
			}
			sent += w > 0 ? (uint64_t)w : 0;
		}
		if (eof || !(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = read(fd, buf + h->echoed, total + 1 - h->echoed);
		if (n < 0) {
			snprintf(h->err, sizeof(h->err), "read: %s", strerror(errno));
			break;
		}
		eof = n == 0;
		if (check_guest_bytes(h, buf + h->echoed, h->echoed, (size_t)n, greet, glen))
			h->echoed += (uint64_t)n;
	}
	close(fd);
	free(buf);
	if (!h->err[0] && h->echoed != total)
		snprintf(h->err, sizeof(h->err), "the guest sent %llu bytes, not %llu",
		         (unsigned long long)h->echoed, (unsigned long long)total);
	return !h->err[0];
}

/* the "OK <port>\n" line, byte by byte so that no data is taken with it */
static bool read_ok(struct host *h, int fd)
{
	char line[32];
	size_t n = 0;
	while (n + 1 < sizeof(line)) {
		if (!wait_fd(fd, POLLIN) || read(fd, line + n, 1) != 1)
			break;
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	if (sscanf(line, "OK %u\n", &h->ok_port) != 1)
		return snprintf(h->err, sizeof(h->err), "CONNECT %u got \"%s\"", GUEST_LISTEN,
		                line),
		       false;
	return true;
}

/* step 2: the host's connection, sent and its echo checked */
static bool connect_guest(struct host *h)
{
	static uint8_t out[16384], in[65536];
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, uds);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(h->err, sizeof(h->err), "connect %s: %s", uds, strerror(errno));
		close(fd);
		return false;
	}
	char cmd[32];
	int cl = snprintf(cmd, sizeof(cmd), "CONNECT %u\n", GUEST_LISTEN);
	if (cl < 0 || !send_all(fd, (const uint8_t *)cmd, (size_t)cl) || !read_ok(h, fd)) {
		close(fd);
		return false;
	}
	uint64_t sent = 0;
	bool shut = false;
	while (!h->err[0]) {
		struct pollfd p = {.fd = fd,
		                   .events = POLLIN | (sent < h->host_bytes ? POLLOUT : 0)};
		if (poll(&p, 1, WAIT_MS) != 1) {
			snprintf(h->err, sizeof(h->err), "stalled: sent %llu, got back %llu",
			         (unsigned long long)sent, (unsigned long long)h->got_back);
			break;
		}
		if (p.revents & POLLOUT) {
			size_t n = sizeof(out);
			if (n > h->host_bytes - sent)
				n = (size_t)(h->host_bytes - sent);
			for (size_t k = 0; k < n; k++)
				out[k] = host_byte(sent + k);
			ssize_t w = send(fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno != EAGAIN) {
				snprintf(h->err, sizeof(h->err), "send: %s", strerror(errno));
				break;
			}
			sent += w > 0 ? (uint64_t)w : 0;
		}
		if (sent == h->host_bytes && !shut) {
			shutdown(fd, SHUT_WR); /* the guest reads EOF and ends its echo */
			shut = true;
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = read(fd, in, sizeof(in));
		if (n < 0) {
			snprintf(h->err, sizeof(h->err), "read: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break; /* the guest closed after its echo */
		for (ssize_t k = 0; k < n; k++) {
			if (in[k] != host_byte(h->got_back + (uint64_t)k)) {
				snprintf(h->err, sizeof(h->err),
				         "echo byte %llu is 0x%02x, not 0x%02x",
				         (unsigned long long)(h->got_back + (uint64_t)k), in[k],
				         host_byte(h->got_back + (uint64_t)k));
				break;
			}
		}
		h->got_back += (uint64_t)n;
	}
	close(fd);
	if (!h->err[0] && h->got_back != h->host_bytes)
		snprintf(h->err, sizeof(h->err), "got %llu bytes back, not %llu",
		         (unsigned long long)h->got_back, (unsigned long long)h->host_bytes);
	return !h->err[0];
}

static void *host_main(void *arg)
{
	struct host *h = arg;
	if (echo_guest(h))
		connect_guest(h);
	return NULL;
}

static int listen_at(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s: %s", path,
	             strerror(errno));
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

static char *vsock_config(const char *args)
{
	return kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	              "\"" KH_GUEST_ARGS " %s\"}, "
	              "\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}, "
	              "\"vsock\": {\"guest_cid\": 3, \"uds_path\": \"%s\"}}",
	              kh_guest("vsock"), args, uds);
}

/* boots the vsock guest against the host thread; both sides check */
static void both_ways(uint64_t guest_bytes, uint64_t host_bytes, uint32_t seed)
{
	struct host h = {.seed = seed, .guest_bytes = guest_bytes, .host_bytes = host_bytes};
	h.lfd = listen_at(path_port);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, host_main, &h), 0);
	char *args = kh_fmt("vsock.bytes=%llu vsock.seed=%u vsock.timeout_ms=30000",
	                    (unsigned long long)guest_bytes, seed);
	char *cfg = vsock_config(args);
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	free(args);
	int st = kh_wait_exit(&kp, 120000);
	pthread_join(t, NULL);
	close(h.lfd);
	cr_assert_eq(st, 0, "kiln exited with %d; output:\n%s", st, kp.out);
	cr_assert_eq(h.err[0], '\0', "host side: %s; kiln output:\n%s", h.err, kp.out);
	cr_assert(!strstr(kp.out, "FAILED"), "%s", kp.out);
	cr_assert(!strstr(kp.out, "Sanitizer") && !strstr(kp.out, "runtime error"), "%s", kp.out);
	char *want = kh_fmt("vsock: sent %llu bytes to port %u, echo ok",
	                    (unsigned long long)h.echoed, GUEST_PORT);
	cr_assert(strstr(kp.out, want), "no \"%s\" in:\n%s", want, kp.out);
	free(want);
	want = kh_fmt("vsock: accepted port %u from cid 2 port %u", GUEST_LISTEN, h.ok_port);
	cr_assert(strstr(kp.out, want), "no \"%s\" (the port of the OK line) in:\n%s", want,
	          kp.out);
	free(want);
	want = kh_fmt("vsock: echoed %llu bytes for the host", (unsigned long long)host_bytes);
	cr_assert(strstr(kp.out, want), "no \"%s\" in:\n%s", want, kp.out);
	free(want);
	cr_assert(strstr(kp.out, "vsock: ok"), "%s", kp.out);
	struct stat sb;
	cr_assert_eq(stat(uds, &sb), -1, "kiln removes uds_path at exit");
}

Test(vsock, guest_and_host_connections_carry_every_byte)
{
	both_ways(100000, 50000, 1);
}

/* megabytes through 64 KiB of guest buffer and 256 KiB of kiln's: credit
 * runs out and comes back many times in both directions */
Test(vsock, megabytes_both_ways_under_credit)
{
	both_ways(4000000, 3000000, 77);
}

Test(vsock, stale_socket_file_is_replaced)
{
	int fd = listen_at(uds);
	close(fd); /* the file stays, nobody listens: what a killed kiln leaves */
	both_ways(1000, 1000, 5);
}

Test(vsock, live_socket_is_refused)
{
	int fd = listen_at(uds);
	char *cfg = vsock_config("vsock.listen=0");
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	int st = kh_wait_exit(&kp, 30000);
	close(fd);
	cr_assert_neq(st, 0, "%s", kp.out);
	cr_assert(strstr(kp.out, "in use"), "%s", kp.out);
}

Test(vsock, nothing_listening_is_refused_at_once)
{
	char *cfg = vsock_config("vsock.listen=0 vsock.port=4321 vsock.timeout_ms=20000");
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	int st = kh_wait_exit(&kp, 15000); /* well before the guest's own timeout */
	cr_assert_eq(st, 0, "%s", kp.out);
	cr_assert(strstr(kp.out, "vsock: FAILED: connect to port 4321") &&
	                  strstr(kp.out, "(refused)"),
	          "%s", kp.out);
}
