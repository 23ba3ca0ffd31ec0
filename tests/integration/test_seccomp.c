// SPDX-License-Identifier: Apache-2.0
/*
 * kiln's seccomp filters (daemon/seccomp_filters.h): every thread of a
 * running VM is filtered (Seccomp: 2 in /proc), and each thread kind that
 * makes a call outside its list ends kiln with exit 148 and one log line
 * naming the thread and the call. The trigger is the test-only
 * KILN_TEST_SECCOMP_VIOLATE=<kind>: that kind's thread calls getpgrp (in no
 * list) right after loading its filter. --no-seccomp leaves threads bare.
 *
 * --seccomp-filter FILE (docs/seccomp.md): kiln's own filters, printed by
 * --print-seccomp-filter and given back as a file, confine every thread
 * the same; a file whose vcpu filter lacks KVM_RUN ends kiln at the
 * vCPU's first KVM_RUN; a file kiln cannot use, and flags that clash, are
 * refused with a message naming the problem.
 */
#include "api_client.h"
#include "harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_BAD_SYSCALL 148
#define EXIT_BAD_CONFIG  152
#define EXIT_ARGS        153

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
/* seccomp.c: LeakSanitizer's exit check needs the main thread unfiltered */
#define SKIP_IF_SANITIZED() cr_skip_test("a sanitizer build leaves the vmm thread unfiltered")
#else
#define SKIP_IF_SANITIZED() ((void)0)
#endif

static struct kproc kp;
static char sock[64], *cfg_path, *filter_path;

static void setup(void)
{
	snprintf(sock, sizeof(sock), "/tmp/kiln-it-seccomp-%d.sock", getpid());
	unlink(sock);
}

static void teardown(void)
{
	kh_kill(&kp);
	unsetenv("KILN_TEST_SECCOMP_VIOLATE");
	unlink(sock);
	if (cfg_path)
		unlink(cfg_path);
	free(cfg_path);
	cfg_path = NULL;
	if (filter_path)
		unlink(filter_path);
	free(filter_path);
	filter_path = NULL;
}

TestSuite(seccomp, .init = setup, .fini = teardown, .timeout = 180);

/* kiln with the API and memck (a vCPU) with an entropy device (an I/O thread), and a flag */
static void start_vm(const char *flag, const char *value)
{
	char *cfg = kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": "
	                   "\"" KH_GUEST_ARGS
	                   " memck.mib=4 memck.report_ms=100\"}, \"machine-config\": "
	                   "{\"vcpu_count\": 1, \"mem_size_mib\": 128}, \"entropy\": {}}",
	                   kh_guest("memck"));
	cfg_path = kh_write_temp(cfg, ".json");
	free(cfg);
	const char *argv[] = {"kiln",   "--api-sock", sock,  "--config-file",
	                      cfg_path, flag,         value, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
}

/* a request once the socket accepts; its status or -errno */
static int get_root(void)
{
	struct ac_resp r;
	int st = -1;
	for (int i = 0; i < 500 && st < 0; i++) {
		st = ac_request(sock, "GET", "/", NULL, &r);
		if (st < 0)
			usleep(10000);
		else
			ac_resp_free(&r);
	}
	return st;
}

/* how many of kiln's threads show Seccomp: 2, of how many, and whether the main one does */
static void count_filtered(int *filtered, int *threads, bool *main_filtered)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", kp.pid);
	DIR *d = opendir(path);
	cr_assert(d, "cannot list %s", path);
	*filtered = *threads = 0;
	for (struct dirent *t; (t = readdir(d));) {
		if (t->d_name[0] == '.')
			continue;
		char status[512], line[256];
		snprintf(status, sizeof(status), "%s/%s/status", path, t->d_name);
		FILE *f = fopen(status, "r");
		if (!f)
			continue;
		(*threads)++;
		while (fgets(line, sizeof(line), f))
			if (strcmp(line, "Seccomp:\t2\n") == 0) {
				(*filtered)++;
				if (main_filtered && atoi(t->d_name) == kp.pid)
					*main_filtered = true;
			}
		fclose(f);
	}
	closedir(d);
}

Test(seccomp, every_thread_of_a_running_vm_is_filtered)
{
	SKIP_IF_SANITIZED();
	start_vm(NULL, NULL);
	cr_assert_eq(get_root(), 200, "output:\n%s", kp.out);
	cr_assert(kh_wait_for(&kp, "memck: report 1 ", 60000), "no report: %s", kp.out);
	int filtered, threads;
	count_filtered(&filtered, &threads, NULL);
	/* the VMM, the API's, the vCPU's and the entropy device's threads at least */
	cr_assert_geq(threads, 4, "%d threads", threads);
	cr_assert_eq(filtered, threads, "%d of %d threads filtered; output:\n%s", filtered, threads,
	             kp.out);
}

