// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/devices.c: the VM's virtio devices -- created from the
 * configuration at InstanceStart, each on its own virtio-mmio window and
 * interrupt line, announced to the guest in the ACPI DSDT (or, with
 * acpi=off, on its command line), paused and resumed with the VM, patched
 * at run time, and torn down at exit.
 *
 * Layout: device n gets the 4 KiB window VMM_VIRTIO_BASE + n * 4 KiB and
 * GSI VMM_VIRTIO_GSI0 + n (the IOAPIC's pins 5 .. 23, as Firecracker).
 */
#define LOG_MODULE "vmm"
#include "vmm.h"

#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"

#include <errno.h>
#include <string.h>

static struct rl_bucket_cfg bucket(const struct token_bucket_cfg *t)
{
	struct rl_bucket_cfg b = {0};
	if (t->set) {
		b.size = t->size;
		b.one_time_burst = t->one_time_burst;
		b.refill_time_ms = t->refill_time_ms;
	}
	return b;
}

/* the API takes the ids the devices take (Firecracker's: 1 to 64 characters) */
_Static_assert(CFG_ID_MAX == VIRTIO_ID_MAX, "the API and the devices disagree on ids");

static const char *const kind_names[] = {
        [VDEV_BLK] = "virtio-blk", [VDEV_NET] = "virtio-net",         [VDEV_VSOCK] = "virtio-vsock",
        [VDEV_RNG] = "virtio-rng", [VDEV_BALLOON] = "virtio-balloon",
};

/* the virtio_dev inside a device of any kind */
static struct virtio_dev *impl_dev(const struct vmm_dev *d)
{
	switch (d->kind) {
	case VDEV_BLK:
		return virtio_blk_dev(d->impl);
	case VDEV_NET:
		return virtio_net_dev(d->impl);
	case VDEV_VSOCK:
		return virtio_vsock_dev(d->impl);
	case VDEV_RNG:
		return virtio_rng_dev(d->impl);
	case VDEV_BALLOON:
		return virtio_balloon_dev(d->impl);
	}
	return NULL;
}

static void impl_destroy(struct vmm_dev *d)
{
	switch (d->kind) {
	case VDEV_BLK:
		virtio_blk_destroy(d->impl);
		break;
	case VDEV_NET:
		virtio_net_destroy(d->impl);
		break;
	case VDEV_VSOCK:
		virtio_vsock_destroy(d->impl);
		break;
	case VDEV_RNG:
		virtio_rng_destroy(d->impl);
		break;
	case VDEV_BALLOON:
		virtio_balloon_destroy(d->impl);
		break;
	}
	d->impl = NULL;
}

static int create_blk(const struct drive_cfg *c, void **out, struct errbuf *e)
{
	struct rl_bucket_cfg bw = bucket(&c->rate_limiter.bandwidth);
	struct rl_bucket_cfg ops = bucket(&c->rate_limiter.ops);
	struct virtio_blk_params p = {
	        .id = c->drive_id,
	        .path = c->path_on_host,
	        .read_only = c->is_read_only,
	        .writeback = c->cache_type == CACHE_WRITEBACK,
	        .async = c->io_engine == IO_ENGINE_ASYNC,
	        .bw = &bw,
	        .ops = &ops,
	};
	return virtio_blk_create((struct virtio_blk **)out, &p, e);
}

/* the MMDS store when mmds-config names interface `id` (its guest path, virtio/net_mmds.c) */
static struct mmds *net_mmds(struct vmm *v, const char *id)
{
	const struct mmds_cfg *m = &v->cfg.mmds;

	for (unsigned i = 0; m->set && i < m->nr_ifaces; i++)
		if (strcmp(m->ifaces[i], id) == 0)
			return &v->mmds;
	return NULL;
}

static int create_net(struct vmm *v, const struct net_cfg *c, void **out, struct errbuf *e)
{
	struct rl_bucket_cfg rx_bw = bucket(&c->rx_rate_limiter.bandwidth);
	struct rl_bucket_cfg rx_ops = bucket(&c->rx_rate_limiter.ops);
	struct rl_bucket_cfg tx_bw = bucket(&c->tx_rate_limiter.bandwidth);
	struct rl_bucket_cfg tx_ops = bucket(&c->tx_rate_limiter.ops);
	struct virtio_net_params p = {
	        .id = c->iface_id,
	        .tap_name = c->host_dev_name,
	        .mac = c->has_mac ? c->guest_mac : NULL,
	        .mtu = c->mtu,
	        .rx_bw = &rx_bw,
	        .rx_ops = &rx_ops,
	        .tx_bw = &tx_bw,
	        .tx_ops = &tx_ops,
	        .mmds = net_mmds(v, c->iface_id),
	        .mmds_ipv4 = v->cfg.mmds.ipv4,
	};
	return virtio_net_create((struct virtio_net **)out, &p, e);
}

static int create_vsock(const struct vsock_cfg *c, void **out, struct errbuf *e)
{
	struct virtio_vsock_params p = {
	        .id = "vsock",
	        .guest_cid = c->guest_cid,
	        .uds_path = c->uds_path,
	};
	return virtio_vsock_create((struct virtio_vsock **)out, &p, e);
}

static int create_rng(const struct entropy_cfg *c, void **out, struct errbuf *e)
{
	struct rl_bucket_cfg bw = bucket(&c->rate_limiter.bandwidth);
	struct rl_bucket_cfg ops = bucket(&c->rate_limiter.ops);
	return virtio_rng_create((struct virtio_rng **)out, "rng", &bw, &ops, NULL, e);
}

static int create_balloon(const struct balloon_cfg *c, void **out, struct errbuf *e)
{
	struct virtio_balloon_params p = {
	        .id = "balloon",
	        .amount_mib = c->amount_mib,
	        .deflate_on_oom = c->deflate_on_oom,
	        .stats_polling_interval_s = (uint16_t)c->stats_polling_interval_s,
	        .free_page_hinting = c->free_page_hinting,
	        .free_page_reporting = c->free_page_reporting,
	};
	return virtio_balloon_create((struct virtio_balloon **)out, &p, e);
}

/* puts a created device on its window and line, and on the command line if need be */
static int add_device(struct vmm *v, enum vmm_dev_kind kind, const char *id, void *impl,
                      char *cmdline, size_t size, struct errbuf *e)
{
	unsigned n = v->nr_devs;
	struct vmm_dev *d = &v->devs[n];
	int ret;

	d->kind = kind;
	d->impl = impl;
	d->base = VMM_VIRTIO_BASE + (uint64_t)n * VIRTIO_MMIO_SIZE;
	d->gsi = VMM_VIRTIO_GSI0 + n;
	snprintf(d->id, sizeof(d->id), "%s", id);
	v->nr_devs++; /* from here on vmm_devices_destroy frees it */

	struct virtio_mmio_params p = {
	        .base = d->base,
	        .gsi = d->gsi,
	        .gm = &v->mem,
	        .hv = &virtio_kvm_hv_ops,
	        .hv_opaque = &v->vm.fd,
	};
	if ((ret = virtio_mmio_create(&d->mmio, impl_dev(d), &p, e)) < 0)
		return ret;
	if ((ret = virtio_mmio_attach(d->mmio, &v->vm.mmio)) < 0)
		return errf(e, -ret, "%s %s: cannot place it at %#llx: %s", kind_names[kind], id,
		            (unsigned long long)d->base, strerror(-ret));

	/* on the command line only with acpi=off: else the DSDT says it (vmm_devices_acpi) */
	ret = virtio_mmio_cmdline_add(cmdline, size, d->base, d->gsi);
	if (ret < 0)
		return errf(e, ENOSPC,
		            "the kernel command line (at most %zu bytes) has no room for "
		            "the virtio devices",
		            size - 1);
	log_info("%s %s at %#llx, GSI %u, announced %s", kind_names[kind], id,
	         (unsigned long long)d->base, d->gsi,
	         ret ? "on the kernel command line" : "in the ACPI DSDT");
	return 0;
}

/* Firecracker's root device arguments: root=/dev/vda (or PARTUUID) ro|rw */
static int add_root_args(const struct drive_cfg *root, char *cmdline, size_t size, struct errbuf *e)
{
	size_t len = strlen(cmdline);
	int n;

	if (root->partuuid)
		n = snprintf(cmdline + len, size - len, " root=PARTUUID=%s %s", root->partuuid,
		             root->is_read_only ? "ro" : "rw");
	else
		n = snprintf(cmdline + len, size - len, " root=/dev/vda %s",
		             root->is_read_only ? "ro" : "rw");
	if (n < 0 || (size_t)n >= size - len) {
		cmdline[len] = '\0';
		return errf(e, ENOSPC, "the kernel command line has no room for the root device");
	}
	return 0;
}

int vmm_devices_attach(struct vmm *v, char *cmdline, size_t size, struct errbuf *e)
{
	const struct vm_config *c = &v->cfg;
	unsigned wanted =
	        c->nr_drives + c->nr_nets + c->vsock.set + c->entropy.set + c->balloon.set;
	void *impl;
	int ret;

	if (wanted > VMM_MAX_DEVS)
		return errf(e, ENOSPC,
		            "%u virtio devices configured; kiln has interrupt lines for %d", wanted,
		            VMM_MAX_DEVS);
	/* the root drive first, so that it is /dev/vda (config parsing sorted it so) */
	for (unsigned i = 0; i < c->nr_drives; i++) {
		if ((ret = create_blk(&c->drives[i], &impl, e)) < 0 ||
		    (ret = add_device(v, VDEV_BLK, c->drives[i].drive_id, impl, cmdline, size, e)) <
		            0)
			return ret;
		if (c->drives[i].is_root_device &&
		    (ret = add_root_args(&c->drives[i], cmdline, size, e)) < 0)
			return ret;
	}
	for (unsigned i = 0; i < c->nr_nets; i++)
		if ((ret = create_net(v, &c->nets[i], &impl, e)) < 0 ||
		    (ret = add_device(v, VDEV_NET, c->nets[i].iface_id, impl, cmdline, size, e)) <
		            0)
			return ret;
	if (c->vsock.set &&
	    ((ret = create_vsock(&c->vsock, &impl, e)) < 0 ||
	     (ret = add_device(v, VDEV_VSOCK, "vsock", impl, cmdline, size, e)) < 0))
		return ret;
	if (c->entropy.set && ((ret = create_rng(&c->entropy, &impl, e)) < 0 ||
	                       (ret = add_device(v, VDEV_RNG, "rng", impl, cmdline, size, e)) < 0))
		return ret;
	if (c->balloon.set &&
	    ((ret = create_balloon(&c->balloon, &impl, e)) < 0 ||
	     (ret = add_device(v, VDEV_BALLOON, "balloon", impl, cmdline, size, e)) < 0))
		return ret;
	return 0;
}

_Static_assert(VMM_MAX_DEVS <= BOOT_ACPI_VIRTIO_MAX, "the DSDT has room for every device");

unsigned vmm_devices_acpi(const struct vmm *v, struct boot_acpi_virtio out[VMM_MAX_DEVS])
{
	for (unsigned i = 0; i < v->nr_devs; i++)
		out[i] = (struct boot_acpi_virtio){
		        .base = v->devs[i].base, .size = VIRTIO_MMIO_SIZE, .gsi = v->devs[i].gsi};
	return v->nr_devs;
}

void vmm_devices_destroy(struct vmm *v)
{
	/* transports first: they stop the I/O threads that use the devices */
	for (unsigned i = 0; i < v->nr_devs; i++) {
		virtio_mmio_destroy(v->devs[i].mmio);
		v->devs[i].mmio = NULL;
	}
	for (unsigned i = 0; i < v->nr_devs; i++)
		if (v->devs[i].impl)
			impl_destroy(&v->devs[i]);
	v->nr_devs = 0;
}

int vmm_devices_pause(struct vmm *v, struct errbuf *e)
{
	for (unsigned i = 0; i < v->nr_devs; i++) {
		int ret = virtio_mmio_pause(v->devs[i].mmio);
		if (ret < 0) {
			errf(e, -ret, "cannot pause %s %s: %s", kind_names[v->devs[i].kind],
			     v->devs[i].id, strerror(-ret));
			while (i--)
				virtio_mmio_resume(v->devs[i].mmio);
			return ret;
		}
	}
	return 0;
}

void vmm_devices_resume(struct vmm *v)
{
	for (unsigned i = 0; i < v->nr_devs; i++)
		virtio_mmio_resume(v->devs[i].mmio);
}

static struct vmm_dev *find_dev(struct vmm *v, enum vmm_dev_kind kind, const char *id)
{
	for (unsigned i = 0; i < v->nr_devs; i++)
		if (v->devs[i].kind == kind && strcmp(v->devs[i].id, id) == 0)
			return &v->devs[i];
	return NULL;
}

int vmm_devices_patch_drive(struct vmm *v, const struct drive_patch *p, struct errbuf *e)
{
	struct vmm_dev *d = find_dev(v, VDEV_BLK, p->drive_id);
	if (!d)
		return errf(e, ENOENT, "no drive with id %s", p->drive_id);
	struct rl_bucket_cfg bw = bucket(&p->rate_limiter.bandwidth);
	struct rl_bucket_cfg ops = bucket(&p->rate_limiter.ops);
	return virtio_blk_update(d->impl, p->path_on_host, &bw, &ops, p->has_rate_limiter, e);
}

int vmm_devices_patch_net(struct vmm *v, const struct net_patch *p, struct errbuf *e)
{
	struct vmm_dev *d = find_dev(v, VDEV_NET, p->iface_id);
	if (!d)
		return errf(e, ENOENT, "no network interface with id %s", p->iface_id);
	struct rl_bucket_cfg rx_bw = bucket(&p->rx_rate_limiter.bandwidth);
	struct rl_bucket_cfg rx_ops = bucket(&p->rx_rate_limiter.ops);
	struct rl_bucket_cfg tx_bw = bucket(&p->tx_rate_limiter.bandwidth);
	struct rl_bucket_cfg tx_ops = bucket(&p->tx_rate_limiter.ops);
	return virtio_net_update(d->impl, p->has_rx, &rx_bw, &rx_ops, p->has_tx, &tx_bw, &tx_ops,
	                         e);
}

/* the MMDS stack's counters on an interface that serves it, Firecracker's names */
static json_t *mmds_metrics(const struct mmds_ns_metrics *m)
{
	static const struct {
		const char *name;
		size_t off;
	} f[] = {
#define MMDS_F(x) {#x, offsetof(struct mmds_ns_metrics, x)}
	        MMDS_F(rx_accepted),
	        MMDS_F(rx_accepted_err),
	        MMDS_F(rx_accepted_unusual),
	        MMDS_F(rx_bad_eth),
	        MMDS_F(rx_count),
	        MMDS_F(rx_invalid_token),
	        MMDS_F(rx_no_token),
	        MMDS_F(tx_bytes),
	        MMDS_F(tx_count),
	        MMDS_F(tx_errors),
	        MMDS_F(tx_frames),
	        MMDS_F(connections_created),
	        MMDS_F(connections_destroyed),
#undef MMDS_F
	};
	json_t *o = json_object();
	for (size_t i = 0; o && i < ARRAY_SIZE(f); i++) {
		const uint64_t *c = (const uint64_t *)((const char *)m + f[i].off);
		json_object_set_new(o, f[i].name, json_integer((json_int_t)*c));
	}
	return o;
}

static json_t *dev_metrics(const struct vmm_dev *d)
{
	switch (d->kind) {
	case VDEV_BLK: {
		struct virtio_blk_metrics m;
		virtio_blk_metrics(d->impl, &m);
		return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "read_ops",
		                 (json_int_t)m.read_ops, "write_ops", (json_int_t)m.write_ops,
		                 "flush_ops", (json_int_t)m.flush_ops, "read_bytes",
		                 (json_int_t)m.read_bytes, "write_bytes", (json_int_t)m.write_bytes,
		                 "io_errors", (json_int_t)m.io_errors, "throttled",
		                 (json_int_t)m.throttled, "bad_requests",
		                 (json_int_t)m.bad_requests);
	}
	case VDEV_NET: {
		struct virtio_net_metrics m;
		struct mmds_ns_metrics mm;
		virtio_net_metrics(d->impl, &m);
		return json_pack(
		        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o*}", "rx_packets",
		        (json_int_t)m.rx_packets, "rx_bytes", (json_int_t)m.rx_bytes, "tx_packets",
		        (json_int_t)m.tx_packets, "tx_bytes", (json_int_t)m.tx_bytes, "rx_dropped",
		        (json_int_t)m.rx_dropped, "tx_dropped", (json_int_t)m.tx_dropped,
		        "rx_throttled", (json_int_t)m.rx_throttled, "tx_throttled",
		        (json_int_t)m.tx_throttled, "tap_errors", (json_int_t)m.tap_errors, "mmds",
		        virtio_net_mmds_metrics(d->impl, &mm) == 0 ? mmds_metrics(&mm) : NULL);
	}
	case VDEV_VSOCK: {
		struct virtio_vsock_metrics m;
		virtio_vsock_metrics(d->impl, &m);
		return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rx_packets",
		                 (json_int_t)m.rx_packets, "tx_packets", (json_int_t)m.tx_packets,
		                 "rx_bytes", (json_int_t)m.rx_bytes, "tx_bytes",
		                 (json_int_t)m.tx_bytes, "conns_opened", (json_int_t)m.conns_opened,
		                 "conns_reset", (json_int_t)m.conns_reset, "bad_packets",
		                 (json_int_t)m.bad_packets);
	}
	case VDEV_RNG: {
		struct virtio_rng_metrics m;
		virtio_rng_metrics(d->impl, &m);
		return json_pack("{s:I, s:I, s:I, s:I}", "requests", (json_int_t)m.requests,
		                 "bytes", (json_int_t)m.bytes, "throttled", (json_int_t)m.throttled,
		                 "host_rng_fail", (json_int_t)m.host_rng_fail);
	}
	case VDEV_BALLOON: {
		struct virtio_balloon_metrics m;
		virtio_balloon_metrics(d->impl, &m);
		return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		                 "inflate_count", (json_int_t)m.inflate_count, "deflate_count",
		                 (json_int_t)m.deflate_count, "inflated_bytes",
		                 (json_int_t)m.inflated_bytes, "stats_updates_count",
		                 (json_int_t)m.stats_updates_count, "stats_update_fails",
		                 (json_int_t)m.stats_update_fails, "free_page_report_count",
		                 (json_int_t)m.free_page_report_count, "free_page_report_freed",
		                 (json_int_t)m.free_page_report_freed, "free_page_hint_count",
		                 (json_int_t)m.free_page_hint_count, "free_page_hint_freed",
		                 (json_int_t)m.free_page_hint_freed, "discard_fails",
		                 (json_int_t)m.discard_fails);
	}
	}
	return json_object();
}

