// SPDX-License-Identifier: Apache-2.0
/* tests/unit/test_devices.c: the 16550A UART, the i8042 and the boot timer, driven through a bus.
 */
#include "devices/devices.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct bus pio;

static void outb(uint16_t port, uint8_t v)
{
	cr_assert_eq(bus_access(&pio, port, &v, 1, true), 0, "outb 0x%x", port);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;
	cr_assert_eq(bus_access(&pio, port, &v, 1, false), 0, "inb 0x%x", port);
	return v;
}

/* records every level an irq callback is given */
struct irq_log {
	unsigned n;
	bool levels[256];
};

static void irq_record(void *opaque, bool level)
{
	struct irq_log *l = opaque;
	if (l->n < ARRAY_SIZE(l->levels))
		l->levels[l->n] = level;
	l->n++;
}

static void expect_levels(const struct irq_log *l, const char *want)
{
	char got[64] = {0};
	for (unsigned i = 0; i < l->n && i < sizeof(got) - 1; i++)
		got[i] = l->levels[i] ? '1' : '0';
	cr_expect_str_eq(got, want, "irq levels");
}

/* --------------------------------------------------------------- serial */

#define COM1 SERIAL_COM1_BASE
#define THR  (COM1 + 0)
#define IER  (COM1 + 1)
#define IIR  (COM1 + 2)
#define FCR  (COM1 + 2)
#define LCR  (COM1 + 3)
#define MCR  (COM1 + 4)
#define LSR  (COM1 + 5)
#define MSR  (COM1 + 6)
#define SCR  (COM1 + 7)

static struct serial uart;
static struct irq_log uart_irqs;
static int out_pipe[2];

static void uart_setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	bus_init(&pio, "pio");
	cr_assert_eq(pipe2(out_pipe, O_NONBLOCK | O_CLOEXEC), 0);
	memset(&uart_irqs, 0, sizeof(uart_irqs));
	cr_assert_eq(serial_init(&uart, out_pipe[1], irq_record, &uart_irqs), 0);
	cr_assert_eq(serial_attach(&uart, &pio), 0);
}

static void uart_teardown(void)
{
	close(out_pipe[0]);
	close(out_pipe[1]);
	bus_destroy(&pio);
}

static size_t drain_pipe(char *buf, size_t max)
{
	ssize_t n = read(out_pipe[0], buf, max);
	return n < 0 ? 0 : (size_t)n;
}

TestSuite(serial, .init = uart_setup, .fini = uart_teardown);

Test(serial, output_reaches_the_fd)
{
	cr_expect_eq(uart.first_tx_ns, 0);
	uint64_t before = now_ns();
	outb(THR, 'h');
	outb(THR, 'i');
	outb(THR, '\n');
	char buf[16] = {0};
	cr_expect_eq(drain_pipe(buf, sizeof(buf)), 3);
	cr_expect_str_eq(buf, "hi\n");
	cr_expect_eq(uart.tx_bytes, 3);
	cr_expect_geq(uart.first_tx_ns, before);
	cr_expect_leq(uart.first_tx_ns, now_ns());
	uint64_t first = uart.first_tx_ns;
	outb(THR, 'x');
	cr_expect_eq(uart.first_tx_ns, first, "only the first byte sets first_tx_ns");
	cr_expect_eq(serial_attach(&uart, &pio), -EEXIST, "COM1 is taken");
}

Test(serial, reset_values_and_ier_mask)
{
	cr_expect_eq(inb(LSR), 0x60, "THRE | TEMT");
	cr_expect_eq(inb(IIR), 0x01, "no interrupt, FIFOs off");
	cr_expect_eq(inb(LCR), 0x03);
	cr_expect_eq(inb(MCR), 0x08);
	cr_expect_eq(inb(MSR), 0xb0, "DCD | DSR | CTS");
	cr_expect_eq(inb(IER), 0x00);
	outb(IER, 0xff);
	cr_expect_eq(inb(IER), 0x0f, "the upper IER bits do not stick (Linux checks)");
	outb(SCR, 0xa5);
	cr_expect_eq(inb(SCR), 0xa5);
	outb(MCR, 0xff);
	cr_expect_eq(inb(MCR), 0x1f);
	outb(LSR, 0x00);
	cr_expect_eq(inb(LSR), 0x60, "LSR is read-only");
}

