"""Packet headers rebuilt from a drop's fields, for recordings that kept no bytes (JSON lines).

`record -r x.jsonl -w y.pcapng` (or .pcap) writes these so tshark and Wireshark show the flow
instead of empty, malformed packets. Only what a line holds goes in: addresses, protocol, ports,
TCP flags, ICMP type and code. Everything a line does not hold (TTL and hop limit, IDs, lengths
past the headers, sequence numbers, TCP/UDP checksums, payload) is zero; the IPv4 and ICMP
checksums are computed so the rebuilt headers are not reported as damaged. A header whose
fields the line lacks is left out (the IP header alone, or nothing without addresses), so
reading the file back gives the line's own fields, no more.
"""
from __future__ import annotations

import ipaddress
import struct
from typing import Tuple

from ..event import Event
from .checksum import checksum
from .decode import IPPROTOS

PROTOCOLS = {name: number for number, name in IPPROTOS.items() if number < 256}  # as lines name them
_FLAG_BITS = {c: 1 << i for i, c in enumerate("FSRPAUEC")}


def _l4(e: Event, proto: int) -> Tuple[bytes, bytes]:
    """The transport header the fields give, and which of its bits are real (0xFF: all)."""
    if proto == 6 and e.sport is not None and e.dport is not None and e.tcp_flags is not None:
        flags = sum(_FLAG_BITS.get(c, 0) for c in e.tcp_flags)
        return (struct.pack("!HHIIBBHHH", e.sport, e.dport, 0, 0, 5 << 4, flags, 0, 0, 0),
                b"\xff" * 4 + b"\0" * 9 + b"\xff" + b"\0" * 6)  # ports, flags
    if proto == 17 and e.sport is not None and e.dport is not None:
        return struct.pack("!HHHH", e.sport, e.dport, 8, 0), b"\xff" * 4 + b"\0" * 4
    if proto in (1, 58) and e.icmp_type is not None and e.icmp_code is not None:
        head = struct.pack("!BBHI", e.icmp_type, e.icmp_code, 0, 0)
        if proto == 1:
            head = head[:2] + struct.pack("!H", checksum(head)) + head[4:]
        return head, b"\xff\xff" + b"\0" * 6
    return b"", b""


def rebuilt(e: Event) -> Tuple[bytes, bytes]:
    """An IP packet with the headers e's fields describe (b"" where they describe none), and a
    mask of the same length: the bits that are the drop's own (the rest are made up: zero, or a
    checksum of the made-up header)."""
    proto = PROTOCOLS.get(e.l4) if isinstance(e.l4, str) else e.l4 if isinstance(e.l4, int) else None
    try:
        src, dst = ipaddress.ip_address(e.saddr or ""), ipaddress.ip_address(e.daddr or "")
    except ValueError:
        return b"", b""
    if proto is None or not 0 <= proto <= 255 or src.version != dst.version:
        return b"", b""
    l4, l4_known = _l4(e, proto)
    if e.l3 == "ipv4" and src.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 0, proto, 0, src.packed, dst.packed)
        # the version; the fragment offset is 0 where the line has transport fields (a first fragment)
        frag = b"\x1f\xff" if l4 else b"\0\0"
        known = b"\xf0" + b"\0" * 5 + frag + b"\0\xff\0\0" + b"\xff" * 8
        return ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:] + l4, known + l4_known
    if e.l3 == "ipv6" and src.version == 6:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 0, src.packed, dst.packed)
        known = b"\xf0" + b"\0" * 5 + b"\xff\0" + b"\xff" * 32  # version, next header, addresses
        return ip + l4, known + l4_known
    return b"", b""


def headers(e: Event) -> bytes:
    """An IP packet with the headers e's fields describe, or b"" where they describe none."""
    return rebuilt(e)[0]


def field_name(packet: bytes, offset: int) -> str:
    """What a byte of a rebuilt packet stands for, to say what an expression needed."""
    if offset < 0:
        return "packet length"
    v6 = bool(packet) and packet[0] >> 4 == 6
    names4 = {0: "IP header length", 1: "TOS", 2: "IP total length", 3: "IP total length", 4: "IP ID",
              5: "IP ID", 6: "IP flags", 7: "fragment offset", 8: "TTL", 10: "IP checksum",
              11: "IP checksum"}
    names6 = {0: "traffic class", 1: "traffic class and flow label", 2: "flow label", 3: "flow label",
              4: "payload length", 5: "payload length", 7: "hop limit"}
    start = 40 if v6 else 20
    if offset < start:
        return (names6 if v6 else names4).get(offset, f"byte {offset} of the IP header")
    at, proto = offset - start, packet[6] if v6 else packet[9] if len(packet) > 9 else 0
    if start + 1 >= len(packet):
        return "transport header (the line has none of its fields)"
    names = {6: {4: "TCP sequence number", 8: "TCP acknowledgment number", 12: "TCP header length",
                 14: "TCP window", 16: "TCP checksum", 18: "TCP urgent pointer"},
             17: {4: "UDP length", 6: "UDP checksum"}, 1: {2: "ICMP checksum", 4: "ICMP rest of header"},
             58: {2: "ICMPv6 checksum", 4: "ICMPv6 rest of header"}}.get(proto, {})
    header = len(packet) - start
    if at >= header:
        return "payload"
    return next((n for first, n in sorted(names.items(), reverse=True) if at >= first),
                f"transport byte {at}")
