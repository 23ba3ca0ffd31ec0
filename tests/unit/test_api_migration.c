// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_api_migration.c: kiln's own /migration endpoints through
 * the router (api/router.c, api/parse_migration.c): the four routes and
 * their 400 neighbours (Firecracker's unknown path or method), every field of the send and receive
 * bodies with its default and its refusals, and the address check on its own.
 */
#include "api_rig.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

TestSuite(mig_routes, .fini = api_rig_fini);
TestSuite(mig_send, .fini = api_rig_fini);
TestSuite(mig_receive, .fini = api_rig_fini);
TestSuite(mig_address);

static void ok(const char *path, const char *body)
{
	expect("PUT", path, body, 0, NULL);
}

/* refused (-EINVAL: a 400) with `msg` inside the message */
static void bad(const char *path, const char *body, const char *msg)
{
	expect("PUT", path, body, -EINVAL, msg);
}

#define SEND    "/migration/send"
#define RECEIVE "/migration/receive"

/* a send body to `dest` with `rest` (", ..." or "") after it */
#define SEND_TO(dest, rest) "{\"destination\": \"" dest "\"" rest "}"
/* a receive body on a unix socket with `rest` after it */
#define RECV_WITH(rest) "{\"listen\": \"unix:/run/kiln-mig.sock\"" rest "}"

/* ----------------------------------------------------------------- routes */

Test(mig_routes, the_four_routes)
{
	expect_kind("GET", "/migration", NULL, API_GET_MIGRATION);
	expect_kind("PUT", "/migration/cancel", NULL, API_MIGRATION_CANCEL);
	expect_kind("PUT", SEND, SEND_TO("tcp:10.0.0.2:4000", ""), API_MIGRATION_SEND);
	expect_kind("PUT", RECEIVE, "{\"listen\": \"tcp:0.0.0.0:4000\"}", API_MIGRATION_RECEIVE);
	/* one trailing slash is tolerated, as on every other path */
	expect_kind("GET", "/migration/", NULL, API_GET_MIGRATION);
	expect_kind("PUT", "/migration/cancel/", NULL, API_MIGRATION_CANCEL);
}

Test(mig_routes, bodies_where_none_is_taken_and_none_where_one_is_needed)
{
	expect("GET", "/migration", "{}", -EINVAL, "GET request cannot have a body.");
	expect("PUT", "/migration/cancel", "{}", -EINVAL, "PUT request cannot have a body.");
	expect("PUT", SEND, NULL, -EINVAL, "Empty PUT request.");
	expect("PUT", RECEIVE, NULL, -EINVAL, "Empty PUT request.");
	expect("PUT", SEND, "{\"destination\": ", -EINVAL, "deserializing the json body");
	cr_assert_eq(api_route_status(-EINVAL), 400);
}

Test(mig_routes, unknown_paths_are_400)
{
	static const char *const paths[] = {
	        "/migration/x", "/migration/send/x", "/migration//send", "/migrations",
	        "/Migration",   "/migration/status", "/migration/start", "/migrate"};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		expect("PUT", paths[i], "{}", -ENOENT, "Invalid request method and/or path");
		cr_assert_eq(api_route_status(-ENOENT), 400);
		expect("GET", paths[i], NULL, -ENOENT, NULL);
	}
}

Test(mig_routes, wrong_methods_are_400)
{
	char allow[32];

	expect("PUT", "/migration", "{}", -ENOTSUP,
	       "Invalid request method and/or path: PUT migration.");
	expect("PATCH", "/migration", "{}", -ENOTSUP, "PATCH migration.");
	expect("GET", SEND, NULL, -ENOTSUP, "Invalid request method and/or path: GET migration.");
	expect("PATCH", RECEIVE, "{}", -ENOTSUP, "PATCH migration.");
	expect("GET", "/migration/cancel", NULL, -ENOTSUP, "GET migration.");
	expect("DELETE", "/migration/cancel", NULL, -ENOTSUP, "DELETE migration.");
	cr_assert_eq(api_route_status(-ENOTSUP), 400);
	cr_assert_str_eq(api_route_allow("/migration", allow, sizeof(allow)), "GET");
	cr_assert_str_eq(api_route_allow("/migration/send", allow, sizeof(allow)), "PUT");
	cr_assert_str_eq(api_route_allow("/migration/receive/", allow, sizeof(allow)), "PUT");
}

