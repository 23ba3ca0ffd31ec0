// SPDX-License-Identifier: Apache-2.0
/*
 * api/parse_mmds.c: the bodies of PUT and PATCH /mmds (any JSON value, as
 * Firecracker deserialises them into a serde Value: the VMM thread's data
 * store decides what fits) and PUT /mmds/config (MmdsConfig, whose
 * interface list the VMM thread checks against the configured ones).
 */
#include "api/parse_int.h"

int api_parse_mmds_data(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	(void)e;
	a->u.mmds_data = json_incref(body);
	return 0;
}

int api_parse_mmds_config(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_parse_mmds(body, &a->u.mmds_config, e);
}
