// SPDX-License-Identifier: Apache-2.0
/*
 * krt virtio-rng driver (virtio 1.2 s5.4): one queue of device-writable
 * buffers that the device fills with entropy; it may fill fewer bytes
 * than offered (s5.4.6), so the driver asks again for the rest.
 */
#include "virtio_drv.h"

#define RNG_CHUNK 4096

int vrng_open(struct vrng *r, unsigned nth)
{
	struct virtq vq = r->vq; /* keep the memory of an earlier open */
	int ret;

	*r = (struct vrng){.vq = vq};
	if ((ret = virtio_find(&r->dev, VIRTIO_ID_RNG, nth)) < 0)
		return ret;
	if ((ret = virtio_start(&r->dev, virtio_transport_features())) < 0)
		return ret;
	if ((ret = virtio_queue_setup(&r->dev, &r->vq, 0, 0)) < 0) {
		virtio_set_status(&r->dev, virtio_status(&r->dev) | VIRTIO_STATUS_FAILED);
		return ret;
	}
	virtio_driver_ok(&r->dev);
	return 0;
}

/* a request per 4 KiB chunk of buf; the token is where the request starts */
long vrng_read(struct vrng *r, void *buf, size_t len, uint64_t timeout_us)
{
	uint8_t *p = buf;
	size_t next = 0, done = 0; /* next: first byte not yet requested */

	while (done < len) {
		while (next < len) {
			uint32_t l = len - next < RNG_CHUNK ? (uint32_t)(len - next) : RNG_CHUNK;
			struct vq_seg s = {p + next, l, true};
			if (vq_add(&r->vq, &s, 1, p + next) < 0)
				break;
			next += l;
		}
		vq_kick(&r->vq);
		void *token;
		uint32_t got;
		int ret = vq_wait(&r->vq, &token, &got, timeout_us);
		if (ret < 0)
			return ret;
		/* the request ran from token to the end of its chunk */
		uint8_t *at = token;
		size_t end = ((size_t)(at - p) / RNG_CHUNK + 1) * RNG_CHUNK;
		size_t asked = (end < len ? end : len) - (size_t)(at - p);
		if (got > asked)
			return -KRT_EIO; /* wrote more than the buffer holds */
		done += got;
		if (got < asked) { /* ask again for the rest of this chunk */
			struct vq_seg s = {at + got, (uint32_t)(asked - got), true};
			if (vq_add(&r->vq, &s, 1, at + got) < 0)
				return -KRT_EIO;
		}
	}
	return (long)done;
}
