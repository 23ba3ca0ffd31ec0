// SPDX-License-Identifier: Apache-2.0
/*
 * devices/boot_timer.c: Firecracker's boot-timer device on a port. The guest
 * writes BOOT_TIMER_MAGIC once it has booted (Firecracker's test init does
 * so from userspace); kiln logs the time since the process started, in the
 * words of Firecracker's "Guest-boot-time = X us Y ms" line.
 */
#define LOG_MODULE "boot_timer"
#include "devices.h"

#include <errno.h>
#include <string.h>

static void boot_timer_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	memset(data, 0, len);
}

static void boot_timer_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct boot_timer *t = opaque;
	(void)offset;
	if (len != 1 || *(const uint8_t *)data != BOOT_TIMER_MAGIC)
		return;

	uint64_t now = now_ns();
	uint64_t zero = 0;
	/* vCPUs may race here: only the first magic write is recorded */
	if (!__atomic_compare_exchange_n(&t->boot_ns, &zero, now, false, __ATOMIC_RELAXED,
	                                 __ATOMIC_RELAXED))
		return;

	uint64_t us = now > t->start_ns ? (now - t->start_ns) / 1000 : 0;
	log_info("Guest-boot-time = %llu us %llu ms since start", (unsigned long long)us,
	         (unsigned long long)(us / 1000));
}

static const struct bus_dev_ops boot_timer_ops = {
        .read = boot_timer_read,
        .write = boot_timer_write,
};

int boot_timer_attach(struct boot_timer *t, struct bus *pio)
{
	if (!t || !pio)
		return -EINVAL;
	if (!t->start_ns)
		t->start_ns = kiln_start_ns;
	t->boot_ns = 0;
	return bus_register(pio, BOOT_TIMER_PORT, 1, &boot_timer_ops, t, "boot-timer");
}
