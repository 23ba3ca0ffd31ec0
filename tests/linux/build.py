#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tests/linux/build.py [--out DIR]: the Linux guest of kiln's end-to-end
tests, built from Debian packages, without root and without any network
but apt's.

In DIR (default tests/linux/cache, gitignored) it leaves
  vmlinux, bzImage  Debian's cloud kernel, from scripts/fetch-linux.sh, which
                    also keeps the same package's modules (DIR/kernel-root)
  initramfs.cpio    busybox-static with its applets, the kernel's modules
                    that the tests need (MODULES and their dependencies,
                    in load order; those built into the kernel are left
                    out), and initramfs-init.sh as /init
  rootfs.ext4       an ext4 image (mkfs.ext4 -d, ROOTFS_MIB) with busybox,
                    the project's own static test programs (each progs/*.c,
                    gcc -static, in /bin under the file's name) and
                    rootfs-init.sh as /init
and prints one line per file, "NAME PATH" (its other messages go to
stderr).

How a test boots it: the kernel with initramfs.cpio as its initrd and
rootfs.ext4 as the root drive (is_root_device: kiln adds "root=/dev/vda rw"
or "ro"). The initramfs loads the modules, mounts /dev/vda and
switch_roots to it; the image's /init runs the command in kiln.run= and
resets the machine (see the two init scripts). Both write their lines to
/dev/kmsg. A test copies rootfs.ext4 before booting it read-write.

