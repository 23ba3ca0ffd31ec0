#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The blk guest's disk pattern, for host-side checks.

  blk_pattern.py check FILE --seed S --start N --sectors K   (exit 0 when it matches)
  blk_pattern.py write FILE --seed S --start N --sectors K

The 8-byte little-endian word i (0..63) of sector s is
mix64(seed * 0x9e3779b97f4a7c15 + s * 64 + i) mod 2^64, mix64 being the
splitmix64 finaliser. See tests/guests/README.md.
"""
import argparse
import struct
import sys

M = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return z ^ (z >> 31)


def sector(seed, s):
    base = (seed * 0x9E3779B97F4A7C15 + s * 64) & M
    return struct.pack("<64Q", *(mix64((base + i) & M) for i in range(64)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("op", choices=["check", "write"])
    ap.add_argument("file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--sectors", type=int, default=2048)
    a = ap.parse_args()
    mode = "r+b" if a.op == "write" else "rb"
    with open(a.file, mode) as f:
        f.seek(a.start * 512)
        for s in range(a.start, a.start + a.sectors):
            want = sector(a.seed, s)
            if a.op == "write":
                f.write(want)
                continue
            got = f.read(512)
            if got != want:
                off = next(i for i in range(len(got)) if i >= len(want) or got[i] != want[i]) \
                    if got else 0
                print(f"mismatch at sector {s} byte {off}", file=sys.stderr)
                return 1
    print(f"{a.sectors} sectors {'match' if a.op == 'check' else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
