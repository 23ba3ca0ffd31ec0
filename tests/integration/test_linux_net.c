// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_net.c: virtio-net and virtio-vsock judged by
 * Linux's own drivers. kiln boots tests/linux's image (see
 * tests/linux/README.md) with a tap in a network namespace of this test's
 * own (10.0.9.1/24 on the host side) and a vsock device (guest CID 3,
 * uds_path in a temporary folder); the image's /init runs kt-stream
 * (tests/linux/progs), which in one boot
 *   1. brings eth0 up as 10.0.9.2/24, pings 10.0.9.1 three times, and
 *      exchanges a stream of BYTES each way with this test's TCP server;
 *   2. connects to host port 5001 over vsock, which kiln turns into a
 *      connection to <uds_path>_5001 (Firecracker's convention), where this
 *      test listens, and exchanges the same;
 *   3. listens on vsock port 5002; this test connects to uds_path, says
 *      "CONNECT 5002", gets "OK <port>", and they exchange the same.
 * Each side sends a xorshift64 stream of its own seed and reads the other's
 * to its end at the same time; both sum (FNV-1a) what they sent and
 * received, and the sums must match across the two ends and match the
 * seeds. The test logs each flow's throughput as Linux measured it.
 * A second test runs a smaller TCP flow through rx and tx rate limiters
 * and checks that Linux measures the time they impose.
 * Needs root (a namespace and a tap); skipped otherwise.
 */
#include "linux_guest.h"
#include "../linux/progs/kt.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define MEM_MIB    256
#define TAP        "kltap0"
#define HOST_IP    "10.0.9.1"
#define GUEST_CIDR "10.0.9.2/24"
#define TCP_PORT   5000
#define VSOCK_OUT  5001 /* the host port the guest connects to */
#define VSOCK_IN   5002 /* the guest port the host connects to */
#define BYTES      (3ull << 20)
/* the seeds of the three flows, the guest's then the host's */
#define SEED_TCP  11
#define SEED_OUT  12
#define SEED_IN   13
#define HOST_SEED 100 /* plus the guest's */

static struct kproc kp;
static char disk[64], dir[64], uds[128], uds_out[160], netns[32];

static void teardown(void)
{
	kh_kill(&kp);
	if (disk[0])
		unlink(disk);
	if (dir[0]) {
		unlink(uds_out);
		unlink(uds);
		rmdir(dir);
	}
	kh_netns_del(netns);
	disk[0] = dir[0] = netns[0] = '\0';
}

/* one boot takes 34-58 s of wall time in the test bed (see test_linux.c), plus the streams */
TestSuite(linux_net, .fini = teardown, .timeout = 600);

static void sh_ok(const char *cmd)
{
	int st;
	char *out = lg_sh(cmd, NULL, &st);
	cr_assert_eq(st, 0, "`%s` failed (%d): %s", cmd, st, out);
	free(out);
}

/* a namespace with TAP up as HOST_IP/24, and this process (so kiln) in it */
static void netns_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a network namespace and a tap");
	snprintf(netns, sizeof(netns), "kiln-ln%d", (int)getpid());
	cr_assert_eq(kh_netns_enter(netns), 0, "cannot create and enter netns %s", netns);
	sh_ok("ip link set lo up 2>&1");
	sh_ok("ip tuntap add dev " TAP " mode tap 2>&1");
	sh_ok("ip addr add " HOST_IP "/24 dev " TAP " 2>&1");
	sh_ok("ip link set " TAP " up 2>&1");
}

/* one accepted connection's exchange, run by a thread of this test */
struct server {
	int lfd;
	uint64_t seed;
	unsigned long long bytes;
	struct kt_flow f;
	int ret, err;
	const char *step;
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};

	s->ret = -1;
	s->step = "no connection within 10 minutes";
	if (poll(&pfd, 1, kh_scaled_ms(600000)) == 1) {
		int fd = accept(s->lfd, NULL, NULL);
		s->step = "accept";
		if (fd >= 0) {
			s->ret = kt_exchange(fd, s->seed, s->bytes, true, &s->f, &s->step);
			close(fd);
		}
	}
	s->err = errno;
	return NULL;
}

