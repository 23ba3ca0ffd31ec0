// SPDX-License-Identifier: Apache-2.0
/*
 * tests/unit/test_virtio_net_mmds.c: virtio/net_mmds.c, the MMDS on a
 * virtio-net device (the rig of net_rig.h: a tap in a private network
 * namespace, a polling driver): frames to the MMDS address never reach the
 * tap, the stack's answers come in on the receive queue (ARP, a handshake
 * sent with a partial checksum as Linux sends it, a GET and its answer),
 * other frames still go to the tap.
 */
#include "mmds_frames.h"
#include "net_rig.h"

#include <linux/if_ether.h>

#define GIP  0x0a000002u
#define MIP  MMDS_DEFAULT_IPV4
#define WAIT 2000

static struct mmds store;

/* the rig's device, serving the MMDS at MIP */
static void mrig_up(struct rig *g, uint64_t features)
{
	struct errbuf e = {{0}};

	netns_up();
	memset(g, 0, sizeof(*g));
	cr_assert_eq(mmds_init(&store, 0), 0);
	json_t *j = json_loads("{\"latest\": {\"meta-data\": {\"id\": \"i-7\"}}}", 0, NULL);
	cr_assert_eq(mmds_put(&store, j, NULL), 0);
	json_decref(j);
	cr_assert_eq(gm_init(&g->gm, MIB(8), GM_BACKING_ANON, NULL, &e), 0, "%s", e.msg);
	struct virtio_net_params p = {
	        .id = "net0", .tap_name = TAP, .mac = guest_mac, .mmds = &store, .mmds_ipv4 = MIP};
	cr_assert_eq(virtio_net_create(&g->net, &p, &e), 0, "%s", e.msg);
	rig_transport(g);
	g->ifindex = (int)if_nametoindex(TAP);
	g->pkt = packet_socket(g->ifindex);
	driver_init(g, features);
}

static void mrig_down(struct rig *g)
{
	rig_down(g);
	mmds_destroy(&store);
}

/* IPv4 + TCP to MIP:80 from GIP:port; `partial`: the checksum as a driver with CSUM leaves it */
static size_t tcp_frame(uint8_t *f, uint16_t port, uint32_t seq, uint32_t ack, uint8_t flags,
                        const char *data, bool partial)
{
	size_t dl = data ? strlen(data) : 0, tl = 20 + dl;
	uint8_t ph[12] = {0};

	memset(f, 0, 54);
	memcpy(f, mmds_default_mac, 6);
	memcpy(f + 6, guest_mac, 6);
	mmds_put16(f + 12, 0x0800);
	f[14] = 0x45;
	mmds_put16(f + 16, (uint16_t)(20 + tl));
	f[22] = 64;
	f[23] = 6;
	mmds_put32(f + 26, GIP);
	mmds_put32(f + 30, MIP);
	mmds_put16(f + 24, mmds_csum_fold(mmds_csum_add(0, f + 14, 20)));
	mmds_put16(f + 34, port);
	mmds_put16(f + 36, 80);
	mmds_put32(f + 38, seq);
	mmds_put32(f + 42, ack);
	f[46] = 5 << 4;
	f[47] = flags;
	mmds_put16(f + 48, 8192);
	if (dl)
		memcpy(f + 54, data, dl);
	mmds_put32(ph, GIP);
	mmds_put32(ph + 4, MIP);
	ph[9] = 6;
	mmds_put16(ph + 10, (uint16_t)tl);
	uint32_t sum = mmds_csum_add(0, ph, sizeof(ph));
	/* partial: only the pseudo-header's sum, not complemented (s5.1.6.2) */
	mmds_put16(f + 50, partial ? (uint16_t)~mmds_csum_fold(sum)
	                           : mmds_csum_fold(mmds_csum_add(sum, f + 34, tl)));
	return 54 + dl;
}

/* sends f with NEEDS_CSUM from the TCP header when `partial` */
static void send_tcp(struct rig *g, const uint8_t *f, size_t len, bool partial)
{
	uint8_t hdr[VIRTIO_NET_HDR_LEN] = {0};
	if (partial) {
		hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		hdr[6] = 34; /* csum_start */
		hdr[8] = 16; /* csum_offset */
	}
	tx_send(g, f, len, hdr, 0);
}

/* the next frame in the receive queue, a TCP segment from the MMDS: its flags */
static uint8_t take_seg(struct rig *g, uint8_t *f, size_t *len)
{
	uint8_t hdr[VIRTIO_NET_HDR_LEN];
	unsigned nb;

	*len = rx_take(g, f, 4096, hdr, &nb, WAIT);
	cr_assert_eq(hdr[0], 0, "no offload flags on the MMDS's frames");
	cr_assert_geq(*len, 54);
	cr_assert(!memcmp(f + 6, mmds_default_mac, 6));
	cr_assert_eq(mmds_csum_fold(mmds_csum_add(0, f + 14, 20)), 0);
	return f[47];
}

