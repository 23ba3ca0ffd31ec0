// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/mig_recv.c: the target of a live migration. Its thread
 * ("kiln_mig_recv") accepts a source, checks its HELLO and has the VMM
 * thread build the machine from the source's configuration (this host's
 * overrides applied), writes the pages it receives straight into guest
 * memory, and has the VMM thread restore the state and resume. A stream
 * that is not a kiln migration, or one refused at the handshake, leaves the
 * target listening; a failure after it accepted ends this kiln with an
 * error, keeping nothing. See migration.h.
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

#define READ_TIMEOUT_S  120 /* between two frames of a running migration */
#define HELLO_TIMEOUT_S 10  /* from a connection to its HELLO */
#define HELLO_MAX       (1u << 20)

/* what the HELLO says, parsed on the thread, checked on the VMM thread */
struct hello {
	struct snap_info info;
	struct vm_config cfg;
	struct state_reader layout;
	uint16_t layout_ver;
	struct kvm_cpuid2 *cpuid;
	uint32_t nr_msrs;
	uint32_t *msrs;
};

static void hello_free(struct hello *h)
{
	vm_config_free(&h->cfg);
	free(h->cpuid);
	free(h->msrs);
}

static int read_cpu(struct state_reader *r, uint16_t ver, struct hello *h, struct errbuf *e)
{
	if (sr_check_version("cpu", ver, 1, 1) < 0)
		return errf(e, EINVAL, "cpu section version %u is not supported", ver);
	if (vcpu_state_read_cpuid(r, &h->cpuid, e) < 0)
		return -EINVAL;
	h->nr_msrs = sr_u32(r);
	if (sr_error(r) || h->nr_msrs > 4096 || (uint64_t)h->nr_msrs * 4 > sr_left(r))
		return errf(e, EINVAL, "the handshake's MSR list is malformed");
	h->msrs = calloc(h->nr_msrs ? h->nr_msrs : 1, sizeof(uint32_t));
	if (!h->msrs)
		return errf(e, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < h->nr_msrs; i++)
		h->msrs[i] = sr_u32(r);
	return sr_error(r) ? errf(e, EINVAL, "the handshake's cpu section is truncated") : 0;
}

/* drive_overrides: this host's path for each drive id */
static int apply_drive_overrides(struct vm_config *c, const struct migration_receive_req *q,
                                 struct errbuf *e)
{
	for (unsigned i = 0; i < q->nr_drive_overrides; i++) {
		const struct migration_drive_override *o = &q->drive_overrides[i];
		unsigned d;
		for (d = 0; d < c->nr_drives; d++)
			if (strcmp(c->drives[d].drive_id, o->drive_id) == 0)
				break;
		if (d == c->nr_drives)
			return errf(e, EINVAL, "drive_overrides: the source's VM has no drive %s",
			            o->drive_id);
		char *p = strdup(o->path_on_host);
		if (!p)
			return errf(e, ENOMEM, "out of memory");
		free(c->drives[d].path_on_host);
		c->drives[d].path_on_host = p;
	}
	return 0;
}

/* the HELLO payload in buf: magic, version, snapshot, config, layout, cpu */
static int parse_hello(struct vmm_migration *m, const uint8_t *buf, size_t len, struct hello *h,
                       struct errbuf *e)
{
	const struct migration_receive_req *q = m->rreq;
	struct state_reader r, sub;
	char id[STATE_ID_MAX + 1];
	uint16_t ver;
	int ret;

	if (len < 12 || memcmp(buf, MIG_MAGIC, 8) != 0)
		return errf(e, EPROTO, "not a kiln migration stream");
	uint32_t version = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
	                   (uint32_t)buf[11] << 24;
	if (version != MIG_PROTOCOL_VERSION)
		return errf(e, EPROTO, "migration protocol version %u; this kiln speaks version %u",
		            version, MIG_PROTOCOL_VERSION);
	sr_init(&r, buf + 12, len - 12);
	if ((ret = snap_read_head(&r, &h->info, &h->cfg, e)) < 0)
		return ret;
	if (strcmp(h->info.kiln_version, KILN_VERSION) != 0)
		log_info("the source runs kiln %s, this is kiln %s", h->info.kiln_version,
		         KILN_VERSION);
	if (sr_next(&r, id, &ver, &sub) != 1 || strcmp(id, "layout") != 0)
		return errf(e, EPROTO, "the handshake has no layout section");
	h->layout = sub;
	h->layout_ver = ver;
	if (sr_next(&r, id, &ver, &sub) != 1 || strcmp(id, "cpu") != 0)
		return errf(e, EPROTO, "the handshake has no cpu section");
	if ((ret = read_cpu(&sub, ver, h, e)) < 0)
		return ret;
	if ((ret = snap_apply_overrides(&h->cfg, q->net_overrides, q->nr_net_overrides,
	                                q->vsock_uds_path, e)) < 0 ||
	    (ret = apply_drive_overrides(&h->cfg, q, e)) < 0)
		return ret;
	return 0;
}

/* ------------------------------------------- on the VMM thread (mig_call) */

