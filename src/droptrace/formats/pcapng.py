"""A small pcapng writer and reader for droptrace recordings.

Each drop is an Enhanced Packet Block with the captured header bytes and two
comments: one for people (reason, location, namespace, interface, task, and
the stack with --stack), one machine-readable (`droptrace:` + JSON of the
event's fields that the rest of the block does not say: machine_dict) so
`droptrace report` and `droptrace.read` can rebuild the events. Interfaces
get Interface Description Blocks per (namespace, name,
link type): Ethernet where the MAC header was captured, raw IP where not.
Blocks are written whole, so a killed run leaves a file readable up to its
last complete block. A finished recording ends with an Interface Statistics
Block: isb_osdrop is the drops the kernel could not queue (ring buffer
full), isb_usrdeliv the drops written, and a `droptrace-summary:` comment
carries the whole summary (with --rate-limit's suppressed count).
"""
from __future__ import annotations

import json
import re
import struct
import time
from typing import Any, BinaryIO, Dict, Iterator, List, Optional, Tuple

from ..event import SCHEMA_KEYS, Event, iso_time
from ..packet.decode import UNSET, decode
from .out import Output

SHB, IDB, EPB, ISB = 0x0A0D0D0A, 0x00000001, 0x00000006, 0x00000005
BYTE_ORDER_MAGIC = 0x1A2B3C4D
LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL2 = 1, 101, 276
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
    return f"{human_where(e)}; pid {e.pid} comm {e.comm} (task on CPU {e.cpu})" + human_stack(e.stack or [])


def human_where(e: Event) -> str:
    """The start of the human comment: the same for every packet of a flow."""
    return f"{e.reason or 'drop'} at {e.location}; netns {e.netns or '-'}; ifname {e.ifname or '-'}"


def human_stack(stack: List[str]) -> str:
    """The stack's lines at the end of the human comment (none for an empty stack)."""
    return "".join(f"\n  #{i} {f}" for i, f in enumerate(stack))


def machine_comment(e: Event) -> str:
    return MACHINE_PREFIX + json.dumps(machine_dict(e), separators=(",", ":"))


