/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mmds/mmds_int.h: private to the mmds/ files. The JSON helpers behind the data
 * store, apart so that the unit tests and the fuzz targets reach them
 * without a store around them.
 */
#ifndef KILN_MMDS_INT_H
#define KILN_MMDS_INT_H

#include "mmds/mmds.h"

/*
 * RFC 7396 merge of `patch` into *target (owned; NULL is JSON null), as
 * Firecracker's json_patch(): an object patch merges key by key (a null
 * value removes the key), anything else replaces. *target may be replaced
 * by a new reference. 0 / -ENOMEM (then *target is partly patched: apply
 * to a copy).
 */
int mmds_merge_patch(json_t **target, json_t *patch);

/*
 * The value at the guest's URI path in `root` (borrowed; NULL when
 * nothing is there). The path rules are mmds_lookup()'s.
 */
json_t *mmds_pointer(json_t *root, const char *path, size_t len);

/* the length of `v`'s compact JSON text (serde_json's to_vec, which Firecracker measures) */
size_t mmds_json_size(const json_t *v);

#endif
