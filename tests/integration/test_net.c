// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net end to end: each test creates a network namespace with the tap
 * ktap0, moves itself into it (so kiln, its child, runs there too), boots
 * the `net` guest with the tap attached, and answers the guest's frames from
 * an AF_PACKET socket on ktap0 as tests/guests/tools/net_echo.py does. Both
 * sides check every byte: this side the guest's frames (pattern, length,
 * source MAC = guest_mac, every seq once), the guest the answers. Nothing
 * leaves the namespace; it is deleted at the end. Needs root (skipped
 * otherwise).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TAP       "ktap0"
#define GUEST_MAC "06:00:ac:10:00:02"
#define REQ       0x88b5 /* the guest's frames */
#define REPLY     0x88b6 /* our answers */
#define HDR_BYTES 30
#define MAX_SEQ   (1u << 16)

static const uint8_t guest_mac[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x02};
static const uint8_t host_mac[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x01};

static struct kproc kp;
static char netns[32];
static bool netns_made;

static void run(const char *cmd)
{
	int st = system(cmd);
	cr_assert_eq(st, 0, "`%s` failed (%d)", cmd, st);
}

/* a namespace of our own with ktap0 up in it, and this process inside */
static void netns_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a network namespace and a tap");
	snprintf(netns, sizeof(netns), "kiln-t%d", (int)getpid());
	netns_made = true; /* teardown deletes it even if entering fails half way */
	cr_assert_eq(kh_netns_with_tap(netns, TAP), 0, "cannot make %s in network namespace %s",
	             TAP, netns);
}

static void teardown(void)
{
	kh_kill(&kp);
	if (netns_made)
		kh_netns_del(netns);
}

TestSuite(net, .fini = teardown, .timeout = 180);

/* ---------------------------------------------------- the host side */

struct echo {
	int sock;
	pthread_t thread;
	bool stop; /* atomic */
	unsigned answered, bad, dup;
	uint64_t bytes;             /* frame bytes received from the guest */
	uint64_t first_ns, last_ns; /* when the first and the last arrived */
	bool answer;                /* false: only count (tx mode) */
	uint8_t seen[MAX_SEQ];
	char why[256]; /* the first problem */
};

