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
#define SERIAL_COM1_IRQ  4
#define SERIAL_FIFO_SIZE 64

/* raises or lowers the UART's interrupt line; called with the UART locked */
typedef void (*serial_irq_fn)(void *opaque, bool level);

struct serial {
	pthread_mutex_t lock;
	int out_fd; /* guest output goes here (stdout or a file) */
	serial_irq_fn irq;
	void *irq_opaque;
	/* 8250 registers (NS16550A subset) */
	uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm;
	uint8_t fcr;            /* FIFO control as written (enable + trigger bits) */
	bool thr_empty_pending; /* THRE interrupt owed to the guest */
	bool irq_level;         /* the line as last passed to irq() */
	uint8_t rx_fifo[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count;
	uint64_t tx_bytes;    /* for metrics */
	uint64_t tx_dropped;  /* bytes lost because writing out_fd failed */
	uint64_t first_tx_ns; /* when the guest wrote its first byte, 0 if not yet */
	/* output token bucket (serial_set_limit), one token per byte; off when size is 0 */
	struct {
		uint64_t size, refill_ns, tokens, burst, last_ns;
	} limit;
	uint64_t tx_limited; /* bytes dropped by the limit (Firecracker's
	                        uart.rate_limiter_dropped_bytes) */
};

/*
 * Initialises the UART; guest output is written to `out_fd` (not owned; -1
 * discards it), one write per byte, from the vCPU thread. `irq` (may be NULL)
 * raises COM1's line (GSI 4) on the irqchip; it is called on every change of
 * the line, and a write to THR that re-arms the THRE interrupt lowers and
 * raises it again so that an edge-triggered line sees a new edge. 0 / -errno.
 * A closed pipe as out_fd needs SIGPIPE ignored by the process.
 */
int serial_init(struct serial *s, int out_fd, serial_irq_fn irq, void *irq_opaque);
int serial_attach(struct serial *s, struct bus *pio); /* registers 0x3f8..0x3ff */

/*
 * Limits the guest's output to `size` bytes per `refill_ms` milliseconds,
 * plus `one_time_burst` bytes once (PUT /serial's rate_limiter, a
 * Firecracker TokenBucket); bytes past it are dropped and counted in
 * tx_limited. The bucket starts full. size or refill_ms 0: no limit. Call
 * after serial_init(), before the vCPUs run.
 */
void serial_set_limit(struct serial *s, uint64_t size, uint64_t one_time_burst, uint64_t refill_ms);

/*
 * Queues host input (stdin) for the guest; returns how many bytes fit in
 * the receive FIFO (the rest must be offered again later). Takes nothing
 * while the guest has the UART in loopback mode (its input is disconnected,
 * as on the real chip). Raises the data-ready interrupt when enabled. Any
 * thread.
 */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t len);

/* --------------------------------------------------------------- i8042 */

#define I8042_DATA_PORT    0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_KBD_IRQ      1

struct i8042;
/* called (from a vCPU thread) when the guest writes 0xFE to port 0x64 */
typedef void (*i8042_reset_fn)(void *opaque);

struct i8042 {
	pthread_mutex_t lock;
	i8042_reset_fn reset;
	void *reset_opaque;
	serial_irq_fn irq; /* keyboard interrupt (GSI 1), for Ctrl+Alt+Del */
	void *irq_opaque;
	uint8_t status, control, cmd; /* cmd: controller command awaiting its data byte, or 0 */
	uint8_t kbd_cmd;              /* keyboard command awaiting its parameter, or 0 */
	uint8_t outport;              /* output port (0xD0/0xD1); bit 0 low = CPU reset */
	bool irq_level;               /* the line as last passed to irq() */
	uint8_t outbuf[16];
	unsigned out_head, out_count;
};

