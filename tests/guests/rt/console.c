// SPDX-License-Identifier: Apache-2.0
/*
 * krt console: the 16550 UART at COM1, polled. Each krt_printf() formats
 * into a buffer first (text.c) and writes it under one lock, so lines from
 * different CPUs do not interleave.
 */
#include "internal.h"

/* 16550 registers (National Semiconductor PC16550D datasheet) */
#define COM1             0x3f8
#define UART_THR         0 /* transmit holding (write) */
#define UART_DLL         0 /* divisor latch low (DLAB = 1) */
#define UART_IER         1
#define UART_DLM         1 /* divisor latch high (DLAB = 1) */
#define UART_FCR         2 /* FIFO control (write) */
#define UART_IIR         2 /* interrupt identification (read) */
#define UART_LCR         3
#define UART_MCR         4
#define UART_LSR         5
#define LCR_8N1          0x03
#define LCR_DLAB         0x80
#define FCR_FIFO         0x07 /* enable, clear both FIFOs */
#define MCR_DTR_RTS_OUT2 0x0b
#define LSR_THRE         0x20 /* transmit holding register empty */
#define IIR_FIFO_ON      0xc0 /* both bits: the FIFOs are enabled (16550A) */
#define UART_FIFO_SIZE   16
#define LSR_POLL_MAX     100000 /* a missing UART reads 0xff; a stuck one must not hang us */

static struct krt_spinlock console_lock = KRT_SPINLOCK_INIT;
static unsigned tx_burst = 1; /* bytes per "transmitter empty": the FIFO size when there is one */

void krt_console_init(void)
{
	krt_outb(COM1 + UART_IER, 0);
	krt_outb(COM1 + UART_LCR, LCR_DLAB);
	krt_outb(COM1 + UART_DLL, 1); /* 115200 = 1843200 / (16 * 1) */
	krt_outb(COM1 + UART_DLM, 0);
	krt_outb(COM1 + UART_LCR, LCR_8N1);
	krt_outb(COM1 + UART_FCR, FCR_FIFO);
	krt_outb(COM1 + UART_MCR, MCR_DTR_RTS_OUT2);
	if ((krt_inb(COM1 + UART_IIR) & IIR_FIFO_ON) == IIR_FIFO_ON)
		tx_burst = UART_FIFO_SIZE;
}

/*
 * Bytes as they are ("\n" stays "\n": programs read this, not terminals).
 * LSR bit 5 before each burst: with the FIFO on it means the whole transmit
 * FIFO is empty (PC16550D datasheet, LSR bit 5), so a burst of 16 bytes
 * fits. Every port access is a VM exit; a burst is one `rep outsb`, which
 * KVM hands to the VMM as one exit with count > 1.
 */
static void uart_write(const char *s)
{
	size_t left = strlen(s);

	while (left) {
		for (unsigned i = 0; i < LSR_POLL_MAX && !(krt_inb(COM1 + UART_LSR) & LSR_THRE);
		     i++)
			krt_pause();
		size_t n = left < tx_burst ? left : tx_burst;
		left -= n;
		__asm__ volatile("rep outsb"
		                 : "+S"(s), "+c"(n)
		                 : "d"((uint16_t)(COM1 + UART_THR))
		                 : "memory");
	}
}

void krt_console_raw(const char *s)
{
	uart_write(s);
}

void krt_putc(char c)
{
	char s[2] = {c, 0};
	krt_puts(s);
}

void krt_puts(const char *s)
{
	krt_spin_lock(&console_lock);
	uart_write(s);
	krt_spin_unlock(&console_lock);
}

int krt_vprintf(const char *fmt, va_list ap)
{
	char buf[1024];
	int n = krt_vsnprintf(buf, sizeof(buf), fmt, ap);
	krt_puts(buf);
	return n;
}

int krt_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = krt_vprintf(fmt, ap);
	va_end(ap);
	return n;
}
