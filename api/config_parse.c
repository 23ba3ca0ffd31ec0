// SPDX-License-Identifier: Apache-2.0
/*
 * api/config_parse.c: the field tables of the resources Firecracker's
 * swagger defines (src/firecracker/swagger/
 * firecracker.yaml: BootSource, MachineConfiguration, Drive,
 * NetworkInterface, Vsock, EntropyDevice, Logger, Metrics, RateLimiter,
 * TokenBucket). Each resource is a const table of (name, kind, required,
 * offset, range); cfg_fields_parse() (config_field.c) applies it, then a
 * few lines check what a table cannot say.
 */
#include "api/config_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

_Static_assert(sizeof(enum cache_type_cfg) == sizeof(int), "CFG_ENUM stores an int");
_Static_assert(sizeof(enum io_engine_cfg) == sizeof(int), "CFG_ENUM stores an int");
_Static_assert(sizeof(enum huge_pages_cfg) == sizeof(int), "CFG_ENUM stores an int");
_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "CFG_U32 stores vcpu_count");

const char *const cfg_cache_type_names[2] = {
        [CACHE_UNSAFE] = "Unsafe", [CACHE_WRITEBACK] = "Writeback"};
const char *const cfg_io_engine_names[2] = {[IO_ENGINE_SYNC] = "Sync", [IO_ENGINE_ASYNC] = "Async"};
const char *const cfg_huge_pages_names[3] = {[HUGE_PAGES_NONE] = "None",
                                             [HUGE_PAGES_2M] = "2M",
                                             [HUGE_PAGES_TRANSPARENT] = "Transparent"};

#define F(n, k, req, type, member)                                                                 \
	.name = n, .kind = k, .required = req, .off = offsetof(type, member)
#define ENUM_NAMES(a) .names = a, .nr_names = ARRAY_SIZE(a)

/* ------------------------------------------------------------ rate limiter */

/* TokenBucket: refill_time and size required, all three int64 >= 0 */
static const struct cfg_field bucket_fields[] = {
        {F("size", CFG_U64, true, struct token_bucket_cfg, size), .max = INT64_MAX},
        {F("one_time_burst", CFG_U64, false, struct token_bucket_cfg, one_time_burst),
         .max = INT64_MAX},
        {F("refill_time", CFG_U64, true, struct token_bucket_cfg, refill_time_ms),
         .max = INT64_MAX},
};

int cfg_bucket_at(json_t *j, void *slot, const char *where, struct errbuf *e)
{
	struct token_bucket_cfg b = {0};
	int ret = cfg_fields_parse(j, where, bucket_fields, ARRAY_SIZE(bucket_fields), &b, e);
	if (ret < 0)
		return ret;
	/* Firecracker's TokenBucket::new() gives no bucket for a 0 size or refill time */
	b.set = b.size && b.refill_time_ms;
	*(struct token_bucket_cfg *)slot = b.set ? b : (struct token_bucket_cfg){0};
	return 0;
}

static const struct cfg_field rate_limiter_fields[] = {
        {F("bandwidth", CFG_CUSTOM, false, struct rate_limiter_cfg, bandwidth),
         .parse = cfg_bucket_at},
        {F("ops", CFG_CUSTOM, false, struct rate_limiter_cfg, ops), .parse = cfg_bucket_at},
};

int cfg_rate_limiter_at(json_t *j, void *slot, const char *where, struct errbuf *e)
{
	struct rate_limiter_cfg rl = {0};
	int ret = cfg_fields_parse(j, where, rate_limiter_fields, ARRAY_SIZE(rate_limiter_fields),
	                           &rl, e);
	if (ret == 0)
		*(struct rate_limiter_cfg *)slot = rl;
	return ret;
}

int cfg_parse_rate_limiter(json_t *j, struct rate_limiter_cfg *out, struct errbuf *e)
{
	return cfg_rate_limiter_at(j, out, "rate_limiter", e);
}

/* ------------------------------------------------------------- boot source */

static const struct cfg_field boot_source_fields[] = {
        {F("kernel_image_path", CFG_PATH, true, struct boot_source_cfg, kernel_image_path)},
        {F("initrd_path", CFG_PATH, false, struct boot_source_cfg, initrd_path)},
        {F("boot_args", CFG_STR, false, struct boot_source_cfg, boot_args)},
};