/*
 * A PS/2 controller with a keyboard and no aux (mouse) port: the control
 * byte starts as 0x45 (keyboard interrupt, system flag, translation to scan
 * code set 1). `reset` is called without the controller's lock held, once per
 * reset request (0xFE, or any 0xF0-0xFF pulse of bit 0, or 0xD1 with bit 0
 * clear). `irq` (may be NULL) is called on every change of the keyboard line,
 * which is high while the output buffer holds data and the control byte
 * enables the interrupt. Linux probes the aux port with commands that time
 * out here (about 0.5 s); guests should boot with i8042.noaux, as
 * Firecracker's default command line does. 0 / -errno.
 */
int i8042_init(struct i8042 *k, i8042_reset_fn reset, void *reset_opaque, serial_irq_fn irq,
               void *irq_opaque);
int i8042_attach(struct i8042 *k, struct bus *pio); /* ports 0x60 and 0x64 */

/*
 * Puts the Ctrl+Alt+Del key sequence in the output buffer and raises the
 * keyboard interrupt, the way Firecracker's SendCtrlAltDel does: make codes
 * of Ctrl, Alt, Del, then break codes of Del, Alt, Ctrl, in scan code set 1
 * while the control byte asks for translation (the default), in set 2
 * otherwise. -ENOSPC (nothing queued) when the buffer lacks room. Any thread.
 */
int i8042_send_ctrl_alt_del(struct i8042 *k);

/* ---------------------------------------------------------- boot timer */

/*
 * Firecracker's boot-timer device: the guest writes the byte 123 to it once
 * it has booted, and kiln logs the time since the process started. kiln puts
 * it on the PIO bus at port BOOT_TIMER_PORT (Firecracker uses an MMIO page;
 * a port write is one exit either way and needs no page mapping in the guest).
 */
#define BOOT_TIMER_PORT  0x440
#define BOOT_TIMER_MAGIC 123

struct boot_timer {
	uint64_t start_ns; /* the process's start (kiln_start_ns) */
	uint64_t boot_ns;  /* 0 until the guest reported */
};

/*
 * Puts the device on `pio` at BOOT_TIMER_PORT. Sets start_ns to kiln_start_ns
 * unless the caller set it already. The first write of BOOT_TIMER_MAGIC
 * records boot_ns and logs "Guest-boot-time = N us M ms since start" at
 * INFO; other values and later writes are ignored; reads return 0. 0 / -errno.
 */
int boot_timer_attach(struct boot_timer *t, struct bus *pio);

/* ---------------------------------------------------------- saved state */

/*
 * Saved state of the legacy devices (devices/state.c), one common/state.h
 * section each, written field by field: "serial" (every UART register, the
 * THRE interrupt owed, the line level and the receive FIFO's bytes),
 * "i8042" (status, control byte, commands awaiting their data byte, output
 * port, line level and the output buffer's bytes) and "boot-timer" (whether
 * and when, after its process started, the guest reported its boot).
 * Save with the vCPUs paused. Restore into a device set up by *_init and
 * attached as for a fresh VM, after the VM's "irqchip" section (vcpu.h):
 * the restore re-drives the device's interrupt line through its callback so
 * that the irqchip and the device agree. A restore checks every value
 * before it changes the device; the host wiring (out_fd, callbacks) and the
 * metrics counters are not part of the state. 0 / -errno with a message.
 * VMM thread.
 */
#define SERIAL_STATE_ID          "serial"
#define SERIAL_STATE_VERSION     1
#define I8042_STATE_ID           "i8042"
#define I8042_STATE_VERSION      1
#define BOOT_TIMER_STATE_ID      "boot-timer"
#define BOOT_TIMER_STATE_VERSION 1

struct state_writer;
struct state_reader;

int serial_save(struct serial *s, struct state_writer *w, struct errbuf *e);
int serial_restore(struct serial *s, struct state_reader *r, uint16_t version, struct errbuf *e);
int i8042_save(struct i8042 *k, struct state_writer *w, struct errbuf *e);
int i8042_restore(struct i8042 *k, struct state_reader *r, uint16_t version, struct errbuf *e);
int boot_timer_save(struct boot_timer *t, struct state_writer *w, struct errbuf *e);
int boot_timer_restore(struct boot_timer *t, struct state_reader *r, uint16_t version,
                       struct errbuf *e);

#endif
