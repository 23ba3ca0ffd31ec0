// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/migration.c: the VMM thread's side of live migration. The API
 * actions (PUT /migration/send, /receive, /cancel, GET /migration) start,
 * stop and report a migration; its thread (mig_send.c, mig_recv.c) asks
 * for everything that touches the VM through mig_call(), which runs a
 * function here, on the VMM thread, and waits for its result.
 */
#define LOG_MODULE "migration"
#include "migration.h"
#include "vmm.h"

#include "virtio/blk.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 10000

/* ------------------------------------------------------------ mig_call */

int mig_call(struct vmm_migration *m, mig_call_fn fn, void *arg, struct errbuf *e)
{
	uint64_t one = 1;
	int ret;

	pthread_mutex_lock(&m->lock);
	if (m->closing) {
		pthread_mutex_unlock(&m->lock);
		return errf(e, ECANCELED, "kiln is shutting down");
	}
	m->call_fn = fn;
	m->call_arg = arg;
	m->call_e = e;
	m->call_pending = true;
	m->call_done = false;
	if (write(m->call_efd, &one, sizeof(one)) < 0)
		log_warn("cannot wake the VMM thread: %s", strerror(errno));
	while (!m->call_done && !m->closing)
		pthread_cond_wait(&m->cond, &m->lock);
	ret = m->call_done ? m->call_ret : errf(e, ECANCELED, "kiln is shutting down");
	m->call_pending = false;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static void on_call(void *opaque, uint32_t events)
{
	struct vmm_migration *m = opaque;
	uint64_t n;
	(void)events;
	if (read(m->call_efd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&m->lock);
	bool run = m->call_pending && !m->call_done;
	pthread_mutex_unlock(&m->lock);
	if (!run)
		return;
	/* the thread waits: fn, arg and e stay as they are */
	int ret = m->call_fn(m->v, m->call_arg, m->call_e);
	pthread_mutex_lock(&m->lock);
	m->call_ret = ret;
	m->call_done = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

void mig_set_phase(struct vmm_migration *m, enum mig_phase p)
{
	pthread_mutex_lock(&m->lock);
	m->st.phase = p;
	pthread_mutex_unlock(&m->lock);
}

void mig_finish(struct vmm_migration *m, enum mig_phase p, const char *why)
{
	pthread_mutex_lock(&m->lock);
	m->st.phase = p;
	m->st.total_ms = (now_ns() - m->start_ns) / 1000000;
	if (why)
		snprintf(m->st.error, sizeof(m->st.error), "%s", why);
	pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------ set-up, teardown */

/* joins a finished thread and frees what the last migration held */
static void mig_reset(struct vmm_migration *m)
{
	if (m->thread_started) {
		atomic_store(&m->cancel, true);
		if (m->sock >= 0)
			shutdown(m->sock, SHUT_RDWR);
		if (m->listen_fd >= 0)
			shutdown(m->listen_fd, SHUT_RDWR);
		pthread_mutex_lock(&m->lock);
		m->closing = true;
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
		m->thread_started = false;
		m->closing = false;
	}
	if (m->sock >= 0)
		close(m->sock);
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	if (m->listen_path[0])
		unlink(m->listen_path);
	m->sock = m->listen_fd = -1;
	m->listen_path[0] = '\0';
	sw_free(&m->hello);
	sw_free(&m->state);
	free(m->bitmap);
	free(m->devices);
	free(m->carry);
	m->bitmap = m->devices = m->carry = NULL;
	if (m->rreq) {
		api_migration_receive_free(m->rreq);
		free(m->rreq);
		m->rreq = NULL;
	}
	atomic_store(&m->cancel, false);
}

static int mig_get(struct vmm *v, struct vmm_migration **out, struct errbuf *e)
{
	struct vmm_migration *m = v->mig;
	if (m) {
		if (atomic_load(&m->active))
			return errf(e, EBUSY, "a migration is in progress");
		mig_reset(m);
	} else {
		m = calloc(1, sizeof(*m));
		if (!m)
			return errf(e, ENOMEM, "out of memory");
		m->v = v;
		m->sock = m->listen_fd = -1;
		m->call_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		pthread_mutex_init(&m->lock, NULL);
		pthread_cond_init(&m->cond, NULL);
		sw_init(&m->hello);
		sw_init(&m->state);
		if (m->call_efd < 0 || el_add(&v->loop, m->call_efd, EPOLLIN, on_call, m) < 0) {
			int err = m->call_efd < 0 ? errno : ENOSPC;
			if (m->call_efd >= 0)
				close(m->call_efd);
			free(m);
			return errf(e, err, "cannot set up the migration: %s", strerror(err));
		}
		v->mig = m;
	}
	memset(&m->st, 0, sizeof(m->st));
	m->start_ns = now_ns();
	m->committed = m->paused_here = m->was_running = false;
	*out = m;
	return 0;
}

void vmm_migration_destroy(struct vmm *v)
{
	struct vmm_migration *m = v->mig;
	if (!m)
		return;
	mig_reset(m);
	el_del(&v->loop, m->call_efd);
	close(m->call_efd);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
	v->mig = NULL;
}

bool vmm_migration_active(const struct vmm *v)
{
	return v->mig && atomic_load(&v->mig->active);
}

static int start_thread(struct vmm_migration *m, void *(*fn)(void *), struct errbuf *e)
{
	atomic_store(&m->active, true);
	int ret = pthread_create(&m->thread, NULL, fn, m);
	if (ret != 0) {
		atomic_store(&m->active, false);
		return errf(e, ret, "cannot start the migration thread: %s", strerror(ret));
	}
	m->thread_started = true;
	return 0;
}

/* ---------------------------------------------------------------- source */

/* a connected stream socket to `a`, within CONNECT_TIMEOUT_MS */
static int connect_to(const struct mig_addr *a, const char *name, struct errbuf *e)
{
	int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return errf(e, errno, "cannot create a socket: %s", strerror(errno));
	int ret = connect(fd, &a->u.sa, a->len);
	if (ret < 0 && errno == EINPROGRESS) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof(err);
		ret = poll(&p, 1, CONNECT_TIMEOUT_MS);
		if (ret == 0)
			err = ETIMEDOUT;
		else if (ret < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		errno = err;
		ret = err ? -1 : 0;
	}
	if (ret < 0) {
		int err = errno;
		close(fd);
		return errf(e, err, "cannot connect to %s: %s", name, strerror(err));
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (a->family != AF_UNIX) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return fd;
}

/*
 * Dirty logging on, with the VM paused: a request a device took before its
 * pages were tracked has completed before the first round reads memory,
 * and every later one is marked when taken (gm_mark_dirty).
 */
static int start_logging(struct vmm *v, struct vmm_migration *m, struct errbuf *e)
{
	int ret;
	m->logging_was_on = v->mem.log_dirty;
	if ((ret = gm_track_dirty(&v->mem)) < 0)
		return errf(e, -ret, "out of memory for the dirty page bitmap");
	if (!v->mem.log_dirty) {
		if ((ret = gm_register(&v->mem, v->vm.fd, true)) < 0)
			return errf(e, -ret, "cannot turn KVM's dirty logging on: %s",
			            strerror(-ret));
		v->mem.log_dirty = true;
	}
	for (unsigned i = 0; i < v->nr_devs; i++)
		if (v->devs[i].kind == VDEV_BLK && (ret = virtio_blk_drain(v->devs[i].impl)) < 0)
			return errf(e, -ret, "cannot complete the drives' requests: %s",
			            strerror(-ret));
	return 0;
}

/* dirty logging back as it was (a failed or cancelled migration); VMM thread */
void mig_stop_logging(struct vmm *v, struct vmm_migration *m)
{
	if (m->carry && v->mem.dirty) /* what the migration took from the log: Diff needs it */
		for (size_t w = 0; w < gm_dirty_bitmap_words(&v->mem); w++)
			__atomic_fetch_or(&v->mem.dirty[w], m->carry[w], __ATOMIC_RELAXED);
	if (!m->logging_was_on && v->mem.log_dirty) {
		int ret = gm_register(&v->mem, v->vm.fd, false);
		if (ret < 0)
			log_warn("cannot turn KVM's dirty logging off: %s", strerror(-ret));
		else
			v->mem.log_dirty = false;
	}
}

int vmm_migration_send(struct vmm *v, const struct migration_send_req *req, struct errbuf *e)
{
	struct vmm_migration *m;
	struct mig_addr a;
	int ret;

	if ((ret = mig_parse_addr(req->destination, &a, e)) < 0 || (ret = mig_get(v, &m, e)) < 0)
		return ret;
	snprintf(m->st.peer, sizeof(m->st.peer), "%s", req->destination);
	m->st.is_source = true;
	m->max_downtime_ms = req->max_downtime_ms ? req->max_downtime_ms : 1;
	m->max_iterations = req->max_iterations ? req->max_iterations : 1;
	m->limit_bps = (uint64_t)req->bandwidth_limit_mib_s << 20;
	m->was_running = v->state == VMM_RUNNING;

	size_t words = gm_dirty_bitmap_words(&v->mem);
	m->bitmap = calloc(words, sizeof(uint64_t));
	m->devices = calloc(words, sizeof(uint64_t));
	if (v->cfg.machine.track_dirty_pages)
		m->carry = calloc(words, sizeof(uint64_t));
	if (!m->bitmap || !m->devices || (v->cfg.machine.track_dirty_pages && !m->carry))
		return errf(e, ENOMEM, "out of memory for the dirty page bitmaps");
	if ((m->sock = connect_to(&a, req->destination, e)) < 0) {
		ret = m->sock;
		m->sock = -1;
		return ret;
	}
	/* a moment paused: the handshake reads vCPU 0, the drives drain */
	if (m->was_running && (ret = vmm_pause(v, e)) < 0)
		return ret;
	sw_free(&m->hello);
	sw_init(&m->hello);
	if ((ret = mig_build_hello(v, &m->hello, e)) == 0 && (ret = start_logging(v, m, e)) < 0)
		mig_stop_logging(v, m);
	struct errbuf e2;
	if (m->was_running && vmm_resume(v, &e2) < 0 && ret == 0)
		ret = errf(e, EIO, "cannot resume the guest: %s", e2.msg);
	if (ret < 0)
		return ret;
	m->st.phase = MIG_PHASE_HANDSHAKE;
	if ((ret = start_thread(m, mig_send_thread, e)) < 0) {
		mig_stop_logging(v, m);
		return ret;
	}
	log_info("migration to %s started (max downtime %u ms, at most %u rounds before the "
	         "stop, %s)",
	         req->destination, m->max_downtime_ms, m->max_iterations + 1,
	         m->limit_bps ? "bandwidth limited" : "no bandwidth limit");
	return 0;
}

/* ---------------------------------------------------------------- target */

/* a listening socket at `a`; a unix socket file nobody listens on is replaced */
static int listen_at(struct vmm_migration *m, const struct mig_addr *a, const char *name,
                     struct errbuf *e)
{
	int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errf(e, errno, "cannot create a socket: %s", strerror(errno));
	int one = 1;
	if (a->family != AF_UNIX)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->family == AF_UNIX) {
		const char *path = ((const struct sockaddr_un *)&a->u.ss)->sun_path;
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    connect(fd, &a->u.sa, a->len) < 0 && errno == ECONNREFUSED)
			unlink(path);
		close(fd);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			return errf(e, errno, "cannot create a socket: %s", strerror(errno));
	}
	if (bind(fd, &a->u.sa, a->len) < 0 || listen(fd, 1) < 0) {
		int err = errno;
		close(fd);
		return errf(e, err, "cannot listen on %s: %s", name, strerror(err));
	}
	if (a->family == AF_UNIX)
		snprintf(m->listen_path, sizeof(m->listen_path), "%s",
		         ((const struct sockaddr_un *)&a->u.ss)->sun_path);
	return fd;
}

int vmm_migration_receive(struct vmm *v, struct migration_receive_req *req, struct errbuf *e)
{
	const struct vm_config *c = &v->cfg;
	struct vmm_migration *m;
	struct mig_addr a;
	int ret;

	if (c->has_boot_source || c->nr_drives || c->nr_nets || c->vsock.set || c->entropy.set)
		return errf(e, EINVAL,
		            "a microVM that receives a migration is configured by its source: "
		            "only machine-config and cpu-config may be set before");
	if ((ret = mig_parse_addr(req->listen, &a, e)) < 0 || (ret = mig_get(v, &m, e)) < 0)
		return ret;
	if ((m->listen_fd = listen_at(m, &a, req->listen, e)) < 0) {
		ret = m->listen_fd;
		m->listen_fd = -1;
		return ret;
	}
	m->rreq = malloc(sizeof(*m->rreq));
	if (!m->rreq)
		return errf(e, ENOMEM, "out of memory");
	*m->rreq = *req; /* the migration takes the strings */
	memset(req, 0, sizeof(*req));
	m->machine_set = v->machine_set;
	m->built = false;
	snprintf(m->st.peer, sizeof(m->st.peer), "%s", m->rreq->listen);
	m->st.phase = MIG_PHASE_LISTENING;
	if ((ret = start_thread(m, mig_recv_thread, e)) < 0)
		return ret;
	log_info("waiting for a migration on %s", m->rreq->listen);
	return 0;
}

/* ---------------------------------------------------------- cancel, status */

int vmm_migration_cancel(struct vmm *v, struct errbuf *e)
{
	struct vmm_migration *m = v->mig;
	if (!m || !atomic_load(&m->active))
		return errf(e, EINVAL, "no migration is in progress");
	if (m->committed)
		return errf(e, EINVAL,
		            "the migration is past its point of no return: the target runs "
		            "the guest");
	atomic_store(&m->cancel, true);
	/* a blocked read or write returns; the thread rolls back */
	if (m->sock >= 0)
		shutdown(m->sock, SHUT_RDWR);
	if (m->listen_fd >= 0)
		shutdown(m->listen_fd, SHUT_RDWR);
	log_info("migration cancelled by the API");
	return 0;
}

json_t *vmm_migration_status(const struct vmm *v)
{
	struct mig_stats s = {0};
	const char *role = "none";
	struct vmm_migration *m = v->mig;

	if (m) {
		pthread_mutex_lock(&m->lock);
		s = m->st;
		/* the sending thread adds to these without the lock */
		s.bytes = __atomic_load_n(&m->st.bytes, __ATOMIC_RELAXED);
		s.pages = __atomic_load_n(&m->st.pages, __ATOMIC_RELAXED);
		s.zero_pages = __atomic_load_n(&m->st.zero_pages, __ATOMIC_RELAXED);
		if (atomic_load(&m->active))
			s.total_ms = (now_ns() - m->start_ns) / 1000000;
		pthread_mutex_unlock(&m->lock);
		role = s.is_source ? "source" : "target";
	}
	json_t *j =
	        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I}",
	                  "role", role, "phase", mig_phase_name(s.phase), "peer", s.peer,
	                  "iteration", (json_int_t)s.iteration, "bytes", (json_int_t)s.bytes,
	                  "pages", (json_int_t)s.pages, "zero_pages", (json_int_t)s.zero_pages,
	                  "remaining_pages", (json_int_t)s.remaining_pages, "dirty_pages_per_s",
	                  (json_int_t)s.dirty_pages_per_s, "link_mib_s", s.link_mib_s,
	                  "expected_downtime_ms", (json_int_t)s.expected_downtime_ms, "downtime_ms",
	                  (json_int_t)s.downtime_ms, "total_ms", (json_int_t)s.total_ms);
	if (j && s.error[0])
		json_object_set_new(j, "error", json_string(s.error));
	return j;
}
