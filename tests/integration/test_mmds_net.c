// SPDX-License-Identifier: Apache-2.0
/*
 * The MMDS from the guest's side, end to end on this host's KVM: the
 * freestanding `mmds` guest (tests/guests/mmds.c) sends raw frames through
 * virtio-net on a real tap (ktap0, in a network namespace of the test's
 * own) to 169.254.169.254: ARP, a TCP handshake, a GET, FIN, malformed
 * frames and RST cases, and checks every answer. This side watches the tap
 * with an AF_PACKET socket: no frame to or from the MMDS address may reach
 * it while the interface serves the MMDS, and the guest's frames do reach
 * it when the interface does not. Needs root (skipped otherwise).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TAP "ktap0"

static struct kproc kp;
static char netns[32];
static bool netns_made;
static char *cfg_path, *meta_path;

static void netns_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a network namespace and a tap");
	snprintf(netns, sizeof(netns), "kiln-m%d", (int)getpid());
	netns_made = true;
	cr_assert_eq(kh_netns_with_tap(netns, TAP), 0, "cannot make %s in network namespace %s",
	             TAP, netns);
}

static void teardown(void)
{
	kh_kill(&kp);
	if (netns_made)
		kh_netns_del(netns);
	if (cfg_path)
		unlink(cfg_path);
	if (meta_path)
		unlink(meta_path);
	free(cfg_path);
	free(meta_path);
}

TestSuite(mmds_net, .fini = teardown, .timeout = 120);

/* counts the tap's frames to or from 169.254.169.254 (ARP or IPv4) */
struct sniff {
	int sock;
	pthread_t thread;
	bool stop;
	unsigned mmds_frames, frames;
};

static bool is_mmds(const uint8_t *f, ssize_t n)
{
	static const uint8_t ip[4] = {169, 254, 169, 254};
	if (n >= 42 && f[12] == 0x08 && f[13] == 0x06)
		return !memcmp(f + 28, ip, 4) || !memcmp(f + 38, ip, 4);
	if (n >= 34 && f[12] == 0x08 && f[13] == 0x00)
		return !memcmp(f + 26, ip, 4) || !memcmp(f + 30, ip, 4);
	return false;
}

static void *sniff_main(void *arg)
{
	struct sniff *s = arg;
	uint8_t f[65536];

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		struct pollfd p = {.fd = s->sock, .events = POLLIN};
		if (poll(&p, 1, 50) != 1)
			continue;
		ssize_t n = recv(s->sock, f, sizeof(f), 0);
		if (n <= 0)
			continue;
		__atomic_add_fetch(&s->frames, 1, __ATOMIC_RELAXED);
		if (is_mmds(f, n))
			__atomic_add_fetch(&s->mmds_frames, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static struct sniff *sniff_start(void)
{
	struct sniff *s = calloc(1, sizeof(*s));
	cr_assert(s);
	s->sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	cr_assert_geq(s->sock, 0);
	struct sockaddr_ll a = {.sll_family = AF_PACKET,
	                        .sll_protocol = htons(ETH_P_ALL),
	                        .sll_ifindex = (int)if_nametoindex(TAP)};
	cr_assert_eq(bind(s->sock, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(pthread_create(&s->thread, NULL, sniff_main, s), 0);
	return s;
}

static void sniff_stop(struct sniff *s)
{
	__atomic_store_n(&s->stop, true, __ATOMIC_RELAXED);
	pthread_join(s->thread, NULL);
	close(s->sock);
}

/* the mmds guest on ktap0 as eth0; `mmds_cfg`: the mmds-config object, or NULL */
static int boot_mmds(const char *mmds_cfg, const char *metadata, const char *args)
{
	char *cfg = kh_fmt(
	        "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	        "\"" KH_GUEST_ARGS " %s\"},"
	        " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128},"
	        " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"" TAP
	        "\", \"guest_mac\": \"06:00:ac:10:00:02\"}]%s%s}",
	        kh_guest("mmds"), args ? args : "", mmds_cfg ? ", \"mmds-config\": " : "",
	        mmds_cfg ? mmds_cfg : "");
	cfg_path = kh_write_temp(cfg, ".json");
	meta_path = kh_write_temp(metadata, ".json");
	free(cfg);
	const char *argv[] = {"kiln",    "--no-api", "--config-file", cfg_path, "--metadata",
	                      meta_path, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	return kh_wait_exit(&kp, 60000);
}

static void expect_out(const char *needle)
{
	cr_expect(strstr(kp.out, needle) != NULL, "missing \"%s\" in output:\n%s", needle, kp.out);
}

Test(mmds_net, v1_guest_gets_metadata_and_nothing_reaches_the_tap)
{
	char mark[17], *meta, *body;

	netns_up();
	cr_assert_eq(kh_marker(mark), 0);
	meta = kh_fmt("{\"latest\": {\"meta-data\": {\"id\": \"i-%s\"}}}", mark);
	body = kh_fmt("mmds: body i-%s\n", mark);
	struct sniff *s = sniff_start();
	int st = boot_mmds("{\"network_interfaces\": [\"eth0\"]}", meta, NULL);
	sniff_stop(s);
	cr_assert_eq(st, 0, "kiln exited with %d; output:\n%s", st, kp.out);
	expect_out("mmds: arp 169.254.169.254 is at 06:01:23:45:67:01");
	expect_out("mmds: GET /latest/meta-data/id -> HTTP/1.1 200 OK");
	expect_out(body);
	expect_out("mmds: 5 malformed frames dropped");
	expect_out("mmds: resets ok");
	expect_out("mmds: ok");
	cr_expect_eq(s->mmds_frames, 0, "%u MMDS frames reached the tap", s->mmds_frames);
	free(s);
	free(meta);
	free(body);
}

Test(mmds_net, v2_refuses_a_get_without_a_token)
{
	netns_up();
	int st = boot_mmds("{\"network_interfaces\": [\"eth0\"], \"version\": \"V2\"}",
	                   "{\"latest\": {\"x\": \"y\"}}", "mmds.path=/latest/x");
	cr_assert_eq(st, 0, "kiln exited with %d; output:\n%s", st, kp.out);
	expect_out("mmds: GET /latest/x -> HTTP/1.1 401 Unauthorized");
	expect_out("mmds: body No MMDS token provided.");
	expect_out("mmds: ok");
}

Test(mmds_net, another_address)
{
	netns_up();
	/* the MMDS answers elsewhere: the guest's frames to 169.254.169.254 go to the tap */
	struct sniff *s = sniff_start();
	int st =
	        boot_mmds("{\"network_interfaces\": [\"eth0\"], \"ipv4_address\": \"169.254.1.1\"}",
	                  "{}", NULL);
	sniff_stop(s);
	cr_assert_geq(st, 0, "kiln did not end; output:\n%s", kp.out);
	expect_out("mmds: FAILED: no good ARP reply");
	cr_expect_geq(s->mmds_frames, 1, "the guest's ARP did not reach the tap");
	free(s);
}

Test(mmds_net, not_an_mmds_interface)
{
	netns_up();
	struct sniff *s = sniff_start();
	int st = boot_mmds(NULL, "{}", NULL);
	sniff_stop(s);
	cr_assert_geq(st, 0, "kiln did not end; output:\n%s", kp.out);
	expect_out("mmds: FAILED: no good ARP reply");
	cr_expect_geq(s->mmds_frames, 1, "the guest's ARP did not reach the tap");
	free(s);
}
