#!/usr/bin/env python3
"""Linux boot benchmark: Debian's cloud kernel (ELF vmlinux, PVH entry) and
the initramfs of tests/linux, booted by kiln and by QEMU's microvm machine
(ACPI on, no option ROMs), side by side, the same memory and vCPUs.

For each VMM it starts the process RUNS times and reports the median time
from exec to Linux starting /init (the kernel's "Run /init as init process"
line on the serial console), and the process's resident memory then, less
the guest RAM Linux touched (the VMM's own overhead). Under the test bed's
emulated CPU (TCG) read the kiln/QEMU ratios, not the absolute figures.

usage: bench/linux_boot.py [--runs N] [--build DIR] [--vcpus N] [--mem MIB]
Needs tests/linux/build.py to have run (the image is cached)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import platform_kvm  # noqa: E402
from boot import smaps_split  # noqa: E402

MARKER = b'Run /init as init process'
CMDLINE = 'console=ttyS0 reboot=k panic=1'
TIMEOUT_S = 300


def run_once(cmd, mem_mib):
    """exec cmd; (ms to MARKER, (RSS KiB, guest RAM KiB)) or (None, None)"""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    buf, took, mem = b'', None, None
    fd = p.stdout.fileno()
    while time.monotonic() - t0 < TIMEOUT_S:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        if MARKER in buf:
            took = (time.monotonic() - t0) * 1000
            mem = smaps_split(p.pid, mem_mib << 20)
            break
    p.kill()
    p.wait()
    if took is None:
        sys.stdout.write(buf[-2000:].decode(errors='replace'))
    return took, mem


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--build', default='build')
    ap.add_argument('--vcpus', type=int, default=1)
    ap.add_argument('--mem', type=int, default=256)
    args = ap.parse_args()
    platform_kvm.where()

    cache = os.path.join(platform_kvm.TOP, 'tests', 'linux', 'cache')
    vmlinux, initrd = os.path.join(cache, 'vmlinux'), os.path.join(cache, 'initramfs.cpio')
    if not (os.path.exists(vmlinux) and os.path.exists(initrd)):
        print('no Linux image: run tests/linux/build.py first')
        return 2
    cfg = tempfile.NamedTemporaryFile('w', suffix='.json', delete=False)
    cfg.write('{"boot-source": {"kernel_image_path": "%s", "initrd_path": "%s", '
              '"boot_args": "%s"}, "machine-config": {"vcpu_count": %d, "mem_size_mib": %d}}'
              % (vmlinux, initrd, CMDLINE, args.vcpus, args.mem))
    cfg.close()
    vmms = {'kiln': [os.path.join(args.build, 'daemon/kiln'), '--no-api',
                     '--config-file', cfg.name]}
    qemu = shutil.which('qemu-system-x86_64')
    if qemu:
        vmms['qemu'] = [qemu, '-M', 'microvm,acpi=on,x-option-roms=off,rtc=off,isa-serial=on',
                        '-accel', 'kvm', '-cpu', 'host,-arch-capabilities',
                        '-m', str(args.mem), '-smp', str(args.vcpus), '-nodefaults',
                        '-no-user-config', '-nographic', '-serial', 'stdio', '-no-reboot',
                        '-kernel', vmlinux, '-initrd', initrd, '-append', CMDLINE]
    else:
        print('qemu-system-x86_64 not found: apt-get install qemu-system-x86')

    results = {}
    for name, cmd in vmms.items():
        times, overhead = [], []
        for _ in range(args.runs):
            took, mem = run_once(cmd, args.mem)
            if took is None or mem is None:
                print('%s: Linux did not reach /init: %s' % (name, ' '.join(cmd)))
                break
            times.append(took)
            overhead.append(mem[0] - mem[1])
        if len(times) == args.runs:
            results[name] = (statistics.median(times), statistics.median(overhead))
    os.unlink(cfg.name)

    print('Linux %s, %d vCPU(s), %d MiB, %d runs each (medians)'
          % (os.path.basename(vmlinux), args.vcpus, args.mem, args.runs))
    print('%-6s %24s %26s' % ('vmm', 'exec -> /init (ms)', 'RSS minus guest RAM (MiB)'))
    for name, (t, o) in results.items():
        print('%-6s %24.1f %26.2f' % (name, t, o / 1024))
    if 'kiln' in results and 'qemu' in results:
        k, q = results['kiln'], results['qemu']
        print('kiln/qemu: time %.3f, RSS minus guest RAM %.3f' % (k[0] / q[0], k[1] / q[1]))
    return 0 if 'kiln' in results else 1


if __name__ == '__main__':
    sys.exit(main())
