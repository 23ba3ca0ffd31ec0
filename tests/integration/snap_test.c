// SPDX-License-Identifier: Apache-2.0
/* tests/integration/snap_test.c: shared steps of the snapshot tests (snap_test.h). */
#include "snap_test.h"
#include "api_client.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <endian.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char snap_dir[64];
static struct skiln kilns[SNAP_MAX_KILNS];
static unsigned nr_kilns;

void snap_test_init(void)
{
	snprintf(snap_dir, sizeof(snap_dir), "/tmp/kiln-snap-XXXXXX");
	cr_assert(mkdtemp(snap_dir), "mkdtemp failed");
}

void snap_test_fini(void)
{
	for (unsigned i = 0; i < nr_kilns; i++) {
		if (kilns[i].p.out)
			kh_wait_for(&kilns[i].p, "\x01", 20);
		cr_expect(!kilns[i].p.out || (!strstr(kilns[i].p.out, "Sanitizer") &&
		                              !strstr(kilns[i].p.out, "runtime error")),
		          "kiln reported a sanitizer error:\n%s", kilns[i].p.out);
		kh_kill(&kilns[i].p);
	}
	nr_kilns = 0;
	if (snap_dir[0]) {
		char *cmd = kh_fmt("rm -rf '%s'", snap_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "snap_test: could not remove %s\n", snap_dir);
		free(cmd);
	}
}

const char *snap_file(const char *name)
{
	static char ring[16][192];
	static unsigned at;
	char *buf = ring[at++ % 16];
	snprintf(buf, sizeof(ring[0]), "%s/%s", snap_dir, name);
	return buf;
}

struct skiln *sk_start(const char *name)
{
	cr_assert_lt(nr_kilns, SNAP_MAX_KILNS);
	struct skiln *k = &kilns[nr_kilns++];
	snprintf(k->sock, sizeof(k->sock), "%s/%s.sock", snap_dir, name);
	unlink(k->sock);
	/* metrics: the silence report reads the vCPU exits of one second there */
	snprintf(k->metrics, sizeof(k->metrics), "%s/%s.metrics", snap_dir, name);
	unlink(k->metrics);
	const char *argv[] = {"kiln", "--api-sock",     k->sock,    "--id",
	                      name,   "--metrics-path", k->metrics, NULL};
	cr_assert_eq(kh_spawn(&k->p, argv), 0);
	for (int i = 0; i < 500; i++) {
		int fd = ac_connect(k->sock);
		if (fd >= 0) {
			close(fd);
			return k;
		}
		cr_assert_eq(kh_wait_exit(&k->p, 10), -1, "kiln exited early:\n%s", k->p.out);
	}
	cr_assert_fail("kiln %s never accepted on its API socket:\n%s", name, k->p.out);
	return NULL;
}

void sk_kill(struct skiln *k)
{
	kh_kill(&k->p);
	unlink(k->sock);
}

int sk_req(struct skiln *k, const char *method, const char *path, const char *body, json_t **out)
{
	struct ac_resp r;
	int got = ac_request(k->sock, method, path, body, &r);
	if (out) {
		*out = r.body_len ? json_loads(r.body, 0, NULL) : NULL;
		cr_assert(r.body_len == 0 || *out, "%s %s: body is not JSON: %s", method, path,
		          r.body);
	}
	if (got >= 300 && !out) {
		kh_wait_for(&k->p, "\x01", 50);
		fprintf(stderr, "%s %s %s -> %d: %s\nkiln said:\n%s\n", method, path,
		        body ? body : "", got, r.body ? r.body : "", k->p.out ? k->p.out : "");
	}
	ac_resp_free(&r);
	return got;
}

void sk_ok(struct skiln *k, const char *method, const char *path, const char *body)
{
	int got = sk_req(k, method, path, body, NULL);
	cr_assert_eq(got, 204, "%s %s %s: status %d", method, path, body ? body : "", got);
}

void sk_fault(struct skiln *k, const char *method, const char *path, const char *body,
              const char *msg)
{
	json_t *j;
	int got = sk_req(k, method, path, body, &j);
	const char *m = json_string_value(json_object_get(j, "fault_message"));
	cr_assert_eq(got, 400, "%s %s %s: status %d (%s), wanted 400", method, path, body, got,
	             m ? m : "");
	cr_assert(m && strstr(m, msg), "%s %s: \"%s\" lacks \"%s\"", method, path, m ? m : "", msg);
	json_decref(j);
	sk_state(k); /* still serving */
}