json_t *vmm_devices_metrics(const struct vmm *v)
{
	json_t *o = json_object();
	for (unsigned i = 0; i < v->nr_devs; i++) {
		char key[96];
		snprintf(key, sizeof(key), "%s.%s", kind_names[v->devs[i].kind], v->devs[i].id);
		json_object_set_new(o, key, dev_metrics(&v->devs[i]));
	}
	return o;
}

/* Firecracker's BalloonStats names of the statistics tags (virtio 1.2 s5.5.6.3) */
static const char *const stat_names[VIRTIO_BALLOON_NR_STATS] = {
        "swap_in",          "swap_out",    "major_faults",
        "minor_faults",     "free_memory", "total_memory",
        "available_memory", "disk_caches", "hugetlb_allocations",
        "hugetlb_failures", "oom_kill",    "alloc_stall",
        "async_scan",       "direct_scan", "async_reclaim",
        "direct_reclaim",
};

static json_t *stats_json(const struct virtio_balloon_stats *s)
{
	json_t *o = json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)s->target_pages,
	                      "actual_pages", (json_int_t)s->actual_pages, "target_mib",
	                      (json_int_t)(s->target_pages / 256), "actual_mib",
	                      (json_int_t)(s->actual_pages / 256));
	/* skip_serializing_if = "Option::is_none": only the tags the guest sent */
	for (unsigned t = 0; o && t < VIRTIO_BALLOON_NR_STATS; t++)
		if ((s->have & (1u << t)) &&
		    json_object_set_new(o, stat_names[t], json_integer((json_int_t)s->val[t])) <
		            0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

/* the hinting and statistics actions, once the device exists */
static int balloon_do(struct virtio_balloon *b, struct api_action *a, struct errbuf *e)
{
	struct virtio_balloon_stats s;
	struct virtio_balloon_hinting h;
	int ret;

	switch (a->kind) {
	case API_PATCH_BALLOON:
		return virtio_balloon_set_target(b, a->u.balloon.amount_mib, e);
	case API_PATCH_BALLOON_STATS:
		return virtio_balloon_set_stats_interval(
		        b, (uint16_t)a->u.balloon.stats_polling_interval_s, e);
	case API_GET_BALLOON_STATS:
		if ((ret = virtio_balloon_stats(b, &s, e)) < 0)
			return ret;
		a->reply = stats_json(&s);
		return a->reply ? 0 : -ENOMEM;
	case API_BALLOON_HINT_START:
		return virtio_balloon_hint_start(b, a->u.balloon.acknowledge_on_stop, e);
	case API_BALLOON_HINT_STOP:
		return virtio_balloon_hint_stop(b, e);
	case API_BALLOON_HINT_STATUS:
		if ((ret = virtio_balloon_hint_status(b, &h, e)) < 0)
			return ret;
		a->reply = json_pack("{s:I, s:o}", "host_cmd", (json_int_t)h.host_cmd, "guest_cmd",
		                     h.has_guest_cmd ? json_integer((json_int_t)h.guest_cmd)
		                                     : json_null());
		return a->reply ? 0 : -ENOMEM;
	default:
		return errf(e, EINVAL, "not a balloon action");
	}
}

int vmm_balloon_action(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	struct vmm_dev *d = find_dev(v, VDEV_BALLOON, "balloon");
	if (!d)
		return errf(e, ENOENT, "No balloon device found.");
	int ret = balloon_do(d->impl, a, e);
	if (ret == 0 && a->kind == API_PATCH_BALLOON)
		v->cfg.balloon.amount_mib = a->u.balloon.amount_mib;
	if (ret == 0 && a->kind == API_PATCH_BALLOON_STATS)
		v->cfg.balloon.stats_polling_interval_s = a->u.balloon.stats_polling_interval_s;
	return ret;
}
