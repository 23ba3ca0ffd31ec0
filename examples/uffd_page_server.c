// SPDX-License-Identifier: Apache-2.0
/*
 * examples/uffd_page_server.c: a userfaultfd page server for
 * `PUT /snapshot/load` with {"mem_backend": {"backend_type": "Uffd",
 * "backend_path": SOCKET}}. kiln then does not read the memory file itself:
 * it hands this process a userfaultfd over its guest RAM, and every page the
 * guest (or kiln) touches first is copied in from the memory file here.
 *
 *   cc -O2 -o uffd_page_server examples/uffd_page_server.c
 *   uffd_page_server [--fork] SOCKET MEMFILE
 *
 * The protocol (Firecracker's, docs/snapshotting/handling-page-faults-on-
 * snapshot-resume.md; also in /work/notes/uffd-protocol.md):
 *
 *  1. The page server listens on the unix stream socket SOCKET.
 *  2. kiln creates a userfaultfd (userfaultfd(2), or /dev/userfaultfd with
 *     USERFAULTFD_IOC_NEW), does UFFDIO_API (UFFD_FEATURE_EVENT_REMOVE when it
 *     can return memory, as a balloon does), maps its guest RAM without
 *     populating it, registers every RAM region with UFFDIO_REGISTER
 *     (UFFDIO_REGISTER_MODE_MISSING), connects to SOCKET and sends ONE
 *     message, before any vCPU runs: a JSON array with one object per RAM
 *     region, in the memory file's order,
 *       [{"base_host_virt_addr": 140737..., "size": 134217728,
 *         "offset": 0, "page_size": 4096}, ...]
 *     base_host_virt_addr: where kiln mapped the region (its own address
 *     space, the addresses the userfaultfd reports); size: its length in
 *     bytes; offset: where its bytes start in the memory file; page_size:
 *     the page size backing it, in bytes (older Firecracker releases sent
 *     "page_size_kib" in KiB instead; both are accepted). All integers are
 *     JSON unsigned integers; other keys are ignored. The userfaultfd rides
 *     on the same sendmsg() as SCM_RIGHTS ancillary data.
 *  3. The server serves faults until kiln closes the connection (kiln keeps
 *     it open for the life of the VM): on UFFD_EVENT_PAGEFAULT it copies the
 *     faulting page from MEMFILE at offset + (page - base_host_virt_addr)
 *     with UFFDIO_COPY; on UFFD_EVENT_REMOVE (memory given back, e.g. by a
 *     balloon) it remembers the range and answers later faults there with
 *     zeros (UFFDIO_ZEROPAGE), as fresh anonymous memory reads.
 *  4. It exits (0) when the connection hangs up, or the userfaultfd does.
 *     With --fork it serves every connection, each in its own child, and
 *     runs until killed; without it, it serves one kiln and exits.
 *
 * Nothing kiln sends is trusted: the message is size-limited and checked
 * (regions page-aligned, inside MEMFILE, not overlapping), and a bad one
 * ends that connection with a message, never the server.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, MSG_CMSG_CLOEXEC when built alone with cc */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_REGIONS   64
#define MAX_MSG       65536
#define MAX_DEFERRED  256
#define MAX_PAGE_SIZE (1ull << 30)

struct region {
	uint64_t base, size, offset, page_size;
	uint8_t *removed; /* one bit per page: zero-fill the next fault */
};

struct server {
	const uint8_t *mem; /* MEMFILE, mapped read-only */
	uint64_t mem_size;
	struct region r[MAX_REGIONS];
	unsigned n;
	int uffd, conn;
	void *zeros; /* a zero page for huge pages, which have no UFFDIO_ZEROPAGE */
	uint64_t deferred[MAX_DEFERRED];
	unsigned nr_deferred;
	uint64_t copied, zeroed;
};

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "uffd_page_server[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ------------------------------------------------- the region message (JSON) */

