// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_config_json.c: api/config -- the bodies of the HTTP API's
 * resources, the deprecated and optional fields Firecracker accepts, and
 * vm_config back to JSON (round trips, metrics, balloon, the shape).
 */
#include "config_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

TestSuite(config_json, .init = config_setup, .fini = config_teardown);

/* ------------------------------------------------- per-resource (HTTP) API */

static json_t *js(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	cr_assert_not_null(j, "%s", je.text);
	return j;
}

Test(config_json, resource_parsers_name_the_resource)
{
	struct drive_cfg d = {0};
	json_t *j = js("{\"drive_id\": \"r\", \"path_on_host\": 1, \"is_root_device\": true}");
	cr_expect_eq(cfg_parse_drive(j, &d, &err), -EINVAL);
	cr_expect_str_eq(err.msg, "drive.path_on_host must be a string");
	cr_expect_null(d.path_on_host);
	json_decref(j);

	j = js("{\"drive_id\": \"r\", \"path_on_host\": \"/r\", \"is_root_device\": true,"
	       " \"partuuid\": \"x y\"}");
	cr_expect_eq(cfg_parse_drive(j, &d, &err), -EINVAL); /* partuuid freed inside (LSan) */
	cr_expect_null(d.partuuid);
	json_decref(j);

	struct net_cfg n = {0};
	j = js("{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"allow_mmds_requests\": "
	       "true}");
	cr_expect_eq(cfg_parse_net(j, &n, &err), -EINVAL);
	cr_expect_str_eq(err.msg, "unknown field \"allow_mmds_requests\" in network-interface");
	json_decref(j);

	struct machine_cfg m = {0};
	j = js("{\"vcpu_count\": 4, \"mem_size_mib\": 256, \"cpu_template\": \"None\"}");
	cr_assert_eq(cfg_parse_machine(j, &m, &err), 0, "%s", err.msg);
	cr_expect(m.vcpu_count == 4 && m.mem_size_mib == 256 && !m.cpu_template);
	json_decref(j);

	struct boot_source_cfg b = {0};
	j = js("{\"kernel_image_path\": \"/k\", \"boot_args\": \"quiet\"}");
	cr_assert_eq(cfg_parse_boot_source(j, &b, &err), 0, "%s", err.msg);
	cr_expect_str_eq(b.boot_args, "quiet");
	boot_source_cfg_free(&b);
	boot_source_cfg_free(&b); /* idempotent */
	json_decref(j);

	struct vsock_cfg v = {0};
	j = js("{\"guest_cid\": 52, \"uds_path\": \"/v.sock\", \"vsock_id\": \"old\"}");
	cr_assert_eq(cfg_parse_vsock(j, &v, &err), 0, "%s", err.msg);
	cr_expect(v.set && v.guest_cid == 52);
	vsock_cfg_free(&v);
	json_decref(j);

	struct entropy_cfg en = {0};
	j = js("{}");
	cr_assert_eq(cfg_parse_entropy(j, &en, &err), 0, "%s", err.msg);
	cr_expect(en.set && !en.rate_limiter.bandwidth.set);
	json_decref(j);

	struct metrics_cfg mt = {0};
	j = js("{\"metrics_path\": \"/m\"}");
	cr_assert_eq(cfg_parse_metrics(j, &mt, &err), 0, "%s", err.msg);
	cr_expect(mt.set);
	metrics_cfg_free(&mt);
	json_decref(j);

	struct logger_cfg l = {0};
	j = js("{\"log_path\": \"/l\", \"level\": \"Warning\", \"module\": \"api\"}");
	cr_assert_eq(cfg_parse_logger(j, &l, &err), 0, "%s", err.msg);
	cr_expect(l.set && l.level == LOG_WARN);
	logger_cfg_free(&l);
	json_decref(j);

	/* not an object, and the NULL errbuf is allowed */
	j = js("[1]");
	cr_expect_eq(cfg_parse_metrics(j, &mt, NULL), -EINVAL);
	json_decref(j);
}

