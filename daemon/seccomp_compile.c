// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/seccomp_compile.c: one thread kind's filter (struct
 * seccomp_filter) into BPF with libseccomp (2.5).
 *
 * A dword comparison looks at the argument's low 32 bits only, as the
 * kernel does for an int argument (glibc passes a negative int such as
 * AT_FDCWD sign-extended to 64 bits). libseccomp compares all 64 bits on
 * x86-64, and its SCMP_CMP32 only truncates the value compared with, so a
 * dword comparison is written here as masked equalities on the low half:
 * eq and masked_eq are one each; ne, lt, le, gt and ge are an OR of them,
 * one per bit that can decide the comparison (x < v when, at some bit
 * where v has a 1 and x a 0, x agrees with v on every bit above it), and
 * each alternative becomes a libseccomp rule of its own.
 */
#define LOG_MODULE "seccomp"
#include "seccomp_filters.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LOW32        0xffffffffull
#define ALTS_MAX     32   /* a dword ne: one alternative per bit */
#define EXPANDED_MAX 1024 /* libseccomp rules one rule may become */
#define ALWAYS       (-1) /* a comparison every value passes */

static const enum scmp_compare scmp_ops[] = {
        [SECCOMP_OP_EQ] = SCMP_CMP_EQ, [SECCOMP_OP_NE] = SCMP_CMP_NE, [SECCOMP_OP_LT] = SCMP_CMP_LT,
        [SECCOMP_OP_LE] = SCMP_CMP_LE, [SECCOMP_OP_GT] = SCMP_CMP_GT, [SECCOMP_OP_GE] = SCMP_CMP_GE,
};

/*
 * low 32 bits of argument `i` less than v (`less`) or greater than v:
 * at some bit where v has a 1 (a 0), x has a 0 (a 1) and agrees with v
 * above it. The number of alternatives written to out.
 */
static int dword_order(unsigned i, uint32_t v, bool less, struct scmp_arg_cmp *out)
{
	int n = 0;
	for (int b = 31; b >= 0; b--) {
		uint32_t bit = 1u << b, above = ~((bit << 1) - 1); /* 0 above bit 31 */
		if (((v & bit) != 0) != less)
			continue;
		out[n++] = SCMP_CMP64(i, SCMP_CMP_MASKED_EQ, above | bit,
		                      (v & above) | (less ? 0 : bit));
	}
	return n;
}

/* the alternatives (ORed) of one comparison: how many (0: never true), or ALWAYS */
static int alternatives(const struct seccomp_cond *c, uint64_t val, struct scmp_arg_cmp *out)
{
	unsigned i = c->index;
	uint32_t v = (uint32_t)val;

	if (c->qword) {
		out[0] = c->op == SECCOMP_OP_MASKED_EQ
		                 ? SCMP_CMP64(i, SCMP_CMP_MASKED_EQ, c->mask, val)
		                 : SCMP_CMP64(i, scmp_ops[c->op], val);
		return 1;
	}
	switch (c->op) {
	case SECCOMP_OP_EQ:
		out[0] = SCMP_CMP64(i, SCMP_CMP_MASKED_EQ, LOW32, v);
		return 1;
	case SECCOMP_OP_MASKED_EQ:
		out[0] = SCMP_CMP64(i, SCMP_CMP_MASKED_EQ, c->mask & LOW32, v);
		return 1;
	case SECCOMP_OP_NE: /* some bit differs */
		for (int b = 0; b < 32; b++)
			out[b] = SCMP_CMP64(i, SCMP_CMP_MASKED_EQ, 1ull << b, ~v & (1u << b));
		return 32;
	case SECCOMP_OP_LT:
		return dword_order(i, v, true, out);
	case SECCOMP_OP_LE:
		return v == UINT32_MAX ? ALWAYS : dword_order(i, v + 1, true, out);
	case SECCOMP_OP_GT:
		return dword_order(i, v, false, out);
	case SECCOMP_OP_GE:
		return v == 0 ? ALWAYS : dword_order(i, v - 1, false, out);
	}
	return 0;
}

/* one rule as libseccomp rules: the product of its comparisons' alternatives */
static int add_rule(scmp_filter_ctx ctx, const struct seccomp_rule *r, int nr, uint32_t action,
                    uint32_t pid, const char *where, struct errbuf *e)
{
	struct scmp_arg_cmp alts[SECCOMP_ARGS][ALTS_MAX], cmp[SECCOMP_ARGS];
	size_t count[SECCOMP_ARGS], total = 1;
	unsigned n = 0, seen = 0;

	for (unsigned i = 0; i < r->nr_args; i++) {
		const struct seccomp_cond *c = &r->args[i];
		if (seen & (1u << c->index))
			return errf(e, EINVAL,
			            "%s.args[%u]: argument %u is compared twice in one rule "
			            "(libseccomp compares each argument once a rule)",
			            where, i, c->index);
		seen |= 1u << c->index;
		int k = alternatives(c, c->self_pid ? pid : c->val, alts[n]);
		if (k == 0) {
			log_debug("%s (%s) matches no call; it is left out", where, r->syscall);
			return 0;
		}
		if (k == ALWAYS)
			continue;
		count[n++] = (size_t)k;
		if ((total *= (size_t)k) > EXPANDED_MAX)
			return errf(
			        e, EINVAL,
			        "%s: its dword comparisons make more than %d libseccomp rules; "
			        "compare fewer arguments with ne, lt, le, gt or ge, or use qword",
			        where, EXPANDED_MAX);
	}
	for (size_t t = 0; t < total; t++) {
		size_t rest = t;
		for (unsigned i = 0; i < n; i++) {
			cmp[i] = alts[i][rest % count[i]];
			rest /= count[i];
		}
		int ret = seccomp_rule_add_exact_array(ctx, action, nr, n, cmp);
		if (ret < 0)
			return errf(e, -ret, "%s (%s): libseccomp refuses it: %s", where,
			            r->syscall, strerror(-ret));
	}
	return 0;
}