struct json {
	const char *p, *end;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_ws(struct json *j)
{
	while (j->p < j->end && is_ws(*j->p))
		j->p++;
}

static bool eat(struct json *j, char c)
{
	skip_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

/* a JSON string without escapes that matter here: the key, into buf */
static int parse_string(struct json *j, char *buf, size_t len)
{
	size_t n = 0;

	if (!eat(j, '"'))
		return -1;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p == '\\' && ++j->p == j->end)
			return -1;
		if (n + 1 < len)
			buf[n++] = *j->p;
		j->p++;
	}
	buf[n] = '\0';
	return eat(j, '"') ? 0 : -1;
}

/* an unsigned JSON integer (no sign, fraction or exponent) */
static int parse_u64(struct json *j, uint64_t *out)
{
	uint64_t v = 0;
	const char *start;

	skip_ws(j);
	start = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		unsigned d = (unsigned)(*j->p++ - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (j->p == start || (j->p - start > 1 && *start == '0'))
		return -1;
	if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
		return -1;
	*out = v;
	return 0;
}

/* the value of a key we do not know: a string or a scalar (number, true, false, null) */
static int skip_value(struct json *j)
{
	char scratch[8];
	const char *start;

	skip_ws(j);
	if (j->p < j->end && *j->p == '"')
		return parse_string(j, scratch, sizeof(scratch));
	for (start = j->p; j->p < j->end && *j->p && strchr("0123456789+-.eEtruefalsn", *j->p);)
		j->p++;
	return j->p > start ? 0 : -1;
}

/* one {"base_host_virt_addr", "size", "offset", "page_size"|"page_size_kib"} */
static int parse_region(struct json *j, struct region *r, char *err, size_t errlen)
{
	uint64_t kib = 0, v;
	bool has_base = false, has_size = false, has_off = false;
	char key[32];

	memset(r, 0, sizeof(*r));
	if (!eat(j, '{'))
		return snprintf(err, errlen, "a region is not an object"), -1;
	if (eat(j, '}'))
		goto check;
	do {
		if (parse_string(j, key, sizeof(key)) < 0 || !eat(j, ':'))
			return snprintf(err, errlen, "malformed key in a region"), -1;
		bool known = !strcmp(key, "base_host_virt_addr") || !strcmp(key, "size") ||
		             !strcmp(key, "offset") || !strcmp(key, "page_size") ||
		             !strcmp(key, "page_size_kib");
		if (!known) {
			if (skip_value(j) < 0)
				return snprintf(err, errlen, "malformed value of \"%s\"", key), -1;
			continue;
		}
		if (parse_u64(j, &v) < 0)
			return snprintf(err, errlen, "\"%s\" must be an unsigned integer", key), -1;
		if (!strcmp(key, "base_host_virt_addr"))
			r->base = v, has_base = true;
		else if (!strcmp(key, "size"))
			r->size = v, has_size = true;
		else if (!strcmp(key, "offset"))
			r->offset = v, has_off = true;
		else if (!strcmp(key, "page_size"))
			r->page_size = v;
		else
			kib = v;
	} while (eat(j, ','));
	if (!eat(j, '}'))
		return snprintf(err, errlen, "a region object is not closed"), -1;
check:
	if (!has_base || !has_size || !has_off)
		return snprintf(err, errlen, "a region needs base_host_virt_addr, size and offset"),
		       -1;
	if (kib && (kib > MAX_PAGE_SIZE >> 10 || (r->page_size && r->page_size != kib << 10)))
		return snprintf(err, errlen, "page_size and page_size_kib disagree"), -1;
	if (!r->page_size)
		r->page_size = kib << 10;
	if (!r->page_size)
		return snprintf(err, errlen, "a region needs page_size (or page_size_kib)"), -1;
	return 0;
}

static int parse_regions(const char *text, size_t len, struct server *sv, char *err, size_t errlen)
{
	struct json j = {text, text + len};

	sv->n = 0;
	if (!eat(&j, '['))
		return snprintf(err, errlen, "the message is not a JSON array"), -1;
	if (!eat(&j, ']')) {
		do {
			if (sv->n == MAX_REGIONS)
				return snprintf(err, errlen, "more than %d regions", MAX_REGIONS),
				       -1;
			if (parse_region(&j, &sv->r[sv->n], err, errlen) < 0)
				return -1;
			sv->n++;
		} while (eat(&j, ','));
		if (!eat(&j, ']'))
			return snprintf(err, errlen, "the region array is not closed"), -1;
	}
	skip_ws(&j);
	if (j.p != j.end)
		return snprintf(err, errlen, "bytes after the region array"), -1;
	if (sv->n == 0)
		return snprintf(err, errlen, "no regions"), -1;
	return 0;
}

/* aligned, inside the memory file, not overlapping each other */
static int check_regions(struct server *sv, char *err, size_t errlen)
{
	for (unsigned i = 0; i < sv->n; i++) {
		struct region *r = &sv->r[i];
		uint64_t ps = r->page_size;

		if (ps < 4096 || ps > MAX_PAGE_SIZE || (ps & (ps - 1)))
			return snprintf(err, errlen, "region %u: page size %" PRIu64 " is invalid",
			                i, ps),
			       -1;
		if (!r->size || (r->base | r->size | r->offset) & (ps - 1) ||
		    r->base + r->size < r->base)
			return snprintf(err, errlen,
			                "region %u: base, size and offset must be multiples of "
			                "its page size and size not 0",
			                i),
			       -1;
		if (r->offset > sv->mem_size || r->size > sv->mem_size - r->offset)
			return snprintf(err, errlen,
			                "region %u: [%" PRIu64 ", +%" PRIu64
			                ") is beyond the memory file (%" PRIu64 " bytes)",
			                i, r->offset, r->size, sv->mem_size),
			       -1;
		for (unsigned k = 0; k < i; k++)
			if (r->base < sv->r[k].base + sv->r[k].size &&
			    sv->r[k].base < r->base + r->size)
				return snprintf(err, errlen, "regions %u and %u overlap", k, i), -1;
		r->removed = calloc((r->size / ps + 7) / 8, 1);
		if (!r->removed)
			return snprintf(err, errlen, "out of memory"), -1;
	}
	return 0;
}

/*
 * The handshake: one sendmsg() carrying the JSON and the userfaultfd. A
 * stream may cut it, so an array that has begun but not ended (with ']')
 * is read on, for up to 2 s a piece and MAX_MSG in all; the descriptor
 * comes with the first bytes.
 */
static int receive_handshake(struct server *sv, char *buf, size_t *len, char *err, size_t errlen)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct iovec iov = {buf, MAX_MSG};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = &ctl,
	                    .msg_controllen = sizeof(ctl)};
	ssize_t n = recvmsg(sv->conn, &mh, MSG_CMSG_CLOEXEC);

	sv->uffd = -1;
	if (n <= 0)
		return snprintf(err, errlen, "no message: %s", n ? strerror(errno) : "closed"), -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (sv->uffd < 0)
				sv->uffd = fd;
			else
				close(fd); /* one descriptor is expected; drop extras */
		}
	}
	if (sv->uffd < 0)
		return snprintf(err, errlen, "the message carries no userfaultfd"), -1;
	*len = (size_t)n;
	while (*len < MAX_MSG) {
		size_t end = *len;
		while (end && is_ws(buf[end - 1]))
			end--;
		if (end && buf[end - 1] == ']')
			return 0;
		struct pollfd p = {.fd = sv->conn, .events = POLLIN};
		if (buf[0] != '[' || poll(&p, 1, 2000) != 1 ||
		    (n = read(sv->conn, buf + *len, MAX_MSG - *len)) <= 0)
			return snprintf(err, errlen, "the message is not a complete JSON array"),
			       -1;
		*len += (size_t)n;
	}
	return snprintf(err, errlen, "the message is larger than %d bytes", MAX_MSG), -1;
}

