// SPDX-License-Identifier: Apache-2.0
/*
 * balloon: a small virtio-balloon driver (virtio 1.2 s5.5.6). It writes to
 * every page of balloon.mib MiB (default 32) so that the host backs them,
 * prints "balloon: touched N pages", then follows the device's num_pages:
 * inflating hands pages of that memory to the balloon (256 PFNs a
 * request), deflating takes them back and checks that each reads as zero
 * (the host gave it back and it faulted in again). It updates `actual`
 * after each request and prints "balloon: inflated N pages" or
 * "balloon: deflated to N pages, zero ok" when it reaches the target;
 * once it has deflated to 0 after inflating, it prints "balloon: done".
 */
#include "rt/virtio_drv.h"

#define BATCH      256 /* PFNs per request, as Linux */
#define CFG_ACTUAL 0x104
#define TIMEOUT_US 5000000

static struct virtio_dev dev;
static struct virtq vq_in, vq_out;
static uint32_t pfns[BATCH];

/* one inflate or deflate request for pages [first, first + n) of mem */
static int request(struct virtq *vq, uint8_t *mem, uint32_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		pfns[i] = (uint32_t)((uintptr_t)(mem + (uint64_t)(first + i) * 4096) >> 12);
	struct vq_seg s = {pfns, n * 4, false};
	void *token;
	uint32_t len;
	if (vq_add(vq, &s, 1, pfns) < 0)
		return -KRT_EIO;
	vq_kick(vq);
	return vq_wait(vq, &token, &len, TIMEOUT_US);
}

static bool page_zero(const uint8_t *p)
{
	for (unsigned i = 0; i < 4096; i++)
		if (p[i])
			return false;
	return true;
}

int main(void)
{
	uint32_t pages = (uint32_t)krt_param_u64("balloon.mib", 32) * 256, actual = 0;
	uint8_t *mem = krt_alloc_pages(pages, 4096);
	bool inflated = false;

	if (!mem || virtio_find(&dev, 5, 0) < 0 ||
	    virtio_start(&dev, virtio_transport_features()) < 0 ||
	    virtio_queue_setup(&dev, &vq_in, 0, 0) < 0 ||
	    virtio_queue_setup(&dev, &vq_out, 1, 0) < 0) {
		krt_printf("balloon: FAILED: no device or no memory\n");
		return 1;
	}
	virtio_driver_ok(&dev);
	for (uint32_t i = 0; i < pages; i++)
		memset(mem + (uint64_t)i * 4096, (int)(i % 251) + 1, 4096);
	krt_printf("balloon: touched %u pages\n", pages);
	for (;;) {
		uint32_t target = virtio_cfg32(&dev, 0);
		if (target > pages)
			target = pages;
		if (target == actual) {
			krt_udelay(10000);
			continue;
		}
		uint32_t n, first;
		bool in = target > actual;
		n = in ? target - actual : actual - target;
		n = n > BATCH ? BATCH : n;
		first = in ? actual : actual - n;
		if (request(in ? &vq_in : &vq_out, mem, first, n) < 0) {
			krt_printf("balloon: FAILED: the device did not answer\n");
			return 1;
		}
		for (uint32_t i = 0; !in && i < n; i++) {
			uint8_t *p = mem + (uint64_t)(first + i) * 4096;
			if (!page_zero(p)) {
				krt_printf("balloon: FAILED: page %u kept its data\n", first + i);
				return 1;
			}
			p[0] = 1; /* the guest uses it again */
		}
		actual = in ? actual + n : actual - n;
		virtio_write_reg(&dev, CFG_ACTUAL, actual);
		if (actual == target && in)
			krt_printf("balloon: inflated %u pages\n", actual);
		if (actual == target && !in)
			krt_printf("balloon: deflated to %u pages, zero ok\n", actual);
		inflated |= in;
		if (inflated && actual == 0) {
			krt_printf("balloon: done\n");
			return 0;
		}
	}
}