static uint64_t now_ns_host(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* checks a guest frame as tests/guests/net.c builds it; NULL when good */
static const char *check_frame(struct echo *x, const uint8_t *f, size_t len, uint32_t *seq)
{
	static char why[160];
	*seq = le32(f + 18);
	uint32_t seed = le32(f + 22);
	if (memcmp(f + 6, guest_mac, 6) != 0)
		return "source MAC is not guest_mac";
	if ((size_t)(f[26] | f[27] << 8) != len)
		return "length field differs from the frame's length";
	for (size_t k = HDR_BYTES; k < len; k++)
		if (f[k] != (uint8_t)(k * 7 + *seq * 13 + seed)) {
			snprintf(why, sizeof(why), "seq %u: byte %zu is 0x%x", *seq, k, f[k]);
			return why;
		}
	if (*seq >= MAX_SEQ)
		return "seq out of range";
	if (x->seen[*seq]++)
		x->dup++;
	return NULL;
}

static void *echo_main(void *arg)
{
	struct echo *x = arg;
	static uint8_t f[65536];

	while (!__atomic_load_n(&x->stop, __ATOMIC_SEQ_CST)) {
		struct pollfd p = {.fd = x->sock, .events = POLLIN};
		if (poll(&p, 1, 50) != 1)
			continue;
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(x->sock, f, sizeof(f), 0, (struct sockaddr *)&from, &fl);
		if (n < 0 || from.sll_pkttype == PACKET_OUTGOING)
			continue; /* ENETDOWN after the tap went away; our own answers */
		if (n < HDR_BYTES || memcmp(f + 14, "KILN", 4) != 0)
			continue;
		uint32_t seq;
		const char *bad = check_frame(x, f, (size_t)n, &seq);
		if (bad && !x->bad++)
			snprintf(x->why, sizeof(x->why), "%s", bad);
		uint64_t t = now_ns_host();
		if (!x->bytes)
			x->first_ns = t;
		x->last_ns = t;
		x->bytes += (uint64_t)n;
		if (!x->answer)
			continue;
		/* dst = the guest, src = us, EtherType REPLY, the rest as it came */
		memcpy(f, f + 6, 6);
		memcpy(f + 6, host_mac, 6);
		f[12] = REPLY >> 8;
		f[13] = REPLY & 0xff;
		if (send(x->sock, f, (size_t)n, 0) == n)
			x->answered++;
	}
	return NULL;
}

static struct echo *echo_start(bool answer)
{
	struct echo *x = calloc(1, sizeof(*x));
	cr_assert_not_null(x);
	x->answer = answer;
	x->sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(REQ));
	cr_assert_geq(x->sock, 0, "%s", strerror(errno));
	struct sockaddr_ll a = {.sll_family = AF_PACKET,
	                        .sll_protocol = htons(REQ),
	                        .sll_ifindex = (int)if_nametoindex(TAP)};
	cr_assert_eq(bind(x->sock, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	/* a deep receive queue: on a loaded CI machine the echo thread may fall
	 * behind the guest for a while, and frames dropped here would fail the test */
	int rcvbuf = 8 << 20;
	if (setsockopt(x->sock, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(x->sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	cr_assert_eq(pthread_create(&x->thread, NULL, echo_main, x), 0);
	return x;
}

static void echo_stop(struct echo *x)
{
	__atomic_store_n(&x->stop, true, __ATOMIC_SEQ_CST);
	pthread_join(x->thread, NULL);
	close(x->sock);
}

/* the net guest with ktap0 attached as eth0; `extra` goes inside the interface object */
static void boot_net(const char *args, const char *extra)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	                   "\"" KH_GUEST_ARGS " %s\"},"
	                   " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128},"
	                   " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
	                   "\"" TAP "\", \"guest_mac\": \"" GUEST_MAC "\"%s}]}",
	                   kh_guest("net"), args, extra ? extra : "");
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
}

static void expect_exit_ok(void)
{
	int st = kh_wait_exit(&kp, 120000);
	cr_assert_eq(st, 0, "kiln exited with %d; output:\n%s", st, kp.out);
}

static void expect_out(const char *needle)
{
	cr_expect(strstr(kp.out, needle) != NULL, "missing \"%s\" in output:\n%s", needle, kp.out);
}

/* every seq 0 .. count-1 reached us once, every byte as built */
static void expect_echoed(struct echo *x, unsigned count)
{
	cr_expect_eq(x->bad, 0, "%u bad frames, the first: %s", x->bad, x->why);
	cr_expect_eq(x->dup, 0, "%u frames came twice", x->dup);
	cr_expect_eq(x->answered, count);
	for (unsigned s = 0; s < count; s++)
		cr_expect_eq(x->seen[s], 1, "seq %u seen %u times", s, x->seen[s]);
}

static void echo_test(const char *args, unsigned count, const char *guest_line)
{
	netns_up();
	struct echo *x = echo_start(true);
	boot_net(args, NULL);
	expect_exit_ok();
	echo_stop(x);
	char *ok = kh_fmt("net: sent %u, received %u, ok", count, count);
	expect_out(ok);
	free(ok);
	expect_out(guest_line);
	expect_echoed(x, count);
	free(x);
}

Test(net, frames_both_ways_with_mergeable_buffers)
{
	echo_test("net.count=200 net.size=1000", 200, "mrg_rxbuf on, rx buffers 2048 bytes");
}

Test(net, full_size_frames_merged_over_small_buffers)
{
	echo_test("net.count=100 net.size=1514 net.rxbuf=256", 100,
	          "mrg_rxbuf on, rx buffers 256 bytes");
}

Test(net, frames_both_ways_without_mergeable_buffers)
{
	echo_test("net.count=100 net.size=1514 net.mrg=0", 100, "mrg_rxbuf off");
}

Test(net, a_deleted_tap_leaves_the_vm_running)
{
	netns_up();
	struct echo *x = echo_start(false);
	/* the guest must still be sending when the tap goes, however slow the
	 * CPU it runs on (KILN_TIME_SCALE) */
	char *args = kh_fmt("net.mode=tx net.ms=%d net.size=500", kh_scaled_ms(1500));
	boot_net(args, NULL);
	free(args);
	for (int i = 0;
	     i < kh_scaled_ms(2000) / 10 && __atomic_load_n(&x->bytes, __ATOMIC_RELAXED) < 50 * 500;
	     i++)
		usleep(10 * 1000);
	cr_assert_geq(x->bytes, 50 * 500, "the guest's frames reach the tap first; output:\n%s",
	              kp.out);
	run("ip link del " TAP);
	expect_exit_ok();
	echo_stop(x);
	cr_expect_eq(x->bad, 0, "%u bad frames, the first: %s", x->bad, x->why);
	expect_out("frames are dropped from now on");
	expect_out("net bench: tx");
	free(x);
}

Test(net, tx_bandwidth_is_limited)
{
	/* 100 KB bucket refilled every 100 ms: 1 MB/s */
	netns_up();
	struct echo *x = echo_start(false);
	boot_net(
	        "net.mode=tx net.ms=1500 net.size=1000",
	        ", \"tx_rate_limiter\": {\"bandwidth\": {\"size\": 100000, \"refill_time\": 100}}");
	expect_exit_ok();
	echo_stop(x);
	cr_expect_eq(x->bad, 0, "%u bad frames, the first: %s", x->bad, x->why);
	double secs = (double)(x->last_ns - x->first_ns) / 1e9;
	double allowed = 100000 + 1e6 * secs + 1000;
	cr_expect_gt(secs, 0.5, "frames flowed for %.2f s", secs);
	cr_expect_leq((double)x->bytes, allowed * 1.02,
	              "%llu bytes in %.2f s: at most %.0f allowed", (unsigned long long)x->bytes,
	              secs, allowed);
	cr_expect_geq((double)x->bytes, allowed * 0.5, "%llu bytes in %.2f s: the limiter starves",
	              (unsigned long long)x->bytes, secs);
	free(x);
}