Test(seccomp, no_seccomp_leaves_threads_unfiltered)
{
	start_vm("--no-seccomp", NULL);
	cr_assert_eq(get_root(), 200, "output:\n%s", kp.out);
	cr_assert(kh_wait_for(&kp, "memck: report 1 ", 60000), "no report: %s", kp.out);
	int filtered, threads;
	count_filtered(&filtered, &threads, NULL);
	cr_assert_eq(filtered, 0, "%d of %d threads filtered", filtered, threads);
}

/* kind `kind`'s thread `thread` makes a call outside its filter: kiln exits 148 saying `what` */
static void expect_killed_by(const char *kind, const char *thread, const char *what)
{
	char *want = kh_fmt("thread %s", thread);
	int st = kh_wait_exit(&kp, 60000);
	cr_assert_eq(st, EXIT_BAD_SYSCALL, "%s: kiln ended with %d (%s); output:\n%s", kind, st,
	             kh_status(&kp), kp.out);
	const char *line = strstr(kp.out, want);
	cr_assert(line, "%s: no \"%s\" in the output:\n%s", kind, want, kp.out);
	cr_assert(strstr(line, what), "%s: no \"%s\" in the output:\n%s", kind, what, kp.out);
	free(want);
}

/* kind `kind` calls getpgrp: kiln exits 148 naming `thread` and the call */
static void expect_killed(const char *kind, const char *thread)
{
	expect_killed_by(kind, thread, "made system call 111 (getpgrp)");
}

Test(seccomp, vmm_thread_outside_its_list)
{
	SKIP_IF_SANITIZED();
	setenv("KILN_TEST_SECCOMP_VIOLATE", "vmm", 1);
	start_vm(NULL, NULL);
	expect_killed("vmm", "kiln ");
}

Test(seccomp, vcpu_thread_outside_its_list)
{
	setenv("KILN_TEST_SECCOMP_VIOLATE", "vcpu", 1);
	start_vm(NULL, NULL);
	expect_killed("vcpu", "kiln_vcpu0");
}

Test(seccomp, io_thread_outside_its_list)
{
	setenv("KILN_TEST_SECCOMP_VIOLATE", "io", 1);
	start_vm(NULL, NULL);
	expect_killed("io", "kiln_io");
}

