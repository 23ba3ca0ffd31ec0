// SPDX-License-Identifier: Apache-2.0
/*
 * api/parse_devices.c: the device bodies. PUT /drives/{drive_id} and PUT
 * /network-interfaces/{iface_id} take the same Drive / NetworkInterface
 * documents as --config-file (cfg_parse_drive, cfg_parse_net); their PATCH
 * forms take Firecracker's PartialDrive (drive_id, path_on_host,
 * rate_limiter) and PartialNetworkInterface (iface_id, rx_rate_limiter,
 * tx_rate_limiter). In every case the body's id must equal the path's, as
 * in Firecracker's request/drive.rs and request/net.rs. PUT /serial takes
 * Firecracker's SerialDevice.
 */
#include "api/config_int.h"
#include "api/parse_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* the buckets a PATCHed RateLimiter object (or NULL) names, null meaning absent */
static struct rl_given rl_given_in(json_t *rl)
{
	return (struct rl_given){.bandwidth = rl && api_json_present(rl, "bandwidth"),
	                         .ops = rl && api_json_present(rl, "ops")};
}

int api_parse_drive_put(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	struct drive_cfg d;
	int ret = cfg_parse_drive(body, &d, e);

	if (ret < 0)
		return ret;
	if (strcmp(d.drive_id, id) != 0) {
		drive_cfg_free(&d);
		return errf(e, EINVAL, API_MSG_ID_MISMATCH);
	}
	a->u.drive = d;
	return 0;
}

static const struct cfg_field drive_patch_fields[] = {
        {.name = "drive_id",
         .kind = CFG_ID,
         .required = true,
         .off = offsetof(struct drive_patch, drive_id)},
        {.name = "path_on_host",
         .kind = CFG_PATH,
         .off = offsetof(struct drive_patch, path_on_host)},
        {.name = "rate_limiter",
         .kind = CFG_CUSTOM,
         .off = offsetof(struct drive_patch, rate_limiter),
         .parse = cfg_rate_limiter_at},
};

/* PATCH /drives/{drive_id}: PartialDrive */
int api_parse_drive_patch(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	struct drive_patch p = {0};
	int ret = cfg_fields_parse(body, "drive", drive_patch_fields,
	                           ARRAY_SIZE(drive_patch_fields), &p, e);

	if (ret == 0 && strcmp(p.drive_id, id) != 0)
		ret = errf(e, EINVAL, API_MSG_ID_MISMATCH);
	if (ret < 0) {
		free(p.path_on_host);
		return ret;
	}
	p.has_rate_limiter = api_json_present(body, "rate_limiter");
	p.given = rl_given_in(json_object_get(body, "rate_limiter"));
	a->u.drive_patch = p;
	return 0;
}

int api_parse_net_put(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	struct net_cfg n;
	int ret = cfg_parse_net(body, &n, e);

	if (ret < 0)
		return ret;
	if (strcmp(n.iface_id, id) != 0) {
		net_cfg_free(&n);
		return errf(e, EINVAL, API_MSG_ID_MISMATCH);
	}
	a->u.net = n;
	return 0;
}

static const struct cfg_field net_patch_fields[] = {
        {.name = "iface_id",
         .kind = CFG_ID,
         .required = true,
         .off = offsetof(struct net_patch, iface_id)},
        {.name = "rx_rate_limiter",
         .kind = CFG_CUSTOM,
         .off = offsetof(struct net_patch, rx_rate_limiter),
         .parse = cfg_rate_limiter_at},
        {.name = "tx_rate_limiter",
         .kind = CFG_CUSTOM,
         .off = offsetof(struct net_patch, tx_rate_limiter),
         .parse = cfg_rate_limiter_at},
};

/* PATCH /network-interfaces/{iface_id}: PartialNetworkInterface */
int api_parse_net_patch(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	struct net_patch p = {0};
	int ret = cfg_fields_parse(body, "network-interface", net_patch_fields,
	                           ARRAY_SIZE(net_patch_fields), &p, e);

	if (ret == 0 && strcmp(p.iface_id, id) != 0)
		ret = errf(e, EINVAL, API_MSG_ID_MISMATCH);
	if (ret < 0)
		return ret;
	p.has_rx = api_json_present(body, "rx_rate_limiter");
	p.has_tx = api_json_present(body, "tx_rate_limiter");
	p.rx_given = rl_given_in(json_object_get(body, "rx_rate_limiter"));
	p.tx_given = rl_given_in(json_object_get(body, "tx_rate_limiter"));
	a->u.net_patch = p;
	return 0;
}

int api_parse_vsock(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_parse_vsock(body, &a->u.vsock, e);
}

int api_parse_entropy(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_parse_entropy(body, &a->u.entropy, e);
}

static const struct cfg_field serial_fields[] = {
        {.name = "serial_out_path",
         .kind = CFG_PATH,
         .off = offsetof(struct serial_req, serial_out_path)},
        {.name = "rate_limiter",
         .kind = CFG_CUSTOM,
         .off = offsetof(struct serial_req, rate_limiter),
         .parse = cfg_bucket_at},
};

/* PUT /serial: Firecracker's SerialDevice {serial_out_path, rate_limiter} */
int api_parse_serial(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	struct serial_req s = {0};
	int ret = cfg_fields_parse(body, "serial", serial_fields, ARRAY_SIZE(serial_fields), &s, e);

	(void)id;
	if (ret < 0) {
		free(s.serial_out_path);
		return ret;
	}
	a->u.serial = s;
	return 0;
}
