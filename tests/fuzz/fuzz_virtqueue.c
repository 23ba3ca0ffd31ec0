// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the split-virtqueue parser (virtio/queue.c): the
 * input becomes a small guest memory holding the rings, the descriptors
 * and the data, and a device pops, reads, writes and pushes until the ring
 * is empty or the guest is caught breaking the protocol.
 *
 * Guest memory is two regions with a hole between them, each its own
 * malloc of the exact size, so AddressSanitizer reports any host access
 * outside guest RAM. The device writes into the buffers it is given, which
 * the input may aim at the rings themselves, as a hostile guest could.
 *
 * Input: an 18-byte header, then the bytes of guest memory from gpa 0.
 *   [0]      queue size = 1 << ([0] % 11)
 *   [1]      bit 0 INDIRECT_DESC, bit 1 EVENT_IDX negotiated
 *   [2]      bit 0 ring addresses from [4..16) (else descriptor table at 0,
 *            available ring right after it, used ring after that, 4-aligned),
 *            bit 1 notifications disabled first, bit 2 write less than offered
 *   [3]      unused
 *   [4..16)  desc, avail, used gpa (u32 little endian each)
 *   [16..18) starting last_avail_idx / used_idx (u16), to cross the wrap
 */
#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOW_SIZE  0x10000u /* region 0: [0, 64 KiB) */
#define HIGH_GPA  0x20000u /* region 1: [128 KiB, 144 KiB), a hole below it */
#define HIGH_SIZE 0x4000u
#define HDR       18u

static struct vq_chain chain;
static uint8_t scratch[LOW_SIZE + HIGH_SIZE];

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* what every resolved chain must satisfy, whatever the guest wrote */
static void check_chain(const struct vq_chain *c, const struct virtq *vq)
{
	uint64_t r = 0, w = 0;

	if (c->nr_readable > c->nr_segs || c->nr_segs > vq->size || c->head >= vq->size)
		abort();
	for (unsigned i = 0; i < c->nr_segs; i++)
		*(i < c->nr_readable ? &r : &w) += c->iov[i].iov_len;
	if (r != c->readable_len || w != c->writable_len || r + w > vq->max_chain_len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	uint8_t *low = calloc(1, LOW_SIZE), *high = calloc(1, HIGH_SIZE);
	if (!low || !high)
		abort();
	size_t n = size - HDR;
	memcpy(low, data + HDR, n < LOW_SIZE ? n : LOW_SIZE);
	if (n > LOW_SIZE)
		memcpy(high, data + HDR + LOW_SIZE,
		       n - LOW_SIZE < HIGH_SIZE ? n - LOW_SIZE : HIGH_SIZE);

	struct guest_mem gm = {
	        .regions = {{.gpa = 0, .size = LOW_SIZE, .hva = low},
	                    {.gpa = HIGH_GPA, .size = HIGH_SIZE, .offset = LOW_SIZE, .hva = high}},
	        .nr_regions = 2,
	        .ram_size = LOW_SIZE + HIGH_SIZE,
	        .fd = -1,
	};
	struct virtq vq;
	vq_reset(&vq);
	vq.size = (uint16_t)(1u << (data[0] % 11));
	vq.ready = true;
	if (data[2] & 1) {
		vq.desc_gpa = le32(data + 4);
		vq.avail_gpa = le32(data + 8);
		vq.used_gpa = le32(data + 12);
	} else { /* packed: the table at 0, the rings right after it */
		vq.desc_gpa = 0;
		vq.avail_gpa = 16u * vq.size;
		vq.used_gpa = ALIGN_UP(vq.avail_gpa + 6 + 2u * vq.size, 4);
	}
	vq.last_avail_idx = vq.used_idx = (uint16_t)(data[16] | data[17] << 8);
	uint64_t features = ((data[1] & 1) ? VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) : 0) |
	                    ((data[1] & 2) ? VIRTIO_BIT(VIRTIO_F_EVENT_IDX) : 0);
	if (vq_start(&vq, &gm, features) < 0)
		goto out;
	if (data[2] & 2)
		vq_disable_notify(&vq);

	/* the device writes into the rings too if told to: bound the rounds */
	for (unsigned round = 0; round < 4u * VQ_MAX_SIZE; round++) {
		int r = vq_pop(&vq, &chain);
		if (r < 0) {
			if (!vq.broken || !vq.error || vq_pop(&vq, &chain) != -EINVAL)
				abort();
			break;
		}
		if (r == 0) {
			if (!vq_enable_notify(&vq))
				break;
			continue;
		}
		check_chain(&chain, &vq);
		size_t got = vq_chain_read(&chain, 0, scratch, sizeof(scratch));
		if (got !=
		    (chain.readable_len < sizeof(scratch) ? chain.readable_len : sizeof(scratch)))
			abort();
		size_t want =
		        chain.writable_len < sizeof(scratch) ? chain.writable_len : sizeof(scratch);
		if (data[2] & 4)
			want /= 2;
		size_t put = vq_chain_write(&chain, 0, scratch, want);
		if (put != want || vq_push(&vq, chain.head, (uint32_t)put) < 0)
			abort();
		vq_should_notify(&vq);
	}
out:
	free(low);
	free(high);
	return 0;
}
