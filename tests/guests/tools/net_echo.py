#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The host side of the net guest: answers its frames on a network interface.

  net_echo.py IFNAME [--count N] [--timeout S]

Reads every frame on IFNAME (AF_PACKET, root or CAP_NET_RAW), and answers
each one of EtherType 0x88b5 that starts with "KILN" with the same frame,
destination = its source, source = IFNAME's MAC, EtherType 0x88b6. It checks
every payload byte as the guest built it ((k * 7 + seq * 13 + seed) & 0xff
for k >= 30) and prints "net_echo: answered N, ok" (or "bad ..." lines) at
the end: after --count frames, or --timeout seconds without a frame.
"""
import argparse
import select
import socket
import struct
import sys

ETH_P_ALL = 0x0003
REQ, REPLY = 0x88B5, 0x88B6


def check(frame):
    seq, seed, length = struct.unpack_from("<IIH", frame, 18)
    if length != len(frame):
        return f"seq {seq}: length field {length}, frame {len(frame)}"
    for k in range(30, len(frame)):
        if frame[k] != (k * 7 + seq * 13 + seed) & 0xFF:
            return f"seq {seq}: byte {k} is {frame[k]:#x}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ifname")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.ifname, 0))
    mine = s.getsockname()[4][:6]
    answered, bad = 0, 0
    print(f"net_echo: listening on {a.ifname}", flush=True)
    while not a.count or answered < a.count:
        r, _, _ = select.select([s], [], [], a.timeout)
        if not r:
            break
        frame, addr = s.recvfrom(65536)
        if addr[2] == socket.PACKET_OUTGOING:
            continue  # our own answers
        if len(frame) < 30 or struct.unpack_from("!H", frame, 12)[0] != REQ \
                or frame[14:18] != b"KILN":
            continue
        err = check(frame)
        if err:
            bad += 1
            print(f"net_echo: bad {err}", flush=True)
        s.send(frame[6:12] + mine + struct.pack("!H", REPLY) + frame[14:])
        answered += 1
    print(f"net_echo: answered {answered}, {'ok' if not bad else f'{bad} bad'}", flush=True)
    return 0 if answered and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
