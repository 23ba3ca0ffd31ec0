// SPDX-License-Identifier: Apache-2.0
/* daemon/event_loop.c: the VMM thread's epoll loop. */
#define LOG_MODULE "vmm"
#include "vmm.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int el_init(struct event_loop *l)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < EL_MAX_SOURCES; i++)
		l->sources[i].fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -errno : 0;
}

void el_destroy(struct event_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

int el_add(struct event_loop *l, int fd, uint32_t events, el_handler_fn fn, void *opaque)
{
	for (size_t i = 0; i < EL_MAX_SOURCES; i++) {
		struct el_source *s = &l->sources[i];
		if (s->fd >= 0)
			continue;
		struct epoll_event ev = {.events = events, .data.ptr = s};
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
		s->fd = fd;
		s->fn = fn;
		s->opaque = opaque;
		return 0;
	}
	return -ENOSPC;
}

int el_del(struct event_loop *l, int fd)
{
	for (size_t i = 0; i < EL_MAX_SOURCES; i++) {
		struct el_source *s = &l->sources[i];
		if (s->fd != fd)
			continue;
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		s->fd = -1;
		s->fn = NULL;
		return 0;
	}
	return -ENOENT;
}

void el_quit(struct event_loop *l)
{
	l->quit = true;
}

int el_run(struct event_loop *l)
{
	struct epoll_event evs[16];

	while (!l->quit) {
		int n = epoll_wait(l->epfd, evs, (int)ARRAY_SIZE(evs), -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			log_err("epoll_wait: %s", strerror(err));
			return -err;
		}
		for (int i = 0; i < n && !l->quit; i++) {
			struct el_source *s = evs[i].data.ptr;
			/* a handler earlier in this batch may have removed it */
			if (s->fd >= 0 && s->fn)
				s->fn(s->opaque, evs[i].events);
		}
	}
	return 0;
}
