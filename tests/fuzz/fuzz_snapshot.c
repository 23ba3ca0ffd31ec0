// SPDX-License-Identifier: Apache-2.0
/*
 * tests/fuzz/fuzz_snapshot.c: libFuzzer target for the snapshot loader,
 * vmm_snapshot_load() of daemon/snapshot.c, on a state file made of the
 * input: the header, format version and checksum (snapshot_file.c), the
 * section reader (common/state.c), the "snapshot", "config" (the JSON
 * configuration parser) and "layout" sections, the dispatch of every other
 * section to its owner and the owners' restores: the UART, the i8042, the
 * boot timer, each virtio-mmio transport with its device (virtio-blk,
 * virtio-rng, their rate limiters), the vCPUs' sections and the VM's
 * irqchip, PIT and clock (parsed and checked up to the first KVM ioctl,
 * which fails: the machine has no KVM, see fz_snapshot.h), and the
 * teardown after every refusal.
 *
 * The input is a whole state file. Before it is loaded its last 4 bytes
 * are replaced by the checksum of the rest (random bytes would never pass
 * it) and a CPU model FZ_SNAP_ANY_HOST becomes this host's. Files live in
 * a temporary directory removed at exit. Every load must fail (there is no
 * KVM to finish it) and say why; anything it allocated must be freed.
 *
 * KILN_FUZZ_VERBOSE=1 prints why each load failed (to see how far a seed
 * gets). KILN_FUZZ_SNAPSHOT_SEEDS=DIR fuzz_snapshot writes the seeds into DIR and
 * exits (fz_snapshot_seeds.c); they are checked in under
 * tests/fuzz/corpus/snapshot/.
 */
#include "fz_snapshot.h"

#include "daemon/snapshot.h"
#include "daemon/vmm.h"
#include "virtio/blk.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAD_SIZE    12            /* "KILNSNAP" and the format version */
#define MAX_INPUT    (1u << 20)    /* -max_len keeps inputs far below this */
#define MAX_MEM_MIB  8192          /* RAM of the fake machine (never touched) */
#define DISK_SIZE    (1u << 20)    /* the scratch disk */
#define MODEL_ROOM   80            /* snap_host_cpu_model's buffer */
#define VIRTIO_BASE0 0xd0000000ull /* daemon/devices.c's layout */

static char dir[64], state_path[96];
char fz_snap_disk[96];
static uint8_t file[MAX_INPUT + MODEL_ROOM];
static struct vmm vmm;
static bool verbose; /* KILN_FUZZ_VERBOSE set: print why each load failed */

/* ----------------------------------------------------- the fake machine */

static void no_irq(void *opaque, bool level)
{
	(void)opaque, (void)level;
}

static void no_reset(void *opaque)
{
	(void)opaque;
}

/* a vCPU as vcpu_create leaves it, without a KVM fd */
static int add_vcpu(struct vm *vm, unsigned id)
{
	struct vcpu *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->vm = vm;
	c->id = id;
	c->fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	vm->vcpus[id] = c;
	vm->nr_vcpus = id + 1;
	return 0;
}

/* a virtio device of `kind` on the next window and line, as daemon/devices.c places them */
static int add_dev(struct vmm *v, enum vmm_dev_kind kind, const char *id, void *impl,
                   struct virtio_dev *dev, struct errbuf *e)
{
	struct vmm_dev *d = &v->devs[v->nr_devs];
	d->kind = kind;
	d->impl = impl;
	d->base = VIRTIO_BASE0 + (uint64_t)v->nr_devs * VIRTIO_MMIO_SIZE;
	d->gsi = VMM_VIRTIO_GSI0 + v->nr_devs;
	snprintf(d->id, sizeof(d->id), "%s", id);
	v->nr_devs++;
	struct virtio_mmio_params p = {.base = d->base, .gsi = d->gsi, .gm = &v->mem};
	int ret = virtio_mmio_create(&d->mmio, dev, &p, e);
	if (ret == 0 && (ret = virtio_mmio_attach(d->mmio, &v->vm.mmio)) < 0)
		return errf(e, -ret, "cannot place %s", id);
	return ret;
}

/* a device's two buckets as the configuration sets them (none: size 0) */
struct limits {
	struct rl_bucket_cfg bw, ops;
};

static struct limits limits_of(const struct rate_limiter_cfg *c)
{
	struct limits l = {{0}, {0}};
	const struct token_bucket_cfg *in[2] = {&c->bandwidth, &c->ops};
	struct rl_bucket_cfg *out[2] = {&l.bw, &l.ops};
	for (int i = 0; i < 2; i++)
		if (in[i]->set)
			*out[i] = (struct rl_bucket_cfg){.size = in[i]->size,
			                                 .one_time_burst = in[i]->one_time_burst,
			                                 .refill_time_ms = in[i]->refill_time_ms};
	return l;
}

