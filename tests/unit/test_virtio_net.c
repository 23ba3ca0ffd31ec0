// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio/net on a real tap. Each test runs in its own
 * process (criterion forks), which moves into a new network namespace and
 * creates the tap "kt0" there, so nothing reaches the machine's network.
 * The host side is an AF_PACKET socket on kt0 (a local experimental
 * EtherType); the guest side is a small virtio-mmio driver in the test,
 * through the transport's bus callbacks, without KVM. Needs root (skipped
 * otherwise).
 */
#include "net_rig.h"

Test(net, offers_features_and_config)
{
	struct rig g;
	rig_up(&g, NULL, 0);
	uint64_t f = g.offered;
	uint64_t want = NF(MAC) | NF(STATUS) | NF(MRG_RXBUF) | NF(CSUM) | NF(HOST_TSO4) |
	                NF(HOST_TSO6) | NF(GUEST_CSUM) | NF(GUEST_TSO4) | NF(GUEST_TSO6);
	cr_assert_eq(f & want, want, "offered 0x%llx", (unsigned long long)f);
	cr_assert_not(f & (NF(GUEST_ECN) | NF(HOST_ECN)), "ECN is not offered");
	uint8_t cfg[VIRTIO_NET_CONFIG_SIZE];
	for (unsigned i = 0; i < sizeof(cfg); i++)
		cfg[i] = (uint8_t)reg_read_n(&g, VIRTIO_MMIO_CONFIG + i, 1);
	cr_assert_arr_eq(cfg, guest_mac, 6);
	cr_assert_eq(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	cr_assert_eq(cfg[8] | cfg[9] << 8, 1, "max_virtqueue_pairs");
	cr_assert_not(f & NF(MTU), "no mtu given, none offered");
	rig_down(&g);

	/* without guest_mac, no VIRTIO_NET_F_MAC; an mtu is offered in the config */
	struct rig_opts o = {.no_mac = true, .mtu = 9000};
	rig_up(&g, &o, 0);
	cr_assert_not(g.offered & NF(MAC));
	cr_assert(g.offered & NF(MTU), "offered 0x%llx", (unsigned long long)g.offered);
	cr_assert_eq(reg_read_n(&g, VIRTIO_MMIO_CONFIG + 10, 2), 9000, "config mtu");
	rig_down(&g);
}

Test(net, transmitted_frames_reach_the_tap)
{
	struct rig g;
	uint8_t f1[60], f2[1514], f3[200], got[2048];
	rig_up(&g, NULL, 0);
	make_frame(f1, sizeof(f1), 1);
	make_frame(f2, sizeof(f2), 2);
	make_frame(f3, sizeof(f3), 3);
	tx_send(&g, f1, sizeof(f1), NULL, 0);   /* header and frame in one buffer */
	tx_send(&g, f2, sizeof(f2), NULL, 12);  /* header alone, then the frame */
	tx_send(&g, f3, sizeof(f3), NULL, 100); /* split inside the frame */
	cr_assert(wait_used(&g, TXQ, 3, 2000));
	for (uint16_t i = 0; i < 3; i++) {
		uint32_t id, len;
		used_elem(&g, TXQ, i, &id, &len);
		cr_assert_eq(len, 0, "s5.1.6.2: nothing written to transmit buffers");
	}
	cr_assert_eq(host_recv(&g, got, sizeof(got), 2000), (ssize_t)sizeof(f1));
	cr_assert_arr_eq(got, f1, sizeof(f1));
	cr_assert_eq(host_recv(&g, got, sizeof(got), 2000), (ssize_t)sizeof(f2));
	cr_assert_arr_eq(got, f2, sizeof(f2));
	cr_assert_eq(host_recv(&g, got, sizeof(got), 2000), (ssize_t)sizeof(f3));
	cr_assert_arr_eq(got, f3, sizeof(f3));
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_eq(m.tx_packets, 3);
	cr_assert_eq(m.tx_bytes, sizeof(f1) + sizeof(f2) + sizeof(f3));
	cr_assert_eq(m.tx_dropped, 0);
	rig_down(&g);
}

Test(net, received_frames_fill_single_buffers)
{
	struct rig g;
	uint8_t f[3][1514], got[4096];
	size_t sizes[3] = {60, 1514, 333};
	rig_up(&g, NULL, 0); /* no MRG_RXBUF: one buffer per frame */
	rx_post(&g, 4, 1526);
	for (int i = 0; i < 3; i++) {
		make_frame(f[i], sizes[i], 10 + i);
		host_send(&g, f[i], sizes[i]);
	}
	for (int i = 0; i < 3; i++) {
		uint8_t hdr[12];
		unsigned nb;
		size_t n = rx_take(&g, got, sizeof(got), hdr, &nb, 2000);
		cr_assert_eq(n, sizes[i]);
		cr_assert_arr_eq(got, f[i], sizes[i]);
		cr_assert_eq(nb, 1, "s5.1.6.4.1: num_buffers 1 without MRG_RXBUF");
		cr_assert_eq(hdr[0], 0, "flags 0 without GUEST_CSUM");
		cr_assert_eq(hdr[1], VIRTIO_NET_HDR_GSO_NONE);
	}
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_eq(m.rx_packets, 3);
	cr_assert_eq(m.rx_bytes, 60 + 1514 + 333);
	rig_down(&g);
}

Test(net, mergeable_buffers_hold_one_frame_over_several)
{
	struct rig g;
	uint8_t f1[1000], f2[60], got[4096], hdr[12];
	unsigned nb;
	rig_up(&g, NULL, NF(MRG_RXBUF));
	rx_post(&g, 16, 256);
	make_frame(f1, sizeof(f1), 21);
	make_frame(f2, sizeof(f2), 22);
	host_send(&g, f1, sizeof(f1));
	host_send(&g, f2, sizeof(f2));
	cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 2000), sizeof(f1));
	cr_assert_arr_eq(got, f1, sizeof(f1));
	cr_assert_eq(nb, 4, "1012 bytes over 256-byte buffers");
	uint32_t id, len;
	for (uint16_t i = 0; i < 3; i++) {
		used_elem(&g, RXQ, i, &id, &len);
		cr_assert_eq(id, i, "buffers used in ring order");
		cr_assert_eq(len, 256, "s5.1.6.4.1: all but the last buffer full");
	}
	used_elem(&g, RXQ, 3, &id, &len);
	cr_assert_eq(len, 1012 - 3 * 256);
	cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 2000), sizeof(f2));
	cr_assert_arr_eq(got, f2, sizeof(f2));
	cr_assert_eq(nb, 1);
	used_elem(&g, RXQ, 4, &id, &len);
	cr_assert_eq(id, 4, "the next frame starts in the next buffer");
	rig_down(&g);
}

