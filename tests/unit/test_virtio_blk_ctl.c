// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio/blk beyond single requests: creation errors,
 * PATCH (new file with a config interrupt, new limits), the rate limiter
 * on a fake clock, host I/O errors, saved state with the Async engine's
 * requests in flight, and the Async engine's count of completions it did
 * not expect.
 */
#include "virtio/blk_int.h"
#include "virtio_blk_rig.h"

#include <linux/loop.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* -------------------------------------------------------------- create */

static int create(const char *id, const char *path, bool ro, bool async, struct errbuf *e)
{
	struct virtio_blk *b = NULL;
	struct virtio_blk_params p = {.id = id, .path = path, .read_only = ro, .async = async};
	int r = virtio_blk_create(&b, &p, e);
	if (r == 0)
		virtio_blk_destroy(b);
	else
		cr_assert_null(b);
	return r;
}

Test(blk_ctl, create_refuses_bad_input)
{
	struct errbuf e = {{0}};
	cr_assert_eq(create("d0", "/nonexistent/disk.img", false, false, &e), -ENOENT);
	cr_assert(strstr(e.msg, "/nonexistent/disk.img") && strstr(e.msg, "d0"), "%s", e.msg);
	cr_assert_eq(create("d0", "/tmp", false, false, &e), -EISDIR, "%s", e.msg);
	cr_assert_eq(create("d0", "/tmp", true, false, &e), -EINVAL, "%s", e.msg);
	cr_assert(strstr(e.msg, "not a regular file or a block device"), "%s", e.msg);
	cr_assert_eq(create("d0", "/dev/null", true, false, &e), -EINVAL, "a character device");
	cr_assert_eq(create("d0", "", false, false, &e), -EINVAL);
	cr_assert_eq(create("d-0", "/dev/null", false, false, &e), -EINVAL);
	cr_assert(strstr(e.msg, "letters"), "%s", e.msg);
	cr_assert_eq(create("", "/dev/null", false, false, &e), -EINVAL);
	/* 64 characters are fine (ids_as_long_as_the_api_allows), 65 are not */
	cr_assert_eq(create("a_drive_id_of_65_characters_0123456789_0123456789_0123456789_0123",
	                    "/dev/null", false, false, &e),
	             -EINVAL);
	cr_assert(strstr(e.msg, "1 to 64 characters"), "%s", e.msg);
	/* a FIFO must not hang the open */
	char fifo[] = "/tmp/kiln-blk-fifo-XXXXXX";
	cr_assert_not_null(mkdtemp(fifo));
	char path[64];
	snprintf(path, sizeof(path), "%s/f", fifo);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(create("d0", path, true, false, &e), -EINVAL, "%s", e.msg);
	unlink(path);
	rmdir(fifo);
	virtio_blk_destroy(NULL);
}

Test(blk_ctl, size_not_a_multiple_of_512_rounds_down)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.size = MIB(1) + 100});
	cr_assert_eq(cfg_read64(&g, 0), 2048);
	cr_assert_eq(virtio_blk_capacity(g.blk), 2048);
	static uint8_t buf[SECTOR];
	cr_assert_eq(do_req(&g, T_IN, 2048, buf, SECTOR, true, NULL), S_IOERR,
	             "the tail is hidden");
	rig_down(&g);
}

Test(blk_ctl, async_without_io_uring_fails_at_create)
{
	/* this test's process loses io_uring_setup, as under a seccomp policy */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	cr_assert_not_null(ctx);
	cr_assert_eq(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0), 0);
	cr_assert_eq(seccomp_load(ctx), 0);
	seccomp_release(ctx);
	char path[64];
	make_file(path, sizeof(path), "/tmp", MIB(1), 0);
	struct errbuf e = {{0}};
	cr_assert_eq(create("d0", path, false, true, &e), -ENOSYS);
	cr_assert(strstr(e.msg, "io_uring") && strstr(e.msg, "Sync"), "%s", e.msg);
	cr_assert_eq(create("d0", path, false, false, &e), 0, "Sync still works: %s", e.msg);
	unlink(path);
}

/* --------------------------------------------------------------- PATCH */

