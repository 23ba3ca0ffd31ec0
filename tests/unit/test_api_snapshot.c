// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_api_snapshot.c: the bodies of PUT /snapshot/create and
 * PUT /snapshot/load through the router (api/parse_snapshot.c): every
 * field's rule, its default, and the message naming the field.
 */
#include "api/api.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct api_action act;
static struct errbuf err;

static void fini(void)
{
	api_action_release(&act);
}

TestSuite(snap_create, .fini = fini);
TestSuite(snap_load, .fini = fini);

static int route(const char *path, const char *body)
{
	api_action_release(&act);
	memset(&act, 0, sizeof(act));
	memset(&err, 0, sizeof(err));
	return api_route("PUT", path, body, strlen(body), &act, &err);
}

static void ok(const char *path, const char *body)
{
	int ret = route(path, body);
	cr_assert_eq(ret, 0, "%s %s: %d (%s)", path, body, ret, err.msg);
}

/* -EINVAL with `msg` inside the message */
static void bad(const char *path, const char *body, const char *msg)
{
	int ret = route(path, body);
	cr_assert_eq(ret, -EINVAL, "%s %s: got %d (%s)", path, body, ret, err.msg);
	cr_assert(strstr(err.msg, msg), "%s %s: message \"%s\" lacks \"%s\"", path, body, err.msg,
	          msg);
	cr_assert_eq(api_route_status(ret), 400);
}

#define CREATE "/snapshot/create"
#define LOAD   "/snapshot/load"

/* a load body: snapshot_path, a File mem_backend, and `rest` (", ..." or "") */
#define LOAD_WITH(rest)                                                                            \
	"{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"File\", "               \
	"\"backend_path\": \"/m\"}" rest "}"

/* ------------------------------------------------------------------ create */

Test(snap_create, defaults_to_full)
{
	ok(CREATE, "{\"snapshot_path\": \"/s/vm.snap\", \"mem_file_path\": \"/s/vm.mem\"}");
	cr_assert_eq(act.kind, API_SNAPSHOT_CREATE);
	cr_assert_eq(act.u.snapshot_create.type, API_SNAPSHOT_FULL);
	cr_assert_str_eq(act.u.snapshot_create.snapshot_path, "/s/vm.snap");
	cr_assert_str_eq(act.u.snapshot_create.mem_file_path, "/s/vm.mem");
	ok(CREATE,
	   "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"snapshot_type\": null}");
	cr_assert_eq(act.u.snapshot_create.type, API_SNAPSHOT_FULL);
}

Test(snap_create, snapshot_type)
{
	ok(CREATE,
	   "{\"snapshot_type\": \"Diff\", \"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}");
	cr_assert_eq(act.u.snapshot_create.type, API_SNAPSHOT_DIFF);
	ok(CREATE,
	   "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}");
	cr_assert_eq(act.u.snapshot_create.type, API_SNAPSHOT_FULL);
	/* serde's enum names are case-sensitive */
	bad(CREATE,
	    "{\"snapshot_type\": \"diff\", \"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}",
	    "snapshot_create.snapshot_type must be one of \"Full\", \"Diff\" (got \"diff\")");
	bad(CREATE, "{\"snapshot_type\": 1, \"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}",
	    "snapshot_create.snapshot_type must be a string");
}

Test(snap_create, required_paths)
{
	bad(CREATE, "{\"mem_file_path\": \"/m\"}", "missing required field \"snapshot_path\"");
	bad(CREATE, "{\"snapshot_path\": \"/s\"}", "missing required field \"mem_file_path\"");
	bad(CREATE, "{\"snapshot_path\": null, \"mem_file_path\": \"/m\"}",
	    "snapshot_create.snapshot_path must not be null");
	bad(CREATE, "{\"snapshot_path\": \"\", \"mem_file_path\": \"/m\"}",
	    "snapshot_create.snapshot_path must not be empty");
	bad(CREATE, "{\"snapshot_path\": \"/s\", \"mem_file_path\": 7}",
	    "snapshot_create.mem_file_path must be a string");
	bad(CREATE, "{\"snapshot_path\": \"/s\\u0000x\", \"mem_file_path\": \"/m\"}",
	    "\\u0000 is not allowed");
}

