// SPDX-License-Identifier: Apache-2.0
/*
 * Live migration end to end (issue 11): the memck guest moves from one
 * kiln process to another while it rewrites and checks its memory; its
 * reports go on in the target without a gap and its checksums hold, and
 * the source exits 0 once the target runs the guest.
 */
#include "snap_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

TestSuite(migration, .init = snap_test_init, .fini = snap_test_fini, .timeout = 480);

/* GET /migration's "phase" of k (a static buffer) */
static const char *phase_of(struct skiln *k)
{
	static char phase[32];
	json_t *j = NULL;
	int st = sk_req(k, "GET", "/migration", NULL, &j);
	cr_assert_eq(st, 200, "GET /migration: %d", st);
	snprintf(phase, sizeof(phase), "%s", json_string_value(json_object_get(j, "phase")));
	json_decref(j);
	return phase;
}

/* GET /migration's integer field `name` of k */
static long long stat_of(struct skiln *k, const char *name)
{
	json_t *j = NULL;
	int st = sk_req(k, "GET", "/migration", NULL, &j);
	cr_assert_eq(st, 200, "GET /migration: %d", st);
	json_t *v = json_object_get(j, name);
	cr_assert(json_is_integer(v), "GET /migration has no integer \"%s\"", name);
	long long n = json_integer_value(v);
	json_decref(j);
	return n;
}

/* moves the guest from `src` to a new kiln over a unix socket; returns the target */
static struct skiln *move(struct skiln *src, const char *name, struct memck_at *at)
{
	struct skiln *dst = sk_start(name);
	char *sock = kh_fmt("mig-%s.sock", name);
	char *body = kh_fmt("{\"listen\": \"unix:%s\"}", snap_file(sock));
	sk_ok(dst, "PUT", "/migration/receive", body);
	free(body);
	cr_assert_str_eq(phase_of(dst), "listening");
	cr_assert_str_eq(sk_state(dst), "Not started");

	body = kh_fmt("{\"destination\": \"unix:%s\", \"max_downtime_ms\": 100}", snap_file(sock));
	sk_ok(src, "PUT", "/migration/send", body);
	free(body);
	free(sock);
	int status = kh_wait_exit(&src->p, 120000);
	cr_assert_eq(status, 0, "the source did not exit 0 (%d):\n%s", status, src->p.out);
	cr_assert(strstr(src->p.out, "migration to ") && strstr(src->p.out, "downtime"),
	          "the source printed no migration line:\n%s", src->p.out);
	/* the last report the source printed, then the target's next ones */
	*at = memck_continues(dst, memck_last(src));
	cr_assert_str_eq(sk_state(dst), "Running");
	cr_assert_str_eq(phase_of(dst), "completed");
	long long pages = stat_of(dst, "pages"), bytes = stat_of(dst, "bytes");
	cr_assert_geq(pages, MEMCK_MIB * 256, "the target received %lld pages", pages);
	cr_assert_gt(bytes, 0);
	return dst;
}

/* one -> two -> three: each move goes on where the last one left the guest */
Test(migration, memck_moves_twice_over_unix_sockets)
{
	struct skiln *one = sk_start("one");
	sk_boot_memck(one, NULL, false);
	struct memck_at at = memck_started(one, 3);
	struct skiln *two = move(one, "two", &at);
	struct skiln *three = move(two, "three", &at);
	memck_last(three);
}

/* --------------------------------------------- a target with other CPU features */

static int unix_listen(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(path), sizeof(a.sun_path));
	strcpy(a.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", path,
	             strerror(errno));
	cr_assert_eq(listen(fd, 1), 0);
	return fd;
}

static int unix_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, path);
	return connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? fd : -1;
}

static bool read_all(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, (const char *)buf + off, len - off);
		if (w <= 0)
			return false;
		off += (size_t)w;
	}
	return true;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Stands between a source and a target as a host with another CPU would
 * look: the HELLO's CPUID leaf 7.0 EBX (the "cpu" section: u8 3, "cpu",
 * u16 version, u32 length, u32 count, then 7 u32 per entry) gets every bit
 * set, which no host's KVM offers; then whatever the target answers goes
 * back to the source. `ok` says a leaf 7.0 entry was found and changed.
 */
struct cpu_proxy {
	int lfd;
	const char *target;
	bool ok;
	pthread_t thread;
};

static void *cpu_proxy(void *arg)
{
	struct cpu_proxy *p = arg;
	int src = accept(p->lfd, NULL, NULL), dst = -1;
	uint8_t head[16], *hello = NULL;
	if (src < 0 || !read_all(src, head, sizeof(head)) || le32(head) != 1)
		goto out;
	uint64_t len = le32(head + 8) | (uint64_t)le32(head + 12) << 32;
	if (len > (1u << 20) || !(hello = malloc(len)) || !read_all(src, hello, len))
		goto out;
	for (uint64_t i = 0; i + 10 + 4 <= len; i++) {
		if (memcmp(hello + i,
		           "\x03"
		           "cpu",
		           4) != 0)
			continue;
		uint8_t *ent = hello + i + 10;
		uint32_t n = le32(ent);
		for (uint32_t k = 0; k < n && (uint64_t)(ent + 4 + 28 * (k + 1) - hello) <= len;
		     k++) {
			uint8_t *e = ent + 4 + 28 * k;
			if (le32(e) == 7 && le32(e + 4) == 0) {
				memset(e + 16, 0xff, 4); /* function, index, flags, eax, EBX */
				p->ok = true;
			}
		}
		break;
	}
	if ((dst = unix_connect(p->target)) < 0 || !write_all(dst, head, sizeof(head)) ||
	    !write_all(dst, hello, len))
		goto out;
	char buf[4096];
	ssize_t r;
	while ((r = read(dst, buf, sizeof(buf))) > 0)
		if (!write_all(src, buf, (size_t)r))
			break;
out:
	free(hello);
	if (dst >= 0)
		close(dst);
	if (src >= 0)
		close(src);
	return NULL;
}