static void update_file(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async});
	char path2[64];
	make_file(path2, sizeof(path2), "/tmp", MIB(2), 0x77);
	static uint8_t id1[20], id2[20], buf[SECTOR];
	cr_assert_eq(do_req(&g, T_GET_ID, 0, id1, 20, true, NULL), S_OK);
	uint32_t gen = reg_read(&g, VIRTIO_MMIO_CONFIG_GENERATION);
	struct errbuf e = {{0}};

	/* a bad new path changes nothing */
	cr_assert_eq(virtio_blk_update(g.blk, "/nonexistent", NULL, NULL, false, &e), -ENOENT);
	cr_assert_eq(cfg_read64(&g, 0), 2048);
	cr_assert_eq(reg_read(&g, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG, 0);

	uint64_t v;
	while (read(g.m->irq_fd, &v, 8) == 8) /* forget earlier interrupts (non-blocking fd) */
		;
	cr_assert_eq(virtio_blk_update(g.blk, path2, NULL, NULL, false, &e), 0, "%s", e.msg);
	cr_assert_eq(cfg_read64(&g, 0), 4096, "the new capacity");
	cr_assert_neq(reg_read(&g, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	cr_assert(reg_read(&g, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	struct pollfd p = {.fd = g.m->irq_fd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 1000), 1, "a config-change interrupt");
	reg_write(&g, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);

	cr_assert_eq(do_req(&g, T_IN, 3000, buf, SECTOR, true, NULL), S_OK);
	cr_assert_eq(buf[0], 0x77, "served from the new file");
	cr_assert_eq(do_req(&g, T_GET_ID, 0, id2, 20, true, NULL), S_OK);
	cr_assert_neq(memcmp(id1, id2, 20), 0, "GET_ID follows the file");
	memset(buf, 0x99, sizeof(buf));
	cr_assert_eq(do_req(&g, T_OUT, 4095, buf, SECTOR, false, NULL), S_OK);
	int fd2 = open(path2, O_RDONLY);
	uint8_t got[SECTOR];
	cr_assert_eq(pread(fd2, got, SECTOR, 4095 * SECTOR), SECTOR);
	cr_assert_arr_eq(got, buf, SECTOR);
	close(fd2);
	cr_assert(file_all(&g, 0, MIB(1), 0), "the old file is left alone");
	unlink(path2);
	rig_down(&g);
}

Test(blk_ctl, update_file_sync)
{
	update_file(false);
}

Test(blk_ctl, update_file_async)
{
	update_file(true);
}

Test(blk_ctl, update_limiter)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){0});
	struct rl_bucket_cfg bw = {.size = 1000, .refill_time_ms = 10}, ops = {0}, got_bw, got_ops;
	struct errbuf e = {{0}};
	cr_assert_eq(virtio_blk_update(g.blk, NULL, &bw, &ops, true, &e), 0, "%s", e.msg);
	virtio_blk_limiter_cfg(g.blk, &got_bw, &got_ops);
	cr_assert(got_bw.size == 1000 && got_bw.refill_time_ms == 10 && got_ops.size == 0);
	struct rl_bucket_cfg bad = {.size = 1, .refill_time_ms = UINT64_MAX};
	cr_assert_eq(virtio_blk_update(g.blk, NULL, &bad, NULL, true, &e), -EINVAL);
	virtio_blk_limiter_cfg(g.blk, &got_bw, &got_ops);
	cr_assert_eq(got_bw.size, 1000, "a refused PATCH changes nothing");
	cr_assert_eq(do_req(&g, T_FLUSH, 0, NULL, 0, false, NULL), S_OK);
	rig_down(&g);
}

/* ----------------------------------------------------- rate limiting */

static uint64_t fake_ns = 1000000000ull;
static uint64_t fake_now(void *opaque)
{
	(void)opaque;
	return __atomic_load_n(&fake_ns, __ATOMIC_SEQ_CST);
}
static const struct rl_clock fake_clock = {.now_ns = fake_now};

