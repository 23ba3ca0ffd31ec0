// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/main.c: kiln's command line (Firecracker's flags), logging set-up
 * and the hand-over to the VMM thread.
 */
#define LOG_MODULE "main"
#include "seccomp_filters.h"
#include "snapshot.h"
#include "vmm.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_FILE_MAX  (1u << 20)
#define DEFAULT_API_SOCK "/run/kiln.socket"

struct args {
	const char *api_sock;
	const char *config_file;
	const char *log_path;
	const char *level;
	const char *module;
	const char *metrics_path;
	const char *metadata; /* --metadata FILE */
	size_t max_payload;
	struct vmm_options vmm;
	bool no_api, show_level, show_origin;
	enum seccomp_mode seccomp;
	const char *seccomp_filter; /* --seccomp-filter FILE */
	bool print_seccomp;         /* --print-seccomp-filter */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kiln [options]\n"
	           "  --api-sock PATH          serve the HTTP API on this unix socket\n"
	           "                           (default " DEFAULT_API_SOCK ")\n"
	           "  --http-api-max-payload-size BYTES\n"
	           "                           largest request body accepted (default 51200)\n"
	           "  --no-api                 do not serve the API (needs --config-file)\n"
	           "  --config-file FILE       configure (and with --no-api, start) the VM from\n"
	           "                           a Firecracker-style JSON file\n"
	           "  --metadata FILE          the MMDS data store's first content (JSON)\n"
	           "  --mmds-size-limit BYTES  largest MMDS data store (default: the\n"
	           "                           --http-api-max-payload-size)\n"
	           "  --id ID                  instance id (1 to 64 letters, digits, '-', '_')\n"
	           "  --start-time-us US       CLOCK_MONOTONIC microseconds when a jailer began\n"
	           "  --start-time-cpu-us US   this process's CPU microseconds then\n"
	           "  --parent-cpu-time-us US  CPU microseconds a jailer's parent spent first\n"
	           "                           (the three set api_server.process_startup_*)\n"
	           "  --no-seccomp             load no seccomp filters (development)\n"
	           "  --seccomp-filter FILE    seccomp filters from FILE instead of kiln's own\n"
	           "                           (JSON, docs/seccomp.md)\n"
	           "  --print-seccomp-filter   print the filters kiln would load (its own, or\n"
	           "                           FILE's as kiln reads it) in that form and exit\n"
	           "  --seccomp-audit          filters only log what they would refuse, to the\n"
	           "                           kernel's audit log (development)\n"
	           "  --boot-timer             log the guest's boot time when it writes 123 to\n"
	           "                           port 0x440\n"
	           "  --serial-out FILE        write the guest's serial output to FILE (default "
	           "stdout)\n"
	           "  --log-path FILE          write log lines to FILE (default stderr)\n"
	           "  --level LEVEL            Error, Warning, Info, Debug, Trace or Off\n"
	           "  --show-level             put the level in every log line\n"
	           "  --show-log-origin        put file:line in every log line\n"
	           "  --module NAME            only log lines from this module\n"
	           "  --metrics-path FILE      write metrics lines to FILE (or a named pipe)\n"
	           "  --snapshot-version       print the version of the snapshot files kiln\n"
	           "                           writes (\"v1.0.0\") and exit\n"
	           "  --describe-snapshot FILE print the version of a kiln snapshot file and exit\n"
	           "  --enable-pci             taken for Firecracker's sake: kiln has no PCI, its\n"
	           "                           devices stay virtio-mmio (a warning says so)\n"
	           "  --version                print the Firecracker API version kiln serves\n"
	           "                           (\"Firecracker vX.Y.Z\") and kiln's, and exit\n"
	           "  --help                   this text\n");
}