/* --------------------------------------------------------------- the faults */

static struct region *find_region(struct server *sv, uint64_t addr)
{
	for (unsigned i = 0; i < sv->n; i++)
		if (addr >= sv->r[i].base && addr - sv->r[i].base < sv->r[i].size)
			return &sv->r[i];
	return NULL;
}

/* UFFD_EVENT_REMOVE: [start, end) was given back; its next faults read zeros */
static void mark_removed(struct server *sv, uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < sv->n; i++) {
		struct region *r = &sv->r[i];
		uint64_t lo = start > r->base ? start : r->base;
		uint64_t hi = end < r->base + r->size ? end : r->base + r->size;

		for (uint64_t a = lo & ~(r->page_size - 1); a < hi; a += r->page_size) {
			uint64_t pg = (a - r->base) / r->page_size;
			r->removed[pg / 8] |= (uint8_t)(1u << (pg % 8));
		}
	}
}

/* 0 served (or nothing to serve), -EAGAIN try again later, -ESRCH kiln is gone */
static int serve_fault(struct server *sv, uint64_t addr)
{
	struct region *r = find_region(sv, addr);
	uint64_t page, pg;
	int ret;

	if (!r) {
		msg("fault at 0x%" PRIx64 " outside every region; ignored", addr);
		return 0;
	}
	page = addr & ~(r->page_size - 1);
	pg = (page - r->base) / r->page_size;
	if ((r->removed[pg / 8] >> (pg % 8)) & 1 && r->page_size == 4096) {
		struct uffdio_zeropage z = {.range = {.start = page, .len = r->page_size}};
		ret = ioctl(sv->uffd, UFFDIO_ZEROPAGE, &z);
		sv->zeroed += ret == 0;
	} else {
		const void *src = sv->mem + r->offset + (page - r->base);
		if ((r->removed[pg / 8] >> (pg % 8)) & 1) {
			if (!sv->zeros) {
				sv->zeros =
				        mmap(NULL, MAX_PAGE_SIZE, PROT_READ,
				             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
				if (sv->zeros == MAP_FAILED)
					return sv->zeros = NULL, -ENOMEM;
			}
			src = sv->zeros;
		}
		struct uffdio_copy c = {
		        .dst = page, .src = (uint64_t)(uintptr_t)src, .len = r->page_size};
		ret = ioctl(sv->uffd, UFFDIO_COPY, &c);
		sv->copied += ret == 0;
	}
	if (ret == 0 || errno == EEXIST) /* EEXIST: already there (a racing fault) */
		return 0;
	if (errno == EAGAIN) /* the mappings are changing (a remove): after its event */
		return -EAGAIN;
	if (errno == ENOENT) /* no longer registered (unmapped) */
		return 0;
	return -errno;
}

static int handle_event(struct server *sv, const struct uffd_msg *m)
{
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT: {
		int ret = serve_fault(sv, m->arg.pagefault.address);
		if (ret == -EAGAIN && sv->nr_deferred < MAX_DEFERRED) {
			sv->deferred[sv->nr_deferred++] = m->arg.pagefault.address;
			return 0;
		}
		/* a full list would need more faulting threads than kiln has */
		return ret == -EAGAIN ? -ENOBUFS : ret;
	}
	case UFFD_EVENT_REMOVE:
		mark_removed(sv, m->arg.remove.start, m->arg.remove.end);
		return 0;
	default: /* UNMAP, REMAP, FORK: kiln does not ask for them */
		msg("event %u ignored", m->event);
		return 0;
	}
}

