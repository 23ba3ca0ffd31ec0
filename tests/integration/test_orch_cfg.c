// SPDX-License-Identifier: Apache-2.0
/*
 * Start-up replays of the orchestrators that hand Firecracker a config
 * file: Kata Containers (its Go runtime's firecracker driver) and
 * flintlock (liquidmetal's firecracker provider). Each test writes the
 * file the orchestrator writes, with its members in its order, starts kiln
 * with its flags, and does what it does next, expecting Firecracker's
 * behaviour. The guest is the freestanding `hello`.
 * Sources read: kata-containers 7c6ba40 (2026-08), flintlock 510a1aa
 * (2024-07).
 */
#include "orch_client.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct kproc kp;
static char dir[64];

static void setup(void)
{
	oc_mkdir(dir);
	cr_assert_eq(chdir(dir), 0);
}

static void teardown(void)
{
	oc_cleanup(&kp, dir);
}

TestSuite(orch_cfg, .init = setup, .fini = teardown, .timeout = 180);

/* an empty file at `path` (relative to the test's directory) */
static void touch_file(const char *path, off_t bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(ftruncate(fd, bytes), 0);
	close(fd);
}

/* Kata's first `--version` line, "Firecracker vX.Y.Z", as parseVersion/checkVersion read it */
static void kata_check_version(void)
{
	struct kproc p = {0};
	const char *argv[] = {"kiln", "--version", NULL};
	int major = 0, minor = 0, patch = 0;

	cr_assert_eq(kh_spawn(&p, argv), 0);
	cr_assert_eq(kh_wait_exit(&p, 5000), 0, "%s", p.out);
	const char *sp = strchr(p.out, ' ');
	cr_assert_not_null(sp, "one word on the first line: %s", p.out);
	sp += sp[1] == 'v' ? 2 : 1;
	cr_assert_eq(sscanf(sp, "%d.%d.%d", &major, &minor, &patch), 3, "%s", p.out);
	/* fcMinSupportedVersion 0.21.1 */
	cr_assert(major > 0 || minor > 21 || (minor == 21 && patch >= 1), "%s", p.out);
	kh_kill(&p);
}

/*
 * The config Kata's StartVM writes (json.MarshalIndent of types.FcConfig:
 * boot-source, machine-config, vsock, logger, metrics, drives in the
 * struct's order; each model's fields alphabetical): fcSetVMBaseConfig
 * (smt false), fcSetBootSource with fcKernelParams (acpi=off among them),
 * fcAddVsock (guest_cid 3, vsock_id "root", the hybrid socket), fcSetLogger
 * (level Error) and fcSetMetrics on FIFOs, fcSetVMRootfs (rootfs
 * read-only, not the root device) and createDiskPool's eight empty
 * placeholder files drive_0..drive_7.
 */
static char *kata_config(const char *boot_args)
{
	char *drives =
	        kh_fmt("\t\t{\n\t\t\t\"drive_id\": \"rootfs\",\n\t\t\t\"is_read_only\": true,\n"
	               "\t\t\t\"is_root_device\": false,\n\t\t\t\"path_on_host\": \"%s/rootfs\"\n"
	               "\t\t}",
	               dir);
	touch_file("rootfs", 1 << 20);
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof(name), "drive_%d", i);
		touch_file(name, 0);
		char *more = kh_fmt(
		        "%s,\n\t\t{\n\t\t\t\"drive_id\": \"%s\",\n\t\t\t\"is_read_only\": false,"
		        "\n\t\t\t\"is_root_device\": false,\n\t\t\t\"path_on_host\": "
		        "\"%s/%s\"\n\t\t}",
		        drives, name, dir, name);
		free(drives);
		drives = more;
	}
	char *cfg = kh_fmt(
	        "{\n\t\"boot-source\": {\n\t\t\"boot_args\": \"%s\",\n"
	        "\t\t\"kernel_image_path\": \"%s\"\n\t},\n"
	        "\t\"machine-config\": {\n\t\t\"mem_size_mib\": 64,\n\t\t\"smt\": false,\n"
	        "\t\t\"vcpu_count\": 1\n\t},\n"
	        "\t\"vsock\": {\n\t\t\"guest_cid\": 3,\n\t\t\"uds_path\": \"%s/kata.hvsock\",\n"
	        "\t\t\"vsock_id\": \"root\"\n\t},\n"
	        "\t\"logger\": {\n\t\t\"level\": \"Error\",\n\t\t\"log_path\": \"%s/logs.fifo\"\n"
	        "\t},\n"
	        "\t\"metrics\": {\n\t\t\"metrics_path\": \"%s/metrics.fifo\"\n\t},\n"
	        "\t\"drives\": [\n%s\n\t]\n}",
	        boot_args, kh_guest("hello"), dir, dir, dir, drives);
	free(drives);
	return cfg;
}