Test(config_json, deprecated_and_optional_fields_accepted)
{
	cr_assert_eq(
	        parse("{" BS ", \"drives\": [{\"drive_id\": \"r\", \"path_on_host\": \"/r\","
	              " \"is_root_device\": true, \"partuuid\": \"PARTUUID_ok-1\","
	              " \"rate_limiter\": null, \"io_engine\": \"Sync\", \"cache_type\":"
	              " \"Unsafe\", \"socket\": null}], \"vsock\": {\"vsock_id\": \"v\","
	              " \"guest_cid\": 4294967294, \"uds_path\": \"/v\"},"
	              " \"machine-config\": {\"vcpu_count\": 32, \"mem_size_mib\": 1048576,"
	              " \"smt\": true, \"track_dirty_pages\": false, \"cpu_template\": \"None\","
	              " \"huge_pages\": \"2M\"}}"),
	        0, "%s", err.msg);
	cr_expect_eq(cfg.vsock.guest_cid, 0xfffffffeu);
	cr_expect_eq(cfg.machine.mem_size_mib, 1048576);
}

/* -------------------------------------------------------------- to JSON */

static void expect_same_config(const struct vm_config *a, const struct vm_config *b)
{
	json_t *ja = cfg_to_json(a), *jb = cfg_to_json(b);
	cr_assert(ja && jb);
	char *sa = json_dumps(ja, JSON_SORT_KEYS), *sb = json_dumps(jb, JSON_SORT_KEYS);
	cr_expect_str_eq(sa, sb);
	free(sa);
	free(sb);
	json_decref(ja);
	json_decref(jb);

	/* and field by field, for what the JSON could hide */
	cr_expect_eq(a->nr_drives, b->nr_drives);
	cr_expect_eq(a->nr_nets, b->nr_nets);
	cr_expect_eq(a->machine.vcpu_count, b->machine.vcpu_count);
	cr_expect_eq(a->machine.huge_pages, b->machine.huge_pages);
	for (unsigned i = 0; i < a->nr_drives; i++) {
		cr_expect_str_eq(a->drives[i].drive_id, b->drives[i].drive_id);
		cr_expect_eq(a->drives[i].cache_type, b->drives[i].cache_type);
		cr_expect_eq(a->drives[i].io_engine, b->drives[i].io_engine);
		cr_expect_eq(memcmp(&a->drives[i].rate_limiter, &b->drives[i].rate_limiter,
		                    sizeof(a->drives[i].rate_limiter)),
		             0);
	}
	for (unsigned i = 0; i < a->nr_nets; i++) {
		cr_expect_eq(a->nets[i].has_mac, b->nets[i].has_mac);
		cr_expect_arr_eq(a->nets[i].guest_mac, b->nets[i].guest_mac, 6);
		cr_expect_eq(memcmp(&a->nets[i].rx_rate_limiter, &b->nets[i].rx_rate_limiter,
		                    sizeof(struct rate_limiter_cfg)),
		             0);
	}
	cr_expect_eq(a->vsock.guest_cid, b->vsock.guest_cid);
	cr_expect_eq(a->logger.level, b->logger.level);
	cr_expect_eq(a->logger.set, b->logger.set);
	cr_expect_eq(a->entropy.set, b->entropy.set);
	cr_expect_eq(a->metrics.set, b->metrics.set);
	cr_expect(a->balloon.set == b->balloon.set &&
	                  a->balloon.amount_mib == b->balloon.amount_mib &&
	                  a->balloon.deflate_on_oom == b->balloon.deflate_on_oom &&
	                  a->balloon.stats_polling_interval_s ==
	                          b->balloon.stats_polling_interval_s &&
	                  a->balloon.free_page_hinting == b->balloon.free_page_hinting &&
	                  a->balloon.free_page_reporting == b->balloon.free_page_reporting,
	          "balloon");
}

