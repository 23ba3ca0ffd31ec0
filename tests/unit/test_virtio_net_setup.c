// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for virtio/net's life cycle: creation errors a user can cause,
 * run-time limiter updates, and saved state. Same rig as test_virtio_net.c
 * (a tap in a private network namespace; root needed).
 */
#include "net_rig.h"

#include <linux/capability.h>
#include <sys/syscall.h>

static void create_fails(const struct virtio_net_params *p, int err, const char *text)
{
	struct virtio_net *n = NULL;
	struct errbuf e = {{0}};
	cr_assert_eq(virtio_net_create(&n, p, &e), -err, "%s", e.msg);
	cr_assert_null(n);
	cr_assert(strstr(e.msg, text), "message \"%s\" lacks \"%s\"", e.msg, text);
}

/* drops CAP_NET_ADMIN from this (test) thread's effective set */
static void drop_net_admin(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	cr_assert_eq(syscall(SYS_capget, &h, d), 0);
	d[0].effective &= ~(1u << CAP_NET_ADMIN);
	cr_assert_eq(syscall(SYS_capset, &h, d), 0, "%s", strerror(errno));
}

Test(net_setup, create_reports_what_is_wrong)
{
	netns_up();
	struct virtio_net_params p = {.id = "net0", .tap_name = "nosuch0"};
	create_fails(&p, ENODEV, "no network interface named nosuch0");
	p.tap_name = "lo";
	create_fails(&p, EINVAL, "lo is not a tap");
	p.tap_name = "";
	create_fails(&p, EINVAL, "host_dev_name");
	p.tap_name = "a-name-longer-than-15";
	create_fails(&p, ENAMETOOLONG, "longer than 15");
	p.tap_name = TAP;
	p.id = "";
	create_fails(&p, EINVAL, "id must be");
	p.id = "net0";
	p.mtu = 67;
	create_fails(&p, EINVAL, "mtu 67 is not in 68..65535");
	p.mtu = 65536;
	create_fails(&p, EINVAL, "mtu 65536");
	p.mtu = 0;
	struct rl_bucket_cfg bad = {.size = 1, .refill_time_ms = UINT64_MAX};
	p.tx_ops = &bad;
	create_fails(&p, EINVAL, "tx_rate_limiter: ops refill_time");
	p.tx_ops = NULL;

	/* busy: another fd holds the tap */
	struct ifreq ifr = {0};
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	strcpy(ifr.ifr_name, TAP);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	cr_assert_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
	create_fails(&p, EBUSY, "busy");
	close(fd);

	/* permission: a tap of another user, and no CAP_NET_ADMIN */
	make_tap("kt1", 4242);
	p.tap_name = "kt1";
	drop_net_admin();
	create_fails(&p, EPERM, "permission denied");
	cr_assert_eq(if_nametoindex("nosuch0"), 0, "a missing tap is never created");
}