Test(serial, dlab_selects_the_divisor)
{
	outb(LCR, 0x83);
	cr_expect_eq(inb(THR), 12, "9600 baud");
	cr_expect_eq(inb(IER), 0);
	outb(THR, 0x01); /* 115200 */
	outb(IER, 0x02);
	cr_expect_eq(inb(THR), 0x01);
	cr_expect_eq(inb(IER), 0x02);
	char buf[4];
	cr_expect_eq(drain_pipe(buf, sizeof(buf)), 0, "a DLL write is not output");
	cr_expect_eq(uart_irqs.n, 0, "a DLM write does not enable interrupts");

	outb(LCR, 0x03);
	cr_expect_eq(inb(IER), 0x00, "IER is separate from DLM");
	outb(THR, 'z');
	cr_expect_eq(drain_pipe(buf, sizeof(buf)), 1);
	outb(LCR, 0x80);
	cr_expect_eq(inb(THR), 0x01, "THR writes leave DLL alone");
	cr_expect_eq(inb(LCR), 0x80);
}

Test(serial, lsr_data_ready_follows_the_fifo)
{
	cr_expect_eq(serial_input(&uart, (const uint8_t *)"ab", 2), 2);
	cr_expect_eq(inb(LSR), 0x61);
	cr_expect_eq(inb(THR), 'a');
	cr_expect_eq(inb(LSR), 0x61);
	cr_expect_eq(inb(THR), 'b');
	cr_expect_eq(inb(LSR), 0x60);
	cr_expect_eq(inb(THR), 0, "an empty FIFO reads 0");
	cr_expect_eq(uart_irqs.n, 0, "no interrupt without IER");
}

Test(serial, loopback_wires_outputs_to_inputs)
{
	outb(MCR, 0x10 | 0x0a); /* LOOP | OUT2 | RTS: Linux's autoconfig check */
	cr_expect_eq(inb(MSR) & 0xf0, 0x90, "DCD | CTS");
	outb(MCR, 0x10 | 0x05); /* LOOP | OUT1 | DTR */
	cr_expect_eq(inb(MSR) & 0xf0, 0x60, "RI | DSR");
	outb(MCR, 0x10);
	cr_expect_eq(inb(MSR), 0x00);

	outb(THR, 'x');
	char buf[4];
	cr_expect_eq(drain_pipe(buf, sizeof(buf)), 0, "loopback output does not leave");
	cr_expect_eq(uart.tx_bytes, 0);
	cr_expect_eq(inb(LSR), 0x61);
	cr_expect_eq(inb(THR), 'x');
	cr_expect_eq(serial_input(&uart, (const uint8_t *)"h", 1), 0, "host input is disconnected");

	outb(MCR, 0x0b);
	cr_expect_eq(inb(MSR), 0xb0, "out of loopback the lines are up again");
	cr_expect_eq(serial_input(&uart, (const uint8_t *)"h", 1), 1);
}

Test(serial, loopback_overrun_sets_oe_and_rls)
{
	outb(MCR, 0x10);
	outb(IER, 0x04); /* ELSI */
	for (int i = 0; i < SERIAL_FIFO_SIZE; i++)
		outb(THR, (uint8_t)i);
	cr_expect_eq(uart_irqs.n, 0);
	outb(THR, 0xee);
	expect_levels(&uart_irqs, "1");
	cr_expect_eq(inb(IIR), 0x06, "receiver line status");
	cr_expect_eq(inb(LSR), 0x63, "DR | OE");
	expect_levels(&uart_irqs, "10");
	cr_expect_eq(inb(LSR), 0x61, "OE clears on read");
	for (int i = 0; i < SERIAL_FIFO_SIZE; i++)
		cr_assert_eq(inb(THR), (uint8_t)i,
		             "the overrun byte was dropped, not the old ones");
}

Test(serial, thre_interrupt_sequencing)
{
	outb(IER, 0x02); /* ETBEI: the empty transmitter raises THRE at once */
	expect_levels(&uart_irqs, "1");
	cr_expect_eq(inb(IIR), 0x02);
	expect_levels(&uart_irqs, "10");
	cr_expect_eq(inb(IIR), 0x01, "reading IIR cleared THRE");

	outb(THR, 'a'); /* nothing pending: only the re-arm raises */
	expect_levels(&uart_irqs, "101");
	outb(THR, 'b'); /* pending: cleared and raised again, a fresh edge */
	expect_levels(&uart_irqs, "10101");

	outb(IER, 0x00);
	expect_levels(&uart_irqs, "101010");
	outb(IER, 0x02);
	expect_levels(&uart_irqs, "1010101");
	outb(IER, 0x02); /* already enabled: no change */
	expect_levels(&uart_irqs, "1010101");
	cr_expect_eq(inb(IIR), 0x02);
	outb(IER, 0x02);
	cr_expect_eq(inb(IIR), 0x01, "rewriting ETBEI does not re-raise");
}

