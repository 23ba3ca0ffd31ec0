// SPDX-License-Identifier: Apache-2.0
/*
 * net: exchanges Ethernet frames with a host process through the first
 * virtio-net device (tools/net_echo.py is such a process).
 *
 * Every frame the guest sends: dst (net.dst, default broadcast), src (the
 * device's MAC), EtherType 0x88b5, then "KILN", seq (le32), seed (le32),
 * frame length (le16), and bytes k = 30 .. len-1 of the frame holding
 * (k * 7 + seq * 13 + seed) & 0xff. The host answers each with dst = the
 * guest's MAC, EtherType 0x88b6 and the rest unchanged; the guest checks
 * every byte and that every seq comes back exactly once. Other frames
 * (the host's own traffic on a tap) are ignored.
 *
 *   net.mode=echo (default): net.count frames (64) of net.size bytes
 *     (1000; 60..1514), net.window in flight (16):
 *     "net: sent K, received K, ok".
 *   net.mode=bench: the same for net.ms milliseconds (1000), then frames/s
 *     and MB/s each way.
 *   net.mode=tx: sends for net.ms without waiting for answers.
 * net.mrg=0 refuses VIRTIO_NET_F_MRG_RXBUF; net.rxbuf=N sets the receive
 * buffer size (2048; smaller with mrg makes the device merge buffers).
 * net.seed (1), net.timeout_ms (5000, without progress).
 */
#include "rt/virtio_drv.h"

#define ETH_TYPE_REQ   0x88b5
#define ETH_TYPE_REPLY 0x88b6
#define HDR_BYTES      30 /* Ethernet header 14 + magic 4 + seq 4 + seed 4 + len 2 */
#define MAX_FRAMES     (1u << 20)
#define LOST_MS        100 /* bench: unanswered this long counts as lost */

static struct vnet n;
static uint8_t dst[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static uint32_t seed, size, window;
static uint8_t *seen; /* per seq, for echo mode */

static void put16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void build(uint8_t *f, uint32_t seq)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, n.mac, 6);
	put16be(f + 12, ETH_TYPE_REQ);
	memcpy(f + 14, "KILN", 4);
	memcpy(f + 18, &seq, 4);
	memcpy(f + 22, &seed, 4);
	uint16_t len = (uint16_t)size;
	memcpy(f + 26, &len, 2);
	f[28] = f[29] = 0;
	for (uint32_t k = HDR_BYTES; k < size; k++)
		f[k] = (uint8_t)(k * 7 + seq * 13 + seed);
}

/* 1: a good reply (its seq in *seq), 0: not ours, -KRT_EINVAL: ours but wrong */
static int check_reply(const uint8_t *f, size_t len, uint32_t *seq)
{
	if (len < HDR_BYTES || f[12] != (ETH_TYPE_REPLY >> 8) || f[13] != (ETH_TYPE_REPLY & 0xff) ||
	    memcmp(f + 14, "KILN", 4) != 0)
		return 0;
	uint32_t s, sd;
	memcpy(&s, f + 18, 4);
	memcpy(&sd, f + 22, 4);
	*seq = s;
	if (memcmp(f, n.mac, 6) != 0 || sd != seed || len != size) {
		krt_printf("net: BAD reply seq %u: len %lu (want %u), seed %u, dst %s\n", s, len,
		           size, sd, memcmp(f, n.mac, 6) ? "not ours" : "ours");
		return -KRT_EINVAL;
	}
	for (uint32_t k = HDR_BYTES; k < len; k++)
		if (f[k] != (uint8_t)(k * 7 + s * 13 + seed)) {
			krt_printf("net: BAD reply seq %u: byte %u is 0x%x\n", s, k, f[k]);
			return -KRT_EINVAL;
		}
	return 1;
}

static int parse_mac(const char *s, size_t len, uint8_t mac[6])
{
	if (len != 17)
		return -KRT_EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		uint8_t v = 0;
		for (unsigned j = 0; j < 2; j++) {
			char c = s[i * 3 + j];
			unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
			             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
			             : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
			                                    : 16;
			if (d > 15)
				return -KRT_EINVAL;
			v = (uint8_t)(v << 4 | d);
		}
		if (i < 5 && s[i * 3 + 2] != ':')
			return -KRT_EINVAL;
		mac[i] = v;
	}
	return 0;
}

struct counts {
	uint32_t sent, received, lost;
	uint64_t t0, t_end;
};

/*
 * Sends up to `count` frames (0: until net.ms passed), keeping `window`
 * unanswered, and takes the replies when `echo`. 0 or 1 (failed).
 */
