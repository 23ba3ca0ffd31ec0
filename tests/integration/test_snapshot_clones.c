// SPDX-License-Identifier: Apache-2.0
/*
 * Ten clones of one snapshot (issue 5): the memck guest with a network
 * interface on tap kst is snapshotted once; ten kiln processes load it at
 * the same time (the requests sent from ten threads), each with
 * network_overrides giving it its own tap kst0..kst9, and each guest goes
 * on from the snapshot's report on its own. The taps live in a private
 * network namespace this test process moves into (so the kilns, its
 * children, are there too), deleted at the end. The second test does the
 * same with a Linux guest (tests/linux's image). Needs root.
 */
#include "linux_guest.h"
#include "snap_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLONES 10

static char netns[32];

static void netns_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a network namespace and taps");
	snprintf(netns, sizeof(netns), "kiln-snap%d", (int)getpid());
	int ret = kh_netns_enter(netns);
	cr_assert_eq(ret, 0, "network namespace %s: %s", netns, strerror(-ret));
	sh("ip tuntap add dev kst mode tap && ip link set kst up");
	for (int i = 0; i < CLONES; i++)
		sh("ip tuntap add dev kst%d mode tap && ip link set kst%d up", i, i);
}

static void teardown(void)
{
	snap_test_fini();
	kh_netns_del(netns);
}

TestSuite(snapshot_clones, .init = snap_test_init, .fini = teardown, .timeout = 480);

/*
 * 1 when a process holds the tap open (the tun driver's carrier follows the
 * attached fd), 0 when not: from `ip`, as /sys shows the namespace that
 * mounted it, not ours
 */
static int carrier(const char *tap)
{
	char *cmd = kh_fmt("ip -o link show dev %s", tap), line[512] = "";
	FILE *f = popen(cmd, "r");
	free(cmd);
	cr_assert(f);
	bool got = fgets(line, sizeof(line), f) != NULL;
	pclose(f);
	cr_assert(got && strstr(line, "<"), "no link %s", tap);
	return strstr(line, "NO-CARRIER") ? 0 : 1;
}

struct loader {
	struct skiln *k;
	char *body;
	pthread_t thread;
	int status;
	struct ac_resp r;
};

static void *load_thread(void *arg)
{
	struct loader *l = arg;
	l->status = ac_request(l->k->sock, "PUT", "/snapshot/load", l->body, &l->r);
	return NULL;
}

/*
 * Ten new kilns "clone0".."clone9" load vm.snap / vm.mem at the same time
 * (one request thread each), each with network_overrides giving eth0 its
 * own tap kst<i>, and resume; asserts every load answered 204.
 */
static void load_clones(struct loader l[CLONES])
{
	for (int i = 0; i < CLONES; i++) {
		char name[16], over[128];
		snprintf(name, sizeof(name), "clone%d", i);
		l[i].k = sk_start(name);
		snprintf(over, sizeof(over),
		         "\"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
		         "\"kst%d\"}]",
		         i);
		l[i].body = sk_load_body("vm.snap", "File", snap_file("vm.mem"), true, over);
	}
	for (int i = 0; i < CLONES; i++)
		cr_assert_eq(pthread_create(&l[i].thread, NULL, load_thread, &l[i]), 0);
	for (int i = 0; i < CLONES; i++) {
		pthread_join(l[i].thread, NULL);
		cr_assert_eq(l[i].status, 204, "clone %d: load answered %d: %s", i, l[i].status,
		             l[i].r.body ? l[i].r.body : "");
		ac_resp_free(&l[i].r);
		free(l[i].body);
	}
}

Test(snapshot_clones, ten_clones_own_taps)
{
	netns_up();
	struct skiln *base = sk_start("base");
	sk_ok(base, "PUT", "/network-interfaces/eth0",
	      "{\"iface_id\": \"eth0\", \"host_dev_name\": \"kst\", "
	      "\"guest_mac\": \"06:00:ac:10:00:02\"}");
	sk_boot_memck(base, NULL, false);
	memck_started(base, 2);
	cr_assert_eq(carrier("kst"), 1, "the base VM does not hold its tap");
	sk_pause(base);
	struct memck_at at = memck_last(base);
	sk_create(base, "Full", "vm.snap", "vm.mem");
	sk_kill(base);

	struct loader l[CLONES];
	load_clones(l);
	for (int i = 0; i < CLONES; i++) {
		memck_continues(l[i].k, at);
		char tap[16];
		snprintf(tap, sizeof(tap), "kst%d", i);
		cr_assert_eq(carrier(tap), 1, "clone %d does not hold %s (%s)", i, tap,
		             kh_status(&l[i].k->p));
		json_t *c;
		cr_assert_eq(sk_req(l[i].k, "GET", "/vm/config", NULL, &c), 200);
		json_t *net = json_array_get(json_object_get(c, "network-interfaces"), 0);
		cr_assert_str_eq(json_string_value(json_object_get(net, "host_dev_name")), tap);
		json_decref(c);
	}
	cr_assert_eq(carrier("kst"), 0, "a clone took the snapshot's own tap");
	/* independent: one clone gone, the others go on */
	at = memck_last(l[1].k);
	sk_kill(l[0].k);
	memck_wait(l[1].k, at.report + 2, 60000); /* nine VMs share the host */
	memck_last(l[1].k);
}

