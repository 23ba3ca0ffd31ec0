// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/mig_send.c: the source of a live migration. Its thread
 * ("kiln_mig_send") sends the HELLO the VMM thread built, all of RAM while
 * the guest runs, rounds of what the guest dirtied until the rest fits the
 * downtime allowed and further rounds stop shrinking it (or the rounds run
 * out), then has the VMM thread pause
 * the VM and save its state, sends the last pages and the state, and hands
 * the guest over (READY, GO, RUNNING). See migration.h.
 */
#define LOG_MODULE "migration"
#include "migration.h"
#include "snapshot.h"
#include "vmm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CPU_SECTION_VERSION 1
#define REPLY_TIMEOUT_S     120 /* the target builds the VM, or restores it */
/* the state and the devices' pages are not in the estimate: a floor for it */
#define STATE_COST_MS 2
/* rounds without progress, once the rest fits, before the pause */
#define STALL_ROUNDS 3

int mig_build_hello(struct vmm *v, struct state_writer *w, struct errbuf *e)
{
	struct vcpu *vc = v->vm.vcpus[0];
	struct kvm_cpuid2 *cpuid = NULL;
	int ret;

	/* VMM thread, vCPUs parked: both read vCPU 0 through its fd */
	if ((ret = vcpu_get_cpuid(vc, &cpuid, e)) < 0)
		return ret;
	struct kvm_msrs *msrs = vcpu_msr_list(vc);
	if (!msrs) {
		free(cpuid);
		return errf(e, ENOMEM, "out of memory");
	}
	sw_bytes(w, MIG_MAGIC, 8);
	sw_u32(w, MIG_PROTOCOL_VERSION);
	snap_write_head(v, w, SNAP_FULL);
	snap_write_layout(v, w);
	sw_begin(w, "cpu", CPU_SECTION_VERSION);
	vcpu_state_put_cpuid(w, cpuid);
	sw_u32(w, msrs->nmsrs);
	for (uint32_t i = 0; i < msrs->nmsrs; i++)
		sw_u32(w, msrs->entries[i].index);
	sw_end(w);
	free(cpuid);
	free(msrs);
	if (sw_error(w))
		return errf(e, -sw_error(w), "cannot build the migration handshake");
	return 0;
}

/* ------------------------------------------- on the VMM thread (mig_call) */

/* pauses the VM, saves its state, takes the last dirty pages */
static int stop_vm(struct vmm *v, void *arg, struct errbuf *e)
{
	struct vmm_migration *m = arg;
	int ret;

	if (v->state == VMM_RUNNING) {
		if ((ret = vmm_pause(v, e)) < 0)
			return ret;
		m->paused_here = true;
	} else if (v->state != VMM_PAUSED) {
		return errf(e, EIO, "the guest stopped: %s", v->stop_why);
	}
	m->pause_ns = now_ns();
	sw_free(&m->state);
	sw_init(&m->state);
	if ((ret = snap_write_body(v, &m->state, e)) < 0)
		return ret;
	if (sw_error(&m->state))
		return errf(e, -sw_error(&m->state), "cannot build the VM's state");
	/* after the drain: what completing requests wrote is in the log too */
	if ((ret = gm_get_dirty_log(&v->mem, v->vm.fd, m->bitmap, m->devices)) < 0)
		return errf(e, -ret, "cannot read KVM's dirty log: %s", strerror(-ret));
	for (size_t w = 0; w < gm_dirty_bitmap_words(&v->mem); w++) {
		m->bitmap[w] |= m->devices[w];
		if (m->carry)
			m->carry[w] |= m->bitmap[w];
	}
	return 0;
}

/* a failed or cancelled migration: the guest runs on here */
static int roll_back(struct vmm *v, void *arg, struct errbuf *e)
{
	struct vmm_migration *m = arg;
	mig_stop_logging(v, m);
	if (m->paused_here && v->state == VMM_PAUSED) {
		m->paused_here = false;
		return vmm_resume(v, e);
	}
	return 0;
}

