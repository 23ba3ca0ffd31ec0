// SPDX-License-Identifier: Apache-2.0
/*
 * Live migration beyond the plain case of test_migration.c: over TCP
 * between two network namespaces joined by a veth pair (two hosts), the
 * blk guest moved in the middle of its writes onto the same disk file
 * under another name (shared storage), and the failures: the stream cut
 * by a killed target, a target that refuses the source's machine, a
 * cancel during pre-copy (and a second migration afterwards), a guest
 * that dirties memory faster than a bandwidth-limited link (pre-copy ends
 * at max_iterations and still completes), garbage and an HTTP request on
 * the target's port, a destination nobody listens on, and state changes
 * refused while a migration runs; and a paused VM, which stays paused. In
 * every failure the source runs its guest on (memck's reports go on,
 * checked) and a refusing target goes on listening.
 *
 * Pre-copy is made to last with bandwidth_limit_mib_s: memck rewrites its
 * 32 MiB every round, so a 1 MiB/s link keeps a migration in pre-copy for
 * half a minute. TCP addresses are used only inside network namespaces of
 * this test's own (deleted by the suite's .fini), so ports never collide.
 */
#include "snap_test.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MIG_PORT  7700
#define MIG_ERROR 8 /* the ERROR frame's type (daemon/migration.h) */
#define NS_A_ADDR "10.77.0.1"
#define NS_B_ADDR "10.77.0.2"
#define MAX_NETNS 4
#define CANCEL_MS 3000 /* a cancel ends pre-copy within this */

/* ------------------------------------------------- network namespaces */

static char made_ns[MAX_NETNS][32];
static unsigned nr_ns;
static int home_ns = -1; /* this process's own network namespace */

static void setup(void)
{
	snap_test_init();
	home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(home_ns, 0, "cannot open /proc/self/ns/net: %s", strerror(errno));
}

static void teardown(void)
{
	snap_test_fini(); /* every kiln first: nothing left in the namespaces */
	if (home_ns >= 0)
		(void)setns(home_ns, CLONE_NEWNET);
	for (unsigned i = 0; i < nr_ns; i++)
		kh_netns_del(made_ns[i]);
	nr_ns = 0;
	if (home_ns >= 0)
		close(home_ns);
	home_ns = -1;
}

TestSuite(migration_more, .init = setup, .fini = teardown, .timeout = 480);

/* a new namespace `<tag><pid>` with lo up: its name (static, one per slot) */
static const char *ns_add(const char *tag)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for network namespaces");
	cr_assert_lt(nr_ns, MAX_NETNS);
	char *name = made_ns[nr_ns];
	snprintf(name, sizeof(made_ns[0]), "%s%d", tag, (int)getpid());
	nr_ns++; /* .fini deletes it even if the add fails half way */
	sh("ip netns add %s && ip -n %s link set lo up", name, name);
	return name;
}

/* moves this process into namespace `name`: the kilns it starts run there */
static void ns_enter(const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "cannot open %s: %s", path, strerror(errno));
	cr_assert_eq(setns(fd, CLONE_NEWNET), 0, "setns %s: %s", name, strerror(errno));
	close(fd);
}

static void ns_home(void)
{
	cr_assert_eq(setns(home_ns, CLONE_NEWNET), 0, "setns back: %s", strerror(errno));
}

/* the end of what k printed, for messages: memck's reports make it long */
static const char *tail(struct skiln *k)
{
	size_t n = k->p.out ? strlen(k->p.out) : 0;
	return !k->p.out ? "" : n > 6000 ? k->p.out + n - 6000 : k->p.out;
}

/* ----------------------------------------------------- GET /migration */

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ll + ts.tv_nsec / 1000000;
}

/* GET /migration of k (json_decref it) */
static json_t *mig_status(struct skiln *k)
{
	json_t *j = NULL;
	int st = sk_req(k, "GET", "/migration", NULL, &j);
	cr_assert_eq(st, 200, "GET /migration: %d (%s); kiln said:\n%s", st, kh_status(&k->p),
	             tail(k));
	cr_assert(json_is_object(j));
	return j;
}

static const char *jstr(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));
	return s ? s : "";
}

static long long jint(json_t *j, const char *key)
{
	return (long long)json_integer_value(json_object_get(j, key));
}

