// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio/blk: requests through the virtio-mmio transport on
 * a temporary file, checked in guest memory and in the file byte by byte,
 * with both engines (Sync, Async = io_uring). test_virtio_blk_ctl.c tests
 * PATCH, the rate limiter, I/O errors and snapshots.
 */
#include "virtio_blk_rig.h"

/* ------------------------------------------------- read, write, flush */

static void read_write(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async, .writeback = true});
	cr_assert_eq(cfg_read64(&g, 0), MIB(1) / SECTOR, "capacity");
	cr_assert_eq(reg_read(&g, VIRTIO_MMIO_CONFIG + 12), VIRTIO_BLK_QUEUE_SIZE - 2, "seg_max");
	cr_assert_eq(reg_read(&g, VIRTIO_MMIO_CONFIG + 20), SECTOR, "blk_size");
	cr_assert(g.dev_features & VIRTIO_BIT(F_FLUSH));
	cr_assert_not(g.dev_features & VIRTIO_BIT(F_RO));

	/* 8 sectors written at sector 3 land in the file there, and nowhere else */
	static uint8_t out[8 * SECTOR], in[8 * SECTOR];
	fill_pattern(out, sizeof(out), 1);
	uint32_t ulen;
	cr_assert_eq(do_req(&g, T_OUT, 3, out, sizeof(out), false, &ulen), S_OK);
	cr_assert_eq(ulen, 1, "a write returns only the status byte");
	cr_assert(file_is(&g, 3 * SECTOR, out, sizeof(out)));
	cr_assert(file_all(&g, 0, 3 * SECTOR, 0));
	cr_assert(file_all(&g, 11 * SECTOR, SECTOR, 0));

	/* read back; then a read of what the host wrote directly */
	cr_assert_eq(do_req(&g, T_IN, 3, in, sizeof(in), true, &ulen), S_OK);
	cr_assert_eq(ulen, sizeof(in) + 1);
	cr_assert_arr_eq(in, out, sizeof(in));
	fill_pattern(out, SECTOR, 2);
	cr_assert_eq(pwrite(g.fd, out, SECTOR, 2047 * SECTOR), SECTOR);
	cr_assert_eq(do_req(&g, T_IN, 2047, in, SECTOR, true, NULL), S_OK, "the last sector");
	cr_assert_arr_eq(in, out, SECTOR);

	cr_assert_eq(do_req(&g, T_FLUSH, 0, NULL, 0, false, &ulen), S_OK);
	cr_assert_eq(ulen, 1);
	/* a zero-length read at the capacity is within range */
	cr_assert_eq(do_req(&g, T_IN, 2048, NULL, 0, true, NULL), S_OK);

	struct virtio_blk_metrics m;
	virtio_blk_metrics(g.blk, &m);
	cr_assert_eq(m.write_ops, 1);
	cr_assert_eq(m.write_bytes, 8 * SECTOR);
	cr_assert_eq(m.read_ops, 3);
	cr_assert_eq(m.read_bytes, 9 * SECTOR);
	cr_assert_eq(m.flush_ops, 1);
	cr_assert_eq(m.io_errors + m.bad_requests + m.throttled, 0);
	struct pollfd p = {.fd = g.m->irq_fd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 1000), 1, "used-buffer interrupts");
	rig_down(&g);
}

Test(blk, read_write_sync)
{
	read_write(false);
}

Test(blk, read_write_async)
{
	read_write(true);
}

