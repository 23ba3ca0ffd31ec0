"""The test bed's kernel and initramfs: Debian's linux-image-amd64 fetched
with `apt-get download` (no root needed once apt knows the package), and an
initramfs written here (newc cpio, no cpio tool needed) from busybox-static,
the modules the VM needs in dependency order, and init.sh.

Cached in $KILN_TESTBED_CACHE (default <top>/.cache/testbed), one folder per
kernel package; the initramfs is rebuilt when init.sh, this file or the
module list changes.

module_order, Cpio and static_busybox serve tests/linux/build.py as well."""
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

# Loaded in this order (each after its dependencies, which modprobe works out):
# the 9p root and its overlay, then what kiln's tests use (bridge: two
# namespaces standing for hosts that share one network).
MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay', 'tun', 'veth', 'bridge',
           'vhost_vsock', 'virtio_rng']
# the KVM vendor module is chosen inside by /proc/cpuinfo
KVM_MODULES = {'amd': 'kvm_amd', 'intel': 'kvm_intel'}


class ImageError(Exception):
    pass


class Image:
    def __init__(self, folder, version):
        self.folder = folder
        self.version = version
        self.kernel = os.path.join(folder, 'vmlinuz')
        self.initrd = os.path.join(folder, 'initramfs.cpio')


def _run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


def _resolve_package():
    """linux-image-amd64 is a metapackage; the versioned image it depends on
    is what apt-get download fetches."""
    def resolve():
        r = _run(['apt-cache', 'depends', 'linux-image-amd64'])
        for line in r.stdout.splitlines():
            line = line.strip()
            if line.startswith('Depends: linux-image-') and line.endswith('-amd64'):
                return line.split(': ', 1)[1]
        return None
    if not shutil.which('apt-cache'):
        raise ImageError('apt-cache is missing: the test bed needs a Debian host')
    pkg = resolve()
    if pkg is None and os.geteuid() == 0:
        _run(['apt-get', 'update', '-qq'])
        pkg = resolve()
    if pkg is None:
        raise ImageError('cannot resolve linux-image-amd64 (run apt-get update as root)')
    return pkg


def _fetch_kernel(pkg, folder):
    """Downloads and unpacks the package into folder/root (once)."""
    root = os.path.join(folder, 'root')
    if os.path.isdir(os.path.join(root, 'lib', 'modules')):
        return root
    os.makedirs(folder, exist_ok=True)
    work = tempfile.mkdtemp(dir=folder)
    try:
        os.chmod(work, 0o755)  # apt's _apt user downloads into it
        r = _run(['apt-get', 'download', '-q', pkg], cwd=work)
        debs = [f for f in os.listdir(work) if f.endswith('.deb')]
        if r.returncode != 0 or not debs:
            raise ImageError('apt-get download %s failed:\n%s' % (pkg, r.stdout))
        r = _run(['dpkg-deb', '-x', os.path.join(work, debs[0]), os.path.join(work, 'root')])
        if r.returncode != 0:
            raise ImageError('dpkg-deb -x failed:\n' + r.stdout)
        os.rename(os.path.join(work, 'root'), root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root


def module_order(root, version, names):
    """The .ko files to insmod, dependencies first, for the named modules."""
    if not shutil.which('depmod') or not shutil.which('modprobe'):
        raise ImageError('depmod/modprobe are missing (apt-get install kmod)')
    moddir = os.path.join(root, 'lib', 'modules', version)
    if not os.path.exists(os.path.join(moddir, 'modules.dep')):
        r = _run(['depmod', '-b', root, version])
        if r.returncode != 0:
            raise ImageError('depmod failed:\n' + r.stdout)
    order = []
    for name in names:
        r = _run(['modprobe', '-d', root, '-S', version, '--show-depends', name])
        if r.returncode != 0:
            raise ImageError('module %s is not in %s:\n%s' % (name, version, r.stdout))
        for line in r.stdout.splitlines():
            parts = line.split()
            if parts[:1] == ['insmod'] and parts[1] not in order:
                order.append(parts[1])
    return order


class Cpio:
    """newc archive writer: files, folders, symlinks and device nodes, all
    owned by root, whatever user builds it."""

    def __init__(self, path):
        self.f = open(path, 'wb')
        self.ino = 1

    def _entry(self, name, mode, data=b'', rdev=(0, 0)):
        name_b = name.encode() + b'\0'
        hdr = '070701' + ''.join('%08x' % v for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
            len(name_b), 0))
        self.ino += 1
        self.f.write(hdr.encode() + name_b)
        self.f.write(b'\0' * (-(110 + len(name_b)) % 4))
        self.f.write(data)
        self.f.write(b'\0' * (-len(data) % 4))

    def folder(self, name):
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor):
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def close(self):
        self._entry('TRAILER!!!', 0)
        self.f.close()


