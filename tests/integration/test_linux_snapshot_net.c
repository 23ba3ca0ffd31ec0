// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_snapshot_net.c: a Linux guest's connections
 * across a snapshot restored in a new kiln on another tap. The image's
 * /init runs kt-resume (tests/linux/progs/kt-resume.c):
 *   1. on tap ksn0 (host 10.0.9.1/24, in a network namespace of this
 *      test's own) Linux pings the host, opens a TCP connection to this
 *      test's server and starts a stream each way on it, which the server
 *      leaves unread (so data waits in both kernels' buffers); it also
 *      connects to the host over vsock (Firecracker's uds convention) and
 *      waits on that connection;
 *   2. the VM is paused, snapshotted (Full) and its kiln killed; the host
 *      address moves to tap ksn1 (which has ksn0's MAC, as an orchestrator
 *      recreating a VM's network would give it), and a new kiln loads the
 *      snapshot with network_overrides naming ksn1;
 *   3. the server now takes part: the TCP stream opened before the
 *      snapshot completes both ways with matching checksums, and Linux
 *      pings the host again; kiln resets the vsock transport on restore,
 *      Linux ends the old vsock connection with an error, connects again
 *      and streams both ways on the new one, checksummed.
 * Linux then exits its init, the guest resets and kiln exits 0. Needs root.
 */
#include "linux_guest.h"
#include "snap_test.h"
#include "../linux/progs/kt.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HOST_IP   "10.0.9.1"
#define GUEST_MAC "06:00:ac:10:00:09"
#define TCP_PORT  5000
#define VSOCK_OUT 5001 /* the host port the guest connects to */
#define SEED      21   /* the guest's: SEED on TCP, SEED + 1 on vsock */
#define HOST_SEED 200  /* plus the guest's */
#define BYTES     (1ull << 20)

static char netns[32];

static void teardown(void)
{
	snap_test_fini();
	kh_netns_del(netns);
	netns[0] = '\0';
}

TestSuite(linux_snapshot_net, .init = snap_test_init, .fini = teardown, .timeout = 600);

/* ksn0 up with HOST_IP, ksn1 down with ksn0's MAC; this process (so kiln) in their namespace */
static void netns_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a network namespace and taps");
	snprintf(netns, sizeof(netns), "kiln-lsn%d", (int)getpid());
	int ret = kh_netns_enter(netns);
	cr_assert_eq(ret, 0, "network namespace %s: %s", netns, strerror(-ret));
	sh("ip link set lo up && ip tuntap add dev ksn0 mode tap && ip tuntap add dev ksn1 mode "
	   "tap && ip addr add " HOST_IP "/24 dev ksn0 && ip link set ksn0 up && "
	   "ip link set ksn1 address $(ip -o link show ksn0 | sed 's/.*ether \\([^ ]*\\).*/\\1/')");
}

/*
 * The host's end of both connections, one thread: accepts the TCP
 * connection and the first vsock connection at once, then waits for `go`
 * (the restore), accepts the guest's second vsock connection and runs both
 * streams, one after the other.
 */
struct host_side {
	int tcp_lfd, vsock_lfd;
	atomic_bool go;
	struct kt_flow tcp, vsock;
	const char *step;
	int err, ret;
	pthread_t thread;
};

/* accepts one connection on lfd within the scaled `ms`: the fd, or -1 */
static int accept_within(int lfd, int ms)
{
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	return poll(&pfd, 1, kh_scaled_ms(ms)) == 1 ? accept(lfd, NULL, NULL) : -1;
}

static void *host_side(void *arg)
{
	struct host_side *h = arg;
	int tcp = -1, first = -1, second = -1;
	h->ret = -1;
	h->step = "the guest's TCP connection";
	if ((tcp = accept_within(h->tcp_lfd, 600000)) < 0)
		goto out;
	h->step = "the guest's first vsock connection";
	if ((first = accept_within(h->vsock_lfd, 120000)) < 0)
		goto out;
	h->step = "the restore";
	for (int i = 0; i < 6000 && !atomic_load(&h->go); i++)
		usleep(100000);
	if (!atomic_load(&h->go))
		goto out;
	h->step = "the guest's second vsock connection";
	if ((second = accept_within(h->vsock_lfd, 300000)) < 0)
		goto out;
	if (kt_exchange(tcp, SEED + HOST_SEED, BYTES, true, &h->tcp, &h->step) < 0 ||
	    kt_exchange(second, SEED + 1 + HOST_SEED, BYTES, true, &h->vsock, &h->step) < 0)
		goto out;
	h->ret = 0;
out:
	h->err = errno;
	if (tcp >= 0)
		close(tcp);
	if (first >= 0)
		close(first);
	if (second >= 0)
		close(second);
	return NULL;
}

static int tcp_listener(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TCP_PORT)};
	inet_pton(AF_INET, HOST_IP, &a.sin_addr);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(fd, 1), 0);
	return fd;
}