Idempotent: the two images are rebuilt only when the hash of their inputs
(the kernel package and version, the busybox binary, the programs'
sources, the init scripts, this file, the compiler's version) differs from
the one in DIR/image.inputs. Files in rootfs.ext4 belong to the user who
built it (mkfs.ext4 -d copies owners; only / is made root's).

Needs: apt knowing linux-image-cloud-amd64, dpkg-deb and lz4 (for
fetch-linux.sh), kmod (depmod, modprobe), busybox-static, gcc with
libc6-dev (static libc), e2fsprogs.
"""
import argparse
import fcntl
import glob
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, 'tests', 'testbed'))
import image  # noqa: E402  (module_order, Cpio, static_busybox)

# what the tests use, each loaded after its dependencies (modprobe works them out)
MODULES = ['virtio_mmio', 'virtio_blk', 'virtio_net', 'vsock',
           'vmw_vsock_virtio_transport_common', 'vmw_vsock_virtio_transport',
           'virtio_rng', 'virtio_balloon', 'ext4']
ROOTFS_MIB = 64
INITRAMFS_INIT = os.path.join(HERE, 'initramfs-init.sh')
ROOTFS_INIT = os.path.join(HERE, 'rootfs-init.sh')
PROGS = os.path.join(HERE, 'progs')
# the folders both file systems start with (busybox's applets add theirs)
FOLDERS = ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'tmp']


class BuildError(Exception):
    pass


def log(msg):
    print('build.py: ' + msg, file=sys.stderr)


def run(cmd, what, **kw):
    """Runs cmd; its output, or BuildError with it when cmd fails."""
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, **kw)
    except FileNotFoundError:
        raise BuildError('%s: %s is missing' % (what, cmd[0]))
    if r.returncode != 0:
        raise BuildError('%s failed (%s):\n%s' % (what, ' '.join(cmd), r.stdout))
    return r.stdout


def fetch_kernel(out):
    """scripts/fetch-linux.sh into out: (package line, modules root, version)."""
    msg = run([os.path.join(TOP, 'scripts', 'fetch-linux.sh'), out], 'fetching the kernel')
    sys.stderr.write(msg)
    with open(os.path.join(out, 'kernel-package')) as f:
        pkg = f.read().strip()
    root = os.path.join(out, 'kernel-root')
    versions = os.listdir(os.path.join(root, 'lib', 'modules'))
    if len(versions) != 1:
        raise BuildError('expected one kernel version in %s, found %s' % (root, versions))
    return pkg, root, versions[0]


def programs():
    """The sources of the guest programs: each progs/*.c is one program."""
    return sorted(glob.glob(os.path.join(PROGS, '*.c')))


def inputs_hash(pkg, busybox):
    """What the images are built from, hashed: a change to any rebuilds them."""
    h = hashlib.sha256()
    h.update(pkg.encode() + b'\0')
    h.update(run(['gcc', '--version'], 'gcc').encode())
    h.update(repr((MODULES, ROOTFS_MIB, FOLDERS)).encode())
    inputs = [busybox, INITRAMFS_INIT, ROOTFS_INIT, os.path.abspath(__file__), image.__file__]
    inputs += sorted(glob.glob(os.path.join(PROGS, '*')))
    for path in inputs:
        with open(path, 'rb') as f:
            h.update(os.path.basename(path).encode() + b'\0' + f.read())
    return h.hexdigest()[:16]


def stage_busybox(folder, busybox):
    """folder/bin/busybox and a relative symlink to it for each applet."""
    for d in FOLDERS:
        os.makedirs(os.path.join(folder, d), exist_ok=True)
    shutil.copy(busybox, os.path.join(folder, 'bin', 'busybox'))
    applets = run([busybox, '--list-full'], 'busybox --list-full').split()
    for rel in applets:
        if '/' not in rel or rel == 'bin/busybox':
            continue  # linuxrc
        link = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        target = os.path.relpath(os.path.join(folder, 'bin', 'busybox'), os.path.dirname(link))
        if not os.path.lexists(link):
            os.symlink(target, link)


def compile_programs(bindir):
    """gcc -static for each program, into bindir under its file's name."""
    names = []
    for src in programs():
        name = os.path.splitext(os.path.basename(src))[0]
        run(['gcc', '-static', '-O2', '-Wall', '-Wextra', '-Werror', '-s', '-I', PROGS,
             '-o', os.path.join(bindir, name), src], 'compiling ' + os.path.basename(src))
        names.append(name)
    return names


def builtins(moddir):
    """The names of the modules built into the kernel (modules.builtin)."""
    with open(os.path.join(moddir, 'modules.builtin')) as f:
        return {os.path.basename(line.strip())[:-3].replace('-', '_') for line in f
                if line.strip().endswith('.ko')}


def stage_modules(folder, root, version):
    """folder/lib/modules: the .ko files to load and load.list, their order."""
    built_in = sorted(builtins(os.path.join(root, 'lib', 'modules', version)) & set(MODULES))
    try:
        order = image.module_order(root, version, MODULES)
    except image.ImageError as exc:
        raise BuildError(str(exc))
    dest = os.path.join(folder, 'lib', 'modules')
    os.makedirs(dest)
    names = [os.path.basename(ko) for ko in order]
    if len(set(names)) != len(names):
        raise BuildError('two modules share a file name: %s' % names)
    for ko in order:
        shutil.copy(ko, dest)
    with open(os.path.join(dest, 'load.list'), 'w') as f:
        f.write(''.join(n + '\n' for n in names))
    log('modules: %s; built in: %s' % (' '.join(names), ' '.join(built_in) or 'none'))


def write_cpio(folder, out):
    """folder as a newc archive (all root's), plus the device nodes init needs first."""
    c = image.Cpio(out)
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        rel_top = os.path.relpath(top, folder)
        for name in dirs + sorted(files):
            path = os.path.join(top, name)
            rel = os.path.normpath(os.path.join(rel_top, name))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                c.symlink(rel, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                c.folder(rel)
            else:
                with open(path, 'rb') as f:
                    c.file(rel, f.read(), stat.S_IMODE(st.st_mode))
    # the kernel opens /dev/console for init's stdio before devtmpfs is there
    c.chardev('dev/console', 5, 1)
    c.chardev('dev/null', 1, 3)
    c.close()


def build_initramfs(work, busybox, root, version, out):
    folder = os.path.join(work, 'initramfs')
    stage_busybox(folder, busybox)
    os.makedirs(os.path.join(folder, 'newroot'))
    stage_modules(folder, root, version)
    shutil.copy(INITRAMFS_INIT, os.path.join(folder, 'init'))
    os.chmod(os.path.join(folder, 'init'), 0o755)
    write_cpio(folder, out)


def build_rootfs(work, busybox, manifest, out):
    folder = os.path.join(work, 'rootfs')
    stage_busybox(folder, busybox)
    for d in ('etc', 'root', 'run', 'mnt'):
        os.makedirs(os.path.join(folder, d))
    names = compile_programs(os.path.join(folder, 'bin'))
    log('programs: ' + ' '.join(names))
    shutil.copy(ROOTFS_INIT, os.path.join(folder, 'init'))
    os.chmod(os.path.join(folder, 'init'), 0o755)
    with open(os.path.join(folder, 'etc', 'kiln-image'), 'w') as f:
        f.write(manifest)
    if os.path.exists(out):
        os.unlink(out)
    run(['mkfs.ext4', '-q', '-F', '-L', 'kiln-root', '-E', 'root_owner=0:0', '-d', folder,
         out, '%dM' % ROOTFS_MIB], 'mkfs.ext4')


def build(out):
    """Fetches and builds what DIR lacks or what is stale: {name: path}."""
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)
    paths = {'vmlinux': os.path.join(out, 'vmlinux'),
             'bzImage': os.path.join(out, 'bzImage'),
             'initramfs': os.path.join(out, 'initramfs.cpio'),
             'rootfs': os.path.join(out, 'rootfs.ext4')}
    with open(os.path.join(out, '.build.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per folder at a time
        pkg, root, version = fetch_kernel(out)
        try:
            busybox = image.static_busybox()
        except image.ImageError as exc:
            raise BuildError(str(exc))
        want = inputs_hash(pkg, busybox)
        stamp = os.path.join(out, 'image.inputs')
        have = ''
        if os.path.exists(stamp):
            with open(stamp) as f:
                have = f.read().strip()
        if have == want and all(os.path.exists(p) for p in paths.values()):
            log('up to date (%s)' % want)
            return paths
        log('building the images for %s (inputs %s)' % (pkg, want))
        if os.path.exists(stamp):
            os.unlink(stamp)
        work = tempfile.mkdtemp(dir=out, prefix='.build-')
        try:
            build_initramfs(work, busybox, root, version, os.path.join(work, 'initramfs.cpio'))
            build_rootfs(work, busybox, 'kernel %s\ninputs %s\n' % (pkg, want),
                         os.path.join(work, 'rootfs.ext4'))
            for name in ('initramfs', 'rootfs'):
                os.replace(os.path.join(work, os.path.basename(paths[name])), paths[name])
        finally:
            shutil.rmtree(work, ignore_errors=True)
        with open(stamp, 'w') as f:
            f.write(want + '\n')
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=os.path.join(HERE, 'cache'),
                    help='the cache folder (default: tests/linux/cache)')
    args = ap.parse_args()
    try:
        paths = build(args.out)
    except BuildError as exc:
        log(str(exc))
        return 1
    for name, path in paths.items():
        print(name, path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