static void rate_limit(bool async)
{
	struct rig g;
	/* 8 KiB per 100 ms, one op per 100 ms, on a clock only the test moves */
	struct rl_bucket_cfg bw = {.size = 8192, .refill_time_ms = 100};
	struct rl_bucket_cfg ops = {.size = 2, .refill_time_ms = 100};
	rig_up(&g,
	       &(struct rig_opts){.async = async, .bw = &bw, .ops = &ops, .clock = &fake_clock});
	/* two 4 KiB reads fit the buckets; the third (a flush: ops only) waits */
	offer_req(&g, 0, T_IN, 0, 4096, true, false);
	offer_req(&g, 1, T_IN, 8, 4096, true, false);
	offer_req(&g, 2, T_FLUSH, 0, 0, false, true);
	cr_assert(wait_used(&g, 2, 2000));
	usleep(300000);
	cr_assert_eq(used_idx(&g), 2, "held while the fake clock stands still");
	struct virtio_blk_metrics m;
	virtio_blk_metrics(g.blk, &m);
	cr_assert_geq(m.throttled, 1);
	__atomic_fetch_add(&fake_ns, 50000000ull, __ATOMIC_SEQ_CST); /* one op refilled */
	cr_assert(wait_used(&g, 3, 3000), "served once the clock moved");
	cr_assert_eq(status_of(&g, 2), S_OK);

	/* an 8 KiB read needs the whole byte bucket (4 KiB refilled so far) and an op */
	offer_req(&g, 3, T_IN, 16, 8192, true, true);
	usleep(300000);
	cr_assert_eq(used_idx(&g), 3);
	__atomic_fetch_add(&fake_ns, 50000000ull, __ATOMIC_SEQ_CST);
	cr_assert(wait_used(&g, 4, 3000));
	/* invalid requests are answered without the limiter */
	offer_req(&g, 4, T_IN, 1u << 30, 512, true, true);
	cr_assert(wait_used(&g, 5, 2000));
	cr_assert_eq(status_of(&g, 4), S_IOERR);
	rig_down(&g);
}

Test(blk_ctl, rate_limit_sync)
{
	rate_limit(false);
}

Test(blk_ctl, rate_limit_async)
{
	rate_limit(true);
}

/* ----------------------------------------------------------- I/O errors */

static void io_errors(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async, .fill = 0x5a});
	static uint8_t buf[4 * SECTOR];

	/* the file shrinks under the drive: reads past its new end fail */
	cr_assert_eq(ftruncate(g.fd, 64 * SECTOR), 0);
	cr_assert_eq(do_req(&g, T_IN, 100, buf, SECTOR, true, NULL), S_IOERR);
	cr_assert_eq(do_req(&g, T_IN, 63, buf, 2 * SECTOR, true, NULL), S_IOERR, "half there");
	cr_assert_eq(do_req(&g, T_IN, 10, buf, SECTOR, true, NULL), S_OK);
	cr_assert_eq(buf[0], 0x5a);

	/* writes beyond RLIMIT_FSIZE fail with EFBIG */
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit rl = {.rlim_cur = 128 * SECTOR, .rlim_max = RLIM_INFINITY};
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	memset(buf, 0x66, sizeof(buf));
	cr_assert_eq(do_req(&g, T_OUT, 1000, buf, SECTOR, false, NULL), S_IOERR);
	cr_assert_eq(do_req(&g, T_OUT, 20, buf, SECTOR, false, NULL), S_OK, "below the limit");
	cr_assert(file_is(&g, 20 * SECTOR, buf, SECTOR));

	struct virtio_blk_metrics m;
	virtio_blk_metrics(g.blk, &m);
	cr_assert_eq(m.io_errors, 3);
	cr_assert_eq(m.bad_requests, 0);
	cr_assert_not(needs_reset(&g), "host errors are answered, never fatal");
	rig_down(&g);
}

Test(blk_ctl, io_errors_sync)
{
	io_errors(false);
}

Test(blk_ctl, io_errors_async)
{
	io_errors(true);
}

/* ---------------------------------------------------------- saved state */

/* a new device over the same guest memory and file, as after a snapshot load */
static int reload(struct rig *g, const struct rig_opts *o, struct state_writer *w, struct errbuf *e)
{
	virtio_mmio_destroy(g->m);
	virtio_blk_destroy(g->blk);
	struct virtio_blk_params p = {.id = o->id ? o->id : "drive0",
	                              .path = g->path,
	                              .async = o->async,
	                              .writeback = o->writeback};
	cr_assert_eq(virtio_blk_create(&g->blk, &p, e), 0, "%s", e->msg);
	struct virtio_mmio_params mp = {.base = MMIO_BASE, .gsi = 5, .gm = &g->gm};
	cr_assert_eq(virtio_mmio_create(&g->m, virtio_blk_dev(g->blk), &mp, e), 0, "%s", e->msg);
	struct state_reader r;
	sr_init(&r, w->buf, w->len);
	return virtio_mmio_restore(g->m, &r, e);
}

