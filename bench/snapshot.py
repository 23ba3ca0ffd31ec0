#!/usr/bin/env python3
"""Snapshot restore benchmark: the time from asking for a restore to the
guest running again, for guests of 128 MiB, 1 GiB and 4 GiB, kiln beside
QEMU.

kiln: PUT /snapshot/load (File backend, resume_vm) on a fresh daemon; the
      answer comes once the vCPUs run again. The daemon's own figure
      (metrics latencies_us.load_snapshot) is printed too.
QEMU: the same hello guest saved with `migrate exec:cat > FILE` and
      restored with `-incoming defer` + `migrate-incoming exec:cat FILE`,
      timed until QMP reports the VM running again (QEMU's loadvm path:
      it copies every page of the image into guest memory).

usage: bench/snapshot.py [--runs N] [--sizes 128,1024,4096] [--build DIR]"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import platform_kvm  # noqa: E402

SLEEP_ARGS = 'console=ttyS0 sleep=600000'


def http(sock, method, path, body=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    data = json.dumps(body) if body is not None else ''
    s.sendall(('%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: '
               'application/json\r\nContent-Length: %d\r\n\r\n%s'
               % (method, path, len(data), data)).encode())
    out = b''
    while True:
        c = s.recv(65536)
        if not c:
            break
        out += c
    s.close()
    status = int(out.split(b' ', 2)[1])
    return status, out.split(b'\r\n\r\n', 1)[1].decode()


def wait_sock(path, timeout=5):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.close()
                return True
            except OSError:
                pass
        time.sleep(0.002)
    return False


def kiln_prepare(kiln, guest, mib, tmp):
    sock = os.path.join(tmp, 'src.sock')
    p = subprocess.Popen([kiln, '--api-sock', sock], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    assert wait_sock(sock)
    http(sock, 'PUT', '/boot-source', {'kernel_image_path': guest, 'boot_args': SLEEP_ARGS})
    http(sock, 'PUT', '/machine-config', {'vcpu_count': 1, 'mem_size_mib': mib})
    http(sock, 'PUT', '/actions', {'action_type': 'InstanceStart'})
    time.sleep(0.3)
    http(sock, 'PATCH', '/vm', {'state': 'Paused'})
    state, mem = os.path.join(tmp, 'vm.state'), os.path.join(tmp, 'vm.mem')
    st, body = http(sock, 'PUT', '/snapshot/create',
                    {'snapshot_path': state, 'mem_file_path': mem})
    assert st == 204, body
    p.kill()
    p.wait()
    return state, mem


def kiln_restore(kiln, state, mem, tmp):
    sock = os.path.join(tmp, 'dst.sock')
    metrics = os.path.join(tmp, 'metrics')
    p = subprocess.Popen([kiln, '--api-sock', sock, '--metrics-path', metrics],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_sock(sock)
    t0 = time.monotonic()
    st, body = http(sock, 'PUT', '/snapshot/load',
                    {'snapshot_path': state, 'resume_vm': True,
                     'mem_backend': {'backend_type': 'File', 'backend_path': mem}})
    ms = (time.monotonic() - t0) * 1000
    assert st == 204, body
    http(sock, 'PUT', '/actions', {'action_type': 'FlushMetrics'})
    with open(metrics) as f:
        inner = json.loads(f.readlines()[-1])['latencies_us']['load_snapshot'] / 1000
    p.kill()
    p.wait()
    os.unlink(metrics)
    return ms, inner


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile('rwb')
        self.f.readline()  # greeting
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        self.f.write(json.dumps({'execute': name, 'arguments': args}).encode() + b'\n')
        self.f.flush()
        while True:
            msg = json.loads(self.f.readline())
            if 'return' in msg or 'error' in msg:
                return msg

    def wait_status(self, want, timeout=120):
        end = time.time() + timeout
        while time.time() < end:
            r = self.cmd('query-status')['return']
            if r['status'] == want or (want == 'paused' and r['status'] == 'running'):
                return True
            time.sleep(0.001)
        return False


def qemu_cmd(qemu, guest, mib, qmp, extra):
    return [qemu, '-M', 'microvm,x-option-roms=off,rtc=off', '-accel', 'kvm',
            '-cpu', 'host,-arch-capabilities', '-m', str(mib), '-smp', '1', '-nodefaults',
            '-no-user-config', '-display', 'none', '-serial', 'null', '-kernel', guest,
            '-append', SLEEP_ARGS, '-qmp', 'unix:%s,server=on,wait=off' % qmp] + extra


def qemu_prepare(qemu, guest, mib, tmp):
    qmp = os.path.join(tmp, 'q-src.sock')
    p = subprocess.Popen(qemu_cmd(qemu, guest, mib, qmp, []), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    assert wait_sock(qmp)
    q = Qmp(qmp)
    time.sleep(0.5)
    q.cmd('stop')
    image = os.path.join(tmp, 'q.mig')
    q.cmd('migrate', uri='exec:cat > %s' % image)
    assert q.wait_status('postmigrate')
    p.kill()
    p.wait()
    return image


def qemu_restore(qemu, guest, mib, image, tmp):
    qmp = os.path.join(tmp, 'q-dst.sock')
    p = subprocess.Popen(qemu_cmd(qemu, guest, mib, qmp, ['-incoming', 'defer']),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_sock(qmp)
    q = Qmp(qmp)
    t0 = time.monotonic()
    q.cmd('migrate-incoming', uri='exec:cat %s' % image)
    # the source was stopped before it was saved, so the target comes up paused
    assert q.wait_status('paused')
    q.cmd('cont')
    assert q.wait_status('running')
    ms = (time.monotonic() - t0) * 1000
    p.kill()
    p.wait()
    return ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--sizes', default='128,1024,4096')
    ap.add_argument('--build', default='build')
    args = ap.parse_args()
    platform_kvm.where()
    kiln = os.path.abspath(os.path.join(args.build, 'daemon/kiln'))
    guest = os.path.abspath(os.path.join(args.build, 'tests/guests/hello.elf'))
    qemu = shutil.which('qemu-system-x86_64')
    print('%-9s %22s %22s %18s %10s' % ('guest', 'kiln load->running ms', '(kiln metrics ms)',
                                        'QEMU incoming ms', 'kiln/QEMU'))
    for mib in [int(x) for x in args.sizes.split(',')]:
        tmp = tempfile.mkdtemp(dir='/var/tmp')
        try:
            state, mem = kiln_prepare(kiln, guest, mib, tmp)
            k = [kiln_restore(kiln, state, mem, tmp) for _ in range(args.runs)]
            kms = statistics.median(x[0] for x in k)
            kin = statistics.median(x[1] for x in k)
            qms = None
            if qemu:
                image = qemu_prepare(qemu, guest, mib, tmp)
                qms = statistics.median(qemu_restore(qemu, guest, mib, image, tmp)
                                        for _ in range(args.runs))
            print('%-9s %22.2f %22.2f %18s %10s' % (
                '%d MiB' % mib, kms, kin, '%.2f' % qms if qms else '-',
                '%.3f' % (kms / qms) if qms else '-'))
        finally:
            shutil.rmtree(tmp)
    return 0


if __name__ == '__main__':
    sys.exit(main())