Test(snap_create, strict)
{
	bad(CREATE, "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"compress\": true}",
	    "unknown field \"compress\" in snapshot_create");
	/* Firecracker 1.5 dropped "version"; it refuses it as an unknown field */
	bad(CREATE,
	    "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"version\": \"1.0.0\"}",
	    "\"version\" is no longer accepted");
	bad(CREATE, "[]", "snapshot_create must be an object");
	bad(CREATE, "{}", "missing required field");
}

/* -------------------------------------------------------------------- load */

Test(snap_load, file_backend_and_defaults)
{
	struct snapshot_load_req *r = &act.u.snapshot_load;

	ok(LOAD, LOAD_WITH(""));
	cr_assert_eq(act.kind, API_SNAPSHOT_LOAD);
	cr_assert_str_eq(r->snapshot_path, "/s");
	cr_assert_eq(r->backend_type, API_MEM_BACKEND_FILE);
	cr_assert_str_eq(r->backend_path, "/m");
	cr_assert(!r->track_dirty_pages && !r->resume_vm && !r->deprecated);
	cr_assert_eq(r->nr_net_overrides, 0);
	cr_assert_null(r->vsock_uds_path);
}

Test(snap_load, uffd_backend)
{
	struct snapshot_load_req *r = &act.u.snapshot_load;
	char body[512], path[200];

	ok(LOAD,
	   "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_path\": \"/run/uffd.sock\", "
	   "\"backend_type\": \"Uffd\"}, \"resume_vm\": true}");
	cr_assert_eq(r->backend_type, API_MEM_BACKEND_UFFD);
	cr_assert_str_eq(r->backend_path, "/run/uffd.sock");
	cr_assert(r->resume_vm);
	/* a socket path must fit sun_path (107 bytes); a file path need not */
	memset(path, 'p', 150);
	path[0] = '/';
	path[150] = '\0';
	snprintf(body, sizeof(body),
	         "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
	         "\"backend_path\": \"%s\"}}",
	         path);
	bad(LOAD, body, "snapshot_load.mem_backend.backend_path is too long for a unix socket");
	snprintf(body, sizeof(body),
	         "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"File\", "
	         "\"backend_path\": \"%s\"}}",
	         path);
	ok(LOAD, body);
	cr_assert_str_eq(r->backend_path, path);
}

Test(snap_load, mem_backend_fields)
{
	bad(LOAD, "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_path\": \"/m\"}}",
	    "snapshot_load.mem_backend: missing required field \"backend_type\"");
	bad(LOAD, "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"File\"}}",
	    "snapshot_load.mem_backend: missing required field \"backend_path\"");
	bad(LOAD,
	    "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"file\", "
	    "\"backend_path\": \"/m\"}}",
	    "snapshot_load.mem_backend.backend_type must be one of \"File\", \"Uffd\"");
	bad(LOAD,
	    "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"File\", "
	    "\"backend_path\": \"\"}}",
	    "snapshot_load.mem_backend.backend_path must not be empty");
	bad(LOAD,
	    "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"File\", "
	    "\"backend_path\": \"/m\", \"offset\": 0}}",
	    "unknown field \"offset\" in snapshot_load.mem_backend");
	bad(LOAD, "{\"snapshot_path\": \"/s\", \"mem_backend\": \"/m\"}",
	    "snapshot_load.mem_backend must be an object");
}

Test(snap_load, mem_file_path_is_the_deprecated_file_backend)
{
	struct snapshot_load_req *r = &act.u.snapshot_load;

	ok(LOAD, "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/old.mem\"}");
	cr_assert_eq(r->backend_type, API_MEM_BACKEND_FILE);
	cr_assert_str_eq(r->backend_path, "/old.mem");
	cr_assert(r->deprecated);
	/* null is absent: the other one decides */
	ok(LOAD, LOAD_WITH(", \"mem_file_path\": null"));
	cr_assert_str_eq(r->backend_path, "/m");
	cr_assert(!r->deprecated);
	ok(LOAD, "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/f\", \"mem_backend\": null}");
	cr_assert_str_eq(r->backend_path, "/f");
	bad(LOAD, "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"\"}",
	    "snapshot_load.mem_file_path must not be empty");
}