/* this host's vCPU against the source's: CPUID features and MSRs */
static int check_cpu(struct vmm *v, const struct hello *h, struct errbuf *e)
{
	struct kvm_cpuid2 *host = NULL;
	int ret = vcpu_get_cpuid(v->vm.vcpus[0], &host, e);
	if (ret < 0)
		return ret;
	ret = cpuid_check_compat(h->cpuid, host, "migration", e);
	free(host);
	if (ret < 0)
		return ret;
	struct kvm_msrs *list = vcpu_msr_list(v->vm.vcpus[0]);
	if (!list)
		return errf(e, ENOMEM, "out of memory");
	char missing[200] = "";
	size_t used = 0;
	unsigned n = 0;
	for (uint32_t i = 0; i < h->nr_msrs; i++) {
		if (vcpu_msr_listed(list, h->msrs[i]))
			continue;
		if (used < sizeof(missing))
			used += (size_t)snprintf(missing + used, sizeof(missing) - used, " %#x",
			                         h->msrs[i]);
		n++;
	}
	free(list);
	if (n)
		return errf(e, ENOTSUP, "this host's KVM lacks %u MSR%s the source's vCPUs have:%s",
		            n, n == 1 ? "" : "s", missing);
	return 0;
}

/* builds the machine the HELLO describes, or refuses it */
static int build_vm(struct vmm *v, void *arg, struct errbuf *e)
{
	struct vmm_migration *m = v->mig;
	struct hello *h = arg;
	const struct machine_cfg *want = &v->cfg.machine;
	int ret;

	if (m->machine_set && (want->mem_size_mib != h->cfg.machine.mem_size_mib ||
	                       want->vcpu_count != h->cfg.machine.vcpu_count))
		return errf(e, EINVAL,
		            "the source's VM has %u vCPUs and %llu MiB; this target was "
		            "configured for %u vCPUs and %llu MiB",
		            h->cfg.machine.vcpu_count,
		            (unsigned long long)h->cfg.machine.mem_size_mib, want->vcpu_count,
		            (unsigned long long)want->mem_size_mib);
	struct vm_config mine = v->cfg;
	v->cfg = h->cfg;
	struct vmm_build b = {.backing = VMM_MEM_ANON};
	struct state_reader layout = h->layout;
	if ((ret = vmm_build(v, &b, e)) == 0 &&
	    ((ret = snap_check_layout(&layout, h->layout_ver, v, e)) < 0 ||
	     (ret = check_cpu(v, h, e)) < 0))
		vmm_unbuild(v);
	if (ret < 0) {
		v->cfg = mine;
		return ret;
	}
	vm_config_free(&mine);
	vm_config_init(&h->cfg); /* v->cfg has it now */
	/* the MMDS config moves; the store's content does not */
	vmm_mmds_apply_config(v);
	m->built = true;
	return 0;
}

/* the VM's state into the built machine, started paused */
static int restore_vm(struct vmm *v, void *arg, struct errbuf *e)
{
	struct state_reader *r = arg;
	int ret = snap_restore_body(v, r, e);
	return ret < 0 ? ret : vmm_start_paused(v, e);
}

static int resume_vm(struct vmm *v, void *arg, struct errbuf *e)
{
	bool resume = *(bool *)arg;
	return resume ? vmm_resume(v, e) : 0;
}

/* a migration that failed after the handshake: nothing of it stays, kiln ends */
static int give_up(struct vmm *v, void *arg, struct errbuf *e)
{
	(void)e;
	vmm_migration_failed(v, arg);
	return 0;
}

/* --------------------------------------------------------------- thread */

static void count(struct vmm_migration *m, uint64_t bytes)
{
	pthread_mutex_lock(&m->lock);
	m->st.bytes += bytes;
	pthread_mutex_unlock(&m->lock);
}

/* HELLO in, ACCEPT or ERROR out; 0 once a VM is built for the source */
static int handshake(struct vmm_migration *m, struct errbuf *e)
{
	struct mig_header hd;
	struct hello h = {0};
	uint8_t *buf = NULL;
	int ret = mig_recv_header(m->sock, &hd);

	vm_config_init(&h.cfg);
	if (ret == 0 && (hd.type != MIG_HELLO || hd.length > HELLO_MAX)) {
		mig_send_error(m->sock, "not a kiln migration stream");
		ret = -EPROTO;
	}
	if (ret == -ETIMEDOUT)
		return errf(e, ETIMEDOUT, "no handshake within %d s", HELLO_TIMEOUT_S);
	if (ret < 0)
		return errf(e, -ret, "%s",
		            ret == -EPROTO ? "not a kiln migration stream" : strerror(-ret));
	if (!(buf = malloc(hd.length ? hd.length : 1)))
		return errf(e, ENOMEM, "out of memory");
	if ((ret = mig_read_all(m->sock, buf, hd.length)) < 0)
		errf(e, -ret, "the handshake is truncated: %s", strerror(-ret));
	else if ((ret = parse_hello(m, buf, hd.length, &h, e)) == 0)
		ret = mig_call(m, build_vm, &h, e);
	count(m, hd.length + MIG_HEADER_SIZE);
	free(buf);
	hello_free(&h);
	if (ret < 0) {
		mig_send_error(m->sock, "%s", e->msg);
		return ret;
	}
	return mig_send_frame(m->sock, MIG_ACCEPT, 0, NULL, 0);
}

