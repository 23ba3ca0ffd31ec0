// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/snapshot.c: PUT /snapshot/create and PUT /snapshot/load on the
 * VMM thread. The file formats are in snapshot.h; the state of each
 * component comes from its own module (vm_save, serial_save,
 * virtio_mmio_save, ...), section by section.
 */
#define LOG_MODULE "snapshot"
#include "snapshot.h"
#include "vmm.h"

#include "virtio/blk.h"
#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONFIG_STATE_VERSION 1
#define LAYOUT_STATE_VERSION 1

/*
 * The "layout" section: where guest RAM and every virtio device sat. A
 * restore rebuilds both from the configuration and then checks them
 * against this, so a snapshot never lands on a machine shaped otherwise.
 */
void snap_write_layout(const struct vmm *v, struct state_writer *w)
{
	sw_begin(w, "layout", LAYOUT_STATE_VERSION);
	sw_u32(w, v->mem.nr_regions);
	for (unsigned i = 0; i < v->mem.nr_regions; i++) {
		sw_u64(w, v->mem.regions[i].gpa);
		sw_u64(w, v->mem.regions[i].size);
		sw_u64(w, v->mem.regions[i].offset);
	}
	sw_u32(w, v->nr_devs);
	for (unsigned i = 0; i < v->nr_devs; i++) {
		size_t n = strlen(v->devs[i].id);
		sw_u8(w, (uint8_t)v->devs[i].kind);
		sw_u8(w, (uint8_t)n);
		sw_bytes(w, v->devs[i].id, n);
		sw_u64(w, v->devs[i].base);
		sw_u32(w, v->devs[i].gsi);
	}
	sw_end(w);
}

int snap_check_layout(struct state_reader *r, uint16_t version, const struct vmm *v,
                      struct errbuf *e)
{
	if (sr_check_version("layout", version, 1, LAYOUT_STATE_VERSION) < 0)
		return errf(e, EINVAL, "layout section version %u is not supported", version);
	bool same = sr_u32(r) == v->mem.nr_regions;
	for (unsigned i = 0; same && i < v->mem.nr_regions; i++)
		same = sr_u64(r) == v->mem.regions[i].gpa && sr_u64(r) == v->mem.regions[i].size &&
		       sr_u64(r) == v->mem.regions[i].offset;
	if (!same || sr_error(r))
		return errf(e, EINVAL, "the snapshot's memory layout differs from the one rebuilt");
	same = sr_u32(r) == v->nr_devs;
	for (unsigned i = 0; same && i < v->nr_devs; i++) {
		char id[256];
		uint8_t kind = sr_u8(r), n = sr_u8(r);
		sr_bytes(r, id, n);
		id[n] = '\0';
		same = kind == (uint8_t)v->devs[i].kind && strcmp(id, v->devs[i].id) == 0 &&
		       sr_u64(r) == v->devs[i].base && sr_u32(r) == v->devs[i].gsi;
	}
	if (!same || sr_error(r))
		return errf(e, EINVAL,
		            "the snapshot's device layout differs from the one rebuilt "
		            "from its configuration");
	return 0;
}

/* ------------------------------------------------------------- create */

static void save_config(struct state_writer *w, const struct vm_config *c)
{
	json_t *j = cfg_to_json(c);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	sw_begin(w, "config", CONFIG_STATE_VERSION);
	size_t len = text ? strlen(text) : 0;
	sw_u32(w, (uint32_t)len);
	sw_bytes(w, text ? text : "", len);
	sw_end(w);
	if (!text && !w->err)
		w->err = -ENOMEM;
	free(text);
}

static int save_devices(struct vmm *v, struct state_writer *w, struct errbuf *e)
{
	int ret = serial_save(&v->serial, w, e);
	if (ret == 0)
		ret = i8042_save(&v->i8042, w, e);
	if (ret == 0 && v->opts.boot_timer)
		ret = boot_timer_save(&v->boot_timer, w, e);
	for (unsigned i = 0; ret == 0 && i < v->nr_devs; i++) {
		/* in-flight block requests complete before their queues are saved */
		if (v->devs[i].kind == VDEV_BLK && (ret = virtio_blk_drain(v->devs[i].impl)) < 0)
			return errf(e, -ret, "drive %s: cannot complete its in-flight requests: %s",
			            v->devs[i].id, strerror(-ret));
		if ((ret = virtio_mmio_save(v->devs[i].mmio, w)) < 0)
			return errf(e, -ret, "cannot save the state of %s", v->devs[i].id);
	}
	return ret;
}

