"""Classic pcap (`-w x.pcap`, `--format pcap`), as tcpdump writes it, for tools that read no pcapng.

One link type must serve the whole file, and droptrace captures Ethernet frames and bare IP
packets alike, so every packet gets a Linux "cooked" v2 header (LINKTYPE_LINUX_SLL2, what
`tcpdump -i any` writes): the protocol, the interface index, the link type and, for a frame, its
source MAC, in front of the network-layer bytes. Nanosecond timestamps. Classic pcap has no
comments: the reason, location, task and stack stay in pcapng or JSON lines only.
"""
from __future__ import annotations

import struct
from typing import List

from ..event import Event
from .out import Output
from .pcapng import LINKTYPE_LINUX_SLL2

MAGIC_NS = 0xA1B23C4D  # nanosecond timestamps
SNAPLEN = 65535
ARPHRD_ETHER, ARPHRD_NONE = 1, 0xFFFE
SLL2 = struct.Struct("!HHIHBB8s")  # protocol, reserved, ifindex, hatype, packet type, addr len, addr
PACKET_HOST = 0  # the direction of a dropped packet is not known: the common case
ETHERTYPES = {4: 0x0800, 6: 0x86DD}


def header() -> bytes:
    return struct.pack("<IHHiIII", MAGIC_NS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_LINUX_SLL2)


def cooked(e: Event) -> bytes:
    """The packet behind a cooked header, or b"" when it holds neither a frame nor an IP packet."""
    data = e.packet or b""
    if e.link_ethernet and len(data) >= 14:
        proto, hatype, addr, payload = int.from_bytes(data[12:14], "big"), ARPHRD_ETHER, data[6:12], data[14:]
    elif not e.link_ethernet and data and (data[0] >> 4) in ETHERTYPES:
        proto, hatype, addr, payload = ETHERTYPES[data[0] >> 4], ARPHRD_NONE, b"", data
    else:
        return b""
    return SLL2.pack(proto, 0, (e.ifindex or 0) & 0xFFFFFFFF, hatype, PACKET_HOST, len(addr), addr) + payload


class Writer:
    """Writes classic pcap; counts the events it had no packet bytes for (`skipped`)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.skipped = 0
        self.out.write(header())

    def write(self, events: List[Event]) -> None:
        chunks = []
        for e in events:
            data = cooked(e)
            if not data:
                self.skipped += 1
                continue
            # the frame's own length on the wire, as the cooked header replaces its MAC header
            wire = max(len(data), (e.wire_len or 0) - (14 if e.link_ethernet else 0) + SLL2.size)
            ts = e.ts_ns or 0
            sec, ns = divmod(ts, 1_000_000_000)
            chunks.append(struct.pack("<IIII", sec, ns, len(data), wire) + data)
        if chunks:
            self.out.write(b"".join(chunks))
