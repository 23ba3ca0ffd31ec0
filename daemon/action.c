// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/action.c: executes the API's actions on the VMM thread.
 *
 * One table says, for every action, in which VM states it is allowed and
 * which function carries it out; the refusal messages are Firecracker's.
 * Every action ends with a status (204, 200 + reply, or 400 + fault) and
 * its done() callback, so the API thread can answer the client.
 */
#define LOG_MODULE "api"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_PRE    (1u << VMM_NOT_STARTED)
#define S_RUN    (1u << VMM_RUNNING)
#define S_PAU    (1u << VMM_PAUSED)
#define S_HALT   (1u << VMM_HALTED)
#define S_ANY    (S_PRE | S_RUN | S_PAU | S_HALT)
#define S_BOOTED (S_RUN | S_PAU)

#define MSG_POST_BOOT "The requested operation is not supported after starting the microVM."
#define MSG_PRE_BOOT  "The requested operation is not supported before starting the microVM."

typedef int (*action_fn)(struct vmm *v, struct api_action *a, struct errbuf *e);

struct action_rule {
	unsigned allowed; /* S_* states in which the action may run */
	action_fn exec;   /* 0: 204 (or 200 if a->reply was set), -errno: 400 */
};

/* ------------------------------------------------------------ GETs */

static int do_get_info(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)e;
	/* vmm_version as Firecracker's (version checks read it), kiln's own beside it */
	a->reply = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id",
	                     v->opts.id ? v->opts.id : "anonymous-instance", "state",
	                     vmm_state_name(v->state), "vmm_version", API_FIRECRACKER_VERSION,
	                     "app_name", "kiln", "kiln_version", KILN_VERSION);
	return 0;
}

static int do_get_version(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)v;
	(void)e;
	/* Firecracker's FirecrackerVersion, and kiln's own version as an extra field */
	a->reply = json_pack("{s:s, s:s}", "firecracker_version", API_FIRECRACKER_VERSION,
	                     "kiln_version", KILN_VERSION);
	return 0;
}

static int do_get_vm_config(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)e;
	a->reply = cfg_to_json(&v->cfg);
	return a->reply ? 0 : -ENOMEM;
}

static int do_get_machine_config(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)e;
	json_t *all = cfg_to_json(&v->cfg);
	if (!all)
		return -ENOMEM;
	a->reply = json_incref(json_object_get(all, "machine-config"));
	json_decref(all);
	return a->reply ? 0 : -ENOMEM;
}

/* --------------------------------------------------- pre-boot configuration */

static int check_readable(const char *what, const char *path, struct errbuf *e)
{
	if (path && access(path, R_OK) != 0)
		return errf(e, errno, "The %s file cannot be opened: %s: %s", what, path,
		            strerror(errno));
	return 0;
}

static int do_put_boot_source(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	struct boot_source_cfg *b = &a->u.boot_source;
	int ret = check_readable("kernel", b->kernel_image_path, e);
	if (ret == 0)
		ret = check_readable("initrd", b->initrd_path, e);
	if (ret == 0 && b->boot_args && strlen(b->boot_args) >= BOOT_CMDLINE_MAX)
		ret = errf(e, EINVAL, "The kernel command line is too long: %zu bytes, at most %d",
		           strlen(b->boot_args), BOOT_CMDLINE_MAX - 1);
	if (ret < 0)
		return ret;
	boot_source_cfg_free(&v->cfg.boot_source);
	v->cfg.boot_source = *b; /* the config takes the strings */
	memset(b, 0, sizeof(*b));
	v->cfg.has_boot_source = true;
	return 0;
}

/*
 * machine-config's cpu_template and PUT /cpu-config share Firecracker's one
 * template slot: a body that names a cpu_template ("None" included)
 * replaces whichever was set, one without it keeps it (resources.rs,
 * MachineConfig::update).
 */
static void set_static_template(struct vmm *v, char *name)
{
	free(v->cfg.machine.cpu_template);
	v->cfg.machine.cpu_template = name;
	v->has_cpu_cfg = false;
}

