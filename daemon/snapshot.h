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

#endif
