// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_migration.c: a busy Linux guest moved to
 * another host and back while it runs (live migration, issue 11).
 *
 * Two network namespaces stand for two hosts. Each has a bridge (A:
 * 10.0.11.1, B: 10.0.11.3) holding its host's tap for the guest (kl0 in
 * A, kl1 in B) and one end of a veth pair that joins the bridges into one
 * network, as hosts sharing the guests' network would be. The guest
 * (10.0.11.2) runs kt-live (tests/linux/progs/kt-live.c): it counts in
 * userspace, appends to a file on its root drive with each piece made
 * durable, and holds a TCP connection to this test's server on A, whose
 * stream the server leaves alone until the end.
 *   1. kiln k0 in A boots the guest on kl0;
 *   2. k1 in B receives it over TCP (10.0.11.3) with network_overrides
 *      naming kl1; k0 exits 0; the count goes on in k1 without a gap;
 *   3. k2 in A receives it back over TCP (10.0.11.1) on kl0; k1 exits 0;
 *      the count goes on in k2;
 *   4. the server takes part: the connection opened on kl0 before the
 *      first move carries a stream each way with matching checksums,
 *      Linux pings the host, the writer reads its file back whole, and
 *      the guest resets (k2 exits 0);
 *   5. the root file system is clean (e2fsck) and the file in it is what
 *      the guest wrote (debugfs dump, summed here).
 * Needs root and the tests/linux image.
 */
#include "linux_guest.h"
#include "snap_test.h"
#include "../linux/progs/kt.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ADDR_A    "10.0.11.1"
#define ADDR_B    "10.0.11.3"
#define GUEST_MAC "06:00:ac:10:00:0b"
#define TCP_PORT  5000
#define MIG_PORT  7800
#define SEED      31
#define HOST_SEED 200 /* plus the guest's */
#define BYTES     (1ull << 20)
#define COUNT_MS  250
#define FILE_PATH "/kt-live.dat"

static char ns[2][32];
static int home_ns = -1;

static void setup(void)
{
	snap_test_init();
	home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(home_ns, 0);
}

static void teardown(void)
{
	snap_test_fini();
	if (home_ns >= 0 && setns(home_ns, CLONE_NEWNET) < 0)
		fprintf(stderr, "test_linux_migration: cannot return to the home namespace\n");
	for (int i = 0; i < 2; i++) {
		char *cmd = kh_fmt("ip netns del %s 2>/dev/null", ns[i]);
		if (ns[i][0] && system(cmd) != 0)
			fprintf(stderr, "test_linux_migration: could not delete netns %s\n", ns[i]);
		free(cmd);
		ns[i][0] = '\0';
	}
	if (home_ns >= 0)
		close(home_ns);
	home_ns = -1;
}

TestSuite(linux_migration, .init = setup, .fini = teardown, .timeout = 900);

static void enter(int i)
{
	char path[64];
	snprintf(path, sizeof(path), "/run/netns/%s", ns[i]);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(setns(fd, CLONE_NEWNET), 0, "setns %s: %s", ns[i], strerror(errno));
	close(fd);
}

/* hosts A and B: a bridge each with its tap, joined by a veth pair */
static void hosts_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for network namespaces, bridges and taps");
	const char *addr[2] = {ADDR_A, ADDR_B};
	for (int i = 0; i < 2; i++) {
		snprintf(ns[i], sizeof(ns[i]), "klm%c%d", 'a' + i, (int)getpid());
		sh("ip netns add %s && ip -n %s link set lo up && "
		   "ip -n %s link add br0 type bridge && ip -n %s link set br0 up && "
		   "ip -n %s addr add %s/24 dev br0 && "
		   "ip -n %s tuntap add dev kl%d mode tap && "
		   "ip -n %s link set kl%d master br0 up",
		   ns[i], ns[i], ns[i], ns[i], ns[i], addr[i], ns[i], i, ns[i], i);
	}
	sh("ip -n %s link add v0 type veth peer name v1 netns %s && "
	   "ip -n %s link set v0 master br0 up && ip -n %s link set v1 master br0 up",
	   ns[0], ns[1], ns[0], ns[1]);
}

