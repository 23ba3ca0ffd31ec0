/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/integration/harness: start kiln as a child process, feed it a
 * config file, watch what it prints, and stop it. Used by every
 * integration test; paths come from the environment meson sets:
 * KILN_BIN (the daemon) and KILN_GUEST_DIR (the built test guests).
 */
#ifndef KILN_TEST_HARNESS_H
#define KILN_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>

/*
 * A wait on a guest (one of a second or more) scaled by KILN_TIME_SCALE,
 * which the test bed sets where guests run under an emulated CPU (TCG);
 * 1 elsewhere. Shorter waits only collect output already on its way and
 * stay as they are. Every wait of the harness and the API client goes
 * through it, so a test states the time a guest needs on real hardware.
 */
static inline int kh_scaled_ms(int timeout_ms)
{
	const char *s = getenv("KILN_TIME_SCALE");
	long scale = s ? strtol(s, NULL, 10) : 1;

	if (timeout_ms < 1000 || scale <= 1)
		return timeout_ms;
	if (scale > 100)
		scale = 100;
	return timeout_ms > 20000000 / scale ? 20000000 : (int)(timeout_ms * scale);
}

struct kproc {
	pid_t pid;
	int out_fd; /* the child's stdout and stderr, merged */
	char *out;  /* everything read so far, NUL-terminated */
	size_t len, cap;
	bool exited;
	int status;     /* exit code, or 128 + signal */
	char *cfg_path; /* the temporary config file, if any */
	bool has_stdin; /* started by kh_spawn_stdin: */
	int in_fd;      /* the write end of the child's stdin */
};

/* path of the kiln binary (KILN_BIN) */
const char *kh_kiln(void);
/* path of a built test guest, e.g. kh_guest("hello") -> .../hello.elf */
const char *kh_guest(const char *name);

/*
 * Writes `json` to a new temporary file and returns its path (static
 * buffer per call site is not used: the result is malloc'd; free it).
 */
char *kh_write_temp(const char *json, const char *suffix);

/*
 * 16 random hex digits and a NUL from /dev/urandom into out, so that what a
 * guest prints can be told from an earlier run's: 0, or -errno.
 */
int kh_marker(char out[17]);

/*
 * Starts kiln with argv (argv[0] is ignored: kh_kiln() is used, unless it is
 * an absolute path, which is then run instead); stdin is /dev/null.
 */
int kh_spawn(struct kproc *p, const char *const argv[]);
/* kh_spawn with the child's stdin a pipe that kh_type() writes to (a keyboard on the console) */
int kh_spawn_stdin(struct kproc *p, const char *const argv[]);
/* writes `text` to the stdin of a kh_spawn_stdin child: 0 / -errno */
int kh_type(struct kproc *p, const char *text);

/* Starts `kiln --no-api --config-file <tmp>` with `json` as the config. */
int kh_spawn_config(struct kproc *p, const char *json);

/*
 * Reads output until `needle` appears (returns true) or `timeout_ms`
 * (scaled by kh_scaled_ms) passes or the child exits without printing it
 * (false).
 */
bool kh_wait_for(struct kproc *p, const char *needle, int timeout_ms);

/* Waits for the child to exit; returns its status, or -1 on timeout (scaled). */
int kh_wait_exit(struct kproc *p, int timeout_ms);
/*
 * after a failed wait: whether kiln still runs, or how it ended (waits up
 * to 2 s) with its last "VM stopped: " or "VM crashed: " line, or a
 * sanitizer's first report
 */
const char *kh_status(struct kproc *p);

/*
 * What a process's threads do, for a test whose guest fell silent:
 * kh_threads_begin samples each thread's CPU ticks; kh_threads_end, called
 * after a wait (a second, say), returns one line per thread (malloc'd; free
 * it) with its name, state, kernel wait channel and the ticks since the
 * first look in user space, in the kernel and in the guest (Linux counts
 * the guest's time in user time too). A vCPU halted in KVM_RUN burns none;
 * one whose guest runs shows guest ticks; one looping outside the guest
 * shows user or system ticks only.
 */
struct kh_threads;
struct kh_threads *kh_threads_begin(pid_t pid);
char *kh_threads_end(struct kh_threads *t);

/* SIGKILL + reap, then free the buffer; safe to call twice. */
void kh_kill(struct kproc *p);

/*
 * Creates the network namespace `name` (`ip netns add`) and moves the
 * calling process into it, so that the kilns it starts afterwards run
 * there. 0, or -errno (-EIO when `ip` failed). `ip netns del` removes it.
 */
int kh_netns_enter(const char *name);
/*
 * kh_netns_enter(name), then in it: IPv6 off (no autoconfiguration frames,
 * only the test's traffic) and the tap `tap` made and up. 0 / -errno.
 */
int kh_netns_with_tap(const char *name, const char *tap);
/* `ip netns del name` (nothing for ""); a failure is reported, not fatal */
void kh_netns_del(const char *name);

/*
 * What the command line of every freestanding test guest (tests/guests)
 * with virtio devices starts with. kiln announces each virtio device once:
 * in the ACPI DSDT, or, only when the command line has acpi=off, as a
 * virtio_mmio.device= parameter (virtio_mmio_cmdline_add). The guests'
 * runtime finds devices on the command line alone (rt/virtio_cmdline.c),
 * so their tests pass acpi=off. Linux guests (test_linux.c) do not: Debian's
 * kernels read only the DSDT (no CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES).
 */
#define KH_GUEST_ARGS "acpi=off"

/* a printf into a malloc'd string */
char *kh_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* a minimal config: guest `name`, `vcpus`, `mem_mib`, boot_args (may be NULL) */
char *kh_guest_config(const char *name, unsigned vcpus, unsigned mem_mib, const char *args);

#endif
