#!/usr/bin/env python3
"""API start-up benchmark: how soon after exec the control socket answers,
and how much memory the daemon uses before any VM runs; kiln's HTTP API
beside QEMU's QMP socket (microvm machine, -S: created but not started).

usage: bench/api.py [--runs N] [--build DIR]"""
import argparse
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


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return None


def wait_answer(path, request, expect, t0, timeout=5.0):
    """connects to the unix socket until it accepts; returns ms from t0
    until the first answer containing `expect` arrived"""
    while time.monotonic() - t0 < timeout:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            time.sleep(0.0002)
            continue
        if request:
            s.sendall(request)
        data = b''
        while expect not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        if expect in data:
            return (time.monotonic() - t0) * 1000
        return None
    return None


def run_once(cmd, path, request, expect):
    if os.path.exists(path):
        os.unlink(path)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    ms = wait_answer(path, request, expect, t0)
    time.sleep(0.2)  # settle, then read the idle daemon's memory
    rss = rss_kib(p.pid)
    p.kill()
    p.wait()
    if os.path.exists(path):
        os.unlink(path)
    return ms, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=15)
    ap.add_argument('--build', default='build')
    args = ap.parse_args()
    platform_kvm.where()
    tmp = tempfile.mkdtemp()
    ksock = os.path.join(tmp, 'kiln.sock')
    qsock = os.path.join(tmp, 'qmp.sock')
    vmms = {'kiln': ([os.path.join(args.build, 'daemon/kiln'), '--api-sock', ksock], ksock,
                     b'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n', b'"state"')}
    qemu = shutil.which('qemu-system-x86_64')
    if qemu:
        vmms['qemu'] = ([qemu, '-M', 'microvm,x-option-roms=off,rtc=off', '-accel', 'kvm',
                         '-cpu', 'host,-arch-capabilities', '-m', '128', '-S', '-nodefaults',
                         '-no-user-config', '-display', 'none',
                         '-qmp', 'unix:%s,server=on,wait=off' % qsock],
                        qsock, None, b'"QMP"')
    results = {}
    for name, (cmd, path, req, expect) in vmms.items():
        times, rss = [], []
        for _ in range(args.runs):
            ms, kib = run_once(cmd, path, req, expect)
            if ms is None:
                print('%s: no answer on %s' % (name, path))
                break
            times.append(ms)
            rss.append(kib)
        if times:
            results[name] = (statistics.median(times), statistics.median(rss))
    shutil.rmtree(tmp)
    print('%-6s %26s %18s' % ('vmm', 'exec->socket answers (ms)', 'idle RSS (MiB)'))
    for name, (t, r) in results.items():
        print('%-6s %26.2f %18.2f' % (name, t, r / 1024))
    if 'kiln' in results and 'qemu' in results:
        k, q = results['kiln'], results['qemu']
        print('kiln/qemu: time %.3f, RSS %.3f' % (k[0] / q[0], k[1] / q[1]))
    return 0 if 'kiln' in results else 1


if __name__ == '__main__':
    sys.exit(main())
