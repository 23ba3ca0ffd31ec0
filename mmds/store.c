// SPDX-License-Identifier: Apache-2.0
/*
 * mmds/store.c: the MMDS data store -- one JSON document behind a lock,
 * replaced by PUT, merged by PATCH (RFC 7396), bounded by the size of its
 * compact text, and read by the guest through a JSON pointer in JSON or
 * EC2 IMDS plain-text form, with the rules of Firecracker's
 * src/vmm/src/mmds/data_store.rs and mmds/mod.rs.
 */
#include "mmds/mmds_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* serde_json writes compact text; object keys in byte order (a BTreeMap) */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS)

int mmds_init(struct mmds *m, size_t limit)
{
	memset(m, 0, sizeof(*m));
	m->limit = limit ? limit : MMDS_DEFAULT_SIZE_LIMIT;
	return -pthread_mutex_init(&m->lock, NULL);
}

void mmds_destroy(struct mmds *m)
{
	json_decref(m->data);
	m->data = NULL;
	pthread_mutex_destroy(&m->lock);
}

bool mmds_initialized(struct mmds *m)
{
	pthread_mutex_lock(&m->lock);
	bool set = m->data != NULL;
	pthread_mutex_unlock(&m->lock);
	return set;
}

size_t mmds_json_size(const json_t *v)
{
	return json_dumpb(v, NULL, 0, DUMP_FLAGS);
}

/* Firecracker's MmdsDatastoreError::DataStoreLimitExceeded; the API answers 413 */
static int too_big(struct errbuf *e)
{
	return errf(e, EFBIG, "The MMDS patch request doesn't fit.");
}

