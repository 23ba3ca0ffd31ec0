// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: virtio-blk (virtio/blk*.c) driven by the hostile driver
 * of fz_dev.c, over a real 1 MiB file. The variant picks the engine (bit 0:
 * Async/io_uring, else Sync), read-only (bit 1), Writeback (bit 2) and a
 * small rate limiter (bit 3). The back-end event resizes the file and
 * re-opens it as PATCH /drives does.
 */
#include "tests/fuzz/fz_dev.h"
#include "virtio/blk.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static char path[96];

static int blk_setup(void)
{
	snprintf(path, sizeof(path), "%s/disk", fz_tmpdir());
	return 0;
}

/* the disk is 1 MiB of zeroes again for every input */
static int disk_reset(void)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int r = ftruncate(fd, MIB(1));
	close(fd);
	return r;
}

static struct virtio_dev *blk_create(struct fz *f)
{
	static const struct rl_bucket_cfg bw = {.size = 8192, .refill_time_ms = 5},
	                                  ops = {.size = 3, .refill_time_ms = 5};
	struct virtio_blk *b;
	struct errbuf e = {{0}};
	bool rl = f->variant & 8;
	struct virtio_blk_params p = {
	        .id = "rootfs",
	        .path = path,
	        .read_only = f->variant & 2,
	        .writeback = f->variant & 4,
	        .async = f->variant & 1,
	        .bw = rl ? &bw : NULL,
	        .ops = rl ? &ops : NULL,
	};
	if (disk_reset() < 0 || virtio_blk_create(&b, &p, &e) < 0) {
		fprintf(stderr, "fz: virtio_blk_create: %s\n", e.msg);
		return NULL;
	}
	f->obj = b;
	return virtio_blk_dev(b);
}

static void blk_destroy(struct fz *f)
{
	virtio_blk_destroy(f->obj);
}

/* the host resizes the file (any size, not only whole sectors) and updates the drive */
static void blk_host(struct fz *f, struct fz_in *in)
{
	struct errbuf e = {{0}};
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		if (ftruncate(fd, (off_t)(fz_u32(in) % MIB(2))) < 0)
			perror("fz: ftruncate");
		close(fd);
	}
	virtio_blk_update(f->obj, path, NULL, NULL, false, &e);
}

static int blk_quiesce(struct fz *f)
{
	return virtio_blk_drain(f->obj);
}

static const struct fz_kind blk_kind = {
        .name = "blk",
        .setup = blk_setup,
        .create = blk_create,
        .destroy = blk_destroy,
        .host = blk_host,
        .quiesce = blk_quiesce,
};

FZ_DEV_TARGET(blk_kind)
