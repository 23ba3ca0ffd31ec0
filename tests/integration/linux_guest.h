/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/integration/linux_guest.h: booting tests/linux's image (Debian's
 * cloud kernel, its initramfs and an ext4 root that runs one command, see
 * tests/linux/README.md) from an integration test, and reading what it
 * reports. Every function asserts (criterion) rather than returning an
 * error; a missing image skips the test.
 */
#ifndef KILN_TESTS_LINUX_GUEST_H
#define KILN_TESTS_LINUX_GUEST_H

#include "harness.h"

#include <stdbool.h>
#include <stddef.h>

/* tests/linux/cache/<name>; skips the test when absent (three results live at once) */
const char *lg_image(const char *name);

/*
 * Runs `cmd` with sh -c, /usr/sbin and /sbin added to PATH: what it wrote
 * to stdout (malloc'd, NUL after `*len` bytes; len may be NULL) and its
 * exit status in *status.
 */
char *lg_sh(const char *cmd, size_t *len, int *status);

/* a sparse copy of rootfs.ext4 at a new temporary path, written into path[64] */
const char *lg_copy_rootfs(char path[64]);

/*
 * Starts kiln (--no-api, Info level) on the vmlinux and initramfs, 1 vCPU,
 * with `root` as the root drive (read-only or not) and the image's /init
 * running `run_arg` (kiln.run=, commas for spaces). `drives` is more
 * drives after the root one and `extra` more of the configuration's
 * top-level members, each "" or starting with a comma; `flag` one more
 * argument of kiln's, or NULL.
 */
void lg_spawn(struct kproc *kp, unsigned mem_mib, const char *root, bool read_only,
              const char *run_arg, const char *drives, const char *extra, const char *flag);

/* lg_spawn() with the API on `sock` instead of --no-api (NULL: as lg_spawn) */
void lg_spawn_api(struct kproc *kp, unsigned mem_mib, const char *root, bool read_only,
                  const char *run_arg, const char *drives, const char *extra, const char *flag,
                  const char *sock);

/* kills kiln and removes the root copy at `path` (then emptied); safe to call twice */
void lg_cleanup(struct kproc *kp, char path[64]);

/* waits for `line` in kiln's output (`s` seconds, scaled in the test bed) */
void lg_expect_line(struct kproc *kp, const char *line, int s);

/*
 * The guest mounted its root `mode` ("rw" or "ro"), printed `report`, its
 * command exited `status`, and its reset ended kiln with status 0.
 */
void lg_expect_run(struct kproc *kp, const char *mode, const char *report, int status);

/*
 * kt-count's lines (tests/linux/progs/kt-count.c), "kt-count: N after D ms":
 * lg_last_count() is the N of the last complete one in `out` (0 when
 * none), and D in *gap when gap is non-NULL; lg_count_gap() is the D of
 * count n, ULONG_MAX when its line is not (completely) there.
 */
unsigned long lg_last_count(const char *out, unsigned long *gap);
unsigned long lg_count_gap(const char *out, unsigned long n);

#endif