/* the whole GET /migration answer as text (static) for messages */
static const char *dump(json_t *j)
{
	static char buf[1024];
	char *s = json_dumps(j, JSON_SORT_KEYS);
	snprintf(buf, sizeof(buf), "%s", s ? s : "(null)");
	free(s);
	return buf;
}

/* waits until GET /migration's phase is `want`; returns that answer (json_decref it) */
static json_t *wait_phase(struct skiln *k, const char *want, int timeout_ms)
{
	long long end = mono_ms() + kh_scaled_ms(timeout_ms);
	for (;;) {
		json_t *j = mig_status(k);
		if (!strcmp(jstr(j, "phase"), want))
			return j;
		if (mono_ms() > end)
			cr_assert_fail("phase \"%s\" never came (%s); kiln said:\n%s", want,
			               dump(j), tail(k));
		json_decref(j);
		kh_wait_for(&k->p, "\x01", 50); /* collects its output meanwhile */
	}
}

static void receive(struct skiln *k, const char *listen, const char *extra)
{
	char *b = kh_fmt("{\"listen\": \"%s\"%s%s}", listen, extra ? ", " : "", extra ? extra : "");
	sk_ok(k, "PUT", "/migration/receive", b);
	free(b);
	json_t *j = mig_status(k);
	cr_assert_str_eq(jstr(j, "phase"), "listening", "after PUT /migration/receive: %s",
	                 dump(j));
	cr_assert_str_eq(jstr(j, "role"), "target", "%s", dump(j));
	json_decref(j);
}

static void send_to(struct skiln *k, const char *dest, const char *extra)
{
	char *b = kh_fmt("{\"destination\": \"%s\"%s%s}", dest, extra ? ", " : "",
	                 extra ? extra : "");
	sk_ok(k, "PUT", "/migration/send", b);
	free(b);
}

/* "unix:<snap_dir>/<name>" (static ring) */
static const char *unix_addr(const char *name)
{
	static char ring[4][224];
	static unsigned at;
	char *buf = ring[at++ % 4];
	snprintf(buf, sizeof(ring[0]), "unix:%s", snap_file(name));
	return buf;
}

/*
 * The source exits 0 after its log line "migration to DEST complete:
 * downtime N ms, total N ms, N MiB in N rounds ..."; its downtime and
 * rounds in *downtime, *rounds (either may be NULL). memck's last report
 * there.
 */
static struct memck_at source_done(struct skiln *src, const char *dest, unsigned long *downtime,
                                   unsigned *rounds)
{
	int status = kh_wait_exit(&src->p, 120000);
	cr_assert_eq(status, 0, "the source did not exit 0 (%s):\n%s", kh_status(&src->p),
	             tail(src));
	char *needle = kh_fmt("migration to %s complete: downtime ", dest);
	const char *line = strstr(src->p.out, needle);
	cr_assert(line, "the source printed no \"%s\" line:\n%s", needle, tail(src));
	unsigned long down = 0, total = 0, mib = 0;
	unsigned r = 0;
	int n = sscanf(line + strlen(needle), "%lu ms, total %lu ms, %lu MiB in %u rounds", &down,
	               &total, &mib, &r);
	cr_assert_eq(n, 4, "cannot read the completion line: %.200s", line);
	cr_assert_leq(down, total, "downtime %lu ms > total %lu ms", down, total);
	cr_assert_geq(mib, MEMCK_MIB, "%lu MiB sent: less than memck's memory", mib);
	free(needle);
	if (downtime)
		*downtime = down;
	if (rounds)
		*rounds = r;
	return memck_last(src);
}

/* the target runs the guest and says the migration completed */
static void target_completed(struct skiln *dst)
{
	cr_assert_str_eq(sk_state(dst), "Running");
	json_t *j = mig_status(dst);
	cr_assert_str_eq(jstr(j, "phase"), "completed", "%s\n%s", dump(j), tail(dst));
	cr_assert_str_eq(jstr(j, "role"), "target", "%s", dump(j));
	cr_assert_gt(jint(j, "bytes"), (long long)MEMCK_MIB << 20, "%s", dump(j));
	cr_assert_null(json_object_get(j, "error"), "%s", dump(j));
	json_decref(j);
}

