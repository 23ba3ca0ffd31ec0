// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/vsock_host.c: the host side of the vsock device, Firecracker's
 * convention (Firecracker docs/vsock.md): the listener on uds_path and its
 * "CONNECT <port>\n" / "OK <host_port>\n" handshake for host-initiated
 * connections, the connect to "<uds_path>_<port>" for guest-initiated ones,
 * the device's epoll set and the connection deadlines.
 *
 * The device's sockets are in its own epoll set (ep_fd), which is a single
 * fd of the I/O thread: the thread's table holds IOTHREAD_MAX_FDS fds, a
 * vsock device up to VIRTIO_VSOCK_MAX_CONNS connections.
 */
#define LOG_MODULE "virtio-vsock"
#include "vsock_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* the accept()s of one wake-up; a level-triggered listener brings us back */
#define ACCEPT_BATCH 64

static int ep_add(struct virtio_vsock *v, int fd, void *tag, struct errbuf *e)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
	if (epoll_ctl(v->ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return errf(e, errno, "vsock: epoll_ctl: %s", strerror(errno));
	return 0;
}

static int unix_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

/* an existing uds_path: a stale socket is removed, a live one or anything
 * that is not a socket is an error */
static int remove_stale(const char *path, struct errbuf *e)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT
		               ? 0
		               : errf(e, errno, "vsock uds_path %s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return errf(e, EEXIST, "vsock uds_path %s exists and is not a socket", path);
	struct sockaddr_un a;
	unix_addr(&a, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errf(e, errno, "vsock: socket: %s", strerror(errno));
	int r = connect(s, (struct sockaddr *)&a, sizeof(a));
	int err = r < 0 ? errno : 0;
	close(s);
	if (err == ECONNREFUSED) {
		if (unlink(path) < 0 && errno != ENOENT)
			return errf(e, errno, "vsock: cannot remove the stale socket %s: %s", path,
			            strerror(errno));
		return 0;
	}
	if (err == 0 || err == EAGAIN)
		return errf(e, EADDRINUSE, "vsock uds_path %s is in use by a running program",
		            path);
	return errf(e, err, "vsock uds_path %s: %s", path, strerror(err));
}

static int listen_on(struct virtio_vsock *v, struct errbuf *e)
{
	struct sockaddr_un a;
	int ret = remove_stale(v->uds_path, e);
	if (ret < 0)
		return ret;
	unix_addr(&a, v->uds_path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errf(e, errno, "vsock: socket: %s", strerror(errno));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		ret = errf(e, errno, "vsock: cannot bind %s: %s", v->uds_path, strerror(errno));
		goto err_close;
	}
	if (listen(s, 128) < 0) {
		ret = errf(e, errno, "vsock: cannot listen on %s: %s", v->uds_path,
		           strerror(errno));
		goto err_unlink;
	}
	v->listen_fd = s;
	return 0;

err_unlink:
	unlink(v->uds_path);
err_close:
	close(s);
	return ret;
}

int vsock_host_open(struct virtio_vsock *v, struct errbuf *e)
{
	int ret;
	v->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	v->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->ep_fd < 0 || v->timer_fd < 0 || v->wake_fd < 0) {
		ret = errf(e, errno, "vsock: cannot create its epoll, timer or event fd: %s",
		           strerror(errno));
		goto err;
	}
	ret = listen_on(v, e);
	if (ret < 0)
		goto err;
	if ((ret = ep_add(v, v->listen_fd, &v->listen_fd, e)) < 0 ||
	    (ret = ep_add(v, v->timer_fd, &v->timer_fd, e)) < 0 ||
	    (ret = ep_add(v, v->wake_fd, &v->wake_fd, e)) < 0)
		goto err;
	return 0;

err:
	vsock_host_close(v);
	return ret;
}

void vsock_host_close(struct virtio_vsock *v)
{
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unlink(v->uds_path);
	}
	if (v->ep_fd >= 0)
		close(v->ep_fd);
	if (v->timer_fd >= 0)
		close(v->timer_fd);
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	v->listen_fd = v->ep_fd = v->timer_fd = v->wake_fd = -1;
}

