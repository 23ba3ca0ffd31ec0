// SPDX-License-Identifier: Apache-2.0
/*
 * devices/i8042.c: the PS/2 controller with a keyboard and no aux port --
 * enough for Linux's i8042 and atkbd drivers to probe it, for the guest to
 * reset the machine (command 0xFE, Linux's reboot=k), and for the host to
 * send Ctrl+Alt+Del.
 *
 * Commands and bits follow the IBM PC/AT technical reference ("Keyboard
 * Controller" commands 0x20-0xFF, status and command-byte bits) and the
 * keyboard command set (0xED-0xFF) of the IBM PS/2 keyboard. The keyboard
 * answers commands but keeps no scanning/LED/typematic state, and data is
 * queued whether or not the keyboard clock is disabled.
 */
#define LOG_MODULE "i8042"
#include "devices.h"

#include <errno.h>
#include <string.h>

/* status register (read at 0x64) */
#define STS_OBF      0x01 /* output buffer full: data waits at 0x60 */
#define STS_SYS      0x04 /* system flag, mirrors the command byte's */
#define STS_CMD      0x08 /* the last write went to 0x64 */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the key lock */

/* controller command byte ("control", commands 0x20 / 0x60) */
#define CTL_KBD_INT 0x01
#define CTL_SYS     0x04
#define CTL_KBD_DIS 0x10
#define CTL_AUX_DIS 0x20
#define CTL_XLATE   0x40 /* translate keyboard codes to scan code set 1 */
#define CTL_DEFAULT (CTL_XLATE | CTL_SYS | CTL_KBD_INT)

/* controller commands (written to 0x64) */
#define CMD_READ_CTL     0x20
#define CMD_WRITE_CTL    0x60
#define CMD_AUX_DISABLE  0xa7
#define CMD_AUX_ENABLE   0xa8
#define CMD_AUX_TEST     0xa9
#define CMD_SELF_TEST    0xaa
#define CMD_KBD_TEST     0xab
#define CMD_KBD_DISABLE  0xad
#define CMD_KBD_ENABLE   0xae
#define CMD_READ_OUTP    0xd0
#define CMD_WRITE_OUTP   0xd1
#define CMD_WRITE_KBD_OB 0xd2 /* next data byte appears as keyboard data */
#define CMD_WRITE_AUX_OB 0xd3 /* aux loopback: no aux port, dropped */
#define CMD_WRITE_AUX    0xd4 /* to the mouse: no aux port, dropped */
#define CMD_PULSE_BASE   0xf0 /* 0xF0-0xFF pulse output port bits 0-3 low */

#define SELF_TEST_OK  0x55
#define KBD_TEST_OK   0x00
#define AUX_TEST_NONE 0x01 /* "clock line stuck low": Linux concludes no aux */
#define OUTP_RESET    0x01 /* output port bit 0: low resets the CPU */
#define OUTP_DEFAULT  0x03 /* reset inactive, A20 enabled */

/* keyboard commands (written to 0x60) and answers */
#define KBD_SET_LEDS  0xed
#define KBD_ECHO      0xee
#define KBD_SCAN_SET  0xf0
#define KBD_GET_ID    0xf2
#define KBD_TYPEMATIC 0xf3
#define KBD_RESET     0xff
#define KBD_ACK       0xfa
#define KBD_BAT_OK    0xaa
#define KBD_ID_0      0xab
#define KBD_ID_1      0x83 /* an MF2 keyboard */
#define KBD_ID_1_XLAT 0x41 /* 0x83 as the controller translates it */

static void set_line(struct i8042 *k, bool level)
{
	if (level != k->irq_level) {
		k->irq_level = level;
		if (k->irq)
			k->irq(k->irq_opaque, level);
	}
}

/* The keyboard line is high while data waits and the command byte enables it. */
static void update_irq(struct i8042 *k)
{
	set_line(k, k->out_count && (k->control & CTL_KBD_INT));
}

static unsigned out_room(const struct i8042 *k)
{
	return (unsigned)sizeof(k->outbuf) - k->out_count;
}

