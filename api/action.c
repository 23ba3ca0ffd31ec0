// SPDX-License-Identifier: Apache-2.0
/*
 * api/action.c: what every user of `struct api_action` shares: the action
 * names (log lines and metrics keys), releasing what a parser allocated,
 * the request counters and the error body.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

struct api_stats api_stats;

static const char *const names[API_ACTION_COUNT] = {
        [API_GET_INFO] = "GET /",
        [API_GET_VERSION] = "GET /version",
        [API_GET_VM_CONFIG] = "GET /vm/config",
        [API_GET_MACHINE_CONFIG] = "GET /machine-config",
        [API_PUT_BOOT_SOURCE] = "PUT /boot-source",
        [API_PUT_MACHINE_CONFIG] = "PUT /machine-config",
        [API_PATCH_MACHINE_CONFIG] = "PATCH /machine-config",
        [API_PUT_CPU_CONFIG] = "PUT /cpu-config",
        [API_PUT_DRIVE] = "PUT /drives",
        [API_PATCH_DRIVE] = "PATCH /drives",
        [API_PUT_NET] = "PUT /network-interfaces",
        [API_PATCH_NET] = "PATCH /network-interfaces",
        [API_PUT_VSOCK] = "PUT /vsock",
        [API_PUT_ENTROPY] = "PUT /entropy",
        [API_PUT_LOGGER] = "PUT /logger",
        [API_PUT_METRICS] = "PUT /metrics",
        [API_INSTANCE_START] = "PUT /actions InstanceStart",
        [API_SEND_CTRL_ALT_DEL] = "PUT /actions SendCtrlAltDel",
        [API_FLUSH_METRICS] = "PUT /actions FlushMetrics",
        [API_PAUSE] = "PATCH /vm Paused",
        [API_RESUME] = "PATCH /vm Resumed",
        [API_SNAPSHOT_CREATE] = "PUT /snapshot/create",
        [API_SNAPSHOT_LOAD] = "PUT /snapshot/load",
        [API_GET_MIGRATION] = "GET /migration",
        [API_MIGRATION_SEND] = "PUT /migration/send",
        [API_MIGRATION_RECEIVE] = "PUT /migration/receive",
        [API_MIGRATION_CANCEL] = "PUT /migration/cancel",
        [API_GET_MMDS] = "GET /mmds",
        [API_PUT_MMDS] = "PUT /mmds",
        [API_PATCH_MMDS] = "PATCH /mmds",
        [API_PUT_MMDS_CONFIG] = "PUT /mmds/config",
        [API_GET_BALLOON] = "GET /balloon",
        [API_PUT_BALLOON] = "PUT /balloon",
        [API_PATCH_BALLOON] = "PATCH /balloon",
        [API_GET_BALLOON_STATS] = "GET /balloon/statistics",
        [API_PATCH_BALLOON_STATS] = "PATCH /balloon/statistics",
        [API_BALLOON_HINT_START] = "PATCH /balloon/hinting/start",
        [API_BALLOON_HINT_STATUS] = "GET /balloon/hinting/status",
        [API_BALLOON_HINT_STOP] = "PATCH /balloon/hinting/stop",
        [API_PUT_SERIAL] = "PUT /serial",
};

const char *api_action_name(enum api_action_kind k)
{
	return (unsigned)k < API_ACTION_COUNT && names[k] ? names[k] : "unknown action";
}

void api_action_release(struct api_action *a)
{
	switch (a->kind) {
	case API_PUT_BOOT_SOURCE:
		boot_source_cfg_free(&a->u.boot_source);
		break;
	case API_PUT_MACHINE_CONFIG:
		machine_cfg_free(&a->u.machine);
		break;
	case API_PUT_DRIVE:
		drive_cfg_free(&a->u.drive);
		break;
	case API_PATCH_DRIVE:
		free(a->u.drive_patch.path_on_host);
		a->u.drive_patch.path_on_host = NULL;
		break;
	case API_PUT_NET:
		net_cfg_free(&a->u.net);
		break;
	case API_PUT_VSOCK:
		vsock_cfg_free(&a->u.vsock);
		break;
	case API_PUT_LOGGER:
		logger_cfg_free(&a->u.logger);
		break;
	case API_PUT_METRICS:
		metrics_cfg_free(&a->u.metrics);
		break;
	case API_SNAPSHOT_CREATE:
		api_snapshot_create_free(&a->u.snapshot_create);
		break;
	case API_SNAPSHOT_LOAD:
		api_snapshot_load_free(&a->u.snapshot_load);
		break;
	case API_MIGRATION_SEND:
		api_migration_send_free(&a->u.migration_send);
		break;
	case API_MIGRATION_RECEIVE:
		api_migration_receive_free(&a->u.migration_receive);
		break;
	case API_PUT_SERIAL:
		free(a->u.serial.serial_out_path);
		a->u.serial.serial_out_path = NULL;
		break;
	case API_PUT_MMDS:
	case API_PATCH_MMDS:
		json_decref(a->u.mmds_data);
		a->u.mmds_data = NULL;
		break;
	default: /* no strings */
		break;
	}
	json_decref(a->reply);
	a->reply = NULL;
}

char *api_fault_json(const char *msg)
{
	json_t *s = json_string(msg), *o;
	char *clean = NULL, *out = NULL;

	if (!s) { /* not UTF-8: keep the ASCII, mark the rest */
		clean = strdup(msg);
		if (!clean)
			return NULL;
		for (char *p = clean; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		s = json_string(clean);
	}
	o = s ? json_pack("{s:o}", "fault_message", s) : NULL; /* takes s */
	if (o)
		out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(clean);
	return out;
}