Test(mig_routes, names)
{
	cr_assert_str_eq(api_action_name(API_GET_MIGRATION), "GET /migration");
	cr_assert_str_eq(api_action_name(API_MIGRATION_SEND), "PUT /migration/send");
	cr_assert_str_eq(api_action_name(API_MIGRATION_RECEIVE), "PUT /migration/receive");
	cr_assert_str_eq(api_action_name(API_MIGRATION_CANCEL), "PUT /migration/cancel");
}

/* ------------------------------------------------------------------- send */

Test(mig_send, defaults)
{
	struct migration_send_req *r = &act.u.migration_send;

	ok(SEND, SEND_TO("tcp:10.0.0.2:4000", ""));
	cr_assert_str_eq(r->destination, "tcp:10.0.0.2:4000");
	cr_assert_eq(r->max_downtime_ms, MIG_DEFAULT_MAX_DOWNTIME_MS);
	cr_assert_eq(r->max_iterations, MIG_DEFAULT_MAX_ITERATIONS);
	cr_assert_eq(r->bandwidth_limit_mib_s, 0);
	/* null is absent */
	ok(SEND, SEND_TO("unix:/run/m.sock", ", \"max_downtime_ms\": null, \"max_iterations\": "
	                                     "null, \"bandwidth_limit_mib_s\": null"));
	cr_assert_str_eq(r->destination, "unix:/run/m.sock");
	cr_assert_eq(r->max_downtime_ms, MIG_DEFAULT_MAX_DOWNTIME_MS);
	cr_assert_eq(r->max_iterations, MIG_DEFAULT_MAX_ITERATIONS);
	cr_assert_eq(r->bandwidth_limit_mib_s, 0);
}

Test(mig_send, every_field)
{
	struct migration_send_req *r = &act.u.migration_send;

	ok(SEND, "{\"bandwidth_limit_mib_s\": 100, \"max_iterations\": 5, \"destination\": "
	         "\"tcp:[::1]:4000\", \"max_downtime_ms\": 50}");
	cr_assert_str_eq(r->destination, "tcp:[::1]:4000");
	cr_assert_eq(r->max_downtime_ms, 50);
	cr_assert_eq(r->max_iterations, 5);
	cr_assert_eq(r->bandwidth_limit_mib_s, 100);
	/* the limits of each range */
	ok(SEND, SEND_TO("tcp:h:1", ", \"max_downtime_ms\": 1, \"max_iterations\": 1, "
	                            "\"bandwidth_limit_mib_s\": 0"));
	cr_assert_eq(r->max_downtime_ms, 1);
	cr_assert_eq(r->max_iterations, 1);
	cr_assert_eq(r->bandwidth_limit_mib_s, 0);
	ok(SEND, SEND_TO("tcp:h:1", ", \"max_downtime_ms\": 4294967295, \"max_iterations\": "
	                            "4294967295, \"bandwidth_limit_mib_s\": 4294967295"));
	cr_assert_eq(r->max_downtime_ms, UINT32_MAX);
	cr_assert_eq(r->max_iterations, UINT32_MAX);
	cr_assert_eq(r->bandwidth_limit_mib_s, UINT32_MAX);
}

