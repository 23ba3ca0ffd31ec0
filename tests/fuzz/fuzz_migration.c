// SPDX-License-Identifier: Apache-2.0
/*
 * tests/fuzz/fuzz_migration.c: the migration target's reading of a
 * source's stream (daemon/mig_wire.c), with real parts: the input goes
 * into one end of a unix socket pair and the frames are read from the
 * other into a real guest memory (gm_init, anonymous, 4 MiB), PAGES frames
 * through mig_recv_pages as the target does, every other frame's payload
 * read and dropped. (Addresses are the API's to check: fuzz_router; the
 * HELLO's sections are snapshot sections: fuzz_snapshot.)
 *
 * Checked besides the sanitizers: a PAGES frame that is accepted wrote
 * exactly its count of pages, and no frame is accepted with a length over
 * MIG_FRAME_MAX or a type outside the protocol.
 */
#include "daemon/migration.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RAM       (4u << 20)
#define SKIP_BUF  65536
#define MAX_INPUT 65536 /* fits the socket buffer: written whole before reading */

static struct guest_mem gm;

static void setup(void)
{
	static int done;
	if (done)
		return;
	struct errbuf e;
	if (gm_init(&gm, RAM, GM_BACKING_ANON, NULL, &e) < 0) {
		fprintf(stderr, "fuzz_migration: gm_init: %s\n", e.msg);
		abort();
	}
	done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size > MAX_INPUT)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	int buf = 4 * MAX_INPUT;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	for (size_t off = 0; off < size;) {
		ssize_t w = write(sv[0], data + off, size - off);
		if (w <= 0)
			abort(); /* the buffer was made to hold all of it */
		off += (size_t)w;
	}
	close(sv[0]); /* the reader sees the end of the stream after the input */

	static uint8_t skip[SKIP_BUF];
	for (;;) {
		struct mig_header h;
		if (mig_recv_header(sv[1], &h) < 0)
			break;
		if (h.type < MIG_HELLO || h.type > MIG_ERROR || h.length > MIG_FRAME_MAX)
			abort(); /* mig_recv_header must refuse these */
		if (h.type == MIG_PAGES) {
			uint64_t pages = 0, zeros = 0;
			struct errbuf e;
			int ret = mig_recv_pages(sv[1], &h, &gm, &pages, &zeros, &e);
			if (ret < 0)
				break; /* the target gives up on the stream */
			if (pages != h.count || zeros > pages)
				abort();
			continue;
		}
		uint64_t left = h.length;
		while (left) {
			size_t n = left < SKIP_BUF ? (size_t)left : SKIP_BUF;
			if (mig_read_all(sv[1], skip, n) < 0)
				goto out;
			left -= n;
		}
	}
out:
	close(sv[1]);
	return 0;
}