static void listen_watch(struct virtio_vsock *v, bool on)
{
	struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = &v->listen_fd};
	if (epoll_ctl(v->ep_fd, EPOLL_CTL_MOD, v->listen_fd, &ev) < 0)
		log_err("%s: epoll_ctl on the listener: %s", v->dev.id, strerror(errno));
	v->listen_paused = !on;
}

void vsock_host_resume_listen(struct virtio_vsock *v)
{
	listen_watch(v, true);
}

static void accept_some(struct virtio_vsock *v)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* out of fds or memory: stop until a connection closes */
			log_warn("%s: accept on %s: %s; host connections wait", v->dev.id,
			         v->uds_path, strerror(errno));
			listen_watch(v, false);
			return;
		}
		if (v->nr_conns >= VIRTIO_VSOCK_MAX_CONNS) {
			log_warn("%s: %d connections already; a host connection is refused",
			         v->dev.id, VIRTIO_VSOCK_MAX_CONNS);
			close(fd);
			continue;
		}
		struct vsock_conn *c = vsock_conn_new(v, fd, VC_HELLO, EPOLLIN);
		if (c)
			vsock_conn_deadline(v, c, VIRTIO_VSOCK_CONNECT_TIMEOUT_MS);
	}
}

/* "CONNECT <port>" (Firecracker's command; the '\n' already taken off) */
static int parse_connect(const char *line, uint32_t *port)
{
	static const char cmd[] = "CONNECT ";
	if (strncmp(line, cmd, sizeof(cmd) - 1))
		return -EINVAL;
	const char *p = line + sizeof(cmd) - 1;
	uint64_t val = 0;
	int digits = 0;
	for (; *p >= '0' && *p <= '9' && digits <= 10; p++, digits++)
		val = val * 10 + (uint64_t)(*p - '0');
	if (*p || digits == 0 || digits > 10 || val > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)val;
	return 0;
}

/* a free host port for a host-initiated connection to guest port `peer` */
static uint32_t local_port(struct virtio_vsock *v, uint32_t peer)
{
	for (;;) {
		uint32_t p = v->next_local_port++;
		if (v->next_local_port == 0)
			v->next_local_port = VSOCK_LOCAL_PORT_BASE;
		if (!vsock_conn_find(v, p, peer))
			return p;
	}
}

void vsock_host_hello(struct virtio_vsock *v, struct vsock_conn *c)
{
	/* byte by byte, so that nothing after the '\n' is taken from the stream */
	for (;;) {
		char ch;
		ssize_t n = recv(c->fd, &ch, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) { /* gone before its line */
			vsock_conn_close(v, c, false, false);
			return;
		}
		if (ch == '\n')
			break;
		if (c->line_len >= VSOCK_LINE_MAX - 1) {
			log_warn("%s: a host connection sent a line too long for "
			         "\"CONNECT <port>\"; closed",
			         v->dev.id);
			vsock_conn_close(v, c, false, false);
			return;
		}
		c->line[c->line_len++] = isprint((unsigned char)ch) ? ch : '?';
	}
	c->line[c->line_len] = '\0';
	uint32_t port;
	if (parse_connect(c->line, &port) < 0) {
		log_warn("%s: a host connection sent \"%s\", not \"CONNECT <port>\"; closed",
		         v->dev.id, c->line);
		vsock_conn_close(v, c, false, false);
		return;
	}
	c->peer_port = port;
	c->local_port = local_port(v, port);
	vsock_conn_hash(v, c);
	c->state = VC_LOCAL_INIT;
	c->pend |= VP_REQUEST;
	vsock_conn_deadline(v, c, VIRTIO_VSOCK_CONNECT_TIMEOUT_MS);
	vsock_conn_sync(v, c);
}

void vsock_host_accepted(struct virtio_vsock *v, struct vsock_conn *c)
{
	char ok[24];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);
	ssize_t w = send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w != n) { /* a fresh socket takes 16 bytes unless its peer is gone */
		log_debug("%s: host connection to guest port %u gone before OK", v->dev.id,
		          c->peer_port);
		vsock_conn_close(v, c, true, true);
		return;
	}
	c->state = VC_ESTABLISHED;
	c->deadline = 0;
	vsock_count(&v->m.conns_opened, 1);
	vsock_conn_sync(v, c);
}