/* the source runs memck on after a failed or cancelled migration: two more reports */
static void source_runs_on(struct skiln *src)
{
	cr_assert_str_eq(sk_state(src), "Running", "%s", tail(src));
	struct memck_at at = memck_last(src);
	memck_wait(src, at.report + 2, 20000);
	struct memck_at now = memck_last(src);
	cr_assert_gt(now.round, at.round);
	cr_assert_eq(kh_wait_exit(&src->p, 0), -1, "the source ended: %s\n%s", kh_status(&src->p),
	             tail(src));
}

/* a source kiln `name` running memck, two reports printed */
static struct skiln *memck_source(const char *name)
{
	struct skiln *src = sk_start(name);
	sk_boot_memck(src, NULL, false);
	memck_started(src, 2);
	return src;
}

/*
 * A memck source `*src` migrating at 1 MiB/s over unix:<name> to a new
 * target `*dst`, in pre-copy for half a minute from when this returns.
 */
static void slow_migration(struct skiln **src, struct skiln **dst, const char *name)
{
	*src = memck_source("src");
	*dst = sk_start("dst");
	receive(*dst, unix_addr(name), NULL);
	send_to(*src, unix_addr(name), "\"bandwidth_limit_mib_s\": 1");
	json_decref(wait_phase(*src, "precopy", 30000));
	json_t *j = wait_phase(*dst, "precopy", 30000);
	cr_assert_str_eq(jstr(j, "role"), "target", "%s", dump(j));
	json_decref(j);
	j = mig_status(*src);
	cr_assert_str_eq(jstr(j, "role"), "source", "%s", dump(j));
	json_decref(j);
}

/* ------------------------------------------------------------- tests */

/*
 * Two hosts: namespace A (10.77.0.1) runs the source, namespace B
 * (10.77.0.2) the target, joined by a veth pair. The source reaches the
 * target only over that link.
 */
Test(migration_more, memck_over_tcp_between_namespaces)
{
	const char *a = ns_add("kmig_a"), *b = ns_add("kmig_b");
	sh("ip -n %s link add va type veth peer name vb netns %s", a, b);
	sh("ip -n %s addr add " NS_A_ADDR "/24 dev va && ip -n %s link set va up", a, a);
	sh("ip -n %s addr add " NS_B_ADDR "/24 dev vb && ip -n %s link set vb up", b, b);

	ns_enter(a);
	struct skiln *src = sk_start("src");
	ns_enter(b);
	struct skiln *dst = sk_start("dst");
	ns_home();

	sk_boot_memck(src, NULL, false);
	memck_started(src, 3);
	char addr[32];
	snprintf(addr, sizeof(addr), "tcp:" NS_B_ADDR ":%d", MIG_PORT);
	receive(dst, addr, NULL);
	send_to(src, addr, "\"max_iterations\": 8");
	struct memck_at at = source_done(src, addr, NULL, NULL);
	memck_continues(dst, at);
	memck_last(dst); /* every report since: no mismatch, consecutive */
	target_completed(dst);
}

/*
 * The blk guest migrates over a unix socket while it writes; the target
 * opens the same file through a hard link (drive_overrides), finishes the
 * writes, reads everything back and verifies it, and so does this side.
 */
Test(migration_more, blk_guest_writing_during_migration)
{
	const char *disk = snap_file("disk.img"), *link = snap_file("disk-on-b.img");
	struct skiln *src = sk_start("src");
	sk_boot_blk(src, disk);
	sh("ln %s %s", disk, link);
	usleep(300000); /* into its writes */

	struct skiln *dst = sk_start("dst");
	char *b = kh_fmt(
	        "\"drive_overrides\": [{\"drive_id\": \"data\", \"path_on_host\": \"%s\"}]", link);
	receive(dst, unix_addr("mig.sock"), b);
	free(b);
	send_to(src, unix_addr("mig.sock"), NULL);
	int status = kh_wait_exit(&src->p, 120000);
	cr_assert_eq(status, 0, "the source did not exit 0 (%s):\n%s", kh_status(&src->p),
	             tail(src));
	cr_assert(strstr(src->p.out, " complete: downtime "), "no completion line:\n%s", tail(src));
	cr_assert(!strstr(src->p.out, "verified"),
	          "the guest finished its writes before it migrated:\n%s", tail(src));

	json_t *c;
	cr_assert_eq(sk_req(dst, "GET", "/vm/config", NULL, &c), 200, "%s", tail(dst));
	json_t *d = json_array_get(json_object_get(c, "drives"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(d, "drive_id")), "data");
	cr_assert_str_eq(json_string_value(json_object_get(d, "path_on_host")), link,
	                 "the drive override was not taken");
	json_decref(c);

	cr_assert(kh_wait_for(&dst->p, "verified ok", 60000), "the target's guest: %s\n%s",
	          kh_status(&dst->p), tail(dst));
	cr_assert_eq(kh_wait_exit(&dst->p, 10000), 0, "the target exited badly:\n%s", tail(dst));
	cr_assert(!strstr(dst->p.out, "MISMATCH") && !strstr(dst->p.out, "FAILED"), "%s",
	          tail(dst));
	check_blk_pattern(disk);
}