/* odd chains: the header split over two descriptors, data sharing the status's */
static void odd_layouts(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async});
	static uint8_t out[2 * SECTOR], in[2 * SECTOR + 1];
	fill_pattern(out, sizeof(out), 3);
	put_header(&g, 0, T_OUT, 10);
	cr_assert_eq(gm_write(&g.gm, req_gpa(0) + 16, out, sizeof(out)), 0);
	/* header 10 + (6 + 1024 data) in two readable descriptors, then the status */
	struct seg s[3] = {{req_gpa(0), 10, false},
	                   {req_gpa(0) + 10, 6 + sizeof(out), false},
	                   {req_gpa(0) + 0x800, 1, true}};
	offer_chain(&g, s, 3, true);
	cr_assert(wait_used(&g, 1, 5000));
	cr_assert_eq(status_of(&g, 0), S_OK);
	cr_assert(file_is(&g, 10 * SECTOR, out, sizeof(out)));

	/* a read whose data and status share one writable descriptor of 1025 bytes */
	put_header(&g, 1, T_IN, 10);
	struct seg r[2] = {{req_gpa(1), 16, false}, {req_gpa(1) + 0x1000, sizeof(in), true}};
	offer_chain(&g, r, 2, true);
	cr_assert(wait_used(&g, 2, 5000));
	cr_assert_eq(gm_read(&g.gm, req_gpa(1) + 0x1000, in, sizeof(in)), 0);
	cr_assert_arr_eq(in, out, sizeof(out));
	cr_assert_eq(in[sizeof(out)], S_OK, "the status is the last writable byte");
	rig_down(&g);
}

Test(blk, odd_layouts_sync)
{
	odd_layouts(false);
}

Test(blk, odd_layouts_async)
{
	odd_layouts(true);
}

/* many requests in one notification: the Async engine batches them */
static void batch(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async, .size = MIB(4)});
	enum { N = 32, LEN = 16 * SECTOR };
	static uint8_t buf[LEN];
	for (unsigned i = 0; i < N; i++) {
		fill_pattern(buf, LEN, 100 + i);
		cr_assert_eq(gm_write(&g.gm, req_gpa(i) + 0x1000, buf, LEN), 0);
		offer_req(&g, i, T_OUT, (uint64_t)i * 32, LEN, false, false);
	}
	reg_write(&g, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(wait_used(&g, N, 5000));
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(status_of(&g, i), S_OK);
		fill_pattern(buf, LEN, 100 + i);
		cr_assert(file_is(&g, (uint64_t)i * 32 * SECTOR, buf, LEN), "request %u", i);
		cr_assert(file_all(&g, ((uint64_t)i * 32 + 16) * SECTOR, 16 * SECTOR, 0));
	}
	for (unsigned i = 0; i < N; i++)
		offer_req(&g, i, T_IN, (uint64_t)i * 32, LEN, true, false);
	reg_write(&g, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(wait_used(&g, 2 * N, 5000));
	for (unsigned i = 0; i < N; i++) {
		static uint8_t got[LEN];
		cr_assert_eq(status_of(&g, i), S_OK);
		cr_assert_eq(gm_read(&g.gm, req_gpa(i) + 0x1000, got, LEN), 0);
		fill_pattern(buf, LEN, 100 + i);
		cr_assert_arr_eq(got, buf, LEN, "read back %u", i);
	}
	rig_down(&g);
}

Test(blk, batch_sync)
{
	batch(false);
}

Test(blk, batch_async)
{
	batch(true);
}

Test(blk, unsafe_flush_is_not_offered_and_answers_ok)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.writeback = false});
	cr_assert_not(g.dev_features & VIRTIO_BIT(F_FLUSH));
	cr_assert_eq(do_req(&g, T_FLUSH, 0, NULL, 0, false, NULL), S_OK);
	rig_down(&g);
}

/* ------------------------------------------------------------- GET_ID */

static void get_id(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async});
	struct stat st;
	cr_assert_eq(fstat(g.fd, &st), 0);
	char want[64] = {0}, got[32];
	snprintf(want, sizeof(want), "%llu%llu%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_rdev, (unsigned long long)st.st_ino);
	want[VIRTIO_BLK_ID_BYTES] = 0;
	memset(got, 0x55, sizeof(got));
	uint32_t ulen;
	cr_assert_eq(do_req(&g, T_GET_ID, 0, got, 32, true, &ulen), S_OK);
	cr_assert_eq(ulen, VIRTIO_BLK_ID_BYTES + 1);
	cr_assert_arr_eq(got, want, VIRTIO_BLK_ID_BYTES, "Firecracker's dev/rdev/ino id");
	cr_assert_eq(got[20], 0x55, "nothing past the 20 bytes");
	/* too short a buffer */
	cr_assert_eq(do_req(&g, T_GET_ID, 0, got, 19, true, NULL), S_IOERR);
	rig_down(&g);
}