/* Queues one byte for port 0x60; a byte that does not fit is dropped. */
static void out_push(struct i8042 *k, uint8_t byte)
{
	if (!out_room(k)) {
		log_debug("output buffer full, dropping 0x%02x", byte);
		return;
	}
	k->outbuf[(k->out_head + k->out_count) % sizeof(k->outbuf)] = byte;
	k->out_count++;
}

static uint8_t out_pop(struct i8042 *k)
{
	if (!k->out_count)
		return 0;
	uint8_t byte = k->outbuf[k->out_head];
	k->out_head = (k->out_head + 1) % (unsigned)sizeof(k->outbuf);
	k->out_count--;
	return byte;
}

static void write_control(struct i8042 *k, uint8_t val)
{
	k->control = val;
	k->status = (uint8_t)((k->status & ~STS_SYS) | (val & CTL_SYS ? STS_SYS : 0));
}

/* A command written to 0x64. Returns true when it asks for a CPU reset. */
static bool controller_command(struct i8042 *k, uint8_t cmd)
{
	k->cmd = 0;
	switch (cmd) {
	case CMD_READ_CTL:
		out_push(k, k->control);
		break;
	case CMD_WRITE_CTL:
	case CMD_WRITE_OUTP:
	case CMD_WRITE_KBD_OB:
	case CMD_WRITE_AUX_OB:
	case CMD_WRITE_AUX:
		k->cmd = cmd; /* the data byte follows at 0x60 */
		break;
	case CMD_AUX_DISABLE:
		write_control(k, k->control | CTL_AUX_DIS);
		break;
	case CMD_AUX_ENABLE:
		/* there is no aux port to enable: AUX_DIS stays set, as Linux checks */
		break;
	case CMD_AUX_TEST:
		out_push(k, AUX_TEST_NONE);
		break;
	case CMD_SELF_TEST:
		out_push(k, SELF_TEST_OK);
		break;
	case CMD_KBD_TEST:
		out_push(k, KBD_TEST_OK);
		break;
	case CMD_KBD_DISABLE:
		write_control(k, k->control | CTL_KBD_DIS);
		break;
	case CMD_KBD_ENABLE:
		write_control(k, k->control & (uint8_t)~CTL_KBD_DIS);
		break;
	case CMD_READ_OUTP:
		out_push(k, k->outport);
		break;
	default:
		/* pulse output port lines whose bit is 0 in the low nibble */
		if (cmd >= CMD_PULSE_BASE)
			return !(cmd & OUTP_RESET);
		log_debug("ignoring controller command 0x%02x", cmd);
		break;
	}
	return false;
}

/* The data byte of a pending controller command. True: CPU reset. */
static bool command_data(struct i8042 *k, uint8_t cmd, uint8_t val)
{
	switch (cmd) {
	case CMD_WRITE_CTL:
		write_control(k, val);
		break;
	case CMD_WRITE_OUTP:
		k->outport = val;
		return !(val & OUTP_RESET);
	case CMD_WRITE_KBD_OB:
		out_push(k, val);
		break;
	default: /* CMD_WRITE_AUX_OB, CMD_WRITE_AUX: no aux device listens */
		break;
	}
	return false;
}

/* A byte for the keyboard: a command, or the parameter of the previous one. */
static void keyboard_write(struct i8042 *k, uint8_t val)
{
	uint8_t cmd = k->kbd_cmd;
	k->kbd_cmd = 0;
	if (cmd) {
		out_push(k, KBD_ACK);
		if (cmd == KBD_SCAN_SET && val == 0)
			out_push(k, 2); /* "which set": 2 (not translated) */
		return;
	}

	switch (val) {
	case KBD_SET_LEDS:
	case KBD_SCAN_SET:
	case KBD_TYPEMATIC:
		k->kbd_cmd = val;
		out_push(k, KBD_ACK);
		break;
	case KBD_ECHO:
		out_push(k, KBD_ECHO);
		break;
	case KBD_GET_ID:
		out_push(k, KBD_ACK);
		out_push(k, KBD_ID_0);
		out_push(k, (k->control & CTL_XLATE) ? KBD_ID_1_XLAT : KBD_ID_1);
		break;
	case KBD_RESET:
		out_push(k, KBD_ACK);
		out_push(k, KBD_BAT_OK);
		break;
	default: /* enable, disable, set defaults, ...: acknowledged */
		out_push(k, KBD_ACK);
		break;
	}
}

