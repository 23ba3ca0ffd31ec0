#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/linux/test_build.py: checks build.py on the host, without a VM.

Builds into a temporary folder that borrows the kernel of tests/linux/cache
(fetched there first if missing; symlinks, so nothing is downloaded twice)
and checks what the images hold: the initramfs (read back with a newc
parser of its own), the ext4 image (through debugfs), the static program
run on the host, and that a second build reuses the first while a new
program in progs/ rebuilds the image."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build  # noqa: E402

CACHE = os.path.join(HERE, 'cache')
KERNEL_FILES = ['vmlinux', 'bzImage', 'kernel-package', 'kernel-root']


def read_cpio(path):
    """{name: (mode, data)} of a newc archive."""
    with open(path, 'rb') as f:
        buf = f.read()
    entries, off = {}, 0
    while True:
        hdr = buf[off:off + 110]
        assert hdr[:6] == b'070701', 'bad newc magic at %d' % off
        fields = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        off += 110
        name = buf[off:off + namesize - 1].decode()
        off += namesize + (-(110 + namesize) % 4)
        data = buf[off:off + size]
        off += size + (-size % 4)
        if name == 'TRAILER!!!':
            return entries
        entries[name] = (mode, data)


def debugfs(img, request):
    r = subprocess.run(['debugfs', '-R', request, img], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    return r.stdout


def read_text(path):
    with open(path) as f:
        return f.read()


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h


class BuildTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            build.fetch_kernel(CACHE)
        except build.BuildError as exc:
            raise unittest.SkipTest('no kernel: %s' % exc)
        cls.tmp = tempfile.mkdtemp(prefix='kiln-linux-build-')
        for name in KERNEL_FILES:
            os.symlink(os.path.join(CACHE, name), os.path.join(cls.tmp, name))
        cls.paths = build.build(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_paths(self):
        self.assertEqual(sorted(self.paths), ['bzImage', 'initramfs', 'rootfs', 'vmlinux'])
        for path in self.paths.values():
            self.assertTrue(os.path.getsize(path) > 0, path)

    def test_initramfs(self):
        files = read_cpio(self.paths['initramfs'])
        with open(build.INITRAMFS_INIT, 'rb') as f:
            self.assertEqual(files['init'][1], f.read())
        self.assertTrue(files['init'][0] & 0o111)
        self.assertEqual(files['bin/sh'], (stat.S_IFLNK | 0o777, b'busybox'))
        self.assertEqual(files['sbin/switch_root'][1], b'../bin/busybox')
        self.assertEqual(stat.S_IFMT(files['dev/console'][0]), stat.S_IFCHR)
        order = files['lib/modules/load.list'][1].decode().split()
        for ko in order:
            self.assertIn('lib/modules/' + ko, files)
        # dependencies first; ext4 is built into the cloud kernel
        for before, after in [('virtio_ring.ko', 'virtio.ko'), ('virtio.ko', 'virtio_mmio.ko'),
                              ('vsock.ko', 'vmw_vsock_virtio_transport_common.ko'),
                              ('vmw_vsock_virtio_transport_common.ko',
                               'vmw_vsock_virtio_transport.ko')]:
            self.assertLess(order.index(before), order.index(after))
        for ko in ('virtio_blk.ko', 'virtio_net.ko', 'virtio-rng.ko'):
            self.assertIn(ko, order)
        self.assertNotIn('ext4.ko', order)

    def test_rootfs(self):
        img = self.paths['rootfs']
        with open(build.ROOTFS_INIT, 'rb') as f:
            self.assertEqual(debugfs(img, 'cat /init'), f.read())
        self.assertIn(b'Type: symlink', debugfs(img, 'stat /bin/sh'))
        for d in ('dev', 'proc', 'sys', 'tmp'):
            self.assertIn(b'Type: directory', debugfs(img, 'stat /' + d))
        r = subprocess.run(['e2fsck', '-fn', img], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_program_runs(self):
        """kt-write out of the image, run here: its checksum is the file's."""
        prog = os.path.join(self.tmp, 'kt-write')
        subprocess.run(['debugfs', '-R', 'dump /bin/kt-write ' + prog, self.paths['rootfs']],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.chmod(prog, 0o755)
        headers = subprocess.run(['readelf', '-l', prog], stdout=subprocess.PIPE,
                                 check=True).stdout
        self.assertNotIn(b'INTERP', headers, 'kt-write has a dynamic loader')
        data = os.path.join(self.tmp, 'data')
        out = subprocess.run([prog, data, '100000', 'm4rker'], env={'KT_SAY': 'stdout'},
                             stdout=subprocess.PIPE, check=True).stdout.decode()
        with open(data, 'rb') as f:
            content = f.read()
        self.assertTrue(content.startswith(b'm4rker\n'))
        self.assertEqual(out, 'kt-write: wrote %s bytes=100000 fnv1a=%016x\n'
                         % (data, fnv1a(content)))

    def test_rebuilds_only_on_change(self):
        stamp = os.path.join(self.tmp, 'image.inputs')
        before = os.stat(self.paths['rootfs']).st_mtime_ns, read_text(stamp)
        build.build(self.tmp)
        self.assertEqual((os.stat(self.paths['rootfs']).st_mtime_ns, read_text(stamp)), before)
        # a program dropped into progs/ is a new input, and lands in /bin
        progs = os.path.join(self.tmp, 'progs')
        shutil.copytree(build.PROGS, progs)
        with open(os.path.join(progs, 'kt-hello.c'), 'w') as f:
            f.write('#include "kt.h"\nint main(void)\n{\n\tkt_say("hello");\n\treturn 0;\n}\n')
        saved, build.PROGS = build.PROGS, progs
        try:
            build.build(self.tmp)
        finally:
            build.PROGS = saved
        self.assertNotEqual(read_text(stamp), before[1])
        self.assertIn(b'Type: regular', debugfs(self.paths['rootfs'], 'stat /bin/kt-hello'))


if __name__ == '__main__':
    unittest.main()
