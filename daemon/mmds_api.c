// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/mmds_api.c: the MMDS actions on the VMM thread (PUT, PATCH and GET
 * /mmds, PUT /mmds/config) and --metadata, with Firecracker's rules
 * (src/vmm/src/rpc_interface.rs, resources.rs): the store comes into being
 * at the first of them before the boot; after the boot, a VM that had none
 * answers "not initialized"; a store too big is 413 (-EFBIG).
 */
#define LOG_MODULE "mmds"
#include "vmm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Firecracker's VmmActionError::Mmds(NotInitialized) */
#define MSG_NOT_INIT "MMDS error: The MMDS data store is not initialized."

/* the store may be used: it exists, or comes into being before the boot */
static int store_ready(struct vmm *v, struct errbuf *e)
{
	if (!v->mmds_used && v->state != VMM_NOT_STARTED)
		return errf(e, ENODATA, MSG_NOT_INIT);
	v->mmds_used = true;
	return 0;
}

/* the data store's refusal, in Firecracker's words */
static int store_error(int ret, struct errbuf *e)
{
	char msg[sizeof(e->msg)];

	snprintf(msg, sizeof(msg), "%s", e->msg);
	if (ret == -EFBIG)
		return errf(e, EFBIG, "MMDS limit exceeded error: %s", msg);
	return errf(e, -ret, "MMDS error: %s", msg);
}

int vmm_mmds_get(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	int ret = store_ready(v, e);
	if (ret < 0)
		return ret;
	a->reply = mmds_get(&v->mmds);
	return a->reply ? 0 : errf(e, ENOMEM, "out of memory");
}

int vmm_mmds_put(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	int ret = store_ready(v, e);
	if (ret == 0 && (ret = mmds_put(&v->mmds, a->u.mmds_data, e)) < 0)
		return store_error(ret, e);
	return ret;
}

int vmm_mmds_patch(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	int ret = store_ready(v, e);
	if (ret == 0 && (ret = mmds_patch(&v->mmds, a->u.mmds_data, e)) < 0)
		return store_error(ret, e);
	return ret;
}

/* PUT /mmds/config: before the boot; the interfaces must be configured already */
int vmm_mmds_config(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	struct vm_config cand = v->cfg; /* shallow: only read by cfg_validate */
	char msg[sizeof(e->msg)];
	int ret;

	cand.mmds = a->u.mmds_config;
	if ((ret = cfg_validate(&cand, e)) < 0) {
		snprintf(msg, sizeof(msg), "%s", e->msg);
		return errf(e, -ret, "MMDS config error: %s", msg);
	}
	v->cfg.mmds = a->u.mmds_config;
	v->mmds_used = true;
	mmds_configure(&v->mmds, v->cfg.mmds.version, v->cfg.mmds.imds_compat);
	return 0;
}

void vmm_mmds_apply_config(struct vmm *v)
{
	if (!v->cfg.mmds.set)
		return;
	v->mmds_used = true;
	mmds_configure(&v->mmds, v->cfg.mmds.version, v->cfg.mmds.imds_compat);
}

int vmm_mmds_load(struct vmm *v, const char *path, struct errbuf *e)
{
	json_error_t jerr;
	char *text, msg[sizeof(e->msg)];
	size_t len;
	json_t *j;
	int ret = read_file(path, MIB(64), &text, &len, e);

	if (ret < 0)
		return ret;
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	free(text);
	if (!j)
		return errf(e, EINVAL, "metadata is not valid JSON: %s at line %d column %d",
		            jerr.text, jerr.line, jerr.column);
	ret = mmds_put(&v->mmds, j, e);
	json_decref(j);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "%s", e->msg);
		return errf(e, -ret, "Populating MMDS from file failed: %s", msg);
	}
	v->mmds_used = true;
	log_info("Successfully added metadata to mmds from file");
	return 0;
}
