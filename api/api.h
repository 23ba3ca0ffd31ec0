/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api: kiln's HTTP API on a unix socket (libmicrohttpd + jansson).
 *
 * The API thread only parses: each request becomes a `struct api_action`
 * posted to the VMM thread over an `api_queue` (mutex + eventfd); the VMM
 * thread executes it and completes it with a status and a reply, which the
 * API thread turns into the HTTP response. The API thread never touches VM
 * state. Paths, bodies, status codes and messages follow Firecracker's
 * swagger (src/firecracker/swagger/firecracker.yaml).
 */
#ifndef KILN_API_H
#define KILN_API_H

#include "api/config.h"

#include <pthread.h>

/*
 * The version of Firecracker's API that kiln serves: its swagger's
 * info.version. `kiln --version` and GET /version report it where
 * Firecracker reports its own, so version checks written for Firecracker
 * (Kata's checkVersion: the 2nd word of --version's first line, "v"
 * stripped, a semver >= 0.21.1) pass; kiln's own version goes beside it.
 */
#define API_FIRECRACKER_VERSION "1.17.0-dev"

/* Firecracker's default --http-api-max-payload-size */
#define API_MAX_PAYLOAD_DEFAULT 51200

enum api_action_kind {
	API_GET_INFO,             /* GET / */
	API_GET_VERSION,          /* GET /version */
	API_GET_VM_CONFIG,        /* GET /vm/config */
	API_GET_MACHINE_CONFIG,   /* GET /machine-config */
	API_PUT_BOOT_SOURCE,      /* PUT /boot-source */
	API_PUT_MACHINE_CONFIG,   /* PUT /machine-config */
	API_PATCH_MACHINE_CONFIG, /* PATCH /machine-config */
	API_PUT_CPU_CONFIG,       /* PUT /cpu-config */
	API_PUT_DRIVE,            /* PUT /drives/{id} */
	API_PATCH_DRIVE,          /* PATCH /drives/{id} */
	API_PUT_NET,              /* PUT /network-interfaces/{id} */
	API_PATCH_NET,            /* PATCH /network-interfaces/{id} */
	API_PUT_VSOCK,            /* PUT /vsock */
	API_PUT_ENTROPY,          /* PUT /entropy */
	API_PUT_LOGGER,           /* PUT /logger */
	API_PUT_METRICS,          /* PUT /metrics */
	API_INSTANCE_START,       /* PUT /actions {"action_type": "InstanceStart"} */
	API_SEND_CTRL_ALT_DEL,    /* PUT /actions SendCtrlAltDel */
	API_FLUSH_METRICS,        /* PUT /actions FlushMetrics */
	API_PAUSE,                /* PATCH /vm {"state": "Paused"} */
	API_RESUME,               /* PATCH /vm {"state": "Resumed"} */
	API_SNAPSHOT_CREATE,      /* PUT /snapshot/create */
	API_SNAPSHOT_LOAD,        /* PUT /snapshot/load */
	API_GET_MIGRATION,        /* GET /migration (kiln's own) */
	API_MIGRATION_SEND,       /* PUT /migration/send */
	API_MIGRATION_RECEIVE,    /* PUT /migration/receive */
	API_MIGRATION_CANCEL,     /* PUT /migration/cancel */
	API_GET_MMDS,             /* GET /mmds */
	API_PUT_MMDS,             /* PUT /mmds */
	API_PATCH_MMDS,           /* PATCH /mmds */
	API_PUT_MMDS_CONFIG,      /* PUT /mmds/config */
	API_GET_BALLOON,          /* GET /balloon */
	API_PUT_BALLOON,          /* PUT /balloon */
	API_PATCH_BALLOON,        /* PATCH /balloon */
	API_GET_BALLOON_STATS,    /* GET /balloon/statistics */
	API_PATCH_BALLOON_STATS,  /* PATCH /balloon/statistics */
	API_BALLOON_HINT_START,   /* PATCH /balloon/hinting/start */
	API_BALLOON_HINT_STATUS,  /* GET /balloon/hinting/status */
	API_BALLOON_HINT_STOP,    /* PATCH /balloon/hinting/stop */
	API_PUT_SERIAL,           /* PUT /serial */
	API_ACTION_COUNT
};

/* the API's name of an action, e.g. "PUT /boot-source" (for logs and metrics) */
const char *api_action_name(enum api_action_kind k);

