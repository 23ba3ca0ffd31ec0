// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: virtio-balloon (virtio/balloon.c, balloon_queue.c)
 * driven by the hostile driver of fz_dev.c. The variant's bits choose the
 * options (deflate on OOM, statistics, hinting, reporting), so the queue
 * numbering of every feature set is fuzzed; the host events are the API's
 * calls on the running device (target, statistics interval, hinting start
 * and stop, statistics and status reads). PFNs and ranges name the fuzzer's
 * 2 MiB of guest memory and beyond it: nothing outside it may be dropped.
 */
#include "tests/fuzz/fz_dev.h"
#include "virtio/balloon.h"

static struct virtio_dev *balloon_create(struct fz *f)
{
	struct virtio_balloon_params p = {
	        .id = "balloon",
	        .amount_mib = 1,
	        .deflate_on_oom = f->variant & 1,
	        .stats_polling_interval_s = (f->variant & 2) ? 1 : 0,
	        .free_page_hinting = f->variant & 4,
	        .free_page_reporting = f->variant & 8,
	};
	struct virtio_balloon *b;
	struct errbuf e = {{0}};
	if (virtio_balloon_create(&b, &p, &e) < 0)
		return NULL;
	f->obj = b;
	return virtio_balloon_dev(b);
}

static void balloon_destroy(struct fz *f)
{
	virtio_balloon_destroy(f->obj);
}

/* one API call, as the VMM thread makes it while the device runs */
static void balloon_host(struct fz *f, struct fz_in *in)
{
	struct virtio_balloon *b = f->obj;
	struct virtio_balloon_stats s;
	struct virtio_balloon_hinting h;
	struct errbuf e = {{0}};

	switch (fz_u8(in) % 6) {
	case 0:
		virtio_balloon_set_target(b, fz_u8(in) % 4, &e);
		break;
	case 1:
		virtio_balloon_set_stats_interval(b, fz_u8(in) % 3, &e);
		break;
	case 2:
		virtio_balloon_hint_start(b, fz_u8(in) & 1, &e);
		break;
	case 3:
		virtio_balloon_hint_stop(b, &e);
		break;
	case 4:
		virtio_balloon_stats(b, &s, &e);
		break;
	default:
		virtio_balloon_hint_status(b, &h, &e);
		break;
	}
}

static const struct fz_kind balloon_kind = {
        .name = "balloon",
        .create = balloon_create,
        .destroy = balloon_destroy,
        .host = balloon_host,
};

FZ_DEV_TARGET(balloon_kind)
