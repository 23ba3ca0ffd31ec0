#!/usr/bin/env python3
"""Boot benchmark: the same hello test guest booted by kiln and by QEMU's
microvm machine, side by side.

For each VMM it starts the process RUNS times and reports the median time
from exec to the guest's first byte on the serial console, and the process's
resident memory while the guest runs, split into guest RAM the guest touched
and everything else (the VMM's own overhead).

usage: bench/boot.py [--runs N] [--build DIR]"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import platform_kvm  # noqa: E402

MEM_MIB = 128


def smaps_split(pid, guest_bytes):
    """(total RSS, RSS of the guest RAM mapping) in KiB, from /proc/PID/smaps:
    the guest mapping is the one anonymous mapping of exactly guest_bytes
    (or, for QEMU, its named RAM block of that size)."""
    total = guest = 0
    size = 0
    try:
        with open('/proc/%d/smaps' % pid) as f:
            for line in f:
                m = re.match(r'^([0-9a-f]+)-([0-9a-f]+) ', line)
                if m:
                    size = int(m.group(2), 16) - int(m.group(1), 16)
                    continue
                if line.startswith('Rss:'):
                    kb = int(line.split()[1])
                    total += kb
                    if size == guest_bytes:
                        guest += kb
    except FileNotFoundError:
        return None
    return total, guest


def run_once(cmd, first_byte_marker, hold_marker):
    """exec cmd; returns (ms to first serial byte, rss total KiB, guest KiB)"""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    first = None
    buf = b''
    mem = None
    fd = p.stdout.fileno()
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        if first is None:
            first = (time.monotonic() - t0) * 1000
        buf += chunk
        if mem is None and hold_marker.encode() in buf:
            time.sleep(0.05)
            mem = smaps_split(p.pid, MEM_MIB << 20)
            p.kill()
            break
    p.wait()
    return first, mem


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=15)
    ap.add_argument('--build', default='build')
    args = ap.parse_args()
    platform_kvm.where()

    guest = os.path.join(args.build, 'tests/guests/hello.elf')
    kiln = os.path.join(args.build, 'daemon/kiln')
    cmdline = 'console=ttyS0 sleep=2000'
    cfg = tempfile.NamedTemporaryFile('w', suffix='.json', delete=False)
    cfg.write('{"boot-source": {"kernel_image_path": "%s", "boot_args": "%s"},'
              ' "machine-config": {"vcpu_count": 1, "mem_size_mib": %d}}'
              % (os.path.abspath(guest), cmdline, MEM_MIB))
    cfg.close()
    vmms = {
        'kiln': [kiln, '--no-api', '--config-file', cfg.name],
    }
    qemu = shutil.which('qemu-system-x86_64')
    if qemu:
        vmms['qemu'] = [qemu, '-M', 'microvm,x-option-roms=off,rtc=off,isa-serial=on',
                        '-accel', 'kvm', '-cpu', 'host,-arch-capabilities', '-m', str(MEM_MIB), '-smp', '1',
                        '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio',
                        '-no-reboot', '-kernel', guest, '-append', cmdline]
    else:
        print('qemu-system-x86_64 not found: apt-get install qemu-system-x86')

    results = {}
    for name, cmd in vmms.items():
        times, rss, overhead = [], [], []
        for _ in range(args.runs):
            first, mem = run_once(cmd, '', 'sleeping')
            if first is None or mem is None:
                print('%s: the guest did not start: %s' % (name, ' '.join(cmd)))
                break
            times.append(first)
            rss.append(mem[0])
            overhead.append(mem[0] - mem[1])
        if times:
            results[name] = (statistics.median(times), statistics.median(rss),
                             statistics.median(overhead))
    os.unlink(cfg.name)

    print('%-6s %22s %14s %26s' % ('vmm', 'exec->first byte (ms)', 'RSS (MiB)',
                                  'RSS minus guest RAM (MiB)'))
    for name, (t, r, o) in results.items():
        print('%-6s %22.2f %14.2f %26.2f' % (name, t, r / 1024, o / 1024))
    if 'kiln' in results and 'qemu' in results:
        k, q = results['kiln'], results['qemu']
        print('kiln/qemu: time %.3f, RSS %.3f, RSS minus guest RAM %.3f'
              % (k[0] / q[0], k[1] / q[1], k[2] / q[2]))
    return 0 if 'kiln' in results else 1


if __name__ == '__main__':
    sys.exit(main())
