// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_config.c: api/config -- Firecracker's config file: whole
 * documents, defaults, the errors that name their field, ids and MACs,
 * rate limiters and the logger. test_config_json.c has the per-resource
 * bodies of the HTTP API and the way back to JSON.
 */
#include "config_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MI "\"network_interfaces\": "

TestSuite(config, .init = config_setup, .fini = config_teardown);

Test(config, full_document)
{
	cr_assert_eq(parse(full_doc), 0, "%s", err.msg);
	cr_assert(cfg.has_boot_source);
	cr_expect_str_eq(cfg.boot_source.kernel_image_path, "/img/vmlinux");
	cr_expect_str_eq(cfg.boot_source.initrd_path, "/img/initrd");
	cr_expect_str_eq(cfg.boot_source.boot_args, "console=ttyS0 reboot=k");
	cr_expect_eq(cfg.machine.vcpu_count, 2);
	cr_expect_eq(cfg.machine.mem_size_mib, 1024);
	cr_expect(cfg.machine.smt && cfg.machine.track_dirty_pages);
	cr_expect_null(cfg.machine.cpu_template);
	cr_expect_eq(cfg.machine.huge_pages, HUGE_PAGES_2M);

	cr_assert_eq(cfg.nr_drives, 2);
	/* the root drive is moved first, as Firecracker's BlockBuilder does */
	const struct drive_cfg *r = &cfg.drives[0], *d = &cfg.drives[1];
	cr_expect_str_eq(r->drive_id, "rootfs");
	cr_expect(r->is_root_device && !r->is_read_only);
	cr_expect_str_eq(r->partuuid, "0eaa91a0-01");
	cr_expect_eq(r->cache_type, CACHE_UNSAFE);
	cr_expect_eq(r->io_engine, IO_ENGINE_SYNC);
	cr_expect(!r->rate_limiter.bandwidth.set && !r->rate_limiter.ops.set);
	cr_expect_str_eq(d->drive_id, "data");
	cr_expect_str_eq(d->path_on_host, "/img/data.ext4");
	cr_expect(!d->is_root_device && d->is_read_only);
	cr_expect_null(d->partuuid);
	cr_expect_eq(d->cache_type, CACHE_WRITEBACK);
	cr_expect_eq(d->io_engine, IO_ENGINE_ASYNC);
	cr_expect(d->rate_limiter.bandwidth.set);
	cr_expect_eq(d->rate_limiter.bandwidth.size, 1048576);
	cr_expect_eq(d->rate_limiter.bandwidth.one_time_burst, 4096);
	cr_expect_eq(d->rate_limiter.bandwidth.refill_time_ms, 100);
	cr_expect(d->rate_limiter.ops.set);
	cr_expect_eq(d->rate_limiter.ops.size, 1000);
	cr_expect_eq(d->rate_limiter.ops.one_time_burst, 0);
	cr_expect_eq(d->rate_limiter.ops.refill_time_ms, 1000);

	cr_assert_eq(cfg.nr_nets, 2);
	const struct net_cfg *n = &cfg.nets[0];
	cr_expect_str_eq(n->iface_id, "eth0");
	cr_expect_str_eq(n->host_dev_name, "tap0");
	cr_expect(n->has_mac);
	const uint8_t mac[6] = {0x06, 0x00, 0xac, 0x10, 0x00, 0x02};
	cr_expect_arr_eq(n->guest_mac, mac, 6);
	cr_expect(n->rx_rate_limiter.ops.set && !n->rx_rate_limiter.bandwidth.set);
	cr_expect(!n->tx_rate_limiter.ops.set && !n->tx_rate_limiter.bandwidth.set);
	cr_expect(!cfg.nets[1].has_mac);
	cr_expect_eq(cfg.nets[1].tx_rate_limiter.bandwidth.size, 5);
	cr_expect_eq(cfg.nets[1].tx_rate_limiter.bandwidth.refill_time_ms, 7);
	cr_expect_eq(n->mtu, 0); /* not given */
	cr_expect_eq(cfg.nets[1].mtu, 9000);

	cr_expect(cfg.vsock.set);
	cr_expect_eq(cfg.vsock.guest_cid, 3);
	cr_expect_str_eq(cfg.vsock.uds_path, "/tmp/v.sock");
	cr_expect(cfg.entropy.set && cfg.entropy.rate_limiter.bandwidth.set);
	cr_expect_eq(cfg.entropy.rate_limiter.bandwidth.size, 64);
	cr_expect(cfg.logger.set);
	cr_expect_str_eq(cfg.logger.log_path, "/tmp/log");
	cr_expect_eq(cfg.logger.level, LOG_DEBUG);
	cr_expect(cfg.logger.show_level && cfg.logger.show_log_origin);
	cr_expect_str_eq(cfg.logger.module, "vcpu");
	cr_expect(cfg.metrics.set);
	cr_expect_str_eq(cfg.metrics.metrics_path, "/tmp/metrics");
}

