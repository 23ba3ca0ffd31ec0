#!/usr/bin/env python3
"""Live migration benchmark: total time, downtime and bytes on the wire for
one guest moved between two processes on this machine, kiln beside QEMU.

Guests (tests/guests, 1 vCPU): `idle` is the hello guest asleep; `busy` is
memck rewriting and checking 32 MiB without pause (tests/guests/memck.c),
whose reports must go on on the target with no MISMATCH, or the run is
reported FAILED. Each at every --sizes RAM size, over every --transports
(`tcp`: loopback TCP, `unix`: a unix socket).

kiln: a target with PUT /migration/receive, the source with PUT
      /migration/send (max_downtime_ms as --downtime); the figures are the
      source's completion line (downtime, total, link speed) and the
      target's GET /migration (bytes). The last column divides kiln's total
      time by the time the RAM in use (the source's RSS before the move,
      kiln's own 2 MiB included) takes at the link speed kiln measured.
QEMU: `-M microvm`, the target started with `-incoming tcp:...|unix:...`,
      the source told `migrate-set-parameters` (downtime-limit the same
      value, max-bandwidth 10 GiB/s since kiln has no cap by default) and
      `migrate`; the figures are query-migrate's total-time, downtime
      and ram.transferred.

usage: bench/migration.py [--runs N] [--sizes 256,2048] [--transports tcp,unix]
                          [--guests idle,busy] [--downtime MS] [--build DIR]"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import platform_kvm  # noqa: E402
from snapshot import Qmp, http, wait_sock  # noqa: E402

ARGS = {'idle': 'console=ttyS0 reboot=k panic=1 acpi=off sleep=600000',
        'busy': 'console=ttyS0 reboot=k panic=1 acpi=off memck.mib=32 memck.report_ms=100'}
GUEST = {'idle': 'hello.elf', 'busy': 'memck.elf'}
REPORT = re.compile(rb'memck: report (\d+) ')
PORT = [47000]


def next_addr(transport, tmp):
    PORT[0] += 1
    if transport == 'tcp':
        return 'tcp:127.0.0.1:%d' % PORT[0]
    return 'unix:%s' % os.path.join(tmp, 'mig-%d.sock' % PORT[0])


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.01)
    raise RuntimeError('timed out waiting for ' + what)


def last_report(path):
    found = REPORT.findall(read(path))
    return int(found[-1]) if found else 0


def guest_ready(kind, out):
    """the busy guest has reported a few times (its memory is all written)"""
    if kind == 'busy':
        wait_for(lambda: last_report(out) >= 3, 60, 'memck reports')
    else:
        time.sleep(0.3)


def guest_survived(kind, src_out, dst_out):
    """the busy guest's reports go on on the target, none of them a mismatch"""
    if kind != 'busy':
        return True
    before = last_report(src_out)
    try:
        wait_for(lambda: last_report(dst_out) >= before + 3, 30, 'reports on the target')
    except RuntimeError:
        return False
    return b'MISMATCH' not in read(dst_out) and b'MISMATCH' not in read(src_out)


def rss_bytes(pid):
    """the process's resident memory: the guest RAM in use plus kiln's own"""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    return 0


def kiln_run(kiln, kind, guest, mib, transport, downtime, tmp):
    procs = []
    try:
        outs = {}
        for name in ('src', 'dst'):
            outs[name] = os.path.join(tmp, 'k-%s.out' % name)
            sock = os.path.join(tmp, 'k-%s.sock' % name)
            with open(outs[name], 'wb') as f:
                procs.append(subprocess.Popen([kiln, '--api-sock', sock], stdout=f,
                                              stderr=subprocess.STDOUT))
            assert wait_sock(sock), 'kiln did not start'
        src, dst = os.path.join(tmp, 'k-src.sock'), os.path.join(tmp, 'k-dst.sock')
        http(src, 'PUT', '/boot-source', {'kernel_image_path': guest, 'boot_args': ARGS[kind]})
        http(src, 'PUT', '/machine-config', {'vcpu_count': 1, 'mem_size_mib': mib})
        st, body = http(src, 'PUT', '/actions', {'action_type': 'InstanceStart'})
        assert st == 204, body
        guest_ready(kind, outs['src'])
        used = rss_bytes(procs[0].pid)
        addr = next_addr(transport, tmp)
        st, body = http(dst, 'PUT', '/migration/receive', {'listen': addr})
        assert st == 204, body
        st, body = http(src, 'PUT', '/migration/send',
                        {'destination': addr, 'max_downtime_ms': downtime})
        assert st == 204, body
        procs[0].wait(timeout=300)
        m = re.search(rb'complete: downtime (\d+) ms, total (\d+) ms.*link (\d+) MiB/s',
                      read(outs['src']))
        if procs[0].returncode != 0 or not m:
            return None
        st, body = http(dst, 'GET', '/migration')
        sent = json.loads(body)['bytes']
        ok = guest_survived(kind, outs['src'], outs['dst'])
        # bytes per ms; 0 when no round was long enough to time
        link = int(m.group(3)) * 2**20 / 1000.0
        return (int(m.group(2)), int(m.group(1)), sent, used / link if link else 0) if ok else None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def qemu_cmd(qemu, kind, guest, mib, qmp, serial, extra):
    return [qemu, '-M', 'microvm,x-option-roms=off,rtc=off', '-accel', 'kvm',
            '-cpu', 'host,-arch-capabilities', '-m', str(mib), '-smp', '1', '-nodefaults',
            '-no-user-config', '-display', 'none', '-serial', 'file:' + serial,
            '-kernel', guest, '-append', ARGS[kind],
            '-qmp', 'unix:%s,server=on,wait=off' % qmp] + extra


