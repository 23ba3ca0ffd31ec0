#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The host side of the vsock guest, with Firecracker's vsock convention.

  vsock_host.py UDS_PATH [--port 1234] [--listen 1235] [--bytes 50000]

1. Listens on UDS_PATH_<port> (the guest's connection to host port <port>
   arrives there) and echoes everything until the guest shuts down.
2. Then connects to UDS_PATH, sends "CONNECT <listen>\\n", expects
   "OK <n>\\n", sends --bytes bytes (byte i = (i * 3 + 5) & 0xff), reads the
   guest's echo of all of them, shuts down its sending side and waits for
   the end of the stream.
Prints "vsock_host: echoed N bytes, sent M and got them back, ok".
"""
import argparse
import os
import socket
import sys
import threading


def echo_guest(srv, timeout, result):
    try:
        srv.settimeout(timeout)
        conn, _ = srv.accept()
        conn.settimeout(timeout)
        n = 0
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
            n += len(data)
        conn.close()
        result["echoed"] = n
    except OSError as e:
        result["error"] = f"guest-initiated connection: {e}"


def connect_guest(path, port, nbytes, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            raise OSError(f"no answer to CONNECT {port} (got {line!r})")
        line += c
    if not line.startswith(b"OK "):
        raise OSError(f"CONNECT {port}: {line!r}")
    want = bytes((i * 3 + 5) & 0xFF for i in range(nbytes))
    got = bytearray()
    sent = 0
    while len(got) < nbytes:
        if sent < nbytes:
            sent += s.send(want[sent:sent + 16384])
        s.settimeout(0.01 if sent < nbytes else timeout)
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        got += data
    s.settimeout(timeout)
    s.shutdown(socket.SHUT_WR)
    rest = s.recv(1)
    s.close()
    if bytes(got) != want:
        bad = next((i for i in range(min(len(got), nbytes)) if got[i] != want[i]), len(got))
        raise OSError(f"echo differs at byte {bad} (got {len(got)} of {nbytes})")
    if rest:
        raise OSError("the guest sent more than the echo")
    return nbytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("uds")
    ap.add_argument("--port", type=int, default=1234)
    ap.add_argument("--listen", type=int, default=1235)
    ap.add_argument("--bytes", type=int, default=50000)
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    result = {}
    path = f"{a.uds}_{a.port}"
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    print(f"vsock_host: listening on {path}", flush=True)
    t = threading.Thread(target=echo_guest, args=(srv, a.timeout, result))
    t.start()
    t.join()
    srv.close()
    os.unlink(path)
    if "error" in result:
        print(f"vsock_host: FAILED: {result['error']}", flush=True)
        return 1
    try:
        sent = connect_guest(a.uds, a.listen, a.bytes, a.timeout)
    except OSError as e:
        print(f"vsock_host: FAILED: host-initiated connection: {e}", flush=True)
        return 1
    print(f"vsock_host: echoed {result['echoed']} bytes, sent {sent} and got them back, ok",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