Test(config, defaults)
{
	cr_assert_eq(parse("{" BS ", \"drives\": [{\"drive_id\": \"r\", \"path_on_host\": \"/r\","
	                   " \"is_root_device\": true}], \"logger\": {}}"),
	             0, "%s", err.msg);
	cr_expect_eq(cfg.machine.vcpu_count, 1);
	cr_expect_eq(cfg.machine.mem_size_mib, 128);
	cr_expect(!cfg.machine.smt && !cfg.machine.track_dirty_pages);
	cr_expect_eq(cfg.machine.huge_pages, HUGE_PAGES_NONE);
	cr_expect_null(cfg.boot_source.initrd_path);
	cr_expect_null(cfg.boot_source.boot_args);
	cr_expect_eq(cfg.drives[0].cache_type, CACHE_UNSAFE);
	cr_expect_eq(cfg.drives[0].io_engine, IO_ENGINE_SYNC);
	cr_expect(!cfg.drives[0].is_read_only);
	cr_expect_eq(cfg.nr_nets, 0);
	cr_expect(!cfg.vsock.set && !cfg.entropy.set && !cfg.metrics.set);
	cr_expect(cfg.logger.set);
	cr_expect_eq(cfg.logger.level, LOG_INFO); /* swagger: default Info */
	cr_expect_null(cfg.logger.log_path);
	cr_expect(!cfg.logger.show_level && !cfg.logger.show_log_origin);
}

Test(config, machine_config_without_optional_fields)
{
	cr_assert_eq(parse("{" BS ", \"machine-config\": {\"vcpu_count\": 3, \"mem_size_mib\": 129,"
	                   " \"smt\": false, \"huge_pages\": \"None\"}}"),
	             0, "%s", err.msg);
	cr_expect_eq(cfg.machine.vcpu_count, 3);
	cr_expect_eq(cfg.machine.mem_size_mib, 129);
}

Test(config, null_means_absent)
{
	cr_assert_eq(
	        parse("{\"boot-source\": {\"kernel_image_path\": \"/k\", \"initrd_path\": null,"
	              " \"boot_args\": null}, \"vsock\": null, \"balloon\": null,"
	              " \"cpu-config\": null, \"mmds-config\": null, \"pmem\": [],"
	              " \"memory-hotplug\": null, \"drives\": null, \"logger\": null}"),
	        0, "%s", err.msg);
	cr_expect_null(cfg.boot_source.initrd_path);
	cr_expect(!cfg.vsock.set && !cfg.logger.set);
	cr_expect_eq(cfg.nr_drives, 0);
}

/* Firecracker's VmmConfig ignores top-level keys it does not know ("serial" among them) */
Test(config, unknown_top_level_keys_are_ignored_as_firecracker)
{
	cr_assert_eq(
	        parse("{\"flux-capacitor\": {\"x\": 1}, \"boot-source\": {\"kernel_image_path\":"
	              " \"/k\"}, \"serial\": {\"serial_out_path\": \"/s\"}, \"machine_config\": "
	              "3}"),
	        0, "%s", err.msg);
	cr_expect_str_eq(cfg.boot_source.kernel_image_path, "/k");
	cr_expect_eq(cfg.machine.vcpu_count, 1); /* the misspelt key left the default */
	/* inside a resource an unknown key is still refused */
	vm_config_free(&cfg);
	cr_assert_eq(parse("{\"boot-source\": {\"kernel_image_path\": \"/k\", \"x\": 1}}"),
	             -EINVAL);
}

Test(config, empty_boot_args_kept)
{
	cr_assert_eq(
	        parse("{\"boot-source\": {\"kernel_image_path\": \"/k\", \"boot_args\": \"\"}}"), 0,
	        "%s", err.msg);
	cr_expect_str_eq(cfg.boot_source.boot_args, "");
}

/* ---------------------------------------------------------------- errors */