def qemu_run(qemu, kind, guest, mib, transport, downtime, tmp):
    procs = []
    try:
        addr = next_addr(transport, tmp)
        paths = {n: (os.path.join(tmp, 'q-%s.qmp' % n), os.path.join(tmp, 'q-%s.out' % n))
                 for n in ('src', 'dst')}
        for name, extra in (('src', []), ('dst', ['-incoming', addr])):
            qmp, serial = paths[name]
            procs.append(subprocess.Popen(qemu_cmd(qemu, kind, guest, mib, qmp, serial, extra),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            assert wait_sock(qmp), 'QEMU did not start'
        src = Qmp(paths['src'][0])
        guest_ready(kind, paths['src'][1])
        # QEMU's default bandwidth cap (128 MiB/s) would keep a busy guest
        # from converging; kiln has none unless told, so both run uncapped
        src.cmd('migrate-set-parameters', **{'downtime-limit': downtime,
                                             'max-bandwidth': 10 << 30})
        r = src.cmd('migrate', uri=addr)
        assert 'return' in r, r
        end = time.time() + 120
        while time.time() < end:
            info = src.cmd('query-migrate')['return']
            if info.get('status') in ('completed', 'failed', 'cancelled'):
                break
            time.sleep(0.005)
        if info.get('status') != 'completed':
            print('QEMU: migration %s after 120 s' % info.get('status'), file=sys.stderr)
            return None
        dst = Qmp(paths['dst'][0])
        dst.wait_status('running', timeout=30)
        ok = guest_survived(kind, paths['src'][1], paths['dst'][1])
        return (info['total-time'], info['downtime'], info['ram']['transferred'], 0) if ok else None
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()


def summary(results):
    """medians of (total ms, downtime ms, bytes, ideal ms), or None when a
    run failed"""
    if not results or any(r is None for r in results):
        return None
    return tuple(statistics.median(r[i] for r in results) for i in range(4))


def fmt(s):
    if s is None:
        return '%10s %10s %10s' % ('FAILED', '', '')
    return '%10.0f %10.1f %10.2f' % (s[0], s[1], s[2] / 2**20)


def ratio(a, b, i):
    return '%6.2f' % (a[i] / b[i]) if a and b and b[i] else '     -'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--sizes', default='256,2048')
    ap.add_argument('--transports', default='tcp,unix')
    ap.add_argument('--guests', default='idle,busy')
    ap.add_argument('--downtime', type=int, default=50)
    ap.add_argument('--build', default='build')
    args = ap.parse_args()
    platform_kvm.where()
    kiln = os.path.abspath(os.path.join(args.build, 'daemon/kiln'))
    qemu = shutil.which('qemu-system-x86_64')
    print('max downtime %d ms for both; medians of %d runs; MiB on the wire'
          % (args.downtime, args.runs))
    print('%-16s | %-32s | %-32s | %-24s | %s' % (
        '', 'kiln: total ms, downtime, MiB', 'QEMU: total ms, downtime, MiB', 'kiln/QEMU',
        'kiln total / (RAM used / link)'))
    failed = False
    for kind in args.guests.split(','):
        guest = os.path.abspath(os.path.join(args.build, 'tests/guests', GUEST[kind]))
        for mib in [int(x) for x in args.sizes.split(',')]:
            for transport in args.transports.split(','):
                tmp = tempfile.mkdtemp(prefix='kiln-migbench-', dir='/var/tmp')
                try:
                    k = summary([kiln_run(kiln, kind, guest, mib, transport, args.downtime, tmp)
                                 for _ in range(args.runs)])
                    q = summary([qemu_run(qemu, kind, guest, mib, transport, args.downtime,
                                          tmp) for _ in range(args.runs)]) if qemu else None
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                failed |= k is None
                print('%-16s | %s | %s | total %s down %s | %s' % (
                    '%s %d MiB %s' % (kind, mib, transport), fmt(k), fmt(q) if qemu else '-',
                    ratio(k, q, 0), ratio(k, q, 1),
                    '%.1f (%.1f ms)' % (k[0] / k[3], k[3]) if k and k[3] else 'link not timed'), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
