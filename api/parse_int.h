/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api/parse_int.h: private to api/router.c and api/parse_*.c. One parser
 * per endpoint that takes a body; the router has already checked the path
 * id's syntax and decoded the body into a JSON value (any type: each parser
 * checks that it got an object).
 *
 * Contract of every parser: fill a->u (and a->kind when the body decides
 * it, /actions and /vm) and return 0, or return -EINVAL / -ENOMEM with a
 * message in `e` naming the field and leave a->u owning nothing. Any thread.
 */
#ifndef KILN_API_PARSE_INT_H
#define KILN_API_PARSE_INT_H

#include "api/api.h"

/* `id` is the path's {drive_id} / {iface_id}, or NULL on paths without one */
typedef int (*api_parse_fn)(json_t *body, const char *id, struct api_action *a, struct errbuf *e);

/* parse_vm.c: the machine as a whole */
int api_parse_boot_source(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_machine_put(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_machine_patch(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_actions(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_vm_state(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_logger(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_metrics(json_t *body, const char *id, struct api_action *a, struct errbuf *e);

/* parse_devices.c: drives, network interfaces, vsock, entropy */
int api_parse_drive_put(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_drive_patch(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_net_put(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_net_patch(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_vsock(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_entropy(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_serial(json_t *body, const char *id, struct api_action *a, struct errbuf *e);

/* parse_cpu.c: Firecracker's custom CPU template (x86_64) */
int api_parse_cpu_config(json_t *body, const char *id, struct api_action *a, struct errbuf *e);

/* parse_snapshot.c: PUT /snapshot/create and /snapshot/load */
int api_parse_snapshot_create(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_snapshot_load(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
/*
 * network_overrides and vsock_override, shared with PUT /migration/receive.
 * The list holds SNAP_MAX_NET_OVERRIDES; *nr counts the entries whose
 * strings the caller must free (api_net_overrides_free), also on error.
 * `where` names the field in messages ("snapshot_load.network_overrides").
 */
int api_parse_net_overrides(json_t *v, struct snapshot_net_override *list, unsigned *nr,
                            const char *where, struct errbuf *e);
void api_net_overrides_free(struct snapshot_net_override *list, unsigned *nr);
int api_parse_vsock_override(json_t *v, char **uds_path, const char *where, struct errbuf *e);

/* parse_migration.c: kiln's own live migration endpoints */
int api_parse_migration_send(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_migration_receive(json_t *body, const char *id, struct api_action *a,
                                struct errbuf *e);

/* parse_mmds.c: PUT/PATCH /mmds (any JSON value) and PUT /mmds/config */
int api_parse_mmds_data(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_mmds_config(json_t *body, const char *id, struct api_action *a, struct errbuf *e);

/* parse_balloon.c: PUT/PATCH /balloon, PATCH /balloon/statistics, /balloon/hinting/start */
int api_parse_balloon_put(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_balloon_patch(json_t *body, const char *id, struct api_action *a, struct errbuf *e);
int api_parse_balloon_stats_patch(json_t *body, const char *id, struct api_action *a,
                                  struct errbuf *e);
int api_parse_balloon_hint_start(json_t *body, const char *id, struct api_action *a,
                                 struct errbuf *e);
int api_parse_balloon_hint_stop(json_t *body, const char *id, struct api_action *a,
                                struct errbuf *e);

/* a field a body sets: present and not null (null means absent, as Option<> in serde) */
static inline bool api_json_present(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return v && !json_is_null(v);
}

/* Firecracker's message when the path's id and the body's id differ */
#define API_MSG_ID_MISMATCH "The id from the path does not match the id from the body!"

#endif
