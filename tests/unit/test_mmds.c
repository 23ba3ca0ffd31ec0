// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_mmds.c: mmds/store.c -- PUT, PATCH (RFC 7396), the size
 * limit, and the guest's answers in JSON and IMDS form, against the
 * behaviour of Firecracker's data_store.rs.
 */
#include "mmds/mmds_int.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct mmds m;
static struct errbuf err;

static void setup(void)
{
	cr_assert_eq(mmds_init(&m, 0), 0);
	memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
	mmds_destroy(&m);
}

TestSuite(mmds, .init = setup, .fini = teardown);

static json_t *js(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	cr_assert(j, "bad test JSON %s: %s", text, je.text);
	return j;
}

static int put(const char *text)
{
	json_t *j = js(text);
	int ret = mmds_put(&m, j, &err);
	json_decref(j);
	return ret;
}

static int patch(const char *text)
{
	json_t *j = js(text);
	int ret = mmds_patch(&m, j, &err);
	json_decref(j);
	return ret;
}

/* the store as compact sorted JSON text (malloc'd) */
static char *dump(void)
{
	json_t *j = mmds_get(&m);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(j);
	return s;
}

static void assert_store(const char *want)
{
	char *s = dump();
	cr_assert_str_eq(s, want);
	free(s);
}

/* mmds_lookup as a string; "<errno>" on error */
static char out_buf[4096];
static const char *look(const char *path, enum mmds_format f)
{
	char *out = NULL;
	size_t len = 0;
	int ret = mmds_lookup(&m, path, strlen(path), f, &out, &len);
	if (ret < 0) {
		snprintf(out_buf, sizeof(out_buf), "<%d>", ret);
	} else {
		cr_assert_eq(len, strlen(out));
		snprintf(out_buf, sizeof(out_buf), "%s", out);
	}
	free(out);
	return out_buf;
}

Test(mmds, empty_store_reads_as_empty_object)
{
	cr_assert_not(mmds_initialized(&m));
	assert_store("{}");
	cr_assert_eq(m.limit, MMDS_DEFAULT_SIZE_LIMIT);
	cr_assert_eq(mmds_version(&m), MMDS_V1);
}

Test(mmds, put_replaces_and_takes_any_value)
{
	cr_assert_eq(put("{\"a\": {\"b\": 1}}"), 0);
	cr_assert(mmds_initialized(&m));
	assert_store("{\"a\":{\"b\":1}}");
	cr_assert_eq(put("{\"c\": \"d\"}"), 0);
	assert_store("{\"c\":\"d\"}");
	/* Firecracker deserialises PUT into a serde Value: a string is a store */
	cr_assert_eq(put("\"string\""), 0);
	assert_store("\"string\"");
}

Test(mmds, patch_before_put_is_refused)
{
	cr_assert_eq(patch("{\"a\": 1}"), -ENODATA);
	cr_assert_str_eq(err.msg, "The MMDS data store is not initialized.");
	assert_store("{}");
}

Test(mmds, patch_merges_as_rfc7396)
{
	cr_assert_eq(put("{\"meta-data\": {\"iam\": \"dummy\", \"x\": [1, 2]}, \"user-data\": "
	                 "\"1522850095\"}"),
	             0);
	cr_assert_eq(patch("{\"user-data\": \"10\"}"), 0);
	assert_store("{\"meta-data\":{\"iam\":\"dummy\",\"x\":[1,2]},\"user-data\":\"10\"}");
	/* null removes, objects merge deeply, arrays replace, new keys nest */
	cr_assert_eq(patch("{\"meta-data\": {\"iam\": null, \"x\": [3], \"n\": {\"m\": {\"k\": "
	                   "true, \"gone\": null}}}}"),
	             0);
	assert_store("{\"meta-data\":{\"n\":{\"m\":{\"k\":true}},\"x\":[3]},\"user-data\":\"10\"}");
	/* a scalar under an object key is replaced by an object patch */
	cr_assert_eq(patch("{\"user-data\": {\"v\": 1}}"), 0);
	assert_store(
	        "{\"meta-data\":{\"n\":{\"m\":{\"k\":true}},\"x\":[3]},\"user-data\":{\"v\":1}}");
	/* a patch that is not an object replaces the whole document */
	cr_assert_eq(patch("[1, 2]"), 0);
	assert_store("[1,2]");
	cr_assert_eq(patch("{\"a\": null, \"b\": 2}"), 0);
	assert_store("{\"b\":2}");
}