Test(mig_send, numbers_out_of_range_or_of_the_wrong_type)
{
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_downtime_ms\": 0"),
	    "migration_send.max_downtime_ms must be between 1 and 4294967295 (got 0)");
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_downtime_ms\": -5"),
	    "migration_send.max_downtime_ms must be between 1 and 4294967295 (got -5)");
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_downtime_ms\": 4294967296"),
	    "migration_send.max_downtime_ms must be between 1 and 4294967295 (got 4294967296)");
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_downtime_ms\": 1.5"),
	    "migration_send.max_downtime_ms must be an integer");
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_downtime_ms\": \"300\""),
	    "migration_send.max_downtime_ms must be an integer");
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_iterations\": 0"),
	    "migration_send.max_iterations must be between 1 and 4294967295 (got 0)");
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_iterations\": 4294967296"),
	    "migration_send.max_iterations must be between 1 and 4294967295");
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_iterations\": true"),
	    "migration_send.max_iterations must be an integer");
	bad(SEND, SEND_TO("tcp:h:1", ", \"bandwidth_limit_mib_s\": -1"),
	    "migration_send.bandwidth_limit_mib_s must be between 0 and 4294967295 (got -1)");
	bad(SEND, SEND_TO("tcp:h:1", ", \"bandwidth_limit_mib_s\": 4294967296"),
	    "migration_send.bandwidth_limit_mib_s must be between 0 and 4294967295");
	bad(SEND, SEND_TO("tcp:h:1", ", \"bandwidth_limit_mib_s\": 2.0"),
	    "migration_send.bandwidth_limit_mib_s must be an integer");
}

Test(mig_send, destination_is_required)
{
	bad(SEND, "{}", "migration_send: missing required field \"destination\"");
	bad(SEND, "{\"max_downtime_ms\": 100}",
	    "migration_send: missing required field \"destination\"");
	bad(SEND, "{\"destination\": null}", "migration_send.destination must not be null");
	bad(SEND, "{\"destination\": \"\"}", "migration_send.destination must not be empty");
	bad(SEND, "{\"destination\": 4000}", "migration_send.destination must be a string");
	bad(SEND, "{\"destination\": \"tcp:h:1\\u0000x\"}", "\\u0000 is not allowed");
}

Test(mig_send, destination_form)
{
	bad(SEND, SEND_TO("10.0.0.2:4000", ""),
	    "migration_send.destination must be \"tcp:HOST:PORT\" or \"unix:PATH\" (got "
	    "\"10.0.0.2:4000\")");
	bad(SEND, SEND_TO("tcp:h:0", ""),
	    "migration_send.destination must be \"tcp:HOST:PORT\" or \"unix:PATH\" (got "
	    "\"tcp:h:0\"): the PORT must be a number from 1 to 65535");
	bad(SEND, SEND_TO("tcp:h:65536", ""), "the PORT must be a number from 1 to 65535");
	bad(SEND, SEND_TO("tcp:h:x", ""), "the PORT must be a number from 1 to 65535");
	bad(SEND, SEND_TO("unix:", ""),
	    "migration_send.destination must be \"tcp:HOST:PORT\" or \"unix:PATH\" (got "
	    "\"unix:\"): the PATH is empty");
}

Test(mig_send, strict)
{
	bad(SEND, SEND_TO("tcp:h:1", ", \"compress\": true"),
	    "unknown field \"compress\" in migration_send");
	bad(SEND, SEND_TO("tcp:h:1", ", \"listen\": \"tcp:h:2\""),
	    "unknown field \"listen\" in migration_send");
	bad(SEND, "[\"tcp:h:1\"]", "migration_send must be an object");
	bad(SEND, "\"tcp:h:1\"", "migration_send must be an object");
	bad(SEND, "{\"destination\": \"tcp:h:1\", \"destination\": \"tcp:h:2\"}", "duplicate");
}

/* a refused body leaves nothing allocated (ASan's leak check sees it) */
Test(mig_send, errors_release_everything)
{
	bad(SEND, SEND_TO("tcp:h:1", ", \"max_iterations\": 0"), "max_iterations");
	cr_assert_null(act.u.migration_send.destination);
	bad(SEND, SEND_TO("tcp:h:99999", ""), "PORT");
	cr_assert_null(act.u.migration_send.destination);
}

/* ---------------------------------------------------------------- receive */

#define OVR(id, tap)  "{\"iface_id\": \"" id "\", \"host_dev_name\": \"" tap "\"}"
#define DOVR(id, pth) "{\"drive_id\": \"" id "\", \"path_on_host\": \"" pth "\"}"
#define NETS2         "[" OVR("eth0", "tap7") ", " OVR("eth1", "tap8") "]"
#define DRIVES2       "[" DOVR("rootfs", "/srv/root.ext4") ", " DOVR("data", "/srv/data.img") "]"
#define DRIVES2_TWICE "[" DOVR("rootfs", "/r") ", " DOVR("data", "/d") ", " DOVR("rootfs", "/c") "]"