/*
 * (a) The target killed in the middle of pre-copy: the source's stream
 * breaks, the migration fails there with an error, and the source runs
 * its guest on.
 */
Test(migration_more, target_killed_during_precopy)
{
	struct skiln *src, *dst;
	slow_migration(&src, &dst, "mig.sock");
	sk_kill(dst);

	json_t *j = wait_phase(src, "failed", 60000);
	cr_assert_neq(jstr(j, "error")[0], '\0', "failed without an error: %s", dump(j));
	json_decref(j);
	cr_assert(kh_wait_for(&src->p, "the guest runs here", 2000), "%s", tail(src));
	source_runs_on(src);
}

/*
 * (b) A target configured for another memory size refuses the handshake
 * naming the sizes; the source's migration fails with that text and its
 * guest runs on; the target goes on listening and answering.
 */
Test(migration_more, target_refuses_another_memory_size)
{
	struct skiln *dst = sk_start("dst");
	char *b = kh_fmt("{\"vcpu_count\": 1, \"mem_size_mib\": %d}", GUEST_MEM_MIB * 2);
	sk_ok(dst, "PUT", "/machine-config", b);
	free(b);
	receive(dst, unix_addr("mig.sock"), NULL);
	struct skiln *src = memck_source("src");
	send_to(src, unix_addr("mig.sock"), NULL);

	json_t *j = wait_phase(src, "failed", 60000);
	const char *err = jstr(j, "error");
	cr_assert(strstr(err, "refused") && strstr(err, "MiB"),
	          "the source's error does not give the target's reason: %s", dump(j));
	json_decref(j);
	source_runs_on(src);

	cr_assert_eq(kh_wait_exit(&dst->p, 0), -1, "the target ended: %s\n%s", kh_status(&dst->p),
	             tail(dst));
	sk_state(dst);
	j = mig_status(dst);
	cr_assert_str_eq(jstr(j, "phase"), "listening", "%s", dump(j));
	cr_assert(strstr(jstr(j, "error"), "MiB"), "the target's error: %s", dump(j));
	json_decref(j);
}

/*
 * (c) PUT /migration/cancel during pre-copy: the source runs on (phase
 * "cancelled"), the target that had accepted the handshake exits non-zero
 * keeping nothing; then the same source migrates to a new target.
 */
Test(migration_more, cancel_then_migrate_again)
{
	struct skiln *src, *dst;
	slow_migration(&src, &dst, "mig1.sock");
	/* the first 16 MiB frame sent: the 1 MiB/s pacing holds the next one back */
	json_t *j;
	long long end = mono_ms() + kh_scaled_ms(30000);
	for (;;) {
		j = mig_status(src);
		if (jint(j, "bytes") >= 16 << 20 || mono_ms() > end)
			break;
		json_decref(j);
		usleep(50000);
	}
	cr_assert_geq(jint(j, "bytes"), 16 << 20, "pre-copy sent too little: %s", dump(j));
	cr_assert_str_eq(jstr(j, "phase"), "precopy", "%s", dump(j));
	char before[1024];
	snprintf(before, sizeof(before), "%s", dump(j));
	json_decref(j);
	long long t0 = mono_ms();
	sk_ok(src, "PUT", "/migration/cancel", NULL);
	json_decref(wait_phase(src, "cancelled", 60000));
	long long took = mono_ms() - t0;
	fprintf(stderr, "cancel_then_migrate_again: cancelled %lld ms after the request\n", took);
	/* not scaled: the time is the source's own sleeping, not guest work */
	cr_assert_lt(took, CANCEL_MS,
	             "the cancel took %lld ms to stop pre-copy; GET /migration before it: %s", took,
	             before);
	source_runs_on(src);
	int st = kh_wait_exit(&dst->p, 30000);
	cr_assert(st > 0 && st < 128, "the first target did not exit with an error (%s):\n%s",
	          kh_status(&dst->p), tail(dst));

	struct skiln *dst2 = sk_start("dst2");
	receive(dst2, unix_addr("mig2.sock"), NULL);
	send_to(src, unix_addr("mig2.sock"), "\"max_iterations\": 8");
	struct memck_at at = source_done(src, unix_addr("mig2.sock"), NULL, NULL);
	memck_continues(dst2, at);
	target_completed(dst2);
}

