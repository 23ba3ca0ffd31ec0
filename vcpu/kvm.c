// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/kvm.c: /dev/kvm -- the API version, the capabilities kiln relies on,
 * and the host's supported CPUID and MSR lists (saved MSRs, feature MSRs).
 * Reference: Linux Documentation/virt/kvm/api.rst, the section of each ioctl.
 */
#define LOG_MODULE "vcpu"
#include "vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* api.rst KVM_GET_API_VERSION: "the only supported API version is 12" */
#define KVM_API_VERSION_EXPECTED 12

/* the CPUID table grows until KVM stops saying E2BIG, up to this many entries */
#define CPUID_MAX_ENTRIES 4096
#define MSR_LIST_MAX      4096

struct kvm_cap_name {
	long cap;
	const char *name;
};

/* every capability kiln cannot run without; the first missing one is reported */
static const struct kvm_cap_name kvm_required_caps[] = {
        {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
        {KVM_CAP_HLT, "KVM_CAP_HLT"},
        {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
        {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
        {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
        {KVM_CAP_PIT_STATE2, "KVM_CAP_PIT_STATE2"},
        {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
        {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
        {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
        {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
        {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
};

int kvm_check_cap(const struct kvm *k, long cap)
{
	int ret = ioctl(k->fd, KVM_CHECK_EXTENSION, cap);
	return ret < 0 ? 0 : ret;
}

bool kvm_has_msr(const struct kvm *k, uint32_t msr)
{
	if (!k->msr_index_list)
		return false;
	for (uint32_t i = 0; i < k->msr_index_list->nmsrs; i++)
		if (k->msr_index_list->indices[i] == msr)
			return true;
	return false;
}

static int kvm_check_caps(struct kvm *k, struct errbuf *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(kvm_required_caps); i++) {
		if (kvm_check_cap(k, kvm_required_caps[i].cap) <= 0)
			return errf(e, ENOTSUP, "/dev/kvm lacks %s, which kiln requires",
			            kvm_required_caps[i].name);
	}
	k->has_identity_map_addr = kvm_check_cap(k, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0;
	k->has_xsave = kvm_check_cap(k, KVM_CAP_XSAVE) > 0;
	return 0;
}

/* api.rst KVM_GET_SUPPORTED_CPUID: fails with E2BIG while nent is too small */
static int kvm_read_cpuid(struct kvm *k, struct errbuf *e)
{
	/* 256 entries fit every CPU seen so far (75 here): one ioctl, not two */
	for (uint32_t n = 256; n <= CPUID_MAX_ENTRIES; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return errf(e, ENOMEM, "out of memory for the CPUID table");
		c->nent = n;
		if (ioctl(k->fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			k->supported_cpuid = c;
			return 0;
		}
		int err = errno;
		free(c);
		if (err != E2BIG)
			return errf(e, err, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(err));
	}
	return errf(e, E2BIG, "KVM_GET_SUPPORTED_CPUID wants more than %d entries",
	            CPUID_MAX_ENTRIES);
}

/*
 * api.rst KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST (`req`,
 * named `name`): a first call with nmsrs = 0 fails with E2BIG and sets nmsrs.
 */
static int kvm_read_msr_list(struct kvm *k, unsigned long req, const char *name,
                             struct kvm_msr_list **out, struct errbuf *e)
{
	struct kvm_msr_list probe = {.nmsrs = 0};

	if (ioctl(k->fd, req, &probe) < 0 && errno != E2BIG)
		return errf(e, errno, "%s failed: %s", name, strerror(errno));
	if (probe.nmsrs > MSR_LIST_MAX)
		return errf(e, E2BIG, "%s reports %u MSRs, more than kiln accepts (%d)", name,
		            probe.nmsrs, MSR_LIST_MAX);

	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	if (!l)
		return errf(e, ENOMEM, "out of memory for the MSR list");
	l->nmsrs = probe.nmsrs;
	if (probe.nmsrs && ioctl(k->fd, req, l) < 0) {
		int err = errno;
		free(l);
		return errf(e, err, "%s failed: %s", name, strerror(err));
	}
	*out = l;
	return 0;
}

/* the feature list is optional: without it kiln saves a little less of a vCPU (vcpu_msr_list) */
static int kvm_read_msr_lists(struct kvm *k, struct errbuf *e)
{
	struct errbuf fe;
	int ret = kvm_read_msr_list(k, KVM_GET_MSR_INDEX_LIST, "KVM_GET_MSR_INDEX_LIST",
	                            &k->msr_index_list, e);

	/* api.rst KVM_GET_MSR_FEATURE_INDEX_LIST: "available if KVM_CAP_GET_MSR_FEATURES" */
	if (ret == 0 && kvm_check_cap(k, KVM_CAP_GET_MSR_FEATURES) > 0 &&
	    kvm_read_msr_list(k, KVM_GET_MSR_FEATURE_INDEX_LIST, "KVM_GET_MSR_FEATURE_INDEX_LIST",
	                      &k->msr_feature_list, &fe) < 0)
		log_warn("%s; feature MSRs are not saved with a vCPU", fe.msg);
	return ret;
}

int kvm_open(struct kvm *k, struct errbuf *e)
{
	int ret;

	memset(k, 0, sizeof(*k));
	k->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->fd < 0) {
		ret = errf(
		        e, errno,
		        "cannot open /dev/kvm: %s (is KVM enabled and are you in the kvm group?)",
		        strerror(errno));
		goto err_out;
	}

	int version = ioctl(k->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION_EXPECTED) {
		ret = errf(e, ENOTSUP, "/dev/kvm speaks KVM API version %d, kiln needs %d", version,
		           KVM_API_VERSION_EXPECTED);
		goto err_close;
	}
	if ((ret = kvm_check_caps(k, e)) < 0)
		goto err_close;

	k->vcpu_mmap_size = ioctl(k->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		ret = errf(e, EINVAL, "KVM_GET_VCPU_MMAP_SIZE returned %d", k->vcpu_mmap_size);
		goto err_close;
	}

	/* api.rst KVM_CAP_MAX_VCPUS: the limit, or KVM_CAP_NR_VCPUS when that is absent */
	int max = kvm_check_cap(k, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = kvm_check_cap(k, KVM_CAP_NR_VCPUS);
	if (max <= 0)
		max = 4; /* api.rst: "assume 4 if neither is present" */
	k->max_vcpus = max < VM_MAX_VCPUS ? (unsigned)max : VM_MAX_VCPUS;

	if ((ret = kvm_read_cpuid(k, e)) < 0)
		goto err_close;
	if ((ret = kvm_read_msr_lists(k, e)) < 0)
		goto err_cpuid;
	log_debug("/dev/kvm: API %d, run area %d bytes, up to %u vCPUs, %u CPUID entries, "
	          "%u MSRs, %u feature MSRs%s%s",
	          version, k->vcpu_mmap_size, k->max_vcpus, k->supported_cpuid->nent,
	          k->msr_index_list->nmsrs, k->msr_feature_list ? k->msr_feature_list->nmsrs : 0,
	          k->has_identity_map_addr ? ", identity map" : "", k->has_xsave ? ", xsave" : "");
	return 0;

err_cpuid:
	free(k->supported_cpuid);
	k->supported_cpuid = NULL;
err_close:
	close(k->fd);
err_out:
	k->fd = -1;
	return ret;
}

void kvm_close(struct kvm *k)
{
	free(k->supported_cpuid);
	free(k->msr_index_list);
	free(k->msr_feature_list);
	k->supported_cpuid = NULL;
	k->msr_index_list = NULL;
	k->msr_feature_list = NULL;
	if (k->fd > 0)
		close(k->fd);
	k->fd = -1;
}
