#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the device fuzzers' seed programs into tests/fuzz/corpus/<kind>/.

Each seed is a program for the hostile driver of tests/fuzz/fz_dev.c (its
operation codes and argument layout are mirrored below): the driver
sequences the unit tests use -- initialise, set up the queues, DRIVER_OK,
offer well-formed requests, notify, snapshot, reset -- so that the fuzzer
starts from inputs that reach each device's request handling. Run it again
after changing fz_dev.c's encoding; existing seed-* files are replaced.
"""
import os
import struct
import sys

(OP_WRITE, OP_READ, OP_MEM, OP_INIT, OP_QUEUE, OP_QUEUE_RAW, OP_DRIVER_OK, OP_CHAIN,
 OP_FILL, OP_INDIRECT, OP_NOTIFY, OP_SETTLE, OP_IRQ, OP_RESET, OP_HOST, OP_SNAPSHOT,
 OP_CONFIG) = range(17)
WRITE = 1


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


def init(mask=0):
    """all offered features plus VERSION_1, less the bits of mask"""
    return u8(OP_INIT) + u64(mask)


def queue(q, log2):
    return u8(OP_QUEUE) + u8(q) + u8(log2)


def driver_ok():
    return u8(OP_DRIVER_OK)


def chain(q, head, descs):
    """descs: (writable, buffer slot of 16 bytes, length, data for the first readable one)"""
    out = u8(OP_CHAIN) + u8(q) + u16(head) + u8(len(descs) - 1)
    filled = False
    for writable, slot, length, data in descs:
        out += u8(WRITE if writable else 0) + u16(slot) + u16(length)
        if not writable and not filled:
            out += u8(len(data)) + data
            filled = True
    return out


def fill(q, count, length):
    return u8(OP_FILL) + u8(q) + u16(count - 1) + u16(length)


def notify(q): return u8(OP_NOTIFY) + u8(q)
def settle(): return u8(OP_SETTLE) + u8(1)
def irq(): return u8(OP_IRQ) + u8(1)
def reset(): return u8(OP_RESET)
def snapshot(): return u8(OP_SNAPSHOT)
def config(off=0): return u8(OP_CONFIG) + u8(off)
def host(arg): return u8(OP_HOST) + arg


def blk_req(q, head, rtype, sector, data_len, writable_data):
    hdr = u32(rtype) + u32(0) + u64(sector)
    descs = [(False, 0, 16, hdr)]
    if data_len:
        descs.append((writable_data, 0x100 + head * 0x40, data_len, b''))
    descs.append((True, 0x80 + head, 1, b''))
    return chain(q, head, descs)


def blk_seeds():
    seeds = {}
    for variant in (0, 1, 2, 4, 8, 9):
        p = u8(variant) + init() + queue(0, 8) + driver_ok()
        p += blk_req(0, 0, 1, 0, 512, False)   # write sector 0
        p += blk_req(0, 3, 0, 0, 512, True)    # read it back
        p += blk_req(0, 6, 4, 0, 0, False)     # flush
        p += blk_req(0, 9, 8, 0, 20, True)     # get id
        p += notify(0) + settle() + irq()
        p += blk_req(0, 12, 0, 2047, 1024, True)  # past the end
        p += notify(0) + snapshot() + settle()
        p += host(u32(1 << 20 | 300)) + config() + reset()
        seeds['seed-rw-%d' % variant] = p
    seg = u64(8) + u32(16) + u32(0)  # discard / write zeroes segment
    p = u8(1) + init() + queue(0, 8) + driver_ok()
    p += chain(0, 0, [(False, 0, 16, u32(11) + u32(0) + u64(0)),
                      (False, 0x10, 16, b''), (True, 0x20, 1, b'')])
    p += u8(OP_MEM) + u32(0x100100) + u8(16) + seg
    p += notify(0) + settle()
    seeds['seed-discard'] = p
    return seeds


def net_seeds():
    seeds = {}
    frame = b'\x02kiln\x01' + b'\x02kiln\x02' + b'\x88\xb5' + bytes(range(46))
    for variant in (0, 1, 2):
        for mask, name in ((0, 'all'), (1 << 15, 'nomrg')):
            p = u8(variant) + init(mask) + queue(0, 8) + queue(1, 8) + driver_ok()
            p += fill(0, 16, 2048) + notify(0)
            p += host(u16(len(frame)) + frame) + settle() + irq()
            p += chain(1, 0, [(False, 0x800, 12 + len(frame), bytes(12) + frame)])
            p += notify(1) + settle() + snapshot()
            p += host(u16(len(frame)) + frame) + settle() + reset()
            seeds['seed-%s-%d' % (name, variant)] = p
    p = u8(0) + init() + queue(0, 8) + queue(1, 8) + driver_ok() + fill(0, 256, 12) + notify(0)
    p += host(u16(len(frame)) + frame) + settle()
    seeds['seed-small-rx'] = p
    return seeds


def vsock_hdr(op, src_port, dst_port, length=0, dst_cid=2):
    return (u64(3) + u64(dst_cid) + u32(src_port) + u32(dst_port) + u32(length) + u16(1) +
            u16(op) + u32(0) + u32(65536) + u32(0))


def vsock_seeds():
    seeds = {}
    base = u8(0) + init() + queue(0, 8) + queue(1, 8) + queue(2, 6) + driver_ok()
    base += fill(0, 32, 4096) + notify(0)
    # the guest connects to host port 1024, sends, the host answers, both close
    p = base + chain(1, 0, [(False, 0x800, 44, vsock_hdr(1, 5000, 1024))]) + notify(1) + settle()
    p += host(u8(3) + u8(5) + b'hello') + settle()
    p += chain(1, 1, [(False, 0x900, 49, vsock_hdr(5, 5000, 1024, 5) + b'abcde')]) + notify(1)
    p += settle() + snapshot()
    p += chain(1, 2, [(False, 0xa00, 44, vsock_hdr(4, 5000, 1024))]) + notify(1) + settle()
    seeds['seed-guest-connect'] = p
    # a host program connects to guest port 52, the guest answers, data both ways
    p = base + host(u8(0) + u32(52)) + settle()
    p += chain(1, 0, [(False, 0x800, 44, vsock_hdr(2, 52, 1 << 30))]) + notify(1) + settle()
    p += host(u8(1) + u8(4) + b'ping') + settle() + irq()
    p += chain(1, 1, [(False, 0x900, 48, vsock_hdr(5, 52, 1 << 30, 4) + b'pong')]) + notify(1)
    p += settle() + host(u8(2)) + settle() + reset()
    seeds['seed-host-connect'] = p
    p = base + chain(2, 0, [(True, 0x800, 8, b'')]) + notify(2) + config() + snapshot()
    seeds['seed-event'] = p
    return seeds


def rng_seeds():
    seeds = {}
    for variant in (0, 1):
        p = u8(variant) + init() + queue(0, 8) + driver_ok()
        for i in range(4):
            p += chain(0, i, [(True, 0x100 * i, 64 << i, b'')])
        p += notify(0) + settle() + irq() + snapshot() + chain(0, 9, [(True, 0, 4096, b'')])
        p += notify(0) + settle() + reset()
        seeds['seed-%d' % variant] = p
    return seeds


def mmio_seeds():
    seeds = {}
    for variant in (0, 1, 0x6, 0x10):
        p = u8(variant) + init()
        for q in range(8):
            p += queue(q, 3 + q % 5)
        p += driver_ok()
        for q in range(8):
            p += chain(q, 1, [(False, 0x10 * q, 32, b'request'), (True, 0x400, 256, b'')])
            p += notify(q)
        p += settle() + irq() + config(4)
        p += u8(OP_WRITE) + u8(2) + u16(0x104) + u64(0xdeadbeef)
        p += snapshot() + chain(0, 2, [(True, 0x800, 64, b'')]) + notify(0) + settle() + reset()
        seeds['seed-%d' % variant] = p
    return seeds


def balloon_seeds():
    """inflate and deflate requests of PFNs in and out of the 2 MiB of RAM;
    with every feature (variant 0xf): a statistics buffer, a hint run, a report"""
    seeds = {}
    for variant in (0, 0xf):
        p = u8(variant) + init()
        for q in range(5 if variant else 2):
            p += queue(q, 3)
        p += driver_ok()
        pfns = b''.join(u32(n) for n in (0x100, 0x101, 0x180, 0x1ff))
        p += chain(0, 0, [(False, 0, 16, pfns)]) + notify(0)
        p += chain(1, 0, [(False, 0x10, 8, pfns[:8])]) + notify(1)
        if variant:
            stats = u16(4) + u64(1000) + u16(5) + u64(2000)
            p += chain(2, 0, [(False, 0x20, 20, stats)]) + notify(2)
            p += host(u8(0) + u8(2)) + host(u8(2) + u8(1))  # a target, a hint run
            p += chain(3, 0, [(False, 0x30, 4, u32(2))]) + chain(3, 1, [(True, 0x100, 4096, b'')])
            p += notify(3) + chain(4, 0, [(True, 0x200, 8192, b'')]) + notify(4)
        p += settle() + irq() + snapshot() + chain(0, 1, [(False, 0x40, 4, u32(0x7fffffff))])
        p += notify(0) + settle() + reset()
        seeds['seed-%d' % variant] = p
    return seeds


KINDS = {'blk': blk_seeds, 'net': net_seeds, 'vsock': vsock_seeds, 'rng': rng_seeds,
         'mmio': mmio_seeds, 'balloon': balloon_seeds}


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
    for kind in sys.argv[1:] or KINDS:
        d = os.path.join(root, kind)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith('seed-'):
                os.unlink(os.path.join(d, f))
        for name, data in KINDS[kind]().items():
            with open(os.path.join(d, name), 'wb') as f:
                f.write(data)
        print('%s: %d seeds' % (kind, len(KINDS[kind]())))


if __name__ == '__main__':
    main()
