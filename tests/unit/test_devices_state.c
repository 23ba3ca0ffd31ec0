// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_devices_state.c: saved state of the UART, the i8042 and
 * the boot timer -- round trips into fresh devices compared through their
 * ports, re-driven interrupt lines, and refused sections (newer version,
 * truncated, values a guest cannot produce).
 */
#include "common/state.h"
#include "devices/devices.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

/* two machines: the one saved (0) and the one restored into (1) */
static struct bus pio[2];

static void outb(int m, uint16_t port, uint8_t v)
{
	cr_assert_eq(bus_access(&pio[m], port, &v, 1, true), 0, "outb 0x%x", port);
}

static uint8_t inb(int m, uint16_t port)
{
	uint8_t v = 0;
	cr_assert_eq(bus_access(&pio[m], port, &v, 1, false), 0, "inb 0x%x", port);
	return v;
}

struct irq_log {
	unsigned n;
	bool last;
};

static void irq_record(void *opaque, bool level)
{
	struct irq_log *l = opaque;
	l->n++;
	l->last = level;
}

static struct irq_log irqs[2];
static struct state_writer w;

static void setup(void)
{
	for (int m = 0; m < 2; m++)
		bus_init(&pio[m], "pio");
	memset(irqs, 0, sizeof(irqs));
	sw_init(&w);
}

static void teardown(void)
{
	sw_free(&w);
	for (int m = 0; m < 2; m++)
		bus_destroy(&pio[m]);
}

TestSuite(devices_state, .init = setup, .fini = teardown);

/* the one section in `w`: checks its id and version, returns its reader */
static struct state_reader section(const char *want_id, uint16_t want_version)
{
	struct state_reader all, sub;
	char id[STATE_ID_MAX + 1];
	uint16_t version;

	cr_assert_eq(sw_error(&w), 0);
	sr_init(&all, w.buf, w.len);
	cr_assert_eq(sr_next(&all, id, &version, &sub), 1);
	cr_assert_str_eq(id, want_id);
	cr_assert_eq(version, want_version);
	cr_assert_eq(sr_next(&all, id, &version, &sub), 0, "one section only");
	sr_init(&all, w.buf, w.len);
	sr_next(&all, id, &version, &sub);
	return sub;
}

/* ------------------------------------------------------------------ UART */

#define COM1 SERIAL_COM1_BASE
#define THR  (COM1 + 0)
#define IER  (COM1 + 1)
#define IIR  (COM1 + 2)
#define LCR  (COM1 + 3)
#define MCR  (COM1 + 4)
#define LSR  (COM1 + 5)
#define MSR  (COM1 + 6)
#define SCR  (COM1 + 7)

static struct serial uart[2];

static void uarts(void)
{
	for (int m = 0; m < 2; m++) {
		cr_assert_eq(serial_init(&uart[m], -1, irq_record, &irqs[m]), 0);
		cr_assert_eq(serial_attach(&uart[m], &pio[m]), 0);
	}
}

/* a guest's set-up: divisor 1, 8N1, FIFOs on, RDA + THRE interrupts, scratch 0x5a */
static void program_uart(int m)
{
	outb(m, LCR, 0x80);
	outb(m, THR, 1);
	outb(m, IER, 0);
	outb(m, LCR, 0x03);
	outb(m, IIR, 0xc7); /* FCR: enable, clear, trigger 14 */
	outb(m, MCR, 0x0b); /* DTR, RTS, OUT2 */
	outb(m, SCR, 0x5a);
	outb(m, IER, 0x03);
}

/* the registers that reading does not change */
static void expect_same_registers(void)
{
	uint16_t ports[] = {IER, LCR, MCR, MSR, SCR};
	for (size_t i = 0; i < ARRAY_SIZE(ports); i++)
		cr_expect_eq(inb(1, ports[i]), inb(0, ports[i]), "port %#x", ports[i]);
	outb(0, LCR, 0x83);
	outb(1, LCR, 0x83);
	cr_expect_eq(inb(1, THR), inb(0, THR), "DLL");
	cr_expect_eq(inb(1, IER), inb(0, IER), "DLM");
	outb(0, LCR, 0x03);
	outb(1, LCR, 0x03);
}