Test(serial, linux_thre_reassertion_test)
{
	/* serial8250_do_startup: IER = THRI, read IIR, IER = 0, IER = THRI, read IIR */
	outb(IER, 0x02);
	uint8_t iir1 = inb(IIR);
	outb(IER, 0x00);
	outb(IER, 0x02);
	uint8_t iir2 = inb(IIR);
	outb(IER, 0x00);
	cr_expect_eq(iir1 & 0x01, 0);
	cr_expect_eq(iir2 & 0x01, 0, "THRE must be re-asserted or Linux marks UART_BUG_THRE");
}

Test(serial, rda_interrupt_and_priority)
{
	outb(IER, 0x01);
	cr_expect_eq(serial_input(&uart, (const uint8_t *)"ab", 2), 2);
	expect_levels(&uart_irqs, "1");
	cr_expect_eq(inb(IIR), 0x04);
	cr_expect_eq(inb(THR), 'a');
	cr_expect_eq(inb(IIR), 0x04);
	expect_levels(&uart_irqs, "1");
	cr_expect_eq(inb(THR), 'b');
	expect_levels(&uart_irqs, "10");
	cr_expect_eq(inb(IIR), 0x01);

	outb(IER, 0x03); /* both: THRE is owed */
	expect_levels(&uart_irqs, "101");
	cr_expect_eq(serial_input(&uart, (const uint8_t *)"c", 1), 1);
	cr_expect_eq(inb(IIR), 0x04, "RDA before THRE");
	cr_expect_eq(inb(THR), 'c');
	cr_expect_eq(inb(IIR), 0x02, "then THRE");
	cr_expect_eq(inb(IIR), 0x01);
	expect_levels(&uart_irqs, "1010");
}

Test(serial, fifo_bits_and_clearing)
{
	outb(FCR, 0x01);
	cr_expect_eq(inb(IIR), 0xc1);
	cr_expect_eq(inb(IIR) >> 6, 3, "Linux's autoconfig: a 16550A");
	outb(LCR, 0xbf); /* Linux probes EFR here: IIR must not read 0 */
	cr_expect_neq(inb(IIR), 0);
	outb(LCR, 0x03);
	outb(IER, 0x01);
	cr_expect_eq(serial_input(&uart, (const uint8_t *)"xyz", 3), 3);
	cr_expect_eq(inb(IIR), 0xc4);
	outb(FCR, 0x03); /* clear the receive FIFO */
	cr_expect_eq(inb(LSR), 0x60);
	cr_expect_eq(inb(IIR), 0xc1);
	expect_levels(&uart_irqs, "10");
	cr_expect_eq(serial_input(&uart, (const uint8_t *)"q", 1), 1);
	outb(FCR, 0x00); /* disabling the FIFOs clears them too */
	cr_expect_eq(inb(LSR), 0x60);
	cr_expect_eq(inb(IIR), 0x01);
}

Test(serial, input_fifo_overflow_is_partial)
{
	uint8_t in[100];
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i + 1);
	cr_expect_eq(serial_input(&uart, in, sizeof(in)), SERIAL_FIFO_SIZE);
	cr_expect_eq(serial_input(&uart, in, 1), 0);
	cr_expect_eq(inb(THR), 1);
	cr_expect_eq(serial_input(&uart, in + SERIAL_FIFO_SIZE, 36), 1, "one slot freed");
	for (unsigned i = 1; i <= SERIAL_FIFO_SIZE; i++)
		cr_assert_eq(inb(THR), (uint8_t)(i + 1), "byte %u in order", i);
	cr_expect_eq(inb(LSR) & 0x01, 0);
	cr_expect_eq(serial_input(&uart, in, 0), 0);
}

Test(serial, wide_accesses_are_ignored)
{
	uint16_t v = 0x4141;
	cr_expect_eq(bus_access(&pio, THR, &v, 2, true), 0);
	char buf[4];
	cr_expect_eq(drain_pipe(buf, sizeof(buf)), 0);
	cr_expect_eq(bus_access(&pio, SCR, &v, 2, false), -EINVAL, "0x3ff + 2 runs past COM1");
	cr_expect_eq(bus_access(&pio, COM1, &v, 2, false), 0);
	cr_expect_eq(v, 0xffff);
}

