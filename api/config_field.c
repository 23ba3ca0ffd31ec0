// SPDX-License-Identifier: Apache-2.0
/*
 * api/config_field.c: the strict, table-driven field walker behind every
 * resource parser. Serde's rules for Firecracker's structs (which are
 * #[serde(deny_unknown_fields)]), said once: unknown keys, wrong JSON types
 * and missing required fields are errors; an integer must be a JSON integer
 * (2.0 is a real); null in an Option<> field means "absent". Ranges come from
 * the swagger's minimum/maximum or from kiln's limits.
 */
#include "api/config_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *cfg_where(char *buf, const char *where, const char *name)
{
	snprintf(buf, CFG_WHERE_MAX, "%s%s%s", where, where[0] ? "." : "", name);
	return buf;
}

static const char *kind_type(enum cfg_kind k)
{
	switch (k) {
	case CFG_BOOL:
		return "a boolean";
	case CFG_U64:
	case CFG_U32:
		return "an integer";
	default:
		return "a string";
	}
}

static bool kind_type_ok(enum cfg_kind k, json_t *v)
{
	switch (k) {
	case CFG_BOOL:
		return json_is_boolean(v);
	case CFG_U64:
	case CFG_U32:
		return json_is_integer(v); /* 2.0 is a JSON real, refused as in serde */
	case CFG_CUSTOM:
	case CFG_REJECT:
		return true;
	default:
		return json_is_string(v);
	}
}

static int parse_int(const struct cfg_field *f, json_t *v, void *slot, const char *path,
                     struct errbuf *e)
{
	json_int_t x = json_integer_value(v);

	if (x < 0 || (uint64_t)x < f->min || (uint64_t)x > f->max) {
		if (f->max < INT64_MAX)
			return errf(e, EINVAL, "%s must be between %llu and %llu (got %lld)", path,
			            (unsigned long long)f->min, (unsigned long long)f->max,
			            (long long)x);
		if (f->min == 0)
			return errf(e, EINVAL, "%s must not be negative (got %lld)", path,
			            (long long)x);
		return errf(e, EINVAL, "%s must be at least %llu (got %lld)", path,
		            (unsigned long long)f->min, (long long)x);
	}
	if (f->kind == CFG_U32)
		*(uint32_t *)slot = (uint32_t)x;
	else
		*(uint64_t *)slot = (uint64_t)x;
	return 0;
}

static int parse_enum(const struct cfg_field *f, const char *s, void *slot, const char *path,
                      struct errbuf *e)
{
	char list[160] = "";
	size_t n = 0;

	for (unsigned i = 0; i < f->nr_names; i++) {
		if (f->icase ? strcasecmp(s, f->names[i]) == 0 : strcmp(s, f->names[i]) == 0) {
			*(int *)slot = (int)i;
			return 0;
		}
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s\"%s\"", i ? ", " : "",
		                      f->names[i]);
		if (n >= sizeof(list))
			break;
	}
	return errf(e, EINVAL, "%s must be one of %s (got \"%.64s\")", path, list, s);
}

/* one present, non-null value of field `f` */
static int parse_value(const struct cfg_field *f, json_t *v, const char *where, void *base,
                       struct errbuf *e)
{
	char path[CFG_WHERE_MAX];
	void *slot = (char *)base + f->off;
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	cfg_where(path, where, f->name);
	if (!kind_type_ok(f->kind, v))
		return errf(e, EINVAL, "%s must be %s", path, kind_type(f->kind));
	if (s && strlen(s) != json_string_length(v))
		return errf(e, EINVAL, "%s must not contain NUL characters", path);

	switch (f->kind) {
	case CFG_PATH:
		if (!s[0])
			return errf(e, EINVAL, "%s must not be empty", path);
		/* fall through */
	case CFG_STR:
		if (!(*(char **)slot = strdup(s)))
			return errf(e, ENOMEM, "out of memory parsing %s", path);
		return 0;
	case CFG_ID:
		if (!cfg_id_valid(s))
			return errf(e, EINVAL,
			            "%s \"%.64s\" is invalid: ids are 1 to %d characters from "
			            "[A-Za-z0-9_]",
			            path, s, CFG_ID_MAX);
		memcpy(slot, s, strlen(s) + 1);
		return 0;
	case CFG_BOOL:
		*(bool *)slot = json_is_true(v);
		return 0;
	case CFG_U64:
	case CFG_U32:
		return parse_int(f, v, slot, path, e);
	case CFG_ENUM:
		return parse_enum(f, s, slot, path, e);
	case CFG_CUSTOM:
		return f->parse(v, slot, path, e);
	case CFG_IGNORE:
		return 0;
	case CFG_REJECT:
		if (json_is_array(v) && json_array_size(v) == 0)
			return 0;
		if (!where[0])
			return errf(e, EINVAL, "%s", f->reject);
		return errf(e, EINVAL, "%s: %s", where, f->reject);
	}
	return errf(e, EINVAL, "%s: internal error (field kind %d)", path, f->kind);
}

int cfg_fields_parse(json_t *obj, const char *where, const struct cfg_field *tab, size_t n,
                     void *base, struct errbuf *e)
{
	const char *key;
	json_t *v;
	int ret;

	if (!json_is_object(obj))
		return errf(e, EINVAL, "%s must be an object",
		            where[0] ? where : "the configuration");

	json_object_foreach(obj, key, v)
	{
		const struct cfg_field *f = NULL;
		for (size_t i = 0; i < n && !f; i++)
			if (strcmp(key, tab[i].name) == 0)
				f = &tab[i];
		if (!f) {
			if (!where[0])
				return errf(e, EINVAL, "unknown top-level field \"%.64s\"", key);
			return errf(e, EINVAL, "unknown field \"%.64s\" in %s", key, where);
		}
		if (json_is_null(v)) {
			if (!f->required)
				continue; /* Option<T>: null is "absent" */
			char path[CFG_WHERE_MAX];
			return errf(e, EINVAL, "%s must not be null", cfg_where(path, where, key));
		}
		if ((ret = parse_value(f, v, where, base, e)) < 0)
			return ret;
	}
	for (size_t i = 0; i < n; i++) {
		if (tab[i].required && !json_object_get(obj, tab[i].name)) {
			if (!where[0])
				return errf(e, EINVAL, "missing required field \"%s\"",
				            tab[i].name);
			return errf(e, EINVAL, "%s: missing required field \"%s\"", where,
			            tab[i].name);
		}
	}
	return 0;
}

int cfg_list_parse(json_t *v, const char *where, unsigned max, unsigned *nr, cfg_item_fn item,
                   void *ctx, struct errbuf *e)
{
	char loc[CFG_WHERE_MAX];
	json_t *o;
	size_t i;
	int ret;

	if (!json_is_array(v))
		return errf(e, EINVAL, "%s must be an array", where);
	if (json_array_size(v) > max)
		return errf(e, EINVAL, "%s has %zu entries, at most %u are allowed", where,
		            json_array_size(v), max);
	json_array_foreach(v, i, o)
	{
		snprintf(loc, sizeof(loc), "%s[%zu]", where, i);
		*nr = (unsigned)i + 1;
		if ((ret = item(o, (unsigned)i, loc, ctx, e)) < 0)
			return ret;
	}
	return 0;
}
