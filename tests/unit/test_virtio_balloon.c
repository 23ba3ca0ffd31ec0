// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio/balloon: a small virtio-mmio driver in the test
 * drives the device through the transport's bus callbacks (no KVM) over a
 * 4 MiB fake guest: inflate gives pages back (they read as zero again),
 * deflate does not, the statistics buffer is held and returned by the
 * timer, free page hints and reports are discarded, and every guest
 * mistake (a PFN outside RAM, a request that is not whole PFNs, an
 * oversized chain, a hint command of the wrong size) is a NEEDS_RESET.
 */
#include "virtio/balloon.h"

#include "virtio_fake_driver.h"

#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define QSZ       8
#define Q_GPA     0x10000ull /* queue q's rings at Q_GPA + q * 0x4000 */
#define ARG_GPA   0x80000ull /* PFN arrays, stats, commands: 4 KiB per descriptor */
#define DATA_GPA  0x200000ull
#define MMIO_BASE 0xd0000000ull
#define RAM       MIB(4)

#define F_STATS  VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ)
#define F_OOM    VIRTIO_BIT(VIRTIO_BALLOON_F_DEFLATE_ON_OOM)
#define F_HINT   VIRTIO_BIT(VIRTIO_BALLOON_F_FREE_PAGE_HINT)
#define F_REPORT VIRTIO_BIT(VIRTIO_BALLOON_F_PAGE_REPORTING)

struct rig {
	struct guest_mem gm;
	struct virtio_balloon *b;
	struct virtio_mmio *m;
	uint16_t avail_idx[5];
	uint16_t next_desc[5];
};

static uint64_t desc_gpa(unsigned q)
{
	return Q_GPA + q * 0x4000ull;
}

static uint64_t avail_gpa(unsigned q)
{
	return desc_gpa(q) + 0x1000;
}

static uint64_t used_gpa(unsigned q)
{
	return desc_gpa(q) + 0x2000;
}

/* s3.1.1: negotiates `features` and sets up queues 0 .. nq-1 */
static void driver_init(struct rig *g, uint64_t features, unsigned nq)
{
	vfd_reg_write(g->m, VIRTIO_MMIO_STATUS, 0);
	vfd_acknowledge(g->m, VIRTIO_ID_BALLOON);
	uint32_t st = vfd_features_ok(g->m, VIRTIO_BIT(VIRTIO_F_VERSION_1) | features);
	for (unsigned q = 0; q < nq; q++)
		vfd_queue_setup(g->m, q, VIRTIO_BALLOON_QUEUE_SIZE, QSZ, desc_gpa(q), avail_gpa(q),
		                used_gpa(q));
	vfd_driver_ok(g->m, st);
}

static void rig_make(struct rig *g, const struct virtio_balloon_params *p)
{
	struct errbuf e = {{0}};
	cr_assert_eq(virtio_balloon_create(&g->b, p, &e), 0, "%s", e.msg);
	struct virtio_mmio_params mp = {.base = MMIO_BASE, .gsi = 5, .gm = &g->gm};
	cr_assert_eq(virtio_mmio_create(&g->m, virtio_balloon_dev(g->b), &mp, &e), 0, "%s", e.msg);
}