/*
 * The target refuses a guest whose CPU has features its KVM lacks, before
 * any memory crosses; both sides say why, the source's guest runs on, and
 * the target goes on listening (a real source then migrates to it).
 */
Test(migration, target_with_other_cpu_features_refuses)
{
	struct skiln *src = sk_start("src");
	sk_boot_memck(src, NULL, false);
	memck_started(src, 2);
	struct skiln *dst = sk_start("dst");
	char *body = kh_fmt("{\"listen\": \"unix:%s\"}", snap_file("mig-dst.sock"));
	sk_ok(dst, "PUT", "/migration/receive", body);
	free(body);

	struct cpu_proxy p = {.lfd = unix_listen(snap_file("mig-proxy.sock")),
	                      .target = snap_file("mig-dst.sock")};
	cr_assert_eq(pthread_create(&p.thread, NULL, cpu_proxy, &p), 0);
	body = kh_fmt("{\"destination\": \"unix:%s\"}", snap_file("mig-proxy.sock"));
	sk_ok(src, "PUT", "/migration/send", body);
	free(body);
	pthread_join(p.thread, NULL);
	close(p.lfd);
	cr_assert(p.ok, "the handshake had no CPUID leaf 7.0 to change");

	/* the source: failed, with the target's reason, and the guest running */
	long long end = kh_scaled_ms(30000);
	json_t *j = NULL;
	for (long long waited = 0;; waited += 50) {
		cr_assert_eq(sk_req(src, "GET", "/migration", NULL, &j), 200);
		const char *ph = json_string_value(json_object_get(j, "phase"));
		if (strcmp(ph, "failed") == 0)
			break;
		cr_assert_lt(waited, end, "the source's migration is still \"%s\"", ph);
		json_decref(j);
		usleep(50000);
	}
	const char *err = json_string_value(json_object_get(j, "error"));
	cr_assert(err && strstr(err, "the target refused: migration from a different CPU model") &&
	                  strstr(err, "0x7.0 EBX"),
	          "the source's error: %s", err ? err : "(none)");
	json_decref(j);
	cr_assert_str_eq(sk_state(src), "Running");
	memck_started(src, 2);
	cr_assert_str_eq(phase_of(dst), "listening");
	cr_assert_str_eq(sk_state(dst), "Not started");
	cr_assert(kh_wait_for(&dst->p, "a source was refused: migration from a different CPU model",
	                      5000),
	          "the target did not log the refusal:\n%s", dst->p.out);

	/* the same target takes the real one */
	body = kh_fmt("{\"destination\": \"unix:%s\"}", snap_file("mig-dst.sock"));
	sk_ok(src, "PUT", "/migration/send", body);
	free(body);
	cr_assert_eq(kh_wait_exit(&src->p, 120000), 0, "the source did not exit 0:\n%s",
	             src->p.out);
	memck_continues(dst, memck_last(src));
}

/*
 * The source killed in the middle of pre-copy: the target discards what it
 * got and exits with an error naming the broken stream (never a half guest
 * left running); GET /migration showed the pages arriving before.
 */
Test(migration, source_killed_during_precopy)
{
	struct skiln *src = sk_start("src"); /* its metrics go to src->metrics */
	sk_boot_memck(src, NULL, false);
	memck_started(src, 2);
	struct skiln *dst = sk_start("dst");
	char *body = kh_fmt("{\"listen\": \"unix:%s\"}", snap_file("mig-dst.sock"));
	sk_ok(dst, "PUT", "/migration/receive", body);
	free(body);
	body = kh_fmt("{\"destination\": \"unix:%s\", \"bandwidth_limit_mib_s\": 1}",
	              snap_file("mig-dst.sock"));
	sk_ok(src, "PUT", "/migration/send", body);
	free(body);
	long long pages = 0;
	for (int i = 0; i < 600 && pages < 256; i++) {
		usleep(50000);
		if (strcmp(phase_of(dst), "precopy") == 0)
			pages = stat_of(dst, "pages");
	}
	cr_assert_geq(pages, 256, "the target's page count did not grow: %lld", pages);
	/* the source's metrics carry the same figures as its GET /migration */
	sk_ok(src, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	json_t *m = sk_last_metrics(src); /* the line FlushMetrics wrote */
	cr_assert(m, "the metrics file's last line is not JSON");
	json_t *mig = json_object_get(m, "migration");
	cr_assert(json_is_object(mig), "no \"migration\" in the metrics");
	cr_assert_str_eq(json_string_value(json_object_get(mig, "role")), "source");
	cr_assert_str_eq(json_string_value(json_object_get(mig, "phase")), "precopy");
	char *seen = json_dumps(mig, JSON_COMPACT);
	cr_assert_geq(json_integer_value(json_object_get(mig, "pages")), pages, "%s", seen);
	cr_assert_gt(json_integer_value(json_object_get(mig, "bytes")), 0, "%s", seen);
	free(seen);
	json_decref(m);
	sk_kill(src);
	int st = kh_wait_exit(&dst->p, 60000);
	cr_assert(st > 0 && st < 128, "the target did not exit with an error (%d):\n%s", st,
	          dst->p.out);
	cr_assert(strstr(dst->p.out, "the incoming migration failed: the stream from the source "
	                             "broke"),
	          "the target did not say why:\n%s", dst->p.out);
}