static int write_memory(struct vmm *v, const struct snapshot_create_req *req, struct errbuf *e)
{
	uint64_t *dirty = NULL;
	int ret;

	if (v->cfg.machine.track_dirty_pages) {
		/* fetching the log also clears it: the next Diff starts from here */
		dirty = calloc(gm_dirty_bitmap_words(&v->mem), sizeof(uint64_t));
		if (!dirty)
			return errf(e, ENOMEM, "out of memory for the dirty bitmap");
		if ((ret = gm_get_dirty_log(&v->mem, v->vm.fd, dirty, NULL)) < 0) {
			free(dirty);
			return errf(e, -ret, "cannot read KVM's dirty log: %s", strerror(-ret));
		}
	}
	ret = snap_mem_write(&v->mem, req->mem_file_path,
	                     req->type == API_SNAPSHOT_DIFF ? dirty : NULL, e);
	free(dirty);
	return ret;
}

void snap_write_head(struct vmm *v, struct state_writer *w, enum snap_type type)
{
	struct snap_info info = {
	        .arch = SNAP_ARCH_X86_64,
	        .type = (uint8_t)type,
	        .mem_size = v->mem.ram_size,
	        .nr_vcpus = v->vm.nr_vcpus,
	};
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	info.created_unix_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	snap_host_cpu_model(info.cpu_model, sizeof(info.cpu_model));
	snprintf(info.kiln_version, sizeof(info.kiln_version), "%s", KILN_VERSION);
	snap_info_write(w, &info);
	save_config(w, &v->cfg);
}

int snap_write_body(struct vmm *v, struct state_writer *w, struct errbuf *e)
{
	snap_write_layout(v, w);
	int ret = vm_save(&v->vm, w, e);
	return ret < 0 ? ret : save_devices(v, w, e);
}

int vmm_snapshot_create(struct vmm *v, const struct snapshot_create_req *req, struct errbuf *e)
{
	struct state_writer w;
	bool diff = req->type == API_SNAPSHOT_DIFF;
	int ret;

	if (diff && !v->cfg.machine.track_dirty_pages)
		return errf(e, EINVAL,
		            "Diff snapshots need track_dirty_pages (machine-config, or "
		            "snapshot/load) set before the microVM started.");
	sw_init(&w);
	snap_write_head(v, &w, diff ? SNAP_DIFF : SNAP_FULL);
	if ((ret = snap_write_body(v, &w, e)) < 0)
		goto out;
	/* memory first: a state file on disk always has its memory file complete */
	if ((ret = write_memory(v, req, e)) < 0 ||
	    (ret = snap_file_write(req->snapshot_path, &w, e)) < 0)
		goto out;
	log_info("%s snapshot written to %s (memory %s)", diff ? "Diff" : "Full",
	         req->snapshot_path, req->mem_file_path);
out:
	sw_free(&w);
	return ret;
}

/* --------------------------------------------------------------- load */

static int load_config(struct state_reader *r, uint16_t version, struct vm_config *c,
                       struct errbuf *e)
{
	if (sr_check_version("config", version, 1, CONFIG_STATE_VERSION) < 0)
		return errf(e, EINVAL, "config section version %u is not supported", version);
	uint32_t len = sr_u32(r);
	if (sr_error(r) || len > sr_left(r))
		return errf(e, EINVAL, "the snapshot's config section is truncated");
	char *text = malloc((size_t)len + 1);
	if (!text)
		return errf(e, ENOMEM, "out of memory");
	sr_bytes(r, text, len);
	text[len] = '\0';
	struct errbuf pe;
	int ret = cfg_parse_document(text, len, c, &pe);
	free(text);
	if (ret < 0)
		return errf(e, -ret, "the snapshot's configuration is invalid: %s", pe.msg);
	return 0;
}

