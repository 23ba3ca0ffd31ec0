// SPDX-License-Identifier: Apache-2.0
/*
 * daemon/uffd.c: the Uffd memory backend of PUT /snapshot/load --
 * Firecracker's protocol (see examples/uffd_page_server.c): guest RAM is
 * registered with a new userfaultfd, which goes to the page server at
 * backend_path together with a JSON description of the regions; the server
 * then fills every page on first touch from the snapshot's memory file.
 */
#define LOG_MODULE "snapshot"
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 || errno != EPERM)
		return fd < 0 ? -errno : fd;
	/* unprivileged userfaultfd is off: the device node may still be open to us */
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	int err = errno;
	close(dev);
	return fd < 0 ? -err : fd;
}

/* the regions message: one object per region, in memory-file order */
static int regions_json(const struct guest_mem *gm, char *buf, size_t size)
{
	size_t at = 0;
	buf[at++] = '[';
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];
		int n = snprintf(buf + at, size - at,
		                 "%s{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,"
		                 "\"page_size\":%llu}",
		                 i ? "," : "", (unsigned long long)(uintptr_t)r->hva,
		                 (unsigned long long)r->size, (unsigned long long)r->offset,
		                 (unsigned long long)GM_PAGE_SIZE);
		if (n < 0 || (size_t)n >= size - at - 1)
			return -ENOSPC;
		at += (size_t)n;
	}
	buf[at++] = ']';
	return (int)at;
}

static int send_uffd(int sock, int uffd, const char *msg, size_t len)
{
	char ctrl[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctrl,
	                    .msg_controllen = sizeof(ctrl)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int vmm_uffd_attach(struct vmm *v, const char *sock_path, struct errbuf *e)
{
	struct uffdio_api api = {.api = UFFD_API};
	char msg[512];
	int ret;

	int uffd = uffd_open();
	if (uffd < 0)
		return errf(e, -uffd, "cannot create a userfaultfd: %s", strerror(-uffd));
	v->uffd_fd = uffd;
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return errf(e, errno, "UFFDIO_API: %s", strerror(errno));
	for (unsigned i = 0; i < v->mem.nr_regions; i++) {
		struct uffdio_register reg = {
		        .range = {.start = (uintptr_t)v->mem.regions[i].hva,
		                  .len = v->mem.regions[i].size},
		        .mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
			return errf(e, errno, "UFFDIO_REGISTER of guest memory: %s",
			            strerror(errno));
	}

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return errf(e, ENAMETOOLONG, "backend_path %s is too long for a unix socket",
		            sock_path);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	v->uffd_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (v->uffd_sock < 0)
		return errf(e, errno, "socket: %s", strerror(errno));
	if (connect(v->uffd_sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errf(e, errno, "cannot reach the page server at %s: %s", sock_path,
		            strerror(errno));
	int len = regions_json(&v->mem, msg, sizeof(msg));
	if (len < 0)
		return errf(e, ENOSPC, "the memory layout does not fit the message");
	if ((ret = send_uffd(v->uffd_sock, uffd, msg, (size_t)len)) < 0)
		return errf(e, -ret, "cannot hand the userfaultfd to %s: %s", sock_path,
		            strerror(-ret));
	log_info("guest memory is served by the page server at %s", sock_path);
	return 0;
}

void vmm_uffd_close(struct vmm *v)
{
	/* after the VM is gone: closing tells the page server to stop */
	if (v->uffd_sock >= 0)
		close(v->uffd_sock);
	if (v->uffd_fd >= 0)
		close(v->uffd_fd);
	v->uffd_sock = v->uffd_fd = -1;
}