static int do_put_machine_config(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	char *old = v->cfg.machine.cpu_template;

	(void)e;
	v->machine_set = true;
	v->cfg.machine = a->u.machine;
	v->cfg.machine.cpu_template = old;
	if (a->u.machine.cpu_template_set)
		set_static_template(v, a->u.machine.cpu_template);
	else
		free(a->u.machine.cpu_template);
	a->u.machine.cpu_template = NULL;
	return 0;
}

static int do_patch_machine_config(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	const struct machine_patch *p = &a->u.machine_patch;
	struct machine_cfg m = v->cfg.machine; /* the merged result, checked before it is kept */

	if (p->has_vcpu_count)
		m.vcpu_count = p->vcpu_count;
	if (p->has_mem_size_mib)
		m.mem_size_mib = p->mem_size_mib;
	if (p->has_smt)
		m.smt = p->smt;
	if (p->has_track_dirty_pages)
		m.track_dirty_pages = p->track_dirty_pages;
	if (p->has_huge_pages)
		m.huge_pages = p->huge_pages;
	/* the cross-field rules of Firecracker's VmConfig::update() */
	if (m.smt && m.vcpu_count > 1 && m.vcpu_count % 2)
		return errf(e, EINVAL,
		            "machine-config.vcpu_count must be 1 or an even number when smt is "
		            "enabled (got %u)",
		            m.vcpu_count);
	if (m.huge_pages == HUGE_PAGES_2M && m.mem_size_mib % 2)
		return errf(e, EINVAL,
		            "machine-config.mem_size_mib must be a multiple of 2 with huge_pages "
		            "\"2M\" (got %llu)",
		            (unsigned long long)m.mem_size_mib);
	if (p->has_cpu_template) {
		char *name = p->cpu_template[0] ? strdup(p->cpu_template) : NULL;
		if (p->cpu_template[0] && !name)
			return errf(e, ENOMEM, "out of memory");
		set_static_template(v, name);
		m.cpu_template = name;
	}
	v->cfg.machine = m;
	v->machine_set = true;
	return 0;
}

static int do_put_cpu_config(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)e;
	v->cpu_cfg = a->u.cpu_config;
	/* a custom template replaces a static one (Firecracker's set_custom_cpu_template) */
	free(v->cfg.machine.cpu_template);
	v->cfg.machine.cpu_template = NULL;
	v->has_cpu_cfg = true;
	return 0;
}

/* index of the entry with `id` in a list of `n` ids spaced `stride` bytes apart, or n */
static unsigned find_id(const char *first_id, size_t stride, unsigned n, const char *id)
{
	for (unsigned i = 0; i < n; i++)
		if (strcmp(first_id + i * stride, id) == 0)
			return i;
	return n;
}

/*
 * PUT /drives/{id}: adds or replaces the drive. The cross-resource rules
 * are the config file's (cfg_validate), checked on the configuration as it
 * would be; the root drive is kept first, as Firecracker orders them.
 */
static int do_put_drive(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	struct vm_config *c = &v->cfg;
	struct drive_cfg *d = &a->u.drive;
	unsigned i =
	        find_id(c->drives[0].drive_id, sizeof(c->drives[0]), c->nr_drives, d->drive_id);
	int ret = check_readable("drive", d->path_on_host, e);
	if (ret < 0)
		return ret;
	if (i == CFG_MAX_DRIVES)
		return errf(e, ENOSPC, "at most %d drives are supported", CFG_MAX_DRIVES);
	struct vm_config cand = *c; /* shallow: only read by cfg_validate */
	cand.drives[i] = *d;
	cand.nr_drives += i == c->nr_drives;
	if ((ret = cfg_validate(&cand, e)) < 0)
		return ret;
	if (i < c->nr_drives)
		drive_cfg_free(&c->drives[i]);
	c->drives[i] = *d;
	c->nr_drives = cand.nr_drives;
	memset(d, 0, sizeof(*d));
	cfg_root_drive_first(c);
	return 0;
}