def _is_static_elf(path):
    """True for an x86-64 ELF without a PT_INTERP program header."""
    import struct
    with open(path, 'rb') as f:
        data = f.read()
    if data[:4] != b'\x7fELF' or data[4] != 2:
        return False
    phoff, = struct.unpack_from('<Q', data, 0x20)
    phentsize, phnum = struct.unpack_from('<HH', data, 0x36)
    for i in range(phnum):
        p_type, = struct.unpack_from('<I', data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def static_busybox():
    for path in ('/bin/busybox', '/usr/bin/busybox'):
        if os.path.exists(path) and _is_static_elf(path):
            return path
    raise ImageError('a static busybox is missing (apt-get install busybox-static)')


def _build_initramfs(root, version, out):
    common = module_order(root, version, MODULES)
    vendor = {v: [m for m in module_order(root, version, [mod]) if m not in common]
              for v, mod in KVM_MODULES.items()}
    with open(os.path.join(HERE, 'init.sh'), 'rb') as f:
        init = f.read()
    tmp = out + '.tmp'
    c = Cpio(tmp)
    for d in ('bin', 'dev', 'proc', 'sys', 'lib', 'lib/modules', 'lower', 'rw', 'newroot'):
        c.folder(d)
    c.chardev('dev/console', 5, 1)
    c.chardev('dev/null', 1, 3)
    with open(static_busybox(), 'rb') as f:
        c.file('bin/busybox', f.read(), 0o755)
    c.symlink('bin/sh', 'busybox')
    c.file('init', init, 0o755)
    lists = {'common': common}
    lists.update({'kvm_' + v: mods for v, mods in vendor.items()})
    for listname, mods in lists.items():
        names = []
        for ko in mods:
            base = os.path.basename(ko)
            with open(ko, 'rb') as f:
                c.file('lib/modules/' + base, f.read())
            names.append(base)
        c.file('lib/modules/%s.list' % listname, ('\n'.join(names) + '\n').encode())
    c.close()
    os.rename(tmp, out)


def _inputs_hash(pkg):
    h = hashlib.sha256(pkg.encode())
    for name in ('init.sh', 'image.py'):
        with open(os.path.join(HERE, name), 'rb') as f:
            h.update(f.read())
    h.update(repr(MODULES).encode())
    return h.hexdigest()[:16]


def prepare():
    """Returns the Image, fetching and building what the cache lacks."""
    cache = os.environ.get('KILN_TESTBED_CACHE') or os.path.join(TOP, '.cache', 'testbed')
    pkg = _resolve_package()
    folder = os.path.join(cache, pkg)
    root = _fetch_kernel(pkg, folder)
    versions = os.listdir(os.path.join(root, 'lib', 'modules'))
    if len(versions) != 1:
        raise ImageError('expected one kernel version in %s, found %s' % (pkg, versions))
    version = versions[0]
    img = Image(folder, version)
    if not os.path.exists(img.kernel):
        shutil.copy(os.path.join(root, 'boot', 'vmlinuz-' + version), img.kernel)
    stamp = os.path.join(folder, 'initramfs.inputs')
    want = _inputs_hash(pkg)
    have = open(stamp).read().strip() if os.path.exists(stamp) else ''
    if have != want or not os.path.exists(img.initrd):
        _build_initramfs(root, version, img.initrd)
        with open(stamp, 'w') as f:
            f.write(want + '\n')
    return img