Test(net, without_buffers_frames_wait_in_the_tap)
{
	struct rig g;
	uint8_t f[5][100], got[2048], hdr[12];
	unsigned nb;
	rig_up(&g, NULL, NF(MRG_RXBUF));
	for (int i = 0; i < 5; i++) {
		make_frame(f[i], sizeof(f[i]), 30 + i);
		host_send(&g, f[i], sizeof(f[i]));
	}
	double cpu0 = cpu_seconds();
	usleep(300 * 1000);
	double cpu = cpu_seconds() - cpu0;
	cr_assert_lt(cpu, 0.1, "the device waits without spinning (%.3f s of CPU in 0.3 s)", cpu);
	cr_assert_eq(used_idx(&g, RXQ), 0);
	rx_post(&g, 8, 1526);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 2000), sizeof(f[i]));
		cr_assert_arr_eq(got, f[i], sizeof(f[i]), "frame %d in order", i);
	}
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_eq(m.rx_dropped, 0);
	cr_assert_eq(m.rx_packets, 5);
	rig_down(&g);
}

Test(net, a_frame_larger_than_the_buffer_is_dropped)
{
	struct rig g;
	uint8_t big[1000], small[80], got[2048], hdr[12];
	unsigned nb;
	rig_up(&g, NULL, 0);
	rx_post(&g, 1, 512);
	make_frame(big, sizeof(big), 40);
	make_frame(small, sizeof(small), 41);
	host_send(&g, big, sizeof(big));
	host_send(&g, small, sizeof(small));
	/* the buffer that could not hold the first frame takes the second */
	cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 2000), sizeof(small));
	cr_assert_arr_eq(got, small, sizeof(small));
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_eq(m.rx_dropped, 1);
	cr_assert_not(virtio_dev_broken(virtio_net_dev(g.net)));
	rig_down(&g);
}

