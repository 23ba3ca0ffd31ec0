// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for kiln's seccomp filter sets (daemon/seccomp_filters.h):
 * the defaults printed and read back compile to the same BPF; a file's
 * mistakes are refused naming their JSON path; and what a compiled
 * comparison lets through, checked by loading it in a child and making
 * the call (lseek on a closed descriptor: EBADF when let through, the
 * filter's errno 99 when not) with arguments whose high half is garbage.
 */
#include "daemon/seccomp_filters.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define REFUSED 99 /* the test filters' mismatch_action: errno 99 */

/* the printed text of a set */
static char *print_set(const struct seccomp_set *set)
{
	char *text = NULL;
	size_t len = 0;
	struct errbuf e = {{0}};
	FILE *f = open_memstream(&text, &len);
	cr_assert_not_null(f);
	cr_assert_eq(seccomp_set_print(set, f, &e), 0, "%s", e.msg);
	fclose(f);
	return text;
}

Test(seccomp_file, defaults_read_back_compile_to_the_same_bpf)
{
	struct seccomp_set def = {0}, back = {0};
	struct errbuf e = {{0}};
	cr_assert_eq(seccomp_defaults(&def, SECCOMP_TRAP, &e), 0, "%s", e.msg);
	char *text = print_set(&def);
	cr_assert_eq(seccomp_set_parse(text, strlen(text), &back, &e), 0, "%s", e.msg);
	char *again = print_set(&back);
	cr_assert_str_eq(again, text);
	for (int k = 0; k < THREAD_KINDS; k++) {
		struct sock_fprog a, b;
		cr_assert_eq(seccomp_compile(&def.kinds[k], k, 1234, &a, &e), 0, "%s", e.msg);
		cr_assert_eq(seccomp_compile(&back.kinds[k], k, 1234, &b, &e), 0, "%s", e.msg);
		cr_assert_eq(a.len, b.len, "%s", thread_kind_name(k));
		cr_assert_eq(memcmp(a.filter, b.filter, a.len * sizeof(*a.filter)), 0);
		cr_assert_gt(def.kinds[k].nr_rules, 30, "%s", thread_kind_name(k));
		free(a.filter);
		free(b.filter);
	}
	free(text);
	free(again);
	seccomp_set_free(&def);
	seccomp_set_free(&back);
}

Test(seccomp_file, audit_mode_logs_what_it_would_refuse)
{
	struct seccomp_set set = {0};
	struct errbuf e = {{0}};
	cr_assert_eq(seccomp_defaults(&set, SECCOMP_AUDIT, &e), 0);
	char *text = print_set(&set);
	cr_assert(strstr(text, "\"mismatch_action\": \"log\""), "%s", text);
	cr_assert_null(strstr(text, "\"trap\""));
	free(text);
	seccomp_set_free(&set);
}

/* a file with every kind's filter `{"mismatch_action": "trap", ..., "filter": []}` but `kind`'s */
static char *file_with(const char *kind, const char *filter)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	fputs("{", f);
	for (int k = 0; k < THREAD_KINDS; k++) {
		const char *name = thread_kind_name(k);
		fprintf(f, "%s\"%s\": ", k ? ", " : "", name);
		if (strcmp(name, kind) == 0)
			fputs(filter, f);
		else
			fputs("{\"mismatch_action\": \"trap\", \"match_action\": \"allow\", "
			      "\"filter\": [{\"syscall\": \"read\"}]}",
			      f);
	}
	fputs("}", f);
	fclose(f);
	return out;
}

/* parses and compiles `text`: 0, or the error with its message in e */
static int load(const char *text, struct errbuf *e)
{
	struct seccomp_set set = {0};
	int ret = seccomp_set_parse(text, strlen(text), &set, e);
	for (int k = 0; ret == 0 && k < THREAD_KINDS; k++) {
		struct sock_fprog p;
		if ((ret = seccomp_compile(&set.kinds[k], k, 1, &p, e)) == 0)
			free(p.filter);
	}
	seccomp_set_free(&set);
	return ret;
}

