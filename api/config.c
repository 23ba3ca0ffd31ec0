// SPDX-License-Identifier: Apache-2.0
/*
 * api/config.c: the VM configuration as a whole -- defaults, freeing, the
 * `--config-file` document (Firecracker's VmmConfig: one object whose keys
 * are the API resources), the cross-resource rules, ids and MAC addresses.
 */
#define LOG_MODULE "config"
#include "api/api.h"
#include "api/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ defaults, freeing */

void vm_config_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	/* Firecracker's VmConfig::default() */
	c->machine.vcpu_count = CFG_DEFAULT_VCPUS;
	c->machine.mem_size_mib = CFG_DEFAULT_MEM_MIB;
	c->logger.level = LOG_INFO;
}

static void free_str(char **s)
{
	free(*s);
	*s = NULL;
}

void boot_source_cfg_free(struct boot_source_cfg *b)
{
	free_str(&b->kernel_image_path);
	free_str(&b->initrd_path);
	free_str(&b->boot_args);
}

void machine_cfg_free(struct machine_cfg *m)
{
	free_str(&m->cpu_template);
}

void drive_cfg_free(struct drive_cfg *d)
{
	free_str(&d->path_on_host);
	free_str(&d->partuuid);
}

void net_cfg_free(struct net_cfg *n)
{
	free_str(&n->host_dev_name);
}

void vsock_cfg_free(struct vsock_cfg *v)
{
	free_str(&v->uds_path);
}

void logger_cfg_free(struct logger_cfg *l)
{
	free_str(&l->log_path);
	free_str(&l->module);
}

void metrics_cfg_free(struct metrics_cfg *m)
{
	free_str(&m->metrics_path);
	json_decref(m->properties);
	m->properties = NULL;
}

void vm_config_free(struct vm_config *c)
{
	boot_source_cfg_free(&c->boot_source);
	machine_cfg_free(&c->machine);
	for (unsigned i = 0; i < CFG_MAX_DRIVES; i++)
		drive_cfg_free(&c->drives[i]);
	for (unsigned i = 0; i < CFG_MAX_NETS; i++)
		net_cfg_free(&c->nets[i]);
	vsock_cfg_free(&c->vsock);
	logger_cfg_free(&c->logger);
	metrics_cfg_free(&c->metrics);
	vm_config_init(c);
}

/* ------------------------------------------------------- ids, MAC address */

