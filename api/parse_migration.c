// SPDX-License-Identifier: Apache-2.0
/*
 * api/parse_migration.c: kiln's own live migration endpoints, which have no
 * Firecracker counterpart (docs/migration.md): the bodies of PUT
 * /migration/send and PUT /migration/receive, and the form of the addresses
 * they name. GET /migration and PUT /migration/cancel take no body. The
 * rules are those of every other body: unknown fields, wrong JSON types and
 * missing required fields are refused, null means absent. An address is
 * only checked for its form here; the daemon resolves and opens it.
 */
#include "api/config_int.h"
#include "api/parse_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* a unix socket path without its NUL; a DNS name (RFC 1035 s2.3.4, as text) */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define HOST_MAX     253

#define ADDR_FORMS "\"tcp:HOST:PORT\" or \"unix:PATH\""

void api_migration_send_free(struct migration_send_req *r)
{
	free(r->destination);
	r->destination = NULL;
}

void api_migration_receive_free(struct migration_receive_req *r)
{
	free(r->listen);
	free(r->vsock_uds_path);
	r->listen = r->vsock_uds_path = NULL;
	api_net_overrides_free(r->net_overrides, &r->nr_net_overrides);
	for (unsigned i = 0; i < r->nr_drive_overrides && i < CFG_MAX_DRIVES; i++) {
		free(r->drive_overrides[i].path_on_host);
		r->drive_overrides[i].path_on_host = NULL;
	}
	r->nr_drive_overrides = 0;
}

/* ----------------------------------------------------------------- addresses */

/* PORT: 1 to 5 decimal digits, 1..65535 (strtol would take " +8" too) */
static bool port_ok(const char *p)
{
	unsigned long v = 0;
	size_t n = strspn(p, "0123456789");

	if (n == 0 || n > 5 || p[n])
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(p[i] - '0');
	return v >= 1 && v <= 65535;
}

/* "[v6]" with an optional zone, "[fe80::1%eth0]": NULL when fine, else why not */
static const char *ipv6_problem(const char *s, size_t len)
{
	char buf[64];
	struct in6_addr a;
	const char *zone = memchr(s, '%', len);
	size_t alen = zone ? (size_t)(zone - s) : len;

	if (zone && zone + 1 == s + len)
		return "the IPv6 zone after '%' is empty";
	if (alen == 0 || alen >= sizeof(buf))
		return "the brackets hold no IPv6 address";
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET6, buf, &a) != 1)
		return "the brackets hold no IPv6 address";
	return NULL;
}

/* HOST of "tcp:HOST:PORT" without brackets: a name or an IPv4 address */
static const char *host_problem(const char *s, size_t len)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                         "0123456789.-_";

	if (len == 0)
		return "the HOST is empty";
	if (memchr(s, ':', len))
		return "an IPv6 HOST goes in brackets, as in tcp:[::1]:4000";
	if (len > HOST_MAX)
		return "the HOST is longer than 253 characters";
	for (size_t i = 0; i < len; i++)
		if (!strchr(ok, s[i]))
			return "the HOST may only have letters, digits, '.', '-' and '_'";
	return NULL;
}

/* what is wrong with "tcp:..." after the prefix, or NULL */
static const char *tcp_problem(const char *hp)
{
	const char *colon, *why;

	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');
		if (!close || close[1] != ':')
			return "an IPv6 HOST is \"[ADDRESS]:PORT\"";
		if ((why = ipv6_problem(hp + 1, (size_t)(close - hp - 1))))
			return why;
		colon = close + 1;
	} else {
		if (!(colon = strrchr(hp, ':')))
			return "the :PORT is missing";
		if ((why = host_problem(hp, (size_t)(colon - hp))))
			return why;
	}
	return port_ok(colon + 1) ? NULL : "the PORT must be a number from 1 to 65535";
}

int api_migration_address_check(const char *addr, const char *where, struct errbuf *e)
{
	const char *why = NULL;

	if (strncmp(addr, "unix:", 5) == 0) {
		size_t n = strlen(addr + 5);
		if (n == 0)
			why = "the PATH is empty";
		else if (n > SUN_PATH_MAX)
			return errf(e, EINVAL,
			            "%s: the unix socket path is too long (%zu bytes, max %zu)",
			            where, n, SUN_PATH_MAX);
	} else if (strncmp(addr, "tcp:", 4) == 0) {
		why = tcp_problem(addr + 4);
	} else {
		return errf(e, EINVAL, "%s must be " ADDR_FORMS " (got \"%.160s\")", where, addr);
	}
	if (why)
		return errf(e, EINVAL, "%s must be " ADDR_FORMS " (got \"%.160s\"): %s", where,
		            addr, why);
	return 0;
}