int cfg_boot_source_at(json_t *j, const char *where, struct boot_source_cfg *out, struct errbuf *e)
{
	struct boot_source_cfg b = {0};
	int ret = cfg_fields_parse(j, where, boot_source_fields, ARRAY_SIZE(boot_source_fields), &b,
	                           e);
	if (ret < 0) {
		boot_source_cfg_free(&b);
		return ret;
	}
	*out = b;
	return 0;
}

/* ---------------------------------------------------------- machine config */

static const struct cfg_field machine_fields[] = {
        {F("vcpu_count", CFG_U32, true, struct machine_cfg, vcpu_count), .min = 1,
         .max = CFG_MAX_VCPUS},
        /* > 0; 1 TiB is a sanity bound, the memory module checks the host */
        {F("mem_size_mib", CFG_U64, true, struct machine_cfg, mem_size_mib), .min = 1,
         .max = 1u << 20},
        {F("smt", CFG_BOOL, false, struct machine_cfg, smt)},
        {F("track_dirty_pages", CFG_BOOL, false, struct machine_cfg, track_dirty_pages)},
        {F("cpu_template", CFG_STR, false, struct machine_cfg, cpu_template)},
        {F("huge_pages", CFG_ENUM, false, struct machine_cfg, huge_pages),
         ENUM_NAMES(cfg_huge_pages_names)},
};

static int machine_check(struct machine_cfg *m, const char *where, struct errbuf *e)
{
	if (m->cpu_template) {
		if (cfg_cpu_template_check(m->cpu_template, where, e) < 0)
			return -EINVAL;
		m->cpu_template_set = true;
	}
	/* Firecracker maps the "None" template to no template at all */
	if (m->cpu_template && strcmp(m->cpu_template, "None") == 0) {
		free(m->cpu_template);
		m->cpu_template = NULL;
	}
	/* Firecracker's VmConfig::update(): with SMT, 1 or an even count */
	if (m->smt && m->vcpu_count > 1 && m->vcpu_count % 2)
		return errf(
		        e, EINVAL,
		        "%s.vcpu_count must be 1 or an even number when smt is enabled (got %u)",
		        where, m->vcpu_count);
	if (m->huge_pages == HUGE_PAGES_2M && m->mem_size_mib % 2)
		return errf(e, EINVAL,
		            "%s.mem_size_mib must be a multiple of 2 with huge_pages \"2M\" "
		            "(got %llu)",
		            where, (unsigned long long)m->mem_size_mib);
	return 0;
}

int cfg_machine_at(json_t *j, const char *where, struct machine_cfg *out, struct errbuf *e)
{
	struct machine_cfg m = {.vcpu_count = CFG_DEFAULT_VCPUS,
	                        .mem_size_mib = CFG_DEFAULT_MEM_MIB};
	int ret = cfg_fields_parse(j, where, machine_fields, ARRAY_SIZE(machine_fields), &m, e);
	if (ret == 0)
		ret = machine_check(&m, where, e);
	if (ret < 0) {
		machine_cfg_free(&m);
		return ret;
	}
	*out = m;
	return 0;
}

/* ------------------------------------------------------------------ drives */

static const struct cfg_field drive_fields[] = {
        {F("drive_id", CFG_ID, true, struct drive_cfg, drive_id)},
        {F("path_on_host", CFG_PATH, true, struct drive_cfg, path_on_host)},
        {F("is_root_device", CFG_BOOL, true, struct drive_cfg, is_root_device)},
        {F("is_read_only", CFG_BOOL, false, struct drive_cfg, is_read_only)},
        {F("partuuid", CFG_STR, false, struct drive_cfg, partuuid)},
        {F("cache_type", CFG_ENUM, false, struct drive_cfg, cache_type),
         ENUM_NAMES(cfg_cache_type_names)},
        {F("io_engine", CFG_ENUM, false, struct drive_cfg, io_engine),
         ENUM_NAMES(cfg_io_engine_names)},
        {F("rate_limiter", CFG_CUSTOM, false, struct drive_cfg, rate_limiter),
         .parse = cfg_rate_limiter_at},
        {.name = "socket", .kind = CFG_REJECT, .reject = "vhost-user drives are not supported"},
};

/* the partuuid ends up in the kernel command line (root=PARTUUID=...) */
static bool partuuid_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			return false;
	return true;
}

