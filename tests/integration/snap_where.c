// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/snap_where.c: where a silent memck is (snap_test.h,
 * sk_where): the VM paused and snapshotted, vCPU 0's registers read from
 * the state file, RIP named with addr2line, and the console lock's word
 * read from the memory file. Only for a test that is failing anyway: the
 * VM stays paused.
 */
#include "snap_test.h"
#include "api_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint8_t *sk_slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;

	*n = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0) {
		long size = ftell(f);
		rewind(f);
		buf = size > 0 ? malloc((size_t)size) : NULL;
		if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		}
		*n = buf ? (size_t)size : 0;
	}
	fclose(f);
	return buf;
}

/* the first line a command prints (static; "" when none) */
static const char *first_line(const char *cmd)
{
	static char line[256];
	FILE *p = popen(cmd, "r");

	line[0] = 0;
	if (p) {
		if (!fgets(line, sizeof(line), p))
			line[0] = 0;
		pclose(p);
	}
	line[strcspn(line, "\n")] = 0;
	return line;
}

/*
 * vCPU 0's payload in a state file: u8 id length, "vcpu.0", u16 version,
 * u32 length, then u32 vCPU id, the CPUID table (u32 count, 28 bytes an
 * entry) and REGS as 18 u64 (rax ... r15, rip, rflags)
 */
static int vcpu0_regs(const uint8_t *buf, size_t n, uint64_t regs[18])
{
	static const char key[] = "\x06vcpu.0";
	const uint8_t *at = memmem(buf, n, key, sizeof(key) - 1);
	if (!at)
		return -1;
	size_t off = (size_t)(at - buf) + sizeof(key) - 1 + 2 + 4;
	if (off + 8 > n)
		return -1;
	off += 4 + 4 + 28 * le(buf + off + 4, 4);
	if (off + 18 * 8 > n)
		return -1;
	for (int i = 0; i < 18; i++)
		regs[i] = le(buf + off + 8 * i, 8);
	return 0;
}

void sk_where(struct skiln *k, FILE *m)
{
	struct ac_resp r;
	int got = ac_request(k->sock, "PATCH", "/vm", "{\"state\": \"Paused\"}", &r);
	ac_resp_free(&r);
	char *b = kh_fmt("{\"snapshot_type\": \"Full\", \"snapshot_path\": \"%s\", "
	                 "\"mem_file_path\": \"%s\"}",
	                 snap_file("where.state"), snap_file("where.mem"));
	int made = ac_request(k->sock, "PUT", "/snapshot/create", b, &r);
	free(b);
	ac_resp_free(&r);
	size_t n = 0;
	uint8_t *state = made == 204 ? sk_slurp(snap_file("where.state"), &n) : NULL;
	uint64_t regs[18];
	if (!state || vcpu0_regs(state, n, regs) < 0) {
		fprintf(m, "where: no vCPU state (pause %d, snapshot %d)\n", got, made);
		free(state);
		return;
	}
	free(state);
	const char *elf = kh_guest("memck");
	char *cmd =
	        kh_fmt("addr2line -f -e '%s' %#llx | head -n 1", elf, (unsigned long long)regs[16]);
	fprintf(m, "where: vCPU 0 RIP %#llx (%s) RSP %#llx RFLAGS %#llx RAX %#llx RCX %#llx\n",
	        (unsigned long long)regs[16], first_line(cmd), (unsigned long long)regs[6],
	        (unsigned long long)regs[17], (unsigned long long)regs[0],
	        (unsigned long long)regs[2]);
	free(cmd);
	/* memck runs in the lower half only; scripts/run-tests.py looks for these words */
	if (regs[16] >= 0xffff800000000000ull)
		fprintf(m, "where: the guest's registers hold the test bed's own kernel addresses "
		           "(docs/testbed.md, \"Guest registers from the bed\")\n");
	/* the console lock: a virtual address the runtime maps 1:1 */
	cmd = kh_fmt("nm '%s' | awk '$3 == \"console_lock\" {print $1}'", elf);
	unsigned long long lock = strtoull(first_line(cmd), NULL, 16);
	free(cmd);
	FILE *mem = lock ? fopen(snap_file("where.mem"), "rb") : NULL;
	uint8_t word[4];
	if (mem && fseek(mem, (long)lock, SEEK_SET) == 0 && fread(word, 1, 4, mem) == 4)
		fprintf(m, "where: console_lock at %#llx holds %llu\n", lock,
		        (unsigned long long)le(word, 4));
	else
		fprintf(m, "where: console_lock not read (symbol %#llx)\n", lock);
	if (mem)
		fclose(mem);
}
