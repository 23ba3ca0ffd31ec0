// SPDX-License-Identifier: Apache-2.0
/*
 * The balloon across a snapshot and a live migration: the `balloon` test
 * guest writes to 32 MiB of its 64 and inflates 24 of them. A Full
 * snapshot's memory file then holds no data for the inflated pages (it is
 * sparse: at most 16 MiB of it is allocated), and a migration sends less
 * than 16 MiB; the kiln restored from the snapshot, or the migration's
 * target, goes on: deflated to 0, the guest finds every page it takes back
 * reading as zero.
 */
#include "snap_test.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

TestSuite(balloon_snap, .init = snap_test_init, .fini = snap_test_fini, .timeout = 300);

static void boot_balloon(struct skiln *k)
{
	char *b = kh_fmt("{\"kernel_image_path\": \"%s\", \"boot_args\": \"" KH_GUEST_ARGS "\"}",
	                 kh_guest("balloon"));
	sk_ok(k, "PUT", "/boot-source", b);
	free(b);
	sk_ok(k, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}");
	sk_ok(k, "PUT", "/balloon", "{\"amount_mib\": 0, \"deflate_on_oom\": false}");
	sk_ok(k, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
}

/* a kiln whose guest wrote 32 MiB and put 24 of them in the balloon */
static struct skiln *inflated(const char *name)
{
	struct skiln *a = sk_start(name);
	boot_balloon(a);
	cr_assert(kh_wait_for(&a->p, "balloon: touched 8192 pages", kh_scaled_ms(30000)), "%s",
	          a->p.out);
	sk_ok(a, "PATCH", "/balloon", "{\"amount_mib\": 24}");
	cr_assert(kh_wait_for(&a->p, "balloon: inflated 6144 pages", kh_scaled_ms(30000)), "%s",
	          a->p.out);
	return a;
}

/* the guest on `k` deflates to 0 and finds the pages it takes back zeroed */
static void deflates(struct skiln *k)
{
	json_t *cfg = NULL;
	cr_assert_eq(sk_req(k, "GET", "/balloon", NULL, &cfg), 200);
	cr_assert_eq(json_integer_value(json_object_get(cfg, "amount_mib")), 24);
	json_decref(cfg);
	sk_ok(k, "PATCH", "/balloon", "{\"amount_mib\": 0}");
	cr_assert(kh_wait_for(&k->p, "balloon: done", kh_scaled_ms(30000)), "%s", k->p.out);
	cr_assert(strstr(k->p.out, "balloon: deflated to 0 pages, zero ok"), "%s", k->p.out);
}

Test(balloon_snap, inflated_pages_are_not_in_the_memory_file)
{
	struct skiln *a = inflated("a");
	sk_pause(a);
	sk_create(a, "Full", "b.state", "b.mem");
	sk_kill(a);
	struct stat st;
	cr_assert_eq(stat(snap_file("b.mem"), &st), 0);
	cr_assert_eq(st.st_size, 64ll << 20);
	cr_assert_lt((long long)st.st_blocks * 512, 16ll << 20,
	             "%lld bytes of the memory file hold data", (long long)st.st_blocks * 512);

	struct skiln *b = sk_start("b");
	sk_load(b, "b.state", "b.mem", true);
	deflates(b);
}

Test(balloon_snap, inflated_pages_are_not_migrated)
{
	struct skiln *a = inflated("a");
	struct skiln *b = sk_start("b");
	char *body = kh_fmt("{\"listen\": \"unix:%s\"}", snap_file("mig.sock"));
	sk_ok(b, "PUT", "/migration/receive", body);
	free(body);
	body = kh_fmt("{\"destination\": \"unix:%s\"}", snap_file("mig.sock"));
	sk_ok(a, "PUT", "/migration/send", body);
	free(body);
	int status = kh_wait_exit(&a->p, kh_scaled_ms(60000));
	cr_assert_eq(status, 0, "the source did not exit 0 (%d):\n%s", status, a->p.out);
	json_t *m = NULL;
	cr_assert_eq(sk_req(b, "GET", "/migration", NULL, &m), 200);
	long long bytes = json_integer_value(json_object_get(m, "bytes"));
	json_decref(m);
	cr_assert_lt(bytes, 16ll << 20, "the target received %lld bytes", bytes);
	deflates(b);
}
