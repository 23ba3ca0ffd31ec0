// SPDX-License-Identifier: Apache-2.0
/*
 * api/parse_snapshot.c: PUT /snapshot/create and PUT /snapshot/load, with
 * the bodies of Firecracker's swagger (SnapshotCreateParams,
 * SnapshotLoadParams, MemoryBackend, NetworkOverride, VsockOverride) and
 * the rules of its api_server (request/snapshot.rs): exactly one of
 * mem_backend and the deprecated mem_file_path (which means a File
 * backend), and dirty page tracking on when either track_dirty_pages or its
 * deprecated spelling enable_diff_snapshots is true. Both structs are
 * #[serde(deny_unknown_fields)] there, so unknown fields are refused here
 * too, "version" of create among them (Firecracker dropped it in 1.5).
 */
#include "api/config_int.h"
#include "api/parse_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

_Static_assert(sizeof(enum api_snapshot_type) == sizeof(int), "CFG_ENUM stores an int");
_Static_assert(sizeof(enum api_mem_backend) == sizeof(int), "CFG_ENUM stores an int");

/* Firecracker's messages (request/snapshot.rs MISSING_FIELD, TOO_MANY_FIELDS) */
#define MSG_SERDE "An error occurred when deserializing the json body of a request: "
#define MSG_MEM_MISSING                                                                            \
	MSG_SERDE "missing field: either `mem_backend` or `mem_file_path` is required"
#define MSG_MEM_TOO_MANY                                                                           \
	MSG_SERDE "too many fields: either `mem_backend` or `mem_file_path` exclusively is "       \
	          "required"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

void api_snapshot_create_free(struct snapshot_create_req *r)
{
	free(r->snapshot_path);
	free(r->mem_file_path);
	r->snapshot_path = r->mem_file_path = NULL;
}

void api_snapshot_load_free(struct snapshot_load_req *r)
{
	free(r->snapshot_path);
	free(r->backend_path);
	free(r->vsock_uds_path);
	r->snapshot_path = r->backend_path = r->vsock_uds_path = NULL;
	api_net_overrides_free(r->net_overrides, &r->nr_net_overrides);
}

void api_net_overrides_free(struct snapshot_net_override *list, unsigned *nr)
{
	for (unsigned i = 0; i < *nr && i < SNAP_MAX_NET_OVERRIDES; i++) {
		free(list[i].host_dev_name);
		list[i].host_dev_name = NULL;
	}
	*nr = 0;
}

/* a path kiln will bind or connect a unix socket to */
static int check_uds_path(const char *path, const char *where, struct errbuf *e)
{
	if (strlen(path) > SUN_PATH_MAX)
		return errf(e, EINVAL, "%s is too long for a unix socket (%zu bytes, max %zu)",
		            where, strlen(path), SUN_PATH_MAX);
	return 0;
}

/* ------------------------------------------------------- PUT /snapshot/create */

static const char *const snapshot_type_names[] = {
        [API_SNAPSHOT_FULL] = "Full", [API_SNAPSHOT_DIFF] = "Diff"};

static const struct cfg_field create_fields[] = {
        {.name = "snapshot_path",
         .kind = CFG_PATH,
         .required = true,
         .off = offsetof(struct snapshot_create_req, snapshot_path)},
        {.name = "mem_file_path",
         .kind = CFG_PATH,
         .required = true,
         .off = offsetof(struct snapshot_create_req, mem_file_path)},
        {.name = "snapshot_type",
         .kind = CFG_ENUM,
         .off = offsetof(struct snapshot_create_req, type),
         .names = snapshot_type_names,
         .nr_names = ARRAY_SIZE(snapshot_type_names)},
        {.name = "version",
         .kind = CFG_REJECT,
         .reject = "\"version\" is no longer accepted (Firecracker removed it in 1.5): "
                   "snapshots are written in kiln's current format"},
};

int api_parse_snapshot_create(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	struct snapshot_create_req r = {.type = API_SNAPSHOT_FULL};
	int ret = cfg_fields_parse(body, "snapshot_create", create_fields,
	                           ARRAY_SIZE(create_fields), &r, e);

	(void)id;
	if (ret < 0) {
		api_snapshot_create_free(&r);
		return ret;
	}
	a->u.snapshot_create = r;
	return 0;
}

/* --------------------------------------------------------- PUT /snapshot/load */

/* the body as written, before the mem_* rules fold it into a snapshot_load_req */
struct load_body {
	struct snapshot_load_req r;
	char *mem_file_path;
	bool enable_diff_snapshots;
	bool has_backend;
};