Test(snap_load, exactly_one_of_mem_backend_and_mem_file_path)
{
	/* Firecracker's messages (request/snapshot.rs) */
	bad(LOAD, LOAD_WITH(", \"mem_file_path\": \"/m2\""),
	    "An error occurred when deserializing the json body of a request: too many fields: "
	    "either `mem_backend` or `mem_file_path` exclusively is required");
	bad(LOAD, "{\"snapshot_path\": \"/s\"}",
	    "An error occurred when deserializing the json body of a request: missing field: "
	    "either `mem_backend` or `mem_file_path` is required");
	bad(LOAD, "{\"snapshot_path\": \"/s\", \"mem_backend\": null, \"mem_file_path\": null}",
	    "missing field: either `mem_backend` or `mem_file_path` is required");
}

Test(snap_load, snapshot_path)
{
	bad(LOAD, "{\"mem_file_path\": \"/m\"}",
	    "snapshot_load: missing required field \"snapshot_path\"");
	bad(LOAD, "{\"snapshot_path\": 1, \"mem_file_path\": \"/m\"}",
	    "snapshot_load.snapshot_path must be a string");
	bad(LOAD, "{\"snapshot_path\": \"\", \"mem_file_path\": \"/m\"}",
	    "snapshot_load.snapshot_path must not be empty");
}

Test(snap_load, dirty_page_tracking_and_its_old_name)
{
	struct snapshot_load_req *r = &act.u.snapshot_load;

	ok(LOAD, LOAD_WITH(", \"track_dirty_pages\": true"));
	cr_assert(r->track_dirty_pages && !r->deprecated);
	ok(LOAD, LOAD_WITH(", \"enable_diff_snapshots\": true"));
	cr_assert(r->track_dirty_pages && r->deprecated);
	/* both given: either one turns tracking on, as Firecracker ORs them */
	ok(LOAD, LOAD_WITH(", \"enable_diff_snapshots\": true, \"track_dirty_pages\": false"));
	cr_assert(r->track_dirty_pages);
	ok(LOAD, LOAD_WITH(", \"enable_diff_snapshots\": false, \"track_dirty_pages\": true"));
	cr_assert(r->track_dirty_pages && !r->deprecated);
	ok(LOAD, LOAD_WITH(", \"enable_diff_snapshots\": false, \"track_dirty_pages\": false"));
	cr_assert(!r->track_dirty_pages);
	bad(LOAD, LOAD_WITH(", \"track_dirty_pages\": \"yes\""),
	    "snapshot_load.track_dirty_pages must be a boolean");
	bad(LOAD, LOAD_WITH(", \"enable_diff_snapshots\": 1"),
	    "snapshot_load.enable_diff_snapshots must be a boolean");
}

Test(snap_load, resume_vm)
{
	ok(LOAD, LOAD_WITH(", \"resume_vm\": false"));
	cr_assert(!act.u.snapshot_load.resume_vm);
	ok(LOAD, LOAD_WITH(", \"resume_vm\": true"));
	cr_assert(act.u.snapshot_load.resume_vm);
	ok(LOAD, LOAD_WITH(", \"resume_vm\": null"));
	cr_assert(!act.u.snapshot_load.resume_vm);
	bad(LOAD, LOAD_WITH(", \"resume_vm\": 1"), "snapshot_load.resume_vm must be a boolean");
}

#define OVR(id, tap) "{\"iface_id\": \"" id "\", \"host_dev_name\": \"" tap "\"}"

Test(snap_load, network_overrides)
{
	struct snapshot_load_req *r = &act.u.snapshot_load;

	ok(LOAD, LOAD_WITH(", \"network_overrides\": [" OVR("eth0", "tap7") ", " OVR("eth1",
	                                                                             "tap8") "]"));
	cr_assert_eq(r->nr_net_overrides, 2);
	cr_assert_str_eq(r->net_overrides[0].iface_id, "eth0");
	cr_assert_str_eq(r->net_overrides[0].host_dev_name, "tap7");
	cr_assert_str_eq(r->net_overrides[1].iface_id, "eth1");
	cr_assert_str_eq(r->net_overrides[1].host_dev_name, "tap8");
	ok(LOAD, LOAD_WITH(", \"network_overrides\": []"));
	cr_assert_eq(r->nr_net_overrides, 0);
	ok(LOAD, LOAD_WITH(", \"network_overrides\": null"));
	cr_assert_eq(r->nr_net_overrides, 0);
}

