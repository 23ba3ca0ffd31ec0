// SPDX-License-Identifier: Apache-2.0
/*
 * virtio/iothread.c: one host thread per device that serves its queues and
 * backends -- an epoll loop over registered fds, with pause/resume so that
 * the VMM (and the transport, around activation and reset) can keep it off
 * the device and guest memory, and a clean stop.
 *
 * Locking: `lock` guards the slots and the pause/stop state. The thread
 * holds it only to look a slot up, never while a callback runs, so
 * callbacks may call iothread_add/mod/del_fd. A paused thread waits on
 * `cond` at the top of its loop, outside every callback.
 */
#define LOG_MODULE "virtio"
#include "virtio.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define CTL_TAG UINT64_MAX /* epoll data of the control eventfd */

struct io_slot {
	bool used;
	int fd;
	uint32_t gen; /* bumped on every del, so stale events of a batch are dropped */
	iothread_cb cb;
	void *opaque;
};

struct iothread {
	pthread_t thread;
	bool started;
	int epfd;
	int ctl_fd; /* eventfd that wakes the thread for pause and stop */
	char name[16];

	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pause_count;
	bool parked, stop, exited;
	struct io_slot slots[IOTHREAD_MAX_FDS];
};

static void ctl_kick(struct iothread *t)
{
	uint64_t one = 1;
	/* an eventfd write only fails when the counter would overflow, which
	 * still leaves it readable: the wake-up is not lost */
	if (write(t->ctl_fd, &one, sizeof(one)) < 0) {
	}
}

static uint64_t slot_tag(const struct iothread *t, unsigned i)
{
	return (uint64_t)t->slots[i].gen << 32 | i;
}

/* one epoll event: the callback to run, looked up under the lock */
static bool lookup(struct iothread *t, uint64_t tag, iothread_cb *cb, void **opaque)
{
	unsigned i = (uint32_t)tag;

	if (i >= IOTHREAD_MAX_FDS || !t->slots[i].used || t->slots[i].gen != tag >> 32)
		return false;
	*cb = t->slots[i].cb;
	*opaque = t->slots[i].opaque;
	return true;
}

/* returns false when the thread must stop; called and returns with the lock held */
static bool park_if_asked(struct iothread *t)
{
	while (t->pause_count && !t->stop) {
		if (!t->parked) {
			t->parked = true;
			pthread_cond_broadcast(&t->cond);
		}
		pthread_cond_wait(&t->cond, &t->lock);
	}
	t->parked = false;
	return !t->stop;
}

static void *io_main(void *arg)
{
	struct iothread *t = arg;
	struct epoll_event ev[16];

	pthread_setname_np(pthread_self(), t->name);
	confine_thread(THREAD_IO);
	pthread_mutex_lock(&t->lock);
	while (park_if_asked(t)) {
		pthread_mutex_unlock(&t->lock);
		int n = epoll_wait(t->epfd, ev, ARRAY_SIZE(ev), -1);
		if (n < 0 && errno != EINTR) {
			log_err("%s: epoll_wait failed: %s; the device stops", t->name,
			        strerror(errno));
			pthread_mutex_lock(&t->lock);
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == CTL_TAG) {
				uint64_t v;
				if (read(t->ctl_fd, &v, sizeof(v)) < 0) {
				}
				continue;
			}
			iothread_cb cb;
			void *opaque;
			pthread_mutex_lock(&t->lock);
			/* a pause asked for mid-batch wins; level-triggered fds fire again */
			bool go = !t->pause_count && !t->stop &&
			          lookup(t, ev[i].data.u64, &cb, &opaque);
			bool leave = t->pause_count || t->stop;
			pthread_mutex_unlock(&t->lock);
			if (leave)
				break;
			if (go)
				cb(opaque, ev[i].events);
		}
		pthread_mutex_lock(&t->lock);
	}
	t->exited = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int iothread_create(struct iothread **out, const char *id, struct errbuf *e)
{
	struct iothread *t = calloc(1, sizeof(*t));
	int r;

	*out = NULL;
	if (!t)
		return errf(e, ENOMEM, "out of memory for the I/O thread of %s", id);
	/* thread names hold 15 characters: "kiln_io_" + the first 7 of the id */
	snprintf(t->name, sizeof(t->name), "kiln_io_%s", id);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epfd < 0) {
		r = errf(e, errno, "epoll_create1 for %s: %s", t->name, strerror(errno));
		goto err_free;
	}
	t->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->ctl_fd < 0) {
		r = errf(e, errno, "eventfd for %s: %s", t->name, strerror(errno));
		goto err_epoll;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = CTL_TAG};
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->ctl_fd, &ev) < 0) {
		r = errf(e, errno, "epoll_ctl for %s: %s", t->name, strerror(errno));
		goto err_ctl;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);

	/* the thread starts with every signal blocked: kicks and SIGINT go elsewhere */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t->thread, NULL, io_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		r = errf(e, r, "cannot start thread %s: %s", t->name, strerror(r));
		goto err_sync;
	}
	t->started = true;
	*out = t;
	return 0;