Test(mig_receive, listen_alone)
{
	struct migration_receive_req *r = &act.u.migration_receive;

	ok(RECEIVE, RECV_WITH(""));
	cr_assert_str_eq(r->listen, "unix:/run/kiln-mig.sock");
	cr_assert_eq(r->nr_net_overrides, 0);
	cr_assert_eq(r->nr_drive_overrides, 0);
	cr_assert_null(r->vsock_uds_path);
	ok(RECEIVE, RECV_WITH(", \"network_overrides\": null, \"drive_overrides\": null, "
	                      "\"vsock_override\": null"));
	cr_assert_eq(r->nr_net_overrides + r->nr_drive_overrides, 0);
	cr_assert_null(r->vsock_uds_path);
	ok(RECEIVE, RECV_WITH(", \"network_overrides\": [], \"drive_overrides\": []"));
	cr_assert_eq(r->nr_net_overrides + r->nr_drive_overrides, 0);
}

Test(mig_receive, every_field)
{
	struct migration_receive_req *r = &act.u.migration_receive;

	ok(RECEIVE, "{\"listen\": \"tcp:[fe80::1%eth0]:4000\", \"network_overrides\": " NETS2
	            ", \"drive_overrides\": " DRIVES2 ", \"vsock_override\": {\"uds_path\": "
	            "\"/run/v.sock\"}}");
	cr_assert_str_eq(r->listen, "tcp:[fe80::1%eth0]:4000");
	cr_assert_eq(r->nr_net_overrides, 2);
	cr_assert_str_eq(r->net_overrides[0].iface_id, "eth0");
	cr_assert_str_eq(r->net_overrides[0].host_dev_name, "tap7");
	cr_assert_str_eq(r->net_overrides[1].iface_id, "eth1");
	cr_assert_str_eq(r->net_overrides[1].host_dev_name, "tap8");
	cr_assert_eq(r->nr_drive_overrides, 2);
	cr_assert_str_eq(r->drive_overrides[0].drive_id, "rootfs");
	cr_assert_str_eq(r->drive_overrides[0].path_on_host, "/srv/root.ext4");
	cr_assert_str_eq(r->drive_overrides[1].drive_id, "data");
	cr_assert_str_eq(r->drive_overrides[1].path_on_host, "/srv/data.img");
	cr_assert_str_eq(r->vsock_uds_path, "/run/v.sock");
}

Test(mig_receive, listen_is_required_and_checked)
{
	bad(RECEIVE, "{}", "migration_receive: missing required field \"listen\"");
	bad(RECEIVE, "{\"drive_overrides\": []}",
	    "migration_receive: missing required field \"listen\"");
	bad(RECEIVE, "{\"listen\": \"\"}", "migration_receive.listen must not be empty");
	bad(RECEIVE, "{\"listen\": 4000}", "migration_receive.listen must be a string");
	bad(RECEIVE, "{\"listen\": \"tcp:0.0.0.0:0\"}",
	    "migration_receive.listen must be \"tcp:HOST:PORT\" or \"unix:PATH\" (got "
	    "\"tcp:0.0.0.0:0\"): the PORT must be a number from 1 to 65535");
	bad(RECEIVE, "{\"listen\": \"vsock:3:4000\"}",
	    "migration_receive.listen must be \"tcp:HOST:PORT\" or \"unix:PATH\"");
}