static int retry_deferred(struct server *sv)
{
	unsigned n = sv->nr_deferred;
	int ret;

	sv->nr_deferred = 0;
	for (unsigned i = 0; i < n; i++) {
		ret = serve_fault(sv, sv->deferred[i]);
		if (ret == -EAGAIN)
			sv->deferred[sv->nr_deferred++] = sv->deferred[i];
		else if (ret < 0)
			return ret;
	}
	return 0;
}

/* read every queued event; 1 when kiln is gone */
static int drain_events(struct server *sv)
{
	struct uffd_msg m[64];

	for (;;) {
		ssize_t n = read(sv->uffd, m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return 1;
		for (size_t i = 0; i < (size_t)n / sizeof(m[0]); i++) {
			int ret = handle_event(sv, &m[i]);
			if (ret == -ESRCH)
				return 1;
			if (ret < 0)
				msg("serving a fault failed: %s", strerror(-ret));
		}
	}
}

static void serve(struct server *sv)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = sv->uffd, .events = POLLIN},
		                      {.fd = sv->conn, .events = POLLIN}};
		char b[64];

		if (poll(p, 2, sv->nr_deferred ? 1 : -1) < 0) {
			if (errno == EINTR)
				continue;
			msg("poll: %s", strerror(errno));
			return;
		}
		if (p[0].revents & POLLIN && drain_events(sv))
			return;
		if (retry_deferred(sv) == -ESRCH)
			return;
		if (p[0].revents & (POLLHUP | POLLERR))
			return;
		if (p[1].revents & (POLLHUP | POLLERR))
			return;
		if (p[1].revents & POLLIN && read(sv->conn, b, sizeof(b)) <= 0)
			return;
	}
}

