// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/metrics.c: the logger and metrics sinks configured by flags, the
 * config file, PUT /logger and PUT /metrics. Metrics are one JSON object
 * per line, written every 60 s and on FlushMetrics, to a file or a named
 * pipe, like Firecracker's. Counters are totals since the process started.
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

void vmm_record_latency(struct vmm *v, int kind, uint64_t ns)
{
	switch (kind) {
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
		break;
	case API_SNAPSHOT_LOAD:
		v->lat_snap_load_us = ns / 1000;
		break;
	default:
		break;
	}
}

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

static json_t *vcpu_metrics(const struct vmm *v)
{
	static const struct {
		const char *name;
		int reason;
	} exits[] = {
	        {"exit_io", KVM_EXIT_IO},
	        {"exit_mmio", KVM_EXIT_MMIO},
	        {"exit_hlt", KVM_EXIT_HLT},
	        {"exit_shutdown", KVM_EXIT_SHUTDOWN},
	        {"exit_internal_error", KVM_EXIT_INTERNAL_ERROR},
	        {"exit_fail_entry", KVM_EXIT_FAIL_ENTRY},
	        {"exit_system_event", KVM_EXIT_SYSTEM_EVENT},
	        {"exit_intr", KVM_EXIT_INTR},
	};
	json_t *o = json_object();
	uint64_t total = 0;
	for (size_t r = 0; r < ARRAY_SIZE(v->vm.exit_counts); r++)
		total += __atomic_load_n(&v->vm.exit_counts[r], __ATOMIC_RELAXED);
	for (size_t i = 0; i < ARRAY_SIZE(exits); i++)
		json_object_set_new(
		        o, exits[i].name,
		        json_integer((json_int_t)__atomic_load_n(
		                &v->vm.exit_counts[exits[i].reason], __ATOMIC_RELAXED)));
	json_object_set_new(o, "exits_total", json_integer((json_int_t)total));
	return o;
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
	json_t *m =
	        json_pack("{s:I, s:o, s:o, s:o, s:{s:I}, s:{s:I, s:I, s:I, s:I, s:I}}",
	                  "utc_timestamp_ms", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
	                  "api_server", api_server_metrics(v), "api_requests", api_metrics(),
	                  "vcpu", vcpu_metrics(v), "uart", "tx_bytes",
	                  (json_int_t)__atomic_load_n(&v->serial.tx_bytes, __ATOMIC_RELAXED),
	                  "latencies_us", "boot", (json_int_t)v->lat_boot_us, "pause_vm",
	                  (json_int_t)v->lat_pause_us, "resume_vm", (json_int_t)v->lat_resume_us,
	                  "create_snapshot", (json_int_t)v->lat_snap_create_us, "load_snapshot",
	                  (json_int_t)v->lat_snap_load_us);
	if (!m)
		return errf(e, ENOMEM, "cannot build the metrics");
	json_object_set_new(m, "devices", vmm_devices_metrics(v));
	json_object_set_new(m, "migration", vmm_migration_status(v));
	char *line = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (!line)
		return errf(e, ENOMEM, "cannot build the metrics");
	size_t len = strlen(line);
	line[len] = '\n'; /* json_dumps's NUL becomes the line end */
	int ret = write_all(v->metrics_fd, line, len + 1);
	free(line);
	if (ret < 0)
		return errf(e, -ret, "cannot write the metrics: %s", strerror(-ret));
	return 0;
}

void vmm_metrics_close(struct vmm *v)
{
	if (v->metrics_timer_fd >= 0) {
		el_del(&v->loop, v->metrics_timer_fd);
		close(v->metrics_timer_fd);
	}
	if (v->metrics_fd >= 0)
		close(v->metrics_fd);
	v->metrics_fd = v->metrics_timer_fd = -1;
}
