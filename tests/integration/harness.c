// SPDX-License-Identifier: Apache-2.0
/* tests/integration/harness.c: child-process plumbing for integration tests. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

const char *kh_kiln(void)
{
	const char *p = getenv("KILN_BIN");
	return p ? p : "build/daemon/kiln";
}

const char *kh_guest(const char *name)
{
	static __thread char buf[4096];
	const char *dir = getenv("KILN_GUEST_DIR");
	snprintf(buf, sizeof(buf), "%s/%s.elf", dir ? dir : "build/tests/guests", name);
	return buf;
}

char *kh_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

char *kh_write_temp(const char *data, const char *suffix)
{
	char *path = kh_fmt("/tmp/kiln-test-XXXXXX%s", suffix ? suffix : "");
	int fd = mkstemps(path, suffix ? (int)strlen(suffix) : 0);
	if (fd < 0) {
		free(path);
		return NULL;
	}
	size_t len = strlen(data);
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

char *kh_guest_config(const char *name, unsigned vcpus, unsigned mem_mib, const char *args)
{
	return kh_fmt("{\"boot-source\": {\"kernel_image_path\": \"%s\"%s%s%s},"
	              " \"machine-config\": {\"vcpu_count\": %u, \"mem_size_mib\": %u}}",
	              kh_guest(name), args ? ", \"boot_args\": \"" : "", args ? args : "",
	              args ? "\"" : "", vcpus, mem_mib);
}

/* kh_spawn, with the child's stdin /dev/null or a pipe (p->in_fd its write end) */
static int spawn(struct kproc *p, const char *const argv[], bool with_stdin)
{
	int pipefd[2], infd[2] = {-1, -1};
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	p->pid = -1;
	p->out_fd = -1;
	while (argv[n])
		n++;
	if (with_stdin && pipe2(infd, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		int err = errno;
		if (with_stdin) {
			close(infd[0]);
			close(infd[1]);
		}
		return -err;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int err = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		if (with_stdin) {
			close(infd[0]);
			close(infd[1]);
		}
		return -err;
	}
	if (pid == 0) {
		int in = with_stdin ? infd[0] : open("/dev/null", O_RDONLY);
		dup2(in, STDIN_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		char **args = calloc(n + 1, sizeof(char *));
		/* an absolute argv[0] is the program; anything else means kiln */
		args[0] = (char *)(argv[0][0] == '/' ? argv[0] : kh_kiln());
		for (size_t i = 1; i < n; i++)
			args[i] = (char *)argv[i];
		execv(args[0], args);
		_exit(127);
	}
	close(pipefd[1]);
	if (with_stdin) {
		close(infd[0]);
		p->in_fd = infd[1];
		p->has_stdin = true;
	}
	p->pid = pid;
	p->out_fd = pipefd[0];
	p->cap = 4096;
	p->out = calloc(1, p->cap);
	return 0;
}

int kh_marker(char out[17])
{
	uint8_t b[8];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	if (n != (ssize_t)sizeof(b))
		return -EIO;
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

int kh_spawn(struct kproc *p, const char *const argv[])
{
	return spawn(p, argv, false);
}

int kh_spawn_stdin(struct kproc *p, const char *const argv[])
{
	return spawn(p, argv, true);
}

int kh_type(struct kproc *p, const char *text)
{
	size_t len = strlen(text);
	if (!p->has_stdin)
		return -EBADF;
	return write(p->in_fd, text, len) == (ssize_t)len ? 0 : -EIO;
}

int kh_spawn_config(struct kproc *p, const char *json)
{
	char *path = kh_write_temp(json, ".json");
	if (!path)
		return -EIO;
	const char *argv[] = {"kiln", "--no-api", "--config-file", path, NULL};
	int ret = kh_spawn(p, argv);
	if (ret < 0) {
		unlink(path);
		free(path);
		return ret;
	}
	p->cfg_path = path; /* removed by kh_kill */
	return 0;
}

/* reads what is available for up to `ms`; false on EOF */
static bool pump(struct kproc *p, int ms)
{
	struct pollfd pfd = {.fd = p->out_fd, .events = POLLIN};
	if (p->out_fd < 0)
		return false;
	if (poll(&pfd, 1, ms) <= 0)
		return true;
	if (p->len + 4096 + 1 > p->cap) {
		p->cap = p->cap * 2 + 4096;
		p->out = realloc(p->out, p->cap);
	}
	ssize_t n = read(p->out_fd, p->out + p->len, p->cap - p->len - 1);
	if (n <= 0) {
		close(p->out_fd);
		p->out_fd = -1;
		return false;
	}
	p->len += (size_t)n;
	p->out[p->len] = '\0';
	return true;
}

bool kh_wait_for(struct kproc *p, const char *needle, int timeout_ms)
{
	long long end = mono_ms() + kh_scaled_ms(timeout_ms);
	for (;;) {
		if (p->out && strstr(p->out, needle))
			return true;
		long long left = end - mono_ms();
		if (left <= 0 || !pump(p, (int)(left > 100 ? 100 : left)))
			return p->out && strstr(p->out, needle);
	}
}

int kh_wait_exit(struct kproc *p, int timeout_ms)
{
	long long end = mono_ms() + kh_scaled_ms(timeout_ms);
	while (!p->exited) {
		int st;
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid) {
			p->exited = true;
			p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		if (mono_ms() >= end)
			return -1;
		if (!pump(p, 20))
			usleep(5000);
	}
	while (pump(p, 0) && p->out_fd >= 0)
		;
	return p->status;
}

const char *kh_status(struct kproc *p)
{
	static char buf[320];
	int st = kh_wait_exit(p, 2000);
	if (st < 0)
		return "kiln is still running";
	int n;
	if (st > 128)
		n = snprintf(buf, sizeof(buf), "kiln was killed by signal %d", st - 128);
	else
		n = snprintf(buf, sizeof(buf), "kiln exited with status %d", st);
	/* why, in kiln's words: its last stop line or a sanitizer's verdict */
	const char *why = NULL;
	for (const char *k = p->out; k && (k = strstr(k, "VM ")); k++)
		if (!strncmp(k, "VM stopped: ", 12) || !strncmp(k, "VM crashed: ", 12))
			why = k;
	const char *san = p->out ? strstr(p->out, "ERROR: AddressSanitizer") : NULL;
	if (!san && p->out)
		san = strstr(p->out, "runtime error:");
	if (san)
		why = san;
	if (why)
		snprintf(buf + n, sizeof(buf) - (size_t)n, ": \"%.*s\"",
		         (int)strcspn(why, "\n") < 240 ? (int)strcspn(why, "\n") : 240, why);
	return buf;
}

void kh_kill(struct kproc *p)
{
	if (p->pid > 0 && !p->exited) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->exited = true;
	}
	if (p->out_fd >= 0)
		close(p->out_fd);
	p->out_fd = -1;
	if (p->has_stdin)
		close(p->in_fd);
	p->has_stdin = false;
	free(p->out);
	p->out = NULL;
	p->pid = -1;
	if (p->cfg_path) {
		unlink(p->cfg_path);
		free(p->cfg_path);
		p->cfg_path = NULL;
	}
}

int kh_netns_with_tap(const char *name, const char *tap)
{
	int ret = kh_netns_enter(name);
	if (ret < 0)
		return ret;
	char *cmd = kh_fmt("sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 "
	                   "net.ipv6.conf.default.disable_ipv6=1 && "
	                   "ip tuntap add dev %s mode tap && ip link set %s up",
	                   tap, tap);
	ret = system(cmd) == 0 ? 0 : -EIO;
	free(cmd);
	return ret;
}

void kh_netns_del(const char *name)
{
	if (!name[0])
		return;
	char *cmd = kh_fmt("ip netns del %s", name);
	if (system(cmd) != 0)
		fprintf(stderr, "%s: could not delete netns %s\n", program_invocation_short_name,
		        name);
	free(cmd);
}

int kh_netns_enter(const char *name)
{
	char *cmd = kh_fmt("ip netns add %s", name), *path = kh_fmt("/run/netns/%s", name);
	int ret = system(cmd) == 0 ? 0 : -EIO;
	int fd = ret ? -1 : open(path, O_RDONLY | O_CLOEXEC);

	if (!ret && (fd < 0 || setns(fd, CLONE_NEWNET) < 0))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(cmd);
	free(path);
	return ret;
}