Test(mig_receive, network_overrides_follow_snapshot_load)
{
	bad(RECEIVE, RECV_WITH(", \"network_overrides\": " OVR("eth0", "tap0")),
	    "migration_receive.network_overrides must be an array");
	bad(RECEIVE, RECV_WITH(", \"network_overrides\": [" OVR("eth-0", "tap0") "]"),
	    "migration_receive.network_overrides[0].iface_id \"eth-0\" is invalid");
	bad(RECEIVE, RECV_WITH(", \"network_overrides\": [{\"iface_id\": \"eth0\"}]"),
	    "migration_receive.network_overrides[0]: missing required field \"host_dev_name\"");
	bad(RECEIVE, RECV_WITH(", \"network_overrides\": [" OVR("eth0", "a/b") "]"),
	    "migration_receive.network_overrides[0].host_dev_name \"a/b\" is not a valid "
	    "interface");
	bad(RECEIVE,
	    RECV_WITH(
	            ", \"network_overrides\": [" OVR("eth0", "tap0") ", " OVR("eth0", "tap1") "]"),
	    "migration_receive.network_overrides[1].iface_id \"eth0\" is already overridden by "
	    "network_overrides[0]");
	bad(RECEIVE,
	    RECV_WITH(
	            ", \"network_overrides\": [" OVR("eth0", "tap0") ", " OVR("eth1", "tap0") "]"),
	    "migration_receive.network_overrides[1].host_dev_name \"tap0\" is already given to "
	    "network_overrides[0]");
	bad(RECEIVE,
	    RECV_WITH(", \"network_overrides\": [{\"iface_id\": \"eth0\", \"host_dev_name\": "
	              "\"tap0\", \"guest_mac\": \"06:00:00:00:00:01\"}]"),
	    "unknown field \"guest_mac\" in migration_receive.network_overrides[0]");
}

Test(mig_receive, drive_overrides)
{
	bad(RECEIVE, RECV_WITH(", \"drive_overrides\": " DOVR("rootfs", "/r")),
	    "migration_receive.drive_overrides must be an array");
	bad(RECEIVE, RECV_WITH(", \"drive_overrides\": [\"rootfs\"]"),
	    "migration_receive.drive_overrides[0] must be an object");
	bad(RECEIVE, RECV_WITH(", \"drive_overrides\": [" DOVR("root-fs", "/r") "]"),
	    "migration_receive.drive_overrides[0].drive_id \"root-fs\" is invalid");
	bad(RECEIVE, RECV_WITH(", \"drive_overrides\": [" DOVR("", "/r") "]"),
	    "migration_receive.drive_overrides[0].drive_id \"\" is invalid");
	bad(RECEIVE, RECV_WITH(", \"drive_overrides\": [" DOVR("rootfs", "") "]"),
	    "migration_receive.drive_overrides[0].path_on_host must not be empty");
	bad(RECEIVE, RECV_WITH(", \"drive_overrides\": [{\"drive_id\": \"rootfs\"}]"),
	    "migration_receive.drive_overrides[0]: missing required field \"path_on_host\"");
	bad(RECEIVE, RECV_WITH(", \"drive_overrides\": [{\"path_on_host\": \"/r\"}]"),
	    "migration_receive.drive_overrides[0]: missing required field \"drive_id\"");
	bad(RECEIVE,
	    RECV_WITH(", \"drive_overrides\": [{\"drive_id\": \"rootfs\", \"path_on_host\": "
	              "\"/r\", \"is_read_only\": true}]"),
	    "unknown field \"is_read_only\" in migration_receive.drive_overrides[0]");
	bad(RECEIVE,
	    RECV_WITH(", \"drive_overrides\": [{\"drive_id\": \"rootfs\", "
	              "\"path_on_host\": 3}]"),
	    "migration_receive.drive_overrides[0].path_on_host must be a string");
}

Test(mig_receive, drive_overrides_duplicates)
{
	bad(RECEIVE, RECV_WITH(", \"drive_overrides\": " DRIVES2_TWICE),
	    "migration_receive.drive_overrides[2].drive_id \"rootfs\" is already overridden by "
	    "drive_overrides[0]");
	/* two drives on one file is the daemon's business, not the parser's */
	ok(RECEIVE,
	   RECV_WITH(", \"drive_overrides\": [" DOVR("a", "/same") ", " DOVR("b", "/same") "]"));
	cr_assert_eq(act.u.migration_receive.nr_drive_overrides, 2);
}

