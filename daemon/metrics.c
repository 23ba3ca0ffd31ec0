// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/metrics.c: the logger and metrics sinks configured by flags, the
 * config file, PUT /logger and PUT /metrics. Metrics are one JSON object
 * per line, written every 60 s and on FlushMetrics, to a file or a named
 * pipe, like Firecracker's.
 *
 * The line carries Firecracker's groups and key names where Firecracker
 * has the metric (src/vmm/src/logger/metrics.rs; orchestrators such as
 * Kata parse them): api_server, get/put/patch_api_requests, deprecated_api,
 * latencies_us, logger, seccomp, vcpu, uart, block and block_<id>, net and
 * net_<id>. As Firecracker's SharedIncMetric, each counter of those groups
 * is the count since the previous line; latencies (SharedStoreMetric) are
 * the last value. kiln's own groups beside them (api_requests, devices,
 * migration) hold totals since the process started.
 */
#define LOG_MODULE "metrics"
#include "vmm.h"
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define METRICS_PERIOD_S 60

int vmm_apply_logger(const struct logger_cfg *l, struct errbuf *e)
{
	if (l->log_path) {
		/* O_NONBLOCK so that a named pipe nobody reads cannot stall us at open */
		int fd = open(l->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK,
		              0644);
		if (fd < 0)
			return errf(e, errno, "cannot open the log file %s: %s", l->log_path,
			            strerror(errno));
		FILE *f = fdopen(fd, "a");
		if (!f) {
			close(fd);
			return errf(e, ENOMEM, "cannot open the log file %s", l->log_path);
		}
		setvbuf(f, NULL, _IOLBF, 0);
		log_set_file(f);
	}
	log_configure((enum log_level)l->level, l->show_level, l->show_log_origin, l->module);
	return 0;
}

static void on_metrics_timer(void *opaque, uint32_t events)
{
	struct vmm *v = opaque;
	uint64_t ticks;
	struct errbuf e;
	(void)events;
	if (read(v->metrics_timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	if (vmm_metrics_flush(v, &e) < 0)
		log_warn("periodic metrics flush failed: %s", e.msg);
}

int vmm_metrics_open(struct vmm *v, const char *path, struct errbuf *e)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0)
		return errf(e, errno, "cannot open the metrics file %s: %s", path, strerror(errno));
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_value.tv_sec = METRICS_PERIOD_S,
	                         .it_interval.tv_sec = METRICS_PERIOD_S};
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0 ||
	    el_add(&v->loop, tfd, EPOLLIN, on_metrics_timer, v) < 0) {
		int err = errno ? errno : ENOSPC;
		if (tfd >= 0)
			close(tfd);
		close(fd);
		return errf(e, err, "cannot start the metrics timer: %s", strerror(err));
	}
	v->metrics_fd = fd;
	v->metrics_timer_fd = tfd;
	return 0;
}

/* the last Full and Diff snapshot creations, apart (Firecracker's two latencies) */
static uint64_t lat_full_us, lat_diff_us;
/* metrics lines that could not be written (Firecracker's logger.metrics_fails) */
static uint64_t metrics_fails;

void vmm_record_latency(struct vmm *v, const struct api_action *a, uint64_t ns)
{
	switch (a->kind) {
	case API_INSTANCE_START:
		v->lat_boot_us = ns / 1000;
		break;
	case API_PAUSE:
		v->lat_pause_us = ns / 1000;
		break;
	case API_RESUME:
		v->lat_resume_us = ns / 1000;
		break;
	case API_SNAPSHOT_CREATE:
		v->lat_snap_create_us = ns / 1000;
		if (a->u.snapshot_create.type == API_SNAPSHOT_DIFF)
			lat_diff_us = ns / 1000;
		else
			lat_full_us = ns / 1000;
		break;
	case API_SNAPSHOT_LOAD:
		v->lat_snap_load_us = ns / 1000;
		break;
	default:
		break;
	}
}

/* ------------------------------------------- Firecracker's counter groups */