Test(net, a_deleted_tap_drops_frames_and_the_device_goes_on)
{
	struct rig g;
	uint8_t f[100];
	rig_up(&g, NULL, 0);
	rx_post(&g, 4, 1526);
	uint32_t gen = reg_read_n(&g, VIRTIO_MMIO_CONFIG_GENERATION, 4);
	cr_assert_eq(system("ip link del " TAP), 0);
	make_frame(f, sizeof(f), 50);
	tx_send(&g, f, sizeof(f), NULL, 0);
	tx_send(&g, f, sizeof(f), NULL, 0);
	cr_assert(wait_used(&g, TXQ, 2, 2000), "transmit buffers are still given back");
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_eq(m.tx_dropped, 2);
	cr_assert_eq(m.tx_packets, 0);
	cr_assert_geq(m.tap_errors, 1);
	cr_assert_not(virtio_dev_broken(virtio_net_dev(g.net)));
	cr_assert_eq(reg_read_n(&g, VIRTIO_MMIO_CONFIG + 6, 2) & VIRTIO_NET_S_LINK_UP, 0,
	             "the link is down");
	cr_assert_neq(reg_read_n(&g, VIRTIO_MMIO_CONFIG_GENERATION, 4), gen);
	cr_assert(reg_read_n(&g, VIRTIO_MMIO_INTERRUPT_STATUS, 4) & VIRTIO_MMIO_INT_CONFIG);
	rig_down(&g);
}

Test(net, a_tap_that_is_down_drops_until_it_is_up)
{
	struct rig g;
	uint8_t f[100], got[256];
	rig_up(&g, NULL, 0);
	make_frame(f, sizeof(f), 60);
	link_set_up(false);
	tx_send(&g, f, sizeof(f), NULL, 0);
	cr_assert(wait_used(&g, TXQ, 1, 2000));
	link_set_up(true);
	tx_send(&g, f, sizeof(f), NULL, 0);
	cr_assert(wait_used(&g, TXQ, 2, 2000));
	cr_assert_eq(host_recv(&g, got, sizeof(got), 2000), (ssize_t)sizeof(f));
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_eq(m.tx_dropped, 1);
	cr_assert_eq(m.tx_packets, 1);
	cr_assert_eq(reg_read_n(&g, VIRTIO_MMIO_CONFIG + 6, 2), VIRTIO_NET_S_LINK_UP);
	rig_down(&g);
}

