// SPDX-License-Identifier: Apache-2.0
/* tests/unit/config_test.c: the fixture of test_config and test_config_json */
#include "config_test.h"

#include <string.h>

struct vm_config cfg;
struct errbuf err;

void config_setup(void)
{
	vm_config_init(&cfg);
	memset(&err, 0, sizeof(err));
}

void config_teardown(void)
{
	vm_config_free(&cfg);
}

int parse(const char *doc)
{
	return cfg_parse_document(doc, strlen(doc), &cfg, &err);
}

/* every section, most optional fields, several devices of a kind */
const char *const full_doc =
        "{\"boot-source\": {\"kernel_image_path\": \"/img/vmlinux\", \"initrd_path\": "
        "\"/img/initrd\","
        "  \"boot_args\": \"console=ttyS0 reboot=k\"},"
        " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 1024, \"smt\": true,"
        "  \"track_dirty_pages\": true, \"cpu_template\": \"None\", \"huge_pages\": \"2M\"},"
        " \"drives\": [{\"drive_id\": \"data\", \"path_on_host\": \"/img/data.ext4\","
        "   \"is_root_device\": false, \"is_read_only\": true, \"cache_type\": \"Writeback\","
        "   \"io_engine\": \"Async\", \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576,"
        "   \"one_time_burst\": 4096, \"refill_time\": 100}, \"ops\": {\"size\": 1000,"
        "   \"refill_time\": 1000}}},"
        "  {\"drive_id\": \"rootfs\", \"path_on_host\": \"/img/rootfs.ext4\","
        "   \"is_root_device\": true, \"partuuid\": \"0eaa91a0-01\", \"socket\": null}],"
        " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\","
        "   \"guest_mac\": \"06:00:AC:10:00:02\", \"rx_rate_limiter\": {\"ops\": {\"size\": 10,"
        "   \"refill_time\": 10}}},"
        "  {\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"mtu\": 9000, "
        "\"tx_rate_limiter\":"
        "   {\"bandwidth\": {\"size\": 5, \"refill_time\": 7}}}],"
        " \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\", \"vsock_id\": \"vsock0\"},"
        " \"entropy\": {\"rate_limiter\": {\"bandwidth\": {\"size\": 64, \"refill_time\": 1}}},"
        " \"logger\": {\"log_path\": \"/tmp/log\", \"level\": \"debug\", \"show_level\": true,"
        "   \"show_log_origin\": true, \"module\": \"vcpu\"},"
        " \"metrics\": {\"metrics_path\": \"/tmp/metrics\"}}";
