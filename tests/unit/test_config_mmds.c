// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_config_mmds.c: api/config_mmds.c -- the config file's
 * "mmds-config" and PUT /mmds/config's body: defaults, the interface rules,
 * GET /vm/config's form (Firecracker's MmdsConfig) and its round trip.
 */
#include "api/config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BS           "\"boot-source\": {\"kernel_image_path\": \"/k\"}"
#define NETS         "\"network-interfaces\": [" NET("eth0", "tap0") ", " NET("eth1", "tap1") "]"
#define NET(id, tap) "{\"iface_id\": \"" id "\", \"host_dev_name\": \"" tap "\"}"

static struct vm_config cfg;
static struct errbuf err;

static void setup(void)
{
	vm_config_init(&cfg);
	memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
	vm_config_free(&cfg);
}

TestSuite(config_mmds, .init = setup, .fini = teardown);

static int parse(const char *doc)
{
	return cfg_parse_document(doc, strlen(doc), &cfg, &err);
}

static char *mmds_json(void)
{
	json_t *j = cfg_to_json(&cfg);
	cr_assert_not_null(j);
	char *s = json_dumps(json_object_get(j, "mmds-config"),
	                     JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(j);
	return s;
}

Test(config_mmds, absent_is_null)
{
	cr_assert_eq(parse("{" BS ", " NETS "}"), 0, "%s", err.msg);
	cr_expect_not(cfg.mmds.set);
	char *s = mmds_json();
	cr_expect_str_eq(s, "null");
	free(s);
}

Test(config_mmds, flintlock_v1_defaults)
{
	cr_assert_eq(parse("{" BS ", " NETS ", \"mmds-config\": {\"version\": \"V1\","
	                   " \"network_interfaces\": [\"eth1\"]}}"),
	             0, "%s", err.msg);
	cr_expect(cfg.mmds.set);
	cr_expect_eq(cfg.mmds.version, MMDS_V1);
	cr_expect_eq(cfg.mmds.ipv4, MMDS_DEFAULT_IPV4);
	cr_expect_not(cfg.mmds.imds_compat);
	char *s = mmds_json();
	cr_expect_str_eq(s, "{\"imds_compat\":false,\"ipv4_address\":\"169.254.169.254\","
	                    "\"network_interfaces\":[\"eth1\"],\"version\":\"V1\"}");
	free(s);
}

Test(config_mmds, v2_all_fields_in_interface_order)
{
	cr_assert_eq(parse("{" BS ", " NETS ", \"mmds-config\": {\"version\": \"V2\","
	                   " \"network_interfaces\": [\"eth1\", \"eth0\", \"eth1\"],"
	                   " \"ipv4_address\": \"169.254.1.2\", \"imds_compat\": true}}"),
	             0, "%s", err.msg);
	cr_expect_eq(cfg.mmds.nr_ifaces, 2);
	cr_expect_eq(cfg.mmds.ipv4, 0xa9fe0102u);
	char *s = mmds_json();
	/* Firecracker lists them as it walks its net devices */
	cr_expect_str_eq(s, "{\"imds_compat\":true,\"ipv4_address\":\"169.254.1.2\","
	                    "\"network_interfaces\":[\"eth0\",\"eth1\"],\"version\":\"V2\"}");
	free(s);

	/* GET /vm/config's document configures the same again */
	json_t *j = cfg_to_json(&cfg);
	char *text = json_dumps(j, 0);
	struct vm_config again;
	vm_config_init(&again);
	cr_assert_eq(cfg_parse_document(text, strlen(text), &again, &err), 0, "%s", err.msg);
	cr_expect(again.mmds.set);
	cr_expect_eq(again.mmds.version, MMDS_V2);
	cr_expect_eq(again.mmds.ipv4, cfg.mmds.ipv4);
	cr_expect(again.mmds.imds_compat);
	cr_expect_eq(again.mmds.nr_ifaces, 2);
	cr_expect_str_eq(again.mmds.ifaces[0], "eth0");
	cr_expect_str_eq(again.mmds.ifaces[1], "eth1");
	vm_config_free(&again);
	free(text);
	json_decref(j);
}

Test(config_mmds, api_body_and_validation)
{
	struct mmds_cfg m = {0};
	json_t *j = json_loads("{\"network_interfaces\": [\"eth9\"], \"foo\": 1}", 0, NULL);
	cr_expect_eq(cfg_parse_mmds(j, &m, &err), -EINVAL);
	cr_expect_str_eq(err.msg, "unknown field \"foo\" in mmds-config");
	cr_expect_not(m.set);
	json_decref(j);

	j = json_loads("{\"network_interfaces\": [\"eth9\"]}", 0, NULL);
	cr_assert_eq(cfg_parse_mmds(j, &m, &err), 0, "%s", err.msg);
	json_decref(j);
	cr_assert_eq(parse("{" BS ", " NETS "}"), 0, "%s", err.msg);
	cfg.mmds = m;
	cr_expect_eq(cfg_validate(&cfg, &err), -EINVAL);
	cr_expect(strstr(err.msg, "does not correspond to any existing network interface"));
	strcpy(cfg.mmds.ifaces[0], "eth0");
	cr_expect_eq(cfg_validate(&cfg, &err), 0, "%s", err.msg);
}

Test(config_mmds, too_many_names_and_bad_ids)
{
	cr_expect_eq(parse("{" BS ", " NETS ", \"mmds-config\": {\"network_interfaces\": [\"a\","
	                   " \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\"]}}"),
	             -EINVAL);
	cr_expect(strstr(err.msg, "does not correspond"), "%s", err.msg);
	cr_expect_eq(
	        parse("{" BS ", " NETS ", \"mmds-config\": {\"network_interfaces\": [\"a-b\"]}}"),
	        -EINVAL);
	cr_expect(strstr(err.msg, "does not correspond"), "%s", err.msg);
	cr_expect_eq(parse("{" BS ", " NETS
	                   ", \"mmds-config\": {\"network_interfaces\": [\"eth0\"],"
	                   " \"ipv4_address\": \"10.0.0.1\"}}"),
	             -EINVAL);
	cr_expect(strstr(err.msg, "not link local"), "%s", err.msg);
}