struct bad_doc {
	const char *doc;
	const char *needle;
};

#define DRV(extra)                                                                                 \
	"{" BS ", \"drives\": [{\"drive_id\": \"d\", \"path_on_host\": \"/d\", "                   \
	"\"is_root_device\": false" extra "}]}"
#define NET(extra)                                                                                 \
	"{" BS ", \"network-interfaces\": [{\"iface_id\": \"n\", "                                 \
	"\"host_dev_name\": \"tap0\"" extra "}]}"
#define MC(body)   "{" BS ", \"machine-config\": {" body "}}"
#define RL(bucket) DRV(", \"rate_limiter\": {\"bandwidth\": " bucket "}")

static const struct bad_doc bad_docs[] = {
        {"{\"boot-source\": ", "invalid JSON at line 1 column"},
        {"[]", "the configuration must be an object"},
        {"{}", "missing required field \"boot-source\""},
        {"{" BS ", " BS "}", "duplicate object key"},
        {"{" BS ", \"balloon\": {\"amount_mib\": 1}}",
         "balloon: missing required field \"deflate_on_oom\""},
        {"{" BS ", \"cpu-config\": \"/nonexistent/t.json\"}", "cpu-config: "},
        {"{" BS ", \"cpu-config\": 7}", "cpu-config must be a custom CPU template"},
        {"{" BS ", \"cpu-config\": {\"msr_modifiers\": 1}}", "cpu-config.msr_modifiers"},
        /* mmds-config (MI: its network_interfaces) */
        {"{" BS ", \"mmds-config\": {}}", "missing required field \"network_interfaces\""},
        {"{" BS ", \"mmds-config\": {" MI "[]}}", "network_interfaces: The list of network"},
        {"{" BS ", \"mmds-config\": {" MI "[\"eth0\"]}}", "does not correspond to any existing"},
        {"{" BS ", \"mmds-config\": {" MI "[1]}}", "network_interfaces[0] must be a string"},
        {"{" BS ", \"mmds-config\": {" MI "[\"a\"], \"version\": \"V3\"}}", "mmds-config.version"},
        {"{" BS ", \"mmds-config\": {" MI "[\"a\"], \"ipv4_address\": \"169.254.0.1\"}}",
         "The MMDS IPv4 address is not link local."},
        {"{" BS ", \"mmds-config\": {" MI "[\"a\"], \"ipv4_address\": \"169.254.1.01\"}}",
         "is not an IPv4 address"},
        {"{" BS ", \"mmds-config\": {" MI "[\"a\"], \"imds_compat\": 1}}", "imds_compat must be"},
        {"{" BS ", \"pmem\": [{}]}", "\"pmem\" is not supported by kiln yet"},
        /* boot-source */
        {"{\"boot-source\": \"/k\"}", "boot-source must be an object"},
        {"{\"boot-source\": null}", "boot-source must not be null"},
        {"{\"boot-source\": {\"kernel\": \"/k\"}}", "unknown field \"kernel\" in boot-source"},
        {"{\"boot-source\": {}}", "boot-source: missing required field \"kernel_image_path\""},
        {"{\"boot-source\": {\"kernel_image_path\": 7}}",
         "boot-source.kernel_image_path must be a string"},
        {"{\"boot-source\": {\"kernel_image_path\": \"\"}}",
         "boot-source.kernel_image_path must not be empty"},
        {"{\"boot-source\": {\"kernel_image_path\": \"/k\", \"boot_args\": [\"a\"]}}",
         "boot-source.boot_args must be a string"},
        {"{\"boot-source\": {\"kernel_image_path\": \"/k\", \"initrd_path\": \"\"}}",
         "boot-source.initrd_path must not be empty"},
        {"{\"boot-source\": {\"kernel_image_path\": \"/k\\u0000x\"}}", "invalid JSON"},
        /* machine-config */
        {MC("\"vcpu_count\": \"2\", \"mem_size_mib\": 64"),
         "machine-config.vcpu_count must be an integer"},
        {MC("\"vcpu_count\": 2.0, \"mem_size_mib\": 64"),
         "machine-config.vcpu_count must be an integer"},
        {MC("\"vcpu_count\": 0, \"mem_size_mib\": 64"),
         "machine-config.vcpu_count must be between 1 and 32 (got 0)"},
        {MC("\"vcpu_count\": 33, \"mem_size_mib\": 64"),
         "machine-config.vcpu_count must be between 1 and 32 (got 33)"},
        {MC("\"vcpu_count\": -1, \"mem_size_mib\": 64"), "machine-config.vcpu_count must be"},
        {MC("\"vcpu_count\": 1, \"mem_size_mib\": 0"),
         "machine-config.mem_size_mib must be between 1 and 1048576 (got 0)"},
        {MC("\"vcpu_count\": 1, \"mem_size_mib\": 1048577"),
         "machine-config.mem_size_mib must be between 1 and 1048576 (got 1048577)"},
        {MC("\"vcpu_count\": 1"), "machine-config: missing required field \"mem_size_mib\""},
        {MC("\"mem_size_mib\": 64"), "machine-config: missing required field \"vcpu_count\""},
        {MC("\"vcpu_count\": 1, \"mem_size_mib\": 64, \"smt\": \"yes\""),
         "machine-config.smt must be a boolean"},
        {MC("\"vcpu_count\": 1, \"mem_size_mib\": 64, \"track_dirty_pages\": 1"),
         "machine-config.track_dirty_pages must be a boolean"},
        {MC("\"vcpu_count\": 3, \"mem_size_mib\": 64, \"smt\": true"),
         "machine-config.vcpu_count must be 1 or an even number when smt is enabled (got 3)"},
        {MC("\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": \"T3\""),
         "machine-config.cpu_template must be one of \"C3\", \"T2\", \"T2S\", \"T2CL\", "
         "\"T2A\" or \"None\" (got \"T3\")"},
        {MC("\"vcpu_count\": 1, \"mem_size_mib\": 64, \"huge_pages\": \"1G\""),
         "machine-config.huge_pages must be one of \"None\", \"2M\", \"Transparent\" (got \"1G\")"},
        {MC("\"vcpu_count\": 1, \"mem_size_mib\": 65, \"huge_pages\": \"2M\""),
         "machine-config.mem_size_mib must be a multiple of 2 with huge_pages \"2M\" (got 65)"},
        {MC("\"vcpu_count\": 1, \"mem_size_mib\": 64, \"mem\": 1"),
         "unknown field \"mem\" in machine-config"},
        /* drives */
        {"{" BS ", \"drives\": {}}", "drives must be an array"},
        {"{" BS ", \"drives\": [7]}", "drives[0] must be an object"},
        {"{" BS ", \"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\":"
         " true}, {\"drive_id\": \"b\", \"is_root_device\": false}]}",
         "drives[1]: missing required field \"path_on_host\""},
        {"{" BS ", \"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/a\"}]}",
         "drives[0]: missing required field \"is_root_device\""},
        {"{" BS ", \"drives\": [{\"path_on_host\": \"/a\", \"is_root_device\": true}]}",
         "drives[0]: missing required field \"drive_id\""},
        {"{" BS ", \"drives\": [{\"drive_id\": \"root-fs\", \"path_on_host\": \"/a\","
         " \"is_root_device\": true}]}",
         "drives[0].drive_id \"root-fs\" is invalid"},
        {DRV(", \"is_read_only\": \"false\""), "drives[0].is_read_only must be a boolean"},
        {DRV(", \"cache_type\": \"writeback\""),
         "drives[0].cache_type must be one of \"Unsafe\", \"Writeback\" (got \"writeback\")"},
        {DRV(", \"io_engine\": \"Uring\""),
         "drives[0].io_engine must be one of \"Sync\", \"Async\" (got \"Uring\")"},
        {DRV(", \"socket\": \"/vhost.sock\""), "drives[0]: vhost-user drives are not supported"},
        {DRV(", \"partuuid\": \"0eaa91a0-01 init=/bin/sh\""), "drives[0].partuuid must be"},
        {DRV(", \"partuuid\": 5"), "drives[0].partuuid must be a string"},
        {DRV(", \"readonly\": true"), "unknown field \"readonly\" in drives[0]"},
        {DRV(", \"path_on_host\": \"/e\""), "duplicate object key"},
        {"{" BS ", \"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\":"
         " true}, {\"drive_id\": \"b\", \"path_on_host\": \"/b\", \"is_root_device\": true}]}",
         "drives[1]: A root block device already exists!"},
        {"{" BS ", \"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/a\", \"is_root_device\":"
         " false}, {\"drive_id\": \"a\", \"path_on_host\": \"/b\", \"is_root_device\": true}]}",
         "drives[1]: drive_id \"a\" is already used by drives[0]"},
        /* rate limiters */
        {RL("{\"size\": 100}"), "drives[0].rate_limiter.bandwidth: missing required field "
                                "\"refill_time\""},
        {RL("{\"refill_time\": 100}"), "drives[0].rate_limiter.bandwidth: missing required "
                                       "field \"size\""},
        {RL("{\"size\": -5, \"refill_time\": 100}"),
         "drives[0].rate_limiter.bandwidth.size must not be negative (got -5)"},
        {RL("{\"size\": 5, \"refill_time\": 100, \"one_time_burst\": 1.5}"),
         "drives[0].rate_limiter.bandwidth.one_time_burst must be an integer"},
        {RL("{\"size\": 18446744073709551615, \"refill_time\": 1}"), "too big integer"},
        {RL("5"), "drives[0].rate_limiter.bandwidth must be an object"},
        {RL("{\"size\": 5, \"refill_time\": 1, \"rate\": 1}"),
         "unknown field \"rate\" in drives[0].rate_limiter.bandwidth"},
        {DRV(", \"rate_limiter\": {\"burst\": {}}"), "unknown field \"burst\" in "
                                                     "drives[0].rate_limiter"},
        {NET(", \"rx_rate_limiter\": {\"ops\": {\"refill_time\": 1}}"),
         "network-interfaces[0].rx_rate_limiter.ops: missing required field \"size\""},
        {"{" BS ", \"entropy\": {\"rate_limiter\": {\"ops\": {\"size\": 1, \"refill_time\": "
         "\"1\"}}}}",
         "entropy.rate_limiter.ops.refill_time must be an integer"},
        /* network interfaces */
        {"{" BS ", \"network-interfaces\": [{\"iface_id\": \"n\"}]}",
         "network-interfaces[0]: missing required field \"host_dev_name\""},
        {NET(", \"guest_mac\": \"zz:00:00:00:00:01\""),
         "network-interfaces[0].guest_mac \"zz:00:00:00:00:01\" is not a MAC address"},
        {NET(", \"guest_mac\": 6"), "network-interfaces[0].guest_mac must be a string"},
        /* Firecracker's NetError::InvalidMtu range, 68..65535 */
        {NET(", \"mtu\": 67"), "network-interfaces[0].mtu must be between 68 and 65535 (got 67)"},
        {NET(", \"mtu\": 65536"), "network-interfaces[0].mtu must be between 68 and 65535"},
        {NET(", \"mtu\": \"1500\""), "network-interfaces[0].mtu must be an integer"},
        {"{" BS ", \"network-interfaces\": [{\"iface_id\": \"n\", \"host_dev_name\": "
         "\"abcdefghijklmnop\"}]}",
         "network-interfaces[0].host_dev_name \"abcdefghijklmnop\" is not a valid interface"},
        {"{" BS ", \"network-interfaces\": [{\"iface_id\": \"n\", \"host_dev_name\": \"a/b\"}]}",
         "network-interfaces[0].host_dev_name \"a/b\""},
        {"{" BS ", \"network-interfaces\": [{\"iface_id\": \"a\", \"host_dev_name\": \"t0\"},"
         " {\"iface_id\": \"a\", \"host_dev_name\": \"t1\"}]}",
         "network-interfaces[1]: iface_id \"a\" is already used by network-interfaces[0]"},
        {"{" BS ", \"network-interfaces\": [{\"iface_id\": \"a\", \"host_dev_name\": \"t0\"},"
         " {\"iface_id\": \"b\", \"host_dev_name\": \"t0\"}]}",
         "network-interfaces[1]: The host device name t0 is already in use."},
        {"{" BS ", \"network-interfaces\": [{\"iface_id\": \"a\", \"host_dev_name\": \"t0\","
         " \"guest_mac\": \"06:00:00:00:00:0a\"}, {\"iface_id\": \"b\", \"host_dev_name\": \"t1\","
         " \"guest_mac\": \"06:00:00:00:00:0A\"}]}",
         "network-interfaces[1]: The guest MAC address 06:00:00:00:00:0a is already in use."},
        /* vsock, entropy, logger, metrics */
        {"{" BS ", \"vsock\": {\"guest_cid\": 4294967296, \"uds_path\": \"/v\"}}",
         "vsock.guest_cid must be between 0 and 4294967295 (got 4294967296)"},
        {"{" BS ", \"vsock\": {\"guest_cid\": 3}}", "vsock: missing required field \"uds_path\""},
        {"{" BS ", \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/v\", \"vsock_id\": 1}}",
         "vsock.vsock_id must be a string"},
        {"{" BS ", \"entropy\": {\"rate\": {}}}", "unknown field \"rate\" in entropy"},
        {"{" BS ", \"entropy\": []}", "entropy must be an object"},
        {"{" BS ", \"logger\": {\"level\": \"Verbose\"}}",
         "logger.level must be one of \"Error\", \"Warning\", \"Info\", \"Debug\", \"Trace\", "
         "\"Off\" (got \"Verbose\")"},
        {"{" BS ", \"logger\": {\"level\": 3}}", "logger.level must be a string"},
        {"{" BS ", \"logger\": {\"show_level\": 1}}", "logger.show_level must be a boolean"},
        {"{" BS ", \"logger\": {\"log_path\": \"/l\", \"colour\": true}}",
         "unknown field \"colour\" in logger"},
        {"{" BS ", \"metrics\": {}}", "metrics: missing required field \"metrics_path\""},
        {"{" BS ", \"metrics\": {\"metrics_path\": \"\"}}",
         "metrics.metrics_path must not be empty"},
};

