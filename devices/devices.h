/* SPDX-License-Identifier: Apache-2.0 */
/*
 * devices: the legacy x86 devices a microVM needs -- the 8250 UART on COM1,
 * enough of the i8042 for the guest's reset, and Firecracker's boot-timer
 * port. Each registers itself on the PIO bus; bus callbacks run on vCPU
 * threads, so each device locks its own state.
 */
#ifndef KILN_DEVICES_H
#define KILN_DEVICES_H

#include "common/common.h"
#include "memory/memory.h"

#include <pthread.h>

/* -------------------------------------------------------------- 8250 UART */

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ	 4
#define SERIAL_FIFO_SIZE 64

/* raises or lowers the UART's interrupt line; called with the UART locked */
typedef void (*serial_irq_fn)(void *opaque, bool level);

struct serial {
	pthread_mutex_t lock;
	int out_fd;			/* guest output goes here (stdout or a file) */
	serial_irq_fn irq;
	void *irq_opaque;
	/* 8250 registers (NS16550A subset) */
	uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm;
	bool thr_empty_pending;		/* THRE interrupt owed to the guest */
	uint8_t rx_fifo[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count;
	uint64_t tx_bytes;		/* for metrics */
	uint64_t first_tx_ns;		/* when the guest wrote its first byte, 0 if not yet */
};

/*
 * Initialises the UART; guest output is written to `out_fd` (not owned).
 * `irq` raises COM1's line (GSI 4) on the irqchip. 0 / -errno.
 */
int serial_init(struct serial *s, int out_fd, serial_irq_fn irq, void *irq_opaque);
int serial_attach(struct serial *s, struct bus *pio); /* registers 0x3f8..0x3ff */

/*
 * Queues host input (stdin) for the guest; returns how many bytes fit in
 * the receive FIFO (the rest must be offered again later). Raises the
 * data-ready interrupt when enabled. Any thread.
 */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t len);

/* --------------------------------------------------------------- i8042 */

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_KBD_IRQ	   1

struct i8042;
/* called (from a vCPU thread) when the guest writes 0xFE to port 0x64 */
typedef void (*i8042_reset_fn)(void *opaque);

struct i8042 {
	pthread_mutex_t lock;
	i8042_reset_fn reset;
	void *reset_opaque;
	serial_irq_fn irq;		/* keyboard interrupt (GSI 1), for Ctrl+Alt+Del */
	void *irq_opaque;
	uint8_t status, control, cmd;
	uint8_t outbuf[16];
	unsigned out_head, out_count;
};

int i8042_init(struct i8042 *k, i8042_reset_fn reset, void *reset_opaque, serial_irq_fn irq,
	       void *irq_opaque);
int i8042_attach(struct i8042 *k, struct bus *pio); /* ports 0x60 and 0x64 */

/*
 * Puts the Ctrl+Alt+Del key sequence in the output buffer and raises the
 * keyboard interrupt, the way Firecracker's SendCtrlAltDel does. -ENOSPC
 * when the buffer is full. Any thread.
 */
int i8042_send_ctrl_alt_del(struct i8042 *k);

/* ---------------------------------------------------------- boot timer */

/*
 * Firecracker's boot-timer device: the guest writes the byte 123 to it once
 * it has booted, and kiln logs the time since the process started. kiln puts
 * it on the PIO bus at port BOOT_TIMER_PORT (Firecracker uses an MMIO page;
 * a port write is one exit either way and needs no page mapping in the guest).
 */
#define BOOT_TIMER_PORT	 0x440
#define BOOT_TIMER_MAGIC 123

struct boot_timer {
	uint64_t start_ns;	/* the process's start (kiln_start_ns) */
	uint64_t boot_ns;	/* 0 until the guest reported */
};

int boot_timer_attach(struct boot_timer *t, struct bus *pio);

#endif