/* MemoryBackend: {backend_type: File | Uffd, backend_path}, both required */
struct mem_backend_body {
	int type;
	char *path;
};

static const char *const backend_names[] = {
        [API_MEM_BACKEND_FILE] = "File", [API_MEM_BACKEND_UFFD] = "Uffd"};

static const struct cfg_field backend_fields[] = {
        {.name = "backend_type",
         .kind = CFG_ENUM,
         .required = true,
         .off = offsetof(struct mem_backend_body, type),
         .names = backend_names,
         .nr_names = ARRAY_SIZE(backend_names)},
        {.name = "backend_path",
         .kind = CFG_PATH,
         .required = true,
         .off = offsetof(struct mem_backend_body, path)},
};

/* slot: the struct load_body */
static int parse_backend(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct load_body *b = slot;
	struct mem_backend_body mb = {0};
	char path[CFG_WHERE_MAX];
	int ret = cfg_fields_parse(v, where, backend_fields, ARRAY_SIZE(backend_fields), &mb, e);

	if (ret == 0 && mb.type == API_MEM_BACKEND_UFFD)
		ret = check_uds_path(mb.path, cfg_where(path, where, "backend_path"), e);
	if (ret < 0) {
		free(mb.path);
		return ret;
	}
	b->r.backend_type = (enum api_mem_backend)mb.type;
	b->r.backend_path = mb.path;
	b->has_backend = true;
	return 0;
}

static const struct cfg_field override_fields[] = {
        {.name = "iface_id",
         .kind = CFG_ID,
         .required = true,
         .off = offsetof(struct snapshot_net_override, iface_id)},
        {.name = "host_dev_name",
         .kind = CFG_STR,
         .required = true,
         .off = offsetof(struct snapshot_net_override, host_dev_name)},
};

/*
 * One NetworkOverride into `o`. Its host_dev_name must be a tap name that
 * PUT /network-interfaces would take: the override's two keys are a valid
 * NetworkInterface body, so cfg_net_at() applies the same check (and the
 * same message) as for an interface configured before boot.
 */
static int parse_override(json_t *v, const char *where, struct snapshot_net_override *o,
                          struct errbuf *e)
{
	struct net_cfg n;
	int ret = cfg_fields_parse(v, where, override_fields, ARRAY_SIZE(override_fields), o, e);

	if (ret == 0 && (ret = cfg_net_at(v, where, &n, e)) == 0)
		net_cfg_free(&n);
	return ret;
}

/* an id or a name given twice: a message naming the second one */
static int check_unique(const struct snapshot_net_override *list, unsigned i, const char *where,
                        struct errbuf *e)
{
	const struct snapshot_net_override *o = &list[i];

	for (unsigned j = 0; j < i; j++) {
		if (strcmp(list[j].iface_id, o->iface_id) == 0)
			return errf(e, EINVAL,
			            "%s.iface_id \"%s\" is already overridden by "
			            "network_overrides[%u]",
			            where, o->iface_id, j);
		if (strcmp(list[j].host_dev_name, o->host_dev_name) == 0)
			return errf(e, EINVAL,
			            "%s.host_dev_name \"%s\" is already given to "
			            "network_overrides[%u]",
			            where, o->host_dev_name, j);
	}
	return 0;
}

/* one entry of network_overrides; ctx: the list */
static int net_override_item(json_t *v, unsigned i, const char *where, void *ctx, struct errbuf *e)
{
	struct snapshot_net_override *list = ctx;
	int ret = parse_override(v, where, &list[i], e);

	return ret < 0 ? ret : check_unique(list, i, where, e);
}

int api_parse_net_overrides(json_t *v, struct snapshot_net_override *list, unsigned *nr,
                            const char *where, struct errbuf *e)
{
	return cfg_list_parse(v, where, SNAP_MAX_NET_OVERRIDES, nr, net_override_item, list, e);
}

/* network_overrides: [NetworkOverride], slot: the struct load_body */
static int parse_overrides(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct snapshot_load_req *r = &((struct load_body *)slot)->r;
	return api_parse_net_overrides(v, r->net_overrides, &r->nr_net_overrides, where, e);
}

static const struct cfg_field vsock_override_fields[] = {
        {.name = "uds_path", .kind = CFG_PATH, .required = true, .off = 0},
};

