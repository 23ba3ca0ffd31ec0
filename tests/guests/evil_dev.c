// SPDX-License-Identifier: Apache-2.0
/*
 * The evil guest's well-behaved side: each device kind opened through its
 * driver and one request that has to work on it.
 */
#include "evil.h"

#define CHECK_TIMEOUT_US 2000000

int evil_dev_open(struct evil_dev *d)
{
	switch (d->id) {
	case VIRTIO_ID_RNG:
		return vrng_open(&d->rng, d->nth);
	case VIRTIO_ID_BLOCK:
		return vblk_open(&d->blk, d->nth);
	case VIRTIO_ID_NET:
		return vnet_open(&d->net, d->nth, true, 0);
	default:
		return -KRT_ENODEV;
	}
}

uint64_t evil_dev_base(const struct evil_dev *d)
{
	switch (d->id) {
	case VIRTIO_ID_RNG:
		return d->rng.dev.base;
	case VIRTIO_ID_BLOCK:
		return d->blk.dev.base;
	default:
		return d->net.dev.base;
	}
}

static int check_rng(struct vrng *r)
{
	uint8_t buf[64] = {0};
	long got = vrng_read(r, buf, sizeof(buf), CHECK_TIMEOUT_US);
	if (got != (long)sizeof(buf))
		return got < 0 ? (int)got : -KRT_EIO;
	for (unsigned i = 0; i < sizeof(buf); i++)
		if (buf[i])
			return 0;
	return -KRT_EIO; /* 64 zero bytes: not entropy */
}

static int check_blk(struct vblk *b)
{
	static uint8_t sector[VIRTIO_BLK_SECTOR];
	int st = vblk_do(b, VIRTIO_BLK_T_IN, 0, sector, sizeof(sector), false, CHECK_TIMEOUT_US);
	return st == VIRTIO_BLK_S_OK ? 0 : st < 0 ? st : -KRT_EIO;
}

/* a broadcast frame of EtherType 0x88b7, which the net guest's echo ignores */
static int check_net(struct vnet *n)
{
	uint8_t f[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	memcpy(f + 6, n->mac, 6);
	f[12] = 0x88;
	f[13] = 0xb7;
	memcpy(f + 14, "evil guest check", 16);
	int ret = vnet_send(n, f, sizeof(f));
	if (ret < 0)
		return ret;
	vnet_kick_tx(n);
	uint64_t t0 = krt_rdtsc(), limit = CHECK_TIMEOUT_US * (krt_tsc_hz() / 1000000);
	while ((ret = vnet_reap_tx(n)) == 0 && krt_rdtsc() - t0 < limit)
		krt_pause();
	return ret > 0 ? 0 : ret < 0 ? ret : -KRT_ETIMEDOUT;
}

int evil_dev_check(struct evil_dev *d)
{
	switch (d->id) {
	case VIRTIO_ID_RNG:
		return check_rng(&d->rng);
	case VIRTIO_ID_BLOCK:
		return check_blk(&d->blk);
	case VIRTIO_ID_NET:
		return check_net(&d->net);
	default:
		return -KRT_ENODEV;
	}
}