int cfg_drive_at(json_t *j, const char *where, struct drive_cfg *out, struct errbuf *e)
{
	struct drive_cfg d = {0};
	int ret = cfg_fields_parse(j, where, drive_fields, ARRAY_SIZE(drive_fields), &d, e);
	if (ret == 0 && d.partuuid && !partuuid_valid(d.partuuid))
		ret = errf(e, EINVAL,
		           "%s.partuuid must be 1 to 64 printable characters without spaces",
		           where);
	if (ret < 0) {
		drive_cfg_free(&d);
		return ret;
	}
	*out = d;
	return 0;
}

/* ------------------------------------------------------ network interfaces */

static int parse_mac(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct net_cfg *n = slot;
	const char *s = json_string_value(v);

	if (!s)
		return errf(e, EINVAL, "%s must be a string", where);
	if (cfg_mac_parse(s, n->guest_mac) < 0)
		return errf(e, EINVAL, "%s \"%.64s\" is not a MAC address like 06:00:ac:10:00:02",
		            where, s);
	n->has_mac = true;
	return 0;
}

static const struct cfg_field net_fields[] = {
        {F("iface_id", CFG_ID, true, struct net_cfg, iface_id)},
        {F("host_dev_name", CFG_STR, true, struct net_cfg, host_dev_name)},
        {.name = "guest_mac", .kind = CFG_CUSTOM, .parse = parse_mac}, /* slot: the net_cfg */
        {F("rx_rate_limiter", CFG_CUSTOM, false, struct net_cfg, rx_rate_limiter),
         .parse = cfg_rate_limiter_at},
        {F("tx_rate_limiter", CFG_CUSTOM, false, struct net_cfg, tx_rate_limiter),
         .parse = cfg_rate_limiter_at},
        /* Firecracker's range (NetError::InvalidMtu); absent or null: not given */
        {F("mtu", CFG_U32, false, struct net_cfg, mtu), .min = 68, .max = 65535},
};

/* Linux dev_valid_name() (net/core/dev.c): < IFNAMSIZ, not . or .., no '/', ':' or space */
static bool ifname_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= 16 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

int cfg_net_at(json_t *j, const char *where, struct net_cfg *out, struct errbuf *e)
{
	struct net_cfg n = {0};
	int ret = cfg_fields_parse(j, where, net_fields, ARRAY_SIZE(net_fields), &n, e);
	if (ret == 0 && !ifname_valid(n.host_dev_name))
		ret = errf(e, EINVAL,
		           "%s.host_dev_name \"%.64s\" is not a valid interface name (1 to 15 "
		           "characters, no '/', ':' or spaces)",
		           where, n.host_dev_name);
	if (ret < 0) {
		net_cfg_free(&n);
		return ret;
	}
	*out = n;
	return 0;
}

/* ------------------------------------------------- vsock, entropy, metrics */

static const struct cfg_field vsock_fields[] = {
        /* virtio 1.2 s5.10.4: CIDs 0, 1, 2 and 0xffffffff are reserved */
        /* any u32, as Firecracker's VsockDeviceConfig (the device warns about reserved ones) */
        {F("guest_cid", CFG_U32, true, struct vsock_cfg, guest_cid), .max = 0xffffffff},
        {F("uds_path", CFG_PATH, true, struct vsock_cfg, uds_path)},
        {.name = "vsock_id", .kind = CFG_IGNORE}, /* deprecated, accepted and ignored */
};