static void snapshot(bool async)
{
	struct rig g;
	struct rig_opts o = {.async = async, .writeback = true, .size = MIB(8)};
	rig_up(&g, &o);
	enum { N = 32, LEN = 64 * 1024 };
	static uint8_t buf[LEN];
	for (unsigned i = 0; i < N; i++) {
		fill_pattern(buf, LEN, 7 * i);
		cr_assert_eq(gm_write(&g.gm, req_gpa(i) + 0x1000, buf, LEN), 0);
		offer_req(&g, i, T_OUT, (uint64_t)i * (LEN / SECTOR), LEN, false, false);
	}
	/* and a flush, which io_uring runs in a worker: likely in flight when the
	 * device is paused and saved just after the writes are answered */
	offer_req(&g, N, T_FLUSH, 0, 0, false, true);
	for (int i = 0; i < 5000 && used_idx(&g) < N; i++)
		usleep(100);
	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	cr_assert_eq(virtio_blk_drain(g.blk), 0);
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(g.m, &w), 0);
	struct errbuf e = {{0}};
	/* the VM is gone (its device never resumed); a new one takes over */
	cr_assert_eq(reload(&g, &o, &w, &e), 0, "%s", e.msg);
	cr_assert(wait_used(&g, N + 1, 5000), "every request is answered after the restore");
	cr_assert_eq(status_of(&g, N), S_OK);
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(status_of(&g, i), S_OK);
		fill_pattern(buf, LEN, 7 * i);
		cr_assert(file_is(&g, (uint64_t)i * LEN, buf, LEN), "request %u", i);
	}
	bool seen[QSZ] = {false};
	for (uint16_t n = 0; n <= N; n++) {
		uint32_t id, len;
		used_elem(&g, n, &id, &len);
		cr_assert(id < QSZ && !seen[id], "head %u answered once", id);
		seen[id] = true;
	}
	sw_free(&w);
	rig_down(&g);
}

Test(blk_ctl, snapshot_sync)
{
	snapshot(false);
}

Test(blk_ctl, snapshot_async)
{
	snapshot(true);
}

/*
 * Issue 9: ids as long as the API takes (64 characters, Firecracker's
 * limit) make a device that works and whose state is saved and restored
 * under section ids that long and longer.
 */
Test(blk_ctl, ids_as_long_as_the_api_allows)
{
	static const char id[] = "a_drive_id_of_64_characters_0123456789_0123456789_0123456789_012";
	cr_assert_eq(strlen(id), 64);
	struct rig g;
	struct rig_opts o = {.id = id};
	rig_up(&g, &o);
	static uint8_t buf[SECTOR];
	memset(buf, 0x64, sizeof(buf));
	cr_assert_eq(do_req(&g, T_OUT, 1, buf, SECTOR, false, NULL), S_OK);
	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(g.m, &w), 0);
	struct state_reader r, sub;
	char sid[STATE_ID_MAX + 1], want[160];
	uint16_t ver;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(sr_next(&r, sid, &ver, &sub), 1);
	snprintf(want, sizeof(want), "virtio-mmio.virtio-blk.%s", id);
	cr_assert_str_eq(sid, want);
	cr_assert_eq(sr_next(&r, sid, &ver, &sub), 1);
	snprintf(want, sizeof(want), "virtio-blk.%s", id);
	cr_assert_str_eq(sid, want);
	struct errbuf e = {{0}};
	cr_assert_eq(reload(&g, &o, &w, &e), 0, "%s", e.msg);
	cr_assert_eq(do_req(&g, T_IN, 1, buf, SECTOR, true, NULL), S_OK);
	cr_assert(file_is(&g, SECTOR, buf, SECTOR));
	sw_free(&w);
	rig_down(&g);
}

