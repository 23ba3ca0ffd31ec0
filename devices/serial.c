// SPDX-License-Identifier: Apache-2.0
/*
 * devices/serial.c: an NS16550A UART on COM1, enough for Linux's 8250 driver
 * (including its autoconfig, loopback and THRE re-assertion tests) and for
 * early printk. Register layout and bits: National Semiconductor PC16550D
 * datasheet, table "Register Summary"; IIR priorities: table "Interrupt
 * Control Functions".
 *
 * Transmission is synchronous: a byte written to THR is written to out_fd
 * before the access returns, so the transmitter is always empty (LSR THRE
 * and TEMT always set). The receive side is a 64-byte FIFO fed by
 * serial_input(), used whether or not FCR enables the FIFOs; data-ready
 * raises the RDA interrupt at once (no trigger levels, no timeout id:
 * Linux's driver treats both ids alike). MSR delta bits are never set.
 */
#define LOG_MODULE "serial"
#include "devices.h"

#include <errno.h>
#include <string.h>

/* register offsets from the base */
#define UART_RBR 0 /* read, DLAB = 0 */
#define UART_THR 0 /* write, DLAB = 0 */
#define UART_DLL 0 /* DLAB = 1 */
#define UART_IER 1 /* DLAB = 0 */
#define UART_DLM 1 /* DLAB = 1 */
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* transmitter holding register empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_MASK  0x0f /* the upper bits read as 0 (Linux checks this) */

#define IIR_NO_INT    0x01
#define IIR_THRE      0x02
#define IIR_RDA       0x04
#define IIR_RLS       0x06
#define IIR_ID_MASK   0x0f
#define IIR_FIFO_BITS 0xc0 /* both set when FCR enables the FIFOs */

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_KEEP     0xc9 /* enable, DMA mode, trigger level */

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI  0x40
#define MSR_DCD 0x80

/* Firecracker's reset values: 8N1, 9600 baud (divisor 12), OUT2 set */
#define DEFAULT_LCR     0x03
#define DEFAULT_MCR     MCR_OUT2
#define DEFAULT_MSR     (MSR_DCD | MSR_DSR | MSR_CTS)
#define DEFAULT_DIVISOR 12

/* Highest-priority pending interrupt id: RLS, then RDA, then THRE. */
static uint8_t pending_id(const struct serial *s)
{
	if ((s->ier & IER_ELSI) && (s->lsr & LSR_OE))
		return IIR_RLS;
	if ((s->ier & IER_ERBFI) && s->rx_count)
		return IIR_RDA;
	if ((s->ier & IER_ETBEI) && s->thr_empty_pending)
		return IIR_THRE;
	return IIR_NO_INT;
}

/* Recomputes IIR and tells the irqchip when the line changes. Locked. */
static void update_irq(struct serial *s)
{
	uint8_t id = pending_id(s);
	s->iir = id | ((s->fcr & FCR_ENABLE) ? IIR_FIFO_BITS : 0);
	bool level = id != IIR_NO_INT;
	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->irq)
			s->irq(s->irq_opaque, level);
	}
}

static void rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/* Appends one byte to the receive FIFO; false when it is full. */
static bool rx_push(struct serial *s, uint8_t byte)
{
	if (s->rx_count == SERIAL_FIFO_SIZE)
		return false;
	s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = byte;
	s->rx_count++;
	return true;
}