static void round_trip(const char *doc)
{
	struct vm_config again;

	cr_assert_eq(parse(doc), 0, "%s", err.msg);
	json_t *j = cfg_to_json(&cfg);
	cr_assert_not_null(j);
	char *text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	vm_config_init(&again);
	cr_assert_eq(cfg_parse_document(text, strlen(text), &again, &err), 0, "%s\n%s", err.msg,
	             text);
	expect_same_config(&cfg, &again);
	vm_config_free(&again);
	free(text);
}

Test(config_json, round_trip_full)
{
	round_trip(full_doc);
}

Test(config_json, round_trip_minimal)
{
	round_trip("{" BS "}");
}

Test(config_json, round_trip_zero_buckets_and_empty_strings)
{
	round_trip(
	        "{\"boot-source\": {\"kernel_image_path\": \"/k\", \"boot_args\": \"\"},"
	        " \"drives\": [{\"drive_id\": \"d\", \"path_on_host\": \"/d\", \"is_root_device\":"
	        " false, \"rate_limiter\": {\"bandwidth\": {\"size\": 0, \"refill_time\": 1}}}],"
	        " \"entropy\": {}, \"logger\": {\"module\": \"\"}}");
}

/* Firecracker's Metrics.emit_id and properties (an object of strings), and back in the JSON */
Test(config_json, metrics_emit_id_and_properties)
{
	cr_assert_eq(parse("{" BS ", \"metrics\": {\"metrics_path\": \"/m\", \"emit_id\": true, "
	                   "\"properties\": {\"a\": \"1\", \"b\": \"x\"}}}"),
	             0, "%s", err.msg);
	cr_expect(cfg.metrics.emit_id);
	cr_expect_str_eq(json_string_value(json_object_get(cfg.metrics.properties, "b")), "x");
	json_t *j = cfg_to_json(&cfg), *m = json_object_get(j, "metrics");
	cr_expect(json_is_true(json_object_get(m, "emit_id")));
	cr_expect_eq(json_object_size(json_object_get(m, "properties")), 2);
	json_decref(j);
	vm_config_free(&cfg);
	cr_assert_eq(parse("{" BS ", \"metrics\": {\"metrics_path\": \"/m\", \"properties\": "
	                   "{\"a\": 1}}}"),
	             -EINVAL);
	cr_expect_str_eq(err.msg, "metrics.properties.a must be a string");
	cr_assert_eq(parse("{" BS ", \"metrics\": {\"metrics_path\": \"/m\", \"properties\": []}}"),
	             -EINVAL);
	cr_expect(strstr(err.msg, "metrics.properties must be an object of strings"), "%s",
	          err.msg);
}

