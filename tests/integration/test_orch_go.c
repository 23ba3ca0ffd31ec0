// SPDX-License-Identifier: Apache-2.0
/*
 * Start-up replays of the orchestrators built on firecracker-go-sdk: the
 * SDK's own default handlers, and firecracker-containerd's shim on top of
 * them. Each test runs kiln with the flags the orchestrator passes and
 * sends its requests in its order, with its bodies (Go's encoding/json
 * writes a model's fields in the order of the struct, which go-swagger
 * generates alphabetically) and its headers (orch_client.c), and expects
 * Firecracker's answers. The guest is the freestanding `hello`, told to
 * sleep so that the runtime calls meet a running VM.
 * Sources read: firecracker-go-sdk 6fb280e (2025-12), firecracker-containerd
 * be68640 (2026-07).
 */
#include "orch_client.h"

#include <criterion/criterion.h>
#include <fcntl.h>
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
}

static void teardown(void)
{
	oc_cleanup(&kp, dir);
}

TestSuite(orch_go, .init = setup, .fini = teardown, .timeout = 180);

/* dir/name, malloc'd */
static char *in_dir(const char *name)
{
	return kh_fmt("%s/%s", dir, name);
}

/* a file of `bytes` zero bytes at dir/name (the SDK's O_CREATE of a log file is 0 bytes) */
static char *make_file(const char *name, off_t bytes)
{
	char *path = in_dir(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(ftruncate(fd, bytes), 0);
	close(fd);
	return path;
}

/* the hello guest's boot_args: sleeps `ms` so that the VM is still up */
static char *hello_args(int ms)
{
	return kh_fmt(KH_GUEST_ARGS " console=ttyS0 reboot=k panic=1 pci=off sleep=%d", ms);
}

/*
 * firecracker-go-sdk, machine.go NewMachine/Start with defaultHandlers
 * (handlers.go): configureBuilder's flags "--api-sock S --id VMID" and,
 * seccomp not enabled in the Config, "--no-seccomp"; waitForSocket's GET
 * /machine-config; BootstrapLoggingHandler (setupLogging: PUT /logger with
 * show_level true, show_log_origin false; setupMetrics: PUT /metrics);
 * CreateMachineHandler (createMachine: PUT /machine-config, then
 * refreshMachineConfiguration's GET); CreateBootSourceHandler;
 * AttachDrivesHandler (DrivesBuilder: root_drive); AddVsocksHandler;
 * ConfigMmdsHandler (no interface allows MMDS: no request); a user's
 * NewSetMetadataHandler appended to FcInit (PUT /mmds; after the start
 * Firecracker has no store unless one was made before: rpc_interface.rs
 * answers NotInitialized); startInstance. Then the runtime calls an SDK
 * user makes: DescribeInstanceInfo, UpdateGuestDrive, PauseVM/ResumeVM,
 * GetMetadata, Shutdown (SendCtrlAltDel).
 */
Test(orch_go, go_sdk_default_handlers)
{
	char *sock = in_dir("fc.sock"), *log = make_file("fc.log", 0);
	char *metrics = make_file("fc.metrics", 0), *root = make_file("root.img", 1 << 20);
	char *root2 = make_file("root2.img", 1 << 20), *vsock = in_dir("v.sock");
	const char *argv[] = {"kiln",         "--api-sock", sock, "--id", "5f0c3d1e-sdk-0001",
	                      "--no-seccomp", NULL};
	struct oc_conn c;
	char *args = hello_args(4000);

	cr_assert_eq(kh_spawn(&kp, argv), 0);
	oc_init(&c, sock, &kp);
	cr_assert(oc_wait_socket(&c, 5000), "the API never answered GET /machine-config:\n%s",
	          kp.out);

	oc_okf(&c, "PUT", "/logger",
	       "{\"level\":\"Debug\",\"log_path\":\"%s\",\"show_level\":true,"
	       "\"show_log_origin\":false}",
	       log);
	oc_okf(&c, "PUT", "/metrics", "{\"metrics_path\":\"%s\"}", metrics);
	oc_ok(&c, "PUT", "/machine-config", "{\"mem_size_mib\":64,\"smt\":false,\"vcpu_count\":1}");
	json_t *mc = oc_call(&c, "GET", "/machine-config", NULL, 200);
	cr_expect_eq(json_integer_value(json_object_get(mc, "vcpu_count")), 1);
	cr_expect_eq(json_integer_value(json_object_get(mc, "mem_size_mib")), 64);
	cr_expect(json_is_false(json_object_get(mc, "smt")));
	json_decref(mc);
	oc_okf(&c, "PUT", "/boot-source", "{\"boot_args\":\"%s\",\"kernel_image_path\":\"%s\"}",
	       args, kh_guest("hello"));
	oc_okf(&c, "PUT", "/drives/root_drive",
	       "{\"drive_id\":\"root_drive\",\"is_read_only\":false,"
	       "\"is_root_device\":true,\"path_on_host\":\"%s\"}",
	       root);
	oc_okf(&c, "PUT", "/vsock", "{\"guest_cid\":3,\"uds_path\":\"%s\",\"vsock_id\":\"vsock0\"}",
	       vsock);
	oc_ok(&c, "PUT", "/mmds", "{\"latest\":{\"meta-data\":{\"instance-id\":\"i-sdk\"}}}");
	oc_ok(&c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");

	/* Firecracker binds the vsock's socket when it makes the device */
	struct stat st;
	cr_expect_eq(stat(vsock, &st), 0, "no vsock socket at %s", vsock);
	cr_expect(S_ISSOCK(st.st_mode));
	json_t *info = oc_call(&c, "GET", "/", NULL, 200);
	cr_expect_str_eq(json_string_value(json_object_get(info, "state")), "Running");
	cr_expect_str_eq(json_string_value(json_object_get(info, "id")), "5f0c3d1e-sdk-0001");
	json_decref(info);
	oc_okf(&c, "PATCH", "/drives/root_drive",
	       "{\"drive_id\":\"root_drive\",\"path_on_host\":\"%s\"}", root2);
	oc_ok(&c, "PATCH", "/vm", "{\"state\":\"Paused\"}");
	oc_ok(&c, "PATCH", "/vm", "{\"state\":\"Resumed\"}");
	json_t *md = oc_call(&c, "GET", "/mmds", NULL, 200);
	cr_expect_str_eq(json_string_value(json_object_get(
	                         json_object_get(json_object_get(md, "latest"), "meta-data"),
	                         "instance-id")),
	                 "i-sdk");
	json_decref(md);
	oc_ok(&c, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	oc_close(&c);

	cr_expect(kh_wait_for(&kp, "bye", 30000), "the guest did not run to its end:\n%s", kp.out);
	/* Firecracker logs every API request at Info: a Debug logger has lines */
	char *logged = oc_slurp(log);
	cr_expect_neq(logged[0], '\0', "nothing in the PUT /logger file; kiln printed:\n%s",
	              kp.out);
	free(logged);
	free(args);
	free(sock);
	free(log);
	free(metrics);
	free(root);
	free(root2);
	free(vsock);
}

/* the drive id firecracker-containerd gives a stub file: base32 (RFC 4648, unpadded) of its name */
static void base32_id(const char *name, char *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned bits = 0, acc = 0;

	for (; *name; name++) {
		acc = (acc << 8) | (unsigned char)*name;
		for (bits += 8; bits >= 5; bits -= 5)
			*out++ = abc[(acc >> (bits - 5)) & 31];
	}
	if (bits)
		*out++ = abc[(acc << (5 - bits)) & 31];
	*out = '\0';
}

/* a number field of /proc/cpuinfo's first CPU, -1 when missing */
static long cpuinfo_field(const char *info, const char *name)
{
	char *key = kh_fmt("\n%s\t", name);
	const char *at = strstr(info, key);
	free(key);
	at = at ? strchr(at, ':') : NULL;
	return at ? strtol(at + 1, NULL, 10) : -1;
}

/*
 * What Firecracker's T2 needs of the host (cpu_config/x86_64/
 * custom_cpu_template.rs get_cpu_template; static_cpu_templates/mod.rs and
 * arch/x86_64/cpu_model.rs): an Intel CPU of family 6 that is Skylake
 * (model 0x55, stepping 4), Cascade Lake (0x55, 7) or Ice Lake (0x6a, 6).
 */
static bool host_takes_t2(const char *info)
{
	long model = cpuinfo_field(info, "model"), stepping = cpuinfo_field(info, "stepping");

	return cpuinfo_field(info, "cpu family") == 6 &&
	       ((model == 0x55 && (stepping == 4 || stepping == 7)) ||
	        (model == 0x6a && stepping == 6));
}

/*
 * firecracker-containerd, runtime/service.go createVM/buildVMConfiguration
 * with the noop jailer (noop_jailer.go BuildJailedMachine: "--api-sock
 * firecracker.sock --id VMID", relative to the shim's directory): log and
 * metrics FIFOs made with mkfifo before the start; machine config from
 * helpers.go machineConfigurationFromProto (1 vCPU, 128 MiB, smt false,
 * `cpu_template` T2 from config.go's default, or none where
 * internal/cpu_template.go SupportCPUTemplate says the host is not Intel);
 * the balloon handler after CreateMachine (buildBalloonDeviceOpt); the
 * root drive and one container stub drive, "ctrstub0" under its base32 id
 * (drive_handler.go CreateContainerStubs); the agent's vsock with the
 * SDK's zero CID (VsockDevices{{Path, ID: "agent_api"}}). Firecracker
 * checks the template at the start: `start_ok` false expects its
 * InvalidCpuModel refusal, after which the shim stops the VMM. Otherwise,
 * after the start: a container's image patched into the stub
 * (stubDrive.PatchAndMount -> UpdateGuestDrive), GetBalloonConfig, then
 * StopVM's SendCtrlAltDel. (The balloon's runtime PATCHes need a guest
 * driver: test_balloon.c.)
 */
static void containerd_replay(const char *cpu_template, bool start_ok)
{
	char stub_id[32], *args = hello_args(4000);
	char *root = make_file("root.img", 1 << 20), *image = make_file("ctr-image.ext4", 1 << 20);
	const char *argv[] = {"kiln", "--api-sock", "firecracker.sock", "--id", "ctrd-vm-1", NULL};
	struct oc_conn c;

	cr_assert_eq(chdir(dir), 0);
	cr_assert_eq(mkfifo("fc-logs.fifo", 0700), 0);
	cr_assert_eq(mkfifo("fc-metrics.fifo", 0700), 0);
	int log_rd = open("fc-logs.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int met_rd = open("fc-metrics.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert(log_rd >= 0 && met_rd >= 0);
	free(make_file("ctrstub0", 512));
	base32_id("ctrstub0", stub_id);
	cr_assert_str_eq(stub_id, "MN2HE43UOVRDA");

	cr_assert_eq(kh_spawn(&kp, argv), 0);
	oc_init(&c, "firecracker.sock", &kp);
	cr_assert(oc_wait_socket(&c, 5000), "the API never answered:\n%s", kp.out);
	oc_ok(&c, "PUT", "/logger",
	      "{\"log_path\":\"fc-logs.fifo\",\"show_level\":true,\"show_log_origin\":false}");
	oc_ok(&c, "PUT", "/metrics", "{\"metrics_path\":\"fc-metrics.fifo\"}");
	if (cpu_template)
		oc_okf(&c, "PUT", "/machine-config",
		       "{\"cpu_template\":\"%s\",\"mem_size_mib\":128,\"smt\":false,\"vcpu_count\":"
		       "1}",
		       cpu_template);
	else
		oc_ok(&c, "PUT", "/machine-config",
		      "{\"mem_size_mib\":128,\"smt\":false,\"vcpu_count\":1}");
	json_t *mc = oc_call(&c, "GET", "/machine-config", NULL, 200);
	if (cpu_template)
		cr_expect_str_eq(json_string_value(json_object_get(mc, "cpu_template")),
		                 cpu_template);
	cr_expect_eq(json_integer_value(json_object_get(mc, "mem_size_mib")), 128);
	json_decref(mc);
	oc_ok(&c, "PUT", "/balloon",
	      "{\"amount_mib\":0,\"deflate_on_oom\":true,\"stats_polling_interval_s\":1}");
	oc_okf(&c, "PUT", "/boot-source", "{\"boot_args\":\"%s\",\"kernel_image_path\":\"%s\"}",
	       args, kh_guest("hello"));
	oc_okf(&c, "PUT", "/drives/root_drive",
	       "{\"drive_id\":\"root_drive\",\"is_read_only\":true,"
	       "\"is_root_device\":true,\"path_on_host\":\"%s\"}",
	       root);
	char *stub_path = kh_fmt("/drives/%s", stub_id);
	oc_okf(&c, "PUT", stub_path,
	       "{\"drive_id\":\"%s\",\"is_read_only\":false,\"is_root_device\":false,"
	       "\"path_on_host\":\"ctrstub0\"}",
	       stub_id);
	/* Firecracker takes any u32 CID (vmm_config/vsock.rs has no check) */
	oc_ok(&c, "PUT", "/vsock",
	      "{\"guest_cid\":0,\"uds_path\":\"firecracker.vsock\",\"vsock_id\":\"agent_api\"}");
	if (!start_ok) {
		json_t *e =
		        oc_call(&c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}", 400);
		const char *m = json_string_value(json_object_get(e, "fault_message"));
		cr_expect(m && strstr(m, "The current CPU model is not permitted to apply the CPU "
		                         "template."),
		          "%s", m ? m : "no fault_message");
		json_decref(e);
		goto out;
	}
	oc_ok(&c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");

	oc_okf(&c, "PATCH", stub_path, "{\"drive_id\":\"%s\",\"path_on_host\":\"%s\"}", stub_id,
	       image);
	json_t *b = oc_call(&c, "GET", "/balloon", NULL, 200);
	cr_expect(json_is_true(json_object_get(b, "deflate_on_oom")));
	cr_expect_eq(json_integer_value(json_object_get(b, "stats_polling_interval_s")), 1);
	json_decref(b);
	oc_ok(&c, "PUT", "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
	cr_expect(kh_wait_for(&kp, "bye", 30000), "the guest did not run to its end:\n%s", kp.out);
out:
	oc_close(&c);
	/* the shim's log FIFO got kiln's lines (Firecracker logs each API request) */
	char *logged = oc_drain(log_rd);
	cr_expect_neq(logged[0], '\0', "nothing came through the log FIFO:\n%s", kp.out);
	free(logged);
	close(log_rd);
	close(met_rd);
	free(stub_path);
	free(root);
	free(image);
	free(args);
}

/* the shim on this host: T2 on Intel, where Firecracker then checks the CPU model */
Test(orch_go, containerd_create_vm)
{
	char *info = oc_slurp("/proc/cpuinfo");
	bool intel = strstr(info, "GenuineIntel") != NULL, t2 = host_takes_t2(info);
	free(info);
	containerd_replay(intel ? "T2" : NULL, !intel || t2);
}

/* the shim where SupportCPUTemplate is false (AMD, Arm): no template, the whole sequence */
Test(orch_go, containerd_create_vm_without_template)
{
	containerd_replay(NULL, true);
}

/*
 * firecracker-go-sdk with a snapshot: Machine.CreateSnapshot after PauseVM
 * (PATCH /vm, then PUT /snapshot/create with mem_file_path and
 * snapshot_path only: a Full snapshot), and a new Machine built
 * WithSnapshot (machine.go NewMachine, handlers.go
 * loadSnapshotHandlerList: the default FcInit handlers less
 * loadSnapshotRemoveHandlerList, LoadSnapshotHandler in their place):
 * "--api-sock S --id VMID --no-seccomp", waitForSocket, PUT /logger and
 * /metrics, PUT /snapshot/load {"mem_backend": {"backend_path",
 * "backend_type": "File"}, "resume_vm": true, "snapshot_path"}, and no
 * InstanceStart (startInstance returns early when Cfg.hasSnapshot()).
 * The restored hello guest goes on sleeping and ends.
 */
Test(orch_go, go_sdk_snapshot_create_and_load)
{
	char *sock = in_dir("a.sock"), *sock2 = in_dir("b.sock"), *log = make_file("b.log", 0);
	char *metrics = make_file("b.metrics", 0), *snap = in_dir("vm.snap"),
	     *mem = in_dir("vm.mem");
	char *args = hello_args(3000);
	const char *argv1[] = {"kiln", "--api-sock", sock, "--id", "sdk-src", "--no-seccomp", NULL};
	const char *argv2[] = {"kiln",    "--api-sock",   sock2, "--id",
	                       "sdk-dst", "--no-seccomp", NULL};
	struct kproc dst = {0};
	struct oc_conn c;

	cr_assert_eq(kh_spawn(&kp, argv1), 0);
	oc_init(&c, sock, &kp);
	cr_assert(oc_wait_socket(&c, 5000), "%s", kp.out);
	oc_ok(&c, "PUT", "/machine-config", "{\"mem_size_mib\":64,\"smt\":false,\"vcpu_count\":1}");
	oc_okf(&c, "PUT", "/boot-source", "{\"boot_args\":\"%s\",\"kernel_image_path\":\"%s\"}",
	       args, kh_guest("hello"));
	oc_ok(&c, "PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
	cr_assert(kh_wait_for(&kp, "sleeping", 10000), "%s", kp.out);
	oc_ok(&c, "PATCH", "/vm", "{\"state\":\"Paused\"}");
	oc_okf(&c, "PUT", "/snapshot/create", "{\"mem_file_path\":\"%s\",\"snapshot_path\":\"%s\"}",
	       mem, snap);
	oc_close(&c);
	kh_kill(&kp);

	cr_assert_eq(kh_spawn(&dst, argv2), 0);
	oc_init(&c, sock2, &dst);
	cr_assert(oc_wait_socket(&c, 5000), "%s", dst.out);
	oc_okf(&c, "PUT", "/logger",
	       "{\"level\":\"Debug\",\"log_path\":\"%s\",\"show_level\":true,"
	       "\"show_log_origin\":false}",
	       log);
	oc_okf(&c, "PUT", "/metrics", "{\"metrics_path\":\"%s\"}", metrics);
	oc_okf(&c, "PUT", "/snapshot/load",
	       "{\"mem_backend\":{\"backend_path\":\"%s\",\"backend_type\":\"File\"},"
	       "\"resume_vm\":true,\"snapshot_path\":\"%s\"}",
	       mem, snap);
	json_t *info = oc_call(&c, "GET", "/", NULL, 200);
	cr_expect_str_eq(json_string_value(json_object_get(info, "state")), "Running");
	json_decref(info);
	oc_close(&c);
	cr_expect(kh_wait_for(&dst, "bye", 30000), "the restored guest did not end:\n%s", dst.out);
	kh_kill(&dst);
	free(args);
	free(sock);
	free(sock2);
	free(log);
	free(metrics);
	free(snap);
	free(mem);
}
