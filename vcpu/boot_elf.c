// SPDX-License-Identifier: Apache-2.0
/*
 * vcpu/boot_elf.c: loads an ELF64 x86_64 executable -- Linux's vmlinux or a
 * kiln test guest -- at the physical addresses of its PT_LOAD segments, and
 * finds its PVH entry (the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY). Every
 * offset and size read from the file is checked against the file before
 * use, and every segment against guest RAM before anything is copied.
 */
#include "vcpu/boot_int.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MODULE "boot"

bool boot_is_elf(const uint8_t *buf, size_t len)
{
	return len >= SELFMAG && memcmp(buf, ELFMAG, SELFMAG) == 0;
}

/* [off, off + size) lies inside a file of `len` bytes */
static bool in_file(uint64_t off, uint64_t size, size_t len)
{
	return off <= len && size <= len - off;
}

static int elf_check_header(const char *path, const uint8_t *buf, size_t len, Elf64_Ehdr *eh,
                            struct errbuf *e)
{
	if (len < EI_NIDENT)
		return errf(e, ENOEXEC, "kernel %s: truncated ELF header (%zu bytes)", path, len);
	if (buf[EI_CLASS] == ELFCLASS32)
		return errf(e, ENOEXEC,
		            "kernel %s: 32-bit ELF (ELFCLASS32); kiln boots ELF64 x86_64 kernels",
		            path);
	if (buf[EI_CLASS] != ELFCLASS64)
		return errf(e, ENOEXEC, "kernel %s: unknown ELF class %u", path, buf[EI_CLASS]);
	if (len < sizeof(*eh))
		return errf(e, ENOEXEC, "kernel %s: truncated ELF header (%zu of %zu bytes)", path,
		            len, sizeof(*eh));
	memcpy(eh, buf, sizeof(*eh));
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return errf(e, ENOEXEC, "kernel %s: not a little-endian ELF", path);
	if (eh->e_machine != EM_X86_64)
		return errf(e, ENOEXEC, "kernel %s: ELF machine %u is not x86_64 (EM_X86_64 = %u)",
		            path, eh->e_machine, EM_X86_64);
	if (eh->e_type != ET_EXEC)
		return errf(e, ENOEXEC, "kernel %s: ELF type %u is not an executable (ET_EXEC)",
		            path, eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return errf(e, ENOEXEC, "kernel %s: ELF program header size %u, expected %zu", path,
		            eh->e_phentsize, sizeof(Elf64_Phdr));
	if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
		return errf(e, ENOEXEC, "kernel %s: ELF has %s program headers", path,
		            eh->e_phnum ? "too many (PN_XNUM)" : "no");
	uint64_t ph_size = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (!in_file(eh->e_phoff, ph_size, len))
		return errf(e, ENOEXEC,
		            "kernel %s: ELF program headers [0x%llx, 0x%llx) extend beyond the end "
		            "of the file (%zu bytes)",
		            path, (unsigned long long)eh->e_phoff,
		            (unsigned long long)(eh->e_phoff + ph_size), len);
	return 0;
}

/* pass 1: every PT_LOAD inside the file and inside RAM above the low boot area */
static int elf_check_segments(struct guest_mem *gm, const char *path, size_t len,
                              const Elf64_Phdr *ph, unsigned n, struct boot_kernel *k,
                              struct errbuf *e)
{
	unsigned loads = 0;
	k->start = UINT64_MAX;
	k->end = 0;
	for (unsigned i = 0; i < n; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type != PT_LOAD)
			continue;
		unsigned long long pa = p->p_paddr, msz = p->p_memsz, fsz = p->p_filesz;
		if (fsz > msz)
			return errf(e, ENOEXEC,
			            "kernel %s: segment %u: p_filesz 0x%llx is larger than p_memsz "
			            "0x%llx",
			            path, i, fsz, msz);
		if (!in_file(p->p_offset, fsz, len))
			return errf(e, ENOEXEC,
			            "kernel %s: segment %u: file bytes [0x%llx, 0x%llx) extend "
			            "beyond the end of the file (%zu bytes)",
			            path, i, (unsigned long long)p->p_offset,
			            (unsigned long long)p->p_offset + fsz, len);
		if (msz == 0)
			continue;
		if (pa > UINT64_MAX - msz)
			return errf(e, ENOEXEC, "kernel %s: segment %u at 0x%llx wraps around",
			            path, i, pa);
		if (pa < BOOT_KERNEL_MIN_ADDR)
			return errf(
			        e, ENOEXEC,
			        "kernel %s: segment %u at [0x%llx, 0x%llx) overlaps the low boot "
			        "area [0, 0x%llx)",
			        path, i, pa, pa + msz, BOOT_KERNEL_MIN_ADDR);
		if (pa + msz > GM_HOLE_END)
			return errf(e, ENOEXEC,
			            "kernel %s: segment %u at [0x%llx, 0x%llx) ends above 4 GiB, "
			            "beyond the identity map the kernel is entered with",
			            path, i, pa, pa + msz);
		if (!gm_ptr(gm, pa, msz))
			return errf(
			        e, ENOEXEC,
			        "kernel %s: segment %u at [0x%llx, 0x%llx) is outside guest RAM "
			        "(%llu MiB)",
			        path, i, pa, pa + msz, (unsigned long long)(gm->ram_size >> 20));
		loads++;
		if (pa < k->start)
			k->start = pa;
		if (pa + msz > k->end)
			k->end = pa + msz;
	}
	if (loads == 0)
		return errf(e, ENOEXEC, "kernel %s: ELF has no PT_LOAD segment", path);
	return 0;
}

