/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/migration: live migration between two kiln processes (docs/migration.md).
 *
 * The wire protocol, version MIG_PROTOCOL_VERSION, over one stream socket
 * (TCP or unix). Every message is a frame: a 16-byte header
 *   u32 type     enum mig_frame
 *   u32 count    PAGES: the number of page entries; 0 otherwise
 *   u64 length   payload bytes after the header (at most MIG_FRAME_MAX)
 * then the payload. All integers little-endian.
 *
 *   source                                   target
 *   HELLO  "KILNMIGR", u32 version, sections:
 *          "snapshot" (snap_info), "config"
 *          (the VM's JSON), "layout", "cpu"
 *          (vCPU 0's CPUID, the MSR indices)  ->
 *                                         <-  ACCEPT, or ERROR "why"
 *   PAGES* (pre-copy rounds, then the last pages after the pause)
 *   STATE  the sections a snapshot holds after its config (layout,
 *          vCPUs, irqchip, pit, clock, devices) ->
 *                                         <-  READY (restored, paused), or ERROR
 *   GO     u8 resume (the source was running) ->
 *                                         <-  RUNNING
 *   ERROR  either side, any time before GO: a UTF-8 message; the stream ends
 *
 * A PAGES payload: `count` u64 entries, each a page index into the host
 * mapping of guest RAM (its offset / 4 KiB) with MIG_PAGE_ZERO set for a
 * page of zeroes, then the 4 KiB of every entry without MIG_PAGE_ZERO, in
 * entry order. The source sends it with sendmsg straight from guest memory,
 * the target reads it with readv straight into guest memory.
 *
 * Who runs the guest: the source until it reads RUNNING (then it exits 0);
 * the target from GO. Any failure before GO leaves the source running and
 * the target discarding what it got (after ACCEPT it exits with an error).
 * A stream cut after GO and before RUNNING leaves the source paused, with
 * the outcome "unknown" (the guest runs in exactly one place or none).
 */
#ifndef KILN_DAEMON_MIGRATION_H
#define KILN_DAEMON_MIGRATION_H

#include "common/common.h"
#include "api/api.h"
#include "common/state.h"
#include "memory/memory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#define MIG_MAGIC            "KILNMIGR"
#define MIG_PROTOCOL_VERSION 1
#define MIG_FRAME_MAX        (64ull << 20) /* a HELLO or STATE payload; PAGES less */
#define MIG_PAGES_MAX        4096u         /* page entries in one PAGES frame */
#define MIG_PAGE_ZERO        (1ull << 63)
#define MIG_HEADER_SIZE      16

enum mig_frame {
	MIG_HELLO = 1,
	MIG_ACCEPT = 2,
	MIG_PAGES = 3,
	MIG_STATE = 4,
	MIG_READY = 5,
	MIG_GO = 6,
	MIG_RUNNING = 7,
	MIG_ERROR = 8,
};

struct mig_header {
	uint32_t type, count;
	uint64_t length;
};

/* what GET /migration reports; written by the migration thread under mig.lock */
enum mig_phase {
	MIG_PHASE_NONE,      /* no migration yet */
	MIG_PHASE_LISTENING, /* target: waiting for a source */
	MIG_PHASE_HANDSHAKE, /* HELLO sent / being checked */
	MIG_PHASE_PRECOPY,   /* memory rounds while the guest runs */
	MIG_PHASE_STOPPED,   /* source paused: last pages and state */
	MIG_PHASE_COMPLETED, /* the target runs the guest */
	MIG_PHASE_FAILED,    /* see `error`; the source still runs the guest */
	MIG_PHASE_CANCELLED, /* PUT /migration/cancel; the source still runs it */
	MIG_PHASE_UNKNOWN,   /* the stream broke after GO: source left paused */
};
const char *mig_phase_name(enum mig_phase p);

struct mig_stats {
	enum mig_phase phase;
	bool is_source;
	char peer[128];
	unsigned iteration;
	uint64_t bytes, pages, zero_pages; /* sent (source) or received (target) */
	uint64_t remaining_pages;          /* dirty after the last round */
	uint64_t dirty_pages_per_s;
	double link_mib_s;
	uint64_t expected_downtime_ms, downtime_ms, total_ms;
	char error[512];
};

/* ------------------------------------------------------ frames (wire.c) */

/* both 0 / -errno; -ECONNRESET at the end of the stream, -EPROTO for a bad header */
int mig_send_frame(int fd, uint32_t type, uint32_t count, const void *payload, uint64_t len);
int mig_recv_header(int fd, struct mig_header *h);
int mig_read_all(int fd, void *buf, size_t len);
/* an ERROR frame with printf text (best effort: errors are ignored) */
void mig_send_error(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Sends the pages set in `bitmap` (host-mapping page numbers) as PAGES
 * frames, zero pages as markers, clearing each bit sent. `pace` paces the
 * sending from this call's start when its limit_bps is not 0 (frames then
 * carry about 50 ms of data). Adds to st->bytes, pages and zero_pages as it goes (atomically:
 * GET /migration reads them). Returns the pages sent or -errno; -ECANCELED
 * soon after `stop` (may be NULL) is set, even while pacing.
 */
struct mig_pacer {
	uint64_t limit_bps, start_ns, sent;
};
int64_t mig_send_pages(int fd, const struct guest_mem *gm, uint64_t *bitmap, struct mig_pacer *pace,
                       const atomic_bool *stop, struct mig_stats *st);

/*
 * Reads the payload of a PAGES frame `h` into guest memory: every index
 * checked against gm (-EPROTO with a message for one outside RAM, a count
 * over MIG_PAGES_MAX or a length that disagrees with the entries), zero
 * pages cleared. Adds to *pages and *zeros. 0 / -errno.
 */
int mig_recv_pages(int fd, const struct mig_header *h, struct guest_mem *gm, uint64_t *pages,
                   uint64_t *zeros, struct errbuf *e);

/*
 * Parses "tcp:HOST:PORT" or "unix:PATH" into a socket address. 0 /
 * -EINVAL with a message.
 */
struct mig_addr {
	int family; /* AF_INET, AF_INET6, AF_UNIX */
	socklen_t len;
	union {
		struct sockaddr sa;
		struct sockaddr_storage ss;
	} u;
};
int mig_parse_addr(const char *s, struct mig_addr *a, struct errbuf *e);

/* ------------------------------------------- the migration (migration.c) */

struct vmm;
typedef int (*mig_call_fn)(struct vmm *v, void *arg, struct errbuf *e);

/*
 * One migration, source or target, owned by the VMM (v->mig); its thread
 * ("kiln_mig_send" / "kiln_mig_recv") does the stream work and asks the
 * VMM thread for everything that touches the VM through mig_call().
 */
struct vmm_migration {
	struct vmm *v;
	pthread_t thread;
	bool thread_started;
	atomic_bool active;    /* the thread is at work: state-changing actions are refused */
	int sock;              /* the stream; -1 */
	int listen_fd;         /* target: the listening socket; -1 */
	char listen_path[108]; /* target: a unix socket file to remove at the end */
	atomic_bool cancel;    /* PUT /migration/cancel, or the VMM shutting down */
	bool committed;        /* source: GO sent, cancel no longer possible */

	pthread_mutex_t lock; /* st, and the call below */
	pthread_cond_t cond;
	struct mig_stats st;
	uint64_t start_ns;

	/* mig_call: one request at a time from the thread to the VMM thread */
	int call_efd;
	mig_call_fn call_fn;
	void *call_arg;
	struct errbuf *call_e;
	int call_ret;
	bool call_pending, call_done, closing;

	/* source */
	uint32_t max_downtime_ms, max_iterations;
	uint64_t limit_bps;
	struct state_writer hello, state;
	uint64_t *bitmap, *devices; /* to send; every page devices touched */
	uint64_t *carry;            /* every page taken from the log (Diff snapshots) */
	bool was_running, paused_here, logging_was_on;
	uint64_t pause_ns;
	uint64_t sent_bytes, send_ns; /* pre-copy's bytes and sending time: the link speed */

	/* target */
	struct migration_receive_req *rreq;
	bool built, machine_set;
};

/* the VMM thread's side (migration.c) */
void mig_stop_logging(struct vmm *v, struct vmm_migration *m);
int mig_call(struct vmm_migration *m, mig_call_fn fn, void *arg, struct errbuf *e);
void mig_set_phase(struct vmm_migration *m, enum mig_phase p);
/* ends the thread's work: phase, error text, log line */
void mig_finish(struct vmm_migration *m, enum mig_phase p, const char *why);

/* the threads (mig_send.c, mig_recv.c) */
void *mig_send_thread(void *arg);
void *mig_recv_thread(void *arg);
/* source: the HELLO payload (VMM thread, the VM running or paused) */
int mig_build_hello(struct vmm *v, struct state_writer *w, struct errbuf *e);

#endif
