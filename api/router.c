// SPDX-License-Identifier: Apache-2.0
/*
 * api/router.c: one const table maps (method, path) to an action kind and
 * the parser of its body. Paths, ids and messages follow Firecracker's
 * swagger (src/firecracker/swagger/firecracker.yaml) and its api_server
 * (parsed_request.rs: "GET request cannot have a body.", "Empty PUT
 * request.", checked_id()). An unknown path, or a served one with another
 * method, is Firecracker's 400 "Invalid request method and/or path".
 *
 * The /migration paths are kiln's own (docs/migration.md); Firecracker's
 * pmem and hotplug paths are not in the table: they answer 404 until their
 * features exist.
 */
#include "api/parse_int.h"

#include <errno.h>
#include <string.h>

struct route {
	const char *method;
	const char *path;          /* for id routes, the part before "/{id}" */
	bool has_id;               /* "/drives/{drive_id}" */
	enum api_action_kind kind; /* API_ACTION_COUNT: the body decides */
	api_parse_fn parse;        /* NULL: the request takes no body */
	bool body_optional;        /* parse runs on an empty object when there is no body */
};

static const struct route routes[] = {
        {"GET", "/", false, API_GET_INFO, NULL},
        {"GET", "/version", false, API_GET_VERSION, NULL},
        {"GET", "/vm/config", false, API_GET_VM_CONFIG, NULL},
        {"GET", "/machine-config", false, API_GET_MACHINE_CONFIG, NULL},
        {"PUT", "/machine-config", false, API_PUT_MACHINE_CONFIG, api_parse_machine_put},
        {"PATCH", "/machine-config", false, API_PATCH_MACHINE_CONFIG, api_parse_machine_patch},
        {"PUT", "/boot-source", false, API_PUT_BOOT_SOURCE, api_parse_boot_source},
        {"PUT", "/cpu-config", false, API_PUT_CPU_CONFIG, api_parse_cpu_config},
        {"PUT", "/drives", true, API_PUT_DRIVE, api_parse_drive_put},
        {"PATCH", "/drives", true, API_PATCH_DRIVE, api_parse_drive_patch},
        {"PUT", "/network-interfaces", true, API_PUT_NET, api_parse_net_put},
        {"PATCH", "/network-interfaces", true, API_PATCH_NET, api_parse_net_patch},
        {"PUT", "/vsock", false, API_PUT_VSOCK, api_parse_vsock},
        {"PUT", "/entropy", false, API_PUT_ENTROPY, api_parse_entropy},
        {"PUT", "/serial", false, API_PUT_SERIAL, api_parse_serial},
        {"PUT", "/logger", false, API_PUT_LOGGER, api_parse_logger},
        {"PUT", "/metrics", false, API_PUT_METRICS, api_parse_metrics},
        {"PUT", "/actions", false, API_ACTION_COUNT, api_parse_actions},
        {"PATCH", "/vm", false, API_ACTION_COUNT, api_parse_vm_state},
        {"PUT", "/snapshot/create", false, API_SNAPSHOT_CREATE, api_parse_snapshot_create},
        {"PUT", "/snapshot/load", false, API_SNAPSHOT_LOAD, api_parse_snapshot_load},
        {"GET", "/migration", false, API_GET_MIGRATION, NULL},
        {"PUT", "/migration/send", false, API_MIGRATION_SEND, api_parse_migration_send},
        {"PUT", "/migration/receive", false, API_MIGRATION_RECEIVE, api_parse_migration_receive},
        {"PUT", "/migration/cancel", false, API_MIGRATION_CANCEL, NULL},
        {"GET", "/mmds", false, API_GET_MMDS, NULL},
        {"PUT", "/mmds", false, API_PUT_MMDS, api_parse_mmds_data},
        {"PATCH", "/mmds", false, API_PATCH_MMDS, api_parse_mmds_data},
        {"PUT", "/mmds/config", false, API_PUT_MMDS_CONFIG, api_parse_mmds_config},
        {"GET", "/balloon", false, API_GET_BALLOON, NULL},
        {"PUT", "/balloon", false, API_PUT_BALLOON, api_parse_balloon_put},
        {"PATCH", "/balloon", false, API_PATCH_BALLOON, api_parse_balloon_patch},
        {"GET", "/balloon/statistics", false, API_GET_BALLOON_STATS, NULL},
        {"PATCH", "/balloon/statistics", false, API_PATCH_BALLOON_STATS,
         api_parse_balloon_stats_patch},
        {"PATCH", "/balloon/hinting/start", false, API_BALLOON_HINT_START,
         api_parse_balloon_hint_start, true},
        {"GET", "/balloon/hinting/status", false, API_BALLOON_HINT_STATUS, NULL},
        {"PATCH", "/balloon/hinting/stop", false, API_BALLOON_HINT_STOP,
         api_parse_balloon_hint_stop, true},
};

