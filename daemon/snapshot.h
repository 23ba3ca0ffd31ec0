/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/snapshot: kiln's snapshot files.
 *
 * The state file:
 *   "KILNSNAP"            8 bytes of magic
 *   u32 format version    SNAP_FORMAT_VERSION; a newer one is refused
 *   sections              common/state.h sections, in this order:
 *                         "snapshot" (what, where, when: SNAP_INFO_VERSION),
 *                         "config" (the VM's configuration as JSON),
 *                         then the VM, each vCPU and each device
 *   u32 crc32             of every byte before it
 * The memory file: all guest RAM as one image in host-mapping order (RAM
 * below the hole, then above 4 GiB), sparse where pages are zero (Full);
 * or, for Diff, only the pages dirtied since the previous snapshot, each at
 * its own offset, in a sparse file of the same size that can be laid over
 * its base (scripts/merge-snapshot-mem.py).
 */
#ifndef KILN_DAEMON_SNAPSHOT_H
#define KILN_DAEMON_SNAPSHOT_H

#include "common/common.h"
#include "common/state.h"
#include "api/config.h"
#include "memory/memory.h"

#define SNAP_MAGIC          "KILNSNAP"
#define SNAP_FORMAT_VERSION 1
#define SNAP_INFO_VERSION   1
#define SNAP_ARCH_X86_64    1

enum snap_type { SNAP_FULL = 0, SNAP_DIFF = 1 };

/* the "snapshot" section */
struct snap_info {
	uint32_t arch;
	char cpu_model[80]; /* vendor, family/model/stepping, brand (snap_host_cpu_model) */
	char kiln_version[32];
	uint8_t type;      /* enum snap_type */
	uint64_t mem_size; /* bytes of guest RAM */
	uint32_t nr_vcpus;
	uint64_t created_unix_ms;
};

/* this host's CPU as a snapshot names it */
void snap_host_cpu_model(char *buf, size_t len);

void snap_info_write(struct state_writer *w, const struct snap_info *i);
/* reads a "snapshot" section payload of `version`; -EINVAL with a message */
int snap_info_read(struct state_reader *r, uint16_t version, struct snap_info *i, struct errbuf *e);

/*
 * Writes magic, version, `body` (the sections) and the checksum to `path`,
 * through a temporary file renamed into place, so that a failed write
 * never leaves a half snapshot under the real name. 0 / -errno.
 */
int snap_file_write(const char *path, const struct state_writer *body, struct errbuf *e);

/*
 * Reads and checks a state file (magic, format version, checksum, size
 * limit) and returns its sections in a malloc'd buffer. 0 / -errno with a
 * message naming what is wrong.
 */
int snap_file_read(const char *path, uint8_t **body, size_t *len, struct errbuf *e);

/*
 * Writes guest RAM to `path` (a new file of gm->ram_size bytes renamed
 * into place: a VM restored from the old one keeps reading it):
 * Full: every non-zero page; Diff: exactly the pages set in `dirty` (one
 * bit per 4 KiB page of the host mapping), zero or not. 0 / -errno.
 */
int snap_mem_write(const struct guest_mem *gm, const char *path, const uint64_t *dirty,
                   struct errbuf *e);

/* ---------------------------------------- the parts migration shares */

struct vmm;
struct snapshot_net_override;

/* the "snapshot" and "config" sections of v (VMM thread) */
void snap_write_head(struct vmm *v, struct state_writer *w, enum snap_type type);
/* the "layout" section alone (where RAM and every device sit) */
void snap_write_layout(const struct vmm *v, struct state_writer *w);
/* "layout", the VM's sections and every device's (in-flight block requests
 * complete first); the vCPUs and devices are paused. 0 / -errno. */
int snap_write_body(struct vmm *v, struct state_writer *w, struct errbuf *e);
/* reads "snapshot" and "config" into info and c; checks architecture, CPU model
 * and that the two agree. 0 / -errno with a message. */
int snap_read_head(struct state_reader *r, struct snap_info *info, struct vm_config *c,
                   struct errbuf *e);
/* network and vsock overrides onto a configuration read from a snapshot or a source */
int snap_apply_overrides(struct vm_config *c, const struct snapshot_net_override *nets,
                         unsigned nr_nets, const char *vsock_uds_path, struct errbuf *e);
/* a "layout" payload against the machine v built. 0 / -EINVAL with a message */
int snap_check_layout(struct state_reader *r, uint16_t version, const struct vmm *v,
                      struct errbuf *e);
/* restores every section after the head into the built machine v, all of them
 * present exactly once. 0 / -errno with a message. VMM thread, vCPUs parked. */
int snap_restore_body(struct vmm *v, struct state_reader *r, struct errbuf *e);

#endif