/* PATCH /machine-config: only the fields present */
struct machine_patch {
	bool has_vcpu_count, has_mem_size_mib, has_smt, has_track_dirty_pages, has_huge_pages;
	bool has_cpu_template;
	char cpu_template[8]; /* a static template's name; "" for "None" */
	unsigned vcpu_count;
	uint64_t mem_size_mib;
	bool smt, track_dirty_pages;
	enum huge_pages_cfg huge_pages;
};

/*
 * Which buckets a PATCHed rate limiter names. As in Firecracker's
 * RateLimiterUpdate, a bucket the body leaves out stays as it was (one
 * given with size or refill_time 0 is removed).
 */
struct rl_given {
	bool bandwidth, ops;
};

/* PATCH /drives/{id} */
struct drive_patch {
	char drive_id[CFG_ID_MAX + 1];
	char *path_on_host; /* NULL: unchanged */
	bool has_rate_limiter;
	struct rl_given given;
	struct rate_limiter_cfg rate_limiter;
};

/* PATCH /network-interfaces/{id} */
struct net_patch {
	char iface_id[CFG_ID_MAX + 1];
	bool has_rx, has_tx;
	struct rl_given rx_given, tx_given;
	struct rate_limiter_cfg rx_rate_limiter, tx_rate_limiter;
};

/* PUT /cpu-config: Firecracker's custom CPU template (x86_64 part) */
#define CPU_CFG_MAX_MODIFIERS 64
struct cpuid_modifier {
	uint32_t leaf, subleaf, flags;
	uint8_t reg;          /* 0 eax, 1 ebx, 2 ecx, 3 edx */
	uint32_t mask, value; /* bits to set: (old & ~mask) | (value & mask) */
};
struct msr_modifier {
	uint32_t addr;
	uint64_t mask, value;
};
struct cpu_config {
	unsigned nr_cpuid, nr_msr;
	struct cpuid_modifier cpuid[CPU_CFG_MAX_MODIFIERS];
	struct msr_modifier msr[CPU_CFG_MAX_MODIFIERS];
};

/* bytes of a custom template file a config file's "cpu-config" may name */
#define CPU_CONFIG_FILE_MAX (1u << 20)

/*
 * A config file's "cpu-config" value `v` (Firecracker's CustomCpuTemplateOrPath):
 * a custom template inline (PUT /cpu-config's body) or the path of a JSON
 * file holding one, read here. Into *c: 1 when it holds a template, 0 when
 * `v` is NULL or null, -EINVAL / -errno with a message naming the path.
 */
int cfg_cpu_config_doc(json_t *v, struct cpu_config *c, struct errbuf *e);

/*
 * PUT /snapshot/create (Firecracker's SnapshotCreateParams). The values of
 * `type` are those of daemon/snapshot.h's enum snap_type.
 */
enum api_snapshot_type { API_SNAPSHOT_FULL = 0, API_SNAPSHOT_DIFF = 1 };
struct snapshot_create_req {
	enum api_snapshot_type type; /* "snapshot_type", Full when not given */
	char *snapshot_path;         /* the state file to write; never NULL or "" */
	char *mem_file_path;         /* the memory file to write; never NULL or "" */
};

/* PUT /snapshot/load (Firecracker's SnapshotLoadParams) */
#define SNAP_MAX_NET_OVERRIDES CFG_MAX_NETS
enum api_mem_backend { API_MEM_BACKEND_FILE = 0, API_MEM_BACKEND_UFFD = 1 };
struct snapshot_net_override {
	char iface_id[CFG_ID_MAX + 1]; /* valid id, unique in the request */
	char *host_dev_name;           /* a valid interface name, unique in the request */
};
struct snapshot_load_req {
	char *snapshot_path; /* the state file; never NULL or "" */
	/*
	 * mem_backend {backend_type, backend_path}, or the deprecated
	 * mem_file_path, which means File: the memory file to map (File) or
	 * the unix socket of the page server to hand the userfaultfd to (Uffd,
	 * a path that fits sun_path). Never NULL or "".
	 */
	enum api_mem_backend backend_type;
	char *backend_path;
	bool track_dirty_pages; /* track_dirty_pages || enable_diff_snapshots */
	bool resume_vm;         /* default false */
	/* mem_file_path or enable_diff_snapshots was used (Firecracker: a Deprecation header) */
	bool deprecated;
	unsigned nr_net_overrides;
	struct snapshot_net_override net_overrides[SNAP_MAX_NET_OVERRIDES];
	char *vsock_uds_path; /* vsock_override.uds_path, NULL when not given */
};

