#!/usr/bin/env python3
"""kiln's test bed: runs one command as root inside a Linux VM that has an
ordinary /dev/kvm, and exits with the command's exit status.

    tests/testbed/testbed.py [options] -- COMMAND [ARG...]

The VM is QEMU with Debian's linux-image-amd64 (fetched with apt-get
download and cached) and an initramfs made here from busybox-static and that
kernel's modules. Its root is this host's / shared read-only over virtio-9p
under a tmpfs overlay, so the VM has exactly the host's packages; the
git work tree around the current folder and the folders given with --share
are shared writable at the same paths. Inside, kvm_amd or
kvm_intel, tun, veth and vhost_vsock are loaded, /proc, /sys, /dev, cgroup2,
/tmp are fresh, loopback is up, and COMMAND runs in the same directory with
the same environment.

Acceleration: KVM with -cpu host when this host's /dev/kvm can run an
ordinary guest with hardware virtualization passed on (vmx/svm and the
module's nested option), else TCG with -cpu max,xsave=off, whose AMD SVM
emulation gives the VM a real KVM (without XSAVE: docs/testbed.md, "XSAVE
off"). KILN_TESTBED_ACCEL=kvm|tcg forces one; KILN_TESTBED_TCG_CPU replaces
TCG's CPU model.

Exit status: the command's; 124 when --timeout passed; 125 when the test
bed itself failed (QEMU or the kernel missing, the VM died or panicked, or
it stopped making progress: no heartbeat for --stall seconds). In those
cases the last lines of the VM's kernel log are printed.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import image  # noqa: E402  (the kernel and initramfs, cached)

TESTBED_FAILED = 125
TIMED_OUT = 124
BOOT_GRACE = 150  # seconds to the first heartbeat (a boot takes 10-30 s)


def say(msg):
    print('testbed: ' + msg, file=sys.stderr, flush=True)


def host_kvm_usable():
    """True when this host's /dev/kvm can run an ordinary Linux guest with
    hardware virtualization of its own (what the VM's kvm_amd/kvm_intel
    need): the CPU shows vmx or svm, and the vendor module allows nesting.
    A paravirtual /dev/kvm (PVM) has neither flag and is not used."""
    try:
        fd = os.open('/dev/kvm', os.O_RDWR)
        os.close(fd)
    except OSError:
        return False, 'no usable /dev/kvm'
    flags = set()
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('flags'):
                flags = set(line.split(':', 1)[1].split())
                break
    for flag, mod in (('vmx', 'kvm_intel'), ('svm', 'kvm_amd')):
        if flag not in flags:
            continue
        try:
            with open('/sys/module/%s/parameters/nested' % mod) as f:
                nested = f.read().strip()
        except OSError:
            return False, '%s is not loaded' % mod
        if nested in ('Y', '1'):
            return True, '%s with nested virtualization' % mod
        return False, '%s without nested virtualization' % mod
    return False, '/dev/kvm without vmx/svm (a paravirtual KVM)'


def pick_accel():
    forced = os.environ.get('KILN_TESTBED_ACCEL')
    if forced in ('kvm', 'tcg'):
        return forced, 'forced by KILN_TESTBED_ACCEL'
    ok, why = host_kvm_usable()
    return ('kvm' if ok else 'tcg'), why


def mem_available_mib():
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) // 1024
    return 4096


def default_shares():
    try:
        top = subprocess.check_output(['git', 'rev-parse', '--show-toplevel'],
                                      stderr=subprocess.DEVNULL, text=True).strip()
        if top:
            return [top]
    except (OSError, subprocess.CalledProcessError):
        pass
    return [os.getcwd()]


class Qmp:
    """Just enough of QMP to read registers and press keys on a VM that
    stopped making progress."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b''
        self._read()  # greeting
        self.cmd('qmp_capabilities')

    def _read(self):
        while b'\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError('QMP closed')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        return json.loads(line)

    def cmd(self, name, **args):
        self.sock.sendall(json.dumps({'execute': name, 'arguments': args}).encode() + b'\n')
        while True:
            msg = self._read()
            if 'return' in msg or 'error' in msg:
                return msg

    def hmp(self, line):
        return self.cmd('human-monitor-command', **{'command-line': line}).get('return', '')