/* PUT /network-interfaces/{id}: adds or replaces the interface (cfg_validate's rules) */
static int do_put_net(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	struct vm_config *c = &v->cfg;
	struct net_cfg *n = &a->u.net;
	unsigned i = find_id(c->nets[0].iface_id, sizeof(c->nets[0]), c->nr_nets, n->iface_id);
	int ret;

	if (i == CFG_MAX_NETS)
		return errf(e, ENOSPC, "at most %d network interfaces are supported", CFG_MAX_NETS);
	struct vm_config cand = *c;
	cand.nets[i] = *n;
	cand.nr_nets += i == c->nr_nets;
	if ((ret = cfg_validate(&cand, e)) < 0)
		return ret;
	if (i < c->nr_nets)
		net_cfg_free(&c->nets[i]);
	c->nets[i] = *n;
	c->nr_nets = cand.nr_nets;
	memset(n, 0, sizeof(*n));
	return 0;
}

static int do_put_vsock(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)e;
	free(v->cfg.vsock.uds_path);
	v->cfg.vsock = a->u.vsock;
	v->cfg.vsock.set = true;
	a->u.vsock.uds_path = NULL;
	return 0;
}

static int do_put_entropy(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)e;
	v->cfg.entropy = a->u.entropy;
	v->cfg.entropy.set = true;
	return 0;
}

/*
 * PUT /serial: the guest's serial output goes to serial_out_path from the
 * boot (or restore) on, or back to stdout without one, limited by its
 * rate_limiter (bytes past it are dropped, as Firecracker's). Opened as
 * Firecracker's open_file_nonblock() does (created, read-write so that a
 * named pipe opens without a reader, non-blocking), and appended to.
 */
static int do_put_serial(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	const char *path = a->u.serial.serial_out_path;
	int fd = STDOUT_FILENO;

	if (path) {
		fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC, 0644);
		if (fd < 0)
			return errf(e, errno, "The serial output file cannot be opened: %s: %s",
			            path, strerror(errno));
	}
	if (v->serial_out_fd >= 0 && v->serial_out_fd != STDOUT_FILENO)
		close(v->serial_out_fd);
	v->serial_out_fd = fd;
	v->serial_limit = a->u.serial.rate_limiter;
	return 0;
}

/* PUT /balloon: Firecracker's rule, the balloon never larger than guest memory */
static int do_put_balloon(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	if (a->u.balloon.amount_mib > v->cfg.machine.mem_size_mib)
		return errf(e, EINVAL, "Amount of pages requested is too large.");
	v->cfg.balloon = a->u.balloon;
	v->cfg.balloon.set = true;
	v->cfg.balloon.acknowledge_on_stop = false;
	return 0;
}

static int do_get_balloon(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	if (!v->cfg.balloon.set)
		return errf(e, ENOENT, "No balloon device found.");
	json_t *all = cfg_to_json(&v->cfg);
	a->reply = all ? json_incref(json_object_get(all, "balloon")) : NULL;
	json_decref(all);
	return a->reply ? 0 : -ENOMEM;
}

static int do_put_logger(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	int ret = vmm_apply_logger(&a->u.logger, e);
	if (ret < 0)
		return ret;
	free(v->cfg.logger.log_path);
	free(v->cfg.logger.module);
	v->cfg.logger = a->u.logger;
	v->cfg.logger.set = true;
	memset(&a->u.logger, 0, sizeof(a->u.logger));
	return 0;
}

static int do_put_metrics(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	if (v->metrics_fd >= 0)
		return errf(e, EALREADY, "Reinitialization of metrics not allowed.");
	int ret = vmm_metrics_open(v, a->u.metrics.metrics_path, e);
	if (ret < 0)
		return ret;
	free(v->cfg.metrics.metrics_path);
	json_decref(v->cfg.metrics.properties);
	v->cfg.metrics = a->u.metrics;
	v->cfg.metrics.set = true;
	a->u.metrics.metrics_path = NULL;
	a->u.metrics.properties = NULL;
	return 0;
}

