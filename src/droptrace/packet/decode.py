"""Decode a dropped packet from its own headers.

`skb->sk` is NULL for most receive-path drops, so addresses and ports are
read from the bytes BPF copied from the skb (starting at its MAC header when
there is one, else at its network header). Everything here is pure and
total: truncated or garbage input yields fewer fields, never an exception.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Optional, Union

UNSET = 0xFFFF
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
ETH_P_IP, ETH_P_IPV6, ETH_P_ARP = 0x0800, 0x86DD, 0x0806
_VLAN = (0x8100, 0x88A8, 0x9100)

ETHERTYPES = {ETH_P_IP: "ipv4", ETH_P_IPV6: "ipv6", ETH_P_ARP: "arp", 0x8035: "rarp",
              0x88CC: "lldp", 0x8847: "mpls", 0x8848: "mpls", 0x888E: "eapol",
              0x8863: "pppoe-disc", 0x8864: "pppoe", 0x88F7: "ptp", 0x9000: "loop",
              0x8100: "vlan", 0x88A8: "qinq", 0x0004: "802.2", 0x0003: "all"}
IPPROTOS = {1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 33: "dccp", 41: "ipv6",
            47: "gre", 50: "esp", 51: "ah", 58: "icmpv6", 89: "ospf", 103: "pim",
            112: "vrrp", 132: "sctp", 136: "udplite", 143: "ethernet", 262: "mptcp"}
_PORTS = (6, 17, 33, 132, 136)
_V6_EXT = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, dstopts, mobility, HIP, shim6
_TCP_FLAGS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x10, "A"),
              (0x20, "U"), (0x40, "E"), (0x80, "C"))


@dataclass
class Packet:
    l3: Optional[str] = None
    l4: Union[str, int, None] = None
    saddr: Optional[str] = None
    daddr: Optional[str] = None
    sport: Optional[int] = None
    dport: Optional[int] = None
    tcp_flags: Optional[str] = None
    icmp_type: Optional[int] = None
    icmp_code: Optional[int] = None


def tcp_flags(bits: int) -> str:
    return "".join(c for b, c in _TCP_FLAGS if bits & b)


def _u16(d: bytes, off: int) -> Optional[int]:
    return (d[off] << 8) | d[off + 1] if 0 <= off and off + 2 <= len(d) else None


def decode(data: bytes, mac_off: int = UNSET, net_off: int = UNSET, protocol: int = 0,
           dev_type: int = ARPHRD_ETHER) -> Packet:
    """Decode captured bytes; offsets are relative to data, UNSET when unknown."""
    p = Packet()
    ethertype = protocol
    l3_off: Optional[int] = net_off if net_off != UNSET and net_off < len(data) else None
    ethernet = dev_type in (ARPHRD_ETHER, ARPHRD_LOOPBACK)
    if mac_off != UNSET and ethernet and (l3_off is None or l3_off - mac_off >= 14):
        off = mac_off + 12
        et = _u16(data, off)
        hops = 0
        while et in _VLAN and hops < 4:
            off += 4
            et = _u16(data, off)
            hops += 1
        if et is not None and et >= 0x0600:
            ethertype = et
            if l3_off is None:
                l3_off = off + 2
    if l3_off is None:
        if mac_off == UNSET and data and ethertype in (0, ETH_P_IP, ETH_P_IPV6):
            l3_off = 0  # a raw-IP start: trust the version nibble below
        else:
            p.l3 = ETHERTYPES.get(ethertype) if ethertype else None
            if p.l3 is None and ethertype:
                p.l3 = f"0x{ethertype:04x}"
            return p
    if ethertype in (0, ETH_P_IP, ETH_P_IPV6) and l3_off < len(data):
        version = data[l3_off] >> 4
        if ethertype == 0:
            ethertype = {4: ETH_P_IP, 6: ETH_P_IPV6}.get(version, 0)
    if ethertype == ETH_P_IP:
        _ipv4(p, data, l3_off)
    elif ethertype == ETH_P_IPV6:
        _ipv6(p, data, l3_off)
    elif ethertype == ETH_P_ARP:
        _arp(p, data, l3_off)
    elif ethertype:
        p.l3 = ETHERTYPES.get(ethertype, f"0x{ethertype:04x}")
    return p


def _ipv4(p: Packet, d: bytes, off: int) -> None:
    p.l3 = "ipv4"
    if off + 20 > len(d):
        return
    ihl = (d[off] & 0x0F) * 4
    p.saddr = socket.inet_ntop(socket.AF_INET, d[off + 12:off + 16])
    p.daddr = socket.inet_ntop(socket.AF_INET, d[off + 16:off + 20])
    proto = d[off + 9]
    frag = ((d[off + 6] << 8) | d[off + 7]) & 0x1FFF
    if ihl < 20:
        p.l4 = IPPROTOS.get(proto, proto)
        return
    _l4(p, d, off + ihl, proto, first_fragment=frag == 0)


def _ipv6(p: Packet, d: bytes, off: int) -> None:
    p.l3 = "ipv6"
    if off + 40 > len(d):
        return
    p.saddr = socket.inet_ntop(socket.AF_INET6, d[off + 8:off + 24])
    p.daddr = socket.inet_ntop(socket.AF_INET6, d[off + 24:off + 40])
    nxt, pos, first = d[off + 6], off + 40, True
    # As far as the captured bytes go (each header is 8 bytes or more): the kernel walks up to
    # IP6_MAX_EXT_HDRS_CNT (12) since 2026, any number before. Past the capture, l4 is the
    # header where the bytes ended.
    while True:
        if nxt in _V6_EXT:
            if pos + 2 > len(d):
                p.l4 = IPPROTOS.get(nxt, nxt)
                return
            nxt, pos = d[pos], pos + (d[pos + 1] + 1) * 8
        elif nxt == 44:  # fragment header: L4 only in the first fragment
            if pos + 8 > len(d):
                p.l4 = IPPROTOS.get(nxt, nxt)
                return
            first = (_u16(d, pos + 2) or 0) >> 3 == 0
            nxt, pos = d[pos], pos + 8
        elif nxt == 51:  # AH: length in 4-octet units, minus 2
            if pos + 2 > len(d):
                p.l4 = IPPROTOS.get(nxt, nxt)
                return
            nxt, pos = d[pos], pos + (d[pos + 1] + 2) * 4
        else:
            break
    _l4(p, d, pos, nxt, first_fragment=first)


def _l4(p: Packet, d: bytes, off: int, proto: int, first_fragment: bool) -> None:
    p.l4 = IPPROTOS.get(proto, proto)
    if not first_fragment or proto == 59:  # 59: no next header
        return
    if proto in _PORTS:
        p.sport, p.dport = _u16(d, off), _u16(d, off + 2)
        if p.dport is None:
            p.sport = None
        if proto == 6 and off + 14 <= len(d):
            p.tcp_flags = tcp_flags(d[off + 13])
    elif proto in (1, 58) and off + 2 <= len(d):
        p.icmp_type, p.icmp_code = d[off], d[off + 1]


def _arp(p: Packet, d: bytes, off: int) -> None:
    p.l3 = "arp"
    if off + 8 > len(d):
        return
    hlen, plen = d[off + 4], d[off + 5]
    ptype = _u16(d, off + 2)
    spa = off + 8 + hlen
    tpa = spa + plen + hlen
    if ptype == ETH_P_IP and plen == 4 and tpa + 4 <= len(d):
        p.saddr = socket.inet_ntop(socket.AF_INET, d[spa:spa + 4])
        p.daddr = socket.inet_ntop(socket.AF_INET, d[tpa:tpa + 4])