def tail(path, lines):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return ''
    return '\n'.join(data.decode(errors='replace').splitlines()[-lines:])


class Symbols:
    """Kernel text symbols from the kallsyms file stage2.py saved."""

    def __init__(self, path):
        self.addrs, self.names = [], []
        try:
            with open(path) as f:
                rows = []
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[1] in 'tTwW':
                        rows.append((int(parts[0], 16), parts[2]))
        except (OSError, ValueError):
            return
        rows.sort()
        self.addrs = [r[0] for r in rows]
        self.names = [r[1] for r in rows]

    def name(self, addr):
        import bisect
        i = bisect.bisect_right(self.addrs, addr) - 1
        if i < 0 or addr - self.addrs[i] > 0x10000:
            return None
        return '%s+0x%x' % (self.names[i], addr - self.addrs[i])


def diagnose_stall(qmp_path, console, jobdir):
    """What a stalled VM was doing: every vCPU's RIP in a few samples, and
    the kernel addresses found on its stack, symbolized; then the kernel's
    own view (sysrq l: backtraces of all CPUs, w: blocked tasks) if the VM
    still takes interrupts. The raw registers go to stall-registers.txt."""
    syms = Symbols(os.path.join(jobdir, 'kallsyms'))

    def sym(addr):
        return syms.name(addr) or hex(addr)
    try:
        q = Qmp(qmp_path)
        raw = []
        for n in range(4):
            regs = q.hmp('info registers -a')
            raw.append(regs)
            rips = [int(l.split()[0][4:], 16) for l in regs.splitlines() if l.startswith('RIP=')]
            say('sample %d: %s' % (n + 1, '  '.join(
                'cpu%d %s' % (i, sym(r)) for i, r in enumerate(rips))))
            time.sleep(1.5)
        for cpu in range(len(rips)):
            q.hmp('cpu %d' % cpu)
            rsp = [l for l in raw[-1].split('CPU#%d' % cpu)[1].splitlines() if 'RSP=' in l]
            if not rsp:
                continue
            sp = int(rsp[0].split('RSP=')[1].split()[0], 16)
            dump = q.hmp('x/96gx 0x%x' % sp)
            frames = []
            for line in dump.splitlines():
                for word in line.split(':', 1)[-1].split():
                    try:
                        name = syms.name(int(word, 16))
                    except ValueError:
                        continue
                    if name:
                        frames.append(name)
            say('cpu%d stack (kernel addresses on it): %s' % (cpu, ' < '.join(frames[:24]) or '-'))
        with open(os.path.join(jobdir, 'stall-registers.txt'), 'w') as f:
            f.write('\n\n'.join(raw))
        for key in ('l', 'w'):
            q.hmp('sendkey alt-sysrq-' + key)
        time.sleep(8)
    except (OSError, ValueError, IndexError) as exc:
        say('could not ask QEMU about the stall: %s' % exc)
    say('last lines of the VM kernel log (%s):' % console)
    print(tail(console, 60), file=sys.stderr, flush=True)


