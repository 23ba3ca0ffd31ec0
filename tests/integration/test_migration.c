// SPDX-License-Identifier: Apache-2.0
/*
 * Live migration end to end (issue 11): the memck guest moves from one
 * kiln process to another while it rewrites and checks its memory; its
 * reports go on in the target without a gap and its checksums hold, and
 * the source exits 0 once the target runs the guest.
 */
#include "snap_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
