/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/fuzz/fz_snapshot.h: what the snapshot fuzz target (fuzz_snapshot.c)
 * and its seed writer (fz_snapshot_seeds.c) share.
 *
 * The target links daemon/snapshot.c and replaces daemon/vmm.c's
 * vmm_build(), vmm_unbuild(), vmm_start_paused() and vmm_resume() with a
 * machine built without KVM: anonymous guest RAM, the legacy devices on a
 * port bus, vCPUs whose fd is -1 (every KVM ioctl a restore reaches fails
 * with EBADF, after its section was parsed and checked), and virtio-blk
 * (over one scratch disk file) and virtio-rng devices on transports with
 * no hypervisor ops. Network interfaces and vsock are refused: they need a
 * tap device or a socket.
 */
#ifndef KILN_TESTS_FUZZ_FZ_SNAPSHOT_H
#define KILN_TESTS_FUZZ_FZ_SNAPSHOT_H

/*
 * A "snapshot" section whose CPU model is this string gets this host's
 * model instead before the file is loaded, so that the seeds pass the CPU
 * check on every host (any other model is loaded as it is).
 */
#define FZ_SNAP_ANY_HOST "host"

/* the scratch file every virtio-blk drive of the fake machine reads */
extern char fz_snap_disk[];

/*
 * Writes the seed state files into `dir` (an existing directory), each
 * built by the fake machine and the real save functions. 0 / -errno.
 */
int fz_snapshot_write_seeds(const char *dir);

#endif