Test(seccomp, api_thread_outside_its_list)
{
	setenv("KILN_TEST_SECCOMP_VIOLATE", "api", 1);
	const char *argv[] = {"kiln", "--api-sock", sock, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	get_root(); /* the first client: the thread loads its filter, then trips */
	expect_killed("api", "MHD");
}

Test(seccomp, migration_thread_outside_its_list)
{
	setenv("KILN_TEST_SECCOMP_VIOLATE", "migration", 1);
	const char *argv[] = {"kiln", "--api-sock", sock, NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	cr_assert_eq(get_root(), 200, "output:\n%s", kp.out);
	char *body = kh_fmt("{\"listen\": \"unix:%s.mig\"}", sock);
	struct ac_resp r;
	ac_request(sock, "PUT", "/migration/receive", body, &r);
	ac_resp_free(&r);
	free(body);
	expect_killed("migration", "kiln_mig_recv");
	char *mig = kh_fmt("%s.mig", sock);
	unlink(mig);
	free(mig);
}

/* ------------------------------------------------ --seccomp-filter FILE */

/* kiln --print-seccomp-filter, parsed */
static json_t *printed_filters(void)
{
	const char *argv[] = {"kiln", "--print-seccomp-filter", NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	cr_assert_eq(kh_wait_exit(&kp, 20000), 0, "output:\n%s", kp.out);
	json_error_t err;
	json_t *doc = json_loads(kp.out, 0, &err);
	cr_assert_not_null(doc, "line %d: %s in:\n%s", err.line, err.text, kp.out);
	kh_kill(&kp);
	return doc;
}

/* `doc` (taken) written to filter_path */
static void write_filters(json_t *doc)
{
	char *text = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_INDENT(1));
	cr_assert_not_null(text);
	filter_path = kh_write_temp(text, ".json");
	cr_assert_not_null(filter_path);
	free(text);
	json_decref(doc);
}

/* the index of `kind`'s rule for `call` whose first comparison's comment is `what`, or -1 */
static int find_rule(json_t *doc, const char *kind, const char *call, const char *what)
{
	json_t *rules = json_object_get(json_object_get(doc, kind), "filter");
	for (size_t i = 0; i < json_array_size(rules); i++) {
		json_t *r = json_array_get(rules, i);
		json_t *cond = json_array_get(json_object_get(r, "args"), 0);
		const char *c = json_string_value(json_object_get(cond, "comment"));
		if (strcmp(json_string_value(json_object_get(r, "syscall")), call) == 0 &&
		    (!what || (c && strcmp(c, what) == 0)))
			return (int)i;
	}
	return -1;
}

Test(seccomp, printed_filters_name_every_kind_with_a_why_per_rule)
{
	json_t *doc = printed_filters();
	cr_assert_eq(json_object_size(doc), 5);
	const char *kinds[] = {"vmm", "api", "vcpu", "io", "migration"};
	for (int k = 0; k < 5; k++) {
		json_t *f = json_object_get(doc, kinds[k]), *r;
		size_t i;
		cr_assert_str_eq(json_string_value(json_object_get(f, "mismatch_action")), "trap");
		cr_assert_gt(json_array_size(json_object_get(f, "filter")), 30, "%s", kinds[k]);
		json_array_foreach(json_object_get(f, "filter"), i, r)
		{
			const char *why = json_string_value(json_object_get(r, "comment"));
			cr_expect(why && why[0], "%s.filter[%zu] has no comment", kinds[k], i);
		}
	}
	cr_assert_geq(find_rule(doc, "vcpu", "ioctl", "KVM_RUN"), 0);
	cr_assert_geq(find_rule(doc, "vmm", "tgkill", "kiln's pid"), 0);
	json_decref(doc);
}

Test(seccomp, a_file_is_printed_back_as_kiln_reads_it)
{
	write_filters(printed_filters());
	const char *argv[] = {"kiln", "--print-seccomp-filter", NULL};
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	cr_assert_eq(kh_wait_exit(&kp, 20000), 0);
	char *own = strdup(kp.out);
	const char *again[] = {"kiln", "--seccomp-filter", filter_path, "--print-seccomp-filter",
	                       NULL};
	cr_assert_eq(kh_spawn(&kp, again), 0);
	cr_assert_eq(kh_wait_exit(&kp, 20000), 0, "output:\n%s", kp.out);
	cr_assert_str_eq(kp.out, own);
	free(own);
}

Test(seccomp, printed_filters_given_back_filter_every_thread)
{
	write_filters(printed_filters());
	start_vm("--seccomp-filter", filter_path);
	cr_assert_eq(get_root(), 200, "output:\n%s", kp.out);
	cr_assert(kh_wait_for(&kp, "memck: report 1 ", 60000), "no report: %s", kp.out);
	int filtered, threads;
	bool main_filtered = false;
	count_filtered(&filtered, &threads, &main_filtered);
	cr_assert_geq(threads, 4, "%d threads", threads);
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
	/* seccomp.c: the main (vmm) thread stays unfiltered for LeakSanitizer */
	cr_assert(!main_filtered);
	cr_assert_eq(filtered, threads - 1, "%d of %d threads filtered; output:\n%s", filtered,
	             threads, kp.out);
#else
	cr_assert(main_filtered);
	cr_assert_eq(filtered, threads, "%d of %d threads filtered; output:\n%s", filtered, threads,
	             kp.out);
#endif
}

Test(seccomp, a_vcpu_filter_without_kvm_run_ends_kiln)
{
	json_t *doc = printed_filters();
	int i = find_rule(doc, "vcpu", "ioctl", "KVM_RUN");
	cr_assert_geq(i, 0);
	json_array_remove(json_object_get(json_object_get(doc, "vcpu"), "filter"), (size_t)i);
	write_filters(doc);
	start_vm("--seccomp-filter", filter_path);
	expect_killed_by("vcpu", "kiln_vcpu0", "made system call 16 (ioctl)");
	cr_assert(strstr(kp.out, "and request 44672,"), "not KVM_RUN (44672):\n%s", kp.out);
}

/* kiln `flag` `value` ... exits with `code` and prints `needle` */
static void expect_refusal(const char *const argv[], int code, const char *needle)
{
	kh_kill(&kp);
	cr_assert_eq(kh_spawn(&kp, argv), 0);
	int st = kh_wait_exit(&kp, 20000);
	cr_assert_eq(st, code, "%s %s: exit %d; output:\n%s", argv[1], argv[2], st, kp.out);
	cr_assert(strstr(kp.out, needle), "no \"%s\" in:\n%s", needle, kp.out);
	cr_expect_null(strstr(kp.out, "Sanitizer"), "sanitizer report:\n%s", kp.out);
}

/* the printed filters, changed by `edit`, refused with `needle` */
static void expect_file_refused(void (*edit)(json_t *doc), const char *needle)
{
	json_t *doc = printed_filters();
	edit(doc);
	write_filters(doc);
	const char *argv[] = {"kiln", "--seccomp-filter", filter_path, "--api-sock", sock, NULL};
	expect_refusal(argv, EXIT_BAD_CONFIG, needle);
	cr_assert(strstr(kp.out, filter_path), "the file is not named:\n%s", kp.out);
	unlink(filter_path);
	free(filter_path);
	filter_path = NULL;
}

static json_t *vcpu_rule(json_t *doc, int i)
{
	return json_array_get(json_object_get(json_object_get(doc, "vcpu"), "filter"), (size_t)i);
}

static void drop_io(json_t *doc)
{
	json_object_del(doc, "io");
}

static void add_kind(json_t *doc)
{
	json_object_set(doc, "gpu", json_object_get(doc, "vcpu"));
}

static void misspell_call(json_t *doc)
{
	json_object_set_new(vcpu_rule(doc, 2), "syscall", json_string("reed"));
}

static void bad_op(json_t *doc)
{
	json_t *kvm_run = vcpu_rule(doc, find_rule(doc, "vcpu", "ioctl", "KVM_RUN"));
	json_object_set_new(json_array_get(json_object_get(kvm_run, "args"), 0), "op",
	                    json_string("equals"));
}

static void bad_index(json_t *doc)
{
	json_t *kvm_run = vcpu_rule(doc, find_rule(doc, "vcpu", "ioctl", "KVM_RUN"));
	json_object_set_new(json_array_get(json_object_get(kvm_run, "args"), 0), "index",
	                    json_integer(6));
}

static void unknown_key(json_t *doc)
{
	json_object_set_new(vcpu_rule(doc, 0), "actions", json_string("allow"));
}

static void bad_action(json_t *doc)
{
	json_object_set_new(json_object_get(doc, "api"), "mismatch_action", json_string("deny"));
}

Test(seccomp, filter_files_kiln_cannot_use_are_refused)
{
	expect_file_refused(drop_io, "no filter for io (a file has one for each of vmm, api, vcpu");
	expect_file_refused(add_kind, "unknown thread kind \"gpu\"");
	expect_file_refused(misspell_call, "vcpu.filter[2].syscall: no system call \"reed\"");
	json_t *doc = printed_filters();
	char *op = kh_fmt("vcpu.filter[%d].args[0].op: unknown op \"equals\"",
	                  find_rule(doc, "vcpu", "ioctl", "KVM_RUN"));
	char *index = kh_fmt("vcpu.filter[%d].args[0].index must be an argument's index, 0 to 5",
	                     find_rule(doc, "vcpu", "ioctl", "KVM_RUN"));
	json_decref(doc);
	expect_file_refused(bad_op, op);
	expect_file_refused(bad_index, index);
	expect_file_refused(unknown_key, "vcpu.filter[0]: unknown key \"actions\"");
	expect_file_refused(bad_action, "api.mismatch_action: unknown action \"deny\"");
	free(op);
	free(index);

	/* not JSON, not there, not a file */
	filter_path = kh_write_temp("{\"vmm\": {\"filter\": [}}", ".json");
	const char *not_json[] = {"kiln", "--seccomp-filter", filter_path, "--api-sock", sock,
	                          NULL};
	expect_refusal(not_json, EXIT_BAD_CONFIG, "not JSON: line 1, column 21");
	const char *missing[] = {"kiln", "--seccomp-filter", "/nonexistent/filters.json", NULL};
	expect_refusal(missing, EXIT_BAD_CONFIG,
	               "--seccomp-filter /nonexistent/filters.json: cannot open");
	const char *dir[] = {"kiln", "--seccomp-filter", "/tmp", NULL};
	expect_refusal(dir, EXIT_BAD_CONFIG, "/tmp is not a regular file");
	const char *print_bad[] = {"kiln", "--seccomp-filter", filter_path,
	                           "--print-seccomp-filter", NULL};
	expect_refusal(print_bad, EXIT_BAD_CONFIG, "not JSON");
	cr_assert_null(strstr(kp.out, "\"vmm\""), "printed:\n%s", kp.out);
}

Test(seccomp, seccomp_flags_that_clash_are_refused)
{
	const char *off[] = {"kiln", "--seccomp-filter", "/tmp/f.json", "--no-seccomp", NULL};
	expect_refusal(off, EXIT_ARGS, "--seccomp-filter and --no-seccomp cannot be used together");
	const char *off_first[] = {"kiln", "--no-seccomp", "--seccomp-filter", "/tmp/f.json", NULL};
	expect_refusal(off_first, EXIT_ARGS, "--seccomp-filter and --no-seccomp cannot be used");
	const char *audit[] = {"kiln", "--seccomp-audit", "--seccomp-filter", "/tmp/f.json", NULL};
	expect_refusal(audit, EXIT_ARGS, "\"mismatch_action\": \"log\" instead");
	const char *print[] = {"kiln", "--no-seccomp", "--print-seccomp-filter", NULL};
	expect_refusal(print, EXIT_ARGS, "--print-seccomp-filter and --no-seccomp cannot be used");
}