Test(mmds, rfc7396_appendix_a)
{
	static const char *const cases[][3] = {
	        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
	        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
	        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
	        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
	        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
	         "{\"a\":{\"b\":\"d\"}}"},
	        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
	        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
	        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
	        {"{\"a\":\"foo\"}", "null", "null"},
	        {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
	        {"{\"e\":null}", "{\"a\":1}", "{\"a\":1,\"e\":null}"},
	        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
	        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *t = js(cases[i][0]), *p = js(cases[i][1]);
		cr_assert_eq(mmds_merge_patch(&t, p), 0);
		char *s = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		cr_assert_str_eq(s, cases[i][2], "case %zu", i);
		free(s);
		json_decref(t);
		json_decref(p);
	}
}

Test(mmds, size_limit_counts_compact_text)
{
	mmds_set_limit(&m, 9);
	/* {"a":"b"} is 9 bytes however it was spaced */
	cr_assert_eq(put("{ \"a\" :  \"b\" }"), 0);
	cr_assert_eq(put("{\"a\":\"bc\"}"), -EFBIG);
	cr_assert_str_eq(err.msg, "The MMDS patch request doesn't fit.");
	assert_store("{\"a\":\"b\"}");
	/* a PATCH that would not fit leaves the store as it was */
	cr_assert_eq(patch("{\"c\": 1}"), -EFBIG);
	assert_store("{\"a\":\"b\"}");
	cr_assert_eq(patch("{\"a\": \"z\"}"), 0);
	assert_store("{\"a\":\"z\"}");
	/* 0 means the default */
	mmds_set_limit(&m, 0);
	cr_assert_eq(m.limit, MMDS_DEFAULT_SIZE_LIMIT);
}

static const char *doc = "{\"name\": {\"first\": \"John\", \"second\": \"Doe\"}, \"age\": 43,"
                         " \"phones\": [\"+401234567\", \"+441234567\"], \"member\": false,"
                         " \"shares_percentage\": 12.5, \"balance\": -24,"
                         " \"a/b\": {\"c~d\": \"slash\"}, \"zz\": {}, \"nul\": null}";

Test(mmds, lookup_json)
{
	cr_assert_eq(put(doc), 0);
	cr_assert_str_eq(look("/name", MMDS_FMT_JSON), "{\"first\":\"John\",\"second\":\"Doe\"}");
	cr_assert_str_eq(look("/name/first", MMDS_FMT_JSON), "\"John\"");
	cr_assert_str_eq(look("/age", MMDS_FMT_JSON), "43");
	cr_assert_str_eq(look("/phones/", MMDS_FMT_JSON), "[\"+401234567\",\"+441234567\"]");
	cr_assert_str_eq(look("/phones/1", MMDS_FMT_JSON), "\"+441234567\"");
	cr_assert_str_eq(look("/member", MMDS_FMT_JSON), "false");
	cr_assert_str_eq(look("/shares_percentage", MMDS_FMT_JSON), "12.5");
	cr_assert_str_eq(look("/nul", MMDS_FMT_JSON), "null");
	cr_assert_str_eq(look("/invalid_path", MMDS_FMT_JSON), "<-2>");
}