int api_parse_vsock_override(json_t *v, char **uds_path, const char *where, struct errbuf *e)
{
	char path[CFG_WHERE_MAX];
	int ret = cfg_fields_parse(v, where, vsock_override_fields,
	                           ARRAY_SIZE(vsock_override_fields), uds_path, e);

	if (ret < 0)
		return ret;
	return check_uds_path(*uds_path, cfg_where(path, where, "uds_path"), e);
}

/* vsock_override: {uds_path}, slot: the struct load_body */
static int parse_vsock_override(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct snapshot_load_req *r = &((struct load_body *)slot)->r;
	return api_parse_vsock_override(v, &r->vsock_uds_path, where, e);
}

/*
 * clock_realtime (Firecracker 1.13, x86_64): advance kvmclock by the wall
 * time since the snapshot. kiln restores the clock where it stood, which is
 * what false (the default, which clients send) asks; true is refused rather
 * than silently not done.
 */
static int parse_clock_realtime(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	(void)slot;
	if (!json_is_boolean(v))
		return errf(e, EINVAL, "%s must be a boolean", where);
	if (json_is_true(v))
		return errf(e, EINVAL,
		            "%s: advancing kvmclock by the time elapsed since the snapshot is "
		            "not supported by kiln",
		            where);
	return 0;
}

/*
 * huge_pages (Firecracker's swagger): "Snapshot", the default, restores
 * guest memory as the snapshot had it, which is what kiln does. The other
 * values ask for another page size than the snapshot's; kiln refuses them
 * by name rather than silently not doing it.
 */
static int parse_load_huge_pages(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	static const char *const known[] = {"None", "Transparent", "2M"};
	const char *s = json_string_value(v);

	(void)slot;
	if (!s)
		return errf(e, EINVAL, "%s must be a string", where);
	if (strcmp(s, "Snapshot") == 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (strcmp(s, known[i]) == 0)
			return errf(
			        e, EINVAL,
			        "%s \"%s\": restoring with other pages than the snapshot's is not "
			        "supported by kiln (give \"Snapshot\" or leave it out)",
			        where, s);
	return errf(e, EINVAL,
	            "%s must be one of \"Snapshot\", \"None\", \"Transparent\", \"2M\" (got "
	            "\"%.32s\")",
	            where, s);
}

static const struct cfg_field load_fields[] = {
        {.name = "snapshot_path",
         .kind = CFG_PATH,
         .required = true,
         .off = offsetof(struct load_body, r.snapshot_path)},
        {.name = "mem_backend", .kind = CFG_CUSTOM, .parse = parse_backend},
        {.name = "mem_file_path",
         .kind = CFG_PATH,
         .off = offsetof(struct load_body, mem_file_path)},
        {.name = "track_dirty_pages",
         .kind = CFG_BOOL,
         .off = offsetof(struct load_body, r.track_dirty_pages)},
        {.name = "enable_diff_snapshots",
         .kind = CFG_BOOL,
         .off = offsetof(struct load_body, enable_diff_snapshots)},
        {.name = "resume_vm", .kind = CFG_BOOL, .off = offsetof(struct load_body, r.resume_vm)},
        {.name = "network_overrides", .kind = CFG_CUSTOM, .parse = parse_overrides},
        {.name = "vsock_override", .kind = CFG_CUSTOM, .parse = parse_vsock_override},
        {.name = "clock_realtime", .kind = CFG_CUSTOM, .parse = parse_clock_realtime},
        {.name = "huge_pages", .kind = CFG_CUSTOM, .parse = parse_load_huge_pages},
};

int api_parse_snapshot_load(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	struct load_body b = {0};
	int ret = cfg_fields_parse(body, "snapshot_load", load_fields, ARRAY_SIZE(load_fields), &b,
	                           e);

	(void)id;
	if (ret == 0 && b.has_backend && b.mem_file_path)
		ret = errf(e, EINVAL, MSG_MEM_TOO_MANY);
	else if (ret == 0 && !b.has_backend && !b.mem_file_path)
		ret = errf(e, EINVAL, MSG_MEM_MISSING);
	if (ret < 0) {
		free(b.mem_file_path);
		api_snapshot_load_free(&b.r);
		return ret;
	}
	/* request/snapshot.rs: mem_file_path is a File backend; either flag tracks */
	if (b.mem_file_path) {
		b.r.backend_type = API_MEM_BACKEND_FILE;
		b.r.backend_path = b.mem_file_path;
	}
	b.r.track_dirty_pages |= b.enable_diff_snapshots;
	b.r.deprecated = b.mem_file_path || b.enable_diff_snapshots;
	a->u.snapshot_load = b.r;
	return 0;
}
