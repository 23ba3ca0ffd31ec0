// SPDX-License-Identifier: Apache-2.0
/*
 * The device fuzzers' hostile driver (see fz_dev.h). The input's first byte
 * picks the kind's variant; the rest is a program of operations, each an
 * opcode byte followed by its arguments. The driver keeps just enough state
 * (queue sizes, avail indices) to build rings the device may accept, so that
 * the fuzzer reaches the device's request handling and not only the ring
 * parser's refusals, and every operation can also be aimed anywhere.
 */
#include "tests/fuzz/fz_dev.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ input */

uint8_t fz_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

uint16_t fz_u16(struct fz_in *in)
{
	return (uint16_t)(fz_u8(in) | fz_u8(in) << 8);
}

uint32_t fz_u32(struct fz_in *in)
{
	return fz_u16(in) | (uint32_t)fz_u16(in) << 16;
}

uint64_t fz_u64(struct fz_in *in)
{
	return fz_u32(in) | (uint64_t)fz_u32(in) << 32;
}

size_t fz_bytes(struct fz_in *in, void *dst, size_t max)
{
	size_t n = max < in->n ? max : in->n;
	memcpy(dst, in->p, n);
	in->p += n;
	in->n -= n;
	return n;
}

/* --------------------------------------------------------------- temp dir */

static char tmpdir[64];

static void tmpdir_remove(void)
{
	char cmd[96];
	if (!tmpdir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "fz: could not remove %s\n", tmpdir);
}

const char *fz_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/kiln-fz-XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("fz: mkdtemp");
			abort();
		}
		atexit(tmpdir_remove);
	}
	return tmpdir;
}

/* -------------------------------------------------------------- registers */

/* a guest access of 1, 2, 4 or 8 bytes anywhere in the window, as KVM reports it */
static void reg_access(struct fz *f, uint32_t off, unsigned len, uint64_t *val, bool write)
{
	if (off + len > VIRTIO_MMIO_SIZE)
		off = VIRTIO_MMIO_SIZE - len;
	if (write)
		virtio_mmio_bus_ops.write(f->m, off, val, len);
	else
		virtio_mmio_bus_ops.read(f->m, off, val, len);
}

static void reg_write(struct fz *f, uint32_t off, uint32_t v)
{
	uint64_t x = v;
	reg_access(f, off, 4, &x, true);
}

static uint32_t reg_read(struct fz *f, uint32_t off)
{
	uint64_t x = 0;
	reg_access(f, off, 4, &x, false);
	return (uint32_t)x;
}

/* ------------------------------------------------------------ the device */

static struct guest_mem gm;

static int device_new(struct fz *f)
{
	struct errbuf e = {{0}};
	f->dev = f->kind->create(f);
	if (!f->dev)
		return -ENODEV;
	struct virtio_mmio_params p = {.base = 0xd0000000ull, .gsi = 5, .gm = &gm};
	int r = virtio_mmio_create(&f->m, f->dev, &p, &e);
	if (r < 0) {
		fprintf(stderr, "fz: virtio_mmio_create: %s\n", e.msg);
		f->kind->destroy(f);
		f->dev = NULL;
	}
	return r;
}

static void device_free(struct fz *f)
{
	if (!f->dev)
		return;
	virtio_mmio_destroy(f->m);
	f->kind->destroy(f);
	f->m = NULL;
	f->dev = NULL;
}

/*
 * Lets the device's I/O thread finish what the last operations gave it:
 * waits (briefly, bounded) for the notifications of started queues to be
 * taken, then parks and resumes the thread, which returns only once it is
 * outside every callback.
 */
static void settle(struct fz *f)
{
	for (int i = 0; i < 20; i++) {
		bool pending = false;
		for (uint16_t q = 0; q < f->dev->ops->nr_queues; q++) {
			struct pollfd p = {.fd = f->m->kick_fd[q], .events = POLLIN};
			if (f->dev->vq[q].started && poll(&p, 1, 0) == 1)
				pending = true;
		}
		if (!pending || virtio_dev_broken(f->dev))
			break;
		usleep(100);
	}
	virtio_mmio_pause(f->m);
	virtio_mmio_resume(f->m);
	if (f->kind->drain)
		f->kind->drain(f);
}

/* --------------------------------------------------------- driver macros */