const char *sk_state(struct skiln *k)
{
	static char buf[32];
	json_t *j;
	int got = sk_req(k, "GET", "/", NULL, &j);
	cr_assert_eq(got, 200, "GET /: %d", got);
	snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(j, "state")));
	json_decref(j);
	return buf;
}

void sk_boot_memck(struct skiln *k, const char *args, bool track_dirty)
{
	char *b = kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"" KH_GUEST_ARGS
	                 " " MEMCK_ARGS " %s\"}",
	                 kh_guest("memck"), args ? args : "");
	sk_ok(k, "PUT", "/boot-source", b);
	free(b);
	b = kh_fmt("{\"vcpu_count\": 1, \"mem_size_mib\": %d, \"track_dirty_pages\": %s}",
	           GUEST_MEM_MIB, track_dirty ? "true" : "false");
	sk_ok(k, "PUT", "/machine-config", b);
	free(b);
	sk_ok(k, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
}

/*
 * Reads everything k has written so far, however late this process gets to
 * run: once a pause has returned, every byte the guest sent is in the pipe
 * (kiln's serial port writes from the vCPU thread as the guest sends), so
 * "what is there now" is exact where a short kh_wait_for() is not: on a
 * loaded host its few milliseconds may pass before it reads anything.
 */
static void sk_drain(struct skiln *k)
{
	for (;;) {
		struct pollfd pfd = {.fd = k->p.out_fd, .events = POLLIN};
		if (k->p.out_fd < 0 || poll(&pfd, 1, 0) <= 0)
			return;
		kh_wait_for(&k->p, "\x01", 10); /* what is there, and what follows in 10 ms */
	}
}

void sk_pause(struct skiln *k)
{
	sk_ok(k, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	sk_drain(k); /* what the guest printed before */
}

void sk_resume(struct skiln *k)
{
	sk_ok(k, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
}

void sk_create(struct skiln *k, const char *type, const char *state, const char *mem)
{
	char *b = kh_fmt("{\"snapshot_type\": \"%s\", \"snapshot_path\": \"%s\", "
	                 "\"mem_file_path\": \"%s\"}",
	                 type, snap_file(state), snap_file(mem));
	sk_ok(k, "PUT", "/snapshot/create", b);
	free(b);
}

char *sk_load_body(const char *state, const char *backend_type, const char *backend_path,
                   bool resume, const char *extra)
{
	return kh_fmt("{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"%s\", "
	              "\"backend_path\": \"%s\"}, \"resume_vm\": %s%s%s}",
	              snap_file(state), backend_type, backend_path, resume ? "true" : "false",
	              extra ? ", " : "", extra ? extra : "");
}

void sk_load(struct skiln *k, const char *state, const char *mem, bool resume)
{
	char *b = sk_load_body(state, "File", snap_file(mem), resume, NULL);
	sk_ok(k, "PUT", "/snapshot/load", b);
	free(b);
}

/* ------------------------------------------------------- memck's reports */

uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

unsigned blk_sectors(void)
{
	return kh_scaled_ms(1000) > 1000 ? 4u << 11 : 32u << 11;
}

void sk_boot_blk(struct skiln *k, const char *disk)
{
	sh("truncate -s %u %s", blk_sectors() * 512, disk);
	char *b = kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"" KH_GUEST_ARGS
	                 " blk.sectors=%u blk.req=1 blk.depth=1\"}",
	                 kh_guest("blk"), blk_sectors());
	sk_ok(k, "PUT", "/boot-source", b);
	free(b);
	sk_ok(k, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128}");
	b = kh_fmt("{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
	           "\"is_read_only\": false}",
	           disk);
	sk_ok(k, "PUT", "/drives/data", b);
	free(b);
	sk_ok(k, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	cr_assert(kh_wait_for(&k->p, "blk: id", 10000), "%s", k->p.out);
}

void check_blk_pattern(const char *path)
{
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	uint64_t buf[64 * 64];
	for (uint64_t s = 0; s < blk_sectors(); s += 64) {
		cr_assert_eq(pread(fd, buf, sizeof(buf), (off_t)(s * 512)), (ssize_t)sizeof(buf));
		for (unsigned i = 0; i < 64 * 64; i++) {
			uint64_t want = mix64(0x9e3779b97f4a7c15ull + s * 64 + i); /* seed 1 */
			cr_assert_eq(le64toh(buf[i]), want, "sector %llu word %u",
			             (unsigned long long)(s + i / 64), i % 64);
		}
	}
	close(fd);
}

/* memck.c's words: mix64(round * 0x9e3779b97f4a7c15 + page) */
static uint64_t round_sum(uint64_t round)
{
	uint64_t x = 0;
	for (uint64_t p = 0; p < (uint64_t)MEMCK_MIB * 256; p++)
		x ^= mix64(round * 0x9e3779b97f4a7c15ull + p);
	return x;
}

/*
 * kiln's log records and the guest's serial bytes share one pipe, and a
 * record (one write: "2026-12-02T14:52:30.026984813 [k0:api] ...\n") can
 * land between any two bytes of a guest line. True when `p` starts one.
 */
static bool is_log_record(const char *p)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.";
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)p[i]) : p[i] != shape[i])
			return false; /* also at the NUL */
	return true;
}