bool cfg_id_valid(const char *id)
{
	size_t n = 0;

	if (!id)
		return false;
	for (; id[n]; n++) {
		char ch = id[n];
		if (n == CFG_ID_MAX || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		                         (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return n > 0;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int cfg_mac_parse(const char *s, uint8_t mac[6])
{
	uint8_t out[6];

	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, out, sizeof(out));
	return 0;
}

void cfg_mac_format(const uint8_t mac[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
	         mac[5]);
}

/* ---------------------------------------------------- cross-resource rules */

static int validate_drives(const struct vm_config *c, struct errbuf *e)
{
	int root = -1;

	if (c->nr_drives > CFG_MAX_DRIVES)
		return errf(e, EINVAL, "drives: kiln supports at most %d drives (got %u)",
		            CFG_MAX_DRIVES, c->nr_drives);
	for (unsigned i = 0; i < c->nr_drives; i++) {
		const struct drive_cfg *d = &c->drives[i];
		for (unsigned j = 0; j < i; j++)
			if (strcmp(d->drive_id, c->drives[j].drive_id) == 0)
				return errf(e, EINVAL,
				            "drives[%u]: drive_id \"%s\" is already used by "
				            "drives[%u]",
				            i, d->drive_id, j);
		if (d->is_root_device && root >= 0)
			/* Firecracker's DriveError::RootBlockDeviceAlreadyAdded */
			return errf(e, EINVAL, "drives[%u]: A root block device already exists!",
			            i);
		if (d->is_root_device)
			root = (int)i;
	}
	return 0;
}

static int validate_nets(const struct vm_config *c, struct errbuf *e)
{
	char mac[18];

	if (c->nr_nets > CFG_MAX_NETS)
		return errf(e, EINVAL,
		            "network-interfaces: kiln supports at most %d interfaces (got %u)",
		            CFG_MAX_NETS, c->nr_nets);
	for (unsigned i = 0; i < c->nr_nets; i++) {
		const struct net_cfg *n = &c->nets[i];
		for (unsigned j = 0; j < i; j++) {
			const struct net_cfg *o = &c->nets[j];
			if (strcmp(n->iface_id, o->iface_id) == 0)
				return errf(e, EINVAL,
				            "network-interfaces[%u]: iface_id \"%s\" is already "
				            "used by network-interfaces[%u]",
				            i, n->iface_id, j);
			/* Firecracker's NetworkInterfaceError messages */
			if (n->host_dev_name && o->host_dev_name &&
			    strcmp(n->host_dev_name, o->host_dev_name) == 0)
				return errf(e, EINVAL,
				            "network-interfaces[%u]: The host device name %s is "
				            "already in use.",
				            i, n->host_dev_name);
			if (n->has_mac && o->has_mac && !memcmp(n->guest_mac, o->guest_mac, 6)) {
				cfg_mac_format(n->guest_mac, mac);
				return errf(e, EINVAL,
				            "network-interfaces[%u]: The guest MAC address %s is "
				            "already in use.",
				            i, mac);
			}
		}
	}
	return 0;
}

int cfg_validate(const struct vm_config *c, struct errbuf *e)
{
	int ret = validate_drives(c, e);
	if (ret == 0)
		ret = validate_nets(c, e);
	return ret < 0 ? ret : cfg_validate_mmds(c, e);
}

void cfg_root_drive_first(struct vm_config *c)
{
	for (unsigned i = 1; i < c->nr_drives; i++) {
		if (c->drives[i].is_root_device) {
			struct drive_cfg root = c->drives[i];
			memmove(&c->drives[1], &c->drives[0], i * sizeof(c->drives[0]));
			c->drives[0] = root;
			return;
		}
	}
}

/* ---------------------------------------------------------- the document */

/* CFG_CUSTOM parsers of the top-level keys: the slot is the whole vm_config */
static int doc_boot_source(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct vm_config *c = slot;
	int ret = cfg_boot_source_at(v, where, &c->boot_source, e);
	if (ret == 0)
		c->has_boot_source = true;
	return ret;
}

static int doc_machine(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return cfg_machine_at(v, where, &((struct vm_config *)slot)->machine, e);
}

static int doc_vsock(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return cfg_vsock_at(v, where, &((struct vm_config *)slot)->vsock, e);
}

static int doc_entropy(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return cfg_entropy_at(v, where, &((struct vm_config *)slot)->entropy, e);
}

static int doc_logger(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return cfg_logger_at(v, where, &((struct vm_config *)slot)->logger, e);
}

static int doc_metrics(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return cfg_metrics_at(v, where, &((struct vm_config *)slot)->metrics, e);
}

static int doc_balloon(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return cfg_balloon_at(v, where, &((struct vm_config *)slot)->balloon, e);
}

static int doc_mmds(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return cfg_mmds_at(v, where, &((struct vm_config *)slot)->mmds, e);
}

/* "cpu-config": checked here, applied by the VMM at load (load_config_file) */
static int doc_cpu_config(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	struct cpu_config *c = malloc(sizeof(*c));
	(void)slot;
	(void)where;
	if (!c)
		return errf(e, ENOMEM, "out of memory");
	int ret = cfg_cpu_config_doc(v, c, e);
	free(c);
	/* a file that cannot be read is a bad document too (cfg_parse_document's -EINVAL) */
	return ret == -ENOMEM ? ret : ret < 0 ? -EINVAL : 0;
}

static int drive_item(struct vm_config *c, json_t *j, const char *loc, struct errbuf *e)
{
	int ret = cfg_drive_at(j, loc, &c->drives[c->nr_drives], e);
	if (ret == 0)
		c->nr_drives++;
	return ret;
}

static int net_item(struct vm_config *c, json_t *j, const char *loc, struct errbuf *e)
{
	int ret = cfg_net_at(j, loc, &c->nets[c->nr_nets], e);
	if (ret == 0)
		c->nr_nets++;
	return ret;
}

/* "drives" / "network-interfaces": an array of at most `max` objects */
static int doc_array(json_t *v, struct vm_config *c, const char *where, unsigned max,
                     const char *what,
                     int (*item)(struct vm_config *, json_t *, const char *, struct errbuf *),
                     struct errbuf *e)
{
	char loc[CFG_WHERE_MAX];
	size_t i;
	json_t *j;
	int ret;

	if (!json_is_array(v))
		return errf(e, EINVAL, "%s must be an array", where);
	if (json_array_size(v) > max)
		return errf(e, EINVAL, "%s: kiln supports at most %u %s (got %zu)", where, max,
		            what, json_array_size(v));
	json_array_foreach(v, i, j)
	{
		snprintf(loc, sizeof(loc), "%s[%zu]", where, i);
		if ((ret = item(c, j, loc, e)) < 0)
			return ret;
	}
	return 0;
}

static int doc_drives(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return doc_array(v, slot, where, CFG_MAX_DRIVES, "drives", drive_item, e);
}

static int doc_nets(json_t *v, void *slot, const char *where, struct errbuf *e)
{
	return doc_array(v, slot, where, CFG_MAX_NETS, "interfaces", net_item, e);
}

#define DOC(n, req, fn)                                                                            \
	{                                                                                          \
		.name = n, .kind = CFG_CUSTOM, .required = req, .parse = fn                        \
	}
#define NOT_YET(n)                                                                                 \
	{                                                                                          \
		.name = n, .kind = CFG_REJECT, .reject = "\"" n "\" is not supported by kiln yet"  \
	}

/* Firecracker's VmmConfig keys */
static const struct cfg_field doc_fields[] = {
        DOC("boot-source", true, doc_boot_source),
        DOC("machine-config", false, doc_machine),
        DOC("drives", false, doc_drives),
        DOC("network-interfaces", false, doc_nets),
        DOC("vsock", false, doc_vsock),
        DOC("entropy", false, doc_entropy),
        DOC("logger", false, doc_logger),
        DOC("metrics", false, doc_metrics),
        DOC("mmds-config", false, doc_mmds),
        DOC("balloon", false, doc_balloon),
        DOC("cpu-config", false, doc_cpu_config),
        NOT_YET("memory-hotplug"),
        NOT_YET("pmem"),
};

/*
 * Firecracker's VmmConfig has no deny_unknown_fields: a top-level key it
 * does not know (a newer release's, "serial", a typo) is ignored. kiln
 * does the same, so that a Firecracker user's file loads, and names each
 * such key in a warning (Firecracker says nothing, so a misspelt
 * "machine_config" silently leaves the defaults). Keys inside the
 * resources stay strict, as Firecracker's are.
 */
static void drop_unknown_keys(json_t *root)
{
	const char *key;
	json_t *v;
	void *tmp;

	if (!json_is_object(root))
		return;
	json_object_foreach_safe(root, tmp, key, v)
	{
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(doc_fields) && !known; i++)
			known = strcmp(key, doc_fields[i].name) == 0;
		if (known)
			continue;
		log_warn("configuration: unknown top-level field \"%.64s\" ignored (as Firecracker "
		         "ignores it)",
		         key);
		json_object_del(root, key);
	}
}

int cfg_parse_document(const char *text, size_t len, struct vm_config *c, struct errbuf *e)
{
	json_error_t jerr;
	json_t *root;
	int ret;

	if (!text)
		return errf(e, EINVAL, "no configuration text");
	/* duplicate keys are refused, as serde refuses a duplicate field */
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return errf(e, EINVAL, "invalid JSON at line %d column %d: %s", jerr.line,
		            jerr.column, jerr.text);
	drop_unknown_keys(root);
	ret = cfg_fields_parse(root, "", doc_fields, ARRAY_SIZE(doc_fields), c, e);
	if (ret == 0)
		ret = cfg_validate(c, e);
	json_decref(root);
	if (ret < 0) {
		vm_config_free(c);
		return ret;
	}
	cfg_root_drive_first(c);
	return 0;
}