static int exchange(struct counts *c, uint32_t count, bool echo, uint64_t ms)
{
	static uint8_t frame[2048];
	uint64_t hz = krt_tsc_hz(), timeout = krt_param_u64("net.timeout_ms", 5000) * (hz / 1000);
	uint64_t stop = ms ? krt_rdtsc() + ms * (hz / 1000) : UINT64_MAX, progress;
	int ret;

	c->t0 = progress = krt_rdtsc();
	for (;;) {
		bool sending = count ? c->sent < count : krt_rdtsc() < stop;
		bool queued = false;
		while (sending && (!echo || c->sent - c->received - c->lost < window) &&
		       (!count || c->sent < count)) {
			build(frame, c->sent);
			if ((ret = vnet_send(&n, frame, size)) == -KRT_ENOSPC)
				break;
			if (ret < 0)
				goto err_io;
			c->sent++;
			queued = true;
		}
		if (queued)
			vnet_kick_tx(&n);
		if (!echo && !sending)
			break;
		if (echo && !sending && c->received + c->lost == c->sent)
			break;
		size_t len;
		uint32_t seq;
		while ((ret = vnet_recv(&n, frame, sizeof(frame), &len)) == 1) {
			int ok = check_reply(frame, len, &seq);
			if (ok < 0)
				return 1;
			if (ok == 0)
				continue;
			if (seq >= c->sent || (seen && seen[seq])) {
				krt_printf("net: BAD reply seq %u (sent %u)%s\n", seq, c->sent,
				           seq < c->sent ? ", a duplicate" : "");
				return 1;
			}
			if (seen)
				seen[seq] = 1;
			if (c->lost && c->received + c->lost == c->sent)
				c->lost--; /* bench: late, not lost */
			c->received++;
			progress = krt_rdtsc();
		}
		if (ret < 0)
			goto err_io;
		if ((ret = vnet_reap_tx(&n)) < 0)
			goto err_io;
		if (ret > 0 && !echo)
			progress = krt_rdtsc();
		if (!count && echo && krt_rdtsc() - progress > LOST_MS * (hz / 1000)) {
			/* a benchmark goes on when the host dropped frames */
			c->lost = c->sent - c->received;
			progress = krt_rdtsc();
		}
		if (krt_rdtsc() - progress > timeout) {
			krt_printf("net: FAILED: timeout: sent %u, received %u\n", c->sent,
			           c->received);
			return 1;
		}
	}
	c->t_end = krt_rdtsc();
	return 0;

err_io:
	krt_printf("net: FAILED: device error %d (status 0x%x)\n", ret, virtio_status(&n.dev));
	return 1;
}

static void print_rate(const char *what, uint32_t frames, uint64_t ticks)
{
	uint64_t hz = krt_tsc_hz();
	unsigned __int128 bytes = (unsigned __int128)frames * size;
	uint64_t tenths = ticks ? (uint64_t)(bytes * hz / ticks / 100000) : 0;
	uint64_t fps = ticks ? (uint64_t)((unsigned __int128)frames * hz / ticks) : 0;
	krt_printf("net bench: %s size %u window %u: %lu.%lu MB/s %lu frames/s (%u frames, %lu "
	           "ms)\n",
	           what, size, window, tenths / 10, tenths % 10, fps, frames, ticks * 1000 / hz);
}

int main(void)
{
	size_t len;
	const char *v = krt_param("net.dst", &len);
	seed = (uint32_t)krt_param_u64("net.seed", 1);
	size = (uint32_t)krt_param_u64("net.size", 1000);
	window = (uint32_t)krt_param_u64("net.window", 16);
	uint32_t count = (uint32_t)krt_param_u64("net.count", 64);
	if ((v && parse_mac(v, len, dst) < 0) || size < 60 || size > VNET_FRAME_MAX ||
	    window == 0 || count == 0 || count > MAX_FRAMES) {
		krt_printf("net: FAILED: bad parameters\n");
		return 1;
	}
	int ret = vnet_open(&n, (unsigned)krt_param_u64("net.nth", 0),
	                    krt_param_u64("net.mrg", 1) != 0,
	                    (uint32_t)krt_param_u64("net.rxbuf", 0));
	if (ret < 0) {
		krt_printf("net: FAILED: no network device (%d)\n", ret);
		virtio_print_devices();
		return 1;
	}
	krt_printf("net: mac %02x:%02x:%02x:%02x:%02x:%02x, queues %u/%u, mrg_rxbuf %s, rx "
	           "buffers %u bytes, features 0x%lx\n",
	           n.mac[0], n.mac[1], n.mac[2], n.mac[3], n.mac[4], n.mac[5], n.rx.size, n.tx.size,
	           n.mrg ? "on" : "off", n.rx_buf_size, n.dev.features);
	struct counts c = {0};
	uint64_t ms = krt_param_u64("net.ms", 1000);
	if (krt_param_is("net.mode", "tx")) {
		if (exchange(&c, 0, false, ms))
			return 1;
		print_rate("tx", c.sent, c.t_end - c.t0);
		return 0;
	}
	if (krt_param_is("net.mode", "bench")) {
		if (exchange(&c, 0, true, ms))
			return 1;
		print_rate("echo", c.received, c.t_end - c.t0);
		krt_printf("net bench: %u sent, %u answered, %u lost\n", c.sent, c.received,
		           c.lost);
		return 0;
	}
	seen = krt_alloc_pages((count + KRT_PAGE_SIZE - 1) / KRT_PAGE_SIZE, KRT_PAGE_SIZE);
	if (!seen || exchange(&c, count, true, 0))
		return 1;
	krt_printf("net: sent %u, received %u, ok\n", c.sent, c.received);
	return 0;
}
