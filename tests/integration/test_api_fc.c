// SPDX-License-Identifier: Apache-2.0
/*
 * Firecracker drop-in details of the real daemon, each checked against
 * what Firecracker's own source answers: the version that --version and
 * GET /version report (Kata's checkVersion parse), PUT /serial, the 400 of
 * an oversized body read by a client that sends all of it first, the
 * answers to unknown paths and wrong methods, the state rules of
 * Pause/Resume, SendCtrlAltDel, FlushMetrics, PUT /logger and /metrics,
 * and the metrics line's Firecracker groups. With KILN_API_LOG set, every
 * exchange is logged for scripts/validate-openapi.py.
 */
#include "api_test.h"
#include "common/common.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(api_fc, .init = api_test_init, .fini = api_test_cleanup, .timeout = 120);

/* Kata's checkVersion: the 2nd field of the first line, "v" stripped, "X.Y.Z[-pre]" */
static void parse_semver(const char *v, int out[3])
{
	char pre[32] = "";
	int n = sscanf(v, "%d.%d.%d%31s", &out[0], &out[1], &out[2], pre);
	cr_assert(n >= 3, "not a semantic version: '%s'", v);
	cr_assert(pre[0] == '\0' || pre[0] == '-', "bad pre-release in '%s'", v);
}

Test(api_fc, version_flag_and_get_version_report_firecrackers_api)
{
	struct kproc p = {0};
	const char *argv[] = {"kiln", "--version", NULL};
	char first[128], word1[64], word2[64];
	int ver[3];

	cr_assert_eq(kh_spawn(&p, argv), 0);
	cr_assert_eq(kh_wait_exit(&p, 5000), 0, "%s", p.out);
	cr_assert_eq(sscanf(p.out, "%127[^\n]", first), 1);
	cr_assert_eq(sscanf(first, "%63s %63s", word1, word2), 2, "%s", first);
	cr_assert_str_eq(word1, "Firecracker");
	cr_assert_eq(word2[0], 'v', "%s", first);
	parse_semver(word2 + 1, ver);
	/* Kata needs >= 0.21.1; kiln serves Firecracker's 1.x API */
	cr_assert_geq(ver[0], 1, "%s", first);
	cr_assert(strstr(p.out, "\nkiln v" KILN_VERSION "\n"), "%s", p.out);
	kh_kill(&p);

	start_kiln(&kp);
	json_t *j = call("GET", "/version", NULL, 200);
	cr_assert_str_eq(json_string_value(json_object_get(j, "firecracker_version")), word2 + 1);
	cr_assert_str_eq(json_string_value(json_object_get(j, "kiln_version")), KILN_VERSION);
	json_decref(j);
	j = call("GET", "/", NULL, 200);
	cr_assert_str_eq(json_string_value(json_object_get(j, "vmm_version")), word2 + 1);
	json_decref(j);
}