Test(config, bad_documents_name_the_field)
{
	cr_assert_geq(ARRAY_SIZE(bad_docs), 40);
	for (size_t i = 0; i < ARRAY_SIZE(bad_docs); i++) {
		memset(&err, 0, sizeof(err));
		int ret = parse(bad_docs[i].doc);
		cr_expect_eq(ret, -EINVAL, "case %zu accepted: %s", i, bad_docs[i].doc);
		cr_expect(strstr(err.msg, bad_docs[i].needle) != NULL,
		          "case %zu: wanted \"%s\"\n  got \"%s\"", i, bad_docs[i].needle, err.msg);
		/* a failed parse leaves the config empty */
		cr_expect(!cfg.has_boot_source && cfg.nr_drives == 0 && cfg.nr_nets == 0,
		          "case %zu left state behind", i);
		cr_expect_null(cfg.boot_source.kernel_image_path, "case %zu", i);
	}
}

Test(config, too_many_devices)
{
	char doc[8192];
	size_t n = (size_t)snprintf(doc, sizeof(doc), "{" BS ", \"drives\": [");
	for (int i = 0; i <= CFG_MAX_DRIVES; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
		                      "%s{\"drive_id\": \"d%d\", \"path_on_host\": \"/d\", "
		                      "\"is_root_device\": false}",
		                      i ? ", " : "", i);
	snprintf(doc + n, sizeof(doc) - n, "]}");
	cr_assert_eq(parse(doc), -EINVAL);
	cr_expect(strstr(err.msg, "drives: kiln supports at most 16 drives (got 17)"), "%s",
	          err.msg);

	n = (size_t)snprintf(doc, sizeof(doc), "{" BS ", \"network-interfaces\": [");
	for (int i = 0; i <= CFG_MAX_NETS; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
		                      "%s{\"iface_id\": \"n%d\", \"host_dev_name\": \"t%d\"}",
		                      i ? ", " : "", i, i);
	snprintf(doc + n, sizeof(doc) - n, "]}");
	cr_assert_eq(parse(doc), -EINVAL);
	cr_expect(strstr(err.msg, "network-interfaces: kiln supports at most 8 interfaces"), "%s",
	          err.msg);
}

