// SPDX-License-Identifier: Apache-2.0
/* daemon/snapshot_file.c: the snapshot state file and memory file (see snapshot.h). */
#define LOG_MODULE "snapshot"
#include "snapshot.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_FILE_MAX  (64u << 20) /* a state file is small; refuse anything huge */
#define SNAP_HEAD_SIZE 12          /* magic + format version */
#define MEM_CHUNK      (1u << 20)

void snap_host_cpu_model(char *buf, size_t len)
{
	unsigned a, b, c, d;
	char vendor[13] = {0}, brand[49] = {0};

	__cpuid(0, a, b, c, d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	__cpuid(1, a, b, c, d);
	unsigned family = (a >> 8) & 0xf, model = (a >> 4) & 0xf, stepping = a & 0xf;
	if (family == 0xf)
		family += (a >> 20) & 0xff;
	if (family >= 6)
		model |= ((a >> 16) & 0xf) << 4;
	__cpuid(0x80000000, a, b, c, d);
	if (a >= 0x80000004) {
		for (unsigned i = 0; i < 3; i++)
			__cpuid(0x80000002 + i, *(unsigned *)&brand[i * 16],
			        *(unsigned *)&brand[i * 16 + 4], *(unsigned *)&brand[i * 16 + 8],
			        *(unsigned *)&brand[i * 16 + 12]);
	}
	char *p = brand;
	while (*p == ' ')
		p++;
	snprintf(buf, len, "%s %u/%u/%u %s", vendor, family, model, stepping, p);
}

static void sw_str(struct state_writer *w, const char *s)
{
	size_t n = strlen(s);
	sw_u8(w, (uint8_t)(n > 255 ? 255 : n));
	sw_bytes(w, s, n > 255 ? 255 : n);
}

static void sr_str(struct state_reader *r, char *buf, size_t size)
{
	uint8_t n = sr_u8(r);
	char tmp[256];
	sr_bytes(r, tmp, n);
	size_t keep = n < size - 1 ? n : size - 1;
	memcpy(buf, tmp, keep);
	buf[keep] = '\0';
}

void snap_info_write(struct state_writer *w, const struct snap_info *i)
{
	sw_begin(w, "snapshot", SNAP_INFO_VERSION);
	sw_u32(w, i->arch);
	sw_str(w, i->cpu_model);
	sw_str(w, i->kiln_version);
	sw_u8(w, i->type);
	sw_u64(w, i->mem_size);
	sw_u32(w, i->nr_vcpus);
	sw_u64(w, i->created_unix_ms);
	sw_end(w);
}

int snap_info_read(struct state_reader *r, uint16_t version, struct snap_info *i, struct errbuf *e)
{
	if (sr_check_version("snapshot", version, 1, SNAP_INFO_VERSION) < 0)
		return errf(e, EINVAL, "snapshot section version %u is not supported (1 to %u)",
		            version, SNAP_INFO_VERSION);
	memset(i, 0, sizeof(*i));
	i->arch = sr_u32(r);
	sr_str(r, i->cpu_model, sizeof(i->cpu_model));
	sr_str(r, i->kiln_version, sizeof(i->kiln_version));
	i->type = sr_u8(r);
	i->mem_size = sr_u64(r);
	i->nr_vcpus = sr_u32(r);
	i->created_unix_ms = sr_u64(r);
	if (sr_error(r))
		return errf(e, EINVAL, "the snapshot section is truncated");
	return 0;
}

int snap_file_write(const char *path, const struct state_writer *body, struct errbuf *e)
{
	uint8_t head[SNAP_HEAD_SIZE] = SNAP_MAGIC;
	uint32_t v = SNAP_FORMAT_VERSION;
	char tmp[4096];
	int ret;

	if (sw_error(body))
		return errf(e, -sw_error(body), "cannot build the snapshot state");
	for (int i = 0; i < 4; i++)
		head[8 + i] = (uint8_t)(v >> (8 * i));
	uint32_t crc = crc32_update(0, head, sizeof(head));
	crc = crc32_update(crc, body->buf, body->len);
	uint8_t tail[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
	                   (uint8_t)(crc >> 24)};

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp))
		return errf(e, ENAMETOOLONG, "snapshot path too long: %s", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return errf(e, errno, "cannot create the snapshot file next to %s: %s", path,
		            strerror(errno));
	if ((ret = write_all(fd, head, sizeof(head))) < 0 ||
	    (ret = write_all(fd, body->buf, body->len)) < 0 ||
	    (ret = write_all(fd, tail, sizeof(tail))) < 0 ||
	    (ret = fsync(fd) < 0 ? -errno : 0) < 0) {
		errf(e, -ret, "cannot write the snapshot file %s: %s", path, strerror(-ret));
		goto err;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) < 0) {
		ret = errf(e, errno, "cannot rename the snapshot into %s: %s", path,
		           strerror(errno));
		goto err;
	}
	return 0;
err:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return ret;
}

int snap_file_read(const char *path, uint8_t **body, size_t *len, struct errbuf *e)
{
	char *buf;
	size_t n;
	int ret = read_file(path, SNAP_FILE_MAX, &buf, &n, e);
	if (ret < 0)
		return ret;
	ret = -EINVAL;
	if (n < SNAP_HEAD_SIZE + 4 || memcmp(buf, SNAP_MAGIC, 8) != 0) {
		errf(e, EINVAL, "%s is not a kiln snapshot (no KILNSNAP header)", path);
		goto err;
	}
	uint32_t version = 0, stored = 0;
	for (int i = 0; i < 4; i++) {
		version |= (uint32_t)(uint8_t)buf[8 + i] << (8 * i);
		stored |= (uint32_t)(uint8_t)buf[n - 4 + i] << (8 * i);
	}
	if (version > SNAP_FORMAT_VERSION || version == 0) {
		errf(e, EINVAL,
		     "%s has snapshot format version %u; this kiln reads version 1 to %u", path,
		     version, SNAP_FORMAT_VERSION);
		goto err;
	}
	if (crc32_update(0, buf, n - 4) != stored) {
		errf(e, EINVAL, "%s is corrupted or truncated (checksum mismatch)", path);
		goto err;
	}
	n -= SNAP_HEAD_SIZE + 4;
	memmove(buf, buf + SNAP_HEAD_SIZE, n);
	*body = (uint8_t *)buf;
	*len = n;
	return 0;
err:
	free(buf);
	return ret;
}

/* writes `pages` pages from host offset `off`, skipping zero pages when `sparse` */
static int write_run(int fd, const struct guest_mem *gm, uint64_t off, uint64_t pages, bool sparse)
{
	while (pages) {
		uint64_t n = 0;
		/* a run of pages to write as one pwrite (up to MEM_CHUNK) */
		while (n < pages && n * GM_PAGE_SIZE < MEM_CHUNK &&
		       !(sparse && gm_page_is_zero(gm->base + off + n * GM_PAGE_SIZE)))
			n++;
		if (n) {
			const uint8_t *p = gm->base + off;
			size_t left = n * GM_PAGE_SIZE;
			off_t at = (off_t)off;
			while (left) {
				ssize_t w = pwrite(fd, p, left, at);
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					return w < 0 ? -errno : -EIO;
				p += w;
				at += w;
				left -= (size_t)w;
			}
		} else {
			n = 1; /* a zero page in a sparse file: leave the hole */
		}
		off += n * GM_PAGE_SIZE;
		pages -= n;
	}
	return 0;
}

int snap_mem_write(const struct guest_mem *gm, const char *path, const uint64_t *dirty,
                   struct errbuf *e)
{
	char tmp[4096];
	int ret = 0;

	/*
	 * A new file renamed into place, never the old one truncated: a VM
	 * restored from `path` (or a clone of it) maps it MAP_PRIVATE, and its
	 * pages not yet copied would read the truncated file's zeroes.
	 */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp))
		return errf(e, ENAMETOOLONG, "memory file path too long: %s", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return errf(e, errno, "cannot create the memory file next to %s: %s", path,
		            strerror(errno));
	if (ftruncate(fd, (off_t)gm->ram_size) < 0) {
		ret = errf(e, errno, "cannot size the memory file %s: %s", path, strerror(errno));
		goto err;
	}
	uint64_t pages = gm->ram_size / GM_PAGE_SIZE;
	if (!dirty) {
		ret = write_run(fd, gm, 0, pages, true);
	} else {
		for (uint64_t p = 0; p < pages && ret == 0;) {
			if (!(dirty[p / 64] & (1ull << (p % 64)))) {
				p++;
				continue;
			}
			uint64_t q = p;
			while (q < pages && (dirty[q / 64] & (1ull << (q % 64))))
				q++;
			ret = write_run(fd, gm, p * GM_PAGE_SIZE, q - p, false);
			p = q;
		}
	}
	if (ret < 0) {
		errf(e, -ret, "cannot write the memory file %s: %s", path, strerror(-ret));
		goto err;
	}
	if (fsync(fd) < 0) {
		ret = errf(e, errno, "cannot flush the memory file %s: %s", path, strerror(errno));
		goto err;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		ret = errf(e, errno, "cannot rename the memory file into %s: %s", path,
		           strerror(errno));
		unlink(tmp);
	}
	return ret;
err:
	close(fd);
	unlink(tmp);
	return ret;
}