/* one kiln, from its connection to its hang-up; 0 / 1 */
static int serve_conn(int conn, const uint8_t *mem, uint64_t mem_size)
{
	struct server sv = {.mem = mem, .mem_size = mem_size, .conn = conn, .uffd = -1};
	char *buf = malloc(MAX_MSG), err[256] = "out of memory";
	size_t len = 0;
	int ret = 1;

	if (buf && receive_handshake(&sv, buf, &len, err, sizeof(err)) == 0 &&
	    parse_regions(buf, len, &sv, err, sizeof(err)) == 0 &&
	    check_regions(&sv, err, sizeof(err)) == 0) {
		/* the descriptor is shared with kiln, which never reads it */
		fcntl(sv.uffd, F_SETFL, fcntl(sv.uffd, F_GETFL) | O_NONBLOCK);
		msg("serving %u region(s)", sv.n);
		serve(&sv);
		msg("kiln hung up: %" PRIu64 " pages copied, %" PRIu64 " zeroed", sv.copied,
		    sv.zeroed);
		ret = 0;
	} else {
		msg("refused a connection: %s", err);
	}
	for (unsigned i = 0; i < sv.n; i++)
		free(sv.r[i].removed);
	if (sv.uffd >= 0)
		close(sv.uffd);
	if (sv.zeros)
		munmap(sv.zeros, MAX_PAGE_SIZE);
	free(buf);
	close(conn);
	return ret;
}

static int listen_on(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		msg("%s: too long for a unix socket", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return msg("socket: %s", strerror(errno)), -1;
	unlink(path); /* a stale socket from an earlier run */
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		msg("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	bool fork_each = argc > 1 && strcmp(argv[1], "--fork") == 0;
	const char *sock, *file;
	struct stat st;
	void *mem;
	int fd, lfd;

	if (argc != 3 + fork_each) {
		fprintf(stderr, "usage: %s [--fork] SOCKET MEMFILE\n", argv[0]);
		return 2;
	}
	sock = argv[1 + fork_each];
	file = argv[2 + fork_each];
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		msg("%s: %s", file, strerror(errno));
		return 1;
	}
	if (st.st_size == 0) {
		msg("%s: empty", file);
		return 1;
	}
	/* private and read-only: pages come from the page cache on first copy */
	mem = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
	close(fd);
	if (mem == MAP_FAILED) {
		msg("mmap %s: %s", file, strerror(errno));
		return 1;
	}
	lfd = listen_on(sock);
	if (lfd < 0)
		return 1;
	signal(SIGCHLD, SIG_IGN); /* --fork: no zombies */
	signal(SIGPIPE, SIG_IGN);
	msg("listening on %s for %s (%lld bytes)", sock, file, (long long)st.st_size);
	for (;;) {
		int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			msg("accept: %s", strerror(errno));
			return 1;
		}
		if (!fork_each) {
			close(lfd);
			return serve_conn(conn, mem, (uint64_t)st.st_size);
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			_exit(serve_conn(conn, mem, (uint64_t)st.st_size));
		}
		if (pid < 0)
			msg("fork: %s", strerror(errno));
		close(conn);
	}
}
