/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon: the VMM object, its state machine and the VMM thread's event loop.
 *
 * Threads: main() becomes the VMM thread; it owns `struct vmm` and is the
 * only thread that changes VM state. vCPU threads report to it through an
 * eventfd (vmm_on_stop); the API thread (api/) will post actions to it.
 */
#ifndef KILN_DAEMON_VMM_H
#define KILN_DAEMON_VMM_H

#include "api/api.h"
#include "api/config.h"
#include "devices/devices.h"
#include "memory/memory.h"
#include "vcpu/vcpu.h"

#include <sys/epoll.h>

/* process exit codes; 152/153 are Firecracker's for bad configuration/arguments */
#define KILN_EXIT_OK          0
#define KILN_EXIT_ERROR       1
#define KILN_EXIT_GUEST_CRASH 2
#define KILN_EXIT_BAD_CONFIG  152
#define KILN_EXIT_ARGS        153

/* ------------------------------------------------------------ event loop */

typedef void (*el_handler_fn)(void *opaque, uint32_t events);

struct el_source {
	int fd;
	el_handler_fn fn;
	void *opaque;
};

#define EL_MAX_SOURCES 32

/* a small epoll loop owned by the VMM thread */
struct event_loop {
	int epfd;
	struct el_source sources[EL_MAX_SOURCES];
	bool quit;
};

int el_init(struct event_loop *l);
void el_destroy(struct event_loop *l);
/* watches `fd` for `events` (EPOLLIN ...); `fn` runs on the loop's thread */
int el_add(struct event_loop *l, int fd, uint32_t events, el_handler_fn fn, void *opaque);
int el_del(struct event_loop *l, int fd);
/* runs until el_quit(); returns 0, or -errno if epoll fails */
int el_run(struct event_loop *l);
void el_quit(struct event_loop *l);

/* ------------------------------------------------------ virtio devices */

struct virtio_mmio;

enum vmm_dev_kind { VDEV_BLK, VDEV_NET, VDEV_VSOCK, VDEV_RNG, VDEV_BALLOON };

/* one virtio device of the VM and where it sits */
struct vmm_dev {
	enum vmm_dev_kind kind;
	char id[CFG_ID_MAX + 1];
	void *impl;               /* struct virtio_blk / _net / _vsock / _rng */
	struct virtio_mmio *mmio; /* its transport */
	uint64_t base;            /* MMIO window */
	uint32_t gsi;             /* interrupt line */
};

#define VMM_VIRTIO_BASE 0xd0000000ull
#define VMM_VIRTIO_GSI0 5
#define VMM_MAX_DEVS    19 /* GSIs 5 .. 23 */

/* ----------------------------------------------------------------- VMM */

/* the states GET / reports, in Firecracker's words */
enum vmm_state {
	VMM_NOT_STARTED, /* "Not started" */
	VMM_RUNNING,     /* "Running" */
	VMM_PAUSED,      /* "Paused" */
	VMM_HALTED,      /* the guest ended (reset, shutdown or crash) */
};

const char *vmm_state_name(enum vmm_state s);

struct vmm_options {
	const char *id;         /* instance id, default "anonymous-instance" */
	const char *serial_out; /* NULL: stdout */
	bool boot_timer;        /* attach the boot-timer device (--boot-timer) */
	bool exit_on_halt;      /* leave the event loop when the guest ends */
	/*
	 * What a jailer passes (--start-time-us, --start-time-cpu-us,
	 * --parent-cpu-time-us): the CLOCK_MONOTONIC time and this process's
	 * CPU time when the launch began, and the CPU time a parent spent
	 * before forking this process; -1 when not given. They turn into the
	 * api_server.process_startup_time_us / _cpu_us metrics.
	 */
	int64_t start_time_us, start_time_cpu_us, parent_cpu_time_us;
	size_t mmds_size_limit; /* --mmds-size-limit; 0: MMDS_DEFAULT_SIZE_LIMIT */
};