/* fcKernelParams of fc.go with the non-debug additions, then the guest's sleep */
#define KATA_ARGS                                                                                  \
	"root=/dev/vda1 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 pci=off "      \
	"reboot=k panic=1 iommu=off net.ifnames=0 random.trust_cpu=on acpi=off 8250.nr_uarts=0 "   \
	"agent.log_vport=1025"

/* fcListenToFifo: the FIFO made and opened for reading before Firecracker starts */
static int kata_fifo(const char *name)
{
	cr_assert_eq(mkfifo(name, 0600), 0, "%s", name);
	int fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s", name);
	return fd;
}

/* starts kiln as fcInit's unjailed branch does: --api-sock S --config-file F */
static void kata_start(struct oc_conn *c, const char *boot_args)
{
	char *cfg = kata_config(boot_args);
	FILE *f = fopen("fcConfig.json", "w");
	cr_assert_not_null(f);
	fputs(cfg, f);
	fclose(f);
	free(cfg);
	cr_assert_eq(mkdir("run", 0750), 0);
	const char *argv[] = {"kiln",          "--api-sock",    "run/firecracker.socket",
	                      "--config-file", "fcConfig.json", NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	oc_init(c, "run/firecracker.socket", &kp);
}

/* waitVMMRunning/vmRunning: GET / every 10 ms until "state" is "Running" (fcTimeout 10 s) */
static void kata_wait_running(struct oc_conn *c)
{
	for (int ms = 0; ms < kh_scaled_ms(10000); ms += 10) {
		int fd = ac_connect(c->sock);
		if (fd >= 0) {
			close(fd);
			json_t *info = oc_call(c, "GET", "/", NULL, 200);
			const char *state = json_string_value(json_object_get(info, "state"));
			bool running = state && !strcmp(state, "Running");
			json_decref(info);
			if (running)
				return;
		}
		cr_assert_eq(kh_wait_exit(&kp, 10), -1, "kiln exited:\n%s", kp.out);
	}
	cr_assert_fail("GET / never said \"state\": \"Running\":\n%s", kp.out);
}

/*
 * kata-containers src/runtime/virtcontainers/fc.go: fcInit's version check
 * (getVersionNumber, parseVersion, checkVersion), StartVM (the config file,
 * fcInit's unjailed launch, waitVMMRunning, os.Chmod of the hybrid vsock
 * socket, which must exist), a block device hot-plugged into a placeholder
 * and unplugged back (hotplugBlockDevice -> fcUpdateBlockDrive: PATCH
 * /drives/drive_0 with drive_id and path_on_host), then StopVM (fcEnd:
 * SIGTERM and up to fcStopSandboxTimeout, 15 s, for the process to go).
 */
Test(orch_cfg, kata_config_file_launch)
{
	struct oc_conn c;

	kata_check_version();
	int log_rd = kata_fifo("logs.fifo"), met_rd = kata_fifo("metrics.fifo");
	kata_start(&c, KATA_ARGS " " KH_GUEST_ARGS " sleep=5000");
	kata_wait_running(&c);
	cr_expect_eq(chmod("kata.hvsock", 0640), 0, "the hybrid vsock socket is not there");

	touch_file("container.img", 1 << 20);
	oc_okf(&c, "PATCH", "/drives/drive_0",
	       "{\"drive_id\":\"drive_0\",\"path_on_host\":\"%s/%s\"}", dir, "container.img");
	oc_okf(&c, "PATCH", "/drives/drive_0",
	       "{\"drive_id\":\"drive_0\",\"path_on_host\":\"%s/%s\"}", dir, "drive_0");
	oc_close(&c);

	cr_assert_eq(kill(kp.pid, SIGTERM), 0);
	int st = kh_wait_exit(&kp, 15000);
	cr_expect_neq(st, -1, "kiln still runs 15 s after SIGTERM:\n%s", kp.out);
	close(log_rd);
	close(met_rd);
}

/* a Kata metrics group: present, an object, every member a uint64 (Go's json.Unmarshal) */
static void kata_metrics_group(json_t *line, const char *group, const char *const *fields)
{
	json_t *g = json_object_get(line, group);
	const char *key;
	json_t *v;

	cr_expect(json_is_object(g), "no metrics group \"%s\"", group);
	json_object_foreach(g, key, v)
	{
		for (const char *const *f = fields; *f; f++)
			if (!strcmp(*f, key))
				cr_expect(json_is_integer(v) && json_integer_value(v) >= 0,
				          "%s.%s is not a uint64", group, key);
	}
}

/*
 * kata fc.go updateMetrics / fc_metrics.go FirecrackerMetrics: each line
 * of the metrics FIFO is one JSON object whose groups Kata reads into
 * structs of uint64 (a string, a negative or a fraction there fails the
 * whole line). Firecracker writes the line when the VM stops (Vmm::stop);
 * here the guest ends by itself.
 */
Test(orch_cfg, kata_metrics_lines_parse)
{
	static const char *const groups[] = {"api_server",
	                                     "block",
	                                     "get_api_requests",
	                                     "i8042",
	                                     "latencies_us",
	                                     "logger",
	                                     "mmds",
	                                     "net",
	                                     "patch_api_requests",
	                                     "put_api_requests",
	                                     "rtc",
	                                     "seccomp",
	                                     "vcpu",
	                                     "vmm",
	                                     "uart",
	                                     "signals",
	                                     "vsock",
	                                     NULL};
	/* the fields Kata declares, a few of each group's (they are all uint64) */
	static const char *const fields[] = {"process_startup_time_us",
	                                     "read_bytes",
	                                     "write_bytes",
	                                     "instance_info_count",
	                                     "machine_cfg_count",
	                                     "missed_metrics_count",
	                                     "metrics_fails",
	                                     "rx_count",
	                                     "tx_count",
	                                     "drive_count",
	                                     "actions_count",
	                                     "num_faults",
	                                     "exit_io_in",
	                                     "exit_io_out",
	                                     "exit_mmio_read",
	                                     "exit_mmio_write",
	                                     "failures",
	                                     "device_events",
	                                     "panic_count",
	                                     "error_count",
	                                     "flush_count",
	                                     "sigbus",
	                                     "sigsegv",
	                                     "activate_fails",
	                                     NULL};
	struct oc_conn c;

	int log_rd = kata_fifo("logs.fifo"), met_rd = kata_fifo("metrics.fifo");
	kata_start(&c, KATA_ARGS " " KH_GUEST_ARGS);
	cr_assert_eq(kh_wait_exit(&kp, 30000), 0, "the guest's end did not end kiln:\n%s", kp.out);
	char *text = oc_drain(met_rd);
	int lines = 0;
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"), lines++) {
		json_error_t err;
		json_t *line = json_loads(l, 0, &err);
		cr_assert_not_null(line, "metrics line %d is not JSON (%s): %s", lines, err.text,
		                   l);
		for (const char *const *g = groups; *g; g++)
			kata_metrics_group(line, *g, fields);
		json_decref(line);
	}
	cr_expect_geq(lines, 1, "no metrics line reached the FIFO:\n%s", kp.out);
	free(text);
	close(log_rd);
	close(met_rd);
}