/* the loaded segment holding physical address `pa`, or -1 */
static int seg_of_paddr(const Elf64_Phdr *ph, unsigned n, uint64_t pa)
{
	for (unsigned i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && pa >= ph[i].p_paddr &&
		    pa - ph[i].p_paddr < ph[i].p_memsz)
			return (int)i;
	return -1;
}

/*
 * e_entry of vmlinux is physical (its linker script says ENTRY(phys_startup_64));
 * an entry given as a virtual address is converted with its segment's
 * p_vaddr - p_paddr.
 */
static int elf_entry(const char *path, const Elf64_Ehdr *eh, const Elf64_Phdr *ph, unsigned n,
                     uint64_t *entry, struct errbuf *e)
{
	if (seg_of_paddr(ph, n, eh->e_entry) >= 0) {
		*entry = eh->e_entry;
		return 0;
	}
	for (unsigned i = 0; i < n; i++) {
		if (ph[i].p_type == PT_LOAD && eh->e_entry >= ph[i].p_vaddr &&
		    eh->e_entry - ph[i].p_vaddr < ph[i].p_memsz) {
			*entry = eh->e_entry - ph[i].p_vaddr + ph[i].p_paddr;
			return 0;
		}
	}
	return errf(e, ENOEXEC, "kernel %s: entry point 0x%llx is in no PT_LOAD segment", path,
	            (unsigned long long)eh->e_entry);
}

/*
 * The PVH entry: an ELF note named "Xen" of type XEN_ELFNOTE_PHYS32_ENTRY
 * (xen/include/public/elfnote.h) whose descriptor is the 32-bit physical
 * entry (Linux writes it as a pointer-sized value, 8 bytes on x86_64).
 * Sets *found; a malformed note is an error.
 */
