/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api/config_int.h: private to api/config*.c. The table-driven field walker
 * every resource parser uses, and the location-aware parsers behind the
 * public cfg_parse_*() (the config file names a drive "drives[1]", an HTTP
 * body names it "drive"; the rest of each message is the same).
 */
#ifndef KILN_API_CONFIG_INT_H
#define KILN_API_CONFIG_INT_H

#include "api/config.h"

/* room for a field's full location, e.g. "network-interfaces[7].rx_rate_limiter.ops" */
#define CFG_WHERE_MAX 128

enum cfg_kind {
	CFG_STR,    /* char *, malloc'd copy; may be "" */
	CFG_PATH,   /* char *, malloc'd copy; must not be "" */
	CFG_ID,     /* char[CFG_ID_MAX + 1], cfg_id_valid() */
	CFG_BOOL,   /* bool */
	CFG_U64,    /* uint64_t in [min, max] */
	CFG_U32,    /* uint32_t (or unsigned) in [min, max] */
	CFG_ENUM,   /* int-sized enum: index of the value in names[] */
	CFG_CUSTOM, /* parse(value, slot, location, e) */
	CFG_IGNORE, /* type-checked as a string, then dropped (deprecated fields) */
	CFG_REJECT, /* present and not null / [] -> the `reject` message */
};

struct cfg_field {
	const char *name;
	enum cfg_kind kind;
	bool required;
	size_t off; /* of the slot in the struct being filled */
	uint64_t min, max;
	const char *const *names; /* CFG_ENUM */
	unsigned nr_names;
	bool icase; /* CFG_ENUM: compare case-insensitively */
	int (*parse)(json_t *v, void *slot, const char *where, struct errbuf *e);
	const char *reject; /* CFG_REJECT: the whole message */
};

/*
 * Checks that `obj` is an object whose keys are all in `tab`, with the
 * right JSON types and ranges, that every required field is there, and
 * stores each value at base + field->off. `where` names the object in
 * messages. On error the strings already stored stay in `base` for the
 * caller to free. 0 / -EINVAL / -ENOMEM with a message.
 */
int cfg_fields_parse(json_t *obj, const char *where, const struct cfg_field *tab, size_t n,
                     void *base, struct errbuf *e);

/*
 * An array of at most `max` objects at `where`, each handed in order to
 * item(value, i, "<where>[i]", ctx, e). *nr is set to i + 1 before item i
 * is parsed, so that the caller also frees the strings of an item refused
 * half-way. 0 / the item's error / -EINVAL with a message.
 */
typedef int (*cfg_item_fn)(json_t *v, unsigned i, const char *where, void *ctx, struct errbuf *e);
int cfg_list_parse(json_t *v, const char *where, unsigned max, unsigned *nr, cfg_item_fn item,
                   void *ctx, struct errbuf *e);

/* "<where>.<name>" into buf[CFG_WHERE_MAX] (truncated if ever too long) */
const char *cfg_where(char *buf, const char *where, const char *name);

/* the public parsers, with the location used in messages */
int cfg_boot_source_at(json_t *j, const char *where, struct boot_source_cfg *out, struct errbuf *e);
int cfg_machine_at(json_t *j, const char *where, struct machine_cfg *out, struct errbuf *e);
int cfg_drive_at(json_t *j, const char *where, struct drive_cfg *out, struct errbuf *e);
int cfg_net_at(json_t *j, const char *where, struct net_cfg *out, struct errbuf *e);
int cfg_vsock_at(json_t *j, const char *where, struct vsock_cfg *out, struct errbuf *e);
int cfg_entropy_at(json_t *j, const char *where, struct entropy_cfg *out, struct errbuf *e);
int cfg_logger_at(json_t *j, const char *where, struct logger_cfg *out, struct errbuf *e);
int cfg_metrics_at(json_t *j, const char *where, struct metrics_cfg *out, struct errbuf *e);
/* parse_balloon.c: Balloon, and its GET /vm/config form (null when unset) */
/*
 * machine-config's cpu_template (api/parse_cpu.c): 0 for one of
 * Firecracker's names ("C3", "T2", "T2S", "T2CL", "T2A", "None"), else
 * -EINVAL naming them.
 */
int cfg_cpu_template_check(const char *name, const char *where, struct errbuf *e);
int cfg_balloon_at(json_t *j, const char *where, struct balloon_cfg *out, struct errbuf *e);
json_t *cfg_balloon_json(const struct balloon_cfg *b);
int cfg_mmds_at(json_t *j, const char *where, struct mmds_cfg *out, struct errbuf *e);
/* config_mmds.c: mmds-config's interfaces exist; its GET /vm/config form (NULL: no memory) */
int cfg_validate_mmds(const struct vm_config *c, struct errbuf *e);
json_t *cfg_mmds_json(const struct vm_config *c);
/* CFG_CUSTOM-shaped: slot is a struct token_bucket_cfg (Firecracker's TokenBucket) */
int cfg_bucket_at(json_t *j, void *slot, const char *where, struct errbuf *e);
/* CFG_CUSTOM-shaped: slot is a struct rate_limiter_cfg */
int cfg_rate_limiter_at(json_t *j, void *slot, const char *where, struct errbuf *e);

/* Firecracker's names, shared by the parsers and cfg_to_json() */
extern const char *const cfg_cache_type_names[2];
extern const char *const cfg_io_engine_names[2];
extern const char *const cfg_huge_pages_names[3];
extern const char *const cfg_mmds_version_names[2];

#endif
