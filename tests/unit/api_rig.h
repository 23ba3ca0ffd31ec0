/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The api/ unit tests' rig: one request through api_route() with no server
 * and no VMM, into the file's `act` and `err`, and the checks on its
 * outcome. Shared by test_api.c and test_api_migration.c; a suite frees the
 * last action with `.fini = api_rig_fini`.
 */
#ifndef KILN_TEST_API_RIG_H
#define KILN_TEST_API_RIG_H

#include "api/api.h"

#include <criterion/criterion.h>
#include <string.h>

static struct api_action act;
static struct errbuf err;

static inline void api_rig_fini(void)
{
	api_action_release(&act);
}

/* a fresh `act` and `err`, then the request; its return value */
static inline int route(const char *method, const char *path, const char *body)
{
	api_action_release(&act);
	memset(&act, 0, sizeof(act));
	memset(&err, 0, sizeof(err));
	return api_route(method, path, body, body ? strlen(body) : 0, &act, &err);
}

/* expects `ret` from the route and, unless NULL, `msg` inside the message */
static inline void expect(const char *method, const char *path, const char *body, int ret,
                          const char *msg)
{
	int got = route(method, path, body);
	cr_assert_eq(got, ret, "%s %s %s: got %d (%s), wanted %d", method, path, body ? body : "",
	             got, err.msg, ret);
	if (msg)
		cr_assert(strstr(err.msg, msg), "%s %s: message \"%s\" lacks \"%s\"", method, path,
		          err.msg, msg);
}

/* expects success and the action kind `k` */
static inline void expect_kind(const char *method, const char *path, const char *body,
                               enum api_action_kind k)
{
	expect(method, path, body, 0, NULL);
	cr_assert_eq(act.kind, k, "%s %s: kind %d, wanted %d", method, path, act.kind, k);
}

#endif