int mmds_put(struct mmds *m, json_t *data, struct errbuf *e)
{
	json_t *copy = json_deep_copy(data);
	int ret = 0;

	if (!copy)
		return errf(e, ENOMEM, "out of memory");
	pthread_mutex_lock(&m->lock);
	if (mmds_json_size(copy) > m->limit) {
		ret = too_big(e);
	} else {
		json_decref(m->data);
		m->data = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	json_decref(copy);
	return ret;
}

int mmds_merge_patch(json_t **target, json_t *patch)
{
	const char *key;
	json_t *val;

	if (!json_is_object(patch)) {
		json_t *c = json_deep_copy(patch);
		if (!c)
			return -ENOMEM;
		json_decref(*target);
		*target = c;
		return 0;
	}
	if (!json_is_object(*target)) {
		json_decref(*target);
		if (!(*target = json_object()))
			return -ENOMEM;
	}
	json_object_foreach(patch, key, val)
	{
		if (json_is_null(val)) {
			json_object_del(*target, key);
			continue;
		}
		json_t *child = json_incref(json_object_get(*target, key)); /* NULL: new key */
		int ret = mmds_merge_patch(&child, val);
		if (ret == 0 && json_object_set_new(*target, key, child) < 0)
			return -ENOMEM; /* set_new dropped child */
		if (ret < 0) {
			json_decref(child);
			return ret;
		}
	}
	return 0;
}

int mmds_patch(struct mmds *m, json_t *patch, struct errbuf *e)
{
	json_t *work = NULL;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	if (!m->data) {
		ret = errf(e, ENODATA, "The MMDS data store is not initialized.");
		goto out;
	}
	/* patched on a copy: a refusal leaves the document as it was */
	if (!(work = json_deep_copy(m->data)) || mmds_merge_patch(&work, patch) < 0) {
		ret = errf(e, ENOMEM, "out of memory");
		goto out;
	}
	if (mmds_json_size(work) > m->limit) {
		ret = too_big(e);
		goto out;
	}
	json_decref(m->data);
	m->data = work;
	work = NULL;
out:
	pthread_mutex_unlock(&m->lock);
	json_decref(work);
	return ret;
}

json_t *mmds_get(struct mmds *m)
{
	pthread_mutex_lock(&m->lock);
	/* Firecracker answers {} for a store never PUT (its Value::Null) */
	json_t *copy = m->data ? json_deep_copy(m->data) : json_object();
	pthread_mutex_unlock(&m->lock);
	return copy;
}

void mmds_set_limit(struct mmds *m, size_t limit)
{
	pthread_mutex_lock(&m->lock);
	m->limit = limit ? limit : MMDS_DEFAULT_SIZE_LIMIT;
	pthread_mutex_unlock(&m->lock);
}

void mmds_configure(struct mmds *m, enum mmds_version v, bool imds_compat)
{
	pthread_mutex_lock(&m->lock);
	m->version = v;
	m->imds_compat = imds_compat;
	pthread_mutex_unlock(&m->lock);
}

enum mmds_version mmds_version(struct mmds *m)
{
	pthread_mutex_lock(&m->lock);
	enum mmds_version v = m->version;
	pthread_mutex_unlock(&m->lock);
	return v;
}

bool mmds_imds_compat(struct mmds *m)
{
	pthread_mutex_lock(&m->lock);
	bool c = m->imds_compat;
	pthread_mutex_unlock(&m->lock);
	return c;
}

bool mmds_ipv4_valid(uint32_t ip)
{
	uint8_t third = (uint8_t)(ip >> 8);
	return (ip >> 16) == 0xa9fe && third != 0 && third != 255;
}

/* ------------------------------------------------------------ lookups */

/* an array index as serde_json's pointer takes it: digits, no leading zero, no sign */
static bool parse_index(const char *s, size_t n, size_t *out)
{
	size_t v = 0;

	if (n == 0 || (s[0] == '0' && n > 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (SIZE_MAX - 9) / 10)
			return false;
		v = v * 10 + (size_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * One reference token, unescaped into tok (as serde_json: every "~1" to
 * '/', then every "~0" to '~'). Returns its length.
 */
static size_t unescape(const char *s, size_t n, char *tok)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '~' && i + 1 < n && s[i + 1] == '1') {
			tok[k++] = '/';
			i++;
		} else {
			tok[k++] = s[i];
		}
	}
	size_t out = 0;
	for (size_t i = 0; i < k; i++) {
		if (tok[i] == '~' && i + 1 < k && tok[i + 1] == '0') {
			tok[out++] = '~';
			i++;
		} else {
			tok[out++] = tok[i];
		}
	}
	return out;
}

/* one step down from `cur` by the token s[0..n) (escaped), or NULL */
static json_t *step(json_t *cur, const char *s, size_t n, char *tok)
{
	size_t idx, tn = unescape(s, n, tok);

	if (json_is_object(cur))
		return json_object_getn(cur, tok, tn);
	if (json_is_array(cur) && parse_index(tok, tn, &idx))
		return json_array_get(cur, idx);
	return NULL;
}

json_t *mmds_pointer(json_t *root, const char *path, size_t len)
{
	json_t *cur = root;
	char *clean, *tok;
	size_t n = 0;

	if (!(clean = malloc(2 * len + 1)))
		return NULL;
	tok = clean + len;
	/* Firecracker's sanitize_uri(): a run of '/' is one; then one trailing '/' goes */
	for (size_t i = 0; i < len; i++)
		if (path[i] != '/' || n == 0 || clean[n - 1] != '/')
			clean[n++] = path[i];
	if (n && clean[n - 1] == '/')
		n--;
	/* a JSON pointer: "" is the root, anything else starts with '/' */
	if (n && clean[0] != '/')
		cur = NULL;
	for (size_t i = 0; cur && i < n;) {
		size_t start = ++i; /* past the '/' */
		while (i < n && clean[i] != '/')
			i++;
		cur = step(cur, clean + start, i - start, tok);
	}
	free(clean);
	return cur;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* IMDS text: an object's keys in byte order (sub-objects with '/'), a string as is */
static int format_imds(json_t *v, char **out, size_t *out_len)
{
	if (json_is_string(v)) {
		*out_len = json_string_length(v);
		if (!(*out = malloc(*out_len + 1)))
			return -ENOMEM;
		memcpy(*out, json_string_value(v), *out_len + 1);
		return 0;
	}
	if (!json_is_object(v))
		return -ENOTSUP;

	size_t n = json_object_size(v), i = 0, total = 0;
	const char **keys = calloc(n ? n : 1, sizeof(*keys));
	const char *key;
	json_t *val;
	if (!keys)
		return -ENOMEM;
	json_object_foreach(v, key, val)
	{
		keys[i++] = key;
		total += strlen(key) + 2; /* '/' and '\n' at most */
	}
	qsort(keys, n, sizeof(*keys), cmp_str);
	char *s = malloc(total + 1), *p = s;
	if (s) {
		for (i = 0; i < n; i++) {
			size_t kl = strlen(keys[i]);
			if (i)
				*p++ = '\n';
			memcpy(p, keys[i], kl);
			p += kl;
			if (json_is_object(json_object_get(v, keys[i])))
				*p++ = '/';
		}
		*p = '\0';
		*out = s;
		*out_len = (size_t)(p - s);
	}
	free(keys);
	return s ? 0 : -ENOMEM;
}

int mmds_lookup(struct mmds *m, const char *path, size_t len, enum mmds_format fmt, char **out,
                size_t *out_len)
{
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	/* before the first PUT the document is null: "/" finds it, nothing below */
	json_t *null = json_null(), *root = m->data ? m->data : null;
	json_t *v = mmds_pointer(root, path, len);
	if (!v)
		ret = -ENOENT;
	else if (fmt == MMDS_FMT_IMDS || m->imds_compat)
		ret = format_imds(v, out, out_len);
	else if (!(*out = json_dumps(v, DUMP_FLAGS)))
		ret = -ENOMEM;
	else
		*out_len = strlen(*out);
	pthread_mutex_unlock(&m->lock);
	return ret;
}