Test(blk, get_id_sync)
{
	get_id(false);
}

Test(blk, get_id_async)
{
	get_id(true);
}

/* ---------------------------------------------- discard, write zeroes */

static void discard_write_zeroes(bool async, const char *dir)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async, .fill = 0xaa, .dir = dir});
	cr_assert(g.dev_features & VIRTIO_BIT(F_DISCARD), "ext4 and tmpfs punch holes");
	cr_assert(g.dev_features & VIRTIO_BIT(F_WZ));
	cr_assert_eq(reg_read(&g, VIRTIO_MMIO_CONFIG + 36), 0x3fffff, "max_discard_sectors");
	cr_assert_eq(reg_read(&g, VIRTIO_MMIO_CONFIG + 40), 32, "max_discard_seg");
	cr_assert_eq(reg_read(&g, VIRTIO_MMIO_CONFIG + 48), 0x3fffff, "max_write_zeroes_sectors");
	cr_assert_eq(reg_read(&g, VIRTIO_MMIO_CONFIG + 56) & 0xff, 1, "write_zeroes_may_unmap");

	/* write zeroes over sectors 2..5, then with unmap over 20..27 (a 4 KiB hole) */
	cr_assert_eq(do_dz(&g, T_WZ, 2, 4, 0), S_OK);
	cr_assert(file_all(&g, 0, 2 * SECTOR, 0xaa));
	cr_assert(file_all(&g, 2 * SECTOR, 4 * SECTOR, 0));
	cr_assert(file_all(&g, 6 * SECTOR, 14 * SECTOR, 0xaa));
	cr_assert_eq(do_dz(&g, T_WZ, 20, 8, 1), S_OK);
	cr_assert(file_all(&g, 20 * SECTOR, 8 * SECTOR, 0));
	cr_assert(file_all(&g, 28 * SECTOR, SECTOR, 0xaa));

	/* two segments in one request */
	uint8_t segs[32] = {0};
	uint64_t s1 = 100, s2 = 200;
	uint32_t n1 = 1, n2 = 2;
	memcpy(segs, &s1, 8);
	memcpy(segs + 8, &n1, 4);
	memcpy(segs + 16, &s2, 8);
	memcpy(segs + 24, &n2, 4);
	cr_assert_eq(do_req(&g, T_WZ, 0, segs, 32, false, NULL), S_OK);
	cr_assert(file_all(&g, 100 * SECTOR, SECTOR, 0));
	cr_assert(file_all(&g, 101 * SECTOR, SECTOR, 0xaa));
	cr_assert(file_all(&g, 200 * SECTOR, 2 * SECTOR, 0));

	/* discard is a hint, but must answer OK; size unchanged */
	cr_assert_eq(do_dz(&g, T_DISCARD, 64, 64, 0), S_OK);
	struct stat st;
	cr_assert_eq(fstat(g.fd, &st), 0);
	cr_assert_eq(st.st_size, MIB(1));

	/* s5.2.6.3: unmap on discard and unknown flags are UNSUPP; range is IOERR */
	cr_assert_eq(do_dz(&g, T_DISCARD, 0, 1, 1), S_UNSUPP);
	cr_assert_eq(do_dz(&g, T_WZ, 0, 1, 2), S_UNSUPP);
	cr_assert(file_all(&g, 0, SECTOR, 0xaa), "a refused request changes nothing");
	cr_assert_eq(do_dz(&g, T_WZ, 2047, 2, 0), S_IOERR);
	cr_assert_eq(do_dz(&g, T_WZ, UINT64_MAX, 1, 0), S_IOERR);
	cr_assert_eq(do_req(&g, T_WZ, 0, segs, 24, false, NULL), S_IOERR, "half a segment");
	cr_assert_eq(do_req(&g, T_DISCARD, 0, NULL, 0, false, NULL), S_IOERR, "no segment");
	cr_assert(file_all(&g, 2047 * SECTOR, SECTOR, 0xaa));

	struct virtio_blk_metrics m;
	virtio_blk_metrics(g.blk, &m);
	cr_assert_eq(m.write_ops, 4);
	cr_assert_eq(m.bad_requests, 6);
	rig_down(&g);
}

