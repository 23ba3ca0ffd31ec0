#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small vhost-user virtio-vsock device for QEMU, with Firecracker's host
convention, so that the vsock guest can be checked under QEMU on hosts
without /dev/vhost-vsock (this one's kernel has none).

  vhost_user_vsock.py --socket /tmp/vu.sock --uds /tmp/v.sock [--cid 3]
  qemu-system-x86_64 -M microvm,...,memory-backend=mem \\
      -object memory-backend-memfd,id=mem,size=256M,share=on \\
      -chardev socket,id=vu,path=/tmp/vu.sock -device vhost-user-vsock-device,chardev=vu

Guest-initiated connections to host port P reach the Unix socket <uds>_P;
a client of <uds> that writes "CONNECT <port>\\n" reaches the guest's port
and reads "OK <host port>\\n" (vhost-user protocol: QEMU docs/interop/
vhost-user.rst; the device: virtio 1.2 s5.10). Split rings with indirect
descriptors; one connection at a time is plenty for the tests. A test tool,
not a product: it trusts the guest's rings.
"""
import argparse
import mmap
import os
import select
import socket
import struct
import sys

HDR = struct.Struct("<QQIIIHHIII")  # s5.10.6, 44 bytes
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = 1, 2, 3, 4, 5, 6, 7
HOST_CID, BUF_ALLOC = 2, 256 * 1024
F_INDIRECT, F_EVENT_IDX, F_VERSION_1, F_PROTOCOL = 28, 29, 32, 30
PROTO_CONFIG = 9


class Memory:
    def __init__(self):
        self.regions = []  # (gpa, size, uva, mmap)

    def set(self, regions):
        for r in self.regions:
            r[3].close()
        self.regions = regions

    def _find(self, addr, n, uva):
        for gpa, size, va, mm in self.regions:
            base = va if uva else gpa
            if base <= addr and addr + n <= base + size:
                return mm, addr - base
        raise ValueError(f"address {addr:#x}+{n} is not guest memory")

    def read(self, addr, n, uva=False):
        mm, off = self._find(addr, n, uva)
        return mm[off:off + n]

    def write(self, addr, data, uva=False):
        mm, off = self._find(addr, len(data), uva)
        mm[off:off + len(data)] = data

    def gpa_of_uva(self, uva):
        for gpa, size, va, _ in self.regions:
            if va <= uva < va + size:
                return gpa + uva - va
        raise ValueError(f"user address {uva:#x} is not guest memory")


class Vring:
    def __init__(self, mem):
        self.mem, self.num, self.base = mem, 0, 0
        self.desc = self.avail = self.used = None
        self.kick = self.call = None
        self.last_avail = 0
        self.used_idx = 0
        self.ready = False

    def u16(self, addr):
        return struct.unpack("<H", self.mem.read(addr, 2))[0]

    def pop(self):
        """the next chain as ([(gpa, len, writable)], head), or None"""
        if not self.ready or self.u16(self.avail + 2) == self.last_avail:
            return None
        head = self.u16(self.avail + 4 + 2 * (self.last_avail % self.num))
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        segs, table, i, n = [], self.desc, head, self.num
        for _ in range(4096):
            addr, length, flags, nxt = struct.unpack("<QIHH", self.mem.read(table + 16 * i, 16))
            if flags & 4:  # indirect
                table, i, n = addr, 0, length // 16
                continue
            segs.append((addr, length, bool(flags & 2)))
            if not flags & 1:
                break
            i = nxt
        # s2.7.10 with EVENT_IDX: avail_event = "kick me from here on"
        self.mem.write(self.used + 4 + 8 * self.num, struct.pack("<H", self.last_avail))
        return segs, head

    def push(self, head, written):
        self.mem.write(self.used + 4 + 8 * (self.used_idx % self.num),
                       struct.pack("<II", head, written))
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        self.mem.write(self.used + 2, struct.pack("<H", self.used_idx))
        if self.call is not None:
            os.write(self.call, struct.pack("<Q", 1))


class Conn:
    def __init__(self, sock, guest_port, host_port):
        self.sock, self.guest_port, self.host_port = sock, guest_port, host_port
        self.peer_buf_alloc, self.peer_fwd_cnt, self.tx_cnt, self.fwd_cnt = 0, 0, 0, 0
        self.connected = False
        self.pending = b""  # host bytes not yet sent to the guest


class Device:
    def __init__(self, a):
        self.a = a
        self.mem = Memory()
        self.rings = [Vring(self.mem), Vring(self.mem)]  # 0 rx, 1 tx (2, events: QEMU's)
        self.conns = {}  # guest port, host port -> Conn
        self.to_guest = []  # headers + data waiting for rx buffers
        self.next_port = 1 << 30
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(a.uds):
            os.unlink(a.uds)
        self.server.bind(a.uds)
        self.server.listen(4)
        self.handshakes = []  # host clients before their CONNECT line

    # ---------------------------------------------------------- vhost-user
    def message(self, vu):
        data, fds, _, _ = socket.recv_fds(vu, 12, 8)  # the fds come with the header
        if len(data) < 12:
            return False
        req, flags, size = struct.unpack_from("<III", data)
        body = b""
        while len(body) < size:
            part = vu.recv(size - len(body))
            if not part:
                return False
            body += part
        reply = self.handle(req, body, list(fds))
        if reply is not None:
            vu.sendall(struct.pack("<III", req, 0x5, len(reply)) + reply)
        return True

    def handle(self, req, body, fds):
        if req == 1:  # GET_FEATURES
            f = 1 << F_VERSION_1 | 1 << F_INDIRECT | 1 << F_EVENT_IDX | 1 << F_PROTOCOL
            return struct.pack("<Q", f)
        if req == 15:  # GET_PROTOCOL_FEATURES
            return struct.pack("<Q", 1 << PROTO_CONFIG)
        if req == 24:  # GET_CONFIG: struct virtio_vsock_config { le64 guest_cid }
            off, size, flags = struct.unpack_from("<III", body)
            cfg = struct.pack("<Q", self.a.cid).ljust(size, b"\0")[:size]
            return struct.pack("<III", off, size, flags) + cfg
        if req == 5:  # SET_MEM_TABLE
            n = struct.unpack_from("<I", body)[0]
            regions = []
            for i in range(n):
                gpa, size, uva, off = struct.unpack_from("<QQQQ", body, 8 + 32 * i)
                mm = mmap.mmap(fds[i], size + off, mmap.MAP_SHARED,
                               mmap.PROT_READ | mmap.PROT_WRITE)
                regions.append((gpa, size, uva, memoryview(mm)[off:off + size]))
                os.close(fds[i])
            self.mem.set([(g, s, u, m) for g, s, u, m in regions])
        elif req == 8:  # SET_VRING_NUM
            i, num = struct.unpack_from("<II", body)
            self.rings[i].num = num
        elif req == 10:  # SET_VRING_BASE
            i, base = struct.unpack_from("<II", body)
            self.rings[i].last_avail = base
            self.rings[i].used_idx = base
        elif req == 9:  # SET_VRING_ADDR: index, flags, desc, used, avail, log (user addresses)
            i, _, desc, used, avail, _ = struct.unpack_from("<IIQQQQ", body)
            r = self.rings[i]
            r.desc, r.used, r.avail = (self.mem.gpa_of_uva(x) for x in (desc, used, avail))
            r.used_idx = self.rings[i].u16(r.used + 2)
            r.ready = True
        elif req in (12, 13):  # SET_VRING_KICK / CALL: index | 0x100 = no fd
            v = struct.unpack_from("<Q", body)[0]
            fd = None if v & 0x100 else fds[0]
            setattr(self.rings[v & 0xFF], "kick" if req == 12 else "call", fd)
        elif req == 11:  # GET_VRING_BASE: the ring stops
            i = struct.unpack_from("<I", body)[0]
            self.rings[i].ready = False
            return struct.pack("<II", i, self.rings[i].last_avail)
        return None  # SET_OWNER, SET_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_ENABLE, ...

    # -------------------------------------------------------------- device
    def send(self, c, op, data=b"", flags=0, to=None):
        """queues one packet to the guest (c None: an RST answering header `to`)"""
        if c is not None:
            hdr = HDR.pack(HOST_CID, self.a.cid, c.host_port, c.guest_port, len(data), 1, op,
                           flags, BUF_ALLOC, c.fwd_cnt)
            c.tx_cnt += len(data)
        else:
            hdr = HDR.pack(HOST_CID, self.a.cid, to[3], to[2], 0, 1, op, 0, 0, 0)
        self.to_guest.append(hdr + data)

    def fill_rx(self):
        rx = self.rings[0]
        while self.to_guest:
            chain = rx.pop()
            if chain is None:
                return
            segs, head = chain
            pkt, written = self.to_guest.pop(0), 0
            for gpa, length, w in segs:
                if w and written < len(pkt):
                    part = pkt[written:written + length]
                    self.mem.write(gpa, part)
                    written += len(part)
            rx.push(head, written)

    def from_guest(self, h, data):
        src_cid, dst_cid, sport, dport, length, typ, op, flags, buf_alloc, fwd = h
        c = self.conns.get((sport, dport))
        if c:
            c.peer_buf_alloc, c.peer_fwd_cnt = buf_alloc, fwd
        if op == REQUEST and dst_cid == HOST_CID and not c:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(f"{self.a.uds}_{dport}")
            except OSError:
                self.send(None, RST, to=h)
                return
            c = Conn(s, sport, dport)
            c.peer_buf_alloc, c.peer_fwd_cnt, c.connected = buf_alloc, fwd, True
            self.conns[(sport, dport)] = c
            self.send(c, RESPONSE)
        elif not c:
            if op != RST:
                self.send(None, RST, to=h)
        elif op == RESPONSE:
            c.connected = True
            c.sock.sendall(f"OK {c.host_port}\n".encode())
        elif op == RW:
            c.sock.sendall(data)
            c.fwd_cnt += len(data)
            if c.fwd_cnt % (64 * 1024) < len(data):
                self.send(c, CREDIT_UPDATE)
        elif op == CREDIT_REQUEST:
            self.send(c, CREDIT_UPDATE)
        elif op == SHUTDOWN:
            if flags & 3 == 3:  # s5.10.6.6: the peer of a full shutdown answers RST
                self.send(c, RST)
                self.close(c)
            elif flags & 2:
                c.sock.shutdown(socket.SHUT_WR)
        elif op == RST:
            self.close(c)

    def close(self, c):
        c.sock.close()
        self.conns.pop((c.guest_port, c.host_port), None)

    def drain_tx(self):
        tx = self.rings[1]
        while (chain := tx.pop()) is not None:
            segs, head = chain
            raw = b"".join(bytes(self.mem.read(g, n)) for g, n, w in segs if not w)
            h = HDR.unpack_from(raw)
            self.from_guest(h, raw[HDR.size:HDR.size + h[4]])
            tx.push(head, 0)

    def host_side(self, readable):
        if self.server in readable:
            self.handshakes.append([self.server.accept()[0], b""])
        for hs in list(self.handshakes):
            if hs[0] in readable:
                hs[1] += hs[0].recv(64)
                if b"\n" in hs[1]:
                    self.handshakes.remove(hs)
                    port = int(hs[1].split()[1])
                    c = Conn(hs[0], port, self.next_port)
                    self.next_port += 1
                    self.conns[(port, c.host_port)] = c
                    self.send(c, REQUEST)
        for c in list(self.conns.values()):
            if not c.connected:
                continue
            credit = c.peer_buf_alloc - (c.tx_cnt - c.peer_fwd_cnt)
            if c.sock in readable and not c.pending:
                c.pending = c.sock.recv(65536) or None
            if c.pending is None:  # the host closed: a full shutdown to the guest
                self.send(c, SHUTDOWN, flags=3)
                c.connected = False
                continue
            while c.pending and credit > 0:
                n = min(len(c.pending), credit, 4096 - HDR.size)
                self.send(c, RW, c.pending[:n])
                c.pending, credit = c.pending[n:], credit - n

    def run(self, vu):
        while True:
            fds = [vu, self.server] + [h[0] for h in self.handshakes]
            fds += [c.sock for c in self.conns.values() if c.connected and not c.pending]
            fds += [r.kick for r in self.rings if r.kick is not None]
            readable, _, _ = select.select(fds, [], [], 0.001)
            if vu in readable and not self.message(vu):
                return
            for r in self.rings:
                if r.kick in readable:
                    os.read(r.kick, 8)
            if self.mem.regions:
                self.drain_tx()
                self.host_side(readable)
                self.fill_rx()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True, help="the vhost-user socket QEMU connects to")
    ap.add_argument("--uds", required=True, help="Firecracker-style host socket path")
    ap.add_argument("--cid", type=int, default=3)
    a = ap.parse_args()
    if os.path.exists(a.socket):
        os.unlink(a.socket)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(a.socket)
    srv.listen(1)
    dev = Device(a)
    print(f"vhost_user_vsock: waiting on {a.socket}", flush=True)
    vu, _ = srv.accept()
    dev.run(vu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