static int add_devices(struct vmm *v, struct errbuf *e)
{
	const struct vm_config *c = &v->cfg;
	struct limits l;
	int ret;

	if (c->nr_nets || c->vsock.set)
		return errf(e, ENOTSUP, "fuzz: no network interfaces or vsock here");
	if (c->nr_drives + c->entropy.set > VMM_MAX_DEVS)
		return errf(e, ENOSPC, "too many virtio devices");
	for (unsigned i = 0; i < c->nr_drives; i++) {
		l = limits_of(&c->drives[i].rate_limiter);
		struct virtio_blk_params p = {.id = c->drives[i].drive_id,
		                              .path = fz_snap_disk,
		                              .read_only = c->drives[i].is_read_only,
		                              .writeback =
		                                      c->drives[i].cache_type == CACHE_WRITEBACK,
		                              .bw = &l.bw,
		                              .ops = &l.ops};
		struct virtio_blk *b;
		if ((ret = virtio_blk_create(&b, &p, e)) < 0)
			return ret;
		if ((ret = add_dev(v, VDEV_BLK, p.id, b, virtio_blk_dev(b), e)) < 0)
			return ret;
	}
	if (c->entropy.set) {
		struct virtio_rng *r;
		l = limits_of(&c->entropy.rate_limiter);
		if ((ret = virtio_rng_create(&r, "rng", &l.bw, &l.ops, NULL, e)) < 0 ||
		    (ret = add_dev(v, VDEV_RNG, "rng", r, virtio_rng_dev(r), e)) < 0)
			return ret;
	}
	return 0;
}

/*
 * vmm_build for daemon/snapshot.c: the machine v->cfg describes, without
 * KVM; the memory file b->mem_path is not opened (RAM is anonymous).
 */
int vmm_build(struct vmm *v, const struct vmm_build *b, struct errbuf *e)
{
	const struct machine_cfg *m = &v->cfg.machine;
	int ret;

	(void)b;
	if (m->mem_size_mib > MAX_MEM_MIB || m->vcpu_count == 0 || m->vcpu_count > VM_MAX_VCPUS)
		return errf(e, EINVAL, "fuzz: %llu MiB, %u vCPUs: too big",
		            (unsigned long long)m->mem_size_mib, m->vcpu_count);
	if ((ret = gm_init(&v->mem, MIB(m->mem_size_mib), GM_BACKING_ANON, NULL, e)) < 0)
		return ret;
	v->mem_init = true;
	v->vm.fd = -1;
	v->vm.mem = &v->mem;
	bus_init(&v->vm.pio, "pio");
	bus_init(&v->vm.mmio, "mmio");
	v->vm_created = true;
	if ((ret = serial_init(&v->serial, -1, no_irq, v)) < 0 ||
	    (ret = serial_attach(&v->serial, &v->vm.pio)) < 0 ||
	    (ret = i8042_init(&v->i8042, no_reset, v, no_irq, v)) < 0 ||
	    (ret = i8042_attach(&v->i8042, &v->vm.pio)) < 0 ||
	    (ret = boot_timer_attach(&v->boot_timer, &v->vm.pio)) < 0) {
		errf(e, -ret, "cannot attach the legacy devices");
		goto err;
	}
	for (unsigned i = 0; i < m->vcpu_count; i++)
		if ((ret = add_vcpu(&v->vm, i)) < 0) {
			errf(e, -ret, "out of memory");
			goto err;
		}
	if ((ret = add_devices(v, e)) < 0)
		goto err;
	return 0;
err:
	vmm_unbuild(v);
	return ret;
}

void vmm_unbuild(struct vmm *v)
{
	for (unsigned i = 0; i < v->nr_devs; i++)
		virtio_mmio_destroy(v->devs[i].mmio);
	for (unsigned i = 0; i < v->nr_devs; i++) {
		if (v->devs[i].kind == VDEV_BLK)
			virtio_blk_destroy(v->devs[i].impl);
		else
			virtio_rng_destroy(v->devs[i].impl);
	}
	v->nr_devs = 0;
	for (unsigned i = 0; i < v->vm.nr_vcpus; i++) {
		pthread_mutex_destroy(&v->vm.vcpus[i]->lock);
		pthread_cond_destroy(&v->vm.vcpus[i]->cond);
		free(v->vm.vcpus[i]);
	}
	if (v->vm_created) {
		bus_destroy(&v->vm.pio);
		bus_destroy(&v->vm.mmio);
	}
	if (v->mem_init)
		gm_destroy(&v->mem);
	memset(&v->vm, 0, sizeof(v->vm));
	v->mem_init = v->vm_created = false;
	memset(&v->serial, 0, sizeof(v->serial));
	memset(&v->i8042, 0, sizeof(v->i8042));
	memset(&v->boot_timer, 0, sizeof(v->boot_timer));
}