Test(config, failure_after_partial_parse_frees_everything)
{
	/* drives parse fine, then the vsock fails: nothing may leak (LSan) */
	cr_assert_eq(
	        parse("{" BS ", \"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/a\","
	              " \"is_root_device\": true, \"partuuid\": \"p\"}], \"logger\": {\"log_path\":"
	              " \"/l\", \"module\": \"m\"}, \"vsock\": {\"guest_cid\": -1,"
	              " \"uds_path\": \"/v\"}}"),
	        -EINVAL);
	cr_expect_eq(cfg.nr_drives, 0);
	cr_expect(!cfg.logger.set);
	cr_expect_null(cfg.logger.log_path);
}

/* -------------------------------------------------------------- ids, MACs */

Test(config, id_rules)
{
	char id64[65], id65[66];
	memset(id64, 'a', 64);
	id64[64] = 0;
	memset(id65, 'Z', 65);
	id65[65] = 0;

	cr_expect(cfg_id_valid("a"));
	cr_expect(cfg_id_valid("rootfs"));
	cr_expect(cfg_id_valid("Net_0"));
	cr_expect(cfg_id_valid("_"));
	cr_expect(cfg_id_valid("0123456789"));
	cr_expect(cfg_id_valid(id64));
	cr_expect_not(cfg_id_valid(id65));
	cr_expect_not(cfg_id_valid(""));
	cr_expect_not(cfg_id_valid(NULL));
	cr_expect_not(cfg_id_valid("a-b"));
	cr_expect_not(cfg_id_valid("a b"));
	cr_expect_not(cfg_id_valid("a.b"));
	cr_expect_not(cfg_id_valid("a/b"));
	cr_expect_not(cfg_id_valid("\xc3\xa9t\xc3\xa9"));

	/* the same rule through a document, for drives and interfaces */
	char doc[512];
	snprintf(doc, sizeof(doc),
	         "{" BS ", \"drives\": [{\"drive_id\": \"%s\", \"path_on_host\": \"/a\","
	         " \"is_root_device\": true}], \"network-interfaces\": [{\"iface_id\": \"%s\","
	         " \"host_dev_name\": \"t\"}]}",
	         id64, id64);
	cr_expect_eq(parse(doc), 0, "%s", err.msg);
	cr_expect_str_eq(cfg.drives[0].drive_id, id64);
	vm_config_free(&cfg);
	snprintf(doc, sizeof(doc),
	         "{" BS
	         ", \"network-interfaces\": [{\"iface_id\": \"%s\", \"host_dev_name\": \"t\"}]}",
	         id65);
	cr_expect_eq(parse(doc), -EINVAL);
	cr_expect(strstr(err.msg, "network-interfaces[0].iface_id") &&
	                  strstr(err.msg, "ids are 1 to 64 characters from [A-Za-z0-9_]"),
	          "%s", err.msg);
	cr_expect_eq(parse("{" BS ", \"network-interfaces\": [{\"iface_id\": \"\","
	                   " \"host_dev_name\": \"t\"}]}"),
	             -EINVAL);
	cr_expect(strstr(err.msg, "network-interfaces[0].iface_id \"\" is invalid"), "%s", err.msg);
}