def build_qemu_cmd(qemu, accel, cpus, mem_mib, img, jobdir, shares, kernel_args):
    cmd = [qemu, '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
           '-M', 'pc', '-smp', str(cpus), '-m', '%dM' % mem_mib,
           '-kernel', img.kernel, '-initrd', img.initrd,
           '-append', kernel_args,
           '-serial', 'file:' + os.path.join(jobdir, 'console.log'),
           '-serial', 'file:' + os.path.join(jobdir, 'output.log'),
           '-serial', 'file:' + os.path.join(jobdir, 'heartbeat.log'),
           '-qmp', 'unix:%s,server=on,wait=off' % os.path.join(jobdir, 'qmp.sock'),
           '-device', 'virtio-rng-pci']
    if accel == 'kvm':
        cmd += ['-accel', 'kvm', '-cpu', 'host']
    else:
        thread = os.environ.get('KILN_TESTBED_TCG_THREAD', 'multi')
        # XSAVE off: the emulated SVM misses the guest's XSETBV (docs/testbed.md)
        cpu = os.environ.get('KILN_TESTBED_TCG_CPU', 'max,xsave=off')
        cmd += ['-accel', 'tcg,thread=%s,tb-size=512' % thread, '-cpu', cpu]
    fsdevs = [('root', '/', True), ('job', jobdir, False)]
    fsdevs += [('s%d' % i, path, False) for i, path in enumerate(shares)]
    for tag, path, ro in fsdevs:
        cmd += ['-fsdev', 'local,id=%s,path=%s,security_model=none,multidevs=remap%s'
                % (tag, path, ',readonly=on' if ro else ''),
                '-device', 'virtio-9p-pci,fsdev=%s,mount_tag=%s' % (tag, tag)]
    return cmd


class Follower:
    """Copies what the VM appends to a file to one of our streams."""

    def __init__(self, path, out):
        self.path, self.out, self.pos = path, out, 0

    def poll(self):
        try:
            with open(self.path, 'rb') as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return False
        if data:
            self.pos += len(data)
            self.out.buffer.write(data.replace(b'\r\n', b'\n'))
            self.out.flush()
        return bool(data)


