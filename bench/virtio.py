#!/usr/bin/env python3
"""virtio benchmark: the same test guests booted by kiln and by QEMU's microvm
machine (virtio-blk-device, virtio-net-device on virtio-mmio version 2), the
throughput measured from inside the guest, side by side.

blk: the `blk` guest with blk.mode=bench on a 64 MiB file: 4 KiB sequential
and random reads and writes, depth 32, BLK_MS each ("blk bench: <name> bs
4096 depth 32: X MB/s Y IOPS").
kiln: cache_type Unsafe, io_engine Sync (its defaults) and Async;
QEMU: its defaults (cache=writeback, aio=threads).

net: the `net` guest on a tap in a network namespace of its own:
net.mode=tx (guest -> tap; the host stack drops the frames: the sink) and
net.mode=bench (guest -> tap -> an AF_PACKET echo in this script -> guest),
frames of 1514 bytes, window 64.

Every figure is the median of RUNS boots; the last column is kiln/QEMU
(above 1: kiln is faster). Needs root (netns, tap).

usage: bench/virtio.py [--runs N] [--build DIR] [--only blk|net]"""
import argparse
import ctypes
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import platform_kvm  # noqa: E402

MEM_MIB = 256
DISK_MIB = 64
BLK_MS = 1000
NET_MS = 1000
TAP = 'kbtap0'
GUEST_MAC = '06:00:ac:10:00:02'
BLK_RE = re.compile(r'blk bench: (\w+) bs \d+ depth \d+: ([\d.]+) MB/s (\d+) IOPS')
NET_RE = re.compile(r'net bench: (\w+) size \d+ window \d+: ([\d.]+) MB/s (\d+) frames/s')


def qemu_cmd(guest, args, devices):
    return [shutil.which('qemu-system-x86_64'), '-M',
            'microvm,x-option-roms=off,rtc=off,acpi=off', '-accel', 'kvm',
            '-cpu', 'host,-arch-capabilities', '-m', str(MEM_MIB), '-smp', '1',
            '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio',
            '-no-reboot', '-global', 'virtio-mmio.force-legacy=off',
            '-kernel', guest, '-append', args] + devices


def kiln_cmd(kiln, guest, args, extra, tmpdir):
    # acpi=off: kiln then lists the devices on the command line, where the
    # test guests look for them (else they are in the ACPI DSDT only)
    cfg = ('{"boot-source": {"kernel_image_path": "%s", "boot_args": "acpi=off %s"}, '
           '"machine-config": {"vcpu_count": 1, "mem_size_mib": %d}%s}'
           % (guest, args, MEM_MIB, extra))
    path = os.path.join(tmpdir, 'kiln.json')
    with open(path, 'w') as f:
        f.write(cfg)
    return [kiln, '--no-api', '--config-file', path]


def run(cmd, netns=None, timeout=120):
    if netns:
        cmd = ['ip', 'netns', 'exec', netns] + cmd
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    out = p.stdout.decode(errors='replace')
    if 'FAILED' in out:
        sys.exit('guest failed:\n' + out)
    return out


def parse(regex, out):
    """{name: (MB/s, ops/s)}"""
    return {m.group(1): (float(m.group(2)), int(m.group(3))) for m in regex.finditer(out)}


def median_runs(fn, runs):
    """fn() -> {name: (MB/s, ops/s)}; the median of each over `runs` calls"""
    got = {}
    for _ in range(runs):
        for k, v in fn().items():
            got.setdefault(k, []).append(v)
    return {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v))
            for k, v in got.items()}


def bench_blk(a, kiln, tmpdir):
    guest = os.path.join(a.build, 'tests/guests/blk.elf')
    disk = os.path.join(tmpdir, 'disk.img')
    with open(disk, 'wb') as f:
        f.truncate(DISK_MIB << 20)
    args = 'blk.mode=bench blk.sectors=%d blk.ms=%d' % (DISK_MIB << 11, BLK_MS)
    res = {}
    for engine in ('Sync', 'Async'):
        drive = (', "drives": [{"drive_id": "d0", "path_on_host": "%s", "is_root_device": '
                 'false, "is_read_only": false, "io_engine": "%s"}]' % (disk, engine))
        res['kiln ' + engine] = median_runs(
            lambda: parse(BLK_RE, run(kiln_cmd(kiln, guest, args, drive, tmpdir))), a.runs)
    dev = ['-drive', 'id=d0,file=%s,format=raw,if=none' % disk,
           '-device', 'virtio-blk-device,drive=d0']
    res['qemu'] = median_runs(lambda: parse(BLK_RE, run(qemu_cmd(guest, args, dev))), a.runs)
    return res