Test(config_json, balloon_key)
{
	round_trip("{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"balloon\": "
	           "{\"amount_mib\": 8, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 2, "
	           "\"free_page_hinting\": true, \"free_page_reporting\": true}}");
	vm_config_free(&cfg);
	vm_config_init(&cfg);
	cr_assert_eq(parse("{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"balloon\": "
	                   "{\"amount_mib\": 8, \"deflate_on_oom\": false}}"),
	             0, "%s", err.msg);
	cr_assert(cfg.balloon.set && cfg.balloon.amount_mib == 8);
	cr_assert(cfg.balloon.stats_polling_interval_s == 0 && !cfg.balloon.free_page_hinting);
	static const char *const bad[][2] = {
	        {"{\"amount_mib\": 8, \"deflate_on_oom\": true, \"stats_polling_interval_s\": "
	         "65536}",
	         "stats_polling_interval_s"},
	        {"{\"amount_mib\": 16777216, \"deflate_on_oom\": true}", "amount_mib"},
	        {"{\"amount_mib\": 1, \"deflate_on_oom\": 1}", "deflate_on_oom"},
	        {"{\"deflate_on_oom\": true}", "amount_mib"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		vm_config_free(&cfg);
		vm_config_init(&cfg);
		char *doc = NULL;
		cr_assert(asprintf(&doc,
		                   "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, "
		                   "\"balloon\": %s}",
		                   bad[i][0]) > 0);
		cr_assert_eq(parse(doc), -EINVAL, "case %zu", i);
		cr_assert(strstr(err.msg, bad[i][1]), "case %zu: %s", i, err.msg);
		free(doc);
	}
}

Test(config_json, to_json_shape)
{
	cr_assert_eq(parse(full_doc), 0, "%s", err.msg);
	json_t *j = cfg_to_json(&cfg);
	cr_assert_not_null(j);

	static const char *const keys[] = {
	        "balloon",        "drives",         "boot-source", "cpu-config",         "logger",
	        "machine-config", "metrics",        "mmds-config", "network-interfaces", "vsock",
	        "entropy",        "memory-hotplug", "pmem",
	};
	cr_expect_eq(json_object_size(j), ARRAY_SIZE(keys));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		cr_expect_not_null(json_object_get(j, keys[i]), "no %s", keys[i]);
	cr_expect(json_is_null(json_object_get(j, "balloon")));
	cr_expect(json_is_null(json_object_get(j, "mmds-config")));
	cr_expect_eq(json_array_size(json_object_get(j, "pmem")), 0);

	json_t *d0 = json_array_get(json_object_get(j, "drives"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(d0, "drive_id")), "rootfs");
	cr_expect(json_is_null(json_object_get(d0, "rate_limiter")));
	cr_expect(json_is_null(json_object_get(d0, "socket")));
	cr_expect_str_eq(json_string_value(json_object_get(d0, "io_engine")), "Sync");
	json_t *d1 = json_array_get(json_object_get(j, "drives"), 1);
	json_t *ops = json_object_get(json_object_get(d1, "rate_limiter"), "ops");
	cr_expect(json_is_null(json_object_get(ops, "one_time_burst")));
	cr_expect_eq(json_integer_value(json_object_get(ops, "refill_time")), 1000);

	json_t *n0 = json_array_get(json_object_get(j, "network-interfaces"), 0);
	cr_expect_str_eq(json_string_value(json_object_get(n0, "guest_mac")), "06:00:ac:10:00:02");
	cr_expect(json_is_null(json_object_get(n0, "tx_rate_limiter")));
	json_t *n1 = json_array_get(json_object_get(j, "network-interfaces"), 1);
	cr_expect(json_is_null(json_object_get(n1, "guest_mac")));

	json_t *mc = json_object_get(j, "machine-config");
	cr_expect_str_eq(json_string_value(json_object_get(mc, "huge_pages")), "2M");
	cr_expect_null(json_object_get(mc, "cpu_template"));
	cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "logger"), "level")),
	                 "Debug");
	cr_expect_null(json_object_get(json_object_get(j, "vsock"), "vsock_id"));
	json_decref(j);

	/* nothing configured: null objects, empty arrays, Firecracker's defaults */
	vm_config_free(&cfg);
	j = cfg_to_json(&cfg);
	cr_assert_not_null(j);
	/* boot-source as Firecracker's BootSourceConfig::default(): "" and nulls */
	json_t *bs = json_object_get(j, "boot-source");
	cr_expect_str_eq(json_string_value(json_object_get(bs, "kernel_image_path")), "");
	cr_expect(json_is_null(json_object_get(bs, "initrd_path")));
	cr_expect(json_is_null(json_object_get(bs, "boot_args")));
	cr_expect_eq(json_object_size(bs), 3);
	cr_expect(json_is_null(json_object_get(j, "vsock")));
	cr_expect(json_is_null(json_object_get(j, "logger")));
	cr_expect(json_is_null(json_object_get(j, "entropy")));
	cr_expect_eq(json_array_size(json_object_get(j, "drives")), 0);
	mc = json_object_get(j, "machine-config");
	cr_expect_eq(json_integer_value(json_object_get(mc, "vcpu_count")), 1);
	cr_expect_eq(json_integer_value(json_object_get(mc, "mem_size_mib")), 128);
	cr_expect_str_eq(json_string_value(json_object_get(mc, "huge_pages")), "None");
	json_decref(j);
}