static uint8_t rx_pop(struct serial *s)
{
	if (!s->rx_count)
		return 0;
	uint8_t byte = s->rx_fifo[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
	s->rx_count--;
	return byte;
}

void serial_set_limit(struct serial *s, uint64_t size, uint64_t one_time_burst, uint64_t refill_ms)
{
	bool on = size && refill_ms;
	s->limit.size = on ? size : 0;
	s->limit.refill_ns = on ? refill_ms * 1000000u : 0;
	s->limit.tokens = s->limit.size;
	s->limit.burst = on ? one_time_burst : 0;
	s->limit.last_ns = now_ns();
}

/* one byte's token: the burst first, then the bucket refilled for the time gone by */
static bool take_token(struct serial *s)
{
	if (s->limit.burst) {
		s->limit.burst--;
		return true;
	}
	uint64_t now = now_ns(), gone = now - s->limit.last_ns;
	if (gone >= s->limit.refill_ns) {
		s->limit.tokens = s->limit.size;
		s->limit.last_ns = now;
	} else {
		uint64_t add =
		        (uint64_t)((unsigned __int128)gone * s->limit.size / s->limit.refill_ns);
		if (add) {
			s->limit.tokens = s->limit.tokens + add < s->limit.size
			                          ? s->limit.tokens + add
			                          : s->limit.size;
			/* keep the fraction of a token not yet earned */
			s->limit.last_ns += (uint64_t)((unsigned __int128)add * s->limit.refill_ns /
			                               s->limit.size);
		}
	}
	if (!s->limit.tokens)
		return false;
	s->limit.tokens--;
	return true;
}

static void transmit(struct serial *s, uint8_t byte)
{
	if (!s->first_tx_ns)
		s->first_tx_ns = now_ns();
	if (s->limit.size && !take_token(s)) {
		s->tx_limited++;
		return;
	}
	int ret = s->out_fd < 0 ? 0 : write_all(s->out_fd, &byte, 1);
	if (ret < 0) {
		if (s->tx_dropped++ == 0)
			log_warn("writing guest serial output failed: %s; dropping it",
			         strerror(-ret));
		return;
	}
	s->tx_bytes++;
}

/* A write to THR: clears the THRE interrupt, sends, and re-arms it. */
static void write_thr(struct serial *s, uint8_t byte)
{
	s->thr_empty_pending = false;
	update_irq(s);
	if (s->mcr & MCR_LOOP) {
		/* loopback: the transmitter feeds the receiver directly */
		if (!rx_push(s, byte))
			s->lsr |= LSR_OE;
	} else {
		transmit(s, byte);
	}
	/* the byte left at once: the holding register is empty again */
	s->thr_empty_pending = true;
	update_irq(s);
}

static void write_ier(struct serial *s, uint8_t val)
{
	uint8_t old = s->ier;
	s->ier = val & IER_MASK;
	/* enabling ETBEI with an empty transmitter raises THRE (Linux tests this) */
	if ((s->ier & IER_ETBEI) && !(old & IER_ETBEI))
		s->thr_empty_pending = true;
	update_irq(s);
}

static void write_fcr(struct serial *s, uint8_t val)
{
	/* changing the enable bit clears both FIFOs; the other bits need it set */
	if ((val ^ s->fcr) & FCR_ENABLE || (val & FCR_CLEAR_RX))
		rx_clear(s);
	s->fcr = (val & FCR_ENABLE) ? (val & FCR_KEEP) : 0;
	update_irq(s);
}

/* MSR in loopback: the modem outputs are wired back to the inputs */
static uint8_t loopback_msr(const struct serial *s)
{
	uint8_t msr = 0;
	if (s->mcr & MCR_RTS)
		msr |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		msr |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		msr |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		msr |= MSR_DCD;
	return msr;
}

static uint8_t serial_read_reg(struct serial *s, uint64_t reg)
{
	uint8_t val;
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR:
		if (dlab)
			return s->dll;
		val = rx_pop(s);
		update_irq(s);
		return val;
	case UART_IER:
		return dlab ? s->dlm : s->ier;
	case UART_IIR:
		val = s->iir;
		/* reading IIR when it reports THRE is what clears that interrupt */
		if ((val & IIR_ID_MASK) == IIR_THRE) {
			s->thr_empty_pending = false;
			update_irq(s);
		}
		return val;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		val = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0) | (s->lsr & LSR_OE);
		/* error bits clear on read */
		if (s->lsr & LSR_OE) {
			s->lsr &= (uint8_t)~LSR_OE;
			update_irq(s);
		}
		return val;
	case UART_MSR:
		return (s->mcr & MCR_LOOP) ? loopback_msr(s) : s->msr;
	default: /* UART_SCR */
		return s->scr;
	}
}

static void serial_write_reg(struct serial *s, uint64_t reg, uint8_t val)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case UART_THR:
		if (dlab)
			s->dll = val;
		else
			write_thr(s, val);
		break;
	case UART_IER:
		if (dlab)
			s->dlm = val;
		else
			write_ier(s, val);
		break;
	case UART_FCR:
		write_fcr(s, val);
		break;
	case UART_LCR:
		s->lcr = val;
		break;
	case UART_MCR:
		s->mcr = val & MCR_MASK;
		break;
	case UART_SCR:
		s->scr = val;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

/* The UART is an 8-bit device: wider accesses are ignored (reads see 0xff). */
static void serial_bus_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	struct serial *s = opaque;
	if (len != 1)
		return;
	pthread_mutex_lock(&s->lock);
	*(uint8_t *)data = serial_read_reg(s, offset);
	pthread_mutex_unlock(&s->lock);
}

static void serial_bus_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	struct serial *s = opaque;
	if (len != 1)
		return;
	pthread_mutex_lock(&s->lock);
	serial_write_reg(s, offset, *(const uint8_t *)data);
	pthread_mutex_unlock(&s->lock);
}

static const struct bus_dev_ops serial_ops = {
        .read = serial_bus_read,
        .write = serial_bus_write,
};

int serial_init(struct serial *s, int out_fd, serial_irq_fn irq, void *irq_opaque)
{
	if (!s)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	int ret = pthread_mutex_init(&s->lock, NULL);
	if (ret)
		return -ret;
	s->out_fd = out_fd;
	s->irq = irq;
	s->irq_opaque = irq_opaque;
	s->iir = IIR_NO_INT;
	s->lcr = DEFAULT_LCR;
	s->mcr = DEFAULT_MCR;
	s->msr = DEFAULT_MSR;
	s->lsr = LSR_THRE | LSR_TEMT;
	s->dll = DEFAULT_DIVISOR;
	return 0;
}

int serial_attach(struct serial *s, struct bus *pio)
{
	if (!s || !pio)
		return -EINVAL;
	return bus_register(pio, SERIAL_COM1_BASE, 8, &serial_ops, s, "serial");
}

size_t serial_input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	if (!(s->mcr & MCR_LOOP)) {
		while (n < len && rx_push(s, buf[n]))
			n++;
		if (n)
			update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}
