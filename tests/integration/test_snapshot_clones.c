// SPDX-License-Identifier: Apache-2.0
/*
 * Ten clones of one snapshot (issue 5): the memck guest with a network
 * interface on tap kst is snapshotted once; ten kiln processes load it at
 * the same time (the requests sent from ten threads), each with
 * network_overrides giving it its own tap kst0..kst9, and each guest goes
 * on from the snapshot's report on its own. The taps live in a private
 * network namespace this test process moves into (so the kilns, its
 * children, are there too), deleted at the end. Needs root.
 */
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
	if (netns[0]) {
		char *cmd = kh_fmt("ip netns del %s", netns);
		if (system(cmd) != 0)
			fprintf(stderr, "test_snapshot_clones: could not delete netns %s\n", netns);
		free(cmd);
	}
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
	for (int i = 0; i < CLONES; i++) {
		memck_continues(l[i].k, at);
		char tap[16];
		snprintf(tap, sizeof(tap), "kst%d", i);
		cr_assert_eq(carrier(tap), 1, "clone %d does not hold %s", i, tap);
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