Test(devices_state, serial_fifo_and_thre_round_trip)
{
	uint8_t in[64], got[2];

	uarts();
	program_uart(0);
	/* wrap the FIFO: 60 in, 50 out, 40 in leaves 50 bytes starting at slot 50 */
	for (unsigned i = 0; i < 60; i++)
		in[i] = (uint8_t)i;
	cr_assert_eq(serial_input(&uart[0], in, 60), 60);
	for (unsigned i = 0; i < 50; i++)
		cr_assert_eq(inb(0, THR), i);
	for (unsigned i = 0; i < 40; i++)
		in[i] = (uint8_t)(100 + i);
	cr_assert_eq(serial_input(&uart[0], in, 40), 40);
	cr_assert(irqs[0].last, "RDA raised");

	cr_assert_eq(serial_save(&uart[0], &w, NULL), 0);
	struct state_reader r = section("serial", SERIAL_STATE_VERSION);
	struct errbuf e = {""};
	cr_assert_eq(serial_restore(&uart[1], &r, SERIAL_STATE_VERSION, &e), 0, "%s", e.msg);
	cr_expect_eq(irqs[1].n, 1, "the line is re-driven once");
	cr_expect(irqs[1].last, "high, as on the saved UART");

	expect_same_registers();
	for (unsigned i = 0; i < 50; i++) {
		cr_assert_eq(inb(1, LSR), inb(0, LSR), "LSR before byte %u", i);
		cr_assert_eq(inb(1, IIR), inb(0, IIR), "IIR before byte %u", i);
		got[0] = inb(0, THR);
		got[1] = inb(1, THR);
		cr_assert_eq(got[1], got[0], "byte %u", i);
		cr_assert_eq(got[1], i < 10 ? 50 + i : 100 + i - 10, "byte %u", i);
	}
	/* the FIFO is empty: the THRE interrupt that was owed shows now, on both */
	cr_expect_eq(inb(1, IIR), 0xc2);
	cr_expect_eq(inb(0, IIR), 0xc2);
	cr_expect_not(irqs[1].last, "reading IIR cleared THRE");
	cr_expect_eq(inb(1, IIR), 0xc1);
	outb(1, THR, 'x'); /* transmits (discarded) and re-arms THRE */
	cr_expect(irqs[1].last);
}

Test(devices_state, serial_refuses_bad_sections)
{
	struct errbuf e = {""};

	uarts();
	program_uart(0);
	cr_assert_eq(serial_save(&uart[0], &w, NULL), 0);
	struct state_reader r = section("serial", SERIAL_STATE_VERSION);

	struct state_reader c = r;
	cr_expect_eq(serial_restore(&uart[1], &c, SERIAL_STATE_VERSION + 1, &e), -EINVAL);
	cr_expect(strstr(e.msg, "version 2"), "%s", e.msg);

	c = r;
	c.len--; /* the last byte of the payload is missing */
	cr_expect_eq(serial_restore(&uart[1], &c, SERIAL_STATE_VERSION, &e), -EINVAL);
	cr_expect(strstr(e.msg, "serial is truncated"), "%s", e.msg);

	uint8_t bad[64] = {0};
	memcpy(bad, r.buf, r.len);
	bad[0] = 0xff; /* IER with its always-zero bits set */
	sr_init(&c, bad, r.len);
	cr_expect_eq(serial_restore(&uart[1], &c, SERIAL_STATE_VERSION, &e), -EINVAL);
	cr_expect(strstr(e.msg, "IER 0xff"), "%s", e.msg);

	memcpy(bad, r.buf, r.len);
	bad[12] = 65; /* rx count */
	sr_init(&c, bad, r.len);
	cr_expect_eq(serial_restore(&uart[1], &c, SERIAL_STATE_VERSION, &e), -EINVAL);
	cr_expect(strstr(e.msg, "65 bytes"), "%s", e.msg);

	/* nothing of the refused sections reached the device */
	cr_expect_eq(inb(1, LCR), 0x03);
	cr_expect_eq(inb(1, SCR), 0);
	cr_expect_eq(irqs[1].n, 0);
}

/* ----------------------------------------------------------------- i8042 */

#define DATA I8042_DATA_PORT
#define CMD  I8042_COMMAND_PORT

static struct i8042 kbd[2];

static void kbds(void)
{
	for (int m = 0; m < 2; m++) {
		cr_assert_eq(i8042_init(&kbd[m], NULL, NULL, irq_record, &irqs[m]), 0);
		cr_assert_eq(i8042_attach(&kbd[m], &pio[m]), 0);
	}
}