def run(args):
    accel, why = pick_accel()
    cpus = args.cpus or min(os.cpu_count() or 2, 4)
    mem = args.mem or max(2048, min(16384, mem_available_mib() * 6 // 10))
    qemu = shutil.which('qemu-system-x86_64')
    if not qemu:
        say('qemu-system-x86_64 is missing (apt-get install qemu-system-x86)')
        return TESTBED_FAILED
    try:
        img = image.prepare()
    except image.ImageError as exc:
        say(str(exc))
        return TESTBED_FAILED
    # the work tree (or the current folder) always, so the command's folder
    # exists inside even when it lies under /tmp, a fresh tmpfs there
    shares = []
    for s in default_shares() + (args.share or []):
        s = os.path.realpath(s)
        if s not in shares:
            shares.append(s)
    for s in shares:
        if not os.path.isdir(s):
            say('share %s is not a folder' % s)
            return TESTBED_FAILED
    if args.log_dir:
        os.makedirs(args.log_dir, exist_ok=True)
        jobdir = tempfile.mkdtemp(prefix='testbed.', dir=args.log_dir)
    else:
        jobdir = tempfile.mkdtemp(prefix='kiln-testbed.')
    job = {
        'argv': args.command,
        'cwd': os.getcwd(),
        'env': dict(os.environ),
        'shares': [['s%d' % i, p] for i, p in enumerate(shares)],
        'heartbeat_s': 5,
    }
    # guests run many times slower under an emulated CPU: the integration
    # harness scales its waits on them by this (tests/integration/harness.h)
    # which CPU the commands inside run on (scripts/run-tests.py reruns an
    # executable whose guest triple-faulted only under TCG)
    job['env']['KILN_TESTBED_ACCEL'] = accel
    if accel == 'tcg':
        job['env'].setdefault('KILN_TIME_SCALE', os.environ.get('KILN_TESTBED_TIME_SCALE', '4'))
    with open(os.path.join(jobdir, 'job.json'), 'w') as f:
        json.dump(job, f)
    shutil.copy(os.path.join(HERE, 'stage2.py'), os.path.join(jobdir, 'stage2.py'))
    for name in ('console.log', 'output.log', 'heartbeat.log'):
        open(os.path.join(jobdir, name), 'wb').close()
    kernel_args = ' '.join([
        'console=ttyS0', 'panic=-1', 'oops=panic', 'quiet', 'loglevel=4',
        'nokaslr', 'tsc=reliable', 'no_timer_check', 'sysrq_always_enabled',
        # no transparent huge pages in the bed (docs/testbed.md, "Rare triple
        # faults"): fewer changes to the nested page tables under emulation
        'transparent_hugepage=never',
    ])
    cmd = build_qemu_cmd(qemu, accel, cpus, mem, img, jobdir, shares, kernel_args)
    say('%s (%s), %d vCPUs, %d MiB, kernel %s; logs in %s'
        % (accel.upper(), why, cpus, mem, img.version, jobdir))
    if args.verbose:
        say(' '.join(shlex.quote(c) for c in cmd))
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    out = Follower(os.path.join(jobdir, 'output.log'), sys.stdout)
    beat = os.path.join(jobdir, 'heartbeat.log')
    console = os.path.join(jobdir, 'console.log')
    start = last_beat = time.monotonic()
    beat_size = 0
    status = None
    try:
        while True:
            out.poll()
            if qemu.poll() is not None:
                out.poll()
                break
            size = os.path.getsize(beat)
            now = time.monotonic()
            if size != beat_size:
                beat_size, last_beat = size, now
            if args.timeout and now - start > args.timeout:
                say('the command did not finish within %d s; stopping the VM' % args.timeout)
                diagnose_stall(os.path.join(jobdir, 'qmp.sock'), console, jobdir)
                status = TIMED_OUT
                break
            # before the first beat the VM is booting: a loaded host may
            # take a while, which is not a stall
            limit = args.stall if beat_size else max(args.stall, BOOT_GRACE)
            if now - last_beat > limit:
                say('STALL: the VM made no progress for %d s (no heartbeat%s); '
                    'this is a test-bed failure, not a test result'
                    % (limit, '' if beat_size else ' since it started'))
                diagnose_stall(os.path.join(jobdir, 'qmp.sock'), console, jobdir)
                status = TESTBED_FAILED
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        status = 130
    finally:
        if qemu.poll() is None:
            os.killpg(qemu.pid, signal.SIGKILL)
        qemu_out = qemu.communicate()[0].decode(errors='replace')
    if status is not None:
        return status
    rc_path = os.path.join(jobdir, 'rc')
    try:
        with open(rc_path) as f:
            rc = int(f.read().strip())
    except (OSError, ValueError):
        say('the VM ended without the command finishing (QEMU status %d)' % qemu.returncode)
        if qemu_out.strip():
            say('QEMU said: ' + qemu_out.strip()[-2000:])
        say('last lines of the VM kernel log (%s):' % console)
        print(tail(console, 40), file=sys.stderr, flush=True)
        return TESTBED_FAILED
    if not args.log_dir and rc == 0 and not args.keep:
        shutil.rmtree(jobdir, ignore_errors=True)
    return rc


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--share', action='append', metavar='DIR',
                   help='a folder shared writable at the same path (repeatable), '
                   'besides the git work tree around the current folder, always shared')
    p.add_argument('--timeout', type=int, default=0, help='seconds for the whole VM (0: none)')
    p.add_argument('--stall', type=int, default=int(os.environ.get('KILN_TESTBED_STALL', 120)),
                   help='seconds without a heartbeat before the VM counts as stalled')
    p.add_argument('--cpus', type=int, default=0)
    p.add_argument('--mem', type=int, default=0, help='MiB (default: from free memory)')
    p.add_argument('--log-dir', help='keep the VM logs in a folder under DIR')
    p.add_argument('--keep', action='store_true', help='keep the logs of a passing run')
    p.add_argument('--prepare', action='store_true',
                   help='only fetch the kernel and build the initramfs')
    p.add_argument('-v', '--verbose', action='store_true')
    p.add_argument('command', nargs='*')
    args = p.parse_args()
    if args.prepare:
        try:
            img = image.prepare()
        except image.ImageError as exc:
            say(str(exc))
            return TESTBED_FAILED
        say('kernel %s, initramfs %s' % (img.kernel, img.initrd))
        return 0
    if not args.command:
        p.error('no command')
    # SIGTERM (timeout(1), a runner giving up, kill) ends the VM too: as an
    # exception, run()'s finally kills QEMU instead of leaving it running
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(128 + sig))
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