/*
 * (d) memck rewrites all its 32 MiB every round, far more than a 4 MiB/s
 * link carries: pre-copy never converges, stops after the first round and
 * max_iterations more (api.h: "pre-copy rounds after the first"), and the
 * migration still completes with the rest sent while the guest is paused.
 * max_downtime_ms 1 is below the allowance for the state alone, so no
 * round converges even if the guest, starved of CPU in a loaded test bed,
 * dirtied little in one (once seen under ASan: 38 pages in an 8 s round);
 * that the guest outran the link shows in the expected downtime.
 */
Test(migration_more, dirtying_faster_than_the_link)
{
	struct skiln *src = memck_source("src");
	struct skiln *dst = sk_start("dst");
	receive(dst, unix_addr("mig.sock"), NULL);
	send_to(src, unix_addr("mig.sock"),
	        "\"bandwidth_limit_mib_s\": 4, \"max_iterations\": 3, \"max_downtime_ms\": 1");
	/* what the source reports while it copies, round by round */
	long long max_it = 0, max_expected = 0, max_dirty = 0;
	char rounds_seen[1024] = "";
	for (;;) {
		json_t *j = NULL;
		if (kh_wait_exit(&src->p, 0) != -1 ||
		    sk_req(src, "GET", "/migration", NULL, &j) != 200) {
			json_decref(j);
			break;
		}
		const char *ph = jstr(j, "phase");
		cr_assert(!strcmp(ph, "handshake") || !strcmp(ph, "precopy") ||
		                  !strcmp(ph, "stopped") || !strcmp(ph, "completed"),
		          "%s\n%s", dump(j), tail(src));
		if (!strcmp(ph, "precopy") && jint(j, "iteration") > max_it) {
			max_it = jint(j, "iteration");
			size_t n = strlen(rounds_seen);
			snprintf(rounds_seen + n, sizeof(rounds_seen) - n,
			         " [round %lld: %lld pages dirty, %lld pages/s, %lld ms expected]",
			         max_it, jint(j, "remaining_pages"), jint(j, "dirty_pages_per_s"),
			         jint(j, "expected_downtime_ms"));
		}
		if (!strcmp(ph, "precopy") && jint(j, "iteration") > 0) {
			if (jint(j, "expected_downtime_ms") > max_expected)
				max_expected = jint(j, "expected_downtime_ms");
			if (jint(j, "dirty_pages_per_s") > max_dirty)
				max_dirty = jint(j, "dirty_pages_per_s");
		}
		cr_assert_leq(jint(j, "iteration"), 4, "more rounds than 1 + max_iterations: %s",
		              dump(j));
		json_decref(j);
		kh_wait_for(&src->p, "\x01", 200);
	}
	unsigned long downtime;
	unsigned rounds;
	struct memck_at at = source_done(src, unix_addr("mig.sock"), &downtime, &rounds);
	fprintf(stderr, "dirtying_faster_than_the_link: %u rounds;%s\n", rounds, rounds_seen);
	/* first what matters most: every page the guest wrote arrived */
	memck_continues(dst, at);
	target_completed(dst);
	cr_assert_eq(rounds, 4, "%u rounds of pre-copy, not 1 + max_iterations 3;%s\n%s", rounds,
	             rounds_seen, tail(src));
	cr_assert_gt(max_it, 0, "GET /migration never showed a finished round");
	cr_assert_gt(max_expected, 100, "expected downtime %lld ms: it should not converge",
	             max_expected);
	cr_assert_gt(max_dirty, 0, "no dirty page rate reported");
	fprintf(stderr,
	        "dirtying_faster_than_the_link: downtime %lu ms; expected up to %lld ms, "
	        "dirty up to %lld pages/s\n",
	        downtime, max_expected, max_dirty);
}

#define POKE_OPEN -2 /* the target kept the connection open */
#define POKE_NONE -1 /* it closed it without a frame */