Test(net_setup, update_changes_the_limiters_at_run_time)
{
	struct rig g;
	struct rl_bucket_cfg ops = {.size = 1, .refill_time_ms = 1000};
	struct rig_opts o = {.tx_ops = &ops};
	struct errbuf e = {{0}};
	uint8_t f[64], got[128];
	rig_up(&g, &o, 0);
	make_frame(f, sizeof(f), 1);
	for (int i = 0; i < 3; i++)
		tx_send(&g, f, sizeof(f), NULL, 0);
	cr_assert(wait_used(&g, TXQ, 1, 2000));
	usleep(100 * 1000);
	cr_assert_eq(used_idx(&g, TXQ), 1, "one frame per second, the clock stands still");

	/* an invalid RX change refuses the whole update, TX included */
	struct rl_bucket_cfg bad = {.size = 1, .refill_time_ms = UINT64_MAX};
	struct rl_bucket_cfg none = {0};
	cr_assert_eq(virtio_net_update(g.net, true, &bad, NULL, true, NULL, &none, &e), -EINVAL);
	cr_assert(strstr(e.msg, "rx_rate_limiter"), "%s", e.msg);
	struct rl_bucket_cfg rb, ro, tb, to;
	virtio_net_limiter_cfg(g.net, &rb, &ro, &tb, &to);
	cr_assert(to.size == 1 && to.refill_time_ms == 1000, "unchanged");

	/* remove the TX ops bucket, add an RX bandwidth bucket */
	struct rl_bucket_cfg rx_bw = {.size = 5000, .one_time_burst = 100, .refill_time_ms = 10};
	cr_assert_eq(virtio_net_update(g.net, true, &rx_bw, NULL, true, NULL, &none, &e), 0, "%s",
	             e.msg);
	virtio_net_limiter_cfg(g.net, &rb, &ro, &tb, &to);
	cr_assert(rb.size == 5000 && rb.one_time_burst == 100 && rb.refill_time_ms == 10);
	cr_assert(ro.size == 0 && tb.size == 0 && to.size == 0);
	/* the block in progress runs out (Firecracker's update_buckets) */
	clock_advance(&g, 1000);
	cr_assert(wait_used(&g, TXQ, 3, 3000));
	for (int i = 0; i < 3; i++)
		cr_assert_eq(host_recv(&g, got, sizeof(got), 2000), (ssize_t)sizeof(f));
	rig_down(&g);
}

Test(net_setup, snapshot_gives_held_buffers_back)
{
	struct rig g;
	struct errbuf e = {{0}};
	uint8_t f1[300], f2[100], got[2048], hdr[12];
	unsigned nb;
	rig_up(&g, NULL, NF(MRG_RXBUF));
	/* 16 buffers of 256: the device takes 6 (one MTU-sized frame's worth) */
	rx_post(&g, 16, 256);
	make_frame(f1, sizeof(f1), 5);
	host_send(&g, f1, sizeof(f1));
	cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 10000), sizeof(f1));
	cr_assert_eq(nb, 2);
	usleep(20 * 1000);

	cr_assert_eq(virtio_mmio_pause(g.m), 0);
	struct state_writer w;
	sw_init(&w);
	cr_assert_eq(virtio_mmio_save(g.m, &w), 0);
	virtio_mmio_resume(g.m);
	/* a new device on the same tap and guest memory, as after a snapshot load */
	virtio_mmio_destroy(g.m);
	virtio_net_destroy(g.net);
	cr_assert_eq(rig_create(&g, NULL, &e), 0, "%s", e.msg);
	rig_transport(&g);
	struct state_reader r;
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(g.m, &r, &e), 0, "%s", e.msg);

	/* the next frame lands in buffer 2, right after the first frame's */
	make_frame(f2, sizeof(f2), 6);
	host_send(&g, f2, sizeof(f2));
	cr_assert_eq(rx_take(&g, got, sizeof(got), hdr, &nb, 10000), sizeof(f2));
	cr_assert_arr_eq(got, f2, sizeof(f2));
	uint32_t id, len;
	used_elem(&g, RXQ, 2, &id, &len);
	cr_assert_eq(id, 2);
	cr_assert_eq(len, sizeof(f2) + VIRTIO_NET_HDR_LEN);

	/* a state claiming more held buffers than were taken is refused */
	uint8_t *st = w.buf;
	size_t at = 0;
	for (int s = 0; s < 2; s++) { /* to the device section's first field */
		size_t idl = st[at];
		size_t body = at + 1 + idl + 2 + 4;
		if (s == 1) {
			st[body] = 0xff;
			break;
		}
		uint32_t plen;
		memcpy(&plen, st + at + 1 + idl + 2, 4);
		at = body + plen;
	}
	virtio_mmio_destroy(g.m);
	virtio_net_destroy(g.net);
	cr_assert_eq(rig_create(&g, NULL, &e), 0, "%s", e.msg);
	rig_transport(&g);
	sr_init(&r, w.buf, w.len);
	cr_assert_eq(virtio_mmio_restore(g.m, &r, &e), -EINVAL);
	cr_assert(strstr(e.msg, "receive buffers held"), "%s", e.msg);
	sw_free(&w);
	rig_down(&g);
}