Test(snap_load, network_override_rules)
{
	bad(LOAD, LOAD_WITH(", \"network_overrides\": " OVR("eth0", "tap0")),
	    "snapshot_load.network_overrides must be an array");
	bad(LOAD, LOAD_WITH(", \"network_overrides\": [\"eth0\"]"),
	    "snapshot_load.network_overrides[0] must be an object");
	bad(LOAD, LOAD_WITH(", \"network_overrides\": [" OVR("eth-0", "tap0") "]"),
	    "snapshot_load.network_overrides[0].iface_id \"eth-0\" is invalid");
	bad(LOAD, LOAD_WITH(", \"network_overrides\": [" OVR("", "tap0") "]"),
	    "network_overrides[0].iface_id \"\" is invalid");
	bad(LOAD, LOAD_WITH(", \"network_overrides\": [{\"iface_id\": \"eth0\"}]"),
	    "snapshot_load.network_overrides[0]: missing required field \"host_dev_name\"");
	bad(LOAD, LOAD_WITH(", \"network_overrides\": [{\"host_dev_name\": \"tap0\"}]"),
	    "snapshot_load.network_overrides[0]: missing required field \"iface_id\"");
	bad(LOAD,
	    LOAD_WITH(", \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
	              "\"tap0\", \"guest_mac\": \"06:00:00:00:00:01\"}]"),
	    "unknown field \"guest_mac\" in snapshot_load.network_overrides[0]");
	bad(LOAD, LOAD_WITH(", \"network_overrides\": [" OVR("eth0", "a/b") "]"),
	    "snapshot_load.network_overrides[0].host_dev_name \"a/b\" is not a valid interface");
	bad(LOAD, LOAD_WITH(", \"network_overrides\": [" OVR("eth0", "sixteen_chars_xx") "]"),
	    "is not a valid interface name");
	bad(LOAD, LOAD_WITH(", \"network_overrides\": [" OVR("eth0", "") "]"),
	    "is not a valid interface name");
	bad(LOAD,
	    LOAD_WITH(", \"network_overrides\": [" OVR("eth0", "tap0") ", " OVR(
	            "eth1", "tap1") ", " OVR("eth0", "tap2") "]"),
	    "snapshot_load.network_overrides[2].iface_id \"eth0\" is already overridden by "
	    "network_overrides[0]");
	bad(LOAD,
	    LOAD_WITH(
	            ", \"network_overrides\": [" OVR("eth0", "tap0") ", " OVR("eth1", "tap0") "]"),
	    "snapshot_load.network_overrides[1].host_dev_name \"tap0\" is already given to "
	    "network_overrides[0]");
}

Test(snap_load, at_most_SNAP_MAX_NET_OVERRIDES)
{
	char body[2048], list[1600] = "";
	size_t n = 0;

	for (int i = 0; i < SNAP_MAX_NET_OVERRIDES + 1; i++) {
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s" OVR("eth%d", "tap%d"),
		                      i ? ", " : "", i, i);
		cr_assert_lt(n, sizeof(list));
		snprintf(body, sizeof(body), LOAD_WITH(", \"network_overrides\": [%s]"), list);
		if (i < SNAP_MAX_NET_OVERRIDES) {
			ok(LOAD, body);
			cr_assert_eq(act.u.snapshot_load.nr_net_overrides, (unsigned)i + 1);
		} else {
			bad(LOAD, body, "snapshot_load.network_overrides has 9 entries, at most 8");
		}
	}
}