void vsock_host_connect(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	struct sockaddr_un a;
	char path[sizeof(a.sun_path)];
	int fd = -1;

	if (v->nr_conns >= VIRTIO_VSOCK_MAX_CONNS) {
		log_warn("%s: %d connections already; the guest's connection to port %u is "
		         "refused",
		         v->dev.id, VIRTIO_VSOCK_MAX_CONNS, h->dst_port);
		goto err_rst;
	}
	/* fits: create() bounds uds_path */
	snprintf(path, sizeof(path), "%s_%u", v->uds_path, h->dst_port);
	unix_addr(&a, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_warn("%s: socket: %s", v->dev.id, strerror(errno));
		goto err_rst;
	}
	/* a unix connect completes at once, or fails (EAGAIN: backlog full) */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		log_debug("%s: guest port %u -> %s: %s", v->dev.id, h->src_port, path,
		          strerror(errno));
		goto err_close;
	}
	struct vsock_conn *c = vsock_conn_new(v, fd, VC_ESTABLISHED, EPOLLIN);
	if (!c)
		goto err_rst; /* fd closed */
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->guest_knows = true;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pend = VP_RESPONSE;
	vsock_conn_hash(v, c);
	vsock_count(&v->m.conns_opened, 1);
	vsock_conn_sync(v, c);
	return;

err_close:
	close(fd);
err_rst:
	/* s5.10.6.6: no listener or no resources: RST */
	vsock_count(&v->m.conns_reset, 1);
	vsock_rst_queue(v, VSOCK_HOST_CID, h->dst_port, h->src_port);
}

/* ------------------------------------------------------------ deadlines */

void vsock_timer_arm(struct virtio_vsock *v, uint64_t at)
{
	struct itimerspec its = {
	        .it_value = {.tv_sec = (time_t)(at / 1000000000),
	                     .tv_nsec = (long)(at % 1000000000)},
	};
	v->timer_at = at;
	if (timerfd_settime(v->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_err("%s: timerfd_settime: %s", v->dev.id, strerror(errno));
}

static void expire(struct virtio_vsock *v, struct vsock_conn *c)
{
	c->deadline = 0;
	switch (c->state) {
	case VC_HELLO:
		log_warn("%s: a host connection sent no \"CONNECT <port>\" line in %d ms; closed",
		         v->dev.id, VIRTIO_VSOCK_CONNECT_TIMEOUT_MS);
		vsock_conn_close(v, c, false, false);
		break;
	case VC_LOCAL_INIT:
		log_info("%s: the guest did not answer a connection to its port %u in %d ms",
		         v->dev.id, c->peer_port, VIRTIO_VSOCK_CONNECT_TIMEOUT_MS);
		vsock_conn_close(v, c, true, true);
		break;
	case VC_ESTABLISHED: /* a shutdown that did not finish in time */
		vsock_conn_close(v, c, true, c->buf_len || c->shut_sent != VSOCK_SHUT_BOTH);
		break;
	}
}

static void timer_fired(struct virtio_vsock *v)
{
	uint64_t n, now = now_ns(), next = 0;
	if (read(v->timer_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: re-armed meanwhile */
	}
	struct vsock_link *l = v->conns.next;
	while (l != &v->conns) {
		struct vsock_conn *c = VSOCK_CONN_OF(l, all);
		l = l->next; /* before expire() moves c to the dead list */
		if (!c->deadline)
			continue;
		if (c->deadline <= now)
			expire(v, c);
		else if (!next || c->deadline < next)
			next = c->deadline;
	}
	vsock_timer_arm(v, next);
}

void vsock_host_poll(void *opaque, uint32_t events)
{
	struct virtio_vsock *v = opaque;
	struct epoll_event ev[32];
	(void)events;

	int n = epoll_wait(v->ep_fd, ev, ARRAY_SIZE(ev), 0);
	for (int i = 0; i < n; i++) {
		void *tag = ev[i].data.ptr;
		if (tag == &v->listen_fd) {
			accept_some(v);
		} else if (tag == &v->timer_fd) {
			timer_fired(v);
		} else if (tag == &v->wake_fd) {
			uint64_t x;
			if (read(v->wake_fd, &x, sizeof(x)) == sizeof(x))
				vsock_post_event(v);
		} else {
			vsock_conn_event(v, tag, ev[i].events);
		}
	}
	vsock_run(v);
}
