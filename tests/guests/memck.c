// SPDX-License-Identifier: Apache-2.0
/*
 * memck: a memory checker whose state must survive a snapshot. It takes
 * memck.mib MiB (default 32) of RAM and loops in ring 3:
 *
 *   round r (from 1): every 4 KiB page p must still hold round r-1's word
 *   at its own offset, off(p) = (mix64(p) & 511) * 8, which is then
 *   replaced by round r's word; then the whole region is read back.
 *   The word of round r in page p is mix64(r * 0x9e3779b97f4a7c15 + p)
 *   (mix64: the splitmix64 finaliser), round 0's is 0 (fresh pages).
 *
 * Every memck.report_ms (default 200) it prints
 *
 *   memck: report N round R ok sum S
 *
 * N counting the reports from 1 without a gap, R the rounds completed, S
 * the XOR of round R's words as read back (in hex). A restored snapshot
 * therefore continues with report N+1 and a higher round, or prints
 * "memck: MISMATCH at page P round R: got G want W" and exits with 1.
 * memck.rounds=K stops after K rounds with "memck: done K rounds".
 */
#include "rt/krt.h"

#define WORDS_PER_PAGE (KRT_PAGE_SIZE / 8)

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t word_of(uint64_t round, uint64_t page)
{
	return round ? mix64(round * 0x9e3779b97f4a7c15ull + page) : 0;
}

static size_t offset_of(uint64_t page)
{
	return (size_t)(mix64(page) & (WORDS_PER_PAGE - 1));
}

/* the first page whose word is not round `r`'s, or npages; XOR of the words in *sum */
static uint64_t check(volatile uint64_t *mem, uint64_t npages, uint64_t r, uint64_t *sum,
                      uint64_t *got)
{
	uint64_t x = 0;
	for (uint64_t p = 0; p < npages; p++) {
		uint64_t w = mem[p * WORDS_PER_PAGE + offset_of(p)];
		if (w != word_of(r, p)) {
			*got = w;
			return p;
		}
		x ^= w;
	}
	*sum = x;
	return npages;
}

/* round r: checks round r-1's words page by page and replaces them */
static uint64_t step(volatile uint64_t *mem, uint64_t npages, uint64_t r, uint64_t *got)
{
	for (uint64_t p = 0; p < npages; p++) {
		volatile uint64_t *w = &mem[p * WORDS_PER_PAGE + offset_of(p)];
		if (*w != word_of(r - 1, p)) {
			*got = *w;
			return p;
		}
		*w = word_of(r, p);
	}
	return npages;
}

int main(void)
{
	uint64_t mib = krt_param_u64("memck.mib", 32);
	uint64_t report_ms = krt_param_u64("memck.report_ms", 200);
	uint64_t rounds = krt_param_u64("memck.rounds", 0);

	if (mib == 0 || mib > 4096) {
		krt_printf("memck: FAILED: memck.mib=%lu is not in 1..4096\n", mib);
		return 1;
	}
	uint64_t npages = KRT_MIB(mib) / KRT_PAGE_SIZE;
	volatile uint64_t *mem = krt_alloc_pages(npages, KRT_PAGE_SIZE);
	if (!mem) {
		krt_printf("memck: FAILED: no %lu MiB of free RAM\n", mib);
		return 1;
	}
	krt_printf("memck: %lu MiB at 0x%lx, report every %lu ms\n", mib, (uint64_t)mem, report_ms);
	uint64_t interval = report_ms * (krt_tsc_hz() / 1000);
	uint64_t last = krt_rdtsc(), reports = 0;
	for (uint64_t r = 1; !rounds || r <= rounds; r++) {
		uint64_t got = 0, sum = 0;
		uint64_t bad = step(mem, npages, r, &got);
		uint64_t when = r - 1;
		if (bad == npages) {
			bad = check(mem, npages, r, &sum, &got);
			when = r;
		}
		if (bad != npages) {
			krt_printf("memck: MISMATCH at page %lu round %lu: got %lx want %lx\n", bad,
			           when, got, word_of(when, bad));
			return 1;
		}
		uint64_t now = krt_rdtsc();
		/* unsigned: a TSC that went backwards also reports at once */
		if (now - last >= interval || (rounds && r == rounds)) {
			krt_printf("memck: report %lu round %lu ok sum %lx\n", ++reports, r, sum);
			last = now;
		}
	}
	krt_printf("memck: done %lu rounds\n", rounds);
	return 0;
}
