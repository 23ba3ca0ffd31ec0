// SPDX-License-Identifier: Apache-2.0
/*
 * devices/state.c: saved state of the UART, the i8042 and the boot timer
 * (see "saved state" in devices.h).
 *
 * Version 1 payloads (little endian, field by field):
 *   serial:     ier iir lcr mcr lsr msr scr dll dlm fcr (u8 each),
 *               thr_empty_pending, irq_level (u8 0/1), u8 rx count, then
 *               that many bytes, oldest first
 *   i8042:      status control cmd kbd_cmd outport (u8 each), irq_level
 *               (u8 0/1), u8 output count, then that many bytes, oldest first
 *   boot-timer: u8 booted (0/1), u64 ns from its process's start to the
 *               guest's report (0 unless booted)
 * Register meanings: PC16550D datasheet "Register Summary"; IBM PC/AT
 * technical reference, "Keyboard Controller".
 */
#define LOG_MODULE "devices"
#include "common/state.h"
#include "devices.h"

#include <errno.h>
#include <string.h>

/* PC16550D: IER bits 4-7 and MCR bits 5-7 are always 0 */
#define SERIAL_IER_BITS 0x0f
#define SERIAL_MCR_BITS 0x1f
/* what serial.c keeps of FCR (enable, DMA mode, trigger level) and of LSR (OE, THRE, TEMT) */
#define SERIAL_FCR_BITS 0xc9
#define SERIAL_LSR_BITS 0x62

/* controller commands that wait for a data byte at 0x60: 0x60, 0xD1-0xD4 */
static const uint8_t i8042_data_cmds[] = {0x60, 0xd1, 0xd2, 0xd3, 0xd4};
/* keyboard commands that wait for a parameter: set LEDs, scan code set, typematic */
static const uint8_t i8042_kbd_param_cmds[] = {0xed, 0xf0, 0xf3};

/* "snapshot: section <id> has version V ..." unless 1 <= version <= max */
static int check_version(const char *id, uint16_t version, uint16_t max, struct errbuf *e)
{
	if (sr_check_version(id, version, 1, max) < 0)
		return errf(e, EINVAL,
		            "snapshot: section %s has version %u; this kiln reads versions 1 to %u",
		            id, version, max);
	return 0;
}

static int check_end(struct state_reader *r, const char *id, struct errbuf *e)
{
	if (sr_error(r))
		return errf(e, EINVAL, "snapshot: section %s is truncated", id);
	if (sr_left(r))
		return errf(e, EINVAL, "snapshot: section %s has %zu bytes too many", id,
		            sr_left(r));
	return 0;
}

static int finish_save(struct state_writer *w, const char *id, struct errbuf *e)
{
	int ret = sw_error(w);
	if (ret < 0)
		return errf(e, -ret, "cannot write the %s state: %s", id, strerror(-ret));
	return 0;
}

/* a ring buffer's bytes, oldest first, after their count */
static void put_ring(struct state_writer *w, const uint8_t *ring, unsigned size, unsigned head,
                     unsigned count)
{
	sw_u8(w, (uint8_t)count);
	for (unsigned i = 0; i < count; i++)
		sw_u8(w, ring[(head + i) % size]);
}

static bool in_list(uint8_t v, const uint8_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == v)
			return true;
	return false;
}

/* ------------------------------------------------------------------ UART */

/* the registers in wire order */
static uint8_t *serial_reg(struct serial *s, unsigned i)
{
	uint8_t *regs[] = {&s->ier, &s->iir, &s->lcr, &s->mcr, &s->lsr,
	                   &s->msr, &s->scr, &s->dll, &s->dlm, &s->fcr};
	return i < ARRAY_SIZE(regs) ? regs[i] : NULL;
}

int serial_save(struct serial *s, struct state_writer *w, struct errbuf *e)
{
	pthread_mutex_lock(&s->lock);
	sw_begin(w, SERIAL_STATE_ID, SERIAL_STATE_VERSION);
	for (unsigned i = 0; serial_reg(s, i); i++)
		sw_u8(w, *serial_reg(s, i));
	sw_u8(w, s->thr_empty_pending);
	sw_u8(w, s->irq_level);
	put_ring(w, s->rx_fifo, SERIAL_FIFO_SIZE, s->rx_head, s->rx_count);
	sw_end(w);
	pthread_mutex_unlock(&s->lock);
	return finish_save(w, SERIAL_STATE_ID, e);
}

