/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The evil guest's parts: the devices it breaks and watches (evil_dev.c)
 * and the broken rings it writes (evil_rules.c). See evil.c.
 */
#ifndef EVIL_H
#define EVIL_H

#include "rt/virtio_drv.h"

#define EVIL_SCRATCH_PAGES 160 /* tables and buffers of the broken chains */

/* a device driven the proper way, through its driver */
struct evil_dev {
	uint32_t id, nth;
	struct vrng rng;
	struct vblk blk;
	struct vnet net;
};
/* (re)initialises it through its driver; 0 or -errno */
int evil_dev_open(struct evil_dev *d);
/* one request that must succeed (rng: bytes, blk: a read, net: a send); 0 or -errno */
int evil_dev_check(struct evil_dev *d);
uint64_t evil_dev_base(const struct evil_dev *d);

struct evil_ctx {
	uint32_t target_id, target_nth;
	struct evil_dev target, other;
	struct virtio_dev raw; /* the target, brought up by hand to be broken */
	struct virtq rawq[2];
	uint8_t *scratch;
};

#define EVIL_NEEDS_INDIRECT 1 /* skipped when the device lacks INDIRECT_DESC */
#define EVIL_NO_INDIRECT    2 /* the device is set up without INDIRECT_DESC */
#define EVIL_SETUP          4 /* fn sets up the queue itself (vq is NULL) */

struct evil_rule {
	const char *name;
	const char *what;
	unsigned flags;
	/* writes the broken ring (or queue set-up) for queue `q` of c->raw */
	int (*fn)(struct evil_ctx *c, struct virtq *vq, uint16_t q);
};
extern const struct evil_rule evil_rules[];
extern const unsigned evil_nr_rules;

/*
 * Brings c->raw up as the rule wants, writes the broken ring and notifies.
 * 0, -KRT_ENOTSUP (rule skipped: said why), -errno.
 */
int evil_break(struct evil_ctx *c, const struct evil_rule *r);

#endif