Test(net, rx_bandwidth_limit_with_a_fake_clock)
{
	struct rig g;
	struct rl_bucket_cfg bw = {.size = 1000, .refill_time_ms = 1000};
	struct rig_opts o = {.rx_bw = &bw};
	uint8_t f[400], got[2048], hdr[12];
	unsigned nb;
	rig_up(&g, &o, 0);
	rx_post(&g, 8, 1526);
	for (int i = 0; i < 4; i++) {
		make_frame(f, sizeof(f), 70 + i);
		host_send(&g, f, sizeof(f));
	}
	/* 1000 bytes admit two 400-byte frames; the clock stands still */
	cr_assert(wait_used(&g, RXQ, 2, 2000));
	usleep(400 * 1000);
	cr_assert_eq(used_idx(&g, RXQ), 2, "no third frame while the clock stands still");
	/* 200 ms of refill make 200 bytes: with the 200 left, the third fits */
	clock_advance(&g, 200);
	cr_assert(wait_used(&g, RXQ, 3, 3000));
	usleep(300 * 1000);
	cr_assert_eq(used_idx(&g, RXQ), 3);
	clock_advance(&g, 400);
	cr_assert(wait_used(&g, RXQ, 4, 3000));
	for (int i = 0; i < 4; i++) {
		make_frame(f, sizeof(f), 70 + i);
		cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 100), sizeof(f));
		cr_assert_arr_eq(got, f, sizeof(f), "frame %d", i);
	}
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_geq(m.rx_throttled, 2);
	cr_assert_eq(m.rx_dropped, 0);
	rig_down(&g);
}

Test(net, tx_ops_limit_with_a_fake_clock)
{
	struct rig g;
	struct rl_bucket_cfg ops = {.size = 2, .refill_time_ms = 1000};
	struct rig_opts o = {.tx_ops = &ops};
	uint8_t f[5][64], got[256];
	rig_up(&g, &o, 0);
	for (int i = 0; i < 5; i++) {
		make_frame(f[i], sizeof(f[i]), 80 + i);
		tx_send(&g, f[i], sizeof(f[i]), NULL, 0);
	}
	cr_assert(wait_used(&g, TXQ, 2, 2000));
	usleep(300 * 1000);
	cr_assert_eq(used_idx(&g, TXQ), 2, "two frames per second, and the clock stands still");
	clock_advance(&g, 1000);
	cr_assert(wait_used(&g, TXQ, 4, 3000));
	clock_advance(&g, 500);
	cr_assert(wait_used(&g, TXQ, 5, 3000));
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(host_recv(&g, got, sizeof(got), 2000), (ssize_t)sizeof(f[i]));
		cr_assert_arr_eq(got, f[i], sizeof(f[i]), "frame %d in order", i);
	}
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_geq(m.tx_throttled, 2);
	rig_down(&g);
}

/* s5.1.6.2.1 violations and short chains: NEEDS_RESET, the process lives on */
Test(net, protocol_violations_break_the_device)
{
	static const struct {
		const char *what;
		uint8_t hdr[12];
		uint64_t feat;
		size_t split; /* SIZE_MAX: an 8-byte chain */
	} cases[] = {
	        {"NEEDS_CSUM without CSUM", {1, 0, 0, 0, 0, 0, 14, 0, 16, 0}, 0, 0},
	        {"TSO4 without HOST_TSO4", {1, 1, 54, 0, 200, 5, 34, 0, 16, 0}, NF(CSUM), 0},
	        {"GSO without NEEDS_CSUM", {0, 1, 54, 0, 200, 5}, NF(CSUM) | NF(HOST_TSO4), 0},
	        {"GSO with gso_size 0",
	         {1, 4, 54, 0, 0, 0, 54, 0, 16, 0},
	         NF(CSUM) | NF(HOST_TSO6),
	         0},
	        {"unknown gso_type",
	         {1, 9, 54, 0, 200, 5, 34, 0, 16, 0},
	         NF(CSUM) | NF(HOST_TSO4),
	         0},
	        {"ECN not offered",
	         {1, 0x81, 54, 0, 200, 5, 34, 0, 16, 0},
	         NF(CSUM) | NF(HOST_TSO4),
	         0},
	        {"short chain", {0}, 0, SIZE_MAX},
	};
	struct rig g;
	uint8_t f[100];
	make_frame(f, sizeof(f), 90);
	rig_up(&g, NULL, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		driver_init(&g, cases[i].feat);
		if (cases[i].split == SIZE_MAX)
			tx_send_raw(&g, f, 8);
		else
			tx_send(&g, f, sizeof(f), cases[i].hdr, 0);
		cr_assert(wait_status(&g, VIRTIO_STATUS_DEVICE_NEEDS_RESET, 2000), "%s",
		          cases[i].what);
		cr_assert_eq(used_idx(&g, TXQ), 0, "%s", cases[i].what);
	}
	/* a reset brings it back */
	driver_init(&g, 0);
	uint8_t got[256];
	tx_send(&g, f, sizeof(f), NULL, 0);
	cr_assert(wait_used(&g, TXQ, 1, 2000));
	cr_assert_eq(host_recv(&g, got, sizeof(got), 2000), (ssize_t)sizeof(f));
	rig_down(&g);
}

