// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/test_linux_mmds.c: the MMDS read by Linux's own stack
 * and busybox's HTTP clients. kiln boots tests/linux's image with eth0 on
 * a tap in a network namespace of this test's own, mmds-config naming
 * eth0 and --metadata holding a fresh marker; the image's /init runs one
 * `sh -c` script (spaces written as ${IFS}: the kernel command line
 * splits on spaces and rootfs-init.sh on commas) that brings eth0 up, adds
 * Firecracker's route (ip route add 169.254.169.254 dev eth0) and reports
 * through /dev/kmsg what busybox nc got for each request:
 *   V1: a GET of a path (IMDS text) and of its parent with
 *       Accept: application/json;
 *   V2: a GET without a token (401), PUT /latest/api/token, a GET with
 *       the token, a GET with a wrong one (401);
 *   PATCH: the host merges a new value into the store through the API
 *       while the guest polls it, and the guest reads the new value.
 * Needs root and the image (tests/linux/build.py); runs in the test bed.
 */
#include "api_client.h"
#include "linux_guest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEM_MIB 256
#define TAP     "kmtap0"
#define MMDS    "http://169.254.169.254"

static struct kproc kp;
static char disk[64], netns[32], *meta, sock[64];

static void teardown(void)
{
	lg_cleanup(&kp, disk);
	if (sock[0])
		unlink(sock);
	sock[0] = '\0';
	if (meta) {
		unlink(meta);
		free(meta);
		meta = NULL;
	}
	kh_netns_del(netns);
	netns[0] = '\0';
}

TestSuite(linux_mmds, .fini = teardown, .timeout = 600);

static void netns_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a network namespace and a tap");
	snprintf(netns, sizeof(netns), "kiln-lm%d", (int)getpid());
	cr_assert_eq(kh_netns_with_tap(netns, TAP), 0, "cannot make netns %s with " TAP, netns);
}

/*
 * kiln.run= for `sh -c script`: ${IFS} for each space (the script has no
 * comma), each backslash doubled for the JSON string it goes into
 */