static int elf_find_pvh(const char *path, const uint8_t *buf, size_t len, const Elf64_Phdr *ph,
                        unsigned n, uint64_t *entry, bool *found, struct errbuf *e)
{
	*found = false;
	for (unsigned i = 0; i < n; i++) {
		if (ph[i].p_type != PT_NOTE)
			continue;
		if (!in_file(ph[i].p_offset, ph[i].p_filesz, len))
			return errf(e, ENOEXEC,
			            "kernel %s: note segment %u extends beyond the end of the file",
			            path, i);
		const uint8_t *notes = buf + ph[i].p_offset;
		uint64_t size = ph[i].p_filesz, off = 0, align = ph[i].p_align == 8 ? 8 : 4;
		/* the last note's padding may run past the segment: off > size ends it */
		while (off < size && size - off >= sizeof(Elf64_Nhdr)) {
			Elf64_Nhdr nh;
			memcpy(&nh, notes + off, sizeof(nh));
			uint64_t name = off + sizeof(nh);
			uint64_t desc = name + ALIGN_UP((uint64_t)nh.n_namesz, align);
			uint64_t next = desc + ALIGN_UP((uint64_t)nh.n_descsz, align);
			if (desc + nh.n_descsz > size)
				return errf(
				        e, ENOEXEC,
				        "kernel %s: ELF note at file offset 0x%llx runs past its "
				        "segment",
				        path, (unsigned long long)(ph[i].p_offset + off));
			if (nh.n_type == PVH_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
			    memcmp(notes + name, "Xen", 4) == 0) {
				uint64_t v = 0;
				if (nh.n_descsz != 4 && nh.n_descsz != 8)
					return errf(e, ENOEXEC,
					            "kernel %s: PVH entry note has a %u-byte value "
					            "(expected 4 or 8)",
					            path, nh.n_descsz);
				memcpy(&v, notes + desc, nh.n_descsz);
				if (v > UINT32_MAX)
					return errf(e, ENOEXEC,
					            "kernel %s: PVH entry 0x%llx is above 4 GiB",
					            path, (unsigned long long)v);
				*entry = v;
				*found = true;
				return 0;
			}
			off = next;
		}
	}
	return 0;
}

int boot_elf_load(struct guest_mem *gm, const char *path, const uint8_t *buf, size_t len,
                  struct boot_kernel *k, struct errbuf *e)
{
	Elf64_Ehdr eh;
	int ret = elf_check_header(path, buf, len, &eh, e);
	if (ret)
		return ret;

	unsigned n = eh.e_phnum;
	Elf64_Phdr *ph = malloc(n * sizeof(*ph));
	if (!ph)
		return errf(e, ENOMEM, "kernel %s: out of memory for %u program headers", path, n);
	memcpy(ph, buf + eh.e_phoff, n * sizeof(*ph)); /* the file may not be aligned */

	memset(k, 0, sizeof(*k));
	ret = elf_check_segments(gm, path, len, ph, n, k, e);
	if (ret)
		goto out;

	uint64_t entry = 0, pvh_entry = 0;
	bool pvh = false;
	ret = elf_entry(path, &eh, ph, n, &entry, e);
	if (ret)
		goto out;
	ret = elf_find_pvh(path, buf, len, ph, n, &pvh_entry, &pvh, e);
	if (ret)
		goto out;
	if (pvh && seg_of_paddr(ph, n, pvh_entry) < 0) {
		ret = errf(e, ENOEXEC, "kernel %s: PVH entry 0x%llx is in no PT_LOAD segment", path,
		           (unsigned long long)pvh_entry);
		goto out;
	}

	/* pass 2: everything was checked, copy */
	for (unsigned i = 0; i < n; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		uint8_t *dst = gm_ptr(gm, ph[i].p_paddr, ph[i].p_memsz);
		/*
		 * p_memsz beyond p_filesz (the BSS) is left alone: boot_load runs
		 * once, on RAM that gm_init just mapped zero-filled, and clearing
		 * it would fault in every page of it (1.3 MiB: ~0.8 ms here).
		 */
		memcpy(dst, buf + ph[i].p_offset, ph[i].p_filesz);
	}

	k->format = BOOT_FORMAT_ELF;
	k->mode = pvh ? BOOT_PVH : BOOT_LINUX64; /* PVH first, as Firecracker does */
	k->entry = pvh ? pvh_entry : entry;
	k->initrd_addr_max = BOOT_INITRD_MAX_DEFAULT;
	k->cmdline_max = BOOT_CMDLINE_MAX - 1;
	log_info("kernel %s: ELF, %s entry 0x%llx, [0x%llx, 0x%llx)", path, pvh ? "PVH" : "64-bit",
	         (unsigned long long)k->entry, (unsigned long long)k->start,
	         (unsigned long long)k->end);
out:
	free(ph);
	return ret;
}