Test(net, bad_receive_buffers_break_the_device)
{
	struct rig g;
	uint8_t f[100];
	make_frame(f, sizeof(f), 95);
	rig_up(&g, NULL, NF(MRG_RXBUF));
	rx_post(&g, 1, 8); /* s5.1.6.3.1: smaller than the header */
	cr_assert(wait_status(&g, VIRTIO_STATUS_DEVICE_NEEDS_RESET, 2000));
	driver_init(&g, 0);
	rx_post_readable(&g, 1526); /* receive buffers are device-writable */
	cr_assert(wait_status(&g, VIRTIO_STATUS_DEVICE_NEEDS_RESET, 2000));
	driver_init(&g, 0);
	rx_post(&g, 1, 1526);
	host_send(&g, f, sizeof(f));
	cr_assert(wait_used(&g, RXQ, 1, 2000), "works again after a reset");
	rig_down(&g);
}

Test(net, tap_offloads_follow_the_driver)
{
	struct rig g;
	rig_up(&g, NULL, NF(GUEST_CSUM) | NF(GUEST_TSO4) | NF(GUEST_TSO6));
	cr_assert_eq(ethtool_get(ETHTOOL_GTXCSUM), 1, "the tap may hand over partial checksums");
	cr_assert_eq(ethtool_get(ETHTOOL_GTSO), 1, "and TSO frames");
	driver_init(&g, NF(GUEST_CSUM));
	cr_assert_eq(ethtool_get(ETHTOOL_GTXCSUM), 1);
	cr_assert_eq(ethtool_get(ETHTOOL_GTSO), 0, "no TSO for a driver without GUEST_TSO");
	driver_init(&g, 0);
	cr_assert_eq(ethtool_get(ETHTOOL_GTXCSUM), 0, "full checksums for this driver");
	rig_down(&g);
}

/* ------------------------------------------- issue 9: the device's own bounds */

#define BIG_QSZ  1024
#define BIG_RING 0x20000ull  /* descriptors (16 KiB); avail at +0x4000, used at +0x6000 */
#define TINY_BUF 0x600000ull /* 16 bytes per descriptor */

/* offers `n` receive buffers of `size` bytes, TINY_BUF + 16 * i, on the big ring */
static void big_rx_post(struct rig *g, uint16_t *avail, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (uint16_t)(*avail % BIG_QSZ);
		vfd_put_desc(&g->gm, BIG_RING, d, TINY_BUF + 16ull * d, size, VIRTQ_DESC_F_WRITE,
		             0);
		vfd_offer(&g->gm, g->m, RXQ, BIG_RING + 0x4000, BIG_QSZ, avail, d, i + 1 == n);
	}
}

/*
 * The receive side bounds its table of held buffers itself. As if the
 * transport had let a 1024-entry receive queue through: with MRG_RXBUF and
 * GUEST_TSO4 (64 KiB of buffers wanted before a read) and 1024 posted
 * 12-byte buffers, the device holds no more than its table takes, and a
 * frame still arrives whole, with the link up.
 */
