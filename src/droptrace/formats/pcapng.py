"""A small pcapng writer and reader for droptrace recordings.

Each drop is an Enhanced Packet Block with the captured header bytes and two
comments: one for people (reason, location, namespace, interface, task, and
the stack with --stack), one machine-readable (`droptrace:` + JSON of the
event's fields) so `droptrace report` and `droptrace.read` can rebuild the
events. Interfaces get Interface Description Blocks per (namespace, name,
link type): Ethernet where the MAC header was captured, raw IP where not.
Blocks are written whole, so a killed run leaves a file readable up to its
last complete block. A finished recording ends with an Interface Statistics
Block: isb_osdrop is the drops the kernel could not queue (ring buffer
full), isb_usrdeliv the drops written, and a `droptrace-summary:` comment
carries the whole summary (with --rate-limit's suppressed count).
"""
from __future__ import annotations

import json
import struct
import time
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple

from ..event import SCHEMA_KEYS, Event
from ..packet.decode import UNSET, decode
from .out import Output

SHB, IDB, EPB, ISB = 0x0A0D0D0A, 0x00000001, 0x00000006, 0x00000005
BYTE_ORDER_MAGIC = 0x1A2B3C4D
LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101
OPT_END, OPT_COMMENT = 0, 1
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9
SHB_USERAPPL = 4
ISB_STARTTIME, ISB_ENDTIME, ISB_OSDROP, ISB_USRDELIV = 2, 3, 7, 8
MACHINE_PREFIX = "droptrace:"
SUMMARY_PREFIX = "droptrace-summary:"
SNAPLEN = 65535