Test(blk_ctl, restore_checks_the_finished_requests)
{
	struct rig g;
	struct rig_opts o = {0};
	rig_up(&g, &o);
	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	struct state_writer w, bad;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(g.m, &w), 0);
	virtio_mmio_resume(g.m);
	/* the transport's section as saved, then a device section naming head 500 */
	struct state_reader r, sub;
	char id[STATE_ID_MAX + 1];
	uint16_t ver;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(sr_next(&r, id, &ver, &sub), 1);
	sw_init(&bad);
	sw_bytes(&bad, w.buf, r.off);
	sw_begin(&bad, "virtio-blk.drive0", 1);
	struct rate_limiter rl;
	struct errbuf e = {{0}};
	cr_assert_eq(rl_init(&rl, NULL, NULL, NULL, &e), 0);
	rl_save(&rl, &bad);
	rl_destroy(&rl);
	sw_u16(&bad, 1);
	sw_u16(&bad, 500);
	sw_u32(&bad, 1);
	sw_end(&bad);
	cr_assert_eq(reload(&g, &o, &bad, &e), -EINVAL);
	cr_assert(strstr(e.msg, "outside the queue"), "%s", e.msg);
	/* and the real state loads */
	cr_assert_eq(reload(&g, &o, &w, &e), 0, "%s", e.msg);
	cr_assert_eq(do_req(&g, T_FLUSH, 0, NULL, 0, false, NULL), S_OK);
	sw_free(&w);
	sw_free(&bad);
	rig_down(&g);
}

Test(blk_ctl, writes_are_synced_without_flush_negotiated)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.writeback = true, .drop_features = VIRTIO_BIT(F_FLUSH)});
	static uint8_t buf[SECTOR];
	memset(buf, 0x31, sizeof(buf));
	cr_assert_eq(do_req(&g, T_OUT, 5, buf, SECTOR, false, NULL), S_OK);
	cr_assert(file_is(&g, 5 * SECTOR, buf, SECTOR));
	cr_assert_eq(do_dz(&g, T_WZ, 5, 1, 0), S_OK);
	cr_assert(file_all(&g, 5 * SECTOR, SECTOR, 0));
	rig_down(&g);
}

/* ------------------------------------------------------- a block device */

/* a loop device over `file`; -1 when there is none (not root, no loop driver) */
static int loop_attach(char *dev, size_t len, const char *file)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -1;
	int n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return -1;
	snprintf(dev, len, "/dev/loop%d", n);
	int lfd = open(dev, O_RDWR | O_CLOEXEC), ffd = open(file, O_RDWR | O_CLOEXEC);
	int r = lfd >= 0 && ffd >= 0 ? ioctl(lfd, LOOP_SET_FD, ffd) : -1;
	if (ffd >= 0)
		close(ffd);
	/* detached by the kernel once the last fd closes, even if the test dies */
	struct loop_info64 info = {.lo_flags = LO_FLAGS_AUTOCLEAR};
	if (r == 0 && ioctl(lfd, LOOP_SET_STATUS64, &info) < 0) {
		ioctl(lfd, LOOP_CLR_FD, 0);
		r = -1;
	}
	if (r < 0 && lfd >= 0)
		close(lfd);
	return r < 0 ? -1 : lfd;
}

Test(blk_ctl, loop_block_device)
{
	struct rig g;
	struct rig_opts o = {.size = MIB(8), .fill = 0x5e, .writeback = true, .async = true};
	char dev[32];
	rig_file(&g, &o);
	int lfd = loop_attach(dev, sizeof(dev), g.path);
	if (lfd < 0) {
		unlink(g.path);
		cr_skip_test("no loop device (needs root)");
	}
	rig_start(&g, &o, dev);
	cr_assert_eq(cfg_read64(&g, 0), MIB(8) / SECTOR, "BLKGETSIZE64");
	cr_assert(g.dev_features & VIRTIO_BIT(F_DISCARD));
	cr_assert(g.dev_features & VIRTIO_BIT(F_WZ));

	static uint8_t buf[8 * SECTOR], got[8 * SECTOR];
	fill_pattern(buf, sizeof(buf), 9);
	cr_assert_eq(do_req(&g, T_OUT, 64, buf, sizeof(buf), false, NULL), S_OK);
	cr_assert_eq(do_dz(&g, T_WZ, 66, 2, 0), S_OK);
	cr_assert_eq(do_req(&g, T_FLUSH, 0, NULL, 0, false, NULL), S_OK);
	cr_assert_eq(do_req(&g, T_IN, 64, got, sizeof(got), true, NULL), S_OK);
	memset(buf + 2 * SECTOR, 0, 2 * SECTOR);
	cr_assert_arr_eq(got, buf, sizeof(got));
	cr_assert(file_is(&g, 64 * SECTOR, buf, sizeof(buf)), "through to the backing file");
	cr_assert(file_all(&g, 0, 64 * SECTOR, 0x5e));
	cr_assert_eq(do_dz(&g, T_DISCARD, 1024, 1024, 0), S_OK);
	rig_down(&g);
	ioctl(lfd, LOOP_CLR_FD, 0);
	close(lfd);
}

