/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/integration/snap_test: the steps of the snapshot tests, for any
 * number of kiln processes at once (api_test.h has one global kiln): start
 * a kiln on its own API socket, call it, boot the memck guest, pause,
 * create and load snapshots, and follow memck's reports across restores.
 *
 * Every file goes into one temporary directory per test (snap_dir),
 * removed with every kiln started by snap_test_fini().
 */
#ifndef KILN_TEST_SNAP_TEST_H
#define KILN_TEST_SNAP_TEST_H

#include "api_client.h"
#include "harness.h"

#include <jansson.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SNAP_MAX_KILNS 16
/* the memck guest as the tests boot it */
#define MEMCK_MIB     32
#define MEMCK_ARGS    "memck.mib=32 memck.report_ms=50"
#define GUEST_MEM_MIB 64

/* one kiln process and its API socket */
struct skiln {
	struct kproc p;
	char sock[128];
	char metrics[128]; /* its --metrics-path */
};

/* where memck was: its last report number and round */
struct memck_at {
	unsigned long report, round;
};

extern char snap_dir[64];

/* criterion .init / .fini: the temporary directory; kills every kiln, removes it */
void snap_test_init(void);
void snap_test_fini(void);

/* `name` inside snap_dir, in a static ring of buffers (valid for 16 more calls) */
const char *snap_file(const char *name);

/* starts `kiln --api-sock <snap_dir>/<name>.sock` and waits until it accepts */
struct skiln *sk_start(const char *name);
/* kills it (SIGKILL) after collecting what it printed; its output stays readable */
void sk_kill(struct skiln *k);

/* one request: the status; the parsed body in *out when out is non-NULL */
int sk_req(struct skiln *k, const char *method, const char *path, const char *body, json_t **out);
/* asserts a 204 */
void sk_ok(struct skiln *k, const char *method, const char *path, const char *body);
/* asserts a 400 whose fault_message contains `msg`, and that GET / still answers */
void sk_fault(struct skiln *k, const char *method, const char *path, const char *body,
              const char *msg);
/* GET / "state" (a static buffer) */
const char *sk_state(struct skiln *k);

/* boots the memck guest (MEMCK_ARGS plus `args`, may be NULL), 1 vCPU, GUEST_MEM_MIB */
void sk_boot_memck(struct skiln *k, const char *args, bool track_dirty);
void sk_pause(struct skiln *k);
void sk_resume(struct skiln *k);
/* PUT /snapshot/create of `type` ("Full" or "Diff") into snap_file(state), snap_file(mem) */
void sk_create(struct skiln *k, const char *type, const char *state, const char *mem);
/* the PUT /snapshot/load body: File backing of snap_file(mem) unless backend is given */
char *sk_load_body(const char *state, const char *backend_type, const char *backend_path,
                   bool resume, const char *extra);
/* PUT /snapshot/load of `state` with File backing `mem`; resumes when `resume` */
void sk_load(struct skiln *k, const char *state, const char *mem, bool resume);

/*
 * Pauses k, snapshots it, and prints where vCPU 0 is (RIP named by
 * addr2line in the memck guest, RSP, RFLAGS) and memck's console lock word
 * (snap_where.c): for a test already failing on a silent guest.
 */
void sk_where(struct skiln *k, FILE *m);
/* the whole of a file, malloc'd; NULL (and *n 0) when it is empty or cannot be read */
uint8_t *sk_slurp(const char *path, size_t *n);
/* the last line of k's metrics file (--metrics-path), parsed; NULL when none (decref it) */
json_t *sk_last_metrics(struct skiln *k);

/* waits until memck printed report `n`; asserts it did within timeout_ms */
void memck_wait(struct skiln *k, unsigned long n, int timeout_ms);
/*
 * Checks everything memck printed in this kiln: no mismatch, reports
 * consecutive, each sum the one of its round; returns the last report.
 */
struct memck_at memck_last(struct skiln *k);
/*
 * Waits for two more reports after a restore from `before` and checks that
 * memck went on from there: its first whole report is before.report + 1
 * (+ 2 when the line was cut by the snapshot), its round is higher.
 */
struct memck_at memck_continues(struct skiln *k, struct memck_at before);
/* a memck report from a fresh boot: waits for `n` reports */
struct memck_at memck_started(struct skiln *k, unsigned long n);

/* the splitmix64 finaliser, which memck's and blk's patterns use */
uint64_t mix64(uint64_t z);

/*
 * The blk guest (tests/guests/blk.c) writing its pattern over
 * blk_sectors() sectors of `disk` (created here, that size) one sector a
 * request: drive "data", 1 vCPU, 128 MiB; started, and its "blk: id" seen.
 * 32 MiB is about 2 s of guest work on a host CPU; under an emulated one
 * (KILN_TIME_SCALE > 1) the rest after a restore took over 240 s, so
 * blk_sectors() is 4 MiB there.
 */
unsigned blk_sectors(void);
void sk_boot_blk(struct skiln *k, const char *disk);
/* asserts that `path` holds the blk guest's pattern (seed 1) over blk_sectors() */
void check_blk_pattern(const char *path);

/*
 * A new kiln "k0" boots memck, which prints two reports; then paused, a
 * Full snapshot into vm.snap and vm.mem. Returns that kiln, still paused,
 * and memck's last report in *at.
 */
struct skiln *memck_snapshot(bool track_dirty, struct memck_at *at);

/*
 * Starts examples/uffd_page_server (built next to the kiln binary's build
 * directory) serving snap_file(mem) on snap_file(sock) and waits until it
 * listens: its pid.
 */
pid_t sk_page_server(const char *sock, const char *mem);
/* kills it (SIGKILL) unless it has exited, and reaps it */
void sk_page_server_stop(pid_t server);

/* runs a shell command; asserts exit status 0 */
void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* true when files a and b have the same bytes */
bool same_bytes(const char *a, const char *b);

#endif
