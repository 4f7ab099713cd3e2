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

from ..event import Event
from .decode import IPPROTOS

PROTOCOLS = {name: number for number, name in IPPROTOS.items() if number < 256}  # as lines name them
_FLAG_BITS = {c: 1 << i for i, c in enumerate("FSRPAUEC")}


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _l4(e: Event, proto: int) -> bytes:
    if proto == 6 and e.sport is not None and e.dport is not None and e.tcp_flags is not None:
        flags = sum(_FLAG_BITS.get(c, 0) for c in e.tcp_flags)
        return struct.pack("!HHIIBBHHH", e.sport, e.dport, 0, 0, 5 << 4, flags, 0, 0, 0)
    if proto == 17 and e.sport is not None and e.dport is not None:
        return struct.pack("!HHHH", e.sport, e.dport, 8, 0)
    if proto in (1, 58) and e.icmp_type is not None and e.icmp_code is not None:
        head = struct.pack("!BBHI", e.icmp_type, e.icmp_code, 0, 0)
        return head[:2] + struct.pack("!H", _checksum(head)) + head[4:] if proto == 1 else head
    return b""


def headers(e: Event) -> bytes:
    """An IP packet with the headers e's fields describe, or b"" where they describe none."""
    proto = PROTOCOLS.get(e.l4) if isinstance(e.l4, str) else e.l4 if isinstance(e.l4, int) else None
    try:
        src, dst = ipaddress.ip_address(e.saddr or ""), ipaddress.ip_address(e.daddr or "")
    except ValueError:
        return b""
    if proto is None or not 0 <= proto <= 255 or src.version != dst.version:
        return b""
    l4 = _l4(e, proto)
    if e.l3 == "ipv4" and src.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 0, proto, 0, src.packed, dst.packed)
        return ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:] + l4
    if e.l3 == "ipv6" and src.version == 6:
        return struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 0, src.packed, dst.packed) + l4
    return b""