/*
 * Does `path` (already stripped of one trailing '/') name route `r`? For an
 * id route, *id and *id_len receive the id segment (possibly empty: "/drives").
 */
static bool path_matches(const struct route *r, const char *path, size_t len, const char **id,
                         size_t *id_len)
{
	size_t plen = strlen(r->path);

	if (!r->has_id)
		return len == plen && memcmp(path, r->path, len) == 0;
	if (len < plen || memcmp(path, r->path, plen) != 0)
		return false;
	if (len == plen) {
		*id = path + len;
		*id_len = 0;
		return true;
	}
	if (path[plen] != '/' || memchr(path + plen + 1, '/', len - plen - 1))
		return false;
	*id = path + plen + 1;
	*id_len = len - plen - 1;
	return true;
}

/* Firecracker's checked_id(), plus the 64-character limit of its ids */
static int check_path_id(const char *id, size_t len, char out[CFG_ID_MAX + 1], struct errbuf *e)
{
	if (len == 0)
		return errf(e, EINVAL, "The ID cannot be empty.");
	if (len > CFG_ID_MAX)
		return errf(e, EINVAL, "API Resource IDs can have at most %d characters (got %zu).",
		            CFG_ID_MAX, len);
	memcpy(out, id, len);
	out[len] = '\0';
	if (!cfg_id_valid(out))
		return errf(e, EINVAL,
		            "API Resource IDs can only contain alphanumeric characters "
		            "and underscores.");
	return 0;
}

/* the path without one trailing '/' (Firecracker splits on '/' and drops empty tails) */
static size_t path_len(const char *path)
{
	size_t len = strlen(path);
	return len > 1 && path[len - 1] == '/' ? len - 1 : len;
}

const char *api_route_allow(const char *path, char *buf, size_t size)
{
	size_t len = path ? path_len(path) : 0, n = 0, id_len;
	const char *id;

	if (size)
		buf[0] = '\0';
	for (size_t i = 0; path && i < ARRAY_SIZE(routes); i++) {
		if (!path_matches(&routes[i], path, len, &id, &id_len) || n >= size)
			continue;
		n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", routes[i].method);
	}
	return buf;
}

/*
 * Firecracker's deprecation messages (request/machine_configuration.rs,
 * vsock.rs, mmds.rs, snapshot.rs): the answer to such a request carries the
 * `Deprecation: true` header and the message is logged as a warning.
 */
static const char *deprecation_of(const struct api_action *a, json_t *body)
{
	switch (a->kind) {
	case API_PUT_MACHINE_CONFIG:
		return api_json_present(body, "cpu_template")
		               ? "PUT /machine-config: cpu_template field is deprecated."
		               : NULL;
	case API_PATCH_MACHINE_CONFIG:
		return api_json_present(body, "cpu_template")
		               ? "PATCH /machine-config: cpu_template field is deprecated."
		               : NULL;
	case API_PUT_VSOCK:
		return api_json_present(body, "vsock_id")
		               ? "PUT /vsock: vsock_id field is deprecated."
		               : NULL;
	case API_PUT_MMDS_CONFIG: /* V1 when no version is given, as in Firecracker */
		return a->u.mmds_config.version == MMDS_V1
		               ? "PUT /mmds/config: V1 is deprecated. Use V2 instead."
		               : NULL;
	case API_SNAPSHOT_LOAD:
		return a->u.snapshot_load.deprecated
		               ? "PUT /snapshot/load: mem_file_path and "
		                 "enable_diff_snapshots fields are deprecated."
		               : NULL;
	default:
		return NULL;
	}
}

