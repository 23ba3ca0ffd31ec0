// SPDX-License-Identifier: Apache-2.0
/*
 * api/parse_balloon.c: Firecracker's balloon documents -- Balloon (PUT
 * /balloon and the config file's "balloon" key, also written back by GET
 * /vm/config), BalloonUpdate (PATCH /balloon), BalloonStatsUpdate (PATCH
 * /balloon/statistics) and BalloonStartCmd (PATCH /balloon/hinting/start,
 * whose body is optional). Unknown fields are refused, as serde's
 * deny_unknown_fields there.
 */
#include "api/config_int.h"
#include "api/parse_int.h"

#include <errno.h>
#include <stddef.h>

/* amount_mib * 256 pages must fit the device's 32-bit num_pages */
#define BALLOON_MAX_MIB (UINT32_MAX / 256)

static const struct cfg_field balloon_fields[] = {
        {.name = "amount_mib",
         .kind = CFG_U32,
         .required = true,
         .off = offsetof(struct balloon_cfg, amount_mib),
         .max = BALLOON_MAX_MIB},
        {.name = "deflate_on_oom",
         .kind = CFG_BOOL,
         .required = true,
         .off = offsetof(struct balloon_cfg, deflate_on_oom)},
        {.name = "stats_polling_interval_s",
         .kind = CFG_U32,
         .off = offsetof(struct balloon_cfg, stats_polling_interval_s),
         .max = UINT16_MAX},
        {.name = "free_page_hinting",
         .kind = CFG_BOOL,
         .off = offsetof(struct balloon_cfg, free_page_hinting)},
        {.name = "free_page_reporting",
         .kind = CFG_BOOL,
         .off = offsetof(struct balloon_cfg, free_page_reporting)},
};

int cfg_balloon_at(json_t *j, const char *where, struct balloon_cfg *out, struct errbuf *e)
{
	struct balloon_cfg b = {.set = true};
	int ret = cfg_fields_parse(j, where, balloon_fields, ARRAY_SIZE(balloon_fields), &b, e);
	if (ret == 0)
		*out = b;
	return ret;
}

json_t *cfg_balloon_json(const struct balloon_cfg *b)
{
	if (!b->set)
		return json_null();
	return json_pack("{s:I, s:b, s:I, s:b, s:b}", "amount_mib", (json_int_t)b->amount_mib,
	                 "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
	                 (json_int_t)b->stats_polling_interval_s, "free_page_hinting",
	                 b->free_page_hinting, "free_page_reporting", b->free_page_reporting);
}

int api_parse_balloon_put(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_balloon_at(body, "balloon", &a->u.balloon, e);
}

static const struct cfg_field update_fields[] = {
        {.name = "amount_mib",
         .kind = CFG_U32,
         .required = true,
         .off = offsetof(struct balloon_cfg, amount_mib),
         .max = BALLOON_MAX_MIB},
};

int api_parse_balloon_patch(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_fields_parse(body, "balloon", update_fields, ARRAY_SIZE(update_fields),
	                        &a->u.balloon, e);
}

static const struct cfg_field stats_fields[] = {
        {.name = "stats_polling_interval_s",
         .kind = CFG_U32,
         .required = true,
         .off = offsetof(struct balloon_cfg, stats_polling_interval_s),
         .max = UINT16_MAX},
};

int api_parse_balloon_stats_patch(json_t *body, const char *id, struct api_action *a,
                                  struct errbuf *e)
{
	(void)id;
	return cfg_fields_parse(body, "balloon_stats", stats_fields, ARRAY_SIZE(stats_fields),
	                        &a->u.balloon, e);
}

static const struct cfg_field start_fields[] = {
        {.name = "acknowledge_on_stop",
         .kind = CFG_BOOL,
         .off = offsetof(struct balloon_cfg, acknowledge_on_stop)},
};

/* BalloonStartCmd; Firecracker's default for acknowledge_on_stop is true */
int api_parse_balloon_hint_start(json_t *body, const char *id, struct api_action *a,
                                 struct errbuf *e)
{
	(void)id;
	a->u.balloon.acknowledge_on_stop = true;
	return cfg_fields_parse(body, "balloon_hinting", start_fields, ARRAY_SIZE(start_fields),
	                        &a->u.balloon, e);
}

/* no fields: Firecracker ignores the body ("{}" in its docs) */
int api_parse_balloon_hint_stop(json_t *body, const char *id, struct api_action *a,
                                struct errbuf *e)
{
	(void)id;
	return cfg_fields_parse(body, "balloon_hinting", NULL, 0, &a->u.balloon, e);
}
