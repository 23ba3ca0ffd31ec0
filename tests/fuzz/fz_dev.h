/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device fuzzers' shared driver (fz_dev.c): a hostile virtio-mmio
 * driver whose every move comes from the fuzzer's input. One input is a
 * program of byte-coded operations run against a freshly created device
 * with its real back end (a temp file, a tap, a unix socket, getrandom)
 * behind a transport with no hypervisor: register reads and writes of any
 * size anywhere in the 4 KiB window, guest memory writes, queue set-up with
 * any size and addresses, descriptor chains of any shape, notifies,
 * interrupt acknowledgements, resets, a snapshot of the device restored
 * into a new one, and back-end events (a frame on the tap, a host
 * connection). Each fuzz_<kind>.c describes its device as a struct fz_kind
 * and hands every input to fz_dev_run().
 *
 * What counts as a finding: a crash, a sanitizer report (ASan, UBSan, LSan)
 * or a hang (libFuzzer's -timeout). A device that refuses the input, breaks
 * into NEEDS_RESET or drops a request is doing its job.
 */
#ifndef KILN_FUZZ_FZ_DEV_H
#define KILN_FUZZ_FZ_DEV_H

#include "virtio/virtio.h"

#include <stddef.h>
#include <stdint.h>

/* what is left of the input; reads past its end give zeroes */
struct fz_in {
	const uint8_t *p;
	size_t n;
};
uint8_t fz_u8(struct fz_in *in);
uint16_t fz_u16(struct fz_in *in);
uint32_t fz_u32(struct fz_in *in);
uint64_t fz_u64(struct fz_in *in);
/* copies up to `max` input bytes to dst; returns how many */
size_t fz_bytes(struct fz_in *in, void *dst, size_t max);

/* guest memory: 2 MiB, rings at FZ_RING(q), buffers from FZ_BUF on */
#define FZ_RAM      MIB(2)
#define FZ_RING(q)  (0x10000ull * ((uint64_t)(q) + 1)) /* desc; avail +0x4000; used +0x8000 */
#define FZ_BUF      0x100000ull
#define FZ_BUF_SIZE 0x100000ull

struct fz;

/* One device type as the fuzzer drives it. */
struct fz_kind {
	const char *name;
	/* once per process (a namespace, a tap, a temp dir); 0 / -errno */
	int (*setup)(void);
	/* a new device for variant `f->variant` (engine, flags, limiter);
	 * sets f->obj and returns its virtio_dev, NULL only on a host failure */
	struct virtio_dev *(*create)(struct fz *f);
	/* frees f->obj; the transport is already gone */
	void (*destroy)(struct fz *f);
	/* optional: a back-end event whose details come from `in` */
	void (*host)(struct fz *f, struct fz_in *in);
	/* optional: after each settle, consume what the device sent the host */
	void (*drain)(struct fz *f);
	/* optional: what the VMM does to the paused device before saving it */
	int (*quiesce)(struct fz *f);
};

struct fz {
	const struct fz_kind *kind;
	uint8_t variant; /* the input's first byte, for the kind */
	void *obj;       /* the kind's device */
	struct virtio_dev *dev;
	struct virtio_mmio *m;
	struct guest_mem *gm;
	/* the driver's view of each queue it set up */
	uint16_t qsize[VIRTIO_MAX_QUEUES];
	uint16_t avail_idx[VIRTIO_MAX_QUEUES];
};

/* runs one input against a new device of kind `k`; always returns 0 */
int fz_dev_run(const struct fz_kind *k, const uint8_t *data, size_t size);

/* the libFuzzer entry point of a target that fuzzes kind `k` */
#define FZ_DEV_TARGET(k)                                                                           \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                              \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                               \
	{                                                                                          \
		return fz_dev_run(&(k), data, size);                                               \
	}

/* the kinds' shared temp dir (created on first use, removed at exit) */
const char *fz_tmpdir(void);

#endif
