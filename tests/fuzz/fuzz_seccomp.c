// SPDX-License-Identifier: Apache-2.0
/*
 * tests/fuzz/fuzz_seccomp.c: libFuzzer target for --seccomp-filter files
 * (daemon/seccomp_json.c) and their compilation (seccomp_compile.c, the
 * dword comparisons written as libseccomp rules). One input is a file's
 * text. Checked on every input: a refusal says why; a file that parses
 * prints, and its print parses back to the same print; compiling never
 * fails without a message. Nothing is loaded. Built and run by
 * scripts/fuzz.sh; seeds in tests/fuzz/corpus/seccomp/.
 */
#include "daemon/seccomp_filters.h"

#include <stdlib.h>
#include <string.h>

/* the printed set in a malloc'd string, or NULL when printing failed */
static char *print(const struct seccomp_set *set)
{
	char *text = NULL;
	size_t len = 0;
	struct errbuf e;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		abort();
	int ret = seccomp_set_print(set, f, &e);
	fclose(f);
	if (ret < 0) {
		free(text);
		return NULL;
	}
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seccomp_set set = {0}, back = {0};
	struct errbuf e;

	memset(&e, 0, sizeof(e));
	if (seccomp_set_parse((const char *)data, size, &set, &e) < 0) {
		if (!e.msg[0])
			abort(); /* every refusal says why */
		seccomp_set_free(&set);
		return 0;
	}
	for (int k = 0; k < THREAD_KINDS; k++) {
		struct sock_fprog prog = {0};
		memset(&e, 0, sizeof(e));
		if (seccomp_compile(&set.kinds[k], (enum thread_kind)k, 4242, &prog, &e) < 0 &&
		    !e.msg[0])
			abort();
		free(prog.filter);
	}
	char *text = print(&set), *again = NULL;
	if (text) {
		if (seccomp_set_parse(text, strlen(text), &back, &e) < 0)
			abort(); /* what kiln prints, it reads */
		again = print(&back);
		if (again && strcmp(text, again) != 0)
			abort(); /* and reads as the same filters */
	}
	free(text);
	free(again);
	seccomp_set_free(&set);
	seccomp_set_free(&back);
	return 0;
}
