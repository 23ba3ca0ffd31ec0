// SPDX-License-Identifier: Apache-2.0
/*
 * krt virtio-blk driver (virtio 1.2 s5.2): a request is the 16-byte header
 * {type, reserved, sector} (device-readable), the data (readable for OUT,
 * writable for IN and GET_ID, a {sector, num_sectors, flags} segment for
 * DISCARD and WRITE_ZEROES, nothing for FLUSH) and the status byte
 * (writable), s5.2.6. Requests are queued in batches and completed by
 * polling the used ring.
 */
#include "virtio_drv.h"

/* s5.2.4 configuration layout */
#define CFG_CAPACITY                 0
#define CFG_SIZE_MAX                 8
#define CFG_SEG_MAX                  12
#define CFG_BLK_SIZE                 20
#define CFG_MAX_DISCARD_SECTORS      36
#define CFG_MAX_WRITE_ZEROES_SECTORS 48

#define WRITE_ZEROES_FLAG_UNMAP 1
#define STATUS_PENDING          0xff /* a value no device writes */
#define MAX_SEGS                (2 + 16)

struct vblk_req {
	/* s5.2.6 struct virtio_blk_req header */
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
	/* s5.2.6 struct virtio_blk_discard_write_zeroes */
	uint64_t range_sector;
	uint32_t range_sectors;
	uint32_t range_flags;
	uint8_t status;
	uint64_t tag;
};

static void read_config(struct vblk *b)
{
	struct virtio_dev *d = &b->dev;

	b->capacity = virtio_cfg64(d, CFG_CAPACITY);
	b->size_max = virtio_has(d, VIRTIO_BLK_F_SIZE_MAX) ? virtio_cfg32(d, CFG_SIZE_MAX) : 0;
	b->seg_max = virtio_has(d, VIRTIO_BLK_F_SEG_MAX) ? virtio_cfg32(d, CFG_SEG_MAX) : 0;
	b->blk_size = virtio_has(d, VIRTIO_BLK_F_BLK_SIZE) ? virtio_cfg32(d, CFG_BLK_SIZE)
	                                                   : VIRTIO_BLK_SECTOR;
	if (virtio_has(d, VIRTIO_BLK_F_DISCARD))
		b->max_discard_sectors = virtio_cfg32(d, CFG_MAX_DISCARD_SECTORS);
	if (virtio_has(d, VIRTIO_BLK_F_WRITE_ZEROES))
		b->max_write_zeroes_sectors = virtio_cfg32(d, CFG_MAX_WRITE_ZEROES_SECTORS);
}

int vblk_open(struct vblk *b, unsigned nth)
{
	uint64_t want = virtio_transport_features() | VIRTIO_BIT(VIRTIO_BLK_F_RO) |
	                VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
	                VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
	                VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	struct virtq vq = b->vq; /* keep the memory of an earlier open */
	struct vblk_req *reqs = b->reqs;
	uint16_t old_size = b->vq.size;
	int ret;

	*b = (struct vblk){.vq = vq};
	if ((ret = virtio_find(&b->dev, VIRTIO_ID_BLOCK, nth)) < 0)
		return ret;
	if ((ret = virtio_start(&b->dev, want)) < 0)
		return ret;
	read_config(b);
	if ((ret = virtio_queue_setup(&b->dev, &b->vq, 0, 0)) < 0)
		goto err_failed;
	size_t bytes = b->vq.size * (sizeof(struct vblk_req) + sizeof(uint16_t));
	b->reqs = reqs && old_size >= b->vq.size
	                  ? reqs
	                  : krt_alloc_pages((bytes + KRT_PAGE_SIZE - 1) / KRT_PAGE_SIZE,
	                                    KRT_PAGE_SIZE);
	if (!b->reqs) {
		ret = -KRT_ENOMEM;
		goto err_failed;
	}
	b->free_reqs = (uint16_t *)(b->reqs + b->vq.size);
	for (uint16_t i = 0; i < b->vq.size; i++)
		b->free_reqs[i] = i;
	b->nr_free_reqs = b->vq.size;
	virtio_driver_ok(&b->dev);
	return 0;

err_failed:
	virtio_set_status(&b->dev, virtio_status(&b->dev) | VIRTIO_STATUS_FAILED);
	return ret;
}