/* what the guest printed to k, kiln's log records cut out: a malloc'd string */
static char *guest_output(struct skiln *k)
{
	const char *out = k->p.out ? k->p.out : "";
	char *g = malloc(strlen(out) + 1), *w = g;
	cr_assert_not_null(g);
	for (const char *p = out; *p;) {
		if (!is_log_record(p)) {
			*w++ = *p++;
			continue;
		}
		const char *nl = strchr(p, '\n');
		p = nl ? nl + 1 : p + strlen(p);
	}
	*w = '\0';
	return g;
}

/* true when the guest's output holds `needle` and, if `whole`, the end of its line */
static bool guest_printed(struct skiln *k, const char *needle, bool whole)
{
	char *g = guest_output(k);
	const char *at = strstr(g, needle);
	bool yes = at && (!whole || strchr(at, '\n'));
	free(g);
	return yes;
}

json_t *sk_last_metrics(struct skiln *k)
{
	const char *path = k->metrics;
	char *line = NULL, *last = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	while (getline(&line, &cap, f) > 0) {
		free(last);
		last = strdup(line);
	}
	fclose(f);
	json_t *j = last ? json_loads(last, 0, NULL) : NULL;
	free(line);
	free(last);
	return j;
}

/* metrics' "vcpu" group of a line flushed now (counts since the line before) */
static void vcpu_exits(struct skiln *k, FILE *m)
{
	struct ac_resp r;
	int got = ac_request(k->sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", &r);
	ac_resp_free(&r);
	json_t *line = got == 204 ? sk_last_metrics(k) : NULL;
	char *vcpu = line ? json_dumps(json_object_get(line, "vcpu"), JSON_COMPACT) : NULL;
	fprintf(m, "vCPU exits in the last second (metrics): %s\n",
	        vcpu ? vcpu : "none (FlushMetrics or the metrics file failed)");
	free(vcpu);
	json_decref(line);
}

/*
 * What kiln is doing when the guest is silent: its GET /, what each of its
 * threads does during one second now (kh_threads_end), and the vCPU exits
 * of that second (metrics).
 */
static char *silence_report(struct skiln *k)
{
	char *out = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&out, &size);
	struct ac_resp r;

	if (ac_request(k->sock, "GET", "/", NULL, &r) > 0) {
		fprintf(m, "GET /: %s\n", r.body);
		ac_resp_free(&r);
	} else {
		fprintf(m, "GET /: no answer\n");
	}
	struct kh_threads *t = kh_threads_begin(k->p.pid);
	ac_request(k->sock, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", &r);
	ac_resp_free(&r);
	usleep(1000000);
	char *threads = kh_threads_end(t);
	fputs(threads, m);
	free(threads);
	vcpu_exits(k, m);
	sk_where(k, m);
	fclose(m);
	return out;
}

void memck_wait(struct skiln *k, unsigned long n, int timeout_ms)
{
	char needle[48];
	snprintf(needle, sizeof(needle), "memck: report %lu ", n);
	/* a log record inside the line hides it from kh_wait_for, not from guest_printed */
	if (!kh_wait_for(&k->p, needle, timeout_ms) && !guest_printed(k, needle, false)) {
		char *why = silence_report(k);
		cr_assert_fail("no \"%s\" from memck:\n%s\n%s", needle, k->p.out, why);
	}
	/* and the rest of that line */
	for (int i = 0; i < 100 && !guest_printed(k, needle, true); i++)
		kh_wait_for(&k->p, "\x01", 10);
}

/* the whole report lines the guest printed to k, checked; *first: the first one */
static struct memck_at scan(struct skiln *k, struct memck_at *first)
{
	struct memck_at last = {0, 0};
	char *out = guest_output(k);
	cr_assert(!strstr(out, "MISMATCH") && !strstr(out, "FAILED"), "memck failed:\n%s", out);
	*first = last;
	for (const char *l = out; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		unsigned long n, r;
		unsigned long long sum;
		char nl = 0;
		if (strncmp(l, "memck: report ", 14) != 0 ||
		    sscanf(l, "memck: report %lu round %lu ok sum %llx%c", &n, &r, &sum, &nl) !=
		            4 ||
		    nl != '\n')
			continue; /* another line, or one the snapshot cut */
		cr_assert(!last.report || n == last.report + 1,
		          "memck report %lu after %lu in:\n%s", n, last.report, out);
		cr_assert_gt(r, last.round, "round %lu after %lu", r, last.round);
		cr_assert_eq(sum, round_sum(r), "report %lu: round %lu's sum is %llx", n, r, sum);
		last = (struct memck_at){n, r};
		if (!first->report)
			*first = last;
	}
	free(out);
	return last;
}

struct memck_at memck_last(struct skiln *k)
{
	struct memck_at first;
	sk_drain(k);
	struct memck_at last = scan(k, &first);
	cr_assert_gt(last.report, 0, "memck printed no whole report:\n%s", k->p.out);
	return last;
}

struct memck_at memck_continues(struct skiln *k, struct memck_at before)
{
	struct memck_at first;
	memck_wait(k, before.report + 2, 20000);
	struct memck_at last = scan(k, &first);
	cr_assert(first.report == before.report + 1 || first.report == before.report + 2,
	          "memck went on with report %lu after %lu:\n%s", first.report, before.report,
	          k->p.out);
	cr_assert_gt(first.round, before.round, "memck's round %lu after %lu", first.round,
	             before.round);
	return last;
}

struct memck_at memck_started(struct skiln *k, unsigned long n)
{
	memck_wait(k, n, 20000);
	return memck_last(k);
}

struct skiln *memck_snapshot(bool track_dirty, struct memck_at *at)
{
	struct skiln *k = sk_start("k0");
	sk_boot_memck(k, NULL, track_dirty);
	memck_started(k, 2);
	sk_pause(k);
	*at = memck_last(k);
	sk_create(k, "Full", "vm.snap", "vm.mem");
	return k;
}

pid_t sk_page_server(const char *sock, const char *mem)
{
	char bin[512], path[512];
	snprintf(bin, sizeof(bin), "%s", kh_kiln());
	snprintf(path, sizeof(path), "%s/../examples/uffd_page_server", dirname(bin));
	cr_assert_eq(access(path, X_OK), 0, "%s is not built", path);
	const char *usock = snap_file(sock);
	char *argv[] = {path, (char *)usock, (char *)snap_file(mem), NULL};
	pid_t server;
	cr_assert_eq(posix_spawn(&server, argv[0], NULL, NULL, argv, NULL), 0);
	for (int i = 0; i < 200 && access(usock, F_OK) != 0; i++)
		usleep(10000);
	cr_assert_eq(access(usock, F_OK), 0, "the page server did not listen");
	return server;
}

void sk_page_server_stop(pid_t server)
{
	int st;
	if (waitpid(server, &st, WNOHANG) == 0) {
		kill(server, SIGKILL);
		waitpid(server, &st, 0);
	}
}

void sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	cr_assert_geq(n, 0);
	int st = system(cmd);
	cr_assert_eq(st, 0, "`%s` failed (%d)", cmd, st);
	free(cmd);
}

bool same_bytes(const char *a, const char *b)
{
	char *cmd = kh_fmt("cmp -s '%s' '%s'", a, b);
	int st = system(cmd);
	free(cmd);
	return st == 0;
}