Test(mmds, lookup_paths_as_firecracker_sanitizes_them)
{
	cr_assert_eq(put(doc), 0);
	/* runs of '/' are one, one trailing '/' goes */
	cr_assert_str_eq(look("//name///first//", MMDS_FMT_JSON), "\"John\"");
	cr_assert_str_eq(look("/", MMDS_FMT_IMDS),
	                 "a/b/\nage\nbalance\nmember\nname/\nnul\nphones\nshares_percentage\nzz/");
	cr_assert_str_eq(look("", MMDS_FMT_IMDS), look("/", MMDS_FMT_IMDS));
	/* RFC 6901 escapes */
	cr_assert_str_eq(look("/a~1b/c~0d", MMDS_FMT_JSON), "\"slash\"");
	/* array indexes: decimal, no leading zero, no sign, in range */
	cr_assert_str_eq(look("/phones/01", MMDS_FMT_JSON), "<-2>");
	cr_assert_str_eq(look("/phones/+1", MMDS_FMT_JSON), "<-2>");
	cr_assert_str_eq(look("/phones/-1", MMDS_FMT_JSON), "<-2>");
	cr_assert_str_eq(look("/phones/2", MMDS_FMT_JSON), "<-2>");
	cr_assert_str_eq(look("/phones/99999999999999999999999", MMDS_FMT_JSON), "<-2>");
	/* not a pointer, or under a scalar */
	cr_assert_str_eq(look("name", MMDS_FMT_JSON), "<-2>");
	cr_assert_str_eq(look("/age/x", MMDS_FMT_JSON), "<-2>");
	/* bytes the guest may send: a NUL, high bytes */
	char out[8];
	char *o = NULL;
	size_t n;
	memcpy(out, "/na\0me\xff", 8);
	cr_assert_eq(mmds_lookup(&m, out, 8, MMDS_FMT_JSON, &o, &n), -ENOENT);
}

Test(mmds, lookup_imds)
{
	cr_assert_eq(put(doc), 0);
	cr_assert_str_eq(look("/name", MMDS_FMT_IMDS), "first\nsecond");
	cr_assert_str_eq(look("/name/second", MMDS_FMT_IMDS), "Doe");
	cr_assert_str_eq(look("/zz", MMDS_FMT_IMDS), "");
	/* only objects and strings have an IMDS form */
	cr_assert_str_eq(look("/age", MMDS_FMT_IMDS), "<-95>");
	cr_assert_str_eq(look("/phones/", MMDS_FMT_IMDS), "<-95>");
	cr_assert_str_eq(look("/member", MMDS_FMT_IMDS), "<-95>");
	cr_assert_str_eq(look("/nul", MMDS_FMT_IMDS), "<-95>");
	/* imds_compat: plain text whatever the guest asked for */
	mmds_configure(&m, MMDS_V2, true);
	cr_assert_eq(mmds_version(&m), MMDS_V2);
	cr_assert(mmds_imds_compat(&m));
	cr_assert_str_eq(look("/name", MMDS_FMT_JSON), "first\nsecond");
	cr_assert_str_eq(look("/age", MMDS_FMT_JSON), "<-95>");
}

Test(mmds, lookup_before_put)
{
	/* Firecracker's store is null until PUT: "/" finds it, nothing below does */
	cr_assert_str_eq(look("/", MMDS_FMT_JSON), "null");
	cr_assert_str_eq(look("/", MMDS_FMT_IMDS), "<-95>");
	cr_assert_str_eq(look("/a", MMDS_FMT_JSON), "<-2>");
}

Test(mmds, string_values_keep_their_bytes)
{
	cr_assert_eq(put("{\"k\": \"line1\\nline2 \\u00e9\"}"), 0);
	cr_assert_str_eq(look("/k", MMDS_FMT_IMDS), "line1\nline2 \xc3\xa9");
	cr_assert_str_eq(look("/k", MMDS_FMT_JSON), "\"line1\\nline2 \xc3\xa9\"");
}

Test(mmds, link_local_addresses)
{
	cr_assert(mmds_ipv4_valid(MMDS_DEFAULT_IPV4));
	cr_assert(mmds_ipv4_valid(0xa9fe0100));     /* 169.254.1.0 */
	cr_assert(mmds_ipv4_valid(0xa9fefeff));     /* 169.254.254.255 */
	cr_assert_not(mmds_ipv4_valid(0xa9fe0001)); /* 169.254.0.1 */
	cr_assert_not(mmds_ipv4_valid(0xa9feff01)); /* 169.254.255.1 */
	cr_assert_not(mmds_ipv4_valid(0xc0a80001)); /* 192.168.0.1 */
	cr_assert_not(mmds_ipv4_valid(0xa9ff0101)); /* 169.255.1.1 */
}