/* free the strings of a request and NULL them; idempotent (api_action_release calls them) */
void api_snapshot_create_free(struct snapshot_create_req *r);
void api_snapshot_load_free(struct snapshot_load_req *r);

/*
 * PUT /migration/send (kiln's own; docs/migration.md). `destination` is
 * "tcp:HOST:PORT" or "unix:PATH", checked by the parser (never NULL).
 */
#define MIG_DEFAULT_MAX_DOWNTIME_MS 300
#define MIG_DEFAULT_MAX_ITERATIONS  30
struct migration_send_req {
	char *destination;
	uint32_t max_downtime_ms;       /* default MIG_DEFAULT_MAX_DOWNTIME_MS; >= 1 */
	uint32_t max_iterations;        /* pre-copy rounds after the first; default 30, >= 1 */
	uint32_t bandwidth_limit_mib_s; /* 0 (the default): no limit */
};

/* PUT /migration/receive: where to listen and this host's names for the VM's resources */
struct migration_drive_override {
	char drive_id[CFG_ID_MAX + 1]; /* valid id, unique in the request */
	char *path_on_host;            /* never NULL or "" */
};
struct migration_receive_req {
	char *listen; /* "tcp:HOST:PORT" or "unix:PATH", checked by the parser */
	unsigned nr_net_overrides;
	struct snapshot_net_override net_overrides[SNAP_MAX_NET_OVERRIDES];
	unsigned nr_drive_overrides;
	struct migration_drive_override drive_overrides[CFG_MAX_DRIVES];
	char *vsock_uds_path; /* vsock_override.uds_path, NULL when not given */
};
void api_migration_send_free(struct migration_send_req *r);
void api_migration_receive_free(struct migration_receive_req *r);

/*
 * The form of a migration address, as the two parsers check it:
 * "tcp:HOST:PORT" with PORT 1..65535 and HOST a name or IPv4 address
 * ([A-Za-z0-9._-], at most 253 characters) or an IPv6 address in brackets
 * ("tcp:[::1]:4000", a zone allowed: "tcp:[fe80::1%eth0]:4000"), or
 * "unix:PATH" with PATH 1..107 bytes (it fits sun_path). Nothing is
 * resolved. `where` names the field in the message. 0 / -EINVAL. Any thread.
 */
int api_migration_address_check(const char *addr, const char *where, struct errbuf *e);

/*
 * PUT /serial (Firecracker's SerialDevice): where the guest's serial
 * output goes from the boot on, and how fast (a TokenBucket of bytes).
 */
struct serial_req {
	char *serial_out_path;                /* a file or named pipe; NULL: kiln's stdout */
	struct token_bucket_cfg rate_limiter; /* bytes; .set false: no limit */
};

struct api_action;
/*
 * Called by the VMM thread once it has completed `a` (status, and reply or
 * fault, set); exactly once per posted action, from any thread, also after
 * api_server_stop() (the action stays valid until then). `a` must not be
 * touched after done() returns.
 */
typedef void (*api_done_fn)(struct api_action *a);

struct api_action {
	enum api_action_kind kind;
	union {
		struct boot_source_cfg boot_source;
		struct machine_cfg machine;
		struct machine_patch machine_patch;
		struct cpu_config cpu_config;
		struct drive_cfg drive;
		struct drive_patch drive_patch;
		struct net_cfg net;
		struct net_patch net_patch;
		struct vsock_cfg vsock;
		struct entropy_cfg entropy;
		struct logger_cfg logger;
		struct metrics_cfg metrics;
		struct snapshot_create_req snapshot_create;
		struct snapshot_load_req snapshot_load;
		struct migration_send_req migration_send;
		struct migration_receive_req migration_receive;
		json_t *mmds_data; /* PUT/PATCH /mmds: the body, any JSON value (owned) */
		struct mmds_cfg mmds_config;
		struct balloon_cfg balloon; /* PUT, and the fields the PATCHes set */
		struct serial_req serial;
	} u;

	/*
	 * Firecracker's deprecation message when the body used a deprecated
	 * field or value (set by api_route; a static string, or NULL): the
	 * answer, success or failure, carries `Deprecation: true`.
	 */
	const char *deprecation;

	/* result, written by the VMM thread before done() */
	int status;      /* HTTP status: 200, 204, 400, ... */
	json_t *reply;   /* body for 200 (owned by the action), or NULL */
	char fault[512]; /* fault_message for >= 400 */