/* PUT /serial's rate_limiter: the burst, then the bucket; the rest dropped and counted */
Test(serial, rate_limit_drops_past_the_bucket)
{
	char buf[64];
	serial_set_limit(&uart, 10, 2, 10000); /* 10 bytes in 10 s (1 a second), 2 more once */
	for (int i = 0; i < 20; i++)
		outb(THR, (uint8_t)('a' + i));
	cr_expect_eq(drain_pipe(buf, sizeof(buf)), 12);
	cr_expect_eq(uart.tx_bytes, 12);
	cr_expect_eq(uart.tx_limited, 8);
	usleep(1200000); /* 1.2 s: one token back, not two */
	outb(THR, 'x');
	outb(THR, 'y');
	cr_expect_eq(drain_pipe(buf, sizeof(buf)), 1);
	cr_expect_eq(buf[0], 'x');
	cr_expect_eq(uart.tx_limited, 9);
	serial_set_limit(&uart, 0, 0, 1000); /* size 0: no limit */
	for (int i = 0; i < 10; i++)
		outb(THR, 'z');
	cr_expect_eq(drain_pipe(buf, sizeof(buf)), 10);
	cr_expect_eq(uart.tx_limited, 9);
}

Test(serial, failed_output_is_counted_not_fatal)
{
	close(out_pipe[0]); /* EPIPE from now on */
	out_pipe[0] = open("/dev/null", O_RDONLY);
	outb(THR, 'a');
	outb(THR, 'b');
	cr_expect_eq(uart.tx_dropped, 2);
	cr_expect_eq(uart.tx_bytes, 0);
	cr_expect_eq(inb(LSR), 0x60);
}

Test(serial, discarding_output_fd)
{
	struct serial s;
	cr_assert_eq(serial_init(&s, -1, NULL, NULL), 0);
	struct bus b2;
	bus_init(&b2, "pio2");
	cr_assert_eq(serial_attach(&s, &b2), 0);
	uint8_t v = 'k';
	cr_expect_eq(bus_access(&b2, THR, &v, 1, true), 0);
	v = 0x02;
	cr_expect_eq(bus_access(&b2, IER, &v, 1, true), 0, "no irq callback: no crash");
	cr_expect_eq(s.tx_bytes, 1);
	cr_expect_eq(serial_init(NULL, 1, NULL, NULL), -EINVAL);
	cr_expect_eq(serial_attach(&s, NULL), -EINVAL);
	bus_destroy(&b2);
}

/* ---------------------------------------------------------------- i8042 */

#define DATA I8042_DATA_PORT
#define CMD  I8042_COMMAND_PORT

static struct i8042 kbd;
static struct irq_log kbd_irqs;
static unsigned resets;

static void count_reset(void *opaque)
{
	cr_expect_eq(opaque, &resets);
	resets++;
}

static void kbd_setup(void)
{
	bus_init(&pio, "pio");
	memset(&kbd_irqs, 0, sizeof(kbd_irqs));
	resets = 0;
	cr_assert_eq(i8042_init(&kbd, count_reset, &resets, irq_record, &kbd_irqs), 0);
	cr_assert_eq(i8042_attach(&kbd, &pio), 0);
}

static void kbd_teardown(void)
{
	bus_destroy(&pio);
}

TestSuite(i8042, .init = kbd_setup, .fini = kbd_teardown);

static void expect_bytes(const uint8_t *want, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		cr_assert(inb(CMD) & 0x01, "OBF before byte %u", i);
		cr_expect_eq(inb(DATA), want[i], "byte %u", i);
	}
	cr_expect_eq(inb(CMD) & 0x01, 0, "OBF clear after %u bytes", n);
}

Test(i8042, fe_resets_exactly_once)
{
	cr_expect_eq(inb(CMD), 0x14, "SYS | unlocked, nothing to read");
	outb(CMD, 0xfe);
	cr_expect_eq(resets, 1);
	outb(CMD, 0xff); /* pulses no line */
	cr_expect_eq(resets, 1);
	outb(CMD, 0xf0); /* pulses all four, reset included */
	cr_expect_eq(resets, 2);
	cr_expect_eq(inb(CMD) & 0x08, 0x08, "last write was a command");
	cr_expect_eq(i8042_attach(&kbd, &pio), -EEXIST);
}

