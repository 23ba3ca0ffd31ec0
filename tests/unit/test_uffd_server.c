// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_uffd_server.c: examples/uffd_page_server against a real
 * userfaultfd. The test plays kiln's part of the protocol (see the
 * server's header comment): it maps anonymous "guest RAM", registers it
 * with UFFDIO_REGISTER_MODE_MISSING, sends the region JSON with the
 * userfaultfd to the server it spawned, then touches the pages, which the
 * server fills from the memory file. No skipping: a host without
 * userfaultfd fails these tests with the reason.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE   4096ul
#define NPAGES 32ul

static char dir[64], sock_path[128], mem_path[128], log_path[128];
static pid_t server = -1;

static void setup(void)
{
	strcpy(dir, "/tmp/kiln-uffd-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/uffd.sock", dir);
	snprintf(mem_path, sizeof(mem_path), "%s/mem", dir);
	snprintf(log_path, sizeof(log_path), "%s/server.log", dir);
}

static void teardown(void)
{
	char cmd[128];

	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(uffd_server, .init = setup, .fini = teardown, .timeout = 60);

/* byte j of page i of the memory file */
static uint8_t file_byte(unsigned long i, unsigned long j)
{
	return (uint8_t)(i * 131 + j * 7 + 1);
}

static void make_memfile(unsigned long npages)
{
	static uint8_t page[PAGE];
	FILE *f = fopen(mem_path, "w");

	cr_assert_not_null(f);
	for (unsigned long i = 0; i < npages; i++) {
		for (unsigned long j = 0; j < PAGE; j++)
			page[j] = file_byte(i, j);
		cr_assert_eq(fwrite(page, PAGE, 1, f), 1);
	}
	cr_assert_eq(fclose(f), 0);
}

static const char *server_bin(void)
{
	static char path[512];
	const char *root = getenv("KILN_BUILD_ROOT");

	cr_assert_not_null(root, "KILN_BUILD_ROOT is not set (run through meson test)");
	snprintf(path, sizeof(path), "%s/examples/uffd_page_server", root);
	cr_assert_eq(access(path, X_OK), 0, "%s: %s", path, strerror(errno));
	return path;
}

static int try_connect(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(a.sun_path, sock_path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
		return fd;
	close(fd);
	return -1;
}

/* starts the server (with --fork when asked) and returns a connection to it */
static int start_server(bool fork_each)
{
	const char *bin = server_bin();
	int fd = -1;

	server = fork();
	cr_assert_geq(server, 0);
	if (server == 0) {
		int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(log, 2);
		if (fork_each)
			execl(bin, bin, "--fork", sock_path, mem_path, (char *)NULL);
		else
			execl(bin, bin, sock_path, mem_path, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && fd < 0; i++) {
		fd = try_connect();
		if (fd < 0)
			usleep(10000);
	}
	cr_assert_geq(fd, 0, "the page server did not listen on %s", sock_path);
	return fd;
}

/* a userfaultfd from the syscall or, where that is forbidden, /dev/userfaultfd */
static int new_uffd(uint64_t features)
{
	struct uffdio_api api = {.api = UFFD_API, .features = features};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	int err = errno;

	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		fd = dev < 0 ? -1 : ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
		if (fd < 0)
			cr_assert_fail(
			        "userfaultfd is not available here: syscall: %s, "
			        "/dev/userfaultfd: %s (root or vm.unprivileged_userfaultfd=1 "
			        "is needed)",
			        strerror(err), strerror(errno));
		close(dev);
	}
	cr_assert_eq(ioctl(fd, UFFDIO_API, &api), 0, "UFFDIO_API: %s", strerror(errno));
	return fd;
}

/* anonymous "guest RAM" of npages, registered for missing-page faults */
static uint8_t *map_registered(int uffd, unsigned long npages)
{
	uint8_t *p = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct uffdio_register reg = {.range = {.start = (uintptr_t)p, .len = npages * PAGE},
	                              .mode = UFFDIO_REGISTER_MODE_MISSING};

	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0, "UFFDIO_REGISTER: %s", strerror(errno));
	return p;
}

/* kiln's one message: `len` bytes of JSON with the userfaultfd as SCM_RIGHTS */
static void send_part(int conn, const char *json, size_t len, int uffd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl = {0};
	struct iovec iov = {(void *)json, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (uffd >= 0) {
		mh.msg_control = &ctl;
		mh.msg_controllen = sizeof(ctl);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	}
	cr_assert_eq(sendmsg(conn, &mh, MSG_NOSIGNAL), (ssize_t)len, "sendmsg: %s",
	             strerror(errno));
}

static void send_handshake(int conn, const char *json, int uffd)
{
	send_part(conn, json, strlen(json), uffd);
}

/* the message for one region of 4 KiB pages; `size` is JSON text, `extra` more keys */
static const char *one_region(const void *base, const char *size, unsigned long offset,
                              const char *extra)
{
	static char buf[256];

	snprintf(buf, sizeof(buf),
	         "[{\"base_host_virt_addr\": %lu, \"size\": %s, \"offset\": %lu, "
	         "\"page_size\": 4096%s}]",
	         (unsigned long)(uintptr_t)base, size, offset, extra);
	return buf;
}

/* page `pg` of the mapping must hold page `file_pg` of the memory file */
static void expect_file_page(const uint8_t *p, unsigned long pg, unsigned long file_pg)
{
	for (unsigned long j = 0; j < PAGE; j++)
		cr_assert_eq(p[pg * PAGE + j], file_byte(file_pg, j),
		             "mapping page %lu byte %lu: %#x, wanted file page %lu's %#x", pg, j,
		             p[pg * PAGE + j], file_pg, file_byte(file_pg, j));
}

static void expect_zero_page(const uint8_t *p, unsigned long pg)
{
	for (unsigned long j = 0; j < PAGE; j++)
		cr_assert_eq(p[pg * PAGE + j], 0, "page %lu byte %lu is %#x, not 0", pg, j,
		             p[pg * PAGE + j]);
}

/* waits up to 10 s for the one-shot server to exit; its exit status */
static int server_exit_status(void)
{
	int st;

	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(server, &st, WNOHANG);
		if (r == server) {
			server = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	cr_assert_fail("the page server did not exit after the connection closed");
	return -1;
}

Test(uffd_server, pages_come_from_the_file_at_each_regions_offset)
{
	int conn, uffd = new_uffd(0);
	uint8_t *p = map_registered(uffd, NPAGES);
	char json[512];
	unsigned long base = (uintptr_t)p, half = NPAGES / 2 * PAGE;

	make_memfile(NPAGES);
	/* the mapping's first half is the file's second half, and the reverse */
	snprintf(json, sizeof(json),
	         "[{\"base_host_virt_addr\": %lu, \"size\": %lu, \"offset\": %lu, "
	         "\"page_size\": 4096},\n {\"base_host_virt_addr\": %lu, \"size\": %lu, "
	         "\"offset\": 0, \"page_size\": 4096}]",
	         base, half, half, base + half, half);
	conn = start_server(false);
	send_handshake(conn, json, uffd);

	/* out of order, and a write first: it must not be lost either */
	p[7 * PAGE + 1] = 0xee;
	cr_assert_eq(p[7 * PAGE + 0], file_byte(7 + NPAGES / 2, 0));
	for (unsigned long i = NPAGES; i-- > 0;) {
		unsigned long file_pg = i < NPAGES / 2 ? i + NPAGES / 2 : i - NPAGES / 2;
		if (i == 7)
			continue;
		expect_file_page(p, i, file_pg);
	}
	cr_assert_eq(p[7 * PAGE + 1], 0xee);

	close(conn); /* kiln hangs up: the server is done */
	cr_assert_eq(server_exit_status(), 0);
	munmap(p, NPAGES * PAGE);
	close(uffd);
}

Test(uffd_server, page_size_kib_of_older_firecracker_is_accepted)
{
	int conn, uffd = new_uffd(0);
	uint8_t *p = map_registered(uffd, 4);
	char json[256];

	make_memfile(8);
	snprintf(json, sizeof(json),
	         "[{\"page_size_kib\": 4, \"offset\": 16384, \"size\": 16384, "
	         "\"base_host_virt_addr\": %lu, \"future_key\": \"x\"}]",
	         (unsigned long)(uintptr_t)p);
	conn = start_server(false);
	send_handshake(conn, json, uffd);
	for (unsigned long i = 0; i < 4; i++)
		expect_file_page(p, i, i + 4);
	close(conn);
	cr_assert_eq(server_exit_status(), 0);
}

Test(uffd_server, a_message_in_two_pieces_is_joined)
{
	int conn, uffd = new_uffd(0);
	uint8_t *p = map_registered(uffd, 2);
	const char *json = one_region(p, "8192", 0, "");
	size_t cut;

	make_memfile(2);
	cut = strlen(json) / 2;
	conn = start_server(false);
	send_part(conn, json, cut, uffd);
	usleep(100000);
	send_part(conn, json + cut, strlen(json) - cut, -1);
	expect_file_page(p, 1, 1);
	expect_file_page(p, 0, 0);
	close(conn);
	cr_assert_eq(server_exit_status(), 0);
}

Test(uffd_server, removed_pages_read_as_zero)
{
	int conn, uffd = new_uffd(UFFD_FEATURE_EVENT_REMOVE);
	uint8_t *p = map_registered(uffd, 8);

	make_memfile(8);
	conn = start_server(false);
	send_handshake(conn, one_region(p, "32768", 0, ""), uffd);
	expect_file_page(p, 2, 2);
	/* as a balloon does: give pages 2 (present) and 3 (never touched) back */
	cr_assert_eq(madvise(p + 2 * PAGE, 2 * PAGE, MADV_DONTNEED), 0);
	expect_zero_page(p, 2);
	expect_zero_page(p, 3);
	expect_file_page(p, 4, 4);
	close(conn);
	cr_assert_eq(server_exit_status(), 0);
}

Test(uffd_server, fork_mode_serves_every_connection)
{
	int conn[2], uffd[2];
	uint8_t *p[2];

	make_memfile(8);
	conn[0] = start_server(true);
	conn[1] = try_connect();
	cr_assert_geq(conn[1], 0);
	for (int k = 0; k < 2; k++) {
		uffd[k] = new_uffd(0);
		p[k] = map_registered(uffd[k], 4);
		send_handshake(conn[k], one_region(p[k], "16384", (unsigned long)k * 16384, ""),
		               uffd[k]);
	}
	for (int k = 1; k >= 0; k--)
		for (unsigned long i = 0; i < 4; i++)
			expect_file_page(p[k], i, i + 4 * (unsigned long)k);
	close(conn[0]);
	close(conn[1]);
	cr_assert_eq(waitpid(server, NULL, WNOHANG), 0, "--fork keeps listening");
}

/* a refused message closes the connection; the one-shot server exits 1 */
static void expect_refused(const char *json, int uffd, const char *why)
{
	char b[1], log[4096] = "";
	int conn = start_server(false);
	FILE *f;

	send_handshake(conn, json, uffd);
	cr_assert_eq(read(conn, b, 1), 0, "the server kept a bad connection (%s)", why);
	close(conn);
	cr_assert_eq(server_exit_status(), 1);
	f = fopen(log_path, "r");
	cr_assert_not_null(f);
	log[fread(log, 1, sizeof(log) - 1, f)] = '\0';
	fclose(f);
	cr_assert(strstr(log, why), "the log lacks \"%s\":\n%s", why, log);
	unlink(log_path);
}

Test(uffd_server, bad_messages_are_refused)
{
	int uffd = new_uffd(0);
	uint8_t *p = map_registered(uffd, 4);
	unsigned long a = (uintptr_t)p;
	char json[256];

	make_memfile(4);
	expect_refused("not json", uffd, "JSON array");
	expect_refused("[{\"size\": 4096", uffd, "not a complete JSON array");
	expect_refused("[]", uffd, "no regions");
	expect_refused(one_region(p, "16384", 0, ""), -1, "carries no userfaultfd");
	expect_refused(one_region(p, "16384", 4096, ""), uffd, "beyond the memory file");
	expect_refused(one_region(p, "100", 0, ""), uffd, "multiples of its page size");
	expect_refused(one_region(p, "16384", 0, ", \"page_size_kib\": 8"), uffd, "disagree");
	expect_refused(one_region(p, "-4096", 0, ""), uffd, "\"size\" must be an unsigned integer");
	snprintf(json, sizeof(json),
	         "[{\"base_host_virt_addr\": %lu, \"size\": 8192, \"offset\": 0, "
	         "\"page_size\": 4096}, {\"base_host_virt_addr\": %lu, \"size\": 8192, "
	         "\"offset\": 0, \"page_size\": 4096}]",
	         a, a + 4096);
	expect_refused(json, uffd, "overlap");
	expect_refused("[{\"size\": 4096, \"offset\": 0, \"page_size\": 4096}]", uffd,
	               "needs base_host_virt_addr");
}
