// SPDX-License-Identifier: Apache-2.0
/*
 * evil: breaks one virtqueue rule of virtio 1.2 s2.7 on purpose and checks
 * what a device must do about it: go to DEVICE_NEEDS_RESET (status bit 64)
 * while another device goes on working, and work again after a reset and
 * a new initialisation.
 *
 *   evil=RULE   one of the rules below, or `all` (each in turn)
 *   evil.dev=rng|blk|net     the device to break (default rng; net breaks
 *                            its transmit queue)
 *   evil.other=blk|rng|net   the device that must keep working (default:
 *                            the first of blk, rng, net that is present and
 *                            is not the broken one)
 *   evil.timeout_ms=N        how long to wait for NEEDS_RESET (2000)
 *
 * Per rule: "evil: <rule> device needs reset, other device ok", then
 * "evil: <rule> reset and re-initialised, device ok". With evil=all, last
 * "evil: all <N> rules ok (<M> skipped)"; rules that need indirect
 * descriptors are skipped when the device lacks them. A device that does not react prints
 * "evil: <rule> FAILED: ..." and the guest exits with 1.
 */
#include "evil.h"

static const struct evil_rule *find_rule(const char *name, size_t len)
{
	for (unsigned i = 0; i < evil_nr_rules; i++)
		if (strlen(evil_rules[i].name) == len &&
		    strncmp(evil_rules[i].name, name, len) == 0)
			return &evil_rules[i];
	return NULL;
}

/* a device kind from a parameter; 0 when absent, -1 when unknown */
static int kind_param(const char *key)
{
	size_t len;
	const char *v = krt_param(key, &len);
	if (!v)
		return 0;
	static const uint32_t ids[] = {VIRTIO_ID_RNG, VIRTIO_ID_BLOCK, VIRTIO_ID_NET};
	for (unsigned i = 0; i < KRT_ARRAY_SIZE(ids); i++)
		if (strlen(virtio_id_name(ids[i])) == len &&
		    strncmp(v, virtio_id_name(ids[i]), len) == 0)
			return (int)ids[i];
	return -1;
}

/* the other device: asked for, or the first present of blk, rng, net */
static int pick_other(struct evil_ctx *c)
{
	int k = kind_param("evil.other");
	static const uint32_t order[] = {VIRTIO_ID_BLOCK, VIRTIO_ID_RNG, VIRTIO_ID_NET};
	struct virtio_dev d;

	if (k < 0)
		return -KRT_EINVAL;
	for (unsigned i = 0; i < KRT_ARRAY_SIZE(order) && k == 0; i++) {
		unsigned nth = order[i] == c->target_id ? c->target_nth + 1 : 0;
		if (virtio_find(&d, order[i], nth) == 0)
			k = (int)order[i];
	}
	if (k == 0)
		return -KRT_ENODEV;
	c->other.id = (uint32_t)k;
	c->other.nth = (uint32_t)k == c->target_id ? c->target_nth + 1 : 0;
	return evil_dev_open(&c->other);
}

/* one rule: break, NEEDS_RESET, the other device, reset, re-initialise; 0, 1 (failed), 2 (skipped)
 */
static int run_rule(struct evil_ctx *c, const struct evil_rule *r)
{
	int ret = evil_break(c, r);
	if (ret == -KRT_ENOTSUP)
		return 2; /* skipped, said why */
	if (ret < 0) {
		krt_printf("evil: %s FAILED: could not set up the device (%d)\n", r->name, ret);
		return 1;
	}
	uint64_t hz = krt_tsc_hz(), t0 = krt_rdtsc();
	uint64_t limit = krt_param_u64("evil.timeout_ms", 2000) * (hz / 1000);
	uint32_t st;
	while (!((st = virtio_status(&c->raw)) & VIRTIO_STATUS_DEVICE_NEEDS_RESET) &&
	       krt_rdtsc() - t0 < limit)
		krt_udelay(200);
	if (!(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET)) {
		krt_printf(
		        "evil: %s FAILED: device status 0x%x, no DEVICE_NEEDS_RESET after %lu ms\n",
		        r->name, st, (krt_rdtsc() - t0) * 1000 / hz);
		return 1;
	}
	uint64_t ms = (krt_rdtsc() - t0) * 1000 / hz;
	if ((ret = evil_dev_check(&c->other)) < 0) {
		krt_printf("evil: %s FAILED: the other device (%s) failed: %d\n", r->name,
		           virtio_id_name(c->other.id), ret);
		return 1;
	}
	krt_printf("evil: %s device needs reset, other device ok (%lu ms)\n", r->name, ms);
	if ((ret = virtio_reset(&c->raw)) < 0 || (ret = evil_dev_open(&c->target)) < 0 ||
	    (ret = evil_dev_check(&c->target)) < 0) {
		krt_printf("evil: %s FAILED: after reset the device does not work: %d\n", r->name,
		           ret);
		return 1;
	}
	krt_printf("evil: %s reset and re-initialised, device ok\n", r->name);
	return 0;
}

int main(void)
{
	static struct evil_ctx c;
	size_t len;
	const char *rule = krt_param("evil", &len);
	int k = kind_param("evil.dev");

	c.target_id = k > 0 ? (uint32_t)k : VIRTIO_ID_RNG;
	c.target = (struct evil_dev){.id = c.target_id, .nth = c.target_nth};
	c.scratch = krt_alloc_pages(EVIL_SCRATCH_PAGES, KRT_PAGE_SIZE);
	const struct evil_rule *one = rule ? find_rule(rule, len) : NULL;
	bool all = rule && len == 3 && strncmp(rule, "all", 3) == 0;
	if ((!one && !all) || k < 0 || !c.scratch) {
		krt_printf(
		        "evil: FAILED: say evil=<rule> (or all) and evil.dev=rng|blk|net; rules:");
		for (unsigned i = 0; i < evil_nr_rules; i++)
			krt_printf(" %s", evil_rules[i].name);
		krt_printf("\n");
		return 1;
	}
	int ret = evil_dev_open(&c.target);
	if (ret == 0)
		ret = evil_dev_check(&c.target);
	if (ret < 0) {
		krt_printf("evil: FAILED: the device to break (%s) does not work: %d\n",
		           virtio_id_name(c.target_id), ret);
		virtio_print_devices();
		return 1;
	}
	if ((ret = pick_other(&c)) < 0 || (ret = evil_dev_check(&c.other)) < 0) {
		krt_printf("evil: FAILED: no other working device (%d)\n", ret);
		virtio_print_devices();
		return 1;
	}
	krt_printf("evil: breaking %s at 0x%lx, watching %s at 0x%lx\n",
	           virtio_id_name(c.target_id), evil_dev_base(&c.target),
	           virtio_id_name(c.other.id), evil_dev_base(&c.other));
	if (!all)
		return run_rule(&c, one) == 1;
	unsigned skipped = 0;
	for (unsigned i = 0; i < evil_nr_rules; i++) {
		ret = run_rule(&c, &evil_rules[i]);
		if (ret == 1)
			return 1;
		skipped += ret == 2;
	}
	krt_printf("evil: all %u rules ok (%u skipped)\n", evil_nr_rules - skipped, skipped);
	return 0;
}