Test(i8042, output_port_bit0_resets)
{
	outb(CMD, 0xd0);
	expect_bytes((const uint8_t[]){0x03}, 1);
	outb(CMD, 0xd1);
	outb(DATA, 0xdf); /* A20 on, reset line high */
	cr_expect_eq(resets, 0);
	outb(CMD, 0xd0);
	expect_bytes((const uint8_t[]){0xdf}, 1);
	outb(CMD, 0xd1);
	outb(DATA, 0xfe);
	cr_expect_eq(resets, 1);
	outb(DATA, 0xfe); /* no command pending: a keyboard byte, not a reset */
	cr_expect_eq(resets, 1);
}

Test(i8042, control_byte_read_and_write)
{
	outb(CMD, 0x20);
	cr_expect_eq(inb(CMD) & 0x01, 0x01);
	expect_bytes((const uint8_t[]){0x45}, 1);
	expect_levels(&kbd_irqs, "10");
	outb(CMD, 0x60);
	cr_expect_eq(inb(CMD) & 0x08, 0x08);
	outb(DATA, 0x40); /* no SYS, no interrupt */
	cr_expect_eq(inb(CMD), 0x10, "SYS follows the control byte; data write clears CMD");
	outb(CMD, 0x20);
	expect_bytes((const uint8_t[]){0x40}, 1);
	cr_expect_eq(kbd_irqs.n, 2, "KBD_INT off: no interrupt for replies");

	outb(CMD, 0xad);
	outb(CMD, 0xa7);
	outb(CMD, 0x20);
	expect_bytes((const uint8_t[]){0x70}, 1);
	outb(CMD, 0xae);
	outb(CMD, 0xa8); /* no aux port: stays disabled */
	outb(CMD, 0x20);
	expect_bytes((const uint8_t[]){0x60}, 1);
}

Test(i8042, self_tests)
{
	outb(CMD, 0xaa);
	expect_bytes((const uint8_t[]){0x55}, 1);
	outb(CMD, 0xab);
	expect_bytes((const uint8_t[]){0x00}, 1);
	outb(CMD, 0xa9);
	expect_bytes((const uint8_t[]){0x01}, 1);
	outb(CMD, 0xd3); /* aux loopback: the byte goes nowhere */
	outb(DATA, 0x5a);
	cr_expect_eq(inb(CMD) & 0x01, 0);
	cr_expect_eq(inb(DATA), 0, "empty buffer reads 0");
}

Test(i8042, keyboard_commands_and_interrupt_edges)
{
	outb(DATA, 0xff); /* reset: ACK, then BAT passed */
	expect_levels(&kbd_irqs, "1");
	cr_expect_eq(inb(DATA), 0xfa);
	expect_levels(&kbd_irqs, "101"); /* a new edge for the next byte */
	cr_expect_eq(inb(DATA), 0xaa);
	expect_levels(&kbd_irqs, "1010");

	outb(DATA, 0xf2);
	expect_bytes((const uint8_t[]){0xfa, 0xab, 0x41}, 3);
	outb(DATA, 0xed);
	outb(DATA, 0x07);
	expect_bytes((const uint8_t[]){0xfa, 0xfa}, 2);
	outb(DATA, 0xf0);
	outb(DATA, 0x00);
	expect_bytes((const uint8_t[]){0xfa, 0xfa, 0x02}, 3);
	outb(DATA, 0xee);
	expect_bytes((const uint8_t[]){0xee}, 1);
	outb(DATA, 0xf4);
	expect_bytes((const uint8_t[]){0xfa}, 1);

	outb(CMD, 0x60);
	outb(DATA, 0x05); /* untranslated */
	outb(DATA, 0xf2);
	expect_bytes((const uint8_t[]){0xfa, 0xab, 0x83}, 3);

	outb(CMD, 0xd2); /* "write keyboard output buffer" */
	outb(DATA, 0x42);
	expect_bytes((const uint8_t[]){0x42}, 1);
}