/* the data part of a request as segments (split at size_max); count or -KRT_EINVAL */
static int data_segs(const struct vblk *b, struct vq_seg *s, unsigned max, uint8_t *buf,
                     uint32_t len, bool write)
{
	uint32_t piece = b->size_max ? b->size_max : len;
	unsigned n = 0;

	for (uint32_t off = 0; off < len; off += piece) {
		if (n == max)
			return -KRT_EINVAL;
		uint32_t l = len - off < piece ? len - off : piece;
		s[n++] = (struct vq_seg){buf + off, l, write};
	}
	if (b->seg_max && n > b->seg_max)
		return -KRT_EINVAL;
	return (int)n;
}

/* fills segs for a request; count or -KRT_EINVAL */
static int build(struct vblk *b, struct vblk_req *r, struct vq_seg *segs, void *buf, uint32_t len,
                 bool unmap)
{
	int n;

	segs[0] = (struct vq_seg){r, 16, false};
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (len == 0 || len % VIRTIO_BLK_SECTOR)
			return -KRT_EINVAL;
		n = data_segs(b, segs + 1, MAX_SEGS - 2, buf, len, r->type == VIRTIO_BLK_T_IN);
		if (n < 0)
			return n;
		break;
	case VIRTIO_BLK_T_GET_ID:
		segs[1] = (struct vq_seg){buf, len, true};
		n = 1;
		break;
	case VIRTIO_BLK_T_FLUSH:
		n = 0;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		r->range_sector = r->sector;
		r->range_sectors = len;
		r->range_flags =
		        r->type == VIRTIO_BLK_T_WRITE_ZEROES && unmap ? WRITE_ZEROES_FLAG_UNMAP : 0;
		r->sector = 0; /* s5.2.6.2: the header's sector is reserved for these */
		segs[1] = (struct vq_seg){&r->range_sector, 16, false};
		n = 1;
		break;
	default:
		return -KRT_EINVAL;
	}
	segs[n + 1] = (struct vq_seg){&r->status, 1, true};
	return n + 2;
}

int vblk_submit(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len, bool unmap,
                uint64_t tag)
{
	struct vq_seg segs[MAX_SEGS];

	if (b->nr_free_reqs == 0)
		return -KRT_ENOSPC;
	uint16_t slot = b->free_reqs[b->nr_free_reqs - 1];
	struct vblk_req *r = &b->reqs[slot];
	*r = (struct vblk_req){
	        .type = type, .sector = sector, .status = STATUS_PENDING, .tag = tag};
	int n = build(b, r, segs, buf, len, unmap);
	if (n < 0)
		return n;
	int ret = vq_add(&b->vq, segs, (unsigned)n, r);
	if (ret < 0)
		return ret;
	b->nr_free_reqs--;
	return 0;
}

void vblk_kick(struct vblk *b)
{
	vq_kick(&b->vq);
}

int vblk_complete(struct vblk *b, uint64_t *tag, uint8_t *status)
{
	void *token;
	uint32_t len;
	int ret = vq_get(&b->vq, &token, &len);
	if (ret <= 0)
		return ret;
	struct vblk_req *r = token;
	*tag = r->tag;
	*status = r->status;
	b->free_reqs[b->nr_free_reqs++] = (uint16_t)(r - b->reqs);
	return 1;
}

unsigned vblk_in_flight(const struct vblk *b)
{
	return b->vq.size - b->nr_free_reqs;
}

int vblk_do(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len, bool unmap,
            uint64_t timeout_us)
{
	const uint64_t mine = 0xb1c0ffee00000000ull | type;
	int ret = vblk_submit(b, type, sector, buf, len, unmap, mine);
	if (ret < 0)
		return ret;
	vblk_kick(b);
	for (;;) {
		void *token;
		uint32_t wlen;
		ret = vq_wait(&b->vq, &token, &wlen, timeout_us);
		if (ret < 0)
			return ret;
		struct vblk_req *r = token;
		b->free_reqs[b->nr_free_reqs++] = (uint16_t)(r - b->reqs);
		if (r->tag == mine)
			return r->status;
	}
}