int snap_apply_overrides(struct vm_config *c, const struct snapshot_net_override *nets,
                         unsigned nr_nets, const char *vsock_uds_path, struct errbuf *e)
{
	for (unsigned i = 0; i < nr_nets; i++) {
		const char *id = nets[i].iface_id;
		unsigned n;
		for (n = 0; n < c->nr_nets; n++)
			if (strcmp(c->nets[n].iface_id, id) == 0)
				break;
		if (n == c->nr_nets)
			return errf(e, EINVAL,
			            "network_overrides: the snapshot has no network "
			            "interface %s",
			            id);
		char *name = strdup(nets[i].host_dev_name);
		if (!name)
			return errf(e, ENOMEM, "out of memory");
		free(c->nets[n].host_dev_name);
		c->nets[n].host_dev_name = name;
	}
	if (vsock_uds_path) {
		if (!c->vsock.set)
			return errf(e, EINVAL, "vsock_override: the snapshot has no vsock device");
		char *p = strdup(vsock_uds_path);
		if (!p)
			return errf(e, ENOMEM, "out of memory");
		free(c->vsock.uds_path);
		c->vsock.uds_path = p;
	}
	return 0;
}

/* which sections restore_sections took, so that an incomplete snapshot is refused */
struct sections_seen {
	bool layout, serial, i8042, boot_timer;
	uint64_t vm;            /* vm_section_bit() of each */
	bool dev[VMM_MAX_DEVS]; /* virtio_mmio_restore() ran */
};

/*
 * A "virtio-mmio." section and what follows it, into the first device not
 * restored yet whose section it is (virtio_mmio_state_match: kind and id;
 * sections of version 1 name the id alone, and devices sharing it across
 * kinds take them in the order they were saved, the order of v->devs,
 * which the layout section checked). `at` reads from its header.
 */
static int restore_device(struct vmm *v, const char *id, uint16_t ver, struct state_reader *at,
                          struct sections_seen *seen, struct errbuf *e)
{
	unsigned i;
	for (i = 0; i < v->nr_devs; i++)
		if (!seen->dev[i] && virtio_mmio_state_match(v->devs[i].mmio, id, ver))
			break;
	if (i == v->nr_devs)
		return errf(e, EINVAL,
		            "the snapshot has state %s for a device its configuration lacks (or "
		            "twice)",
		            id);
	seen->dev[i] = true;
	return virtio_mmio_restore(v->devs[i].mmio, at, e);
}

/* any other section; -ENOENT without a message for an id nobody owns */
static int restore_other(struct vmm *v, const char *id, uint16_t ver, struct state_reader *sub,
                         struct sections_seen *seen, struct errbuf *e)
{
	bool *once = strcmp(id, "layout") == 0              ? &seen->layout
	             : strcmp(id, SERIAL_STATE_ID) == 0     ? &seen->serial
	             : strcmp(id, I8042_STATE_ID) == 0      ? &seen->i8042
	             : strcmp(id, BOOT_TIMER_STATE_ID) == 0 ? &seen->boot_timer
	                                                    : NULL;
	uint64_t bit = once ? 0 : vm_section_bit(id);

	if ((once && *once) || (bit & seen->vm))
		return errf(e, EINVAL, "the snapshot's section %s appears twice", id);
	if (once)
		*once = true;
	seen->vm |= bit;
	if (once == &seen->layout)
		return snap_check_layout(sub, ver, v, e);
	if (once == &seen->serial)
		return serial_restore(&v->serial, sub, ver, e);
	if (once == &seen->i8042)
		return i8042_restore(&v->i8042, sub, ver, e);
	if (once == &seen->boot_timer)
		return v->opts.boot_timer ? boot_timer_restore(&v->boot_timer, sub, ver, e) : 0;
	return vm_restore_section(&v->vm, id, ver, sub, 0, e);
}

/*
 * Everything vmm_snapshot_create writes came: the layout, every vCPU and
 * the VM's own state, the serial port, the i8042 and every virtio device
 * (the boot timer is optional: it depends on this kiln's --boot-timer).
 */
static int check_complete(const struct vmm *v, const struct sections_seen *seen, struct errbuf *e)
{
	const char *missing = !seen->layout   ? "layout"
	                      : !seen->serial ? SERIAL_STATE_ID
	                      : !seen->i8042  ? I8042_STATE_ID
	                                      : NULL;
	if (missing)
		return errf(e, EINVAL, "the snapshot is incomplete: it has no %s section", missing);
	for (unsigned i = 0; i < v->nr_devs; i++)
		if (!seen->dev[i])
			return errf(e, EINVAL, "the snapshot is incomplete: it has no state for %s",
			            v->devs[i].id);
	return vm_restore_check(&v->vm, seen->vm, e);
}