int cfg_vsock_at(json_t *j, const char *where, struct vsock_cfg *out, struct errbuf *e)
{
	struct vsock_cfg v = {.set = true};
	int ret = cfg_fields_parse(j, where, vsock_fields, ARRAY_SIZE(vsock_fields), &v, e);
	if (ret == 0 && strlen(v.uds_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		ret = errf(e, EINVAL,
		           "%s.uds_path is too long for a unix socket (%zu bytes, max %zu)", where,
		           strlen(v.uds_path), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (ret < 0) {
		vsock_cfg_free(&v);
		return ret;
	}
	*out = v;
	return 0;
}

static const struct cfg_field entropy_fields[] = {
        {F("rate_limiter", CFG_CUSTOM, false, struct entropy_cfg, rate_limiter),
         .parse = cfg_rate_limiter_at},
};

int cfg_entropy_at(json_t *j, const char *where, struct entropy_cfg *out, struct errbuf *e)
{
	struct entropy_cfg en = {.set = true};
	int ret = cfg_fields_parse(j, where, entropy_fields, ARRAY_SIZE(entropy_fields), &en, e);
	if (ret == 0)
		*out = en;
	return ret;
}

/* Metrics.properties: an object whose values are strings (Firecracker's BTreeMap<String, String>)
 */
static int parse_properties(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	json_t **out = slot, *val;
	const char *key;

	if (!json_is_object(v))
		return errf(e, EINVAL, "%s must be an object of strings", where);
	json_object_foreach(v, key, val)
	{
		if (!json_is_string(val))
			return errf(e, EINVAL, "%s.%.64s must be a string", where, key);
	}
	*out = json_deep_copy(v);
	return *out ? 0 : errf(e, ENOMEM, "out of memory");
}

/* Firecracker's Metrics: the path, emit_id and properties (its swagger's) */
static const struct cfg_field metrics_fields[] = {
        {F("metrics_path", CFG_PATH, true, struct metrics_cfg, metrics_path)},
        {F("emit_id", CFG_BOOL, false, struct metrics_cfg, emit_id)},
        {F("properties", CFG_CUSTOM, false, struct metrics_cfg, properties),
         .parse = parse_properties},
};

int cfg_metrics_at(json_t *j, const char *where, struct metrics_cfg *out, struct errbuf *e)
{
	struct metrics_cfg m = {.set = true};
	int ret = cfg_fields_parse(j, where, metrics_fields, ARRAY_SIZE(metrics_fields), &m, e);
	if (ret < 0) {
		metrics_cfg_free(&m);
		return ret;
	}
	*out = m;
	return 0;
}

/* ------------------------------------------------------------------ logger */

/* Logger.level: Error, Warning, Info, Debug, Trace, Off, case-insensitive */
static int parse_level(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	enum log_level l;
	const char *s = json_string_value(v);

	if (!s)
		return errf(e, EINVAL, "%s must be a string", where);
	if (log_level_parse(s, &l) < 0)
		return errf(e, EINVAL,
		            "%s must be one of \"Error\", \"Warning\", \"Info\", \"Debug\", "
		            "\"Trace\", \"Off\" (got \"%.64s\")",
		            where, s);
	*(int *)slot = (int)l;
	return 0;
}

static const struct cfg_field logger_fields[] = {
        {F("log_path", CFG_PATH, false, struct logger_cfg, log_path)},
        {F("level", CFG_CUSTOM, false, struct logger_cfg, level), .parse = parse_level},
        {F("show_level", CFG_BOOL, false, struct logger_cfg, show_level)},
        {F("show_log_origin", CFG_BOOL, false, struct logger_cfg, show_log_origin)},
        {F("module", CFG_STR, false, struct logger_cfg, module)},
};

int cfg_logger_at(json_t *j, const char *where, struct logger_cfg *out, struct errbuf *e)
{
	struct logger_cfg l = {.set = true, .level = LOG_INFO}; /* swagger: default Info */
	int ret = cfg_fields_parse(j, where, logger_fields, ARRAY_SIZE(logger_fields), &l, e);
	if (ret < 0) {
		logger_cfg_free(&l);
		return ret;
	}
	*out = l;
	return 0;
}

/* ----------------------------------------------- the public entry points */

int cfg_parse_boot_source(json_t *j, struct boot_source_cfg *out, struct errbuf *e)
{
	return cfg_boot_source_at(j, "boot-source", out, e);
}

int cfg_parse_machine(json_t *j, struct machine_cfg *out, struct errbuf *e)
{
	return cfg_machine_at(j, "machine-config", out, e);
}

int cfg_parse_drive(json_t *j, struct drive_cfg *out, struct errbuf *e)
{
	return cfg_drive_at(j, "drive", out, e);
}

int cfg_parse_net(json_t *j, struct net_cfg *out, struct errbuf *e)
{
	return cfg_net_at(j, "network-interface", out, e);
}

int cfg_parse_vsock(json_t *j, struct vsock_cfg *out, struct errbuf *e)
{
	return cfg_vsock_at(j, "vsock", out, e);
}

int cfg_parse_entropy(json_t *j, struct entropy_cfg *out, struct errbuf *e)
{
	return cfg_entropy_at(j, "entropy", out, e);
}

int cfg_parse_logger(json_t *j, struct logger_cfg *out, struct errbuf *e)
{
	return cfg_logger_at(j, "logger", out, e);
}

int cfg_parse_metrics(json_t *j, struct metrics_cfg *out, struct errbuf *e)
{
	return cfg_metrics_at(j, "metrics", out, e);
}
