// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: virtio-vsock (virtio/vsock*.c) driven by the hostile
 * driver of fz_dev.c, with its real unix-socket back end: kiln listens on
 * <tmp>/v.sock, and host programs (played by the back-end event) connect
 * there, send "CONNECT <port>\n" or garbage, send data, read and close.
 * A host listener on <tmp>/v.sock_1024 takes the connections the guest
 * opens to host port 1024 and echoes. Variant: nothing yet (the guest CID
 * is 3 + the variant's low bits).
 */
#include "tests/fuzz/fz_dev.h"
#include "virtio/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NCONN 4

static char uds[96];
static int listener = -1;
static int conn[NCONN] = {-1, -1, -1, -1};

static int unix_socket(const char *p, bool listen_on)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", p);
	if (s < 0)
		return -1;
	int r = listen_on ? bind(s, (struct sockaddr *)&a, sizeof(a)) : 0;
	if (r == 0)
		r = listen_on ? listen(s, 16) : connect(s, (struct sockaddr *)&a, sizeof(a));
	if (r < 0 && errno != EINPROGRESS) {
		close(s);
		return -1;
	}
	return s;
}

static int vsock_setup(void)
{
	char p[128];
	snprintf(uds, sizeof(uds), "%s/v.sock", fz_tmpdir());
	snprintf(p, sizeof(p), "%s_1024", uds);
	listener = unix_socket(p, true);
	return listener < 0 ? -errno : 0;
}

static struct virtio_dev *vsock_create(struct fz *f)
{
	struct virtio_vsock *v;
	struct errbuf e = {{0}};
	struct virtio_vsock_params p = {.guest_cid = 3u + (f->variant & 3), .uds_path = uds};
	if (virtio_vsock_create(&v, &p, &e) < 0) {
		fprintf(stderr, "fz: virtio_vsock_create: %s\n", e.msg);
		return NULL;
	}
	f->obj = v;
	return virtio_vsock_dev(v);
}

static void close_conn(int i)
{
	if (conn[i] >= 0)
		close(conn[i]);
	conn[i] = -1;
}

static void vsock_destroy(struct fz *f)
{
	virtio_vsock_destroy(f->obj);
	for (int i = 0; i < NCONN; i++)
		close_conn(i);
	/* connections the guest opened and nobody took */
	int s;
	while ((s = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(s);
}

/* what the device sent the host programs, read and dropped */
static void vsock_drain(struct fz *f)
{
	static char buf[16384];
	(void)f;
	for (int i = 0; i < NCONN; i++)
		while (conn[i] >= 0 && recv(conn[i], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
}

static void vsock_host(struct fz *f, struct fz_in *in)
{
	char buf[256];
	uint8_t b = fz_u8(in);
	int i = b >> 4 & (NCONN - 1);
	(void)f;
	switch (b % 5) {
	case 0: /* a host program connects and asks for a guest port */
		close_conn(i);
		conn[i] = unix_socket(uds, false);
		if (conn[i] >= 0) {
			int n = snprintf(buf, sizeof(buf), "CONNECT %u\n", fz_u32(in));
			send(conn[i], buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		}
		break;
	case 1: /* it sends anything */
		if (conn[i] >= 0)
			send(conn[i], buf, fz_bytes(in, buf, fz_u8(in)),
			     MSG_NOSIGNAL | MSG_DONTWAIT);
		break;
	case 2: /* it closes, or half-closes */
		if (b & 8)
			shutdown(conn[i], fz_u8(in) % 3);
		else
			close_conn(i);
		break;
	case 3: /* the host service the guest connected to answers and may close */
		close_conn(i);
		conn[i] = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (conn[i] >= 0)
			send(conn[i], buf, fz_bytes(in, buf, fz_u8(in)),
			     MSG_NOSIGNAL | MSG_DONTWAIT);
		break;
	default: /* a host program connects and goes quiet or says something odd */
		close_conn(i);
		conn[i] = unix_socket(uds, false);
		if (conn[i] >= 0)
			send(conn[i], buf, fz_bytes(in, buf, fz_u8(in) % 32),
			     MSG_NOSIGNAL | MSG_DONTWAIT);
		break;
	}
}

static const struct fz_kind vsock_kind = {
        .name = "vsock",
        .setup = vsock_setup,
        .create = vsock_create,
        .destroy = vsock_destroy,
        .host = vsock_host,
        .drain = vsock_drain,
};

FZ_DEV_TARGET(vsock_kind)