static void serve_on(struct server *s, int lfd, uint64_t seed, unsigned long long bytes)
{
	cr_assert_geq(lfd, 0, "listen: %s", strerror(errno));
	cr_assert_eq(listen(lfd, 1), 0, "listen: %s", strerror(errno));
	s->lfd = lfd;
	s->seed = seed;
	s->bytes = bytes;
	cr_assert_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static int tcp_listener(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TCP_PORT)};
	inet_pton(AF_INET, HOST_IP, &a.sin_addr);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int unix_socket(const char *path, bool listening)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int r = listening ? bind(fd, (struct sockaddr *)&a, sizeof(a))
	                  : connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (fd >= 0 && r < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* connects to the guest's VSOCK_IN through uds_path: the stream, past "OK <port>\n" */
static int vsock_connect_guest(void)
{
	int fd = unix_socket(uds, false);
	cr_assert_geq(fd, 0, "connect %s: %s", uds, strerror(errno));
	char *hello = kh_fmt("CONNECT %d\n", VSOCK_IN);
	cr_assert_eq(write(fd, hello, strlen(hello)), (ssize_t)strlen(hello));
	free(hello);
	char line[64];
	size_t n = 0;
	while (n < sizeof(line) - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		cr_assert_eq(poll(&pfd, 1, kh_scaled_ms(60000)), 1, "no answer to CONNECT");
		cr_assert_eq(read(fd, line + n, 1), 1, "the answer to CONNECT was cut");
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	cr_assert(!strncmp(line, "OK ", 3), "CONNECT %d got \"%s\"", VSOCK_IN, line);
	return fd;
}

/*
 * The guest's report of flow `kind`, `bytes` each way, matches this side's
 * `f` and both seeds: the time Linux measured, in ms.
 */
static unsigned long long check_flow(const char *kind, uint64_t guest_seed,
                                     unsigned long long bytes, const struct kt_flow *f)
{
	char *want = kh_fmt("kt-stream: %s sent=%llu fnv1a=%016llx got=%llu fnv1a=%016llx", kind,
	                    bytes, (unsigned long long)kt_stream_fnv(guest_seed, bytes), bytes,
	                    (unsigned long long)kt_stream_fnv(guest_seed + HOST_SEED, bytes));
	char *sent = kh_fmt("kt-stream: %s sent=", kind);
	lg_expect_line(&kp, sent, 120);
	free(sent);
	/* the sums line has a fixed length: once it is whole, so is the time line before it */
	cr_assert(kh_wait_for(&kp, want, 10000),
	          "the guest did not report \"%s\"; kiln printed:\n%s", want, kp.out);
	free(want);
	cr_assert_eq(f->got, bytes, "%s: this side got %llu bytes", kind, f->got);
	cr_assert_eq(f->got_fnv, kt_stream_fnv(guest_seed, bytes), "%s: this side's sum", kind);
	cr_assert_eq(f->sent_fnv, kt_stream_fnv(guest_seed + HOST_SEED, bytes));
	char *took = kh_fmt("kt-stream: %s took ", kind);
	const char *at = strstr(kp.out, took);
	cr_assert_not_null(at);
	unsigned long long ms = strtoull(at + strlen(took), NULL, 10);
	free(took);
	cr_log_info("%s: %llu bytes each way in %llu ms as Linux measured (%.2f MiB/s each way)",
	            kind, bytes, ms, ms ? (double)bytes / (1 << 20) / ((double)ms / 1000) : 0.0);
	return ms;
}

static void join(struct server *s, const char *kind)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
	if (s->ret != 0)
		kh_wait_for(&kp, "\x01", 1000); /* what Linux and kiln said meanwhile */
	cr_assert_eq(s->ret, 0,
	             "%s: this side's %s failed: %s (%llu bytes sent, %llu received); kiln "
	             "printed:\n%s",
	             kind, s->step, strerror(s->err), s->f.sent, s->f.got, kp.out);
}

Test(linux_net, tcp_and_vsock_streams_both_ways)
{
	netns_up();
	strcpy(dir, "/tmp/kiln-lnet-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	snprintf(uds_out, sizeof(uds_out), "%s_%d", uds, VSOCK_OUT);

	/* static: a failed assertion ends this function while the threads may still run */
	static struct server tcp, out;
	serve_on(&tcp, tcp_listener(), SEED_TCP + HOST_SEED, BYTES);
	serve_on(&out, unix_socket(uds_out, true), SEED_OUT + HOST_SEED, BYTES);

	const char *root = lg_copy_rootfs(disk);
	char *run_arg = kh_fmt("kt-stream,tcp,eth0," GUEST_CIDR "," HOST_IP ",%d,%d,%llu,"
	                       "+,vsock-connect,%d,%d,%llu,+,vsock-listen,%d,%d,%llu",
	                       TCP_PORT, SEED_TCP, BYTES, VSOCK_OUT, SEED_OUT, BYTES, VSOCK_IN,
	                       SEED_IN, BYTES);
	char *extra = kh_fmt(", \"network-interfaces\": [{\"iface_id\": \"eth0\", "
	                     "\"host_dev_name\": \"" TAP "\"}], "
	                     "\"vsock\": {\"guest_cid\": 3, \"uds_path\": \"%s\"}",
	                     uds);
	lg_spawn(&kp, MEM_MIB, root, false, run_arg, "", extra, NULL);
	free(run_arg);
	free(extra);

	lg_expect_line(&kp, "kt-stream: pings=3/3", 300);
	join(&tcp, "tcp");
	check_flow("tcp", SEED_TCP, BYTES, &tcp.f);
	join(&out, "vsock-connect");
	check_flow("vsock-connect", SEED_OUT, BYTES, &out.f);

	char *listening = kh_fmt("kt-stream: listening on vsock port %d", VSOCK_IN);
	lg_expect_line(&kp, listening, 60);
	free(listening);
	int fd = vsock_connect_guest();
	struct kt_flow in;
	const char *step;
	cr_assert_eq(kt_exchange(fd, SEED_IN + HOST_SEED, BYTES, true, &in, &step), 0,
	             "vsock-listen: this side's %s failed: %s", step, strerror(errno));
	close(fd);
	lg_expect_run(&kp, "rw", "kt-stream: vsock-listen took ", 0);
	check_flow("vsock-listen", SEED_IN, BYTES, &in);
}

/*
 * The same TCP flow, smaller, through rx and tx rate limiters of
 * LIMIT_BUCKET bytes per second each: the buckets start full, so the
 * exchange needs at least (LIMITED_BYTES - LIMIT_BUCKET) / LIMIT_BUCKET
 * refills (less a tenth for the guest's clock against the host's; frames'
 * headers, ACKs and the pings only add to it): 6.3 s. Unlimited, the same
 * exchange takes about 2 s in the test bed (0.46-0.58 MiB/s each way, the
 * 3 MiB flows above); through limiters of 256 KiB per second it took
 * 3.2 s, and through these 7.2 s.
 */
#define LIMITED_BYTES (1ull << 20)
#define LIMIT_BUCKET  (128 << 10)
#define LIMIT_MIN_MS  ((LIMITED_BYTES - LIMIT_BUCKET) / LIMIT_BUCKET * 1000 * 9 / 10)

Test(linux_net, rate_limiters_cap_what_linux_measures)
{
	netns_up();
	static struct server tcp;
	serve_on(&tcp, tcp_listener(), SEED_TCP + HOST_SEED, LIMITED_BYTES);

	char *run_arg = kh_fmt("kt-stream,tcp,eth0," GUEST_CIDR "," HOST_IP ",%d,%d,%llu", TCP_PORT,
	                       SEED_TCP, LIMITED_BYTES);
	char *limiter =
	        kh_fmt("{\"bandwidth\": {\"size\": %d, \"refill_time\": 1000}}", LIMIT_BUCKET);
	char *extra = kh_fmt(", \"network-interfaces\": [{\"iface_id\": \"eth0\", "
	                     "\"host_dev_name\": \"" TAP "\", \"rx_rate_limiter\": %s, "
	                     "\"tx_rate_limiter\": %s}]",
	                     limiter, limiter);
	lg_spawn(&kp, MEM_MIB, lg_copy_rootfs(disk), false, run_arg, "", extra, NULL);
	free(run_arg);
	free(limiter);
	free(extra);

	lg_expect_line(&kp, "kt-stream: pings=3/3", 300);
	join(&tcp, "tcp");
	unsigned long long ms = check_flow("tcp", SEED_TCP, LIMITED_BYTES, &tcp.f);
	lg_expect_run(&kp, "rw", "kt-stream: tcp took ", 0);
	cr_assert_geq(ms, LIMIT_MIN_MS,
	              "%llu bytes each way took %llu ms through limiters of %d bytes per second",
	              LIMITED_BYTES, ms, LIMIT_BUCKET);
}