class PcapngError(ValueError):
    """The file is not pcapng this reader understands."""


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def _options(opts: List[Tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    return b"".join(_option(c, v) for c, v in opts) + struct.pack("<HH", OPT_END, 0)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def section_header(app: str) -> bytes:
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
    return _block(SHB, body + _options([(SHB_USERAPPL, app.encode())]))


def interface_description(linktype: int, name: str, description: str) -> bytes:
    body = struct.pack("<HHI", linktype, 0, SNAPLEN)
    return _block(IDB, body + _options([(IF_NAME, name.encode()),
                                        (IF_DESCRIPTION, description.encode()),
                                        (IF_TSRESOL, b"\x06")]))


def human_comment(e: Event) -> str:
    parts = [f"{e.reason or 'drop'} at {e.location}", f"netns {e.netns or '-'}",
             f"ifname {e.ifname or '-'}", f"pid {e.pid} comm {e.comm} (task on CPU {e.cpu})"]
    text = "; ".join(parts)
    if e.stack:
        text += "\n" + "\n".join(f"  #{i} {f}" for i, f in enumerate(e.stack))
    return text


def machine_comment(e: Event) -> str:
    d = e.to_dict(with_stack=e.stack is not None)
    return MACHINE_PREFIX + json.dumps(d, separators=(",", ":"))


class Writer:
    """Writes events to a pcapng stream; call write() with batches, then close()."""

    def __init__(self, out: Output, app: str = "droptrace") -> None:
        self.out = out
        self._ifaces: Dict[Tuple[Optional[int], Optional[str], int], int] = {}
        self._started_us = time.time_ns() // 1000
        self._write(section_header(app))

    def _write(self, data: bytes) -> None:
        self.out.write(data)

    def finish(self, summary: Dict[str, Any]) -> None:
        """The closing statistics: one ISB for the first interface (defined if none was)."""
        idb = b""
        if not self._ifaces:
            self._ifaces[(None, None, LINKTYPE_RAW)] = 0
            idb = interface_description(LINKTYPE_RAW, "none", "no drop was recorded")
        now = time.time_ns() // 1000
        opts = [(ISB_STARTTIME, _ts(self._started_us)), (ISB_ENDTIME, _ts(now)),
                (ISB_OSDROP, struct.pack("<Q", int(summary.get("lost", 0)))),
                (ISB_USRDELIV, struct.pack("<Q", int(summary.get("written", 0)))),
                (OPT_COMMENT, (SUMMARY_PREFIX + json.dumps(summary, separators=(",", ":"))).encode())]
        body = struct.pack("<III", 0, now >> 32, now & 0xFFFFFFFF) + _options(opts)
        self._write(idb + _block(ISB, body))

    def _interface(self, e: Event, linktype: int) -> Tuple[int, bytes]:
        key = (e.netns, e.ifname or (str(e.ifindex) if e.ifindex else None), linktype)
        if key in self._ifaces:
            return self._ifaces[key], b""
        idx = len(self._ifaces)
        self._ifaces[key] = idx
        name = key[1] or "unknown"
        desc = f"{name} in netns {e.netns or 'unknown'} ({'ethernet' if linktype == 1 else 'raw IP'})"
        return idx, interface_description(linktype, name, desc)

    def write(self, events: List[Event]) -> None:
        chunks = []
        for e in events:
            linktype = LINKTYPE_ETHERNET if e.link_ethernet else LINKTYPE_RAW
            data = e.packet
            if not e.link_ethernet and e.l3 not in ("ipv4", "ipv6"):
                data = b""  # neither a frame nor an IP packet: keep only the comments
            idx, idb = self._interface(e, linktype)
            ts = e.ts_ns // 1000
            orig = max(len(data), e.wire_len)
            body = struct.pack("<IIIII", idx, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
            body += _pad4(data) + _options([(OPT_COMMENT, human_comment(e).encode()),
                                            (OPT_COMMENT, machine_comment(e).encode())])
            chunks.append(idb + _block(EPB, body))
        if chunks:
            self._write(b"".join(chunks))  # whole blocks in one write


def _ts(us: int) -> bytes:
    return struct.pack("<II", us >> 32, us & 0xFFFFFFFF)


def _parse_options(buf: bytes, endian: str) -> List[Tuple[int, bytes]]:
    opts, pos = [], 0
    while pos + 4 <= len(buf):
        code, length = struct.unpack_from(endian + "HH", buf, pos)
        if code == OPT_END:
            break
        opts.append((code, buf[pos + 4:pos + 4 + length]))
        pos += 4 + length + (-length % 4)
    return opts


def read_blocks(f: BinaryIO) -> Iterator[Tuple[int, bytes, str]]:
    """(type, body, endianness) of each whole block; a torn last block ends the file."""
    endian = "<"
    first = True
    while True:
        head = f.read(8)
        if len(head) < 8:
            return
        if first:
            if struct.unpack_from("<I", head)[0] != SHB:
                raise PcapngError("not a pcapng file")
            magic = f.read(4)
            if len(magic) < 4:
                return
            endian = "<" if struct.unpack("<I", magic)[0] == BYTE_ORDER_MAGIC else ">"
            total = struct.unpack_from(endian + "I", head, 4)[0]
            rest = f.read(total - 12) if total >= 12 else b""
            if total < 12 or len(rest) < total - 12:
                return
            first = False
            yield SHB, magic + rest[:-4], endian
            continue
        btype, total = struct.unpack(endian + "II", head)
        if total < 12 or total % 4:
            raise PcapngError(f"bad block length {total}")
        rest = f.read(total - 8)
        if len(rest) < total - 8:
            return  # torn block at the end of a killed recording
        yield btype, rest[:-4], endian


class Reader:
    """Events of a droptrace pcapng file (packets re-decoded from their bytes); `summary`
    holds the closing statistics once iteration has reached them."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.summary: Optional[Dict[str, Any]] = None

    def __iter__(self) -> Iterator[Event]:
        linktypes: List[int] = []
        for btype, body, endian in read_blocks(self.f):
            if btype == IDB:
                linktypes.append(struct.unpack_from(endian + "H", body)[0])
            elif btype == ISB and len(body) >= 12:
                for code, value in _parse_options(body[12:], endian):
                    if code == OPT_COMMENT and value.startswith(SUMMARY_PREFIX.encode()):
                        self.summary = json.loads(value.decode()[len(SUMMARY_PREFIX):])
            elif btype == EPB and len(body) >= 20:
                idx, hi, lo, caplen, _orig = struct.unpack_from(endian + "5I", body)
                data = body[20:20 + caplen]
                opts = _parse_options(body[20 + caplen + (-caplen % 4):], endian)
                meta = next((json.loads(v.decode()[len(MACHINE_PREFIX):]) for c, v in opts
                             if c == OPT_COMMENT and v.startswith(MACHINE_PREFIX.encode())), None)
                if meta is None:
                    continue  # not written by droptrace
                ethernet = idx < len(linktypes) and linktypes[idx] == LINKTYPE_ETHERNET
                if data:
                    p = decode(data, 0 if ethernet else UNSET, UNSET if ethernet else 0,
                               0, 1 if ethernet else 0xFFFF)
                    packet_keys = SCHEMA_KEYS[SCHEMA_KEYS.index("l3"):SCHEMA_KEYS.index("len")]
                    meta.update({k: getattr(p, k) for k in packet_keys if meta.get(k) is None})
                yield Event.from_dict(meta, packet=data, link_ethernet=ethernet,
                                      ts_ns=((hi << 32) | lo) * 1000)


def read(f: BinaryIO) -> Iterator[Event]:
    """Events of a droptrace pcapng file."""
    return iter(Reader(f))