Test(devices_state, i8042_buffer_and_pending_command)
{
	struct errbuf e = {""};

	kbds();
	outb(0, CMD, 0xd2); /* write keyboard output: the next data byte is queued */
	outb(0, DATA, 0x42);
	outb(0, DATA, 0xf0); /* keyboard: scan code set, parameter follows */
	outb(0, CMD, 0xd2);
	outb(0, DATA, 0x43);
	outb(0, CMD, 0x60); /* write control byte: awaiting its data byte */
	cr_assert(irqs[0].last);

	cr_assert_eq(i8042_save(&kbd[0], &w, NULL), 0);
	struct state_reader r = section("i8042", I8042_STATE_VERSION);
	cr_assert_eq(i8042_restore(&kbd[1], &r, I8042_STATE_VERSION, &e), 0, "%s", e.msg);
	cr_expect_eq(irqs[1].n, 1);
	cr_expect(irqs[1].last, "re-driven high: data waits");

	for (int m = 0; m < 2; m++) {
		outb(m, DATA, 0x44); /* the pending 0x60 takes it: control = 0x44, no interrupt */
		outb(m, DATA, 0x00); /* the keyboard's scan-set parameter: ACK, then set 2 */
	}
	const uint8_t want[] = {0x42, 0xfa, 0x43, 0xfa, 0x02};
	for (unsigned i = 0; i < sizeof(want); i++) {
		cr_assert_eq(inb(1, CMD), inb(0, CMD), "status before byte %u", i);
		cr_assert_eq(inb(0, DATA), want[i], "saved machine, byte %u", i);
		cr_assert_eq(inb(1, DATA), want[i], "restored machine, byte %u", i);
	}
	outb(1, CMD, 0x20);
	cr_expect_eq(inb(1, DATA), 0x44, "the control byte the pending command wrote");
	cr_expect_not(irqs[1].last);
}

Test(devices_state, i8042_refuses_bad_sections)
{
	struct errbuf e = {""};
	uint8_t bad[64] = {0};
	struct state_reader c;

	kbds();
	cr_assert_eq(i8042_save(&kbd[0], &w, NULL), 0);
	struct state_reader r = section("i8042", I8042_STATE_VERSION);

	c = r;
	cr_expect_eq(i8042_restore(&kbd[1], &c, 0, &e), -EINVAL);
	cr_expect(strstr(e.msg, "version 0"), "%s", e.msg);
	memcpy(bad, r.buf, r.len);
	bad[2] = 0x20; /* "read control byte" never waits for data */
	sr_init(&c, bad, r.len);
	cr_expect_eq(i8042_restore(&kbd[1], &c, I8042_STATE_VERSION, &e), -EINVAL);
	cr_expect(strstr(e.msg, "pending command 0x20"), "%s", e.msg);
	memcpy(bad, r.buf, r.len);
	bad[6] = 17;
	sr_init(&c, bad, r.len);
	cr_expect_eq(i8042_restore(&kbd[1], &c, I8042_STATE_VERSION, &e), -EINVAL);
	cr_expect(strstr(e.msg, "17 bytes"), "%s", e.msg);
	sr_init(&c, bad, r.len + 1);
	bad[6] = 0;
	cr_expect_eq(i8042_restore(&kbd[1], &c, I8042_STATE_VERSION, &e), -EINVAL);
	cr_expect(strstr(e.msg, "too many"), "%s", e.msg);
	cr_expect_eq(irqs[1].n, 0);
}

/* ------------------------------------------------------------ boot timer */

Test(devices_state, boot_timer_keeps_the_report)
{
	struct boot_timer t[2] = {{.start_ns = 1000}, {.start_ns = 5000000}};
	struct errbuf e = {""};

	for (int m = 0; m < 2; m++)
		cr_assert_eq(boot_timer_attach(&t[m], &pio[m]), 0);
	cr_assert_eq(boot_timer_save(&t[0], &w, NULL), 0);
	struct state_reader r = section("boot-timer", BOOT_TIMER_STATE_VERSION);
	cr_assert_eq(boot_timer_restore(&t[1], &r, BOOT_TIMER_STATE_VERSION, &e), 0, "%s", e.msg);
	cr_expect_eq(t[1].boot_ns, 0, "not booted yet");

	outb(0, BOOT_TIMER_PORT, BOOT_TIMER_MAGIC);
	cr_assert_gt(t[0].boot_ns, 1000);
	sw_free(&w);
	cr_assert_eq(boot_timer_save(&t[0], &w, NULL), 0);
	r = section("boot-timer", BOOT_TIMER_STATE_VERSION);
	cr_assert_eq(boot_timer_restore(&t[1], &r, BOOT_TIMER_STATE_VERSION, &e), 0, "%s", e.msg);
	cr_expect_eq(t[1].boot_ns - t[1].start_ns, t[0].boot_ns - t[0].start_ns);
	uint64_t was = t[1].boot_ns;
	outb(1, BOOT_TIMER_PORT, BOOT_TIMER_MAGIC);
	cr_expect_eq(t[1].boot_ns, was, "a second report is ignored after a restore");

	r = section("boot-timer", BOOT_TIMER_STATE_VERSION);
	r.len -= 8;
	cr_expect_eq(boot_timer_restore(&t[1], &r, BOOT_TIMER_STATE_VERSION, &e), -EINVAL);
	cr_expect(strstr(e.msg, "truncated"), "%s", e.msg);
}