	/* completion */
	api_done_fn done;
	void *done_opaque;
	struct api_action *next; /* queue link */
};

/*
 * Frees what the parser allocated inside `a->u` (strings of the config
 * structs) and a->reply; not `a` itself.
 */
void api_action_release(struct api_action *a);

/* ----------------------------------------------------- the action queue */

/* multi-producer (API thread(s)), single-consumer (the VMM thread) */
struct api_queue {
	pthread_mutex_t lock;
	struct api_action *head, *tail;
	int efd; /* eventfd the VMM thread watches */
};

int api_queue_init(struct api_queue *q);
void api_queue_destroy(struct api_queue *q);

/* API thread: appends `a` and wakes the VMM thread; a->done is called later */
void api_queue_post(struct api_queue *q, struct api_action *a);

/* VMM thread: the next action or NULL (also drains the eventfd) */
struct api_action *api_queue_take(struct api_queue *q);

/*
 * {"fault_message": msg} as a malloc'd compact JSON text (free() it), the
 * body of every error answer. Bytes of `msg` that are not valid UTF-8 (a
 * path can hold anything) become '?'. NULL only when out of memory.
 */
char *api_fault_json(const char *msg);

/* ------------------------------------------------------------ the router */

/*
 * Finds the endpoint for `method` (e.g. "PUT") and `path` (e.g.
 * "/drives/rootfs", no query string) and parses `body` (`len` bytes, not
 * NUL-terminated; NULL or 0 for none) into `a`, which the caller zeroed.
 * Any thread; no global state; never crashes on any input.
 *   0        a->kind and a->u are filled (free with api_action_release)
 *   -ENOENT  unknown path (400, Firecracker's "Invalid request method
 *            and/or path: PUT pmem.")
 *   -ENOTSUP known path, method not served there (400, the same message)
 *   -EINVAL  bad path id, missing/extra body, bad JSON or field (400)
 *   -ENOMEM  out of memory (500)
 * On error `e` holds the fault_message and `a->u` owns nothing. In all
 * cases a->kind is the endpoint's action kind when the route alone names it
 * (for counting), or API_ACTION_COUNT when unknown or body-dependent
 * (/actions, /vm) and the body could not be parsed.
 */
int api_route(const char *method, const char *path, const char *body, size_t len,
              struct api_action *a, struct errbuf *e);

/* the HTTP status for an api_route() result (0 -> 200, -ENOMEM -> 500, else 400) */
int api_route_status(int ret);

/*
 * The methods served on `path`, as an Allow header value ("GET, PUT,
 * PATCH"), into buf; "" when the path is unknown. Returns buf. (Firecracker
 * sends no Allow header; this is for kiln's logs and tests.)
 */
const char *api_route_allow(const char *path, char *buf, size_t size);

/* -------------------------------------------------------------- metrics */

/*
 * Request counters, updated with relaxed atomics by whichever thread knows
 * the outcome: the API thread for requests it refuses itself (bad body,
 * unknown path, wrong method, too large), the server when an action
 * completes (fails = status >= 400). The VMM's metrics writer reads them.
 */
struct api_stats {
	uint64_t count[API_ACTION_COUNT];
	uint64_t fails[API_ACTION_COUNT];
	uint64_t not_found, bad_method, too_large, bad_request;
	uint64_t deprecated; /* answered requests that used a deprecated field */
};
extern struct api_stats api_stats;

/* ------------------------------------------------------------ the server */

struct api_server;

struct api_server_config {
	const char *socket_path;
	size_t max_payload; /* request body limit in bytes; 0: API_MAX_PAYLOAD_DEFAULT */
	struct api_queue *queue;
};

/*
 * Binds the unix socket (an existing socket file that nobody listens on is
 * removed as stale; a live one, or a non-socket file, is an error), and
 * starts serving on libmicrohttpd's own thread: parsed requests are posted
 * to cfg->queue, which must outlive the server. 0 / -errno with a message
 * ("socket PATH is in use by another process", "PATH exists and is not a
 * socket", ...).
 */
int api_server_start(const struct api_server_config *cfg, struct api_server **out,
                     struct errbuf *e);

/*
 * Stops serving: clients still waiting for an action get 503 "kiln is
 * shutting down" (their actions may still be in the queue: complete them
 * with done() as usual), then joins the thread and removes the socket file
 * if it is still the one we bound. NULL is a no-op.
 */
void api_server_stop(struct api_server *s);

#endif