struct vmm {
	struct vmm_options opts;
	struct vm_config cfg;
	enum vmm_state state;

	struct kvm kvm;
	struct guest_mem mem;
	struct vm vm;
	struct boot_info boot;
	bool kvm_open, mem_init, vm_created;

	struct vmm_dev devs[VMM_MAX_DEVS];
	unsigned nr_devs;

	struct serial serial;
	struct i8042 i8042;
	struct boot_timer boot_timer;
	int serial_out_fd;
	/* PUT /serial's rate_limiter (bytes), applied whenever the UART is made */
	struct token_bucket_cfg serial_limit;

	struct event_loop loop;
	int stop_efd;  /* vCPU threads and devices write here to stop the VM */
	int signal_fd; /* SIGINT/SIGTERM */

	/* set once by the first stop request (any thread), read by the VMM thread */
	int stop_reason; /* enum vm_stop_reason, -1 while running */
	char stop_why[256];
	int exit_code;

	/* stdin -> serial: bytes read but not yet taken by the UART FIFO */
	uint8_t in_buf[256];
	size_t in_len, in_off;
	int in_timer_fd;
	bool stdin_watched, stdin_eof;
	uint64_t start_ns;              /* when InstanceStart began */
	char cmdline[BOOT_CMDLINE_MAX]; /* the guest's, devices' parameters included */
	bool configured; /* a pre-boot resource was set (snapshot/load refuses then) */

	/* Uffd memory backend: the page server's connection and the userfaultfd */
	int uffd_sock, uffd_fd;

	/* PUT /cpu-config, applied to every vCPU at InstanceStart */
	struct cpu_config cpu_cfg;
	bool has_cpu_cfg;

	/* the API: actions arrive on queue.efd */
	struct api_queue queue;
	bool queue_init;
	struct api_server *server;
	uint64_t api_ready_ns;     /* CLOCK_MONOTONIC when the API listened (0: no API) */
	uint64_t api_ready_cpu_ns; /* this process's CPU time then */

	/* live migration (daemon/migration.c), NULL until the first one */
	struct vmm_migration *mig;
	bool machine_set; /* PUT/PATCH /machine-config: a target checks the source against it */

	/* the MMDS data store (daemon/mmds_api.c); used: Firecracker would have made one */
	struct mmds mmds;
	bool mmds_used;

	/* metrics sink (PUT /metrics), -1 when not configured */
	int metrics_fd, metrics_timer_fd;
	uint64_t lat_boot_us, lat_pause_us, lat_resume_us, lat_snap_create_us, lat_snap_load_us;
};

/*
 * Prepares an empty VMM (no KVM work) with default configuration and its
 * event loop, signalfd and stop eventfd. SIGINT/SIGTERM must already be
 * blocked in the calling thread. 0 / -errno.
 */
int vmm_init(struct vmm *v, const struct vmm_options *opts, struct errbuf *e);

/*
 * InstanceStart: opens KVM, maps memory, creates the VM and vCPUs, attaches
 * devices, loads the kernel and starts the vCPUs. Only in VMM_NOT_STARTED.
 * On failure nothing is left half built: the VMM stays NOT_STARTED.
 */
int vmm_start(struct vmm *v, struct errbuf *e);

/* how vmm_build gets guest memory */
enum vmm_mem_backing {
	VMM_MEM_ANON,     /* fresh anonymous RAM (InstanceStart) */
	VMM_MEM_SNAPSHOT, /* the snapshot's memory file, copy-on-write */
	VMM_MEM_UFFD,     /* anonymous RAM served by a page server over userfaultfd */
};

struct vmm_build {
	enum vmm_mem_backing backing;
	const char *mem_path; /* memory file, or the page server's socket */
	/* a boot with machine-config's cpu_template: its modifiers (vmm_cpu_template) */
	const struct cpu_config *cpu_template;
};