/*
 * Connects to 127.0.0.1:port, sends `len` bytes of `data` and reads until
 * the target closes the connection: the type of the frame it answered
 * with, POKE_NONE or POKE_OPEN; the frame's text in msg.
 */
static int poke(int port, const void *data, size_t len, char *msg, size_t size)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s",
	             strerror(errno));
	struct timeval tv = {.tv_sec = kh_scaled_ms(10000) / 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the target may close before it read it all */
		off += (size_t)w;
	}
	uint8_t buf[16 + 512];
	size_t got = 0;
	bool open = false;
	for (;;) {
		uint8_t *to = got < sizeof(buf) ? buf + got : buf; /* the rest is not kept */
		ssize_t r = recv(fd, to, got < sizeof(buf) ? sizeof(buf) - got : sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		open = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
		if (r <= 0)
			break; /* ECONNRESET: closed with our bytes unread */
		if (got < sizeof(buf))
			got += (size_t)r;
	}
	close(fd);
	msg[0] = '\0';
	if (open)
		return POKE_OPEN;
	if (got < 16)
		return POKE_NONE;
	uint32_t type = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
	                (uint32_t)buf[3] << 24;
	size_t n = got - 16 < size - 1 ? got - 16 : size - 1;
	memcpy(msg, buf + 16, n);
	msg[n] = '\0';
	return (int)type;
}

/* after a refused would-be source: still listening, the error set, GET / answers */
static void still_listening(struct skiln *dst, const char *what)
{
	long long end = mono_ms() + kh_scaled_ms(5000);
	json_t *j;
	for (;;) {
		j = mig_status(dst);
		if (jstr(j, "error")[0] || mono_ms() > end)
			break;
		json_decref(j);
		usleep(20000);
	}
	kh_wait_for(&dst->p, "\x01", 50); /* its log line, for the messages */
	cr_assert_str_eq(jstr(j, "phase"), "listening", "after %s: %s", what, dump(j));
	cr_assert(strstr(jstr(j, "error"), "not a kiln migration stream"),
	          "after %s the error is not the target's reason: %s\n%s", what, dump(j),
	          tail(dst));
	json_decref(j);
	sk_state(dst);
}

/*
 * (e) Random bytes, an HTTP request and a HELLO frame whose payload is
 * not a kiln's, on the target's port: each is refused (the connection
 * closed at once; the HELLO answered with an ERROR frame naming the
 * reason), the target goes on listening with the error in GET /migration,
 * and a real migration to it afterwards succeeds.
 */