Test(virtio_net_mmds, arp_and_http_never_reach_the_tap)
{
	struct rig g;
	uint8_t f[4096], out[4096];
	size_t len;

	mrig_up(&g, NF(MAC) | NF(CSUM) | NF(MRG_RXBUF));
	int all = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	struct sockaddr_ll a = {.sll_family = AF_PACKET,
	                        .sll_protocol = htons(ETH_P_ALL),
	                        .sll_ifindex = g.ifindex};
	cr_assert_eq(bind(all, (struct sockaddr *)&a, sizeof(a)), 0);
	rx_post(&g, 16, 2048);

	/* ARP: who has 169.254.169.254 */
	tx_send(&g, f, mmds_arp_request(f, guest_mac, GIP, MIP), NULL, 0);
	uint8_t hdr[VIRTIO_NET_HDR_LEN];
	unsigned nb;
	cr_assert_eq(rx_take(&g, out, sizeof(out), hdr, &nb, WAIT), 42);
	cr_assert_eq(mmds_be16(out + 20), 2, "an ARP reply");
	cr_assert(!memcmp(out + 22, mmds_default_mac, 6));

	/* the handshake, with Linux's partial checksums */
	send_tcp(&g, f, tcp_frame(f, 5555, 100, 0, MMDS_TCP_SYN, NULL, true), true);
	cr_assert_eq(take_seg(&g, out, &len), MMDS_TCP_SYN | MMDS_TCP_ACK);
	uint32_t iss = mmds_be32(out + 38);
	cr_assert_eq(mmds_be32(out + 42), 101);
	send_tcp(&g, f, tcp_frame(f, 5555, 101, iss + 1, MMDS_TCP_ACK, NULL, true), true);
	const char *req = "GET /latest/meta-data/id HTTP/1.1\r\n\r\n";
	send_tcp(&g, f, tcp_frame(f, 5555, 101, iss + 1, MMDS_TCP_ACK | MMDS_TCP_PSH, req, false),
	         false);
	cr_assert_eq(take_seg(&g, out, &len), MMDS_TCP_ACK | MMDS_TCP_PSH);
	out[len] = '\0';
	cr_assert(strstr((char *)out + 54, "HTTP/1.1 200 OK"), "%s", out + 54);
	cr_assert(strstr((char *)out + 54, "\r\n\r\ni-7"), "%s", out + 54);

	/* none of it reached the tap; an ordinary frame does */
	struct pollfd pf = {.fd = all, .events = POLLIN};
	cr_assert_eq(poll(&pf, 1, 100), 0, "an MMDS frame reached the tap");
	make_frame(f, 100, 1);
	tx_send(&g, f, 100, NULL, 0);
	cr_assert_eq(host_recv(&g, out, sizeof(out), WAIT), 100);

	struct mmds_ns_metrics m;
	cr_assert_eq(virtio_net_mmds_metrics(g.net, &m), 0);
	cr_assert_eq(m.rx_accepted, 4);
	cr_assert_eq(m.rx_accepted_err, 0);
	cr_assert_eq(m.tx_frames, 3);
	cr_assert_eq(m.connections_created, 1);
	close(all);
	mrig_down(&g);
}

Test(virtio_net_mmds, answers_wait_for_buffers)
{
	struct rig g;
	uint8_t f[256], out[4096];
	size_t len;

	mrig_up(&g, NF(MAC) | NF(CSUM));
	/* no receive buffers yet: the SYN-ACK waits in the device */
	send_tcp(&g, f, tcp_frame(f, 6000, 1, 0, MMDS_TCP_SYN, NULL, false), false);
	cr_assert(wait_used(&g, TXQ, 1, WAIT));
	usleep(50000);
	cr_assert_eq(used_idx(&g, RXQ), 0);
	rx_post(&g, 4, 2048);
	cr_assert_eq(take_seg(&g, out, &len), MMDS_TCP_SYN | MMDS_TCP_ACK);
	/* a frame with a bad checksum is taken from the ring, answered by nothing */
	send_tcp(&g, f, tcp_frame(f, 6001, 1, 0, MMDS_TCP_SYN, NULL, true), false);
	cr_assert(wait_used(&g, TXQ, 2, WAIT));
	usleep(50000);
	cr_assert_eq(used_idx(&g, RXQ), 1);
	struct mmds_ns_metrics m;
	cr_assert_eq(virtio_net_mmds_metrics(g.net, &m), 0);
	cr_assert_eq(m.rx_accepted_err, 1);
	mrig_down(&g);
}

Test(virtio_net_mmds, retransmission_by_the_timer)
{
	struct rig g;
	uint8_t f[256], out[4096];
	size_t len;

	mrig_up(&g, NF(MAC) | NF(MRG_RXBUF));
	rx_post(&g, 8, 2048);
	send_tcp(&g, f, tcp_frame(f, 6100, 1, 0, MMDS_TCP_SYN, NULL, false), false);
	cr_assert_eq(take_seg(&g, out, &len), MMDS_TCP_SYN | MMDS_TCP_ACK);
	uint32_t iss = mmds_be32(out + 38);
	/* no ACK from the guest, no other traffic: the device's timer sends it again */
	cr_assert_eq(take_seg(&g, out, &len), MMDS_TCP_SYN | MMDS_TCP_ACK);
	cr_assert_eq(mmds_be32(out + 38), iss);
	struct mmds_ns_metrics m;
	cr_assert_eq(virtio_net_mmds_metrics(g.net, &m), 0);
	cr_assert_eq(m.tx_frames, 2);
	mrig_down(&g);
}

Test(virtio_net_mmds, not_an_mmds_interface)
{
	struct rig g;
	struct mmds_ns_metrics m;

	rig_up(&g, NULL, NF(MAC));
	cr_assert_eq(virtio_net_mmds_metrics(g.net, &m), -ENOENT);
	rig_down(&g);
}