Test(config, mac_parsing)
{
	uint8_t m[6], keep[6] = {1, 2, 3, 4, 5, 6};
	char buf[18];

	cr_assert_eq(cfg_mac_parse("06:00:ac:10:00:02", m), 0);
	cr_expect(m[0] == 0x06 && m[2] == 0xac && m[5] == 0x02);
	cr_assert_eq(cfg_mac_parse("FF:fF:Aa:bB:0c:D9", m), 0);
	cfg_mac_format(m, buf);
	cr_expect_str_eq(buf, "ff:ff:aa:bb:0c:d9");
	/* multicast and all-zero are accepted, as Firecracker does */
	cr_expect_eq(cfg_mac_parse("01:23:45:67:89:0a", m), 0);
	cr_expect_eq(cfg_mac_parse("00:00:00:00:00:00", m), 0);

	const char *bad[] = {
	        "",
	        "06:00:ac:10:00",
	        "06:00:ac:10:00:0",
	        "06:00:ac:10:00:022",
	        "06:00:ac:10:00:02:",
	        "06-00-ac-10-00-02",
	        "0600.ac10.0002..",
	        "g6:00:ac:10:00:02",
	        "+6:00:ac:10:00:02",
	        " 6:00:ac:10:00:02",
	        "06:00:ac:10:00 02",
	        "6:0:ac:10:00:02:0",
	        "06:00:ac:10:00:0x",
	};
	memcpy(m, keep, 6);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_expect_eq(cfg_mac_parse(bad[i], m), -EINVAL, "accepted \"%s\"", bad[i]);
	cr_expect_arr_eq(m, keep, 6, "a failed parse must not write the output");
	cr_expect_eq(cfg_mac_parse(NULL, m), -EINVAL);
}