/* the tap's received-packet counter (frames the guest sent), from `ip -s` */
static unsigned long long tap_rx_packets(const char *tap)
{
	char *cmd = kh_fmt("ip -s -o link show dev %s", tap), line[2048] = "";
	FILE *f = popen(cmd, "r");
	free(cmd);
	cr_assert(f);
	bool got = fgets(line, sizeof(line), f) != NULL;
	pclose(f);
	/* "...    RX:  bytes packets errors ...\    <bytes> <packets> ..." */
	const char *rx = got ? strstr(line, "RX:") : NULL;
	const char *nums = rx ? strchr(rx, '\\') : NULL;
	unsigned long long bytes, packets;
	cr_assert(nums && sscanf(nums + 1, "%llu %llu", &bytes, &packets) == 2,
	          "no RX counters for %s: %s", tap, line);
	return packets;
}

/* the N of the last whole "kt-beacon: N" line k printed, 0 when none */
static unsigned long last_beacon(struct skiln *k)
{
	unsigned long last = 0, n;
	int len;
	for (const char *p = k->p.out; (p = strstr(p, "kt-beacon: ")); p++)
		if (sscanf(p, "kt-beacon: %lu%n", &n, &len) == 1 &&
		    (p[len] == '\r' || p[len] == '\n'))
			last = n;
	return last;
}

/*
 * The same with Linux: tests/linux's image on a read-only root (the clones
 * share its file) runs kt-beacon, which sends one ICMP echo request towards
 * the host every 500 ms of its clock and numbers them. After the ten loads
 * each clone goes on numbering from the snapshot's last beacon, and its
 * frames arrive on its own tap, none on the snapshot's.
 */
Test(snapshot_clones, ten_linux_clones_own_taps)
{
	netns_up();
	struct skiln *base = sk_start("base");
	char *b = kh_fmt("{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", "
	                 "\"boot_args\": \"console=ttyS0 reboot=k panic=1 "
	                 "kiln.run=kt-beacon,eth0,10.0.9.2/24,10.0.9.1,500,1000000\"}",
	                 lg_image("vmlinux"), lg_image("initramfs.cpio"));
	sk_ok(base, "PUT", "/boot-source", b);
	free(b);
	sk_ok(base, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 256}");
	b = kh_fmt("{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, "
	           "\"is_read_only\": true}",
	           lg_image("rootfs.ext4"));
	sk_ok(base, "PUT", "/drives/rootfs", b);
	free(b);
	sk_ok(base, "PUT", "/network-interfaces/eth0",
	      "{\"iface_id\": \"eth0\", \"host_dev_name\": \"kst\", "
	      "\"guest_mac\": \"06:00:ac:10:00:02\"}");
	sk_ok(base, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	cr_assert(kh_wait_for(&base->p, "kt-beacon: 3", 300000), "Linux did not start (%s):\n%s",
	          kh_status(&base->p), base->p.out);
	cr_assert_gt(tap_rx_packets("kst"), 0, "the base VM's frames did not reach its tap");
	sk_pause(base);
	kh_wait_for(&base->p, "\x01", 500); /* all the guest wrote before the pause */
	unsigned long at = last_beacon(base);
	sk_create(base, "Full", "vm.snap", "vm.mem");
	sk_kill(base);
	unsigned long long base_rx = tap_rx_packets("kst");

	struct loader l[CLONES];
	load_clones(l);
	for (int i = 0; i < CLONES; i++) {
		char *next = kh_fmt("kt-beacon: %lu", at + 3);
		cr_assert(kh_wait_for(&l[i].k->p, next, 240000), "clone %d: no \"%s\" (%s):\n%s", i,
		          next, kh_status(&l[i].k->p), l[i].k->p.out);
		free(next);
		const char *first = strstr(l[i].k->p.out, "kt-beacon: ");
		cr_assert(first && strtoul(first + strlen("kt-beacon: "), NULL, 10) == at + 1,
		          "clone %d did not go on from beacon %lu:\n%s", i, at, l[i].k->p.out);
		char tap[16];
		snprintf(tap, sizeof(tap), "kst%d", i);
		cr_assert_eq(carrier(tap), 1, "clone %d does not hold %s (%s)", i, tap,
		             kh_status(&l[i].k->p));
		cr_assert_gt(tap_rx_packets(tap), 0, "clone %d's frames did not reach %s", i, tap);
	}
	cr_assert_eq(carrier("kst"), 0, "a clone took the snapshot's own tap");
	cr_assert_eq(tap_rx_packets("kst"), base_rx, "frames on the snapshot's tap after it died");
}