/* the server's side of the connection: accept now, take part once `go` is set */
struct server {
	int lfd;
	atomic_bool go;
	struct kt_flow flow;
	const char *step;
	int ret, err;
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
	int fd = -1;
	s->ret = -1;
	s->step = "the guest's connection";
	if (poll(&pfd, 1, kh_scaled_ms(600000)) != 1 || (fd = accept(s->lfd, NULL, NULL)) < 0)
		goto out;
	s->step = "the two moves";
	for (int i = 0; i < 9000 && !atomic_load(&s->go); i++)
		usleep(100000);
	if (!atomic_load(&s->go))
		goto out;
	if (kt_exchange(fd, SEED + HOST_SEED, BYTES, true, &s->flow, &s->step) == 0)
		s->ret = 0;
out:
	s->err = errno;
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* static: after a failed assertion the thread may still run while .fini does */
static struct server s;

static int listen_on_a(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TCP_PORT)};
	inet_pton(AF_INET, ADDR_A, &a.sin_addr);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(fd, 1), 0);
	return fd;
}

static void expect(struct skiln *k, const char *line, int s)
{
	cr_assert(kh_wait_for(&k->p, line, s * 1000), "no \"%s\" within %d s (%s):\n%s", line, s,
	          kh_status(&k->p), k->p.out);
}

/* a kiln named `name` started in host i's namespace (the test stays in A) */
static struct skiln *kiln_on(int i, const char *name)
{
	enter(i);
	struct skiln *k = sk_start(name);
	enter(0);
	return k;
}

/*
 * Moves the guest from `src` to a new kiln `name` on host `to` (its tap
 * kl<to>, its bridge's address); returns it once it counted on past the
 * source's last count, without a gap and without its clock jumping.
 */
static struct skiln *move(struct skiln *src, int to, const char *name)
{
	struct skiln *dst = kiln_on(to, name);
	const char *addr = to ? ADDR_B : ADDR_A;
	char *b = kh_fmt("{\"listen\": \"tcp:%s:%d\", \"network_overrides\": [{\"iface_id\": "
	                 "\"eth0\", \"host_dev_name\": \"kl%d\"}]}",
	                 addr, MIG_PORT + to, to);
	sk_ok(dst, "PUT", "/migration/receive", b);
	free(b);
	b = kh_fmt("{\"destination\": \"tcp:%s:%d\", \"max_downtime_ms\": 100}", addr,
	           MIG_PORT + to);
	sk_ok(src, "PUT", "/migration/send", b);
	free(b);
	int st = kh_wait_exit(&src->p, 300000);
	cr_assert_eq(st, 0, "the source of the move to %s did not exit 0 (%s):\n%s", name,
	             kh_status(&src->p), src->p.out);
	const char *done = strstr(src->p.out, "complete: downtime ");
	cr_assert(done, "%s", src->p.out);
	fprintf(stderr, "test_linux_migration: to %s: %.*s\n", name, (int)strcspn(done, "\n"),
	        done);

	/*
	 * No count lost: the target's first whole count follows the source's
	 * last whole one, or the one after when the stop cut a line, which the
	 * target's output then begins by finishing.
	 */
	unsigned long last = lg_last_count(src->p.out, NULL);
	cr_assert_geq(last, 1, "the source counted nothing:\n%s", src->p.out);
	char *line = kh_fmt("kt-count: %lu after", last + 3);
	expect(dst, line, 120);
	free(line);
	const char *nl = strchr(dst->p.out, '\n');
	bool finishes_a_line =
	        nl && !memmem(dst->p.out, (size_t)(nl - dst->p.out), "kt-count: ", 10);
	unsigned long first = last + 1 + finishes_a_line;
	const char *at = strstr(dst->p.out, "kt-count: ");
	while (at && (at[10] < '0' || at[10] > '9' || (finishes_a_line && at < nl)))
		at = strstr(at + 1, "kt-count: ");
	cr_assert_not_null(at, "%s", dst->p.out);
	cr_assert_eq(strtoul(at + 10, NULL, 10), first,
	             "%s's first whole count is not %lu (the source's last was %lu):\n%s", name,
	             first, last, dst->p.out);
	unsigned long gap = lg_count_gap(dst->p.out, first);
	cr_assert_lt(gap, 10000, "count %lu came %lu ms of guest time after the one before", first,
	             gap);
	return dst;
}