Test(i8042, ctrl_alt_del_set1)
{
	cr_assert_eq(i8042_send_ctrl_alt_del(&kbd), 0);
	expect_levels(&kbd_irqs, "1");
	cr_expect_eq(inb(CMD) & 0x01, 0x01, "OBF");
	static const uint8_t want[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	expect_bytes(want, sizeof(want));
	cr_expect_eq(kbd_irqs.levels[kbd_irqs.n - 1], false, "drained: line low");
	cr_expect_eq(kbd_irqs.n, 2 * sizeof(want), "one edge per byte");
}

Test(i8042, ctrl_alt_del_set2_and_full_buffer)
{
	outb(CMD, 0x60);
	outb(DATA, 0x05);
	cr_assert_eq(i8042_send_ctrl_alt_del(&kbd), 0);
	static const uint8_t want[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
	                               0x71, 0xf0, 0x11, 0xf0, 0x14};
	expect_bytes(want, sizeof(want));

	for (int i = 0; i < 6; i++) {
		outb(CMD, 0xd2);
		outb(DATA, (uint8_t)i);
	}
	cr_expect_eq(i8042_send_ctrl_alt_del(&kbd), -ENOSPC, "11 bytes do not fit in 10");
	expect_bytes((const uint8_t[]){0, 1, 2, 3, 4, 5}, 6);
}

static void reset_sends_cad(void *opaque)
{
	/* would deadlock if the controller held its lock around the callback */
	cr_expect_eq(i8042_send_ctrl_alt_del(opaque), 0);
	resets++;
}

Test(i8042, reset_callback_runs_unlocked, .timeout = 5)
{
	struct i8042 k;
	struct bus b2;
	bus_init(&b2, "pio2");
	cr_assert_eq(i8042_init(&k, reset_sends_cad, &k, NULL, NULL), 0);
	cr_assert_eq(i8042_attach(&k, &b2), 0);
	uint8_t v = 0xfe;
	resets = 0;
	cr_expect_eq(bus_access(&b2, CMD, &v, 1, true), 0);
	cr_expect_eq(resets, 1);
	cr_expect_eq(k.out_count, 8);
	bus_destroy(&b2);
}

/* ----------------------------------------------------------- boot timer */

static char logpath[64];

Test(boot_timer, records_123_once)
{
	struct boot_timer t = {.start_ns = now_ns()};
	bus_init(&pio, "pio");
	cr_assert_eq(boot_timer_attach(&t, &pio), 0);
	cr_expect_eq(boot_timer_attach(&t, &pio), -EEXIST);

	snprintf(logpath, sizeof(logpath), "/tmp/kiln-test-btXXXXXX");
	int fd = mkstemp(logpath);
	cr_assert_geq(fd, 0);
	log_set_file(fdopen(fd, "w"));
	log_configure(LOG_INFO, false, false, NULL);

	outb(BOOT_TIMER_PORT, 122);
	outb(BOOT_TIMER_PORT, 0);
	cr_expect_eq(t.boot_ns, 0, "only 123 counts");
	cr_expect_eq(inb(BOOT_TIMER_PORT), 0);

	usleep(2000);
	outb(BOOT_TIMER_PORT, 123);
	uint64_t first = t.boot_ns;
	cr_expect_geq(first, t.start_ns + 2000000);
	cr_expect_leq(first, now_ns());
	outb(BOOT_TIMER_PORT, 123);
	cr_expect_eq(t.boot_ns, first, "later writes are ignored");
	uint16_t wide = 123;
	cr_expect_eq(bus_access(&pio, BOOT_TIMER_PORT, &wide, 2, true), -EINVAL);

	log_set_file(NULL);
	log_configure(LOG_WARN, false, false, NULL);
	char *text;
	size_t len;
	cr_assert_eq(read_file(logpath, 1 << 16, &text, &len, NULL), 0);
	unlink(logpath);
	char *line = strstr(text, "Guest-boot-time = ");
	cr_assert_not_null(line, "log: %s", text);
	unsigned long long us, ms;
	cr_assert_eq(sscanf(line, "Guest-boot-time = %llu us %llu ms since start", &us, &ms), 2,
	             "line: %s", line);
	cr_expect_geq(us, 2000);
	cr_expect_eq(ms, us / 1000);
	cr_expect_null(strstr(line + 1, "Guest-boot-time"), "logged once");
	free(text);
	bus_destroy(&pio);
}

Test(boot_timer, start_defaults_to_process_start)
{
	struct boot_timer t = {0};
	kiln_start_ns = 12345;
	bus_init(&pio, "pio");
	cr_assert_eq(boot_timer_attach(&t, &pio), 0);
	cr_expect_eq(t.start_ns, 12345);
	cr_expect_eq(boot_timer_attach(NULL, &pio), -EINVAL);
	bus_destroy(&pio);
}