/* ------------------------------------------------------------- actions */

static int do_instance_start(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)a;
	return vmm_start(v, e);
}

static int do_ctrl_alt_del(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)a;
	int ret = i8042_send_ctrl_alt_del(&v->i8042);
	if (ret < 0)
		return errf(e, -ret, "the keyboard buffer is full; try again");
	return 0;
}

/* after the boot; without a metrics sink it writes nothing and succeeds, as Firecracker's */
static int do_flush_metrics(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)a;
	if (v->metrics_fd < 0)
		return 0;
	return vmm_metrics_flush(v, e);
}

/* idempotent, as Firecracker's vCPU state machine answers a second Pause */
static int do_pause(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)a;
	if (v->state == VMM_PAUSED)
		return 0;
	return vmm_pause(v, e);
}

static int do_resume(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)a;
	if (v->state == VMM_RUNNING)
		return 0;
	return vmm_resume(v, e);
}

static struct drive_cfg *find_drive(struct vmm *v, const char *id)
{
	struct vm_config *c = &v->cfg;
	unsigned i = find_id(c->drives[0].drive_id, sizeof(c->drives[0]), c->nr_drives, id);
	return i < c->nr_drives ? &c->drives[i] : NULL;
}

static struct net_cfg *find_net(struct vmm *v, const char *id)
{
	struct vm_config *c = &v->cfg;
	unsigned i = find_id(c->nets[0].iface_id, sizeof(c->nets[0]), c->nr_nets, id);
	return i < c->nr_nets ? &c->nets[i] : NULL;
}

/*
 * A PATCHed rate limiter's buckets that the body left out take their
 * current settings (Firecracker's BucketUpdate::None), so that the device
 * and the config keep them.
 */
static void rl_keep_absent(struct rate_limiter_cfg *patch, const struct rl_given *given,
                           const struct rate_limiter_cfg *now)
{
	if (!given->bandwidth)
		patch->bandwidth = now->bandwidth;
	if (!given->ops)
		patch->ops = now->ops;
}

/* PATCH /drives/{id}: a new backing file and/or rate limiter, kept in the config too */
static int do_patch_drive(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	struct drive_patch *p = &a->u.drive_patch;
	struct drive_cfg *d = find_drive(v, p->drive_id);
	if (!d)
		return errf(e, ENOENT, "no drive with id %s", p->drive_id);
	if (p->has_rate_limiter)
		rl_keep_absent(&p->rate_limiter, &p->given, &d->rate_limiter);
	int ret = vmm_devices_patch_drive(v, p, e);
	if (ret < 0)
		return ret;
	if (p->path_on_host) {
		free(d->path_on_host);
		d->path_on_host = p->path_on_host;
		p->path_on_host = NULL;
	}
	if (p->has_rate_limiter)
		d->rate_limiter = p->rate_limiter;
	return 0;
}

/* PATCH /network-interfaces/{id}: new rate limiters, kept in the config too */
static int do_patch_net(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	struct net_patch *p = &a->u.net_patch;
	struct net_cfg *n = find_net(v, p->iface_id);
	if (!n)
		return errf(e, ENOENT, "no network interface with id %s", p->iface_id);
	if (p->has_rx)
		rl_keep_absent(&p->rx_rate_limiter, &p->rx_given, &n->rx_rate_limiter);
	if (p->has_tx)
		rl_keep_absent(&p->tx_rate_limiter, &p->tx_given, &n->tx_rate_limiter);
	int ret = vmm_devices_patch_net(v, p, e);
	if (ret < 0)
		return ret;
	if (p->has_rx)
		n->rx_rate_limiter = p->rx_rate_limiter;
	if (p->has_tx)
		n->tx_rate_limiter = p->tx_rate_limiter;
	return 0;
}