/*
 * Builds the machine from v->cfg without booting it: KVM, memory, the VM,
 * legacy devices, vCPUs (not running), virtio devices, v->cmdline. On
 * failure everything built is released again (vmm_unbuild). VMM thread.
 */
int vmm_build(struct vmm *v, const struct vmm_build *b, struct errbuf *e);
void vmm_unbuild(struct vmm *v);

/* starts a built VM's threads parked: state Paused. 0 / -errno. */
int vmm_start_paused(struct vmm *v, struct errbuf *e);

/* snapshots (daemon/snapshot.c): create only while Paused, load only on a fresh kiln */
int vmm_snapshot_create(struct vmm *v, const struct snapshot_create_req *req, struct errbuf *e);
int vmm_snapshot_load(struct vmm *v, const struct snapshot_load_req *req, struct errbuf *e);

/* the Uffd backend (daemon/uffd.c): registers guest RAM with a new
 * userfaultfd and hands it with the layout to the page server at `sock` */
int vmm_uffd_attach(struct vmm *v, const char *sock, struct errbuf *e);
void vmm_uffd_close(struct vmm *v);

/* Pauses / resumes the vCPUs (RUNNING <-> PAUSED). 0 / -errno. */
int vmm_pause(struct vmm *v, struct errbuf *e);
int vmm_resume(struct vmm *v, struct errbuf *e);

/* Runs the event loop until the VM halts (exit_on_halt) or a signal. */
int vmm_run(struct vmm *v);

/* Stops everything and releases all resources. */
void vmm_destroy(struct vmm *v);

/* for vCPU threads and devices: ask the VMM thread to stop the VM (first caller wins) */
void vmm_request_stop(struct vmm *v, enum vm_stop_reason reason, const char *why);

/* ------------------------------------------------------------- actions */

/*
 * Executes one API action on the VMM thread (state table in action.c) and
 * sets its status, reply or fault; the caller then calls a->done(a).
 */
void vmm_execute(struct vmm *v, struct api_action *a);

/* Starts the API server on `sock_path` and watches its queue. 0 / -errno. */
int vmm_serve_api(struct vmm *v, const char *sock_path, size_t max_payload, struct errbuf *e);

/* ------------------------------------------------------ live migration */

struct migration_send_req;
struct migration_receive_req;
/* PUT /migration/send: connects, builds the handshake, turns dirty logging
 * on and starts the sending thread. Running or Paused. 0 / -errno */
int vmm_migration_send(struct vmm *v, const struct migration_send_req *req, struct errbuf *e);
/* PUT /migration/receive: listens and starts the receiving thread; takes
 * req's strings. Not started. 0 / -errno */
int vmm_migration_receive(struct vmm *v, struct migration_receive_req *req, struct errbuf *e);
/* PUT /migration/cancel: before the point of no return only. 0 / -errno */
int vmm_migration_cancel(struct vmm *v, struct errbuf *e);
/* GET /migration's body and the metrics' "migration" object (new reference) */
json_t *vmm_migration_status(const struct vmm *v);
/* a migration thread is at work */
bool vmm_migration_active(const struct vmm *v);
/* stops a migration in progress (as a cancel) and frees it */
void vmm_migration_destroy(struct vmm *v);
/* the target runs the guest now: this kiln halts and exits 0 */
void vmm_migrated_away(struct vmm *v, const char *peer);
/* a received migration failed after its handshake: unbuilt, exits with an error */
void vmm_migration_failed(struct vmm *v, const char *why);

/* ----------------------------------------------------- logger, metrics */

/* applies a "logger" section / PUT /logger body. 0 / -errno */
int vmm_apply_logger(const struct logger_cfg *l, struct errbuf *e);
/* opens the metrics sink (file or named pipe) and starts the 60 s timer */
int vmm_metrics_open(struct vmm *v, const char *path, struct errbuf *e);
/* writes one metrics line now */
int vmm_metrics_flush(struct vmm *v, struct errbuf *e);
void vmm_metrics_close(struct vmm *v);
/* VMM thread: how long action `a` took, for the metrics' latencies_us */
void vmm_record_latency(struct vmm *v, const struct api_action *a, uint64_t ns);