/* s3.1.1: reset, ACKNOWLEDGE | DRIVER, features (offered & mask), FEATURES_OK */
static void op_init(struct fz *f, struct fz_in *in)
{
	uint64_t mask = fz_u64(in);
	reg_write(f, VIRTIO_MMIO_STATUS, 0);
	memset(f->qsize, 0, sizeof(f->qsize));
	memset(f->avail_idx, 0, sizeof(f->avail_idx));
	reg_write(f, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	uint64_t offered = 0;
	for (uint32_t sel = 0; sel < 2; sel++) {
		reg_write(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
		offered |= (uint64_t)reg_read(f, VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
	}
	/* a mask of all ones takes everything; clear bits drop features */
	uint64_t want = (offered & ~mask) | (mask & 1 ? 0 : VIRTIO_BIT(VIRTIO_F_VERSION_1));
	if (mask >> 63)
		want = offered ^ (mask & ~(1ull << 63)); /* features not offered, too */
	for (uint32_t sel = 0; sel < 2; sel++) {
		reg_write(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		reg_write(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(want >> (32 * sel)));
	}
	reg_write(f, VIRTIO_MMIO_STATUS,
	          VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

/* s4.2.3.2: queue q at its usual rings, of a power-of-2 size or any size */
static void op_queue(struct fz *f, struct fz_in *in)
{
	uint8_t q = fz_u8(in) % VIRTIO_MAX_QUEUES;
	uint8_t s = fz_u8(in);
	uint16_t size = s & 0x80 ? fz_u16(in) : (uint16_t)(1u << (s % 12));
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, q);
	reg_write(f, VIRTIO_MMIO_QUEUE_NUM, size);
	reg_write(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)FZ_RING(q));
	reg_write(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)FZ_RING(q) + 0x4000);
	reg_write(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)FZ_RING(q) + 0x8000);
	reg_write(f, VIRTIO_MMIO_QUEUE_READY, 1);
	f->qsize[q] = size;
	f->avail_idx[q] = 0;
}

/* the same with ring addresses from the input (misaligned, outside RAM, overlapping) */
static void op_queue_raw(struct fz *f, struct fz_in *in)
{
	uint8_t q = fz_u8(in) % VIRTIO_MAX_QUEUES;
	reg_write(f, VIRTIO_MMIO_QUEUE_SEL, q);
	reg_write(f, VIRTIO_MMIO_QUEUE_NUM, fz_u16(in));
	static const uint32_t regs[] = {
	        VIRTIO_MMIO_QUEUE_DESC_LOW,   VIRTIO_MMIO_QUEUE_DESC_HIGH,
	        VIRTIO_MMIO_QUEUE_DRIVER_LOW, VIRTIO_MMIO_QUEUE_DRIVER_HIGH,
	        VIRTIO_MMIO_QUEUE_DEVICE_LOW, VIRTIO_MMIO_QUEUE_DEVICE_HIGH,
	};
	for (size_t i = 0; i < ARRAY_SIZE(regs); i++)
		reg_write(f, regs[i], i & 1 ? fz_u8(in) : fz_u32(in) % (uint32_t)(FZ_RAM + 0x1000));
	reg_write(f, VIRTIO_MMIO_QUEUE_READY, 1);
	f->qsize[q] = 0; /* chains go there only through raw memory writes */
}

static uint64_t buf_gpa(struct fz_in *in)
{
	return FZ_BUF + ((uint64_t)fz_u16(in) << 4) % FZ_BUF_SIZE;
}

static void put_desc(uint64_t table, uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags,
                     uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	gm_write(&gm, table + 16ull * i, d, 16);
}

/* s2.7.13: head goes into the avail ring of q, then avail->idx moves on */
static void offer(struct fz *f, uint8_t q, uint16_t head)
{
	uint16_t size = f->qsize[q];
	uint64_t avail = FZ_RING(q) + 0x4000;
	gm_write(&gm, avail + 4 + 2ull * (f->avail_idx[q] % size), &head, 2);
	f->avail_idx[q]++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	gm_write(&gm, avail + 2, &f->avail_idx[q], 2);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/*
 * One descriptor chain on a queue the driver set up: its head, up to 8
 * descriptors each with flags (WRITE, INDIRECT, a stray NEXT), an address
 * in the buffer area or anywhere, a length, and the first readable buffer
 * filled from the input (a request header, a frame, a packet).
 */
static void op_chain(struct fz *f, struct fz_in *in)
{
	uint8_t q = fz_u8(in) % VIRTIO_MAX_QUEUES;
	uint16_t size = f->qsize[q];
	if (!size || size > VQ_MAX_SIZE || (size & (size - 1)))
		return;
	uint16_t head = fz_u16(in) % size, idx = head;
	unsigned n = 1 + fz_u8(in) % 8;
	bool filled = false;
	for (unsigned i = 0; i < n; i++) {
		uint8_t b = fz_u8(in);
		uint64_t gpa = b & 0x40 ? fz_u64(in) : buf_gpa(in);
		uint32_t len = b & 0x20 ? fz_u32(in) : fz_u16(in);
		uint16_t next = b & 0x10 ? fz_u16(in) : (uint16_t)((idx + 1) % size);
		uint16_t flags = (uint16_t)((b & 1 ? VIRTQ_DESC_F_WRITE : 0) |
		                            (i + 1 < n || (b & 0x08) ? VIRTQ_DESC_F_NEXT : 0) |
		                            (b & 0x80 ? VIRTQ_DESC_F_INDIRECT : 0));
		put_desc(FZ_RING(q), idx, gpa, len, flags, next);
		if (!(b & 1) && !filled) {
			uint8_t data[128];
			size_t k = fz_bytes(in, data, fz_u8(in) % sizeof(data));
			void *p = gm_ptr(&gm, gpa, k);
			if (p)
				memcpy(p, data, k);
			filled = true;
		}
		idx = next % size;
	}
	offer(f, q, head);
}

/* many one-descriptor writable buffers at once (receive queues) */
static void op_fill(struct fz *f, struct fz_in *in)
{
	uint8_t q = fz_u8(in) % VIRTIO_MAX_QUEUES;
	uint16_t size = f->qsize[q];
	if (!size || size > VQ_MAX_SIZE || (size & (size - 1)))
		return;
	unsigned count = 1 + fz_u16(in) % size;
	uint32_t len = fz_u16(in);
	for (unsigned i = 0; i < count; i++) {
		uint16_t d = (uint16_t)((f->avail_idx[q] + i) % size);
		uint64_t gpa = FZ_BUF + ((uint64_t)d * len) % FZ_BUF_SIZE;
		put_desc(FZ_RING(q), d, gpa, len, VIRTQ_DESC_F_WRITE, 0);
	}
	for (unsigned i = 0; i < count; i++)
		offer(f, q, (uint16_t)(f->avail_idx[q] % size));
}

/* an indirect table (s2.7.5.3) in the buffer area, its entries from the input */
static void op_indirect_table(struct fz_in *in)
{
	uint64_t table = buf_gpa(in);
	unsigned n = fz_u8(in) % 20;
	for (unsigned i = 0; i < n; i++) {
		uint8_t b = fz_u8(in);
		put_desc(table, (uint16_t)i, buf_gpa(in), fz_u16(in), (uint16_t)(b & 0x7),
		         (uint16_t)(b & 0x8 ? fz_u8(in) : i + 1));
	}
}

/* the driver reads InterruptStatus and acknowledges what it read (or anything) */
static void op_irq(struct fz *f, struct fz_in *in)
{
	uint8_t b = fz_u8(in);
	uint32_t st = reg_read(f, VIRTIO_MMIO_INTERRUPT_STATUS);
	reg_write(f, VIRTIO_MMIO_INTERRUPT_ACK, b & 1 ? st : fz_u32(in));
	uint64_t v;
	if (read(f->m->irq_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		perror("fz: irq_fd");
}

/* the device's state saved and loaded into a new device, as a snapshot does */
static void op_snapshot(struct fz *f)
{
	struct state_writer w;
	struct state_reader r;
	struct errbuf e = {{0}};

	sw_init(&w);
	if (virtio_mmio_pause(f->m) < 0)
		abort();
	int ret = f->kind->quiesce ? f->kind->quiesce(f) : 0;
	if (ret == 0)
		ret = virtio_mmio_save(f->m, &w);
	virtio_mmio_resume(f->m);
	if (ret < 0 || sw_error(&w)) {
		fprintf(stderr, "fz: save failed: %d\n", ret);
		abort(); /* saving a live device never fails */
	}
	device_free(f);
	if (device_new(f) < 0)
		abort();
	sr_init(&r, w.buf, w.len);
	if (virtio_mmio_restore(f->m, &r, &e) < 0) {
		/* a state this device saved itself must load */
		fprintf(stderr, "fz: restore of its own state failed: %s\n", e.msg);
		abort();
	}
	sw_free(&w);
}

enum {
	OP_WRITE,
	OP_READ,
	OP_MEM,
	OP_INIT,
	OP_QUEUE,
	OP_QUEUE_RAW,
	OP_DRIVER_OK,
	OP_CHAIN,
	OP_FILL,
	OP_INDIRECT,
	OP_NOTIFY,
	OP_SETTLE,
	OP_IRQ,
	OP_RESET,
	OP_HOST,
	OP_SNAPSHOT,
	OP_CONFIG,
	OP_COUNT
};

static void step(struct fz *f, struct fz_in *in)
{
	uint8_t op = fz_u8(in) % OP_COUNT;
	uint64_t v;

	switch (op) {
	case OP_WRITE:
	case OP_READ: {
		uint8_t b = fz_u8(in);
		uint32_t off = fz_u16(in) % VIRTIO_MMIO_SIZE;
		v = op == OP_WRITE ? fz_u64(in) : 0;
		reg_access(f, off, 1u << (b % 4), &v, op == OP_WRITE);
		break;
	}
	case OP_MEM: {
		uint8_t data[256];
		uint64_t gpa = fz_u32(in) % FZ_RAM;
		size_t n = fz_bytes(in, data, fz_u8(in));
		void *p = gm_ptr(&gm, gpa, n);
		if (p)
			memcpy(p, data, n);
		break;
	}
	case OP_INIT:
		op_init(f, in);
		break;
	case OP_QUEUE:
		op_queue(f, in);
		break;
	case OP_QUEUE_RAW:
		op_queue_raw(f, in);
		break;
	case OP_DRIVER_OK:
		reg_write(f, VIRTIO_MMIO_STATUS,
		          reg_read(f, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
		settle(f);
		break;
	case OP_CHAIN:
		op_chain(f, in);
		break;
	case OP_FILL:
		op_fill(f, in);
		break;
	case OP_INDIRECT:
		op_indirect_table(in);
		break;
	case OP_NOTIFY: {
		uint8_t b = fz_u8(in);
		reg_write(f, VIRTIO_MMIO_QUEUE_NOTIFY, b & 0x80 ? fz_u32(in) : b % 8u);
		settle(f);
		break;
	}
	case OP_SETTLE:
		usleep(fz_u8(in) % 4 * 250);
		settle(f);
		break;
	case OP_IRQ:
		op_irq(f, in);
		break;
	case OP_RESET:
		reg_write(f, VIRTIO_MMIO_STATUS, 0);
		memset(f->avail_idx, 0, sizeof(f->avail_idx));
		break;
	case OP_HOST:
		if (f->kind->host) {
			f->kind->host(f, in);
			settle(f);
		}
		break;
	case OP_SNAPSHOT:
		op_snapshot(f);
		break;
	case OP_CONFIG: {
		/* a driver's config read loop (s4.2.2.2): generation, fields, generation */
		uint32_t off = VIRTIO_MMIO_CONFIG + fz_u8(in);
		reg_read(f, VIRTIO_MMIO_CONFIG_GENERATION);
		for (unsigned i = 0; i < 4; i++)
			reg_read(f, off + 4 * i);
		reg_read(f, VIRTIO_MMIO_CONFIG_GENERATION);
		break;
	}
	}
}

int fz_dev_run(const struct fz_kind *k, const uint8_t *data, size_t size)
{
	static bool ready;
	struct errbuf e = {{0}};

	if (!ready) {
		log_configure(getenv("KILN_FUZZ_LOG") ? LOG_DEBUG : LOG_OFF, true, false, NULL);
		if (gm_init(&gm, FZ_RAM, GM_BACKING_ANON, NULL, &e) < 0 ||
		    (k->setup && k->setup() < 0)) {
			fprintf(stderr, "fz: set-up failed: %s\n", e.msg);
			abort();
		}
		ready = true;
	}
	memset(gm.base, 0, gm.ram_size);

	struct fz f = {.kind = k, .gm = &gm};
	struct fz_in in = {data, size};
	f.variant = fz_u8(&in);
	if (device_new(&f) < 0)
		abort(); /* the host failed us: not the input's doing */
	for (unsigned steps = 0; in.n && steps < 256; steps++)
		step(&f, &in);
	settle(&f);
	device_free(&f);
	return 0;
}