Test(linux_migration, counter_connection_and_file_survive_a_move_and_back)
{
	hosts_up();
	enter(0);
	const char *root = snap_file("rootfs.ext4");
	sh("cp --sparse=always '%s' '%s'", lg_image("rootfs.ext4"), root);
	s.lfd = listen_on_a();
	cr_assert_eq(pthread_create(&s.thread, NULL, serve, &s), 0);

	struct skiln *k0 = kiln_on(0, "k0");
	char *b = kh_fmt("{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
	                 "\"boot_args\": \"console=ttyS0 reboot=k panic=1 kiln.run=kt-live,eth0,"
	                 "10.0.11.2/24," ADDR_A ",%d,%d,%llu,%d," FILE_PATH "\"}",
	                 lg_image("vmlinux"), lg_image("initramfs.cpio"), TCP_PORT, SEED, BYTES,
	                 COUNT_MS);
	sk_ok(k0, "PUT", "/boot-source", b);
	free(b);
	sk_ok(k0, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 256}");
	b = kh_fmt("{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	           "\"is_read_only\": false}",
	           root);
	sk_ok(k0, "PUT", "/drives/rootfs", b);
	free(b);
	sk_ok(k0, "PUT", "/network-interfaces/eth0",
	      "{\"iface_id\": \"eth0\", \"host_dev_name\": \"kl0\", \"guest_mac\": \"" GUEST_MAC
	      "\"}");
	sk_ok(k0, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect(k0, "kt-live: tcp connected", 300);
	cr_assert(strstr(k0->p.out, "kt-live: pings=3/3"), "%s", k0->p.out);
	expect(k0, "kt-count: 4 after", 60);

	struct skiln *k1 = move(k0, 1, "k1");
	struct skiln *k2 = move(k1, 0, "k2");
	atomic_store(&s.go, true);

	expect(k2, "kiln-rootfs: exit 0", 300);
	pthread_join(s.thread, NULL);
	cr_assert_eq(s.ret, 0, "the server: %s: %s", s.step, strerror(s.err));
	char *line = kh_fmt("kt-live: tcp sent=%llu fnv1a=%016llx got=%llu fnv1a=%016llx", BYTES,
	                    (unsigned long long)kt_stream_fnv(SEED, BYTES), BYTES,
	                    (unsigned long long)kt_stream_fnv(SEED + HOST_SEED, BYTES));
	cr_assert(strstr(k2->p.out, line), "no \"%s\" from Linux:\n%s", line, k2->p.out);
	free(line);
	cr_assert_eq(s.flow.got, BYTES);
	cr_assert_eq(s.flow.got_fnv, kt_stream_fnv(SEED, BYTES), "the server's sum");
	cr_assert(strstr(k2->p.out, "kt-live: pings after=3/3"), "%s", k2->p.out);
	const char *file = strstr(k2->p.out, "kt-live: file bytes=");
	cr_assert(file, "the writer did not report:\n%s", k2->p.out);
	unsigned long long size = 0, fnv = 0;
	char verdict[16] = "";
	cr_assert_eq(sscanf(file, "kt-live: file bytes=%llu fnv1a=%llx %15s", &size, &fnv, verdict),
	             3, "%.120s", file);
	cr_assert_str_eq(verdict, "ok", "%.120s", file);
	cr_assert_gt(size, 0);
	fprintf(stderr, "test_linux_migration: the guest wrote %llu bytes during the moves\n",
	        size);
	int st = kh_wait_exit(&k2->p, 120000);
	cr_assert_eq(st, 0, "k2 did not exit cleanly (%d):\n%s", st, k2->p.out);
	close(s.lfd);

	/* the disk: clean after the journal replay, and the file is what the guest wrote */
	char *cmd = kh_fmt("e2fsck -fy '%s' >/dev/null 2>&1; e2fsck -fn '%s' 2>&1", root, root);
	char *out = lg_sh(cmd, NULL, &st);
	cr_assert_eq(st, 0, "the root is not clean after the journal replay:\n%s", out);
	free(out);
	free(cmd);
	const char *dump = snap_file("kt-live.dat");
	sh("debugfs -R 'dump " FILE_PATH " %s' '%s' >/dev/null 2>&1", dump, root);
	size_t len = 0;
	cmd = kh_fmt("cat '%s'", dump);
	out = lg_sh(cmd, &len, &st);
	cr_assert_eq(len, size, "the file on the disk has %zu bytes, the guest wrote %llu", len,
	             size);
	cr_assert_eq(kt_fnv1a(KT_FNV_INIT, out, len), fnv, "the file on the disk differs");
	cr_assert_eq(fnv, kt_stream_fnv(SEED + 2, size), "the guest's file is not its stream");
	free(out);
	free(cmd);
}