static char *run_arg(const char *script)
{
	size_t n = 0;
	for (const char *p = script; *p; p++)
		n += *p == ' ' ? 6 : *p == '\\' ? 2 : 1;
	char *out = malloc(n + 7), *o = out;
	cr_assert(out);
	o += sprintf(o, "sh,-c,");
	for (const char *p = script; *p; p++) {
		cr_assert(*p != ',' && *p != '"', "the script cannot hold %c", *p);
		if (*p == ' ')
			o += sprintf(o, "${IFS}");
		else if (*p == '\\') /* the argument goes into a JSON string */
			o += sprintf(o, "\\\\");
		else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

/*
 * boots the image with `script` and the MMDS `version` on eth0, `metadata`
 * in the store; the API on `sock` when sock[0] is set
 */
static void boot(const char *script, const char *version, const char *metadata)
{
	netns_up();
	meta = kh_write_temp(metadata, ".json");
	char *flag = kh_fmt("--metadata=%s", meta);
	char *extra =
	        kh_fmt(", \"network-interfaces\": [{\"iface_id\": \"eth0\", "
	               "\"host_dev_name\": \"" TAP "\", \"guest_mac\": \"06:00:ac:10:00:02\"}],"
	               " \"mmds-config\": {\"version\": \"%s\", \"network_interfaces\": "
	               "[\"eth0\"]}",
	               version);
	char *arg = run_arg(script);
	lg_spawn_api(&kp, MEM_MIB, lg_copy_rootfs(disk), false, arg, "", extra, flag,
	             sock[0] ? sock : NULL);
	free(arg);
	free(extra);
	free(flag);
}

/* the guest's line that starts with `start` (to its end), asserted to hold `want` */
static void expect_report(const char *start, const char *want)
{
	lg_expect_line(&kp, start, 120);
	/* the rest of the line may still be on its way (reading more may move kp.out) */
	for (int i = 0; i < 500 && !strchr(strstr(kp.out, start), '\n'); i++)
		kh_wait_for(&kp, "\x01never\x01", 20);
	const char *l = strstr(kp.out, start), *end = strchr(l, '\n');
	int len = end ? (int)(end - l) : (int)strlen(l);
	cr_expect(memmem(l, (size_t)len, want, strlen(want)) != NULL, "\"%.*s\" lacks \"%s\"", len,
	          l, want);
}

#define NET_UP                                                                                     \
	"ip link set eth0 up;ip addr add 10.0.9.2/24 dev eth0;"                                    \
	"ip route add 169.254.169.254 dev eth0;sleep 1;"

/*
 * busybox nc sends a request and prints the answer (busybox-static's wget
 * in Debian 12 segfaults, with any URL): a shell word of the answer's
 * lines, without spaces; `hdr` is one more header line, or "". printf
 * turns \040 into the spaces the command line cannot carry.
 */
#define NC_REQ(method, path, hdr)                                                                  \
	"printf " method "\\\\040" path "\\\\040HTTP/1.1\\\\r\\\\n" hdr "\\\\r\\\\n | nc -w 3 "    \
	"169.254.169.254 80"

Test(linux_mmds, v1_reads_the_store)
{
	char mark[17];
	cr_assert_eq(kh_marker(mark), 0);
	char *doc = kh_fmt("{\"latest\": {\"meta-data\": {\"id\": \"i-%s\"}}}", mark);
	boot(NET_UP "R=$(" NC_REQ(
	             "GET", "/latest/meta-data/id",
	             "") ");echo kt-mmds: v1 $R >/dev/kmsg;"
	                 "R=$(" NC_REQ("GET", "/latest/meta-data",
	                               "Accept:application/json\\\\r\\\\n") ");"
	                                                                    "echo kt-mmds: json $R "
	                                                                    ">/dev/kmsg",
	     "V1", doc);
	char *v1 = kh_fmt("i-%s", mark);
	char *json = kh_fmt("{\"id\":\"i-%s\"}", mark);
	lg_expect_run(&kp, "rw", "kt-mmds: json", 0);
	expect_report("kt-mmds: v1", "HTTP/1.1 200 OK");
	expect_report("kt-mmds: v1", v1);
	expect_report("kt-mmds: json", json);
	free(v1);
	free(json);
	free(doc);
}

Test(linux_mmds, v2_tokens)
{
	char mark[17];
	cr_assert_eq(kh_marker(mark), 0);
	char *doc = kh_fmt("{\"latest\": {\"x\": \"y-%s\"}}", mark);
	boot(NET_UP "R=$(" NC_REQ(
	             "GET", "/latest/x",
	             "") ");echo kt-mmds: notoken $R >/dev/kmsg;"
	                 "R=$(" NC_REQ(
	                         "PUT", "/latest/api/token",
	                         "X-metadata-token-ttl-seconds:"
	                         "60\\\\r\\\\n") ");"
	                                         "echo kt-mmds: put $R "
	                                         ">/dev/kmsg;T=$(echo $R "
	                                         "| awk {print\\$NF});"
	                                         "echo kt-mmds: token "
	                                         "${#T} >/dev/kmsg;"
	                                         "R=$(" NC_REQ(
	                                                 "GET", "/latest/x",
	                                                 "X-"
	                                                 "metadata-"
	                                                 "token:$"
	                                                 "T\\\\r\\\\"
	                                                 "n") ");"
	                                                      "echo "
	                                                      "kt-"
	                                                      "mmds:"
	                                                      " v2 "
	                                                      "$R "
	                                                      ">/"
	                                                      "dev/"
	                                                      "kmsg;"
	                                                      "R=$"
	                                                      "(" NC_REQ(
	                                                              "GET", "/latest/x",
	                                                              "X-metadata-token:x$"
	                                                              "T\\\\r\\\\n") ");"
	                                                                             "echo "
	                                                                             "kt-mmds: "
	                                                                             "badtoken $R "
	                                                                             ">/dev/kmsg",
	     "V2", doc);
	char *v2 = kh_fmt("y-%s", mark);
	lg_expect_run(&kp, "rw", "kt-mmds: badtoken", 0);
	expect_report("kt-mmds: notoken", "401 Unauthorized");
	expect_report("kt-mmds: put", "200 OK");
	expect_report("kt-mmds: token", "kt-mmds: token 32");
	expect_report("kt-mmds: v2", "200 OK");
	expect_report("kt-mmds: v2", v2);
	expect_report("kt-mmds: badtoken", "401 Unauthorized");
	free(v2);
	free(doc);
}

/*
 * The guest reads /latest/x (V1), says what it got, and reads it again 15 s
 * later; the host PATCHes a new value in (a JSON merge patch) as soon as
 * the first report is out, and the second read must see it.
 */
Test(linux_mmds, a_patch_reaches_the_running_guest)
{
	char mark[17];
	cr_assert_eq(kh_marker(mark), 0);
	snprintf(sock, sizeof(sock), "/tmp/kiln-lmmds-%d.sock", (int)getpid());
	unlink(sock);
	char *doc = kh_fmt("{\"latest\": {\"x\": \"old-%s\", \"keep\": \"k\"}}", mark);
	/* ${IFS} for spaces hides keywords (while, case) from the shell: two reads, 15 s apart */
	const char *script = NET_UP "R=$(" NC_REQ(
	        "GET", "/latest/x", "") ");"
	                                "echo kt-mmds: before $R >/dev/kmsg;sleep 15;"
	                                "R=$(" NC_REQ("GET", "/latest/x",
	                                              "") ");"
	                                                  "echo kt-mmds: after $R >/dev/kmsg";
	boot(script, "V1", doc);
	char *old = kh_fmt("old-%s", mark);
	expect_report("kt-mmds: before", old);
	char *patch = kh_fmt("{\"latest\": {\"x\": \"new-%s\"}}", mark);
	struct ac_resp r;
	cr_assert_eq(ac_request(sock, "PATCH", "/mmds", patch, &r), 204, "PATCH /mmds: %s",
	             r.body ? r.body : "");
	ac_resp_free(&r);
	cr_assert_eq(ac_request(sock, "GET", "/mmds", NULL, &r), 200);
	char *new = kh_fmt("new-%s", mark);
	cr_expect(strstr(r.body, "\"keep\"") && strstr(r.body, new),
	          "the merge kept the other key and took the new value: %s", r.body);
	ac_resp_free(&r);
	lg_expect_run(&kp, "rw", "kt-mmds: after", 0);
	expect_report("kt-mmds: after", new);
	free(new);
	free(patch);
	free(old);
	free(doc);
}