/*
 * flintlock infrastructure/microvm/firecracker: create.go Create (the log
 * and metrics files made O_CREATE|O_APPEND first by ensureState; flags
 * "--id UID --boot-timer --no-api --config-file F --metadata M"), the
 * config of config.go CreateConfig/WithMicroVM/WithState as types.go's
 * VmmConfig marshals it (drives, boot-source, logger, machine-config,
 * metrics, mmds-config, network-interfaces; smt true on amd64, the root
 * volume with cache_type Unsafe, the logger at Debug with level and
 * origin shown, mmds-config V1 listing the interfaces that allow metadata)
 * and the metadata file ({"latest": {...}}, strings).
 */
static void flintlock_files(const char *mmds_config, const char *ifaces)
{
	touch_file("firecracker.log", 0);
	touch_file("firecracker.metrics", 0);
	touch_file("root.img", 1 << 20);
	char *cfg = kh_fmt(
	        "{\"drives\":[{\"drive_id\":\"root\",\"path_on_host\":\"%s/root.img\","
	        "\"is_root_device\":true,\"is_read_only\":false,\"cache_type\":\"Unsafe\"}],"
	        "\"boot-source\":{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0 "
	        "reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd "
	        "ds=nocloud-net;s=http://169.254.169.254/latest/ " KH_GUEST_ARGS "\"},"
	        "\"logger\":{\"log_path\":\"%s/firecracker.log\",\"level\":\"Debug\","
	        "\"show_level\":true,\"show_log_origin\":true},"
	        "\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":64,\"smt\":true,"
	        "\"track_dirty_pages\":false},"
	        "\"metrics\":{\"metrics_path\":\"%s/firecracker.metrics\"},"
	        "\"mmds-config\":%s,\"network-interfaces\":%s}",
	        dir, kh_guest("hello"), dir, dir, mmds_config, ifaces);
	FILE *f = fopen("firecracker.cfg", "w");
	cr_assert_not_null(f);
	fputs(cfg, f);
	fclose(f);
	free(cfg);
	f = fopen("metadata.json", "w");
	cr_assert_not_null(f);
	fputs("{\"latest\":{\"meta-data\":\"instance_id: ns1/mvm0\\nlocal_hostname: mvm0\\n\","
	      "\"user-data\":\"#cloud-config\\nhostname: mvm0\\n\",\"vendor-data\":\"\"}}",
	      f);
	fclose(f);
}