enum {
	OPT_API_SOCK = 256,
	OPT_NO_API,
	OPT_CONFIG,
	OPT_ID,
	OPT_BOOT_TIMER,
	OPT_SERIAL_OUT,
	OPT_LOG_PATH,
	OPT_LEVEL,
	OPT_SHOW_LEVEL,
	OPT_SHOW_ORIGIN,
	OPT_MODULE,
	OPT_MAX_PAYLOAD,
	OPT_METRICS,
	OPT_VERSION,
	OPT_HELP,
	OPT_START_TIME,
	OPT_START_CPU,
	OPT_PARENT_CPU,
	OPT_METADATA,
	OPT_MMDS_LIMIT,
	OPT_NO_SECCOMP,
	OPT_SECCOMP_FILTER,
	OPT_SECCOMP_AUDIT,
	OPT_PRINT_SECCOMP,
	OPT_SNAPSHOT_VERSION,
	OPT_DESCRIBE_SNAPSHOT,
	OPT_ENABLE_PCI,
};

static const struct option long_opts[] = {
        {"api-sock", required_argument, NULL, OPT_API_SOCK},
        {"no-api", no_argument, NULL, OPT_NO_API},
        {"config-file", required_argument, NULL, OPT_CONFIG},
        {"id", required_argument, NULL, OPT_ID},
        {"boot-timer", no_argument, NULL, OPT_BOOT_TIMER},
        {"serial-out", required_argument, NULL, OPT_SERIAL_OUT},
        {"log-path", required_argument, NULL, OPT_LOG_PATH},
        {"level", required_argument, NULL, OPT_LEVEL},
        {"show-level", no_argument, NULL, OPT_SHOW_LEVEL},
        {"show-log-origin", no_argument, NULL, OPT_SHOW_ORIGIN},
        {"module", required_argument, NULL, OPT_MODULE},
        {"http-api-max-payload-size", required_argument, NULL, OPT_MAX_PAYLOAD},
        {"metrics-path", required_argument, NULL, OPT_METRICS},
        {"metadata", required_argument, NULL, OPT_METADATA},
        {"mmds-size-limit", required_argument, NULL, OPT_MMDS_LIMIT},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, OPT_HELP},
        {"start-time-us", required_argument, NULL, OPT_START_TIME},
        {"start-time-cpu-us", required_argument, NULL, OPT_START_CPU},
        {"parent-cpu-time-us", required_argument, NULL, OPT_PARENT_CPU},
        {"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
        {"seccomp-filter", required_argument, NULL, OPT_SECCOMP_FILTER},
        {"seccomp-audit", no_argument, NULL, OPT_SECCOMP_AUDIT},
        {"print-seccomp-filter", no_argument, NULL, OPT_PRINT_SECCOMP},
        {"snapshot-version", no_argument, NULL, OPT_SNAPSHOT_VERSION},
        {"describe-snapshot", required_argument, NULL, OPT_DESCRIBE_SNAPSHOT},
        {"enable-pci", no_argument, NULL, OPT_ENABLE_PCI},
        {NULL, 0, NULL, 0},
};

/* 0 to go on, or an exit code */
/*
 * The instance id (--id): what Firecracker takes, letters, digits and '-'
 * (orchestrators pass UUIDs), and '_' as kiln's device ids allow; 1 to 64
 * of them.
 */
static bool instance_id_valid(const char *id)
{
	size_t n = strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");
	return n > 0 && n <= 64 && id[n] == '\0';
}

/* a jailer's microseconds: 0 to INT64_MAX in decimal, or -1 */
static int64_t parse_us(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || s[0] == '+' || n > INT64_MAX)
		return -1;
	return (int64_t)n;
}

/*
 * --describe-snapshot FILE: "v<format>.0.0" of a kiln state file (its
 * magic and format version; Firecracker's snapshots are not kiln's), then
 * -1 (exit 0); or a message and 1 when FILE is not one.
 */
static int describe_snapshot(const char *path)
{
	unsigned char head[sizeof(SNAP_MAGIC) - 1 + 4];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(head, 1, sizeof(head), f) : 0;

	if (!f) {
		fprintf(stderr, "kiln: --describe-snapshot: cannot open %s: %s\n", path,
		        strerror(errno));
		return 1;
	}
	fclose(f);
	if (n < sizeof(head) || memcmp(head, SNAP_MAGIC, sizeof(SNAP_MAGIC) - 1) != 0) {
		fprintf(stderr, "kiln: --describe-snapshot: %s is not a kiln snapshot state file\n",
		        path);
		return 1;
	}
	const unsigned char *v = head + sizeof(SNAP_MAGIC) - 1; /* little endian */
	printf("v%u.0.0\n",
	       (unsigned)v[0] | (unsigned)v[1] << 8 | (unsigned)v[2] << 16 | (unsigned)v[3] << 24);
	return -1;
}

