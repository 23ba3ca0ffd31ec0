// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/seccomp_json.c: a filter set in its file form (docs/seccomp.md),
 * read and written. The form is Firecracker's seccompiler JSON with
 * kiln's thread kinds, plus two extensions of kiln's: a rule's own
 * "action", and "val": "self-pid". Reading is strict: an unknown key,
 * thread kind or system call, a missing kind and a value out of range are
 * refused with the JSON path of what is wrong.
 */
#define LOG_MODULE "seccomp"
#include "seccomp_filters.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define WHERE_MAX 96
#define RULES_MAX 4096 /* a rule is one BPF instruction at least; the kernel takes 4096 */
#define ERRNO_MAX 4095 /* the kernel's MAX_ERRNO */
#define SELF_PID  "self-pid"

int seccomp_filter_add(struct seccomp_filter *f, const struct seccomp_rule *r)
{
	if (f->nr_rules == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct seccomp_rule *n = realloc(f->rules, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		f->rules = n;
		f->cap = cap;
	}
	f->rules[f->nr_rules++] = *r;
	return 0;
}

void seccomp_set_free(struct seccomp_set *set)
{
	for (int i = 0; i < THREAD_KINDS; i++) {
		free(set->kinds[i].rules);
		set->kinds[i] = (struct seccomp_filter){0};
	}
	json_decref(set->doc);
	set->doc = NULL;
}

/* the actions named by a string; {"errno": N} is the other one */
static const struct {
	const char *name;
	uint32_t action;
} actions[] = {
        {"allow", SCMP_ACT_ALLOW},
        {"trap", SCMP_ACT_TRAP},
        {"log", SCMP_ACT_LOG},
        {"kill_thread", SCMP_ACT_KILL_THREAD},
        {"kill_process", SCMP_ACT_KILL_PROCESS},
};

#define ACTIONS "\"allow\", \"trap\", \"log\", \"kill_thread\", \"kill_process\" or {\"errno\": N}"

static bool is_errno(uint32_t action)
{
	return (action & 0xffff0000u) == SCMP_ACT_ERRNO(0);
}

const char *seccomp_action_name(uint32_t action)
{
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
		if (actions[i].action == action)
			return actions[i].name;
	return is_errno(action) ? "errno" : "?";
}

static const char *const op_names[] = {
        [SECCOMP_OP_EQ] = "eq", [SECCOMP_OP_NE] = "ne", [SECCOMP_OP_LT] = "lt",
        [SECCOMP_OP_LE] = "le", [SECCOMP_OP_GT] = "gt", [SECCOMP_OP_GE] = "ge",
};

/*
 * "<where>.<name>" or "<where>[i]" into buf[WHERE_MAX]: the deepest path,
 * "migration.filter[4095].args[5].op.masked_eq", has room to spare
 */
static const char *at(char *buf, const char *where, const char *name)
{
	if (snprintf(buf, WHERE_MAX, "%s.%s", where, name) >= WHERE_MAX)
		buf[WHERE_MAX - 2] = '+';
	return buf;
}

static const char *at_index(char *buf, const char *where, size_t i)
{
	if (snprintf(buf, WHERE_MAX, "%s[%zu]", where, i) >= WHERE_MAX)
		buf[WHERE_MAX - 2] = '+';
	return buf;
}

/*
 * `obj` is an object whose keys are all in `keys` (NULL-terminated), the
 * first `nr_required` of them there; `what` says what the object is.
 */
static int check_object(json_t *obj, const char *where, const char *what, const char *const *keys,
                        size_t nr_required, struct errbuf *e)
{
	char unknown[160] = "";
	size_t n = 0, len = 0;
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return errf(e, EINVAL, "%s must be an object (%s)", where, what);
	json_object_foreach(obj, key, v)
	{
		size_t i = 0;
		while (keys[i] && strcmp(keys[i], key) != 0)
			i++;
		if (!keys[i] && len < sizeof(unknown))
			len += (size_t)snprintf(unknown + len, sizeof(unknown) - len, "%s\"%.40s\"",
			                        n++ ? ", " : "", key);
	}
	if (n)
		return errf(e, EINVAL, "%s: unknown key%s %s (%s)", where, n > 1 ? "s" : "",
		            unknown, what);
	for (size_t i = 0; i < nr_required; i++)
		if (!json_object_get(obj, keys[i]))
			return errf(e, EINVAL, "%s: no \"%s\" (%s)", where, keys[i], what);
	return 0;
}

/* an optional "comment": a string */
static int parse_comment(json_t *obj, const char *where, const char **out, struct errbuf *e)
{
	char w[WHERE_MAX];
	json_t *c = json_object_get(obj, "comment");

	if (c && !json_is_string(c))
		return errf(e, EINVAL, "%s must be a string", at(w, where, "comment"));
	*out = c ? json_string_value(c) : NULL;
	return 0;
}

static int parse_action(json_t *v, const char *where, uint32_t *out, struct errbuf *e)
{
	if (json_is_string(v)) {
		for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
			if (strcmp(json_string_value(v), actions[i].name) == 0) {
				*out = actions[i].action;
				return 0;
			}
		return errf(e, EINVAL, "%s: unknown action \"%.40s\" (" ACTIONS ")", where,
		            json_string_value(v));
	}
	json_t *n = json_object_get(v, "errno");
	if (json_is_object(v) && json_object_size(v) == 1 && n) {
		json_int_t x = json_integer_value(n);
		if (!json_is_integer(n) || x < 0 || x > ERRNO_MAX)
			return errf(e, EINVAL, "%s.errno must be an integer from 0 to %d", where,
			            ERRNO_MAX);
		*out = SCMP_ACT_ERRNO((uint32_t)x);
		return 0;
	}
	if (json_is_object(v) && json_object_get(v, "trace"))
		return errf(e, EINVAL, "%s: kiln has no \"trace\" action (no tracer watches kiln)",
		            where);
	return errf(e, EINVAL, "%s must be an action: " ACTIONS, where);
}

/*
 * A value or mask of a comparison: an integer within the width, a negative
 * one standing for its two's complement (-100 as a dword is 0xffffff9c).
 */
static int parse_num(json_t *v, bool qword, const char *where, uint64_t *out, struct errbuf *e)
{
	json_int_t x = json_integer_value(v);

	if (!json_is_integer(v) || (!qword && (x < INT32_MIN || x > (json_int_t)UINT32_MAX)))
		return errf(e, EINVAL, "%s must be an integer%s", where,
		            qword ? "" : " from -2147483648 to 4294967295 (a dword)");
	*out = qword ? (uint64_t)x : (uint32_t)x;
	return 0;
}

static int parse_op(json_t *v, bool qword, const char *where, struct seccomp_cond *c,
                    struct errbuf *e)
{
	char w[WHERE_MAX];
	json_t *mask = json_object_get(v, "masked_eq");

	if (json_is_object(v) && json_object_size(v) == 1 && mask) {
		c->op = SECCOMP_OP_MASKED_EQ;
		return parse_num(mask, qword, at(w, where, "masked_eq"), &c->mask, e);
	}
	for (size_t i = 0; json_is_string(v) && i < ARRAY_SIZE(op_names); i++)
		if (strcmp(json_string_value(v), op_names[i]) == 0) {
			c->op = (enum seccomp_op)i;
			return 0;
		}
	if (json_is_string(v))
		return errf(e, EINVAL,
		            "%s: unknown op \"%.40s\" (eq, ne, lt, le, gt, ge or {\"masked_eq\": "
		            "MASK})",
		            where, json_string_value(v));
	return errf(e, EINVAL,
	            "%s must be \"eq\", \"ne\", \"lt\", \"le\", \"gt\", \"ge\" or "
	            "{\"masked_eq\": MASK}",
	            where);
}

static const char *const cond_keys[] = {"index", "type", "op", "val", "comment", NULL};

static int parse_cond(json_t *j, const char *where, struct seccomp_cond *c, struct errbuf *e)
{
	char w[WHERE_MAX];
	int ret = check_object(j, where, "a comparison takes index, type, op, val and comment",
	                       cond_keys, 4, e);
	if (ret < 0)
		return ret;
	json_t *index = json_object_get(j, "index"), *type = json_object_get(j, "type");
	json_t *val = json_object_get(j, "val");
	json_int_t i = json_integer_value(index);
	if (!json_is_integer(index) || i < 0 || i >= SECCOMP_ARGS)
		return errf(e, EINVAL, "%s must be an argument's index, 0 to 5",
		            at(w, where, "index"));
	c->index = (unsigned)i;
	const char *t = json_is_string(type) ? json_string_value(type) : "";
	if (strcmp(t, "dword") != 0 && strcmp(t, "qword") != 0)
		return errf(e, EINVAL,
		            "%s must be \"dword\" (the low 32 bits) or \"qword\" (all 64)",
		            at(w, where, "type"));
	c->qword = t[0] == 'q';
	if ((ret = parse_op(json_object_get(j, "op"), c->qword, at(w, where, "op"), c, e)) < 0)
		return ret;
	if (json_is_string(val) && strcmp(json_string_value(val), SELF_PID) == 0)
		c->self_pid = true;
	else if (json_is_string(val))
		return errf(e, EINVAL, "%s must be an integer or \"" SELF_PID "\"",
		            at(w, where, "val"));
	else if ((ret = parse_num(val, c->qword, at(w, where, "val"), &c->val, e)) < 0)
		return ret;
	return parse_comment(j, where, &c->comment, e);
}

/*
 * `v`, at `where`, is an array of at most `max` items (`what`), each handed
 * to item(value, "<where>[i]", i, ctx, e) in order
 */
typedef int (*item_fn)(json_t *v, const char *where, size_t i, void *ctx, struct errbuf *e);

static int parse_items(json_t *v, const char *where, size_t max, const char *what, item_fn item,
                       void *ctx, struct errbuf *e)
{
	char w[WHERE_MAX];

	if (!json_is_array(v) || json_array_size(v) > max)
		return errf(e, EINVAL, "%s must be an array of at most %zu %s", where, max, what);
	for (size_t i = 0; i < json_array_size(v); i++) {
		int ret = item(json_array_get(v, i), at_index(w, where, i), i, ctx, e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int cond_item(json_t *v, const char *where, size_t i, void *rule, struct errbuf *e)
{
	struct seccomp_rule *r = rule;
	r->nr_args = (unsigned)i + 1;
	return parse_cond(v, where, &r->args[i], e);
}

static const char *const rule_keys[] = {"syscall", "args", "action", "comment", NULL};

static int rule_item(json_t *j, const char *where, size_t i, void *filter, struct errbuf *e)
{
	char w[WHERE_MAX];
	struct seccomp_rule r = {0};
	int ret = check_object(j, where, "a rule takes syscall, args, action and comment",
	                       rule_keys, 1, e);
	(void)i;
	if (ret < 0)
		return ret;
	json_t *call = json_object_get(j, "syscall"), *args = json_object_get(j, "args");
	json_t *action = json_object_get(j, "action");
	if (!json_is_string(call))
		return errf(e, EINVAL, "%s must be a system call's name", at(w, where, "syscall"));
	r.syscall = json_string_value(call);
	if (seccomp_syscall_resolve_name(r.syscall) < 0)
		return errf(e, EINVAL, "%s: no system call \"%.40s\" on this machine",
		            at(w, where, "syscall"), r.syscall);
	if (args && (ret = parse_items(args, at(w, where, "args"), SECCOMP_ARGS, "comparisons",
	                               cond_item, &r, e)) < 0)
		return ret;
	if (action && (ret = parse_action(action, at(w, where, "action"), &r.action, e)) < 0)
		return ret;
	r.has_action = action != NULL;
	if ((ret = parse_comment(j, where, &r.comment, e)) < 0)
		return ret;
	if (seccomp_filter_add(filter, &r) < 0)
		return errf(e, ENOMEM, "out of memory at %s", where);
	return 0;
}

static const char *const filter_keys[] = {"mismatch_action", "match_action", "filter", NULL};

static int parse_filter(json_t *j, const char *kind, struct seccomp_filter *f, struct errbuf *e)
{
	char w[WHERE_MAX];
	int ret = check_object(j, kind, "a filter takes mismatch_action, match_action and filter",
	                       filter_keys, 3, e);
	if (ret < 0 ||
	    (ret = parse_action(json_object_get(j, "mismatch_action"),
	                        at(w, kind, "mismatch_action"), &f->mismatch_action, e)) < 0 ||
	    (ret = parse_action(json_object_get(j, "match_action"), at(w, kind, "match_action"),
	                        &f->match_action, e)) < 0)
		return ret;
	return parse_items(json_object_get(j, "filter"), at(w, kind, "filter"), RULES_MAX, "rules",
	                   rule_item, f, e);
}

/* which kinds the file names, refusing names that are not kinds */
static int check_kinds(json_t *doc, struct errbuf *e)
{
	char list[160] = "";
	size_t n = 0, len = 0;
	const char *key;
	json_t *v;

	json_object_foreach(doc, key, v)
	{
		int k = 0;
		while (k < THREAD_KINDS && strcmp(key, thread_kind_name((enum thread_kind)k)) != 0)
			k++;
		if (k == THREAD_KINDS && len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s\"%.40s\"",
			                        n++ ? ", " : "", key);
	}
	if (n)
		return errf(
		        e, EINVAL,
		        "unknown thread kind%s %s (kiln's are vmm, api, vcpu, io and migration)",
		        n > 1 ? "s" : "", list);
	for (int k = 0; k < THREAD_KINDS; k++) {
		const char *name = thread_kind_name((enum thread_kind)k);
		if (!json_object_get(doc, name) && len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
			                        n++ ? ", " : "", name);
	}
	if (n)
		return errf(e, EINVAL,
		            "no filter for %s (a file has one for each of vmm, api, vcpu, io and "
		            "migration)",
		            list);
	return 0;
}

int seccomp_set_parse(const char *text, size_t len, struct seccomp_set *set, struct errbuf *e)
{
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!doc)
		return errf(e, EINVAL, "not JSON: line %d, column %d: %s", jerr.line, jerr.column,
		            jerr.text);
	set->doc = doc;
	if (!json_is_object(doc))
		return errf(e, EINVAL,
		            "the file must be an object mapping thread kinds (vmm, api, "
		            "vcpu, io, migration) to filters");
	int ret = check_kinds(doc, e);
	for (int k = 0; k < THREAD_KINDS && ret == 0; k++) {
		const char *name = thread_kind_name((enum thread_kind)k);
		ret = parse_filter(json_object_get(doc, name), name, &set->kinds[k], e);
	}
	return ret;
}

/* ------------------------------------------------------------- printing */

static json_t *action_json(uint32_t a)
{
	if (is_errno(a))
		return json_pack("{s:I}", "errno", (json_int_t)(a & 0xffff));
	return json_string(seccomp_action_name(a));
}

/* a value as the file writes it: what parse_num() reads back to the same bits */
static json_t *num_json(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *cond_json(const struct seccomp_cond *c)
{
	json_t *op = c->op == SECCOMP_OP_MASKED_EQ
	                     ? json_pack("{s:o}", "masked_eq", num_json(c->mask))
	                     : json_string(op_names[c->op]);
	return json_pack("{s:i, s:s, s:o, s:o, s:s*}", "index", (int)c->index, "type",
	                 c->qword ? "qword" : "dword", "op", op, "val",
	                 c->self_pid ? json_string(SELF_PID) : num_json(c->val), "comment",
	                 c->comment);
}

static json_t *rule_json(const struct seccomp_rule *r)
{
	json_t *j = json_pack("{s:s}", "syscall", r->syscall);
	int bad = !j;

	/* the *_new calls take the value even when they fail */
	if (!bad && r->nr_args) {
		json_t *args = json_array();
		for (unsigned i = 0; args && i < r->nr_args; i++)
			if (json_array_append_new(args, cond_json(&r->args[i])) < 0) {
				json_decref(args);
				args = NULL;
			}
		bad = json_object_set_new(j, "args", args);
	}
	if (!bad && r->has_action)
		bad = json_object_set_new(j, "action", action_json(r->action));
	if (!bad && r->comment)
		bad = json_object_set_new(j, "comment", json_string(r->comment));
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* prints `j` (stolen) with `flags`; 0 / -ENOMEM */
static int put_json(FILE *out, json_t *j, size_t flags)
{
	char *s = j ? json_dumps(j, flags | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	if (!s)
		return -ENOMEM;
	fputs(s, out);
	free(s);
	return 0;
}

static int print_filter(const struct seccomp_filter *f, const char *kind, FILE *out)
{
	fprintf(out, "  \"%s\": {\n    \"mismatch_action\": ", kind);
	if (put_json(out, action_json(f->mismatch_action), 0) < 0)
		return -ENOMEM;
	fputs(",\n    \"match_action\": ", out);
	if (put_json(out, action_json(f->match_action), 0) < 0)
		return -ENOMEM;
	fputs(",\n    \"filter\": [", out);
	for (size_t i = 0; i < f->nr_rules; i++) {
		fputs(i ? ",\n      " : "\n      ", out);
		if (put_json(out, rule_json(&f->rules[i]), 0) < 0)
			return -ENOMEM;
	}
	fputs(f->nr_rules ? "\n    ]\n  }" : "]\n  }", out);
	return 0;
}

int seccomp_set_print(const struct seccomp_set *set, FILE *out, struct errbuf *e)
{
	fputs("{\n", out);
	for (int k = 0; k < THREAD_KINDS; k++) {
		if (print_filter(&set->kinds[k], thread_kind_name((enum thread_kind)k), out) < 0)
			return errf(e, ENOMEM, "out of memory printing the filters");
		fputs(k + 1 < THREAD_KINDS ? ",\n" : "\n}\n", out);
	}
	if (fflush(out) != 0 || ferror(out))
		return errf(e, EIO, "cannot write the filters: %s", strerror(errno));
	return 0;
}