Test(blk, discard_write_zeroes_sync)
{
	discard_write_zeroes(false, "/tmp");
}

Test(blk, discard_write_zeroes_async)
{
	discard_write_zeroes(true, "/tmp");
}

Test(blk, write_zeroes_on_tmpfs_punches)
{
	struct stat st;
	if (stat("/dev/shm", &st) < 0)
		cr_skip_test("no /dev/shm");
	discard_write_zeroes(false, "/dev/shm");
}

Test(blk, discard_not_negotiated_is_unsupported)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.drop_features = VIRTIO_BIT(F_DISCARD) | VIRTIO_BIT(F_WZ)});
	cr_assert_eq(do_dz(&g, T_DISCARD, 0, 1, 0), S_UNSUPP);
	cr_assert_eq(do_dz(&g, T_WZ, 0, 1, 0), S_UNSUPP);
	rig_down(&g);
}

/* ------------------------------------------------------------ refusals */

static void read_only(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async, .ro = true, .fill = 0x11});
	cr_assert(g.dev_features & VIRTIO_BIT(F_RO));
	cr_assert_not(g.dev_features & VIRTIO_BIT(F_DISCARD));
	cr_assert_not(g.dev_features & VIRTIO_BIT(F_WZ));
	static uint8_t buf[SECTOR];
	memset(buf, 0x22, sizeof(buf));
	cr_assert_eq(do_req(&g, T_OUT, 0, buf, SECTOR, false, NULL), S_IOERR);
	cr_assert(file_all(&g, 0, SECTOR, 0x11), "s5.2.6.3: MUST NOT write any data");
	cr_assert_eq(do_req(&g, T_IN, 0, buf, SECTOR, true, NULL), S_OK);
	cr_assert_eq(buf[0], 0x11);
	cr_assert_eq(do_dz(&g, T_WZ, 0, 1, 0), S_UNSUPP, "not offered, so not negotiated");
	cr_assert_eq(do_req(&g, T_FLUSH, 0, NULL, 0, false, NULL), S_OK);
	cr_assert_not(needs_reset(&g));
	rig_down(&g);
}

Test(blk, read_only_sync)
{
	read_only(false);
}

Test(blk, read_only_async)
{
	read_only(true);
}

static void out_of_range(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async, .fill = 0x33});
	static uint8_t buf[4 * SECTOR];
	memset(buf, 0x44, sizeof(buf));
	cr_assert_eq(do_req(&g, T_IN, 2047, buf, 2 * SECTOR, true, NULL), S_IOERR);
	cr_assert_eq(do_req(&g, T_OUT, 2047, buf, 2 * SECTOR, false, NULL), S_IOERR);
	cr_assert_eq(do_req(&g, T_OUT, 2048, buf, SECTOR, false, NULL), S_IOERR);
	cr_assert_eq(do_req(&g, T_OUT, UINT64_MAX, buf, SECTOR, false, NULL), S_IOERR);
	cr_assert_eq(do_req(&g, T_IN, UINT64_MAX / 512 + 1, buf, SECTOR, true, NULL), S_IOERR,
	             "sector * 512 overflows");
	cr_assert_eq(do_req(&g, T_OUT, 0, buf, SECTOR + 1, false, NULL), S_IOERR, "not whole");
	cr_assert_eq(do_req(&g, T_IN, 0, buf, 100, true, NULL), S_IOERR);
	cr_assert(file_all(&g, 0, MIB(1), 0x33), "nothing was written");
	cr_assert_eq(do_req(&g, 99, 0, NULL, 0, false, NULL), S_UNSUPP, "unknown type");
	cr_assert_eq(do_req(&g, 10, 0, buf, 8, true, NULL), S_UNSUPP, "GET_LIFETIME");
	cr_assert_not(needs_reset(&g), "all of these are answered, the device goes on");
	struct virtio_blk_metrics m;
	virtio_blk_metrics(g.blk, &m);
	cr_assert_eq(m.bad_requests, 9);
	cr_assert_eq(m.io_errors, 0);
	rig_down(&g);
}

