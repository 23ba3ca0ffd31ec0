// SPDX-License-Identifier: Apache-2.0
/*
 * tests/integration/threads.c: what a silent kiln's threads are doing
 * (harness.h, kh_threads_begin / kh_threads_end), read from /proc.
 */
#include "harness.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KH_MAX_THREADS 64

/* CPU ticks of one thread: in user space (the guest's included), in the kernel, in the guest */
struct ticks {
	unsigned long user, sys, guest;
};

struct kh_threads {
	pid_t pid;
	unsigned n;
	int tid[KH_MAX_THREADS];
	struct ticks at[KH_MAX_THREADS];
};

/* one thread's name, state, kernel wait channel and ticks; false: gone */
static bool thread_sample(pid_t pid, int tid, char comm[32], char *state, char wchan[64],
                          struct ticks *t)
{
	char path[96], line[512];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	/* pid (comm) state, then fields 4..: utime is 14, stime 15, guest_time 43 */
	char *open = strchr(line, '('), *close = strrchr(line, ')');
	if (!ok || !open || !close || close < open)
		return false;
	snprintf(comm, 32, "%.*s", (int)(close - open - 1), open + 1);
	char *save = NULL, *tok = strtok_r(close + 1, " ", &save);
	*t = (struct ticks){0};
	*state = tok ? tok[0] : '?';
	for (int field = 3; tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 14)
			t->user = strtoul(tok, NULL, 10);
		else if (field == 15)
			t->sys = strtoul(tok, NULL, 10);
		else if (field == 43)
			t->guest = strtoul(tok, NULL, 10);
	}
	wchan[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/wchan", pid, tid);
	FILE *w = fopen(path, "r");
	if (w) {
		if (!fgets(wchan, 64, w))
			wchan[0] = 0;
		fclose(w);
	}
	return true;
}

struct kh_threads *kh_threads_begin(pid_t pid)
{
	struct kh_threads *t = calloc(1, sizeof(*t));
	char path[64];

	if (!t)
		return NULL;
	t->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	for (struct dirent *de; d && (de = readdir(d)) && t->n < KH_MAX_THREADS;) {
		char comm[32], state, wchan[64];
		int tid = atoi(de->d_name);
		if (tid > 0 && thread_sample(pid, tid, comm, &state, wchan, &t->at[t->n]))
			t->tid[t->n++] = tid;
	}
	if (d)
		closedir(d);
	return t;
}

char *kh_threads_end(struct kh_threads *t)
{
	char *out = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&out, &size);

	if (!m || !t) {
		if (m)
			fclose(m);
		free(t);
		return out ? out : strdup("no thread report (out of memory)");
	}
	if (!t->n)
		fprintf(m, "process %d has no threads to show (gone?)\n", t->pid);
	for (unsigned i = 0; i < t->n; i++) {
		char comm[32], state, wchan[64];
		struct ticks now, *was = &t->at[i];
		if (!thread_sample(t->pid, t->tid[i], comm, &state, wchan, &now)) {
			fprintf(m, "thread %d: gone\n", t->tid[i]);
			continue;
		}
		fprintf(m,
		        "thread %d %s: %c wchan %s; ticks since the first look: user %lu, system "
		        "%lu, guest %lu (in all %lu, %lu, %lu)\n",
		        t->tid[i], comm, state, wchan, now.user - was->user, now.sys - was->sys,
		        now.guest - was->guest, now.user, now.sys, now.guest);
	}
	fclose(m);
	free(t);
	return out;
}
