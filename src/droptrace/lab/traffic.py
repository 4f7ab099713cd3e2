"""Packets for the lab, sent from inside a lab namespace.

Run as `ip netns exec NS python -m droptrace.lab.traffic KIND ...`: each kind
sends one well-formed or deliberately broken packet (or a burst) that the
receiving kernel drops for a known reason. Raw packets are built here so
that checksums and lengths can be wrong on purpose.
"""
from __future__ import annotations

import argparse
import socket
import struct
import sys

from ..packet.checksum import checksum


def ipv4_header(src: str, dst: str, proto: int, payload_len: int, good_csum: bool = True) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0x1234, 0x4000, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    csum = checksum(hdr)
    if not good_csum:
        csum ^= 0x00FF
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:]


def l4_checksum(src: str, dst: str, proto: int, segment: bytes) -> int:
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, len(segment))
    return checksum(pseudo + segment)


def udp_segment(src: str, dst: str, sport: int, dport: int, payload: bytes,
                good_csum: bool = True, claimed_len: int = 0) -> bytes:
    length = claimed_len or 8 + len(payload)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = l4_checksum(src, dst, 17, seg) or 0xFFFF
    if not good_csum:
        csum = csum + 1 if csum < 0xFFFF else 1
    return seg[:6] + struct.pack("!H", csum) + seg[8:]


def tcp_syn(src: str, dst: str, sport: int, dport: int, good_csum: bool = True) -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, 0x02, 64240, 0, 0)
    csum = l4_checksum(src, dst, 6, seg)
    if not good_csum:
        csum ^= 0x0F0F
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def icmp_echo(good_csum: bool = True) -> bytes:
    msg = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + b"droptrace"
    csum = checksum(msg)
    if not good_csum:
        csum ^= 0x0F0F
    return msg[:2] + struct.pack("!H", csum) + msg[4:]


def send_ip(dst: str, packet: bytes) -> None:
    """Send a complete IPv4 packet (header included) through the routing table."""
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
        s.sendto(packet, (dst, 0))


def send_frame(ifname: str, frame: bytes) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((ifname, 0))
        s.send(frame)


def mac(text: str) -> bytes:
    return bytes(int(x, 16) for x in text.split(":"))


def main(argv: list) -> int:
    p = argparse.ArgumentParser(prog="droptrace.lab.traffic")
    sub = p.add_subparsers(dest="kind", required=True)
    u = sub.add_parser("udp", help="UDP datagrams through a normal socket")
    u.add_argument("dst")
    u.add_argument("port", type=int)
    u.add_argument("--src", default="")
    u.add_argument("--sport", type=int, default=0)
    u.add_argument("--count", type=int, default=1)
    u.add_argument("--ports", type=int, default=1, help="to port, port+1, ... (this many ports)")
    u.add_argument("--size", type=int, default=16)
    u.add_argument("--mark", type=lambda x: int(x, 0), default=0)
    t = sub.add_parser("tcp", help="a TCP connect (a SYN)")
    t.add_argument("dst")
    t.add_argument("port", type=int)
    r = sub.add_parser("raw", help="a hand-built IPv4 packet")
    r.add_argument("what", choices=["udp-badcsum", "udp-short", "tcp-badcsum", "icmp-badcsum",
                                    "proto"])
    r.add_argument("src")
    r.add_argument("dst")
    r.add_argument("--port", type=int, default=9)
    r.add_argument("--proto", type=int, default=253)
    f = sub.add_parser("frame", help="a hand-built Ethernet frame on an interface")
    f.add_argument("what", choices=["ip-badcsum", "ethertype", "udp"])
    f.add_argument("ifname")
    f.add_argument("src_mac")
    f.add_argument("dst_mac")
    f.add_argument("--src", default="0.0.0.0")
    f.add_argument("--dst", default="0.0.0.0")
    f.add_argument("--port", type=int, default=9)
    f.add_argument("--ethertype", type=lambda x: int(x, 0), default=0x88B5)
    k = sub.add_parser("sink", help="a UDP socket with a tiny receive buffer that never reads")
    k.add_argument("addr")
    k.add_argument("port", type=int)
    a = p.parse_args(argv)

    if a.kind == "udp":
        family = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            if a.mark:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, a.mark)
            if a.src or a.sport:
                s.bind((a.src, a.sport))
            for port in range(a.port, a.port + a.ports):
                for _ in range(a.count):
                    s.sendto(b"d" * a.size, (a.dst, port))
    elif a.kind == "tcp":
        family = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            try:
                s.connect((a.dst, a.port))
            except OSError:
                pass
    elif a.kind == "raw":
        if a.what in ("udp-badcsum", "udp-short"):
            seg = udp_segment(a.src, a.dst, 40000, a.port, b"droptrace",
                              good_csum=a.what != "udp-badcsum",
                              claimed_len=200 if a.what == "udp-short" else 0)
            proto = 17
        elif a.what == "tcp-badcsum":
            seg, proto = tcp_syn(a.src, a.dst, 40001, a.port, good_csum=False), 6
        elif a.what == "icmp-badcsum":
            seg, proto = icmp_echo(good_csum=False), 1
        else:
            seg, proto = b"droptrace unknown protocol", a.proto
        send_ip(a.dst, ipv4_header(a.src, a.dst, proto, len(seg)) + seg)
    elif a.kind == "frame":
        if a.what == "ethertype":
            payload, ethertype = b"droptrace" * 6, a.ethertype
        else:
            seg = udp_segment(a.src, a.dst, 40002, a.port, b"droptrace")
            payload = ipv4_header(a.src, a.dst, 17, len(seg), good_csum=a.what != "ip-badcsum") + seg
            ethertype = 0x0800
        send_frame(a.ifname, mac(a.dst_mac) + mac(a.src_mac) + struct.pack("!H", ethertype) + payload)
    elif a.kind == "sink":
        family = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel rounds up to its minimum
        s.bind((a.addr, a.port))
        print("ready", flush=True)
        sys.stdin.read()  # hold the socket, never read it, until our parent closes stdin
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