static int unix_listener(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	cr_assert_lt(strlen(path), sizeof(a.sun_path));
	strcpy(a.sun_path, path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", path,
	             strerror(errno));
	cr_assert_eq(listen(fd, 2), 0);
	return fd;
}

/* the guest's "kt-resume: KIND sent=... got=..." line matches the host's flow f */
static void sums_match(struct skiln *k, const char *kind, uint64_t guest_seed,
                       const struct kt_flow *f)
{
	char *line = kh_fmt("kt-resume: %s sent=%llu fnv1a=%016llx got=%llu fnv1a=%016llx", kind,
	                    BYTES, (unsigned long long)kt_stream_fnv(guest_seed, BYTES), BYTES,
	                    (unsigned long long)kt_stream_fnv(guest_seed + HOST_SEED, BYTES));
	cr_assert(strstr(k->p.out, line), "no \"%s\" from Linux:\n%s", line, k->p.out);
	free(line);
	cr_assert_eq(f->got, BYTES, "%s: the host got %llu bytes", kind, f->got);
	cr_assert_eq(f->got_fnv, kt_stream_fnv(guest_seed, BYTES), "%s: the host's sum", kind);
	cr_assert_eq(f->sent_fnv, kt_stream_fnv(guest_seed + HOST_SEED, BYTES));
}

static void expect(struct skiln *k, const char *line, int s)
{
	cr_assert(kh_wait_for(&k->p, line, s * 1000), "no \"%s\" within %d s (%s):\n%s", line, s,
	          kh_status(&k->p), k->p.out);
}

Test(linux_snapshot_net, tcp_survives_and_vsock_reconnects_on_a_new_tap)
{
	netns_up();
	const char *root = snap_file("rootfs.ext4");
	sh("cp --sparse=always '%s' '%s'", lg_image("rootfs.ext4"), root);
	const char *uds = snap_file("v.sock");
	char uds_out[160];
	snprintf(uds_out, sizeof(uds_out), "%s_%d", uds, VSOCK_OUT);
	struct host_side h = {.tcp_lfd = tcp_listener(), .vsock_lfd = unix_listener(uds_out)};
	cr_assert_eq(pthread_create(&h.thread, NULL, host_side, &h), 0);

	struct skiln *k = sk_start("k0");
	char *b = kh_fmt("{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
	                 "\"boot_args\": \"console=ttyS0 reboot=k panic=1 kiln.run=kt-resume,eth0,"
	                 "10.0.9.2/24," HOST_IP ",%d,%d,%d,%llu\"}",
	                 lg_image("vmlinux"), lg_image("initramfs.cpio"), TCP_PORT, VSOCK_OUT, SEED,
	                 BYTES);
	sk_ok(k, "PUT", "/boot-source", b);
	free(b);
	sk_ok(k, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 256}");
	b = kh_fmt("{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	           "\"is_read_only\": false}",
	           root);
	sk_ok(k, "PUT", "/drives/rootfs", b);
	free(b);
	sk_ok(k, "PUT", "/network-interfaces/eth0",
	      "{\"iface_id\": \"eth0\", \"host_dev_name\": \"ksn0\", \"guest_mac\": \"" GUEST_MAC
	      "\"}");
	b = kh_fmt("{\"guest_cid\": 3, \"uds_path\": \"%s\"}", uds);
	sk_ok(k, "PUT", "/vsock", b);
	free(b);
	sk_ok(k, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect(k, "kt-resume: tcp connected", 300);
	expect(k, "kt-resume: vsock connected", 120);
	cr_assert(strstr(k->p.out, "kt-resume: pings=3/3"), "%s", k->p.out);

	sk_pause(k);
	sk_create(k, "Full", "vm.snap", "vm.mem");
	sk_kill(k);
	sh("ip addr del " HOST_IP "/24 dev ksn0 && ip link set ksn0 down && "
	   "ip addr add " HOST_IP "/24 dev ksn1 && ip link set ksn1 up");

	struct skiln *k1 = sk_start("k1");
	b = sk_load_body("vm.snap", "File", snap_file("vm.mem"), true,
	                 "\"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
	                 "\"ksn1\"}]");
	sk_ok(k1, "PUT", "/snapshot/load", b);
	free(b);
	atomic_store(&h.go, true);

	expect(k1, "kt-resume: vsock ended: ", 120);
	expect(k1, "kt-resume: vsock connected again", 120);
	expect(k1, "kiln-rootfs: exit 0", 300);
	pthread_join(h.thread, NULL);
	cr_assert_eq(h.ret, 0, "the host's side: %s: %s", h.step, strerror(h.err));
	sums_match(k1, "tcp", SEED, &h.tcp);
	sums_match(k1, "vsock", SEED + 1, &h.vsock);
	cr_assert(strstr(k1->p.out, "kt-resume: pings after=3/3"), "%s", k1->p.out);
	int st = kh_wait_exit(&k1->p, 120000);
	cr_assert_eq(st, 0, "the restored kiln did not exit cleanly (%d):\n%s", st, k1->p.out);
	close(h.tcp_lfd);
	close(h.vsock_lfd);
	unlink(uds_out);
}