/* every rule's action, and one action per system call in a filter */
static int check_actions(const struct seccomp_filter *f, const int *nrs, const char *kind,
                         struct errbuf *e)
{
	for (size_t i = 0; i < f->nr_rules; i++) {
		const struct seccomp_rule *r = &f->rules[i];
		uint32_t a = r->has_action ? r->action : f->match_action;
		if (a == f->mismatch_action)
			return errf(
			        e, EINVAL,
			        "%s.filter[%zu] (%s): its action, %s, is the mismatch_action, so "
			        "the rule would change nothing",
			        kind, i, r->syscall, seccomp_action_name(a));
		for (size_t j = 0; j < i; j++) {
			const struct seccomp_rule *q = &f->rules[j];
			if (nrs[j] == nrs[i] && (q->has_action ? q->action : f->match_action) != a)
				return errf(
				        e, EINVAL,
				        "%s.filter[%zu] (%s): its action differs from that of "
				        "%s.filter[%zu]; the rules of one system call share one "
				        "action",
				        kind, i, r->syscall, kind, j);
		}
	}
	return 0;
}

/* libseccomp writes BPF to a descriptor: through a memfd into a malloc'd array */
static int export_bpf(scmp_filter_ctx ctx, const char *kind, struct sock_fprog *out,
                      struct errbuf *e)
{
	int ret, fd = memfd_create("kiln-seccomp", MFD_CLOEXEC);

	if (fd < 0)
		return errf(e, errno, "memfd_create: %s", strerror(errno));
	if ((ret = seccomp_export_bpf(ctx, fd)) < 0) {
		errf(e, -ret, "cannot compile the %s filter: %s", kind, strerror(-ret));
		goto out;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	off_t len = size / (off_t)sizeof(struct sock_filter);
	if (len > BPF_MAXINSNS) {
		ret = errf(e, E2BIG,
		           "the %s filter compiles to %lld BPF instructions; the kernel takes %d",
		           kind, (long long)len, BPF_MAXINSNS);
		goto out;
	}
	struct sock_filter *f = size > 0 ? malloc((size_t)size) : NULL;
	if (!f || size % (off_t)sizeof(*f) || pread(fd, f, (size_t)size, 0) != size) {
		free(f);
		ret = errf(e, EIO, "cannot read the %s filter back", kind);
		goto out;
	}
	*out = (struct sock_fprog){.len = (unsigned short)len, .filter = f};
	ret = 0;
out:
	close(fd);
	return ret;
}

int seccomp_compile(const struct seccomp_filter *f, enum thread_kind kind, uint32_t pid,
                    struct sock_fprog *out, struct errbuf *e)
{
	const char *name = thread_kind_name(kind);
	char where[64];
	int ret = -ENOMEM;
	int *nrs = calloc(f->nr_rules + 1, sizeof(*nrs));
	scmp_filter_ctx ctx = seccomp_init(f->mismatch_action);

	if (!nrs || !ctx) {
		errf(e, ENOMEM, "cannot start the %s filter", name);
		goto out;
	}
	/* main sets no_new_privs itself, once for every thread */
	if ((ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0) {
		errf(e, -ret, "cannot set the %s filter up: %s", name, strerror(-ret));
		goto out;
	}
	for (size_t i = 0; i < f->nr_rules; i++)
		if ((nrs[i] = seccomp_syscall_resolve_name(f->rules[i].syscall)) < 0) {
			ret = errf(e, EINVAL, "%s.filter[%zu]: no system call %s on this machine",
			           name, i, f->rules[i].syscall);
			goto out;
		}
	if ((ret = check_actions(f, nrs, name, e)) < 0)
		goto out;
	for (size_t i = 0; i < f->nr_rules; i++) {
		const struct seccomp_rule *r = &f->rules[i];
		snprintf(where, sizeof(where), "%s.filter[%zu]", name, i);
		ret = add_rule(ctx, r, nrs[i], r->has_action ? r->action : f->match_action, pid,
		               where, e);
		if (ret < 0)
			goto out;
	}
	if ((ret = export_bpf(ctx, name, out, e)) == 0)
		log_debug("%s filter: %zu rules, %u instructions", name, f->nr_rules, out->len);
out:
	seccomp_release(ctx);
	free(nrs);
	return ret;
}