/* the target runs the guest: this kiln ends */
static int hand_over(struct vmm *v, void *arg, struct errbuf *e)
{
	struct vmm_migration *m = arg;
	(void)e;
	/* at the default level too: the guest leaves this process */
	log_warn("migration to %s complete: downtime %llu ms, total %llu ms, %llu MiB in %u "
	         "rounds (%llu pages, %llu of them zero), link %.0f MiB/s",
	         m->st.peer, (unsigned long long)m->st.downtime_ms,
	         (unsigned long long)m->st.total_ms, (unsigned long long)(m->st.bytes >> 20),
	         m->st.iteration, (unsigned long long)m->st.pages,
	         (unsigned long long)m->st.zero_pages, m->st.link_mib_s);
	vmm_migrated_away(v, m->st.peer);
	return 0;
}

/* --------------------------------------------------------------- thread */

/* the next frame must be `want`; an ERROR's text, or what came instead, in e */
static int expect(int fd, uint32_t want, const char *what, struct errbuf *e)
{
	struct mig_header h;
	int ret = mig_recv_header(fd, &h);
	if (ret < 0)
		return errf(e, -ret, "no %s from the target: %s", what,
		            ret == -ECONNRESET ? "it closed the connection" : strerror(-ret));
	if (h.type == MIG_ERROR) {
		char msg[512];
		size_t n = h.length < sizeof(msg) - 1 ? (size_t)h.length : sizeof(msg) - 1;
		if (mig_read_all(fd, msg, n) < 0)
			n = 0;
		msg[n] = '\0';
		return errf(e, EPROTO, "the target refused: %s", msg);
	}
	if (h.type != want || h.length != 0)
		return errf(e, EPROTO, "the target sent frame %u instead of %s", h.type, what);
	return 0;
}

static uint64_t popcount_map(const uint64_t *map, size_t words)
{
	uint64_t n = 0;
	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(map[i]);
	return n;
}

/*
 * The link speed: all rounds' bytes over all rounds' sending time (a
 * round of a few pages alone times nothing but the system calls).
 */
static void count_round(struct vmm_migration *m, uint64_t bytes, uint64_t ns)
{
	m->sent_bytes += bytes;
	m->send_ns += ns;
	pthread_mutex_lock(&m->lock);
	if (m->send_ns > 1000000 && m->sent_bytes > (1u << 20))
		m->st.link_mib_s = (double)m->sent_bytes / (1 << 20) / ((double)m->send_ns / 1e9);
	pthread_mutex_unlock(&m->lock);
}

/*
 * Round 0 leaves out the pages the guest never touched (fresh anonymous
 * memory): the target's memory starts zero as well. A page touched later
 * is in the dirty log like any other. Not for memory a page server fills.
 */
static void skip_untouched(struct vmm_migration *m)
{
	struct vmm *v = m->v;
	size_t words = gm_dirty_bitmap_words(&v->mem);
	if (v->uffd_fd >= 0)
		return;
	uint64_t *untouched = calloc(words, sizeof(uint64_t));
	if (!untouched)
		return;
	int ret = gm_untouched_pages(&v->mem, untouched);
	uint64_t n = 0;
	if (ret == 0)
		for (size_t w = 0; w < words; w++) {
			n += (uint64_t)__builtin_popcountll(m->bitmap[w] & untouched[w]);
			m->bitmap[w] &= ~untouched[w];
		}
	else if (ret != -ENOTSUP)
		log_debug("cannot read pagemap (%s): every page goes", strerror(-ret));
	free(untouched);
	log_debug("round 0 leaves out %llu untouched pages", (unsigned long long)n);
}