err_sync:
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
err_ctl:
	close(t->ctl_fd);
err_epoll:
	close(t->epfd);
err_free:
	free(t);
	return r;
}

void iothread_destroy(struct iothread *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	ctl_kick(t);
	if (t->started)
		pthread_join(t->thread, NULL);
	close(t->ctl_fd);
	close(t->epfd);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int find_fd(const struct iothread *t, int fd)
{
	for (unsigned i = 0; i < IOTHREAD_MAX_FDS; i++)
		if (t->slots[i].used && t->slots[i].fd == fd)
			return (int)i;
	return -1;
}

int iothread_add_fd(struct iothread *t, int fd, uint32_t events, iothread_cb cb, void *opaque)
{
	int r = -ENOSPC;

	if (fd < 0 || !cb)
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	if (find_fd(t, fd) >= 0) {
		r = -EEXIST;
		goto out;
	}
	for (unsigned i = 0; i < IOTHREAD_MAX_FDS; i++) {
		struct io_slot *s = &t->slots[i];
		if (s->used)
			continue;
		struct epoll_event ev = {.events = events, .data.u64 = slot_tag(t, i)};
		/* the thread looks the slot up under the lock we hold: fill it first */
		*s = (struct io_slot){
		        .used = true, .fd = fd, .gen = s->gen, .cb = cb, .opaque = opaque};
		r = epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
		if (r)
			s->used = false;
		break;
	}
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

int iothread_mod_fd(struct iothread *t, int fd, uint32_t events)
{
	int r = -ENOENT;

	pthread_mutex_lock(&t->lock);
	int i = find_fd(t, fd);
	if (i >= 0) {
		struct epoll_event ev = {.events = events, .data.u64 = slot_tag(t, (unsigned)i)};
		r = epoll_ctl(t->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

int iothread_del_fd(struct iothread *t, int fd)
{
	int r = -ENOENT;

	pthread_mutex_lock(&t->lock);
	int i = find_fd(t, fd);
	if (i >= 0) {
		struct io_slot *s = &t->slots[i];
		/* a closed fd has left the epoll set already: not an error */
		if (epoll_ctl(t->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF)
			log_warn("%s: epoll_ctl DEL of fd %d: %s", t->name, fd, strerror(errno));
		s->used = false;
		s->gen++;
		r = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

bool iothread_is_current(const struct iothread *t)
{
	return t->started && pthread_equal(pthread_self(), t->thread);
}

int iothread_pause(struct iothread *t)
{
	if (iothread_is_current(t))
		return -EDEADLK;
	pthread_mutex_lock(&t->lock);
	t->pause_count++;
	pthread_mutex_unlock(&t->lock);
	ctl_kick(t);
	pthread_mutex_lock(&t->lock);
	while (!t->parked && !t->exited)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void iothread_resume(struct iothread *t)
{
	pthread_mutex_lock(&t->lock);
	if (t->pause_count && --t->pause_count == 0)
		pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}
