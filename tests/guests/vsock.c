// SPDX-License-Identifier: Apache-2.0
/*
 * vsock: both directions of a virtio-vsock stream with the host (CID 2),
 * against an echo on the host side (tools/vsock_host.py speaks kiln's
 * Firecracker-style convention).
 *
 * 1. Connects to host port vsock.port (1234) from vsock.local (2000),
 *    sends "kiln vsock guest <seed>\n" and then vsock.bytes (100000) bytes,
 *    byte i = (i * 7 + seed) & 0xff, reading the echo while it sends; checks
 *    that every byte came back, then closes (SHUTDOWN, the host's RST):
 *    "vsock: sent N bytes to port P, echo ok".
 * 2. Listens on vsock.listen (1235) for the host's connection and echoes
 *    what it receives until the host shuts down:
 *    "vsock: echoed N bytes for the host".
 * Then "vsock: ok". vsock.seed (1), vsock.timeout_ms (10000) per wait;
 * vsock.listen=0 skips step 2, vsock.port=0 step 1.
 */
#include "rt/virtio_drv.h"

#define CHUNK 16384

static struct vvsock v;
static uint64_t timeout_us;
static uint8_t out[CHUNK], in[CHUNK];

static uint8_t pattern(uint64_t i, uint32_t seed)
{
	return (uint8_t)(i * 7 + seed);
}

/* the bytes of the stream at [off, off + n): the greeting, then the pattern */
static void stream_bytes(uint8_t *dst, uint64_t off, size_t n, const char *greet, size_t glen,
                         uint32_t seed)
{
	for (size_t k = 0; k < n; k++, off++)
		dst[k] = off < glen ? (uint8_t)greet[off] : pattern(off - glen, seed);
}

/* takes what has come back so far (waiting when `wait`); -errno, or 0 */
static int take_echo(struct vsock_conn *c, uint64_t *got, uint64_t total, const char *greet,
                     size_t glen, uint32_t seed, bool wait)
{
	static uint8_t want[CHUNK];
	while (*got < total) {
		long n = vsock_recv(&v, c, in, sizeof(in), wait ? timeout_us : 0);
		if (n == -KRT_ETIMEDOUT && !wait)
			return 0;
		if (n <= 0) {
			krt_printf("vsock: FAILED: echo ended after %lu of %lu bytes (%ld)\n", *got,
			           total, n);
			return n < 0 ? (int)n : -KRT_ECONNRST;
		}
		stream_bytes(want, *got, (size_t)n, greet, glen, seed);
		for (long k = 0; k < n; k++) {
			if (in[k] != want[k]) {
				krt_printf("vsock: FAILED: echo byte %lu is 0x%x, want 0x%x\n",
				           *got + (uint64_t)k, in[k], want[k]);
				return -KRT_EINVAL;
			}
		}
		*got += (uint64_t)n;
	}
	return 0;
}

static int connect_and_send(uint32_t port, uint32_t local, uint64_t bytes, uint32_t seed)
{
	static struct vsock_conn c;
	char greet[64];
	size_t glen = (size_t)krt_snprintf(greet, sizeof(greet), "kiln vsock guest %u\n", seed);
	uint64_t total = glen + bytes, sent = 0, got = 0;

	int ret = vsock_connect(&v, &c, VSOCK_HOST_CID, port, local, timeout_us);
	if (ret < 0) {
		krt_printf("vsock: FAILED: connect to port %u: %d%s\n", port, ret,
		           ret == -KRT_ECONNREFU ? " (refused)" : "");
		return 1;
	}
	krt_printf("vsock: connected to port %u, host buffer %u\n", port, c.peer_buf_alloc);
	while (sent < total) {
		size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
		stream_bytes(out, sent, n, greet, glen, seed);
		if ((ret = vsock_send(&v, &c, out, n, timeout_us)) < 0) {
			krt_printf("vsock: FAILED: send at %lu: %d\n", sent, ret);
			return 1;
		}
		sent += n;
		if (take_echo(&c, &got, total, greet, glen, seed, false) < 0)
			return 1;
	}
	if (take_echo(&c, &got, total, greet, glen, seed, true) < 0)
		return 1;
	ret = vsock_close(&v, &c, timeout_us);
	krt_printf("vsock: sent %lu bytes to port %u, echo ok%s\n", total, port,
	           ret ? " (no RST for the shutdown)" : "");
	return 0;
}

static struct vsock_conn listener;

static int accept_and_echo(uint32_t port)
{
	struct vsock_conn *c = &listener;
	uint64_t echoed = 0;

	int ret = vsock_accept(&v, c, timeout_us);
	if (ret < 0) {
		krt_printf("vsock: FAILED: no connection to port %u: %d\n", port, ret);
		return 1;
	}
	krt_printf("vsock: accepted port %u from cid %lu port %u\n", port, c->peer_cid,
	           c->peer_port);
	for (;;) {
		long n = vsock_recv(&v, c, in, sizeof(in), timeout_us);
		if (n == 0)
			break; /* the host shut down its sending side */
		if (n < 0) {
			krt_printf("vsock: FAILED: receive after %lu bytes: %ld\n", echoed, n);
			return 1;
		}
		if ((ret = vsock_send(&v, c, in, (size_t)n, timeout_us)) < 0) {
			krt_printf("vsock: FAILED: echo after %lu bytes: %d\n", echoed, ret);
			return 1;
		}
		echoed += (uint64_t)n;
	}
	vsock_close(&v, c, timeout_us);
	krt_printf("vsock: echoed %lu bytes for the host\n", echoed);
	return 0;
}

int main(void)
{
	timeout_us = krt_param_u64("vsock.timeout_ms", 10000) * 1000;
	int ret = vsock_open(&v, (unsigned)krt_param_u64("vsock.nth", 0));
	if (ret < 0) {
		krt_printf("vsock: FAILED: no socket device (%d)\n", ret);
		virtio_print_devices();
		return 1;
	}
	krt_printf("vsock: guest cid %lu, queues %u/%u/%u, features 0x%lx\n", v.guest_cid,
	           v.rx.size, v.tx.size, v.ev.size, v.dev.features);
	uint32_t port = (uint32_t)krt_param_u64("vsock.port", 1234);
	uint32_t listen = (uint32_t)krt_param_u64("vsock.listen", 1235);
	/* listening from the start: the host may connect as soon as step 1 ends */
	if (listen && (ret = vsock_listen(&v, &listener, listen)) < 0) {
		krt_printf("vsock: FAILED: listen on %u: %d\n", listen, ret);
		return 1;
	}
	if (listen)
		krt_printf("vsock: listening on port %u\n", listen);
	if (port && connect_and_send(port, (uint32_t)krt_param_u64("vsock.local", 2000),
	                             krt_param_u64("vsock.bytes", 100000),
	                             (uint32_t)krt_param_u64("vsock.seed", 1)))
		return 1;
	if (listen && accept_and_echo(listen))
		return 1;
	krt_printf("vsock: ok\n");
	return 0;
}