int serial_restore(struct serial *s, struct state_reader *r, uint16_t version, struct errbuf *e)
{
	struct serial in; /* only its registers and FIFO are used */
	int ret;

	if ((ret = check_version(SERIAL_STATE_ID, version, SERIAL_STATE_VERSION, e)) < 0)
		return ret;
	memset(&in, 0, sizeof(in));
	for (unsigned i = 0; serial_reg(&in, i); i++)
		*serial_reg(&in, i) = sr_u8(r);
	uint8_t thre = sr_u8(r), level = sr_u8(r), count = sr_u8(r);
	if (!sr_error(r) && count > SERIAL_FIFO_SIZE)
		return errf(e, EINVAL, "snapshot: the UART's receive FIFO holds %u bytes, not %u",
		            count, SERIAL_FIFO_SIZE);
	sr_bytes(r, in.rx_fifo, count);
	if ((ret = check_end(r, SERIAL_STATE_ID, e)) < 0)
		return ret;
	if (thre > 1 || level > 1 || in.ier & ~SERIAL_IER_BITS || in.mcr & ~SERIAL_MCR_BITS ||
	    in.fcr & ~SERIAL_FCR_BITS || in.lsr & ~SERIAL_LSR_BITS)
		return errf(e, EINVAL,
		            "snapshot: UART values a guest cannot set: IER %#x, MCR %#x, FCR %#x, "
		            "LSR %#x, THRE pending %u, line %u",
		            in.ier, in.mcr, in.fcr, in.lsr, thre, level);

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; serial_reg(s, i); i++)
		*serial_reg(s, i) = *serial_reg(&in, i);
	memcpy(s->rx_fifo, in.rx_fifo, sizeof(s->rx_fifo));
	s->rx_head = 0;
	s->rx_count = count;
	s->thr_empty_pending = thre;
	s->irq_level = level;
	/* re-drive the line even when it seems unchanged: the irqchip's per-source level is new */
	if (s->irq)
		s->irq(s->irq_opaque, s->irq_level);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ----------------------------------------------------------------- i8042 */

int i8042_save(struct i8042 *k, struct state_writer *w, struct errbuf *e)
{
	pthread_mutex_lock(&k->lock);
	sw_begin(w, I8042_STATE_ID, I8042_STATE_VERSION);
	sw_u8(w, k->status);
	sw_u8(w, k->control);
	sw_u8(w, k->cmd);
	sw_u8(w, k->kbd_cmd);
	sw_u8(w, k->outport);
	sw_u8(w, k->irq_level);
	put_ring(w, k->outbuf, sizeof(k->outbuf), k->out_head, k->out_count);
	sw_end(w);
	pthread_mutex_unlock(&k->lock);
	return finish_save(w, I8042_STATE_ID, e);
}

int i8042_restore(struct i8042 *k, struct state_reader *r, uint16_t version, struct errbuf *e)
{
	uint8_t buf[sizeof(k->outbuf)];
	int ret;

	if ((ret = check_version(I8042_STATE_ID, version, I8042_STATE_VERSION, e)) < 0)
		return ret;
	uint8_t status = sr_u8(r), control = sr_u8(r), cmd = sr_u8(r), kbd_cmd = sr_u8(r);
	uint8_t outport = sr_u8(r), level = sr_u8(r), count = sr_u8(r);
	if (!sr_error(r) && count > sizeof(buf))
		return errf(e, EINVAL,
		            "snapshot: the i8042's output buffer holds %u bytes, not %zu", count,
		            sizeof(buf));
	sr_bytes(r, buf, count);
	if ((ret = check_end(r, I8042_STATE_ID, e)) < 0)
		return ret;
	if (level > 1 || (cmd && !in_list(cmd, i8042_data_cmds, sizeof(i8042_data_cmds))) ||
	    (kbd_cmd && !in_list(kbd_cmd, i8042_kbd_param_cmds, sizeof(i8042_kbd_param_cmds))))
		return errf(e, EINVAL,
		            "snapshot: i8042 values it cannot reach: pending command %#x, keyboard "
		            "command %#x, line %u",
		            cmd, kbd_cmd, level);

	pthread_mutex_lock(&k->lock);
	k->status = status;
	k->control = control;
	k->cmd = cmd;
	k->kbd_cmd = kbd_cmd;
	k->outport = outport;
	memcpy(k->outbuf, buf, count);
	k->out_head = 0;
	k->out_count = count;
	k->irq_level = level;
	if (k->irq)
		k->irq(k->irq_opaque, k->irq_level);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

/* ------------------------------------------------------------ boot timer */

/*
 * boot_ns is a CLOCK_MONOTONIC time of the process that saved it: what
 * travels is how long after that process's start the guest reported, and
 * the restored boot_ns keeps the device quiet about a second report.
 */
int boot_timer_save(struct boot_timer *t, struct state_writer *w, struct errbuf *e)
{
	uint64_t boot = __atomic_load_n(&t->boot_ns, __ATOMIC_RELAXED);

	sw_begin(w, BOOT_TIMER_STATE_ID, BOOT_TIMER_STATE_VERSION);
	sw_u8(w, boot != 0);
	sw_u64(w, boot > t->start_ns ? boot - t->start_ns : 0);
	sw_end(w);
	return finish_save(w, BOOT_TIMER_STATE_ID, e);
}

int boot_timer_restore(struct boot_timer *t, struct state_reader *r, uint16_t version,
                       struct errbuf *e)
{
	int ret;

	if ((ret = check_version(BOOT_TIMER_STATE_ID, version, BOOT_TIMER_STATE_VERSION, e)) < 0)
		return ret;
	uint8_t booted = sr_u8(r);
	uint64_t after = sr_u64(r);
	if ((ret = check_end(r, BOOT_TIMER_STATE_ID, e)) < 0)
		return ret;
	if (booted > 1 || (!booted && after))
		return errf(e, EINVAL, "snapshot: boot timer state %u/%llu is inconsistent", booted,
		            (unsigned long long)after);
	uint64_t boot = booted ? t->start_ns + after : 0;
	if (booted && boot == 0)
		boot = 1; /* 0 means "not yet" */
	__atomic_store_n(&t->boot_ns, boot, __ATOMIC_RELAXED);
	return 0;
}