static uint64_t load(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* requests of up to three kinds (API_ACTION_COUNT ends the list), or their failures */
struct fc_req {
	const char *group, *key;
	bool fails;
	enum api_action_kind kinds[3];
};

#define END API_ACTION_COUNT
/* Firecracker's Get/Put/PatchRequestsMetrics, as kiln's actions count them */
static const struct fc_req fc_reqs[] = {
        {"get_api_requests", "instance_info_count", false, {API_GET_INFO, END}},
        {"get_api_requests", "machine_cfg_count", false, {API_GET_MACHINE_CONFIG, END}},
        {"get_api_requests", "mmds_count", false, {API_GET_MMDS, END}},
        {"get_api_requests", "vmm_version_count", false, {API_GET_VERSION, END}},
        {"put_api_requests",
         "actions_count",
         false,
         {API_INSTANCE_START, API_SEND_CTRL_ALT_DEL, API_FLUSH_METRICS}},
        {"put_api_requests",
         "actions_fails",
         true,
         {API_INSTANCE_START, API_SEND_CTRL_ALT_DEL, API_FLUSH_METRICS}},
        {"put_api_requests", "boot_source_count", false, {API_PUT_BOOT_SOURCE, END}},
        {"put_api_requests", "boot_source_fails", true, {API_PUT_BOOT_SOURCE, END}},
        {"put_api_requests", "drive_count", false, {API_PUT_DRIVE, END}},
        {"put_api_requests", "drive_fails", true, {API_PUT_DRIVE, END}},
        {"put_api_requests", "logger_count", false, {API_PUT_LOGGER, END}},
        {"put_api_requests", "logger_fails", true, {API_PUT_LOGGER, END}},
        {"put_api_requests", "machine_cfg_count", false, {API_PUT_MACHINE_CONFIG, END}},
        {"put_api_requests", "machine_cfg_fails", true, {API_PUT_MACHINE_CONFIG, END}},
        {"put_api_requests", "cpu_cfg_count", false, {API_PUT_CPU_CONFIG, END}},
        {"put_api_requests", "cpu_cfg_fails", true, {API_PUT_CPU_CONFIG, END}},
        {"put_api_requests", "metrics_count", false, {API_PUT_METRICS, END}},
        {"put_api_requests", "metrics_fails", true, {API_PUT_METRICS, END}},
        {"put_api_requests", "network_count", false, {API_PUT_NET, END}},
        {"put_api_requests", "network_fails", true, {API_PUT_NET, END}},
        {"put_api_requests", "mmds_count", false, {API_PUT_MMDS, API_PUT_MMDS_CONFIG, END}},
        {"put_api_requests", "mmds_fails", true, {API_PUT_MMDS, API_PUT_MMDS_CONFIG, END}},
        {"put_api_requests", "vsock_count", false, {API_PUT_VSOCK, END}},
        {"put_api_requests", "vsock_fails", true, {API_PUT_VSOCK, END}},
        {"put_api_requests", "serial_count", false, {API_PUT_SERIAL, END}},
        {"put_api_requests", "serial_fails", true, {API_PUT_SERIAL, END}},
        {"patch_api_requests", "drive_count", false, {API_PATCH_DRIVE, END}},
        {"patch_api_requests", "drive_fails", true, {API_PATCH_DRIVE, END}},
        {"patch_api_requests", "network_count", false, {API_PATCH_NET, END}},
        {"patch_api_requests", "network_fails", true, {API_PATCH_NET, END}},
        {"patch_api_requests", "machine_cfg_count", false, {API_PATCH_MACHINE_CONFIG, END}},
        {"patch_api_requests", "machine_cfg_fails", true, {API_PATCH_MACHINE_CONFIG, END}},
        {"patch_api_requests", "mmds_count", false, {API_PATCH_MMDS, END}},
        {"patch_api_requests", "mmds_fails", true, {API_PATCH_MMDS, END}},
};
#undef END

/* Firecracker's VcpuMetrics.failures and kiln's exit counts by KVM exit reason */
static const struct {
	const char *key;
	int reason[2]; /* -1: none */
} fc_vcpu[] = {
        {"failures", {KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_FAIL_ENTRY}},
        {"exit_io", {KVM_EXIT_IO, -1}},
        {"exit_mmio", {KVM_EXIT_MMIO, -1}},
        {"exit_hlt", {KVM_EXIT_HLT, -1}},
        {"exit_shutdown", {KVM_EXIT_SHUTDOWN, -1}},
        {"exit_internal_error", {KVM_EXIT_INTERNAL_ERROR, -1}},
        {"exit_fail_entry", {KVM_EXIT_FAIL_ENTRY, -1}},
        {"exit_system_event", {KVM_EXIT_SYSTEM_EVENT, -1}},
        {"exit_intr", {KVM_EXIT_INTR, -1}},
};

/*
 * The totals behind each delta, as of the previous line. Only the VMM
 * thread writes metrics lines, so these need no lock.
 */
static uint64_t last_req[ARRAY_SIZE(fc_reqs)], last_vcpu[ARRAY_SIZE(fc_vcpu)];
static uint64_t last_deprecated, last_metrics_fails, last_uart_tx, last_uart_dropped,
        last_uart_limited;
static json_t *last_devices; /* the previous "devices" object (totals) */

/* now - *last, and *last = now (a total that went back, e.g. a device replaced: now) */
static json_int_t delta(uint64_t now, uint64_t *last)
{
	uint64_t d = now >= *last ? now - *last : now;
	*last = now;
	return (json_int_t)d;
}

/* m[group][key] = v, making the group */
static void put(json_t *m, const char *group, const char *key, json_int_t v)
{
	json_t *g = json_object_get(m, group);
	if (!g) {
		g = json_object();
		json_object_set_new(m, group, g);
	}
	json_object_set_new(g, key, json_integer(v));
}

static void fc_requests(json_t *m)
{
	for (size_t i = 0; i < ARRAY_SIZE(fc_reqs); i++) {
		const struct fc_req *r = &fc_reqs[i];
		uint64_t total = 0;
		for (size_t k = 0; k < ARRAY_SIZE(r->kinds) && r->kinds[k] != API_ACTION_COUNT; k++)
			total += load(r->fails ? &api_stats.fails[r->kinds[k]]
			                       : &api_stats.count[r->kinds[k]]);
		put(m, r->group, r->key, delta(total, &last_req[i]));
	}
	put(m, "deprecated_api", "deprecated_http_api_calls",
	    delta(load(&api_stats.deprecated), &last_deprecated));
}

static void fc_vcpu_uart(json_t *m, const struct vmm *v)
{
	uint64_t total = 0;
	for (size_t r = 0; r < ARRAY_SIZE(v->vm.exit_counts); r++)
		total += load(&v->vm.exit_counts[r]);
	for (size_t i = 0; i < ARRAY_SIZE(fc_vcpu); i++) {
		uint64_t n = 0;
		for (size_t k = 0; k < 2 && fc_vcpu[i].reason[k] >= 0; k++)
			n += load(&v->vm.exit_counts[fc_vcpu[i].reason[k]]);
		put(m, "vcpu", fc_vcpu[i].key, delta(n, &last_vcpu[i]));
	}
	put(m, "vcpu", "exits_total", (json_int_t)total); /* kiln's: a total */
	/* Firecracker counts the guest's bytes out (write_count) and those lost */
	json_int_t tx = delta(load(&v->serial.tx_bytes), &last_uart_tx);
	put(m, "uart", "write_count", tx);
	put(m, "uart", "tx_bytes", tx);
	put(m, "uart", "missed_write_count",
	    delta(load(&v->serial.tx_dropped), &last_uart_dropped));
	put(m, "uart", "rate_limiter_dropped_bytes",
	    delta(load(&v->serial.tx_limited), &last_uart_limited));
}

/*
 * Firecracker's device groups from kiln's device totals, with Firecracker's
 * names and deltas since the previous line: the sums over the devices of a
 * kind ("block", "net", "vsock", "entropy", "balloon") and, for drives and
 * interfaces, one group each ("block_<id>", "net_<id>"), as Firecracker's.
 */
static const struct {
	const char *kiln_prefix, *fc_group;
	bool per_device;
	const char *names[8][2]; /* kiln's name, Firecracker's; NULL ends */
} fc_devs[] = {
        {"virtio-blk.",
         "block",
         true,
         {{"read_bytes", "read_bytes"},
          {"write_bytes", "write_bytes"},
          {"read_ops", "read_count"},
          {"write_ops", "write_count"},
          {"flush_ops", "flush_count"},
          {"bad_requests", "invalid_reqs_count"},
          {"throttled", "rate_limiter_throttled_events"}}},
        {"virtio-net.",
         "net",
         true,
         {{"rx_bytes", "rx_bytes_count"},
          {"tx_bytes", "tx_bytes_count"},
          {"rx_packets", "rx_packets_count"},
          {"tx_packets", "tx_packets_count"},
          {"rx_throttled", "rx_rate_limiter_throttled"},
          {"tx_throttled", "tx_rate_limiter_throttled"}}},
        {"virtio-vsock.",
         "vsock",
         false,
         {{"rx_bytes", "rx_bytes_count"},
          {"tx_bytes", "tx_bytes_count"},
          {"rx_packets", "rx_packets_count"},
          {"tx_packets", "tx_packets_count"},
          {"conns_opened", "conns_added"},
          {"conns_reset", "conns_killed"}}},
        {"virtio-rng.",
         "entropy",
         false,
         {{"requests", "entropy_event_count"},
          {"bytes", "entropy_bytes"},
          {"throttled", "entropy_rate_limiter_throttled"},
          {"host_rng_fail", "host_rng_fails"}}},
        {"virtio-balloon.",
         "balloon",
         false,
         {{"inflate_count", "inflate_count"},
          {"deflate_count", "deflate_count"},
          {"stats_updates_count", "stats_updates_count"},
          {"stats_update_fails", "stats_update_fails"},
          {"free_page_report_count", "free_page_report_count"},
          {"free_page_hint_count", "free_page_hint_count"}}},
};

/* group[key] += now[key] - before[key] (and into `per`, when not NULL) */
static void add_delta(json_t *m, const char *group, const char *per, const char *fc_key,
                      json_t *now, json_t *before, const char *key)
{
	uint64_t was = (uint64_t)json_integer_value(json_object_get(before, key));
	json_int_t d = delta((uint64_t)json_integer_value(json_object_get(now, key)), &was);
	if (per)
		put(m, per, fc_key, d);
	put(m, group, fc_key,
	    json_integer_value(json_object_get(json_object_get(m, group), fc_key)) + d);
}

/* an interface's MMDS counters (already Firecracker's names) into "mmds" */
static void fc_mmds(json_t *m, json_t *now, json_t *before)
{
	const char *key;
	json_t *v;

	json_object_foreach(json_object_get(now, "mmds"), key, v)
	{
		if (json_is_integer(v))
			add_delta(m, "mmds", NULL, key, json_object_get(now, "mmds"),
			          json_object_get(before, "mmds"), key);
	}
}

static void fc_devices(json_t *m, json_t *devices)
{
	const char *name;
	json_t *now;

	for (size_t t = 0; t < ARRAY_SIZE(fc_devs); t++)
		json_object_set_new(m, fc_devs[t].fc_group, json_object());
	json_object_set_new(m, "mmds", json_object());
	json_object_foreach(devices, name, now)
	{
		json_t *before = json_object_get(last_devices, name);
		for (size_t t = 0; t < ARRAY_SIZE(fc_devs); t++) {
			size_t plen = strlen(fc_devs[t].kiln_prefix);
			char per[80];
			if (strncmp(name, fc_devs[t].kiln_prefix, plen) != 0)
				continue;
			snprintf(per, sizeof(per), "%s_%s", fc_devs[t].fc_group, name + plen);
			for (size_t k = 0;
			     k < ARRAY_SIZE(fc_devs[t].names) && fc_devs[t].names[k][0]; k++)
				add_delta(m, fc_devs[t].fc_group,
				          fc_devs[t].per_device ? per : NULL,
				          fc_devs[t].names[k][1], now, before,
				          fc_devs[t].names[k][0]);
			fc_mmds(m, now, before);
		}
	}
	json_decref(last_devices);
	last_devices = json_deep_copy(devices);
}

/*
 * Firecracker's groups kiln has nothing to count in yet (legacy devices,
 * signals, the VMM's panics): present and empty, so that a reader that
 * expects the group finds it and no number is made up.
 */
static void fc_empty_groups(json_t *m)
{
	static const char *const empty[] = {"i8042", "rtc", "vmm", "signals"};
	for (size_t i = 0; i < ARRAY_SIZE(empty); i++)
		json_object_set_new(m, empty[i], json_object());
}

/* ------------------------------------------------------- kiln's own groups */

static json_t *api_metrics(void)
{
	json_t *reqs = json_object();
	for (int k = 0; k < API_ACTION_COUNT; k++) {
		uint64_t c = __atomic_load_n(&api_stats.count[k], __ATOMIC_RELAXED);
		uint64_t f = __atomic_load_n(&api_stats.fails[k], __ATOMIC_RELAXED);
		json_object_set_new(
		        reqs, api_action_name((enum api_action_kind)k),
		        json_pack("{s:I, s:I}", "count", (json_int_t)c, "fails", (json_int_t)f));
	}
	json_object_set_new(reqs, "errors",
	                    json_pack("{s:I, s:I, s:I, s:I}", "not_found",
	                              (json_int_t)api_stats.not_found, "bad_method",
	                              (json_int_t)api_stats.bad_method, "too_large",
	                              (json_int_t)api_stats.too_large, "bad_request",
	                              (json_int_t)api_stats.bad_request));
	return reqs;
}

/* a - b, 0 when b is later (a clock given from outside may be ahead) */
static json_int_t since(uint64_t a, uint64_t b)
{
	return (json_int_t)(a > b ? a - b : 0);
}

/*
 * Firecracker's api_server object: the time from the launch to the API
 * listening, from a jailer's --start-time-us when given (else from kiln's
 * own start), and the CPU time spent on it (--start-time-cpu-us and
 * --parent-cpu-time-us; else all of this process's CPU time until then).
 * Both 0 until the API listens, and without an API.
 */
static json_t *api_server_metrics(const struct vmm *v)
{
	json_int_t wall = 0, cpu = 0;
	if (v->api_ready_ns) {
		uint64_t ready_us = v->api_ready_ns / 1000,
		         ready_cpu_us = v->api_ready_cpu_ns / 1000;
		wall = v->opts.start_time_us >= 0 ? since(ready_us, (uint64_t)v->opts.start_time_us)
		                                  : since(v->api_ready_ns, kiln_start_ns) / 1000;
		cpu = v->opts.start_time_cpu_us >= 0
		              ? since(ready_cpu_us, (uint64_t)v->opts.start_time_cpu_us)
		              : (json_int_t)ready_cpu_us;
		if (v->opts.start_time_cpu_us >= 0 && v->opts.parent_cpu_time_us > 0)
			cpu += (json_int_t)v->opts.parent_cpu_time_us;
	}
	return json_pack("{s:I, s:I}", "process_startup_time_us", wall,
	                 "process_startup_time_cpu_us", cpu);
}

int vmm_metrics_flush(struct vmm *v, struct errbuf *e)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_t *m = json_pack(
	        "{s:I, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
	        "s:{s:I}}",
	        "utc_timestamp_ms", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
	        "api_server", api_server_metrics(v), "api_requests", api_metrics(), "latencies_us",
	        "full_create_snapshot", (json_int_t)lat_full_us, "diff_create_snapshot",
	        (json_int_t)lat_diff_us, "load_snapshot", (json_int_t)v->lat_snap_load_us,
	        "pause_vm", (json_int_t)v->lat_pause_us, "resume_vm", (json_int_t)v->lat_resume_us,
	        /* kiln times actions on the VMM thread: Firecracker's vmm_* are the same */
	        "vmm_full_create_snapshot", (json_int_t)lat_full_us, "vmm_diff_create_snapshot",
	        (json_int_t)lat_diff_us, "vmm_load_snapshot", (json_int_t)v->lat_snap_load_us,
	        "vmm_pause_vm", (json_int_t)v->lat_pause_us, "vmm_resume_vm",
	        (json_int_t)v->lat_resume_us, "boot", (json_int_t)v->lat_boot_us, "seccomp",
	        /* a filtered call ends kiln (exit 148) before any line could count it */
	        "num_faults", (json_int_t)0);
	if (!m)
		return errf(e, ENOMEM, "cannot build the metrics");
	put(m, "latencies_us", "create_snapshot", (json_int_t)v->lat_snap_create_us);
	/* Firecracker's Metrics.emit_id and properties */
	if (v->cfg.metrics.emit_id)
		json_object_set_new(m, "id",
		                    json_string(v->opts.id ? v->opts.id : "anonymous-instance"));
	if (v->cfg.metrics.properties)
		json_object_set(m, "properties", v->cfg.metrics.properties);
	fc_requests(m);
	fc_vcpu_uart(m, v);
	json_t *devices = vmm_devices_metrics(v);
	fc_devices(m, devices);
	fc_empty_groups(m);
	json_object_set_new(m, "devices", devices);
	json_object_set_new(m, "migration", vmm_migration_status(v));
	put(m, "logger", "metrics_fails", delta(metrics_fails, &last_metrics_fails));
	char *line = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (!line) {
		metrics_fails++;
		return errf(e, ENOMEM, "cannot build the metrics");
	}
	size_t len = strlen(line);
	line[len] = '\n'; /* json_dumps's NUL becomes the line end */
	int ret = write_all(v->metrics_fd, line, len + 1);
	free(line);
	if (ret < 0) {
		metrics_fails++;
		return errf(e, -ret, "cannot write the metrics: %s", strerror(-ret));
	}
	return 0;
}

/* a last line first, as Firecracker writes one when the VM stops (Vmm::stop) */
void vmm_metrics_close(struct vmm *v)
{
	struct errbuf e;
	if (v->metrics_fd >= 0 && vmm_metrics_flush(v, &e) < 0)
		log_warn("last metrics flush failed: %s", e.msg);
	if (v->metrics_timer_fd >= 0) {
		el_del(&v->loop, v->metrics_timer_fd);
		close(v->metrics_timer_fd);
	}
	if (v->metrics_fd >= 0)
		close(v->metrics_fd);
	v->metrics_fd = v->metrics_timer_fd = -1;
}