/* the pre-copy rounds; 0 when it is time to stop the guest */
static int precopy(struct vmm_migration *m, struct mig_pacer *pace, struct errbuf *e)
{
	struct vmm *v = m->v;
	size_t words = gm_dirty_bitmap_words(&v->mem);
	uint64_t total = v->mem.ram_size / GM_PAGE_SIZE;
	int ret;

	/* round 0: everything, the log cleared first so later writes show */
	if ((ret = gm_get_dirty_log(&v->mem, v->vm.fd, m->bitmap, m->devices)) < 0)
		return errf(e, -ret, "cannot read KVM's dirty log: %s", strerror(-ret));
	for (size_t w = 0; w < words; w++) {
		if (m->carry)
			m->carry[w] |= m->bitmap[w];
		m->bitmap[w] = ~0ull;
	}
	if (total % 64)
		m->bitmap[words - 1] = (1ull << (total % 64)) - 1;
	skip_untouched(m);
	mig_set_phase(m, MIG_PHASE_PRECOPY);
	uint64_t last_fetch = now_ns(), fewest = UINT64_MAX, fit_bytes = 0;
	unsigned stalled = 0;
	for (;;) {
		uint64_t t0 = now_ns(), bytes = __atomic_load_n(&m->st.bytes, __ATOMIC_RELAXED);
		int64_t sent =
		        mig_send_pages(m->sock, &v->mem, m->bitmap, pace, &m->cancel, &m->st);
		if (sent < 0)
			return errf(e, (int)-sent, "sending memory failed: %s",
			            strerror((int)-sent));
		count_round(m, __atomic_load_n(&m->st.bytes, __ATOMIC_RELAXED) - bytes,
		            now_ns() - t0);

		memset(m->bitmap, 0, words * sizeof(uint64_t));
		if ((ret = gm_get_dirty_log(&v->mem, v->vm.fd, m->bitmap, m->devices)) < 0)
			return errf(e, -ret, "cannot read KVM's dirty log: %s", strerror(-ret));
		uint64_t now = now_ns(), dirty = popcount_map(m->bitmap, words);
		if (m->carry)
			for (size_t w = 0; w < words; w++)
				m->carry[w] |= m->bitmap[w];
		double speed = m->st.link_mib_s > 0 ? m->st.link_mib_s * (1 << 20) : 0;
		/* nothing left converges at once; pages left at an unknown speed do not */
		uint64_t expect_ms =
		        !dirty      ? 0
		        : speed > 0 ? (uint64_t)((double)dirty * GM_PAGE_SIZE / speed * 1e3)
		                    : UINT64_MAX / 2;
		pthread_mutex_lock(&m->lock);
		m->st.iteration++;
		m->st.remaining_pages = dirty;
		m->st.dirty_pages_per_s =
		        now > last_fetch ? dirty * 1000000000ull / (now - last_fetch) : 0;
		m->st.expected_downtime_ms = expect_ms + STATE_COST_MS;
		unsigned it = m->st.iteration;
		pthread_mutex_unlock(&m->lock);
		last_fetch = now;
		log_debug("round %u: %lld pages sent, %llu dirty, %.1f MiB/s, %llu ms expected", it,
		          (long long)sent, (unsigned long long)dirty, m->st.link_mib_s,
		          (unsigned long long)expect_ms);
		if (it > m->max_iterations)
			return 0;
		if (expect_ms + STATE_COST_MS <= m->max_downtime_ms) {
			/*
			 * It fits. More rounds still shorten the pause while they
			 * shrink (a busy guest slows under dirty logging, and a
			 * short round leaves it less time to dirty): the rounds go
			 * on until STALL_ROUNDS in a row fail to bring the dirty
			 * pages below 7/8 of the fewest seen, none are left, or
			 * they have sent as much as the rounds before (so the
			 * total time about doubles at most).
			 */
			uint64_t bytes_now = __atomic_load_n(&m->st.bytes, __ATOMIC_RELAXED);
			if (!fit_bytes)
				fit_bytes = bytes_now;
			if (bytes_now - fit_bytes >= fit_bytes)
				return 0;
			if (dirty && dirty <= fewest - fewest / 8) {
				fewest = dirty;
				stalled = 0;
			} else if (!dirty || ++stalled >= STALL_ROUNDS) {
				return 0;
			}
		}
	}
}

