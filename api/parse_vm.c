// SPDX-License-Identifier: Apache-2.0
/*
 * api/parse_vm.c: bodies that configure or drive the machine as a whole:
 * PUT /boot-source, PUT and PATCH /machine-config, PUT /actions, PATCH /vm,
 * PUT /logger, PUT /metrics. The resource bodies go through the shared
 * cfg_parse_*() of api/config.h, so the API and --config-file accept and
 * refuse exactly the same documents; the bodies only the API has
 * (InstanceActionInfo, Vm, the PATCH of MachineConfiguration) use the same
 * strict field walker (api/config_int.h).
 */
#include "api/config_int.h"
#include "api/parse_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

int api_parse_boot_source(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_parse_boot_source(body, &a->u.boot_source, e);
}

int api_parse_machine_put(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_parse_machine(body, &a->u.machine, e);
}

/*
 * PATCH /machine-config (Firecracker's MachineConfigUpdate): every field of
 * MachineConfiguration, all optional, at least one given. The values are
 * checked by cfg_parse_machine() on a copy in which absent required fields
 * get placeholders that no cross-field rule refuses (1 vCPU is valid with
 * SMT, 2 MiB with 2M huge pages); the rules over the merged configuration
 * are the VMM thread's to check.
 */
int api_parse_machine_patch(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	static const char *const fields[] = {"vcpu_count",        "mem_size_mib", "smt",
	                                     "track_dirty_pages", "huge_pages",   "cpu_template"};
	struct machine_patch *p = &a->u.machine_patch;
	struct machine_cfg m;
	bool any = false;
	json_t *full;
	int ret;

	(void)id;
	if (!json_is_object(body))
		return errf(e, EINVAL, "machine-config must be an object");
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		any |= api_json_present(body, fields[i]);
	full = json_copy(body);
	if (!full)
		return errf(e, ENOMEM, "out of memory");
	if (!api_json_present(full, "vcpu_count"))
		json_object_set_new(full, "vcpu_count", json_integer(1));
	if (!api_json_present(full, "mem_size_mib"))
		json_object_set_new(full, "mem_size_mib", json_integer(2));
	ret = cfg_parse_machine(full, &m, e);
	json_decref(full);
	if (ret < 0)
		return ret;
	/* unknown keys were refused above, so "nothing given" means only nulls or {} */
	if (!any) {
		machine_cfg_free(&m);
		return errf(e, EINVAL, "Empty PATCH request.");
	}

	*p = (struct machine_patch){
	        .has_vcpu_count = api_json_present(body, "vcpu_count"),
	        .has_mem_size_mib = api_json_present(body, "mem_size_mib"),
	        .has_smt = api_json_present(body, "smt"),
	        .has_track_dirty_pages = api_json_present(body, "track_dirty_pages"),
	        .has_huge_pages = api_json_present(body, "huge_pages"),
	        .vcpu_count = m.vcpu_count,
	        .mem_size_mib = m.mem_size_mib,
	        .smt = m.smt,
	        .track_dirty_pages = m.track_dirty_pages,
	        .huge_pages = m.huge_pages,
	        .has_cpu_template = m.cpu_template_set,
	};
	snprintf(p->cpu_template, sizeof(p->cpu_template), "%s",
	         m.cpu_template ? m.cpu_template : "");
	machine_cfg_free(&m);
	return 0;
}

/* a body of one required enum field, {"<field>": "<one of names>"}: *idx its index */
static int parse_enum_body(json_t *body, const char *where, const char *field,
                           const char *const *names, unsigned n, int *idx, struct errbuf *e)
{
	const struct cfg_field f = {
	        .name = field, .kind = CFG_ENUM, .required = true, .names = names, .nr_names = n};
	return cfg_fields_parse(body, where, &f, 1, idx, e);
}

/* InstanceActionInfo.action_type, in the order of the kinds below */
static const char *const action_names[] = {"InstanceStart", "SendCtrlAltDel", "FlushMetrics"};
static const enum api_action_kind action_kinds[] = {API_INSTANCE_START, API_SEND_CTRL_ALT_DEL,
                                                    API_FLUSH_METRICS};

/* PUT /actions: {"action_type": "InstanceStart" | "SendCtrlAltDel" | "FlushMetrics"} */
int api_parse_actions(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	int t = 0;
	int ret = parse_enum_body(body, "action", "action_type", action_names,
	                          ARRAY_SIZE(action_names), &t, e);

	(void)id;
	if (ret == 0)
		a->kind = action_kinds[t];
	return ret;
}

/* PATCH /vm: {"state": "Paused" | "Resumed"} (Firecracker's Vm) */
int api_parse_vm_state(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	static const char *const states[] = {"Paused", "Resumed"};
	int t = 0;
	int ret = parse_enum_body(body, "vm", "state", states, ARRAY_SIZE(states), &t, e);

	(void)id;
	if (ret == 0)
		a->kind = t == 0 ? API_PAUSE : API_RESUME;
	return ret;
}

int api_parse_logger(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_parse_logger(body, &a->u.logger, e);
}

int api_parse_metrics(json_t *body, const char *id, struct api_action *a, struct errbuf *e)
{
	(void)id;
	return cfg_parse_metrics(body, &a->u.metrics, e);
}
