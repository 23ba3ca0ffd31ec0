// SPDX-License-Identifier: Apache-2.0
/*
 * tests/linux/progs/kt-rng.c: kt-rng BYTES
 *
 * Says which hardware RNG Linux picked (/sys/class/misc/hw_random/
 * rng_current) and reads BYTES bytes from /dev/hwrng, timing the reads:
 *   kt-rng: current=virtio_rng.0
 *   kt-rng: took T ms
 *   kt-rng: read=BYTES done
 * and exits 0; a failed step is reported with errno's text, exit status 1
 * (2 for bad arguments). The device node is made if devtmpfs lacks it.
 */
#include "kt.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#define HWRNG_MINOR 183 /* misc device 10:183 */

static int fail(const char *step)
{
	kt_say("kt-rng: %s: %s", step, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	char *end, current[64] = "";
	unsigned long long want;

	errno = 0;
	if (argc != 2 || (want = strtoull(argv[1], &end, 10), errno || *end || !want)) {
		kt_say("usage: kt-rng BYTES");
		return 2;
	}
	int fd = open("/sys/class/misc/hw_random/rng_current", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("open rng_current");
	ssize_t n = read(fd, current, sizeof(current) - 1);
	close(fd);
	if (n < 0)
		return fail("read rng_current");
	current[n] = '\0';
	current[strcspn(current, "\n")] = '\0';
	kt_say("kt-rng: current=%s", current);

	if (access("/dev/hwrng", F_OK) != 0 &&
	    mknod("/dev/hwrng", S_IFCHR | 0600, makedev(10, HWRNG_MINOR)) != 0)
		return fail("mknod /dev/hwrng");
	fd = open("/dev/hwrng", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("open /dev/hwrng");
	uint8_t buf[4096];
	unsigned long long got = 0;
	uint64_t start = kt_now_ms();
	while (got < want) {
		size_t ask = want - got < sizeof(buf) ? (size_t)(want - got) : sizeof(buf);
		n = read(fd, buf, ask);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENODATA;
			return fail("read /dev/hwrng");
		}
		got += (unsigned long long)n;
	}
	close(fd);
	/* the time first: a reader waiting for the last line then has both whole */
	kt_say("kt-rng: took %llu ms", (unsigned long long)(kt_now_ms() - start));
	kt_say("kt-rng: read=%llu done", got);
	return 0;
}