Test(migration_more, garbage_then_a_real_source)
{
	ns_enter(ns_add("kmig_g"));
	struct skiln *dst = sk_start("dst");
	struct skiln *src = sk_start("src");
	char addr[32];
	snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%d", MIG_PORT);
	receive(dst, addr, NULL);

	uint8_t junk[65536];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(read(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	junk[0] = 0xee; /* never a valid frame type, whatever the draw */
	char msg[512];
	int type = poke(MIG_PORT, junk, sizeof(junk), msg, sizeof(msg));
	cr_assert(type == POKE_NONE || type == MIG_ERROR,
	          "random bytes: the target answered %d (%s); -2: it kept the connection", type,
	          msg);
	still_listening(dst, "random bytes");

	const char http[] = "GET /migration HTTP/1.1\r\nHost: localhost\r\n\r\n";
	type = poke(MIG_PORT, http, strlen(http), msg, sizeof(msg));
	cr_assert(type == POKE_NONE || type == MIG_ERROR,
	          "an HTTP request: the target answered %d (%s); -2: it kept the connection", type,
	          msg);
	still_listening(dst, "an HTTP request");

	/* a HELLO frame of the right size whose payload is not a kiln's: an ERROR frame */
	uint8_t hello[16 + 64] = {1, 0, 0, 0, 0, 0, 0, 0, 64};
	memcpy(hello + 16, junk + 16, 64);
	type = poke(MIG_PORT, hello, sizeof(hello), msg, sizeof(msg));
	cr_assert_eq(type, MIG_ERROR, "a bad HELLO: the target answered %d (%s)", type, msg);
	cr_assert(strstr(msg, "not a kiln migration stream"), "the ERROR says: %s", msg);
	still_listening(dst, "a bad HELLO");

	sk_boot_memck(src, NULL, false);
	memck_started(src, 2);
	send_to(src, addr, "\"max_iterations\": 8");
	struct memck_at at = source_done(src, addr, NULL, NULL);
	memck_continues(dst, at);
	target_completed(dst);
}

/*
 * (f) A destination nobody listens on (a unix path, a closed TCP port):
 * 400 naming the address, no migration left running (a pause and a
 * resume work), the guest runs on.
 */
Test(migration_more, send_to_nobody)
{
	ns_enter(ns_add("kmig_f"));
	struct skiln *src = memck_source("src");
	char *b = kh_fmt("{\"destination\": \"%s\"}", unix_addr("nobody.sock"));
	sk_fault(src, "PUT", "/migration/send", b, "cannot connect");
	free(b);
	sk_fault(src, "PUT", "/migration/send", "{\"destination\": \"tcp:127.0.0.1:7700\"}",
	         "tcp:127.0.0.1:7700");
	json_t *j = mig_status(src);
	const char *ph = jstr(j, "phase");
	cr_assert(strcmp(ph, "handshake") && strcmp(ph, "precopy") && strcmp(ph, "stopped"),
	          "a migration seems to run: %s", dump(j));
	json_decref(j);
	sk_pause(src);
	sk_resume(src);
	source_runs_on(src);
}

/*
 * (g) While pre-copy runs, state changes are refused with "a migration is
 * in progress" on both sides and GET requests answer; after a cancel they
 * work again on the source.
 */
Test(migration_more, state_changes_refused_during_precopy)
{
	struct skiln *src, *dst;
	slow_migration(&src, &dst, "mig.sock");
	sk_fault(src, "PATCH", "/vm", "{\"state\": \"Paused\"}", "a migration is in progress");
	/* and on the target, which a migration configures */
	sk_fault(dst, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}",
	         "a migration is in progress");
	sk_fault(src, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}",
	         "a migration is in progress");
	char *b = kh_fmt("{\"destination\": \"%s\"}", unix_addr("mig.sock"));
	sk_fault(src, "PUT", "/migration/send", b, "a migration is in progress");
	free(b);
	json_t *j = mig_status(src);
	cr_assert_str_eq(jstr(j, "phase"), "precopy", "the refusals ended the migration: %s",
	                 dump(j));
	json_decref(j);
	cr_assert_str_eq(sk_state(src), "Running");

	sk_ok(src, "PUT", "/migration/cancel", NULL);
	json_decref(wait_phase(src, "cancelled", 60000));
	sk_pause(src);
	sk_resume(src);
	source_runs_on(src);
}

/*
 * A paused VM migrates paused: while its pre-copy runs, a resume and a
 * snapshot (allowed on a paused VM otherwise) are refused; the target
 * holds it paused, and resumed there, memck goes on from where it was.
 */
Test(migration_more, paused_vm_migrates_paused)
{
	struct skiln *src = memck_source("src");
	sk_pause(src);
	struct memck_at at = memck_last(src);
	struct skiln *dst = sk_start("dst");
	receive(dst, unix_addr("mig.sock"), NULL);
	send_to(src, unix_addr("mig.sock"), "\"bandwidth_limit_mib_s\": 8");
	char *b = kh_fmt("{\"snapshot_type\": \"Full\", \"snapshot_path\": \"%s\", "
	                 "\"mem_file_path\": \"%s\"}",
	                 snap_file("vm.snap"), snap_file("vm.mem"));
	sk_fault(src, "PUT", "/snapshot/create", b, "a migration is in progress");
	free(b);
	sk_fault(src, "PATCH", "/vm", "{\"state\": \"Resumed\"}", "a migration is in progress");
	cr_assert_str_eq(sk_state(src), "Paused");

	unsigned rounds;
	struct memck_at last = source_done(src, unix_addr("mig.sock"), NULL, &rounds);
	cr_assert_eq(last.report, at.report, "memck ran in the paused source:\n%s", tail(src));
	cr_assert_leq(rounds, 2, "a paused VM took %u rounds of pre-copy", rounds);
	cr_assert_str_eq(sk_state(dst), "Paused", "the target resumed a paused VM:\n%s", tail(dst));
	json_t *j = mig_status(dst);
	cr_assert_str_eq(jstr(j, "phase"), "completed", "%s", dump(j));
	json_decref(j);
	sk_resume(dst);
	memck_continues(dst, at);
}