/* ------------------------------------------------------------- devices */

/*
 * Creates every configured virtio device, places it on the MMIO bus and
 * appends the root drive's "root=" parameters to `cmdline` (`size` bytes),
 * and each device's "virtio_mmio.device=" when `cmdline` has acpi=off
 * (virtio_mmio_cmdline_add: with ACPI the DSDT announces them). 0 / -errno
 * with a message; on failure the devices made so far stay for
 * vmm_devices_destroy. VMM thread.
 */
int vmm_devices_attach(struct vmm *v, char *cmdline, size_t size, struct errbuf *e);
/* fills `out` with each attached device's window and GSI for the DSDT: how many */
unsigned vmm_devices_acpi(const struct vmm *v, struct boot_acpi_virtio out[VMM_MAX_DEVS]);
void vmm_devices_destroy(struct vmm *v);
/* parks / restarts every device's I/O thread (after / before the vCPUs) */
int vmm_devices_pause(struct vmm *v, struct errbuf *e);
void vmm_devices_resume(struct vmm *v);
/* PATCH /drives/{id} and /network-interfaces/{id} on the running devices */
int vmm_devices_patch_drive(struct vmm *v, const struct drive_patch *p, struct errbuf *e);
int vmm_devices_patch_net(struct vmm *v, const struct net_patch *p, struct errbuf *e);
/*
 * The balloon's API actions on the running device (daemon/devices.c):
 * PATCH /balloon and /balloon/statistics, GET /balloon/statistics and
 * the hinting endpoints; a->reply set for the GETs. -ENOENT without a
 * balloon, -ENOTSUP when the feature is off (both 400). VMM thread.
 */
int vmm_balloon_action(struct vmm *v, struct api_action *a, struct errbuf *e);
/* the devices' counters for the metrics line (new reference) */
json_t *vmm_devices_metrics(const struct vmm *v);

/* ---------------------------------------------------------------- MMDS */

/* the MMDS actions (daemon/mmds_api.c); -EFBIG: the store would pass its limit (413) */
int vmm_mmds_get(struct vmm *v, struct api_action *a, struct errbuf *e);
int vmm_mmds_put(struct vmm *v, struct api_action *a, struct errbuf *e);
int vmm_mmds_patch(struct vmm *v, struct api_action *a, struct errbuf *e);
int vmm_mmds_config(struct vmm *v, struct api_action *a, struct errbuf *e);
/* --metadata FILE: the store's first content (before the config file). 0 / -errno */
int vmm_mmds_load(struct vmm *v, const char *path, struct errbuf *e);
/* a config file's mmds-config into the store (version, imds_compat) */
void vmm_mmds_apply_config(struct vmm *v);

/* applies PUT /cpu-config's modifiers to a created vCPU (before it runs) */
int vmm_apply_cpu_config(struct vcpu *vc, const struct cpu_config *c, struct errbuf *e);
/*
 * machine-config's static cpu_template `name` ("C3", "T2", "T2S", "T2CL",
 * "T2A") as modifiers in *out, if a host whose leaf 0x0 signature and leaf
 * 0x1 EAX are given may use it; else -EINVAL with Firecracker's words
 * ("Failed to get CPU template: CPU vendor mismatched ..." or "... CPU
 * model is not permitted ..."). Pure.
 */
int vmm_cpu_template_for(const char *name, const char signature[12], uint32_t leaf1_eax,
                         struct cpu_config *out, struct errbuf *e);
/*
 * v's static cpu_template for this host (vmm_cpu_template_for with the
 * host's CPUID), checked at InstanceStart as Firecracker does: 1 with *out
 * filled, 0 without a template, -EINVAL when this host may not use it.
 */
int vmm_cpu_template(const struct vmm *v, struct cpu_config *out, struct errbuf *e);

#endif