static const char *const flintlock_argv[] = {"kiln",
                                             "--id",
                                             "01J2ZQ8M4W6X7Y8Z9A0B1C2D3E",
                                             "--boot-timer",
                                             "--no-api",
                                             "--config-file",
                                             "firecracker.cfg",
                                             "--metadata",
                                             "metadata.json",
                                             NULL};

Test(orch_cfg, flintlock_no_api_with_metadata)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a tap");
	cr_assert_eq(kh_netns_enter("kiln-orch-fl"), 0);
	cr_assert_eq(system("ip tuntap add dev kfltap0 mode tap && ip link set kfltap0 up"), 0);
	flintlock_files("{\"version\":\"V1\",\"network_interfaces\":[\"eth0\"]}",
	                "[{\"iface_id\":\"eth0\",\"host_dev_name\":\"kfltap0\","
	                "\"guest_mac\":\"02:00:00:00:00:01\"}]");
	cr_assert_eq(kh_spawn(&kp, flintlock_argv), 0);
	int st = kh_wait_exit(&kp, 30000);
	if (system("ip netns del kiln-orch-fl") != 0)
		fprintf(stderr, "could not delete the namespace\n");
	cr_expect_eq(st, 0, "kiln did not boot flintlock's config to the guest's end:\n%s", kp.out);
	cr_expect(strstr(kp.out, "bye"), "%s", kp.out);
	char *log = oc_slurp("firecracker.log");
	cr_expect_neq(log[0], '\0', "nothing in the Debug log file");
	free(log);
}

/*
 * With no interface allowing metadata, flintlock writes "mmds-config":
 * {"version": "V1"} alone; Firecracker's MmdsConfig requires
 * network_interfaces (vmm_config/mmds.rs, no serde default), so the file
 * is refused and Firecracker exits with an error before booting.
 */
Test(orch_cfg, flintlock_mmds_config_without_interfaces_is_refused)
{
	flintlock_files("{\"version\":\"V1\"}", "[]");
	cr_assert_eq(kh_spawn(&kp, flintlock_argv), 0);
	int st = kh_wait_exit(&kp, 10000);
	cr_expect(st > 0, "kiln took the config (exit %d):\n%s", st, kp.out);
	cr_expect(strstr(kp.out, "network_interfaces"), "the refusal does not name it:\n%s",
	          kp.out);
	cr_expect_null(strstr(kp.out, "bye"), "the guest ran:\n%s", kp.out);
}

/*
 * kata fc.go fcInit's jailed branch: "--id ID --node 0 --exec-file FC
 * --uid 0 --gid 0 --chroot-base-dir /run/vc --daemonize -- --config-file
 * /fcConfig.json". Firecracker's jailer has had no --node since 1.0
 * (src/jailer/src/main.rs build_arg_parser), so it refuses the line before
 * it makes anything, and so must kiln-jailer: a usage error naming the flag,
 * no chroot made.
 */
Test(orch_cfg, kata_jailer_line_is_refused_as_firecrackers_jailer_does)
{
	const char *jailer = getenv("KILN_JAILER");
	if (!jailer || access(jailer, X_OK) != 0)
		cr_skip_test("KILN_JAILER is not set");
	char *base = kh_fmt("%s/vc", dir);
	const char *argv[] = {jailer,
	                      "--id",
	                      "kata0123",
	                      "--node",
	                      "0",
	                      "--exec-file",
	                      kh_kiln(),
	                      "--uid",
	                      "0",
	                      "--gid",
	                      "0",
	                      "--chroot-base-dir",
	                      base,
	                      "--daemonize",
	                      "--",
	                      "--config-file",
	                      "/fcConfig.json",
	                      NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 10000);
	cr_expect(st > 0, "kiln-jailer took Kata's line (exit %d):\n%s", st, kp.out);
	cr_expect(strstr(kp.out, "--node"), "the refusal does not name --node:\n%s", kp.out);
	cr_expect_neq(access(base, F_OK), 0, "%s was made", base);
	free(base);
}