Test(net, receive_holds_no_more_buffers_than_its_table)
{
	struct rig g;
	uint8_t f[60], got[6 * VIRTIO_NET_HDR_LEN], hdr[VIRTIO_NET_HDR_LEN];
	uint16_t avail = 0;
	rig_up(&g, NULL, NF(MRG_RXBUF) | NF(GUEST_CSUM) | NF(GUEST_TSO4));
	memset(gm_ptr(&g.gm, BIG_RING, 0x9000), 0, 0x9000);
	vfd_queue_force(g.m, RXQ, BIG_QSZ, BIG_RING, BIG_RING + 0x4000, BIG_RING + 0x6000);
	big_rx_post(&g, &avail, BIG_QSZ, VIRTIO_NET_HDR_LEN);
	make_frame(f, sizeof(f), 60);
	host_send(&g, f, sizeof(f));
	/* header and frame, 72 bytes, over six 12-byte buffers */
	cr_assert(vfd_wait_used(&g.gm, BIG_RING + 0x6000, 6, 2000), "the frame did not arrive");
	size_t n = 0;
	for (uint16_t b = 0; b < 6; b++) {
		uint32_t id, len;
		vfd_used_elem(&g.gm, BIG_RING + 0x6000, BIG_QSZ, b, &id, &len);
		cr_assert_eq(id, b, "buffers used in ring order");
		cr_assert_eq(len, VIRTIO_NET_HDR_LEN);
		cr_assert_eq(gm_read(&g.gm, TINY_BUF + 16ull * id, b ? got + n : hdr, len), 0);
		n += b ? len : 0;
	}
	cr_assert_eq(hdr[10] | hdr[11] << 8, 6, "num_buffers");
	cr_assert_arr_eq(got, f, sizeof(f));
	cr_assert_eq(reg_read_n(&g, VIRTIO_MMIO_CONFIG + 6, 2) & VIRTIO_NET_S_LINK_UP,
	             VIRTIO_NET_S_LINK_UP, "the link went down");
	cr_assert_not(virtio_dev_broken(virtio_net_dev(g.net)));
	rig_down(&g);
}

/* whether the page of guest address `gpa` is marked written by the host */
static bool page_dirty(struct rig *g, uint64_t gpa)
{
	uint64_t p = (uint64_t)((uint8_t *)gm_ptr(&g->gm, gpa, 1) - g->gm.base) / GM_PAGE_SIZE;
	return __atomic_load_n(&g->gm.dirty[p / 64], __ATOMIC_SEQ_CST) & (1ull << (p % 64));
}

/*
 * Issue 9: a receive buffer the device took before a snapshot and fills
 * after it must reach the next Diff snapshot. Marking it dirty when it was
 * taken (queue.c) is not enough: the frame read into it later marks it too.
 */
Test(net, a_frame_marks_its_buffers_dirty_when_read)
{
	struct rig g;
	uint8_t f[200], got[2048], hdr[12];
	unsigned nb;
	rig_up(&g, NULL, 0); /* no MRG_RXBUF: the device holds one buffer */
	cr_assert_eq(gm_track_dirty(&g.gm), 0);
	rx_post(&g, 1, 1526);
	/* the device takes the buffer (the tap is empty) and keeps it */
	struct virtio_dev *d = virtio_net_dev(g.net);
	for (int i = 0;; i++) {
		cr_assert_eq(virtio_mmio_pause(g.m), 0);
		if (d->vq[RXQ].last_avail_idx == 1)
			break;
		virtio_mmio_resume(g.m);
		cr_assert_lt(i, 2000, "the device did not take the buffer");
		usleep(1000);
	}
	/* a snapshot now collects (and clears) what was written so far */
	cr_assert(page_dirty(&g, RXBUF), "taking a writable buffer marks it");
	for (size_t w = 0; w < gm_dirty_bitmap_words(&g.gm); w++)
		__atomic_store_n(&g.gm.dirty[w], 0, __ATOMIC_SEQ_CST);
	virtio_mmio_resume(g.m);

	make_frame(f, sizeof(f), 70);
	host_send(&g, f, sizeof(f));
	cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 2000), sizeof(f));
	cr_assert_arr_eq(got, f, sizeof(f));
	cr_assert(page_dirty(&g, RING(RXQ) + 0x2000), "the used ring is marked");
	cr_assert(page_dirty(&g, RXBUF), "the frame's buffer is not marked written");
	rig_down(&g);
}