def machine_dict(e: Event) -> Dict[str, Any]:
    """The event's fields as the `droptrace:` comment carries them: less what the Reader gets
    back from the rest of the block (the time from its timestamp, the packet's fields where its
    stored bytes decode to the same values, the interface's name from its IDB, and the reason,
    location, namespace and task from the human comment). Why: in a storm the comment was two
    thirds of each block, and a recording's bytes are what it costs (BENCHMARKS.md)."""
    d = e.to_dict(with_stack=e.stack is not None)
    linktype = LINKTYPE_ETHERNET if e.link_ethernet else LINKTYPE_RAW
    given = dict(packet_fields(stored(e), linktype) or {})
    given.update(human_fields(human_comment(e), e.stack))
    given["time"] = iso_time(e.ts_ns // 1000 * 1000)  # what the EPB's microseconds say
    for k, v in given.items():
        if k in d and d[k] == v and type(d[k]) is type(v):
            del d[k]
    if e.ifname:  # Writer.interface names the IDB after it
        del d["ifname"]
    return d


# The human comment, parsed back. Only the interface name and the task's name are free text: the
# first cannot hold a space, the second runs to the comment's fixed end (its stack lines cut first).
_HUMAN = re.compile(r"(?P<reason>\S+) at (?P<location>\S+); netns (?P<netns>\S+); ifname \S+; "
                    r"pid (?P<pid>[0-9]+) comm (?P<comm>.*) \(task on CPU (?P<cpu>[0-9]+)\)\Z", re.S)


def human_fields(comment: str, stack: Optional[List[str]]) -> Dict[str, Any]:
    """The fields a human comment says (none if it is not one of droptrace's); `stack` is the
    event's, whose lines end the comment. machine_dict leaves out those it gets back whole."""
    tail = human_stack(stack or [])
    if not comment.endswith(tail):
        return {}
    m = _HUMAN.match(comment[:len(comment) - len(tail)])
    if m is None:
        return {}
    netns = m["netns"]
    return {"reason": m["reason"], "location": m["location"],
            "netns": None if netns == "-" else int(netns) if netns.isascii() and netns.isdigit() else netns,
            "pid": int(m["pid"]), "comm": m["comm"], "cpu": int(m["cpu"])}


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

    def interface(self, e: Event, linktype: int) -> Tuple[int, bytes]:
        """The interface id of e's device, and its description block if it is new (once)."""
        key = (e.netns, e.ifname or (str(e.ifindex) if e.ifindex else None), linktype)
        if key in self._ifaces:
            return self._ifaces[key], b""
        idx = len(self._ifaces)
        self._ifaces[key] = idx
        name = key[1] or "unknown"
        desc = f"{name} in netns {e.netns or 'unknown'} ({'ethernet' if linktype == 1 else 'raw IP'})"
        return idx, interface_description(linktype, name, desc)

    def write(self, events: List[Event]) -> None:
        data = self.render(events)
        if data:
            self._write(data)  # whole blocks in one write

    def render(self, events: List[Event]) -> bytes:
        """The blocks of these events (and of the interfaces first seen), as write() writes them."""
        chunks = []
        for e in events:
            linktype = LINKTYPE_ETHERNET if e.link_ethernet else LINKTYPE_RAW
            data = stored(e)
            idx, idb = self.interface(e, linktype)
            ts = e.ts_ns // 1000
            orig = max(len(data), e.wire_len)
            body = struct.pack("<IIIII", idx, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
            body += _pad4(data) + _options([(OPT_COMMENT, human_comment(e).encode()),
                                            (OPT_COMMENT, machine_comment(e).encode())])
            chunks.append(idb + _block(EPB, body))
        return b"".join(chunks)


def stored(e: Event) -> bytes:
    """The packet bytes an EPB holds: a frame or an IP packet, else none (only the comments)."""
    if not e.link_ethernet and e.l3 not in ("ipv4", "ipv6"):
        return b""
    return e.packet


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


MAX_BLOCK = 64 << 20  # larger is not a block of a recording: the file is damaged


class Blocks:
    """(type, body, endianness) of each whole block. A torn last block (a killed run, a full
    disk) ends the file and sets `truncated`; a block that cannot be a block is an error."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.truncated = False

    def _read(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) < n:
            self.truncated = True
        return data

    def __iter__(self) -> Iterator[Tuple[int, bytes, str]]:
        endian = "<"
        while True:
            head = self.f.read(8)
            if not head:
                return
            if len(head) < 8:
                self.truncated = True
                return
            if struct.unpack_from("<I", head)[0] == SHB:  # a section starts: its own byte order
                magic = self._read(4)
                if len(magic) < 4:
                    return
                order = struct.unpack("<I", magic)[0]
                if order not in (BYTE_ORDER_MAGIC, 0x4D3C2B1A):
                    raise PcapngError("not a pcapng file (bad byte-order magic)")
                endian = "<" if order == BYTE_ORDER_MAGIC else ">"
                total = struct.unpack_from(endian + "I", head, 4)[0]
                if total < 28 or total % 4 or total > MAX_BLOCK:
                    raise PcapngError(f"bad section header length {total}")
                rest = self._read(total - 12)
                if len(rest) < total - 12:
                    return
                yield SHB, magic + rest[:-4], endian
                continue
            btype, total = struct.unpack(endian + "II", head)
            if total < 12 or total % 4 or total > MAX_BLOCK:
                raise PcapngError(f"bad block length {total}")
            rest = self._read(total - 8)
            if len(rest) < total - 8:
                return
            yield btype, rest[:-4], endian


def read_blocks(f: BinaryIO) -> Iterator[Tuple[int, bytes, str]]:
    return iter(Blocks(f))


class Reader:
    """Events of a pcapng file: droptrace's own (every field from the `droptrace:` comment,
    packets re-decoded from their bytes), or another tool's (packets only: reason, location and
    task unknown). `summary` holds droptrace's closing statistics once iteration reached them;
    `truncated` says the file ended inside a block; `foreign` counts packets without metadata."""

    def __init__(self, f: BinaryIO) -> None:
        self.blocks = Blocks(f)
        self.summary: Optional[Dict[str, Any]] = None
        self.foreign = 0

    @property
    def truncated(self) -> bool:
        return self.blocks.truncated

    def __iter__(self) -> Iterator[Event]:
        ifaces: List[Tuple[int, int, Optional[str]]] = []  # (linktype, ns per tick, name)
        for btype, body, endian in self.blocks:
            if btype == SHB:
                ifaces = []  # interface ids restart with each section
            elif btype == IDB and len(body) >= 8:
                linktype = struct.unpack_from(endian + "H", body)[0]
                opts = dict(_parse_options(body[8:], endian))
                ifaces.append((linktype, _tick_ns(opts.get(IF_TSRESOL)),
                               opts[IF_NAME].decode(errors="replace") if IF_NAME in opts else None))
            elif btype == ISB and len(body) >= 12:
                for code, value in _parse_options(body[12:], endian):
                    if code == OPT_COMMENT and value.startswith(SUMMARY_PREFIX.encode()):
                        try:
                            self.summary = json.loads(value.decode()[len(SUMMARY_PREFIX):])
                        except ValueError:
                            pass
            elif btype == EPB and len(body) >= 20:
                yield self._packet(body, endian, ifaces)

    def _packet(self, body: bytes, endian: str, ifaces: List[Tuple[int, int, Optional[str]]]) -> Event:
        idx, hi, lo, caplen, orig = struct.unpack_from(endian + "5I", body)
        data = body[20:20 + caplen]
        linktype, tick, ifname = ifaces[idx] if idx < len(ifaces) else (LINKTYPE_RAW, 1000, None)
        ts_ns = ((hi << 32) | lo) * tick
        opts = _parse_options(body[20 + caplen + (-caplen % 4):], endian)
        meta, comments = None, []
        for c, v in opts:
            if c != OPT_COMMENT:
                continue
            if v.startswith(MACHINE_PREFIX.encode()):
                try:
                    meta = json.loads(v.decode(errors="replace")[len(MACHINE_PREFIX):])
                except ValueError:
                    meta = None
            else:
                comments.append(v.decode(errors="replace"))
        ethernet = linktype == LINKTYPE_ETHERNET
        if not isinstance(meta, dict):
            self.foreign += 1
            meta = {"ifname": ifname, "len": orig, "time": iso_time(ts_ns)}
        else:  # what machine_dict left to the rest of the block
            stack = meta.get("stack")
            for text in comments:
                said = human_fields(text, stack if isinstance(stack, list) else None)
                if said:
                    for k, v in said.items():
                        meta.setdefault(k, v)
                    break
            meta.setdefault("time", iso_time(ts_ns))
        meta.setdefault("ifname", ifname)  # machine_dict leaves it to the IDB
        _decoded(meta, data, linktype)
        return Event.from_dict(meta, packet=data, link_ethernet=ethernet, ts_ns=ts_ns, wire_len=orig)


PACKET_KEYS = SCHEMA_KEYS[SCHEMA_KEYS.index("l3"):SCHEMA_KEYS.index("len")]  # decoded from the bytes


def packet_fields(data: bytes, linktype: int) -> Optional[Dict[str, Any]]:
    """The packet's fields (addresses, ports, flags) decoded from the bytes a block stores; None
    when they are not a frame or an IP packet."""
    if not data or linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
        return None
    ethernet = linktype == LINKTYPE_ETHERNET
    p = decode(data, 0 if ethernet else UNSET, UNSET if ethernet else 0, 0, 1 if ethernet else 0xFFFF)
    return {k: getattr(p, k) for k in PACKET_KEYS}


def _decoded(meta: Dict[str, Any], data: bytes, linktype: int) -> None:
    """Fill the packet's fields that meta lacks from its bytes."""
    for k, v in (packet_fields(data, linktype) or {}).items():
        if meta.get(k) is None:
            meta[k] = v