static int parse_body(const struct route *r, const char *id, const char *body, size_t len,
                      struct api_action *a, struct errbuf *e)
{
	json_error_t jerr;
	json_t *j;
	int ret;

	if (!r->parse) {
		if (len)
			return errf(e, EINVAL, "%s request cannot have a body.", r->method);
		return 0;
	}
	if (!len && r->body_optional) {
		json_t *none = json_object();
		ret = none ? r->parse(none, id, a, e) : -ENOMEM;
		json_decref(none);
		return ret;
	}
	if (!len)
		return errf(e, EINVAL, "Empty %s request.", r->method);
	/* strict: one JSON value, nothing after it, no duplicate keys */
	j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!j)
		return errf(e, EINVAL,
		            "An error occurred when deserializing the json body of a request: "
		            "%s at line %d column %d.",
		            jerr.text, jerr.line, jerr.column);
	ret = r->parse(j, id, a, e);
	if (ret == 0)
		a->deprecation = deprecation_of(a, j);
	json_decref(j);
	return ret;
}

/*
 * A (method, path) that no route serves, answered as Firecracker's
 * parsed_request.rs does, in its order: a GET with a body, or a PUT or
 * PATCH without one, whatever the path, is that mistake; anything else is
 * "Invalid request method and/or path: <METHOD> <first path segment>.".
 * -ENOENT for an unknown path, -ENOTSUP for a served path and another
 * method (both 400, as in Firecracker; counted apart in the metrics).
 */
static int refuse_unrouted(const char *method, const char *path, size_t len, bool known,
                           struct errbuf *e)
{
	const char *seg = path;
	size_t seg_len;

	if (strcmp(method, "GET") == 0 && len)
		return errf(e, EINVAL, "GET request cannot have a body.");
	if ((strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) && !len)
		return errf(e, EINVAL, "Empty %s request.", method);
	while (*seg == '/')
		seg++;
	seg_len = strcspn(seg, "/");
	return errf(e, known ? ENOTSUP : ENOENT, "Invalid request method and/or path: %.16s %.*s.",
	            method, (int)(seg_len > 256 ? 256 : seg_len), seg);
}

int api_route(const char *method, const char *path, const char *body, size_t len,
              struct api_action *a, struct errbuf *e)
{
	const struct route *r = NULL;
	char id[CFG_ID_MAX + 1] = "";
	const char *seg = NULL;
	size_t plen, seg_len = 0;
	bool known = false;
	int ret;

	a->kind = API_ACTION_COUNT;
	if (!method || !path || (len && !body))
		return errf(e, EINVAL, "Invalid request.");
	plen = path_len(path);
	for (size_t i = 0; i < ARRAY_SIZE(routes) && !r; i++) {
		if (!path_matches(&routes[i], path, plen, &seg, &seg_len))
			continue;
		known = true;
		if (strcmp(routes[i].method, method) == 0)
			r = &routes[i];
	}
	if (!r)
		return refuse_unrouted(method, path, len, known, e);
	a->kind = r->kind;
	if (r->has_id && (ret = check_path_id(seg, seg_len, id, e)) < 0)
		return ret;
	return parse_body(r, r->has_id ? id : NULL, body, len, a, e);
}

int api_route_status(int ret)
{
	switch (ret) {
	case 0:
		return 200;
	case -ENOMEM:
		return 500;
	default:
		return 400;
	}
}