/* a load cannot get this far without KVM; if it does, the target says so */
int vmm_start_paused(struct vmm *v, struct errbuf *e)
{
	(void)v;
	(void)e;
	abort();
}

/* the MMDS store lives on the host and is never in a snapshot: nothing to apply here */
void vmm_mmds_apply_config(struct vmm *v)
{
	(void)v;
}

int vmm_resume(struct vmm *v, struct errbuf *e)
{
	(void)v;
	(void)e;
	abort();
}

/* ------------------------------------------------------------ the input */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Offset in `in` of the CPU model's length byte in a leading "snapshot"
 * section whose model is FZ_SNAP_ANY_HOST, or 0.
 */
static size_t any_host_model(const uint8_t *in, size_t n)
{
	const size_t len = sizeof(FZ_SNAP_ANY_HOST) - 1;
	struct state_reader r, s;
	char id[STATE_ID_MAX + 1];
	uint16_t version;

	if (n < HEAD_SIZE + 4)
		return 0;
	sr_init(&r, in + HEAD_SIZE, n - HEAD_SIZE - 4);
	if (sr_next(&r, id, &version, &s) != 1 || strcmp(id, "snapshot") != 0)
		return 0;
	sr_u32(&s); /* arch */
	if (sr_u8(&s) != len || sr_left(&s) < len || memcmp(s.buf + s.off, FZ_SNAP_ANY_HOST, len))
		return 0;
	return (size_t)(s.buf - in) + 4;
}

/* the state file to load for input `in` into `file`; returns its size */
static size_t prepare(const uint8_t *in, size_t n)
{
	size_t at = any_host_model(in, n), m = n;

	if (at) { /* the section's payload starts at at - 4, its length before that */
		char host[MODEL_ROOM];
		const size_t old = sizeof(FZ_SNAP_ANY_HOST) - 1;
		snap_host_cpu_model(host, sizeof(host));
		size_t len = strlen(host);
		uint32_t payload = (uint32_t)in[at - 8] | (uint32_t)in[at - 7] << 8 |
		                   (uint32_t)in[at - 6] << 16 | (uint32_t)in[at - 5] << 24;
		memcpy(file, in, at);
		file[at] = (uint8_t)len;
		memcpy(file + at + 1, host, len);
		memcpy(file + at + 1 + len, in + at + 1 + old, n - at - 1 - old);
		put_le32(file + at - 8, payload + (uint32_t)len - (uint32_t)old);
		m = n + len - old;
	} else {
		memcpy(file, in, n);
	}
	if (m >= HEAD_SIZE + 4)
		put_le32(file + m - 4, crc32_update(0, file, m - 4));
	return m;
}

static int write_state(const uint8_t *p, size_t n)
{
	int fd = open(state_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int ret = write_all(fd, p, n);
	close(fd);
	return ret;
}

/* ------------------------------------------------------------ libFuzzer */

static void remove_dir(void)
{
	unlink(state_path);
	unlink(fz_snap_disk);
	rmdir(dir);
}

static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/kiln-fuzz-snap-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	snprintf(state_path, sizeof(state_path), "%s/state", dir);
	snprintf(fz_snap_disk, sizeof(fz_snap_disk), "%s/disk", dir);
	int fd = open(fz_snap_disk, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
		abort();
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_configure(LOG_OFF, false, false, NULL);
	make_dir();
	verbose = getenv("KILN_FUZZ_VERBOSE") != NULL;
	const char *seeds = getenv("KILN_FUZZ_SNAPSHOT_SEEDS");
	if (seeds) {
		int ret = fz_snapshot_write_seeds(seeds);
		if (ret < 0)
			fprintf(stderr, "fuzz_snapshot: cannot write the seeds: %s\n",
			        strerror(-ret));
		exit(ret < 0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot_load_req req = {.snapshot_path = state_path,
	                                .backend_type = API_MEM_BACKEND_FILE,
	                                .backend_path = fz_snap_disk};
	struct errbuf e = {""};

	if (size > MAX_INPUT || write_state(file, prepare(data, size)) < 0)
		return 0;
	memset(&vmm, 0, sizeof(vmm));
	vm_config_init(&vmm.cfg);
	vmm.opts.boot_timer = true;
	int ret = vmm_snapshot_load(&vmm, &req, &e);
	if (ret == 0 || !e.msg[0])
		abort(); /* without KVM no load completes, and every refusal says why */
	if (verbose)
		fprintf(stderr, "fuzz_snapshot: %s\n", e.msg);
	vm_config_free(&vmm.cfg);
	return 0;
}