#define VCPU(rules)                                                                                \
	"{\"mismatch_action\": \"trap\", \"match_action\": \"allow\", \"filter\": [" rules "]}"
#define READ_IF(cond) "{\"syscall\": \"read\", \"args\": [" cond "]}"

/* self-pid, a negative dword, an errno action, two ORed rules: accepted */
#define GOOD_FILTER                                                                                \
	"{\"mismatch_action\": \"trap\", \"match_action\": \"allow\", \"filter\": ["               \
	"{\"syscall\": \"read\", \"args\": [{\"index\": 0, \"type\": \"dword\", \"op\": \"eq\", "  \
	"\"val\": \"self-pid\"}]}, "                                                               \
	"{\"syscall\": \"read\", \"args\": [{\"index\": 0, \"type\": \"dword\", \"op\": \"eq\", "  \
	"\"val\": -100, \"comment\": \"AT_FDCWD\"}]}, "                                            \
	"{\"syscall\": \"clone3\", \"action\": {\"errno\": 38}}]}"

static const struct {
	const char *filter; /* the vcpu kind's, or NULL: `whole` is the file */
	const char *whole;
	const char *message;
} refusals[] = {
        {NULL, "{\"vmm\": [1,}", "not JSON: line 1, column 12"},
        {NULL, "[]", "must be an object mapping thread kinds"},
        {NULL, "{\"vmm\": {}, \"gpu\": {}, \"net\": {}}", "unknown thread kinds \"gpu\", \"net\""},
        {NULL,
         "{\"vmm\": {\"mismatch_action\": \"trap\", \"match_action\": \"allow\", \"filter\": []}}",
         "no filter for api, vcpu, io, migration"},
        {"[]", NULL, "vcpu must be an object"},
        {"{\"mismatch_action\": \"trap\", \"match_action\": \"allow\", \"filter\": [], \"x\": 1}",
         NULL, "vcpu: unknown key \"x\""},
        {"{\"mismatch_action\": \"trap\", \"filter\": []}", NULL, "vcpu: no \"match_action\""},
        {"{\"mismatch_action\": \"deny\", \"match_action\": \"allow\", \"filter\": []}", NULL,
         "vcpu.mismatch_action: unknown action \"deny\""},
        {"{\"mismatch_action\": {\"errno\": 4096}, \"match_action\": \"allow\", \"filter\": []}",
         NULL, "vcpu.mismatch_action.errno must be an integer from 0 to 4095"},
        {"{\"mismatch_action\": {\"trace\": 1}, \"match_action\": \"allow\", \"filter\": []}", NULL,
         "no \"trace\" action"},
        {"{\"mismatch_action\": \"trap\", \"match_action\": \"allow\", \"filter\": {}}", NULL,
         "vcpu.filter must be an array"},
        {VCPU("{\"syscall\": \"read\"}, {\"syscall\": \"reed\"}"), NULL,
         "vcpu.filter[1].syscall: no system call \"reed\""},
        {VCPU("{\"syscall\": \"read\", \"arg\": []}"), NULL, "vcpu.filter[0]: unknown key \"arg\""},
        {VCPU("{\"args\": []}"), NULL, "vcpu.filter[0]: no \"syscall\""},
        {VCPU("{\"syscall\": \"read\", \"comment\": 7}"), NULL,
         "vcpu.filter[0].comment must be a string"},
        {VCPU("{\"syscall\": \"read\", \"action\": \"allow\"}"), NULL, NULL},
        {VCPU("{\"syscall\": \"read\", \"action\": \"trap\"}"), NULL,
         "vcpu.filter[0] (read): its action, trap, is the mismatch_action"},
        {VCPU("{\"syscall\": \"read\"}, {\"syscall\": \"read\", \"action\": {\"errno\": 1}}"), NULL,
         "vcpu.filter[1] (read): its action differs from that of vcpu.filter[0]"},
        {VCPU(READ_IF("{\"index\": 6, \"type\": \"dword\", \"op\": \"eq\", \"val\": 1}")), NULL,
         "vcpu.filter[0].args[0].index must be an argument's index, 0 to 5"},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"word\", \"op\": \"eq\", \"val\": 1}")), NULL,
         "vcpu.filter[0].args[0].type must be \"dword\""},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"dword\", \"op\": \"eqq\", \"val\": 1}")), NULL,
         "vcpu.filter[0].args[0].op: unknown op \"eqq\""},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"dword\", \"op\": {\"masked\": 1}, \"val\": 1}")),
         NULL, "vcpu.filter[0].args[0].op must be"},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"dword\", \"op\": {\"masked_eq\": 4294967296}, "
                      "\"val\": 1}")),
         NULL, "vcpu.filter[0].args[0].op.masked_eq must be an integer from"},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"dword\", \"op\": \"eq\", \"val\": -2147483649}")),
         NULL, "vcpu.filter[0].args[0].val must be an integer from -2147483648 to 4294967295"},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"qword\", \"op\": \"eq\", \"val\": \"pid\"}")),
         NULL, "vcpu.filter[0].args[0].val must be an integer or \"self-pid\""},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"qword\", \"op\": \"eq\", \"val\": 1.5}")), NULL,
         "vcpu.filter[0].args[0].val must be an integer"},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"qword\", \"op\": \"eq\"}")), NULL,
         "vcpu.filter[0].args[0]: no \"val\""},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"qword\", \"op\": \"eq\", \"val\": 1, "
                      "\"why\": \"\"}")),
         NULL, "vcpu.filter[0].args[0]: unknown key \"why\""},
        {VCPU(READ_IF("{\"index\": 2, \"type\": \"qword\", \"op\": \"ge\", \"val\": 1}, "
                      "{\"index\": 2, \"type\": \"qword\", \"op\": \"le\", \"val\": 5}")),
         NULL, "vcpu.filter[0].args[1]: argument 2 is compared twice"},
        {VCPU(READ_IF("{\"index\": 0, \"type\": \"dword\", \"op\": \"ne\", \"val\": 1}, "
                      "{\"index\": 1, \"type\": \"dword\", \"op\": \"ne\", \"val\": 1}, "
                      "{\"index\": 2, \"type\": \"dword\", \"op\": \"ne\", \"val\": 1}")),
         NULL, "vcpu.filter[0]: its dword comparisons make more than 1024"},
        {GOOD_FILTER, NULL, NULL},
};

