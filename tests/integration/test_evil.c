// SPDX-License-Identifier: Apache-2.0
/*
 * A hostile guest end to end: kiln boots the `evil` test guest (tests/
 * guests/evil.c) with a drive, an entropy device and a tap; the guest breaks
 * each of the 17 virtqueue rules of virtio 1.2 s2.7 in turn (evil=all) on
 * one device (evil.dev=blk|rng|net), and after each one checks that the
 * device reports DEVICE_NEEDS_RESET while another device still works, then
 * resets and re-initialises it. This side asserts the guest's lines, one
 * log line from kiln per broken rule naming the device, kiln's clean exit
 * (0) and that nothing in its output is a sanitizer report. With net as the
 * device that must keep working, its frames are also counted on the tap.
 *
 * Also: GET /vm/config through the API shows the drives, network
 * interfaces, vsock and entropy device of a booted VM, and the guest sees
 * all four announced on its command line.
 *
 * The tap lives in a network namespace of this process's own, deleted at
 * the end; the tests need root (skipped otherwise).
 */
#include "api_test.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TAP        "ktap0"
#define RULES      17
#define CHECK_TYPE 0x88b7 /* the evil guest's frames checking the net device */

static const char *const rules[RULES] = {
        "loop",   "oob",     "wrap",  "chain", "avail", "head", "next",     "indirect", "zerolen",
        "indlen", "indnext", "noind", "order", "huge",  "ring", "misalign", "qsize",
};

static char netns[32];
static bool netns_made;

static void teardown(void)
{
	api_test_cleanup();
	if (netns_made) {
		kh_netns_del(netns);
		netns_made = false;
	}
}

TestSuite(evil, .init = api_test_init, .fini = teardown, .timeout = 180);

/* a namespace of our own with ktap0 up in it, and this process (so kiln) inside */
static void netns_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a network namespace and a tap");
	snprintf(netns, sizeof(netns), "kiln-e%d", (int)getpid());
	netns_made = true; /* teardown deletes it even if entering fails half way */
	cr_assert_eq(kh_netns_with_tap(netns, TAP), 0, "cannot make %s in network namespace %s",
	             TAP, netns);
}

/* an AF_PACKET socket on the tap for the guest's check frames */
static int check_frames_socket(void)
{
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(CHECK_TYPE));
	cr_assert_geq(s, 0, "AF_PACKET: %s", strerror(errno));
	struct sockaddr_ll a = {.sll_family = AF_PACKET,
	                        .sll_protocol = htons(CHECK_TYPE),
	                        .sll_ifindex = (int)if_nametoindex(TAP)};
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
	return s;
}

/* the check frames queued on `s`: 60 bytes, "evil guest check" after the header */
static unsigned count_check_frames(int s)
{
	unsigned n = 0;
	uint8_t f[2048];
	ssize_t len;

	while ((len = recv(s, f, sizeof(f), 0)) > 0) {
		cr_expect_eq(len, 60);
		cr_expect(len >= 30 && !memcmp(f + 14, "evil guest check", 16));
		n++;
	}
	return n;
}

/* the config of a VM with a drive, an entropy device and (in the netns) a tap */
static char *evil_config(const char *disk, const char *args, bool net)
{
	return kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	              "\"" KH_GUEST_ARGS " %s\"},"
	              " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128},"
	              " \"drives\": [{\"drive_id\": \"d0\", \"path_on_host\": \"%s\","
	              " \"is_root_device\": false, \"is_read_only\": false}],"
	              " \"entropy\": {}%s}",
	              kh_guest("evil"), args, disk,
	              net ? ", \"network-interfaces\": [{\"iface_id\": \"eth0\", "
	                    "\"host_dev_name\": \"" TAP "\", \"guest_mac\": \"06:00:ac:10:00:02\"}]"
	                  : "");
}