static void rig_up(struct rig *g, const struct virtio_balloon_params *p, uint64_t features,
                   unsigned nq)
{
	struct errbuf e = {{0}};
	memset(g, 0, sizeof(*g));
	cr_assert_eq(gm_init(&g->gm, RAM, GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	rig_make(g, p);
	driver_init(g, features, nq);
}

static void rig_down(struct rig *g)
{
	virtio_mmio_destroy(g->m);
	virtio_balloon_destroy(g->b);
	gm_destroy(&g->gm);
}

/* one descriptor on queue q holding [gpa, gpa + len); its index */
static uint16_t desc(struct rig *g, unsigned q, uint64_t gpa, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	uint16_t i = g->next_desc[q]++ % QSZ;
	vfd_put_desc(&g->gm, desc_gpa(q), i, gpa, len, flags, next);
	return i;
}

static void offer(struct rig *g, unsigned q, uint16_t head)
{
	vfd_offer(&g->gm, g->m, q, avail_gpa(q), QSZ, &g->avail_idx[q], head, true);
}

static bool wait_used(struct rig *g, unsigned q, uint16_t want)
{
	return vfd_wait_used(&g->gm, used_gpa(q), want, 2000);
}

static uint32_t status(struct rig *g)
{
	return vfd_reg_read(g->m, VIRTIO_MMIO_STATUS);
}

static bool needs_reset(struct rig *g)
{
	for (int i = 0; i < 2000 && !(status(g) & VIRTIO_STATUS_DEVICE_NEEDS_RESET); i++)
		usleep(1000);
	return status(g) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

static uint32_t cfg32(struct rig *g, unsigned off)
{
	return vfd_reg_read(g->m, VIRTIO_MMIO_CONFIG + off);
}

static void fill(struct rig *g, uint64_t gpa, uint64_t len, uint8_t v)
{
	memset(gm_ptr(&g->gm, gpa, len), v, len);
}

static bool all_zero(struct rig *g, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gm_ptr(&g->gm, gpa, len);
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* the 4 KiB pages from `gpa` on: '0' reads as zero, 'x' still holds data */
static void expect_pages(struct rig *g, uint64_t gpa, const char *pattern)
{
	for (unsigned i = 0; pattern[i]; i++)
		cr_assert_eq(all_zero(g, gpa + 0x1000ull * i, 0x1000), pattern[i] == '0',
		             "page %u of %s", i, pattern);
}

/* an inflate or deflate request for the pages of `gpas` */
static void pfn_request(struct rig *g, unsigned q, const uint64_t *gpas, unsigned n)
{
	uint32_t pfns[64];
	for (unsigned i = 0; i < n; i++)
		pfns[i] = htole32((uint32_t)(gpas[i] >> 12));
	uint64_t at = ARG_GPA + q * 0x1000ull;
	cr_assert_eq(gm_write(&g->gm, at, pfns, n * 4), 0);
	offer(g, q, desc(g, q, at, n * 4, 0, 0));
}

static const struct virtio_balloon_params plain = {.id = "balloon", .amount_mib = 1};

Test(balloon, features_and_config_space)
{
	struct rig g;
	struct virtio_balloon_params p = {.id = "balloon",
	                                  .amount_mib = 3,
	                                  .deflate_on_oom = true,
	                                  .stats_polling_interval_s = 1,
	                                  .free_page_hinting = true,
	                                  .free_page_reporting = true};
	rig_up(&g, &p, 0, 2);
	uint64_t f = vfd_device_features(g.m);
	cr_assert_eq(f & (F_STATS | F_OOM | F_HINT | F_REPORT),
	             F_STATS | F_OOM | F_HINT | F_REPORT);
	cr_assert_eq(cfg32(&g, 0), 3 * 256, "num_pages");
	cr_assert_eq(cfg32(&g, 4), 0, "actual");
	/* the driver writes actual; num_pages and the command id are the device's */
	uint32_t v = 100, junk = 7;
	virtio_mmio_bus_ops.write(g.m, VIRTIO_MMIO_CONFIG + 4, &v, 4);
	virtio_mmio_bus_ops.write(g.m, VIRTIO_MMIO_CONFIG + 0, &junk, 4);
	virtio_mmio_bus_ops.write(g.m, VIRTIO_MMIO_CONFIG + 8, &junk, 4);
	cr_assert_eq(cfg32(&g, 4), 100);
	cr_assert_eq(cfg32(&g, 0), 3 * 256);
	cr_assert_eq(cfg32(&g, 8), VIRTIO_BALLOON_CMD_ID_STOP);

	struct errbuf e = {{0}};
	uint32_t gen = vfd_reg_read(g.m, VIRTIO_MMIO_CONFIG_GENERATION);
	cr_assert_eq(virtio_balloon_set_target(g.b, 4, &e), 0, "%s", e.msg);
	cr_assert_eq(cfg32(&g, 0), 4 * 256);
	cr_assert_neq(vfd_reg_read(g.m, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	cr_assert_eq(virtio_balloon_set_target(g.b, 5, &e), -EINVAL, "more than guest RAM");
	struct virtio_balloon_stats s;
	cr_assert_eq(virtio_balloon_stats(g.b, &s, &e), 0);
	cr_assert(s.target_pages == 1024 && s.actual_pages == 100 && s.have == 0);
	struct virtio_balloon_params out;
	virtio_balloon_config(g.b, &out);
	cr_assert(out.amount_mib == 4 && out.deflate_on_oom && out.free_page_reporting);
	rig_down(&g);
}

Test(balloon, inflate_gives_pages_back_and_deflate_keeps_them)
{
	struct rig g;
	rig_up(&g, &plain, 0, 2);
	fill(&g, DATA_GPA, 0x4000, 0xaa);
	/* two runs: pages 0-1 and 3 of the data; page 2 stays */
	uint64_t in[] = {DATA_GPA, DATA_GPA + 0x1000, DATA_GPA + 0x3000};
	pfn_request(&g, 0, in, 3);
	cr_assert(wait_used(&g, 0, 1));
	expect_pages(&g, DATA_GPA, "00x0");
	struct virtio_balloon_metrics mt;
	virtio_balloon_metrics(g.b, &mt);
	cr_assert(mt.inflate_count == 1 && mt.inflated_bytes == 0x3000);

	fill(&g, DATA_GPA, 0x1000, 0x55); /* the guest reuses a page after deflating it */
	uint64_t out[] = {DATA_GPA};
	pfn_request(&g, 1, out, 1);
	cr_assert(wait_used(&g, 1, 1));
	cr_assert_not(all_zero(&g, DATA_GPA, 0x1000), "deflate leaves the page alone");
	virtio_balloon_metrics(g.b, &mt);
	cr_assert_eq(mt.deflate_count, 1);
	cr_assert_eq(status(&g) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	rig_down(&g);
}

Test(balloon, pfn_outside_ram_needs_reset)
{
	struct rig g;
	rig_up(&g, &plain, 0, 2);
	uint64_t in[] = {RAM, 0xfee00000ull, 0xffffffffull << 12};
	pfn_request(&g, 0, in, 3);
	cr_assert(needs_reset(&g));
	rig_down(&g);
	rig_up(&g, &plain, 0, 2);
	pfn_request(&g, 1, in + 2, 1); /* deflate is checked too */
	cr_assert(needs_reset(&g));
	rig_down(&g);
}

Test(balloon, bad_request_lengths_need_reset)
{
	struct rig g;
	rig_up(&g, &plain, 0, 2);
	offer(&g, 0, desc(&g, 0, ARG_GPA, 6, 0, 0)); /* 1.5 PFNs */
	cr_assert(needs_reset(&g));
	rig_down(&g);
	/* more PFNs in one request than the device takes */
	rig_up(&g, &plain, 0, 2);
	offer(&g, 0, desc(&g, 0, DATA_GPA, (uint32_t)KIB(64) + 4, 0, 0));
	cr_assert(needs_reset(&g));
	rig_down(&g);
	/* and the driver's reset brings it back */
	rig_up(&g, &plain, 0, 2);
	offer(&g, 0, desc(&g, 0, ARG_GPA, 3, 0, 0));
	cr_assert(needs_reset(&g));
	/* a driver's reset starts over on fresh rings */
	memset(gm_ptr(&g.gm, Q_GPA, 0x8000), 0, 0x8000);
	memset(g.avail_idx, 0, sizeof(g.avail_idx));
	memset(g.next_desc, 0, sizeof(g.next_desc));
	driver_init(&g, 0, 2);
	uint64_t in[] = {DATA_GPA};
	pfn_request(&g, 0, in, 1);
	cr_assert(wait_used(&g, 0, 1));
	rig_down(&g);
}

/* one statistics buffer: `n` entries of (tag, value) */
static uint16_t stats_buffer(struct rig *g, unsigned q, const uint16_t *tags, const uint64_t *vals,
                             unsigned n)
{
	uint64_t at = ARG_GPA + 0x2000;
	for (unsigned i = 0; i < n; i++) {
		uint16_t t = htole16(tags[i]);
		uint64_t v = htole64(vals[i]);
		gm_write(&g->gm, at + 10 * i, &t, 2);
		gm_write(&g->gm, at + 10 * i + 2, &v, 8);
	}
	return desc(g, q, at, 10 * n, 0, 0);
}

Test(balloon, statistics_buffer_is_held_until_the_timer)
{
	struct rig g;
	struct errbuf e = {{0}};
	struct virtio_balloon_params p = {.id = "balloon", .stats_polling_interval_s = 1};
	rig_up(&g, &p, F_STATS, 3);
	uint16_t tags[] = {4, 5, 99};
	uint64_t vals[] = {1000, 4096, 7};
	offer(&g, 2, stats_buffer(&g, 2, tags, vals, 3));
	usleep(300000);
	cr_assert_eq(vfd_used_idx(&g.gm, used_gpa(2)), 0, "held until the poll");
	struct virtio_balloon_stats s;
	cr_assert_eq(virtio_balloon_stats(g.b, &s, &e), 0);
	cr_assert_eq(s.have, (1u << 4) | (1u << 5));
	cr_assert(s.val[4] == 1000 && s.val[5] == 4096);
	cr_assert(wait_used(&g, 2, 1), "the timer gives the buffer back");
	struct virtio_balloon_metrics mt;
	virtio_balloon_metrics(g.b, &mt);
	cr_assert(mt.stats_updates_count == 1 && mt.stats_update_fails == 1);

	/* a new interval polls at once; statistics cannot be turned off */
	tags[0] = 6;
	offer(&g, 2, stats_buffer(&g, 2, tags, vals, 1));
	usleep(50000);
	cr_assert_eq(virtio_balloon_set_stats_interval(g.b, 30, &e), 0, "%s", e.msg);
	cr_assert(vfd_wait_used(&g.gm, used_gpa(2), 2, 500), "polled at once");
	cr_assert_eq(virtio_balloon_set_stats_interval(g.b, 0, &e), -EINVAL);
	rig_down(&g);

	rig_up(&g, &plain, 0, 2);
	cr_assert_eq(virtio_balloon_stats(g.b, &s, &e), -ENOTSUP);
	cr_assert_eq(virtio_balloon_set_stats_interval(g.b, 5, &e), -EINVAL);
	rig_down(&g);
}

/* the guest's hint command `cmd` on the hint queue q */
static void hint_cmd(struct rig *g, unsigned q, uint32_t cmd)
{
	uint64_t at = ARG_GPA + 0x3000 + 4 * (g->next_desc[q] % QSZ);
	cmd = htole32(cmd);
	gm_write(&g->gm, at, &cmd, 4);
	offer(g, q, desc(g, q, at, 4, 0, 0));
}

Test(balloon, free_page_hinting_run)
{
	struct rig g;
	struct errbuf e = {{0}};
	struct virtio_balloon_params p = {.id = "balloon", .free_page_hinting = true};
	/* no statistics: the hint queue is queue 2 */
	rig_up(&g, &p, F_HINT, 3);
	struct virtio_balloon_hinting h;
	cr_assert_eq(virtio_balloon_hint_status(g.b, &h, &e), 0);
	cr_assert(h.host_cmd == 0 && !h.has_guest_cmd);
	fill(&g, DATA_GPA, 0x3000, 0xcc);

	/* hints before a run are not taken */
	hint_cmd(&g, 2, 5);
	offer(&g, 2, desc(&g, 2, DATA_GPA, 0x1000, VIRTQ_DESC_F_WRITE, 0));
	cr_assert(wait_used(&g, 2, 2));
	cr_assert_not(all_zero(&g, DATA_GPA, 0x1000));

	cr_assert_eq(virtio_balloon_hint_start(g.b, true, &e), 0, "%s", e.msg);
	cr_assert_eq(cfg32(&g, 8), 2);
	hint_cmd(&g, 2, 2);
	offer(&g, 2, desc(&g, 2, DATA_GPA + 0x1000, 0x2000, VIRTQ_DESC_F_WRITE, 0));
	cr_assert(wait_used(&g, 2, 4));
	cr_assert(all_zero(&g, DATA_GPA + 0x1000, 0x2000), "hinted pages given back");
	cr_assert_not(all_zero(&g, DATA_GPA, 0x1000));
	/* the guest's STOP: acknowledged with DONE */
	hint_cmd(&g, 2, VIRTIO_BALLOON_CMD_ID_STOP);
	cr_assert(wait_used(&g, 2, 5));
	for (int i = 0; i < 1000 && cfg32(&g, 8) != VIRTIO_BALLOON_CMD_ID_DONE; i++)
		usleep(1000);
	cr_assert_eq(cfg32(&g, 8), VIRTIO_BALLOON_CMD_ID_DONE);
	cr_assert_eq(virtio_balloon_hint_status(g.b, &h, &e), 0);
	cr_assert(h.host_cmd == 1 && h.has_guest_cmd && h.guest_cmd == 0);
	/* the next run has a new id; stop sets DONE */
	cr_assert_eq(virtio_balloon_hint_start(g.b, false, &e), 0);
	cr_assert_eq(cfg32(&g, 8), 3);
	cr_assert_eq(virtio_balloon_hint_stop(g.b, &e), 0);
	cr_assert_eq(cfg32(&g, 8), 1);
	/* a command of the wrong size breaks the device */
	offer(&g, 2, desc(&g, 2, ARG_GPA, 8, 0, 0));
	cr_assert(needs_reset(&g));
	rig_down(&g);

	rig_up(&g, &plain, 0, 2);
	cr_assert_eq(virtio_balloon_hint_start(g.b, true, &e), -ENOTSUP);
	cr_assert_eq(virtio_balloon_hint_status(g.b, &h, &e), -ENOTSUP);
	rig_down(&g);
}

Test(balloon, free_page_reports_are_discarded)
{
	struct rig g;
	struct virtio_balloon_params p = {.id = "balloon",
	                                  .stats_polling_interval_s = 5,
	                                  .free_page_hinting = true,
	                                  .free_page_reporting = true};
	/* every feature: stats 2, hint 3, report 4 */
	rig_up(&g, &p, F_STATS | F_HINT | F_REPORT, 5);
	fill(&g, DATA_GPA, 0x8000, 0x11);
	uint16_t h = desc(&g, 4, DATA_GPA, 0x2000, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	vfd_put_desc(&g.gm, desc_gpa(4), h, DATA_GPA, 0x2000,
	             VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(h + 1));
	desc(&g, 4, DATA_GPA + 0x5000, 0x3000, VIRTQ_DESC_F_WRITE, 0);
	offer(&g, 4, h);
	cr_assert(wait_used(&g, 4, 1));
	expect_pages(&g, DATA_GPA, "00xxx000");
	struct virtio_balloon_metrics mt;
	virtio_balloon_metrics(g.b, &mt);
	cr_assert(mt.free_page_report_count == 2 && mt.free_page_report_freed == 0x5000);
	rig_down(&g);
}

Test(balloon, snapshot_keeps_target_stats_buffer_and_ends_a_hint_run)
{
	struct rig g;
	struct errbuf e = {{0}};
	struct virtio_balloon_params p = {.id = "balloon",
	                                  .amount_mib = 2,
	                                  .stats_polling_interval_s = 1,
	                                  .free_page_hinting = true};
	rig_up(&g, &p, F_STATS | F_HINT, 4);
	uint32_t v = 77;
	virtio_mmio_bus_ops.write(g.m, VIRTIO_MMIO_CONFIG + 4, &v, 4);
	uint16_t tags[] = {5};
	uint64_t vals[] = {123};
	offer(&g, 2, stats_buffer(&g, 2, tags, vals, 1));
	usleep(100000);
	cr_assert_eq(virtio_balloon_hint_start(g.b, true, &e), 0);

	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(g.m, &w), 0);
	virtio_mmio_resume(g.m);
	virtio_mmio_destroy(g.m);
	virtio_balloon_destroy(g.b);
	p.amount_mib = 0;
	rig_make(&g, &p);
	struct state_reader r;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(g.m, &r, &e), 0, "%s", e.msg);
	sw_free(&w);
	cr_assert_eq(cfg32(&g, 0), 512, "the target");
	cr_assert_eq(cfg32(&g, 4), 77, "actual");
	cr_assert_eq(cfg32(&g, 8), VIRTIO_BALLOON_CMD_ID_DONE, "the run ended");
	struct virtio_balloon_stats s;
	cr_assert_eq(virtio_balloon_stats(g.b, &s, &e), 0);
	cr_assert(s.have == 1u << 5 && s.val[5] == 123);
	cr_assert(wait_used(&g, 2, 1), "the held buffer is given back after the restore");

	/* a device without statistics does not take this state */
	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(g.m, &w), 0);
	virtio_mmio_resume(g.m);
	virtio_mmio_destroy(g.m);
	virtio_balloon_destroy(g.b);
	p.stats_polling_interval_s = 0;
	rig_make(&g, &p);
	sr_init(&r, w.buf, w.len);
	cr_assert_lt(virtio_mmio_restore(g.m, &r, &e), 0);
	sw_free(&w);
	rig_down(&g);
}

Test(balloon, restore_refuses_trailing_bytes)
{
	struct rig g;
	rig_up(&g, &plain, 0, 2);
	vfd_expect_padding_refused(&g.m, &g.gm, "virtio-balloon.balloon", 1);
	rig_down(&g);
}

Test(balloon, discard_stays_inside_guest_ram)
{
	struct rig g;
	rig_up(&g, &plain, 0, 2);
	uint8_t *base = gm_ptr(&g.gm, 0, 1);
	uint8_t outside[8192];
	cr_assert_eq(gm_discard(&g.gm, outside, sizeof(outside)), -EFAULT);
	cr_assert_eq(gm_discard(&g.gm, base + RAM - 0x1000, 0x2000), -EFAULT, "past the end");
	cr_assert_eq(gm_discard(&g.gm, base - 0x1000, 0x2000), -EFAULT, "before the start");
	cr_assert_eq(gm_discard(&g.gm, base + 0x1800, 0x1000), 0, "no whole page");
	fill(&g, DATA_GPA, 0x3000, 1);
	cr_assert_eq(gm_discard(&g.gm, base + DATA_GPA + 0x800, 0x2000), 0x1000);
	expect_pages(&g, DATA_GPA, "x0x");
	rig_down(&g);
}

Test(balloon, create_rejects_bad_input)
{
	struct virtio_balloon *b = NULL;
	struct errbuf e = {{0}};
	struct virtio_balloon_params p = {.id = ""};
	cr_assert_eq(virtio_balloon_create(&b, &p, &e), -EINVAL);
	p.id = "balloon";
	p.amount_mib = UINT32_MAX / 256 + 1;
	cr_assert_eq(virtio_balloon_create(&b, &p, &e), -EINVAL);
	cr_assert_null(b);
	virtio_balloon_destroy(NULL);
}