class Echo(threading.Thread):
    """answers the net guest's 0x88b5 frames on the tap (no byte checks: speed)"""

    def __init__(self, netns):
        super().__init__(daemon=True)
        fd = os.open('/run/netns/' + netns, os.O_RDONLY)
        # this whole process (Python < 3.12 has no os.setns); fine for a benchmark
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            sys.exit('setns: %s' % os.strerror(ctypes.get_errno()))
        os.close(fd)
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
        self.s.bind((TAP, 0))
        self.s.settimeout(0.2)
        self.mine = self.s.getsockname()[4][:6]
        self.stop = False

    def run(self):
        reply = struct.pack('!H', 0x88b6)
        while not self.stop:
            try:
                f, addr = self.s.recvfrom(2048)
            except socket.timeout:
                continue
            if addr[2] != socket.PACKET_OUTGOING and f[14:18] == b'KILN':
                self.s.send(f[6:12] + self.mine + reply + f[14:])


def bench_net(a, kiln, tmpdir):
    guest = os.path.join(a.build, 'tests/guests/net.elf')
    netns = 'kiln-bench-%d' % os.getpid()
    subprocess.run(['ip', 'netns', 'add', netns], check=True)
    try:
        for cmd in (['ip', 'tuntap', 'add', 'dev', TAP, 'mode', 'tap'],
                    ['ip', 'link', 'set', TAP, 'up'],
                    ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']):
            subprocess.run(['ip', 'netns', 'exec', netns] + cmd, check=True)
        nic = (', "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "%s", '
               '"guest_mac": "%s"}]' % (TAP, GUEST_MAC))
        dev = ['-netdev', 'tap,id=n0,ifname=%s,script=no,downscript=no' % TAP,
               '-device', 'virtio-net-device,netdev=n0,mac=%s' % GUEST_MAC]
        res = {'kiln': {}, 'qemu': {}}
        echo = Echo(netns)
        echo.start()
        for mode in ('tx', 'bench'):
            args = 'net.mode=%s net.size=1514 net.window=64 net.ms=%d' % (mode, NET_MS)
            res['kiln'].update(median_runs(lambda: parse(
                NET_RE, run(kiln_cmd(kiln, guest, args, nic, tmpdir), netns)), a.runs))
            res['qemu'].update(median_runs(lambda: parse(
                NET_RE, run(qemu_cmd(guest, args, dev), netns)), a.runs))
        echo.stop = True
        return res
    finally:
        subprocess.run(['ip', 'netns', 'del', netns])


def table(title, res, ref='qemu'):
    print('\n' + title)
    names = list(res[ref].keys())
    vmms = [v for v in res if v != ref]
    head = '%-10s' % '' + ''.join('%22s' % v for v in vmms) + '%22s' % ref
    head += ''.join('%14s' % ('%s/qemu' % v.split()[-1] if ' ' in v else 'kiln/qemu')
                    for v in vmms)
    print(head)
    for n in names:
        q = res[ref][n]
        row = '%-10s' % n
        for v in vmms + [ref]:
            mb, ops = res[v].get(n, (0, 0))
            row += '%10.1f MB/s %7d/s' % (mb, ops)
        for v in vmms:
            row += '%14.2f' % (res[v].get(n, (0, 0))[0] / q[0] if q[0] else 0)
        print(row)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--build', default='build')
    ap.add_argument('--only', choices=['blk', 'net'])
    a = ap.parse_args()
    platform_kvm.where()
    kiln = os.path.join(a.build, 'daemon/kiln')
    if not shutil.which('qemu-system-x86_64'):
        sys.exit('qemu-system-x86_64 not found: apt-get install qemu-system-x86')
    if os.geteuid() != 0:
        sys.exit('needs root (network namespace, tap)')
    print('median of %d runs; columns: MB/s and ops/s inside the guest' % a.runs)
    with tempfile.TemporaryDirectory(prefix='kiln-bench-') as tmpdir:
        if a.only != 'net':
            table('blk (4 KiB, depth 32, %d MiB file)' % DISK_MIB, bench_blk(a, kiln, tmpdir))
        if a.only != 'blk':
            table('net (1514-byte frames, window 64; tx: guest -> tap, bench: echo)',
                  bench_net(a, kiln, tmpdir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