/* pause, last pages, state, READY; then GO and RUNNING */
static int complete(struct vmm_migration *m, struct mig_pacer *pace, struct errbuf *e)
{
	int ret;
	mig_set_phase(m, MIG_PHASE_STOPPED);
	if ((ret = mig_call(m, stop_vm, m, e)) < 0)
		return ret;
	pace->limit_bps = 0; /* the guest waits: no pacing now */
	int64_t sent = mig_send_pages(m->sock, &m->v->mem, m->bitmap, pace, &m->cancel, &m->st);
	if (sent < 0)
		return errf(e, (int)-sent, "sending memory failed: %s", strerror((int)-sent));
	pthread_mutex_lock(&m->lock);
	m->st.remaining_pages = 0;
	pthread_mutex_unlock(&m->lock);
	if ((ret = mig_send_frame(m->sock, MIG_STATE, 0, m->state.buf, m->state.len)) < 0)
		return errf(e, -ret, "sending the VM's state failed: %s", strerror(-ret));
	__atomic_fetch_add(&m->st.bytes, m->state.len + MIG_HEADER_SIZE, __ATOMIC_RELAXED);
	if ((ret = expect(m->sock, MIG_READY, "READY", e)) < 0)
		return ret;
	if (atomic_load(&m->cancel))
		return errf(e, ECANCELED, "cancelled");
	uint8_t resume = m->was_running;
	m->committed = true;
	if ((ret = mig_send_frame(m->sock, MIG_GO, 0, &resume, 1)) < 0)
		return errf(e, -ret, "sending GO failed: %s", strerror(-ret));
	return 1; /* from here the target may run the guest */
}

void *mig_send_thread(void *arg)
{
	struct vmm_migration *m = arg;
	struct errbuf e = {{0}};
	struct mig_pacer pace = {.limit_bps = m->limit_bps};
	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
	int ret;

	pthread_setname_np(pthread_self(), "kiln_mig_send");
	confine_thread(THREAD_MIGRATION);
	setsockopt(m->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ret = mig_send_frame(m->sock, MIG_HELLO, 0, m->hello.buf, m->hello.len);
	if (ret < 0)
		errf(&e, -ret, "sending the handshake failed: %s", strerror(-ret));
	else if ((ret = expect(m->sock, MIG_ACCEPT, "answer to the handshake", &e)) == 0 &&
	         (ret = precopy(m, &pace, &e)) == 0)
		ret = complete(m, &pace, &e);
	if (ret == 1) {
		ret = expect(m->sock, MIG_RUNNING, "RUNNING", &e);
		if (ret < 0) {
			/* GO went out: the target may run the guest. Never resume here. */
			log_err("migration to %s: %s after GO; the guest stays paused "
			        "here: resume "
			        "it only if the target does not run it",
			        m->st.peer, e.msg);
			mig_finish(m, MIG_PHASE_UNKNOWN, e.msg);
			atomic_store(&m->active, false);
			return NULL;
		}
		pthread_mutex_lock(&m->lock);
		m->st.downtime_ms = (now_ns() - m->pause_ns) / 1000000;
		pthread_mutex_unlock(&m->lock);
		mig_finish(m, MIG_PHASE_COMPLETED, NULL);
		struct errbuf e2;
		mig_call(m, hand_over, m, &e2);
		atomic_store(&m->active, false);
		return NULL;
	}
	bool cancelled = atomic_load(&m->cancel);
	if (!cancelled)
		mig_send_error(m->sock, "the source gave up: %s", e.msg);
	struct errbuf e2 = {{0}};
	if (mig_call(m, roll_back, m, &e2) < 0)
		log_err("migration to %s: cannot resume the guest: %s", m->st.peer, e2.msg);
	if (cancelled) {
		mig_finish(m, MIG_PHASE_CANCELLED, "cancelled");
		log_info("migration to %s cancelled; the guest runs here", m->st.peer);
	} else {
		mig_finish(m, MIG_PHASE_FAILED, e.msg);
		log_err("migration to %s failed: %s; the guest runs here", m->st.peer, e.msg);
	}
	atomic_store(&m->active, false);
	return NULL;
}