static const char *make_disk(void)
{
	char path[] = "/tmp/kiln-it-evil-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	tmp[0] = strdup(path);
	return tmp[0];
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/*
 * Boots the evil guest breaking every rule on `dev` (kiln's name for it in
 * its log: `logname`, e.g. "virtio-blk d0: queue 0: "), `other` keeping on.
 */
static void break_all(const char *dev, const char *other, const char *logname, bool net)
{
	const char *disk = make_disk();
	char *args = kh_fmt("evil=all evil.dev=%s evil.other=%s", dev, other);
	char *cfg = evil_config(disk, args, net);
	free(args);
	cr_assert_eq(kh_spawn_config(&kp, cfg), 0);
	free(cfg);
	int st = kh_wait_exit(&kp, 120000);
	const char *out = kp.out;
	cr_assert_eq(st, 0, "kiln exited with %d; output:\n%s", st, out);
	cr_assert(!strstr(out, "FAILED"), "%s", out);
	char *line = kh_fmt("evil: breaking %s at ", dev);
	cr_assert(strstr(out, line), "missing \"%s\":\n%s", line, out);
	free(line);
	for (unsigned i = 0; i < RULES; i++) {
		line = kh_fmt("evil: %s device needs reset, other device ok (", rules[i]);
		cr_expect(strstr(out, line), "missing \"%s\":\n%s", line, out);
		free(line);
		line = kh_fmt("evil: %s reset and re-initialised, device ok\n", rules[i]);
		cr_expect(strstr(out, line), "missing \"%s\":\n%s", line, out);
		free(line);
	}
	cr_assert(strstr(out, "evil: all 17 rules ok (0 skipped)\n"), "%s", out);
	/* kiln said why, once per rule, for that device only */
	unsigned said = 0;
	for (const char *p = out; (p = strstr(p, logname)) != NULL; p++) {
		const char *end = strchr(p, '\n'), *why = strstr(p, "device needs reset");
		said += why && (!end || why < end);
	}
	cr_expect_eq(said, RULES, "kiln logged %u NEEDS_RESET lines for %s:\n%s", said, logname,
	             out);
	cr_expect_eq(count(out, "device needs reset\n"), RULES, "other devices broke:\n%s", out);
	cr_expect(!strstr(out, "Sanitizer") && !strstr(out, "runtime error"), "%s", out);
}

Test(evil, every_rule_on_rng_blk_keeps_working)
{
	break_all("rng", "blk", "virtio-rng rng: queue 0: ", false);
}

Test(evil, every_rule_on_blk_rng_keeps_working)
{
	break_all("blk", "rng", "virtio-blk d0: queue 0: ", false);
}

Test(evil, every_rule_on_net_tx_blk_keeps_working)
{
	netns_up();
	break_all("net", "blk", "virtio-net eth0: queue 1: ", true);
}

Test(evil, every_rule_on_blk_net_keeps_working)
{
	netns_up();
	int s = check_frames_socket();
	break_all("blk", "net", "virtio-blk d0: queue 0: ", true);
	/* the guest checked the net device after every broken rule: one frame each */
	unsigned frames = count_check_frames(s);
	cr_expect_geq(frames, RULES, "%u check frames reached the tap", frames);
	close(s);
}

/* ---------------------------------------------------- GET /vm/config */

static json_t *only(json_t *cfg, const char *key)
{
	json_t *a = json_object_get(cfg, key);
	cr_assert(json_is_array(a) && json_array_size(a) == 1, "%s: %s", key,
	          json_dumps(cfg, JSON_COMPACT));
	return json_array_get(a, 0);
}

static void expect_str(json_t *o, const char *key, const char *want)
{
	const char *got = json_string_value(json_object_get(o, key));
	cr_expect(got && !strcmp(got, want), "%s is \"%s\", not \"%s\"", key, got ? got : "(none)",
	          want);
}

Test(evil, vm_config_shows_the_devices)
{
	netns_up();
	const char *disk = make_disk();
	tmp[1] = kh_fmt("/tmp/kiln-it-evil-%d.vsock", (int)getpid());
	start_kiln(&kp);
	char *body = kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"" KH_GUEST_ARGS
	                    " virtio=1 sleep=3000\"}",
	                    kh_guest("hello"));
	call_ok("PUT", "/boot-source", body);
	free(body);
	call_ok("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	body = kh_fmt("{\"drive_id\": \"d0\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
	              "\"is_read_only\": true}",
	              disk);
	call_ok("PUT", "/drives/d0", body);
	free(body);
	call_ok("PUT", "/network-interfaces/eth0",
	        "{\"iface_id\": \"eth0\", \"host_dev_name\": \"" TAP
	        "\", \"guest_mac\": \"06:00:ac:10:00:02\"}");
	body = kh_fmt("{\"guest_cid\": 3, \"uds_path\": \"%s\"}", tmp[1]);
	call_ok("PUT", "/vsock", body);
	free(body);
	call_ok("PUT", "/entropy",
	        "{\"rate_limiter\": {\"bandwidth\": {\"size\": 65536, \"refill_time\": 100}}}");
	call_ok("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	cr_assert(kh_wait_for(&kp, "hello from the kiln test guest", 30000), "%s", kp.out);
	cr_expect_str_eq(state(), "Running");

	json_t *cfg = call("GET", "/vm/config", NULL, 200);
	json_t *d = only(cfg, "drives");
	expect_str(d, "drive_id", "d0");
	expect_str(d, "path_on_host", disk);
	cr_expect(json_is_true(json_object_get(d, "is_read_only")));
	json_t *n = only(cfg, "network-interfaces");
	expect_str(n, "iface_id", "eth0");
	expect_str(n, "host_dev_name", TAP);
	expect_str(n, "guest_mac", "06:00:ac:10:00:02");
	json_t *v = json_object_get(cfg, "vsock");
	cr_assert(json_is_object(v), "no vsock in %s", json_dumps(cfg, JSON_COMPACT));
	cr_expect_eq(json_integer_value(json_object_get(v, "guest_cid")), 3);
	expect_str(v, "uds_path", tmp[1]);
	json_t *bw = json_object_get(
	        json_object_get(json_object_get(cfg, "entropy"), "rate_limiter"), "bandwidth");
	cr_assert(json_is_object(bw), "no entropy limiter in %s", json_dumps(cfg, JSON_COMPACT));
	cr_expect_eq(json_integer_value(json_object_get(bw, "size")), 65536);
	cr_expect_eq(json_integer_value(json_object_get(bw, "refill_time")), 100);
	json_decref(cfg);

	/* the guest sees the four devices where kiln put them */
	cr_assert(kh_wait_for(&kp, "bye", 30000), "%s", kp.out);
	static const char *const kinds[] = {"blk", "net", "vsock", "rng"};
	for (unsigned i = 0; i < 4; i++) {
		cr_expect(strstr(kp.out, kinds[i]) != NULL, "%s", kp.out);
		char *line = kh_fmt("virtio: 0x%x irq %u ", 0xd0000000u + i * 0x1000u, 5 + i);
		cr_expect(strstr(kp.out, line), "missing \"%s\":\n%s", line, kp.out);
		free(line);
	}
	cr_assert_eq(kh_wait_exit(&kp, 30000), 0, "%s", kp.out);
}