int snap_restore_body(struct vmm *v, struct state_reader *r, struct errbuf *e)
{
	char id[STATE_ID_MAX + 1];
	uint16_t ver;
	struct state_reader sub;
	struct sections_seen seen = {0};

	for (;;) {
		struct state_reader at = *r; /* virtio-mmio reads its sections itself */
		int got = sr_next(r, id, &ver, &sub);
		if (got == 0)
			return check_complete(v, &seen, e);
		if (got < 0)
			return errf(e, EINVAL, "the snapshot's sections are malformed");
		int ret;
		if (strncmp(id, "virtio-mmio.", 12) == 0) {
			if ((ret = restore_device(v, id, ver, &at, &seen, e)) < 0)
				return ret;
			*r = at;
			continue;
		}
		ret = restore_other(v, id, ver, &sub, &seen, e);
		if (ret == -ENOENT)
			return errf(e, EINVAL, "the snapshot has an unknown section \"%s\"", id);
		if (ret < 0)
			return ret;
	}
}

int snap_read_head(struct state_reader *r, struct snap_info *info, struct vm_config *c,
                   struct errbuf *e)
{
	char id[STATE_ID_MAX + 1], host[80];
	uint16_t ver;
	struct state_reader sub;
	int ret;

	if (sr_next(r, id, &ver, &sub) != 1 || strcmp(id, "snapshot") != 0)
		return errf(e, EINVAL, "the snapshot does not start with its snapshot section");
	if ((ret = snap_info_read(&sub, ver, info, e)) < 0)
		return ret;
	if (info->arch != SNAP_ARCH_X86_64)
		return errf(e, EINVAL, "the snapshot is for another architecture (%u)", info->arch);
	snap_host_cpu_model(host, sizeof(host));
	if (strcmp(host, info->cpu_model) != 0)
		return errf(e, ENOTSUP, "the snapshot was taken on a \"%s\"; this host is a \"%s\"",
		            info->cpu_model, host);
	if (sr_next(r, id, &ver, &sub) != 1 || strcmp(id, "config") != 0)
		return errf(e, EINVAL, "the snapshot has no config section");
	if ((ret = load_config(&sub, ver, c, e)) < 0)
		return ret;
	if (MIB(c->machine.mem_size_mib) != info->mem_size ||
	    c->machine.vcpu_count != info->nr_vcpus)
		return errf(e, EINVAL, "the snapshot's configuration disagrees with its header");
	return 0;
}

int vmm_snapshot_load(struct vmm *v, const struct snapshot_load_req *req, struct errbuf *e)
{
	struct snap_info info;
	struct vm_config cfg;
	uint8_t *body = NULL;
	size_t len;
	struct state_reader r;
	int ret;

	vm_config_init(&cfg);
	if ((ret = snap_file_read(req->snapshot_path, &body, &len, e)) < 0)
		goto err_cfg;
	sr_init(&r, body, len);
	if ((ret = snap_read_head(&r, &info, &cfg, e)) < 0 ||
	    (ret = snap_apply_overrides(&cfg, req->net_overrides, req->nr_net_overrides,
	                                req->vsock_uds_path, e)) < 0)
		goto err_cfg;
	cfg.machine.track_dirty_pages = req->track_dirty_pages;

	/* the restored configuration replaces the (empty) one */
	vm_config_free(&v->cfg);
	v->cfg = cfg;
	vm_config_init(&cfg);
	/* the MMDS config comes back with the VM; its store's content does not (as Firecracker) */
	vmm_mmds_apply_config(v);
	struct vmm_build b = {
	        .backing =
	                req->backend_type == API_MEM_BACKEND_UFFD ? VMM_MEM_UFFD : VMM_MEM_SNAPSHOT,
	        .mem_path = req->backend_path,
	};
	if ((ret = vmm_build(v, &b, e)) < 0)
		goto err_vmm;
	if ((ret = snap_restore_body(v, &r, e)) < 0)
		goto err_vmm;
	free(body);
	if ((ret = vmm_start_paused(v, e)) < 0)
		goto err_vmm_nobody;
	log_info("snapshot %s loaded (%u vCPUs, %llu MiB)", req->snapshot_path, info.nr_vcpus,
	         (unsigned long long)(info.mem_size >> 20));
	if (req->resume_vm && (ret = vmm_resume(v, e)) < 0)
		return ret;
	return 0;

err_vmm:
	free(body);
err_vmm_nobody:
	/* nothing half loaded: back to a fresh, unconfigured kiln */
	vmm_unbuild(v);
	vm_config_free(&v->cfg);
	vm_config_init(&v->cfg);
	return ret;
err_cfg:
	free(body);
	vm_config_free(&cfg);
	return ret;
}
