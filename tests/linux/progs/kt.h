/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/linux/progs/kt.h: what the guest programs of kiln's Linux tests
 * share, header only. tests/linux/build.py compiles each C file of
 * progs/ on its own (gcc -static) into /bin of the test image; the host
 * side of a test includes this header too, so both sides compute the same
 * checksum.
 *
 * Streams: kt_exchange() sends a generated stream on a socket while it
 * reads the peer's, and kt_stream_fnv() says what the receiving end of
 * such a stream must have summed.
 *
 * Output: kt_say() writes each line to /dev/kmsg, where it becomes one
 * printk record and so reaches kiln's stdout through the kernel's console
 * whatever state the serial driver is in. With KT_SAY=stdout in the
 * environment (a program tried on the host), or when /dev/kmsg cannot be
 * opened, the line goes to stdout instead.
 */
#ifndef KILN_KT_H
#define KILN_KT_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* FNV-1a, 64 bits: kt_fnv1a(KT_FNV_INIT, data, len), chained over pieces */
#define KT_FNV_INIT 0xcbf29ce484222325ULL

static inline uint64_t kt_fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* the next value of a xorshift64 generator (state must not be 0) */
static inline uint64_t kt_xorshift(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/* what kt_exchange did: each direction's bytes and FNV-1a, and its time */
struct kt_flow {
	unsigned long long sent, got;
	uint64_t sent_fnv, got_fnv;
	uint64_t ms;
};

#define KT_CHUNK    65536
#define KT_STALL_MS 120000 /* no byte either way for this long: give up */

static inline uint64_t kt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * On the connected stream socket `fd`: sends `total` bytes of the xorshift64
 * stream seeded with `seed`, shuts the sending side, and reads until the
 * peer shuts its own, both at once (poll), so that neither end waits on
 * the other's buffers. 0 with *f filled, or -1 with errno set and *step
 * naming what failed. Leaves fd open.
 * Exactly one end of a connection passes `fin_last` (the host's, in the
 * tests): that end shuts its sending side only once it has read the peer's
 * end of stream, so the other end's return says that everything it sent
 * arrived (a guest may then reset the VM without losing its last bytes in
 * a send buffer).
 */
static inline int kt_exchange(int fd, uint64_t seed, unsigned long long total, bool fin_last,
                              struct kt_flow *f, const char **step)
{
	uint8_t *out = malloc(2 * KT_CHUNK), *in;
	uint64_t state = seed | 1;
	int ret = -1;
	size_t have = 0, off = 0; /* out[off .. have) is generated and not yet sent */
	bool shut = false, eof = false;
	uint64_t start = kt_now_ms(), last = start;

	*step = "malloc";
	if (!out)
		return -1;
	in = out + KT_CHUNK;
	memset(f, 0, sizeof(*f));
	f->sent_fnv = f->got_fnv = KT_FNV_INIT;
	while (!shut || !eof) {
		bool all_sent = off == have && f->sent == total;
		if (!shut && all_sent && (eof || !fin_last)) {
			*step = "shutdown";
			if (shutdown(fd, SHUT_WR) < 0)
				goto done;
			shut = true;
			continue;
		}
		if (!shut && off == have) {
			have = total - f->sent < KT_CHUNK ? (size_t)(total - f->sent) : KT_CHUNK;
			for (size_t i = 0; i < have; i++)
				out[i] = (uint8_t)kt_xorshift(&state);
			off = 0;
		}
		struct pollfd pfd = {
		        .fd = fd,
		        .events = (short)((eof ? 0 : POLLIN) | (shut || all_sent ? 0 : POLLOUT))};
		int r = poll(&pfd, 1, 1000);
		*step = "poll";
		if (r < 0 && errno != EINTR)
			goto done;
		if (kt_now_ms() - last > KT_STALL_MS) {
			*step = "no byte either way for 120 s";
			errno = ETIMEDOUT;
			goto done;
		}
		if (r <= 0)
			continue;
		if (!eof && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(fd, in, sizeof(in));
			*step = "read";
			if (n < 0 && errno != EINTR && errno != EAGAIN)
				goto done;
			if (n == 0)
				eof = true;
			if (n > 0) {
				f->got_fnv = kt_fnv1a(f->got_fnv, in, (size_t)n);
				f->got += (unsigned long long)n;
				last = kt_now_ms();
			}
		}
		if (!shut && off < have && (pfd.revents & POLLOUT)) {
			ssize_t n = send(fd, out + off, have - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			*step = "send";
			if (n < 0 && errno != EINTR && errno != EAGAIN)
				goto done;
			if (n > 0) {
				f->sent_fnv = kt_fnv1a(f->sent_fnv, out + off, (size_t)n);
				off += (size_t)n;
				f->sent += (unsigned long long)n;
				last = kt_now_ms();
			}
		}
	}
	f->ms = kt_now_ms() - start;
	ret = 0;
done:
	free(out);
	return ret;
}

/* moves *next on by `ms` and sleeps until then (CLOCK_MONOTONIC): a steady tick */
static inline void kt_tick(struct timespec *next, unsigned long long ms)
{
	next->tv_nsec += (long)(ms % 1000) * 1000000;
	next->tv_sec += (time_t)(ms / 1000) + next->tv_nsec / 1000000000;
	next->tv_nsec %= 1000000000;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, next, NULL) == EINTR)
		;
}

/* the FNV-1a of the first `total` bytes of the stream seeded with `seed` */
static inline uint64_t kt_stream_fnv(uint64_t seed, unsigned long long total)
{
	uint64_t state = seed | 1, h = KT_FNV_INIT;
	for (unsigned long long i = 0; i < total; i++) {
		uint8_t b = (uint8_t)kt_xorshift(&state);
		h = kt_fnv1a(h, &b, 1);
	}
	return h;
}

/*
 * One line (no newline in fmt; one is added) to /dev/kmsg or stdout (see
 * the top). Each call is a single write, so a line is never split.
 */
static inline __attribute__((format(printf, 1, 2))) void kt_say(const char *fmt, ...)
{
	static int fd = -2;
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (fd == -2) {
		const char *to = getenv("KT_SAY");
		fd = to && !strcmp(to, "stdout") ? -1 : open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	}
	if (write(fd >= 0 ? fd : STDOUT_FILENO, line, (size_t)n) < 0 && fd >= 0)
		(void)!write(STDOUT_FILENO, line, (size_t)n);
}

#endif
