#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Lays a Diff snapshot's memory file over its base.

    scripts/merge-snapshot-mem.py BASE DIFF [OUT]

A Diff memory file (PUT /snapshot/create with "snapshot_type": "Diff") is a
sparse file as large as guest RAM that holds exactly the pages dirtied since
the previous snapshot, each at its own offset, zero pages included; the rest
are holes (daemon/snapshot.h). Merging copies DIFF's data extents, found
with SEEK_DATA / SEEK_HOLE, over BASE:
  - with OUT: into a copy of BASE written to OUT (holes of BASE stay holes),
    through a temporary file renamed into place, so OUT is never half written;
  - without OUT: into BASE itself, in place.
The result, with the Diff snapshot's state file, restores the VM as it was
when the Diff was taken. Chains merge one diff at a time, oldest first.

BASE and DIFF must be regular files of the same size, and DIFF's file system
must report holes (or every byte of DIFF would be taken as dirtied). Exits 0
on success, 1 with a message on any error (OUT is then left untouched).
"""
import argparse
import errno
import os
import sys
import tempfile

CHUNK = 1 << 20


class MergeError(Exception):
    pass


def extents(fd, size):
    """The (start, end) data extents of fd, from SEEK_DATA / SEEK_HOLE."""
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as err:
            if err.errno == errno.ENXIO:  # no data after off
                return
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        off = end


def copy_range(src, dst, start, end):
    """Copies [start, end) of src to the same offsets of dst."""
    off = start
    while off < end:
        data = os.pread(src, min(CHUNK, end - off), off)
        if not data:
            raise MergeError(f"unexpected end of file at offset {off}")
        view = memoryview(data)
        while view:
            n = os.pwrite(dst, view, off)
            view, off = view[n:], off + n


def check_inputs(base, diff):
    """The common size of two regular files; MergeError when they do not fit."""
    sizes = []
    for what, path in (("BASE", base), ("DIFF", diff)):
        try:
            st = os.stat(path)
        except OSError as err:
            raise MergeError(f"{what} {path}: {err.strerror}") from None
        if not os.path.isfile(path):
            raise MergeError(f"{what} {path} is not a regular file")
        sizes.append(st.st_size)
    if sizes[0] != sizes[1]:
        raise MergeError(f"BASE {base} has {sizes[0]} bytes but DIFF {diff} has {sizes[1]}: "
                         "a diff only applies to a memory file of the same guest")
    if os.path.samefile(base, diff):
        raise MergeError("BASE and DIFF are the same file")
    return sizes[0]


def diff_extents(fd, size, path):
    """DIFF's extents, refusing a file system that does not report holes."""
    ext = list(extents(fd, size))
    allocated = os.fstat(fd).st_blocks * 512
    if ext == [(0, size)] and size > 0 and allocated < size:
        raise MergeError(f"DIFF {path}: its file system does not report holes "
                         "(SEEK_DATA finds data everywhere); cannot tell dirtied pages")
    return ext


def merge_into(target_fd, diff_fd, ext):
    copied = 0
    for start, end in ext:
        copy_range(diff_fd, target_fd, start, end)
        copied += end - start
    os.fsync(target_fd)
    return copied


def merge(base, diff, out):
    size = check_inputs(base, diff)
    if out is not None and os.path.exists(out) and os.path.samefile(out, diff):
        raise MergeError("OUT must not be DIFF")
    in_place = out is None or (os.path.exists(out) and os.path.samefile(out, base))
    diff_fd = os.open(diff, os.O_RDONLY | os.O_CLOEXEC)
    try:
        ext = diff_extents(diff_fd, size, diff)
        if in_place:
            fd = os.open(base, os.O_WRONLY | os.O_CLOEXEC)
            try:
                return merge_into(fd, diff_fd, ext), len(ext), base
            finally:
                os.close(fd)
        return merge_copy(base, diff_fd, ext, size, out), len(ext), out
    finally:
        os.close(diff_fd)


def merge_copy(base, diff_fd, ext, size, out):
    """BASE's data extents, then DIFF's, into a temporary file renamed to OUT."""
    out_dir = os.path.dirname(os.path.abspath(out))
    tmp_fd, tmp = tempfile.mkstemp(prefix=".merge-", dir=out_dir)
    try:
        os.ftruncate(tmp_fd, size)
        base_fd = os.open(base, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for start, end in extents(base_fd, size):
                copy_range(base_fd, tmp_fd, start, end)
        finally:
            os.close(base_fd)
        copied = merge_into(tmp_fd, diff_fd, ext)
        os.fchmod(tmp_fd, os.stat(base).st_mode & 0o777)
        os.close(tmp_fd)
        tmp_fd = -1
        os.rename(tmp, out)
        return copied
    except BaseException:
        if tmp_fd >= 0:
            os.close(tmp_fd)
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", metavar="BASE", help="the base (Full or merged) memory file")
    ap.add_argument("diff", metavar="DIFF", help="the Diff memory file to lay over it")
    ap.add_argument("out", metavar="OUT", nargs="?",
                    help="where to write the result (default: BASE, in place)")
    args = ap.parse_args()
    try:
        copied, n, target = merge(args.base, args.diff, args.out)
    except (MergeError, OSError) as err:
        print(f"merge-snapshot-mem: {err}", file=sys.stderr)
        return 1
    print(f"merge-snapshot-mem: {n} extent(s), {copied} bytes of {args.diff} laid over "
          f"{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