/* the seccomp flags that contradict each other: 0 or an exit code */
static int check_seccomp_args(const struct args *a)
{
	const char *clash = NULL, *hint = "";

	if (a->seccomp_filter && a->seccomp == SECCOMP_OFF) {
		clash = "--seccomp-filter and --no-seccomp";
	} else if (a->seccomp_filter && a->seccomp == SECCOMP_AUDIT) {
		clash = "--seccomp-filter and --seccomp-audit";
		hint = "; give the file's filters \"mismatch_action\": \"log\" instead";
	} else if (a->print_seccomp && a->seccomp == SECCOMP_OFF) {
		clash = "--print-seccomp-filter and --no-seccomp";
	}
	if (clash) {
		fprintf(stderr, "kiln: %s cannot be used together%s\n", clash, hint);
		return KILN_EXIT_ARGS;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	int c;
	a->vmm.start_time_us = a->vmm.start_time_cpu_us = a->vmm.parent_cpu_time_us = -1;
	a->seccomp = SECCOMP_TRAP;

	opterr = 0;
	while ((c = getopt_long_only(argc, argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_API_SOCK:
			a->api_sock = optarg;
			break;
		case OPT_NO_API:
			a->no_api = true;
			break;
		case OPT_CONFIG:
			a->config_file = optarg;
			break;
		case OPT_ID:
			a->vmm.id = optarg;
			break;
		case OPT_BOOT_TIMER:
			a->vmm.boot_timer = true;
			break;
		case OPT_SERIAL_OUT:
			a->vmm.serial_out = optarg;
			break;
		case OPT_LOG_PATH:
			a->log_path = optarg;
			break;
		case OPT_LEVEL:
			a->level = optarg;
			break;
		case OPT_SHOW_LEVEL:
			a->show_level = true;
			break;
		case OPT_SHOW_ORIGIN:
			a->show_origin = true;
			break;
		case OPT_MODULE:
			a->module = optarg;
			break;
		case OPT_MAX_PAYLOAD: {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(optarg, &end, 10);
			if (errno || *end || n == 0 || n > (64u << 20) || optarg[0] == '-') {
				fprintf(stderr,
				        "kiln: --http-api-max-payload-size must be 1 to %u\n",
				        64u << 20);
				return KILN_EXIT_ARGS;
			}
			a->max_payload = (size_t)n;
			break;
		}
		case OPT_METRICS:
			a->metrics_path = optarg;
			break;
		case OPT_METADATA:
			a->metadata = optarg;
			break;
		case OPT_MMDS_LIMIT: {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(optarg, &end, 10);
			if (errno || *end || n == 0 || n > (64u << 20) || optarg[0] == '-') {
				fprintf(stderr, "kiln: --mmds-size-limit must be 1 to %u\n",
				        64u << 20);
				return KILN_EXIT_ARGS;
			}
			a->vmm.mmds_size_limit = (size_t)n;
			break;
		}
		case OPT_START_TIME:
		case OPT_START_CPU:
		case OPT_PARENT_CPU: {
			int64_t *to = c == OPT_START_TIME  ? &a->vmm.start_time_us
			              : c == OPT_START_CPU ? &a->vmm.start_time_cpu_us
			                                   : &a->vmm.parent_cpu_time_us;
			if ((*to = parse_us(optarg)) < 0) {
				fprintf(stderr,
				        "kiln: --%s must be a number of microseconds, not '%s'\n",
				        c == OPT_START_TIME  ? "start-time-us"
				        : c == OPT_START_CPU ? "start-time-cpu-us"
				                             : "parent-cpu-time-us",
				        optarg);
				return KILN_EXIT_ARGS;
			}
			break;
		}
		case OPT_NO_SECCOMP:
			a->seccomp = SECCOMP_OFF;
			break;
		case OPT_SECCOMP_AUDIT:
			a->seccomp = SECCOMP_AUDIT;
			break;
		case OPT_SECCOMP_FILTER:
			a->seccomp_filter = optarg;
			break;
		case OPT_PRINT_SECCOMP:
			a->print_seccomp = true;
			break;
		case OPT_VERSION:
			/* Firecracker's first line, then kiln's own version */
			printf("Firecracker v%s\nkiln v%s\n", API_FIRECRACKER_VERSION,
			       KILN_VERSION);
			return -1;
		case OPT_HELP:
			usage(stdout);
			return -1;
		case OPT_SNAPSHOT_VERSION:
			/* Firecracker prints its snapshot format's version the same way */
			printf("v%d.0.0\n", SNAP_FORMAT_VERSION);
			return -1;
		case OPT_DESCRIBE_SNAPSHOT:
			return describe_snapshot(optarg);
		case OPT_ENABLE_PCI:
			fprintf(stderr,
			        "kiln: --enable-pci: kiln has no PCI transport; its devices stay "
			        "virtio-mmio\n");
			break;
		default:
			fprintf(stderr, "kiln: unknown or incomplete option '%s'\n",
			        argv[optind - 1]);
			usage(stderr);
			return KILN_EXIT_ARGS;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kiln: unexpected argument '%s'\n", argv[optind]);
		return KILN_EXIT_ARGS;
	}
	if (a->vmm.id && !instance_id_valid(a->vmm.id)) {
		fprintf(stderr, "kiln: --id must be 1 to 64 letters, digits, '-' or '_'\n");
		return KILN_EXIT_ARGS;
	}
	if (a->no_api && !a->config_file) {
		fprintf(stderr, "kiln: --no-api needs --config-file\n");
		return KILN_EXIT_ARGS;
	}
	if (a->no_api && a->api_sock) {
		fprintf(stderr, "kiln: --no-api and --api-sock cannot be used together\n");
		return KILN_EXIT_ARGS;
	}
	return check_seccomp_args(a);
}

/* logging from the flags; the config file's "logger" may override it later */
static int setup_logging(const struct args *a)
{
	enum log_level level = LOG_WARN;

	if (a->level && log_level_parse(a->level, &level) < 0) {
		fprintf(stderr,
		        "kiln: invalid --level '%s' (Error, Warning, Info, Debug, Trace, Off)\n",
		        a->level);
		return KILN_EXIT_ARGS;
	}
	log_configure(level, a->show_level, a->show_origin, a->module);
	if (a->vmm.id)
		log_set_instance_id(a->vmm.id);
	if (a->log_path) {
		FILE *f = fopen(a->log_path, "a");
		if (!f) {
			fprintf(stderr, "kiln: cannot open log %s: %s\n", a->log_path,
			        strerror(errno));
			return KILN_EXIT_ARGS;
		}
		setvbuf(f, NULL, _IOLBF, 0);
		log_set_file(f);
	}
	return 0;
}

static int load_config_file(struct vmm *v, const char *path, struct errbuf *e)
{
	char *text;
	size_t len;
	int ret = read_file(path, CONFIG_FILE_MAX, &text, &len, e);
	if (ret < 0)
		return ret;
	ret = cfg_parse_document(text, len, &v->cfg, e);
	if (ret == 0) {
		/* "cpu-config" (checked by the parse): kept as PUT /cpu-config keeps it */
		json_t *doc = json_loadb(text, len, 0, NULL);
		ret = cfg_cpu_config_doc(json_object_get(doc, "cpu-config"), &v->cpu_cfg, e);
		json_decref(doc);
		v->has_cpu_cfg = ret == 1;
		if (v->has_cpu_cfg) { /* it replaces machine-config's static template, as in
			                 Firecracker */
			free(v->cfg.machine.cpu_template);
			v->cfg.machine.cpu_template = NULL;
		}
		ret = ret < 0 ? ret : 0;
	}
	free(text);
	if (ret == 0)
		vmm_mmds_apply_config(v);
	if (ret == 0 && v->cfg.logger.set)
		ret = vmm_apply_logger(&v->cfg.logger, e);
	if (ret == 0 && v->cfg.metrics.set && v->metrics_fd < 0)
		ret = vmm_metrics_open(v, v->cfg.metrics.metrics_path, e);
	return ret;
}

static struct termios saved_tio;
static bool tio_saved;

static void restore_tty(void)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
}

/* a terminal on stdin goes raw, so keys reach the guest's console as typed */
static void setup_tty(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return;
	tio_saved = true;
	atexit(restore_tty);
	t = saved_tio;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG);
	tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

/* a filter file kiln refuses is a bad configuration; its own filters failing is an error */
static int seccomp_failed(const struct args *a, const struct errbuf *e)
{
	if (!a->seccomp_filter) {
		fprintf(stderr, "kiln: cannot set the seccomp filters up: %s\n", e->msg);
		return KILN_EXIT_ERROR;
	}
	fprintf(stderr, "kiln: --seccomp-filter %s: %s\n", a->seccomp_filter, e->msg);
	return KILN_EXIT_BAD_CONFIG;
}

/* --print-seccomp-filter: the filters to stdout, nothing started */
static int print_seccomp(const struct args *a)
{
	struct errbuf e = {{0}};

	if (kiln_seccomp_print(a->seccomp, a->seccomp_filter, stdout, &e) < 0)
		return seccomp_failed(a, &e);
	return KILN_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct errbuf e = {{0}};
	struct vmm v;
	int ret;

	kiln_start_ns = now_ns();
	a.vmm.exit_on_halt = true;
	if ((ret = parse_args(argc, argv, &a)) != 0)
		return ret < 0 ? KILN_EXIT_OK : ret;
	if ((ret = setup_logging(&a)) != 0)
		return ret;
	if (a.print_seccomp)
		return print_seccomp(&a);
	if (!a.no_api && !a.api_sock)
		a.api_sock = DEFAULT_API_SOCK;
	if (!a.max_payload)
		a.max_payload = API_MAX_PAYLOAD_DEFAULT;
	if (!a.vmm.mmds_size_limit) /* Firecracker's default: the API's payload limit */
		a.vmm.mmds_size_limit = a.max_payload;

	/* SIGINT/SIGTERM are read from a signalfd by the VMM thread; every
	 * thread created from here on inherits the blocked mask */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	/*
	 * What libraries would first do inside a filtered thread: jansson seeds
	 * its hash from /dev/urandom, the time zone is read from /etc/localtime.
	 */
	json_object_seed(0);
	tzset();
	if (kiln_seccomp_init(a.seccomp, a.seccomp_filter, &e) < 0)
		return seccomp_failed(&a, &e);
	if (vmm_init(&v, &a.vmm, &e) < 0) {
		fprintf(stderr, "kiln: %s\n", e.msg);
		vmm_destroy(&v);
		return KILN_EXIT_ERROR;
	}
	if (a.metrics_path && vmm_metrics_open(&v, a.metrics_path, &e) < 0) {
		fprintf(stderr, "kiln: %s\n", e.msg);
		vmm_destroy(&v);
		return KILN_EXIT_ARGS;
	}
	if (a.metadata && vmm_mmds_load(&v, a.metadata, &e) < 0) {
		fprintf(stderr, "kiln: --metadata %s: %s\n", a.metadata, e.msg);
		vmm_destroy(&v);
		return KILN_EXIT_BAD_CONFIG;
	}
	if (a.api_sock && vmm_serve_api(&v, a.api_sock, a.max_payload, &e) < 0) {
		fprintf(stderr, "kiln: cannot serve the API: %s\n", e.msg);
		vmm_destroy(&v);
		return KILN_EXIT_ERROR;
	}
	/* as Firecracker: a config file configures and boots the VM at once,
	 * with or without the API */
	if (a.config_file && load_config_file(&v, a.config_file, &e) < 0) {
		fprintf(stderr, "kiln: %s: %s\n", a.config_file, e.msg);
		vmm_destroy(&v);
		return KILN_EXIT_BAD_CONFIG;
	}
	if (a.config_file && vmm_start(&v, &e) < 0) {
		fprintf(stderr, "kiln: cannot start the microVM: %s\n", e.msg);
		vmm_destroy(&v);
		return KILN_EXIT_BAD_CONFIG;
	}
	setup_tty();
	ret = vmm_run(&v);
	vmm_destroy(&v);
	return ret;
}
