// SPDX-License-Identifier: Apache-2.0
/*
 * api/queue.c: the API thread -> VMM thread action queue. A mutex-protected
 * singly linked FIFO and an eventfd the VMM thread's epoll watches: post
 * appends, then writes the eventfd; take reads (drains) the eventfd, then
 * pops. Because the consumer pops until NULL after every wake-up and the
 * producer writes only after appending, no action can be left behind
 * without a pending wake-up.
 */
#include "api/api.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int api_queue_init(struct api_queue *q)
{
	int ret;

	q->head = q->tail = NULL;
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0)
		return -errno;
	ret = pthread_mutex_init(&q->lock, NULL);
	if (ret) {
		close(q->efd);
		q->efd = -1;
		return -ret;
	}
	return 0;
}

void api_queue_destroy(struct api_queue *q)
{
	if (q->efd >= 0)
		close(q->efd);
	q->efd = -1;
	pthread_mutex_destroy(&q->lock);
	q->head = q->tail = NULL;
}

void api_queue_post(struct api_queue *q, struct api_action *a)
{
	uint64_t one = 1;

	a->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = a;
	else
		q->head = a;
	q->tail = a;
	pthread_mutex_unlock(&q->lock);
	/*
	 * Cannot fail in a way that loses the action: EAGAIN means the counter
	 * is at its maximum, so a wake-up is pending anyway.
	 */
	while (write(q->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

struct api_action *api_queue_take(struct api_queue *q)
{
	struct api_action *a;
	uint64_t n;

	/* drain first: a post that lands after this read writes again */
	while (read(q->efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&q->lock);
	a = q->head;
	if (a) {
		q->head = a->next;
		if (!q->head)
			q->tail = NULL;
		a->next = NULL;
	}
	pthread_mutex_unlock(&q->lock);
	return a;
}