/* after ACCEPT: pages, STATE, GO */
static int receive(struct vmm_migration *m, struct errbuf *e)
{
	for (;;) {
		struct mig_header h;
		int ret = mig_recv_header(m->sock, &h);
		if (ret < 0)
			return errf(e, -ret, "the stream from the source broke: %s",
			            ret == -ECONNRESET ? "it closed the connection"
			                               : strerror(-ret));
		if (h.type == MIG_PAGES) {
			uint64_t pages = 0, zeros = 0;
			ret = mig_recv_pages(m->sock, &h, &m->v->mem, &pages, &zeros, e);
			pthread_mutex_lock(&m->lock);
			m->st.pages += pages;
			m->st.zero_pages += zeros;
			m->st.bytes += h.length + MIG_HEADER_SIZE;
			pthread_mutex_unlock(&m->lock);
			if (ret < 0)
				return ret;
			continue;
		}
		if (h.type == MIG_ERROR || h.type != MIG_STATE) {
			char msg[400] = "";
			size_t n = h.length < sizeof(msg) - 1 ? (size_t)h.length : 0;
			if (h.type == MIG_ERROR && mig_read_all(m->sock, msg, n) == 0)
				msg[n] = '\0';
			return errf(e, EPROTO, "%s%s",
			            h.type == MIG_ERROR ? "" : "unexpected frame",
			            h.type == MIG_ERROR ? msg : "");
		}
		uint8_t *state = malloc(h.length ? h.length : 1);
		if (!state)
			return errf(e, ENOMEM, "out of memory for the VM's state");
		struct state_reader r;
		sr_init(&r, state, h.length);
		mig_set_phase(m, MIG_PHASE_STOPPED);
		if ((ret = mig_read_all(m->sock, state, h.length)) < 0)
			errf(e, -ret, "the VM's state is truncated: %s", strerror(-ret));
		else
			ret = mig_call(m, restore_vm, &r, e);
		free(state);
		count(m, h.length + MIG_HEADER_SIZE);
		if (ret < 0) {
			mig_send_error(m->sock, "%s", e->msg);
			return ret;
		}
		if ((ret = mig_send_frame(m->sock, MIG_READY, 0, NULL, 0)) < 0 ||
		    (ret = mig_recv_header(m->sock, &h)) < 0)
			return errf(e, -ret, "the source went away before GO: %s", strerror(-ret));
		uint8_t go = 0;
		if (h.type != MIG_GO || h.length != 1 || mig_read_all(m->sock, &go, 1) < 0)
			return errf(e, EPROTO, "the source did not send GO");
		bool resume = go != 0;
		if ((ret = mig_call(m, resume_vm, &resume, e)) < 0)
			return ret;
		(void)mig_send_frame(m->sock, MIG_RUNNING, 0, NULL, 0);
		return 0;
	}
}

void *mig_recv_thread(void *arg)
{
	struct vmm_migration *m = arg;
	struct timeval tv = {.tv_sec = READ_TIMEOUT_S}, tv_hello = {.tv_sec = HELLO_TIMEOUT_S};

	pthread_setname_np(pthread_self(), "kiln_mig_recv");
	confine_thread(THREAD_MIGRATION);
	for (;;) {
		struct errbuf e = {{0}};
		mig_set_phase(m, MIG_PHASE_LISTENING);
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			mig_finish(m,
			           atomic_load(&m->cancel) ? MIG_PHASE_CANCELLED : MIG_PHASE_FAILED,
			           atomic_load(&m->cancel) ? "cancelled" : strerror(errno));
			break;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv_hello, sizeof(tv_hello));
		m->sock = fd;
		m->start_ns = now_ns();
		mig_set_phase(m, MIG_PHASE_HANDSHAKE);
		if (handshake(m, &e) < 0) {
			/* refused: this target goes on listening for a source */
			log_warn("migration: a source was refused: %s", e.msg);
			pthread_mutex_lock(&m->lock);
			snprintf(m->st.error, sizeof(m->st.error), "%s", e.msg);
			m->st.bytes = 0;
			pthread_mutex_unlock(&m->lock);
			m->sock = -1;
			close(fd);
			if (atomic_load(&m->cancel))
				break;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		mig_set_phase(m, MIG_PHASE_PRECOPY);
		int ret = receive(m, &e);
		if (ret == 0) {
			mig_finish(m, MIG_PHASE_COMPLETED, NULL);
			pthread_mutex_lock(&m->lock);
			m->st.error[0] = '\0';
			pthread_mutex_unlock(&m->lock);
			log_info("migration received: the guest runs here (%llu MiB in %llu ms)",
			         (unsigned long long)(m->st.bytes >> 20),
			         (unsigned long long)m->st.total_ms);
		} else {
			mig_finish(m, MIG_PHASE_FAILED, e.msg);
			struct errbuf e2;
			mig_call(m, give_up, e.msg, &e2);
		}
		break;
	}
	atomic_store(&m->active, false);
	return NULL;
}