Test(seccomp_file, mistakes_are_refused_with_their_path)
{
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		struct errbuf e = {{0}};
		char *text = refusals[i].whole ? strdup(refusals[i].whole)
		                               : file_with("vcpu", refusals[i].filter);
		int ret = load(text, &e);
		if (!refusals[i].message) {
			cr_expect_eq(ret, 0, "case %zu refused: %s\n%s", i, e.msg, text);
		} else {
			cr_expect_eq(ret, -EINVAL, "case %zu: %d\n%s", i, ret, text);
			cr_expect(strstr(e.msg, refusals[i].message),
			          "case %zu: \"%s\", not \"%s\"", i, e.msg, refusals[i].message);
		}
		free(text);
	}
}

/* what a comparison lets through, computed directly */
static bool holds(const struct seccomp_cond *c, uint64_t x, uint64_t pid)
{
	uint64_t v = c->self_pid ? pid : c->val, m = c->mask;
	if (!c->qword) {
		x = (uint32_t)x;
		v = (uint32_t)v;
		m = (uint32_t)m;
	}
	switch (c->op) {
	case SECCOMP_OP_EQ:
		return x == v;
	case SECCOMP_OP_NE:
		return x != v;
	case SECCOMP_OP_LT:
		return x < v;
	case SECCOMP_OP_LE:
		return x <= v;
	case SECCOMP_OP_GT:
		return x > v;
	case SECCOMP_OP_GE:
		return x >= v;
	case SECCOMP_OP_MASKED_EQ:
		return (x & m) == v;
	}
	return false;
}

#define NR_X 40

/*
 * Loads a filter allowing lseek when `c` holds for its argument 1 in a
 * child, and checks each of xs[] (as the offset) there: the index of the
 * first one the filter got wrong, or -1.
 */
