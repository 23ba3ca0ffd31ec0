/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api/config: the VM's configuration as Firecracker defines it, and the
 * jansson parsers that build it. The same per-resource parsers serve the
 * `--config-file` JSON (keys boot-source, machine-config, drives, ...) and
 * the HTTP API bodies (PUT /boot-source, ...), so both accept exactly the
 * same documents and reject the same mistakes with the same messages.
 *
 * Strictness: unknown keys, wrong JSON types, missing required fields and
 * out-of-range values are errors (-EINVAL with a message in the errbuf).
 * Ownership: every string in a config is malloc'd and owned by it; free
 * with the matching *_free / vm_config_free.
 */
#ifndef KILN_API_CONFIG_H
#define KILN_API_CONFIG_H

#include "common/common.h"
#include "mmds/mmds.h"

#include <jansson.h>

#define CFG_ID_MAX          64 /* Firecracker ids: [A-Za-z0-9_]{1,64} */
#define CFG_MAX_DRIVES      16
#define CFG_MAX_NETS        8
#define CFG_MAX_VCPUS       32
#define CFG_DEFAULT_VCPUS   1
#define CFG_DEFAULT_MEM_MIB 128

struct token_bucket_cfg {
	bool set;                /* a limit applies (size and refill_time > 0) */
	uint64_t size;           /* tokens (bytes or ops) */
	uint64_t one_time_burst; /* extra tokens, used once */
	uint64_t refill_time_ms; /* time to refill `size` tokens */
};

struct rate_limiter_cfg {
	struct token_bucket_cfg bandwidth;
	struct token_bucket_cfg ops;
};

struct boot_source_cfg {
	char *kernel_image_path; /* required */
	char *initrd_path;       /* NULL if none */
	char *boot_args;         /* NULL: kiln's default command line */
};

/* machine-config.huge_pages: Firecracker's HugePageConfig */
enum huge_pages_cfg { HUGE_PAGES_NONE, HUGE_PAGES_2M, HUGE_PAGES_TRANSPARENT };

struct machine_cfg {
	unsigned vcpu_count;   /* 1..CFG_MAX_VCPUS, default 1 */
	uint64_t mem_size_mib; /* > 0, default 128 */
	bool smt;
	bool track_dirty_pages;
	/* a static CPU template ("C3", "T2", "T2S", "T2CL", "T2A"); NULL for none:
	 * Firecracker reports "None" as no template */
	char *cpu_template;
	bool cpu_template_set; /* the document named one, "None" included */
	enum huge_pages_cfg huge_pages;
};

enum cache_type_cfg { CACHE_UNSAFE, CACHE_WRITEBACK };
enum io_engine_cfg { IO_ENGINE_SYNC, IO_ENGINE_ASYNC };

struct drive_cfg {
	char drive_id[CFG_ID_MAX + 1];
	char *path_on_host;
	bool is_root_device;
	bool is_read_only;
	char *partuuid; /* NULL if none */
	enum cache_type_cfg cache_type;
	enum io_engine_cfg io_engine;
	struct rate_limiter_cfg rate_limiter;
};

struct net_cfg {
	char iface_id[CFG_ID_MAX + 1];
	char *host_dev_name;
	bool has_mac;
	uint8_t guest_mac[6];
	unsigned mtu; /* 68..65535, or 0 when not given (Firecracker's Option<u16>) */
	struct rate_limiter_cfg rx_rate_limiter;
	struct rate_limiter_cfg tx_rate_limiter;
};

struct vsock_cfg {
	bool set;
	uint32_t guest_cid; /* any, as Firecracker; 3 .. 0xfffffffe per virtio 1.2 s5.10.4 */
	char *uds_path;
};

struct entropy_cfg {
	bool set;
	struct rate_limiter_cfg rate_limiter;
};

/* "balloon" (PUT /balloon): Firecracker's Balloon; the hinting start's flag rides along */
struct balloon_cfg {
	bool set;
	uint32_t amount_mib; /* target; amount_mib * 256 fits 32 bits */
	bool deflate_on_oom;
	uint32_t stats_polling_interval_s; /* 0..65535; 0: no statistics */
	bool free_page_hinting, free_page_reporting;
	bool acknowledge_on_stop; /* PATCH /balloon/hinting/start only */
};

struct logger_cfg {
	bool set;
	char *log_path;
	int level; /* enum log_level; Info when not given */
	bool show_level;
	bool show_log_origin;
	char *module;
};

struct metrics_cfg {
	bool set;
	char *metrics_path;
	bool emit_id;       /* every line carries "id": the instance id */
	json_t *properties; /* NULL, or an object of strings every line carries (owned) */
};

/* "mmds-config" (PUT /mmds/config): the interfaces that answer at `ipv4` */
struct mmds_cfg {
	bool set;
	enum mmds_version version; /* V1 when not given */
	unsigned nr_ifaces;        /* >= 1, each id once */
	char ifaces[CFG_MAX_NETS][CFG_ID_MAX + 1];
	uint32_t ipv4; /* host order; link-local, MMDS_DEFAULT_IPV4 when not given */
	bool imds_compat;
};

struct vm_config {
	bool has_boot_source;
	struct boot_source_cfg boot_source;
	struct machine_cfg machine;
	struct drive_cfg drives[CFG_MAX_DRIVES];
	unsigned nr_drives;
	struct net_cfg nets[CFG_MAX_NETS];
	unsigned nr_nets;
	struct vsock_cfg vsock;
	struct entropy_cfg entropy;
	struct balloon_cfg balloon;
	struct logger_cfg logger;
	struct metrics_cfg metrics;
	struct mmds_cfg mmds;
};

