// SPDX-License-Identifier: Apache-2.0
/*
 * The per-device I/O thread (virtio/iothread.c): fds and their callbacks,
 * nested pause/resume, removal from inside and outside the thread, the
 * thread's name, and running out of slots.
 */
#include <criterion/criterion.h>

#include "virtio/virtio.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct counter {
	int fd;
	int calls;
	struct iothread *t;
	bool del_self;
};

static void count_cb(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	uint64_t v;
	cr_assert(events & EPOLLIN);
	if (read(c->fd, &v, 8) != 8)
		return;
	__atomic_fetch_add(&c->calls, 1, __ATOMIC_SEQ_CST);
	if (c->del_self)
		cr_assert_eq(iothread_del_fd(c->t, c->fd), 0);
	cr_assert_eq(iothread_pause(c->t), -EDEADLK, "pausing oneself");
}

static void wait_calls(struct counter *c, int want)
{
	for (int i = 0; i < 2000 && __atomic_load_n(&c->calls, __ATOMIC_SEQ_CST) < want; i++)
		usleep(1000);
	cr_assert_eq(__atomic_load_n(&c->calls, __ATOMIC_SEQ_CST), want);
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	cr_assert_eq(write(fd, &one, 8), 8);
}

Test(iothread, fds_pause_resume_and_names)
{
	struct iothread *t;
	struct errbuf e;
	cr_assert_eq(iothread_create(&t, "verylongname", &e), 0, "%s", e.msg);
	cr_assert_not(iothread_is_current(t));
	struct counter c = {.fd = eventfd(0, EFD_NONBLOCK), .t = t};
	cr_assert_eq(iothread_add_fd(t, c.fd, EPOLLIN, count_cb, &c), 0);
	cr_assert_eq(iothread_add_fd(t, c.fd, EPOLLIN, count_cb, &c), -EEXIST);
	signal_fd(c.fd);
	wait_calls(&c, 1);

	/* nested pauses: runs again only after both resumes */
	cr_assert_eq(iothread_pause(t), 0);
	cr_assert_eq(iothread_pause(t), 0);
	signal_fd(c.fd);
	usleep(50000);
	cr_assert_eq(c.calls, 1);
	iothread_resume(t);
	usleep(50000);
	cr_assert_eq(c.calls, 1);
	iothread_resume(t);
	wait_calls(&c, 2);

	/* deleted while paused: never called again */
	cr_assert_eq(iothread_pause(t), 0);
	cr_assert_eq(iothread_del_fd(t, c.fd), 0);
	cr_assert_eq(iothread_del_fd(t, c.fd), -ENOENT);
	cr_assert_eq(iothread_mod_fd(t, c.fd, EPOLLIN), -ENOENT);
	iothread_resume(t);
	signal_fd(c.fd);
	usleep(50000);
	cr_assert_eq(c.calls, 2);

	/* a callback may remove its own fd */
	uint64_t v;
	cr_assert_eq(read(c.fd, &v, 8), 8);
	c.del_self = true;
	cr_assert_eq(iothread_add_fd(t, c.fd, EPOLLIN, count_cb, &c), 0);
	signal_fd(c.fd);
	wait_calls(&c, 3);
	signal_fd(c.fd);
	usleep(50000);
	cr_assert_eq(c.calls, 3);

	iothread_destroy(t);
	iothread_destroy(NULL);
	close(c.fd);
}

static char thread_name[16];
static int named;

static void name_cb(void *opaque, uint32_t events)
{
	(void)opaque;
	(void)events;
	pthread_getname_np(pthread_self(), thread_name, sizeof(thread_name));
	__atomic_store_n(&named, 1, __ATOMIC_RELEASE);
}

Test(iothread, thread_is_named_after_the_device)
{
	struct iothread *t;
	struct errbuf e;
	int fd = eventfd(1, EFD_NONBLOCK);
	cr_assert_eq(iothread_create(&t, "rootfs", &e), 0);
	cr_assert_eq(iothread_add_fd(t, fd, EPOLLIN | EPOLLONESHOT, name_cb, NULL), 0);
	for (int i = 0; i < 2000 && !__atomic_load_n(&named, __ATOMIC_ACQUIRE); i++)
		usleep(1000);
	iothread_destroy(t);
	cr_assert_str_eq(thread_name, "kiln_io_rootfs");
	close(fd);
}

Test(iothread, slots_run_out)
{
	struct iothread *t;
	struct errbuf e;
	int fds[IOTHREAD_MAX_FDS + 1];
	struct counter c = {0};
	cr_assert_eq(iothread_create(&t, "many", &e), 0);
	for (int i = 0; i <= IOTHREAD_MAX_FDS; i++) {
		fds[i] = eventfd(0, EFD_NONBLOCK);
		int r = iothread_add_fd(t, fds[i], EPOLLIN, count_cb, &c);
		cr_assert_eq(r, i < IOTHREAD_MAX_FDS ? 0 : -ENOSPC);
	}
	iothread_destroy(t);
	for (int i = 0; i <= IOTHREAD_MAX_FDS; i++)
		close(fds[i]);
}