/* ------------------------------------------------- issue 9: MRG_RXBUF */

/*
 * A driver with mergeable buffers that posts fewer bytes than the largest
 * frame the tap could hand over (a small pool, memory pressure) still
 * receives the frames its buffers can take: 1 KiB of buffers for a 1514-byte
 * MTU, 32 KiB with GUEST_TSO4 (64 KiB frames).
 */
Test(net, mergeable_buffers_smaller_than_the_largest_frame_still_receive)
{
	static const struct {
		uint64_t features;
		unsigned n;
		uint32_t size;
	} cases[] = {
	        {NF(MRG_RXBUF), 1, 1024},
	        {NF(MRG_RXBUF) | NF(GUEST_CSUM) | NF(GUEST_TSO4), 8, 4096},
	};
	struct rig g;
	uint8_t f[100], got[4096], hdr[12];
	unsigned nb;
	rig_up(&g, NULL, 0);
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		driver_init(&g, cases[i].features);
		rx_post(&g, cases[i].n, cases[i].size);
		make_frame(f, sizeof(f), 80 + i);
		host_send(&g, f, sizeof(f));
		cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 2000), sizeof(f), "case %u",
		             i);
		cr_assert_arr_eq(got, f, sizeof(f));
		cr_assert_eq(nb, 1);
	}
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_eq(m.rx_dropped, 0);
	rig_down(&g);
}

/*
 * A frame larger than the buffers held waits for more instead of being
 * dropped, and arrives whole once the driver added enough; one that all the
 * buffers the ring can hold are too small for is dropped, and the next
 * frame goes on.
 */
Test(net, mergeable_frame_waits_for_enough_buffers)
{
	struct rig g;
	uint8_t big[1200], small[50], got[4096], hdr[12];
	unsigned nb;
	rig_up(&g, NULL, NF(MRG_RXBUF));
	cr_assert_eq(gm_track_dirty(&g.gm), 0);
	rx_post(&g, 1, 512);
	make_frame(big, sizeof(big), 90);
	host_send(&g, big, sizeof(big));
	usleep(100 * 1000);
	cr_assert_eq(used_idx(&g, RXQ), 0, "1212 bytes do not fit 512");
	/* a snapshot while the frame waits: what is written later is marked again */
	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	for (size_t w = 0; w < gm_dirty_bitmap_words(&g.gm); w++)
		__atomic_store_n(&g.gm.dirty[w], 0, __ATOMIC_SEQ_CST);
	virtio_mmio_resume(g.m);
	rx_post(&g, 2, 512);
	cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 2000), sizeof(big));
	cr_assert_arr_eq(got, big, sizeof(big));
	cr_assert_eq(nb, 3);
	for (unsigned b = 0; b < 3; b++)
		cr_assert(page_dirty(&g, RXBUF + 0x1000ull * b), "buffer %u not marked", b);
	uint32_t id, len;
	used_elem(&g, RXQ, 2, &id, &len);
	cr_assert_eq(len, sizeof(big) + VIRTIO_NET_HDR_LEN - 2 * 512);

	/* the whole ring of 12-byte buffers cannot take it */
	driver_init(&g, NF(MRG_RXBUF));
	rx_post(&g, QSZ, VIRTIO_NET_HDR_LEN);
	host_send(&g, big, sizeof(big));
	make_frame(small, sizeof(small), 91);
	host_send(&g, small, sizeof(small));
	cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 2000), sizeof(small));
	cr_assert_arr_eq(got, small, sizeof(small));
	struct virtio_net_metrics m;
	virtio_net_metrics(g.net, &m);
	cr_assert_eq(m.rx_dropped, 1);
	cr_assert_eq(m.rx_packets, 2);
	rig_down(&g);
}
