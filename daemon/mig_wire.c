// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/mig_wire.c: the migration stream's frames, the page batches sent
 * straight from guest memory and checked on arrival, and the addresses
 * (see migration.h).
 */
#define LOG_MODULE "migration"
#include "migration.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

const char *mig_phase_name(enum mig_phase p)
{
	static const char *const names[] = {
	        [MIG_PHASE_NONE] = "none",           [MIG_PHASE_LISTENING] = "listening",
	        [MIG_PHASE_HANDSHAKE] = "handshake", [MIG_PHASE_PRECOPY] = "precopy",
	        [MIG_PHASE_STOPPED] = "stopped",     [MIG_PHASE_COMPLETED] = "completed",
	        [MIG_PHASE_FAILED] = "failed",       [MIG_PHASE_CANCELLED] = "cancelled",
	        [MIG_PHASE_UNKNOWN] = "unknown",
	};
	return (unsigned)p < ARRAY_SIZE(names) ? names[p] : "?";
}

/* ------------------------------------------------------------- frames */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* moves *iov past `done` bytes (shortening its first entry); the entries left */
static int iov_consume(struct iovec **iov, int n, size_t done)
{
	struct iovec *v = *iov;
	while (n > 0 && done >= v->iov_len) {
		done -= v->iov_len;
		v++;
		n--;
	}
	if (n > 0) {
		v->iov_base = (uint8_t *)v->iov_base + done;
		v->iov_len -= done;
	}
	*iov = v;
	return n;
}

/* writes every byte of `iov` (modified as it goes); MSG_NOSIGNAL: a closed peer is -EPIPE */
static int send_iov(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		n = iov_consume(&iov, n, (size_t)w);
	}
	return 0;
}

int mig_send_frame(int fd, uint32_t type, uint32_t count, const void *payload, uint64_t len)
{
	uint8_t h[MIG_HEADER_SIZE];
	put_le32(h, type);
	put_le32(h + 4, count);
	put_le64(h + 8, len);
	struct iovec iov[2] = {{h, sizeof(h)}, {(void *)payload, (size_t)len}};
	return send_iov(fd, iov, len ? 2 : 1);
}

int mig_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (r == 0)
			return -ECONNRESET;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/*
 * Faults in the runs about to be read in one call per run instead of one
 * fault per page inside readv (memory the target never touched is mostly
 * what round 0 fills). Only a speed-up: a kernel without it reads anyway.
 */
static void populate(const struct iovec *iov, int n)
{
	static bool unsupported;
	for (int i = 0; i < n && !__atomic_load_n(&unsupported, __ATOMIC_RELAXED); i++)
		if (madvise(iov[i].iov_base, iov[i].iov_len, MADV_POPULATE_WRITE) < 0 &&
		    errno == EINVAL)
			__atomic_store_n(&unsupported, true, __ATOMIC_RELAXED);
}