static int do_snapshot_create(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	return vmm_snapshot_create(v, &a->u.snapshot_create, e);
}

static int do_snapshot_load(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	if (v->configured)
		return errf(e, EINVAL,
		            "Loading a microVM snapshot not allowed after configuring "
		            "boot-specific resources.");
	return vmm_snapshot_load(v, &a->u.snapshot_load, e);
}

static int do_get_migration(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)e;
	a->reply = vmm_migration_status(v);
	return a->reply ? 0 : -ENOMEM;
}

static int do_migration_send(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	return vmm_migration_send(v, &a->u.migration_send, e);
}

static int do_migration_receive(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	if (v->configured && !v->machine_set && !v->has_cpu_cfg)
		return errf(e, EINVAL,
		            "a migration target takes its configuration from the source");
	return vmm_migration_receive(v, &a->u.migration_receive, e);
}

static int do_migration_cancel(struct vmm *v, struct api_action *a, struct errbuf *e)
{
	(void)a;
	return vmm_migration_cancel(v, e);
}

static const struct action_rule rules[API_ACTION_COUNT] = {
        [API_GET_INFO] = {S_ANY, do_get_info},
        [API_GET_VERSION] = {S_ANY, do_get_version},
        [API_GET_VM_CONFIG] = {S_ANY, do_get_vm_config},
        [API_GET_MACHINE_CONFIG] = {S_ANY, do_get_machine_config},
        [API_PUT_BOOT_SOURCE] = {S_PRE, do_put_boot_source},
        [API_PUT_MACHINE_CONFIG] = {S_PRE, do_put_machine_config},
        [API_PATCH_MACHINE_CONFIG] = {S_PRE, do_patch_machine_config},
        [API_PUT_CPU_CONFIG] = {S_PRE, do_put_cpu_config},
        [API_PUT_DRIVE] = {S_PRE, do_put_drive},
        [API_PATCH_DRIVE] = {S_BOOTED, do_patch_drive},
        [API_PUT_NET] = {S_PRE, do_put_net},
        [API_PATCH_NET] = {S_BOOTED, do_patch_net},
        [API_PUT_VSOCK] = {S_PRE, do_put_vsock},
        [API_PUT_ENTROPY] = {S_PRE, do_put_entropy},
        [API_PUT_BALLOON] = {S_PRE, do_put_balloon},
        [API_GET_BALLOON] = {S_ANY, do_get_balloon},
        [API_PATCH_BALLOON] = {S_BOOTED, vmm_balloon_action},
        [API_GET_BALLOON_STATS] = {S_BOOTED, vmm_balloon_action},
        [API_PATCH_BALLOON_STATS] = {S_BOOTED, vmm_balloon_action},
        [API_BALLOON_HINT_START] = {S_BOOTED, vmm_balloon_action},
        [API_BALLOON_HINT_STATUS] = {S_BOOTED, vmm_balloon_action},
        [API_BALLOON_HINT_STOP] = {S_BOOTED, vmm_balloon_action},
        /* Firecracker configures logging and metrics before the boot only */
        [API_PUT_LOGGER] = {S_PRE, do_put_logger},
        [API_PUT_METRICS] = {S_PRE, do_put_metrics},
        [API_INSTANCE_START] = {S_PRE, do_instance_start},
        /* while paused the keys wait in the i8042's buffer for the resume */
        [API_SEND_CTRL_ALT_DEL] = {S_BOOTED, do_ctrl_alt_del},
        [API_FLUSH_METRICS] = {S_BOOTED | S_HALT, do_flush_metrics},
        [API_PAUSE] = {S_BOOTED, do_pause},
        [API_RESUME] = {S_BOOTED, do_resume},
        [API_SNAPSHOT_CREATE] = {S_PAU, do_snapshot_create},
        [API_SNAPSHOT_LOAD] = {S_PRE, do_snapshot_load},
        [API_GET_MIGRATION] = {S_ANY, do_get_migration},
        [API_MIGRATION_SEND] = {S_BOOTED, do_migration_send},
        [API_MIGRATION_RECEIVE] = {S_PRE, do_migration_receive},
        [API_MIGRATION_CANCEL] = {S_ANY, do_migration_cancel},
        [API_GET_MMDS] = {S_ANY & ~S_HALT, vmm_mmds_get},
        [API_PUT_MMDS] = {S_ANY & ~S_HALT, vmm_mmds_put},
        [API_PATCH_MMDS] = {S_ANY & ~S_HALT, vmm_mmds_patch},
        [API_PUT_MMDS_CONFIG] = {S_PRE, vmm_mmds_config},
        [API_PUT_SERIAL] = {S_PRE, do_put_serial},
};