Test(mig_receive, at_most_CFG_MAX_DRIVES_drive_overrides)
{
	char body[4096], list[3000] = "";
	size_t n = 0;

	for (int i = 0; i < CFG_MAX_DRIVES + 1; i++) {
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s" DOVR("d%d", "/d%d"),
		                      i ? ", " : "", i, i);
		cr_assert_lt(n, sizeof(list));
		snprintf(body, sizeof(body), RECV_WITH(", \"drive_overrides\": [%s]"), list);
		if (i < CFG_MAX_DRIVES) {
			ok(RECEIVE, body);
			cr_assert_eq(act.u.migration_receive.nr_drive_overrides, (unsigned)i + 1);
		} else {
			bad(RECEIVE, body,
			    "migration_receive.drive_overrides has 17 entries, at most 16 are "
			    "allowed");
		}
	}
}

Test(mig_receive, vsock_override)
{
	char body[512], path[200];

	ok(RECEIVE, RECV_WITH(", \"vsock_override\": {\"uds_path\": \"/run/v2.sock\"}"));
	cr_assert_str_eq(act.u.migration_receive.vsock_uds_path, "/run/v2.sock");
	bad(RECEIVE, RECV_WITH(", \"vsock_override\": {}"),
	    "migration_receive.vsock_override: missing required field \"uds_path\"");
	bad(RECEIVE, RECV_WITH(", \"vsock_override\": {\"uds_path\": \"\"}"),
	    "migration_receive.vsock_override.uds_path must not be empty");
	bad(RECEIVE, RECV_WITH(", \"vsock_override\": {\"uds_path\": \"/v\", \"guest_cid\": 3}"),
	    "unknown field \"guest_cid\" in migration_receive.vsock_override");
	bad(RECEIVE, RECV_WITH(", \"vsock_override\": \"/v\""),
	    "migration_receive.vsock_override must be an object");
	memset(path, 'v', 120);
	path[120] = '\0';
	snprintf(body, sizeof(body), RECV_WITH(", \"vsock_override\": {\"uds_path\": \"%s\"}"),
	         path);
	bad(RECEIVE, body,
	    "migration_receive.vsock_override.uds_path is too long for a unix socket");
}

Test(mig_receive, strict)
{
	bad(RECEIVE, RECV_WITH(", \"destination\": \"tcp:h:1\""),
	    "unknown field \"destination\" in migration_receive");
	bad(RECEIVE, RECV_WITH(", \"machine_config\": {}"),
	    "unknown field \"machine_config\" in migration_receive");
	bad(RECEIVE, "[]", "migration_receive must be an object");
}

/* every string already taken is freed when a later field is refused */
Test(mig_receive, errors_release_everything)
{
	struct migration_receive_req *r = &act.u.migration_receive;

	bad(RECEIVE,
	    "{\"vsock_override\": {\"uds_path\": \"/v\"}, \"network_overrides\": " NETS2
	    ", \"drive_overrides\": " DRIVES2_TWICE ", \"listen\": \"unix:/m\"}",
	    "drive_overrides[2].drive_id \"rootfs\" is already overridden");
	bad(RECEIVE,
	    "{\"drive_overrides\": " DRIVES2 ", \"network_overrides\": " NETS2
	    ", \"vsock_override\": {\"uds_path\": \"/v\"}, \"listen\": \"tcp:h:0\"}",
	    "PORT");
	bad(RECEIVE,
	    "{\"listen\": \"unix:/m\", \"drive_overrides\": [" DOVR(
	            "a", "/a") ", {\"drive_id\": \"b\", \"path_on_host\": \"/b\", \"x\": 1}]}",
	    "unknown field \"x\"");
	cr_assert_null(r->listen);
	cr_assert_null(r->vsock_uds_path);
	cr_assert_eq(r->nr_net_overrides, 0);
	cr_assert_eq(r->nr_drive_overrides, 0);
}

/* ---------------------------------------------------------------- address */

static void addr_ok(const char *a)
{
	struct errbuf e = {{0}};
	int ret = api_migration_address_check(a, "addr", &e);
	cr_assert_eq(ret, 0, "\"%s\" refused: %s", a, e.msg);
}

