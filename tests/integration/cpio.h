/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/integration/cpio: writes a cpio archive in the "newc" format, the
 * one Linux unpacks as its initramfs (Documentation/driver-api/
 * early-userspace/buffer-format.rst), so that a test can give a real kernel
 * a tiny userspace without the cpio tool. Entries are built in memory and
 * written out at the end; all owned by root, mtime 0, one link each.
 *
 * Errors are sticky: after a failed call the later ones do nothing and
 * cpio_write() returns the first error, so a caller checks once.
 */
#ifndef KILN_TEST_CPIO_H
#define KILN_TEST_CPIO_H

#include <stddef.h>
#include <stdint.h>

struct cpio {
	uint8_t *buf; /* the archive so far */
	size_t len, cap;
	uint32_t next_ino;
	int err; /* the first -errno, 0 while all went well */
};

/* an empty archive; cpio_free() releases it */
void cpio_init(struct cpio *c);
void cpio_free(struct cpio *c);

/* a directory `name` ("dev", no leading slash) with permission bits `perm` */
void cpio_dir(struct cpio *c, const char *name, unsigned perm);

/* a regular file holding data[0 .. len) */
void cpio_file(struct cpio *c, const char *name, unsigned perm, const void *data, size_t len);

/* a regular file with the contents of the host file `host_path`; -errno sticks on failure */
void cpio_host_file(struct cpio *c, const char *name, unsigned perm, const char *host_path);

/* a character device node (the kernel mknods it while unpacking) */
void cpio_chardev(struct cpio *c, const char *name, unsigned perm, unsigned major, unsigned minor);

/* appends the TRAILER!!! entry and writes the archive to `path`: 0 or -errno */
int cpio_write(struct cpio *c, const char *path);

#endif