static int first_wrong(struct seccomp_cond c, const uint64_t *xs)
{
	struct seccomp_filter f = {.mismatch_action = SCMP_ACT_ERRNO(REFUSED),
	                           .match_action = SCMP_ACT_ALLOW};
	struct seccomp_rule exit_group = {.syscall = "exit_group"};
	struct seccomp_rule lseek = {.syscall = "lseek", .nr_args = 1, .args = {c}};
	struct sock_fprog prog;
	struct errbuf e = {{0}};
	cr_assert_eq(seccomp_filter_add(&f, &exit_group), 0);
	cr_assert_eq(seccomp_filter_add(&f, &lseek), 0);
	cr_assert_eq(seccomp_compile(&f, THREAD_VCPU, (uint32_t)getpid(), &prog, &e), 0, "%s",
	             e.msg);
	uint64_t pid = (uint64_t)getpid();
	pid_t child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* raw exit_group: a sanitizer's _exit makes calls the filter refuses */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
			syscall(SYS_exit_group, 255);
		for (int i = 0; i < NR_X; i++) {
			errno = 0;
			long r = syscall(SYS_lseek, 9999, xs[i], SEEK_SET);
			bool through = !(r < 0 && errno == REFUSED);
			if (through != holds(&c, xs[i], pid))
				syscall(SYS_exit_group, i + 1);
		}
		syscall(SYS_exit_group, 0);
	}
	int st;
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 255, "the child could not load the filter");
	free(prog.filter);
	free(f.rules);
	return WEXITSTATUS(st) - 1;
}

/* arguments near v, at the ends of 32 bits, random, each with a clean and a garbage high half */
static void values_near(uint64_t v, uint64_t *xs)
{
	const uint64_t lows[] = {v - 1,
	                         v,
	                         v + 1,
	                         0,
	                         1,
	                         0x7fffffff,
	                         0x80000000,
	                         0xffffffff,
	                         (uint64_t)random(),
	                         (uint64_t)random() ^ v};
	const uint64_t highs[] = {0, 0xffffffff00000000ull, (uint64_t)random() << 32, v};
	int n = 0;
	for (size_t h = 0; h < 4; h++)
		for (size_t l = 0; l < 10; l++)
			xs[n++] = h == 3 ? lows[l] + (v & ~0xffffffffull)
			                 : (highs[h] | (uint32_t)lows[l]);
}

static const char *const ops[] = {"eq", "ne", "lt", "le", "gt", "ge", "masked_eq"};

Test(seccomp_file, comparisons_let_through_what_they_say)
{
	const uint64_t vals[] = {
	        0,          1,          10,         0x7fffffff,     0x80000000,
	        0xfffffffe, 0xffffffff, 0x12345678, 0x100000005ull, 0xffffffffffffff9cull};
	const uint64_t masks[] = {0xff, 0xf0f0, 0xffffffff, 0x80000001, 0xffffffff00000001ull};
	uint64_t xs[NR_X];

	srandom(7);
	for (int q = 0; q < 2; q++)
		for (int op = SECCOMP_OP_EQ; op <= SECCOMP_OP_MASKED_EQ; op++)
			for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
				struct seccomp_cond c = {.index = 1, .qword = q, .op = op};
				c.val = q ? vals[i] : (uint32_t)vals[i];
				c.mask = masks[i % 5];
				if (op == SECCOMP_OP_MASKED_EQ)
					c.val &= q ? c.mask : (uint32_t)c.mask;
				values_near(c.val, xs);
				int bad = first_wrong(c, xs);
				cr_expect_eq(bad, -1, "%s %s %#llx (mask %#llx): wrong for %#llx",
				             q ? "qword" : "dword", ops[op],
				             (unsigned long long)c.val, (unsigned long long)c.mask,
				             (unsigned long long)xs[bad < 0 ? 0 : bad]);
			}
}

Test(seccomp_file, self_pid_is_kiln_s_pid)
{
	uint64_t xs[NR_X];
	struct seccomp_cond c = {.index = 1, .op = SECCOMP_OP_EQ, .self_pid = true};
	values_near((uint64_t)getpid(), xs);
	cr_assert_eq(first_wrong(c, xs), -1);
}