Test(blk, out_of_range_sync)
{
	out_of_range(false);
}

Test(blk, out_of_range_async)
{
	out_of_range(true);
}

Test(blk, bad_header_breaks_the_device)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){0});
	put_header(&g, 0, T_IN, 0);
	struct seg s[2] = {{req_gpa(0), 8, false}, {req_gpa(0) + 0x800, 1, true}};
	offer_chain(&g, s, 2, true);
	for (int i = 0; i < 2000 && !needs_reset(&g); i++)
		usleep(1000);
	cr_assert(needs_reset(&g), "an 8-byte header cannot be answered");
	cr_assert_eq(used_idx(&g), 0);
	cr_assert_eq(status_of(&g, 0), 0xff, "no status was written");
	cr_assert(reg_read(&g, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	/* the driver resets, and the device works again */
	driver_init(&g, 0);
	cr_assert_eq(do_req(&g, T_FLUSH, 0, NULL, 0, false, NULL), S_OK);
	rig_down(&g);
}

/*
 * Issue 9: a driver that asks for a queue larger than QueueNumMax (1024 >
 * 256) breaks the device when it enables the queue: the queue stays off, a
 * request at head 1000 is never read, the reset returns, and the device
 * works again once the driver sets it up properly.
 */
Test(blk, queue_larger_than_queue_num_max_needs_reset, .timeout = 60)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = true});
	reg_write(&g, VIRTIO_MMIO_STATUS, 0);
	memset(gm_ptr(&g.gm, BIG_DESC, 0x9000), 0, 0x9000);
	g.avail_idx = 0;
	vfd_acknowledge(g.m, VIRTIO_ID_BLOCK);
	uint32_t st = vfd_features_ok(g.m, g.dev_features);
	reg_write(&g, VIRTIO_MMIO_QUEUE_SEL, 0);
	reg_write(&g, VIRTIO_MMIO_QUEUE_NUM, BIG_QSZ);
	reg_write(&g, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)BIG_DESC);
	reg_write(&g, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)BIG_AVAIL);
	reg_write(&g, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)BIG_USED);
	reg_write(&g, VIRTIO_MMIO_QUEUE_READY, 1);
	cr_assert(needs_reset(&g), "QueueNum %u above QueueNumMax %u", BIG_QSZ,
	          VIRTIO_BLK_QUEUE_SIZE);
	cr_assert_eq(reg_read(&g, VIRTIO_MMIO_QUEUE_READY), 0, "the queue was enabled");
	reg_write(&g, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_DRIVER_OK);
	offer_big_req(&g, 1000);
	usleep(100 * 1000);
	cr_assert_eq(vfd_used_idx(&g.gm, BIG_USED), 0);
	cr_assert_eq(status_of(&g, 0), 0xff, "the request was read");
	driver_init(&g, 0); /* resets first */
	uint8_t buf[SECTOR];
	cr_assert_eq(do_req(&g, T_IN, 0, buf, SECTOR, true, NULL), S_OK);
	rig_down(&g);
}

/*
 * Issue 9: the Async engine bounds its table of requests in flight itself.
 * As if the transport had let a 1024-entry queue through, a request at
 * head 1000 breaks the device instead of indexing a 256-slot table, and
 * the reset that follows returns.
 */
Test(blk, async_engine_refuses_heads_beyond_its_table, .timeout = 60)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = true});
	memset(gm_ptr(&g.gm, BIG_DESC, 0x9000), 0, 0x9000);
	g.avail_idx = 0;
	vfd_queue_force(g.m, 0, BIG_QSZ, BIG_DESC, BIG_AVAIL, BIG_USED);
	offer_big_req(&g, 1000);
	for (int i = 0; i < 2000 && !needs_reset(&g); i++)
		usleep(1000);
	cr_assert(needs_reset(&g), "head 1000 of a 256-entry device was served");
	cr_assert_eq(vfd_used_idx(&g.gm, BIG_USED), 0);
	cr_assert_eq(status_of(&g, 0), 0xff);
	driver_init(&g, 0); /* resets first: nothing is left in flight */
	uint8_t buf[SECTOR];
	cr_assert_eq(do_req(&g, T_IN, 0, buf, SECTOR, true, NULL), S_OK);
	rig_down(&g);
}

