/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common: what every kiln module shares -- logging, error messages for the
 * user, small helpers. Nothing here knows about KVM, devices or the API.
 */
#ifndef KILN_COMMON_H
#define KILN_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KILN_VERSION "0.1.0"

#define ARRAY_SIZE(a)    (sizeof(a) / sizeof((a)[0]))
#define KIB(x)           ((uint64_t)(x) << 10)
#define MIB(x)           ((uint64_t)(x) << 20)
#define GIB(x)           ((uint64_t)(x) << 30)
#define ALIGN_UP(x, a)   (((x) + ((a)-1)) & ~((uint64_t)(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a)-1))

/* ---------------------------------------------------------------- logging */

/* Firecracker's levels, most severe first; LOG_OFF silences everything. */
enum log_level {
	LOG_OFF = 0,
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
	LOG_TRACE,
};

/*
 * Where log lines go and how they look. Thread-safe: every line is written
 * with one fputs under a lock. Defaults: stderr, LOG_WARN, no level, no origin.
 * log_set_file() takes ownership of `f` (closed on the next change);
 * `module`, when not NULL, keeps only lines from that module.
 */
void log_configure(enum log_level level, bool show_level, bool show_origin, const char *module);
void log_set_file(FILE *f);
/* the descriptor log lines go to, and the instance id they carry (for a signal handler) */
int log_fileno(void);
const char *log_instance_id(void);
void log_set_instance_id(const char *id);
enum log_level log_get_level(void);
/* "Error", "Warning", "Info", "Debug", "Trace", "Off" (case-insensitive) -> level; -EINVAL */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *module, const char *file, int line, const char *fmt,
             ...) __attribute__((format(printf, 5, 6)));

/* each .c file defines LOG_MODULE before using these, e.g. "vcpu" */
#define log_err(...)   log_msg(LOG_ERROR, LOG_MODULE, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, LOG_MODULE, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, LOG_MODULE, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, LOG_MODULE, __FILE__, __LINE__, __VA_ARGS__)

/* ------------------------------------------------------- user-facing errors */

/*
 * A message for the person or program that gave kiln bad input. Functions
 * that validate user input take a `struct errbuf *` (may be NULL) and return
 * -errno; errf() fills the message and returns -errnum so a check reads
 *	if (size == 0) return errf(e, EINVAL, "mem_size_mib must be > 0");
 */
struct errbuf {
	char msg[512];
};

int errf(struct errbuf *e, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ time */

/* CLOCK_MONOTONIC in nanoseconds / microseconds */
uint64_t now_ns(void);
static inline uint64_t now_us(void)
{
	return now_ns() / 1000;
}

/* the monotonic time at which the process started (set once by main) */
extern uint64_t kiln_start_ns;

/* ------------------------------------------------------------------ files */

/*
 * Reads a whole regular file into a malloc'd buffer (NUL-terminated, not
 * counted in *len). Refuses files larger than `max`. 0 / -errno with a
 * message naming the file.
 */
int read_file(const char *path, size_t max, char **out, size_t *len, struct errbuf *e);

/* CRC-32 (IEEE): start with crc 0, feed the pieces in order */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

/* write all of buf, retrying on EINTR and short writes; 0 / -errno */
int write_all(int fd, const void *buf, size_t len);

/* ---------------------------------------------------------------- threads */

/* the kinds of thread kiln runs; each has its own seccomp filter */
enum thread_kind {
	THREAD_VMM,       /* the main thread: event loop, API actions, snapshots */
	THREAD_API,       /* libmicrohttpd's thread: the API socket's clients */
	THREAD_VCPU,      /* "kiln_vcpuN": KVM_RUN and the exits it handles */
	THREAD_IO,        /* a device's I/O thread: its back end (file, tap, socket) */
	THREAD_MIGRATION, /* "kiln_mig_send" / "kiln_mig_recv" */
	THREAD_KINDS,
};

/*
 * Confines the calling thread to its kind's seccomp filter. Each thread
 * calls it once, after its own set-up and before it handles guest or
 * client input; a thread it then creates inherits the filter. Set by the
 * daemon (daemon/seccomp.c) before any thread starts; NULL: no filters.
 * A filter that cannot be loaded ends the process.
 */
extern void (*thread_confine)(enum thread_kind kind);
static inline void confine_thread(enum thread_kind kind)
{
	if (thread_confine)
		thread_confine(kind);
}

#endif