static void addr_bad(const char *a, const char *msg)
{
	struct errbuf e = {{0}};
	int ret = api_migration_address_check(a, "addr", &e);
	cr_assert_eq(ret, -EINVAL, "\"%s\" taken", a);
	cr_assert(strstr(e.msg, msg), "\"%s\": message \"%s\" lacks \"%s\"", a, e.msg, msg);
	cr_assert(strncmp(e.msg, "addr", 4) == 0, "\"%s\": message \"%s\" names no field", a,
	          e.msg);
}

Test(mig_address, tcp)
{
	addr_ok("tcp:127.0.0.1:4000");
	addr_ok("tcp:localhost:1");
	addr_ok("tcp:kiln-target_2.example.com:65535");
	addr_ok("tcp:[::1]:4000");
	addr_ok("tcp:[::]:4000");
	addr_ok("tcp:[2001:db8::7]:80");
	addr_ok("tcp:[::ffff:10.0.0.1]:80");
	addr_ok("tcp:[fe80::1%eth0]:4000");
	addr_ok("tcp:h:00080");
}

Test(mig_address, bad_ports)
{
	static const char *const addrs[] = {
	        "tcp:h:0",     "tcp:h:65536", "tcp:h:x",      "tcp:h:",
	        "tcp:h:-1",    "tcp:h:+80",   "tcp:h: 80",    "tcp:h:80 ",
	        "tcp:h:4000x", "tcp:h:0x50",  "tcp:h:100000", "tcp:h:999999999999999999999",
	        "tcp:[::1]:0", "tcp:[::1]:"};
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++)
		addr_bad(addrs[i], "the PORT must be a number from 1 to 65535");
}

Test(mig_address, bad_hosts)
{
	char host[300];

	addr_bad("tcp:h", "the :PORT is missing");
	addr_bad("tcp:", "the :PORT is missing");
	addr_bad("tcp::4000", "the HOST is empty");
	addr_bad("tcp:::1:4000", "an IPv6 HOST goes in brackets");
	addr_bad("tcp:[::1]4000", "an IPv6 HOST is \"[ADDRESS]:PORT\"");
	addr_bad("tcp:[::1:4000", "an IPv6 HOST is \"[ADDRESS]:PORT\"");
	addr_bad("tcp:[]:4000", "the brackets hold no IPv6 address");
	addr_bad("tcp:[10.0.0.1]:4000", "the brackets hold no IPv6 address");
	addr_bad("tcp:[localhost]:4000", "the brackets hold no IPv6 address");
	addr_bad("tcp:[fe80::1%]:4000", "the IPv6 zone after '%' is empty");
	addr_bad("tcp:a b:4000", "the HOST may only have letters, digits");
	addr_bad("tcp:a/b:4000", "the HOST may only have letters, digits");
	addr_bad("tcp:h]:4000", "the HOST may only have letters, digits");
	/* a DNS name has at most 253 characters */
	memcpy(host, "tcp:", 4);
	memset(host + 4, 'h', 254);
	strcpy(host + 4 + 254, ":80");
	addr_bad(host, "the HOST is longer than 253 characters");
	strcpy(host + 4 + 253, ":80");
	addr_ok(host);
}

Test(mig_address, unix)
{
	char a[200];

	addr_ok("unix:/run/kiln-mig.sock");
	addr_ok("unix:relative.sock");
	addr_bad("unix:", "(got \"unix:\"): the PATH is empty");
	/* sun_path holds 108 bytes with the NUL: 107 fit, 108 do not */
	memcpy(a, "unix:", 5);
	memset(a + 5, 'p', 107);
	a[5 + 107] = '\0';
	addr_ok(a);
	strcat(a, "p");
	addr_bad(a, "addr: the unix socket path is too long (108 bytes, max 107)");
}

Test(mig_address, neither_form)
{
	static const char *const addrs[] = {"/run/m.sock",  "10.0.0.2:4000", "TCP:h:1",
	                                    "udp:h:1",      "unix",          "tcp",
	                                    "vsock:3:4000", " tcp:h:1"};
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++)
		addr_bad(addrs[i], "addr must be \"tcp:HOST:PORT\" or \"unix:PATH\" (got \"");
}