/* reads into every byte of `iov` (modified as it goes); errors as mig_read_all */
static int read_iov_all(int fd, struct iovec *iov, int n)
{
	populate(iov, n);
	while (n > 0) {
		ssize_t r = readv(fd, iov, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (r == 0)
			return -ECONNRESET;
		n = iov_consume(&iov, n, (size_t)r);
	}
	return 0;
}

int mig_recv_header(int fd, struct mig_header *h)
{
	uint8_t b[MIG_HEADER_SIZE];
	int ret = mig_read_all(fd, b, sizeof(b));
	if (ret < 0)
		return ret;
	h->type = (uint32_t)get_le(b, 4);
	h->count = (uint32_t)get_le(b + 4, 4);
	h->length = get_le(b + 8, 8);
	if (h->type < MIG_HELLO || h->type > MIG_ERROR || h->length > MIG_FRAME_MAX)
		return -EPROTO;
	return 0;
}

void mig_send_error(int fd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	(void)mig_send_frame(fd, MIG_ERROR, 0, msg, strnlen(msg, sizeof(msg)));
}

/* -------------------------------------------------------------- pages */

#define PACE_SLICE_NS 50000000ull /* a cancel waits at most this long */

/* sleeps while the bytes sent so far are ahead of the limit; -ECANCELED on `stop` */
static int pace(struct mig_pacer *p, uint64_t add, const atomic_bool *stop)
{
	p->sent += add;
	if (!p->limit_bps)
		return 0;
	uint64_t due_ns = p->sent * 1000000000ull / p->limit_bps;
	for (;;) {
		if (stop && atomic_load(stop))
			return -ECANCELED;
		uint64_t el = now_ns() - p->start_ns;
		if (due_ns <= el)
			return 0;
		uint64_t d = due_ns - el < PACE_SLICE_NS ? due_ns - el : PACE_SLICE_NS;
		struct timespec ts = {0, (long)d};
		nanosleep(&ts, NULL);
	}
}

/* pages in one frame: at most a twentieth of a second's worth under a limit */
static unsigned frame_pages(const struct mig_pacer *p)
{
	if (!p->limit_bps)
		return MIG_PAGES_MAX;
	uint64_t n = p->limit_bps / 20 / GM_PAGE_SIZE;
	return n < 16 ? 16 : n > MIG_PAGES_MAX ? MIG_PAGES_MAX : (unsigned)n;
}

static void add_count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

/* IOV_MAX bounds one sendmsg: the header, the entries and up to this many runs */
#define MAX_RUNS 1000
/* and one readv of a PAGES frame's data */
#define RECV_RUNS 1000

int64_t mig_send_pages(int fd, const struct guest_mem *gm, uint64_t *bitmap,
                       struct mig_pacer *pacer, const atomic_bool *stop, struct mig_stats *st)
{
	uint64_t total = gm->ram_size / GM_PAGE_SIZE, sent = 0;
	uint64_t *ent = malloc(MIG_PAGES_MAX * sizeof(uint64_t));
	struct iovec *iov = malloc((MAX_RUNS + 2) * sizeof(struct iovec));
	int64_t ret = 0;

	if (!ent || !iov) {
		ret = -ENOMEM;
		goto out;
	}
	unsigned max = frame_pages(pacer);
	/* each round paced from its own start: time spent between rounds is no credit */
	pacer->start_ns = now_ns();
	pacer->sent = 0;
	for (uint64_t p = 0; p < total;) {
		unsigned n = 0, runs = 0;
		uint64_t data = 0;
		uint8_t head[MIG_HEADER_SIZE];

		if (stop && atomic_load(stop)) {
			ret = -ECANCELED;
			goto out;
		}
		/* one frame: up to MIG_PAGES_MAX dirty pages, non-zero ones gathered in runs */
		for (; p < total && n < max && runs < MAX_RUNS; p++) {
			uint64_t *w = &bitmap[p / 64];
			if (!*w) { /* a whole empty word */
				p |= 63;
				continue;
			}
			if (!(*w & (1ull << (p % 64))))
				continue;
			*w &= ~(1ull << (p % 64));
			uint8_t *hva = gm->base + p * GM_PAGE_SIZE;
			if (gm_page_is_zero(hva)) {
				put_le64((uint8_t *)&ent[n++], p | MIG_PAGE_ZERO);
				add_count(&st->zero_pages, 1);
				continue;
			}
			put_le64((uint8_t *)&ent[n++], p);
			struct iovec *last = runs ? &iov[2 + runs - 1] : NULL;
			if (last && (uint8_t *)last->iov_base + last->iov_len == hva)
				last->iov_len += GM_PAGE_SIZE;
			else
				iov[2 + runs++] = (struct iovec){hva, GM_PAGE_SIZE};
			data += GM_PAGE_SIZE;
		}
		if (!n)
			break;
		uint64_t len = n * 8ull + data;
		put_le32(head, MIG_PAGES);
		put_le32(head + 4, n);
		put_le64(head + 8, len);
		iov[0] = (struct iovec){head, sizeof(head)};
		iov[1] = (struct iovec){ent, n * 8ull};
		int r = send_iov(fd, iov, (int)runs + 2);
		if (r < 0) {
			ret = r;
			goto out;
		}
		add_count(&st->bytes, len + MIG_HEADER_SIZE);
		add_count(&st->pages, n);
		sent += n;
		if ((r = pace(pacer, len + MIG_HEADER_SIZE, stop)) < 0) {
			ret = r;
			goto out;
		}
	}
	ret = (int64_t)sent;
out:
	free(ent);
	free(iov);
	return ret;
}

int mig_recv_pages(int fd, const struct mig_header *h, struct guest_mem *gm, uint64_t *pages,
                   uint64_t *zeros, struct errbuf *e)
{
	uint64_t total = gm->ram_size / GM_PAGE_SIZE;
	uint64_t ent[MIG_PAGES_MAX];
	int ret;

	if (h->count == 0 || h->count > MIG_PAGES_MAX || h->length < h->count * 8ull)
		return errf(e, EPROTO, "a PAGES frame with %u entries and %llu bytes", h->count,
		            (unsigned long long)h->length);
	if ((ret = mig_read_all(fd, ent, h->count * 8ull)) < 0)
		return errf(e, -ret, "the stream ended inside a PAGES frame: %s", strerror(-ret));
	uint64_t data = 0;
	for (unsigned i = 0; i < h->count; i++) {
		uint64_t v = get_le((const uint8_t *)&ent[i], 8);
		if ((v & ~MIG_PAGE_ZERO) >= total)
			return errf(e, EPROTO, "page %llu is outside the guest's %llu pages",
			            (unsigned long long)(v & ~MIG_PAGE_ZERO),
			            (unsigned long long)total);
		ent[i] = v;
		if (!(v & MIG_PAGE_ZERO))
			data += GM_PAGE_SIZE;
	}
	if (h->length != h->count * 8ull + data)
		return errf(e, EPROTO, "a PAGES frame of %llu bytes carries %llu bytes of pages",
		            (unsigned long long)h->length, (unsigned long long)data);
	/*
	 * The pages' data straight into guest memory, contiguous pages merged
	 * into one iovec and up to RECV_RUNS runs per readv; entries apply in
	 * their order (a zero page waits for the data read before it).
	 */
	struct iovec iov[RECV_RUNS];
	int runs = 0;
	for (unsigned i = 0; i < h->count; i++) {
		uint8_t *hva = gm->base + (ent[i] & ~MIG_PAGE_ZERO) * GM_PAGE_SIZE;
		struct iovec *last = runs ? &iov[runs - 1] : NULL;
		bool zero = ent[i] & MIG_PAGE_ZERO;
		bool extends = !zero && last && (uint8_t *)last->iov_base + last->iov_len == hva;
		if (runs && (zero || (!extends && runs == RECV_RUNS))) {
			if ((ret = read_iov_all(fd, iov, runs)) < 0)
				goto cut;
			runs = 0;
		}
		if (zero) {
			/* fresh memory is zero already: write only over a page sent before */
			if (!gm_page_is_zero(hva))
				memset(hva, 0, GM_PAGE_SIZE);
			(*zeros)++;
		} else if (extends) {
			last->iov_len += GM_PAGE_SIZE;
		} else {
			iov[runs++] = (struct iovec){hva, GM_PAGE_SIZE};
		}
		(*pages)++;
	}
	if (runs && (ret = read_iov_all(fd, iov, runs)) < 0)
		goto cut;
	return 0;
cut:
	return errf(e, -ret, "the stream ended inside a PAGES frame: %s", strerror(-ret));
}

/* ---------------------------------------------------------- addresses */

int mig_parse_addr(const char *s, struct mig_addr *a, struct errbuf *e)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		const char *path = s + 5;
		if (!*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return errf(e, EINVAL, "unix socket path empty or too long: \"%s\"", path);
		struct sockaddr_un *un = (struct sockaddr_un *)&a->u.ss;
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, path);
		a->family = AF_UNIX;
		a->len = (socklen_t)sizeof(*un);
		return 0;
	}
	if (strncmp(s, "tcp:", 4) != 0)
		return errf(e, EINVAL, "\"%s\" is neither tcp:HOST:PORT nor unix:PATH", s);
	char host[256];
	const char *port;
	const char *h = s + 4;
	if (*h == '[') { /* [v6]:port */
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':' || (size_t)(close - h - 1) >= sizeof(host))
			return errf(e, EINVAL, "bad IPv6 address in \"%s\"", s);
		memcpy(host, h + 1, (size_t)(close - h - 1));
		host[close - h - 1] = '\0';
		port = close + 2;
	} else {
		const char *colon = strrchr(h, ':');
		if (!colon || colon == h || (size_t)(colon - h) >= sizeof(host))
			return errf(e, EINVAL, "\"%s\" is not tcp:HOST:PORT", s);
		memcpy(host, h, (size_t)(colon - h));
		host[colon - h] = '\0';
		port = colon + 1;
	}
	char *end;
	long pn = strtol(port, &end, 10);
	if (!*port || *end || pn < 1 || pn > 65535)
		return errf(e, EINVAL, "bad port in \"%s\"", s);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int g = getaddrinfo(host, port, &hints, &res);
	if (g != 0 || !res)
		return errf(e, EINVAL, "cannot resolve \"%s\": %s", host,
		            g ? gai_strerror(g) : "no address");
	memcpy(&a->u.ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	a->family = res->ai_family;
	freeaddrinfo(res);
	return 0;
}