/* what may run beside a migration: reading, logging and metrics, the cancel */
static bool allowed_while_migrating(enum api_action_kind k)
{
	switch (k) {
	case API_GET_INFO:
	case API_GET_VERSION:
	case API_GET_VM_CONFIG:
	case API_GET_MACHINE_CONFIG:
	case API_PUT_LOGGER:
	case API_PUT_METRICS:
	case API_FLUSH_METRICS:
	case API_GET_MIGRATION:
	case API_MIGRATION_CANCEL:
		return true;
	default:
		return false;
	}
}

/* the pre-boot resources after which a snapshot can no longer be loaded */
static bool configures(enum api_action_kind k)
{
	switch (k) {
	case API_PUT_BOOT_SOURCE:
	case API_PUT_MACHINE_CONFIG:
	case API_PATCH_MACHINE_CONFIG:
	case API_PUT_CPU_CONFIG:
	case API_PUT_DRIVE:
	case API_PUT_NET:
	case API_PUT_VSOCK:
	case API_PUT_ENTROPY:
	case API_PUT_BALLOON:
	case API_PUT_MMDS_CONFIG:
		return true;
	default:
		return false;
	}
}

/* the refusal for an action not allowed in the current state */
static void refuse(struct vmm *v, const struct action_rule *r, struct errbuf *e)
{
	if (v->state == VMM_HALTED)
		errf(e, EINVAL, "The microVM has stopped: %s", v->stop_why);
	else if (v->state == VMM_NOT_STARTED)
		errf(e, EINVAL, MSG_PRE_BOOT);
	else if (r->allowed == S_PAU && v->state == VMM_RUNNING)
		errf(e, EINVAL, "The microVM is running; pause it first (PATCH /vm Paused).");
	else
		errf(e, EINVAL, MSG_POST_BOOT);
}

void vmm_execute(struct vmm *v, struct api_action *a)
{
	struct errbuf e = {{0}};
	const struct action_rule *r = a->kind < API_ACTION_COUNT ? &rules[a->kind] : NULL;
	uint64_t t0 = now_ns();
	int ret;

	if (!r || !r->exec) {
		ret = errf(&e, EINVAL, "unknown action");
	} else if (!(r->allowed & (1u << v->state))) {
		refuse(v, r, &e);
		ret = -EINVAL;
	} else if (vmm_migration_active(v) && !allowed_while_migrating(a->kind)) {
		ret = errf(&e, EBUSY, "a migration is in progress");
	} else {
		ret = r->exec(v, a, &e);
	}
	if (ret < 0) {
		a->status = ret == -EFBIG ? 413 : 400; /* only the MMDS store says EFBIG */
		if (!e.msg[0])
			snprintf(e.msg, sizeof(e.msg), "%s", strerror(-ret));
		snprintf(a->fault, sizeof(a->fault), "%s", e.msg);
		json_decref(a->reply);
		a->reply = NULL;
		log_warn("%s refused: %s", api_action_name(a->kind), e.msg);
	} else {
		a->status = a->reply ? 200 : 204;
		if (configures(a->kind))
			v->configured = true;
		log_info("%s done in %llu us", api_action_name(a->kind),
		         (unsigned long long)((now_ns() - t0) / 1000));
	}
	vmm_record_latency(v, a, now_ns() - t0);
}