/* ------------------------------------------------------- PUT /migration/send */

static const struct cfg_field send_fields[] = {
        {.name = "destination",
         .kind = CFG_PATH,
         .required = true,
         .off = offsetof(struct migration_send_req, destination)},
        {.name = "max_downtime_ms",
         .kind = CFG_U32,
         .off = offsetof(struct migration_send_req, max_downtime_ms),
         .min = 1,
         .max = UINT32_MAX},
        {.name = "max_iterations",
         .kind = CFG_U32,
         .off = offsetof(struct migration_send_req, max_iterations),
         .min = 1,
         .max = UINT32_MAX},
        {.name = "bandwidth_limit_mib_s",
         .kind = CFG_U32,
         .off = offsetof(struct migration_send_req, bandwidth_limit_mib_s),
         .max = UINT32_MAX},
};

int api_parse_migration_send(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	struct migration_send_req r = {
	        .max_downtime_ms = MIG_DEFAULT_MAX_DOWNTIME_MS,
	        .max_iterations = MIG_DEFAULT_MAX_ITERATIONS,
	};
	char where[CFG_WHERE_MAX];
	int ret = cfg_fields_parse(body, "migration_send", send_fields, ARRAY_SIZE(send_fields), &r,
	                           e);

	(void)id;
	if (ret == 0)
		ret = api_migration_address_check(
		        r.destination, cfg_where(where, "migration_send", "destination"), e);
	if (ret < 0) {
		api_migration_send_free(&r);
		return ret;
	}
	a->u.migration_send = r;
	return 0;
}

/* ---------------------------------------------------- PUT /migration/receive */

static const struct cfg_field drive_override_fields[] = {
        {.name = "drive_id",
         .kind = CFG_ID,
         .required = true,
         .off = offsetof(struct migration_drive_override, drive_id)},
        {.name = "path_on_host",
         .kind = CFG_PATH,
         .required = true,
         .off = offsetof(struct migration_drive_override, path_on_host)},
};

/* one entry of drive_overrides, whose drive_id the earlier ones lack; ctx: the list */
static int drive_override_item(json_t *v, unsigned i, const char *where, void *ctx,
                               struct errbuf *e)
{
	struct migration_drive_override *list = ctx;
	int ret = cfg_fields_parse(v, where, drive_override_fields,
	                           ARRAY_SIZE(drive_override_fields), &list[i], e);

	if (ret < 0)
		return ret;
	for (unsigned j = 0; j < i; j++)
		if (strcmp(list[j].drive_id, list[i].drive_id) == 0)
			return errf(
			        e, EINVAL,
			        "%s.drive_id \"%s\" is already overridden by drive_overrides[%u]",
			        where, list[i].drive_id, j);
	return 0;
}

/* drive_overrides: [DriveOverride]; slot: the request */
static int parse_drive_overrides(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct migration_receive_req *r = slot;
	return cfg_list_parse(v, where, CFG_MAX_DRIVES, &r->nr_drive_overrides, drive_override_item,
	                      r->drive_overrides, e);
}

/* network_overrides and vsock_override: snapshot/load's rules; slot: the request */
static int parse_net_overrides(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct migration_receive_req *r = slot;
	return api_parse_net_overrides(v, r->net_overrides, &r->nr_net_overrides, where, e);
}

static int parse_vsock_override(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct migration_receive_req *r = slot;
	return api_parse_vsock_override(v, &r->vsock_uds_path, where, e);
}

static const struct cfg_field receive_fields[] = {
        {.name = "listen",
         .kind = CFG_PATH,
         .required = true,
         .off = offsetof(struct migration_receive_req, listen)},
        {.name = "network_overrides", .kind = CFG_CUSTOM, .parse = parse_net_overrides},
        {.name = "drive_overrides", .kind = CFG_CUSTOM, .parse = parse_drive_overrides},
        {.name = "vsock_override", .kind = CFG_CUSTOM, .parse = parse_vsock_override},
};

int api_parse_migration_receive(json_t *body, const char *id, struct api_action *a,
                                struct errbuf *e)
{
	struct migration_receive_req r = {0};
	char where[CFG_WHERE_MAX];
	int ret = cfg_fields_parse(body, "migration_receive", receive_fields,
	                           ARRAY_SIZE(receive_fields), &r, e);

	(void)id;
	if (ret == 0)
		ret = api_migration_address_check(
		        r.listen, cfg_where(where, "migration_receive", "listen"), e);
	if (ret < 0) {
		api_migration_receive_free(&r);
		return ret;
	}
	a->u.migration_receive = r;
	return 0;
}