def _tick_ns(tsresol: Optional[bytes]) -> int:
    """Nanoseconds per timestamp unit (if_tsresol; microseconds when absent)."""
    if not tsresol:
        return 1000
    v = tsresol[0]
    if v & 0x80:
        return max(1, int(1e9 / (2 ** (v & 0x7F))))
    return 10 ** max(0, 9 - v) if v <= 9 else 1


def read(f: BinaryIO) -> Iterator[Event]:
    """Events of a pcapng file."""
    return iter(Reader(f))


PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
               b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}


class ClassicReader:
    """Packets of a classic pcap file (tcpdump -w): no droptrace metadata, packets only."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.summary: Optional[Dict[str, Any]] = None
        self.truncated = False
        self.foreign = 0

    def __iter__(self) -> Iterator[Event]:
        head = self.f.read(24)
        if len(head) < 24 or head[:4] not in PCAP_MAGICS:
            raise PcapngError("not a pcap file")
        endian, tick = PCAP_MAGICS[head[:4]]
        linktype = struct.unpack_from(endian + "I", head, 20)[0] & 0x0FFFFFFF
        ethernet = linktype == LINKTYPE_ETHERNET
        while True:
            rec = self.f.read(16)
            if len(rec) < 16:
                self.truncated = bool(rec)
                return
            sec, frac, caplen, orig = struct.unpack(endian + "4I", rec)
            if caplen > MAX_BLOCK:
                raise PcapngError(f"bad packet length {caplen}")
            data = self.f.read(caplen)
            if len(data) < caplen:
                self.truncated = True
                return
            self.foreign += 1
            ts_ns = sec * 1_000_000_000 + frac * tick
            meta: Dict[str, Any] = {"len": orig, "time": iso_time(ts_ns)}
            if linktype == LINKTYPE_LINUX_SLL2 and len(data) >= 20:  # droptrace's and tcpdump -i any's
                proto, ifindex = struct.unpack_from("!H2xI", data)
                data, orig = data[20:], max(0, orig - 20)
                meta.update(len=orig, ifindex=ifindex or None)
                _decoded(meta, data, LINKTYPE_RAW)
                yield Event.from_dict(meta, packet=data, link_ethernet=False, ts_ns=ts_ns, wire_len=orig)
                continue
            _decoded(meta, data, linktype)
            yield Event.from_dict(meta, packet=data, link_ethernet=ethernet, ts_ns=ts_ns, wire_len=orig)