/* ---------------------------------------------------------- rate limiters */

static int rl(const char *text, struct rate_limiter_cfg *out)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	cr_assert_not_null(j, "%s", je.text);
	int ret = cfg_parse_rate_limiter(j, out, &err);
	json_decref(j);
	return ret;
}

Test(config, rate_limiter_fields)
{
	struct rate_limiter_cfg r;

	cr_assert_eq(rl("{\"bandwidth\": {\"size\": 9223372036854775807, \"one_time_burst\": 0,"
	                " \"refill_time\": 1}, \"ops\": {\"size\": 2, \"refill_time\": 3,"
	                " \"one_time_burst\": 4}}",
	                &r),
	             0, "%s", err.msg);
	cr_expect(r.bandwidth.set && r.ops.set);
	cr_expect_eq(r.bandwidth.size, 9223372036854775807ull);
	cr_expect_eq(r.bandwidth.one_time_burst, 0);
	cr_expect_eq(r.ops.size, 2);
	cr_expect_eq(r.ops.refill_time_ms, 3);
	cr_expect_eq(r.ops.one_time_burst, 4);

	/* only one bucket; the other stays unset */
	cr_assert_eq(rl("{\"ops\": {\"size\": 2, \"refill_time\": 3}}", &r), 0, "%s", err.msg);
	cr_expect(!r.bandwidth.set && r.ops.set);
	cr_assert_eq(rl("{}", &r), 0);
	cr_expect(!r.bandwidth.set && !r.ops.set);
	cr_assert_eq(rl("{\"bandwidth\": null, \"ops\": null}", &r), 0);
	cr_expect(!r.bandwidth.set && !r.ops.set);

	/* Firecracker: a 0 size or 0 refill_time means "no limit" */
	cr_assert_eq(
	        rl("{\"bandwidth\": {\"size\": 0, \"refill_time\": 100, \"one_time_burst\": 5},"
	           " \"ops\": {\"size\": 10, \"refill_time\": 0}}",
	           &r),
	        0, "%s", err.msg);
	cr_expect(!r.bandwidth.set && !r.ops.set);
	cr_expect_eq(r.bandwidth.one_time_burst, 0);

	/* errors, named from the resource ("rate_limiter") */
	struct rate_limiter_cfg keep = {.ops = {.set = true, .size = 77, .refill_time_ms = 1}};
	r = keep;
	cr_expect_eq(rl("{\"bandwidth\": {\"size\": 1}}", &r), -EINVAL);
	cr_expect_str_eq(err.msg, "rate_limiter.bandwidth: missing required field \"refill_time\"");
	cr_expect_eq(rl("{\"ops\": {\"refill_time\": 1}}", &r), -EINVAL);
	cr_expect_str_eq(err.msg, "rate_limiter.ops: missing required field \"size\"");
	cr_expect_eq(rl("{\"ops\": {\"size\": 1, \"refill_time\": -1}}", &r), -EINVAL);
	cr_expect_str_eq(err.msg, "rate_limiter.ops.refill_time must not be negative (got -1)");
	cr_expect_eq(rl("{\"ops\": {\"size\": 1e3, \"refill_time\": 1}}", &r), -EINVAL);
	cr_expect_str_eq(err.msg, "rate_limiter.ops.size must be an integer");
	cr_expect_eq(rl("{\"ops\": {\"size\": true, \"refill_time\": 1}}", &r), -EINVAL);
	cr_expect_eq(rl("[]", &r), -EINVAL);
	cr_expect_str_eq(err.msg, "rate_limiter must be an object");
	cr_expect_eq(r.ops.size, 77, "a failed parse must leave `out` alone");
}

/* ------------------------------------------------------------------ logger */

Test(config, logger_levels_case_insensitive)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
	        {"Error", LOG_ERROR},  {"error", LOG_ERROR}, {"WARNING", LOG_WARN},
	        {"Warning", LOG_WARN}, {"warn", LOG_WARN},   {"Info", LOG_INFO},
	        {"iNfO", LOG_INFO},    {"DEBUG", LOG_DEBUG}, {"Trace", LOG_TRACE},
	        {"trace", LOG_TRACE},  {"Off", LOG_OFF},     {"OFF", LOG_OFF},
	};
	for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
		char doc[256];
		snprintf(doc, sizeof(doc), "{" BS ", \"logger\": {\"level\": \"%s\"}}",
		         levels[i].name);
		cr_assert_eq(parse(doc), 0, "%s: %s", levels[i].name, err.msg);
		cr_expect_eq(cfg.logger.level, levels[i].level, "%s", levels[i].name);
		vm_config_free(&cfg);
	}
	cr_expect_eq(parse("{" BS ", \"logger\": {\"level\": \"\"}}"), -EINVAL);
	cr_expect_eq(parse("{" BS ", \"logger\": {\"level\": \"Infos\"}}"), -EINVAL);
}
