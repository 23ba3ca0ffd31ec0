// SPDX-License-Identifier: Apache-2.0
/*
 * api/config_mmds.c: Firecracker's MmdsConfig (PUT /mmds/config and the
 * config file's "mmds-config"): version V1 or V2 (V1 when not given), the
 * network_interfaces that serve MMDS (at least one; each must name a
 * configured interface, which cfg_validate() checks against the whole
 * config), ipv4_address (a link-local address, 169.254.169.254 when not
 * given) and imds_compat. Messages as Firecracker's MmdsConfigError.
 */
#include "api/config_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

_Static_assert(sizeof(enum mmds_version) == sizeof(int), "CFG_ENUM stores an int");

const char *const cfg_mmds_version_names[2] = {[MMDS_V1] = "V1", [MMDS_V2] = "V2"};

#define MSG_EMPTY_LIST                                                                             \
	"The list of network interface IDs that allow forwarding MMDS requests is empty."
#define MSG_NO_IFACE                                                                               \
	"The list of network interface IDs provided contains at least one ID that does not "       \
	"correspond to any existing network interface."

/* network_interfaces: strings; repeats kept once */
static int parse_ifaces(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct mmds_cfg *m = slot;
	size_t i;
	json_t *s;

	if (!json_is_array(v))
		return errf(e, EINVAL, "%s must be an array", where);
	if (json_array_size(v) == 0)
		return errf(e, EINVAL, "%s: " MSG_EMPTY_LIST, where);
	m->nr_ifaces = 0;
	json_array_foreach(v, i, s)
	{
		const char *id = json_string_value(s);
		unsigned j = 0;

		if (!id)
			return errf(e, EINVAL, "%s[%zu] must be a string", where, i);
		/* no configured interface has an id that is not a valid one */
		if (!cfg_id_valid(id))
			return errf(e, EINVAL, "%s: " MSG_NO_IFACE, where);
		while (j < m->nr_ifaces && strcmp(m->ifaces[j], id) != 0)
			j++;
		if (j < m->nr_ifaces)
			continue;
		if (m->nr_ifaces == CFG_MAX_NETS) /* more than there can be interfaces */
			return errf(e, EINVAL, "%s: " MSG_NO_IFACE, where);
		snprintf(m->ifaces[m->nr_ifaces++], CFG_ID_MAX + 1, "%s", id);
	}
	return 0;
}

static int parse_ipv4(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	const char *s = json_string_value(v);
	struct in_addr a;

	if (!s)
		return errf(e, EINVAL, "%s must be a string", where);
	/* dotted decimal, four parts, as Rust's Ipv4Addr parses it */
	if (inet_pton(AF_INET, s, &a) != 1)
		return errf(e, EINVAL, "%s \"%.64s\" is not an IPv4 address", where, s);
	if (!mmds_ipv4_valid(ntohl(a.s_addr)))
		return errf(e, EINVAL, "%s: The MMDS IPv4 address is not link local.", where);
	*(uint32_t *)slot = ntohl(a.s_addr);
	return 0;
}

#define F(n, k, req, member)                                                                       \
	.name = n, .kind = k, .required = req, .off = offsetof(struct mmds_cfg, member)

static const struct cfg_field mmds_fields[] = {
        {F("version", CFG_ENUM, false, version), .names = cfg_mmds_version_names,
         .nr_names = ARRAY_SIZE(cfg_mmds_version_names)},
        /* the slot is the whole mmds_cfg */
        {.name = "network_interfaces", .kind = CFG_CUSTOM, .required = true, .parse = parse_ifaces},
        {F("ipv4_address", CFG_CUSTOM, false, ipv4), .parse = parse_ipv4},
        {F("imds_compat", CFG_BOOL, false, imds_compat)},
};

int cfg_mmds_at(json_t *j, const char *where, struct mmds_cfg *out, struct errbuf *e)
{
	struct mmds_cfg m = {.set = true, .ipv4 = MMDS_DEFAULT_IPV4};
	int ret = cfg_fields_parse(j, where, mmds_fields, ARRAY_SIZE(mmds_fields), &m, e);
	if (ret == 0)
		*out = m;
	return ret;
}

int cfg_parse_mmds(json_t *j, struct mmds_cfg *out, struct errbuf *e)
{
	return cfg_mmds_at(j, "mmds-config", out, e);
}

int cfg_validate_mmds(const struct vm_config *c, struct errbuf *e)
{
	for (unsigned i = 0; c->mmds.set && i < c->mmds.nr_ifaces; i++) {
		unsigned n = 0;
		while (n < c->nr_nets && strcmp(c->nets[n].iface_id, c->mmds.ifaces[i]) != 0)
			n++;
		if (n == c->nr_nets)
			return errf(e, EINVAL, "mmds-config.network_interfaces: " MSG_NO_IFACE);
	}
	return 0;
}

json_t *cfg_mmds_json(const struct vm_config *c)
{
	const struct mmds_cfg *m = &c->mmds;
	struct in_addr a = {.s_addr = htonl(m->ipv4)};
	char ip[INET_ADDRSTRLEN];
	json_t *list;

	if (!m->set)
		return json_null();
	if (!(list = json_array()) || !inet_ntop(AF_INET, &a, ip, sizeof(ip))) {
		json_decref(list);
		return NULL;
	}
	/* in the order of the interfaces, as Firecracker walks its net devices */
	for (unsigned n = 0; n < c->nr_nets; n++)
		for (unsigned i = 0; i < m->nr_ifaces; i++)
			if (strcmp(c->nets[n].iface_id, m->ifaces[i]) == 0 &&
			    json_array_append_new(list, json_string(m->ifaces[i])) < 0) {
				json_decref(list);
				return NULL;
			}
	return json_pack("{s:s, s:o, s:s, s:b}", "version", cfg_mmds_version_names[m->version],
	                 "network_interfaces", list, "ipv4_address", ip, "imds_compat",
	                 m->imds_compat);
}