/* ------------------------------------ Async completions it did not expect */

/*
 * Queues a NOP tagged with each of tags[0..n) on the drive's ring the way
 * blk_uring_queue queues a request: counted in flight and queued, handed
 * to the kernel by the next submit. The I/O thread must be parked.
 */
static void queue_stray_nops(struct rig *g, const uint64_t *tags, unsigned n)
{
	struct blk_uring *u = g->blk->u;
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
		cr_assert_not_null(sqe);
		io_uring_prep_nop(sqe);
		sqe->user_data = tags[i];
		u->inflight++;
		u->queued++;
	}
}

struct drain_job {
	struct rig *g;
	bool reset;
};

/* the guest resets the device (its drain forgets) or the VMM drains (it keeps) */
static void *reset_or_drain(void *arg)
{
	struct drain_job *j = arg;
	if (j->reset)
		reg_write(j->g, VIRTIO_MMIO_STATUS, 0);
	else
		virtio_blk_drain(j->g->blk);
	return NULL;
}

static unsigned count_of(const char *text, const char *what)
{
	unsigned n = 0;
	for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/*
 * blk_uring_complete counts every completion off the requests in flight,
 * also one whose tag is past the table or names a head that is not in
 * flight: otherwise the drain would wait for a completion that never comes.
 */
static void stray_completions(bool reset)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = true, .fill = 0x77});
	static uint8_t buf[SECTOR];
	cr_assert_eq(do_req(&g, T_IN, 0, buf, SECTOR, true, NULL), S_OK, "head 0 is done");
	char *log = NULL;
	size_t log_len = 0;
	log_set_file(open_memstream(&log, &log_len));

	/* 999 is past the table; heads 0 (answered) and 3 (never offered) are not in flight */
	static const uint64_t tags[] = {999, 0, 3};
	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	queue_stray_nops(&g, tags, ARRAY_SIZE(tags));
	/* on a thread, so that a drain that never returns fails the test */
	static struct drain_job job; /* outlives a thread left hanging */
	job = (struct drain_job){&g, reset};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, reset_or_drain, &job), 0);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	cr_assert_eq(pthread_timedjoin_np(t, NULL, &until), 0,
	             "the drain still waits 5 s later: completions it did not expect were "
	             "not counted");
	cr_assert_eq(g.blk->u->inflight, 0);
	cr_assert_eq(g.blk->u->queued, 0);
	for (unsigned i = 0; i < ARRAY_SIZE(g.blk->u->slot); i++)
		cr_assert_not(g.blk->u->slot[i].busy, "slot %u", i);
	virtio_mmio_resume(g.m);

	log_set_file(NULL); /* back to stderr; `log` holds what was written */
	cr_assert_not_null(log);
	cr_assert_eq(count_of(log, "not in flight"), ARRAY_SIZE(tags), "%s", log);
	cr_assert(strstr(log, "drive0: io_uring completion for 999, which is not in flight"), "%s",
	          log);
	free(log);

	if (reset) /* the driver sets the device up again */
		driver_init(&g, 0);
	cr_assert_not(needs_reset(&g), "a stray completion is not the guest's doing");
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(do_req(&g, T_IN, 1, buf, SECTOR, true, NULL), S_OK, "the device still serves");
	cr_assert_eq(buf[0], 0x77);
	rig_down(&g);
}

Test(blk_ctl, async_drain_counts_completions_not_in_flight, .timeout = 30)
{
	stray_completions(false);
}

Test(blk_ctl, async_reset_counts_completions_not_in_flight, .timeout = 30)
{
	stray_completions(true);
}