/*
 * A config with Firecracker's defaults: 1 vCPU, 128 MiB, nothing attached,
 * logger level Info (used when a "logger" object gives no level).
 */
void vm_config_init(struct vm_config *c);
/* frees every string of `c` and leaves it as vm_config_init() does; idempotent */
void vm_config_free(struct vm_config *c);

/*
 * Parses a whole `--config-file` document into `c` (which must be freshly
 * initialised). Keys: boot-source (required), machine-config, drives,
 * network-interfaces, vsock, entropy, logger, metrics, mmds-config.
 * cpu-config is checked here (cfg_cpu_config_doc) and kept by the caller.
 * Firecracker keys kiln does not implement yet (memory-hotplug,
 * pmem) are refused by name unless null (or [] for pmem), which is what
 * cfg_to_json() writes for them; any other top-level key is ignored with a
 * warning, as Firecracker ignores it (keys inside a resource are refused).
 * Then cfg_validate(), and the root drive is moved first in `drives`, as
 * Firecracker orders its block devices (the root is always /dev/vda).
 * 0 / -EINVAL (or -ENOMEM) with a message; on error `c` is left initialised
 * and empty. Any thread; no global state.
 */
int cfg_parse_document(const char *text, size_t len, struct vm_config *c, struct errbuf *e);

/*
 * Cross-resource rules over a whole config: at most one root drive, unique
 * drive_ids, iface_ids, guest MACs and host_dev_names, counts within
 * CFG_MAX_*, and mmds-config naming only configured interfaces. Shared
 * with the HTTP API (check a copy with the new device added). 0 / -EINVAL
 * with a message naming the offending entry.
 */
int cfg_validate(const struct vm_config *c, struct errbuf *e);

/* Firecracker's BlockBuilder keeps the root device first: it becomes /dev/vda */
void cfg_root_drive_first(struct vm_config *c);

/*
 * Per-resource parsers over an already-parsed JSON object (an HTTP body or
 * one value of the config file); shared with the HTTP API. Each builds the
 * resource from its own defaults and the fields present; on success it
 * overwrites `out` (which must own no strings), on error `out` is untouched
 * and nothing leaks. 0 / -EINVAL with a message naming the field, e.g.
 * `drive.drive_id must be a string` (the config file says `drives[1]....`).
 * A JSON null in an optional field means "absent", as Firecracker's
 * Option<> fields do.
 */
int cfg_parse_boot_source(json_t *j, struct boot_source_cfg *out, struct errbuf *e);
int cfg_parse_machine(json_t *j, struct machine_cfg *out, struct errbuf *e);
int cfg_parse_drive(json_t *j, struct drive_cfg *out, struct errbuf *e);
int cfg_parse_net(json_t *j, struct net_cfg *out, struct errbuf *e);
int cfg_parse_vsock(json_t *j, struct vsock_cfg *out, struct errbuf *e);
int cfg_parse_entropy(json_t *j, struct entropy_cfg *out, struct errbuf *e);
int cfg_parse_logger(json_t *j, struct logger_cfg *out, struct errbuf *e);
int cfg_parse_metrics(json_t *j, struct metrics_cfg *out, struct errbuf *e);
/* MmdsConfig; whether the interfaces exist is cfg_validate()'s to check */
int cfg_parse_mmds(json_t *j, struct mmds_cfg *out, struct errbuf *e);
/*
 * A bucket whose size or refill_time is 0 is accepted and left unset
 * (`set` false): Firecracker treats it as "no limit" and does not report it.
 */
int cfg_parse_rate_limiter(json_t *j, struct rate_limiter_cfg *out, struct errbuf *e);

/* [A-Za-z0-9_]{1,64} */
bool cfg_id_valid(const char *id);

/*
 * "xx:xx:xx:xx:xx:xx", two hex digits (either case) per byte, as
 * Firecracker's MacAddr; any address is accepted (multicast too, as there).
 * 0 / -EINVAL (no message: callers name the field).
 */
int cfg_mac_parse(const char *s, uint8_t mac[6]);
/* lower-case "xx:xx:xx:xx:xx:xx" into buf[18] */
void cfg_mac_format(const uint8_t mac[6], char buf[18]);

/*
 * The whole configuration as Firecracker's GET /vm/config document
 * (FullVmConfiguration): balloon, drives, boot-source, cpu-config, logger,
 * machine-config, metrics, mmds-config, network-interfaces, vsock, entropy,
 * memory-hotplug, pmem. Unset objects are null. Unlike Firecracker, logger and
 * metrics are reported when set, so cfg_parse_document(cfg_to_json(c))
 * rebuilds `c` exactly. New reference, or NULL when out of memory.
 */
json_t *cfg_to_json(const struct vm_config *c);

/* free the strings a resource owns and NULL them; other fields untouched; idempotent */
void boot_source_cfg_free(struct boot_source_cfg *b);
void machine_cfg_free(struct machine_cfg *m);
void drive_cfg_free(struct drive_cfg *d);
void net_cfg_free(struct net_cfg *n);
void vsock_cfg_free(struct vsock_cfg *v);
void logger_cfg_free(struct logger_cfg *l);
void metrics_cfg_free(struct metrics_cfg *m);

#endif
