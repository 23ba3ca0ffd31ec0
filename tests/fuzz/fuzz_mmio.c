// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the virtio-mmio transport itself (virtio/mmio.c,
 * mmio_setup.c, queue.c) driven by the hostile driver of fz_dev.c, over a
 * small device made for it: VIRTIO_MAX_QUEUES queues whose maximum size
 * comes from the variant, a writable config space, its own saved state,
 * and requests answered by writing into every writable buffer. Variant
 * bit 0 makes activation fail (the device then needs a reset).
 */
#include "tests/fuzz/fz_dev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct echo {
	struct virtio_dev dev;
	struct virtio_dev_ops ops;
	struct vq_chain chain;
	uint8_t config[24];
	uint32_t served;
	bool fail_activate;
};

static void echo_config_read(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct echo *x = d->priv;
	memcpy(data, x->config + off, len);
}

static void echo_config_write(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	struct echo *x = d->priv;
	memcpy(x->config + off, data, len);
	virtio_dev_config_changed(d);
}

static int echo_activate(struct virtio_dev *d)
{
	struct echo *x = d->priv;
	return x->fail_activate ? -EIO : 0;
}

/* writes a pattern over each chain's writable part and returns it */
static void echo_notify(struct virtio_dev *d, uint16_t q)
{
	static const uint8_t pat[64] = {[0] = 'k', [1] = 'i', [2] = 'l', [3] = 'n'};
	struct echo *x = d->priv;
	int r;
	while ((r = virtio_dev_pop(d, q, &x->chain)) == 1) {
		uint64_t off = 0;
		while (off < x->chain.writable_len && off < KIB(64))
			off += vq_chain_write(&x->chain, off, pat, sizeof(pat));
		uint8_t hdr[16];
		vq_chain_read(&x->chain, 0, hdr, sizeof(hdr));
		virtio_dev_push(d, q, x->chain.head, (uint32_t)off);
		x->served++;
	}
	virtio_dev_notify_used(d, q);
}

static void echo_save(struct virtio_dev *d, struct state_writer *w)
{
	struct echo *x = d->priv;
	sw_bytes(w, x->config, sizeof(x->config));
	sw_u32(w, x->served);
}

static int echo_restore(struct virtio_dev *d, struct state_reader *r, uint16_t version,
                        struct errbuf *e)
{
	struct echo *x = d->priv;
	(void)version;
	sr_bytes(r, x->config, sizeof(x->config));
	x->served = sr_u32(r);
	return sr_error(r) ? errf(e, EINVAL, "echo: bad state") : 0;
}

static struct virtio_dev *echo_create(struct fz *f)
{
	struct echo *x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->ops = (struct virtio_dev_ops){
	        .name = "virtio-echo",
	        .device_id = 42,
	        .nr_queues = VIRTIO_MAX_QUEUES,
	        .queue_max_size = (uint16_t)(1u << (f->variant >> 1 & 7) << 3), /* 8 .. 1024 */
	        .config_size = sizeof(x->config),
	        .config_read = echo_config_read,
	        .config_write = f->variant & 0x10 ? NULL : echo_config_write,
	        .activate = echo_activate,
	        .queue_notify = echo_notify,
	        .state_version = 1,
	        .state_min_version = 1,
	        .save = echo_save,
	        .restore = echo_restore,
	};
	x->fail_activate = f->variant & 1;
	x->dev.ops = &x->ops;
	strcpy(x->dev.id, "echo0");
	x->dev.features = 0xffull << 40 | 0x3;
	x->dev.priv = x;
	f->obj = x;
	return &x->dev;
}

static void echo_destroy(struct fz *f)
{
	free(f->obj);
}

static const struct fz_kind echo_kind = {
        .name = "mmio",
        .create = echo_create,
        .destroy = echo_destroy,
};

FZ_DEV_TARGET(echo_kind)
