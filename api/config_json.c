// SPDX-License-Identifier: Apache-2.0
/*
 * api/config_json.c: a vm_config as Firecracker's GET /vm/config document
 * (swagger: FullVmConfiguration; Firecracker serialises its VmmConfig, so
 * optional values appear as null rather than being left out). What this
 * writes, cfg_parse_document() reads back to the same config.
 */
#include "api/config_int.h"

static const char *const level_names[] = {
        [LOG_OFF] = "Off",   [LOG_ERROR] = "Error", [LOG_WARN] = "Warning",
        [LOG_INFO] = "Info", [LOG_DEBUG] = "Debug", [LOG_TRACE] = "Trace",
};

/* names[v], or names[0] if a caller stored an out-of-range value */
static const char *name_of(const char *const *names, unsigned n, int v)
{
	return v >= 0 && (unsigned)v < n ? names[v] : names[0];
}

static json_t *bucket_json(const struct token_bucket_cfg *b)
{
	if (!b->set)
		return json_null();
	/* Firecracker reports an unused one_time_burst (0) as null */
	return json_pack("{s:I, s:o, s:I}", "size", (json_int_t)b->size, "one_time_burst",
	                 b->one_time_burst ? json_integer((json_int_t)b->one_time_burst)
	                                   : json_null(),
	                 "refill_time", (json_int_t)b->refill_time_ms);
}

/* RateLimiterConfig::into_option(): null when neither bucket limits anything */
static json_t *rate_limiter_json(const struct rate_limiter_cfg *rl)
{
	if (!rl->bandwidth.set && !rl->ops.set)
		return json_null();
	return json_pack("{s:o, s:o}", "bandwidth", bucket_json(&rl->bandwidth), "ops",
	                 bucket_json(&rl->ops));
}

static json_t *boot_source_json(const struct vm_config *c)
{
	const struct boot_source_cfg *b = &c->boot_source;

	/* before PUT /boot-source, Firecracker's BootSourceConfig::default() */
	if (!c->has_boot_source)
		return json_pack("{s:s, s:n, s:n}", "kernel_image_path", "", "initrd_path",
		                 "boot_args");
	return json_pack("{s:s?, s:s?, s:s?}", "kernel_image_path", b->kernel_image_path,
	                 "initrd_path", b->initrd_path, "boot_args", b->boot_args);
}

static json_t *machine_json(const struct machine_cfg *m)
{
	json_t *j = json_pack(
	        "{s:I, s:I, s:b, s:b, s:s}", "vcpu_count", (json_int_t)m->vcpu_count,
	        "mem_size_mib", (json_int_t)m->mem_size_mib, "smt", m->smt, "track_dirty_pages",
	        m->track_dirty_pages, "huge_pages",
	        name_of(cfg_huge_pages_names, ARRAY_SIZE(cfg_huge_pages_names), m->huge_pages));
	/* skip_serializing_if = "Option::is_none", as Firecracker */
	if (j && m->cpu_template &&
	    json_object_set_new(j, "cpu_template", json_string(m->cpu_template)) < 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *drive_json(const struct drive_cfg *d)
{
	return json_pack("{s:s, s:s?, s:b, s:s, s:b, s:s?, s:o, s:s, s:n}", "drive_id", d->drive_id,
	                 "partuuid", d->partuuid, "is_root_device", d->is_root_device, "cache_type",
	                 name_of(cfg_cache_type_names, 2, (int)d->cache_type), "is_read_only",
	                 d->is_read_only, "path_on_host", d->path_on_host, "rate_limiter",
	                 rate_limiter_json(&d->rate_limiter), "io_engine",
	                 name_of(cfg_io_engine_names, 2, (int)d->io_engine), "socket");
}

static json_t *net_json(const struct net_cfg *n)
{
	char mac[18];

	if (n->has_mac)
		cfg_mac_format(n->guest_mac, mac);
	/* Firecracker's NetworkInterfaceConfig: "mtu" is null when not given */
	return json_pack("{s:s, s:s?, s:s?, s:o, s:o, s:o}", "iface_id", n->iface_id,
	                 "host_dev_name", n->host_dev_name, "guest_mac", n->has_mac ? mac : NULL,
	                 "mtu", n->mtu ? json_integer(n->mtu) : json_null(), "rx_rate_limiter",
	                 rate_limiter_json(&n->rx_rate_limiter), "tx_rate_limiter",
	                 rate_limiter_json(&n->tx_rate_limiter));
}

static json_t *vsock_json(const struct vsock_cfg *v)
{
	if (!v->set)
		return json_null();
	return json_pack("{s:I, s:s?}", "guest_cid", (json_int_t)v->guest_cid, "uds_path",
	                 v->uds_path);
}

static json_t *entropy_json(const struct entropy_cfg *en)
{
	if (!en->set)
		return json_null();
	return json_pack("{s:o}", "rate_limiter", rate_limiter_json(&en->rate_limiter));
}

/* Firecracker always reports logger and metrics as null; kiln keeps them */
static json_t *logger_json(const struct logger_cfg *l)
{
	if (!l->set)
		return json_null();
	return json_pack("{s:s?, s:s, s:b, s:b, s:s?}", "log_path", l->log_path, "level",
	                 name_of(level_names, ARRAY_SIZE(level_names), l->level), "show_level",
	                 l->show_level, "show_log_origin", l->show_log_origin, "module", l->module);
}

static json_t *metrics_json(const struct metrics_cfg *m)
{
	if (!m->set)
		return json_null();
	return json_pack("{s:s?, s:b, s:O?}", "metrics_path", m->metrics_path, "emit_id",
	                 m->emit_id, "properties", m->properties);
}

/* json_array_append_new() steals `v` even when it fails */
static json_t *array_of(const void *items, size_t size, unsigned n,
                        json_t *(*one)(const void *item))
{
	json_t *a = json_array();

	for (unsigned i = 0; a && i < n; i++) {
		if (json_array_append_new(a, one((const char *)items + i * size)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *drive_one(const void *d)
{
	return drive_json(d);
}

static json_t *net_one(const void *n)
{
	return net_json(n);
}

json_t *cfg_to_json(const struct vm_config *c)
{
	/* "o" steals each reference and json_pack fails on a NULL one (out of memory) */
	return json_pack("{s:o, s:o, s:o, s:n, s:o, s:o, s:o, s:n, s:o, s:o, s:[], s:o, s:o}",
	                 "balloon", cfg_balloon_json(&c->balloon), "drives",
	                 array_of(c->drives, sizeof(c->drives[0]), c->nr_drives, drive_one),
	                 "boot-source", boot_source_json(c), "cpu-config", "logger",
	                 logger_json(&c->logger), "machine-config", machine_json(&c->machine),
	                 "metrics", metrics_json(&c->metrics), "memory-hotplug", "mmds-config",
	                 cfg_mmds_json(c), "network-interfaces",
	                 array_of(c->nets, sizeof(c->nets[0]), c->nr_nets, net_one), "pmem",
	                 "vsock", vsock_json(&c->vsock), "entropy", entropy_json(&c->entropy));
}