Test(snap_load, vsock_override)
{
	char body[512], path[200];

	ok(LOAD, LOAD_WITH(", \"vsock_override\": {\"uds_path\": \"/run/v2.sock\"}"));
	cr_assert_str_eq(act.u.snapshot_load.vsock_uds_path, "/run/v2.sock");
	ok(LOAD, LOAD_WITH(", \"vsock_override\": null"));
	cr_assert_null(act.u.snapshot_load.vsock_uds_path);
	bad(LOAD, LOAD_WITH(", \"vsock_override\": {}"),
	    "snapshot_load.vsock_override: missing required field \"uds_path\"");
	bad(LOAD, LOAD_WITH(", \"vsock_override\": {\"uds_path\": \"\"}"),
	    "snapshot_load.vsock_override.uds_path must not be empty");
	bad(LOAD, LOAD_WITH(", \"vsock_override\": {\"uds_path\": \"/v\", \"guest_cid\": 3}"),
	    "unknown field \"guest_cid\" in snapshot_load.vsock_override");
	bad(LOAD, LOAD_WITH(", \"vsock_override\": \"/v\""),
	    "snapshot_load.vsock_override must be an object");
	memset(path, 'v', 120);
	path[120] = '\0';
	snprintf(body, sizeof(body), LOAD_WITH(", \"vsock_override\": {\"uds_path\": \"%s\"}"),
	         path);
	bad(LOAD, body, "snapshot_load.vsock_override.uds_path is too long for a unix socket");
}

Test(snap_load, clock_realtime)
{
	ok(LOAD, LOAD_WITH(", \"clock_realtime\": false"));
	ok(LOAD, LOAD_WITH(", \"clock_realtime\": null"));
	bad(LOAD, LOAD_WITH(", \"clock_realtime\": true"),
	    "snapshot_load.clock_realtime: advancing kvmclock");
	bad(LOAD, LOAD_WITH(", \"clock_realtime\": 0"),
	    "snapshot_load.clock_realtime must be a boolean");
}

/* Firecracker's huge_pages: "Snapshot" (the default) is what kiln does; other sizes refused */
Test(snap_load, huge_pages)
{
	ok(LOAD, LOAD_WITH(", \"huge_pages\": \"Snapshot\""));
	ok(LOAD, LOAD_WITH(", \"huge_pages\": null"));
	bad(LOAD, LOAD_WITH(", \"huge_pages\": \"2M\""),
	    "snapshot_load.huge_pages \"2M\": restoring with other pages");
	bad(LOAD, LOAD_WITH(", \"huge_pages\": \"None\""), "give \"Snapshot\" or leave it out");
	bad(LOAD, LOAD_WITH(", \"huge_pages\": \"1G\""), "must be one of \"Snapshot\"");
	bad(LOAD, LOAD_WITH(", \"huge_pages\": 2"), "snapshot_load.huge_pages must be a string");
}

Test(snap_load, strict)
{
	bad(LOAD, LOAD_WITH(", \"huge_page\": \"2M\""),
	    "unknown field \"huge_page\" in snapshot_load");
	bad(LOAD, "\"/s\"", "snapshot_load must be an object");
	/* the router's rules apply: duplicate keys, a body required */
	bad(LOAD,
	    "{\"snapshot_path\": \"/s\", \"snapshot_path\": \"/t\", \"mem_file_path\": \"/m\"}",
	    "duplicate");
	cr_assert_eq(api_route("PUT", LOAD, NULL, 0, &act, &err), -EINVAL);
	cr_assert(strstr(err.msg, "Empty PUT request."));
	cr_assert_eq(api_route("GET", LOAD, NULL, 0, &act, &err), -ENOTSUP);
	cr_assert(strstr(err.msg, "Invalid request method and/or path: GET snapshot."), "%s",
	          err.msg);
}

/* a refused body leaves nothing allocated (run under ASan/valgrind to see) */
Test(snap_load, errors_release_everything)
{
	bad(LOAD,
	    "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"vsock_override\": "
	    "{\"uds_path\": \"/v\"}, \"network_overrides\": [" OVR("eth0", "tap0") ", " OVR(
	            "eth1", "tap0") "], \"mem_backend\": {\"backend_type\": \"File\", "
	                            "\"backend_path\": \"/b\"}}",
	    "network_overrides[1].host_dev_name");
	bad(LOAD,
	    "{\"snapshot_path\": \"/s\", \"network_overrides\": [" OVR(
	            "eth0", "tap0") "], \"vsock_override\": {\"uds_path\": \"/v\"}, "
	                            "\"mem_backend\": {\"backend_type\": \"File\", "
	                            "\"backend_path\": \"/b\"}, \"mem_file_path\": \"/m\"}",
	    "too many fields");
	cr_assert_eq(act.u.snapshot_load.nr_net_overrides, 0);
	cr_assert_null(act.u.snapshot_load.snapshot_path);
}