static void status_not_writable(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async});
	put_header(&g, 0, T_OUT, 0);
	/* header + data + "status" all device-readable */
	struct seg s[3] = {{req_gpa(0), 16, false},
	                   {req_gpa(0) + 0x1000, SECTOR, false},
	                   {req_gpa(0) + 0x800, 1, false}};
	offer_chain(&g, s, 3, true);
	for (int i = 0; i < 2000 && !needs_reset(&g); i++)
		usleep(1000);
	cr_assert(needs_reset(&g));
	cr_assert(file_all(&g, 0, SECTOR, 0));
	struct virtio_blk_metrics m;
	virtio_blk_metrics(g.blk, &m);
	cr_assert_eq(m.bad_requests, 1);
	rig_down(&g);
}

Test(blk, status_not_writable_sync)
{
	status_not_writable(false);
}

Test(blk, status_not_writable_async)
{
	status_not_writable(true);
}

Test(blk, write_with_writable_data_is_refused)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){0});
	put_header(&g, 0, T_OUT, 0);
	struct seg s[3] = {{req_gpa(0), 16 + SECTOR, false},
	                   {req_gpa(0) + 0x1000, SECTOR, true},
	                   {req_gpa(0) + 0x800, 1, true}};
	offer_chain(&g, s, 3, true);
	cr_assert(wait_used(&g, 1, 2000));
	cr_assert_eq(status_of(&g, 0), S_IOERR);
	cr_assert_not(needs_reset(&g));
	rig_down(&g);
}

/* ------------------------------------------------------ random requests */

/*
 * Random chains (types, sectors, segment counts, lengths, directions):
 * every one is answered or breaks the device, which a reset revives; the
 * process never falls over (run under ASan/UBSan in CI).
 */
static void random_requests(bool async)
{
	struct rig g;
	rig_up(&g, &(struct rig_opts){.async = async, .size = KIB(64), .fill = 0x42});
	static const uint32_t types[] = {T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ, 10, 77};
	unsigned answered = 0, broken = 0;
	srand(1234);
	for (unsigned n = 0; n < 600; n++) {
		uint32_t type = types[rand() % 8];
		uint64_t sector = rand() % 4 ? (uint64_t)(rand() % 160) : (uint64_t)rand() << 40;
		put_header(&g, 0, type, sector);
		/* random segment payloads for DISCARD / WRITE_ZEROES */
		uint8_t junk[64];
		for (unsigned i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)(rand() % 3 ? rand() % 8 : rand());
		cr_assert_eq(gm_write(&g.gm, req_gpa(0) + 16, junk, sizeof(junk)), 0);
		struct seg s[5];
		unsigned nseg = 1 + (unsigned)(rand() % 5);
		uint64_t at = req_gpa(0);
		for (unsigned i = 0; i < nseg; i++) {
			uint32_t len = rand() % 3 ? (uint32_t)(rand() % 3) * SECTOR
			                          : (uint32_t)(rand() % 1100);
			bool w = i + 1 == nseg ? rand() % 8 != 0 : rand() % 2;
			s[i] = (struct seg){at, len, w};
			at += len;
		}
		s[0].len = rand() % 6 ? 16u + (uint32_t)(rand() % 2) * 16 : (uint32_t)(rand() % 16);
		offer_chain(&g, s, nseg, true);
		g.used_seen++;
		for (int i = 0; i < 2000 && used_idx(&g) != g.used_seen && !needs_reset(&g); i++)
			usleep(100);
		if (needs_reset(&g)) {
			broken++;
			driver_init(&g, 0);
		} else {
			cr_assert_eq(used_idx(&g), g.used_seen, "request %u not answered", n);
			answered++;
		}
	}
	cr_assert_gt(answered, 100);
	cr_assert_gt(broken, 10);
	cr_assert_eq(do_req(&g, T_FLUSH, 0, NULL, 0, false, NULL), S_OK, "still serving");
	rig_down(&g);
}

Test(blk, random_requests_sync)
{
	random_requests(false);
}

Test(blk, random_requests_async)
{
	random_requests(true);
}