/* Port 0x60 or 0x64 (a 1-byte range each: offset is always 0); 8-bit only. */
static void i8042_read(struct i8042 *k, bool data_port, uint8_t *data, uint32_t len)
{
	if (len != 1)
		return;
	pthread_mutex_lock(&k->lock);
	if (data_port) {
		*data = out_pop(k);
		/* the byte was taken: the line drops, and rises again for the next */
		set_line(k, false);
		update_irq(k);
	} else {
		*data = k->status | (k->out_count ? STS_OBF : 0);
	}
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write(struct i8042 *k, bool data_port, const uint8_t *data, uint32_t len)
{
	if (len != 1)
		return;
	uint8_t val = *data;
	bool reset;

	pthread_mutex_lock(&k->lock);
	if (data_port) {
		k->status &= (uint8_t)~STS_CMD;
		uint8_t cmd = k->cmd;
		k->cmd = 0;
		if (cmd) {
			reset = command_data(k, cmd, val);
		} else {
			keyboard_write(k, val);
			reset = false;
		}
	} else {
		k->status |= STS_CMD;
		reset = controller_command(k, val);
	}
	update_irq(k);
	pthread_mutex_unlock(&k->lock);

	/* unlocked: the VMM's reset handler may do anything, even touch us */
	if (reset && k->reset)
		k->reset(k->reset_opaque);
}

static void data_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	(void)offset;
	i8042_read(opaque, true, data, len);
}

static void data_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	(void)offset;
	i8042_write(opaque, true, data, len);
}

static void cmd_read(void *opaque, uint64_t offset, void *data, uint32_t len)
{
	(void)offset;
	i8042_read(opaque, false, data, len);
}

static void cmd_write(void *opaque, uint64_t offset, const void *data, uint32_t len)
{
	(void)offset;
	i8042_write(opaque, false, data, len);
}

static const struct bus_dev_ops data_ops = {.read = data_read, .write = data_write};
static const struct bus_dev_ops cmd_ops = {.read = cmd_read, .write = cmd_write};

int i8042_init(struct i8042 *k, i8042_reset_fn reset, void *reset_opaque, serial_irq_fn irq,
               void *irq_opaque)
{
	if (!k)
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	int ret = pthread_mutex_init(&k->lock, NULL);
	if (ret)
		return -ret;
	k->reset = reset;
	k->reset_opaque = reset_opaque;
	k->irq = irq;
	k->irq_opaque = irq_opaque;
	k->status = STS_UNLOCKED;
	k->outport = OUTP_DEFAULT;
	write_control(k, CTL_DEFAULT);
	return 0;
}

int i8042_attach(struct i8042 *k, struct bus *pio)
{
	if (!k || !pio)
		return -EINVAL;
	/* two 1-byte ranges: 0x61-0x63 belong to others (0x61: PIT speaker gate) */
	int ret = bus_register(pio, I8042_DATA_PORT, 1, &data_ops, k, "i8042-data");
	if (ret < 0)
		return ret;
	ret = bus_register(pio, I8042_COMMAND_PORT, 1, &cmd_ops, k, "i8042-cmd");
	if (ret < 0)
		bus_unregister(pio, I8042_DATA_PORT);
	return ret;
}

/* Ctrl, Alt, Del pressed, then Del, Alt, Ctrl released. */
static const uint8_t cad_set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
static const uint8_t cad_set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
                                   0x71, 0xf0, 0x11, 0xf0, 0x14};

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	int ret = 0;
	pthread_mutex_lock(&k->lock);
	bool set1 = k->control & CTL_XLATE;
	const uint8_t *codes = set1 ? cad_set1 : cad_set2;
	unsigned n = set1 ? sizeof(cad_set1) : sizeof(cad_set2);
	if (out_room(k) < n) {
		ret = -ENOSPC;
	} else {
		for (unsigned i = 0; i < n; i++)
			out_push(k, codes[i]);
		update_irq(k);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}
